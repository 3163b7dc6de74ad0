/**
 * `Topic`: publish–subscribe in shared memory. Every subscriber, in any process, gets every message.
 *
 * ## Layout
 *
 * Little-endian Int32s. Message numbers count from 0 and wrap at 2^32.
 *
 * | byte | what |
 * |---|---|
 * | 0 | magic "TOPC", 4 layout version (1), 8 log2(slots), 12 bytes per slot, 16 history, 20 policy (0 overwrite, 1 block) |
 * | 64 | the publishers' mutex (see `mutex.ts`) |
 * | 128 | head: the number of the next message to publish |
 * | 192 | subscribers' wake word; 196: 1 while a subscriber may sleep |
 * | 256 | publishers' wake word; 260: 1 or 2 while a publisher may sleep (block policy); 264: with 2, the message number it waits for subscribers to reach |
 * | 320 | ended flag |
 * | 384 | 64 subscriber slots of 64 bytes, [owner id, next message number] |
 * | 4480 | the slots: per slot [version, length], then the bytes |
 *
 * **Publishing** is serialized by the mutex (a publisher killed holding it is taken over, see
 * `mutex.ts`). Message n goes to slot n mod slots: the publisher stores the slot's version 2n + 1
 * (odd: being written), the length and the bytes, then the version 2n + 2, then moves the head to
 * n + 1 and wakes sleeping subscribers. A publisher that dies mid-write never moved the head: the
 * next one writes message n again. On x86-64 those are plain stores (`_sync/order.ts`) and the
 * publisher reads the "may sleep" flag right after taking the lock, so a publish makes no locked
 * instruction besides the lock's own; a subscriber that raises the flag later finds the lock held
 * and sleeps only briefly (0.05 ms, doubling). A loan's commit stores with `Atomics` and reads the
 * flag after, since its holder may take any time.
 *
 * **Reading takes no lock** (a seqlock): a subscriber reads the version of the slot of its next
 * message, copies the bytes, and reads the version again; the copy counts only when both are 2n + 2.
 * Otherwise the publisher overwrote the slot meanwhile: the subscriber counts the message as missed
 * (`lagged`) and goes on. A subscriber more than a ring behind the head jumps to the oldest message
 * still kept, counting what it skipped.
 *
 * **Block policy.** A subscriber stores its next message number in its slot after each receive. A
 * publisher about to overwrite message n - slots first waits until every subscriber slot's number is
 * past it, looking every PROBE_MS for slots whose owner died (freed). Its mutex stays held while it
 * waits: other publishers queue behind it. Subscribers only move on, so the room one look at the
 * slots shows lasts: a publisher reads them again only once it has used that room up.
 *
 * @module
 */

import { detach, Loan, PRIVATE_MAX, PrivateViews } from "./_loan.ts";
import { SharedMemory } from "./shared_memory.ts";
import { Mutex } from "./mutex.ts";
import { TimeoutError } from "./errors.ts";
import { FutexWord, type Sleep, type WaitResult } from "./_sync/futex.ts";
import { ownerStatus, selfId } from "./_sync/owner.ts";
import type { MutexGuard } from "./mutex.ts";
import { foreignBuffer, pointerAt } from "./ffi/_ffi.ts";
import { addressIn } from "./_internal.ts";
import { pause, TSO } from "./_sync/order.ts";
import { copyWords, WordView } from "./_copy.ts";
import { yieldThread } from "./_sync/yield.ts";
import {
  checkAttached,
  type CheckedWait,
  checkLoanLength,
  checkOptions,
  checkWaitOptions,
  describe,
  type WaitOptions,
} from "./_validate.ts";

export type { WaitOptions } from "./_validate.ts";

const MAGIC = 0x43504f54; // "TOPC" little-endian
const VERSION = 1;
const I_MAGIC = 0;
const I_VERSION = 1;
const I_LOG2 = 2;
const I_STRIDE = 3;
const I_HISTORY = 4;
const I_POLICY = 5;
const MUTEX_AT = 64;
const I_HEAD = 32;
const I_RX_SEQ = 48;
const I_RX_WAITERS = 49;
const I_TX_SEQ = 64;
const I_TX_WAITERS = 65;
/** The message number a waiting publisher needs every subscriber to reach (see `#roomLoop`). */
const I_TX_WANT = 66;
const I_ENDED = 80;
const I_SUBS = 96;
const SUBS = 64;
const SUB_INTS = 16;
const SLOTS_AT = 384 + SUBS * SUB_INTS * 4;
const PROBE_MS = 250;
const MAX_SLOTS = 1 << 20;

/** What a publisher does when the ring is full of messages a subscriber has not read. */
export type TopicPolicy = "overwrite" | "block";

/** Options of {@linkcode Topic.create}. */
export interface TopicOptions {
  /** Messages the ring keeps: rounded up to a power of two, from 2 to 2^20. */
  capacity: number;
  /** Bytes of the largest message (default 1024). */
  maxMessageSize?: number;
  /** Messages a subscriber that joins late gets first (default 0; at most `capacity`). */
  history?: number;
  /**
   * `"overwrite"` (default): the publisher never waits; a subscriber that falls a ring behind misses
   * messages and `lagged` counts them. `"block"`: the publisher waits for the slowest live subscriber.
   */
  policy?: TopicPolicy;
  /** The segment's name; without one, a fresh Python-style name (`psm_…`) is generated. */
  name?: string;
}

