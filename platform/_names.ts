/** Eight random lower-case hex digits, as Python's generated segment names use. */
export function randomHex8(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(4));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
