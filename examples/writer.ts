/**
 * The classic shared-memory pair, part 1 of 2: the writer.
 *
 * Creates the segment `/dev/shm/shm-example`, writes a message into it, waits for a reader to
 * answer, prints the answer, and removes the segment. It is owned by a `SharedMemoryScope`, so it
 * is removed on Ctrl-C or a crash as well; the reader only attaches, so it never removes it.
 *
 * Run, in two terminals (either runtime on either side; start them in either order):
 *
 *     deno run --allow-ffi examples/writer.ts        # or: bun examples/writer.ts
 *     bun examples/reader.ts                         # or: deno run --allow-ffi examples/reader.ts
 *
 * Arguments: `writer.ts [NAME] [MESSAGE] [TIMEOUT_SECONDS]` (defaults: shm-example, a greeting, 300).
 * Outside this repository, import from `jsr:@x/shm` instead of `../mod.ts`.
 *
 * The layout both sides agree on (`examples/_pair.ts`): an int32 state at byte 0 (0 empty,
 * 1 message ready, 2 answered), the message length at 4, the answer length at 8, the message
 * from byte 64 and the answer from byte 2048.
 *
 * @module
 */

import process from "node:process";
import { AlreadyExistsError, SharedMemoryScope } from "../mod.ts";
import { ANSWER, ANSWERED, EMPTY, LAYOUT_SIZE, MESSAGE, readText, READY, sleep, writeText } from "./_pair.ts";

const [
  name = "shm-example",
  message = `Hello from the writer (${runtimeName()}, pid ${process.pid})`,
  limit = "300",
] = process.argv.slice(2);

using scope = new SharedMemoryScope();
let shm;
try {
  shm = scope.create({ name, size: LAYOUT_SIZE });
} catch (error) {
  if (!(error instanceof AlreadyExistsError)) throw error;
  console.error(`"${name}" already exists: another writer is running, or one was killed with SIGKILL.`);
  console.error(`Remove it with: deno run -A cli/mod.ts rm ${name}`);
  process.exit(1);
}

const header = shm.view(Int32Array, 0, 3);
writeText(shm.buf, MESSAGE, header, 1, message);
Atomics.store(header, 0, READY); // publish: the reader sees the text before the state changes
console.log(`writer: wrote ${JSON.stringify(message)} to /dev/shm/${name}; waiting for a reader…`);

const deadline = Date.now() + Number(limit) * 1000;
while (Atomics.load(header, 0) !== ANSWERED) {
  if (Date.now() > deadline) {
    console.error(`writer: no reader answered within ${limit} s; removing "${name}"`);
    process.exit(2); // the scope removes the segment at exit
  }
  await sleep(10);
}
console.log(`writer: the reader answered ${JSON.stringify(readText(shm.buf, ANSWER, header, 2))}`);
Atomics.store(header, 0, EMPTY);
// End of scope: the segment is closed and removed.

function runtimeName(): string {
  return "Bun" in globalThis ? "Bun" : "Deno" in globalThis ? "Deno" : "Node";
}
