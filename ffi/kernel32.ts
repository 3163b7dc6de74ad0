/**
 * kernel32.dll: one symbol table, bound once, lazily, on first use, through the runtime's FFI.
 *
 * C signatures are given as comments. Every `HANDLE` is passed and returned as `usize` (so
 * `INVALID_HANDLE_VALUE`, `(HANDLE)-1`, survives as a bigint under both runtimes) and normalized with
 * {@linkcode handleValue}; view addresses are `pointer`s. `GetLastError()` must be called straight
 * after the failing call, before anything else that could reset it.
 *
 * @module
 */

import { bindLibrary, type Bound } from "./_ffi.ts";
import { os } from "./runtime.ts";

/** The kernel32 functions this module calls. */
export const kernel32Symbols = {
  // DWORD GetLastError(void);
  GetLastError: { parameters: [], result: "u32" },
  // HANDLE CreateFileMappingW(HANDLE hFile, LPSECURITY_ATTRIBUTES lpAttributes, DWORD flProtect,
  //                           DWORD dwMaximumSizeHigh, DWORD dwMaximumSizeLow, LPCWSTR lpName);
  CreateFileMappingW: { parameters: ["usize", "pointer", "u32", "u32", "u32", "buffer"], result: "usize" },
  // HANDLE OpenFileMappingW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpName);
  OpenFileMappingW: { parameters: ["u32", "i32", "buffer"], result: "usize" },
  // LPVOID MapViewOfFile(HANDLE hFileMappingObject, DWORD dwDesiredAccess, DWORD dwFileOffsetHigh,
  //                      DWORD dwFileOffsetLow, SIZE_T dwNumberOfBytesToMap);
  MapViewOfFile: { parameters: ["usize", "u32", "u32", "u32", "usize"], result: "pointer" },
  // BOOL UnmapViewOfFile(LPCVOID lpBaseAddress);
  UnmapViewOfFile: { parameters: ["pointer"], result: "i32" },
  // BOOL FlushViewOfFile(LPCVOID lpBaseAddress, SIZE_T dwNumberOfBytesToFlush);
  FlushViewOfFile: { parameters: ["pointer", "usize"], result: "i32" },
  // SIZE_T VirtualQuery(LPCVOID lpAddress, PMEMORY_BASIC_INFORMATION lpBuffer, SIZE_T dwLength);
  VirtualQuery: { parameters: ["pointer", "buffer", "usize"], result: "usize" },
  // LPVOID VirtualAlloc(LPVOID lpAddress, SIZE_T dwSize, DWORD flAllocationType, DWORD flProtect);
  VirtualAlloc: { parameters: ["pointer", "usize", "u32", "u32"], result: "pointer" },
  // BOOL CloseHandle(HANDLE hObject);
  CloseHandle: { parameters: ["usize"], result: "i32" },
  // HANDLE CreateFileW(LPCWSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode,
  //                    LPSECURITY_ATTRIBUTES lpSecurityAttributes, DWORD dwCreationDisposition,
  //                    DWORD dwFlagsAndAttributes, HANDLE hTemplateFile);
  CreateFileW: {
    parameters: ["buffer", "u32", "u32", "pointer", "u32", "u32", "usize"],
    result: "usize",
  },
  // BOOL GetFileSizeEx(HANDLE hFile, PLARGE_INTEGER lpFileSize);
  GetFileSizeEx: { parameters: ["usize", "buffer"], result: "i32" },
  // BOOL FlushFileBuffers(HANDLE hFile);
  FlushFileBuffers: { parameters: ["usize"], result: "i32" },
  // BOOL DeleteFileW(LPCWSTR lpFileName);
  DeleteFileW: { parameters: ["buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound kernel32 functions. */
export type Kernel32 = Bound<typeof kernel32Symbols>;

/** `INVALID_HANDLE_VALUE`, `(HANDLE)-1`, as an unsigned 64-bit value. */
export const INVALID_HANDLE_VALUE = 0xffff_ffff_ffff_ffffn;

/** The Win32 constants this module uses (from the Windows SDK headers). */
export const W = {
  PAGE_READONLY: 0x02,
  PAGE_READWRITE: 0x04,
  PAGE_WRITECOPY: 0x08,
  /** `SECTION_QUERY`: used as a view access it asks for a copy-on-write view. */
  FILE_MAP_COPY: 0x01,
  FILE_MAP_WRITE: 0x02,
  FILE_MAP_READ: 0x04,
  FILE_MAP_ALL_ACCESS: 0xf001f,
  MEM_COMMIT: 0x1000,
  MEM_RESERVE: 0x2000,
  GENERIC_READ: 0x8000_0000,
  GENERIC_WRITE: 0x4000_0000,
  FILE_SHARE_READ: 0x1,
  FILE_SHARE_WRITE: 0x2,
  FILE_SHARE_DELETE: 0x4,
  CREATE_NEW: 1,
  OPEN_EXISTING: 3,
  FILE_ATTRIBUTE_NORMAL: 0x80,
  /** `sizeof(MEMORY_BASIC_INFORMATION)` on 64-bit Windows. */
  MBI_SIZE: 48,
  /** Offset of `MEMORY_BASIC_INFORMATION.RegionSize` on 64-bit Windows. */
  MBI_REGION_SIZE: 24,
  /** Longest kernel object name, in UTF-16 code units, prefix included (`MAX_PATH`). */
  NAME_MAX_UNITS: 260,
} as const;

/** A `HANDLE` result as a bigint, whichever form the runtime returned it in. */
export function handleValue(result: number | bigint): bigint {
  return BigInt(result);
}

let cached: Kernel32 | undefined;

/**
 * kernel32.dll, bound on first use.
 *
 * @throws {Error} on any OS other than Windows
 */
export function kernel32(): Kernel32 {
  if (os !== "windows") {
    throw new Error("Cannot use kernel32.dll: this is not Windows; use the POSIX adapter");
  }
  return cached ??= bindLibrary(["kernel32.dll"], kernel32Symbols).symbols;
}
