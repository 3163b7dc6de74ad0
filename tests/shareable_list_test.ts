// ShareableList: CPython's layout byte for byte, and lists shared both ways with real Python 3.
import assert from "node:assert/strict";
import { ShareableList, type ShareableValue, SharedMemory } from "../mod.ts";
import { test } from "./_harness.ts";
import { hasCommand, OTHER, runOk, tsCommand, uniqueName } from "./_process.ts";

const noPython = hasCommand("python3") ? false : "python3 is not installed";
const PEER = "tests/py/list_peer.py";

/** A value as tests/py/list_peer.py writes it. */
type Typed =
  | { t: "int"; v: string }
  | { t: "float"; v: string }
  | { t: "bool"; v: boolean }
  | { t: "none" }
  | { t: "str"; v: string }
  | { t: "bytes"; v: string };
interface Dump {
  values: Typed[];
  hex: string;
  format: string;
}

const int = (v: bigint | number): Typed => ({ t: "int", v: String(v) });
const float = (v: string): Typed => ({ t: "float", v });
const bool = (v: boolean): Typed => ({ t: "bool", v });
const none: Typed = { t: "none" };
const str = (v: string): Typed => ({ t: "str", v });
const bytes = (hex: string): Typed => ({ t: "bytes", v: hex });

const hex = (u8: Uint8Array): string => Array.from(u8, (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (h: string): Uint8Array => new Uint8Array(h.match(/../g)?.map((b) => parseInt(b, 16)) ?? []);

/** The JavaScript value our ShareableList gives (or takes) for a Python value. */
function toJs(t: Typed): ShareableValue {
  switch (t.t) {
    case "int": {
      const b = BigInt(t.v);
      return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
    }
    case "float":
      return t.v === "nan" ? NaN : t.v === "inf" ? Infinity : t.v === "-inf" ? -Infinity : Number(t.v);
    case "bool":
      return t.v;
    case "none":
      return null;
    case "str":
      return t.v;
    case "bytes":
      return unhex(t.v);
  }
}

/** The Python value a JavaScript value read back by Python should be. */
function toTyped(v: ShareableValue): Typed {
  if (v === null) return none;
  if (typeof v === "boolean") return bool(v);
  if (typeof v === "bigint") return int(v);
  if (typeof v === "number") {
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) return int(v);
    return float(Number.isNaN(v) ? "nan" : v === Infinity ? "inf" : v === -Infinity ? "-inf" : pyRepr(v));
  }
  if (typeof v === "string") return str(v);
  return bytes(hex(v));
}

/** Python's repr() of a float, for the values these tests use. */
function pyRepr(v: number): string {
  if (Object.is(v, -0)) return "-0.0";
  const s = String(v);
  return /^-?\d+$/.test(s) ? s + ".0" : s.replace(/e\+?/, "e+").replace("e+-", "e-");
}

/** Compares what we read with what Python holds, NaN equal to NaN. */
function assertSame(actual: ShareableValue[], expected: Typed[]): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((v, i) => {
    const e = toJs(expected[i]!);
    if (typeof e === "number" && Number.isNaN(e)) assert.ok(Number.isNaN(v), `item ${i}: ${String(v)}`);
    else assert.deepEqual(v, e, `item ${i}`);
  });
}

async function python(args: string[], input: unknown): Promise<Dump> {
  const out = await runOk(["python3", PEER, ...args], { input: JSON.stringify(input) });
  return JSON.parse(out) as Dump;
}

// Every type, including the edges; every str here fits Python's own (character-count) sizing.
const PY_VALUES: Typed[] = [
  int(0),
  int(1),
  int(-1),
  int(2n ** 63n - 1n),
  int(-(2n ** 63n)),
  int(2n ** 53n + 1n),
  int(-(2n ** 53n) - 1n),
  int(Number.MAX_SAFE_INTEGER),
  float("3.5"),
  float("-0.0"),
  float("nan"),
  float("inf"),
  float("-inf"),
  float("1e+300"),
  float("5e-324"),
  bool(true),
  bool(false),
  none,
  str(""),
  str("ascii"),
  str("exactly8"),
  str("é"),
  str("日本"),
  str("🎉"),
  str("héllo wörld"),
  bytes(""),
  bytes("0001ff"),
  bytes("78".repeat(20)),
];

