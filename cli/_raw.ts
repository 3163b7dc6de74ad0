/**
 * What the `shm` command line does to segments without mapping them: it creates a POSIX segment
 * (`shm_open`, `fchmod`, `ftruncate`, `posix_fallocate`, `close`) or a System V one (`shmget`),
 * and reads a POSIX segment with `pread` on its descriptor.
 *
 * No mapping means no `ArrayBuffer`, so no runtime's buffer limit applies (Bun's 4 GiB), and a page
 * that a full `/dev/shm` cannot supply reads as the zeros of a hole or fails as an error from
 * `pread`: never a SIGBUS, as touching it through a mapping would be.
 *
 * @module
 */

import { cString } from "../ffi/_ffi.ts";
import { C } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { osError } from "../_os_error.ts";
import { Errno } from "../ffi/errno.ts";
import { fileStat } from "../platform/_mmap.ts";
import { makePosix } from "../platform/posix.ts";
import { makeSysv, sysvCreateAction } from "../platform/sysv.ts";

/**
 * Creates the POSIX segment `name` of `size` bytes with exactly `mode`, reserving its memory, and
 * closes it again; removes it if any step fails (a full `/dev/shm` is `ENOSPC` here).
 */
export function createPosixSegment(name: string, size: number, mode: number): void {
  libc().close(makePosix(name, size, mode, `create shared memory segment "${name}"`));
}

/** Creates a System V segment (`IPC_PRIVATE` for key 0) without attaching it; returns its shmid. */
export function createSysvSegment(key: number, size: number, mode: number): number {
  return makeSysv(key, size, mode, sysvCreateAction(key));
}

/** A POSIX segment opened read-only for `pread`. Close it with `close()` (or `using`). */
export class SegmentReader implements Disposable {
  readonly #fd: number;
  #closed = false;
  /** The segment's name, without a leading `/`. */
  readonly name: string;
  /** Its size in bytes when it was opened. */
  readonly size: number;

  constructor(name: string) {
    const lib = libc();
    const action = `open shared memory segment "${name}" read-only`;
    const fd = lib.shm_open(cString("/" + name), C.O_RDONLY | C.O_CLOEXEC, 0);
    if (fd < 0) throw osError(lib.errno(), "shm_open", action, name);
    try {
      this.size = fileStat(fd, action, name).size;
    } catch (error) {
      lib.close(fd);
      throw error;
    }
    this.#fd = fd;
    this.name = name;
  }

  /**
   * Reads `[offset, end)` in chunks of at most `chunk` bytes, handing each to `each` (the array is
   * reused between calls). Stops early at the end of the file, if another process shrank it.
   * Returns the number of bytes read.
   */
  read(offset: number, end: number, each: (bytes: Uint8Array, at: number) => void, chunk = 1 << 16): number {
    const lib = libc();
    const buffer = new Uint8Array(Math.max(16, Math.min(chunk, end - offset)));
    let at = offset;
    while (at < end) {
      const want = Math.min(buffer.length, end - at);
      const got = Number(lib.pread(this.#fd, buffer, BigInt(want), BigInt(at)));
      if (got < 0) {
        const errno = lib.errno();
        if (errno === Errno.EINTR) continue;
        throw osError(errno, "pread", `read shared memory segment "${this.name}" at offset ${at}`, this.name);
      }
      if (got === 0) break;
      each(buffer.subarray(0, got), at);
      at += got;
    }
    return at - offset;
  }

  /** Closes the descriptor. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc().close(this.#fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
