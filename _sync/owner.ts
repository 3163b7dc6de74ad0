/**
 * Who holds a lock, and whether they are still alive — robust against PID reuse.
 *
 * A lock word names its holder with a 30-bit *owner id*:
 *
 * | bits | what |
 * |---|---|
 * | 0–21 | the holder's thread id: Linux `gettid()` (Linux caps ids at 2^22); Windows `GetCurrentThreadId() / 4` (Windows ids are multiples of 4); the process id on macOS |
 * | 22–29 | an 8-bit hash of the thread's start time (Linux: field 22 of `/proc/<tid>/stat`; Windows: the creation time from `GetThreadTimes`), 0 on macOS |
 *
 * The holder also writes its full start time (see {@linkcode selfStart}) to a second word right after
 * taking the lock (only when the word holds another value: a thread relocking its mutex writes
 * nothing). A holder counts as dead when `/proc/<tid>/stat` is gone (and `kill(tid, 0)` says
 * ESRCH), shows a zombie, or shows a start time whose hash differs from the one in the lock word: a
 * thread that got the same id after the holder died started later, so its start time differs.
 * Reading the start time from the kernel (not a value the holder wrote) is what keeps a live holder
 * looking alive and makes a reused id look dead. The hash has 8 bits; the full start time beside
 * the word settles the 1-in-256 case where a reused id hashes alike: when it differs from the live
 * thread's, the holder is reported as `"mismatch"`, and the mutex treats it as dead once the same
 * lock word has shown a mismatch on two probes 250 ms apart (right after a compare-exchange, before
 * its start time is written, a live holder shows a stale one for a few nanoseconds).
 *
 * Windows (checked under Wine): the same scheme with the thread's creation time. A holder is dead
 * when `OpenThread` finds no thread of that id, when its thread handle is signaled (the thread
 * ended; killing the process ends all its threads), or when the creation time differs. A thread
 * whose id does not fit in 22 bits (ids of 2^24 and up, not seen in practice) is recorded with all
 * id bits set and always counts as alive: it gets mutual exclusion but no owner-death recovery.
 *
 * An id no live thread can have (see {@linkcode possibleId}: 0, a thread id part of 0, anything
 * out of range) is reported dead without a probe, so a corrupted lock word, or one whose holder
 * bits were cleared while its waiters or died bits stayed, is taken over like a dead holder's.
 *
 * macOS (unverified here): the id is the pid, and liveness is `kill(pid, 0)` only, so a pid reused by
 * an unrelated process while the holder was dead keeps the lock looking held.
 *
 * @module
 */

import { cString } from "../ffi/_ffi.ts";
import { linuxThread } from "../ffi/futex.ts";
import { libc } from "../ffi/libc.ts";
import { os } from "../ffi/runtime.ts";
import { kernel32, W } from "../ffi/kernel32.ts";
import { processId } from "../_host.ts";

/** Owner ids live in the low 30 bits of a lock word. */
export const ID_MASK = 0x3fff_ffff;
const TID_MASK = 0x3f_ffff;
const O_RDONLY = 0;
const O_CLOEXEC = 0x80000;
const ESRCH = 3;

/** The 8-bit start-time hash stored in an owner id. */
function hash8(start: number): number {
  return Math.imul((start % 0x1_0000_0000) | 0, 0x9e37_79b1) >>> 24;
}

/** A start time as a positive, non-zero Int32 (0 means "not written yet"). */
function encodeStart(start: number): number {
  return (start % 0x7fff_ffff) + 1;
}

const statBuffer = new Uint8Array(1024);

