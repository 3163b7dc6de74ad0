/**
 * SharedMap's get and set in one process, in CPU time (best of 5), beside a JavaScript `Map`: for
 * profiling, not part of the suite. 100,000 keys of up to 9 bytes, 64-byte values, as the map bench.
 *
 *   deno run -A bench/map/micro.ts [iterations] [module to compare, e.g. old_shared_map.ts] [filter]
 *   bun bench/map/micro.ts …
 *
 * @module
 */
import process from "node:process";
import { SharedMap as Current } from "../../shared_map.ts";

/** Another build of the module to compare with (a path relative to the project), or this one. */
const SharedMap: typeof Current = process.argv[3]
  ? (await import(new URL(`../../${process.argv[3]}`, import.meta.url).href)).SharedMap
  : Current;

const KEYS = 100_000;
const N = Number(process.argv[2] ?? 1_000_000);
const map = SharedMap.create({ capacity: KEYS, maxKeyBytes: 16, maxValueBytes: 64 });
const value = new Uint8Array(64).fill(7);
const names = Array.from({ length: KEYS }, (_, i) => `key:${i}`);
for (let i = 0; i < KEYS; i++) map.set(names[i]!, value);
let seed = 0x9e3779b1;
function random(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const idx = new Int32Array(N);
for (let i = 0; i < N; i++) idx[i] = random(KEYS);
function cpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
function bench(label: string, f: (i: number) => void, n = N) {
  if (process.argv[4] && !label.includes(process.argv[4])) return;
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = cpu();
    for (let i = 0; i < n; i++) f(i);
    best = Math.min(best, cpu() - t0);
  }
  console.log(label.padEnd(28), (best * 1e6 / n).toFixed(1), "ns/op (CPU time, best of 5)");
}
let sink = 0;
bench("get same key", () => {
  sink += map.get("key:5")!.length;
});
bench("has same key", () => {
  sink += map.has("key:5") ? 1 : 0;
});
bench("get random", (i) => {
  sink += map.get(names[idx[i]!]!)!.length;
});
bench("has random", (i) => {
  sink += map.has(names[idx[i]!]!) ? 1 : 0;
});
bench("set same key", () => {
  map.set("key:5", value);
}, N / 4);
bench("set random", (i) => {
  map.set(names[idx[i]!]!, value);
}, N / 4);
bench("baseline names[idx]", (i) => {
  sink += names[idx[i]!]!.length;
});
const m = new Map<string, Uint8Array>();
for (let i = 0; i < KEYS; i++) m.set(names[i]!, value.slice());
bench("js Map.get random", (i) => {
  sink += m.get(names[idx[i]!]!)!.length;
});
console.log(sink > 0);
map.close();
map.unlink();
