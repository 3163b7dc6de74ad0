// A peer process for the Windows suite, run by bun.exe (under Wine or on Windows).
//   add NAME N      attach, wait for the go signal (Int32 #1 = 1), do N Atomics.add(+1) on Int32 #0
//   rowrite NAME    attach read-only, write through buf and an Int32Array, print what this process sees
//   open NAME [ro]  attach and print {size, first}, or the error as JSON
import { SharedMemory, ShmError } from "../../mod.ts";

const [command, name, arg] = (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);

if (name === undefined) throw new TypeError("usage: child.ts add|rowrite|open NAME [N|ro]");

function print(value: unknown): void {
  console.log(JSON.stringify(value));
}

try {
  switch (command) {
    case "add": {
      const shm = SharedMemory.open(name);
      const cells = shm.view(Int32Array, 0, 2);
      const deadline = Date.now() + 30_000;
      while (Atomics.load(cells, 1) !== 1) {
        if (Date.now() > deadline) throw new Error("timed out waiting for the go signal");
      }
      const n = Number(arg);
      for (let i = 0; i < n; i++) Atomics.add(cells, 0, 1);
      shm.close();
      print({ done: n });
      break;
    }
    case "rowrite": {
      const shm = SharedMemory.open(name, { readOnly: true });
      const before = shm.buf[0];
      shm.buf[0] = 0xee;
      shm.view(Int32Array)[1] = 0x1234567;
      print({ readOnly: shm.readOnly, before, after: shm.buf[0], int1: shm.view(Int32Array)[1] });
      shm.close();
      break;
    }
    case "open": {
      const shm = SharedMemory.open(name, { readOnly: arg === "ro" });
      print({ size: shm.size, first: shm.buf[0] });
      shm.close();
      break;
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
} catch (error) {
  const e = error as ShmError;
  print({ error: e.name, code: e.code, message: e.message, isShmError: error instanceof ShmError });
}
