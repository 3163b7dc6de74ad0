/**
 * Running other processes from tests: Deno, Bun or Node children on this module's scripts, Python, C
 * programs, and commands as another user or in a private mount namespace.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { runtime } from "./_harness.ts";

/** The repository's root folder. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

function pinned(name: string): string {
  const local = `${ROOT}/node_modules/.bin/${name}`;
  return existsSync(local) ? local : name;
}

/** A runtime the tests start children of. */
export type Runtime = "deno" | "bun" | "node";

/** The Deno, Bun and Node binaries pinned in package.json (falling back to PATH). */
export const RUNTIMES: Record<Runtime, string> = {
  deno: pinned("deno"),
  bun: pinned("bun"),
  node: pinned("node"),
};

/**
 * Node's flags for this module: node:ffi (on by default in 26.10, but 26.1+ needs the flag) and no
 * ExperimentalWarning on standard error.
 */
export const NODE_FLAGS: readonly string[] = ["--experimental-ffi", "--no-warnings"];

/**
 * The other runtime of the pair the tests mix: Deno and Bun pair with each other, Node with Bun. Node
 * meets Deno in the tests that start all three (`ALL`, tests/mixed_runtimes_test.ts), in every pass.
 */
export const OTHER: "deno" | "bun" = runtime === "deno" ? "bun" : runtime === "bun" ? "deno" : "bun";

/** The current runtime and {@linkcode OTHER}, the current one first. */
export const BOTH: readonly Runtime[] = [runtime, OTHER];

/** All three runtimes, the current one first. */
export const ALL: readonly Runtime[] = [
  runtime,
  ...(["deno", "bun", "node"] as const).filter((r) => r !== runtime),
];

/** The command line that runs a TypeScript file under a runtime. */
export function tsCommand(rt: Runtime, script: string, args: readonly string[] = []): string[] {
  const path = script.startsWith("/") ? script : `${ROOT}/${script}`;
  return rt === "deno"
    ? [RUNTIMES.deno, "run", "-A", "--quiet", path, ...args]
    : rt === "node"
    ? [RUNTIMES.node, ...NODE_FLAGS, path, ...args]
    : [RUNTIMES.bun, path, ...args];
}

/** What a finished process left. */
export interface Finished {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode run} and {@linkcode start}. */
export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Fails the run after this many ms (the process is killed). Default 60 s. */
  timeout?: number;
  /** Text written to the child's standard input. */
  input?: string;
}

/** A running child process. */
export interface Child {
  readonly pid: number;
  /** Resolves when the process ends, with everything it printed. */
  readonly done: Promise<Finished>;
  /** Resolves with the first line of standard output that matches. */
  waitFor(pattern: RegExp): Promise<string>;
  /** Writes a line to the child's standard input. */
  send(line: string): void;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts `cmd` and returns at once. */
export function start(cmd: readonly string[], options: RunOptions = {}): Child {
  const [command, ...args] = cmd;
  if (command === undefined) throw new TypeError("Cannot start a child process: the command line is empty");
  // Not node:test's own variables: a Node child would take itself for one of its test files.
  const { NODE_TEST_CONTEXT: _context, NODE_TEST_WORKER_ID: _worker, ...inherited } = process.env;
  const child = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...inherited, NO_COLOR: "1", ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const line = stdout.split("\n").find((l) => w.pattern.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  child.stdout!.on("data", (d: Uint8Array) => {
    stdout += new TextDecoder().decode(d);
    check();
  });
  child.stderr!.on("data", (d: Uint8Array) => (stderr += new TextDecoder().decode(d)));
  const timeout = options.timeout ?? 60_000;
  const done = new Promise<Finished>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd.join(" ")} ran past ${timeout} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeout);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      for (const w of waiters) w.resolve(`<exited before printing ${w.pattern}>`);
      resolve({ code, signal, stdout, stderr });
    });
  });
  if (options.input !== undefined) {
    child.stdin!.write(options.input);
    child.stdin!.end();
  }
  return {
    pid: child.pid!,
    done,
    waitFor(pattern) {
      return new Promise((resolve) => {
        waiters.push({ pattern, resolve });
        check();
      });
    },
    send(line) {
      child.stdin!.write(line + "\n");
    },
    kill(signal = "SIGTERM") {
      // Not child.kill(): under Deno its close event then reports the signal even when the child
      // caught it and exited with its own code.
      try {
        process.kill(child.pid!, signal);
      } catch (error) {
        if ((error as { code?: string }).code !== "ESRCH") throw error; // already gone
      }
    },
  };
}

/** Runs `cmd` to the end. */
export function run(cmd: readonly string[], options: RunOptions = {}): Promise<Finished> {
  return start(cmd, options).done;
}

/** Runs `cmd` and fails unless it exits 0; returns its standard output. */
export async function runOk(cmd: readonly string[], options: RunOptions = {}): Promise<string> {
  const r = await run(cmd, options);
  if (r.code !== 0) {
    throw new Error(
      `${cmd.join(" ")} exited with ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
    );
  }
  return r.stdout;
}

/** Whether this process runs as root (needed for tests that switch user or mount). */
export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** Whether a command exists on PATH. */
export function hasCommand(name: string): boolean {
  const path = process.env.PATH ?? "";
  return path.split(":").some((dir) => dir && existsSync(`${dir}/${name}`));
}

/** A unique segment name for one test, so parallel runs never collide. */
export function uniqueName(tag: string): string {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16).padStart(8, "0");
  return `shmtest_${tag}_${process.pid}_${rand}`;
}

/**
 * Runs a TypeScript file as the user `nobody` (needs root) and returns the JSON object it printed
 * last. Deno gets a private, writable DENO_DIR and no config or lock file (nobody can't write here).
 */
export async function asNobody(
  rt: Runtime,
  script: string,
  args: string[],
): Promise<Record<string, unknown>> {
  const home = mkdtempSync(`${tmpdir()}/shm-nobody-`);
  chmodSync(home, 0o777);
  try {
    const cmd = tsCommand(rt, script, args);
    if (rt === "deno") cmd.splice(2, 0, "--no-lock", "--no-config");
    const r = await run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", ...cmd], {
      cwd: home,
      env: { HOME: home, DENO_DIR: `${home}/deno`, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" },
    });
    if (r.code !== 0) throw new Error(`${rt} as nobody: exit ${r.code ?? r.signal}\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split("\n").pop()!);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** Kills a child if it still runs (cleanup after a test, whatever happened). */
export function stop(child: { kill(signal?: NodeJS.Signals): void } | undefined): void {
  try {
    child?.kill("SIGKILL");
  } catch {
    // Already gone.
  }
}
