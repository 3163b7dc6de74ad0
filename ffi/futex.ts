/**
 * The native calls waits and lock owners need: Linux `futex` (through `syscall`) and `gettid`, macOS
 * `__ulock_wait`/`__ulock_wake`. Each table is bound once, lazily, on first use; each wait comes in
 * a blocking form and, for Deno, a `nonblocking` twin that Deno runs on a thread of its own pool.
 * Windows waits are `WaitForSingleObject` and `WaitForMultipleObjects` from `kernel32.ts`.
 *
 * {@linkcode waitBlocking} and {@linkcode waitNonblocking} make one {@linkcode OffThreadWait}: the
 * host layer (`_host.ts`) decides which thread makes it.
 *
 * @module
 */

import {
  addressOfView,
  bindLibrary,
  type Bound,
  foreignBuffer,
  type ForeignLibraryInterface,
  pointerAt,
} from "./_ffi.ts";
import { LIBC_PATHS } from "./libc.ts";
import { kernel32, kernel32Nonblocking, W } from "./kernel32.ts";
import { arch } from "./runtime.ts";

/** Linux `futex(2)`, called through `syscall(2)` (glibc has no wrapper). */
export const linuxFutexSymbols = {
  // long syscall(SYS_futex, int *uaddr, int futex_op, int val, const struct timespec *timeout, int *uaddr2, int val3);
  syscall: { parameters: ["i64", "pointer", "i32", "i32", "buffer", "pointer", "i32"], result: "i64" },
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies ForeignLibraryInterface;

/** The futex wait as a Deno `nonblocking` call: it runs on a thread of Deno's pool; the result is a Promise. */
export const linuxFutexNonblockingSymbols = {
  // long syscall(SYS_futex, int *uaddr, FUTEX_WAIT, int val, const struct timespec *timeout, NULL, 0);
  syscall: {
    parameters: ["i64", "pointer", "i32", "i32", "buffer", "pointer", "i32"],
    result: "i64",
    nonblocking: true,
  },
} as const satisfies ForeignLibraryInterface;

/**
 * Linux `futex_waitv(2)` (5.16+), through `syscall(2)`: one sleep on up to 128 words at once. Its own
 * table because `syscall` takes other argument types here.
 */
export const linuxFutexWaitvSymbols = {
  // long syscall(SYS_futex_waitv, struct futex_waitv *waiters, unsigned int nr_futexes,
  //              unsigned int flags, struct timespec *timeout, clockid_t clockid);
  syscall: { parameters: ["i64", "pointer", "u32", "u32", "pointer", "i32"], result: "i64" },
} as const satisfies ForeignLibraryInterface;

/** `futex_waitv` as a Deno `nonblocking` call (the waiter threads of `_sync/waiters.ts`). */
export const linuxFutexWaitvNonblockingSymbols = {
  // long syscall(SYS_futex_waitv, struct futex_waitv *waiters, unsigned int nr_futexes, 0, NULL, 0);
  syscall: {
    parameters: ["i64", "pointer", "u32", "u32", "pointer", "i32"],
    result: "i64",
    nonblocking: true,
  },
} as const satisfies ForeignLibraryInterface;

/** The clock `futex_waitv`'s absolute timeout is read on (`WaitSet.waitSync`). */
export const linuxClockSymbols = {
  // int clock_gettime(clockid_t clockid, struct timespec *tp);
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
} as const satisfies ForeignLibraryInterface;

/** Linux thread ids (lock owners, see `_sync/owner.ts`). */
export const linuxThreadSymbols = {
  // pid_t gettid(void);   /* glibc >= 2.30, musl >= 1.2.2 */
  gettid: { parameters: [], result: "i32" },
} as const satisfies ForeignLibraryInterface;

/** macOS `__ulock_*` (libSystem; what libc++ uses for `std::atomic::wait`). */
export const darwinUlockSymbols = {
  // int __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us);  /* 0 = forever */
  __ulock_wait: { parameters: ["u32", "pointer", "u64", "u32"], result: "i32" },
  // int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value);
  __ulock_wake: { parameters: ["u32", "pointer", "u64"], result: "i32" },
} as const satisfies ForeignLibraryInterface;

/** `__ulock_wait` as a Deno `nonblocking` call. */
export const darwinUlockNonblockingSymbols = {
  // int __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us);
  __ulock_wait: { parameters: ["u32", "pointer", "u64", "u32"], result: "i32", nonblocking: true },
} as const satisfies ForeignLibraryInterface;

/** Constants of `<linux/futex.h>`, `<sys/ulock.h>` and the errno values waits tell apart. */
export const F = {
  /** `SYS_futex`: 98 on aarch64, 202 on x86_64. */
  SYS_FUTEX: arch === "aarch64" ? 98n : 202n,
  FUTEX_WAIT: 0,
  FUTEX_WAKE: 1,
  /** `SYS_futex_waitv`: 449 on both x86_64 and aarch64. */
  SYS_FUTEX_WAITV: 449n,
  /** `futex_waitv` entry flag: a 32-bit word, shared (no `FUTEX_PRIVATE_FLAG`). */
  FUTEX_32: 2,
  /** Most entries one `futex_waitv` call takes. */
  FUTEX_WAITV_MAX: 128,
  /** `CLOCK_MONOTONIC`: the clock of a `futex_waitv` timeout (absolute). */
  CLOCK_MONOTONIC: 1,
  /** Linux ENOSYS: a kernel before 5.16 has no `futex_waitv`. */
  ENOSYS_LINUX: 38,
  UL_COMPARE_AND_WAIT_SHARED: 3,
  ULF_WAKE_ALL: 0x100,
  /** `__ulock_*` return `-errno` instead of setting errno. */
  ULF_NO_ERRNO: 0x0100_0000,
  /** Linux EAGAIN: the word did not hold the expected value. */
  EAGAIN_LINUX: 11,
  ETIMEDOUT_LINUX: 110,
  ETIMEDOUT_DARWIN: 60,
  /** macOS ENOENT from `__ulock_wake`: nobody was waiting. */
  ENOENT_DARWIN: 2,
} as const;

/** The bound Linux futex call, with the calling thread's errno. */
export interface LinuxFutex {
  readonly syscall: Bound<typeof linuxFutexSymbols>["syscall"];
  /** The errno of the calling thread, read as plain memory right after the call. */
  readonly errno: () => number;
}

let futex: LinuxFutex | undefined;
let futexNonblocking: Bound<typeof linuxFutexNonblockingSymbols> | undefined;
let waitv: Bound<typeof linuxFutexWaitvSymbols> | undefined;
let waitvNonblocking: Bound<typeof linuxFutexWaitvNonblockingSymbols> | undefined;
let thread: Bound<typeof linuxThreadSymbols> | undefined;
let ulock: Bound<typeof darwinUlockSymbols> | null | undefined;
let ulockNonblocking: Bound<typeof darwinUlockNonblockingSymbols> | undefined;

/** Linux `syscall` for futexes, bound on first use. */
export function linuxFutex(): LinuxFutex {
  if (futex) return futex;
  const s = bindLibrary(LIBC_PATHS.linux, linuxFutexSymbols).symbols;
  const cell = new Int32Array(foreignBuffer(s.__errno_location(), 4));
  return futex = { syscall: s.syscall, errno: () => cell[0] ?? 0 };
}

/**
 * Whether this kernel has `futex_waitv`: a call with no entries fails at once, with EINVAL where the
 * call exists and ENOSYS where it does not (before 5.16).
 */
export function hasFutexWaitv(): boolean {
  waitv ??= bindLibrary(LIBC_PATHS.linux, linuxFutexWaitvSymbols).symbols;
  const r = Number(waitv.syscall(F.SYS_FUTEX_WAITV, null, 0, 0, null, 0));
  return !(r < 0 && linuxFutex().errno() === F.ENOSYS_LINUX);
}

let clock: Bound<typeof linuxClockSymbols> | undefined;
/** The blocking `futex_waitv` table of this thread, and its timeout (an explicit buffer: it never moves). */
let syncTable: { table: BigUint64Array; address: bigint; ts: BigInt64Array; tsAddress: bigint } | undefined;

/**
 * Blocks this thread in one `futex_waitv` on `words` (at most 128, each with the value it must
 * hold), until one is woken or differs, or `timeoutMs` passes. Returns the raw result (an index,
 * or -1) and the errno (EAGAIN: a word differed; ETIMEDOUT).
 */
export function futexWaitvSync(
  words: readonly { address: bigint; expected: number }[],
  timeoutMs: number,
): { r: number; errno: number } {
  const lib = linuxFutex();
  waitv ??= bindLibrary(LIBC_PATHS.linux, linuxFutexWaitvSymbols).symbols;
  clock ??= bindLibrary(LIBC_PATHS.linux, linuxClockSymbols).symbols;
  if (!syncTable) {
    const table = new BigUint64Array(new ArrayBuffer(F.FUTEX_WAITV_MAX * 24));
    const ts = new BigInt64Array(new ArrayBuffer(16));
    syncTable = { table, address: addressOfView(table), ts, tsAddress: addressOfView(ts) };
  }
  const { table, ts } = syncTable;
  words.forEach((w, i) => {
    table[i * 3] = BigInt(w.expected >>> 0);
    table[i * 3 + 1] = w.address;
    table[i * 3 + 2] = BigInt(F.FUTEX_32);
  });
  // The timeout is absolute, on CLOCK_MONOTONIC.
  clock.clock_gettime(F.CLOCK_MONOTONIC, new Uint8Array(ts.buffer));
  const ns = ts[1]! + BigInt(Math.round(Math.max(0, timeoutMs) * 1e6));
  ts[0] = ts[0]! + ns / 1_000_000_000n;
  ts[1] = ns % 1_000_000_000n;
  const r = Number(
    waitv.syscall(
      F.SYS_FUTEX_WAITV,
      pointerAt(syncTable.address),
      words.length,
      0,
      pointerAt(syncTable.tsAddress),
      F.CLOCK_MONOTONIC,
    ),
  );
  return { r, errno: r < 0 ? lib.errno() : 0 };
}

/** Linux `gettid`, bound on first use. */
export function linuxThread(): Bound<typeof linuxThreadSymbols> {
  return thread ??= bindLibrary(LIBC_PATHS.linux, linuxThreadSymbols).symbols;
}

/** macOS `__ulock_*`, bound on first use; null on a macOS without them (waits poll then). */
export function darwinUlock(): Bound<typeof darwinUlockSymbols> | null {
  if (ulock !== undefined) return ulock;
  try {
    return ulock = bindLibrary(LIBC_PATHS.darwin, darwinUlockSymbols).symbols;
  } catch {
    return ulock = null;
  }
}

/** The one `struct timespec` of the blocking waits of this thread (read by the kernel during the call only). */
const blockingTs = new BigInt64Array(2);

/**
 * A `struct timespec` for a relative timeout in milliseconds. A blocking call on this thread may
 * `reuse` one buffer; a call that runs on another thread (Deno's `nonblocking`) needs its own.
 */
export function timespec(timeoutMs: number, reuse = false): Uint8Array<ArrayBuffer> {
  const ts = reuse ? blockingTs : new BigInt64Array(2);
  const ms = Math.max(0, timeoutMs);
  const whole = Math.floor(ms / 1000);
  ts[0] = BigInt(whole);
  ts[1] = BigInt(Math.min(999_999_999, Math.round((ms - whole * 1000) * 1e6)));
  return new Uint8Array(ts.buffer);
}

/** `__ulock_wait`'s timeout: microseconds, 0 meaning forever (so a 0 ms timeout becomes 1 µs). */
export function ulockMicros(timeoutMs: number | undefined): number {
  return timeoutMs === undefined ? 0 : Math.min(0xffff_ffff, Math.max(1, Math.round(timeoutMs * 1000)));
}

/** The operation word of every `__ulock_*` call this module makes. */
export const ULOCK_OP: number = F.UL_COMPARE_AND_WAIT_SHARED | F.ULF_NO_ERRNO;

/**
 * One blocking wait, described as data so that another thread can make it: a Linux futex wait or a
 * macOS ulock wait on a word at `address` while it holds `expected` (`timeoutMs` undefined: no
 * limit), or `WaitForSingleObject(handle, ms)` on Windows.
 */
export type OffThreadWait =
  | {
    readonly call: "futex" | "ulock";
    readonly address: bigint;
    readonly expected: number;
    readonly timeoutMs: number | undefined;
  }
  | { readonly call: "handle"; readonly handle: bigint; readonly ms: number }
  | {
    /**
     * `futex_waitv` on `count` entries at `address` (Linux), or `WaitForMultipleObjects` on `count`
     * handles at `address`, any one of them (Windows); no timeout: the doorbell (slot 0) ends it.
     */
    readonly call: "waitv" | "handles";
    readonly address: bigint;
    readonly count: number;
  };

/**
 * Makes the wait on this thread and returns the call's raw result: futex 0 or -1, ulock 0 or
 * `-errno`, `futex_waitv`'s index or -1, `WaitForSingleObject`'s or `WaitForMultipleObjects`'s
 * `WAIT_*` value. (A futex's errno is this thread's, unseen by
 * the thread that asked.)
 */
export function waitBlocking(w: OffThreadWait): number {
  switch (w.call) {
    case "futex": {
      const ts = w.timeoutMs === undefined ? null : timespec(w.timeoutMs, true);
      const p = pointerAt(w.address);
      return Number(linuxFutex().syscall(F.SYS_FUTEX, p, F.FUTEX_WAIT, w.expected | 0, ts, null, 0));
    }
    case "ulock": {
      const u = darwinUlock();
      if (!u) throw new Error("Cannot wait on the word: this macOS has no __ulock_wait");
      return u.__ulock_wait(
        ULOCK_OP,
        pointerAt(w.address),
        BigInt(w.expected >>> 0),
        ulockMicros(w.timeoutMs),
      );
    }
    case "handle":
      return kernel32().WaitForSingleObject(w.handle, w.ms);
    case "waitv":
      waitv ??= bindLibrary(LIBC_PATHS.linux, linuxFutexWaitvSymbols).symbols;
      return Number(waitv.syscall(F.SYS_FUTEX_WAITV, pointerAt(w.address), w.count, 0, null, 0));
    case "handles":
      return kernel32().WaitForMultipleObjects(w.count, pointerAt(w.address), 0, W.INFINITE);
  }
}

/** Deno only: the same wait as a `nonblocking` call (on a thread of Deno's pool); resolves with the raw result. */
export async function waitNonblocking(w: OffThreadWait): Promise<number> {
  switch (w.call) {
    case "futex": {
      futexNonblocking ??= bindLibrary(LIBC_PATHS.linux, linuxFutexNonblockingSymbols).symbols;
      const ts = w.timeoutMs === undefined ? null : timespec(w.timeoutMs);
      const p = pointerAt(w.address);
      return Number(
        await futexNonblocking.syscall(F.SYS_FUTEX, p, F.FUTEX_WAIT, w.expected | 0, ts, null, 0),
      );
    }
    case "ulock": {
      ulockNonblocking ??= bindLibrary(LIBC_PATHS.darwin, darwinUlockNonblockingSymbols).symbols;
      const value = BigInt(w.expected >>> 0);
      return Number(
        await ulockNonblocking.__ulock_wait(ULOCK_OP, pointerAt(w.address), value, ulockMicros(w.timeoutMs)),
      );
    }
    case "handle":
      return Number(await kernel32Nonblocking().WaitForSingleObject(w.handle, w.ms));
    case "waitv":
      waitvNonblocking ??= bindLibrary(LIBC_PATHS.linux, linuxFutexWaitvNonblockingSymbols).symbols;
      return Number(
        await waitvNonblocking.syscall(F.SYS_FUTEX_WAITV, pointerAt(w.address), w.count, 0, null, 0),
      );
    case "handles":
      return Number(
        await kernel32Nonblocking().WaitForMultipleObjects(w.count, pointerAt(w.address), 0, W.INFINITE),
      );
  }
}
