// File-backed SharedMemory: create/open/flush/unlink, persistence across processes, read-only
// handles, bad paths and short files, Deno's file permissions, several Deno/Bun processes on one file.
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import {
  AlreadyExistsError,
  NotFoundError,
  PermissionDeniedError,
  SharedMemory,
  type ShmError,
} from "../mod.ts";
import { test } from "./_harness.ts";
import { runtime } from "./_harness.ts";
import { BOTH, hasCommand, isRoot, OTHER, ROOT, run, RUNTIMES, start, tsCommand } from "./_process.ts";

const PEER = "tests/children/file_peer.ts";
const onPosix = process.platform !== "win32";
const noSetpriv = !onPosix
  ? "POSIX users only"
  : !isRoot()
  ? "needs root (to run a child as nobody)"
  : !hasCommand("setpriv")
  ? "setpriv (util-linux) is not installed"
  : false;

/** A fresh temp folder, removed by `done`. */
function tempDir(): string {
  return mkdtempSync(`${tmpdir()}/shm-file-`);
}

/** A fresh temp folder, removed when the `using` block ends. */
function tempFolder(): { path: string } & Disposable {
  const path = tempDir();
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

function lastJson(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split("\n").pop()!);
}

test("create maps a new zero-filled file of the size asked, with the exact mode; open sees it live", () => {
  using dir = tempFolder();
  const path = `${dir.path}/data.bin`;
  {
    using m = SharedMemory.create({ backend: "file", path, size: 100_000, mode: 0o640 });
    assert.equal(m.backend, "file");
    assert.equal(m.path, path);
    assert.equal(m.name, path);
    assert.equal(m.key, undefined);
    assert.equal(m.id, undefined);
    assert.equal(m.size, 100_000);
    assert.equal(m.created, true);
    assert.ok(m.buf.every((b) => b === 0));
    const st = statSync(path);
    assert.ok(st.isFile());
    assert.equal(st.size, 100_000);
    if (onPosix) assert.equal(st.mode & 0o777, 0o640);
    {
      using n = SharedMemory.open({ backend: "file", path });
      assert.equal(n.size, 100_000);
      assert.equal(n.created, false);
      m.buf[99_999] = 5;
      assert.equal(n.buf[99_999], 5);
      n.view(Float64Array)[7] = Math.LN2;
      assert.equal(m.view(Float64Array, 56, 1)[0], Math.LN2);
    }
    using part = SharedMemory.open({ backend: "file", path, size: 4096 });
    assert.equal(part.size, 4096, "size maps only the start of the file");
  }
  assert.equal(readFileSync(path)[99_999], 5, "the data is in the file after close");
});

test("flush writes to the file; a read-only handle's flush does nothing; other backends refuse it", () => {
  using tmp = tempFolder();
  const dir = tmp.path;
  const path = `${dir}/flush.bin`;
  const m = SharedMemory.create({ backend: "file", path, size: 8192 });
  new TextEncoder().encodeInto("flushed", m.buf.subarray(4096));
  m.flush();
  assert.equal(readFileSync(path).subarray(4096, 4103).toString(), "flushed");
  const ro = SharedMemory.open({ backend: "file", path, readOnly: true });
  ro.flush();
  ro.close();
  m.close();
  assert.throws(() => m.flush(), (e: Error) => e instanceof TypeError && /closed/.test(e.message));
  using posix = SharedMemory.create({ size: 8 });
  assert.throws(
    () => posix.flush(),
    (e: Error) => e instanceof TypeError && /only file-backed/.test(e.message),
  );
  using other = SharedMemory.open({ backend: "file", path });
  assert.throws(
    () => other.stat(),
    (e: Error) => e instanceof TypeError && /only System V/.test(e.message),
  );
});

test("create on an existing path is AlreadyExistsError and leaves the file as it was", () => {
  using tmp = tempFolder();
  const dir = tmp.path;
  const path = `${dir}/taken.bin`;
  writeFileSync(path, "precious");
  assert.throws(
    () => SharedMemory.create({ backend: "file", path, size: 4096 }),
    (e: ShmError) =>
      e instanceof AlreadyExistsError && e.code === "EEXIST" && e.syscall === "open" &&
      e.message.includes(path),
  );
  assert.equal(readFileSync(path, "utf8"), "precious");
  assert.throws(() => SharedMemory.create({ backend: "file", path: dir, size: 4096 }), AlreadyExistsError);
});

