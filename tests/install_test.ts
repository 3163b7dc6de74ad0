// The README's "Get it" recipes work as written, offline: a project next to a checkout (../shm) with the
// README's deno.json (Deno) or tsconfig.json (Bun) imports "@x/shm" and a subpath, and runs the README's
// first example with only the flags the README says it needs.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { markdownBlocks } from "./_blocks.ts";
import { runtime, test } from "./_harness.ts";
import { NODE_FLAGS, ROOT, run, RUNTIMES } from "./_process.ts";

/** The README's `jsonc` block whose first line is `// <file>`. */
function recipe(file: string): string {
  const text = readFileSync(join(ROOT, "README.md"), "utf8");
  const m = new RegExp("```jsonc\\n(// " + file.replace(".", "\\.") + "\\n[\\s\\S]*?)```").exec(text);
  assert.ok(m, `README.md has a jsonc block starting with // ${file}`);
  return m[1]!; // the group always takes part in a match
}

const config = runtime === "deno" ? "deno.json" : "tsconfig.json";

test(
  "node: a project next to a checkout imports its .ts files by path (Node strips their types)",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "shm-install-"));
    try {
      symlinkSync(ROOT, join(dir, "shm"));
      const app = join(dir, "app");
      mkdirSync(app);
      const intro = markdownBlocks("README.md")[0];
      assert.ok(intro, "README.md has a ts block");
      writeFileSync(
        join(app, "main.ts"),
        intro.code.replace(`from "@x/shm"`, `from "../shm/mod.ts"`) +
          `import { Mutex } from "../shm/mutex.ts";\nconsole.log(typeof Mutex);\n`,
      );
      const r = await run([RUNTIMES.node, ...NODE_FLAGS, "main.ts"], { cwd: app });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^psm_[0-9a-f]{8} holds 42\nfunction\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { skip: runtime !== "node" && "runs in the Node pass (the npm package: tests/npm_package_test.ts)" },
);

test(
  `${runtime}: a project with the README's ${config} imports @x/shm from a checkout next to it`,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "shm-install-"));
    try {
      symlinkSync(ROOT, join(dir, "shm")); // the checkout, as ../shm from the project
      const app = join(dir, "app");
      mkdirSync(app);
      writeFileSync(join(app, config), recipe(config));
      if (runtime === "bun") writeFileSync(join(app, "package.json"), '{ "name": "app", "private": true }\n');
      const intro = markdownBlocks("README.md")[0];
      assert.ok(intro, "README.md has a ts block");
      writeFileSync(
        join(app, "main.ts"),
        `${intro.code}import { Mutex } from "@x/shm/mutex";\nconsole.log(typeof Mutex);\n`,
      );
      const cmd = runtime === "deno"
        ? [RUNTIMES.deno, "run", "--allow-ffi", "--no-prompt", "main.ts"]
        : [RUNTIMES.bun, "main.ts"];
      const r = await run(cmd, { cwd: app, env: { DENO_NO_UPDATE_CHECK: "1" } });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^psm_[0-9a-f]{8} holds 42\nfunction\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { skip: runtime === "node" && "Deno's and Bun's recipes: the Node pass tests Node's" },
);
