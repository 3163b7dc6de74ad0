#!/usr/bin/env node
// Runs the whole suite: the tests under Deno, the same tests under Bun and under Node, the optional phases
// (Windows under Wine), and a check that nothing was left in /dev/shm or in SysV shared memory.
// Ends with one line: "N passed, N failed" (", N skipped" when some were).
//
// Usage: node tools/test.mjs [--only static|deno|bun|node|wine|types|doctest] [test file filters…]
//
// As root on Linux, each phase runs in a private IPC and mount namespace (`unshare --ipc --mount`) with its
// own tmpfs on /dev/shm: other programs' segments are invisible to it, and whatever is left in that
// /dev/shm or System V namespace when the phase ends is exactly what the phase leaked. The checkout is
// bind-mounted there at a world-readable path, so children started as `nobody` can read it even when the
// clone sits in a private (0700) folder; nothing of the user's folders changes mode. Without root, the leak
// check compares the names before and after the run (other programs' segments then count too).
import { spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => {
  const local = join(root, "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
};
const args = process.argv.slice(2);
let only;
if (args[0] === "--only") {
  only = args[1];
  args.splice(0, 2);
}
const filters = args.length ? args : ["tests/"];

function sh(cmd, cmdArgs, env = {}, cwd = root) {
  return new Promise((resolve) => {
    const child = spawn(cmd, cmdArgs, {
      cwd,
      env: { ...process.env, NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const relay = (stream, target) =>
      stream.on("data", (d) => {
        out += d;
        target.write(d);
      });
    relay(child.stdout, process.stdout);
    relay(child.stderr, process.stderr);
    // Summaries are matched on plain text: strip colour codes whatever the runner decided.
    // deno-lint-ignore no-control-regex
    const plain = () => out.replace(/\x1b\[[0-9;]*m/g, "");
    child.on("error", (e) => resolve({ code: 127, out: plain() + String(e) }));
    child.on("close", (code) => resolve({ code, out: plain() }));
  });
}

function entryPoints() {
  const config = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
  return Object.values(config.exports ?? { ".": "./mod.ts" });
}

function snapshot() {
  const posix = existsSync("/dev/shm") ? readdirSync("/dev/shm").sort() : [];
  let sysv = [];
  try {
    sysv = readFileSync("/proc/sysvipc/shm", "utf8").trim().split("\n").slice(1)
      .map((l) => l.trim().split(/\s+/)).map((f) => `key ${f[0]} shmid ${f[1]} size ${f[3]}`);
  } catch { /* not Linux */ }
  return { posix, sysv };
}

// --- Isolation: a private /dev/shm and System V namespace per phase, the checkout at a readable path ---

const isolate = process.platform === "linux" && process.getuid?.() === 0 &&
  ["unshare", "mount"].every((c) =>
    (process.env.PATH ?? "").split(":").some((d) => d && existsSync(join(d, c)))
  ) && process.env.SHM_NO_ISOLATION !== "1";

const WRAPPER = `set -u
mount -t tmpfs -o mode=1777 shm /dev/shm || exit 97
mount --bind "$SHM_ROOT" "$SHM_VIEW" || exit 97
cd "$SHM_VIEW" || exit 97
"$@"
rc=$?
{ ls -A /dev/shm | sed 's|^|/dev/shm/|'; tail -n +2 /proc/sysvipc/shm | awk '{print "System V key " $1 " shmid " $2 " size " $4}'; } > "$SHM_LEFT"
exit $rc`;

const leaks = [];
let isolatedPhases = 0;

/**
 * Runs a command of a phase: isolated (see the top of this file) when possible, with paths under the
 * readable view of the checkout. `cmd` is built from the root it gets.
 */
async function phaseRun(name, build, env = {}) {
  if (!isolate) return sh(...build(root, bin), env);
  const base = mkdtempSync(join(tmpdir(), "shm-suite-"));
  chmodSync(base, 0o755); // our own temporary folder: others may traverse it to reach the view
  const view = join(base, "checkout");
  mkdirSync(view);
  const left = join(base, "left.txt");
  const viewBin = (n) => {
    const local = join(view, "node_modules", ".bin", n);
    return existsSync(join(root, "node_modules", ".bin", n)) ? local : n;
  };
  const [cmd, args] = build(view, viewBin);
  try {
    const r = await sh(
      "unshare",
      ["--ipc", "--mount", "--propagation", "private", "--", "sh", "-c", WRAPPER, "sh", cmd, ...args],
      { ...env, SHM_ROOT: root, SHM_VIEW: view, SHM_LEFT: left },
    );
    isolatedPhases++;
    const leftover = existsSync(left)
      ? readFileSync(left, "utf8").split("\n").filter(Boolean)
      : [`(${name}: the isolated phase did not report what it left)`];
    leaks.push(...leftover.map((l) => `${name}: ${l}`));
    return r;
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

const phases = [];
if ((!only && args.length === 0) || only === "static") {
  // What JSR and every user's editor will check: types, lint, format, docs, publishability.
  phases.push(["Static checks", async () => {
    const checks = [
      ["deno check", ["check", "--quiet", "."]],
      ["deno lint", ["lint", "--quiet"]],
      ["deno fmt --check", ["fmt", "--check", "--quiet"]],
      ["deno doc --lint", ["doc", "--lint", ...entryPoints()]],
      ["deno publish --dry-run", ["publish", "--dry-run", "--allow-dirty", "--quiet"]],
    ];
    let passed = 0;
    const failedNames = [];
    for (const [name, cmd] of checks) {
      const r = await sh(bin("deno"), cmd);
      if (r.code === 0) {
        passed++;
        console.log(`ok: ${name}`);
      } else {
        failedNames.push(name);
        console.log(`FAILED: ${name}`);
      }
    }
    return {
      passed,
      failed: failedNames.length,
      skipped: 0,
      note: failedNames.length ? `failed: ${failedNames.join(", ")}` : undefined,
    };
  }]);
}
if (!only || only === "deno") {
  phases.push(["Deno", async () => {
    const r = await phaseRun("Deno", (_, b) => [b("deno"), ["test", "-A", "--no-check", ...filters]]);
    const m = r.out.match(
      /(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(?: \| (\d+) ignored)?/,
    );
    if (!m) {
      return { passed: 0, failed: 1, skipped: 0, note: `deno test ended without a summary (exit ${r.code})` };
    }
    const failed = Number(m[2]) + (r.code !== 0 && Number(m[2]) === 0 ? 1 : 0);
    return { passed: Number(m[1]), failed, skipped: Number(m[3] ?? 0) };
  }]);
}
if (!only || only === "bun") {
  phases.push(["Bun", async () => {
    const r = await phaseRun("Bun", (_, b) => [b("bun"), [
      "test",
      ...filters.map((f) => (f.startsWith(".") || f.startsWith("/") ? f : "./" + f)),
    ]]);
    const pass = r.out.match(/^\s*(\d+) pass\b/m);
    const fail = r.out.match(/^\s*(\d+) fail\b/m);
    const skip = r.out.match(/^\s*(\d+) skip\b/m);
    if (!pass && !fail) {
      return { passed: 0, failed: 1, skipped: 0, note: `bun test ended without a summary (exit ${r.code})` };
    }
    const failed = Number(fail?.[1] ?? 0) + (r.code !== 0 && !Number(fail?.[1] ?? 0) ? 1 : 0);
    return { passed: Number(pass?.[1] ?? 0), failed, skipped: Number(skip?.[1] ?? 0) };
  }]);
}
if (!only || only === "node") {
  phases.push(["Node", async () => {
    // node:test takes files and globs, not folders: a folder means its *_test.ts files.
    const files = filters.map((f) => {
      const path = f.replace(/\/$/, "");
      return existsSync(join(root, path)) && statSync(join(root, path)).isDirectory()
        ? `${path}/**/*_test.ts`
        : f;
    });
    const r = await phaseRun("Node", (_, b) => [b("node"), [
      "--experimental-ffi",
      "--no-warnings",
      "--test",
      "--test-concurrency=1",
      "--test-reporter=spec",
      ...files,
    ]]);
    const count = (word) => r.out.match(new RegExp(`^\\S* ${word} (\\d+)$`, "m"))?.[1];
    const [pass, fail, skip] = [count("pass"), count("fail"), count("skipped")];
    if (pass === undefined && fail === undefined) {
      return {
        passed: 0,
        failed: 1,
        skipped: 0,
        note: `node --test ended without a summary (exit ${r.code})`,
      };
    }
    const failed = Number(fail ?? 0) + (r.code !== 0 && !Number(fail ?? 0) ? 1 : 0);
    return { passed: Number(pass ?? 0), failed, skipped: Number(skip ?? 0) };
  }]);
}
const wine = join(root, "tools", "test-windows.sh");
if ((!only && args.length === 0) || only === "wine") {
  phases.push(["Windows (Bun under Wine)", async () => {
    if (!existsSync(wine)) {
      return { passed: 0, failed: 0, skipped: 0, note: "no Windows phase in this checkout" };
    }
    const r = await phaseRun("Wine", (view) => ["bash", [join(view, "tools", "test-windows.sh")]]);
    const m = r.out.match(/^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/m);
    if (!m) {
      return {
        passed: 0,
        failed: r.code === 0 ? 0 : 1,
        skipped: 0,
        note: `tools/test-windows.sh printed no summary (exit ${r.code})`,
      };
    }
    return { passed: Number(m[1]), failed: Number(m[2]), skipped: Number(m[3] ?? 0) };
  }]);
}

if ((!only && args.length === 0) || only === "types") {
  // A user's projects: Bun's (tsc, @types/bun, noUncheckedIndexedAccess), Node's (tsc, @types/node,
  // erasableSyntaxOnly: Node's type stripping refuses what it cannot erase) and Deno's (deno check with
  // noUncheckedIndexedAccess), each importing every entry point of the module.
  phases.push(["Types", async () => {
    const checks = [
      ["tsc (a Bun project: @types/bun, strict, noUncheckedIndexedAccess)", bin("tsc"), [
        "-p",
        "tools/types/bun/tsconfig.json",
        "--pretty",
        "false",
      ]],
      [
        "tsc (a Node project: @types/node, strict, noUncheckedIndexedAccess, erasableSyntaxOnly)",
        bin("tsc"),
        [
          "-p",
          "tools/types/node/tsconfig.json",
          "--pretty",
          "false",
        ],
      ],
      ["deno check (noUncheckedIndexedAccess)", bin("deno"), [
        "check",
        "--config",
        "tools/types/deno.json",
        "tools/types/deno_main.ts",
      ]],
    ];
    let passed = 0;
    const failed = [];
    for (const [name, cmd, cmdArgs] of checks) {
      if (cmd === "tsc") {
        failed.push(`${name}: typescript is not installed (npm ci)`);
        continue;
      }
      const r = await sh(cmd, cmdArgs);
      const found = /Found (\d+) errors?/.exec(r.out);
      const errors = found ? Number(found[1]) : (r.out.match(/error TS\d+|TS\d+ \[ERROR\]/g) ?? []).length;
      if (r.code === 0) passed++;
      else failed.push(`${name}: ${errors} errors`);
      console.log(r.code === 0 ? `ok: ${name}` : `FAILED: ${name} (${errors} errors)`);
    }
    return { passed, failed: failed.length, skipped: 0, note: failed.length ? failed.join("; ") : undefined };
  }]);
}
if ((!only && args.length === 0) || only === "doctest") {
  // Deno's own runner over every JSDoc example (tests/doc_examples_test.ts runs them one by one, under both
  // runtimes, with a per-example time limit; this is Deno's check that they type-check and run).
  phases.push(["Deno doc tests", async () => {
    const files = readdirSync(root, { recursive: true }).filter((f) =>
      /\.ts$/.test(f) && !/^(tests|bench|examples|tools|node_modules|docs|\.wine)\//.test(f) &&
      !f.includes("node_modules")
    );
    // From an empty folder, so an example's ./data.bin does not land in the checkout.
    const work = mkdtempSync(join(tmpdir(), "shm-doctest-"));
    const r = await phaseRun("Deno doc tests", (view, b) => [
      "env",
      [
        `--chdir=${work}`,
        "timeout",
        "-k",
        "10",
        "300",
        b("deno"),
        "test",
        "-A",
        "--doc",
        "--config",
        join(view, "deno.json"),
        ...files.map((f) => join(view, f)),
      ],
    ]).finally(() => rmSync(work, { recursive: true, force: true }));
    const m = r.out.match(/(?:ok|FAILED) \| (\d+) passed \| (\d+) failed/);
    if (!m) {
      return {
        passed: 0,
        failed: 1,
        skipped: 0,
        note: `deno test --doc ended without a summary (exit ${r.code})`,
      };
    }
    return {
      passed: Number(m[1]),
      failed: Number(m[2]) + (r.code !== 0 && m[2] === "0" ? 1 : 0),
      skipped: 0,
    };
  }]);
}

const before = snapshot();
const totals = { passed: 0, failed: 0, skipped: 0 };
const lines = [];
for (const [name, phase] of phases) {
  console.log(`\n=== ${name} ===`);
  const r = await phase();
  totals.passed += r.passed;
  totals.failed += r.failed;
  totals.skipped += r.skipped;
  lines.push(
    `${name}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped${r.note ? ` (${r.note})` : ""}`,
  );
}

// The suite must leave shared memory exactly as it found it.
const after = snapshot();
if (!isolate) {
  leaks.push(...after.posix.filter((n) => !before.posix.includes(n)).map((n) => "/dev/shm/" + n));
  leaks.push(...after.sysv.filter((n) => !before.sysv.includes(n)));
}
if (leaks.length) {
  totals.failed += 1;
  lines.push(`Leak check: FAILED, left behind: ${leaks.join(", ")}`);
} else {
  totals.passed += 1;
  lines.push(
    isolatedPhases
      ? `Leak check: passed (${isolatedPhases} phase(s), each in its own /dev/shm and System V namespace, left nothing)`
      : isolate
      ? `Leak check: passed (no phase that runs module code ran)`
      : `Leak check: passed (/dev/shm and SysV shared memory as before the suite)`,
  );
}

console.log("\n=== Summary ===");
for (const line of lines) console.log(line);
console.log(
  `${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ""}`,
);
process.exit(totals.failed ? 1 : 0);
