/**
 * What a {@linkcode WaitSet} needs from each primitive it can wait on, registered by the primitive
 * itself (its layout stays its own): whether a `try*` call would succeed now, and how to sleep
 * until that may have changed.
 *
 * @module
 */

import type { FutexWord } from "./futex.ts";

/** One readiness a WaitSet can wait for (a Mutex's lock, a Channel's readable side…). */
export interface Readiness {
  /** The word whose change may make it ready. */
  readonly word: FutexWord;
  /** Whether the matching `try*` call would succeed now (or not wait: an ended channel). */
  ready(): boolean;
  /**
   * Marks a sleeper (so that the next change wakes the word) and returns the value to sleep on,
   * or null when it is ready after all. A non-null return is undone with `done` after the sleep.
   */
  prepare(): number | null;
  /** Takes back what `prepare` marked, if anything. */
  done(): void;
  /**
   * A liveness check while asleep on `value` (what `prepare` returned): true when the party that
   * keeps it from being ready died, so `ready` now says yes (a Mutex's holder).
   */
  watch?(value: number): boolean;
}

/** The readiness of each primitive, by handle (a Channel has one per interest). */
export const readinessOf: WeakMap<object, Readonly<Record<string, Readiness>>> = new WeakMap();
