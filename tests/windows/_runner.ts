/**
 * A tiny test runner for the Windows suite, which runs under bun.exe in Wine (tools/test-windows.sh)
 * or on real Windows, where `bun test` discovery is not wanted. Tests run one at a time; each gets a
 * time limit. The last line printed is `N passed, N failed` (`, N skipped` when some were).
 *
 * @module
 */

type Fn = () => void | Promise<void>;

interface Case {
  name: string;
  fn: Fn;
  skip?: string;
  timeout: number;
}

const cases: Case[] = [];

/** Registers a test. `skip` (a reason) skips it; `timeout` is in ms (default 60 s). */
export function test(name: string, fn: Fn, options: { skip?: string | false; timeout?: number } = {}): void {
  cases.push({ name, fn, skip: options.skip || undefined, timeout: options.timeout ?? 60_000 });
}

/** Runs every registered test whose name contains `filter`; returns the process exit code. */
export async function runAll(filter = ""): Promise<number> {
  let passed = 0, failed = 0, skipped = 0;
  for (const c of cases) {
    if (filter && !c.name.includes(filter)) continue;
    if (c.skip) {
      skipped++;
      console.log(`skip  ${c.name} (${c.skip})`);
      continue;
    }
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(c.fn),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${c.timeout} ms`)), c.timeout);
        }),
      ]);
      passed++;
      console.log(`ok    ${c.name} (${Math.round(performance.now() - started)} ms)`);
    } catch (error) {
      failed++;
      console.log(
        `FAIL  ${c.name}\n      ${String((error as Error)?.stack ?? error).replaceAll("\n", "\n      ")}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  return failed ? 1 : 0;
}
