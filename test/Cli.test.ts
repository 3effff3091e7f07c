// The effect-auth CLI in-process: each command runs through `run(args, io)` on a temporary SQLite
// file, passwords on stdin (not a terminal), exit codes and output captured; the results read
// back through the store. One test starts the real entry (src/cli/main.ts) as a child process.
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { Readable } from "node:stream"
import { Redis as IORedis } from "ioredis"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as Cli from "../src/cli/commands.js"
import * as Lockout from "../src/Lockout.js"
import * as SqlLockoutStore from "../src/SqlLockoutStore.js"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as TestAuth from "../src/testing/TestAuth.js"
import * as TestBackend from "../src/testing/TestBackend.js"
import { cliPackages, installHint, missingPackages } from "../src/cli/missingPackage.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as UserStore from "../src/UserStore.js"
import { fastHashing, runCli, tempDir } from "./utils/exampleApp.js"
import * as Postgres from "./utils/postgres.js"
import * as RedisUtil from "./utils/redis.js"
import { djangoPython, djangos, site } from "./utils/django.js"

const dir = tempDir()
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

let files = 0
const freshDatabase = () => path.join(dir, `cli-${++files}.sqlite`)

interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * `effect-auth ...args` in this process: `input` is stdin (then closed), `env` is the whole
 * environment (besides cheap hashing), `tty` makes stdout and stderr claim to be terminals.
 */
const cli = (
  args: ReadonlyArray<string>,
  options: {
    readonly input?: string | Uint8Array
    /** `undefined` unsets a variable (`PASSWORD_HASHER_PBKDF2_ITERATIONS` for real hashing). */
    readonly env?: Readonly<Record<string, string | undefined>>
    readonly tty?: boolean
  } = {}
): Effect.Effect<CliResult> =>
  Effect.suspend(() => {
    let stdout = ""
    let stderr = ""
    return Effect.map(
      Cli.run(args, {
        stdin: Readable.from(options.input === undefined || options.input.length === 0 ? [] : [options.input]),
        stdout: { write: (text) => (stdout += text), isTTY: options.tty === true },
        stderr: { write: (text) => (stderr += text), isTTY: options.tty === true },
        env: { ...fastHashing, ...options.env }
      }),
      (code) => ({ code, stdout, stderr })
    )
  })

/** Reads the file in-process, after the command has finished. */
const withStore = <A, E>(
  filename: string,
  f: (store: UserStore.UserStore.Service) => Effect.Effect<A, E, PasswordHasher.PasswordHasher | SqlClient.SqlClient>
) =>
  Effect.flatMap(UserStore.UserStore, f).pipe(
    Effect.provide(Layer.merge(SqlUserStore.layerSqlite({ filename }), PasswordHasher.layer())),
    Effect.orDie
  )

const passwordOf = (filename: string, username: string, password: string) =>
  withStore(filename, (store) =>
    Effect.gen(function*() {
      const user = Option.getOrThrow(yield* store.findByUsername(username))
      const hasher = yield* PasswordHasher.PasswordHasher
      return (yield* hasher.verify(Redacted.make(password), Redacted.value(user.passwordHash))).valid
    }))

