// The SQL stores' transactions (SqlTables.withTransaction) on a PostgreSQL connection that drops
// mid-transaction: the store is unavailable, a typed SqlError its callers map to their store error
// (a 503, a lockout's onStoreError). @effect/sql makes a failed COMMIT or ROLLBACK a defect, which
// crashed a login whose outcome was decided (a lockout's settle, a review found with a 200 ms cut).
import * as PgClient from "@effect/sql-pg/PgClient"
import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as SqlTables from "../src/internal/sqlTables.js"
import * as Postgres from "./utils/postgres.js"

// The transaction's exit when the connection is cut at the end of `inside` (before its COMMIT) or
// before a statement in it (its ROLLBACK then cannot be sent either).
const cutDuring = (statementAfterCut: boolean) =>
  Effect.gen(function*() {
    const proxy = yield* Postgres.proxy
    return yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`SELECT 1`
      return yield* Effect.exit(SqlTables.withTransaction(
        sql,
        Effect.gen(function*() {
          yield* sql`SELECT 2`
          proxy.cut()
          if (statementAfterCut) yield* sql`SELECT 3`
        })
      ))
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(proxy.url), maxConnections: 1 })))
  }).pipe(Effect.scoped)

const failsTyped = (exit: Exit.Exit<unknown, unknown>) => {
  expect(Exit.isFailure(exit)).toBe(true)
  if (Exit.isSuccess(exit)) return
  expect(Cause.isDie(exit.cause)).toBe(false)
  expect(Option.getOrUndefined(Cause.failureOption(exit.cause))).toBeInstanceOf(SqlError)
}

describe.skipIf(Postgres.missing)("SqlTables.withTransaction on PostgreSQL", () => {
  it.live("a COMMIT the dropped connection cannot send fails with a SqlError, never a defect", () =>
    Effect.map(cutDuring(false), failsTyped))

  it.live("a statement and then a ROLLBACK on a dropped connection fail with a SqlError, never a defect", () =>
    Effect.map(cutDuring(true), failsTyped))
})
