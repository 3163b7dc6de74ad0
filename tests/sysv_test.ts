// System V shared memory through SharedMemory: keys, ids, stat, ipcs, removal while attached, read-only
// attachments, bad input, other users, C programs and several Deno/Bun processes on one segment.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { ftok, NotFoundError, PermissionDeniedError, SharedMemory, type ShmError } from "../mod.ts";
import { test } from "./_harness.ts";
import { addressIn } from "../_internal.ts";
import { runtime } from "./_harness.ts";
import {
  asNobody,
  BOTH,
  hasCommand,
  isRoot,
  ROOT,
  run,
  runOk,
  type Runtime,
  start,
  tsCommand,
} from "./_process.ts";

const PEER = "tests/children/sysv_peer.ts";
const notLinux = process.platform !== "linux" && "System V checks here read /proc/sysvipc (Linux)";
const noGcc = notLinux || (!hasCommand("gcc") && "gcc is not installed");
const noIpcs = notLinux || (!hasCommand("ipcs") && "ipcs (util-linux) is not installed");
const notRoot = notLinux ||
  (!isRoot() && "needs root (to run a child as nobody, or a private IPC namespace)");
const noSetpriv = notRoot || (!hasCommand("setpriv") && "setpriv (util-linux) is not installed");
const noUnshare = notRoot || (!hasCommand("unshare") && "unshare (util-linux) is not installed");

/** One row of /proc/sysvipc/shm, by shmid. */
interface ProcRow {
  key: number;
  shmid: number;
  perms: number;
  size: number;
  cpid: number;
  lpid: number;
  nattch: number;
  uid: number;
}

function procRow(id: number): ProcRow | undefined {
  // Read here, not by a child: a child that Node forks holds a copy of the attachments until it
  // execs, and becomes the segment's last pid.
  const text = readFileSync("/proc/sysvipc/shm", "utf8");
  for (const line of text.trim().split("\n").slice(1)) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f[1] !== id) continue;
    return {
      key: f[0]!,
      shmid: f[1]!,
      perms: parseInt(line.trim().split(/\s+/)[2]!, 8),
      size: f[3]!,
      cpid: f[4]!,
      lpid: f[5]!,
      nattch: f[6]!,
      uid: f[7]!,
    };
  }
  return undefined;
}

/** A fresh file for ftok, so every test has keys of its own. */
function keyFile(): { dir: string; path: string } {
  const dir = mkdtempSync(`${tmpdir()}/shm-sysv-`);
  const path = `${dir}/key`;
  writeFileSync(path, "ftok anchor\n");
  return { dir, path };
}

/** Compiles tests/c/<name>.c into a fresh folder under tests/.build/; returns the binary. */
function compile(name: string, dir: string): string {
  const out = `${dir}/${name}`;
  execFileSync("gcc", ["-O1", "-Wall", "-Werror", "-o", out, `${ROOT}/tests/c/${name}.c`]);
  return out;
}

function buildDir(): string {
  mkdirSync(`${ROOT}/tests/.build`, { recursive: true });
  return mkdtempSync(`${ROOT}/tests/.build/sysv-`);
}

