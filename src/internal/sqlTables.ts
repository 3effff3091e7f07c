// Table names under a prefix, and migrations run with a module's own Migrator table: shared by the
// SQL user store, session store and API token backend, so they accept the same prefixes and fail
// the same way.
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { AuthConfigError } from "../AuthError.js"
import * as ConfigDuration from "./configDuration.js"
import { reasons } from "./storeError.js"
import { withValueFreeSpan } from "./tracing.js"

/** @internal */
export interface TableOptions {
  readonly tablePrefix?: string | undefined
  readonly migrationsTable?: string | undefined
}

// One untransformed client per client of the app's: stores that share the app's client share this
// one too (Provisioning runs the user store and the binding store in one transaction when their
// `sqlClient`s are the same object).
const untransformed = new WeakMap<SqlClient.SqlClient, SqlClient.SqlClient>()

/**
 * The app's `SqlClient` as the stores query it: without the `transformResultNames` and
 * `transformQueryNames` an app sets for its own tables (`String.snakeToCamel`, say). The stores
 * name their columns as the tables have them (Django's `last_login`, `session_key`) and decode
 * rows by those names; a client that renamed them made every row undecodable. Same connections,
 * same transactions.
 *
 * @internal
 */
export const client: Effect.Effect<SqlClient.SqlClient, never, SqlClient.SqlClient> = Effect.map(
  SqlClient.SqlClient,
  (sql) => untransformedOf(sql)
)

/** {@link client} of a client at hand. @internal */
export const untransformedOf = (sql: SqlClient.SqlClient): SqlClient.SqlClient => {
  let plain = untransformed.get(sql)
  if (plain === undefined) {
    plain = sql.withoutTransforms()
    untransformed.set(sql, plain)
    untransformed.set(plain, plain)
  }
  return plain
}

const identifier = /^[a-z_][a-z0-9_]*$/

/**
 * A table another system named (a Django site's `auth_user`, `django_session`): an unquoted SQL
 * identifier of at most 63 characters, PostgreSQL's limit. @internal
 */
export const isTableName = (name: string): boolean => /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)

/**
 * Checks the prefix (default `auth_`) and the Migrator's table (default
 * `effect_<prefix><name>_migrations`); `module` starts the error message.
 *
 * @internal
 */
export const resolve = <T extends object>(
  module: string,
  name: string,
  options: TableOptions,
  names: (prefix: string) => T
): Effect.Effect<T & { readonly migrations: string }, AuthConfigError> => {
  const prefix = options.tablePrefix ?? "auth_"
  if (!identifier.test(prefix) || prefix.length > 30) {
    return Effect.fail(
      new AuthConfigError({ message: `${module}: tablePrefix must match [a-z_][a-z0-9_]* (at most 30 characters)` })
    )
  }
  const migrations = options.migrationsTable ?? `effect_${prefix}${name}_migrations`
  if (!identifier.test(migrations) || migrations.length > 63) {
    return Effect.fail(
      new AuthConfigError({ message: `${module}: migrationsTable must match [a-z_][a-z0-9_]* (at most 63 characters)` })
    )
  }
  return Effect.succeed({ ...names(prefix), migrations })
}

/**
 * Every failure of `effect` (a `SqlError`, a row that does not decode) as `onError(cause)`.
 * Defects stay defects: a bug in this library must not report itself as "store unavailable".
 *
 * @internal
 */
export const mapStoreErrors = <E2>(onError: (cause: unknown) => E2) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E2, R> => Effect.mapError(effect, onError)

// @effect/sql-sqlite-node 0.53 prepares `BEGIN` outside its `Effect.try`, so on a closed database
// better-sqlite3's TypeError escapes as a defect. It is the driver reporting an unusable
// connection, not a bug of ours: that one error is made the SqlError the driver should have raised.
const isClosedSqlite = (defect: unknown): boolean =>
  defect instanceof TypeError && defect.message === "The database connection is not open"

