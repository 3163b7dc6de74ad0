// Mutex: the contract in one process, then across processes and runtimes: the classic counter at
// scale (and the same race without the lock), timeouts and signals, async waits that leave the event
// loop running, owner death, PID-reuse checks, lock words no live holder can leave, and bad input.
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { Mutex, MutexGuard, NotHeldError, SharedMemory, TimeoutError } from "../mod.ts";
import { selfId } from "../_sync/owner.ts";
import { test } from "./_harness.ts";
import {
  BOTH,
  type Child,
  OTHER,
  runOk,
  type Runtime,
  start,
  stop,
  tsCommand,
  uniqueName,
} from "./_process.ts";

const CHILD = "tests/children/sync_child.ts";

/** Kills a child that may already have exited. */
function segment(size = 4096): SharedMemory {
  return SharedMemory.create({ name: uniqueName("mutex"), size });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Calls `tryLock` every 20 ms until it returns a guard (a dead holder is taken over once probed). */
async function tryUntil(m: Mutex, ms: number): Promise<MutexGuard> {
  const deadline = performance.now() + ms;
  for (;;) {
    const guard = m.tryLock();
    if (guard) return guard;
    if (performance.now() > deadline) throw new Error(`tryLock found the mutex held for ${ms} ms`);
    await sleep(20);
  }
}

/** Starts a child that takes the mutex @0 and holds it; resolves with its owner id and start time. */
async function holder(
  rt: Runtime,
  shm: SharedMemory,
): Promise<{ child: Child; id: number; start: number }> {
  const child = start(tsCommand(rt, CHILD, ["hold", shm.name]));
  const line = await child.waitFor(/^locked|^<exited/);
  if (!line.startsWith("locked")) throw new Error(`holder failed: ${(await child.done).stderr}`);
  const [, id, st] = line.split(" ");
  return { child, id: Number(id), start: Number(st) };
}

test("a zero-filled region is an unlocked mutex; tryLock, unlock and guards", () => {
  using shm = segment();
  assert.equal(Mutex.BYTE_LENGTH, 8);
  const m = new Mutex(shm, 0);
  assert.equal(m.locked, false);
  const first = m.tryLock();
  assert.ok(first instanceof MutexGuard, "tryLock returns a guard");
  assert.equal(first.ownerDied, false);
  assert.equal(m.locked, true);
  assert.equal(m.heldByThisThread, true);
  assert.equal(m.tryLock(), null, "tryLock on a held mutex returns null");
  const word = shm.view(Int32Array, 0, 2);
  assert.equal(word[0], selfId(), "the lock word names the holder");
  first.unlock();
  assert.equal(word[0], 0, "unlocking clears the lock word");
  assert.notEqual(word[1], 0, "the start time of the last holder stays beside it");
  {
    using guard = m.tryLock();
    assert.ok(guard);
  }
  assert.equal(m.locked, false, "disposing of a tryLock guard unlocked");
  {
    using guard = m.lockSync();
    assert.equal(guard.ownerDied, false);
    assert.equal(m.locked, true);
  }
  assert.equal(m.locked, false, "disposing of the guard unlocked");
  const g = m.lockSync();
  g.unlock();
  g.unlock(); // a second unlock through the guard does nothing
  assert.equal(m.locked, false);
  // A second handle on the same bytes is the same mutex.
  const other = new Mutex(shm, 0);
  assert.ok(m.tryLock());
  assert.equal(other.locked, true);
  assert.equal(other.tryLock(), null);
  other.unlock(); // same thread: allowed, it is the holder
  assert.equal(m.locked, false);
});

test("unlocking a mutex nobody holds, or relocking it from the holder, is a clear error", () => {
  using shm = segment();
  const m = new Mutex(shm, 8);
  assert.throws(() => m.unlock(), (e) => e instanceof NotHeldError && /not locked/.test(e.message));
  m.lockSync();
  assert.throws(() => m.lockSync(), /already holds it/);
  m.unlock();
  // Someone else's hold: an id that is not ours.
  Atomics.store(shm.view(Int32Array, 8, 1), 0, 12345);
  assert.throws(
    () => m.unlock(),
    (e) => e instanceof NotHeldError && /held by thread 12345/.test(e.message),
  );
  Atomics.store(shm.view(Int32Array, 8, 1), 0, 0x4000_0000);
  assert.throws(() => m.unlock(), (e) => e instanceof NotHeldError && /names no holder/.test(e.message));
});

test("async tasks of one thread take turns on the mutex; an aborted wait rejects", async () => {
  using shm = segment();
  const m = new Mutex(shm, 0);
  const order: string[] = [];
  const first = await m.lock();
  const second = m.lock({ timeout: 10_000 }).then((g) => {
    order.push("second");
    g.unlock();
  });
  await sleep(30);
  order.push("first");
  first.unlock();
  await second;
  assert.deepEqual(order, ["first", "second"]);
  assert.equal(m.locked, false);
  m.lockSync();
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("gave up")), 20);
  await assert.rejects(m.lock({ signal: controller.signal }), /gave up/);
  m.unlock();
  assert.equal(m.locked, false);
});

