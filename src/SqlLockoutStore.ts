/**
 * The `Lockout` counters on `@effect/sql`: PostgreSQL (shared by every app instance on the same
 * database, as the Redis store is) or SQLite (one host), in one table, `auth_lockout` by default.
 *
 * Every operation on a list of keys is one transaction. On PostgreSQL the keys' rows are created
 * if missing and locked by one upsert each (`INSERT … ON CONFLICT DO UPDATE … RETURNING`), in key
 * order, before anything is counted: two instances attempting the same user at once wait for each
 * other, also while a third deletes the row, so no count is lost and exactly `limit` attempts reach
 * a backend — django-axes' known race, closed. A row made for a key with no record is deleted in
 * the same transaction when nothing is counted there (a refused attempt, a refund), so refused
 * attempts with fresh names add no rows. SQLite serialises writers on the database file.
 *
 * The table is created by `@effect/sql`'s `Migrator` with its own bookkeeping table,
 * `effect_<prefix>lockout_migrations`. Forgotten records are invisible at once and deleted by
 * {@link clearExpired} (run it from a scheduled job). Any database failure, or no answer within
 * `timeout`, is a `LockoutStoreError` (HTTP 503 by default, see `Lockout.Options.onStoreError`).
 *
 * Authenticate outside your own `sql.withTransaction`: `@effect/sql` runs the store's statements
 * on an open transaction's connection, whichever client opened it, so a failure counted inside a
 * transaction of yours that then fails is rolled back with it (see docs/throttling.md, "Stores").
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SqlLockoutStore, SqlUserStore } from "effect-auth"
 *
 * const Database = SqlUserStore.layerPg({ url: "postgres://app@db/app" })
 * const LockoutLive = SqlLockoutStore.layer({ by: "username-or-ip", limit: 5, coolOff: "15 minutes" }).pipe(
 *   Layer.provide(Database)
 * )
 * ```
 *
 * @since 0.2.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type { AuthConfigError } from "./AuthError.js"
import {
  countFailure,
  decideAttempt,
  lapsedLocks,
  liveView,
  type LockoutRecord,
  refundAttempt,
  toEntry
} from "./internal/lockoutRecord.js"
import * as SqlTables from "./internal/sqlTables.js"
import * as Lockout from "./Lockout.js"

/**
 * Where the table lives, and how long one operation may take.
 *
 * @example
 * ```ts
 * import type { SqlLockoutStore } from "effect-auth"
 *
 * const options: SqlLockoutStore.Options = { tablePrefix: "shop_", timeout: "2 seconds" } // table shop_lockout
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Prefix of the table: `[a-z_][a-z0-9_]*`, at most 30 characters. Default: `"auth_"`. */
  readonly tablePrefix?: string | undefined
  /** The Migrator's bookkeeping table. Default: `effect_<tablePrefix>lockout_migrations`. */
  readonly migrationsTable?: string | undefined
  /** How long one store operation may take before it is a `LockoutStoreError`. Default: 5 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * {@link layer}'s options: the table's, the lockout's own (`Lockout.Options`), and whether to
 * migrate when the layer is built.
 *
 * @example
 * ```ts
 * import type { SqlLockoutStore } from "effect-auth"
 *
 * const options: SqlLockoutStore.LayerOptions = { by: "username", limit: 5, migrate: false }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface LayerOptions extends Options, Lockout.Options {
  /** Run the migrations when the layer is built. Default: `true`. */
  readonly migrate?: boolean | undefined
}

/**
 * The resolved table names.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlLockoutStore } from "effect-auth"
 *
 * const tables: SqlLockoutStore.Tables = Effect.runSync(SqlLockoutStore.tables({ tablePrefix: "shop_" }))
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Tables {
  readonly lockout: string
  readonly migrations: string
}

/**
 * Resolves and checks the table names; a bad prefix is an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlLockoutStore } from "effect-auth"
 *
 * Effect.runSync(SqlLockoutStore.tables()).lockout // "auth_lockout"
 * ```
 *
 * @since 0.2.0
 * @category utils
 */
export const tables = (options: Options = {}): Effect.Effect<Tables, AuthConfigError> =>
  SqlTables.resolve("SqlLockoutStore", "lockout", options, (prefix) => ({ lockout: `${prefix}lockout` }))

