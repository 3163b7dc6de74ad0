/**
 * {@linkcode WaitSet}: await whichever of several mutexes, semaphores and channels is ready first,
 * like Go's `select` or iceoryx2's WaitSet.
 *
 * @module
 */

import type { Channel } from "./channel.ts";
import type { Mutex } from "./mutex.ts";
import type { Semaphore } from "./semaphore.ts";
import { TimeoutError } from "./errors.ts";
import { asyncWaitsWatched, type FutexWord, waitManySync, type WaitResult } from "./_sync/futex.ts";
import { type Readiness, readinessOf } from "./_sync/readiness.ts";
import { SLICE_MS } from "./_sync/region.ts";
import { type CheckedWait, checkWaitOptions, describe, type WaitOptions } from "./_validate.ts";

/**
 * What a source is ready for, named after the `try*` call that would succeed: `"lock"`
 * ({@linkcode Mutex.tryLock}), `"acquire"` ({@linkcode Semaphore.tryAcquire}), `"readable"`
 * (`Channel.tryReceive` and the other `try*` receives) and `"writable"` (`Channel.trySend` of a
 * message of up to 16 bytes; a larger one may still find the ring full).
 */
export type Interest = "lock" | "acquire" | "readable" | "writable";

/** A source that is ready, as {@linkcode WaitSet.wait} reports it. */
export interface Ready {
  /** The mutex, semaphore or channel, as it was added. */
  readonly source: Mutex | Semaphore | Channel;
  /** What it is ready for. */
  readonly interest: Interest;
}

interface Member extends Ready {
  readonly readiness: Readiness;
}

/**
 * A set of mutexes, semaphores and channels to wait on together: {@linkcode WaitSet.wait}
 * resolves as soon as one (or more) is ready, and says which.
 *
 * Ready means the matching `try*` call would succeed *now*; it takes nothing. Between `wait`
 * resolving and your `try*` call, another thread or process may take the permit, the lock or the
 * message first: the `try*` call then fails, and you wait again (see the example). An ended
 * channel is both readable and writable: `tryReceive` returns null and `trySend` throws at once.
 *
 * A mutex whose holder died counts as ready: `tryLock` takes it over (its guard's `ownerDied` is
 * true). Each `try*` form has its wait here: `wait` (async), `waitSync` (blocks the thread) and
 * `tryWait` (never waits). A pending `wait` sleeps on the waiter threads every async wait of the
 * module shares (a few threads per process for any number of waits on Linux 5.16+ and Windows),
 * so thousands of sets can wait at once.
 *
 * A `Condition` and a `Barrier` cannot be sources. Both have no `try*` form
 * to say what ready would mean: a condition's wait releases and re-takes a mutex around a
 * notification that is only meaningful to a waiter that was counted in before it (there is no
 * state to look at later), and a barrier's wait *is* the arrival, which changes the barrier; it
 * cannot be looked at without taking part. Wait for them on their own (`Promise.race` with a
 * set's `wait` works, with an `AbortSignal` to end the loser).
 *
 * @example Take a job from whichever of two channels has one, or a permit
 * ```ts
 * import { Channel, Semaphore, SharedMemory, WaitSet } from "@x/shm";
 *
 * using urgent = Channel.create({ capacity: 4096 });
 * using normal = Channel.create({ capacity: 4096 });
 * using shm = SharedMemory.create({ size: 64 });
 * const permits = new Semaphore(shm, 0);
 * normal.sendString("job 1");
 *
 * const ws = new WaitSet().add(urgent, "readable").add(normal, "readable").add(permits);
 * const ready = await ws.wait({ timeout: 5_000 });
 * for (const { source, interest } of ready) {
 *   // Another process may have been faster: a try* call that fails means "wait again".
 *   if (source === permits && permits.tryAcquire()) console.log("got a permit");
 *   if (interest === "readable") console.log((source as Channel).tryReceiveString()); // job 1
 * }
 * ```
 */
export class WaitSet {
  #members: Member[] = [];

  /** How many (source, interest) pairs the set holds. */
  get size(): number {
    return this.#members.length;
  }

