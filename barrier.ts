/**
 * A reusable barrier that lives in shared memory (4 bytes per party): `parties` threads or
 * processes wait until all of them have arrived, then all go on together.
 *
 * ## Layout (`Barrier.byteLength(parties)` = 4 × `parties` bytes, at a byte offset that is a multiple of 4)
 *
 * | offset | type | meaning |
 * |---|---|---|
 * | 0 | Int32 | bits 0–15: parties arrived in the current round; bits 16–30: round number (wraps around); bit 31: the previous round was broken |
 * | 4 + 4 i | Int32 | slot i (i from 0 to `parties` − 2): the owner id of a party waiting now (bits 0–29, see `_sync/owner.ts`) and the low 2 bits of its round (bits 30–31); 0 when free |
 *
 * A zero-filled region is a barrier nobody has reached. The first word holds the count and the
 * round, so arriving, releasing, withdrawing (after a timeout or an abort) and breaking are single
 * compare-exchanges. Every process must pass the same `parties` (at most 65,535).
 *
 * ## A party that dies while waiting
 * Each waiting party writes its owner id into a slot right after it arrives, and every 250 ms the
 * slots of the round are looked at (by each blocked thread; for all the async waits of a process,
 * once, by its waiter table). When a waiting party has died (killed, crashed, exited) the round is
 * **broken**: every party waiting in it throws a {@linkcode BrokenBarrierError} within about
 * 250 ms (more for very large barriers, where one look probes at most 64 threads),
 * and the barrier starts a fresh round at once, so the survivors (and a process restarted in the
 * dead one's place) can wait again. A party that dies in the few instructions between arriving and
 * writing its slot is not seen: the others wait until their `timeout`, which is why waits take one.
 * A party whose `SharedMemory` is closed while it waits (the wait rejects with a TypeError) stays
 * counted in its round, as its process still lives: close a handle only when no wait on it is
 * pending.
 *
 * @module
 */

import type { SharedMemory } from "./shared_memory.ts";
import { asyncWaitsWatched, FutexWord, type Sleep, type WaitResult } from "./_sync/futex.ts";
import { ID_MASK, ownerStatus, selfId, tidOf } from "./_sync/owner.ts";
import { BrokenBarrierError, TimeoutError } from "./errors.ts";
import { closedError, NO_WAIT, regionOf, SLICE_MS } from "./_sync/region.ts";
import { type CheckedWait, checkWaitOptions, describe, type WaitOptions } from "./_validate.ts";

const ARRIVED = 0xffff;
const ROUND_SHIFT = 16;
const ROUND_MASK = 0x7fff;
/** Bit 31 of the first word: the round before the current one was broken. */
const BROKEN = 1 << 31;
/** Bits 30–31 of a slot: the low 2 bits of the round its party waits in. */
const TAG_SHIFT = 30;
/** The thread id part of an owner id: 0 is no thread (a corrupted slot, never probed). */
const TID_PART = 0x3f_ffff;
/** How many threads one look at the slots probes at most (large barriers are covered in turns). */
const PROBES = 64;

const roundOf = (w: number) => (w >>> ROUND_SHIFT) & ROUND_MASK;

/**
 * A barrier in shared memory for a fixed number of parties.
 *
 * @example Two parties (here two async tasks; usually two processes) start together
 * ```ts
 * import { Barrier, SharedMemory } from "@x/shm";
 *
 * using shm = SharedMemory.create({ size: Barrier.byteLength(2) });
 * const barrier = new Barrier(shm, 0, 2);
 * const [a, b] = await Promise.all([barrier.wait({ timeout: 5_000 }), barrier.wait({ timeout: 5_000 })]);
 * console.log(a + b); // 1: arrival indexes 0 and 1
 * ```
 */
export class Barrier {
  /**
   * Bytes a barrier for `parties` parties occupies in the segment: 4 per party.
   *
   * @throws {TypeError} when `parties` is not a number
   * @throws {RangeError} when `parties` is not an integer from 1 to 65,535
   */
  static byteLength(parties: number): number {
    return 4 * checkParties(parties);
  }

  #shm: SharedMemory;
  #futex: FutexWord;
  #cells: Int32Array;
  #parties: number;
  /** Where the next probe of the slots starts. */
  #probeFrom = 0;

  /**
   * A handle on the barrier at `byteOffset` of `shm` (a multiple of 4) for `parties` parties; it
   * spans `Barrier.byteLength(parties)` bytes.
   *
   * @throws {TypeError} when `shm` is not an open SharedMemory, `byteOffset` or `parties` not a
   * number, or the mapping is read-only
   * @throws {RangeError} when the region is misaligned or does not fit, or `parties` is not an
   * integer from 1 to 65,535
   */
  constructor(shm: SharedMemory, byteOffset: number, parties: number) {
    checkParties(parties);
    this.#cells = regionOf(shm, byteOffset, 4 * parties, "barrier");
    this.#shm = shm;
    this.#futex = new FutexWord(shm, byteOffset, "place a barrier");
    this.#parties = parties;
  }

