/**
 * The Windows suite: the kernel32 backend through the public API, checked against raw kernel32
 * calls. Run by tests/windows/run.ts under bun.exe (Wine on Linux via tools/test-windows.sh, or real
 * Windows).
 *
 * @module
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  AlreadyExistsError,
  NotFoundError,
  PermissionDeniedError,
  SharedMemory,
  ShmError,
} from "../../mod.ts";
import { addressOf, foreignBuffer, pointerAt, wideString } from "../../ffi/_ffi.ts";
import { handleValue, INVALID_HANDLE_VALUE, kernel32, W } from "../../ffi/kernel32.ts";
import { os } from "../../ffi/runtime.ts";
import { createWindowsFile, objectName, openWindowsFile } from "../../platform/windows.ts";
import { test } from "./_runner.ts";
import { uniqueName } from "./_util.ts";

const proc = (globalThis as unknown as { process: { pid: number; execPath: string } }).process;
const CHILD = fileURLToPath(new URL("./child.ts", import.meta.url));

/** Runs the child script under this bun.exe; resolves with its parsed last line of output. */
function child(args: string[], timeout = 60_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const runArgs = "Deno" in globalThis && !("Bun" in globalThis) ? ["run", "-A", CHILD] : [CHILD];
    const p = spawn(proc.execPath, [...runArgs, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout!.on("data", (d) => out += d);
    p.stderr!.on("data", (d) => err += d);
    const timer = setTimeout(() => p.kill(), timeout);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      const last = out.trim().split(/\r?\n/).filter((l) => l.startsWith("{")).pop();
      if (code !== 0 || !last) {
        reject(new Error(`child ${args.join(" ")} exited with ${code}: ${out}\n${err}`));
      } else resolve(JSON.parse(last));
    });
  });
}

/** Opens a mapping object by name with raw kernel32 calls (UTF-16 built by hand) and reads byte 0. */
function rawReadFirstByte(fullName: string): number {
  const k = kernel32();
  const units: number[] = [];
  for (const ch of fullName) {
    const cp = ch.codePointAt(0)!;
    if (cp > 0xffff) units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
    else units.push(cp);
  }
  units.push(0);
  const h = handleValue(k.OpenFileMappingW(W.FILE_MAP_READ, 0, new Uint16Array(units)));
  assert.notEqual(h, 0n, `raw OpenFileMappingW(${fullName}) failed with ${k.GetLastError()}`);
  try {
    const view = k.MapViewOfFile(h, W.FILE_MAP_READ, 0, 0, 0n);
    assert.notEqual(addressOf(view), 0n);
    const value = new Uint8Array(foreignBuffer(view, 1))[0]!;
    k.UnmapViewOfFile(view);
    return value;
  } finally {
    k.CloseHandle(h);
  }
}

test("runs on Windows with the windows backend", () => {
  assert.equal(os, "windows");
  using shm = SharedMemory.create({ size: 100 });
  assert.equal(shm.backend, "windows");
});

test("create then open by name: same live memory; creator's size exact, opener's page-rounded", () => {
  const name = uniqueName("roundtrip");
  const a = SharedMemory.create({ name, size: 100 });
  try {
    assert.equal(a.size, 100);
    assert.equal(a.created, true);
    a.buf[0] = 42;
    a.buf[99] = 7;
    const b = SharedMemory.open(name);
    try {
      assert.equal(b.created, false);
      assert.equal(b.size, 4096, "VirtualQuery reports whole pages");
      assert.equal(b.buf[0], 42);
      assert.equal(b.buf[99], 7);
      assert.equal(b.buf[100], 0);
      b.buf[1] = 9;
      assert.equal(a.buf[1], 9, "writes through the opener reach the creator");
    } finally {
      b.close();
    }
  } finally {
    a.close();
  }
});

test("a size that is not whole pages: the creator maps it exactly, an opener gets whole pages", () => {
  using a = SharedMemory.create({ size: 5 * 4096 + 1 });
  a.buf[5 * 4096] = 3;
  using b = SharedMemory.open(a.name);
  assert.equal(b.size, 6 * 4096);
  assert.equal(b.buf[5 * 4096], 3);
});

