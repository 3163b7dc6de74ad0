/**
 * Wait on, and wake, a 32-bit word inside shared memory — across processes and runtimes.
 *
 * The one blocking primitive the synchronization classes are built on. This file is the
 * OS-independent part ({@linkcode FutexWord} and the drivers of wait loops); each OS has its own:
 *
 * | OS | how a wait sleeps | file | cross-process |
 * |---|---|---|---|
 * | Linux | `futex(FUTEX_WAIT)` / `futex(FUTEX_WAKE)`, shared | `futex_linux.ts` | yes, checked |
 * | macOS | `__ulock_wait` / `__ulock_wake`, `UL_COMPARE_AND_WAIT_SHARED` | `futex_darwin.ts` | written to documented facts, unverified here |
 * | Windows | two named semaphores per word (`WaitOnAddress` is per-process only) | `futex_windows.ts` | yes, checked under Wine |
 * | none of these | polling with `Atomics.load`, backoff capped at 1 ms | `futex_poll.ts` | yes |
 *
 * Async waits never block the event loop. On Linux 5.16+ and Windows they sleep on a few waiter
 * threads shared by the whole process (`waiters.ts`: `futex_waitv`, `WaitForMultipleObjects`).
 * Elsewhere (macOS, older kernels, or `SHM_THREAD_PER_WAIT=1`) each sleeps on a thread of its own,
 * chosen by the host layer (`sleepOffThread` in `_host.ts`: a Deno `nonblocking` FFI call, or a
 * reused Bun worker), at most 1 s at a time before the wait re-checks (see
 * {@linkcode MAX_ASYNC_SLEEP_MS}). Nothing spins.
 *
 * Every wait can return early for no reason ("spurious wake-up"): callers re-check their condition
 * in a loop, as with any futex.
 *
 * @module
 */

import type { SharedMemory } from "../shared_memory.ts";
import { addressIn, closers } from "../_internal.ts";
import { type Pointer, pointerAt } from "../ffi/_ffi.ts";
import { os } from "../ffi/runtime.ts";
import { releaseWaitObjects, windowsNative } from "./futex_windows.ts";
import { linuxNative } from "./futex_linux.ts";
import { darwinNative } from "./futex_darwin.ts";
import { pollAsync, pollSync } from "./futex_poll.ts";
import { sleepSync } from "./sleep.ts";

/**
 * How a wait ended: woken (or spuriously returned), the word did not hold `expected`, the time ran
 * out, or its {@linkcode Watch} found the party it waits for dead.
 */
export type WaitResult = "ok" | "not-equal" | "timed-out" | "dead";

/**
 * A liveness check of the party a wait depends on (a lock holder, a barrier's waiting parties, a
 * channel's senders): true when it died. Waits on waiter threads (`waiters.ts`) do not wake every
 * slice to run it themselves: the waiter table runs one per (word, value) each slice, for every
 * wait on it, and ends them all with `"dead"` when it returns true.
 */
export type Watch = () => boolean;

/** Count meaning "every waiter". */
const ALL = 0x7fff_ffff;

/** What an OS wait needs to know about its word. */
export interface Word {
  readonly shm: SharedMemory;
  readonly byteOffset: number;
  readonly view: Int32Array;
  readonly address: bigint;
  readonly pointer: Pointer;
}

/** The OS wait and wake, for one word: one per OS, in `futex_<os>.ts`. */
export interface Native {
  /** Blocks this thread; returns the outcome exactly. */
  waitSync(w: Word, expected: number, timeoutMs: number | undefined): WaitResult;
  /**
   * The same wait, asleep on another thread: the event loop keeps running. A `cancellable` native
   * ends the wait itself when `signal` aborts (rejecting with its reason), with no wake-up.
   */
  waitAsync(
    w: Word,
    expected: number,
    timeoutMs: number | undefined,
    signal?: AbortSignal,
    watch?: Watch,
  ): Promise<WaitResult>;
  /**
   * True when async waits sleep on shared waiter threads (`waiters.ts`): they take the signal and a
   * {@linkcode Watch}, need no bounded slices, and a closing segment is announced through `closing`.
   */
  readonly cancellable?: boolean;
  /** Called when `shm` closes, before its mapping goes: ends the async waits on its words. */
  closing?(shm: SharedMemory): void;
  /** Wakes up to `count` waiters (`0x7fff_ffff`: all); returns how many, or a lower bound. */
  wake(w: Word, count: number): number;
  /**
   * Blocks this thread while every word holds its value, until one is woken or `timeoutMs` passes
   * (`WaitSet.waitSync`). Absent, or for more words than one call takes (null), waits poll.
   */
  waitManySync?(words: readonly WordValue[], timeoutMs: number): WaitResult | null;
}

