// Permission boundaries between users, and a /dev/shm too small for the segment asked for.
// Both need root (to switch to `nobody`, and to mount a private tmpfs); they are skipped otherwise.
import assert from "node:assert/strict";
import { SharedMemory } from "../mod.ts";
import { test } from "./_harness.ts";
import { asNobody, BOTH, hasCommand, isRoot, run, tsCommand, uniqueName } from "./_process.ts";

const PEER = "tests/children/core_peer.ts";
const notRoot = !isRoot() && "needs root (to run a child as nobody / to mount a tmpfs)";
const noSetpriv = notRoot || (!hasCommand("setpriv") && "setpriv (util-linux) is not installed");
const noUnshare = notRoot || (!hasCommand("unshare") && "unshare (util-linux) is not installed");

for (const rt of BOTH) {
  test(`${rt} as another user: mode 0600 is PermissionDeniedError, 0644 opens read-only only`, async () => {
    using secret = SharedMemory.create({ name: uniqueName("perm600"), size: 64, mode: 0o600 });
    const denied = await asNobody(rt, PEER, ["open", secret.name]);
    assert.equal(denied.error, "PermissionDeniedError");
    assert.equal(denied.code, "EACCES");
    assert.equal(denied.syscall, "shm_open");
    assert.equal(denied.isShmError, true);
    assert.match(String(denied.message), new RegExp(`^Cannot open shared memory segment "${secret.name}": `));
    const deniedReadOnly = await asNobody(rt, PEER, ["open", secret.name, "ro"]);
    assert.equal(deniedReadOnly.error, "PermissionDeniedError");
    assert.match(String(deniedReadOnly.message), /read-only: permission denied \(EACCES from shm_open\)/);

    using shared = SharedMemory.create({ name: uniqueName("perm644"), size: 64, mode: 0o644 });
    shared.buf.set([4, 3, 2, 1]);
    assert.deepEqual(await asNobody(rt, PEER, ["open", shared.name, "ro"]), {
      size: 64,
      first: [4, 3, 2, 1],
    });
    const rw = await asNobody(rt, PEER, ["open", shared.name]);
    assert.equal(rw.error, "PermissionDeniedError");
  }, { skip: noSetpriv });
}

for (const rt of BOTH) {
  test(
    `${rt}: a segment larger than a full /dev/shm is ENOSPC at create time, with nothing left behind`,
    async () => {
      const name = uniqueName("nospace");
      const script =
        'mount -t tmpfs -o size=1m tmpfs /dev/shm || exit 97; "$@"; echo "left:$(ls -A /dev/shm)"';
      const cmd = (
        size: number,
      ) => [
        "unshare",
        "-m",
        "sh",
        "-c",
        script,
        "sh",
        ...tsCommand(rt, PEER, ["create", name, String(size)]),
      ];
      const big = await run(cmd(4 << 20));
      assert.equal(big.code, 0, big.stderr);
      const [answer, left] = big.stdout.trim().split("\n");
      const error = JSON.parse(answer ?? "");
      assert.equal(error.error, "ShmError");
      assert.equal(error.code, "ENOSPC");
      assert.equal(error.syscall, "posix_fallocate");
      assert.match(
        error.message,
        new RegExp(`^Cannot create shared memory segment "${name}": no space left on device`),
      );
      assert.equal(left, "left:", "the failed segment must be removed");
      // A segment that fits still works in the same small /dev/shm.
      const small = await run(cmd(512 << 10));
      assert.deepEqual(small.stdout.trim().split("\n"), ['{"created":true}', "left:"]);
    },
    { skip: noUnshare },
  );
}

for (const rt of BOTH) {
  test(
    `${rt}: a sparse segment (ftruncate alone, as C or Python may make it) on a full /dev/shm is ENOSPC ` +
      `at open, for a writer and a read-only handle, never SIGBUS`,
    async () => {
      const name = uniqueName("sparse");
      const peer = (args: string[]) => tsCommand(rt, PEER, args).map((a) => `'${a}'`).join(" ");
      // A 1 MiB /dev/shm: a 768 KiB sparse segment, then a 512 KiB file fills it, so the segment's
      // holes cannot be backed. Each step prints one line; the process must not die (SIGBUS is 135).
      const script = [
        "mount -t tmpfs -o size=1m tmpfs /dev/shm || exit 97",
        peer(["sparse", name, String(768 << 10)]),
        "head -c 524288 /dev/zero > /dev/shm/filler",
        peer(["touch", name]),
        peer(["touch", name, "ro"]),
        "rm /dev/shm/filler",
        peer(["touch", name]),
        peer(["touch", name, "ro"]),
        'echo "exit:$?"',
      ].join("; ");
      const r = await run(["unshare", "-m", "sh", "-c", script]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.equal(lines.length, 6, r.stdout + r.stderr);
      const [made, writer, reader, writerLater, readerLater, end] = lines.map((l) =>
        l.startsWith("{") ? JSON.parse(l) : l
      );
      assert.deepEqual(made, { sparse: true });
      for (
        const [who, answer, call] of [["writer", writer, "posix_fallocate"], ["reader", reader, "madvise"]]
      ) {
        assert.equal(answer.error, "ShmError", `${who}: ${JSON.stringify(answer)}`);
        assert.equal(answer.code, "ENOSPC", `${who}: ${JSON.stringify(answer)}`);
        assert.equal(answer.syscall, call);
        assert.match(answer.message, new RegExp(`^Cannot open shared memory segment "${name}"`));
      }
      // With room again, the writer reserves the holes and the reader faults them in.
      assert.deepEqual(writerLater, { touched: 768 << 10, sum: 0 });
      assert.equal(readerLater.touched, 768 << 10);
      assert.equal(end, "exit:0");
    },
    { skip: noUnshare },
  );
}
