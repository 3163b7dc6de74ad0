/**
 * The classic shared-memory pair, part 2 of 2: the reader.
 *
 * Attaches to the segment `examples/writer.ts` created (waiting for it if the writer has not
 * started yet), prints the message, writes an answer and detaches. It attaches through a
 * `SharedMemoryScope`, which closes what it opened and never removes it — not at exit, not on
 * Ctrl-C — unlike Python 3.8–3.12, whose resource tracker removes segments a reader merely attached
 * to (CPython gh-82300).
 *
 * Run, in two terminals (either runtime on either side; start them in either order):
 *
 *     deno run --allow-ffi examples/writer.ts        # or: bun examples/writer.ts
 *     bun examples/reader.ts                         # or: deno run --allow-ffi examples/reader.ts
 *
 * Arguments: `reader.ts [NAME] [TIMEOUT_SECONDS]` (defaults: shm-example, 300).
 * Outside this repository, import from `jsr:@x/shm` instead of `../mod.ts`.
 *
 * @module
 */

import process from "node:process";
import { NotFoundError, type SharedMemory, SharedMemoryScope } from "../mod.ts";
import { ANSWER, ANSWERED, MESSAGE, readText, READY, sleep, writeText } from "./_pair.ts";

const [name = "shm-example", limit = "300"] = process.argv.slice(2);
const deadline = Date.now() + Number(limit) * 1000;

using scope = new SharedMemoryScope();
let shm: SharedMemory | undefined;
while (!shm) {
  try {
    shm = scope.open(name);
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    if (Date.now() > deadline) {
      console.error(`reader: no segment "${name}" appeared within ${limit} s (start examples/writer.ts)`);
      process.exit(1);
    }
    await sleep(50);
  }
}

const header = shm.view(Int32Array, 0, 3);
while (Atomics.load(header, 0) !== READY) {
  if (Date.now() > deadline) {
    console.error(`reader: "${name}" exists but no message arrived within ${limit} s`);
    process.exit(2);
  }
  await sleep(10);
}
const message = readText(shm.buf, MESSAGE, header, 1);
console.log(`reader: read ${JSON.stringify(message)} from /dev/shm/${name}`);

const runtime = "Bun" in globalThis ? "Bun" : "Deno" in globalThis ? "Deno" : "Node";
writeText(shm.buf, ANSWER, header, 2, `Got it, thanks (${runtime}, pid ${process.pid})`);
Atomics.store(header, 0, ANSWERED);
// End of scope: the handle is closed; the segment stays for the writer to remove.
