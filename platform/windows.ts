/**
 * Windows named shared memory through kernel32 (`CreateFileMappingW`, `MapViewOfFile`).
 *
 * @module
 */

import type { PlatformAdapter } from "./adapter.ts";
import type { Segment } from "./_segment.ts";
import { randomHex8 } from "./_names.ts";

function unsupported(): never {
  throw new Error("Cannot use shared memory on Windows yet: the kernel32 adapter is not written");
}

/** The Windows adapter for named segments. */
export const windowsAdapter: PlatformAdapter = {
  backend: "windows",
  nameMax: 255,
  generateName: () => `wnsm_${randomHex8()}`,
  create: (): Segment => unsupported(),
  open: (): Segment => unsupported(),
  unlink: (): void => unsupported(),
};

/** Creates a file of `size` bytes at `path` and maps it (the file backend on Windows). */
export function createWindowsFile(_path: string, _size: number, _mode: number): Segment {
  return unsupported();
}

/** Maps an existing file (the file backend on Windows). */
export function openWindowsFile(_path: string, _readOnly: boolean): Segment {
  return unsupported();
}
