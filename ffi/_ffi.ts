/**
 * The one place that knows how each runtime spells FFI.
 *
 * Symbol tables are written once, in Deno's format (`as const satisfies ForeignLibraryInterface`),
 * and bound here through `Deno.dlopen`, `bun:ffi`'s `dlopen` or `node:ffi`'s `dlopen` (Node 26.1+).
 * Pointers are opaque values of type {@linkcode Pointer}: a Deno pointer object (or null) under Deno, a
 * number under Bun, a bigint (or null) under Node. Code outside this file only ever passes them along or
 * goes through the helpers below, so it runs unchanged on all three.
 *
 * @module
 */

import { runtime } from "./runtime.ts";

// The FFI types are spelled here rather than taken from the `Deno` namespace, so that a project
// with Bun's types (and no Deno types) type-checks this module. They match Deno's own.

/** A C type as an FFI symbol table names it (Deno's spelling; `bun:ffi`'s is derived from it). */
export type NativeType =
  | "i8"
  | "u8"
  | "i16"
  | "u16"
  | "i32"
  | "u32"
  | "i64"
  | "u64"
  | "isize"
  | "usize"
  | "f32"
  | "f64"
  | "bool"
  | "pointer"
  | "buffer"
  | "function";

/** A C result type: a {@linkcode NativeType} or `void`. */
export type NativeResultType = NativeType | "void";

/** One function of a symbol table: its C parameter and result types. */
export interface ForeignFunction {
  readonly parameters: readonly NativeType[];
  readonly result: NativeResultType;
  /** Deno: run the call on a worker thread and return a Promise. */
  readonly nonblocking?: boolean;
}

/** A symbol table: function name -> its signature. */
export type ForeignLibraryInterface = Readonly<Record<string, ForeignFunction>>;

declare const pointerBrand: unique symbol;
/** A native pointer as Deno represents it: an opaque object. */
export type PointerObject = { readonly [pointerBrand]: unknown };
/** A native pointer or null, as Deno types it. */
export type PointerValue = PointerObject | null;

/** An opaque native pointer, as the current runtime represents it (a number under Bun, a bigint under Node). */
export type Pointer = PointerValue;

type Wide = "i64" | "u64" | "isize" | "usize";
type ParameterValue<T> = T extends Wide ? number | bigint
  : T extends "pointer" | "function" ? PointerValue
  : T extends "buffer" ? ArrayBufferView | ArrayBuffer | null
  : T extends "bool" ? boolean
  : number;
type ResultValue<T> = T extends "void" ? void
  : T extends Wide ? number | bigint
  : T extends "pointer" | "function" | "buffer" ? PointerValue
  : T extends "bool" ? boolean
  : number;
type Parameters_<P extends readonly NativeType[]> = { -readonly [K in keyof P]: ParameterValue<P[K]> };
type BoundFunction<F extends ForeignFunction> = (
  ...args: Parameters_<F["parameters"]>
) => F extends { readonly nonblocking: true } ? Promise<ResultValue<F["result"]>> : ResultValue<F["result"]>;

/** The symbols of a library bound with {@linkcode bindLibrary}. */
export type Bound<S extends ForeignLibraryInterface> = { readonly [K in keyof S]: BoundFunction<S[K]> };

/** A loaded library: its symbols and a way to release it. */
export interface LoadedLibrary<S extends ForeignLibraryInterface> {
  readonly symbols: Bound<S>;
  close(): void;
}

/** What this file uses of the `Deno` global, reached at run time. */
interface DenoFFI {
  dlopen(path: string, symbols: ForeignLibraryInterface): { symbols: unknown; close(): void };
  UnsafePointer: {
    value(pointer: PointerObject): number | bigint;
    create(address: bigint): PointerValue;
    of(value: ArrayBufferView | ArrayBuffer): PointerValue;
  };
  UnsafePointerView: { getArrayBuffer(pointer: PointerObject, byteLength: number): ArrayBuffer };
  errors: Record<string, unknown>;
}
const deno = runtime === "deno" ? (globalThis as unknown as { Deno: DenoFFI }).Deno : undefined;

