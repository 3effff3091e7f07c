/**
 * A `TotpStore` on `@effect/sql`: SQLite or PostgreSQL, two tables (`auth_totp_device`,
 * `auth_totp_recovery_code` by default), created by the `Migrator` with their own bookkeeping
 * table `effect_<prefix>totp_migrations`. Using a time step is one conditional `UPDATE` and using a
 * recovery code one `DELETE … RETURNING`, so each succeeds once under any concurrency; enrolling
 * (an upsert that keeps a confirmed device), confirming and using a step (on the secret the code
 * was checked against) and counting a failed attempt (a compare-and-set) are one statement each
 * too. Any
 * database failure, or no answer within `timeout`, is a `TotpStoreError` (a `TransportError` of
 * the backend, HTTP 503); so is input no engine holds alike (a step that is no non-negative
 * integer, a user id that is none), refused before the database is asked, as the memory store
 * refuses it (`TotpStore.make`).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SqlTotpStore, SqlUserStore } from "effect-auth"
 *
 * const TotpStoreLive = SqlTotpStore.layer().pipe(Layer.provide(SqlUserStore.layerSqlite({ filename: ":memory:" })))
 * ```
 *
 * @since 0.2.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { AuthConfigError } from "./AuthError.js"
import * as SqlTables from "./internal/sqlTables.js"
import * as TotpStore from "./TotpStore.js"

/**
 * Where the tables live, and how long one operation may take.
 *
 * @example
 * ```ts
 * import type { SqlTotpStore } from "effect-auth"
 *
 * const options: SqlTotpStore.Options = { tablePrefix: "shop_" } // shop_totp_device, shop_totp_recovery_code
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Prefix of the tables: `[a-z_][a-z0-9_]*`, at most 30 characters. Default: `"auth_"`. */
  readonly tablePrefix?: string | undefined
  /** The Migrator's bookkeeping table. Default: `effect_<tablePrefix>totp_migrations`. */
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
 * import { SqlTotpStore } from "effect-auth"
 *
 * const t: SqlTotpStore.Tables = Effect.runSync(SqlTotpStore.tables())
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Tables {
  readonly device: string
  readonly recoveryCode: string
  readonly migrations: string
}

/**
 * Resolves and checks the table names; a bad prefix is an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlTotpStore } from "effect-auth"
 *
 * Effect.runSync(SqlTotpStore.tables()).device // "auth_totp_device"
 * ```
 *
 * @since 0.2.0
 * @category utils
 */
export const tables = (options: Options = {}): Effect.Effect<Tables, AuthConfigError> =>
  SqlTables.resolve("SqlTotpStore", "totp", options, (prefix) => ({
    device: `${prefix}totp_device`,
    recoveryCode: `${prefix}totp_recovery_code`
  }))

const createTables = (t: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlTables.client
    yield* sql`CREATE TABLE ${sql(t.device)} (
      user_id varchar(255) NOT NULL PRIMARY KEY,
      secret varchar(255) NOT NULL,
      confirmed smallint NOT NULL,
      last_step bigint NOT NULL
    )`
    yield* sql`CREATE TABLE ${sql(t.recoveryCode)} (
      user_id varchar(255) NOT NULL,
      code_hash varchar(64) NOT NULL,
      PRIMARY KEY (user_id, code_hash)
    )`
  })

// The throttle (django-otp's throttling_failure_count and _timestamp): devices enrolled before it
// start with no failures.
const addThrottle = (t: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlTables.client
    yield* sql`ALTER TABLE ${sql(t.device)} ADD COLUMN failures integer NOT NULL DEFAULT 0`
    yield* sql`ALTER TABLE ${sql(t.device)} ADD COLUMN failed_at bigint NOT NULL DEFAULT 0`
  })

// The code parameters a device was enrolled with (`TotpStore.Device.digits`): NULL for devices
// enrolled before, to which the backend's options apply as they did.
const addCodeParameters = (t: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlTables.client
    yield* sql`ALTER TABLE ${sql(t.device)} ADD COLUMN digits smallint`
    yield* sql`ALTER TABLE ${sql(t.device)} ADD COLUMN period integer`
    yield* sql`ALTER TABLE ${sql(t.device)} ADD COLUMN algorithm varchar(6)`
  })