test("the test vector of interop-facts.md, byte for byte", async () => {
  using l = ShareableList.create([1, 2.5, true, null, "héllo", new Uint8Array([97, 98]), -7n]);
  {
    assert.equal(l.shm.size, 191);
    const expected = "0700000000000000" +
      ["00", "08", "10", "18", "20", "28", "30", "38"].map((b) => b + "00000000000000").join("") +
      "0100000000000000" + "0000000000000440" + "0000000000000001" + "0000000000000000" +
      "68c3a96c6c6f0000" + "6162000000000000" + "f9ffffffffffffff" +
      ["q", "d", "xxxxxxx?", "xxxxxx?x", "8s", "8s", "q"]
        .map((f) => hex(new TextEncoder().encode(f)).padEnd(16, "0")).join("") +
      "00000003010200";
    assert.equal(hex(l.shm.buf), expected);
    assert.deepEqual([...l], [1, 2.5, true, null, "héllo", new Uint8Array([97, 98]), -7]);
    if (!noPython) {
      const py = await python(["replay"], {
        values: [int(1), float("2.5"), bool(true), none, str("héllo"), bytes("6162"), int(-7)],
        ops: [],
      });
      assert.equal(py.hex, expected);
    }
  }
});

test(
  "Python creates every type; we read them, write, and Python reads back what Python itself would have written",
  async () => {
    const name = uniqueName("pylist");
    const created = await python(["create", name], PY_VALUES);
    try {
      using l = ShareableList.open(name);
      assert.equal(l.length, PY_VALUES.length);
      assertSame([...l], PY_VALUES);
      assert.equal(hex(l.shm.buf), created.hex);
      // Assignments that change the type of a slot every way Python allows.
      const ops: [number, Typed][] = [
        [0, int(-(2n ** 62n))], // int -> int
        [1, str("8 bytes!")], // int slot takes up to 8 bytes of text
        [2, bytes("ffee")], // int -> bytes
        [3, float("-2.25")], // int -> float
        [8, int(42)], // float -> int
        [9, bool(true)], // float -> bool
        [10, none], // float -> None
        [15, str("")], // bool -> empty str
        [17, int(7)], // None -> int
        [18, str("ü")], // empty str keeps its 8-byte slot
        [19, int(-5)], // str -> int
        [20, none], // str -> None
        [21, bytes("00ff")], // str -> bytes, trailing byte kept
        [24, str("déjà vu ✓")], // 13 bytes in a 16-byte slot
        [25, str("ok")], // bytes -> str
        [27, float("inf")], // bytes (24-byte slot) -> float
        [-1, str("é".repeat(12))], // 24 bytes of text again in the 24-byte slot
      ];
      for (const [i, t] of ops) l.set(i, toJs(t));
      const back = await python(["dump", name], null);
      const replayed = await python(["replay"], { values: PY_VALUES, ops });
      assert.equal(back.hex, replayed.hex);
      assert.equal(back.format, replayed.format);
      assert.deepEqual(back.values, replayed.values);
      assertSame([...l], replayed.values);
    } finally {
      SharedMemory.unlink(name);
    }
  },
  { skip: noPython },
);

test("we create every type; Python reads them, writes, and we read back", async () => {
  const values: ShareableValue[] = [
    0,
    -1,
    2n ** 63n - 1n,
    -(2n ** 63n),
    2n ** 60n,
    Number.MIN_SAFE_INTEGER,
    2 ** 53, // not a safe integer: stored as a float
    0.1,
    -0,
    NaN,
    Infinity,
    -Infinity,
    true,
    false,
    null,
    "",
    "ascii",
    "ééééé", // 10 bytes: Python would size this 8 and lose bytes; we size it 16
    "日本語のテキスト",
    "🎉🎉🎉",
    new Uint8Array(0),
    new Uint8Array([0, 1, 2, 255, 0]),
  ];
  const expected = values.map(toTyped);
  expected[6] = float("9007199254740992.0");
  expected[expected.length - 1] = bytes("000102ff"); // Python strips trailing NULs
  using l = ShareableList.create(values, { name: uniqueName("tslist") });
  {
    const py = await python(["dump", l.name], null);
    assert.deepEqual(py.values, expected);
    assert.equal(py.hex, hex(l.shm.buf));
    assert.equal(py.format.slice(0, 5), "qqqqq");
    const ops: [number, Typed][] = [
      [0, str("from py")],
      [1, float("1.5")],
      [2, int(-(2n ** 63n))],
      [4, none],
      [9, int(3)],
      [12, bool(false)],
      [14, str("x")],
      [15, bytes("61")],
      [17, str("ÿÿÿÿÿÿÿ")], // 14 bytes, fits our 16-byte slot
      [18, int(9)],
      [21, str("a\u0000")], // Python strips the NUL on read, and so do we
    ];
    const after = await python(["write", l.name], ops);
    const wanted = [...expected];
    for (const [i, t] of ops) wanted[i] = t;
    wanted[21] = str("a");
    assert.deepEqual(after.values, wanted);
    assert.equal(hex(l.shm.buf), after.hex);
    assertSame([...l], wanted);
    assert.equal(l.get(2), -(2n ** 63n));
    assert.equal(l.get(17), "ÿÿÿÿÿÿÿ");
  }
}, { skip: noPython });

