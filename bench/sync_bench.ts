/**
 * The synchronization comparisons of issue 5, each measured against its reference in the same run:
 *
 * 1. uncontended `lockSync()` + `unlock()` vs a C `pthread_mutex_lock`/`unlock` pair on a
 *    process-shared mutex (a small C program compiled by gcc into `bench/.build/`); target: within 2×;
 * 2. the same vs Python's `multiprocessing.Lock` acquire/release; target: at least 4× faster;
 * 3. a lock hand-off round trip between two processes vs a Unix domain socket round trip (1 byte out
 *    and back) between two processes of the same runtime; target: faster;
 * 4. a Condition ping-pong round trip between two processes vs the same socket round trip.
 *
 * The hand-off uses three mutexes so that every acquisition is a real hand-off: one side holds two,
 * the other one; each step releases the older of the two it holds and takes the third, which the
 * other side holds and releases once it has the first. So every step is a round trip: one hand-off
 * each way, each waking the other process.
 *
 * Figures are medians over repetitions after a warm-up. Nothing here asserts a timing.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Condition, Mutex, SharedMemory } from "../mod.ts";
import { futexWaitSync } from "../_sync/futex.ts";
import type { BenchContext, BenchRow, BenchSuite } from "./_bench.ts";
import { sameRuntime, unixSocketRoundTrip } from "./core/_util.ts";

const HERE = fileURLToPath(new URL(".", import.meta.url)).replace(/\/$/, "");
const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const PEER = `${HERE}/sync/peer.ts`;
const READY = 8;
const STOP = 9;
const TURN = 10;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string[], onLine?: (line: string) => void): { done: Promise<Output>; kill(): void } {
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Uint8Array) => {
    const text = new TextDecoder().decode(d);
    stdout += text;
    if (onLine) { for (const line of text.split("\n")) if (line) onLine(line); }
  });
  child.stderr!.on("data", (d: Uint8Array) => (stderr += new TextDecoder().decode(d)));
  const done = new Promise<Output>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
  return { done, kill: () => child.kill("SIGKILL") };
}

async function runOk(cmd: string[]): Promise<string> {
  const out = await run(cmd).done;
  if (out.code !== 0) throw new Error(`${cmd.join(" ")} exited with ${out.code}: ${out.stderr}`);
  return out.stdout;
}

function figures(stdout: string): number[] {
  return stdout.trim().split("\n").map(Number).filter((n) => Number.isFinite(n));
}

function uniqueName(tag: string): string {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16).padStart(8, "0");
  return `shmbench_sync_${tag}_${rand}`;
}

/** ns per uncontended lockSync() + unlock(). */
function ourPair(iterations: number, repetitions: number): number {
  const shm = SharedMemory.create({ name: uniqueName("pair"), size: 64 });
  try {
    const mutex = new Mutex(shm, 0);
    const counter = shm.view(Int32Array, 8, 1);
    const once = () => {
      const start = performance.now();
      for (let i = 0; i < iterations; i++) {
        mutex.lockSync();
        counter[0]!++;
        mutex.unlock();
      }
      return (performance.now() - start) * 1e6 / iterations;
    };
    once();
    once(); // warm-up: let the JIT settle
    const times: number[] = [];
    for (let r = 0; r < repetitions; r++) times.push(once());
    return median(times);
  } finally {
    shm.close();
    shm.unlink();
  }
}

/** Compiles the pthread reference into bench/.build/ (again only when the source is newer). */
async function pthreadBinary(): Promise<string> {
  const dir = `${ROOT}/bench/.build`;
  const binary = `${dir}/sync_pthread_pair`;
  const source = `${HERE}/sync/pthread_pair.c`;
  if (!existsSync(binary) || statSync(binary).mtimeMs < statSync(source).mtimeMs) {
    mkdirSync(dir, { recursive: true });
    await runOk(["gcc", "-O2", "-o", binary, source, "-lpthread"]);
  }
  return binary;
}

async function uncontended(ctx: BenchContext): Promise<BenchRow[]> {
  const iterations = ctx.quick ? 200_000 : 5_000_000;
  const reps = ctx.quick ? 3 : 7;
  const binary = await pthreadBinary();
  // Interleave: C, ours, Python, ours, C … so a burst of load elsewhere weighs on all of them.
  const c: number[] = [];
  const py: number[] = [];
  const ours: number[] = [];
  const rounds = ctx.quick ? 1 : 3;
  for (let r = 0; r < rounds; r++) {
    c.push(...figures(await runOk([binary, String(iterations * 2), String(reps)])));
    ours.push(ourPair(iterations, reps));
    py.push(
      ...figures(await runOk(["python3", `${HERE}/sync/mp_lock.py`, String(iterations / 5), String(reps)])),
    );
    ours.push(ourPair(iterations, reps));
  }
  const mine = median(ours);
  return [
    {
      name: "uncontended lock + unlock",
      unit: "ns",
      ours: mine,
      reference: median(c),
      referenceName: "C pthread_mutex_lock/unlock (process-shared)",
      higherIsBetter: false,
      target: 0.5,
    },
    {
      name: "uncontended lock + unlock",
      unit: "ns",
      ours: mine,
      reference: median(py),
      referenceName: "Python multiprocessing.Lock acquire/release",
      higherIsBetter: false,
      target: 4,
    },
  ];
}

