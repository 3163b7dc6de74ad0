/**
 * Everything that differs between the JavaScript runtimes outside FFI: the process id, permissions,
 * environment variables, signals, exit and uncaught-error hooks, ending the process, and how an
 * async wait sleeps without blocking the event loop. A new runtime is added here and in `ffi/`,
 * nowhere else; the rest of the module asks this file.
 *
 * Runtime detection itself is in `ffi/runtime.ts`. Nothing here imports `node:process`: the `process`
 * global of Node and Bun (and Deno's compatibility one) is read when needed. Node and Bun differ only in
 * permissions (Node's permission model) and in the threads of async waits (`node:worker_threads`).
 *
 * @module
 */

import { os, runtime } from "./ffi/runtime.ts";
import { type OffThreadWait, waitNonblocking } from "./ffi/futex.ts";
import { PermissionDeniedError } from "./errors.ts";

/** A signal the host can listen for. `SIGBREAK` is Windows' Ctrl-Break. */
export type SignalName = "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGBREAK";

/** The parts of `Deno` this file uses, typed here so that no type names the `Deno` namespace. */
interface DenoHost {
  pid: number;
  permissions: {
    querySync(
      d: { name: "read" | "write"; path: string } | { name: "env"; variable: string },
    ): { state: string };
  };
  env: { get(name: string): string | undefined };
  addSignalListener(signal: SignalName, handler: () => void): void;
  removeSignalListener(signal: SignalName, handler: () => void): void;
  kill(pid: number, signal: SignalName): void;
  exit(code: number): never;
}

/** The parts of Node's `process` (Bun's global, and Deno's compatibility one) this file uses. */
interface ProcessHost {
  pid: number;
  /** Node's permission model, when on (`--permission`). */
  permission?: { has(scope: string, reference?: string): boolean };
  getBuiltinModule?(id: string): unknown;
  env: Record<string, string | undefined>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  listenerCount(event: string): number;
  kill(pid: number, signal: string): void;
  exit(code: number): never;
}

const g = globalThis as unknown as {
  Deno?: DenoHost;
  process?: ProcessHost;
  /** The window-like global events Deno fires (`unload`, `error`, `unhandledrejection`). */
  addEventListener(type: string, listener: (event: Event) => void): void;
};
const deno: DenoHost | undefined = runtime === "deno" ? g.Deno : undefined;

/** Node's `process`; under Deno only for what Deno has no API of its own for (listener counts). */
function proc(): ProcessHost | undefined {
  return g.process;
}

// ---- Process ---------------------------------------------------------------------------------------

/** This process's id. */
export function processId(): number {
  return deno ? deno.pid : proc()!.pid;
}

/** Ends the process now with exit code `code` (exit listeners run first, as for a normal end). */
export function exitProcess(code: number): never {
  if (deno) deno.exit(code);
  return proc()!.exit(code);
}

// ---- Permissions and environment -------------------------------------------------------------------

/**
 * Under Deno, refuses to touch `path` unless this process holds `--allow-read` (and, for `write`,
 * `--allow-write`) for it; under Node with its permission model on (`--permission`), unless it holds
 * `--allow-fs-read` (`--allow-fs-write`) for it. FFI calls bypass the runtime's own checks, so this
 * module checks for them. Does nothing under Bun, which has no permissions, nor under Node without
 * `--permission`.
 *
 * @throws {PermissionDeniedError} with code `EACCES` and syscall `Deno.permissions` or `process.permission`
 */
export function checkPermission(kind: "read" | "write", path: string, action: string): void {
  if (!deno) {
    const permission = runtime === "node" ? proc()?.permission : undefined;
    if (!permission || permission.has(`fs.${kind}`, path)) return;
    throw new PermissionDeniedError(
      `Cannot ${action}: Node's permission model gives no ${kind} access to it (run with ` +
        `--allow-fs-${kind}=${path}); FFI bypasses Node's permission checks, so shm checks them itself`,
      { code: "EACCES", errno: 13, syscall: "process.permission", segment: path },
    );
  }
  const state = deno.permissions.querySync({ name: kind, path }).state;
  if (state === "granted") return;
  throw new PermissionDeniedError(
    `Cannot ${action}: Deno has no ${kind} permission for it (run with --allow-${kind}, or ` +
      `--allow-${kind}=${path}); FFI bypasses Deno's permission checks, so shm checks them itself`,
    { code: "EACCES", errno: 13, syscall: "Deno.permissions", segment: path },
  );
}

