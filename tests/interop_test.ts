// Interop with programs nobody here wrote: CPython's multiprocessing.shared_memory + NumPy, and C.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { SharedMemory } from "../mod.ts";
import { test } from "./_harness.ts";
import { hasCommand, ROOT, runOk, start, uniqueName } from "./_process.ts";

const python = hasCommand("python3") ? "python3" : undefined;
const hasNumpy = python !== undefined &&
  (await runOk([python, "-c", "import numpy"]).then(() => true, () => false));
const noPython = !hasNumpy && "python3 with NumPy is not installed";
const noGcc = !hasCommand("gcc") && "gcc is not installed";

const PY = `${ROOT}/tests/py/core_peer.py`;

test("Python creates (SharedMemory + NumPy int64), TS attaches by name and adds 10", async () => {
  const py = start([python!, PY, "create"]);
  const name = (await py.waitFor(/^psm_/)).trim();
  {
    using shm = SharedMemory.open(name);
    assert.equal(shm.size, 40);
    const values = shm.view(BigInt64Array, 0, 5);
    assert.deepEqual([...values], [1n, 2n, 3n, 4n, 5n]);
    for (let i = 0; i < values.length; i++) values[i]! += 10n;
  }
  py.send("go");
  const r = await py.done;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim().split("\n").pop()!), [11, 12, 13, 14, 15]);
  // Python unlinked it.
  assert.throws(() => SharedMemory.open(name), { name: "NotFoundError" });
}, { skip: noPython });

test("TS creates, Python attaches with NumPy, reads and doubles float64s, writes UTF-8 back", async () => {
  using shm = SharedMemory.create({ size: 4096 });
  shm.view(Float64Array, 0, 4).set([1.5, -2, Math.PI, 1e300]);
  const out = await runOk([python!, PY, "attach", shm.name]);
  assert.deepEqual(JSON.parse(out), { size: 4096, values: [1.5, -2, Math.PI, 1e300] });
  assert.deepEqual([...shm.view(Float64Array, 0, 4)], [3, -4, 2 * Math.PI, 2e300]);
  const text = new TextDecoder().decode(shm.buf.subarray(64, 64 + 15));
  assert.equal(text, "from python ✓");
}, { skip: noPython });

/** Compiles the C peer into a fresh folder, runs `body` with its path, removes the folder. */
async function withCPeer(body: (peer: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(`${tmpdir()}/shm-c-`);
  try {
    await runOk([
      "gcc",
      "-O2",
      "-Wall",
      "-Werror",
      "-o",
      `${dir}/posix_peer`,
      `${ROOT}/tests/c/posix_peer.c`,
    ]);
    await body(`${dir}/posix_peer`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test(
  "C creates with shm_open/mmap, TS attaches, reads and writes, C sees it",
  () =>
    withCPeer(async (peer) => {
      const name = uniqueName("c_create");
      const c = start([peer, "create", name]);
      await c.waitFor(/^ready/);
      {
        using shm = SharedMemory.open(name);
        assert.equal(shm.size, 4096);
        const ints = shm.view(Int32Array, 0, 4);
        assert.deepEqual([...ints.subarray(0, 3)], [10, 20, 30]);
        assert.equal(new TextDecoder().decode(shm.buf.subarray(64, 76)), "hello from C");
        ints[3] = ints[0]! + ints[1]! + ints[2]!;
        ints[0] = -5;
      }
      c.send("go");
      const r = await c.done;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim().split("\n").pop(), "-5 20 30 60");
    }),
  { skip: noGcc },
);

test(
  "TS creates, C attaches with shm_open/fstat/mmap by the same name, reads and writes",
  () =>
    withCPeer(async (peer) => {
      using shm = SharedMemory.create({ name: uniqueName("c_open"), size: 8192 });
      shm.view(BigInt64Array, 0, 2).set([123456789012345n, -42n]);
      const out = await runOk([peer, "open", shm.name]);
      assert.equal(out.trim(), "8192 123456789012345 -42");
      assert.deepEqual([...shm.view(BigInt64Array, 0, 2)], [-1n, 1n << 40n]);
    }),
  { skip: noGcc },
);
