#!/usr/bin/env node
/**
 * The `effect-auth` command-line tool: manage the users of a SQL user store (SQLite file by
 * default, PostgreSQL with `--database-url`).
 *
 * ```sh
 * effect-auth migrate
 * effect-auth createuser alice --email alice@example.com   # prompts for the password
 * echo "$PASSWORD" | effect-auth createuser ci-bot          # or reads it from stdin
 * effect-auth changepassword alice
 * effect-auth grant alice reports.view_report
 * effect-auth users
 * ```
 *
 * Every command takes `--database FILE` (default: `$DATABASE_FILE`, else `./effect-auth.sqlite`,
 * the example app's file) or `--database-url postgres://...`. Password hashing follows
 * `PASSWORD_HASHERS` and `PASSWORD_HASHER_*` (see `PasswordHasher.layerConfig`). Exit codes: 0,
 * 1 for an error (one line on stderr), 2 for bad usage, 130 when a prompt is left with Ctrl-C.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { readFileSync } from "node:fs"
import * as Cli from "../internal/cli/commands.js"

// This file is src/cli/main.ts or dist/cli/main.js: package.json is two levels up either way.
const version = (() => {
  try {
    return String(JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version)
  } catch {
    return "0.0.0"
  }
})()

Cli.run(process.argv, version).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) ? Number(exit.value) : 130)
  })
)