/** A word and the value a wait expects it to hold. */
export interface WordValue {
  readonly word: Word;
  readonly expected: number;
}

let native: Native | null | undefined;

/**
 * @internal Tests only: use the polling fallback instead of the OS wait, or go back.
 * Primitives built before the switch keep what they had only until their next call.
 */
export function usePollingFallback(on: boolean): void {
  native = on ? null : undefined;
}

/** The OS wait/wake for this platform, or null where there is none (then waits poll). */
function getNative(): Native | null {
  if (native !== undefined) return native;
  if (os === "windows") return native = windowsNative();
  if (os === "linux") return native = linuxNative();
  return native = darwinNative();
}

/**
 * Whether async waits sleep on waiter threads (`waiters.ts`), which look at every word each slice
 * themselves: a waiter then needs no slice of its own to catch a lost wake-up.
 */
export function asyncWaitsWatched(): boolean {
  return getNative()?.cancellable === true;
}

function checkArgs(shm: SharedMemory, byteOffset: number, what: string): Int32Array {
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 4 !== 0) {
    throw new RangeError(
      `Cannot ${what}: byteOffset must be a non-negative multiple of 4, got ${byteOffset}`,
    );
  }
  if (byteOffset + 4 > shm.size) {
    throw new RangeError(
      `Cannot ${what}: byteOffset ${byteOffset} is past the end of a ${shm.size}-byte segment`,
    );
  }
  return shm.view(Int32Array, byteOffset, 1);
}

function checkTimeout(timeoutMs: number | undefined, what: string): void {
  if (
    timeoutMs !== undefined && (typeof timeoutMs !== "number" || Number.isNaN(timeoutMs) || timeoutMs < 0)
  ) {
    throw new RangeError(`Cannot ${what}: timeoutMs must be a non-negative number, got ${timeoutMs}`);
  }
}

/**
 * The longest one async sleep lasts before the thread that sleeps for it checks in (the wait then
 * re-checks the word and sleeps again, unseen by its caller). It bounds how long that thread can
 * outlive its wait when the segment is closed just as it went to sleep (see {@linkcode watchClose}).
 */
const MAX_ASYNC_SLEEP_MS = 1000;

/** An async wait whose thread sleeps now. */
interface Sleeper {
  word: Word;
  native: Native;
  reject(error: unknown): void;
}

/** The async waits asleep on each open `SharedMemory`. */
const sleepers = new WeakMap<SharedMemory, Set<Sleeper>>();

/**
 * Makes `shm.close()` end the async waits asleep on it: before the mapping goes, each sleeping
 * thread is woken (so it returns now, not at its timeout), and each wait rejects with a TypeError.
 * On Windows the wait semaphores' handles are closed too.
 */
function watchClose(shm: SharedMemory): void {
  const waits = new Set<Sleeper>();
  sleepers.set(shm, waits);
  let list = closers.get(shm);
  if (!list) closers.set(shm, list = []);
  list.push(() => {
    const n = getNative();
    if (n?.closing) n.closing(shm);
    for (const s of waits) {
      try {
        // Waiter threads are rung too (`closing`), but a thread rung by its doorbell leaves the
        // other words' queues only once it runs: this wake takes it off this word's queue now.
        s.native.wake(s.word, ALL);
      } catch {
        // nothing more can be done; the thread checks in within MAX_ASYNC_SLEEP_MS
      }
      s.reject(new TypeError("Cannot wait on the word: the SharedMemory was closed while waiting"));
    }
    waits.clear();
    if (os === "windows") releaseWaitObjects(shm);
  });
}

/**
 * One sleep a wait loop asks for: while the word holds `expected`, at most `timeoutMs` (Infinity:
 * no limit). A loop whose `timeoutMs` is a slice only so that the word is looked at again, or a
 * peer probed, gives `untilMs`, the time left to its own deadline: an async wait on a waiter
 * thread, whose word is looked at every slice anyway (`waiters.ts`), then sleeps until that. A loop
 * that probes a peer gives the probe as `watch` too, and leaves probing to the waiter table while
 * {@linkcode asyncWaitsWatched} (its sleep then ends with `"dead"` when the probe finds it dead).
 */
export type Sleep = readonly [expected: number, timeoutMs: number, untilMs?: number, watch?: Watch];

/** Infinity means no timeout. */
function finite(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined || timeoutMs === Infinity ? undefined : timeoutMs;
}

