/**
 * The one seam between `SharedMemory` and the kinds of shared memory: every backend (POSIX,
 * Windows, System V, files) implements {@linkcode SegmentBackend}, checks its own arguments, and is
 * looked up here by name. `SharedMemory` knows no backend but through this file.
 *
 * @module
 */

import { os } from "../ffi/runtime.ts";
import type { ShmError } from "../errors.ts";
import { errnoError } from "../_os_error.ts";
import { describe } from "../_validate.ts";
import type { Backend, Segment } from "./_segment.ts";
import { posixBackend } from "./posix.ts";
import { windowsBackend } from "./windows.ts";
import { sysvBackend } from "./sysv.ts";
import { fileBackend } from "./file.ts";

/** An options object as the caller passed it, before its backend checked it. */
export type RawOptions = Readonly<Record<string, unknown>>;

/** What a backend's `create` returns. */
export interface Created {
  readonly segment: Segment;
  /** Whether `[Symbol.dispose]` should also unlink it (the backend's default, or the option). */
  readonly unlinkOnDispose: boolean;
}

/** One kind of shared memory. */
export interface SegmentBackend {
  /** The name `SharedMemory.backend` reports, and the `backend` option selects. */
  readonly name: Backend;
  /**
   * Checks `options` (everything but `backend`) and creates a new segment. Named backends make up
   * a fresh name when there is none. Bad input is a TypeError or RangeError before any system call.
   */
  create(options: RawOptions, action: string): Created;
  /** Checks `options` (everything but `backend`, `readOnly` included) and attaches to a segment. */
  open(options: RawOptions, action: string): Segment;
  /** Checks `options` and removes the segment they name, without attaching to it. */
  unlink(options: RawOptions, action: string): void;
}

const BACKENDS: Readonly<Record<Backend, SegmentBackend>> = {
  posix: posixBackend,
  windows: windowsBackend,
  sysv: sysvBackend,
  file: fileBackend,
};

/** The backend of named segments on this OS: `"windows"` on Windows, `"posix"` elsewhere. */
export const defaultBackend: SegmentBackend = os === "windows" ? windowsBackend : posixBackend;

/**
 * The backend called `name` (the default one when `name` is undefined).
 *
 * @throws {TypeError} for a name that is no backend
 * @throws {ShmError} `ENOSYS` for a backend this OS does not have
 */
export function backendNamed(name: unknown, action: string): SegmentBackend {
  if (name === undefined) return defaultBackend;
  if (typeof name === "string" && Object.hasOwn(BACKENDS, name)) {
    const backend = BACKENDS[name as Backend];
    if (!available(backend.name)) throw unavailable(backend.name, action);
    return backend;
  }
  throw new TypeError(
    `Cannot ${action}: backend must be "posix", "windows", "sysv", "file" or left out (named ` +
      `${defaultBackend.name} shared memory), got ${describe(name)}`,
  );
}

function available(name: Backend): boolean {
  if (os === "windows") return name === "windows" || name === "file";
  return name !== "windows";
}

/** What each backend is called in an error, and the call that would have made it. */
const UNAVAILABLE: Readonly<Record<Backend, { what: string; call: string }>> = {
  posix: { what: "POSIX shared memory", call: "shm_open" },
  windows: { what: "Windows file mappings", call: "CreateFileMappingW" },
  sysv: { what: "System V shared memory", call: "shmget" },
  file: { what: "file mappings", call: "mmap" },
};

function unavailable(name: Backend, action: string): ShmError {
  const system = os === "windows" ? "Windows" : os === "darwin" ? "macOS" : "Linux";
  return errnoError("ENOSYS", UNAVAILABLE[name].call, action, `${system} has no ${UNAVAILABLE[name].what}`);
}
