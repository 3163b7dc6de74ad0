// A process on one end of a Topic, for tests/topic_test.ts.
//
//   pub <topic> <publisher id> <count> <max size>   publishes `count` checked messages; prints "sent"
//   sub <topic>                                      subscribes, prints "ready", receives until the
//                                                    topic ends, checking each message whole and its
//                                                    order per publisher; prints {"count", "lagged"}
//   stuck <topic>                                    subscribes, prints "ready", never reads
import { childArgs } from "./_child.ts";
import { Topic } from "../../topic.ts";
import { expectedMessage, parse } from "./channel_message.ts";

const args = childArgs();
const [mode, name = ""] = args;

if (mode === "pub") {
  using topic = Topic.open(name);
  const id = Number(args[2]);
  const count = Number(args[3]);
  const max = Number(args[4]);
  for (let seq = 0; seq < count; seq++) topic.publishSync(expectedMessage(id, seq, max), { timeout: 60_000 });
  console.log("sent");
} else if (mode === "sub") {
  using sub = Topic.subscribe(name);
  console.log("ready");
  const last = new Map<number, number>();
  let count = 0;
  for (;;) {
    const msg = sub.receiveSync({ timeout: 60_000 });
    if (msg === null) break;
    const { sender, seq, max } = parse(msg);
    const expected = expectedMessage(sender, seq, max);
    if (msg.length !== expected.length || msg.some((b, i) => b !== expected[i])) {
      throw new Error(`Message ${sender}/${seq} arrived damaged (${msg.length} bytes)`);
    }
    if (seq <= (last.get(sender) ?? -1)) throw new Error(`Message ${sender}/${seq} arrived out of order`);
    last.set(sender, seq);
    count++;
  }
  console.log(JSON.stringify({ count, lagged: sub.lagged }));
} else if (mode === "stuck") {
  const sub = Topic.subscribe(name);
  console.log("ready");
  setInterval(() => sub.lagged, 1000); // until killed
} else {
  throw new Error(`Unknown mode ${mode}`);
}
