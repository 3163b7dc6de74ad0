// SharedMemory on its own, in one process: the API contract, bad input, errors, close/unlink/dispose.
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { AlreadyExistsError, MAX_SIZE, NotFoundError, SharedMemory, ShmError } from "../mod.ts";
import { test } from "./_harness.ts";
import { uniqueName } from "./_process.ts";
import { MAX_RETIRED, MAX_RETIRED_BYTES, retiredStats } from "../platform/_quarantine.ts";

const onLinux = process.platform === "linux";

test("create with a generated name gives a zeroed, live, Python-style segment", () => {
  using shm = SharedMemory.create({ size: 4096 });
  assert.match(shm.name, /^psm_[0-9a-f]{8}$/);
  assert.equal(shm.size, 4096);
  assert.equal(shm.buf.length, 4096);
  assert.equal(shm.readOnly, false);
  assert.equal(shm.closed, false);
  assert.equal(shm.created, true);
  assert.equal(shm.backend, "posix");
  assert.ok(shm.buf.every((b) => b === 0));
  if (onLinux) {
    const st = statSync(`/dev/shm/${shm.name}`);
    assert.equal(st.size, 4096);
    assert.equal(st.mode & 0o777, 0o600);
  }
});

test("two handles on one name see each other's writes at once", () => {
  const name = uniqueName("two");
  using a = SharedMemory.create({ name, size: 1 << 20, mode: 0o640 });
  using b = SharedMemory.open(name);
  assert.equal(b.name, name);
  assert.equal(b.size, 1 << 20);
  assert.equal(b.created, false);
  a.buf[12345] = 7;
  assert.equal(b.buf[12345], 7);
  b.view(Float64Array, 8)[1] = Math.E;
  assert.equal(a.view(Float64Array, 16, 1)[0], Math.E);
  if (onLinux) assert.equal(statSync(`/dev/shm/${name}`).mode & 0o777, 0o640);
});

test("a leading slash is accepted and dropped, as the C spelling of a name", () => {
  const name = uniqueName("slash");
  using a = SharedMemory.create({ name: "/" + name, size: 64 });
  assert.equal(a.name, name);
  using b = SharedMemory.open("/" + name);
  assert.equal(b.name, name);
});

test("mode is applied exactly, whatever the umask", () => {
  for (const mode of [0o666, 0o600, 0o400, 0o000]) {
    using shm = SharedMemory.create({ name: uniqueName("mode"), size: 8, mode });
    assert.equal(statSync(`/dev/shm/${shm.name}`).mode & 0o777, mode);
  }
}, { skip: !onLinux && "Linux only: macOS applies the umask, Windows has no modes" });

test("creating a taken name is AlreadyExistsError and leaves the segment intact", () => {
  const name = uniqueName("taken");
  using a = SharedMemory.create({ name, size: 64 });
  a.buf[0] = 9;
  assert.throws(() => SharedMemory.create({ name, size: 128 }), (e: unknown) => {
    assert.ok(e instanceof AlreadyExistsError);
    assert.ok(e instanceof ShmError);
    assert.equal(e.code, "EEXIST");
    assert.equal(e.syscall, "shm_open");
    assert.equal(e.segment, name);
    assert.equal(e.name, "AlreadyExistsError");
    assert.match(e.message, new RegExp(`^Cannot create shared memory segment "${name}": .*EEXIST`));
    return true;
  });
  assert.equal(a.buf[0], 9);
  assert.equal(a.size, 64);
});

test("opening a missing name is NotFoundError naming the segment", () => {
  const name = uniqueName("missing");
  assert.throws(() => SharedMemory.open(name), (e: unknown) => {
    assert.ok(e instanceof NotFoundError);
    assert.equal(e.code, "ENOENT");
    assert.equal(e.errno, 2);
    assert.match(e.message, new RegExp(`"${name}"`));
    return true;
  });
});