/** The tables of a SQLite file, read without the store (which would create them). */
const sqliteTables = (filename: string) =>
  Effect.gen(function*() {
    const Sqlite = yield* Effect.promise(() => import("@effect/sql-sqlite-node/SqliteClient"))
    return yield* Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`
    ).pipe(Effect.provide(Sqlite.layer({ filename })), Effect.orDie)
  }).pipe(Effect.map((rows) => rows.map((row) => row.name)))

const noStackTrace = (stderr: string) => {
  expect(stderr).not.toMatch(/^\s+at /m)
  expect(stderr.trim().split("\n")).toHaveLength(1)
}

const ansi = /\u001b\[/

describe("CLI", () => {
  it.effect("createuser reads the password from stdin and stores a hash of it", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      const result = yield* cli(["createuser", "alice", "--email", "alice@example.com", "--database", db], {
        input: "correct horse\n"
      })
      expect(result).toMatchObject({ code: 0, stderr: "" })
      expect(result.stdout).toContain("Created user \"alice\"")
      expect(yield* passwordOf(db, "alice", "correct horse")).toBe(true)
      expect(yield* passwordOf(db, "alice", "correct horse\n")).toBe(false)
      const alice = yield* withStore(db, (store) => Effect.map(store.findByUsername("alice"), Option.getOrThrow))
      expect(alice).toMatchObject({ email: "alice@example.com", isActive: true, isSuperuser: false, isStaff: false })
      expect(Redacted.value(alice.passwordHash)).toMatch(/^pbkdf2_sha256\$1000\$/)
    }))

  it.effect("createuser and changepassword refuse a weak password with every one of Django's messages, exit 1", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      const weak = yield* cli(["createuser", "alice", "--email", "alice@example.com", "--database", db], { input: "12345\n" })
      expect(weak.code).toBe(1)
      expect(weak.stderr).toBe([
        "Error: the password was refused:",
        "  This password is too short. It must contain at least 8 characters.",
        "  This password is too common.",
        "  This password is entirely numeric.",
        ""
      ].join("\n"))
      const similar = yield* cli(["createuser", "alice", "--email", "alice@example.com", "--database", db], { input: "alice@example\n" })
      expect(similar.code).toBe(1)
      expect(similar.stderr).toContain("The password is too similar to the email address.")
      expect(yield* withStore(db, (store) => store.findByUsername("alice"))).toEqual(Option.none())
      expect((yield* cli(["createuser", "alice", "--database", db], { input: "pw plum orchard\n" })).code).toBe(0)
      const change = yield* cli(["changepassword", "alice", "--database", db], { input: "password\n" })
      expect(change.code).toBe(1)
      expect(change.stderr).toContain("This password is too common.")
      expect(yield* passwordOf(db, "alice", "pw plum orchard")).toBe(true)
    }))

  it.effect("the password rules are the settings' (PASSWORD_VALIDATORS, PASSWORD_MIN_LENGTH, PASSWORD_COMMON_LIST, ...); --skip-validation sets none", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      const create = (name: string, password: string, env: Record<string, string> = {}, flags: ReadonlyArray<string> = []) =>
        cli(["createuser", name, ...flags, "--database", db], { input: `${password}\n`, env })
      // AUTH_PASSWORD_VALIDATORS = [] (Django's own default): anything not blank
      expect(yield* create("none", "password", { PASSWORD_VALIDATORS: "none" })).toMatchObject({ code: 0, stderr: "" })
      // Django's four with min_length 12
      expect((yield* create("twelve", "Short-pw-9!", { PASSWORD_MIN_LENGTH: "12" })).stderr).toBe(
        "Error: the password was refused:\n  This password is too short. It must contain at least 12 characters.\n"
      )
      // only the length rule, named as settings.py names it
      const onlyLength = { PASSWORD_VALIDATORS: "django.contrib.auth.password_validation.MinimumLengthValidator" }
      expect(yield* create("length", "password", onlyLength)).toMatchObject({ code: 0, stderr: "" })
      // the common-password list of Django 3.2 ("giuliano") or of the newer ones ("winston1")
      const common = "Error: the password was refused:\n  This password is too common.\n"
      expect((yield* create("new", "winston1")).stderr).toBe(common)
      expect(yield* create("new", "giuliano")).toMatchObject({ code: 0, stderr: "" })
      expect((yield* create("old", "giuliano", { PASSWORD_COMMON_LIST: "django-3.2" })).stderr).toBe(common)
      expect(yield* create("old", "winston1", { PASSWORD_COMMON_LIST: "django-3.2" })).toMatchObject({ code: 0 })
      // the similarity threshold
      expect(yield* create("alice", "aliceXYZ12")).toMatchObject({ code: 0 })
      expect((yield* create("carol", "carolXYZ12", { PASSWORD_MAX_SIMILARITY: "0.5" })).stderr).toContain(
        "The password is too similar to the username."
      )

      // createsuperuser's bypass, for changepassword too; a blank password is still refused
      expect(yield* create("weak", "12345", {}, ["--skip-validation"])).toMatchObject({ code: 0, stderr: "" })
      expect(yield* cli(["changepassword", "weak", "--skip-validation", "--database", db], { input: "1\n" })).toMatchObject({
        code: 0,
        stderr: ""
      })
      expect(yield* passwordOf(db, "weak", "1")).toBe(true)
      expect((yield* create("blank", "   ", {}, ["--skip-validation"])).stderr).toContain("blank")

      // settings Django's validators would refuse to be built with: exit 1, nobody created
      for (
        const env of [
          { PASSWORD_VALIDATORS: "MinimumLengthValidator,Frobnicator" },
          { PASSWORD_VALIDATORS: "" },
          { PASSWORD_MIN_LENGTH: "0" },
          { PASSWORD_MAX_SIMILARITY: "0.05" },
          { PASSWORD_COMMON_LIST: "django-1.0" }
        ]
      ) {
        const bad = yield* create("bad", "pw plum orchard", env)
        expect(bad.code, JSON.stringify(env)).toBe(1)
        expect(bad.stderr).toMatch(/^Error: bad password validation settings: /)
        noStackTrace(bad.stderr)
      }
      const names = yield* withStore(db, (store) => Effect.map(store.list(), (users) => users.map((u) => u.username)))
      expect(names).toEqual(["none", "length", "new", "old", "alice", "weak"])
    }))

  it.effect("createuser cleans --email as createsuperuser does: Django's EmailValidator and 254 characters, before any password", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      // (the model field createsuperuser cleans with does not strip: " a@b.cd" is refused too)
      for (const email of ["alice", "alice@", "alice@example", "a..b@example.com", "alice@-example.com", "alice@[256.1.1.1]", " alice@example.com"]) {
        // no password on stdin: an email refused first never gets to ask for one
        const bad = yield* cli(["createuser", "alice", "--email", email, "--database", db], { input: "" })
        expect(bad, email).toMatchObject({ code: 1, stderr: "Error: Enter a valid email address.\n" })
      }
      // Django's EmailField: the address may be valid and still too long for the column
      const long = yield* cli(["createuser", "alice", "--email", `${"a".repeat(310)}@b.cd`, "--database", db], { input: "" })
      expect(long.stderr).toBe("Error: Ensure this value has at most 254 characters (it has 315).\n")
      const both = yield* cli(["createuser", "alice", "--email", `${"a".repeat(310)}@b`, "--database", db], { input: "" })
      expect(both.stderr).toBe("Error: Enter a valid email address.; Ensure this value has at most 254 characters (it has 312).\n")
      expect(yield* withStore(db, (store) => store.findByUsername("alice"))).toEqual(Option.none())
      const ok = yield* cli(["createuser", "alice", "--email", "alice@Example.COM", "--database", db], {
        input: "correct horse\n"
      })
      expect(ok.code).toBe(0)
      const alice = yield* withStore(db, (store) => Effect.map(store.findByUsername("alice"), Option.getOrThrow))
      expect(alice.email).toBe("alice@example.com") // the domain lowercased (normalize_email)
      for (const [name, email] of [["bob", "bob@localhost"], ["carol", "carol@[::1]"], ["dave", "dave@münchen.de"], ["erin", ""]]) {
        expect((yield* cli(["createuser", name!, "--email", email!, "--database", db], { input: "correct horse\n" })).code, email)
          .toBe(0)
      }
    }))

  it.effect("createuser --superuser makes a superuser (and staff); the last line of stdin may lack its newline", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      const result = yield* cli(["createuser", "--superuser", "root", "--database", db], { input: "root s3cret vault" })
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("Created superuser \"root\"")
      const root = yield* withStore(db, (store) => Effect.map(store.findByUsername("root"), Option.getOrThrow))
      expect(root).toMatchObject({ isSuperuser: true, isStaff: true })
      expect(yield* passwordOf(db, "root", "root s3cret vault")).toBe(true)
    }))

  it.effect("a duplicate username exits 1 with one line on stderr and changes nothing", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      expect((yield* cli(["createuser", "alice", "--database", db], { input: "first quiet harbour\n" })).code).toBe(0)
      const again = yield* cli(["createuser", "alice", "--database", db], { input: "second quiet harbour\n" })
      expect(again.code).toBe(1)
      expect(again.stderr).toContain("Error: a user named \"alice\" exists already")
      noStackTrace(again.stderr)
      expect(yield* passwordOf(db, "alice", "first quiet harbour")).toBe(true)
    }))

  it.effect("no password on stdin, or a blank one, exits 1 and creates nobody", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      const empty = yield* cli(["createuser", "alice", "--database", db], { input: "" })
      expect(empty.code).toBe(1)
      expect(empty.stderr).toContain("Error: no password on standard input")
      // Django's createsuperuser refuses `password.strip() == ""`: whitespace only is blank too
      for (const input of ["\n", "          \n", "\t\t\t\t\t\t\t\t\t\t\n", "\u3000\u00a0\u2028 \n"]) {
        const blank = yield* cli(["createuser", "alice", "--database", db], { input })
        expect(blank.code).toBe(1)
        expect(blank.stderr).toContain("blank")
        noStackTrace(blank.stderr)
      }
      expect(yield* withStore(db, (store) => store.list())).toHaveLength(0)
    }))

  // Python reads Django's prompt strictly; a lenient read made `p\xe4sswort` (Latin-1) and
  // `p\xf6sswort` one stored password, `p\ufffdsswort`, neither of them the one piped.
  it.effect("a password on stdin that is no UTF-8 exits 1 and creates nobody; UTF-8 is read as sent", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      const latin1 = Buffer.concat([Buffer.from("p"), Buffer.from([0xe4]), Buffer.from("sswort-long-123\n")])
      const refused = yield* cli(["createuser", "latin", "--database", db], { input: latin1 })
      expect([refused.code, refused.stderr.trim()]).toEqual([1, "Error: the password read from standard input is not valid UTF-8"])
      const created = yield* cli(["createuser", "utf8", "--database", db], { input: Buffer.from("pässwort-long-123\r\nrest\n") })
      expect(created.code).toBe(0)
      expect(yield* passwordOf(db, "utf8", "pässwort-long-123")).toBe(true)
      expect((yield* withStore(db, (store) => store.list())).map((user) => user.username)).toEqual(["utf8"])
    }))

  it.effect("an invalid username is a clear error", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      const result = yield* cli(["createuser", "x".repeat(151), "--database", db], { input: "pw plum orchard\n" })
      expect(result.code).toBe(1)
      expect(result.stderr).toMatch(/^Error: invalid username/)
      noStackTrace(result.stderr)
    }))

  it.effect("grant gives a permission that users then lists", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      yield* cli(["createuser", "alice", "--database", db], { input: "pw plum orchard\n" })
      yield* cli(["createuser", "bob", "--database", db, "--email", "bob@example.com"], { input: "pw plum orchard\n" })
      yield* cli(["createuser", "root", "--superuser", "--database", db], { input: "pw plum orchard\n" })
      const granted = yield* cli(["grant", "alice", "reports.view_report", "--database", db])
      expect(granted).toMatchObject({ code: 0, stderr: "" })
      expect(granted.stdout).toContain("Granted reports.view_report to \"alice\"")
      expect(yield* withStore(db, (store) => store.userPermissions("1"))).toEqual(new Set(["reports.view_report"]))

      const listed = yield* cli(["users", "--database", db])
      expect(listed.code).toBe(0)
      const lines = listed.stdout.trim().split("\n").map((line) => line.split(/\s{2,}/))
      expect(lines[0]).toEqual(["ID", "USERNAME", "EMAIL", "ACTIVE", "SUPERUSER", "PERMISSIONS"])
      expect(lines.slice(1)).toEqual([
        ["1", "alice", "yes", "no", "reports.view_report"],
        ["2", "bob", "bob@example.com", "yes", "no"],
        ["3", "root", "yes", "yes", "(all)"]
      ])
    }))

  it.effect("users lists the permissions Django counts: none for an inactive user (a superuser too), (all) for an active superuser only", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      for (const [name, flags] of [["alice", []], ["bob", []], ["root", ["--superuser"]], ["root2", ["--superuser"]]] as const) {
        yield* cli(["createuser", name, ...flags, "--database", db], { input: "pw plum orchard\n" })
      }
      for (const name of ["alice", "bob"]) yield* cli(["grant", name, "reports.view_report", "--database", db])
      // bob and root2 are deactivated; their grants stay on record
      yield* withStore(db, (store) => Effect.all([store.setFlags("2", { isActive: false }), store.setFlags("4", { isActive: false })]))
      const listed = yield* cli(["users", "--database", db])
      expect(listed.stdout.trimEnd().split("\n").map((line) => line.split(/\s{2,}/))).toEqual([
        ["ID", "USERNAME", "EMAIL", "ACTIVE", "SUPERUSER", "PERMISSIONS"],
        ["1", "alice", "yes", "no", "reports.view_report"],
        ["2", "bob", "no", "no"],
        ["3", "root", "yes", "yes", "(all)"],
        ["4", "root2", "no", "yes"]
      ])
      // what explain says of them
      expect((yield* cli(["explain", "root2", "reports.view_report", "--database", db])).stdout).toContain("inactive user: no permissions")
      expect((yield* cli(["explain", "bob", "reports.view_report", "--database", db])).stdout).toContain("bob may not")
    }))

  it.effect("grant refuses an unknown user and a malformed permission (exit 1)", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      yield* cli(["createuser", "alice", "--database", db], { input: "pw plum orchard\n" })
      const unknown = yield* cli(["grant", "nobody", "reports.view_report", "--database", db])
      expect(unknown.code).toBe(1)
      expect(unknown.stderr).toContain("Error: no user named \"nobody\"")
      noStackTrace(unknown.stderr)
      // (a codename may hold spaces, as Django's may; an app label may not)
      for (const perm of ["view_report", "my reports.view_report", "reports.view\treport", ".x"]) {
        const bad = yield* cli(["grant", "alice", perm, "--database", db])
        expect(bad.code).toBe(1)
        expect(bad.stderr).toContain("is not a permission")
      }
      expect(yield* withStore(db, (store) => store.userPermissions("1"))).toEqual(new Set())
    }))

  it.effect("changepassword: the new password verifies, the old one no longer does", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      yield* cli(["createuser", "alice", "--database", db], { input: "old slate lantern\n" })
      const changed = yield* cli(["changepassword", "alice", "--database", db], { input: "new slate lantern\n" })
      expect(changed).toMatchObject({ code: 0, stderr: "" })
      expect(changed.stdout).toContain("Changed the password of \"alice\"")
      expect(yield* passwordOf(db, "alice", "new slate lantern")).toBe(true)
      expect(yield* passwordOf(db, "alice", "old slate lantern")).toBe(false)

      const unknown = yield* cli(["changepassword", "bob", "--database", db], { input: "x\n" })
      expect(unknown.code).toBe(1)
      expect(unknown.stderr).toContain("Error: no user named \"bob\"")
    }))

  it.effect("migrate creates the user and session tables", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      const result = yield* cli(["migrate", "--database", db])
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("Migrated")
      expect(yield* sqliteTables(db)).toEqual(expect.arrayContaining(["auth_user", "auth_session"]))
    }))

  it.effect("DATABASE_FILE is the default database; --database wins over it", () =>
    Effect.gen(function*() {
      const fromEnv = freshDatabase()
      const fromFlag = freshDatabase()
      yield* cli(["createuser", "envuser"], { input: "pw plum orchard\n", env: { DATABASE_FILE: fromEnv } })
      yield* cli(["createuser", "flaguser", "--database", fromFlag], { input: "pw plum orchard\n", env: { DATABASE_FILE: fromEnv } })
      const names = (file: string) =>
        withStore(file, (store) => Effect.map(store.list(), (users) => users.map((u) => u.username)))
      expect(yield* names(fromEnv)).toEqual(["envuser"])
      expect(yield* names(fromFlag)).toEqual(["flaguser"])
    }))

  it.effect("an empty --database or DATABASE_FILE is bad usage (exit 2), not SQLite's temporary database", () =>
    Effect.gen(function*() {
      for (const [args, env] of [[["--database", ""], {}], [[], { DATABASE_FILE: "" }]] as const) {
        for (const command of [["migrate"], ["createuser", "alice"]]) {
          const result = yield* cli([...command, ...args], { input: "pw plum orchard\n", env })
          expect(result.code).toBe(2)
          expect(result.stdout).toBe("")
          expect(result.stderr).toContain("is empty: name the SQLite file")
          noStackTrace(result.stderr)
        }
      }
    }))

  it.effect("a database that cannot be opened is a clear error", () =>
    Effect.gen(function*() {
      const result = yield* cli(["users", "--database", path.join(dir, "missing-dir", "x.sqlite")])
      expect(result.code).toBe(1)
      expect(result.stderr).toMatch(/^Error: cannot open the database/)
      noStackTrace(result.stderr)
    }))

  it.effect("--database with --database-url is bad usage (exit 2, one line) and opens nothing", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      for (const command of [["migrate"], ["users"], ["createuser", "alice"], ["grant", "alice", "reports.view_report"]]) {
        const both = yield* cli([...command, "--database", db, "--database-url", "postgres://u:secret@127.0.0.1:1/x"], {
          input: "pw plum orchard\n"
        })
        expect(both.code).toBe(2)
        expect(both.stdout).toBe("")
        expect(both.stderr).toContain("--database and --database-url exclude each other")
        expect(both.stderr).not.toContain("secret")
        noStackTrace(both.stderr)
      }
      // DATABASE_FILE is only a default: with --database-url alone it is no contradiction.
      const envAndUrl = yield* cli(["users", "--database-url", "not a url"], { env: { DATABASE_FILE: db } })
      expect(envAndUrl.code).toBe(1)
      expect(envAndUrl.stderr).toMatch(/^Error: cannot open the database/)
      expect(fs.existsSync(db)).toBe(false)
    }))

  it.effect("users on a database without the tables says so, exits 1 and creates nothing", () =>
    Effect.gen(function*() {
      const missing = freshDatabase()
      const fresh = yield* cli(["users", "--database", missing])
      expect(fresh.code).toBe(1)
      expect(fresh.stderr).toBe(`Error: no user tables in ${missing}; run \`effect-auth migrate\` first\n`)
      expect(fs.existsSync(missing)).toBe(false)

      // An existing SQLite file of some other app: its tables stay as they were.
      const other = freshDatabase()
      yield* Effect.gen(function*() {
        const Sqlite = yield* Effect.promise(() => import("@effect/sql-sqlite-node/SqliteClient"))
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE notes (id integer)`).pipe(
          Effect.provide(Sqlite.layer({ filename: other })),
          Effect.orDie
        )
      })
      const unrelated = yield* cli(["users", "--database", other])
      expect(unrelated.code).toBe(1)
      expect(unrelated.stderr).toBe(`Error: no user tables in ${other}; run \`effect-auth migrate\` first\n`)
      expect(yield* sqliteTables(other)).toEqual(["notes"])

      expect((yield* cli(["migrate", "--database", other])).code).toBe(0)
      const empty = yield* cli(["users", "--database", other])
      expect(empty).toMatchObject({ code: 0, stderr: "" })
      expect(empty.stdout).toContain("No users yet")
    }))

  it.effect.skipIf(Postgres.missing)("--database-url works against PostgreSQL (a throwaway database); users does not migrate it", () =>
    Effect.gen(function*() {
      const base = new URL(Postgres.databaseUrl)
      const name = `effect_auth_cli_${process.pid}_${Date.now()}`
      const admin = (statement: string) =>
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement)).pipe(
          Effect.provide(PgClient.layer({ url: Redacted.make(base.href) })),
          Effect.scoped,
          Effect.orDie
        )
      yield* admin(`CREATE DATABASE ${name}`)
      const url = new URL(base.href)
      url.pathname = `/${name}`
      const db = ["--database-url", url.href]
      yield* Effect.gen(function*() {
        const unmigrated = yield* cli(["users", ...db])
        expect(unmigrated.code).toBe(1)
        expect(unmigrated.stderr).toBe("Error: no user tables in the PostgreSQL database; run `effect-auth migrate` first\n")
        const tables = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql<{ n: string }>`SELECT count(*)::text AS n FROM information_schema.tables WHERE table_schema = 'public'`).pipe(
            Effect.provide(PgClient.layer({ url: Redacted.make(url.href) })),
            Effect.orDie
          )
        expect(tables).toEqual([{ n: "0" }])

        expect((yield* cli(["migrate", ...db])).code).toBe(0)
        expect((yield* cli(["createuser", "alice", ...db], { input: "pw plum orchard\n" })).code).toBe(0)
        expect((yield* cli(["grant", "alice", "reports.view_report", ...db])).code).toBe(0)
        const listed = yield* cli(["users", ...db])
        expect(listed.code).toBe(0)
        expect(listed.stdout).toMatch(/alice\s+yes\s+no\s+reports\.view_report/)
        expect((yield* cli(["createuser", "alice", ...db], { input: "pw plum orchard\n" })).code).toBe(1)
      }).pipe(Effect.ensuring(admin(`DROP DATABASE ${name} WITH (FORCE)`)))
    }))

  it.effect("--django-version goes with --django and names a Django of PasswordHasher.djangoPresets (bad usage, exit 2)", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      const alone = yield* cli(["createuser", "alice", "--django-version", "5.2", "--database", db], { input: "pw plum orchard\n" })
      expect(alone.code).toBe(2)
      expect(alone.stderr).toContain("go with --django")
      for (const [args, env] of [[["--django-version", "5.1"], {}], [[], { DJANGO_VERSION: "5.1" }]] as const) {
        const unknown = yield* cli(["createuser", "alice", "--django", ...args, "--database", db], { input: "pw plum orchard\n", env })
        expect(unknown.code).toBe(2)
        expect(unknown.stderr).toMatch(/3\.2.*4\.2.*5\.2.*6\.0/)
      }
      // Without --django, DJANGO_VERSION means nothing: not read, so not refused.
      expect((yield* cli(["createuser", "alice", "--database", db], { input: "pw plum orchard\n", env: { DJANGO_VERSION: "5.1" } })).code)
        .toBe(0)
      expect(fs.existsSync(db)).toBe(true)
      expect((yield* cli(["createuser", "--help"])).stdout).toContain("--django-version")
    }))

  it.effect("bad usage exits 2 with @effect/cli's message", () =>
    Effect.gen(function*() {
      const unknown = yield* cli(["frobnicate"])
      expect(unknown.code).toBe(2)
      expect(unknown.stderr).toContain("Invalid subcommand")
      const missing = yield* cli(["grant", "alice"])
      expect(missing.code).toBe(2)
      expect(missing.stderr).toContain("Missing argument <PERMISSION>")
    }))

  it.effect("help and usage errors carry colours only on a terminal without NO_COLOR", () =>
    Effect.gen(function*() {
      const piped = yield* cli(["--help"])
      expect(piped.code).toBe(0)
      expect(piped.stdout).toContain("USAGE")
      expect(piped.stdout).not.toMatch(ansi)
      expect((yield* cli(["frobnicate"])).stderr).not.toMatch(ansi)
      expect((yield* cli(["users", "--help"])).stdout).not.toMatch(ansi)

      const terminal = yield* cli(["--help"], { tty: true })
      expect(terminal.stdout).toMatch(ansi)
      expect(terminal.stdout.replace(/\u001b\[[0-9;]*m/g, "")).toBe(piped.stdout)
      expect((yield* cli(["--help"], { tty: true, env: { NO_COLOR: "1" } })).stdout).toBe(piped.stdout)
    }))

  it.effect("missing CLI packages are named, with the command that installs them", () =>
    Effect.gen(function*() {
      const failure = yield* Effect.flip(Effect.tryPromise(() => import("@effect/cli-not-installed" as string)))
      expect((failure.cause as { code?: unknown }).code).toBe("ERR_MODULE_NOT_FOUND")
      // What Node says when another package is missing: the same error, another name.
      const missing = (name: string) =>
        Object.assign(new Error(String((failure.cause as Error).message).replace("@effect/cli-not-installed", name)), {
          code: "ERR_MODULE_NOT_FOUND"
        })
      const install = "npm install @effect/cli@0.77.2 @effect/platform-node@0.108.2 @effect/sql-sqlite-node@0.53.0"
      expect(missingPackages([missing("@effect/cli")])).toBe(
        `effect-auth: the command-line tool needs the package @effect/cli, which is not installed; install it with: ${install}`
      )
      expect(missingPackages([missing("@effect/platform-node"), missing("@effect/cli")])).toBe(
        "effect-auth: the command-line tool needs the packages @effect/cli and @effect/platform-node, which are not " +
          `installed; install them with: ${install}`
      )
      expect(cliPackages).toHaveLength(3)
      expect(missingPackages([failure.cause])).toContain("needs the package @effect/cli-not-installed")
      expect(missingPackages([missing("@effect/cli"), new Error("boom")])).toBeUndefined()
      expect(missingPackages([])).toBeUndefined()
      // A database driver, loaded only when used, wrapped in the store's error.
      expect(installHint({ _tag: "UserStoreError", cause: missing("@effect/sql-pg") })).toBe(
        "the package @effect/sql-pg is not installed; install it with: npm install @effect/sql-pg@0.53.0"
      )
      expect(installHint(new Error("ECONNREFUSED"))).toBeUndefined()
    }))

  // The real entry: argv, stdin and the exit code through a process, on plain node plus tsx's loader.
  it("the effect-auth entry runs as a process", { timeout: 120_000 }, async () => {
    const db = freshDatabase()
    const created = await runCli(["createuser", "alice", "--database", db], { input: "pw plum orchard\n" })
    expect(created).toMatchObject({ code: 0, stderr: "" })
    expect(created.stdout).toContain("Created user \"alice\"")
    const both = await runCli(["users", "--database", db, "--database-url", "postgres://x@127.0.0.1:1/x"])
    expect(both.code).toBe(2)
    expect(await Effect.runPromise(passwordOf(db, "alice", "pw plum orchard"))).toBe(true)
  })
})

