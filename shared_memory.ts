/**
 * `SharedMemory`: a live `Uint8Array` over memory that other processes see at once.
 *
 * @module
 */

import { foreignBuffer, pointerAt } from "./ffi/_ffi.ts";
import { maxBufferSize } from "./ffi/runtime.ts";
import { AlreadyExistsError, NotFoundError } from "./errors.ts";
import { adapter } from "./platform/adapter.ts";
import type { Backend, Segment } from "./platform/_segment.ts";
import { segmentOf } from "./_internal.ts";
import { checkBoolean, checkMode, checkName, checkOptions, checkSize, describe } from "./_validate.ts";

export type { Backend } from "./platform/_segment.ts";

/** Options of {@linkcode SharedMemory.create}. */
export interface CreateOptions {
  /**
   * The name, without the leading `/` (one leading `/` is accepted and dropped). Without one, a
   * fresh random name in Python's style is generated (`psm_` + 8 hex digits; `wnsm_…` on Windows).
   */
  name?: string;
  /** Size in bytes: a positive integer. */
  size: number;
  /** Permission bits, applied exactly (the umask does not reduce them). Default `0o600`. */
  mode?: number;
  /**
   * Whether `[Symbol.dispose]` (a `using` declaration) also unlinks the segment this handle
   * created. Default `true`. `close()` never unlinks.
   */
  unlinkOnDispose?: boolean;
}

/** Options of {@linkcode SharedMemory.open}. */
export interface OpenOptions {
  /**
   * Attach read-only: writes through `buf` never reach the segment and never crash the process
   * (see {@linkcode SharedMemory.readOnly}). Default `false`.
   */
  readOnly?: boolean;
}

/** Options of {@linkcode SharedMemory.openOrCreate}. */
export interface OpenOrCreateOptions {
  /** Size in bytes if the segment has to be created; an existing segment keeps its own size. */
  size: number;
  /** Permission bits if the segment has to be created. Default `0o600`. */
  mode?: number;
  /** As in {@linkcode CreateOptions.unlinkOnDispose}; applies only if this call created it. */
  unlinkOnDispose?: boolean;
}

/** Any typed array {@linkcode SharedMemory.view} can make. */
export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** A typed array constructor, such as `Float64Array`. */
export interface TypedArrayConstructor<T extends TypedArray> {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
}

const TYPED_ARRAYS: ReadonlySet<unknown> = new Set<unknown>([
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  (globalThis as { Float16Array?: unknown }).Float16Array,
].filter(Boolean));

const DEFAULT_MODE = 0o600;
const GENERATED_NAME_ATTEMPTS = 100;

/**
 * Releases the mapping of a handle that was garbage collected without `close()`. Keyed on the
 * handle's `ArrayBuffer`, so it runs only once no view of the memory is reachable. The pages are
 * replaced rather than unmapped, in case the buffer had been transferred elsewhere.
 */
const finalizer = new FinalizationRegistry<Segment>((segment) => {
  try {
    segment.release(true);
  } catch {
    // Nothing to report to: the handle is gone.
  }
});

/**
 * A shared memory segment mapped into this process.
 *
 * `buf` is a `Uint8Array` over the live mapping: what one process writes, every other process that
 * maps the segment sees at once, with no copy. Segments are identified by name, as in Python's
 * `multiprocessing.shared_memory` (the name is that of `/dev/shm/<name>` on Linux), so a segment made
 * here can be opened by Python, C or another Deno or Bun process, and the reverse.
 *
 * `close()` unmaps the segment from this process and detaches `buf` and every view made from it, so
 * a stale view reads `undefined` and cannot touch unmapped memory. `unlink()` removes the name; the
 * memory lives until the last process closes it. A `using` declaration closes the handle and, if
 * this handle created the segment, also unlinks it (opt out with `unlinkOnDispose: false`).
 *
 * @example Create, write, read from another handle, clean up
 * ```ts
 * import { SharedMemory } from "@x/shm";
 *
 * const a = SharedMemory.create({ size: 4096 });
 * a.buf[0] = 42;
 * const b = SharedMemory.open(a.name);   // in another process, typically
 * console.log(b.buf[0]);                 // 42
 * b.close();
 * a.close();
 * a.unlink();
 * ```
 *
 * @example Scoped
 * ```ts
 * import { SharedMemory } from "@x/shm";
 *
 * {
 *   using shm = SharedMemory.create({ size: 64 });
 *   shm.view(Int32Array)[0] = 7;
 * } // closed and unlinked here
 * ```
 */
