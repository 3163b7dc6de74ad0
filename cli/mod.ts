/**
 * `shm`: list, inspect, dump, create and remove shared memory segments from the command line —
 * `ipcs` and `ipcrm` for POSIX (`/dev/shm`) and System V segments alike.
 *
 * ```sh
 * deno run -A jsr:@x/shm/cli ls            # or: deno run -A cli/mod.ts ls / bun ./cli.ts ls
 * deno run -A jsr:@x/shm/cli info psm_1a2b3c4d
 * deno run -A jsr:@x/shm/cli dump psm_1a2b3c4d --offset 0 --length 64
 * deno run -A jsr:@x/shm/cli create jobs 1M --mode 0o640
 * deno run -A jsr:@x/shm/cli rm jobs --key 0x41010002
 * ```
 *
 * Every listing takes `--json`. Exit codes: 0 done, 1 no such segment, 2 bad command line,
 * 3 permission denied, 4 already exists, 5 any other failure.
 *
 * @module
 */

import process from "node:process";
import { libc } from "../ffi/libc.ts";
import { os } from "../ffi/runtime.ts";
import { AlreadyExistsError, NotFoundError, osError, PermissionDeniedError } from "../errors.ts";
import { SharedMemory } from "../shared_memory.ts";
import { keyHex, removeSysv, statSysv } from "../platform/sysv.ts";
import {
  hasShmDir,
  hasSysvTable,
  listPosix,
  listSysv,
  posixInfo,
  type SegmentInfo,
  userName,
} from "./_list.ts";
import {
  hexDump,
  humanSize,
  parseArgs,
  parseCount,
  parseKey,
  parseMode,
  table,
  UsageError,
} from "./_format.ts";

/**
 * The exit codes of the `shm` command.
 *
 * @example Tell "not there" from "not allowed" in a script
 * ```ts
 * import { EXIT, main } from "@x/shm/cli";
 *
 * const code = main(["info", "jobs"]);
 * if (code === EXIT.NOT_FOUND) console.log("no segment named jobs");
 * if (code === EXIT.PERMISSION_DENIED) console.log("ask its owner");
 * ```
 */
export const EXIT: {
  readonly OK: 0;
  readonly NOT_FOUND: 1;
  readonly USAGE: 2;
  readonly PERMISSION_DENIED: 3;
  readonly ALREADY_EXISTS: 4;
  readonly FAILED: 5;
} = { OK: 0, NOT_FOUND: 1, USAGE: 2, PERMISSION_DENIED: 3, ALREADY_EXISTS: 4, FAILED: 5 };

const HELP = `shm: list, inspect and manage shared memory segments (POSIX /dev/shm and System V)

Usage:
  shm ls [--posix | --sysv] [--json]
      Every segment: backend, name or key, id, size, mode, owner, attach count, modified time.
      POSIX attach counts are the processes that map the file (as far as /proc lets this user see).
  shm info NAME | --key KEY | --id ID [--json]
      One segment in detail.
  shm dump NAME | --key KEY | --id ID [--offset N] [--length N] [--json]
      Hex dump (hexdump -C style; repeated lines shown as *). Attaches read-only.
  shm create NAME SIZE [--mode MODE] [--json]
  shm create --key KEY SIZE [--mode MODE] [--json]
  shm create --sysv SIZE [--mode MODE] [--json]       (IPC_PRIVATE: prints the new shmid)
      SIZE accepts K, M, G suffixes (powers of 1024); MODE is octal (default 0o600).
  shm rm NAME... [--key KEY]... [--id ID]...
      Removes POSIX names (shm_unlink) and System V segments (shmctl IPC_RMID: they live until
      their last detach). Keeps going after a failure and exits with the first failure's code.
  shm help | --help | -h

NAME is a POSIX segment name as Python and C use it (a leading / is optional). KEY is a System V
key as ipcs prints it (0x41010002) or in decimal; ID is a shmid.

Exit codes: 0 done, 1 no such segment, 2 bad command line, 3 permission denied, 4 already exists,
5 any other failure.`;

/**
 * Output sinks, so the command can be driven without a terminal.
 *
 * @example Capture what `shm ls --json` prints
 * ```ts
 * import { type Io, main } from "@x/shm/cli";
 *
 * let out = "";
 * const io: Io = { out: (text) => (out += text + "\n"), err: (text) => console.error(text) };
 * main(["ls", "--json"], io);
 * console.log(JSON.parse(out).length, "segments");
 * ```
 */
export interface Io {
  /** Writes a line (or lines) of normal output. */
  out(text: string): void;
  /** Writes a line of error output. */
  err(text: string): void;
}

