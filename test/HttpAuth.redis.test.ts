// Scale-out over real HTTP: two app instances (separate layers and HTTP servers) share sessions in
// Redis and users in PostgreSQL.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as RedisSessionStore from "../src/RedisSessionStore.js"
import * as SqlUserStore from "../src/SqlUserStore.js"
import { call, login, serve, type ServerOptions, users } from "./utils/httpAuthServer.js"
import * as Postgres from "./utils/postgres.js"
import * as Redis from "./utils/redis.js"

const redisUrl = Redis.redisUrl

// On a connection of its own, as the test's scope closes.
const dropUserTables = (prefix: string) => Postgres.dropDirect(Postgres.dropUserStoreTables(prefix))

// Two instances of the app: one user table and one Redis key prefix, everything else their own.
const twoInstances = (redisFor: (instance: "a" | "b") => string = () => redisUrl) =>
  Effect.gen(function*() {
    const tablePrefix = Postgres.uniquePrefix("http")
    const keyPrefix = Redis.uniquePrefix("http")
    yield* Effect.addFinalizer(() => Effect.zip(dropUserTables(tablePrefix), Redis.deleteKeys(keyPrefix)))
    const instance = (name: "a" | "b", seed: boolean): ServerOptions => {
      const database = SqlUserStore.layerPg({ url: Postgres.databaseUrl, tablePrefix, maxConnections: 4 })
      return {
        userStore: seed ? users.pipe(Layer.provideMerge(database)) : database,
        store: RedisSessionStore.layer({ url: redisFor(name), keyPrefix, commandTimeout: "1 second" })
      }
    }
    const a = yield* serve(instance("a", true))
    const b = yield* serve(instance("b", false))
    return { a: a.url, b: b.url }
  })

describe.skipIf(Redis.missing || Postgres.missing)("two app instances sharing Redis", () => {
  it.live("log in on one, use the session on the other, log out there, and the first rejects it", () =>
    Effect.gen(function*() {
      const { a, b } = yield* twoInstances()
      const { cookie, csrf } = yield* login(a, "alice", "wonderland")
      const onB = yield* call(b, "GET", "/me", { headers: { cookie } })
      expect(onB.status).toBe(200)
      expect(onB.json()).toMatchObject({ username: "alice", method: "session" })
      expect((yield* call(b, "POST", "/logout", { headers: { cookie, "x-csrftoken": csrf } })).status).toBe(204)
      expect((yield* call(a, "GET", "/me", { headers: { cookie } })).status).toBe(401)
      expect((yield* call(b, "GET", "/me", { headers: { cookie } })).status).toBe(401)
    }).pipe(Effect.scoped))

  it.live("a password changed on one instance logs out the user's sessions on the other", () =>
    Effect.gen(function*() {
      const { a, b } = yield* twoInstances()
      const here = yield* login(a, "alice", "wonderland")
      const there = yield* login(b, "alice", "wonderland")
      expect((yield* call(a, "GET", "/me", { headers: { cookie: there.cookie } })).status).toBe(200)
      const changed = yield* call(a, "POST", "/password", {
        headers: { cookie: here.cookie, "x-csrftoken": here.csrf },
        json: { password: "looking-glass" }
      })
      expect(changed.status).toBe(204)
      const renewed = `sessionid=${changed.cookies.cookies["sessionid"]!.value}`
      expect((yield* call(b, "GET", "/me", { headers: { cookie: renewed } })).status).toBe(200)
      expect((yield* call(b, "GET", "/me", { headers: { cookie: there.cookie } })).status).toBe(401)
      expect((yield* call(a, "GET", "/me", { headers: { cookie: here.cookie } })).status).toBe(401)
    }).pipe(Effect.scoped))

  it.live("Redis going away is a 503 for cookie requests; bearer requests do not need it", () =>
    Effect.gen(function*() {
      const proxy = yield* Redis.proxy
      const { a, b } = yield* twoInstances((name) => (name === "b" ? proxy.url : redisUrl))
      const { cookie } = yield* login(a, "alice", "wonderland")
      expect((yield* call(b, "GET", "/me", { headers: { cookie } })).status).toBe(200)
      proxy.cut()
      const down = yield* call(b, "GET", "/me", { headers: { cookie } })
      expect(down.status).toBe(503)
      expect(down.body).toBe("")
      expect((yield* call(b, "POST", "/login", { json: { username: "alice", password: "wonderland" } })).status).toBe(503)
      expect((yield* call(b, "GET", "/me", { headers: { authorization: "Bearer alice-token" } })).status).toBe(200)
      expect((yield* call(a, "GET", "/me", { headers: { cookie } })).status).toBe(200)
    }).pipe(Effect.scoped))
})