test("slot rules: strings keep their room, values that do not fit are RangeError, types change", () => {
  using l = ShareableList.create(["abc", 1, new Uint8Array(9), true]);
  assert.equal(l.shm.size, 8 + 8 * 5 + 8 + 8 + 16 + 8 + 8 * 4 + 4);
  l.set(0, "1234567"); // 7 bytes in 8
  l.set(0, "12345678"); // 8 bytes fill the slot exactly
  assert.equal(l.get(0), "12345678");
  assert.throws(() => l.set(0, "123456789"), RangeError);
  assert.throws(() => l.set(0, "éééé" + "é"), RangeError); // 10 bytes, 5 characters
  assert.equal(l.get(0), "12345678");
  l.set(0, "");
  assert.equal(l.get(0), "");
  l.set(1, "8 chars!"); // an int slot holds 8 bytes of text
  assert.equal(l.get(1), "8 chars!");
  assert.throws(() => l.set(1, "nine byte"), RangeError);
  l.set(1, new Uint8Array([1, 2, 3]));
  assert.deepEqual(l.get(1), new Uint8Array([1, 2, 3]));
  l.set(2, "sixteen bytes ok");
  assert.equal(l.get(2), "sixteen bytes ok");
  l.set(2, 5.5);
  assert.equal(l.get(2), 5.5);
  l.set(2, new Uint8Array(16).fill(7)); // back to the full 16-byte room
  assert.deepEqual(l.get(2), new Uint8Array(16).fill(7));
  l.set(-1, null);
  assert.equal(l.get(3), null);
  l.set(3, 2n ** 62n);
  assert.equal(l.get(-1), 2n ** 62n);
  assert.throws(() => l.set(3, 2n ** 63n), RangeError);
  assert.throws(() => l.set(3, -(2n ** 63n) - 1n), RangeError);
  assert.throws(() => l.set(4, 1), RangeError);
  assert.throws(() => l.set(-5, 1), RangeError);
  assert.throws(() => l.get(4), RangeError);
  assert.throws(() => l.get(1.5), TypeError);
  assert.throws(() => l.set(0, undefined as never), TypeError);
  assert.throws(() => l.set(0, {} as never), TypeError);
  assert.throws(() => l.set(0, [1] as never), TypeError);
  assert.throws(() => ShareableList.create([undefined as never]), TypeError);
  assert.throws(() => ShareableList.create(5 as never), TypeError);
});

test("numbers: safe integers are int64, everything else float64; big int64 read back as bigint", () => {
  using l = ShareableList.create([2 ** 53 - 1, 2 ** 53, 1e300, -0, 2n, 2n ** 53n]);
  assert.equal(l.get(0), 2 ** 53 - 1);
  assert.equal(l.get(1), 2 ** 53);
  assert.equal(l.get(2), 1e300);
  assert.ok(Object.is(l.get(3), -0));
  assert.equal(l.get(4), 2); // a small int64 reads as a number
  assert.equal(l.get(5), 2n ** 53n); // beyond safe: bigint
  const formats = new TextDecoder().decode(l.shm.buf.subarray(8 * 8 + 48, 8 * 8 + 48 + 48)).replace(
    /\0/g,
    "",
  );
  assert.equal(formats, "qdddqq");
});

