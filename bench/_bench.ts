/**
 * The shape every benchmark suite shares. A suite measures ours and a reference in the same run
 * and returns rows; `bench/run.ts` prints them and `tools/bench.mjs` gathers both runtimes into
 * `bench/results.json`.
 *
 * @module
 */

import type { RuntimeName } from "../ffi/runtime.ts";

/** One comparison. */
export interface BenchRow {
  /** What is measured, e.g. "copy 256 MiB into a mapped segment". */
  name: string;
  /** Unit of `ours` and `reference`, e.g. "GB/s", "µs", "ns", "msg/s". */
  unit: string;
  /** Our figure. */
  ours: number;
  /** The reference's figure, measured in the same run. */
  reference: number;
  /** What the reference is, e.g. "heap-to-heap Uint8Array.set". */
  referenceName: string;
  /** True for throughputs (more is better), false for times (less is better). */
  higherIsBetter: boolean;
  /** The advantage the issue asks for (e.g. 0.9, 1.5, 50), when there is one. */
  target?: number;
}

/** What a suite is told about the run. */
export interface BenchContext {
  runtime: RuntimeName;
  /** Shorter runs (BENCH_QUICK=1), for smoke-testing the benches themselves. */
  quick: boolean;
}

/** A benchmark suite: measures and returns its rows. */
export type BenchSuite = (ctx: BenchContext) => Promise<BenchRow[]>;

/** How many times better ours is than the reference: above 1 means ours wins. */
export function advantage(row: BenchRow): number {
  return row.higherIsBetter ? row.ours / row.reference : row.reference / row.ours;
}
