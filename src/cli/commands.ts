// The effect-auth commands, on the public modules only: the CLI is an app like any other.
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as RedactedValue from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"
import type { AuthConfigError } from "../AuthError.js"
import * as AuthEvents from "../AuthEvents.js"
import * as AuthService from "../AuthService.js"
import * as ModelBackend from "../backends/ModelBackend.js"
import * as ObjectPermissionBackend from "../backends/ObjectPermissionBackend.js"
import { isEmailAddress } from "../internal/emailAddress.js"
import * as SqlTables from "../internal/sqlTables.js"
import { modelOf } from "../internal/sqlUserStore.js"
import * as Lockout from "../Lockout.js"
import * as ObjectPermissions from "../ObjectPermissions.js"
import * as PasswordHasher from "../PasswordHasher.js"
import * as PasswordValidation from "../PasswordValidation.js"
import * as Permissions from "../Permissions.js"
import * as SqlExternalIdentities from "../SqlExternalIdentities.js"
import * as SqlLockoutStore from "../SqlLockoutStore.js"
import * as SqlObjectPermissions from "../SqlObjectPermissions.js"
import * as SqlSessionStore from "../SqlSessionStore.js"
import * as SqlTotpStore from "../SqlTotpStore.js"
import * as SqlUserStore from "../SqlUserStore.js"
import * as UserManager from "../UserManager.js"
import type { User } from "../User.js"
import * as UserStore from "../UserStore.js"
import * as Io from "./io.js"
import { installHint } from "./missingPackage.js"
import * as Password from "./password.js"
import { Aborted, CliError } from "./password.js"

// --- the database ------------------------------------------------------------------------------

/** The same default as examples/server.ts, so the CLI and the example app share a file. */
export const defaultDatabaseFile = "./effect-auth.sqlite"

// No `withFallbackConfig` here: a default would make `--database` look given whenever
// `--database-url` is, and the two must not be given together.
const databaseFile = Options.text("database").pipe(
  Options.withPseudoName("FILE"),
  Options.withDescription(`SQLite file (default: $DATABASE_FILE, else ${defaultDatabaseFile})`),
  Options.optional
)

// No environment fallback: DATABASE_URL often names some other database (a test server) and
// must not silently win over the SQLite file the example app uses.
const databaseUrl = Options.redacted("database-url").pipe(
  Options.withPseudoName("URL"),
  Options.withDescription("PostgreSQL URL (postgres://user:password@host/db), instead of --database"),
  Options.optional
)

// A Django site's database: its own tables, adopted as they are (SqlUserStore's `django`).
const djangoFlag = Options.boolean("django").pipe(
  Options.withDescription("The database is a Django site's: use its auth tables as they are, never migrate them")
)
const djangoUserTable = Options.text("django-user-table").pipe(
  Options.withPseudoName("TABLE"),
  Options.withDescription("With --django: the user model's table (AUTH_USER_MODEL), default auth_user"),
  Options.optional
)
const djangoUserColumn = Options.text("django-user-column").pipe(
  Options.withPseudoName("COLUMN"),
  Options.withDescription("With --django: the user column of the user model's link tables, default user_id"),
  Options.optional
)
const djangoUsernameField = Options.text("django-username-field").pipe(
  Options.withPseudoName("COLUMN"),
  Options.withDescription("With --django: the user model's USERNAME_FIELD, the column users log in by, default username"),
  Options.optional
)
// The site's Django picks the hasher preset: hashed with effect-auth's default (Django 6.0's
// 1,200,000 PBKDF2 iterations), a password set here was re-hashed by an older Django at the
// user's first login there, as one that must be updated.
const djangoVersions = Object.keys(PasswordHasher.djangoPresets) as ReadonlyArray<PasswordHasher.DjangoVersion>
const djangoVersion = Options.choice("django-version", djangoVersions).pipe(
  Options.withPseudoName("VERSION"),
  Options.withDescription(
    `With --django: the site's Django (${djangoVersions.join(", ")}; default: $DJANGO_VERSION, else ` +
      `${djangoVersions[djangoVersions.length - 1]}): passwords are hashed with its hasher preset ` +
      "(PasswordHasher.djangoPresets), PASSWORD_HASHERS and PASSWORD_HASHER_* still override it"
  ),
  Options.optional
)

interface Database {
  readonly database: string
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  /** Some on a Django site's database (`--django`). */
  readonly django: Option.Option<SqlUserStore.DjangoOptions>
  /** With `--django`: the site's Django (`--django-version`, else `DJANGO_VERSION`), if given. */
  readonly djangoVersion: Option.Option<PasswordHasher.DjangoVersion>
}

const usage = (message: string) => ValidationError.invalidValue(HelpDoc.p(message))

