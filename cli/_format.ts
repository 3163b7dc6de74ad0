/**
 * Text helpers of the `shm` command line: argument parsing, number syntax, tables, hex dumps.
 *
 * @module
 */

/** A command-line mistake: exit code 2, with the message and a pointer to `--help`. */
export class UsageError extends Error {}

/** Parsed command line: positional words, options with values, and boolean flags. */
export interface Parsed {
  words: string[];
  values: Map<string, string[]>;
  flags: Set<string>;
}

/** Splits `args` by the options a command accepts; unknown options are a {@linkcode UsageError}. */
export function parseArgs(
  args: readonly string[],
  valued: readonly string[],
  flags: readonly string[],
): Parsed {
  const parsed: Parsed = { words: [], values: new Map(), flags: new Set() };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      parsed.words.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || /^-\d/.test(arg)) {
      parsed.words.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const option = eq > 0 ? arg.slice(0, eq) : arg;
    if (valued.includes(option)) {
      const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined) throw new UsageError(`${option} needs a value`);
      parsed.values.set(option, [...(parsed.values.get(option) ?? []), value]);
    } else if (flags.includes(option) && eq < 0) {
      parsed.flags.add(option);
    } else {
      throw new UsageError(`unknown option ${arg}`);
    }
  }
  return parsed;
}

/**
 * A non-negative integer from the command line: decimal, `0x` hex, `0o` octal, with an optional
 * binary suffix for sizes (`K`, `M`, `G`: 1024, 1024², 1024³; `KiB` etc. too).
 */
export function parseCount(text: string, what: string, allowSuffix: boolean): number {
  const m = /^(0x[0-9a-f]+|0o[0-7]+|\d+)(?:([kmg])(?:i?b)?)?$/i.exec(text.trim());
  if (!m || (m[2] && !allowSuffix)) throw new UsageError(`${what} must be a whole number, got "${text}"`);
  const base = Number(m[1]);
  const scale = m[2] ? 1024 ** ("kmg".indexOf(m[2].toLowerCase()) + 1) : 1;
  const value = base * scale;
  if (!Number.isSafeInteger(value)) throw new UsageError(`${what} ${text} is too large`);
  return value;
}

/**
 * A segment size: a positive whole number of bytes, with an optional binary suffix (`K`, `M`, `G`,
 * `T`, `P`: 1024 to 1024⁵; `KiB`, `kb` and the like too).
 */
export function parseSize(text: string): number {
  const t = text.trim();
  if (/^-/.test(t)) throw new UsageError(`SIZE must be a positive whole number of bytes, got "${text}"`);
  const m = /^(0x[0-9a-f]+|0o[0-7]+|\d+)(?:([kmgtp])(?:i?b)?)?$/i.exec(t);
  if (!m) {
    throw new UsageError(
      `SIZE must be a whole number of bytes, optionally with K, M, G, T or P (powers of 1024), got "${text}"`,
    );
  }
  const value = Number(m[1]) * (m[2] ? 1024 ** ("kmgtp".indexOf(m[2].toLowerCase()) + 1) : 1);
  if (value === 0) throw new UsageError(`size must be a positive whole number of bytes, got "${text}"`);
  if (!Number.isSafeInteger(value)) {
    throw new UsageError(
      `SIZE ${text} is more than ${Number.MAX_SAFE_INTEGER} bytes, the most this tool handles`,
    );
  }
  return value;
}

/** Permission bits, always octal: `600`, `0600` and `0o600` are the same. */
export function parseMode(text: string): number {
  const m = /^(?:0o|0)?([0-7]{1,3})$/i.exec(text.trim());
  if (!m) throw new UsageError(`mode must be octal permission bits such as 0o600, got "${text}"`);
  return parseInt(m[1]!, 8);
}

