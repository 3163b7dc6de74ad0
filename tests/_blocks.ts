/**
 * The code blocks users copy: every `ts` block of README.md and every TypeScript block in the module's
 * JSDoc, found, pointed at this checkout, and run as a user would run them.
 *
 * Only import specifiers are rewritten (`@x/shm`, `jsr:@x/shm`, `@x/shm/mutex`, and a file's relative
 * `./x.ts`), to absolute paths in the checkout. A JSDoc block that does not import a name its file exports
 * gets it imported, as `deno test --doc` does. Each block runs in a fresh temporary folder (so `./data.bin`
 * lands there), under a time limit, and, as root, in a private IPC and mount namespace with its own tmpfs
 * on /dev/shm: whatever is left in /dev/shm or System V memory when it ends was made by the block, however
 * many other programs use shared memory meanwhile. Without root the check compares snapshots of names.
 *
 * @module
 */

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { hasCommand, isRoot, NODE_FLAGS, ROOT, run, type Runtime, RUNTIMES } from "./_process.ts";

/** One runnable block. */
export interface Block {
  /** The file it comes from, relative to the checkout (`README.md`, `mutex.ts`). */
  file: string;
  /** The line of its opening fence (1-based). */
  line: number;
  /** The README heading above it, or the JSDoc symbol it documents (`Mutex`, `Mutex.lock`, `@module`). */
  where: string;
  /** The code as written. */
  code: string;
}

const TS_LANGS = new Set(["ts", "typescript", "js", "javascript", "tsx", "jsx", "mts"]);

/** The opening fence on a line: its language and the rest of its info string, or null. */
function openingFence(line: string): { lang: string; info: string } | null {
  const m = /^```(\S*)\s*(.*)$/.exec(line);
  if (!m) return null;
  const [, lang = "", info = ""] = m;
  return { lang, info };
}

/** The lines of a fenced block's body: from `from` up to its closing fence (or the end). */
function fenceBody(lines: readonly string[], from: number): string[] {
  const end = lines.findIndex((l, i) => i >= from && /^```\s*$/.test(l));
  return lines.slice(from, end < 0 ? lines.length : end);
}

/** Every `ts` fenced block of a Markdown file. */
export function markdownBlocks(file: string): Block[] {
  const lines = readFileSync(join(ROOT, file), "utf8").split("\n");
  const blocks: Block[] = [];
  let heading = "(top)";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!; // i < lines.length
    const title = /^#+\s+(.*)$/.exec(line)?.[1];
    if (title !== undefined) heading = title;
    const fence = openingFence(line);
    if (!fence) continue;
    const start = i;
    const body = fenceBody(lines, i + 1);
    i += body.length + 1; // on the closing fence
    if (fence.lang === "ts" && !/\bignore\b/.test(fence.info)) {
      blocks.push({ file, line: start + 1, where: heading, code: body.join("\n") + "\n" });
    }
  }
  return blocks;
}

/** The module's own TypeScript files: what `deno publish` ships. */
export function moduleFiles(): string[] {
  const out: string[] = [];
  const skip = new Set([
    "tests",
    "bench",
    "examples",
    "tools",
    "node_modules",
    "docs",
    ".git",
    ".wine",
    ".ci",
  ]);
  const walk = (dir: string) => {
    for (const name of readdirSync(join(ROOT, dir)).sort()) {
      const rel = dir ? `${dir}/${name}` : name;
      if (skip.has(rel)) continue;
      const st = statSync(join(ROOT, rel));
      if (st.isDirectory()) walk(rel);
      else if (/\.ts$/.test(name) && !/\.d\.ts$/.test(name)) out.push(rel);
    }
  };
  walk("");
  return out;
}

/** The name the declaration after a JSDoc comment declares, with its class for members. */
function declared(after: string, klass: string | undefined): { name: string; isClass: boolean } {
  const line = after.split("\n").find((l) => l.trim() && !l.trim().startsWith("@")) ?? "";
  const top =
    /^export\s+(?:declare\s+)?(?:default\s+)?(?:abstract\s+)?(?:async\s+)?(class|function\*?|const|let|var|interface|type|enum)\s+([\w$]+)/
      .exec(line.trim());
  if (top) {
    const [, kind, name = ""] = top;
    return { name, isClass: kind === "class" };
  }
  const member =
    /^(?:(?:public|static|readonly|async|get|set|override|abstract|declare)\s+)*(\*?\[?[\w$.]+\]?)/
      .exec(line.trim());
  const name = member?.[1] ?? line.trim().slice(0, 30);
  return { name: klass ? `${klass}.${name}` : name, isClass: false };
}

