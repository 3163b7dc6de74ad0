// Every TypeScript block in the module's JSDoc (`@example`s and module docs) runs under this runtime: it
// exits 0 within its time limit and leaves nothing in /dev/shm or System V memory. Deno runs them also with
// `deno test --doc` (tools/test.mjs); this runner gives Bun the same check, one example at a time.
import assert from "node:assert/strict";
import { type Block, describe, jsdocBlocks, moduleFiles, runBlock } from "./_blocks.ts";
import { runtime, test } from "./_harness.ts";

/**
 * TEMPORARY: examples known to fail today, as "file symbol" (every example of the symbol), "file symbol #2"
 * (its second example), optionally prefixed by the one runtime it fails under ("bun: file symbol"). They
 * live in files other helpers are changing; THE LEAD EMPTIES THIS LIST AT MERGE. With
 * SHM_DOC_EXAMPLES_ALL=1 they run anyway.
 */
const KNOWN_FAILING: ReadonlySet<string> = new Set<string>([]);

const all = process.env.SHM_DOC_EXAMPLES_ALL === "1";

function knownFailing(block: Block, ordinal: number): boolean {
  const base = `${block.file} ${block.where}`;
  const keys = [base, `${base} #${ordinal}`];
  return keys.some((k) => KNOWN_FAILING.has(k) || KNOWN_FAILING.has(`${runtime}: ${k}`));
}

for (const file of moduleFiles()) {
  const seen = new Map<string, number>();
  for (const block of jsdocBlocks(file)) {
    const ordinal = (seen.get(block.where) ?? 0) + 1;
    seen.set(block.where, ordinal);
    const known = knownFailing(block, ordinal) && !all;
    test(`${file}:${block.line} (${block.where}) example runs under ${runtime}`, async () => {
      const r = await runBlock(block, runtime);
      assert.equal(describe(block, r), undefined);
    }, { skip: known && "known failing (temporary list in tests/doc_examples_test.ts)" });
  }
}
