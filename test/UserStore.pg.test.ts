import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import * as net from "node:net"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as UserStore from "../src/UserStore.js"
import { failureTag, userStoreSuite } from "./utils/userStoreSuite.js"

const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

// A fresh prefix per store, so tests and parallel test files never share tables.
const uniquePrefix = () => `us_pg_${randomBytes(4).toString("hex")}_`

const dropTables = (prefix: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.flatMap(SqlUserStore.tables({ tablePrefix: prefix }), (t) => {
      // The names are checked identifiers ([a-z0-9_]), so quoting them by hand is safe.
      const names = [t.userGroups, t.userPermissions, t.groupPermissions, t.user, t.group, t.permission, t.migrations]
      return sql.unsafe(`DROP TABLE IF EXISTS ${names.map((n) => `"${n}"`).join(", ")} CASCADE`)
    })).pipe(Effect.orDie)

// The store on a fresh prefix; its tables are dropped when the layer is released.
const pgStore = (prefix = uniquePrefix(), storeUrl = url) =>
  Layer.scopedDiscard(Effect.addFinalizer(() => dropTables(prefix))).pipe(
    Layer.provideMerge(SqlUserStore.layerPg({ url: storeUrl, tablePrefix: prefix, maxConnections: 10 }))
  )

// Drops through a direct connection, for stores whose own connection is gone.
const dropDirect = (prefix: string) =>
  Effect.provide(dropTables(prefix), SqlUserStore.layerPg({ url, migrate: false, tablePrefix: prefix })).pipe(
    Effect.ignore
  )

userStoreSuite("PostgreSQL", { layer: () => pgStore() })

// A TCP proxy in front of PostgreSQL that can be cut, to take the database away mid-life.
const proxy = Effect.acquireRelease(
  Effect.async<{ readonly port: number; readonly cut: () => void }>((resume) => {
    const target = new URL(url)
    const sockets = new Set<net.Socket>()
    const server = net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 5432), target.hostname)
      sockets.add(client)
      sockets.add(upstream)
      const close = () => {
        client.destroy()
        upstream.destroy()
      }
      client.on("error", close).on("close", close)
      upstream.on("error", close).on("close", close)
      client.pipe(upstream)
      upstream.pipe(client)
    })
    const cut = () => {
      server.close()
      for (const socket of sockets) socket.destroy()
    }
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ port: (server.address() as net.AddressInfo).port, cut })))
  }),
  (p) => Effect.sync(p.cut)
)

const withPort = (port: number) => {
  const u = new URL(url)
  u.hostname = "127.0.0.1"
  u.port = String(port)
  return u.toString()
}

describe("SqlUserStore on PostgreSQL", () => {
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

  it.live("a database that goes away is a UserStoreError, not a defect", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix()
      const { cut, port } = yield* proxy
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(
        SqlUserStore.layerPg({ url: withPort(port), tablePrefix: prefix, connectTimeout: "2 seconds" }),
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
      yield* dropDirect(prefix)
    }).pipe(Effect.scoped))

  it.live("an unreachable server fails the layer with a UserStoreError", () =>
    Effect.gen(function*() {
      const closedPort = yield* Effect.async<number>((resume) => {
        const server = net.createServer().listen(0, "127.0.0.1", () => {
          const port = (server.address() as net.AddressInfo).port
          server.close(() => resume(Effect.succeed(port)))
        })
      })
      const exit = yield* Effect.exit(
        Effect.provide(
          UserStore.UserStore,
          SqlUserStore.layerPg({ url: withPort(closedPort), tablePrefix: uniquePrefix(), connectTimeout: "2 seconds" })
        )
      )
      expect(failureTag(exit)).toBe("UserStoreError")
    }))
})

