/**
 * The other half of `examples/demo.ts`: attaches to the segment named on the command line and adds
 * 10 to each int64 in it. Runs under Bun (or Deno).
 *
 * @module
 */

import { SharedMemory } from "../mod.ts";

const name = (globalThis as { Deno?: { args: string[] } }).Deno?.args[0] ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv[2];
const runtime = "Bun" in globalThis ? "Bun" : "Deno" in globalThis ? "Deno" : "Node";
if (name === undefined) throw new TypeError("usage: demo_peer.ts <segment name>");

using shm = SharedMemory.open(name);
const values = shm.view(BigInt64Array);
for (const [i, value] of values.entries()) values[i] = value + 10n;
console.log(`${runtime}: attached to ${name} and added 10 to each value`);
