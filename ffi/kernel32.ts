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

import { bindLibrary, type Bound, type ForeignLibraryInterface } from "./_ffi.ts";
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
  // BOOL VirtualFree(LPVOID lpAddress, SIZE_T dwSize, DWORD dwFreeType);
  VirtualFree: { parameters: ["pointer", "usize", "u32"], result: "i32" },
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
  // BOOL GetFileInformationByHandle(HANDLE hFile, LPBY_HANDLE_FILE_INFORMATION lpFileInformation);
  GetFileInformationByHandle: { parameters: ["usize", "buffer"], result: "i32" },

  // --- waits (see _sync/futex_windows.ts) ---
  // HANDLE CreateSemaphoreW(LPSECURITY_ATTRIBUTES lpSemaphoreAttributes, LONG lInitialCount,
  //                         LONG lMaximumCount, LPCWSTR lpName);
  CreateSemaphoreW: { parameters: ["pointer", "i32", "i32", "buffer"], result: "usize" },
  // HANDLE OpenSemaphoreW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpName);
  OpenSemaphoreW: { parameters: ["u32", "i32", "buffer"], result: "usize" },
  // BOOL ReleaseSemaphore(HANDLE hSemaphore, LONG lReleaseCount, LPLONG lpPreviousCount);
  ReleaseSemaphore: { parameters: ["usize", "i32", "pointer"], result: "i32" },
  // DWORD WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds);
  WaitForSingleObject: { parameters: ["usize", "u32"], result: "u32" },
  // DWORD WaitForMultipleObjects(DWORD nCount, const HANDLE *lpHandles, BOOL bWaitAll, DWORD dwMilliseconds);
  WaitForMultipleObjects: { parameters: ["u32", "pointer", "i32", "u32"], result: "u32" },
  // HANDLE CreateEventW(LPSECURITY_ATTRIBUTES lpEventAttributes, BOOL bManualReset, BOOL bInitialState,
  //                     LPCWSTR lpName);
  CreateEventW: { parameters: ["pointer", "i32", "i32", "pointer"], result: "usize" },
  // BOOL SetEvent(HANDLE hEvent);
  SetEvent: { parameters: ["usize"], result: "i32" },

  // --- threads (lock owners, see _sync/owner.ts) ---
  // DWORD GetCurrentThreadId(void);
  GetCurrentThreadId: { parameters: [], result: "u32" },
  // BOOL SwitchToThread(void);
  SwitchToThread: { parameters: [], result: "i32" },
  // HANDLE OpenThread(DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwThreadId);
  OpenThread: { parameters: ["u32", "i32", "u32"], result: "usize" },
  // BOOL GetThreadTimes(HANDLE hThread, LPFILETIME lpCreationTime, LPFILETIME lpExitTime,
  //                     LPFILETIME lpKernelTime, LPFILETIME lpUserTime);
  GetThreadTimes: { parameters: ["usize", "buffer", "buffer", "buffer", "buffer"], result: "i32" },
  // BOOL GetExitCodeThread(HANDLE hThread, LPDWORD lpExitCode);
  GetExitCodeThread: { parameters: ["usize", "buffer"], result: "i32" },
} as const satisfies ForeignLibraryInterface;

/**
 * `WaitForSingleObject` and `WaitForMultipleObjects` (the waiter threads of `_sync/waiters.ts`) as
 * Deno `nonblocking` calls: Deno runs each on a thread of its blocking pool
 * and returns a Promise, so an async wait leaves the event loop running. (Bun has no such calls:
 * there a worker makes the blocking call.)
 */
export const kernel32NonblockingSymbols = {
  // DWORD WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds);
  WaitForSingleObject: { parameters: ["usize", "u32"], result: "u32", nonblocking: true },
  // DWORD WaitForMultipleObjects(DWORD nCount, const HANDLE *lpHandles, BOOL bWaitAll, DWORD dwMilliseconds);
  WaitForMultipleObjects: { parameters: ["u32", "pointer", "i32", "u32"], result: "u32", nonblocking: true },
} as const satisfies ForeignLibraryInterface;

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
  MEM_RELEASE: 0x8000,
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
  /** `SEMAPHORE_MODIFY_STATE | SEMAPHORE_QUERY_STATE | SYNCHRONIZE`: release, query and wait. */
  SEMAPHORE_USE: 0x0010_0003,
  WAIT_OBJECT_0: 0,
  /** `WaitForMultipleObjects` returns `WAIT_ABANDONED_0 + i` for an abandoned mutex (none here). */
  WAIT_ABANDONED_0: 0x80,
  /** Most handles one `WaitForMultipleObjects` call takes (`MAXIMUM_WAIT_OBJECTS`). */
  MAXIMUM_WAIT_OBJECTS: 64,
  WAIT_TIMEOUT: 0x102,
  WAIT_FAILED: 0xffff_ffff,
  INFINITE: 0xffff_ffff,
  /** `THREAD_QUERY_LIMITED_INFORMATION | SYNCHRONIZE`. */
  THREAD_PROBE: 0x0010_0800,
  /** What `GetExitCodeThread` reports for a thread that runs. */
  STILL_ACTIVE: 259,
  /** `sizeof(BY_HANDLE_FILE_INFORMATION)`. */
  BHFI_SIZE: 52,
  /** Longest kernel object name, in UTF-16 code units, prefix included (`MAX_PATH`). */
  NAME_MAX_UNITS: 260,
} as const;

/** A `HANDLE` result as a bigint, whichever form the runtime returned it in. */
export function handleValue(result: number | bigint): bigint {
  return BigInt(result);
}

let cached: Kernel32 | undefined;
let cachedNonblocking: Bound<typeof kernel32NonblockingSymbols> | undefined;

/**
 * kernel32.dll, bound on first use.
 *
 * @throws {Error} on any OS other than Windows
 */
export function kernel32(): Kernel32 {
  if (os !== "windows") {
    throw new Error("Cannot use kernel32.dll: this is not Windows; use the POSIX backend");
  }
  return cached ??= bindLibrary(["kernel32.dll"], kernel32Symbols).symbols;
}

/**
 * The nonblocking `WaitForSingleObject` and `WaitForMultipleObjects` (Deno only), bound on first use.
 *
 * @throws {Error} on any OS other than Windows
 */
export function kernel32Nonblocking(): Bound<typeof kernel32NonblockingSymbols> {
  kernel32();
  return cachedNonblocking ??= bindLibrary(["kernel32.dll"], kernel32NonblockingSymbols).symbols;
}
