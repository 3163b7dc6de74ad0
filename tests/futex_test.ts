// The wait/wake primitive under the synchronization classes: results, bad input, cross-process and
// cross-runtime wake-ups (so the futex is shared, not private), async waits and cancellation; and the
// owner ids lock words carry.
import assert from "node:assert/strict";
import { SharedMemory } from "../mod.ts";
import { futexWaitAsync, futexWaitSync, futexWake, usePollingFallback } from "../_sync/futex.ts";
import { ID_MASK, ownerStatus, possibleId, selfId, selfStart } from "../_sync/owner.ts";
import { Barrier, Mutex, Semaphore } from "../mod.ts";
import { test } from "./_harness.ts";
import { BOTH, type Child, start, stop, tsCommand, uniqueName } from "./_process.ts";

const CHILD = "tests/children/sync_child.ts";

/** Kills a child that may already have exited. */
function segment(): SharedMemory {
  return SharedMemory.create({ name: uniqueName("futex"), size: 4096 });
}

test("a wait returns not-equal at once, times out, and a wake with nobody waiting wakes 0", async () => {
  using shm = segment();
  assert.equal(futexWaitSync(shm, 0, 1), "not-equal");
  assert.equal(await futexWaitAsync(shm, 0, 1), "not-equal");
  assert.equal(futexWaitSync(shm, 0, 0, 20), "timed-out");
  assert.equal(await futexWaitAsync(shm, 0, 0, 20), "timed-out");
  assert.equal(futexWaitSync(shm, 4, 0, 0), "timed-out");
  assert.equal(futexWake(shm, 0), 0);
  assert.equal(futexWake(shm, 0, 1), 0);
});

test("bad offsets, timeouts and counts are RangeErrors", async () => {
  using shm = segment();
  assert.throws(() => futexWaitSync(shm, 2, 0, 1), RangeError);
  assert.throws(() => futexWaitSync(shm, 4096, 0, 1), RangeError);
  assert.throws(() => futexWaitSync(shm, 0, 0, -1), RangeError);
  await assert.rejects(futexWaitAsync(shm, -4, 0, 1), RangeError);
  assert.throws(() => futexWake(shm, 0, -1), RangeError);
  assert.throws(() => futexWake(shm, 6), RangeError);
});

test("an async wait keeps timers firing and is woken by a write plus wake in this process", async () => {
  using shm = segment();
  const word = shm.view(Int32Array, 0, 1);
  let ticks = 0;
  const timer = setInterval(() => {
    if (++ticks === 5) {
      Atomics.store(word, 0, 1);
      futexWake(shm, 0);
    }
  }, 10);
  try {
    let result;
    do result = await futexWaitAsync(shm, 0, 0, 30_000); while (Atomics.load(word, 0) === 0);
    assert.notEqual(result, "timed-out");
    assert.ok(ticks >= 5);
  } finally {
    clearInterval(timer);
  }
});

test("closing the segment ends the async waits asleep on it at once, with a TypeError", async () => {
  using shm = segment();
  using other = SharedMemory.open(shm.name);
  new Mutex(other, 32).lockSync(); // held through the other handle: the lock below waits
  const settled: string[] = [];
  const track = (what: string, p: Promise<unknown>) =>
    p.then(
      () => settled.push(`${what}: resolved`),
      (e) => settled.push(`${what}: ${(e as Error).name}`),
    );
  const all = Promise.all([
    track("futex", futexWaitAsync(shm, 0, 0)),
    track("semaphore", new Semaphore(shm, 16).acquire()),
    track("mutex", new Mutex(shm, 32).lock()),
    track("barrier", new Barrier(shm, 64, 2).wait()),
  ]);
  await new Promise((r) => setTimeout(r, 150)); // all four asleep now
  assert.deepEqual(settled, []);
  const t0 = performance.now();
  shm.close();
  await all;
  const took = performance.now() - t0;
  assert.deepEqual(settled.sort(), [
    "barrier: TypeError",
    "futex: TypeError",
    "mutex: TypeError",
    "semaphore: TypeError",
  ]);
  assert.ok(took < 500, `settled ${took.toFixed(0)} ms after close`);
  // The threads that slept for them were woken by close, not left asleep in the kernel.
  for (const offset of [0, 16, 32, 64]) assert.equal(futexWake(other, offset), 0, `word @${offset}`);
  // And waits keep working afterwards.
  assert.equal(await futexWaitAsync(other, 0, 0, 20), "timed-out");
});

