// Channel: the ring in one process, then Deno and Bun processes sending and receiving at once.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  Channel,
  ChannelCorruptError,
  ChannelEndedError,
  NotFoundError,
  SharedMemory,
  TimeoutError,
} from "../mod.ts";
import { test } from "./_harness.ts";
import { checkReusedViews } from "./_reused_views.ts";
import { selfId } from "../_sync/owner.ts";
import { BOTH, runOk, start, stop, tsCommand, uniqueName } from "./_process.ts";
import { expectedMessage, MAX_SENDERS, parse, patterned as bytes } from "./children/channel_message.ts";

const PEER = "tests/children/channel_peer.ts";
/** This runtime, then the other. */
const [RT_A, RT_B] = [BOTH[0]!, BOTH[1]!];

test("send and receive in order; strings, JSON, empty messages, into a buffer", () => {
  using ch = Channel.create({ capacity: 4096, name: uniqueName("chbasic") });
  using rx = Channel.open(ch.name);
  assert.equal(ch.capacity, 4096);
  assert.equal(rx.capacity, 4096);
  assert.equal(rx.tryReceive(), null);
  assert.equal(rx.tryReceiveInto(new Uint8Array(8)), null);
  ch.sendSync(bytes(3));
  ch.sendSync(new Uint8Array(0));
  ch.sendStringSync("héllo ✓");
  ch.sendJSONSync({ a: [1, 2], b: null });
  ch.sendSync(bytes(100));
  assert.deepEqual(rx.receiveSync(), bytes(3));
  assert.deepEqual(rx.receiveSync(), new Uint8Array(0));
  assert.equal(rx.receiveStringSync(), "héllo ✓");
  assert.deepEqual(rx.receiveJSONSync(), { a: [1, 2], b: null });
  const buf = new Uint8Array(64);
  assert.throws(() => rx.receiveIntoSync(buf), RangeError); // 100 bytes do not fit: the message stays
  const big = new Uint8Array(200);
  assert.equal(rx.receiveIntoSync(big), 100);
  assert.deepEqual(big.subarray(0, 100), bytes(100));
  assert.equal(rx.tryReceive(), null);
  assert.equal(ch.ended, false);
  assert.equal(ch.done, false);
});

test("receiveInto copies every length exactly, into aligned, unaligned and alternating buffers", () => {
  using ch = Channel.create({ capacity: 1 << 16 });
  const aligned = new Uint8Array(400);
  const unaligned = new Uint8Array(new ArrayBuffer(401), 1);
  for (let len = 0; len <= 300; len++) {
    const out = len % 2 ? aligned : unaligned;
    out.fill(0xee);
    ch.sendSync(bytes(len));
    assert.equal(ch.receiveIntoSync(out), len);
    assert.deepEqual(out.subarray(0, len), bytes(len), `length ${len}`);
    assert.equal(out[len], 0xee, `byte after a ${len}-byte message`);
  }
});

test("one view sent again and again, refilled, resized or unaligned, and one buffer received into again: every message exact", () => {
  // The fast paths keep an Int32 view of the last message sent and of the last buffer received into.
  using ch = Channel.create({ capacity: 1024 });
  checkReusedViews({
    send: (m) => ch.sendSync(m),
    receiveInto: (b) => ch.receiveIntoSync(b),
    tryReceiveInto: (b) => ch.tryReceiveInto(b),
  });
});

test("random sizes across many laps of the ring arrive whole and in order", () => {
  using ch = Channel.create({ capacity: 1024 });
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const queue: Uint8Array[] = [];
  let sent = 0, received = 0;
  while (received < 20_000) {
    if (rand() < 0.55 && sent < 20_000) {
      const m = bytes(Math.floor(rand() * rand() * 1025), sent);
      if (ch.trySend(m)) {
        queue.push(m);
        sent++;
      } else assert.ok(queue.length > 0, "full with nothing queued");
    } else {
      const m = ch.tryReceive();
      if (m === null) assert.equal(queue.length, 0, "empty with messages queued");
      else {
        assert.deepEqual(m, queue.shift());
        received++;
      }
    }
  }
});