test("create on a taken name: AlreadyExistsError, and the duplicate handle is closed", () => {
  const name = uniqueName("taken");
  const a = SharedMemory.create({ name, size: 64 });
  a.buf[0] = 5;
  try {
    assert.throws(() => SharedMemory.create({ name, size: 64 }), (e: unknown) => {
      assert.ok(e instanceof AlreadyExistsError);
      assert.equal(e.code, "ERROR_ALREADY_EXISTS");
      assert.equal(e.errno, 183);
      assert.equal(e.syscall, "CreateFileMappingW");
      assert.equal(e.segment, name);
      assert.match(
        e.message,
        /^Cannot create shared memory segment ".*": an object of that name already exists/,
      );
      return true;
    });
    assert.equal(a.buf[0], 5, "the existing segment is untouched");
  } finally {
    a.close();
  }
  // Had the failed create leaked its handle, the object (and its name) would still exist.
  assert.throws(() => SharedMemory.open(name), NotFoundError);
});

test("open of a missing name: NotFoundError with ERROR_FILE_NOT_FOUND", () => {
  const name = uniqueName("missing");
  assert.throws(() => SharedMemory.open(name), (e: unknown) => {
    assert.ok(e instanceof NotFoundError);
    assert.equal(e.code, "ERROR_FILE_NOT_FOUND");
    assert.equal(e.errno, 2);
    assert.equal(e.syscall, "OpenFileMappingW");
    assert.match(
      e.message,
      /^Cannot open shared memory segment ".*": no such object or file \(ERROR_FILE_NOT_FOUND/,
    );
    return true;
  });
  assert.throws(() => SharedMemory.open(name, { readOnly: true }), NotFoundError);
});

test("openOrCreate: creates once, then joins", () => {
  const name = uniqueName("ooc");
  const a = SharedMemory.openOrCreate(name, { size: 32 });
  const b = SharedMemory.openOrCreate(name, { size: 32 });
  try {
    assert.equal(a.created, true);
    assert.equal(b.created, false);
    a.buf[3] = 33;
    assert.equal(b.buf[3], 33);
  } finally {
    b.close();
    a.close();
  }
});

test("read-only (FILE_MAP_COPY): live reads, a write stays private, never reaches the segment, no crash", () => {
  const name = uniqueName("ro");
  using w = SharedMemory.create({ name, size: 3 * 4096 });
  w.buf[0] = 1;
  w.buf[4096] = 2;
  using r = SharedMemory.open(name, { readOnly: true });
  assert.equal(r.readOnly, true);
  assert.equal(r.buf[0], 1);
  w.buf[4096] = 3;
  assert.equal(r.buf[4096], 3, "untouched pages follow the segment");
  r.buf[0] = 99; // copy-on-write: private page
  r.view(Int32Array)[2] = -1;
  assert.equal(r.buf[0], 99, "this process sees its own private write");
  assert.equal(w.buf[0], 1, "the write did not reach the segment");
  assert.equal(w.view(Int32Array)[2], 0);
  w.buf[4096 + 1] = 4;
  assert.equal(r.buf[4096 + 1], 4, "other pages stay live after a private write");
  w.buf[0] = 50;
  assert.equal(r.buf[0], 99, "the privately written page no longer follows the segment");
});

test("read-only write from another bun.exe process: no crash, nothing reaches the segment", async () => {
  const name = uniqueName("rochild");
  using w = SharedMemory.create({ name, size: 4096 });
  w.buf[0] = 17;
  const seen = await child(["rowrite", name]);
  assert.deepEqual(seen, { readOnly: true, before: 17, after: 0xee, int1: 0x1234567 });
  assert.equal(w.buf[0], 17);
  assert.equal(w.view(Int32Array)[1], 0);
});

/** The address of a byte array, as a bigint (for building Win32 structs that point into it). */
const bunFfi = "Bun" in globalThis
  ? (await import(["bun", "ffi"].join(":"))) as { ptr(v: Uint8Array): number }
  : null;
function bytesAddress(bytes: Uint8Array<ArrayBuffer>): bigint {
  return bunFfi ? BigInt(bunFfi.ptr(bytes)) : BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
}

/**
 * Creates a mapping object whose DACL grants Everyone (S-1-1-0) `mask` and nothing else: a
 * `SECURITY_ATTRIBUTES` -> absolute `SECURITY_DESCRIPTOR` -> `ACL` with one `ACCESS_ALLOWED_ACE`
 * (or no ACE at all when `mask` is null: nobody may open it). Returns the handle.
 */
function createWithDacl(fullName: string, mask: number | null): bigint {
  const mem = new Uint8Array(96);
  const dv = new DataView(mem.buffer);
  const base = bytesAddress(mem);
  dv.setUint8(0, 1); // SECURITY_DESCRIPTOR.Revision
  dv.setUint16(2, 0x4, true); // Control = SE_DACL_PRESENT
  dv.setBigUint64(32, base + 40n, true); // Dacl
  dv.setUint8(40, 2); // ACL.AclRevision
  dv.setUint16(42, mask === null ? 8 : 28, true); // AclSize
  dv.setUint16(44, mask === null ? 0 : 1, true); // AceCount
  if (mask !== null) {
    dv.setUint8(48, 0); // ACCESS_ALLOWED_ACE_TYPE
    dv.setUint16(50, 20, true); // AceSize
    dv.setUint32(52, mask, true); // Mask
    dv.setUint8(56, 1); // SID: Revision 1, one sub-authority, authority 1 (World), RID 0
    dv.setUint8(57, 1);
    dv.setUint8(63, 1);
  }
  dv.setUint32(72, 24, true); // SECURITY_ATTRIBUTES.nLength
  dv.setBigUint64(80, base, true); // lpSecurityDescriptor
  const k = kernel32();
  const h = handleValue(
    k.CreateFileMappingW(
      INVALID_HANDLE_VALUE,
      pointerAt(base + 72n),
      W.PAGE_READWRITE,
      0,
      4096,
      wideString(fullName),
    ),
  );
  assert.notEqual(h, 0n, `CreateFileMappingW with a DACL failed with ${k.GetLastError()}`);
  return h;
}

test("a segment others may only read: writable open is PermissionDeniedError, read-only open works", () => {
  const name = uniqueName("dacl");
  const READ_CONTROL = 0x20000;
  const h = createWithDacl(`Local\\${name}`, W.FILE_MAP_READ | READ_CONTROL);
  try {
    assert.throws(() => SharedMemory.open(name), (e: unknown) => {
      assert.ok(e instanceof PermissionDeniedError, String(e));
      assert.equal(e.code, "ERROR_ACCESS_DENIED");
      assert.equal(e.errno, 5);
      assert.equal(e.syscall, "OpenFileMappingW");
      assert.match(
        e.message,
        /^Cannot open shared memory segment ".*": access is denied \(ERROR_ACCESS_DENIED/,
      );
      return true;
    });
    assert.throws(() => SharedMemory.openOrCreate(name, { size: 8 }), PermissionDeniedError);
    using r = SharedMemory.open(name, { readOnly: true });
    assert.equal(r.size, 4096);
    r.buf[0] = 1; // copy-on-write: needs only read access to the object
    assert.equal(r.buf[0], 1);
    assert.equal(rawReadFirstByte(`Local\\${name}`), 0);
  } finally {
    kernel32().CloseHandle(h);
  }
});

test("a segment nobody may open: read-only open is PermissionDeniedError; unlink treats it as existing", () => {
  const name = uniqueName("nodacl");
  const h = createWithDacl(`Local\\${name}`, null);
  try {
    assert.throws(() => SharedMemory.open(name, { readOnly: true }), PermissionDeniedError);
    SharedMemory.unlink(name); // exists: nothing to do, no error
  } finally {
    kernel32().CloseHandle(h);
  }
  assert.throws(() => SharedMemory.unlink(name), NotFoundError);
});

test("read-only open of an object created PAGE_READONLY works (copy-on-write view)", () => {
  const name = uniqueName("pageonly");
  const k = kernel32();
  const h = handleValue(
    k.CreateFileMappingW(INVALID_HANDLE_VALUE, null, W.PAGE_READONLY, 0, 4096, wideString(`Local\\${name}`)),
  );
  assert.notEqual(h, 0n, `CreateFileMappingW(PAGE_READONLY) failed with ${k.GetLastError()}`);
  try {
    using r = SharedMemory.open(name, { readOnly: true });
    assert.equal(r.size, 4096);
    assert.equal(r.buf[0], 0);
    r.buf[0] = 1;
    assert.equal(r.buf[0], 1);
    assert.equal(rawReadFirstByte(`Local\\${name}`), 0);
  } finally {
    k.CloseHandle(h);
  }
});

test("unlink: the instance call does nothing but mark the handle; the name lives until the last close", () => {
  const name = uniqueName("unlink");
  const a = SharedMemory.create({ name, size: 64 });
  a.buf[0] = 8;
  a.unlink();
  assert.throws(() => a.unlink(), NotFoundError, "a second unlink on the same handle throws, as on Linux");
  const b = SharedMemory.open(name); // Windows: still there while a holds it
  assert.equal(b.buf[0], 8);
  SharedMemory.unlink(name); // exists: does nothing
  a.close();
  assert.equal(b.buf[0], 8, "still mapped by b");
  SharedMemory.open(name).close();
  b.close();
  assert.throws(() => SharedMemory.open(name), NotFoundError, "gone with its last handle");
  assert.throws(() => SharedMemory.unlink(name), (e: unknown) => {
    assert.ok(e instanceof NotFoundError);
    assert.equal(e.code, "ERROR_FILE_NOT_FOUND");
    return true;
  });
});

test("using: dispose closes and 'unlinks' without error even after the object is gone", () => {
  const name = uniqueName("dispose");
  let kept: Uint8Array;
  {
    using shm = SharedMemory.create({ name, size: 16 });
    kept = shm.buf;
    kept[0] = 1;
  }
  assert.equal(kept.length, 0, "detached on dispose");
  assert.throws(() => SharedMemory.open(name), NotFoundError);
});

test("close: detaches every view first, safe twice, and releases the handle", () => {
  const name = uniqueName("close");
  const shm = SharedMemory.create({ name, size: 4096 });
  const bytes = shm.buf;
  const ints = shm.view(Int32Array);
  ints[0] = 1;
  shm.close();
  shm.close();
  assert.equal(shm.closed, true);
  assert.equal(bytes.length, 0);
  assert.equal(ints.length, 0);
  assert.equal(ints[0], undefined);
  assert.throws(() => shm.buf, TypeError);
  assert.throws(() => SharedMemory.open(name), NotFoundError, "the handle was closed");
});

test("a buffer transferred away before close reads zeros afterwards (VirtualAlloc'd pages), no crash", () => {
  const name = uniqueName("neutral");
  const a = SharedMemory.create({ name, size: 8192 });
  const b = SharedMemory.open(name);
  try {
    a.buf[0] = 1;
    a.buf[5000] = 2;
    const moved = new Uint8Array(a.buf.buffer.transfer());
    assert.equal(moved[0], 1);
    a.close();
    assert.equal(moved[0], 0, "private zero pages now");
    assert.equal(moved[5000], 0);
    moved[1] = 3;
    assert.equal(moved[1], 3);
    assert.equal(b.buf[1], 0, "nothing reaches the segment");
    assert.equal(b.buf[0], 1);
  } finally {
    b.close();
  }
});

const bunGlobal = (globalThis as unknown as { Bun?: { gc(force: boolean): void } }).Bun;
const forceGc = bunGlobal ? () => bunGlobal.gc(true) : (globalThis as unknown as { gc?: () => void }).gc;

test(
  "a handle dropped without close() is released by the garbage collector (handle closed, view freed)",
  async () => {
    const gc = forceGc!;
    const name = uniqueName("gc");
    (() => {
      const shm = SharedMemory.create({ name, size: 4096 });
      shm.buf[0] = 1;
    })();
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
      try {
        SharedMemory.open(name).close();
      } catch (e) {
        assert.ok(e instanceof NotFoundError, String(e));
        gone = true;
      }
    }
    assert.ok(gone, "the object outlived its only, unreachable handle");
  },
  { skip: forceGc ? false : "cannot force a collection (run Deno with --v8-flags=--expose-gc)" },
);

test("generated names: wnsm_ + 8 hex digits, openable by that name", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5; i++) {
    using shm = SharedMemory.create({ size: 8 });
    assert.match(shm.name, /^wnsm_[0-9a-f]{8}$/);
    seen.add(shm.name);
    shm.buf[0] = i + 1;
    using again = SharedMemory.open(shm.name);
    assert.equal(again.buf[0], i + 1);
    assert.equal(rawReadFirstByte(`Local\\${shm.name}`), i + 1, "the object is Local\\<name>");
  }
  assert.equal(seen.size, 5);
});

