/**
 * File-backed shared memory: a regular file mapped `MAP_SHARED`, so what one process writes every
 * process mapping the file sees at once, and the data stays in the file after they all exit.
 *
 * Create: the Deno permission check, `open(O_CREAT|O_EXCL|O_RDWR|O_CLOEXEC)`, `fchmod` (exact mode,
 * whatever the umask), `ftruncate`, `posix_fallocate` (so a full disk is ENOSPC now, not SIGBUS on a
 * later write), `mmap(MAP_SHARED)`, `close`. Open: `open`, `fstat` (a regular file, long enough),
 * `mmap`, `close`. Read-only handles open the file `O_RDONLY` and map it `MAP_PRIVATE`, as the POSIX
 * backend does: a stray write makes a private copy of the page and never reaches the file.
 *
 * On Windows this dispatches to the kernel32 file backend in `windows.ts`.
 *
 * @module
 */

import { cString, pointerAt } from "../ffi/_ffi.ts";
import { C } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { maxBufferSize, os } from "../ffi/runtime.ts";
import { checkDenoPermission } from "../_host.ts";
import { osError, ShmError } from "../errors.ts";
import type { Segment } from "./_segment.ts";
import { closeFd, mapFd, neutralize, reserve, unmap } from "./posix.ts";
import { createWindowsFile, openWindowsFile, unlinkWindowsFile } from "./windows.ts";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

class FileSegment implements Segment {
  readonly backend = "file" as const;
  constructor(
    readonly path: string,
    readonly address: bigint,
    readonly size: number,
    readonly readOnly: boolean,
    readonly created: boolean,
  ) {}

  get name(): string {
    return this.path;
  }

  release(neutralizePages: boolean): void {
    if (neutralizePages) neutralize(this.address, this.size, this.path);
    else unmap(this.address, this.size, this.path);
  }

  unlink(): void {
    unlinkFile(this.path);
  }

  flush(): void {
    const lib = libc();
    if (lib.msync(pointerAt(this.address), BigInt(this.size), C.MS_SYNC) !== 0) {
      throw osError(lib.errno(), "msync", `flush file-backed segment "${this.path}"`, this.path);
    }
  }
}

/** `fstat` type bits and size. */
function describeFd(fd: number, action: string, path: string): { type: number; size: number } {
  const lib = libc();
  const raw = new Uint8Array(256);
  if (lib.fstat(fd, raw) !== 0) throw osError(lib.errno(), "fstat", action, path);
  const view = new DataView(raw.buffer);
  const mode = C.STAT.modeBytes === 2 ? view.getUint16(C.STAT.mode, true) : view.getUint32(C.STAT.mode, true);
  return { type: mode & S_IFMT, size: Number(view.getBigInt64(C.STAT.fileSize, true)) };
}

function notRegular(type: number, action: string, path: string): ShmError {
  const isDir = type === S_IFDIR;
  return new ShmError(
    `Cannot ${action}: it is ${
      isDir ? "a directory" : "not a regular file"
    }; only regular files can back a segment`,
    { code: isDir ? "EISDIR" : "EINVAL", errno: isDir ? 21 : 22, syscall: "fstat", segment: path },
  );
}

/** Creates `path` (it must not exist) with `size` zeroed bytes and maps it shared. */
export function createFile(path: string, size: number, mode: number): Segment {
  const action = `create file-backed segment "${path}"`;
  checkDenoPermission("read", path, action);
  checkDenoPermission("write", path, action);
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
    try {
      reserve(fd, size, action, path);
    } catch (error) {
      // reserve()'s hint speaks of /dev/shm; here it is the file's own file system.
      if (error instanceof ShmError && error.code === "ENOSPC") {
        throw osError(
          error.errno,
          "posix_fallocate",
          action,
          path,
          `Its file system has less than ${size} bytes free`,
        );
      }
      throw error;
    }
    const address = mapFd(fd, size, false, false, action, path);
    return new FileSegment(path, address, size, false, true);
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
  checkDenoPermission("read", path, action);
  if (!readOnly) checkDenoPermission("write", path, action);
  if (os === "windows") return openWindowsFile(path, readOnly, size);
  const lib = libc();
  const fd = lib.open(cString(path), (readOnly ? C.O_RDONLY : C.O_RDWR) | C.O_CLOEXEC, 0);
  if (fd < 0) {
    const errno = lib.errno();
    const code = osError(errno, "open", action, path).code;
    throw osError(errno, "open", action, path, code === "EISDIR" ? "The path names a directory" : undefined);
  }
  try {
    const st = describeFd(fd, action, path);
    if (st.type !== S_IFREG) throw notRegular(st.type, action, path);
    if (size === undefined) {
      if (st.size === 0) {
        throw new ShmError(
          `Cannot ${action}: the file is empty (size 0), and an empty file cannot be mapped`,
          {
            code: "EINVAL",
            errno: 22,
            syscall: "fstat",
            segment: path,
          },
        );
      }
      size = st.size;
    } else if (st.size < size) {
      throw new ShmError(
        `Cannot ${action}: the file is ${st.size} bytes long, shorter than the ${size} bytes asked for ` +
          `(mapping past its end would crash on access)`,
        { code: "EINVAL", errno: 22, syscall: "fstat", segment: path },
      );
    }
    if (size > maxBufferSize) {
      throw new RangeError(
        `Cannot ${action}: its ${size} bytes are more than the ${maxBufferSize} this runtime can map`,
      );
    }
    const address = mapFd(fd, size, readOnly, false, action, path);
    return new FileSegment(path, address, size, readOnly, false);
  } finally {
    closeFd(fd);
  }
}

/** Removes the file at `path` (mappings of it stay valid until released, on POSIX). */
export function unlinkFile(path: string): void {
  const action = `remove file-backed segment "${path}"`;
  checkDenoPermission("write", path, action);
  if (os === "windows") return unlinkWindowsFile(path);
  const lib = libc();
  if (lib.unlink(cString(path)) !== 0) throw osError(lib.errno(), "unlink", action, path);
}