// How far the user's app runs from the server's clock, in steps (`TotpStore.Device.drift`): 0 for
// devices enrolled before, as for new ones.
const addDrift = (t: Tables) =>
  Effect.flatMap(SqlTables.client, (sql) =>
    sql`ALTER TABLE ${sql(t.device)} ADD COLUMN drift integer NOT NULL DEFAULT 0`)

/**
 * The store's migrations, for apps that run every module's migrations through one `Migrator`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlTotpStore } from "effect-auth"
 *
 * const names = Effect.map(SqlTotpStore.tables(), (t) => Object.keys(SqlTotpStore.migrations(t)))
 * ```
 *
 * @since 0.2.0
 * @category migrations
 */
export const migrations = (t: Tables): Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> => ({
  "1_create_totp_tables": createTables(t),
  "2_totp_throttle": addThrottle(t),
  "3_totp_code_parameters": addCodeParameters(t),
  "4_totp_drift": addDrift(t)
})

const storeError = (operation: string) => (cause: unknown) =>
  new TotpStore.TotpStoreError({ operation, message: SqlTables.oneLine(cause) })

/**
 * Runs the store's migrations with its own migrations table.
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Effect } from "effect"
 * import { SqlTotpStore } from "effect-auth"
 *
 * const program = SqlTotpStore.migrate().pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" })))
 * ```
 *
 * @since 0.2.0
 * @category migrations
 */
export const migrate = (
  options: Options = {}
): Effect.Effect<void, AuthConfigError | TotpStore.TotpStoreError, SqlClient.SqlClient> =>
  Effect.flatMap(tables(options), (t) => SqlTables.migrate(migrations(t), t.migrations, storeError("migrate")))

const decodeDevices = Schema.decodeUnknown(
  Schema.Array(Schema.Struct({
    user_id: Schema.String,
    secret: Schema.String,
    confirmed: SqlTables.Integer,
    last_step: SqlTables.Integer,
    failures: SqlTables.Integer,
    failed_at: SqlTables.Integer,
    // the bounds a write is held to (TotpStore.make): a row out of them is garbage, not a device
    digits: Schema.NullOr(SqlTables.Integer.pipe(Schema.between(6, 8))),
    period: Schema.NullOr(SqlTables.Integer.pipe(Schema.between(1, 2_147_483_647))),
    algorithm: Schema.NullOr(Schema.Literal("SHA1", "SHA256", "SHA512")),
    drift: SqlTables.Integer.pipe(Schema.between(-2_147_483_647, 2_147_483_647))
  }))
)
const decodeCount = Schema.decodeUnknown(Schema.Array(Schema.Struct({ n: SqlTables.Integer })))

