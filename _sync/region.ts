/**
 * Shared checks of the synchronization primitives: where they sit in a segment, and timeouts.
 *
 * @module
 */

import type { SharedMemory } from "../shared_memory.ts";

/** Checks a synchronization primitive's place in a segment and returns an Int32 view over it. */
export function regionOf(
  shm: SharedMemory,
  byteOffset: number,
  byteLength: number,
  what: string,
): Int32Array {
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

/** Checks a `timeout` option and returns the deadline (`Infinity` for none). */
export function deadlineOf(timeout: number | undefined, what: string): number {
  if (timeout === undefined) return Infinity;
  checkTimeout(timeout, what);
  return performance.now() + timeout;
}

/** Throws a RangeError unless `timeout` is a non-negative number (or undefined). */
export function checkTimeout(timeout: number | undefined, what: string): void {
  if (timeout === undefined) return;
  if (typeof timeout !== "number" || Number.isNaN(timeout) || timeout < 0) {
    throw new RangeError(
      `Cannot ${what}: timeout must be a non-negative number of milliseconds, got ${timeout}`,
    );
  }
}

/**
 * Loads of the shared word a waiter spends before it sleeps in the kernel. Short on purpose:
 * measured on a loaded 2-CPU machine, longer spins (2 µs to 100 µs) made cross-process hand-offs
 * slower, as the spinner takes the CPU from the process it waits for. No spinning on a single CPU.
 */
export const SPINS: number = (globalThis.navigator?.hardwareConcurrency ?? 2) > 1 ? 64 : 1;