test("openOrCreate creates once, then joins with the existing size; a smaller one is a RangeError", () => {
  const name = uniqueName("ooc");
  using first = SharedMemory.openOrCreate(name, { size: 4096 });
  using second = SharedMemory.openOrCreate(name, { size: 100 });
  assert.equal(first.created, true);
  assert.equal(second.created, false);
  assert.equal(second.size, 4096, "a bigger existing segment is fine, at its own size");
  first.buf[1] = 1;
  assert.equal(second.buf[1], 1);
  assert.throws(
    () => SharedMemory.openOrCreate(name, { size: 1 << 20 }),
    (e: Error) => e instanceof RangeError && /1048576 bytes/.test(e.message) && /4096 bytes/.test(e.message),
  );
  assert.equal(first.buf[1], 1, "the existing segment is left as it was");
});

test("unlink removes the name; a second unlink is NotFoundError; a closed handle can unlink", () => {
  const name = uniqueName("unlink");
  const shm = SharedMemory.create({ name, size: 64 });
  shm.close();
  shm.unlink();
  if (onLinux) assert.equal(existsSync(`/dev/shm/${name}`), false);
  assert.throws(() => shm.unlink(), NotFoundError);
  assert.throws(() => SharedMemory.unlink(name), NotFoundError);
  assert.throws(() => SharedMemory.open(name), NotFoundError);
});

test("a segment lives on after unlink until its last handle closes", () => {
  const name = uniqueName("lives");
  const a = SharedMemory.create({ name, size: 64 });
  const b = SharedMemory.open(name);
  a.unlink();
  a.buf[3] = 33;
  assert.equal(b.buf[3], 33);
  a.close();
  b.close();
});

test("close is idempotent and detaches buf and every view", () => {
  const shm = SharedMemory.create({ size: 64 });
  const buf = shm.buf;
  const i32 = shm.view(Int32Array);
  const again = new Uint8Array(buf.buffer, 8, 8);
  buf[0] = 1;
  shm.close();
  shm.close();
  assert.equal(shm.closed, true);
  assert.equal(buf.length, 0);
  assert.equal(i32.length, 0);
  assert.equal(again.length, 0);
  assert.equal(buf[0], undefined);
  assert.equal(i32[0], undefined);
  buf[0] = 5; // ignored on a detached buffer: no crash
  assert.throws(() => buf.set([1])); // RangeError in Deno, TypeError in Bun
  assert.throws(() => Atomics.load(i32, 0), TypeError);
  shm.unlink();
});

test("use of a closed handle is a TypeError before any system call", () => {
  const shm = SharedMemory.create({ size: 64 });
  shm.close();
  assert.throws(() => shm.buf, { name: "TypeError", message: /closed/ });
  assert.throws(() => shm.view(Uint8Array), { name: "TypeError", message: /closed/ });
  assert.equal(shm.size, 64);
  assert.equal(typeof shm.name, "string");
  shm.unlink();
});

test("a buffer transferred away before close reads zeros afterwards instead of crashing", () => {
  const shm = SharedMemory.create({ size: 8192 });
  shm.buf[0] = 1;
  const moved = new Uint8Array(shm.buf.buffer.transfer());
  assert.equal(moved[0], 1);
  shm.close();
  assert.equal(moved[0], 0);
  moved[1] = 2; // private zero page: no crash, nothing shared
  assert.equal(moved[1], 2);
  shm.unlink();
});

test("using: dispose closes, and unlinks what this handle created", () => {
  const name = uniqueName("dispose");
  let kept: Uint8Array;
  {
    using shm = SharedMemory.create({ name, size: 64 });
    kept = shm.buf;
    {
      using opened = SharedMemory.open(name);
      assert.equal(opened.size, 64);
    } // an opened handle is only closed: the name stays
    if (onLinux) assert.equal(existsSync(`/dev/shm/${name}`), true);
  }
  assert.equal(kept.length, 0);
  assert.throws(() => SharedMemory.open(name), NotFoundError);
});

test("using with unlinkOnDispose: false only closes", () => {
  const name = uniqueName("keep");
  {
    using _shm = SharedMemory.create({ name, size: 64, unlinkOnDispose: false });
  }
  const again = SharedMemory.open(name);
  again.close();
  SharedMemory.unlink(name);
});

test("dispose does not fail when someone else already unlinked the segment", () => {
  const name = uniqueName("gone");
  {
    using _shm = SharedMemory.create({ name, size: 64 });
    SharedMemory.unlink(name);
  }
});

