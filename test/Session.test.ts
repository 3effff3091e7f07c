import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as AuthBackend from "../src/AuthBackend.js"
import * as AuthError from "../src/AuthError.js"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as MemorySessionStore from "../src/MemorySessionStore.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as PasswordResetToken from "../src/PasswordResetToken.js"
import * as Session from "../src/Session.js"
import * as SessionStore from "../src/SessionStore.js"
import * as TestAuth from "../src/testing/TestAuth.js"
import type { BaseUser } from "../src/User.js"
import * as UserStore from "../src/UserStore.js"
import { hostile } from "./utils/hostile.js"
import { expectStoreErrors } from "./utils/sessionStoreSuite.js"

const secret = Redacted.make("a-very-long-secret-for-the-tests-0001")
const newSecret = Redacted.make("a-very-long-secret-for-the-tests-0002")

interface Account extends BaseUser {
  readonly passwordHash?: Redacted.Redacted<string> | undefined
}

// A backend over a mutable user table: tests change passwords, delete users, take it down.
const makeDirectory = (id = "local") => {
  const users = new Map<string, Account>()
  let down = false
  // When set, getUser first waits on it (a backend that stops answering).
  let stall: Effect.Effect<void> | undefined
  const backend = AuthBackend.make({
    id,
    credentials: Schema.Struct({ username: Schema.String }),
    authenticate: ({ username }) => {
      const user = [...users.values()].find((u) => u.username === username)
      return user === undefined
        ? Effect.fail(new AuthError.NoMatch({ backend: id, reason: "unknown-user" }))
        : Effect.succeed(user)
    },
    getUser: (userId) =>
      Effect.zipRight(
        stall ?? Effect.void,
        Effect.suspend(() =>
          down
            ? Effect.fail(new AuthError.TransportError({ backend: id, cause: "down" }))
            : Effect.succeed(Option.fromNullable(users.get(userId)))
        )
      )
  })
  return {
    backend,
    add: (username: string, passwordHash: string | undefined = `pbkdf2_sha256$1$salt$${username}`) => {
      const user: Account = {
        id: String(users.size + 1),
        username,
        isActive: true,
        isSuperuser: false,
        ...(passwordHash === undefined ? {} : { passwordHash: Redacted.make(passwordHash) })
      }
      users.set(user.id, user)
      return user
    },
    setPasswordHash: (user: Account, hash: string | undefined) => {
      const { passwordHash: _, ...rest } = users.get(user.id)!
      const next: Account = hash === undefined ? rest : { ...rest, passwordHash: Redacted.make(hash) }
      users.set(user.id, next)
      return next
    },
    remove: (user: Account) => users.delete(user.id),
    setDown: (value: boolean) => {
      down = value
    },
    setStall: (value: Effect.Effect<void> | undefined) => {
      stall = value
    }
  }
}

// A memory store that also records every key it was given.
const recordingStore = () => {
  const keys: Array<string> = []
  const layer = Layer.effect(
    SessionStore.SessionStore,
    Effect.map(MemorySessionStore.make, (store): SessionStore.Service => ({
      ...store,
      set: (key, record, now) => {
        keys.push(key)
        return store.set(key, record, now)
      }
    }))
  )
  return { keys, layer }
}

const setup = (
  options: Partial<Session.Options> = {},
  directory = makeDirectory(),
  store: Layer.Layer<SessionStore.SessionStore> = MemorySessionStore.layer
) =>
  Session.layer({ secret, ...options }).pipe(
    Layer.provideMerge(TestAuth.layer([directory.backend])),
    Layer.provideMerge(store)
  )

const loginAs = (username: string, sessionId?: string) =>
  Effect.flatMap(AuthService.authenticateUnknown({ username }), (authenticated) =>
    Session.login(authenticated, sessionId === undefined ? {} : { sessionId }))

const idOf = (s: Session.SessionUser) => Redacted.value(s.sessionId)
const current = (id: string) => Effect.map(Session.currentUser(id), Option.map((s) => s.user.username))