// Contradictory flags are bad usage (exit 2), refused before any database is opened.
const database: Options.Options<Database> = Options.all({
  file: databaseFile,
  url: databaseUrl,
  django: djangoFlag,
  userTable: djangoUserTable,
  userColumn: djangoUserColumn,
  usernameField: djangoUsernameField,
  version: djangoVersion
}).pipe(
  Options.mapEffect(({ django: isDjango, file, url, userColumn, userTable, usernameField, version }) => {
    if (Option.isSome(file) && Option.isSome(url)) {
      return Effect.fail(usage("--database and --database-url exclude each other: give one of them"))
    }
    if (
      !isDjango &&
      (Option.isSome(userTable) || Option.isSome(userColumn) || Option.isSome(usernameField) || Option.isSome(version))
    ) {
      return Effect.fail(
        usage("--django-user-table, --django-user-column, --django-username-field and --django-version go with --django")
      )
    }
    const django = isDjango
      ? Option.some<SqlUserStore.DjangoOptions>({
        tables: { user: Option.getOrUndefined(userTable), userColumn: Option.getOrUndefined(userColumn) },
        usernameField: Option.getOrUndefined(usernameField)
      })
      : Option.none()
    // DJANGO_VERSION is read with --django only: beside effect-auth's own tables it means nothing.
    const versionOf: Effect.Effect<Option.Option<PasswordHasher.DjangoVersion>, ValidationError.ValidationError> =
      !isDjango || Option.isSome(version)
        ? Effect.succeed(version)
        : Config.option(Config.literal(...djangoVersions)("DJANGO_VERSION")).pipe(
          Effect.mapError((error) => usage(`DJANGO_VERSION: ${String(error)}`))
        )
    // An empty name is SQLite's temporary database, gone when the command ends: `--database
    // "$DB"` with DB unset would report "Created user ..." and keep nothing. Refused as bad usage.
    const named = (database: string, what: string) =>
      database === ""
        ? Effect.fail(usage(`${what} is empty: name the SQLite file (or give --database-url)`))
        : Effect.succeed(database)
    const databaseFile = Option.match(file, {
      onSome: (database) => named(database, "--database"),
      onNone: () =>
        Config.string("DATABASE_FILE").pipe(
          Config.withDefault(defaultDatabaseFile),
          Effect.mapError((error) => usage(`DATABASE_FILE: ${String(error)}`)),
          // Only a default for --database: with --database-url an empty one does not matter.
          Effect.flatMap((database) => Option.isSome(url) ? Effect.succeed(database) : named(database, "DATABASE_FILE"))
        )
    })
    return Effect.map(
      Effect.all([databaseFile, versionOf]),
      ([database, djangoVersion]): Database => ({ database, databaseUrl: url, django, djangoVersion })
    )
  })
)

const databaseOptions = { db: database }

const describeDatabase = (db: Database): string =>
  Option.isSome(db.databaseUrl) ? "the PostgreSQL database" : db.database

// better-sqlite3 throws while the client is built (e.g. the file's directory does not exist),
// which reaches us as a defect: it is still "cannot open the database", not a crash.
const openDatabase = (
  db: Database,
  options: { readonly migrate: boolean; readonly createPermissions?: boolean } = { migrate: true }
): Layer.Layer<UserStore.UserStore | SqlClient.SqlClient, CliError> =>
  Layer.unwrapEffect(Effect.sync(() =>
    // A command that makes no tables (on a Django site's database, or reading a store the app
    // made) opens no SQLite file that is not there: SQLite would create it, an empty database
    // left at a mistyped path.
    (Option.isSome(db.django) || !options.migrate) && isMissingFile(db)
      ? Layer.fail(new CliError({ message: `no ${Option.isSome(db.django) ? "Django database" : "database"} at ${db.database}` }))
      : openStore(db, options)
  ))

// A SQLite file that is not there, in a directory that is (a missing directory is left to the
// driver, which says why the file cannot be opened).
const isMissingFile = (db: Database): boolean =>
  Option.isNone(db.databaseUrl) && db.database !== ":memory:" && !fs.existsSync(db.database) &&
  fs.existsSync(path.dirname(path.resolve(db.database)))

const openStore = (
  db: Database,
  options: { readonly migrate: boolean; readonly createPermissions?: boolean }
): Layer.Layer<UserStore.UserStore | SqlClient.SqlClient, CliError> =>
  Layer.catchAllCause(
    Option.match(db.databaseUrl, {
      onNone: () => SqlUserStore.layerSqlite({ filename: db.database, ...storeOptions(db, options) }),
      onSome: (url) => SqlUserStore.layerPg({ url, ...storeOptions(db, options) })
    }),
    (cause) => {
      const error = Cause.squash(cause)
      const message = installHint(error) ?? (error instanceof Error ? error.message : String(error))
      return Layer.fail(new CliError({ message: `cannot open the database: ${message}` }))
    }
  )

