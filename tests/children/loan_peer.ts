// A process lending or borrowing on a Channel, for tests/channel_loan_test.ts.
//
//   lend <channel> <sender id> <count> <max size>   sends `count` checked messages, each written in
//                                                    place through loanSync; prints "sent"
//   borrow <channel> <marks> [strict]                borrows until the channel is done, checking each
//                                                    message whole, marking it in segment <marks> and
//                                                    (with "strict") its order per sender; holds up
//                                                    to 3 borrows at once while more are ready;
//                                                    prints {"count": n}
//   lendvictim <channel> <sender id> <max size>      prints "ready", then lends checked messages until
//                                                    killed, holding each loan a random while
//   borrowvictim <channel> <marks>                   prints "ready", then borrows (marking each) and
//                                                    holds up to 3 at once until killed
//   holdborrow <channel>                             borrows one message, prints "holding <length>",
//                                                    holds it until killed
//   holdloan <channel> <length>                      loans `length` bytes, fills them with 0xee, prints
//                                                    "holding", holds the loan until killed
import { childArgs, requiredArg } from "./_child.ts";
import { Channel, type ChannelBorrow } from "../../channel.ts";
import { SharedMemory } from "../../shared_memory.ts";
import { expectedMessage, MAX_SENDERS, parse } from "./channel_message.ts";

const args = childArgs();
const [mode, name = ""] = args;
const ch = Channel.open(name);

/** Argument `i`, which the mode needs. */
function required(i: number): string {
  return requiredArg(args, i, `loan_peer.ts ${mode}`);
}

/** Writes message `seq` of `id` in place and sends it; spins a random while before sending when `hold`. */
function lend(id: number, seq: number, max: number, hold: boolean): void {
  const expected = expectedMessage(id, seq, max);
  const loan = ch.loanSync(expected.length, { timeout: 30_000 });
  const half = expected.length >> 1;
  loan.bytes.set(expected.subarray(0, half));
  if (hold) { for (let i = Math.random() * 20_000; i > 0; i--) Math.sqrt(i); }
  loan.bytes.set(expected.subarray(half), half);
  loan.send();
}

/** Checks a message whole; returns its sender and seq. */
function check(msg: Uint8Array): { sender: number; seq: number } {
  const { sender, seq, max } = parse(msg);
  const expected = expectedMessage(sender, seq, max);
  if (msg.length !== expected.length || msg.some((b, i) => b !== expected[i])) {
    throw new Error(`Message ${sender}/${seq} arrived damaged (${msg.length} bytes)`);
  }
  return { sender, seq };
}

if (mode === "lend") {
  const id = Number(required(2));
  const count = Number(required(3));
  const max = Number(required(4));
  for (let seq = 0; seq < count; seq++) lend(id, seq, max, false);
  console.log("sent");
} else if (mode === "lendvictim") {
  const id = Number(required(2));
  const max = Number(required(3));
  console.log("ready");
  for (let seq = 0;; seq++) lend(id, seq, max, seq % 3 === 0);
} else if (mode === "borrow" || mode === "borrowvictim") {
  const marks = SharedMemory.open(required(2));
  const per = marks.size / MAX_SENDERS;
  const strict = args[3] === "strict";
  const victim = mode === "borrowvictim";
  const last = new Array<number>(MAX_SENDERS).fill(-1);
  const held: ChannelBorrow[] = [];
  let count = 0;
  if (victim) console.log("ready");
  for (;;) {
    // Borrows are held only while more messages are ready: a borrow held while waiting would hold
    // the senders a ring's length behind it while other receivers go on.
    let msg = ch.tryBorrow();
    if (msg === null) {
      for (const m of held.splice(0)) m.release();
      msg = ch.borrowSync({ timeout: 30_000 });
    }
    if (msg === null) break;
    const { sender, seq } = check(msg.bytes);
    if (strict && seq <= last[sender]!) {
      throw new Error(`Message ${sender}/${seq} arrived after ${sender}/${last[sender]}`);
    }
    last[sender] = seq;
    Atomics.add(marks.buf, sender * per + seq, 1);
    count++;
    held.push(msg);
    // Hold up to 3 at once, releasing in a varying order.
    if (held.length > (count % 3)) held.splice(count % held.length, 1)[0]!.release();
    if (victim) { for (let i = Math.random() * 5_000; i > 0; i--) Math.sqrt(i); }
  }
  for (const m of held) m.release();
  console.log(JSON.stringify({ count }));
  marks.close();
} else if (mode === "holdborrow") {
  const msg = ch.borrowSync({ timeout: 30_000 });
  console.log(`holding ${msg?.bytes.length}`);
  setInterval(() => {}, 1000); // until killed
} else if (mode === "holdloan") {
  const loan = ch.loanSync(Number(required(2)), { timeout: 30_000 });
  loan.bytes.fill(0xee);
  console.log("holding");
  setInterval(() => {}, 1000); // until killed
} else {
  throw new Error(`Unknown mode ${mode}`);
}
