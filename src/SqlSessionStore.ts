/**
 * A `SessionStore` on `@effect/sql`: the same SQLite or PostgreSQL database as the users
 * (`SqlUserStore` provides the `SqlClient`), one table, `auth_session` by default.
 *
 * The table is created by `@effect/sql`'s `Migrator` with its own bookkeeping table,
 * `effect_<prefix>session_migrations` (`effect_auth_session_migrations` by default), so it never
 * collides with the user store's or your app's migrations. Expired rows are invisible at once and
 * removed by `deleteExpired` (`Session.clearExpired`, Django's `clearsessions`): run it from a
 * scheduled job.
 *
 * Any database failure is a `SessionStoreError`, never a defect.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SqlSessionStore, SqlUserStore } from "effect-auth"
 *
 * const Database = SqlUserStore.layerSqlite({ filename: "./app.db" })
 * const SessionsLive = SqlSessionStore.layer().pipe(Layer.provide(Database))
 * ```
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { AuthConfigError } from "./AuthError.js"
import * as SqlTables from "./internal/sqlTables.js"
import * as SessionStore from "./SessionStore.js"
import { safeCause } from "./internal/storeError.js"

/**
 * Where the table lives.
 *
 * @example
 * ```ts
 * import type { SqlSessionStore } from "effect-auth"
 *
 * const options: SqlSessionStore.Options = { tablePrefix: "shop_" } // table shop_session
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Prefix of the table: `[a-z_][a-z0-9_]*`, at most 30 characters. Default: `"auth_"`. */
  readonly tablePrefix?: string | undefined
  /** The Migrator's bookkeeping table. Default: `effect_<tablePrefix>session_migrations`. */
  readonly migrationsTable?: string | undefined
  /**
   * How long one store operation may take before it fails with a store error (a 503 over HTTP):
   * a database whose connections froze must not hang requests. Default: 5 seconds.
   */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * Options of {@link layer}.
 *
 * @example
 * ```ts
 * import type { SqlSessionStore } from "effect-auth"
 *
 * const options: SqlSessionStore.LayerOptions = { tablePrefix: "shop_", migrate: false }
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
 * The table names for a prefix.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlSessionStore } from "effect-auth"
 *
 * const tables: SqlSessionStore.Tables = Effect.runSync(SqlSessionStore.tables({ tablePrefix: "shop_" }))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Tables {
  readonly session: string
  readonly migrations: string
}

/**
 * Resolves and checks the table names; a bad prefix is an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlSessionStore } from "effect-auth"
 *
 * Effect.runSync(SqlSessionStore.tables()).session // "auth_session"
 * Effect.runSync(SqlSessionStore.tables()).migrations // "effect_auth_session_migrations"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const tables = (options: Options = {}): Effect.Effect<Tables, AuthConfigError> =>
  SqlTables.resolve("SqlSessionStore", "session", options, (prefix) => ({ session: `${prefix}session` }))

const createTable = (t: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlTables.client
    const pg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    const millis = sql.literal(pg ? "bigint" : "integer")
    yield* sql`CREATE TABLE ${sql(t.session)} (
      session_key varchar(128) NOT NULL PRIMARY KEY,
      user_id varchar(255) NOT NULL,
      backend_id varchar(255) NOT NULL,
      auth_hash varchar(128) NOT NULL,
      csrf_token varchar(128) NOT NULL,
      created_at ${millis} NOT NULL,
      last_seen_at ${millis} NOT NULL,
      expires_at ${millis} NOT NULL
    )`
    yield* sql`CREATE INDEX ${sql(`${t.session}_expires_at`)} ON ${sql(t.session)} (expires_at)`
  })

// A login reached after a backend that could not answer was passed over (see docs/control.md).
const addDegraded = (t: Tables) =>
  Effect.flatMap(SqlTables.client, (sql) =>
    sql`ALTER TABLE ${sql(t.session)} ADD COLUMN degraded smallint NOT NULL DEFAULT 0`)

// The backend that verified a second factor in the session (`Session.stepUp`, docs/mfa.md).
const addSecondFactor = (t: Tables) =>
  Effect.flatMap(SqlTables.client, (sql) =>
    sql`ALTER TABLE ${sql(t.session)} ADD COLUMN second_factor varchar(255)`)

// The login's choice of cookie (`Session.LoginOptions.expireAtBrowserClose`): 1 ends with the
// browser, 0 lasts, NULL (every row before it) follows the site-wide default, as Django's
// session without `_session_expiry` does.
const addExpireAtBrowserClose = (t: Tables) =>
  Effect.flatMap(SqlTables.client, (sql) =>
    sql`ALTER TABLE ${sql(t.session)} ADD COLUMN expire_at_browser_close smallint`)

// Which device that second factor was verified against (a keyed hash; `Session.stepUp`).
const addSecondFactorDevice = (t: Tables) =>
  Effect.flatMap(SqlTables.client, (sql) =>
    sql`ALTER TABLE ${sql(t.session)} ADD COLUMN second_factor_device varchar(128)`)

/**
 * The store's migrations, for apps that run every module's migrations through one `Migrator`
 * (then build the store with `layer({ migrate: false })`). Keys are `<id>_<name>`.
 *
 * @example
 * ```ts
 * import { Migrator } from "@effect/sql"
 * import { Effect } from "effect"
 * import { SqlSessionStore } from "effect-auth"
 *
 * const migrate = Effect.flatMap(SqlSessionStore.tables(), (tables) =>
 *   Migrator.make({})({ loader: Migrator.fromRecord(SqlSessionStore.migrations(tables)), table: "app_migrations" }))
 * ```
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrations = (
  tables: Tables
): Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> => ({
  "1_create_session_table": createTable(tables),
  "2_add_session_degraded": addDegraded(tables),
  "3_add_session_second_factor": addSecondFactor(tables),
  "4_add_session_expire_at_browser_close": addExpireAtBrowserClose(tables),
  "5_add_session_second_factor_device": addSecondFactorDevice(tables)
})

const storeError = (operation: string) => (cause: unknown) => new SessionStore.SessionStoreError({ operation, cause: safeCause(cause) })

/**
 * Runs the store's migrations with its own migrations table. Failures are a `SessionStoreError`.
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Effect } from "effect"
 * import { SqlSessionStore } from "effect-auth"
 *
 * const program = SqlSessionStore.migrate().pipe(Effect.provide(SqliteClient.layer({ filename: "./app.db" })))
 * ```
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrate = (
  options: Options = {}
): Effect.Effect<void, AuthConfigError | SessionStore.SessionStoreError, SqlClient.SqlClient> =>
  Effect.flatMap(tables(options), (t) => SqlTables.migrate(migrations(t), t.migrations, storeError("migrate")))

