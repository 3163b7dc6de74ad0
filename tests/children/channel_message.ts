// Test messages whose every byte follows from (sender, seq), so a receiver can check each one whole.

/** Senders a marks segment has room for. */
export const MAX_SENDERS = 8;

/** The message `seq` of `sender`: a 12-byte header (sender, seq, max size) and pseudo-random bytes. */
export function expectedMessage(sender: number, seq: number, max: number): Uint8Array {
  let x = (Math.imul(sender + 1, 0x9e3779b1) ^ Math.imul(seq + 1, 0x85ebca6b)) | 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const size = 12 + (next() % (max + 1));
  const msg = new Uint8Array(size);
  const dv = new DataView(msg.buffer);
  dv.setUint32(0, sender, true);
  dv.setUint32(4, seq, true);
  dv.setUint32(8, max, true);
  for (let i = 12; i < size; i++) msg[i] = next() & 0xff;
  return msg;
}

/** The header of a test message. */
export function parse(msg: Uint8Array): { sender: number; seq: number; max: number } {
  if (msg.length < 12) throw new Error(`A ${msg.length}-byte message has no header`);
  const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  return { sender: dv.getUint32(0, true), seq: dv.getUint32(4, true), max: dv.getUint32(8, true) };
}

/** `n` bytes of a pattern that depends on `seed`, so that a byte in the wrong place shows. */
export function patterned(n: number, seed = n): Uint8Array {
  return new Uint8Array(n).map((_, i) => (i * 31 + seed) & 0xff);
}