test("names default to Local\\: 'x' and 'Local\\x' are one object", () => {
  const name = uniqueName("local");
  using a = SharedMemory.create({ name, size: 8 });
  a.buf[0] = 11;
  using b = SharedMemory.open(`Local\\${name}`);
  assert.equal(b.buf[0], 11);
  assert.throws(() => SharedMemory.create({ name: `local\\${name}`, size: 8 }), AlreadyExistsError);
  assert.equal(objectName(name, "x"), `Local\\${name}`);
  assert.equal(objectName(`Global\\${name}`, "x"), `Global\\${name}`);
});

test("Global\\ on request: its own namespace, apart from Local\\", () => {
  const name = uniqueName("global");
  let g: SharedMemory;
  try {
    g = SharedMemory.create({ name: `Global\\${name}`, size: 8 });
  } catch (e) {
    // Real Windows without SeCreateGlobalPrivilege refuses; that must be a PermissionDeniedError.
    assert.ok(e instanceof PermissionDeniedError, String(e));
    return;
  }
  try {
    assert.equal(g.name, `Global\\${name}`);
    g.buf[0] = 21;
    using o = SharedMemory.open(`Global\\${name}`);
    assert.equal(o.buf[0], 21);
    assert.equal(rawReadFirstByte(`Global\\${name}`), 21);
    assert.throws(() => SharedMemory.open(name), NotFoundError, "not in the session namespace");
  } finally {
    g.close();
  }
});

