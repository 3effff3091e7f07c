/**
 * PostgreSQL for tests: this run's own database (test/setup/services.ts made it, on DATABASE_URL's
 * server or on a throwaway server it started), table prefixes no other test or test file uses, and
 * dropping what a test created. Suites that need it: `describe.skipIf(Postgres.missing)`.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import { inject } from "vitest"
import type { AuthConfigError } from "../../src/AuthError.js"
import * as SqlUserStore from "../../src/SqlUserStore.js"
import type * as UserStore from "../../src/UserStore.js"
import { type Proxy, urlProxy } from "./tcpProxy.js"

const provided = inject("services").postgres

/** No PostgreSQL for this run: its suites are skipped (the setup has said so, loudly). */
export const missing: boolean = provided === null

/** This run's database; where `missing`, a URL that never connects (the suites using it are skipped). */
export const databaseUrl: string = provided ?? "postgres://postgres@unavailable.invalid:5432/none"

/** `<tag>_<8 hex digits>_`: a fresh table prefix, so tests and parallel test files never share tables. */
export const uniquePrefix = (tag: string): string => `${tag}_${randomBytes(4).toString("hex")}_`

/** A TCP proxy in front of PostgreSQL that can be cut, to take the database away mid-life. */
export const proxy: Effect.Effect<Proxy & { readonly url: string }, never, Scope.Scope> = urlProxy(databaseUrl, 5432)

/** Drops the tables that exist among `names`, with what depends on them. */
export const dropTables = (names: ReadonlyArray<string>): Effect.Effect<void, never, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    // The names are checked identifiers ([a-z0-9_]), so quoting them by hand is safe.
    sql.unsafe(`DROP TABLE IF EXISTS ${names.map((n) => `"${n}"`).join(", ")} CASCADE`)).pipe(Effect.orDie, Effect.asVoid)

/** The SQL user store's tables under `prefix`, the ones that reference others first. */
export const userStoreTables = (prefix: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.map(
    Effect.orDie(SqlUserStore.tables({ tablePrefix: prefix })),
    (t) => [t.userGroups, t.userPermissions, t.groupPermissions, t.user, t.group, t.permission, t.migrations]
  )

export const dropUserStoreTables = (prefix: string): Effect.Effect<void, never, SqlClient.SqlClient> =>
  Effect.flatMap(userStoreTables(prefix), dropTables)

/** Runs `drop` when the layer is released, after everything built on it. */
export const dropOnRelease = (
  drop: Effect.Effect<void, never, SqlClient.SqlClient>
): Layer.Layer<never, never, SqlClient.SqlClient> => Layer.scopedDiscard(Effect.addFinalizer(() => drop))

/** Runs `drop` on a connection of its own, for tests whose store's connection is gone; failures are ignored. */
export const dropDirect = (drop: Effect.Effect<void, never, SqlClient.SqlClient>): Effect.Effect<void> =>
  Effect.provide(drop, PgClient.layer({ url: Redacted.make(databaseUrl) })).pipe(Effect.ignore)

/** The SQL user store on PostgreSQL under `prefix`; its tables are dropped when the layer is released. */
export const userStore = (
  prefix: string
): Layer.Layer<UserStore.UserStore | SqlClient.SqlClient, AuthConfigError | UserStore.UserStoreError> =>
  dropOnRelease(dropUserStoreTables(prefix)).pipe(
    Layer.provideMerge(SqlUserStore.layerPg({ url: databaseUrl, tablePrefix: prefix, maxConnections: 10 }))
  )

/**
 * A fresh connection pool to this run's database, dropping `tables` (a module's table names under
 * a prefix) when the layer is released: for stores built on the `SqlClient` it provides.
 */
export const poolDropping = (
  tables: Effect.Effect<ReadonlyArray<string>, unknown>
): Layer.Layer<SqlClient.SqlClient> =>
  dropOnRelease(Effect.flatMap(Effect.orDie(tables), dropTables)).pipe(
    Layer.provideMerge(Layer.orDie(PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections: 5 })))
  )
