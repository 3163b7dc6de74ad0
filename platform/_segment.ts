/**
 * What every backend hands to `SharedMemory`: one live mapping and how to let go of it.
 *
 * A segment never holds the `ArrayBuffer` over its mapping (the `SharedMemory` does), so that a
 * forgotten handle's buffer can be collected and its mapping released by a finalizer.
 *
 * @module
 */

/** The kinds of shared memory `SharedMemory` can sit on. */
export type Backend = "posix" | "sysv" | "file" | "windows";

/**
 * How other processes find a segment besides its name. Every backend fills every field, with
 * `undefined` where the field has no meaning for it.
 */
export interface SegmentAttributes {
  /** System V: the key (C's `key_t`, 0 for `IPC_PRIVATE`). */
  readonly key: number | undefined;
  /** System V: the shmid. */
  readonly id: number | undefined;
  /** File backend: the path as given. */
  readonly path: string | undefined;
}

/** The attributes of a segment that has none of them (named POSIX and Windows segments). */
export const NO_ATTRIBUTES: SegmentAttributes = Object.freeze({
  key: undefined,
  id: undefined,
  path: undefined,
});

/**
 * What `shmctl(IPC_STAT)` reports about a System V segment, as returned by
 * {@linkcode SharedMemory.stat}.
 *
 * @example
 * ```ts
 * import { SharedMemory, type SysvStat } from "@x/shm";
 *
 * using shm = SharedMemory.create({ backend: "sysv", size: 512 });
 * const st: SysvStat = shm.stat();
 * console.log(st.size, st.mode.toString(8), st.attachCount); // 512 600 1
 * ```
 */
export interface SysvStat {
  /** The key (`shm_perm.__key`); 0 for an IPC_PRIVATE segment, and on Linux once it was removed. */
  key: number;
  /** The shmid. */
  id: number;
  /** Size in bytes, as asked for at creation (`shm_segsz`; not rounded to pages). */
  size: number;
  /** Permission bits, `0o000`–`0o777`. */
  mode: number;
  /** Owner's user id. */
  uid: number;
  /** Owner's group id. */
  gid: number;
  /** Creator's user id. */
  cuid: number;
  /** Creator's group id. */
  cgid: number;
  /** Process id of the creator (`shm_cpid`). */
  creatorPid: number;
  /** Process id of the last `shmat` or `shmdt` (`shm_lpid`). */
  lastPid: number;
  /** Number of current attachments, in all processes (`shm_nattch`). */
  attachCount: number;
  /** Last attach time, or null if never attached. */
  attachTime: Date | null;
  /** Last detach time, or null if never detached. */
  detachTime: Date | null;
  /** Last change time (creation or `IPC_SET`). */
  changeTime: Date;
  /** True once `IPC_RMID` marked it for removal (it lives until its last detach). */
  removed: boolean;
}

/** One mapped segment, as a backend returns it. */
export interface Segment {
  readonly backend: Backend;
  /** The name (or path, or key) shown to users and put in error messages. */
  readonly name: string;
  /** Start address of the mapping. */
  readonly address: bigint;
  /** Bytes mapped; the `ArrayBuffer` covers exactly this many. */
  readonly size: number;
  readonly readOnly: boolean;
  /** True when this call created the segment (false when it attached to an existing one). */
  readonly created: boolean;
  /**
   * True when the mapping is `PROT_READ` (a System V `SHM_RDONLY` attachment, a read-only POSIX
   * segment on macOS): a write through it would kill the process, so `SharedMemory` never hands it
   * out and gives copies instead.
   */
  readonly protectedReadOnly: boolean;
  /** Key, id and path, for the backends they mean something to. */
  readonly attributes: SegmentAttributes;
  /**
   * Ends the mapping and releases OS handles. Called once, after the buffer was detached. Some
   * native job or transferred `ArrayBuffer` beyond this module's control may still point at the
   * mapping, so its range is replaced by private zero pages and quarantined (`_quarantine.ts`)
   * rather than unmapped at once.
   */
  release(): void;
  /** Removes the name, so no one else can attach; mappings stay valid until released. */
  unlink(): void;
  /**
   * Whether the name (or key, or path) still refers to this very object, and not to one someone
   * re-created under it since: checked by device and inode, or by shmid. False once it is gone.
   * Answers true where it cannot tell (see each backend).
   */
  isStillNamed(): boolean;
  /** Writes dirty pages back to the file (file backend); a `TypeError` for backends with no file. */
  flush(): void;
  /** System V: `shmctl(IPC_STAT)`, decoded; a `TypeError` for the other backends. */
  stat(): SysvStat;
  /**
   * The same string in every process that maps this segment, naming the kernel objects its waits
   * sleep on (Windows: `Local\name`, `Global\name`, or a file's identity); undefined where waits key
   * on the memory itself (Linux futexes, macOS ulocks).
   */
  waitKey(): string | undefined;
}

/** The `stat()` of a segment that is not System V. */
export function noStat(segment: Segment): never {
  throw new TypeError(
    `Cannot read the status of shared memory segment "${segment.name}": only System V segments have one ` +
      `(this one is ${segment.backend})`,
  );
}

/** The `flush()` of a segment with no file behind it. */
export function noFlush(segment: Segment): never {
  throw new TypeError(
    `Cannot flush shared memory segment "${segment.name}": only file-backed segments have a file to ` +
      `flush to (this one is ${segment.backend})`,
  );
}
