// The `shm` command line, run as a process under both runtimes: what it lists, shows, dumps,
// creates and removes, its exit codes, and its messages for missing and forbidden segments.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { NotFoundError, SharedMemory } from "../mod.ts";
import { test } from "./_harness.ts";
import {
  BOTH,
  type Finished,
  hasCommand,
  isRoot,
  ROOT,
  run,
  type Runtime,
  RUNTIMES,
  tsCommand,
  uniqueName,
} from "./_process.ts";

const onLinux = process.platform === "linux";
const linuxOnly = !onLinux && "lists /dev/shm and /proc/sysvipc/shm, which only Linux has";

function shm(rt: Runtime, ...args: string[]): Promise<Finished> {
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
  return (crypto.getRandomValues(new Uint32Array(1))[0]! | 0x1000) | 0;
}

for (const rt of BOTH) {
  test(`${rt}: create, ls, info, dump and rm a POSIX segment, in text and --json`, async () => {
    const name = uniqueName("cli");
    {
      const made = await shm(rt, "create", name, "8K", "--mode", "0o640");
      assert.equal(made.code, 0, made.stderr);
      assert.equal(made.stdout.trim(), `created ${name}`);
      {
        using mine = SharedMemory.open(name);
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
      }

      const removed = await shm(rt, "rm", name);
      assert.equal(removed.code, 0, removed.stderr);
      assert.equal(gone(name), true);
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

      {
        using peer = SharedMemory.open({ backend: "sysv", key });
        peer.buf.set([1, 2, 3], 997);
        const listed = JSON.parse((await shm(rt, "ls", "--sysv", "--json")).stdout);
        const entry = listed.find((e: { id: number }) => e.id === id);
        assert.equal(entry.key, keyHex);
        assert.equal(entry.size, 1000);
        assert.equal(entry.mode, "0o644");
        assert.equal(entry.attached, 1);
        assert.equal(listed.every((e: { backend: string }) => e.backend === "sysv"), true);

        // lastPid is the last process to attach or detach: when this process forks a child (Node's
        // child_process does; Deno's and Bun's spawn do not), the child's copy of the attachment counts.
        const info = async (...args: string[]) => {
          const { lastPid: _, ...rest } = JSON.parse((await shm(rt, "info", ...args, "--json")).stdout);
          return rest;
        };
        const byId = await info("--id", String(id));
        const byKey = await info("--key", String(key));
        assert.deepEqual(byId, byKey);
        assert.equal(byId.creatorPid > 0, true);
        // The key and "shmid N" as ls prints them work in place of a NAME.
        assert.deepEqual(await info(keyHex), byKey);
        assert.deepEqual(await info(`shmid ${id}`), byKey);
        assert.deepEqual(await info("-m", String(id)), byKey);
        const wordDump = await shm(rt, "dump", keyHex, "--offset", "992", "--json");
        assert.equal(JSON.parse(wordDump.stdout).hex, "0000000000010203", wordDump.stderr);
        // rm does not guess: a word names a POSIX segment, and the message points to --key.
        const guessed = await shm(rt, "rm", keyHex);
        assert.equal(guessed.code, 1);
        assert.match(guessed.stderr, new RegExp(`use shm rm --key ${keyHex} \\(ipcrm: -M\\)`));

        const dumped = await shm(rt, "dump", "--key", keyHex, "--offset", "992");
        assert.equal(
          dumped.stdout.trim(),
          "000003e0  00 00 00 00 00 01 02 03                           |........|\n000003e8",
        );
      }

      const removed = await shm(rt, "rm", "-M", keyHex); // ipcrm's spelling of --key
      assert.equal(removed.code, 0, removed.stderr);
      const again = await shm(rt, "info", "--key", keyHex);
      assert.equal(again.code, 1);
      assert.match(again.stderr, new RegExp(`no System V shared memory segment with key ${keyHex}`));
      id = undefined;

      const priv = await shm(rt, "create", "--sysv", "64", "--json");
      id = JSON.parse(priv.stdout).id;
      const listed = JSON.parse((await shm(rt, "ls", "--sysv", "--json")).stdout);
      assert.equal(listed.find((e: { id: number }) => e.id === id)?.key, "0x00000000");
      assert.equal((await shm(rt, "rm", "-m", String(id))).code, 0); // ipcrm's spelling of --id
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
      [
        ["info", "0x7ffffff1"],
        1,
        /no POSIX shared memory segment named "0x7ffffff1" and no System V .* key 0x7ffffff1/,
      ],
      [["dump", "shmid 2147483000"], 1, /no System V shared memory segment with shmid 2147483000/],
      [[], 2, /^$/],
      [["frobnicate"], 2, /unknown command "frobnicate"\nRun "shm --help" for usage\./],
      [["ls", "--colour"], 2, /unknown option --colour/],
      [["create", name], 2, /create needs a NAME and a SIZE/],
      [
        ["create", name, "12X"],
        2,
        /SIZE must be a whole number of bytes, optionally with K, M, G, T or P .*got "12X"/,
      ],
      [["create", name, "-5"], 2, /SIZE must be a positive whole number of bytes, got "-5"/],
      [["create", name, "1.5G"], 2, /SIZE must be a whole number of bytes/],
      [["create", name, "9999999P"], 2, /SIZE 9999999P is more than 9007199254740991 bytes/],
      [["rm", "-m"], 2, /-m needs a value/],
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
    using secret = SharedMemory.create({ name: uniqueName("cli_secret"), size: 64, mode: 0o600 });
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

const noNamespace = linuxOnly || (!isRoot() && "needs root to mount a private /dev/shm") ||
  (!hasCommand("unshare") && "unshare (util-linux) is not installed");
const noPython = !hasCommand("python3") && "python3 is not installed";

/** Bytes of memory Linux says are available now (0 elsewhere). */
function freeMemory(): number {
  if (!onLinux) return 0;
  return 1024 * Number(/MemAvailable:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0);
}

/** Bytes free in /dev/shm (0 where there is none). */
function freeShm(): number {
  if (!onLinux) return 0;
  const s = statfsSync("/dev/shm");
  return Number(s.bavail) * Number(s.bsize);
}

/**
 * Runs `script` (sh) in a private mount namespace whose /dev/shm is a fresh tmpfs of `size`;
 * "$@" is the shm command line of `rt`. Nothing done there reaches the real /dev/shm.
 */
function inPrivateShm(rt: Runtime, size: string, script: string): Promise<Finished> {
  const setup = `mount -t tmpfs -o size=${size} tmpfs /dev/shm || exit 97\n`;
  return run(["unshare", "-m", "sh", "-c", setup + script, "sh", ...tsCommand(rt, "cli/mod.ts")]);
}

for (const rt of BOTH) {
  test(`${rt}: names with "/" or ".." are refused by every command; /dev/shm/NAME means NAME`, async () => {
    using seg = SharedMemory.create({ name: uniqueName("cli_path"), size: 100 });
    seg.buf.set([0xca, 0xfe]);
    const info = await shm(rt, "info", `/dev/shm/${seg.name}`);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, new RegExp(`^name:\\s+${seg.name}$`, "m"));
    assert.match(info.stdout, /^size:\s+100$/m);
    const dumped = await shm(rt, "dump", `/dev/shm/${seg.name}`, "--length", "2", "--json");
    assert.equal(JSON.parse(dumped.stdout).hex, "cafe", dumped.stderr);
    for (const bad of ["../../etc/shadow", "a/b", "..", "/dev/shm/../x", "/.", "//x"]) {
      for (const args of [["info", bad], ["dump", bad], ["rm", bad], ["create", bad, "64"]]) {
        const r = await shm(rt, ...args);
        assert.equal(r.code, 2, `shm ${args.join(" ")}: ${r.stderr}`);
        assert.equal(r.stdout, "", `shm ${args.join(" ")} printed nothing`);
        assert.match(
          r.stderr,
          /^shm: Cannot (show|dump|remove|create) shared memory segment ".*": (the name .* contains "\/"|".*" is not a valid segment name|the name is empty)/,
          `shm ${args.join(" ")}`,
        );
      }
    }
    const removed = await shm(rt, "rm", `/dev/shm/${seg.name}`);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(gone(seg.name), true);
  }, { skip: linuxOnly });

  test(
    `${rt}: create reserves memory without a buffer: more than /dev/shm holds is ENOSPC, nothing is left`,
    async () => {
      const r = await inPrivateShm(
        rt,
        "1m",
        `"$@" create big 100G; echo "code:$?"; "$@" create big 1T; echo "code:$?"; ` +
          `"$@" create fits 512K; echo "code:$?"; echo "left:$(ls /dev/shm | tr '\\n' ' ')"`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.match(/code:\d+/g), ["code:5", "code:5", "code:0"], r.stderr);
      assert.match(r.stdout, /^left:fits $/m, "the failed creates removed what they made");
      const errors = r.stderr.trim().split("\n");
      assert.equal(errors.length, 2, r.stderr);
      for (const [line, size] of [[errors[0], 100 * 2 ** 30], [errors[1], 2 ** 40]] as const) {
        assert.match(
          line ?? "",
          new RegExp(
            `^shm: Cannot create shared memory segment "big": no space left on device \\(ENOSPC from posix_fallocate\\)\\. ` +
              `The shared memory file system \\(/dev/shm on Linux\\) has less than ${size} bytes free$`,
          ),
        );
      }
    },
    { skip: noNamespace },
  );

  test(
    `${rt}: dump reads a sparse segment on a full /dev/shm with pread: its bytes, never SIGBUS`,
    async () => {
      // A C or Python peer that sizes with ftruncate alone leaves holes; with /dev/shm full, touching
      // a hole through a mapping is SIGBUS (Python's mmap shows it: exit 135). pread reads zeros.
      const fill = `python3 - <<'PY' || exit 98
import mmap, os
fd = os.open('/dev/shm/sparse', os.O_CREAT | os.O_RDWR, 0o600)
os.ftruncate(fd, 4 << 20)
os.pwrite(fd, b'head', 0)
os.pwrite(fd, b'tail', (4 << 20) - 4)
os.close(fd)
fd = os.open('/dev/shm/filler', os.O_CREAT | os.O_WRONLY, 0o600)
try:
    while True:
        os.write(fd, b'x' * 4096)
except OSError:
    pass
os.close(fd)
PY
python3 -c "
import mmap, os
m = mmap.mmap(os.open('/dev/shm/sparse', os.O_RDONLY), 4 << 20, prot=mmap.PROT_READ)
print(m[3 << 20])" >/dev/null 2>&1
echo "mapped:$?"
`;
      const r = await inPrivateShm(
        rt,
        "1m",
        fill +
          `"$@" dump sparse; echo "code:$?"; "$@" dump sparse --offset 0x300000 --length 32 --json; echo "code:$?"`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^mapped:135$/m, "the setup is one that kills a reader through a mapping");
      const [whole, part] = r.stdout.split(/^mapped:135\n/m)[1]!.split(/^code:/m);
      assert.equal(
        whole,
        [
          "00000000  68 65 61 64 00 00 00 00  00 00 00 00 00 00 00 00  |head............|",
          "00000010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
          "*",
          "003ffff0  00 00 00 00 00 00 00 00  00 00 00 00 74 61 69 6c  |............tail|",
          "00400000",
          "",
        ].join("\n"),
        r.stderr,
      );
      assert.deepEqual(JSON.parse(part!.replace(/^0\n/, "")), {
        name: "sparse",
        backend: "posix",
        size: 4 << 20,
        offset: 0x300000,
        length: 32,
        hex: "00".repeat(32),
      });
      assert.match(r.stdout, /code:0\n$/);
    },
    { skip: noNamespace || noPython },
  );
}

test(
  "bun: create makes a segment larger than one ArrayBuffer can be (5 GiB), since it never maps it",
  async () => {
    const name = uniqueName("cli_5g");
    try {
      const made = await shm("bun", "create", name, "5G", "--json");
      assert.equal(made.code, 0, made.stderr);
      assert.deepEqual(JSON.parse(made.stdout), { backend: "posix", name, size: 5 * 2 ** 30, mode: "0o600" });
      const info = await shm("bun", "info", name, "--json");
      assert.equal(JSON.parse(info.stdout).size, 5 * 2 ** 30);
      const tail = await shm("bun", "dump", name, "--offset", String(5 * 2 ** 30 - 16));
      assert.equal(tail.code, 0, tail.stderr);
      assert.match(tail.stdout, /^13ffffff0 {2}00 00/m);
    } finally {
      removeIfThere(name);
    }
  },
  {
    skip: linuxOnly ||
      (freeMemory() < 12 * 2 ** 30 && "needs 12 GiB of free memory to reserve 5 GiB safely") ||
      (freeShm() < 6 * 2 ** 30 && "needs 6 GiB free in /dev/shm"),
  },
);

test(
  "deno: without the permission a command needs, it exits 3 and names the flag; --help lists them",
  async () => {
    const deno = (flags: string[], ...args: string[]) =>
      run([RUNTIMES.deno, "run", "--quiet", "--no-prompt", ...flags, `${ROOT}/cli/mod.ts`, ...args]);
    const name = uniqueName("cli_perm");
    for (
      const [flags, args] of [
        [["--allow-read"], ["ls"]],
        [["--allow-read", "--allow-ffi", "--allow-write"], ["ls", "--posix"]],
        [["--allow-read", "--allow-ffi"], ["ls", "--sysv"]],
        [["--allow-read"], ["info", name]],
      ] as const
    ) {
      const r = await deno([...flags], ...args);
      assert.equal(r.code, 3, `${flags} ${args}: ${r.stdout} ${r.stderr}`);
      assert.equal(r.stdout, "", 'never "no shared memory segments"');
      assert.match(r.stderr, new RegExp(`Under Deno, shm ${args[0]} needs -A \\(--allow-all\\)`));
    }
    for (const args of [["dump", name], ["create", name, "64"], ["rm", name]]) {
      const r = await deno(["--allow-read"], ...args);
      assert.equal(r.code, 3, `${args}: ${r.stderr}`);
      assert.match(r.stderr, /run again with --allow-ffi/);
      assert.match(r.stderr, new RegExp(`Under Deno, shm ${args[0]} needs --allow-ffi\\.`));
    }
    assert.equal(gone(name), true, "create did nothing");
    // And with exactly what --help says, they work.
    assert.equal((await deno(["--allow-ffi"], "create", name, "64")).code, 0);
    assert.equal((await deno(["--allow-ffi"], "dump", name, "--length", "4")).code, 0);
    const listed = await deno(["-A"], "ls", "--posix");
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(name));
    assert.equal((await deno(["--allow-ffi"], "rm", name)).code, 0);
    assert.equal(gone(name), true);
    const help = await deno([], "--help");
    assert.match(
      help.stdout,
      /Deno permissions: ls and info read \/dev\/shm and \/proc, which Deno opens only with -A/,
    );
    assert.match(help.stdout, /dump, create and rm call the C library and need --allow-ffi/);
  },
  { skip: linuxOnly },
);

test(
  "the tool runs as `shm`: cli/shm.ts is a Bun executable (package.json bin), deno install makes one",
  async () => {
    const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, "utf8"));
    assert.equal(pkg.bin?.shm, "cli/shm.ts");
    const path = `${ROOT}/node_modules/.bin:${process.env.PATH ?? ""}`;
    const bun = await run([`${ROOT}/cli/shm.ts`, "--help"], { env: { PATH: path } });
    assert.equal(bun.code, 0, bun.stderr);
    assert.match(bun.stdout, /^Usage:/m);
    const root = mkdtempSync(`${tmpdir()}/shm-deno-install-`);
    try {
      const installed = await run(
        [RUNTIMES.deno, "install", "-g", "-A", "--root", root, "-n", "shm", `${ROOT}/cli/mod.ts`],
        { env: { PATH: path } },
      );
      assert.equal(installed.code, 0, installed.stderr);
      const deno = await run([`${root}/bin/shm`, "ls", "--json"], { env: { PATH: path } });
      assert.equal(deno.code, 0, deno.stderr);
      assert.ok(Array.isArray(JSON.parse(deno.stdout)));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
  { skip: linuxOnly },
);
