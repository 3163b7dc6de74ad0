/**
 * `shm`: list, inspect, dump, create and remove shared memory segments from the command line —
 * `ipcs` and `ipcrm` for POSIX (`/dev/shm`) and System V segments alike.
 *
 * ```sh
 * deno run -A jsr:@x/shm/cli ls            # or: deno run -A cli/mod.ts ls / bun cli/mod.ts ls
 * deno run -A jsr:@x/shm/cli info psm_1a2b3c4d
 * deno run -A jsr:@x/shm/cli dump psm_1a2b3c4d --offset 0 --length 64
 * deno run -A jsr:@x/shm/cli create jobs 1M --mode 0o640
 * deno run -A jsr:@x/shm/cli rm jobs --key 0x41010002
 * ```
 *
 * Every listing takes `--json`. Exit codes: 0 done, 1 no such segment, 2 bad command line,
 * 3 permission denied (by the OS, or by Deno: see below), 4 already exists, 5 any other failure.
 *
 * Deno permissions: `ls` and `info` read `/dev/shm` and `/proc`, which Deno opens only under `-A`
 * (`--allow-all`); `dump`, `create` and `rm` call the C library and need `--allow-ffi`. Without
 * them the command exits 3 and names the flag. Bun has no permissions.
 *
 * @module
 */

import process from "node:process";
import { libc } from "../ffi/libc.ts";
import { C } from "../ffi/constants.ts";
import { os, runtime } from "../ffi/runtime.ts";
import { AlreadyExistsError, NotFoundError, PermissionDeniedError } from "../errors.ts";
import { osError } from "../_os_error.ts";
import { SharedMemory } from "../shared_memory.ts";
import { checkName } from "../_validate.ts";
import { keyHex, removeSysv, statSysv } from "../platform/sysv.ts";
import {
  hasShmDir,
  hasSysvTable,
  isDenoPermissionError,
  listPosix,
  listSysv,
  posixInfo,
  type SegmentInfo,
  userName,
} from "./_list.ts";
import {
  HexDump,
  humanSize,
  parseArgs,
  parseCount,
  parseKey,
  parseMode,
  parseSize,
  table,
  UsageError,
} from "./_format.ts";
import { createPosixSegment, createSysvSegment, SegmentReader } from "./_raw.ts";

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
  shm info NAME | KEY | --key KEY | --id ID [--json]
      One segment in detail.
  shm dump NAME | KEY | --key KEY | --id ID [--offset N] [--length N] [--json]
      Hex dump (hexdump -C style; repeated lines shown as *). POSIX segments are read with pread,
      never mapped; System V segments are attached read-only.
  shm create NAME SIZE [--mode MODE] [--json]
  shm create --key KEY SIZE [--mode MODE] [--json]
  shm create --sysv SIZE [--mode MODE] [--json]       (IPC_PRIVATE: prints the new shmid)
      SIZE accepts K, M, G, T, P suffixes (powers of 1024); MODE is octal (default 0o600).
      The memory is reserved at once: more than the system has free is an error (ENOSPC).
  shm rm NAME... [--key KEY | -M KEY]... [--id ID | -m ID]...
      Removes POSIX names (shm_unlink) and System V segments (shmctl IPC_RMID: they live until
      their last detach). Keeps going after a failure and exits with the first failure's code.
  shm help | --help | -h

NAME is a POSIX segment name as Python and C use it (a leading / or /dev/shm/ is optional; no
other "/"). KEY is a System V key as ipcs and shm ls print it (0x41010002) or in decimal; info
and dump also take it in place of NAME when no POSIX segment has that name. ID is a shmid.
-m and -M are ipcrm's spellings of --id and --key.

Deno permissions: ls and info read /dev/shm and /proc, which Deno opens only with -A
(--allow-all); dump, create and rm call the C library and need --allow-ffi. Without them the
command exits 3 and names the flag. Bun needs none.

