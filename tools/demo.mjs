#!/usr/bin/env node
// `npm run demo` (or `deno task demo`): the demo under the pinned Deno (a Bun process joins it), then
// three processes, Deno and Bun mixed, incrementing one value under a Mutex.
//
// The package.json scripts start with `node`, never with `deno` or `bun`: `deno task` resolves a bare
// `deno` to node_modules/.bin/deno and tries to run that binary as JavaScript, so a script naming a runtime
// would mean one thing under `npm run` and fail under `deno task`.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const local = join(root, "node_modules", ".bin", "deno");
const deno = existsSync(local) ? local : "deno";
for (const example of ["examples/demo.ts", "examples/increment_under_lock.ts"]) {
  const r = spawnSync(deno, ["run", "-A", example], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