test("create with a key, open by key and by id: one live segment, named by its key", () => {
  const { dir, path } = keyFile();
  const key = ftok(path, 1);
  const a = SharedMemory.create({ backend: "sysv", key, size: 5000, mode: 0o640 });
  try {
    assert.equal(a.backend, "sysv");
    assert.equal(a.key, key);
    assert.equal(typeof a.id, "number");
    assert.equal(a.path, undefined);
    assert.equal(a.size, 5000);
    assert.equal(a.created, true);
    assert.equal(a.readOnly, false);
    assert.equal(a.name, "0x" + (key >>> 0).toString(16).padStart(8, "0"));
    assert.ok(a.buf.every((x) => x === 0));
    const byKey = SharedMemory.open({ backend: "sysv", key });
    const byId = SharedMemory.open({ backend: "sysv", id: a.id! });
    try {
      assert.equal(byKey.size, 5000);
      assert.equal(byKey.id, a.id);
      assert.equal(byId.key, key);
      assert.equal(byKey.created, false);
      a.buf[4999] = 42;
      assert.equal(byKey.buf[4999], 42);
      byId.view(Float64Array)[3] = Math.SQRT2;
      assert.equal(a.view(Float64Array, 24, 1)[0], Math.SQRT2);
      assert.equal(a.stat().attachCount, 3);
    } finally {
      byKey.close();
      byId.close();
    }
    assert.equal(a.stat().attachCount, 1);
  } finally {
    a.close();
    a.unlink();
    rmSync(dir, { recursive: true });
  }
  assert.throws(() => SharedMemory.open({ backend: "sysv", key }), NotFoundError);
});

test(
  "stat() matches /proc/sysvipc/shm: size, mode, owner, pids, attach count, times",
  () => {
    const before = Math.floor(Date.now() / 1000) - 1;
    using shm = SharedMemory.create({ backend: "sysv", size: 12345, mode: 0o604 });
    const st = shm.stat();
    const row = procRow(shm.id!)!;
    assert.ok(row, "the segment is listed in /proc/sysvipc/shm");
    assert.equal(st.id, shm.id);
    assert.equal(st.key, 0);
    assert.equal(row.key, 0);
    assert.equal(st.size, 12345);
    assert.equal(row.size, 12345);
    assert.equal(st.mode, 0o604);
    assert.equal(row.perms & 0o777, 0o604);
    assert.equal(st.uid, process.getuid!());
    assert.equal(st.uid, row.uid);
    assert.equal(st.cuid, process.getuid!());
    assert.equal(st.gid, process.getgid!());
    assert.equal(st.creatorPid, process.pid);
    assert.equal(st.creatorPid, row.cpid);
    assert.equal(st.lastPid, row.lpid);
    assert.equal(st.attachCount, 1);
    assert.equal(row.nattch, 1);
    assert.equal(st.removed, false);
    assert.ok(st.attachTime instanceof Date && st.attachTime.getTime() / 1000 >= before);
    assert.equal(st.detachTime, null);
    assert.ok(st.changeTime.getTime() / 1000 >= before);
    const other = SharedMemory.open({ backend: "sysv", id: shm.id! });
    other.close();
    const after = shm.stat();
    assert.ok(after.detachTime instanceof Date);
    assert.equal(after.attachCount, 1);
  },
  { skip: notLinux },
);