/**
 * Builds the store on the `SqlClient` in context; it does not migrate (see {@link layer}).
 *
 * @example
 * ```ts
 * import { SqlTotpStore } from "effect-auth"
 *
 * const store = SqlTotpStore.make({ timeout: "2 seconds" })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<TotpStore.Service, AuthConfigError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const t = yield* tables(options)
    const sql = yield* SqlTables.client
    const device = sql(t.device)
    const codes = sql(t.recoveryCode)
    const run = yield* SqlTables.runner("TotpStore", options.timeout, storeError)
    const changed = (statement: Effect.Effect<ReadonlyArray<unknown>, SqlError>) =>
      Effect.map(statement, (rows) => rows.length > 0)
    // The caller runs it in a transaction: the codes are replaced whole or not at all.
    const replaceCodes = (userId: string, hashes: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        yield* sql`DELETE FROM ${codes} WHERE user_id = ${userId}`
        for (const hash of new Set(hashes)) yield* sql`INSERT INTO ${codes} (user_id, code_hash) VALUES (${userId}, ${hash})`
      })

    // `TotpStore.make` checks every call's input before these run
    return TotpStore.make({
      get: (userId) =>
        run(
          "get",
          Effect.map(
            Effect.flatMap(
              sql`SELECT user_id, secret, confirmed, last_step, failures, failed_at, digits, period, algorithm, drift
                FROM ${device} WHERE user_id = ${userId}`,
              decodeDevices
            ),
            (rows) =>
              Option.map(Option.fromNullable(rows[0]), (row) => ({
                userId: row.user_id,
                secret: Redacted.make(row.secret),
                confirmed: row.confirmed !== 0,
                lastStep: row.last_step,
                failures: row.failures,
                failedAt: row.failed_at,
                ...(row.digits !== null && { digits: row.digits }),
                ...(row.period !== null && { period: row.period }),
                ...(row.algorithm !== null && { algorithm: row.algorithm }),
                ...(row.drift !== 0 && { drift: row.drift })
              }))
          )
        ),
      // One statement: the WHERE of the upsert keeps a confirmed device, whatever ran in between.
      save: ({ algorithm, digits, period, secret, userId }) =>
        run(
          "save",
          changed(
            sql`INSERT INTO ${device} (user_id, secret, confirmed, last_step, failures, failed_at, digits, period, algorithm, drift)
              VALUES (${userId}, ${Redacted.value(secret)}, 0, -1, 0, 0, ${digits ?? null}, ${period ?? null}, ${algorithm ?? null}, 0)
              ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, confirmed = 0, last_step = -1, failures = 0,
                failed_at = 0, digits = excluded.digits, period = excluded.period, algorithm = excluded.algorithm, drift = 0
              WHERE ${device}.confirmed = 0
              RETURNING user_id`
          )
        ),
      confirm: (userId, { recoveryCodes, secret, step }) =>
        run(
          "confirm",
          SqlTables.withTransaction(
            sql,
            Effect.tap(
              changed(
                sql`UPDATE ${device} SET confirmed = 1, last_step = ${step}
                  WHERE user_id = ${userId} AND secret = ${Redacted.value(secret)} AND confirmed = 0 AND last_step < ${step}
                  RETURNING user_id`
              ),
              (confirmed) => confirmed ? replaceCodes(userId, recoveryCodes) : Effect.void
            )
          )
        ),
      recordFailure: (userId, seen, now) =>
        run(
          "recordFailure",
          changed(
            sql`UPDATE ${device} SET failures = failures + 1, failed_at = ${now}
              WHERE user_id = ${userId} AND failures = ${seen.failures} AND failed_at = ${seen.failedAt} RETURNING user_id`
          )
        ),
      clearFailures: (userId) =>
        run("clearFailures", Effect.asVoid(sql`UPDATE ${device} SET failures = 0, failed_at = 0 WHERE user_id = ${userId}`)),
      // The drift is written by the statement that uses the step: the code that won the step sets it.
      useStep: (userId, step, secret, drift) =>
        run(
          "useStep",
          changed(
            sql`UPDATE ${device} SET last_step = ${step}, drift = ${drift === undefined ? sql`drift` : drift}
              WHERE user_id = ${userId} AND secret = ${Redacted.value(secret)} AND confirmed = 1 AND last_step < ${step}
              RETURNING user_id`
          )
        ),
      remove: (userId) =>
        run(
          "remove",
          SqlTables.withTransaction(
            sql,
            Effect.zipRight(
              sql`DELETE FROM ${codes} WHERE user_id = ${userId}`,
              changed(sql`DELETE FROM ${device} WHERE user_id = ${userId} RETURNING user_id`)
            )
          )
        ),
      setRecoveryCodes: (userId, hashes) =>
        run("setRecoveryCodes", SqlTables.withTransaction(sql, replaceCodes(userId, hashes))),
      useRecoveryCode: (userId, hash) =>
        run(
          "useRecoveryCode",
          changed(sql`DELETE FROM ${codes} WHERE user_id = ${userId} AND code_hash = ${hash} RETURNING user_id`)
        ),
      recoveryCodesLeft: (userId) =>
        run(
          "recoveryCodesLeft",
          Effect.map(
            Effect.flatMap(sql`SELECT count(*) AS n FROM ${codes} WHERE user_id = ${userId}`, decodeCount),
            (rows) => rows[0]?.n ?? 0
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
 * import { SqlTotpStore, SqlUserStore } from "effect-auth"
 *
 * const TotpStoreLive = SqlTotpStore.layer({ tablePrefix: "shop_" }).pipe(
 *   Layer.provide(SqlUserStore.layerPg({ url: "postgres://app@db/app" }))
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options & { readonly migrate?: boolean | undefined } = {}
): Layer.Layer<TotpStore.TotpStore, AuthConfigError | TotpStore.TotpStoreError, SqlClient.SqlClient> =>
  Layer.effect(
    TotpStore.TotpStore,
    Effect.zipRight(options.migrate === false ? Effect.void : migrate(options), make(options))
  )
