// A peer for tests/wait_set_test.ts (runs under Deno or Bun).
// Usage: wait_set_peer.ts wait|wait-sync <channel> <segment>   waits (wait, or waitSync blocking the
//          thread) on a WaitSet of the channel (readable), the semaphore @0 and the mutex @8 of the
//          segment; prints "waiting", then "ready <names>".
//        wait_set_peer.ts poke <channel> <segment> <what>   sends "hi" (channel), releases (semaphore)
//          or locks and unlocks (mutex) once.
import process from "node:process";
import { Channel, Mutex, Semaphore, SharedMemory, WaitSet } from "../../mod.ts";

const [mode, channelName, segmentName, what] = process.argv.slice(2);
using ch = Channel.open(channelName!);
using shm = SharedMemory.open(segmentName!);
const sem = new Semaphore(shm, 0);
const mutex = new Mutex(shm, 8);
if (mode === "wait" || mode === "wait-sync") {
  const ws = new WaitSet().add(ch, "readable").add(sem).add(mutex);
  console.log("waiting");
  const ready = mode === "wait" ? await ws.wait({ timeout: 30_000 }) : ws.waitSync({ timeout: 30_000 });
  const names = ready.map((r) => r.source === ch ? "channel" : r.source === sem ? "semaphore" : "mutex");
  console.log(`ready ${names.join(",")}`);
} else if (what === "channel") ch.sendString("hi");
else if (what === "semaphore") sem.release();
else mutex.lockSync().unlock();
