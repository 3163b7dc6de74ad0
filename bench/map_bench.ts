/**
 * SharedMap against what a multi-process server reaches for to share state, each measured in the
 * same run: Redis 7 on a loopback port (Debian's `redis-server`, started here and stopped after;
 * clients: Bun's built-in `RedisClient` under Bun, ioredis 5.9.2 from npm under Deno, fetched into
 * Deno's cache on first use, or Bun's client when it cannot be fetched) and SQLite in WAL mode (`bun:sqlite` under Bun, `node:sqlite` under
 * Deno). Four processes, 100,000 keys, 64-byte values, 90% gets and 10% sets on uniformly random
 * keys, after 300 ms of warm-up on the same mix: operations per second of the four together (of the
 * time spent inside the store's calls: each batch's keys are picked before its clock starts), and
 * the median get (µs, over batches of 64). The throughput over the whole run is printed beside it.
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import type { BenchContext, BenchRow, BenchSuite } from "./_bench.ts";
import { sameRuntime, uniquePrefix } from "./core/_util.ts";
import { SharedMap } from "../shared_map.ts";
import { SharedMemory } from "../shared_memory.ts";

const PEER = fileURLToPath(new URL("./map/peer.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const KEYS = 100_000;
const PROCESSES = 4;

interface Figures {
  /** Operations per second of time spent inside the store's calls, summed over the processes. */
  opsPerSecond: number;
  /** The same over the whole run, key picking included (printed, for comparison). */
  wallOpsPerSecond: number;
  getP50: number;
}

/**
 * The peers' environment. DENO_NO_PACKAGE_JSON: the Deno Redis peers load ioredis from npm into
 * Deno's cache, and the project's package.json (which pins only the runtimes) must not get in the
 * way; the other peers import nothing from npm.
 */
const peerEnv = {
  ...(globalThis as unknown as { process: { env: Record<string, string> } }).process.env,
  DENO_NO_PACKAGE_JSON: "1",
};

/** A Deno peer that may import from npm: no config, no lock file, no node_modules. */
function denoNpmCommand(args: string[]): string[] {
  return [
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    "--no-config",
    "--no-lock",
    "--node-modules-dir=none",
    PEER,
    ...args,
  ];
}

function bunCommand(ctx: BenchContext, args: string[]): string[] {
  if (ctx.runtime === "bun") return sameRuntime("bun", PEER, args);
  const local = `${ROOT}/node_modules/.bin/bun`;
  return [existsSync(local) ? local : "bun", PEER, ...args];
}

/** Runs a command to the end; throws unless it exits 0. */
function runToEnd(cmd: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ["ignore", "ignore", "pipe"], env: peerEnv });
    let err = "";
    child.stderr!.on("data", (d: Uint8Array) => (err += new TextDecoder().decode(d)));
    child.on("error", reject);
    child.on(
      "close",
      (code) => code === 0 ? resolve() : reject(new Error(`${cmd.join(" ")} failed (${code}): ${err}`)),
    );
  });
}

interface Launched {
  /** Resolves with everything the peer printed once it exits 0. */
  readonly done: Promise<string>;
  kill(): void;
}

/** Starts a peer and resolves once it prints `ready`. */
function launch(cmd: string[]): Promise<Launched> {
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: peerEnv });
  let out = "";
  let err = "";
  const done = new Promise<string>((resolve, reject) => {
    child.on("error", reject);
    child.on(
      "close",
      (code, signal) =>
        code === 0
          ? resolve(out)
          : reject(new Error(`The map bench peer ${cmd.join(" ")} failed (${code ?? signal}): ${err}`)),
    );
  });
  done.catch(() => {});
  const launched: Launched = {
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
  child.stderr!.on("data", (d: Uint8Array) => (err += new TextDecoder().decode(d)));
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d: Uint8Array) => {
      out += new TextDecoder().decode(d);
      if (/^ready$/m.test(out)) resolve(launched);
    });
    done.then(() => reject(new Error(`The map bench peer exited before it was ready: ${err}`)), reject);
  });
}

