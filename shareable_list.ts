/**
 * `ShareableList`: a fixed-length list in shared memory, byte-compatible with CPython's
 * `multiprocessing.shared_memory.ShareableList`.
 *
 * @module
 */

import { SharedMemory } from "./shared_memory.ts";
import { checkAttached, describe } from "./_validate.ts";

/**
 * A value a {@linkcode ShareableList} can hold: the JavaScript side of Python's `int`, `float`,
 * `bool`, `None`, `str` and `bytes`.
 */
export type ShareableValue = number | bigint | boolean | null | string | Uint8Array;

/** Options of {@linkcode ShareableList.create}. */
export interface ShareableListOptions {
  /** The segment's name; without one, a fresh Python-style name (`psm_…`) is generated. */
  name?: string;
}

// Python's struct formats for each kind of item, and its back-transform codes.
const FMT_INT = "q";
const FMT_FLOAT = "d";
const FMT_BOOL = "xxxxxxx?";
const FMT_NONE = "xxxxxx?x";
const CODE_AS_IS = 0;
const CODE_STR = 1;
const CODE_BYTES = 2;
const CODE_NONE = 3;
const ALIGN = 8;
/** The longest str/bytes slot whose format ("9999999s") still fits Python's 8-byte format field. */
const MAX_SLOT = 9_999_992;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** Only this module may construct a ShareableList (`new` from outside is refused with a clear error). */
const TOKEN = Symbol("ShareableList");

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

interface Encoded {
  format: string;
  code: number;
  /** The bytes of a str/bytes item, or the value of any other item. */
  bytes?: Uint8Array;
  value?: number | bigint | boolean | null;
  /** The slot size chosen for a str/bytes item at creation. */
  room?: number;
}

/** Where an item is and how it is stored, as checked by `#slot`. */
interface Slot {
  format: string;
  code: number;
  /** Byte offset of the item in the segment. */
  at: number;
  /** Bytes its format packs: 8, or N for "Ns". */
  width: number;
  /** Bytes between its offset and the next item's. */
  room: number;
}

/** How the value is stored, by the rules of Python's `ShareableList.__setitem__`. */
function encode(value: unknown, action: string): Encoded {
  if (value === null) return { format: FMT_NONE, code: CODE_NONE, value: null };
  switch (typeof value) {
    case "boolean":
      return { format: FMT_BOOL, code: CODE_AS_IS, value };
    case "number":
      return Number.isSafeInteger(value) && !Object.is(value, -0)
        ? { format: FMT_INT, code: CODE_AS_IS, value: BigInt(value) }
        : { format: FMT_FLOAT, code: CODE_AS_IS, value };
    case "bigint":
      if (value < INT64_MIN || value > INT64_MAX) {
        throw new RangeError(`Cannot ${action}: ${value}n does not fit in a signed 64-bit integer`);
      }
      return { format: FMT_INT, code: CODE_AS_IS, value };
    case "string":
      return { format: "s", code: CODE_STR, bytes: encoder.encode(value) };
  }
  if (value instanceof Uint8Array) {
    checkAttached(value, action, "the Uint8Array");
    return { format: "s", code: CODE_BYTES, bytes: value };
  }
  throw new TypeError(
    `Cannot ${action}: ${describe(value)} is not a number, bigint, boolean, null, string or Uint8Array`,
  );
}

/** The slot size Python gives a str/bytes item of `length` bytes: the next multiple of 8 above it. */
/** Python's len() of a str: its code points (a UTF-16 surrogate pair is one). */
function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

function slotSize(length: number): number {
  return ALIGN * (Math.floor(length / ALIGN) + 1);
}

function equal(a: ShareableValue, b: ShareableValue): boolean {
  if (a === b) return true;
  const ta = typeof a, tb = typeof b;
  if ((ta === "number" || ta === "bigint") && (tb === "number" || tb === "bigint")) {
    // 1 and 1n are equal, as Python's 1 == 1.0; compare exactly, without rounding a bigint.
    if (ta === "number" && !Number.isInteger(a)) return false;
    if (tb === "number" && !Number.isInteger(b)) return false;
    return BigInt(a as number | bigint) === BigInt(b as number | bigint);
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }
  return false;
}

