/**
 * A mutex that lives in 8 bytes of shared memory, usable from every process (Deno or Bun) that maps
 * the segment.
 *
 * ## Layout (`Mutex.BYTE_LENGTH` = 8 bytes, at a byte offset that is a multiple of 4)
 *
 * | offset | type | meaning |
 * |---|---|---|
 * | 0 | Int32 | lock word: 0 = unlocked; otherwise the holder's owner id (bits 0–29) and bit 30 set when a thread may be sleeping on it |
 * | 4 | Int32 | encoded start time of the last thread that took it (0: never written), for PID-reuse checks |
 *
 * A zero-filled region is an unlocked mutex, so nobody has to initialize it. Owner ids are described
 * in `_sync/owner.ts`: the thread id plus a hash of the thread's start time (Linux and Windows).
 *
 * ## Behaviour
 * - Uncontended `lock`/`unlock` are a compare-exchange and an exchange (plus two plain atomic stores):
 *   no FFI call. Under contention a locker spins briefly, then sleeps in the kernel (a futex on
 *   Linux, named semaphores on Windows).
 * - `lock()` is async and never blocks the event loop; `lockSync()` blocks the thread. The async
 *   `lock` calls of one handle that wait do so one at a time (the others queue in the process).
 * - Owner death: every 250 ms the holder is checked (by each blocked thread; for all the async
 *   waits of a process on the lock word, once, by the waiter table). When it has died
 *   (killed, crashed, exited without unlocking), the waiter takes the mutex over and is told so:
 *   `guard.ownerDied` and `mutex.ownerDied` are true, and the data the mutex protects may be
 *   half-updated. A lock word that names no holder at all (its thread id part is 0, as in
 *   `0x40000000` or `0x80000000`: only a corrupted word looks like that) is taken over the same
 *   way at once, never waited on.
 * - Every wait takes `{ timeout, signal }` ({@linkcode WaitOptions}), checked on entry. `lockSync`
 *   checks the signal on entry and each time it wakes (at least every 250 ms); nothing can abort a
 *   signal while the thread blocks, since aborting runs on that same thread.
 * - The mutex is not recursive. The holder is a thread: `lockSync()` on a mutex the thread holds
 *   throws rather than deadlocks; async `lock()` from the same thread waits for its release (so async
 *   tasks of one thread can share it).
 *
 * @module
 */

import type { SharedMemory } from "./shared_memory.ts";
import { asyncWaitsWatched, FutexWord, type Sleep, type WaitResult } from "./_sync/futex.ts";
import { ID_MASK, ownerStatus, selfId, selfStart, tidOf } from "./_sync/owner.ts";
import { NotHeldError, TimeoutError } from "./errors.ts";
import { closedError, NO_WAIT, regionOf, SLICE_MS, SPINS } from "./_sync/region.ts";
import { type CheckedWait, checkWaitOptions, type WaitOptions } from "./_validate.ts";
import { readinessOf } from "./_sync/readiness.ts";

/** Bit 30 of the lock word: a thread may be sleeping on it, so `unlock` must wake one. */
const WAITERS = 0x4000_0000;
/**
 * The thread id part of an owner id (see `_sync/owner.ts`). No thread has id 0 on any OS, so a
 * non-zero lock word whose id part is 0 (say `0x40000000`, `0x80000000`, `0xC0000000`) names no
 * holder at all: it comes from a corrupted word, and nobody could ever unlock it.
 */
const TID_PART = 0x3f_ffff;
/** How often a waiter checks whether the holder still lives (one sleep slice). */
const PROBE_MS = SLICE_MS;

/** What a Mutex passes to `new MutexGuard`: only a Mutex makes guards. */
const MINT = Symbol("MutexGuard");

/** A guard for a hold this thread just took. */
function guardOf(mutex: Mutex, ownerDied: boolean): MutexGuard {
  return new MutexGuard(mutex, ownerDied, MINT);
}

