/**
 * The four core comparisons of issue 2, each measured against its reference in the same run and
 * the same runtime:
 *
 * 1. copying 256 MiB into an already-mapped segment vs a heap-to-heap `Uint8Array.set`;
 * 2. creating a 256 MiB segment and filling it vs Python's `SharedMemory` + NumPy `fill`;
 * 3. create + open + close + unlink of a 4 KiB segment vs the same cycle in Python;
 * 4. a cross-process round trip through one shared Int32 (both sides spinning on `Atomics`) vs a
 *    Unix domain socket round trip, the peer being a child process of the same runtime in both.
 *
 * Every figure is a median over several repetitions after a warm-up. Ours and the reference are
 * interleaved (alternating order, or rounds of Python then ours) so that a burst of load from other
 * processes weighs on both. Every segment is unlinked, also on failure.
 *
 * @module
 */

import { SharedMemory } from "../mod.ts";
import type { BenchContext, BenchRow, BenchSuite } from "./_bench.ts";
import {
  collectGarbage,
  CORE_DIR,
  median,
  type Peer,
  runPython,
  sameRuntime,
  SOCKET_API,
  startPeer,
  uniquePrefix,
  unixSocketRoundTrip,
} from "./core/_util.ts";

const MiB = 1 << 20;
const FILL_BYTE = 0xa5;

function gbps(bytes: number, ms: number): number {
  return bytes / (ms / 1000) / 1e9;
}

/** Copy into a mapped, already faulted-in segment vs heap to heap. */
function copyIntoSegment(ctx: BenchContext): BenchRow {
  const size = (ctx.quick ? 16 : 256) * MiB;
  const reps = ctx.quick ? 3 : 11;
  const name = `${uniquePrefix()}_copy`;
  let source: Uint8Array | null = new Uint8Array(size);
  let heap: Uint8Array | null = new Uint8Array(size);
  const shm = SharedMemory.create({ name, size });
  try {
    for (let i = 0; i < size; i += 4096) source[i] = i & 0xff;
    source.fill(0x3c, 1, 4096);
    heap.fill(1); // fault the heap destination in, as the segment is (MAP_POPULATE)
    const dest = shm.buf;
    const ours: number[] = [];
    const reference: number[] = [];
    const time = (target: Uint8Array) => {
      const start = performance.now();
      target.set(source!);
      return gbps(size, performance.now() - start);
    };
    time(dest), time(heap), time(dest), time(heap); // warm-up
    for (let r = 0; r < reps; r++) {
      if (r % 2) {
        ours.push(time(dest));
        reference.push(time(heap!));
      } else {
        reference.push(time(heap!));
        ours.push(time(dest));
      }
    }
    if (dest[size - 1] !== source[size - 1] || dest[4096] !== source[4096]) {
      throw new Error("The copy into the segment did not arrive");
    }
    return {
      name: `copy ${size / MiB} MiB into a mapped segment`,
      unit: "GB/s",
      ours: median(ours),
      reference: median(reference),
      referenceName: "heap-to-heap Uint8Array.set",
      higherIsBetter: true,
      target: 0.9,
    };
  } finally {
    shm.close();
    shm.unlink();
    source = heap = null;
    collectGarbage();
  }
}

/** Create a segment and fill every byte vs Python's SharedMemory + NumPy fill. */
async function createAndFill(ctx: BenchContext): Promise<BenchRow> {
  const size = (ctx.quick ? 16 : 256) * MiB;
  const rounds = ctx.quick ? 1 : 3;
  const perRound = ctx.quick ? 2 : 4;
  const prefix = uniquePrefix();
  const once = (name: string): number => {
    const start = performance.now();
    const shm = SharedMemory.create({ name, size });
    let ms: number;
    try {
      shm.buf.fill(FILL_BYTE);
      ms = performance.now() - start;
    } finally {
      shm.close();
      shm.unlink();
    }
    return gbps(size, ms);
  };
  once(`${prefix}_w`); // warm-up
  const ours: number[] = [];
  const reference: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const seconds = await runPython(["fill", `${prefix}_py${round}`, String(size), String(perRound)]);
    reference.push(...seconds.map((s) => gbps(size, s * 1000)));
    for (let i = 0; i < perRound; i++) ours.push(once(`${prefix}_${round}_${i}`));
  }
  collectGarbage();
  return {
    name: `create a ${size / MiB} MiB segment and fill it`,
    unit: "GB/s",
    ours: median(ours),
    reference: median(reference),
    referenceName: "Python SharedMemory + NumPy fill",
    higherIsBetter: true,
    target: 1.5,
  };
}

