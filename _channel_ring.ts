/**
 * The ring under `Channel`: its layout in the segment and one attempt at each operation (send one,
 * send many, take one, take many, drop a dead sender's message). Nothing here waits; `channel.ts`
 * adds the waits and the public API.
 *
 * ## Layout
 *
 * Little-endian Int32s. Positions count 64-byte cells and wrap at 2^32.
 *
 * | byte | what |
 * |---|---|
 * | 0 | magic "CHNL", 4 layout version (3), 8 log2(cells), 12 log2(cell size) = 6, 16 log2(Int32s per cell of each record array) = 1 |
 * | 64 | tail: the next position senders reserve |
 * | 128 | head: the next position receivers take; 132: borrowed messages whose receiver died |
 * | 192 | receivers' wake word; 196: 1 while a receiver may sleep |
 * | 256 | senders' wake word; 260: 1 while a sender may sleep |
 * | 320 | ended flag; 324: borrow slots ever used |
 * | 384 | 256 sender slots of 64 bytes, [owner id, position, cells, …]: what each sending thread is reserving |
 * | 16768 | 32 borrow slots of 64 bytes, [owner id, position, cells, …]: messages receivers hold in place |
 * | 18816 | per cell [stamp, length]; then per cell [owner id, position]; then the data, cells × 64 bytes |
 *
 * A message of n bytes takes max(1, ceil(n / 64)) consecutive cells (it may wrap past the end). A
 * record whose length is negative, -k, is a dropped message of k cells (a discarded loan, or the
 * padding before a loan): receivers, and senders short of room, move the head past it.
 *
 * **Sending.** A sending thread holds a slot (taken once, with a compare-and-swap of its owner id,
 * see `_sync/owner.ts`). To send, it reads the tail, writes into its slot the position and the
 * cells it means to reserve, and moves the tail past them with one compare-and-swap. Then it copies
 * the bytes, writes the stamp of every later cell, the record of the message's first cell (length,
 * owner id, position), and last the stamp of its first cell: 1 + (position >>> log2(cells)), the
 * lap. That store commits the message.
 *
 * **Waking.** A receiver that will sleep raises the "may sleep" flag (an `Atomics` store), then
 * looks again. A sender of one message (or of a batch) reads the flag right after its
 * compare-and-swap of the tail, and wakes the receivers after its commit when it was raised; so
 * the commit, on x86-64, is a plain store (`_sync/order.ts`): one locked instruction a message, as
 * in a bare single-producer ring. A receiver that raised the flag after that read finds the tail
 * past the head (`pending`) and sleeps only briefly. Loans commit with an `Atomics` store and read
 * the flag after it, since their holder may take any time.
 *
 * **Receiving.** A receiver takes the message at the head when its stamp matches the head's lap: it
 * copies the bytes out, then moves the head past it with one compare-and-swap. A receiver killed at
 * any point leaves the message for the others.
 *
 * **Loans.** A loan reserves its cells like a send and writes its record at once; the holder
 * writes the bytes in place and commits (or drops) later. A loan is one contiguous range: when its
 * cells would wrap past the end, the sender first reserves the cells up to the end and commits them
 * as a dropped message (padding), then reserves again from the ring's start.
 *
 * **Borrows.** A receiver takes a borrow slot (a compare-and-swap of its owner id from 0), writes
 * into it the position and cells of the message at the head, then moves the head past the message
 * with one compare-and-swap: other receivers go on behind it. Senders that find the ring full count
 * its used cells from the oldest position a borrow slot names (only slots below the "ever used"
 * mark are read), so the message stays in place until the release frees the slot. A message that
 * wraps the ring's end is handed over as a copy instead. Waiters look at the borrow slots every
 * PROBE_MS: a slot whose owner died becomes an orphan (owner -1, counted at byte 132), and the next
 * receive takes it first, by copy, after checking that its record still names its position (a
 * receiver that died between announcing and losing the head to another left a slot over cells that
 * may have been reused: dropped). Delivery of a dead borrower's message is thus at least once. An
 * ended channel is drained only when no other thread holds a borrow, since a holder may die.
 *
 * **A dead sender.** Every reserved message has a known sender: its record names it, and until the
 * record is written, the slot of the thread whose compare-and-swap won covers it. Waiting receivers
 * (and senders waiting for room) look at a message that stays uncommitted at the head every
 * PROBE_MS; when its sender is dead, they move the head past what it reserved: what it had not
 * committed is dropped, never delivered.
 *
 * **Stamps.** Positions wrap at 2^32, so lap numbers repeat every 2^(32 - log2(cells)) laps.
 * Stamping every cell of every message would be costly for large messages; instead, on every
 * 2^min(10, 30 - log2(cells))-th lap the senders also stamp the inner cells of their messages. Every
 * cell then carries a stamp at most that many laps old, never old enough to equal the current
 * lap's: a stale stamp can never pass for a committed message.
 *
 * @module
 */

import type { SharedMemory } from "./shared_memory.ts";
import { FutexWord } from "./_sync/futex.ts";
import type { Readiness } from "./_sync/readiness.ts";
import { ownerStatus, selfId } from "./_sync/owner.ts";
import type { PrivateViews } from "./_loan.ts";
import { ChannelCorruptError } from "./errors.ts";
import { TSO } from "./_sync/order.ts";
import { copyCell, copyWords, WordView } from "./_copy.ts";

const MAGIC = 0x4c4e4843; // "CHNL" little-endian
const VERSION = 3;
const CELL_SHIFT = 6;
/** Bytes of one cell. */
export const CELL: number = 1 << CELL_SHIFT;
/** log2 of the Int32s per cell of the records receivers read ([stamp, length]) and of those only recovery reads ([owner, position]). */
const META_SHIFT = 1;
const R_LENGTH = 1;
const R_POSITION = 1;
/** Bytes of the fixed header, then of the sender slots: the records start after both. */
const FIXED = 384;
const SLOTS = 256;
/** Int32s a slot takes: a cache line each, so that senders do not write one another's lines. */
const SLOT_INTS = 16;
/** Borrow slots: [owner id, position, cells] of a message a receiver holds in place, a cache line each. */
const BSLOTS = 32;
const HEADER = FIXED + (SLOTS + BSLOTS) * SLOT_INTS * 4;
/** Int32 index of the first slot. */
const I_SLOTS = FIXED / 4;
/** Int32 index of the first borrow slot. */
const I_BSLOTS = I_SLOTS + SLOTS * SLOT_INTS;
/** The owner id of a borrow slot whose holder died: its message waits for the next receiver. */
const ORPHAN = -1;
/** The fewest and most cells a ring has: 1 KiB and 1 GiB of ring space. */
export const MIN_LOG2 = 4;
export const MAX_LOG2 = 24;