// On a Django site's database the store never migrates; it checks Django's tables instead.
const storeOptions = (
  db: Database,
  options: { readonly migrate: boolean; readonly createPermissions?: boolean }
): SqlUserStore.LayerOptions =>
  Option.match(db.django, {
    onNone: () => ({ migrate: options.migrate }),
    onSome: (django) => ({ django: { ...django, createMissingPermissions: options.createPermissions === true } })
  })

const notMigrated = (db: Database, missing: ReadonlyArray<string> | "all") =>
  new CliError({
    message: missing === "all"
      ? `no user tables in ${describeDatabase(db)}; run \`effect-auth migrate\` first`
      : `missing user tables in ${describeDatabase(db)} (${missing.join(", ")}); run \`effect-auth migrate\` first`
  })

// Fails unless every table of the user store is there.
const checkTables = (db: Database): Effect.Effect<void, CliError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const t = yield* SqlUserStore.tables()
    const wanted = [t.user, t.group, t.permission, t.userGroups, t.userPermissions, t.groupPermissions]
    const present = yield* SqlTables.existingTables(sql, wanted)
    const missing = wanted.filter((name) => !present.has(name))
    if (missing.length === wanted.length) return yield* notMigrated(db, "all")
    if (missing.length > 0) return yield* notMigrated(db, missing)
  }).pipe(
    Effect.catchTags({
      SqlError: (error) => Effect.fail(new CliError({ message: `cannot read the database: ${error.message}` })),
      AuthConfigError: (error) => Effect.fail(new CliError({ message: error.message }))
    })
  )

/**
 * The store for a read-only command: the database is opened without migrating it (and a SQLite
 * file that does not exist is not created), and a database without the user tables is an error.
 */
const openMigrated = (db: Database): Layer.Layer<UserStore.UserStore | SqlClient.SqlClient, CliError> =>
  Layer.unwrapEffect(Effect.sync(() => {
    // (openDatabase says there is no Django database at a missing file)
    if (Option.isNone(db.django) && isMissingFile(db)) return Layer.fail(notMigrated(db, "all"))
    // The Django store checks Django's tables itself when it is built.
    if (Option.isSome(db.django)) return openDatabase(db, { migrate: false })
    return Layer.effectDiscard(checkTables(db)).pipe(Layer.provideMerge(openDatabase(db, { migrate: false })))
  }))

// Each setting given in PASSWORD_HASHERS / PASSWORD_HASHER_* over the preset's (spreading an
// unset one, `undefined`, would erase the preset's value).
const overPreset = (preset: PasswordHasher.Options, env: PasswordHasher.Options): PasswordHasher.Options => {
  const given = <A extends object>(o: A | undefined) =>
    Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<A>
  return {
    ...preset,
    ...given(env),
    pbkdf2: { ...preset.pbkdf2, ...given(env.pbkdf2) },
    argon2: { ...preset.argon2, ...given(env.argon2) },
    bcrypt: { ...preset.bcrypt, ...given(env.bcrypt) },
    scrypt: { ...preset.scrypt, ...given(env.scrypt) }
  }
}

// PASSWORD_HASHERS and PASSWORD_HASHER_*, over the preset of the site's Django when given.
const hasherOf = (db: Database) =>
  Layer.mapError(
    PasswordHasher.layerConfig(Option.match(db.djangoVersion, {
      onNone: () => PasswordHasher.config,
      onSome: (version) => Config.map(PasswordHasher.config, (env) => overPreset(PasswordHasher.djangoPresets[version], env))
    })),
    (error) => new CliError({ message: `bad password hasher settings: ${String(error)}` })
  )

// The password rules, as the site's AUTH_PASSWORD_VALIDATORS: PASSWORD_VALIDATORS,
// PASSWORD_MIN_LENGTH, ... (PasswordValidation.config); Django's four when none is set. Django 4.2
// replaced CommonPasswordValidator's list (ticket #34056): beside a 3.2 site the older one is the
// default. `--skip-validation` sets none, as createsuperuser's "Bypass password validation".
const validatorsOf = (db: Database, skip: boolean): Layer.Layer<never, CliError> =>
  skip
    ? PasswordValidation.layer([])
    : Layer.mapError(
      PasswordValidation.layerConfig(Option.match(db.djangoVersion, {
        onNone: () => PasswordValidation.config,
        onSome: (version) =>
          Config.map(PasswordValidation.config, (settings) => ({
            ...settings,
            commonPasswordList: settings.commonPasswordList ?? (version === "3.2" ? "django-3.2" : "django-5.2")
          }))
      })),
      (error) => new CliError({ message: `bad password validation settings: ${String(error)}` })
    )

