/**
 * What every backend hands to `SharedMemory`: one live mapping and how to let go of it.
 *
 * A segment never holds the `ArrayBuffer` over its mapping (the `SharedMemory` does), so that a
 * forgotten handle's buffer can be collected and its mapping released by a finalizer.
 *
 * @module
 */

import type { SysvStat } from "./sysv.ts";

/** The kinds of shared memory `SharedMemory` can sit on. */
export type Backend = "posix" | "sysv" | "file" | "windows";

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
   * Ends the mapping and releases OS handles. Called once, after the buffer was detached.
   * With `neutralize`, some `ArrayBuffer` beyond this module's control may still point at the
   * mapping, so the pages must be replaced by private zero pages rather than unmapped.
   */
  release(neutralize: boolean): void;
  /** Removes the name, so no one else can attach; mappings stay valid until released. */
  unlink(): void;
  /** Writes dirty pages back to the backing file (file backend). */
  flush?(): void;
  /** System V: the key the segment was created or opened with (0 for IPC_PRIVATE). */
  readonly key?: number;
  /** System V: the shmid. */
  readonly id?: number;
  /** File backend: the path as given. */
  readonly path?: string;
  /**
   * Windows: the same string in every process that maps this segment, which names the kernel
   * objects its waits sleep on (`_sync/futex_windows.ts`): `Local\name` or `Global\name`, or a file's
   * identity. Undefined elsewhere (futexes key on the memory itself).
   */
  readonly waitKey?: string;
  /** System V: `shmctl(IPC_STAT)`, decoded. */
  stat?(): SysvStat;
  /**
   * True when the mapping is `PROT_READ` (a System V `SHM_RDONLY` attachment): a write through it
   * would kill the process, so `SharedMemory` never hands it out and gives copies instead.
   */
  readonly protectedReadOnly?: boolean;
}
