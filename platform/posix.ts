/**
 * POSIX shared memory (`shm_open` + `mmap`) on Linux and macOS.
 *
 * Create (Linux): `shm_open(O_CREAT|O_EXCL|O_RDWR|O_CLOEXEC)`, `fchmod` (so the mode is exact,
 * whatever the umask), `ftruncate`, `posix_fallocate` (so a full /dev/shm is ENOSPC now rather than
 * SIGBUS on some later write), `mmap(MAP_SHARED)` prefaulted with `MAP_POPULATE` (or, from 1 MiB,
 * `madvise(MADV_POPULATE_WRITE)`), `close`. Open: `shm_open`, `fstat`
 * for the size, `mmap`, `close`. The descriptor is never kept: the mapping outlives it. macOS differs
 * where `C` says so: no `O_CLOEXEC` on `shm_open` (XNU sets close-on-exec itself), no `fchmod` on shm
 * descriptors (so the umask applies), no `posix_fallocate`, no `MAP_POPULATE`.
 *
 * Read-only segments are opened `O_RDONLY` and, on Linux, mapped `MAP_PRIVATE` with
 * `PROT_READ|PROT_WRITE`: pages nobody wrote through this mapping show the segment live; a stray
 * write makes a private copy of the touched page, so it never reaches the segment and never kills
 * the process (a `PROT_READ` mapping would die of SIGSEGV). macOS allows only shared shm mappings:
 * there the mapping is `PROT_READ` and marked `protectedReadOnly`, and `SharedMemory` hands out
 * copies instead of the mapping itself.
 *
 * @module
 */

import { addressOf, cString, pointerAt } from "../ffi/_ffi.ts";
import { C } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { maxBufferSize } from "../ffi/runtime.ts";
import { osError, ShmError } from "../errors.ts";
import type { Segment } from "./_segment.ts";
import { sleepSync } from "../_sync/sleep.ts";
import type { PlatformAdapter } from "./adapter.ts";
import { randomHex8 } from "./_names.ts";

const MAP_FAILED_UNSIGNED = 0xffff_ffff_ffff_ffffn;

/** Whether an `mmap`/`shmat` result is `(void *) -1`. */
export function isMapFailed(address: bigint): boolean {
  return address === MAP_FAILED_UNSIGNED || address === -1n;
}

/**
 * Maps `size` bytes of `fd`. Read-only mappings are private and writable (see the module doc),
 * or, with `protect`, shared and `PROT_READ` (where the OS allows no private mapping: a store
 * through that one would fault, so the caller must never hand it out as a buffer);
 * `populate` pre-faults shared pages (Linux) when they are known to be allocated already.
 */
export function mapFd(
  fd: number,
  size: number,
  readOnly: boolean,
  populate: boolean,
  action: string,
  segment: string,
  protect = false,
): bigint {
  const lib = libc();
  const prot = protect ? C.PROT_READ : C.PROT_READ | C.PROT_WRITE;
  const flags = readOnly && !protect ? C.MAP_PRIVATE : C.MAP_SHARED | (populate ? C.MAP_POPULATE : 0);
  const result = lib.mmap(null, BigInt(size), prot, flags, fd, 0n);
  const address = addressOf(result);
  if (isMapFailed(address) || address === 0n) throw osError(lib.errno(), "mmap", action, segment);
  return address;
}

/** Unmaps a mapping made by {@linkcode mapFd}. */
export function unmap(address: bigint, size: number, segment: string): void {
  const lib = libc();
  if (lib.munmap(pointerAt(address), BigInt(size)) !== 0) {
    throw osError(lib.errno(), "munmap", `unmap shared memory segment "${segment}"`, segment);
  }
}

/**
 * Replaces a mapping with private, lazily allocated zero pages at the same address.
 *
 * Used instead of `munmap` when some `ArrayBuffer` outside this module's control may still point
 * at the mapping (the handle's buffer was transferred away, or the handle was garbage collected):
 * the segment's pages are released, and a stale access reads zeros instead of faulting.
 */
