#!/usr/bin/env node
// Runs the whole suite: the tests under Deno, the same tests under Bun, the optional phases
// (Windows under Wine), and a check that nothing was left in /dev/shm or in SysV shared memory.
// Ends with one line: "N passed, N failed" (", N skipped" when some were).
//
// Usage: node tools/test.mjs [--only static|deno|bun|wine] [test file filters…]
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
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

function sh(cmd, cmdArgs, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, cmdArgs, {
      cwd: root,
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

const phases = [];
if ((!only && args.length === 0) || only === "static") {
  // What JSR and every user's editor will check: types, lint, format, docs, publishability.
  phases.push(["Static checks", async () => {
    const deno = bin("deno");
    const checks = [
      ["deno check", [deno, "check", "--quiet", "."]],
      ["deno lint", [deno, "lint", "--quiet"]],
      ["deno fmt --check", [deno, "fmt", "--check", "--quiet"]],
      ["deno doc --lint", [deno, "doc", "--lint", ...entryPoints()]],
      ["deno publish --dry-run", [deno, "publish", "--dry-run", "--allow-dirty", "--quiet"]],
    ];
    let passed = 0;
    const failedNames = [];
    for (const [name, cmd] of checks) {
      const r = await sh(cmd[0], cmd.slice(1));
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
    const r = await sh(bin("deno"), ["test", "-A", "--no-check", ...filters]);
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
    const r = await sh(bin("bun"), [
      "test",
      ...filters.map((f) => (f.startsWith(".") || f.startsWith("/") ? f : "./" + f)),
    ]);
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
const wine = join(root, "tools", "test-windows.sh");
if ((!only && args.length === 0) || only === "wine") {
  phases.push(["Windows (Bun under Wine)", async () => {
    if (!existsSync(wine)) {
      return { passed: 0, failed: 0, skipped: 0, note: "no Windows phase in this checkout" };
    }
    const r = await sh("bash", [wine]);
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
const leakedPosix = after.posix.filter((n) => !before.posix.includes(n));
const leakedSysv = after.sysv.filter((n) => !before.sysv.includes(n));
if (leakedPosix.length || leakedSysv.length) {
  totals.failed += 1;
  lines.push(
    `Leak check: FAILED, left behind: ${
      [...leakedPosix.map((n) => "/dev/shm/" + n), ...leakedSysv].join(", ")
    }`,
  );
} else {
  totals.passed += 1;
  lines.push(`Leak check: passed (/dev/shm and SysV shared memory as before the suite)`);
}

console.log("\n=== Summary ===");
for (const line of lines) console.log(line);
console.log(
  `${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ""}`,
);
process.exit(totals.failed ? 1 : 0);