test("the shmid_ds offsets decoded here are the C compiler's", async () => {
  const dir = buildDir();
  try {
    const layout = JSON.parse(await runOk([compile("sysv_layout", dir)]));
    const { LINUX_SHMID_DS } = await import("../platform/sysv.ts");
    assert.deepEqual(layout, { ...LINUX_SHMID_DS });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, { skip: noGcc });

test("ipcs -m lists what TS created with its size, mode and attach count", async () => {
  const { dir, path } = keyFile();
  const key = ftok(path, 7);
  const shm = SharedMemory.create({ backend: "sysv", key, size: 3000, mode: 0o644 });
  const second = SharedMemory.open({ backend: "sysv", key });
  try {
    const line = (await runOk(["ipcs", "-m"])).split("\n").map((l) => l.trim().split(/\s+/))
      .find((f) => f[1] === String(shm.id));
    assert.ok(line, "ipcs -m lists the segment");
    const [hexKey, , owner, perms, bytes, nattch] = line;
    assert.equal(hexKey, shm.name);
    assert.equal(Number(hexKey) | 0, key);
    assert.equal(owner, (await runOk(["id", "-un"])).trim());
    assert.equal(perms, "644");
    assert.equal(bytes, "3000");
    assert.equal(nattch, "2");
  } finally {
    second.close();
    shm.close();
    shm.unlink();
    rmSync(dir, { recursive: true });
  }
  const gone = (await runOk(["ipcs", "-m"])).split("\n").some((l) =>
    l.trim().split(/\s+/)[1] === String(shm.id)
  );
  assert.equal(gone, false, "the segment is gone after close + unlink");
}, { skip: noIpcs });

test("IPC_PRIVATE: no key, a fresh segment every time, shared by id", () => {
  using a = SharedMemory.create({ backend: "sysv", size: 64 });
  using b = SharedMemory.create({ backend: "sysv", size: 64 });
  assert.equal(a.key, 0);
  assert.notEqual(a.id, b.id);
  assert.equal(a.name, `shmid ${a.id}`);
  using c = SharedMemory.open({ backend: "sysv", id: a.id! });
  c.buf[1] = 5;
  assert.equal(a.buf[1], 5);
  assert.equal(b.buf[1], 0);
});

test("dispose removes only its own System V segment: a newcomer under the same key is left alone", () => {
  const key = 0x5eed0000 | (process.pid & 0xffff);
  let newcomer: SharedMemory;
  {
    using first = SharedMemory.create({ backend: "sysv", key, size: 64 });
    first.unlink(); // IPC_RMID: the key is free at once
    newcomer = SharedMemory.create({ backend: "sysv", key, size: 64, unlinkOnDispose: false });
    newcomer.buf[0] = 9;
  }
  using again = SharedMemory.open({ backend: "sysv", key });
  assert.equal(again.buf[0], 9);
  newcomer.close();
  newcomer.unlink();
});

test("key 0, keys that are not int32, bad ids, sizes and backends: TypeError/RangeError, nothing created", () => {
  const before = process.platform === "linux"
    ? execFileSync("cat", ["/proc/sysvipc/shm"], { encoding: "utf8" })
    : "";
  const bad = (options: unknown) => () => SharedMemory.create(options as never);
  assert.throws(
    bad({ backend: "sysv", key: 0, size: 64 }),
    (e: Error) => e instanceof RangeError && /IPC_PRIVATE/.test(e.message),
  );
  assert.throws(bad({ backend: "sysv", key: 1.5, size: 64 }), RangeError);
  assert.throws(
    bad({ backend: "sysv", key: 2 ** 31, size: 64 }),
    (e: Error) => e instanceof RangeError && /\| 0/.test(e.message),
  );
  assert.throws(bad({ backend: "sysv", key: -(2 ** 31) - 1, size: 64 }), RangeError);
  assert.throws(bad({ backend: "sysv", key: NaN, size: 64 }), RangeError);
  assert.throws(bad({ backend: "sysv", key: "0x1234", size: 64 }), TypeError);
  assert.throws(bad({ backend: "sysv", key: 1234n, size: 64 }), TypeError);
  assert.throws(bad({ backend: "sysv", key: 1234, size: 0 }), RangeError);
  assert.throws(bad({ backend: "sysv", key: 1234 }), TypeError);
  assert.throws(bad({ backend: "sysv", key: 1234, size: 64, mode: 0o1777 }), RangeError);
  assert.throws(bad({ backend: "sysv", key: 1234, size: 64, unlinkOnDispose: 1 }), TypeError);
  assert.throws(bad({ backend: "SysV", size: 64 }), TypeError);
  const open = (options: unknown) => () => SharedMemory.open(options as never);
  assert.throws(
    open({ backend: "sysv" }),
    (e: Error) => e instanceof TypeError && /exactly one of key or id/.test(e.message),
  );
  assert.throws(open({ backend: "sysv", key: 5, id: 5 }), TypeError);
  assert.throws(open({ backend: "sysv", key: 0 }), RangeError);
  assert.throws(open({ backend: "sysv", id: -1 }), RangeError);
  assert.throws(open({ backend: "sysv", id: "3" }), TypeError);
  assert.throws(open({ backend: "sysv", id: 3, readOnly: "yes" }), TypeError);
  assert.throws(() => SharedMemory.open({ backend: "sysv", id: 3 } as never, {} as never), TypeError);
  if (process.platform === "linux") {
    assert.equal(execFileSync("cat", ["/proc/sysvipc/shm"], { encoding: "utf8" }), before);
  }
});

test("opening a missing key or id is NotFoundError; a taken key is AlreadyExistsError", () => {
  const { dir, path } = keyFile();
  const key = ftok(path, 9);
  try {
    assert.throws(
      () => SharedMemory.open({ backend: "sysv", key }),
      (e: ShmError) =>
        e instanceof NotFoundError && e.code === "ENOENT" && e.syscall === "shmget" &&
        e.message.includes(`0x${(key >>> 0).toString(16).padStart(8, "0")}`),
    );
    assert.throws(
      () => SharedMemory.open({ backend: "sysv", id: 2 ** 31 - 1 }),
      (e: ShmError) =>
        e instanceof NotFoundError && e.code === "EINVAL" && /shmid 2147483647/.test(e.message),
    );
    using shm = SharedMemory.create({ backend: "sysv", key, size: 64 });
    shm.buf[0] = 3;
    assert.throws(
      () => SharedMemory.create({ backend: "sysv", key, size: 64 }),
      (e: ShmError) => e.name === "AlreadyExistsError" && e.code === "EEXIST",
    );
    assert.equal(shm.buf[0], 3);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("removed while attached: usable until the last detach, its key free at once, then gone", () => {
  const { dir, path } = keyFile();
  const key = ftok(path, 11);
  const a = SharedMemory.create({ backend: "sysv", key, size: 256 });
  const b = SharedMemory.open({ backend: "sysv", key });
  const id = a.id!;
  try {
    a.unlink();
    assert.throws(() => a.unlink(), NotFoundError);
    a.buf[10] = 99;
    assert.equal(b.buf[10], 99, "still shared after IPC_RMID");
    const st = b.stat();
    assert.equal(st.removed, true);
    assert.equal(st.key, 0, "Linux frees the key at once");
    assert.equal(st.attachCount, 2);
    assert.throws(() => SharedMemory.open({ backend: "sysv", key }), NotFoundError);
    assert.throws(
      () => SharedMemory.open({ backend: "sysv", id }),
      (e: ShmError) => e instanceof NotFoundError && e.code === "EIDRM" && /removed/.test(e.message),
    );
    // The key can be taken again at once by a new segment.
    const fresh = SharedMemory.create({ backend: "sysv", key, size: 32 });
    assert.notEqual(fresh.id, id);
    fresh.close();
    fresh.unlink();
    a.close();
    assert.equal(b.stat().attachCount, 1);
    assert.ok(procRow(id), "alive while b is attached");
  } finally {
    a.close();
    b.close();
    rmSync(dir, { recursive: true });
  }
  assert.equal(procRow(id), undefined, "gone after the last detach");
  assert.throws(() => b.stat(), NotFoundError);
}, { skip: notLinux });

test("close detaches buf and views, is safe twice; dispose removes what it created, not what it opened", () => {
  let id: number;
  {
    using shm = SharedMemory.create({ backend: "sysv", size: 128 });
    id = shm.id!;
    const bytes = shm.buf;
    const view = shm.view(Int32Array);
    {
      using opened = SharedMemory.open({ backend: "sysv", id });
      opened.buf[0] = 1;
    }
    assert.equal(bytes[0], 1);
    shm.close();
    shm.close();
    assert.equal(bytes.length, 0);
    assert.equal(view.length, 0);
    assert.throws(() => shm.buf, TypeError);
    assert.equal(shm.stat().attachCount, 0, "stat works on a closed handle");
  }
  assert.throws(() => SharedMemory.open({ backend: "sysv", id }), NotFoundError);
  using kept = SharedMemory.create({ backend: "sysv", size: 8, unlinkOnDispose: false });
  kept[Symbol.dispose]();
  assert.equal(kept.stat().attachCount, 0, "unlinkOnDispose: false keeps the segment");
  kept.unlink();
});

test("a buffer transferred away before close reads zeros afterwards, and the segment is detached", () => {
  using shm = SharedMemory.create({ backend: "sysv", size: 8192 });
  shm.buf[100] = 9;
  const moved = shm.buf.buffer.transfer();
  assert.equal(new Uint8Array(moved)[100], 9);
  shm.close();
  assert.equal(shm.stat().attachCount, 0, "replacing the pages detached the segment");
  assert.equal(new Uint8Array(moved)[100], 0, "the stale buffer reads zeros, not freed memory");
});

test("stat() and flush() say clearly which backends have them", () => {
  using sysv = SharedMemory.create({ backend: "sysv", size: 8 });
  assert.throws(
    () => sysv.flush(),
    (e: Error) => e instanceof TypeError && /only file-backed/.test(e.message),
  );
  using posix = SharedMemory.create({ size: 8 });
  assert.throws(() => posix.stat(), (e: Error) => e instanceof TypeError && /only System V/.test(e.message));
  assert.equal(posix.key, undefined);
  assert.equal(posix.id, undefined);
});

test("read-only attach: the kernel refuses writes, buf and view hand out copies", () => {
  using shm = SharedMemory.create({ backend: "sysv", size: 4096 });
  shm.buf.set([1, 2, 3, 4]);
  const ro = SharedMemory.open({ backend: "sysv", id: shm.id!, readOnly: true });
  try {
    assert.equal(ro.readOnly, true);
    const copy = ro.buf;
    assert.notEqual(copy, ro.buf, "a fresh copy each time");
    assert.deepEqual(Array.from(copy.subarray(0, 4)), [1, 2, 3, 4]);
    copy[0] = 200;
    ro.view(Uint32Array)[1] = 0xffffffff;
    assert.equal(shm.buf[0], 1, "a write to the copy never reaches the segment");
    assert.equal(shm.view(Uint32Array)[1], 0);
    shm.buf[2] = 77;
    assert.equal(copy[2], 3, "a copy keeps the data of its moment");
    assert.equal(ro.buf[2], 77, "buf again shows the latest data");
    assert.equal(ro.view(Uint8Array, 2, 1)[0], 77);
    if (process.platform === "linux") {
      // SHM_RDONLY: the attachment itself is a shared, read-only mapping.
      const start = addressIn(ro, 0).toString(16);
      const line = execFileSync("cat", [`/proc/${process.pid}/maps`], { encoding: "utf8" }).split("\n")
        .find((l) => l.startsWith(start + "-"));
      assert.match(line ?? "", /^[0-9a-f]+-[0-9a-f]+ r--s .*SYSV/);
    }
    ro.close();
    assert.equal(copy[2], 3, "copies stay readable after close");
  } finally {
    ro.close();
  }
});

for (const rt of BOTH) {
  test(`${rt}: a process writing through a read-only handle does not die, and the segment is unchanged`, async () => {
    using shm = SharedMemory.create({ backend: "sysv", size: 4096 });
    const original = shm.buf.map((_, i) => (i * 7) & 0xff);
    shm.buf.set(original);
    const r = await run(tsCommand(rt, PEER, ["rowrite", String(shm.id)]));
    assert.equal(r.code, 0, `exit ${r.code ?? r.signal}\n${r.stderr}`);
    const seen = JSON.parse(r.stdout.trim());
    assert.deepEqual(seen.wroteCopy, [0xee, 0xdd, 1], "the child wrote to its copy");
    assert.equal(seen.viewCopy, 12345);
    assert.deepEqual(seen.fresh, Array.from(original.subarray(0, 8)), "a fresh copy shows the segment");
    assert.equal(seen.readOnly, true);
    assert.deepEqual(shm.buf, original, "the segment is unchanged");
  });
}

test("the kernel enforces SHM_RDONLY: a store into the attachment itself kills the process", async () => {
  using shm = SharedMemory.create({ backend: "sysv", size: 4096 });
  shm.buf[0] = 17;
  // No core file: this death is expected.
  const r = await run([
    "sh",
    "-c",
    'ulimit -c 0; exec "$@"',
    "sh",
    ...tsCommand(runtime, PEER, ["rawwrite", String(shm.id)]),
  ]);
  assert.equal(JSON.parse(r.stdout.trim().split("\n")[0]!).before, 17);
  assert.ok(!r.stdout.includes("survived"), r.stdout);
  assert.ok(r.signal === "SIGSEGV" || r.code === 139 || r.code === 128 + 11, `${r.code} ${r.signal}`);
  assert.equal(shm.buf[0], 17);
}, { skip: notLinux });

test("several Deno and Bun processes share one segment: Atomics.add from all of them adds up", async () => {
  using shm = SharedMemory.create({ backend: "sysv", size: 64 });
  const cell = shm.view(Int32Array, 0, 3);
  const n = 100_000;
  const children = ["deno", "bun", "deno", "bun"].map((rt) =>
    start(tsCommand(rt as Runtime, PEER, ["add", String(shm.id), String(n)]))
  );
  try {
    const deadline = Date.now() + 30_000;
    while (Atomics.load(cell, 1) < children.length && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(Atomics.load(cell, 1), children.length, "every child attached");
    assert.equal(shm.stat().attachCount, 1 + children.length);
    Atomics.store(cell, 2, 1);
    for (const child of children) {
      const r = await child.done;
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal(Atomics.load(cell, 0), children.length * n);
    assert.equal(shm.stat().attachCount, 1);
  } finally {
    Atomics.store(cell, 2, 1);
    for (const child of children) child.kill("SIGKILL");
  }
}, { timeout: 60_000 });

test("C interop: the classic C writer's string, read by TS", async () => {
  const dir = buildDir();
  const { dir: keyDir, path } = keyFile();
  try {
    const writer = compile("sysv_writer", dir);
    const [cKey, cId] = (await runOk([writer, path, "65", "hello from C, via shmget"])).trim().split(" ").map(
      Number,
    );
    assert.equal(cKey, ftok(path, 65), "TS ftok gives C's key");
    const shm = SharedMemory.open({ backend: "sysv", key: cKey });
    using _removed = { [Symbol.dispose]: () => shm.unlink() };
    using _closed = shm;
    assert.equal(shm.id, cId);
    assert.equal(shm.size, 1024);
    const end = shm.buf.indexOf(0);
    assert.equal(new TextDecoder().decode(shm.buf.subarray(0, end)), "hello from C, via shmget");
    assert.equal(shm.created, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(keyDir, { recursive: true, force: true });
  }
}, { skip: noGcc });

test("C interop: a TS writer's string, printed by the classic C reader, which then removes it", async () => {
  const dir = buildDir();
  const { dir: keyDir, path } = keyFile();
  const shm = SharedMemory.create({ backend: "sysv", key: ftok(path, 66), size: 1024, mode: 0o666 });
  try {
    new TextEncoder().encodeInto("héllo from TypeScript\0", shm.buf);
    const out = await runOk([compile("sysv_reader", dir), path, "66"]);
    assert.equal(out, "héllo from TypeScript\n");
    const st = shm.stat();
    assert.equal(st.removed, true, "the C reader's IPC_RMID marked it");
    assert.equal(st.attachCount, 1);
    assert.ok(st.lastPid !== process.pid, "the C reader attached and detached last");
  } finally {
    shm.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(keyDir, { recursive: true, force: true });
  }
  assert.throws(() => shm.stat(), NotFoundError, "gone once TS detached");
}, { skip: noGcc });

test("ftok gives C's key for any projId, and NotFoundError for a missing path", async () => {
  const dir = buildDir();
  const { dir: keyDir, path } = keyFile();
  try {
    const ids = [0, 1, 65, 127, 128, 255, 256, 0x1234, -1, 2 ** 31 - 1];
    const lines = (await runOk([compile("sysv_ftok", dir), path, ...ids.map(String)])).trim().split("\n");
    const st = statSync(path, { bigint: true });
    ids.forEach((id, i) => {
      const [cKey] = lines[i]!.split(" ").map(Number);
      assert.equal(ftok(path, id), cKey, `ftok(path, ${id})`);
      const formula = Number(
        (BigInt(id & 0xff) << 24n) | ((st.dev & 0xffn) << 16n) | (st.ino & 0xffffn),
      ) | 0;
      assert.equal(cKey, formula, `glibc's formula for ${id}`);
    });
    const missing = `${keyDir}/nope`;
    assert.throws(
      () => ftok(missing, 1),
      (e: ShmError) =>
        e instanceof NotFoundError && e.code === "ENOENT" && e.syscall === "ftok" &&
        e.message.includes(missing),
    );
    assert.throws(() => ftok(123 as never, 1), TypeError);
    assert.throws(() => ftok("", 1), TypeError);
    assert.throws(() => ftok(path, 1.5), RangeError);
    assert.throws(() => ftok(path, 2 ** 31), RangeError);
    assert.throws(() => ftok(path, "A" as never), TypeError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(keyDir, { recursive: true, force: true });
  }
}, { skip: noGcc });

test(
  "a size over SHMMAX is a RangeError naming the limit, with nothing created",
  async () => {
    // A private IPC namespace has its own SHMMAX: lower it there, so nothing outside is touched.
    for (const rt of BOTH) {
      const script =
        'echo 1048576 > /proc/sys/kernel/shmmax || exit 97; "$@"; echo "left:$(tail -n +2 /proc/sysvipc/shm | wc -l)"';
      const r = await run([
        "unshare",
        "--ipc",
        "sh",
        "-c",
        script,
        "sh",
        ...tsCommand(rt, PEER, ["create", "4242", String(2 << 20)]),
      ]);
      assert.equal(r.code, 0, `${rt}: exit ${r.code}\n${r.stderr}`);
      const [json, left] = r.stdout.trim().split("\n");
      const answer = JSON.parse(json ?? "");
      assert.equal(answer.rangeError, true, `${rt}: ${json}`);
      assert.match(answer.message, /size 2097152 is larger than SHMMAX, 1048576 bytes/);
      assert.equal(left, "left:0");
    }
  },
  { skip: noUnshare, timeout: 60_000 },
);

for (const rt of BOTH) {
  test(
    `${rt} as another user: mode 0600 is PermissionDeniedError, 0644 attaches read-only only`,
    async () => {
      using secret = SharedMemory.create({ backend: "sysv", size: 64, mode: 0o600 });
      const denied = await asNobody(rt, PEER, ["open", "id", String(secret.id)]);
      assert.equal(denied.error, "PermissionDeniedError", JSON.stringify(denied));
      assert.equal(denied.code, "EACCES");
      assert.equal(denied.isShmError, true);
      const { dir, path } = keyFile();
      chmodSync(dir, 0o755);
      try {
        const key = ftok(path, 3);
        using shared = SharedMemory.create({ backend: "sysv", key, size: 64, mode: 0o644 });
        shared.buf.set([4, 3, 2, 1]);
        assert.deepEqual(await asNobody(rt, PEER, ["open", "key", String(key), "ro"]), {
          size: 64,
          first: [4, 3, 2, 1],
        });
        const rw = await asNobody(rt, PEER, ["open", "key", String(key)]);
        assert.equal(rw.error, "PermissionDeniedError");
        assert.equal(rw.syscall, "shmat");
        assert.ok(PermissionDeniedError.name === rw.error);
      } finally {
        rmSync(dir, { recursive: true });
      }
    },
    { skip: noSetpriv },
  );
}