/**
 * One Int32 of a segment, prepared for repeated waits and wakes: the checks and the address
 * computation are done once. Internal to this module's primitives.
 */
export class FutexWord {
  readonly #word: Word;

  constructor(shm: SharedMemory, byteOffset: number, what = "use the word") {
    const view = checkArgs(shm, byteOffset, what);
    const address = addressIn(shm, byteOffset);
    this.#word = { shm, byteOffset, view, address, pointer: pointerAt(address) };
    if (!sleepers.has(shm)) watchClose(shm);
  }

  /** The word itself (for {@linkcode waitManySync}). */
  get target(): Word {
    return this.#word;
  }

  #open(): Native | null {
    if (this.#word.shm.closed) throw new TypeError("Cannot wait or wake: the SharedMemory is closed");
    return getNative();
  }

  /**
   * Blocks this thread while the word holds `expected`, until a wake (from any process), or
   * `timeoutMs` passes (undefined or Infinity: no limit). `"not-equal"` at once when the word
   * already differs; `"ok"` may be spurious: re-check in a loop.
   */
  waitSync(expected: number, timeoutMs?: number): WaitResult {
    const n = this.#open();
    const w = this.#word;
    if (Atomics.load(w.view, 0) !== (expected | 0)) return "not-equal";
    if (n) return n.waitSync(w, expected, finite(timeoutMs));
    return pollSync(w.view, expected, finite(timeoutMs));
  }

  /**
   * Like {@linkcode FutexWord.waitSync}, but the sleep is on another thread and the event loop keeps
   * running. Aborting `signal` rejects with its reason at once; closing the segment rejects with a
   * TypeError.
   */
  async waitAsync(
    expected: number,
    timeoutMs?: number,
    signal?: AbortSignal,
    watch?: Watch,
  ): Promise<WaitResult> {
    signal?.throwIfAborted();
    const n = this.#open();
    const w = this.#word;
    if (Atomics.load(w.view, 0) !== (expected | 0)) return "not-equal";
    const limit = finite(timeoutMs);
    if (!n) return await pollAsync(w.view, expected, limit, signal);
    // Waiter threads sleep as long as asked: closing and aborting end their waits at once.
    if (n.cancellable) return await this.#sleepOnce(n, expected, limit, signal, watch);
    // The thread sleeps at most MAX_ASYNC_SLEEP_MS at a time (see there); when that slice ends
    // before the caller's timeout, the wait goes on here, unseen by the caller.
    const deadline = limit === undefined ? Infinity : performance.now() + limit;
    for (;;) {
      const left = deadline - performance.now();
      const slice = Math.min(MAX_ASYNC_SLEEP_MS, Math.max(0, left));
      const result = await this.#sleepOnce(n, expected, slice, signal);
      if (result !== "timed-out" || slice === left || performance.now() >= deadline) return result;
      if (Atomics.load(w.view, 0) !== (expected | 0)) return "ok";
    }
  }

