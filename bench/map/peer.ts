/**
 * One of the four processes of `bench/map_bench.ts`. Usage:
 *
 *   peer.ts <shm|redis|sqlite> <go segment> <ms> <seed> <map name | redis port | sqlite path> <keys>
 *
 * With `load` as the go segment, it fills every key and exits instead (Redis and SQLite).
 *
 * Runs the mix for 300 ms to warm up, prints `ready`, waits until the Int32 at byte 0 of the go
 * segment is 1, then runs 90% gets and 10% sets of 64-byte values on uniformly random keys for `ms`
 * milliseconds, and prints one JSON line: operations done, the milliseconds spent inside the
 * store's calls (`ms`; the keys of each batch are picked before its clock starts) and in all
 * (`wallMs`), and the median get time in µs (over batches of 64 gets).
 * `redis` uses Bun's built-in client under Bun, and ioredis (npm, pinned) under Deno.
 *
 * @module
 */

import process from "node:process";
import { SharedMap } from "../../shared_map.ts";
import { SharedMemory } from "../../shared_memory.ts";

const [kind, goName, msArg, seedArg, target, keysArg] = process.argv.slice(2);
const duration = Number(msArg);
const keys = Number(keysArg);
let seed = Number(seedArg) * 0x9e3779b1 || 1;
function random(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const names = Array.from({ length: keys }, (_, i) => `key:${i}`);
const value = new Uint8Array(64).fill(Number(seedArg) & 0xff);
const BATCH = 64;
/** Sets per batch: 7 after 64 gets make the mix 90/10. */
const SETS = 7;
/** How long each peer runs the mix before it says `ready`, the same for every contender. */
const WARM_UP_MS = 300;
/** The npm Redis client of the Deno runs (a variable, so that `deno check` does not fetch it). */
const IOREDIS = "npm:ioredis@5.9.2";

interface Store {
  get(key: string): unknown;
  set(key: string, value: Uint8Array): unknown;
  close(): void;
}

async function open(): Promise<Store> {
  if (kind === "shm") {
    const map = SharedMap.open(target!);
    return { get: (k) => map.get(k), set: (k, v) => map.set(k, v), close: () => map.close() };
  }
  if (kind === "redis" && "Bun" in globalThis) {
    const { RedisClient } = await import("bun" as string) as {
      RedisClient: new (url: string) => {
        get(k: string): Promise<string | null>;
        set(k: string, v: Uint8Array): Promise<unknown>;
        close(): void;
      };
    };
    const client = new RedisClient(`redis://127.0.0.1:${target}`);
    return { get: (k) => client.get(k), set: (k, v) => client.set(k, v), close: () => client.close() };
  }
  if (kind === "redis") {
    // Deno: ioredis from npm, pinned (the bench runs this peer without the project's package.json).
    const { default: Redis } = await import(IOREDIS) as {
      default: new (options: { host: string; port: number }) => {
        get(k: string): Promise<string | null>;
        set(k: string, v: Uint8Array): Promise<unknown>;
        disconnect(): void;
      };
    };
    const { Buffer } = await import("node:buffer");
    const client = new Redis({ host: "127.0.0.1", port: Number(target) });
    const buffers = new Map<Uint8Array, Uint8Array>();
    const asBuffer = (v: Uint8Array) => {
      let b = buffers.get(v);
      if (!b) buffers.set(v, b = Buffer.from(v));
      return b;
    };
    return {
      get: (k) => client.get(k),
      set: (k, v) => client.set(k, asBuffer(v)),
      close: () => client.disconnect(),
    };
  }
  const bun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
  type Stmt = { get(...a: unknown[]): unknown; run(...a: unknown[]): unknown };
  let db: { prepare(sql: string): Stmt; exec(sql: string): void; close(): void };
  if (bun) {
    const { Database } = await import("bun:sqlite" as string);
    db = new Database(target);
  } else {
    const { DatabaseSync } = await import("node:sqlite");
    db = new DatabaseSync(target!) as unknown as typeof db;
  }
  db.exec("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
  db.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID");
  const get = db.prepare("SELECT v FROM kv WHERE k = ?");
  const set = db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
  return { get: (k) => get.get(k), set: (k, v) => set.run(k, v), close: () => db.close() };
}

const store = await open();
if (goName === "load") {
  // Fill every key (Redis: pipelined), then exit.
  const pending: unknown[] = [];
  for (const k of names) {
    pending.push(store.set(k, value));
    if (pending.length === 1_000) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  store.close();
  console.log("loaded");
  process.exit(0);
}
const go = SharedMemory.open(goName!);
const flag = go.view(Int32Array, 0, 1);
const async = kind === "redis";
const batch: string[] = new Array(BATCH).fill("");
const setBatch: string[] = new Array(SETS).fill("");
let touched = 0;
/** Milliseconds spent inside the store's calls (the clock runs around each batch of calls). */
let busy = 0;

/**
 * The keys of a batch are picked before its clock starts, as a server has its key in hand (a string
 * it has just built, in the cache): what is timed is the store, not a random pick among 100,000
 * strings (two cache misses, as long as a SharedMap get, and nothing next to a Redis round trip).
 */
function pick(): void {
  for (let i = 0; i < BATCH; i++) touched += (batch[i] = names[random(keys)]!).length;
  for (let i = 0; i < SETS; i++) touched += (setBatch[i] = names[random(keys)]!).length;
}

/** One batch of a synchronous store: 64 gets, timed together (µs per get), then 7 sets (90/10). */
function runSync(): number {
  pick();
  const t0 = performance.now();
  for (let i = 0; i < BATCH; i++) store.get(batch[i]!);
  const t1 = performance.now();
  for (let i = 0; i < SETS; i++) store.set(setBatch[i]!, value);
  busy += performance.now() - t0;
  return (t1 - t0) * 1000 / BATCH;
}

/** The same batch through a client that answers with promises, each awaited (no pipelining). */
async function runAsync(): Promise<number> {
  pick();
  const t0 = performance.now();
  for (let i = 0; i < BATCH; i++) await store.get(batch[i]!);
  const t1 = performance.now();
  for (let i = 0; i < SETS; i++) await store.set(setBatch[i]!, value);
  busy += performance.now() - t0;
  return (t1 - t0) * 1000 / BATCH;
}

// Warm up (JIT, connections, caches) with the same mix for WARM_UP_MS before the clock starts.
const warmEnd = performance.now() + WARM_UP_MS;
while (performance.now() < warmEnd) async ? await runAsync() : runSync();
console.log("ready");
while (Atomics.load(flag, 0) === 0) await new Promise((r) => setTimeout(r, 1));
const batches: number[] = [];
let ops = 0;
busy = 0;
const start = performance.now();
const end = start + duration;
while (performance.now() < end) {
  batches.push(async ? await runAsync() : runSync());
  ops += BATCH + SETS;
}
const wallMs = performance.now() - start;
batches.sort((a, b) => a - b);
console.log(JSON.stringify({
  ops,
  ms: busy,
  wallMs,
  getP50: batches[batches.length >> 1] ?? 0,
  touched: touched > 0,
}));
store.close();
go.close();