const skipValidation = Options.boolean("skip-validation").pipe(
  Options.withDescription(
    "Set the password without the password validators (createsuperuser's \"Bypass password validation\"); a blank one is still refused"
  )
)

type StoreError =
  | UserStore.InvalidInput
  | UserStore.UserStoreError
  | UserStore.UserAlreadyExists
  | UserStore.UserNotFound
  | UserStore.PermissionNotFound
  | PasswordHasher.HashError
  | PasswordHasher.HasherBusy

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
    case "PermissionNotFound":
      return `no permission ${JSON.stringify(error.permission)} (Django makes permissions from its models: run Django's migrate, or pass --create-permissions)`
    case "HashError":
      return "could not hash the password"
    case "HasherBusy":
      return error.message
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

// A refused password (Django's validate_password, the validators in force): every broken rule on
// its own line.
const refusedPassword = <A, E, R>(effect: Effect.Effect<A, E | PasswordValidation.InvalidPassword, R>) =>
  Effect.catchIf(
    effect,
    (error): error is PasswordValidation.InvalidPassword => error instanceof PasswordValidation.InvalidPassword,
    (error) =>
      Effect.fail(
        new CliError({ message: ["the password was refused:", ...error.messages.map((m) => `  ${m}`)].join("\n") })
      )
  )

// --- the commands ------------------------------------------------------------------------------

const migrate = Command.make("migrate", databaseOptions, ({ db }) =>
  Effect.gen(function*() {
    if (Option.isSome(db.django)) {
      return yield* new CliError({
        message:
          "a Django site's auth tables belong to Django: run Django's `manage.py migrate`; effect-auth never creates or alters them"
      })
    }
    // Building the user store migrates its tables; the session table follows.
    yield* SqlSessionStore.migrate().pipe(
      Effect.mapError((error) => new CliError({ message: `session table: ${error.message}` }))
    )
    // The tables of the other SQL modules, each with its own migrations table.
    yield* Effect.mapError(SqlObjectPermissions.migrate(), (error) => new CliError({ message: `object permission tables: ${error.message}` }))
    yield* Effect.mapError(SqlTotpStore.migrate(), (error) => new CliError({ message: `TOTP tables: ${error.message}` }))
    yield* Effect.mapError(SqlLockoutStore.migrate(), (error) => new CliError({ message: `lockout table: ${error.message}` }))
    yield* Effect.mapError(
      SqlExternalIdentities.migrate(),
      (error) => new CliError({ message: `external identity table: ${error.message}` })
    )
    yield* Console.log(
      `Migrated ${describeDatabase(db)}: users, sessions, object permissions, TOTP devices, lockouts and external identities are up to date.`
    )
  }).pipe(Effect.provide(openDatabase(db)))).pipe(
    Command.withDescription("Create or update the tables: users, sessions, object permissions, TOTP devices, lockouts, external identities")
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
    skipValidation,
    ...databaseOptions
  },
  (args) =>
    Effect.gen(function*() {
      const store = yield* UserStore.UserStore
      // Refuse a taken name before asking for a password (the insert re-checks it).
      if (Option.isSome(yield* store.findByUsername(args.username))) {
        return yield* new UserStore.UserAlreadyExists({ username: args.username })
      }
      // As createsuperuser cleans it (the model's EmailField, which does not strip, unlike a
      // form's): Django's EmailValidator and the 254-character limit, both messages at once,
      // before the password is asked for. An empty one is no email, as Django's blank field.
      const email = Option.getOrUndefined(args.email)
      if (email !== undefined && email !== "") {
        const length = [...email].length
        const messages = [
          ...(isEmailAddress(email) ? [] : ["Enter a valid email address."]),
          ...(length <= 254 ? [] : [`Ensure this value has at most 254 characters (it has ${length}).`])
        ]
        if (messages.length > 0) return yield* new CliError({ message: messages.join("; ") })
      }
      const password = yield* Password.read({ confirm: true })
      const user = yield* refusedPassword(UserManager.createUser({
        username: args.username,
        password,
        email,
        isSuperuser: args.superuser,
        isStaff: args.superuser
      }))
      yield* Console.log(`Created ${args.superuser ? "superuser" : "user"} ${JSON.stringify(user.username)} (id ${user.id}).`)
    }).pipe(
      Effect.mapError(toCliError),
      Effect.provide(Layer.mergeAll(openDatabase(args.db), hasherOf(args.db), validatorsOf(args.db, args.skipValidation)))
    )
).pipe(Command.withDescription(
  "Create a user; the password is prompted for, or read from stdin, and held to the password validators " +
    "(PASSWORD_VALIDATORS, PASSWORD_MIN_LENGTH, PASSWORD_MAX_SIMILARITY, PASSWORD_COMMON_LIST; Django's four by default)"
))

