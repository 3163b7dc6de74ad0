// The README's demo, run as a user would run it, under each runtime as the creating side.
import assert from "node:assert/strict";
import { test } from "./_harness.ts";
import { BOTH, runOk, tsCommand } from "./_process.ts";

for (const rt of BOTH) {
  test(`the demo, started under ${rt}, ends with [11, 12, 13, 14, 15]`, async () => {
    const out = await runOk(tsCommand(rt, "examples/demo.ts"));
    const [created = "", attached = "", holds = ""] = out.trim().split("\n");
    const other = rt === "deno" ? "Bun" : "Deno";
    assert.match(created, /created \/dev\/shm\/psm_[0-9a-f]{8} holding \[1, 2, 3, 4, 5\]$/);
    assert.match(attached, new RegExp(`^${other}: attached to psm_[0-9a-f]{8} and added 10 to each value$`));
    assert.match(holds, /the segment now holds \[11, 12, 13, 14, 15\]$/);
  });
}
