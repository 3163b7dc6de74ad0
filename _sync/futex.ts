/**
 * Wait on, and wake, a 32-bit word inside shared memory — across processes and runtimes.
 *
 * The one blocking primitive the synchronization classes are built on:
 *
 * | OS | how a wait sleeps | cross-process |
 * |---|---|---|
 * | Linux | `futex(FUTEX_WAIT)` / `futex(FUTEX_WAKE)` through `syscall(2)`, shared (never `FUTEX_PRIVATE_FLAG`) | yes, checked |
 * | macOS | `__ulock_wait` / `__ulock_wake` with `UL_COMPARE_AND_WAIT_SHARED` (what libc++ uses for `std::atomic::wait`) | written to documented facts, unverified here |
 * | Windows | two named semaphores per word (`WaitOnAddress` is per-process only); see `_sync/futex_windows.ts` | yes, checked under Wine |
 *
 * Async waits never block the event loop. Under Deno the wait is a `nonblocking` FFI call (Deno runs
 * it on a thread of its own pool). Bun has no nonblocking FFI calls, so there the wait runs in a
 * `Worker` that blocks in the kernel and posts the outcome back; workers are reused, and an idle
 * worker does not keep the process alive. Either way, nothing spins.
 *
 * Where no OS wait can be had (an old macOS without `__ulock_*`), waits poll the word with
 * `Atomics.load` and a backoff capped at 1 ms.
 *
 * Every wait can return early for no reason ("spurious wake-up"): callers re-check their condition
 * in a loop, as with any futex.
 *
 * @module
 */

import type { SharedMemory } from "../shared_memory.ts";
import { addressIn, closers } from "../_internal.ts";
import { bindLibrary, foreignBuffer, type Pointer, pointerAt } from "../ffi/_ffi.ts";
import { LIBC_PATHS } from "../ffi/libc.ts";
import { arch, os, runtime } from "../ffi/runtime.ts";
import { sleepSync } from "./sleep.ts";
import { releaseWaitObjects, windowsWaitAsync, windowsWaitSync, windowsWake } from "./futex_windows.ts";

/** How a wait ended: woken (or spuriously returned), the word did not hold `expected`, or the time ran out. */
export type WaitResult = "ok" | "not-equal" | "timed-out";

const FUTEX_WAIT = 0;
const FUTEX_WAKE = 1;
const SYS_FUTEX = arch === "aarch64" ? 98n : 202n;
const EAGAIN = 11;
const ETIMEDOUT_LINUX = 110;
const ETIMEDOUT_DARWIN = 60;
const UL_COMPARE_AND_WAIT_SHARED = 3;
const ULF_WAKE_ALL = 0x100;
const ULF_NO_ERRNO = 0x0100_0000;
const ENOENT = 2;
/** Count meaning "every waiter". */
const ALL = 0x7fff_ffff;

