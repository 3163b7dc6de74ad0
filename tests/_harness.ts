/**
 * One test file, three runners: `Deno.test` under Deno, `bun:test` under Bun, `node:test` under Node.
 *
 * @module
 */

import { runtime } from "../ffi/runtime.ts";

/** Per-test options. */
export interface TestOptions {
  /** Milliseconds before the test fails (Bun, Node) — Deno has no per-test timeout. Default 120 s. */
  timeout?: number;
  /** A reason to skip this test; the reason is printed. Falsy runs it. */
  skip?: string | false | undefined;
}

type Fn = () => void | Promise<void>;
interface BunTest {
  test: ((name: string, fn: Fn, timeout?: number) => void) & { skip: (name: string, fn: Fn) => void };
}

interface NodeTest {
  test(name: string, options: { timeout: number; skip: string | false }, fn: Fn): unknown;
}

const bunSpecifier = "bun:test";
const bunTest: BunTest | undefined = runtime === "bun" ? (await import(bunSpecifier)) as BunTest : undefined;
const nodeTest: NodeTest | undefined = runtime === "node"
  ? (await import("node:test")) as unknown as NodeTest
  : undefined;

/** Registers a test with the runtime's own runner. */
export function test(name: string, fn: Fn, options: TestOptions = {}): void {
  const timeout = options.timeout ?? 120_000;
  if (options.skip) {
    console.log(`skipping "${name}": ${options.skip}`);
  }
  if (bunTest) {
    if (options.skip) bunTest.test.skip(name, fn);
    else bunTest.test(name, fn, timeout);
    return;
  }
  if (nodeTest) {
    nodeTest.test(name, { timeout, skip: options.skip || false }, fn);
    return;
  }
  Deno.test({
    name,
    fn,
    ignore: Boolean(options.skip),
    // Child processes are awaited explicitly; the sanitizers misread node:child_process handles.
    sanitizeOps: false,
    sanitizeResources: false,
  });
}

/** The runtime the tests run under. */
export { runtime };
