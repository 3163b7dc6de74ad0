// A publisher of a Topic for the kill tests of tests/topic_test.ts.
//
//   victim <topic> <publisher id> <max size>   prints "ready", then publishes checked messages until
//                                               killed: by copy, through loans written in two halves
//                                               with a random spin between them, and now and then a
//                                               loan discarded unsent
//   steady <topic> <publisher id> <max size> <progress>
//                                               publishes checked messages until the topic ends,
//                                               storing how many it published in Int32 0 of segment
//                                               <progress>; prints {"count": n}
import { childArgs, requiredArg } from "./_child.ts";
import { SharedMemory } from "../../shared_memory.ts";
import { Topic } from "../../topic.ts";
import { expectedMessage } from "./channel_message.ts";

const args = childArgs();
const [mode, name = ""] = args;
const required = (i: number) => requiredArg(args, i, `topic_kill_peer.ts ${mode}`);
using topic = Topic.open(name);
const id = Number(required(2));
const max = Number(required(3));

if (mode === "victim") {
  console.log("ready");
  for (let seq = 0;; seq++) {
    const msg = expectedMessage(id, seq, max);
    if (seq % 3 === 0) {
      topic.publishSync(msg, { timeout: 60_000 });
      continue;
    }
    using loan = topic.loanSync(msg.length, { timeout: 60_000 });
    const half = msg.length >> 1;
    loan.bytes.set(msg.subarray(0, half));
    for (let i = Math.random() * 20_000; i > 0; i--) Math.sqrt(i);
    loan.bytes.set(msg.subarray(half), half);
    if (seq % 7 === 0) continue; // discarded unsent: its number is published by the next one
    loan.send();
  }
} else if (mode === "steady") {
  using progress = SharedMemory.open(required(4));
  const cell = progress.view(Int32Array, 0, 1);
  let seq = 0;
  while (!topic.ended) {
    topic.publishSync(expectedMessage(id, seq, max), { timeout: 60_000 });
    Atomics.store(cell, 0, ++seq);
  }
  console.log(JSON.stringify({ count: seq }));
} else {
  throw new Error(`Unknown mode ${mode}`);
}
