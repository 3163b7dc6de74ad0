// Waiting at scale (issue 14): 10,000 pending async waits (Mutex, Semaphore, Condition, Barrier,
// Channel receive and send, in equal shares on 20 segments and 40 channels) cost a handful of
// threads and little memory, in each runtime, and all are woken; the same kinds through the
// fallback of kernels without futex_waitv (a thread per wait); and a mutex holder killed under
// 1,000 pending async waits hands the lock to exactly one of them, then to the others in turn.
// Each scale case runs in a child process, so the figures are its own (read from
// /proc/self/status). Timer lateness, fs latency and CPU while the waits pend are printed, not
// asserted (bench/ has them).
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { Mutex, SharedMemory } from "../mod.ts";
import { test } from "./_harness.ts";
import { BOTH, OTHER, runOk, start, stop, tsCommand, uniqueName } from "./_process.ts";
import { os } from "../ffi/runtime.ts";
import { THREAD_PER_WAIT_ENV } from "../_sync/waiters.ts";

const CHILD = "tests/children/scale_child.ts";
const linuxOnly = os === "linux" ? false : "reads /proc/self/status (Linux)";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Figures {
  waits: number;
  pendingBefore: number;
  woken: number;
  before: { threads: number; rssMB: number };
  during: { threads: number; rssMB: number };
  timerLateMs: number;
  fsReadMs: number;
  cpuWhilePendingMs: number;
  wakeAllMs: number;
  waiterThreads: boolean;
}

/** Unlinks what a child that failed midway left under `prefix` (a child that finishes removes its own). */
function removeLeftovers(prefix: string): void {
  if (!existsSync("/dev/shm")) return;
  for (const name of readdirSync("/dev/shm")) {
    if (name.startsWith(prefix)) rmSync(`/dev/shm/${name}`, { force: true });
  }
}

function report(what: string, r: Figures): void {
  console.log(
    `${what}: threads ${r.before.threads} -> ${r.during.threads}, RSS ${r.before.rssMB.toFixed(0)} -> ` +
      `${r.during.rssMB.toFixed(0)} MB; timer late ${r.timerLateMs.toFixed(1)} ms, fs read ` +
      `${r.fsReadMs.toFixed(1)} ms, CPU ${r.cpuWhilePendingMs.toFixed(0)} ms in the second they pend; ` +
      `all woken in ${r.wakeAllMs.toFixed(0)} ms`,
  );
}

for (const rt of BOTH) {
  test(
    `10,000 pending ${rt} async waits of six kinds cost at most 32 threads and 100 MB, and all are woken`,
    async () => {
      const prefix = uniqueName("scale");
      const out = await runOk(tsCommand(rt, CHILD, [prefix, "10000", "20"]), {
        timeout: 120_000,
      }).finally(() => removeLeftovers(prefix));
      const r: Figures = JSON.parse(out.trim().split("\n").at(-1)!);
      report(rt, r);
      assert.equal(r.waiterThreads, true, "the waits went to waiter threads");
      assert.equal(r.waits, 10_000);
      assert.equal(r.pendingBefore, 10_000, "every wait was still pending before the release");
      assert.equal(r.woken, 10_000, "every wait was woken after the release");
      assert.ok(
        r.during.threads - r.before.threads <= 32,
        `${r.during.threads - r.before.threads} more threads`,
      );
      assert.ok(
        r.during.rssMB - r.before.rssMB <= 100,
        `${(r.during.rssMB - r.before.rssMB).toFixed(0)} MB more`,
      );
    },
    { timeout: 150_000, skip: linuxOnly },
  );

  // A Bun Worker per wait costs ~2 MB and a few ms to start: fewer there.
  const perKind = rt === "deno" ? 300 : 200;
  test(
    `${THREAD_PER_WAIT_ENV}=1 (no futex_waitv): ${perKind} pending ${rt} async waits of each kind, a thread each, all woken`,
    async () => {
      const prefix = uniqueName("fallback");
      const args = [prefix, String(perKind * 6), "3", "fallback", "1"];
      const out = await runOk(tsCommand(rt, CHILD, args), {
        timeout: 120_000,
        env: { [THREAD_PER_WAIT_ENV]: "1" },
      }).finally(() => removeLeftovers(prefix));
      const r: Figures = JSON.parse(out.trim().split("\n").at(-1)!);
      report(`${rt}, a thread per wait, one kind at a time`, r);
      assert.equal(r.waiterThreads, false, "the waiter threads were off");
      assert.equal(r.waits, perKind * 6);
      assert.equal(r.pendingBefore, perKind * 6, "every wait was still pending before its release");
      assert.equal(r.woken, perKind * 6, "every wait was woken after its release");
    },
    { timeout: 150_000, skip: linuxOnly },
  );
}

test(
  `a mutex holder (${OTHER}) killed with SIGKILL under 1,000 pending async waits: exactly one takes over with ownerDied, the others follow one by one`,
  async () => {
    using shm = SharedMemory.create({ name: uniqueName("killed"), size: 64 });
    const child = start(tsCommand(OTHER, "tests/children/sync_child.ts", ["hold", shm.name]));
    try {
      await child.waitFor(/^locked/);
      const mutex = new Mutex(shm, 0);
      assert.equal(mutex.tryLock(), null);
      const N = 1000;
      let inside = 0;
      let overlaps = 0;
      let died = 0;
      let first = 0;
      const killedAt = { t: 0 };
      const waits = Array.from({ length: N }, () =>
        mutex.lock({ timeout: 60_000 }).then(async (guard) => {
          if (first === 0) first = performance.now();
          if (guard.ownerDied) died++;
          if (inside++ !== 0) overlaps++;
          await sleep(0); // hold it across a turn of the event loop
          inside--;
          guard.unlock();
        }));
      await sleep(600); // every wait pends, and the holder was probed alive more than once
      assert.equal(first, 0, "nobody got the lock while its holder lived");
      killedAt.t = performance.now();
      child.kill("SIGKILL");
      await Promise.all(waits);
      console.log(
        `first lock ${(first - killedAt.t).toFixed(0)} ms after the kill, all ${N} in ` +
          `${(performance.now() - killedAt.t).toFixed(0)} ms`,
      );
      assert.equal(died, 1, "exactly one wait was told the owner died");
      assert.equal(overlaps, 0, "no two waits held the lock at once");
      assert.equal(mutex.locked, false);
    } finally {
      stop(child);
    }
  },
  { timeout: 120_000, skip: os === "windows" ? "SIGKILL" : false },
);
