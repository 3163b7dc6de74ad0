// A peer process for the core tests, run under Deno or Bun.
//   exchange NAME   attach, check the parent's bytes, answer, then trade values while both are mapped
//   add NAME N      attach, wait for the go signal, do N Atomics.add(+1) on the Int32 at byte 0
//   open NAME [ro]  attach (read-only with "ro") and print {size, first bytes}, or the error as JSON
//   rowrite NAME    attach read-only, write through every kind of view, print what this process sees
//   create NAME SIZE  create (and unlink at once), print the error as JSON if it fails
//   sparse NAME SIZE  make a segment as a C or Python peer may: shm_open + ftruncate alone (sparse)
//   touch NAME [ro]   attach (read-only with "ro"), read every byte (and write every page unless
//                     read-only), print {touched} or the error as JSON
//   native KIND       start a native job of the runtime on buf (KIND: scrypt, pbkdf2, gzip, stream),
//                     close() before it ends, wait for it; print {survived}
//   lateread FIFO     start an fs read from FIFO into buf, close(), map 32 new segments, feed the
//                     FIFO; print how many of the new segments received the late bytes
import { SharedMemory } from "../../mod.ts";
import { libc } from "../../ffi/libc.ts";
import { C } from "../../ffi/constants.ts";
import { cString } from "../../ffi/_ffi.ts";
import { childArgs, errorJson, spinUntil } from "./_child.ts";

import { runtime } from "../../ffi/runtime.ts";
const [command, name = "", arg] = childArgs();

switch (command) {
  case "exchange": {
    const shm = SharedMemory.open(name);
    const half = shm.size / 2;
    const flags = shm.view(Int32Array, 0, 4);
    let sum = 0;
    for (let i = 64; i < half; i++) sum = (sum + shm.buf[i]! * (i % 13 + 1)) % 1_000_000_007;
    for (let i = half; i < shm.size; i++) shm.buf[i] = (i * 31 + 7) & 0xff;
    new TextEncoder().encodeInto(`hello from ${runtime}`, shm.buf.subarray(32, 64));
    Atomics.store(flags, 0, 1);
    spinUntil(flags, 0, 2);
    Atomics.store(flags, 2, Atomics.load(flags, 1) + 1);
    Atomics.store(flags, 0, 3);
    console.log(JSON.stringify({ runtime, checksum: sum, saw: flags[1] }));
    shm.close();
    break;
  }
  case "add": {
    const shm = SharedMemory.open(name);
    const cell = shm.view(Int32Array, 0, 3);
    const n = Number(arg);
    // Start together: announce readiness, then wait for the parent's go, so the adds overlap.
    Atomics.add(cell, 1, 1);
    spinUntil(cell, 2, 1);
    for (let i = 0; i < n; i++) Atomics.add(cell, 0, 1);
    shm.close();
    console.log("done");
    break;
  }
  case "open": {
    try {
      const shm = SharedMemory.open(name, { readOnly: arg === "ro" });
      console.log(JSON.stringify({ size: shm.size, first: Array.from(shm.buf.subarray(0, 4)) }));
      shm.close();
    } catch (error) {
      console.log(errorJson(error));
    }
    break;
  }
  case "rowrite": {
    const shm = SharedMemory.open(name, { readOnly: true });
    shm.buf[0] = 0xaa;
    shm.buf.fill(0xbb, 100, 200);
    shm.view(Float64Array, 4096)[0] = 1.5;
    Atomics.store(shm.view(Int32Array), 5000, 77);
    console.log(JSON.stringify({ runtime, local: [shm.buf[0], shm.buf[150]], survived: true }));
    shm.close();
    break;
  }
  case "create": {
    try {
      const shm = SharedMemory.create({ name, size: Number(arg) });
      shm.buf.fill(1);
      shm.close();
      shm.unlink();
      console.log(JSON.stringify({ created: true }));
    } catch (error) {
      console.log(errorJson(error));
    }
    break;
  }
  case "sparse": {
    const lib = libc();
    const fd = lib.shm_open(cString("/" + name), C.O_CREAT | C.O_EXCL | C.O_RDWR, 0o600);
    if (fd < 0 || lib.ftruncate(fd, BigInt(Number(arg))) !== 0) {
      throw new Error(`sparse: errno ${lib.errno()}`);
    }
    lib.close(fd);
    console.log(JSON.stringify({ sparse: true }));
    break;
  }
  case "touch": {
    try {
      const readOnly = arg === "ro";
      using shm = SharedMemory.open(name, { readOnly });
      let sum = 0;
      for (let i = 0; i < shm.size; i += 512) sum += shm.buf[i]!;
      if (!readOnly) { for (let i = 0; i < shm.size; i += 4096) shm.buf[i] = 1; }
      console.log(JSON.stringify({ touched: shm.size, sum }));
    } catch (error) {
      console.log(errorJson(error));
    }
    break;
  }
  case "native": {
    const shm = SharedMemory.create({ size: 1 << 22 });
    crypto.getRandomValues(shm.buf.subarray(0, 65536));
    let done: Promise<unknown>;
    if (name === "scrypt" || name === "pbkdf2") {
      const nodeCrypto = await import("node:crypto");
      done = new Promise((resolve) =>
        name === "scrypt"
          ? nodeCrypto.scrypt(shm.buf, shm.buf.subarray(0, 16), 64, { N: 1 << 14 }, resolve)
          : nodeCrypto.pbkdf2(shm.buf, shm.buf.subarray(0, 16), 200_000, 64, "sha256", resolve)
      );
    } else if (name === "gzip") {
      const zlib = await import("node:zlib");
      done = new Promise((resolve) => zlib.gzip(shm.buf, resolve));
    } else {
      const stream = new Blob([shm.buf]).stream().pipeThrough(new CompressionStream("gzip"));
      done = new Response(stream).arrayBuffer().catch((e) => e);
    }
    shm.close();
    SharedMemory.unlink(shm.name);
    // New segments made meanwhile must not be written by the job.
    const fresh = Array.from({ length: 8 }, () => SharedMemory.create({ size: 1 << 22 }));
    await done;
    const dirty = fresh.filter((f) => f.buf.some((b) => b !== 0)).length;
    for (const f of fresh) f[Symbol.dispose]();
    console.log(JSON.stringify({ survived: true, dirty }));
    break;
  }
  case "lateread": {
    const fs = await import("node:fs");
    const fd = fs.openSync(name, fs.constants.O_RDWR); // O_RDWR: a FIFO open that never blocks
    const size = 1 << 20;
    const shm = SharedMemory.create({ size });
    const read = new Promise((resolve) => fs.read(fd, shm.buf, 0, 16, null, (err, n) => resolve(err ?? n)));
    await new Promise((r) => setTimeout(r, 100)); // the read now blocks in a worker thread
    shm.close();
    shm.unlink();
    const fresh = Array.from({ length: 32 }, () => SharedMemory.create({ size }));
    fs.writeSync(fd, "CORRUPT!CORRUPT!");
    await Promise.race([read, new Promise((r) => setTimeout(r, 2000))]);
    await new Promise((r) => setTimeout(r, 100));
    const dirty = fresh.filter((f) => f.buf.some((b) => b !== 0)).length;
    for (const f of fresh) f[Symbol.dispose]();
    fs.closeSync(fd);
    console.log(JSON.stringify({ survived: true, dirty }));
    break;
  }
  default:
    throw new Error(`unknown command ${command}`);
}
