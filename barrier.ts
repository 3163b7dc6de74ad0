/**
 * A reusable barrier that lives in 4 bytes of shared memory: `parties` threads or processes wait
 * until all of them have arrived, then all go on together.
 *
 * ## Layout (`Barrier.BYTE_LENGTH` = 4 bytes, at a byte offset that is a multiple of 4)
 *
 * | bits of the Int32 at offset 0 | meaning |
 * |---|---|
 * | 0–15 | parties arrived in the current round |
 * | 16–30 | round number (wraps around) |
 *
 * A zero-filled region is a barrier nobody has reached. One word holds both fields, so arriving,
 * releasing and withdrawing (after a timeout) are single compare-exchanges. Every process must pass
 * the same `parties` (at most 65,535). A process that dies after arriving still counts as arrived.
 *
 * @module
 */

import type { SharedMemory } from "./shared_memory.ts";
import { FutexWord, type Sleep, type WaitResult } from "./_sync/futex.ts";
import { TimeoutError } from "./errors.ts";
import { deadlineOf, regionOf } from "./_sync/region.ts";

const ARRIVED = 0xffff;
const ROUND_SHIFT = 16;
const ROUND_MASK = 0x7fff;

/** Options of {@linkcode Barrier.wait} and {@linkcode Barrier.waitSync}. */
export interface BarrierWaitOptions {
  /** Withdraw and throw a `TimeoutError` after this many milliseconds (default: wait forever). */
  timeout?: number;
}

/**
 * A barrier in shared memory for a fixed number of parties.
 *
 * @example Start four workers at the same moment
 * ```ts
 * import { Barrier, SharedMemory } from "@x/shm";
 *
 * using shm = SharedMemory.openOrCreate("start-line", { size: 64 });
 * const barrier = new Barrier(shm, 0, 4);
 * const index = await barrier.wait(); // 0..3, in order of arrival
 * if (index === 3) console.log("I arrived last");
 * ```
 */
export class Barrier {
  /** Bytes a barrier occupies in the segment. */
  static readonly BYTE_LENGTH: number = 4;

  #futex: FutexWord;
  #cells: Int32Array;
  #parties: number;

  /**
   * A handle on the barrier at `byteOffset` of `shm` (a multiple of 4) for `parties` parties.
   *
   * @throws {RangeError} when the region is misaligned or does not fit, or `parties` is not an
   * integer from 1 to 65,535
   * @throws {TypeError} when the mapping is read-only
   */
  constructor(shm: SharedMemory, byteOffset: number, parties: number) {
    if (!Number.isInteger(parties) || parties < 1 || parties > ARRIVED) {
      throw new RangeError(
        `Cannot place a barrier: parties must be an integer from 1 to 65535, got ${parties}`,
      );
    }
    this.#cells = regionOf(shm, byteOffset, Barrier.BYTE_LENGTH, "barrier");
    this.#futex = new FutexWord(shm, byteOffset);
    this.#parties = parties;
  }

  /** How many parties the barrier waits for. */
  get parties(): number {
    return this.#parties;
  }

  /** How many parties have arrived in the current round. */
  get waiting(): number {
    return Atomics.load(this.#cells, 0) & ARRIVED;
  }

  /**
   * Arrives and waits, without blocking the event loop, until all parties have arrived.
   *
   * @returns this party's arrival index in the round, from 0 to `parties - 1` (the last to arrive
   * gets `parties - 1`)
   * @throws {TimeoutError} after `options.timeout` ms; this party is withdrawn from the round
   */
  wait(options: BarrierWaitOptions = {}): Promise<number> {
    return this.#futex.runAsync(this.#waitLoop(options));
  }

  /**
   * Like {@linkcode Barrier.wait}, but blocks the thread.
   *
   * @returns this party's arrival index in the round, from 0 to `parties - 1`
   * @throws {TimeoutError} after `options.timeout` ms; this party is withdrawn from the round
   */
  waitSync(options: BarrierWaitOptions = {}): number {
    return this.#futex.runSync(this.#waitLoop(options));
  }

  /** Arrives, then sleeps until the round changes (or the deadline, which withdraws this party). */
  *#waitLoop(options: BarrierWaitOptions): Generator<Sleep, number, WaitResult> {
    const deadline = deadlineOf(options.timeout, "wait at the barrier");
    const [index, round] = this.#arrive();
    if (index === this.#parties - 1) return index;
    const cells = this.#cells;
    for (;;) {
      const w = Atomics.load(cells, 0);
      if ((w >>> ROUND_SHIFT & ROUND_MASK) !== round) return index;
      const left = deadline - performance.now();
      if (left <= 0) {
        if (this.#withdraw(round)) throw this.#timeout(options.timeout!);
        return index;
      }
      yield [w, left];
    }
  }

  /** Counts this party in; the last one starts the next round and wakes everyone. */
  #arrive(): [index: number, round: number] {
    const cells = this.#cells;
    for (;;) {
      const w = Atomics.load(cells, 0);
      const arrived = w & ARRIVED;
      const round = w >>> ROUND_SHIFT & ROUND_MASK;
      if (arrived >= this.#parties) {
        throw new RangeError(
          `Cannot wait at the barrier: ${arrived} parties are already waiting and this handle expects ${this.#parties}` +
            " (every process must pass the same parties)",
        );
      }
      if (arrived + 1 === this.#parties) {
        const next = ((round + 1) & ROUND_MASK) << ROUND_SHIFT;
        if (Atomics.compareExchange(cells, 0, w, next) !== w) continue;
        this.#futex.wake();
        return [arrived, round];
      }
      if (Atomics.compareExchange(cells, 0, w, w + 1) === w) return [arrived, round];
    }
  }

  /** Takes this party back out of `round`; false when the round was released meanwhile. */
  #withdraw(round: number): boolean {
    const cells = this.#cells;
    for (;;) {
      const w = Atomics.load(cells, 0);
      if ((w >>> ROUND_SHIFT & ROUND_MASK) !== round) return false;
      if (Atomics.compareExchange(cells, 0, w, w - 1) === w) return true;
    }
  }

  #timeout(timeout: number): TimeoutError {
    return new TimeoutError(
      `Cannot pass the barrier: not all ${this.#parties} parties arrived within ${timeout} ms`,
      timeout,
    );
  }
}
