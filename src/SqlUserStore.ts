/**
 * A `UserStore` on `@effect/sql`: SQLite (the embedded default, a file or memory) or PostgreSQL.
 *
 * The tables have Django's shape under a configurable prefix (default `auth_`): `auth_user`,
 * `auth_group`, `auth_permission`, `auth_user_groups`, `auth_user_user_permissions`,
 * `auth_group_permissions`. `auth_user` has exactly Django's columns, so users can be copied
 * between a Django site and an effect-auth service with `INSERT ... SELECT`. `auth_permission`
 * keeps `app_label` in a column where Django points at `django_content_type`: do not run this
 * store on the same prefix as a Django site's own tables.
 *
 * The schema is created by `@effect/sql`'s `Migrator` with its own bookkeeping table,
 * `effect_<prefix>user_migrations` (`effect_auth_user_migrations` by default), so other modules'
 * migrations in the same database (sessions, API tokens, your app) never collide with it. To run
 * everything through one migrator instead, pass `migrate: false` and include {@link migrations}.
 *
 * The database enforces unique usernames: of concurrent creates of one name exactly one wins, the
 * others fail with `UserAlreadyExists` (SQLite's and PostgreSQL's unique violations are both
 * recognised). Any other database failure is a `UserStoreError`, never a defect.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlUserStore, UserStore } from "effect-auth"
 *
 * // a file in production, e.g. { filename: "./users.db" }
 * const UsersLive = SqlUserStore.layerSqlite({ filename: ":memory:" })
 *
 * const program = Effect.flatMap(UserStore.UserStore, (store) => store.create({ username: "alice" }))
 * Effect.runPromise(program.pipe(Effect.provide(UsersLive)))
 * ```
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import { AuthConfigError } from "./AuthError.js"
import * as SqlTables from "./internal/sqlTables.js"
import * as Rows from "./internal/sqlUserStore.js"
import { withValueFreeSpan } from "./internal/tracing.js"
import * as internal from "./internal/userStore.js"
import * as UserStore from "./UserStore.js"
import { safeCause } from "./internal/storeError.js"

/**
 * Where the tables live.
 *
 * @example
 * ```ts
 * import type { SqlUserStore } from "effect-auth"
 *
 * const options: SqlUserStore.Options = { tablePrefix: "shop_auth_" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Prefix of every table: `[a-z_][a-z0-9_]*`, at most 30 characters. Default: `"auth_"`. */
  readonly tablePrefix?: string | undefined
  /** The Migrator's bookkeeping table. Default: `effect_<tablePrefix>user_migrations`. */
  readonly migrationsTable?: string | undefined
  /**
   * How long one store operation may take before it fails with a store error (a 503 over HTTP):
   * a database whose connections froze must not hang requests. Default: 5 seconds.
   */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * SQLite: how long an operation waits for a lock another connection or process holds (a
   * Django process writing the same file, say) before it fails with a store error; within
   * `timeout`. Waited asynchronously: {@link layerSqlite} caps the driver's synchronous wait at
   * 10 ms per try, so a locked database never stalls the process. Default: `timeout`'s 5 seconds,
   * Django's default for SQLite.
   */
  readonly busyTimeout?: Duration.DurationInput | undefined
  /**
   * Run on a Django site's own tables (`auth_user`, `auth_group`, `auth_permission`,
   * `django_content_type` and the link tables) instead of effect-auth's: `true` for Django's
   * default names, or {@link DjangoOptions} for a custom user model's. The store then never
   * creates, alters or migrates a table, reads permissions through `django_content_type` as
   * Django's `ModelBackend` does, writes timestamps as Django writes them, and looks usernames up
   * exactly, as `get_by_natural_key` does. `tablePrefix` and `migrationsTable` do not apply.
   */
  readonly django?: boolean | DjangoOptions | undefined
}

/**
 * The tables of a Django site, for a custom user model (`AUTH_USER_MODEL`). Each defaults to
 * what Django names it for `django.contrib.auth`'s `User`; a user model with `AbstractUser`'s
 * columns is what the store reads and writes, with an integer primary key (`AutoField` or
 * `BigAutoField`: the layer refuses a UUID one).
 *
 * @example
 * ```ts
 * import type { SqlUserStore } from "effect-auth"
 *
 * // AUTH_USER_MODEL = "accounts.Account"
 * const django: SqlUserStore.DjangoOptions = {
 *   tables: { user: "accounts_account", userColumn: "account_id" }
 * }
 *
 * // AUTH_USER_MODEL = "accounts.Member", with USERNAME_FIELD = "email"
 * const byEmail: SqlUserStore.DjangoOptions = {
 *   tables: { user: "accounts_member", userColumn: "member_id" },
 *   usernameField: "email"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface DjangoOptions {
  readonly tables?: {
    /** Default `auth_user`. */
    readonly user?: string | undefined
    /** Default `auth_group`. */
    readonly group?: string | undefined
    /** Default `auth_permission`. */
    readonly permission?: string | undefined
    /** Default `django_content_type`. */
    readonly contentType?: string | undefined
    /** Default `<user>_groups`. */
    readonly userGroups?: string | undefined
    /** Default `<user>_user_permissions`. */
    readonly userPermissions?: string | undefined
    /** Default `auth_group_permissions`. */
    readonly groupPermissions?: string | undefined
    /** The link tables' column naming the user: `<model name>_id`. Default `user_id`. */
    readonly userColumn?: string | undefined
  } | undefined
  /**
   * The column users log in by: the user model's `USERNAME_FIELD`. Default `"username"`.
   *
   * With `"email"` (or any other column), the store finds users by that column (every login, as
   * Django's `get_by_natural_key` does), reports it as their `username`, and writes a new user's
   * name into it; `create`'s `email` is then left out or the same. AbstractUser's `username`
   * column, where the model keeps it beside (`REQUIRED_FIELDS = ["username"]`), gets the same
   * value; a model that dropped it (`username = None`) works too. A new name is held to
   * `UserStore.ValidUsername` whatever the column (a provisioned or remote user's to the rule of
   * Django's backends, see `Provisioning`); lookups, as always on Django's tables, are
   * exact. Must match `[A-Za-z_][A-Za-z0-9_]*` and be no other column the store writes
   * (`password`, `first_name`, ...), or the layer fails with an `AuthConfigError`.
   */
  readonly usernameField?: string | undefined
  /**
   * Django's permissions come from its models (`migrate` makes them): granting one that has no row
   * fails with `PermissionNotFound` unless this is `true`; then the permission is made, on the
   * content type of its app label and the codename's model (`blog.change_post` → `blog | post`).
   * `createPermission` always makes it. Default: `false`.
   */
  readonly createMissingPermissions?: boolean | undefined
}

