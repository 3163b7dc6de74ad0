/**
 * The Windows suite, part 2: waits on named semaphores and the synchronization primitives across
 * bun.exe processes (under Wine on Linux, or on real Windows). The peers are the same child script
 * the Linux suite runs (tests/children/sync_child.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  Barrier,
  Channel,
  Mutex,
  NotHeldError,
  Semaphore,
  SharedMemory,
  TimeoutError,
  Topic,
} from "../../mod.ts";
import { futexWaitAsync, futexWaitSync, futexWake } from "../../_sync/futex.ts";
import { waitObjectNames } from "../../_sync/futex_windows.ts";
import { ID_MASK, ownerStatus, selfId, selfStart, tidOf } from "../../_sync/owner.ts";
import { bindLibrary, wideString } from "../../ffi/_ffi.ts";
import { handleValue, kernel32, W } from "../../ffi/kernel32.ts";
import { objectName } from "../../platform/windows.ts";
import { test } from "./_runner.ts";
import { type Peer, startPeer, uniqueName } from "./_util.ts";

const CHILD = fileURLToPath(new URL("../children/sync_child.ts", import.meta.url));
const CHANNEL_PEER = fileURLToPath(new URL("../children/channel_peer.ts", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function segment(tag: string, size = 4096): SharedMemory {
  return SharedMemory.create({ name: uniqueName(tag), size });
}

const ntdll = bindLibrary(
  ["ntdll.dll"],
  {
    // NTSTATUS NtQuerySemaphore(HANDLE, SEMAPHORE_INFORMATION_CLASS, PVOID, ULONG, PULONG);
    // Class 0 (SemaphoreBasicInformation) fills { LONG CurrentCount; LONG MaximumCount; }.
    NtQuerySemaphore: { parameters: ["usize", "u32", "buffer", "u32", "pointer"], result: "i32" },
  } as const,
).symbols;

/** The named semaphores of the word at `offset` of `shm`, opened with raw kernel32 calls (null: none). */
function rawCounts(shm: SharedMemory, offset: number): { waiters: number; permits: number } | null {
  // waiters: registered and not yet claimed by a wake; permits: released and not yet taken.
  const names = waitObjectNames(objectName(shm.name, "test"), offset);
  const k = kernel32();
  const read = (name: string): number | null => {
    const h = handleValue(k.OpenSemaphoreW(W.SEMAPHORE_USE, 0, wideString(name)));
    if (h === 0n) {
      assert.equal(k.GetLastError(), 2, `OpenSemaphoreW(${name}): ERROR_FILE_NOT_FOUND expected`);
      return null;
    }
    try {
      const info = new Int32Array(2);
      assert.equal(ntdll.NtQuerySemaphore(h, 0, new Uint8Array(info.buffer), 8, null), 0);
      return info[0]!; // info holds two values
    } finally {
      k.CloseHandle(h);
    }
  };
  const waiters = read(names.count);
  const permits = read(names.wake);
  if (waiters === null || permits === null) return null;
  return { waiters, permits };
}

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(5);
  }
}

async function finished(peer: Peer, pattern: RegExp, timeout = 90_000): Promise<string> {
  const line = await peer.waitFor(pattern, timeout);
  const code = await peer.exited;
  assert.equal(code, 0, `child exited with ${code}: ${peer.lines.join(" | ")} ${peer.stderr()}`);
  return line;
}

test("owner ids are thread ids with a creation-time hash; liveness comes from the thread itself", () => {
  const k = kernel32();
  const id = selfId();
  assert.equal(tidOf(id), k.GetCurrentThreadId(), "the id names this thread");
  assert.notEqual(id >>> 22, 0, "a creation-time hash is recorded (GetThreadTimes)");
  assert.notEqual(selfStart(), 0);
  assert.equal(ownerStatus(id, selfStart()), "alive");
  assert.equal(ownerStatus(id, selfStart() + 1), "mismatch", "same thread, another full start time");
  assert.equal(
    ownerStatus(id ^ (1 << 22), selfStart()),
    "dead",
    "same id, another creation hash: a later thread",
  );
  // A thread id nobody has (ids are multiples of 4; this one is odd-sized and far up).
  assert.equal(ownerStatus((0x3f_fff0 & ID_MASK) | (id & ~0x3f_ffff), 0), "dead");
});

