/**
 * What this module does when the process ends: scopes release what they hold (`scope.ts`), then the
 * leak report prints (`leak_report.ts`). It runs at a normal exit, on an uncaught error, and on
 * SIGINT, SIGTERM and SIGHUP (SIGINT and SIGBREAK on Windows) while some task wants signals; after
 * a signal the process ends as the signal would have ended it, unless a task or the program's own
 * listener keeps it running. The runtime's hooks are in `_host.ts`.
 *
 * @module
 */

import { os } from "./ffi/runtime.ts";
import {
  addExitListener,
  addSignalListener,
  addUncaughtErrorListener,
  programSignalListeners,
  raiseSignal,
  removeSignalListener,
  type SignalName,
} from "./_host.ts";

/** One thing to do when the process ends. */
export interface ExitTask {
  /** Does it; may run more than once (a signal, then the exit event): must be idempotent. */
  run(): void;
  /** Whether the signals should be listened for now, for this task's sake. */
  wantsSignals(): boolean;
  /** Whether, after a signal, the process must keep running (its owner handles the signal). */
  keepsRunningOnSignal(): boolean;
}

const SIGNALS: readonly SignalName[] = os === "windows"
  ? ["SIGINT", "SIGBREAK"]
  : ["SIGINT", "SIGTERM", "SIGHUP"];

const tasks: { task: ExitTask; order: number }[] = [];
let exitHooked = false;
const signalHandlers = new Map<SignalName, () => void>();

/** Adds a task; tasks run by ascending `order` (scopes 0, then the leak report 1). */
export function addExitTask(task: ExitTask, order: number): void {
  tasks.push({ task, order });
  tasks.sort((a, b) => a.order - b.order);
}

/**
 * Installs the exit listeners (once: they cost nothing and never keep the process alive), and the
 * signal listeners while some task wants them (they change what a signal does). Call it whenever a
 * task's `wantsSignals()` may have changed.
 */
export function updateExitHooks(): void {
  if (!exitHooked) {
    exitHooked = true;
    addExitListener(runAll);
    addUncaughtErrorListener(runAll);
  }
  const wanted = tasks.some((t) => t.task.wantsSignals());
  if (wanted && signalHandlers.size === 0) {
    for (const signal of SIGNALS) {
      const handler = () => onSignal(signal);
      if (addSignalListener(signal, handler)) signalHandlers.set(signal, handler);
    }
  } else if (!wanted && signalHandlers.size > 0) {
    unhookSignals();
  }
}

function unhookSignals(): void {
  for (const [signal, handler] of signalHandlers) removeSignalListener(signal, handler);
  signalHandlers.clear();
}

function runAll(): void {
  for (const { task } of tasks) task.run();
}

function onSignal(signal: SignalName): void {
  const stay = tasks.some((t) => t.task.keepsRunningOnSignal()) || programSignalListeners(signal) > 0;
  runAll();
  if (stay) return;
  unhookSignals();
  raiseSignal(signal);
}