const consoleIo: Io = { out: (t) => console.log(t), err: (t) => console.error(t) };

/**
 * Runs one `shm` command line and returns its exit code (see {@linkcode EXIT}). Output goes to
 * `io` (standard output and error by default).
 *
 * @example
 * ```ts
 * import { main } from "@x/shm/cli";
 *
 * const code = main(["ls", "--json"]);
 * console.log(code); // 0
 * ```
 */
export function main(args: readonly string[], io: Io = consoleIo): number {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case undefined:
      case "help":
      case "--help":
      case "-h":
        io.out(HELP);
        return command === undefined ? EXIT.USAGE : EXIT.OK;
      case "ls":
      case "list":
        return ls(rest, io);
      case "info":
        return info(rest, io);
      case "dump":
        return dump(rest, io);
      case "create":
        return create(rest, io);
      case "rm":
      case "remove":
        return rm(rest, io);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    return report(error, io);
  }
}

function wantsHelp(args: readonly string[], io: Io): boolean {
  if (!args.includes("--help") && !args.includes("-h")) return false;
  io.out(HELP);
  return true;
}

/** Prints an error the way the command line shows it and gives its exit code. */
function report(error: unknown, io: Io): number {
  if (error instanceof UsageError) {
    io.err(`shm: ${error.message}\nRun "shm --help" for usage.`);
    return EXIT.USAGE;
  }
  const message = error instanceof Error ? error.message : String(error);
  io.err(`shm: ${message}`);
  if (error instanceof NotFoundError) return EXIT.NOT_FOUND;
  if (error instanceof PermissionDeniedError) return EXIT.PERMISSION_DENIED;
  if (error instanceof AlreadyExistsError) return EXIT.ALREADY_EXISTS;
  if (error instanceof TypeError || error instanceof RangeError) return EXIT.USAGE;
  if (isDenoPermissionError(error)) return EXIT.PERMISSION_DENIED;
  return EXIT.FAILED;
}

function isDenoPermissionError(error: unknown): boolean {
  const errors = (globalThis as { Deno?: { errors: Record<string, unknown> } }).Deno?.errors;
  return ["NotCapable", "PermissionDenied"].some((k) => {
    const cls = errors?.[k] as (new () => unknown) | undefined;
    return cls !== undefined && error instanceof cls;
  });
}

// --- ls ----------------------------------------------------------------------------------------

function ls(args: readonly string[], io: Io): number {
  if (wantsHelp(args, io)) return EXIT.OK;
  const a = parseArgs(args, [], ["--json", "--posix", "--sysv"]);
  if (a.words.length) throw new UsageError(`ls takes no names, got "${a.words[0]}" (see shm info)`);
  const both = !a.flags.has("--posix") && !a.flags.has("--sysv");
  const rows: SegmentInfo[] = [];
  const notes: string[] = [];
  if (both || a.flags.has("--posix")) {
    if (hasShmDir()) rows.push(...listPosix());
    else notes.push("POSIX segments cannot be listed on this system (no /dev/shm); use shm info NAME");
  }
  if (both || a.flags.has("--sysv")) {
    if (hasSysvTable()) rows.push(...listSysv());
    else notes.push("System V segments cannot be listed on this system (no /proc/sysvipc/shm); try ipcs -m");
  }
  for (const note of notes) io.err(`shm: ${note}`);
  if (a.flags.has("--json")) {
    io.out(JSON.stringify(rows, null, 2));
    return EXIT.OK;
  }
  if (rows.length === 0) {
    io.out("no shared memory segments");
    return EXIT.OK;
  }
  io.out(table(
    ["BACKEND", "NAME", "ID", "SIZE", "MODE", "OWNER", "ATTACHED", "MODIFIED"],
    rows.map((r) => [
      r.kind === "semaphore" ? "posix-sem" : r.backend,
      r.name,
      r.id === undefined ? "-" : String(r.id),
      String(r.size),
      r.mode,
      r.owner,
      r.attached === null ? "?" : String(r.attached),
      r.modified.replace(/\.\d{3}Z$/, "Z"),
    ]),
    new Set([2, 3, 6]),
  ));
  return EXIT.OK;
}

// --- info --------------------------------------------------------------------------------------

interface Target {
  kind: "posix" | "key" | "id";
  posix?: string;
  value?: number;
  label: string;
}

