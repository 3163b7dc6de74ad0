// A peer process for the file-backend tests, run under Deno or Bun. Every answer is one JSON line.
//   write PATH TEXT        create PATH (4096 bytes), write TEXT at 0, flush, close, exit
//   read PATH              open read-only, print {size, text up to the first NUL}
//   add PATH N             open, announce, wait for the go signal, do N Atomics.add(+1) on the Int32 at 0
//   rowrite PATH           open read-only, write through buf and views, print what this process sees
//   try OP PATH [SIZE]     OP is create, open or openro; print {ok, size} or the error
//   ftok PATH              print {key} or the error
import process from "node:process";
import { ftok, SharedMemory } from "../../mod.ts";
import { childArgs, errorJson, spinUntil } from "./_child.ts";

const [command, path = "", arg = ""] = childArgs();

switch (command) {
  case "write": {
    const shm = SharedMemory.create({ backend: "file", path, size: 4096 });
    new TextEncoder().encodeInto(arg, shm.buf);
    shm.flush();
    shm.close();
    console.log(JSON.stringify({ ok: true }));
    break;
  }
  case "read": {
    const shm = SharedMemory.open({ backend: "file", path, readOnly: true });
    const end = shm.buf.indexOf(0);
    console.log(JSON.stringify({
      size: shm.size,
      text: new TextDecoder().decode(shm.buf.subarray(0, end < 0 ? shm.size : end)),
    }));
    shm.close();
    break;
  }
  case "add": {
    const shm = SharedMemory.open({ backend: "file", path });
    const cell = shm.view(Int32Array, 0, 3);
    Atomics.add(cell, 1, 1);
    spinUntil(cell, 2, 1);
    for (let i = 0, n = Number(arg); i < n; i++) Atomics.add(cell, 0, 1);
    shm.close();
    console.log(JSON.stringify({ done: true }));
    break;
  }
  case "rowrite": {
    const shm = SharedMemory.open({ backend: "file", path, readOnly: true });
    shm.buf[0] = 0xee;
    shm.buf.fill(0xdd, 1, 8);
    new DataView(shm.buf.buffer).setUint32(8, 0xdeadbeef);
    crypto.getRandomValues(shm.buf.subarray(16, 32));
    Atomics.store(shm.view(Int32Array), 10, -1);
    shm.view(Float64Array)[100] = Math.PI;
    console.log(JSON.stringify({ sees: Array.from(shm.buf.subarray(0, 4)), readOnly: shm.readOnly }));
    shm.close();
    break;
  }
  case "try": {
    const [op, file, size] = [path, arg, process.argv[5]];
    try {
      const shm = op === "create"
        ? SharedMemory.create({ backend: "file", path: file, size: Number(size ?? 4096) })
        : SharedMemory.open({
          backend: "file",
          path: file,
          readOnly: op === "openro",
          size: size === undefined ? undefined : Number(size),
        });
      console.log(JSON.stringify({ ok: true, size: shm.size }));
      shm.close();
      if (op === "create") shm.unlink();
    } catch (error) {
      console.log(errorJson(error));
    }
    break;
  }
  case "ftok": {
    try {
      console.log(JSON.stringify({ key: ftok(path, 1) }));
    } catch (error) {
      console.log(errorJson(error));
    }
    break;
  }
  default:
    throw new Error(`unknown command ${command}`);
}
