/**
 * `SharedMemoryScope`: the owner of the segments a process creates, so that none outlives it by
 * accident — the role of Python's `SharedMemoryManager`, without a server process.
 *
 * Everything a scope created is closed and unlinked when the scope is disposed, when the process
 * exits normally, when it dies of an uncaught error, and on SIGINT, SIGTERM and SIGHUP. Segments a
 * scope only attached to are closed, never unlinked: the CPython resource-tracker bug (gh-82300),
 * where a process that merely attached destroys the segment for everyone at exit, cannot happen.
 *
 * The leak report (`enableLeakReport`, in `leak_report.ts`) runs after the scopes at exit, so what
 * a scope owns is never reported.
 *
 * ```ts
 * import { SharedMemoryScope } from "@x/shm";
 *
 * using scope = new SharedMemoryScope();
 * const table = scope.create({ size: 1 << 20 }); // unlinked when the scope ends, or at exit
 * const peer = scope.open(table.name);           // closed when the scope ends, never unlinked
 * ```
 *
 * @module
 */

import { cString } from "./ffi/_ffi.ts";
import { C } from "./ffi/constants.ts";
import { libc } from "./ffi/libc.ts";
import { os } from "./ffi/runtime.ts";
import { NotFoundError } from "./errors.ts";
import {
  type CreateOptions,
  type FileCreateOptions,
  type FileOpenOptions,
  type OpenOptions,
  type OpenOrCreateOptions,
  SharedMemory,
  type SysvCreateOptions,
  type SysvOpenOptions,
} from "./shared_memory.ts";
import { describe } from "./_validate.ts";
import { addExitTask, updateExitHooks } from "./_at_exit.ts";

/**
 * Anything a scope can close at the end: a handle on something shared.
 *
 * A resource with `created === false` is treated as attached even when passed to
 * {@linkcode SharedMemoryScope.adopt}: the scope closes it and never unlinks it.
 *
 * @example
 * ```ts
 * import { type Closable, SharedMemoryScope } from "@x/shm";
 *
 * const socket: Closable = { close: () => console.log("closed") };
 * using scope = new SharedMemoryScope();
 * scope.adopt(socket); // closed when the scope ends
 * ```
 */
export interface Closable {
  /** Releases this process's hold on the resource; must be safe to call twice. */
  close(): void;
  /** `false` when this handle attached to something another process created. */
  readonly created?: boolean;
}

/**
 * Something a scope can own: closed, then unlinked (removed for every process) at the end.
 * `SharedMemory` is one; so is anything else with `close()` and `unlink()`.
 *
 * @example A temporary file owned like a segment
 * ```ts
 * import { rmSync, writeFileSync } from "node:fs";
 * import { type Owned, SharedMemoryScope } from "@x/shm";
 *
 * writeFileSync("scratch.txt", "temporary");
 * const file: Owned = { close() {}, unlink: () => rmSync("scratch.txt") };
 * using scope = new SharedMemoryScope();
 * scope.adopt(file); // removed when the scope ends, at exit or on Ctrl-C
 * ```
 */
export interface Owned extends Closable {
  /** Removes the resource's name; may throw `NotFoundError` when it is already gone. */
  unlink(): void;
}

/**
 * Options of {@linkcode SharedMemoryScope}.
 *
 * @example A program that handles Ctrl-C itself
 * ```ts
 * import process from "node:process";
 * import { type ScopeOptions, SharedMemoryScope } from "@x/shm";
 *
 * const options: ScopeOptions = { signals: false }; // cleanup at the end of the block, exit or crash
 * using scope = new SharedMemoryScope(options);
 * const onInterrupt = () => {
 *   scope.dispose();
 *   process.exit(130);
 * };
 * process.on("SIGINT", onInterrupt);
 * // … the program; Ctrl-C now runs onInterrupt …
 * process.off("SIGINT", onInterrupt);
 * ```
 */