// Int32 indexes into the header.
const I_MAGIC = 0;
const I_VERSION = 1;
const I_LOG2 = 2;
const I_CELL_SHIFT = 3;
const I_META_SHIFT = 4;
const I_TAIL = 16; // byte 64: next position senders reserve
const I_HEAD = 32; // byte 128: next position receivers take
const I_ORPHANS = 33; // byte 132: borrowed messages whose receiver died, to deliver again
const I_RX_SEQ = 48; // byte 192: bumped to wake receivers
const I_RX_WAITERS = 49; // 1 while some receiver may sleep
const I_TX_SEQ = 64; // byte 256: bumped to wake senders
const I_TX_WAITERS = 65; // 1 while some sender may sleep
const I_ENDED = 80; // byte 320
const I_BORROW_HIGH = 81; // byte 324: borrow slots ever used (senders look at these only)

/** The two sides that wait: receivers (for a message) and senders (for room). */
export interface Side {
  /** Int32 index of the word this side sleeps on. */
  readonly seq: number;
  /** Int32 index of the "may sleep" flag. */
  readonly waiters: number;
}
export const RX: Side = { seq: I_RX_SEQ, waiters: I_RX_WAITERS };
export const TX: Side = { seq: I_TX_SEQ, waiters: I_TX_WAITERS };

/** Outcomes of one attempt (lengths and counts are >= 0). */
export const EMPTY = -1;
export const ENDED = -2;
/** The ring is full (sends). */
export const FULL = -3;
/** The tail moved while an attempt looked at it: look again. */
const RETRY = -4;

/** How often a waiter checks whether the sender of a stalled message (or of the lock) still lives. */
export const PROBE_MS = 250;

/** Cells a message of `len` bytes takes. */
function cellsFor(len: number): number {
  return len === 0 ? 1 : (len + CELL - 1) >>> CELL_SHIFT;
}

/** Bytes of a segment holding a ring of 2^log2 cells. */
export function segmentSize(log2: number): number {
  const cells = 2 ** log2;
  return HEADER + 2 * cells * (4 << META_SHIFT) + cells * CELL;
}

/** log2 of the cells for `capacity` bytes: at least MIN_LOG2; may be above MAX_LOG2 (the caller refuses). */
export function log2For(capacity: number): number {
  return Math.max(MIN_LOG2, Math.ceil(Math.log2(Math.ceil(capacity / CELL))));
}

/** Writes the header of a new ring; its magic last. */
export function initRing(shm: SharedMemory, log2: number): void {
  const i32 = new Int32Array(shm.buf.buffer, 0, HEADER / 4);
  i32[I_VERSION] = VERSION;
  i32[I_LOG2] = log2;
  i32[I_CELL_SHIFT] = CELL_SHIFT;
  i32[I_META_SHIFT] = META_SHIFT;
  Atomics.store(i32, I_MAGIC, MAGIC);
}

/** Checks the header of an existing ring; returns log2(cells), or why the segment is not a ring. */
export function readRing(shm: SharedMemory): number | string {
  if (shm.size < FIXED) return `it is ${shm.size} bytes long`;
  const i32 = new Int32Array(shm.buf.buffer, 0, FIXED / 4);
  if (Atomics.load(i32, I_MAGIC) !== MAGIC) return "no channel header";
  if (i32[I_VERSION] !== VERSION) return `layout version ${i32[I_VERSION]}, expected ${VERSION}`;
  const log2 = i32[I_LOG2] ?? 0;
  if (
    i32[I_CELL_SHIFT] !== CELL_SHIFT || i32[I_META_SHIFT] !== META_SHIFT || log2 < MIN_LOG2 ||
    log2 > MAX_LOG2
  ) {
    return "its geometry is invalid";
  }
  if (shm.size < segmentSize(log2)) return `it is truncated to ${shm.size} bytes`;
  return log2;
}

/** One process's view of a ring: the attempts, and what they cache. */
export class Ring {
  readonly name: string;
  readonly cells: number;
  readonly i32: Int32Array;
  readonly rxWord: FutexWord;
  readonly txWord: FutexWord;
  /** The copy made by the last `take(null)`. */
  out: Uint8Array = new Uint8Array(0);
  /** Set when the handle closes: every attempt then throws. */
  closed = false;
  /** Per cell: [stamp, length] of the message starting there. */
  readonly #meta: Int32Array;
  /** Per cell: [owner, position] of the message starting there, apart so receivers' cache lines hold only what they read. */
  readonly #owners: Int32Array;
  readonly #data: Uint8Array;
  readonly #data32: Int32Array;
  readonly #mask: number;
  readonly #log2: number;
  /** Laps whose number has none of these bits set re-stamp the inner cells of messages too. */
  readonly #refresh: number;
  /** This thread's owner id. */
  readonly #me: number;
  /** A recent value of the head: senders re-read the shared one only when this says full. */
  #head = 0;
  /** The tail when `#head` was read, to refresh it before 32-bit wrap-around could fool it. */
  #headAt: number;
  /** The last message sent, and an Int32 view of it once it is sent again (`WordView`: short ones are copied by words). */
  readonly #source = new WordView();
  /** The last buffer received into, and an Int32 view of it once used again (see `#copyShort`). */
  readonly #dest = new WordView();
  /** A head seen stalled on an uncommitted message, and since when (see `recover`). */
  #stallHead = 0;
  #stallSince = Infinity;
  /** Int32 index of the position field of this thread's slot; 0 until the first send. */
  #slot = 0;
  /** Byte offset of the data in the segment. */
  readonly dataOffset: number;
  /** The position of the last `reserve`'s cells. */
  reserved = 0;
  /** The borrow slot (Int32 index of its owner field) and position of the last `borrow`; the slot is 0 when it gave a copy in `out`. */
  borrowSlot = 0;
  borrowPos = 0;
  /** When `recover` last looked for dead borrowers. */
  #borrowProbe = -Infinity;

