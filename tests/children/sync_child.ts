// A child process for the synchronization tests (runs under Deno or Bun).
// Usage: sync_child.ts <mode> <segment name> [args…]; prints what the parent waits for.
import process from "node:process";
import { Barrier, Condition, Mutex, Semaphore, SharedMemory } from "../../mod.ts";
import { futexWaitAsync, futexWaitSync, futexWake } from "../../_sync/futex.ts";
import { selfId, selfStart } from "../../_sync/owner.ts";

const [mode, name, ...args] = process.argv.slice(2);
const shm = SharedMemory.open(name!);
const i32 = shm.view(Int32Array);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A few microseconds of work inside a critical section, so races have room to happen. */
function work(iterations: number): number {
  let x = 0;
  for (let i = 0; i < iterations; i++) x = (x * 31 + i) | 0;
  return x;
}

switch (mode) {
  // Layout: mutex @0, counter @8 (Int32 index 2), barrier @16.
  case "increment": {
    const [countArg, locked, flavour, parties] = args;
    const count = Number(countArg);
    const mutex = new Mutex(shm, 0);
    const start = new Barrier(shm, 16, Number(parties));
    await start.wait({ timeout: 30_000 });
    let sink = 0;
    for (let i = 0; i < count; i++) {
      if (locked === "locked") {
        if (flavour === "async") await mutex.lock();
        else mutex.lockSync();
      }
      // Deliberately non-atomic read-modify-write with a widened window.
      const v = i32[2]!;
      sink += work(200);
      i32[2] = v + 1;
      if (locked === "locked") mutex.unlock();
    }
    console.log(`done ${sink === 0.5 ? "" : "ok"}`);
    break;
  }
  // Takes the mutex at @0 and holds it until killed, or until the Int32 at @12 becomes 1.
  case "hold": {
    const mutex = new Mutex(shm, 0);
    mutex.lockSync();
    console.log(`locked ${selfId()} ${selfStart()}`);
    while (Atomics.load(i32, 3) === 0) futexWaitSync(shm, 12, 0, 1000);
    mutex.unlock();
    console.log("released");
    break;
  }
  // Locks the mutex @0 once (a corrupted word, say) within 1 s and reports whether it was taken over.
  case "lock-once": {
    const mutex = new Mutex(shm, 0);
    const guard = args[0] === "async"
      ? await mutex.lock({ timeout: 1_000 })
      : mutex.lockSync({ timeout: 1_000 });
    console.log(`ownerDied ${guard.ownerDied}`);
    guard.unlock();
    break;
  }
  // Semaphore @0: for each value, writes it over the sleeper count @4, says "waiting <k>" and
  // acquires; the parent releases once the count moved (this child counted itself in).
  case "sem-corrupt": {
    const [flavour, ...values] = args;
    const sem = new Semaphore(shm, 0);
    for (const [k, v] of values.entries()) {
      Atomics.store(i32, 1, Number(v));
      console.log(`waiting ${k}`);
      try {
        if (flavour === "async") await sem.acquire({ timeout: 10_000 });
        else sem.acquireSync({ timeout: 10_000 });
        console.log(`acquired ${k}`);
      } catch (error) {
        console.log(`missed ${k}: ${error}`);
        process.exit(1);
      }
    }
    break;
  }
  // Mutex @0, condition @8 (sleeper count @12): for each value, locks, writes it over the count,
  // says "waiting <k>" and waits; the parent notifies once the count moved.
  case "cond-corrupt": {
    const [flavour, ...values] = args;
    const mutex = new Mutex(shm, 0);
    const cond = new Condition(shm, 8);
    for (const [k, v] of values.entries()) {
      using _guard = flavour === "async" ? await mutex.lock() : mutex.lockSync();
      Atomics.store(i32, 3, Number(v));
      console.log(`waiting ${k}`);
      const notified = flavour === "async"
        ? await cond.wait(mutex, { timeout: 10_000 })
        : cond.waitSync(mutex, { timeout: 10_000 });
      console.log(`woken ${k} ${notified}`);
      if (!notified) process.exit(1);
    }
    break;
  }
  // Barrier @0 for <parties>: says "arriving", waits, and reports how the wait ended.
  case "barrier-once": {
    const [parties, timeout] = args.map(Number);
    const barrier = new Barrier(shm, 0, parties!);
    console.log("arriving");
    try {
      const index = args[2] === "sync"
        ? barrier.waitSync({ timeout: timeout! })
        : await barrier.wait({ timeout: timeout! });
      console.log(`passed ${index}`);
    } catch (error) {
      console.log(`failed ${(error as Error).name}: ${(error as Error).message}`);
    }
    break;
  }
  // Waits on the word @0 (expected 0) until it changes; reports what each wait returned.
  case "futex-wait": {
    const results: string[] = [];
    console.log("waiting");
    while (Atomics.load(i32, 0) === 0) {
      results.push(
        args[0] === "async" ? await futexWaitAsync(shm, 0, 0, 10_000) : futexWaitSync(shm, 0, 0, 10_000),
      );
    }
    console.log(`woken ${results.join(",")}`);
    break;
  }
  // Sets the word @0 to 1 after a delay and wakes everyone waiting on it.
  case "futex-wake": {
    await sleep(Number(args[0]));
    Atomics.store(i32, 0, 1);
    console.log(`woke ${futexWake(shm, 0)}`);
    break;
  }
  // Semaphore @0; holders now @8, most holders seen @12, passes done @16.
  case "semaphore": {
    const [iterations, flavour] = args.map((a, i) => (i === 0 ? Number(a) : a)) as [number, string];
    const sem = new Semaphore(shm, 0);
    for (let i = 0; i < iterations; i++) {
      if (flavour === "async") await sem.acquire({ timeout: 30_000 });
      else sem.acquireSync({ timeout: 30_000 });
      const now = Atomics.add(i32, 2, 1) + 1;
      for (let seen = Atomics.load(i32, 3); now > seen; seen = Atomics.load(i32, 3)) {
        if (Atomics.compareExchange(i32, 3, seen, now) === seen) break;
      }
      work(20_000);
      Atomics.sub(i32, 2, 1);
      Atomics.add(i32, 4, 1);
      sem.release();
    }
    console.log("done");
    break;
  }
  // Ring of 16 Int32 slots @64; mutex @0, notEmpty @8, notFull @16, head @24 (idx 6), tail @28 (idx 7).
  case "produce": {
    const [count, delay] = args.map(Number) as [number, number];
    const mutex = new Mutex(shm, 0);
    const notEmpty = new Condition(shm, 8);
    const notFull = new Condition(shm, 16);
    await sleep(delay);
    for (let i = 1; i <= count; i++) {
      mutex.lockSync();
      while (i32[7]! - i32[6]! === 16) notFull.waitSync(mutex);
      i32[16 + (i32[7]! & 15)] = i;
      i32[7]!++;
      notEmpty.notify();
      mutex.unlock();
    }
    console.log("produced");
    break;
  }
  case "consume": {
    const count = Number(args[0]);
    const flavour = args[1];
    const mutex = new Mutex(shm, 0);
    const notEmpty = new Condition(shm, 8);
    const notFull = new Condition(shm, 16);
    let expected = 1;
    let firstWaitCpu = -1;
    for (let i = 1; i <= count; i++) {
      if (flavour === "async") await mutex.lock();
      else mutex.lockSync();
      const cpu = process.cpuUsage();
      let waited = false;
      while (i32[7] === i32[6]) {
        waited = true;
        if (flavour === "async") await notEmpty.wait(mutex);
        else notEmpty.waitSync(mutex);
      }
      if (waited && firstWaitCpu < 0) {
        const used = process.cpuUsage(cpu);
        firstWaitCpu = (used.user + used.system) / 1000;
      }
      const item = i32[16 + (i32[6]! & 15)];
      i32[6]!++;
      notFull.notify();
      mutex.unlock();
      if (item !== expected) {
        console.log(`out of order: got ${item}, expected ${expected}`);
        process.exit(1);
      }
      expected++;
    }
    console.log(`consumed ${expected - 1} firstWaitCpuMs ${firstWaitCpu.toFixed(1)}`);
    break;
  }
  // Barrier @0 for <parties>; arrivals per round counted from @64 (idx 16 + round).
  case "barrier": {
    const [parties, rounds, seed] = args.map(Number) as [number, number, number];
    const barrier = new Barrier(shm, 0, parties);
    const indexes: number[] = [];
    for (let r = 0; r < rounds; r++) {
      await sleep((seed * 37 + r * 11) % 40); // arrive at different times
      Atomics.add(i32, 16 + r, 1);
      indexes.push(r % 2 ? barrier.waitSync({ timeout: 30_000 }) : await barrier.wait({ timeout: 30_000 }));
      const arrived = Atomics.load(i32, 16 + r);
      if (arrived !== parties) {
        console.log(`released early in round ${r}: ${arrived} of ${parties} arrived`);
        process.exit(1);
      }
    }
    console.log(`indexes ${indexes.join(",")}`);
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
shm.close();
