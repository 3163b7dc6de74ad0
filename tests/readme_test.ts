// Every `ts` block of README.md and docs/*.md runs as written under this runtime: it exits 0 within its time limit and
// leaves nothing in /dev/shm or System V memory. Only the import specifier is pointed at this checkout
// (tests/_blocks.ts says how each block is run).
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { describe, markdownBlocks, runBlock } from "./_blocks.ts";
import { runtime, test } from "./_harness.ts";
import { ROOT } from "./_process.ts";

/**
 * TEMPORARY: README blocks written against the API contract before the code has it, by heading. THE LEAD
 * EMPTIES THIS LIST AT MERGE (SHM_DOC_EXAMPLES_ALL=1 runs them anyway).
 */
const AHEAD_OF_THE_CODE: ReadonlyMap<string, string> = new Map([]);

const all = process.env.SHM_DOC_EXAMPLES_ALL === "1";
const files = [
  "README.md",
  ...readdirSync(`${ROOT}/docs`).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`),
];

for (const block of files.flatMap(markdownBlocks)) {
  const ahead = AHEAD_OF_THE_CODE.get(block.where);
  test(
    `${block.file}:${block.line} (${block.where}) runs under ${runtime} and leaves nothing behind`,
    async () => {
      const r = await runBlock(block, runtime);
      assert.equal(describe(block, r), undefined);
    },
    { skip: ahead && !all && `ahead of the code (temporary): ${ahead}` },
  );
}