describe("Session", () => {
  it.effect("login issues 32 random bytes, base64url, and a CSRF token; the store sees only a digest", () => {
    const directory = makeDirectory()
    directory.add("alice")
    const recording = recordingStore()
    return Effect.gen(function*() {
      const a = yield* loginAs("alice")
      const b = yield* loginAs("alice")
      expect(idOf(a)).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(Buffer.from(idOf(a), "base64url").length).toBe(32)
      expect(Redacted.value(a.csrfToken)).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(idOf(a)).not.toBe(idOf(b))
      expect(recording.keys).toHaveLength(2)
      expect(recording.keys).not.toContain(idOf(a))
      expect(recording.keys).not.toContain(idOf(b))
      expect(String(a.sessionId)).toBe("<redacted>")
    }).pipe(Effect.provide(setup({}, directory, recording.layer)))
  })

  it.effect("currentUser loads the user from the backend that authenticated the session", () => {
    const directory = makeDirectory()
    directory.add("alice")
    return Effect.gen(function*() {
      const started = yield* loginAs("alice")
      const found = Option.getOrThrow(yield* Session.currentUser(started.sessionId))
      expect(found.user.username).toBe("alice")
      expect(found.backend).toBe("local")
      expect(Redacted.value(found.csrfToken)).toBe(Redacted.value(started.csrfToken))
    }).pipe(Effect.provide(setup({}, directory)))
  })

  it.effect("an id the client chose is never adopted (no session fixation)", () => {
    const directory = makeDirectory()
    directory.add("alice")
    return Effect.gen(function*() {
      const chosen = "A".repeat(43)
      const started = yield* loginAs("alice", chosen)
      expect(idOf(started)).not.toBe(chosen)
      expect(Option.isNone(yield* Session.currentUser(chosen))).toBe(true)
      expect(yield* current(idOf(started))).toEqual(Option.some("alice"))
    }).pipe(Effect.provide(setup({}, directory)))
  })

  it.effect("logging in again as the same user issues a new id and kills the old one", () => {
    const directory = makeDirectory()
    directory.add("alice")
    return Effect.gen(function*() {
      const first = yield* loginAs("alice")
      const second = yield* loginAs("alice", idOf(first))
      expect(idOf(second)).not.toBe(idOf(first))
      expect(Redacted.value(second.csrfToken)).not.toBe(Redacted.value(first.csrfToken))
      expect(Option.isNone(yield* Session.currentUser(first.sessionId))).toBe(true)
      expect(yield* current(idOf(second))).toEqual(Option.some("alice"))
    }).pipe(Effect.provide(setup({}, directory)))
  })

  it.effect("logging in as another user over a live session flushes it", () => {
    const directory = makeDirectory()
    directory.add("alice")
    directory.add("bob")
    return Effect.gen(function*() {
      const alice = yield* loginAs("alice")
      const bob = yield* loginAs("bob", idOf(alice))
      expect(Option.isNone(yield* Session.currentUser(alice.sessionId))).toBe(true)
      expect(yield* current(idOf(bob))).toEqual(Option.some("bob"))
    }).pipe(Effect.provide(setup({}, directory)))
  })

  it.effect("logging in over a session whose auth hash is stale starts a fresh one", () => {
    const directory = makeDirectory()
    const alice = directory.add("alice", "hash-1")
    return Effect.gen(function*() {
      const before = yield* loginAs("alice")
      directory.setPasswordHash(alice, "hash-2")
      const after = yield* loginAs("alice", idOf(before))
      expect(idOf(after)).not.toBe(idOf(before))
      expect(Option.isNone(yield* Session.currentUser(before.sessionId))).toBe(true)
      expect(yield* current(idOf(after))).toEqual(Option.some("alice"))
    }).pipe(Effect.provide(setup({}, directory)))
  })

  it.effect("a password change logs out every session started with the old password, and flushes them", () => {
    const directory = makeDirectory()
    const alice = directory.add("alice", "hash-1")
    const recording = recordingStore()
    return Effect.gen(function*() {
      const phone = yield* loginAs("alice")
      const laptop = yield* loginAs("alice")
      directory.setPasswordHash(alice, "hash-2")
      expect(Option.isNone(yield* Session.currentUser(phone.sessionId))).toBe(true)
      expect(Option.isNone(yield* Session.currentUser(laptop.sessionId))).toBe(true)
      // Flushed, not just refused: changing the password back does not revive them.
      directory.setPasswordHash(alice, "hash-1")
      expect(Option.isNone(yield* Session.currentUser(phone.sessionId))).toBe(true)
      const store = yield* SessionStore.SessionStore
      for (const key of recording.keys) expect(Option.isNone(yield* store.get(key, 0))).toBe(true)
    }).pipe(Effect.provide(setup({}, directory, recording.layer)))
  })

  it.effect("updateSessionAuthHash keeps one's own session (new id) while the others end", () => {
    const directory = makeDirectory()
    const alice = directory.add("alice", "hash-1")
    return Effect.gen(function*() {
      const here = yield* loginAs("alice")
      const elsewhere = yield* loginAs("alice")
      const changed = directory.setPasswordHash(alice, "hash-2")
      const kept = Option.getOrThrow(yield* Session.updateSessionAuthHash(here.sessionId, changed))
      expect(idOf(kept)).not.toBe(idOf(here))
      expect(Redacted.value(kept.csrfToken)).toBe(Redacted.value(here.csrfToken))
      expect(yield* current(idOf(kept))).toEqual(Option.some("alice"))
      expect(Option.isNone(yield* Session.currentUser(here.sessionId))).toBe(true)
      expect(Option.isNone(yield* Session.currentUser(elsewhere.sessionId))).toBe(true)
    }).pipe(Effect.provide(setup({}, directory)))
  })

  // A memory store whose `set` stops, once armed, before writing: a request that has read its
  // session is held between that read and the write of the session's successor.
  const pausingStore = Effect.gen(function*() {
    const store = yield* MemorySessionStore.make
    const reached = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    let armed = false
    const paused: SessionStore.Service = {
      ...store,
      set: (key, record, now) =>
        Effect.suspend(() => {
          if (!armed) return store.set(key, record, now)
          armed = false
          return Effect.zipRight(Effect.zipRight(Deferred.succeed(reached, undefined), Deferred.await(release)), store.set(key, record, now))
        })
    }
    return { layer: Layer.succeed(SessionStore.SessionStore, paused), arm: () => (armed = true), reached, release }
  })
  type Pausing = Effect.Effect.Success<typeof pausingStore>

  // alice in the directory, and the sessions on a pausing store
  const withPausingStore = <A, E, R>(body: (pausing: Pausing) => Effect.Effect<A, E, R>) => {
    const directory = makeDirectory()
    directory.add("alice")
    return Effect.flatMap(pausingStore, (pausing) => body(pausing).pipe(Effect.provide(setup({}, directory, pausing.layer))))
  }

  for (const [name, next] of [
    ["stepUp", (id: Redacted.Redacted<string>) =>
      Effect.flatMap(AuthService.authenticateUnknown({ username: "alice" }), (a) => Session.stepUp(id, a))],
    ["updateSessionAuthHash", (id: Redacted.Redacted<string>) =>
      Effect.flatMap(AuthService.getUser("local", "1"), (user) => Session.updateSessionAuthHash(id, Option.getOrThrow(user)))]
  ] as const) {
    it.effect(`a logout while ${name} runs on the same session wins: no successor session outlives it`, () =>
      withPausingStore((pausing) =>
        Effect.gen(function*() {
          const started = yield* loginAs("alice")
          pausing.arm()
          // the request has read the live session and stops before writing its successor
          const running = yield* Effect.fork(next(started.sessionId))
          yield* Deferred.await(pausing.reached)
          yield* Session.logout(started.sessionId)
          yield* Deferred.succeed(pausing.release, undefined)
          const successor = yield* Fiber.join(running)
          // Before: the successor was stored after the logout and its cookie logged the user back in.
          if (Option.isSome(successor)) expect(Option.isNone(yield* Session.currentUser(successor.value.sessionId))).toBe(true)
          expect(Option.isNone(successor)).toBe(true)
        })
      ))
  }

  it.effect("of two step-ups of one session that ran at once, one successor lives", () =>
    withPausingStore((pausing) =>
      Effect.gen(function*() {
        const started = yield* loginAs("alice")
        const authenticated = yield* AuthService.authenticateUnknown({ username: "alice" })
        pausing.arm()
        const first = yield* Effect.fork(Session.stepUp(started.sessionId, authenticated))
        yield* Deferred.await(pausing.reached)
        const second = yield* Session.stepUp(started.sessionId, authenticated)
        yield* Deferred.succeed(pausing.release, undefined)
        const outcomes = [second, yield* Fiber.join(first)]
        const live = []
        for (const outcome of outcomes) {
          if (Option.isSome(outcome) && Option.isSome(yield* Session.currentUser(outcome.value.sessionId))) live.push(outcome)
        }
        expect(live).toHaveLength(1)
        expect(outcomes.filter(Option.isSome)).toHaveLength(1)
      })
    ))

  it.effect("updateSessionAuthHash leaves another user's session alone", () => {
    const directory = makeDirectory()
    directory.add("alice")
    const bob = directory.add("bob")
    return Effect.gen(function*() {
      const alice = yield* loginAs("alice")
      expect(Option.isNone(yield* Session.updateSessionAuthHash(alice.sessionId, bob))).toBe(true)
      expect(Option.isNone(yield* Session.updateSessionAuthHash(undefined, bob))).toBe(true)
      expect(yield* current(idOf(alice))).toEqual(Option.some("alice"))
    }).pipe(Effect.provide(setup({}, directory)))
  })

  it.effect("a backend no longer configured, or a user it no longer knows, means anonymous", () =>
    Effect.gen(function*() {
      const old = makeDirectory("old")
      old.add("alice")
      const other = makeDirectory("other")
      const gone = old.add("gone")
      const store = yield* Layer.build(MemorySessionStore.layer)
      const storeLayer = Layer.succeedContext(store)
      const started = yield* loginAs("alice").pipe(Effect.provide(setup({}, old, storeLayer)))
      const leaving = yield* loginAs("gone").pipe(Effect.provide(setup({}, old, storeLayer)))
      // The next deployment dropped the "old" backend: same store, other chain.
      expect(Option.isNone(yield* Session.currentUser(started.sessionId).pipe(Effect.provide(setup({}, other, storeLayer)))))
        .toBe(true)
      old.remove(gone)
      expect(Option.isNone(yield* Session.currentUser(leaving.sessionId).pipe(Effect.provide(setup({}, old, storeLayer)))))
        .toBe(true)
      // Still there: anonymous is not a flush (Django keeps the session too).
      expect(yield* current(idOf(started)).pipe(Effect.provide(setup({}, old, storeLayer)))).toEqual(Option.some("alice"))
    }).pipe(Effect.scoped))

  it.effect("secret rotation: a fallback secret still verifies, and the session moves to a new id signed with the new secret", () =>
    Effect.gen(function*() {
      const directory = makeDirectory()
      directory.add("alice")
      const store = Layer.succeedContext(yield* Layer.build(MemorySessionStore.layer))
      const withOld = setup({ secret }, directory, store)
      const rotating = setup({ secret: newSecret, fallbackSecrets: [secret] }, directory, store)
      const rotated = setup({ secret: newSecret }, directory, store)
      const a = yield* loginAs("alice").pipe(Effect.provide(withOld))
      const b = yield* loginAs("alice").pipe(Effect.provide(withOld))
      // Without the fallback, an old signature does not verify: flushed.
      expect(Option.isNone(yield* Session.currentUser(b.sessionId).pipe(Effect.provide(rotated)))).toBe(true)
      // With it, it verifies, and moves to a new id re-signed with the new secret...
      const moved = Option.getOrThrow(yield* Session.currentUser(a.sessionId).pipe(Effect.provide(rotating)))
      expect(moved.user.username).toBe("alice")
      expect(idOf(moved)).not.toBe(idOf(a))
      // ...so it survives the fallback's removal, under its new id only.
      expect(yield* current(idOf(moved)).pipe(Effect.provide(rotated))).toEqual(Option.some("alice"))
      expect(yield* current(idOf(a)).pipe(Effect.provide(rotating))).toEqual(Option.none())
    }).pipe(Effect.scoped))

  // Django's get_user: a hash verified by a fallback secret cycles the key (cycle_key keeps the
  // session's data) and stores the current hash.
  it.effect("a session verified under a fallback secret moves to a new id as Django's cycle_key does: token and login time kept, old id dead, one session left", () =>
    Effect.gen(function*() {
      const directory = makeDirectory()
      directory.add("alice")
      const recording = recordingStore()
      const store = Layer.succeedContext(yield* Layer.build(recording.layer))
      const withOld = setup({ secret, maxAge: "1 day" }, directory, store)
      const rotating = setup({ secret: newSecret, fallbackSecrets: [secret], maxAge: "1 day" }, directory, store)
      const started = yield* loginAs("alice").pipe(Effect.provide(withOld))
      yield* TestClock.adjust("2 hours")
      const moved = Option.getOrThrow(yield* Session.currentUser(started.sessionId).pipe(Effect.provide(rotating)))
      expect(idOf(moved)).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(idOf(moved)).not.toBe(idOf(started))
      expect(Redacted.value(moved.csrfToken)).toBe(Redacted.value(started.csrfToken))
      // The cookie to send: to the end of the login it continues, not a day from now.
      expect(moved.cookieExpiresAt?.getTime()).toBe(24 * 3600_000)
      expect(moved.expiresAt.getTime()).toBe(24 * 3600_000)
      const sessions = yield* SessionStore.SessionStore.pipe(Effect.provide(store))
      const now = yield* Clock.currentTimeMillis
      const live = yield* Effect.filter(recording.keys, (key) => Effect.map(sessions.get(key, now), Option.isSome))
      expect(live).toHaveLength(1)
      expect(live[0]).not.toBe(recording.keys[0])
      // Served again under the new id as it is: no further move, no cookie.
      const again = Option.getOrThrow(yield* Session.currentUser(moved.sessionId).pipe(Effect.provide(rotating)))
      expect(idOf(again)).toBe(idOf(moved))
      expect(again.cookieExpiresAt).toBeUndefined()
      expect(yield* Effect.flatMap(Session.Session, (s) => s.csrfToken(moved.sessionId)).pipe(Effect.provide(rotating)))
        .toEqual(Option.some(moved.csrfToken))
    }).pipe(Effect.scoped))

  it.effect("a session that verifies under the current secret is only read: no write, no new id", () =>
    Effect.gen(function*() {
      const directory = makeDirectory()
      directory.add("alice")
      const calls: Array<string> = []
      const counting = Layer.effect(
        SessionStore.SessionStore,
        Effect.map(MemorySessionStore.make, (memory): SessionStore.Service => ({
          get: (key, now) => Effect.zipRight(Effect.sync(() => calls.push("get")), memory.get(key, now)),
          set: (key, record, now) => Effect.zipRight(Effect.sync(() => calls.push("set")), memory.set(key, record, now)),
          replace: (key, record, now) =>
            Effect.zipRight(Effect.sync(() => calls.push("replace")), memory.replace(key, record, now)),
          delete: (key) => Effect.zipRight(Effect.sync(() => calls.push("delete")), memory.delete(key)),
          deleteExpired: memory.deleteExpired
        }))
      )
      return yield* Effect.gen(function*() {
        const started = yield* loginAs("alice")
        calls.length = 0
        const found = Option.getOrThrow(yield* Session.currentUser(started.sessionId))
        expect(idOf(found)).toBe(idOf(started))
        expect(found.cookieExpiresAt).toBeUndefined()
        expect(calls).toEqual(["get"])
      }).pipe(Effect.provide(setup({ secret: newSecret, fallbackSecrets: [secret] }, directory, counting)))
    }))

  // Requests that read the old id at once (a page's parallel calls after a rotation): one moves
  // the session, the others read as anonymous, as a request reaching Django after its cycle_key
  // reads an empty session; never two live sessions, never a defect.
  it.effect("of requests that move one session at once, one wins; the others read as anonymous and leave nothing behind", () =>
    Effect.gen(function*() {
      const directory = makeDirectory()
      directory.add("alice")
      const memory = yield* MemorySessionStore.make
      const keys: Array<string> = []
      const reached = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      let armed = false
      // `set` records its key, and once armed stops before writing: the first request has read
      // the old session and holds before storing its successor.
      const paused: SessionStore.Service = {
        ...memory,
        set: (key, record, now) =>
          Effect.suspend(() => {
            keys.push(key)
            if (!armed) return memory.set(key, record, now)
            armed = false
            return Effect.zipRight(
              Effect.zipRight(Deferred.succeed(reached, undefined), Deferred.await(release)),
              memory.set(key, record, now)
            )
          })
      }
      const store = Layer.succeed(SessionStore.SessionStore, paused)
      const started = yield* loginAs("alice").pipe(Effect.provide(setup({ secret }, directory, store)))
      const rotating = setup({ secret: newSecret, fallbackSecrets: [secret] }, directory, store)
      yield* Effect.gen(function*() {
        armed = true
        const first = yield* Effect.fork(Session.currentUser(started.sessionId))
        // (a request that never stores a successor is not held)
        yield* Effect.raceFirst(Deferred.await(reached), Effect.asVoid(Fiber.await(first)))
        const second = yield* Session.currentUser(started.sessionId)
        yield* Deferred.succeed(release, undefined)
        const outcomes = [yield* Fiber.join(first), second]
        // Then many more at once, and a late one: the old id is dead.
        const more = yield* Effect.all(Array.from({ length: 8 }, () => Session.currentUser(started.sessionId)), {
          concurrency: "unbounded"
        })
        const winners = [...outcomes, ...more].filter(Option.isSome)
        expect(winners).toHaveLength(1)
        expect(idOf(winners[0]!.value)).not.toBe(idOf(started))
        expect(Option.isSome(second)).toBe(true)
        const now = yield* Clock.currentTimeMillis
        const live = yield* Effect.filter(keys, (key) => Effect.map(paused.get(key, now), Option.isSome))
        expect(live).toHaveLength(1)
        expect(yield* current(idOf(winners[0]!.value))).toEqual(Option.some("alice"))
      }).pipe(Effect.provide(rotating))
    }))

  it.effect("a user without a password hash has an unbound session, until a hash appears", () => {
    const directory = makeDirectory()
    const sso = directory.add("sso", undefined)
    return Effect.gen(function*() {
      const started = yield* loginAs("sso")
      expect(yield* current(idOf(started))).toEqual(Option.some("sso"))
      directory.setPasswordHash(sso, "now-has-one")
      expect(Option.isNone(yield* Session.currentUser(started.sessionId))).toBe(true)
    }).pipe(Effect.provide(setup({}, directory)))
  })

  it.effect("passwordHashOf chooses where the hash comes from", () => {
    const directory = makeDirectory()
    const alice = directory.add("alice", "hash-1")
    let salt = "a"
    return Effect.gen(function*() {
      const started = yield* loginAs("alice")
      directory.setPasswordHash(alice, "hash-2") // ignored by this passwordHashOf
      expect(yield* current(idOf(started))).toEqual(Option.some("alice"))
      salt = "b"
      expect(Option.isNone(yield* Session.currentUser(started.sessionId))).toBe(true)
    }).pipe(Effect.provide(setup({ passwordHashOf: (u) => Option.some(`${u.id}:${salt}`) }, directory)))
  })

  it.effect("maxAge is absolute: activity does not extend it", () => {
    const directory = makeDirectory()
    directory.add("alice")
    return Effect.gen(function*() {
      const started = yield* loginAs("alice")
      expect(started.expiresAt.getTime()).toBe(3_600_000)
      for (let i = 0; i < 5; i++) {
        yield* TestClock.adjust("11 minutes")
        expect(yield* current(idOf(started))).toEqual(Option.some("alice"))
      }
      yield* TestClock.adjust("5 minutes")
      expect(Option.isNone(yield* Session.currentUser(started.sessionId))).toBe(true)
    }).pipe(Effect.provide(setup({ maxAge: "1 hour" }, directory)))
  })

  it.effect("idleTimeout ends a session left alone; requests keep it alive", () => {
    const directory = makeDirectory()
    directory.add("alice")
    return Effect.gen(function*() {
      const busy = yield* loginAs("alice")
      const idle = yield* loginAs("alice")
      for (let i = 0; i < 6; i++) {
        yield* TestClock.adjust("20 minutes")
        expect(yield* current(idOf(busy))).toEqual(Option.some("alice"))
      }
      expect(Option.isNone(yield* Session.currentUser(idle.sessionId))).toBe(true)
      yield* TestClock.adjust("31 minutes")
      expect(Option.isNone(yield* Session.currentUser(busy.sessionId))).toBe(true)
    }).pipe(Effect.provide(setup({ idleTimeout: "30 minutes" }, directory)))
  })

  // The cookie is sent at login (and with a successor) only, never as the session is used: a
  // cookie that lapsed at the idle deadline logged an active user out `idleTimeout` after login.
  it.effect("the cookie lasts to the session's absolute end, never to its idle deadline", () => {
    const directory = makeDirectory()
    directory.add("alice")
    return Effect.gen(function*() {
      const started = yield* loginAs("alice")
      expect(started.expiresAt.getTime()).toBe(30 * 60_000)
      expect(started.cookieExpiresAt?.getTime()).toBe(24 * 3600_000)
      yield* TestClock.adjust("20 minutes")
      const user = Option.getOrThrow(yield* Session.currentUser(started.sessionId)).user
      const successor = Option.getOrThrow(yield* Session.updateSessionAuthHash(started.sessionId, user))
      expect(successor.expiresAt.getTime()).toBe(50 * 60_000)
      // the same login's end: a successor does not make the session younger
      expect(successor.cookieExpiresAt?.getTime()).toBe(24 * 3600_000)
    }).pipe(Effect.provide(setup({ idleTimeout: "30 minutes", maxAge: "1 day" }, directory)))
  })

  // "Remember me", as Django's set_expiry after login(): the login's choice is its session's, kept
  // through its requests, a password change and a second factor (the cookies sent with them are
  // made of it); a login that made none follows the site-wide default, Django's
  // SESSION_EXPIRE_AT_BROWSER_CLOSE. The session's end on the server is the same either way.
  for (const siteDefault of [false, true]) {
    it.effect(`a login's choice of cookie stays with its session; without one the site's default (${siteDefault}) decides`, () => {
      const directory = makeDirectory()
      const alice = directory.add("alice", "hash-1")
      const cookieOf = (s: Session.SessionUser) => s.expireAtBrowserClose === true ? "browser" : "lasting"
      return Effect.gen(function*() {
        const login = (options: Session.LoginOptions) =>
          Effect.flatMap(AuthService.authenticateUnknown({ username: "alice" }), (a) => Session.login(a, options))
        const byDefault = yield* login({})
        const forNow = yield* login({ expireAtBrowserClose: true })
        const lasting = yield* login({ expireAtBrowserClose: false })
        expect([byDefault, forNow, lasting].map(cookieOf)).toEqual([siteDefault ? "browser" : "lasting", "browser", "lasting"])
        expect(new Set([byDefault, forNow, lasting].map((s) => s.expiresAt.getTime()))).toEqual(new Set([30 * 60_000]))
        // a request that touches each session (its last-seen time is due)
        yield* TestClock.adjust("2 minutes")
        const touched = yield* Effect.forEach([byDefault, forNow, lasting], (s) =>
          Effect.map(Session.currentUser(s.sessionId), Option.getOrThrow))
        expect(touched.map(cookieOf)).toEqual([siteDefault ? "browser" : "lasting", "browser", "lasting"])
        // a second factor, then a password change: each a new id, the same choice
        const stepped = yield* Effect.forEach(touched, (s) =>
          Effect.flatMap(AuthService.authenticateUnknown({ username: "alice" }), (a) =>
            Effect.map(Session.stepUp(s.sessionId, a), Option.getOrThrow)))
        expect(stepped.map(cookieOf)).toEqual([siteDefault ? "browser" : "lasting", "browser", "lasting"])
        const changed = directory.setPasswordHash(alice, "hash-2")
        const kept = yield* Effect.forEach(stepped, (s) =>
          Effect.map(Session.updateSessionAuthHash(s.sessionId, changed), Option.getOrThrow))
        expect(kept.map(cookieOf)).toEqual([siteDefault ? "browser" : "lasting", "browser", "lasting"])
        expect(kept.map((s) => s.cookieExpiresAt?.getTime())).toEqual(Array(3).fill(24 * 3600_000))
        for (const s of kept) expect(yield* current(idOf(s))).toEqual(Option.some("alice"))
      }).pipe(Effect.provide(setup({ idleTimeout: "30 minutes", maxAge: "1 day", expireAtBrowserClose: siteDefault }, directory)))
    })
  }

  // A store shared with another app keeps that app's expiry too, and the app moves it when it
  // writes the session (a Django view's save sets expire_date to SESSION_COOKIE_AGE from then).
  // It never lifts maxAge or idleTimeout: the session is refused before it is served (it was
  // served once more, then deleted), and left in the store for the other app's own expiry.
  it.effect("a store's expiry moved later by another app's write lifts neither maxAge nor idleTimeout; past them the session is deleted", () => {
    const directory = makeDirectory()
    const alice = directory.add("alice")
    const recording = recordingStore()
    return Effect.gen(function*() {
      const store = yield* SessionStore.SessionStore
      const csrfToken = (session: Session.SessionUser) =>
        Effect.flatMap(Session.Session, (service) => service.csrfToken(session.sessionId))
      // what a Django save does to the session under `key`: the expiry two weeks from now
      const foreignSave = (key: string) =>
        Effect.gen(function*() {
          const now = yield* TestClock.currentTimeMillis
          const record = Option.getOrThrow(yield* store.get(key, now))
          yield* store.set(key, { ...record, expiresAt: now + 14 * 86_400_000 }, now)
        })
      const old = yield* loginAs("alice")
      const idle = yield* loginAs("alice")
      const busy = yield* loginAs("alice")
      const [oldKey, idleKey, busyKey] = recording.keys
      yield* foreignSave(oldKey!)
      yield* foreignSave(idleKey!)
      yield* foreignSave(busyKey!)
      // Within both: served, and the store's expiry is brought back to ours.
      yield* TestClock.adjust("10 minutes")
      expect(yield* current(idOf(busy))).toEqual(Option.some("alice"))
      expect(Option.getOrThrow(yield* store.get(busyKey!, 600_000)).expiresAt).toBe(600_000 + 1_800_000)
      // Past idleTimeout since effect-auth last saw it: refused, though the store held it, and
      // deleted (a store shared with Django: ended for Django's pages too).
      yield* TestClock.adjust("25 minutes")
      expect(Option.isSome(yield* store.get(idleKey!, 2_100_000))).toBe(true)
      expect(yield* current(idOf(idle))).toEqual(Option.none())
      expect(Option.isSome(yield* store.get(idleKey!, 2_100_000))).toBe(false)
      expect(yield* csrfToken(idle)).toEqual(Option.none())
      expect(yield* current(idOf(busy))).toEqual(Option.some("alice"))
      // Past maxAge, kept busy: refused by every reader, and deleted.
      yield* TestClock.adjust("20 minutes")
      expect(yield* current(idOf(busy))).toEqual(Option.some("alice"))
      yield* foreignSave(busyKey!)
      yield* foreignSave(oldKey!)
      yield* TestClock.adjust("20 minutes")
      expect(Option.isSome(yield* store.get(oldKey!, 4_500_000))).toBe(true)
      expect(Option.isSome(yield* store.get(busyKey!, 4_500_000))).toBe(true)
      for (const session of [old, busy]) {
        expect(yield* current(idOf(session))).toEqual(Option.none())
        expect(yield* csrfToken(session)).toEqual(Option.none())
        expect(yield* Session.updateSessionAuthHash(session.sessionId, alice)).toEqual(Option.none())
      }
      expect(Option.isSome(yield* store.get(oldKey!, 4_500_000))).toBe(false)
      expect(Option.isSome(yield* store.get(busyKey!, 4_500_000))).toBe(false)
    }).pipe(Effect.provide(setup({ maxAge: "1 hour", idleTimeout: "30 minutes" }, directory, recording.layer)))
  })

  it.effect("a logout of a session a password change ended names nobody, as Django's (its request.user is anonymous)", () => {
    const directory = makeDirectory()
    const alice = directory.add("alice", "hash-1")
    return Effect.gen(function*() {
      const stale = yield* loginAs("alice")
      const live = yield* loginAs("alice")
      const changed = directory.setPasswordHash(alice, "hash-2")
      yield* Session.logout(stale.sessionId)
      // A session whose hash holds still names its user (signed again after the change).
      const renewed = Option.getOrThrow(yield* Session.updateSessionAuthHash(live.sessionId, changed))
      yield* Session.logout(renewed.sessionId)
      const loggedOut = (yield* TestAuth.events).filter((e) => e._tag === "LoggedOut")
      expect(loggedOut.map((e) => e._tag === "LoggedOut" && Option.map(e.user, (u) => u.username))).toEqual([
        Option.none(),
        Option.some("alice")
      ])
      // Both sessions are gone all the same.
      expect(Option.isNone(yield* Session.currentUser(stale.sessionId))).toBe(true)
      expect(Option.isNone(yield* Session.currentUser(renewed.sessionId))).toBe(true)
    }).pipe(Effect.provide(setup({}, directory)))
  })

  it.effect("publishes LoggedIn and LoggedOut, also for an anonymous logout", () => {
    const directory = makeDirectory()
    directory.add("alice")
    return Effect.gen(function*() {
      const authenticated = yield* AuthService.authenticateUnknown({ username: "alice" })
      const request = { method: "POST", url: "/login" }
      const started = yield* Session.login(authenticated, { request })
      yield* Session.logout(started.sessionId, request)
      yield* Session.logout(undefined)
      const events = yield* TestAuth.events
      expect(events.map((e) => e._tag)).toEqual(["LoggedIn", "LoggedOut", "LoggedOut"])
      const [loggedIn, loggedOut, anonymous] = events
      expect(loggedIn).toMatchObject({ user: { username: "alice" }, backend: "local", request })
      expect(loggedOut?._tag === "LoggedOut" && Option.getOrThrow(loggedOut.user).username).toBe("alice")
      expect(anonymous?._tag === "LoggedOut" && Option.isNone(anonymous.user)).toBe(true)
      expect(Option.isNone(yield* Session.currentUser(started.sessionId))).toBe(true)
    }).pipe(Effect.provide(setup({}, directory)))
  })

  it.effect("logout works while the user's backend is down; currentUser then fails with TransportError", () => {
    const directory = makeDirectory()
    directory.add("alice")
    return Effect.gen(function*() {
      const a = yield* loginAs("alice")
      const b = yield* loginAs("alice")
      directory.setDown(true)
      const error = yield* Effect.flip(Session.currentUser(a.sessionId))
      expect(error._tag).toBe("TransportError")
      yield* Session.logout(b.sessionId)
      directory.setDown(false)
      expect(yield* current(idOf(a))).toEqual(Option.some("alice"))
      expect(Option.isNone(yield* Session.currentUser(b.sessionId))).toBe(true)
    }).pipe(Effect.provide(setup({}, directory)))
  })

  it.effect("a logout cut off while the user's backend does not answer has still ended the session, and says so", () => {
    const directory = makeDirectory()
    directory.add("alice")
    return Effect.gen(function*() {
      const a = yield* loginAs("alice")
      const reached = yield* Deferred.make<void>()
      directory.setStall(Effect.zipRight(Deferred.succeed(reached, undefined), Effect.never))
      // The client gives up while the logout looks the user up for its event.
      const logout = yield* Effect.fork(Session.logout(a.sessionId))
      yield* Deferred.await(reached)
      yield* Fiber.interrupt(logout)
      directory.setStall(undefined)
      expect(Option.isNone(yield* Session.currentUser(a.sessionId))).toBe(true)
      const loggedOut = (yield* TestAuth.events).filter((e) => e._tag === "LoggedOut")
      expect(loggedOut.map((e) => e._tag === "LoggedOut" && Option.isNone(e.user))).toEqual([true])
    }).pipe(Effect.provide(setup({}, directory)))
  })

  it.effect("ids that cannot be ours never reach the store", () => {
    const directory = makeDirectory()
    let reads = 0
    const counting = Layer.effect(
      SessionStore.SessionStore,
      Effect.map(MemorySessionStore.make, (store) => ({
        ...store,
        get: (key: string, now: number) => Effect.zipRight(Effect.sync(() => reads++), store.get(key, now))
      }))
    )
    return Effect.gen(function*() {
      for (const id of ["", "short", "A".repeat(44), `${"A".repeat(42)}=`, `${"A".repeat(42)}/`, Redacted.make("x")]) {
        expect(Option.isNone(yield* Session.currentUser(id))).toBe(true)
      }
      expect(Option.isNone(yield* Session.currentUser(undefined))).toBe(true)
      expect(reads).toBe(0)
    }).pipe(Effect.provide(setup({}, directory, counting)))
  })

  it.effect("a store that cannot answer is a SessionStoreError, never a defect", () => {
    const directory = makeDirectory()
    directory.add("alice")
    const fail = (operation: string) => Effect.fail(new SessionStore.SessionStoreError({ operation, cause: "down" }))
    const broken = Layer.succeed(
      SessionStore.SessionStore,
      SessionStore.make({
        get: () => fail("get"),
        set: () => fail("set"),
        replace: () => fail("replace"),
        delete: () => fail("delete"),
        deleteExpired: () => fail("deleteExpired")
      })
    )
    return Effect.gen(function*() {
      const authenticated = yield* AuthService.authenticateUnknown({ username: "alice" })
      const exits = yield* Effect.all([
        Effect.exit(Session.login(authenticated)),
        Effect.exit(Session.currentUser("A".repeat(43))),
        Effect.exit(Session.logout("A".repeat(43))),
        Effect.exit(Session.clearExpired)
      ])
      expectStoreErrors(exits)
    }).pipe(Effect.provide(setup({}, directory, broken)))
  })

  it.effect("a login whose old session cannot be deleted fails and leaves only the old session in the store", () => {
    const directory = makeDirectory()
    directory.add("alice")
    const keys: Array<string> = []
    let failDelete = false
    const store = Layer.effect(
      SessionStore.SessionStore,
      Effect.map(MemorySessionStore.make, (memory): SessionStore.Service => ({
        ...memory,
        set: (key, record, now) => Effect.zipRight(Effect.sync(() => keys.push(key)), memory.set(key, record, now)),
        // the connection drops between the new session's write and the old one's delete, once
        delete: (key) =>
          failDelete
            ? Effect.suspend(() => {
              failDelete = false
              return Effect.fail(new SessionStore.SessionStoreError({ operation: "delete", cause: "Connection is closed." }))
            })
            : memory.delete(key)
      }))
    )
    return Effect.gen(function*() {
      const first = yield* loginAs("alice")
      failDelete = true
      const exit = yield* Effect.exit(loginAs("alice", idOf(first)))
      expect(Exit.isFailure(exit) && exit.cause.toString()).toContain("SessionStoreError")
      expect(yield* current(idOf(first))).toEqual(Option.some("alice"))
      const stored = yield* SessionStore.SessionStore
      const now = yield* Clock.currentTimeMillis
      const live = yield* Effect.filter(keys, (key) => Effect.map(stored.get(key, now), Option.isSome))
      expect(live).toEqual([keys[0]])
    }).pipe(Effect.provide(setup({}, directory, store)))
  })

  it.effect("what an untyped caller passes as a session id or a user is nobody, never a defect", () => {
    const directory = makeDirectory()
    const alice = directory.add("alice")
    const hostile = new Proxy({}, {
      has: () => {
        throw new Error("boom")
      },
      get: () => {
        throw new Error("boom")
      }
    })
    return Effect.gen(function*() {
      const session = yield* loginAs("alice")
      for (const id of [hostile, 42, Redacted.make(42), null]) {
        const exits = yield* Effect.all([
          Effect.exit(Session.currentUser(id as any)),
          Effect.exit(Session.logout(id as any)),
          Effect.exit(Effect.flatMap(Session.Session, (s) => s.csrfToken(id as any)))
        ])
        expect(exits.map((exit) => exit._tag)).toEqual(["Success", "Success", "Success"])
      }
      for (const user of [null, 42, hostile]) {
        expect(yield* Session.updateSessionAuthHash(idOf(session), user as any)).toEqual(Option.none())
        expect(yield* Session.stepUp(idOf(session), { user, backend: "local" } as any)).toEqual(Option.none())
      }
      // a password hash that is no string counts as none: the session is re-bound to no password
      const odd = { ...alice, passwordHash: Redacted.make(1 as unknown as string) }
      const rebound = yield* Session.updateSessionAuthHash(idOf(session), odd)
      expect(Option.isSome(rebound)).toBe(true)
    }).pipe(Effect.provide(setup({}, directory)))
  })

  it.effect("what an untyped caller passes to login as an Authenticated is a SessionStoreError; nothing is written or discarded", () => {
    const directory = makeDirectory()
    const alice = directory.add("alice")
    const { keys, layer } = recordingStore()
    const throwing = (field: string) =>
      Object.defineProperty({ ...alice }, field, {
        get() {
          throw new Error("getter")
        },
        enumerable: true
      })
    return Effect.gen(function*() {
      const session = yield* loginAs("alice")
      const written = keys.length
      const bad: ReadonlyArray<unknown> = [
        undefined,
        null,
        {},
        { backend: "local" },
        { backend: "local", user: null },
        { backend: "local", user: { ...alice, id: 42 } },
        { backend: 42, user: alice },
        { backend: "local", user: throwing("id") },
        { backend: "local", user: throwing("passwordHash") },
        { backend: "local", user: hostile() },
        hostile()
      ]
      for (const authenticated of bad) {
        const exit = yield* Effect.exit(Effect.suspend(() => Session.login(authenticated as any, { sessionId: idOf(session) })))
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error).toMatchObject({
          _tag: "SessionStoreError",
          operation: "login"
        })
      }
      // options that throw when read are none
      const fine = yield* Session.login({ backend: "local", user: alice } as any, hostile())
      expect(Option.map(yield* Session.currentUser(idOf(fine)), (s) => s.user.id)).toEqual(Option.some(alice.id))
      expect(keys.length).toBe(written + 1)
      expect(Option.isSome(yield* Session.currentUser(idOf(session)))).toBe(true)
    }).pipe(Effect.provide(setup({}, directory, layer)))
  })

  it.effect("clearExpired deletes what has expired", () => {
    const directory = makeDirectory()
    directory.add("alice")
    return Effect.gen(function*() {
      yield* loginAs("alice")
      yield* loginAs("alice")
      yield* TestClock.adjust("30 minutes")
      const young = yield* loginAs("alice")
      yield* TestClock.adjust("31 minutes")
      expect(yield* Session.clearExpired).toBe(2)
      expect(yield* current(idOf(young))).toEqual(Option.some("alice"))
    }).pipe(Effect.provide(setup({ maxAge: "1 hour" }, directory)))
  })

  it.effect("bad options fail the layer with AuthConfigError", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<Session.Options> = [
        { secret: Redacted.make("short") },
        { secret: "not redacted" as unknown as Redacted.Redacted<string> },
        { secret, fallbackSecrets: [Redacted.make("short")] },
        { secret, maxAge: "0 seconds" },
        { secret, maxAge: Infinity },
        { secret, idleTimeout: "10 millis" },
        // past what a record holds (year 9999): every login failed "invalid record" at run time
        { secret, maxAge: "3000000 days" },
        { secret, idleTimeout: "3000000 days" },
        // from an untyped config: "false" would read as true
        { secret, expireAtBrowserClose: "false" as unknown as boolean }
      ]
      for (const options of cases) {
        const error = yield* Effect.flip(Effect.provide(Session.Session, setup(options)))
        expect(error._tag).toBe("AuthConfigError")
      }
    }))

  // Session.layerConfig over a memory store, with a user "alice" to log in.
  const configuredWithAlice = () => {
    const directory = makeDirectory()
    directory.add("alice")
    return Session.layerConfig().pipe(
      Layer.provideMerge(TestAuth.layer([directory.backend])),
      Layer.provideMerge(MemorySessionStore.layer)
    )
  }

  it.effect("layerConfig reads SECRET_KEY, SECRET_KEY_FALLBACKS, SESSION_MAX_AGE, SESSION_IDLE_TIMEOUT", () => {
    const layer = configuredWithAlice()
    return Effect.gen(function*() {
      const service = yield* Session.Session
      expect(service.maxAge).toEqual(Duration.minutes(90))
      expect(Option.getOrThrow(service.idleTimeout)).toEqual(Duration.minutes(10))
      const started = yield* loginAs("alice")
      expect(yield* current(idOf(started))).toEqual(Option.some("alice"))
    }).pipe(
      Effect.provide(layer),
      Effect.withConfigProvider(ConfigProvider.fromMap(
        new Map([
          ["SECRET_KEY", Redacted.value(secret)],
          ["SECRET_KEY_FALLBACKS", `${Redacted.value(newSecret)},${Redacted.value(newSecret)}x`],
          ["SESSION_MAX_AGE", "90 minutes"],
          ["SESSION_IDLE_TIMEOUT", "10 minutes"]
        ])
      ))
    )
  })

  it.effect("layerConfig: an empty SECRET_KEY_FALLBACKS (a template's ${VAR:-}) is no fallback, as an unset one", () => {
    const layer = configuredWithAlice()
    return Effect.gen(function*() {
      for (const fallbacks of ["", " ", ","]) {
        const started = yield* loginAs("alice").pipe(
          Effect.provide(layer),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([
            ["SECRET_KEY", Redacted.value(secret)],
            ["SECRET_KEY_FALLBACKS", fallbacks]
          ])))
        )
        expect(Redacted.value(started.sessionId).length).toBeGreaterThan(0)
      }
    })
  })

  it.effect("layerConfig reads SESSION_EXPIRE_AT_BROWSER_CLOSE: the cookie of a login that makes no choice ends with the browser", () => {
    const layer = configuredWithAlice()
    const withSetting = (value?: string) =>
      Effect.withConfigProvider(ConfigProvider.fromMap(
        new Map([["SECRET_KEY", Redacted.value(secret)], ...(value === undefined ? [] : [["SESSION_EXPIRE_AT_BROWSER_CLOSE", value] as const])])
      ))
    return Effect.gen(function*() {
      const on = yield* Effect.provide(loginAs("alice"), layer).pipe(withSetting("true"))
      expect(on.expireAtBrowserClose).toBe(true)
      for (const value of ["false", undefined]) {
        const off = yield* Effect.provide(loginAs("alice"), layer).pipe(withSetting(value))
        expect(off.expireAtBrowserClose).toBeUndefined()
      }
      const error = yield* Effect.flip(Effect.provide(Session.Session, layer).pipe(withSetting("sometimes")))
      expect(String(error)).toContain("SESSION_EXPIRE_AT_BROWSER_CLOSE")
    })
  })

  it.effect("layerConfig reads SESSION_FORMAT: django makes Django's session keys; another value is a ConfigError", () => {
    const layer = configuredWithAlice()
    const withFormat = (format: string) =>
      Effect.withConfigProvider(ConfigProvider.fromMap(
        new Map([["SECRET_KEY", Redacted.value(secret)], ["SESSION_FORMAT", format]])
      ))
    return Effect.gen(function*() {
      const django = yield* Effect.provide(loginAs("alice"), layer).pipe(withFormat("django"))
      expect(idOf(django)).toMatch(/^[a-z0-9]{32}$/)
      const ours = yield* Effect.provide(loginAs("alice"), layer).pipe(withFormat("effect-auth"))
      expect(idOf(ours)).toMatch(/^[A-Za-z0-9_-]{43}$/)
      const error = yield* Effect.flip(Effect.provide(Session.Session, layer).pipe(withFormat("rails")))
      expect(String(error)).toContain("SESSION_FORMAT")
    })
  })

  it.effect("layerConfig without SECRET_KEY is a ConfigError", () =>
    Effect.gen(function*() {
      const layer = Session.layerConfig().pipe(
        Layer.provideMerge(TestAuth.layer([makeDirectory().backend])),
        Layer.provideMerge(MemorySessionStore.layer)
      )
      const error = yield* Effect.flip(Effect.provide(Session.Session, layer))
      expect(error._tag).not.toBe("AuthConfigError")
      expect(String(error)).toContain("SECRET_KEY")
    }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))))
})

