/**
 * Waiter threads: a few threads per process each sleep on many words at once, so thousands of
 * pending async waits cost a handful of threads. Linux 5.16+: `futex_waitv` on up to 128 words a
 * call; Windows: `WaitForMultipleObjects` on up to 64 handles a call, each the wake semaphore of
 * a word (`futex_windows.ts`). This file is the OS-independent part; each OS gives a
 * {@linkcode WaiterOs} (Linux: {@linkcode linuxWaiterOs} here; Windows: in `futex_windows.ts`).
 *
 * Each waiter thread owns a table: slot 0 is its private doorbell (a word on Linux, an auto-reset
 * event on Windows), the others are *entries*, one per word waited on. Waits on the same word
 * share one entry; they all saw the same value (a wait that saw another one finds the entry stale:
 * the word changed since, so the entry fires and a fresh one takes its place). One *round* is one
 * call on another thread (Deno: a `nonblocking` FFI call, which holds one thread of Deno's blocking
 * pool while it sleeps; Bun: a reused Worker; both through `sleepOffThread` in `_host.ts`). The call
 * returns when one entry is woken (Linux: also at once when a word no longer holds its value).
 * Back on the event loop, every entry that was woken or whose word changed resolves all its waits
 * ("ok": they re-check, as after any wake-up), the table is compacted, and the next round starts at
 * once (when entries are left; a thread with none starts again with its next entry).
 *
 * Adding an entry while a round sleeps appends it past the slots that round was given (the OS
 * copied those when the call began) and rings the doorbell, once per round: that round returns, and
 * the next one includes the new entry. Timeouts and aborts are JavaScript timers and listeners: a
 * wait that ends that way leaves its entry, which goes at the next round; when a thread has no
 * wait left it is rung so it stops.
 *
 * At most {@linkcode MAX_THREADS} threads run, so up to 8 × 127 (Windows: 8 × 63) distinct words
 * sleep in the OS; entries beyond that are checked by one timer every {@linkcode OVERFLOW_POLL_MS}
 * ms (`Atomics.load`, no thread) and move into a thread as soon as one has room.
 *
 * While any wait pends, one timer looks at every entry's word each `SLICE_MS` (250 ms) and fires
 * those that changed: a wake-up lost to a corrupted sleeper count costs at most that, as it does
 * for a blocked thread, so the waits of a semaphore or a condition need no slice of their own. The
 * same timer runs one liveness check per entry (a lock holder, a barrier's parties, a channel's
 * senders: the `Watch` its waits gave), so 10,000 waits on one held mutex cost one probe of its
 * holder per slice, not 10,000, and all of them wake (`"dead"`) when it died.
 *
 * Why nothing is lost. Linux: an entry's value is the one its waits saw; the kernel compares it
 * with the word when the call begins and returns at once when they differ, so a change between a
 * wait's check and the round's start is seen; a change after the start is a wake, which returns
 * the call. Windows: an entry registers as one waiter of its word before its word is checked
 * (`join`), so a waker that changes the word afterwards finds the registration and releases a
 * permit, which stays in the semaphore until a round takes it.
 *
 * @module
 */

import type { SharedMemory } from "../shared_memory.ts";
import type { WaitResult, Watch, Word } from "./futex.ts";
import type { OffThreadWait } from "../ffi/futex.ts";
import { readEnv, sleepOffThread } from "../_host.ts";
import { F, hasFutexWaitv, linuxFutex } from "../ffi/futex.ts";
import { addressOfView, pointerAt } from "../ffi/_ffi.ts";
import { os as platform } from "../ffi/runtime.ts";
import { SLICE_MS } from "./region.ts";

/** Most waiter threads per process. */
export const MAX_THREADS = 8;
/** How often the entries no thread has room for are checked. */
export const OVERFLOW_POLL_MS = 2;

/** One pending async wait. */
interface Pending {
  readonly entry: Entry;
  readonly resolve: (r: WaitResult) => void;
  readonly reject: (e: unknown) => void;
  timer?: ReturnType<typeof setTimeout>;
  signal?: AbortSignal;
  onAbort?: () => void;
  /** The liveness check of the party it waits for, run by the slice timer (see {@linkcode lookAgain}). */
  watch?: Watch;
}

