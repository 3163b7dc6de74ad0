/**
 * `SharedMap`: one key–value map in shared memory, read and written by every process that opens it
 * (Deno or Bun), with no server.
 *
 * ```ts
 * import { SharedMap } from "@x/shm/shared-map";
 *
 * using map = SharedMap.create({ capacity: 1000, maxKeyBytes: 64, maxValueBytes: 256 });
 * map.set("user:1", "alice");
 * console.log(map.getString("user:1"), map.increment("hits"), map.size); // alice 1 2
 * ```
 *
 * Layout, concurrency and crash recovery: `docs/shared-map.md`.
 *
 * @module
 */

import { SharedMemory } from "./shared_memory.ts";
import { Mutex } from "./mutex.ts";
import { ID_MASK, ownerStatus, selfId } from "./_sync/owner.ts";
import { checkAttached, checkOptions, describe, parseJSONText, toJSONText } from "./_validate.ts";
import { CorruptSegmentError } from "./errors.ts";
import type { Backend } from "./platform/_segment.ts";
import { runtime } from "./ffi/runtime.ts";

// ---- Layout (little-endian; byte offsets) ------------------------------------------------------------
// Header, 512 bytes: 0 magic "SMAP", 4 version, 8 capacity, 12 maxKeyBytes, 16 maxValueBytes,
//   20 log2(stripes), 24 log2(buckets per stripe array), 28 slot size, 32 slot count, 36 flags
//   (bit 0: evict "lru"), 40 "a TTL was ever set", 64 the LRU clock (its own cache line), 256 one
//   Int32 generation per stripe (the active bucket array is generation & 1), in lines of their own:
//   every get reads its stripe's, and only an index rebuild writes it.
// Stripes, 64 bytes each: 0 Mutex (8 bytes), 8 live entries, 12 tombstones (written by every set).
// Buckets: per stripe two arrays of 2^log2 Int32: 0 empty, -1 tombstone, n > 0 slot n - 1.
// Slots, `slot size` bytes each (a multiple of 8): 0 version (odd while being written), 4 state (0
//   free, s + 1 claimed by stripe s), 8 hash, 12 key length, 16 value length, 20 LRU stamp,
//   24 expiry (Float64, ms since the epoch, 0 = never), 32 key bytes, then value bytes.
const MAGIC = 0x50414d53; // "SMAP"
const VERSION = 2;
const HEADER = 512;
const STRIPE_BYTES = 64;
const SLOT_HEAD = 32;
const H_CAPACITY = 2;
const H_MAX_KEY = 3;
const H_MAX_VALUE = 4;
const H_LOG2_STRIPES = 5;
const H_LOG2_BUCKETS = 6;
const H_SLOT_SIZE = 7;
const H_SLOTS = 8;
const H_FLAGS = 9;
const H_TTL_USED = 10;
const H_CLOCK = 16;
/** Int32 index of stripe 0's generation. */
const H_GENS = 64;
const FLAG_LRU = 1;
// Int32 indexes inside a stripe and a slot.
const S_COUNT = 2;
const S_TOMBS = 3;
const E_VERSION = 0;
const E_STATE = 1;
const E_HASH = 2;
const E_KEY_LEN = 3;
const E_VALUE_LEN = 4;
const E_STAMP = 5;
const TOMB = -1;
/** Largest capacity: slot numbers (plus the spares) must stay far inside an Int32. */
const MAX_CAPACITY = 1 << 26;
const MAX_KEY_BYTES = 1 << 16;
/** How many entries the LRU eviction compares (all of them in a smaller map). */
const LRU_SAMPLE = 32;
/** Lock-free read attempts before a reader falls back to reading under the stripe's lock. */
const READ_ATTEMPTS = 100_000;
/** How long `open` waits for a creator that is still writing the header. */
const INIT_WAIT_MS = 1_000;
const RETRY = Symbol("retry");
const EMPTY = new Uint8Array(0);
/** Keys and values up to this many bytes are copied byte by byte (a view to copy from costs more). */
const SHORT = 64;

/** What a write stores, from `#write`'s `decide`: bytes[0..length), and how the expiry goes. */
interface Next {
  bytes: Uint8Array;
  length: number;
  ttl: number;
  keepExpiry?: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Options of {@linkcode SharedMap.create}. */
export interface SharedMapOptions {
  /** How many entries the map holds at most (1 to 2^26); fixed at create. */
  capacity: number;
  /** The longest key, in UTF-8 bytes (1 to 65,536). Default 128. */
  maxKeyBytes?: number;
  /** The longest value, in bytes (0 to 2^30). Default 1024. */
  maxValueBytes?: number;
  /**
   * `"lru"` makes the map a cache: inserting into a full map drops the least recently used entry
   * (exactly when the map holds at most 32 entries; otherwise the least recently used of 32 sampled,
   * as Redis' `allkeys-lru` samples). Without it, inserting into a full map is a `RangeError`.
   */
  evict?: "lru";
  /** The segment's name (default backend); without one, a fresh `psm_…` name is generated. */
  name?: string;
  /** `"posix"` (default on Linux and macOS), `"windows"`, `"sysv"` or `"file"` (persistent). */
  backend?: Backend;
  /** File backend: the file to create. */
  path?: string;
  /** System V backend: the IPC key (from `ftok`); without one the segment is `IPC_PRIVATE`. */
  key?: number;
  /** Permission bits of the new segment or file. Default `0o600`. */
  mode?: number;
  /** Whether `[Symbol.dispose]` also removes the segment this call created (see `SharedMemory`). */
  unlinkOnDispose?: boolean;
}

/** Where an existing map lives, for {@linkcode SharedMap.open} with a backend other than the default. */
export interface SharedMapOpenOptions {
  /** `"sysv"` or `"file"` (or the default backend's name with `name`). */
  backend: Backend;
  /** File backend: the file. */
  path?: string;
  /** System V backend: the key. */
  key?: number;
  /** System V backend: the shmid. */
  id?: number;
  /** Default backends: the name. */
  name?: string;
}

/** Options of {@linkcode SharedMap.set} and the other writes. */
export interface SetOptions {
  /** Milliseconds the entry lives: after that it is invisible, and its space is reclaimed. */
  ttl?: number;
}

/** A value: bytes, or a string stored as UTF-8. */
export type MapValue = Uint8Array | string;

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85eb_ca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2_ae35);
  return (h ^ (h >>> 16)) | 0;
}

/** FNV-1a over `bytes[0..length)`, then mixed. */
function hashBytes(bytes: Uint8Array, length: number): number {
  let h = 0x811c_9dc5 | 0;
  for (let i = 0; i < length; i++) h = Math.imul(h ^ bytes[i]!, 0x0100_0193);
  return fmix(h);
}

function log2Ceil(n: number): number {
  let k = 0;
  while (2 ** k < n) k++;
  return k;
}

function positiveInteger(value: unknown, name: string, min: number, max: number, action: string): number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${action}: ${name} must be a number, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Cannot ${action}: ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

interface Geometry {
  capacity: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  log2Stripes: number;
  log2Buckets: number;
  slotSize: number;
  slots: number;
  lru: boolean;
}

function geometry(capacity: number, maxKeyBytes: number, maxValueBytes: number, lru: boolean): Geometry {
  // Enough stripes that writers of different keys rarely meet; each stripe's bucket arrays hold 4×
  // its average share, so a stripe fills up only when hashing is very uneven.
  const log2Stripes = Math.min(6, Math.max(0, log2Ceil(capacity) - 4));
  const perStripe = Math.ceil(capacity / 2 ** log2Stripes);
  const log2Buckets = Math.max(3, log2Ceil(perStripe * 4));
  const slotSize = Math.ceil((SLOT_HEAD + maxKeyBytes + maxValueBytes) / 8) * 8;
  // One spare slot per stripe: an update writes its new copy before it frees the old one.
  const slots = capacity + 2 ** log2Stripes;
  return { capacity, maxKeyBytes, maxValueBytes, log2Stripes, log2Buckets, slotSize, slots, lru };
}

