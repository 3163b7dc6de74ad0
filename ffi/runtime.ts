/**
 * Runtime and platform detection, done once at load.
 *
 * Bun is detected first (it also defines some Node and Deno compatibility globals), then Deno, then
 * Node (Deno and Bun both define a Node-like `process` too).
 *
 * @module
 */

/** The JavaScript runtimes this module runs on. */
export type RuntimeName = "bun" | "deno" | "node";

/** The operating systems this module knows how to talk to. */
export type OsName = "linux" | "darwin" | "windows";

/** The CPU architectures whose ABI facts this module knows. */
export type ArchName = "x86_64" | "aarch64";

interface BunGlobal {
  version: string;
}
interface ProcessLike {
  platform: string;
  arch: string;
  versions?: { node?: string };
}

const g = globalThis as unknown as {
  Bun?: BunGlobal;
  Deno?: { version: { deno: string }; build: { os: string; arch: string } };
  process?: ProcessLike;
};

function detectRuntime(): RuntimeName {
  if (typeof g.Bun === "object" && g.Bun !== null) return "bun";
  if (typeof g.Deno === "object" && g.Deno !== null) return "deno";
  if (typeof g.process?.versions?.node === "string") return "node";
  throw new Error(
    "Cannot load shm: it runs under Deno, Bun or Node.js, and this runtime is none of them",
  );
}

/** The runtime this module is running under. */
export const runtime: RuntimeName = detectRuntime();

function detectOs(): OsName {
  const raw = runtime === "deno" ? g.Deno!.build.os : g.process!.platform;
  if (raw === "linux" || raw === "darwin") return raw;
  if (raw === "windows" || raw === "win32") return "windows";
  throw new Error(
    `Cannot load shm: the operating system "${raw}" is not supported (Linux, macOS and Windows are)`,
  );
}

/** The operating system this process runs on. */
export const os: OsName = detectOs();

function detectArch(): ArchName {
  const raw = runtime === "deno" ? g.Deno!.build.arch : g.process!.arch;
  if (raw === "x86_64" || raw === "x64") return "x86_64";
  if (raw === "aarch64" || raw === "arm64") return "aarch64";
  throw new Error(
    `Cannot load shm: the CPU architecture "${raw}" is not supported (x86_64 and aarch64 are)`,
  );
}

/** The CPU architecture this process runs on. */
export const arch: ArchName = detectArch();

/**
 * The largest `ArrayBuffer` the runtime can wrap around foreign memory, in bytes.
 *
 * Measured: Bun (JavaScriptCore) refuses more than 4 GiB in one buffer; Deno and Node (V8) accept any
 * safe integer length on 64-bit platforms.
 */
export const maxBufferSize: number = runtime === "bun" ? 2 ** 32 : Number.MAX_SAFE_INTEGER;
