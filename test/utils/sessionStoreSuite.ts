// The one behaviour suite every SessionStore implementation must pass (memory, SQLite, PostgreSQL, Redis).
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as AuthService from "../../src/AuthService.js"
import * as Session from "../../src/Session.js"
import * as SessionStore from "../../src/SessionStore.js"
import * as TestAuth from "../../src/testing/TestAuth.js"
import * as TestBackend from "../../src/testing/TestBackend.js"
import { hostile } from "./hostile.js"

export interface SessionStoreSuiteOptions {
  /** A fresh, empty store per call. */
  readonly layer: () => Layer.Layer<SessionStore.SessionStore, unknown>
  /** Skip the whole suite: its server is missing (test/setup/services.ts has said so, loudly). */
  readonly skip?: boolean
  /** The store expires records by itself (Redis TTL): `deleteExpired` answers 0. */
  readonly expiresItself?: boolean
}

// Real epoch times: Redis turns `expiresAt - now` into a TTL, so records live a minute at most.
const T0 = 1_700_000_000_000

export const record = (fields: Partial<SessionStore.SessionRecord> = {}): SessionStore.SessionRecord => ({
  userId: "42",
  backendId: "model",
  authHash: "aGFzaA",
  csrfToken: "Y3NyZg",
  createdAt: T0,
  lastSeenAt: T0,
  expiresAt: T0 + 60_000,
  ...fields
})

/** Every exit is a failure with a SessionStoreError (not a defect, not a success). */
export const expectStoreErrors = (exits: ReadonlyArray<Exit.Exit<unknown, { readonly _tag: string }>>) => {
  for (const exit of exits) {
    expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("SessionStoreError")
  }
}

