// Semaphore: the contract in one process, and N permits never admitting more than N holders across
// processes of both runtimes.
import assert from "node:assert/strict";
import { Semaphore, SharedMemory, TimeoutError } from "../mod.ts";
import { test } from "./_harness.ts";
import { runOk, start, tsCommand, uniqueName } from "./_process.ts";

const CHILD = "tests/children/sync_child.ts";

function segment(): SharedMemory {
  return SharedMemory.create({ name: uniqueName("sem"), size: 4096 });
}

test("a zero-filled region is an empty semaphore; release, tryAcquire, timeouts", async () => {
  const shm = segment();
  try {
    assert.equal(Semaphore.BYTE_LENGTH, 8);
    const sem = new Semaphore(shm, 0);
    assert.equal(sem.value, 0);
    assert.equal(sem.tryAcquire(), false);
    assert.throws(() => sem.acquireSync({ timeout: 20 }), TimeoutError);
    await assert.rejects(sem.acquire({ timeout: 20 }), TimeoutError);
    sem.release(3);
    assert.equal(sem.value, 3);
    assert.equal(sem.tryAcquire(), true);
    sem.acquireSync({ timeout: 1000 });
    await sem.acquire({ timeout: 1000 });
    assert.equal(sem.value, 0);
    assert.equal(sem.tryAcquire(), false);
    sem.release();
    assert.equal(new Semaphore(shm, 0).value, 1, "another handle sees the same count");
    assert.deepEqual([...shm.view(Int32Array, 0, 2)], [1, 0], "no sleeper left registered");
  } finally {
    shm.close();
    shm.unlink();
  }
});

test("bad counts, offsets and timeouts are RangeErrors", () => {
  const shm = segment();
  try {
    const sem = new Semaphore(shm, 8);
    assert.throws(() => sem.release(0), RangeError);
    assert.throws(() => sem.release(1.5), RangeError);
    assert.throws(() => sem.acquireSync({ timeout: Number.NaN }), RangeError);
    assert.throws(() => new Semaphore(shm, 4093), RangeError);
    sem.release(0x7fff_ffff);
    assert.throws(() => sem.release(1), RangeError);
    assert.equal(sem.value, 0x7fff_ffff);
  } finally {
    shm.close();
    shm.unlink();
  }
});

test("an async acquire waits without blocking the event loop until another process releases", async () => {
  const shm = segment();
  try {
    const sem = new Semaphore(shm, 0);
    // The child stores 1 into the word @0 (the permit count) and wakes: a release from outside.
    const child = start(tsCommand("bun", CHILD, ["futex-wake", shm.name, "200"]));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      await sem.acquire({ timeout: 30_000 });
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks >= 3, `only ${ticks} ticks while waiting`);
    assert.equal(sem.value, 0);
    await child.done;
  } finally {
    shm.close();
    shm.unlink();
  }
});

test("2 permits, 4 processes (2 Deno, 2 Bun): never more than 2 holders at once", async () => {
  const shm = segment();
  try {
    const sem = new Semaphore(shm, 0);
    sem.release(2);
    const passes = 150;
    await Promise.all(
      [["deno", "sync"], ["deno", "async"], ["bun", "sync"], ["bun", "async"]].map(([rt, flavour]) =>
        runOk(tsCommand(rt as "deno" | "bun", CHILD, ["semaphore", shm.name, String(passes), flavour]), {
          timeout: 90_000,
        })
      ),
    );
    const [permits, , holders, most, done] = shm.view(Int32Array, 0, 5);
    assert.equal(done, 4 * passes, "every pass went through");
    assert.equal(holders, 0);
    assert.ok(most >= 1 && most <= 2, `${most} holders at once`);
    assert.equal(permits, 2, "every permit came back");
    console.log(`most holders seen at once: ${most} of 2 permits`);
  } finally {
    shm.close();
    shm.unlink();
  }
}, { timeout: 120_000 });