export interface ScopeOptions {
  /**
   * Clean up on SIGINT, SIGTERM and SIGHUP (SIGINT and SIGBREAK on Windows). Default `true`.
   * With `false`, only disposal, normal exit and uncaught errors clean up.
   */
  signals?: boolean;
  /**
   * After cleaning up on a signal, let the process end as the signal would have ended it (the
   * signal is raised again with this module's listener removed). Default `true`. Set `false` when
   * the program handles the signal itself with `Deno.addSignalListener`, which this module cannot
   * see (listeners added with `process.on` are seen, and the process is left to them).
   */
  exitOnSignal?: boolean;
}

interface Entry {
  readonly resource: Closable;
  readonly owned: boolean;
  /** Device and inode of a POSIX segment when it was created (Linux), to never unlink a successor. */
  readonly identity: string | undefined;
}

/** Scopes that hold something, in creation order; kept alive until disposed or the process ends. */
const live = new Set<SharedMemoryScope>();
/** Each scope's signal options. */
const signalPolicy = new WeakMap<SharedMemoryScope, { signals: boolean; exitOnSignal: boolean }>();

/**
 * A set of shared-memory resources released together: every segment it created is closed and
 * unlinked, every segment it attached to is closed and left in place.
 *
 * Cleanup runs in reverse order of acquisition, when {@linkcode SharedMemoryScope.dispose} is called
 * (or a `using` declaration ends), when the process exits normally (`unload` in Deno, `exit` in Bun),
 * when it dies of an uncaught error, and on SIGINT, SIGTERM and SIGHUP. After a signal the process
 * still ends as the signal would have ended it, unless it has listeners of its own for that signal.
 * Cleanup cannot run on SIGKILL or a crash of the runtime itself.
 *
 * A scope never unlinks what it did not create: attached segments (`open`, `openOrCreate` that
 * joined) are only closed, so a reader that exits, crashes or is killed leaves the segment intact
 * for everyone else. On Linux it also checks, before unlinking, that the name still refers to the
 * segment it created (same inode), so a segment someone else re-created under that name is spared.
 *
 * @example Own a segment for the lifetime of a block
 * ```ts
 * import { SharedMemoryScope } from "@x/shm";
 *
 * {
 *   using scope = new SharedMemoryScope();
 *   const shm = scope.create({ size: 4096 });
 *   shm.buf[0] = 1;
 * } // closed and unlinked here, or at exit, or on Ctrl-C, whichever comes first
 * ```
 *
 * @example Attach without ever destroying (the fix for CPython's gh-82300)
 * ```ts
 * import { SharedMemory, SharedMemoryScope } from "@x/shm";
 *
 * const owner = SharedMemory.create({ size: 64 });
 * {
 *   using scope = new SharedMemoryScope();
 *   const peer = scope.open(owner.name);
 *   peer.buf[0] = 9;
 * } // peer is closed; the segment still exists
 * console.log(owner.buf[0]); // 9
 * owner.close();
 * owner.unlink();
 * ```
 */
export class SharedMemoryScope implements Disposable {
  readonly #entries: Entry[] = [];
  #disposed = false;

  /**
   * Makes an empty scope. Exit and signal listeners are installed when it first holds something
   * and removed once no scope holds anything.
   *
   * @example
   * ```ts
   * import { SharedMemoryScope } from "@x/shm";
   *
   * const scope = new SharedMemoryScope({ exitOnSignal: false });
   * scope.dispose();
   * ```
   */
  constructor(options?: ScopeOptions) {
    const action = "make a shared memory scope";
    if (options !== undefined && (options === null || typeof options !== "object")) {
      throw new TypeError(`Cannot ${action}: options must be an object, got ${describe(options)}`);
    }
    signalPolicy.set(this, {
      signals: flag(options?.signals, "signals", action),
      exitOnSignal: flag(options?.exitOnSignal, "exitOnSignal", action),
    });
  }

  /** True once {@linkcode SharedMemoryScope.dispose} has run. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** How many resources the scope holds. */
  get size(): number {
    return this.#entries.length;
  }