test("indexOf, count and iteration compare as documented", () => {
  using l = ShareableList.create([1, 1n, true, NaN, "a", new Uint8Array([1]), null, 2 ** 60, 1.5]);
  assert.equal(l.indexOf(1), 0);
  assert.equal(l.count(1), 2);
  assert.equal(l.count(1n), 2);
  assert.equal(l.indexOf(true), 2);
  assert.equal(l.count(true), 1);
  assert.equal(l.indexOf(NaN), -1);
  assert.equal(l.indexOf("a"), 4);
  assert.equal(l.indexOf(new Uint8Array([1])), 5);
  assert.equal(l.indexOf(new Uint8Array([1, 0])), -1);
  assert.equal(l.indexOf(null), 6);
  assert.equal(l.indexOf(2n ** 60n), 7);
  assert.equal(l.indexOf(1.5), 8);
  assert.equal(l.indexOf("b"), -1);
  assert.equal([...l].length, 9);
});

test("an empty list, open by name, close twice, dispose unlinks only what it created", () => {
  const name = uniqueName("empty");
  const l = ShareableList.create([], { name });
  assert.equal(l.length, 0);
  assert.equal(l.shm.size, 16);
  assert.deepEqual([...l], []);
  const m = ShareableList.open(name);
  assert.equal(m.length, 0);
  m[Symbol.dispose]();
  assert.equal(m.closed, true);
  m.close();
  // m did not create it: still there.
  const again = ShareableList.open(name);
  again.close();
  l[Symbol.dispose]();
  assert.throws(() => ShareableList.open(name), { name: "NotFoundError" });
  assert.throws(() => l.get(0), TypeError);
});

test("a segment that is not a ShareableList is a TypeError, never a crash or a hang", () => {
  const cases: [string, number, (dv: DataView, u8: Uint8Array) => void, RegExp][] = [
    ["too small", 8, () => {}, /less than the 16/],
    ["negative count", 64, (dv) => dv.setBigInt64(0, -5n, true), /negative/],
    ["huge count", 64, (dv) => dv.setBigInt64(0, 1n << 60n, true), /needs more than/],
    ["garbage", 4096, (_dv, u8) => crypto.getRandomValues(u8), /not a ShareableList/],
    ["offsets out of range", 64, (dv) => {
      dv.setBigInt64(0, 1n, true);
      dv.setBigInt64(16, 1n << 40n, true);
    }, /past its/],
    ["decreasing offsets", 128, (dv) => {
      dv.setBigInt64(0, 2n, true);
      dv.setBigInt64(16, 16n, true);
      dv.setBigInt64(24, 8n, true);
    }, /grow by at least 8/],
    ["truncated", 40, (dv) => {
      dv.setBigInt64(0, 1n, true);
      dv.setBigInt64(16, 8n, true);
    }, /need 41 bytes/],
    ["unknown format", 41, (dv, u8) => {
      dv.setBigInt64(0, 1n, true);
      dv.setBigInt64(16, 8n, true);
      u8.set(new TextEncoder().encode("i"), 32);
    }, /format "i"/],
    ["unknown code", 41, (dv, u8) => {
      dv.setBigInt64(0, 1n, true);
      dv.setBigInt64(16, 8n, true);
      u8[32] = 0x71;
      u8[40] = 9;
    }, /back-transform code 9/],
    ["string past the data", 41, (dv, u8) => {
      dv.setBigInt64(0, 1n, true);
      dv.setBigInt64(16, 8n, true);
      u8.set(new TextEncoder().encode("800s"), 32);
      u8[40] = 1;
    }, /needs 800 bytes and its slot in the data area has 8/],
  ];
  for (const [what, size, fill, message] of cases) {
    using shm = SharedMemory.create({ name: uniqueName("notlist"), size });
    fill(new DataView(shm.buf.buffer), shm.buf);
    if (what === "garbage") shm.buf[7] = 0x80; // a negative count, whatever the random bytes
    assert.throws(() => ShareableList.open(shm.name), (e: Error) => {
      assert.ok(e instanceof TypeError, `${what}: ${e}`);
      assert.match(e.message, message, what);
      assert.match(e.message, /^Cannot open ShareableList/, what);
      return true;
    });
  }
});