test("trySendMany, sendMany, receiveMany: batches across many laps arrive whole and in order", () => {
  using ch = Channel.create({ capacity: 2048 });
  using rx = Channel.open(ch.name);
  let seed = 777;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const buffer = new Uint8Array(3000);
  const lengths = new Uint32Array(7);
  const total = 10_000;
  const made: Uint8Array[] = Array.from(
    { length: total },
    (_, i) => bytes(Math.floor(rand() * rand() * 900), i),
  );
  let next = 0;
  let expected = 0;
  let partial = 0;
  while (expected < total) {
    if (next < total && rand() < 0.5) {
      const batch = made.slice(next, next + 1 + Math.floor(rand() * 8));
      const sent = ch.trySendMany(batch);
      if (sent > 0 && sent < batch.length) partial++;
      next += sent;
    } else {
      const n = rx.tryReceiveMany(buffer, lengths);
      if (n === null) assert.equal(next, expected, "nothing received with messages queued");
      let off = 0;
      for (let i = 0; i < (n ?? 0); i++) {
        assert.deepEqual(buffer.subarray(off, off + lengths[i]!), made[expected], `message ${expected}`);
        off += lengths[i]!;
        expected++;
      }
    }
  }
  assert.ok(partial > 0, "some batches went in part");
  // The blocking forms.
  ch.sendManySync(made.slice(0, 3));
  assert.equal(rx.receiveManySync(buffer, lengths), 3);
  ch.end();
  assert.equal(rx.receiveManySync(buffer, lengths), null);
  assert.throws(() => rx.receiveManySync(buffer, new Uint32Array(0)), RangeError);
  assert.throws(() => rx.receiveManySync(buffer, [1] as never), TypeError);
});

test("receiveMany: a message longer than the buffer is a RangeError and stays", () => {
  using ch = Channel.create({ capacity: 4096 });
  ch.sendManySync([bytes(10), bytes(300), bytes(5)]);
  const lengths = new Uint32Array(8);
  assert.equal(ch.receiveManySync(new Uint8Array(100), lengths), 1); // stops before the one that does not fit
  assert.throws(() => ch.receiveManySync(new Uint8Array(100), lengths), RangeError);
  const big = new Uint8Array(400);
  assert.equal(ch.receiveManySync(big, lengths), 2);
  assert.deepEqual(big.subarray(0, 300), bytes(300));
  assert.deepEqual(big.subarray(300, 305), bytes(5));
  assert.throws(() => ch.sendManySync([bytes(1), bytes(5000)]), RangeError);
  assert.throws(() => ch.trySendMany([bytes(1), "x" as never]), TypeError);
  assert.equal(ch.tryReceiveMany(big, lengths), null, "nothing of a refused batch was sent");
});

test("backpressure: trySend refuses when full, a message the size of the ring fits, a larger one is a RangeError", () => {
  using ch = Channel.create({ capacity: 1024 });
  let n = 0;
  while (ch.trySend(bytes(100, n))) n++;
  assert.equal(n, 8); // 100 bytes take two 64-byte cells; 1024 bytes are 16 cells
  assert.throws(() => ch.sendSync(bytes(1), { timeout: 20 }), TimeoutError);
  assert.deepEqual(ch.receiveSync(), bytes(100, 0));
  assert.equal(ch.trySend(bytes(100, 99)), true);
  assert.equal(ch.trySend(new Uint8Array(0)), false);
  while (ch.tryReceive() !== null);
  assert.equal(ch.trySend(bytes(1024)), true);
  assert.deepEqual(ch.receiveSync(), bytes(1024));
  assert.throws(() => ch.trySend(new Uint8Array(1025)), RangeError);
  assert.throws(() => ch.sendSync("text" as never), TypeError);
  assert.throws(() => ch.receiveSync({ timeout: -1 }), RangeError);
  assert.throws(() => Channel.create({ capacity: 0 }), RangeError);
  assert.throws(() => Channel.create({} as never), TypeError);
  using tiny = Channel.create({ capacity: 1 });
  assert.equal(tiny.capacity, 1024, "rounded up to 1 KiB");
});

test("timeouts: receive and receiveAsync on an empty channel give TimeoutError", async () => {
  using ch = Channel.create({ capacity: 1024 });
  assert.throws(() => ch.receiveSync({ timeout: 30 }), (e: Error) => e instanceof TimeoutError);
  await assert.rejects(ch.receive({ timeout: 30 }), TimeoutError);
  assert.throws(() => ch.receiveSync({ timeout: 0 }), TimeoutError);
});

