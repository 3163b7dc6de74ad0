/**
 * Windows shared memory through kernel32: named, pagefile-backed file mappings for
 * `SharedMemory`, and file-backed mappings for the file backend.
 *
 * - **Create**: `CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, size, name)`. The
 *   pages are committed (charged to the paging file) here, so a shortage is an error now, never a
 *   crash later. On a taken name Windows returns a handle to the existing object and sets
 *   `ERROR_ALREADY_EXISTS`: that handle is closed at once and an `AlreadyExistsError` thrown.
 * - **Open**: `OpenFileMappingW`, `MapViewOfFile` of the whole object, `VirtualQuery` for its size,
 *   which Windows rounds up to whole pages (4 KiB): `size` of an opened segment is page-rounded, as
 *   in Python.
 * - **Read-only**: the object is opened with `FILE_MAP_READ` only and mapped `FILE_MAP_COPY`, a
 *   copy-on-write view: untouched pages show the segment live; a stray write makes a private copy of
 *   the page, never reaches the segment and never crashes the process (a `FILE_MAP_READ` view would
 *   raise an access violation).
 * - **Names**: a name without a prefix lives in the session namespace (`Local\`), as Python's do;
 *   `Global\name` asks for the global one (creating there needs `SeCreateGlobalPrivilege`). Names are
 *   passed as UTF-16. `\` is allowed only after `Local` or `Global`.
 * - **Lifetime**: Windows has no unlink. A mapping object lives while any process holds a handle or a
 *   view, and its name goes with its last handle. Each segment keeps its handle until `release()`,
 *   so the name stays openable while any process has it open. `unlink()` does nothing; see
 *   {@linkcode windowsBackend}.
 * - **Release**: the view is unmapped and the same range is at once reserved and committed as
 *   private zero pages (`VirtualAlloc`), so a native job or stale `ArrayBuffer` still pointing there
 *   reads zeros and writes privately instead of faulting; the range is freed later (`VirtualFree`,
 *   see `_quarantine.ts`). (Another thread could in principle take the range in the microseconds
 *   between the two calls; `VirtualAlloc` then fails and nothing more can be done.)
 * - **Mode**: ignored. Permission bits have no Windows equivalent here: objects get the creator's
 *   default security (the same user, SYSTEM and administrators), as Python's do.
 *
 * @module
 */

import { addressOf, type Pointer, pointerAt, wideString } from "../ffi/_ffi.ts";
import { handleValue, INVALID_HANDLE_VALUE, type Kernel32, kernel32, W } from "../ffi/kernel32.ts";
import { maxBufferSize } from "../ffi/runtime.ts";
import { WinError } from "../ffi/winerror.ts";
import { ShmError } from "../errors.ts";
import { osError as winError } from "../_os_error.ts";
import type { SegmentBackend } from "./backend.ts";
import { noFlush, noStat, type Segment, type SegmentAttributes } from "./_segment.ts";
import { createNamed, openArguments, randomHex8 } from "./_names.ts";
import { anyRetired, quarantine, sweepRetired } from "./_quarantine.ts";
import { checkName } from "../_validate.ts";

/**
 * The kernel object name for a segment name: `Global\…` and `Local\…` are kept, anything else is
 * put in the session namespace (`Local\…`), which is where Python's unprefixed names live too.
 *
 * @throws {TypeError} for a `\` anywhere but after the prefix, or a name longer than `MAX_PATH`
 * UTF-16 code units; thrown before any system call.
 */
export function objectName(name: string, action: string): string {
  const prefix = /^(global|local)\\/i.exec(name);
  const bare = prefix ? name.slice(prefix[0].length) : name;
  if (bare.length === 0) throw new TypeError(`Cannot ${action}: the name has a prefix but nothing after it`);
  if (bare.includes("\\")) {
    throw new TypeError(
      `Cannot ${action}: the name ${JSON.stringify(name)} contains "\\" (allowed only after Local or Global)`,
    );
  }
  // Object names are case-sensitive (in Wine the prefix too): spell the prefix the canonical way.
  const full = (prefix?.[1]?.toLowerCase() === "global" ? "Global\\" : "Local\\") + bare;
  if (full.length > W.NAME_MAX_UNITS) {
    throw new TypeError(
      `Cannot ${action}: the name is ${full.length} UTF-16 code units long with its prefix, more than the ` +
        `${W.NAME_MAX_UNITS} Windows allows`,
    );
  }
  return full;
}

