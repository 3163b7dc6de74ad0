/**
 * Windows only: how fast a wait on a word hands off between two processes, and what an idle wait
 * costs, with the named semaphores `_sync/futex.ts` uses on Windows, against two references measured in
 * the same run: the polling fallback (what Windows had before) and a TCP round trip on 127.0.0.1.
 *
 * ```sh
 * bash tools/test-windows.sh --bench       # under Wine on Linux
 * bun bench/windows/handoff.ts             # on Windows (or deno run -A bench/windows/handoff.ts)
 * ```
 *
 * Rows: the round-trip time of a ping-pong on one Int32 (each side stores, wakes, and sleeps until
 * the other answers), and the CPU time a process burns while one wait sleeps for 1 s.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { createConnection, createServer, type Socket } from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { SharedMemory } from "../../mod.ts";
import { futexWaitSync, futexWake, usePollingFallback } from "../../_sync/futex.ts";

const ROUNDS = 2000;
const [role, mode, name] = process.argv.slice(2);

function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

/** Sleeps on the word until it holds `value` (each wait bounded, so a lost wake cannot hang the bench). */
function awaitValue(shm: SharedMemory, word: Int32Array, value: number): void {
  for (let v = Atomics.load(word, 0); v !== value; v = Atomics.load(word, 0)) futexWaitSync(shm, 0, v, 5000);
}

if (role === "child") {
  if (name === undefined) throw new TypeError("Cannot run the hand-off child: no segment name or port given");
  if (mode === "polling") usePollingFallback(true);
  if (mode === "tcp") {
    const socket = createConnection(Number(name), "127.0.0.1");
    socket.setNoDelay(true);
    socket.on("data", (d) => socket.write(d)); // echo
  } else {
    const shm = SharedMemory.open(name);
    const word = shm.view(Int32Array, 0, 2);
    for (let i = 0; i < ROUNDS; i++) {
      awaitValue(shm, word, 2 * i + 1);
      Atomics.store(word, 0, 2 * i + 2);
      futexWake(shm, 0);
    }
    // Idle: one wait that sleeps ~1 s (the parent wakes it), with its CPU time measured.
    const before = process.cpuUsage();
    awaitValue(shm, word, -1);
    console.log(JSON.stringify({ idleCpuMs: cpuMs(before) }));
    shm.close();
  }
} else {
  const self = fileURLToPath(import.meta.url);
  const runArgs = "Bun" in globalThis ? [self] : ["run", "-A", self];
  const child = (args: string[]) =>
    spawn(process.execPath, [...runArgs, "child", ...args], { stdio: ["ignore", "pipe", "inherit"] });

  const futexRun = async (kind: "semaphores" | "polling") => {
    usePollingFallback(kind === "polling");
    const shm = SharedMemory.create({ size: 64 });
    const word = shm.view(Int32Array, 0, 2);
    const p = child([kind, shm.name]);
    let out = "";
    p.stdout!.on("data", (d) => out += d);
    const exited = new Promise((r) => p.on("close", r));
    await new Promise((r) => setTimeout(r, 1500)); // let the child start and attach
    const t0 = performance.now();
    for (let i = 0; i < ROUNDS; i++) {
      Atomics.store(word, 0, 2 * i + 1);
      futexWake(shm, 0);
      awaitValue(shm, word, 2 * i + 2);
    }
    const roundTripUs = (performance.now() - t0) * 1000 / ROUNDS;
    await new Promise((r) => setTimeout(r, 1000));
    Atomics.store(word, 0, -1);
    futexWake(shm, 0);
    await exited;
    shm.close();
    return { roundTripUs, idleCpuMs: JSON.parse(out.trim().split("\n").pop()!).idleCpuMs as number };
  };

  const tcpRun = async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const accepted = new Promise<Socket>((r) => server.once("connection", r));
    const p = child(["tcp", String(port)]);
    const socket = await accepted;
    socket.setNoDelay(true);
    const one = new Uint8Array([1]);
    const roundTrip = () => new Promise<void>((r) => (socket.once("data", () => r()), socket.write(one)));
    for (let i = 0; i < 50; i++) await roundTrip(); // warm up
    const t0 = performance.now();
    for (let i = 0; i < ROUNDS; i++) await roundTrip();
    const us = (performance.now() - t0) * 1000 / ROUNDS;
    p.kill();
    socket.destroy();
    server.close();
    return us;
  };

  const semaphores = await futexRun("semaphores");
  const polling = await futexRun("polling");
  const tcp = await tcpRun();
  const rows: [what: string, value: string][] = [
    ["hand-off round trip, named semaphores", `${semaphores.roundTripUs.toFixed(1)} µs`],
    ["hand-off round trip, polling fallback (reference)", `${polling.roundTripUs.toFixed(1)} µs`],
    ["TCP 127.0.0.1 round trip, 1 byte (reference)", `${tcp.toFixed(1)} µs`],
    ["CPU while one wait sleeps 1 s, named semaphores", `${semaphores.idleCpuMs.toFixed(1)} ms`],
    ["CPU while one wait sleeps 1 s, polling fallback", `${polling.idleCpuMs.toFixed(1)} ms`],
  ];
  for (const [what, value] of rows) console.log(`${what.padEnd(52)} ${value}`);
  console.log(
    `named semaphores: ${(tcp / semaphores.roundTripUs).toFixed(1)}x faster than TCP, ` +
      `${(polling.roundTripUs / semaphores.roundTripUs).toFixed(2)}x the polling fallback's speed; ` +
      `idle CPU ${semaphores.idleCpuMs.toFixed(1)} ms vs ${
        polling.idleCpuMs.toFixed(1)
      } ms per second of waiting`,
  );
}
