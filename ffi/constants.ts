/**
 * Per-OS values of the C constants and struct layouts this module uses.
 *
 * Linux values were checked on Debian 12 (glibc 2.36, x86_64); macOS values come from the system
 * headers (via the Rust `libc` crate) and are not verified on a Mac. They are plain data so that tests
 * can check the macOS table without a Mac.
 *
 * @module
 */

import { arch, type ArchName, os, type OsName } from "./runtime.ts";

/** The C constants one POSIX platform needs. */
export interface PosixConstants {
  readonly O_RDONLY: number;
  readonly O_RDWR: number;
  readonly O_CREAT: number;
  readonly O_EXCL: number;
  readonly O_TRUNC: number;
  readonly O_CLOEXEC: number;
  readonly O_DIRECTORY: number;
  /** Open without waiting (a FIFO with no writer would block `open` forever without it). */
  readonly O_NONBLOCK: number;
  /** Fail (`ELOOP`) instead of following a symbolic link in the last component. */
  readonly O_NOFOLLOW: number;
  readonly PROT_NONE: number;
  readonly PROT_READ: number;
  readonly PROT_WRITE: number;
  readonly MAP_SHARED: number;
  readonly MAP_PRIVATE: number;
  readonly MAP_FIXED: number;
  readonly MAP_ANONYMOUS: number;
  readonly MAP_NORESERVE: number;
  /** 0 where the OS has no MAP_POPULATE. */
  readonly MAP_POPULATE: number;
  /** `madvise` advice that faults in every page for writing (Linux 5.14+); 0 where there is none. */
  readonly MADV_POPULATE_WRITE: number;
  /** `madvise` advice that faults in every page for reading (Linux 5.14+); 0 where there is none. */
  readonly MADV_POPULATE_READ: number;
  readonly MS_ASYNC: number;
  readonly MS_INVALIDATE: number;
  readonly MS_SYNC: number;
  readonly IPC_CREAT: number;
  readonly IPC_EXCL: number;
  readonly IPC_PRIVATE: number;
  readonly IPC_RMID: number;
  readonly IPC_SET: number;
  readonly IPC_STAT: number;
  readonly SHM_RDONLY: number;
  /** Longest segment name in bytes, not counting the leading `/`. */
  readonly SHM_NAME_MAX: number;
  /** Whether the OS has `posix_fallocate` (macOS does not). */
  readonly HAS_FALLOCATE: boolean;
  /** Whether `ftruncate` may be called only once on a shm object (macOS). */
  readonly FTRUNCATE_ONCE: boolean;
  /**
   * Whether `fchmod` works on a shm descriptor. macOS has no chmod for POSIX shm objects (it fails
   * with EINVAL): there the object keeps the mode given to `shm_open` (XNU stores `mode & ALLPERMS`).
   */
  readonly SHM_FCHMOD: boolean;
  /**
   * Whether a shm object can be mapped `MAP_PRIVATE` (copy-on-write). XNU refuses anything but
   * `MAP_SHARED` for POSIX shm (EINVAL), and `PROT_WRITE` on a descriptor opened `O_RDONLY` (EPERM):
   * on macOS a read-only segment can only be a `PROT_READ` shared mapping.
   */
  readonly SHM_MAP_PRIVATE: boolean;
  /** `fstat` reports the page-rounded size of a shm object (macOS). */
  readonly FSTAT_PAGE_ROUNDED: boolean;
  /** `shm_open` is variadic and its `mode` must go on the stack (macOS arm64). */
  readonly VARIADIC_ON_STACK: boolean;
  /** `struct stat`: total size and field offsets. */
  readonly STAT: {
    readonly size: number;
    readonly mode: number;
    readonly modeBytes: 2 | 4;
    readonly uid: number;
    readonly gid: number;
    readonly fileSize: number;
    readonly mtime: number;
    /** `st_dev`: 8 bytes on Linux, 4 on macOS. */
    readonly dev: number;
    readonly devBytes: 4 | 8;
    /** `st_ino`, 8 bytes. */
    readonly ino: number;
    /** `st_blocks`, 8 bytes, in 512-byte units. */
    readonly blocks: number;
  };
}

