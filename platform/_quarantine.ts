/**
 * Address ranges of closed mappings, kept reserved (as private zero pages) for a while before they
 * are freed, so that a native job of the runtime still holding a pointer into a closed `buf` writes
 * into memory nobody else sees, never into a segment mapped later (see `_mmap.ts`).
 *
 * A range is freed once it is {@linkcode GRACE_MS} old, when more than {@linkcode MAX_RETIRED}
 * ranges or {@linkcode MAX_RETIRED_BYTES} bytes wait (oldest first), or all at once by
 * {@linkcode sweepRetired}`(true)` when a new mapping fails for want of address space. The list is
 * swept whenever a range is added or a mapping is made.
 *
 * @module
 */

/** How long a retired range stays reserved before it is freed, in milliseconds. */
export const GRACE_MS = 10_000;
/**
 * Most retired ranges kept at once. Each is one VMA at most (adjacent ones merge), far below
 * Linux's default limit of 65,530 per process (`vm.max_map_count`).
 */
export const MAX_RETIRED = 4096;
/** Most address space retired ranges keep at once, in bytes (1 GiB). */
export const MAX_RETIRED_BYTES = 2 ** 30;

interface Retired {
  readonly size: number;
  readonly since: number;
  readonly free: () => void;
}
const retired: Retired[] = [];
let head = 0;
let bytes = 0;

/** How many ranges and bytes wait now (for tests and the bench). */
export function retiredStats(): { ranges: number; bytes: number } {
  return { ranges: retired.length - head, bytes };
}

/** Whether any range waits. */
export function anyRetired(): boolean {
  return head < retired.length;
}

/** Adds a range already replaced by private pages; `free` releases it for good. */
export function quarantine(size: number, free: () => void): void {
  retired.push({ size, since: performance.now(), free });
  bytes += size;
  sweepRetired();
}

/**
 * Frees retired ranges: those past their grace period and those beyond the caps; with `all`,
 * every one (address space ran out).
 */
export function sweepRetired(all = false): void {
  if (head === retired.length) return;
  const now = performance.now();
  while (head < retired.length) {
    const oldest = retired[head]!;
    const excess = retired.length - head > MAX_RETIRED || bytes > MAX_RETIRED_BYTES;
    if (!all && !excess && now - oldest.since < GRACE_MS) break;
    head++;
    bytes -= oldest.size;
    try {
      oldest.free();
    } catch {
      // A range that cannot be freed stays reserved: nothing else can be mapped there either.
    }
  }
  if (head === retired.length) retired.length = head = 0;
  else if (head > 1024) {
    retired.splice(0, head);
    head = 0;
  }
}
