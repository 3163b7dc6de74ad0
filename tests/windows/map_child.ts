// A SharedMap peer for the Windows suite: `map_child.ts increment <name> <n>` adds 1 to "n" n times
// and prints {"done":true}; `map_child.ts churn <name>` writes until killed, printing "running".
import { SharedMap } from "../../shared_map.ts";

const proc = (globalThis as unknown as { process: { argv: string[] } }).process;
const [mode, name, count] = proc.argv.slice(2);
const map = SharedMap.open(name!);
if (mode === "increment") {
  for (let i = 0; i < Number(count); i++) map.increment("n");
  console.log(JSON.stringify({ done: true }));
} else {
  console.log("running");
  for (let i = 0;; i++) {
    map.set(`k${i % 50}`, "x".repeat(i % 60));
    map.increment(`c${i % 7}`);
    if (i % 3 === 0) map.delete(`k${(i * 7) % 50}`);
  }
}
map.close();