describe.skipIf(RedisUtil.missing)("lockouts and unlock (the Lockout store on Redis)", () => {
  it.scoped("list the counters and locks the app made, and reset a user's", () =>
    Effect.gen(function*() {
      const keyPrefix = RedisUtil.uniquePrefix("cli-lockout")
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new IORedis(RedisUtil.redisUrl)),
        (c) => Effect.promise(() => c.quit())
      )
      // The app: five wrong passwords for eve lock her (by username).
      const app = yield* Layer.build(
        Lockout.layerAuthService(TestAuth.layer([TestBackend.noMatch("passwords")])).pipe(
          Layer.provideMerge(Lockout.layerRedis({ client, keyPrefix, by: "username", limit: 5 })),
          Layer.provideMerge(AuthEvents.layer)
        )
      )
      const auth = Context.get(app, AuthService.AuthService)
      for (let i = 0; i < 6; i++) yield* Effect.exit(auth.authenticate({ username: "eve", password: "wrong" }))
      const env = { REDIS_URL: RedisUtil.redisUrl }
      const listed = yield* cli(["lockouts", "--key-prefix", keyPrefix], { env })
      expect(listed.code).toBe(0)
      expect(listed.stdout).toMatch(/username:eve\s+5\s+\d{4}-/)
      const unlocked = yield* cli(["unlock", "eve", "--key-prefix", keyPrefix], { env })
      expect([unlocked.code, unlocked.stdout.trim()]).toEqual([0, "Reset 1 key: username:eve"])
      expect((yield* cli(["lockouts", "--key-prefix", keyPrefix], { env })).stdout.trim()).toBe("No failed logins on record.")
      // eve's next attempt reaches the backend again (NoMatch, not LockedOut).
      const next = yield* Effect.flip(auth.authenticate({ username: "eve", password: "wrong" }))
      expect(next._tag).toBe("AuthenticationFailed")
    }))

  it.effect("without a Redis URL, or with one that does not answer, the command fails with a message", () =>
    Effect.gen(function*() {
      const none = yield* cli(["lockouts"], { env: {} })
      expect([none.code, none.stderr.trim()]).toEqual([1, "Error: give the Lockout store's Redis with --redis-url or REDIS_URL"])
      const dead = yield* cli(["lockouts", "--redis-url", "redis://127.0.0.1:1"], { env: {} })
      expect(dead.code).toBe(1)
      expect(dead.stderr).toMatch(/^Error: lockout store: /)
    }))
})


