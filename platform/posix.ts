/**
 * POSIX shared memory (`shm_open` + `mmap`) on Linux and macOS.
 *
 * Create (Linux): `shm_open(O_CREAT|O_EXCL|O_RDWR|O_CLOEXEC)`, `fchmod` (so the mode is exact,
 * whatever the umask), `ftruncate`, `posix_fallocate` (so a full /dev/shm is ENOSPC now rather than
 * SIGBUS on some later write), `mmap(MAP_SHARED)` prefaulted with `MAP_POPULATE` (or, from 1 MiB,
 * `madvise(MADV_POPULATE_WRITE)`), `close`. Open: `shm_open`, `fstat`
 * for the size, `mmap`, `close`; a sparse segment (made by a peer with `ftruncate` alone, or caught
 * before its creator reserved it) is reserved with `posix_fallocate` by a writer and populated with
 * `MADV_POPULATE_READ` by a reader, so a full /dev/shm is `ENOSPC` at open, never SIGBUS later. The descriptor is never kept: the mapping outlives it. macOS differs
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

import { cString } from "../ffi/_ffi.ts";
import { C } from "../ffi/constants.ts";
import { Errno } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { maxBufferSize, os } from "../ffi/runtime.ts";
import { errnoError, osError } from "../_os_error.ts";
import { NO_ATTRIBUTES, noFlush, noStat, type Segment, type SegmentAttributes } from "./_segment.ts";
import { sleepSync } from "../_sync/sleep.ts";
import type { SegmentBackend } from "./backend.ts";
import { createNamed, openArguments, randomHex8 } from "./_names.ts";
import { checkName } from "../_validate.ts";
import { fileStat, mapFd, populate, reserve, retire } from "./_mmap.ts";

/** Segments from this size on are prefaulted with `madvise(MADV_POPULATE_WRITE)` after `mmap`. */
const PREFAULT_WITH_MADVISE = 1 << 20;
const SHM_FS = "The shared memory file system (/dev/shm on Linux)";

function shmPath(name: string): Uint8Array {
  return cString("/" + name);
}

/**
 * `"dev:ino"` of what `name` names now, or undefined when nothing does. Without read access to it,
 * Linux looks it up through `/dev/shm` with `O_PATH`, which needs none.
 */
export function posixIdentity(name: string): string | undefined {
  const lib = libc();
  const action = `check shared memory segment "${name}"`;
  let fd = lib.shm_open(shmPath(name), C.O_RDONLY | C.O_CLOEXEC, 0);
  if (fd < 0 && lib.errno() === Errno.EACCES && os === "linux") {
    fd = lib.open(cString("/dev/shm/" + name), LINUX_O_PATH | C.O_CLOEXEC | C.O_NOFOLLOW, 0);
  }
  if (fd < 0) return undefined;
  try {
    return fileStat(fd, action, name).identity;
  } finally {
    lib.close(fd);
  }
}

/** Linux `O_PATH` (the same on x86_64 and aarch64). */
const LINUX_O_PATH = 0x200000;

class PosixSegment implements Segment {
  readonly backend = "posix" as const;
  readonly attributes: SegmentAttributes = NO_ATTRIBUTES;
  readonly name: string;
  readonly address: bigint;
  readonly size: number;
  readonly readOnly: boolean;
  readonly created: boolean;
  /** A `PROT_READ` shared mapping (read-only on macOS, which has no private shm mappings). */
  readonly protectedReadOnly: boolean;
  /** `"dev:ino"` of the object mapped. */
  readonly identity: string;
  constructor(
    name: string,
    address: bigint,
    size: number,
    readOnly: boolean,
    created: boolean,
    protectedReadOnly: boolean,
    identity: string,
  ) {
    this.name = name;
    this.address = address;
    this.size = size;
    this.readOnly = readOnly;
    this.created = created;
    this.protectedReadOnly = protectedReadOnly;
    this.identity = identity;
  }

  release(): void {
    retire(this.address, this.size, this.name);
  }

  unlink(): void {
    unlinkPosix(this.name);
  }

  /** Compares device and inode (macOS reports none for shm objects: there it cannot tell, and says true). */
  isStillNamed(): boolean {
    return posixIdentity(this.name) === this.identity;
  }

  flush(): void {
    noFlush(this);
  }

  stat(): never {
    return noStat(this);
  }

  waitKey(): undefined {
    return undefined;
  }
}

