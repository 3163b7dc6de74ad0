#!/usr/bin/env node
// Builds the npm package for Node: JavaScript and declarations compiled from the module's .ts files by the
// pinned TypeScript, with `rewriteRelativeImportExtensions` (an import of "./mutex.ts" becomes "./mutex.js").
// Deno and Bun need no build: they import the .ts files. Node strips types from .ts files too, but not
// inside node_modules, which is where an npm package lands.
//
// Usage: node tools/build_npm.mjs [--out DIR]   (default: dist/npm, which git ignores)
//
// The package: one subpath export per entry of deno.json's exports (`@x/shm/mutex` and so on), each with its
// .d.ts; the `shm` command (cli/shm.js); engines node >= 26.1. It runs under `node --experimental-ffi`.
// tests/install_test.ts packs it with `npm pack`, installs the tarball into a new project and runs it.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const outIndex = args.indexOf("--out");
const out = resolve(outIndex >= 0 ? args[outIndex + 1] : join(root, "dist", "npm"));

const deno = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
/** Files that nothing imports but the package needs: the wait worker (`_host.ts` starts it by URL), the command. */
const extra = ["./_sync/futex_worker.ts", "./cli/shm.ts"];
const sources = [...new Set([...Object.values(deno.exports), ...extra])].map((f) => join(root, f));

rmSync(out, { recursive: true, force: true });
const work = mkdtempSync(join(tmpdir(), "shm-build-npm-"));
try {
  // The settings of a Node user's project (tools/types/node/tsconfig.json), emitting.
  const config = join(work, "tsconfig.json");
  writeFileSync(
    config,
    JSON.stringify({
      extends: join(root, "tools", "types", "node", "tsconfig.json"),
      compilerOptions: {
        noEmit: false,
        declaration: true,
        rewriteRelativeImportExtensions: true,
        rootDir: root,
        outDir: out,
        removeComments: false,
        typeRoots: [join(root, "node_modules", "@types")],
      },
      files: sources,
    }),
  );
  const tscPath = join(root, "node_modules", ".bin", "tsc");
  const tsc = spawnSync(existsSync(tscPath) ? tscPath : "tsc", ["-p", config, "--pretty", "false"], {
    stdio: "inherit",
  });
  if (tsc.status !== 0) {
    console.error(`tsc failed (exit ${tsc.status ?? tsc.signal})`);
    process.exit(1);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

// The command: Node with node:ffi instead of Bun.
const shm = join(out, "cli", "shm.js");
writeFileSync(
  shm,
  readFileSync(shm, "utf8").replace(/^#!.*\n/, "#!/usr/bin/env -S node --experimental-ffi --no-warnings\n"),
);
chmodSync(shm, 0o755);

const js = (f) => f.replace(/^\.\//, "./").replace(/\.ts$/, ".js");
const exports = {};
for (const [key, file] of Object.entries(deno.exports)) {
  exports[key] = { types: js(file).replace(/\.js$/, ".d.ts"), default: js(file) };
}
const pkg = {
  name: deno.name,
  version: deno.version,
  description:
    "Shared memory, locks and channels across processes for Node, Deno and Bun, in pure TypeScript " +
    "through each runtime's FFI (Node: node:ffi, run with --experimental-ffi)",
  license: deno.license,
  type: "module",
  exports,
  bin: { shm: "cli/shm.js" },
  engines: { node: ">=26.1.0" },
};
writeFileSync(join(out, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
for (const f of ["README.md", "LICENSE"]) copyFileSync(join(root, f), join(out, f));
console.log(`npm package ${pkg.name}@${pkg.version} built in ${out}`);
