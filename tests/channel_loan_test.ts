// Channel loans and borrows: writing and reading messages in place, in one process, then Deno and
// Bun processes lending and borrowing at once, some killed with SIGKILL at random points.
import assert from "node:assert/strict";
import { Channel, ChannelEndedError, SharedMemory, TimeoutError } from "../mod.ts";
import { test } from "./_harness.ts";
import { BOTH, start, stop, tsCommand, uniqueName } from "./_process.ts";
import { expectedMessage, MAX_SENDERS, patterned as bytes } from "./children/channel_message.ts";

const PEER = "tests/children/loan_peer.ts";
const SENDER_PEER = "tests/children/channel_peer.ts";
const [RT_A, RT_B] = [BOTH[0]!, BOTH[1]!];

test("a loan is written in place and sent; disposed unsent it is skipped; its view detaches", () => {
  using ch = Channel.create({ capacity: 4096, name: uniqueName("loan") });
  using rx = Channel.open(ch.name);
  const loan = ch.loanSync(100);
  assert.equal(loan.bytes.length, 100);
  assert.equal(loan.settled, false);
  loan.bytes.set(bytes(100));
  assert.equal(rx.tryReceive(), null); // not sent yet
  const view = loan.bytes;
  loan.send();
  assert.equal(loan.settled, true);
  assert.equal(view.length, 0);
  assert.equal(loan.bytes.length, 0);
  view[0] = 1; // a write through a detached view goes nowhere
  assert.throws(() => loan.send(), TypeError);
  assert.deepEqual(rx.tryReceive(), bytes(100));
  {
    using dropped = ch.tryLoan(10);
    dropped!.bytes.fill(9);
  }
  ch.trySend(bytes(3));
  const empty = ch.tryLoan(0)!;
  assert.equal(empty.bytes.length, 0);
  empty.send();
  assert.deepEqual(rx.tryReceive(), bytes(3)); // the discarded loan was skipped
  assert.deepEqual(rx.tryReceive(), new Uint8Array(0));
  assert.equal(rx.tryReceive(), null);
});

test("short loans and borrows are private copies: a stale view stays empty and never sees a later message", () => {
  using ch = Channel.create({ capacity: 1 << 16 });
  const stale: Uint8Array[] = [];
  for (let i = 0; i < 3000; i++) {
    const n = i % 97;
    const a = ch.loanSync(n);
    const b = i % 5 === 0 ? ch.loanSync(3) : null; // a second loan held at once
    a.bytes.set(bytes(n, i));
    stale.push(a.bytes);
    if (i % 7 === 0) (a.bytes.buffer as ArrayBuffer).transfer(); // its holder detaches it: sent as zeros
    a.send();
    b?.bytes.set(bytes(3, i));
    if (b) stale.push(b.bytes);
    b?.send();
    const msg = ch.borrowSync({ timeout: 1000 })!;
    assert.deepEqual(msg.bytes, i % 7 === 0 ? new Uint8Array(n) : bytes(n, i));
    stale.push(msg.bytes);
    msg.release();
    if (b) {
      const second = ch.tryBorrow()!;
      assert.deepEqual(second.bytes, bytes(3, i));
      second.release();
    }
    for (const view of stale.slice(-3)) {
      assert.equal(view.length, 0);
      view[0] = 1; // goes nowhere
    }
  }
  assert.ok(stale.every((view) => view.length === 0 && view[0] === undefined));
  // A large one is a view into the ring, detached the same way.
  const big = ch.loanSync(10_000);
  const view = big.bytes;
  big.send();
  assert.equal(view.length, 0);
});

test("loans and copies keep their order; a discarded loan is skipped by every kind of receive", async () => {
  using ch = Channel.create({ capacity: 1 << 14 });
  for (let i = 0; i < 300; i++) {
    if (i % 3 === 0) {
      const loan = await ch.loan(i, { timeout: 1000 });
      loan.bytes.set(bytes(i));
      loan.send();
    } else {
      ch.sendSync(bytes(i));
    }
    if (i % 7 === 0) ch.tryLoan(i)![Symbol.dispose]();
    const how = i % 4;
    if (how === 0) assert.deepEqual(ch.tryReceive(), bytes(i));
    else if (how === 1) {
      const buf = new Uint8Array(400);
      assert.equal(ch.tryReceiveInto(buf), i);
      assert.deepEqual(buf.subarray(0, i), bytes(i));
    } else if (how === 2) {
      const buf = new Uint8Array(1000);
      const lengths = new Uint32Array(4);
      assert.equal(ch.tryReceiveMany(buf, lengths), 1);
      assert.deepEqual(buf.subarray(0, i), bytes(i));
    } else {
      using msg = ch.tryBorrow();
      assert.deepEqual(msg?.bytes, bytes(i));
    }
  }
  assert.equal(ch.tryReceive(), null);
});