/**
 * The environment variable `name`, or undefined when it is unset or may not be read: under Deno
 * without `--allow-env` for it, nothing is read and nobody is prompted.
 */
export function readEnv(name: string): string | undefined {
  try {
    if (deno) {
      if (deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") return undefined;
      return deno.env.get(name);
    }
    return proc()?.env[name];
  } catch {
    return undefined;
  }
}

// ---- Signals, exit and uncaught errors -------------------------------------------------------------

/** Listeners this file added through `process.on` (Bun, Node), so they are not counted as the program's. */
const ownProcessListeners = new Map<SignalName, number>();

/**
 * Calls `handler` when the process receives `signal`. While a listener is installed the signal no
 * longer ends the process by itself. Returns false when this platform cannot listen for it.
 */
export function addSignalListener(signal: SignalName, handler: () => void): boolean {
  try {
    if (deno) deno.addSignalListener(signal, handler);
    else {
      proc()!.on(signal, handler);
      ownProcessListeners.set(signal, (ownProcessListeners.get(signal) ?? 0) + 1);
    }
    return true;
  } catch {
    return false;
  }
}

/** Removes a listener added with {@linkcode addSignalListener}. */
export function removeSignalListener(signal: SignalName, handler: () => void): void {
  if (deno) deno.removeSignalListener(signal, handler);
  else {
    proc()!.off(signal, handler);
    ownProcessListeners.set(signal, Math.max(0, (ownProcessListeners.get(signal) ?? 0) - 1));
  }
}

/**
 * How many listeners for `signal` the program itself added with `process.on` (those added through
 * this file are not counted). Listeners added with `Deno.addSignalListener` cannot be seen.
 */
export function programSignalListeners(signal: SignalName): number {
  const total = proc()?.listenerCount(signal) ?? 0;
  return deno ? total : total - (ownProcessListeners.get(signal) ?? 0);
}

/** Signal numbers, for the exit code of a process that could not re-raise its signal. */
const SIGNAL_NUMBER: Record<SignalName, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15, SIGBREAK: 21 };

/**
 * Ends the process as `signal` would have: the signal is sent again to this process (the caller
 * removed its listeners first) and arrives shortly after this returns. Where that cannot be done
 * (Windows, or the send failed), exits now with `128 + signal`, as a shell reports a signal.
 */
export function raiseSignal(signal: SignalName): void {
  try {
    if (os === "windows") throw new Error("no re-raise on Windows");
    if (deno) deno.kill(deno.pid, signal);
    else proc()!.kill(proc()!.pid, signal);
  } catch {
    exitProcess(128 + SIGNAL_NUMBER[signal]);
  }
}

/**
 * Calls `listener` once the process ends normally: the event loop ran dry or the program called
 * exit (Deno's `unload` event; the `exit` event of Bun and Node, which an uncaught error also fires). Exit
 * listeners never keep the process alive.
 */
export function addExitListener(listener: () => void): void {
  if (deno) g.addEventListener("unload", listener);
  else proc()!.on("exit", listener);
}

/**
 * Calls `listener` when an uncaught error or unhandled rejection is about to end the process, and
 * no listener registered before has handled it (`preventDefault`). Under Bun and Node the exit
 * listener already runs then, so this adds nothing there.
 */
export function addUncaughtErrorListener(listener: () => void): void {
  if (!deno) return;
  const onEvent = (event: Event) => {
    if (!event.defaultPrevented) listener();
  };
  g.addEventListener("error", onEvent);
  g.addEventListener("unhandledrejection", onEvent);
}

// ---- Async waits -----------------------------------------------------------------------------------