const createTable = (t: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlTables.client
    const millis = sql.literal(sql.onDialectOrElse({ pg: () => "bigint", orElse: () => "integer" }))
    yield* sql`CREATE TABLE ${sql(t.lockout)} (
      lock_key varchar(400) NOT NULL PRIMARY KEY,
      failures integer NOT NULL,
      last_failure ${millis} NOT NULL,
      locked_until ${millis} NOT NULL,
      lockouts integer NOT NULL,
      expires_at ${millis} NOT NULL
    )`
    yield* sql`CREATE INDEX ${sql(`${t.lockout}_expires_at`)} ON ${sql(t.lockout)} (expires_at)`
  })

// Attempts in flight hold a place each (`Lockout.Store.attempt`) until they settle, or until
// `pending_until` when none does.
const addPending = (t: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlTables.client
    const millis = sql.literal(sql.onDialectOrElse({ pg: () => "bigint", orElse: () => "integer" }))
    yield* sql`ALTER TABLE ${sql(t.lockout)} ADD COLUMN pending integer NOT NULL DEFAULT 0`
    yield* sql`ALTER TABLE ${sql(t.lockout)} ADD COLUMN pending_until ${millis} NOT NULL DEFAULT 0`
  })

// The places in flight are named by when the first of them was taken (`Lockout.Reservation.since`),
// so that the settlement of a place that lapsed (counted as a failure then) leaves the places taken
// since alone.
const addPendingSince = (t: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlTables.client
    const millis = sql.literal(sql.onDialectOrElse({ pg: () => "bigint", orElse: () => "integer" }))
    yield* sql`ALTER TABLE ${sql(t.lockout)} ADD COLUMN pending_since ${millis} NOT NULL DEFAULT 0`
  })

/**
 * The store's migrations, for apps that run every module's migrations through one `Migrator`
 * (then build the layer with `migrate: false`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlLockoutStore } from "effect-auth"
 *
 * const names = Effect.map(SqlLockoutStore.tables(), (t) => Object.keys(SqlLockoutStore.migrations(t)))
 * // ["1_create_lockout_table", "2_add_pending", "3_add_pending_since"]
 * ```
 *
 * @since 0.2.0
 * @category migrations
 */
export const migrations = (
  tables: Tables
): Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> => ({
  "1_create_lockout_table": createTable(tables),
  "2_add_pending": addPending(tables),
  "3_add_pending_since": addPendingSince(tables)
})

// One line, the driver's reason included; lockout keys hold usernames and addresses, no secret.
const storeError = (operation: string) => (cause: unknown) =>
  new Lockout.LockoutStoreError({ operation, message: SqlTables.oneLine(cause) })

/**
 * Runs the store's migrations with its own migrations table. Failures are a `LockoutStoreError`.
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Effect } from "effect"
 * import { SqlLockoutStore } from "effect-auth"
 *
 * const program = SqlLockoutStore.migrate().pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" })))
 * ```
 *
 * @since 0.2.0
 * @category migrations
 */
export const migrate = (
  options: Options = {}
): Effect.Effect<void, AuthConfigError | Lockout.LockoutStoreError, SqlClient.SqlClient> =>
  Effect.flatMap(tables(options), (t) => SqlTables.migrate(migrations(t), t.migrations, storeError("migrate")))

const Row = Schema.Struct({
  lock_key: Schema.String,
  failures: SqlTables.Integer,
  last_failure: SqlTables.Integer,
  locked_until: SqlTables.Integer,
  lockouts: SqlTables.Integer,
  pending: SqlTables.Integer,
  pending_until: SqlTables.Integer,
  pending_since: SqlTables.Integer,
  expires_at: SqlTables.Integer
})
const decodeRows = Schema.decodeUnknown(Schema.Array(Row))
const decodeKeys = Schema.decodeUnknown(Schema.Array(Schema.Struct({ lock_key: Schema.String })))

// A LIKE pattern that matches `text` literally, under `ESCAPE '\'`.
const likeEscape = (text: string): string => text.replace(/[\\%_]/g, (c) => `\\${c}`)

const toRecord = (row: typeof Row.Type): LockoutRecord => ({
  f: row.failures,
  t: row.last_failure,
  u: row.locked_until,
  n: row.lockouts,
  p: row.pending,
  q: row.pending_until,
  g: row.pending_since,
  expiresAt: row.expires_at
})