interface BunFFI {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void };
  toArrayBuffer(ptr: number, byteOffset: number, byteLength: number): ArrayBuffer;
  ptr(view: ArrayBufferView): number;
  read: {
    i32(ptr: number, offset: number): number;
    u32(ptr: number, offset: number): number;
  };
}

// `bun:ffi` exists only under Bun; the specifier sits in a variable so Deno never tries to resolve it.
const bunSpecifier = "bun:ffi";
const bun: BunFFI | undefined = runtime === "bun" ? (await import(bunSpecifier)) as BunFFI : undefined;

// Deno type names -> bun:ffi type names. 64-bit integer results come back as numbers when they fit.
const BUN_ARG: Record<string, string> = {
  i8: "i8",
  u8: "u8",
  i16: "i16",
  u16: "u16",
  i32: "i32",
  u32: "u32",
  i64: "i64",
  u64: "u64",
  isize: "i64",
  usize: "u64",
  f32: "f32",
  f64: "f64",
  pointer: "ptr",
  buffer: "ptr",
  void: "void",
};
const BUN_RESULT: Record<string, string> = {
  ...BUN_ARG,
  i64: "i64_fast",
  u64: "u64_fast",
  isize: "i64_fast",
  usize: "u64_fast",
};

/** What this file uses of `node:ffi` (Node 26.1+). */
interface NodeFFI {
  dlopen(
    path: string,
    symbols: Record<string, { arguments: string[]; return: string }>,
  ): { lib: { close(): void }; functions: Record<string, (...args: unknown[]) => unknown> };
  toArrayBuffer(pointer: bigint, byteLength: number, copy: boolean): ArrayBuffer;
  getRawPointer(view: ArrayBufferView | ArrayBuffer): bigint;
}

interface NodeProcess {
  versions: { node: string };
  getBuiltinModule?(id: string): unknown;
}

/**
 * `node:ffi`, or a clear error: it exists from Node 26.1, behind `--experimental-ffi` (on by default in
 * later releases, and off with `--no-experimental-ffi`).
 */
function loadNodeFFI(): NodeFFI {
  const proc = (globalThis as unknown as { process: NodeProcess }).process;
  const version = proc.versions.node;
  const [major = 0, minor = 0] = version.split(".").map(Number);
  const recent = major > 26 || (major === 26 && minor >= 1);
  const ffi = recent ? proc.getBuiltinModule?.("node:ffi") as NodeFFI | undefined : undefined;
  if (ffi) return ffi;
  throw new Error(
    `Cannot load shm: under Node.js it calls the operating system through node:ffi, which needs ` +
      (recent
        ? `the --experimental-ffi flag (this Node ${version} runs without it): run node --experimental-ffi`
        : `Node 26.1 or later run with --experimental-ffi (this is Node ${version})`),
  );
}

const node: NodeFFI | undefined = runtime === "node" ? loadNodeFFI() : undefined;

// node:ffi type names: bun:ffi's, but pointers and buffers keep Deno's spelling.
const NODE_TYPE: Record<string, string> = { ...BUN_ARG, pointer: "pointer", buffer: "buffer" };

// node:ffi checks every integer argument strictly (a number for a 64-bit one, -0, or a value out of
// range throws) where Deno and Bun convert as C would: arguments are converted here the same way.
type Convert = (value: unknown) => unknown;
const toI64: Convert = (v) =>
  typeof v === "bigint" ? BigInt.asIntN(64, v) : BigInt.asIntN(64, BigInt(v as number));
const toU64: Convert = (v) =>
  typeof v === "bigint" ? BigInt.asUintN(64, v) : BigInt.asUintN(64, BigInt(v as number));