/** A byte count as the `[high, low]` DWORD pair kernel32 takes for sizes and offsets. */
export function dwordPair(size: number): [high: number, low: number] {
  return [Math.floor(size / 2 ** 32), size % 2 ** 32];
}

function closeHandle(k: Kernel32, handle: bigint): void {
  if (handle !== 0n && handle !== INVALID_HANDLE_VALUE) k.CloseHandle(handle);
}

/** The size of the region a view occupies, from `VirtualQuery` (whole pages). */
function regionSize(k: Kernel32, view: Pointer, call: string, action: string, segment: string): number {
  const info = new Uint8Array(W.MBI_SIZE);
  const written = k.VirtualQuery(view, info, BigInt(W.MBI_SIZE));
  if (Number(written) === 0) throw winError(k.GetLastError(), call, action, segment);
  return Number(new DataView(info.buffer).getBigUint64(W.MBI_REGION_SIZE, true));
}

/** A view of a file mapping, and the handles that must live as long as it does. */
class WindowsSegment implements Segment {
  #mapping: bigint;
  #file: bigint;
  #waitKey: string | undefined;
  readonly protectedReadOnly = false;
  readonly attributes: SegmentAttributes;
  readonly backend: "windows" | "file";
  readonly name: string;
  readonly address: bigint;
  readonly size: number;
  readonly readOnly: boolean;
  readonly created: boolean;
  readonly path: string | undefined;
  constructor(
    backend: "windows" | "file",
    name: string,
    address: bigint,
    size: number,
    readOnly: boolean,
    created: boolean,
    mapping: bigint,
    file: bigint,
    path: string | undefined,
  ) {
    this.backend = backend;
    this.name = name;
    this.address = address;
    this.size = size;
    this.readOnly = readOnly;
    this.created = created;
    this.path = path;
    this.#mapping = mapping;
    this.#file = file;
    this.attributes = Object.freeze({ key: undefined, id: undefined, path });
  }