test("end(): sending refused, queued messages still received, then null, and for await ends", async () => {
  using ch = Channel.create({ capacity: 4096 });
  using rx = Channel.open(ch.name);
  ch.sendStringSync("a");
  ch.sendStringSync("b");
  ch.sendStringSync("c");
  ch.end();
  ch.end(); // twice is fine
  assert.equal(rx.ended, true);
  assert.equal(rx.done, false);
  assert.throws(() => ch.sendSync(bytes(1)), ChannelEndedError);
  assert.throws(() => ch.trySend(bytes(1)), ChannelEndedError);
  await assert.rejects(ch.send(bytes(1)), ChannelEndedError);
  assert.equal(rx.receiveStringSync(), "a");
  const rest: string[] = [];
  for await (const m of rx) rest.push(new TextDecoder().decode(m));
  assert.deepEqual(rest, ["b", "c"]);
  assert.equal(rx.done, true);
  assert.equal(rx.receiveSync(), null);
  assert.equal(await rx.receive(), null);
  assert.equal(rx.receiveIntoSync(new Uint8Array(8)), null);
  assert.equal(rx.tryReceive(), null);
});

test("a blocked async receiver is woken by a message, then by end(), without blocking the event loop", async () => {
  using ch = Channel.create({ capacity: 4096 });
  using rx = Channel.open(ch.name);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  try {
    const first = rx.receive({ timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 100));
    ch.sendStringSync("wake");
    assert.equal(new TextDecoder().decode((await first)!), "wake");
    assert.ok(ticks >= 5, `the event loop ran ${ticks} timer ticks while waiting`);
    const second = rx.receive({ timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 50));
    ch.end();
    assert.equal(await second, null);
  } finally {
    clearInterval(timer);
  }
});

test("a blocked async sender is woken when a receiver makes room", async () => {
  using ch = Channel.create({ capacity: 1024 });
  while (ch.trySend(bytes(64)));
  const pending = ch.send(bytes(64, 1), { timeout: 10_000 });
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(ch.tryReceive() !== null);
  await pending;
  let last: Uint8Array | null = null;
  for (let m; (m = ch.tryReceive()) !== null;) last = m;
  assert.deepEqual(last, bytes(64, 1));
});

test("close(): the handle refuses use, a pending async receive rejects, the channel lives on", async () => {
  using ch = Channel.create({ capacity: 1024 });
  const rx = Channel.open(ch.name);
  const pending = rx.receive();
  await new Promise((r) => setTimeout(r, 20));
  rx.close();
  rx.close();
  await assert.rejects(pending, TypeError);
  assert.equal(rx.closed, true);
  assert.throws(() => rx.tryReceive(), TypeError);
  assert.throws(() => rx.sendSync(bytes(1)), TypeError);
  await assert.rejects(rx.send(bytes(1)), TypeError);
  assert.throws(() => rx.ended, TypeError);
  ch.sendStringSync("still here");
  using again = Channel.open(ch.name);
  assert.equal(again.receiveStringSync(), "still here");
});

test("a segment that is not a channel is a TypeError", () => {
  using shm = SharedMemory.create({ name: uniqueName("notch"), size: 4096 });
  assert.throws(() => Channel.open(shm.name), /not a channel \(no channel header\)/);
  using small = SharedMemory.create({ name: uniqueName("notch"), size: 100 });
  assert.throws(() => Channel.open(small.name), TypeError);
});

test(
  "a receiver blocked in receive() sleeps (no busy-wait) and wakes for a message from another runtime",
  async () => {
    using ch = Channel.create({ capacity: 4096, name: uniqueName("chblock") });
    const child = start(tsCommand(RT_B, PEER, ["block", ch.name]));
    try {
      await child.waitFor(/ready/);
      await new Promise((r) => setTimeout(r, 300)); // past the short spin
      const cpu = () => {
        const f = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
        return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (1/100 s)
      };
      const before = cpu();
      await new Promise((r) => setTimeout(r, 1000));
      const used = cpu() - before;
      assert.ok(used < 30, `the blocked receiver used ${used}/100 s of CPU in 1 s`);
      ch.sendSync(bytes(77));
      const out = await child.done;
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /"got":77/);
    } finally {
      stop(child);
    }
  },
  { skip: process.platform !== "linux" ? "reads /proc" : false },
);

