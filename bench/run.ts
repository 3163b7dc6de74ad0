/**
 * Runs benchmark suites in the current runtime (Deno, Bun or Node), prints a table, and writes the rows
 * as JSON.
 *
 * ```sh
 * deno run -A bench/run.ts [--out FILE] [--dir DIR] [filter…]
 * bun bench/run.ts [--out FILE] [--dir DIR] [filter…]
 * node --experimental-ffi --expose-gc bench/run.ts [--out FILE] [--dir DIR] [filter…]
 * ```
 *
 * - Every `<topic>_bench.ts` file of `bench/` (or of `--dir`) is a suite whose default export is a
 *   {@linkcode BenchSuite}. With filters, only suites whose topic contains one of them run.
 * - `BENCH_QUICK=1` asks suites for short runs (a smoke test of the benches, not figures to quote).
 * - `--out FILE` (or `BENCH_OUT=FILE`) writes a JSON array of {@linkcode ResultRow}s.
 * - A suite that throws, cannot be loaded or returns malformed rows does not stop the others: it
 *   becomes an error row, and the exit code is 1.
 *
 * Deno: run with `--v8-flags=--expose-gc`, Node with `--expose-gc`, so suites can give memory back
 * between cases (Bun can always).
 *
 * @module
 */

import { readdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { advantage, type BenchContext, type BenchRow } from "./_bench.ts";
import { runtime, type RuntimeName } from "../ffi/runtime.ts";

/** One row of the JSON output: a measured comparison, or a suite's (or row's) error. */
export interface ResultRow {
  runtime: RuntimeName;
  /** The suite's topic: `core` for `core_bench.ts`. */
  suite: string;
  name: string;
  unit: string;
  /** Our figure; null in an error row. */
  ours: number | null;
  /** The reference's figure; null in an error row. */
  reference: number | null;
  referenceName: string;
  /** How many times better ours is (above 1: ours wins), whether the unit is a time or a rate. */
  advantage: number | null;
  higherIsBetter: boolean | null;
  /** The advantage asked for, if any. */
  target: number | null;
  /** Whether `advantage >= target`; null without a target. */
  met: boolean | null;
  /** True when measured with `BENCH_QUICK=1`. */
  quick: boolean;
  /**
   * The 1-minute load average (the higher of the suite's start and end) and the number of CPUs:
   * other processes competing for the CPUs make every figure noisier.
   */
  load: { average: number; cpus: number };
  /** Why there is no figure. */
  error?: string;
}

const env = (name: string): string | undefined =>
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name];

/** The topic of a suite file (`core` for `core_bench.ts`), or null if it is not one. */
export function suiteTopic(file: string): string | null {
  const m = /^([a-z0-9][a-z0-9_]*)_bench\.ts$/.exec(file);
  return m?.[1] ?? null;
}

/** Checks a row a suite returned; the problems found (none: a well-formed row). */
export function rowProblems(row: unknown): string[] {
  if (typeof row !== "object" || row === null) return ["a row is not an object"];
  const r = row as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of ["name", "unit", "referenceName"]) {
    if (typeof r[key] !== "string" || r[key] === "") problems.push(`${key} is not a non-empty string`);
  }
  for (const key of ["ours", "reference"]) {
    const v = r[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      problems.push(`${key} is ${String(v)}, not a positive finite number`);
    }
  }
  if (typeof r.higherIsBetter !== "boolean") problems.push("higherIsBetter is not a boolean");
  if (
    r.target !== undefined &&
    (typeof r.target !== "number" || !Number.isFinite(r.target) || r.target <= 0)
  ) {
    problems.push(`target is ${String(r.target)}, not a positive number`);
  }
  return problems;
}

type Load = ResultRow["load"];

function toResult(row: BenchRow, suite: string, quick: boolean, load: Load): ResultRow {
  const adv = advantage(row);
  const target = row.target ?? null;
  return {
    runtime,
    suite,
    name: row.name,
    unit: row.unit,
    ours: row.ours,
    reference: row.reference,
    referenceName: row.referenceName,
    advantage: adv,
    higherIsBetter: row.higherIsBetter,
    target,
    met: target === null ? null : adv >= target,
    quick,
    load,
  };
}

function errorRow(suite: string, name: string, error: string, quick: boolean, load: Load): ResultRow {
  return {
    runtime,
    suite,
    name,
    unit: "",
    ours: null,
    reference: null,
    referenceName: "",
    advantage: null,
    higherIsBetter: null,
    target: null,
    met: null,
    quick,
    load,
    error,
  };
}

