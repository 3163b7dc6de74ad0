/**
 * What the synchronization primitives share: where they sit in a segment, the checks of their
 * arguments, and how long one sleep in the kernel lasts at most.
 *
 * @module
 */

import { SharedMemory } from "../shared_memory.ts";
import { describe } from "../_validate.ts";
import type { CheckedWait } from "../_validate.ts";

/**
 * Checks a synchronization primitive's place in a segment and returns an Int32 view over it.
 *
 * @param what the primitive, as it reads after "a" ("mutex", "barrier")
 */
export function regionOf(
  shm: unknown,
  byteOffset: unknown,
  byteLength: number,
  what: string,
): Int32Array {
  if (!(shm instanceof SharedMemory)) {
    throw new TypeError(`Cannot place a ${what}: expected a SharedMemory, got ${describe(shm)}`);
  }
  if (shm.closed) throw new TypeError(`Cannot place a ${what}: the SharedMemory is closed`);
  if (typeof byteOffset !== "number") {
    throw new TypeError(
      `Cannot place a ${what}: byteOffset must be a number, got ${describe(byteOffset)}`,
    );
  }
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 4 !== 0) {
    throw new RangeError(
      `Cannot place a ${what}: byteOffset must be a non-negative multiple of 4, got ${byteOffset}`,
    );
  }
  if (byteOffset + byteLength > shm.size) {
    throw new RangeError(
      `Cannot place a ${what} at byte ${byteOffset}: it needs ${byteLength} bytes and the segment has ${shm.size}`,
    );
  }
  if (shm.readOnly) throw new TypeError(`Cannot place a ${what} in a read-only mapping`);
  return shm.view(Int32Array, byteOffset, byteLength / 4);
}

/**
 * The error for a primitive used after its segment was closed (its view is then detached, and
 * `Atomics` would throw an engine message instead).
 *
 * @param shm the primitive's segment
 * @param action what was attempted, as it reads after "Cannot "
 */
export function closedError(shm: SharedMemory, action: string): TypeError {
  return new TypeError(
    shm.closed
      ? `Cannot ${action}: its SharedMemory is closed`
      : `Cannot ${action}: the SharedMemory's buffer was detached (transferred away)`,
  );
}

/**
 * Checks a count argument (`release(n)`, `notify(n)`): a whole number from 1 to `max`.
 *
 * @param action what was attempted, as it reads after "Cannot "
 */
export function checkCount(count: unknown, action: string, max: number = 0x7fff_ffff): number {
  if (typeof count !== "number") {
    throw new TypeError(`Cannot ${action}: count must be a number, got ${describe(count)}`);
  }
  if (!Number.isInteger(count) || count < 1 || count > max) {
    throw new RangeError(`Cannot ${action}: count must be an integer from 1 to ${max}, got ${count}`);
  }
  return count;
}

/** The checked options of a call that passed none: no limit, no signal (allocation-free fast path). */
export const NO_WAIT: CheckedWait = Object.freeze({
  timeout: Infinity,
  deadline: Infinity,
  signal: undefined,
});

/**
 * The longest one sleep in the kernel lasts before the waiter wakes by itself and looks again: at
 * the word (a wake-up lost to a corrupted count costs at most this), at the signal, and at the
 * parties it waits for (a dead lock holder or barrier party). Waiting longer only repeats sleeps.
 */
export const SLICE_MS = 250;

/** How long the next sleep may last: up to the deadline, at most {@linkcode SLICE_MS}. */
export function sliceUntil(deadline: number, now: number): number {
  return Math.min(deadline - now, SLICE_MS);
}

/**
 * A sleeper count found negative is set to this instead: far from 0, so that the notifiers, which
 * wake whenever the count is not 0, keep waking for as long as anybody could be asleep.
 */
export const REPAIRED_COUNT = 0x4000_0000;

/**
 * Counts the caller in as a sleeper (`cells[index]` += 1). A count that was negative can only come
 * from a corrupted word: it is replaced by {@linkcode REPAIRED_COUNT}, so no wake-up depends on it.
 */
export function addSleeper(cells: Int32Array, index: number): void {
  if (Atomics.add(cells, index, 1) < 0) Atomics.store(cells, index, REPAIRED_COUNT);
}

/**
 * Loads of the shared word a waiter spends before it sleeps in the kernel. Short on purpose:
 * measured on a loaded 2-CPU machine, longer spins (2 µs to 100 µs) made cross-process hand-offs
 * slower, as the spinner takes the CPU from the process it waits for. No spinning on a single CPU.
 */
export const SPINS: number = (globalThis.navigator?.hardwareConcurrency ?? 2) > 1 ? 64 : 1;
