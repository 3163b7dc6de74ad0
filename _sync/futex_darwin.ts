/**
 * macOS waits: `__ulock_wait` / `__ulock_wake` with `UL_COMPARE_AND_WAIT_SHARED` (what libc++ uses
 * for `std::atomic::wait`), keyed by the word's memory, so wakes cross processes. Written to the
 * documented facts; unverified here. A macOS without `__ulock_*` gets no native wait (waits poll).
 *
 * @module
 */

import type { Native } from "./futex.ts";
import { darwinUlock, F, ULOCK_OP, ulockMicros } from "../ffi/futex.ts";
import { sleepOffThread } from "../_host.ts";

/** `FutexWord`'s count for "every waiter". */
const ALL = 0x7fff_ffff;

/** The ulock wait and wake, or null where libSystem has none. */
export function darwinNative(): Native | null {
  const lib = darwinUlock();
  if (!lib) return null;
  return {
    waitSync(w, expected, timeoutMs) {
      // With ULF_NO_ERRNO the call returns -errno itself; a word that differs returns at once.
      const r = lib.__ulock_wait(ULOCK_OP, w.pointer, BigInt(expected >>> 0), ulockMicros(timeoutMs));
      return r === -F.ETIMEDOUT_DARWIN ? "timed-out" : "ok";
    },
    async waitAsync(w, expected, timeoutMs) {
      const r = await sleepOffThread({
        call: "ulock",
        address: w.address,
        expected: expected | 0,
        timeoutMs,
      });
      return r === -F.ETIMEDOUT_DARWIN ? "timed-out" : "ok";
    },
    wake(w, count) {
      if (count >= ALL) {
        const r = lib.__ulock_wake(ULOCK_OP | F.ULF_WAKE_ALL, w.pointer, 0n);
        return r === -F.ENOENT_DARWIN ? 0 : 1; // macOS does not say how many: at least one
      }
      let woken = 0;
      while (woken < count && lib.__ulock_wake(ULOCK_OP, w.pointer, 0n) === 0) woken++;
      return woken;
    },
  };
}
