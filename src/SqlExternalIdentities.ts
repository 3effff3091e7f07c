/**
 * `ExternalIdentities` on `@effect/sql`: SQLite or PostgreSQL, one table
 * (`auth_external_identity` by default) with the primary key `(provider, subject)` and a unique
 * `(provider, user_id)`, created by the `Migrator` with its own bookkeeping table
 * `effect_<prefix>external_identity_migrations`. A bind is one `INSERT … ON CONFLICT DO NOTHING`,
 * so of concurrent binds of one subject (or of one user), on any number of app instances, exactly
 * one succeeds and none overwrites. Any database failure, or no answer within `timeout`, is an
 * `ExternalIdentitiesError` (a `TransportError` of the backend, HTTP 503); so is input no engine
 * holds alike, refused before the database is asked (`ExternalIdentities.make`). On the client of
 * a `SqlUserStore` (as below), `Provisioning` writes a new user and its binding in one
 * transaction.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SqlExternalIdentities, SqlUserStore } from "effect-auth"
 *
 * const IdentitiesLive = SqlExternalIdentities.layer().pipe(
 *   Layer.provide(SqlUserStore.layerSqlite({ filename: ":memory:" }))
 * )
 * ```
 *
 * @since 0.3.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Duration from "effect/Duration"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { AuthConfigError } from "./AuthError.js"
import * as ExternalIdentities from "./ExternalIdentities.js"
import * as SqlTables from "./internal/sqlTables.js"

/**
 * Where the table lives, and how long one operation may take.
 *
 * @example
 * ```ts
 * import type { SqlExternalIdentities } from "effect-auth"
 *
 * const options: SqlExternalIdentities.Options = { tablePrefix: "shop_" } // shop_external_identity
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** Prefix of the table: `[a-z_][a-z0-9_]*`, at most 30 characters. Default: `"auth_"`. */
  readonly tablePrefix?: string | undefined
  /** The Migrator's bookkeeping table. Default: `effect_<tablePrefix>external_identity_migrations`. */
  readonly migrationsTable?: string | undefined
  /** How long one store operation may take. Default: 5 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * The resolved table names.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlExternalIdentities } from "effect-auth"
 *
 * const t: SqlExternalIdentities.Tables = Effect.runSync(SqlExternalIdentities.tables())
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface Tables {
  readonly identity: string
  readonly migrations: string
}

/**
 * Resolves and checks the table names; a bad prefix is an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlExternalIdentities } from "effect-auth"
 *
 * Effect.runSync(SqlExternalIdentities.tables()).identity // "auth_external_identity"
 * ```
 *
 * @since 0.3.0
 * @category utils
 */
export const tables = (options: Options = {}): Effect.Effect<Tables, AuthConfigError> =>
  SqlTables.resolve("SqlExternalIdentities", "external_identity", options, (prefix) => ({
    identity: `${prefix}external_identity`
  }))

const createTable = (t: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlTables.client
    yield* sql`CREATE TABLE ${sql(t.identity)} (
      provider varchar(255) NOT NULL,
      subject varchar(255) NOT NULL,
      user_id varchar(255) NOT NULL,
      PRIMARY KEY (provider, subject),
      UNIQUE (provider, user_id)
    )`
  })

/**
 * The store's migrations, for apps that run every module's migrations through one `Migrator`
 * (then build the layer with `migrate: false`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlExternalIdentities } from "effect-auth"
 *
 * const names = Effect.map(SqlExternalIdentities.tables(), (t) => Object.keys(SqlExternalIdentities.migrations(t)))
 * ```
 *
 * @since 0.3.0
 * @category migrations
 */
export const migrations = (t: Tables): Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> => ({
  "1_create_external_identity_table": createTable(t),
  "2_add_bound_at": addBoundAt(t)
})

// When each binding was made (ms since the epoch), for `boundAt`; none for the rows before.
const addBoundAt = (t: Tables) =>
  Effect.flatMap(SqlTables.client, (sql) => sql`ALTER TABLE ${sql(t.identity)} ADD COLUMN bound_at bigint`)

const storeError = (operation: string) => (cause: unknown) =>
  new ExternalIdentities.ExternalIdentitiesError({ operation, message: SqlTables.oneLine(cause) })

