/**
 * Where plain loads and stores may stand in for `Atomics` ones.
 *
 * An `Atomics` call costs 10 to 20 ns under V8 and JavaScriptCore (a call into the engine), a plain
 * typed-array access about 1; a locked instruction (x86-64 compiles `Atomics.store` and every
 * read-modify-write to one) also waits for the cache lines of all earlier stores, which across
 * processes costs more than the call.
 *
 * On x86-64 the CPU keeps loads in order with other loads and stores with other stores (total
 * store order): a plain store of a word that publishes data (a stamp, a version) after the data
 * releases it, as an `Atomics` store would, since the JITs keep stores to typed arrays in program
 * order and move no access across an `Atomics` call. A plain load after an `Atomics` call stays
 * after it, so a flag read right after a compare-and-swap may be plain.
 *
 * Loads are another matter: a JIT may reorder two plain loads with no store between (a Bun
 * fan-out lost messages when a topic's subscriber read the head and then the version with plain
 * loads), and may fold a plain load into an earlier plain load of the same word. So the load that
 * acquires data (a stamp, a head, a seqlock's second look at its version) is an `Atomics` load everywhere; a plain
 * load is used only where a later compare-and-swap or `Atomics` load checks it, or where the
 * address it reads depends on the value of the load before it. Every loop that polls shared
 * memory keeps an `Atomics` call (else a JIT may hoist the poll out of the loop).
 *
 * What plain accesses never give, on any CPU, is a store ordered before a later load (a "may
 * sleep" flag read after a message is published): that still takes a locked instruction between
 * the two.
 *
 * ARM64 orders neither loads nor stores: there every such access stays an `Atomics` one.
 *
 * @module
 */

import { arch } from "../ffi/runtime.ts";

/** True on x86-64, where a plain store releases (see the module's text). */
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