test("a loan never wraps the ring's end: the cells before the end are skipped", () => {
  using ch = Channel.create({ capacity: 1024 }); // 16 cells
  for (let round = 0; round < 40; round++) {
    const lead = round % 16;
    for (let i = 0; i < lead; i++) ch.trySend(bytes(1, i));
    for (let i = 0; i < lead; i++) assert.deepEqual(ch.tryReceive(), bytes(1, i));
    const n = 64 * (1 + (round % 16)) - (round % 5);
    const loan = ch.tryLoan(n);
    assert.ok(loan !== null, `round ${round}: no loan of ${n} bytes after ${lead} cells`);
    loan.bytes.set(bytes(n, round));
    loan.send();
    assert.deepEqual(ch.tryReceive(), bytes(n, round));
  }
  // The whole ring, from any position.
  ch.trySend(bytes(5));
  ch.tryReceive();
  const whole = ch.tryLoan(1024)!; // pads to the end, passes over the padding, starts at the ring's start
  assert.equal(whole.bytes.length, 1024);
  whole.bytes.set(bytes(1024));
  whole.send();
  assert.deepEqual(ch.tryReceive(), bytes(1024));
});

test("a borrow reads in place and holds its room until released; its view detaches", () => {
  using ch = Channel.create({ capacity: 1024 }); // 16 cells
  using rx = Channel.open(ch.name);
  ch.trySend(bytes(500)); // 8 cells at the ring's start: no wrap
  const msg = rx.tryBorrow()!;
  assert.deepEqual(msg.bytes, bytes(500));
  assert.equal(ch.trySend(bytes(600)), false); // 8 + 10 cells: the borrow still holds 8
  assert.equal(ch.trySend(bytes(400)), true);
  const view = msg.bytes;
  msg.release();
  assert.equal(msg.released, true);
  assert.equal(view.length, 0);
  msg.release(); // twice is fine
  assert.equal(ch.trySend(bytes(450)), true);
  assert.deepEqual(rx.tryReceive(), bytes(400));
  assert.deepEqual(rx.tryReceive(), bytes(450));
  // Other receivers go on past a held borrow.
  ch.trySend(bytes(1));
  ch.trySend(bytes(2));
  const first = rx.tryBorrow()!;
  assert.deepEqual(ch.tryReceive(), bytes(2));
  assert.deepEqual(first.bytes, bytes(1));
  first.release();
});

test("a message that wraps the ring's end is borrowed as a copy", () => {
  using ch = Channel.create({ capacity: 1024 });
  for (let i = 0; i < 10; i++) ch.trySend(bytes(64));
  for (let i = 0; i < 10; i++) ch.tryReceive();
  ch.trySend(bytes(640)); // cells 10 to 19: wraps
  using msg = ch.tryBorrow();
  assert.deepEqual(msg?.bytes, bytes(640));
  assert.equal(ch.trySend(bytes(1000)), true); // a copy holds no room
});

test("closing a handle discards its loans and releases its borrows", () => {
  using ch = Channel.create({ capacity: 4096, name: uniqueName("loanclose") });
  const other = Channel.open(ch.name);
  const loan = other.tryLoan(10)!;
  ch.trySend(bytes(7));
  const msg = other.tryBorrow(); // the loan reserved first, but the copy was committed first: none at the head
  assert.equal(msg, null);
  other.close();
  assert.equal(loan.bytes.length, 0);
  assert.equal(loan.settled, true);
  assert.deepEqual(ch.tryReceive(), bytes(7));
  const again = Channel.open(ch.name);
  ch.trySend(bytes(8));
  const held = again.tryBorrow()!;
  again.close();
  assert.equal(held.bytes.length, 0);
  assert.equal(held.released, true);
  assert.equal(ch.trySend(new Uint8Array(4096 - 64)), true); // its room came back
});

