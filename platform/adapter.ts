/**
 * The one interface every OS adapter implements for named segments, and the adapter for this OS,
 * chosen once at load: POSIX shared memory on Linux and macOS, kernel32 file mappings on Windows.
 *
 * @module
 */

import { os } from "../ffi/runtime.ts";
import type { Segment } from "./_segment.ts";
import { posixAdapter } from "./posix.ts";
import { windowsAdapter } from "./windows.ts";

/** Named shared memory on one OS. */
export interface PlatformAdapter {
  /** The backend name reported by `SharedMemory.backend` for named segments. */
  readonly backend: "posix" | "windows";
  /** Longest name in UTF-8 bytes (not counting a leading `/`). */
  readonly nameMax: number;
  /** A fresh random name in the style Python uses on this OS (`psm_…` or `wnsm_…`). */
  generateName(): string;
  /** Creates a new segment; `AlreadyExistsError` when the name is taken. */
  create(name: string, size: number, mode: number): Segment;
  /** Attaches to an existing segment; `NotFoundError` when there is none. */
  open(name: string, readOnly: boolean): Segment;
  /** Removes a name; `NotFoundError` when it is already gone. */
  unlink(name: string): void;
}

/** The adapter for the OS this process runs on. */
export const adapter: PlatformAdapter = os === "windows" ? windowsAdapter : posixAdapter;