/** Starts four peers, lets them run together for `ms`, and sums what they did. */
async function race(commands: string[][], go: SharedMemory, ms: number): Promise<Figures> {
  const flag = go.view(Int32Array, 0, 1);
  Atomics.store(flag, 0, 0);
  const peers: Launched[] = [];
  try {
    for (const cmd of commands) peers.push(await launch(cmd));
    Atomics.store(flag, 0, 1);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outputs = await Promise.race([
      Promise.all(peers.map((p) => p.done)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("The map bench peers ran too long")), ms + 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    let opsPerSecond = 0;
    let wallOpsPerSecond = 0;
    const p50s: number[] = [];
    for (const out of outputs) {
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (!line) throw new Error(`A map bench peer printed no result: ${out}`);
      const r = JSON.parse(line) as { ops: number; ms: number; wallMs: number; getP50: number };
      opsPerSecond += r.ops / r.ms * 1000;
      wallOpsPerSecond += r.ops / r.wallMs * 1000;
      p50s.push(r.getP50);
    }
    p50s.sort((a, b) => a - b);
    return { opsPerSecond, wallOpsPerSecond, getP50: (p50s[1]! + p50s[2]!) / 2 };
  } finally {
    for (const p of peers) p.kill();
  }
}

/** Prints both throughputs of a contender: the row's (inside the calls) and over the whole run. */
function note(name: string, f: Figures): void {
  const k = (n: number) => `${Math.round(n / 1000)} k`;
  console.log(
    `${name}: ${k(f.opsPerSecond)} ops/s inside the calls, ${k(f.wallOpsPerSecond)} ops/s over the whole run`,
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Starts redis-server on a free loopback port, with no persistence, in `dir`. */
async function startRedis(dir: string): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn("redis-server", [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--daemonize",
    "no",
    "--protected-mode",
    "yes",
    "--logfile",
    "",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
  let out = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 20_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.stdout!.on("data", (d: Uint8Array) => {
      out += new TextDecoder().decode(d);
      if (/Ready to accept connections/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    closed.then(() => reject(new Error(`redis-server exited: ${out}`)));
  });
  return {
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await closed;
    },
  };
}

const suite: BenchSuite = async (ctx: BenchContext): Promise<BenchRow[]> => {
  const ms = ctx.quick ? 300 : 3_000;
  const dir = mkdtempSync(`${tmpdir()}/shm-map-bench-`);
  const go = SharedMemory.create({ name: `${uniquePrefix()}_go`, size: 64 });
  const rows: BenchRow[] = [];
  const what = `${PROCESSES} processes, 100,000 keys, 64 B values, 90% get / 10% set`;
  try {
    // SharedMap.
    const map = SharedMap.create({
      name: `${uniquePrefix()}_map`,
      capacity: KEYS,
      maxKeyBytes: 16,
      maxValueBytes: 64,
    });
    let ours: Figures;
    try {
      const value = new Uint8Array(64).fill(7);
      for (let i = 0; i < KEYS; i++) map.set(`key:${i}`, value);
      ours = await race(
        Array.from(
          { length: PROCESSES },
          (_, i) =>
            sameRuntime(ctx.runtime, PEER, [
              "shm",
              go.name,
              String(ms),
              String(i + 1),
              map.name,
              String(KEYS),
            ]),
        ),
        go,
        ms,
      );
    } finally {
      map.close();
      map.unlink();
    }
    note("SharedMap", ours);

    // SQLite in WAL mode, opened by the same runtime.
    const db = `${dir}/kv.sqlite`;
    await runToEnd(sameRuntime(ctx.runtime, PEER, ["sqlite", "load", "0", "1", db, String(KEYS)]));
    const sqlite = await race(
      Array.from(
        { length: PROCESSES },
        (_, i) =>
          sameRuntime(ctx.runtime, PEER, ["sqlite", go.name, String(ms), String(i + 1), db, String(KEYS)]),
      ),
      go,
      ms,
    );
    const sqliteName = ctx.runtime === "bun" ? "SQLite WAL (bun:sqlite)" : "SQLite WAL (node:sqlite)";
    note(sqliteName, sqlite);
    rows.push({
      name: `SharedMap: ${what}`,
      unit: "ops/s",
      ours: ours.opsPerSecond,
      reference: sqlite.opsPerSecond,
      referenceName: sqliteName,
      higherIsBetter: true,
      target: 10,
    });

    // Redis 7 on loopback: under Bun through its built-in client; under Deno through ioredis, or
    // through Bun's client when ioredis cannot be loaded (no network to fetch it).
    const hasRedis = spawnSync("redis-server", ["--version"]).status === 0;
    if (hasRedis) {
      const redis = await startRedis(dir);
      try {
        const port = String(redis.port);
        const load = ["redis", "load", "0", "1", port, String(KEYS)];
        let client = ctx.runtime === "bun" ? "Bun's RedisClient" : "ioredis 5.9.2 under Deno";
        let command = (args: string[]) =>
          ctx.runtime === "bun" ? bunCommand(ctx, args) : denoNpmCommand(args);
        try {
          await runToEnd(command(load));
        } catch (error) {
          if (ctx.runtime === "bun") throw error;
          console.error(`ioredis could not be loaded under Deno, so Bun's client is used: ${error}`);
          client = "Bun's RedisClient; ioredis could not be loaded";
          command = (args: string[]) => bunCommand(ctx, args);
          await runToEnd(command(load));
        }
        const figures = await race(
          Array.from(
            { length: PROCESSES },
            (_, i) => command(["redis", go.name, String(ms), String(i + 1), port, String(KEYS)]),
          ),
          go,
          ms,
        );
        note(`Redis (${client})`, figures);
        rows.unshift({
          name: `SharedMap: ${what}`,
          unit: "ops/s",
          ours: ours.opsPerSecond,
          reference: figures.opsPerSecond,
          referenceName: `Redis 7 on loopback (${client})`,
          higherIsBetter: true,
          target: 50,
        });
        rows.push({
          name: `SharedMap get p50 (${what})`,
          unit: "µs",
          ours: ours.getP50,
          reference: figures.getP50,
          referenceName: `Redis 7 GET p50 on loopback (${client})`,
          higherIsBetter: false,
        });
      } finally {
        await redis.stop();
      }
    } else {
      console.error("redis-server is not installed: no Redis rows (apt-get install redis-server)");
    }
    rows.push({
      name: `SharedMap get p50 (${what}), against the issue's bound`,
      unit: "µs",
      ours: ours.getP50,
      reference: 1,
      referenceName: "1 µs (the issue's target)",
      higherIsBetter: false,
      target: 1,
    });
    return rows;
  } finally {
    go.close();
    go.unlink();
    rmSync(dir, { recursive: true, force: true });
  }
};

export default suite;