/**
 * `sql.withTransaction(effect)`, where a transaction the database could not see through fails with
 * a `SqlError` instead of dying: a driver that cannot begin it, and a `COMMIT` or `ROLLBACK` that
 * fails (which `@effect/sql` turns into a defect: a connection that dropped mid-transaction, a
 * PostgreSQL restart). Either is the store being unavailable, whose typed error callers handle (a
 * 503, a lockout's `onStoreError`); as a defect it crashed a login whose outcome was decided. Other
 * defects stay defects.
 *
 * @internal
 */
export const withTransaction = <A, E, R>(
  sql: SqlClient.SqlClient,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R> =>
  Effect.catchSomeDefect(
    sql.onDialectOrElse({ sqlite: () => sqliteTransaction(sql, effect), orElse: () => sql.withTransaction(effect) }),
    (defect) =>
    defect instanceof SqlError
      ? Option.some(Effect.fail(defect))
      : isClosedSqlite(defect)
      ? Option.some(Effect.fail(new SqlError({ cause: defect, message: "Failed to begin transaction" })))
      : Option.none()
  )

// `@effect/sql` dies on a COMMIT that fails and hands the connection back as it is. SQLite keeps
// the transaction open after such a COMMIT (SQLITE_BUSY: another connection, a Django request,
// still reading past the busy timeout; a deferred foreign key, as Django declares them, violated):
// the store's one connection then ran every later statement of the process inside it,
// uncommitted, holding the write lock against every other connection, until some later ROLLBACK
// dropped them all (a user logged in from a row that vanished, its id handed out again). Here the
// transaction is driven on the reserved connection, and a COMMIT that fails is rolled back before
// the connection is handed back. Inside an open transaction, a savepoint of it, as before.
const sqliteTransaction = <A, E, R>(
  sql: SqlClient.SqlClient,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R> =>
  Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (outer): Effect.Effect<A, E | SqlError, R> =>
    Option.isSome(outer) ? sql.withTransaction(effect) : Effect.uninterruptibleMask((restore) =>
      Effect.scoped(Effect.flatMap(restore(sql.reserve), (connection): Effect.Effect<A, E | SqlError, R> => {
        const run = (statement: string) => connection.executeUnprepared(statement, [], undefined)
        const inside = Effect.provideService(effect, SqlClient.TransactionConnection, [connection, 0]) as Effect.Effect<A, E, R>
        return Effect.zipRight(run("BEGIN"), Effect.exit(restore(inside))).pipe(
          Effect.flatMap((exit) =>
            Exit.isSuccess(exit)
              ? Effect.as(Effect.tapError(run("COMMIT"), () => Effect.ignore(run("ROLLBACK"))), exit.value)
              // a ROLLBACK that fails finds no transaction left to end (SQLite ended it itself)
              : Effect.zipRight(Effect.ignore(run("ROLLBACK")), exit as Exit.Exit<A, E | SqlError>)
          )
        )
      }))
    ))

/**
 * Runs `migrations` with their own bookkeeping `table`; failures are `onError(cause)`.
 *
 * @internal
 */
export const migrate = <E>(
  migrations: Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>>,
  table: string,
  onError: (cause: unknown) => E
): Effect.Effect<void, E, SqlClient.SqlClient> =>
  Migrator.make({})({ loader: Migrator.fromRecord(migrations), table }).pipe(
    Effect.mapError(onError),
    // The Migrator turns a failing migration into a defect (a MigrationError wrapping the
    // SqlError): that one is a database problem; any other defect stays one.
    Effect.catchSomeDefect((defect) =>
      defect instanceof Migrator.MigrationError ? Option.some(Effect.fail(onError(defect))) : Option.none()
    ),
    Effect.asVoid
  )

/** How long one store operation may take by default. @internal */
export const defaultTimeout: Duration.Duration = Duration.seconds(5)

/**
 * Bounds one store operation: past `timeout` it fails at once with what `onTimeout` makes, and the
 * statement is interrupted in the background (`Effect.disconnect`), so a connection that froze
 * without closing (a partition, a stopped server) cannot hold the caller, and the request gets its
 * 503 instead of hanging.
 *
 * @internal
 */
export const bounded = <E2>(timeout: Duration.Duration, onTimeout: () => E2) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | E2, R> =>
  Effect.timeoutFail(Effect.disconnect(effect), { duration: timeout, onTimeout })

/** The no-answer cause of a timed-out operation. @internal */
export const noAnswer = (timeout: Duration.Duration): Error =>
  new Error(`the database did not answer within ${Duration.format(timeout)}`)

/**
 * A store error's message in one line, down to the driver's own reason (a `SqlError` says only
 * "Failed to execute statement"; its causes say why).
 *
 * @internal
 */
export const oneLine = (cause: unknown): string => reasons(cause).join(": ")

/**
 * A store's way to run one operation: every failure of the database as `storeError(operation)`,
 * no answer within `timeout` (default {@link defaultTimeout}) the same, and a span
 * `<spanPrefix>.<operation>`. Defects stay defects.
 *
 * @internal
 */
export const runner = <E2>(
  spanPrefix: string,
  timeoutInput: Duration.DurationInput | undefined,
  storeError: (operation: string) => (cause: unknown) => E2
): Effect.Effect<<A, E, R>(operation: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E2, R>, AuthConfigError> =>
  Effect.map(timeoutOf(spanPrefix, "timeout", timeoutInput, defaultTimeout), (timeout) => {
    const guard = guarded(timeout, storeError)
    return <A, E, R>(operation: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E2, R> =>
      effect.pipe(
        // A SQLite file locked by another connection is waited for within the same bound.
        retryBusy(timeout),
        guard(operation),
        withValueFreeSpan(`${spanPrefix}.${operation}`, { captureStackTrace: false })
      )
  })

/**
 * A store's time bound from its options: `input` (else `fallback`) as a positive, finite
 * duration (`ConfigDuration.positive`), or an `AuthConfigError` naming `module` and `name` when
 * the layer is built.
 *
 * @internal
 */
export const timeoutOf = (
  module: string,
  name: string,
  input: unknown,
  fallback: Duration.Duration
): Effect.Effect<Duration.Duration, AuthConfigError> =>
  Option.match(input === undefined ? Option.some(fallback) : ConfigDuration.positive(input), {
    onNone: () => Effect.fail(new AuthConfigError({ message: `${module}: ${name} must be a positive, finite duration` })),
    onSome: Effect.succeed
  })

/**
 * One store operation's failures made the store's error, and the operation {@link bounded} by
 * `timeout`, past which it fails with that error too ({@link noAnswer}).
 *
 * @internal
 */
export const guarded = <E2>(timeout: Duration.Duration, storeError: (operation: string) => (cause: unknown) => E2) =>
(operation: string) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E2, R> =>
  effect.pipe(
    mapStoreErrors(storeError(operation)),
    bounded(timeout, () => storeError(operation)(noAnswer(timeout)))
  )

/**
 * The longest the SQLite driver may wait for a lock synchronously, per try: better-sqlite3 waits
 * inside the call, holding the event loop, so every request of the process would stall with it.
 *
 * @internal
 */
export const sqliteBusySlice = 10

// SQLite's "another connection holds the lock" (SQLITE_BUSY and its extended codes; SQLITE_LOCKED
// within one connection's shared cache), as better-sqlite3 reports it in the SqlError's cause.
const isBusy = (error: unknown): boolean => {
  const code = (error as { readonly cause?: { readonly code?: unknown } } | null)?.cause?.code
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))
}

/**
 * Retries an operation that found the SQLite database locked, asynchronously (5 ms, doubling up
 * to 100 ms between tries), for as long as `limit` allows; then its last error stands. Other
 * errors, and other databases' errors, pass at once.
 *
 * @internal
 */
export const retryBusy = (limit: Duration.Duration) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.retry(effect, {
    while: isBusy,
    schedule: Schedule.exponential("5 millis").pipe(
      Schedule.union(Schedule.spaced("100 millis")),
      Schedule.upTo(limit)
    )
  })

const ColumnRows = Schema.Array(Schema.Struct({ name: Schema.String, type: Schema.String }))

/**
 * The columns of a table another system made (a Django site's user table) and their declared
 * types, lower-cased, from the catalog: `pg_attribute` on PostgreSQL, the table found as the
 * statements find it (along the search path); `pragma_table_info` on SQLite. Empty when there is
 * no such table. `table` is a checked name ({@link isTableName}).
 *
 * @internal
 */
export const columnTypes = (
  sql: SqlClient.SqlClient,
  table: string
): Effect.Effect<ReadonlyMap<string, string>, SqlError | ParseResult.ParseError> =>
  Effect.map(
    Effect.flatMap(
      sql.onDialectOrElse({
        // Quoted, as the statements quote it: `to_regclass` reads its argument as SQL would.
        pg: () =>
          sql`SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
            WHERE a.attrelid = to_regclass(${`"${table}"`}) AND a.attnum > 0 AND NOT a.attisdropped`,
        orElse: () => sql`SELECT name, type FROM pragma_table_info(${table})`
      }),
      Schema.decodeUnknown(ColumnRows)
    ),
    (rows) => new Map(rows.map((row) => [row.name, row.type.toLowerCase()]))
  )

/**
 * Which of `names` are tables of the database: on PostgreSQL those of a schema on the search path
 * (where unqualified statements find them), on SQLite the main database's.
 *
 * @internal
 */
export const existingTables = (
  sql: SqlClient.SqlClient,
  names: ReadonlyArray<string>
): Effect.Effect<ReadonlySet<string>, SqlError> =>
  Effect.map(
    sql.onDialectOrElse({
      pg: () =>
        sql<{ readonly name: string }>`SELECT table_name AS name FROM information_schema.tables
          WHERE table_schema = ANY (current_schemas(false)) AND ${sql.in("table_name", names)}`,
      orElse: () => sql<{ readonly name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND ${sql.in("name", names)}`
    }),
    (rows) => new Set(rows.map((row) => row.name))
  )

/**
 * Whether a column's declared type (as {@link columnTypes} reads it) holds integers only:
 * PostgreSQL's `smallint`, `integer`, `bigint` (Django's auto fields); on SQLite a type naming
 * `INT`, SQLite's integer affinity (Django's `integer`).
 *
 * @internal
 */
export const isIntegerType = (sql: SqlClient.SqlClient, type: string): boolean =>
  sql.onDialectOrElse({
    pg: () => type === "smallint" || type === "integer" || type === "bigint",
    orElse: () => type.includes("int")
  })

// PostgreSQL's `bigint` as a `BigInt`, where the app gave the driver a parser for it
// (`pg.types.setTypeParser(20, BigInt)`, common in Node apps, reaches every client of the process,
// the library's own too): the number it is, where a number holds it exactly. Refused, every
// session read as gone and every lockout count a store error.
const SafeBigInt = Schema.transformOrFail(Schema.BigIntFromSelf, Schema.Number, {
  strict: true,
  decode: (n, _, ast) =>
    n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)
      ? ParseResult.succeed(Number(n))
      : ParseResult.fail(new ParseResult.Type(ast, n, "an integer past 2^53 - 1")),
  encode: (n, _, ast) =>
    Number.isSafeInteger(n) ? ParseResult.succeed(BigInt(n)) : ParseResult.fail(new ParseResult.Type(ast, n, "not a safe integer"))
})

/**
 * An integer column as the drivers return it: PostgreSQL's `bigint` as a string (or as a `BigInt`
 * where the app set a type parser for it), SQLite's integers as numbers.
 *
 * @internal
 */
export const Integer = Schema.Union(Schema.Number, Schema.NumberFromString, SafeBigInt)
