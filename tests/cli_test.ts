// The `shm` command line, run as a process under both runtimes: what it lists, shows, dumps,
// creates and removes, its exit codes, and its messages for missing and forbidden segments.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { NotFoundError, SharedMemory } from "../mod.ts";
import { test } from "./_harness.ts";
import { BOTH, type Finished, hasCommand, isRoot, ROOT, run, tsCommand, uniqueName } from "./_process.ts";

const onLinux = process.platform === "linux";
const linuxOnly = !onLinux && "lists /dev/shm and /proc/sysvipc/shm, which only Linux has";

function shm(rt: "deno" | "bun", ...args: string[]): Promise<Finished> {
  return run(tsCommand(rt, "cli/mod.ts", args));
}

function gone(name: string): boolean {
  try {
    SharedMemory.open(name, { readOnly: true }).close();
    return false;
  } catch (error) {
    if (error instanceof NotFoundError) return true;
    throw error;
  }
}

function removeIfThere(name: string): void {
  try {
    SharedMemory.unlink(name);
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
  }
}

/** Key of a fresh System V segment nobody else uses: random, never 0 (IPC_PRIVATE). */
function randomKey(): number {
  return (crypto.getRandomValues(new Uint32Array(1))[0] | 0x1000) | 0;
}

for (const rt of BOTH) {
  test(`${rt}: create, ls, info, dump and rm a POSIX segment, in text and --json`, async () => {
    const name = uniqueName("cli");
    try {
      const made = await shm(rt, "create", name, "8K", "--mode", "0o640");
      assert.equal(made.code, 0, made.stderr);
      assert.equal(made.stdout.trim(), `created ${name}`);
      const mine = SharedMemory.open(name);
      try {
        assert.equal(mine.size, 8192);
        mine.buf.set(new TextEncoder().encode("hello, shm"), 0);
        mine.buf.set([0xde, 0xad, 0xbe, 0xef], 0x100);

        const listed = await shm(rt, "ls", "--json");
        assert.equal(listed.code, 0, listed.stderr);
        const entry = JSON.parse(listed.stdout).find((e: { name: string }) => e.name === name);
        assert.deepEqual(
          { ...entry, modified: typeof entry.modified },
          {
            backend: "posix",
            name,
            size: 8192,
            mode: "0o640",
            owner: process.getuid?.() === 0 ? "root" : entry.owner,
            uid: process.getuid?.() ?? entry.uid,
            attached: 1, // this test process maps it
            pids: [process.pid],
            modified: "string",
          },
        );
        assert.ok(Math.abs(Date.parse(entry.modified) - Date.now()) < 60_000);

        const text = await shm(rt, "ls", "--posix");
        const row = text.stdout.split("\n").find((l) => l.includes(name));
        assert.match(
          row ?? "",
          new RegExp(`^posix\\s+${name}\\s+-\\s+8192\\s+0o640\\s+\\S+\\s+1\\s+\\d{4}-`),
        );
        assert.match(text.stdout, /^BACKEND\s+NAME\s+ID\s+SIZE\s+MODE\s+OWNER\s+ATTACHED\s+MODIFIED/);

        const info = await shm(rt, "info", "/" + name);
        assert.equal(info.code, 0, info.stderr);
        assert.match(info.stdout, new RegExp(`^name:\\s+${name}$`, "m"));
        assert.match(info.stdout, /^size:\s+8192 \(8 KiB\)$/m);
        assert.match(info.stdout, new RegExp(`^mapped by:\\s+${process.pid}$`, "m"));

        const dumped = await shm(rt, "dump", name, "--length", "0x20");
        assert.equal(dumped.code, 0, dumped.stderr);
        assert.equal(
          dumped.stdout.trim(),
          [
            "00000000  68 65 6c 6c 6f 2c 20 73  68 6d 00 00 00 00 00 00  |hello, shm......|",
            "00000010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
            "00000020",
          ].join("\n"),
        );
        const part = await shm(rt, "dump", name, "--offset", "256", "--length", "6", "--json");
        assert.deepEqual(JSON.parse(part.stdout), {
          name,
          backend: "posix",
          size: 8192,
          offset: 256,
          length: 6,
          hex: "deadbeef0000",
        });
        const whole = await shm(rt, "dump", name);
        assert.match(whole.stdout, /^\*$/m, "runs of equal lines collapse");
        assert.match(whole.stdout, /\n00002000\n?$/);
      } finally {
        mine.close();
      }

      const removed = await shm(rt, "rm", name);
      assert.equal(removed.code, 0, removed.stderr);
      assert.equal(gone(name), true);
    } finally {
      removeIfThere(name);
    }
  }, { skip: linuxOnly });

  test(`${rt}: System V segments by key and id: create, ls, info, dump, rm`, async () => {
    const key = randomKey();
    const keyHex = "0x" + (key >>> 0).toString(16).padStart(8, "0");
    let id: number | undefined;
    try {
      const made = await shm(rt, "create", "--key", keyHex, "1000", "--mode", "644", "--json");
      assert.equal(made.code, 0, made.stderr);
      const m = JSON.parse(made.stdout);
      id = m.id;
      assert.deepEqual(m, { backend: "sysv", name: keyHex, id, key: keyHex, size: 1000, mode: "0o644" });

      const peer = SharedMemory.open({ backend: "sysv", key });
      try {
        peer.buf.set([1, 2, 3], 997);
        const listed = JSON.parse((await shm(rt, "ls", "--sysv", "--json")).stdout);
        const entry = listed.find((e: { id: number }) => e.id === id);
        assert.equal(entry.key, keyHex);
        assert.equal(entry.size, 1000);
        assert.equal(entry.mode, "0o644");
        assert.equal(entry.attached, 1);
        assert.equal(listed.every((e: { backend: string }) => e.backend === "sysv"), true);

        const byId = JSON.parse((await shm(rt, "info", "--id", String(id), "--json")).stdout);
        const byKey = JSON.parse((await shm(rt, "info", "--key", String(key), "--json")).stdout);
        assert.deepEqual(byId, byKey);
        assert.equal(byId.creatorPid > 0, true);

        const dumped = await shm(rt, "dump", "--key", keyHex, "--offset", "992");
        assert.equal(
          dumped.stdout.trim(),
          "000003e0  00 00 00 00 00 01 02 03                           |........|\n000003e8",
        );
      } finally {
        peer.close();
      }

      const removed = await shm(rt, "rm", "--id", String(id));
      assert.equal(removed.code, 0, removed.stderr);
      const again = await shm(rt, "info", "--key", keyHex);
      assert.equal(again.code, 1);
      assert.match(again.stderr, new RegExp(`no System V shared memory segment with key ${keyHex}`));
      id = undefined;

      const priv = await shm(rt, "create", "--sysv", "64", "--json");
      id = JSON.parse(priv.stdout).id;
      const listed = JSON.parse((await shm(rt, "ls", "--sysv", "--json")).stdout);
      assert.equal(listed.find((e: { id: number }) => e.id === id)?.key, "0x00000000");
      assert.equal((await shm(rt, "rm", "--id", String(id))).code, 0);
      id = undefined;
      const text = await shm(rt, "create", "--sysv", "64");
      id = Number(/^created shmid (\d+) \(64 bytes\)$/m.exec(text.stdout)?.[1]);
      assert.ok(id > 0, text.stdout);
      assert.equal((await shm(rt, "rm", "--id", String(id))).code, 0);
      id = undefined;
    } finally {
      if (id !== undefined) await shm(rt, "rm", "--id", String(id));
    }
  }, { skip: linuxOnly });

  test(`${rt}: missing segments exit 1, bad command lines exit 2, with clear messages`, async () => {
    const name = uniqueName("cli_missing");
    const cases: [string[], number, RegExp][] = [
      [["info", name], 1, new RegExp(`no POSIX shared memory segment named "${name}"`)],
      [
        ["dump", name],
        1,
        /Cannot open shared memory segment .*no such file or directory \(ENOENT from shm_open\)/,
      ],
      [["rm", name], 1, /Cannot unlink shared memory segment .*ENOENT from shm_unlink/],
      [["rm", "--id", "2147483000"], 1, /Cannot remove System V segment shmid 2147483000/],
      [["rm", "--key", "0x7ffffffe"], 1, /key 0x7ffffffe/],
      [[], 2, /^$/],
      [["frobnicate"], 2, /unknown command "frobnicate"\nRun "shm --help" for usage\./],
      [["ls", "--colour"], 2, /unknown option --colour/],
      [["create", name], 2, /create needs a NAME and a SIZE/],
      [["create", name, "12X"], 2, /SIZE must be a whole number, got "12X"/],
      [["create", name, "64", "--mode", "999"], 2, /mode must be octal permission bits/],
      [["dump", "--offset", "3"], 2, /dump takes one segment/],
      [["info", "--key", "0"], 2, /IPC_PRIVATE/],
      [["create", name, "0"], 2, /size must be a positive whole number/],
    ];
    try {
      for (const [args, code, message] of cases) {
        const r = await shm(rt, ...args);
        assert.equal(r.code, code, `shm ${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, message, `shm ${args.join(" ")}`);
      }
      const help = await shm(rt, "--help");
      assert.equal(help.code, 0);
      assert.match(help.stdout, /^Usage:/m);
      assert.match(
        help.stdout,
        /Exit codes: 0 done, 1 no such segment, 2 bad command line, 3 permission denied/,
      );
      assert.equal((await shm(rt, "dump", "--help")).code, 0);
    } finally {
      removeIfThere(name);
    }
  }, { skip: linuxOnly });

  test(`${rt}: creating a taken name exits 4; rm keeps going past a failure`, async () => {
    const a = uniqueName("cli_taken");
    const b = uniqueName("cli_other");
    try {
      assert.equal((await shm(rt, "create", a, "64")).code, 0);
      const taken = await shm(rt, "create", a, "64");
      assert.equal(taken.code, 4);
      assert.match(
        taken.stderr,
        /Cannot create shared memory segment ".*": it already exists \(EEXIST from shm_open\)/,
      );
      assert.equal((await shm(rt, "create", b, "64")).code, 0);
      const r = await shm(rt, "rm", a, uniqueName("cli_nothing"), b);
      assert.equal(r.code, 1, "the first failure's code");
      assert.equal(gone(a), true);
      assert.equal(gone(b), true, "removed after the failure");
    } finally {
      removeIfThere(a);
      removeIfThere(b);
    }
  }, { skip: linuxOnly });

  test(`${rt}: another user's private segment: permission denied is exit 3`, async () => {
    const secret = SharedMemory.create({ name: uniqueName("cli_secret"), size: 64, mode: 0o600 });
    const home = mkdtempSync(`${tmpdir()}/shm-cli-nobody-`);
    chmodSync(home, 0o777);
    try {
      const asNobody = (...args: string[]) => {
        const cmd = tsCommand(rt, "cli/mod.ts", args);
        if (rt === "deno") cmd.splice(2, 0, "--no-lock", "--no-config");
        return run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", ...cmd], {
          cwd: home,
          env: { HOME: home, DENO_DIR: `${home}/deno`, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" },
        });
      };
      const dumped = await asNobody("dump", secret.name);
      assert.equal(dumped.code, 3, dumped.stderr);
      assert.match(dumped.stderr, /permission denied \(EACCES from shm_open\)/i);
      const removed = await asNobody("rm", secret.name);
      assert.equal(removed.code, 3, removed.stderr);
      assert.match(removed.stderr, /Cannot unlink shared memory segment .*(EACCES|EPERM) from shm_unlink/);
      assert.equal(gone(secret.name), false);
      const info = await asNobody("info", secret.name);
      assert.equal(info.code, 0, "metadata is public, as with ls -l");
      assert.match(info.stdout, /^owner:\s+root \(uid 0\)$/m);
    } finally {
      rmSync(home, { recursive: true, force: true });
      secret.close();
      secret.unlink();
    }
  }, {
    skip: linuxOnly || (!isRoot() && "needs root to run the tool as nobody") ||
      (!hasCommand("setpriv") && "setpriv is not installed"),
  });
}

test("the tool's entry point is exported for jsr:@x/shm/cli", () => {
  const config = JSON.parse(readFileSync(`${ROOT}/deno.json`, "utf8"));
  assert.equal(config.exports["./cli"], "./cli/mod.ts");
});