/**
 * Builds the store on the `SqlClient` in context, for `Lockout.make`. It does not migrate: see
 * {@link layer} and {@link migrate}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Lockout, SqlLockoutStore } from "effect-auth"
 *
 * const lockout = Effect.flatMap(SqlLockoutStore.make(), (store) => Lockout.make(store, { limit: 5 }))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Lockout.Store, AuthConfigError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const t = yield* tables(options)
    const sql = yield* SqlTables.client
    const table = sql(t.lockout)
    const columns = sql.literal("lock_key, failures, last_failure, locked_until, lockouts, pending, pending_until, pending_since, expires_at")
    const run = yield* SqlTables.runner("Lockout", options.timeout, storeError)

    // The keys' live records, their rows locked until the transaction ends (in key order, so two
    // transactions over overlapping keys cannot deadlock). Each row is locked by an upsert that
    // creates a placeholder (expires_at 0) for a key seen for the first time: `ON CONFLICT DO
    // UPDATE` ends with the row inserted or locked, also when another transaction deletes it
    // meanwhile (a refund dropping an empty record, a reset, clearExpired). `INSERT … DO NOTHING`
    // then `SELECT … FOR UPDATE` did not: the SELECT skipped a row deleted while it waited, and the
    // attempt's count was written to no row.
    const lockRows = (keys: ReadonlyArray<string>, now: number) =>
      Effect.gen(function*() {
        const live = new Map<string, LockoutRecord>()
        for (const key of [...new Set(keys)].sort()) {
          const rows = yield* Effect.flatMap(
            sql`INSERT INTO ${table} (lock_key, failures, last_failure, locked_until, lockouts, expires_at)
              VALUES (${key}, 0, 0, 0, 0, 0) ON CONFLICT (lock_key) DO UPDATE SET lock_key = excluded.lock_key
              RETURNING ${columns}`,
            decodeRows
          )
          for (const row of rows) if (row.expires_at > now) live.set(row.lock_key, toRecord(row))
        }
        return live
      })

    // The keys lockRows found with no live record (its placeholders, records past forgetAfter),
    // deleted while this transaction still holds their rows: an operation that writes no record
    // there (a refused attempt, a refund) leaves no row behind, so a spray of fresh names from a
    // locked address does not grow the table until clearExpired.
    const dropDead = (keys: ReadonlyArray<string>, live: ReadonlyMap<string, LockoutRecord>) => {
      const dead = [...new Set(keys)].filter((key) => !live.has(key))
      return dead.length === 0 ? Effect.void : sql`DELETE FROM ${table} WHERE ${sql.in("lock_key", dead)}`
    }

    const write = (key: string, r: LockoutRecord) =>
      sql`UPDATE ${table} SET failures = ${r.f}, last_failure = ${r.t}, locked_until = ${r.u},
        lockouts = ${r.n}, pending = ${r.p}, pending_until = ${r.q}, pending_since = ${r.g}, expires_at = ${r.expiresAt}
        WHERE lock_key = ${key}`

    return {
      attempt: (keys, now, policy) =>
        run(
          "attempt",
          SqlTables.withTransaction(
            sql,
            Effect.gen(function*() {
              const live = yield* lockRows(keys, now)
              const decided = decideAttempt(keys, keys.map((key) => live.get(key)), now, policy)
              if (decided.reservation._tag !== "Allowed") yield* dropDead(keys, live)
              // A refusal writes back the records whose places lapsed, under the rows' locks: the
              // lock a lapse set is found (and answered) by this transaction alone.
              for (const [i, record] of decided.records.entries()) if (record !== undefined) yield* write(keys[i]!, record)
              return decided.reservation
            })
          )
        ),
      fail: (keys, now, policy, since) =>
        run(
          "fail",
          SqlTables.withTransaction(
            sql,
            Effect.gen(function*() {
              const live = yield* lockRows(keys, now)
              const locked: Array<string> = []
              const lapsed: Array<Lockout.LapsedLock> = []
              let until = 0
              for (const [i, key] of keys.entries()) {
                if (keys.indexOf(key) !== i) continue
                lapsed.push(...lapsedLocks([key], [live.get(key)], now, policy))
                const counted = countFailure(live.get(key), now, policy, since?.[i])
                yield* write(key, counted.record)
                if (counted.locked) {
                  locked.push(key)
                  until = Math.max(until, counted.record.u)
                }
              }
              return lapsed.length > 0 ? { locked, until, lapsed } : { locked, until }
            })
          )
        ),
      refund: (keys, now, policy, since) =>
        run(
          "refund",
          SqlTables.withTransaction(
            sql,
            Effect.gen(function*() {
              const live = yield* lockRows(keys, now)
              // Found before the loop below takes emptied records out of `live` (a record whose
              // lapse locked is never emptied: it holds a lock so far).
              const lapsed = lapsedLocks([...live.keys()], [...live.values()], now, policy)
              // A record the refund empties is dead too: dropDead deletes it with the others, in one
              // statement.
              for (const [key, record] of live) {
                const left = refundAttempt(record, now, policy, since?.[keys.indexOf(key)])
                if (left === undefined) live.delete(key)
                else yield* write(key, left)
              }
              yield* dropDead(keys, live)
              return lapsed.length > 0 ? { lapsed } : {}
            })
          )
        ),
      reset: (keys, now, policy) =>
        keys.length === 0
          ? Effect.succeed([])
          : run(
            "reset",
            Effect.map(
              Effect.flatMap(
                sql`DELETE FROM ${table} WHERE ${sql.in("lock_key", [...new Set(keys)])}
                  RETURNING ${columns}`,
                decodeRows
              ),
              (rows) =>
                rows.filter((row) => row.expires_at > now && liveView(toRecord(row), now, policy).u > now).map((row) => row.lock_key)
            )
          ),
      // The exact keys by the primary key; each pair pattern by LIKE (`\\` escapes `%`, `_` and
      // itself; SQLite's LIKE ignores ASCII case, so it may answer more: the caller filters).
      find: (query, now) => {
        const clauses = [
          ...(query.exact.length > 0 ? [sql.in("lock_key", query.exact)] : []),
          ...query.pairs.map((pair) => sql`lock_key LIKE ${`${likeEscape(pair.prefix)}%${likeEscape(pair.suffix)}`} ESCAPE '\\'`)
        ]
        if (clauses.length === 0) return Effect.succeed([])
        return run(
          "find",
          Effect.map(
            Effect.flatMap(sql`SELECT lock_key FROM ${table} WHERE expires_at > ${now} AND ${sql.or(clauses)}`, decodeKeys),
            (rows) => rows.map((row) => row.lock_key)
          )
        )
      },
      list: (now, policy) =>
        run(
          "list",
          Effect.map(
            Effect.flatMap(
              sql`SELECT ${columns} FROM ${table}
                WHERE expires_at > ${now} ORDER BY lock_key`,
              decodeRows
            ),
            (rows) => rows.map((row) => toEntry(row.lock_key, liveView(toRecord(row), now, policy), now))
          )
        )
    }
  })

/**
 * Deletes the records that are forgotten (past `forgetAfter`) as of `now` (milliseconds; default
 * the clock's); answers how many. Run it from a scheduled job.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { SqlLockoutStore } from "effect-auth"
 *
 * const hourly = SqlLockoutStore.clearExpired().pipe(Effect.repeat(Schedule.spaced("1 hour")))
 * ```
 *
 * @since 0.2.0
 * @category utils
 */