describe("lockouts and unlock: a Redis URL ioredis cannot read", () => {
  it.effect("is bad usage (exit 2, one line, the URL not shown), not an unexpected failure; with --sql it is not read", () =>
    Effect.gen(function*() {
      for (const command of [["lockouts"], ["unlock", "eve"]]) {
        // "::::" made ioredis throw "Invalid URL" when the command built its client: exit 1,
        // "Error: unexpected failure: Invalid URL"
        for (const url of ["::::", "redis://:secret%E0%A4%A@127.0.0.1:1"]) {
          const result = yield* cli([...command, "--redis-url", url], { env: {} })
          expect(result.code).toBe(2)
          expect(result.stdout).toBe("")
          expect(result.stderr).toContain("--redis-url is no Redis URL")
          expect(result.stderr).not.toContain("secret")
          noStackTrace(result.stderr)
        }
        // @effect/cli quotes a token it cannot place (a flag given twice, a misspelt one) in its
        // usage error: the URL's password is masked there too
        for (const args of [
          ["--redis-url=redis://:S3cretPW@127.0.0.1:1/12", "--redis-url=redis://:S3cretPW@127.0.0.1:1/12"],
          ["--redis-urll=redis://user:S3cretPW@127.0.0.1:1/12"]
        ]) {
          const usage = yield* cli([...command, ...args], { env: {} })
          expect(usage.code).toBe(2)
          expect(usage.stderr).not.toContain("S3cretPW")
          expect(usage.stderr).toContain(":***@127.0.0.1")
        }
        const fromEnv = yield* cli(command, { env: { REDIS_URL: "::::" } })
        expect(fromEnv.code).toBe(2)
        expect(fromEnv.stderr).toContain("REDIS_URL is no Redis URL")
        noStackTrace(fromEnv.stderr)
      }
      const empty = freshDatabase()
      fs.writeFileSync(empty, "")
      const sql = yield* cli(["lockouts", "--sql", "--database", empty], { env: { REDIS_URL: "::::" } })
      expect(sql.code).toBe(1)
      expect(sql.stderr).toMatch(/^Error: lockout store: .*auth_lockout/)
    }))
})

