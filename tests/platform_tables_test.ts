// The per-OS tables and argument building for the platforms this machine is not: macOS (libSystem)
// and Windows (kernel32). Pure data and pure functions, checked against the documented facts
// (../shared/platform-facts.md, the system headers) without calling into a Mac libc or kernel32.
import assert from "node:assert/strict";
import { test } from "./_harness.ts";
import { C, darwinConstants, linuxConstants, posixConstantsFor } from "../ffi/constants.ts";
import {
  DARWIN_ARM64_PADDING,
  darwinArm64Symbols,
  darwinX64Symbols,
  linuxSymbols,
  shmOpenOflag,
  variadicModeArgs,
  variadicModeParameters,
} from "../ffi/libc.ts";
import { INVALID_HANDLE_VALUE, kernel32, kernel32Symbols, W } from "../ffi/kernel32.ts";
import { describeWinError, winErrorName } from "../ffi/winerror.ts";
import { systemError } from "../_os_error.ts";
import { wideString } from "../ffi/_ffi.ts";
import { arch, os } from "../ffi/runtime.ts";
import { checkName } from "../_validate.ts";
import { posixBackend } from "../platform/posix.ts";
import { dwordPair, objectName, windowsBackend } from "../platform/windows.ts";
import { waitObjectNames } from "../_sync/futex_windows.ts";
import { AlreadyExistsError, NotFoundError, PermissionDeniedError, ShmError } from "../mod.ts";

// ---- macOS ------------------------------------------------------------------------------------------

test("macOS constants: the O_*, PROT_*, MAP_*, MS_*, IPC_* values of the system headers", () => {
  for (const cpu of ["x86_64", "aarch64"] as const) {
    const m = darwinConstants(cpu);
    assert.deepEqual(
      [m.O_RDONLY, m.O_RDWR, m.O_CREAT, m.O_EXCL, m.O_TRUNC, m.O_CLOEXEC, m.O_DIRECTORY],
      [0, 2, 0x200, 0x800, 0x400, 0x1000000, 0x100000],
    );
    assert.deepEqual([m.PROT_NONE, m.PROT_READ, m.PROT_WRITE], [0, 1, 2]);
    assert.deepEqual(
      [m.MAP_SHARED, m.MAP_PRIVATE, m.MAP_FIXED, m.MAP_ANONYMOUS, m.MAP_NORESERVE, m.MAP_POPULATE],
      [1, 2, 0x10, 0x1000, 0x40, 0],
    );
    assert.deepEqual([m.MS_ASYNC, m.MS_INVALIDATE, m.MS_SYNC], [1, 2, 0x10]);
    assert.deepEqual(
      [m.IPC_CREAT, m.IPC_EXCL, m.IPC_PRIVATE, m.IPC_RMID, m.IPC_SET, m.IPC_STAT, m.SHM_RDONLY],
      [0o1000, 0o2000, 0, 0, 1, 2, 0o10000],
    );
  }
});

test("macOS constants differ from Linux exactly where the headers do", () => {
  const m = darwinConstants("aarch64"), l = linuxConstants("aarch64");
  const differing = (Object.keys(m) as (keyof typeof m)[])
    .filter((k) => JSON.stringify(m[k]) !== JSON.stringify(l[k])).sort();
  assert.deepEqual(differing, [
    "FSTAT_PAGE_ROUNDED",
    "FTRUNCATE_ONCE",
    "HAS_FALLOCATE",
    "MADV_POPULATE_READ",
    "MADV_POPULATE_WRITE",
    "MAP_ANONYMOUS",
    "MAP_NORESERVE",
    "MAP_POPULATE",
    "MS_SYNC",
    "O_CLOEXEC",
    "O_CREAT",
    "O_DIRECTORY",
    "O_EXCL",
    "O_NOFOLLOW",
    "O_NONBLOCK",
    "O_TRUNC",
    "SHM_FCHMOD",
    "SHM_MAP_PRIVATE",
    "SHM_NAME_MAX",
    "STAT",
    "VARIADIC_ON_STACK",
  ]);
});