/**
 * A message being written in place in a topic's ring (up to 1 KiB, in a private view copied into
 * the slot on send); `send()` publishes it to every subscriber.
 * Until then the topic's publishers' lock is held: other publishers wait. Disposed unsent, it is
 * discarded (subscribers that had not yet read the message its slot held count it as lagged).
 * Either way `bytes` then has length 0. A process killed holding one is taken over by the
 * next publisher, as for any holder of a `Mutex`.
 *
 * @example
 * ```ts
 * import { Topic } from "@x/shm";
 *
 * using topic = Topic.create({ capacity: 8 });
 * using sub = Topic.subscribe(topic.name);
 * const loan = topic.loanSync(2);
 * loan.bytes.set([1, 2]);
 * loan.send();
 * console.log(sub.tryReceive(), loan.bytes.length); // Uint8Array(2) [1, 2] 0
 * ```
 */
export interface TopicLoan extends Disposable {
  /** The message's bytes; length 0 once sent or discarded. */
  readonly bytes: Uint8Array;
  /**
   * Publishes the message.
   *
   * @throws {TypeError} when it was already sent or discarded
   */
  send(): void;
  /** Discards the message unless it was sent. Safe to call twice. */
  [Symbol.dispose](): void;
}

/** The view of one topic segment that publishers and subscribers share. */
class Ring {
  readonly shm: SharedMemory;
  /** The segment's bytes (`shm.buf`, read once). */
  readonly buf: Uint8Array;
  readonly i32: Int32Array;
  readonly slots: number;
  readonly mask: number;
  readonly stride: number;
  readonly history: number;
  readonly block: boolean;
  readonly rxWord: FutexWord;
  readonly txWord: FutexWord;

  constructor(shm: SharedMemory) {
    this.shm = shm;
    this.buf = shm.buf;
    this.i32 = new Int32Array(shm.buf.buffer, 0, SLOTS_AT / 4);
    this.slots = 1 << this.i32[I_LOG2]!;
    this.mask = this.slots - 1;
    this.stride = this.i32[I_STRIDE]!;
    this.history = this.i32[I_HISTORY]!;
    this.block = this.i32[I_POLICY] === 1;
    this.rxWord = new FutexWord(shm, I_RX_SEQ * 4);
    this.txWord = new FutexWord(shm, I_TX_SEQ * 4);
  }

  /** Int32 index of the version of the slot of message `n`. */
  versionAt(n: number): number {
    return (SLOTS_AT + (n & this.mask) * this.stride) >>> 2;
  }

  wake(waiters: number, seq: number, word: FutexWord): void {
    if (Atomics.load(this.i32, waiters) !== 0 && Atomics.exchange(this.i32, waiters, 0) !== 0) {
      Atomics.add(this.i32, seq, 1);
      word.wake();
    }
  }
}

function segmentSize(slots: number, stride: number): number {
  return SLOTS_AT + slots * stride;
}

/**
 * A publish–subscribe ring in a shared memory segment: any number of processes publish, and every
 * subscriber (up to 64 at once, in any processes, Deno and Bun mixed) gets every message, in the
 * order they were published. Subscribers read without a lock. For a subscriber that falls behind,
 * the topic's policy says what happens: `"overwrite"` (the publisher goes on; the subscriber misses
 * messages and learns how many from `lagged`) or `"block"` (the publisher waits for it; a dead
 * subscriber is found and dropped within about a quarter of a second).
 *
 * @example
 * ```ts
 * import { Topic } from "@x/shm";
 *
 * using topic = Topic.create({ capacity: 64, history: 2 });
 * topic.publishSync(new Uint8Array([1]));
 * topic.publishSync(new Uint8Array([2]));
 * topic.publishSync(new Uint8Array([3]));
 * using sub = Topic.subscribe(topic.name); // joins late: gets the last 2 first
 * topic.end();
 * for await (const m of sub) console.log(m[0]); // 2, then 3
 * ```
 */
export class Topic implements Disposable {
  readonly #ring: Ring;
  readonly #mutex: Mutex;
  readonly #max: number;
  /** Int32s over the whole segment (the slots). */
  readonly #all: Int32Array;
  #closed = false;
  /** When a publisher last probed the owners of subscribers that hold it back. */
  #probed = -Infinity;
  /** Private views of short loans (see PRIVATE_MAX). */
  readonly #views = new PrivateViews();
  /** Block policy: messages before this one have room (see `#room`). */
  #roomUntil = 0;
  /** The message published last: one published again (a buffer refilled) is copied by words. */
  readonly #source = new WordView();

  private constructor(shm: SharedMemory) {
    this.#ring = new Ring(shm);
    this.#all = new Int32Array(shm.buf.buffer);
    this.#mutex = new Mutex(shm, MUTEX_AT);
    this.#max = this.#ring.stride - 8;
  }

