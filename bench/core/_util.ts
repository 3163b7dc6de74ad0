/**
 * Small helpers of `bench/core_bench.ts`: statistics, child processes (a peer of the same runtime,
 * the Python reference), names, and giving memory back between cases.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import type { RuntimeName } from "../../ffi/runtime.ts";

/** This folder, as a path. */
export const CORE_DIR: string = fileURLToPath(new URL(".", import.meta.url)).replace(/\/$/, "");

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("Cannot take the median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  // Both indexes are in range: there is at least one value, and an even count has at least two.
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A name prefix no other process uses: `shmbench_<pid>_<random>`. */
export function uniquePrefix(): string {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16).padStart(8, "0");
  return `shmbench_${pid()}_${rand}`;
}

function pid(): number {
  const g = globalThis as { Deno?: { pid: number }; process?: { pid: number } };
  return g.process?.pid ?? g.Deno!.pid;
}

/** Runs the garbage collector when the runtime exposes it (Bun; Deno and Node with `--expose-gc`). */
export function collectGarbage(): void {
  const g = globalThis as { Bun?: { gc(force: boolean): void }; gc?: () => void };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
}

/** The command line that runs a TypeScript file under the current runtime. */
export function sameRuntime(runtime: RuntimeName, script: string, args: readonly string[]): string[] {
  if (runtime === "deno") return [Deno.execPath(), "run", "-A", "--quiet", script, ...args];
  const exec = (globalThis as unknown as { process: { execPath: string } }).process.execPath;
  if (runtime === "node") {
    return [exec, "--experimental-ffi", "--no-warnings", "--expose-gc", script, ...args];
  }
  return [exec, script, ...args];
}

/** A child process that printed `ready`. */
export interface Peer {
  /** Resolves with the exit code once the child ends. */
  readonly exited: Promise<number | null>;
  /** Everything the child wrote to standard error so far. */
  stderr(): string;
  kill(): void;
}

/**
 * Starts `cmd` and resolves once it prints a line `ready`.
 *
 * @throws {Error} when it exits first or takes more than `timeoutMs`
 */
