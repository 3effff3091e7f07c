import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import type * as CliApp from "@effect/cli/CliApp"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as PasswordHasher from "../../PasswordHasher.js"
import * as Permissions from "../../Permissions.js"
import * as SqlSessionStore from "../../SqlSessionStore.js"
import * as SqlUserStore from "../../SqlUserStore.js"
import * as UserStore from "../../UserStore.js"
import * as Password from "./password.js"
import { Aborted, CliError } from "./password.js"

// --- the database ------------------------------------------------------------------------------

/** The same default as examples/server.ts, so the CLI and the example app share a file. */
export const defaultDatabaseFile = "./effect-auth.sqlite"

const database = Options.text("database").pipe(
  Options.withPseudoName("FILE"),
  Options.withDescription(`SQLite file (default: $DATABASE_FILE, else ${defaultDatabaseFile})`),
  Options.withFallbackConfig(Config.withDefault(Config.string("DATABASE_FILE"), defaultDatabaseFile))
)

// No environment fallback: DATABASE_URL often names some other database (a test server) and
// must not silently win over the SQLite file the example app uses.
const databaseUrl = Options.redacted("database-url").pipe(
  Options.withPseudoName("URL"),
  Options.withDescription("PostgreSQL URL (postgres://user:password@host/db); replaces --database"),
  Options.optional
)

interface Database {
  readonly database: string
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
}

const databaseOptions = { database, databaseUrl }

// better-sqlite3 throws while the client is built (e.g. the file's directory does not exist),
// which reaches us as a defect: it is still "cannot open the database", not a crash.
const openDatabase = (db: Database): Layer.Layer<UserStore.UserStore | SqlClient.SqlClient, CliError> =>
  Layer.catchAllCause(
    Option.match(db.databaseUrl, {
      onNone: () => SqlUserStore.layerSqlite({ filename: db.database }),
      onSome: (url) => SqlUserStore.layerPg({ url })
    }),
    (cause) => {
      const error = Cause.squash(cause)
      const message = error instanceof Error ? error.message : String(error)
      return Layer.fail(new CliError({ message: `cannot open the database: ${message}` }))
    }
  )

const HasherLive = Layer.mapError(
  PasswordHasher.layerConfig(),
  (error) => new CliError({ message: `bad password hasher settings: ${String(error)}` })
)

type StoreError =
  | UserStore.InvalidInput
  | UserStore.UserStoreError
  | UserStore.UserAlreadyExists
  | UserStore.UserNotFound
  | PasswordHasher.HashError

// The store's messages are Schema issue trees; the leaf says what is wrong.
const leafOf = (message: string): string => {
  const lines = message.split("\n").filter((line) => line.trim() !== "")
  return (lines[lines.length - 1] ?? message).replace(/^[\s\u2500-\u257f]+/, "")
}

const describe = (error: StoreError): string => {
  switch (error._tag) {
    case "InvalidInput":
      return `invalid ${error.field}: ${leafOf(error.message)}`
    case "UserAlreadyExists":
      return `a user named ${JSON.stringify(error.username)} exists already`
    case "UserNotFound":
      return "the user was deleted meanwhile"
    case "HashError":
      return "could not hash the password"
    case "UserStoreError":
      return error.message
  }
}

const toCliError = (error: StoreError | CliError | Aborted): CliError | Aborted =>
  error._tag === "CliError" || error._tag === "Aborted" ? error : new CliError({ message: describe(error) })

const findUser = (store: UserStore.UserStore.Service, username: string) =>
  Effect.flatMap(
    store.findByUsername(username),
    Option.match({
      onNone: () => Effect.fail(new CliError({ message: `no user named ${JSON.stringify(username)}` })),
      onSome: Effect.succeed
    })
  )

const isPermission = Schema.is(Permissions.Permission)

// --- the commands ------------------------------------------------------------------------------

const migrate = Command.make("migrate", databaseOptions, (db) =>
  Effect.gen(function*() {
    // Building the user store migrates its tables; the session table follows.
    yield* SqlSessionStore.migrate().pipe(
      Effect.mapError((error) => new CliError({ message: `session table: ${error.message}` }))
    )
    yield* Console.log(`Migrated ${Option.isSome(db.databaseUrl) ? "the PostgreSQL database" : db.database}: users and sessions are up to date.`)
  }).pipe(Effect.provide(openDatabase(db)))).pipe(
    Command.withDescription("Create or update the user and session tables")
  )

const username = Args.text({ name: "USERNAME" })