/** create + open + close + unlink of a 4 KiB segment vs the same cycle in Python. */
async function lifecycle(ctx: BenchContext): Promise<BenchRow> {
  const cycles = ctx.quick ? 100 : 2000;
  const batchesPerRound = ctx.quick ? 2 : 5;
  const rounds = ctx.quick ? 1 : 3;
  const prefix = uniquePrefix();
  const cycle = (name: string) => {
    const a = SharedMemory.create({ name, size: 4096 });
    try {
      SharedMemory.open(name).close();
    } finally {
      a.close();
      a.unlink();
    }
  };
  for (let i = 0; i < Math.max(cycles >> 2, 10); i++) cycle(`${prefix}_w${i}`); // warm-up
  const ours: number[] = [];
  const reference: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const seconds = await runPython([
      "cycle",
      `${prefix}_py${round}`,
      String(cycles),
      String(batchesPerRound),
    ]);
    reference.push(...seconds.map((s) => s * 1e6));
    for (let b = 0; b < batchesPerRound; b++) {
      const names = Array.from({ length: cycles }, (_, i) => `${prefix}_${round}_${b}_${i}`);
      const start = performance.now();
      for (const name of names) cycle(name);
      ours.push(((performance.now() - start) * 1000) / cycles);
    }
  }
  return {
    name: "create + open + close + unlink a 4 KiB segment",
    unit: "µs",
    ours: median(ours),
    reference: median(reference),
    referenceName: "Python SharedMemory, same cycle",
    higherIsBetter: false,
    target: 1,
  };
}

const STOP = -1;
const SPIN_LIMIT_MS = 10_000;

/** Median µs per round trip through one shared Int32, the peer spinning in a child process. */
async function atomicsRoundTrip(ctx: BenchContext): Promise<number> {
  // Short batches, many of them: on a busy machine either spinning side can lose its core for a
  // scheduler tick; the median batch shows the round trip when both run (the socket gets the same).
  const warmup = ctx.quick ? 2_000 : 50_000;
  const batch = 200; // ≈ 20 µs: far shorter than a scheduler time slice
  const batches = ctx.quick ? 21 : 1_001;
  const name = `${uniquePrefix()}_rt`;
  const shm = SharedMemory.create({ name, size: 4096 });
  let peer: Peer | undefined;
  try {
    const cell = shm.view(Int32Array, 0, 2);
    peer = await startPeer(sameRuntime(ctx.runtime, `${CORE_DIR}/peer.ts`, ["atomics", name]));
    if (Atomics.load(cell, 1) !== 1) throw new Error("The peer said ready without attaching");
    let seq = 1;
    const trips = (n: number) => {
      for (let i = 0; i < n; i++) {
        Atomics.store(cell, 0, seq);
        const answer = seq + 1;
        let spins = 0;
        let stalledSince = 0;
        while (Atomics.load(cell, 0) !== answer) {
          if ((++spins & 0xfffff) === 0) {
            // Rarely reached: no clock read on the hot path.
            const now = performance.now();
            if (stalledSince === 0) stalledSince = now;
            else if (now - stalledSince > SPIN_LIMIT_MS) {
              throw new Error(`The peer stopped answering: ${peer!.stderr()}`);
            }
          }
        }
        seq += 2;
      }
    };
    trips(warmup);
    const micros: number[] = [];
    for (let b = 0; b < batches; b++) {
      const start = performance.now();
      trips(batch);
      micros.push(((performance.now() - start) * 1000) / batch);
    }
    Atomics.store(cell, 0, STOP);
    const code = await peer.exited;
    if (code !== 0) throw new Error(`The atomics peer exited with ${code}: ${peer.stderr()}`);
    return median(micros);
  } finally {
    peer?.kill();
    shm.close();
    shm.unlink();
  }
}

/** Round trip through a shared Int32 vs a Unix socket round trip. */
async function roundTrip(ctx: BenchContext): Promise<BenchRow> {
  const ours = await atomicsRoundTrip(ctx);
  const reference = await unixSocketRoundTrip(
    ctx.runtime,
    4,
    ctx.quick ? { warmup: 50, batch: 50, batches: 5 } : { warmup: 1_000, batch: 100, batches: 101 },
  );
  return {
    name: "cross-process round trip through one shared Int32 (Atomics spin)",
    unit: "µs",
    ours,
    reference,
    referenceName: `Unix socket round trip (${SOCKET_API[ctx.runtime]})`,
    higherIsBetter: false,
    target: 50,
  };
}

const suite: BenchSuite = async (ctx) => {
  const rows: BenchRow[] = [];
  for (const measure of [copyIntoSegment, createAndFill, lifecycle, roundTrip]) {
    rows.push(await measure(ctx));
    collectGarbage();
  }
  return rows;
};

export default suite;