/** `[state, starttime]` of a Linux thread, from /proc; null when it cannot be read. */
function readStat(tid: number | "thread-self"): [string, number] | null {
  const c = libc();
  const fd = c.open(cString(`/proc/${tid}/stat`), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return null;
  try {
    const n = Number(c.read(fd, statBuffer, BigInt(statBuffer.length)));
    if (n <= 0) return null;
    const text = new TextDecoder().decode(statBuffer.subarray(0, n));
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")".
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const state = fields[0];
    const start = fields[19];
    if (state === undefined || start === undefined) return null;
    return [state, Number(start)]; // field 3 (state) and field 22 (starttime)
  } finally {
    c.close(fd);
  }
}

const filetimes = new BigUint64Array(4);
const filetimeBytes = new Uint8Array(filetimes.buffer);
const ERROR_INVALID_PARAMETER = 87;

/**
 * A Windows thread by id: `"gone"` (no such thread), `"unknown"` (it exists but may not be looked
 * at), or whether it still runs and when it was created (low 52 bits of its FILETIME).
 */
function windowsThread(tid: number): "gone" | "unknown" | { running: boolean; created: number } {
  const k = kernel32();
  const h = k.OpenThread(W.THREAD_PROBE, 0, tid);
  if (BigInt(h) === 0n) return k.GetLastError() === ERROR_INVALID_PARAMETER ? "gone" : "unknown";
  try {
    const running = k.WaitForSingleObject(h, 0) === W.WAIT_TIMEOUT;
    if (
      !k.GetThreadTimes(
        h,
        filetimeBytes,
        filetimeBytes.subarray(8),
        filetimeBytes.subarray(16),
        filetimeBytes.subarray(24),
      )
    ) {
      return running ? "unknown" : { running, created: 0 };
    }
    return { running, created: Number((filetimes[0] ?? 0n) & 0xf_ffff_ffff_ffffn) };
  } finally {
    k.CloseHandle(h);
  }
}

let self: { id: number; start: number } | undefined;
let ownId = 0;
let ownStart = 0;

function identify(): { id: number; start: number } {
  if (os === "linux") {
    const tid = linuxThread().gettid();
    const stat = readStat("thread-self") ?? readStat(tid);
    if (stat) return { id: (tid & TID_MASK) | (hash8(stat[1]) << 22), start: encodeStart(stat[1]) };
    return { id: tid & TID_MASK, start: 0 };
  }
  if (os === "windows") {
    const tid = kernel32().GetCurrentThreadId();
    if (tid / 4 >= TID_MASK) return { id: TID_MASK, start: 0 };
    const t = windowsThread(tid);
    const created = typeof t === "object" ? t.created : 0;
    return { id: tid / 4 | (hash8(created) << 22), start: created ? encodeStart(created) : 0 };
  }
  const pid = processId();
  return { id: (pid & TID_MASK) || 1, start: 0 };
}

/** This thread's owner id (non-zero, at most 30 bits). */
export function selfId(): number {
  return ownId || init();
}

function init(): number {
  self ??= identify();
  ownStart = self.start;
  return ownId = self.id;
}

/** This thread's encoded start time, written beside the lock word while holding it (0 if unknown). */
export function selfStart(): number {
  if (ownId === 0) init();
  return ownStart;
}

/** The thread id part of an owner id (for messages). */
export function tidOf(id: number): number {
  return os === "windows" ? (id & TID_MASK) * 4 : id & TID_MASK;
}

/** What a probe of a lock holder found. */
export type OwnerStatus = "alive" | "dead" | "mismatch";

/**
 * Whether the holder named by `id` lives. `storedStart` is the start time written beside the lock
 * word (0 when never written). `"mismatch"`: the thread lives and its start-time hash matches, but
 * not the full start time beside the word (a reused id, or a holder caught between its
 * compare-exchange and its write of the start time).
 */
export function ownerStatus(id: number, storedStart: number): OwnerStatus {
  // No live thread has such an id (and a probe of thread 0 would ask about this process: kill(0, 0)).
  if (!possibleId(id)) return "dead";
  const tid = id & TID_MASK;
  if (os === "linux") {
    const stat = readStat(tid);
    if (!stat) return processGone(tid) ? "dead" : "alive";
    const [state, start] = stat;
    if (state === "Z" || state === "X") return "dead";
    if (hash8(start) !== (id >>> 22 & 0xff)) return "dead"; // the id now belongs to a later thread
    return storedStart !== 0 && storedStart !== encodeStart(start) ? "mismatch" : "alive";
  }
  if (os === "darwin") return processGone(tid) ? "dead" : "alive";
  if (os === "windows") {
    if (tid === TID_MASK) return "alive"; // an id too large to record: never presumed dead
    const t = windowsThread(tid * 4);
    if (t === "gone") return "dead";
    if (t === "unknown") return "alive";
    if (!t.running) return "dead";
    if (hash8(t.created) !== (id >>> 22 & 0xff)) return "dead"; // the id now belongs to a later thread
    return storedStart !== 0 && storedStart !== encodeStart(t.created) ? "mismatch" : "alive";
  }
  return "alive";
}

/**
 * Whether some live thread can have owner id `id`: an integer of at most 30 bits whose thread id
 * part is not 0 (no thread, process or Windows thread we record has id 0; `selfId` never returns
 * it), and on macOS, where the id is the pid alone, no hash bits.
 */
export function possibleId(id: number): boolean {
  if (!Number.isInteger(id) || id <= 0 || id > ID_MASK) return false;
  if ((id & TID_MASK) === 0) return false;
  return os !== "darwin" || id <= TID_MASK;
}

/** `kill(pid, 0)` fails with ESRCH: there is no such process (EPERM means it exists). */
function processGone(pid: number): boolean {
  const c = libc();
  return c.kill(pid, 0) !== 0 && c.errno() === ESRCH;
}
