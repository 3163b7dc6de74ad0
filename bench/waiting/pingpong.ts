// One side of the async hand-off ping-pong of bench/waiting_bench.ts (runs under Deno or Bun).
// Usage: pingpong.ts <segment> <rounds> <side: a|b> [reference]
//   Side a releases semaphore @0 and awaits semaphore @8, `rounds` times, then prints µs per round
//   trip; side b does the reverse. `reference`: each async wait takes a thread (the design before
//   the waiter threads).
import process from "node:process";
import { Semaphore, SharedMemory } from "../../mod.ts";
import { usePollingFallback } from "../../_sync/futex.ts";
import { useWaiterThreads } from "../../_sync/waiters.ts";

const [name, roundsArg, side, mode] = process.argv.slice(2);
if (mode === "reference") {
  useWaiterThreads(false);
  usePollingFallback(false); // forget the native chosen so far
}
const rounds = Number(roundsArg);
using shm = SharedMemory.open(name!);
const ping = new Semaphore(shm, 0);
const pong = new Semaphore(shm, 8);
const ready = shm.view(Int32Array, 16, 1);
if (side === "b") {
  Atomics.store(ready, 0, 1);
  for (let i = 0; i < rounds; i++) {
    await ping.acquire({ timeout: 30_000 });
    pong.release();
  }
} else {
  while (Atomics.load(ready, 0) === 0) await new Promise((r) => setTimeout(r, 5));
  const warm = Math.min(50, rounds >> 2);
  let start = 0;
  for (let i = 0; i < rounds; i++) {
    if (i === warm) start = performance.now();
    ping.release();
    await pong.acquire({ timeout: 30_000 });
  }
  console.log(((performance.now() - start) * 1000) / (rounds - warm));
}
