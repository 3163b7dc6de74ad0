/**
 * The one factory of the errors this module throws for failed system calls: from an errno (or a
 * Windows error code) to the {@linkcode ShmError} subclass its code belongs to. Private: the
 * classes are public in `errors.ts`, the factory is not.
 *
 * @module
 */

import { describeErrno, Errno, type ErrnoName, type ErrorCode } from "./ffi/errno.ts";
import { describeWinError } from "./ffi/winerror.ts";
import { os } from "./ffi/runtime.ts";
import { AlreadyExistsError, NotFoundError, PermissionDeniedError, ShmError } from "./errors.ts";

/** Codes (POSIX and Windows) that become each subclass, so callers handle a cause the same way on every OS. */
const CLASS_OF: Readonly<Record<string, typeof ShmError>> = {
  EEXIST: AlreadyExistsError,
  ERROR_ALREADY_EXISTS: AlreadyExistsError,
  ERROR_FILE_EXISTS: AlreadyExistsError,
  ENOENT: NotFoundError,
  ERROR_FILE_NOT_FOUND: NotFoundError,
  ERROR_PATH_NOT_FOUND: NotFoundError,
  EACCES: PermissionDeniedError,
  EPERM: PermissionDeniedError,
  ERROR_ACCESS_DENIED: PermissionDeniedError,
  ERROR_PRIVILEGE_NOT_HELD: PermissionDeniedError,
};

/**
 * The one factory of errors for failed calls: builds the error from what `ffi/` says about the
 * error number, of the class its code belongs to.
 *
 * The message reads `Cannot <action>: <cause> (<CODE> from <syscall>)`, for instance
 * `Cannot open shared memory segment "demo": no such file or directory (ENOENT from shm_open)`.
 */
export function systemError(
  error: ErrorCode,
  syscall: string,
  action: string,
  segment?: string,
  hint?: string,
): ShmError {
  let message = `Cannot ${action}: ${error.description} (${error.code} from ${syscall})`;
  if (hint) message += `. ${hint}`;
  const Class = CLASS_OF[error.code] ?? ShmError;
  return new Class(message, { code: error.code, errno: error.errno, syscall, segment });
}

/**
 * The error for a failed system call of this OS, from its errno (POSIX) or `GetLastError()` code
 * (Windows), read right after the call.
 *
 * @param errno the errno value (or Windows error code) read right after the call
 * @param syscall the name of the failing call
 * @param action what was being attempted, as it reads after "Cannot "
 * @param segment the segment the call was about
 * @param hint an extra sentence to append, for causes that deserve advice
 */
export function osError(
  errno: number,
  syscall: string,
  action: string,
  segment?: string,
  hint?: string,
): ShmError {
  const error = os === "windows" ? describeWinError(errno) : describeErrno(errno);
  return systemError(error, syscall, action, segment, hint);
}

/**
 * An error with a POSIX errno chosen by this module (not read from a call), such as `EINVAL` for
 * an object that is not a regular file. The message reads `Cannot <action>: <reason>`.
 */
export function errnoError(
  code: ErrnoName,
  syscall: string,
  action: string,
  reason: string,
  segment?: string,
): ShmError {
  const Class = CLASS_OF[code] ?? ShmError;
  return new Class(`Cannot ${action}: ${reason}`, { code, errno: Errno[code], syscall, segment });
}
