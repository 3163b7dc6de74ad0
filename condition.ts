/**
 * A condition variable that lives in 8 bytes of shared memory, used together with a `Mutex`.
 *
 * ## Layout (`Condition.BYTE_LENGTH` = 8 bytes, at a byte offset that is a multiple of 4)
 *
 * | offset | type | meaning |
 * |---|---|---|
 * | 0 | Int32 | sequence number, bumped by every `notify`/`notifyAll` (wraps around) |
 * | 4 | Int32 | threads sleeping in `wait` (so `notify` can skip the wake-up call when it is 0) |
 *
 * A zero-filled region is a condition nobody waits on. `wait` reads the sequence number while
 * holding the mutex, then unlocks and sleeps only while the number is unchanged, so a `notify` that
 * comes between the unlock and the sleep is never lost. As with every condition variable, a wait can
 * end without a notification: wait in a loop that re-checks the shared state.
 *
 * No wake-up depends on the sleeper count being right: `notify` wakes whenever it is not exactly
 * 0, a waiter that finds it negative (a corrupted word) sets it to 2^30 (from then on every notify
 * makes the wake call), and every sleep in the kernel ends after 250 ms at most to look at the
 * sequence number again (a waiter that finds it changed returns `true`, as after a notify).
 *
 * @module
 */

import type { SharedMemory } from "./shared_memory.ts";
import { FutexWord, type Sleep, type WaitResult } from "./_sync/futex.ts";
import { NotHeldError } from "./errors.ts";
import { addSleeper, checkCount, closedError, NO_WAIT, regionOf, SLICE_MS } from "./_sync/region.ts";
import { type CheckedWait, checkWaitOptions, describe, type WaitOptions } from "./_validate.ts";
import { Mutex } from "./mutex.ts";

/**
 * A condition variable in shared memory: sleep until another thread or process says the shared
 * state changed.
 *
 * @example A consumer waiting for an item a timer produces
 * ```ts
 * import { Condition, Mutex, SharedMemory } from "@x/shm";
 *
 * using shm = SharedMemory.create({ size: 64 });
 * const mutex = new Mutex(shm, 0);
 * const nonEmpty = new Condition(shm, 8);
 * const count = shm.view(Int32Array, 16, 1);
 *
 * setTimeout(async () => {             // the producer (usually another process)
 *   using _guard = await mutex.lock();
 *   count[0]! += 1;
 *   nonEmpty.notify();
 * }, 10);
 *
 * using _guard = await mutex.lock();
 * while (count[0] === 0) await nonEmpty.wait(mutex, { timeout: 5_000 });
 * count[0]! -= 1; // take the item
 * ```
 */
export class Condition {
  /** Bytes a condition occupies in the segment. */
  static readonly BYTE_LENGTH: number = 8;

  #shm: SharedMemory;
  #futex: FutexWord;
  #cells: Int32Array;

  /**
   * A handle on the condition at `byteOffset` of `shm` (a multiple of 4; `BYTE_LENGTH` bytes).
   * Creating a handle changes nothing in memory.
   *
   * @throws {TypeError} when `shm` is not an open SharedMemory, `byteOffset` not a number, or the
   * mapping is read-only
   * @throws {RangeError} when the region is misaligned or does not fit in the segment
   */
  constructor(shm: SharedMemory, byteOffset: number) {
    this.#cells = regionOf(shm, byteOffset, Condition.BYTE_LENGTH, "condition");
    this.#shm = shm;
    this.#futex = new FutexWord(shm, byteOffset, "place a condition");
  }

  /**
   * Unlocks `mutex`, sleeps until notified (or the timeout passes, or the signal aborts), and locks
   * `mutex` again, without blocking the event loop. The calling thread must hold `mutex`.
   *
   * A timeout returns `false` rather than throwing, as Python's `Condition.wait` and C++'s
   * `condition_variable::wait_for` do: the mutex is locked again whatever ended the wait, so the
   * caller goes on holding it and re-checks its predicate either way (a wait can also end without
   * a notification). An aborted signal, too, locks the mutex again before the promise rejects.
   *
   * @returns false when the timeout passed, true otherwise (notified, or a spurious wake-up)
   * @throws {TypeError} when `mutex` is not a Mutex, for bad options, or a closed segment
   * @throws {NotHeldError} when the calling thread does not hold `mutex`
   * @throws the signal's reason when it is aborted (the mutex is held again by then)
   */
  async wait(mutex: Mutex, options?: WaitOptions): Promise<boolean> {
    const o = this.#check(mutex, options);
    const seq = this.#enter(mutex);
    try {
      return await this.#futex.runAsync(this.#sleepLoop(seq, o), o.signal);
    } finally {
      this.#leave();
      await mutex.lock();
    }
  }

