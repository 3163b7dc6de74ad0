// Entry point of the Windows suite: `bun run.ts [name filter]` or `deno run -A run.ts [filter]`, on
// Windows or under Wine (tools/test-windows.sh). Prints `N passed, N failed` as its last line.
import { os } from "../../ffi/runtime.ts";
import { runAll } from "./_runner.ts";

const proc = (globalThis as unknown as { process: { argv: string[]; exit(code: number): never } }).process;
if (os !== "windows") {
  console.log(`The Windows suite runs on Windows (or under Wine: bash tools/test-windows.sh), not on ${os}`);
  console.log("0 passed, 0 failed, 1 skipped");
  proc.exit(0);
}
await import("./cases.ts");
await import("./sync_cases.ts");
await import("./map_cases.ts");
await import("./scale_cases.ts");
proc.exit(await runAll(proc.argv[2] ?? ""));
