// A child for tests/waiting_at_scale_test.ts and bench/waiting_bench.ts (runs under Deno or Bun):
// leaves N async waits pending, split evenly across six kinds (Mutex lock, Semaphore acquire,
// Condition wait, Barrier wait, Channel receive on an empty channel, Channel send on a full one) on
// SEGMENTS segments (and as many channels of each side), measures itself while they pend, then
// releases them all and prints one JSON line.
// Usage: scale_child.ts <name prefix> <waits> <segments> [mode] [one-kind-at-a-time]
//   mode "ours" (default): the waiter threads; "reference": a thread per wait (the design before the
//   waiter threads, for the bench); "fallback": the same through SHM_THREAD_PER_WAIT (set by the
//   caller: the fallback of kernels without futex_waitv).
//   one-kind-at-a-time "1": each kind's share pends, is released and woken before the next kind's.
// The mutexes are held by a worker thread (scale_holder.ts), so their waits probe a live holder.
import { Worker } from "node:worker_threads";
import process from "node:process";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Barrier, Channel, Condition, Mutex, Semaphore, SharedMemory } from "../../mod.ts";
import { usePollingFallback } from "../../_sync/futex.ts";
import { useWaiterThreads, waiterThreadsAvailable } from "../../_sync/waiters.ts";

const [prefix, waitsArg, segmentsArg, mode = "ours", oneAtATime] = process.argv.slice(2);
const N = Number(waitsArg);
const SEGMENTS = Number(segmentsArg);
if (mode === "reference") {
  useWaiterThreads(false);
  usePollingFallback(false); // forget the native chosen so far
}

