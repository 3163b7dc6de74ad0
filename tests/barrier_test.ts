// Barrier: the contract in one process, and 4 processes (2 Deno, 2 Bun) released together, round
// after round, none before all 4 arrived.
import assert from "node:assert/strict";
import { Barrier, SharedMemory, TimeoutError } from "../mod.ts";
import { test } from "./_harness.ts";
import { runOk, tsCommand, uniqueName } from "./_process.ts";

const CHILD = "tests/children/sync_child.ts";

function segment(): SharedMemory {
  return SharedMemory.create({ name: uniqueName("barrier"), size: 4096 });
}

test("a barrier of 1 passes at once; a timeout withdraws the party; bad parties are RangeErrors", async () => {
  const shm = segment();
  try {
    assert.equal(Barrier.BYTE_LENGTH, 4);
    assert.equal(new Barrier(shm, 0, 1).waitSync(), 0);
    assert.equal(await new Barrier(shm, 0, 1).wait(), 0);
    const b = new Barrier(shm, 4, 2);
    assert.equal(b.parties, 2);
    assert.throws(() => b.waitSync({ timeout: 20 }), TimeoutError);
    assert.equal(b.waiting, 0, "the timed-out party was withdrawn");
    await assert.rejects(b.wait({ timeout: 20 }), TimeoutError);
    assert.equal(b.waiting, 0);
    assert.throws(() => new Barrier(shm, 8, 0), RangeError);
    assert.throws(() => new Barrier(shm, 8, 65_536), RangeError);
    assert.throws(() => new Barrier(shm, 8, 2.5), RangeError);
  } finally {
    shm.close();
    shm.unlink();
  }
});

test("two async parties in one thread meet at the barrier", async () => {
  const shm = segment();
  try {
    const b = new Barrier(shm, 0, 2);
    const first = b.wait({ timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(b.waiting, 1);
    const second = await b.wait({ timeout: 10_000 });
    assert.deepEqual([await first, second].sort(), [0, 1]);
    assert.equal(b.waiting, 0);
  } finally {
    shm.close();
    shm.unlink();
  }
});

test("4 processes (2 Deno, 2 Bun), 6 rounds: nobody leaves before all 4 arrived", async () => {
  const shm = segment();
  try {
    const rounds = 6;
    const outs = await Promise.all(
      (["deno", "deno", "bun", "bun"] as const).map((rt, i) =>
        runOk(tsCommand(rt, CHILD, ["barrier", shm.name, "4", String(rounds), String(i)]), {
          timeout: 90_000,
        })
      ),
    );
    const indexes = outs.map((o) => o.match(/indexes ([\d,]+)/)![1].split(",").map(Number));
    for (let r = 0; r < rounds; r++) {
      assert.deepEqual(
        indexes.map((ix) => ix[r]).sort(),
        [0, 1, 2, 3],
        `round ${r}: one of each arrival index`,
      );
      assert.equal(shm.view(Int32Array, 64 + 4 * r, 1)[0], 4);
    }
    assert.equal(new Barrier(shm, 0, 4).waiting, 0);
  } finally {
    shm.close();
    shm.unlink();
  }
}, { timeout: 120_000 });
