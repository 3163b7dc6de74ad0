#!/usr/bin/env node
// `npm run bench`: runs every benchmark suite (bench/*_bench.ts) under Deno and under Bun, merges the
// rows into bench/results.json, prints one table of the advantages, and draws bench/chart.svg.
//
// Usage: node tools/bench.mjs [--only deno|bun|node] [suite filter…]
//   Node rows come from `--only node` (core, sync, channel and the others that run under Node); they sit
//   next to Deno's and Bun's in bench/results.json and in the table.
//        node tools/bench.mjs --report   (no run: table and chart again from bench/results.json)
//   BENCH_QUICK=1   short runs to smoke-test the benches; results go to a temporary folder instead
//                   of bench/results.json and bench/chart.svg.
//
// Each suite runs in its own process per runtime (bench/run.ts with one suite), so a suite that
// crashes, hangs (killed after BENCH_TIMEOUT seconds, default 900; 180 when quick) or leaves memory
// behind cannot disturb the others: its failure becomes an error row. With filters, only the
// matching suites are re-run and the other rows of bench/results.json are kept.
import { spawn } from "node:child_process";
import { cpus, loadavg, tmpdir } from "node:os";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const benchDir = join(root, "bench");
const bin = (name) => {
  const local = join(root, "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
};
const quick = process.env.BENCH_QUICK === "1";
const timeoutSeconds = Number(process.env.BENCH_TIMEOUT ?? (quick ? 180 : 900));

const args = process.argv.slice(2);
const reportOnly = args[0] === "--report";
if (reportOnly) args.shift();
let runtimes = ["deno", "bun"];
if (args[0] === "--only") {
  runtimes = [args[1]];
  args.splice(0, 2);
}
const filters = args;

const topicOf = (file) => /^([a-z0-9][a-z0-9_]*)_bench\.ts$/.exec(file)?.[1] ?? null;
const suites = reportOnly ? [] : readdirSync(benchDir).map(topicOf).filter((t) => t !== null).sort()
  .filter((t) => !filters.length || filters.some((f) => t.includes(f)));
if (!suites.length && !reportOnly) {
  console.error(`No suite in bench/ matches ${filters.join(", ")}`);
  process.exit(2);
}

function command(runtime, suite, out) {
  const script = join(benchDir, "run.ts");
  if (runtime === "node") {
    return [bin("node"), ["--experimental-ffi", "--no-warnings", "--expose-gc", script, "--out", out, suite]];
  }
  return runtime === "deno"
    ? [bin("deno"), ["run", "-A", "--v8-flags=--expose-gc", script, "--out", out, suite]]
    : [bin("bun"), [script, "--out", out, suite]];
}

let running = null; // the suite process running now, so that Ctrl-C can stop its whole group

function runSuite(runtime, suite, out) {
  return new Promise((resolve) => {
    const [cmd, cmdArgs] = command(runtime, suite, out);
    // Its own process group: a suite killed for running too long takes its children (peers, Python)
    // with it.
    const child = spawn(cmd, cmdArgs, {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", BENCH_QUICK: quick ? "1" : "0" },
      stdio: ["ignore", "inherit", "inherit"],
      detached: true,
    });
    running = child;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeoutSeconds * 1000);
    child.on("error", (e) => {
      clearTimeout(timer);
      running = null;
      resolve({ code: null, note: String(e) });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      running = null;
      if (timedOut || signal) {
        killGroup(child);
        removeSegmentsOf(child.pid);
      }
      resolve({
        code,
        note: timedOut ? `killed after ${timeoutSeconds} s` : signal ? `killed by ${signal}` : `exit ${code}`,
      });
    });
  });
}

