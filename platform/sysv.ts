/**
 * System V shared memory (`shmget` + `shmat`) on Linux and macOS.
 *
 * Create: `shmget(key, size, IPC_CREAT|IPC_EXCL|mode)` then `shmat(id, NULL, 0)`; if the attach fails
 * the fresh segment is removed again. Open: `shmget(key, 0, 0)` (by key) or the id itself, then
 * `shmctl(IPC_STAT)` for the size, then `shmat`. SysV permissions ignore the umask, so `mode` is exact.
 *
 * Read-only attachments use `SHM_RDONLY`, so the kernel enforces them: the pages are mapped
 * `PROT_READ`, and a store to them kills the process with SIGSEGV. Unlike a POSIX or file segment,
 * a SysV segment has no file descriptor an unprivileged process can `mmap` `MAP_PRIVATE`, so no
 * copy-on-write mapping is possible: such segments are marked `protectedReadOnly`, and
 * `SharedMemory` never wraps them in a buffer the caller can write to.
 *
 * `IPC_RMID` (our `unlink`) only marks a segment: it lives on, usable by those attached, until its
 * last detach; its key is freed at once.
 *
 * @module
 */

import { cString } from "../ffi/_ffi.ts";
import { C } from "../ffi/constants.ts";
import { Errno } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { maxBufferSize, os } from "../ffi/runtime.ts";
import { NotFoundError, type ShmError } from "../errors.ts";
import { osError } from "../_os_error.ts";
import { noFlush, type Segment, type SegmentAttributes, type SysvStat } from "./_segment.ts";

export type { SysvStat } from "./_segment.ts";
import { attachRetrying, retire } from "./_mmap.ts";
import type { SegmentBackend } from "./backend.ts";
import { checkBoolean, checkMode, checkSize, describe } from "../_validate.ts";
import { DEFAULT_MODE } from "./_names.ts";

/** Byte offsets of `struct shmid_ds` on one platform. */
export interface ShmidDsLayout {
  readonly size: number;
  readonly key: number;
  readonly uid: number;
  readonly gid: number;
  readonly cuid: number;
  readonly cgid: number;
  /** `mode` is read as a 16-bit value on every platform (the low half of a 32-bit one elsewhere). */
  readonly mode: number;
  readonly segsz: number;
  readonly atime: number;
  readonly dtime: number;
  readonly ctime: number;
  readonly cpid: number;
  readonly lpid: number;
  readonly nattch: number;
  readonly nattchBytes: 2 | 8;
}

/** Linux glibc x86_64 (checked on this machine); the generic 64-bit layout of aarch64 matches it. */
export const LINUX_SHMID_DS: ShmidDsLayout = {
  size: 112,
  key: 0,
  uid: 4,
  gid: 8,
  cuid: 12,
  cgid: 16,
  mode: 20,
  segsz: 48,
  atime: 56,
  dtime: 64,
  ctime: 72,
  cpid: 80,
  lpid: 84,
  nattch: 88,
  nattchBytes: 8,
};

/**
 * macOS, from the system headers (`#pragma pack(4)`, `ipc_perm` with the key last; `shmatt_t` is
 * an unsigned short). Not verified on a Mac.
 */
export const DARWIN_SHMID_DS: ShmidDsLayout = {
  size: 76,
  uid: 0,
  gid: 4,
  cuid: 8,
  cgid: 12,
  mode: 16,
  key: 20,
  segsz: 24,
  lpid: 32,
  cpid: 36,
  nattch: 40,
  nattchBytes: 2,
  atime: 44,
  dtime: 52,
  ctime: 60,
};

const LAYOUT: ShmidDsLayout = os === "darwin" ? DARWIN_SHMID_DS : LINUX_SHMID_DS;
/** `SHM_DEST` in `shm_perm.mode`: marked by IPC_RMID (Linux and macOS). */
const SHM_DEST = 0o1000;

/** The key as `ipcs` prints it: `0x` and eight hex digits. */
export function keyHex(key: number): string {
  return "0x" + (key >>> 0).toString(16).padStart(8, "0");
}