/**
 * A fixed-length list in a shared memory segment that Python's
 * `multiprocessing.shared_memory.ShareableList` reads and writes too, byte for byte.
 *
 * Each item is an int64, a float64, a boolean, `null`, a UTF-8 string or bytes. The list's length
 * is fixed at creation; so is the room of each string or bytes item (its length in UTF-8 bytes
 * rounded up to the next multiple of 8, as Python does), while its type may change on assignment
 * exactly as Python's does.
 *
 * Numbers: a `number` that is a safe integer (and not `-0`) is stored as an int64 (Python `int`),
 * any other `number` (fractions, `NaN`, `±Infinity`, `-0`, integers beyond 2^53) as a float64
 * (Python `float`); a `bigint` is stored as an int64. Reading an int64 gives a `number` when it is
 * a safe integer and a `bigint` otherwise; reading a float64 always gives a `number`. To store a
 * whole number as a Python `float`, there is no way from JavaScript: `2.0` is `2`.
 *
 * Like Python's, this list has no lock: a reader and a writer of the same item at the same time
 * may see a mix of old and new. Python strips trailing NUL bytes from strings and bytes when it
 * reads them (gh-96779), and so does this class, so the two always agree.
 *
 * @example With Python on the other side
 * ```ts
 * import { ShareableList } from "@x/shm";
 *
 * const l = ShareableList.create([1, 2.5, true, null, "héllo", new Uint8Array([97, 98]), -7n]);
 * // python3 -c "from multiprocessing.shared_memory import ShareableList as S; print(list(S(name='…')))"
 * const m = ShareableList.open(l.name);
 * console.log(m.get(4), m.length);   // héllo 7
 * m.set(0, 42);
 * console.log([...l], l.indexOf(2.5), l.count(null)); // [42, 2.5, true, null, "héllo", Uint8Array(2), -7] 1 1
 * m.close();
 * l.close();
 * l.unlink();
 * ```
 */
export class ShareableList implements Disposable, Iterable<ShareableValue> {
  readonly #shm: SharedMemory;
  readonly #length: number;
  /** Offsets of each item from the start of the data area, and of the end (N+1 entries). */
  readonly #offsets: number[];
  readonly #dataStart: number;
  readonly #formatsStart: number;
  readonly #codesStart: number;
  readonly #dv: DataView;
  readonly #u8: Uint8Array;

  private constructor(token: symbol, shm: SharedMemory, length: number, offsets: number[]) {
    if (token !== TOKEN) {
      throw new TypeError(
        "Cannot construct a ShareableList with new: use ShareableList.create(values) or ShareableList.open(name)",
      );
    }
    this.#shm = shm;
    this.#length = length;
    this.#offsets = offsets;
    this.#dataStart = (length + 2) * 8;
    this.#formatsStart = this.#dataStart + offsets[length]!;
    this.#codesStart = this.#formatsStart + length * 8;
    this.#u8 = shm.buf;
    this.#dv = new DataView(this.#u8.buffer, this.#u8.byteOffset, this.#u8.byteLength);
  }