test("an aborted signal ends every form of lock on entry, even on a free mutex", async () => {
  using shm = segment();
  const m = new Mutex(shm, 0);
  const signal = AbortSignal.abort(new Error("stop"));
  assert.throws(() => m.lockSync({ signal }), /stop/);
  await assert.rejects(m.lock({ signal }), /stop/);
  assert.equal(m.locked, false, "nothing was taken");
  // Held by a live thread (a made-up owner id would be a dead holder, which a lock takes over at
  // once): the mutex at byte 8, locked by the worker of tests/children/scale_holder.ts. An aborted
  // signal ends the blocking form on entry, and one that aborts while the async wait sleeps ends it.
  const held = new Mutex(shm, 8);
  const holder = new Worker(new URL("./children/scale_holder.ts", import.meta.url));
  const reply = () => new Promise((resolve) => holder.once("message", resolve));
  try {
    const locked = reply();
    holder.postMessage([shm.name]);
    await locked;
    assert.throws(() => held.lockSync({ signal, timeout: 10_000 }), /stop/);
    await assert.rejects(
      held.lock({ signal: AbortSignal.timeout(30) }),
      (e: Error) => e.name === "TimeoutError",
    );
    assert.equal(held.locked, true, "the holder kept it");
    const unlocked = reply();
    holder.postMessage("unlock");
    await unlocked;
  } finally {
    await holder.terminate();
  }
});

/**
 * Every bad argument of every public member, with the error it must give: thrown on entry, before
 * the call changes anything, whatever path it would take.
 */
