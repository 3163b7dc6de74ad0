/**
 * `SharedMemory`: a live `Uint8Array` over memory that other processes see at once.
 *
 * @module
 */

import { foreignBuffer, pointerAt } from "./ffi/_ffi.ts";
import { maxBufferSize } from "./ffi/runtime.ts";
import { Errno } from "./ffi/errno.ts";
import { AlreadyExistsError, NotFoundError } from "./errors.ts";
import { backendNamed, defaultBackend, type RawOptions } from "./platform/backend.ts";
import type { Backend, Segment, SysvStat } from "./platform/_segment.ts";
import { closers, lifecycle, segmentOf } from "./_internal.ts";
import { checkOptions, checkSize, describe } from "./_validate.ts";

export type { Backend } from "./platform/_segment.ts";
export type { SysvStat } from "./platform/_segment.ts";

/** Options of {@linkcode SharedMemory.create}. */
export interface CreateOptions {
  /**
   * The name, without the leading `/` (one leading `/` is accepted and dropped). Without one, a
   * fresh random name in Python's style is generated (`psm_` + 8 hex digits; `wnsm_…` on Windows).
   */
  name?: string;
  /** Size in bytes: a positive integer. */
  size: number;
  /**
   * Permission bits. Default `0o600`. Linux: applied exactly (`fchmod`: the umask does not reduce
   * them). macOS: the umask applies (it has no `fchmod` for shared memory objects). Windows:
   * ignored; the object gets its creator's default security, as Python's do.
   */
  mode?: number;
  /**
   * Whether `[Symbol.dispose]` (a `using` declaration) also unlinks the segment this handle
   * created. Default `true`. `close()` never unlinks. Dispose unlinks only while the name still
   * refers to this very segment: one someone else re-created under the name is left alone.
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

/**
 * Options of {@linkcode SharedMemory.create} for a System V segment (`shmget` + `shmat`).
 *
 * @example
 * ```ts
 * import { ftok, SharedMemory, type SysvCreateOptions } from "@x/shm";
 *
 * const options: SysvCreateOptions = { backend: "sysv", key: ftok("/tmp", 42), size: 512, mode: 0o666 };
 * using shm = SharedMemory.create(options);
 * ```
 */
export interface SysvCreateOptions {
  /** Selects System V shared memory. */
  backend: "sysv";
  /**
   * The IPC key, a signed 32-bit integer (C's `key_t`), usually from {@linkcode ftok}. Without
   * one, the segment is `IPC_PRIVATE`: it has no key, and other processes attach by
   * {@linkcode SharedMemory.id}. An explicit 0 is refused (0 is `IPC_PRIVATE` in C, and a key
   * computed as 0 by mistake must not silently make a private segment).
   */
  key?: number;
  /** Size in bytes: a positive integer, at most the kernel's SHMMAX. */
  size: number;
  /** Permission bits, applied exactly (SysV IPC ignores the umask). Default `0o600`. */
  mode?: number;
  /** Whether `[Symbol.dispose]` also removes (`IPC_RMID`) the segment this handle created. Default `true`. */
  unlinkOnDispose?: boolean;
}

/**
 * Options of {@linkcode SharedMemory.create} for a file-backed segment.
 *
 * @example
 * ```ts
 * import { SharedMemory, type FileCreateOptions } from "@x/shm";
 *
 * const options: FileCreateOptions = { backend: "file", path: "./settings.bin", size: 1 << 20 };
 * const shm = SharedMemory.create(options);
 * shm.close(); // the file and its data stay
 * ```
 */
export interface FileCreateOptions {
  /** Selects a file mapped `MAP_SHARED`. */
  backend: "file";
  /** Where to create the file; it must not exist yet, and its folder must. */
  path: string;
  /** Size in bytes: a positive integer. The file is created this long, zero-filled, and reserved on disk. */
  size: number;
  /**
   * Permission bits of the new file, applied exactly (`fchmod`: the umask does not reduce them) on
   * Linux and macOS. Windows: ignored (the file gets its folder's default security). Default `0o600`.
   */
  mode?: number;
  /**
   * Whether `[Symbol.dispose]` also removes the file this handle created. Default `false`: the
   * point of a file is that the data outlives the processes.
   */
  unlinkOnDispose?: boolean;
}

/**
 * Options of {@linkcode SharedMemory.open} for a System V segment: exactly one of `key` or `id`.
 *
 * @example
 * ```ts
 * import { SharedMemory, type SysvOpenOptions } from "@x/shm";
 *
 * using owner = SharedMemory.create({ backend: "sysv", size: 64 });
 * const options: SysvOpenOptions = { backend: "sysv", id: owner.id!, readOnly: true };
 * using reader = SharedMemory.open(options);
 * ```
 */
export interface SysvOpenOptions {
  /** Selects System V shared memory. */
  backend: "sysv";
  /** The key the segment was created with (not 0). */
  key?: number;
  /** The shmid, as another process's {@linkcode SharedMemory.id} or `ipcs -m` shows it. */
  id?: number;
  /**
   * Attach with `SHM_RDONLY`, so the kernel enforces it. Such an attachment cannot be written at
   * all (a store would kill the process), so `buf` and `view()` give copies: see
   * {@linkcode SharedMemory.readOnly}. Default `false`.
   */
  readOnly?: boolean;
}

/**
 * Options of {@linkcode SharedMemory.open} for a file-backed segment.
 *
 * @example
 * ```ts
 * import { writeFileSync } from "node:fs";
 * import { SharedMemory, type FileOpenOptions } from "@x/shm";
 *
 * writeFileSync("./data.bin", new Uint8Array(4096)); // any existing, non-empty file
 * const options: FileOpenOptions = { backend: "file", path: "./data.bin", readOnly: true };
 * using shm = SharedMemory.open(options);
 * ```
 */
export interface FileOpenOptions {
  /** Selects a file mapped `MAP_SHARED`. */
  backend: "file";
  /** An existing regular file. */
  path: string;
  /** Map only the first `size` bytes; the file must be at least this long. Default: the whole file. */
  size?: number;
  /** Open the file read-only and map it privately: writes through `buf` never reach the file. Default `false`. */
  readOnly?: boolean;
}

/** Options of {@linkcode SharedMemory.openOrCreate}. */
export interface OpenOrCreateOptions {
  /**
   * Size in bytes if the segment has to be created. An existing segment keeps its own size, which
   * must be at least this (a smaller one is a `RangeError`); a bigger one is fine.
   */
  size: number;
  /** Permission bits if the segment has to be created, as in {@linkcode CreateOptions.mode}. Default `0o600`. */
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
  /** Makes a view of `length` elements of `buffer` from `byteOffset`. */
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  /** Size of one element in bytes. */
  readonly BYTES_PER_ELEMENT: number;
  /** The constructor's name, such as `"Float64Array"`. */
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

const OPEN_OR_CREATE_ATTEMPTS = 100;
/** Only this module's own factories hold it: `new SharedMemory()` from outside is refused clearly. */
const CONSTRUCT: unique symbol = Symbol("SharedMemory.construct");

/**
 * Releases the mapping of a handle that was garbage collected without `close()`. Keyed on the
 * handle's `ArrayBuffer`, so it runs only once no view of the memory is reachable. The mapping is
 * retired as by `close()` (private zero pages, unmapped later: `platform/_mmap.ts`), and on
 * Windows replaced rather than unmapped, in case the buffer had been transferred elsewhere.
 */
const finalizer = new FinalizationRegistry<Segment>((segment) => {
  try {
    segment.release();
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
 * `close()` detaches `buf` and every view made from it, so a stale view reads `undefined`, and
 * releases the segment's memory in this process. `unlink()` removes the name; the
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
 *
 * @example Other backends: System V (`shmget`, for C programs built around it) and files (persistent)
 * ```ts
 * import { ftok, SharedMemory } from "@x/shm";
 *
 * const sysv = SharedMemory.create({ backend: "sysv", key: ftok("/tmp", 1), size: 4096, mode: 0o666 });
 * console.log(sysv.name, sysv.id, sysv.stat().attachCount); // 0x01000002 7 1
 * sysv.close();
 * sysv.unlink(); // IPC_RMID
 *
 * const file = SharedMemory.create({ backend: "file", path: "./state.bin", size: 4096 });
 * file.buf[0] = 1;
 * file.flush(); // msync
 * file.close(); // ./state.bin keeps the data
 * ```
 */
export class SharedMemory implements Disposable {
  readonly #segment: Segment;
  readonly #buffer: ArrayBuffer;
  readonly #buf: Uint8Array<ArrayBuffer>;
  readonly #unlinkOnDispose: boolean;
  /** A kernel-enforced read-only (`PROT_READ`) mapping: hand out copies, never the mapping. */
  readonly #copies: boolean;
  #closed = false;
  #unlinked = false;

  private constructor(token: typeof CONSTRUCT, segment: Segment, unlinkOnDispose: boolean) {
    if (token !== CONSTRUCT) {
      throw new TypeError(
        "Cannot construct a SharedMemory with new: use SharedMemory.create(), SharedMemory.open() or " +
          "SharedMemory.openOrCreate()",
      );
    }
    this.#segment = segment;
    this.#unlinkOnDispose = unlinkOnDispose;
    this.#copies = segment.protectedReadOnly === true;
    try {
      this.#buffer = foreignBuffer(pointerAt(segment.address), segment.size);
    } catch (error) {
      segment.release();
      if (segment.created) segment.unlink();
      throw error;
    }
    this.#buf = new Uint8Array(this.#buffer);
    finalizer.register(this.#buffer, segment, this);
    segmentOf.set(this, segment);
    if (segment.created) lifecycle.created?.(this);
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
  static create(options: CreateOptions): SharedMemory;
  /**
   * Creates a new System V segment of `size` zeroed bytes (`shmget(IPC_CREAT|IPC_EXCL)` +
   * `shmat`), for `key`, or `IPC_PRIVATE` without one.
   *
   * @throws {AlreadyExistsError} when a segment has this key already
   * @throws {RangeError} when `size` is more than the kernel's SHMMAX, or `key` is 0 or not a 32-bit integer
   *
   * @example
   * ```ts
   * import { ftok, SharedMemory } from "@x/shm";
   *
   * const key = ftok("/tmp", 42);
   * const shm = SharedMemory.create({ backend: "sysv", key, size: 512, mode: 0o666 });
   * console.log(shm.key === key, shm.id, shm.stat().attachCount); // true 123 1
   * shm.close();
   * shm.unlink(); // IPC_RMID
   * ```
   */
  static create(options: SysvCreateOptions): SharedMemory;
  /**
   * Creates the file `path` with `size` zeroed bytes and maps it shared. The data stays in the
   * file after every process closes it.
   *
   * @throws {AlreadyExistsError} when `path` exists
   * @throws {NotFoundError} when its folder does not exist
   * @throws {PermissionDeniedError} when the OS refuses, or Deno lacks `--allow-read`/`--allow-write` for it
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@x/shm";
   *
   * const m = SharedMemory.create({ backend: "file", path: "./table.bin", size: 1 << 20 });
   * m.buf[0] = 1;
   * m.flush(); // msync: the data is in the file
   * m.close();
   * ```
   */
  static create(options: FileCreateOptions): SharedMemory;
  static create(options: CreateOptions | SysvCreateOptions | FileCreateOptions): SharedMemory {
    const action = "create shared memory segment";
    const o = checkOptions<RawOptions>(options, action);
    if (options === undefined) throw new TypeError(`Cannot ${action}: options with a size are required`);
    const { segment, unlinkOnDispose } = backendNamed(o.backend, action).create(o, action);
    return new SharedMemory(CONSTRUCT, segment, unlinkOnDispose);
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
  static open(name: string, options?: OpenOptions): SharedMemory;
  /**
   * Attaches to an existing System V segment by key or by shmid, at its size (`IPC_STAT`).
   *
   * @throws {NotFoundError} when no segment has this key or id, or it was removed (`IPC_RMID`)
   * @throws {PermissionDeniedError} when its mode does not let this user attach it this way
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@x/shm";
   *
   * using p = SharedMemory.create({ backend: "sysv", size: 512 }); // IPC_PRIVATE
   * const child = SharedMemory.open({ backend: "sysv", id: p.id! });  // in a child, typically
   * console.log(child.size); // 512
   * child.close();
   * ```
   */
  static open(options: SysvOpenOptions): SharedMemory;
  /**
   * Maps an existing file (all of it, or its first `size` bytes).
   *
   * @throws {NotFoundError} when there is no such file
   * @throws {ShmError} when it is a directory (`EISDIR`), empty, or shorter than `size` (`EINVAL`)
   *
   * @example
   * ```ts
   * import { writeFileSync } from "node:fs";
   * import { SharedMemory } from "@x/shm";
   *
   * writeFileSync("./data.bin", new TextEncoder().encode("hello"));
   * const n = SharedMemory.open({ backend: "file", path: "./data.bin", readOnly: true });
   * console.log(n.size, n.buf[0]); // 5 104
   * n.close();
   * ```
   */
  static open(options: FileOpenOptions): SharedMemory;
  static open(name: string | SysvOpenOptions | FileOpenOptions, options?: OpenOptions): SharedMemory {
    const action = "open shared memory segment";
    if (typeof name === "object" && name !== null) {
      if (options !== undefined) {
        throw new TypeError(`Cannot ${action}: pass one options object, not a second argument`);
      }
      const o = checkOptions<RawOptions>(name, action);
      return new SharedMemory(CONSTRUCT, backendNamed(o.backend, action).open(o, action), false);
    }
    const o = checkOptions<OpenOptions>(options, action);
    return new SharedMemory(CONSTRUCT, defaultBackend.open({ readOnly: o.readOnly, name }, action), false);
  }

  /**
   * Attaches to the segment `name` if it exists, or creates it with `size` bytes if it does not;
   * safe when several processes race to do the same. `created` tells which happened.
   *
   * An existing segment must be at least `size` bytes: a smaller one is refused with a
   * `RangeError` naming both sizes (and is left as it is); a bigger one is opened at its own size.
   *
   * @throws {RangeError} when the existing segment is smaller than `size`
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
    const size = checkSize(o.size, action);
    const create = { size, mode: o.mode, unlinkOnDispose: o.unlinkOnDispose, name };
    for (let attempt = 1;; attempt++) {
      try {
        const { segment, unlinkOnDispose } = defaultBackend.create(create, action);
        return new SharedMemory(CONSTRUCT, segment, unlinkOnDispose);
      } catch (error) {
        if (!(error instanceof AlreadyExistsError)) throw error;
      }
      let segment: Segment;
      try {
        segment = defaultBackend.open({ name }, action);
      } catch (error) {
        // Unlinked between our two calls: try again.
        if (!(error instanceof NotFoundError) || attempt >= OPEN_OR_CREATE_ATTEMPTS) throw error;
        continue;
      }
      if (segment.size < size) {
        segment.release();
        throw new RangeError(
          `Cannot ${action} "${segment.name}" of ${size} bytes: it exists with ${segment.size} bytes, fewer ` +
            `than asked for (open it with SharedMemory.open() to take it at its size)`,
        );
      }
      return new SharedMemory(CONSTRUCT, segment, false);
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
    defaultBackend.unlink({ name }, "unlink shared memory segment");
    lifecycle.unlinked?.(undefined, name.startsWith("/") ? name.slice(1) : name);
  }

  /**
   * The segment's name: for POSIX and Windows segments, the name without a leading `/` (as
   * Python's `SharedMemory.name`); for System V, the key as `ipcs -m` prints it (`0x2a0103e8`),
   * or `shmid <id>` for an `IPC_PRIVATE` segment; for a file-backed segment, its path.
   */
  get name(): string {
    return this.#segment.name;
  }

  /** System V only: the key (C's `key_t`, 0 for `IPC_PRIVATE`); undefined for other backends. */
  get key(): number | undefined {
    return this.#segment.attributes.key;
  }

  /** System V only: the shmid other processes can attach by; undefined for other backends. */
  get id(): number | undefined {
    return this.#segment.attributes.id;
  }

  /** File backend only: the file's path as given; undefined for other backends. */
  get path(): string | undefined {
    return this.#segment.attributes.path;
  }

  /** Size in bytes of the mapping (macOS and Windows round an opened segment up to whole pages). */
  get size(): number {
    return this.#segment.size;
  }

  /**
   * Which kind of shared memory this is: for named segments `"posix"` on Linux and macOS,
   * `"windows"` on Windows; `"sysv"` or `"file"` when chosen with the `backend` option.
   */
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
   * File-backed segments behave the same way.
   *
   * System V segments attached read-only are different: the kernel maps them `PROT_READ`
   * (`SHM_RDONLY`), a store would kill the process, and no private copy-on-write mapping of a SysV
   * segment exists. So on such a handle `buf` and `view()` return a fresh copy of the segment (or
   * of the viewed range) each time they are called: reads see the data as it was at that call,
   * writes change only the copy, and the segment is never modified and the process never crashes.
   * Read `buf` again to see later changes. Copies stay readable after `close()`.
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
    return this.#copies ? this.#buf.slice() : this.#buf;
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
    if (this.#copies) return new type(this.#buffer.slice(byteOffset, byteOffset + length * unit), 0, length);
    return new type(this.#buffer, byteOffset, length);
  }

  /**
   * System V only: the segment's status from `shmctl(IPC_STAT)`: size, mode, owner and creator,
   * creator and last attach/detach pid, number of attachments (in all processes) and times. Works
   * on a closed handle while the segment exists.
   *
   * @throws {TypeError} for a segment that is not System V
   * @throws {NotFoundError} once the segment is gone (removed and detached by everyone)
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@x/shm";
   *
   * using shm = SharedMemory.create({ backend: "sysv", size: 512, mode: 0o640 });
   * const st = shm.stat();
   * console.log(st.size, st.mode.toString(8), st.attachCount, st.creatorPid); // 512 640 1 4242
   * ```
   */
  stat(): SysvStat {
    return this.#segment.stat();
  }

  /**
   * File backend only: writes the mapping's dirty pages to the file and waits for the disk
   * (`msync(MS_SYNC)`). Other processes see writes at once without it; it is about durability (a
   * crash of the machine). Does nothing on a read-only handle, which has nothing to write.
   *
   * @throws {TypeError} for a segment that is not file-backed (nothing to flush to), or a closed handle
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@x/shm";
   *
   * const m = SharedMemory.create({ backend: "file", path: "./log.bin", size: 4096 });
   * m.buf.set(new TextEncoder().encode("saved"));
   * m.flush();
   * m.close();
   * ```
   */
  flush(): void {
    if (this.#closed) throw this.#closedError("flush");
    if (this.readOnly) return;
    this.#segment.flush();
  }

  /**
   * Releases the segment in this process. `buf` and every view made from it are detached first
   * (their length becomes 0, reads give `undefined`). On Linux and macOS the address range is not
   * unmapped at once: it becomes private zero pages for a while (see the README's Safety section),
   * so a native job of the runtime still working on `buf` (a `zlib` stream, `crypto.scrypt`, an fs
   * read) neither crashes nor writes into a segment mapped later. Safe to call twice. Does not
   * remove the segment: see `unlink()`.
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
    // A buffer detached by someone else was transferred away and may still point at the pages: the
    // segment's release() keeps the range valid for it (private zero pages) for a while.
    if (!this.#buffer.detached) {
      try {
        this.#buffer.transfer(0);
      } catch {
        // Not transferable (pinned by the engine): release() covers it the same way.
      }
    }
    const before = closers.get(this);
    if (before) {
      closers.delete(this);
      for (const close of before) close();
    }
    this.#segment.release();
    lifecycle.closed?.(this);
  }

  /**
   * Removes the segment's name so no one else can attach. Processes that have it mapped keep
   * their mapping; the memory is freed when the last one closes. Works on a closed handle.
   *
   * System V: `shmctl(IPC_RMID)`. The segment stays usable by every process attached to it until
   * the last one detaches; its key is free at once (opening by key fails, and a new segment can
   * take the key). File backend: removes the file (`unlink(2)`); existing mappings keep the data.
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
        { code: "ENOENT", errno: Errno.ENOENT, syscall: "unlink", segment: this.name },
      );
    }
    this.#segment.unlink();
    this.#unlinked = true;
    lifecycle.unlinked?.(this, this.name);
  }

  /**
   * Closes the handle and, when this handle created the segment (and `unlinkOnDispose` was not
   * set to `false`), unlinks it too, unless it is already gone or its name now refers to another
   * segment (someone unlinked it and created a new one under the name: device and inode, or the
   * shmid, tell them apart). This is the one identity-checked unlink: `Channel`, `ShareableList`
   * and the rest dispose through it.
   */
  [Symbol.dispose](): void {
    this.close();
    if (this.created && this.#unlinkOnDispose && !this.#unlinked && this.#segment.isStillNamed()) {
      try {
        this.unlink();
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    }
  }

  /**
   * A short description for logs, like Python's `repr()`: the name, the size and the backend, and
   * `closed` once closed. `console.log(shm)` and `Deno.inspect(shm)` print the same text.
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@x/shm";
   *
   * using shm = SharedMemory.create({ size: 512 });
   * console.log(String(shm)); // SharedMemory("psm_1a2b3c4d", size=512, backend=posix)
   * ```
   */
  toString(): string {
    const closed = this.#closed ? ", closed" : "";
    return `SharedMemory(${JSON.stringify(this.name)}, size=${this.size}, backend=${this.backend}${closed})`;
  }

  /** Deno's `console.log` / `Deno.inspect` form: the same as {@linkcode toString}. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /** Node's and Bun's `console.log` / `util.inspect` form: the same as {@linkcode toString}. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  #closedError(what: string): TypeError {
    return new TypeError(`Cannot ${what} shared memory segment "${this.name}": it is closed`);
  }
}

/** The largest segment one handle can map under this runtime, in bytes. */
export const MAX_SIZE: number = maxBufferSize;