  /**
   * Creates a segment holding `values`, laid out as Python's `ShareableList(values)` would be.
   *
   * Strings get the slot Python gives them (sized by characters) whenever their UTF-8 bytes fit in
   * it, so the list is byte for byte what Python would make; where they do not (Python would cut
   * multi-byte text, gh-145261), the slot is sized by bytes instead, which Python reads correctly.
   *
   * @throws {TypeError} for a value of another type
   * @throws {RangeError} for a bigint outside int64, or a string or bytes over 9,999,991 bytes
   *
   * @example
   * ```ts
   * import { ShareableList } from "@x/shm";
   *
   * using l = ShareableList.create(["a", 1, 2.5], { name: "my_list" });
   * console.log(l.name, l.get(1)); // my_list 1
   * ```
   */
  static create(values: Iterable<ShareableValue> = [], options: ShareableListOptions = {}): ShareableList {
    const action = "create ShareableList";
    // Any iterable, as Python's ShareableList(sequence): a string gives its characters.
    if (
      values === null || values === undefined ||
      typeof (values as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== "function"
    ) {
      throw new TypeError(
        `Cannot ${action}: values must be iterable (an array, a string, a Set, another ShareableList…), ` +
          `got ${describe(values)}`,
      );
    }
    if (options === null || typeof options !== "object") {
      throw new TypeError(`Cannot ${action}: options must be an object, got ${describe(options)}`);
    }
    const items = [...values].map((v, i) => {
      const e = encode(v, `${action}: item ${i}`);
      if (e.bytes) {
        // Python's room for a str counts characters (code points); keep it whenever the UTF-8
        // bytes fit, so the layout is Python's own, and size by bytes only where Python would cut.
        const python = typeof v === "string" ? slotSize(codePoints(v)) : slotSize(e.bytes.length);
        const size = e.bytes.length <= python ? python : slotSize(e.bytes.length);
        if (size > MAX_SLOT) {
          throw new RangeError(
            `Cannot ${action}: item ${i} is ${e.bytes.length} bytes long; Python's format field ` +
              `allows at most ${MAX_SLOT - 1}`,
          );
        }
        e.format = `${size}s`;
        e.room = size;
      }
      return e;
    });
    const n = items.length;
    const offsets = [0];
    for (const e of items) offsets.push(offsets[offsets.length - 1]! + (e.room ?? 8));
    const size = 8 + 8 * (n + 1) + offsets[n]! + 8 * n + n;
    const shm = SharedMemory.create({ name: options.name, size });
    try {
      const dv = new DataView(shm.buf.buffer, shm.buf.byteOffset, size);
      dv.setBigInt64(0, BigInt(n), true);
      for (let i = 0; i <= n; i++) dv.setBigInt64(8 + 8 * i, BigInt(offsets[i]!), true);
      const list = new ShareableList(TOKEN, shm, n, offsets);
      items.forEach((e, i) => list.#write(i, e, e.format));
      return list;
    } catch (error) {
      // Made here and failed: remove it (dispose checks the name still refers to this segment).
      shm[Symbol.dispose]();
      throw error;
    }
  }

  /**
   * Attaches to an existing list by name (one made by Python, Deno or Bun).
   *
   * The header is checked first: a segment that is not a ShareableList (a count or offsets that do
   * not fit its size, an unknown format or back-transform code) is a `TypeError` naming the problem.
   *
   * @throws {NotFoundError} when there is no segment of that name
   * @throws {TypeError} when the segment does not hold a ShareableList
   *
   * @example
   * ```ts
   * import { ShareableList } from "@x/shm";
   *
   * using l = ShareableList.create([1, 2, 3]);
   * using m = ShareableList.open(l.name);
   * console.log(m.length); // 3
   * ```
   */
  static open(name: string): ShareableList {
    const shm = SharedMemory.open(name);
    try {
      const size = shm.size;
      const bad = (why: string) =>
        new TypeError(`Cannot open ShareableList "${shm.name}": the segment is not a ShareableList (${why})`);
      if (size < 16) throw bad(`it is ${size} bytes long, less than the 16 of an empty list`);
      const dv = new DataView(shm.buf.buffer, shm.buf.byteOffset, size);
      const count = dv.getBigInt64(0, true);
      if (count < 0n) throw bad(`its item count ${count} is negative`);
      if (count > BigInt(Math.floor(size / 8) - 2)) {
        throw bad(`its item count ${count} needs more than its ${size} bytes`);
      }
      const n = Number(count);
      const offsets: number[] = [];
      let previous = 0n;
      for (let i = 0; i <= n; i++) {
        const o = dv.getBigInt64(8 + 8 * i, true);
        if (i === 0 ? o !== 0n : o < previous + 8n) {
          throw bad(`offset ${i} is ${o}; offsets start at 0 and grow by at least 8`);
        }
        if (o > BigInt(size)) throw bad(`offset ${i} is ${o}, past its ${size} bytes`);
        offsets.push(Number(o));
        previous = o;
      }
      const need = (n + 2) * 8 + offsets[n]! + 9 * n;
      if (need > size) throw bad(`its ${n} items need ${need} bytes and it has ${size}`);
      const list = new ShareableList(TOKEN, shm, n, offsets);
      for (let i = 0; i < n; i++) list.#slot(i, "open");
      return list;
    } catch (error) {
      shm.close();
      throw error;
    }
  }

  /** The name of the segment (as Python's `ShareableList.shm.name`). */
  get name(): string {
    return this.#shm.name;
  }

  /** The segment the list lives in. */
  get shm(): SharedMemory {
    return this.#shm;
  }

  /** The number of items, fixed at creation. */
  get length(): number {
    return this.#length;
  }

  /**
   * Whether this handle created the list (`false` for one attached with `open`): a
   * `SharedMemoryScope` that adopts the list unlinks it only then.
   */
  get created(): boolean {
    return this.#shm.created;
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return this.#shm.closed;
  }

  /**
   * The struct formats of every item, joined, as Python's `ShareableList.format`
   * (`"q"`, `"d"`, `"xxxxxxx?"`, `"xxxxxx?x"` or `"Ns"` each).
   *
   * @throws {TypeError} once closed, or when an item's format in the segment is corrupt
   *
   * @example
   * ```ts
   * import { ShareableList } from "@x/shm";
   *
   * using l = ShareableList.create(["howdy", 42, null]);
   * console.log(l.format); // 8sqxxxxxx?x
   * ```
   */
  get format(): string {
    this.#live("read the format of ShareableList");
    let format = "";
    for (let i = 0; i < this.#length; i++) format += this.#slot(i, "read the format of").format;
    return format;
  }

  /**
   * The items and the segment's name, as Python's `repr()` of a ShareableList shows them.
   *
   * @example
   * ```ts
   * import { ShareableList } from "@x/shm";
   *
   * using l = ShareableList.create(["a", 1n, new Uint8Array([1])], { name: "shown" });
   * console.log(String(l)); // ShareableList(["a", 1, Uint8Array [1]], name="shown")
   * ```
   */
  toString(): string {
    if (this.closed) return `ShareableList(closed, name=${JSON.stringify(this.name)})`;
    const items = [...this].map((v) =>
      typeof v === "string"
        ? JSON.stringify(v)
        : typeof v === "bigint"
        ? `${v}n`
        : v instanceof Uint8Array
        ? `Uint8Array [${v.join(", ")}]`
        : String(v)
    );
    return `ShareableList([${items.join(", ")}], name=${JSON.stringify(this.name)})`;
  }

  /**
   * The item at `index`; a negative index counts from the end, as in Python.
   *
   * @throws {RangeError} when `index` is out of range
   * @throws {TypeError} when the item's format in the segment is not one a ShareableList writes
   *
   * @example
   * ```ts
   * import { ShareableList } from "@x/shm";
   *
   * using l = ShareableList.create(["x", 2n ** 60n, 5n]);
   * console.log(l.get(0), l.get(-1), l.get(1)); // x 5 1152921504606846976n
   * ```
   */
  get(index: number): ShareableValue {
    const action = "read ShareableList item";
    return this.#read(this.#index(index, action), "read");
  }

  /**
   * Stores `value` at `index` (negative counts from the end), changing the item's type if needed,
   * exactly as Python's `ShareableList.__setitem__` does: a string or bytes must fit the room the
   * item was created with.
   *
   * @throws {RangeError} when `index` is out of range, a string or bytes does not fit, or a bigint
   * does not fit in 64 bits
   * @throws {TypeError} for a value of another type
   *
   * @example
   * ```ts
   * import { ShareableList } from "@x/shm";
   *
   * using l = ShareableList.create(["abc", 0]);
   * l.set(0, "up to 7b");   // the slot of "abc" has 8 bytes
   * l.set(1, "s");          // an int slot takes a string of up to 8 bytes
   * ```
   */
  set(index: number, value: ShareableValue): void {
    const action = "write ShareableList item";
    const i = this.#index(index, action);
    const e = encode(value, `${action} ${i}`);
    // The slot is checked before anything is written: a corrupt one is refused, untouched.
    const slot = this.#slot(i, "write");
    let format = e.format;
    if (e.bytes) {
      if (e.bytes.length > slot.room) {
        throw new RangeError(
          `Cannot ${action} ${i}: the value is ${e.bytes.length} bytes long and the item has room for ${slot.room}`,
        );
      }
      format = slot.format.endsWith("s") ? slot.format : `${slot.room}s`;
    }
    this.#write(i, e, format);
  }

  /**
   * The first index whose item equals `value`, or -1. Numbers and bigints compare by value (`1`
   * equals `1n`), strings by content, bytes by content; `NaN` equals nothing; booleans equal only
   * booleans.
   *
   * @example
   * ```ts
   * import { ShareableList } from "@x/shm";
   *
   * using l = ShareableList.create([1, "a", new Uint8Array([1])]);
   * console.log(l.indexOf(1n), l.indexOf(new Uint8Array([1])), l.indexOf("b")); // 0 2 -1
   * ```
   */
  indexOf(value: ShareableValue): number {
    for (let i = 0; i < this.#length; i++) if (equal(value, this.get(i))) return i;
    return -1;
  }

  /**
   * How many items equal `value` (compared as in {@linkcode ShareableList.indexOf}).
   *
   * @example
   * ```ts
   * import { ShareableList } from "@x/shm";
   *
   * using l = ShareableList.create([null, 1, null]);
   * console.log(l.count(null)); // 2
   * ```
   */
  count(value: ShareableValue): number {
    let n = 0;
    for (let i = 0; i < this.#length; i++) if (equal(value, this.get(i))) n++;
    return n;
  }

  /**
   * The items in order, read as the iteration reaches them.
   *
   * @example
   * ```ts
   * import { ShareableList } from "@x/shm";
   *
   * using l = ShareableList.create([1, 2]);
   * console.log([...l]); // [1, 2]
   * ```
   */
  *[Symbol.iterator](): IterableIterator<ShareableValue> {
    for (let i = 0; i < this.#length; i++) yield this.get(i);
  }

  /**
   * Unmaps the list from this process (the segment stays; see `unlink()`). Safe to call twice.
   *
   * @example
   * ```ts
   * import { ShareableList } from "@x/shm";
   *
   * const l = ShareableList.create([1]);
   * l.close();
   * l.unlink();
   * ```
   */
  close(): void {
    this.#shm.close();
  }

  /**
   * Removes the segment's name (as Python's `sl.shm.unlink()`).
   *
   * @example
   * ```ts
   * import { ShareableList } from "@x/shm";
   *
   * const l = ShareableList.create(["temp"]);
   * l.unlink();
   * l.close();
   * ```
   */
  unlink(): void {
    this.#shm.unlink();
  }

  /** Closes the list and, if this handle created it, unlinks it too. */
  [Symbol.dispose](): void {
    this.#shm[Symbol.dispose]();
  }

  /** Refuses a closed list, or one whose buffer was transferred away. */
  #live(action: string): void {
    if (this.#shm.closed) throw new TypeError(`Cannot ${action}: the ShareableList "${this.name}" is closed`);
    if (this.#u8.byteLength === 0) {
      throw new TypeError(
        `Cannot ${action}: the buffer of ShareableList "${this.name}" was detached (transferred away)`,
      );
    }
  }

  #index(index: number, action: string): number {
    this.#live(action);
    if (typeof index !== "number" || !Number.isInteger(index)) {
      throw new TypeError(`Cannot ${action}: the index must be an integer, got ${describe(index)}`);
    }
    const i = index < 0 ? index + this.#length : index;
    if (i < 0 || i >= this.#length) {
      throw new RangeError(`Cannot ${action}: index ${index} is out of range for a list of ${this.#length}`);
    }
    return i;
  }

  /**
   * Where item `i` is and how it is stored, checked against everything it relies on: the count and
   * the item's offsets still as they were when the list was opened, a format a ShareableList
   * writes, a back-transform code that goes with it, and a width that is the item's room. A list
   * a peer corrupted is refused here, before anything is read or written.
   */
  #slot(i: number, action: "open" | "read" | "write" | "read the format of"): Slot {
    const fail = (why: string) =>
      new TypeError(
        action === "open"
          ? `Cannot open ShareableList "${this.name}": item ${i}: ${why}; the segment is not a valid ShareableList`
          : `Cannot ${action} item ${i} of ShareableList "${this.name}": ${why}; the segment is corrupt`,
      );
    const count = this.#dv.getBigInt64(0, true);
    if (count !== BigInt(this.#length)) {
      throw fail(`its item count is now ${count}, not the ${this.#length} it was opened with`);
    }
    const start = this.#offsets[i]!;
    const end = this.#offsets[i + 1]!;
    const startNow = this.#dv.getBigInt64(8 + 8 * i, true);
    const endNow = this.#dv.getBigInt64(16 + 8 * i, true);
    if (startNow !== BigInt(start) || endNow !== BigInt(end)) {
      throw fail(`its offsets are now ${startNow}..${endNow}, not the ${start}..${end} it was opened with`);
    }
    const room = end - start;
    const at = this.#formatsStart + i * 8;
    let stop = at + 8;
    while (stop > at && this.#u8[stop - 1] === 0) stop--;
    let format = "";
    for (let p = at; p < stop; p++) format += String.fromCharCode(this.#u8[p]!);
    const code = this.#dv.getInt8(this.#codesStart + i);
    const known = format === FMT_INT || format === FMT_FLOAT || format === FMT_BOOL || format === FMT_NONE ||
      /^[1-9][0-9]*s$/.test(format);
    if (!known) throw fail(`its format ${JSON.stringify(format)} is not one a ShareableList writes`);
    if (code < CODE_AS_IS || code > CODE_NONE) throw fail(`its back-transform code ${code} is unknown`);
    const text = format.endsWith("s");
    const width = text ? Number(format.slice(0, -1)) : 8;
    if (width !== (text ? room : Math.min(8, room))) {
      throw fail(`its format "${format}" needs ${width} bytes and its slot in the data area has ${room}`);
    }
    const fits = code === CODE_NONE
      ? format === FMT_NONE
      : code === CODE_AS_IS
      ? format === FMT_INT || format === FMT_FLOAT || format === FMT_BOOL
      : text;
    if (!fits) throw fail(`its format "${format}" does not go with back-transform code ${code}`);
    return { format, code, at: this.#dataStart + start, width, room };
  }

  #read(i: number, action: "read"): ShareableValue {
    const { format, code, at, width } = this.#slot(i, action);
    switch (format) {
      case FMT_INT: {
        const v = this.#dv.getBigInt64(at, true);
        return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
      }
      case FMT_FLOAT:
        return this.#dv.getFloat64(at, true);
      case FMT_BOOL:
        return this.#u8[at + 7] !== 0;
      case FMT_NONE:
        return null;
    }
    let end = at + width;
    while (end > at && this.#u8[end - 1] === 0) end--;
    const bytes = this.#u8.slice(at, end);
    if (code !== CODE_STR) return bytes;
    try {
      return strictDecoder.decode(bytes);
    } catch {
      throw new TypeError(
        `Cannot ${action} item ${i} of ShareableList "${this.name}": its text is not valid UTF-8; the segment is corrupt`,
      );
    }
  }

  #write(i: number, e: Encoded, format: string): void {
    const at = this.#dataStart + this.#offsets[i]!;
    // Format and code first, then the value, in Python's order.
    const f = this.#formatsStart + i * 8;
    this.#u8.fill(0, f, f + 8);
    for (let k = 0; k < format.length; k++) this.#u8[f + k] = format.charCodeAt(k);
    this.#dv.setInt8(this.#codesStart + i, e.code);
    switch (format) {
      case FMT_INT:
        this.#dv.setBigInt64(at, e.value as bigint, true);
        return;
      case FMT_FLOAT:
        this.#dv.setFloat64(at, e.value as number, true);
        return;
      case FMT_BOOL:
        this.#u8.fill(0, at, at + 7);
        this.#u8[at + 7] = e.value ? 1 : 0;
        return;
      case FMT_NONE:
        this.#u8.fill(0, at, at + 8);
        return;
    }
    // "%ds": the bytes, NUL-padded to exactly that width, as struct.pack does (they always fit:
    // set() checked them against the room, and create() sized the room for them).
    const width = Number(format.slice(0, -1));
    const bytes = e.bytes!;
    this.#u8.set(bytes, at);
    this.#u8.fill(0, at + bytes.length, at + width);
  }
}