function killGroup(child) {
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** A suite killed before its cleanup ran: its segments are named shmbench_<its pid>_…. */
function removeSegmentsOf(pid) {
  try {
    for (const name of readdirSync("/dev/shm")) {
      if (name.startsWith(`shmbench_${pid}_`)) rmSync(`/dev/shm/${name}`, { force: true });
    }
  } catch {
    // No /dev/shm (not Linux).
  }
}

process.on("SIGINT", () => {
  if (running) {
    killGroup(running);
    removeSegmentsOf(running.pid);
  }
  process.exit(130);
});

function errorRow(runtime, suite, error) {
  return {
    runtime,
    suite,
    name: `${suite} suite`,
    unit: "",
    ours: null,
    reference: null,
    referenceName: "",
    advantage: null,
    higherIsBetter: null,
    target: null,
    met: null,
    quick,
    load: { average: loadavg()[0], cpus: cpus().length },
    error,
  };
}

function shmEntries() {
  try {
    return readdirSync("/dev/shm").filter((n) => n.startsWith("shmbench_"));
  } catch {
    return [];
  }
}

const fmt = (n) => {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toPrecision(3)} G`;
  if (a >= 1e6) return `${(n / 1e6).toPrecision(3)} M`;
  if (a >= 1e5) return `${(n / 1e3).toPrecision(3)} k`;
  return a >= 100
    ? n.toFixed(0)
    : a >= 10
    ? n.toFixed(1)
    : a >= 1
    ? n.toFixed(2)
    : a >= 0.01
    ? n.toFixed(3)
    : n.toPrecision(2);
};

function versionOf(runtime) {
  return new Promise((resolve) => {
    const child = spawn(bin(runtime), ["--version"], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", () => resolve("?"));
    child.on(
      "close",
      () => resolve(out.split("\n")[0].replace(/^(deno|bun) |^v/, "").split(" ")[0].trim() || "?"),
    );
  });
}

// ---------------------------------------------------------------- run

const work = mkdtempSync(join(tmpdir(), "shm-bench-"));
const before = new Set(shmEntries());
const fresh = [];
let failures = 0;
for (const runtime of reportOnly ? [] : runtimes) {
  for (const suite of suites) {
    const out = join(work, `${runtime}-${suite}.json`);
    console.log(`\n=== ${suite} under ${runtime}${quick ? " (quick)" : ""}`);
    const { code, note } = await runSuite(runtime, suite, out);
    let rows = null;
    if (existsSync(out)) {
      try {
        rows = JSON.parse(readFileSync(out, "utf8"));
      } catch (e) {
        rows = [errorRow(runtime, suite, `unreadable results (${e.message}); ${note}`)];
      }
    }
    if (!rows || (!rows.length && code !== 0)) rows = [errorRow(runtime, suite, `no results: ${note}`)];
    if (rows.some((r) => r.error !== undefined)) failures++;
    fresh.push(...rows);
  }
}
rmSync(work, { recursive: true, force: true });
const leaked = shmEntries().filter((n) => !before.has(n));

// ---------------------------------------------------------------- merge

const resultsPath = quick ? join(tmpdir(), "shm-bench-quick-results.json") : join(benchDir, "results.json");
const chartPath = quick ? join(tmpdir(), "shm-bench-quick-chart.svg") : join(benchDir, "chart.svg");
let kept = [];
if (!quick && existsSync(resultsPath)) {
  try {
    const ran = new Set(fresh.map((r) => `${r.runtime}\0${r.suite}`));
    kept = JSON.parse(readFileSync(resultsPath, "utf8")).filter((r) => !ran.has(`${r.runtime}\0${r.suite}`));
  } catch {
    kept = [];
  }
}
const runtimeOrder = (r) => ["deno", "bun", "node"].indexOf(r.runtime);
const all = [...kept, ...fresh].sort((a, b) =>
  a.suite.localeCompare(b.suite) || runtimeOrder(a) - runtimeOrder(b)
);
writeFileSync(resultsPath, JSON.stringify(all, null, 2) + "\n");

// ---------------------------------------------------------------- table

// One line per comparison, one column group per runtime. Rows pair up across runtimes by suite and
// name; a suite that compares one thing against several references returns several rows of that
// name per runtime, and the n-th of them goes to the n-th line.
const groups = [];
const byKey = new Map();
const occurrences = new Map();
for (const r of all) {
  const seen = `${r.runtime}\0${r.suite}\0${r.name}`;
  const index = occurrences.get(seen) ?? 0;
  occurrences.set(seen, index + 1);
  const key = `${r.suite}\0${r.name}\0${index}`;
  if (!byKey.has(key)) {
    byKey.set(key, { suite: r.suite, name: r.name, unit: r.unit, rows: {} });
    groups.push(byKey.get(key));
  }
  const g = byKey.get(key);
  g.rows[r.runtime] = r;
  if (!g.unit) g.unit = r.unit;
}
for (const g of groups) {
  const references = [...new Set(Object.values(g.rows).map((r) => r.referenceName).filter(Boolean))];
  g.referenceName = references.join(" | ");
  const twins = groups.filter((o) => o.suite === g.suite && o.name === g.name).length;
  g.label = twins > 1 && g.referenceName ? `${g.name} (vs ${g.referenceName})` : g.name;
}
const seenRuntimes = ["deno", "bun", "node"].filter((rt) => all.some((r) => r.runtime === rt));
const cell = (r) => {
  if (!r) return ["", "", ""];
  if (r.error !== undefined) return ["error", "", ""];
  const mark = r.met === null ? "" : r.met ? " ✓" : " ✗";
  return [`${fmt(r.ours)}`, `${fmt(r.reference)}`, `${fmt(r.advantage)}×${mark}`];
};
const header = ["comparison", "unit", "target"];
for (const rt of seenRuntimes) header.push(`${rt} ours`, `${rt} ref`, `${rt} adv.`);
const lines = groups.map((g) => {
  const targets = [...new Set(Object.values(g.rows).map((r) => r.target).filter((t) => t))];
  const label = g.label.length > 100 ? `${g.label.slice(0, 99)}…` : g.label;
  const line = [label, g.unit, targets.map((t) => `≥ ${t}×`).join(" / ")];
  for (const rt of seenRuntimes) line.push(...cell(g.rows[rt]));
  return line;
});
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
const show = (cells) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
console.log(
  `\n${"=".repeat(20)} advantage = how many times better ours is than the reference (> 1: ours wins)`,
);
console.log(show(header));
for (const l of lines) console.log(show(l));
for (const r of all.filter((r) => r.error !== undefined)) {
  console.log(`error: ${r.suite} (${r.runtime}): ${r.error}`);
}
const missed = all.filter((r) => r.met === false);
for (const r of missed) {
  console.log(
    `target missed: ${r.name} (${r.runtime}): ${fmt(r.advantage)}× < ${r.target}× vs ${r.referenceName}`,
  );
}

// ---------------------------------------------------------------- chart

const versions = {};
for (const rt of seenRuntimes) versions[rt] = await versionOf(rt);
writeFileSync(chartPath, chart(groups, seenRuntimes, versions));
const latencyPath = quick ? join(tmpdir(), "shm-bench-quick-latency.svg") : join(benchDir, "latency.svg");
const latency = latencyChart(all, seenRuntimes, versions);
if (latency !== null) writeFileSync(latencyPath, latency);
console.log(
  `\nWrote ${resultsPath}, ${chartPath}${latency === null ? "" : ` and ${latencyPath}`}${
    quick ? " (quick run: bench/ left untouched)" : ""
  }`,
);
if (leaked.length) {
  // Benchmarks name their segments shmbench_<pid>_…; one from a concurrent run would show here too.
  console.log(`WARNING: new shmbench_* segments left in /dev/shm during this run: ${leaked.join(", ")}`);
}
process.exit(failures ? 1 : 0);

/** A horizontal bar chart of advantages on a log scale, bars growing from the 1× line. */
function chart(groups, runtimes, versions) {
  const colors = { deno: "#2b6cb0", bun: "#d69e2e", node: "#2f855a" };
  const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const tick = (v) => `${v >= 1 ? v.toFixed(0) : String(Number(v.toPrecision(1)))}×`;
  const values = groups.flatMap((g) => [
    ...runtimes.map((rt) => g.rows[rt]?.advantage).filter((v) => Number.isFinite(v) && v > 0),
    ...runtimes.map((rt) => g.rows[rt]?.target).filter((v) => Number.isFinite(v) && v > 0),
  ]);
  const lo = Math.min(-1, Math.floor(Math.log10(Math.min(...values, 1))));
  const hi = Math.max(1, Math.ceil(Math.log10(Math.max(...values, 1))));
  const left = 30, right = 250, plotW = 760, top = 78, labelH = 18, barH = 15, gap = 3, groupGap = 14;
  const groupH = labelH + runtimes.length * (barH + gap) - gap;
  const bottom = top + groups.length * (groupH + groupGap);
  const height = bottom + 50;
  // About 6.6 px per character of 12 px text; long labels widen the picture rather than overflow it.
  const labelChars = Math.max(0, ...groups.map((g) => g.name.length + (g.referenceName?.length ?? 0) + 36));
  const width = Math.max(left + plotW + right, left + Math.ceil(labelChars * 6.6) + 20);
  const x = (v) => left + ((Math.log10(v) - lo) / (hi - lo)) * plotW;
  const out = [];
  const halo = ` stroke="#fff" stroke-width="3" paint-order="stroke"`;
  const loads = groups.flatMap((g) => runtimes.map((rt) => g.rows[rt]?.load?.average)).filter(
    Number.isFinite,
  );
  const loadText = loads.length
    ? ` · load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`
    : "";
  const subtitle = `${quick ? "QUICK smoke run, not figures to quote · " : ""}` +
    `${new Date().toISOString().slice(0, 10)} · ${cpus().length} CPUs${loadText} · ` +
    `${
      runtimes.map((rt) => `${rt} ${versions[rt]}`).join(" · ")
    } · ours and reference measured in the same run`;
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${
      width / 2
    }" y="22" text-anchor="middle" font-size="15" font-weight="bold">shm: how many times better than the reference (log scale; right of 1× = ours wins)</text>`,
    `<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`,
  );
  // Grid: decades, with 2× and 5× in lighter lines.
  for (let d = lo; d <= hi; d++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** d;
      if (Math.log10(v) > hi + 1e-9) continue;
      const px = x(v).toFixed(1);
      out.push(
        `<line x1="${px}" y1="${top - 8}" x2="${px}" y2="${bottom}" stroke="${m === 1 ? "#ccc" : "#eee"}"/>`,
      );
      if (m === 1 || hi - lo <= 3) {
        out.push(`<text x="${px}" y="${bottom + 15}" text-anchor="middle" fill="#555">${tick(v)}</text>`);
      }
    }
  }
  const one = x(1);
  out.push(
    `<line x1="${one.toFixed(1)}" y1="${top - 12}" x2="${
      one.toFixed(1)
    }" y2="${bottom}" stroke="#000" stroke-width="1.5"/>`,
  );
  out.push(
    `<text x="${one.toFixed(1)}" y="${top - 16}" text-anchor="middle">1× (as good as the reference)</text>`,
  );
  // Legend.
  let lx = left;
  const ly = bottom + 26;
  for (const rt of runtimes) {
    out.push(`<rect x="${lx}" y="${ly}" width="12" height="12" fill="${colors[rt] ?? "#888"}"/>`);
    out.push(`<text x="${lx + 16}" y="${ly + 10}">${esc(rt)}</text>`);
    lx += 70;
  }
  out.push(
    `<line x1="${lx}" y1="${ly - 2}" x2="${lx}" y2="${
      ly + 14
    }" stroke="#c53030" stroke-width="2" stroke-dasharray="3,2"/>`,
  );
  out.push(`<text x="${lx + 6}" y="${ly + 10}">target (✓ met, ✗ missed: faded bar)</text>`);
  // Bars.
  groups.forEach((g, i) => {
    const y0 = top + i * (groupH + groupGap);
    const first = runtimes.map((rt) => g.rows[rt]).find((r) => r && r.referenceName);
    const vs = first
      ? `\u00a0\u00a0— vs ${g.referenceName} (${first.unit}${
        first.higherIsBetter ? ", higher is better" : ", lower is better"
      })`
      : "";
    out.push(
      `<text x="${left}" y="${y0 + 12}"${halo}><tspan font-weight="bold">${
        esc(g.name)
      }</tspan><tspan fill="#555">${esc(vs)}</tspan></text>`,
    );
    runtimes.forEach((rt, j) => {
      const r = g.rows[rt];
      const y = y0 + labelH + j * (barH + gap);
      if (!r) return;
      if (r.error !== undefined || !Number.isFinite(r.advantage) || r.advantage <= 0) {
        out.push(
          `<text x="${(one + 6).toFixed(1)}" y="${y + barH - 3}" fill="#c53030">${esc(rt)}: error<title>${
            esc(r.error ?? "no figure")
          }</title></text>`,
        );
        return;
      }
      const xv = x(Math.min(Math.max(r.advantage, 10 ** lo), 10 ** hi));
      const x1 = Math.min(xv, one), w = Math.max(Math.abs(xv - one), 1);
      const tip = `${rt}: ours ${fmt(r.ours)} ${r.unit} vs ${
        fmt(r.reference)
      } ${r.unit} (${r.referenceName})`;
      out.push(
        `<rect x="${x1.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${
          colors[rt] ?? "#888"
        }"${r.met === false ? ' fill-opacity="0.45"' : ""}><title>${esc(tip)}</title></rect>`,
      );
      const mark = r.met === null ? "" : r.met ? " ✓" : " ✗";
      // Figures go right of the bar, or right of the 1× line for a bar that grows left.
      const textX = Math.max(xv, one) + 4;
      out.push(
        `<text x="${textX.toFixed(1)}" y="${y + barH - 3}"${halo}>${
          esc(`${fmt(r.advantage)}×${mark}  ${rt}: ${fmt(r.ours)} vs ${fmt(r.reference)} ${r.unit}`)
        }</text>`,
      );
    });
    // Each bar's own target, as a dashed tick across it.
    runtimes.forEach((rt, j) => {
      const target = g.rows[rt]?.target;
      if (!Number.isFinite(target) || target <= 0) return;
      const tx = x(target).toFixed(1);
      const y = y0 + labelH + j * (barH + gap);
      out.push(
        `<line x1="${tx}" y1="${y - 2}" x2="${tx}" y2="${y + barH + 2}" stroke="#c53030" stroke-width="2" ` +
          `stroke-dasharray="3,2"><title>${esc(`${rt} target ${target}×`)}</title></line>`,
      );
    });
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

/**
 * Latency against payload size, log–log: the rows `bench/topic_bench.ts` names
 * `one-way latency <p50|p99>, <size>: <path>` (ours) with their Unix socket reference, per
 * runtime; p50 as solid lines with dots, p99 as thin dashed lines; iceoryx2's published figure as
 * a horizontal line. Null when there are no such rows.
 */
function latencyChart(rows, runtimes, versions) {
  // iceoryx2's published one-way latency, in µs: 92–99 ns from 64 B to 4 MB on an i7-13700H
  // (its benchmark, its machine).
  const ICEORYX2_MICROS = 0.095;
  const units = { B: 1, KiB: 1024, MiB: 1 << 20 };
  const points = []; // { runtime, path, which, bytes, micros }
  for (const r of rows) {
    const m = /^one-way latency (p50|p99), (\d+) (B|KiB|MiB): (.+)$/.exec(r.name);
    if (!m || r.error !== undefined || !Number.isFinite(r.ours)) continue;
    const bytes = Number(m[2]) * units[m[3]];
    points.push({ runtime: r.runtime, path: m[4], which: m[1], bytes, micros: r.ours });
    const socket = `Unix socket (${r.runtime === "deno" ? "Deno.connect" : "Bun.connect"})`;
    if (
      !points.some((p) =>
        p.path === socket && p.which === m[1] && p.bytes === bytes && p.runtime === r.runtime
      )
    ) {
      points.push({ runtime: r.runtime, path: socket, which: m[1], bytes, micros: r.reference });
    }
  }
  if (!points.length) return null;
  const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const colors = { deno: "#2b6cb0", bun: "#d69e2e" };
  const width = 900, height = 560, left = 70, right = 250, top = 70, bottom = 60;
  const plotW = width - left - right, plotH = height - top - bottom;
  const sizes = [...new Set(points.map((p) => p.bytes))].sort((a, b) => a - b);
  const xLo = Math.log2(sizes[0]), xHi = Math.log2(sizes[sizes.length - 1]);
  const ys = [...points.map((p) => p.micros), ICEORYX2_MICROS];
  const yLo = Math.floor(Math.log10(Math.min(...ys))), yHi = Math.ceil(Math.log10(Math.max(...ys)));
  const x = (b) => left + (xHi === xLo ? plotW / 2 : ((Math.log2(b) - xLo) / (xHi - xLo)) * plotW);
  const y = (v) => top + plotH - ((Math.log10(v) - yLo) / (yHi - yLo)) * plotH;
  const label = (b) => b >= 1 << 20 ? `${b / (1 << 20)} MiB` : b >= 1024 ? `${b / 1024} KiB` : `${b} B`;
  const micros = (v) => v >= 1000 ? `${v / 1000} ms` : v >= 1 ? `${v} µs` : `${v * 1000} ns`;
  const loads = rows.filter((r) => /^one-way latency/.test(r.name) && r.load).map((r) => r.load.average);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${
      width / 2
    }" y="22" text-anchor="middle" font-size="15" font-weight="bold">One-way latency against payload size (log–log; lower is better)</text>`,
    `<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">${
      esc(
        `${quick ? "QUICK smoke run, not figures to quote · " : ""}${
          new Date().toISOString().slice(0, 10)
        } · ` +
          `${cpus().length} CPUs${
            loads.length
              ? ` · load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`
              : ""
          } · ` +
          runtimes.map((rt) => `${rt} ${versions[rt]}`).join(" · ") +
          " · half of single round trips, p50 solid, p99 dashed",
      )
    }</text>`,
  ];
  for (let d = yLo; d <= yHi; d++) {
    const py = y(10 ** d).toFixed(1);
    out.push(`<line x1="${left}" y1="${py}" x2="${left + plotW}" y2="${py}" stroke="#ddd"/>`);
    out.push(
      `<text x="${left - 6}" y="${Number(py) + 4}" text-anchor="end" fill="#555">${
        esc(micros(10 ** d))
      }</text>`,
    );
  }
  for (const b of sizes) {
    const px = x(b).toFixed(1);
    out.push(`<line x1="${px}" y1="${top}" x2="${px}" y2="${top + plotH}" stroke="#eee"/>`);
    out.push(
      `<text x="${px}" y="${top + plotH + 16}" text-anchor="middle" fill="#555">${esc(label(b))}</text>`,
    );
  }
  out.push(`<text x="${left + plotW / 2}" y="${height - 16}" text-anchor="middle">payload size</text>`);
  // iceoryx2's published figure: measured on its own machine, not ours.
  const iy = y(ICEORYX2_MICROS).toFixed(1);
  out.push(
    `<line x1="${left}" y1="${iy}" x2="${
      left + plotW
    }" y2="${iy}" stroke="#c53030" stroke-width="1.5" stroke-dasharray="6,3"/>`,
    `<text x="${left + 4}" y="${Number(iy) - 5}" fill="#c53030">${
      esc(
        "iceoryx2, published: 95 ns one way, flat 64 B – 4 MB (measured on its machine, an i7-13700H, not ours)",
      )
    }</text>`,
  );
  const paths = [...new Set(points.map((p) => p.path.replace(/ \((Deno|Bun)\.connect\)$/, "")))];
  const marker = (path, px, py, color) =>
    path.startsWith("loan")
      ? `<circle cx="${px}" cy="${py}" r="3.5" fill="${color}"/>`
      : path.startsWith("send")
      ? `<rect x="${px - 3}" y="${
        py - 3
      }" width="6" height="6" fill="#fff" stroke="${color}" stroke-width="1.5"/>`
      : `<path d="M${px - 4},${py + 3} L${px + 4},${py + 3} L${px},${
        py - 4
      } Z" fill="#fff" stroke="${color}" stroke-width="1.5"/>`;
  let legendY = top;
  for (const rt of runtimes) {
    for (const path of paths) {
      const color = colors[rt] ?? "#888";
      for (const which of ["p50", "p99"]) {
        const line = points.filter((p) => p.runtime === rt && p.which === which && p.path.startsWith(path))
          .sort((a, b) => a.bytes - b.bytes);
        if (!line.length) continue;
        const d = line.map((p, i) => `${i ? "L" : "M"}${x(p.bytes).toFixed(1)},${y(p.micros).toFixed(1)}`)
          .join(" ");
        const style = which === "p50"
          ? `stroke-width="2"${path.startsWith("Unix") ? ' stroke-dasharray="2,2"' : ""}`
          : `stroke-width="1" stroke-dasharray="5,3" stroke-opacity="0.6"`;
        out.push(`<path d="${d}" fill="none" stroke="${color}" ${style}/>`);
        if (which === "p50") {
          for (const p of line) {
            out.push(
              `<g>${marker(path, x(p.bytes).toFixed(1), y(p.micros).toFixed(1), color)}<title>${
                esc(`${rt} ${path} ${label(p.bytes)}: p50 ${p.micros.toPrecision(3)} µs`)
              }</title></g>`,
            );
          }
        }
      }
      const lx = left + plotW + 16;
      out.push(marker(path, lx + 8, legendY + 4, colors[rt] ?? "#888"));
      out.push(`<text x="${lx + 20}" y="${legendY + 8}">${esc(`${rt}: ${path}`)}</text>`);
      legendY += 20;
    }
  }
  legendY += 10;
  for (
    const text of [
      "loan → borrow: the hand-off of a message",
      "written in place (first and last bytes",
      "touched; up to 1 KiB a private copy)",
      "send → receiveInto: the whole payload",
      "copied in and out",
      "p50: solid · p99: thin dashed",
    ]
  ) {
    out.push(`<text x="${left + plotW + 16}" y="${legendY}" fill="#555" font-size="11">${esc(text)}</text>`);
    legendY += 15;
  }
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
