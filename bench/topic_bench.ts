/**
 * Loans, borrows and Topic, each measured with a reference in the same run:
 *
 * - 64-byte messages one way, one per call, 1 sender → 1 receiver process: loans and borrows
 *   (`loanSync` + `send`, `borrowSync` + `release`) against the copying path (`sendSync`,
 *   `receiveIntoSync`); target 1×.
 * - 1 MiB messages one way through loans and borrows (the producer writes the bytes into the loan,
 *   the receiver reads them in place without a copy) against `Uint8Array.set` of 1 MiB blocks
 *   streaming through 64 MiB; target 1×.
 * - A Topic with 1 publisher and 8 subscriber processes, 64 B, block policy: deliveries per second
 *   over all subscribers, against the Channel's one-to-one rate (copying path), both measured the
 *   same way (`deliveryRate`); target 1×.
 * - Every rate above starts after a warm-up (`warmUp`) that the receivers do not time; the three
 *   64-byte rates (copying path, loans, fan-out) run in turn, in three rounds (`alternated`).
 * - One-way latency p50 and p99 (half of single round trips to an echoing process) of 64 B, 1 KiB,
 *   64 KiB, 1 MiB and 4 MiB messages, through loans and borrows (the hand-off only) and through
 *   the copying path, against a Unix socket echoing the same size (target 1× at 64 B).
 *   `tools/bench.mjs` draws these rows as `bench/latency.svg`.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { BenchContext, BenchRow, BenchSuite } from "./_bench.ts";
import {
  type Launched,
  launchPeer,
  median,
  SOCKET_API,
  uniquePrefix,
  unixSocketTrips,
} from "./core/_util.ts";
import { Channel } from "../channel.ts";
import { Topic } from "../topic.ts";

const PEER = fileURLToPath(new URL("./topic/peer.ts", import.meta.url));

function launch(ctx: BenchContext, args: string[]): Launched {
  return launchPeer(ctx.runtime, PEER, args, "topic bench peer");
}

/** What a receiving peer reports: ms from its first message to its last, both as times since the epoch, and how many it got. */
interface Received {
  ms: number;
  first: number;
  last: number;
  got: number;
}

async function result(peer: Launched): Promise<Received> {
  const r = await peer.done;
  if (r.code !== 0) throw new Error(`The topic bench peer failed (${r.code}): ${r.stderr}`);
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  return JSON.parse(line!) as Received;
}

/**
 * Deliveries per second seen by some receivers, the one method for the Channel and the Topic: the
 * messages they got after their first, over the time from the earliest first message to the latest
 * last one (for one receiver: its own rate).
 */
function deliveryRate(received: readonly Received[]): number {
  const start = Math.min(...received.map((r) => r.first));
  const end = Math.max(...received.map((r) => r.last));
  const got = received.reduce((sum, r) => sum + r.got - 1, 0);
  return got / (end - start) * 1000;
}

/**
 * Messages sent before the timed ones of a rate, which receivers do not time: as many again. The
 * JIT compiles the receiving loop meanwhile, and again each time it first meets a path it had not
 * seen (the first wait, the first spin): in a Bun subscriber among 8, the loop was compiled five
 * times in the first 1.5 million messages (200 ms of compiling, on threads that take CPU from every
 * process: as much as receiving took, in a run of a million messages without a warm-up).
 */
function warmUp(count: number): number {
  return count;
}

/**
 * Medians of `rounds` rounds of `cases`, which run in turn in each round: a slow phase of the
 * machine (rates here swing by 2x over minutes) then weighs on all of them alike.
 */
async function alternated(rounds: number, cases: (() => Promise<number>)[]): Promise<number[]> {
  const rates: number[][] = cases.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, run] of cases.entries()) rates[i]!.push(await run());
  }
  return rates.map(median);
}

/**
 * Messages per second of `size` bytes, this process → 1 receiver process, copying or through loans
 * and borrows, in `runs` runs (median).
 */