/** Every TypeScript block inside a JSDoc comment of a module file. */
export function jsdocBlocks(file: string): Block[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const blocks: Block[] = [];
  const comment = /\/\*\*([\s\S]*?)\*\//g;
  let klass: string | undefined;
  let classEnd = -1;
  for (let m; (m = comment.exec(text));) {
    const [whole, doc = ""] = m;
    const startLine = text.slice(0, m.index).split("\n").length;
    const inner = doc.split("\n").map((l) => l.replace(/^\s*\* ?/, ""));
    const after = text.slice(m.index + whole.length, m.index + whole.length + 400);
    if (m.index > classEnd) klass = undefined;
    let where: string;
    if (/@module\b/.test(doc)) where = "@module";
    else {
      const d = declared(after, klass);
      where = d.name;
      if (d.isClass) {
        klass = d.name;
        // The class body ends at the first "\n}" at column 0 after it.
        const end = text.indexOf("\n}", m.index + whole.length);
        classEnd = end < 0 ? text.length : end;
      }
    }
    for (let i = 0; i < inner.length; i++) {
      const fence = openingFence(inner[i]!); // i < inner.length
      if (!fence) continue;
      const start = i;
      const body = fenceBody(inner, i + 1);
      i += body.length + 1; // on the closing fence
      if (TS_LANGS.has(fence.lang) && !/\bignore\b/.test(fence.info)) {
        blocks.push({ file, line: startLine + start, where, code: body.join("\n") + "\n" });
      }
    }
  }
  return blocks;
}

/** The names a file exports (values and types), which a JSDoc block may use without importing them. */
function exportedNames(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const names = new Set<string>();
  for (
    const m of text.matchAll(
      /^export\s+(?:declare\s+)?(?:abstract\s+)?(?:async\s+)?(?:class|function\*?|const|let|var|interface|type|enum)\s+([\w$]+)/gm,
    )
  ) names.add(m[1]!); // the group always takes part in a match
  for (const [, list = ""] of text.matchAll(/^export\s+(?:type\s+)?\{([^}]*)\}/gm)) {
    for (const part of list.split(",")) {
      const n = part.trim().replace(/^type\s+/, "").split(/\s+as\s+/).pop()?.trim();
      if (n) names.add(n);
    }
  }
  return [...names];
}

/** The checkout file a package specifier (`@x/shm`, `jsr:@x/shm@0.1.0/mutex`) means, or undefined. */
function packageTarget(specifier: string): string | undefined {
  const m = /^(?:jsr:)?@x\/shm(?:@[^/]*)?(\/.*)?$/.exec(specifier);
  if (!m) return undefined;
  const config = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as {
    exports: Record<string, string>;
  };
  const target = config.exports[m[1] ? `.${m[1]}` : "."];
  return target ? join(ROOT, target) : undefined;
}

