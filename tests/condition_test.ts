// Condition: the contract in one process, a producer/consumer pair across processes and runtimes
// passing 10,000 items in order (the consumer asleep, not spinning, while it waits), signals, bad
// input, and wake-ups that survive a corrupted sleeper count.
import assert from "node:assert/strict";
import { Condition, Mutex, NotHeldError, SharedMemory } from "../mod.ts";
import { test } from "./_harness.ts";
import { BOTH, runOk, start, tsCommand, uniqueName } from "./_process.ts";

const CHILD = "tests/children/sync_child.ts";

function segment(): SharedMemory {
  return SharedMemory.create({ name: uniqueName("cond"), size: 4096 });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("wait needs the mutex, times out with the mutex held again, notify with no waiter is harmless", async () => {
  using shm = segment();
  assert.equal(Condition.BYTE_LENGTH, 8);
  const m = new Mutex(shm, 0);
  const c = new Condition(shm, 8);
  await assert.rejects(c.wait(m), NotHeldError);
  assert.throws(() => c.waitSync(m), NotHeldError);
  c.notify();
  c.notifyAll();
  m.lockSync();
  assert.equal(c.waitSync(m, { timeout: 20 }), false);
  assert.equal(m.heldByThisThread, true);
  assert.equal(await c.wait(m, { timeout: 20 }), false);
  assert.equal(m.heldByThisThread, true);
  assert.equal(c.waitSync(m, { timeout: 0 }), false, "timeout 0: unlock, look, lock again");
  m.unlock();
  assert.equal(shm.view(Int32Array, 12, 1)[0], 0, "no sleeper left registered");
});

test("a notify from a timer wakes an async wait in the same thread", async () => {
  using shm = segment();
  const m = new Mutex(shm, 0);
  const c = new Condition(shm, 8);
  const flag = shm.view(Int32Array, 32, 1);
  setTimeout(async () => {
    using _g = await m.lock();
    flag[0] = 1;
    c.notify();
  }, 30);
  using _g = await m.lock();
  while (flag[0] === 0) assert.equal(await c.wait(m, { timeout: 10_000 }), true);
  assert.equal(flag[0], 1);
});

test("signals: aborted on entry leaves the mutex held; aborting a sleeping wait relocks, then rejects", async () => {
  using shm = segment();
  const m = new Mutex(shm, 0);
  const c = new Condition(shm, 8);
  using _g = m.lockSync();
  const signal = AbortSignal.abort(new Error("stop"));
  assert.throws(() => c.waitSync(m, { signal }), /stop/);
  await assert.rejects(c.wait(m, { signal }), /stop/);
  assert.equal(m.heldByThisThread, true);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("gave up")), 20);
  await assert.rejects(c.wait(m, { signal: controller.signal, timeout: 10_000 }), /gave up/);
  assert.equal(m.heldByThisThread, true, "the mutex is held again after the abort");
  assert.equal(shm.view(Int32Array, 12, 1)[0], 0, "no sleeper left registered");
});

test("bad arguments to Condition are TypeErrors or RangeErrors on entry, before NotHeldError", async () => {
  using shm = segment();
  const m = new Mutex(shm, 0);
  const c = new Condition(shm, 8);
  const cases: [string, () => unknown, ErrorConstructor, RegExp][] = [
    [
      "new Condition(Uint8Array)",
      () => new Condition(new Uint8Array(8) as never, 0),
      TypeError,
      /SharedMemory/,
    ],
    ["new Condition(shm, null)", () => new Condition(shm, null as never), TypeError, /byteOffset/],
    ["new Condition(shm, 6)", () => new Condition(shm, 6), RangeError, /multiple of 4/],
    ["new Condition(shm, 4092)", () => new Condition(shm, 4092), RangeError, /needs 8 bytes/],
    ["waitSync({})", () => c.waitSync({} as never), TypeError, /expected a Mutex/],
    ["waitSync()", () => (c.waitSync as (...a: unknown[]) => unknown)(), TypeError, /expected a Mutex/],
    ["wait(shm)", () => c.wait(shm as never), TypeError, /expected a Mutex/],
    ["waitSync(m, 5)", () => c.waitSync(m, 5 as never), TypeError, /options must be an object/],
    ["waitSync(m, {timeout: -1})", () => c.waitSync(m, { timeout: -1 }), RangeError, /timeout/],
    ["wait(m, {timeout: 'x'})", () => c.wait(m, { timeout: "x" as never }), TypeError, /timeout/],
    ["wait(m, {signal: {}})", () => c.wait(m, { signal: {} as never }), TypeError, /signal/],
    ["notify(0)", () => c.notify(0), RangeError, /count/],
    ["notify(2.5)", () => c.notify(2.5), RangeError, /count/],
    ["notify('1')", () => c.notify("1" as never), TypeError, /count must be a number/],
  ];
  // Not holding the mutex: each would be a NotHeldError if the arguments were looked at later.
  for (const [what, call, type, message] of cases) {
    await assert.rejects(
      async () => await call(),
      (e: Error) => e instanceof type && message.test(e.message),
      what,
    );
  }
  assert.equal(shm.view(Int32Array, 8, 1)[0], 0, "no bad notify bumped the sequence number");
});

