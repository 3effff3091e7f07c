import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as RedisSessionStore from "../src/RedisSessionStore.js"
import * as SessionStore from "../src/SessionStore.js"
import * as Redis from "./utils/redis.js"
import { expectStoreErrors, record, sessionStoreSuite } from "./utils/sessionStoreSuite.js"
import { closedPort, withPort } from "./utils/tcpProxy.js"

const url = Redis.redisUrl

// A fresh key prefix per store, so tests, parallel test files and other runs never share keys.
const uniquePrefix = () => Redis.uniquePrefix("ss")

const redisStore = (keyPrefix = uniquePrefix()) =>
  Layer.scopedDiscard(Effect.addFinalizer(() => Redis.deleteKeys(keyPrefix))).pipe(
    Layer.provideMerge(RedisSessionStore.layer({ url, keyPrefix }))
  )

sessionStoreSuite("Redis", { layer: () => redisStore(), expiresItself: true, skip: Redis.missing })

describe.skipIf(Redis.missing)("RedisSessionStore", () => {
  it.live("keeps each session under its prefixed key with a TTL that ends at expiresAt", () => {
    const prefix = uniquePrefix()
    return Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const client = yield* Redis.client
      const now = Date.now()
      yield* store.set("k", record({ createdAt: now, lastSeenAt: now, expiresAt: now + 30_000 }), now)
      const ttl = yield* Effect.promise(() => client.pttl(`${prefix}k`))
      expect(ttl).toBeGreaterThan(25_000)
      expect(ttl).toBeLessThanOrEqual(30_000)
      yield* store.replace("k", record({ createdAt: now, lastSeenAt: now, expiresAt: now + 50_000 }), now)
      expect(yield* Effect.promise(() => client.pttl(`${prefix}k`))).toBeGreaterThan(45_000)
      expect(JSON.parse((yield* Effect.promise(() => client.get(`${prefix}k`)))!)).toMatchObject({ userId: "42" })
    }).pipe(Effect.scoped, Effect.provide(redisStore(prefix)))
  })

  it.live("a value that is not a session record reads as no session", () => {
    const prefix = uniquePrefix()
    return Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const client = yield* Redis.client
      yield* Effect.promise(() => client.set(`${prefix}junk`, "not json", "PX", 10_000))
      yield* Effect.promise(() => client.set(`${prefix}shape`, JSON.stringify({ userId: 1 }), "PX", 10_000))
      expect(Option.isNone(yield* store.get("junk", Date.now()))).toBe(true)
      expect(Option.isNone(yield* store.get("shape", Date.now()))).toBe(true)
      expect(yield* store.replace("junk", record({ expiresAt: Date.now() + 5_000 }), Date.now())).toBe(false)
      // a key of another type (not ours): no session either, where its WRONGTYPE was a store error
      yield* Effect.promise(() => client.hset(`${prefix}hash`, "userId", "42"))
      expect(Option.isNone(yield* store.get("hash", Date.now()))).toBe(true)
      // ... and a replace over it writes nothing and reports no live session (a login racing the
      // key's change of type), where the script's GET failed with WRONGTYPE
      expect(yield* store.replace("hash", record({ expiresAt: Date.now() + 5_000 }), Date.now())).toBe(false)
      expect(yield* Effect.promise(() => client.hget(`${prefix}hash`, "userId"))).toBe("42")
      yield* store.delete("hash")
      expect(yield* Effect.promise(() => client.exists(`${prefix}hash`))).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(redisStore(prefix)))
  })

  it.live("uses a client it was given and leaves it open", () =>
    Effect.gen(function*() {
      const client = yield* Redis.client
      const prefix = uniquePrefix()
      yield* Effect.flatMap(SessionStore.SessionStore, (s) => s.set("k", record(), record().createdAt)).pipe(
        Effect.provide(RedisSessionStore.layer({ client, keyPrefix: prefix }))
      )
      expect(client.status).toBe("ready")
      expect(yield* Effect.promise(() => client.exists(`${prefix}k`))).toBe(1)
      yield* Redis.deleteKeys(prefix)
    }).pipe(Effect.scoped))

  it.live("a Redis that goes away is a SessionStoreError within the command timeout, not a defect or a hang", () =>
    Effect.gen(function*() {
      const { cut, url: proxied } = yield* Redis.proxy
      const prefix = uniquePrefix()
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(
        RedisSessionStore.layer({ url: proxied, keyPrefix: prefix, commandTimeout: "500 millis" }),
        scope
      )
      const store = Context.get(ctx, SessionStore.SessionStore)
      const now = Date.now()
      yield* store.set("k", record({ createdAt: now, lastSeenAt: now, expiresAt: now + 10_000 }), now)
      cut()
      const exits = yield* Effect.all([
        Effect.exit(store.get("k", now)),
        Effect.exit(store.set("j", record({ expiresAt: now + 10_000 }), now)),
        Effect.exit(store.replace("k", record({ expiresAt: now + 10_000 }), now)),
        Effect.exit(store.delete("k"))
      ]).pipe(Effect.timeout("5 seconds"))
      expectStoreErrors(exits)
      yield* Scope.close(scope, Exit.void)
      yield* Redis.deleteKeys(prefix)
    }).pipe(Effect.scoped))

  it.scopedLive("an unreachable server fails the layer with a SessionStoreError", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const exit = yield* Effect.exit(
        Effect.provide(SessionStore.SessionStore, RedisSessionStore.layer({ url: withPort(url, port), connectTimeout: "1 second" }))
      )
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("SessionStoreError")
    }))
})