  release(): void {
    const k = kernel32();
    const action = `release shared memory segment "${this.name}"`;
    try {
      const at = pointerAt(this.address);
      if (!k.UnmapViewOfFile(at)) throw winError(k.GetLastError(), "UnmapViewOfFile", action, this.name);
      // Private zero pages at the same address, for a native job or stale buffer that still points
      // here, freed later (see _quarantine.ts). (Another thread could in principle take the range in
      // the microseconds between the two calls; VirtualAlloc then fails and nothing more can be done.)
      const kept = k.VirtualAlloc(at, BigInt(this.size), W.MEM_RESERVE | W.MEM_COMMIT, W.PAGE_READWRITE);
      if (addressOf(kept) === this.address) {
        quarantine(this.size, () => kernel32().VirtualFree(at, 0n, W.MEM_RELEASE));
      }
    } finally {
      closeHandle(k, this.#mapping);
      closeHandle(k, this.#file);
      this.#mapping = this.#file = 0n;
    }
  }

  /**
   * What every process calls this segment when it names the semaphores a wait sleeps on: the
   * mapping's object name (`Local\x`), or for a file the volume serial number and file index,
   * which are the same whatever path a process opened it by.
   */
  waitKey(): string {
    if (this.#waitKey !== undefined) return this.#waitKey;
    if (this.backend === "windows") return this.#waitKey = objectName(this.name, "wait on the segment");
    const k = kernel32();
    const key = this.#file === 0n ? undefined : fileKey(k, this.#file);
    if (key === undefined) {
      throw winError(
        k.GetLastError(),
        "GetFileInformationByHandle",
        `wait on file "${this.name}"`,
        this.name,
      );
    }
    return this.#waitKey = key;
  }

  unlink(): void {
    if (this.backend === "file") unlinkWindowsFile(this.path!);
    // Named segments: Windows has no unlink; the object goes with its last handle and view.
  }

  /** Named segments have no unlink, so nothing can replace them; a file is compared by volume and index. */
  isStillNamed(): boolean {
    if (this.backend === "windows") return true;
    const k = kernel32();
    const other = handleValue(k.CreateFileW(
      wideString(this.path!),
      0,
      W.FILE_SHARE_READ | W.FILE_SHARE_WRITE | W.FILE_SHARE_DELETE,
      null,
      W.OPEN_EXISTING,
      W.FILE_ATTRIBUTE_NORMAL,
      0n,
    ));
    if (other === INVALID_HANDLE_VALUE) return false;
    try {
      return fileKey(k, other) === this.waitKey();
    } finally {
      k.CloseHandle(other);
    }
  }

  flush(): void {
    if (this.backend !== "file") return noFlush(this);
    if (this.readOnly) return;
    const k = kernel32();
    const action = `flush file "${this.name}"`;
    if (!k.FlushViewOfFile(pointerAt(this.address), 0n)) {
      throw winError(k.GetLastError(), "FlushViewOfFile", action, this.name);
    }
    if (this.#file !== 0n && !k.FlushFileBuffers(this.#file)) {
      throw winError(k.GetLastError(), "FlushFileBuffers", action, this.name);
    }
  }

  stat(): never {
    return noStat(this);
  }
}

/** A file's identity, the same whatever path opened it: volume serial number and file index. */
function fileKey(k: Kernel32, file: bigint): string | undefined {
  const info = new Uint8Array(W.BHFI_SIZE);
  if (!k.GetFileInformationByHandle(file, info)) return undefined;
  const d = new DataView(info.buffer);
  const hex = (offset: number) => d.getUint32(offset, true).toString(16).padStart(8, "0");
  // dwVolumeSerialNumber at 28, nFileIndexHigh at 44, nFileIndexLow at 48.
  return `Local\\file.${hex(28)}.${hex(44)}${hex(48)}`;
}

/** Maps the whole of a mapping object; returns the view address, or throws with the handles closed. */
function mapView(
  k: Kernel32,
  mapping: bigint,
  access: number,
  bytes: number,
  action: string,
  segment: string,
) {
  sweepRetired();
  for (let attempt = 0;; attempt++) {
    const view = k.MapViewOfFile(mapping, access, 0, 0, BigInt(bytes));
    if (view !== null && addressOf(view) !== 0n) return view;
    const error = k.GetLastError();
    // Out of address space: free every quarantined range and try once more.
    if (error !== WinError.ERROR_NOT_ENOUGH_MEMORY || attempt > 0 || !anyRetired()) {
      throw winError(error, "MapViewOfFile", action, segment);
    }
    sweepRetired(true);
  }
}

/** Creates a pagefile-backed named segment of `size` bytes (`mode` has no Windows meaning: see module doc). */
export function createWindows(name: string, size: number, _mode: number): Segment {
  const action = `create shared memory segment "${name}"`;
  const wide = wideString(objectName(name, action));
  const k = kernel32();
  const [high, low] = dwordPair(size);
  const mapping = handleValue(
    k.CreateFileMappingW(INVALID_HANDLE_VALUE, null, W.PAGE_READWRITE, high, low, wide),
  );
  const error = k.GetLastError();
  if (mapping === 0n) throw winError(error, "CreateFileMappingW", action, name);
  if (error === WinError.ERROR_ALREADY_EXISTS) {
    k.CloseHandle(mapping);
    throw winError(error, "CreateFileMappingW", action, name);
  }
  try {
    const view = mapView(k, mapping, W.FILE_MAP_WRITE, size, action, name);
    return new WindowsSegment("windows", name, addressOf(view), size, false, true, mapping, 0n, undefined);
  } catch (e) {
    k.CloseHandle(mapping);
    throw e;
  }
}

/** Attaches to an existing named segment; its size is page-rounded (`VirtualQuery`). */
export function openWindows(name: string, readOnly: boolean, maxSize: number = maxBufferSize): Segment {
  const action = `open shared memory segment "${name}"${readOnly ? " read-only" : ""}`;
  const wide = wideString(objectName(name, action));
  const k = kernel32();
  const access = readOnly ? W.FILE_MAP_READ : W.FILE_MAP_READ | W.FILE_MAP_WRITE;
  const mapping = handleValue(k.OpenFileMappingW(access, 0, wide));
  if (mapping === 0n) throw winError(k.GetLastError(), "OpenFileMappingW", action, name);
  try {
    return viewWhole(k, "windows", name, mapping, 0n, readOnly, action, maxSize, undefined);
  } catch (e) {
    k.CloseHandle(mapping);
    throw e;
  }
}

function viewWhole(
  k: Kernel32,
  backend: "windows" | "file",
  name: string,
  mapping: bigint,
  file: bigint,
  readOnly: boolean,
  action: string,
  maxSize: number,
  path: string | undefined,
  exactSize?: number,
): WindowsSegment {
  const view = mapView(k, mapping, readOnly ? W.FILE_MAP_COPY : W.FILE_MAP_WRITE, 0, action, name);
  try {
    const size = exactSize ?? regionSize(k, view, "VirtualQuery", action, name);
    if (size > maxSize) {
      throw new RangeError(
        `Cannot ${action}: its ${size} bytes are more than the ${maxSize} this runtime can map`,
      );
    }
    return new WindowsSegment(backend, name, addressOf(view), size, readOnly, false, mapping, file, path);
  } catch (e) {
    k.UnmapViewOfFile(view);
    throw e;
  }
}

/**
 * Checks that a named segment exists; Windows has nothing to remove (see {@linkcode windowsBackend}).
 */
export function unlinkWindows(name: string): void {
  const action = `unlink shared memory segment "${name}"`;
  const wide = wideString(objectName(name, action));
  const k = kernel32();
  const mapping = handleValue(k.OpenFileMappingW(W.FILE_MAP_READ, 0, wide));
  if (mapping === 0n) {
    const error = k.GetLastError();
    // Someone holds it but may not read it: it exists, which is all unlink needs to know.
    if (error === WinError.ERROR_ACCESS_DENIED) return;
    throw winError(error, "OpenFileMappingW", action, name);
  }
  k.CloseHandle(mapping);
}

/**
 * Named Windows shared memory (pagefile-backed file mappings).
 *
 * Windows has no unlink: a mapping object and its name live exactly as long as some process holds
 * a handle or a view. So `SharedMemory#unlink()` does nothing on Windows (as Python's does), apart
 * from the handle remembering it, so a second call throws `NotFoundError` as everywhere;
 * `SharedMemory.unlink(name)` throws `NotFoundError` when no process has the name open (as on Linux
 * for a missing name) and otherwise does nothing: the name goes when its last holder closes it.
 */
export const windowsBackend: SegmentBackend & { readonly nameMax: number; generateName(): string } = {
  name: "windows",
  // Checked precisely (UTF-16 code units, prefix included) by objectName; this bounds UTF-8 bytes.
  nameMax: W.NAME_MAX_UNITS * 3,
  generateName: () => `wnsm_${randomHex8()}`,
  create(o, action) {
    return createNamed(o, action, {
      nameMax: W.NAME_MAX_UNITS * 3,
      generateName: this.generateName,
      make: createWindows,
    });
  },
  open(o, action) {
    return openWindows(...openArguments(o, action, W.NAME_MAX_UNITS * 3));
  },
  unlink(o, action) {
    unlinkWindows(checkName(o.name, action, W.NAME_MAX_UNITS * 3));
  },
};

function fileSizeOf(k: Kernel32, file: bigint, action: string, path: string): number {
  const out = new BigInt64Array(1);
  if (!k.GetFileSizeEx(file, new Uint8Array(out.buffer))) {
    throw winError(k.GetLastError(), "GetFileSizeEx", action, path);
  }
  return Number(out[0]);
}

/** Deletes the file at `path` (the file backend's unlink on Windows). */
export function unlinkWindowsFile(path: string): void {
  const k = kernel32();
  if (!k.DeleteFileW(wideString(path))) {
    throw winError(k.GetLastError(), "DeleteFileW", `delete file "${path}"`, path);
  }
}

/**
 * Creates a file of `size` bytes at `path` (which must not exist) and maps it shared (the file
 * backend on Windows). `mode` has no Windows meaning and is ignored. The file handle is kept for
 * `flush()` and closed on `release()`; it is opened with every share mode, so other processes can
 * open, map and delete the file.
 */
export function createWindowsFile(path: string, size: number, _mode: number): Segment {
  const action = `create file "${path}"`;
  const k = kernel32();
  const wide = wideString(path);
  const file = handleValue(k.CreateFileW(
    wide,
    W.GENERIC_READ | W.GENERIC_WRITE,
    W.FILE_SHARE_READ | W.FILE_SHARE_WRITE | W.FILE_SHARE_DELETE,
    null,
    W.CREATE_NEW,
    W.FILE_ATTRIBUTE_NORMAL,
    0n,
  ));
  if (file === INVALID_HANDLE_VALUE) throw winError(k.GetLastError(), "CreateFileW", action, path);
  let mapping = 0n;
  try {
    // A mapping larger than the file extends the file to that size (with zeros).
    mapping = handleValue(
      k.CreateFileMappingW(file, null, W.PAGE_READWRITE, ...dwordPair(size), null),
    );
    if (mapping === 0n) throw winError(k.GetLastError(), "CreateFileMappingW", action, path);
    const view = mapView(k, mapping, W.FILE_MAP_WRITE, size, action, path);
    return new WindowsSegment("file", path, addressOf(view), size, false, true, mapping, file, path);
  } catch (e) {
    closeHandle(k, mapping);
    k.CloseHandle(file);
    k.DeleteFileW(wide);
    throw e;
  }
}

/**
 * Maps an existing file at its exact size, or its first `size` bytes (the file backend on Windows).
 * Read-only opens the file for reading only and maps it copy-on-write: writes stay private and
 * never reach the file.
 */
export function openWindowsFile(path: string, readOnly: boolean, size?: number): Segment {
  const action = `open file "${path}"${readOnly ? " read-only" : ""}`;
  const k = kernel32();
  const file = handleValue(k.CreateFileW(
    wideString(path),
    readOnly ? W.GENERIC_READ : W.GENERIC_READ | W.GENERIC_WRITE,
    W.FILE_SHARE_READ | W.FILE_SHARE_WRITE | W.FILE_SHARE_DELETE,
    null,
    W.OPEN_EXISTING,
    W.FILE_ATTRIBUTE_NORMAL,
    0n,
  ));
  if (file === INVALID_HANDLE_VALUE) throw winError(k.GetLastError(), "CreateFileW", action, path);
  let mapping = 0n;
  try {
    const fileSize = fileSizeOf(k, file, action, path);
    if (size !== undefined && fileSize < size) {
      throw new ShmError(
        `Cannot ${action}: the file is ${fileSize} bytes long, shorter than the ${size} bytes asked for`,
        {
          code: "ERROR_INVALID_PARAMETER",
          errno: WinError.ERROR_INVALID_PARAMETER,
          syscall: "GetFileSizeEx",
          segment: path,
        },
      );
    }
    size ??= fileSize;
    if (size === 0) {
      throw new ShmError(`Cannot ${action}: it is empty (size 0), and an empty file cannot be mapped`, {
        code: "ERROR_FILE_INVALID",
        errno: WinError.ERROR_FILE_INVALID,
        syscall: "GetFileSizeEx",
        segment: path,
      });
    }
    if (size > maxBufferSize) {
      throw new RangeError(
        `Cannot ${action}: its ${size} bytes are more than the ${maxBufferSize} this runtime can map`,
      );
    }
    mapping = handleValue(
      k.CreateFileMappingW(file, null, readOnly ? W.PAGE_READONLY : W.PAGE_READWRITE, 0, 0, null),
    );
    if (mapping === 0n) throw winError(k.GetLastError(), "CreateFileMappingW", action, path);
    return viewWhole(k, "file", path, mapping, file, readOnly, action, maxBufferSize, path, size);
  } catch (e) {
    closeHandle(k, mapping);
    k.CloseHandle(file);
    throw e;
  }
}
