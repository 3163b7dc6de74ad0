/**
 * The C library: one symbol table, bound once, lazily, on first use, through the runtime's FFI.
 *
 * C signatures are given as comments. The table is the same for every POSIX OS but for the entries
 * in {@linkcode linuxSymbols} and {@linkcode darwinSymbols}: the errno accessor has another name on
 * macOS, macOS lacks `posix_fallocate` and `madvise`'s populate advice, and on macOS arm64 the
 * variadic `shm_open` and `open` need their `mode` placed on the stack (six dummy register
 * arguments push it there).
 *
 * @module
 */

import {
  bindLibrary,
  type Bound,
  foreignBuffer,
  type ForeignLibraryInterface,
  type NativeType,
  type Pointer,
} from "./_ffi.ts";
import { arch, os } from "./runtime.ts";

/** Symbols every POSIX libc has with the same signature. */
export const posixSymbols = {
  // int shm_unlink(const char *name);
  shm_unlink: { parameters: ["buffer"], result: "i32" },
  // int ftruncate(int fd, off_t length);
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  // int fstat(int fd, struct stat *statbuf);
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  // int fchmod(int fd, mode_t mode);
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  // int munmap(void *addr, size_t length);
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  // int msync(void *addr, size_t length, int flags);
  msync: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  // int unlink(const char *pathname);
  unlink: { parameters: ["buffer"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t pread(int fd, void *buf, size_t count, off_t offset);
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // key_t ftok(const char *pathname, int proj_id);
  ftok: { parameters: ["buffer", "i32"], result: "i32" },
  // int shmget(key_t key, size_t size, int shmflg);
  shmget: { parameters: ["i32", "usize", "i32"], result: "i32" },
  // void *shmat(int shmid, const void *shmaddr, int shmflg);
  shmat: { parameters: ["i32", "pointer", "i32"], result: "pointer" },
  // int shmdt(const void *shmaddr);
  shmdt: { parameters: ["pointer"], result: "i32" },
  // int shmctl(int shmid, int cmd, struct shmid_ds *buf);
  shmctl: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  // int kill(pid_t pid, int sig);
  kill: { parameters: ["i32", "i32"], result: "i32" },
  // int sched_yield(void);
  sched_yield: { parameters: [], result: "i32" },
} as const satisfies ForeignLibraryInterface;

/** Linux (glibc >= 2.34, or musl): errno accessor, fallocate, madvise, fixed-argument variadics. */
export const linuxSymbols = {
  ...posixSymbols,
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
  // int shm_open(const char *name, int oflag, ... /* mode_t mode */);
  shm_open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int open(const char *pathname, int flags, ... /* mode_t mode */);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int posix_fallocate(int fd, off_t offset, off_t len);   /* returns the error number, errno untouched */
  posix_fallocate: { parameters: ["i32", "i64", "i64"], result: "i32" },
  // int madvise(void *addr, size_t length, int advice);   /* MADV_POPULATE_*: fault pages in, or fail */
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
} as const satisfies ForeignLibraryInterface;

/** macOS x86_64 (libSystem): fixed-argument variadics work there as on Linux. */
export const darwinX64Symbols = {
  ...posixSymbols,
  // int *__error(void);
  __error: { parameters: [], result: "pointer" },
  // int shm_open(const char *name, int oflag, ...);
  shm_open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int open(const char *path, int oflag, ...);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
} as const satisfies ForeignLibraryInterface;

/**
 * macOS arm64: variadic arguments go on the stack. Six dummy `i32` arguments fill the remaining
 * argument registers (x2..x7), so `mode` lands in the first stack slot where `va_arg` reads it.
 */
export const darwinArm64Symbols = {
  ...posixSymbols,
  // int *__error(void);
  __error: { parameters: [], result: "pointer" },
  // int shm_open(const char *name, int oflag, ...);
  shm_open: {
    parameters: ["buffer", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "u32"],
    result: "i32",
  },
  // int open(const char *path, int oflag, ...);
  open: {
    parameters: ["buffer", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "u32"],
    result: "i32",
  },
} as const satisfies ForeignLibraryInterface;

/**
 * Argument registers that fixed arguments use up before a variadic one on Apple arm64: `x0`..`x7`
 * hold eight; `path` and `oflag` take two, so six dummies fill the rest and `mode` goes on the stack.
 */
export const DARWIN_ARM64_PADDING = 6;

/**
 * The FFI parameter list for `int f(const char *path, int oflag, ...)`, whose one variadic argument
 * is `mode`, declared with fixed arguments: `[buffer, i32, u32]`, or with six dummy `i32`s before
 * `mode` when variadic arguments go on the stack (macOS arm64). The tables above spell these out
 * literally; this is what the tests compare them with.
 *
 * @example
 * ```ts
 * import { variadicModeParameters } from "./libc.ts";
 * console.log(variadicModeParameters(true).length); // 9
 * ```
 */
export function variadicModeParameters(onStack: boolean): NativeType[] {
  return ["buffer", "i32", ...Array<NativeType>(onStack ? DARWIN_ARM64_PADDING : 0).fill("i32"), "u32"];
}

/**
 * The arguments for such a call: `[path, oflag, mode]`, or `[path, oflag, 0, 0, 0, 0, 0, 0, mode]`
 * when variadic arguments go on the stack (macOS arm64), so that `mode` lands in the first stack slot,
 * where the callee's `va_arg` reads it.
 *
 * @example
 * ```ts
 * import { variadicModeArgs } from "./libc.ts";
 * console.log(variadicModeArgs(true, "/x", 0x202, 0o600)); // [ "/x", 514, 0, 0, 0, 0, 0, 0, 384 ]
 * ```
 */
export function variadicModeArgs<P>(
  onStack: boolean,
  path: P,
  oflag: number,
  mode: number,
): [P, ...number[]] {
  return [path, oflag, ...Array<number>(onStack ? DARWIN_ARM64_PADDING : 0).fill(0), mode];
}

/** `O_CLOEXEC` on macOS. */
const DARWIN_O_CLOEXEC = 0x1000000;

/**
 * The `oflag` actually passed to `shm_open`. macOS 26.4 and later reject `O_CLOEXEC` there with
 * `EINVAL` (POSIX allows only `O_RDONLY`, `O_RDWR`, `O_CREAT`, `O_EXCL` and `O_TRUNC`), so it is
 * dropped on macOS; the descriptor is closed right after `mmap` anyway. Linux keeps it.
 *
 * @example
 * ```ts
 * import { shmOpenOflag } from "./libc.ts";
 * console.log(shmOpenOflag("darwin", 0x1000202)); // 514
 * ```
 */
export function shmOpenOflag(system: "linux" | "darwin", oflag: number): number {
  return system === "darwin" ? oflag & ~DARWIN_O_CLOEXEC : oflag;
}

/** Where each OS keeps its C library. */
export const LIBC_PATHS: Readonly<Record<"linux" | "darwin", readonly string[]>> = {
  // glibc first; then musl's loader, which is its libc.
  linux: ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"],
  darwin: ["/usr/lib/libSystem.B.dylib"],
};

/** The libc functions this module calls, with the same signatures on every POSIX OS. */
export interface Libc {
  readonly shm_open: (name: Uint8Array, oflag: number, mode: number) => number;
  readonly open: (path: Uint8Array, oflag: number, mode: number) => number;
  /** Returns the error number (0 on success); macOS has none, so this is absent there. */
  readonly posix_fallocate?: (fd: number, offset: bigint, len: bigint) => number;
  /** Linux only (used with `MADV_POPULATE_WRITE` and `MADV_POPULATE_READ`). */
  readonly madvise?: Bound<typeof linuxSymbols>["madvise"];
  readonly shm_unlink: Bound<typeof posixSymbols>["shm_unlink"];
  readonly ftruncate: Bound<typeof posixSymbols>["ftruncate"];
  readonly fstat: Bound<typeof posixSymbols>["fstat"];
  readonly fchmod: Bound<typeof posixSymbols>["fchmod"];
  readonly close: Bound<typeof posixSymbols>["close"];
  readonly mmap: Bound<typeof posixSymbols>["mmap"];
  readonly munmap: Bound<typeof posixSymbols>["munmap"];
  readonly msync: Bound<typeof posixSymbols>["msync"];
  readonly unlink: Bound<typeof posixSymbols>["unlink"];
  readonly read: Bound<typeof posixSymbols>["read"];
  readonly pread: Bound<typeof posixSymbols>["pread"];
  readonly ftok: Bound<typeof posixSymbols>["ftok"];
  readonly shmget: Bound<typeof posixSymbols>["shmget"];
  readonly shmat: Bound<typeof posixSymbols>["shmat"];
  readonly shmdt: Bound<typeof posixSymbols>["shmdt"];
  readonly shmctl: Bound<typeof posixSymbols>["shmctl"];
  readonly kill: Bound<typeof posixSymbols>["kill"];
  readonly sched_yield: Bound<typeof posixSymbols>["sched_yield"];
  /** The errno of the calling thread, as of now: read it right after the failing call. */
  readonly errno: () => number;
}

let cached: Libc | undefined;

/**
 * The C library, bound on first use (so importing this module needs no FFI permission).
 *
 * @throws {Error} on Windows, or when no C library can be loaded.
 */
export function libc(): Libc {
  return cached ??= load();
}

function load(): Libc {
  if (os === "windows") {
    throw new Error("Cannot use the POSIX C library on Windows: use the Windows backend");
  }
  if (os === "linux") {
    const s = bindLibrary(LIBC_PATHS.linux, linuxSymbols).symbols;
    return { ...s, errno: errnoReader(s.__errno_location()) };
  }
  // macOS: on arm64 `mode` must go on the stack; on both, shm_open must not see O_CLOEXEC.
  type Nine = Parameters<Bound<typeof darwinArm64Symbols>["shm_open"]>;
  if (arch === "aarch64") {
    const s = bindLibrary(LIBC_PATHS.darwin, darwinArm64Symbols).symbols;
    return {
      ...s,
      shm_open: (name, oflag, mode) =>
        s.shm_open(...variadicModeArgs(true, name, shmOpenOflag("darwin", oflag), mode) as unknown as Nine),
      open: (path, oflag, mode) => s.open(...variadicModeArgs(true, path, oflag, mode) as unknown as Nine),
      errno: errnoReader(s.__error()),
    };
  }
  const s = bindLibrary(LIBC_PATHS.darwin, darwinX64Symbols).symbols;
  return {
    ...s,
    shm_open: (name, oflag, mode) => s.shm_open(name, shmOpenOflag("darwin", oflag), mode),
    errno: errnoReader(s.__error()),
  };
}

/**
 * errno lives at a fixed address per thread. Wrap that address once and read it as plain memory,
 * so reading errno right after a failing call costs no FFI call (and cannot itself clobber errno).
 * Each worker loads its own copy of this module, so the address is always the calling thread's.
 */
function errnoReader(location: Pointer): () => number {
  const cell = new Int32Array(foreignBuffer(location, 4));
  return () => cell[0]!;
}
