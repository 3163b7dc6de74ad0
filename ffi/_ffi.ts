/**
 * The one place that knows how each runtime spells FFI.
 *
 * Symbol tables are written once, in Deno's format (`as const satisfies ForeignLibraryInterface`),
 * and bound here through `Deno.dlopen` or `bun:ffi`'s `dlopen`. Pointers are opaque values of type
 * {@linkcode Pointer}: a Deno pointer object (or null) under Deno, a number under Bun. Code outside this
 * file only ever passes them along or goes through the helpers below, so it runs unchanged on both.
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

/** An opaque native pointer, as the current runtime represents it (a number under Bun, at run time). */
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

/**
 * Opens the first of `paths` that loads and binds `symbols` from it.
 *
 * @throws {Error} naming every path tried when none loads; under Deno, a missing `--allow-ffi`
 * permission is reported as such.
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
            args: d.parameters.map((t) => BUN_ARG[t as string] ?? fail(name, t)),
            returns: BUN_RESULT[d.result as string] ?? fail(name, d.result),
          };
        }
        const lib = bun.dlopen(path, converted);
        return lib as unknown as LoadedLibrary<S>;
      }
      return deno!.dlopen(path, symbols) as unknown as LoadedLibrary<S>;
    } catch (error) {
      if (runtime === "deno" && isPermissionError(error)) {
        throw new Error(
          `Cannot load ${path}: shm calls the operating system through FFI, so Deno must run with --allow-ffi`,
          { cause: error },
        );
      }
      failures.push(`${path}: ${(error as Error).message}`);
    }
  }
  throw new Error(`Cannot load a native library for shm; tried ${failures.join("; ")}`);
}

function fail(symbol: string, type: unknown): never {
  throw new TypeError(`Cannot bind ${symbol}: the FFI type ${String(type)} has no bun:ffi equivalent`);
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
  return addressOf(deno!.UnsafePointer.of(view));
}

/** A pointer to `address`, as the runtime wants it in an argument. */
export function pointerAt(address: bigint): Pointer {
  if (bun) return (address === 0n ? null : Number(address)) as unknown as Pointer;
  return deno!.UnsafePointer.create(address);
}

/**
 * An `ArrayBuffer` over `byteLength` bytes of foreign memory at `pointer`, without a copy.
 * Nothing is freed when it is collected: the caller owns the memory and must detach the buffer
 * (`transfer(0)`) before releasing it.
 */
export function foreignBuffer(pointer: Pointer, byteLength: number): ArrayBuffer {
  if (bun) return bun.toArrayBuffer(pointer as unknown as number, 0, byteLength);
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