/**
 * Creates a new POSIX segment of `size` reserved bytes with exactly `mode` and returns its open
 * descriptor; removes it again if any step fails. The caller maps (or not) and closes the descriptor.
 */
export function makePosix(name: string, size: number, mode: number, action: string): number {
  const lib = libc();
  const path = shmPath(name);
  const fd = lib.shm_open(path, C.O_CREAT | C.O_EXCL | C.O_RDWR | C.O_CLOEXEC, mode);
  if (fd < 0) throw osError(lib.errno(), "shm_open", action, name);
  try {
    if (C.SHM_FCHMOD && lib.fchmod(fd, mode) !== 0) throw osError(lib.errno(), "fchmod", action, name);
    if (lib.ftruncate(fd, BigInt(size)) !== 0) throw osError(lib.errno(), "ftruncate", action, name);
    reserve(fd, size, action, name, SHM_FS);
    return fd;
  } catch (error) {
    lib.close(fd);
    lib.shm_unlink(path);
    throw error;
  }
}

/** Creates, sizes, reserves and maps a new POSIX segment; removes it again if any step fails. */
export function createPosix(name: string, size: number, mode: number): Segment {
  const lib = libc();
  const action = `create shared memory segment "${name}"`;
  const fd = makePosix(name, size, mode, action);
  try {
    const { identity } = fileStat(fd, action, name);
    // Large segments are prefaulted with madvise, measured ~1.25x faster than MAP_POPULATE here.
    const late = size >= PREFAULT_WITH_MADVISE && C.MADV_POPULATE_WRITE !== 0 && lib.madvise !== undefined;
    const address = mapFd(fd, size, false, !late, action, name);
    if (late) populate(address, size, true, action, name, SHM_FS);
    return new PosixSegment(name, address, size, false, true, false, identity);
  } catch (error) {
    lib.shm_unlink(shmPath(name));
    throw error;
  } finally {
    lib.close(fd);
  }
}

/** Attaches to an existing POSIX segment, at its current size. */
export function openPosix(name: string, readOnly: boolean, maxSize: number = maxBufferSize): Segment {
  const lib = libc();
  const action = `open shared memory segment "${name}"${readOnly ? " read-only" : ""}`;
  const fd = lib.shm_open(shmPath(name), (readOnly ? C.O_RDONLY : C.O_RDWR) | C.O_CLOEXEC, 0);
  if (fd < 0) throw osError(lib.errno(), "shm_open", action, name);
  try {
    let st = fileStat(fd, action, name);
    // A creator sizes its segment right after shm_open: give one caught in between a moment.
    for (let waited = 0; st.size === 0 && waited < 100; waited += 5) {
      sleepSync(5);
      st = fileStat(fd, action, name);
    }
    const { size } = st;
    if (size === 0) {
      throw errnoError(
        "EINVAL",
        "fstat",
        action,
        "it is empty (size 0); the process that created it has not sized it yet",
        name,
      );
    }
    if (size > maxSize) {
      throw new RangeError(
        `Cannot ${action}: its ${size} bytes are more than the ${maxSize} this runtime can map`,
      );
    }
    // Sparse (a peer sized it with ftruncate alone, or its creator has not reserved it yet): a writer
    // reserves the holes, a reader faults them in below; either way a full /dev/shm is ENOSPC here.
    const sparse = st.allocated < size;
    if (sparse && !readOnly) reserve(fd, size, action, name, SHM_FS);
    // macOS maps shm MAP_SHARED only: read-only is then PROT_READ, and SharedMemory hands out copies.
    const protectedReadOnly = readOnly && !C.SHM_MAP_PRIVATE;
    const address = mapFd(fd, size, readOnly, false, action, name, protectedReadOnly);
    if (sparse && readOnly) populate(address, size, false, action, name, SHM_FS);
    return new PosixSegment(name, address, size, readOnly, false, protectedReadOnly, st.identity);
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

/** Named POSIX shared memory (Linux, macOS). */
export const posixBackend: SegmentBackend & { readonly nameMax: number; generateName(): string } = {
  name: "posix",
  nameMax: C.SHM_NAME_MAX,
  generateName: () => `psm_${randomHex8()}`,
  create(o, action) {
    return createNamed(o, action, {
      nameMax: C.SHM_NAME_MAX,
      generateName: this.generateName,
      make: createPosix,
    });
  },
  open(o, action) {
    return openPosix(...openArguments(o, action, C.SHM_NAME_MAX));
  },
  unlink(o, action) {
    unlinkPosix(checkName(o.name, action, C.SHM_NAME_MAX));
  },
};
