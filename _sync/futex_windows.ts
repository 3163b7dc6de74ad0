/**
 * Windows has no futex that works across processes (`WaitOnAddress` wakes only threads of its own
 * process), so a wait on a word of shared memory sleeps on named kernel objects instead: two
 * semaphores per word, created on first use by whichever process waits first and shared by name.
 *
 * | object | name | role |
 * |---|---|---|
 * | wake | `<ns>\shm.wake.<offset>.<segment>` | a waiter sleeps in `WaitForSingleObject` on it; a waker releases one permit per waiter it claimed |
 * | count | `<ns>\shm.count.<offset>.<segment>` | its count is the number of waiters not yet claimed: a waiter adds itself before it checks the word; a waker claims waiters by taking them out, one `WaitForSingleObject(count, 0)` each |
 *
 * `<ns>\<segment>` is the segment's `waitKey`: its object name (`Local\x` or `Global\x`), or for a
 * file the volume serial number and file index. A name longer than Windows allows (260 UTF-16 code
 * units) puts a 64-bit hash of the segment name in its place.
 *
 * Why no wake-up is lost: a waiter registers (a kernel call, a full barrier), then loads the word,
 * and sleeps only when it still holds `expected`. A waker changes the word first, then claims
 * registrations. Either the waiter sees the new value and does not sleep, or the waker finds the
 * registration and releases a permit, which stays in the semaphore until the waiter takes it, even
 * if it had not yet gone to sleep.
 *
 * A woken waiter makes no further call: the waker already took its registration out. So a hand-off
 * costs the waiter two kernel calls (register, sleep) and the waker two (claim, release). A waiter
 * that times out, or finds the word changed, takes one registration back; if a waker claimed it
 * first, the waiter takes the permit meant for it instead. A permit can still be left behind (a
 * waker between its claim and its release, or a waiter killed while registered: its registration
 * is claimed once, by the next wake); it makes one later wait return early, a spurious wake-up,
 * which every caller handles by re-checking its condition.
 *
 * Async waits sleep on waiter threads (`waiters.ts`): each sleeps in `WaitForMultipleObjects` on
 * the wake semaphores of up to 63 words, and all the async waits of a process on one word count as
 * one registered waiter of it (see {@linkcode windowsWaiterOs}). `WaitSet.waitSync` registers on
 * each of its words and sleeps in one `WaitForMultipleObjects` ({@linkcode windowsWaitManySync}).
 *
 * The objects live while some process holds a handle to them. Each `SharedMemory` keeps the handles
 * it opened in a cache and closes them when it closes (`releaseWaitObjects`, called by `_sync/futex.ts`)
 * or is garbage-collected; a handle another thread is still sleeping on is closed when that sleep
 * ends.
 *
 * @module
 */

import type { SharedMemory } from "../shared_memory.ts";
import type { Native, WaitResult, Word, WordValue } from "./futex.ts";
import { waitKeyOf } from "../_internal.ts";
import { addressOfView, pointerAt, wideString } from "../ffi/_ffi.ts";
import { handleValue, kernel32, W } from "../ffi/kernel32.ts";
import { WinError } from "../ffi/winerror.ts";
import { osError as winError } from "../_os_error.ts";
import { sleepOffThread } from "../_host.ts";
import {
  forgetSegment,
  type WaiterOs,
  type WaiterTable,
  waiterThreadsAvailable,
  waitOnWaiterThread,
} from "./waiters.ts";

/** The two semaphores of one word, as this process holds them. */
export interface WaitObjects {
  readonly wake: bigint;
  readonly count: bigint;
  /** Async sleeps on another thread that still use the handles. */
  inflight: number;
  /** Set when the segment closed while sleeps were in flight: the last one closes the handles. */
  closing: boolean;
}

const MAX_COUNT = 0x7fff_ffff;

/** Handles per segment handle, by byte offset. */
const cache = new WeakMap<object, Map<number, WaitObjects>>();

const collected = new FinalizationRegistry<Map<number, WaitObjects>>((objects) => closeAll(objects));

function closeAll(objects: Map<number, WaitObjects>): void {
  for (const o of objects.values()) {
    if (o.inflight > 0) o.closing = true;
    else closeObjects(o);
  }
  objects.clear();
}

