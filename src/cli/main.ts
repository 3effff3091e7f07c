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
 * effect-auth lockouts --redis-url redis://127.0.0.1:6379   # the Lockout store's counters and locks
 * effect-auth unlock alice
 * ```
 *
 * Every command takes `--database FILE` (default: `$DATABASE_FILE`, else `./effect-auth.sqlite`,
 * the example app's file) or `--database-url postgres://...`, not both. Password hashing follows
 * `PASSWORD_HASHERS` and `PASSWORD_HASHER_*` (see `PasswordHasher.layerConfig`), over the preset of
 * the site's Django on a Django database (`--django --django-version 5.2`, or `DJANGO_VERSION`). New
 * passwords are held to Django's four validators, or to those `PASSWORD_VALIDATORS`,
 * `PASSWORD_MIN_LENGTH`, ... name (see `PasswordValidation.layerConfig`); `--skip-validation` skips
 * them. Exit codes: 0,
 * 1 for an error (one line on stderr), 2 for bad usage, 130 when a prompt is left with Ctrl-C.
 *
 * @since 0.1.0
 */
import { missingPackages } from "./missingPackage.js"

// The CLI's own packages are optional peers of effect-auth: import them dynamically, so a
// missing one is one line naming what to install instead of a module-resolution stack trace.
// Both imports are awaited, so that the line names every package that is missing.
const [commands, runtime] = await Promise.allSettled([
  import("./commands.js"),
  import("@effect/platform-node/NodeRuntime")
])
if (commands.status === "rejected" || runtime.status === "rejected") {
  const errors = [commands, runtime].flatMap((result) => result.status === "rejected" ? [result.reason] : [])
  const message = missingPackages(errors)
  if (message === undefined) throw errors[0]
  process.stderr.write(`${message}\n`)
  process.exit(1)
}
const Cli = commands.value
const Runtime = runtime.value

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
