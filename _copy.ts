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
