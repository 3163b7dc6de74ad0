/**
 * A bare single-producer, single-consumer ring of 64-byte messages, written only to measure the
 * floor of one message per call between two processes on this machine: one 64-byte slot per
 * message, each side caching the other's index and spinning (no waits, no checks, no recovery).
 * `bench/channel_bench.ts` compares the Channel's one-message-per-call path with it.
 *
 * Layout: Int32 0 the tail (the producer's count), Int32 16 the head (the consumer's count), each
 * on its own cache line; slots of 64 bytes from byte 128.
 *
 * @module
 */

import type { SharedMemory } from "../../shared_memory.ts";

/** Int32 index of the tail, of the head; byte offset of the slots. */
export const BARE_TAIL = 0;
export const BARE_HEAD = 16;
export const BARE_SLOTS_AT = 128;
/** Slots of the ring: 1 MiB of messages, as the Channel's ring in the same bench. */
export const BARE_SLOTS = 1 << 14;

/** Bytes of a segment holding the ring. */
export const BARE_SIZE: number = BARE_SLOTS_AT + BARE_SLOTS * 64;

/** The ring in `shm`: its Int32 view and index mask. */
export function bareRing(shm: SharedMemory): { i32: Int32Array; mask: number } {
  return { i32: new Int32Array(shm.buf.buffer, 0, BARE_SIZE / 4), mask: BARE_SLOTS - 1 };
}

/** The producer's side: `send(msg32)` copies 16 Int32s into the next slot and publishes it. */
export function bareProducer(shm: SharedMemory): (msg32: Int32Array) => void {
  const { i32, mask } = bareRing(shm);
  let tail = 0;
  let head = 0;
  return (msg32) => {
    while (tail - head >= BARE_SLOTS) head = Atomics.load(i32, BARE_HEAD);
    const w = BARE_SLOTS_AT / 4 + (tail & mask) * 16;
    for (let i = 0; i < 16; i++) i32[w + i] = msg32[i]!;
    Atomics.store(i32, BARE_TAIL, ++tail);
  };
}
