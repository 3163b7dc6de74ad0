// Barrier: the contract in one process, 4 processes (2 Deno, 2 Bun) released together round after
// round, none before all 4 arrived; signals, bad input, and a party killed with SIGKILL while it
// waits (the round breaks, the others are told, the barrier goes on).
import assert from "node:assert/strict";
import { Barrier, BrokenBarrierError, SharedMemory, TimeoutError } from "../mod.ts";
import { test } from "./_harness.ts";
import { BOTH, type Child, runOk, type Runtime, start, tsCommand, uniqueName } from "./_process.ts";

const CHILD = "tests/children/sync_child.ts";

function segment(): SharedMemory {
  return SharedMemory.create({ name: uniqueName("barrier"), size: 4096 });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a barrier of 1 passes at once; a timeout withdraws the party", async () => {
  using shm = segment();
  assert.equal(Barrier.byteLength(1), 4);
  assert.equal(Barrier.byteLength(4), 16);
  assert.equal(new Barrier(shm, 0, 1).waitSync(), 0);
  assert.equal(await new Barrier(shm, 0, 1).wait(), 0);
  const b = new Barrier(shm, 4, 2);
  assert.equal(b.parties, 2);
  assert.throws(() => b.waitSync({ timeout: 20 }), TimeoutError);
  assert.equal(b.waiting, 0, "the timed-out party was withdrawn");
  await assert.rejects(b.wait({ timeout: 20 }), TimeoutError);
  assert.equal(b.waiting, 0);
  assert.deepEqual([...shm.view(Int32Array, 8, 1)], [0], "its slot was freed");
});

test("two async parties in one thread meet at the barrier", async () => {
  using shm = segment();
  const b = new Barrier(shm, 0, 2);
  const first = b.wait({ timeout: 10_000 });
  await sleep(20);
  assert.equal(b.waiting, 1);
  const second = await b.wait({ timeout: 10_000 });
  assert.deepEqual([await first, second].sort(), [0, 1]);
  assert.equal(b.waiting, 0);
});

test("signals: aborted on entry does not arrive; aborting a waiting party withdraws it", async () => {
  using shm = segment();
  const b = new Barrier(shm, 0, 2);
  const signal = AbortSignal.abort(new Error("stop"));
  assert.throws(() => b.waitSync({ signal }), /stop/);
  await assert.rejects(b.wait({ signal }), /stop/);
  assert.equal(b.waiting, 0);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("gave up")), 20);
  await assert.rejects(b.wait({ signal: controller.signal, timeout: 10_000 }), /gave up/);
  assert.equal(b.waiting, 0, "the aborted party was withdrawn");
  // The barrier still works.
  const [x, y] = await Promise.all([b.wait({ timeout: 10_000 }), b.wait({ timeout: 10_000 })]);
  assert.equal(x + y, 1);
});

test("bad arguments to Barrier are TypeErrors or RangeErrors on entry", async () => {
  using shm = segment();
  const b = new Barrier(shm, 0, 3);
  const cases: [string, () => unknown, ErrorConstructor, RegExp][] = [
    [
      "new Barrier(Uint8Array)",
      () => new Barrier(new Uint8Array(8) as never, 0, 2),
      TypeError,
      /SharedMemory/,
    ],
    ["new Barrier(shm, '0', 2)", () => new Barrier(shm, "0" as never, 2), TypeError, /byteOffset/],
    ["new Barrier(shm, 2, 2)", () => new Barrier(shm, 2, 2), RangeError, /multiple of 4/],
    ["new Barrier(shm, 4092, 2)", () => new Barrier(shm, 4092, 2), RangeError, /needs 8 bytes/],
    ["new Barrier(shm, 0, 0)", () => new Barrier(shm, 0, 0), RangeError, /parties/],
    ["new Barrier(shm, 0, 65536)", () => new Barrier(shm, 0, 65_536), RangeError, /parties/],
    ["new Barrier(shm, 0, 2.5)", () => new Barrier(shm, 0, 2.5), RangeError, /parties/],
    [
      "new Barrier(shm, 0, '2')",
      () => new Barrier(shm, 0, "2" as never),
      TypeError,
      /parties must be a number/,
    ],
    [
      "new Barrier(shm, 0)",
      () => new Barrier(shm, 0, undefined as never),
      TypeError,
      /parties must be a number/,
    ],
    ["Barrier.byteLength(0)", () => Barrier.byteLength(0), RangeError, /parties/],
    ["Barrier.byteLength(null)", () => Barrier.byteLength(null as never), TypeError, /parties/],
    ["waitSync(5)", () => b.waitSync(5 as never), TypeError, /options must be an object/],
    ["waitSync({timeout: -1})", () => b.waitSync({ timeout: -1 }), RangeError, /timeout/],
    ["wait('x')", () => b.wait("x" as never), TypeError, /options must be an object/],
    ["wait({timeout: NaN})", () => b.wait({ timeout: NaN }), RangeError, /timeout/],
    ["wait({signal: true})", () => b.wait({ signal: true as never }), TypeError, /signal/],
  ];
  for (const [what, call, type, message] of cases) {
    await assert.rejects(
      async () => await call(),
      (e: Error) => e instanceof type && message.test(e.message),
      what,
    );
  }
  assert.equal(b.waiting, 0, "no bad call arrived");
});

