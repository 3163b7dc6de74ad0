/**
 * Who holds a lock, and whether they are still alive — robust against PID reuse.
 *
 * A lock word names its holder with a 30-bit *owner id*:
 *
 * | bits | what |
 * |---|---|
 * | 0–21 | the holder's thread id (Linux `gettid()`; the process id elsewhere). Linux caps ids at 2^22. |
 * | 22–29 | an 8-bit hash of the thread's start time (Linux: field 22 of `/proc/<tid>/stat`), 0 elsewhere |
 *
 * The holder also writes its full start time (see {@linkcode selfStart}) to a second word right after
 * taking the lock, and clears it right before releasing it. A holder counts as dead when
 * `/proc/<tid>/stat` is gone (and `kill(tid, 0)` says ESRCH), shows a zombie, or shows a start time
 * that does not match the hash in the word or the full start time beside it: a new thread that got
 * the same id after the holder died started later, so its start time differs. Reading the start
 * time from the kernel (not a value the holder wrote) is what makes a reused id look dead and keeps
 * a live holder looking alive.
 *
 * macOS (unverified here): the id is the pid, and liveness is `kill(pid, 0)` only, so a pid reused by
 * an unrelated process while the holder was dead keeps the lock looking held. Windows: the id is the
 * pid and a holder is always assumed alive (no recovery).
 *
 * @module
 */

import { bindLibrary, type Bound, cString } from "./ffi/_ffi.ts";
import { libc, LIBC_PATHS } from "./ffi/libc.ts";
import { os } from "./ffi/runtime.ts";

/** Owner ids live in the low 30 bits of a lock word. */
export const ID_MASK = 0x3fff_ffff;
const TID_MASK = 0x3f_ffff;
const O_RDONLY = 0;
const O_CLOEXEC = 0x80000;
const ESRCH = 3;

const linuxOwnerSymbols = {
  // pid_t gettid(void);   /* glibc >= 2.30, musl >= 1.2.2 */
  gettid: { parameters: [], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
} as const satisfies Deno.ForeignLibraryInterface;

let linux: Bound<typeof linuxOwnerSymbols> | undefined;
function linuxLib(): Bound<typeof linuxOwnerSymbols> {
  return linux ??= bindLibrary(LIBC_PATHS.linux, linuxOwnerSymbols).symbols;
}

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
    const n = Number(linuxLib().read(fd, statBuffer, BigInt(statBuffer.length)));
    if (n <= 0) return null;
    const text = new TextDecoder().decode(statBuffer.subarray(0, n));
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")".
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return [fields[0], Number(fields[19])]; // field 3 (state) and field 22 (starttime)
  } finally {
    c.close(fd);
  }
}

let self: { id: number; start: number } | undefined;

function identify(): { id: number; start: number } {
  if (os === "linux") {
    const tid = linuxLib().gettid();
    const stat = readStat("thread-self") ?? readStat(tid);
    if (stat) return { id: (tid & TID_MASK) | (hash8(stat[1]) << 22), start: encodeStart(stat[1]) };
    return { id: tid & TID_MASK, start: 0 };
  }
  const pid = (globalThis as unknown as { process: { pid: number } }).process?.pid ?? Deno.pid;
  return { id: (pid & TID_MASK) || 1, start: 0 };
}

/** This thread's owner id (non-zero, at most 30 bits). */
export function selfId(): number {
  return (self ??= identify()).id;
}

/** This thread's encoded start time, written beside the lock word while holding it (0 if unknown). */
export function selfStart(): number {
  return (self ??= identify()).start;
}

/** The thread id part of an owner id (for messages). */
export function tidOf(id: number): number {
  return id & TID_MASK;
}

/**
 * Whether the holder named by `id` is dead. `storedStart` is the start time the holder wrote beside
 * the lock word (0 when not written yet, which defers to the other checks).
 */
export function ownerDead(id: number, storedStart: number): boolean {
  const tid = id & TID_MASK;
  if (os === "linux") {
    const stat = readStat(tid);
    if (!stat) return processGone(tid);
    const [state, start] = stat;
    if (state === "Z" || state === "X") return true;
    if (hash8(start) !== (id >>> 22 & 0xff)) return true; // the id now belongs to a later thread
    return storedStart !== 0 && storedStart !== encodeStart(start);
  }
  if (os === "darwin") return processGone(tid);
  return false;
}

/** `kill(pid, 0)` fails with ESRCH: there is no such process (EPERM means it exists). */
function processGone(pid: number): boolean {
  const c = libc();
  return c.kill(pid, 0) !== 0 && c.errno() === ESRCH;
}