function bucketsOffset(g: Geometry): number {
  return HEADER + STRIPE_BYTES * 2 ** g.log2Stripes;
}

function slotsOffset(g: Geometry): number {
  return bucketsOffset(g) + 2 ** g.log2Stripes * 2 * 2 ** g.log2Buckets * 4;
}

function totalBytes(g: Geometry): number {
  return slotsOffset(g) + g.slots * g.slotSize;
}

/**
 * A key–value map in shared memory: every process that opens it (Deno or Bun) reads and writes the
 * same entries, at memory speed, with no server.
 *
 * - Reads take no lock: a reader never waits for a writer and never sees a half-written value
 *   (every write goes to a fresh slot that is published with one atomic store).
 * - Writers lock one of up to 64 stripes (chosen by the key's hash), so writers of different keys
 *   rarely meet. A writer killed at any point is taken over by the next writer of its stripe
 *   within about half a second, who repairs the stripe: no entry is corrupted, no space is lost.
 * - Capacity, the longest key and the longest value are fixed at create: see
 *   {@linkcode SharedMap.byteLength} for the memory it takes.
 *
 * @example Two handles on one map (usually in two processes)
 * ```ts
 * import { SharedMap } from "@x/shm";
 *
 * using map = SharedMap.create({ capacity: 100, maxKeyBytes: 32, maxValueBytes: 64 });
 * using other = SharedMap.open(map.name);
 * map.set("greeting", "hello");
 * map.setJSON("config", { debug: true });
 * console.log(other.getString("greeting"), other.getJSON("config")); // hello { debug: true }
 * console.log(other.increment("hits", 2), other.compareAndSet("owner", undefined, "me")); // 2 true
 * ```
 */
export class SharedMap implements Disposable, Iterable<[string, Uint8Array]> {
  readonly #shm: SharedMemory;
  readonly #g: Geometry;
  readonly #i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #f64: Float64Array;
  readonly #mutexes: Mutex[];
  readonly #stripeMask: number;
  readonly #log2Stripes: number;
  readonly #maxKeyBytes: number;
  readonly #maxValueBytes: number;
  readonly #slotSize: number;
  readonly #lru: boolean;
  readonly #slots: number;
  readonly #bucketMask: number;
  readonly #bucketsAt: number; // Int32 index
  readonly #slotsAt: number; // byte offset
  /** The key of the call in progress, encoded. */
  readonly #key: Uint8Array;
  /** A string value of the call in progress, encoded. */
  readonly #value: Uint8Array;
  /** The hash of the key `#encodeKey` encoded last. */
  #hash = 0;
  /** The length of the value `#encodeValue` encoded last. */
  #valueLength = 0;
  /** What `#locate` found: the active bucket array's start, the key's bucket, a reusable bucket. */
  #locBase = 0;
  #locFound = -1;
  #locFree = -1;
  #cursor: number;
  #closed = false;
  /** LRU: the clock as this handle last saw it, reads since, and how stale a stamp may get. */
  #clock = 0;
  #touches = 0;
  readonly #touchGap: number;

  private constructor(shm: SharedMemory, g: Geometry) {
    this.#shm = shm;
    this.#g = g;
    const buffer = shm.buf.buffer;
    this.#i32 = new Int32Array(buffer, 0, shm.size >>> 2);
    this.#u8 = new Uint8Array(buffer, 0, shm.size);
    this.#f64 = new Float64Array(buffer, 0, shm.size >>> 3);
    this.#mutexes = [];
    for (let s = 0; s < 2 ** g.log2Stripes; s++) {
      this.#mutexes.push(new Mutex(shm, HEADER + s * STRIPE_BYTES));
    }
    this.#stripeMask = 2 ** g.log2Stripes - 1;
    this.#log2Stripes = g.log2Stripes;
    this.#maxKeyBytes = g.maxKeyBytes;
    this.#maxValueBytes = g.maxValueBytes;
    this.#slotSize = g.slotSize;
    this.#lru = g.lru;
    this.#slots = g.slots;
    this.#bucketMask = 2 ** g.log2Buckets - 1;
    this.#bucketsAt = bucketsOffset(g) >>> 2;
    this.#slotsAt = slotsOffset(g);
    this.#key = new Uint8Array(g.maxKeyBytes + 4);
    this.#value = new Uint8Array(g.maxValueBytes + 4);
    this.#cursor = Math.floor(Math.random() * g.slots);
    // Exact in a map the eviction compares whole; else 1/16 of the map's worth of writes (2 a write).
    this.#touchGap = g.slots <= LRU_SAMPLE ? 0 : Math.min(2 * (g.slots >>> 4), 1 << 24);
  }

  /**
   * The bytes a map of these dimensions takes: about `capacity × (32 + maxKeyBytes + maxValueBytes)`
   * for the entries (each rounded up to 8), plus 16 to 64 bytes of index per entry and 64 per stripe.
   *
   * @example
   * ```ts
   * import { SharedMap } from "@x/shm";
   *
   * console.log(SharedMap.byteLength({ capacity: 100_000, maxKeyBytes: 32, maxValueBytes: 64 })); // 17007104
   * ```
   */
  static byteLength(options: SharedMapOptions): number {
    const g = checkCreate(options, "compute the size of a shared map");
    return totalBytes(g);
  }

  /**
   * Creates a map in a new segment (any backend; `"file"` makes it persistent).
   *
   * @throws {TypeError | RangeError} for bad options, before anything is created
   * @throws {AlreadyExistsError} when the name, key or path is taken
   *
   * @example
   * ```ts
   * import { SharedMap } from "@x/shm";
   *
   * using sessions = SharedMap.create({ name: "sessions-example", capacity: 1000, maxValueBytes: 4096 });
   * console.log(sessions.name, sessions.capacity); // sessions-example 1000
   * ```
   */
  static create(options: SharedMapOptions): SharedMap {
    const action = "create shared map";
    const g = checkCreate(options, action);
    const o = options as SharedMapOptions;
    const size = totalBytes(g);
    const shm = o.backend === "sysv"
      ? SharedMemory.create({
        backend: "sysv",
        key: o.key,
        size,
        mode: o.mode,
        unlinkOnDispose: o.unlinkOnDispose,
      })
      : o.backend === "file"
      ? SharedMemory.create({
        backend: "file",
        path: o.path!,
        size,
        mode: o.mode,
        unlinkOnDispose: o.unlinkOnDispose,
      })
      : SharedMemory.create({ name: o.name, size, mode: o.mode, unlinkOnDispose: o.unlinkOnDispose });
    try {
      writeHeader(shm, g);
      return new SharedMap(shm, g);
    } catch (error) {
      shm.close();
      shm.unlink();
      throw error;
    }
  }