test("bad arguments to Mutex and MutexGuard are TypeErrors or RangeErrors on entry", async () => {
  using shm = segment(64);
  using readOnly = SharedMemory.open(shm.name, { readOnly: true });
  const m = new Mutex(shm, 56);
  const cases: [string, () => unknown, ErrorConstructor, RegExp][] = [
    [
      "new Mutex(Uint8Array)",
      () => new Mutex(new Uint8Array(8) as never, 0),
      TypeError,
      /expected a SharedMemory/,
    ],
    ["new Mutex(null)", () => new Mutex(null as never, 0), TypeError, /expected a SharedMemory/],
    ["new Mutex({})", () => new Mutex({} as never, 0), TypeError, /expected a SharedMemory/],
    ["new Mutex(shm, '0')", () => new Mutex(shm, "0" as never), TypeError, /byteOffset must be a number/],
    ["new Mutex(shm)", () => new Mutex(shm, undefined as never), TypeError, /byteOffset must be a number/],
    ["new Mutex(shm, 2)", () => new Mutex(shm, 2), RangeError, /multiple of 4/],
    ["new Mutex(shm, -4)", () => new Mutex(shm, -4), RangeError, /multiple of 4/],
    ["new Mutex(shm, 1.5)", () => new Mutex(shm, 1.5), RangeError, /multiple of 4/],
    ["new Mutex(shm, NaN)", () => new Mutex(shm, NaN), RangeError, /multiple of 4/],
    ["new Mutex(shm, 60)", () => new Mutex(shm, 60), RangeError, /needs 8 bytes/],
    ["new Mutex(read-only)", () => new Mutex(readOnly, 0), TypeError, /read-only/],
    ["lockSync(5)", () => m.lockSync(5 as never), TypeError, /options must be an object/],
    ["lockSync(null)", () => m.lockSync(null as never), TypeError, /options must be an object/],
    ["lockSync({timeout: -1})", () => m.lockSync({ timeout: -1 }), RangeError, /timeout/],
    ["lockSync({timeout: NaN})", () => m.lockSync({ timeout: NaN }), RangeError, /timeout/],
    ["lockSync({timeout: '1'})", () => m.lockSync({ timeout: "1" as never }), TypeError, /timeout/],
    ["lockSync({signal: {}})", () => m.lockSync({ signal: {} as never }), TypeError, /signal/],
    ["lock('x')", () => m.lock("x" as never), TypeError, /options must be an object/],
    ["lock({timeout: -1})", () => m.lock({ timeout: -1 }), RangeError, /timeout/],
    ["lock({signal: 1})", () => m.lock({ signal: 1 as never }), TypeError, /signal/],
    ["new MutexGuard({})", () => new MutexGuard({} as never, false), TypeError, /guards come from lock/],
    ["new MutexGuard(m, false)", () => new MutexGuard(m, false), TypeError, /guards come from lock/],
  ];
  for (const [what, call, type, message] of cases) {
    await assert.rejects(
      async () => await call(),
      (e: Error) =>
        e instanceof type && message.test(e.message) && !/is not a function|detached/.test(e.message),
      what,
    );
  }
  assert.equal(m.locked, false, "no bad call took the mutex (the fast path was free)");
});

test("a mutex of a closed segment: every member says the SharedMemory is closed", async () => {
  const shm = segment();
  const m = new Mutex(shm, 0);
  const guard = m.lockSync();
  shm.close();
  shm.unlink();
  const calls: [string, () => unknown][] = [
    ["lockSync", () => m.lockSync()],
    ["lock", () => m.lock()],
    ["tryLock", () => m.tryLock()],
    ["unlock", () => m.unlock()],
    ["guard.unlock", () => guard.unlock()],
    ["locked", () => m.locked],
    ["heldByThisThread", () => m.heldByThisThread],
  ];
  for (const [what, call] of calls) {
    await assert.rejects(
      async () => await call(),
      (e: Error) => e instanceof TypeError && /SharedMemory is closed/.test(e.message),
      what,
    );
  }
  assert.throws(() => new Mutex(shm, 0), (e: Error) => e instanceof TypeError && /closed/.test(e.message));
});

for (const word of [0x4000_0000, 0x8000_0000, 0xc000_0000, 0x0040_0000, 0x7fc0_0000, 0x8fc0_0000]) {
  const hex = `0x${word.toString(16)}`;
  test(`a lock word no live holder can leave (${hex}) is taken over at once, reporting ownerDied`, async () => {
    using shm = segment();
    const cells = shm.view(Int32Array, 0, 2);
    const m = new Mutex(shm, 0);
    for (const flavour of ["try", "sync", "async"] as const) {
      Atomics.store(cells, 0, word | 0);
      // The timeout only turns a hang (the old behaviour) into a failure.
      const guard = flavour === "try"
        ? m.tryLock()!
        : flavour === "sync"
        ? m.lockSync({ timeout: 1_000 })
        : await m.lock({ timeout: 1_000 });
      assert.equal(guard.ownerDied, true, `${hex} ${flavour}`);
      assert.equal(m.heldByThisThread, true);
      guard.unlock();
      assert.equal(Atomics.load(cells, 0), 0);
    }
  });
}

