// WaitSet: await whichever of several mutexes, semaphores and channels is ready first; within one
// process, and across processes of both runtimes (a Deno or Bun peer waits, the other side pokes).
import assert from "node:assert/strict";
import { Channel, Mutex, Semaphore, SharedMemory, TimeoutError, WaitSet } from "../mod.ts";
import { test } from "./_harness.ts";
import { BOTH, OTHER, runOk, start, stop, tsCommand, uniqueName } from "./_process.ts";
import { THREAD_PER_WAIT_ENV } from "../_sync/waiters.ts";

const PEER = "tests/children/wait_set_peer.ts";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup() {
  const ch = Channel.create({ name: uniqueName("ws_ch"), capacity: 1024 });
  const shm = SharedMemory.create({ name: uniqueName("ws"), size: 64 });
  return { ch, shm, sem: new Semaphore(shm, 0), mutex: new Mutex(shm, 8) };
}

test("bad sources and interests are TypeErrors; an empty set cannot wait", async () => {
  using shm = SharedMemory.create({ size: 64 });
  using ch = Channel.create({ capacity: 1024 });
  const ws = new WaitSet();
  await assert.rejects(ws.wait(), TypeError);
  assert.throws(() => ws.add({} as Mutex), TypeError);
  assert.throws(() => ws.add(shm as unknown as Mutex), TypeError);
  assert.throws(() => ws.add(ch, undefined as unknown as "readable"), TypeError);
  assert.throws(() => ws.add(ch, "both" as "readable"), TypeError);
  const untyped = ws.add.bind(ws) as (source: unknown, interest?: unknown) => WaitSet;
  assert.throws(() => untyped(new Semaphore(shm, 0), "readable"), TypeError);
  await assert.rejects(ws.add(new Semaphore(shm, 0)).wait({ timeout: -1 }), RangeError);
});

test("ready() and wait() report what a try* call would take now, and take nothing", async () => {
  const { ch, shm, sem, mutex } = setup();
  using _ch = ch;
  using _shm = shm;
  const ws = new WaitSet().add(sem).add(mutex).add(ch, "readable").add(ch, "writable");
  assert.equal(ws.size, 4);
  ws.add(sem); // twice: no change
  assert.equal(ws.size, 4);
  const names = (rs: { interest: string }[]) => rs.map((r) => r.interest).sort();
  assert.deepEqual(names(ws.ready()), ["lock", "writable"]);
  const guard = mutex.lockSync();
  assert.deepEqual(names(await ws.wait()), ["writable"]);
  ws.remove(ch, "writable");
  await assert.rejects(ws.wait({ timeout: 30 }), TimeoutError);
  sem.release();
  ch.sendString("x");
  assert.deepEqual(names(await ws.wait()), ["acquire", "readable"]);
  assert.equal(sem.value, 1, "waiting took no permit");
  assert.equal(ch.tryReceiveString(), "x");
  assert.ok(sem.tryAcquire());
  guard.unlock();
  assert.deepEqual(names(await ws.wait()), ["lock"]);
});

test("a pending wait ends on a release, an unlock, a send, room, an end; and on abort and close", async () => {
  const { ch, shm, sem, mutex } = setup();
  using _ch = ch;
  using _shm = shm;
  const guard = mutex.lockSync();
  const ws = new WaitSet().add(sem).add(mutex).add(ch, "readable");
  const pokes: [string, () => void][] = [
    ["acquire", () => sem.release()],
    ["lock", () => guard.unlock()],
    ["readable", () => ch.sendString("m")],
  ];
  for (const [interest, poke] of pokes) {
    const p = ws.wait({ timeout: 10_000 });
    await sleep(30);
    poke();
    assert.deepEqual((await p).map((r) => r.interest), [interest]);
    ws.remove(ws.ready()[0]!.source, interest === "readable" ? "readable" : undefined);
  }
  // writable: a full ring gets room when a message is taken
  const w = new WaitSet().add(ch, "writable");
  while (ch.trySendString("fill up the ring with these")) { /* until full */ }
  const p = w.wait({ timeout: 10_000 });
  await sleep(30);
  assert.ok(ch.tryReceive());
  assert.equal((await p)[0]!.interest, "writable");
  // an end makes a channel readable
  const r = new WaitSet().add(ch, "readable");
  while (ch.tryReceive()) { /* drain */ }
  const ended = r.wait({ timeout: 10_000 });
  await sleep(30);
  ch.end();
  assert.equal((await ended)[0]!.interest, "readable");
  // abort
  const s = new WaitSet().add(new Semaphore(shm, 32));
  const c = new AbortController();
  const aborted = s.wait({ signal: c.signal });
  await sleep(30);
  c.abort(new Error("stop"));
  await assert.rejects(aborted, { message: "stop" });
  // close
  const closing = s.wait();
  await sleep(30);
  shm.close();
  await assert.rejects(closing, TypeError);
});