export function neutralize(address: bigint, size: number, segment: string): void {
  const lib = libc();
  const result = lib.mmap(
    pointerAt(address),
    BigInt(size),
    C.PROT_READ | C.PROT_WRITE,
    C.MAP_PRIVATE | C.MAP_ANONYMOUS | C.MAP_FIXED | C.MAP_NORESERVE,
    -1,
    0n,
  );
  if (isMapFailed(addressOf(result))) {
    throw osError(lib.errno(), "mmap", `release shared memory segment "${segment}"`, segment);
  }
}

/** What `fstat` says about a descriptor. */
export interface FileStat {
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeSeconds: number;
}

// One buffer for every fstat: it is decoded right away, and JS runs one call at a time per thread.
const statBytes = new Uint8Array(256);
const statView = new DataView(statBytes.buffer);

/** `fstat(fd)`, decoded with this OS's `struct stat` layout. */
export function fileStat(fd: number, action: string, segment: string): FileStat {
  const lib = libc();
  if (lib.fstat(fd, statBytes) !== 0) throw osError(lib.errno(), "fstat", action, segment);
  const view = statView;
  const s = C.STAT;
  return {
    size: Number(view.getBigInt64(s.fileSize, true)),
    mode: (s.modeBytes === 2 ? view.getUint16(s.mode, true) : view.getUint32(s.mode, true)) & 0o7777,
    uid: view.getUint32(s.uid, true),
    gid: view.getUint32(s.gid, true),
    mtimeSeconds: Number(view.getBigInt64(s.mtime, true)),
  };
}

/**
 * Reserves the pages of `[0, size)` so that running out of memory is an error now, not a SIGBUS on
 * a later write. Does nothing where the OS has no `posix_fallocate`, or the file system cannot.
 */
export function reserve(fd: number, size: number, action: string, segment: string): void {
  const fallocate = libc().posix_fallocate;
  if (!C.HAS_FALLOCATE || !fallocate) return;
  let error: number;
  do error = fallocate(fd, 0n, BigInt(size)); while (error === 4 /* EINTR */);
  if (error === 0) return;
  const code = osError(error, "posix_fallocate", action, segment).code;
  // File systems that cannot preallocate: carry on without the reservation.
  if (code === "EOPNOTSUPP" || code === "ENOSYS" || code === "EINVAL") return;
  throw osError(
    error,
    "posix_fallocate",
    action,
    segment,
    code === "ENOSPC"
      ? `The shared memory file system (/dev/shm on Linux) has less than ${size} bytes free`
      : undefined,
  );
}

/** Segments from this size on are prefaulted with `madvise(MADV_POPULATE_WRITE)` after `mmap`. */
const PREFAULT_WITH_MADVISE = 1 << 20;

/**
 * Faults in every page of a fresh shared mapping for writing, so filling it takes no page faults.
 * Kernels before 5.14 do not know the advice (EINVAL): the pages then fault in on first touch, as
 * they would anyway. Any other failure means the pages cannot be had: the mapping is undone.
 */
function prefault(address: bigint, size: number, action: string, segment: string): void {
  const lib = libc();
  if (lib.madvise!(pointerAt(address), BigInt(size), C.MADV_POPULATE_WRITE) === 0) return;
  const errno = lib.errno();
  const error = osError(errno, "madvise", action, segment);
  if (error.code === "EINVAL" || error.code === "ENOSYS") return;
  unmap(address, size, segment);
  throw osError(
    errno,
    "madvise",
    action,
    segment,
    "The shared memory file system could not supply the pages",
  );
}

/** Closes a descriptor, ignoring errors (it is only ever one this module opened). */
export function closeFd(fd: number): void {
  libc().close(fd);
}

function shmPath(name: string): Uint8Array {
  return cString("/" + name);
}

class PosixSegment implements Segment {
  readonly backend = "posix" as const;
  constructor(
    readonly name: string,
    readonly address: bigint,
    readonly size: number,
    readonly readOnly: boolean,
    readonly created: boolean,
    /** A `PROT_READ` shared mapping (read-only on macOS, which has no private shm mappings). */
    readonly protectedReadOnly: boolean = false,
  ) {}

