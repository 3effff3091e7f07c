import { describe, expect, it } from "@effect/vitest"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as SessionStore from "../src/SessionStore.js"
import * as SqlSessionStore from "../src/SqlSessionStore.js"
import * as Postgres from "./utils/postgres.js"
import { expectStoreErrors, record, sessionStoreSuite } from "./utils/sessionStoreSuite.js"

const url = Postgres.databaseUrl
const uniquePrefix = () => Postgres.uniquePrefix("ss_pg")

const client = (clientUrl = url) =>
  PgClient.layer({ url: Redacted.make(clientUrl), connectTimeout: "2 seconds", maxConnections: 5 })

const dropTables = (prefix: string) =>
  Effect.flatMap(Effect.orDie(SqlSessionStore.tables({ tablePrefix: prefix })), (t) =>
    Postgres.dropTables([t.session, t.migrations]))

// The store on a fresh prefix; its tables are dropped when the layer is released.
const pgStore = (prefix = uniquePrefix()) =>
  Postgres.dropOnRelease(dropTables(prefix)).pipe(
    Layer.provideMerge(SqlSessionStore.layer({ tablePrefix: prefix })),
    Layer.provide(client())
  )

sessionStoreSuite("PostgreSQL", { layer: () => pgStore(), skip: Postgres.missing })

describe.skipIf(Postgres.missing)("SqlSessionStore on PostgreSQL", () => {
  it.live("stores times as bigint and indexes the expiry", () => {
    const prefix = uniquePrefix()
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const columns = yield* sql<{ column_name: string; data_type: string }>`
        SELECT column_name, data_type FROM information_schema.columns
        WHERE table_name = ${`${prefix}session`} ORDER BY ordinal_position`
      expect(columns.map((c) => [c.column_name, c.data_type])).toEqual([
        ["session_key", "character varying"],
        ["user_id", "character varying"],
        ["backend_id", "character varying"],
        ["auth_hash", "character varying"],
        ["csrf_token", "character varying"],
        ["created_at", "bigint"],
        ["last_seen_at", "bigint"],
        ["expires_at", "bigint"],
        ["degraded", "smallint"],
        ["second_factor", "character varying"],
        ["expire_at_browser_close", "smallint"],
        ["second_factor_device", "character varying"]
      ])
      const indexes = yield* sql<{ indexname: string }>`SELECT indexname FROM pg_indexes WHERE tablename = ${`${prefix}session`}`
      expect(indexes.map((i) => i.indexname)).toContain(`${prefix}session_expires_at`)
    }).pipe(Effect.provide(pgStore(prefix).pipe(Layer.provideMerge(client()))))
  })

  it.live("two pools on one table see each other's sessions at once", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix()
      const scope = yield* Effect.scope
      const a = Context.get(yield* Layer.buildWithScope(pgStore(prefix), scope), SessionStore.SessionStore)
      const b = Context.get(
        yield* Layer.buildWithScope(SqlSessionStore.layer({ tablePrefix: prefix }).pipe(Layer.provide(client())), scope),
        SessionStore.SessionStore
      )
      const now = record().createdAt
      yield* a.set("shared", record(), now)
      expect(Option.isSome(yield* b.get("shared", now))).toBe(true)
      expect(yield* b.delete("shared")).toBe(true)
      expect(yield* a.replace("shared", record(), now)).toBe(false)
      expect(Option.isNone(yield* a.get("shared", now))).toBe(true)
    }).pipe(Effect.scoped))

  it.live("a database whose connections freeze (no reset) is a SessionStoreError after the timeout, not a hang", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix()
      const { cut, freeze, url: proxied } = yield* Postgres.proxy
      const scope = yield* Scope.make()
      const pg = yield* Layer.buildWithScope(client(proxied), scope)
      const storeWith = (options: { readonly timeout?: Duration.DurationInput }) =>
        Effect.map(
          Layer.buildWithScope(
            SqlSessionStore.layer({ tablePrefix: prefix, ...options }).pipe(Layer.provide(Layer.succeedContext(pg))),
            scope
          ),
          (ctx) => Context.get(ctx, SessionStore.SessionStore)
        )
      const now = record().createdAt
      // The set-up write has the default timeout: the 300 ms are for the frozen calls, not for a
      // write on a loaded machine.
      yield* (yield* storeWith({})).set("k", record(), now)
      const store = yield* storeWith({ timeout: "300 millis" })
      freeze()
      const exits = yield* Effect.all([Effect.exit(store.get("k", now)), Effect.exit(store.delete("k"))])
      expectStoreErrors(exits)
      const first = exits[0]!
      expect(Exit.isFailure(first) && first.cause._tag === "Fail" ? first.cause.error.message : "").toContain(
        "did not answer within"
      )
      cut()
      yield* Scope.close(scope, Exit.void)
      yield* Postgres.dropDirect(dropTables(prefix))
    }).pipe(Effect.scoped), 20_000)

  it.live("a database that goes away is a SessionStoreError, not a defect", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix()
      const { cut, url: proxied } = yield* Postgres.proxy
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(
        SqlSessionStore.layer({ tablePrefix: prefix }).pipe(Layer.provide(client(proxied))),
        scope
      )
      const store = Context.get(ctx, SessionStore.SessionStore)
      const now = record().createdAt
      yield* store.set("k", record(), now)
      cut()
      const exits = yield* Effect.all([
        Effect.exit(store.get("k", now)),
        Effect.exit(store.set("j", record(), now)),
        Effect.exit(store.replace("k", record(), now)),
        Effect.exit(store.delete("k"))
      ])
      expectStoreErrors(exits)
      yield* Scope.close(scope, Exit.void)
      yield* Postgres.dropDirect(dropTables(prefix))
    }).pipe(Effect.scoped))
})
