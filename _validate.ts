/**
 * Argument checks shared by every backend; they run before any system call.
 *
 * @module
 */

import { maxBufferSize, runtime } from "./ffi/runtime.ts";

/** Describes a value for an error message without dumping large objects. */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number" || typeof value === "boolean" || value == null) return String(value);
  if (typeof value === "function") return `function ${value.name || "(anonymous)"}`;
  return Object.prototype.toString.call(value).slice(8, -1).toLowerCase();
}

/** Checks a byte size: a positive safe integer the runtime can wrap in one ArrayBuffer. */
export function checkSize(size: unknown, action: string, limit: number = maxBufferSize): number {
  if (typeof size !== "number") {
    throw new TypeError(`Cannot ${action}: size must be a number of bytes, got ${describe(size)}`);
  }
  if (!Number.isInteger(size) || size <= 0) {
    throw new RangeError(`Cannot ${action}: size must be a positive whole number of bytes, got ${size}`);
  }
  if (size > limit) {
    const why = limit === maxBufferSize && runtime === "bun"
      ? ` (Bun cannot wrap more than ${maxBufferSize} bytes in one ArrayBuffer)`
      : "";
    throw new RangeError(`Cannot ${action}: size ${size} is larger than the ${limit} bytes allowed${why}`);
  }
  return size;
}

/** Checks permission bits: an integer in 0..0o777. */
export function checkMode(mode: unknown, action: string): number {
  if (typeof mode !== "number") {
    throw new TypeError(`Cannot ${action}: mode must be a number such as 0o600, got ${describe(mode)}`);
  }
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(`Cannot ${action}: mode must be an integer from 0 to 0o777, got ${mode}`);
  }
  return mode;
}

/**
 * Checks a segment name and returns it without a leading `/`.
 *
 * One leading `/` is accepted (the C spelling of the same name) and dropped; any other `/`, a NUL,
 * a lone UTF-16 surrogate, an empty name, `.` and `..`, and names longer than `maxBytes` UTF-8
 * bytes are refused.
 */
export function checkName(name: unknown, action: string, maxBytes: number): string {
  if (typeof name !== "string") {
    throw new TypeError(`Cannot ${action}: the name must be a string, got ${describe(name)}`);
  }
  const bare = name.startsWith("/") ? name.slice(1) : name;
  if (bare.length === 0) {
    throw new TypeError(`Cannot ${action}: the name is empty`);
  }
  if (bare.includes("/")) {
    const shm = /^\/dev\/shm\/([^/]+)$/.exec(name);
    throw new TypeError(
      `Cannot ${action}: the name ${describe(name)} contains "/" (only one leading "/" is allowed)` +
        (shm ? `; did you mean "${shm[1]}"? Segments are named without /dev/shm/` : ""),
    );
  }
  if (!name.isWellFormed()) {
    throw new TypeError(
      `Cannot ${action}: the name ${describe(name)} contains a lone UTF-16 surrogate, which has no ` +
        `UTF-8 spelling (two such names would collide)`,
    );
  }
  if (bare.includes("\0")) {
    throw new TypeError(`Cannot ${action}: the name ${describe(name)} contains a NUL character`);
  }
  if (bare === "." || bare === "..") {
    throw new TypeError(`Cannot ${action}: "${bare}" is not a valid segment name`);
  }
  // A UTF-16 unit is at most 3 UTF-8 bytes: count bytes only for names that might be too long.
  const bytes = bare.length * 3 <= maxBytes ? 0 : new TextEncoder().encode(bare).length;
  if (bytes > maxBytes) {
    throw new TypeError(
      `Cannot ${action}: the name is ${bytes} bytes long, more than the ${maxBytes} allowed here`,
    );
  }
  return bare;
}

/** Checks an optional boolean option. */
export function checkBoolean(value: unknown, option: string, action: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    throw new TypeError(`Cannot ${action}: ${option} must be a boolean, got ${describe(value)}`);
  }
  return value;
}

/** Checks that an options argument is a plain object (or absent). */
export function checkOptions<T extends object>(options: unknown, action: string): Partial<T> {
  if (options === undefined) return {};
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(`Cannot ${action}: options must be an object, got ${describe(options)}`);
  }
  return options as Partial<T>;
}

/**
 * What every wait of this module takes: how long to wait at most, and a signal that ends the wait
 * early. The plain (async) form and the `*Sync` form of a call take the same options; a `*Sync`
 * call checks `signal` before it blocks and at each wake-up (nothing can run while it blocks).
 */
