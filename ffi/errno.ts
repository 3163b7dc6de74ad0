/**
 * errno numbers, their names and what they mean, per OS.
 *
 * @module
 */

import { os } from "./runtime.ts";

/** errno name -> [Linux number, macOS number, short description]. */
const TABLE = {
  EPERM: [1, 1, "operation not permitted"],
  ENOENT: [2, 2, "no such file or directory"],
  ESRCH: [3, 3, "no such process"],
  EINTR: [4, 4, "interrupted system call"],
  EIO: [5, 5, "input/output error"],
  ENXIO: [6, 6, "no such device or address"],
  E2BIG: [7, 7, "argument list too long"],
  EBADF: [9, 9, "bad file descriptor"],
  EAGAIN: [11, 35, "resource temporarily unavailable"],
  ENOMEM: [12, 12, "cannot allocate memory"],
  EACCES: [13, 13, "permission denied"],
  EFAULT: [14, 14, "bad address"],
  EBUSY: [16, 16, "device or resource busy"],
  EEXIST: [17, 17, "it already exists"],
  EXDEV: [18, 18, "invalid cross-device link"],
  ENODEV: [19, 19, "no such device"],
  ENOTDIR: [20, 20, "not a directory"],
  EISDIR: [21, 21, "is a directory"],
  EINVAL: [22, 22, "invalid argument"],
  ENFILE: [23, 23, "too many open files in system"],
  EMFILE: [24, 24, "too many open files"],
  ETXTBSY: [26, 26, "text file busy"],
  EFBIG: [27, 27, "file too large"],
  ENOSPC: [28, 28, "no space left on device"],
  ESPIPE: [29, 29, "illegal seek"],
  EROFS: [30, 30, "read-only file system"],
  ERANGE: [34, 34, "result too large"],
  EDEADLK: [35, 11, "resource deadlock avoided"],
  ENAMETOOLONG: [36, 63, "file name too long"],
  ENOSYS: [38, 78, "function not implemented"],
  ELOOP: [40, 62, "too many levels of symbolic links"],
  EIDRM: [43, 90, "identifier removed"],
  EOVERFLOW: [75, 84, "value too large for defined data type"],
  EOPNOTSUPP: [95, 102, "operation not supported"],
  ENOTSUP: [95, 45, "operation not supported"],
  EDQUOT: [122, 69, "disk quota exceeded"],
  ETIMEDOUT: [110, 60, "connection timed out"],
  EOWNERDEAD: [130, 105, "owner died"],
} as const satisfies Record<string, readonly [number, number, string]>;

/** The errno names this module knows, such as `"ENOENT"`. */
export type ErrnoName = keyof typeof TABLE;

/** What `ffi/` tells about an error number: its name, its number and a short description. */
export interface ErrorCode {
  /** Symbolic name, such as `"ENOENT"` or `"ERROR_ACCESS_DENIED"`. */
  readonly code: string;
  /** The number the call reported. */
  readonly errno: number;
  /** A short lower-case description. */
  readonly description: string;
}

const column = os === "darwin" ? 1 : 0;
const byNumber = new Map<number, ErrnoName>();
const numbers = {} as Record<ErrnoName, number>;
for (const [name, row] of Object.entries(TABLE) as [ErrnoName, readonly [number, number, string]][]) {
  if (!byNumber.has(row[column])) byNumber.set(row[column], name);
  numbers[name] = row[column];
}

/**
 * errno numbers by name on this OS, so code says `Errno.ENOENT` rather than 2.
 *
 * @example
 * ```ts
 * import { Errno } from "./errno.ts";
 * console.log(Errno.ENOENT); // 2
 * ```
 */
export const Errno: Readonly<Record<ErrnoName, number>> = Object.freeze(numbers);

/** The symbolic name of an errno number on this OS, such as `"ENOENT"`, or `"E<n>"` when unknown. */
export function errnoName(errno: number): string {
  return byNumber.get(errno) ?? `E${errno}`;
}

/** A short lower-case description of an errno number on this OS. */
export function errnoDescription(errno: number): string {
  const name = byNumber.get(errno);
  return name ? TABLE[name][2] : `error number ${errno}`;
}

/** The name, number and description of an errno value on this OS. */
export function describeErrno(errno: number): ErrorCode {
  return { code: errnoName(errno), errno, description: errnoDescription(errno) };
}
