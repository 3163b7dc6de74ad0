// One of the JavaScript processes of tests/mixed_runtimes_test.ts (run under Deno, Bun and Node alike).
//
//   <segment> <channel> <index> <count>
//
// Takes the jobs i < count with i % 3 == index. For each: locks the mutex at byte 0 (lock() for even
// jobs, lockSync() for odd ones), adds the job's value (an int32 Python wrote at byte 64 + 4 * i) to the
// int32 at byte 8 with a plain read and write, and counts itself in the int32 at byte 12 + 4 * index;
// then sends "<runtime> <i> <value>" on the channel. Prints "done" at the end.
import { childArgs, requiredArg } from "./_child.ts";
import { Channel, Mutex, SharedMemory } from "../../mod.ts";
import { runtime } from "../../ffi/runtime.ts";

const args = childArgs();
const arg = (i: number) => requiredArg(args, i, "mixed_peer.ts");
using shm = SharedMemory.open(arg(0));
using ch = Channel.open(arg(1));
const index = Number(arg(2));
const count = Number(arg(3));
const mutex = new Mutex(shm, 0);
const words = shm.view(Int32Array, 0, 16 + count);

for (let i = index; i < count; i += 3) {
  const value = words[16 + i]!;
  {
    using _guard = i % 2 ? mutex.lockSync({ timeout: 30_000 }) : await mutex.lock({ timeout: 30_000 });
    const before = words[2]!;
    // Widen the window between the read and the write: without the lock, updates would be lost.
    for (let spin = 0; spin < 200; spin++) words[15] = (words[15]! + spin) | 0;
    words[2] = before + value;
    words[3 + index]! += 1;
  }
  await ch.sendString(`${runtime} ${i} ${value}`, { timeout: 30_000 });
}
console.log("done");
