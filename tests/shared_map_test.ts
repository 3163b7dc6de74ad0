// SharedMap: the contract in one process, every backend, full maps, TTL and LRU, every bad input;
// then 2 Deno and 2 Bun processes hammering overlapping keys, writers killed with SIGKILL at random
// points, and stripes left locked by dead writers.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { CorruptSegmentError, SharedMap, SharedMemory } from "../mod.ts";
import { test } from "./_harness.ts";
import { runOk, start, stop, tsCommand, uniqueName } from "./_process.ts";

const PEER = "tests/children/map_peer.ts";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const text = (v: Uint8Array | undefined) => v === undefined ? undefined : new TextDecoder().decode(v);

function fnv(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

/** Every value of the map whose key starts with "v" carries its checksum (see map_peer.ts). */
function assertIntact(map: SharedMap): number {
  let n = 0;
  for (const [key, value] of map) {
    n++;
    if (!key.startsWith("v")) continue;
    assert.ok(value.length >= 4, `${key}: ${value.length} bytes`);
    assert.equal(new DataView(value.buffer).getUint32(0), fnv(value.subarray(4)), `${key} is torn`);
  }
  return n;
}

/** Inserts fresh keys until the map is full; how many went in. */
function fill(map: SharedMap, tag: string): number {
  let n = 0;
  for (;;) {
    try {
      map.set(`${tag}${n}`, "x");
    } catch (error) {
      assert.ok(error instanceof RangeError && /full/.test(error.message), String(error));
      return n;
    }
    n++;
  }
}

test("set, get, has, delete, size, clear, iteration, strings and JSON", () => {
  using map = SharedMap.create({ name: uniqueName("map"), capacity: 50, maxKeyBytes: 16, maxValueBytes: 32 });
  using other = SharedMap.open(map.name);
  assert.equal(map.size, 0);
  assert.equal(map.get("a"), undefined);
  assert.equal(map.set("a", new Uint8Array([1, 2, 3])), map);
  assert.deepEqual(other.get("a"), new Uint8Array([1, 2, 3]));
  const copy = other.get("a")!;
  copy[0] = 9;
  assert.deepEqual(map.get("a"), new Uint8Array([1, 2, 3]), "get returns a copy");
  map.set("é", "héllo ✓");
  assert.equal(other.getString("é"), "héllo ✓");
  map.setJSON("j", { x: [1, null] });
  assert.deepEqual(other.getJSON("j"), { x: [1, null] });
  map.set("empty", "");
  assert.deepEqual(other.get("empty"), new Uint8Array(0));
  assert.equal(other.has("empty"), true);
  map.set("", "empty key");
  assert.equal(other.getString(""), "empty key");
  assert.equal(other.size, 5);
  map.set("a", "replaced");
  assert.equal(other.getString("a"), "replaced");
  assert.equal(other.size, 5, "replacing does not add");
  assert.deepEqual(
    [...other].map(([k, v]) => [k, text(v)]).sort(),
    [["", "empty key"], ["a", "replaced"], ["empty", ""], ["j", '{"x":[1,null]}'], ["é", "héllo ✓"]],
  );
  assert.deepEqual([...other.keys()].sort(), ["", "a", "empty", "j", "é"]);
  assert.equal(other.delete("a"), true);
  assert.equal(other.delete("a"), false);
  assert.equal(map.has("a"), false);
  assert.equal(map.size, 4);
  map.clear();
  assert.equal(other.size, 0);
  assert.deepEqual([...other], []);
  // Many inserts and deletes of distinct keys: tombstones are cleaned up and the index rebuilt.
  for (let i = 0; i < 5_000; i++) {
    map.set(`k${i % 97}_${i}`, String(i));
    if (i % 3 === 0) map.set("keep", String(i));
    map.delete(`k${i % 97}_${i}`);
  }
  assert.equal(map.getString("keep"), "4998");
  assert.equal(map.size, 1);
  assert.equal(fill(map, "f"), 49, "the whole capacity is usable after the churn");
});

test("increment: numbers and bigints stored as decimal text; compareAndSet", () => {
  using map = SharedMap.create({ capacity: 10, maxValueBytes: 24 });
  assert.equal(map.increment("n"), 1);
  assert.equal(map.increment("n", 41), 42);
  assert.equal(map.increment("n", -50), -8);
  assert.equal(map.getString("n"), "-8");
  assert.equal(map.getJSON("n"), -8);
  map.set("s", "100");
  assert.equal(map.increment("s", 1), 101, "a value set as decimal text can be incremented");
  assert.equal(map.increment("b", 1n << 62n), 1n << 62n);
  assert.equal(map.increment("b", (1n << 62n) - 1n), (1n << 63n) - 1n);
  assert.throws(() => map.increment("b", 1n), RangeError, "past int64");
  assert.equal(map.getString("b"), String((1n << 63n) - 1n), "a refused increment changes nothing");
  map.set("max", String(Number.MAX_SAFE_INTEGER));
  assert.throws(() => map.increment("max", 1), RangeError);
  map.set("text", "abc");
  assert.throws(() => map.increment("text"), TypeError);
  assert.equal(map.getString("text"), "abc");

  assert.equal(map.compareAndSet("lock", undefined, "me"), true);
  assert.equal(map.compareAndSet("lock", undefined, "you"), false);
  assert.equal(map.compareAndSet("lock", "you", "x"), false);
  assert.equal(map.compareAndSet("lock", new TextEncoder().encode("me"), "you"), true);
  assert.equal(map.getString("lock"), "you");
  assert.equal(map.compareAndSet("absent", "x", "y"), false);
  assert.equal(map.has("absent"), false);
});

test("a full map refuses inserts with a RangeError and writes nothing; updates still work", () => {
  using map = SharedMap.create({ capacity: 3 });
  map.set("a", "1").set("b", "2").set("c", "3");
  assert.throws(() => map.set("d", "4"), (e) => e instanceof RangeError && /full/.test(e.message));
  assert.throws(() => map.increment("d"), RangeError);
  assert.throws(() => map.compareAndSet("d", undefined, "x"), RangeError);
  assert.equal(map.has("d"), false);
  assert.equal(map.size, 3);
  for (let i = 0; i < 100; i++) map.set("a", String(i)); // updates need no free entry
  assert.equal(map.getString("a"), "99");
  map.delete("b");
  map.set("d", "4");
  assert.deepEqual([...map.keys()].sort(), ["a", "c", "d"]);
});

test("evict: 'lru' drops the least recently used entry; reads count as use", () => {
  using map = SharedMap.create({ capacity: 4, evict: "lru" });
  assert.equal(map.evict, "lru");
  for (const k of ["a", "b", "c", "d"]) map.set(k, k);
  map.get("a");
  map.set("e", "e"); // b is the least recently used
  assert.deepEqual([...map.keys()].sort(), ["a", "c", "d", "e"]);
  map.set("c", "again");
  map.set("f", "f"); // d
  assert.deepEqual([...map.keys()].sort(), ["a", "c", "e", "f"]);
  assert.equal(map.size, 4);
  for (let i = 0; i < 1_000; i++) map.set(`x${i}`, "x");
  assert.equal(map.size, 4);
  assert.deepEqual([...map.keys()].sort(), ["x996", "x997", "x998", "x999"]);
});

test("evict: 'lru' in a map larger than the sample: keys read often outlive the others", () => {
  using map = SharedMap.create({ capacity: 1000, evict: "lru" });
  for (let i = 0; i < 1000; i++) map.set(`k${i}`, "v");
  let n = 0;
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 100; i++) map.get(`k${i}`);
    for (let i = 0; i < 200; i++) map.set(`n${n++}`, "v");
  }
  let hot = 0;
  let cold = 0;
  for (let i = 0; i < 1000; i++) if (map.has(`k${i}`)) i < 100 ? hot++ : cold++;
  assert.equal(map.size, 1000);
  // Each eviction drops the oldest of 32 sampled entries: a key read every 200 writes is never it.
  assert.equal(hot, 100, "every key that was read survived");
  assert.equal(cold, 0, "the keys never read went first");
});