test("loans and borrows check their input and follow the convention", async () => {
  using ch = Channel.create({ capacity: 1024 });
  assert.throws(() => ch.tryLoan("1" as unknown as number), TypeError);
  assert.throws(() => ch.tryLoan(-1), RangeError);
  assert.throws(() => ch.tryLoan(1.5), RangeError);
  assert.throws(() => ch.loanSync(1025), RangeError);
  await assert.rejects(ch.loan(1025), RangeError);
  assert.throws(() => ch.loanSync(1, { timeout: -1 }), RangeError);
  assert.equal(ch.tryBorrow(), null);
  assert.throws(() => ch.borrowSync({ timeout: 20 }), TimeoutError);
  await assert.rejects(ch.borrow({ timeout: 20 }), TimeoutError);
  await assert.rejects(ch.borrow({ signal: AbortSignal.abort(new Error("stop")) }), /stop/);
  const full = ch.tryLoan(1024)!;
  assert.equal(ch.tryLoan(1), null);
  assert.throws(() => ch.loanSync(1, { timeout: 20 }), TimeoutError);
  await assert.rejects(ch.loan(1, { timeout: 20 }), TimeoutError);
  full[Symbol.dispose]();
  const later = ch.loan(64, { timeout: 5000 });
  assert.ok((await later).bytes.length === 64);
  ch.end();
  assert.throws(() => ch.tryLoan(1), ChannelEndedError);
  await assert.rejects(ch.loan(1), ChannelEndedError);
  assert.equal(ch.done, false); // the loan reserved before the end is still pending
});

test("32 borrows at once, then a clear error", () => {
  using ch = Channel.create({ capacity: 1 << 14 });
  for (let i = 0; i < 40; i++) ch.trySend(bytes(1, i));
  const held = [];
  for (let i = 0; i < 32; i++) held.push(ch.tryBorrow()!);
  assert.throws(() => ch.tryBorrow(), /32 messages are already borrowed/);
  for (const m of held) m.release();
  assert.deepEqual(ch.tryBorrow()?.bytes, bytes(1, 32));
});

test("after the end, a receiver holding borrows still sees the channel end", () => {
  using ch = Channel.create({ capacity: 4096 });
  ch.trySend(bytes(1));
  ch.end();
  const msg = ch.borrowSync()!;
  assert.equal(ch.borrowSync(), null);
  assert.equal(ch.receiveSync(), null);
  msg.release();
  assert.equal(ch.done, true);
});

for (const rt of BOTH) {
  test(`a ${rt} process killed holding a borrow: its message goes to the next receiver, whole`, async () => {
    using ch = Channel.create({ capacity: 4096, name: uniqueName("holdb") });
    ch.sendSync(bytes(300));
    ch.sendSync(bytes(5));
    const child = start(tsCommand(rt, PEER, ["holdborrow", ch.name]));
    try {
      assert.match(await child.waitFor(/holding/), /holding 300/);
      assert.deepEqual(ch.receiveSync({ timeout: 5000 }), bytes(5)); // others go on past a held borrow
      assert.equal(ch.tryReceive(), null);
      child.kill("SIGKILL");
      assert.equal((await child.done).signal, "SIGKILL");
      assert.deepEqual(await ch.receive({ timeout: 5000 }), bytes(300)); // within about 250 ms
      assert.equal(ch.tryReceive(), null);
      assert.equal(ch.trySend(new Uint8Array(4096)), true); // its room came back
    } finally {
      stop(child);
    }
  });

  test(`a ${rt} process killed holding a loan: the messages behind it come through, the loan never does`, async () => {
    using ch = Channel.create({ capacity: 4096, name: uniqueName("holdl") });
    const child = start(tsCommand(rt, PEER, ["holdloan", ch.name, "200"]));
    try {
      await child.waitFor(/holding/);
      ch.sendSync(bytes(7));
      assert.equal(ch.tryReceive(), null); // waits behind the loan
      child.kill("SIGKILL");
      assert.equal((await child.done).signal, "SIGKILL");
      assert.deepEqual(ch.receiveSync({ timeout: 5000 }), bytes(7));
      assert.equal(ch.tryReceive(), null);
    } finally {
      stop(child);
    }
  });
}

