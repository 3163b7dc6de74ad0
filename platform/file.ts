/**
 * File-backed shared memory: a regular file mapped `MAP_SHARED`, so what one process writes every
 * process mapping the file sees at once, and the data stays in the file after they all exit.
 *
 * Create: the Deno permission check, `open(O_CREAT|O_EXCL|O_RDWR|O_CLOEXEC)`, `fchmod` (exact mode,
 * whatever the umask), `ftruncate`, `posix_fallocate` (so a full disk is ENOSPC now, not SIGBUS on a
 * later write), `mmap(MAP_SHARED)`, `close`. Open: `open(O_NONBLOCK)`, `fstat` (a regular file, long
 * enough), `posix_fallocate` for a writer when the file is sparse, `mmap`, `close`. Read-only handles
 * open the file `O_RDONLY` and map it `MAP_PRIVATE`, as the POSIX backend does: a stray write makes a
 * private copy of the page and never reaches the file.
 *
 * Only regular files back a segment: a FIFO, a device, a socket or a directory is refused at once
 * (`O_NONBLOCK` keeps `open` of a FIFO with no writer from blocking, then `fstat` tells the type).
 * Symbolic links are followed, as by `open(2)` and every file API: the file's own permissions are
 * what protects it, and the type check applies to the file the link leads to. `create` never follows
 * one: `O_CREAT|O_EXCL` fails on any existing name, a link included.
 *
 * On Windows this dispatches to the kernel32 file backend in `windows.ts`.
 *
 * @module
 */

import { cString, pointerAt } from "../ffi/_ffi.ts";
import { C } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { maxBufferSize, os } from "../ffi/runtime.ts";
import { checkPermission } from "../_host.ts";
import type { ShmError } from "../errors.ts";
import { errnoError, osError } from "../_os_error.ts";
import { noStat, type Segment, type SegmentAttributes } from "./_segment.ts";
import { closeFd, fileStat, mapFd, reserve, retire, S_IFDIR, S_IFREG } from "./_mmap.ts";
import { createWindowsFile, openWindowsFile, unlinkWindowsFile } from "./windows.ts";
import type { SegmentBackend } from "./backend.ts";
import { checkBoolean, checkMode, checkSize, describe } from "../_validate.ts";
import { DEFAULT_MODE } from "./_names.ts";

/** Linux `O_PATH` (the same on x86_64 and aarch64): open a name without reading it. */
const LINUX_O_PATH = 0x200000;

class FileSegment implements Segment {
  readonly backend = "file" as const;
  readonly protectedReadOnly = false;
  readonly attributes: SegmentAttributes;
  readonly path: string;
  readonly address: bigint;
  readonly size: number;
  readonly readOnly: boolean;
  readonly created: boolean;
  /** `"dev:ino"` of the file mapped. */
  readonly identity: string;
  constructor(
    path: string,
    address: bigint,
    size: number,
    readOnly: boolean,
    created: boolean,
    identity: string,
  ) {
    this.path = path;
    this.address = address;
    this.size = size;
    this.readOnly = readOnly;
    this.created = created;
    this.identity = identity;
    this.attributes = Object.freeze({ key: undefined, id: undefined, path });
  }

  get name(): string {
    return this.path;
  }

  release(): void {
    retire(this.address, this.size, this.path);
  }

  unlink(): void {
    unlinkFile(this.path);
  }

  isStillNamed(): boolean {
    return fileIdentity(this.path) === this.identity;
  }

  flush(): void {
    const lib = libc();
    if (lib.msync(pointerAt(this.address), BigInt(this.size), C.MS_SYNC) !== 0) {
      throw osError(lib.errno(), "msync", `flush file-backed segment "${this.path}"`, this.path);
    }
  }

  stat(): never {
    return noStat(this);
  }

  waitKey(): undefined {
    return undefined;
  }
}

/** `"dev:ino"` of the file at `path` now, or undefined when there is none (or it cannot be opened). */
function fileIdentity(path: string): string | undefined {
  const lib = libc();
  const flags = os === "linux" ? LINUX_O_PATH : C.O_RDONLY | C.O_NONBLOCK;
  const fd = lib.open(cString(path), flags | C.O_CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    return fileStat(fd, `check file-backed segment "${path}"`, path).identity;
  } catch {
    return undefined;
  } finally {
    lib.close(fd);
  }
}

function notRegular(type: number, action: string, path: string): ShmError {
  const isDir = type === S_IFDIR;
  return errnoError(
    isDir ? "EISDIR" : "EINVAL",
    "fstat",
    action,
    `it is ${isDir ? "a directory" : "not a regular file"}; only regular files can back a segment`,
    path,
  );
}

