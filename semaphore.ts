/**
 * A counting semaphore that lives in 8 bytes of shared memory.
 *
 * ## Layout (`Semaphore.BYTE_LENGTH` = 8 bytes, at a byte offset that is a multiple of 4)
 *
 * | offset | type | meaning |
 * |---|---|---|
 * | 0 | Int32 | permits available now (never negative) |
 * | 4 | Int32 | threads sleeping in `acquire` (so `release` can skip the wake-up call when it is 0) |
 *
 * A zero-filled region is an empty semaphore (no permits): whoever sets it up calls `release(n)`
 * once to put `n` permits in. A semaphore has no owner, so nothing is recovered when a process dies
 * holding a permit: the permit is lost (use a `Mutex` when that matters).
 *
 * No wake-up depends on the sleeper count being right: `release` wakes whenever it is not exactly
 * 0, a sleeper that finds it negative (a corrupted word) sets it to 2^30 (from then on every
 * release makes the wake call), and every sleep in the kernel ends after 250 ms at most to look at
 * the permits again, so even a count overwritten with 0 under a sleeper delays it by 250 ms at most.
 *
 * @module
 */

import type { SharedMemory } from "./shared_memory.ts";
import { FutexWord, type Sleep, type WaitResult } from "./_sync/futex.ts";
import { TimeoutError } from "./errors.ts";
import { addSleeper, checkCount, closedError, NO_WAIT, regionOf, SLICE_MS, SPINS } from "./_sync/region.ts";
import { type CheckedWait, checkWaitOptions, type WaitOptions } from "./_validate.ts";
import { readinessOf } from "./_sync/readiness.ts";

const MAX_PERMITS = 0x7fff_ffff;

/**
 * A counting semaphore in shared memory: at most as many holders as permits were released.
 *
 * @example Let at most 4 processes into a section (each runs this)
 * ```ts
 * import { SharedMemory, Semaphore } from "@x/shm";
 *
 * using shm = SharedMemory.openOrCreate("pool-example", { size: 64 });
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

  #shm: SharedMemory;
  #futex: FutexWord;
  #cells: Int32Array;

  /**
   * A handle on the semaphore at `byteOffset` of `shm` (a multiple of 4; `BYTE_LENGTH` bytes).
   * Creating a handle changes nothing in memory.
   *
   * @throws {TypeError} when `shm` is not an open SharedMemory, `byteOffset` not a number, or the
   * mapping is read-only
   * @throws {RangeError} when the region is misaligned or does not fit in the segment
   */
  constructor(shm: SharedMemory, byteOffset: number) {
    this.#cells = regionOf(shm, byteOffset, Semaphore.BYTE_LENGTH, "semaphore");
    this.#shm = shm;
    this.#futex = new FutexWord(shm, byteOffset, "place a semaphore");
    // For WaitSet: ready when a permit is there; a sleeper counts itself in, as `acquire` does.
    const cells = this.#cells;
    readinessOf.set(this, {
      acquire: {
        word: this.#futex,
        ready: () => Atomics.load(this.#live("read the semaphore"), 0) > 0,
        prepare: () => {
          addSleeper(cells, 1);
          const c = Atomics.load(cells, 0);
          if (c > 0) Atomics.sub(cells, 1, 1);
          return c > 0 ? null : c;
        },
        done: () => {
          if (cells.length !== 0) Atomics.sub(cells, 1, 1);
        },
      },
    });
  }

  /** Permits available now. */
  get value(): number {
    return Atomics.load(this.#live("read the semaphore"), 0);
  }

  /**
   * Takes a permit if one is available, without waiting.
   *
   * @returns true when a permit was taken
   * @throws {TypeError} when the segment is closed
   */
  tryAcquire(): boolean {
    const cells = this.#live("acquire the semaphore");
    for (;;) {
      const c = Atomics.load(cells, 0);
      if (c <= 0) return false;
      if (Atomics.compareExchange(cells, 0, c, c - 1) === c) return true;
    }
  }

  /**
   * Puts `count` permits back (or in, the first time) and wakes as many sleepers.
   *
   * @throws {TypeError} when `count` is not a number, or the segment is closed
   * @throws {RangeError} when `count` is not a positive integer or the count would pass 2^31 - 1
   */
  release(count: number = 1): void {
    checkCount(count, "release the semaphore", MAX_PERMITS);
    const cells = this.#live("release the semaphore");
    for (;;) {
      const c = Atomics.load(cells, 0);
      if (c > MAX_PERMITS - count) {
        throw new RangeError(`Cannot release ${count} permits: the semaphore would hold more than 2^31 - 1`);
      }
      if (Atomics.compareExchange(cells, 0, c, c + count) === c) break;
    }
    // Not "> 0": a wake-up must not depend on the count being sane (see the module doc).
    if (Atomics.load(cells, 1) !== 0) this.#futex.wake(count);
  }

  /**
   * Takes a permit, blocking the thread until one is available.
   *
   * A `signal` is checked on entry and whenever the wait wakes (at least every 250 ms); nothing
   * else runs on this thread while it blocks, so nothing can abort the signal meanwhile: bound the
   * wait with `timeout`.
   *
   * @throws {TimeoutError} after `options.timeout` ms
   * @throws {TypeError} for bad options or a closed segment; the signal's reason when it is aborted
   */
  acquireSync(options?: WaitOptions): void {
    const o = options === undefined ? NO_WAIT : checkWaitOptions(options, "acquire the semaphore");
    o.signal?.throwIfAborted();
    if (this.#spin()) return;
    this.#futex.runSync(this.#acquireLoop(o));
  }

  /**
   * Takes a permit, waiting without blocking the event loop.
   *
   * @throws {TimeoutError} after `options.timeout` ms
   * @throws {TypeError} for bad options or a closed segment; the signal's reason when it is aborted
   */
  async acquire(options?: WaitOptions): Promise<void> {
    const o = options === undefined ? NO_WAIT : checkWaitOptions(options, "acquire the semaphore");
    o.signal?.throwIfAborted();
    if (this.#spin()) return;
    await this.#futex.runAsync(this.#acquireLoop(o), o.signal);
  }

  /** Takes a permit, sleeping while there is none; counts itself among the sleepers meanwhile. */
  *#acquireLoop(o: CheckedWait): Generator<Sleep, void, WaitResult> {
    for (;;) {
      o.signal?.throwIfAborted();
      if (this.tryAcquire()) return;
      const now = performance.now();
      if (now >= o.deadline) throw this.#timeout(o.timeout);
      const cells = this.#cells;
      addSleeper(cells, 1);
      try {
        // Sleeps only while the permits are still what we saw (0, or a corrupted negative count):
        // a release between our check and the sleep is seen.
        const c = Atomics.load(cells, 0);
        if (c > 0) continue;
        yield [c, Math.min(o.deadline - now, SLICE_MS), o.deadline - now];
      } finally {
        if (cells.length !== 0) Atomics.sub(cells, 1, 1);
      }
    }
  }

  /** The cells, or a TypeError saying the segment is closed (a detached view has length 0). */
  #live(action: string): Int32Array {
    const cells = this.#cells;
    if (cells.length === 0) throw closedError(this.#shm, action);
    return cells;
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