  /**
   * Attaches to an existing map: by name (default backend), or `{ backend: "sysv", key | id }`,
   * `{ backend: "file", path }`.
   *
   * @throws {NotFoundError} when there is no such segment
   * @throws {TypeError} when the segment does not hold a map
   *
   * @example
   * ```ts
   * import { SharedMap } from "@x/shm";
   *
   * using map = SharedMap.create({ capacity: 10 });
   * using same = SharedMap.open(map.name);
   * console.log(same.capacity); // 10
   * ```
   */
  static open(name: string | SharedMapOpenOptions): SharedMap {
    const action = "open shared map";
    let shm: SharedMemory;
    if (typeof name === "string") shm = SharedMemory.open(name);
    else {
      const o = checkOptions<SharedMapOpenOptions>(name, action);
      if (typeof name !== "object") throw new TypeError(`Cannot ${action}: expected a name or options`);
      if (o.backend === "file") {
        if (typeof o.path !== "string") throw new TypeError(`Cannot ${action}: path must be a string`);
        shm = SharedMemory.open({ backend: "file", path: o.path });
      } else if (o.backend === "sysv") shm = SharedMemory.open({ backend: "sysv", key: o.key, id: o.id });
      else if (o.backend === "posix" || o.backend === "windows") {
        if (typeof o.name !== "string") throw new TypeError(`Cannot ${action}: name must be a string`);
        shm = SharedMemory.open(o.name);
      } else {
        throw new TypeError(
          `Cannot ${action}: backend must be "posix", "windows", "sysv" or "file", got ${
            describe(o.backend)
          }`,
        );
      }
    }
    try {
      return new SharedMap(shm, readHeader(shm, action));
    } catch (error) {
      shm.close();
      throw error;
    }
  }

  /**
   * Opens the map `name` (default backend), or creates it with `options` when there is none; safe
   * when several processes race. An existing map keeps its own dimensions.
   *
   * @example
   * ```ts
   * import { SharedMap } from "@x/shm";
   *
   * using map = SharedMap.openOrCreate("flags-example", { capacity: 64 });
   * map.set("dark-mode", "on");
   * if (map.created) map.unlink();
   * ```
   */
  static openOrCreate(
    name: string,
    options: Omit<SharedMapOptions, "name" | "backend" | "path" | "key">,
  ): SharedMap {
    const action = "open or create shared map";
    if (typeof name !== "string") throw new TypeError(`Cannot ${action}: the name must be a string`);
    const g = checkCreate(options, action);
    const o = options as SharedMapOptions;
    if (o.backend !== undefined || o.path !== undefined || o.key !== undefined) {
      throw new TypeError(`Cannot ${action}: only the default backend can open or create by name`);
    }
    const shm = SharedMemory.openOrCreate(name, {
      size: totalBytes(g),
      mode: o.mode,
      unlinkOnDispose: o.unlinkOnDispose,
    });
    try {
      if (shm.created) {
        writeHeader(shm, g);
        return new SharedMap(shm, g);
      }
      return new SharedMap(shm, readHeader(shm, action));
    } catch (error) {
      shm.close();
      if (shm.created) shm.unlink();
      throw error;
    }
  }

  /** The segment's name (for a file, its path). */
  get name(): string {
    return this.#shm.name;
  }

  /** The segment the map lives in. */
  get shm(): SharedMemory {
    return this.#shm;
  }

  /** True when this handle created the map. */
  get created(): boolean {
    return this.#shm.created;
  }

  /** The most entries the map holds. */
  get capacity(): number {
    return this.#g.capacity;
  }

  /** The longest key, in UTF-8 bytes. */
  get maxKeyBytes(): number {
    return this.#maxKeyBytes;
  }

  /** The longest value, in bytes. */
  get maxValueBytes(): number {
    return this.#maxValueBytes;
  }