test("UTF-16 names, non-ASCII and astral characters included, match raw kernel32 calls", () => {
  const name = `${uniqueName("utf16")}_тест_日本語_é_😀`;
  using shm = SharedMemory.create({ name, size: 16 });
  shm.buf[0] = 77;
  assert.equal(shm.name, name);
  assert.equal(rawReadFirstByte(`Local\\${name}`), 77);
  using again = SharedMemory.open(name);
  assert.equal(again.buf[0], 77);
});

test("bad names are TypeErrors before any system call", () => {
  assert.throws(() => SharedMemory.create({ name: "a\\b", size: 8 }), TypeError);
  assert.throws(() => SharedMemory.create({ name: "Global\\", size: 8 }), TypeError);
  assert.throws(() => SharedMemory.open("Session\\1\\x"), TypeError);
  assert.throws(() => SharedMemory.create({ name: "x".repeat(255), size: 8 }), /260 Windows allows/);
  assert.throws(() => SharedMemory.create({ name: "", size: 8 }), TypeError);
  assert.throws(() => SharedMemory.create({ size: 0 }), RangeError);
});

test(
  "two bun.exe processes (and this one) share a segment: Atomics.add reaches the exact total",
  async () => {
    const name = uniqueName("atomics");
    using shm = SharedMemory.create({ name, size: 64 });
    const cells = shm.view(Int32Array, 0, 2);
    const n = 200_000;
    const runs = [child(["add", name, String(n)]), child(["add", name, String(n)])];
    // Wait until both children are attached (the object is open twice more), then go.
    await new Promise((r) => setTimeout(r, 100));
    Atomics.store(cells, 1, 1);
    for (let i = 0; i < n; i++) Atomics.add(cells, 0, 1);
    const results = await Promise.all(runs);
    assert.deepEqual(results, [{ done: n }, { done: n }]);
    assert.equal(Atomics.load(cells, 0), 3 * n);
  },
  { timeout: 120_000 },
);

