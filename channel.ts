/**
 * `Channel`: a bounded queue of byte messages in shared memory, for any number of sending and
 * receiving processes.
 *
 * @module
 */

import { SharedMemory } from "./shared_memory.ts";
import { TimeoutError } from "./errors.ts";
import { FutexWord } from "./_sync/futex.ts";
import { checkOptions, describe } from "./_validate.ts";

/** Options of {@linkcode Channel.create}. */
export interface ChannelOptions {
  /**
   * Bytes of ring space, rounded up to a power of two of at least 1 KiB. Messages are stored in
   * 64-byte cells, so a message takes its length rounded up to 64 bytes (an empty one takes 64).
   * The largest message is the whole ring.
   */
  capacity: number;
  /** The segment's name; without one, a fresh Python-style name (`psm_…`) is generated. */
  name?: string;
}

/** Options of the waiting calls of a {@linkcode Channel}. */
export interface ChannelWaitOptions {
  /** Give up with a `TimeoutError` after this many milliseconds. Default: wait as long as it takes. */
  timeout?: number;
}

/**
 * Thrown when sending on a channel that has been ended with {@linkcode Channel.end}.
 *
 * @example
 * ```ts
 * import { Channel, ChannelClosedError } from "@x/shm";
 *
 * using ch = Channel.create({ capacity: 4096 });
 * ch.end();
 * try {
 *   ch.send(new Uint8Array(1));
 * } catch (error) {
 *   console.log(error instanceof ChannelClosedError); // true
 * }
 * ```
 */
export class ChannelClosedError extends Error {
  /** Builds the error; `message` says what was attempted. */
  constructor(message: string) {
    super(message);
    this.name = "ChannelClosedError";
  }
}

// ---- Layout ------------------------------------------------------------------------------------------
// Little-endian Int32s; positions count 64-byte cells and wrap at 2^32.
//   0 magic "CHNL", 4 version 1, 8 log2(cells), 12 log2(cell size) = 6
//   64 tail (next position to reserve)      128 head (next position to take)
//   192 receivers' wake word, 196 "a receiver may sleep" flag
//   256 senders' wake word, 260 "a sender may sleep" flag          320 ended flag
//   384 per cell [stamp, length]; then the data, cells × 64 bytes.
// A message of n bytes takes max(1, ceil(n / 64)) consecutive cells (it may wrap past the end). Its
// sender writes the length, the bytes, the stamp of every later cell, and last the stamp of its first
// cell: 1 + (position >>> log2(cells)), the lap. A receiver takes the message at the head when that
// stamp matches: it copies the bytes out, then moves the head past it with one compare-and-swap.
// Positions wrap at 2^32, so lap numbers repeat every 2^(32 - log2(cells)) laps. Stamping every cell of
// every message would be costly for large messages; instead, on every 2^min(10, 30 - log2(cells))-th
// lap the senders also stamp the inner cells of their messages. Every cell then carries a stamp at
// most that many laps old, never old enough to equal the current lap's: a stale stamp can never pass
// for a committed message.
const MAGIC = 0x4c4e4843; // "CHNL" little-endian
const VERSION = 1;
const CELL_SHIFT = 6;
const CELL = 1 << CELL_SHIFT;
const MIN_CELLS = 16;
/** log2 of the Int32s of metadata per cell. */
const META_SHIFT = 1;
const HEADER = 384;
// Int32 indexes.
const I_MAGIC = 0;
const I_VERSION = 1;
const I_LOG2 = 2;
const I_CELL_SHIFT = 3;
const I_TAIL = 16; // byte 64: next position senders reserve
const I_HEAD = 32; // byte 128: next position receivers take
const I_RX_SEQ = 48; // byte 192: bumped to wake receivers
const I_RX_WAITERS = 49; // 1 while some receiver may sleep
const I_TX_SEQ = 64; // byte 256: bumped to wake senders
const I_TX_WAITERS = 65; // 1 while some sender may sleep
const I_ENDED = 80; // byte 320
const B_RX_SEQ = I_RX_SEQ * 4;
const B_TX_SEQ = I_TX_SEQ * 4;

/**
 * Busy checks a blocking call makes before it sleeps in the kernel, adapted per handle: a spin that
 * ends with a message grows the next one (up to SPIN_MAX, some tens of µs); one that ends asleep
 * halves it (down to SPIN_MIN, about a µs). When both processes have a core, spinning turns a round
 * trip into about a microsecond; when they share one, it would only delay the peer.
 */
const SPIN_MAX = 2048;
const SPIN_MIN = 64;

function grown(budget: number): number {
  return Math.min(SPIN_MAX, budget * 2);
}

function shrunk(budget: number): number {
  return Math.max(SPIN_MIN, budget >> 1);
}
const EMPTY = -1;
const ENDED = -2;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function segmentSize(cells: number): number {
  return HEADER + (cells << META_SHIFT) * 4 + cells * CELL;
}