/** One word and the value its waits saw, shared by every wait on it. */
export interface Entry {
  readonly key: string;
  readonly word: Word;
  readonly expected: number;
  readonly waits: Set<Pending>;
  /** The thread whose table holds it; null while it waits for room (the overflow poll). */
  thread: WaiterThread | null;
  /** What the OS keeps for it while it is in a table or the overflow (Windows: its semaphores). */
  os?: unknown;
}

/** One thread's table, as an OS lays it out. */
export interface WaiterTable {
  /** Puts entry `e` in slot `slot` (from 1). */
  write(slot: number, e: Entry): void;
  /** Readies the doorbell for the next round (Linux: the value it sleeps on). */
  arm(): void;
  /** Makes the round in flight return. */
  ring(): void;
  /** The call that sleeps on slots 0 to `count` - 1. */
  call(count: number): OffThreadWait;
  /** The slot that ended the round, from the call's raw result; -1 when none did (a word differed…). */
  woken(r: number): number;
}

/** Whether an entry that leaves was woken by the last round, and whether a wait took that (see {@linkcode WaiterOs.leave}). */
export type LeftWake = "none" | "used" | "unused";

/** The OS side of the waiter threads. */
export interface WaiterOs {
  /** Slots of one table, the doorbell's (slot 0) included. */
  readonly slots: number;
  /** A new thread's table. */
  table(): WaiterTable;
  /** Before a new entry goes to a thread or the overflow; false when it cannot sleep (it fires). */
  join(e: Entry): boolean;
  /**
   * The entry left for good (fired, or no waits left). `wake` says whether its slot ended the last
   * round: `"none"`, no; `"used"`, yes and its waits took the wake-up; `"unused"`, yes but no wait
   * was left to take it (it is passed on to another waiter of the word).
   */
  leave(e: Entry, wake: LeftWake): void;
  /**
   * The entry's last wait left by a timeout or an abort: it stays in its table, asleep for
   * nobody, until the next sweep (Windows takes its registration back at once).
   */
  idle?(e: Entry): void;
}

const entries = new Map<string, Entry>();
const threads: WaiterThread[] = [];
const overflow = new Set<Entry>();
let overflowTimer: ReturnType<typeof setTimeout> | undefined;
let sliceTimer: ReturnType<typeof setTimeout> | undefined;
/** The OS side in use (set by the first wait: one OS per process). */
let osSide: WaiterOs;

/**
 * Every SLICE_MS while entries exist: fires those whose word changed, forgets those with no waits,
 * and runs one liveness check per entry (the {@linkcode Watch} of one of its waits: they all wait
 * on the same word holding the same value, so for the same party), firing all its waits with
 * `"dead"` when the party died. A check that throws fires them with "ok": their loops run again and
 * meet the error themselves.
 */
function lookAgain(): void {
  sliceTimer = undefined;
  for (const e of [...entries.values()]) {
    if (e.waits.size === 0) forget(e);
    else if (changed(e)) fire(e, "ok");
    else {
      const watch = watchOf(e);
      if (!watch) continue;
      let dead: boolean;
      try {
        dead = watch();
      } catch {
        fire(e, "ok");
        continue;
      }
      if (dead && entries.get(e.key) === e && e.waits.size) fire(e, "dead");
    }
  }
  if (entries.size) sliceTimer = setTimeout(lookAgain, SLICE_MS);
}

/** The liveness check of one of the entry's waits, if any gave one. */
function watchOf(e: Entry): Watch | undefined {
  for (const p of e.waits) if (p.watch) return p.watch;
  return undefined;
}

/** Whether the word differs from the entry's value (or is gone with its segment). */
function changed(e: Entry): boolean {
  const view = e.word.view;
  return view.length === 0 || e.word.shm.closed || Atomics.load(view, 0) !== e.expected;
}

/** Takes the entry out of the map; one in the overflow leaves the OS there too (a table's leaves at its sweep). */
function forget(e: Entry): void {
  if (entries.get(e.key) === e) entries.delete(e.key);
  if (overflow.delete(e)) osSide.leave(e, "none");
}

