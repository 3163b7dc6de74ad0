/**
 * What the `shm` command line reads about the segments on this machine: POSIX segments from
 * `/dev/shm`, System V segments from `/proc/sysvipc/shm` (Linux), and who has them mapped.
 *
 * @module
 */

import { readdirSync, readFileSync, statSync } from "node:fs";
import { keyHex } from "../platform/sysv.ts";

/** One segment as `shm ls` and `shm info` show it. */
export interface SegmentInfo {
  /** `"posix"` (a `/dev/shm` entry) or `"sysv"`. */
  backend: "posix" | "sysv";
  /** POSIX: the name (no leading `/`); System V: the key as `ipcs` prints it, or `shmid N` for IPC_PRIVATE. */
  name: string;
  /** System V key as `0x…` hex (`0x00000000` for IPC_PRIVATE); absent for POSIX. */
  key?: string;
  /** System V shmid; absent for POSIX. */
  id?: number;
  /** Size in bytes. */
  size: number;
  /** Permission bits as `0o…`. */
  mode: string;
  /** Owner's user name (or uid when it has no name). */
  owner: string;
  /** Owner's uid. */
  uid: number;
  /**
   * System V: attachments (`shm_nattch`). POSIX: processes that have it mapped, from
   * `/proc/<pid>/maps` (only the processes this user may inspect; null where /proc cannot tell).
   */
  attached: number | null;
  /** POSIX: the file's mtime; System V: the last change (`shm_ctime`). ISO 8601, UTC. */
  modified: string;
  /** POSIX only: `"semaphore"` for a named semaphore's `sem.*` file. */
  kind?: "semaphore";
  /** POSIX: the pids that have it mapped; System V: creator and last attach/detach pids. */
  pids?: number[];
  /** System V only: creator pid. */
  creatorPid?: number;
  /** System V only: last attach/detach pid. */
  lastPid?: number;
}

/**
 * Whether `error` is Deno refusing a permission (`Deno.errors.NotCapable`, or `PermissionDenied`
 * before Deno 2). Such errors are never swallowed as "not there": the caller reports them.
 */
export function isDenoPermissionError(error: unknown): boolean {
  const errors = (globalThis as { Deno?: { errors: Record<string, unknown> } }).Deno?.errors;
  return ["NotCapable", "PermissionDenied"].some((k) => {
    const cls = errors?.[k] as (new () => unknown) | undefined;
    return cls !== undefined && error instanceof cls;
  });
}

const SHM_DIR = "/dev/shm";
const SYSV_TABLE = "/proc/sysvipc/shm";

let users: Map<number, string> | undefined;

/** A user name for a uid, from /etc/passwd; the number itself when there is none. */
export function userName(uid: number): string {
  if (!users) {
    users = new Map();
    try {
      for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
        const f = line.split(":");
        if (f.length > 2 && !users.has(Number(f[2]))) users.set(Number(f[2]), f[0]!);
      }
    } catch (error) {
      if (isDenoPermissionError(error)) throw error;
      // No passwd file: numbers it is.
    }
  }
  return users.get(uid) ?? String(uid);
}

function octal(mode: number): string {
  return "0o" + (mode & 0o777).toString(8).padStart(3, "0");
}

/** Whether this system lists POSIX segments as files (Linux). Deno's refusal is thrown, not hidden. */
export function hasShmDir(): boolean {
  try {
    return statSync(SHM_DIR).isDirectory();
  } catch (error) {
    if (isDenoPermissionError(error)) throw error;
    return false;
  }
}

/** Whether this system publishes its System V table (Linux). */
export function hasSysvTable(): boolean {
  try {
    readFileSync(SYSV_TABLE, "utf8");
    return true;
  } catch (error) {
    if (isDenoPermissionError(error)) throw error;
    return false;
  }
}

/** Which pids map each file of /dev/shm: one pass over /proc/<pid>/maps. */
export function mappers(): Map<string, Set<number>> | null {
  const result = new Map<string, Set<number>>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch (error) {
    if (isDenoPermissionError(error)) throw error;
    return null;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let maps: string;
    try {
      maps = readFileSync(`/proc/${entry}/maps`, "utf8");
    } catch (error) {
      if (isDenoPermissionError(error)) throw error;
      continue; // gone, or another user's
    }
    for (const line of maps.split("\n")) {
      const at = line.indexOf(` ${SHM_DIR}/`);
      if (at < 0) continue;
      const name = line.slice(at + SHM_DIR.length + 2).replace(/ \(deleted\)$/, "");
      let pids = result.get(name);
      if (!pids) result.set(name, pids = new Set());
      pids.add(Number(entry));
    }
  }
  return result;
}

/** The POSIX segment `name`, or undefined when /dev/shm has no such file. */
export function posixInfo(
  name: string,
  maps: Map<string, Set<number>> | null = mappers(),
): SegmentInfo | undefined {
  let st;
  try {
    st = statSync(`${SHM_DIR}/${name}`);
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    throw error;
  }
  if (!st.isFile()) return undefined;
  const pids = [...(maps?.get(name) ?? [])].sort((a, b) => a - b);
  const info: SegmentInfo = {
    backend: "posix",
    name,
    size: st.size,
    mode: octal(st.mode),
    owner: userName(st.uid),
    uid: st.uid,
    attached: maps ? pids.length : null,
    modified: st.mtime.toISOString(),
  };
  if (name.startsWith("sem.")) info.kind = "semaphore";
  if (maps) info.pids = pids;
  return info;
}

/** Every POSIX segment (and named semaphore) in /dev/shm, by name. */
export function listPosix(): SegmentInfo[] {
  const maps = mappers();
  const out: SegmentInfo[] = [];
  for (const name of readdirSync(SHM_DIR).sort()) {
    try {
      const info = posixInfo(name, maps);
      if (info) out.push(info);
    } catch (error) {
      if (isDenoPermissionError(error)) throw error;
      // Removed while listing.
    }
  }
  return out;
}

/** Every System V segment in /proc/sysvipc/shm, by shmid. */
export function listSysv(): SegmentInfo[] {
  const lines = readFileSync(SYSV_TABLE, "utf8").trim().split("\n");
  const header = lines.shift()!.trim().split(/\s+/);
  const col = (name: string) => header.indexOf(name);
  const out: SegmentInfo[] = [];
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (f.length < header.length) continue;
    const get = (name: string) => Number(f[col(name)]);
    const key = get("key") | 0;
    const id = get("shmid");
    const uid = get("uid");
    out.push({
      backend: "sysv",
      name: key === 0 ? `shmid ${id}` : keyHex(key),
      key: keyHex(key),
      id,
      size: get("size"),
      mode: octal(parseInt(f[col("perms")] ?? "", 8)),
      owner: userName(uid),
      uid,
      attached: get("nattch"),
      modified: new Date(get("ctime") * 1000).toISOString(),
      creatorPid: get("cpid"),
      lastPid: get("lpid"),
    });
  }
  return out.sort((a, b) => a.id! - b.id!);
}
