// The effect-auth CLI as a user runs it: a child process on a temporary SQLite file, passwords on
// stdin (not a terminal), exit codes and messages checked; the results read back through the store.
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as path from "node:path"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as UserStore from "../src/UserStore.js"
import { runCli, tempDir } from "./utils/exampleApp.js"

const dir = tempDir()
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

let files = 0
const freshDatabase = () => path.join(dir, `cli-${++files}.sqlite`)

/** Reads the file in-process, after the CLI has exited. */
const withStore = <A, E>(
  filename: string,
  f: (store: UserStore.UserStore.Service) => Effect.Effect<A, E, PasswordHasher.PasswordHasher | SqlClient.SqlClient>
) =>
  Effect.runPromise(
    Effect.flatMap(UserStore.UserStore, f).pipe(
      Effect.provide(Layer.merge(SqlUserStore.layerSqlite({ filename }), PasswordHasher.layer())),
      Effect.orDie
    )
  )

const passwordOf = (filename: string, username: string, password: string) =>
  withStore(filename, (store) =>
    Effect.gen(function*() {
      const user = Option.getOrThrow(yield* store.findByUsername(username))
      const hasher = yield* PasswordHasher.PasswordHasher
      return (yield* hasher.verify(Redacted.make(password), Redacted.value(user.passwordHash))).valid
    }))

const noStackTrace = (stderr: string) => {
  expect(stderr).not.toMatch(/^\s+at /m)
  expect(stderr.trim().split("\n")).toHaveLength(1)
}