test("a directory, a missing file, an uncreatable path, an empty or short file: clear errors", () => {
  using tmp = tempFolder();
  const dir = tmp.path;
  for (const readOnly of [false, true]) {
    assert.throws(
      () => SharedMemory.open({ backend: "file", path: dir, readOnly }),
      (e: ShmError) => e.code === "EISDIR" && /directory/.test(e.message),
      `open a directory, readOnly ${readOnly}`,
    );
  }
  assert.throws(
    () => SharedMemory.open({ backend: "file", path: `${dir}/missing` }),
    (e: ShmError) => e instanceof NotFoundError && e.code === "ENOENT",
  );
  assert.throws(
    () => SharedMemory.create({ backend: "file", path: `${dir}/no/such/folder.bin`, size: 64 }),
    (e: ShmError) => e instanceof NotFoundError && /folder does not exist/.test(e.message),
  );
  writeFileSync(`${dir}/plain`, "x");
  assert.throws(
    () => SharedMemory.create({ backend: "file", path: `${dir}/plain/under-a-file.bin`, size: 64 }),
    (e: ShmError) => e.code === "ENOTDIR",
  );
  writeFileSync(`${dir}/empty`, "");
  assert.throws(
    () => SharedMemory.open({ backend: "file", path: `${dir}/empty` }),
    (e: ShmError) => e.code === "EINVAL" && /empty/.test(e.message),
  );
  writeFileSync(`${dir}/short`, new Uint8Array(100));
  assert.throws(
    () => SharedMemory.open({ backend: "file", path: `${dir}/short`, size: 4096 }),
    (e: ShmError) => e.code === "EINVAL" && /100 bytes long, shorter than the 4096 bytes/.test(e.message),
  );
  assert.equal(statSync(`${dir}/short`).size, 100, "the short file is left as it was");
  const whole = SharedMemory.open({ backend: "file", path: `${dir}/short` });
  assert.equal(whole.size, 100);
  whole.close();
  if (onPosix) {
    assert.throws(
      () => SharedMemory.open({ backend: "file", path: "/dev/null" }),
      (e: ShmError) => e.code === "EINVAL" && /not a regular file/.test(e.message),
    );
  }
  assert.deepEqual(
    readdirSync(dir).sort(),
    ["empty", "plain", "short"],
    "nothing was created by the failures",
  );
});

test("a FIFO, a device or a socket is refused at once, read-only too; symbolic links are followed", () => {
  using dir = tempFolder();
  const fifo = `${dir.path}/fifo`;
  execFileSync("mkfifo", [fifo]);
  // Without O_NONBLOCK, open(2) of a FIFO with no writer blocks forever: this test would hang.
  for (const readOnly of [true, false]) {
    assert.throws(
      () => SharedMemory.open({ backend: "file", path: fifo, readOnly }),
      (e: ShmError) => e.code === "EINVAL" && /not a regular file/.test(e.message),
      `FIFO, readOnly ${readOnly}`,
    );
  }
  symlinkSync(fifo, `${dir.path}/to-fifo`);
  assert.throws(
    () => SharedMemory.open({ backend: "file", path: `${dir.path}/to-fifo`, readOnly: true }),
    (e: ShmError) => e.code === "EINVAL",
  );
  for (const device of ["/dev/null", "/dev/zero", "/dev/tty"]) {
    if (!existsSync(device)) continue;
    assert.throws(
      () => SharedMemory.open({ backend: "file", path: device, readOnly: true }),
      (e: ShmError) => e instanceof Error && /regular file|ENXIO|EACCES/.test(e.message),
      device,
    );
  }
  writeFileSync(`${dir.path}/data`, new Uint8Array(64).fill(7));
  symlinkSync(`${dir.path}/data`, `${dir.path}/link`);
  {
    using linked = SharedMemory.open({ backend: "file", path: `${dir.path}/link`, readOnly: true });
    assert.equal(linked.buf[0], 7, "a link to a regular file maps the file");
  }
  assert.throws(
    () => SharedMemory.create({ backend: "file", path: `${dir.path}/link`, size: 64 }),
    AlreadyExistsError,
    "create never follows a link: O_EXCL refuses any existing name",
  );
}, { skip: !onPosix && "POSIX FIFOs and links" });

