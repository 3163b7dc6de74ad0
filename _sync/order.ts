/**
 * Where plain loads and stores may stand in for `Atomics` ones.
 *
 * An `Atomics` call costs 10 to 20 ns under V8 and JavaScriptCore (a call into the engine), a plain
 * typed-array access about 1; a locked instruction (x86-64 compiles `Atomics.store` and every
 * read-modify-write to one) also waits for the cache lines of all earlier stores, which across
 * processes costs more than the call.
 *
 * On x86-64 the CPU keeps loads in order with other loads and stores with other stores (total
 * store order): a plain load of a word that publishes data (a stamp, a version) acquires it, and a
 * plain store of it after the data releases it, as `Atomics` would. The JITs move no access across
 * an `Atomics` call and keep typed-array accesses in program order, so the code around them only
 * has to keep one `Atomics` call in every loop that polls shared memory (else a JIT may hoist the
 * poll out of the loop).
 *
 * What plain accesses never give, on any CPU, is a store ordered before a later load (a "may
 * sleep" flag read after a message is published): that still takes a locked instruction between
 * the two. Nor a second look: a JIT may fold a plain load into an earlier plain load of the same
 * word when no store or call lies between, so a read that must see a newer value (a seqlock's
 * second look at its version) stays an `Atomics` load.
 *
 * ARM64 orders neither loads nor stores: there every such access stays an `Atomics` one.
 *
 * @module
 */

import { arch } from "../ffi/runtime.ts";

/** True on x86-64, where a plain load acquires and a plain store releases (see the module's text). */
export const TSO: boolean = arch === "x86_64";

let sink = 0;

/**
 * Waits without touching shared memory, about `n` times 1.7 ns (a chain of integer multiplies:
 * 64 took 106 to 112 ns in Deno, Bun and Node on the machine of docs/benchmarks.md). Spinning
 * loops call it between two looks at a word another process writes: looking back to back takes
 * the word's cache line from the writer each time, so that every message of a full (or empty) ring
 * costs a transfer of the line both ways; pausing lets the writer finish a few first. Returns `n`.
 */
export function pause(n: number): number {
  let x = sink;
  for (let i = 0; i < n; i++) x = (Math.imul(x, 31) + i) | 0;
  sink = x;
  return n;
}