test("a condition of a closed segment: every member says the SharedMemory is closed", async () => {
  const shm = segment();
  const other = SharedMemory.create({ name: uniqueName("cond"), size: 64 });
  const m = new Mutex(other, 0);
  const c = new Condition(shm, 8);
  shm.close();
  shm.unlink();
  try {
    using _g = m.lockSync();
    for (
      const [what, call] of [
        ["wait", () => c.wait(m)],
        ["waitSync", () => c.waitSync(m)],
        ["notify", () => c.notify()],
        ["notifyAll", () => c.notifyAll()],
      ] as [string, () => unknown][]
    ) {
      await assert.rejects(
        async () => await call(),
        (e: Error) => e instanceof TypeError && /SharedMemory is closed/.test(e.message),
        what,
      );
    }
    assert.equal(m.heldByThisThread, true, "the mutex was not given up");
  } finally {
    other[Symbol.dispose]();
  }
});

// Sleeper counts a corrupted word may hold; 0 is written under a child already counted in.
const CORRUPT = ["-1", "-7", String(-(2 ** 31)), "0"];

for (const rt of BOTH) {
  for (const flavour of ["sync", "async"]) {
    test(`a corrupted sleeper count never costs a ${rt} ${flavour} wait its notification`, async () => {
      using shm = segment();
      const m = new Mutex(shm, 0);
      const c = new Condition(shm, 8);
      const count = shm.view(Int32Array, 12, 1);
      const child = start(tsCommand(rt, CHILD, ["cond-corrupt", shm.name, flavour, ...CORRUPT]), {
        timeout: 60_000,
      });
      for (const [k, v] of CORRUPT.entries()) {
        await child.waitFor(new RegExp(`^waiting ${k}$`));
        // Wait until the child counted itself in, then give it time to fall asleep.
        while (Atomics.load(count, 0) === Number(v)) await sleep(5);
        if (v === "0") Atomics.store(count, 0, 0);
        await sleep(50);
        {
          using _g = await m.lock({ timeout: 10_000 });
          c.notify();
        }
        // A missed notification shows as a wait that timed out (false, after 10 s).
        const line = await child.waitFor(new RegExp(`^woken ${k}`));
        assert.equal(line, `woken ${k} true`, `count ${v}`);
      }
      const out = await child.done;
      assert.equal(out.code, 0, out.stdout + out.stderr);
    }, { timeout: 90_000 });
  }
}

for (
  const [producer, consumer, flavour] of [["bun", "deno", "async"], ["deno", "bun", "async"], [
    "deno",
    "bun",
    "sync",
  ]] as const
) {
  test(
    `producer (${producer}) -> consumer (${consumer}, ${flavour}): 10,000 items in order, no busy-wait`,
    async () => {
      using shm = segment();
      const [, consumed] = await Promise.all([
        // The producer sleeps 600 ms before the first item: the consumer waits for it asleep.
        runOk(tsCommand(producer, CHILD, ["produce", shm.name, "10000", "600"]), { timeout: 90_000 }),
        runOk(tsCommand(consumer, CHILD, ["consume", shm.name, "10000", flavour]), { timeout: 90_000 }),
      ]);
      const m = consumed.match(/consumed (\d+) firstWaitCpuMs ([\d.]+)/);
      assert.ok(m, consumed);
      assert.equal(Number(m[1]), 10_000);
      // A spinning consumer would burn ~all of the wait on the CPU; a sleeping one next to nothing.
      assert.ok(Number(m[2]) < 250, `the consumer used ${m[2]} ms of CPU while waiting for the first item`);
      console.log(`consumer CPU while waiting ~600 ms for the first item: ${m[2]} ms`);
    },
    { timeout: 120_000 },
  );
}