test("an aborted async wait rejects at once with the signal's reason", async () => {
  using shm = segment();
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("stop")), 30);
  await assert.rejects(futexWaitAsync(shm, 0, 0, undefined, controller.signal), /stop/);
  await assert.rejects(futexWaitAsync(shm, 0, 0, 10, controller.signal), /stop/);
});

for (const rt of BOTH) {
  for (const flavour of ["sync", "async"] as const) {
    test(`a ${rt} process sleeping (${flavour}) on a word is woken by this process: the futex is shared`, async () => {
      using shm = segment();
      let child: Child | undefined;
      try {
        child = start(tsCommand(rt, CHILD, ["futex-wait", shm.name, flavour]));
        await child.waitFor(/^waiting/);
        // The child may not be asleep yet: wake until the kernel reports having woken it. It then
        // finds the word still 0 and sleeps again, until the word changes.
        let woken = 0;
        const until = performance.now() + 10_000;
        while (woken === 0 && performance.now() < until) {
          woken = futexWake(shm, 0);
          if (woken === 0) await new Promise((r) => setTimeout(r, 5));
        }
        Atomics.store(shm.view(Int32Array, 0, 1), 0, 1);
        futexWake(shm, 0);
        const out = await child.done;
        assert.equal(out.code, 0, out.stderr);
        assert.equal(woken, 1, "one waiter in another process was woken");
        assert.match(out.stdout, /woken ok/, "the wait ended by our wake reported ok");
      } finally {
        stop(child);
      }
    });
  }

  test(`a ${rt} process wakes a waiter in this process`, async () => {
    using shm = segment();
    const child = start(tsCommand(rt, CHILD, ["futex-wake", shm.name, "300"]));
    const word = shm.view(Int32Array, 0, 1);
    let result;
    do result = await futexWaitAsync(shm, 0, 0, 30_000); while (Atomics.load(word, 0) === 0);
    assert.notEqual(result, "timed-out");
    const out = await child.done;
    assert.equal(out.code, 0, out.stderr);
  });
}

test("the polling fallback (what Windows uses) waits, times out and sees changes without a wake", async () => {
  using shm = segment();
  usePollingFallback(true);
  try {
    const word = shm.view(Int32Array, 0, 1);
    assert.equal(futexWaitSync(shm, 0, 1), "not-equal");
    assert.equal(futexWaitSync(shm, 0, 0, 20), "timed-out");
    assert.equal(await futexWaitAsync(shm, 0, 0, 20), "timed-out");
    assert.equal(futexWake(shm, 0), 0, "pollers need no wake");
    setTimeout(() => Atomics.store(word, 0, 1), 30);
    assert.equal(await futexWaitAsync(shm, 0, 0, 10_000), "ok");
    // The primitives work on top of it.
    const m = new Mutex(shm, 64);
    const sem = new Semaphore(shm, 72);
    setTimeout(() => sem.release(), 30);
    await sem.acquire({ timeout: 10_000 });
    m.lockSync();
    const waiting = m.lock({ timeout: 10_000 }); // same thread, async: waits for the release
    setTimeout(() => m.unlock(), 30);
    (await waiting).unlock();
    assert.equal(m.locked, false);
  } finally {
    usePollingFallback(false);
  }
});

test("an async wait longer than one thread sleep (1 s) ends only when woken or at its own timeout", async () => {
  using shm = segment();
  const word = shm.view(Int32Array, 0, 1);
  let t0 = performance.now();
  assert.equal(await futexWaitAsync(shm, 0, 0, 1300), "timed-out");
  const took = performance.now() - t0;
  assert.ok(took >= 1290, `a 1300 ms wait is not cut short at the 1 s slice (${took.toFixed(0)} ms)`);
  setTimeout(() => {
    Atomics.store(word, 0, 1);
    futexWake(shm, 0);
  }, 1300);
  t0 = performance.now();
  assert.equal(await futexWaitAsync(shm, 0, 0), "ok");
  assert.ok(performance.now() - t0 >= 1290, "an untimed wait sleeps on past the slice until woken");
});

test("an owner id no live thread can have is dead without a probe (0 would probe this process)", () => {
  // The owner ids of lock words 0x40000000, 0x80000000 and 0xC0000000 (waiters or died bits, no holder).
  for (const word of [0x4000_0000, 0x8000_0000, 0xc000_0000]) {
    assert.equal(ownerStatus(word & ID_MASK, 0), "dead", `word 0x${word.toString(16)}`);
  }
  for (const id of [-1, 1.5, NaN, ID_MASK + 1, 1 << 22]) assert.equal(ownerStatus(id, 0), "dead", `id ${id}`);
  assert.equal(possibleId(selfId()), true);
  assert.equal(ownerStatus(selfId(), selfStart()), "alive");
});