function checkTimeout(options: ChannelWaitOptions | undefined, action: string): number {
  const o = checkOptions<ChannelWaitOptions>(options, action);
  const t = o.timeout;
  if (t === undefined) return Infinity;
  if (typeof t !== "number" || Number.isNaN(t) || t < 0) {
    throw new RangeError(`Cannot ${action}: timeout must be a non-negative number of ms, got ${describe(t)}`);
  }
  return t;
}

/**
 * A bounded queue of variable-size byte messages in a shared memory segment: many processes
 * (Deno, Bun, any mix) may send and receive on the same channel at once. Each message goes to
 * exactly one receiver; messages from one sender arrive in the order it sent them.
 *
 * Senders block (or await) while the ring is full, receivers while it is empty; a blocking call
 * checks for a few tens of microseconds and then sleeps in the kernel (a futex on Linux) until
 * woken, so an idle channel costs no CPU. When nobody waits, sending and receiving are pure
 * `Atomics` operations and one copy, with no system call.
 *
 * A receiver copies a message out before claiming it with one atomic compare-and-swap, so a
 * receiver killed at any point (even `kill -9` in the middle of a copy) never leaves the ring
 * stuck: the message it was copying stays for the others. A sender killed between reserving room
 * and finishing its message does block the channel at that message.
 *
 * `end()` is the sender side's close: no more messages can be sent, receivers get what is already
 * queued and then `null` (and `for await` ends). `close()` only detaches this handle.
 *
 * @example One process sends, another receives
 * ```ts
 * import { Channel } from "@x/shm";
 *
 * const ch = Channel.create({ capacity: 1 << 20 });
 * const rx = Channel.open(ch.name);           // in another process, typically
 * ch.send(new Uint8Array([1, 2, 3]));
 * ch.sendJSON({ hello: "world" });
 * ch.end();
 * console.log(rx.receive());                  // Uint8Array(3) [1, 2, 3]
 * for await (const msg of rx) console.log(new TextDecoder().decode(msg)); // {"hello":"world"}
 * rx.close();
 * ch.close();
 * ch.unlink();
 * ```
 */
export class Channel implements Disposable, AsyncIterable<Uint8Array> {
  readonly #shm: SharedMemory;
  readonly #i32: Int32Array;
  /** Per cell: [stamp, length, unused…], META Int32s per cell. */
  readonly #meta: Int32Array;
  readonly #data: Uint8Array;
  readonly #data32: Int32Array;
  /** The last buffer received into, and an Int32 view of it when it is 4-byte aligned. */
  #lastOut: Uint8Array | null = null;
  #lastOut32: Int32Array | null = null;
  readonly #cells: number;
  readonly #mask: number;
  readonly #log2: number;
  /** Laps whose number has none of these bits set re-stamp the inner cells of messages too. */
  readonly #refresh: number;
  #closed = false;
  /** The words receivers and senders sleep on, prepared once (address, checks). */
  readonly #rxWord: FutexWord;
  readonly #txWord: FutexWord;
  /** Spin budgets of this handle's blocking receives and sends (see SPIN_MAX). */
  #rxSpin = SPIN_MAX;
  #txSpin = SPIN_MAX;
  /** A recent value of the head: senders re-read the shared one only when this says full. */
  #head = 0;
  /** The tail when `#head` was read, to refresh it before 32-bit wrap-around could fool it. */
  #headAt = 0;

  private constructor(shm: SharedMemory, log2: number) {
    this.#shm = shm;
    this.#rxWord = new FutexWord(shm, B_RX_SEQ);
    this.#txWord = new FutexWord(shm, B_TX_SEQ);
    this.#log2 = log2;
    this.#cells = 1 << log2;
    this.#mask = this.#cells - 1;
    this.#refresh = (1 << Math.min(10, 30 - log2)) - 1;
    const buf = shm.buf.buffer;
    this.#i32 = new Int32Array(buf, 0, HEADER / 4);
    this.#meta = new Int32Array(buf, HEADER, this.#cells << META_SHIFT);
    this.#data = new Uint8Array(buf, HEADER + (this.#cells << META_SHIFT) * 4, this.#cells * CELL);
    this.#data32 = new Int32Array(buf, this.#data.byteOffset, this.#cells * CELL / 4);
  }