  /**
   * Creates a segment owned by this scope: it is closed and unlinked (System V: removed; file
   * backend: the file deleted) when the scope ends. Same options and errors as `SharedMemory.create`,
   * for every backend.
   *
   * @example
   * ```ts
   * import { SharedMemoryScope } from "@x/shm";
   *
   * using scope = new SharedMemoryScope();
   * const shm = scope.create({ name: "jobs", size: 1 << 16, mode: 0o600 });
   * console.log(shm.name); // jobs
   * ```
   */
  create(options: CreateOptions | SysvCreateOptions | FileCreateOptions): SharedMemory {
    this.#checkOpen("create a segment in");
    return this.#track(SharedMemory.create(options as CreateOptions));
  }

  /**
   * Attaches to an existing segment; it is closed when the scope ends and never unlinked.
   * Same arguments and errors as `SharedMemory.open` (a name, or System V / file options).
   *
   * @example
   * ```ts
   * import { SharedMemory, SharedMemoryScope } from "@x/shm";
   *
   * using owner = SharedMemory.create({ size: 16 });
   * using scope = new SharedMemoryScope();
   * const view = scope.open(owner.name, { readOnly: true });
   * console.log(view.created); // false: the scope will only close it
   * ```
   */
  open(name: string | SysvOpenOptions | FileOpenOptions, options?: OpenOptions): SharedMemory {
    this.#checkOpen("open a segment in");
    const shm = typeof name === "string"
      ? SharedMemory.open(name, options)
      : SharedMemory.open(name as SysvOpenOptions);
    return this.#track(shm);
  }

  /**
   * Attaches to `name`, or creates it; the scope unlinks it at the end only if this call created
   * it. Same options and errors as `SharedMemory.openOrCreate`.
   *
   * @example
   * ```ts
   * import { SharedMemoryScope } from "@x/shm";
   *
   * using scope = new SharedMemoryScope();
   * const shm = scope.openOrCreate("counters", { size: 4096 });
   * console.log(shm.created ? "owner" : "guest");
   * ```
   */
  openOrCreate(name: string, options: OpenOrCreateOptions): SharedMemory {
    this.#checkOpen("open or create a segment in");
    return this.#track(SharedMemory.openOrCreate(name, options));
  }