const linuxFutexSymbols = {
  // long syscall(SYS_futex, int *uaddr, int futex_op, int val, const struct timespec *timeout, int *uaddr2, int val3);
  syscall: { parameters: ["i64", "pointer", "i32", "i32", "buffer", "pointer", "i32"], result: "i64" },
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

const linuxFutexNonblocking = {
  // The same call, run by Deno on a thread of its blocking pool; the result is a Promise.
  syscall: {
    parameters: ["i64", "pointer", "i32", "i32", "buffer", "pointer", "i32"],
    result: "i64",
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

const darwinUlockSymbols = {
  // int __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us);  /* 0 = forever */
  __ulock_wait: { parameters: ["u32", "pointer", "u64", "u32"], result: "i32" },
  // int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value);
  __ulock_wake: { parameters: ["u32", "pointer", "u64"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

const darwinUlockNonblocking = {
  __ulock_wait: { parameters: ["u32", "pointer", "u64", "u32"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** A futex keyed by the word's address (Linux, macOS). */
interface AddressNative {
  /** Blocks; returns the outcome exactly (errno is read on this thread). */
  waitSync(ptr: Pointer, expected: number, timeoutMs: number | undefined): WaitResult;
  /** Deno only: the same wait on another thread; resolves with the raw return value. */
  waitNonblocking?(ptr: Pointer, expected: number, timeoutMs: number | undefined): Promise<number>;
  wake(ptr: Pointer, count: number): number;
}

/** What an OS wait needs to know about its word. */
export interface Word {
  readonly shm: SharedMemory;
  readonly byteOffset: number;
  readonly view: Int32Array;
  readonly address: bigint;
  readonly pointer: Pointer;
}

/** The OS wait and wake, for one word. */
interface Native {
  waitSync(w: Word, expected: number, timeoutMs: number | undefined): WaitResult;
  /** The same wait, asleep on another thread: the event loop keeps running. */
  waitAsync(w: Word, expected: number, timeoutMs: number | undefined): Promise<WaitResult>;
  wake(w: Word, count: number): number;
}

let native: Native | null | undefined;
let addressNative: AddressNative | null | undefined;

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
  if (os === "windows") return native = windowsNative;
  const n = getAddressNative();
  return native = n && addressBased(n);
}

function getAddressNative(): AddressNative | null {
  if (addressNative !== undefined) return addressNative;
  if (os === "linux") return addressNative = linuxNative();
  if (os === "darwin") return addressNative = darwinNative();
  return addressNative = null;
}

/** Windows: named semaphores per word, see `_sync/futex_windows.ts`. */
const windowsNative: Native = {
  waitSync: windowsWaitSync,
  waitAsync: (w, expected, timeoutMs) =>
    windowsWaitAsync(w, expected, timeoutMs, (handle, ms) => inWorker<number>({ handle, ms })),
  wake: windowsWake,
};

/** Linux and macOS: the kernel keys the wait on the word's memory. */
function addressBased(n: AddressNative): Native {
  return {
    waitSync: (w, expected, timeoutMs) => n.waitSync(w.pointer, expected, timeoutMs),
    waitAsync(w, expected, timeoutMs) {
      if (!n.waitNonblocking) {
        return inWorker<WaitResult>({ address: w.address, expected: expected | 0, timeoutMs });
      }
      const started = performance.now();
      const word = w.view;
      return n.waitNonblocking(w.pointer, expected, timeoutMs).then((r): WaitResult => {
        if (r === 0) return "ok";
        // errno is not ours to read here (another thread made the call): tell the outcome by the word.
        if (os === "darwin" && r === -ETIMEDOUT_DARWIN) return "timed-out";
        if (timeoutMs !== undefined && performance.now() - started >= timeoutMs) return "timed-out";
        if (word.length === 1 && Atomics.load(word, 0) !== (expected | 0)) return "not-equal";
        return "ok";
      });
    },
    wake: (w, count) => n.wake(w.pointer, count),
  };
}

function timespec(timeoutMs: number): Uint8Array<ArrayBuffer> {
  const ts = new BigInt64Array(2);
  const ms = Math.max(0, timeoutMs);
  const whole = Math.floor(ms / 1000);
  ts[0] = BigInt(whole);
  ts[1] = BigInt(Math.min(999_999_999, Math.round((ms - whole * 1000) * 1e6)));
  return new Uint8Array(ts.buffer);
}

function linuxNative(): AddressNative {
  const lib = bindLibrary(LIBC_PATHS.linux, linuxFutexSymbols).symbols;
  // errno of this thread, read as plain memory right after the call.
  const errnoCell = new Int32Array(foreignBuffer(lib.__errno_location(), 4));
  let nb: ((...a: unknown[]) => Promise<unknown>) | undefined;
  return {
    waitSync(ptr, expected, timeoutMs) {
      const ts = timeoutMs === undefined ? null : timespec(timeoutMs);
      const r = Number(lib.syscall(SYS_FUTEX, ptr, FUTEX_WAIT, expected | 0, ts, null, 0));
      if (r === 0) return "ok";
      const errno = errnoCell[0];
      if (errno === EAGAIN) return "not-equal";
      if (errno === ETIMEDOUT_LINUX) return "timed-out";
      return "ok"; // EINTR: a spurious wake-up; the caller re-checks
    },
    waitNonblocking: runtime === "deno"
      ? (ptr, expected, timeoutMs) => {
        nb ??= bindLibrary(LIBC_PATHS.linux, linuxFutexNonblocking).symbols.syscall as unknown as (
          ...a: unknown[]
        ) => Promise<unknown>;
        const ts = timeoutMs === undefined ? null : timespec(timeoutMs);
        return nb(SYS_FUTEX, ptr, FUTEX_WAIT, expected | 0, ts, null, 0).then(Number);
      }
      : undefined,
    wake(ptr, count) {
      const r = Number(lib.syscall(SYS_FUTEX, ptr, FUTEX_WAKE, count, null, null, 0));
      return r < 0 ? 0 : r;
    },
  };
}

function darwinNative(): AddressNative | null {
  let lib;
  try {
    lib = bindLibrary(LIBC_PATHS.darwin, darwinUlockSymbols).symbols;
  } catch {
    return null; // no __ulock_*: poll
  }
  const op = UL_COMPARE_AND_WAIT_SHARED | ULF_NO_ERRNO;
  let nb: ((...a: unknown[]) => Promise<unknown>) | undefined;
  const micros = (ms: number | undefined) =>
    ms === undefined ? 0 : Math.min(0xffff_ffff, Math.max(1, Math.round(ms * 1000)));
  return {
    waitSync(ptr, expected, timeoutMs) {
      // With ULF_NO_ERRNO the call returns -errno itself; a word that differs returns at once.
      const r = lib.__ulock_wait(op, ptr, BigInt(expected >>> 0), micros(timeoutMs));
      if (r === -ETIMEDOUT_DARWIN) return "timed-out";
      return "ok";
    },
    waitNonblocking: runtime === "deno"
      ? (ptr, expected, timeoutMs) => {
        nb ??= bindLibrary(LIBC_PATHS.darwin, darwinUlockNonblocking).symbols.__ulock_wait as unknown as (
          ...a: unknown[]
        ) => Promise<unknown>;
        return nb(op, ptr, BigInt(expected >>> 0), micros(timeoutMs)).then(Number);
      }
      : undefined,
    wake(ptr, count) {
      if (count >= ALL) {
        const r = lib.__ulock_wake(op | ULF_WAKE_ALL, ptr, 0n);
        return r === -ENOENT ? 0 : 1; // macOS does not say how many: at least one
      }
      let woken = 0;
      while (woken < count && lib.__ulock_wake(op, ptr, 0n) === 0) woken++;
      return woken;
    },
  };
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
    for (const s of waits) {
      try {
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

/** One sleep a wait loop asks for: while the word holds `expected`, at most `timeoutMs` (Infinity: no limit). */
export type Sleep = readonly [expected: number, timeoutMs: number];

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

  #open(): Native | null {
    if (this.#word.shm.closed) throw new TypeError("Cannot wait or wake: the SharedMemory is closed");
    return getNative();
  }

  /** See {@linkcode futexWaitSync}; `timeoutMs` undefined or Infinity waits forever. */
  waitSync(expected: number, timeoutMs?: number): WaitResult {
    const n = this.#open();
    const w = this.#word;
    if (Atomics.load(w.view, 0) !== (expected | 0)) return "not-equal";
    if (n) return n.waitSync(w, expected, finite(timeoutMs));
    return pollSync(w.view, expected, finite(timeoutMs));
  }

  /** See {@linkcode futexWaitAsync}. */
  async waitAsync(expected: number, timeoutMs?: number, signal?: AbortSignal): Promise<WaitResult> {
    signal?.throwIfAborted();
    const n = this.#open();
    const w = this.#word;
    if (Atomics.load(w.view, 0) !== (expected | 0)) return "not-equal";
    const limit = finite(timeoutMs);
    if (!n) return await pollAsync(w.view, expected, limit, signal);
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
  #sleepOnce(n: Native, expected: number, ms: number, signal: AbortSignal | undefined): Promise<WaitResult> {
    const w = this.#word;
    signal?.throwIfAborted();
    if (w.shm.closed) throw new TypeError("Cannot wait on the word: the SharedMemory is closed");
    const pending = n.waitAsync(w, expected, ms);
    const waits = sleepers.get(w.shm)!;
    return new Promise<WaitResult>((resolve, reject) => {
      const entry: Sleeper = { word: w, native: n, reject };
      waits.add(entry);
      const onAbort = () => {
        reject(signal!.reason);
        // Release the thread that sleeps for us; the others it wakes re-check and sleep again.
        if (!w.shm.closed) n.wake(w, ALL);
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
   * the loop, so its `finally` blocks run.
   */
  runSync<T>(loop: Generator<Sleep, T, WaitResult>): T {
    let step = loop.next();
    while (!step.done) {
      let result: WaitResult;
      try {
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
        result = await this.waitAsync(step.value[0], step.value[1], signal);
      } catch (error) {
        step = loop.throw(error);
        continue;
      }
      step = loop.next(result);
    }
    return step.value;
  }

  /** See {@linkcode futexWake}. */
  wake(count: number = ALL): number {
    const n = this.#open();
    if (!n || count <= 0) return 0;
    return n.wake(this.#word, Math.min(count, ALL));
  }
}

/**
 * Blocks the calling thread while the Int32 at `byteOffset` of `shm` equals `expected`, until another
 * thread or process calls {@linkcode futexWake} on it, or `timeoutMs` passes.
 *
 * Returns `"not-equal"` at once when the word already differs. May return `"ok"` spuriously:
 * re-check the condition in a loop.
 *
 * @param shm the segment holding the word
 * @param byteOffset where the word is (a multiple of 4)
 * @param expected the value to sleep on
 * @param timeoutMs give up after this many milliseconds (default: wait forever)
 *
 * @example
 * ```ts
 * import { SharedMemory } from "@x/shm";
 * import { futexWaitSync } from "./futex.ts";
 *
 * using shm = SharedMemory.create({ size: 64 });
 * console.log(futexWaitSync(shm, 0, 0, 10)); // "timed-out": nobody woke us
 * console.log(futexWaitSync(shm, 0, 1));     // "not-equal": the word is 0, not 1
 * ```
 */
export function futexWaitSync(
  shm: SharedMemory,
  byteOffset: number,
  expected: number,
  timeoutMs?: number,
): WaitResult {
  checkTimeout(timeoutMs, "wait on the word");
  return new FutexWord(shm, byteOffset, "wait on the word").waitSync(expected, timeoutMs);
}

/**
 * Like {@linkcode futexWaitSync}, but returns a Promise and leaves the event loop running: timers,
 * I/O and other promises keep going while this waits. Under Deno it is a nonblocking FFI call; under
 * Bun a reusable worker blocks in the kernel for it.
 *
 * @param shm the segment holding the word
 * @param byteOffset where the word is (a multiple of 4)
 * @param expected the value to sleep on
 * @param timeoutMs give up after this many milliseconds (default: wait forever)
 * @param signal aborting it ends the wait at once, with the signal's reason as the rejection
 *
 * @example
 * ```ts
 * import { SharedMemory } from "@x/shm";
 * import { futexWaitAsync, futexWake } from "./futex.ts";
 *
 * using shm = SharedMemory.create({ size: 64 });
 * const word = shm.view(Int32Array, 0, 1);
 * setTimeout(() => { Atomics.store(word, 0, 1); futexWake(shm, 0); }, 50);
 * console.log(await futexWaitAsync(shm, 0, 0, 5_000)); // "ok"
 * ```
 */
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

/**
 * Wakes up to `count` threads (default: all) waiting on the Int32 at `byteOffset` of `shm`, in any
 * process that maps the segment. Returns how many were woken (on macOS, a lower bound when waking
 * all; with the polling fallback always 0, as pollers notice the change by themselves).
 *
 * @param shm the segment holding the word
 * @param byteOffset where the word is (a multiple of 4)
 * @param count how many waiters to wake at most
 *
 * @example
 * ```ts
 * import { SharedMemory } from "@x/shm";
 * import { futexWake } from "./futex.ts";
 *
 * using shm = SharedMemory.create({ size: 64 });
 * Atomics.store(shm.view(Int32Array, 0, 1), 0, 1);
 * console.log(futexWake(shm, 0, 1)); // 0: nobody was waiting
 * ```
 */
export function futexWake(shm: SharedMemory, byteOffset: number, count: number = ALL): number {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(
      `Cannot wake waiters on the word: count must be a non-negative integer, got ${count}`,
    );
  }
  return new FutexWord(shm, byteOffset, "wake waiters on the word").wake(count);
}

// ---- Polling fallback (an OS without a usable wait) --------------------------------------------------

function pollSync(word: Int32Array, expected: number, timeoutMs: number | undefined): WaitResult {
  const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
  let pause = 0.05;
  while (Atomics.load(word, 0) === (expected | 0)) {
    const left = deadline - performance.now();
    if (left <= 0) return "timed-out";
    sleepSync(Math.min(pause, left));
    pause = Math.min(1, pause * 2);
  }
  return "ok";
}

async function pollAsync(
  word: Int32Array,
  expected: number,
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
): Promise<WaitResult> {
  const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
  let pause = 0;
  while (Atomics.load(word, 0) === (expected | 0)) {
    signal?.throwIfAborted();
    const left = deadline - performance.now();
    if (left <= 0) return "timed-out";
    await new Promise((r) => setTimeout(r, Math.min(pause, left)));
    pause = Math.min(1, pause + 0.25);
  }
  return "ok";
}

// ---- Bun: blocking waits in reusable workers ------------------------------------------------------

/**
 * What a wait worker is asked to do: a futex wait on an address (Linux, macOS; answered with a
 * {@linkcode WaitResult}), or `WaitForSingleObject` on a handle (Windows; answered with its result).
 */
export type WorkerRequest =
  | { address: bigint; expected: number; timeoutMs: number | undefined }
  | { handle: bigint; ms: number };

interface WaitWorker {
  worker: Worker & { ref?(): void; unref?(): void };
  resolve?: (r: unknown) => void;
  reject?: (e: unknown) => void;
}

const idle: WaitWorker[] = [];
const MAX_IDLE = 4;

function spawnWaitWorker(): WaitWorker {
  const w: WaitWorker = {
    worker: new Worker(new URL("./futex_worker.ts", import.meta.url).href, { type: "module" }),
  };
  w.worker.onmessage = (event: MessageEvent<unknown>) => {
    const resolve = w.resolve;
    w.resolve = w.reject = undefined;
    w.worker.unref?.();
    if (idle.length < MAX_IDLE) idle.push(w);
    else w.worker.terminate();
    resolve?.(event.data);
  };
  w.worker.onerror = (event: ErrorEvent) => {
    const reject = w.reject;
    w.resolve = w.reject = undefined;
    const i = idle.indexOf(w);
    if (i >= 0) idle.splice(i, 1);
    w.worker.terminate();
    reject?.(new Error(`Cannot wait on the word: the wait worker failed: ${event.message}`));
  };
  return w;
}

/** Has an idle (or new) worker block for us; resolves with what it answers. */
function inWorker<T>(request: WorkerRequest): Promise<T> {
  const w = idle.pop() ?? spawnWaitWorker();
  return new Promise<T>((resolve, reject) => {
    w.resolve = resolve as (r: unknown) => void;
    w.reject = reject;
    // Keep the process alive while someone awaits this wait; unref again once it is answered.
    w.worker.ref?.();
    w.worker.postMessage(request);
  });
}

/** @internal For the wait worker: the blocking wait on a raw address, on the worker's own thread. */
export function waitAddressSync(
  address: bigint,
  expected: number,
  timeoutMs: number | undefined,
): WaitResult {
  const n = getAddressNative();
  if (!n) throw new Error("Cannot wait on the word: this OS has no native wait");
  return n.waitSync(pointerAt(address), expected, timeoutMs);
}