/**
 * Options of {@link layer}.
 *
 * @example
 * ```ts
 * import type { SqlUserStore } from "effect-auth"
 *
 * // the app's own migrator creates the tables (see `migrations`)
 * const options: SqlUserStore.LayerOptions = { migrate: false }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions extends Options {
  /** Run the migrations when the layer is built. Default: `true`. */
  readonly migrate?: boolean | undefined
}

/**
 * Options of {@link layerSqlite}.
 *
 * @example
 * ```ts
 * import type { SqlUserStore } from "effect-auth"
 *
 * const options: SqlUserStore.SqliteOptions = { filename: "./data/users.db" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface SqliteOptions extends LayerOptions {
  /** A file path, or `":memory:"` for a database that lives as long as the layer. */
  readonly filename: string
  /**
   * SQLite's write-ahead log is on unless this is `true`. On a Django site's file (`django`) it is
   * left as Django made it (off) unless this is `false`: WAL is a setting of the file, and lets
   * Django's readers and the store's writer work at once.
   */
  readonly disableWAL?: boolean | undefined
}

/**
 * Options of {@link layerPg}.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type { SqlUserStore } from "effect-auth"
 *
 * const options: SqlUserStore.PgOptions = {
 *   url: Redacted.make("postgres://app:secret@db:5432/app"),
 *   maxConnections: 20,
 *   connectTimeout: "3 seconds"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface PgOptions extends LayerOptions {
  /** `postgres://user:password@host:5432/database`; pass it `Redacted` when it holds a password. */
  readonly url: string | Redacted.Redacted<string>
  /** Pool size. Default: the `pg` driver's (10). */
  readonly maxConnections?: number | undefined
  /** Default: 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  readonly applicationName?: string | undefined
  readonly ssl?: boolean | undefined
}

/**
 * The table names for a prefix.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlUserStore } from "effect-auth"
 *
 * const names = Effect.map(SqlUserStore.tables({ tablePrefix: "shop_" }), (t) => [t.user, t.migrations])
 * // ["shop_user", "effect_shop_user_migrations"]
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Tables {
  readonly user: string
  readonly group: string
  readonly permission: string
  readonly userGroups: string
  readonly userPermissions: string
  readonly groupPermissions: string
  /** The Migrator's bookkeeping table; `""` on Django's tables, which are never migrated. */
  readonly migrations: string
  /** On a Django site's tables only: `django_content_type`. */
  readonly contentType?: string | undefined
  /** The link tables' column naming the user. Default `user_id`. */
  readonly userColumn?: string | undefined
  /** On a Django site's tables only: the column users log in by (`DjangoOptions.usernameField`). */
  readonly usernameField?: string | undefined
}

