// Lockout on SQL: two app instances (two PostgreSQL pools, two AuthService layers) share the
// counters through one table, and row locks make concurrent attempts count exactly; SQLite keeps
// the same semantics on one host.
import * as PgClient from "@effect/sql-pg/PgClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as AuthBackend from "../src/AuthBackend.js"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as Lockout from "../src/Lockout.js"
import * as SqlLockoutStore from "../src/SqlLockoutStore.js"
import * as TestBackend from "../src/testing/TestBackend.js"
import {
  anotherAccountKeepsTheCount,
  aSuccessGivesBackItsOwnCount,
  concurrentSuccessesLockNobody,
  counting,
  cutOffWhileCounting,
  exactlyTheLimitGetsThrough,
  illFormedNamesCount,
  lapsedLockFoundOnce,
  lapsedLockPublishedOnce,
  lapsedPlacesCount,
  noCountIsLost,
  oddAddressesCountByName,
  oddResetTargets,
  resetFindsItsKeys,
  tagOf,
  twoAccounts
} from "./utils/lockout.js"
import * as Postgres from "./utils/postgres.js"


/** One app instance on the SqlClient `database`: its own AuthService and Lockout. */
const instance = <E>(
  database: Layer.Layer<import("@effect/sql/SqlClient").SqlClient, E>,
  backend: AuthBackend.AuthBackend,
  options: SqlLockoutStore.LayerOptions
) =>
  Effect.gen(function*() {
    const layer = Lockout.layerAuthService(AuthService.layer([backend])).pipe(
      Layer.provideMerge(SqlLockoutStore.layer(options)),
      Layer.provideMerge(AuthEvents.layer),
      Layer.provide(database)
    )
    const context = yield* Layer.build(layer)
    return { auth: Context.get(context, AuthService.AuthService), lockout: Context.get(context, Lockout.Lockout) }
  })

const pool = () => PgClient.layer({ url: Redacted.make(Postgres.databaseUrl), maxConnections: 10 })

// Hundreds of attempts on one row queue behind its lock and the pool's 10 connections: on a busy
// machine the last one waits longer than the store's 5 s default, fails as LockoutStoreError
// (503) and never reaches the backend. These tests count, so the store may wait.
const queued = "60 seconds"

const dropLockoutTables = (prefix: string) =>
  Effect.flatMap(Effect.orDie(SqlLockoutStore.tables({ tablePrefix: prefix })), (t) =>
    Postgres.dropDirect(Postgres.dropTables([t.lockout, t.migrations])))

/**
 * Refused attempts (a locked address, fresh names each time; a busy one) and a refund of a key with
 * no record leave no row behind: the table holds the live records only.
 */
const refusedAttemptsLeaveNoRow = (prefix?: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* SqlLockoutStore.migrate({ tablePrefix: prefix })
    const store = yield* SqlLockoutStore.make({ tablePrefix: prefix })
    const t = yield* SqlLockoutStore.tables({ tablePrefix: prefix })
    const policy = { limit: 1, coolOff: 900_000, backOff: 1, maxCoolOff: 86_400_000, forgetAfter: 86_400_000 }
    const now = 1_700_000_000_000
    const rows = Effect.map(sql<{ c: number }>`SELECT count(*) AS c FROM ${sql(t.lockout)}`, (r) => Number(r[0]!.c))
    expect(yield* store.attempt(["ip:192.0.2.7", "username:n0"], now, policy)).toMatchObject({ _tag: "Allowed" })
    // busy while that attempt is in flight (limit 1), locked once it failed
    expect(yield* store.attempt(["ip:192.0.2.7", "username:b"], now, policy)).toEqual({ _tag: "Busy" })
    expect(yield* store.fail(["ip:192.0.2.7", "username:n0"], now, policy)).toEqual({
      locked: ["ip:192.0.2.7", "username:n0"],
      until: now + 900_000
    })
    for (let i = 1; i <= 50; i++) {
      expect(yield* store.attempt(["ip:192.0.2.7", `username:n${i}`], now, policy)).toMatchObject({ _tag: "Locked" })
    }
    yield* store.refund(["username:nobody"], now, policy)
    expect((yield* store.list(now)).map((e) => e.key)).toEqual(["ip:192.0.2.7", "username:n0"])
    expect(yield* rows).toBe(2)
  })