/** Threads and resident memory of this process, from /proc/self/status (Linux). */
function status(): { threads: number; rssMB: number } {
  const s = readFileSync("/proc/self/status", "utf8");
  return {
    threads: Number(/Threads:\s+(\d+)/.exec(s)![1]),
    rssMB: Number(/VmRSS:\s+(\d+)/.exec(s)![1]) / 1024,
  };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const KINDS = ["mutex", "semaphore", "condition", "barrier", "receive", "send"] as const;
type Kind = typeof KINDS[number];
/** How many waits of each kind pend on segment (or channel) `i`: N split evenly, the rest to semaphores. */
function share(kind: Kind, i: number): number {
  const each = Math.floor(N / KINDS.length);
  const total = kind === "semaphore" ? N - each * (KINDS.length - 1) : each;
  return Math.floor(total / SEGMENTS) + (i < total % SEGMENTS ? 1 : 0);
}

// Layout of each segment: semaphore @0, mutex @8 (held by the worker), condition @16, the
// condition's mutex @24, barrier @64 (its waits of this segment, plus this thread at release).
const segments = Array.from(
  { length: SEGMENTS },
  (_, i) => SharedMemory.create({ name: `${prefix}-${i}`, size: 4096 }),
);
const rx = Array.from(
  { length: SEGMENTS },
  (_, i) => Channel.create({ name: `${prefix}-rx-${i}`, capacity: 1024 }),
);
const tx = Array.from(
  { length: SEGMENTS },
  (_, i) => Channel.create({ name: `${prefix}-tx-${i}`, capacity: 1024 }),
);
const sems = segments.map((s) => new Semaphore(s, 0));
const mutexes = segments.map((s) => new Mutex(s, 8));
const conditions = segments.map((s) => new Condition(s, 16));
const condMutexes = segments.map((s) => new Mutex(s, 24));
const barriers = segments.map((s, i) => new Barrier(s, 64, share("barrier", i) + 1));
const message = new Uint8Array(16);
/** Messages the first fill put in each tx channel. */
const filled = tx.map(() => 0);
// node:worker_threads, not the web Worker: Node has only the former, and Deno and Bun have both.
const holder = new Worker(new URL("./scale_holder.ts", import.meta.url));
const fromHolder = () => new Promise<unknown>((r) => holder.once("message", r));

/** Leaves the waits of `kinds` pending; returns their promises and a count of those woken. */
async function pend(kinds: readonly Kind[]): Promise<{ waits: Promise<unknown>[]; woken: () => number }> {
  const waits: Promise<unknown>[] = [];
  let woken = 0;
  const track = (p: Promise<unknown>) => waits.push(p.then(() => woken++));
  for (let i = 0; i < SEGMENTS; i++) {
    for (const kind of kinds) {
      const n = share(kind, i);
      if (kind === "mutex" && n) {
        if (i === 0) {
          const locked = fromHolder();
          holder.postMessage(segments.map((s) => s.name));
          await locked;
        }
        for (let k = 0; k < n; k++) track(mutexes[i]!.lock().then((g) => g.unlock()));
      }
      if (kind === "semaphore") { for (let k = 0; k < n; k++) track(sems[i]!.acquire()); }
      if (kind === "condition") {
        const cm = condMutexes[i]!;
        for (let k = 0; k < n; k++) {
          await cm.lock();
          track(conditions[i]!.wait(cm).then(() => cm.unlock()));
        }
      }
      if (kind === "barrier") { for (let k = 0; k < n; k++) track(barriers[i]!.wait()); }
      if (kind === "receive") { for (let k = 0; k < n; k++) track(rx[i]!.receive()); }
      if (kind === "send" && n) {
        while (tx[i]!.trySend(message)) filled[i]!++;
        for (let k = 0; k < n; k++) track(tx[i]!.send(message));
      }
    }
  }
  return { waits, woken: () => woken };
}

/** Releases every wait of `kinds` (some releases need the woken waits to go on: they are awaited). */
async function release(kinds: readonly Kind[]): Promise<void> {
  const more: Promise<unknown>[] = [];
  if (kinds.includes("mutex")) {
    const unlocked = fromHolder();
    holder.postMessage("unlock");
    await unlocked;
  }
  for (let i = 0; i < SEGMENTS; i++) {
    for (const kind of kinds) {
      const n = share(kind, i);
      if (kind === "semaphore" && n) sems[i]!.release(n);
      if (kind === "condition") {
        condMutexes[i]!.lockSync();
        conditions[i]!.notifyAll();
        condMutexes[i]!.unlock();
      }
      if (kind === "barrier") more.push(barriers[i]!.wait());
      if (kind === "receive") {
        const ch = rx[i]!;
        more.push((async () => {
          for (let k = 0; k < n; k++) await ch.send(message, { timeout: 60_000 });
        })());
      }
      if (kind === "send") {
        const ch = tx[i]!;
        more.push((async () => {
          // The ring's first fill, then one message per pending send.
          let left = n + filled[i]!;
          while (left > 0) {
            if ((await ch.receive({ timeout: 60_000 })) !== null) left--;
            // Drain what is there now; the last sends may come after this.
            while (left > 0 && ch.tryReceive() !== null) left--;
          }
        })());
      }
    }
  }
  await Promise.all(more);
}

await sleep(50);
const before = status();
const result: Record<string, unknown> = { waits: 0, pendingBefore: 0, woken: 0, before };
const phases = oneAtATime === "1" ? KINDS.map((k) => [k]) : [KINDS];
let during = before;
for (const kinds of phases) {
  const started = performance.now();
  const { waits, woken } = await pend(kinds);
  result.registerMs = performance.now() - started;
  const cpu0 = cpuMs();
  await sleep(1000);
  result.cpuWhilePendingMs = cpuMs() - cpu0;
  const now = status();
  if (now.threads > during.threads || phases.length === 1) during = now;
  let t = performance.now();
  await sleep(10);
  result.timerLateMs = performance.now() - t - 10;
  t = performance.now();
  await readFile(new URL(import.meta.url));
  result.fsReadMs = performance.now() - t;
  const pendingBefore = waits.length - woken();
  t = performance.now();
  await release(kinds);
  await Promise.all(waits);
  result.wakeAllMs = performance.now() - t;
  result.waits = (result.waits as number) + waits.length;
  result.pendingBefore = (result.pendingBefore as number) + pendingBefore;
  result.woken = (result.woken as number) + woken();
}
result.during = during;
result.waiterThreads = waiterThreadsAvailable();
holder.terminate();
console.log(JSON.stringify(result));
for (const s of segments) {
  s.close();
  s.unlink();
}
for (const c of [...rx, ...tx]) {
  c.close();
  c.unlink();
}