test("sync and async waits in one process: not-equal, timeout, woken by a timer, abort", async () => {
  using shm = segment("waits");
  const word = shm.view(Int32Array, 0, 1);
  assert.equal(futexWaitSync(shm, 0, 1, 1000), "not-equal");
  assert.equal(await futexWaitAsync(shm, 0, 1, 1000), "not-equal");
  let t0 = performance.now();
  assert.equal(futexWaitSync(shm, 0, 0, 50), "timed-out");
  assert.ok(performance.now() - t0 >= 45, "the sync wait lasted its timeout");
  t0 = performance.now();
  assert.equal(await futexWaitAsync(shm, 0, 0, 50), "timed-out");
  assert.ok(performance.now() - t0 >= 45, "the async wait lasted its timeout");
  assert.equal(futexWake(shm, 0), 0, "nobody waits");
  // The event loop runs while an async wait sleeps; a timer ends it.
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  let woke = -1;
  setTimeout(() => {
    Atomics.store(word, 0, 1);
    woke = futexWake(shm, 0);
  }, 150);
  t0 = performance.now();
  const result = await futexWaitAsync(shm, 0, 0, 10_000);
  clearInterval(ticker);
  assert.equal(result, "ok");
  assert.equal(woke, 1, "the wake found the sleeping wait registered");
  assert.ok(ticks >= 5, `the event loop kept running (${ticks} ticks)`);
  assert.ok(performance.now() - t0 < 5_000);
  // Abort ends an async wait at once, with the signal's reason.
  Atomics.store(word, 0, 0);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("stop")), 50);
  await assert.rejects(futexWaitAsync(shm, 0, 0, 10_000, controller.signal), /stop/);
});

test("a topic subscriber with nothing to read spins, yielding with SwitchToThread, then sleeps until its timeout", () => {
  const switched = kernel32().SwitchToThread(); // BOOL: whether another thread ran
  assert.ok(switched === 0 || switched === 1, `SwitchToThread returned ${switched}`);
  using topic = Topic.create({ name: uniqueName("topic"), capacity: 8 });
  using sub = Topic.subscribe(topic.name);
  const t0 = performance.now();
  assert.throws(() => sub.receiveIntoSync(new Uint8Array(8), { timeout: 50 }), TimeoutError);
  assert.ok(performance.now() - t0 >= 45, "the receive waited for its timeout");
  topic.publishSync(new Uint8Array([1, 2, 3]));
  const buf = new Uint8Array(8);
  assert.equal(sub.receiveIntoSync(buf, { timeout: 1000 }), 3);
  assert.deepEqual(buf.subarray(0, 3), new Uint8Array([1, 2, 3]));
});

for (const flavour of ["sync", "async"] as const) {
  test(`a ${flavour} wait in another process sleeps on the named semaphores, and a wake from here ends it`, async () => {
    using shm = segment(`xwait${flavour}`);
    const word = shm.view(Int32Array, 0, 1);
    const peer = startPeer(CHILD, ["futex-wait", shm.name, flavour]);
    try {
      await peer.waitFor(/^waiting/);
      // Registered and asleep in WaitForSingleObject: one waiter counted, no permit pending.
      await until("the peer is registered as a waiter", () => rawCounts(shm, 0)?.waiters === 1);
      assert.deepEqual(rawCounts(shm, 0), { waiters: 1, permits: 0 });
      await sleep(300);
      assert.equal(peer.lines.some((l) => l.startsWith("woken")), false, "it sleeps until woken");
      Atomics.store(word, 0, 1);
      assert.equal(futexWake(shm, 0), 1, "one waiter woken");
      const line = await finished(peer, /^woken/);
      assert.equal(line, "woken ok", "a single wait, ended by the wake (no timeout, no polling)");
    } finally {
      peer.kill();
    }
    // The peer closed its handles: only this process's (from the wake) remain, with nobody counted.
    assert.deepEqual(rawCounts(shm, 0), { waiters: 0, permits: 0 });
  });
}

test("the semaphores live as long as a handle: closing the segment closes this process's", () => {
  const shm = segment("objects");
  assert.equal(rawCounts(shm, 8), null, "no wait yet: no objects");
  assert.equal(futexWake(shm, 8), 0, "a wake with no objects finds nobody and creates nothing");
  assert.equal(rawCounts(shm, 8), null);
  assert.equal(futexWaitSync(shm, 8, 0, 10), "timed-out");
  assert.deepEqual(rawCounts(shm, 8), { waiters: 0, permits: 0 }, "the objects stay for the next wait");
  shm.close();
  assert.equal(rawCounts(shm, 8), null, "closed with the segment");
  shm.unlink();
});

