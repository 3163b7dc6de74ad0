/**
 * The body of a wait worker (started by `_host.ts` under Bun, which has no nonblocking FFI calls):
 * it makes one blocking wait at a time on its own thread and posts the call's raw result back.
 *
 * @module
 */

import { type OffThreadWait, waitBlocking } from "../ffi/futex.ts";

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<OffThreadWait>) => void) | null;
  postMessage(message: unknown): void;
};

scope.onmessage = (event) => {
  scope.postMessage(waitBlocking(event.data));
};