  /**
   * Creates a topic in a new segment.
   *
   * @throws {TypeError} for options of the wrong type
   * @throws {RangeError} for a capacity, size or history out of range
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 100, maxMessageSize: 256, policy: "block" });
   * console.log(topic.capacity, topic.policy); // 128 block
   * ```
   */
  static create(options: TopicOptions): Topic {
    const action = "create topic";
    const o = checkOptions<TopicOptions>(options, action);
    const capacity = o.capacity;
    const max = o.maxMessageSize ?? 1024;
    const history = o.history ?? 0;
    const policy = o.policy ?? "overwrite";
    for (
      const [key, value] of [["capacity", capacity], ["maxMessageSize", max], ["history", history]] as const
    ) {
      if (typeof value !== "number") {
        throw new TypeError(`Cannot ${action}: ${key} must be a number, got ${describe(value)}`);
      }
      if (!Number.isInteger(value) || value < 0) {
        throw new RangeError(`Cannot ${action}: ${key} must be a non-negative integer, got ${value}`);
      }
    }
    if ((capacity as number) < 1 || (capacity as number) > MAX_SLOTS) {
      throw new RangeError(
        `Cannot ${action}: capacity must be from 1 to ${MAX_SLOTS} messages, got ${capacity}`,
      );
    }
    const log2 = Math.max(1, Math.ceil(Math.log2(capacity as number)));
    if (history > 1 << log2) {
      throw new RangeError(
        `Cannot ${action}: history ${history} is more than the ${1 << log2} messages kept`,
      );
    }
    if (policy !== "overwrite" && policy !== "block") {
      throw new TypeError(`Cannot ${action}: policy must be "overwrite" or "block", got ${describe(policy)}`);
    }
    const stride = Math.ceil((max + 8) / 64) * 64;
    if (segmentSize(1 << log2, stride) > 2 ** 31) {
      throw new RangeError(`Cannot ${action}: ${1 << log2} messages of ${max} bytes are more than 2 GiB`);
    }
    const shm = SharedMemory.create({ name: o.name, size: segmentSize(1 << log2, stride) });
    const i32 = new Int32Array(shm.buf.buffer, 0, SLOTS_AT / 4);
    i32[I_VERSION] = VERSION;
    i32[I_LOG2] = log2;
    i32[I_STRIDE] = stride;
    i32[I_HISTORY] = history;
    i32[I_POLICY] = policy === "block" ? 1 : 0;
    Atomics.store(i32, I_MAGIC, MAGIC);
    return new Topic(shm);
  }

  /**
   * Attaches to an existing topic to publish on it.
   *
   * @throws {NotFoundError} when there is no segment of that name
   * @throws {TypeError} when the segment does not hold a topic
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * using other = Topic.open(topic.name);
   * console.log(other.capacity); // 8
   * ```
   */
  static open(name: string): Topic {
    const shm = openTopic(name);
    return new Topic(shm);
  }

  /**
   * Subscribes to a topic: the subscription gets every message published from now on, after the
   * last `history` ones.
   *
   * @throws {NotFoundError} when there is no segment of that name
   * @throws {TypeError} when the segment does not hold a topic
   * @throws {Error} when 64 live subscriptions already hold the topic's slots
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * using sub = Topic.subscribe(topic.name);
   * topic.publishSync(new TextEncoder().encode("hi"));
   * console.log(sub.tryReceive()); // Uint8Array(2) [104, 105]
   * ```
   */
  static subscribe(name: string): Subscription {
    return new Subscription(openTopic(name), TOKEN);
  }

  /** The name of the segment. */
  get name(): string {
    return this.#ring.shm.name;
  }

  /** Messages the ring keeps. */
  get capacity(): number {
    return this.#ring.slots;
  }

  /** Bytes of the largest message. */
  get maxMessageSize(): number {
    return this.#max;
  }

  /** The slow-subscriber policy. */
  get policy(): TopicPolicy {
    return this.#ring.block ? "block" : "overwrite";
  }