function label(key: number, id: number): string {
  return key === 0 ? `shmid ${id}` : keyHex(key);
}

/** `osError`, except that the codes listed mean "no such segment" here. */
function sysvError(
  errno: number,
  syscall: string,
  action: string,
  segment: string,
  missing: readonly string[] = ["EINVAL", "EIDRM"],
  hint?: string,
): ShmError {
  const error = osError(errno, syscall, action, segment, hint);
  if (!missing.includes(error.code)) return error;
  return new NotFoundError(error.message, { code: error.code, errno, syscall, segment });
}

/** Decodes a `struct shmid_ds`. */
export function decodeShmidDs(raw: Uint8Array, id: number, layout: ShmidDsLayout = LAYOUT): SysvStat {
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const time = (at: number) => Number(v.getBigInt64(at, true));
  const when = (seconds: number) => (seconds === 0 ? null : new Date(seconds * 1000));
  const mode = v.getUint16(layout.mode, true);
  return {
    key: v.getInt32(layout.key, true),
    id,
    size: Number(v.getBigUint64(layout.segsz, true)),
    mode: mode & 0o777,
    uid: v.getUint32(layout.uid, true),
    gid: v.getUint32(layout.gid, true),
    cuid: v.getUint32(layout.cuid, true),
    cgid: v.getUint32(layout.cgid, true),
    creatorPid: v.getInt32(layout.cpid, true),
    lastPid: v.getInt32(layout.lpid, true),
    attachCount: layout.nattchBytes === 8
      ? Number(v.getBigUint64(layout.nattch, true))
      : v.getUint16(layout.nattch, true),
    attachTime: when(time(layout.atime)),
    detachTime: when(time(layout.dtime)),
    changeTime: new Date(time(layout.ctime) * 1000),
    removed: (mode & SHM_DEST) !== 0,
  };
}

/** `shmctl(id, IPC_STAT)`; a missing or removed id is a NotFoundError. */
export function statSysv(id: number, action: string, segment: string): SysvStat {
  const lib = libc();
  const raw = new Uint8Array(Math.max(LAYOUT.size, 128));
  if (lib.shmctl(id, C.IPC_STAT, raw) !== 0) {
    throw sysvError(lib.errno(), "shmctl(IPC_STAT)", action, segment);
  }
  return decodeShmidDs(raw, id);
}

/** Marks a segment for removal (`IPC_RMID`); it lives on until its last detach. */
export function removeSysv(id: number, segment: string): void {
  const lib = libc();
  if (lib.shmctl(id, C.IPC_RMID, null) !== 0) {
    throw sysvError(lib.errno(), "shmctl(IPC_RMID)", `remove System V segment ${segment}`, segment);
  }
}

/** The kernel's largest System V segment (`/proc/sys/kernel/shmmax`), or undefined where unknown. */
export function readShmmax(): bigint | undefined {
  if (os !== "linux") return undefined;
  const lib = libc();
  const fd = lib.open(cString("/proc/sys/kernel/shmmax"), C.O_RDONLY | C.O_CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    const buf = new Uint8Array(64);
    const n = Number(lib.read(fd, buf, 64n));
    if (n <= 0) return undefined;
    return BigInt(new TextDecoder().decode(buf.subarray(0, n)).trim());
  } catch {
    return undefined;
  } finally {
    lib.close(fd);
  }
}

function attach(id: number, readOnly: boolean, action: string, segment: string): bigint {
  const result = attachRetrying(id, readOnly ? C.SHM_RDONLY : 0);
  if (typeof result === "number") throw sysvError(-result, "shmat", action, segment);
  return result;
}

class SysvSegment implements Segment {
  readonly backend = "sysv" as const;
  readonly name: string;
  readonly attributes: SegmentAttributes;
  readonly key: number;
  readonly id: number;
  readonly address: bigint;
  readonly size: number;
  readonly readOnly: boolean;
  readonly created: boolean;
  constructor(key: number, id: number, address: bigint, size: number, readOnly: boolean, created: boolean) {
    this.key = key;
    this.id = id;
    this.address = address;
    this.size = size;
    this.readOnly = readOnly;
    this.created = created;
    this.name = label(key, id);
    this.attributes = Object.freeze({ key, id, path: undefined });
  }