  /** `"lru"` for a cache, undefined for a map that refuses inserts when full. */
  get evict(): "lru" | undefined {
    return this.#lru ? "lru" : undefined;
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** How many entries the map holds now (expired ones excluded). */
  get size(): number {
    this.#check("read the size of");
    // A writer killed inside a stripe may have linked an entry without counting it (or the reverse):
    // the stripe's count is right again once the stripe is taken over and repaired, so do that first.
    this.#repairDead(-1);
    const i32 = this.#i32;
    let n = 0;
    for (let s = 0; s <= this.#stripeMask; s++) n += Atomics.load(i32, this.#stripe(s) + S_COUNT);
    if (Atomics.load(i32, H_TTL_USED) !== 0) {
      const now = Date.now();
      for (let i = 0; i < this.#g.slots; i++) {
        const at = this.#slot(i);
        if (Atomics.load(i32, (at >>> 2) + E_STATE) !== 0) {
          const exp = this.#f64[(at + 24) >>> 3]!;
          if (exp !== 0 && exp <= now) n--;
        }
      }
    }
    return Math.max(0, n);
  }

  // ---- Reads ---------------------------------------------------------------------------------------

  /**
   * The value of `key` (a copy), or undefined when it is absent or expired. Takes no lock. Under
   * Deno a value of up to 1 KiB is a view of a pooled buffer, as Node's `Buffer` makes them (its
   * `.buffer` holds other values too): `slice()` it for a buffer of its own.
   *
   * @example
   * ```ts
   * import { SharedMap } from "@x/shm";
   *
   * using map = SharedMap.create({ capacity: 10 });
   * map.set("k", new Uint8Array([1, 2]));
   * console.log(map.get("k"), map.get("nope")); // Uint8Array(2) [ 1, 2 ] undefined
   * ```
   */
  get(key: string): Uint8Array | undefined {
    const klen = this.#encodeKey(key, "get a value from");
    const r = this.#read(this.#hash, klen, true);
    return r === false ? undefined : r as Uint8Array;
  }

  /** The value of `key` decoded as UTF-8, or undefined. */
  getString(key: string): string | undefined {
    const v = this.get(key);
    return v === undefined ? undefined : decoder.decode(v);
  }

  /**
   * The value of `key` parsed as JSON, or undefined when absent.
   *
   * @throws {SyntaxError} when the value is not JSON
   */
  getJSON<T = unknown>(key: string): T | undefined {
    const s = this.getString(key);
    return s === undefined ? undefined : parseJSONText<T>(s, `read JSON from shared map "${this.name}"`);
  }

  /** Whether `key` is present (and not expired). Takes no lock. */
  has(key: string): boolean {
    const klen = this.#encodeKey(key, "look up a key in");
    return this.#read(this.#hash, klen, false) !== false;
  }

  /**
   * Every entry as `[key, value]` (copies). Weakly consistent: each entry is read whole, and
   * entries written or deleted during the iteration may or may not be seen; writers never make it
   * throw.
   */
  *entries(): IterableIterator<[string, Uint8Array]> {
    this.#check("iterate over");
    const i32 = this.#i32;
    const B = this.#bucketMask + 1;
    for (let s = 0; s <= this.#stripeMask; s++) {
      const gen = Atomics.load(i32, H_GENS + s);
      const base = this.#bucketsAt + (s * 2 + (gen & 1)) * B;
      for (let b = 0; b < B; b++) {
        if (this.#closed || this.#shm.closed) return;
        const p = Atomics.load(i32, base + b);
        if (p <= 0 || p > this.#slots) continue;
        const entry = this.#readSlot(p - 1, base + b, p);
        if (entry) yield entry;
      }
    }
  }

  /** Every key (weakly consistent, as {@linkcode SharedMap.entries}). */
  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  /** Same as {@linkcode SharedMap.entries}. */
  [Symbol.iterator](): IterableIterator<[string, Uint8Array]> {
    return this.entries();
  }

  // ---- Writes --------------------------------------------------------------------------------------

  /**
   * Sets `key` to `value` (bytes, or a string stored as UTF-8).
   *
   * @throws {RangeError} when the key or value is too long, or the map is full (without `evict`)
   *
   * @example
   * ```ts
   * import { SharedMap } from "@x/shm";
   *
   * using map = SharedMap.create({ capacity: 10 });
   * map.set("session:1", "alice", { ttl: 60_000 });
   * ```
   */
  set(key: string, value: MapValue, options?: SetOptions): this {
    const action = "set a value in";
    const klen = this.#encodeKey(key, action);
    const bytes = this.#encodeValue(value, action);
    const ttl = options === undefined ? 0 : checkTtl(options, action);
    this.#write(klen, action, null, bytes, this.#valueLength, ttl);
    return this;
  }

  /** Sets `key` to `JSON.stringify(value)`. */
  setJSON(key: string, value: unknown, options?: SetOptions): this {
    const text = toJSONText(value, `set a JSON value in shared map "${this.name}"`);
    if (text === undefined) {
      throw new TypeError(
        `Cannot set a JSON value in shared map "${this.name}": ${describe(value)} has no JSON form`,
      );
    }
    return this.set(key, text, options);
  }

  /**
   * Removes `key`.
   *
   * @returns whether it was present
   */
  delete(key: string): boolean {
    const action = "delete a key from";
    const klen = this.#encodeKey(key, action);
    let found = false;
    this.#write(
      klen,
      action,
      (old) => {
        found = old !== null;
        return null;
      },
      EMPTY,
      0,
      0,
    );
    return found;
  }

  /**
   * Adds `delta` to the integer stored at `key` (a missing key counts as 0) and returns the new
   * value, atomically across processes. The value is stored as decimal text, as Redis stores it:
   * `getString` reads `"42"`, `getJSON` reads `42`. A `number` delta works in safe integers and
   * returns a `number`; a `bigint` delta works in signed 64-bit integers and returns a `bigint`.
   *
   * @throws {TypeError} when the stored value is not a decimal integer
   * @throws {RangeError} when the result leaves the range of its type
   *
   * @example
   * ```ts
   * import { SharedMap } from "@x/shm";
   *
   * using map = SharedMap.create({ capacity: 10 });
   * map.increment("hits");
   * console.log(map.increment("hits", 5), map.increment("big", 1n << 62n)); // 6 4611686018427387904n
   * ```
   */
  increment(key: string, delta: number): number;
  /** Adds a `bigint` `delta` in signed 64-bit integers and returns the new value as a `bigint`. */
  increment(key: string, delta: bigint): bigint;
  /** Adds 1 and returns the new value. */
  increment(key: string): number;
  increment(key: string, delta: number | bigint = 1): number | bigint {
    const action = "increment a value in";
    const big = typeof delta === "bigint";
    if (!big && typeof delta !== "number") {
      throw new TypeError(
        `Cannot ${action} shared map: delta must be a number or a bigint, got ${describe(delta)}`,
      );
    }
    if (!big && !Number.isSafeInteger(delta)) {
      throw new RangeError(`Cannot ${action} shared map: delta must be a safe integer, got ${delta}`);
    }
    const klen = this.#encodeKey(key, action);
    let result: number | bigint = 0;
    this.#write(
      klen,
      action,
      (old) => {
        let current: bigint = 0n;
        if (old !== null) {
          const text = decoder.decode(old);
          if (!/^-?\d{1,20}$/.test(text)) {
            throw new TypeError(
              `Cannot ${action} shared map "${this.name}": the value is not a decimal integer`,
            );
          }
          current = BigInt(text);
        }
        const next = current + BigInt(delta);
        if (
          big
            ? next !== BigInt.asIntN(64, next)
            : next > BigInt(Number.MAX_SAFE_INTEGER) || next < -BigInt(Number.MAX_SAFE_INTEGER)
        ) {
          throw new RangeError(
            `Cannot ${action} shared map "${this.name}": ${next} is out of range for a ${
              big ? "64-bit bigint" : "safe integer"
            }`,
          );
        }
        result = big ? next : Number(next);
        const text = String(next);
        const bytes = encoder.encode(text);
        if (bytes.length > this.#maxValueBytes) {
          throw new RangeError(
            `Cannot ${action} shared map "${this.name}": ${text} is longer than maxValueBytes`,
          );
        }
        return { bytes, length: bytes.length, ttl: 0, keepExpiry: true };
      },
      EMPTY,
      0,
      0,
    );
    return result;
  }

  /**
   * Sets `key` to `value` only if its current value equals `expected` (byte for byte); with
   * `expected` undefined, only if the key is absent (Redis' `SET NX`).
   *
   * @returns whether it was set
   *
   * @example A lock that frees itself after 10 s
   * ```ts
   * import { SharedMap } from "@x/shm";
   *
   * using map = SharedMap.create({ capacity: 10 });
   * console.log(map.compareAndSet("lock:x", undefined, "me", { ttl: 10_000 })); // true
   * console.log(map.compareAndSet("lock:x", undefined, "you")); // false
   * console.log(map.compareAndSet("lock:x", "me", "you")); // true
   * ```
   */
  compareAndSet(key: string, expected: MapValue | undefined, value: MapValue, options?: SetOptions): boolean {
    const action = "compare and set a value in";
    let exp: Uint8Array | undefined;
    if (expected !== undefined) {
      if (typeof expected === "string") exp = encoder.encode(expected);
      else if (expected instanceof Uint8Array) {
        if (expected.length === 0) checkAttached(expected, `${action} shared map "${this.name}"`, "expected");
        exp = expected;
      } else {
        throw new TypeError(
          `Cannot ${action} shared map: expected must be a Uint8Array, a string or undefined, got ${
            describe(expected)
          }`,
        );
      }
    }
    const klen = this.#encodeKey(key, action);
    const bytes = this.#encodeValue(value, action);
    const vlen = this.#valueLength;
    const ttl = checkTtl(options, action);
    let done = false;
    this.#write(
      klen,
      action,
      (old) => {
        if (exp === undefined ? old !== null : old === null || !equalBytes(old, exp)) return undefined;
        done = true;
        return { bytes, length: vlen, ttl };
      },
      EMPTY,
      0,
      0,
    );
    return done;
  }

  /** Removes every entry, one stripe at a time (not atomic as a whole). */
  clear(): void {
    this.#check("clear");
    const i32 = this.#i32;
    const B = this.#bucketMask + 1;
    for (let s = 0; s <= this.#stripeMask; s++) {
      const guard = this.#lock(s);
      try {
        const st = this.#stripe(s);
        const base = this.#bucketsAt + (s * 2 + (Atomics.load(i32, H_GENS + s) & 1)) * B;
        for (let b = 0; b < B; b++) {
          const p = i32[base + b]!;
          if (p === 0) continue;
          Atomics.store(i32, base + b, 0);
          if (p > 0 && p <= this.#slots) this.#free(p - 1);
        }
        Atomics.store(i32, st + S_COUNT, 0);
        Atomics.store(i32, st + S_TOMBS, 0);
      } finally {
        guard.unlock();
      }
    }
  }

  /** Detaches this handle (the map stays for the others). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#shm.close();
  }

  /** Removes the segment's name (or file); handles that have it open keep working. */
  unlink(): void {
    this.#shm.unlink();
  }

  /** Closes, and unlinks when this handle created the map (as `SharedMemory` does). */
  [Symbol.dispose](): void {
    this.#closed = true;
    this.#shm[Symbol.dispose]();
  }

  // ---- Internals -----------------------------------------------------------------------------------

  #check(action: string): void {
    if (this.#closed || this.#shm.closed) {
      throw new TypeError(`Cannot ${action} shared map "${this.#shm.name}": it is closed`);
    }
  }

  /** Int32 index of stripe `s`'s words. */
  #stripe(s: number): number {
    return (HEADER + s * STRIPE_BYTES) >>> 2;
  }

