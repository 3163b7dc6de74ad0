/**
 * The worker behind async waits under Bun (which has no nonblocking FFI calls): it blocks in the
 * kernel on one wait at a time and posts the outcome back. Private; started by `_sync/futex.ts`.
 *
 * @module
 */

import { waitAddressSync, type WorkerRequest } from "./futex.ts";
import { sleepOnHandle } from "./futex_windows.ts";

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: unknown): void;
};

scope.onmessage = (event) => {
  const request = event.data;
  scope.postMessage(
    "handle" in request
      ? sleepOnHandle(request.handle, request.ms)
      : waitAddressSync(request.address, request.expected, request.timeoutMs),
  );
};