/**
 * Resolves and checks the table names; a bad prefix is an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlUserStore } from "effect-auth"
 *
 * Effect.runSync(SqlUserStore.tables()).user // "auth_user"
 * Effect.runSync(SqlUserStore.tables()).migrations // "effect_auth_user_migrations"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const tables = (options: Options = {}): Effect.Effect<Tables, AuthConfigError> =>
  readOptions(() =>
    options.django ? djangoTables(options) : SqlTables.resolve("SqlUserStore", "user", options, (prefix) => ({
      user: `${prefix}user`,
      group: `${prefix}group`,
      permission: `${prefix}permission`,
      userGroups: `${prefix}user_groups`,
      userPermissions: `${prefix}user_user_permissions`,
      groupPermissions: `${prefix}group_permissions`
    }))
  )

// Options an untyped caller handed over may throw when read (a getter, a revoked Proxy, a name
// whose toString throws): a config error like any other bad option, never a defect. The reading
// is pure: nothing has been opened or written yet.
const readOptions = <A>(read: () => Effect.Effect<A, AuthConfigError>): Effect.Effect<A, AuthConfigError> =>
  Effect.catchAllDefect(
    Effect.suspend(read),
    () => Effect.fail(new AuthConfigError({ message: "SqlUserStore: the options could not be read" }))
  )

// AbstractUser's columns the store writes itself: none of them can be the one users log in by.
const storeColumns = new Set([
  "id", "password", "last_login", "is_superuser", "first_name", "last_name", "is_staff", "is_active", "date_joined"
])

const djangoOptions = (options: Options): DjangoOptions =>
  typeof options.django === "object" ? options.django : {}


// Django's names, or the ones given for a custom user model; never a migrations table.
const djangoTables = (options: Options): Effect.Effect<Tables, AuthConfigError> => readOptions(() => {
  if (options.tablePrefix !== undefined || options.migrationsTable !== undefined) {
    return Effect.fail(
      new AuthConfigError({
        message: "SqlUserStore: tablePrefix and migrationsTable do not apply to Django's tables (see django.tables)"
      })
    )
  }
  const django = djangoOptions(options)
  const given = django.tables ?? {}
  const user = given.user ?? "auth_user"
  const names = {
    user,
    group: given.group ?? "auth_group",
    permission: given.permission ?? "auth_permission",
    contentType: given.contentType ?? "django_content_type",
    userGroups: given.userGroups ?? `${user}_groups`,
    userPermissions: given.userPermissions ?? `${user}_user_permissions`,
    groupPermissions: given.groupPermissions ?? "auth_group_permissions",
    userColumn: given.userColumn ?? "user_id",
    migrations: ""
  }
  const bad = Object.entries(names).find(([key, name]) => key !== "migrations" && !SqlTables.isTableName(name))
  if (bad !== undefined) {
    return Effect.fail(
      new AuthConfigError({ message: `SqlUserStore: django.tables.${bad[0]} must match [A-Za-z_][A-Za-z0-9_]* (at most 63 characters)` })
    )
  }
  const usernameField: unknown = django.usernameField ?? "username"
  if (typeof usernameField !== "string" || !SqlTables.isTableName(usernameField)) {
    return Effect.fail(
      new AuthConfigError({ message: "SqlUserStore: django.usernameField must match [A-Za-z_][A-Za-z0-9_]* (at most 63 characters)" })
    )
  }
  if (storeColumns.has(usernameField)) {
    return Effect.fail(
      new AuthConfigError({
        message: `SqlUserStore: django.usernameField cannot be ${usernameField}: the store writes that column itself`
      })
    )
  }
  return Effect.succeed({ ...names, usernameField })
})

const createTables = (t: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlTables.client
    const pg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    // Django's column types on each database.
    const pk = sql.literal(pg ? "integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" : "integer NOT NULL PRIMARY KEY AUTOINCREMENT")
    const bigPk = sql.literal(pg ? "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" : "integer NOT NULL PRIMARY KEY AUTOINCREMENT")
    const bool = sql.literal(pg ? "boolean" : "bool")
    const ts = sql.literal(pg ? "timestamp with time zone" : "datetime")
    const statements: ReadonlyArray<Statement.Statement<unknown>> = [
      sql`CREATE TABLE ${sql(t.user)} (
        id ${pk},
        password varchar(128) NOT NULL,
        last_login ${ts} NULL,
        is_superuser ${bool} NOT NULL,
        username varchar(150) NOT NULL UNIQUE,
        first_name varchar(150) NOT NULL,
        last_name varchar(150) NOT NULL,
        email varchar(254) NOT NULL,
        is_staff ${bool} NOT NULL,
        is_active ${bool} NOT NULL,
        date_joined ${ts} NOT NULL
      )`,
      sql`CREATE TABLE ${sql(t.group)} (
        id ${pk},
        name varchar(150) NOT NULL UNIQUE
      )`,
      sql`CREATE TABLE ${sql(t.permission)} (
        id ${pk},
        name varchar(255) NOT NULL,
        app_label varchar(100) NOT NULL,
        codename varchar(100) NOT NULL,
        UNIQUE (app_label, codename)
      )`,
      sql`CREATE TABLE ${sql(t.userGroups)} (
        id ${bigPk},
        user_id integer NOT NULL REFERENCES ${sql(t.user)} (id) ON DELETE CASCADE,
        group_id integer NOT NULL REFERENCES ${sql(t.group)} (id) ON DELETE CASCADE,
        UNIQUE (user_id, group_id)
      )`,
      sql`CREATE INDEX ${sql(`${t.userGroups}_group_id`)} ON ${sql(t.userGroups)} (group_id)`,
      sql`CREATE TABLE ${sql(t.userPermissions)} (
        id ${bigPk},
        user_id integer NOT NULL REFERENCES ${sql(t.user)} (id) ON DELETE CASCADE,
        permission_id integer NOT NULL REFERENCES ${sql(t.permission)} (id) ON DELETE CASCADE,
        UNIQUE (user_id, permission_id)
      )`,
      sql`CREATE INDEX ${sql(`${t.userPermissions}_permission_id`)} ON ${sql(t.userPermissions)} (permission_id)`,
      sql`CREATE TABLE ${sql(t.groupPermissions)} (
        id ${bigPk},
        group_id integer NOT NULL REFERENCES ${sql(t.group)} (id) ON DELETE CASCADE,
        permission_id integer NOT NULL REFERENCES ${sql(t.permission)} (id) ON DELETE CASCADE,
        UNIQUE (group_id, permission_id)
      )`,
      sql`CREATE INDEX ${sql(`${t.groupPermissions}_permission_id`)} ON ${sql(t.groupPermissions)} (permission_id)`
    ]
    // One statement per call: SQLite prepares only the first statement of a string.
    for (const statement of statements) yield* statement
  })

/**
 * The store's migrations, for apps that run every module's migrations through one `Migrator`
 * (then build the store with `layer({ migrate: false })`). Keys are `<id>_<name>`, as
 * `Migrator.fromRecord` wants; renumber them if they clash with yours.
 *
 * @example
 * ```ts
 * import { Migrator } from "@effect/sql"
 * import { Effect } from "effect"
 * import { SqlUserStore } from "effect-auth"
 *
 * const migrate = Effect.flatMap(SqlUserStore.tables(), (tables) =>
 *   Migrator.make({})({
 *     // add your own migrations to this record
 *     loader: Migrator.fromRecord({ ...SqlUserStore.migrations(tables) }),
 *     table: "app_migrations"
 *   }))
 * ```
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrations = (
  tables: Tables
): Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> => ({
  "1_create_user_tables": createTables(tables)
})

const storeError = (operation: string) => (cause: unknown) => new UserStore.UserStoreError({ operation, cause: safeCause(cause) })

/**
 * Runs the store's migrations with its own migrations table. Failures, including a migration
 * that fails half-way, are a `UserStoreError`. A user table already there that these migrations
 * did not make (no migrations table beside it: a Django site's `auth_user`, say) is an
 * `AuthConfigError`, before any table is made (use the `django` option for Django's tables, or
 * another `tablePrefix` for the store's own beside them).
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Effect } from "effect"
 * import { SqlUserStore } from "effect-auth"
 *
 * const program = SqlUserStore.migrate().pipe(
 *   Effect.provide(SqliteClient.layer({ filename: "./users.db" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrate = (
  options: Options = {}
): Effect.Effect<void, AuthConfigError | UserStore.UserStoreError, SqlClient.SqlClient> =>
  options.django
    ? Effect.fail(
      new AuthConfigError({ message: "SqlUserStore: Django's tables belong to Django's migrations; effect-auth never migrates them" })
    )
    : Effect.flatMap(
      tables(options),
      (t) => Effect.zipRight(refuseForeignUserTable(t), SqlTables.migrate(migrations(t), t.migrations, storeError("migrate")))
    )

// A user table the store's migrations did not make (no bookkeeping table beside it): a Django
// site's `auth_user`, most likely. Migrating would leave the bookkeeping table behind in that
// database and then fail on the `CREATE TABLE`; it is refused before any table is made. (The
// Migrator makes its bookkeeping table before it begins the transaction that makes the store's,
// so a store another process is migrating at that moment is never taken for a foreign one.)
const refuseForeignUserTable = (t: Tables): Effect.Effect<void, AuthConfigError | UserStore.UserStoreError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlTables.client, (sql) =>
    Effect.flatMap(
      Effect.mapError(SqlTables.existingTables(sql, [t.user, t.migrations, "django_migrations"]), storeError("migrate")),
      (present) =>
        present.has(t.user) && !present.has(t.migrations)
          ? Effect.fail(
            new AuthConfigError({
              message: `SqlUserStore: the database has a table ${t.user} that effect-auth's migrations did not make ` +
                `(no ${t.migrations})${
                  present.has("django_migrations")
                    ? `: a Django site's database, whose tables are used as they are with the \`django\` option (--django on the CLI)`
                    : ""
                }; effect-auth's own tables can go beside it under another tablePrefix. No table was made`
            })
          )
          : Effect.void
    ))

/**
 * Checks that a Django site's tables are there and have the columns the store uses, without
 * touching them: a missing table or column is a `UserStoreError` naming it, when the layer is
 * built rather than at the first login. A user model whose primary key is no integer (a
 * `UUIDField` or `CharField` one) is an `AuthConfigError`: the store's user ids are integers.
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Effect } from "effect"
 * import { SqlUserStore } from "effect-auth"
 *
 * const check = SqlUserStore.checkDjangoTables({ django: true }).pipe(
 *   Effect.provide(SqliteClient.layer({ filename: "./db.sqlite3" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category migrations
 */