/** A System V key: decimal (may be negative, as key_t is signed) or `0x` hex as `ipcs` prints it. */
export function parseKey(text: string): number {
  const t = text.trim();
  if (/^0x[0-9a-f]{1,8}$/i.test(t)) return Number(t) | 0;
  if (/^-?\d+$/.test(t)) {
    const n = Number(t);
    if (n >= -0x8000_0000 && n <= 0xffff_ffff) return n | 0;
  }
  throw new UsageError(`a System V key is a 32-bit number such as 0x41010002 or 1090584578, got "${text}"`);
}

/** A left-aligned text table; numeric columns (listed in `right`) are right-aligned. */
export function table(
  header: readonly string[],
  rows: readonly string[][],
  right: ReadonlySet<number>,
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/**
 * `hexdump -C` style, fed in pieces: offset, 16 bytes in two groups of 8, printable ASCII between
 * bars; runs of identical full lines collapse to `*` (the last line is always shown); `end()` adds
 * a last line with the end offset. Lines go to `emit` as they are made, so a dump of any size
 * needs memory for one piece only.
 */
export class HexDump {
  readonly #emit: (lines: string[]) => void;
  #offset: number;
  /** Bytes of a row not yet complete (fewer than 16). */
  #carry = new Uint8Array(16);
  #carried = 0;
  /** The last complete row, held back until we know whether it is the last line. */
  #held = new Uint8Array(16);
  #holding = false;
  #previous = "";
  #starred = false;

  constructor(start: number, emit: (lines: string[]) => void) {
    this.#offset = start;
    this.#emit = emit;
  }

  /** Adds the next bytes of the dump. */
  push(bytes: Uint8Array): void {
    const lines: string[] = [];
    let i = 0;
    if (this.#carried > 0) {
      const take = Math.min(16 - this.#carried, bytes.length);
      this.#carry.set(bytes.subarray(0, take), this.#carried);
      this.#carried += take;
      i = take;
      if (this.#carried < 16) return;
      this.#row(this.#carry, lines);
      this.#carried = 0;
    }
    for (; i + 16 <= bytes.length; i += 16) this.#row(bytes.subarray(i, i + 16), lines);
    if (i < bytes.length) {
      this.#carry.set(bytes.subarray(i));
      this.#carried = bytes.length - i;
    }
    if (lines.length) this.#emit(lines);
  }

  /** Prints what is held back, then the end offset. */
  end(): void {
    const lines: string[] = [];
    if (this.#holding) this.#print(this.#held, this.#carried > 0, lines);
    if (this.#carried > 0) this.#print(this.#carry.subarray(0, this.#carried), false, lines);
    lines.push(offset(this.#offset));
    this.#emit(lines);
  }

  /** A complete row arrives: the one held before it is not the last, so it can be decided now. */
  #row(row: Uint8Array, lines: string[]): void {
    if (this.#holding) this.#print(this.#held, true, lines);
    this.#held.set(row);
    this.#holding = true;
  }

  /** Prints (or stars) one row; `collapsible` is false for the last line of the dump. */
  #print(row: Uint8Array, collapsible: boolean, lines: string[]): void {
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0"));
    const key = hex.join(" ");
    const at = this.#offset;
    this.#offset += row.length;
    if (row === this.#held) this.#holding = false;
    if (collapsible && row.length === 16 && key === this.#previous) {
      if (!this.#starred) lines.push("*");
      this.#starred = true;
      return;
    }
    this.#previous = key;
    this.#starred = false;
    const left = hex.slice(0, 8).join(" ").padEnd(23);
    const right = hex.slice(8).join(" ").padEnd(23);
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${offset(at)}  ${left}  ${right}  |${ascii}|`);
  }
}

/** {@linkcode HexDump} of `bytes` at once, as one string. */
export function hexDump(bytes: Uint8Array, start: number): string {
  const out: string[] = [];
  const dump = new HexDump(start, (lines) => out.push(...lines));
  dump.push(bytes);
  dump.end();
  return out.join("\n");
}

function offset(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** A size for people: exact bytes, and KiB/MiB/GiB when that is shorter. */
export function humanSize(bytes: number): string {
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = "";
  for (const u of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = u;
  }
  return unit ? `${bytes} (${Number.isInteger(value) ? value : value.toFixed(1)} ${unit})` : String(bytes);
}
