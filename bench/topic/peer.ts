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

/**
 * Receives `warm` messages untimed, then `count` timed, through `receive` (false: the channel or
 * topic ended), and prints the figures. The loop is a function called for every thousand
 * messages, not one loop at the top level: JavaScriptCore compiled such a loop again and again (by
 * OSR entry, 5 times in 1.5 million messages), taking CPU from every process.
 */
function timeReceives(receive: () => boolean, count: number, warm: number): void {
  const some = (n: number): number => {
    for (let i = 0; i < n; i++) if (!receive()) return i;
    return n;
  };
  for (let left = warm + 1; left > 0; left -= 1000) some(Math.min(1000, left));
  const first = clock();
  let got = 1;
  while (got < count) {
    const n = Math.min(1000, count - got);
    const done = some(n);
    got += done;
    if (done < n) break;
  }
  const last = clock();
  console.log(JSON.stringify({ ms: last - first, first, last, got }));
}

if (mode === "recv") {
  const ch = Channel.open(a);
  const buf = new Uint8Array(Number(c));
  console.log("ready");
  timeReceives(() => ch.receiveIntoSync(buf) !== null, Number(b), Number(d));
  ch.close();
} else if (mode === "borrow") {
  const ch = Channel.open(a);
  console.log("ready");
  timeReceives(
    () => {
      const msg = ch.borrowSync();
      msg?.release();
      return msg !== null;
    },
    Number(b),
    Number(c || 0),
  );
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
  const buf = new Uint8Array(Number(c || 64));
  console.log("ready");
  timeReceives(() => sub.receiveIntoSync(buf) !== null, Number(b), Number(d));
  sub.close();
} else {
  throw new Error(`Unknown mode ${mode}`);
}