/** Creates `path` (it must not exist) with `size` zeroed bytes and maps it shared. */
export function createFile(path: string, size: number, mode: number): Segment {
  const action = `create file-backed segment "${path}"`;
  checkPermission("read", path, action);
  checkPermission("write", path, action);
  if (os === "windows") return createWindowsFile(path, size, mode);
  const lib = libc();
  const cpath = cString(path);
  const fd = lib.open(cpath, C.O_CREAT | C.O_EXCL | C.O_RDWR | C.O_CLOEXEC, mode);
  if (fd < 0) {
    const errno = lib.errno();
    const code = osError(errno, "open", action, path).code;
    const hint = code === "EEXIST"
      ? 'Open it with SharedMemory.open({ backend: "file", path }), or remove it first'
      : code === "ENOENT" || code === "ENOTDIR"
      ? "Its folder does not exist"
      : code === "EISDIR"
      ? "The path names a directory"
      : undefined;
    throw osError(errno, "open", action, path, hint);
  }
  try {
    if (lib.fchmod(fd, mode) !== 0) throw osError(lib.errno(), "fchmod", action, path);
    if (lib.ftruncate(fd, BigInt(size)) !== 0) throw osError(lib.errno(), "ftruncate", action, path);
    reserve(fd, size, action, path, "Its file system");
    const { identity } = fileStat(fd, action, path);
    const address = mapFd(fd, size, false, false, action, path);
    return new FileSegment(path, address, size, false, true, identity);
  } catch (error) {
    lib.unlink(cpath);
    throw error;
  } finally {
    lib.close(fd);
  }
}

/**
 * Maps an existing regular file: all of it, or its first `size` bytes when given (a file shorter
 * than `size` is an error, since touching a page past its end would raise SIGBUS).
 */
export function openFile(path: string, readOnly: boolean, size?: number): Segment {
  const action = `open file-backed segment "${path}"${readOnly ? " read-only" : ""}`;
  checkPermission("read", path, action);
  if (!readOnly) checkPermission("write", path, action);
  if (os === "windows") return openWindowsFile(path, readOnly, size);
  const lib = libc();
  const flags = (readOnly ? C.O_RDONLY : C.O_RDWR) | C.O_NONBLOCK | C.O_CLOEXEC;
  const fd = lib.open(cString(path), flags, 0);
  if (fd < 0) {
    const errno = lib.errno();
    const code = osError(errno, "open", action, path).code;
    const hint = code === "EISDIR"
      ? "The path names a directory"
      : code === "ENXIO"
      ? "It is a FIFO or a socket; only regular files can back a segment"
      : undefined;
    throw osError(errno, "open", action, path, hint);
  }
  try {
    const st = fileStat(fd, action, path);
    if (st.type !== S_IFREG) throw notRegular(st.type, action, path);
    if (size === undefined) {
      if (st.size === 0) {
        throw errnoError(
          "EINVAL",
          "fstat",
          action,
          "the file is empty (size 0), and an empty file cannot be mapped",
          path,
        );
      }
      size = st.size;
    } else if (st.size < size) {
      throw errnoError(
        "EINVAL",
        "fstat",
        action,
        `the file is ${st.size} bytes long, shorter than the ${size} bytes asked for ` +
          `(mapping past its end would crash on access)`,
        path,
      );
    }
    if (size > maxBufferSize) {
      throw new RangeError(
        `Cannot ${action}: its ${size} bytes are more than the ${maxBufferSize} this runtime can map`,
      );
    }
    // A sparse file on a full disk: a write to a hole would be SIGBUS. Reserve the holes now.
    if (!readOnly && st.allocated < size) reserve(fd, size, action, path, "Its file system");
    const address = mapFd(fd, size, readOnly, false, action, path);
    return new FileSegment(path, address, size, readOnly, false, st.identity);
  } finally {
    closeFd(fd);
  }
}

/** Removes the file at `path` (mappings of it stay valid until released, on POSIX). */
export function unlinkFile(path: string): void {
  const action = `remove file-backed segment "${path}"`;
  checkPermission("write", path, action);
  if (os === "windows") return unlinkWindowsFile(path);
  const lib = libc();
  if (lib.unlink(cString(path)) !== 0) throw osError(lib.errno(), "unlink", action, path);
}

/** A file path: a non-empty string without NUL. */
function checkPath(path: unknown, action: string): string {
  if (typeof path !== "string") {
    throw new TypeError(`Cannot ${action}: path must be a string, got ${describe(path)}`);
  }
  if (path.length === 0) throw new TypeError(`Cannot ${action}: path is empty`);
  if (path.includes("\0")) throw new TypeError(`Cannot ${action}: the path contains a NUL character`);
  return path;
}

/** Regular files mapped shared (every OS). */
export const fileBackend: SegmentBackend = {
  name: "file",
  create(o) {
    const action = "create file-backed shared memory segment";
    const path = checkPath(o.path, action);
    const size = checkSize(o.size, action);
    const mode = o.mode === undefined ? DEFAULT_MODE : checkMode(o.mode, action);
    const unlinkOnDispose = checkBoolean(o.unlinkOnDispose, "unlinkOnDispose", action);
    return { segment: createFile(path, size, mode), unlinkOnDispose };
  },
  open(o) {
    const action = "open file-backed shared memory segment";
    const readOnly = checkBoolean(o.readOnly, "readOnly", action);
    const path = checkPath(o.path, action);
    const size = o.size === undefined ? undefined : checkSize(o.size, action);
    return openFile(path, readOnly, size);
  },
  unlink(o) {
    unlinkFile(checkPath(o.path, "remove file-backed shared memory segment"));
  },
};
