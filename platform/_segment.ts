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
}
