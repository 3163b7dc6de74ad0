// Node-only behaviour: the error that says what Node needs (node:ffi, --allow-ffi and --allow-worker under
// the permission model), and file permissions checked by shm itself, since FFI bypasses Node's.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtime, test } from "./_harness.ts";
import { ROOT, run, RUNTIMES } from "./_process.ts";

const PEER = `${ROOT}/tests/children/node_peer.ts`;
const skip = runtime !== "node" && "runs once, in the Node pass";

/** Runs the peer under the pinned Node with `flags`; returns its exit code and the JSON line it printed. */
async function peer(
  flags: string[],
  args: string[],
): Promise<{ code: number | null; out: Record<string, unknown> }> {
  const r = await run([RUNTIMES.node, "--no-warnings", ...flags, PEER, ...args]);
  const last = r.stdout.trim().split("\n").pop() ?? "";
  assert.ok(last.startsWith("{"), `no JSON from the peer\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return { code: r.code, out: JSON.parse(last) };
}

test("node without node:ffi: the module refuses to load and names the flag", async () => {
  const r = await peer(["--no-experimental-ffi"], ["load"]);
  assert.equal(r.code, 1);
  assert.match(
    String(r.out.message),
    /^Cannot load shm: under Node\.js it calls the operating system through node:ffi, which needs the --experimental-ffi flag \(this Node 26\.\d+\.\d+ runs without it\): run node --experimental-ffi$/,
  );
  assert.deepEqual(await peer(["--experimental-ffi"], ["load"]), { code: 0, out: { ok: true } });
}, { skip });

test("node --permission: FFI needs --allow-ffi, async waits --allow-worker; both are named", async () => {
  const read = `--allow-fs-read=${ROOT}`;
  const noFfi = await peer(["--experimental-ffi", "--permission", read], ["load"]);
  assert.equal(noFfi.code, 1);
  assert.match(
    String(noFfi.out.message),
    /^Cannot load .*: shm calls the operating system through FFI, and Node's permission model \(--permission\) is on: run Node with --allow-ffi too$/,
  );
  const ffi = ["--experimental-ffi", "--permission", read, "--allow-ffi"];
  assert.deepEqual(await peer(ffi, ["load"]), { code: 0, out: { ok: true } });
  const noWorker = await peer(ffi, ["wait"]);
  assert.equal(noWorker.code, 1);
  assert.match(String(noWorker.out.message), /run Node with --allow-worker too \(or use the \*Sync forms\)$/);
  assert.deepEqual(await peer([...ffi, "--allow-worker"], ["wait"]), { code: 0, out: { ok: "timed out" } });
}, { skip });

test(
  "node --permission: the file backend needs fs permissions for the path, checked before any call",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "shm-node-perm-"));
    try {
      const path = join(dir, "seg.bin");
      const ffi = ["--experimental-ffi", "--permission", `--allow-fs-read=${ROOT}`, "--allow-ffi"];
      const denied = await peer(ffi, ["file", path]);
      assert.equal(denied.code, 1);
      assert.equal(denied.out.error, "PermissionDeniedError");
      assert.equal(denied.out.code, "EACCES");
      assert.equal(denied.out.syscall, "process.permission");
      assert.match(String(denied.out.message), /run with --allow-fs-read=/);
      const allowed = await peer([...ffi, `--allow-fs-read=${dir}`, `--allow-fs-write=${dir}`], [
        "file",
        path,
      ]);
      assert.deepEqual(allowed, { code: 0, out: { ok: true } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { skip },
);
