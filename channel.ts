/**
 * `Channel`: a bounded queue of byte messages in shared memory, for any number of sending and
 * receiving processes.
 *
 * @module
 */

import { SharedMemory } from "./shared_memory.ts";
import { TimeoutError } from "./errors.ts";
import type { Sleep, WaitResult } from "./_sync/futex.ts";
import {
  checkAttached,
  type CheckedWait,
  checkLoanLength,
  checkOptions,
  checkWaitOptions,
  describe,
  parseJSONText,
  toJSONText,
  type WaitOptions,
} from "./_validate.ts";
import { maxBufferSize } from "./ffi/runtime.ts";
import { readinessOf } from "./_sync/readiness.ts";
import { pause } from "./_sync/order.ts";
import { detach, Held, HeldList, Loan, NO_BYTES, PRIVATE_MAX, PrivateViews } from "./_loan.ts";
import { foreignBuffer, pointerAt } from "./ffi/_ffi.ts";
import { addressIn } from "./_internal.ts";
import {
  CELL,
  EMPTY,
  ENDED,
  FULL,
  initRing,
  log2For,
  MAX_LOG2,
  PROBE_MS,
  readRing,
  Ring,
  ringReadiness,
  RX,
  segmentSize,
  type Side,
  TX,
} from "./_channel_ring.ts";

export type { WaitOptions } from "./_validate.ts";

/** Options of {@linkcode Channel.create}. */
export interface ChannelOptions {
  /**
   * Bytes of ring space, rounded up to a power of two from 1 KiB to 1 GiB. Messages are stored in
   * 64-byte cells, so a message takes its length rounded up to 64 bytes (an empty one takes 64).
   * The largest message is the whole ring.
   */
  capacity: number;
  /** The segment's name; without one, a fresh Python-style name (`psm_…`) is generated. */
  name?: string;
}

/**
 * Thrown when sending on a channel that has ended ({@linkcode Channel.end}, from any process).
 *
 * @example
 * ```ts
 * import { Channel, ChannelEndedError } from "@x/shm";
 *
 * using ch = Channel.create({ capacity: 4096 });
 * ch.end();
 * try {
 *   ch.trySend(new Uint8Array(1));
 * } catch (error) {
 *   console.log(error instanceof ChannelEndedError); // true
 * }
 * ```
 */
export class ChannelEndedError extends Error {
  /** Builds the error; `message` says what was attempted. */
  constructor(message: string) {
    super(message);
    this.name = "ChannelEndedError";
  }
}

/** The largest ring: 1 GiB. */
const MAX_CAPACITY = CELL * 2 ** MAX_LOG2;

/**
 * How long a blocking call spins before it sleeps in the kernel, in PAUSE_SHORT pauses (about
 * 0.1 µs each; longer pauses count as several), adapted per handle: a spin that ends with a message
 * grows the next one (up to SPIN_MAX, about 55 µs); one that ends asleep halves it (down to
 * SPIN_MIN, about 2 µs). When both processes have a core, spinning turns a round trip into about a
 * microsecond; when they share one, it would only delay the peer. Async calls spin an eighth of it.
 */
const SPIN_MAX = 512;
const SPIN_MIN = 16;
/**
 * Pauses (see `pause` in _sync/order.ts) between two looks of a spinning receiver at an empty ring,
 * or of a spinning sender at a full one. Each look takes the cache line the other side writes, so
 * looking back to back makes every message cost a transfer of the line both ways; a pause lets the
 * other side move a few messages on first.
 *
 * - A receiver waiting for a reply looks every PAUSE_SHORT (about 0.1 µs), for latency.
 * - A receiver that found messages waiting at its last calls is consuming a stream: when it
 *   catches up with the sender, it pauses PAUSE_LONG (about 0.9 µs), so that the sender writes a
 *   few records of one cache line before it looks.
 * - A sender waiting for room pauses from PAUSE_SHORT up to PAUSE_LONG, doubling: room comes at the
 *   receivers' pace, and no latency is lost by waiting for more of it.
 */
const PAUSE_SHORT = 64;
const PAUSE_LONG = 512;
/** Receives that found a message at once, in a row, after which a receiver spins with PAUSE_LONG. */
const STREAM_RUN = 2;

function txPause(i: number): number {
  return i < 3 ? PAUSE_SHORT << i : PAUSE_LONG;
}

/** The first sleep of a receiver that finds a message still being written (see `#waitLoop`). */
const BRIEF_MIN_MS = 0.05;
/** Empty `try*` receives between two checks for a dead sender's message at the head. */
const TRY_RECOVER_EVERY = 1024;

/** The options of a call without any: no timeout, no signal. */
const NO_WAIT: CheckedWait = { timeout: Infinity, deadline: Infinity, signal: undefined };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Checks a wait's options on entry; an aborted signal ends the call before it starts. */
function waitOf(options: WaitOptions | undefined, action: string): CheckedWait {
  if (options === undefined) return NO_WAIT;
  const w = checkWaitOptions(options, action);
  w.signal?.throwIfAborted();
  return w;
}

