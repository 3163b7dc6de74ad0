// What a newcomer runs first: `deno task X` and `npm run X` mean the same, and every subpath export
// exists and loads only what it needs.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runtime, test } from "./_harness.ts";
import { ROOT, run, RUNTIMES } from "./_process.ts";

const denoJson = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
const packageJson = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

test("deno.json has no tasks of its own, so deno task runs package.json's scripts, which start with env node", () => {
  assert.equal(denoJson.tasks, undefined);
  // `deno task` resolves a bare `deno` or `node` to node_modules/.bin and runs that binary as JavaScript;
  // `env node` finds the pinned node binary on the PATH that npm and deno task both set.
  for (const [name, script] of Object.entries(packageJson.scripts as Record<string, string>)) {
    assert.match(script, /^env node tools\/\S+\.mjs\b/, `script ${name}`);
  }
});

test("deno task demo runs the demo, as npm run demo does", async () => {
  const r = await run([RUNTIMES.deno, "task", "demo"], { timeout: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /the segment now holds \[11, 12, 13, 14, 15\]/);
  assert.match(r.stdout, /result: 9 \(expected 9\)/);
}, { skip: runtime !== "deno" && "runs once, in the Deno pass" });

test("every subpath export exists, and ./mutex loads neither the scope nor the command line", async () => {
  for (const [name, file] of Object.entries(denoJson.exports as Record<string, string>)) {
    assert.ok(existsSync(join(ROOT, file)), `${name} -> ${file}`);
  }
  const r = await run([RUNTIMES.deno, "info", "--json", join(ROOT, "mutex.ts")]);
  assert.equal(r.code, 0, r.stderr);
  const loaded: string[] = JSON.parse(r.stdout).modules.map((m: { specifier: string }) => m.specifier);
  assert.ok(loaded.some((s) => s.endsWith("/mutex.ts")));
  assert.ok(!loaded.some((s) => s.endsWith("/scope.ts") || s.includes("/cli/")), loaded.join("\n"));
}, { skip: runtime !== "deno" && "runs once, in the Deno pass (deno info)" });
