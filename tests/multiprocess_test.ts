// Several OS processes, Deno and Bun side by side, sharing one segment.
import assert from "node:assert/strict";
import { SharedMemory } from "../mod.ts";
import { runtime, test } from "./_harness.ts";
import { ALL, BOTH, run, start, tsCommand, uniqueName } from "./_process.ts";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

const PEER = "tests/children/core_peer.ts";

async function until(cell: Int32Array, index: number, value: number, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Atomics.load(cell, index) !== value) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for cell ${index} to become ${value}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

for (const child of BOTH) {
  test(`${runtime} parent and ${child} child see each other's writes, both ways, while both are mapped`, async () => {
    const size = 1 << 16;
    using shm = SharedMemory.create({ name: uniqueName("xchg"), size });
    const half = size / 2;
    let expected = 0;
    for (let i = 64; i < half; i++) {
      shm.buf[i] = (i * 17 + 3) & 0xff;
      expected = (expected + shm.buf[i]! * (i % 13 + 1)) % 1_000_000_007;
    }
    const flags = shm.view(Int32Array, 0, 4);
    const peer = start(tsCommand(child, PEER, ["exchange", shm.name]));
    await until(flags, 0, 1);
    for (let i = half; i < size; i++) assert.equal(shm.buf[i], (i * 31 + 7) & 0xff, `byte ${i}`);
    assert.match(new TextDecoder().decode(shm.buf.subarray(32, 64)), new RegExp(`^hello from ${child}\0*$`));
    Atomics.store(flags, 1, 41_000 + size);
    Atomics.store(flags, 0, 2);
    await until(flags, 0, 3);
    assert.equal(flags[2], 41_001 + size);
    const result = await peer.done;
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout.trim().split("\n").pop()!);
    assert.deepEqual(report, { runtime: child, checksum: expected, saw: 41_000 + size });
  });
}

test("three processes, Deno, Bun and Node, doing Atomics.add reach the exact total", async () => {
  using shm = SharedMemory.create({ name: uniqueName("add"), size: 4096 });
  const n = 2_000_000;
  const cells = shm.view(Int32Array, 0, 3);
  const peers = ALL.map((rt) => start(tsCommand(rt, PEER, ["add", shm.name, String(n)])));
  await until(cells, 1, 3); // all three attached
  Atomics.store(cells, 2, 1); // go: the adds overlap
  const results = await Promise.all(peers.map((p) => p.done));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  assert.equal(cells[0], 3 * n);
});

for (const child of BOTH) {
  test(`a ${child} process writing through a read-only handle survives and the segment is unchanged`, async () => {
    using shm = SharedMemory.create({ name: uniqueName("rowrite"), size: 3 * 4096 * 2 });
    shm.buf.fill(7);
    const r = await start(tsCommand(child, PEER, ["rowrite", shm.name])).done;
    assert.equal(r.code, 0, `exit ${r.code ?? r.signal}: ${r.stderr}`);
    // Linux maps read-only segments private: the writer sees its own write. macOS hands out copies.
    const local = process.platform === "darwin" ? [7, 7] : [0xaa, 0xbb];
    assert.deepEqual(JSON.parse(r.stdout.trim()), { runtime: child, local, survived: true });
    assert.ok(shm.buf.every((b) => b === 7), "the segment must be unchanged");
  });
}

test("a segment created here is opened by another runtime by its name, read-only", async () => {
  using shm = SharedMemory.create({ size: 12345 });
  shm.buf.set([1, 2, 3, 4]);
  for (const child of BOTH) {
    const r = await start(tsCommand(child, PEER, ["open", shm.name, "ro"])).done;
    assert.deepEqual(JSON.parse(r.stdout.trim()), { size: 12345, first: [1, 2, 3, 4] });
  }
});

// A native job of the runtime (a thread-pool crypto call, a zlib stream, a pending fs read) may hold
// a raw pointer into buf when close() runs. The pages must stay valid for it (no SIGSEGV), and its
// late writes must land in memory nobody else sees, never in a segment mapped later.
const NATIVE_JOBS = runtime === "bun"
  ? ["gzip", "stream", "scrypt", "pbkdf2"]
  : ["scrypt", "pbkdf2", "stream"];
for (const job of NATIVE_JOBS) {
  test(`${runtime}: close() while a native ${job} job reads buf: no crash, no write into a new segment`, async () => {
    const r = await run(tsCommand(runtime, PEER, ["native", job]));
    assert.equal(r.code, 0, `exit ${r.code} (139 is SIGSEGV)\n${r.stderr.slice(-2000)}`);
    assert.deepEqual(JSON.parse(r.stdout.trim()), { survived: true, dirty: 0 });
  });
}

test(
  `${runtime}: an fs read pending into buf across close() never lands in a segment mapped later`,
  async () => {
    const dir = mkdtempSync(`${tmpdir()}/shm-late-`);
    try {
      execFileSync("mkfifo", [`${dir}/fifo`]);
      const r = await run(tsCommand(runtime, PEER, ["lateread", `${dir}/fifo`]));
      assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr.slice(-2000)}`);
      assert.deepEqual(JSON.parse(r.stdout.trim()), { survived: true, dirty: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { skip: process.platform === "win32" && "POSIX FIFOs" },
);