const Row = Schema.Struct({
  user_id: Schema.String,
  backend_id: Schema.String,
  auth_hash: Schema.String,
  csrf_token: Schema.String,
  created_at: SqlTables.Integer,
  last_seen_at: SqlTables.Integer,
  expires_at: SqlTables.Integer,
  degraded: SqlTables.Integer,
  second_factor: Schema.NullOr(Schema.String),
  expire_at_browser_close: Schema.NullOr(SqlTables.Integer),
  second_factor_device: Schema.NullOr(Schema.String)
})
// A row that does not decode (another process wrote a column of another type) is no session, as
// a record that does not decode is (`SessionStore.decodeStored`): a store error made its cookie a
// 503 on every request, its logout too, until a login over it.
// A row without the columns, though, is no answer to this store's query (the client is queried
// without the app's name transforms, `SqlTables.client`): a store error, not a session read as gone.
// The columns are looked for only once a row failed: a session's read decodes it once.
const decodeRow = Schema.decodeUnknownEither(Row)
const columns = Object.keys(Row.fields)
const sessionOfRow = (row: unknown): Effect.Effect<Option.Option<typeof Row.Type>, ParseResult.ParseError> => {
  if (row === undefined) return Effect.succeedNone
  const decoded = decodeRow(row)
  if (Either.isRight(decoded)) return Effect.succeedSome(decoded.right)
  const hasColumns = typeof row === "object" && row !== null && columns.every((column) => column in row)
  return hasColumns ? Effect.succeedNone : Effect.fail(decoded.left)
}
// The record's `expireAtBrowserClose` as its column keeps it: absent is NULL.
const browserCloseOf = (r: SessionStore.SessionRecord): number | null =>
  r.expireAtBrowserClose === undefined ? null : r.expireAtBrowserClose ? 1 : 0
const decodeKeys = Schema.decodeUnknown(Schema.Array(Schema.Struct({ session_key: Schema.String })))