  constructor(shm: SharedMemory, log2: number) {
    this.name = shm.name;
    this.#me = selfId();
    this.#log2 = log2;
    this.cells = 1 << log2;
    this.#mask = this.cells - 1;
    this.#refresh = (1 << Math.min(10, 30 - log2)) - 1;
    const buf = shm.buf.buffer;
    const metaBytes = this.cells * (4 << META_SHIFT);
    this.i32 = new Int32Array(buf, 0, HEADER / 4);
    this.#meta = new Int32Array(buf, HEADER, this.cells << META_SHIFT);
    this.#owners = new Int32Array(buf, HEADER + metaBytes, this.cells << META_SHIFT);
    this.#data = new Uint8Array(buf, HEADER + 2 * metaBytes, this.cells * CELL);
    this.#data32 = new Int32Array(buf, HEADER + 2 * metaBytes, this.cells * CELL / 4);
    this.dataOffset = HEADER + 2 * metaBytes;
    this.rxWord = new FutexWord(shm, I_RX_SEQ * 4);
    this.txWord = new FutexWord(shm, I_TX_SEQ * 4);
    // The first send reads the shared head (a cached head that is too old is refreshed).
    this.#headAt = (Atomics.load(this.i32, I_TAIL) - 0x40000000) | 0;
  }

  /** Whether the channel has ended. */
  get ended(): boolean {
    return Atomics.load(this.i32, I_ENDED) !== 0;
  }

  /** Whether every reserved message has been taken and no borrowed one may come back. */
  get drained(): boolean {
    return Atomics.load(this.i32, I_HEAD) === Atomics.load(this.i32, I_TAIL) && !this.#borrowsHeld();
  }

  /** Cells free now (senders need `cellsFor(length)` of them for a message). */
  freeCells(): number {
    return this.cells - ((Atomics.load(this.i32, I_TAIL) - Atomics.load(this.i32, I_HEAD)) | 0);
  }

  /** Ends the channel and wakes every waiter of both sides. */
  end(): void {
    Atomics.store(this.i32, I_ENDED, 1);
    this.wakeAll();
  }

  /** Wakes every waiter of both sides (they re-check). */
  wakeAll(): void {
    Atomics.add(this.i32, I_RX_SEQ, 1);
    Atomics.add(this.i32, I_TX_SEQ, 1);
    this.rxWord.wake();
    this.txWord.wake();
  }

  /**
   * Whether a message is reserved that receivers cannot take yet: a sender is still writing it (or
   * died doing so, see `recover`), or it is a loan not sent yet. Receivers that say they may sleep
   * (`prepareSleep`) and then find this true sleep only briefly: a sender of one message looks for
   * sleepers when it reserves, so one that reserved before they said so will not wake them.
   */
  pending(): boolean {
    return Atomics.load(this.i32, I_TAIL) !== Atomics.load(this.i32, I_HEAD);
  }

  /** Reads the word of `side` and says it may sleep: the caller then re-checks, then sleeps on it. */
  prepareSleep(side: Side): number {
    const seq = Atomics.load(this.i32, side.seq);
    Atomics.store(this.i32, side.waiters, 1);
    return seq;
  }

  // ---- Sending ---------------------------------------------------------------------------------------

