/**
 * Small helpers of `bench/core_bench.ts`: statistics, child processes (a peer of the same runtime,
 * the Python reference), names, and giving memory back between cases.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** This folder, as a path. */
export const CORE_DIR: string = fileURLToPath(new URL(".", import.meta.url)).replace(/\/$/, "");

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("Cannot take the median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A name prefix no other process uses: `shmbench_<pid>_<random>`. */
export function uniquePrefix(): string {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, "0");
  return `shmbench_${pid()}_${rand}`;
}

function pid(): number {
  const g = globalThis as { Deno?: { pid: number }; process?: { pid: number } };
  return g.process?.pid ?? g.Deno!.pid;
}

/** Runs the garbage collector when the runtime exposes it (Bun; Deno with `--v8-flags=--expose-gc`). */
export function collectGarbage(): void {
  const g = globalThis as { Bun?: { gc(force: boolean): void }; gc?: () => void };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
}

/** The command line that runs a TypeScript file under the current runtime. */
export function sameRuntime(runtime: "deno" | "bun", script: string, args: readonly string[]): string[] {
  if (runtime === "deno") return [Deno.execPath(), "run", "-A", "--quiet", script, ...args];
  const exec = (globalThis as unknown as { process: { execPath: string } }).process.execPath;
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
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
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