/** Ends every wait of `e` with `result` and forgets the entry. */
function fire(e: Entry, result: WaitResult): void {
  forget(e);
  const waits = [...e.waits];
  e.waits.clear();
  for (const p of waits) {
    settle(p);
    p.resolve(result);
  }
}

/** Removes a wait's timer and abort listener, and counts it out of its thread. */
function settle(p: Pending): void {
  if (p.timer !== undefined) clearTimeout(p.timer);
  p.signal?.removeEventListener("abort", p.onAbort!);
  const t = p.entry.thread;
  // Nothing left to wait for: ring, so the round ends and does not keep the process alive.
  if (t && --t.live === 0) t.ring();
}

class WaiterThread {
  readonly #table: WaiterTable;
  /** The entries by slot; slot 0 (the doorbell) is null. */
  #slots: (Entry | null)[] = [null];
  /** Pending waits over all its entries. */
  live = 0;
  /** A round is in flight, given this many slots. */
  #inFlight = 0;
  /** A round is due after a pause. */
  #scheduled = false;
  #rung = false;

  constructor() {
    this.#table = osSide.table();
  }

  get full(): boolean {
    return this.#slots.length >= osSide.slots;
  }

  /** Whether a slot holds an entry with no wait left, which the next sweep frees. */
  get reclaimable(): boolean {
    for (let i = 1; i < this.#slots.length; i++) if (this.#slots[i]!.waits.size === 0) return true;
    return false;
  }

  /** Puts `e` in the table; the round asleep now (if any) is rung so the next one includes it. */
  add(e: Entry): void {
    e.thread = this;
    const slot = this.#slots.length;
    this.#slots.push(e);
    this.#table.write(slot, e);
    if (this.#inFlight) this.ring();
    else this.#schedule();
  }

  /** Makes the round asleep now return (once per round). */
  ring(): void {
    if (!this.#inFlight || this.#rung) return;
    this.#rung = true;
    this.#table.ring();
  }

  /** Starts the next round now, or after `delay` ms (a call that failed for no visible reason). */
  #schedule(delay = 0): void {
    if (this.#scheduled || this.#inFlight) return;
    if (delay === 0) return this.#sleep();
    this.#scheduled = true;
    setTimeout(() => {
      this.#scheduled = false;
      this.#sleep();
    }, delay);
  }

  /** Starts a round on every entry now in the table, unless none is left. */
  #sleep(): void {
    if (this.#inFlight) return;
    this.#sweep(-1);
    if (this.#slots.length <= 1) return;
    this.#table.arm();
    this.#inFlight = this.#slots.length;
    this.#rung = false;
    sleepOffThread(this.#table.call(this.#inFlight)).then(
      (r) => this.#woke(this.#table.woken(r)),
      (error) => this.#failed(error),
    );
  }

  /** A round ended: `slot` is the woken entry's, or -1 (a word differed, a signal, a failure…). */
  #woke(slot: number): void {
    this.#inFlight = 0;
    const fired = this.#sweep(slot);
    // A failing call that changed nothing (should not happen) is retried after a pause, not in a spin.
    this.#schedule(slot < 0 && fired === 0 && !this.#rung ? 1 : 0);
  }

  /**
   * Fires the entries that were woken (slot `woken`) or whose word changed, drops those without
   * waits, compacts the table and fills free slots from the overflow. Returns how many fired.
   */
  #sweep(woken: number): number {
    const keep: (Entry | null)[] = [null];
    let fired = 0;
    const old = this.#slots;
    for (let i = 1; i < old.length; i++) {
      const e = old[i]!;
      if (e.waits.size === 0) {
        if (entries.get(e.key) === e) entries.delete(e.key);
        osSide.leave(e, i === woken ? "unused" : "none");
        continue;
      }
      if (i === woken || changed(e)) {
        fired++;
        fire(e, "ok");
        osSide.leave(e, i === woken ? "used" : "none");
        continue;
      }
      keep.push(e);
    }
    this.#slots = keep;
    for (let i = 1; i < keep.length; i++) this.#table.write(i, keep[i]!);
    for (const e of overflow) {
      if (this.full) break;
      overflow.delete(e);
      this.live += e.waits.size;
      e.thread = this;
      this.#table.write(this.#slots.length, e);
      this.#slots.push(e);
    }
    return fired;
  }

  /** The thread making the call failed (a Bun worker died): its waits reject. */
  #failed(error: unknown): void {
    this.#inFlight = 0;
    const old = this.#slots;
    this.#slots = [null];
    for (let i = 1; i < old.length; i++) {
      const e = old[i]!;
      if (entries.get(e.key) === e) entries.delete(e.key);
      for (const p of e.waits) {
        settle(p);
        p.reject(error);
      }
      e.waits.clear();
      osSide.leave(e, "none");
    }
  }
}

/** A thread with room for one more entry (started if need be), or null when all are full. */
function threadWithRoom(): WaiterThread | null {
  for (const t of threads) if (!t.full) return t;
  // A burst of waits that end at once (a condition's or a semaphore's word changing under each new
  // wait) fills tables with ended entries long before they hold 127 live ones. Their next sweep
  // frees those slots: ring them and let the entry wait in the overflow (a 2 ms poll) rather than
  // start a thread for room about to free. A thread costs little in Deno and Bun, but a Node
  // worker's isolate is about 20 MB.
  let freeing = false;
  for (const t of threads) {
    if (!t.reclaimable) continue;
    t.ring();
    freeing = true;
  }
  if (freeing) return null;
  if (threads.length >= MAX_THREADS) return null;
  const t = new WaiterThread();
  threads.push(t);
  return t;
}

function pollOverflow(): void {
  overflowTimer = undefined;
  for (const e of overflow) {
    if (e.waits.size === 0) forget(e);
    else if (changed(e)) fire(e, "ok");
  }
  // Room may have been made by waits that ended: a thread takes entries at its next round.
  for (const e of overflow) {
    const t = threadWithRoom();
    if (!t) break;
    overflow.delete(e);
    t.live += e.waits.size;
    t.add(e);
  }
  if (overflow.size) overflowTimer = setTimeout(pollOverflow, OVERFLOW_POLL_MS);
}

// ---- Linux: futex_waitv -------------------------------------------------------------------------------

/**
 * Linux: a table of `struct futex_waitv` (3 u64 per slot: value, address, flags), then the doorbell
 * word. A round is `futex_waitv` on it; ringing bumps the doorbell and wakes it.
 */
function linuxTable(): WaiterTable {
  const slots = F.FUTEX_WAITV_MAX;
  const table = new BigUint64Array(slots * 3 + 1);
  const doorbell = new Int32Array(table.buffer, slots * 24, 1);
  const address = addressOfView(table);
  const doorbellAddress = addressOfView(doorbell);
  const write = (slot: number, at: bigint, value: number) => {
    table[slot * 3] = BigInt(value >>> 0);
    table[slot * 3 + 1] = at;
    table[slot * 3 + 2] = BigInt(F.FUTEX_32);
  };
  write(0, doorbellAddress, 0);
  return {
    write: (slot, e) => write(slot, e.word.address, e.expected),
    arm: () => {
      table[0] = BigInt(Atomics.load(doorbell, 0) >>> 0);
    },
    ring: () => {
      Atomics.add(doorbell, 0, 1);
      linuxFutex().syscall(F.SYS_FUTEX, pointerAt(doorbellAddress), F.FUTEX_WAKE, 1, null, null, 0);
    },
    call: (count) => ({ call: "waitv", address, count }),
    woken: (r) => r,
  };
}

/** The Linux side of the waiter threads (`futex_waitv`, 5.16+). */
export const linuxWaiterOs: WaiterOs = {
  slots: F.FUTEX_WAITV_MAX,
  table: linuxTable,
  join: () => true,
  leave(e, wake) {
    // Woken for waits that ended meanwhile: pass the wake-up on to a waiter that still sleeps.
    if (wake === "unused" && !e.word.shm.closed) {
      linuxFutex().syscall(F.SYS_FUTEX, pointerAt(e.word.address), F.FUTEX_WAKE, 1, null, null, 0);
    }
  },
};

// ---- Which waits go to waiter threads -----------------------------------------------------------------

let available: boolean | undefined;

/**
 * The environment variable that turns the waiter threads off for the whole process: async waits
 * then take a thread each, as on a kernel without `futex_waitv` (the fallback, for tests).
 */
export const THREAD_PER_WAIT_ENV = "SHM_THREAD_PER_WAIT";

/**
 * Whether waits can go to waiter threads here: Linux with `futex_waitv`, and Windows; not when
 * {@linkcode THREAD_PER_WAIT_ENV} is set to something other than "", "0" or "false".
 */
export function waiterThreadsAvailable(): boolean {
  if (available !== undefined) return available;
  const forced = readEnv(THREAD_PER_WAIT_ENV);
  if (forced !== undefined && forced !== "" && forced !== "0" && forced.toLowerCase() !== "false") {
    return available = false;
  }
  if (platform === "windows") return available = true;
  try {
    return available = hasFutexWaitv();
  } catch {
    return available = false;
  }
}

/**
 * @internal Tests only: turn the waiter threads off (waits then take a thread each, the fallback
 * of kernels before 5.16), or back on. Call it before the first wait, or follow it with
 * `usePollingFallback(false)` (`futex.ts`) so the OS wait is chosen again.
 */
export function useWaiterThreads(on: boolean): void {
  available = on ? undefined : false;
}

/**
 * Sleeps on a waiter thread (of the OS side `side`) while the word holds `expected`, until a wake
 * (any process), `timeoutMs` (undefined: no limit), `signal`, or `watch` (run once a slice for all
 * the waits on the same word) finding the party it waits for dead. The caller checked the word
 * just before, in the same synchronous run.
 */
export function waitOnWaiterThread(
  side: WaiterOs,
  word: Word,
  expected: number,
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
  watch?: Watch,
): Promise<WaitResult> {
  osSide = side;
  const key = String(word.address);
  let e = entries.get(key);
  // An entry that saw another value is stale (the word changed since): its waits re-check. One
  // whose waits all left (it may have left the OS too: `idle`) is replaced as well.
  if (e && (e.expected !== (expected | 0) || e.waits.size === 0)) {
    fire(e, "ok");
    e.thread?.ring();
    e = undefined;
  }
  const fresh = !e;
  if (!e) {
    e = { key, word, expected: expected | 0, waits: new Set(), thread: null };
    entries.set(key, e);
    sliceTimer ??= setTimeout(lookAgain, SLICE_MS);
  }
  const entry = e;
  const promise = new Promise<WaitResult>((resolve, reject) => {
    const p: Pending = { entry, resolve, reject, watch };
    entry.waits.add(p);
    if (entry.thread) entry.thread.live++;
    const leave = (): void => {
      if (!entry.waits.delete(p)) return;
      settle(p);
      if (entry.waits.size === 0) side.idle?.(entry);
    };
    if (timeoutMs !== undefined) {
      p.timer = setTimeout(() => {
        leave();
        resolve("timed-out");
      }, timeoutMs);
    }
    if (signal) {
      p.signal = signal;
      p.onAbort = () => {
        leave();
        reject(signal.reason);
      };
      signal.addEventListener("abort", p.onAbort, { once: true });
    }
  });
  // A new entry goes to a thread only now that it has its wait (a round drops entries without).
  if (fresh) {
    let joined: boolean;
    try {
      joined = side.join(entry);
    } catch (error) {
      entries.delete(key);
      for (const p of entry.waits) {
        settle(p);
        p.reject(error);
      }
      entry.waits.clear();
      return promise;
    }
    if (!joined) {
      fire(entry, "not-equal");
      return promise;
    }
    const t = threadWithRoom();
    if (t) {
      t.live += entry.waits.size;
      t.add(entry);
    } else {
      overflow.add(entry);
      overflowTimer ??= setTimeout(pollOverflow, OVERFLOW_POLL_MS);
    }
  }
  return promise;
}

/** Ends the waits on words of `shm` (it is closing; their callers were told already) and rings their threads. */
export function forgetSegment(shm: SharedMemory): void {
  for (const e of [...entries.values()]) {
    if (e.word.shm !== shm) continue;
    fire(e, "ok");
    e.thread?.ring();
  }
}