  /**
   * Hands an existing resource to the scope. One with `unlink()` whose `created` is not `false` is
   * owned: closed and unlinked at the end. Anything else is only closed. Returns the resource.
   *
   * @example Adopt a segment created elsewhere in this process
   * ```ts
   * import { SharedMemory, SharedMemoryScope } from "@x/shm";
   *
   * using scope = new SharedMemoryScope();
   * const shm = scope.adopt(SharedMemory.create({ size: 128 }));
   * ```
   */
  adopt<T extends Closable>(resource: T): T {
    this.#checkOpen("adopt a resource into");
    if (resource === null || typeof resource !== "object" || typeof resource.close !== "function") {
      throw new TypeError(
        `Cannot adopt a resource into a shared memory scope: expected an object with close(), got ${
          describe(resource)
        }`,
      );
    }
    if (this.#entries.some((e) => e.resource === resource)) return resource;
    if (resource instanceof SharedMemory) {
      this.#track(resource);
      return resource;
    }
    const owned = typeof (resource as Partial<Owned>).unlink === "function" && resource.created !== false;
    this.#push({ resource, owned, identity: undefined });
    return resource;
  }

  /**
   * Stops managing a resource without closing or unlinking it, for instance to leave a segment
   * behind for a process that starts later. Returns whether the scope held it.
   *
   * @example
   * ```ts
   * import { SharedMemoryScope } from "@x/shm";
   *
   * using scope = new SharedMemoryScope();
   * const shm = scope.create({ size: 64 });
   * scope.forget(shm); // survives the scope; someone else must unlink it
   * shm.close();
   * shm.unlink();
   * ```
   */
  forget(resource: Closable): boolean {
    const index = this.#entries.findIndex((e) => e.resource === resource);
    if (index < 0) return false;
    this.#entries.splice(index, 1);
    if (this.#entries.length === 0) unregister(this);
    return true;
  }

  /**
   * Closes everything the scope holds, newest first, and unlinks what it created. Safe to call
   * twice. A segment already unlinked by someone else is skipped silently.
   *
   * @throws {AggregateError} after trying every resource, when some could not be released
   *
   * @example
   * ```ts
   * import { SharedMemoryScope } from "@x/shm";
   *
   * const scope = new SharedMemoryScope();
   * const shm = scope.create({ size: 64 });
   * scope.dispose();
   * console.log(shm.closed, scope.disposed); // true true
   * ```
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    unregister(this);
    const errors: unknown[] = [];
    for (const entry of this.#entries.splice(0).reverse()) {
      try {
        entry.resource.close();
      } catch (error) {
        errors.push(error);
      }
      if (!entry.owned) continue;
      try {
        if (entry.identity === undefined || identityOf(nameOf(entry.resource)) === entry.identity) {
          (entry.resource as Owned).unlink();
        }
      } catch (error) {
        if (!(error instanceof NotFoundError)) errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      throw new AggregateError(errors, `Cannot release ${errors.length} resources of a shared memory scope`);
    }
  }

  /** Same as {@linkcode SharedMemoryScope.dispose}, for `using` declarations. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #track(shm: SharedMemory): SharedMemory {
    // Closed and already unlinked handles still go in: closing twice is harmless, and a vanished
    // name is skipped.
    const identity = shm.created && shm.backend === "posix" ? identityOf(shm.name) : undefined;
    this.#push({ resource: shm, owned: shm.created, identity });
    return shm;
  }

  #push(entry: Entry): void {
    this.#entries.push(entry);
    if (this.#entries.length === 1) register(this);
  }

  #checkOpen(what: string): void {
    if (this.#disposed) throw new TypeError(`Cannot ${what} a shared memory scope: it is disposed`);
  }
}

function flag(value: unknown, option: string, action: string): boolean {
  if (value === undefined) return true;
  if (typeof value !== "boolean") {
    throw new TypeError(`Cannot ${action}: ${option} must be a boolean, got ${describe(value)}`);
  }
  return value;
}

function nameOf(resource: Closable): string {
  return (resource as unknown as { name: string }).name;
}

/**
 * Device and inode of the POSIX segment `name` as `"dev:ino"`, or undefined where that cannot be
 * told (not Linux, no read access, gone). `shm_open` + `fstat`, so it needs no file permission.
 */
function identityOf(name: string): string | undefined {
  if (os !== "linux") return undefined;
  const lib = libc();
  const fd = lib.shm_open(cString("/" + name), C.O_RDONLY | C.O_CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    const raw = new Uint8Array(256);
    if (lib.fstat(fd, raw) !== 0) return undefined;
    const view = new DataView(raw.buffer);
    // struct stat on Linux x86_64 and aarch64: st_dev (u64) at 0, st_ino (u64) at 8.
    return `${view.getBigUint64(0, true)}:${view.getBigUint64(8, true)}`;
  } finally {
    lib.close(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// Process end: live scopes are disposed, newest first (see `_at_exit.ts` for when).

function register(scope: SharedMemoryScope): void {
  live.add(scope);
  updateExitHooks();
}

function unregister(scope: SharedMemoryScope): void {
  if (live.delete(scope)) updateExitHooks();
}

/** Disposes every live scope, oldest last; reports failures on stderr (there is no caller). */
function cleanupAll(): void {
  for (const scope of [...live].reverse()) {
    try {
      scope.dispose();
    } catch (error) {
      console.error(`shm: cleanup at exit failed: ${(error as Error)?.message ?? String(error)}`);
    }
  }
}

addExitTask({
  run: cleanupAll,
  wantsSignals: () => [...live].some((s) => signalPolicy.get(s)?.signals),
  // A scope that cleans up on signals but leaves the exit to the program keeps the process running.
  keepsRunningOnSignal: () =>
    [...live].some((s) => {
      const policy = signalPolicy.get(s);
      return policy !== undefined && policy.signals && !policy.exitOnSignal;
    }),
}, 0);
