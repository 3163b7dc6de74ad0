/**
 * The layout `examples/writer.ts` and `examples/reader.ts` share: an int32 header (state, message
 * length, answer length) and two text areas.
 *
 * @module
 */

/** Total size of the segment. */
export const LAYOUT_SIZE = 4096;
/** Byte offset of the writer's message (up to 1984 bytes). */
export const MESSAGE = 64;
/** Byte offset of the reader's answer (up to 2048 bytes). */
export const ANSWER = 2048;
/** header[0]: nothing written yet. */
export const EMPTY = 0;
/** header[0]: the message is complete. */
export const READY = 1;
/** header[0]: the reader has answered. */
export const ANSWERED = 2;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes UTF-8 `text` at `offset` and its byte length into `header[slot]`. */
export function writeText(
  buf: Uint8Array,
  offset: number,
  header: Int32Array,
  slot: number,
  text: string,
): void {
  const room = buf.subarray(offset, offset === MESSAGE ? ANSWER : buf.length);
  const { written } = encoder.encodeInto(text, room);
  Atomics.store(header, slot, written);
}

/** Reads the UTF-8 text whose length is in `header[slot]`. */
export function readText(buf: Uint8Array, offset: number, header: Int32Array, slot: number): string {
  // decode() copies the bytes out of shared memory first.
  return decoder.decode(buf.slice(offset, offset + Atomics.load(header, slot)));
}

/** Waits without blocking the event loop. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