test("unlinkOnDispose leaves alone a file someone re-created at the path (device and inode differ)", () => {
  using dir = tempFolder();
  const path = `${dir.path}/recreated.bin`;
  {
    using _first = SharedMemory.create({ backend: "file", path, size: 64, unlinkOnDispose: true });
    rmSync(path);
    writeFileSync(path, "newcomer");
  }
  assert.equal(readFileSync(path, "utf8"), "newcomer", "the newcomer's file is still there");
  {
    using _own = SharedMemory.create({
      backend: "file",
      path: `${dir.path}/own.bin`,
      size: 64,
      unlinkOnDispose: true,
    });
  }
  assert.equal(existsSync(`${dir.path}/own.bin`), false, "its own file is removed");
});

test("bad paths, sizes and options are TypeError/RangeError before touching anything", () => {
  const bad = (options: unknown) => () => SharedMemory.create(options as never);
  assert.throws(bad({ backend: "file", size: 64 }), TypeError);
  assert.throws(bad({ backend: "file", path: 5, size: 64 }), TypeError);
  assert.throws(bad({ backend: "file", path: "", size: 64 }), TypeError);
  assert.throws(bad({ backend: "file", path: "a\0b", size: 64 }), TypeError);
  assert.throws(bad({ backend: "file", path: "./x.bin" }), TypeError);
  assert.throws(bad({ backend: "file", path: "./x.bin", size: -1 }), RangeError);
  assert.throws(bad({ backend: "file", path: "./x.bin", size: 64, mode: 0o1000 }), RangeError);
  assert.throws(bad({ backend: "file", path: "./x.bin", size: 64, unlinkOnDispose: "yes" }), TypeError);
  const open = (options: unknown) => () => SharedMemory.open(options as never);
  assert.throws(open({ backend: "file" }), TypeError);
  assert.throws(open({ backend: "file", path: "./x.bin", size: 0 }), RangeError);
  assert.throws(open({ backend: "file", path: "./x.bin", readOnly: 1 }), TypeError);
  assert.throws(open({ backend: "files", path: "./x.bin" }), TypeError);
  assert.equal(existsSync("./x.bin"), false);
});

test("unlink removes the file; the mapping stays valid; a second unlink is NotFoundError", () => {
  using tmp = tempFolder();
  const dir = tmp.path;
  const path = `${dir}/gone.bin`;
  const m = SharedMemory.create({ backend: "file", path, size: 4096 });
  const n = SharedMemory.open({ backend: "file", path });
  m.unlink();
  assert.equal(existsSync(path), false);
  m.buf[1] = 8;
  assert.equal(n.buf[1], 8, "mappings of a removed file are still shared");
  assert.throws(() => m.unlink(), NotFoundError);
  assert.throws(() => n.unlink(), (e: ShmError) => e instanceof NotFoundError && e.syscall === "unlink");
  m.close();
  n.close();
});

test("dispose keeps the file unless unlinkOnDispose is true; close detaches buf", () => {
  using tmp = tempFolder();
  const dir = tmp.path;
  let bytes: Uint8Array;
  {
    using kept = SharedMemory.create({ backend: "file", path: `${dir}/kept.bin`, size: 64 });
    bytes = kept.buf;
    kept.buf[0] = 1;
  }
  assert.equal(bytes.length, 0);
  assert.equal(readFileSync(`${dir}/kept.bin`)[0], 1);
  {
    using _temp = SharedMemory.create({
      backend: "file",
      path: `${dir}/temp.bin`,
      size: 64,
      unlinkOnDispose: true,
    });
  }
  assert.equal(existsSync(`${dir}/temp.bin`), false);
  {
    using _opened = SharedMemory.open({ backend: "file", path: `${dir}/kept.bin` });
  }
  assert.equal(existsSync(`${dir}/kept.bin`), true, "an opened handle never removes the file");
});