describe.skipIf(Postgres.missing)("Lockout on PostgreSQL", () => {
  it.live(
    "two instances, 500 concurrent wrong passwords, limit 5: exactly 5 reach a backend, 495 are LockedOut",
    () => {
      const prefix = Postgres.uniquePrefix("lockout")
      const { backend, calls } = counting()
      return Effect.gen(function*() {
        const a = yield* instance(pool(), backend, { tablePrefix: prefix, by: "username", limit: 5, timeout: queued })
        const b = yield* instance(pool(), backend, { tablePrefix: prefix, by: "username", limit: 5, timeout: queued })
        yield* exactlyTheLimitGetsThrough(a, b, calls)
      }).pipe(Effect.scoped, Effect.ensuring(dropLockoutTables(prefix)))
    },
    60_000
  )

  // Each attempt used to take the key's row lock, a locked key's too: a burst queued behind it one
  // transaction at a time, past the store's timeout, and under "allow" each timed-out attempt went
  // to the backend uncounted (376 of 400 here). A locked key is now refused from a plain read.
  it.live("a burst against a locked key is refused without queueing for its row: under onStoreError \"allow\", no attempt gets through", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    const { backend, calls } = counting()
    return Effect.gen(function*() {
      const options = { tablePrefix: prefix, by: "username", limit: 5, timeout: "300 millis", onStoreError: "allow" } as const
      const a = yield* instance(pool(), backend, options)
      for (let i = 0; i < 5; i++) {
        expect(tagOf(yield* Effect.exit(a.auth.authenticate({ username: "alice", password: "x" })))).toBe("AuthenticationFailed")
      }
      const outcomes = yield* Effect.all(
        Array.from({ length: 400 }, () => Effect.map(Effect.exit(a.auth.authenticate({ username: "alice", password: "y" })), tagOf)),
        { concurrency: "unbounded" }
      )
      expect(calls()).toBe(5)
      expect(outcomes.filter((o) => o !== "LockedOut")).toEqual([])
    }).pipe(Effect.scoped, Effect.ensuring(dropLockoutTables(prefix)))
  }, 60_000)

  it.live("successes in flight lock nobody: 20 concurrent correct logins on two instances all get in, also after 4 failures (limit 5)", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    const { backend, calls } = counting({ slowSuccess: true })
    return Effect.gen(function*() {
      const a = yield* instance(pool(), backend, { tablePrefix: prefix, by: "username", limit: 5 })
      const b = yield* instance(pool(), backend, { tablePrefix: prefix, by: "username", limit: 5 })
      yield* concurrentSuccessesLockNobody(a, b, calls)
    }).pipe(Effect.scoped, Effect.ensuring(dropLockoutTables(prefix)))
  }, 60_000)

  it.live("no count is lost: 400 concurrent failures on two instances under a high limit count 400 per key", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    const { backend, calls } = counting()
    return Effect.gen(function*() {
      const options = { tablePrefix: prefix, by: "username-or-ip", limit: 10_000, timeout: queued } as const
      const a = yield* instance(pool(), backend, options)
      const b = yield* instance(pool(), backend, options)
      yield* noCountIsLost(a, b, calls)
    }).pipe(Effect.scoped, Effect.ensuring(dropLockoutTables(prefix)))
  }, 60_000)

  it.live("a place nobody settles lapses after its hold and counts as a failure, once", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    return SqlLockoutStore.migrate({ tablePrefix: prefix }).pipe(
      Effect.zipRight(SqlLockoutStore.make({ tablePrefix: prefix })),
      Effect.flatMap(lapsedPlacesCount),
      Effect.provide(pool()),
      Effect.ensuring(dropLockoutTables(prefix))
    )
  })

  it.live("a lock that lapsed places set is answered by the first operation that finds it, and by no later one", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    return SqlLockoutStore.migrate({ tablePrefix: prefix }).pipe(
      Effect.zipRight(SqlLockoutStore.make({ tablePrefix: prefix })),
      Effect.flatMap(lapsedLockFoundOnce),
      Effect.provide(pool()),
      Effect.ensuring(dropLockoutTables(prefix))
    )
  })

  it.live("a lock that lapsed places set publishes one LockedOut, also when two instances (two pools) find it at once", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    return Effect.gen(function*() {
      const one = yield* Layer.build(pool())
      const two = yield* Layer.build(pool())
      yield* Effect.provide(SqlLockoutStore.migrate({ tablePrefix: prefix }), one)
      const a = yield* Effect.provide(SqlLockoutStore.make({ tablePrefix: prefix }), one)
      const b = yield* Effect.provide(SqlLockoutStore.make({ tablePrefix: prefix }), two)
      yield* lapsedLockPublishedOnce(a, b)
    }).pipe(Effect.scoped, Effect.ensuring(dropLockoutTables(prefix)))
  })

  it.live("reset finds a name's and an address's rows in the database, without reading every row", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    return SqlLockoutStore.migrate({ tablePrefix: prefix }).pipe(
      Effect.zipRight(SqlLockoutStore.make({ tablePrefix: prefix })),
      Effect.flatMap(resetFindsItsKeys),
      Effect.provide(pool()),
      Effect.ensuring(dropLockoutTables(prefix))
    )
  })

  it.live("a caller cut off while the store counts its attempt: the attempt still runs and is settled (3 correct logins cut off, the 4th gets in)", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    return SqlLockoutStore.migrate({ tablePrefix: prefix }).pipe(
      Effect.zipRight(SqlLockoutStore.make({ tablePrefix: prefix })),
      Effect.flatMap((store) => Effect.scoped(cutOffWhileCounting(store))),
      Effect.provide(pool()),
      Effect.ensuring(dropLockoutTables(prefix))
    )
  })

  it.live("a name with a NUL or a lone surrogate counts like any other (the row is found again)", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    const { backend, calls } = counting()
    return Effect.gen(function*() {
      const a = yield* instance(pool(), backend, { tablePrefix: prefix, by: "username", limit: 2 })
      yield* illFormedNamesCount(a, calls)
    }).pipe(Effect.scoped, Effect.ensuring(dropLockoutTables(prefix)))
  })

  it.live("a request whose address is no string (or throws when read) counts as one without an address, never a defect", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    const { backend } = counting()
    return Effect.gen(function*() {
      yield* oddAddressesCountByName(yield* instance(pool(), backend, { tablePrefix: prefix, by: "username-or-ip", limit: 2 }))
    }).pipe(Effect.scoped, Effect.ensuring(dropLockoutTables(prefix)))
  })

  it.live("reset of a target that is no string is a LockoutStoreError; an exact key is read as the rows keep it", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    const { backend } = counting()
    return Effect.gen(function*() {
      yield* oddResetTargets(yield* instance(pool(), backend, { tablePrefix: prefix, by: "username", limit: 5 }))
    }).pipe(Effect.scoped, Effect.ensuring(dropLockoutTables(prefix)))
  })

  it.live("a refunded attempt (backend down) does not count, and a success only gives back its own", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    return Effect.gen(function*() {
      const down = yield* instance(pool(), TestBackend.unavailable("ldap"), { tablePrefix: prefix, by: "username", limit: 2 })
      for (let i = 0; i < 3; i++) {
        expect(tagOf(yield* Effect.exit(down.auth.authenticate({ username: "carol", password: "x" })))).toBe(
          "TransportError"
        )
      }
      // nothing counted: each refund left the record empty, and an empty record is dropped
      expect(yield* down.lockout.list).toEqual([])
      const { backend } = counting()
      const up = yield* instance(pool(), backend, { tablePrefix: prefix, by: "username", limit: 2 })
      yield* Effect.exit(up.auth.authenticate({ username: "carol", password: "x" }))
      expect((yield* up.lockout.list).map((e) => e.failures)).toEqual([1])
      // a success gives back its own count only (it cleared the key before)
      expect(tagOf(yield* Effect.exit(up.auth.authenticate({ username: "carol", password: "right" })))).toBe("success")
      expect((yield* up.lockout.list).map((e) => [e.failures, e.lockedUntil])).toEqual([[1, undefined]])
    }).pipe(Effect.scoped, Effect.ensuring(dropLockoutTables(prefix)))
  })

  it.live("a success gives back its own count only: the lock its reservation set is lifted, the failure before it stays", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    const { backend } = counting()
    return Effect.gen(function*() {
      yield* aSuccessGivesBackItsOwnCount(yield* instance(pool(), backend, { tablePrefix: prefix, by: "username", limit: 2 }))
    }).pipe(Effect.scoped, Effect.ensuring(dropLockoutTables(prefix)))
  })

  it.live("refused attempts with fresh names from a locked address leave no row behind", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    return refusedAttemptsLeaveNoRow(prefix).pipe(Effect.provide(pool()), Effect.ensuring(dropLockoutTables(prefix)))
  })

  it.live("an attempt waiting for a row that another transaction deletes (a refund, a reset) still counts", () => {
    const prefix = Postgres.uniquePrefix("lockout")
    const policy = { limit: 1000, coolOff: 900_000, backOff: 1, maxCoolOff: 86_400_000, forgetAfter: 86_400_000 }
    const key = "username:carol"
    return Effect.gen(function*() {
      // The store on one pool; the other transaction on a pool of its own (a fiber forked inside
      // `withTransaction` would share its connection).
      const sql = Context.get(yield* Layer.build(pool()), SqlClient.SqlClient)
      const other = Context.get(yield* Layer.build(pool()), SqlClient.SqlClient)
      yield* SqlLockoutStore.migrate({ tablePrefix: prefix }).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      const store = yield* SqlLockoutStore.make({ tablePrefix: prefix }).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      const t = yield* SqlLockoutStore.tables({ tablePrefix: prefix })
      const now = Date.now()
      yield* store.attempt([key], now, policy) // a place held: the attempt the refund gives back
      const locked = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      // What a refund that drops the record does: lock the row, delete it, commit.
      const refund = yield* Effect.fork(other.withTransaction(Effect.gen(function*() {
        yield* other`SELECT lock_key FROM ${other(t.lockout)} WHERE lock_key = ${key} FOR UPDATE`
        yield* Deferred.succeed(locked, undefined)
        yield* Deferred.await(release)
        yield* other`DELETE FROM ${other(t.lockout)} WHERE lock_key = ${key}`
      })))
      yield* Deferred.await(locked)
      const attempt = yield* Effect.fork(store.attempt([key], now, policy)) // a wrong password meanwhile
      // until the attempt waits for the row lock
      yield* other<{ c: number }>`SELECT count(*)::int AS c FROM pg_stat_activity
        WHERE wait_event_type = 'Lock' AND query LIKE ${`%${t.lockout}%`}`.pipe(
        Effect.repeat({ until: (rows) => rows[0]!.c > 0, schedule: Schedule.spaced("10 millis"), times: 500 })
      )
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(refund)
      expect(yield* Fiber.join(attempt)).toMatchObject({ _tag: "Allowed" })
      // the waiting attempt's place is in a row of its own
      expect(yield* sql<{ pending: number }>`SELECT pending FROM ${sql(t.lockout)} WHERE lock_key = ${key}`).toEqual([{ pending: 1 }])
    }).pipe(Effect.scoped, Effect.ensuring(dropLockoutTables(prefix)))
  })

  for (const by of ["username", "username-and-ip"] as const) {
    it.live(`${by}: a login to \`Alice\` (another account) does not clear \`alice\`'s count`, () => {
      const prefix = Postgres.uniquePrefix("lockout")
      const { backend, calls } = twoAccounts()
      return Effect.gen(function*() {
        const a = yield* instance(pool(), backend, { tablePrefix: prefix, by, limit: 5 })
        yield* anotherAccountKeepsTheCount(a, calls, { remoteAddress: "203.0.113.9" })
      }).pipe(Effect.scoped, Effect.ensuring(dropLockoutTables(prefix)))
    })
  }
})