/** A marks segment: one byte per (sender, seq), incremented by receivers. */
function marksFor(count: number): SharedMemory {
  return SharedMemory.create({ name: uniqueName("chmarks"), size: MAX_SENDERS * count });
}

test(
  "Deno and Bun processes, 2 senders and 2 receivers, 100,000 messages of random sizes: no loss, no duplicate, in order per sender",
  async () => {
    const perSender = 50_000;
    using ch = Channel.create({ capacity: 64 * 1024, name: uniqueName("chmp") });
    using marks = marksFor(perSender);
    const receivers = BOTH.map((rt) =>
      start(tsCommand(rt, PEER, ["recv", ch.name, marks.name]), { timeout: 60_000 })
    );
    const senders = BOTH.map((rt, id) =>
      start(tsCommand(rt, PEER, ["send", ch.name, String(id), String(perSender), "600"]), { timeout: 60_000 })
    );
    try {
      for (const s of senders) {
        const out = await s.done;
        assert.equal(out.code, 0, out.stderr);
      }
      ch.end();
      let total = 0;
      for (const r of receivers) {
        const out = await r.done;
        assert.equal(out.code, 0, out.stderr);
        total += (JSON.parse(out.stdout) as { count: number }).count;
      }
      assert.equal(total, 2 * perSender);
      for (let id = 0; id < 2; id++) {
        for (let seq = 0; seq < perSender; seq++) {
          assert.equal(marks.buf[id * perSender + seq], 1, `message ${id}/${seq}`);
        }
      }
      marks.buf.subarray(2 * perSender).forEach((b) => assert.equal(b, 0));
    } finally {
      for (const c of [...receivers, ...senders]) stop(c);
    }
  },
  { timeout: 90_000 },
);

test(
  "a receiver killed with SIGKILL in the middle of a message leaves the ring usable for the others",
  async () => {
    const count = 2000;
    const size = 256 * 1024; // large messages: the kill lands in the middle of a copy most of the time
    using ch = Channel.create({ capacity: 1 << 20, name: uniqueName("chkill") });
    using marks = SharedMemory.create({ name: uniqueName("chmarks"), size: count });
    const [rtA, rtB] = [RT_A, RT_B];
    const victim = start(tsCommand(rtA, PEER, ["take", ch.name, marks.name]), { timeout: 60_000 });
    const sender = start(tsCommand(rtB, PEER, ["flood", ch.name, String(count), String(size)]), {
      timeout: 60_000,
    });
    let survivor: ReturnType<typeof start> | undefined;
    const sum = () => marks.buf.reduce((a, b) => a + b, 0);
    try {
      while (sum() < 50) await new Promise((r) => setTimeout(r, 1));
      victim.kill("SIGKILL");
      const dead = await victim.done;
      assert.equal(dead.signal, "SIGKILL");
      const taken = sum();
      survivor = start(tsCommand(rtB, PEER, ["take", ch.name, marks.name]), { timeout: 60_000 });
      const sent = await sender.done;
      assert.equal(sent.code, 0, sent.stderr);
      ch.end();
      const out = await survivor.done;
      assert.equal(out.code, 0, out.stderr);
      const got = (JSON.parse(out.stdout) as { count: number }).count;
      const seen = Array.from(marks.buf);
      assert.ok(seen.every((m) => m <= 1), "a message was received twice");
      // The victim took 0…taken-1 in order. At most one more is lost: one it had claimed and not yet
      // marked when it died. The survivor got everything after that.
      const missing = seen.flatMap((m, i) => (m === 0 ? [i] : []));
      assert.ok(missing.length <= 1, `messages ${missing.slice(0, 10)} were lost`);
      if (missing.length === 1) assert.equal(missing[0], taken);
      assert.equal(taken + got + missing.length, count);
    } finally {
      stop(victim);
      stop(sender);
      stop(survivor);
    }
  },
  { timeout: 90_000 },
);

