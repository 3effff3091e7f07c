// Lockout on Redis: two app instances (two ioredis clients, two AuthService layers) share the
// counters through one key prefix, and the Lua scripts count concurrent attempts exactly.
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import { Redis as IORedis } from "ioredis"
import * as AuthBackend from "../src/AuthBackend.js"
import * as AuthError from "../src/AuthError.js"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as Lockout from "../src/Lockout.js"
import * as TestBackend from "../src/testing/TestBackend.js"
import {
  anotherAccountKeepsTheCount,
  aSuccessGivesBackItsOwnCount,
  concurrentSuccessesLockNobody,
  counting,
  cutOffWhileCounting,
  exactlyTheLimitGetsThrough,
  noCountIsLost,
  oddAddressesCountByName,
  oddResetTargets,
  lapsedLockFoundOnce,
  lapsedLockPublishedOnce,
  lapsedPlacesCount,
  resetFindsItsKeys,
  tagOf,
  twoAccounts
} from "./utils/lockout.js"
import * as Redis from "./utils/redis.js"

/** One app instance: its own Redis client, its own AuthService and Lockout. */
const instance = (keyPrefix: string, backend: AuthBackend.AuthBackend, options: Lockout.Options) =>
  Effect.gen(function*() {
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => new IORedis(Redis.redisUrl)),
      (c) => Effect.promise(() => c.quit())
    )
    const lockout = Lockout.layerRedis({ client, keyPrefix, ...options })
    const layer = Lockout.layerAuthService(AuthService.layer([backend])).pipe(
      Layer.provideMerge(lockout),
      Layer.provideMerge(AuthEvents.layer)
    )
    const context = yield* Layer.build(layer)
    return { auth: Context.get(context, AuthService.AuthService), lockout: Context.get(context, Lockout.Lockout) }
  })


