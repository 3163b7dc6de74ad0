/**
 * The fallback where no OS wait can be had (an old macOS without `__ulock_*`): waits poll the word
 * with `Atomics.load` and a backoff capped at 1 ms. Wakes are no-ops; pollers see the change.
 *
 * @module
 */

import type { WaitResult } from "./futex.ts";
import { sleepSync } from "./sleep.ts";

/** Blocks, polling, while `word[0]` holds `expected`, at most `timeoutMs` (undefined: no limit). */
export function pollSync(word: Int32Array, expected: number, timeoutMs: number | undefined): WaitResult {
  const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
  let pause = 0.05;
  while (Atomics.load(word, 0) === (expected | 0)) {
    const left = deadline - performance.now();
    if (left <= 0) return "timed-out";
    sleepSync(Math.min(pause, left));
    pause = Math.min(1, pause * 2);
  }
  return "ok";
}

/** The same with timers: the event loop keeps running; the signal is checked at each poll. */
export async function pollAsync(
  word: Int32Array,
  expected: number,
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
): Promise<WaitResult> {
  const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
  let pause = 0;
  while (Atomics.load(word, 0) === (expected | 0)) {
    signal?.throwIfAborted();
    const left = deadline - performance.now();
    if (left <= 0) return "timed-out";
    await new Promise((r) => setTimeout(r, Math.min(pause, left)));
    pause = Math.min(1, pause + 0.25);
  }
  return "ok";
}
