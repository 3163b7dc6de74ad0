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
 *   summed over the subscribers, against the Channel's one-to-one rate (copying path); target 1×.
 * - One-way latency p50 and p99 of 64 B and 1 MiB messages through loans and borrows (half of a
 *   round trip to a process that answers with a loan of the same size): 64 B against half the median
 *   round trip of a Unix socket echoing 64 B (target 1×); 1 MiB next to one streaming copy of 1 MiB.
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
  unixSocketRoundTrip,
} from "./core/_util.ts";
import { Channel } from "../channel.ts";
import { Topic } from "../topic.ts";

const PEER = fileURLToPath(new URL("./topic/peer.ts", import.meta.url));

function launch(ctx: BenchContext, args: string[]): Launched {
  return launchPeer(ctx.runtime, PEER, args, "topic bench peer");
}

async function result(peer: Launched): Promise<{ ms: number; got?: number }> {
  const r = await peer.done;
  if (r.code !== 0) throw new Error(`The topic bench peer failed (${r.code}): ${r.stderr}`);
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  return JSON.parse(line!) as { ms: number; got?: number };
}

/** Messages per second of `size` bytes, this process → 1 receiver process, copying or through loans and borrows. */
async function oneWay(ctx: BenchContext, size: number, loans: boolean, count: number): Promise<number> {
  const runs = ctx.quick ? 1 : 3;
  const rates: number[] = [];
  const msg = new Uint8Array(size).fill(1);
  for (let run = 0; run < runs; run++) {
    using ch = Channel.create({ name: `${uniquePrefix()}_tl`, capacity: size > 4096 ? 8 << 20 : 1 << 20 });
    const peer = launch(
      ctx,
      loans ? ["borrow", ch.name, String(count)] : ["recv", ch.name, String(count), String(size)],
    );
    try {
      await peer.ready;
      if (loans) {
        for (let i = 0; i < count; i++) {
          const loan = ch.loanSync(size);
          loan.bytes.set(msg);
          loan.send();
        }
      } else {
        for (let i = 0; i < count; i++) ch.sendSync(msg);
      }
      rates.push((count - 1) / (await result(peer)).ms * 1000);
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
  const peers = Array.from({ length: subs }, () => launch(ctx, ["sub", topic.name, String(count)]));
  try {
    await Promise.all(peers.map((p) => p.ready));
    const msg = new Uint8Array(64).fill(5);
    for (let i = 0; i < count; i++) topic.publishSync(msg);
    let total = 0;
    for (const p of peers) {
      const r = await result(p);
      total += (r.got! - 1) / r.ms * 1000;
    }
    return total;
  } finally {
    for (const p of peers) p.kill();
  }
}

/**
 * One-way latency in µs (half a round trip; p50 and p99 of single trips) of `size`-byte messages
 * through loans and borrows to an echoing process that answers with a loan of the same size.
 */
async function latency(ctx: BenchContext, size: number): Promise<{ p50: number; p99: number }> {
  const trips = ctx.quick ? 200 : size > 4096 ? 2_000 : 20_000;
  using req = Channel.create({ name: `${uniquePrefix()}_lq`, capacity: Math.max(1 << 16, 4 * size) });
  using resp = Channel.create({ name: `${uniquePrefix()}_lr`, capacity: Math.max(1 << 16, 4 * size) });
  const peer = launch(ctx, ["echo", req.name, resp.name]);
  try {
    await peer.ready;
    const msg = new Uint8Array(size).fill(3);
    const samples: number[] = [];
    for (let i = 0; i < trips * 1.1; i++) {
      const start = performance.now();
      const loan = req.loanSync(size);
      loan.bytes.set(msg);
      loan.send();
      resp.borrowSync()!.release();
      if (i >= trips * 0.1) samples.push((performance.now() - start) * 1000 / 2);
    }
    req.end();
    await peer.done;
    samples.sort((a, b) => a - b);
    return {
      p50: samples[Math.floor(samples.length * 0.5)]!,
      p99: samples[Math.floor(samples.length * 0.99)]!,
    };
  } finally {
    peer.kill();
  }
}

const suite: BenchSuite = async (ctx) => {
  const rows: BenchRow[] = [];
  const small = ctx.quick ? 100_000 : 2_000_000;
  const copied = await oneWay(ctx, 64, false, small);
  rows.push({
    name: "64-byte messages one way, one per call: loanSync + send → borrowSync + release",
    unit: "msg/s",
    ours: await oneWay(ctx, 64, true, small),
    reference: copied,
    referenceName: "the copying path (sendSync → receiveIntoSync), same run",
    higherIsBetter: true,
    target: 1,
  });
  const big = ctx.quick ? 100 : 2_000;
  const streamed = memcpy(ctx);
  rows.push({
    name: "1 MiB messages one way through loans and borrows (only the producer writes the bytes)",
    unit: "GB/s",
    ours: (await oneWay(ctx, 1 << 20, true, big)) * (1 << 20) / 1e9,
    reference: streamed,
    referenceName: "Uint8Array.set of 1 MiB blocks streaming through 64 MiB, same run",
    higherIsBetter: true,
    target: 1,
  });
  rows.push({
    name: "Topic, 1 publisher → 8 subscriber processes, 64 B (block policy): deliveries per second, summed",
    unit: "msg/s",
    ours: await fanOut(ctx, 8),
    reference: copied,
    referenceName: "Channel one-to-one, 64 B, copying path, same run",
    higherIsBetter: true,
    target: 1,
  });
  const small64 = await latency(ctx, 64);
  const socket = (await unixSocketRoundTrip(
    ctx.runtime,
    64,
    ctx.quick ? { warmup: 50, batch: 50, batches: 3 } : { warmup: 5_000, batch: 5_000, batches: 9 },
  )) / 2;
  for (const [which, value] of [["p50", small64.p50], ["p99", small64.p99]] as const) {
    rows.push({
      name: `one-way latency ${which}, 64 B, loan → borrow (half a round trip answered by a loan)`,
      unit: "µs",
      ours: value,
      reference: socket,
      referenceName: `Unix socket, half the median round trip of 64 B echoed (${SOCKET_API[ctx.runtime]})`,
      higherIsBetter: false,
      target: 1,
    });
  }
  // The shared Unix socket helper writes a message with one write() call, which sends only part of
  // 1 MiB: the 1 MiB latency is put next to one streaming copy of 1 MiB instead (no target).
  const big1 = await latency(ctx, 1 << 20);
  const copyMicros = (1 << 20) / (streamed * 1e9) * 1e6;
  for (const [which, value] of [["p50", big1.p50], ["p99", big1.p99]] as const) {
    rows.push({
      name: `one-way latency ${which}, 1 MiB, loan → borrow (half a round trip answered by a loan)`,
      unit: "µs",
      ours: value,
      reference: copyMicros,
      referenceName: "one Uint8Array.set of 1 MiB streaming through 64 MiB, same run",
      higherIsBetter: false,
    });
  }
  return rows;
};

export default suite;
