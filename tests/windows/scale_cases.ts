/**
 * The Windows suite, part 4: waiting at scale. Async waits sleep on a few waiter threads, each in
 * `WaitForMultipleObjects` on up to 63 words' wake semaphores (`_sync/waiters.ts`,
 * `_sync/futex_windows.ts`), not on a thread each. Threads are counted with a Toolhelp snapshot
 * (`CreateToolhelp32Snapshot`, the threads whose owner is this process), which works on Windows
 * and under Wine alike (Wine builds it from wineserver's list of the process's threads, each a
 * Linux thread of the Wine process). `Z:\proc\self\status` is no help under Wine: wineserver
 * opens files for its clients, so it describes wineserver itself (1 thread).
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Barrier, Channel, Condition, Mutex, Semaphore, SharedMemory, TimeoutError } from "../../mod.ts";
import { waitObjectNames } from "../../_sync/futex_windows.ts";
import { bindLibrary, wideString } from "../../ffi/_ffi.ts";
import { handleValue, kernel32, W } from "../../ffi/kernel32.ts";
import { objectName } from "../../platform/windows.ts";
import { test } from "./_runner.ts";
import { startPeer, uniqueName } from "./_util.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WAIT_SET_PEER = fileURLToPath(new URL("../children/wait_set_peer.ts", import.meta.url));

const toolhelp = bindLibrary(
  ["kernel32.dll"],
  {
    // HANDLE CreateToolhelp32Snapshot(DWORD dwFlags, DWORD th32ProcessID);
    CreateToolhelp32Snapshot: { parameters: ["u32", "u32"], result: "usize" },
    // BOOL Thread32First(HANDLE hSnapshot, LPTHREADENTRY32 lpte);
    Thread32First: { parameters: ["usize", "buffer"], result: "i32" },
    // BOOL Thread32Next(HANDLE hSnapshot, LPTHREADENTRY32 lpte);
    Thread32Next: { parameters: ["usize", "buffer"], result: "i32" },
    // DWORD GetCurrentProcessId(void);
    GetCurrentProcessId: { parameters: [], result: "u32" },
  } as const,
).symbols;

const TH32CS_SNAPTHREAD = 0x4;
/** `sizeof(THREADENTRY32)`: dwSize, cntUsage, th32ThreadID, th32OwnerProcessID, tpBasePri, tpDeltaPri, dwFlags. */
const THREADENTRY32_SIZE = 28;

/** Threads of this process, from a Toolhelp snapshot. */
function threadCount(): number {
  const k = kernel32();
  const snap = handleValue(toolhelp.CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0));
  assert.notEqual(snap, 0xffff_ffff_ffff_ffffn, "CreateToolhelp32Snapshot failed");
  try {
    const entry = new Uint32Array(THREADENTRY32_SIZE / 4);
    const bytes = new Uint8Array(entry.buffer);
    entry[0] = THREADENTRY32_SIZE;
    const me = toolhelp.GetCurrentProcessId();
    let n = 0;
    for (let ok = toolhelp.Thread32First(snap, bytes); ok; ok = toolhelp.Thread32Next(snap, bytes)) {
      if (entry[3] === me) n++;
      entry[0] = THREADENTRY32_SIZE;
    }
    return n;
  } finally {
    k.CloseHandle(snap);
  }
}

/** Waiters registered on the word at `offset` of `shm`, and permits not yet taken (null: no objects). */
function registrations(shm: SharedMemory, offset: number): { waiters: number; permits: number } | null {
  const names = waitObjectNames(objectName(shm.name, "test"), offset);
  const k = kernel32();
  const read = (name: string): number | null => {
    const h = handleValue(k.OpenSemaphoreW(W.SEMAPHORE_USE, 0, wideString(name)));
    if (h === 0n) return null;
    try {
      // Take everything, count it, put it back: the count of a semaphore without NtQuerySemaphore.
      let n = 0;
      while (k.WaitForSingleObject(h, 0) === W.WAIT_OBJECT_0) n++;
      if (n) k.ReleaseSemaphore(h, n, null);
      return n;
    } finally {
      k.CloseHandle(h);
    }
  };
  const waiters = read(names.count);
  const permits = read(names.wake);
  return waiters === null || permits === null ? null : { waiters, permits };
}

