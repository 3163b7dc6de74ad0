/**
 * One check for every carrier whose fast paths keep an Int32 view of the last message sent and of
 * the last buffer received into (`WordView` in `_copy.ts`: Channel, Topic): views used again and
 * again, refilled, resized, unaligned, shrunk and grown, must carry every message exact.
 *
 * @module
 */

import assert from "node:assert/strict";
import { patterned as bytes } from "./children/channel_message.ts";

/** How a carrier of messages of up to 100 bytes sends one and receives one into a buffer (null: none ready). */
export interface Carrier {
  send(message: Uint8Array): void;
  receiveInto(buffer: Uint8Array): number | null;
  tryReceiveInto(buffer: Uint8Array): number | null;
}

/** Sends and receives through `carrier` with reused, resized and unaligned views; asserts every message. */
export function checkReusedViews(carrier: Carrier): void {
  const rab = new ArrayBuffer(8, { maxByteLength: 128 });
  const tracking = new Uint8Array(rab); // its length follows the buffer's
  const unaligned = new Uint8Array(new ArrayBuffer(70), 3, 61);
  const outRab = new ArrayBuffer(100, { maxByteLength: 128 });
  const out = new Uint8Array(outRab);
  let n = 0;
  const check = (msg: Uint8Array) => {
    msg.set(bytes(msg.length, n++));
    const expected = msg.slice();
    carrier.send(msg);
    out.fill(0xee);
    assert.equal(carrier.receiveInto(out), expected.length);
    assert.deepEqual(out.subarray(0, expected.length), expected, `message ${n} (${expected.length} bytes)`);
  };
  for (const len of [8, 8, 20, 20, 6, 6, 64, 64, 65, 3, 3, 0, 0, 100, 100, 64]) {
    rab.resize(len);
    check(tracking);
    check(tracking);
    check(unaligned);
  }
  // The buffer received into shrinks below a message, then grows past it again.
  carrier.send(bytes(40, 1));
  outRab.resize(30);
  assert.throws(() => carrier.receiveInto(out), RangeError);
  outRab.resize(100);
  assert.equal(carrier.receiveInto(out), 40);
  assert.deepEqual(out.subarray(0, 40), bytes(40, 1));
  assert.equal(carrier.tryReceiveInto(out), null);
  // A buffer that grows between receives (a length-tracking view): its Int32 view must grow too.
  const grownRab = new ArrayBuffer(8, { maxByteLength: 128 });
  const grown = new Uint8Array(grownRab);
  for (const size of [8, 8, 64, 64, 100, 100]) {
    grownRab.resize(size);
    carrier.send(bytes(size, size));
    assert.equal(carrier.receiveInto(grown), size);
    assert.deepEqual(grown.slice(), bytes(size, size), `${size} bytes into a buffer grown to ${size}`);
  }
}
