/**
 * Deno, Bun or Node and Python sharing one NumPy array, with no copy and no serialization.
 *
 * This process creates a segment holding a 1000 × 3 float64 matrix (row-major, little-endian: the
 * layout of `np.ndarray((1000, 3), "<f8")`), fills it, and runs `examples/numpy_peer.py`, which
 * views the same memory as a NumPy array, writes the column means after the matrix and centres the
 * matrix in place. This process then checks both against its own arithmetic.
 *
 * Run (needs python3 with NumPy):
 *
 *     deno run --allow-ffi --allow-run=python3 examples/numpy_share.ts
 *     bun examples/numpy_share.ts
 *     node --experimental-ffi examples/numpy_share.ts
 *
 * Outside this repository, import from `jsr:@x/shm` instead of `../mod.ts`.
 *
 * @module
 */

import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { SharedMemoryScope } from "../mod.ts";

const ROWS = 1000;
const COLS = 3;
const peer = fileURLToPath(new URL("numpy_peer.py", import.meta.url));

using scope = new SharedMemoryScope(); // the segment is removed at the end, on Ctrl-C or a crash
const shm = scope.create({ size: (ROWS * COLS + COLS) * 8 });
const matrix = shm.view(Float64Array, 0, ROWS * COLS);
const means = shm.view(Float64Array, ROWS * COLS * 8, COLS);
for (let r = 0; r < ROWS; r++) {
  matrix[r * COLS + 0] = r; //          column 0: 0 … 999
  matrix[r * COLS + 1] = 2 * r + 1; //  column 1: 1 … 1999
  matrix[r * COLS + 2] = Math.sin(r); // column 2
}
const expected = [0, 1, 2].map((c) =>
  matrix.reduce((sum, value, i) => (i % COLS === c ? sum + value : sum), 0) / ROWS
);
const before = matrix.slice(); // to check the in-place update
console.log(`created /dev/shm/${shm.name}: a ${ROWS}×${COLS} float64 matrix; running NumPy on it`);

const output = await runPython([peer, shm.name, String(ROWS), String(COLS)]);
const report = JSON.parse(output.trim().split("\n").pop()!);
console.log(`Python ${report.python}, NumPy ${report.numpy}: column means ${JSON.stringify(report.means)}`);

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a));
// Every index below is in range: `expected` has COLS values, and `before` is a copy of `matrix`.
const meansOk = means.every((mean, c) => close(mean, expected[c]!));
const centred = matrix.every((value, i) => close(value, before[i]! - expected[i % COLS]!));
console.log(`means written by NumPy into shared memory match: ${meansOk}`);
console.log(`matrix centred in place by NumPy, seen here without a copy: ${centred}`);
if (!meansOk || !centred) process.exitCode = 1;

/** Runs python3 and returns its standard output (Deno.Command needs no --allow-env, unlike node:child_process). */
async function runPython(args: string[]): Promise<string> {
  if ("Deno" in globalThis) {
    const { code, stdout } = await new Deno.Command("python3", { args, stderr: "inherit" }).output();
    if (code !== 0) throw new Error(`numpy_peer.py exited with ${code}`);
    return new TextDecoder().decode(stdout);
  }
  return await new Promise<string>((resolve, reject) => {
    const child = spawn("python3", args, { stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    child.stdout.on("data", (d: Uint8Array) => (text += new TextDecoder().decode(d)));
    child.on("error", reject);
    child.on(
      "close",
      (code) => code === 0 ? resolve(text) : reject(new Error(`numpy_peer.py exited with ${code}`)),
    );
  });
}