export function startPeer(cmd: readonly string[], timeoutMs = 30_000): Promise<Peer> {
  const [command, ...args] = cmd;
  if (command === undefined) {
    throw new TypeError("Cannot start the benchmark peer: the command line is empty");
  }
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const exited = new Promise<number | null>((resolve) => {
    child.on("close", (code) => resolve(code));
    child.on("error", () => resolve(null));
  });
  const peer: Peer = {
    exited,
    stderr: () => err,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
  child.stderr!.on("data", (d: Uint8Array) => (err += new TextDecoder().decode(d)));
  return new Promise<Peer>((resolve, reject) => {
    const timer = setTimeout(() => {
      peer.kill();
      reject(new Error(`Cannot start the benchmark peer ${cmd.join(" ")}: not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout!.on("data", (d: Uint8Array) => {
      out += new TextDecoder().decode(d);
      if (/^ready$/m.test(out)) {
        clearTimeout(timer);
        resolve(peer);
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`Cannot start the benchmark peer ${cmd.join(" ")}: it exited (${code}): ${err}`));
    });
  });
}

/**
 * Runs `bench/core/python_ref.py` with `args` and returns the seconds it reports.
 *
 * @throws {Error} when Python (with NumPy) is missing or the script fails
 */
export function runPython(args: readonly string[]): Promise<number[]> {
  const python = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env
    .PYTHON ?? "python3";
  const child = spawn(python, [`${CORE_DIR}/python_ref.py`, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  child.stderr!.on("data", (d: Uint8Array) => (err += new TextDecoder().decode(d)));
  return new Promise<number[]>((resolve, reject) => {
    child.on(
      "error",
      (e) => reject(new Error(`Cannot run ${python} for the reference figures: ${e.message}`)),
    );
    child.on("close", (code) => {
      if (code !== 0) {
        reject(
          new Error(`Cannot measure the Python reference: ${python} exited with ${code}: ${err.trim()}`),
        );
        return;
      }
      try {
        const seconds = (JSON.parse(out.trim().split("\n").pop()!) as { seconds: number[] }).seconds;
        resolve(seconds);
      } catch {
        reject(new Error(`Cannot read the Python reference figures from: ${out}`));
      }
    });
  });
}

interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
}
interface BunConnect {
  connect(options: {
    unix: string;
    socket: { data(socket: BunSocket, data: Uint8Array): void; drain(socket: BunSocket): void };
  }): Promise<BunSocket>;
}

/** How many round trips {@linkcode unixSocketRoundTrip} makes. */
export interface RoundTripPlan {
  /** Round trips before measuring. */
  warmup: number;
  /** Round trips per timed batch. */
  batch: number;
  /** Timed batches; the median batch is the result. */
  batches: number;
}

/** The API each runtime's socket reference goes through, for row names. */
export const SOCKET_API: Record<RuntimeName, string> = {
  deno: "Deno.connect",
  bun: "Bun.connect",
  node: "node:net",
};

/** A connection to an echoing socket peer: `trip()` sends the message and waits for all of it back. */
interface SocketSession {
  trip(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the echoing peer of `bench/core/peer.ts` (`socket PATH`) under `runtime` and connects to
 * it with the runtime's own API (`Deno.connect`, `Bun.connect`, `node:net`). A message is written until all of
 * it is gone (one write may take only part of a large one) and a trip ends when all of it is back.
 */
async function socketSession(runtime: RuntimeName, bytes: number): Promise<SocketSession> {
  const path = `${tmpdir()}/${uniquePrefix()}.sock`;
  const message = new Uint8Array(bytes).fill(5);
  const peer = await startPeer(sameRuntime(runtime, `${CORE_DIR}/peer.ts`, ["socket", path]));
  const finish = async () => {
    await Promise.race([peer.exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
    peer.kill();
    rmSync(path, { force: true });
  };
  try {
    const bun = (globalThis as { Bun?: BunConnect }).Bun;
    if (bun) {
      let pending = 0;
      let unsent = 0; // bytes of the message still to write (the socket took only part)
      let wake: () => void = () => {};
      const writeRest = (socket: BunSocket) => {
        while (unsent > 0) {
          const n = socket.write(message.subarray(message.length - unsent));
          if (n <= 0) return; // full: drain() writes the rest
          unsent -= n;
        }
      };
      const socket = await bun.connect({
        unix: path,
        socket: {
          data(_socket, data) {
            pending -= data.length;
            if (pending <= 0) wake();
          },
          drain: writeRest,
        },
      });
      return {
        trip: () =>
          new Promise<void>((resolve) => {
            wake = resolve;
            pending += message.length;
            unsent = message.length;
            writeRest(socket);
          }),
        close: () => {
          socket.end();
          return finish();
        },
      };
    }
    if (runtime === "node") {
      const socket = createConnection(path);
      await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
      let pending = 0;
      let wake: () => void = () => {};
      socket.on("data", (data: Uint8Array) => {
        pending -= data.length;
        if (pending <= 0) wake();
      });
      return {
        // node:net queues what the socket cannot take yet: one write sends all of it.
        trip: () =>
          new Promise<void>((resolve) => {
            wake = resolve;
            pending += message.length;
            socket.write(message);
          }),
        close: () => {
          socket.end();
          return finish();
        },
      };
    }
    const conn = await Deno.connect({ transport: "unix", path });
    const answer = new Uint8Array(Math.min(Math.max(64, bytes), 1 << 20));
    const read = async () => {
      for (let got = 0; got < message.length;) {
        const n = await conn.read(answer);
        if (n === null) throw new Error("The socket peer hung up");
        got += n;
      }
    };
    return {
      trip: async () => {
        // Read while writing: a message larger than the socket's buffers comes back meanwhile.
        const back = read();
        for (let sent = 0; sent < message.length;) sent += await conn.write(message.subarray(sent));
        await back;
      },
      close: () => {
        conn.close();
        return finish();
      },
    };
  } catch (error) {
    peer.kill();
    rmSync(path, { force: true });
    throw error;
  }
}

/**
 * The reference every cross-process bench compares against: median µs per round trip of `bytes`
 * bytes over a Unix domain socket to an echoing child of the same runtime (`peer.ts socket PATH`),
 * through the runtime's own API (`Deno.connect`, `Bun.connect`, Node's `node:net`).
 */
export async function unixSocketRoundTrip(
  runtime: RuntimeName,
  bytes: number,
  plan: RoundTripPlan,
): Promise<number> {
  const session = await socketSession(runtime, bytes);
  try {
    for (let i = 0; i < plan.warmup; i++) await session.trip();
    const micros: number[] = [];
    for (let b = 0; b < plan.batches; b++) {
      const start = performance.now();
      for (let i = 0; i < plan.batch; i++) await session.trip();
      micros.push(((performance.now() - start) * 1000) / plan.batch);
    }
    return median(micros);
  } finally {
    await session.close();
  }
}

/** µs of each of `trips` single round trips of `bytes` bytes over a Unix socket (as {@linkcode unixSocketRoundTrip}), after `warmup` more. */
export async function unixSocketTrips(
  runtime: RuntimeName,
  bytes: number,
  warmup: number,
  trips: number,
): Promise<number[]> {
  const session = await socketSession(runtime, bytes);
  try {
    for (let i = 0; i < warmup; i++) await session.trip();
    const micros: number[] = [];
    for (let i = 0; i < trips; i++) {
      const start = performance.now();
      await session.trip();
      micros.push((performance.now() - start) * 1000);
    }
    return micros;
  } finally {
    await session.close();
  }
}

/** A bench peer process: ready once it prints "ready"; done when it exits. */
export interface Launched {
  ready: Promise<void>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  kill(): void;
}

/**
 * Starts `peer` (a script) under this runtime with `args`; `ready` resolves when it prints "ready"
 * and rejects if it exits first (`what` names it in that error).
 */
export function launchPeer(
  runtime: RuntimeName,
  peer: string,
  args: string[],
  what: string,
): Launched {
  const cmd = sameRuntime(runtime, peer, args);
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout!.on("data", (d: Uint8Array) => {
    stdout += new TextDecoder().decode(d);
    if (/^ready$/m.test(stdout)) markReady();
  });
  child.stderr!.on("data", (d: Uint8Array) => (stderr += new TextDecoder().decode(d)));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  );
  return {
    ready: Promise.race([
      ready,
      done.then((r) => {
        throw new Error(
          `The ${what} ${args[0]} exited (${r.code}) before it was ready: ${r.stderr}`,
        );
      }),
    ]),
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
