/**
 * The leak report: at exit, the shared memory segments this process created and never unlinked,
 * with the stack that created each. Off unless {@linkcode enableLeakReport} is called or the
 * environment variable `SHM_LEAK_REPORT` is set (to anything but empty, `0` or `false`). Scopes
 * clean up before the report is made, so what they own is never reported.
 *
 * ```ts
 * import { enableLeakReport, SharedMemory } from "@x/shm";
 *
 * enableLeakReport();
 * const shm = SharedMemory.create({ size: 64 }); // reported at exit unless unlinked
 * shm.close();
 * shm.unlink();
 * ```
 *
 * @module
 */

import type { SharedMemory } from "./shared_memory.ts";
import { describe } from "./_validate.ts";
import { lifecycle } from "./_internal.ts";
import { readEnv } from "./_host.ts";
import { addExitTask, updateExitHooks } from "./_at_exit.ts";

/**
 * Options of {@linkcode enableLeakReport}.
 *
 * @example Report to a log file instead of stderr
 * ```ts
 * import { appendFileSync } from "node:fs";
 * import { enableLeakReport, type LeakReportOptions } from "@x/shm";
 *
 * const options: LeakReportOptions = { write: (text) => appendFileSync("leaks.log", text + "\n") };
 * enableLeakReport(options);
 * ```
 */
export interface LeakReportOptions {
  /** Where the report goes. Default: `console.error`. */
  write?: (text: string) => void;
  /** Print nothing when nothing leaked (by default one line says so). Default `false`. */
  quietWhenClean?: boolean;
}

interface Created {
  readonly name: string;
  readonly size: number;
  readonly stack: string;
  closed: boolean;
  unlinked: boolean;
}

let leakReport: { write: (text: string) => void; quiet: boolean } | undefined;
const createdByName = new Map<string, Created>();
const createdByHandle = new WeakMap<SharedMemory, Created>();
let hooksInstalled = false;

/**
 * Prints, when the process exits, every segment this process created (with `SharedMemory.create`
 * or `openOrCreate`, directly or through a scope) and did not unlink, with the stack that created
 * it. Scopes clean up before the report is made, so what they own is never reported. Setting the
 * environment variable `SHM_LEAK_REPORT=1` has the same effect at load (Deno needs
 * `--allow-env=SHM_LEAK_REPORT` for that). Calling it again replaces the options.
 *
 * Only segments created after this call are tracked.
 *
 * @example
 * ```ts
 * import { enableLeakReport, SharedMemory } from "@x/shm";
 *
 * enableLeakReport();
 * const shm = SharedMemory.create({ size: 64 });
 * // … had this process never unlinked it, stderr would name it (with where it was created) at exit …
 * shm.close();
 * shm.unlink(); // so the report says every segment was unlinked
 * ```
 */
export function enableLeakReport(options?: LeakReportOptions): void {
  const write = options?.write ?? ((text: string) => console.error(text));
  if (typeof write !== "function") {
    throw new TypeError(`Cannot enable the leak report: write must be a function, got ${describe(write)}`);
  }
  leakReport = { write, quiet: options?.quietWhenClean ?? false };
  installLifecycleHooks();
  updateExitHooks();
}

/**
 * The segments created since {@linkcode enableLeakReport} that this process has not unlinked yet,
 * as the report at exit would list them.
 *
 * @example
 * ```ts
 * import { enableLeakReport, leakedSegments, SharedMemory } from "@x/shm";
 *
 * enableLeakReport();
 * const shm = SharedMemory.create({ size: 64 });
 * console.log(leakedSegments().map((s) => s.name)); // [shm.name]
 * shm.close();
 * shm.unlink();
 * console.log(leakedSegments().length); // 0
 * ```
 */
export function leakedSegments(): LeakedSegment[] {
  return [...createdByName.values()].filter((c) => !c.unlinked).map((c) => ({
    name: c.name,
    size: c.size,
    closed: c.closed,
    stack: c.stack,
  }));
}

/**
 * One entry of {@linkcode leakedSegments}.
 *
 * @example
 * ```ts
 * import { enableLeakReport, type LeakedSegment, leakedSegments } from "@x/shm";
 *
 * enableLeakReport();
 * const open: LeakedSegment[] = leakedSegments().filter((s) => !s.closed);
 * ```
 */
export interface LeakedSegment {
  /** The segment's name. */
  name: string;
  /** Its size in bytes. */
  size: number;
  /** Whether the creating handle was closed (the mapping released) at least. */
  closed: boolean;
  /** Where it was created. */
  stack: string;
}

function printLeakReport(): void {
  const report = leakReport;
  if (!report) return;
  leakReport = undefined; // once
  const leaks = leakedSegments();
  if (leaks.length === 0) {
    if (!report.quiet) {
      report.write(
        `shm leak report: every segment this process created was unlinked (${createdByName.size})`,
      );
    }
    return;
  }
  const lines = [
    `shm leak report: ${leaks.length} shared memory segment${leaks.length === 1 ? "" : "s"} created by ` +
    `this process ${leaks.length === 1 ? "was" : "were"} never unlinked:`,
  ];
  for (const leak of leaks) {
    lines.push(`  "${leak.name}" (${leak.size} bytes${leak.closed ? "" : ", never closed"}), created`);
    for (const frame of leak.stack.split("\n").slice(0, 4)) lines.push(`    ${frame.trim()}`);
  }
  report.write(lines.join("\n"));
}

/** Tracks creation, close and unlink through `SharedMemory`'s life-cycle hooks (set only once enabled). */
function installLifecycleHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  lifecycle.created = (handle) => {
    const shm = handle as SharedMemory;
    // Drop the frames inside this module so the report starts at the caller's line.
    const frames = (new Error().stack ?? "").split("\n").slice(1)
      .filter((frame) => !/(shared_memory|scope|leak_report)\.ts/.test(frame));
    const record: Created = {
      name: shm.name,
      size: shm.size,
      stack: frames.join("\n"),
      closed: false,
      unlinked: false,
    };
    createdByName.set(shm.name, record);
    createdByHandle.set(shm, record);
  };
  lifecycle.closed = (handle) => {
    const record = createdByHandle.get(handle as SharedMemory);
    if (record) record.closed = true;
  };
  lifecycle.unlinked = (handle, name) => {
    const record = handle ? createdByHandle.get(handle as SharedMemory) : createdByName.get(name);
    if (record) record.unlinked = true;
  };
}

function truthy(value: string | undefined): boolean {
  return value !== undefined && value !== "" && value !== "0" && value.toLowerCase() !== "false";
}

addExitTask({
  run: printLeakReport,
  wantsSignals: () => leakReport !== undefined,
  keepsRunningOnSignal: () => false,
}, 1);

// Deno reads the variable only with --allow-env for it (never prompting).
if (truthy(readEnv("SHM_LEAK_REPORT"))) enableLeakReport();