async function oneWay(
  ctx: BenchContext,
  size: number,
  loans: boolean,
  count: number,
  runs: number = 1,
): Promise<number> {
  const rates: number[] = [];
  const msg = new Uint8Array(size).fill(1);
  for (let run = 0; run < runs; run++) {
    using ch = Channel.create({ name: `${uniquePrefix()}_tl`, capacity: size > 4096 ? 8 << 20 : 1 << 20 });
    const warm = warmUp(count);
    const peer = launch(
      ctx,
      loans
        ? ["borrow", ch.name, String(count), String(warm)]
        : ["recv", ch.name, String(count), String(size), String(warm)],
    );
    try {
      await peer.ready;
      const total = warm + count;
      if (loans) {
        for (let i = 0; i < total; i++) {
          const loan = ch.loanSync(size);
          loan.bytes.set(msg);
          loan.send();
        }
      } else {
        for (let i = 0; i < total; i++) ch.sendSync(msg);
      }
      rates.push(deliveryRate([await result(peer)]));
    } finally {
      peer.kill();
    }
  }
  return median(rates);
}

/** GB/s of `Uint8Array.set` of 1 MiB blocks streaming through 64 MiB. */
function memcpy(ctx: BenchContext): number {
  const block = 1 << 20;
  const span = 64 << 20;
  const a = new Uint8Array(span).fill(1);
  const b = new Uint8Array(span);
  const reps = ctx.quick ? 100 : 1_000;
  const rates: number[] = [];
  for (let run = 0; run < 5; run++) {
    a[0] = run;
    const start = performance.now();
    for (let i = 0, at = 0; i < reps; i++, at = (at + block) % span) b.set(a.subarray(at, at + block), at);
    rates.push(reps * block / (performance.now() - start) / 1e6);
  }
  return median(rates);
}

/** Deliveries per second summed over `subs` subscriber processes of a topic with one publisher (this process). */
async function fanOut(ctx: BenchContext, subs: number): Promise<number> {
  const count = ctx.quick ? 50_000 : 1_000_000;
  using topic = Topic.create({
    name: `${uniquePrefix()}_tp`,
    capacity: 4096,
    maxMessageSize: 64,
    policy: "block",
  });
  const warm = warmUp(count);
  const peers = Array.from(
    { length: subs },
    () => launch(ctx, ["sub", topic.name, String(count), "64", String(warm)]),
  );
  try {
    await Promise.all(peers.map((p) => p.ready));
    const msg = new Uint8Array(64).fill(5);
    for (let i = 0, total = warm + count; i < total; i++) topic.publishSync(msg);
    return deliveryRate(await Promise.all(peers.map(result)));
  } finally {
    for (const p of peers) p.kill();
  }
}

/** p50 and p99 of some samples. */
function percentiles(samples: number[]): Percentiles {
  samples.sort((a, b) => a - b);
  return {
    p50: samples[Math.floor(samples.length * 0.5)]!,
    p99: samples[Math.floor(samples.length * 0.99)]!,
  };
}

interface Percentiles {
  p50: number;
  p99: number;
}

/** Single trips timed per size: fewer for large messages. */
function tripsFor(ctx: BenchContext, size: number): number {
  if (ctx.quick) return size > 65536 ? 20 : 200;
  return size <= 1024 ? 10_000 : size <= 65536 ? 2_000 : size <= 1 << 20 ? 300 : 100;
}

/**
 * One-way latency in µs (half a round trip; p50 and p99 of single trips) of `size`-byte messages
 * to an echoing process. `loans`: loan → borrow both ways, each side touching only the first and
 * last bytes (the hand-off of a message written in place, as iceoryx2 measures it); otherwise the
 * copying path, `sendSync` → `receiveIntoSync` of the whole payload both ways.
 */
