// A Node process for tests/node_test.ts: what the module says under Node's flags and permission model.
//
//   load          imports the module, creates and removes a segment, prints {"ok": true}
//   wait          an async receive with a 20 ms timeout on a new channel: prints {"ok": "timed out"}
//   file <path>   creates a segment with the file backend at <path>
//
// Any error, the module's load included, is printed as one JSON line and the exit code is 1. This file
// imports nothing of the module statically, so that a load error is caught here too.
import process from "node:process";

const [mode, path = ""] = process.argv.slice(2);
try {
  const { Channel, SharedMemory, TimeoutError } = await import("../../mod.ts");
  if (mode === "load") {
    using shm = SharedMemory.create({ size: 64 });
    shm.unlink();
    console.log(JSON.stringify({ ok: true }));
  } else if (mode === "wait") {
    using ch = Channel.create({ capacity: 1024 });
    ch.unlink();
    try {
      await ch.receive({ timeout: 20 });
    } catch (error) {
      if (!(error instanceof TimeoutError)) throw error;
      console.log(JSON.stringify({ ok: "timed out" }));
    }
  } else if (mode === "file") {
    using shm = SharedMemory.create({ backend: "file", path, size: 64 });
    shm.unlink();
    console.log(JSON.stringify({ ok: true }));
  } else throw new TypeError(`node_peer.ts: unknown mode ${mode}`);
} catch (error) {
  const e = error as Error & { code?: string; syscall?: string };
  console.log(JSON.stringify({ error: e.name, code: e.code, syscall: e.syscall, message: e.message }));
  process.exitCode = 1;
}