const changepassword = Command.make("changepassword", { username, skipValidation, ...databaseOptions }, (args) =>
  Effect.gen(function*() {
    const store = yield* UserStore.UserStore
    const user = yield* findUser(store, args.username)
    const password = yield* Password.read({ confirm: true })
    yield* refusedPassword(UserManager.setPassword(user, password))
    yield* Console.log(`Changed the password of ${JSON.stringify(user.username)}; their sessions are logged out.`)
  }).pipe(
    Effect.mapError(toCliError),
    Effect.provide(Layer.mergeAll(openDatabase(args.db), hasherOf(args.db), validatorsOf(args.db, args.skipValidation)))
  )).pipe(
    Command.withDescription(
      "Set a user's password; the password is prompted for, or read from stdin, and held to the password validators, as by createuser"
    )
  )

const objectOption = Options.text("object").pipe(
  Options.withPseudoName("APP_LABEL.MODEL:PK"),
  Options.withDescription("An object (content type and primary key), e.g. reports.report:42"),
  Options.optional
)

// `reports.report:42` → the object reference object permissions use.
const parseObject = (text: Option.Option<string>) =>
  Option.match(text, {
    onNone: () => Effect.succeed(undefined),
    onSome: (value) => {
      const at = value.indexOf(":")
      const ref = ObjectPermissions.refOf({ contentType: value.slice(0, at), objectPk: value.slice(at + 1) })
      return at > 0 && Option.isSome(ref)
        ? Effect.succeed(ref.value)
        : Effect.fail(new CliError({ message: `${JSON.stringify(value)} is not an object: write app_label.model:pk, e.g. reports.report:42` }))
    }
  })

const objectStoreError = (error: ObjectPermissions.ObjectPermissionsError | AuthConfigError) =>
  new CliError({ message: `object permissions: ${error.message}` })

// On a Django site's database a group's object grants reference Django's group rows.
const objectStoreOptions = (db: Database): SqlObjectPermissions.Options =>
  Option.isSome(db.django) ? { django: db.django.value } : {}

// On a Django site's database an object grant names what Django has, as a plain grant does: the
// object's model in django_content_type, which no flag makes (Django makes content types from its
// models), and the permission in auth_permission (PermissionNotFound; made with
// --create-permissions, as there). Otherwise `auth.frobnicate` on `nope.nothing:1` was granted,
// and answered by explain, though Django has neither. Whether the permission is the model's
// (guardian: Permission.DoesNotExist) the store checks; one --create-permissions would make under
// another model (`blog.change_comment` on a `blog.post`) is refused here, before it is made.
const djangoHasObjectGrant = (
  store: UserStore.UserStore.Service,
  django: SqlUserStore.DjangoOptions,
  permission: string,
  obj: ObjectPermissions.ObjectRef,
  createPermissions: boolean
) =>
  Effect.gen(function*() {
    const { contentType } = yield* SqlUserStore.tables({ django })
    const [appLabel, model] = obj.contentType.split(".")
    const sql = yield* SqlClient.SqlClient
    const found = yield* sql<{ id: unknown }>`SELECT id FROM ${sql(contentType!)}
      WHERE app_label = ${appLabel!} AND model = ${model!}`
    if (found.length === 0) {
      return yield* new CliError({
        message: `Django has no model ${JSON.stringify(obj.contentType)} (no row in ${contentType}): object ` +
          "permissions name the objects of Django's models, app_label.model as in django_content_type"
      })
    }
    if (!(yield* store.permissions()).has(permission)) {
      if (!createPermissions) return yield* new UserStore.PermissionNotFound({ permission })
      const codename = permission.slice(permission.indexOf(".") + 1)
      if (permission.slice(0, permission.indexOf(".")) !== appLabel || modelOf(codename) !== model) {
        return yield* new CliError({
          message: `${JSON.stringify(permission)} would be made for another model than ${JSON.stringify(obj.contentType)}: ` +
            "an object permission is one of the object's model (Django makes them from its models)"
        })
      }
      yield* store.createPermission(permission)
    }
  }).pipe(
    Effect.catchTags({
      SqlError: (error) => Effect.fail(new CliError({ message: `cannot read the database: ${error.message}` })),
      AuthConfigError: (error) => Effect.fail(new CliError({ message: error.message }))
    })
  )