  release(neutralizePages: boolean): void {
    if (neutralizePages) neutralize(this.address, this.size, this.name);
    else unmap(this.address, this.size, this.name);
  }

  unlink(): void {
    unlinkPosix(this.name);
  }
}

/** Creates, sizes, reserves and maps a new POSIX segment; removes it again if any step fails. */
export function createPosix(name: string, size: number, mode: number): Segment {
  const lib = libc();
  const action = `create shared memory segment "${name}"`;
  const path = shmPath(name);
  const fd = lib.shm_open(path, C.O_CREAT | C.O_EXCL | C.O_RDWR | C.O_CLOEXEC, mode);
  if (fd < 0) throw osError(lib.errno(), "shm_open", action, name);
  try {
    if (C.SHM_FCHMOD && lib.fchmod(fd, mode) !== 0) throw osError(lib.errno(), "fchmod", action, name);
    if (lib.ftruncate(fd, BigInt(size)) !== 0) throw osError(lib.errno(), "ftruncate", action, name);
    reserve(fd, size, action, name);
    // Large segments are prefaulted with madvise, measured ~1.25x faster than MAP_POPULATE here.
    const late = size >= PREFAULT_WITH_MADVISE && C.MADV_POPULATE_WRITE !== 0 && lib.madvise !== undefined;
    const address = mapFd(fd, size, false, !late, action, name);
    if (late) prefault(address, size, action, name);
    return new PosixSegment(name, address, size, false, true);
  } catch (error) {
    lib.shm_unlink(path);
    throw error;
  } finally {
    lib.close(fd);
  }
}

/** Attaches to an existing POSIX segment, at its current size. */
export function openPosix(name: string, readOnly: boolean, maxSize: number): Segment {
  const lib = libc();
  const action = `open shared memory segment "${name}"${readOnly ? " read-only" : ""}`;
  const fd = lib.shm_open(shmPath(name), (readOnly ? C.O_RDONLY : C.O_RDWR) | C.O_CLOEXEC, 0);
  if (fd < 0) throw osError(lib.errno(), "shm_open", action, name);
  try {
    let { size } = fileStat(fd, action, name);
    // A creator sizes its segment right after shm_open: give one caught in between a moment.
    for (let waited = 0; size === 0 && waited < 100; waited += 5) {
      sleepSync(5);
      size = fileStat(fd, action, name).size;
    }
    if (size === 0) {
      throw new ShmError(
        `Cannot ${action}: it is empty (size 0); the process that created it has not sized it yet`,
        { code: "EINVAL", errno: 22, syscall: "fstat", segment: name },
      );
    }
    if (size > maxSize) {
      throw new RangeError(
        `Cannot ${action}: its ${size} bytes are more than the ${maxSize} this runtime can map`,
      );
    }
    // macOS maps shm MAP_SHARED only: read-only is then PROT_READ, and SharedMemory hands out copies.
    const protectedReadOnly = readOnly && !C.SHM_MAP_PRIVATE;
    const address = mapFd(fd, size, readOnly, false, action, name, protectedReadOnly);
    return new PosixSegment(name, address, size, readOnly, false, protectedReadOnly);
  } finally {
    lib.close(fd);
  }
}

/** Removes a POSIX segment's name. */
export function unlinkPosix(name: string): void {
  const lib = libc();
  if (lib.shm_unlink(shmPath(name)) !== 0) {
    throw osError(lib.errno(), "shm_unlink", `unlink shared memory segment "${name}"`, name);
  }
}

/** The POSIX adapter for named segments. */
export const posixAdapter: PlatformAdapter = {
  backend: "posix",
  nameMax: C.SHM_NAME_MAX,
  generateName: () => `psm_${randomHex8()}`,
  create: createPosix,
  open: (name, readOnly) => openPosix(name, readOnly, maxBufferSize),
  unlink: unlinkPosix,
};