describe.skipIf(Redis.missing)("Lockout on Redis", () => {
  it.live(
    "two instances, 500 concurrent wrong passwords, limit 5: exactly 5 reach a backend, 495 are LockedOut",
    () => {
      const prefix = Redis.uniquePrefix("lockout")
      const { backend, calls } = counting()
      return Effect.gen(function*() {
        const a = yield* instance(prefix, backend, { by: "username", limit: 5 })
        const b = yield* instance(prefix, backend, { by: "username", limit: 5 })
        yield* exactlyTheLimitGetsThrough(a, b, calls)
      }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
    },
    60_000
  )

  it.live("reset finds a name's and an address's keys by SCAN MATCH, without listing every key", () => {
    const prefix = Redis.uniquePrefix("lockout")
    return Effect.gen(function*() {
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new IORedis(Redis.redisUrl)),
        (c) => Effect.promise(() => c.quit())
      )
      yield* resetFindsItsKeys(Lockout.redisStore(client, { keyPrefix: prefix }))
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  })

  // ioredis prefixes a script's KEYS with the client's own keyPrefix, not the SCAN pattern the
  // script is given: on an app's shared client with a keyPrefix, list and reset found nothing.
  it.live("on a client with a keyPrefix of its own, reset and list find the keys as on any other", () => {
    const prefix = Redis.uniquePrefix("lockout_client")
    return Effect.gen(function*() {
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new IORedis(Redis.redisUrl, { keyPrefix: prefix })),
        (c) => Effect.promise(() => c.quit())
      )
      yield* resetFindsItsKeys(Lockout.redisStore(client))
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  })

  it.live("a place nobody settles lapses after its hold and counts as a failure, once", () => {
    const prefix = Redis.uniquePrefix("lockout")
    return Effect.gen(function*() {
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new IORedis(Redis.redisUrl)),
        (c) => Effect.promise(() => c.quit())
      )
      yield* lapsedPlacesCount(Lockout.redisStore(client, { keyPrefix: prefix }))
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  })

  it.live("a lock that lapsed places set is answered by the first script that finds it, and by no later one", () => {
    const prefix = Redis.uniquePrefix("lockout")
    return Effect.gen(function*() {
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new IORedis(Redis.redisUrl)),
        (c) => Effect.promise(() => c.quit())
      )
      yield* lapsedLockFoundOnce(Lockout.redisStore(client, { keyPrefix: prefix }))
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  })

  it.live("a lock that lapsed places set publishes one LockedOut, also when two instances (two clients) find it at once", () => {
    const prefix = Redis.uniquePrefix("lockout")
    return Effect.gen(function*() {
      const client = Effect.acquireRelease(
        Effect.sync(() => new IORedis(Redis.redisUrl)),
        (c) => Effect.promise(() => c.quit())
      )
      const a = Lockout.redisStore(yield* client, { keyPrefix: prefix })
      const b = Lockout.redisStore(yield* client, { keyPrefix: prefix })
      yield* lapsedLockPublishedOnce(a, b)
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  })

  it.live("successes in flight lock nobody: 20 concurrent correct logins on two instances all get in, also after 4 failures (limit 5)", () => {
    const prefix = Redis.uniquePrefix("lockout")
    const { backend, calls } = counting({ slowSuccess: true })
    return Effect.gen(function*() {
      const a = yield* instance(prefix, backend, { by: "username", limit: 5 })
      const b = yield* instance(prefix, backend, { by: "username", limit: 5 })
      yield* concurrentSuccessesLockNobody(a, b, calls)
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  }, 60_000)

  it.live("no count is lost: 400 concurrent failures on two instances under a high limit count 400", () => {
    const prefix = Redis.uniquePrefix("lockout")
    const { backend, calls } = counting()
    return Effect.gen(function*() {
      const a = yield* instance(prefix, backend, { by: "username-or-ip", limit: 10_000 })
      const b = yield* instance(prefix, backend, { by: "username-or-ip", limit: 10_000 })
      yield* noCountIsLost(a, b, calls)
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  }, 60_000)

  it.live("a request whose address is no string (or throws when read) counts as one without an address, never a defect", () => {
    const prefix = Redis.uniquePrefix("lockout")
    const { backend } = counting()
    return Effect.gen(function*() {
      yield* oddAddressesCountByName(yield* instance(prefix, backend, { by: "username-or-ip", limit: 2 }))
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  })

  it.live("reset of a target that is no string is a LockoutStoreError; an exact key is read as the keys are kept", () => {
    const prefix = Redis.uniquePrefix("lockout")
    const { backend } = counting()
    return Effect.gen(function*() {
      yield* oddResetTargets(yield* instance(prefix, backend, { by: "username", limit: 5 }))
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  })

  it.live("a refunded attempt (backend down) does not count, and a success only gives back its own", () => {
    const prefix = Redis.uniquePrefix("lockout")
    return Effect.gen(function*() {
      const down = yield* instance(prefix, TestBackend.unavailable("ldap"), { by: "username", limit: 2 })
      for (let i = 0; i < 3; i++) {
        expect(tagOf(yield* Effect.exit(down.auth.authenticate({ username: "carol", password: "x" })))).toBe(
          "TransportError"
        )
      }
      // nothing counted: each refund left the record empty, and an empty record is dropped
      expect(yield* down.lockout.list).toEqual([])
      const { backend } = counting()
      const up = yield* instance(prefix, backend, { by: "username", limit: 2 })
      yield* Effect.exit(up.auth.authenticate({ username: "carol", password: "x" }))
      expect((yield* up.lockout.list).map((e) => e.failures)).toEqual([1])
      // a success gives back its own count only (it cleared the key before)
      expect(tagOf(yield* Effect.exit(up.auth.authenticate({ username: "carol", password: "right" })))).toBe("success")
      expect((yield* up.lockout.list).map((e) => [e.failures, e.lockedUntil])).toEqual([[1, undefined]])
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  })

  it.live("a success gives back its own count only: the lock its reservation set is lifted, the failure before it stays", () => {
    const prefix = Redis.uniquePrefix("lockout")
    const { backend } = counting()
    return Effect.gen(function*() {
      yield* aSuccessGivesBackItsOwnCount(yield* instance(prefix, backend, { by: "username", limit: 2 }))
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  })

  for (const by of ["username", "username-and-ip"] as const) {
    it.live(`${by}: a login to \`Alice\` (another account) does not clear \`alice\`'s count`, () => {
      const prefix = Redis.uniquePrefix("lockout")
      const { backend, calls } = twoAccounts()
      return Effect.gen(function*() {
        yield* anotherAccountKeepsTheCount(yield* instance(prefix, backend, { by, limit: 5 }), calls, { remoteAddress: "203.0.113.9" })
      }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
    })
  }

  it.effect("a record is forgotten by the app's clock (TestClock), not by the key's TTL, as in the other stores", () => {
    const prefix = Redis.uniquePrefix("lockout")
    return Effect.gen(function*() {
      const client = yield* Redis.client
      const lockout = yield* Lockout.make(Lockout.redisStore(client, { keyPrefix: prefix }), {
        by: "username",
        limit: 1,
        coolOff: "1 second",
        backOff: 2,
        forgetAfter: "10 seconds"
      })
      const attempt = Effect.flip(
        lockout.guard({ username: "carol" }, undefined, Effect.fail(new AuthError.AuthenticationFailed({ attempts: [] })))
      )
      yield* attempt // lock #1: 1 s
      yield* TestClock.adjust("2 seconds")
      yield* attempt // lock #2: 2 s
      yield* TestClock.adjust("1 hour") // past forgetAfter on the app's clock; the key's TTL has hours left
      expect(yield* lockout.list).toEqual([])
      expect(yield* lockout.reset("carol")).toEqual([])
      yield* TestClock.adjust("1 hour")
      yield* attempt // a fresh record: lock #1 again, not #3
      const refused = yield* attempt
      expect(refused._tag === "LockedOut" && Duration.toMillis(refused.retryAfter)).toBe(1000)
      expect((yield* lockout.list).map((e) => [e.key, e.failures, e.lockouts])).toEqual([["username:carol", 1, 1]])
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  })

  it.live("a caller cut off while Redis counts its attempt: the attempt still runs and is settled (3 correct logins cut off, the 4th gets in)", () => {
    const prefix = Redis.uniquePrefix("lockout")
    return Effect.gen(function*() {
      yield* cutOffWhileCounting(Lockout.redisStore(yield* Redis.client, { keyPrefix: prefix }))
    }).pipe(Effect.scoped, Effect.ensuring(Redis.deleteKeys(prefix)))
  })

  it.live("a store that cannot answer fails the attempt with TransportError (503), asking no backend", () => {
    const { backend, calls } = counting()
    return Effect.gen(function*() {
      const client = new IORedis("redis://127.0.0.1:1", { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false })
      const layer = Lockout.layerAuthService(AuthService.layer([backend])).pipe(
        Layer.provide(Lockout.layerRedis({ client, by: "username" })),
        Layer.provideMerge(AuthEvents.layer)
      )
      const auth = Context.get(yield* Layer.build(layer), AuthService.AuthService)
      const error = yield* Effect.flip(auth.authenticate({ username: "alice", password: "right" }))
      expect(error._tag).toBe("TransportError")
      expect(calls()).toBe(0)
      client.disconnect()
    }).pipe(Effect.scoped)
  })
})