function checkBuffer(buffer: unknown): Uint8Array {
  if (!(buffer instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot receive from channel: the buffer must be a Uint8Array, got ${describe(buffer)}`,
    );
  }
  if (buffer.length === 0) checkAttached(buffer, "receive from channel", "the buffer");
  return buffer;
}

function checkMany(buffer: unknown, lengths: unknown): void {
  checkBuffer(buffer);
  if (!(lengths instanceof Uint32Array)) {
    throw new TypeError(
      `Cannot receive from channel: lengths must be a Uint32Array, got ${describe(lengths)}`,
    );
  }
  if (lengths.length === 0) {
    checkAttached(lengths, "receive from channel", "lengths");
    throw new RangeError("Cannot receive from channel: lengths is empty");
  }
}

function checkText(text: unknown): string {
  if (typeof text !== "string") {
    throw new TypeError(`Cannot send on channel: the text must be a string, got ${describe(text)}`);
  }
  return text;
}

function jsonBytes(value: unknown): Uint8Array {
  const text = toJSONText(value, "send JSON on a channel");
  if (text === undefined) throw new TypeError(`Cannot send ${describe(value)} as JSON on a channel`);
  return encoder.encode(text);
}

function parsed<T>(message: Uint8Array | null): T | null {
  return message === null ? null : parseJSONText<T>(decoder.decode(message), "receive JSON from a channel");
}

/**
 * A message being written in place: `bytes` lies inside the channel's ring (up to 1 KiB, a private
 * view that `send()` copies into the ring: cheaper than a view of the segment). `send()` publishes
 * it; disposing it unsent (or closing the channel's handle) discards it, and receivers skip it.
 * After either, `bytes` has length 0: the memory is never reachable through it again.
 * Got from {@linkcode Channel.loan}, {@linkcode Channel.loanSync} or {@linkcode Channel.tryLoan}.
 *
 * @example
 * ```ts
 * import { Channel } from "@x/shm";
 *
 * using ch = Channel.create({ capacity: 4096 });
 * const loan = ch.loanSync(3);
 * loan.bytes.set([1, 2, 3]);
 * loan.send();
 * console.log(loan.bytes.length, ch.tryReceive()); // 0 Uint8Array(3) [1, 2, 3]
 * ```
 */
export interface ChannelLoan extends Disposable {
  /** The message's bytes; length 0 once sent or discarded. */
  readonly bytes: Uint8Array;
  /** True once sent or discarded. */
  readonly settled: boolean;
  /**
   * Publishes the message.
   *
   * @throws {TypeError} when it was already sent or discarded
   */
  send(): void;
  /** Discards the message unless it was sent. Safe to call twice. */
  [Symbol.dispose](): void;
}

/**
 * A received message read in place: `bytes` lies inside the channel's ring (or, for a message of
 * up to 1 KiB or one that wraps the ring's end, in a private copy), valid until `release()` or
 * dispose, which give its room back to the senders and empty `bytes` (length 0). Got from {@linkcode Channel.borrow},
 * {@linkcode Channel.borrowSync} or {@linkcode Channel.tryBorrow}.
 *
 * @example
 * ```ts
 * import { Channel } from "@x/shm";
 *
 * using ch = Channel.create({ capacity: 4096 });
 * ch.trySend(new Uint8Array([4, 5]));
 * {
 *   using msg = ch.tryBorrow();
 *   console.log(msg?.bytes); // Uint8Array(2) [4, 5]
 * }
 * ```
 */
export interface ChannelBorrow extends Disposable {
  /** The message's bytes; length 0 once released. */
  readonly bytes: Uint8Array;
  /** True once released. */
  readonly released: boolean;
  /** Gives the message's room back to the senders. Safe to call twice. */
  release(): void;
  /** Same as `release()`. */
  [Symbol.dispose](): void;
}

class Borrow extends Held implements ChannelBorrow {
  #bytes: Uint8Array;
  readonly #views: PrivateViews | null;
  readonly #ring: Ring;
  /** The borrow slot to free on release; 0 for none; -1 once released. */
  #slot: number;
  /** `bytes` came from `views` (a private copy), or is a view to detach (null). */
  constructor(bytes: Uint8Array, views: PrivateViews | null, ring: Ring, slot: number, list: HeldList) {
    super(list);
    this.#bytes = bytes;
    this.#views = views;
    this.#ring = ring;
    this.#slot = slot;
  }
  get bytes(): Uint8Array {
    return this.#bytes;
  }
  get released(): boolean {
    return this.#slot === -1;
  }
  release(): void {
    const slot = this.#slot;
    if (slot === -1) return;
    this.#slot = -1;
    if (this.#views !== null) this.#views.settle(this.#bytes);
    else detach(this.#bytes);
    this.#bytes = NO_BYTES;
    this.unlink();
    if (slot !== 0) this.#ring.release(slot);
  }
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * A bounded queue of variable-size byte messages in a shared memory segment: many processes
 * (Deno, Bun, any mix) may send and receive on the same channel at once. Each message goes to
 * exactly one receiver; messages from one sender arrive in the order it sent them.
 *
 * Every call comes in three forms: the plain name is async (`send`, `receive`, …) and never
 * blocks the event loop; `*Sync` blocks the thread; `try*` never waits. Waiting calls take
 * `{ timeout, signal }`: a timeout throws a `TimeoutError`, an aborted signal rejects with its
 * reason. A waiting call checks for a few microseconds, then sleeps in the kernel (a futex on Linux)
 * until woken, so an idle channel costs no CPU. When nobody waits, sending and receiving are pure
 * `Atomics` operations and one copy, with no system call.
 *
 * "Nothing" is always `null`: from a `try*` receive, no message is ready now; from a waiting one,
 * the channel has ended and every message has been received.
 *
 * Processes that die: a receiver killed at any point (even `kill -9` in the middle of a copy)
 * leaves the message it was copying for the others. A sender killed at any point costs the others
 * at most about half a second: waiting receivers (and senders waiting for room) find that the
 * sender of the stalled message is dead and drop what it had not finished; a half-written message
 * is never delivered.
 *
 * `end()` is the sender side's close: no more messages can be sent, receivers get what is already
 * queued and then `null` (and `for await` ends). `close()` only detaches this handle.
 *
 * @example One process sends, another receives
 * ```ts
 * import { Channel } from "@x/shm";
 *
 * using ch = Channel.create({ capacity: 1 << 20 });
 * using rx = Channel.open(ch.name);           // in another process, typically
 * await ch.send(new Uint8Array([1, 2, 3]));
 * ch.sendJSONSync({ hello: "world" });
 * ch.end();
 * console.log(await rx.receive());            // Uint8Array(3) [1, 2, 3]
 * for await (const msg of rx) console.log(new TextDecoder().decode(msg)); // {"hello":"world"}
 * ```
 */
export class Channel implements Disposable, AsyncIterable<Uint8Array> {
  readonly #shm: SharedMemory;
  readonly #ring: Ring;
  /** The largest message: the ring's bytes. */
  readonly #max: number;
  #closed = false;
  /** Spin budgets of this handle's blocking receives and sends (see SPIN_MAX). */
  #rxSpin = SPIN_MAX;
  #txSpin = SPIN_MAX;
  /** Empty `try*` receives since the last check for a dead sender. */
  #tryEmpty = 0;
  /** Blocking receives in a row that found a message at once (see PAUSE_LONG). */
  #rxRun = 0;
  /** The address of the segment, for loaned and borrowed views. */
  readonly #base: bigint;
  /** Loans and borrows of this handle not yet settled: closing the handle settles them. */
  readonly #held = new HeldList();
  /** Private views of short loans and borrows (see PRIVATE_MAX). */
  readonly #loanViews = new PrivateViews();
  readonly #borrowViews = new PrivateViews();
  /** One borrow attempt, for the blocking wait (the ring keeps what it got). */
  readonly #borrowOnce: () => number;
  /** One receive attempt into `#into`, and one into a new copy: made once, not per wait. */
  readonly #takeIntoOnce: () => number;
  readonly #takeOnce: () => number;
  #into: Uint8Array = NO_BYTES;

  private constructor(shm: SharedMemory, log2: number) {
    this.#shm = shm;
    this.#ring = new Ring(shm, log2);
    this.#max = this.#ring.cells * CELL;
    readinessOf.set(this, ringReadiness(this.#ring)); // for WaitSet
    this.#base = addressIn(shm, 0);
    const ring = this.#ring;
    this.#borrowOnce = () => ring.borrow();
    this.#takeIntoOnce = () => ring.take(this.#into);
    this.#takeOnce = () => ring.take(null);
  }

  /**
   * Creates a channel with `capacity` bytes of ring space (rounded up to a power of two, from 1 KiB
   * to 1 GiB) in a new segment.
   *
   * @throws {TypeError} for a capacity that is not a number
   * @throws {RangeError} for a capacity that is not a positive integer, or larger than 1 GiB
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 64 * 1024, name: "jobs" });
   * console.log(ch.name, ch.capacity); // jobs 65536
   * ```
   */
  static create(options: ChannelOptions): Channel {
    const action = "create channel";
    const o = checkOptions<ChannelOptions>(options, action);
    const capacity = o.capacity;
    if (typeof capacity !== "number") {
      throw new TypeError(`Cannot ${action}: capacity must be a number of bytes, got ${describe(capacity)}`);
    }
    if (!Number.isInteger(capacity) || capacity <= 0) {
      throw new RangeError(`Cannot ${action}: capacity must be a positive integer of bytes, got ${capacity}`);
    }
    const log2 = log2For(capacity);
    if (log2 > MAX_LOG2 || segmentSize(log2) > maxBufferSize) {
      throw new RangeError(
        `Cannot ${action}: capacity ${capacity} is larger than the ${MAX_CAPACITY} bytes a channel holds`,
      );
    }
    const shm = SharedMemory.create({ name: o.name, size: segmentSize(log2) });
    try {
      initRing(shm, log2);
      return new Channel(shm, log2);
    } catch (error) {
      shm[Symbol.dispose]();
      throw error;
    }
  }

  /**
   * Attaches to an existing channel by name.
   *
   * @throws {NotFoundError} when there is no segment of that name
   * @throws {TypeError} when the segment does not hold a channel
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * using other = Channel.open(ch.name);
   * console.log(other.capacity); // 4096
   * ```
   */
  static open(name: string): Channel {
    const shm = SharedMemory.open(name);
    try {
      const log2 = readRing(shm);
      if (typeof log2 === "string") {
        throw new TypeError(`Cannot open channel "${shm.name}": the segment is not a channel (${log2})`);
      }
      return new Channel(shm, log2);
    } catch (error) {
      shm.close();
      throw error;
    }
  }

  /** The name of the segment. */
  get name(): string {
    return this.#shm.name;
  }

  /** The segment the channel lives in. */
  get shm(): SharedMemory {
    return this.#shm;
  }

  /** Bytes of ring space; also the largest message. */
  get capacity(): number {
    return this.#ring.cells * CELL;
  }

  /** True once {@linkcode Channel.end} has been called, by any process. */
  get ended(): boolean {
    this.#check();
    return this.#ring.ended;
  }

  /** True when the channel has ended and every message has been received: nothing more will come. */
  get done(): boolean {
    this.#check();
    return this.#ring.ended && this.#ring.drained;
  }

  /** True once `close()` has been called on this handle. */
  get closed(): boolean {
    return this.#closed;
  }

  // ---- Sending ---------------------------------------------------------------------------------------

  /**
   * Sends `message`, awaiting room while the ring is full, without blocking the event loop.
   *
   * @throws {TypeError} when `message` is not a Uint8Array
   * @throws {RangeError} when the message is larger than the ring
   * @throws {ChannelEndedError} when the channel has ended (also while waiting)
   * @throws {TimeoutError} after `options.timeout` ms without room
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * await ch.send(new TextEncoder().encode("hello"), { timeout: 1000 });
   * ```
   */
  async send(message: Uint8Array, options?: WaitOptions): Promise<void> {
    this.#checkMessage(message);
    const w = waitOf(options, "send on channel");
    const ring = this.#ring;
    if (this.#sent(ring.put(message))) return;
    const attempt = () => ring.put(message);
    if (this.#spinTx(attempt, this.#txSpin >> 3)) return;
    const loop = this.#waitLoop(TX, attempt, w, "send on");
    this.#sent(await ring.txWord.runAsync(loop, w.signal));
  }

  /**
   * Sends `message`, blocking the thread while the ring is full.
   *
   * @throws {TypeError} when `message` is not a Uint8Array
   * @throws {RangeError} when the message is larger than the ring
   * @throws {ChannelEndedError} when the channel has ended (also while waiting)
   * @throws {TimeoutError} after `options.timeout` ms without room
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendSync(new TextEncoder().encode("hello"), { timeout: 1000 });
   * ```
   */
  sendSync(message: Uint8Array, options?: WaitOptions): void {
    this.#checkMessage(message);
    const w = options === undefined ? NO_WAIT : waitOf(options, "send on channel");
    const r = this.#ring.put(message);
    // The slow path apart, so that this one stays small enough to be inlined into the caller.
    if (r !== 1) this.#sendSyncSlow(message, r, w);
  }

  /** `sendSync` after a first attempt gave `r`: spins, then sleeps, for room. */
  #sendSyncSlow(message: Uint8Array, r: number, w: CheckedWait): void {
    const ring = this.#ring;
    this.#sent(r);
    const attempt = () => ring.put(message);
    if (this.#spinTxSync(attempt)) return;
    this.#sent(ring.txWord.runSync(this.#waitLoop(TX, attempt, w, "send on")));
  }

  /**
   * Sends `message` if there is room now; returns false (and sends nothing) when the ring is full.
   *
   * @throws {TypeError} when `message` is not a Uint8Array
   * @throws {RangeError} when the message is larger than the ring
   * @throws {ChannelEndedError} when the channel has ended
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 1024 });
   * let sent = 0;
   * while (ch.trySend(new Uint8Array(100))) sent++;
   * console.log(sent); // 8: each 100-byte message takes two 64-byte cells
   * ```
   */
  trySend(message: Uint8Array): boolean {
    this.#checkMessage(message);
    return this.#sent(this.#ring.put(message));
  }

  /**
   * Sends every message of `messages`, in order, reserving room for as many at a time as fit with
   * one atomic operation: the fast way to send many small messages. Awaits room while the ring is
   * full. Receivers may take the first ones before the last are sent.
   *
   * @throws {TypeError} when `messages` is not an array of Uint8Arrays (nothing is sent)
   * @throws {RangeError} when a message is larger than the ring (nothing is sent)
   * @throws {ChannelEndedError} when the channel has ended
   * @throws {TimeoutError} after `options.timeout` ms without room (what was sent stays sent)
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * await ch.sendMany([new Uint8Array([1]), new Uint8Array([2, 3])]);
   * console.log(ch.tryReceive(), ch.tryReceive()); // Uint8Array(1) [1] Uint8Array(2) [2, 3]
   * ```
   */
  async sendMany(messages: readonly Uint8Array[], options?: WaitOptions): Promise<void> {
    this.#checkMessages(messages);
    const w = waitOf(options, "send on channel");
    const attempt = this.#manyAttempt(messages);
    if (attempt() === 1 || this.#spinTx(attempt, this.#txSpin >> 3)) return;
    await this.#ring.txWord.runAsync(this.#waitLoop(TX, attempt, w, "send on"), w.signal);
  }

  /**
   * Like {@linkcode Channel.sendMany}, blocking the thread while the ring is full.
   *
   * @throws {TypeError} when `messages` is not an array of Uint8Arrays (nothing is sent)
   * @throws {RangeError} when a message is larger than the ring (nothing is sent)
   * @throws {ChannelEndedError} when the channel has ended
   * @throws {TimeoutError} after `options.timeout` ms without room (what was sent stays sent)
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendManySync([new Uint8Array([1]), new Uint8Array([2, 3])]);
   * console.log(ch.receiveSync(), ch.receiveSync()); // Uint8Array(1) [1] Uint8Array(2) [2, 3]
   * ```
   */
  sendManySync(messages: readonly Uint8Array[], options?: WaitOptions): void {
    this.#checkMessages(messages);
    const w = waitOf(options, "send on channel");
    const attempt = this.#manyAttempt(messages);
    if (attempt() === 1) return;
    if (this.#spinTxSync(attempt)) return;
    this.#ring.txWord.runSync(this.#waitLoop(TX, attempt, w, "send on"));
  }

  /**
   * Sends as many of `messages`, in order, as there is room for now; returns how many were sent.
   *
   * @throws {TypeError} when `messages` is not an array of Uint8Arrays (nothing is sent)
   * @throws {RangeError} when a message is larger than the ring (nothing is sent)
   * @throws {ChannelEndedError} when the channel has ended
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 1024 });
   * console.log(ch.trySendMany(Array.from({ length: 20 }, () => new Uint8Array(64)))); // 16
   * ```
   */
  trySendMany(messages: readonly Uint8Array[]): number {
    this.#checkMessages(messages);
    let from = 0;
    while (from < messages.length) {
      const r = this.#ring.putMany(messages, from);
      if (r === ENDED) throw this.#endedError();
      if (r < 0) break;
      from += r;
    }
    return from;
  }

  /**
   * Sends a string as UTF-8, awaiting room.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * await ch.sendString("héllo");
   * console.log(await ch.receiveString()); // héllo
   * ```
   */
  async sendString(text: string, options?: WaitOptions): Promise<void> {
    await this.send(encoder.encode(checkText(text)), options);
  }

  /**
   * Sends a string as UTF-8, blocking the thread while the ring is full.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendStringSync("héllo");
   * console.log(ch.receiveStringSync()); // héllo
   * ```
   */
  sendStringSync(text: string, options?: WaitOptions): void {
    this.sendSync(encoder.encode(checkText(text)), options);
  }

  /**
   * Sends a string as UTF-8 if there is room now; returns false when the ring is full.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * console.log(ch.trySendString("hi"), ch.tryReceiveString()); // true hi
   * ```
   */
  trySendString(text: string): boolean {
    return this.trySend(encoder.encode(checkText(text)));
  }

  /**
   * Sends a value as JSON text, awaiting room.
   *
   * @throws {TypeError} when the value has no JSON form (`undefined`, a function)
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * await ch.sendJSON({ id: 1, tags: ["a"] });
   * console.log(await ch.receiveJSON()); // { id: 1, tags: ["a"] }
   * ```
   */
  async sendJSON(value: unknown, options?: WaitOptions): Promise<void> {
    await this.send(jsonBytes(value), options);
  }

  /**
   * Sends a value as JSON text, blocking the thread while the ring is full.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendJSONSync({ id: 1, tags: ["a"] });
   * console.log(ch.receiveJSONSync()); // { id: 1, tags: ["a"] }
   * ```
   */
  sendJSONSync(value: unknown, options?: WaitOptions): void {
    this.sendSync(jsonBytes(value), options);
  }

  /**
   * Sends a value as JSON text if there is room now; returns false when the ring is full.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * console.log(ch.trySendJSON([1, 2]), ch.tryReceiveJSON()); // true [ 1, 2 ]
   * ```
   */
  trySendJSON(value: unknown): boolean {
    return this.trySend(jsonBytes(value));
  }

  /**
   * Ends the channel, from the sender side: sending is refused from now on (in every process),
   * receivers get the messages already queued and then `null`, and `for await` loops end. Waiting
   * senders and receivers are woken. Safe to call more than once, from any process.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendStringSync("last");
   * ch.end();
   * console.log(ch.receiveStringSync(), ch.receiveSync()); // last null
   * ```
   */
  end(): void {
    this.#check();
    this.#ring.end();
  }

  // ---- Loans: writing in place -----------------------------------------------------------------------

  /**
   * Lends `length` bytes of the ring to write a message in place, awaiting room while the ring is
   * full: no copy above 1 KiB (up to 1 KiB, `loan.bytes` is a private view copied into the ring on
   * send, cheaper than a view of the segment). Fill `loan.bytes` (with `set()` for speed), then
   * `loan.send()`; dispose it unsent to discard it. A loan
   * is one contiguous view: when it would wrap the ring's end, the cells up to the end are skipped
   * (a dropped message receivers pass over), so a loan may take up to twice its cells. Until it is
   * sent, receivers wait at it (messages reserved after it wait behind it); a process killed while
   * holding one costs them at most about half a second, like a sender killed mid-copy.
   *
   * @throws {TypeError} when `length` is not a number
   * @throws {RangeError} when `length` is not an integer from 0 to the ring's capacity
   * @throws {ChannelEndedError} when the channel has ended (also while waiting)
   * @throws {TimeoutError} after `options.timeout` ms without room
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 1 << 20 });
   * {
   *   using loan = await ch.loan(5, { timeout: 1000 });
   *   new TextEncoder().encodeInto("hello", loan.bytes);
   *   loan.send();
   * }
   * console.log(ch.tryReceiveString()); // hello
   * ```
   */
  async loan(length: number, options?: WaitOptions): Promise<ChannelLoan> {
    this.#checkLength(length);
    const w = waitOf(options, "loan from channel");
    const ring = this.#ring;
    let at = 0;
    const attempt = () => {
      const r = ring.reserve(length);
      if (r === 1) at = ring.reserved;
      return r;
    };
    if (!this.#sent(attempt())) {
      this.#sent(await ring.txWord.runAsync(this.#waitLoop(TX, attempt, w, "loan from"), w.signal));
    }
    return this.#lend(at, length);
  }

  /**
   * Like {@linkcode Channel.loan}, blocking the thread while the ring is full.
   *
   * @throws {TypeError} when `length` is not a number
   * @throws {RangeError} when `length` is not an integer from 0 to the ring's capacity
   * @throws {ChannelEndedError} when the channel has ended (also while waiting)
   * @throws {TimeoutError} after `options.timeout` ms without room
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * using loan = ch.loanSync(2, { timeout: 1000 });
   * loan.bytes[0] = 42;
   * loan.send();
   * console.log(ch.tryReceive()); // Uint8Array(2) [42, 0]
   * ```
   */
  loanSync(length: number, options?: WaitOptions): ChannelLoan {
    this.#checkLength(length);
    const w = options === undefined ? NO_WAIT : waitOf(options, "loan from channel");
    const ring = this.#ring;
    if (!this.#sent(ring.reserve(length))) {
      this.#sent(ring.txWord.runSync(this.#waitLoop(TX, () => ring.reserve(length), w, "loan from")));
    }
    return this.#lend(ring.reserved, length);
  }

  /**
   * Lends `length` bytes of the ring if there is room now (see {@linkcode Channel.loan}); `null`
   * when the ring is full.
   *
   * @throws {TypeError} when `length` is not a number
   * @throws {RangeError} when `length` is not an integer from 0 to the ring's capacity
   * @throws {ChannelEndedError} when the channel has ended
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 1024 });
   * const loan = ch.tryLoan(1024);
   * console.log(loan?.bytes.length, ch.tryLoan(1)); // 1024 null
   * loan?.[Symbol.dispose](); // discarded
   * console.log(ch.tryReceive()); // null
   * ```
   */
  tryLoan(length: number): ChannelLoan | null {
    this.#checkLength(length);
    const ring = this.#ring;
    return this.#sent(ring.reserve(length)) ? this.#lend(ring.reserved, length) : null;
  }

  /**
   * The loan of the `length` bytes reserved at position `at`: a view into the ring, or, up to
   * PRIVATE_MAX bytes, a private view copied into the ring on send (cheaper than a foreign view).
   */
  #lend(at: number, length: number): ChannelLoan {
    const ring = this.#ring;
    let loan: Loan;
    if (length <= PRIVATE_MAX) {
      const views = this.#loanViews;
      loan = new Loan(views.take(length), (send, bytes) => {
        // A view its holder detached is sent as zeros.
        if (send) ring.writeAt(at, bytes.length === length ? bytes : new Uint8Array(length), views);
        views.settle(bytes);
        ring.commit(at, send ? length : -this.#cellsOf(length));
      }, this.#held);
    } else {
      const view = new Uint8Array(foreignBuffer(pointerAt(this.#base + BigInt(ring.offsetOf(at))), length));
      loan = new Loan(view, (send, bytes) => {
        detach(bytes);
        ring.commit(at, send ? length : -this.#cellsOf(length));
      }, this.#held);
    }
    return loan;
  }

  #cellsOf(length: number): number {
    return length === 0 ? 1 : Math.ceil(length / CELL);
  }

  #checkLength(length: number): void {
    checkLoanLength(length, this.#max, "channel", this.name);
  }

  // ---- Receiving -------------------------------------------------------------------------------------

  /**
   * The next message, awaited without blocking the event loop; `null` once the channel has ended
   * and is drained.
   *
   * @throws {TimeoutError} after `options.timeout` ms without a message
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * setTimeout(() => ch.trySendString("later"), 10);
   * console.log(await ch.receive({ timeout: 5000 })); // Uint8Array(5) [...]
   * ```
   */
  async receive(options?: WaitOptions): Promise<Uint8Array | null> {
    const w = waitOf(options, "receive from channel");
    const ring = this.#ring;
    let got: Uint8Array | null = null;
    const attempt = () => {
      const n = ring.take(null);
      if (n >= 0) got = ring.out;
      return n;
    };
    if (await this.#receiveAsync(attempt, w) === ENDED) return null;
    return got;
  }

  /**
   * The next message, blocking the thread while the channel is empty; `null` once the channel has
   * ended and is drained.
   *
   * @throws {TimeoutError} after `options.timeout` ms without a message
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.trySend(new Uint8Array([1]));
   * console.log(ch.receiveSync({ timeout: 1000 })); // Uint8Array(1) [1]
   * ```
   */
  receiveSync(options?: WaitOptions): Uint8Array | null {
    const w = waitOf(options, "receive from channel");
    const ring = this.#ring;
    const n = ring.take(null);
    if (n === EMPTY) return this.#receiveSync(this.#takeOnce, w) === ENDED ? null : ring.out;
    this.#rxRun++;
    return n === ENDED ? null : ring.out;
  }

  /**
   * The next message if one is ready now, else `null` (see {@linkcode Channel.done} to tell an ended
   * channel from a momentarily empty one).
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * console.log(ch.tryReceive()); // null
   * ```
   */
  tryReceive(): Uint8Array | null {
    return this.#tried(this.#ring.take(null)) ? this.#ring.out : null;
  }

  /**
   * Copies the next message into `buffer`, awaiting it, and returns its length; `null` once the
   * channel has ended and is drained. No allocation.
   *
   * @throws {TypeError} when `buffer` is not a Uint8Array
   * @throws {RangeError} when the message is longer than `buffer` (it stays in the channel)
   * @throws {TimeoutError} after `options.timeout` ms without a message
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * const buf = new Uint8Array(64);
   * await ch.send(new Uint8Array([5]));
   * console.log(await ch.receiveInto(buf)); // 1
   * ```
   */
  async receiveInto(buffer: Uint8Array, options?: WaitOptions): Promise<number | null> {
    checkBuffer(buffer);
    const w = waitOf(options, "receive from channel");
    const ring = this.#ring;
    const n = await this.#receiveAsync(() => ring.take(buffer), w);
    return n === ENDED ? null : n;
  }

  /**
   * Copies the next message into `buffer`, blocking the thread while the channel is empty, and
   * returns its length; `null` once the channel has ended and is drained. No allocation: the fast
   * way to receive.
   *
   * @throws {TypeError} when `buffer` is not a Uint8Array
   * @throws {RangeError} when the message is longer than `buffer` (it stays in the channel)
   * @throws {TimeoutError} after `options.timeout` ms without a message
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * const buf = new Uint8Array(64);
   * ch.sendSync(new Uint8Array([5, 6]));
   * console.log(ch.receiveIntoSync(buf), buf[1]); // 2 6
   * ```
   */
  receiveIntoSync(buffer: Uint8Array, options?: WaitOptions): number | null {
    checkBuffer(buffer);
    const w = options === undefined ? NO_WAIT : waitOf(options, "receive from channel");
    const n = this.#ring.take(buffer);
    if (n >= 0) {
      this.#rxRun++;
      return n;
    }
    // The slow path apart, so that this one stays small enough to be inlined into the caller.
    return this.#receiveIntoSlow(buffer, n, w);
  }

  /** `receiveIntoSync` after a first attempt gave `n` (EMPTY or ENDED). */
  #receiveIntoSlow(buffer: Uint8Array, n: number, w: CheckedWait): number | null {
    if (n === EMPTY) {
      // Nothing else runs on this thread until it returns: `#into` stays this buffer.
      this.#into = buffer;
      try {
        n = this.#receiveSync(this.#takeIntoOnce, w);
      } finally {
        this.#into = NO_BYTES;
      }
    }
    return n === ENDED ? null : n;
  }

  /**
   * Copies the next message, if one is ready now, into `buffer` and returns its length; `null` when
   * none is ready.
   *
   * @throws {TypeError} when `buffer` is not a Uint8Array
   * @throws {RangeError} when the message is longer than `buffer` (it stays in the channel)
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * const buf = new Uint8Array(256);
   * ch.trySend(new Uint8Array([7, 8]));
   * console.log(ch.tryReceiveInto(buf), buf[1], ch.tryReceiveInto(buf)); // 2 8 null
   * ```
   */
  tryReceiveInto(buffer: Uint8Array): number | null {
    checkBuffer(buffer);
    const n = this.#ring.take(buffer);
    return this.#tried(n) ? n : null;
  }

  /**
   * Copies as many ready messages as fit into `buffer`, back to back, and their lengths into
   * `lengths`, claiming them all with one atomic operation: the fast way to receive many small
   * messages. Awaits at least one; returns how many were received, or `null` once the channel
   * has ended and is drained. Message `i` starts where message `i - 1` ended.
   *
   * @throws {TypeError} when `buffer` is not a Uint8Array or `lengths` not a Uint32Array
   * @throws {RangeError} when `lengths` is empty, or the next message alone is longer than `buffer`
   * (it stays in the channel)
   * @throws {TimeoutError} after `options.timeout` ms without a message
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * await ch.sendMany([new Uint8Array([1]), new Uint8Array([2, 3])]);
   * const buf = new Uint8Array(1024);
   * const lengths = new Uint32Array(64);
   * const n = await ch.receiveMany(buf, lengths);
   * console.log(n, lengths[0], lengths[1], buf.subarray(0, 3)); // 2 1 2 Uint8Array(3) [1, 2, 3]
   * ```
   */
  async receiveMany(buffer: Uint8Array, lengths: Uint32Array, options?: WaitOptions): Promise<number | null> {
    checkMany(buffer, lengths);
    const w = waitOf(options, "receive from channel");
    const ring = this.#ring;
    const n = await this.#receiveAsync(() => ring.takeMany(buffer, lengths), w);
    return n === ENDED ? null : n;
  }

  /**
   * Like {@linkcode Channel.receiveMany}, blocking the thread while the channel is empty.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendManySync([new Uint8Array([1]), new Uint8Array([2, 3])]);
   * ch.end();
   * const buf = new Uint8Array(1024);
   * const lengths = new Uint32Array(64);
   * console.log(ch.receiveManySync(buf, lengths), ch.receiveManySync(buf, lengths)); // 2 null
   * ```
   */
  receiveManySync(buffer: Uint8Array, lengths: Uint32Array, options?: WaitOptions): number | null {
    checkMany(buffer, lengths);
    const w = waitOf(options, "receive from channel");
    const ring = this.#ring;
    let n = ring.takeMany(buffer, lengths);
    if (n === EMPTY) n = this.#receiveSync(() => ring.takeMany(buffer, lengths), w);
    return n === ENDED ? null : n;
  }

  /**
   * Like {@linkcode Channel.receiveMany}, without waiting: `null` when no message is ready.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * console.log(ch.tryReceiveMany(new Uint8Array(256), new Uint32Array(16))); // null
   * ```
   */
  tryReceiveMany(buffer: Uint8Array, lengths: Uint32Array): number | null {
    checkMany(buffer, lengths);
    const n = this.#ring.takeMany(buffer, lengths);
    return this.#tried(n) ? n : null;
  }

  /**
   * The next message as UTF-8 text, awaited; `null` once the channel is done.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * await ch.sendString("hi");
   * console.log(await ch.receiveString()); // hi
   * ```
   */
  async receiveString(options?: WaitOptions): Promise<string | null> {
    const m = await this.receive(options);
    return m === null ? null : decoder.decode(m);
  }

  /**
   * The next message as UTF-8 text, blocking the thread for it; `null` once the channel is done.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendStringSync("hi");
   * console.log(ch.receiveStringSync()); // hi
   * ```
   */
  receiveStringSync(options?: WaitOptions): string | null {
    const m = this.receiveSync(options);
    return m === null ? null : decoder.decode(m);
  }

  /**
   * The next message as UTF-8 text if one is ready now, else `null`.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * console.log(ch.tryReceiveString()); // null
   * ```
   */
  tryReceiveString(): string | null {
    const m = this.tryReceive();
    return m === null ? null : decoder.decode(m);
  }

  /**
   * The next message parsed as JSON, awaited; `null` once the channel is done (so a JSON `null`
   * message and the end look the same: check {@linkcode Channel.done} if that matters).
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * await ch.sendJSON([1, 2]);
   * console.log(await ch.receiveJSON<number[]>()); // [ 1, 2 ]
   * ```
   */
  async receiveJSON<T = unknown>(options?: WaitOptions): Promise<T | null> {
    return parsed<T>(await this.receive(options));
  }

  /**
   * The next message parsed as JSON, blocking the thread for it; `null` once the channel is done.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendJSONSync([1, 2]);
   * console.log(ch.receiveJSONSync<number[]>()); // [ 1, 2 ]
   * ```
   */
  receiveJSONSync<T = unknown>(options?: WaitOptions): T | null {
    return parsed<T>(this.receiveSync(options));
  }

  /**
   * The next message parsed as JSON if one is ready now, else `null`.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.trySendJSON({ a: 1 });
   * console.log(ch.tryReceiveJSON()); // { a: 1 }
   * ```
   */
  tryReceiveJSON<T = unknown>(): T | null {
    return parsed<T>(this.tryReceive());
  }

  /**
   * Receives messages until the channel is done (ended and drained), awaiting each one.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * await ch.sendString("a");
   * await ch.sendString("b");
   * ch.end();
   * for await (const msg of ch) console.log(msg.length); // 1, 1
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const m = await this.receive();
      if (m === null) return;
      yield m;
    }
  }

  // ---- Borrows: reading in place ---------------------------------------------------------------------

  /**
   * The next message read in place, awaited without blocking the event loop; `null` once the
   * channel has ended and is drained. `msg.bytes` stays valid until `msg.release()` (or dispose),
   * and its room stays taken until then: release soon. Other receivers go on with the messages
   * behind it. A message of up to 1 KiB, or one that wraps the ring's end, is handed over as a
   * private copy (its room is still held until the release).
   *
   * A receiver killed while holding a borrow does not lose the message: within about half a
   * second, waiting receivers find its holder dead and the next receive gets it again (by copy),
   * possibly after messages that were behind it. Delivery is then at least once: the dead process
   * may have seen it.
   *
   * @throws {TimeoutError} after `options.timeout` ms without a message
   * @throws {Error} when 32 messages of the channel are borrowed already, by any processes
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * await ch.sendString("in place");
   * using msg = await ch.borrow({ timeout: 1000 });
   * console.log(new TextDecoder().decode(msg?.bytes)); // in place
   * ```
   */
  async borrow(options?: WaitOptions): Promise<ChannelBorrow | null> {
    const w = waitOf(options, "borrow from channel");
    const attempt = this.#borrowAttempt();
    if (await this.#receiveAsync(attempt, w) === ENDED) return null;
    return this.#borrowed(attempt.len, attempt.slot, attempt.pos, attempt.copy);
  }

  /**
   * Like {@linkcode Channel.borrow}, blocking the thread while the channel is empty.
   *
   * @throws {TimeoutError} after `options.timeout` ms without a message
   * @throws {Error} when 32 messages of the channel are borrowed already, by any processes
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.trySend(new Uint8Array([9]));
   * const msg = ch.borrowSync({ timeout: 1000 });
   * console.log(msg?.bytes); // Uint8Array(1) [9]
   * msg?.release();
   * console.log(msg?.bytes.length); // 0
   * ```
   */
  borrowSync(options?: WaitOptions): ChannelBorrow | null {
    const w = options === undefined ? NO_WAIT : waitOf(options, "borrow from channel");
    // Nothing else runs on this thread until it returns: what the ring's last borrow got is ours.
    const ring = this.#ring;
    let n = ring.borrow();
    if (n === EMPTY) n = this.#receiveSync(this.#borrowOnce, w);
    return n === ENDED ? null : this.#borrowed(n, ring.borrowSlot, ring.borrowPos, ring.out);
  }

  /**
   * The next message read in place if one is ready now (see {@linkcode Channel.borrow}), else
   * `null`.
   *
   * @throws {Error} when 32 messages of the channel are borrowed already, by any processes
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * console.log(ch.tryBorrow()); // null
   * ```
   */
  tryBorrow(): ChannelBorrow | null {
    const ring = this.#ring;
    const n = ring.borrow();
    return this.#tried(n) ? this.#borrowed(n, ring.borrowSlot, ring.borrowPos, ring.out) : null;
  }

  /** One attempt at a borrow, remembering what it got (the handle's waits may interleave). */
  #borrowAttempt(): (() => number) & { len: number; slot: number; pos: number; copy: Uint8Array } {
    const ring = this.#ring;
    const attempt = Object.assign(() => {
      const n = ring.borrow();
      if (n >= 0) {
        attempt.len = n;
        attempt.slot = ring.borrowSlot;
        attempt.pos = ring.borrowPos;
        attempt.copy = ring.out;
      }
      return n;
    }, { len: 0, slot: 0, pos: 0, copy: NO_BYTES as Uint8Array });
    return attempt;
  }

  /**
   * The borrow of the message of `len` bytes a borrow got: held in borrow slot `slot` at position
   * `pos`, or, with `slot` 0, the copy `copy`.
   */
  #borrowed(len: number, slot: number, pos: number, copy: Uint8Array): ChannelBorrow {
    const ring = this.#ring;
    let bytes: Uint8Array;
    let views: PrivateViews | null = null;
    if (slot === 0) bytes = copy;
    else if (len <= PRIVATE_MAX) {
      // A private copy: cheaper than a view of foreign memory. The slot still holds the message
      // until the release, so that a holder killed meanwhile does not lose it.
      views = this.#borrowViews;
      bytes = ring.readAt(pos, len, views);
    } else bytes = new Uint8Array(foreignBuffer(pointerAt(this.#base + BigInt(ring.offsetOf(pos))), len));
    return new Borrow(bytes, views, ring, slot, this.#held);
  }

  /**
   * Detaches this handle (the channel itself stays, see `unlink()` and `end()`). Pending async
   * waits of this handle reject. Safe to call twice.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * const ch = Channel.create({ capacity: 4096 });
   * ch.unlink();
   * ch.close();
   * ch.close();
   * ```
   */
  close(): void {
    this.#detach();
    this.#shm.close();
  }

  /**
   * Removes the segment's name; processes that have the channel open keep using it.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * const ch = Channel.create({ capacity: 4096 });
   * ch.unlink();
   * ch.close();
   * ```
   */
  unlink(): void {
    this.#shm.unlink();
  }

  /**
   * Closes the handle and, if this handle created the channel, removes its segment the way
   * `SharedMemory`'s dispose does (never a segment someone re-created under the same name).
   */
  [Symbol.dispose](): void {
    this.#detach();
    this.#shm[Symbol.dispose]();
  }

  /** Marks the handle closed and wakes waiters, so that async waits of ours end (others re-check). */
  #detach(): void {
    if (this.#closed) return;
    // Unsent loans are discarded and borrows released while the ring is still mapped.
    this.#held.disposeAll();
    this.#closed = true;
    this.#ring.closed = true;
    this.#ring.wakeAll();
  }

  // ---- Waiting ---------------------------------------------------------------------------------------

  /**
   * Sleeps on the word of `side` until `attempt` gives something other than EMPTY or FULL,
   * and returns that. Before each sleep it gives up at the deadline or on an aborted signal, and
   * lets the ring check for a dead sender (so every sleep is at most PROBE_MS long, or the waiter
   * table makes that check each PROBE_MS).
   */
  *#waitLoop(
    side: Side,
    attempt: () => number,
    w: CheckedWait,
    action: string,
  ): Generator<Sleep, number, WaitResult> {
    const ring = this.#ring;
    let brief = 0;
    for (;;) {
      const seq = ring.prepareSleep(side);
      const r = attempt();
      if (r !== EMPTY && r !== FULL) return r;
      w.signal?.throwIfAborted();
      const now = performance.now();
      if (now >= w.deadline) throw this.#timeout(action, w.timeout, side);
      if (ring.recover(now)) continue;
      const left = w.deadline - now;
      if (side === RX && ring.pending()) {
        // A message is being written, and its sender may not wake this receiver (`Ring.pending`):
        // sleep briefly, twice as long each time. A loan's commit wakes sleepers.
        brief = Math.min(brief === 0 ? BRIEF_MIN_MS : brief * 2, PROBE_MS, left);
        yield [seq, brief, brief, () => ring.recover(performance.now())];
        continue;
      }
      brief = 0;
      // On waiter threads the sleep lasts to the deadline; the waiter table runs `recover` each
      // slice, once for all the waits of this process on the word (`Watch` in _sync/futex.ts).
      yield [seq, Math.min(left, PROBE_MS), left, () => ring.recover(performance.now())];
    }
  }

  /**
   * Tries a send `attempt` (1 when sent; throws once the channel has ended) for `budget` short
   * pauses' worth of spinning (see `txPause`); true once it went through.
   */
  #spinTx(attempt: () => number, budget: number): boolean {
    for (let i = 0, left = budget * PAUSE_SHORT; left > 0; i++) {
      left -= pause(txPause(i));
      if (this.#sent(attempt())) return true;
    }
    return false;
  }

  /** `#spinTx` for a blocking send: spins for the handle's budget, and adapts it (see SPIN_MAX). */
  #spinTxSync(attempt: () => number): boolean {
    const budget = this.#txSpin;
    const sent = this.#spinTx(attempt, budget);
    this.#txSpin = sent ? Math.min(SPIN_MAX, budget * 2) : Math.max(SPIN_MIN, budget >> 1);
    return sent;
  }

  /** Receives with `attempt` after a first one found nothing: after a spin, or after sleeps (blocking the thread). */
  #receiveSync(attempt: () => number, w: CheckedWait): number {
    let n: number;
    const budget = this.#rxSpin;
    const rxPause = this.#rxRun >= STREAM_RUN ? PAUSE_LONG : PAUSE_SHORT;
    this.#rxRun = 0;
    for (let left = budget * PAUSE_SHORT; left > 0;) {
      left -= pause(rxPause);
      n = attempt();
      if (n !== EMPTY) {
        this.#rxSpin = Math.min(SPIN_MAX, budget * 2);
        return n;
      }
    }
    this.#rxSpin = Math.max(SPIN_MIN, budget >> 1);
    return this.#ring.rxWord.runSync(this.#waitLoop(RX, attempt, w, "receive from"));
  }

  /** Receives with `attempt`: at once, after a short spin, or after sleeps that leave the event loop running. */
  async #receiveAsync(attempt: () => number, w: CheckedWait): Promise<number> {
    let n = attempt();
    if (n !== EMPTY) return n;
    for (let i = this.#rxSpin >> 3; i > 0; i--) {
      pause(PAUSE_SHORT);
      n = attempt();
      if (n !== EMPTY) return n;
    }
    return await this.#ring.rxWord.runAsync(this.#waitLoop(RX, attempt, w, "receive from"), w.signal);
  }

  /** One attempt of sending `messages` from where the last one stopped: 1 once all are sent. */
  #manyAttempt(messages: readonly Uint8Array[]): () => number {
    const ring = this.#ring;
    let from = 0;
    return () => {
      while (from < messages.length) {
        const r = ring.putMany(messages, from);
        if (r === ENDED) throw this.#endedError();
        if (r < 0) return r;
        from += r;
      }
      return 1;
    };
  }

  /** True when a send went through; throws when the channel has ended. */
  #sent(r: number): boolean {
    if (r === 1) return true;
    if (r === ENDED) throw this.#endedError();
    return false;
  }

  /** True when a `try*` receive got something; now and then, when not, checks for a dead sender. */
  #tried(n: number): boolean {
    if (n >= 0) return true;
    if (++this.#tryEmpty >= TRY_RECOVER_EVERY) {
      this.#tryEmpty = 0;
      this.#ring.recover(performance.now());
    }
    return false;
  }

  // ---- Checks ----------------------------------------------------------------------------------------

  #checkMessage(message: Uint8Array): void {
    // A detached view reads as length 0: only then is the buffer looked at.
    if (message instanceof Uint8Array && message.length <= this.#max && message.length !== 0) return;
    if (!(message instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot send on channel: the message must be a Uint8Array, got ${describe(message)}`,
      );
    }
    checkAttached(message, `send on channel "${this.name}"`, "the message");
    if (message.length > this.#max) this.#tooLarge(message.length, "the message");
  }

  #checkMessages(messages: readonly Uint8Array[]): void {
    if (!Array.isArray(messages)) {
      throw new TypeError(`Cannot send on channel: messages must be an array, got ${describe(messages)}`);
    }
    const max = this.#ring.cells * CELL;
    for (let i = 0; i < messages.length; i++) {
      const m: unknown = messages[i];
      if (!(m instanceof Uint8Array)) {
        throw new TypeError(`Cannot send on channel: message ${i} is not a Uint8Array, got ${describe(m)}`);
      }
      if (m.length > max) this.#tooLarge(m.length, `message ${i}`);
      if (m.length === 0) checkAttached(m, `send on channel "${this.name}"`, `message ${i}`);
    }
  }

  #tooLarge(length: number, what: string): never {
    throw new RangeError(
      `Cannot send on channel "${this.name}": ${what} is ${length} bytes and the ring holds ${this.capacity}`,
    );
  }

  #check(): void {
    if (this.#closed) throw new TypeError(`Cannot use channel "${this.name}": this handle is closed`);
  }

  #endedError(): ChannelEndedError {
    return new ChannelEndedError(`Cannot send on channel "${this.name}": it has ended`);
  }

  #timeout(action: string, timeout: number, side: Side): TimeoutError {
    const what = side === RX ? "no message came" : "no room came free";
    return new TimeoutError(`Cannot ${action} channel "${this.name}": ${what} within ${timeout} ms`, timeout);
  }
}
