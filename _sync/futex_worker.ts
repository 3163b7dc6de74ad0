/**
 * The body of a wait worker (started by `_host.ts` under Bun and Node, which have no nonblocking FFI
 * calls): it makes one blocking wait at a time on its own thread and posts the call's raw result back.
 *
 * @module
 */

import { type OffThreadWait, waitBlocking } from "../ffi/futex.ts";
import { runtime } from "../ffi/runtime.ts";

/** A web worker's global scope (Bun), or Node's `parentPort`, reduced to what this file uses. */
interface Port {
  postMessage(message: unknown): void;
}

if (runtime === "node") {
  const process = (globalThis as unknown as { process: { getBuiltinModule(id: string): unknown } }).process;
  const { parentPort } = process.getBuiltinModule("node:worker_threads") as {
    parentPort: Port & { on(event: "message", listener: (w: OffThreadWait) => void): void };
  };
  parentPort.on("message", (w) => parentPort.postMessage(waitBlocking(w)));
} else {
  const scope = globalThis as unknown as Port & {
    onmessage: ((event: { data: OffThreadWait }) => void) | null;
  };
  scope.onmessage = (event) => {
    scope.postMessage(waitBlocking(event.data));
  };
}
