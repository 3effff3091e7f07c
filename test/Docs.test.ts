// Every fenced TypeScript block of README.md and docs/*.md, checked as a reader would use it: the
// blocks are written to .tmp/docs/, type-checked together (as docgen does for the JSDoc examples),
// and the runnable ones run to completion. The markers a fence may carry (`check-only`, `test`,
// `fragment`) are described in docs/README.md and test/utils/docBlocks.ts.
import { describe, expect, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import { allBlocks, runBlock, typeCheckApart, writeBlocks } from "./utils/docBlocks.js"

const blocks = allBlocks()
const tsconfig = writeBlocks(blocks)

describe("docs", () => {
  it("has TypeScript blocks to check, most of them run", () => {
    expect(blocks.filter((block) => block.mode === "run").length).toBeGreaterThan(20)
  })

  it("every block that is not a fragment type-checks", { timeout: 300_000 }, async () => {
    expect(await typeCheckApart(blocks, tsconfig)).toEqual([])
  })

  describe.concurrent("runs to completion", () => {
    for (const block of blocks.filter((block) => block.mode === "run")) {
      it(block.where, { timeout: 120_000 }, async () => {
        const result = await runBlock(block, 90_000)
        const output = `${block.where} exited with ${result.code ?? result.signal}${
          result.timedOut ? " (timed out)" : ""
        }\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`
        expect(result.code, output).toBe(0)
      })
    }
  })

  // docs/security.md and others name the test that pins a claim: `test/X.test.ts` › "name" (a
  // name may end in "…", a prefix). A renamed or removed test leaves the claim unproven.
  it("every test a doc names exists in the file it names", () => {
    const root = new URL("../", import.meta.url)
    const docs = ["README.md", ...readdirSync(new URL("docs/", root)).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)]
    const cited = docs.flatMap((doc) =>
      [...readFileSync(new URL(doc, root), "utf8").matchAll(/`(test\/[\w.]+\.test\.ts)` › "([^"]+)"/g)].map(
        ([, file, name]) => ({ doc, file: file!, name: name!.replace(/…$/, "").replace(/\s+/g, " ").trim() })
      )
    )
    expect(cited.length).toBeGreaterThan(10)
    const missing = cited.filter(({ file, name }) => !readFileSync(new URL(file, root), "utf8").includes(name))
    expect(missing).toEqual([])
  })

  // A `test` block is a test module: its tests are registered here, under the block's location.
  for (const block of blocks.filter((block) => block.mode === "test")) {
    describe(block.where, async () => {
      await import(block.file)
    })
  }
})