const PER = 100_000;

function checkAll(marks: SharedMemory, senders: number[], count: number, what: string): void {
  for (const id of senders) {
    for (let seq = 0; seq < count; seq++) {
      assert.ok(marks.buf[id * PER + seq]! >= 1, `${what}: message ${id}/${seq} was lost`);
    }
  }
}

test("Deno and Bun processes lend and borrow at once: every message whole, in order per sender", async () => {
  using ch = Channel.create({ capacity: 1 << 16, name: uniqueName("loanmp") });
  using marks = SharedMemory.create({ name: uniqueName("loanmarks"), size: MAX_SENDERS * PER });
  const opts = { timeout: 120_000 };
  const receivers = [
    start(tsCommand(RT_A, PEER, ["borrow", ch.name, marks.name, "strict"]), opts),
    start(tsCommand(RT_B, PEER, ["borrow", ch.name, marks.name, "strict"]), opts),
  ];
  const senders = [
    start(tsCommand(RT_A, PEER, ["lend", ch.name, "0", "3000", "3000"]), opts),
    start(tsCommand(RT_B, PEER, ["lend", ch.name, "1", "3000", "300"]), opts),
    start(tsCommand(RT_B, SENDER_PEER, ["send", ch.name, "2", "3000", "5000"]), opts),
  ];
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
      total += JSON.parse(out.stdout).count;
    }
    assert.equal(total, 9000);
    checkAll(marks, [0, 1, 2], 3000, "all");
    assert.ok(marks.buf.every((m) => m <= 1), "a message arrived twice");
  } finally {
    for (const c of [...receivers, ...senders]) stop(c);
  }
}, { timeout: 180_000 });

test(
  "lenders and borrowers killed with SIGKILL at random points: no message lost, damaged or wedged",
  async () => {
    const trials = 6;
    for (let trial = 0; trial < trials; trial++) {
      const [rtVictim, rtOther] = trial % 2 === 0 ? [RT_A, RT_B] : [RT_B, RT_A];
      using ch = Channel.create({ capacity: 1 << 15, name: uniqueName("loankill") });
      using marks = SharedMemory.create({ name: uniqueName("loankmarks"), size: MAX_SENDERS * PER });
      const opts = { timeout: 120_000 };
      const victims = [
        start(tsCommand(rtVictim, PEER, ["lendvictim", ch.name, "1", "2000"]), opts),
        start(tsCommand(rtOther, PEER, ["borrowvictim", ch.name, marks.name]), opts),
      ];
      const survivor = start(tsCommand(rtOther, PEER, ["borrow", ch.name, marks.name]), opts);
      const sender = start(tsCommand(rtVictim, PEER, ["lend", ch.name, "0", "2000", "1000"]), opts);
      let after: ReturnType<typeof start> | undefined;
      try {
        for (const v of victims) await v.waitFor(/ready/);
        for (const v of trial % 4 < 2 ? victims : [...victims].reverse()) {
          await new Promise((r) => setTimeout(r, 50 + Math.random() * 300));
          v.kill("SIGKILL");
          assert.equal((await v.done).signal, "SIGKILL");
        }
        after = start(tsCommand(rtOther, PEER, ["lend", ch.name, "2", "2000", "500"]), opts);
        for (const s of [sender, after]) {
          const out = await s.done;
          assert.equal(out.code, 0, `trial ${trial}: ${out.stderr}`);
        }
        ch.end();
        const out = await survivor.done;
        assert.equal(out.code, 0, `trial ${trial}: ${out.stderr}`);
        checkAll(marks, [0, 2], 2000, `trial ${trial}`);
        // The victim lender's messages that arrived are a prefix of what it sent.
        const got = marks.buf.subarray(PER, 2 * PER);
        const delivered = got.findIndex((m) => m === 0);
        assert.ok(
          got.subarray(delivered).every((m) => m === 0),
          `trial ${trial}: a gap in the victim's messages`,
        );
        assert.equal(ch.done, true);
        assert.ok(expectedMessage(0, 0, 1000).length > 0);
      } finally {
        for (const c of [...victims, survivor, sender, after]) stop(c);
      }
    }
  },
  { timeout: 400_000 },
);
