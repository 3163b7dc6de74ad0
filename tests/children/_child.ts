/**
 * What the peer processes of the tests share: their arguments, errors reported as JSON, and a
 * bounded spin on a shared Int32.
 *
 * @module
 */

import process from "node:process";
import { ShmError } from "../../mod.ts";

/** The command-line arguments after the script, in either runtime. */
export function childArgs(): string[] {
  return process.argv.slice(2);
}

/** Argument `i` of `args`, which `what` (the peer and its mode) needs: a TypeError when it is missing. */
export function requiredArg(args: readonly string[], i: number, what: string): string {
  const value = args[i];
  if (value === undefined) throw new TypeError(`${what}: argument ${i} is missing`);
  return value;
}

/** An error as one JSON line: class name, code, call, message, and whether it is a ShmError. */
export function errorJson(error: unknown): string {
  const e = error as ShmError;
  return JSON.stringify({
    error: e.name,
    code: e.code,
    syscall: e.syscall,
    message: e.message,
    isShmError: error instanceof ShmError,
  });
}

/** Spins until `cell[index]` holds `value`; throws after `ms` milliseconds. */
export function spinUntil(cell: Int32Array, index: number, value: number, ms = 20_000): void {
  const deadline = Date.now() + ms;
  while (Atomics.load(cell, index) !== value) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for cell ${index} to become ${value}`);
  }
}