  /** How many parties the barrier waits for. */
  get parties(): number {
    return this.#parties;
  }

  /** How many parties have arrived in the current round. */
  get waiting(): number {
    return Atomics.load(this.#live("read the barrier"), 0) & ARRIVED;
  }

  /**
   * Arrives and waits, without blocking the event loop, until all parties have arrived.
   *
   * @returns this party's arrival index in the round, from 0 to `parties - 1` (the last to arrive
   * gets `parties - 1`)
   * @throws {TimeoutError} after `options.timeout` ms; this party is withdrawn from the round
   * @throws {BrokenBarrierError} when a party waiting in the round died; the barrier starts a fresh
   * round
   * @throws {TypeError} for bad options or a closed segment; the signal's reason when it is aborted
   * (this party is withdrawn from the round)
   */
  async wait(options?: WaitOptions): Promise<number> {
    const o = this.#check(options);
    return await this.#futex.runAsync(this.#waitLoop(o, false), o.signal);
  }

  /**
   * Like {@linkcode Barrier.wait}, but blocks the thread. A `signal` is checked on entry and
   * whenever the wait wakes (at least every 250 ms); nothing else runs on this thread while it
   * blocks, so nothing can abort the signal meanwhile: bound the wait with `timeout`.
   *
   * @returns this party's arrival index in the round, from 0 to `parties - 1`
   * @throws {TimeoutError} after `options.timeout` ms; this party is withdrawn from the round
   * @throws {BrokenBarrierError} when a party waiting in the round died
   * @throws {TypeError} for bad options or a closed segment; the signal's reason when it is aborted
   */
  waitSync(options?: WaitOptions): number {
    return this.#futex.runSync(this.#waitLoop(this.#check(options), true));
  }

  #check(options: WaitOptions | undefined): CheckedWait {
    const o = options === undefined ? NO_WAIT : checkWaitOptions(options, "wait at the barrier");
    this.#live("wait at the barrier");
    o.signal?.throwIfAborted();
    return o;
  }

  /**
   * Arrives, then sleeps until the round changes; withdraws at the deadline or on abort, and
   * breaks the round when a waiting party died. An async wait on waiter threads leaves the probes
   * of the other parties to the waiter table (the sleep's `watch`: one per round and count each
   * slice, for all the waits of this process), which wakes it with `"dead"` when one died.
   */
  *#waitLoop(o: CheckedWait, sync: boolean): Generator<Sleep, number, WaitResult> {
    const cells = this.#cells;
    const [index, round] = this.#arrive();
    if (index === this.#parties - 1) return index;
    const slot = this.#claimSlot(round, index);
    let lastProbe = performance.now();
    let dead = 0;
    /** The dead party this wait's own `watch` found (another wait's may have run instead). */
    let found = 0;
    let result: WaitResult = "ok";
    try {
      for (;;) {
        if (cells.length === 0) throw closedError(this.#shm, "wait at the barrier");
        const w = Atomics.load(cells, 0);
        if (roundOf(w) !== round) return this.#passed(w, round, index, dead);
        const now = performance.now();
        const shared = !sync && asyncWaitsWatched();
        if (result === "dead" || (!shared && now - lastProbe >= SLICE_MS)) {
          lastProbe = now;
          const told = result === "dead";
          result = "ok";
          dead = told ? found : this.#deadParty(round, slot);
          if (told || dead !== 0) {
            this.#break(round);
            continue; // the round ended: broken by us or another waiter, or completed just before
          }
        }
        if (o.signal?.aborted || now >= o.deadline) {
          if (this.#withdraw(round, slot)) {
            throw o.signal?.aborted ? o.signal.reason : this.#timeout(o.timeout);
          }
          continue; // the round ended meanwhile
        }
        const watch = shared ? () => (found = this.#deadParty(round, slot)) !== 0 : undefined;
        try {
          result = yield [w, Math.min(o.deadline - now, SLICE_MS), o.deadline - now, watch];
        } catch (error) {
          // The signal aborted the sleep (or the segment closed): withdraw, unless the round ended.
          if (cells.length === 0 || this.#withdraw(round, slot)) throw error;
        }
      }
    } finally {
      if (slot > 0 && cells.length !== 0) Atomics.compareExchange(cells, slot, this.#slotValue(round), 0);
    }
  }

  /**
   * The outcome for a party of `round` once the first word shows another round: its index, or a
   * BrokenBarrierError when the next round began broken (`dead`: the dead party this one found).
   */
  #passed(w: number, round: number, index: number, dead: number): number {
    if ((w & BROKEN) !== 0 && roundOf(w) === ((round + 1) & ROUND_MASK)) {
      const who = dead === 0 ? "a party" : `party ${tidOf(dead)}`;
      throw new BrokenBarrierError(
        `Cannot pass the barrier: ${who} died while waiting in the round, so the round was broken (the barrier starts a new one)`,
      );
    }
    return index;
  }

  /** Counts this party in; the last one starts the next round and wakes everyone. */
  #arrive(): [index: number, round: number] {
    const cells = this.#cells;
    for (;;) {
      const w = Atomics.load(cells, 0);
      const arrived = w & ARRIVED;
      const round = roundOf(w);
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
        this.#clearSlots(round);
        return [arrived, round];
      }
      if (Atomics.compareExchange(cells, 0, w, w + 1) === w) return [arrived, round];
    }
  }

  /** This thread's slot value in `round`. */
  #slotValue(round: number): number {
    return selfId() | ((round & 3) << TAG_SHIFT);
  }

