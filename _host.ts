/**
 * Everything that differs between the JavaScript runtimes outside FFI: permissions, and (as the
 * host layer grows) the process id, signals, exit hooks, environment and how an async wait sleeps.
 * A new runtime is added here and in `ffi/`, nowhere else.
 *
 * @module
 */

import { runtime } from "./ffi/runtime.ts";
import { PermissionDeniedError } from "./errors.ts";

interface DenoPermissions {
  permissions: { querySync(d: { name: "read" | "write"; path: string }): { state: string } };
}

/**
 * Under Deno, refuses to touch `path` unless this process holds `--allow-read` (and, for `write`,
 * `--allow-write`) for it. FFI calls bypass Deno's own checks, so this module checks for them.
 * Does nothing under Bun, which has no permissions.
 *
 * @throws {PermissionDeniedError} with code `EACCES` and syscall `Deno.permissions`
 */
export function checkDenoPermission(kind: "read" | "write", path: string, action: string): void {
  if (runtime !== "deno") return;
  const deno = (globalThis as unknown as { Deno: DenoPermissions }).Deno;
  const state = deno.permissions.querySync({ name: kind, path }).state;
  if (state === "granted") return;
  throw new PermissionDeniedError(
    `Cannot ${action}: Deno has no ${kind} permission for it (run with --allow-${kind}, or ` +
      `--allow-${kind}=${path}); FFI bypasses Deno's permission checks, so shm checks them itself`,
    { code: "EACCES", errno: 13, syscall: "Deno.permissions", segment: path },
  );
}
