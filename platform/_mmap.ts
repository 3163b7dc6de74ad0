/**
 * The mapping helpers every POSIX backend shares: map a descriptor, retire a mapping, `fstat`,
 * reserve and populate pages, close a descriptor.
 *
 * **Retiring instead of unmapping.** A native job of the runtime (a `zlib` or `CompressionStream`
 * stream, `crypto.scrypt`, an fs read into `buf`) may still hold a raw pointer into a mapping when
 * its handle closes: the detached `ArrayBuffer` does not stop it. Unmapping would crash that job
 * (SIGSEGV), and a segment mapped later at the same address would receive its late writes. So a
 * closed mapping is never unmapped at once: its range is replaced by private anonymous pages
 * (`MAP_FIXED|MAP_ANONYMOUS|MAP_NORESERVE`), which drops the segment's pages at once; a late write
 * lands in memory nobody else sees, a late read sees zeros, and nothing else can be mapped there.
 * The range then waits in the quarantine of `_quarantine.ts` and is unmapped later (after 10 s, or
 * beyond 4,096 ranges or 1 GiB, or at once when a new mapping fails for want of address space,
 * before that mapping is tried again). A native job that still writes into a range after all that
 * is the one case left.
 *
 * @module
 */

import { addressOf, pointerAt } from "../ffi/_ffi.ts";
import { C } from "../ffi/constants.ts";
import { Errno } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import type { ShmError } from "../errors.ts";
import { osError } from "../_os_error.ts";
import { anyRetired, quarantine, sweepRetired } from "./_quarantine.ts";

const MAP_FAILED_UNSIGNED = 0xffff_ffff_ffff_ffffn;

/** Whether an `mmap`/`shmat` result is `(void *) -1`. */
export function isMapFailed(address: bigint): boolean {
  return address === MAP_FAILED_UNSIGNED || address === -1n;
}

/**
 * Ends a mapping: replaces it with private anonymous pages at the same address and quarantines
 * the range (see the module doc). The segment's pages are released at once.
 */
export function retire(address: bigint, size: number, segment: string): void {
  neutralize(address, size, segment);
  quarantine(size, () => libc().munmap(pointerAt(address), BigInt(size)));
}

/**
 * `mmap`, retried once after unmapping every retired range when the address space is exhausted.
 * Returns the address, or the errno as a negative number.
 */
function mmapRetrying(size: number, prot: number, flags: number, fd: number): bigint | number {
  const lib = libc();
  sweepRetired();
  for (let attempt = 0;; attempt++) {
    const address = addressOf(lib.mmap(null, BigInt(size), prot, flags, fd, 0n));
    if (!isMapFailed(address) && address !== 0n) return address;
    const errno = lib.errno();
    if (errno !== Errno.ENOMEM || attempt > 0 || !anyRetired()) return -errno;
    sweepRetired(true);
  }
}

/**
 * Maps `size` bytes of `fd`. Read-only mappings are private and writable (a stray write makes a
 * private copy of the page), or, with `protect`, shared and `PROT_READ` (where the OS allows no
 * private mapping: a store through that one would fault, so the caller must never hand it out as a
 * buffer); `populate` pre-faults shared pages (Linux) when they are known to be allocated already.
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
  const prot = protect ? C.PROT_READ : C.PROT_READ | C.PROT_WRITE;
  const flags = readOnly && !protect ? C.MAP_PRIVATE : C.MAP_SHARED | (populate ? C.MAP_POPULATE : 0);
  const result = mmapRetrying(size, prot, flags, fd);
  if (typeof result === "number") throw osError(-result, "mmap", action, segment);
  return result;
}

/** `shmat`, retried once after unmapping every retired range when the address space is exhausted. */
export function attachRetrying(id: number, flags: number): bigint | number {
  const lib = libc();
  sweepRetired();
  for (let attempt = 0;; attempt++) {
    const address = addressOf(lib.shmat(id, null, flags));
    if (!isMapFailed(address) && address !== 0n) return address;
    const errno = lib.errno();
    if (errno !== Errno.ENOMEM || attempt > 0 || !anyRetired()) return -errno;
    sweepRetired(true);
  }
}

/** Unmaps a mapping made by {@linkcode mapFd} at once (only for mappings never handed out). */
export function unmap(address: bigint, size: number, segment: string): void {
  const lib = libc();
  if (lib.munmap(pointerAt(address), BigInt(size)) !== 0) {
    throw osError(lib.errno(), "munmap", `unmap shared memory segment "${segment}"`, segment);
  }
}