export const clearExpired = (
  options: Options & { readonly now?: number | undefined } = {}
): Effect.Effect<number, AuthConfigError | Lockout.LockoutStoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const t = yield* tables(options)
    const sql = yield* SqlTables.client
    const now = options.now ?? (yield* Clock.currentTimeMillis)
    const rows = yield* sql`DELETE FROM ${sql(t.lockout)} WHERE expires_at <= ${now} RETURNING lock_key`.pipe(
      SqlTables.mapStoreErrors(storeError("clearExpired"))
    )
    return rows.length
  })

/**
 * The `Lockout` service on the `SqlClient` in context, migrated unless `migrate: false`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SqlLockoutStore, SqlUserStore } from "effect-auth"
 *
 * const LockoutLive = SqlLockoutStore.layer({ limit: 5, coolOff: "15 minutes", backOff: 2 }).pipe(
 *   Layer.provide(SqlUserStore.layerSqlite({ filename: ":memory:" }))
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<Lockout.Lockout, AuthConfigError | Lockout.LockoutStoreError, SqlClient.SqlClient> =>
  Layer.effect(
    Lockout.Lockout,
    Effect.zipRight(
      options.migrate === false ? Effect.void : migrate(options),
      Effect.flatMap(make(options), (store) => Lockout.make(store, options))
    )
  )
