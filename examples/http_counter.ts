/**
 * One HTTP service, several Bun processes, one segment: a shared hit counter and a shared rate
 * limiter with no Redis, no locks and no messages between the processes.
 *
 * The primary process creates the segment and starts N worker processes; each worker maps the
 * segment and serves the same port (`Bun.serve({ reusePort: true })`: the kernel spreads
 * connections over them). Every request updates the shared counters with `Atomics` operations, which
 * are atomic across processes, so the totals are exact whichever worker answers.
 *
 * Run (Bun; Linux for reusePort):
 *
 *     bun examples/http_counter.ts --port 8080 --workers 4 --limit 10 --window 60
 *     curl -H 'x-client: alice' http://127.0.0.1:8080/      # 200 for 10 requests a minute, then 429
 *     curl http://127.0.0.1:8080/stats                       # totals, from shared memory
 *
 * Ctrl-C stops the workers and removes the segment. Outside this repository, import from
 * `jsr:@x/shm` instead of `../mod.ts`.
 *
 * Segment layout (int32 slots): 0 total requests, 1 rejected (429), 2 workers ready, 3 epoch
 * (seconds, the start of window 0), 16…16+MAX_WORKERS requests per worker, then the rate-limit
 * table: BUCKETS pairs of [client tag, (window << 16) | count]. Each client hashes to a bucket (with
 * linear probing); a window's count lives with its window number in one int32, so one
 * `compareExchange` moves a client to a new window or counts a request — never both half-way.
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import { type SharedMemory, SharedMemoryScope } from "../mod.ts";

const TOTAL = 0;
const REJECTED = 1;
const READY = 2;
const EPOCH = 3;
const PER_WORKER = 16;
const MAX_WORKERS = 64;
const TABLE = PER_WORKER + MAX_WORKERS;
const BUCKETS = 1024;
const PROBES = 16;
const SIZE = (TABLE + 2 * BUCKETS) * 4;

interface Options {
  port: number;
  workers: number;
  limit: number;
  window: number;
}

function options(args: string[]): Options {
  const o: Options = { port: 8080, workers: 2, limit: 10, window: 60 };
  for (let i = 0; i < args.length; i += 2) {
    const [flag = "", text] = args.slice(i, i + 2);
    const key = flag.replace(/^--/, "") as keyof Options;
    const value = Number(text);
    if (!(key in o) || !Number.isInteger(value) || value < 0) {
      console.error(
        `usage: bun examples/http_counter.ts [--port N] [--workers N] [--limit N] [--window SECONDS]`,
      );
      process.exit(2);
    }
    o[key] = value;
  }
  if (o.workers < 1 || o.workers > MAX_WORKERS) throw new RangeError(`--workers must be 1 to ${MAX_WORKERS}`);
  if (o.limit > 0xffff) throw new RangeError("--limit must be at most 65535");
  if (o.window < 1) throw new RangeError("--window must be at least 1 second");
  return o;
}

/** A stable 31-bit tag for a client id, never 0 (0 marks a free bucket). */
function tag(client: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < client.length; i++) h = Math.imul(h ^ client.charCodeAt(i), 0x01000193);
  return (h >>> 1) | 1;
}

/**
 * Counts one request of `client` in the current window; false when it is over the limit.
 * Lock-free: compareExchange on the client's bucket, retried if another process got there first.
 */
function admit(slots: Int32Array, client: string, limit: number, windowSeconds: number): boolean {
  const t = tag(client);
  const window = Math.floor((Date.now() / 1000 - Atomics.load(slots, EPOCH)) / windowSeconds) & 0x7fff;
  for (let p = 0; p < PROBES; p++) {
    const bucket = TABLE + 2 * ((t + p) % BUCKETS);
    const owner = Atomics.compareExchange(slots, bucket, 0, t); // claim a free bucket
    if (owner !== 0 && owner !== t) continue; // someone else's: probe the next one
    for (;;) {
      const old = Atomics.load(slots, bucket + 1);
      const sameWindow = old >>> 16 === window;
      const count = sameWindow ? old & 0xffff : 0;
      if (count >= limit) return false;
      const next = (window << 16) | (count + 1);
      if (Atomics.compareExchange(slots, bucket + 1, old, next) === old) return true;
    }
  }
  return false; // table full around this client's slot: refuse rather than count it nowhere
}

