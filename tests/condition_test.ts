// Condition: the contract in one process, and a producer/consumer pair across processes and
// runtimes passing 10,000 items in order, with the consumer asleep (not spinning) while it waits.
import assert from "node:assert/strict";
import { Condition, Mutex, NotHeldError, SharedMemory } from "../mod.ts";
import { test } from "./_harness.ts";
import { runOk, tsCommand, uniqueName } from "./_process.ts";

const CHILD = "tests/children/sync_child.ts";

function segment(): SharedMemory {
  return SharedMemory.create({ name: uniqueName("cond"), size: 4096 });
}

test("wait needs the mutex, times out with the mutex held again, notify with no waiter is harmless", async () => {
  const shm = segment();
  try {
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
    m.unlock();
    assert.equal(shm.view(Int32Array, 12, 1)[0], 0, "no sleeper left registered");
    assert.throws(() => c.notify(0), RangeError);
  } finally {
    shm.close();
    shm.unlink();
  }
});

test("a notify from a timer wakes an async wait in the same thread", async () => {
  const shm = segment();
  try {
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
  } finally {
    shm.close();
    shm.unlink();
  }
});

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
      const shm = segment();
      try {
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
      } finally {
        shm.close();
        shm.unlink();
      }
    },
    { timeout: 120_000 },
  );
}