  /**
   * Adds a source: a Mutex (ready when free: `"lock"`), a Semaphore (when it has a permit:
   * `"acquire"`), or a Channel with `"readable"` or `"writable"`. Adding a pair twice changes
   * nothing. Returns the set, so calls chain.
   *
   * @throws {TypeError} for anything else, or a channel without an interest
   */
  add(source: Mutex | Semaphore): this;
  /**
   * Adds a Channel for `"readable"` (a `try*` receive would find a message, or the channel ended)
   * or `"writable"` (a `trySend` of up to 16 bytes would fit, or the channel ended). Adding a pair
   * twice changes nothing. Returns the set, so calls chain.
   *
   * @throws {TypeError} for another interest
   */
  add(source: Channel, interest: "readable" | "writable"): this;
  add(source: Mutex | Semaphore | Channel, interest?: "readable" | "writable"): this {
    const [r, name] = this.#find(source, interest, "add to the wait set");
    if (!this.#members.some((m) => m.source === source && m.interest === name)) {
      this.#members.push({ source, interest: name, readiness: r });
    }
    return this;
  }

  /** Removes a source added with {@linkcode WaitSet.add} (for a channel, that interest); true when it was there. */
  remove(source: Mutex | Semaphore | Channel, interest?: "readable" | "writable"): boolean {
    const i = this.#members.findIndex((m) =>
      m.source === source && (interest === undefined || m.interest === interest)
    );
    if (i < 0) return false;
    this.#members.splice(i, 1);
    return true;
  }

  /**
   * The sources ready now, without waiting (empty when none is): the same as
   * {@linkcode WaitSet.tryWait}.
   *
   * @throws {TypeError} when a source's segment or handle is closed
   */
  ready(): Ready[] {
    return this.#members.filter((m) => m.readiness.ready()).map(({ source, interest }) => ({
      source,
      interest,
    }));
  }

  /**
   * The sources ready now, never waiting: an empty array when none is (the `try*` form of
   * {@linkcode WaitSet.wait}). An empty set gives an empty array.
   *
   * @example
   * ```ts
   * import { SharedMemory, Semaphore, WaitSet } from "@x/shm";
   *
   * using shm = SharedMemory.create({ size: 64 });
   * const permits = new Semaphore(shm, 0);
   * const ws = new WaitSet().add(permits);
   * console.log(ws.tryWait().length); // 0: no permit yet
   * permits.release();
   * console.log(ws.tryWait()[0]!.interest); // "acquire"
   * ```
   *
   * @throws {TypeError} when a source's segment or handle is closed
   */
  tryWait(): Ready[] {
    return this.ready();
  }

  /**
   * Like {@linkcode WaitSet.wait}, but blocks the thread: one OS call sleeps on every source's
   * word at once (Linux 5.16+ `futex_waitv`, up to 128 words; Windows `WaitForMultipleObjects`,
   * up to 64), elsewhere the words are polled with a backoff capped at 1 ms. Each sleep lasts at
   * most 250 ms, after which the sources are looked at again (a mutex whose holder died is then
   * ready). A `signal` is checked on entry and after each sleep; nothing else runs on this thread
   * while it blocks, so nothing can abort the signal meanwhile: bound the wait with `timeout`.
   *
   * @example
   * ```ts
   * import { Mutex, SharedMemory, WaitSet } from "@x/shm";
   *
   * using shm = SharedMemory.create({ size: 64 });
   * const mutex = new Mutex(shm, 0);
   * const ready = new WaitSet().add(mutex).waitSync({ timeout: 1_000 });
   * console.log(ready[0]!.interest); // "lock": free, so ready at once
   * ```
   *
   * @throws {TypeError} when the set is empty, or a source's segment or handle is closed
   * @throws {RangeError} for a bad timeout
   * @throws {TimeoutError} when `timeout` ms pass first
   * @throws the signal's reason when `signal` is aborted
   */
  waitSync(options?: WaitOptions): Ready[] {
    const o = this.#begin(options);
    const members = [...this.#members];
    for (;;) {
      const ready = this.#readyOrLate(o);
      if (ready.length) return ready;
      const now = performance.now();
      const prepared: Member[] = [];
      try {
        const sleeps: [FutexWord, number][] = [];
        let readyAfterAll = false;
        for (const m of members) {
          const v = m.readiness.prepare();
          if (v === null) {
            readyAfterAll = true;
            break;
          }
          prepared.push(m);
          sleeps.push([m.readiness.word, v]);
        }
        if (!readyAfterAll) waitManySync(sleeps, Math.min(o.deadline - now, SLICE_MS));
      } finally {
        for (const m of prepared) m.readiness.done();
      }
    }
  }

  /**
   * Waits until at least one source is ready, and returns those ready then (see the class doc for
   * what to do with them). Does not block the event loop.
   *
   * @throws {TypeError} when the set is empty, or a source's segment or handle is (or gets) closed
   * @throws {RangeError} for a bad timeout
   * @throws {TimeoutError} when `timeout` ms pass first
   * @throws the signal's reason when `signal` aborts
   */
  async wait(options?: WaitOptions): Promise<Ready[]> {
    const o = this.#begin(options);
    const members = [...this.#members];
    for (;;) {
      const ready = this.#readyOrLate(o);
      if (ready.length) return ready;
      const now = performance.now();
      // Waiter threads look at every word each slice; a thread per wait does not, so it re-checks.
      const ms = asyncWaitsWatched() ? o.deadline - now : Math.min(o.deadline - now, SLICE_MS);
      await sleepOnAll(members, ms, o.signal);
    }
  }

  /** Checks the options and that there is something to wait on, as both waiting forms start. */
  #begin(options: WaitOptions | undefined): CheckedWait {
    const o = checkWaitOptions(options, "wait on the wait set");
    if (this.#members.length === 0) throw new TypeError("Cannot wait on the wait set: it is empty");
    return o;
  }

  /** The sources ready now; throws the signal's reason once aborted, or a TimeoutError once late. */
  #readyOrLate(o: CheckedWait): Ready[] {
    o.signal?.throwIfAborted();
    const ready = this.ready();
    if (ready.length === 0 && performance.now() >= o.deadline) {
      throw new TimeoutError(
        `Cannot wait on the wait set: nothing was ready within ${o.timeout} ms`,
        o.timeout,
      );
    }
    return ready;
  }

  #find(
    source: unknown,
    interest: unknown,
    action: string,
  ): [Readiness, Interest] {
    const table = typeof source === "object" && source !== null ? readinessOf.get(source) : undefined;
    if (!table) {
      throw new TypeError(
        `Cannot ${action}: expected a Mutex, a Semaphore or a Channel, got ${describe(source)}`,
      );
    }
    const names = Object.keys(table) as Interest[];
    const name = names.length === 1 ? names[0]! : interest as Interest;
    const r = table[name];
    if (!r || (names.length === 1 && interest !== undefined)) {
      throw new TypeError(
        names.length === 1
          ? `Cannot ${action}: a Mutex or a Semaphore takes no interest, got ${describe(interest)}`
          : `Cannot ${action}: a Channel needs "readable" or "writable", got ${describe(interest)}`,
      );
    }
    return [r, name];
  }
}

/** One sleep on every member's word at once, until one changes (or `ms`, or the signal). */
async function sleepOnAll(members: Member[], ms: number, signal: AbortSignal | undefined): Promise<void> {
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const prepared: Member[] = [];
  const sleeps: Promise<WaitResult>[] = [];
  try {
    for (const m of members) {
      const v = m.readiness.prepare();
      if (v === null) return; // ready after all
      prepared.push(m);
      const watch = m.readiness.watch ? () => m.readiness.watch!(v) : undefined;
      sleeps.push(m.readiness.word.waitAsync(v, ms === Infinity ? undefined : ms, stop.signal, watch));
    }
    await Promise.race(sleeps);
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!stop.signal.aborted) stop.abort(new Error("the wait set's sleep ended"));
    await Promise.allSettled(sleeps);
    for (const m of prepared) m.readiness.done();
  }
}
