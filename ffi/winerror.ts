/**
 * Windows error codes (`GetLastError()`) this module may see, their names and descriptions.
 *
 * @module
 */

import type { ErrorCode } from "./errno.ts";

/** `[name, description]` of the Windows error codes this module may meet (from winerror.h). */
const WIN_ERRORS: Readonly<Record<number, readonly [string, string]>> = {
  0: ["ERROR_SUCCESS", "the call reported no error"],
  1: ["ERROR_INVALID_FUNCTION", "incorrect function"],
  2: ["ERROR_FILE_NOT_FOUND", "no such object or file"],
  3: ["ERROR_PATH_NOT_FOUND", "the path does not exist"],
  4: ["ERROR_TOO_MANY_OPEN_FILES", "too many open handles"],
  5: ["ERROR_ACCESS_DENIED", "access is denied"],
  6: ["ERROR_INVALID_HANDLE", "the handle is invalid"],
  8: ["ERROR_NOT_ENOUGH_MEMORY", "not enough memory"],
  14: ["ERROR_OUTOFMEMORY", "not enough memory"],
  32: ["ERROR_SHARING_VIOLATION", "the file is in use by another process"],
  33: ["ERROR_LOCK_VIOLATION", "part of the file is locked by another process"],
  80: ["ERROR_FILE_EXISTS", "the file exists"],
  87: ["ERROR_INVALID_PARAMETER", "invalid parameter"],
  112: ["ERROR_DISK_FULL", "the disk is full"],
  123: ["ERROR_INVALID_NAME", "the name is not valid"],
  161: ["ERROR_BAD_PATHNAME", "the path is not valid"],
  183: ["ERROR_ALREADY_EXISTS", "an object of that name already exists"],
  206: ["ERROR_FILENAME_EXCED_RANGE", "the name is too long"],
  487: ["ERROR_INVALID_ADDRESS", "the address is not free or not valid"],
  1006: ["ERROR_FILE_INVALID", "the file is empty or was changed underneath"],
  1224: ["ERROR_USER_MAPPED_FILE", "the file is mapped by some process"],
  1314: ["ERROR_PRIVILEGE_NOT_HELD", "a required privilege is not held"],
  1455: ["ERROR_COMMITMENT_LIMIT", "the paging file is too small"],
};

/** Windows error codes by name, for the codes this module acts on. */
export const WinError = {
  ERROR_FILE_NOT_FOUND: 2,
  ERROR_PATH_NOT_FOUND: 3,
  ERROR_ACCESS_DENIED: 5,
  ERROR_NOT_ENOUGH_MEMORY: 8,
  ERROR_FILE_EXISTS: 80,
  ERROR_INVALID_PARAMETER: 87,
  ERROR_ALREADY_EXISTS: 183,
  ERROR_FILE_INVALID: 1006,
  ERROR_PRIVILEGE_NOT_HELD: 1314,
} as const;

/**
 * The symbolic name of a Windows error code, such as `"ERROR_ACCESS_DENIED"` (`"WIN32_ERROR_<n>"`
 * for codes this table does not know).
 *
 * @example
 * ```ts
 * import { winErrorName } from "./winerror.ts";
 * console.log(winErrorName(183)); // ERROR_ALREADY_EXISTS
 * ```
 */
export function winErrorName(code: number): string {
  return WIN_ERRORS[code]?.[0] ?? `WIN32_ERROR_${code}`;
}

/**
 * A short lower-case description of a Windows error code.
 *
 * @example
 * ```ts
 * import { winErrorDescription } from "./winerror.ts";
 * console.log(winErrorDescription(5)); // access is denied
 * ```
 */
export function winErrorDescription(code: number): string {
  return WIN_ERRORS[code]?.[1] ?? `Windows error ${code}`;
}

/**
 * The name, number and description of a Windows error code, for `errors.ts` to build the error
 * from (the same classes as on Linux: a taken name is an `AlreadyExistsError`, and so on).
 *
 * @example
 * ```ts
 * import { describeWinError } from "./winerror.ts";
 * console.log(describeWinError(2).code); // ERROR_FILE_NOT_FOUND
 * ```
 */
export function describeWinError(code: number): ErrorCode {
  return { code: winErrorName(code), errno: code, description: winErrorDescription(code) };
}