const grant = Command.make(
  "grant",
  {
    username,
    permission: Args.text({ name: "PERMISSION" }),
    object: objectOption,
    createPermissions: Options.boolean("create-permissions").pipe(
      Options.withDescription("With --django: make a permission Django has no row for (Django makes them from its models)")
    ),
    ...databaseOptions
  },
  (args) =>
    Effect.gen(function*() {
      if (!isPermission(args.permission)) {
        return yield* new CliError({
          message: `${JSON.stringify(args.permission)} is not a permission: write app_label.codename, e.g. reports.view_report`
        })
      }
      const obj = yield* parseObject(args.object)
      const store = yield* UserStore.UserStore
      const user = yield* findUser(store, args.username)
      if (obj === undefined) {
        yield* store.grantPermission(user.id, args.permission)
        return yield* Console.log(`Granted ${args.permission} to ${JSON.stringify(user.username)}.`)
      }
      if (Option.isSome(args.db.django)) {
        yield* djangoHasObjectGrant(store, args.db.django.value, args.permission, obj, args.createPermissions)
      }
      const grants = yield* Effect.mapError(SqlObjectPermissions.make(objectStoreOptions(args.db)), objectStoreError)
      // The tables and the grant in one transaction (SQLite and PostgreSQL roll DDL back): a grant
      // the store refuses (a permission of another model) leaves no table behind.
      const sql = yield* SqlClient.SqlClient
      yield* sql.withTransaction(
        Effect.zipRight(
          SqlObjectPermissions.migrate(objectStoreOptions(args.db)),
          grants.grantUser(user.id, args.permission, obj)
        )
      ).pipe(
        Effect.mapError((error) =>
          error._tag === "SqlError" ? new CliError({ message: `object permissions: ${error.message}` }) : objectStoreError(error)
        )
      )
      yield* Console.log(
        `Granted ${args.permission} on ${obj.contentType}:${obj.objectPk} to ${JSON.stringify(user.username)}.`
      )
    }).pipe(
      Effect.mapError(toCliError),
      Effect.provide(openDatabase(args.db, { migrate: true, createPermissions: args.createPermissions }))
    )
).pipe(Command.withDescription(
  "Grant a permission (app_label.codename) to a user, or on one object with --object (which creates the object " +
    "permission tables if need be); with --django, only a permission and a model the Django site has"
))

// Read-only: the model backend and, for an object, the object permissions, as the app folds them.
const explain = Command.make(
  "explain",
  { username, permission: Args.text({ name: "PERMISSION" }), object: objectOption, ...databaseOptions },
  (args) =>
    Effect.gen(function*() {
      const obj = yield* parseObject(args.object)
      const store = yield* UserStore.UserStore
      const user = yield* findUser(store, args.username)
      const objects = yield* Effect.mapError(SqlObjectPermissions.make(objectStoreOptions(args.db)), objectStoreError)
      const model = yield* Effect.provide(ModelBackend.make(), hasherOf(args.db))
      const objectBackend = yield* ObjectPermissionBackend.make().pipe(
        Effect.provideService(ObjectPermissions.ObjectPermissions, objects)
      )
      const auth = yield* AuthService.make([model, objectBackend]).pipe(
        Effect.provide(AuthEvents.layer),
        Effect.mapError((error) => new CliError({ message: error.message }))
      )
      const explanation = yield* auth.explain(user as unknown as User, args.permission, obj).pipe(
        Effect.mapError((error) => new CliError({ message: `backend ${error.backend} could not answer: ${error.message}` }))
      )
      yield* Console.log(Permissions.describe(explanation).join("\n"))
    }).pipe(Effect.mapError(toCliError), Effect.provide(openMigrated(args.db)))
).pipe(Command.withDescription("Explain whether a user has a permission (or one on an object), backend by backend"))

const yesNo = (b: boolean) => (b ? "yes" : "no")