/** A number with about three significant digits. */
export function formatNumber(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return "—";
  const abs = Math.abs(n);
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(2);
  if (abs >= 0.01) return n.toFixed(3);
  return n.toPrecision(2);
}

function printRows(rows: readonly ResultRow[]): void {
  const table = rows.map((r) =>
    r.error !== undefined ? [r.name, "ERROR", "", "", "", r.error] : [
      r.name,
      `${formatNumber(r.ours)} ${r.unit}`,
      `${formatNumber(r.reference)} ${r.unit}`,
      `${formatNumber(r.advantage)}×`,
      r.target === null ? "" : `≥ ${r.target}× ${r.met ? "met" : "MISSED"}`,
      r.referenceName,
    ]
  );
  const head = ["", "ours", "reference", "advantage", "target", "reference is"];
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]?.length ?? 0)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i === 5 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ").trimEnd();
  console.log(line(head));
  for (const t of table) console.log(line(t));
}

function parseArgs(args: readonly string[]): { out?: string; dir: string; filters: string[] } {
  let out = env("BENCH_OUT") || undefined;
  let dir = fileURLToPath(new URL(".", import.meta.url));
  const filters: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!; // i < args.length
    if (arg === "--out") out = args[++i];
    else if (arg === "--dir") {
      const folder = args[++i];
      if (folder === undefined) throw new TypeError("Cannot run the benchmarks: --dir needs a folder");
      dir = resolve(folder);
    } else filters.push(arg);
  }
  return { out, dir, filters };
}

/** Runs the suites named by `args` and returns every row, error rows included. */
export async function runSuites(args: readonly string[]): Promise<ResultRow[]> {
  const { out, dir, filters } = parseArgs(args);
  const quick = env("BENCH_QUICK") === "1";
  const ctx: BenchContext = { runtime, quick };
  const files = readdirSync(dir).filter((f) => suiteTopic(f) !== null).sort();
  const chosen = files.filter((f) => !filters.length || filters.some((q) => suiteTopic(f)!.includes(q)));
  if (!chosen.length) console.log(`No suite in ${dir} matches ${filters.join(", ") || "*_bench.ts"}`);
  const results: ResultRow[] = [];
  for (const file of chosen) {
    const suite = suiteTopic(file)!;
    console.log(`\n# ${suite} (${runtime}${quick ? ", quick" : ""})`);
    const started = performance.now();
    const [loadBefore = 0] = loadavg();
    let outcome: { rows: unknown[] } | { error: string };
    try {
      const mod = await import(pathToFileURL(`${dir}/${file}`).href) as { default?: unknown };
      if (typeof mod.default !== "function") {
        throw new TypeError(`${file} has no default export of a BenchSuite function`);
      }
      const returned: unknown = await (mod.default as (c: BenchContext) => Promise<unknown>)(ctx);
      if (!Array.isArray(returned)) throw new TypeError(`${file} returned ${typeof returned}, not an array`);
      outcome = { rows: returned };
    } catch (error) {
      outcome = { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
    }
    const [loadAfter = 0] = loadavg();
    const load = { average: Math.round(Math.max(loadBefore, loadAfter) * 100) / 100, cpus: cpus().length };
    const rows = "error" in outcome
      ? [errorRow(suite, `${suite} suite`, outcome.error, quick, load)]
      : outcome.rows.map((row, i) => {
        const problems = rowProblems(row);
        const named = (row as { name?: unknown } | null)?.name;
        const name = typeof named === "string" && named ? named : `row ${i + 1}`;
        return problems.length
          ? errorRow(suite, name, `malformed row: ${problems.join("; ")}`, quick, load)
          : toResult(row as BenchRow, suite, quick, load);
      });
    printRows(rows);
    console.log(
      `(${((performance.now() - started) / 1000).toFixed(1)} s; load average ${loadBefore.toFixed(2)} → ` +
        `${loadAfter.toFixed(2)} on ${load.cpus} CPUs)`,
    );
    results.push(...rows);
  }
  if (out) writeFileSync(out, JSON.stringify(results, null, 2) + "\n");
  return results;
}

if (import.meta.main) {
  const argv = runtime === "deno"
    ? Deno.args
    : (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
  const results = await runSuites(argv);
  const failed = results.some((r) => r.error !== undefined);
  (globalThis as unknown as { process: { exit(code: number): never } }).process.exit(failed ? 1 : 0);
}