// The app's AuthService behind a lockout in its SQLite file, as an app configures it.
const appAuth = (filename: string, options: SqlLockoutStore.LayerOptions) =>
  Effect.map(
    Layer.build(
      Lockout.layerAuthService(TestAuth.layer([TestBackend.noMatch("passwords")])).pipe(
        Layer.provideMerge(SqlLockoutStore.layer(options)),
        Layer.provideMerge(AuthEvents.layer),
        Layer.provide(SqliteClient.layer({ filename }))
      )
    ),
    (app) => Context.get(app, AuthService.AuthService)
  )

describe("lockouts and unlock --sql (the Lockout store in the SQL database)", () => {
  it.scoped("list the counters the app made in its SQLite file, and reset an address's", () =>
    Effect.gen(function*() {
      const filename = freshDatabase()
      // The app: three wrong passwords from one address lock it (by address).
      const auth = yield* appAuth(filename, { by: "ip", limit: 3 })
      for (let i = 0; i < 4; i++) {
        yield* Effect.exit(auth.authenticate({ username: `u${i}`, password: "wrong" }, { remoteAddress: "203.0.113.7" }))
      }
      const listed = yield* cli(["lockouts", "--sql", "--database", filename])
      expect(listed.code).toBe(0)
      expect(listed.stdout).toMatch(/ip:203\.0\.113\.7\s+3\s+\d{4}-/)
      const unlocked = yield* cli(["unlock", "203.0.113.7", "--sql", "--database", filename])
      expect([unlocked.code, unlocked.stdout.trim()]).toEqual([0, "Reset 1 key: ip:203.0.113.7"])
      expect((yield* cli(["lockouts", "--sql", "--database", filename])).stdout.trim()).toBe("No failed logins on record.")
    }))

  // A username is whatever a stranger typed at the login form: printed raw, its control codes
  // reached the operator's terminal (erase a row, move the cursor, retitle the window).
  it.scoped("keys are shown with their control characters escaped", () =>
    Effect.gen(function*() {
      const filename = freshDatabase()
      const auth = yield* appAuth(filename, { by: "username", limit: 1 })
      for (const username of ["\u001b[2K\u001b[1Amallory", "bob\u001b]0;owned\u0007", "eve\u202egnp.exe"]) {
        yield* Effect.exit(auth.authenticate({ username, password: "wrong" }, { remoteAddress: "203.0.113.7" }))
      }
      const listed = yield* cli(["lockouts", "--sql", "--database", filename])
      expect(listed.code).toBe(0)
      expect(listed.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/)
      expect(listed.stdout).toContain("username:\\u001b[2k\\u001b[1amallory")
      expect(listed.stdout).toContain("username:bob\\u001b]0;owned\\u0007")
      expect(listed.stdout).toContain("username:eve\\u202egnp.exe")
      const unlocked = yield* cli(["unlock", "bob\u001b]0;owned\u0007", "--sql", "--database", filename])
      expect([unlocked.code, unlocked.stdout.trim()]).toEqual([0, "Reset 1 key: username:bob\\u001b]0;owned\\u0007"])
    }))

  it.scoped("unlock of an IPv6 address finds the app's records under its --ipv6-prefix", () =>
    Effect.gen(function*() {
      const filename = freshDatabase()
      // The app counts each IPv6 address on its own (ipv6Prefix 128): the key is the /128.
      const auth = yield* appAuth(filename, { by: "ip", limit: 3, ipv6Prefix: 128 })
      for (let i = 0; i < 3; i++) {
        yield* Effect.exit(auth.authenticate({ username: `u${i}`, password: "wrong" }, { remoteAddress: "2001:db8::1" }))
      }
      const key = "ip:2001:db8:0:0:0:0:0:1"
      const unlocked = yield* cli(["unlock", "2001:db8::1", "--ipv6-prefix", "128", "--sql", "--database", filename])
      expect([unlocked.code, unlocked.stdout.trim()]).toEqual([0, `Reset 1 key: ${key}`])
      expect((yield* cli(["lockouts", "--sql", "--database", filename])).stdout.trim()).toBe("No failed logins on record.")
      const bad = yield* cli(["unlock", "2001:db8::1", "--ipv6-prefix", "129", "--sql", "--database", filename])
      expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining("--ipv6-prefix must be an integer from 1 to 128")])
    }))

  it.effect("a database without the lockout table is an error, and the CLI does not create it (nor a file)", () =>
    Effect.gen(function*() {
      const filename = freshDatabase()
      const missing = yield* cli(["lockouts", "--sql", "--database", filename])
      expect([missing.code, missing.stderr]).toEqual([1, `Error: no database at ${filename}\n`])
      expect(fs.existsSync(filename)).toBe(false)
      // a database the app has not made the table in (an empty file is an empty SQLite database)
      fs.writeFileSync(filename, "")
      const result = yield* cli(["lockouts", "--sql", "--database", filename])
      expect(result.code).toBe(1)
      expect(result.stderr).toMatch(/^Error: lockout store: .*auth_lockout/)
      const again = yield* cli(["lockouts", "--sql", "--database", filename])
      expect(again.code).toBe(1)
    }))
})