test("tryWait() never waits; waitSync() returns what is ready, times out, and checks its signal", () => {
  const { ch, shm, sem, mutex } = setup();
  using _ch = ch;
  using _shm = shm;
  const empty = new WaitSet();
  assert.deepEqual(empty.tryWait(), []);
  assert.throws(() => empty.waitSync(), TypeError);
  const guard = mutex.lockSync();
  const ws = new WaitSet().add(sem).add(mutex).add(ch, "readable");
  assert.deepEqual(ws.tryWait(), []);
  assert.throws(() => ws.waitSync({ timeout: 30 }), TimeoutError);
  assert.throws(() => ws.waitSync({ timeout: -1 }), RangeError);
  const c = new AbortController();
  c.abort(new Error("stop"));
  assert.throws(() => ws.waitSync({ signal: c.signal }), { message: "stop" });
  sem.release();
  assert.deepEqual(ws.waitSync({ timeout: 1_000 }).map((r) => r.interest), ["acquire"]);
  assert.deepEqual(ws.tryWait().map((r) => r.interest), ["acquire"]);
  assert.equal(sem.value, 1, "waiting took nothing");
  assert.ok(sem.tryAcquire());
  assert.equal(Atomics.load(shm.view(Int32Array, 4, 1), 0), 0, "no sleeper left counted");
  guard.unlock();
  assert.deepEqual(ws.waitSync().map((r) => r.interest), ["lock"]);
});

test("a mutex whose holder was killed is ready (wait, waitSync, tryWait), and tryLock takes it over", async () => {
  for (const flavour of ["wait", "waitSync", "tryWait"] as const) {
    using shm = SharedMemory.create({ name: uniqueName("ws_dead"), size: 64 });
    const child = start(tsCommand(OTHER, "tests/children/sync_child.ts", ["hold", shm.name]));
    try {
      await child.waitFor(/^locked/);
      const mutex = new Mutex(shm, 0);
      const ws = new WaitSet().add(mutex);
      assert.deepEqual(ws.tryWait(), [], "held by a live thread: not ready");
      const pending = flavour === "wait" ? ws.wait({ timeout: 20_000 }) : undefined;
      await sleep(300);
      child.kill("SIGKILL");
      await child.done;
      let ready;
      if (pending) ready = await pending;
      else if (flavour === "waitSync") ready = ws.waitSync({ timeout: 20_000 });
      else {
        const deadline = performance.now() + 20_000;
        while ((ready = ws.tryWait()).length === 0 && performance.now() < deadline) await sleep(20);
      }
      assert.deepEqual(ready.map((r) => r.interest), ["lock"], flavour);
      using guard = mutex.tryLock();
      assert.ok(guard, `${flavour}: tryLock took it over`);
      assert.equal(guard.ownerDied, true);
    } finally {
      stop(child);
    }
  }
});

for (const rt of BOTH) {
  for (const what of ["channel", "semaphore", "mutex"]) {
    test(
      `a ${rt} peer's WaitSet.waitSync (blocking) wakes when this process or a peer of the other runtime pokes its ${what}`,
      async () => {
        const { ch, shm, mutex } = setup();
        using _ch = ch;
        using _shm = shm;
        const guard = mutex.lockSync();
        const peer = start(tsCommand(rt, PEER, ["wait-sync", ch.name, shm.name]), { timeout: 60_000 });
        await peer.waitFor(/^waiting$/);
        await sleep(100);
        if (what === "mutex") guard.unlock();
        else await runOk(tsCommand(OTHER, PEER, ["poke", ch.name, shm.name, what]));
        assert.equal(await peer.waitFor(/^ready /), `ready ${what}`);
        const out = await peer.done;
        assert.equal(out.code, 0, out.stderr);
        if (what !== "mutex") guard.unlock();
      },
      { timeout: 90_000 },
    );
  }
  for (const what of ["channel", "semaphore", "mutex"]) {
    test(
      `a ${rt} peer's WaitSet wakes when this process or a peer of the other runtime pokes its ${what}`,
      async () => {
        const { ch, shm, mutex } = setup();
        using _ch = ch;
        using _shm = shm;
        // The mutex is held (so not ready) until the poke: by this process, or a peer's lock/unlock…
        const guard = mutex.lockSync();
        const peer = start(tsCommand(rt, PEER, ["wait", ch.name, shm.name]), { timeout: 60_000 });
        await peer.waitFor(/^waiting$/);
        await sleep(100);
        if (what === "mutex") guard.unlock();
        else {
          const other = rt === "deno" ? "bun" : "deno";
          await runOk(tsCommand(other, PEER, ["poke", ch.name, shm.name, what]));
        }
        assert.equal(await peer.waitFor(/^ready /), `ready ${what}`);
        const out = await peer.done;
        assert.equal(out.code, 0, out.stderr);
        if (what !== "mutex") guard.unlock();
      },
      { timeout: 90_000 },
    );
  }
}

// The path macOS and kernels before 5.16 take: async waits on a thread each, waitSync polling.
for (const mode of ["wait", "wait-sync"]) {
  test(
    `with ${THREAD_PER_WAIT_ENV}=1, a ${OTHER} peer's WaitSet (${mode}) still wakes on a release`,
    async () => {
      const { ch, shm, sem, mutex } = setup();
      using _ch = ch;
      using _shm = shm;
      using _guard = mutex.lockSync(); // held: not ready
      const peer = start(tsCommand(OTHER, PEER, [mode, ch.name, shm.name]), {
        timeout: 60_000,
        env: { [THREAD_PER_WAIT_ENV]: "1" },
      });
      await peer.waitFor(/^waiting$/);
      await sleep(100);
      sem.release();
      assert.equal(await peer.waitFor(/^ready /), "ready semaphore");
      const out = await peer.done;
      assert.equal(out.code, 0, out.stderr);
    },
    { timeout: 90_000 },
  );
}
