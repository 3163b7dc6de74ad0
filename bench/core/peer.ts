/**
 * The other end of the round-trip benchmarks in `bench/core_bench.ts`, run as a child process of
 * the same runtime as the parent.
 *
 * - `peer.ts atomics <segment>`: opens the segment, answers every odd value the parent stores in
 *   Int32 0 with the next even value, spinning on `Atomics.load`; exits on -1 (or when the parent
 *   has been silent for 30 s).
 * - `peer.ts socket <path>`: listens on a Unix domain socket at `path` with the runtime's own API
 *   (`Deno.listen`, `Bun.listen` or Node's `node:net`) and echoes every byte back.
 *
 * Prints `ready` once it is set up.
 *
 * @module
 */

import { createServer } from "node:net";
import { SharedMemory } from "../../mod.ts";

/** The value the parent stores in Int32 0 to stop the atomics peer. */
export const STOP = -1;

const SILENCE_LIMIT_MS = 30_000;

interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
}
interface BunListener {
  stop(closeActive?: boolean): void;
}
interface BunLike {
  listen(options: {
    unix: string;
    socket: {
      data(socket: BunSocket, data: Uint8Array): void;
      drain(socket: BunSocket): void;
      close?(socket: BunSocket): void;
    };
  }): BunListener;
}

function atomicsPeer(name: string): void {
  const shm = SharedMemory.open(name);
  try {
    const cell = shm.view(Int32Array, 0, 2);
    Atomics.store(cell, 1, 1); // attached
    console.log("ready");
    let expect = 1;
    let spins = 0;
    let answered = 0;
    let seen = 0;
    let since = performance.now();
    for (;;) {
      const value = Atomics.load(cell, 0);
      if (value === expect) {
        Atomics.store(cell, 0, expect + 1);
        expect += 2;
        answered++;
        continue;
      }
      if (value === STOP) return;
      if ((++spins & 0xfffff) === 0) {
        const now = performance.now();
        if (answered !== seen) {
          seen = answered;
          since = now;
        } else if (now - since > SILENCE_LIMIT_MS) {
          throw new Error("The parent has been silent for 30 s: giving up");
        }
      }
    }
  } finally {
    shm.close();
  }
}

async function socketPeer(path: string): Promise<void> {
  const bun = (globalThis as { Bun?: BunLike }).Bun;
  if (bun) {
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const queue: Uint8Array[] = [];
    const listener = bun.listen({
      unix: path,
      socket: {
        data(socket, data) {
          // A write may take only part of a large message: the rest waits for drain().
          if (queue.length === 0) data = data.subarray(Math.max(socket.write(data), 0));
          if (data.length > 0) queue.push(data.slice());
        },
        drain(socket) {
          while (queue.length > 0) {
            const n = socket.write(queue[0]!);
            if (n < queue[0]!.length) {
              queue[0] = queue[0]!.subarray(Math.max(n, 0));
              return;
            }
            queue.shift();
          }
        },
        close() {
          resolveDone();
        },
      },
    });
    console.log("ready");
    await done;
    listener.stop(true);
    return;
  }
  if (!("Deno" in globalThis)) {
    const server = createServer((socket) => {
      socket.on("data", (data) => socket.write(data));
      socket.on("close", () => server.close());
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    console.log("ready");
    await new Promise((resolve) => server.on("close", resolve));
    return;
  }
  const listener = Deno.listen({ transport: "unix", path });
  console.log("ready");
  const conn = await listener.accept();
  listener.close();
  const buf = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      for (let sent = 0; sent < n;) sent += await conn.write(buf.subarray(sent, n));
    }
  } finally {
    conn.close();
  }
}

const [mode, target] = "Deno" in globalThis
  ? Deno.args
  : (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
if (mode === "atomics" && target) atomicsPeer(target);
else if (mode === "socket" && target) await socketPeer(target);
else throw new Error(`Cannot run the benchmark peer: expected "atomics <segment>" or "socket <path>"`);
