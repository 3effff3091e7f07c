// SQL access to the API token table, on SQLite and PostgreSQL through one `SqlClient`.
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as SqlTables from "../sqlTables.js"

/** @internal */
export interface TokenRow {
  readonly id: string
  readonly userId: string
  readonly name: string
  readonly digest: string
  readonly scopes: ReadonlyArray<string>
  readonly createdAt: Date
  readonly expiresAt: Date | null
  readonly lastUsedAt: Date | null
  readonly revokedAt: Date | null
}

/** @internal */
export const createTable = (table: string): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlTables.client
    const pg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    const ts = sql.literal(pg ? "timestamp with time zone" : "datetime")
    // No foreign key to the user table: the store may live under another prefix (or in memory),
    // and user ids are strings to this module. A token of a deleted user matches nobody.
    yield* sql`CREATE TABLE ${sql(table)} (
      id varchar(16) NOT NULL PRIMARY KEY,
      user_id varchar(255) NOT NULL,
      name varchar(255) NOT NULL,
      digest char(64) NOT NULL,
      scopes text NOT NULL,
      created_at ${ts} NOT NULL,
      expires_at ${ts} NULL,
      last_used_at ${ts} NULL,
      revoked_at ${ts} NULL
    )`
    // One statement per call: SQLite prepares only the first statement of a string.
    yield* sql`CREATE INDEX ${sql(`${table}_user_id`)} ON ${sql(table)} (user_id)`
  })

// SQLite returns ISO text (ours ends in Z); PostgreSQL returns Date.
const TimestampText = Schema.transformOrFail(Schema.String, Schema.ValidDateFromSelf, {
  strict: true,
  decode: (text, _, ast) => {
    const date = new Date(text)
    return Number.isNaN(date.getTime())
      ? ParseResult.fail(new ParseResult.Type(ast, text, "not a timestamp"))
      : ParseResult.succeed(date)
  },
  encode: (date) => ParseResult.succeed(date.toISOString())
})
const Timestamp = Schema.Union(Schema.ValidDateFromSelf, TimestampText)

const Row = Schema.Struct({
  id: Schema.String,
  user_id: Schema.String,
  name: Schema.String,
  digest: Schema.String,
  scopes: Schema.parseJson(Schema.Array(Schema.String)),
  created_at: Timestamp,
  expires_at: Schema.NullOr(Timestamp),
  last_used_at: Schema.NullOr(Timestamp),
  revoked_at: Schema.NullOr(Timestamp)
})
const decodeRows = Schema.decodeUnknown(Schema.Array(Row))

const toRow = (row: typeof Row.Type): TokenRow => ({
  id: row.id,
  userId: row.user_id,
  name: row.name,
  digest: row.digest.trim(),
  scopes: row.scopes,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  lastUsedAt: row.last_used_at,
  revokedAt: row.revoked_at
})

/** PostgreSQL's unique_violation; better-sqlite3's extended result codes. @internal */
export const isUniqueViolation = (error: SqlError): boolean => {
  const code = Predicate.hasProperty(error.cause, "code") ? error.cause.code : undefined
  return code === "23505" || code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "SQLITE_CONSTRAINT_UNIQUE"
}

/** @internal */
export type RepositoryError = SqlError | ParseResult.ParseError

/** @internal */
export interface Repository {
  readonly insert: (row: TokenRow) => Effect.Effect<void, RepositoryError>
  readonly findById: (id: string) => Effect.Effect<Option.Option<TokenRow>, RepositoryError>
  readonly listByUser: (userId: string, includeRevoked: boolean) => Effect.Effect<ReadonlyArray<TokenRow>, RepositoryError>
  /**
   * Records a use at `at` when the stored last use is older than `interval` milliseconds before it
   * (or none), so never moving it back.
   */
  readonly touch: (id: string, at: Date, interval: number) => Effect.Effect<void, RepositoryError>
  readonly revoke: (id: string, at: Date) => Effect.Effect<void, RepositoryError>
}

/** @internal */
export const make = (table: string): Effect.Effect<Repository, never, SqlClient.SqlClient> =>
  Effect.map(SqlTables.client, (sql): Repository => {
    const T = sql(table)
    const time = (date: Date): string => date.toISOString()
    const columns = sql.literal(
      "id, user_id, name, digest, scopes, created_at, expires_at, last_used_at, revoked_at"
    )
    const select = (where: ReturnType<typeof sql.and>) =>
      Effect.map(
        Effect.flatMap(sql`SELECT ${columns} FROM ${T} WHERE ${where} ORDER BY created_at, id`, decodeRows),
        (rows) => rows.map(toRow)
      )
    return {
      insert: (row) =>
        sql`INSERT INTO ${T} (id, user_id, name, digest, scopes, created_at, expires_at, last_used_at, revoked_at)
          VALUES (${row.id}, ${row.userId}, ${row.name}, ${row.digest}, ${JSON.stringify(row.scopes)},
            ${time(row.createdAt)}, ${row.expiresAt === null ? null : time(row.expiresAt)}, NULL, NULL)`.pipe(
          Effect.asVoid
        ),
      findById: (id) => Effect.map(select(sql.and([sql`id = ${id}`])), (rows) => Option.fromNullable(rows[0])),
      listByUser: (userId, includeRevoked) =>
        select(sql.and(includeRevoked ? [sql`user_id = ${userId}`] : [sql`user_id = ${userId}`, sql`revoked_at IS NULL`])),
      // The condition is the database's, not only the caller's: uses at once (one process's
      // burst, or several processes') each read the row before any wrote, and an unconditional
      // UPDATE wrote once per use, the last to commit winning, an earlier time among them. Here
      // the first write makes the others match no row. SQLite's timestamps are our ISO text,
      // which orders as the times do.
      touch: (id, at, interval) =>
        Effect.asVoid(
          sql`UPDATE ${T} SET last_used_at = ${time(at)} WHERE id = ${id} AND (last_used_at IS NULL OR last_used_at <= ${
            time(new Date(at.getTime() - Math.max(0, interval)))
          })`
        ),
      // keeps the first revocation time when revoked twice
      revoke: (id, at) => Effect.asVoid(sql`UPDATE ${T} SET revoked_at = ${time(at)} WHERE id = ${id} AND revoked_at IS NULL`)
    }
  })
