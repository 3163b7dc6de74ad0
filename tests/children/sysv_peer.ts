// A peer process for the System V tests, run under Deno or Bun. Every answer is one JSON line.
//   add ID N           attach by shmid, announce, wait for the go signal, do N Atomics.add(+1) on the
//                      Int32 at byte 0
//   rowrite ID         attach read-only, write through every kind of copy it hands out, print what it saw
//   open key|id K [ro] attach by key or by id (read-only with "ro"); print {size, first bytes} or the error
//   create KEY SIZE    create (and remove at once); print {ok} or the error
//   hold ID            attach by id, print "attached", wait for a line on stdin, then detach
//   rawwrite ID        attach read-only and store into the attachment itself, bypassing SharedMemory
//                      (shows that the kernel enforces SHM_RDONLY: this process is meant to die)
import process from "node:process";
import { SharedMemory } from "../../mod.ts";
import { childArgs, errorJson, spinUntil } from "./_child.ts";
import { addressIn } from "../../_internal.ts";
import { foreignBuffer, pointerAt } from "../../ffi/_ffi.ts";

const [command, a, b, c] = childArgs();

function readLine(): Promise<void> {
  return new Promise((resolve) => process.stdin.once("data", () => resolve()));
}

switch (command) {
  case "add": {
    const shm = SharedMemory.open({ backend: "sysv", id: Number(a) });
    const cell = shm.view(Int32Array, 0, 3);
    Atomics.add(cell, 1, 1);
    spinUntil(cell, 2, 1);
    for (let i = 0, n = Number(b); i < n; i++) Atomics.add(cell, 0, 1);
    shm.close();
    console.log(JSON.stringify({ done: true }));
    break;
  }
  case "rowrite": {
    const shm = SharedMemory.open({ backend: "sysv", id: Number(a), readOnly: true });
    const buf = shm.buf;
    buf[0] = 0xee;
    buf.fill(0xdd, 1, 8);
    buf.set([1, 2, 3], 8);
    new DataView(buf.buffer).setUint32(12, 0xdeadbeef);
    crypto.getRandomValues(buf.subarray(16, 32));
    new TextEncoder().encodeInto("scribble", buf.subarray(32, 40));
    const ints = shm.view(Int32Array, 0, 4);
    Atomics.store(ints, 1, -1);
    ints[2] = 12345;
    const f64 = shm.view(Float64Array);
    f64.fill(Math.PI);
    console.log(JSON.stringify({
      wroteCopy: [buf[0], buf[1], buf[8]],
      viewCopy: ints[2],
      fresh: Array.from(shm.buf.subarray(0, 8)),
      readOnly: shm.readOnly,
    }));
    shm.close();
    break;
  }
  case "open": {
    try {
      const options = a === "key"
        ? { backend: "sysv" as const, key: Number(b), readOnly: c === "ro" }
        : { backend: "sysv" as const, id: Number(b), readOnly: c === "ro" };
      const shm = SharedMemory.open(options);
      console.log(JSON.stringify({ size: shm.size, first: Array.from(shm.buf.subarray(0, 4)) }));
      shm.close();
    } catch (error) {
      console.log(errorJson(error));
    }
    break;
  }
  case "create": {
    try {
      const shm = SharedMemory.create({ backend: "sysv", key: Number(a), size: Number(b) });
      shm.close();
      shm.unlink();
      console.log(JSON.stringify({ ok: true }));
    } catch (error) {
      console.log(
        JSON.stringify({ ...JSON.parse(errorJson(error)), rangeError: error instanceof RangeError }),
      );
    }
    break;
  }
  case "hold": {
    const shm = SharedMemory.open({ backend: "sysv", id: Number(a) });
    console.log(JSON.stringify({ attached: true }));
    await readLine();
    shm.close();
    break;
  }
  case "rawwrite": {
    const shm = SharedMemory.open({ backend: "sysv", id: Number(a), readOnly: true });
    const raw = new Uint8Array(foreignBuffer(pointerAt(addressIn(shm, 0)), shm.size));
    console.log(JSON.stringify({ before: raw[0] }));
    raw[0] = 0xab;
    console.log(JSON.stringify({ survived: true, after: raw[0] }));
    break;
  }
  default:
    throw new Error(`unknown command ${command}`);
}
