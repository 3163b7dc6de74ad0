/**
 * A condition variable that lives in 8 bytes of shared memory, used together with a `Mutex`.
 *
 * ## Layout (`Condition.BYTE_LENGTH` = 8 bytes, at a byte offset that is a multiple of 4)
 *
 * | offset | type | meaning |
 * |---|---|---|
 * | 0 | Int32 | sequence number, bumped by every `notify`/`notifyAll` (wraps around) |
 * | 4 | Int32 | threads sleeping in `wait` (so `notify` knows whether to make a system call) |
 *
 * A zero-filled region is a condition nobody waits on. `wait` reads the sequence number while
 * holding the mutex, then unlocks and sleeps only while the number is unchanged, so a `notify` that
 * comes between the unlock and the sleep is never lost. As with every condition variable, a wait can
 * end without a notification: wait in a loop that re-checks the shared state.
 *
 * @module
 */

import type { SharedMemory } from "./shared_memory.ts";
import { FutexWord } from "./_sync/futex.ts";
import { NotHeldError } from "./errors.ts";
import { deadlineOf, regionOf } from "./_sync/region.ts";
import type { Mutex } from "./mutex.ts";

/** Options of {@linkcode Condition.wait} and {@linkcode Condition.waitSync}. */
export interface ConditionWaitOptions {
  /** Stop waiting after this many milliseconds; the mutex is locked again either way. */
  timeout?: number;
}

/**
 * A condition variable in shared memory: sleep until another thread or process says the shared
 * state changed.
 *
 * @example A consumer waiting for items
 * ```ts
 * import { Condition, Mutex, SharedMemory } from "@x/shm";
 *
 * using shm = SharedMemory.openOrCreate("queue", { size: 4096 });
 * const mutex = new Mutex(shm, 0);
 * const nonEmpty = new Condition(shm, 8);
 * const count = shm.view(Int32Array, 16, 1);
 *
 * using _guard = await mutex.lock();
 * while (count[0] === 0) await nonEmpty.wait(mutex);
 * count[0]--; // take an item
 * // A producer does: lock; count[0]++; nonEmpty.notify(); unlock.
 * ```
 */
export class Condition {
  /** Bytes a condition occupies in the segment. */
  static readonly BYTE_LENGTH: number = 8;

  #futex: FutexWord;
  #cells: Int32Array;

  /**
   * A handle on the condition at `byteOffset` of `shm` (a multiple of 4; `BYTE_LENGTH` bytes).
   * Creating a handle changes nothing in memory.
   *
   * @throws {RangeError} when the region is misaligned or does not fit in the segment
   * @throws {TypeError} when the mapping is read-only
   */
  constructor(shm: SharedMemory, byteOffset: number) {
    this.#cells = regionOf(shm, byteOffset, Condition.BYTE_LENGTH, "condition");
    this.#futex = new FutexWord(shm, byteOffset);
  }

  /**
   * Unlocks `mutex`, sleeps until notified (or the timeout passes), and locks `mutex` again, without
   * blocking the event loop. The calling thread must hold `mutex`.
   *
   * @returns false when the timeout passed, true otherwise (notified, or a spurious wake-up)
   * @throws {NotHeldError} when the calling thread does not hold `mutex`
   */
  async wait(mutex: Mutex, options: ConditionWaitOptions = {}): Promise<boolean> {
    const deadline = deadlineOf(options.timeout, "wait on the condition");
    const seq = this.#enter(mutex);
    let result;
    try {
      const left = deadline - performance.now();
      result = await this.#futex.waitAsync(seq, Math.max(0, left));
    } finally {
      Atomics.sub(this.#cells, 1, 1);
      await mutex.lock();
    }
    return result !== "timed-out";
  }

  /**
   * Like {@linkcode Condition.wait}, but blocks the thread.
   *
   * @returns false when the timeout passed, true otherwise (notified, or a spurious wake-up)
   * @throws {NotHeldError} when the calling thread does not hold `mutex`
   */
  waitSync(mutex: Mutex, options: ConditionWaitOptions = {}): boolean {
    const deadline = deadlineOf(options.timeout, "wait on the condition");
    const seq = this.#enter(mutex);
    let result;
    try {
      const left = deadline - performance.now();
      result = this.#futex.waitSync(seq, Math.max(0, left));
    } finally {
      Atomics.sub(this.#cells, 1, 1);
      mutex.lockSync();
    }
    return result !== "timed-out";
  }

  /**
   * Wakes up to `count` threads waiting on this condition (default one). Call it while holding the
   * mutex, after changing the shared state, or right after unlocking.
   */
  notify(count: number = 1): void {
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`Cannot notify the condition: count must be a positive integer, got ${count}`);
    }
    Atomics.add(this.#cells, 0, 1);
    if (Atomics.load(this.#cells, 1) > 0) this.#futex.wake(count);
  }

  /** Wakes every thread waiting on this condition. */
  notifyAll(): void {
    Atomics.add(this.#cells, 0, 1);
    if (Atomics.load(this.#cells, 1) > 0) this.#futex.wake();
  }

  /** Records a sleeper and the sequence number to sleep on, then unlocks `mutex`. */
  #enter(mutex: Mutex): number {
    if (!mutex.heldByThisThread) {
      throw new NotHeldError("Cannot wait on the condition: this thread does not hold the mutex");
    }
    const seq = Atomics.load(this.#cells, 0);
    Atomics.add(this.#cells, 1, 1);
    mutex.unlock();
    return seq;
  }
}