  /** One sleep on another thread, which `close()` (and the signal) can end at once. */
  #sleepOnce(
    n: Native,
    expected: number,
    ms: number | undefined,
    signal: AbortSignal | undefined,
    watch?: Watch,
  ): Promise<WaitResult> {
    const w = this.#word;
    signal?.throwIfAborted();
    if (w.shm.closed) throw new TypeError("Cannot wait on the word: the SharedMemory is closed");
    const pending = n.cancellable
      ? n.waitAsync(w, expected, ms, signal, watch)
      : n.waitAsync(w, expected, ms);
    const waits = sleepers.get(w.shm)!;
    return new Promise<WaitResult>((resolve, reject) => {
      const entry: Sleeper = { word: w, native: n, reject };
      waits.add(entry);
      const onAbort = () => {
        reject(signal!.reason);
        // Release the thread that sleeps for us; the others it wakes re-check and sleep again.
        if (!w.shm.closed && !n.cancellable) n.wake(w, ALL);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      pending.then(resolve, reject).finally(() => {
        waits.delete(entry);
        signal?.removeEventListener("abort", onAbort);
      });
    });
  }

  /**
   * Drives a wait loop written once for both kinds of caller: the loop yields the sleeps it needs
   * (`[expected, timeoutMs]`), and this blocks the thread for each. A failed sleep is thrown into
   * the loop, so its `finally` blocks run. An aborted `signal` is thrown into the loop the same
   * way, checked before each sleep: a blocked thread sees it when its current sleep ends.
   */
  runSync<T>(loop: Generator<Sleep, T, WaitResult>, signal?: AbortSignal): T {
    let step = loop.next();
    while (!step.done) {
      let result: WaitResult;
      try {
        signal?.throwIfAborted();
        result = this.waitSync(step.value[0], step.value[1]);
      } catch (error) {
        step = loop.throw(error);
        continue;
      }
      step = loop.next(result);
    }
    return step.value;
  }

  /** Like {@linkcode FutexWord.runSync}, but each sleep awaits without blocking the event loop. */
  async runAsync<T>(loop: Generator<Sleep, T, WaitResult>, signal?: AbortSignal): Promise<T> {
    let step = loop.next();
    while (!step.done) {
      let result: WaitResult;
      try {
        const [expected, timeoutMs, untilMs, watch] = step.value;
        const stretch = untilMs !== undefined && getNative()?.cancellable === true;
        result = stretch
          ? await this.waitAsync(expected, untilMs, signal, watch)
          : await this.waitAsync(expected, timeoutMs, signal);
      } catch (error) {
        step = loop.throw(error);
        continue;
      }
      step = loop.next(result);
    }
    return step.value;
  }

  /**
   * Wakes up to `count` waiters of the word (default: all), in any process that maps the segment.
   * Returns how many were woken (on macOS a lower bound when waking all; polling: always 0).
   */
  wake(count: number = ALL): number {
    const n = this.#open();
    if (!n || count <= 0) return 0;
    return n.wake(this.#word, Math.min(count, ALL));
  }
}

/**
 * Blocks this thread while each word of `sleeps` holds its value, until one is woken (from any
 * process), differs, or `timeoutMs` passes: one OS call on all of them (Linux `futex_waitv`,
 * Windows `WaitForMultipleObjects`) where there is one, else polling with `Atomics.load` and a
 * backoff capped at 1 ms. `"ok"` may be spurious: re-check in a loop.
 *
 * @throws {TypeError} when a word's segment is closed
 */
export function waitManySync(
  sleeps: readonly (readonly [FutexWord, number])[],
  timeoutMs: number,
): WaitResult {
  const words: WordValue[] = [];
  const seen = new Set<bigint>();
  for (const [f, expected] of sleeps) {
    const word = f.target;
    if (word.shm.closed) throw new TypeError("Cannot wait or wake: the SharedMemory is closed");
    if (Atomics.load(word.view, 0) !== (expected | 0)) return "not-equal";
    // The same word twice (two handles of one primitive) is slept on once.
    if (seen.has(word.address)) continue;
    seen.add(word.address);
    words.push({ word, expected: expected | 0 });
  }
  const n = getNative();
  const r = n?.waitManySync?.(words, timeoutMs) ?? null;
  if (r !== null) return r;
  const deadline = performance.now() + timeoutMs;
  let pause = 0.05;
  for (;;) {
    for (const { word, expected } of words) {
      if (word.view.length === 0 || Atomics.load(word.view, 0) !== expected) return "ok";
    }
    const left = deadline - performance.now();
    if (left <= 0) return "timed-out";
    sleepSync(Math.min(pause, left));
    pause = Math.min(1, pause * 2);
  }
}

// ---- Tests and benchmarks only ----------------------------------------------------------------------
// One-shot forms of the FutexWord methods, with their arguments checked. Not part of any public
// module; tests and benches import them from here.

/** @internal Tests only: {@linkcode FutexWord.waitSync} on a word built for this one call. */
export function futexWaitSync(
  shm: SharedMemory,
  byteOffset: number,
  expected: number,
  timeoutMs?: number,
): WaitResult {
  checkTimeout(timeoutMs, "wait on the word");
  return new FutexWord(shm, byteOffset, "wait on the word").waitSync(expected, timeoutMs);
}

/** @internal Tests only: {@linkcode FutexWord.waitAsync} on a word built for this one call. */
export async function futexWaitAsync(
  shm: SharedMemory,
  byteOffset: number,
  expected: number,
  timeoutMs?: number,
  signal?: AbortSignal,
): Promise<WaitResult> {
  checkTimeout(timeoutMs, "wait on the word");
  return await new FutexWord(shm, byteOffset, "wait on the word").waitAsync(expected, timeoutMs, signal);
}

/** @internal Tests only: {@linkcode FutexWord.wake} on a word built for this one call. */
export function futexWake(shm: SharedMemory, byteOffset: number, count: number = ALL): number {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(
      `Cannot wake waiters on the word: count must be a non-negative integer, got ${count}`,
    );
  }
  return new FutexWord(shm, byteOffset, "wake waiters on the word").wake(count);
}