describe("explain and grant --object", () => {
  it.effect("explain prints the decision and each backend's answer; grant --object grants on one object", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      expect((yield* cli(["migrate", "--database", db])).code).toBe(0)
      yield* cli(["createuser", "alice", "--database", db], { input: "pw plum orchard\n" })
      yield* cli(["createuser", "root", "--superuser", "--database", db], { input: "pw plum orchard\n" })
      yield* cli(["grant", "alice", "reports.view_report", "--database", db])

      const own = yield* cli(["explain", "alice", "reports.view_report", "--database", db])
      expect(own).toMatchObject({ code: 0, stderr: "" })
      expect(own.stdout.trim().split("\n")).toEqual([
        "alice may reports.view_report: granted by model",
        "  model: grant (user permission)"
      ])
      const missing = yield* cli(["explain", "alice", "reports.change_report", "--database", db])
      expect(missing.stdout).toContain("alice may not reports.change_report: refused: no backend granted it")
      expect((yield* cli(["explain", "root", "reports.change_report", "--database", db])).stdout).toContain(
        "root may reports.change_report: granted by superuser"
      )

      const granted = yield* cli(["grant", "alice", "reports.change_report", "--object", "reports.report:42", "--database", db])
      expect(granted).toMatchObject({ code: 0, stderr: "" })
      expect(granted.stdout).toContain("Granted reports.change_report on reports.report:42 to \"alice\"")
      const onObject = yield* cli([
        "explain", "alice", "reports.change_report", "--object", "reports.report:42", "--database", db
      ])
      expect(onObject.stdout.trim().split("\n")).toEqual([
        "alice may reports.change_report on reports.report:42: granted by object",
        "  model: abstain (the model backend holds no object permissions)",
        "  object: grant (granted to the user on this object)"
      ])
      const other = yield* cli(["explain", "alice", "reports.change_report", "--object", "reports.report:43", "--database", db])
      expect(other.stdout).toContain("may not")

      const bad = yield* cli(["grant", "alice", "reports.change_report", "--object", "report42", "--database", db])
      expect(bad.code).toBe(1)
      expect(bad.stderr).toContain("is not an object")
    }))
})