test("a barrier of a closed segment: every member says the SharedMemory is closed", async () => {
  const shm = segment();
  const b = new Barrier(shm, 0, 2);
  shm.close();
  shm.unlink();
  for (
    const [what, call] of [
      ["wait", () => b.wait()],
      ["waitSync", () => b.waitSync()],
      ["waiting", () => b.waiting],
    ] as [string, () => unknown][]
  ) {
    await assert.rejects(
      async () => await call(),
      (e: Error) => e instanceof TypeError && /SharedMemory is closed/.test(e.message),
      what,
    );
  }
});

test("4 processes (2 Deno, 2 Bun), 6 rounds: nobody leaves before all 4 arrived", async () => {
  using shm = segment();
  const rounds = 6;
  const outs = await Promise.all(
    (["deno", "deno", "bun", "bun"] as const).map((rt, i) =>
      runOk(tsCommand(rt, CHILD, ["barrier", shm.name, "4", String(rounds), String(i)]), {
        timeout: 90_000,
      })
    ),
  );
  const indexes = outs.map((o) => o.match(/indexes ([\d,]+)/)![1]!.split(",").map(Number));
  for (let r = 0; r < rounds; r++) {
    assert.deepEqual(
      indexes.map((ix) => ix[r]).sort(),
      [0, 1, 2, 3],
      `round ${r}: one of each arrival index`,
    );
    assert.equal(shm.view(Int32Array, 64 + 4 * r, 1)[0], 4);
  }
  assert.equal(new Barrier(shm, 0, 4).waiting, 0);
}, { timeout: 120_000 });

/** Starts a party of the 4-party barrier @0 in a child; resolves once it is about to arrive. */
async function party(rt: Runtime, shm: SharedMemory, flavour: string): Promise<Child> {
  const child = start(tsCommand(rt, CHILD, ["barrier-once", shm.name, "4", "20000", flavour]), {
    timeout: 60_000,
  });
  await child.waitFor(/^arriving/);
  return child;
}

for (const rt of BOTH) {
  test(
    `a ${rt} party killed with SIGKILL while it waits breaks the round; the others are told, the barrier goes on`,
    async () => {
      using shm = segment();
      const barrier = new Barrier(shm, 0, 4);
      const slots = shm.view(Int32Array, 4, 3);
      for (let trial = 0; trial < 3; trial++) {
        const flavour = trial % 2 ? "sync" : "async";
        const victim = await party(rt, shm, flavour);
        // Until the victim has arrived and written its slot.
        while (barrier.waiting === 0 || (slots[0] === 0 && slots[1] === 0)) await sleep(5);
        const survivor = await party(rt === "deno" ? "bun" : "deno", shm, flavour);
        while (barrier.waiting < 2) await sleep(5);
        await sleep(Math.floor(Math.random() * 100)); // kill at a random point of the wait
        victim.kill("SIGKILL");
        await victim.done;
        // This process is the third party (the fourth never comes): it and the survivor are told,
        // not left waiting until their timeout.
        await assert.rejects(barrier.wait({ timeout: 20_000 }), BrokenBarrierError, `trial ${trial}`);
        const out = await survivor.done;
        assert.match(out.stdout, /failed BrokenBarrierError: .*died/, out.stdout + out.stderr);
        assert.equal(barrier.waiting, 0, "the next round starts empty");
        // The next round works, with a new party in the dead one's place.
        const again = await party(rt, shm, flavour);
        const mine = await Promise.all([1, 2, 3].map(() => barrier.wait({ timeout: 20_000 })));
        assert.deepEqual(mine.length, 3);
        assert.match((await again.done).stdout, /passed \d/);
        assert.deepEqual([...slots], [0, 0, 0], "every slot was freed");
      }
    },
    { timeout: 120_000 },
  );
}