test("macOS behaviour flags: no posix_fallocate, one ftruncate, page-rounded fstat, no fchmod or MAP_PRIVATE on shm", () => {
  for (const cpu of ["x86_64", "aarch64"] as const) {
    const m = darwinConstants(cpu);
    assert.equal(m.HAS_FALLOCATE, false);
    assert.equal(m.FTRUNCATE_ONCE, true);
    assert.equal(
      m.FSTAT_PAGE_ROUNDED,
      true,
      "an opened segment's size is whole pages (16 KiB on Apple silicon)",
    );
    assert.equal(m.SHM_FCHMOD, false);
    assert.equal(m.SHM_MAP_PRIVATE, false, "XNU maps POSIX shm MAP_SHARED only");
    assert.equal(m.VARIADIC_ON_STACK, cpu === "aarch64");
  }
  const l = linuxConstants("x86_64");
  assert.deepEqual(
    [
      l.HAS_FALLOCATE,
      l.FTRUNCATE_ONCE,
      l.FSTAT_PAGE_ROUNDED,
      l.SHM_FCHMOD,
      l.SHM_MAP_PRIVATE,
      l.VARIADIC_ON_STACK,
    ],
    [true, false, false, true, true, false],
  );
});

test("macOS struct stat (64-bit inodes): 144 bytes, u16 st_mode at 4, st_size at 96", () => {
  const s = darwinConstants("aarch64").STAT;
  assert.deepEqual(s, {
    size: 144,
    mode: 4,
    modeBytes: 2,
    uid: 16,
    gid: 20,
    fileSize: 96,
    mtime: 48,
    dev: 0,
    devBytes: 4,
    ino: 8,
    blocks: 104,
  });
  assert.deepEqual(darwinConstants("x86_64").STAT, s, "same layout on Intel Macs");
  // Layout: dev_t(4) mode_t(2) nlink_t(2) ino_t(8) uid(4) gid(4) rdev(4) pad(4) 4 timespecs(16 each).
  assert.equal(4 + 2 + 2 + 8, s.uid);
  assert.equal(s.uid + 4 + 4 + 4 + 4 + 16, s.mtime, "st_mtimespec follows st_atimespec");
  assert.equal(s.mtime + 16 * 3, s.fileSize, "st_size follows m/c/birth timespecs");
  assert.ok(s.fileSize + 8 <= s.size);
});

test("the table for this machine matches its OS; posixConstantsFor picks by OS", () => {
  if (os === "darwin") assert.deepEqual(C, darwinConstants(arch));
  else assert.deepEqual(C, linuxConstants(arch)); // Windows has no POSIX table: it gets Linux's, unused
  assert.deepEqual(posixConstantsFor("darwin", "aarch64"), darwinConstants("aarch64"));
  assert.deepEqual(posixConstantsFor("linux", "x86_64"), linuxConstants("x86_64"));
  assert.notDeepEqual(linuxConstants("x86_64").STAT, linuxConstants("aarch64").STAT);
});

test("macOS arm64 variadic trap: six dummy i32s put mode in the first stack slot", () => {
  assert.equal(DARWIN_ARM64_PADDING, 6);
  const args = variadicModeArgs(true, "/psm_x", 0x202, 0o640);
  assert.deepEqual(args, ["/psm_x", 0x202, 0, 0, 0, 0, 0, 0, 0o640]);
  // AAPCS64 passes eight integer arguments in x0..x7; the ninth is the first on the stack.
  assert.equal(args.indexOf(0o640), 8);
  assert.deepEqual(variadicModeArgs(false, "/psm_x", 0x202, 0o640), ["/psm_x", 0x202, 0o640]);
});

test("macOS symbol tables: arm64 shm_open/open have the padded signature, x86_64 and Linux the plain one", () => {
  const padded = variadicModeParameters(true);
  assert.deepEqual(padded, ["buffer", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "u32"]);
  assert.deepEqual([...darwinArm64Symbols.shm_open.parameters], padded);
  assert.deepEqual([...darwinArm64Symbols.open.parameters], padded);
  for (const table of [darwinX64Symbols, linuxSymbols]) {
    assert.deepEqual([...table.shm_open.parameters], variadicModeParameters(false));
    assert.deepEqual([...table.open.parameters], variadicModeParameters(false));
  }
});

test("macOS symbol tables: __error instead of __errno_location; no posix_fallocate, no syscall", () => {
  for (const table of [darwinArm64Symbols, darwinX64Symbols]) {
    assert.ok("__error" in table);
    assert.ok(!("__errno_location" in table));
    assert.ok(!("posix_fallocate" in table));
    assert.ok(!("syscall" in table));
    assert.deepEqual(table.__error, { parameters: [], result: "pointer" });
  }
  assert.ok("__errno_location" in linuxSymbols && "posix_fallocate" in linuxSymbols);
});

