// The classic: three processes — Deno and Bun mixed — each increment one shared value three times
// under a lock. The read-modify-write is deliberately slow (a sleep between the read and the write),
// so without the lock the processes would overwrite each other; with it the value ends at exactly 9.
//
//   deno run -A examples/increment_under_lock.ts
//   bun examples/increment_under_lock.ts
//   node --experimental-ffi examples/increment_under_lock.ts
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Barrier, Mutex, SharedMemory } from "../mod.ts";

const script = fileURLToPath(import.meta.url);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const [role, name, label] = process.argv.slice(2);

if (role === "child") {
  // A child: open the segment by name and do three increments under the lock.
  if (!name) throw new TypeError("usage: increment_under_lock.ts child <segment name> <label>");
  using shm = SharedMemory.open(name);
  const mutex = new Mutex(shm, 0); // bytes 0..7: the lock
  const value = shm.view(Int32Array, Mutex.BYTE_LENGTH, 1); // bytes 8..11: the value it guards
  await new Barrier(shm, 16, 3).wait({ timeout: 30_000 }); // bytes 16..27: start all three together
  for (let i = 0; i < 3; i++) {
    {
      using _guard = await mutex.lock({ timeout: 10_000 });
      const read = value[0]!; // the view holds one value
      await sleep(5 + Math.random() * 10); // the others run meanwhile, and wait for the lock
      value[0] = read + 1;
      console.log(`  ${label} (pid ${process.pid}): ${read} -> ${read + 1}`);
    } // unlocked here
    await sleep(Math.random() * 20);
  }
} else {
  // The parent: create the segment (zero bytes are an unlocked mutex), start three children, report.
  using shm = SharedMemory.create({ size: 64 });
  const runtimes = [current(), other() ?? current(), current()];
  console.log(`3 processes (${runtimes.map((r) => r.name).join(", ")}) x 3 increments under a Mutex:`);
  await Promise.all(runtimes.map((rt, i) => child(rt, [shm.name, `${rt.name} #${i + 1}`])));
  const [result] = shm.view(Int32Array, Mutex.BYTE_LENGTH, 1);
  console.log(`result: ${result} (expected 9)`);
  shm.unlink();
  if (result !== 9) process.exitCode = 1;
}

interface Runtime {
  name: "deno" | "bun" | "node";
  /** The program to start, and the arguments that make it run this script. */
  program: string;
  args: string[];
}

function current(): Runtime {
  if ("Bun" in globalThis) return { name: "bun", program: process.execPath, args: [script] };
  if ("Deno" in globalThis) return { name: "deno", program: process.execPath, args: ["run", "-A", script] };
  return { name: "node", program: process.execPath, args: ["--experimental-ffi", "--no-warnings", script] };
}

/** The other runtime, from this repository's node_modules or the PATH; undefined when absent. */
function other(): Runtime | undefined {
  const name = "Deno" in globalThis ? "bun" : "deno";
  const local = fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
  const onPath = (process.env.PATH ?? "").split(":").map((dir) => `${dir}/${name}`).find((p) =>
    existsSync(p)
  );
  const binary = existsSync(local) ? local : onPath;
  if (!binary) return undefined;
  return { name, program: binary, args: name === "deno" ? ["run", "-A", script] : [script] };
}

function child(rt: Runtime, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(rt.program, [...rt.args, "child", ...args], { stdio: "inherit" });
    p.on("error", reject);
    p.on(
      "close",
      (code) => (code === 0 ? resolve() : reject(new Error(`${rt.name} child exited with ${code}`))),
    );
  });
}
