/**
 * The other process of bench/sync_bench.ts (run under the same runtime as the bench):
 *
 * - `peer.ts handoff <segment>`: the second party of the three-mutex hand-off (see the bench).
 * - `peer.ts cond <segment>`: the second party of the Condition ping-pong.
 *
 * @module
 */

import { Condition, Mutex, SharedMemory } from "../../mod.ts";
import { futexWake } from "../../_sync/futex.ts";

const [mode, target] = (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);

/** Layout shared with the bench: three mutexes @0/8/16, condition @24, ready @32, stop @36, turn @40. */
const READY = 8;
const STOP = 9;
const TURN = 10;

function handoff(name: string): void {
  const shm = SharedMemory.open(name);
  const i32 = shm.view(Int32Array);
  const locks = [0, 8, 16].map((o) => new Mutex(shm, o));
  locks[2]!.lockSync();
  Atomics.store(i32, READY, 1);
  futexWake(shm, READY * 4);
  // For j = 0, 1, …: take lock j mod 3 (the bench holds it and hands it over), then release the one
  // taken two steps before.
  for (let j = 0;; j++) {
    locks[j % 3]!.lockSync();
    locks[(j + 2) % 3]!.unlock();
    if (Atomics.load(i32, STOP)) {
      locks[j % 3]!.unlock();
      break;
    }
  }
  shm.close();
}

function cond(name: string): void {
  const shm = SharedMemory.open(name);
  const i32 = shm.view(Int32Array);
  const mutex = new Mutex(shm, 0);
  const c = new Condition(shm, 24);
  Atomics.store(i32, READY, 1);
  futexWake(shm, READY * 4);
  mutex.lockSync();
  for (;;) {
    while (i32[TURN] !== 1 && !Atomics.load(i32, STOP)) c.waitSync(mutex);
    if (Atomics.load(i32, STOP)) break;
    i32[TURN] = 0;
    c.notify();
  }
  mutex.unlock();
  shm.close();
}

if (mode === "handoff") handoff(target!);
else if (mode === "cond") cond(target!);
else throw new Error(`Cannot run the sync bench peer: unknown mode ${mode}`);