/**
 * Makes the blocking wait `w` on another thread and resolves with the call's raw result (see
 * `ffi/futex.ts`), leaving the event loop running. Deno: a `nonblocking` FFI call, run on a thread
 * of Deno's pool. Bun and Node (no nonblocking calls): a reused worker thread (a web `Worker` under
 * Bun, `node:worker_threads` under Node) makes the blocking call; an idle worker does not keep the
 * process alive.
 */
export function sleepOffThread(w: OffThreadWait): Promise<number> {
  return deno ? waitNonblocking(w) : inWorker(w);
}

/** A thread that makes blocking waits: what this file uses of a web `Worker` or a Node one. */
interface WaitThread {
  postMessage(message: OffThreadWait): void;
  terminate(): unknown;
  ref?(): void;
  unref?(): void;
}

interface WaitWorker {
  worker: WaitThread;
  resolve?: (r: number) => void;
  reject?: (e: unknown) => void;
}

/** What this file uses of the web `Worker` (Bun's), typed here so that Node's types suffice. */
type WebWorker = new (url: string, options: { type: "module" }) => WaitThread & {
  onmessage: ((event: { data: number }) => void) | null;
  onerror: ((event: { message: string }) => void) | null;
};

/** What this file uses of `node:worker_threads`. */
interface NodeWorkerThreads {
  Worker: new (url: URL) => WaitThread & {
    on(event: "message", listener: (data: number) => void): void;
    on(event: "error", listener: (error: Error) => void): void;
  };
}

// The worker's file has this file's extension: `.ts` in the checkout, `.js` in the npm build.
const workerUrl = new URL(
  `./_sync/futex_worker.${import.meta.url.endsWith(".js") ? "js" : "ts"}`,
  import.meta.url,
);

/** Starts a wait thread that reports each result, or its failure, to the two callbacks. */
function startWaitThread(onResult: (r: number) => void, onFailure: (message: string) => void): WaitThread {
  if (runtime === "node") {
    const threads = proc()!.getBuiltinModule!("node:worker_threads") as NodeWorkerThreads;
    let worker;
    try {
      worker = new threads.Worker(workerUrl);
    } catch (error) {
      if ((error as { code?: unknown }).code === "ERR_ACCESS_DENIED") {
        throw new Error(
          "Cannot wait off the event loop's thread: Node's permission model (--permission) is on and async " +
            "waits run on a worker thread: run Node with --allow-worker too (or use the *Sync forms)",
          { cause: error },
        );
      }
      throw error;
    }
    worker.on("message", onResult);
    worker.on("error", (error) => onFailure(error.message));
    return worker;
  }
  const worker = new (globalThis as unknown as { Worker: WebWorker }).Worker(workerUrl.href, {
    type: "module",
  });
  worker.onmessage = (event) => onResult(event.data);
  worker.onerror = (event) => onFailure(event.message);
  return worker;
}

const idle: WaitWorker[] = [];
// Enough for the waiter threads (`_sync/waiters.ts`), which hand their worker back between rounds.
const MAX_IDLE = 10;

function spawnWaitWorker(): WaitWorker {
  const w = {} as WaitWorker;
  w.worker = startWaitThread((result) => {
    const resolve = w.resolve;
    w.resolve = w.reject = undefined;
    w.worker.unref?.();
    if (idle.length < MAX_IDLE) idle.push(w);
    else w.worker.terminate();
    resolve?.(result);
  }, (message) => {
    const reject = w.reject;
    w.resolve = w.reject = undefined;
    const i = idle.indexOf(w);
    if (i >= 0) idle.splice(i, 1);
    w.worker.terminate();
    reject?.(new Error(`Cannot wait on the word: the wait worker failed: ${message}`));
  });
  return w;
}

/** Has an idle (or new) worker make the blocking call; resolves with its raw result. */
function inWorker(request: OffThreadWait): Promise<number> {
  let w: WaitWorker;
  try {
    w = idle.pop() ?? spawnWaitWorker();
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise<number>((resolve, reject) => {
    w.resolve = resolve;
    w.reject = reject;
    // Keep the process alive while someone awaits this wait; unref again once it is answered.
    w.worker.ref?.();
    w.worker.postMessage(request);
  });
}
