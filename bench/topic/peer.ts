/**
 * The other process of `bench/topic_bench.ts`.
 *
 * - `peer.ts recv <channel> <count> <size> <warm>`: receives `warm` messages (the warm-up: the
 *   JIT compiles the loop meanwhile), then `count` more into one buffer (`receiveIntoSync`), then
 *   prints `{"ms", "first", "last", "got"}`: the times (ms since the epoch) of the first message
 *   after the warm-up and of the last, and how many it received from the first on.
 * - `peer.ts borrow <channel> <count> <warm>`: the same with `borrowSync` and `release`, reading
 *   nothing.
 * - `peer.ts echo <requests> <responses>`: borrows each request and answers with a loan of the
 *   same length whose first and last bytes it copies (the hand-off, not the payload), until the
 *   requests end.
 * - `peer.ts echocopy <requests> <responses> <size>`: receives each request into a buffer
 *   (`receiveIntoSync`) and sends it back (`sendSync`), until the requests end.
 * - `peer.ts sub <topic> <count> <size> <warm>`: subscribes, then receives `warm` and `count`
 *   messages into one buffer (`receiveIntoSync`), and prints the same as `recv` (the topic blocks,
 *   so `got` is all).
 *
 * Prints `ready` once attached.
 *
 * @module
 */

import { Channel } from "../../channel.ts";
import { Topic } from "../../topic.ts";

const [mode, a = "", b = "", c = "", d = "0"] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);

/** Now, on a clock every process shares (ms since the epoch, sub-ms resolution). */
const clock = () => performance.timeOrigin + performance.now();

if (mode === "recv") {
  const ch = Channel.open(a);
  const count = Number(b);
  const buf = new Uint8Array(Number(c));
  console.log("ready");
  for (let i = 0, warm = Number(d); i <= warm; i++) ch.receiveIntoSync(buf);
  const first = clock();
  for (let i = 1; i < count; i++) ch.receiveIntoSync(buf);
  const last = clock();
  console.log(JSON.stringify({ ms: last - first, first, last, got: count }));
  ch.close();
} else if (mode === "borrow") {
  const ch = Channel.open(a);
  const count = Number(b);
  console.log("ready");
  for (let i = 0, warm = Number(c || 0); i <= warm; i++) ch.borrowSync()!.release();
  const first = clock();
  for (let i = 1; i < count; i++) ch.borrowSync()!.release();
  const last = clock();
  console.log(JSON.stringify({ ms: last - first, first, last, got: count }));
  ch.close();
} else if (mode === "echo") {
  const rx = Channel.open(a);
  const tx = Channel.open(b);
  console.log("ready");
  for (let msg; (msg = rx.borrowSync()) !== null;) {
    const n = msg.bytes.length;
    const loan = tx.loanSync(n);
    if (n > 0) {
      loan.bytes[0] = msg.bytes[0]!;
      loan.bytes[n - 1] = msg.bytes[n - 1]!;
    }
    msg.release();
    loan.send();
  }
  rx.close();
  tx.close();
} else if (mode === "echocopy") {
  const rx = Channel.open(a);
  const tx = Channel.open(b);
  const buf = new Uint8Array(Number(c));
  console.log("ready");
  for (let n; (n = rx.receiveIntoSync(buf)) !== null;) tx.sendSync(buf.subarray(0, n));
  rx.close();
  tx.close();
} else if (mode === "sub") {
  const sub = Topic.subscribe(a);
  const count = Number(b);
  const buf = new Uint8Array(Number(c || 64));
  console.log("ready");
  for (let i = 0, warm = Number(d); i <= warm; i++) sub.receiveIntoSync(buf);
  const first = clock();
  let got = 1;
  for (; got < count; got++) if (sub.receiveIntoSync(buf) === null) break;
  const last = clock();
  console.log(JSON.stringify({ ms: last - first, first, last, got }));
  sub.close();
} else {
  throw new Error(`Unknown mode ${mode}`);
}
