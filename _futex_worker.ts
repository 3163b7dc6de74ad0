/**
 * The worker behind `futexWaitAsync` under Bun (which has no nonblocking FFI calls): it blocks in the
 * kernel on one word at a time and posts the outcome back. Private; started by `_futex.ts`.
 *
 * @module
 */

import { waitAddressSync } from "./_futex.ts";

interface Request {
  address: bigint;
  expected: number;
  timeoutMs: number | undefined;
}

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<Request>) => void) | null;
  postMessage(message: unknown): void;
};

scope.onmessage = (event) => {
  const { address, expected, timeoutMs } = event.data;
  scope.postMessage(waitAddressSync(address, expected, timeoutMs));
};