const NODE_CONVERT: Record<string, Convert | undefined> = {
  i8: (v) => ((v as number) << 24) >> 24,
  u8: (v) => (v as number) & 0xff,
  i16: (v) => ((v as number) << 16) >> 16,
  u16: (v) => (v as number) & 0xffff,
  i32: (v) => (v as number) | 0,
  u32: (v) => (v as number) >>> 0,
  i64: toI64,
  u64: toU64,
  isize: toI64,
  usize: toU64,
  // A Bun-style numeric address, or Deno's null: node:ffi wants a bigint or null.
  pointer: (v) => typeof v === "number" ? BigInt(v) : v,
};

const same: Convert = (v) => v;
const nullIfZero = (r: unknown) => r === 0n ? null : r;

/** `fn` with argument `i` converted by `c[i]` first; without rest arguments up to 7 parameters (the most here). */
function convertingArguments(
  fn: (...args: unknown[]) => unknown,
  c: Convert[],
): (...args: unknown[]) => unknown {
  const [c0 = same, c1 = same, c2 = same, c3 = same, c4 = same, c5 = same, c6 = same] = c;
  switch (c.length) {
    case 0:
      return fn;
    case 1:
      return (a) => fn(c0(a));
    case 2:
      return (a, b) => fn(c0(a), c1(b));
    case 3:
      return (a, b, d) => fn(c0(a), c1(b), c2(d));
    case 4:
      return (a, b, d, e) => fn(c0(a), c1(b), c2(d), c3(e));
    case 5:
      return (a, b, d, e, f) => fn(c0(a), c1(b), c2(d), c3(e), c4(f));
    case 6:
      return (a, b, d, e, f, g) => fn(c0(a), c1(b), c2(d), c3(e), c4(f), c5(g));
    case 7:
      return (a, b, d, e, f, g, h) => fn(c0(a), c1(b), c2(d), c3(e), c4(f), c5(g), c6(h));
    default:
      return (...args) => fn(...args.map((v, i) => c[i]!(v)));
  }
}

/** Binds `symbols` through node:ffi, converting arguments as Deno does and NULL results to null. */
function bindNode(ffi: NodeFFI, path: string, symbols: ForeignLibraryInterface): LoadedLibrary<never> {
  const converted: Record<string, { arguments: string[]; return: string }> = {};
  for (const [name, def] of Object.entries(symbols)) {
    converted[name] = {
      arguments: def.parameters.map((t) => NODE_TYPE[t] ?? fail(name, t, "node:ffi")),
      return: NODE_TYPE[def.result] ?? fail(name, def.result, "node:ffi"),
    };
  }
  const { lib, functions } = ffi.dlopen(path, converted);
  const bound: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(symbols)) {
    const raw = functions[name]!; // dlopen bound every name it was given
    const fn = def.result === "pointer" ? (...args: unknown[]) => nullIfZero(raw(...args)) : raw;
    bound[name] = convertingArguments(fn, def.parameters.map((t) => NODE_CONVERT[t] ?? same));
  }
  let open = true;
  return {
    symbols: bound as never,
    close() {
      if (open) lib.close();
      open = false;
    },
  };
}

/**
 * Opens the first of `paths` that loads and binds `symbols` from it.
 *
 * @throws {Error} naming every path tried when none loads; under Deno, and under Node's permission
 * model, a missing `--allow-ffi` permission is reported as such.
 */