test("ttl: an expired entry is invisible, and its space is reclaimed", async () => {
  using map = SharedMap.create({ capacity: 4 });
  map.set("a", "1", { ttl: 40 });
  map.set("b", "2", { ttl: 40 });
  map.set("c", "3", { ttl: 40 });
  map.set("d", "4");
  assert.equal(map.getString("a"), "1");
  assert.equal(map.size, 4);
  await sleep(80);
  assert.equal(map.get("a"), undefined);
  assert.equal(map.has("b"), false);
  assert.equal(map.size, 1);
  assert.deepEqual([...map.keys()], ["d"]);
  assert.equal(map.compareAndSet("a", undefined, "new"), true, "an expired key counts as absent");
  map.set("x", "x");
  map.set("y", "y"); // the map holds a, d, x, y: the expired b and c were reclaimed
  assert.deepEqual([...map.keys()].sort(), ["a", "d", "x", "y"]);
  // increment keeps the expiry of the value it increments.
  map.delete("x");
  map.increment("n", 1);
  map.set("n", "5", { ttl: 40 });
  assert.equal(map.increment("n"), 6);
  await sleep(80);
  assert.equal(map.has("n"), false);
});

test("every backend: posix, System V, and the file backend, which keeps the map", () => {
  using posix = SharedMap.create({ capacity: 8, backend: "posix", name: uniqueName("mapposix") });
  posix.set("k", "posix");
  using posix2 = SharedMap.open({ backend: "posix", name: posix.name });
  assert.equal(posix2.getString("k"), "posix");

  using sysv = SharedMap.create({ capacity: 8, backend: "sysv" });
  sysv.set("k", "sysv");
  using sysv2 = SharedMap.open({ backend: "sysv", id: sysv.shm.id! });
  assert.equal(sysv2.getString("k"), "sysv");
  assert.equal(sysv.shm.backend, "sysv");

  const dir = mkdtempSync(`${tmpdir()}/shm-map-`);
  try {
    const path = `${dir}/map.bin`;
    const file = SharedMap.create({ capacity: 8, backend: "file", path });
    file.set("k", "kept");
    file.increment("n", 3);
    file.shm.flush();
    file.close();
    file.close(); // idempotent
    using again = SharedMap.open({ backend: "file", path });
    assert.equal(again.getString("k"), "kept");
    assert.equal(again.increment("n"), 4);
    assert.equal(again.capacity, 8);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("openOrCreate creates once and then joins; open refuses a segment that is not a map", () => {
  const name = uniqueName("mapooc");
  using a = SharedMap.openOrCreate(name, { capacity: 16 });
  using b = SharedMap.openOrCreate(name, { capacity: 16 });
  assert.equal(a.created, true);
  assert.equal(b.created, false);
  a.set("x", "1");
  assert.equal(b.getString("x"), "1");
  using plain = SharedMemory.create({ name: uniqueName("notmap"), size: 4096 });
  plain.buf[0] = 7;
  assert.throws(
    () => SharedMap.open(plain.name),
    (e) => e instanceof TypeError && /not a shared map/.test(e.message),
  );
});

test("bad input is a TypeError or RangeError on entry, and changes nothing", async () => {
  using map = SharedMap.create({ capacity: 4, maxKeyBytes: 4, maxValueBytes: 4 });
  map.set("k", "v");
  const closed = SharedMap.create({ capacity: 1 });
  closed.close();
  closed.unlink();
  const cases: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ["create()", () => SharedMap.create(undefined as never), TypeError, /capacity/],
    ["create(5)", () => SharedMap.create(5 as never), TypeError, /options must be an object/],
    ["capacity missing", () => SharedMap.create({} as never), TypeError, /capacity must be a number/],
    ["capacity '5'", () => SharedMap.create({ capacity: "5" as never }), TypeError, /capacity/],
    ["capacity 0", () => SharedMap.create({ capacity: 0 }), RangeError, /capacity/],
    ["capacity 1.5", () => SharedMap.create({ capacity: 1.5 }), RangeError, /capacity/],
    ["capacity NaN", () => SharedMap.create({ capacity: NaN }), RangeError, /capacity/],
    ["capacity 2^40", () => SharedMap.create({ capacity: 2 ** 40 }), RangeError, /capacity/],
    [
      "4 GiB or more",
      () => SharedMap.create({ capacity: 1 << 20, maxValueBytes: 1 << 12 }),
      RangeError,
      /4 GiB/,
    ],
    ["maxKeyBytes 0", () => SharedMap.create({ capacity: 1, maxKeyBytes: 0 }), RangeError, /maxKeyBytes/],
    [
      "maxKeyBytes '1'",
      () => SharedMap.create({ capacity: 1, maxKeyBytes: "1" as never }),
      TypeError,
      /maxKeyBytes/,
    ],
    [
      "maxValueBytes -1",
      () => SharedMap.create({ capacity: 1, maxValueBytes: -1 }),
      RangeError,
      /maxValueBytes/,
    ],
    ["evict 'lfu'", () => SharedMap.create({ capacity: 1, evict: "lfu" as never }), TypeError, /evict/],
    ["backend 'x'", () => SharedMap.create({ capacity: 1, backend: "x" as never }), TypeError, /backend/],
    ["file without path", () => SharedMap.create({ capacity: 1, backend: "file" }), TypeError, /path/],
    ["path without file", () => SharedMap.create({ capacity: 1, path: "/tmp/x" }), TypeError, /path/],
    ["key without sysv", () => SharedMap.create({ capacity: 1, key: 5 }), TypeError, /key/],
    ["name 'a/b'", () => SharedMap.create({ capacity: 1, name: "a/b" }), TypeError, /"\/"/],
    ["open(5)", () => SharedMap.open(5 as never), TypeError, /options must be an object|expected a name/],
    ["open({backend:'x'})", () => SharedMap.open({ backend: "x" as never }), TypeError, /backend/],
    ["openOrCreate(1)", () => SharedMap.openOrCreate(1 as never, { capacity: 1 }), TypeError, /name/],
    ["set(1)", () => map.set(1 as never, "v"), TypeError, /key must be a string/],
    ["set(long key)", () => map.set("kkkkk", "v"), RangeError, /longer than 4/],
    ["set(3-byte char ×2)", () => map.set("éé€", "v"), RangeError, /longer than 4/],
    ["set(lone surrogate)", () => map.set("\ud800", "v"), TypeError, /surrogate/],
    ["set(long value)", () => map.set("k", "vvvvv"), RangeError, /longer than 4/],
    ["set(long bytes)", () => map.set("k", new Uint8Array(5)), RangeError, /5 bytes/],
    ["set(number)", () => map.set("k", 5 as never), TypeError, /Uint8Array or a string/],
    ["set(array)", () => map.set("k", [1] as never), TypeError, /Uint8Array or a string/],
    ["set(null)", () => map.set("k", null as never), TypeError, /Uint8Array or a string/],
    ["set ttl 0", () => map.set("k", "v", { ttl: 0 }), RangeError, /ttl/],
    ["set ttl -1", () => map.set("k", "v", { ttl: -1 }), RangeError, /ttl/],
    ["set ttl NaN", () => map.set("k", "v", { ttl: NaN }), RangeError, /ttl/],
    ["set ttl Infinity", () => map.set("k", "v", { ttl: Infinity }), RangeError, /ttl/],
    ["set ttl '1'", () => map.set("k", "v", { ttl: "1" as never }), TypeError, /ttl/],
    ["set options 5", () => map.set("k", "v", 5 as never), TypeError, /options must be an object/],
    ["setJSON(function)", () => map.setJSON("k", () => 1), TypeError, /no JSON form/],
    ["setJSON(long)", () => map.setJSON("k", "abcdef"), RangeError, /longer than 4/],
    ["get(1)", () => map.get(1 as never), TypeError, /key must be a string/],
    ["get(long)", () => map.get("kkkkk"), RangeError, /longer than 4/],
    ["has(null)", () => map.has(null as never), TypeError, /key must be a string/],
    ["delete({})", () => map.delete({} as never), TypeError, /key must be a string/],
    ["increment('1')", () => map.increment("n", "1" as never), TypeError, /delta/],
    ["increment(1.5)", () => map.increment("n", 1.5), RangeError, /safe integer/],
    ["increment(2^53)", () => map.increment("n", 2 ** 53), RangeError, /safe integer/],
    ["increment(NaN)", () => map.increment("n", NaN), RangeError, /safe integer/],
    ["compareAndSet(exp 5)", () => map.compareAndSet("k", 5 as never, "v"), TypeError, /expected/],
    ["compareAndSet(long)", () => map.compareAndSet("k", "v", "vvvvv"), RangeError, /longer than 4/],
    ["compareAndSet ttl", () => map.compareAndSet("k", "v", "w", { ttl: -5 }), RangeError, /ttl/],
    ["closed get", () => closed.get("k"), TypeError, /closed/],
    ["closed set", () => closed.set("k", "v"), TypeError, /closed/],
    ["closed size", () => closed.size, TypeError, /closed/],
    ["closed clear", () => closed.clear(), TypeError, /closed/],
    ["closed iterate", () => [...closed], TypeError, /closed/],
    ["closed increment", () => closed.increment("n"), TypeError, /closed/],
  ];
  const gone = new Uint8Array(2);
  gone.buffer.transfer();
  const cycle: { self?: unknown } = {};
  cycle.self = cycle;
  map.set("bin", new Uint8Array([0xff, 0x7b]));
  cases.push(
    [
      "set(detached)",
      () => map.set("k", gone),
      TypeError,
      /^Cannot set a value in shared map ".+": the value is detached/,
    ],
    ["compareAndSet(detached)", () => map.compareAndSet("k", gone, "v"), TypeError, /expected is detached/],
    [
      "setJSON(cycle)",
      () => map.setJSON("k", cycle),
      TypeError,
      /cannot be written as JSON \(it contains a cycle\)/,
    ],
    ["setJSON(1n)", () => map.setJSON("k", 1n), TypeError, /a bigint has no JSON form/],
    [
      "getJSON(not JSON)",
      () => map.getJSON("bin"),
      SyntaxError,
      /^Cannot read JSON from shared map ".+": it is not valid JSON/,
    ],
  );
  const engine =
    /is not a function|Cannot perform|Underlying ArrayBuffer|circular|cyclic|Unexpected token|JSON Parse/;
  for (const [what, call, type, message] of cases) {
    await assert.rejects(
      async () => await call(),
      (e: Error) => e instanceof type && message.test(e.message) && !engine.test(e.message),
      what,
    );
  }
  map.delete("bin");
  assert.deepEqual([...map].map(([k, v]) => [k, text(v)]), [["k", "v"]], "no bad call changed the map");
  assert.equal(map.size, 1);
});

test(
  "2 Deno and 2 Bun processes hammer overlapping keys: every increment counted, compareAndSet exclusive, no torn value",
  async () => {
    using map = SharedMap.create({
      name: uniqueName("maphammer"),
      capacity: 256,
      maxKeyBytes: 16,
      maxValueBytes: 256,
    });
    const rounds = 30_000;
    const peers = (["deno", "bun", "deno", "bun"] as const).map((rt, id) =>
      runOk(tsCommand(rt, PEER, ["hammer", map.name, String(id), String(rounds)]), { timeout: 120_000 })
    );
    const results = (await Promise.all(peers)).map((out) =>
      JSON.parse(out.trim().split("\n").pop()!) as { increments: number[]; acquired: number; reads: number }
    );
    for (let c = 0; c < 4; c++) {
      const sum = results.reduce((n, r) => n + r.increments[c]!, 0);
      assert.equal(map.getJSON(`c${c}`), sum, `counter c${c}`);
    }
    const acquired = results.reduce((n, r) => n + r.acquired, 0);
    assert.ok(acquired > 0);
    assert.equal(map.getJSON("guarded"), acquired, "compareAndSet let exactly one holder in at a time");
    const n = assertIntact(map);
    assert.equal(map.size, n);
    map.clear();
    assert.equal(fill(map, "f"), 256, "no space leaked");
  },
  { timeout: 180_000 },
);

test("writers killed with SIGKILL at random points never corrupt the map nor leak its space", async () => {
  using map = SharedMap.create({
    name: uniqueName("mapkill"),
    capacity: 128,
    maxKeyBytes: 16,
    maxValueBytes: 256,
  });
  for (let trial = 0; trial < 10; trial++) {
    const rts = trial % 2 ? ["bun", "deno"] as const : ["deno", "bun"] as const;
    const peers = rts.map((rt, id) =>
      start(tsCommand(rt, PEER, ["churn", map.name, String(trial * 2 + id)]))
    );
    try {
      await Promise.all(peers.map((p) => p.waitFor(/^running|^<exited/)));
      await sleep(20 + Math.random() * 150);
      for (const p of peers) p.kill("SIGKILL");
      for (const p of peers) {
        const r = await p.done;
        assert.equal(r.signal, "SIGKILL", `the churning peer ended by itself: ${r.stdout}\n${r.stderr}`);
      }
    } finally {
      for (const p of peers) stop(p);
    }
    const n = assertIntact(map);
    assert.equal(map.size, n, `trial ${trial}: size agrees with the entries`);
  }
  // Writes on every stripe take over the dead writers' locks and repair their stripes; then the
  // whole capacity can be filled again.
  map.clear();
  assert.equal(map.size, 0);
  assert.equal(fill(map, "f"), 128, "every entry a killed writer held is back");
  assertIntact(map);
}, { timeout: 180_000 });

test("stripes left locked by dead writers, with half-written slots, are taken over and repaired", () => {
  using map = SharedMap.create({ name: uniqueName("mapdead"), capacity: 64, maxValueBytes: 8 });
  for (let i = 0; i < 20; i++) map.set(`k${i}`, String(i));
  const i32 = map.shm.view(Int32Array);
  // Every stripe's lock word names no live holder (as after a kill); the first ten free slots are
  // claimed by stripe 0 and left half-written, as a writer killed in the middle of a set leaves them.
  const stripes = Math.max(1, 2 ** i32[5]!);
  for (let s = 0; s < stripes; s++) Atomics.store(i32, (512 + s * 64) >> 2, 0x4000_0000); // after the 512-byte header
  const slotsAt = map.shm.size - i32[8]! * i32[7]!;
  let orphans = 0;
  for (let i = 0; i < i32[8]! && orphans < 10; i++) {
    const w = (slotsAt + i * i32[7]!) >> 2;
    if (i32[w + 1] !== 0) continue;
    i32[w] = i32[w]! | 1;
    i32[w + 1] = 1;
    orphans++;
  }
  assert.equal(map.getString("k3"), "3", "readers take no lock: a dead writer never blocks them");
  map.clear(); // takes every stripe over
  assert.equal(fill(map, "f"), 64, "the orphaned slots were freed");
  for (let s = 0; s < stripes; s++) assert.equal(Atomics.load(i32, (512 + s * 64) >> 2), 0);
});

test("a corrupted index word is a clear error, never an engine message or a read outside the map", () => {
  using map = SharedMap.create({ capacity: 1 }); // one stripe of 8 buckets, two arrays: bytes 576..639
  map.set("x", "1");
  const i32 = map.shm.view(Int32Array);
  for (let i = 576 / 4; i < 640 / 4; i++) i32[i] = 0x7fff_ffff;
  assert.throws(
    () => map.get("x"),
    (e: Error) =>
      e instanceof CorruptSegmentError && e.segment === map.name && /corrupted/.test(e.message) &&
      !/bounds|detached/.test(e.message),
  );
  assert.throws(
    () => map.set("x", "2"),
    (e: Error) => e instanceof CorruptSegmentError && /corrupted/.test(e.message),
  );
  assert.deepEqual([...map], [], "iteration skips what it cannot read");
  map.clear(); // empties the index
  map.set("x", "3");
  assert.equal(map.getString("x"), "3");
});

test("a value's buffer can be transferred away; later gets still work", () => {
  using map = SharedMap.create({ capacity: 16 });
  map.set("a", "hello");
  map.set("b", "world");
  const a = map.get("a")!;
  const buffer = a.buffer as ArrayBuffer;
  structuredClone(buffer, { transfer: [buffer] }); // as postMessage(…, [buffer]) does
  assert.equal(map.getString("b"), "world");
  assert.equal(map.getString("a"), "hello");
  assert.deepEqual(map.get("b"), new TextEncoder().encode("world"));
});