  /**
   * Creates a channel with `capacity` bytes of ring space (rounded up to a power of two, at least
   * 1 KiB) in a new segment.
   *
   * @throws {RangeError} for a capacity that is not a positive integer, or too large to map
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
    if (typeof capacity !== "number" || !Number.isInteger(capacity) || capacity <= 0) {
      throw new RangeError(
        `Cannot ${action}: capacity must be a positive integer of bytes, got ${describe(capacity)}`,
      );
    }
    let log2 = Math.log2(MIN_CELLS);
    while ((1 << log2) * CELL < capacity) {
      log2++;
      if (log2 > 30) throw new RangeError(`Cannot ${action}: capacity ${capacity} is too large`);
    }
    const shm = SharedMemory.create({ name: o.name, size: segmentSize(1 << log2) });
    const i32 = new Int32Array(shm.buf.buffer, 0, HEADER / 4);
    i32[I_VERSION] = VERSION;
    i32[I_LOG2] = log2;
    i32[I_CELL_SHIFT] = CELL_SHIFT;
    Atomics.store(i32, I_MAGIC, MAGIC);
    return new Channel(shm, log2);
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
      const bad = (why: string) =>
        new TypeError(`Cannot open channel "${shm.name}": the segment is not a channel (${why})`);
      if (shm.size < HEADER) throw bad(`it is ${shm.size} bytes long`);
      const i32 = new Int32Array(shm.buf.buffer, 0, HEADER / 4);
      if (Atomics.load(i32, I_MAGIC) !== MAGIC) throw bad("no channel header");
      if (i32[I_VERSION] !== VERSION) throw bad(`layout version ${i32[I_VERSION]}, expected ${VERSION}`);
      const log2 = i32[I_LOG2];
      if (i32[I_CELL_SHIFT] !== CELL_SHIFT || log2 < 4 || log2 > 30) throw bad("its geometry is invalid");
      if (shm.size < segmentSize(1 << log2)) throw bad(`it is truncated to ${shm.size} bytes`);
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
    return this.#cells * CELL;
  }

  /** True once {@linkcode Channel.end} has been called, by any process. */
  get ended(): boolean {
    this.#check("read the state of");
    return Atomics.load(this.#i32, I_ENDED) !== 0;
  }

  /** True when the channel has ended and every message has been received: nothing more will come. */
  get done(): boolean {
    this.#check("read the state of");
    const i32 = this.#i32;
    return Atomics.load(i32, I_ENDED) !== 0 && Atomics.load(i32, I_HEAD) === Atomics.load(i32, I_TAIL);
  }

  /** True once `close()` has been called on this handle. */
  get closed(): boolean {
    return this.#closed;
  }

  // ---- Sending ---------------------------------------------------------------------------------------

  /**
   * Sends `message` if there is room now; returns false (and sends nothing) when the ring is full.
   *
   * @throws {RangeError} when the message is larger than the ring
   * @throws {ChannelClosedError} when the channel has ended
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
    return this.#put(message, "send on");
  }

  /**
   * Sends `message`, waiting while the ring is full.
   *
   * @throws {RangeError} when the message is larger than the ring
   * @throws {ChannelClosedError} when the channel has ended (also while waiting)
   * @throws {TimeoutError} after `options.timeout` ms without room
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.send(new TextEncoder().encode("hello"), { timeout: 1000 });
   * ```
   */
  send(message: Uint8Array, options?: ChannelWaitOptions): void {
    if (this.#put(message, "send on")) return;
    const timeout = checkTimeout(options, "send on channel");
    const deadline = performance.now() + timeout;
    const budget = this.#txSpin;
    for (let i = 0; i < budget; i++) {
      if (this.#put(message, "send on")) {
        this.#txSpin = grown(budget);
        return;
      }
    }
    this.#txSpin = shrunk(budget);
    const i32 = this.#i32;
    for (;;) {
      const seq = Atomics.load(i32, I_TX_SEQ);
      Atomics.store(i32, I_TX_WAITERS, 1); // then re-check, then sleep unless the word moved
      const sent = this.#put(message, "send on");
      if (!sent) {
        const left = deadline - performance.now();
        if (left <= 0) throw this.#timeout("send on", timeout);
        this.#txWord.waitSync(seq, left);
      }
      if (sent) return;
    }
  }

  /**
   * Sends `message`, awaiting room while the ring is full, without blocking the event loop.
   *
   * @throws {RangeError} when the message is larger than the ring
   * @throws {ChannelClosedError} when the channel has ended (also while waiting)
   * @throws {TimeoutError} after `options.timeout` ms without room
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * await ch.sendAsync(new Uint8Array([1]), { timeout: 1000 });
   * ```
   */
  async sendAsync(message: Uint8Array, options?: ChannelWaitOptions): Promise<void> {
    if (this.#put(message, "send on")) return;
    const timeout = checkTimeout(options, "send on channel");
    const deadline = performance.now() + timeout;
    const budget = this.#txSpin >> 3;
    for (let i = 0; i < budget; i++) if (this.#put(message, "send on")) return;
    const i32 = this.#i32;
    for (;;) {
      const seq = Atomics.load(i32, I_TX_SEQ);
      Atomics.store(i32, I_TX_WAITERS, 1); // then re-check, then sleep unless the word moved
      const sent = this.#put(message, "send on");
      if (!sent) {
        const left = deadline - performance.now();
        if (left <= 0) throw this.#timeout("send on", timeout);
        await this.#txWord.waitAsync(seq, left);
        this.#check("send on");
      }
      if (sent) return;
    }
  }

  /**
   * Sends as many of `messages`, in order, as there is room for now; returns how many were sent.
   *
   * @throws {RangeError} when the first message left to send is larger than the ring
   * @throws {ChannelClosedError} when the channel has ended
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
    if (!Array.isArray(messages)) {
      throw new TypeError(`Cannot send on channel: messages must be an array, got ${describe(messages)}`);
    }
    let from = 0;
    for (let sent; from < messages.length && (sent = this.#putMany(messages, from)) > 0;) from += sent;
    return from;
  }

  /**
   * Sends every message of `messages`, in order, reserving room for as many at a time as fit with
   * one atomic operation: the fast way to send many small messages. Waits while the ring is full.
   * Receivers may take the first ones before the last are sent.
   *
   * @throws {RangeError} when one message is larger than the ring (nothing from it on is sent)
   * @throws {ChannelClosedError} when the channel has ended
   * @throws {TimeoutError} after `options.timeout` ms without room (what was sent stays sent)
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendMany([new Uint8Array([1]), new Uint8Array([2, 3])]);
   * console.log(ch.receive(), ch.receive()); // Uint8Array(1) [1] Uint8Array(2) [2, 3]
   * ```
   */
  sendMany(messages: readonly Uint8Array[], options?: ChannelWaitOptions): void {
    if (!Array.isArray(messages)) {
      throw new TypeError(`Cannot send on channel: messages must be an array, got ${describe(messages)}`);
    }
    let from = this.#putMany(messages, 0);
    if (from === messages.length) return;
    const timeout = checkTimeout(options, "send on channel");
    const deadline = performance.now() + timeout;
    const i32 = this.#i32;
    for (let spin = 0; from < messages.length;) {
      const sent = this.#putMany(messages, from);
      from += sent;
      if (sent > 0 || spin++ < this.#txSpin) continue;
      this.#txSpin = shrunk(this.#txSpin);
      const seq = Atomics.load(i32, I_TX_SEQ);
      Atomics.store(i32, I_TX_WAITERS, 1); // then re-check, then sleep unless the word moved
      const more = this.#putMany(messages, from);
      from += more;
      if (more > 0) continue;
      const left = deadline - performance.now();
      if (left <= 0) throw this.#timeout("send on", timeout);
      this.#txWord.waitSync(seq, left);
      spin = 0;
    }
  }

  /**
   * Sends a string as UTF-8.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendString("héllo");
   * console.log(ch.receiveString()); // héllo
   * ```
   */
  sendString(text: string, options?: ChannelWaitOptions): void {
    if (typeof text !== "string") throw new TypeError(`Cannot send a string: got ${describe(text)}`);
    this.send(encoder.encode(text), options);
  }

  /**
   * Sends a value as JSON text.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendJSON({ id: 1, tags: ["a"] });
   * console.log(ch.receiveJSON()); // { id: 1, tags: ["a"] }
   * ```
   */
  sendJSON(value: unknown, options?: ChannelWaitOptions): void {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`Cannot send ${describe(value)} as JSON`);
    this.send(encoder.encode(text), options);
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
   * ch.sendString("last");
   * ch.end();
   * console.log(ch.receiveString(), ch.receive()); // last null
   * ```
   */
  end(): void {
    this.#check("end");
    const i32 = this.#i32;
    Atomics.store(i32, I_ENDED, 1);
    Atomics.add(i32, I_RX_SEQ, 1);
    Atomics.add(i32, I_TX_SEQ, 1);
    this.#rxWord.wake();
    this.#txWord.wake();
  }

  // ---- Receiving -------------------------------------------------------------------------------------

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
    const n = this.#take(null, "receive from");
    return n >= 0 ? this.#out! : null;
  }

  /**
   * Copies the next message, if one is ready now, into `buffer` and returns its length; returns -1
   * when none is ready (or the channel is done). No allocation: the fast way to receive.
   *
   * @throws {RangeError} when the message is longer than `buffer` (it stays in the channel)
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * const buf = new Uint8Array(256);
   * ch.send(new Uint8Array([7, 8]));
   * console.log(ch.tryReceiveInto(buf), buf[1]); // 2 8
   * ```
   */
  tryReceiveInto(buffer: Uint8Array): number {
    if (!(buffer instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot receive from channel: the buffer must be a Uint8Array, got ${describe(buffer)}`,
      );
    }
    const n = this.#take(buffer, "receive from");
    return n >= 0 ? n : -1;
  }

  /**
   * The next message, waiting while the channel is empty; `null` once the channel has ended and is
   * drained.
   *
   * @throws {TimeoutError} after `options.timeout` ms without a message
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.send(new Uint8Array([1]));
   * console.log(ch.receive({ timeout: 1000 })); // Uint8Array(1) [1]
   * ```
   */
  receive(options?: ChannelWaitOptions): Uint8Array | null {
    const n = this.#takeSync(null, options);
    return n >= 0 ? this.#out! : null;
  }

  /**
   * Copies the next message into `buffer`, waiting while the channel is empty, and returns its
   * length; `null` once the channel has ended and is drained.
   *
   * @throws {RangeError} when the message is longer than `buffer` (it stays in the channel)
   * @throws {TimeoutError} after `options.timeout` ms without a message
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * const buf = new Uint8Array(64);
   * ch.send(new Uint8Array([5]));
   * console.log(ch.receiveInto(buf)); // 1
   * ```
   */
  receiveInto(buffer: Uint8Array, options?: ChannelWaitOptions): number | null {
    if (!(buffer instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot receive from channel: the buffer must be a Uint8Array, got ${describe(buffer)}`,
      );
    }
    const n = this.#takeSync(buffer, options);
    return n >= 0 ? n : null;
  }

  /**
   * Like {@linkcode Channel.receiveMany}, without waiting: returns 0 when no message is ready (see
   * {@linkcode Channel.done} to tell the end from a momentarily empty channel).
   *
   * @throws {RangeError} when the next message alone is longer than `buffer` (it stays in the channel)
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * console.log(ch.tryReceiveMany(new Uint8Array(256), new Uint32Array(16))); // 0
   * ```
   */
  tryReceiveMany(buffer: Uint8Array, lengths: Uint32Array): number {
    if (!(buffer instanceof Uint8Array) || !(lengths instanceof Uint32Array) || lengths.length === 0) {
      throw new TypeError("Cannot receive from channel: expected a Uint8Array and a non-empty Uint32Array");
    }
    return Math.max(0, this.#takeMany(buffer, lengths));
  }

  /**
   * Copies as many ready messages as fit into `buffer`, back to back, and their lengths into
   * `lengths`, claiming them all with one atomic operation: the fast way to receive many small
   * messages. Waits for at least one; returns how many were received, or `null` once the channel
   * has ended and is drained. Message `i` starts where message `i - 1` ended.
   *
   * @throws {RangeError} when the next message alone is longer than `buffer` (it stays in the channel)
   * @throws {TimeoutError} after `options.timeout` ms without a message
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendMany([new Uint8Array([1]), new Uint8Array([2, 3])]);
   * const buf = new Uint8Array(1024);
   * const lengths = new Uint32Array(64);
   * const n = ch.receiveMany(buf, lengths)!;
   * console.log(n, lengths[0], lengths[1], buf.subarray(0, 3)); // 2 1 2 Uint8Array(3) [1, 2, 3]
   * ```
   */
  receiveMany(buffer: Uint8Array, lengths: Uint32Array, options?: ChannelWaitOptions): number | null {
    if (!(buffer instanceof Uint8Array) || !(lengths instanceof Uint32Array) || lengths.length === 0) {
      throw new TypeError("Cannot receive from channel: expected a Uint8Array and a non-empty Uint32Array");
    }
    let n = this.#takeMany(buffer, lengths);
    if (n > 0) return n;
    if (n === ENDED) return null;
    const timeout = checkTimeout(options, "receive from channel");
    const deadline = performance.now() + timeout;
    const budget = this.#rxSpin;
    for (let i = 0; i < budget; i++) {
      n = this.#takeMany(buffer, lengths);
      if (n === 0) continue;
      this.#rxSpin = grown(budget);
      return n > 0 ? n : null;
    }
    this.#rxSpin = shrunk(budget);
    const i32 = this.#i32;
    for (;;) {
      const seq = Atomics.load(i32, I_RX_SEQ);
      Atomics.store(i32, I_RX_WAITERS, 1); // then re-check, then sleep unless the word moved
      n = this.#takeMany(buffer, lengths);
      if (n > 0) return n;
      if (n === ENDED) return null;
      const left = deadline - performance.now();
      if (left <= 0) throw this.#timeout("receive from", timeout);
      this.#rxWord.waitSync(seq, left);
    }
  }

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
   * setTimeout(() => ch.sendString("later"), 10);
   * console.log(await ch.receiveAsync({ timeout: 5000 })); // Uint8Array(5)
   * ```
   */
  async receiveAsync(options?: ChannelWaitOptions): Promise<Uint8Array | null> {
    let n = this.#take(null, "receive from");
    if (n >= 0) return this.#out!;
    if (n === ENDED) return null;
    const timeout = checkTimeout(options, "receive from channel");
    const deadline = performance.now() + timeout;
    const budget = this.#rxSpin >> 3;
    for (let i = 0; i < budget; i++) {
      n = this.#take(null, "receive from");
      if (n >= 0) return this.#out!;
      if (n === ENDED) return null;
    }
    const i32 = this.#i32;
    for (;;) {
      const seq = Atomics.load(i32, I_RX_SEQ);
      Atomics.store(i32, I_RX_WAITERS, 1); // then re-check, then sleep unless the word moved
      n = this.#take(null, "receive from");
      if (n === EMPTY) {
        const left = deadline - performance.now();
        if (left <= 0) throw this.#timeout("receive from", timeout);
        await this.#rxWord.waitAsync(seq, left);
        this.#check("receive from");
      }
      if (n >= 0) return this.#out!;
      if (n === ENDED) return null;
    }
  }

  /**
   * The next message as UTF-8 text, waiting for it; `null` once the channel is done.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendString("hi");
   * console.log(ch.receiveString()); // hi
   * ```
   */
  receiveString(options?: ChannelWaitOptions): string | null {
    const m = this.receive(options);
    return m === null ? null : decoder.decode(m);
  }

  /**
   * The next message parsed as JSON, waiting for it; `null` once the channel is done (so a JSON
   * `null` message and the end look the same: check {@linkcode Channel.done} if that matters).
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendJSON([1, 2]);
   * console.log(ch.receiveJSON<number[]>()); // [1, 2]
   * ```
   */
  receiveJSON<T = unknown>(options?: ChannelWaitOptions): T | null {
    const m = this.receive(options);
    return m === null ? null : JSON.parse(decoder.decode(m)) as T;
  }

  /**
   * Receives messages until the channel is done (ended and drained), awaiting each one.
   *
   * @example
   * ```ts
   * import { Channel } from "@x/shm";
   *
   * using ch = Channel.create({ capacity: 4096 });
   * ch.sendString("a");
   * ch.sendString("b");
   * ch.end();
   * for await (const msg of ch) console.log(msg.length); // 1, 1
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const m = await this.receiveAsync();
      if (m === null) return;
      yield m;
    }
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
   * ch.close();
   * ch.unlink();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Release any wait of ours sleeping on the words (others treat it as a spurious wake-up).
    const i32 = this.#i32;
    Atomics.add(i32, I_RX_SEQ, 1);
    Atomics.add(i32, I_TX_SEQ, 1);
    this.#rxWord.wake();
    this.#txWord.wake();
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

  /** Closes the handle and, if this handle created the channel, unlinks it too. */
  [Symbol.dispose](): void {
    this.close();
    this.#shm[Symbol.dispose]();
  }

  // ---- The ring ------------------------------------------------------------------------------------

  #out: Uint8Array | null = null;

  /** One attempt to send: reserve cells with a CAS on the tail, copy, stamp. */
  #put(message: Uint8Array, action: string): boolean {
    if (this.#closed) this.#check(action);
    if (!(message instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot ${action} channel: the message must be a Uint8Array, got ${describe(message)}`,
      );
    }
    const len = message.length;
    const k = len === 0 ? 1 : (len + CELL - 1) >>> CELL_SHIFT;
    const cells = this.#cells;
    if (k > cells) {
      throw new RangeError(
        `Cannot ${action} channel "${this.name}": the message is ${len} bytes and the ring holds ${
          cells * CELL
        }`,
      );
    }
    const i32 = this.#i32;
    let t: number;
    for (;;) {
      t = Atomics.load(i32, I_TAIL);
      if (Atomics.load(i32, I_ENDED) !== 0) {
        throw new ChannelClosedError(`Cannot ${action} channel "${this.name}": it has ended`);
      }
      const used = (t - this.#head) | 0;
      if (used < 0 || used + k > cells || ((t - this.#headAt) | 0) > 0x3fffffff) {
        // The cached head says full (or is too old): read the shared one, a cache line receivers own.
        const h = Atomics.load(i32, I_HEAD);
        this.#head = h;
        this.#headAt = t;
        if (((t - h) | 0) + k > cells) {
          if (Atomics.load(i32, I_TAIL) === t) return false;
          continue;
        }
      }
      if (Atomics.compareExchange(i32, I_TAIL, t, (t + k) | 0) === t) break;
    }
    this.#write(message, t);
    if (Atomics.load(i32, I_RX_WAITERS) !== 0 && Atomics.exchange(i32, I_RX_WAITERS, 0) !== 0) {
      Atomics.add(i32, I_RX_SEQ, 1);
      this.#rxWord.wake();
    }
    return true;
  }

  /** Reserves room for as many of `messages[from…]` as fit with one CAS and writes them; returns how many. */
  #putMany(messages: readonly Uint8Array[], from: number): number {
    if (this.#closed) this.#check("send on");
    const cells = this.#cells;
    const i32 = this.#i32;
    for (;;) {
      const t = Atomics.load(i32, I_TAIL);
      if (Atomics.load(i32, I_ENDED) !== 0) {
        throw new ChannelClosedError(`Cannot send on channel "${this.name}": it has ended`);
      }
      let used = (t - this.#head) | 0;
      if (used < 0 || used >= cells || ((t - this.#headAt) | 0) > 0x3fffffff) {
        this.#head = Atomics.load(i32, I_HEAD);
        this.#headAt = t;
        used = (t - this.#head) | 0;
      }
      let free = cells - used;
      let total = 0;
      let n = 0;
      for (let i = from; i < messages.length; i++) {
        const m = messages[i];
        if (!(m instanceof Uint8Array)) {
          if (n > 0) break;
          throw new TypeError(`Cannot send on channel: message ${i} is not a Uint8Array, got ${describe(m)}`);
        }
        const k = m.length === 0 ? 1 : (m.length + CELL - 1) >>> CELL_SHIFT;
        if (k > cells) {
          if (n > 0) break;
          throw new RangeError(
            `Cannot send on channel "${this.name}": message ${i} is ${m.length} bytes and the ring holds ${
              cells * CELL
            }`,
          );
        }
        if (k > free) {
          if (n === 0) {
            // Maybe the cached head is stale.
            const h = Atomics.load(i32, I_HEAD);
            if (h !== this.#head) {
              this.#head = h;
              this.#headAt = t;
              free = cells - ((t - h) | 0);
              if (k <= free) {
                free -= k;
                total += k;
                n++;
                continue;
              }
            }
          }
          break;
        }
        free -= k;
        total += k;
        n++;
      }
      if (n === 0) return 0;
      if (Atomics.compareExchange(i32, I_TAIL, t, (t + total) | 0) !== t) continue;
      let pos = t;
      for (let i = from; i < from + n; i++) pos = this.#write(messages[i], pos);
      if (Atomics.load(i32, I_RX_WAITERS) !== 0 && Atomics.exchange(i32, I_RX_WAITERS, 0) !== 0) {
        Atomics.add(i32, I_RX_SEQ, 1);
        this.#rxWord.wake();
      }
      return n;
    }
  }

  /** Writes one message into cells reserved at position `t` and commits it; returns the next position. */
  #write(message: Uint8Array, t: number): number {
    const len = message.length;
    const k = len === 0 ? 1 : (len + CELL - 1) >>> CELL_SHIFT;
    const cells = this.#cells;
    const c = t & this.#mask;
    const lap = t >>> this.#log2;
    const stamp = (lap + 1) | 0;
    const first = cells - c;
    const data = this.#data;
    const meta = this.#meta;
    const refresh = this.#refresh;
    meta[(c << META_SHIFT) + 1] = len;
    if (k <= first) {
      data.set(message, c << CELL_SHIFT);
      if ((lap & refresh) === 0) { for (let i = c + 1; i < c + k; i++) meta[i << META_SHIFT] = stamp; }
    } else {
      const split = first << CELL_SHIFT;
      data.set(message.subarray(0, split), c << CELL_SHIFT);
      data.set(message.subarray(split), 0);
      if ((lap & refresh) === 0) { for (let i = c + 1; i < cells; i++) meta[i << META_SHIFT] = stamp; }
      const next = ((t + first) | 0) >>> this.#log2;
      if ((next & refresh) === 0) {
        for (let i = 0; i < k - first; i++) meta[i << META_SHIFT] = (next + 1) | 0;
      }
    }
    Atomics.store(meta, c << META_SHIFT, stamp);
    return (t + k) | 0;
  }

  /** Copies out every committed message from the head that fits, then claims them with one CAS. */
  #takeMany(buffer: Uint8Array, lengths: Uint32Array): number {
    if (this.#closed) this.#check("receive from");
    const i32 = this.#i32;
    const meta = this.#meta;
    const log2 = this.#log2;
    const mask = this.#mask;
    const cells = this.#cells;
    const data = this.#data;
    const max = lengths.length;
    retry: for (;;) {
      const h = Atomics.load(i32, I_HEAD);
      let pos = h;
      let off = 0;
      let n = 0;
      while (n < max && ((pos - h) | 0) < cells) {
        const c = pos & mask;
        if (Atomics.load(meta, c << META_SHIFT) !== (((pos >>> log2) + 1) | 0)) break;
        const len = meta[(c << META_SHIFT) + 1];
        const k = len === 0 ? 1 : (len + CELL - 1) >>> CELL_SHIFT;
        if (len < 0 || k > cells || ((pos + k - h) | 0) > cells) {
          if (Atomics.load(i32, I_HEAD) !== h) continue retry;
          throw new Error(
            `Cannot receive from channel "${this.name}": it is corrupted (a message of ${len} bytes)`,
          );
        }
        if (off + len > buffer.length) {
          if (n > 0) break;
          if (Atomics.load(i32, I_HEAD) !== h) continue retry;
          throw new RangeError(
            `Cannot receive from channel "${this.name}": the next message is ${len} bytes and the buffer holds ${buffer.length}`,
          );
        }
        const at = c << CELL_SHIFT;
        const first = (cells - c) << CELL_SHIFT;
        if (len <= first) {
          if (len <= 64) {
            for (let i = 0; i < len; i++) buffer[off + i] = data[at + i];
          } else {
            buffer.set(data.subarray(at, at + len), off);
          }
        } else {
          buffer.set(data.subarray(at, at + first), off);
          buffer.set(data.subarray(0, len - first), off + first);
        }
        lengths[n++] = len;
        off += len;
        pos = (pos + k) | 0;
      }
      if (n === 0) {
        if (Atomics.load(i32, I_HEAD) !== h) continue;
        if (Atomics.load(i32, I_ENDED) !== 0 && Atomics.load(i32, I_TAIL) === h) return ENDED;
        return 0;
      }
      if (Atomics.compareExchange(i32, I_HEAD, h, pos) !== h) continue;
      if (Atomics.load(i32, I_TX_WAITERS) !== 0 && Atomics.exchange(i32, I_TX_WAITERS, 0) !== 0) {
        Atomics.add(i32, I_TX_SEQ, 1);
        this.#txWord.wake();
      }
      return n;
    }
  }

  /**
   * One attempt to receive: copy the message at the head out, then claim it with a CAS on the head.
   * Returns its length (the copy is in `dest`, or in `#out` when `dest` is null), EMPTY or ENDED.
   */
  #take(dest: Uint8Array | null, action: string): number {
    if (this.#closed) this.#check(action);
    const i32 = this.#i32;
    const meta = this.#meta;
    const log2 = this.#log2;
    const mask = this.#mask;
    for (;;) {
      const h = Atomics.load(i32, I_HEAD);
      const c = h & mask;
      if (Atomics.load(meta, c << META_SHIFT) !== (((h >>> log2) + 1) | 0)) {
        // Not committed: empty, a sender still copying, or another receiver took it meanwhile.
        if (Atomics.load(i32, I_HEAD) !== h) continue;
        if (Atomics.load(i32, I_ENDED) !== 0 && Atomics.load(i32, I_TAIL) === h) return ENDED;
        return EMPTY;
      }
      const len = meta[(c << META_SHIFT) + 1];
      const cells = this.#cells;
      const k = len === 0 ? 1 : (len + CELL - 1) >>> CELL_SHIFT;
      if (len < 0 || k > cells) {
        if (Atomics.load(i32, I_HEAD) !== h) continue;
        throw new Error(
          `Cannot ${action} channel "${this.name}": it is corrupted (a message of ${len} bytes)`,
        );
      }
      let out = dest;
      if (out === null) out = new Uint8Array(len);
      else if (len > out.length) {
        if (Atomics.load(i32, I_HEAD) !== h) continue;
        throw new RangeError(
          `Cannot ${action} channel "${this.name}": the next message is ${len} bytes and the buffer holds ${out.length}`,
        );
      }
      const data = this.#data;
      const at = c << CELL_SHIFT;
      const first = (cells - c) << CELL_SHIFT;
      if (len <= first) {
        if (len <= 256) {
          // Short messages: a plain loop beats the set() builtin, by words when the buffer allows.
          let i = 0;
          if (dest !== null && (dest !== this.#lastOut || this.#lastOut32?.length !== dest.length >>> 2)) {
            this.#cacheOut(dest);
          }
          const out32 = dest === null ? null : this.#lastOut32;
          if (out32 !== null) {
            const data32 = this.#data32;
            const w = at >>> 2;
            for (const end = len >>> 2; i < end; i++) out32[i] = data32[w + i];
            i <<= 2;
          }
          for (; i < len; i++) out[i] = data[at + i];
        } else {
          out.set(data.subarray(at, at + len));
        }
      } else {
        out.set(data.subarray(at, at + first));
        out.set(data.subarray(0, len - first), first);
      }
      if (Atomics.compareExchange(i32, I_HEAD, h, (h + k) | 0) !== h) continue;
      if (Atomics.load(i32, I_TX_WAITERS) !== 0 && Atomics.exchange(i32, I_TX_WAITERS, 0) !== 0) {
        Atomics.add(i32, I_TX_SEQ, 1);
        this.#txWord.wake();
      }
      if (dest === null) this.#out = out;
      return len;
    }
  }

  #takeSync(dest: Uint8Array | null, options: ChannelWaitOptions | undefined): number {
    let n = this.#take(dest, "receive from");
    if (n !== EMPTY) return n;
    const timeout = checkTimeout(options, "receive from channel");
    const deadline = performance.now() + timeout;
    const budget = this.#rxSpin;
    for (let i = 0; i < budget; i++) {
      n = this.#take(dest, "receive from");
      if (n !== EMPTY) {
        this.#rxSpin = grown(budget);
        return n;
      }
    }
    this.#rxSpin = shrunk(budget);
    const i32 = this.#i32;
    for (;;) {
      const seq = Atomics.load(i32, I_RX_SEQ);
      Atomics.store(i32, I_RX_WAITERS, 1); // then re-check, then sleep unless the word moved
      n = this.#take(dest, "receive from");
      if (n === EMPTY) {
        const left = deadline - performance.now();
        if (left <= 0) throw this.#timeout("receive from", timeout);
        this.#rxWord.waitSync(seq, left);
      }
      if (n !== EMPTY) return n;
    }
  }

  #cacheOut(out: Uint8Array): void {
    this.#lastOut = out;
    this.#lastOut32 = out.byteOffset % 4 === 0
      ? new Int32Array(out.buffer, out.byteOffset, out.length >>> 2)
      : null;
  }

  #check(action: string): void {
    if (this.#closed) {
      throw new TypeError(`Cannot ${action} channel "${this.#shm.name}": this handle is closed`);
    }
  }

  #timeout(action: string, timeout: number): TimeoutError {
    return new TimeoutError(
      `Cannot ${action} channel "${this.name}": nothing happened within ${timeout} ms`,
      timeout,
    );
  }
}