test("test messages are checkable (the checker itself rejects damage)", () => {
  const m = expectedMessage(3, 17, 500);
  assert.deepEqual(parse(m), { sender: 3, seq: 17, max: 500 });
  assert.deepEqual(expectedMessage(3, 17, 500), m);
  assert.notDeepEqual(expectedMessage(3, 18, 500), m);
});

test("end() from a process of the other runtime wakes an async receiver here", async () => {
  using ch = Channel.create({ capacity: 1024, name: uniqueName("chend") });
  const waiting = ch.receive({ timeout: 20_000 });
  await runOk(tsCommand(RT_B, PEER, ["end", ch.name]));
  assert.equal(await waiting, null);
  assert.equal(ch.ended, true);
});

test("every wait checks its options on entry, even when it would not wait; bad input writes nothing", async () => {
  using ch = Channel.create({ capacity: 4096 });
  const m = bytes(10);
  for (const timeout of [-1, NaN]) {
    await assert.rejects(ch.send(m, { timeout }), RangeError);
    assert.throws(() => ch.sendSync(m, { timeout }), RangeError);
    await assert.rejects(ch.sendMany([m], { timeout }), RangeError);
    assert.throws(() => ch.sendManySync([m], { timeout }), RangeError);
  }
  await assert.rejects(ch.send(m, { timeout: "x" as never }), TypeError);
  await assert.rejects(ch.send(m, 5 as never), TypeError);
  await assert.rejects(ch.send(m, { signal: {} as never }), TypeError);
  assert.throws(() => ch.sendSync(m, { signal: "s" as never }), TypeError);
  const aborted = AbortSignal.abort(new Error("stop"));
  await assert.rejects(ch.send(m, { signal: aborted }), /stop/);
  assert.throws(() => ch.sendSync(m, { signal: aborted }), /stop/);
  await assert.rejects(ch.sendString(5 as never), TypeError);
  assert.throws(() => ch.trySendJSON(undefined), TypeError);
  await assert.rejects(ch.sendJSON(() => 1), TypeError);
  assert.throws(() => ch.trySend(null as never), TypeError);
  assert.throws(() => ch.sendManySync([m, new Uint8Array(5000)]), RangeError);
  assert.throws(() => ch.trySendMany("ab" as never), TypeError);
  assert.equal(ch.tryReceive(), null, "nothing was written by the refused calls");
  ch.sendSync(m);
  await assert.rejects(ch.receive({ timeout: NaN }), RangeError);
  assert.throws(() => ch.receiveSync({ timeout: -5 }), RangeError);
  assert.throws(() => ch.receiveIntoSync(new Uint8Array(64), { timeout: "1" as never }), TypeError);
  assert.throws(
    () => ch.receiveManySync(new Uint8Array(64), new Uint32Array(4), { signal: 1 as never }),
    TypeError,
  );
  await assert.rejects(ch.receiveInto([] as never), TypeError);
  assert.throws(() => ch.tryReceiveInto(new ArrayBuffer(8) as never), TypeError);
  assert.throws(() => ch.receiveSync({ signal: aborted }), /stop/);
  assert.deepEqual(ch.tryReceive(), m, "the message stayed through the refused receives");
});

