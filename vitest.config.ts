import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Finds or starts PostgreSQL and Redis once per run and locates slapd (see docs/testing.md).
    globalSetup: ["test/setup/services.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