describe("a login is recorded, as Django's update_last_login records it", () => {
  const chain = (store: Layer.Layer<UserStore.UserStore>) =>
    Session.layer({ secret }).pipe(
      Layer.provideMerge(MemorySessionStore.layer),
      Layer.provideMerge(AuthService.layer([ModelBackend.ModelBackend])),
      Layer.provideMerge(AuthEvents.layer),
      Layer.provideMerge(ModelBackend.layer()),
      Layer.provideMerge(PasswordHasher.layerTest),
      Layer.provideMerge(store)
    )
  const T0 = Date.UTC(2026, 0, 2, 3, 4, 5)
  const resetOptions: PasswordResetToken.Options = { secret }
  const aliceWithToken = Effect.gen(function*() {
    const store = yield* UserStore.UserStore
    const hasher = yield* PasswordHasher.PasswordHasher
    yield* TestClock.setTime(T0)
    const alice = yield* store.create({ username: "alice", email: "a@example.com", passwordHash: yield* hasher.hash(Redacted.make("pw")) })
    return { store, alice, token: yield* PasswordResetToken.make(alice, resetOptions) }
  })
  const reload = (store: UserStore.Service, id: string) => Effect.map(store.findById(id), Option.getOrThrow)

  it.effect("a session login sets the user's last login; a reset token made before it no longer verifies", () =>
    Effect.gen(function*() {
      const { alice, store, token } = yield* aliceWithToken
      expect(Option.isNone(alice.lastLogin)).toBe(true)
      yield* TestClock.adjust("1 minute")
      const sessions = yield* Session.Session
      const authenticated = yield* AuthService.authenticate({ username: "alice", password: Redacted.make("pw") })
      // Authenticating is not logging in (Django's authenticate() writes nothing either).
      expect(Option.isNone((yield* reload(store, alice.id)).lastLogin)).toBe(true)
      expect(yield* PasswordResetToken.check(yield* reload(store, alice.id), token, resetOptions)).toBe(true)
      const started = yield* sessions.login(authenticated)
      const after = yield* reload(store, alice.id)
      expect(Option.map(after.lastLogin, (d) => d.getTime())).toEqual(Option.some(T0 + 60_000))
      expect(yield* PasswordResetToken.check(after, token, resetOptions)).toBe(false)
      // A request in the session is no login.
      yield* TestClock.adjust("1 minute")
      yield* sessions.currentUser(Redacted.value(started.sessionId))
      expect(Option.map((yield* reload(store, alice.id)).lastLogin, (d) => d.getTime())).toEqual(Option.some(T0 + 60_000))
    }).pipe(Effect.provide(chain(MemoryUserStore.layer))))

  it.effect("a store that cannot record it does not undo the login", () =>
    Effect.gen(function*() {
      const { alice } = yield* aliceWithToken
      const sessions = yield* Session.Session
      const started = yield* sessions.login(yield* AuthService.authenticate({ username: "alice", password: Redacted.make("pw") }))
      const current = yield* sessions.currentUser(Redacted.value(started.sessionId))
      expect(Option.map(current, (s) => s.user.id)).toEqual(Option.some(alice.id))
    }).pipe(Effect.provide(chain(Layer.effect(
      UserStore.UserStore,
      Effect.map(Effect.flatMap(UserStore.UserStore, Effect.succeed), (store): UserStore.Service => ({
        ...store,
        setLastLogin: () => Effect.fail(new UserStore.UserStoreError({ operation: "setLastLogin", cause: "down" }))
      }))
    ).pipe(Layer.provide(MemoryUserStore.layer))))))
})