export const checkDjangoTables = (
  options: Options = { django: true }
): Effect.Effect<void, AuthConfigError | UserStore.UserStoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const t = yield* djangoTables(options)
    const sql = yield* SqlTables.client
    const column = t.userColumn ?? "user_id"
    const login = t.usernameField ?? "username"
    const probes: ReadonlyArray<readonly [string, string]> = [
      [
        t.user,
        `id, password, last_login, is_superuser, first_name, last_name, email, is_staff, is_active, date_joined${
          login === "email" ? "" : `, "${login}"`
        }`
      ],
      [t.group, "id, name"],
      [t.permission, "id, name, content_type_id, codename"],
      [t.contentType!, "id, app_label, model"],
      [t.userGroups, `${column}, group_id`],
      [t.userPermissions, `${column}, permission_id`],
      [t.groupPermissions, "group_id, permission_id"]
    ]
    for (const [table, columns] of probes) {
      yield* sql`SELECT ${sql.literal(columns)} FROM ${sql(table)} WHERE 1 = 0`.pipe(
        Effect.mapError((cause) => storeError(`open Django table ${table}`)(cause))
      )
    }
    // The store's user ids are integers (the link tables', sessions'): every row of a model with a
    // UUID key would fail to decode, each login a store error. Refused before any login.
    const types = yield* SqlTables.columnTypes(sql, t.user).pipe(
      Effect.mapError((cause) => storeError(`read the columns of Django table ${t.user}`)(cause))
    )
    const idType = types.get("id")
    if (idType !== undefined && !SqlTables.isIntegerType(sql, idType)) {
      return yield* new AuthConfigError({
        message: `SqlUserStore: the primary key of ${t.user} (id) is ${idType}; the store needs an integer one ` +
          "(AutoField or BigAutoField), not a UUIDField or CharField"
      })
    }
  })