function closeObjects(o: WaitObjects): void {
  const k = kernel32();
  k.CloseHandle(o.wake);
  k.CloseHandle(o.count);
}

/** FNV-1a, 64 bits, as 16 hex digits: stands in for a segment name too long to fit in an object name. */
function hash64(text: string): string {
  let h = 0xcbf2_9ce4_8422_2325n;
  for (let i = 0; i < text.length; i++) {
    h = BigInt.asUintN(64, (h ^ BigInt(text.charCodeAt(i))) * 0x100_0000_01b3n);
  }
  return h.toString(16).padStart(16, "0");
}

/** The names of the two semaphores of the word at `byteOffset` of the segment called `waitKey`. */
export function waitObjectNames(waitKey: string, byteOffset: number): { wake: string; count: string } {
  const cut = waitKey.indexOf("\\");
  const ns = waitKey.slice(0, cut);
  let bare = waitKey.slice(cut + 1);
  const longest = `${ns}\\shm.count.${byteOffset}.`.length + bare.length;
  if (longest > W.NAME_MAX_UNITS) bare = `#${hash64(bare)}`;
  return {
    wake: `${ns}\\shm.wake.${byteOffset}.${bare}`,
    count: `${ns}\\shm.count.${byteOffset}.${bare}`,
  };
}

/**
 * The semaphores of the word at `byteOffset` of `shm`. With `create`, they are created when no
 * process has them yet (a waiter); without, null is returned then (a waker: nobody ever waited).
 */
export function waitObjectsFor(shm: SharedMemory, byteOffset: number, create: boolean): WaitObjects | null {
  let objects = cache.get(shm);
  const known = objects?.get(byteOffset);
  if (known) return known;
  const names = waitObjectNames(waitKeyOf(shm), byteOffset);
  const k = kernel32();
  const action = `${create ? "create" : "open"} the wait semaphores of byte ${byteOffset}`;
  const get = (name: string): bigint => {
    const wide = wideString(name);
    const h = handleValue(
      create ? k.CreateSemaphoreW(null, 0, MAX_COUNT, wide) : k.OpenSemaphoreW(W.SEMAPHORE_USE, 0, wide),
    );
    if (h !== 0n) return h;
    const error = k.GetLastError();
    if (!create && error === WinError.ERROR_FILE_NOT_FOUND) return 0n;
    throw winError(error, create ? "CreateSemaphoreW" : "OpenSemaphoreW", action, shm.name);
  };
  const count = get(names.count);
  if (count === 0n) return null;
  let wake: bigint;
  try {
    wake = get(names.wake);
  } catch (error) {
    k.CloseHandle(count);
    throw error;
  }
  if (wake === 0n) {
    k.CloseHandle(count);
    return null;
  }
  const o: WaitObjects = { wake, count, inflight: 0, closing: false };
  if (!objects) {
    objects = new Map();
    cache.set(shm, objects);
    collected.register(shm, objects, shm);
  }
  objects.set(byteOffset, o);
  return o;
}

/**
 * Closes the handles `shm` holds on wait semaphores (when it closes); a handle another thread still
 * sleeps on is closed when that sleep ends.
 */
export function releaseWaitObjects(shm: SharedMemory): void {
  const objects = cache.get(shm);
  if (!objects) return;
  cache.delete(shm);
  collected.unregister(shm);
  closeAll(objects);
}

/** Milliseconds as `WaitForSingleObject` takes them: whole, rounded up, INFINITE for no limit. */
function millis(timeoutMs: number | undefined): number {
  if (timeoutMs === undefined) return W.INFINITE;
  return Math.min(W.INFINITE - 1, Math.ceil(Math.max(0, timeoutMs)));
}

function outcome(r: number, shm: SharedMemory): WaitResult {
  if (r === W.WAIT_OBJECT_0) return "ok";
  if (r === W.WAIT_TIMEOUT) return "timed-out";
  throw winError(kernel32().GetLastError(), "WaitForSingleObject", "wait on the word", shm.name);
}

/** Counts this thread among the word's waiters; false when the word no longer holds `expected`. */
function register(o: WaitObjects, word: Int32Array, expected: number, shm: SharedMemory): boolean {
  const k = kernel32();
  if (!k.ReleaseSemaphore(o.count, 1, null)) {
    throw winError(k.GetLastError(), "ReleaseSemaphore", "register as a waiter on the word", shm.name);
  }
  if (Atomics.load(word, 0) === (expected | 0)) return true;
  unregister(o);
  return false;
}

