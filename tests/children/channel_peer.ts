// A process on one end of a Channel, for tests/channel_test.ts.
//
//   send <channel> <sender id> <count> <max size> [batch]
//                                                    sends `count` checked messages (with sendMany, in
//                                                    batches of up to 32, with "batch"), prints "sent"
//   recv <channel> <marks> [batch]                   receives until the channel is done (with
//                                                    receiveMany with "batch"), checking each message
//                                                    and marking it in segment <marks>; prints
//                                                    {"count": n}
//   flood <channel> <count> <size>                  sends `count` messages of `size` bytes: seq, then seq & 255
//   take <channel> <marks>                           receives flood messages into one buffer until done,
//                                                    checking and marking each; prints {"count": n}
//   victim <channel> <sender id> <max size> [batch]  prints "ready", then sends checked messages (with
//                                                    sendManySync, 1 to 4 at a time, with "batch") until
//                                                    killed
//   block <channel>                                  prints "ready", then blocks in receive()
//   end <channel>                                    ends the channel
import { childArgs, requiredArg } from "./_child.ts";
import { Channel } from "../../channel.ts";
import { SharedMemory } from "../../shared_memory.ts";
import { expectedMessage, MAX_SENDERS, parse } from "./channel_message.ts";

const args = childArgs();
const [mode, name = ""] = args;
const ch = Channel.open(name);

/** Argument `i`, which the mode needs. */
function required(i: number): string {
  return requiredArg(args, i, `channel_peer.ts ${mode}`);
}

if (mode === "send") {
  const id = Number(args[2]);
  const count = Number(args[3]);
  const max = Number(args[4]);
  if (args[5] === "batch") {
    for (let seq = 0; seq < count;) {
      const batch: Uint8Array[] = [];
      for (const end = Math.min(count, seq + 1 + (seq % 32)); seq < end; seq++) {
        batch.push(expectedMessage(id, seq, max));
      }
      ch.sendManySync(batch);
    }
  } else {
    for (let seq = 0; seq < count; seq++) ch.sendSync(expectedMessage(id, seq, max));
  }
  console.log("sent");
} else if (mode === "recv") {
  const marks = SharedMemory.open(required(2));
  const per = marks.size / MAX_SENDERS;
  const last = new Array<number>(MAX_SENDERS).fill(-1);
  let count = 0;
  const batch = args[3] === "batch";
  const buffer = new Uint8Array(Math.max(8192, ch.capacity));
  const lengths = new Uint32Array(16);
  const queue: Uint8Array[] = [];
  for (;;) {
    if (batch && queue.length === 0) {
      const n = ch.receiveManySync(buffer, lengths, { timeout: 30_000 });
      if (n === null) break;
      for (let i = 0, off = 0; i < n; off += lengths[i++]!) queue.push(buffer.slice(off, off + lengths[i]!));
    }
    const msg = batch ? queue.shift()! : ch.receiveSync({ timeout: 30_000 });
    if (msg === null) break;
    const { sender, seq, max } = parse(msg);
    const expected = expectedMessage(sender, seq, max);
    if (msg.length !== expected.length || msg.some((b, i) => b !== expected[i])) {
      throw new Error(`Message ${sender}/${seq} arrived damaged (${msg.length} bytes)`);
    }
    if (seq <= last[sender]!) {
      throw new Error(`Message ${sender}/${seq} arrived after ${sender}/${last[sender]}`);
    }
    last[sender] = seq;
    Atomics.add(marks.buf, sender * per + seq, 1);
    count++;
  }
  console.log(JSON.stringify({ count }));
  marks.close();
} else if (mode === "flood") {
  const count = Number(args[2]);
  const msg = new Uint8Array(Number(args[3]));
  for (let seq = 0; seq < count; seq++) {
    msg.fill(seq & 255);
    new DataView(msg.buffer).setUint32(0, seq, true);
    ch.sendSync(msg);
  }
  console.log("sent");
} else if (mode === "take") {
  const marks = SharedMemory.open(required(2));
  const buf = new Uint8Array(ch.capacity);
  const dv = new DataView(buf.buffer);
  let count = 0;
  for (let n; (n = ch.receiveIntoSync(buf, { timeout: 30_000 })) !== null;) {
    const seq = dv.getUint32(0, true);
    for (let i = 4; i < n; i++) {
      if (buf[i] !== (seq & 255)) throw new Error(`Message ${seq} arrived damaged at byte ${i}`);
    }
    Atomics.add(marks.buf, seq, 1);
    count++;
  }
  console.log(JSON.stringify({ count }));
  marks.close();
} else if (mode === "victim") {
  const id = Number(args[2]);
  const max = Number(args[3]);
  console.log("ready");
  for (let seq = 0;;) {
    if (args[4] === "batch") {
      const batch: Uint8Array[] = [];
      for (const end = seq + 1 + (seq % 4); seq < end; seq++) batch.push(expectedMessage(id, seq, max));
      ch.sendManySync(batch);
    } else {
      ch.sendSync(expectedMessage(id, seq++, max));
    }
  }
} else if (mode === "block") {
  console.log("ready");
  const msg = ch.receiveSync();
  console.log(JSON.stringify({ got: msg === null ? null : msg.length }));
} else if (mode === "end") {
  ch.end();
} else {
  throw new Error(`Unknown mode ${mode}`);
}
ch.close();