/**
 * Replaces a mapping with private, lazily allocated zero pages at the same address: the segment's
 * pages are released, and a stale access reads zeros (or writes privately) instead of faulting.
 */
function neutralize(address: bigint, size: number, segment: string): void {
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
  /** Permission bits (`st_mode & 0o7777`). */
  mode: number;
  /** File type bits (`st_mode & S_IFMT`). */
  type: number;
  uid: number;
  gid: number;
  mtimeSeconds: number;
  /** `"dev:ino"`: the same object whatever name reached it. */
  identity: string;
  /** Bytes allocated (`st_blocks * 512`): less than `size` for a sparse object. */
  allocated: number;
}

/** `S_IFMT` and the file types this module tells apart. */
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;

// One buffer for every fstat: it is decoded right away, and JS runs one call at a time per thread.
const statBytes = new Uint8Array(256);
const statView = new DataView(statBytes.buffer);

/** `fstat(fd)`, decoded with this OS's `struct stat` layout. */
export function fileStat(fd: number, action: string, segment: string): FileStat {
  const lib = libc();
  if (lib.fstat(fd, statBytes) !== 0) throw osError(lib.errno(), "fstat", action, segment);
  const view = statView;
  const s = C.STAT;
  const rawMode = s.modeBytes === 2 ? view.getUint16(s.mode, true) : view.getUint32(s.mode, true);
  const dev = s.devBytes === 8 ? view.getBigUint64(s.dev, true) : BigInt(view.getUint32(s.dev, true));
  return {
    size: Number(view.getBigInt64(s.fileSize, true)),
    mode: rawMode & 0o7777,
    type: rawMode & S_IFMT,
    uid: view.getUint32(s.uid, true),
    gid: view.getUint32(s.gid, true),
    mtimeSeconds: Number(view.getBigInt64(s.mtime, true)),
    identity: `${dev}:${view.getBigUint64(s.ino, true)}`,
    allocated: Number(view.getBigInt64(s.blocks, true)) * 512,
  };
}

/**
 * Reserves the pages of `[0, size)` so that running out of memory is an error now, not a SIGBUS on
 * a later write. Does nothing where the OS has no `posix_fallocate`, or the file system cannot.
 * `where` names the file system in the ENOSPC hint.
 */
export function reserve(fd: number, size: number, action: string, segment: string, where: string): void {
  const fallocate = libc().posix_fallocate;
  if (!C.HAS_FALLOCATE || !fallocate) return;
  let error: number;
  do error = fallocate(fd, 0n, BigInt(size)); while (error === Errno.EINTR);
  if (error === 0) return;
  // File systems that cannot preallocate: carry on without the reservation.
  if (error === Errno.EOPNOTSUPP || error === Errno.ENOSYS || error === Errno.EINVAL) return;
  throw osError(
    error,
    "posix_fallocate",
    action,
    segment,
    error === Errno.ENOSPC ? `${where} has less than ${size} bytes free` : undefined,
  );
}

/**
 * Faults in every page of a mapping (`madvise(MADV_POPULATE_WRITE)` for a shared writable one,
 * `MADV_POPULATE_READ` otherwise), so that pages the file system cannot supply are an error now
 * rather than a SIGBUS on first touch. Kernels before 5.14 do not know the advice (EINVAL): then
 * nothing happens. Any other failure unmaps the mapping and throws (`ENOSPC` for want of pages).
 */
export function populate(
  address: bigint,
  size: number,
  write: boolean,
  action: string,
  segment: string,
  where: string,
): void {
  const lib = libc();
  const advice = write ? C.MADV_POPULATE_WRITE : C.MADV_POPULATE_READ;
  if (advice === 0 || !lib.madvise) return;
  if (lib.madvise(pointerAt(address), BigInt(size), advice) === 0) return;
  const errno = lib.errno();
  if (errno === Errno.EINVAL || errno === Errno.ENOSYS) return;
  unmap(address, size, segment);
  // EFAULT: a page would have raised SIGBUS (the file system is full); ENOMEM: out of memory.
  throw osError(
    errno === Errno.EFAULT ? Errno.ENOSPC : errno,
    "madvise",
    action,
    segment,
    `${where} could not supply the pages`,
  ) satisfies ShmError;
}

/** Closes a descriptor, ignoring errors (it is only ever one this module opened). */
export function closeFd(fd: number): void {
  libc().close(fd);
}
