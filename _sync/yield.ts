/**
 * Giving the CPU away inside a spin.
 *
 * A process that spins while waiting for another holds a CPU that may be the one the other needs:
 * with more processes ready to run than CPUs (a topic's eight subscribers and its publisher on two
 * cores), the scheduler shares the CPUs out evenly, and every spinner takes a share from the
 * process it waits for. Yielding now and then within a spin gives that share back. Where nothing
 * else is ready to run, the call returns at once (a system call, a fraction of a microsecond).
 *
 * @module
 */

import { kernel32 } from "../ffi/kernel32.ts";
import { libc } from "../ffi/libc.ts";
import { os } from "../ffi/runtime.ts";

/**
 * Gives the rest of this thread's time slice to another thread ready to run (`sched_yield`;
 * `SwitchToThread` on Windows); returns at once when none is.
 */
export function yieldThread(): void {
  if (os === "windows") kernel32().SwitchToThread();
  else libc().sched_yield();
}
