/**
 * The other process of `bench/topic_bench.ts`.
 *
 * - `peer.ts recv <channel> <count> <size>`: receives `count` messages into one buffer
 *   (`receiveIntoSync`), then prints `{"ms": …}`, the time from the first message to the last.
 * - `peer.ts borrow <channel> <count>`: the same with `borrowSync` and `release`, reading nothing.
 * - `peer.ts echo <requests> <responses>`: borrows each request and sends it back through a loan,
 *   until the requests end.
 * - `peer.ts sub <topic> <count>`: subscribes, then receives `count` messages (`receiveSync`), and
 *   prints `{"ms": …, "got": …}` (`got` counts what it received; the topic blocks, so all of them).
 *
 * Prints `ready` once attached.
 *
 * @module
 */

import { Channel } from "../../channel.ts";
import { Topic } from "../../topic.ts";

const [mode, a = "", b = "", c = ""] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);

if (mode === "recv") {
  const ch = Channel.open(a);
  const count = Number(b);
  const buf = new Uint8Array(Number(c));
  console.log("ready");
  ch.receiveIntoSync(buf);
  const start = performance.now();
  for (let i = 1; i < count; i++) ch.receiveIntoSync(buf);
  console.log(JSON.stringify({ ms: performance.now() - start }));
  ch.close();
} else if (mode === "borrow") {
  const ch = Channel.open(a);
  const count = Number(b);
  console.log("ready");
  ch.borrowSync()!.release();
  const start = performance.now();
  for (let i = 1; i < count; i++) ch.borrowSync()!.release();
  console.log(JSON.stringify({ ms: performance.now() - start }));
  ch.close();
} else if (mode === "echo") {
  const rx = Channel.open(a);
  const tx = Channel.open(b);
  console.log("ready");
  for (let msg; (msg = rx.borrowSync()) !== null;) {
    const loan = tx.loanSync(msg.bytes.length);
    loan.bytes.set(msg.bytes);
    msg.release();
    loan.send();
  }
  rx.close();
  tx.close();
} else if (mode === "sub") {
  const sub = Topic.subscribe(a);
  const count = Number(b);
  console.log("ready");
  sub.receiveSync();
  const start = performance.now();
  let got = 1;
  for (; got < count; got++) if (sub.receiveSync() === null) break;
  console.log(JSON.stringify({ ms: performance.now() - start, got }));
  sub.close();
} else {
  throw new Error(`Unknown mode ${mode}`);
}