/**
 * Takes a registration back (a waiter that will not sleep, or stopped sleeping without a permit).
 * When a waker claimed it first, a permit is on its way: take it if it is there already.
 */
function unregister(o: WaitObjects): void {
  const k = kernel32();
  if (k.WaitForSingleObject(o.count, 0) !== W.WAIT_OBJECT_0) k.WaitForSingleObject(o.wake, 0);
}

/** Blocks while the word holds `expected`, until woken or `timeoutMs` passes. */
export function windowsWaitSync(w: Word, expected: number, timeoutMs: number | undefined): WaitResult {
  const o = waitObjectsFor(w.shm, w.byteOffset, true)!;
  if (!register(o, w.view, expected, w.shm)) return "not-equal";
  let result: WaitResult | undefined;
  try {
    return result = outcome(kernel32().WaitForSingleObject(o.wake, millis(timeoutMs)), w.shm);
  } finally {
    if (result !== "ok") unregister(o);
  }
}

/** The handles of a blocking wait on several words (this thread's only, reused). */
let manyHandles: BigUint64Array | undefined;

/**
 * Blocks while every word holds its value, until one is woken or `timeoutMs` passes: registered
 * as a waiter of each word, asleep in one `WaitForMultipleObjects` on their wake semaphores, then
 * registered out of every word but the one whose permit the call took.
 */
export function windowsWaitManySync(words: readonly WordValue[], timeoutMs: number): WaitResult | null {
  if (words.length > W.MAXIMUM_WAIT_OBJECTS) return null;
  const k = kernel32();
  const registered: WaitObjects[] = [];
  try {
    for (const { word, expected } of words) {
      const o = waitObjectsFor(word.shm, word.byteOffset, true)!;
      if (!register(o, word.view, expected, word.shm)) return "not-equal";
      registered.push(o);
    }
    manyHandles ??= new BigUint64Array(new ArrayBuffer(W.MAXIMUM_WAIT_OBJECTS * 8));
    registered.forEach((o, i) => (manyHandles![i] = o.wake));
    const r = k.WaitForMultipleObjects(
      registered.length,
      pointerAt(addressOfView(manyHandles)),
      0,
      millis(timeoutMs),
    );
    if (r === W.WAIT_TIMEOUT) return "timed-out";
    if (r >= W.WAIT_OBJECT_0 && r < registered.length) {
      registered.splice(r, 1); // its registration was claimed, and its permit taken by the call
      return "ok";
    }
    throw winError(
      k.GetLastError(),
      "WaitForMultipleObjects",
      "wait on the wait set's words",
      words[0]!.word.shm.name,
    );
  } finally {
    for (const o of registered) unregister(o);
  }
}

/** The same wait with the sleep on another thread (see `sleepOffThread` in `_host.ts`). */
export async function windowsWaitAsync(
  w: Word,
  expected: number,
  timeoutMs: number | undefined,
): Promise<WaitResult> {
  const o = waitObjectsFor(w.shm, w.byteOffset, true)!;
  if (!register(o, w.view, expected, w.shm)) return "not-equal";
  o.inflight++;
  let result: WaitResult | undefined;
  try {
    const r = await sleepOffThread({ call: "handle", handle: o.wake, ms: millis(timeoutMs) });
    return result = outcome(r, w.shm);
  } finally {
    if (result !== "ok") unregister(o);
    if (--o.inflight === 0 && o.closing) closeObjects(o);
  }
}

/** Wakes up to `count` waiters of the word, in any process; returns how many. */
export function windowsWake(w: Word, count: number): number {
  const o = waitObjectsFor(w.shm, w.byteOffset, false);
  if (!o) return 0; // no process has the semaphores: nobody waits
  return wakeObjects(o, count, w.shm.name);
}

/** Claims up to `count` registrations of the word's waiters and releases a permit for each. */
function wakeObjects(o: WaitObjects, count: number, segment: string): number {
  const k = kernel32();
  let claimed = 0;
  while (claimed < count && k.WaitForSingleObject(o.count, 0) === W.WAIT_OBJECT_0) claimed++;
  if (claimed === 0) return 0;
  if (!k.ReleaseSemaphore(o.wake, claimed, null)) {
    throw winError(k.GetLastError(), "ReleaseSemaphore", "wake waiters on the word", segment);
  }
  return claimed;
}

