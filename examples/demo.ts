/**
 * The classic first example of shared memory, across runtimes.
 *
 * This (Deno) process creates a segment holding the int64 values [1, 2, 3, 4, 5], a Bun process
 * attaches to it by name and adds 10 to each, and this process prints [11, 12, 13, 14, 15], then
 * cleans up.
 *
 * Run: `npm run demo` (or `deno run -A examples/demo.ts`; `bun examples/demo.ts` and
 * `node --experimental-ffi examples/demo.ts` work too, with Deno as the peer).
 *
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SharedMemory } from "../mod.ts";

const here = fileURLToPath(new URL(".", import.meta.url));
const me = "Bun" in globalThis ? "Bun" : "Deno" in globalThis ? "Deno" : "Node";
const peerRuntime = me === "Deno" ? "bun" : "deno";

// Prefer the runtimes pinned by `npm ci`; fall back to PATH.
const local = `${here}../node_modules/.bin/${peerRuntime}`;
const peerBinary = existsSync(local) ? local : peerRuntime;
const peerArgs = peerRuntime === "deno"
  ? ["run", "-A", "--quiet", `${here}demo_peer.ts`]
  : [`${here}demo_peer.ts`];

using shm = SharedMemory.create({ size: 5 * 8 }); // unlinked when this scope ends
const values = shm.view(BigInt64Array);
values.set([1n, 2n, 3n, 4n, 5n]);
console.log(`${me}: created /dev/shm/${shm.name} holding [${values.join(", ")}]`);

const exitCode = await new Promise<number | null>((resolve, reject) => {
  const child = spawn(peerBinary, [...peerArgs, shm.name], { stdio: "inherit" });
  child.on("error", reject);
  child.on("close", resolve);
});
if (exitCode !== 0) throw new Error(`the ${peerRuntime} peer failed (exit ${exitCode})`);

console.log(`${me}: the segment now holds [${values.join(", ")}]`);
