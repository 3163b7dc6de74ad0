/**
 * Blocks the calling thread for `ms` milliseconds without spinning (`Atomics.wait` on a private
 * SharedArrayBuffer). Used only for short, bounded waits inside synchronous calls.
 */
export function sleepSync(ms: number): void {
  Atomics.wait(cell, 0, 0, ms);
}
const cell = new Int32Array(new SharedArrayBuffer(4));