async function latency(ctx: BenchContext, size: number, loans: boolean): Promise<Percentiles> {
  const trips = tripsFor(ctx, size);
  using req = Channel.create({ name: `${uniquePrefix()}_lq`, capacity: Math.max(1 << 16, 4 * size) });
  using resp = Channel.create({ name: `${uniquePrefix()}_lr`, capacity: Math.max(1 << 16, 4 * size) });
  const peer = launch(
    ctx,
    loans ? ["echo", req.name, resp.name] : ["echocopy", req.name, resp.name, String(size)],
  );
  try {
    await peer.ready;
    const msg = new Uint8Array(size).fill(3);
    const buf = new Uint8Array(size);
    const samples: number[] = [];
    const warmup = Math.ceil(trips / 10);
    for (let i = 0; i < trips + warmup; i++) {
      const start = performance.now();
      if (loans) {
        const loan = req.loanSync(size);
        loan.bytes[0] = i;
        loan.bytes[size - 1] = i;
        loan.send();
        resp.borrowSync()!.release();
      } else {
        req.sendSync(msg);
        resp.receiveIntoSync(buf);
      }
      if (i >= warmup) samples.push((performance.now() - start) * 1000 / 2);
    }
    req.end();
    await peer.done;
    return percentiles(samples);
  } finally {
    peer.kill();
  }
}

/** One-way latency in µs over a Unix socket: half of each single round trip (p50, p99). */
async function socketLatency(ctx: BenchContext, size: number): Promise<Percentiles> {
  const trips = Math.max(20, Math.ceil(tripsFor(ctx, size) / 5));
  const micros = await unixSocketTrips(ctx.runtime, size, Math.ceil(trips / 10), trips);
  return percentiles(micros.map((m) => m / 2));
}

/**
 * Payload sizes of the latency rows. `tools/bench.mjs` draws `bench/latency.svg` from rows named
 * `one-way latency <p50|p99>, <size>: <path>` (this file's names: keep them in step).
 */
const LATENCY_SIZES: readonly [number, string][] = [
  [64, "64 B"],
  [1024, "1 KiB"],
  [65536, "64 KiB"],
  [1 << 20, "1 MiB"],
  [4 << 20, "4 MiB"],
];

const suite: BenchSuite = async (ctx) => {
  const rows: BenchRow[] = [];
  const small = ctx.quick ? 100_000 : 2_000_000;
  // The copying path, loans and the fan-out in turn, three times: the copying path is the
  // reference of the other two.
  const [copied, loaned, fanned] = await alternated(ctx.quick ? 1 : 3, [
    () => oneWay(ctx, 64, false, small),
    () => oneWay(ctx, 64, true, small),
    () => fanOut(ctx, 8),
  ]);
  rows.push({
    name: "64-byte messages one way, one per call: loanSync + send → borrowSync + release",
    unit: "msg/s",
    ours: loaned!,
    reference: copied!,
    referenceName: "the copying path (sendSync → receiveIntoSync), same run",
    higherIsBetter: true,
    target: 1,
  });
  const big = ctx.quick ? 100 : 2_000;
  const streamed = memcpy(ctx);
  rows.push({
    name: "1 MiB messages one way through loans and borrows (only the producer writes the bytes)",
    unit: "GB/s",
    ours: (await oneWay(ctx, 1 << 20, true, big, ctx.quick ? 1 : 3)) * (1 << 20) / 1e9,
    reference: streamed,
    referenceName: "Uint8Array.set of 1 MiB blocks streaming through 64 MiB, same run",
    higherIsBetter: true,
    target: 1,
  });
  rows.push({
    name:
      "Topic, 1 publisher → 8 subscriber processes, 64 B (block policy): deliveries per second over all subscribers",
    unit: "msg/s",
    ours: fanned!,
    reference: copied!,
    referenceName: "Channel one-to-one, 64 B, copying path, same run, measured the same way",
    higherIsBetter: true,
    target: 1,
  });
  const socketName = `Unix socket, half of single round trips of the same size echoed (${
    SOCKET_API[ctx.runtime]
  }), same run`;
  for (const [size, label] of LATENCY_SIZES) {
    const socket = await socketLatency(ctx, size);
    for (
      const [path, figures] of [
        ["loan → borrow", await latency(ctx, size, true)],
        ["send → receiveInto", await latency(ctx, size, false)],
      ] as const
    ) {
      for (const which of ["p50", "p99"] as const) {
        rows.push({
          name: `one-way latency ${which}, ${label}: ${path}`,
          unit: "µs",
          ours: figures[which],
          reference: socket[which],
          referenceName: socketName,
          higherIsBetter: false,
          ...(size === 64 ? { target: 1 } : {}),
        });
      }
    }
  }
  return rows;
};

export default suite;