export class SharedMemory implements Disposable {
  readonly #segment: Segment;
  readonly #buffer: ArrayBuffer;
  readonly #buf: Uint8Array<ArrayBuffer>;
  readonly #unlinkOnDispose: boolean;
  #closed = false;
  #unlinked = false;

  private constructor(segment: Segment, unlinkOnDispose: boolean) {
    this.#segment = segment;
    this.#unlinkOnDispose = unlinkOnDispose;
    try {
      this.#buffer = foreignBuffer(pointerAt(segment.address), segment.size);
    } catch (error) {
      segment.release(false);
      if (segment.created) segment.unlink();
      throw error;
    }
    this.#buf = new Uint8Array(this.#buffer);
    finalizer.register(this.#buffer, segment, this);
    segmentOf.set(this, segment);
  }

  /**
   * Creates a new segment of `size` zeroed bytes.
   *
   * Memory is reserved up front (`posix_fallocate` on Linux), so a full `/dev/shm` is an error
   * here, never a crash on a later write.
   *
   * @throws {AlreadyExistsError} when `name` is taken
   * @throws {PermissionDeniedError} when the OS refuses
   * @throws {ShmError} for any other refusal, such as `ENOSPC` when memory is short
   * @throws {TypeError | RangeError} for a bad name, size or mode, before any system call
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@x/shm";
   *
   * const shm = SharedMemory.create({ name: "demo", size: 1 << 20, mode: 0o600 });
   * console.log(shm.name, shm.size); // demo 1048576
   * shm.close();
   * shm.unlink();
   * ```
   */
  static create(options: CreateOptions): SharedMemory {
    const action = "create shared memory segment";
    const o = checkOptions<CreateOptions>(options, action);
    if (options === undefined) throw new TypeError(`Cannot ${action}: options with a size are required`);
    const size = checkSize(o.size, action);
    const mode = o.mode === undefined ? DEFAULT_MODE : checkMode(o.mode, action);
    const unlinkOnDispose = o.unlinkOnDispose === undefined
      ? true
      : checkBoolean(o.unlinkOnDispose, "unlinkOnDispose", action);
    if (o.name !== undefined) {
      const name = checkName(o.name, action, adapter.nameMax);
      return new SharedMemory(adapter.create(name, size, mode), unlinkOnDispose);
    }
    for (let attempt = 1;; attempt++) {
      try {
        return new SharedMemory(adapter.create(adapter.generateName(), size, mode), unlinkOnDispose);
      } catch (error) {
        if (!(error instanceof AlreadyExistsError) || attempt >= GENERATED_NAME_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * Attaches to an existing segment by name, at its current size.
   *
   * @throws {NotFoundError} when there is no segment of that name
   * @throws {PermissionDeniedError} when its mode does not let this user open it this way
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@x/shm";
   *
   * const owner = SharedMemory.create({ size: 16 });
   * const reader = SharedMemory.open(owner.name, { readOnly: true });
   * console.log(reader.readOnly, reader.size); // true 16
   * reader.close();
   * owner.close();
   * owner.unlink();
   * ```
   */
  static open(name: string, options?: OpenOptions): SharedMemory {
    const action = "open shared memory segment";
    const o = checkOptions<OpenOptions>(options, action);
    const bare = checkName(name, action, adapter.nameMax);
    const readOnly = checkBoolean(o.readOnly, "readOnly", action);
    return new SharedMemory(adapter.open(bare, readOnly), false);
  }

  /**
   * Attaches to the segment `name` if it exists, or creates it with `size` bytes if it does not;
   * safe when several processes race to do the same. `created` tells which happened.
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@x/shm";
   *
   * const shm = SharedMemory.openOrCreate("counters", { size: 4096 });
   * console.log(shm.created ? "first" : "joined");
   * shm.close();
   * if (shm.created) shm.unlink();
   * ```
   */
  static openOrCreate(name: string, options: OpenOrCreateOptions): SharedMemory {
    const action = "open or create shared memory segment";
    const o = checkOptions<OpenOrCreateOptions>(options, action);
    if (options === undefined) throw new TypeError(`Cannot ${action}: options with a size are required`);
    const bare = checkName(name, action, adapter.nameMax);
    const size = checkSize(o.size, action);
    const mode = o.mode === undefined ? DEFAULT_MODE : checkMode(o.mode, action);
    const unlinkOnDispose = o.unlinkOnDispose === undefined
      ? true
      : checkBoolean(o.unlinkOnDispose, "unlinkOnDispose", action);
    for (let attempt = 1;; attempt++) {
      try {
        return new SharedMemory(adapter.create(bare, size, mode), unlinkOnDispose);
      } catch (error) {
        if (!(error instanceof AlreadyExistsError)) throw error;
      }
      try {
        return new SharedMemory(adapter.open(bare, false), false);
      } catch (error) {
        // Unlinked between our two calls: try again.
        if (!(error instanceof NotFoundError) || attempt >= GENERATED_NAME_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * Removes the segment `name` without attaching to it.
   *
   * @throws {NotFoundError} when there is no segment of that name
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@x/shm";
   *
   * SharedMemory.create({ name: "scratch", size: 8 }).close();
   * SharedMemory.unlink("scratch");
   * ```
   */
  static unlink(name: string): void {
    adapter.unlink(checkName(name, "unlink shared memory segment", adapter.nameMax));
  }

  /** The segment's name, without a leading `/` (as Python's `SharedMemory.name`). */
  get name(): string {
    return this.#segment.name;
  }

  /** Size in bytes of the mapping (macOS and Windows round an opened segment up to whole pages). */
  get size(): number {
    return this.#segment.size;
  }

  /** Which kind of shared memory this is: `"posix"` on Linux and macOS, `"windows"` on Windows. */
  get backend(): Backend {
    return this.#segment.backend;
  }

  /** True when this handle created the segment; false when it attached to an existing one. */
  get created(): boolean {
    return this.#segment.created;
  }

  /**
   * True when opened with `readOnly`. The kernel never lets this process write to the segment:
   * the mapping is private. Writing through `buf` does not throw and does not crash; it changes a
   * private copy of the touched page (4 KiB on most systems), which this process alone sees from
   * then on, and that page stops following the segment's later changes. Other pages stay live.
   */
  get readOnly(): boolean {
    return this.#segment.readOnly;
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The whole segment as a `Uint8Array` over the live mapping (no copy).
   *
   * @throws {TypeError} once the handle is closed
   */
  get buf(): Uint8Array<ArrayBuffer> {
    if (this.#closed) throw this.#closedError("read buf of");
    return this.#buf;
  }

  /**
   * A typed array over part of the segment, sharing its memory.
   *
   * @param type a typed array constructor, such as `Float64Array`
   * @param byteOffset where the view starts; a multiple of the element size. Default 0.
   * @param length number of elements. Default: as many whole elements as fit.
   * @throws {RangeError} when misaligned or out of range
   * @throws {TypeError} for something that is not a typed array constructor, or a closed handle
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@x/shm";
   *
   * using shm = SharedMemory.create({ size: 256 });
   * const f64 = shm.view(Float64Array, 8, 16); // bytes 8..136
   * f64[0] = Math.PI;
   * ```
   */
  view<T extends TypedArray>(type: TypedArrayConstructor<T>, byteOffset: number = 0, length?: number): T {
    if (this.#closed) throw this.#closedError("make a view of");
    if (!TYPED_ARRAYS.has(type)) {
      throw new TypeError(`Cannot make a view: ${describe(type)} is not a typed array constructor`);
    }
    const what = `a ${type.name} view of shared memory segment "${this.name}"`;
    const unit = type.BYTES_PER_ELEMENT;
    if (typeof byteOffset !== "number" || !Number.isInteger(byteOffset) || byteOffset < 0) {
      throw new RangeError(
        `Cannot make ${what}: byteOffset must be a non-negative integer, got ${describe(byteOffset)}`,
      );
    }
    if (byteOffset % unit !== 0) {
      throw new RangeError(`Cannot make ${what}: byteOffset ${byteOffset} is not a multiple of ${unit}`);
    }
    if (byteOffset > this.size) {
      throw new RangeError(
        `Cannot make ${what}: byteOffset ${byteOffset} is past the end (size ${this.size})`,
      );
    }
    const fit = Math.floor((this.size - byteOffset) / unit);
    if (length === undefined) length = fit;
    else if (typeof length !== "number" || !Number.isInteger(length) || length < 0) {
      throw new RangeError(
        `Cannot make ${what}: length must be a non-negative integer, got ${describe(length)}`,
      );
    } else if (length > fit) {
      throw new RangeError(
        `Cannot make ${what}: ${length} elements from byte ${byteOffset} need ${length * unit} bytes, ` +
          `${this.size - byteOffset} remain`,
      );
    }
    return new type(this.#buffer, byteOffset, length);
  }

  /**
   * Unmaps the segment from this process. `buf` and every view made from it are detached first
   * (their length becomes 0, reads give `undefined`), so no stale view can touch unmapped memory.
   * Safe to call twice. Does not remove the segment: see `unlink()`.
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@x/shm";
   *
   * const shm = SharedMemory.create({ size: 8 });
   * const bytes = shm.buf;
   * shm.close();
   * console.log(bytes.length, shm.closed); // 0 true
   * shm.unlink();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    finalizer.unregister(this);
    // A buffer detached by someone else was transferred away and may still point at the pages.
    let foreign = this.#buffer.detached;
    if (!foreign) {
      try {
        this.#buffer.transfer(0);
      } catch {
        foreign = true;
      }
    }
    this.#segment.release(foreign);
  }

  /**
   * Removes the segment's name so no one else can attach. Processes that have it mapped keep
   * their mapping; the memory is freed when the last one closes. Works on a closed handle.
   *
   * @throws {NotFoundError} when the name is already gone (including a second call)
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@x/shm";
   *
   * const shm = SharedMemory.create({ size: 8 });
   * shm.close();
   * shm.unlink();
   * ```
   */
  unlink(): void {
    if (this.#unlinked) {
      throw new NotFoundError(
        `Cannot unlink shared memory segment "${this.name}": this handle already unlinked it`,
        { code: "ENOENT", errno: 2, syscall: "unlink", segment: this.name },
      );
    }
    this.#segment.unlink();
    this.#unlinked = true;
  }

  /**
   * Closes the handle and, when this handle created the segment (and `unlinkOnDispose` was not
   * set to `false`), unlinks it too, unless it is already gone.
   */
  [Symbol.dispose](): void {
    this.close();
    if (this.created && this.#unlinkOnDispose && !this.#unlinked) {
      try {
        this.unlink();
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    }
  }

  #closedError(what: string): TypeError {
    return new TypeError(`Cannot ${what} shared memory segment "${this.name}": it is closed`);
  }
}

/** The largest segment one handle can map under this runtime, in bytes. */
export const MAX_SIZE: number = maxBufferSize;