test("a corrupted lock word is taken over by another process too (sync and async)", async () => {
  using shm = segment();
  for (const flavour of ["sync", "async"]) {
    Atomics.store(shm.view(Int32Array, 0, 1), 0, 0xc000_0000 | 0);
    const out = await runOk(tsCommand(OTHER, CHILD, ["lock-once", shm.name, flavour]), { timeout: 30_000 });
    assert.match(out, /ownerDied true/, `${OTHER} ${flavour}`);
    assert.equal(new Mutex(shm, 0).locked, false);
  }
});

for (const rt of BOTH) {
  test(`a mutex held by a ${rt} process: tryLock fails, timeouts throw, the event loop keeps running`, async () => {
    using shm = segment();
    let child: Child | undefined;
    try {
      const h = await holder(rt, shm);
      child = h.child;
      const m = new Mutex(shm, 0);
      assert.equal(m.tryLock(), null);
      assert.throws(() => m.lockSync({ timeout: 50 }), TimeoutError);
      await assert.rejects(m.lock({ timeout: 50 }), TimeoutError);
      assert.throws(() => m.unlock(), NotHeldError);
      // Await the lock while a timer ticks; the holder lets go only after the 10th tick, so a blocked
      // event loop would never get the lock.
      let ticks = 0;
      const release = shm.view(Int32Array, 12, 1);
      const timer = setInterval(() => {
        if (++ticks === 10) Atomics.store(release, 0, 1);
      }, 10);
      try {
        using guard = await m.lock({ timeout: 30_000 });
        assert.ok(ticks >= 10, `only ${ticks} ticks`);
        assert.equal(guard.ownerDied, false);
      } finally {
        clearInterval(timer);
      }
      const out = await child.done;
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /released/);
    } finally {
      stop(child);
    }
  });

  test(`a ${rt} holder killed with SIGKILL: the next locker gets the mutex and is told`, async () => {
    using shm = segment();
    for (const flavour of ["sync", "async", "try"] as const) {
      const { child } = await holder(rt, shm);
      const m = new Mutex(shm, 0);
      assert.equal(m.tryLock(), null);
      child.kill("SIGKILL");
      await child.done;
      const t0 = performance.now();
      const guard = flavour === "sync"
        ? m.lockSync({ timeout: 10_000 })
        : flavour === "async"
        ? await m.lock({ timeout: 10_000 })
        : await tryUntil(m, 10_000);
      console.log(`${flavour}: took over after ${(performance.now() - t0).toFixed(0)} ms`);
      assert.equal(guard.ownerDied, true, `${flavour}: told the owner died`);
      assert.equal(m.ownerDied, true);
      guard.unlock();
      assert.equal(m.locked, false);
      // The next ordinary lock is not flagged.
      m.lockSync().unlock();
      assert.equal(m.ownerDied, false);
    }
  });
}

test("PID reuse: a live holder stays alive; an id whose start time differs counts as dead", async () => {
  using shm = segment();
  let child: Child | undefined;
  try {
    const h = await holder(OTHER, shm);
    child = h.child;
    const cells = shm.view(Int32Array, 0, 2);
    const m = new Mutex(shm, 0);
    // The real holder, alive, across several liveness probes: never taken from it.
    assert.throws(() => m.lockSync({ timeout: 700 }), TimeoutError);
    assert.equal(Atomics.load(cells, 0) & 0x3fff_ffff, h.id);
    // The same thread id with another start-time hash: a later thread got the id, the holder is dead.
    const saved = [cells[0]!, cells[1]!];
    Atomics.store(cells, 0, h.id ^ (1 << 22));
    using g1 = m.lockSync({ timeout: 5_000 });
    assert.equal(g1.ownerDied, true);
    g1.unlock();
    // The same id and hash but a different full start time beside it, on two probes: dead as well.
    Atomics.store(cells, 1, h.start + 1);
    Atomics.store(cells, 0, h.id);
    using g2 = m.lockSync({ timeout: 5_000 });
    assert.equal(g2.ownerDied, true);
    g2.unlock();
    // A thread id nobody has: dead.
    Atomics.store(cells, 1, 0);
    Atomics.store(cells, 0, 4_000_000);
    using g3 = await m.lock({ timeout: 5_000 });
    assert.equal(g3.ownerDied, true);
    g3.unlock();
    // Give the real holder its mutex back and let it go.
    cells[1] = saved[1]!;
    Atomics.store(cells, 0, saved[0]!);
    Atomics.store(shm.view(Int32Array, 12, 1), 0, 1);
    const out = await child.done;
    assert.match(out.stdout, /released/, out.stderr);
  } finally {
    stop(child);
  }
});