export interface WaitOptions {
  /**
   * Give up after this many milliseconds: a non-negative number, `Infinity` for no limit. Default:
   * wait as long as it takes. A wait that runs out throws a `TimeoutError` (except
   * `Condition.wait`, which returns `false`, as Python's and C++'s condition variables do).
   */
  timeout?: number;
  /** Aborting it ends the wait at once: the call rejects (or throws) with the signal's reason. */
  signal?: AbortSignal;
}

/** A wait's options, checked: `deadline` is a `performance.now()` time, `Infinity` for none. */
export interface CheckedWait {
  readonly timeout: number;
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * Checks a wait's options on entry, whatever path the call then takes: an object or undefined,
 * `timeout` a non-negative number (or `Infinity`), `signal` an `AbortSignal`. An already aborted
 * signal is not an error here; the caller decides (a `try*`-like fast path may still succeed).
 */
export function checkWaitOptions(options: unknown, action: string): CheckedWait {
  const o = checkOptions<WaitOptions>(options, action);
  const { timeout, signal } = o;
  if (timeout !== undefined) {
    if (typeof timeout !== "number") {
      throw new TypeError(
        `Cannot ${action}: timeout must be a number of milliseconds, got ${describe(timeout)}`,
      );
    }
    if (Number.isNaN(timeout) || timeout < 0) {
      throw new RangeError(
        `Cannot ${action}: timeout must be a non-negative number of milliseconds, got ${timeout}`,
      );
    }
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Cannot ${action}: signal must be an AbortSignal, got ${describe(signal)}`);
  }
  const limit = timeout ?? Infinity;
  return { timeout: limit, deadline: limit === Infinity ? Infinity : performance.now() + limit, signal };
}

/**
 * Throws a `TypeError` naming `what` when `view`'s memory is gone: its buffer was transferred, it
 * is a view of a closed segment, or of a loan already sent (a view past the end of a shrunk
 * buffer). Engines otherwise report this with their own wording ("detached ArrayBuffer") from deep
 * inside a copy, after part of the work. Such a view reads as empty, so only an empty one is
 * looked at: `at()` throws for a detached or out-of-bounds view and not for a truly empty one.
 */
export function checkAttached(view: ArrayBufferView, action: string, what: string): void {
  if (view.byteLength !== 0 || !ArrayBuffer.isView(view) || view instanceof DataView) return;
  try {
    typedArrayAt.call(view, 0);
  } catch {
    throw new TypeError(
      `Cannot ${action}: ${what} is detached (its ArrayBuffer was transferred, or it is a view of a ` +
        `closed segment, a sent loan or a released borrow)`,
    );
  }
}
const typedArrayAt =
  (Object.getPrototypeOf(Uint8Array.prototype) as { at(this: unknown, i: number): unknown }).at;

/**
 * `JSON.stringify(value)`, with the engine's error for a cycle, a bigint or a throwing `toJSON`
 * replaced by one that says what was attempted (the original is the `cause`). `undefined` when the
 * value has no JSON form (`undefined`, a function, a symbol): the caller words that refusal.
 */
export function toJSONText(value: unknown, action: string): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (error) {
    const why = typeof value === "bigint" || /bigint/i.test(String(error))
      ? "a bigint has no JSON form"
      : /cycl|circular/i.test(String(error))
      ? "it contains a cycle"
      : "JSON.stringify failed";
    throw new TypeError(`Cannot ${action}: the value cannot be written as JSON (${why})`, { cause: error });
  }
}

/** `JSON.parse(text)`, with the engine's `SyntaxError` replaced by one that says what was read. */
export function parseJSONText<T>(text: string, action: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    const sample = text.length > 40 ? JSON.stringify(text.slice(0, 40)) + "…" : JSON.stringify(text);
    throw new SyntaxError(`Cannot ${action}: it is not valid JSON (${sample})`, { cause: error });
  }
}

/** Checks the length of a loan from a channel or topic: a whole number of bytes from 0 to `max`. */
export function checkLoanLength(length: unknown, max: number, kind: string, name: string): void {
  if (typeof length !== "number") {
    throw new TypeError(
      `Cannot loan from ${kind}: the length must be a number of bytes, got ${describe(length)}`,
    );
  }
  if (!Number.isInteger(length) || length < 0 || length > max) {
    throw new RangeError(
      `Cannot loan from ${kind} "${name}": the length must be an integer from 0 to ${max}, got ${length}`,
    );
  }
}
