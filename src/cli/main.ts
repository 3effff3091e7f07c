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
 * the example app's file) or `--database-url postgres://...`, not both. Password hashing follows
 * `PASSWORD_HASHERS` and `PASSWORD_HASHER_*` (see `PasswordHasher.layerConfig`). Exit codes: 0,
 * 1 for an error (one line on stderr), 2 for bad usage, 130 when a prompt is left with Ctrl-C.
 *
 * @since 0.1.0
 */
import type * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import type * as Commands from "./commands.js"
import { missingPackage } from "./missingPackage.js"

// The CLI's own packages are optional peers of effect-auth: import them dynamically, so a
// missing one is one line naming what to install instead of a module-resolution stack trace.
let loaded: readonly [typeof Commands, typeof NodeRuntime]
try {
  loaded = await Promise.all([import("./commands.js"), import("@effect/platform-node/NodeRuntime")])
} catch (error) {
  const message = missingPackage(error)
  if (message === undefined) throw error
  process.stderr.write(`${message}\n`)
  process.exit(1)
}
const [Cli, Runtime] = loaded

Cli.run(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env
}).pipe(
  Runtime.runMain({
    disableErrorReporting: true,
    teardown: (exit, onExit) => onExit(exit._tag === "Success" ? Number(exit.value) : 130)
  })
)