test("another process sees open errors the same way (NotFoundError), and opens what exists", async () => {
  const name = uniqueName("childopen");
  assert.deepEqual((await child(["open", name])).error, "NotFoundError");
  using shm = SharedMemory.create({ name, size: 10 });
  shm.buf[0] = 4;
  assert.deepEqual(await child(["open", name, "ro"]), { size: 4096, first: 4 });
});

test("file backend: create, reopen, read-only copy-on-write, flush, delete", () => {
  const dir = (globalThis as unknown as { process: { env: Record<string, string> } }).process.env.TEMP ??
    "C:\\windows\\temp";
  const path = `${dir}\\${uniqueName("file")}.bin`;
  const a = createWindowsFile(path, 10_000, 0o600);
  try {
    assert.equal(a.backend, "file");
    assert.equal(a.size, 10_000);
    const abuf = new Uint8Array(foreignBuffer(pointerAt(a.address), a.size));
    abuf[9_999] = 6;
    a.flush!();
    assert.throws(() => createWindowsFile(path, 10, 0o600), AlreadyExistsError);
    const b = openWindowsFile(path, false);
    assert.equal(b.size, 10_000, "exact file size (GetFileSizeEx)");
    const bbuf = new Uint8Array(foreignBuffer(pointerAt(b.address), b.size));
    assert.equal(bbuf[9_999], 6);
    const r = openWindowsFile(path, true);
    const rbuf = new Uint8Array(foreignBuffer(pointerAt(r.address), r.size));
    rbuf[9_999] = 1;
    assert.equal(bbuf[9_999], 6, "read-only write stays private");
    bbuf[0] = 2;
    assert.equal(rbuf[0], 2);
    rbuf.buffer.transfer(0);
    r.release();
    bbuf.buffer.transfer(0);
    b.release();
    abuf.buffer.transfer(0);
  } finally {
    a.release();
    a.unlink();
  }
  assert.throws(() => openWindowsFile(path, false), NotFoundError);
});