// ---- Waiter threads (`waiters.ts`) --------------------------------------------------------------------

/**
 * One waiter thread's table: `WaitForMultipleObjects` on up to 64 handles, any one of them. Slot 0
 * is the thread's private auto-reset event (its doorbell: `SetEvent` rings it; a ring that comes
 * between two rounds stays set and ends the next one at once); each other slot is the wake
 * semaphore of one word. The call returns the index of the first signaled handle, and takes one
 * permit from that semaphore only: the sweep after it re-checks every entry's word.
 */
function windowsTable(): WaiterTable {
  const k = kernel32();
  const handles = new BigUint64Array(W.MAXIMUM_WAIT_OBJECTS);
  const address = addressOfView(handles);
  const doorbell = handleValue(k.CreateEventW(null, 0, 0, null));
  if (doorbell === 0n) {
    throw winError(k.GetLastError(), "CreateEventW", "create the doorbell event of a waiter thread");
  }
  handles[0] = doorbell;
  return {
    write: (slot, e) => {
      handles[slot] = (e.os as Registration).objects.wake;
    },
    arm: () => {},
    ring: () => {
      k.SetEvent(doorbell);
    },
    call: (count) => ({ call: "handles", address, count }),
    // WAIT_OBJECT_0 + i; WAIT_FAILED (or an abandoned mutex, which no table holds) ends no slot.
    woken: (r) => (r >= W.WAIT_OBJECT_0 && r < W.MAXIMUM_WAIT_OBJECTS ? r : -1),
  };
}

/**
 * The Windows side of the waiter threads. An entry (all the async waits of this process on one
 * word) counts as one registered waiter of the word while it is in a table: it registers when it
 * joins (before its word is checked, as a blocking wait does), a waker claims that registration
 * and releases one permit, and the round that takes the permit fires the entry. An entry that
 * leaves without that takes its registration back (or the permit already meant for it); one woken
 * when no wait was left passes the wake-up on to another waiter of the word.
 */
export const windowsWaiterOs: WaiterOs = {
  slots: W.MAXIMUM_WAIT_OBJECTS,
  table: windowsTable,
  join(e) {
    const w = e.word;
    const o = waitObjectsFor(w.shm, w.byteOffset, true)!;
    if (!register(o, w.view, e.expected, w.shm)) return false;
    o.inflight++;
    e.os = { objects: o, registered: true } satisfies Registration;
    return true;
  },
  idle(e) {
    const r = e.os as Registration | undefined;
    if (!r?.registered) return;
    r.registered = false;
    unregister(r.objects);
  },
  leave(e, wake) {
    const r = e.os as Registration | undefined;
    if (!r) return;
    e.os = undefined;
    const o = r.objects;
    try {
      // "used": a waker claimed a registration and its permit was taken here, by these waits.
      if (wake === "none" && r.registered) unregister(o);
      // A permit taken for nobody (the waits had ended) goes on to another waiter of the word.
      else if (wake === "unused") wakeObjects(o, 1, e.word.shm.name);
    } finally {
      if (--o.inflight === 0 && o.closing) closeObjects(o);
    }
  },
};

/** What a waiter-thread entry holds on Windows: its word's semaphores, and whether it is counted among the waiters. */
interface Registration {
  readonly objects: WaitObjects;
  registered: boolean;
}

/**
 * The Windows wait and wake, for `_sync/futex.ts`. Async waits sleep on the waiter threads
 * (`WaitForMultipleObjects`), unless `SHM_THREAD_PER_WAIT` asks for a thread per wait.
 */
export function windowsNative(): Native {
  if (!waiterThreadsAvailable()) {
    return {
      waitSync: windowsWaitSync,
      waitAsync: windowsWaitAsync,
      waitManySync: windowsWaitManySync,
      wake: windowsWake,
    };
  }
  return {
    waitSync: windowsWaitSync,
    waitManySync: windowsWaitManySync,
    waitAsync: (w, expected, timeoutMs, signal, watch) =>
      waitOnWaiterThread(windowsWaiterOs, w, expected, timeoutMs, signal, watch),
    cancellable: true,
    closing: forgetSegment,
    wake: windowsWake,
  };
}