const createuser = Command.make(
  "createuser",
  {
    username,
    superuser: Options.boolean("superuser").pipe(Options.withDescription("Give every permission (and staff status)")),
    email: Options.text("email").pipe(
      Options.withPseudoName("EMAIL"),
      Options.withDescription("Email address"),
      Options.optional
    ),
    ...databaseOptions
  },
  (args) =>
    Effect.gen(function*() {
      const store = yield* UserStore.UserStore
      const hasher = yield* PasswordHasher.PasswordHasher
      // Refuse a taken name before asking for a password (the insert re-checks it).
      if (Option.isSome(yield* store.findByUsername(args.username))) {
        return yield* new UserStore.UserAlreadyExists({ username: args.username })
      }
      const password = yield* Password.read({ confirm: true })
      const passwordHash = yield* hasher.hash(password)
      const user = yield* store.create({
        username: args.username,
        passwordHash,
        email: Option.getOrUndefined(args.email),
        isSuperuser: args.superuser,
        isStaff: args.superuser
      })
      yield* Console.log(`Created ${args.superuser ? "superuser" : "user"} ${JSON.stringify(user.username)} (id ${user.id}).`)
    }).pipe(Effect.mapError(toCliError), Effect.provide(Layer.merge(openDatabase(args), HasherLive)))
).pipe(Command.withDescription("Create a user; the password is prompted for, or read from stdin"))

const changepassword = Command.make("changepassword", { username, ...databaseOptions }, (args) =>
  Effect.gen(function*() {
    const store = yield* UserStore.UserStore
    const hasher = yield* PasswordHasher.PasswordHasher
    const user = yield* findUser(store, args.username)
    const password = yield* Password.read({ confirm: true })
    yield* store.setPassword(user.id, yield* hasher.hash(password))
    yield* Console.log(`Changed the password of ${JSON.stringify(user.username)}; their sessions are logged out.`)
  }).pipe(Effect.mapError(toCliError), Effect.provide(Layer.merge(openDatabase(args), HasherLive)))).pipe(
    Command.withDescription("Set a user's password; the password is prompted for, or read from stdin")
  )

const grant = Command.make(
  "grant",
  { username, permission: Args.text({ name: "PERMISSION" }), ...databaseOptions },
  (args) =>
    Effect.gen(function*() {
      if (!isPermission(args.permission)) {
        return yield* new CliError({
          message: `${JSON.stringify(args.permission)} is not a permission: write app_label.codename, e.g. reports.view_report`
        })
      }
      const store = yield* UserStore.UserStore
      const user = yield* findUser(store, args.username)
      yield* store.grantPermission(user.id, args.permission)
      yield* Console.log(`Granted ${args.permission} to ${JSON.stringify(user.username)}.`)
    }).pipe(Effect.mapError(toCliError), Effect.provide(openDatabase(args)))
).pipe(Command.withDescription("Grant a permission (app_label.codename) to a user"))

const yesNo = (b: boolean) => (b ? "yes" : "no")

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n")
}

const users = Command.make("users", databaseOptions, (db) =>
  Effect.gen(function*() {
    const store = yield* UserStore.UserStore
    const all = yield* store.list()
    if (all.length === 0) return yield* Console.log("No users yet: create one with `createuser USERNAME`.")
    const rows = yield* Effect.forEach(all, (user) =>
      Effect.map(
        Effect.all([store.userPermissions(user.id), store.groupPermissions(user.id)]),
        ([own, viaGroups]) => [
          user.id,
          user.username,
          user.email,
          yesNo(user.isActive),
          yesNo(user.isSuperuser),
          user.isSuperuser ? "(all)" : Array.from(new Set([...own, ...viaGroups])).sort().join(",")
        ]
      ))
    yield* Console.log(table([["ID", "USERNAME", "EMAIL", "ACTIVE", "SUPERUSER", "PERMISSIONS"], ...rows]))
  }).pipe(Effect.mapError(toCliError), Effect.provide(openDatabase(db)))).pipe(
    Command.withDescription("List the users and their permissions")
  )

/** The `effect-auth` command and its subcommands. */
export const command = Command.make("effect-auth").pipe(
  Command.withDescription("Manage the users of an effect-auth SQL user store"),
  Command.withSubcommands([migrate, createuser, changepassword, grant, users])
)

/**
 * Runs the CLI on `process.argv`-style arguments and answers the exit code: 0, 1 for an error
 * (reported as one line on stderr, never a stack trace), 2 for bad usage (reported by
 * `@effect/cli` with the help text), 130 when a prompt was left with Ctrl-C.
 */
export const run = (
  argv: ReadonlyArray<string>,
  version: string
): Effect.Effect<number, never, CliApp.CliApp.Environment> =>
  Command.run(command, { name: "effect-auth", version })(argv).pipe(
    Effect.as(0),
    Effect.catchAll((error) => {
      if (ValidationError.isValidationError(error)) return Effect.succeed(2)
      if (error._tag === "Aborted") return Effect.as(Console.error("Aborted."), 130)
      return Effect.as(Console.error(`Error: ${error.message}`), 1)
    }),
    Effect.catchAllDefect((defect) =>
      Effect.as(
        Console.error(`Error: unexpected failure: ${ConfigError.isConfigError(defect) ? String(defect) : defect instanceof Error ? defect.message : String(defect)}`),
        1
      )
    )
  )
