/**
 * Waiting at scale (issue 14): async waits on a few shared waiter threads (`_sync/waiters.ts`)
 * against the design before them, where each pending async wait took a thread (a Deno blocking-pool
 * thread, or a Bun Worker), measured in the same run:
 *
 * 1. an async hand-off round trip between two processes (semaphore ping-pong, both sides awaiting):
 *    the waiter threads must not make it slower (target: 0.9, i.e. within 10%);
 * 2. threads, 3. resident memory and 4. CPU time a second added by 10,000 pending async waits of
 *    six kinds in equal shares (Mutex lock under a holder on another thread, Semaphore acquire,
 *    Condition wait, Barrier wait, Channel receive on an empty channel and send on a full one, on
 *    20 segments and 40 channels; `tests/children/scale_child.ts`). The reference cannot hold
 *    10,000 waits (a thread each: Bun did not finish within minutes), so it is measured with 200
 *    and scaled by 50, as its name says.
 *
 * Each figure comes from fresh child processes of the bench's runtime. Nothing here asserts.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { SharedMemory } from "../mod.ts";
import type { BenchContext, BenchRow, BenchSuite } from "./_bench.ts";
import { sameRuntime } from "./core/_util.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const PINGPONG = `${ROOT}/bench/waiting/pingpong.ts`;
const SCALE = `${ROOT}/tests/children/scale_child.ts`;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function runOk(cmd: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Uint8Array) => (stdout += new TextDecoder().decode(d)));
    child.stderr!.on("data", (d: Uint8Array) => (stderr += new TextDecoder().decode(d)));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${cmd.join(" ")} exited with ${code}: ${stderr}`));
    });
  });
}

function uniqueName(tag: string): string {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16).padStart(8, "0");
  return `shmbench_wait_${tag}_${rand}`;
}

/** µs per async round trip between two processes, both in `mode`. */
async function pingpong(ctx: BenchContext, rounds: number, mode: string): Promise<number> {
  const shm = SharedMemory.create({ name: uniqueName("pp"), size: 64 });
  try {
    const args = (side: string) => [shm.name, String(rounds), side, mode];
    const [a] = await Promise.all([
      runOk(sameRuntime(ctx.runtime, PINGPONG, args("a"))),
      runOk(sameRuntime(ctx.runtime, PINGPONG, args("b"))),
    ]);
    return Number(a.trim());
  } finally {
    shm.close();
    shm.unlink();
  }
}

interface Scale {
  threads: number;
  mb: number;
  cpuMs: number;
}

/** Threads and MB that `waits` pending async waits add to a fresh process. */
async function scale(ctx: BenchContext, waits: number, mode: string): Promise<Scale> {
  const out = await runOk(sameRuntime(ctx.runtime, SCALE, [uniqueName("scale"), String(waits), "20", mode]));
  const r = JSON.parse(out.trim().split("\n").at(-1)!);
  return {
    threads: r.during.threads - r.before.threads,
    mb: r.during.rssMB - r.before.rssMB,
    cpuMs: r.cpuWhilePendingMs,
  };
}

const suite: BenchSuite = async (ctx) => {
  const rounds = ctx.quick ? 300 : 3000;
  const reps = ctx.quick ? 1 : 3;
  const ours: number[] = [];
  const before: number[] = [];
  for (let r = 0; r < reps; r++) {
    before.push(await pingpong(ctx, rounds, "reference"));
    ours.push(await pingpong(ctx, rounds, "ours"));
  }
  const n = ctx.quick ? 1000 : 10_000;
  const refWaits = 200;
  const mine = await scale(ctx, n, "ours");
  const ref = await scale(ctx, refWaits, "reference");
  const factor = n / refWaits;
  const label = `${n.toLocaleString("en")} pending async waits (six kinds)`;
  const refName = `a thread per wait (before), ${refWaits} waits × ${factor}`;
  const rows: BenchRow[] = [
    {
      name: "async hand-off round trip, 2 processes",
      unit: "µs",
      ours: median(ours),
      reference: median(before),
      referenceName: "a thread per wait (before)",
      higherIsBetter: false,
      target: 0.9,
    },
    {
      name: `threads added by ${label}`,
      unit: "threads",
      ours: Math.max(1, mine.threads),
      reference: Math.max(1, ref.threads * factor),
      referenceName: refName,
      higherIsBetter: false,
    },
    {
      name: `memory added by ${label}`,
      unit: "MB",
      ours: Math.max(0.1, mine.mb),
      reference: Math.max(0.1, ref.mb * factor),
      referenceName: refName,
      higherIsBetter: false,
    },
    {
      name: `CPU per second while ${label} sleep`,
      unit: "ms",
      ours: Math.max(0.1, mine.cpuMs),
      reference: Math.max(0.1, ref.cpuMs * factor),
      referenceName: refName,
      higherIsBetter: false,
    },
  ];
  return rows;
};

export default suite;