/**
 * Proof of holding a {@linkcode Mutex}: disposing of it (`using`) unlocks.
 *
 * @example
 * ```ts
 * import { Mutex, SharedMemory } from "@x/shm";
 *
 * using shm = SharedMemory.create({ size: 64 });
 * const mutex = new Mutex(shm, 0);
 * {
 *   using guard = mutex.lockSync();
 *   if (guard.ownerDied) console.log("the previous holder died: repair the data");
 * } // unlocked here
 * ```
 */
export class MutexGuard implements Disposable {
  #mutex: Mutex;
  #released = false;
  /** True when this hold was taken over from a holder that died without unlocking. */
  readonly ownerDied: boolean;

  /**
   * Guards are made by {@linkcode Mutex.lockSync}, {@linkcode Mutex.lock} and
   * {@linkcode Mutex.tryLock} only: a guard made any other way would prove nothing.
   *
   * @param token the Mutex's private token
   * @throws {TypeError} when called directly
   */
  constructor(mutex: Mutex, ownerDied: boolean, token?: symbol) {
    if (token !== MINT) {
      throw new TypeError(
        "Cannot make a mutex guard: guards come from lock(), lockSync() and tryLock() of a Mutex",
      );
    }
    this.#mutex = mutex;
    this.ownerDied = ownerDied;
  }

  /** Unlocks the mutex; a second call (or dispose after it) does nothing. */
  unlock(): void {
    if (this.#released) return;
    this.#released = true;
    this.#mutex.unlock();
  }

  /** Unlocks the mutex unless this guard (or the mutex itself) already did. */
  [Symbol.dispose](): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#mutex.heldByThisThread) this.#mutex.unlock();
  }
}

/**
 * A mutual-exclusion lock in shared memory, for threads of any process that maps the segment.
 *
 * @example Several processes incrementing one counter (each runs this)
 * ```ts
 * import { Mutex, SharedMemory } from "@x/shm";
 *
 * using shm = SharedMemory.openOrCreate("counter-example", { size: 64 });
 * const mutex = new Mutex(shm, 0);               // bytes 0..7
 * const counter = shm.view(Int32Array, 8, 1);    // protected by the mutex
 * for (let i = 0; i < 3; i++) {
 *   using _guard = await mutex.lock({ timeout: 5_000 });
 *   counter[0]! += 1;
 * }
 * ```
 */
export class Mutex {
  /** Bytes a mutex occupies in the segment. */
  static readonly BYTE_LENGTH: number = 8;

  #shm: SharedMemory;
  #futex: FutexWord;
  #cells: Int32Array;
  #ownerDied = false;
  /** A lock word whose holder showed a start-time mismatch on the last probe. */
  #suspect = 0;
  /** Async `lock` calls of this handle that wait: the first on the lock word, the others in `#turns`. */
  #waiting = 0;
  /** The queued async `lock` calls, first in, first out: each is called when its turn comes. */
  readonly #turns: (() => void)[] = [];
  /** The lock word last probed by {@linkcode Mutex.#deadNow}, when, and what was found. */
  #probed = { word: 0, at: -Infinity, dead: false };