test("detached views, unserializable values and bad JSON get messages that say what was attempted", async () => {
  const engine =
    /Cannot perform|Underlying ArrayBuffer|circular structure|cyclic|Unexpected token|JSON Parse/;
  const refused = (fn: () => unknown, type: ErrorConstructor, message: RegExp) =>
    assert.throws(fn, (e: Error) => {
      assert.ok(e instanceof type, String(e));
      assert.match(e.message, message);
      assert.doesNotMatch(e.message, engine);
      return true;
    });
  const gone = () => {
    const b = new Uint8Array(16);
    b.buffer.transfer();
    return b;
  };
  using ch = Channel.create({ capacity: 4096 });
  refused(() => ch.trySend(gone()), TypeError, /^Cannot send on channel ".+": the message is detached/);
  refused(() => ch.trySendMany([new Uint8Array(1), gone()]), TypeError, /message 1 is detached/);
  await assert.rejects(ch.send(gone()), /the message is detached/);
  const cycle: { self?: unknown } = {};
  cycle.self = cycle;
  refused(
    () => ch.trySendJSON(cycle),
    TypeError,
    /^Cannot send JSON on a channel: .*\(it contains a cycle\)$/,
  );
  refused(() => ch.trySendJSON({ n: 1n }), TypeError, /a bigint has no JSON form/);
  assert.equal(ch.tryReceive(), null, "nothing was written by the refused calls");
  ch.trySend(new Uint8Array([0xff, 0x7b]));
  refused(
    () => ch.tryReceiveJSON(),
    SyntaxError,
    /^Cannot receive JSON from a channel: it is not valid JSON/,
  );
  ch.trySend(new Uint8Array([1, 2]));
  refused(() => ch.tryReceiveInto(gone()), TypeError, /^Cannot receive from channel: the buffer is detached/);
  const lengths = new Uint32Array(2);
  lengths.buffer.transfer();
  refused(() => ch.tryReceiveMany(new Uint8Array(64), lengths), TypeError, /lengths is detached/);
  assert.deepEqual(
    ch.tryReceive(),
    new Uint8Array([1, 2]),
    "the message stayed through the refused receives",
  );
  // A sent loan's view is detached too: sending it again is refused the same way.
  const loan = ch.loanSync(8);
  const stale = loan.bytes;
  loan.send();
  refused(() => ch.trySend(stale), TypeError, /the message is detached/);
});

test("an aborted signal ends a waiting send or receive with its reason", async () => {
  using ch = Channel.create({ capacity: 1024 });
  const controller = new AbortController();
  const waiting = ch.receive({ signal: controller.signal });
  setTimeout(() => controller.abort(new Error("no more")), 30);
  await assert.rejects(waiting, /no more/);
  while (ch.trySend(bytes(64)));
  const second = new AbortController();
  const sending = ch.send(bytes(64), { signal: second.signal, timeout: 10_000 });
  setTimeout(() => second.abort(), 30);
  await assert.rejects(sending, (e: Error) => e.name === "AbortError");
});