/** 4 processes (2 Deno, 2 Bun) each increment the counter @8 `count` times. */
async function race(locked: boolean, count: number): Promise<number> {
  using shm = segment();
  const runs = [
    tsCommand("deno", CHILD, [
      "increment",
      shm.name,
      String(count),
      locked ? "locked" : "none",
      "sync",
      "4",
    ]),
    tsCommand("deno", CHILD, [
      "increment",
      shm.name,
      String(count),
      locked ? "locked" : "none",
      "async",
      "4",
    ]),
    tsCommand("bun", CHILD, [
      "increment",
      shm.name,
      String(count),
      locked ? "locked" : "none",
      "sync",
      "4",
    ]),
    tsCommand("bun", CHILD, [
      "increment",
      shm.name,
      String(count),
      locked ? "locked" : "none",
      "async",
      "4",
    ]),
  ].map((cmd) => runOk(cmd, { timeout: 90_000 }));
  for (const out of await Promise.all(runs)) assert.match(out, /done ok/);
  assert.equal(new Mutex(shm, 0).locked, false);
  return shm.view(Int32Array, 8, 1)[0]!;
}

test(
  "the classic at scale: 4 processes x 10,000 locked read-modify-writes end at exactly 40,000",
  async () => {
    assert.equal(await race(true, 10_000), 40_000);
  },
  { timeout: 120_000 },
);

test("the same without the lock loses updates", async () => {
  const total = await race(false, 10_000);
  assert.ok(total < 40_000, `expected lost updates, got ${total}`);
  console.log(`without the lock: ${total} of 40000 (${40_000 - total} updates lost)`);
}, { timeout: 120_000 });

test("async locks of one handle that wait queue first in, first out; a queued timeout or abort leaves the queue; close rejects them all", async () => {
  using shm = segment();
  const m = new Mutex(shm, 0);
  const guard = m.lockSync();
  const order: number[] = [];
  const c = new AbortController();
  const options = (i: number) => (i === 2 ? { signal: c.signal } : i === 3 ? { timeout: 50 } : undefined);
  const waits = [0, 1, 2, 3, 4].map((i) =>
    m.lock(options(i)).then(
      async (g) => {
        order.push(i);
        await sleep(1);
        g.unlock();
      },
      () => order.push(-i),
    )
  );
  await sleep(10);
  c.abort(new Error("stop"));
  await sleep(150); // past the 50 ms timeout of the fourth
  assert.deepEqual(order, [-2, -3], "the aborted and the timed-out ones left; the others still wait");
  guard.unlock();
  await Promise.all(waits);
  assert.deepEqual(order, [-2, -3, 0, 1, 4]);
  assert.equal(m.locked, false);
  // Closing the segment ends the one asleep on the word and, through it, the queued ones.
  m.lockSync();
  const closing = [m.lock(), m.lock(), m.lock()].map((p) => p.then(() => "locked", (e: Error) => e.name));
  await sleep(20);
  shm.close();
  assert.deepEqual(await Promise.all(closing), ["TypeError", "TypeError", "TypeError"]);
});
