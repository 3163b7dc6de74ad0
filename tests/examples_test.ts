// The examples run exactly as their header comments say, and do what they claim: the writer/reader
// pair across runtimes, NumPy in place, and the multi-process Bun HTTP counter under real requests.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { NotFoundError, SharedMemory } from "../mod.ts";
import { test } from "./_harness.ts";
import { BOTH, hasCommand, run, type Runtime, RUNTIMES, start, tsCommand, uniqueName } from "./_process.ts";

function exists(name: string): boolean {
  try {
    SharedMemory.open(name, { readOnly: true }).close();
    return true;
  } catch (error) {
    if (error instanceof NotFoundError) return false;
    throw error;
  }
}

/** The exact command lines of the examples' headers (Deno with the flags written there). */
function example(rt: Runtime, script: string, args: string[], denoFlags: string[]): string[] {
  return rt === "deno"
    ? [RUNTIMES.deno, "run", ...denoFlags, "--quiet", `examples/${script}`, ...args]
    : tsCommand(rt, `examples/${script}`, args);
}

for (const rt of BOTH) {
  const readerRt = rt === "deno" ? "bun" : "deno";
  test(`writer under ${rt}, reader under ${readerRt}: message, answer, segment removed`, async () => {
    const name = uniqueName("pair");
    const message = `héllo from ${rt} ✓`;
    const writer = start(example(rt, "writer.ts", [name, message, "30"], ["--allow-ffi"]));
    try {
      await writer.waitFor(/waiting for a reader/);
      assert.equal(exists(name), true);
      const reader = await run(example(readerRt, "reader.ts", [name, "30"], ["--allow-ffi"]));
      assert.equal(reader.code, 0, reader.stderr);
      assert.match(reader.stdout, new RegExp(`reader: read "${message}" from /dev/shm/${name}`));
      const w = await writer.done;
      assert.equal(w.code, 0, w.stderr);
      assert.match(
        w.stdout,
        new RegExp(
          `the reader answered "Got it, thanks \\(${readerRt === "bun" ? "Bun" : "Deno"}, pid \\d+\\)"`,
        ),
      );
      assert.equal(exists(name), false, "the writer removed it");
    } finally {
      writer.kill("SIGKILL");
      try {
        SharedMemory.unlink(name);
      } catch { /* removed as it should be */ }
    }
  });
}

test("the reader can start first, and leaves the segment to the writer", async () => {
  const name = uniqueName("pair_first");
  const reader = start(example("bun", "reader.ts", [name, "30"], []));
  try {
    await new Promise((r) => setTimeout(r, 300));
    const writer = await run(example("deno", "writer.ts", [name, "early bird", "30"], ["--allow-ffi"]));
    assert.equal(writer.code, 0, writer.stderr);
    const r = await reader.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /read "early bird"/);
    assert.equal(exists(name), false);
  } finally {
    reader.kill("SIGKILL");
    try {
      SharedMemory.unlink(name);
    } catch { /* gone */ }
  }
});

const noNumpy = !hasCommand("python3") ? "python3 is not installed" : (() => {
  try {
    execFileSync("python3", ["-c", "import numpy"], { stdio: "ignore" });
    return false;
  } catch {
    return "NumPy is not installed";
  }
})();

for (const rt of BOTH) {
  test(`${rt}: numpy_share.ts — NumPy computes in place on the shared matrix`, async () => {
    const before = existsSync("/dev/shm") ? new Set(readdirSync("/dev/shm")) : new Set<string>();
    const r = await run(example(rt, "numpy_share.ts", [], ["--allow-ffi", "--allow-run=python3"]));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Python 3\.\d+\.\d+, NumPy \d+\.\d+\.\d+: column means \[499\.5,1000,/);
    assert.match(r.stdout, /means written by NumPy into shared memory match: true/);
    assert.match(r.stdout, /matrix centred in place by NumPy, seen here without a copy: true/);
    const name = /created \/dev\/shm\/(psm_[0-9a-f]{8})/.exec(r.stdout)?.[1];
    assert.ok(name && !before.has(name));
    assert.equal(exists(name), false, "removed at the end by its scope");
  }, { skip: noNumpy });
}