/**
 * Runs the store's migrations with its own migrations table.
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Effect } from "effect"
 * import { SqlExternalIdentities } from "effect-auth"
 *
 * const program = SqlExternalIdentities.migrate().pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" })))
 * ```
 *
 * @since 0.3.0
 * @category migrations
 */
export const migrate = (
  options: Options = {}
): Effect.Effect<void, AuthConfigError | ExternalIdentities.ExternalIdentitiesError, SqlClient.SqlClient> =>
  Effect.flatMap(tables(options), (t) => SqlTables.migrate(migrations(t), t.migrations, storeError("migrate")))

// A lookup by one key answers one column, selected `AS value`: its first row's, if any.
const decodeValues = Schema.decodeUnknown(Schema.Array(Schema.Struct({ value: Schema.String })))
const firstValue = <E, R>(query: Effect.Effect<ReadonlyArray<unknown>, E, R>) =>
  Effect.map(Effect.flatMap(query, decodeValues), (rows) => Option.map(Option.fromNullable(rows[0]), (row) => row.value))

/**
 * Builds the store on the `SqlClient` in context; it does not migrate (see {@link layer}).
 *
 * @example
 * ```ts
 * import { SqlExternalIdentities } from "effect-auth"
 *
 * const store = SqlExternalIdentities.make({ timeout: "2 seconds" })
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<ExternalIdentities.Service, AuthConfigError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const t = yield* tables(options)
    const sql = yield* SqlTables.client
    const identity = sql(t.identity)
    const run = yield* SqlTables.runner("ExternalIdentities", options.timeout, storeError)

    // `ExternalIdentities.make` checks every call's input before these run
    return ExternalIdentities.make({
      // Every statement below runs on `sql`: `Provisioning` writes a new user and its binding in
      // one transaction when the user store runs on it too.
      sqlClient: sql,
      find: (provider, subject) =>
        run(
          "find",
          firstValue(sql`SELECT user_id AS value FROM ${identity} WHERE provider = ${provider} AND subject = ${subject}`)
        ),
      subjectOf: (provider, userId) =>
        run(
          "subjectOf",
          firstValue(sql`SELECT subject AS value FROM ${identity} WHERE provider = ${provider} AND user_id = ${userId}`)
        ),
      // One statement: a conflict on either key (the subject bound, or the user bound to another
      // subject) inserts nothing and returns no row, whatever ran in between.
      bind: (provider, subject, userId) =>
        run(
          "bind",
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.map(
              sql`INSERT INTO ${identity} (provider, subject, user_id, bound_at) VALUES (${provider}, ${subject}, ${userId}, ${now})
                ON CONFLICT DO NOTHING
                RETURNING provider`,
              (rows) => rows.length > 0
            ))
        ),
      boundAt: (provider, subject) =>
        run(
          "boundAt",
          Effect.map(
            sql`SELECT bound_at AS value FROM ${identity} WHERE provider = ${provider} AND subject = ${subject}`,
            // (PostgreSQL's bigint arrives as text, or as a bigint where the app's client says so)
            (rows) => Option.flatMap(Option.fromNullable(rows[0] as { readonly value?: unknown } | undefined), (row) => {
              const at = typeof row.value === "string" || typeof row.value === "bigint" ? Number(row.value) : row.value
              return typeof at === "number" && Number.isSafeInteger(at) ? Option.some(at) : Option.none()
            })
          )
        ),
      unbind: (provider, userId) =>
        run(
          "unbind",
          Effect.map(
            sql`DELETE FROM ${identity} WHERE provider = ${provider} AND user_id = ${userId} RETURNING provider`,
            (rows) => rows.length > 0
          )
        )
    })
  })

/**
 * The store on the `SqlClient` in context, migrated unless `migrate: false`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SqlExternalIdentities, SqlUserStore } from "effect-auth"
 *
 * const IdentitiesLive = SqlExternalIdentities.layer({ tablePrefix: "shop_" }).pipe(
 *   Layer.provide(SqlUserStore.layerPg({ url: "postgres://app@db/app" }))
 * )
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (
  options: Options & { readonly migrate?: boolean | undefined } = {}
): Layer.Layer<
  ExternalIdentities.ExternalIdentities,
  AuthConfigError | ExternalIdentities.ExternalIdentitiesError,
  SqlClient.SqlClient
> =>
  Layer.effect(
    ExternalIdentities.ExternalIdentities,
    Effect.zipRight(options.migrate === false ? Effect.void : migrate(options), make(options))
  )
