/**
 * What the Windows suite's files share: unique names and child processes run by this same bun.exe.
 *
 * @module
 */

import { spawn } from "node:child_process";

const proc = (globalThis as unknown as { process: { pid: number; execPath: string } }).process;
let counter = 0;

/** A name no other test or run uses. */
export function uniqueName(tag: string): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16);
  return `shmtest_${tag}_${proc.pid}_${++counter}_${random}`;
}

/** A child process of the suite, read line by line. */
export interface Peer {
  /** Every line printed so far. */
  readonly lines: string[];
  /** Resolves with the first line (past or future) matching `pattern`; rejects when the child exits first. */
  waitFor(pattern: RegExp, timeout?: number): Promise<string>;
  /** Resolves with the exit code (null when killed) once the child has exited. */
  readonly exited: Promise<number | null>;
  /** Ends the child at once (`TerminateProcess` on Windows). */
  kill(): void;
  /** stderr so far, for failure messages. */
  stderr(): string;
}

/** Runs `script` (a path) under this runtime with `args`. */
export function startPeer(script: string, args: string[]): Peer {
  const runArgs = "Deno" in globalThis && !("Bun" in globalThis) ? ["run", "-A", script] : [script];
  const p = spawn(proc.execPath, [...runArgs, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let partial = "", err = "";
  let listeners: (() => void)[] = [];
  const notify = () => {
    const current = listeners;
    listeners = [];
    for (const l of current) l();
  };
  p.stdout!.on("data", (d) => {
    partial += d;
    const parts = partial.split(/\r?\n/);
    partial = parts.pop()!;
    lines.push(...parts);
    notify();
  });
  p.stderr!.on("data", (d) => err += d);
  let done = false;
  const exited = new Promise<number | null>((resolve) => {
    p.on("close", (code) => {
      if (partial) lines.push(partial);
      done = true;
      notify();
      resolve(code);
    });
  });
  return {
    lines,
    exited,
    stderr: () => err,
    kill: () => void p.kill("SIGKILL"),
    waitFor(pattern, timeout = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(new Error(`no line matching ${pattern} after ${timeout} ms: ${lines.join(" | ")} ${err}`)),
          timeout,
        );
        const check = () => {
          const line = lines.find((l) => pattern.test(l));
          if (line !== undefined) {
            clearTimeout(timer);
            resolve(line);
          } else if (done) {
            clearTimeout(timer);
            reject(new Error(`child exited without a line matching ${pattern}: ${lines.join(" | ")} ${err}`));
          } else listeners.push(check);
        };
        check();
      });
    },
  };
}