  /**
   * A handle on the mutex at `byteOffset` of `shm` (a multiple of 4; `BYTE_LENGTH` bytes). Creating
   * a handle changes nothing in memory: zero bytes are an unlocked mutex.
   *
   * @throws {TypeError} when `shm` is not an open SharedMemory, `byteOffset` not a number, or the
   * mapping is read-only
   * @throws {RangeError} when the region is misaligned or does not fit in the segment
   */
  constructor(shm: SharedMemory, byteOffset: number) {
    this.#cells = regionOf(shm, byteOffset, Mutex.BYTE_LENGTH, "mutex");
    this.#shm = shm;
    this.#futex = new FutexWord(shm, byteOffset, "place a mutex");
    // For WaitSet: ready when free or its holder died (tryLock takes it over then); a sleeper sets
    // the waiters bit, as `lock` does, so unlock wakes.
    const cells = this.#cells;
    readinessOf.set(this, {
      lock: {
        word: this.#futex,
        ready: () => {
          const v = Atomics.load(this.#live("read the mutex"), 0);
          return v === 0 || this.#deadNow(v);
        },
        prepare: () => {
          for (;;) {
            const v = Atomics.load(cells, 0);
            if (v === 0) return null;
            if ((v & WAITERS) !== 0 || Atomics.compareExchange(cells, 0, v, v | WAITERS) === v) {
              return v | WAITERS;
            }
          }
        },
        watch: (v) => this.#deadNow(v),
        done: () => {},
      },
    });
  }

  /** Whether some thread (in any process) holds the mutex now. */
  get locked(): boolean {
    return Atomics.load(this.#live("read the mutex"), 0) !== 0;
  }

  /** Whether the calling thread holds the mutex. */
  get heldByThisThread(): boolean {
    return (Atomics.load(this.#live("read the mutex"), 0) & ID_MASK) === selfId();
  }

  /**
   * True when the last lock taken through this handle was taken over from a holder that died while
   * holding it: the protected data may be inconsistent.
   */
  get ownerDied(): boolean {
    return this.#ownerDied;
  }

  /**
   * Takes the mutex if it is free, without waiting. A mutex whose holder died is taken over (the
   * guard's `ownerDied` is true), as `lock` would: a lock word that names no holder at once, a dead
   * holder once a probe finds it dead (this handle probes a holder at most every 250 ms, so a
   * `tryLock` on a held mutex costs an FFI call only that often).
   *
   * @returns a guard that unlocks when disposed of, or null when the mutex is held by a live thread
   * (or by this one)
   * @throws {TypeError} when the segment is closed
   */
  tryLock(): MutexGuard | null {
    if (this.#tryTake()) return guardOf(this, false);
    const v = Atomics.load(this.#cells, 0);
    if (v === 0) return null; // freed meanwhile: taken by someone else first, or try again
    return this.#deadNow(v) && this.#takeOver(v, selfId()) ? guardOf(this, true) : null;
  }

  /**
   * Takes the mutex, blocking the thread until it is free.
   *
   * A `signal` is checked on entry and whenever the wait wakes; nothing else runs on this thread
   * while it blocks, so nothing can abort the signal meanwhile: bound the wait with `timeout`.
   *
   * @returns a guard that unlocks when disposed of; `guard.ownerDied` says whether the previous
   * holder died while holding it
   * @throws {TimeoutError} after `options.timeout` ms
   * @throws {Error} when this thread already holds the mutex (it is not recursive)
   * @throws {TypeError} for bad options or a closed segment; the signal's reason when it is aborted
   */
  lockSync(options?: WaitOptions): MutexGuard {
    let o = NO_WAIT;
    if (options !== undefined) {
      o = checkWaitOptions(options, "lock the mutex");
      o.signal?.throwIfAborted();
    }
    // #tryTake, written out: the call cost the uncontended lockSync about 2 ns under Deno.
    const cells = this.#cells;
    let was;
    try {
      was = Atomics.compareExchange(cells, 0, 0, selfId());
    } catch (error) {
      throw cells.length === 0 ? closedError(this.#shm, "lock the mutex") : error;
    }
    if (was === 0) {
      const start = selfStart();
      if (cells[1] !== start) cells[1] = start;
      this.#ownerDied = false;
      return new MutexGuard(this, false, MINT);
    }
    return this.#futex.runSync(this.#lockLoop(o, true));
  }

  /**
   * Takes the mutex, waiting without blocking the event loop.
   *
   * The async `lock` calls of one handle that have to wait do so one at a time: the first sleeps
   * on the lock word, the others queue behind it in this process, first in, first out (each with
   * its own timeout and signal), so a hand-off wakes one of them, not all.
   *
   * @returns a guard that unlocks when disposed of; `guard.ownerDied` says whether the previous
   * holder died while holding it
   * @throws {TimeoutError} after `options.timeout` ms
   * @throws {TypeError} for bad options or a closed segment; the signal's reason when it is aborted
   */
  async lock(options?: WaitOptions): Promise<MutexGuard> {
    const o = options === undefined ? NO_WAIT : checkWaitOptions(options, "lock the mutex");
    o.signal?.throwIfAborted();
    if (this.#tryTake()) return guardOf(this, false);
    if (this.#waiting++ > 0) {
      try {
        await this.#turn(o);
      } catch (error) {
        this.#waiting--;
        throw error;
      }
    }
    try {
      if (this.#tryTake()) return guardOf(this, false);
      return await this.#futex.runAsync(this.#lockLoop(o, false), o.signal);
    } finally {
      this.#waiting--;
      this.#turns.shift()?.();
    }
  }

  /**
   * Resolves when the async `lock` ahead of this one in the handle's queue is done (it took the
   * mutex, or gave up); rejects at the deadline or on abort, leaving the queue.
   */
  #turn(o: CheckedWait): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const end = () => {
        if (timer !== undefined) clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
      };
      const go = () => {
        end();
        resolve();
      };
      const leave = (error: unknown) => {
        const i = this.#turns.indexOf(go);
        if (i < 0) return; // its turn came first
        this.#turns.splice(i, 1);
        end();
        reject(error);
      };
      const onAbort = () => leave(o.signal!.reason);
      this.#turns.push(go);
      if (o.deadline !== Infinity) {
        timer = setTimeout(
          () => leave(this.#timeout(o.timeout)),
          Math.max(0, o.deadline - performance.now()),
        );
      }
      o.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Releases the mutex and wakes one waiter, if any.
   *
   * @throws {NotHeldError} when the calling thread does not hold it
   * @throws {TypeError} when the segment is closed
   */
  unlock(): void {
    const cells = this.#cells;
    const me = selfId();
    // A plain read is enough: only this thread could have put its own id there. (A detached view
    // reads undefined, which is not our id either.)
    const v = cells[0]!;
    if ((v & ID_MASK) !== me) {
      this.#live("unlock the mutex");
      throw new NotHeldError(
        v === 0
          ? "Cannot unlock the mutex: it is not locked"
          : (v & TID_PART) === 0
          ? `Cannot unlock the mutex: its lock word (0x${(v >>> 0).toString(16)}) names no holder`
          : `Cannot unlock the mutex: it is held by thread ${tidOf(v)}, not by this thread (${tidOf(me)})`,
      );
    }
    if (Atomics.compareExchange(cells, 0, me, 0) === me) return;
    // The waiters bit is set: release and wake one sleeper.
    Atomics.exchange(cells, 0, 0);
    this.#futex.wake(1);
  }

  /** The cells, or a TypeError saying the segment is closed (a detached view has length 0). */
  #live(action: string): Int32Array {
    const cells = this.#cells;
    if (cells.length === 0) throw closedError(this.#shm, action);
    return cells;
  }

  /** One compare-exchange from 0 (unlocked) to this thread's id. */
  #tryTake(): boolean {
    const cells = this.#cells;
    let was;
    try {
      was = Atomics.compareExchange(cells, 0, 0, selfId());
    } catch (error) {
      throw cells.length === 0 ? closedError(this.#shm, "lock the mutex") : error;
    }
    if (was !== 0) return false;
    const start = selfStart();
    if (cells[1] !== start) cells[1] = start; // plain store, after the compare-exchange (a full barrier)
    this.#ownerDied = false;
    return true;
  }

  /**
   * Spins, then sleeps on the lock word until it is free; every PROBE_MS it checks whether the
   * holder died. A word that names no holder is taken over at once. `sync` refuses to wait for a
   * mutex this thread holds (it would never be freed).
   *
   * An async wait on waiter threads does not probe by itself: it hands the probe to the waiter
   * table (the sleep's `watch`), which runs one per lock word each slice for all the waits on it
   * and wakes them with `"dead"` when the holder died; then they race to take the word over, and
   * the one whose compare-exchange wins is told `ownerDied`.
   */
  *#lockLoop(o: CheckedWait, sync: boolean): Generator<Sleep, MutexGuard, WaitResult> {
    const me = selfId();
    if (this.#spin(me)) return guardOf(this, false);
    let lastProbe = performance.now();
    let slept = 0;
    let result: WaitResult = "ok";
    for (;;) {
      o.signal?.throwIfAborted();
      const v = this.#prepareSleep(me, sync);
      if (v === 0) return guardOf(this, false);
      if ((v & TID_PART) === 0 && this.#takeOver(v, me)) return guardOf(this, true);
      if (result === "dead" && v === slept && this.#takeOver(v, me)) return guardOf(this, true);
      const now = performance.now();
      const shared = !sync && asyncWaitsWatched();
      if (shared) lastProbe = now;
      else if (now - lastProbe >= PROBE_MS) {
        lastProbe = now;
        if (this.#holderDead(v, me) && this.#takeOver(v, me)) return guardOf(this, true);
      }
      if (now >= o.deadline) throw this.#timeout(o.timeout);
      slept = v;
      const watch = shared ? () => this.#holderDead(v, me) : undefined;
      result = yield [v, Math.min(o.deadline - now, PROBE_MS), o.deadline - now, watch];
    }
  }

  /** Spins briefly on the word; true when the mutex was taken meanwhile. */
  #spin(me: number): boolean {
    const cells = this.#cells;
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(cells, 0) === 0 && Atomics.compareExchange(cells, 0, 0, me) === 0) {
        const start = selfStart();
        if (cells[1] !== start) cells[1] = start;
        this.#ownerDied = false;
        return true;
      }
    }
    return false;
  }

  /**
   * Either takes the mutex (returns 0) or marks the word as having waiters and returns the value to
   * sleep on.
   */
  #prepareSleep(me: number, sync: boolean): number {
    const cells = this.#live("lock the mutex");
    for (;;) {
      const v = Atomics.load(cells, 0);
      if (v === 0) {
        // Others may sleep on it: keep the waiters bit so our unlock wakes one.
        if (Atomics.compareExchange(cells, 0, 0, me | WAITERS) === 0) {
          cells[1] = selfStart();
          this.#ownerDied = false;
          return 0;
        }
        continue;
      }
      if (sync && (v & ID_MASK) === me) {
        throw new Error("Cannot lock the mutex: this thread already holds it (a Mutex is not recursive)");
      }
      if (v & WAITERS) return v;
      if (Atomics.compareExchange(cells, 0, v, v | WAITERS) === v) return v | WAITERS;
    }
  }

  /**
   * Whether the lock word `v` names no live holder: no holder at all, or a holder that a probe
   * found dead, probing at most once per PROBE_MS for the same word (`tryLock`, WaitSet).
   */
  #deadNow(v: number): boolean {
    if ((v & TID_PART) === 0) return true;
    const p = this.#probed;
    const now = performance.now();
    if (p.word === v && now - p.at < PROBE_MS) return p.dead;
    p.word = v;
    p.at = now;
    return p.dead = this.#holderDead(v, selfId());
  }

  /**
   * Whether the holder recorded in `v` is dead (a start-time mismatch counts once the next probe,
   * 250 ms on, finds the same word). Probes only; taking over is {@linkcode Mutex.#takeOver}.
   */
  #holderDead(v: number, me: number): boolean {
    const owner = v & ID_MASK;
    if (owner === me) return false;
    const cells = this.#cells;
    if (cells.length === 0 || Atomics.load(cells, 0) !== v) return false; // moved on: the waits wake anyway
    const status = ownerStatus(owner, cells[1]!);
    if (status === "alive") {
      this.#suspect = 0;
      return false;
    }
    if (status === "mismatch" && this.#suspect !== v) {
      this.#suspect = v; // dead only if the next probe, 250 ms on, finds the same
      return false;
    }
    this.#suspect = 0;
    return true;
  }

  /** Replaces the lock word `v` of a holder that cannot unlock by this thread's id. */
  #takeOver(v: number, me: number): boolean {
    if (Atomics.compareExchange(this.#cells, 0, v, me | WAITERS) !== v) return false;
    this.#cells[1] = selfStart();
    this.#ownerDied = true;
    return true;
  }

  #timeout(timeout: number): TimeoutError {
    return new TimeoutError(
      `Cannot lock the mutex: still held by another thread after ${timeout} ms`,
      timeout,
    );
  }
}