describe("a second factor holds while its device does (Session.secondFactorHolds)", () => {
  // A second factor whose device the test replaces, removes or takes down.
  const makeOtp = (directory: ReturnType<typeof makeDirectory>) => {
    let device: string | undefined = "device-1"
    let down = false
    const backend = AuthBackend.make({
      id: "otp",
      credentials: Schema.Struct({ username: Schema.String, otpToken: Schema.String }),
      // every code is right: what is under test is the device, not the code
      authenticate: ({ username }) => directory.backend.authenticate({ username }, undefined),
      getUser: directory.backend.getUser,
      secondFactor: true,
      secondFactorDevice: () =>
        down
          ? Effect.fail(new AuthError.TransportError({ backend: "otp", cause: "down" }))
          : Effect.succeed(Option.fromNullable(device))
    })
    return {
      backend,
      setDevice: (value: string | undefined) => {
        device = value
      },
      setDown: (value: boolean) => {
        down = value
      }
    }
  }
  const withOtp = (options: Partial<Session.Options> = {}, store: Layer.Layer<SessionStore.SessionStore> = MemorySessionStore.layer) => {
    const directory = makeDirectory()
    directory.add("alice")
    const otp = makeOtp(directory)
    const layer = Session.layer({ secret, ...options }).pipe(
      Layer.provideMerge(TestAuth.layer([directory.backend, otp.backend])),
      Layer.provideMerge(store)
    )
    return { otp, layer }
  }
  const stepUp = (started: Session.SessionUser) =>
    Effect.flatMap(
      AuthService.authenticateUnknown({ username: "alice", otpToken: "123456" }, { stage: "step-up" }),
      (authenticated) => Session.stepUp(started.sessionId, authenticated)
    )
  const holds = (id: Redacted.Redacted<string>) =>
    Effect.flatMap(Session.currentUser(id), (s) => Session.secondFactorHolds(Option.getOrThrow(s)))

  it.effect("a step-up records a keyed hash of the device; removing or replacing the device ends the second factor", () => {
    const { layer, otp } = withOtp()
    return Effect.gen(function*() {
      const started = yield* loginAs("alice")
      expect(yield* Session.secondFactorHolds(started)).toBe(false)
      const stepped = Option.getOrThrow(yield* stepUp(started))
      expect(stepped.secondFactor).toBe("otp")
      // recorded, but not as the backend named it: keyed by the app secret
      expect(stepped.secondFactorDevice).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(stepped.secondFactorDevice).not.toContain("device-1")
      expect(yield* holds(stepped.sessionId)).toBe(true)
      otp.setDevice("device-2") // removed and enrolled again
      expect(yield* holds(stepped.sessionId)).toBe(false)
      otp.setDevice(undefined) // removed
      expect(yield* holds(stepped.sessionId)).toBe(false)
      // the session itself lives on, at one factor
      expect(yield* current(idOf(stepped))).toEqual(Option.some("alice"))
      // a step-up with no device left (removed after its code was checked) is none
      const again = yield* loginAs("alice")
      expect(yield* stepUp(again)).toEqual(Option.none())
      otp.setDevice("device-2")
      const renewed = Option.getOrThrow(yield* stepUp(again))
      expect(yield* holds(renewed.sessionId)).toBe(true)
      // the backend's store down: a TransportError, neither yes nor no
      otp.setDown(true)
      expect((yield* Effect.flip(holds(renewed.sessionId)))._tag).toBe("TransportError")
      expect((yield* Effect.flip(stepUp(yield* loginAs("alice"))))._tag).toBe("TransportError")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a session stepped up before devices were recorded has no second factor; a backend that names no device is trusted; one gone vouches for nothing", () => {
    const { layer } = withOtp()
    return Effect.gen(function*() {
      const started = yield* loginAs("alice")
      // an old record: the second factor, no device
      expect(yield* Session.secondFactorHolds({ user: started.user, secondFactor: "otp" })).toBe(false)
      // a second factor whose backend names no device: the session's word, as before
      expect(yield* Session.secondFactorHolds({ user: started.user, secondFactor: "local" })).toBe(true)
      // a backend no longer configured
      expect(yield* Session.secondFactorHolds({ user: started.user, secondFactor: "gone", secondFactorDevice: "x" })).toBe(false)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a key rotation keeps the second factor: the device's hash under a fallback secret is accepted", () => {
    const store = Layer.fresh(MemorySessionStore.layer)
    return Effect.gen(function*() {
      const shared = yield* Layer.memoize(store)
      const before = withOtp({}, shared)
      const stepped = yield* Effect.provide(Effect.flatMap(loginAs("alice"), stepUp), before.layer).pipe(Effect.map(Option.getOrThrow))
      const after = withOtp({ secret: newSecret, fallbackSecrets: [secret] }, shared)
      // verified under the fallback, the session moves to a new id (Django's cycle_key); the
      // device's hash it keeps is still the old secret's
      const moved = yield* Effect.provide(Session.currentUser(stepped.sessionId), after.layer).pipe(Effect.map(Option.getOrThrow))
      expect(Redacted.value(moved.sessionId)).not.toBe(Redacted.value(stepped.sessionId))
      expect(yield* Effect.provide(holds(moved.sessionId), after.layer)).toBe(true)
      const unrelated = withOtp({ secret: newSecret }, shared)
      expect(yield* Effect.provide(holds(moved.sessionId), unrelated.layer)).toBe(false)
    }).pipe(Effect.scoped)
  })
})
