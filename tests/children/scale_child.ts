// A child for tests/waiting_at_scale_test.ts and bench/waiting_bench.ts (runs under Deno or Bun):
// leaves N async waits pending on SEGMENTS segments (a mix of Semaphore, Mutex, Condition and
// Barrier waits), measures itself while they pend, then releases them all and prints one JSON line.
// Usage: scale_child.ts <name prefix> <waits> <segments> [reference]
//   reference: waits take a thread each (the design before the waiter threads), for the bench.
import process from "node:process";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Barrier, Condition, Mutex, Semaphore, SharedMemory } from "../../mod.ts";
import { usePollingFallback } from "../../_sync/futex.ts";
import { useWaiterThreads } from "../../_sync/waiters.ts";

const [prefix, waitsArg, segmentsArg, mode] = process.argv.slice(2);
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

// Layout of each segment: semaphore @0, mutex @8, condition @16, mutex for the condition @24, barrier @64.
const segments = Array.from(
  { length: SEGMENTS },
  (_, i) => SharedMemory.create({ name: `${prefix}-${i}`, size: 4096 }),
);
await sleep(50);
const before = status();
const started = performance.now();
// 1% each of mutex, condition and barrier waits (at least one each); the rest semaphore waits.
const few = Math.max(1, Math.floor(N / 100 / SEGMENTS));
const waits: Promise<unknown>[] = [];
let woken = 0;
const track = (p: Promise<unknown>) => waits.push(p.then(() => woken++));
const sems = segments.map((s) => new Semaphore(s, 0));
const mutexes = segments.map((s) => new Mutex(s, 8));
const conditions = segments.map((s) => new Condition(s, 16));
const condMutexes = segments.map((s) => new Mutex(s, 24));
const barriers = segments.map((s) => new Barrier(s, 64, few + 1));
const guards = mutexes.map((m) => m.lockSync());
let special = 0;
for (let i = 0; i < SEGMENTS; i++) {
  for (let k = 0; k < few; k++) {
    track(mutexes[i]!.lock().then((g) => g.unlock()));
    const cm = condMutexes[i]!;
    await cm.lock();
    track(conditions[i]!.wait(cm).then(() => cm.unlock()));
    track(barriers[i]!.wait());
    special += 3;
  }
}
for (let i = 0; special + i < N; i++) track(sems[i % SEGMENTS]!.acquire());
const registered = performance.now() - started;
await sleep(1000);
const during = status();
let t = performance.now();
await sleep(10);
const timerLateMs = performance.now() - t - 10;
t = performance.now();
await readFile(new URL(import.meta.url));
const fsReadMs = performance.now() - t;
const pendingBefore = waits.length - woken;
t = performance.now();
for (let i = 0; i < SEGMENTS; i++) {
  const total = Math.max(0, N - special);
  const semWaits = Math.floor(total / SEGMENTS) + (i < total % SEGMENTS ? 1 : 0);
  if (semWaits) sems[i]!.release(semWaits);
  guards[i]!.unlock();
  condMutexes[i]!.lockSync();
  conditions[i]!.notifyAll();
  condMutexes[i]!.unlock();
}
const last = barriers.map((b) => b.wait());
await Promise.all([...waits, ...last]);
const wakeAllMs = performance.now() - t;
console.log(JSON.stringify({
  waits: waits.length,
  pendingBefore,
  woken,
  before,
  during,
  registerMs: registered,
  timerLateMs,
  fsReadMs,
  wakeAllMs,
}));
for (const s of segments) {
  s.close();
  s.unlink();
}