export function bindLibrary<const S extends ForeignLibraryInterface>(
  paths: readonly string[],
  symbols: S,
): LoadedLibrary<S> {
  const failures: string[] = [];
  for (const path of paths) {
    try {
      if (bun) {
        const converted: Record<string, { args: string[]; returns: string }> = {};
        for (const [name, def] of Object.entries(symbols)) {
          const d = def as ForeignFunction;
          converted[name] = {
            args: d.parameters.map((t) => BUN_ARG[t as string] ?? fail(name, t, "bun:ffi")),
            returns: BUN_RESULT[d.result as string] ?? fail(name, d.result, "bun:ffi"),
          };
        }
        const lib = bun.dlopen(path, converted);
        return lib as unknown as LoadedLibrary<S>;
      }
      if (node) return bindNode(node, path, symbols) as unknown as LoadedLibrary<S>;
      return deno!.dlopen(path, symbols) as unknown as LoadedLibrary<S>;
    } catch (error) {
      if (runtime === "deno" && isPermissionError(error)) {
        throw new Error(
          `Cannot load ${path}: shm calls the operating system through FFI, so Deno must run with --allow-ffi`,
          { cause: error },
        );
      }
      if (runtime === "node" && (error as { code?: unknown }).code === "ERR_ACCESS_DENIED") {
        throw new Error(
          `Cannot load ${path}: shm calls the operating system through FFI, and Node's permission model ` +
            `(--permission) is on: run Node with --allow-ffi too`,
          { cause: error },
        );
      }
      failures.push(`${path}: ${(error as Error).message}`);
    }
  }
  throw new Error(`Cannot load a native library for shm; tried ${failures.join("; ")}`);
}

function fail(symbol: string, type: unknown, ffi: string): never {
  throw new TypeError(`Cannot bind ${symbol}: the FFI type ${String(type)} has no ${ffi} equivalent`);
}

function isPermissionError(error: unknown): boolean {
  const errors = deno?.errors;
  if (!errors) return false;
  for (const key of ["NotCapable", "PermissionDenied"]) {
    const cls = errors[key] as (new () => unknown) | undefined;
    if (cls && error instanceof cls) return true;
  }
  return false;
}

/** The numeric address of a pointer (0n for null). */
export function addressOf(pointer: Pointer | number | bigint): bigint {
  if (pointer === null) return 0n;
  if (typeof pointer === "number" || typeof pointer === "bigint") return BigInt(pointer);
  return BigInt(deno!.UnsafePointer.value(pointer));
}

/**
 * The address of a typed array's first byte. The memory stays put while the array lives: the
 * caller keeps it referenced for as long as native code (on any thread) may use the address.
 */
export function addressOfView(view: ArrayBufferView): bigint {
  if (bun) return BigInt(bun.ptr(view));
  if (node) return node.getRawPointer(view);
  return addressOf(deno!.UnsafePointer.of(view));
}

/** A pointer to `address`, as the runtime wants it in an argument. */
export function pointerAt(address: bigint): Pointer {
  if (bun) return (address === 0n ? null : Number(address)) as unknown as Pointer;
  if (node) return (address === 0n ? null : address) as unknown as Pointer;
  return deno!.UnsafePointer.create(address);
}

/**
 * An `ArrayBuffer` over `byteLength` bytes of foreign memory at `pointer`, without a copy.
 * Nothing is freed when it is collected: the caller owns the memory and must detach the buffer
 * (`transfer(0)`) before releasing it.
 */
export function foreignBuffer(pointer: Pointer, byteLength: number): ArrayBuffer {
  if (bun) return bun.toArrayBuffer(pointer as unknown as number, 0, byteLength);
  if (node) return node.toArrayBuffer(addressOf(pointer), byteLength, false);
  return deno!.UnsafePointerView.getArrayBuffer(pointer!, byteLength);
}

/** NUL-terminated UTF-8 bytes of `text`, ready to pass as a `buffer` argument. */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  const n = text.length;
  const out = new Uint8Array(n * 3 + 1);
  // Names are nearly always ASCII: copy code units directly (TextEncoder costs ~0.5 µs a call in Deno).
  for (let i = 0; i < n; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x80) {
      const { written } = utf8.encodeInto(text, out);
      return out.subarray(0, written + 1);
    }
    out[i] = unit;
  }
  return out.subarray(0, n + 1);
}
const utf8 = new TextEncoder();

/** NUL-terminated UTF-16 code units of `text` (a Windows `LPCWSTR`), ready to pass as a `buffer` argument. */
export function wideString(text: string): Uint16Array<ArrayBuffer> {
  const out = new Uint16Array(text.length + 1);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
