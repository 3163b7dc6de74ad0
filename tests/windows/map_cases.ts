/**
 * SharedMap on Windows named mappings: the calls, a second process incrementing at once, and a
 * writer terminated while it writes (its stripe taken over through the thread probe, nothing lost).
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { SharedMap } from "../../mod.ts";
import { test } from "./_runner.ts";
import { startPeer, uniqueName } from "./_util.ts";

const CHILD = fileURLToPath(new URL("./map_child.ts", import.meta.url));

function fill(map: SharedMap, tag: string): number {
  let n = 0;
  for (;;) {
    try {
      map.set(`${tag}${n}`, "x");
    } catch (error) {
      assert.ok(error instanceof RangeError, String(error));
      return n;
    }
    n++;
  }
}

test("map: set, get, increment, compareAndSet, delete, iteration on a Windows mapping", () => {
  using map = SharedMap.create({ name: uniqueName("map"), capacity: 32, maxValueBytes: 64 });
  using other = SharedMap.open(map.name);
  assert.equal(map.shm.backend, "windows");
  map.set("a", "1").setJSON("j", { x: 1 });
  assert.equal(other.getString("a"), "1");
  assert.deepEqual(other.getJSON("j"), { x: 1 });
  assert.equal(other.increment("n", 5), 5);
  assert.equal(map.increment("big", 1n), 1n);
  assert.equal(other.compareAndSet("lock", undefined, "me"), true);
  assert.equal(map.compareAndSet("lock", undefined, "you"), false);
  assert.equal(map.delete("a"), true);
  assert.deepEqual([...other.keys()].sort(), ["big", "j", "lock", "n"]);
  map.clear();
  assert.equal(fill(map, "f"), 32);
});

test("map: a second bun.exe process increments at the same time; every increment counts", async () => {
  using map = SharedMap.create({ name: uniqueName("mapinc"), capacity: 8 });
  const peer = startPeer(CHILD, ["increment", map.name, "3000"]);
  for (let i = 0; i < 3000; i++) map.increment("n");
  await peer.waitFor(/"done"/, 60_000);
  assert.equal(await peer.exited, 0, peer.stderr());
  assert.equal(map.getJSON("n"), 6000);
});

test("map: a writer terminated mid-write is taken over; the map fills to its capacity after", async () => {
  using map = SharedMap.create({ name: uniqueName("mapkill"), capacity: 64, maxValueBytes: 64 });
  for (let trial = 0; trial < 3; trial++) {
    const peer = startPeer(CHILD, ["churn", map.name]);
    await peer.waitFor(/running/, 60_000);
    await new Promise((r) => setTimeout(r, 50 + trial * 40));
    peer.kill();
    await peer.exited;
  }
  map.clear(); // every stripe: a dead writer's is taken over and repaired
  assert.equal(map.size, 0);
  assert.equal(fill(map, "f"), 64);
});