// The store's own failures pass through `run`; everything else (SqlError, ParseError) is a
// UserStoreError.
const isStoreOutcome = (cause: unknown): boolean =>
  Predicate.isTagged(cause, "InvalidInput") || Predicate.isTagged(cause, "UserNotFound") ||
  Predicate.isTagged(cause, "GroupNotFound") || Predicate.isTagged(cause, "UserAlreadyExists") ||
  Predicate.isTagged(cause, "PermissionNotFound")

/**
 * Builds the store on the `SqlClient` in context. It does not migrate: see {@link layer} and
 * {@link migrate}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlUserStore } from "effect-auth"
 *
 * const store = SqlUserStore.make({ tablePrefix: "shop_auth_" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<UserStore.Service, AuthConfigError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const t = yield* tables(options)
    const sql = yield* SqlTables.client
    const {
      bool,
      userIdParam,
      django,
      userColumn,
      ensureGroup,
      ensurePermission,
      permissionId,
      existing,
      existingGroup,
      groupNames,
      ifUser,
      link,
      links,
      permissionIds,
      permSet,
      selectUsers,
      T,
      time,
      unlink,
      update,
      userById,
      userByName,
      usernameField,
      insertUser
    } = Rows.make(sql, t)

    // Every failure of the database or of a row's shape is a UserStoreError: callers (the model
    // backend) turn it into a TransportError. Defects stay defects: a bug is not an outage.
    // No answer within the timeout is a UserStoreError too.
    const timeout = yield* SqlTables.timeoutOf("SqlUserStore", "timeout", options.timeout, SqlTables.defaultTimeout)
    const busyTimeout = yield* SqlTables.timeoutOf("SqlUserStore", "busyTimeout", options.busyTimeout, timeout)
    const run = <A, E, R>(operation: string, effect: Effect.Effect<A, E, R>) =>
      effect.pipe(
        SqlTables.retryBusy(busyTimeout),
        Effect.mapError((cause) =>
          isStoreOutcome(cause) ? cause as Exclude<E, SqlError | ParseResult.ParseError> : storeError(operation)(cause)
        ),
        SqlTables.bounded(timeout, () => storeError(operation)(SqlTables.noAnswer(timeout))),
        // A user's row holds its password hash: neither this span nor `sql.execute`'s end with it.
        withValueFreeSpan(`UserStore.${operation}`)
      )

    // Django's permissions come from its models: a grant does not make one unless asked to.
    const registersOnGrant = !django || djangoOptions(options).createMissingPermissions === true
    const existingPermission = (p: { readonly perm: string }) =>
      Effect.flatMap(
        permissionId(p.perm),
        Option.match({
          onNone: () => Effect.fail(new UserStore.PermissionNotFound({ permission: p.perm })),
          onSome: (row) => Effect.succeed(row.id)
        })
      )

    // grantPermission, revokePermission, grantGroupPermission, revokeGroupPermission: the
    // permission is checked first, then the owner, as Django's `user_permissions.add` would.
    const onPermission = <E, A, E2>(
      operation: string,
      owner: Effect.Effect<number, E | SqlError | ParseResult.ParseError>,
      rawPerm: string,
      change: (p: internal.ParsedPermission, ownerId: number) => Effect.Effect<A, E2>
    ) =>
      run(
        operation,
        Effect.gen(function*() {
          const p = yield* internal.permission(rawPerm)
          return yield* change(p, yield* owner)
        })
      )
    const grant = (l: Rows.Link) => (p: internal.ParsedPermission, ownerId: number) =>
      Effect.flatMap(registersOnGrant ? ensurePermission(p) : existingPermission(p), (id) => Effect.asVoid(link(l, ownerId, id)))
    const revoke = (l: Rows.Link) => (p: internal.ParsedPermission, ownerId: number) =>
      Effect.asVoid(unlink(l, ownerId, permissionIds(p)))

    // On a model logging in by email the name is the email: another one given beside it is refused.
    const newUser = (raw: unknown): Effect.Effect<internal.NewUser, UserStore.InvalidInput> =>
      Effect.flatMap(internal.createUser(raw), (u) =>
        usernameField !== "email"
          ? Effect.succeed(u)
          : u.email === "" || u.email === u.username || u.email === UserStore.normalizeEmail(u.username)
          ? Effect.succeed({ ...u, email: u.username })
          : Effect.fail(
            new UserStore.InvalidInput({
              field: "email",
              message: "is the username on these tables (django.usernameField \"email\"): leave it out or give the username"
            })
          ))

    const service: UserStore.Service = {
      // Django looks names up exactly (`get_by_natural_key`); effect-auth's own tables hold only
      // NFKC-normalised names, so there the lookup normalises too.
      findByUsername: (raw) =>
        run("findByUsername", Effect.flatMap(django ? internal.exactUsername(raw) : internal.username(raw), userByName)),
      findById: (raw) => run("findById", ifUser(raw, Option.none<UserStore.StoredUser>(), userById)),
      create: (raw) =>
        run(
          "create",
          Effect.flatMap(newUser(raw), (u) =>
            insertUser(u).pipe(
              Effect.catchIf(Rows.isUniqueViolation, () => Effect.fail(new UserStore.UserAlreadyExists({ username: u.username }))),
              Effect.flatMap(Rows.decodeIds),
              Effect.flatMap((rows) =>
                rows[0] === undefined
                  ? Effect.dieMessage("INSERT ... RETURNING id returned no row")
                  : Effect.succeed<UserStore.StoredUser>({
                    id: String(rows[0].id),
                    username: u.username,
                    passwordHash: Redacted.make(u.passwordHash),
                    email: u.email,
                    firstName: u.firstName,
                    lastName: u.lastName,
                    isActive: u.isActive,
                    isStaff: u.isStaff,
                    isSuperuser: u.isSuperuser,
                    dateJoined: u.dateJoined,
                    lastLogin: Option.none()
                  })
              )
            ))
        ),
      setPassword: (rawId, rawHash) =>
        run(
          "setPassword",
          Effect.flatMap(internal.passwordHash(rawHash), (hash) => update(rawId, [sql`password = ${hash}`]))
        ),
      upgradePasswordHash: (rawId, hashes) =>
        run(
          "upgradePasswordHash",
          Effect.gen(function*() {
            const { from, to } = yield* internal.hashChange(hashes)
            return yield* ifUser(rawId, false, (id) =>
              Effect.map(
                Effect.flatMap(
                  sql`UPDATE ${T.user} SET password = ${to} WHERE id = ${userIdParam(id)} AND password = ${from} RETURNING id`,
                  Rows.decodeIds
                ),
                (rows) => rows.length > 0
              ))
          })
        ),
      setFlags: (rawId, rawFlags) =>
        run(
          "setFlags",
          Effect.flatMap(internal.flags(rawFlags), (flags) =>
            update(rawId, [
              ...(flags.isActive === undefined ? [] : [sql`is_active = ${bool(flags.isActive)}`]),
              ...(flags.isStaff === undefined ? [] : [sql`is_staff = ${bool(flags.isStaff)}`]),
              ...(flags.isSuperuser === undefined ? [] : [sql`is_superuser = ${bool(flags.isSuperuser)}`])
            ]))
        ),
      updateProfile: (rawId, rawProfile) =>
        run(
          "updateProfile",
          Effect.flatMap(internal.profile(rawProfile), (profile) =>
            update(rawId, [
              ...(profile.email === undefined ? [] : [sql`email = ${profile.email}`]),
              ...(profile.firstName === undefined ? [] : [sql`first_name = ${profile.firstName}`]),
              ...(profile.lastName === undefined ? [] : [sql`last_name = ${profile.lastName}`])
            ]))
        ),
      setLastLogin: (rawId, rawDate) =>
        run(
          "setLastLogin",
          Effect.flatMap(internal.date(rawDate), (date) => update(rawId, [sql`last_login = ${time(date)}`]))
        ),
      createGroup: (raw) =>
        run(
          "createGroup",
          Effect.flatMap(internal.groupName(raw), (name) =>
            Effect.map(ensureGroup(name), (id): UserStore.Group => ({ id: String(id), name })))
        ),
      addToGroup: (rawId, rawGroup) =>
        run(
          "addToGroup",
          Effect.gen(function*() {
            const userId = yield* existing(rawId)
            yield* link(links.userGroups, userId, yield* existingGroup(rawGroup))
          })
        ),
      removeFromGroup: (rawId, rawGroup) =>
        run(
          "removeFromGroup",
          Effect.gen(function*() {
            const name = yield* internal.groupName(rawGroup)
            const userId = yield* existing(rawId)
            yield* unlink(links.userGroups, userId, sql`SELECT id FROM ${T.group} WHERE name = ${name}`)
          })
        ),
      setGroups: (rawId, rawNames) =>
        run(
          "setGroups",
          Effect.gen(function*() {
            const names = internal.sortNames(new Set(yield* internal.groupNamesOf(rawNames)))
            yield* SqlTables.withTransaction(
              sql,
              Effect.gen(function*() {
                const userId = yield* existing(rawId)
                const ids: Array<number> = []
                // Sorted, so concurrent mirrors lock the group rows in one order.
                for (const name of names) ids.push(yield* ensureGroup(name))
                yield* ids.length === 0
                  ? sql`DELETE FROM ${sql(t.userGroups)} WHERE ${sql(userColumn)} = ${userId}`
                  : sql`DELETE FROM ${sql(t.userGroups)} WHERE ${sql(userColumn)} = ${userId} AND group_id NOT IN ${sql.in(ids)}`
                for (const groupId of ids) yield* link(links.userGroups, userId, groupId)
              })
            )
          })
        ),
      groupsOf: (rawId) =>
        run(
          "groupsOf",
          ifUser(rawId, [] as ReadonlyArray<string>, (id) =>
            Effect.map(groupNames(id), (rows) => internal.sortNames(rows.map((row) => row.name))))
        ),
      createPermission: (rawPerm, rawName) =>
        run(
          "createPermission",
          Effect.gen(function*() {
            const p = yield* internal.permission(rawPerm)
            const name = rawName === undefined ? undefined : yield* internal.permissionName(rawName)
            yield* ensurePermission(p, name)
          })
        ),
      permissions: () => run("permissions", permSet(sql`SELECT p.app_label, p.codename FROM ${T.permission} p`)),
      grantPermission: (rawId, rawPerm) =>
        onPermission("grantPermission", existing(rawId), rawPerm, grant(links.userPermissions)),
      revokePermission: (rawId, rawPerm) =>
        onPermission("revokePermission", existing(rawId), rawPerm, revoke(links.userPermissions)),
      grantGroupPermission: (rawGroup, rawPerm) =>
        onPermission("grantGroupPermission", existingGroup(rawGroup), rawPerm, grant(links.groupPermissions)),
      revokeGroupPermission: (rawGroup, rawPerm) =>
        onPermission("revokeGroupPermission", existingGroup(rawGroup), rawPerm, revoke(links.groupPermissions)),
      userPermissions: (rawId) =>
        run(
          "userPermissions",
          ifUser(rawId, new Set<string>() as ReadonlySet<string>, (id) =>
            permSet(sql`SELECT p.app_label, p.codename FROM ${T.permission} p
              JOIN ${sql(t.userPermissions)} up ON up.permission_id = p.id WHERE up.${sql(userColumn)} = ${userIdParam(id)}`))
        ),
      groupPermissions: (rawId) =>
        run(
          "groupPermissions",
          ifUser(rawId, new Set<string>() as ReadonlySet<string>, (id) =>
            permSet(sql`SELECT DISTINCT p.app_label, p.codename FROM ${T.permission} p
              JOIN ${sql(t.groupPermissions)} gp ON gp.permission_id = p.id
              JOIN ${sql(t.userGroups)} ug ON ug.group_id = gp.group_id
              WHERE ug.${sql(userColumn)} = ${userIdParam(id)}`))
        ),
      permissionsOfGroup: (rawName) =>
        run(
          "permissionsOfGroup",
          Effect.flatMap(internal.groupName(rawName), (name) =>
            permSet(sql`SELECT p.app_label, p.codename FROM ${T.permission} p
              JOIN ${sql(t.groupPermissions)} gp ON gp.permission_id = p.id
              JOIN ${T.group} g ON g.id = gp.group_id WHERE g.name = ${name}`))
        ),
      withPerm: (rawPerm, rawOptions = {}) =>
        run(
          "withPerm",
          Effect.gen(function*() {
            const p = yield* internal.permission(rawPerm)
            const options = yield* internal.withPermOptions(rawOptions)
            const isActive = options.isActive === undefined ? true : options.isActive
            const holders = [
              sql`u.id IN (SELECT up.${sql(userColumn)} FROM ${sql(t.userPermissions)} up
                WHERE up.permission_id IN (${permissionIds(p)}))`,
              sql`u.id IN (SELECT ug.${sql(userColumn)} FROM ${sql(t.userGroups)} ug
                JOIN ${sql(t.groupPermissions)} gp ON gp.group_id = ug.group_id
                WHERE gp.permission_id IN (${permissionIds(p)}))`,
              ...(options.includeSuperusers ?? true ? [sql`u.is_superuser = ${bool(true)}`] : [])
            ]
            return yield* selectUsers(
              isActive === null ? sql.or(holders) : sql.and([sql.or(holders), sql`u.is_active = ${bool(isActive)}`])
            )
          })
        ),
      list: () => run("list", selectUsers(sql`1 = 1`)),
      // Django's `user.delete()`: the memberships and direct permissions go with the row. They are
      // deleted here rather than left to the tables' ON DELETE CASCADE, which SQLite enforces only
      // with `PRAGMA foreign_keys = ON` and Django's own tables do not have (the ORM cascades). A
      // row something else still points at (Django's admin log, on PostgreSQL) stays, and the
      // database's refusal is a UserStoreError. Ids are never reused: AUTOINCREMENT on SQLite (as
      // Django's tables), an identity column on PostgreSQL.
      delete: (rawId) =>
        run(
          "delete",
          ifUser(rawId, false, (id) =>
            SqlTables.withTransaction(
              sql,
              Effect.gen(function*() {
                yield* sql`DELETE FROM ${sql(t.userGroups)} WHERE ${sql(userColumn)} = ${userIdParam(id)}`
                yield* sql`DELETE FROM ${sql(t.userPermissions)} WHERE ${sql(userColumn)} = ${userIdParam(id)}`
                const rows = yield* Effect.flatMap(
                  sql`DELETE FROM ${T.user} WHERE id = ${userIdParam(id)} RETURNING id`,
                  Rows.decodeIds
                )
                return rows.length > 0
              })
            ))
        ),
      // Every statement above runs on `sql`: `Provisioning` writes a new user and its binding in
      // one transaction when the binding store runs on it too.
      sqlClient: sql
    }
    return service
  })

/**
 * The store on the `SqlClient` in context; runs the migrations first unless `migrate: false`.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted } from "effect"
 * import { SqlUserStore } from "effect-auth"
 *
 * // share one pool with the rest of the app
 * const SqlLive = PgClient.layer({ url: Redacted.make("postgres://app@db/app") })
 * const UsersLive = SqlUserStore.layer().pipe(Layer.provideMerge(SqlLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<UserStore.UserStore, AuthConfigError | UserStore.UserStoreError, SqlClient.SqlClient> =>
  Layer.effect(
    UserStore.UserStore,
    Effect.zipRight(
      options.django ? checkDjangoTables(options) : options.migrate === false ? Effect.void : migrate(options),
      make(options)
    )
  )

const importFailed = (module: string) => (cause: unknown) =>
  new UserStore.UserStoreError({ operation: `import ${module} (is it installed?)`, cause })

// The store, migrated, on the client of a driver imported only when the layer is built; a driver
// that is missing or a database that cannot be reached is a UserStoreError.
const layerOnDriver = <Driver>(
  options: LayerOptions,
  module: string,
  load: () => Promise<Driver>,
  client: (driver: Driver) => Layer.Layer<SqlClient.SqlClient, unknown>
): Layer.Layer<UserStore.UserStore | SqlClient.SqlClient, AuthConfigError | UserStore.UserStoreError> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.tryPromise({ try: load, catch: importFailed(module) }),
      (driver) => layer(options).pipe(Layer.provideMerge(connect(client(driver))))
    )
  )

// Drivers report some connection problems as defects (better-sqlite3 throws when the file cannot
// be opened): only while the driver's client is built is any failure a typed "connect" error.
// Defects in the store itself (migrations, `make`) stay defects.
const connect = (
  client: Layer.Layer<SqlClient.SqlClient, unknown>
): Layer.Layer<SqlClient.SqlClient, UserStore.UserStoreError> =>
  Layer.catchAllCause(client, (cause) =>
    Cause.isInterruptedOnly(cause)
      ? Layer.failCause(cause as Cause.Cause<never>)
      : Layer.fail(storeError("connect")(Option.getOrElse(Cause.failureOption(cause), () => Cause.squash(cause)))))

/**
 * The store on SQLite through `@effect/sql-sqlite-node` (imported only when this layer is
 * built), migrated. Also provides the `SqlClient`, so other modules can share the database.
 *
 * @example
 * ```ts
 * import { SqlUserStore } from "effect-auth"
 *
 * const UsersLive = SqlUserStore.layerSqlite({ filename: "./data/users.db" })
 * const TestUsers = SqlUserStore.layerSqlite({ filename: ":memory:" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSqlite = (
  options: SqliteOptions
): Layer.Layer<UserStore.UserStore | SqlClient.SqlClient, AuthConfigError | UserStore.UserStoreError> =>
  layerOnDriver(options, "@effect/sql-sqlite-node", () => import("@effect/sql-sqlite-node/SqliteClient"), (Sqlite) =>
    Sqlite.layer({
      filename: options.filename,
      // A Django site's file keeps the journal mode Django gave it unless WAL is asked for.
      ...(options.disableWAL === undefined
        ? options.django ? { disableWAL: true } : {}
        : { disableWAL: options.disableWAL })
    }).pipe(
      // better-sqlite3 waits for a lock synchronously (5 s by default), freezing the event loop;
      // the stores wait between short tries instead (`busyTimeout`).
      Layer.tap((context) =>
        Context.get(context, SqlClient.SqlClient).unsafe(`PRAGMA busy_timeout = ${SqlTables.sqliteBusySlice}`)
      )
    ))

/**
 * The store on PostgreSQL through `@effect/sql-pg` (imported only when this layer is built),
 * migrated. Also provides the `SqlClient`. A server that cannot be reached when the layer is
 * built is a `UserStoreError`.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { SqlUserStore } from "effect-auth"
 *
 * const UsersLive = SqlUserStore.layerPg({
 *   url: Redacted.make("postgres://app:secret@db.internal:5432/app"),
 *   maxConnections: 20
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPg = (
  options: PgOptions
): Layer.Layer<UserStore.UserStore | SqlClient.SqlClient, AuthConfigError | UserStore.UserStoreError> =>
  layerOnDriver(options, "@effect/sql-pg", () => import("@effect/sql-pg/PgClient"), (Pg) =>
    Pg.layer({
      url: Redacted.isRedacted(options.url) ? options.url : Redacted.make(options.url),
      ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
      ...(options.connectTimeout === undefined ? {} : { connectTimeout: options.connectTimeout }),
      ...(options.applicationName === undefined ? {} : { applicationName: options.applicationName }),
      ...(options.ssl === undefined ? {} : { ssl: options.ssl })
    }))

/**
 * {@link layerSqlite} with its options read from `Config`.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { SqlUserStore } from "effect-auth"
 *
 * const UsersLive = SqlUserStore.layerSqliteConfig({
 *   filename: Config.string("USERS_DB").pipe(Config.withDefault("./users.db"))
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSqliteConfig = (
  config: Config.Config.Wrap<SqliteOptions>
): Layer.Layer<
  UserStore.UserStore | SqlClient.SqlClient,
  ConfigError.ConfigError | AuthConfigError | UserStore.UserStoreError
> => Layer.unwrapEffect(Effect.map(Config.unwrap(config), layerSqlite))

/**
 * {@link layerPg} with its options read from `Config`; read the URL with `Config.redacted`.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { SqlUserStore } from "effect-auth"
 *
 * const UsersLive = SqlUserStore.layerPgConfig({
 *   url: Config.redacted("DATABASE_URL"),
 *   maxConnections: Config.integer("DATABASE_POOL").pipe(Config.withDefault(10))
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPgConfig = (
  config: Config.Config.Wrap<PgOptions>
): Layer.Layer<
  UserStore.UserStore | SqlClient.SqlClient,
  ConfigError.ConfigError | AuthConfigError | UserStore.UserStoreError
> => Layer.unwrapEffect(Effect.map(Config.unwrap(config), layerPg))