export const sessionStoreSuite = (name: string, options: SessionStoreSuiteOptions) =>
  describe.skipIf(options.skip === true)(`SessionStore suite: ${name}`, () => {
    const withStore = <A, E>(f: (store: SessionStore.Service) => Effect.Effect<A, E>) =>
      Effect.flatMap(SessionStore.SessionStore, f).pipe(Effect.provide(options.layer()))

    it.live("stores a record and reads it back", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const r = record({ userId: "7", backendId: "ldap", authHash: "", csrfToken: "tok" })
          yield* store.set("k1", r, T0)
          expect(Option.getOrThrow(yield* store.get("k1", T0 + 1))).toEqual(r)
          expect(Option.isNone(yield* store.get("k2", T0))).toBe(true)
        })
      ))

    it.live("keeps the degraded flag of a login, through set and replace", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const r = record({ degraded: true })
          yield* store.set("d", r, T0)
          expect(Option.getOrThrow(yield* store.get("d", T0 + 1))).toEqual(r)
          expect(yield* store.replace("d", record({ lastSeenAt: T0 + 5 }), T0 + 5)).toBe(true)
          expect(Option.getOrThrow(yield* store.get("d", T0 + 6)).degraded).toBeUndefined()
        })
      ))

    it.live("keeps the second factor of a stepped-up session, through set and replace", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const first = record()
          yield* store.set("m", first, T0)
          expect(Option.getOrThrow(yield* store.get("m", T0 + 1)).secondFactor).toBeUndefined()
          const stepped = record({ secondFactor: "totp", lastSeenAt: T0 + 2 })
          expect(yield* store.replace("m", stepped, T0 + 2)).toBe(true)
          expect(Option.getOrThrow(yield* store.get("m", T0 + 3))).toEqual(stepped)
          yield* store.set("m2", stepped, T0 + 3)
          expect(Option.getOrThrow(yield* store.get("m2", T0 + 4)).secondFactor).toBe("totp")
        })
      ))

    // The login's choice of cookie: `true` ends with the browser, `false` lasts whatever the
    // site-wide default, absent follows it. A store that dropped it (the SQL store's columns had
    // no place for it) turned "remember me" unticked into a lasting cookie at the next request.
    it.live("keeps a login's choice of cookie (ends with the browser, lasts, or the site's default), through set and replace", () =>
      withStore((store) =>
        Effect.gen(function*() {
          for (const [key, choice] of [["close", true], ["last", false]] as const) {
            const r = record({ expireAtBrowserClose: choice })
            yield* store.set(key, r, T0)
            expect(Option.getOrThrow(yield* store.get(key, T0 + 1))).toEqual(r)
            const touched = record({ expireAtBrowserClose: choice, lastSeenAt: T0 + 5 })
            expect(yield* store.replace(key, touched, T0 + 5)).toBe(true)
            expect(Option.getOrThrow(yield* store.get(key, T0 + 6))).toEqual(touched)
          }
          // Absent stays absent: it is no `false`.
          yield* store.set("default", record(), T0)
          expect(Option.getOrThrow(yield* store.get("default", T0 + 1))).not.toHaveProperty("expireAtBrowserClose")
          expect(yield* store.replace("close", record({ lastSeenAt: T0 + 7 }), T0 + 7)).toBe(true)
          expect(Option.getOrThrow(yield* store.get("close", T0 + 8))).not.toHaveProperty("expireAtBrowserClose")
        })
      ))

    it.live("keeps which device the second factor was verified against, through set and replace", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const stepped = record({ secondFactor: "totp", secondFactorDevice: "x".repeat(43) })
          yield* store.set("f", stepped, T0)
          expect(Option.getOrThrow(yield* store.get("f", T0 + 1))).toEqual(stepped)
          const other = record({ secondFactor: "totp", secondFactorDevice: "y".repeat(43), lastSeenAt: T0 + 2 })
          expect(yield* store.replace("f", other, T0 + 2)).toBe(true)
          expect(Option.getOrThrow(yield* store.get("f", T0 + 3))).toEqual(other)
          expect(yield* store.replace("f", record({ lastSeenAt: T0 + 4 }), T0 + 4)).toBe(true)
          expect(Option.getOrThrow(yield* store.get("f", T0 + 5)).secondFactorDevice).toBeUndefined()
        })
      ))

    it.live("keeps keys apart", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* store.set("a", record({ userId: "1" }), T0)
          yield* store.set("b", record({ userId: "2" }), T0)
          expect(Option.getOrThrow(yield* store.get("a", T0)).userId).toBe("1")
          expect(Option.getOrThrow(yield* store.get("b", T0)).userId).toBe("2")
          yield* store.delete("a")
          expect(Option.isSome(yield* store.get("b", T0))).toBe(true)
        })
      ))

    it.live("a record is gone from its expiresAt on", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* store.set("k", record({ expiresAt: T0 + 10_000 }), T0)
          expect(Option.isSome(yield* store.get("k", T0 + 9_999))).toBe(true)
          expect(Option.isNone(yield* store.get("k", T0 + 10_000))).toBe(true)
          expect(Option.isNone(yield* store.get("k", T0 + 20_000))).toBe(true)
        })
      ))

    it.live("set replaces a record; an already expired record is not stored", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* store.set("k", record({ userId: "1" }), T0)
          yield* store.set("k", record({ userId: "2" }), T0)
          expect(Option.getOrThrow(yield* store.get("k", T0)).userId).toBe("2")
          yield* store.set("k", record({ expiresAt: T0 }), T0)
          expect(Option.isNone(yield* store.get("k", T0 - 1))).toBe(true)
          yield* store.set("dead", record({ expiresAt: T0 - 1 }), T0)
          expect(Option.isNone(yield* store.get("dead", T0 - 10))).toBe(true)
        })
      ))

    it.live("replace writes only over a live record", () =>
      withStore((store) =>
        Effect.gen(function*() {
          expect(yield* store.replace("missing", record(), T0)).toBe(false)
          expect(Option.isNone(yield* store.get("missing", T0))).toBe(true)

          yield* store.set("k", record({ lastSeenAt: T0 }), T0)
          const touched = record({ lastSeenAt: T0 + 5_000, expiresAt: T0 + 50_000, authHash: "bmV3" })
          expect(yield* store.replace("k", touched, T0 + 5_000)).toBe(true)
          expect(Option.getOrThrow(yield* store.get("k", T0 + 5_000))).toEqual(touched)

          // Past its expiry the record is dead: refreshing it must not bring it back.
          yield* store.set("old", record({ expiresAt: T0 + 1_000 }), T0)
          expect(yield* store.replace("old", record({ expiresAt: T0 + 50_000 }), T0 + 1_000)).toBe(false)
          expect(Option.isNone(yield* store.get("old", T0 + 1_000))).toBe(true)

          // Deleted (logged out elsewhere): same.
          yield* store.set("gone", record(), T0)
          yield* store.delete("gone")
          expect(yield* store.replace("gone", record(), T0)).toBe(false)
          expect(Option.isNone(yield* store.get("gone", T0))).toBe(true)
        })
      ))

    it.live("replace with an expired record removes the live one", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* store.set("k", record(), T0)
          expect(yield* store.replace("k", record({ expiresAt: T0 + 100 }), T0 + 100)).toBe(true)
          expect(Option.isNone(yield* store.get("k", T0))).toBe(true)
        })
      ))

    it.live("delete answers whether there was a record", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* store.set("k", record(), T0)
          expect(yield* store.delete("k")).toBe(true)
          expect(yield* store.delete("k")).toBe(false)
          expect(Option.isNone(yield* store.get("k", T0))).toBe(true)
        })
      ))

    it.live("deleteExpired removes expired records only", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* store.set("short", record({ expiresAt: T0 + 1_000 }), T0)
          yield* store.set("long", record({ expiresAt: T0 + 50_000 }), T0)
          const removed = yield* store.deleteExpired(T0 + 2_000)
          expect(removed).toBe(options.expiresItself ? 0 : 1)
          if (!options.expiresItself) expect(Option.isNone(yield* store.get("short", T0))).toBe(true)
          expect(Option.isSome(yield* store.get("long", T0 + 2_000))).toBe(true)
        })
      ))

    it.live("bad keys, records and times are a SessionStoreError, never a defect", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const exits = yield* Effect.all([
            Effect.exit(store.get("", T0)),
            Effect.exit(store.get("a b", T0)),
            Effect.exit(store.get("x".repeat(129), T0)),
            Effect.exit(store.set("k", { ...record(), userId: "" }, T0)),
            // text no engine keeps as it is (PostgreSQL's driver wrote a lone surrogate as U+FFFD:
            // the user "\uD800" came back as the user "\uFFFD")
            Effect.exit(store.set("k", { ...record(), userId: "\uD800" }, T0)),
            Effect.exit(store.set("k", { ...record(), backendId: "model\uDC00" }, T0)),
            Effect.exit(store.set("k", { ...record(), userId: "1\u0000" }, T0)),
            Effect.exit(store.set("k", { ...record(), secondFactor: "totp\uD800" }, T0)),
            Effect.exit(store.set("k", { ...record(), extra: 1 } as SessionStore.SessionRecord, T0)),
            Effect.exit(store.set("k", record({ createdAt: -1 }), T0)),
            Effect.exit(store.replace("k", record({ expiresAt: 1.5 }), T0)),
            Effect.exit(store.get("k", Number.NaN)),
            Effect.exit(store.delete("k/..")),
            Effect.exit(store.deleteExpired(-5))
          ])
          expectStoreErrors(exits)
          expect(Option.isNone(yield* store.get("k", T0))).toBe(true)
        })
      ))

    it.live("an undefined record or time, or one that throws when read, is a SessionStoreError and writes nothing", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const live = record({ userId: "7" })
          yield* store.set("live", live, T0)
          const throwing = Object.defineProperty({ ...record() }, "expiresAt", {
            get() {
              throw new Error("getter")
            },
            enumerable: true
          })
          // Untyped callers: `undefined` was taken for "this operation has no record / no time".
          const bad = [
            () => store.set("k", undefined as any, T0),
            () => store.replace("live", undefined as any, T0),
            () => store.set("k", record(), undefined as any),
            () => store.replace("live", record({ userId: "8" }), undefined as any),
            () => store.get("live", undefined as any),
            () => store.deleteExpired(undefined as any),
            () => store.set("k", hostile(), T0),
            () => store.replace("live", throwing, T0),
            () => store.set(hostile(), record(), T0),
            ...(store.isLive === undefined ? [] : [() => store.isLive!("live", undefined as any)]),
            ...(store.cycle === undefined ? [] : [
              () => store.cycle!("live", "k", undefined as any, T0),
              () => store.cycle!("live", "k", record(), undefined as any)
            ])
          ]
          // Effect.suspend: a call that throws before it answers with an Effect is a defect too.
          expectStoreErrors(yield* Effect.forEach(bad, (call) => Effect.exit(Effect.suspend(call))))
          expect(Option.isNone(yield* store.get("k", T0))).toBe(true)
          expect(Option.getOrThrow(yield* store.get("live", T0))).toEqual(live)
        })
      ))

    // Session's cycle after a key rotation (Django's get_user cycles the key of a session verified
    // by a fallback secret) is a write of the new session and a delete of the old one: the delete's
    // answer decides which of the requests that read the old id at once moves it.
    it.live("Session over the store: a session verified under a fallback secret moves to a new id; of requests at once, one wins", () =>
      Effect.gen(function*() {
        const keys: Array<string> = []
        const inner = Context.get(yield* Layer.build(options.layer()), SessionStore.SessionStore)
        const store: SessionStore.Service = {
          ...inner,
          set: (key, record, now) => Effect.zipRight(Effect.sync(() => keys.push(key)), inner.set(key, record, now))
        }
        const alice = { ...TestBackend.user("alice"), passwordHash: Redacted.make("pbkdf2_sha256$1$salt$alice") }
        const sessions = (secrets: Pick<Session.Options, "secret" | "fallbackSecrets">) =>
          Session.layer(secrets).pipe(
            Layer.provideMerge(TestAuth.layer([TestBackend.succeed("sso", alice)])),
            Layer.provide(Layer.succeed(SessionStore.SessionStore, store))
          )
        const before = Redacted.make("the secret before the rotation, long enough")
        const after = Redacted.make("the secret after the rotation, long enough")
        const started = yield* Effect.flatMap(AuthService.authenticate({ token: "t" }), (a) => Session.login(a)).pipe(
          Effect.provide(sessions({ secret: before }))
        )
        const outcomes = yield* Effect.all(
          Array.from({ length: 10 }, () => Session.currentUser(started.sessionId)),
          { concurrency: "unbounded" }
        ).pipe(Effect.provide(sessions({ secret: after, fallbackSecrets: [before] })))
        const winners = outcomes.filter(Option.isSome).map((o) => o.value)
        expect(winners).toHaveLength(1)
        const moved = winners[0]!
        expect(Redacted.value(moved.sessionId)).not.toBe(Redacted.value(started.sessionId))
        expect(Redacted.value(moved.csrfToken)).toBe(Redacted.value(started.csrfToken))
        const now = yield* Clock.currentTimeMillis
        const live = yield* Effect.filter(keys, (key) => Effect.map(store.get(key, now), Option.isSome))
        expect(live).toHaveLength(1)
        expect(live[0]).not.toBe(keys[0])
        // Under the new secret alone, the new id is the session.
        const found = yield* Session.currentUser(moved.sessionId).pipe(Effect.provide(sessions({ secret: after })))
        expect(Option.map(found, (s) => Redacted.value(s.sessionId))).toEqual(Option.some(Redacted.value(moved.sessionId)))
      }).pipe(Effect.scoped))

    it.live("many concurrent sessions each read back their own record", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const keys = Array.from({ length: 40 }, (_, i) => `key_${i}`)
          yield* Effect.forEach(keys, (k, i) => store.set(k, record({ userId: String(i + 1) }), T0), {
            concurrency: "unbounded"
          })
          const read = yield* Effect.forEach(keys, (k) => store.get(k, T0), { concurrency: "unbounded" })
          expect(read.map((r) => Option.getOrThrow(r).userId)).toEqual(keys.map((_, i) => String(i + 1)))
        })
      ))
  })
