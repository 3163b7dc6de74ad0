/**
 * Waiter threads: a few threads per process each sleep on many words at once, so thousands of
 * pending async waits cost a handful of threads (Linux 5.16+, `futex_waitv`).
 *
 * Each waiter thread owns a table of up to 128 `struct futex_waitv` entries: slot 0 is its private
 * doorbell word, the others are (word, expected value) pairs. Waits on the same word with the same
 * expected value share one entry. One *round* is one `futex_waitv` call on another thread (Deno: a
 * `nonblocking` FFI call, which holds one thread of Deno's blocking pool while it sleeps; Bun: a
 * reused Worker; both through `sleepOffThread` in `_host.ts`). The call returns when one entry is
 * woken, or at once when a word no longer holds its value. Back on the event loop, every entry
 * that was woken or whose word changed resolves all its waits ("ok": they re-check, as after any
 * wake-up), the table is compacted, and the next round starts at once (when entries are left; a
 * thread with none starts again with its next entry).
 *
 * Adding an entry while a round sleeps appends it past the slots that round was given (the kernel
 * copied those when the call began) and rings the doorbell (`Atomics.add` and `FUTEX_WAKE` on it),
 * once per round: that round returns, and the next one includes the new entry. Timeouts and
 * aborts are JavaScript timers and listeners: a wait that ends that way leaves its entry, which
 * goes at the next round; when a thread has no wait left it is rung so it stops.
 *
 * At most {@linkcode MAX_THREADS} threads run, so up to 8 × 127 distinct entries sleep in the
 * kernel; entries beyond that are checked by one timer every {@linkcode OVERFLOW_POLL_MS} ms
 * (`Atomics.load`, no thread) and move into a thread as soon as one has room.
 *
 * While any wait pends, one timer looks at every entry's word each `SLICE_MS` (250 ms) and fires
 * those that changed: a wake-up lost to a corrupted sleeper count costs at most that, as it does
 * for a blocked thread, so the waits of a semaphore or a condition need no slice of their own. The
 * same timer runs one liveness check per entry (a lock holder, a barrier's parties, a channel's
 * senders: the `Watch` its waits gave), so 10,000 waits on one held mutex cost one probe of its
 * holder per slice, not 10,000, and all of them wake (`"dead"`) when it died.
 *
 * Why nothing is lost: an entry's value is the one its waits saw; the kernel compares it with the
 * word when the call begins and returns at once when they differ, so a change between a wait's
 * check and the round's start is seen; a change after the start is a wake, which returns the call.
 *
 * @module
 */

import type { SharedMemory } from "../shared_memory.ts";
import type { WaitResult, Watch, Word } from "./futex.ts";
import { readEnv, sleepOffThread } from "../_host.ts";
import { F, hasFutexWaitv, linuxFutex } from "../ffi/futex.ts";
import { addressOfView, pointerAt } from "../ffi/_ffi.ts";
import { SLICE_MS } from "./region.ts";

/** Slots of one thread's table (slot 0: the doorbell). */
const SLOTS = F.FUTEX_WAITV_MAX;
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

/** One (word, expected value) pair, shared by every wait on it. */
interface Entry {
  readonly key: string;
  readonly word: Word;
  readonly expected: number;
  readonly waits: Set<Pending>;
  /** The thread whose table holds it; null while it waits for room (the overflow poll). */
  thread: WaiterThread | null;
}

const entries = new Map<string, Entry>();
const threads: WaiterThread[] = [];
const overflow = new Set<Entry>();
let overflowTimer: ReturnType<typeof setTimeout> | undefined;
let sliceTimer: ReturnType<typeof setTimeout> | undefined;

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
    if (e.waits.size === 0) entries.delete(e.key);
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