describe("Lockout on SQLite", () => {
  const sqlite = () => SqliteClient.layer({ filename: ":memory:" })

  it.live("locks at the limit, answers LockedOut with the time left, lists and resets; clearExpired forgets", () => {
    const { backend, calls } = counting()
    return Effect.gen(function*() {
      const database = yield* Layer.memoize(sqlite())
      const { auth, lockout } = yield* instance(database, backend, {
        by: "username",
        limit: 3,
        coolOff: "1 minute",
        forgetAfter: "1 minute"
      })
      // whitespace and case variants are one key, in the store as in memory
      for (const username of ["dave", " dave ", "DAVE\t"]) {
        expect(tagOf(yield* Effect.exit(auth.authenticate({ username, password: "x" })))).toBe(
          "AuthenticationFailed"
        )
      }
      const locked = yield* Effect.flip(auth.authenticate({ username: "  Dave", password: "right" }))
      expect(locked._tag).toBe("LockedOut")
      expect(calls()).toBe(3)
      const [entry] = yield* lockout.list
      expect(entry).toMatchObject({ key: "username:dave", failures: 3, lockouts: 1 })
      expect(yield* lockout.reset("dave")).toEqual(["username:dave"])
      expect(tagOf(yield* Effect.exit(auth.authenticate({ username: "dave", password: "right" })))).toBe("success")

      // A failure leaves a record; far in the future it is forgotten and deleted.
      yield* Effect.exit(auth.authenticate({ username: "erin", password: "x" }))
      expect((yield* lockout.list).map((e) => e.key)).toEqual(["username:erin"])
      const deleted = yield* SqlLockoutStore.clearExpired({ now: Date.now() + 10 * 60_000 }).pipe(Effect.provide(database))
      expect(deleted).toBe(1)
      expect(yield* lockout.list).toEqual([])
    }).pipe(Effect.scoped)
  })

  it.live("a login to `Alice` (another account) does not clear `alice`'s count; a success gives back its own count only", () => {
    return Effect.gen(function*() {
      const { backend, calls } = twoAccounts()
      yield* anotherAccountKeepsTheCount(yield* instance(sqlite(), backend, { by: "username", limit: 5 }), calls)
      yield* aSuccessGivesBackItsOwnCount(yield* instance(sqlite(), counting().backend, { by: "username", limit: 2 }))
    }).pipe(Effect.scoped)
  })

  it.live("a name with a NUL or a lone surrogate counts like any other (the row is found again)", () => {
    const { backend, calls } = counting()
    return Effect.gen(function*() {
      const a = yield* instance(sqlite(), backend, { by: "username", limit: 2 })
      yield* illFormedNamesCount(a, calls)
    }).pipe(Effect.scoped)
  })

  it.live("a request whose address is no string (or throws when read) counts as one without an address, never a defect", () => {
    const { backend } = counting()
    return Effect.gen(function*() {
      yield* oddAddressesCountByName(yield* instance(sqlite(), backend, { by: "username-or-ip", limit: 2 }))
    }).pipe(Effect.scoped)
  })

  it.live("reset of a target that is no string is a LockoutStoreError; an exact key is read as the rows keep it", () => {
    const { backend } = counting()
    return Effect.gen(function*() {
      yield* oddResetTargets(yield* instance(sqlite(), backend, { by: "username", limit: 5 }))
    }).pipe(Effect.scoped)
  })

  it.live("a place nobody settles lapses after its hold and counts as a failure, once", () =>
    SqlLockoutStore.migrate().pipe(
      Effect.zipRight(SqlLockoutStore.make()),
      Effect.flatMap(lapsedPlacesCount),
      Effect.provide(sqlite())
    ))

  it.live("a lock that lapsed places set is answered by the first operation that finds it, and by no later one", () =>
    SqlLockoutStore.migrate().pipe(
      Effect.zipRight(SqlLockoutStore.make()),
      Effect.flatMap(lapsedLockFoundOnce),
      Effect.provide(sqlite())
    ))

  it.live("a lock that lapsed places set publishes one LockedOut, also when two instances find it at once", () =>
    SqlLockoutStore.migrate().pipe(
      Effect.zipRight(SqlLockoutStore.make()),
      Effect.flatMap(lapsedLockPublishedOnce),
      Effect.provide(sqlite())
    ))

  it.live("reset finds a name's and an address's rows in the database, without reading every row", () =>
    SqlLockoutStore.migrate().pipe(
      Effect.zipRight(SqlLockoutStore.make()),
      Effect.flatMap(resetFindsItsKeys),
      Effect.provide(sqlite())
    ))

  it.live("refused attempts with fresh names from a locked address leave no row behind", () =>
    refusedAttemptsLeaveNoRow().pipe(Effect.provide(sqlite())))

  it.live("a caller cut off while the store counts its attempt: the attempt still runs and is settled (3 correct logins cut off, the 4th gets in)", () =>
    SqlLockoutStore.migrate().pipe(
      Effect.zipRight(SqlLockoutStore.make()),
      Effect.flatMap((store) => Effect.scoped(cutOffWhileCounting(store))),
      Effect.provide(sqlite())
    ))

  it.live("back-off: each further lock lasts backOff times the previous one", () =>
    Effect.gen(function*() {
      const store = yield* SqlLockoutStore.make()
      yield* SqlLockoutStore.migrate()
      const policy = { limit: 1, coolOff: 1000, backOff: 3, maxCoolOff: 100_000, forgetAfter: 100_000 }
      expect(yield* store.attempt(["username:frank"], 0, policy)).toMatchObject({ _tag: "Allowed" })
      expect(yield* store.fail(["username:frank"], 0, policy)).toEqual({ locked: ["username:frank"], until: 1000 })
      expect(yield* store.attempt(["username:frank"], 500, policy)).toEqual({ _tag: "Locked", retryAfter: 500 })
      expect(yield* store.attempt(["username:frank"], 1000, policy)).toMatchObject({ _tag: "Allowed" })
      expect(yield* store.fail(["username:frank"], 1000, policy)).toEqual({ locked: ["username:frank"], until: 4000 })
      // Once the lock ran out: a place held is busy for the next attempt (limit 1) until the
      // first settles; a refund gives it back and counts nothing.
      expect(yield* store.attempt(["username:frank"], 4000, policy)).toMatchObject({ _tag: "Allowed" })
      expect(yield* store.attempt(["username:frank"], 4000, policy)).toEqual({ _tag: "Busy" })
      yield* store.refund(["username:frank"], 4000, policy)
      expect(yield* store.attempt(["username:frank"], 4000, policy)).toMatchObject({ _tag: "Allowed" })
    }).pipe(Effect.provide(sqlite())))

  it.effect("a bad table prefix is an AuthConfigError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(SqlLockoutStore.tables({ tablePrefix: "Bad-Prefix" }))
      expect(error._tag).toBe("AuthConfigError")
    }))
})