// --- The HTTP counter -----------------------------------------------------------------------

/** A port the kernel just gave out and took back: free now, as far as anyone can tell. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

interface Reply {
  status: number;
  body: string;
}

/** One request on its own connection (`Connection: close`), so the kernel picks a worker anew. */
function request(port: number, path: string, client?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`GET ${path} took more than 5 s`));
    }, 5000);
    socket.on("data", (d) => (data += d.toString()));
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]);
      resolve({ status, body: data.slice(data.indexOf("\r\n\r\n") + 4) });
    });
    socket.connect(port, "127.0.0.1", () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n` +
          (client ? `x-client: ${client}\r\n` : "") + "\r\n",
      );
    });
  });
}

test("http_counter.ts: workers on one port share exact totals and one rate limiter", async () => {
  const port = await freePort();
  const workers = 3;
  const limit = 7;
  const server = start(
    [
      RUNTIMES.bun,
      "examples/http_counter.ts",
      "--port",
      String(port),
      "--workers",
      String(workers),
      "--limit",
      String(limit),
      "--window",
      "3600",
    ],
    { timeout: 30_000 }, // past this, the failure shows everything the server printed
  );
  let segment: string | undefined;
  try {
    const ready = await server.waitFor(/^listening on .* \(limit \d+ requests|exited before/);
    assert.match(ready, new RegExp(`listening on http://127.0.0.1:${port}/ with 3 worker processes`));
    segment = /sharing \/dev\/shm\/(\S+)/.exec(ready)?.[1];
    assert.ok(segment, `the primary names its segment: ${ready}`);

    // 3 clients x 20 requests, 12 at a time, each on a fresh connection.
    const plan = Array.from({ length: 20 }, () => ["alice", "bob", "carol"]).flat();
    const replies: (Reply & { client: string })[] = [];
    for (let i = 0; i < plan.length; i += 12) {
      const batch = plan.slice(i, i + 12);
      replies.push(
        ...await Promise.all(batch.map(async (c) => ({ client: c, ...await request(port, "/", c) }))),
      );
    }
    for (const client of ["alice", "bob", "carol"]) {
      const mine = replies.filter((r) => r.client === client);
      assert.equal(
        mine.filter((r) => r.status === 200).length,
        limit,
        `${client}: exactly ${limit} admitted`,
      );
      assert.equal(mine.filter((r) => r.status === 429).length, 20 - limit, `${client}: the rest refused`);
    }
    const servedBy = new Set(
      replies.filter((r) => r.status === 200).map((r) => /worker (\d+)/.exec(r.body)![1]),
    );
    assert.ok(servedBy.size >= 2, `reusePort spread 60 connections over ${servedBy.size} worker(s)`);

    const stats = JSON.parse((await request(port, "/stats")).body);
    assert.equal(stats.total, 60);
    assert.equal(stats.rejected, 3 * (20 - limit));
    assert.equal(stats.perWorker.length, workers);
    assert.equal(stats.perWorker.reduce((a: number, b: number) => a + b, 0), 60);
    assert.equal(stats.perWorker.filter((n: number) => n > 0).length >= 2, true);

    process.kill(server.pid, "SIGINT");
    const done = await server.done;
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /stopped; totals: \{"total":60,"rejected":39,/);
    assert.equal(exists(segment), false, "the primary removed the segment");
    await assert.rejects(request(port, "/stats"), "the workers are gone");
  } finally {
    server.kill("SIGKILL");
    if (segment && exists(segment)) SharedMemory.unlink(segment);
  }
}, { skip: process.platform !== "linux" && "reusePort spreads connections on Linux only" });