  /** Read-only attachments are `SHM_RDONLY`, so `PROT_READ`: there is no private copy-on-write mapping. */
  get protectedReadOnly(): boolean {
    return this.readOnly;
  }

  release(): void {
    // Replacing the pages unmaps the attachment, which the kernel counts as a detach.
    retire(this.address, this.size, this.name);
  }

  unlink(): void {
    removeSysv(this.id, this.name);
  }

  /** `IPC_RMID` goes by shmid, never by key: true while this shmid exists, is not removed, and has our key. */
  isStillNamed(): boolean {
    try {
      const st = statSysv(this.id, `check System V segment ${this.name}`, this.name);
      return !st.removed && st.key === this.key;
    } catch {
      return false;
    }
  }

  flush(): void {
    noFlush(this);
  }

  stat(): SysvStat {
    return statSysv(this.id, `read the status of System V segment ${this.name}`, this.name);
  }

  waitKey(): undefined {
    return undefined;
  }
}

/** Creates a new segment for `key` (0: IPC_PRIVATE) without attaching it; returns its shmid. */
export function makeSysv(key: number, size: number, mode: number, action: string): number {
  const lib = libc();
  const segment = key === 0 ? "IPC_PRIVATE" : keyHex(key);
  const id = lib.shmget(key, BigInt(size), C.IPC_CREAT | C.IPC_EXCL | mode);
  if (id >= 0) return id;
  const errno = lib.errno();
  const error = osError(errno, "shmget", action, segment);
  if (error.code === "EINVAL") {
    const max = readShmmax();
    const limit = max === undefined
      ? "the system's limit (SHMMAX; kern.sysv.shmmax on macOS)"
      : `SHMMAX, ${max} bytes (/proc/sys/kernel/shmmax)`;
    throw new RangeError(`Cannot ${action}: size ${size} is larger than ${limit}`, { cause: error });
  }
  if (error.code === "ENOSPC") {
    throw osError(
      errno,
      "shmget",
      action,
      segment,
      "The system-wide limit on System V segments (SHMMNI) or on their total size (SHMALL) is reached",
    );
  }
  throw error;
}

/** The action of creating the segment of `key`, as error messages say it. */
export function sysvCreateAction(key: number): string {
  return `create System V segment ${key === 0 ? "(IPC_PRIVATE)" : `with key ${keyHex(key)}`}`;
}

/**
 * Creates a new segment of `size` zeroed bytes for `key` (0: IPC_PRIVATE) and attaches it.
 * The caller has already refused an explicit key 0.
 */
export function createSysv(key: number, size: number, mode: number): Segment {
  const lib = libc();
  const segment = key === 0 ? "IPC_PRIVATE" : keyHex(key);
  const action = sysvCreateAction(key);
  const id = makeSysv(key, size, mode, action);
  try {
    const address = attach(id, false, action, segment);
    return new SysvSegment(key, id, address, size, false, true);
  } catch (error) {
    lib.shmctl(id, C.IPC_RMID, null);
    throw error;
  }
}

function attachExisting(
  id: number,
  st: SysvStat,
  readOnly: boolean,
  action: string,
  segment: string,
): Segment {
  if (st.removed) {
    throw new NotFoundError(
      `Cannot ${action}: it was removed (IPC_RMID) and lives only until its last detach`,
      { code: "EIDRM", errno: Errno.EIDRM, syscall: "shmctl(IPC_STAT)", segment },
    );
  }
  if (st.size > maxBufferSize) {
    throw new RangeError(
      `Cannot ${action}: its ${st.size} bytes are more than the ${maxBufferSize} this runtime can map`,
    );
  }
  const address = attach(id, readOnly, action, segment);
  return new SysvSegment(st.key, id, address, st.size, readOnly, false);
}