describe("store errors name their root cause", () => {
  // A fresh SQLite file holding a table another program made.
  const databaseWith = (statement: string): string => {
    const db = freshDatabase()
    const other = new (createRequire(import.meta.url)("better-sqlite3") as new(f: string) => { exec(s: string): void; close(): void })(db)
    other.exec(statement)
    other.close()
    return db
  }
  it.effect("migrate on a database that has a table of the same name says which and why, in one line", () =>
    Effect.gen(function*() {
      const db = databaseWith("CREATE TABLE auth_group (id integer PRIMARY KEY, name text)")
      const result = yield* cli(["migrate", "--database", db])
      expect(result.code).toBe(1)
      expect(result.stderr.trim().split("\n")).toHaveLength(1)
      expect(result.stderr).toContain("user store: migrate failed")
      expect(result.stderr).toContain("table \"auth_group\" already exists")
    }))

  it.effect("a user table its migrations did not make is refused before anything is written", () =>
    Effect.gen(function*() {
      const db = databaseWith("CREATE TABLE auth_user (id integer PRIMARY KEY, username text)")
      const result = yield* cli(["migrate", "--database", db])
      expect(result.code).toBe(1)
      expect(result.stderr).toContain("has a table auth_user that effect-auth's migrations did not make")
      const tables = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`).pipe(
          Effect.provide(SqliteClient.layer({ filename: db })),
          Effect.orDie
        )
      expect(tables.map((t) => t.name)).toEqual(["auth_user"])
    }))
})

describe.skipIf(djangoPython === undefined)("on a Django site's database (--django)", () => {
  it.effect("a command that writes, without --django, refuses the site's database and leaves its tables as they were", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      yield* site("seed", { engine: "sqlite", name: db })
      // Its tables, that is: without --django the file is opened as effect-auth's own store opens
      // one, in WAL mode (which Django works in too), before the store can tell whose it is.
      const schema = Effect.map(
        site("schema", { engine: "sqlite", name: db }),
        (rows: Array<Array<string>>) => rows.filter((row) => row[0] !== "journal_mode")
      )
      const before = yield* schema
      for (const args of [["migrate"], ["createuser", "mallory"], ["grant", "alice", "blog.publish_post"]]) {
        const result = yield* cli([...args, "--database", db], { input: "pw plum orchard\n" })
        expect(result.code).toBe(1)
        expect(result.stderr).toContain("a Django site's database")
        expect(result.stderr).toContain("--django")
      }
      expect(yield* schema).toEqual(before)
    }), 60_000)

  it.effect("reads and writes Django's own tables, and never migrates them", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      yield* site("seed", { engine: "sqlite", name: db })
      const before = yield* site("schema", { engine: "sqlite", name: db })

      const migrate = yield* cli(["migrate", "--django", "--database", db])
      expect(migrate.code).toBe(1)
      expect(migrate.stderr).toContain("manage.py migrate")

      const users = yield* cli(["users", "--django", "--database", db])
      expect(users.code).toBe(0)
      expect(users.stdout).toMatch(/editor .*auth\.add_user,auth\.view_group,auth\.view_permission,auth\.view_user,blog\.feature_post,blog\.publish_post/)

      const created = yield* cli(["createuser", "carol", "--django", "--database", db], { input: "a long enough passphrase\n" })
      expect(created.code).toBe(0)
      const missing = yield* cli(["grant", "carol", "blog.archive_post", "--django", "--database", db])
      expect(missing.code).toBe(1)
      expect(missing.stderr).toContain("no permission \"blog.archive_post\"")
      const made = yield* cli(["grant", "carol", "blog.archive_post", "--create-permissions", "--django", "--database", db])
      expect(made.code).toBe(0)
      const granted = yield* cli(["grant", "carol", "auth.view_user", "--django", "--database", db])
      expect(granted.code).toBe(0)

      // Django sees what the CLI wrote; its schema is as its migrate left it.
      const read = yield* site("read", { engine: "sqlite", name: db }, {
        users: ["carol"],
        passwords: {},
        perms: ["auth.view_user", "blog.archive_post", "blog.publish_post"],
        since: "2000-01-01T00:00:00Z"
      })
      expect(read.users.carol.perms).toEqual(["auth.view_user", "blog.archive_post"])
      expect(yield* site("schema", { engine: "sqlite", name: db })).toEqual(before)

      // users shows each user's permissions as Django's get_all_permissions counts them (every one
      // for an active superuser: "(all)"; none for an inactive user, whatever is on record)
      const asked = yield* site("ask", { engine: "sqlite", name: db }, { logins: [], perms: [], apps: [] })
      const listed = (yield* cli(["users", "--django", "--database", db])).stdout.trimEnd().split("\n")
      const at = listed[0]!.indexOf("PERMISSIONS")
      const shown = Object.fromEntries(
        listed.slice(1).map((line) => [line.split(/\s+/)[1]!, line.slice(at).trim()])
      )
      const django = Object.fromEntries(
        Object.entries(asked.users as Record<string, { all: ReadonlyArray<string> }>).map(([name, { all }]) => [
          name,
          all.length > 0 && all.join() === asked.permissions.join() ? "(all)" : all.join(",")
        ])
      )
      expect(shown).toEqual(django)
      expect(shown["old-root"]).toBe("")
      expect(shown.root).toBe("(all)")

      const noDjango = yield* cli(["users", "--django", "--database", path.join(dir, "nothing.sqlite")])
      expect(noDjango.code).toBe(1)
      expect(noDjango.stderr).toContain("no Django database")
      const loose = yield* cli(["users", "--django-user-table", "accounts_account", "--database", db])
      expect(loose.code).toBe(2)
    }), 60_000)

  it.effect("object grants with --django: a group's grants are by its Django row (grant --object migrates so), and explain reads them", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      yield* site("seed", { engine: "sqlite", name: db })
      const granted = yield* cli(["grant", "editor", "blog.publish_post", "--object", "blog.post:1", "--django", "--database", db])
      expect(granted.code).toBe(0)
      const sqlite = SqliteClient.layer({ filename: db })
      const columns = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ name: string }>`SELECT name FROM pragma_table_info('auth_group_object_permission')`).pipe(
          Effect.provide(sqlite),
          Effect.orDie
        )
      expect(columns.map((c) => c.name)).toContain("group_id")
      // the editors' grant, as the store keeps it: by the id of Django's row
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql`INSERT INTO auth_group_object_permission (group_id, permission, content_type, object_pk)
          SELECT id, 'blog.feature_post', 'blog.post', '1' FROM auth_group WHERE name = 'editors'`).pipe(
          Effect.provide(sqlite),
          Effect.orDie
        )
      const explained = yield* cli(["explain", "editor", "blog.feature_post", "--object", "blog.post:1", "--django", "--database", db])
      expect(explained.stdout).toContain("object: grant (granted on this object to group editors)")
    }), 60_000)

  for (const django of djangos) {
    const version = django.version as PasswordHasher.DjangoVersion
    it.effect(`DJANGO_VERSION=${version} or --django-version ${version}: passwords hashed with that Django's preset, which Django ${version} does not re-hash`, () =>
      Effect.gen(function*() {
        const db = freshDatabase()
        const sqlite = { engine: "sqlite", name: db } as const
        yield* site("seed", sqlite, {}, django)
        const iterations = PasswordHasher.djangoPresets[version].pbkdf2!.iterations!
        // The preset's own iterations: no cheap hashing here.
        const real = { PASSWORD_HASHER_PBKDF2_ITERATIONS: undefined }
        const read = (passwords: Record<string, string>) =>
          Effect.map(
            site("read", sqlite, { users: Object.keys(passwords), passwords, perms: [], since: "2000-01-01T00:00:00Z" }, django),
            (answer) => answer.users
          )

        const byEnv = yield* cli(["changepassword", "alice", "--django", "--database", db], {
          input: "another long passphrase\n",
          env: { ...real, DJANGO_VERSION: version }
        })
        expect(byEnv).toMatchObject({ code: 0, stderr: "" })
        expect((yield* read({ alice: "another long passphrase" })).alice).toEqual(
          expect.objectContaining({ hash: `pbkdf2_sha256$${iterations}`, must_update: false, password: true })
        )

        const byFlag = yield* cli(["createuser", "carol", "--django", "--django-version", version, "--database", db], {
          input: "a long enough passphrase\n",
          env: real
        })
        expect(byFlag).toMatchObject({ code: 0, stderr: "" })
        // PASSWORD_HASHER_* still override the preset (here 1000 iterations: Django re-hashes those).
        const overridden = yield* cli(["createuser", "dave", "--django", "--django-version", version, "--database", db], {
          input: "a long enough passphrase\n",
          env: { PASSWORD_HASHER_PBKDF2_ITERATIONS: "1000", PASSWORD_HASHERS: "pbkdf2_sha1,pbkdf2_sha256" }
        })
        expect(overridden.code).toBe(0)
        const users = yield* read({ carol: "a long enough passphrase", dave: "a long enough passphrase" })
        expect(users.carol).toEqual(
          expect.objectContaining({ hash: `pbkdf2_sha256$${iterations}`, must_update: false, password: true })
        )
        expect(users.dave).toEqual(expect.objectContaining({ hash: "pbkdf2_sha1$1000", must_update: true, password: true }))
      }), 120_000)
  }

  for (const django of djangos) {
    const version = django.version as PasswordHasher.DjangoVersion
    it.effect(`the CLI refuses the passwords Django ${version}'s validate_password refuses under the same AUTH_PASSWORD_VALIDATORS, with its messages`, () =>
      Effect.gen(function*() {
        const db = freshDatabase()
        const sqlite = { engine: "sqlite", name: db } as const
        yield* site("seed", sqlite, {}, django)
        const validator = (name: string, options?: object) => ({
          NAME: `django.contrib.auth.password_validation.${name}`,
          ...(options === undefined ? {} : { OPTIONS: options })
        })
        // the site's AUTH_PASSWORD_VALIDATORS, and the CLI's settings that say the same
        const sites = [
          {
            env: {}, // a new project's settings
            validators: ["UserAttributeSimilarityValidator", "MinimumLengthValidator", "CommonPasswordValidator", "NumericPasswordValidator"]
              .map((name) => validator(name))
          },
          { env: { PASSWORD_VALIDATORS: "none" }, validators: [] }, // Django's default
          {
            env: { PASSWORD_VALIDATORS: "MinimumLengthValidator", PASSWORD_MIN_LENGTH: "12" },
            validators: [validator("MinimumLengthValidator", { min_length: 12 })]
          },
          {
            env: {
              PASSWORD_VALIDATORS: "django.contrib.auth.password_validation.UserAttributeSimilarityValidator, CommonPasswordValidator",
              PASSWORD_MAX_SIMILARITY: "0.5"
            },
            validators: [validator("UserAttributeSimilarityValidator", { max_similarity: 0.5 }), validator("CommonPasswordValidator")]
          }
        ]
        // (giuliano is on Django 3.2's list of common passwords only, winston1 on the newer one's)
        const passwords = ["password", "Short-pw-9!", "12345", "alice-pw", "aliceXYZ12", "giuliano", "winston1", "a long enough passphrase"]
        for (const { env, validators } of sites) {
          const djangoSays: ReadonlyArray<ReadonlyArray<string>> =
            (yield* site("validate", sqlite, { username: "alice", passwords, settings: { AUTH_PASSWORD_VALIDATORS: validators } }, django))
              .messages
          const cliSays: Array<ReadonlyArray<string>> = []
          for (const password of passwords) {
            const result = yield* cli(["changepassword", "alice", "--django", "--django-version", version, "--database", db], {
              input: `${password}\n`,
              env
            })
            const [first, ...rest] = result.stderr.trimEnd().split("\n")
            cliSays.push(
              result.code === 0 && result.stderr === ""
                ? []
                : first === "Error: the password was refused:"
                ? rest.map((line) => line.trim())
                : [`exit ${result.code}: ${result.stderr}`]
            )
          }
          expect(cliSays, JSON.stringify(env)).toEqual(djangoSays)
        }
      }), 120_000)
  }

  it.effect("createuser, changepassword and grant with --django on a file that is not there: an error, and no file made", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      for (const args of [["createuser", "zed"], ["changepassword", "zed"], ["grant", "zed", "auth.view_user"]]) {
        const result = yield* cli([...args, "--django", "--database", db], { input: "a long pass phrase 1\n" })
        expect([args[0], result.code, result.stderr]).toEqual([args[0], 1, `Error: no Django database at ${db}\n`])
        expect(fs.existsSync(db)).toBe(false)
      }
    }))

  it.effect("grant --object grants only a permission (auth_permission) on a model (django_content_type) Django has; its tables are beside Django's, which stay as they were", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      const sqlite = { engine: "sqlite", name: db } as const
      yield* site("seed", sqlite)
      const before = yield* site("schema", sqlite)
      const django = ["--django", "--database", db]

      // a permission Django does not have, as a plain grant refuses it
      const frobnicate = yield* cli(["grant", "alice", "auth.frobnicate", "--object", "auth.user:1", ...django])
      expect([frobnicate.code, frobnicate.stderr]).toEqual([
        1,
        "Error: no permission \"auth.frobnicate\" (Django makes permissions from its models: run Django's migrate, or pass --create-permissions)\n"
      ])
      // a model Django does not know, with --create-permissions too
      for (const flags of [[], ["--create-permissions"]]) {
        const nope = yield* cli(["grant", "alice", "auth.view_user", "--object", "nope.nothing:1", ...flags, ...django])
        expect(nope.code).toBe(1)
        expect(nope.stderr).toMatch(/^Error: Django has no model "nope\.nothing" \(no row in django_content_type\)/)
        noStackTrace(nope.stderr)
      }
      // a permission of another model than the object's (guardian: Permission.DoesNotExist), which
      // --create-permissions would have made for that model: refused before anything is made
      const comment = yield* cli(["grant", "alice", "blog.change_comment", "--object", "blog.post:1", "--create-permissions", ...django])
      expect(comment.code).toBe(1)
      expect(comment.stderr).toMatch(/^Error: "blog\.change_comment" would be made for another model than "blog\.post"/)
      // Django has auth.view_group, for its groups: not a user's (refused, the object permission
      // tables it would have been written to not made either)
      const group = yield* cli(["grant", "alice", "auth.view_group", "--object", "auth.user:1", ...django])
      expect([group.code, group.stderr]).toEqual([
        1,
        "Error: object permissions: permission \"auth.view_group\" is not one of the object's model (content type \"auth.user\")\n"
      ])
      // nothing refused was written, and no table made
      expect(yield* site("schema", sqlite)).toEqual(before)
      const asked = yield* site("ask", sqlite, { logins: [], perms: ["auth.frobnicate", "blog.change_comment"], apps: [] })
      expect(asked.permissions).not.toContain("auth.frobnicate")
      expect(asked.permissions).not.toContain("blog.change_comment")

      const granted = yield* cli(["grant", "alice", "auth.change_user", "--object", "auth.user:1", ...django])
      expect(granted).toMatchObject({ code: 0, stderr: "" })
      const made = yield* cli(["grant", "alice", "blog.archive_post", "--object", "blog.post:7", "--create-permissions", ...django])
      expect(made).toMatchObject({ code: 0, stderr: "" })
      expect((yield* cli(["explain", "alice", "blog.archive_post", "--object", "blog.post:7", ...django])).stdout).toContain(
        "alice may blog.archive_post on blog.post:7: granted by object"
      )
      // The object permission tables are effect-auth's own, made by the first object grant;
      // Django's tables are as its migrate left them.
      const ours = ["auth_user_object_permission", "auth_group_object_permission", "effect_auth_object_permission_migrations"]
      const after: ReadonlyArray<ReadonlyArray<string>> = yield* site("schema", sqlite)
      expect(after.filter((row) => !ours.includes(row[2]!))).toEqual(before)
      expect(new Set(after.filter((row) => row[0] === "table").map((row) => row[1]))).toEqual(
        new Set([...before.filter((row: ReadonlyArray<string>) => row[0] === "table").map((row: ReadonlyArray<string>) => row[1]), ...ours])
      )
    }), 60_000)

  it.effect("a custom user model logging in by email: --django-username-field email finds and creates users by email", () =>
    Effect.gen(function*() {
      const db = freshDatabase()
      // AUTH_USER_MODEL = "accounts.EmailAccount" (test/django/accounts): USERNAME_FIELD = "email".
      const custom = (action: string, extra: object) =>
        site(action, { engine: "sqlite", name: db }, { user_model: "EmailAccount", ...extra })
      yield* custom("custom_seed", { users: [{ fields: { email: "carol@example.com", username: "carol" }, password: "carol-pw-1" }] })
      const flags = [
        "--django",
        "--django-user-table",
        "accounts_emailaccount",
        "--django-user-column",
        "emailaccount_id",
        "--django-username-field",
        "email",
        "--database",
        db
      ]
      const users = yield* cli(["users", ...flags])
      expect(users.code).toBe(0)
      expect(users.stdout).toContain("carol@example.com")
      const created = yield* cli(["createuser", "dave@example.com", ...flags], { input: "a long enough passphrase\n" })
      expect(created.code).toBe(0)
      const granted = yield* cli(["grant", "dave@example.com", "auth.view_group", ...flags])
      expect(granted.code).toBe(0)
      // Django logs the new user in by email.
      const asked = yield* custom("custom_ask", { logins: [["dave@example.com", "a long enough passphrase"]] })
      expect(asked.logins).toEqual(["2"])
      const loose = yield* cli(["users", "--django-username-field", "email", "--database", db])
      expect(loose.code).toBe(2)
    }), 60_000)
})