function targets(a: ReturnType<typeof parseArgs>): Target[] {
  const out: Target[] = a.words.map((w) => ({ kind: "posix", posix: w.replace(/^\//, ""), label: `"${w}"` }));
  for (const k of a.values.get("--key") ?? []) {
    const key = parseKey(k);
    if (key === 0) throw new UsageError("key 0 is IPC_PRIVATE, which names no segment: use --id");
    out.push({ kind: "key", value: key, label: `key ${keyHex(key)}` });
  }
  for (const i of a.values.get("--id") ?? []) {
    const id = parseCount(i, "a shmid", false);
    out.push({ kind: "id", value: id, label: `shmid ${id}` });
  }
  return out;
}

function single(a: ReturnType<typeof parseArgs>, command: string): Target {
  const t = targets(a);
  if (t.length !== 1) throw new UsageError(`${command} takes one segment: NAME, --key KEY or --id ID`);
  return t[0];
}

/** The System V segment for a key or id, from /proc (Linux) or IPC_STAT elsewhere. */
function sysvInfo(target: Target): SegmentInfo {
  if (hasSysvTable()) {
    const found = listSysv().find((s) =>
      target.kind === "id" ? s.id === target.value : s.key === keyHex(target.value!)
    );
    if (!found) throw notFound(target);
    return found;
  }
  const id = target.kind === "id"
    ? target.value!
    : shmidOf(target.value!, `read System V segment ${target.label}`);
  const st = statSysv(id, `read System V segment ${target.label}`, target.label);
  return {
    backend: "sysv",
    name: st.key === 0 ? `shmid ${id}` : keyHex(st.key),
    key: keyHex(st.key),
    id,
    size: st.size,
    mode: "0o" + st.mode.toString(8).padStart(3, "0"),
    owner: userName(st.uid),
    uid: st.uid,
    attached: st.attachCount,
    modified: st.changeTime.toISOString(),
    creatorPid: st.creatorPid,
    lastPid: st.lastPid,
  };
}

function shmidOf(key: number, action: string): number {
  const lib = libc();
  const id = lib.shmget(key, 0n, 0);
  if (id < 0) throw osError(lib.errno(), "shmget", action, keyHex(key));
  return id;
}

function notFound(target: Target): NotFoundError {
  const where = target.kind === "posix"
    ? `no POSIX shared memory segment named ${target.label}` +
      (hasShmDir() ? ` (/dev/shm/${target.posix} does not exist)` : "")
    : `no System V shared memory segment with ${target.label}`;
  return new NotFoundError(`Cannot find the segment: ${where}`, {
    code: "ENOENT",
    errno: 2,
    syscall: target.kind === "posix" ? "stat" : "shmget",
    segment: target.posix ?? target.label,
  });
}

function info(args: readonly string[], io: Io): number {
  if (wantsHelp(args, io)) return EXIT.OK;
  const a = parseArgs(args, ["--key", "--id"], ["--json"]);
  const target = single(a, "info");
  let found: SegmentInfo;
  if (target.kind === "posix") {
    if (hasShmDir()) {
      const i = posixInfo(target.posix!);
      if (!i) throw notFound(target);
      found = i;
    } else {
      // No file system view (macOS): what an attach can tell.
      using shm = SharedMemory.open(target.posix!, { readOnly: true });
      found = {
        backend: "posix",
        name: shm.name,
        size: shm.size,
        mode: "?",
        owner: "?",
        uid: -1,
        attached: null,
        modified: "?",
      };
    }
  } else {
    found = sysvInfo(target);
  }
  if (a.flags.has("--json")) {
    io.out(JSON.stringify(found, null, 2));
    return EXIT.OK;
  }
  const lines: [string, string][] = [
    ["backend", found.kind === "semaphore" ? "posix (named semaphore)" : found.backend],
    ["name", found.name],
  ];
  if (found.backend === "posix" && hasShmDir()) lines.push(["path", `/dev/shm/${found.name}`]);
  if (found.key !== undefined) lines.push(["key", found.key]);
  if (found.id !== undefined) lines.push(["id", String(found.id)]);
  lines.push(
    ["size", humanSize(found.size)],
    ["mode", found.mode],
    ["owner", found.uid >= 0 ? `${found.owner} (uid ${found.uid})` : found.owner],
    ["attached", found.attached === null ? "unknown" : String(found.attached)],
  );
  if (found.pids) lines.push(["mapped by", found.pids.length ? found.pids.join(", ") : "no process"]);
  if (found.creatorPid !== undefined) lines.push(["creator pid", String(found.creatorPid)]);
  if (found.lastPid !== undefined) lines.push(["last pid", String(found.lastPid)]);
  lines.push(["modified", found.modified]);
  io.out(lines.map(([k, v]) => `${(k + ":").padEnd(13)}${v}`).join("\n"));
  return EXIT.OK;
}

// --- dump --------------------------------------------------------------------------------------

function dump(args: readonly string[], io: Io): number {
  if (wantsHelp(args, io)) return EXIT.OK;
  const a = parseArgs(args, ["--key", "--id", "--offset", "--length"], ["--json"]);
  const target = single(a, "dump");
  const offset = parseCount(a.values.get("--offset")?.at(-1) ?? "0", "--offset", true);
  const lengthText = a.values.get("--length")?.at(-1);
  const length = lengthText === undefined ? undefined : parseCount(lengthText, "--length", true);
  using shm = target.kind === "posix"
    ? SharedMemory.open(target.posix!, { readOnly: true })
    : target.kind === "key"
    ? SharedMemory.open({ backend: "sysv", key: target.value!, readOnly: true })
    : SharedMemory.open({ backend: "sysv", id: target.value!, readOnly: true });
  if (offset > shm.size) {
    throw new UsageError(`--offset ${offset} is past the end of ${target.label} (${shm.size} bytes)`);
  }
  const end = length === undefined ? shm.size : Math.min(shm.size, offset + length);
  const bytes = shm.buf.slice(offset, end); // a copy: the segment is closed before printing
  if (a.flags.has("--json")) {
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    io.out(
      JSON.stringify({
        name: shm.name,
        backend: shm.backend,
        size: shm.size,
        offset,
        length: bytes.length,
        hex,
      }),
    );
  } else {
    io.out(hexDump(bytes, offset));
  }
  return EXIT.OK;
}

// --- create ------------------------------------------------------------------------------------

function create(args: readonly string[], io: Io): number {
  if (wantsHelp(args, io)) return EXIT.OK;
  const a = parseArgs(args, ["--key", "--mode"], ["--json", "--sysv"]);
  const mode = parseMode(a.values.get("--mode")?.at(-1) ?? "600");
  const keys = a.values.get("--key") ?? [];
  const sysv = keys.length > 0 || a.flags.has("--sysv");
  if (keys.length > 1) throw new UsageError("create takes one --key");
  const [first, second, ...extra] = a.words;
  if (extra.length) throw new UsageError(`create got an extra argument "${extra[0]}"`);
  let shm: SharedMemory;
  if (sysv) {
    if (first === undefined || second !== undefined) {
      throw new UsageError("create --key KEY SIZE (or create --sysv SIZE) takes exactly one SIZE");
    }
    const size = parseCount(first, "SIZE", true);
    const key = keys.length ? parseKey(keys[0]) : undefined;
    if (os === "windows") throw new UsageError("System V shared memory does not exist on Windows");
    shm = SharedMemory.create({ backend: "sysv", key, size, mode, unlinkOnDispose: false });
  } else {
    if (first === undefined || second === undefined) throw new UsageError("create needs a NAME and a SIZE");
    const size = parseCount(second, "SIZE", true);
    shm = SharedMemory.create({ name: first, size, mode, unlinkOnDispose: false });
  }
  const made = {
    backend: shm.backend,
    name: shm.name,
    ...(sysv ? { id: shm.stat().id, key: keyHex(shm.stat().key) } : {}),
    size: shm.size,
    mode: "0o" + mode.toString(8).padStart(3, "0"),
  };
  shm.close();
  if (a.flags.has("--json")) io.out(JSON.stringify(made));
  else {io.out(
      !sysv
        ? `created ${made.name}`
        : made.key === "0x00000000"
        ? `created shmid ${made.id} (${made.size} bytes)`
        : `created ${made.name} (shmid ${made.id}, ${made.size} bytes)`,
    );}
  return EXIT.OK;
}

// --- rm ----------------------------------------------------------------------------------------

function rm(args: readonly string[], io: Io): number {
  if (wantsHelp(args, io)) return EXIT.OK;
  const a = parseArgs(args, ["--key", "--id"], []);
  const list = targets(a);
  if (list.length === 0) throw new UsageError("rm needs at least one NAME, --key KEY or --id ID");
  let code: number = EXIT.OK;
  for (const target of list) {
    try {
      if (target.kind === "posix") SharedMemory.unlink(target.posix!);
      else {
        const action = `remove System V segment ${target.label}`;
        const id = target.kind === "id" ? target.value! : shmidOf(target.value!, action);
        removeSysv(id, target.label);
      }
    } catch (error) {
      const c = report(error, io);
      if (code === EXIT.OK) code = c;
    }
  }
  return code;
}

if (import.meta.main) {
  process.exitCode = main(process.argv.slice(2));
}