test("dispose leaves alone a segment someone re-created under the name (device and inode differ)", () => {
  const name = uniqueName("recreated");
  let newcomer: SharedMemory;
  {
    using first = SharedMemory.create({ name, size: 64 });
    first.buf[0] = 1;
    SharedMemory.unlink(name);
    newcomer = SharedMemory.create({ name, size: 64, unlinkOnDispose: false });
    newcomer.buf[0] = 2;
  } // first's dispose: its name now refers to the newcomer, which must survive
  using again = SharedMemory.open(name);
  assert.equal(again.buf[0], 2, "the newcomer's segment is still there");
  newcomer.close();
  SharedMemory.unlink(name);
  // And a segment still under its own name is unlinked by dispose, whatever its mode.
  const locked = uniqueName("mode0");
  {
    using _shm = SharedMemory.create({ name: locked, size: 64, mode: 0o000 });
  }
  assert.throws(() => SharedMemory.unlink(locked), NotFoundError);
});

test("new SharedMemory() from plain JavaScript is a clear TypeError", () => {
  const Ctor = SharedMemory as unknown as new (options: unknown) => SharedMemory;
  assert.throws(() => new Ctor({ size: 64 }), {
    name: "TypeError",
    message: /use SharedMemory\.create\(\), SharedMemory\.open\(\) or SharedMemory\.openOrCreate\(\)/,
  });
});

test("view checks type, alignment and range", () => {
  using shm = SharedMemory.create({ size: 64 });
  assert.equal(shm.view(Float64Array, 8, 7).length, 7);
  assert.equal(shm.view(Float64Array, 8).length, 7);
  assert.equal(shm.view(Uint8Array, 64).length, 0);
  assert.equal(shm.view(BigInt64Array).length, 8);
  assert.throws(() => shm.view(Float64Array, 4), { name: "RangeError", message: /multiple of 8/ });
  assert.throws(() => shm.view(Float64Array, 8, 8), { name: "RangeError", message: /remain/ });
  assert.throws(() => shm.view(Uint8Array, 65), RangeError);
  assert.throws(() => shm.view(Uint8Array, -1), RangeError);
  assert.throws(() => shm.view(Uint8Array, 1.5), RangeError);
  assert.throws(() => shm.view(Uint8Array, 0, -1), RangeError);
  assert.throws(() => shm.view(Uint8Array, 0, NaN), RangeError);
  assert.throws(() => shm.view(Array as never), TypeError);
  assert.throws(() => shm.view(DataView as never), TypeError);
});

test("bad sizes are TypeError/RangeError before any system call", () => {
  const bad: [unknown, string][] = [
    [0, "RangeError"],
    [-1, "RangeError"],
    [1.5, "RangeError"],
    [NaN, "RangeError"],
    [Infinity, "RangeError"],
    [2 ** 60, "RangeError"],
    [MAX_SIZE + 1, "RangeError"],
    ["64", "TypeError"],
    [64n, "TypeError"],
    [undefined, "TypeError"],
    [null, "TypeError"],
  ];
  for (const [size, kind] of bad) {
    const name = uniqueName("badsize");
    assert.throws(
      () => SharedMemory.create({ name, size: size as never }),
      { name: kind },
      `size ${String(size)}`,
    );
    assert.throws(() => SharedMemory.openOrCreate(name, { size: size as never }), { name: kind });
    if (onLinux) assert.equal(existsSync(`/dev/shm/${name}`), false);
  }
  assert.throws(() => SharedMemory.create(undefined as never), TypeError);
  assert.throws(() => SharedMemory.create(42 as never), TypeError);
});

test("bad names are TypeError before any system call", () => {
  const bad: unknown[] = [
    "",
    "/",
    "a/b",
    "/a/b",
    "a\0b",
    ".",
    "..",
    "x".repeat(256),
    "é".repeat(128),
    "\ud800x", // lone surrogates: no UTF-8 spelling, they would collide as U+FFFD
    "x\udc00",
    "\udc00\ud800",
    42,
    null,
  ];
  for (const name of bad) {
    assert.throws(
      () => SharedMemory.create({ name: name as never, size: 8 }),
      TypeError,
      `name ${String(name)}`,
    );
    assert.throws(() => SharedMemory.open(name as never), TypeError);
    assert.throws(() => SharedMemory.unlink(name as never), TypeError);
  }
  assert.throws(() => SharedMemory.open("/dev/shm/x"), {
    name: "TypeError",
    message: /did you mean "x"\?/,
  });
  // A well-formed surrogate pair is fine.
  using pair = SharedMemory.create({ name: uniqueName("astral\u{1F600}"), size: 8 });
  assert.match(pair.name, /\u{1F600}/u);
  // 255 bytes is the limit on Linux, and allowed.
  if (onLinux) {
    using _longest = SharedMemory.create({ name: "n".repeat(255), size: 8 });
  }
});