function stats(slots: Int32Array, workers: number): Record<string, unknown> {
  const perWorker = Array.from({ length: workers }, (_, i) => Atomics.load(slots, PER_WORKER + i));
  return {
    total: Atomics.load(slots, TOTAL),
    rejected: Atomics.load(slots, REJECTED),
    perWorker,
    workers,
  };
}

async function worker(name: string, index: number, o: Options): Promise<void> {
  // This process handles SIGINT/SIGTERM itself (below), so the scope only acts at the end of this
  // function or on a crash; attached, it closes the segment and never removes it.
  using scope = new SharedMemoryScope({ signals: false });
  const shm: SharedMemory = scope.open(name);
  const slots = shm.view(Int32Array);
  const Bun = (globalThis as unknown as { Bun: BunLike }).Bun;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: o.port,
    reusePort: true,
    fetch(request, srv) {
      const url = new URL(request.url);
      if (url.pathname === "/stats") return Response.json(stats(slots, o.workers));
      Atomics.add(slots, TOTAL, 1);
      Atomics.add(slots, PER_WORKER + index, 1);
      const client = request.headers.get("x-client") ?? srv.requestIP(request)?.address ?? "unknown";
      if (!admit(slots, client, o.limit, o.window)) {
        Atomics.add(slots, REJECTED, 1);
        return new Response("rate limited\n", { status: 429, headers: { "retry-after": String(o.window) } });
      }
      return new Response(`hello ${client} from worker ${index} (pid ${process.pid})\n`);
    },
  });
  Atomics.add(slots, READY, 1);
  // Leave with the primary, even if it was killed with SIGKILL.
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid !== parent) {
      server.stop(true);
      clearInterval(watch);
    }
  }, 500);
  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.on(signal, () => {
        server.stop(true);
        clearInterval(watch);
        resolve();
      });
    }
  });
}

async function primary(o: Options): Promise<void> {
  // Removes the segment when this function ends (after Ctrl-C, below) or on a crash. Signals are
  // handled here, to stop the workers first, so the scope is told not to act on them itself.
  using scope = new SharedMemoryScope({ signals: false });
  const shm = scope.create({ name: `http_counter_${process.pid}`, size: SIZE });
  const slots = shm.view(Int32Array);
  Atomics.store(slots, EPOCH, Math.floor(Date.now() / 1000));
  const Bun = (globalThis as unknown as { Bun: BunLike }).Bun;
  const args = ["--port", o.port, "--workers", o.workers, "--limit", o.limit, "--window", o.window].map(
    String,
  );
  const children = Array.from(
    { length: o.workers },
    (_, i) =>
      Bun.spawn(
        [process.execPath, fileURLToPath(import.meta.url), "--worker", shm.name, String(i), ...args],
        {
          stdio: ["ignore", "inherit", "inherit"],
        },
      ),
  );
  const stop = async () => {
    for (const child of children) child.kill("SIGTERM");
    // A worker stuck for 5 s is killed outright: the segment is removed either way.
    const force = setTimeout(() => children.forEach((c) => c.kill("SIGKILL")), 5000);
    await Promise.all(children.map((c) => c.exited));
    clearTimeout(force);
  };
  const started = Date.now();
  while (Atomics.load(slots, READY) < o.workers) {
    if (Date.now() - started > 10_000 || children.some((c) => c.exitCode !== null)) {
      console.error("http_counter: the workers did not start (is the port free?)");
      await stop();
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log(
    `listening on http://127.0.0.1:${o.port}/ with ${o.workers} worker processes sharing /dev/shm/${shm.name}` +
      ` (limit ${o.limit} requests per ${o.window} s per client)`,
  );
  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => resolve());
  });
  await stop();
  console.log(`stopped; totals: ${JSON.stringify(stats(slots, o.workers))}`);
}

interface BunLike {
  serve(options: {
    hostname: string;
    port: number;
    reusePort: boolean;
    fetch(request: Request, server: { requestIP(r: Request): { address: string } | null }): Response;
  }): { stop(force: boolean): void };
  spawn(cmd: string[], options: { stdio: ["ignore", "inherit", "inherit"] }): {
    kill(signal: string): void;
    exited: Promise<number>;
    exitCode: number | null;
  };
}

if (!("Bun" in globalThis)) {
  console.error(
    "examples/http_counter.ts runs under Bun (Bun.serve with reusePort): bun examples/http_counter.ts",
  );
  process.exit(2);
}
const argv = process.argv.slice(2);
const [mode, name, index] = argv;
if (mode === "--worker" && name !== undefined) await worker(name, Number(index), options(argv.slice(3)));
else await primary(options(argv));
