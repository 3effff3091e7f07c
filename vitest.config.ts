import { availableParallelism } from "node:os"
import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const src = fileURLToPath(new URL("./src/", import.meta.url))

export default defineConfig({
  // As tsconfig's `paths`: the docs' test blocks (test/Docs.test.ts) import the package by name.
  resolve: {
    alias: [
      { find: /^effect-auth$/, replacement: `${src}index.ts` },
      { find: /^effect-auth\/FoldLaws$/, replacement: `${src}testing/FoldLaws.ts` },
      { find: /^effect-auth\/(.*)$/, replacement: `${src}$1.ts` }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    // Finds or starts PostgreSQL and Redis once per run and locates slapd (see docs/testing.md).
    globalSetup: ["test/setup/services.ts"],
    // Much of a file's time is waiting (servers, child processes, the hashers' thread pool): two
    // workers even on two cores, where vitest's default (cores - 1) would run every file in one.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // Loading Effect and the library again for every file was about half the CPU time. The files
    // share no mutable state: no module mocks, no globals, every server resource under a prefix of
    // its own, and no `it.layer` (which re-points the global `it`; see test/utils/slapd.ts).
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
