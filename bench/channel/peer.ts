/**
 * The other process of `bench/channel_bench.ts`.
 *
 * - `peer.ts recv <channel> <count> <size> [batch]`: receives `count` messages into one buffer
 *   (`receiveInto`, or `receiveMany` with `batch`), then prints `{"ms": …}`, the time from the first
 *   message to the last.
 * - `peer.ts bare <segment> <count>`: receives `count` 64-byte messages from a bare
 *   single-producer ring (`_bare_ring.ts`), then prints `{"ms": …}` as `recv` does.
 * - `peer.ts send <channel> <count> <size> <go>`: waits for the Int32 at byte 0 of segment `go` to
 *   turn 1, then sends `count` messages of `size` bytes.
 * - `peer.ts echo <requests> <responses>`: sends every message back until the requests end.
 * - `peer.ts ipc`: Bun only, echoes every IPC message to its parent.
 *
 * Prints `ready` once attached.
 *
 * @module
 */

import { Channel } from "../../channel.ts";
import { SharedMemory } from "../../shared_memory.ts";
import { sleepSync } from "../../_sync/sleep.ts";
import { BARE_HEAD, BARE_SLOTS_AT, BARE_TAIL, bareRing } from "./_bare_ring.ts";

const [mode, a = "", b = "", c = "", d = ""] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);

function ready(): void {
  console.log("ready");
}

if (mode === "recv") {
  const ch = Channel.open(a);
  const count = Number(b);
  const size = Number(c);
  let ms: number;
  if (d === "batch") {
    const lengths = new Uint32Array(1024);
    const buf = new Uint8Array(Math.max(size * lengths.length, 1 << 16));
    ready();
    let got = ch.receiveManySync(buf, lengths)!;
    const start = performance.now();
    while (got < count) got += ch.receiveManySync(buf, lengths)!;
    ms = performance.now() - start;
  } else {
    const buf = new Uint8Array(size);
    ready();
    ch.receiveIntoSync(buf);
    const start = performance.now();
    for (let i = 1; i < count; i++) ch.receiveIntoSync(buf);
    ms = performance.now() - start;
  }
  console.log(JSON.stringify({ ms }));
  ch.close();
} else if (mode === "bare") {
  const shm = SharedMemory.open(a);
  const count = Number(b);
  const ring = bareRing(shm);
  const out = new Int32Array(16);
  ready();
  let head = 0;
  let tail = 0;
  const take = () => {
    while (head === tail) tail = Atomics.load(ring.i32, BARE_TAIL);
    const w = BARE_SLOTS_AT / 4 + (head & ring.mask) * 16;
    for (let i = 0; i < 16; i++) out[i] = ring.i32[w + i]!;
    Atomics.store(ring.i32, BARE_HEAD, ++head);
  };
  take();
  const start = performance.now();
  for (let i = 1; i < count; i++) take();
  console.log(JSON.stringify({ ms: performance.now() - start }));
  shm.close();
} else if (mode === "send") {
  const ch = Channel.open(a);
  const count = Number(b);
  const msg = new Uint8Array(Number(c)).fill(7);
  const go = SharedMemory.open(d);
  ready();
  while (Atomics.load(go.view(Int32Array, 0, 1), 0) !== 1) sleepSync(0.1);
  for (let i = 0; i < count; i++) ch.sendSync(msg);
  go.close();
  ch.close();
} else if (mode === "echo") {
  const rx = Channel.open(a);
  const tx = Channel.open(b);
  const buf = new Uint8Array(1 << 16);
  ready();
  for (;;) {
    const n = rx.receiveIntoSync(buf);
    if (n === null) break;
    tx.sendSync(buf.subarray(0, n));
  }
  rx.close();
  tx.close();
} else if (mode === "ipc") {
  const p = (globalThis as unknown as {
    process: { on(e: string, f: (m: unknown) => void): void; send(m: unknown): void };
  }).process;
  p.on("message", (m) => {
    if (m === "stop") (globalThis as unknown as { process: { exit(c: number): void } }).process.exit(0);
    p.send(m);
  });
  p.send("ready");
} else {
  throw new Error(`Cannot run the channel bench peer: unknown mode ${mode}`);
}