/** Attaches to the existing segment of `key`, at its size. */
export function openSysvKey(key: number, readOnly: boolean): Segment {
  const lib = libc();
  const segment = keyHex(key);
  const action = `open System V segment with key ${segment}${readOnly ? " read-only" : ""}`;
  const id = lib.shmget(key, 0n, 0);
  if (id < 0) throw sysvError(lib.errno(), "shmget", action, segment, ["ENOENT", "EIDRM"]);
  return attachExisting(id, statSysv(id, action, segment), readOnly, action, segment);
}

/** Attaches to the existing segment `id`, at its size. */
export function openSysvId(id: number, readOnly: boolean): Segment {
  const segment = `shmid ${id}`;
  const action = `open System V segment ${segment}${readOnly ? " read-only" : ""}`;
  return attachExisting(id, statSysv(id, action, segment), readOnly, action, segment);
}

/** A System V key: a signed 32-bit integer, never 0 (IPC_PRIVATE) when given explicitly. */
function checkKey(key: unknown, action: string): number {
  if (typeof key !== "number") {
    throw new TypeError(`Cannot ${action}: key must be a 32-bit integer (C's key_t), got ${describe(key)}`);
  }
  if (!Number.isInteger(key) || key < -(2 ** 31) || key >= 2 ** 31) {
    throw new RangeError(
      `Cannot ${action}: key must be a signed 32-bit integer, got ${key}` +
        (Number.isInteger(key) && key >= 2 ** 31 && key < 2 ** 32
          ? ` (an unsigned key such as ipcs prints is accepted as \`${key} | 0\`)`
          : ""),
    );
  }
  if (key === 0) {
    throw new RangeError(
      `Cannot ${action}: key 0 is IPC_PRIVATE; leave the key out for a private segment (a key computed as 0 ` +
        `is refused so that it never makes one by accident)`,
    );
  }
  return key;
}

/** A shmid: a non-negative 32-bit integer. */
function checkId(id: unknown, action: string): number {
  if (typeof id !== "number") {
    throw new TypeError(`Cannot ${action}: id must be a shmid number, got ${describe(id)}`);
  }
  if (!Number.isInteger(id) || id < 0 || id >= 2 ** 31) {
    throw new RangeError(`Cannot ${action}: id must be a non-negative 32-bit integer, got ${id}`);
  }
  return id;
}

/** Exactly one of `key` or `id`, checked. */
function keyOrId(o: Readonly<Record<string, unknown>>, action: string): { key: number } | { id: number } {
  if ((o.key === undefined) === (o.id === undefined)) {
    throw new TypeError(`Cannot ${action}: give exactly one of key or id`);
  }
  return o.key !== undefined ? { key: checkKey(o.key, action) } : { id: checkId(o.id, action) };
}

/** System V shared memory (Linux, macOS). */
export const sysvBackend: SegmentBackend = {
  name: "sysv",
  create(o) {
    const action = "create System V shared memory segment";
    const key = o.key === undefined ? 0 : checkKey(o.key, action);
    const size = checkSize(o.size, action);
    const mode = o.mode === undefined ? DEFAULT_MODE : checkMode(o.mode, action);
    const unlinkOnDispose = o.unlinkOnDispose === undefined
      ? true
      : checkBoolean(o.unlinkOnDispose, "unlinkOnDispose", action);
    return { segment: createSysv(key, size, mode), unlinkOnDispose };
  },
  open(o) {
    const action = "open System V shared memory segment";
    const readOnly = checkBoolean(o.readOnly, "readOnly", action);
    const which = keyOrId(o, action);
    return "key" in which ? openSysvKey(which.key, readOnly) : openSysvId(which.id, readOnly);
  },
  unlink(o) {
    const action = "remove System V shared memory segment";
    const which = keyOrId(o, action);
    if ("id" in which) return removeSysv(which.id, `shmid ${which.id}`);
    const lib = libc();
    const id = lib.shmget(which.key, 0n, 0);
    if (id < 0) throw sysvError(lib.errno(), "shmget", action, keyHex(which.key), ["ENOENT", "EIDRM"]);
    removeSysv(id, keyHex(which.key));
  },
};