/** The block's code with its import specifiers pointed at this checkout (and nothing else changed). */
export function pointAtCheckout(block: Block): string {
  const base = block.file.endsWith(".md") ? ROOT : dirname(join(ROOT, block.file));
  const rewrite = (spec: string) => {
    const target = packageTarget(spec) ??
      (spec.startsWith("./") || spec.startsWith("../") ? resolve(base, spec) : undefined);
    return target ?? spec;
  };
  let code = block.code.replace(
    /(\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(["'])([^"']+)\2/gm,
    (_all, lead: string, q: string, spec: string) => `${lead}${q}${rewrite(spec)}${q}`,
  );
  if (!block.file.endsWith(".md")) {
    // As `deno test --doc`: the names the file exports are in scope unless the block imports them.
    const imported = new Set<string>();
    for (const [, list = ""] of code.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s*from/g)) {
      for (const part of list.split(",")) {
        const n = part.trim().replace(/^type\s+/, "").split(/\s+as\s+/).pop()?.trim();
        if (n) imported.add(n);
      }
    }
    const missing = exportedNames(block.file).filter((n) =>
      !imported.has(n) && new RegExp(`(?<![\\w$.])${n.replace(/\$/g, "\\$")}(?![\\w$])`).test(code)
    );
    if (missing.length) {
      code = `import { ${missing.join(", ")} } from ${JSON.stringify(join(ROOT, block.file))};\n${code}`;
    }
  }
  return code;
}

/** What running a block left. */
export interface BlockRun {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Segments in /dev/shm and System V memory that the block made and did not remove. */
  leftover: string[];
  /** How the leftovers were judged: "namespace" (exact) or "snapshot" (names before and after). */
  judged: "namespace" | "snapshot";
}

function snapshot(): Set<string> {
  const names = new Set<string>();
  if (existsSync("/dev/shm")) { for (const n of readdirSync("/dev/shm")) names.add(`/dev/shm/${n}`); }
  try {
    for (const l of readFileSync("/proc/sysvipc/shm", "utf8").trim().split("\n").slice(1)) {
      const f = l.trim().split(/\s+/);
      names.add(`System V key ${f[0]} shmid ${f[1]}`);
    }
  } catch { /* not Linux */ }
  return names;
}

/** Whether blocks can run in a private IPC + mount namespace (root, Linux, unshare installed). */
export const PRIVATE_NAMESPACE: boolean = process.platform === "linux" && isRoot() && hasCommand("unshare");

// Runs in the namespace: a fresh tmpfs on /dev/shm, the block under `timeout`, then the list of what is
// left in /dev/shm and System V memory into "$0/.left".
const WRAPPER = `mount -t tmpfs -o mode=1777 shm /dev/shm || exit 97
timeout -k 5 "$SHM_BLOCK_TIMEOUT" "$@"
rc=$?
{ ls -A /dev/shm | sed 's|^|/dev/shm/|'; tail -n +2 /proc/sysvipc/shm | awk '{print "System V key " $1 " shmid " $2}'; } > "$0/.left"
exit $rc`;

/** Runs a block under a runtime in a fresh temporary folder, with a time limit in seconds. */
export async function runBlock(block: Block, rt: Runtime, timeoutSeconds = 60): Promise<BlockRun> {
  const dir = mkdtempSync(join(tmpdir(), "shm-block-"));
  try {
    const script = join(dir, "block.ts");
    writeFileSync(script, pointAtCheckout(block));
    const cmd = rt === "deno"
      ? [RUNTIMES.deno, "run", "-A", "--no-config", "--no-lock", "--quiet", script]
      : rt === "node"
      ? [RUNTIMES.node, ...NODE_FLAGS, script]
      : [RUNTIMES.bun, script];
    const env = { SHM_BLOCK_TIMEOUT: String(timeoutSeconds) };
    if (PRIVATE_NAMESPACE) {
      const r = await run(
        ["unshare", "--ipc", "--mount", "--propagation", "private", "--", "sh", "-c", WRAPPER, dir, ...cmd],
        { cwd: dir, env, timeout: (timeoutSeconds + 30) * 1000 },
      );
      const left = existsSync(join(dir, ".left"))
        ? readFileSync(join(dir, ".left"), "utf8").split("\n").filter(Boolean)
        : ["(the namespace wrapper did not finish)"];
      return { ...r, leftover: left, judged: "namespace" };
    }
    const before = snapshot();
    const r = await run(
      hasCommand("timeout") ? ["timeout", "-k", "5", String(timeoutSeconds), ...cmd] : cmd,
      {
        cwd: dir,
        env,
        timeout: (timeoutSeconds + 30) * 1000,
      },
    );
    const leftover = [...snapshot()].filter((n) => !before.has(n));
    return { ...r, leftover, judged: "snapshot" };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A one-line description of a failed run, for test messages. */
export function describe(block: Block, r: BlockRun): string | undefined {
  const where = `${block.file}:${block.line} (${block.where})`;
  if (r.code === 124 || r.code === 137) return `${where}: did not exit within its time limit\n${r.stderr}`;
  if (r.code !== 0) {
    return `${where}: exited with ${r.code ?? r.signal}\n${r.stderr.trim().split("\n").slice(-8).join("\n")}`;
  }
  if (r.leftover.length) return `${where}: left behind ${r.leftover.join(", ")} (judged by ${r.judged})`;
  return undefined;
}

/** The checkout-relative path of an absolute one (for messages). */
export function rel(path: string): string {
  return relative(ROOT, path);
}
