// A peer process for the SharedMap tests (runs under Deno or Bun).
// Usage: map_peer.ts hammer <map name> <peer id> <rounds>
//   Hammers overlapping keys with set, get, delete, increment and compareAndSet; prints one JSON
//   line with what it counted, or "torn <key>" and exits 1 on a value whose checksum fails.
// Usage: map_peer.ts churn <map name> <peer id>
//   Writes forever (until killed) with every kind of write, printing "running" once started.
import process from "node:process";
import { SharedMap } from "../../mod.ts";

const [mode, name, idArg, roundsArg] = process.argv.slice(2);
const id = Number(idArg);
const map = SharedMap.open(name!);
let seed = (id + 1) * 0x9e3779b1;
function random(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}

/** A value carrying its own checksum: 4 bytes of FNV-1a over the rest. */
function checked(length: number): Uint8Array {
  const v = new Uint8Array(4 + length);
  for (let i = 4; i < v.length; i++) v[i] = random(256);
  new DataView(v.buffer).setUint32(0, fnv(v.subarray(4)));
  return v;
}
function fnv(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}
function intact(v: Uint8Array): boolean {
  return v.length >= 4 && new DataView(v.buffer, v.byteOffset).getUint32(0) === fnv(v.subarray(4));
}

const me = `peer${id}`;
const increments = [0, 0, 0, 0];
let acquired = 0;
let reads = 0;

function step(): void {
  const op = random(100);
  if (op < 40) {
    const key = `v${random(64)}`;
    const v = map.get(key);
    reads++;
    if (v !== undefined && !intact(v)) {
      console.log(`torn ${key}`);
      process.exit(1);
    }
  } else if (op < 60) {
    map.set(`v${random(64)}`, checked(random(200)));
  } else if (op < 68) {
    map.delete(`v${random(64)}`);
  } else if (op < 88) {
    const c = random(4);
    map.increment(`c${c}`, 1);
    increments[c]!++;
  } else if (map.compareAndSet("lock", undefined, me)) {
    // Inside: nobody else may change the lock, and a plain read-modify-write stays exact.
    const n = Number(map.getString("guarded") ?? "0");
    if (!map.compareAndSet("lock", me, me)) {
      console.log("lock stolen");
      process.exit(1);
    }
    map.set("guarded", String(n + 1));
    acquired++;
    if (!map.compareAndSet("lock", me, "")) {
      console.log("lock stolen");
      process.exit(1);
    }
    map.delete("lock");
  }
}

if (mode === "hammer") {
  const rounds = Number(roundsArg);
  // Start together: each peer counts itself in, then waits for all four.
  map.increment("ready");
  const deadline = Date.now() + 60_000;
  while (map.getJSON("ready") !== 4) {
    if (Date.now() > deadline) throw new Error("the other peers never came");
  }
  for (let i = 0; i < rounds; i++) step();
  console.log(JSON.stringify({ increments, acquired, reads }));
} else if (mode === "churn") {
  console.log("running");
  for (;;) step();
}
