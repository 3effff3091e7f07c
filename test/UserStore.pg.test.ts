import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as UserStore from "../src/UserStore.js"
import * as util from "node:util"
import * as Postgres from "./utils/postgres.js"
import { closedPort, withPort } from "./utils/tcpProxy.js"
import { failureTag, userStoreSuite } from "./utils/userStoreSuite.js"

const url = Postgres.databaseUrl
const uniquePrefix = () => Postgres.uniquePrefix("us_pg")

// The store on a fresh prefix; its tables are dropped when the layer is released.
const pgStore = (prefix = uniquePrefix()) => Postgres.userStore(prefix)

userStoreSuite("PostgreSQL", { layer: () => pgStore(), skip: Postgres.missing })

describe.skipIf(Postgres.missing)("SqlUserStore on PostgreSQL", () => {
  it.live("creates Django's column types", () => {
    const prefix = uniquePrefix()
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const t = yield* SqlUserStore.tables({ tablePrefix: prefix })
      const rows = yield* sql<{ column_name: string; data_type: string; character_maximum_length: number | null }>`
        SELECT column_name, data_type, character_maximum_length FROM information_schema.columns
        WHERE table_name = ${t.user} ORDER BY ordinal_position`
      expect(rows.map((r) => [r.column_name, r.data_type, r.character_maximum_length])).toEqual([
        ["id", "integer", null],
        ["password", "character varying", 128],
        ["last_login", "timestamp with time zone", null],
        ["is_superuser", "boolean", null],
        ["username", "character varying", 150],
        ["first_name", "character varying", 150],
        ["last_name", "character varying", 150],
        ["email", "character varying", 254],
        ["is_staff", "boolean", null],
        ["is_active", "boolean", null],
        ["date_joined", "timestamp with time zone", null]
      ])
    }).pipe(Effect.provide(pgStore(prefix)))
  })

  // A row the table refuses (a site's NOT NULL column the store does not fill) fails with a driver
  // error whose `detail` is "Failing row contains (…)": every value of the row. Kept as the cause,
  // it put the password hash in util.inspect's and JSON.stringify's rendering of the error.
  it.live("a refused row's values (the password hash) are nowhere in the error, however it is rendered", () => {
    const prefix = uniquePrefix()
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const t = yield* SqlUserStore.tables({ tablePrefix: prefix })
      yield* sql.unsafe(`ALTER TABLE "${t.user}" ADD COLUMN phone text NOT NULL`)
      const store = yield* UserStore.UserStore
      const hash = "pbkdf2_sha256$1000$SALTSALTSALT$SECRETHASHVALUEdoNotLeak="
      const error = yield* Effect.flip(store.create({ username: "alice", passwordHash: Redacted.make(hash) }))
      expect(error._tag).toBe("UserStoreError")
      expect(error.message).toContain("null value in column")
      for (const rendered of [util.inspect(error, { depth: 20 }), JSON.stringify(error), String(error)]) {
        expect(rendered).not.toContain("SECRETHASH")
      }
      // what the store's own retry and the message read is kept
      expect(util.inspect(error, { depth: 20 })).toContain("23502")
    }).pipe(Effect.provide(pgStore(prefix)))
  })

  it.live("two pools on one table: exactly one of 40 concurrent creates wins", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix()
      const scope = yield* Effect.scope
      const dropper = yield* Layer.buildWithScope(pgStore(prefix), scope)
      const a = Context.get(dropper, UserStore.UserStore)
      const b = Context.get(
        yield* Layer.buildWithScope(SqlUserStore.layerPg({ url, tablePrefix: prefix, maxConnections: 10 }), scope),
        UserStore.UserStore
      )
      const results = yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b)),
        (store) => Effect.either(store.create({ username: "contested" })),
        { concurrency: "unbounded" }
      )
      expect(results.filter(Either.isRight).length).toBe(1)
      for (const loss of results.filter(Either.isLeft)) expect(loss.left._tag).toBe("UserAlreadyExists")
      expect((yield* b.list()).length).toBe(1)
    }).pipe(Effect.scoped))

  it.live("a database whose connections freeze (no reset) is a UserStoreError after the timeout, not a hang", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix()
      const { cut, freeze, url: proxied } = yield* Postgres.proxy
      const scope = yield* Scope.make()
      const storeWith = (options: { readonly timeout?: Duration.DurationInput }) =>
        Effect.map(
          Layer.buildWithScope(
            SqlUserStore.layerPg({ url: proxied, tablePrefix: prefix, connectTimeout: "2 seconds", ...options }),
            scope
          ),
          (ctx) => Context.get(ctx, UserStore.UserStore)
        )
      // The set-up write has the default timeout: the 300 ms are for the frozen reads, not for a
      // write on a loaded machine.
      const user = yield* (yield* storeWith({})).create({ username: "alice" })
      const store = yield* storeWith({ timeout: "300 millis" })
      freeze()
      const exits = yield* Effect.all([Effect.exit(store.findById(user.id)), Effect.exit(store.findByUsername("alice"))])
      expect(exits.map(failureTag)).toEqual(["UserStoreError", "UserStoreError"])
      cut()
      yield* Scope.close(scope, Exit.void)
      yield* Postgres.dropDirect(Postgres.dropUserStoreTables(prefix))
    }).pipe(Effect.scoped), 20_000)

  it.live("a database that goes away is a UserStoreError, not a defect", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix()
      const { cut, url: proxied } = yield* Postgres.proxy
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(
        SqlUserStore.layerPg({ url: proxied, tablePrefix: prefix, connectTimeout: "2 seconds" }),
        scope
      )
      const store = Context.get(ctx, UserStore.UserStore)
      const user = yield* store.create({ username: "alice" })
      expect(Option.isSome(yield* store.findById(user.id))).toBe(true)
      cut()
      const exits = yield* Effect.all([
        Effect.exit(store.findByUsername("alice")),
        Effect.exit(store.create({ username: "bob" })),
        Effect.exit(store.setGroups(user.id, ["g"])),
        Effect.exit(store.withPerm("a.b"))
      ])
      // A failure (not a defect) with a UserStoreError
      expect(exits.map(failureTag)).toEqual(exits.map(() => "UserStoreError"))
      yield* Scope.close(scope, Exit.void)
      yield* Postgres.dropDirect(Postgres.dropUserStoreTables(prefix))
    }).pipe(Effect.scoped))

  it.scopedLive("an unreachable server fails the layer with a UserStoreError", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const exit = yield* Effect.exit(
        Effect.provide(
          UserStore.UserStore,
          SqlUserStore.layerPg({ url: withPort(url, port), tablePrefix: uniquePrefix(), connectTimeout: "2 seconds" })
        )
      )
      expect(failureTag(exit)).toBe("UserStoreError")
    }))
})