test(
  "1,360 pending async waits of five kinds on 220 words cost a handful of threads, and all are woken",
  async () => {
    const SEGMENTS = 4;
    const PER = 60; // waits of each kind but semaphores, per segment
    const SEMS = 50; // semaphores per segment, 2 waits each
    // Layout: mutex @0, condition @8, its mutex @16, barrier @24 (PER + 1 parties), semaphores @512 + 8 j.
    const segments = Array.from(
      { length: SEGMENTS },
      () => SharedMemory.create({ name: uniqueName("scale"), size: 4096 }),
    );
    const channels = Array.from(
      { length: SEGMENTS },
      () => Channel.create({ name: uniqueName("scalech"), capacity: 1024 }),
    );
    try {
      await sleep(50);
      const before = threadCount();
      const mutexes = segments.map((s) => new Mutex(s, 0));
      const conditions = segments.map((s) => new Condition(s, 8));
      const condMutexes = segments.map((s) => new Mutex(s, 16));
      const barriers = segments.map((s) => new Barrier(s, 24, PER + 1));
      const sems = segments.map((s) => Array.from({ length: SEMS }, (_, j) => new Semaphore(s, 512 + 8 * j)));
      const guards = mutexes.map((m) => m.lockSync());
      const waits: Promise<unknown>[] = [];
      let woken = 0;
      const track = (p: Promise<unknown>) => waits.push(p.then(() => woken++));
      for (let i = 0; i < SEGMENTS; i++) {
        for (let k = 0; k < PER; k++) {
          track(mutexes[i]!.lock({ timeout: 120_000 }).then((g) => g.unlock()));
          const cm = condMutexes[i]!;
          await cm.lock();
          track(conditions[i]!.wait(cm, { timeout: 120_000 }).then(() => cm.unlock()));
          track(barriers[i]!.wait({ timeout: 120_000 }));
          track(channels[i]!.receive({ timeout: 120_000 }));
        }
        for (const s of sems[i]!) for (let k = 0; k < 2; k++) track(s.acquire({ timeout: 120_000 }));
      }
      await sleep(1500);
      const during = threadCount();
      const pending = waits.length - woken;
      const t0 = performance.now();
      for (let i = 0; i < SEGMENTS; i++) {
        guards[i]!.unlock();
        condMutexes[i]!.lockSync();
        conditions[i]!.notifyAll();
        condMutexes[i]!.unlock();
        for (const s of sems[i]!) s.release(2);
      }
      const more = [
        ...barriers.map((b) => b.wait({ timeout: 120_000 })),
        ...channels.map(async (ch) => {
          for (let k = 0; k < PER; k++) await ch.sendString("m", { timeout: 120_000 });
        }),
      ];
      await Promise.all([...waits, ...more]);
      const wakeMs = performance.now() - t0;
      console.log(
        `      threads ${before} -> ${during} (Toolhelp); all ${waits.length} woken in ${
          wakeMs.toFixed(0)
        } ms`,
      );
      assert.equal(waits.length, SEGMENTS * (4 * PER + 2 * SEMS));
      assert.equal(pending, waits.length, "every wait pended until its release");
      assert.equal(woken, waits.length, "every wait was woken");
      assert.ok(during - before <= 32, `${during - before} more threads`);
    } finally {
      for (const s of segments) s.close();
      for (const c of channels) c.close();
    }
  },
  { timeout: 180_000 },
);

test("async waits that time out or abort take their registration back; a word's entry counts once", async () => {
  using shm = SharedMemory.create({ name: uniqueName("regs"), size: 64 });
  const sem = new Semaphore(shm, 0);
  const controller = new AbortController();
  // Each outcome is caught at once (a rejection nobody handles yet is reported by Bun).
  const outcome = (p: Promise<void>) =>
    p.then(() => "acquired", (e: Error) => e instanceof TimeoutError ? "timeout" : e.message);
  const timed = Array.from({ length: 100 }, () => outcome(sem.acquire({ timeout: 300 })));
  const aborted = Array.from({ length: 100 }, () => outcome(sem.acquire({ signal: controller.signal })));
  await sleep(100);
  // 200 waits of this process on one word: one entry, one registered waiter.
  assert.deepEqual(registrations(shm, 0), { waiters: 1, permits: 0 });
  controller.abort(new Error("stop"));
  assert.deepEqual(new Set(await Promise.all(aborted)), new Set(["stop"]));
  assert.deepEqual(new Set(await Promise.all(timed)), new Set(["timeout"]));
  await sleep(100);
  assert.deepEqual(registrations(shm, 0), { waiters: 0, permits: 0 }, "nothing left behind");
  // And the word still works: a release wakes a new wait.
  const p = sem.acquire({ timeout: 10_000 });
  await sleep(50);
  sem.release();
  await p;
  assert.equal(sem.value, 0);
});

for (const mode of ["wait", "wait-sync"] as const) {
  test(`a WaitSet (${mode}) in another bun.exe process wakes when this one releases its semaphore`, async () => {
    using ch = Channel.create({ name: uniqueName("wsch"), capacity: 1024 });
    using shm = SharedMemory.create({ name: uniqueName("ws"), size: 64 });
    const guard = new Mutex(shm, 8).lockSync(); // not ready until the end
    const peer = startPeer(WAIT_SET_PEER, [mode, ch.name, shm.name]);
    try {
      await peer.waitFor(/^waiting$/);
      await sleep(300);
      assert.equal(peer.lines.some((l) => l.startsWith("ready")), false, "nothing was ready");
      new Semaphore(shm, 0).release();
      assert.equal(await peer.waitFor(/^ready /), "ready semaphore");
      assert.equal(await peer.exited, 0, peer.stderr());
    } finally {
      guard.unlock();
      peer.kill();
    }
  });
}