test("macOS shm_open never sees O_CLOEXEC (macOS 26.4+ rejects it); Linux keeps it", () => {
  const m = darwinConstants("aarch64"), l = linuxConstants("x86_64");
  const mFlags = m.O_CREAT | m.O_EXCL | m.O_RDWR | m.O_CLOEXEC;
  assert.equal(shmOpenOflag("darwin", mFlags), m.O_CREAT | m.O_EXCL | m.O_RDWR);
  assert.equal(shmOpenOflag("darwin", m.O_RDONLY | m.O_CLOEXEC), 0);
  const lFlags = l.O_CREAT | l.O_EXCL | l.O_RDWR | l.O_CLOEXEC;
  assert.equal(shmOpenOflag("linux", lFlags), lFlags);
});

test("macOS names: 31 bytes with the slash (PSHMNAMLEN), refused with a TypeError before any syscall", () => {
  const max = darwinConstants("aarch64").SHM_NAME_MAX;
  assert.equal(max, 30);
  const action = "create shared memory segment";
  assert.equal(checkName("a".repeat(30), action, max), "a".repeat(30));
  assert.equal(
    checkName("/" + "a".repeat(30), action, max),
    "a".repeat(30),
    "the leading slash is not counted",
  );
  assert.throws(() => checkName("a".repeat(31), action, max), (e: unknown) => {
    assert.ok(e instanceof TypeError);
    assert.match(e.message, /31 bytes long, more than the 30 allowed/);
    return true;
  });
  // Bytes, not characters: 16 two-byte characters are 32 bytes.
  assert.throws(() => checkName("é".repeat(16), action, max), TypeError);
  assert.ok(`psm_${"0".repeat(8)}`.length <= max, "generated names fit");
  // The backend reads its limit from the table, so on macOS SharedMemory refuses at 31 bytes.
  assert.equal(posixBackend.nameMax, C.SHM_NAME_MAX);
  assert.equal(linuxConstants("x86_64").SHM_NAME_MAX, 255);
});

// ---- Windows ---------------------------------------------------------------------------------------

test("Windows constants: the winnt.h/winbase.h values", () => {
  assert.deepEqual([W.PAGE_READONLY, W.PAGE_READWRITE, W.PAGE_WRITECOPY], [0x02, 0x04, 0x08]);
  assert.deepEqual(
    [W.FILE_MAP_COPY, W.FILE_MAP_WRITE, W.FILE_MAP_READ, W.FILE_MAP_ALL_ACCESS],
    [0x1, 0x2, 0x4, 0xf001f],
  );
  assert.deepEqual([W.MEM_COMMIT, W.MEM_RESERVE], [0x1000, 0x2000]);
  assert.deepEqual([W.MBI_SIZE, W.MBI_REGION_SIZE], [48, 24]);
  assert.equal(INVALID_HANDLE_VALUE, 2n ** 64n - 1n, "(HANDLE)-1 as unsigned");
  assert.deepEqual([W.CREATE_NEW, W.OPEN_EXISTING], [1, 3]);
});

test("kernel32 table: handles as usize, names as buffers, and no binding off Windows", () => {
  assert.deepEqual([...kernel32Symbols.CreateFileMappingW.parameters], [
    "usize",
    "pointer",
    "u32",
    "u32",
    "u32",
    "buffer",
  ]);
  assert.equal(kernel32Symbols.CreateFileMappingW.result, "usize");
  assert.deepEqual([...kernel32Symbols.OpenFileMappingW.parameters], ["u32", "i32", "buffer"]);
  assert.deepEqual([...kernel32Symbols.MapViewOfFile.parameters], ["usize", "u32", "u32", "u32", "usize"]);
  assert.equal(kernel32Symbols.GetLastError.result, "u32");
  if (os !== "windows") assert.throws(() => kernel32(), /not Windows/);
});

