/**
 * Smoke test of the benchmarks: runs `bench/run.ts` (BENCH_QUICK=1) on the core suite under the
 * current runtime and checks the rows it writes are well-formed, that the runner survives a suite
 * that throws, and that nothing is left in /dev/shm. No timing is asserted: timing belongs in the
 * benchmarks themselves.
 *
 * @module
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { runtime, test } from "./_harness.ts";
import { hasCommand, run, start, tsCommand } from "./_process.ts";
import type { ResultRow as Row } from "../bench/run.ts";

function leftovers(pid: number): string[] {
  return existsSync("/dev/shm")
    ? readdirSync("/dev/shm").filter((n) => n.startsWith(`shmbench_${pid}_`))
    : [];
}

const noPython = hasCommand("python3") &&
    spawnSync("python3", ["-c", "import numpy, multiprocessing.shared_memory"]).status === 0
  ? false
  : "python3 with NumPy is not installed (the core suite's reference figures need it)";

test("bench/run.ts core (quick) writes four well-formed rows and leaves /dev/shm clean", async () => {
  const dir = mkdtempSync(`${tmpdir()}/shm-bench-smoke-`);
  try {
    const out = `${dir}/rows.json`;
    const child = start(tsCommand(runtime, "bench/run.ts", ["--out", out, "core"]), {
      env: { BENCH_QUICK: "1" },
      timeout: 90_000,
    });
    const r = await child.done;
    assert.equal(r.code, 0, `bench/run.ts failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /# core \((deno|bun|node), quick\)/);
    const rows = JSON.parse(readFileSync(out, "utf8")) as Row[];
    assert.ok(Array.isArray(rows));
    assert.deepEqual(
      rows.map((row) => row.name),
      [
        "copy 16 MiB into a mapped segment",
        "create a 16 MiB segment and fill it",
        "create + open + close + unlink a 4 KiB segment",
        "cross-process round trip through one shared Int32 (Atomics spin)",
      ],
    );
    for (const row of rows) {
      assert.equal(row.error, undefined, `${row.name}: ${row.error}`);
      assert.equal(row.runtime, runtime);
      assert.equal(row.suite, "core");
      assert.equal(row.quick, true);
      assert.ok(["GB/s", "µs"].includes(row.unit), `${row.name}: unit ${row.unit}`);
      assert.equal(row.higherIsBetter, row.unit === "GB/s");
      for (const value of [row.ours, row.reference]) {
        assert.ok(typeof value === "number" && Number.isFinite(value) && value > 0, `${row.name}: ${value}`);
      }
      const expected = row.higherIsBetter ? row.ours! / row.reference! : row.reference! / row.ours!;
      assert.ok(Math.abs(row.advantage! - expected) <= 1e-9 * expected, `${row.name}: advantage`);
      assert.ok(typeof row.target === "number" && row.target > 0);
      assert.equal(row.met, row.advantage! >= row.target!);
      assert.ok(row.referenceName.length > 0);
      assert.ok(row.load.average >= 0 && row.load.cpus >= 1);
    }
    const roundTrip = rows[3];
    assert.ok(roundTrip, "the round-trip row");
    assert.match(
      roundTrip.referenceName,
      { deno: /Deno\.connect/, bun: /Bun\.connect/, node: /node:net/ }[runtime],
    );
    // Every segment the suite (and its Python reference) makes is named shmbench_<runner pid>_….
    assert.deepEqual(leftovers(child.pid), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, { skip: noPython, timeout: 120_000 });

test("bench/run.ts reports a failing or malformed suite as an error row and runs the others", async () => {
  const dir = mkdtempSync(`${tmpdir()}/shm-bench-suites-`);
  try {
    writeFileSync(`${dir}/a_boom_bench.ts`, `export default async () => { throw new Error("kaboom"); };\n`);
    writeFileSync(
      `${dir}/b_bad_bench.ts`,
      `export default async () => [{ name: "half a row", unit: "µs", ours: -1 }];\n`,
    );
    writeFileSync(
      `${dir}/c_good_bench.ts`,
      `export default async (ctx) => [{ name: "good " + ctx.runtime + " " + ctx.quick, unit: "µs", ours: 2, ` +
        `reference: 8, referenceName: "slower thing", higherIsBetter: false, target: 3 }];\n`,
    );
    writeFileSync(`${dir}/not_a_suite.ts`, `throw new Error("must not be loaded");\n`);
    const out = `${dir}/rows.json`;
    const r = await run(tsCommand(runtime, "bench/run.ts", ["--dir", dir, "--out", out]), {
      env: { BENCH_QUICK: "1" },
      timeout: 60_000,
    });
    assert.equal(r.code, 1, "a failed suite makes the exit code 1");
    const rows = JSON.parse(readFileSync(out, "utf8")) as Row[];
    assert.deepEqual(rows.map((row) => row.suite), ["a_boom", "b_bad", "c_good"]);
    const [boom, bad, good] = rows;
    assert.ok(boom && bad && good, "three rows");
    assert.match(boom.error ?? "", /kaboom/);
    assert.equal(boom.ours, null);
    assert.match(bad.error ?? "", /malformed row: .*ours is -1/);
    assert.equal(bad.name, "half a row");
    assert.equal(good.error, undefined);
    assert.equal(good.name, `good ${runtime} true`);
    assert.equal(good.advantage, 4);
    assert.equal(good.met, true);

    const filtered = await run(tsCommand(runtime, "bench/run.ts", ["--dir", dir, "--out", out, "good"]));
    assert.equal(filtered.code, 0, filtered.stdout + filtered.stderr);
    assert.deepEqual((JSON.parse(readFileSync(out, "utf8")) as Row[]).map((row) => row.suite), ["c_good"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