// Each run starts a Node process (about a second on a busy machine): generous timeouts.
describe("CLI", { timeout: 120_000 }, () => {
  it("createuser reads the password from stdin and stores a hash of it", async () => {
    const db = freshDatabase()
    const result = await runCli(["createuser", "alice", "--email", "alice@example.com", "--database", db], {
      input: "correct horse\n"
    })
    expect(result).toMatchObject({ code: 0, stderr: "" })
    expect(result.stdout).toContain("Created user \"alice\"")
    expect(await passwordOf(db, "alice", "correct horse")).toBe(true)
    expect(await passwordOf(db, "alice", "correct horse\n")).toBe(false)
    const alice = await withStore(db, (store) => Effect.map(store.findByUsername("alice"), Option.getOrThrow))
    expect(alice).toMatchObject({ email: "alice@example.com", isActive: true, isSuperuser: false, isStaff: false })
    expect(Redacted.value(alice.passwordHash)).toMatch(/^pbkdf2_sha256\$1000\$/)
  })

  it("createuser --superuser makes a superuser (and staff); the last line of stdin may lack its newline", async () => {
    const db = freshDatabase()
    const result = await runCli(["createuser", "--superuser", "root", "--database", db], { input: "s3cret" })
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("Created superuser \"root\"")
    const root = await withStore(db, (store) => Effect.map(store.findByUsername("root"), Option.getOrThrow))
    expect(root).toMatchObject({ isSuperuser: true, isStaff: true })
    expect(await passwordOf(db, "root", "s3cret")).toBe(true)
  })

  it("a duplicate username exits 1 with one line on stderr and changes nothing", async () => {
    const db = freshDatabase()
    expect((await runCli(["createuser", "alice", "--database", db], { input: "first\n" })).code).toBe(0)
    const again = await runCli(["createuser", "alice", "--database", db], { input: "second\n" })
    expect(again.code).toBe(1)
    expect(again.stderr).toContain("Error: a user named \"alice\" exists already")
    noStackTrace(again.stderr)
    expect(await passwordOf(db, "alice", "first")).toBe(true)
  })

  it("no password on stdin, or a blank one, exits 1 and creates nobody", async () => {
    const db = freshDatabase()
    const empty = await runCli(["createuser", "alice", "--database", db], { input: "" })
    expect(empty.code).toBe(1)
    expect(empty.stderr).toContain("Error: no password on standard input")
    const blank = await runCli(["createuser", "alice", "--database", db], { input: "\n" })
    expect(blank.code).toBe(1)
    expect(blank.stderr).toContain("blank")
    noStackTrace(blank.stderr)
    expect(await withStore(db, (store) => store.list())).toHaveLength(0)
  })

  it("an invalid username is a clear error", async () => {
    const db = freshDatabase()
    const result = await runCli(["createuser", "x".repeat(151), "--database", db], { input: "pw\n" })
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/^Error: invalid username/)
    noStackTrace(result.stderr)
  })

  it("grant gives a permission that users then lists", async () => {
    const db = freshDatabase()
    await runCli(["createuser", "alice", "--database", db], { input: "pw\n" })
    await runCli(["createuser", "bob", "--database", db, "--email", "bob@example.com"], { input: "pw\n" })
    await runCli(["createuser", "root", "--superuser", "--database", db], { input: "pw\n" })
    const granted = await runCli(["grant", "alice", "reports.view_report", "--database", db])
    expect(granted).toMatchObject({ code: 0, stderr: "" })
    expect(granted.stdout).toContain("Granted reports.view_report to \"alice\"")
    expect(await withStore(db, (store) => store.userPermissions("1"))).toEqual(new Set(["reports.view_report"]))

    const listed = await runCli(["users", "--database", db])
    expect(listed.code).toBe(0)
    const lines = listed.stdout.trim().split("\n").map((line) => line.split(/\s{2,}/))
    expect(lines[0]).toEqual(["ID", "USERNAME", "EMAIL", "ACTIVE", "SUPERUSER", "PERMISSIONS"])
    expect(lines.slice(1)).toEqual([
      ["1", "alice", "yes", "no", "reports.view_report"],
      ["2", "bob", "bob@example.com", "yes", "no"],
      ["3", "root", "yes", "yes", "(all)"]
    ])
  })

  it("grant refuses an unknown user and a malformed permission (exit 1)", async () => {
    const db = freshDatabase()
    await runCli(["createuser", "alice", "--database", db], { input: "pw\n" })
    const unknown = await runCli(["grant", "nobody", "reports.view_report", "--database", db])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("Error: no user named \"nobody\"")
    noStackTrace(unknown.stderr)
    for (const perm of ["view_report", "reports.view report", ".x"]) {
      const bad = await runCli(["grant", "alice", perm, "--database", db])
      expect(bad.code).toBe(1)
      expect(bad.stderr).toContain("is not a permission")
    }
    expect(await withStore(db, (store) => store.userPermissions("1"))).toEqual(new Set())
  })

  it("changepassword: the new password verifies, the old one no longer does", async () => {
    const db = freshDatabase()
    await runCli(["createuser", "alice", "--database", db], { input: "old password\n" })
    const changed = await runCli(["changepassword", "alice", "--database", db], { input: "new password\n" })
    expect(changed).toMatchObject({ code: 0, stderr: "" })
    expect(changed.stdout).toContain("Changed the password of \"alice\"")
    expect(await passwordOf(db, "alice", "new password")).toBe(true)
    expect(await passwordOf(db, "alice", "old password")).toBe(false)

    const unknown = await runCli(["changepassword", "bob", "--database", db], { input: "x\n" })
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("Error: no user named \"bob\"")
  })

  it("migrate creates the user and session tables", async () => {
    const db = freshDatabase()
    const result = await runCli(["migrate", "--database", db])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("Migrated")
    const tables = await withStore(db, () =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`))
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(["auth_user", "auth_session"]))
  })

  it("DATABASE_FILE is the default database; --database wins over it", async () => {
    const fromEnv = freshDatabase()
    const fromFlag = freshDatabase()
    await runCli(["createuser", "envuser"], { input: "pw\n", env: { DATABASE_FILE: fromEnv } })
    await runCli(["createuser", "flaguser", "--database", fromFlag], { input: "pw\n", env: { DATABASE_FILE: fromEnv } })
    const names = (file: string) => withStore(file, (store) => Effect.map(store.list(), (users) => users.map((u) => u.username)))
    expect(await names(fromEnv)).toEqual(["envuser"])
    expect(await names(fromFlag)).toEqual(["flaguser"])
  })

  it("a database that cannot be opened is a clear error", async () => {
    const result = await runCli(["users", "--database", path.join(dir, "missing-dir", "x.sqlite")])
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/^Error: cannot open the database/)
    noStackTrace(result.stderr)
  })

  it("--database-url works against PostgreSQL (a throwaway database)", async () => {
    const base = new URL(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test")
    const name = `effect_auth_cli_${process.pid}_${Date.now()}`
    const admin = (statement: string) =>
      Effect.runPromise(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement)).pipe(
          Effect.provide(PgClient.layer({ url: Redacted.make(base.href) })),
          Effect.scoped
        )
      )
    await admin(`CREATE DATABASE ${name}`)
    try {
      const url = new URL(base.href)
      url.pathname = `/${name}`
      const db = ["--database-url", url.href]
      expect((await runCli(["migrate", ...db])).code).toBe(0)
      expect((await runCli(["createuser", "alice", ...db], { input: "pw\n" })).code).toBe(0)
      expect((await runCli(["grant", "alice", "reports.view_report", ...db])).code).toBe(0)
      const listed = await runCli(["users", ...db])
      expect(listed.code).toBe(0)
      expect(listed.stdout).toMatch(/alice\s+yes\s+no\s+reports\.view_report/)
      expect((await runCli(["createuser", "alice", ...db], { input: "pw\n" })).code).toBe(1)
    } finally {
      await admin(`DROP DATABASE ${name} WITH (FORCE)`)
    }
  })

  it("bad usage exits 2 with @effect/cli's message", async () => {
    const unknown = await runCli(["frobnicate"])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain("Invalid subcommand")
    const missing = await runCli(["grant", "alice"])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain("Missing argument <PERMISSION>")
  })
})