Exit codes: 0 done, 1 no such segment, 2 bad command line, 3 permission denied, 4 already exists,
5 any other failure.`;

/** What each command needs from Deno, for the message when Deno refuses. */
const DENO_NEEDS: Record<string, string> = {
  ls: "-A (--allow-all): Deno lets nothing less read /dev/shm and /proc",
  info: "-A (--allow-all): Deno lets nothing less read /dev/shm and /proc",
  dump: "--allow-ffi",
  create: "--allow-ffi",
  rm: "--allow-ffi",
};

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
  const name = command === "list" ? "ls" : command === "remove" ? "rm" : command ?? "";
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
    return report(error, io, name);
  }
}

function wantsHelp(args: readonly string[], io: Io): boolean {
  if (!args.includes("--help") && !args.includes("-h")) return false;
  io.out(HELP);
  return true;
}

/** Prints an error the way the command line shows it and gives its exit code. */
function report(error: unknown, io: Io, command: string): number {
  if (error instanceof UsageError) {
    io.err(`shm: ${error.message}\nRun "shm --help" for usage.`);
    return EXIT.USAGE;
  }
  const message = error instanceof Error ? error.message : String(error);
  if (isDenoPermissionError(error)) {
    const needs = DENO_NEEDS[command];
    io.err(`shm: ${message}${needs ? `\nUnder Deno, shm ${command} needs ${needs}.` : ""}`);
    return EXIT.PERMISSION_DENIED;
  }
  io.err(`shm: ${message}`);
  if (error instanceof NotFoundError) return EXIT.NOT_FOUND;
  if (error instanceof PermissionDeniedError) return EXIT.PERMISSION_DENIED;
  if (error instanceof AlreadyExistsError) return EXIT.ALREADY_EXISTS;
  if (error instanceof TypeError || error instanceof RangeError) return EXIT.USAGE;
  return EXIT.FAILED;
}

interface DenoFfi {
  permissions: { querySync(d: { name: "ffi" }): { state: string } };
  errors: { NotCapable: new (message: string) => Error };
}

/** Under Deno, refuses at once (exit 3, naming the flag) when FFI is not allowed. */
function needFfi(command: string): void {
  if (runtime !== "deno") return;
  const deno = (globalThis as unknown as { Deno: DenoFfi }).Deno;
  if (deno.permissions.querySync({ name: "ffi" }).state === "granted") return;
  throw new deno.errors.NotCapable(
    `Cannot run shm ${command}: Deno has not allowed FFI, which it uses to call the C library; run again with --allow-ffi`,
  );
}

// --- ls ----------------------------------------------------------------------------------------

function ls(args: readonly string[], io: Io): number {
  if (wantsHelp(args, io)) return EXIT.OK;
  const a = parseArgs(args, [], ["--json", "--posix", "--sysv"]);
  if (a.words.length) throw new UsageError(`ls takes no names, got "${a.words[0]}" (see shm info)`);
  const both = !a.flags.has("--posix") && !a.flags.has("--sysv");
  const rows: SegmentInfo[] = [];
  const notes: string[] = [];
  let listed = 0;
  if (both || a.flags.has("--posix")) {
    if (hasShmDir()) {
      rows.push(...listPosix());
      listed++;
    } else notes.push("POSIX segments cannot be listed on this system (no /dev/shm); use shm info NAME");
  }
  if (both || a.flags.has("--sysv")) {
    if (hasSysvTable()) {
      rows.push(...listSysv());
      listed++;
    } else {notes.push(
        "System V segments cannot be listed on this system (no /proc/sysvipc/shm); try ipcs -m",
      );}
  }
  for (const note of notes) io.err(`shm: ${note}`);
  // Nothing could be looked at: say so with the exit code too, never "no segments".
  if (listed === 0) return EXIT.FAILED;
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

// --- naming segments -----------------------------------------------------------------------------

interface Target {
  kind: "posix" | "key" | "id";
  /** POSIX: the bare name. */
  posix?: string;
  /** System V: the key or shmid. */
  value?: number;
  label: string;
  /**
   * A word that names no POSIX segment may be what `shm ls` prints for a System V one: a key
   * (`0x6e630001`) or `shmid N`. info and dump then fall back to it; rm points to --key/--id.
   */
  sysv?: Target;
}

const VALUED = ["--key", "--id", "-M", "-m", "--shmem-key", "--shmem-id"];

/** A POSIX name from the command line: a leading `/dev/shm/` or `/` dropped, then checked. */
function posixName(word: string, command: string): string {
  const bare = word.startsWith("/dev/shm/") ? word.slice("/dev/shm/".length) : word;
  const verb = ({ info: "show", rm: "remove" } as Record<string, string>)[command] ?? command;
  return checkName(bare, `${verb} shared memory segment ${JSON.stringify(word)}`, C.SHM_NAME_MAX);
}

function keyTarget(text: string): Target {
  const key = parseKey(text);
  if (key === 0) throw new UsageError("key 0 is IPC_PRIVATE, which names no segment: use --id");
  return { kind: "key", value: key, label: `key ${keyHex(key)}` };
}

function idTarget(text: string): Target {
  const id = parseCount(text, "a shmid", false);
  return { kind: "id", value: id, label: `shmid ${id}` };
}

function targets(a: ReturnType<typeof parseArgs>, command: string): Target[] {
  const out: Target[] = a.words.map((w) => {
    const posix = posixName(w, command);
    const t: Target = { kind: "posix", posix, label: JSON.stringify(w) };
    if (/^0x[0-9a-f]{1,8}$/i.test(w) && Number(w) !== 0) t.sysv = keyTarget(w);
    const shmid = /^shmid (\d+)$/.exec(w);
    if (shmid) t.sysv = idTarget(shmid[1]!);
    return t;
  });
  for (const option of ["--key", "-M", "--shmem-key"]) {
    for (const k of a.values.get(option) ?? []) out.push(keyTarget(k));
  }
  for (const option of ["--id", "-m", "--shmem-id"]) {
    for (const i of a.values.get(option) ?? []) out.push(idTarget(i));
  }
  return out;
}

function single(a: ReturnType<typeof parseArgs>, command: string): Target {
  const t = targets(a, command);
  if (t.length !== 1) throw new UsageError(`${command} takes one segment: NAME, KEY, --key KEY or --id ID`);
  return t[0]!;
}

/**
 * Runs `use` on the target; when it is a POSIX name that does not exist but reads as a System V
 * key or `shmid N` (as `shm ls` prints them), on that System V segment instead.
 */
function resolve<T>(target: Target, use: (t: Target) => T): T {
  try {
    return use(target);
  } catch (error) {
    if (!(error instanceof NotFoundError) || !target.sysv) throw error;
    try {
      return use(target.sysv);
    } catch (second) {
      if (!(second instanceof NotFoundError)) throw second;
      throw new NotFoundError(
        `Cannot find the segment: no POSIX shared memory segment named ${target.label} and no System V ` +
          `shared memory segment with ${target.sysv.label}`,
        { code: "ENOENT", errno: 2, syscall: second.syscall, segment: target.posix! },
      );
    }
  }
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
  needFfi("info");
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

// --- info --------------------------------------------------------------------------------------

function posixSegmentInfo(target: Target): SegmentInfo {
  if (hasShmDir()) {
    const i = posixInfo(target.posix!);
    if (!i) throw notFound(target);
    return i;
  }
  // No file system view (macOS): what an attach can tell.
  needFfi("info");
  using shm = SharedMemory.open(target.posix!, { readOnly: true });
  return {
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

function info(args: readonly string[], io: Io): number {
  if (wantsHelp(args, io)) return EXIT.OK;
  const a = parseArgs(args, VALUED, ["--json"]);
  const found = resolve(single(a, "info"), (t) => t.kind === "posix" ? posixSegmentInfo(t) : sysvInfo(t));
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

/** A segment opened for reading: POSIX through its descriptor, System V through a read-only attach. */
interface Source extends Disposable {
  name: string;
  backend: "posix" | "sysv";
  size: number;
  read(offset: number, end: number, each: (bytes: Uint8Array) => void): void;
}

function openSource(target: Target): Source {
  // Linux: pread on the descriptor. macOS shm descriptors cannot be read(2): a read-only mapping.
  if (target.kind === "posix" && os === "linux") {
    const reader = new SegmentReader(target.posix!);
    return {
      name: reader.name,
      backend: "posix",
      size: reader.size,
      read: (offset, end, each) => reader.read(offset, end, each),
      [Symbol.dispose]: () => reader.close(),
    };
  }
  const shm = target.kind === "posix"
    ? SharedMemory.open(target.posix!, { readOnly: true })
    : target.kind === "key"
    ? SharedMemory.open({ backend: "sysv", key: target.value!, readOnly: true })
    : SharedMemory.open({ backend: "sysv", id: target.value!, readOnly: true });
  return {
    name: shm.name,
    backend: shm.backend === "sysv" ? "sysv" : "posix",
    size: shm.size,
    read: (offset, end, each) => each(shm.buf.subarray(offset, end)),
    [Symbol.dispose]: () => shm.close(),
  };
}

function dump(args: readonly string[], io: Io): number {
  if (wantsHelp(args, io)) return EXIT.OK;
  const a = parseArgs(args, [...VALUED, "--offset", "--length"], ["--json"]);
  const target = single(a, "dump");
  const offset = parseCount(a.values.get("--offset")?.at(-1) ?? "0", "--offset", true);
  const lengthText = a.values.get("--length")?.at(-1);
  const length = lengthText === undefined ? undefined : parseCount(lengthText, "--length", true);
  needFfi("dump");
  using source = resolve(target, openSource);
  if (offset > source.size) {
    throw new UsageError(`--offset ${offset} is past the end of ${target.label} (${source.size} bytes)`);
  }
  const end = length === undefined ? source.size : Math.min(source.size, offset + length);
  if (a.flags.has("--json")) {
    const hex: string[] = [];
    let read = 0;
    source.read(offset, end, (bytes) => {
      for (const b of bytes) hex.push(b.toString(16).padStart(2, "0"));
      read += bytes.length;
    });
    io.out(JSON.stringify({
      name: source.name,
      backend: source.backend,
      size: source.size,
      offset,
      length: read,
      hex: hex.join(""),
    }));
  } else {
    const out = new HexDump(offset, (lines) => io.out(lines.join("\n")));
    source.read(offset, end, (bytes) => out.push(bytes));
    out.end();
  }
  return EXIT.OK;
}

// --- create ------------------------------------------------------------------------------------

function create(args: readonly string[], io: Io): number {
  if (wantsHelp(args, io)) return EXIT.OK;
  const a = parseArgs(args, ["--key", "-M", "--mode"], ["--json", "--sysv"]);
  const mode = parseMode(a.values.get("--mode")?.at(-1) ?? "600");
  const keys = [...a.values.get("--key") ?? [], ...a.values.get("-M") ?? []];
  const sysv = keys.length > 0 || a.flags.has("--sysv");
  if (keys.length > 1) throw new UsageError("create takes one --key");
  const [first, second, ...extra] = a.words;
  if (extra.length) throw new UsageError(`create got an extra argument "${extra[0]}"`);
  let made: { backend: string; name: string; id?: number; key?: string; size: number; mode: string };
  const modeText = "0o" + mode.toString(8).padStart(3, "0");
  if (sysv) {
    if (first === undefined || second !== undefined) {
      throw new UsageError("create --key KEY SIZE (or create --sysv SIZE) takes exactly one SIZE");
    }
    const size = parseSize(first);
    const key = keys.length ? keyTarget(keys[0]!).value! : 0;
    if (os === "windows") throw new UsageError("System V shared memory does not exist on Windows");
    needFfi("create");
    const id = createSysvSegment(key, size, mode);
    made = {
      backend: "sysv",
      name: key === 0 ? `shmid ${id}` : keyHex(key),
      id,
      key: keyHex(key),
      size,
      mode: modeText,
    };
  } else {
    if (first === undefined || second === undefined) throw new UsageError("create needs a NAME and a SIZE");
    const name = posixName(first, "create");
    const size = parseSize(second);
    needFfi("create");
    if (os === "windows") {
      // A Windows segment lives only while a handle is open: there is nothing to leave behind.
      throw new UsageError(
        "create makes no lasting segment on Windows, where a segment ends with its last handle",
      );
    }
    // Without mapping it: no ArrayBuffer, so no runtime's buffer limit applies.
    createPosixSegment(name, size, mode);
    made = { backend: "posix", name, size, mode: modeText };
  }
  if (a.flags.has("--json")) io.out(JSON.stringify(made));
  else {
    io.out(
      !sysv
        ? `created ${made.name}`
        : made.key === "0x00000000"
        ? `created shmid ${made.id} (${made.size} bytes)`
        : `created ${made.name} (shmid ${made.id}, ${made.size} bytes)`,
    );
  }
  return EXIT.OK;
}

// --- rm ----------------------------------------------------------------------------------------

function rm(args: readonly string[], io: Io): number {
  if (wantsHelp(args, io)) return EXIT.OK;
  const a = parseArgs(args, VALUED, []);
  const list = targets(a, "rm");
  if (list.length === 0) throw new UsageError("rm needs at least one NAME, --key KEY or --id ID");
  needFfi("rm");
  let code: number = EXIT.OK;
  for (const target of list) {
    try {
      if (target.kind === "posix") removePosix(target);
      else {
        const action = `remove System V segment ${target.label}`;
        const id = target.kind === "id" ? target.value! : shmidOf(target.value!, action);
        removeSysv(id, target.label);
      }
    } catch (error) {
      const c = report(error, io, "rm");
      if (code === EXIT.OK) code = c;
    }
  }
  return code;
}

/** Unlinks a POSIX name; for a word that reads as a System V key or id, points to --key/--id. */
function removePosix(target: Target): void {
  try {
    SharedMemory.unlink(target.posix!);
  } catch (error) {
    if (!(error instanceof NotFoundError) || !target.sysv) throw error;
    const option = target.sysv.kind === "key"
      ? `--key ${keyHex(target.sysv.value!)} (ipcrm: -M)`
      : `--id ${target.sysv.value} (ipcrm: -m)`;
    throw new NotFoundError(
      `${error.message}; to remove the System V segment with ${target.sysv.label}, use shm rm ${option}`,
      { code: error.code, errno: error.errno, syscall: error.syscall, segment: target.posix! },
    );
  }
}

if (import.meta.main) {
  process.exitCode = main(process.argv.slice(2));
}
