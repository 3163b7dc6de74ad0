// Entry point of the Windows suite: bun.exe run.ts [name filter]. See tools/test-windows.sh.
import { runAll } from "./_runner.ts";
import "./cases.ts";

const proc = (globalThis as unknown as { process: { argv: string[]; exit(code: number): never } }).process;
proc.exit(await runAll(proc.argv[2] ?? ""));