/**
 * Builds the store on the `SqlClient` in context. It does not migrate: see {@link layer} and
 * {@link migrate}.
 *
 * @example
 * ```ts
 * import { SqlSessionStore } from "effect-auth"
 *
 * const store = SqlSessionStore.make({ tablePrefix: "shop_" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<SessionStore.Service, AuthConfigError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const t = yield* tables(options)
    const sql = yield* SqlTables.client
    const table = sql(t.session)

    // Every database failure is a SessionStoreError, and so is no answer within the timeout;
    // defects stay defects. A session's row that does not decode is no session (`decodeRow`).
    const run = yield* SqlTables.runner("SessionStore", options.timeout, storeError)

    const count = (statement: Effect.Effect<ReadonlyArray<unknown>, SqlError>) =>
      Effect.map(Effect.flatMap(statement, decodeKeys), (rows) => rows.length)

    const remove = (key: string, now: number) =>
      count(sql`DELETE FROM ${table} WHERE session_key = ${key} AND expires_at > ${now} RETURNING session_key`)

    return SessionStore.make({
      get: (key, now) =>
        run(
          "get",
          Effect.map(
            Effect.flatMap(
              sql`SELECT user_id, backend_id, auth_hash, csrf_token, created_at, last_seen_at, expires_at, degraded,
                second_factor, expire_at_browser_close, second_factor_device FROM ${table} WHERE session_key = ${key} AND expires_at > ${now}`,
              (rows) => sessionOfRow(rows[0])
            ),
            (found) =>
              Option.flatMap(found, (row) =>
                SessionStore.decodeStored({
                  userId: row.user_id,
                  backendId: row.backend_id,
                  authHash: row.auth_hash,
                  csrfToken: row.csrf_token,
                  createdAt: row.created_at,
                  lastSeenAt: row.last_seen_at,
                  expiresAt: row.expires_at,
                  ...(row.degraded !== 0 && { degraded: true }),
                  ...(row.second_factor !== null && { secondFactor: row.second_factor }),
                  ...(row.expire_at_browser_close !== null && { expireAtBrowserClose: row.expire_at_browser_close !== 0 }),
                  ...(row.second_factor_device !== null && { secondFactorDevice: row.second_factor_device })
                }))
          )
        ),
      set: (key, r, now) =>
        run(
          "set",
          r.expiresAt <= now
            ? Effect.asVoid(sql`DELETE FROM ${table} WHERE session_key = ${key}`)
            : Effect.asVoid(
              sql`INSERT INTO ${table}
                (session_key, user_id, backend_id, auth_hash, csrf_token, created_at, last_seen_at, expires_at, degraded,
                  second_factor, expire_at_browser_close, second_factor_device)
                VALUES (${key}, ${r.userId}, ${r.backendId}, ${r.authHash}, ${r.csrfToken}, ${r.createdAt},
                  ${r.lastSeenAt}, ${r.expiresAt}, ${r.degraded === true ? 1 : 0}, ${r.secondFactor ?? null},
                  ${browserCloseOf(r)}, ${r.secondFactorDevice ?? null})
                ON CONFLICT (session_key) DO UPDATE SET
                  user_id = excluded.user_id, backend_id = excluded.backend_id, auth_hash = excluded.auth_hash,
                  csrf_token = excluded.csrf_token, created_at = excluded.created_at,
                  last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at,
                  degraded = excluded.degraded, second_factor = excluded.second_factor,
                  expire_at_browser_close = excluded.expire_at_browser_close,
                  second_factor_device = excluded.second_factor_device`
            )
        ),
      replace: (key, r, now) =>
        run(
          "replace",
          Effect.map(
            r.expiresAt <= now
              ? remove(key, now)
              : count(sql`UPDATE ${table} SET user_id = ${r.userId}, backend_id = ${r.backendId},
                  auth_hash = ${r.authHash}, csrf_token = ${r.csrfToken}, created_at = ${r.createdAt},
                  last_seen_at = ${r.lastSeenAt}, expires_at = ${r.expiresAt}, degraded = ${r.degraded === true ? 1 : 0},
                  second_factor = ${r.secondFactor ?? null}, expire_at_browser_close = ${browserCloseOf(r)}, second_factor_device = ${r.secondFactorDevice ?? null}
                WHERE session_key = ${key} AND expires_at > ${now} RETURNING session_key`),
            (n) => n > 0
          )
        ),
      delete: (key) =>
        run(
          "delete",
          Effect.map(count(sql`DELETE FROM ${table} WHERE session_key = ${key} RETURNING session_key`), (n) => n > 0)
        ),
      deleteExpired: (now) =>
        run("deleteExpired", count(sql`DELETE FROM ${table} WHERE expires_at <= ${now} RETURNING session_key`))
    })
  })

/**
 * The store on the `SqlClient` in context, migrated unless `migrate: false`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SqlSessionStore, SqlUserStore } from "effect-auth"
 *
 * const Database = SqlUserStore.layerPg({ url: "postgres://app@db/app" })
 * const SessionsLive = SqlSessionStore.layer({ tablePrefix: "shop_" }).pipe(Layer.provide(Database))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<SessionStore.SessionStore, AuthConfigError | SessionStore.SessionStoreError, SqlClient.SqlClient> =>
  Layer.effect(
    SessionStore.SessionStore,
    Effect.zipRight(options.migrate === false ? Effect.void : migrate(options), make(options))
  )