test("Windows wait semaphores: named per segment and byte offset, in the segment's namespace, never too long", () => {
  assert.deepEqual(waitObjectNames("Local\\counter", 8), {
    wake: "Local\\shm.wake.8.counter",
    count: "Local\\shm.count.8.counter",
  });
  assert.equal(waitObjectNames("Global\\x", 0).wake, "Global\\shm.wake.0.x");
  assert.equal(
    waitObjectNames("Local\\file.0000abcd.0000000100000002", 4).count,
    "Local\\shm.count.4.file.0000abcd.0000000100000002",
  );
  // The segment's own object is Local\\counter: the semaphores never take its name.
  assert.notEqual(waitObjectNames("Local\\counter", 0).wake, "Local\\counter");
  // A segment name that would not fit is replaced by a 64-bit hash, the same in every process.
  const long = `Local\\${"é".repeat(250)}`;
  const a = waitObjectNames(long, 1_048_576);
  assert.match(a.count, /^Local\\shm\.count\.1048576\.#[0-9a-f]{16}$/);
  assert.ok(a.count.length <= W.NAME_MAX_UNITS && a.wake.length <= W.NAME_MAX_UNITS);
  assert.deepEqual(waitObjectNames(long, 1_048_576), a);
  assert.notEqual(waitObjectNames(`${long}x`, 1_048_576).count, a.count);
  assert.equal(a.wake.slice(-17), a.count.slice(-17), "both semaphores of a word carry the same hash");
});

test("Windows errors map to the same classes as on Linux", () => {
  const winError = (code: number, call: string, action: string, segment?: string, hint?: string) =>
    systemError(describeWinError(code), call, action, segment, hint);
  const e183 = winError(183, "CreateFileMappingW", 'create shared memory segment "x"', "x");
  assert.ok(e183 instanceof AlreadyExistsError);
  assert.equal(e183.code, "ERROR_ALREADY_EXISTS");
  assert.equal(e183.errno, 183);
  assert.equal(e183.syscall, "CreateFileMappingW");
  assert.equal(e183.segment, "x");
  assert.equal(
    e183.message,
    'Cannot create shared memory segment "x": an object of that name already exists (ERROR_ALREADY_EXISTS from CreateFileMappingW)',
  );
  assert.ok(winError(80, "CreateFileW", "a") instanceof AlreadyExistsError);
  assert.ok(winError(2, "OpenFileMappingW", "a") instanceof NotFoundError);
  assert.ok(winError(3, "CreateFileW", "a") instanceof NotFoundError);
  assert.ok(winError(5, "OpenFileMappingW", "a") instanceof PermissionDeniedError);
  assert.ok(winError(1314, "CreateFileMappingW", "a") instanceof PermissionDeniedError);
  const other = winError(1455, "CreateFileMappingW", "a", undefined, "Free some memory");
  assert.ok(other instanceof ShmError && !(other instanceof NotFoundError));
  assert.match(
    other.message,
    /paging file is too small \(ERROR_COMMITMENT_LIMIT from CreateFileMappingW\)\. Free/,
  );
  assert.equal(winErrorName(99999), "WIN32_ERROR_99999");
});

test("Windows object names: Local\\ by default, Global\\ on request, checked before any call", () => {
  assert.equal(objectName("wnsm_0123abcd", "x"), "Local\\wnsm_0123abcd");
  assert.equal(objectName("Global\\n", "x"), "Global\\n");
  assert.equal(objectName("global\\n", "x"), "Global\\n", "prefix spelled canonically");
  assert.equal(objectName("LOCAL\\n", "x"), "Local\\n");
  assert.throws(() => objectName("a\\b", "x"), TypeError);
  assert.throws(() => objectName("Global\\a\\b", "x"), TypeError);
  assert.throws(() => objectName("Local\\", "x"), TypeError);
  assert.equal(objectName("n".repeat(254), "x").length, 260);
  assert.throws(() => objectName("n".repeat(255), "x"), /261 UTF-16 code units/);
  assert.match(windowsBackend.generateName(), /^wnsm_[0-9a-f]{8}$/);
  assert.equal(windowsBackend.name, "windows");
});

test("UTF-16 names: wideString gives NUL-terminated code units, surrogate pairs included", () => {
  assert.deepEqual([...wideString("Local\\é")], [76, 111, 99, 97, 108, 92, 0xe9, 0]);
  assert.deepEqual([...wideString("😀")], [0xd83d, 0xde00, 0]);
  assert.deepEqual([...wideString("")], [0]);
});

test("Windows sizes split into high and low DWORDs", () => {
  assert.deepEqual(dwordPair(100), [0, 100]);
  assert.deepEqual(dwordPair(2 ** 32 - 1), [0, 2 ** 32 - 1]);
  assert.deepEqual(dwordPair(2 ** 32), [1, 0]);
  assert.deepEqual(dwordPair(5 * 2 ** 32 + 7), [5, 7]);
  assert.deepEqual(dwordPair(Number.MAX_SAFE_INTEGER), [2 ** 21 - 1, 2 ** 32 - 1]);
});
