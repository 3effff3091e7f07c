import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"
import * as SessionStore from "../src/SessionStore.js"
import * as SqlSessionStore from "../src/SqlSessionStore.js"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as UserStore from "../src/UserStore.js"
import { expectStoreErrors, record, sessionStoreSuite } from "./utils/sessionStoreSuite.js"
import { withBug } from "./utils/buggyClient.js"

const sqlite = () => SqlSessionStore.layer().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))

sessionStoreSuite("SQLite (:memory:)", { layer: sqlite })

describe("SqlSessionStore on SQLite", () => {
  const dir = mkdtempSync(join(tmpdir(), "effect-auth-sessions-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it.live("keeps sessions in a file across restarts and migrates once", () =>
    Effect.gen(function*() {
      const filename = join(dir, "sessions.db")
      const layer = () => SqlSessionStore.layer().pipe(Layer.provideMerge(SqliteClient.layer({ filename })))
      yield* Effect.flatMap(SessionStore.SessionStore, (s) => s.set("k", record(), record().createdAt)).pipe(
        Effect.provide(layer())
      )
      const found = yield* Effect.flatMap(SessionStore.SessionStore, (s) => s.get("k", record().createdAt)).pipe(
        Effect.provide(layer())
      )
      expect(Option.getOrThrow(found)).toEqual(record())
      const migrations = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ migration_id: number }>`SELECT migration_id FROM effect_auth_session_migrations`).pipe(
        Effect.provide(layer())
      )
      expect(migrations.map((m) => m.migration_id)).toEqual([1, 2, 3, 4, 5])
    }))

  it.live("shares the users' database, with its own table and migrations table", () =>
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const database = yield* Layer.buildWithScope(SqlUserStore.layerSqlite({ filename: ":memory:" }), scope)
      const build = (options: SqlSessionStore.LayerOptions) =>
        Layer.buildWithScope(SqlSessionStore.layer(options).pipe(Layer.provide(Layer.succeedContext(database))), scope)
          .pipe(Effect.map(Context.get(SessionStore.SessionStore)))
      const main = yield* build({})
      const shop = yield* build({ tablePrefix: "shop_" })
      yield* main.set("k", record(), record().createdAt)
      expect(Option.isNone(yield* shop.get("k", record().createdAt))).toBe(true)
      yield* Context.get(database, UserStore.UserStore).create({ username: "alice" })
      const sql = Context.get(database, SqlClient.SqlClient)
      const tables = (yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
        .map((t) => t.name)
      expect(tables).toEqual(expect.arrayContaining([
        "auth_session",
        "auth_user",
        "effect_auth_session_migrations",
        "effect_auth_user_migrations",
        "effect_shop_session_migrations",
        "shop_session"
      ]))
      expect(tables).not.toContain("effect_sql_migrations")
      const keys = yield* sql<{ session_key: string }>`SELECT session_key FROM auth_session`
      expect(keys.map((k) => k.session_key)).toEqual(["k"])
    }).pipe(Effect.scoped))

  it.live("rejects a bad table prefix when the layer is built", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.provide(
          SessionStore.SessionStore,
          SqlSessionStore.layer({ tablePrefix: "x; drop" }).pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))
        )
      )
      expect(error._tag).toBe("AuthConfigError")
    }))

  it.live("a bug is a defect, not a SessionStoreError (which HTTP reports as 503)", () =>
    Effect.gen(function*() {
      const filename = join(dir, "bug.db")
      yield* Effect.flatMap(SessionStore.SessionStore, (s) => s.set("k", record(), record().createdAt)).pipe(
        Effect.provide(SqlSessionStore.layer().pipe(Layer.provide(SqliteClient.layer({ filename }))))
      )
      // statements that die stand for any bug between the driver and the store's caller
      const buggy = withBug(SqliteClient.layer({ filename }))
      const exit = yield* Effect.exit(
        Effect.flatMap(SessionStore.SessionStore, (s) => s.get("k", record().createdAt)).pipe(
          Effect.provide(SqlSessionStore.layer({ migrate: false }).pipe(Layer.provide(buggy)))
        )
      )
      expect(Exit.isFailure(exit) && exit.cause._tag === "Die").toBe(true)
    }))

  // A column another process wrote with another type (SQLite keeps what it is given) was a
  // SessionStoreError on every read: the cookie a 503 on every request, its logout too.
  it.live("a row that does not decode reads as no session, as a record that does not decode; a login over it replaces it; a client renaming columns reads its rows", () =>
    Effect.gen(function*() {
      const layer = SqlSessionStore.layer().pipe(Layer.provideMerge(SqliteClient.layer({ filename: ":memory:" })))
      yield* Effect.gen(function*() {
        const store = yield* SessionStore.SessionStore
        const sql = yield* SqlClient.SqlClient
        const now = record().createdAt
        for (const [column, value] of [["created_at", "abc"], ["degraded", "x"], ["expire_at_browser_close", "yes"]] as const) {
          yield* store.set("k", record(), now)
          yield* sql.unsafe(`UPDATE auth_session SET ${column} = ? WHERE session_key = 'k'`, [value])
          expect([column, yield* store.get("k", now)]).toEqual([column, Option.none()])
          yield* store.set("k", record(), now)
          expect(yield* store.get("k", now)).toEqual(Option.some(record()))
        }
      }).pipe(Effect.provide(layer))
      // A client whose rows come back renamed (a transformResultNames for the app's own tables)
      // was a store error on every read: the store queries it without its transforms.
      const renaming = SqlSessionStore.layer().pipe(
        Layer.provideMerge(SqliteClient.layer({ filename: ":memory:", transformResultNames: (name) => name.toUpperCase() }))
      )
      yield* Effect.gen(function*() {
        const store = yield* SessionStore.SessionStore
        const now = record().createdAt
        yield* store.set("k", record(), now)
        expect(yield* store.get("k", now)).toEqual(Option.some(record()))
      }).pipe(Effect.provide(renaming))
    }))

  it.live("a closed database is a SessionStoreError, not a defect", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(sqlite(), scope)
      const store = Context.get(ctx, SessionStore.SessionStore)
      yield* store.set("k", record(), record().createdAt)
      yield* Scope.close(scope, Exit.void)
      const exits = yield* Effect.all([
        Effect.exit(store.get("k", record().createdAt)),
        Effect.exit(store.set("j", record(), record().createdAt)),
        Effect.exit(store.replace("k", record(), record().createdAt)),
        Effect.exit(store.delete("k")),
        Effect.exit(store.deleteExpired(record().createdAt))
      ])
      expectStoreErrors(exits)
    }))
})
