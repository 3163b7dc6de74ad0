// Waiting at scale (issue 14): 10,000 pending async waits (Semaphore, Mutex, Condition, Barrier on
// 20 segments) cost a handful of threads and little memory, in each runtime, and all are woken.
// Each case runs in a child process, so the figures are its own (read from /proc/self/status).
// Timer lateness and fs latency while the waits pend are printed, not asserted (bench/ has them).
import assert from "node:assert/strict";
import { test } from "./_harness.ts";
import { BOTH, runOk, tsCommand, uniqueName } from "./_process.ts";
import { os } from "../ffi/runtime.ts";

const CHILD = "tests/children/scale_child.ts";

for (const rt of BOTH) {
  test(`10,000 pending ${rt} async waits cost at most 32 threads and 100 MB, and all are woken`, async () => {
    const out = await runOk(tsCommand(rt, CHILD, [uniqueName("scale"), "10000", "20"]), { timeout: 120_000 });
    const r = JSON.parse(out.trim().split("\n").at(-1)!);
    console.log(
      `${rt}: threads ${r.before.threads} -> ${r.during.threads}, RSS ${r.before.rssMB.toFixed(0)} -> ` +
        `${r.during.rssMB.toFixed(0)} MB; timer late ${r.timerLateMs.toFixed(1)} ms, fs read ` +
        `${r.fsReadMs.toFixed(1)} ms while pending; all woken in ${r.wakeAllMs.toFixed(0)} ms`,
    );
    assert.equal(r.waits, 10_000);
    assert.equal(r.pendingBefore, 10_000, "every wait was still pending before the release");
    assert.equal(r.woken, 10_000, "every wait was woken after the release");
    assert.ok(
      r.during.threads - r.before.threads <= 32,
      `${r.during.threads - r.before.threads} more threads`,
    );
    assert.ok(
      r.during.rssMB - r.before.rssMB <= 100,
      `${(r.during.rssMB - r.before.rssMB).toFixed(0)} MB more`,
    );
  }, { timeout: 150_000, skip: os === "linux" ? false : "reads /proc/self/status (Linux)" });
}