/** Starts the peer on a fresh segment and waits until it is in place. */
async function withPeer<T>(
  ctx: BenchContext,
  mode: "handoff" | "cond",
  setup: (shm: SharedMemory) => void,
  body: (shm: SharedMemory, i32: Int32Array) => T,
): Promise<T> {
  const shm = SharedMemory.create({ name: uniqueName(mode), size: 4096 });
  let peer: ReturnType<typeof run> | undefined;
  try {
    const i32 = shm.view(Int32Array);
    setup(shm);
    peer = run(sameRuntime(ctx.runtime, PEER, [mode, shm.name]));
    const until = performance.now() + 30_000;
    while (Atomics.load(i32, READY) === 0) {
      if (performance.now() > until) throw new Error(`The ${mode} peer did not start`);
      futexWaitSync(shm, READY * 4, 0, 100);
    }
    const result = body(shm, i32);
    const out = await peer.done;
    if (out.code !== 0) throw new Error(`The ${mode} peer failed: ${out.stderr}`);
    peer = undefined;
    return result;
  } finally {
    peer?.kill();
    shm.close();
    shm.unlink();
  }
}

/**
 * µs per hand-off round trip through three mutexes. One step of this side is a round trip: the
 * lock it releases goes to the peer (which wakes), and the lock it takes next comes back from the
 * peer (and this side wakes).
 */
function handoff(ctx: BenchContext): Promise<number> {
  const roundTrips = ctx.quick ? 500 : 5_000;
  let locks: Mutex[] = [];
  return withPeer(ctx, "handoff", (shm) => {
    locks = [0, 8, 16].map((o) => new Mutex(shm, o));
    locks[0]!.lockSync();
    locks[1]!.lockSync();
  }, (_shm, i32) => {
    // Step i: release lock i mod 3 (the peer is waiting for it), take lock (i + 2) mod 3 (the peer
    // releases it once it has the first).
    let i = 0;
    const steps = (n: number) => {
      const start = performance.now();
      for (const end = i + n; i < end; i++) {
        locks[i % 3]!.unlock();
        locks[(i + 2) % 3]!.lockSync();
      }
      return (performance.now() - start) * 1000 / n;
    };
    steps(roundTrips / 5); // warm-up
    const times: number[] = [];
    for (let r = 0; r < 5; r++) times.push(steps(roundTrips / 5));
    Atomics.store(i32, STOP, 1);
    // After step i - 1 this side holds locks i mod 3 and (i + 1) mod 3.
    locks[i % 3]!.unlock();
    locks[(i + 1) % 3]!.unlock();
    return median(times);
  });
}

/** µs per Condition ping-pong round trip. */
function conditionPingPong(ctx: BenchContext): Promise<number> {
  const roundTrips = ctx.quick ? 500 : 5_000;
  return withPeer(ctx, "cond", () => {}, (shm, i32) => {
    const mutex = new Mutex(shm, 0);
    const cond = new Condition(shm, 24);
    mutex.lockSync();
    const trips = (n: number) => {
      const start = performance.now();
      for (let k = 0; k < n; k++) {
        i32[TURN] = 1;
        cond.notify();
        while (i32[TURN] !== 0) cond.waitSync(mutex);
      }
      return (performance.now() - start) * 1000 / n;
    };
    trips(roundTrips / 5);
    const times: number[] = [];
    for (let r = 0; r < 5; r++) times.push(trips(roundTrips / 5));
    Atomics.store(i32, STOP, 1);
    cond.notifyAll();
    mutex.unlock();
    return median(times);
  });
}

/** µs per 1-byte round trip over a Unix domain socket to an echoing peer of the same runtime. */
function socketRoundTrip(ctx: BenchContext): Promise<number> {
  const batch = ctx.quick ? 100 : 1_000;
  return unixSocketRoundTrip(ctx.runtime, 1, { warmup: batch, batch, batches: 5 });
}

const suite: BenchSuite = async (ctx) => {
  const rows = await uncontended(ctx);
  // Interleave the cross-process measurements with the socket reference.
  const socketA = await socketRoundTrip(ctx);
  const hand = await handoff(ctx);
  const cond = await conditionPingPong(ctx);
  const socketB = await socketRoundTrip(ctx);
  const socket = (socketA + socketB) / 2;
  rows.push(
    {
      name: "lock hand-off round trip between two processes",
      unit: "µs",
      ours: hand,
      reference: socket,
      referenceName: `Unix socket round trip (${ctx.runtime} to ${ctx.runtime})`,
      higherIsBetter: false,
      target: 1,
    },
    {
      name: "Condition ping-pong round trip between two processes",
      unit: "µs",
      ours: cond,
      reference: socket,
      referenceName: `Unix socket round trip (${ctx.runtime} to ${ctx.runtime})`,
      higherIsBetter: false,
      target: 1,
    },
  );
  return rows;
};

export default suite;
