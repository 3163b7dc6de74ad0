/**
 * Internal hooks between this module's own files; not exported from `mod.ts`.
 *
 * @module
 */

import type { Segment } from "./platform/_segment.ts";

/** The segment behind each open `SharedMemory`, for code that needs its address (futex waits). */
export const segmentOf: WeakMap<object, Segment> = new WeakMap();

/**
 * The address of byte `byteOffset` of a `SharedMemory`'s mapping.
 *
 * @throws {TypeError} when `shm` is not a `SharedMemory`
 */
export function addressIn(shm: object, byteOffset: number): bigint {
  const segment = segmentOf.get(shm);
  if (!segment) throw new TypeError("Cannot find the mapping: expected a SharedMemory");
  return segment.address + BigInt(byteOffset);
}

/**
 * The string every process gives the segment behind `shm`, naming the kernel objects its waits
 * sleep on (Windows). Replaces reading `segment.waitKey` directly.
 *
 * @throws {TypeError} when `shm` is not a `SharedMemory`, or its backend has no wait key (POSIX
 * waits key on the memory itself)
 */
export function waitKeyOf(shm: object): string {
  const key = segmentOf.get(shm)?.waitKey();
  if (key === undefined) throw new TypeError("Cannot wait on the word: the segment has no wait key");
  return key;
}

/**
 * Callbacks run once when a `SharedMemory` closes, after its buffer is detached and before its
 * mapping goes: they end the async waits asleep on it and release what other modules keep per
 * handle (the Windows wait semaphores).
 */
export const closers: WeakMap<object, (() => void)[]> = new WeakMap();

/**
 * Observers of `SharedMemory` life cycles (the opt-in leak report in `scope.ts` sets them). Each is
 * called after the operation succeeded; unset hooks cost one property read.
 */
export const lifecycle: {
  /** A handle that created its segment was constructed. */
  created?: (shm: object) => void;
  /** A handle was closed (once). */
  closed?: (shm: object) => void;
  /** A segment was unlinked, through a handle or by name (`shm` undefined then). */
  unlinked?: (shm: object | undefined, name: string) => void;
} = {};