test("closing the segment ends the async waits asleep on it at once, and closes the semaphores after them", async () => {
  const shm = segment("closewaits");
  const other = SharedMemory.open(shm.name);
  try {
    new Mutex(other, 32).lockSync();
    const outcomes = Promise.all(
      [
        futexWaitAsync(shm, 0, 0),
        new Semaphore(shm, 16).acquire(),
        new Mutex(shm, 32).lock(),
        new Barrier(shm, 64, 2).wait(),
      ].map((p) => p.then(() => "resolved", (e) => (e as Error).name)),
    );
    await until("all four sleep", () => [0, 16, 32, 64].every((o) => rawCounts(shm, o)?.waiters === 1));
    const t0 = performance.now();
    shm.close();
    assert.deepEqual(await outcomes, ["TypeError", "TypeError", "TypeError", "TypeError"]);
    assert.ok(performance.now() - t0 < 500);
    // The sleeping threads were woken and deregistered; the other handle never opened the objects,
    // so once this one's are closed they are gone.
    await until("the semaphores are gone", () => [0, 16, 32, 64].every((o) => rawCounts(other, o) === null));
  } finally {
    shm.close();
    other.close();
  }
});

test("a name too long to fit gets a hash, and waits still work", () => {
  const name = `w${"x".repeat(250)}`;
  using shm = SharedMemory.create({ name, size: 64 });
  const names = waitObjectNames(objectName(name, "test"), 4);
  assert.ok(names.count.length <= W.NAME_MAX_UNITS && names.wake.length <= W.NAME_MAX_UNITS);
  assert.match(names.count, /^Local\\shm\.count\.4\.#[0-9a-f]{16}$/);
  assert.equal(futexWaitSync(shm, 4, 0, 10), "timed-out");
  assert.deepEqual(rawCounts(shm, 4), { waiters: 0, permits: 0 });
});

test("file backend: two handles opened by different paths wait on the same objects", async () => {
  const file = `shmtest_wait_${crypto.randomUUID()}.bin`;
  const cwd = (globalThis as unknown as { process: { cwd(): string } }).process.cwd();
  const a = SharedMemory.create({ backend: "file", path: `${cwd}\\${file}`, size: 64 });
  const b = SharedMemory.open({ backend: "file", path: file });
  try {
    const pending = futexWaitAsync(a, 0, 0, 10_000);
    await sleep(100);
    Atomics.store(b.view(Int32Array, 0, 1), 0, 5);
    assert.equal(futexWake(b, 0), 1, "the wake through the other handle found the waiter");
    assert.equal(await pending, "ok");
  } finally {
    a.close();
    b.close();
    a.unlink();
  }
});

test(
  "mutex: 4 bun.exe processes x 2,000 non-atomic increments under the lock end at exactly 8,000",
  async () => {
    using shm = segment("increment");
    const flavours = ["sync", "async", "sync", "async"];
    const peers = flavours.map((f) => startPeer(CHILD, ["increment", shm.name, "2000", "locked", f, "4"]));
    try {
      await Promise.all(peers.map((p) => finished(p, /^done/, 120_000)));
    } finally {
      for (const p of peers) p.kill();
    }
    assert.equal(shm.view(Int32Array)[2], 8_000);
    assert.equal(new Mutex(shm, 0).locked, false);
  },
  { timeout: 150_000 },
);

test("mutex: a live holder in another process keeps it; killed, the next locker gets it within 1 s and is told", async () => {
  using shm = segment("ownerdeath");
  for (const flavour of ["sync", "async"] as const) {
    const peer = startPeer(CHILD, ["hold", shm.name]);
    try {
      const line = await peer.waitFor(/^locked/);
      const m = new Mutex(shm, 0);
      assert.equal(m.tryLock(), null);
      assert.equal(tidOf(Number(line.split(" ")[1])) % 4, 0, "a Windows thread id");
      // Alive across several liveness probes (250 ms apart): never taken from it.
      const t = performance.now();
      await assert.rejects(m.lock({ timeout: 700 }), TimeoutError);
      assert.ok(performance.now() - t >= 650);
      assert.throws(() => m.unlock(), NotHeldError);
      peer.kill(); // TerminateProcess
      await peer.exited;
      const t0 = performance.now();
      const guard = flavour === "sync" ? m.lockSync({ timeout: 10_000 }) : await m.lock({ timeout: 10_000 });
      const took = performance.now() - t0;
      assert.equal(guard.ownerDied, true, `${flavour}: told the owner died`);
      assert.ok(took < 1000, `${flavour}: took over after ${took.toFixed(0)} ms`);
      guard.unlock();
      m.lockSync().unlock();
      assert.equal(m.ownerDied, false, "the next ordinary lock is not flagged");
    } finally {
      peer.kill();
    }
  }
});

test("mutex: a holder that unlocks wakes a sleeping locker in another process (no polling)", async () => {
  using shm = segment("handoff");
  const peer = startPeer(CHILD, ["hold", shm.name]);
  try {
    await peer.waitFor(/^locked/);
    const m = new Mutex(shm, 0);
    const pending = m.lock({ timeout: 20_000 });
    // The locker sleeps on the lock word's semaphores between liveness probes.
    await until("the locker sleeps on the word", () => rawCounts(shm, 0)?.waiters === 1);
    Atomics.store(shm.view(Int32Array), 3, 1); // tell the holder to unlock
    futexWake(shm, 12);
    const guard = await pending;
    assert.equal(guard.ownerDied, false);
    guard.unlock();
    await finished(peer, /^released/);
  } finally {
    peer.kill();
  }
});

test("semaphore: 2 permits, 4 bun.exe processes: never more than 2 holders at once", async () => {
  using shm = segment("semaphore");
  const sem = new Semaphore(shm, 0);
  sem.release(2);
  const passes = 100;
  const peers = ["sync", "async", "sync", "async"].map((f) =>
    startPeer(CHILD, ["semaphore", shm.name, String(passes), f])
  );
  try {
    await Promise.all(peers.map((p) => finished(p, /^done/, 120_000)));
  } finally {
    for (const p of peers) p.kill();
  }
  const [permits, , holders, most, done] = shm.view(Int32Array, 0, 5);
  assert.equal(done, 4 * passes);
  assert.equal(holders, 0);
  assert.ok(most !== undefined && most >= 1 && most <= 2, `${most} holders at once`);
  assert.equal(permits, 2, "every permit came back");
}, { timeout: 150_000 });

for (const flavour of ["sync", "async"] as const) {
  test(
    `condition: producer -> consumer (${flavour}) in two bun.exe processes, 2,000 items in order`,
    async () => {
      using shm = segment(`cond${flavour}`);
      const consumer = startPeer(CHILD, ["consume", shm.name, "2000", flavour]);
      const producer = startPeer(CHILD, ["produce", shm.name, "2000", "600"]);
      try {
        const [, consumed] = await Promise.all([
          finished(producer, /^produced/, 120_000),
          finished(consumer, /^consumed/, 120_000),
        ]);
        const m = consumed.match(/consumed (\d+) firstWaitCpuMs ([\d.]+)/);
        assert.ok(m, consumed);
        assert.equal(Number(m[1]), 2000);
        console.log(`      consumer CPU while waiting ~600 ms for the first item: ${m[2]} ms`);
      } finally {
        producer.kill();
        consumer.kill();
      }
    },
    { timeout: 150_000 },
  );
}

test("barrier: 4 bun.exe processes released together, 3 rounds", async () => {
  using shm = segment("barrier");
  const peers = [0, 1, 2, 3].map((i) => startPeer(CHILD, ["barrier", shm.name, "4", "3", String(i)]));
  try {
    const lines = await Promise.all(peers.map((p) => finished(p, /^indexes/, 120_000)));
    // Each round hands out the arrival indexes 0..3 once.
    for (let r = 0; r < 3; r++) {
      const got = lines.map((l) => Number(l.split(" ")[1]?.split(",")[r])).sort((a, b) => a - b);
      assert.deepEqual(got, [0, 1, 2, 3], `round ${r}`);
    }
  } finally {
    for (const p of peers) p.kill();
  }
}, { timeout: 150_000 });

test(
  "channel: a bun.exe sender fills a 1 KiB ring 5,000 times over; the async receiver here gets every message in order",
  async () => {
    const name = uniqueName("channel");
    const ch = Channel.create({ name, capacity: 1024 });
    const count = 20_000;
    const sender = startPeer(CHANNEL_PEER, ["flood", name, String(count), "200"]);
    try {
      let next = 0;
      // The sender sleeps whenever the ring is full; this side sleeps whenever it is empty.
      while (next < count) {
        const msg = await ch.receive({ timeout: 30_000 });
        assert.ok(msg, `message ${next} arrived`);
        assert.equal(msg.length, 200);
        assert.equal(new DataView(msg.buffer, msg.byteOffset).getUint32(0, true), next);
        assert.equal(msg[199], next & 255);
        next++;
      }
      await finished(sender, /^sent/);
    } finally {
      sender.kill();
      ch.close();
    }
  },
  { timeout: 120_000 },
);