  /** Byte offset of slot `i`. */
  #slot(i: number): number {
    return this.#slotsAt + i * this.#slotSize;
  }

  /** Encodes `key` into `#key` and its hash into `#hash`; returns its length in bytes. */
  #encodeKey(key: unknown, action: string): number {
    this.#check(action);
    if (typeof key !== "string") {
      throw new TypeError(
        `Cannot ${action} shared map "${this.name}": the key must be a string, got ${describe(key)}`,
      );
    }
    // ASCII, the common case, byte by byte: TextEncoder's call costs more than the loop.
    const out = this.#key;
    const n = key.length;
    if (n <= this.#maxKeyBytes) {
      let h = 0x811c_9dc5 | 0;
      let i = 0;
      for (; i < n; i++) {
        const c = key.charCodeAt(i);
        if (c >= 0x80) break;
        out[i] = c;
        h = Math.imul(h ^ c, 0x0100_0193);
      }
      if (i === n) {
        this.#hash = fmix(h);
        return n;
      }
    }
    const { read, written } = encoder.encodeInto(key, out);
    if (read < key.length || written > this.#maxKeyBytes) {
      throw new RangeError(
        `Cannot ${action} shared map "${this.name}": the key is longer than ${this.#maxKeyBytes} UTF-8 bytes`,
      );
    }
    if (!key.isWellFormed()) {
      throw new TypeError(
        `Cannot ${action} shared map "${this.name}": the key contains a lone UTF-16 surrogate (no UTF-8 form)`,
      );
    }
    this.#hash = hashBytes(out, written);
    return written;
  }

  /** The value's bytes (a string encoded into `#value`); their length goes to `#valueLength`. */
  #encodeValue(value: unknown, action: string): Uint8Array {
    if (typeof value === "string") {
      const { read, written } = encoder.encodeInto(value, this.#value);
      if (read < value.length || written > this.#maxValueBytes) {
        throw new RangeError(
          `Cannot ${action} shared map "${this.name}": the value is longer than ${this.#maxValueBytes} bytes`,
        );
      }
      this.#valueLength = written;
      return this.#value;
    }
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot ${action} shared map "${this.name}": the value must be a Uint8Array or a string, got ${
          describe(value)
        }`,
      );
    }
    if (value.length > this.#maxValueBytes) {
      throw new RangeError(
        `Cannot ${action} shared map "${this.name}": the value is ${value.length} bytes, more than ${this.#maxValueBytes}`,
      );
    }
    if (value.length === 0) checkAttached(value, `${action} shared map "${this.name}"`, "the value");
    this.#valueLength = value.length;
    return value;
  }

  /**
   * Lock-free lookup of the encoded key: the value (a copy) when `copy`, true when found without
   * copy, false when absent.
   */
  #read(hash: number, klen: number, copy: boolean): Uint8Array | boolean {
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      const r = this.#tryRead(hash, klen, copy);
      if (r !== RETRY) return r;
    }
    // Only a corrupted map keeps a reader retrying: read once under the stripe's lock.
    const guard = this.#lock(hash & this.#stripeMask);
    try {
      const r = this.#tryRead(hash, klen, copy);
      if (r === RETRY) {
        throw new CorruptSegmentError(
          `Cannot read shared map "${this.name}": an entry is corrupted`,
          this.name,
        );
      }
      return r;
    } finally {
      guard.unlock();
    }
  }

  /**
   * One lock-free lookup. Only the slot's version is read with `Atomics` (before and after the
   * slot's key and value): each `Atomics` call costs 10 to 20 ns where a plain load costs 1, and
   * the other loads need no more. The bucket and the slot are read through the address the
   * generation and the bucket gave (a dependency no CPU or JIT reorders), x86-64 keeps loads in
   * program order, and the JITs move no load across an `Atomics` call; the re-checks after the
   * second version load are plain for that reason. A miss that touched no slot re-checks the
   * generation with `Atomics`, so that it is not folded into the first load.
   */
  #tryRead(hash: number, klen: number, copy: boolean): Uint8Array | boolean | typeof RETRY {
    const i32 = this.#i32;
    const u8 = this.#u8;
    const key = this.#key;
    const mask = this.#bucketMask;
    const s = hash & this.#stripeMask;
    const genAt = H_GENS + s;
    const gen = i32[genAt]!;
    const base = this.#bucketsAt + (s * 2 + (gen & 1)) * (mask + 1);
    let b = (hash >>> this.#log2Stripes) & mask;
    for (let n = 0; n <= mask; n++, b = (b + 1) & mask) {
      const p = i32[base + b]!;
      if (p === 0) break;
      if (p === TOMB) continue;
      if (p < 0 || p > this.#slots) return RETRY; // only a corrupted word: read under the lock
      const at = this.#slotsAt + (p - 1) * this.#slotSize;
      const w = at >>> 2;
      const v1 = Atomics.load(i32, w + E_VERSION);
      // A published slot is never being written: odd means it was freed and reused under us.
      if ((v1 & 1) !== 0) return RETRY;
      let match = i32[w + E_HASH] === hash && i32[w + E_KEY_LEN] === klen;
      if (match) {
        const k = at + SLOT_HEAD;
        for (let j = 0; j < klen; j++) {
          if (u8[k + j] !== key[j]) {
            match = false;
            break;
          }
        }
      }
      if (!match) {
        // A mismatch read from a slot being reused proves nothing: look again.
        if (Atomics.load(i32, w + E_VERSION) !== v1 || i32[base + b] !== p) return RETRY;
        continue;
      }
      const exp = this.#f64[(at + 24) >>> 3]!;
      const vlen = i32[w + E_VALUE_LEN]!;
      let value: Uint8Array | undefined;
      if (copy) {
        if (vlen < 0 || vlen > this.#maxValueBytes) return RETRY;
        value = copyOut(u8, i32, at + SLOT_HEAD + this.#maxKeyBytes, vlen);
      }
      if (Atomics.load(i32, w + E_VERSION) !== v1 || i32[base + b] !== p || i32[genAt] !== gen) {
        return RETRY;
      }
      if (exp !== 0 && exp <= Date.now()) return false; // expired: absent
      if (this.#lru) this.#touch(w);
      return value ?? true;
    }
    return Atomics.load(i32, genAt) !== gen ? RETRY : false;
  }

  /**
   * Marks the slot at Int32 index `w` as just used (LRU). Writes stamp even clock values; a read
   * stamps the one after the last write's. In a map larger than the eviction sample, a read rewrites
   * the stamp only once it is `#touchGap` behind, and reads the shared clock every 32nd time (a
   * handle's own writes also tell it): a store into the entry's line on every read, or a load of the
   * clock's line that every write changes, would cost the other cores a cache miss per get, for a
   * recency finer than 32 samples can tell apart.
   */
  #touch(w: number): void {
    const i32 = this.#i32;
    if (this.#touchGap === 0 || (++this.#touches & 31) === 0) this.#clock = i32[H_CLOCK]!;
    const clock = this.#clock + 1;
    const age = (clock - i32[w + E_STAMP]!) | 0;
    if (age > 0 && age >= this.#touchGap) Atomics.store(i32, w + E_STAMP, clock);
  }

  /** One entry read whole for the iterator, or null when it changed under us or expired. */
  #readSlot(i: number, bucket: number, p: number): [string, Uint8Array] | null {
    const i32 = this.#i32;
    const at = this.#slot(i);
    const w = at >>> 2;
    for (let attempt = 0; attempt < 8; attempt++) {
      const v1 = Atomics.load(i32, w + E_VERSION);
      if ((v1 & 1) !== 0) return null;
      const klen = i32[w + E_KEY_LEN]!;
      const vlen = i32[w + E_VALUE_LEN]!;
      if (klen < 0 || klen > this.#maxKeyBytes || vlen < 0 || vlen > this.#maxValueBytes) return null;
      const exp = this.#f64[(at + 24) >>> 3]!;
      const key = this.#u8.slice(at + SLOT_HEAD, at + SLOT_HEAD + klen);
      const from = at + SLOT_HEAD + this.#maxKeyBytes;
      const value = this.#u8.slice(from, from + vlen);
      if (Atomics.load(i32, w + E_VERSION) !== v1) continue;
      if (Atomics.load(i32, bucket) !== p) return null;
      if (exp !== 0 && exp <= Date.now()) return null;
      return [decoder.decode(key), value];
    }
    return null;
  }

  /** Locks stripe `s`; a lock taken over from a dead writer repairs the stripe first. */
  #lock(s: number): { unlock(): void } {
    const guard = this.#mutexes[s]!.lockSync();
    if (guard.ownerDied) this.#repair(s);
    return guard;
  }

  /**
   * The write path of set, delete, increment and compareAndSet, under the key's stripe lock.
   * `decide` gets the current value (null when absent or expired) and returns the new value, null
   * to delete, or undefined to leave it; without `decide` (set) the new value is `bytes[0..length)`
   * with `ttl`.
   */
  #write(
    klen: number,
    action: string,
    decide: ((old: Uint8Array | null) => Next | null | undefined) | null,
    bytes: Uint8Array,
    length: number,
    ttl: number,
  ): void {
    const i32 = this.#i32;
    const u8 = this.#u8;
    const hash = this.#hash;
    const s = hash & this.#stripeMask;
    const st = this.#stripe(s);
    const guard = this.#lock(s);
    try {
      let found = this.#locate(s, hash, klen);
      let base = this.#locBase;
      const oldSlot = found >= 0 ? i32[base + found]! - 1 : -1;
      let old: Uint8Array | null = null;
      let oldExp = 0;
      let keepExpiry = false;
      if (decide !== null) {
        if (oldSlot >= 0) {
          const at = this.#slot(oldSlot);
          oldExp = this.#f64[(at + 24) >>> 3]!;
          if (oldExp === 0 || oldExp > Date.now()) {
            const from = at + SLOT_HEAD + this.#maxKeyBytes;
            old = u8.subarray(from, from + i32[(at >>> 2) + E_VALUE_LEN]!);
          }
        }
        const next = decide(old);
        if (next === undefined) {
          if (old === null && oldSlot >= 0) this.#remove(s, base, found); // reclaim an expired entry
          return;
        }
        if (next === null) {
          if (oldSlot >= 0) this.#remove(s, base, found);
          return;
        }
        bytes = next.bytes;
        length = next.length;
        ttl = next.ttl;
        keepExpiry = next.keepExpiry === true && old !== null;
      }
      let free = this.#locFree;
      if (oldSlot < 0) {
        this.#reserve(s, action);
        // Reclaiming or evicting may have changed this stripe's index: find the bucket again.
        found = this.#locate(s, hash, klen);
        base = this.#locBase;
        free = this.#locFree;
        if (free < 0) {
          Atomics.sub(i32, st + S_COUNT, 1);
          throw new RangeError(
            `Cannot ${action} shared map "${this.name}": the keys of this stripe fill its index (very uneven hashing)`,
          );
        }
      }
      const slot = this.#claim(s);
      const at = this.#slot(slot);
      const w = at >>> 2;
      // Odd while being written. The stores between the two Atomics calls stay between them: x86-64
      // keeps stores in order, and the JITs move no memory access across an Atomics call.
      Atomics.add(i32, w + E_VERSION, 1);
      i32[w + E_HASH] = hash;
      i32[w + E_KEY_LEN] = klen;
      i32[w + E_VALUE_LEN] = length;
      i32[w + E_STAMP] = this.#lru ? (this.#clock = Atomics.add(i32, H_CLOCK, 2) + 2) : 0;
      let exp = 0;
      if (ttl > 0) {
        exp = Date.now() + ttl;
        if (Atomics.load(i32, H_TTL_USED) === 0) Atomics.store(i32, H_TTL_USED, 1);
      } else if (keepExpiry) exp = oldExp;
      this.#f64[(at + 24) >>> 3] = exp;
      const key = this.#key;
      const k = at + SLOT_HEAD;
      if (klen <= SHORT) { for (let j = 0; j < klen; j++) u8[k + j] = key[j]!; }
      else u8.set(key.subarray(0, klen), k);
      const v = k + this.#maxKeyBytes;
      if (length === bytes.length) u8.set(bytes, v);
      else if (length <= SHORT) { for (let j = 0; j < length; j++) u8[v + j] = bytes[j]!; }
      else u8.set(bytes.subarray(0, length), v);
      Atomics.add(i32, w + E_VERSION, 1); // even: complete
      if (oldSlot >= 0) {
        Atomics.store(i32, base + found, slot + 1); // publish in place of the old copy
        this.#free(oldSlot);
      } else {
        if (i32[base + free] === TOMB) Atomics.sub(i32, st + S_TOMBS, 1);
        Atomics.store(i32, base + free, slot + 1); // publish
      }
    } finally {
      guard.unlock();
    }
  }

  /**
   * In stripe `s` (its lock held): the bucket holding the key, or -1 when absent. Leaves the active
   * bucket array's start in `#locBase` and the first reusable bucket on the key's chain in
   * `#locFree` (-1 when the index is full).
   */
  #locate(s: number, hash: number, klen: number): number {
    const i32 = this.#i32;
    const mask = this.#bucketMask;
    const base = this.#bucketsAt + (s * 2 + (i32[H_GENS + s]! & 1)) * (mask + 1); // only we change it
    this.#locBase = base;
    let free = -1;
    let b = (hash >>> this.#log2Stripes) & mask;
    for (let n = 0; n <= mask; n++, b = (b + 1) & mask) {
      const p = i32[base + b]!;
      if (p === 0) {
        this.#locFree = free < 0 ? b : free;
        return -1;
      }
      if (p === TOMB) {
        if (free < 0) free = b;
      } else if (p < 0 || p > this.#slots) {
        throw new CorruptSegmentError(
          `Cannot use shared map "${this.name}": its index is corrupted (bucket ${b} holds ${p})`,
          this.name,
        );
      } else if (this.#keyIs(p - 1, hash, klen)) {
        this.#locFree = free;
        return b;
      }
    }
    this.#locFree = free;
    return -1;
  }

  #keyIs(slot: number, hash: number, klen: number): boolean {
    const at = this.#slot(slot);
    const w = at >>> 2;
    if (this.#i32[w + E_HASH] !== hash || this.#i32[w + E_KEY_LEN] !== klen) return false;
    const u8 = this.#u8;
    const key = this.#key;
    for (let j = 0; j < klen; j++) if (u8[at + SLOT_HEAD + j] !== key[j]) return false;
    return true;
  }

  /** Unpublishes bucket `b` of stripe `s` (its lock held) and frees its slot. */
  #remove(s: number, base: number, b: number): void {
    const i32 = this.#i32;
    const st = this.#stripe(s);
    const p = i32[base + b]!;
    const nextEmpty = i32[base + ((b + 1) & this.#bucketMask)] === 0;
    Atomics.store(i32, base + b, nextEmpty ? 0 : TOMB);
    Atomics.sub(i32, st + S_COUNT, 1);
    if (!nextEmpty) Atomics.add(i32, st + S_TOMBS, 1);
    this.#free(p - 1);
    if (nextEmpty) {
      // Tombstones that now end a chain are not needed: make them empty.
      let c = (b - 1) & this.#bucketMask;
      while (i32[base + c] === TOMB) {
        Atomics.store(i32, base + c, 0);
        Atomics.sub(i32, st + S_TOMBS, 1);
        c = (c - 1) & this.#bucketMask;
      }
    }
    if (Atomics.load(i32, st + S_TOMBS) > (this.#bucketMask + 1) >>> 2) this.#rebuild(s);
  }

  /**
   * Counts a new entry into stripe `s` (its lock held); when that makes more than `capacity`,
   * reclaims expired entries, evicts (LRU) or undoes it and throws.
   */
  #reserve(s: number, action: string): void {
    const i32 = this.#i32;
    const st = this.#stripe(s);
    Atomics.add(i32, st + S_COUNT, 1);
    for (let round = 0;; round++) {
      let total = 0;
      // Plain loads: the Atomics.add above (or the sweep's or eviction's) orders them after our count.
      for (let t = 0; t <= this.#stripeMask; t++) total += i32[this.#stripe(t) + S_COUNT]!;
      if (total <= this.#g.capacity) return;
      if (round === 0 && Atomics.load(i32, H_TTL_USED) !== 0 && this.#sweepExpired(s) > 0) continue;
      if (this.#lru && round < 1000 && this.#evictOne(s)) continue;
      if (this.#lru && round < 1000) continue;
      Atomics.sub(i32, st + S_COUNT, 1);
      throw new RangeError(
        `Cannot ${action} shared map "${this.name}": it is full (capacity ${this.#g.capacity}; create it with evict: "lru" for a cache)`,
      );
    }
  }

  /** Removes every expired entry it can lock; how many. `own` is the stripe already held. */
  #sweepExpired(own: number): number {
    const i32 = this.#i32;
    const now = Date.now();
    let removed = 0;
    for (let i = 0; i < this.#g.slots; i++) {
      const at = this.#slot(i);
      const state = Atomics.load(i32, (at >>> 2) + E_STATE);
      if (state === 0) continue;
      const exp = this.#f64[(at + 24) >>> 3]!;
      if (exp !== 0 && exp <= now && this.#removeSlot(i, state - 1, own)) removed++;
    }
    return removed;
  }

  /** Evicts the least recently used of a sample of entries; false when none could be locked. */
  #evictOne(own: number): boolean {
    const i32 = this.#i32;
    const n = this.#g.slots;
    const sample = Math.min(n, LRU_SAMPLE);
    const start = n <= LRU_SAMPLE ? 0 : Math.floor(Math.random() * n);
    const step = n <= LRU_SAMPLE ? 1 : 7919 % n || 1;
    let best = -1;
    let bestStamp = 0;
    for (let k = 0, i = start; k < sample; k++, i = (i + step) % n) {
      const w = this.#slot(i) >>> 2;
      if (Atomics.load(i32, w + E_STATE) === 0) continue;
      const stamp = i32[w + E_STAMP]!;
      if (best < 0 || ((stamp - bestStamp) | 0) < 0) {
        best = i;
        bestStamp = stamp;
      }
    }
    if (best < 0) return false;
    const state = Atomics.load(i32, (this.#slot(best) >>> 2) + E_STATE);
    return state !== 0 && this.#removeSlot(best, state - 1, own);
  }

  /** Removes the entry in slot `i` of stripe `t` if it is published there; never waits for a lock. */
  #removeSlot(i: number, t: number, own: number): boolean {
    if (t < 0 || t > this.#stripeMask) return false;
    let guard: { unlock(): void } | null = null;
    if (t !== own) {
      const taken = this.#mutexes[t]!.tryLock();
      if (taken === null) return false;
      // tryLock takes over from a dead writer: repair the stripe first, as #lock does.
      if (taken.ownerDied) this.#repair(t);
      guard = taken;
    }
    try {
      const i32 = this.#i32;
      if (Atomics.load(i32, (this.#slot(i) >>> 2) + E_STATE) !== t + 1) return false;
      const B = this.#bucketMask + 1;
      const base = this.#bucketsAt + (t * 2 + (Atomics.load(i32, H_GENS + t) & 1)) * B;
      let b = (i32[(this.#slot(i) >>> 2) + E_HASH]! >>> this.#log2Stripes) & this.#bucketMask;
      for (let n = 0; n < B; n++, b = (b + 1) & this.#bucketMask) {
        const p = i32[base + b]!;
        if (p === 0) return false;
        if (p === i + 1) {
          this.#remove(t, base, b);
          return true;
        }
      }
      return false;
    } finally {
      guard?.unlock();
    }
  }

  /** A free slot, claimed for stripe `s` (its lock held). */
  #claim(s: number): number {
    const i32 = this.#i32;
    const n = this.#g.slots;
    for (let pass = 0; pass < 3; pass++) {
      let i = this.#cursor;
      for (let k = 0; k < n; k++) {
        const w = (this.#slotsAt + i * this.#slotSize) >>> 2;
        if (
          i32[w + E_STATE] === 0 && Atomics.compareExchange(i32, w + E_STATE, 0, s + 1) === 0
        ) {
          this.#cursor = i + 1 === n ? 0 : i + 1;
          return i;
        }
        i = i + 1 === n ? 0 : i + 1;
      }
      // Every slot is taken: only writers killed while holding a stripe keep spares. Repair theirs.
      this.#repairDead(s);
    }
    throw new CorruptSegmentError(
      `Cannot write to shared map "${this.name}": no free slot (the map is corrupted)`,
      this.name,
    );
  }

  /** Frees slot `i` (its stripe's lock held, no bucket pointing at it). */
  #free(i: number): void {
    const w = this.#slot(i) >>> 2;
    Atomics.add(this.#i32, w + E_VERSION, 2); // readers holding a stale pointer see the change
    Atomics.store(this.#i32, w + E_STATE, 0);
    // The next claim of this handle looks here first: in a full map free slots are few, and a scan
    // for one would cost far more than the write.
    this.#cursor = i;
  }

  /** Rebuilds stripe `s`'s index without tombstones in its other array, then switches to it. */
  #rebuild(s: number): void {
    const i32 = this.#i32;
    const st = this.#stripe(s);
    const B = this.#bucketMask + 1;
    const gen = Atomics.load(i32, H_GENS + s);
    const from = this.#bucketsAt + (s * 2 + (gen & 1)) * B;
    const to = this.#bucketsAt + (s * 2 + ((gen + 1) & 1)) * B;
    i32.fill(0, to, to + B);
    for (let b = 0; b < B; b++) {
      const p = i32[from + b]!;
      if (p <= 0 || p > this.#slots) continue;
      let c = (i32[(this.#slot(p - 1) >>> 2) + E_HASH]! >>> this.#log2Stripes) & this.#bucketMask;
      while (i32[to + c] !== 0) c = (c + 1) & this.#bucketMask;
      i32[to + c] = p;
    }
    Atomics.add(i32, H_GENS + s, 1); // readers on the old array retry
    Atomics.store(i32, st + S_TOMBS, 0);
  }

  /**
   * After taking stripe `s` over from a dead writer: recount its entries and tombstones from its
   * index, and free every slot claimed for it that the index does not point at.
   */
  #repair(s: number): void {
    const i32 = this.#i32;
    const st = this.#stripe(s);
    const B = this.#bucketMask + 1;
    const base = this.#bucketsAt + (s * 2 + (Atomics.load(i32, H_GENS + s) & 1)) * B;
    const linked = new Set<number>();
    let tombs = 0;
    for (let b = 0; b < B; b++) {
      const p = i32[base + b]!;
      if (p > 0 && p <= this.#slots) linked.add(p - 1);
      else if (p === TOMB) tombs++;
    }
    for (let i = 0; i < this.#g.slots; i++) {
      const w = this.#slot(i) >>> 2;
      if (Atomics.load(i32, w + E_STATE) !== s + 1 || linked.has(i)) continue;
      if ((i32[w + E_VERSION]! & 1) !== 0) Atomics.add(i32, w + E_VERSION, 1); // a write cut short
      this.#free(i);
    }
    Atomics.store(i32, st + S_COUNT, linked.size);
    Atomics.store(i32, st + S_TOMBS, tombs);
  }

  /** Takes over and repairs every other stripe whose lock a dead thread holds (stripe `own` is held; -1: none). */
  #repairDead(own: number): void {
    const i32 = this.#i32;
    for (let t = 0; t <= this.#stripeMask; t++) {
      if (t === own) continue;
      const at = this.#stripe(t);
      const word = Atomics.load(i32, at);
      if (word === 0 || (word & ID_MASK) === selfId()) continue;
      if (ownerStatus(word & ID_MASK, i32[at + 1]!) === "alive") continue;
      try {
        const guard = this.#mutexes[t]!.lockSync({ timeout: 1_000 });
        if (guard.ownerDied) this.#repair(t);
        guard.unlock();
      } catch {
        // Taken by a live thread meanwhile: it repairs it.
      }
    }
  }
}

/**
 * Under Deno, values of up to 1 KiB are copied into views of a shared 16 KiB pool, as Node's `Buffer`
 * does: allocating an ArrayBuffer per value (500 ns) costs more than the rest of a `get` there. Such a
 * value's `.buffer` holds other values too: transferring it detaches them as well (copy a value with
 * `slice()` before transferring its buffer). Bun allocates one in 75 ns: each value gets its own.
 */
const POOL = runtime === "deno";
const POOL_BYTES = 16 * 1024;
const POOLED = 1024;
let pool = new ArrayBuffer(POOL_BYTES);
let pool32 = new Int32Array(pool);
let pool8 = new Uint8Array(pool);
let poolUsed = 0;

function copyOut(from: Uint8Array, words: Int32Array, at: number, length: number): Uint8Array {
  if (length > POOLED || !POOL) return from.slice(at, at + length);
  // A caller may transfer a value's buffer (to a worker): the pool is then detached, and replaced.
  if (poolUsed + length > POOL_BYTES || pool8.length === 0) {
    pool = new ArrayBuffer(POOL_BYTES);
    pool32 = new Int32Array(pool);
    pool8 = new Uint8Array(pool);
    poolUsed = 0;
  }
  const start = poolUsed;
  const out = new Uint8Array(pool, start, length);
  poolUsed = (start + length + 7) & ~7;
  // Word by word when the source is 4-byte aligned (it is when maxKeyBytes is a multiple of 4).
  let i = 0;
  if ((at & 3) === 0) {
    const p32 = pool32;
    const src = at >>> 2;
    const dst = start >>> 2;
    const n = length >>> 2;
    for (; i < n; i++) p32[dst + i] = words[src + i]!;
    i <<= 2;
  }
  const p8 = pool8;
  for (; i < length; i++) p8[start + i] = from[at + i]!;
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkTtl(options: unknown, action: string): number {
  const o = checkOptions<SetOptions>(options, action + " shared map");
  if (o.ttl === undefined) return 0;
  if (typeof o.ttl !== "number") {
    throw new TypeError(
      `Cannot ${action} shared map: ttl must be a number of milliseconds, got ${describe(o.ttl)}`,
    );
  }
  if (!(o.ttl > 0) || !Number.isFinite(o.ttl)) {
    throw new RangeError(
      `Cannot ${action} shared map: ttl must be a positive finite number of milliseconds, got ${o.ttl}`,
    );
  }
  return o.ttl;
}

function checkCreate(options: unknown, action: string): Geometry {
  if (options === undefined) throw new TypeError(`Cannot ${action}: options with a capacity are required`);
  const o = checkOptions<SharedMapOptions>(options, action);
  const capacity = positiveInteger(o.capacity, "capacity", 1, MAX_CAPACITY, action);
  const maxKeyBytes = o.maxKeyBytes === undefined
    ? 128
    : positiveInteger(o.maxKeyBytes, "maxKeyBytes", 1, MAX_KEY_BYTES, action);
  const maxValueBytes = o.maxValueBytes === undefined
    ? 1024
    : positiveInteger(o.maxValueBytes, "maxValueBytes", 0, 1 << 30, action);
  if (o.evict !== undefined && o.evict !== "lru") {
    throw new TypeError(`Cannot ${action}: evict must be "lru" or left out, got ${describe(o.evict)}`);
  }
  if (o.backend !== undefined && !["posix", "windows", "sysv", "file"].includes(o.backend as string)) {
    throw new TypeError(
      `Cannot ${action}: backend must be "posix", "windows", "sysv", "file" or left out, got ${
        describe(o.backend)
      }`,
    );
  }
  if (o.backend === "file" && typeof o.path !== "string") {
    throw new TypeError(`Cannot ${action}: the file backend needs a path, got ${describe(o.path)}`);
  }
  if (o.backend !== "file" && o.path !== undefined) {
    throw new TypeError(`Cannot ${action}: path belongs to the file backend (backend: "file")`);
  }
  if (o.backend !== "sysv" && o.key !== undefined) {
    throw new TypeError(`Cannot ${action}: key belongs to the System V backend (backend: "sysv")`);
  }
  if ((o.backend === "file" || o.backend === "sysv") && o.name !== undefined) {
    throw new TypeError(
      `Cannot ${action}: name belongs to the default backend (a ${o.backend} map has a ${
        o.backend === "file" ? "path" : "key"
      })`,
    );
  }
  const g = geometry(capacity, maxKeyBytes, maxValueBytes, o.evict === "lru");
  if (totalBytes(g) >= 2 ** 32) {
    throw new RangeError(
      `Cannot ${action}: it would take ${
        totalBytes(g)
      } bytes; a shared map is at most 4 GiB (lower capacity, maxKeyBytes or maxValueBytes)`,
    );
  }
  return g;
}

function writeHeader(shm: SharedMemory, g: Geometry): void {
  const i32 = shm.view(Int32Array, 0, HEADER >>> 2);
  i32[1] = VERSION;
  i32[H_CAPACITY] = g.capacity;
  i32[H_MAX_KEY] = g.maxKeyBytes;
  i32[H_MAX_VALUE] = g.maxValueBytes;
  i32[H_LOG2_STRIPES] = g.log2Stripes;
  i32[H_LOG2_BUCKETS] = g.log2Buckets;
  i32[H_SLOT_SIZE] = g.slotSize;
  i32[H_SLOTS] = g.slots;
  i32[H_FLAGS] = g.lru ? FLAG_LRU : 0;
  Atomics.store(i32, 0, MAGIC); // last: the map is ready
}

function readHeader(shm: SharedMemory, action: string): Geometry {
  const bad = (why: string) =>
    new TypeError(`Cannot ${action} "${shm.name}": the segment is not a shared map (${why})`);
  if (shm.size < HEADER) throw bad(`it is ${shm.size} bytes long`);
  const i32 = shm.view(Int32Array, 0, HEADER >>> 2);
  const deadline = performance.now() + INIT_WAIT_MS;
  while (Atomics.load(i32, 0) !== MAGIC) {
    // A creator may still be writing the header (openOrCreate races): wait a little for it.
    if (Atomics.load(i32, 0) !== 0 || performance.now() > deadline) throw bad("no map header");
  }
  if (i32[1] !== VERSION) throw bad(`layout version ${i32[1]}, expected ${VERSION}`);
  const capacity = i32[H_CAPACITY]!;
  const maxKeyBytes = i32[H_MAX_KEY]!;
  const maxValueBytes = i32[H_MAX_VALUE]!;
  if (
    !(capacity >= 1 && capacity <= MAX_CAPACITY) || !(maxKeyBytes >= 1 && maxKeyBytes <= MAX_KEY_BYTES) ||
    !(maxValueBytes >= 0 && maxValueBytes <= 1 << 30)
  ) throw bad("its dimensions are invalid");
  const g = geometry(capacity, maxKeyBytes, maxValueBytes, (i32[H_FLAGS]! & FLAG_LRU) !== 0);
  if (
    g.log2Stripes !== i32[H_LOG2_STRIPES] || g.log2Buckets !== i32[H_LOG2_BUCKETS] ||
    g.slotSize !== i32[H_SLOT_SIZE] ||
    g.slots !== i32[H_SLOTS]
  ) throw bad("its geometry is invalid");
  if (shm.size < totalBytes(g)) throw bad(`it is truncated to ${shm.size} bytes`);
  return g;
}