  /** One attempt to send a checked message: SENT (1), FULL or ENDED. */
  put(message: Uint8Array): number {
    // The common case, inline: one cell, the same view as the last message sent (see `WordView`),
    // room by the cached head. Anything else, or a lost compare-and-swap, takes `#put`.
    const source = this.#source;
    const in32 = source.last32;
    const len = message.length;
    if (
      message === source.last && in32 !== null && len <= CELL && in32.length === len >>> 2 && !this.closed
    ) {
      const i32 = this.i32;
      const t = i32[I_TAIL]!;
      const used = (t - this.#head) | 0;
      if (used >= 0 && used < this.cells && ((t - this.#headAt) | 0) <= 0x3fffffff && i32[I_ENDED] === 0) {
        const slot = this.#slot; // taken by the send that set the source's last message
        i32[slot] = t;
        i32[slot + 1] = 1;
        if (Atomics.compareExchange(i32, I_TAIL, t, (t + 1) | 0) === t) {
          const wake = (TSO ? i32[I_RX_WAITERS] : Atomics.load(i32, I_RX_WAITERS)) !== 0; // see `#put`
          const c = t & this.#mask;
          const at = c << CELL_SHIFT;
          // Not `copyWords`: Deno's send took 51 -> 62 ns through it (an inlining budget, it seems).
          if (len === CELL) copyCell(this.#data32, at >>> 2, in32, 0);
          else {
            const data32 = this.#data32;
            const w = at >>> 2;
            for (let i = 0; i < in32.length; i++) data32[w + i] = in32[i]!;
          }
          if ((len & 3) !== 0) {
            const data = this.#data;
            for (let i = len & ~3; i < len; i++) data[at + i] = message[i]!;
          }
          this.#commitOne(c, t, len);
          if (wake) this.#wake(RX);
          return 1;
        }
      }
    }
    return this.#put(message);
  }

  /** `put`, any message. */
  #put(message: Uint8Array): number {
    if (this.closed) this.#closedError();
    const slot = this.#slot || this.#register();
    const len = message.length;
    const k = cellsFor(len);
    const i32 = this.i32;
    let t: number;
    for (;;) {
      t = i32[I_TAIL]!; // a plain read: the compare-and-swap below checks it
      if (i32[I_ENDED] !== 0) return ENDED; // a plain read: a send racing with end() may go either way
      const used = (t - this.#head) | 0;
      if (used < 0 || used + k > this.cells || ((t - this.#headAt) | 0) > 0x3fffffff) {
        // The cached head says full (or is too old): read the shared one, a cache line receivers own.
        const free = this.#freeCells(t);
        if (free === RETRY) continue;
        if (free < k) return FULL;
      }
      i32[slot] = t; // the slot covers the cells from here until the record names the sender
      i32[slot + 1] = k;
      if (Atomics.compareExchange(i32, I_TAIL, t, (t + k) | 0) === t) break;
    }
    // Whether a receiver may sleep is read right after the compare-and-swap, which no load passes:
    // a receiver that says so later sees this message reserved, so does not sleep for long (see
    // `pending`), and the commit needs no locked instruction.
    const wake = (TSO ? i32[I_RX_WAITERS] : Atomics.load(i32, I_RX_WAITERS)) !== 0;
    this.#write(message, t);
    if (wake) this.#wake(RX);
    return 1;
  }

  /**
   * One attempt to reserve the cells of a loan of `len` bytes (at most the ring): 1 (its position in
   * `reserved`, its record written), FULL or ENDED. A loan never wraps: when it would, the cells up
   * to the ring's end are first committed as a dropped message (padding) that receivers skip.
   */
  reserve(len: number): number {
    if (this.closed) this.#closedError();
    const slot = this.#slot || this.#register();
    const k = cellsFor(len);
    const i32 = this.i32;
    for (;;) {
      const t = Atomics.load(i32, I_TAIL);
      if (i32[I_ENDED] !== 0) return ENDED;
      const room = this.cells - (t & this.#mask);
      const need = k > room ? room : k;
      const used = (t - this.#head) | 0;
      if (used < 0 || used + need > this.cells || ((t - this.#headAt) | 0) > 0x3fffffff) {
        const free = this.#freeCells(t);
        if (free === RETRY) continue;
        if (free < need) return FULL;
      }
      i32[slot] = t;
      i32[slot + 1] = need;
      if (Atomics.compareExchange(i32, I_TAIL, t, (t + need) | 0) !== t) continue;
      this.#record(t, need === k ? len : -need);
      if (need === k) {
        this.reserved = t;
        return 1;
      }
      this.commit(t, -need); // the padding: then the loan starts at the ring's start
    }
  }

  /**
   * Commits the reservation at `t` whose record says `len` bytes; with a negative `len`, the record
   * first becomes a dropped message of -len cells, which receivers skip.
   */
  commit(t: number, len: number): void {
    const c = t & this.#mask;
    const r = c << META_SHIFT;
    if (len < 0) this.#meta[r + R_LENGTH] = len;
    const k = len < 0 ? -len : cellsFor(len);
    const lap = t >>> this.#log2;
    const stamp = (lap + 1) | 0;
    if ((lap & this.#refresh) === 0) this.#stamp(c + 1, c + k, stamp);
    Atomics.store(this.#meta, r, stamp);
    if (Atomics.load(this.i32, I_RX_WAITERS) !== 0) this.#wake(RX);
  }

  /** Byte offset in the segment of the data of position `t`. */
  offsetOf(t: number): number {
    return this.dataOffset + ((t & this.#mask) << CELL_SHIFT);
  }

  /** Copies `bytes`, a private view from `views`, into the cells of the loan reserved at `t` (a loan never wraps). */
  writeAt(t: number, bytes: Uint8Array, views: PrivateViews): void {
    views.copyTo(bytes, this.#data, this.#data32, (t & this.#mask) << CELL_SHIFT);
  }

  /** A private copy (from `views`) of the `len` bytes of the message at `t`, which does not wrap. */
  readAt(t: number, len: number, views: PrivateViews): Uint8Array {
    return views.copy(this.#data, this.#data32, (t & this.#mask) << CELL_SHIFT, len);
  }

  /** Writes the record of the message reserved at `t`: its length (or -cells when dropped), owner and position. */
  #record(t: number, len: number): void {
    const r = (t & this.#mask) << META_SHIFT;
    this.#meta[r + R_LENGTH] = len;
    this.#owners[r] = this.#me;
    this.#owners[r + R_POSITION] = t;
  }

  /**
   * One attempt to send checked `messages[from…]`: reserves room for as many as fit at once and
   * writes them; returns how many (> 0), FULL or ENDED.
   */
  putMany(messages: readonly Uint8Array[], from: number): number {
    if (this.closed) this.#closedError();
    const slot = this.#slot || this.#register();
    const i32 = this.i32;
    for (;;) {
      const t = Atomics.load(i32, I_TAIL);
      if (i32[I_ENDED] !== 0) return ENDED; // a plain read: a send racing with end() may go either way
      let free = this.cells - ((t - this.#head) | 0);
      if (free <= 0 || free > this.cells || ((t - this.#headAt) | 0) > 0x3fffffff) free = this.#freeCells(t);
      if (free === RETRY) continue;
      const [n, total] = this.#fit(messages, from, t, free);
      if (n === 0) {
        if (Atomics.load(i32, I_TAIL) !== t) continue;
        return FULL;
      }
      i32[slot] = t;
      i32[slot + 1] = total;
      if (Atomics.compareExchange(i32, I_TAIL, t, (t + total) | 0) !== t) continue;
      const wake = (TSO ? i32[I_RX_WAITERS] : Atomics.load(i32, I_RX_WAITERS)) !== 0; // as in `put`
      for (let i = from, at = t; i < from + n; i++) at = this.#write(messages[i]!, at);
      if (wake) this.#wake(RX);
      return n;
    }
  }

  /** How many of `messages[from…]` fit in `free` cells at `t` (re-reading the head once), and their cells. */
  #fit(messages: readonly Uint8Array[], from: number, t: number, free: number): [number, number] {
    let total = 0;
    let i = from;
    for (; i < messages.length; i++) {
      const k = cellsFor(messages[i]!.length);
      if (k > free && (i > from || (free = this.#freeCells(t)) < k)) break;
      free -= k;
      total += k;
    }
    return [i - from, total];
  }

  /** Takes a slot for this thread: its own, a free one, or one whose thread died. */
  #register(): number {
    const i32 = this.i32;
    const me = this.#me;
    for (let o = I_SLOTS; o < I_SLOTS + SLOTS * SLOT_INTS; o += SLOT_INTS) {
      if (Atomics.load(i32, o) === me) return this.#slot = o + 1;
    }
    for (let o = I_SLOTS; o < I_SLOTS + SLOTS * SLOT_INTS; o += SLOT_INTS) {
      if (Atomics.compareExchange(i32, o, 0, me) === 0) return this.#slot = o + 1;
    }
    for (let o = I_SLOTS; o < I_SLOTS + SLOTS * SLOT_INTS; o += SLOT_INTS) {
      const owner = Atomics.load(i32, o);
      if (this.#pending(o + 1) || ownerStatus(owner, 0) !== "dead") continue;
      if (Atomics.compareExchange(i32, o, owner, me) === owner) return this.#slot = o + 1;
    }
    throw new Error(`Cannot send on channel "${this.name}": ${SLOTS} live threads already send on it`);
  }

  /** Re-reads the shared head; returns the free cells at `t`, or RETRY when the tail has moved on. */
  #freeCells(t: number): number {
    let h = Atomics.load(this.i32, I_HEAD);
    // Dropped messages at the head (discarded loans, paddings) are passed over by senders too.
    for (let drop; h !== t && (drop = this.#committed(h)) < -1 && ((t - h) | 0) > 0;) {
      this.#skip(h, drop);
      h = Atomics.load(this.i32, I_HEAD);
    }
    const used = (t - h) | 0;
    if (used < 0 || used > this.cells) {
      if (Atomics.load(this.i32, I_TAIL) !== t) return RETRY;
      throw this.#corrupted("send on", `its head ${h >>> 0} is not within a ring of its tail ${t >>> 0}`);
    }
    const floor = this.i32[I_BORROW_HIGH] === 0 ? used : this.#borrowFloor(t, used);
    this.#head = (t - floor) | 0;
    this.#headAt = t;
    return this.cells - floor;
  }

  /** Writes the record of one message into the cells reserved at `t`, copies it and commits it; returns the next position. */
  #write(message: Uint8Array, t: number): number {
    const k = cellsFor(message.length);
    const cells = this.cells;
    const c = t & this.#mask;
    const lap = t >>> this.#log2;
    const stamp = (lap + 1) | 0;
    const first = cells - c;
    const refresh = this.#refresh;
    if (k <= first) {
      this.#source.copy(message, this.#data, this.#data32, c << CELL_SHIFT);
      if ((lap & refresh) === 0) this.#stamp(c + 1, c + k, stamp);
    } else {
      const split = first << CELL_SHIFT;
      this.#data.set(message.subarray(0, split), c << CELL_SHIFT);
      this.#data.set(message.subarray(split), 0);
      if ((lap & refresh) === 0) this.#stamp(c + 1, cells, stamp);
      const next = ((t + first) | 0) >>> this.#log2;
      if ((next & refresh) === 0) this.#stamp(0, k - first, (next + 1) | 0);
    }
    this.#commitOne(c, t, message.length);
    return (t + k) | 0;
  }

  /**
   * Writes the record of the message of `len` bytes at position `t` (cell `c`), then its stamp: the
   * commit. The record comes last, next to the commit: receivers poll this cache line, so the sender
   * takes it back once. Until the record names the sender, its slot covers the cells (`recover`).
   */
  #commitOne(c: number, t: number, len: number): void {
    const meta = this.#meta;
    const r = c << META_SHIFT;
    meta[r + R_LENGTH] = len;
    this.#owners[r] = this.#me;
    this.#owners[r + R_POSITION] = t;
    const stamp = ((t >>> this.#log2) + 1) | 0;
    if (TSO) meta[r] = stamp; // a plain store releases on x86-64 (_sync/order.ts)
    else Atomics.store(meta, r, stamp);
  }

  /** Stamps the inner cells `from` to `to` (exclusive). */
  #stamp(from: number, to: number, stamp: number): void {
    const meta = this.#meta;
    for (let i = from; i < to; i++) meta[i << META_SHIFT] = stamp;
  }

  /** Wakes the waiters of `side`, if one may sleep (callers check the flag first: the hot path stays inline). */
  #wake(side: Side): void {
    const i32 = this.i32;
    if (Atomics.exchange(i32, side.waiters, 0) !== 0) {
      Atomics.add(i32, side.seq, 1);
      (side === RX ? this.rxWord : this.txWord).wake();
    }
  }

  // ---- Receiving -------------------------------------------------------------------------------------

  /**
   * One attempt to receive: copies the message at the head out (into `dest`, or into a new `out`
   * when `dest` is null), then claims it with a compare-and-swap of the head. Returns its length,
   * EMPTY or ENDED.
   */
  take(dest: Uint8Array | null): number {
    // The common case, inline: a message of one cell into the same buffer as last time (see
    // `#copyShort`). Anything else, nothing there, or a lost compare-and-swap takes `#take`.
    const out32 = this.#dest.last32;
    const i32 = this.i32;
    if (dest !== null && dest === this.#dest.last && out32 !== null && !this.closed && i32[I_ORPHANS] === 0) {
      const meta = this.#meta;
      const h = i32[I_HEAD]!; // a plain read: the compare-and-swap below checks it
      const c = h & this.#mask;
      const r = c << META_SHIFT;
      // The stamp acquires the message: an Atomics load, so that no JIT reads the bytes before it
      // (a JIT may reorder two plain loads; see _sync/order.ts).
      const stamp = Atomics.load(meta, r);
      const len = meta[r + R_LENGTH]!;
      if (stamp === (((h >>> this.#log2) + 1) | 0) && len >= 0 && len <= CELL && len <= dest.length) {
        const words = len >>> 2;
        if (words <= out32.length) {
          copyWords(out32, 0, this.#data32, c << (CELL_SHIFT - 2), words);
          if ((len & 3) !== 0) {
            const data = this.#data;
            const at = c << CELL_SHIFT;
            for (let i = words << 2; i < len; i++) dest[i] = data[at + i]!;
          }
          if (Atomics.compareExchange(i32, I_HEAD, h, (h + 1) | 0) === h) {
            if ((TSO ? i32[I_TX_WAITERS] : Atomics.load(i32, I_TX_WAITERS)) !== 0) this.#wake(TX);
            return len;
          }
        }
      }
    }
    return this.#take(dest);
  }

  /** `take`, any message. */
  #take(dest: Uint8Array | null): number {
    if (this.closed) this.#closedError();
    const i32 = this.i32;
    if (i32[I_ORPHANS] !== 0) {
      const n = this.#takeOrphan(dest);
      if (n >= 0) return n;
    }
    const meta = this.#meta;
    for (;;) {
      const h = i32[I_HEAD]!; // a plain read: the compare-and-swap below checks it
      const r = (h & this.#mask) << META_SHIFT;
      // The stamp acquires the message: an Atomics load, so that no JIT reads the bytes before it
      // (a JIT may reorder two plain loads; see _sync/order.ts).
      const stamp = Atomics.load(meta, r);
      const len = stamp === (((h >>> this.#log2) + 1) | 0) ? this.#length(h, r) : -1;
      if (len < 0) {
        if (len < -1) {
          this.#skip(h, len);
          continue;
        }
        // Not committed: empty, a sender still copying, or another receiver took it meanwhile.
        if (Atomics.load(i32, I_HEAD) !== h) continue;
        return this.#emptyOrEnded(h);
      }
      const out = dest ?? new Uint8Array(len);
      if (len > out.length) {
        if (Atomics.load(i32, I_HEAD) !== h) continue;
        throw new RangeError(
          `Cannot receive from channel "${this.name}": the next message is ${len} bytes and the buffer holds ${out.length}`,
        );
      }
      if (dest === null || len > 256) this.#copyOut(h & this.#mask, len, out, 0);
      else this.#copyShort(h & this.#mask, len, dest, 0);
      if (Atomics.compareExchange(i32, I_HEAD, h, (h + cellsFor(len)) | 0) !== h) continue;
      if ((TSO ? i32[I_TX_WAITERS] : Atomics.load(i32, I_TX_WAITERS)) !== 0) this.#wake(TX);
      if (dest === null) this.out = out;
      return len;
    }
  }

  /**
   * One attempt to receive many: copies out every committed message from the head that fits in
   * `buffer` (and `lengths`), then claims them with one compare-and-swap. Returns how many (> 0),
   * EMPTY or ENDED.
   */
  takeMany(buffer: Uint8Array, lengths: Uint32Array): number {
    if (this.closed) this.#closedError();
    const i32 = this.i32;
    if (i32[I_ORPHANS] !== 0 && lengths.length > 0) {
      const n = this.#takeOrphan(buffer);
      if (n >= 0) {
        lengths[0] = n;
        return 1;
      }
    }
    retry: for (;;) {
      const h = Atomics.load(i32, I_HEAD);
      let pos = h;
      let off = 0;
      let n = 0;
      while (n < lengths.length && ((pos - h) | 0) < this.cells) {
        const len = this.#committed(pos);
        if (len < -1 && ((pos - len - 1 - h) | 0) <= this.cells) {
          pos = (pos - len - 1) | 0; // a dropped message
          continue;
        }
        if (len < 0 || ((pos + cellsFor(len) - h) | 0) > this.cells) break;
        if (off + len > buffer.length) {
          if (n > 0) break;
          if (Atomics.load(i32, I_HEAD) !== h) continue retry;
          throw new RangeError(
            `Cannot receive from channel "${this.name}": the next message is ${len} bytes and the buffer holds ${buffer.length}`,
          );
        }
        this.#copyShort(pos & this.#mask, len, buffer, off);
        lengths[n++] = len;
        off += len;
        pos = (pos + cellsFor(len)) | 0;
      }
      if (n === 0 && pos !== h) {
        if (Atomics.compareExchange(i32, I_HEAD, h, pos) === h && Atomics.load(i32, I_TX_WAITERS) !== 0) {
          this.#wake(TX);
        }
        continue;
      }
      if (n === 0) {
        if (Atomics.load(i32, I_HEAD) !== h) continue;
        return this.#emptyOrEnded(h);
      }
      if (Atomics.compareExchange(i32, I_HEAD, h, pos) !== h) continue;
      if (Atomics.load(i32, I_TX_WAITERS) !== 0) this.#wake(TX);
      return n;
    }
  }

  /** The length in the record `r` of the message committed at `pos`, checked. */
  #length(pos: number, r: number): number {
    const len = this.#meta[r + R_LENGTH]!;
    if (len >= 0 && cellsFor(len) <= this.cells) return len;
    if (len < 0 && -len <= this.cells) return len - 1; // dropped: -1 - its cells
    if (Atomics.load(this.i32, I_HEAD) !== pos) return -1; // taken meanwhile: its record is reused
    throw this.#corrupted("receive from", `a message of ${len} bytes at position ${pos >>> 0}`);
  }

  /** The length of the message committed at `pos`; -1 when none is; -1 - its cells when it was dropped. */
  #committed(pos: number): number {
    const r = (pos & this.#mask) << META_SHIFT;
    if (Atomics.load(this.#meta, r) !== (((pos >>> this.#log2) + 1) | 0)) return -1;
    return this.#length(pos, r);
  }

  /** Moves the head past the dropped message at `h` (`drop` is -1 - its cells), if no one did. */
  #skip(h: number, drop: number): void {
    if (Atomics.compareExchange(this.i32, I_HEAD, h, (h - drop - 1) | 0) !== h) return;
    if (Atomics.load(this.i32, I_TX_WAITERS) !== 0) this.#wake(TX);
  }

  #emptyOrEnded(h: number): number {
    const i32 = this.i32;
    return Atomics.load(i32, I_ENDED) !== 0 && Atomics.load(i32, I_TAIL) === h && !this.#borrowsHeld()
      ? ENDED
      : EMPTY;
  }

  // ---- Borrowing -------------------------------------------------------------------------------------

  /**
   * One attempt to borrow the message at the head: claims a borrow slot, writes into it the
   * message's position and cells, then moves the head past it with one compare-and-swap. Returns
   * its length (in place at `borrowPos`, `borrowSlot` set; or, for a message that wraps the ring's
   * end or one a dead receiver held, a copy in `out` and `borrowSlot` 0), EMPTY or ENDED.
   */
  borrow(): number {
    if (this.closed) this.#closedError();
    const i32 = this.i32;
    if (i32[I_ORPHANS] !== 0) {
      const n = this.#takeOrphan(null);
      if (n >= 0) {
        this.borrowSlot = 0;
        return n;
      }
    }
    for (;;) {
      const h = Atomics.load(i32, I_HEAD);
      const len = this.#committed(h);
      if (len === -1) {
        if (Atomics.load(i32, I_HEAD) !== h) continue;
        return this.#emptyOrEnded(h);
      }
      if (len < -1) {
        this.#skip(h, len);
        continue;
      }
      const k = cellsFor(len);
      if ((h & this.#mask) + k > this.cells) {
        // It wraps the ring's end: no one view holds it, so this borrow is a copy.
        const n = this.take(null);
        if (n >= 0) this.borrowSlot = 0;
        return n;
      }
      const s = this.#claimBorrowSlot();
      // Announced before the head moves: senders then keep off these cells until the release. Should
      // this receiver die between the two, the message is delivered again (at least once).
      Atomics.store(i32, s + 1, h);
      Atomics.store(i32, s + 2, k);
      if (Atomics.compareExchange(i32, I_HEAD, h, (h + k) | 0) !== h) {
        this.release(s, false);
        continue;
      }
      this.borrowSlot = s;
      this.borrowPos = h;
      return len;
    }
  }

  /** Frees the borrow slot `s`: its cells go back to the senders. */
  release(s: number, wake = true): void {
    const i32 = this.i32;
    Atomics.store(i32, s + 2, 0);
    Atomics.store(i32, s, 0);
    if (!wake) return;
    if (Atomics.load(i32, I_TX_WAITERS) !== 0) this.#wake(TX);
    if (Atomics.load(i32, I_RX_WAITERS) !== 0) this.#wake(RX); // waiters for the end count borrows
  }

  /** Takes a free borrow slot for this thread; returns the Int32 index of its owner field. */
  #claimBorrowSlot(): number {
    const i32 = this.i32;
    const me = this.#me;
    for (let i = 0; i < BSLOTS; i++) {
      const o = I_BSLOTS + i * SLOT_INTS;
      if (Atomics.load(i32, o) !== 0 || Atomics.compareExchange(i32, o, 0, me) !== 0) continue;
      for (let high = Atomics.load(i32, I_BORROW_HIGH); high <= i;) {
        const seen = Atomics.compareExchange(i32, I_BORROW_HIGH, high, i + 1);
        if (seen === high) break;
        high = seen;
      }
      return o;
    }
    throw new Error(`Cannot borrow from channel "${this.name}": ${BSLOTS} messages are already borrowed`);
  }

  /**
   * Whether another thread's borrow slot holds cells: a live borrow (whose holder may die, and its
   * message come back), or a dead receiver's message to deliver again. This thread's own borrows do
   * not count: it would wait for itself.
   */
  #borrowsHeld(): boolean {
    const i32 = this.i32;
    const high = i32[I_BORROW_HIGH]!;
    for (let i = 0; i < high; i++) {
      const o = I_BSLOTS + i * SLOT_INTS;
      if (Atomics.load(i32, o + 2) > 0 && Atomics.load(i32, o) !== this.#me) return true;
    }
    return false;
  }

  /** The cells from the oldest borrowed message to the tail `t`, when more than `used` (from the head). */
  #borrowFloor(t: number, used: number): number {
    const i32 = this.i32;
    const high = i32[I_BORROW_HIGH]!;
    for (let i = 0; i < high; i++) {
      const o = I_BSLOTS + i * SLOT_INTS;
      if (Atomics.load(i32, o + 2) <= 0) continue;
      const d = (t - Atomics.load(i32, o + 1)) | 0;
      if (d > used && d <= this.cells) used = d;
    }
    return used;
  }

  /**
   * Delivers, by copy, a message whose borrower died: claims its slot, copies the message out and
   * checks that its record still names it (a receiver that died between announcing a borrow and
   * losing the head to another leaves a slot over cells that may be reused: skipped). Returns its
   * length, or EMPTY.
   */
  #takeOrphan(dest: Uint8Array | null): number {
    const i32 = this.i32;
    const high = i32[I_BORROW_HIGH]!;
    for (let i = 0; i < high; i++) {
      const o = I_BSLOTS + i * SLOT_INTS;
      if (Atomics.load(i32, o) !== ORPHAN || Atomics.compareExchange(i32, o, ORPHAN, this.#me) !== ORPHAN) {
        continue;
      }
      Atomics.sub(i32, I_ORPHANS, 1);
      const pos = Atomics.load(i32, o + 1);
      const r = (pos & this.#mask) << META_SHIFT;
      const valid = () =>
        Atomics.load(this.#owners, r + R_POSITION) === pos &&
        Atomics.load(this.#meta, r) === (((pos >>> this.#log2) + 1) | 0);
      const len = this.#meta[r + R_LENGTH]!;
      if (!valid() || len < 0 || cellsFor(len) !== Atomics.load(i32, o + 2)) {
        this.release(o);
        continue;
      }
      const out = dest ?? new Uint8Array(len);
      if (len > out.length) {
        // Give it back for a receiver with room, and say why this one cannot take it.
        Atomics.store(i32, o, ORPHAN);
        Atomics.add(i32, I_ORPHANS, 1);
        throw new RangeError(
          `Cannot receive from channel "${this.name}": the next message is ${len} bytes and the buffer holds ${out.length}`,
        );
      }
      this.#copyOut(pos & this.#mask, len, out, 0);
      const ok = valid();
      this.release(o);
      if (!ok) continue;
      if (dest === null) this.out = out;
      return len;
    }
    return EMPTY;
  }

  /** Hands the messages of dead borrowers to the next receivers; true when it found some. */
  #orphanDead(): boolean {
    const i32 = this.i32;
    const high = i32[I_BORROW_HIGH]!;
    const dead = new Set<number>();
    let found = false;
    for (let i = 0; i < high; i++) {
      const o = I_BSLOTS + i * SLOT_INTS;
      const owner = Atomics.load(i32, o);
      if (owner === 0 || owner === ORPHAN || !this.#isDead(owner, dead)) continue;
      if (Atomics.compareExchange(i32, o, owner, ORPHAN) !== owner) continue;
      if (Atomics.load(i32, o + 2) > 0) {
        Atomics.add(i32, I_ORPHANS, 1);
        found = true;
      } else {
        Atomics.store(i32, o, 0); // claimed, never used
      }
    }
    if (found) {
      Atomics.add(i32, I_RX_SEQ, 1);
      this.rxWord.wake();
    }
    return found;
  }

  /** Copies `len` bytes from cell `c` on into `out` at `off`. */
  #copyOut(c: number, len: number, out: Uint8Array, off: number): void {
    const data = this.#data;
    const at = c << CELL_SHIFT;
    const first = (this.cells - c) << CELL_SHIFT;
    if (len > first) {
      out.set(data.subarray(at, at + first), off);
      out.set(data.subarray(0, len - first), off + first);
    } else if (len > 64) {
      out.set(data.subarray(at, at + len), off);
    } else {
      for (let i = 0; i < len; i++) out[off + i] = data[at + i]!;
    }
  }

  /**
   * `#copyOut` for short messages: one that does not wrap, to a 4-byte aligned place of `out`, is
   * copied by words once the same buffer is copied into again (`WordView`: a loop beats `set()`).
   */
  #copyShort(c: number, len: number, out: Uint8Array, off: number): void {
    if (len > 256 || (off & 3) !== 0 || len > (this.cells - c) << CELL_SHIFT) {
      return this.#copyOut(c, len, out, off);
    }
    const out32 = this.#dest.of(out);
    if (out32 === null) return this.#copyOut(c, len, out, off);
    const words = len >>> 2;
    copyWords(out32, off >>> 2, this.#data32, c << (CELL_SHIFT - 2), words);
    const data = this.#data;
    const at = c << CELL_SHIFT;
    for (let i = words << 2; i < len; i++) out[off + i] = data[at + i]!;
  }

  // ---- Recovery --------------------------------------------------------------------------------------

  /**
   * Called by waiters before they sleep: when the message at the head has stayed uncommitted for
   * PROBE_MS, checks whether its sender lives; when it died, moves the head past the messages it
   * reserved and did not commit (they are dropped). Returns true when it dropped some.
   *
   * @throws {ChannelCorruptError} when the cursors are in a state no sender or receiver can leave
   */
  recover(now: number): boolean {
    if (this.closed) this.#closedError();
    const i32 = this.i32;
    if (i32[I_BORROW_HIGH] !== 0 && now - this.#borrowProbe >= PROBE_MS) {
      this.#borrowProbe = now;
      if (this.#orphanDead()) return true;
    }
    const before = Atomics.load(i32, I_TAIL);
    const h = Atomics.load(i32, I_HEAD);
    const t = Atomics.load(i32, I_TAIL);
    const reserved = (t - h) | 0;
    if (reserved < 0 || reserved > this.cells) {
      // Only a tail that held still while the head was read must be within a ring of it.
      if (t !== before) return false;
      throw this.#corrupted(
        "receive from",
        `its head ${h >>> 0} is not within a ring of its tail ${t >>> 0}`,
      );
    }
    if (reserved === 0 || this.#committed(h) !== -1) {
      this.#stallSince = Infinity;
      return false;
    }
    if (h !== this.#stallHead || this.#stallSince === Infinity) {
      this.#stallHead = h;
      this.#stallSince = now;
      return false;
    }
    if (now - this.#stallSince < PROBE_MS) return false;
    this.#stallSince = now;
    const end = this.#deadEnd(h, t);
    if (end === h || Atomics.compareExchange(i32, I_HEAD, h, end) !== h) return false;
    // The next message may be another dead sender's: check it at once.
    this.#stallHead = end;
    this.#stallSince = now - PROBE_MS;
    Atomics.add(i32, I_TX_SEQ, 1);
    this.txWord.wake();
    return true;
  }

  /** Where the uncommitted messages from `h` on whose senders are dead end (`h` when the first one's lives). */
  #deadEnd(h: number, t: number): number {
    const dead = new Set<number>();
    let pos = h;
    while (pos !== t && this.#committed(pos) === -1) {
      const next = this.#pastDead(h, pos, t, dead);
      if (next === pos) break;
      pos = next;
    }
    return pos;
  }

  /** The end of the reservation at `pos` when its sender is dead, else `pos`. */
  #pastDead(h: number, pos: number, t: number, dead: Set<number>): number {
    const record = this.#recordAt(pos, t);
    if (record !== null) return this.#isDead(record.owner, dead) ? (pos + record.cells) | 0 : pos;
    // No record yet: the slot of the thread whose compare-and-swap won covers the position (so may
    // the stale slots of threads that lost it and died).
    const ends: number[] = [];
    for (let o = I_SLOTS + 1; o < I_SLOTS + SLOTS * SLOT_INTS; o += SLOT_INTS) {
      if (!this.#covers(o, pos)) continue;
      if (!this.#isDead(this.i32[o - 1]!, dead)) return pos;
      ends.push((this.i32[o]! + this.i32[o + 1]!) | 0);
    }
    // The reservation ends at the nearest of these ends where another one starts (or the tail is).
    ends.sort((a, b) => ((a - pos) | 0) - ((b - pos) | 0));
    const end = ends.find((e) => ((e - pos) | 0) <= ((t - pos) | 0) && this.#startsHere(e, t));
    if (end !== undefined) return end;
    if (Atomics.load(this.i32, I_HEAD) !== h) return pos;
    throw this.#corrupted("receive from", `no sender can be told for the message at position ${pos >>> 0}`);
  }

  /**
   * Whether a reservation starts at `pos`, or `pos` is the tail: a record or a slot names it (a slot
   * only ever names a position the tail held).
   */
  #startsHere(pos: number, t: number): boolean {
    const r = (pos & this.#mask) << META_SHIFT;
    if (pos === t || (this.#owners[r + R_POSITION] === pos && this.#owners[r] !== 0)) return true;
    for (let o = I_SLOTS + 1; o < I_SLOTS + SLOTS * SLOT_INTS; o += SLOT_INTS) {
      if (this.i32[o] === pos && this.i32[o + 1]! > 0) return true;
    }
    return false;
  }

  /** Whether the slot whose position field is at `o` covers position `pos`. */
  #covers(o: number, pos: number): boolean {
    const cells = this.i32[o + 1]!;
    const off = (pos - this.i32[o]!) | 0;
    return cells > 0 && off >= 0 && off < cells;
  }

  /** Whether the slot whose position field is at `o` covers a position from the head to the tail. */
  #pending(o: number): boolean {
    const h = Atomics.load(this.i32, I_HEAD);
    const off = (this.i32[o]! - h) | 0;
    return off < ((Atomics.load(this.i32, I_TAIL) - h) | 0) && off + this.i32[o + 1]! > 0;
  }

  #isDead(owner: number, dead: Set<number>): boolean {
    if (dead.has(owner)) return true;
    if (owner === 0 || ownerStatus(owner, 0) !== "dead") return false;
    dead.add(owner);
    return true;
  }

  /**
   * The record of the message reserved at `pos`; null when none was written for `pos` yet (or one is
   * being written: then the slot of its sender still covers `pos`).
   */
  #recordAt(pos: number, t: number): { cells: number; owner: number } | null {
    const r = (pos & this.#mask) << META_SHIFT;
    const owner = this.#owners[r]!;
    if (this.#owners[r + R_POSITION] !== pos || owner === 0) return null; // (a new ring's records are zeros)
    const len = this.#meta[r + R_LENGTH]!;
    const cells = len >= 0 ? cellsFor(len) : -len; // a padding being written is dropped: -cells
    return cells > 0 && cells <= ((t - pos) | 0) ? { cells, owner } : null;
  }

  #corrupted(action: string, why: string): ChannelCorruptError {
    return new ChannelCorruptError(
      `Cannot ${action} channel "${this.name}": it is corrupted (${why})`,
      this.name,
    );
  }

  #closedError(): never {
    throw new TypeError(`Cannot use channel "${this.name}": this handle is closed`);
  }
}

/**
 * A channel's readiness for WaitSet (`_sync/readiness.ts`): readable when a message is reserved
 * (`tryReceive` may still find it half-written: a race the caller handles) or the channel ended;
 * writable when a message of up to one cell fits, or the channel ended (`trySend` throws then).
 * A sleeper raises the side's waiters flag, as the channel's own waits do.
 */
export function ringReadiness(ring: Ring): Record<"readable" | "writable", Readiness> {
  const side = (s: Side, word: FutexWord, ready: () => boolean): Readiness => ({
    word,
    ready: () => {
      if (ring.closed) throw new TypeError(`Cannot wait on channel "${ring.name}": the handle is closed`);
      return ready();
    },
    prepare: () => {
      const seq = ring.prepareSleep(s);
      return ready() ? null : seq;
    },
    done: () => {},
  });
  return {
    readable: side(RX, ring.rxWord, () => ring.ended || !ring.drained),
    writable: side(TX, ring.txWord, () => ring.ended || ring.freeCells() >= cellsFor(1)),
  };
}
