// The npm package for Node, as a Node user gets it: built by tools/build_npm.mjs, packed with `npm pack`,
// installed from the tarball into a new project (offline), type-checked there with tsc, and run under the
// pinned Node with --experimental-ffi: the package's entry points, an async wait (its worker thread is a
// file of the package) and the `shm` command.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtime, test } from "./_harness.ts";
import { hasCommand, NODE_FLAGS, ROOT, run, runOk, RUNTIMES } from "./_process.ts";

const MAIN = `import { SharedMemory, TimeoutError } from "@x/shm";
import { Channel } from "@x/shm/channel";
import { Mutex } from "@x/shm/mutex";

using shm = SharedMemory.create({ size: 4096 });
shm.buf[0] = 42;
{
  using guard = await new Mutex(shm, 64).lock();
  console.log(\`\${shm.name} holds \${shm.buf[0]}, locked \${guard.ownerDied ? "after a death" : "cleanly"}\`);
}
using ch = Channel.create({ capacity: 1024 });
try {
  await ch.receive({ timeout: 50 });
} catch (error) {
  console.log(\`receive: \${error instanceof TimeoutError ? "timed out" : String(error)}\`);
}
ch.unlink();
`;

test("the npm package: packed, installed from its tarball, type-checked and run under Node", async () => {
  const dir = mkdtempSync(join(tmpdir(), "shm-npm-"));
  try {
    const build = join(dir, "build");
    await runOk([RUNTIMES.node, join(ROOT, "tools", "build_npm.mjs"), "--out", build], { timeout: 120_000 });
    await runOk(["npm", "pack", "--pack-destination", dir, "--silent"], { cwd: build, timeout: 120_000 });
    const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
    assert.ok(tarball, "npm pack made a tarball");

    const app = join(dir, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), '{ "name": "app", "private": true, "type": "module" }\n');
    await runOk(["npm", "install", "--offline", "--no-audit", "--no-fund", join(dir, tarball)], {
      cwd: app,
      timeout: 120_000,
    });
    writeFileSync(join(app, "main.ts"), MAIN);
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          target: "ESNext",
          strict: true,
          noEmit: true,
          erasableSyntaxOnly: true,
          types: ["node"],
          typeRoots: [join(ROOT, "node_modules", "@types")],
        },
        files: ["main.ts"],
      }),
    );
    await runOk([join(ROOT, "node_modules", ".bin", "tsc"), "-p", "tsconfig.json", "--pretty", "false"], {
      cwd: app,
      timeout: 120_000,
    });

    const r = await run([RUNTIMES.node, ...NODE_FLAGS, "main.ts"], { cwd: app });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^psm_[0-9a-f]{8} holds 42, locked cleanly\nreceive: timed out\n$/);

    // The command, through the bin link npm made (it starts `node` from the PATH: the pinned one).
    const path = `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH ?? ""}`;
    const help = await run([join(app, "node_modules", ".bin", "shm"), "--help"], {
      cwd: app,
      env: { PATH: path },
    });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /\bls\b/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, {
  skip: (runtime !== "node" && "runs once, in the Node pass") ||
    (!hasCommand("npm") && "npm is not installed"),
  timeout: 300_000,
});
