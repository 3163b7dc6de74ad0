/**
 * A counting semaphore that lives in 8 bytes of shared memory.
 *
 * ## Layout (`Semaphore.BYTE_LENGTH` = 8 bytes, at a byte offset that is a multiple of 4)
 *
 * | offset | type | meaning |
 * |---|---|---|
 * | 0 | Int32 | permits available now (never negative) |
 * | 4 | Int32 | threads sleeping in `acquire` (so `release` knows whether to wake anyone) |
 *
 * A zero-filled region is an empty semaphore (no permits): whoever sets it up calls `release(n)`
 * once to put `n` permits in. A semaphore has no owner, so nothing is recovered when a process dies
 * holding a permit: the permit is lost (use a `Mutex` when that matters).
 *
 * @module
 */

import type { SharedMemory } from "./shared_memory.ts";
import { FutexWord, type Sleep, type WaitResult } from "./_sync/futex.ts";
import { TimeoutError } from "./errors.ts";
import { checkTimeout, deadlineOf, regionOf, SPINS } from "./_sync/region.ts";

const MAX_PERMITS = 0x7fff_ffff;

/** Options of {@linkcode Semaphore.acquire} and {@linkcode Semaphore.acquireSync}. */
export interface AcquireOptions {
  /** Give up with a `TimeoutError` after this many milliseconds (default: wait forever). */
  timeout?: number;
  /** Async only: abort the wait (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

/**
 * A counting semaphore in shared memory: at most as many holders as permits were released.
 *
 * @example Let at most 4 processes into a section
 * ```ts
 * import { SharedMemory, Semaphore } from "@x/shm";
 *
 * using shm = SharedMemory.openOrCreate("pool", { size: 64 });
 * const sem = new Semaphore(shm, 0);
 * if (shm.created) sem.release(4);   // the creator puts the 4 permits in
 * await sem.acquire({ timeout: 5_000 });
 * try {
 *   // … at most 4 processes run this at once …
 * } finally {
 *   sem.release();
 * }
 * ```
 */
export class Semaphore {
  /** Bytes a semaphore occupies in the segment. */
  static readonly BYTE_LENGTH: number = 8;

  #futex: FutexWord;
  #cells: Int32Array;

  /**
   * A handle on the semaphore at `byteOffset` of `shm` (a multiple of 4; `BYTE_LENGTH` bytes).
   * Creating a handle changes nothing in memory.
   *
   * @throws {RangeError} when the region is misaligned or does not fit in the segment
   * @throws {TypeError} when the mapping is read-only
   */
  constructor(shm: SharedMemory, byteOffset: number) {
    this.#cells = regionOf(shm, byteOffset, Semaphore.BYTE_LENGTH, "semaphore");
    this.#futex = new FutexWord(shm, byteOffset);
  }

  /** Permits available now. */
  get value(): number {
    return Atomics.load(this.#cells, 0);
  }

  /**
   * Takes a permit if one is available, without waiting.
   *
   * @returns true when a permit was taken
   */
  tryAcquire(): boolean {
    const cells = this.#cells;
    for (;;) {
      const c = Atomics.load(cells, 0);
      if (c <= 0) return false;
      if (Atomics.compareExchange(cells, 0, c, c - 1) === c) return true;
    }
  }

  /**
   * Puts `count` permits back (or in, the first time) and wakes as many sleepers.
   *
   * @throws {RangeError} when `count` is not a positive integer or the count would pass 2^31 - 1
   */
  release(count: number = 1): void {
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`Cannot release the semaphore: count must be a positive integer, got ${count}`);
    }
    const cells = this.#cells;
    for (;;) {
      const c = Atomics.load(cells, 0);
      if (c > MAX_PERMITS - count) {
        throw new RangeError(`Cannot release ${count} permits: the semaphore would hold more than 2^31 - 1`);
      }
      if (Atomics.compareExchange(cells, 0, c, c + count) === c) break;
    }
    if (Atomics.load(cells, 1) > 0) this.#futex.wake(count);
  }

  /**
   * Takes a permit, blocking the thread until one is available.
   *
   * @throws {TimeoutError} after `options.timeout` ms
   */
  acquireSync(options: AcquireOptions = {}): void {
    checkTimeout(options.timeout, "acquire the semaphore");
    if (this.#spin()) return;
    this.#futex.runSync(this.#acquireLoop(options));
  }

  /**
   * Takes a permit, waiting without blocking the event loop.
   *
   * @throws {TimeoutError} after `options.timeout` ms
   */
  async acquire(options: AcquireOptions = {}): Promise<void> {
    checkTimeout(options.timeout, "acquire the semaphore");
    if (this.#spin()) return;
    await this.#futex.runAsync(this.#acquireLoop(options), options.signal);
  }

  /** Takes a permit, sleeping while there is none; counts itself among the sleepers meanwhile. */
  *#acquireLoop(options: AcquireOptions): Generator<Sleep, void, WaitResult> {
    const deadline = deadlineOf(options.timeout, "acquire the semaphore");
    const cells = this.#cells;
    for (;;) {
      if (this.tryAcquire()) return;
      const left = deadline - performance.now();
      if (left <= 0) throw this.#timeout(options.timeout!);
      Atomics.add(cells, 1, 1);
      try {
        // Sleeps only while the count is still 0: a release between our check and the sleep is seen.
        yield [0, left];
      } finally {
        Atomics.sub(cells, 1, 1);
      }
    }
  }

  #spin(): boolean {
    for (let i = 0; i < SPINS; i++) {
      if (this.tryAcquire()) return true;
    }
    return false;
  }

  #timeout(timeout: number): TimeoutError {
    return new TimeoutError(
      `Cannot acquire the semaphore: no permit came free within ${timeout} ms`,
      timeout,
    );
  }
}
