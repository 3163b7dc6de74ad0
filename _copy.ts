/**
 * Copies of short messages between views, faster than `set()` for them: `set()` is a call into the
 * engine (20 to 30 ns whatever the length), a loop of Int32 loads and stores costs about 1 ns a
 * word.
 *
 * @module
 */

/**
 * Copies 16 Int32s (64 bytes: a channel's cell, a common message) from `src` at `s` to `dst` at
 * `d`. Unrolled: a loop takes 13 to 21 ns for them, the 16 lines 8 (Bun and Deno).
 */
export function copyCell(dst: Int32Array, d: number, src: Int32Array, s: number): void {
  dst[d] = src[s]!;
  dst[d + 1] = src[s + 1]!;
  dst[d + 2] = src[s + 2]!;
  dst[d + 3] = src[s + 3]!;
  dst[d + 4] = src[s + 4]!;
  dst[d + 5] = src[s + 5]!;
  dst[d + 6] = src[s + 6]!;
  dst[d + 7] = src[s + 7]!;
  dst[d + 8] = src[s + 8]!;
  dst[d + 9] = src[s + 9]!;
  dst[d + 10] = src[s + 10]!;
  dst[d + 11] = src[s + 11]!;
  dst[d + 12] = src[s + 12]!;
  dst[d + 13] = src[s + 13]!;
  dst[d + 14] = src[s + 14]!;
  dst[d + 15] = src[s + 15]!;
}

/**
 * Copies `words` Int32s from `src` at `s` to `dst` at `d`: the 16 of a cell unrolled (`copyCell`),
 * other counts by a loop.
 */
export function copyWords(dst: Int32Array, d: number, src: Int32Array, s: number, words: number): void {
  if (words === 16) return copyCell(dst, d, src, s);
  for (let i = 0; i < words; i++) dst[d + i] = src[s + i]!;
}

/**
 * The Int32 view of a view used again and again (a buffer a sender refills, a buffer a receiver
 * reads into), for copying short messages by words. Making one costs more than one `set()`, so a
 * view seen for the first time gets none. The cache follows the view's length, so a view of a
 * resizable buffer that grew or shrank gets a fresh Int32 view.
 */
export class WordView {
  /** The view asked about last (read only: `of` sets it). */
  last: Uint8Array | null = null;
  /** Its Int32 view, once it came twice and qualified (read only: `of` sets it). */
  last32: Int32Array | null = null;

  /**
   * `view`'s Int32 view (its whole words), when it starts on a 4-byte boundary, is not empty and
   * was also the last one asked about; null otherwise (copy with `set()`).
   */
  of(view: Uint8Array): Int32Array | null {
    if (view !== this.last) {
      this.last = view;
      this.last32 = null;
      return null;
    }
    let v32 = this.last32;
    if (v32 === null || v32.length !== view.length >>> 2) {
      if (view.byteOffset % 4 !== 0 || view.length === 0) return null;
      v32 = this.last32 = new Int32Array(view.buffer, view.byteOffset, view.length >>> 2);
    }
    return v32;
  }

  /**
   * Copies `message` to byte `at` (a multiple of 4) of `dst`, whose Int32 view is `dst32`: by words
   * when it is at most 256 bytes and was the last message copied too, else with `set()`.
   */
  copy(message: Uint8Array, dst: Uint8Array, dst32: Int32Array, at: number): void {
    const len = message.length;
    const in32 = len <= 256 ? this.of(message) : null;
    if (in32 === null) return dst.set(message, at);
    const words = len >>> 2;
    copyWords(dst32, at >>> 2, in32, 0, words);
    for (let i = words << 2; i < len; i++) dst[at + i] = message[i]!;
  }
}
