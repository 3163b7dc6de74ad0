// The other runtime's side of tests/shareable_list_test.ts: opens a list, prints its items as typed
// JSON, then stores a few values of its own.
import { ShareableList, type ShareableValue } from "../../shareable_list.ts";

const name = (globalThis as { Deno?: { args: string[] } }).Deno?.args[0] ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv[2];
if (name === undefined) throw new TypeError("usage: list_peer.ts <list name>");

function typed(v: ShareableValue): unknown {
  if (typeof v === "bigint") return { bigint: String(v) };
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (typeof v === "number" && !Number.isFinite(v)) return { number: String(v) };
  return v;
}

const l = ShareableList.open(name);
console.log(JSON.stringify([...l].map(typed)));
l.set(0, "from peer");
l.set(1, -(2n ** 63n));
l.set(2, NaN);
l.set(3, new Uint8Array([1, 2, 3]));
l.close();