  /** True once {@linkcode Topic.end} has been called, by any process. */
  get ended(): boolean {
    return Atomics.load(this.#ring.i32, I_ENDED) !== 0;
  }

  /**
   * Publishes `message` to every subscriber, awaiting the other publishers and (block policy) room.
   *
   * @throws {TypeError} when `message` is not a Uint8Array
   * @throws {RangeError} when it is longer than `maxMessageSize`
   * @throws {TimeoutError} after `options.timeout` ms
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * await topic.publish(new Uint8Array([1, 2]), { timeout: 1000 });
   * ```
   */
  async publish(message: Uint8Array, options?: WaitOptions): Promise<void> {
    this.#checkMessage(message);
    const w = waitOf(options, "publish on topic");
    using _guard = await this.#mutex.lock(options === undefined ? undefined : remaining(w));
    const n = Atomics.load(this.#ring.i32, I_HEAD);
    if (!this.#room(n, true)) {
      await this.#ring.txWord.runAsync(this.#roomLoop(n, w), w.signal);
    }
    this.#write(n, message);
  }

  /**
   * Like {@linkcode Topic.publish}, blocking the thread.
   *
   * @throws {TypeError} when `message` is not a Uint8Array
   * @throws {RangeError} when it is longer than `maxMessageSize`
   * @throws {TimeoutError} after `options.timeout` ms
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * topic.publishSync(new Uint8Array([1, 2]));
   * ```
   */
  publishSync(message: Uint8Array, options?: WaitOptions): void {
    this.#checkMessage(message);
    const w = waitOf(options, "publish on topic");
    const guard = this.#mutex.lockSync(options === undefined ? undefined : remaining(w));
    try {
      const n = Atomics.load(this.#ring.i32, I_HEAD);
      if (!this.#room(n, true)) this.#ring.txWord.runSync(this.#roomLoop(n, w), w.signal);
      this.#write(n, message);
    } finally {
      guard.unlock(); // (not `using`: slower on this path)
    }
  }

  /**
   * Publishes `message` if no other publisher holds the topic and (block policy) there is room now;
   * returns false otherwise.
   *
   * @throws {TypeError} when `message` is not a Uint8Array
   * @throws {RangeError} when it is longer than `maxMessageSize`
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * console.log(topic.tryPublish(new Uint8Array([1]))); // true
   * ```
   */
  tryPublish(message: Uint8Array): boolean {
    this.#checkMessage(message);
    using guard = this.#mutex.tryLock();
    if (guard === null) return false;
    const n = Atomics.load(this.#ring.i32, I_HEAD);
    if (!this.#room(n, false)) return false;
    this.#write(n, message);
    return true;
  }

  /**
   * Lends `length` bytes of the next message's slot to write it in place, awaiting the other
   * publishers and (block policy) room. The topic's publishers' lock is held until the loan is sent
   * or disposed.
   *
   * @throws {TypeError} when `length` is not a number
   * @throws {RangeError} when `length` is not an integer from 0 to `maxMessageSize`
   * @throws {TimeoutError} after `options.timeout` ms
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8, maxMessageSize: 1 << 16 });
   * using loan = await topic.loan(1 << 16, { timeout: 1000 });
   * loan.bytes.fill(1);
   * loan.send();
   * ```
   */
  async loan(length: number, options?: WaitOptions): Promise<TopicLoan> {
    this.#checkLength(length);
    const w = waitOf(options, "loan from topic");
    const guard = await this.#mutex.lock(options === undefined ? undefined : remaining(w));
    try {
      const n = Atomics.load(this.#ring.i32, I_HEAD);
      if (!this.#room(n, true)) {
        await this.#ring.txWord.runAsync(this.#roomLoop(n, w), w.signal);
      }
      return this.#lend(n, length, guard);
    } catch (error) {
      guard.unlock();
      throw error;
    }
  }

  /**
   * Like {@linkcode Topic.loan}, blocking the thread.
   *
   * @throws {TypeError} when `length` is not a number
   * @throws {RangeError} when `length` is not an integer from 0 to `maxMessageSize`
   * @throws {TimeoutError} after `options.timeout` ms
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * using loan = topic.loanSync(3, { timeout: 1000 });
   * loan.send();
   * ```
   */
  loanSync(length: number, options?: WaitOptions): TopicLoan {
    this.#checkLength(length);
    const w = waitOf(options, "loan from topic");
    const guard = this.#mutex.lockSync(options === undefined ? undefined : remaining(w));
    try {
      const n = Atomics.load(this.#ring.i32, I_HEAD);
      if (!this.#room(n, true)) this.#ring.txWord.runSync(this.#roomLoop(n, w), w.signal);
      return this.#lend(n, length, guard);
    } catch (error) {
      guard.unlock();
      throw error;
    }
  }

  /**
   * Lends `length` bytes (see {@linkcode Topic.loan}) if no other publisher holds the topic and
   * (block policy) there is room now; `null` otherwise.
   *
   * @throws {TypeError} when `length` is not a number
   * @throws {RangeError} when `length` is not an integer from 0 to `maxMessageSize`
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * const loan = topic.tryLoan(3);
   * console.log(topic.tryLoan(3)); // null: the first loan holds the publishers' lock
   * loan?.send();
   * ```
   */
  tryLoan(length: number): TopicLoan | null {
    this.#checkLength(length);
    const guard = this.#mutex.tryLock();
    if (guard === null) return null;
    const n = Atomics.load(this.#ring.i32, I_HEAD);
    if (!this.#room(n, false)) {
      guard.unlock();
      return null;
    }
    return this.#lend(n, length, guard);
  }

  /** The loan of message `n`'s slot, the lock held by `guard`. */
  #lend(n: number, length: number, guard: MutexGuard): TopicLoan {
    const r = this.#ring;
    const v = r.versionAt(n);
    Atomics.store(this.#all, v, (n * 2 + 1) | 0); // its old message is being overwritten
    const at = v * 4 + 8;
    const views = length <= PRIVATE_MAX ? this.#views : null;
    const bytes = views !== null
      ? views.take(length) // cheaper than a view of foreign memory: copied into the slot on send
      : new Uint8Array(foreignBuffer(pointerAt(addressIn(r.shm, at)), length));
    return new Loan(bytes, (send, bytes) => {
      try {
        if (views !== null) {
          // A view its holder detached is sent as zeros.
          if (send) r.buf.set(bytes.length === length ? bytes : new Uint8Array(length), at);
          views.settle(bytes);
        } else detach(bytes);
        if (send) this.#commit(n, length);
      } finally {
        guard.unlock();
      }
    });
  }

  #checkLength(length: number): void {
    checkLoanLength(length, this.#max, "topic", this.name);
    if (this.#closed) throw new TypeError(`Cannot use topic "${this.name}": this handle is closed`);
  }

  /**
   * Ends the topic: subscribers get what is left, then `null`.
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * topic.end();
   * console.log(topic.ended); // true
   * ```
   */
  end(): void {
    const r = this.#ring;
    Atomics.store(r.i32, I_ENDED, 1);
    Atomics.add(r.i32, I_RX_SEQ, 1);
    r.rxWord.wake();
  }

  /**
   * Detaches this handle; the topic stays (see `unlink()`). Safe to call twice.
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * const topic = Topic.create({ capacity: 8 });
   * topic.unlink();
   * topic.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ring.shm.close();
  }

  /**
   * Removes the segment's name; processes that have the topic open keep using it.
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * const topic = Topic.create({ capacity: 8 });
   * topic.unlink();
   * topic.close();
   * ```
   */
  unlink(): void {
    this.#ring.shm.unlink();
  }

  /** Closes the handle and, if this handle created the topic, removes its segment. */
  [Symbol.dispose](): void {
    this.#closed = true;
    this.#ring.shm[Symbol.dispose]();
  }

  /** Writes message `n` (the mutex held) and publishes it. */
  #write(n: number, message: Uint8Array): void {
    const r = this.#ring;
    const v = r.versionAt(n);
    const i32 = this.#all;
    if (!TSO) {
      Atomics.store(i32, v, (n * 2 + 1) | 0);
      this.#source.copy(message, r.buf, i32, v * 4 + 8);
      return this.#commit(n, message.length);
    }
    // x86-64 (_sync/order.ts): plain stores keep their order, so readers see the odd version before
    // the bytes, the even one after, and the head last; the lock's compare-and-swap (or the room
    // wait's store) was the last locked instruction, so the "may sleep" flag is read now. A
    // subscriber that raises it later finds the lock held and sleeps only briefly (`#loop`).
    const wake = r.i32[I_RX_WAITERS] !== 0;
    i32[v] = (n * 2 + 1) | 0;
    this.#source.copy(message, r.buf, i32, v * 4 + 8);
    i32[v + 1] = message.length;
    i32[v] = (n * 2 + 2) | 0;
    r.i32[I_HEAD] = (n + 1) | 0;
    if (wake) r.wake(I_RX_WAITERS, I_RX_SEQ, r.rxWord);
  }

  /**
   * Commits message `n` of `length` bytes, written in its slot: its version, then the head, then
   * reads the "may sleep" flag (a loan's holder may have taken any time since it locked).
   */
  #commit(n: number, length: number): void {
    const r = this.#ring;
    const v = r.versionAt(n);
    this.#all[v + 1] = length;
    Atomics.store(this.#all, v, (n * 2 + 2) | 0);
    Atomics.store(r.i32, I_HEAD, (n + 1) | 0);
    r.wake(I_RX_WAITERS, I_RX_SEQ, r.rxWord);
  }

  /**
   * Whether message `n` may be written (block policy: no live subscriber still needs its slot).
   * Subscribers only move on, so the room seen by one look at their slots lasts until message
   * `#roomUntil`: the slots are read again only then.
   */
  #room(n: number, probe: boolean): boolean {
    const r = this.#ring;
    if (!r.block) return true;
    if (((this.#roomUntil - n) | 0) > 0) return true;
    const i32 = r.i32;
    let full = false;
    let most = 0; // how far behind `n` the slowest subscriber with room is
    let now = 0; // read once a subscriber holds `n` back
    for (let o = I_SUBS; o < I_SUBS + SUBS * SUB_INTS; o += SUB_INTS) {
      const owner = Atomics.load(i32, o);
      if (owner === 0) continue;
      const behind = (n - Atomics.load(i32, o + 1)) | 0;
      if (behind < r.slots) {
        if (behind > most) most = behind;
        continue;
      }
      if (probe && now === 0) now = performance.now();
      if (probe && now - this.#probed >= PROBE_MS && ownerStatus(owner, 0) === "dead") {
        Atomics.compareExchange(i32, o, owner, 0); // a dead subscriber: dropped
        continue;
      }
      full = true;
    }
    if (full && probe && now - this.#probed >= PROBE_MS) this.#probed = now;
    if (!full) this.#roomUntil = (n + r.slots - most) | 0;
    return !full;
  }

  /**
   * Waits until message `n` has room. Subscribers wake the publisher only once they have made room
   * for a quarter of the ring past message `n` (2 in the "may sleep" flag, the number they must
   * reach at I_TX_WANT):
   * waking it for each message read made a publisher and its subscribers take turns, one message
   * and two system calls at a time. Only a subscriber that reaches that number wakes it, not one
   * already past it (those hold nothing back: with 8 subscribers, the publisher was woken for
   * nothing 6 times out of 7). A subscriber that stops reading before that leaves the publisher
   * to find its room at its next look, at most PROBE_MS later.
   */
  *#roomLoop(n: number, w: CheckedWait): Generator<Sleep, void, WaitResult> {
    const r = this.#ring;
    for (;;) {
      const seq = Atomics.load(r.i32, I_TX_SEQ);
      r.i32[I_TX_WANT] = (n + (r.slots >>> 2) - r.slots + 1) | 0; // released by the store below
      Atomics.store(r.i32, I_TX_WAITERS, 2);
      const now = performance.now();
      if (this.#room(n, true)) return;
      w.signal?.throwIfAborted();
      if (now >= w.deadline) {
        throw new TimeoutError(
          `Cannot publish on topic "${this.name}": a subscriber read nothing within ${w.timeout} ms`,
          w.timeout,
        );
      }
      yield [seq, Math.min(w.deadline - now, PROBE_MS)];
    }
  }

  #checkMessage(message: Uint8Array): void {
    if (!(message instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot publish on topic: the message must be a Uint8Array, got ${describe(message)}`,
      );
    }
    if (message.length > this.#max) {
      throw new RangeError(
        `Cannot publish on topic "${this.name}": the message is ${message.length} bytes and the largest is ${this.#max}`,
      );
    }
    if (message.length === 0) checkAttached(message, `publish on topic "${this.name}"`, "the message");
    if (this.#closed) throw new TypeError(`Cannot use topic "${this.name}": this handle is closed`);
  }
}

const TOKEN = Symbol("subscription");

/**
 * One subscriber of a {@linkcode Topic}: it gets every message published after it joined (and the
 * last `history` before), in order. Made by {@linkcode Topic.subscribe}.
 *
 * @example
 * ```ts
 * import { Topic } from "@x/shm";
 *
 * using topic = Topic.create({ capacity: 4 });
 * using sub = Topic.subscribe(topic.name);
 * for (let i = 0; i < 6; i++) topic.publishSync(new Uint8Array([i]));
 * console.log(sub.tryReceive(), sub.lagged); // Uint8Array(1) [2] 2: messages 0 and 1 were overwritten
 * ```
 */
export class Subscription implements Disposable, AsyncIterable<Uint8Array> {
  readonly #ring: Ring;
  readonly #slot: number;
  readonly #all: Int32Array;
  #next: number;
  /**
   * The head as this subscriber last read it: the messages before it are published, so that reading
   * them needs no look at the head (a cache line the publisher writes for every message), only at
   * their versions. Read again once reached.
   */
  #head: number;
  #lagged = 0;
  #closed = false;
  /** The copy the last receive without a buffer made. */
  #out: Uint8Array = new Uint8Array(0);
  /** The last buffer received into, and its Int32 view once used again (short messages are copied by words). */
  readonly #dest = new WordView();

  /** Subscriptions are made by {@linkcode Topic.subscribe}. */
  constructor(shm: SharedMemory, token: symbol) {
    if (token !== TOKEN) throw new TypeError("Cannot construct a Subscription: use Topic.subscribe()");
    this.#ring = new Ring(shm);
    this.#all = new Int32Array(shm.buf.buffer);
    const i32 = this.#ring.i32;
    const me = selfId();
    let slot = 0;
    for (let o = I_SUBS; o < I_SUBS + SUBS * SUB_INTS && slot === 0; o += SUB_INTS) {
      const owner = Atomics.load(i32, o);
      if (owner === 0 && Atomics.compareExchange(i32, o, 0, me) === 0) slot = o;
      else if (
        owner !== 0 && ownerStatus(owner, 0) === "dead" &&
        Atomics.compareExchange(i32, o, owner, me) === owner
      ) slot = o;
    }
    if (slot === 0) {
      shm.close();
      throw new Error(`Cannot subscribe to topic "${shm.name}": ${SUBS} live subscriptions hold its slots`);
    }
    this.#slot = slot;
    const h = Atomics.load(i32, I_HEAD);
    const back = Math.min(this.#ring.history, h >>> 0);
    this.#next = this.#head = (h - back) | 0;
    // A publisher that read the slots before this store may overwrite what history asked for: the
    // reads then count it as lagged.
    Atomics.store(i32, slot + 1, this.#next);
  }

  /** Messages this subscriber missed because the publisher overwrote them first (overwrite policy). */
  get lagged(): number {
    return this.#lagged;
  }

  /**
   * The next message, awaited without blocking the event loop; `null` once the topic has ended and
   * this subscriber has read everything.
   *
   * @throws {TimeoutError} after `options.timeout` ms without a message
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * using sub = Topic.subscribe(topic.name);
   * setTimeout(() => topic.publishSync(new Uint8Array([7])), 10);
   * console.log(await sub.receive({ timeout: 5000 })); // Uint8Array(1) [7]
   * ```
   */
  async receive(options?: WaitOptions): Promise<Uint8Array | null> {
    const w = waitOf(options, "receive from topic");
    let n = this.#take(null);
    if (n === NONE) n = this.#spin(null, ASYNC_SPIN);
    if (n === NONE) n = await this.#ring.rxWord.runAsync(this.#loop(w, null), w.signal);
    return n === DONE ? null : this.#out;
  }

  /**
   * Like {@linkcode Subscription.receive}, blocking the thread.
   *
   * @throws {TimeoutError} after `options.timeout` ms without a message
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * using sub = Topic.subscribe(topic.name);
   * topic.publishSync(new Uint8Array([7]));
   * console.log(sub.receiveSync({ timeout: 1000 })); // Uint8Array(1) [7]
   * ```
   */
  receiveSync(options?: WaitOptions): Uint8Array | null {
    const w = waitOf(options, "receive from topic");
    const n = this.#takeSync(null, w);
    return n === DONE ? null : this.#out;
  }

  /**
   * The next message if one is ready now, else `null`.
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * using sub = Topic.subscribe(topic.name);
   * console.log(sub.tryReceive()); // null
   * ```
   */
  tryReceive(): Uint8Array | null {
    return this.#take(null) >= 0 ? this.#out : null;
  }

  /**
   * Copies the next message into `buffer` (no allocation), awaited without blocking the event loop;
   * returns its length, or `null` once the topic has ended and this subscriber has read everything.
   *
   * @throws {TypeError} when `buffer` is not a Uint8Array
   * @throws {RangeError} when the next message is longer than `buffer` (it stays for the next call)
   * @throws {TimeoutError} after `options.timeout` ms without a message
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8, maxMessageSize: 64 });
   * using sub = Topic.subscribe(topic.name);
   * const buf = new Uint8Array(topic.maxMessageSize);
   * setTimeout(() => topic.publishSync(new Uint8Array([7, 8])), 10);
   * const n = await sub.receiveInto(buf, { timeout: 5000 });
   * console.log(buf.subarray(0, n ?? 0)); // Uint8Array(2) [7, 8]
   * ```
   */
  async receiveInto(buffer: Uint8Array, options?: WaitOptions): Promise<number | null> {
    checkBuffer(buffer);
    const w = waitOf(options, "receive from topic");
    let n = this.#take(buffer);
    if (n === NONE) n = this.#spin(buffer, ASYNC_SPIN);
    if (n === NONE) n = await this.#ring.rxWord.runAsync(this.#loop(w, buffer), w.signal);
    return n === DONE ? null : n;
  }

  /**
   * Like {@linkcode Subscription.receiveInto}, blocking the thread.
   *
   * @throws {TypeError} when `buffer` is not a Uint8Array
   * @throws {RangeError} when the next message is longer than `buffer` (it stays for the next call)
   * @throws {TimeoutError} after `options.timeout` ms without a message
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * using sub = Topic.subscribe(topic.name);
   * topic.publishSync(new Uint8Array([7]));
   * console.log(sub.receiveIntoSync(new Uint8Array(16), { timeout: 1000 })); // 1
   * ```
   */
  receiveIntoSync(buffer: Uint8Array, options?: WaitOptions): number | null {
    checkBuffer(buffer);
    const w = waitOf(options, "receive from topic");
    const n = this.#take(buffer);
    if (n >= 0) return n;
    // The waits apart, so that this method stays small enough to be inlined into the caller.
    return this.#receiveIntoSlow(buffer, n, w);
  }

  /** `receiveIntoSync` after a first attempt gave `n` (NONE or DONE). */
  #receiveIntoSlow(buffer: Uint8Array, n: number, w: CheckedWait): number | null {
    if (n === NONE) n = this.#takeSync(buffer, w);
    return n === DONE ? null : n;
  }

  /**
   * Like {@linkcode Subscription.receiveInto}, without waiting: `null` when no message is ready.
   *
   * @throws {TypeError} when `buffer` is not a Uint8Array
   * @throws {RangeError} when the next message is longer than `buffer` (it stays for the next call)
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * using sub = Topic.subscribe(topic.name);
   * console.log(sub.tryReceiveInto(new Uint8Array(16))); // null
   * ```
   */
  tryReceiveInto(buffer: Uint8Array): number | null {
    checkBuffer(buffer);
    const n = this.#take(buffer);
    return n >= 0 ? n : null;
  }

  /**
   * Receives until the topic has ended and everything is read.
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * using sub = Topic.subscribe(topic.name);
   * topic.publishSync(new Uint8Array([1]));
   * topic.end();
   * for await (const m of sub) console.log(m); // Uint8Array(1) [1]
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const m = await this.receive();
      if (m === null) return;
      yield m;
    }
  }

  /**
   * Leaves the topic (frees its subscriber slot) and detaches. Safe to call twice.
   *
   * @example
   * ```ts
   * import { Topic } from "@x/shm";
   *
   * using topic = Topic.create({ capacity: 8 });
   * const sub = Topic.subscribe(topic.name);
   * sub.close();
   * sub.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const i32 = this.#ring.i32;
    Atomics.store(i32, this.#slot, 0);
    this.#ring.wake(I_TX_WAITERS, I_TX_SEQ, this.#ring.txWord);
    this.#ring.shm.close();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Receives into `dest` (see `#take`): a short spin, then sleeps until a message or the end. */
  #takeSync(dest: Uint8Array | null, w: CheckedWait): number {
    const n = this.#spin(dest, SPIN);
    return n !== NONE ? n : this.#ring.rxWord.runSync(this.#loop(w, dest));
  }

  /** Up to `turns` attempts to receive into `dest` (see `#take`), a short pause apart; NONE if none gave a message. */
  #spin(dest: Uint8Array | null, turns: number): number {
    for (let i = 1; i <= turns; i++) {
      // About 0.1 µs: the publisher keeps the cache line meanwhile (see pause). Every
      // YIELD_EVERY-th turn gives the CPU to a process ready to run instead (see _sync/yield.ts):
      // with more processes than cores, the publisher may be the one waiting for it. The spin
      // looks at the next slot's version, not at the head (see `#ready`).
      if (i % YIELD_EVERY === 0) yieldThread();
      else pause(64);
      if (!this.#ready()) continue;
      const n = this.#take(dest);
      if (n !== NONE) return n;
    }
    return NONE;
  }

  /**
   * Whether the next message may be there: its slot's version says it was published (or that it
   * was overwritten), or the topic has ended. A spinning subscriber looks at this rather than at
   * the head, a cache line the publisher writes for every message: 8 subscribers polling the head
   * made each of its stores wait for the line (Bun fan-out 13.4 -> 16 M deliveries/s, Deno the same).
   */
  #ready(): boolean {
    const m = this.#next;
    const d = (Atomics.load(this.#all, this.#ring.versionAt(m)) - ((m * 2 + 2) | 0)) | 0;
    return d >= 0 || Atomics.load(this.#ring.i32, I_ENDED) !== 0;
  }

  /**
   * One attempt: copies the next message into `dest` (into a new `#out` when `dest` is null) and
   * returns its length; DONE when the topic has ended and everything is read; NONE when nothing is
   * ready.
   */
  #take(dest: Uint8Array | null): number {
    if (this.#closed) {
      throw new TypeError(`Cannot use subscription to topic "${this.#ring.shm.name}": it is closed`);
    }
    const r = this.#ring;
    const i32 = r.i32;
    const all = this.#all;
    for (;;) {
      // The head is read only once the messages known to be published are read (see `#head`), with
      // an Atomics load, so that no JIT reads a slot before it (a JIT may reorder two plain loads;
      // see _sync/order.ts): the version's first look, after that load or after the last message's
      // Atomics calls, may then be plain on x86-64; its second, after the bytes, is an Atomics load.
      let h = this.#head;
      let ahead = (h - this.#next) | 0;
      if (ahead <= 0) {
        h = this.#head = Atomics.load(i32, I_HEAD);
        ahead = (h - this.#next) | 0;
        if (ahead <= 0) {
          return Atomics.load(i32, I_ENDED) !== 0 && Atomics.load(i32, I_HEAD) === h ? DONE : NONE;
        }
      }
      if (ahead > r.slots) {
        this.#lagged += ahead - r.slots;
        this.#next = (h - r.slots) | 0;
      }
      const n = this.#next;
      const v = r.versionAt(n);
      const expect = (n * 2 + 2) | 0;
      let len = -1;
      if ((TSO ? all[v] : Atomics.load(all, v)) === expect) {
        len = all[v + 1]!;
        if (len < 0 || len > r.stride - 8) len = -1;
        else if (dest === null) this.#out = r.buf.slice(v * 4 + 8, v * 4 + 8 + len);
        else if (len > dest.length) {
          if (Atomics.load(all, v) === expect) {
            throw new RangeError(
              `Cannot receive from topic "${r.shm.name}": the next message is ${len} bytes and the buffer holds ${dest.length}`,
            );
          }
          len = -1;
        } else this.#copy(v + 2, len, dest);
        // The seqlock's second look is an Atomics load: a JIT may fold a plain one into the first
        // when no store it cannot see through lies between (a torn copy would then pass).
        if (Atomics.load(all, v) !== expect) len = -1;
      }
      this.#next = (n + 1) | 0;
      if (len < 0) {
        // Overwritten before or while it was copied: the head has moved on by a ring at least.
        this.#lagged++;
        this.#head = Atomics.load(i32, I_HEAD);
        continue;
      }
      if (r.block) {
        Atomics.store(i32, this.#slot + 1, this.#next); // a locked instruction on x86-64: the load below cannot pass it
        const waiting = TSO ? i32[I_TX_WAITERS] : Atomics.load(i32, I_TX_WAITERS);
        if (waiting === 1 || (waiting === 2 && this.#next === i32[I_TX_WANT])) {
          r.wake(I_TX_WAITERS, I_TX_SEQ, r.txWord);
        }
      }
      return len;
    }
  }

  /** Copies `len` bytes from Int32 index `w` of the segment into `dest`: by words when short and aligned. */
  #copy(w: number, len: number, dest: Uint8Array): void {
    const buf = this.#ring.buf;
    // The cached view's fields are read here, `of` called only on a miss: through the call Deno's
    // receive took 85-99 ns instead of 58-68.
    const view = this.#dest;
    let d32 = view.last32;
    if (len > 256) d32 = null;
    else if (dest !== view.last || d32 === null || d32.length !== dest.length >>> 2) d32 = view.of(dest);
    if (d32 === null) {
      dest.set(buf.subarray(w * 4, w * 4 + len));
      return;
    }
    const words = len >>> 2;
    copyWords(d32, 0, this.#all, w, words);
    for (let i = words << 2, at = w * 4; i < len; i++) dest[i] = buf[at + i]!;
  }

  *#loop(w: CheckedWait, dest: Uint8Array | null): Generator<Sleep, number, WaitResult> {
    const r = this.#ring;
    let brief = 0;
    for (;;) {
      const seq = Atomics.load(r.i32, I_RX_SEQ);
      Atomics.store(r.i32, I_RX_WAITERS, 1);
      let n = this.#take(dest);
      if (n !== NONE) return n;
      // A publisher that read the flag before it was raised holds the lock until its message is out
      // (see `#write`): while the lock is held, sleep briefly, twice as long each time (a loan's
      // commit wakes sleepers). Once it is free, the head is read again after it.
      const held = Atomics.load(r.i32, MUTEX_AT >> 2) !== 0;
      if (!held && (n = this.#take(dest)) !== NONE) return n;
      w.signal?.throwIfAborted();
      const now = performance.now();
      if (now >= w.deadline) {
        throw new TimeoutError(
          `Cannot receive from topic "${r.shm.name}": no message came within ${w.timeout} ms`,
          w.timeout,
        );
      }
      brief = held ? Math.min(brief === 0 ? 0.05 : brief * 2, PROBE_MS) : PROBE_MS;
      yield [seq, Math.min(w.deadline - now, brief)];
    }
  }
}

/** Outcomes of a subscriber's attempt (lengths are >= 0): nothing ready; ended and all read. */
const NONE = -1;
const DONE = -2;
/** Attempts a blocking receive makes before it sleeps, a pause of about 0.1 µs (or a yield) apart. */
const SPIN = 128;
/**
 * Attempts an async receive makes before it sleeps: an eighth of a blocking one's, so that the event
 * loop is held for a few microseconds at most (as a channel's async receive). 8 subscribers
 * awaiting `receiveInto`: 3.3 -> 4.0-4.4 M deliveries/s (Bun), 4.1 -> 4.6 (Deno).
 */
const ASYNC_SPIN = 16;
/** Every how many turns of a subscriber's spin it yields the CPU (see `#spin`). */
const YIELD_EVERY = 8;

function checkBuffer(buffer: unknown): void {
  if (!(buffer instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot receive from topic: the buffer must be a Uint8Array, got ${describe(buffer)}`,
    );
  }
  if (buffer.length === 0) checkAttached(buffer, "receive from topic", "the buffer");
}

const NO_WAIT: CheckedWait = { timeout: Infinity, deadline: Infinity, signal: undefined };

function waitOf(options: WaitOptions | undefined, action: string): CheckedWait {
  if (options === undefined) return NO_WAIT;
  const w = checkWaitOptions(options, action);
  w.signal?.throwIfAborted();
  return w;
}

/** The options of a wait that continues `w`: what is left of its timeout, its signal. */
function remaining(w: CheckedWait): WaitOptions {
  const left = w.deadline === Infinity ? Infinity : Math.max(0, w.deadline - performance.now());
  return left === Infinity ? { signal: w.signal } : { timeout: left, signal: w.signal };
}

function openTopic(name: string): SharedMemory {
  const shm = SharedMemory.open(name);
  const why = shm.size < SLOTS_AT
    ? `it is ${shm.size} bytes long`
    : Atomics.load(new Int32Array(shm.buf.buffer, 0, 1), 0) !== MAGIC
    ? "no topic header"
    : new Int32Array(shm.buf.buffer, 0, 8)[I_VERSION] !== VERSION
    ? "another layout version"
    : null;
  if (why === null) {
    const i32 = new Int32Array(shm.buf.buffer, 0, 8);
    const log2 = i32[I_LOG2]!;
    const stride = i32[I_STRIDE]!;
    if (
      log2 >= 1 && log2 <= 20 && stride >= 64 && stride % 64 === 0 &&
      shm.size >= segmentSize(1 << log2, stride)
    ) {
      return shm;
    }
  }
  shm.close();
  throw new TypeError(
    `Cannot open topic "${name}": the segment is not a topic (${why ?? "its geometry is invalid"})`,
  );
}
