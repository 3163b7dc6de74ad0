// Deno, Bun, Node and Python processes on one segment, one lock and one channel at once.
import assert from "node:assert/strict";
import { Channel, SharedMemory } from "../mod.ts";
import { test } from "./_harness.ts";
import { hasCommand, ROOT, runOk, start, stop, tsCommand, uniqueName } from "./_process.ts";

const hasNumpy = hasCommand("python3") &&
  (await runOk(["python3", "-c", "import numpy"]).then(() => true, () => false));
const PEER = "tests/children/mixed_peer.ts";
const PY = `${ROOT}/tests/py/mixed_peer.py`;

test(
  "Deno, Bun and Node share one mutex and one channel over jobs Python wrote; Python reads the total",
  async () => {
    const count = 1500;
    using shm = SharedMemory.create({ name: uniqueName("mixed"), size: 64 + 4 * count });
    using ch = Channel.create({ name: uniqueName("mixedch"), capacity: 16 * 1024 });
    try {
      await runOk(["python3", PY, "fill", shm.name, String(count)]);
      const peers = (["deno", "bun", "node"] as const).map((rt, index) =>
        start(tsCommand(rt, PEER, [shm.name, ch.name, String(index), String(count)]), { timeout: 90_000 })
      );
      try {
        const seen = new Map<number, string>();
        while (seen.size < count) {
          const message = await ch.receiveString({ timeout: 60_000 });
          assert.ok(message !== null, "the channel ended early");
          const [rt = "", i = "", value = ""] = message.split(" ");
          assert.equal(Number(value), Number(i) + 1, message);
          assert.equal(seen.has(Number(i)), false, `job ${i} sent twice`);
          assert.equal(rt, ["deno", "bun", "node"][Number(i) % 3], message);
          seen.set(Number(i), rt);
        }
        for (const peer of peers) {
          const r = await peer.done;
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stdout, /^done$/m);
        }
      } finally {
        peers.forEach(stop);
      }
      const totals = JSON.parse(await runOk(["python3", PY, "read", shm.name]));
      assert.deepEqual(totals, { sum: (count * (count + 1)) / 2, counts: [500, 500, 500] });
      assert.equal(ch.tryReceive(), null);
    } finally {
      shm.unlink();
      ch.unlink();
    }
  },
  { skip: !hasNumpy && "python3 with NumPy is not installed", timeout: 120_000 },
);