/** Ends every wait of `e` with `result` and forgets the entry. */
function fire(e: Entry, result: WaitResult): void {
  if (entries.get(e.key) === e) entries.delete(e.key);
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
  /** The `struct futex_waitv` table: 3 u64 per slot (val, uaddr, flags), then the doorbell word. */
  readonly #table = new BigUint64Array(SLOTS * 3 + 1);
  readonly #doorbell = new Int32Array(this.#table.buffer, SLOTS * 24, 1);
  readonly #address = addressOfView(this.#table);
  readonly #doorbellAddress = addressOfView(this.#doorbell);
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
    this.#write(0, this.#doorbellAddress, 0);
  }

  get full(): boolean {
    return this.#slots.length >= SLOTS;
  }

  #write(slot: number, address: bigint, value: number): void {
    const t = this.#table;
    t[slot * 3] = BigInt(value >>> 0);
    t[slot * 3 + 1] = address;
    t[slot * 3 + 2] = BigInt(F.FUTEX_32);
  }

  /** Puts `e` in the table; the round asleep now (if any) is rung so the next one includes it. */
  add(e: Entry): void {
    e.thread = this;
    const slot = this.#slots.length;
    this.#slots.push(e);
    this.#write(slot, e.word.address, e.expected);
    if (this.#inFlight) this.ring();
    else this.#schedule();
  }

  /** Makes the round asleep now return (once per round). */
  ring(): void {
    if (!this.#inFlight || this.#rung) return;
    this.#rung = true;
    Atomics.add(this.#doorbell, 0, 1);
    const lib = linuxFutex();
    lib.syscall(F.SYS_FUTEX, pointerAt(this.#doorbellAddress), F.FUTEX_WAKE, 1, null, null, 0);
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
    this.#table[0] = BigInt(Atomics.load(this.#doorbell, 0) >>> 0);
    this.#inFlight = this.#slots.length;
    this.#rung = false;
    sleepOffThread({ call: "waitv", address: this.#address, count: this.#inFlight }).then(
      (r) => this.#woke(r),
      (error) => this.#failed(error),
    );
  }

  /** A round ended: `r` is the index of the woken entry, or negative (a word differed, a signal…). */
  #woke(r: number): void {
    this.#inFlight = 0;
    const fired = this.#sweep(r);
    // A failing call that changed nothing (should not happen) is retried after a pause, not in a spin.
    this.#schedule(r < 0 && fired === 0 && !this.#rung ? 1 : 0);
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
        // Woken for waits that ended meanwhile: pass the wake-up on to a waiter that still sleeps.
        if (i === woken && !e.word.shm.closed) {
          linuxFutex().syscall(F.SYS_FUTEX, pointerAt(e.word.address), F.FUTEX_WAKE, 1, null, null, 0);
        }
        continue;
      }
      if (i === woken || changed(e)) {
        fired++;
        fire(e, "ok");
        continue;
      }
      keep.push(e);
    }
    this.#slots = keep;
    for (let i = 1; i < keep.length; i++) this.#write(i, keep[i]!.word.address, keep[i]!.expected);
    for (const e of overflow) {
      if (this.full) break;
      overflow.delete(e);
      this.live += e.waits.size;
      e.thread = this;
      this.#write(this.#slots.length, e.word.address, e.expected);
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
      entries.delete(e.key);
      for (const p of e.waits) {
        settle(p);
        p.reject(error);
      }
      e.waits.clear();
    }
  }
}

/** A thread with room for one more entry (started if need be), or null when all are full. */
function threadWithRoom(): WaiterThread | null {
  for (const t of threads) if (!t.full) return t;
  if (threads.length >= MAX_THREADS) return null;
  const t = new WaiterThread();
  threads.push(t);
  return t;
}

function pollOverflow(): void {
  overflowTimer = undefined;
  for (const e of overflow) {
    if (e.waits.size === 0) {
      overflow.delete(e);
      if (entries.get(e.key) === e) entries.delete(e.key);
    } else if (changed(e)) {
      overflow.delete(e);
      fire(e, "ok");
    }
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

let available: boolean | undefined;

/**
 * The environment variable that turns the waiter threads off for the whole process: async waits
 * then take a thread each, as on a kernel without `futex_waitv` (the fallback, for tests).
 */
export const THREAD_PER_WAIT_ENV = "SHM_THREAD_PER_WAIT";

/**
 * Whether waits can go to waiter threads here (Linux with `futex_waitv`, unless
 * {@linkcode THREAD_PER_WAIT_ENV} is set to something other than "", "0" or "false").
 */
export function waiterThreadsAvailable(): boolean {
  if (available !== undefined) return available;
  const forced = readEnv(THREAD_PER_WAIT_ENV);
  if (forced !== undefined && forced !== "" && forced !== "0" && forced.toLowerCase() !== "false") {
    return available = false;
  }
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
 * Sleeps while the word holds `expected`, until a wake (any process), `timeoutMs` (undefined: no
 * limit), `signal`, or `watch` (run once a slice for all the waits on the same word and value)
 * finding the party it waits for dead. The caller checked the word once already.
 */
export function waitOnWaiterThread(
  word: Word,
  expected: number,
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
  watch?: Watch,
): Promise<WaitResult> {
  const key = `${word.address}:${expected | 0}`;
  let e = entries.get(key);
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
      if (entry.waits.delete(p)) settle(p);
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
    overflow.delete(e);
  }
}
