/**
 * `ftok`: the System V IPC key C programs derive from a path and a project id.
 *
 * @module
 */

import { cString } from "./ffi/_ffi.ts";
import { libc } from "./ffi/libc.ts";
import { osError } from "./_os_error.ts";
import { checkPermission } from "./_host.ts";
import { describe } from "./_validate.ts";

/**
 * The System V key for `path` and `projId`, exactly as C's `ftok(path, projId)` computes it, since
 * it is the C library's own `ftok`: with glibc, `(projId & 0xff) << 24 | (st_dev & 0xff) << 16 |
 * (st_ino & 0xffff)`, as a signed 32-bit `key_t`. The path must exist; the key changes if the file
 * is deleted and created again (new inode). Only the low 8 bits of `projId` count, and glibc
 * accepts 0 (POSIX leaves 0 unspecified).
 *
 * Under Deno this needs `--allow-read` for `path` (the call reads the file's metadata).
 *
 * @param path an existing file or directory that every cooperating process can reach
 * @param projId an integer; C programs often pass a character, such as `'A'` (65)
 * @returns the key, a signed 32-bit integer (C's `key_t`)
 * @throws {NotFoundError} when `path` does not exist
 * @throws {PermissionDeniedError} when a folder on the way may not be searched, or Deno lacks
 * `--allow-read` for the path
 * @throws {TypeError | RangeError} for a path that is not a non-empty string, or a projId that is not
 * a 32-bit integer
 *
 * @example The key a C program gets from `ftok("/tmp", 'A')`
 * ```ts
 * import { ftok, SharedMemory } from "@x/shm";
 *
 * const key = ftok("/tmp", "A".charCodeAt(0));
 * using shm = SharedMemory.create({ backend: "sysv", key, size: 4096, mode: 0o666 });
 * console.log(shm.name); // the key as ipcs prints it, such as 0x41010002
 * ```
 */
export function ftok(path: string, projId: number): number {
  const action = "compute a System V key with ftok";
  if (typeof path !== "string") {
    throw new TypeError(`Cannot ${action}: path must be a string, got ${describe(path)}`);
  }
  if (path.length === 0 || path.includes("\0")) {
    throw new TypeError(`Cannot ${action}: path must be non-empty and free of NUL characters`);
  }
  if (typeof projId !== "number") {
    throw new TypeError(`Cannot ${action}: projId must be an integer, got ${describe(projId)}`);
  }
  if (!Number.isInteger(projId) || projId < -(2 ** 31) || projId >= 2 ** 31) {
    throw new RangeError(`Cannot ${action}: projId must be a 32-bit integer, got ${projId}`);
  }
  const what = `${action} for "${path}"`;
  checkPermission("read", path, what);
  const lib = libc();
  const cpath = cString(path);
  const key = lib.ftok(cpath, projId);
  if (key !== -1) return key;
  const errno = lib.errno();
  // -1 is also the key of projId 0xff, device 0xff, inode 0xffff. Another projId cannot give -1,
  // so it tells a failed stat from that key.
  if (lib.ftok(cpath, projId ^ 1) !== -1) return key;
  throw osError(errno, "ftok", what, path);
}