  /**
   * Writes this party's owner id into a free slot (or one of an earlier round), starting at the
   * slot of its arrival index (free unless parties withdrew); 0 if none is left.
   */
  #claimSlot(round: number, index: number): number {
    const cells = this.#cells;
    const tag = round & 3;
    const mine = this.#slotValue(round);
    const slots = this.#parties - 1;
    for (let k = 0; k < slots; k++) {
      const i = 1 + (index + k) % slots;
      const s = Atomics.load(cells, i);
      if (s !== 0 && s >>> TAG_SHIFT === tag) continue;
      if (Atomics.compareExchange(cells, i, s, mine) === s) return i;
    }
    return 0; // only with handles that disagree on parties: this party goes unwatched
  }

  /** Frees the slots of a round that ended (their parties free their own too; this covers the dead). */
  #clearSlots(round: number): void {
    const cells = this.#cells;
    const tag = round & 3;
    for (let i = 1; i < this.#parties; i++) {
      const s = Atomics.load(cells, i);
      if (s !== 0 && s >>> TAG_SHIFT === tag) Atomics.compareExchange(cells, i, s, 0);
    }
  }

  /**
   * The owner id of a dead party waiting in `round`, probing at most PROBES threads (each once,
   * however many slots it holds: a process's async waits all hold its event loop thread's id),
   * from where the last call stopped; 0 if none.
   */
  #deadParty(round: number, own: number): number {
    const cells = this.#cells;
    if (cells.length === 0) return 0;
    const tag = round & 3;
    const me = selfId();
    const slots = this.#parties - 1;
    const seen = new Set<number>();
    let k = 0;
    for (; k < slots && seen.size < PROBES; k++) {
      const i = 1 + (this.#probeFrom + k) % slots;
      if (i === own) continue;
      const s = Atomics.load(cells, i);
      const id = s & ID_MASK;
      if (s === 0 || s >>> TAG_SHIFT !== tag || (id & TID_PART) === 0 || id === me || seen.has(id)) continue;
      seen.add(id);
      if (ownerStatus(id, 0) === "dead") {
        this.#probeFrom = (this.#probeFrom + k) % slots;
        return id;
      }
    }
    this.#probeFrom = (this.#probeFrom + k) % slots;
    return 0;
  }

  /** Ends `round` as broken, unless it ended already, and wakes everyone. */
  #break(round: number): void {
    const cells = this.#cells;
    for (;;) {
      const w = Atomics.load(cells, 0);
      if (roundOf(w) !== round) return; // ended meanwhile: completed, or broken by another waiter
      const next = (((round + 1) & ROUND_MASK) << ROUND_SHIFT) | BROKEN;
      if (Atomics.compareExchange(cells, 0, w, next) === w) {
        this.#futex.wake();
        this.#clearSlots(round);
        return;
      }
    }
  }

  /** Takes this party back out of `round`; false when the round ended meanwhile. */
  #withdraw(round: number, slot: number): boolean {
    const cells = this.#cells;
    if (slot > 0) Atomics.compareExchange(cells, slot, this.#slotValue(round), 0);
    for (;;) {
      const w = Atomics.load(cells, 0);
      if (roundOf(w) !== round) return false;
      if (Atomics.compareExchange(cells, 0, w, w - 1) === w) return true;
    }
  }

  /** The cells, or a TypeError saying the segment is closed (a detached view has length 0). */
  #live(action: string): Int32Array {
    const cells = this.#cells;
    if (cells.length === 0) throw closedError(this.#shm, action);
    return cells;
  }

  #timeout(timeout: number): TimeoutError {
    return new TimeoutError(
      `Cannot pass the barrier: not all ${this.#parties} parties arrived within ${timeout} ms`,
      timeout,
    );
  }
}

function checkParties(parties: unknown): number {
  if (typeof parties !== "number") {
    throw new TypeError(`Cannot place a barrier: parties must be a number, got ${describe(parties)}`);
  }
  if (!Number.isInteger(parties) || parties < 1 || parties > ARRIVED) {
    throw new RangeError(
      `Cannot place a barrier: parties must be an integer from 1 to 65535, got ${parties}`,
    );
  }
  return parties;
}
