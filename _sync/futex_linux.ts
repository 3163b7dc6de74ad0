/**
 * Linux waits: `futex(FUTEX_WAIT)` / `futex(FUTEX_WAKE)` on the word's address, shared (never
 * `FUTEX_PRIVATE_FLAG`), so a wake reaches every process that maps the segment.
 *
 * @module
 */

import type { Native, WaitResult, Word } from "./futex.ts";
import { F, futexWaitvSync, linuxFutex, timespec } from "../ffi/futex.ts";
import { sleepOffThread } from "../_host.ts";
import { forgetSegment, linuxWaiterOs, waiterThreadsAvailable, waitOnWaiterThread } from "./waiters.ts";

/**
 * The futex wait and wake, bound on first use. Async waits go to the waiter threads
 * (`waiters.ts`, `futex_waitv`) where the kernel has it; before 5.16 each takes a thread of its own.
 */
export function linuxNative(): Native {
  const lib = linuxFutex();
  const wake: Native["wake"] = (w, count) => {
    const r = Number(lib.syscall(F.SYS_FUTEX, w.pointer, F.FUTEX_WAKE, count, null, null, 0));
    return r < 0 ? 0 : r;
  };
  const waitSync: Native["waitSync"] = (w, expected, timeoutMs) => {
    const ts = timeoutMs === undefined ? null : timespec(timeoutMs, true);
    const r = Number(lib.syscall(F.SYS_FUTEX, w.pointer, F.FUTEX_WAIT, expected | 0, ts, null, 0));
    if (r === 0) return "ok";
    const errno = lib.errno();
    if (errno === F.EAGAIN_LINUX) return "not-equal";
    if (errno === F.ETIMEDOUT_LINUX) return "timed-out";
    return "ok"; // EINTR: a spurious wake-up; the caller re-checks
  };
  if (waiterThreadsAvailable()) {
    return {
      waitSync,
      waitManySync: (words, timeoutMs) => {
        if (words.length > F.FUTEX_WAITV_MAX) return null;
        const { r, errno } = futexWaitvSync(
          words.map((w) => ({ address: w.word.address, expected: w.expected })),
          timeoutMs,
        );
        if (r >= 0) return "ok";
        if (errno === F.EAGAIN_LINUX) return "not-equal";
        if (errno === F.ETIMEDOUT_LINUX) return "timed-out";
        return "ok"; // EINTR: a spurious wake-up; the caller re-checks
      },
      waitAsync: (w, expected, timeoutMs, signal, watch) =>
        waitOnWaiterThread(linuxWaiterOs, w, expected, timeoutMs, signal, watch),
      cancellable: true,
      closing: forgetSegment,
      wake,
    };
  }
  return {
    waitSync,
    async waitAsync(w, expected, timeoutMs) {
      const started = performance.now();
      const r = await sleepOffThread({
        call: "futex",
        address: w.address,
        expected: expected | 0,
        timeoutMs,
      });
      return outcome(r, w, expected, timeoutMs, started);
    },
    wake,
  };
}

/**
 * How an off-thread wait ended. Its errno was another thread's, so a failure is told apart by the
 * clock and the word: an early "ok" is a spurious wake-up, which callers handle anyway.
 */
function outcome(
  r: number,
  w: Word,
  expected: number,
  timeoutMs: number | undefined,
  started: number,
): WaitResult {
  if (r === 0) return "ok";
  if (timeoutMs !== undefined && performance.now() - started >= timeoutMs) return "timed-out";
  if (w.view.length === 1 && Atomics.load(w.view, 0) !== (expected | 0)) return "not-equal";
  return "ok";
}
