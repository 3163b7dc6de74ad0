/**
 * Views lent out until they are settled, shared by `Channel` and `Topic` loans (written, then sent
 * or discarded) and borrows: a view into the segment, detached when settled, or, for short
 * messages, a view of private memory that dies the same way for less.
 *
 * @module
 */

/**
 * Loans and borrows of at most this many bytes get a private view (the bytes are copied into the
 * segment on send, out of it on borrow) instead of a view into the segment: making a view over
 * foreign memory and detaching it costs about a microsecond in both runtimes, more than the copy.
 * Above this size a private view costs more (each takes a fresh page, and shrinking past a page
 * makes the engine decommit it): at 1 KiB both cost the same in `bench/topic_bench.ts`'s one-way
 * rate, at 4 KiB the view into the segment was 2–3× faster (docs/benchmarks.md).
 */
export const PRIVATE_MAX = 1024;

/** Bytes of each private pool: 1,024 views of PRIVATE_MAX bytes, or 16,384 of 64. */
const POOL = 1 << 20;

/** Detaches a view's buffer: the view then has length 0, and nothing can reach the memory through it. */
export function detach(bytes: Uint8Array): void {
  const buffer = bytes.buffer as ArrayBuffer;
  if (buffer.detached) return;
  try {
    buffer.transfer(0);
  } catch {
    // Not transferable: cannot happen for the buffers made here (fresh and unpinned).
  }
}

/** The empty view a settled loan or borrow shows. */
export const NO_BYTES: Uint8Array = new Uint8Array(0);

/**
 * Private views that die when settled, without a new ArrayBuffer each (allocating one costs about
 * a microsecond under Deno, detaching one half of that in both runtimes). Views are cut from a
 * resizable ArrayBuffer from its end downwards; settling a view shrinks the buffer to the view's
 * start, so the view is then out of bounds (length 0), and since the buffer never grows again, it
 * stays so and never sees the memory of a later view. A spent buffer is dropped for a fresh one.
 * One view is out at a time: another one asked for meanwhile is a fresh buffer, detached when
 * settled.
 */
export class PrivateViews {
  #buffer: ArrayBuffer | null = null;
  /** Length-tracking views of the whole buffer: copying by words beats creating a subarray. */
  #all32: Int32Array = new Int32Array(0);
  #all8: Uint8Array = new Uint8Array(0);
  /** Where the next view ends: views go downwards. */
  #top = 0;
  /** The view out now, if any. */
  #out: Uint8Array | null = null;

  /** A private view of `length` (at most PRIVATE_MAX) bytes, zero-filled or not. */
  take(length: number): Uint8Array {
    if (this.#out !== null) return new Uint8Array(length);
    let buffer = this.#buffer;
    let at = (this.#top - length) & ~7;
    if (buffer === null || at <= 0 || buffer.byteLength !== this.#top) {
      // First use, spent, or its buffer was detached (length 0) or resized by code that got hold
      // of a view.
      buffer = this.#buffer = new ArrayBuffer(POOL, { maxByteLength: POOL });
      this.#all32 = new Int32Array(buffer);
      this.#all8 = new Uint8Array(buffer);
      at = (POOL - length) & ~7;
    }
    this.#top = at;
    return this.#out = new Uint8Array(buffer, at, length);
  }

  /**
   * A private view holding a copy of the `length` bytes at byte `from` of `src` (whose Int32 view
   * is `src32`; `from` is a multiple of 4).
   */
  copy(src: Uint8Array, src32: Int32Array, from: number, length: number): Uint8Array {
    const view = this.take(length);
    if (view !== this.#out || length > 256) {
      view.set(src.subarray(from, from + length));
      return view;
    }
    // Element access to a view of a resizable buffer is slow in both engines: copy by words.
    const all32 = this.#all32;
    const at = view.byteOffset;
    const words = length >>> 2;
    for (let i = 0, w = at >>> 2, f = from >>> 2; i < words; i++) all32[w + i] = src32[f + i]!;
    for (let i = words << 2; i < length; i++) this.#all8[at + i] = src[from + i]!;
    return view;
  }

  /**
   * Copies `view` (from `take`) to byte `to` of `dst` (whose Int32 view is `dst32`; `to` is a
   * multiple of 4).
   */
  copyTo(view: Uint8Array, dst: Uint8Array, dst32: Int32Array, to: number): void {
    const length = view.length;
    if (view !== this.#out || length > 256) return dst.set(view, to);
    const all32 = this.#all32;
    const at = view.byteOffset;
    const words = length >>> 2;
    for (let i = 0, w = at >>> 2, d = to >>> 2; i < words; i++) dst32[d + i] = all32[w + i]!;
    for (let i = words << 2; i < length; i++) dst[to + i] = this.#all8[at + i]!;
  }

  /** Kills a view `take` gave: it has length 0 from now on. */
  settle(view: Uint8Array): void {
    if (view !== this.#out) return detach(view);
    this.#out = null;
    const buffer = this.#buffer!;
    if (buffer.detached) return;
    try {
      buffer.resize(this.#top);
    } catch {
      // Resized meanwhile by code that got hold of a view: drop the buffer.
      this.#buffer = null;
      detach(view);
    }
  }
}

/** The loans and borrows a handle has not settled yet: closing the handle settles them. */
export class HeldList {
  /** The most recent one. */
  first: Held | null = null;

  /** Disposes of every one still held. */
  disposeAll(): void {
    for (let held = this.first; held !== null; held = this.first) held[Symbol.dispose]();
  }
}

/** A loan or borrow in a handle's `HeldList` until it is settled (a linked list: no allocation). */
export abstract class Held implements Disposable {
  #list: HeldList | null;
  #prev: Held | null = null;
  #next: Held | null = null;

  constructor(list: HeldList | null) {
    this.#list = list;
    if (list === null) return;
    const first = list.first;
    this.#next = first;
    if (first !== null) first.#prev = this;
    list.first = this;
  }

  /** Leaves the list (once settled); its `[Symbol.dispose]` must call this. */
  protected unlink(): void {
    const list = this.#list;
    if (list === null) return;
    this.#list = null;
    const prev = this.#prev;
    const next = this.#next;
    if (prev !== null) prev.#next = next;
    else list.first = next;
    if (next !== null) next.#prev = prev;
    this.#prev = this.#next = null;
  }

  abstract [Symbol.dispose](): void;
}

/**
 * Bytes lent for writing: `send()` publishes them, dispose without `send()` discards them; either
 * way `settle` runs once, with the view (which it must kill: see `PrivateViews`, `detach`).
 */
export class Loan extends Held {
  #bytes: Uint8Array;
  #settle: ((send: boolean, bytes: Uint8Array) => void) | null;

  constructor(
    bytes: Uint8Array,
    settle: (send: boolean, bytes: Uint8Array) => void,
    list: HeldList | null = null,
  ) {
    super(list);
    this.#bytes = bytes;
    this.#settle = settle;
  }

  /** The lent bytes; length 0 once sent or discarded. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** True once sent or discarded. */
  get settled(): boolean {
    return this.#settle === null;
  }

  /** Publishes the bytes. */
  send(): void {
    if (this.#settle === null) throw new TypeError("Cannot send the loan: it was already sent or discarded");
    this.#finish(true);
  }

  /** Discards the bytes unless they were sent. Safe to call twice. */
  [Symbol.dispose](): void {
    if (this.#settle !== null) this.#finish(false);
  }

  #finish(send: boolean): void {
    const settle = this.#settle!;
    const bytes = this.#bytes;
    this.#settle = null;
    this.#bytes = NO_BYTES;
    this.unlink();
    settle(send, bytes);
  }
}
