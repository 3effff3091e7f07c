import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const src = fileURLToPath(new URL("./src/", import.meta.url))

export default defineConfig({
  // As tsconfig's `paths`: the docs' test blocks (test/Docs.test.ts) import the package by name.
  resolve: {
    alias: [
      { find: /^effect-auth$/, replacement: `${src}index.ts` },
      { find: /^effect-auth\/(.*)$/, replacement: `${src}$1.ts` }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: [],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