  /**
   * Like {@linkcode Condition.wait}, but blocks the thread. A `signal` is checked on entry and
   * whenever the wait wakes (at least every 250 ms); nothing else runs on this thread while it
   * blocks, so nothing can abort the signal meanwhile: bound the wait with `timeout`.
   *
   * @returns false when the timeout passed, true otherwise (notified, or a spurious wake-up)
   * @throws {TypeError} when `mutex` is not a Mutex, for bad options, or a closed segment
   * @throws {NotHeldError} when the calling thread does not hold `mutex`
   */
  waitSync(mutex: Mutex, options?: WaitOptions): boolean {
    const o = this.#check(mutex, options);
    const seq = this.#enter(mutex);
    try {
      return this.#futex.runSync(this.#sleepLoop(seq, o));
    } finally {
      this.#leave();
      mutex.lockSync();
    }
  }

  /**
   * Wakes up to `count` threads waiting on this condition (default one). Call it while holding the
   * mutex, after changing the shared state, or right after unlocking.
   *
   * @throws {TypeError} when `count` is not a number, or the segment is closed
   * @throws {RangeError} when `count` is not a positive integer
   */
  notify(count: number = 1): void {
    checkCount(count, "notify the condition");
    const cells = this.#live("notify the condition");
    Atomics.add(cells, 0, 1);
    // Not "> 0": a wake-up must not depend on the count being sane (see the module doc).
    if (Atomics.load(cells, 1) !== 0) this.#futex.wake(count);
  }

  /**
   * Wakes every thread waiting on this condition.
   *
   * @throws {TypeError} when the segment is closed
   */
  notifyAll(): void {
    const cells = this.#live("notify the condition");
    Atomics.add(cells, 0, 1);
    if (Atomics.load(cells, 1) !== 0) this.#futex.wake();
  }

  /** The checks of a wait, before anything changes. */
  #check(mutex: unknown, options: WaitOptions | undefined): CheckedWait {
    if (!(mutex instanceof Mutex)) {
      throw new TypeError(`Cannot wait on the condition: expected a Mutex, got ${describe(mutex)}`);
    }
    const o = options === undefined ? NO_WAIT : checkWaitOptions(options, "wait on the condition");
    this.#live("wait on the condition");
    o.signal?.throwIfAborted();
    return o;
  }

  /** Records a sleeper and the sequence number to sleep on, then unlocks `mutex`. */
  #enter(mutex: Mutex): number {
    if (!mutex.heldByThisThread) {
      throw new NotHeldError("Cannot wait on the condition: this thread does not hold the mutex");
    }
    const cells = this.#cells;
    const seq = Atomics.load(cells, 0);
    addSleeper(cells, 1);
    mutex.unlock();
    return seq;
  }

  /** Counts this waiter out again (unless the segment was closed meanwhile). */
  #leave(): void {
    if (this.#cells.length !== 0) Atomics.sub(this.#cells, 1, 1);
  }

  /** Sleeps while the sequence number is `seq`: true when it moved (or a wake-up), false at the deadline. */
  *#sleepLoop(seq: number, o: CheckedWait): Generator<Sleep, boolean, WaitResult> {
    const cells = this.#cells;
    for (;;) {
      o.signal?.throwIfAborted();
      if (cells.length === 0) throw closedError(this.#shm, "wait on the condition");
      if (Atomics.load(cells, 0) !== seq) return true;
      const now = performance.now();
      if (now >= o.deadline) return false;
      if ((yield [seq, Math.min(o.deadline - now, SLICE_MS), o.deadline - now]) === "ok") return true;
    }
  }

  /** The cells, or a TypeError saying the segment is closed (a detached view has length 0). */
  #live(action: string): Int32Array {
    const cells = this.#cells;
    if (cells.length === 0) throw closedError(this.#shm, action);
    return cells;
  }
}