test("read-only: writes stay private, never reach the file, never crash", () => {
  using tmp = tempFolder();
  const dir = tmp.path;
  const path = `${dir}/ro.bin`;
  const m = SharedMemory.create({ backend: "file", path, size: 8192 });
  m.buf.set([1, 2, 3]);
  const ro = SharedMemory.open({ backend: "file", path, readOnly: true });
  assert.equal(ro.readOnly, true);
  assert.equal(ro.buf, ro.buf, "a file's read-only buf is the live mapping");
  m.buf[5000] = 9;
  assert.equal(ro.buf[5000], 9, "untouched pages follow the file");
  ro.buf[0] = 200;
  assert.equal(m.buf[0], 1);
  ro.close();
  m.close();
  assert.deepEqual(Array.from(readFileSync(path).subarray(0, 3)), [1, 2, 3]);
});

for (const rt of BOTH) {
  test(`${rt}: a process writing through a read-only handle does not die, and the file is unchanged`, async () => {
    const dir = tempDir();
    const path = `${dir}/rowrite.bin`;
    try {
      const m = SharedMemory.create({ backend: "file", path, size: 4096 });
      const original = m.buf.map((_, i) => (i * 13) & 0xff);
      m.buf.set(original);
      m.flush();
      const r = await run(tsCommand(rt, PEER, ["rowrite", path]));
      assert.equal(r.code, 0, `exit ${r.code ?? r.signal}\n${r.stderr}`);
      const seen = lastJson(r.stdout);
      assert.deepEqual(seen.sees, [0xee, 0xdd, 0xdd, 0xdd], "the child's writes stayed in its private pages");
      assert.equal(seen.readOnly, true);
      assert.deepEqual(m.buf, original);
      m.close();
      assert.deepEqual(new Uint8Array(readFileSync(path)), original);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

for (const [writer, reader] of [[runtime, OTHER], [OTHER, runtime]] as const) {
  test(`a ${writer} process writes and exits; a new ${reader} process reads it back from the file`, async () => {
    const dir = tempDir();
    const path = `${dir}/persist.bin`;
    try {
      const w = await run(tsCommand(writer, PEER, ["write", path, `written by ${writer}, ünïcode`]));
      assert.equal(w.code, 0, w.stderr);
      assert.equal(statSync(path).size, 4096);
      const r = await run(tsCommand(reader, PEER, ["read", path]));
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(lastJson(r.stdout), { size: 4096, text: `written by ${writer}, ünïcode` });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test(
  "several Deno and Bun processes share one file mapping: Atomics.add from all of them adds up",
  async () => {
    const dir = tempDir();
    const path = `${dir}/counter.bin`;
    const m = SharedMemory.create({ backend: "file", path, size: 4096 });
    const cell = m.view(Int32Array, 0, 3);
    const n = 100_000;
    const children = (["deno", "bun", "deno", "bun"] as const).map((rt) =>
      start(tsCommand(rt, PEER, ["add", path, String(n)]))
    );
    try {
      const deadline = Date.now() + 30_000;
      while (Atomics.load(cell, 1) < children.length && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(Atomics.load(cell, 1), children.length, "every child mapped the file");
      Atomics.store(cell, 2, 1);
      for (const child of children) {
        const r = await child.done;
        assert.equal(r.code, 0, r.stderr);
      }
      assert.equal(Atomics.load(cell, 0), children.length * n);
      m.flush();
      const file = readFileSync(path); // under Node, a view into a larger pooled buffer
      assert.equal(new DataView(file.buffer, file.byteOffset).getInt32(0, true), children.length * n);
    } finally {
      Atomics.store(cell, 2, 1);
      for (const child of children) child.kill("SIGKILL");
      m.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { timeout: 60_000 },
);

/** Runs the peer under Deno with exactly the permission flags given. */
async function denoWith(flags: string[], args: string[]): Promise<Record<string, unknown>> {
  const r = await run([RUNTIMES.deno, "run", "--quiet", ...flags, `${ROOT}/${PEER}`, ...args]);
  assert.equal(r.code, 0, `deno ${flags.join(" ")}: exit ${r.code ?? r.signal}\n${r.stderr}`);
  return lastJson(r.stdout);
}

test(
  "Deno: without --allow-read/--allow-write for the path, a PermissionDeniedError and nothing touched",
  async () => {
    const dir = tempDir();
    const path = `${dir}/perm.bin`;
    try {
      const ffiOnly = await denoWith(["--allow-ffi"], ["try", "create", path]);
      assert.equal(ffiOnly.error, "PermissionDeniedError", JSON.stringify(ffiOnly));
      assert.equal(ffiOnly.code, "EACCES");
      assert.equal(ffiOnly.syscall, "Deno.permissions");
      assert.match(String(ffiOnly.message), /no read permission .*--allow-read/);
      assert.equal(existsSync(path), false);

      const readOnly = await denoWith(["--allow-ffi", `--allow-read=${dir}`], ["try", "create", path]);
      assert.equal(readOnly.error, "PermissionDeniedError");
      assert.match(String(readOnly.message), /no write permission .*--allow-write/);
      assert.equal(existsSync(path), false);

      writeFileSync(path, new Uint8Array(4096));
      assert.deepEqual(await denoWith(["--allow-ffi", `--allow-read=${dir}`], ["try", "openro", path]), {
        ok: true,
        size: 4096,
      });
      const rw = await denoWith(["--allow-ffi", `--allow-read=${dir}`], ["try", "open", path]);
      assert.equal(rw.error, "PermissionDeniedError");
      const none = await denoWith(["--allow-ffi"], ["try", "openro", path]);
      assert.equal(none.error, "PermissionDeniedError");
      const ftokDenied = await denoWith(["--allow-ffi"], ["ftok", path]);
      assert.equal(ftokDenied.error, "PermissionDeniedError");
      assert.equal(
        typeof (await denoWith(["--allow-ffi", `--allow-read=${path}`], ["ftok", path])).key,
        "number",
      );
      assert.deepEqual(
        await denoWith(["--allow-ffi", `--allow-read=${dir}`, `--allow-write=${dir}`], [
          "try",
          "create",
          `${dir}/ok.bin`,
        ]),
        { ok: true, size: 4096 },
      );
      assert.equal(existsSync(`${dir}/ok.bin`), false, "the child removed what it created");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { timeout: 60_000 },
);

for (const rt of BOTH) {
  test(
    `${rt} as another user: a folder it may not write is PermissionDeniedError, nothing left`,
    async () => {
      const dir = tempDir();
      chmodSync(dir, 0o755);
      const home = mkdtempSync(`${tmpdir()}/shm-file-nobody-`);
      chmodSync(home, 0o777);
      try {
        mkdirSync(`${dir}/locked`, { mode: 0o755 });
        writeFileSync(`${dir}/secret.bin`, new Uint8Array(64), { mode: 0o600 });
        const cmd = (args: string[]) => {
          const c = tsCommand(rt, PEER, args);
          if (rt === "deno") c.splice(2, 0, "--no-lock", "--no-config");
          return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", ...c];
        };
        const env = { HOME: home, DENO_DIR: `${home}/deno`, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" };
        for (
          const args of [["try", "create", `${dir}/locked/new.bin`], ["try", "openro", `${dir}/secret.bin`]]
        ) {
          const r = await run(cmd(args), { cwd: home, env });
          assert.equal(r.code, 0, `${rt} as nobody: exit ${r.code ?? r.signal}\n${r.stderr}`);
          const answer = lastJson(r.stdout);
          assert.equal(answer.error, PermissionDeniedError.name, JSON.stringify(answer));
          assert.equal(answer.code, "EACCES");
          assert.equal(answer.syscall, "open");
        }
        assert.equal(existsSync(`${dir}/locked/new.bin`), false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        rmSync(home, { recursive: true, force: true });
      }
    },
    { skip: noSetpriv },
  );
}