test("capacity: checked before any segment is made; the largest is 1 GiB", () => {
  const name = uniqueName("chcap");
  for (const capacity of [2 ** 30 + 1, 2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
    assert.throws(() => Channel.create({ capacity, name }), RangeError, `capacity ${capacity}`);
  }
  assert.throws(() => Channel.create({ capacity: Infinity, name }), RangeError);
  assert.throws(() => Channel.create({ capacity: 1.5, name }), RangeError);
  assert.throws(() => Channel.create({ capacity: -1, name }), RangeError);
  assert.throws(() => Channel.create({ capacity: "4096" as never, name }), TypeError);
  assert.throws(() => Channel.create(null as never), TypeError);
  assert.throws(() => SharedMemory.open(name), NotFoundError, "no segment was left behind");
});

test(
  "dispose never removes a channel someone re-created under the same name",
  () => {
    const name = uniqueName("chredo");
    const first = Channel.create({ capacity: 1024, name });
    first.unlink();
    using second = Channel.create({ capacity: 1024, name });
    second.sendStringSync("mine");
    first[Symbol.dispose]();
    using again = Channel.open(name);
    assert.equal(again.receiveStringSync({ timeout: 1000 }), "mine");
  },
);

// ---- Dead senders and impossible states ----------------------------------------------------------------
// The layout (see _channel_ring.ts): tail at byte 64, head at 128, 256 sender slots of 64 bytes [owner,
// position, cells, …] at 384, 32 borrow slots, then at 18816 per 64-byte cell [stamp, length], then per cell [owner, position].

/** The owner id of a thread that is gone: the pid of a process that has exited. */
async function deadOwner(): Promise<number> {
  const child = start(["true"]);
  await child.done;
  return child.pid;
}

/** The record of a cell: [stamp, length] in one array, [owner, position] in the next. */
interface Record {
  set(values: [stamp: number, length: number, owner: number, position: number]): void;
  clear(): void;
  setLength(length: number): void;
}

function record(shm: SharedMemory, cells: number, cell: number): Record {
  const meta = shm.view(Int32Array, 18816 + cell * 8, 2);
  const owners = shm.view(Int32Array, 18816 + cells * 8 + cell * 8, 2);
  return {
    set: ([stamp, length, owner, position]) => {
      meta.set([stamp, length]);
      owners.set([owner, position]);
    },
    clear: () => {
      meta.fill(0);
      owners.fill(0);
    },
    setLength: (length) => (meta[1] = length),
  };
}

function cursors(ch: Channel): {
  tail: Int32Array;
  head: Int32Array;
  slot(i: number): Int32Array;
  record(cell: number): Record;
} {
  const shm = ch.shm;
  return {
    tail: shm.view(Int32Array, 64, 1),
    head: shm.view(Int32Array, 128, 1),
    slot: (i) => shm.view(Int32Array, 384 + i * 64, 4),
    record: (cell) => record(shm, ch.capacity / 64, cell),
  };
}

test("a message reserved by a sender that died is dropped, whether or not it wrote its record", async () => {
  using ch = Channel.create({ capacity: 1024 });
  const c = cursors(ch);
  const [dead, dead2] = [await deadOwner(), await deadOwner()];
  ch.sendStringSync("first");
  assert.equal(ch.receiveStringSync(), "first");
  // The dead sender reserved 100 bytes at position 1 (two cells) and never committed them.
  c.record(1).set([0, 100, dead, 1]);
  Atomics.store(c.tail, 0, 3);
  ch.sendStringSync("after");
  assert.equal(ch.tryReceive(), null, "the uncommitted message blocks the head");
  assert.equal(ch.receiveStringSync({ timeout: 10_000 }), "after", "dropped, then the next one");
  // The same, awaited, for a batch of two uncommitted messages.
  c.record(4).set([0, 10, dead, 4]);
  c.record(5).set([0, 70, dead, 5]);
  Atomics.store(c.tail, 0, 7);
  await ch.sendString("later");
  assert.equal(await ch.receiveString({ timeout: 10_000 }), "later");
  // Killed between its compare-and-swap of the tail and its record: only its slot names it.
  c.slot(200).set([dead, 8, 3, 0]);
  Atomics.store(c.tail, 0, 11);
  ch.sendStringSync("next");
  assert.equal(ch.receiveStringSync({ timeout: 10_000 }), "next");
  // Two dead threads announced the same position: the one whose reservation ends where the next begins won.
  c.slot(201).set([dead, 12, 2, 0]);
  c.slot(202).set([dead2, 12, 3, 0]);
  Atomics.store(c.tail, 0, 14);
  ch.sendStringSync("last");
  assert.equal(ch.receiveStringSync({ timeout: 10_000 }), "last");
  assert.equal(ch.tryReceive(), null);
});

test("a message reserved by a live sender is never dropped, however long it takes", () => {
  using ch = Channel.create({ capacity: 1024 });
  const c = cursors(ch);
  c.record(0).set([0, 10, selfId(), 0]);
  Atomics.store(c.tail, 0, 1);
  assert.throws(() => ch.receiveSync({ timeout: 700 }), TimeoutError);
  assert.equal(Atomics.load(c.head, 0), 0);
  // Nor one whose sender is between its compare-and-swap and its record.
  c.record(0).clear();
  c.slot(100).set([selfId(), 0, 1, 0]);
  assert.throws(() => ch.receiveSync({ timeout: 700 }), TimeoutError);
  assert.equal(Atomics.load(c.head, 0), 0);
});

test("a receiver that goes to sleep while a message is being written still gets it soon (no lost wake-up)", async () => {
  // A sender of one message looks for sleepers right after it reserves, and commits without a
  // locked instruction: a receiver that says it may sleep after that must not sleep for long.
  // Played here by hand: reserve, let the receiver fall asleep, then commit without a wake.
  using ch = Channel.create({ capacity: 1024 });
  const c = cursors(ch);
  const data = ch.shm.view(Uint8Array, 18816 + 2 * (ch.capacity / 64) * 8, ch.capacity);
  for (let round = 0; round < 3; round++) {
    const pos = round;
    c.record(pos).set([0, 2, selfId(), pos]);
    Atomics.store(c.tail, 0, pos + 1);
    const started = performance.now();
    const got = ch.receive({ timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 20));
    data.set([round, 7], pos * 64);
    c.record(pos).set([1, 2, selfId(), pos]); // the commit: stamp 1 (lap 0), no wake
    assert.deepEqual(await got, new Uint8Array([round, 7]));
    // A lost wake-up would last until the next dead-sender probe (PROBE_MS, 250 ms) or the timeout.
    const ms = performance.now() - started;
    assert.ok(ms < 200, `received ${ms.toFixed(0)} ms after the receive began`);
  }
});

test("impossible cursors are a clear error: no send returns true for a message nobody can receive", async () => {
  using ch = Channel.create({ capacity: 1024 });
  const corrupt = (error: unknown) => {
    assert.ok(error instanceof ChannelCorruptError);
    assert.equal(error.name, "ChannelCorruptError");
    assert.equal(error.segment, ch.name);
    assert.match(
      error.message,
      /^Cannot (send on|receive from) channel ".+": it is corrupted \((its head|a message of)/,
    );
    return true;
  };
  const c = cursors(ch);
  Atomics.store(c.head, 0, 5); // the head ahead of the tail
  using tx = Channel.open(ch.name);
  assert.throws(() => tx.trySend(bytes(1)), corrupt);
  assert.throws(() => tx.trySendMany([bytes(1)]), corrupt);
  assert.throws(() => ch.receiveSync({ timeout: 5000 }), corrupt);
  await assert.rejects(ch.receive({ timeout: 5000 }), corrupt);
  Atomics.store(c.head, 0, -100); // the tail more than a ring ahead of the head
  using tx2 = Channel.open(ch.name);
  assert.throws(() => tx2.sendSync(bytes(1), { timeout: 1000 }), corrupt);
  Atomics.store(c.head, 0, 0);
  // A committed message whose length is impossible.
  ch.sendSync(bytes(3));
  c.record(0).setLength(5000);
  assert.throws(() => ch.tryReceive(), corrupt);
});

test(
  "senders killed with SIGKILL at random points: the others go on, what was half written is never delivered",
  async () => {
    const trials = 10;
    const per = 200_000;
    for (let trial = 0; trial < trials; trial++) {
      const big = trial % 2 === 0; // 3 MiB messages that wrap in a 4 MiB ring, or small ones in batches
      const [rtVictim, rtOther] = trial % 4 < 2 ? [RT_A, RT_B] : [RT_B, RT_A];
      using ch = Channel.create({ capacity: 4 << 20, name: uniqueName("chvictim") });
      using marks = SharedMemory.create({ name: uniqueName("chmarks"), size: MAX_SENDERS * per });
      const opts = { timeout: 60_000 };
      const receivers = [
        start(tsCommand(rtVictim, PEER, ["recv", ch.name, marks.name]), opts),
        start(tsCommand(rtOther, PEER, ["recv", ch.name, marks.name, "batch"]), opts),
      ];
      const victimArgs = ["victim", ch.name, "1", big ? String(3 << 20) : "300", ...(big ? [] : ["batch"])];
      const victim = start(tsCommand(rtVictim, PEER, victimArgs), opts);
      const before = start(tsCommand(rtOther, PEER, ["send", ch.name, "0", "500", "2000"]), opts);
      let after: ReturnType<typeof start> | undefined;
      try {
        await victim.waitFor(/ready/);
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
        victim.kill("SIGKILL");
        assert.equal((await victim.done).signal, "SIGKILL");
        after = start(tsCommand(rtVictim, PEER, ["send", ch.name, "2", "500", "2000", "batch"]), opts);
        for (const s of [before, after]) {
          const out = await s.done;
          assert.equal(out.code, 0, out.stderr);
        }
        ch.end();
        for (const r of receivers) {
          const out = await r.done;
          assert.equal(out.code, 0, `trial ${trial}: ${out.stderr}`);
        }
        for (const id of [0, 2]) {
          for (let seq = 0; seq < 500; seq++) {
            assert.equal(marks.buf[id * per + seq], 1, `trial ${trial}: message ${id}/${seq}`);
          }
        }
        // The victim's messages that arrived are a prefix of what it sent, each once (the receivers
        // checked every byte): the one it was writing, and any after it, were dropped.
        const got = marks.buf.subarray(per, 2 * per);
        const delivered = got.findIndex((m) => m !== 1);
        assert.ok(
          got.subarray(delivered).every((m) => m === 0),
          `trial ${trial}: a gap in the victim's messages`,
        );
      } finally {
        for (const c of [...receivers, victim, before, after]) stop(c);
      }
    }
  },
  { timeout: 300_000 },
);