test("a list made here is read and written by a process of the other runtime", async () => {
  using l = ShareableList.create(["a string of 16 b", 1, 2.5, null, true, -(2n ** 62n), "ü"], {
    name: uniqueName("xlist"),
  });
  const out = await runOk(tsCommand(OTHER, "tests/children/list_peer.ts", [l.name]));
  assert.deepEqual(JSON.parse(out), [
    "a string of 16 b",
    1,
    2.5,
    null,
    true,
    { bigint: String(-(2n ** 62n)) },
    "ü",
  ]);
  assert.equal(l.get(0), "from peer");
  assert.equal(l.get(1), -(2n ** 63n));
  assert.ok(Number.isNaN(l.get(2)));
  assert.deepEqual(l.get(3), new Uint8Array([1, 2, 3]));
  assert.equal(l.get(6), "ü");
});

test('any iterable makes a list, a string gives its characters, as Python\'s ShareableList("howdy")', () => {
  using s = ShareableList.create("howdy");
  assert.deepEqual([...s], ["h", "o", "w", "d", "y"]);
  assert.equal(s.format, "8s8s8s8s8s");
  using u = ShareableList.create("é🎉");
  assert.deepEqual([...u], ["é", "🎉"]);
  using set = ShareableList.create(new Set([1, 2]));
  assert.deepEqual([...set], [1, 2]);
  using gen = ShareableList.create((function* () {
    yield 1;
    yield "two";
  })());
  assert.deepEqual([...gen], [1, "two"]);
  using copy = ShareableList.create(s);
  assert.deepEqual([...copy], [...s]);
  assert.notEqual(copy.name, s.name);
  using empty = ShareableList.create();
  assert.equal(empty.length, 0);
  assert.equal(empty.format, "");
  for (const bad of [5, null, {}, true, 1n]) {
    assert.throws(() => ShareableList.create(bad as never), {
      name: "TypeError",
      message: /^Cannot create ShareableList: values must be iterable \(an array, a string, a Set/,
    });
  }
});

test("misuse gets a message saying what was attempted, never an engine message", () => {
  const engine = /detached|is not a function|Cannot read properties|private member|undefined is not|Atomics/;
  const refused = (fn: () => unknown, type: ErrorConstructor, message: RegExp) =>
    assert.throws(fn, (e: Error) => {
      assert.ok(e instanceof type, String(e));
      assert.match(e.message, message);
      assert.doesNotMatch(
        e.message.replace(/was detached \(transferred away\)|is detached \(its/, ""),
        engine,
      );
      return true;
    });
  refused(
    () => new (ShareableList as unknown as new () => unknown)(),
    TypeError,
    /use ShareableList\.create/,
  );
  refused(() => ShareableList.open(5 as never), TypeError, /name must be a string/);
  refused(() => ShareableList.create([1], "x" as never), TypeError, /options must be an object/);
  const l = ShareableList.create([1, "ab", null]);
  refused(() => l.get("1" as never), TypeError, /index must be an integer, got "1"/);
  refused(
    () => l.set(0, {} as never),
    TypeError,
    /is not a number, bigint, boolean, null, string or Uint8Array/,
  );
  refused(() => l.set(0, (() => 1) as never), TypeError, /function/);
  l[Symbol.dispose]();
  for (
    const use of [
      () => l.get(0),
      () => l.set(0, 1),
      () => l.format,
      () => l.indexOf(1),
      () => l.count(null),
      () => [...l],
    ]
  ) refused(use, TypeError, /is closed/);
  assert.match(String(l), /^ShareableList\(closed, name="psm_[0-9a-f]{8}"\)$/);

  using t = ShareableList.create([1, "ab"]);
  t.shm.buf.buffer.transfer(); // detaches the list's buffer without closing it
  refused(() => t.get(0), TypeError, /was detached \(transferred away\)/);
  refused(() => t.set(1, "x"), TypeError, /was detached \(transferred away\)/);

  // A detached Uint8Array as the value: refused before anything is written.
  const gone = new Uint8Array(4);
  gone.buffer.transfer();
  using u = ShareableList.create([new Uint8Array(4)]);
  refused(() => u.set(0, gone), TypeError, /^Cannot write ShareableList item 0: the Uint8Array is detached/);
  refused(
    () => ShareableList.create([gone]),
    TypeError,
    /^Cannot create ShareableList: item 0: the Uint8Array is/,
  );
});

test("a corrupt slot or header is refused on read and on write, and a refused write touches nothing", () => {
  const formatsAt = (l: ShareableList) =>
    (l.length + 2) * 8 + Number(new DataView(l.shm.buf.buffer).getBigInt64(8 + 8 * l.length, true));
  const corruptions: [string, (dv: DataView, u8: Uint8Array, l: ShareableList) => void, RegExp][] = [
    [
      "a str format wider than its slot",
      (_dv, u8, l) => u8.set(new TextEncoder().encode("9999s\0\0\0"), formatsAt(l)),
      /"9999s" needs 9999 bytes and its slot in the data area has 8/,
    ],
    [
      "a str format narrower than its slot",
      (_dv, u8, l) => u8.set(new TextEncoder().encode("1s\0\0\0\0\0\0"), formatsAt(l)),
      /"1s" needs 1 bytes/,
    ],
    [
      "an unknown format",
      (_dv, u8, l) => u8.set(new TextEncoder().encode("zz\0\0\0\0\0\0"), formatsAt(l)),
      /format "zz" is not one/,
    ],
    [
      "a code that does not go with the format",
      (_dv, u8, l) => (u8[formatsAt(l) + 8 * l.length] = 0),
      /does not go with back-transform code 0/,
    ],
    [
      "an unknown code",
      (_dv, u8, l) => (u8[formatsAt(l) + 8 * l.length] = 7),
      /back-transform code 7 is unknown/,
    ],
    ["a changed count", (dv) => dv.setBigInt64(0, 2n, true), /item count is now 2, not the 3/],
    ["a changed offset", (dv) => dv.setBigInt64(16, 16n, true), /offsets are now 0\.\.16, not the 0\.\.8/],
  ];
  for (const [what, corrupt, message] of corruptions) {
    using l = ShareableList.create(["abc", 7, "tail"]);
    const u8 = l.shm.buf;
    corrupt(new DataView(u8.buffer), u8, l);
    const before = u8.slice();
    for (const value of ["x", 5, null, 2.5, true, new Uint8Array([1])] as ShareableValue[]) {
      assert.throws(() => l.set(0, value), (e: Error) => {
        assert.ok(e instanceof TypeError, `${what}: ${e}`);
        assert.match(
          e.message,
          /^Cannot write item 0 of ShareableList "psm_[0-9a-f]{8}": /,
          what,
        );
        assert.match(e.message, message, what);
        assert.match(e.message, /the segment is corrupt$/, what);
        return true;
      });
      assert.deepEqual(u8, before, `${what}: a refused write changed nothing`);
    }
    assert.throws(() => l.get(0), message, what);
    assert.throws(() => l.format, message, what);
    if (!/count/.test(what)) {
      assert.equal(l.get(2), "tail", `${what}: the rest is intact`);
      l.set(2, "more");
      assert.equal(l.get(2), "more");
    }
  }
});

test("creating a list under a taken name fails and leaves the other segment alone", () => {
  using other = SharedMemory.create({ name: uniqueName("taken"), size: 64 });
  other.buf[0] = 42;
  assert.throws(() => ShareableList.create([1, 2], { name: other.name }), { name: "AlreadyExistsError" });
  using again = SharedMemory.open(other.name);
  assert.equal(again.buf[0], 42);
  assert.equal(again.size, 64);
});

test(
  "strings get Python's own slot whenever their bytes fit it, so the layout is byte for byte Python's",
  async () => {
    // Python sizes a str slot by characters: 8 * (len // 8 + 1).
    const texts = ["encodés", "éééé", "日本", "12345678", "", "ab", "ɑ".repeat(7)];
    using l = ShareableList.create(texts);
    assert.equal(l.format, "8s8s8s16s8s8s16s"); // "ɑ" x 7: 7 characters, 14 bytes: by bytes
    assert.deepEqual([...l], texts);
    const fits = texts.slice(0, 6);
    using m = ShareableList.create(fits);
    const py = await python(["replay"], { values: fits.map(str), ops: [] });
    assert.equal(hex(m.shm.buf), py.hex);
  },
  { skip: noPython },
);