const linuxStatX64 = {
  size: 144,
  mode: 24,
  modeBytes: 4,
  uid: 28,
  gid: 32,
  fileSize: 48,
  mtime: 88,
  dev: 0,
  devBytes: 8,
  ino: 8,
  blocks: 64,
} as const;
const linuxStatA64 = {
  size: 128,
  mode: 16,
  modeBytes: 4,
  uid: 24,
  gid: 28,
  fileSize: 48,
  mtime: 88,
  dev: 0,
  devBytes: 8,
  ino: 8,
  blocks: 64,
} as const;

/** Linux (glibc and musl share these), for x86_64 or aarch64. */
export function linuxConstants(cpu: ArchName): PosixConstants {
  return {
    O_RDONLY: 0,
    O_RDWR: 2,
    O_CREAT: 0x40,
    O_EXCL: 0x80,
    O_TRUNC: 0x200,
    O_CLOEXEC: 0x80000,
    O_DIRECTORY: cpu === "aarch64" ? 0x4000 : 0x10000,
    O_NONBLOCK: 0x800,
    O_NOFOLLOW: cpu === "aarch64" ? 0x8000 : 0x20000,
    PROT_NONE: 0,
    PROT_READ: 1,
    PROT_WRITE: 2,
    MAP_SHARED: 1,
    MAP_PRIVATE: 2,
    MAP_FIXED: 0x10,
    MAP_ANONYMOUS: 0x20,
    MAP_NORESERVE: 0x4000,
    MAP_POPULATE: 0x8000,
    MADV_POPULATE_WRITE: 23,
    MADV_POPULATE_READ: 22,
    MS_ASYNC: 1,
    MS_INVALIDATE: 2,
    MS_SYNC: 4,
    IPC_CREAT: 0o1000,
    IPC_EXCL: 0o2000,
    IPC_PRIVATE: 0,
    IPC_RMID: 0,
    IPC_SET: 1,
    IPC_STAT: 2,
    SHM_RDONLY: 0o10000,
    SHM_NAME_MAX: 255,
    HAS_FALLOCATE: true,
    FTRUNCATE_ONCE: false,
    SHM_FCHMOD: true,
    SHM_MAP_PRIVATE: true,
    FSTAT_PAGE_ROUNDED: false,
    VARIADIC_ON_STACK: false,
    STAT: cpu === "aarch64" ? linuxStatA64 : linuxStatX64,
  };
}

/** macOS (from the system headers; not verified here), for x86_64 or arm64. */
export function darwinConstants(cpu: ArchName): PosixConstants {
  return {
    O_RDONLY: 0,
    O_RDWR: 2,
    O_CREAT: 0x200,
    O_EXCL: 0x800,
    O_TRUNC: 0x400,
    O_CLOEXEC: 0x1000000,
    O_DIRECTORY: 0x100000,
    O_NONBLOCK: 0x4,
    O_NOFOLLOW: 0x100,
    PROT_NONE: 0,
    PROT_READ: 1,
    PROT_WRITE: 2,
    MAP_SHARED: 1,
    MAP_PRIVATE: 2,
    MAP_FIXED: 0x10,
    MAP_ANONYMOUS: 0x1000,
    MAP_NORESERVE: 0x40,
    MAP_POPULATE: 0,
    MADV_POPULATE_WRITE: 0,
    MADV_POPULATE_READ: 0,
    MS_ASYNC: 0x1,
    MS_INVALIDATE: 0x2,
    MS_SYNC: 0x10,
    IPC_CREAT: 0o1000,
    IPC_EXCL: 0o2000,
    IPC_PRIVATE: 0,
    IPC_RMID: 0,
    IPC_SET: 1,
    IPC_STAT: 2,
    SHM_RDONLY: 0o10000,
    // PSHMNAMLEN is 31 including the leading slash.
    SHM_NAME_MAX: 30,
    HAS_FALLOCATE: false,
    FTRUNCATE_ONCE: true,
    SHM_FCHMOD: false,
    SHM_MAP_PRIVATE: false,
    FSTAT_PAGE_ROUNDED: true,
    VARIADIC_ON_STACK: cpu === "aarch64",
    // struct stat with 64-bit inodes (the default on both architectures).
    STAT: {
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
    },
  };
}

/** The constants for a given OS and CPU (Windows has none of these). */
export function posixConstantsFor(system: OsName, cpu: ArchName): PosixConstants {
  if (system === "darwin") return darwinConstants(cpu);
  return linuxConstants(cpu);
}

/** The constants for the platform this process runs on. */
export const C: PosixConstants = posixConstantsFor(os, arch);