test("file backend through SharedMemory: create, reopen, read-only, first N bytes", () => {
  const dir = (globalThis as unknown as { process: { env: Record<string, string> } }).process.env.TEMP ??
    "C:\\windows\\temp";
  const path = `${dir}\\${uniqueName("apifile")}.bin`;
  const a = SharedMemory.create({ backend: "file", path, size: 5000 });
  try {
    assert.equal(a.backend, "file");
    a.buf[4999] = 9;
    using b = SharedMemory.open({ backend: "file", path });
    assert.equal(b.size, 5000);
    assert.equal(b.buf[4999], 9);
    using r = SharedMemory.open({ backend: "file", path, readOnly: true });
    r.buf[0] = 1;
    assert.equal(b.buf[0], 0, "read-only writes stay private");
    const part = openWindowsFile(path, false, 100);
    assert.equal(part.size, 100);
    part.release();
    assert.throws(() => openWindowsFile(path, false, 5001), /shorter than the 5001 bytes/);
    assert.throws(() => SharedMemory.create({ backend: "file", path, size: 10 }), AlreadyExistsError);
  } finally {
    a.close();
  }
  a.unlink();
  assert.throws(() => SharedMemory.open({ backend: "file", path }), NotFoundError);
});

test("errors carry the Windows code and the kernel32 call", () => {
  try {
    SharedMemory.open(uniqueName("e"));
    assert.fail("expected an error");
  } catch (e) {
    assert.ok(e instanceof ShmError);
    assert.equal(e.syscall, "OpenFileMappingW");
  }
});