test("bad modes and options are TypeError/RangeError", () => {
  for (const mode of [-1, 0o1000, 1.5, NaN]) {
    assert.throws(() => SharedMemory.create({ name: uniqueName("m"), size: 8, mode }), RangeError);
  }
  assert.throws(() => SharedMemory.create({ size: 8, mode: "0600" as never }), TypeError);
  assert.throws(() => SharedMemory.open(uniqueName("o"), { readOnly: "yes" as never }), TypeError);
  assert.throws(() => SharedMemory.open(uniqueName("o"), 5 as never), TypeError);
});

test("read-only: writes stay private, never reach the segment, never crash", () => {
  const name = uniqueName("ro");
  using owner = SharedMemory.create({ name, size: 3 * 4096 });
  using ro = SharedMemory.open(name, { readOnly: true });
  assert.equal(ro.readOnly, true);
  owner.buf[0] = 1;
  owner.buf[4096] = 2;
  assert.equal(ro.buf[0], 1); // live
  ro.buf[0] = 99; // private copy of page 0
  ro.view(Int32Array)[2048] = -1; // via a typed view, page 1 (byte 8192)
  Atomics.store(ro.view(Int32Array), 1, 5);
  assert.equal(owner.buf[0], 1);
  assert.equal(owner.view(Int32Array)[2048], 0);
  assert.equal(owner.view(Int32Array)[1], 0);
  {
    using other = SharedMemory.open(name);
    assert.equal(other.buf[0], 1);
  }
  // Untouched pages stay live.
  owner.buf[4097] = 3;
  assert.equal(ro.buf[4097], 3);
});

test("a segment of mode 0400 can be opened read-only but not read-write", () => {
  using shm = SharedMemory.create({ name: uniqueName("r"), size: 8, mode: 0o400 });
  SharedMemory.open(shm.name, { readOnly: true }).close();
}, {
  skip: (!onLinux || process.getuid?.() === 0) &&
    "Linux, not root (root bypasses modes: see permissions_test)",
});

test("closed mappings wait in a bounded quarantine: ranges and bytes stay under their caps", () => {
  for (let i = 0; i < MAX_RETIRED + 200; i++) {
    using _shm = SharedMemory.create({ size: 4096 });
  }
  const afterMany = retiredStats();
  assert.ok(afterMany.ranges <= MAX_RETIRED, `${afterMany.ranges} ranges`);
  for (let i = 0; i < 20; i++) {
    using _shm = SharedMemory.create({ size: 64 << 20 });
  }
  const afterBig = retiredStats();
  assert.ok(afterBig.bytes <= MAX_RETIRED_BYTES + (64 << 20), `${afterBig.bytes} bytes`);
  assert.ok(afterBig.bytes >= 64 << 20, "the last closed range is still quarantined");
});

test(
  "backends are looked up by name: the default one by its name too; an absent or unknown one is refused",
  () => {
    const name = uniqueName("byname");
    using made = SharedMemory.create({ backend: "posix", name, size: 64 } as never);
    using opened = SharedMemory.open({ backend: made.backend, name } as never);
    assert.equal(opened.size, 64);
    assert.throws(
      () => SharedMemory.create({ backend: "windows", size: 64 } as never),
      (e: Error) =>
        e instanceof ShmError && e.code === "ENOSYS" && /has no Windows file mappings/.test(e.message),
    );
    assert.throws(
      () => SharedMemory.create({ backend: "nope", size: 64 } as never),
      { name: "TypeError", message: /backend must be "posix", "windows", "sysv", "file" or left out/ },
    );
  },
  { skip: process.platform === "win32" && "POSIX backends" },
);