// Text that came from outside (a username a stranger tried at login, now a lockout key; a name in
// a Django site's database) is shown with its control and bidirectional characters escaped:
// printed raw, they would move the operator's cursor, hide or forge rows, or retitle the terminal.
const printable = (text: string): string =>
  text.replace(
    /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`
  )

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const shown = rows.map((row) => row.map(printable))
  const widths = shown[0]!.map((_, i) => Math.max(...shown.map((row) => row[i]!.length)))
  return shown.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n")
}

// The permissions a user has, as Django's get_all_permissions (and `explain`) answer: none for an
// inactive user, a superuser too, whatever is granted on record; every one for an active superuser.
const permissionsCell = (store: UserStore.UserStore.Service, user: UserStore.StoredUser) =>
  !user.isActive
    ? Effect.succeed("")
    : user.isSuperuser
    ? Effect.succeed("(all)")
    : Effect.map(
      Effect.all([store.userPermissions(user.id), store.groupPermissions(user.id)]),
      ([own, viaGroups]) => Array.from(new Set([...own, ...viaGroups])).sort().join(",")
    )

// Read-only: it never creates or migrates tables.
const users = Command.make("users", databaseOptions, ({ db }) =>
  Effect.gen(function*() {
    const store = yield* UserStore.UserStore
    const all = yield* store.list()
    if (all.length === 0) return yield* Console.log("No users yet: create one with `createuser USERNAME`.")
    const rows = yield* Effect.forEach(all, (user) =>
      Effect.map(permissionsCell(store, user), (permissions) => [
        user.id,
        user.username,
        user.email,
        yesNo(user.isActive),
        yesNo(user.isSuperuser),
        permissions
      ]))
    yield* Console.log(table([["ID", "USERNAME", "EMAIL", "ACTIVE", "SUPERUSER", "PERMISSIONS"], ...rows]))
  }).pipe(Effect.mapError(toCliError), Effect.provide(openMigrated(db)))).pipe(
    Command.withDescription(
      "List the users and the permissions they have, as Django counts them: none for an inactive user (needs `migrate` first)"
    )
  )

// --- login throttling: the Redis or SQL store of `Lockout` ----------------------------------------------

const redisUrlOption = Options.redacted("redis-url").pipe(
  Options.withPseudoName("URL"),
  Options.withDescription("Redis URL of the app's Lockout store (default: $REDIS_URL)"),
  Options.optional
)
const keyPrefixOption = Options.text("key-prefix").pipe(
  Options.withPseudoName("PREFIX"),
  Options.withDescription("The Lockout store's key prefix, as the app sets it"),
  Options.withDefault("effect-auth:lockout:")
)
// The app's `ipv6Prefix`: `unlock <IPv6 address>` names the network the app counts it by, and found
// nothing under the default /64 when the app counted by another width (a /128 record of
// 2001:db8::1 is `ip:2001:db8:0:0:0:0:0:1/128`).
const ipv6PrefixOption = Options.integer("ipv6-prefix").pipe(
  Options.withPseudoName("BITS"),
  Options.withDescription("The Lockout's ipv6Prefix, as the app sets it (default 64): an IPv6 address is counted by its network"),
  Options.withDefault(64),
  Options.mapEffect((bits) =>
    bits >= 1 && bits <= 128 ? Effect.succeed(bits) : Effect.fail(usage("--ipv6-prefix must be an integer from 1 to 128"))
  )
)
const sqlOption = Options.boolean("sql").pipe(
  Options.withDescription("The SQL Lockout store (SqlLockoutStore) in the database given by --database/--database-url")
)
// A URL ioredis cannot read ("::::") threw "Invalid URL" when the command made its client: an
// unexpected failure (exit 1), where every other bad argument is bad usage (exit 2). It is checked
// with the options, by ioredis itself (a client made and dropped unconnected: its own parse, no
// copy of it to drift), and refused as bad usage. The message never shows the URL: it may hold a
// password. Without ioredis there is nothing to check: the command says what to install.
const checkRedisUrl = (url: string, what: string): Effect.Effect<void, ValidationError.ValidationError> =>
  Effect.flatMap(
    Effect.option(Effect.tryPromise(() => import("ioredis"))),
    Option.match({
      onNone: () => Effect.void,
      onSome: ({ Redis }) =>
        Effect.try({
          try: () => new Redis(url, { lazyConnect: true }).disconnect(),
          catch: (error) =>
            usage(`${what} is no Redis URL: ${error instanceof Error ? error.message : "ioredis cannot read it"}`)
        })
    })
  )

// The Redis of the Lockout store: --redis-url, else REDIS_URL; none with --sql (where neither is
// read, nor checked).
interface LockoutStore {
  readonly sql: boolean
  readonly redisUrl: Option.Option<Redacted.Redacted<string>>
}
const lockoutStoreOption: Options.Options<LockoutStore> = Options.all({ url: redisUrlOption, sql: sqlOption }).pipe(
  Options.mapEffect(({ sql, url }): Effect.Effect<LockoutStore, ValidationError.ValidationError> =>
    sql
      ? Effect.succeed({ sql, redisUrl: Option.none() })
      : Effect.gen(function*() {
        const fromEnv = yield* Effect.orElseSucceed(
          Config.option(Config.redacted("REDIS_URL")),
          () => Option.none<Redacted.Redacted<string>>()
        )
        const redisUrl = Option.orElse(url, () => fromEnv)
        if (Option.isSome(redisUrl)) {
          yield* checkRedisUrl(RedactedValue.value(redisUrl.value), Option.isSome(url) ? "--redis-url" : "REDIS_URL")
        }
        return { sql, redisUrl }
      })
  )
)
const lockoutOptions = { store: lockoutStoreOption, keyPrefix: keyPrefixOption, ipv6Prefix: ipv6PrefixOption, ...databaseOptions }
interface LockoutArgs {
  readonly store: LockoutStore
  readonly keyPrefix: string
  readonly ipv6Prefix: number
  readonly db: Database
}

// One short-lived client: a Redis that does not answer fails the command at once, no retry loop.
const openRedisLockout = (
  url: Option.Option<Redacted.Redacted<string>>,
  keyPrefix: string,
  ipv6Prefix: number
): Layer.Layer<Lockout.Lockout, CliError> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    if (Option.isNone(url)) {
      return yield* new CliError({ message: "give the Lockout store's Redis with --redis-url or REDIS_URL" })
    }
    const target = RedactedValue.value(url.value)
    const { Redis } = yield* Effect.tryPromise({
      try: () => import("ioredis"),
      catch: () => new CliError({ message: "the lockout commands need ioredis (npm i ioredis@5.11.1)" })
    })
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const client = new Redis(target, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true })
        // A refused connection fails the command's own request; not also an "unhandled" log line.
        client.on("error", () => {})
        return client
      }),
      (client) => Effect.sync(() => client.disconnect())
    )
    return Lockout.layerRedis({ client, keyPrefix, ipv6Prefix }).pipe(
      Layer.mapError((error) => new CliError({ message: error.message }))
    )
  }))

// The SQL store is read as the app left it: the CLI never creates its table.
const openLockout = (args: LockoutArgs): Layer.Layer<Lockout.Lockout, CliError> =>
  args.store.sql
    ? SqlLockoutStore.layer({ migrate: false, ipv6Prefix: args.ipv6Prefix }).pipe(
      Layer.mapError((error) => new CliError({ message: error.message })),
      Layer.provide(openDatabase(args.db, { migrate: false }))
    )
    : openRedisLockout(args.store.redisUrl, args.keyPrefix, args.ipv6Prefix)

const lockoutError = (error: Lockout.LockoutStoreError | CliError): CliError =>
  error._tag === "CliError" ? error : new CliError({ message: `lockout store: ${error.message}` })

const lockouts = Command.make("lockouts", lockoutOptions, (args) =>
  Effect.gen(function*() {
    const entries = yield* Lockout.list
    if (entries.length === 0) return yield* Console.log("No failed logins on record.")
    const rows = entries.map((entry) => [
      entry.key,
      String(entry.failures),
      entry.lockedUntil === undefined ? "-" : entry.lockedUntil.toISOString(),
      String(entry.lockouts),
      entry.lastFailure.toISOString()
    ])
    yield* Console.log(table([["KEY", "FAILURES", "LOCKED UNTIL", "LOCKS", "LAST FAILURE"], ...rows]))
  }).pipe(Effect.mapError(lockoutError), Effect.provide(openLockout(args)))).pipe(
    Command.withDescription("List the failed-login counters and locks of the app's Lockout store (Redis, or SQL with --sql)")
  )

const unlock = Command.make(
  "unlock",
  { target: Args.text({ name: "USERNAME|ADDRESS" }), ...lockoutOptions },
  ({ target, ...args }) =>
    Effect.gen(function*() {
      const keys = yield* Lockout.reset(target)
      yield* Console.log(
        keys.length === 0
          ? `Nothing on record for ${JSON.stringify(target)}.`
          : `Reset ${keys.length} key${keys.length === 1 ? "" : "s"}: ${keys.map(printable).join(", ")}`
      )
    }).pipe(Effect.mapError(lockoutError), Effect.provide(openLockout(args)))
).pipe(Command.withDescription("Reset the failed logins and locks of a username or a client address"))

/** The `effect-auth` command and its subcommands. */
export const command = Command.make("effect-auth").pipe(
  Command.withDescription("Manage the users of an effect-auth SQL user store"),
  Command.withSubcommands([migrate, createuser, changepassword, grant, explain, users, lockouts, unlock])
)

// This file is src/cli/commands.ts or dist/cli/commands.js: package.json is two levels up either way.
const version = (() => {
  try {
    return String(JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version)
  } catch {
    return "0.0.0"
  }
})()

const configProviderOf = (env: Io.Io["env"]) =>
  ConfigProvider.fromMap(
    new Map(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined))
  )

/**
 * Runs `effect-auth ...args` on the given streams and environment and answers the exit code: 0,
 * 1 for an error (reported as one line on stderr, never a stack trace), 2 for bad usage (reported
 * by `@effect/cli`), 130 when a prompt was left with Ctrl-C. Help and usage errors carry ANSI
 * colours only when written to a terminal and NO_COLOR is not set.
 */
export const run = (args: ReadonlyArray<string>, io: Io.Io): Effect.Effect<number> =>
  Command.run(command, { name: "effect-auth", version })(["node", "effect-auth", ...args]).pipe(
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
    ),
    Effect.provideService(Io.Stdin, io.stdin),
    Effect.provide(NodeContext.layer),
    Effect.withConsole(Io.console(io)),
    Effect.withConfigProvider(configProviderOf(io.env))
  )
