// Lockout on the memory store: what is counted, the lock and its cool-off (TestClock), back-off,
// reset on success, allow/deny lists, the keys of each `by`, that a refused attempt asks no
// backend, and HTTP's 429 with Retry-After behind a trusted proxy.
import { describe, expect, it } from "@effect/vitest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as http from "node:http"
import * as net from "node:net"
import * as AuthBackend from "../src/AuthBackend.js"
import * as AuthError from "../src/AuthError.js"
import * as AuthEvents from "../src/AuthEvents.js"
import type { AuthRequest } from "../src/AuthRequest.js"
import * as AuthService from "../src/AuthService.js"
import * as Credentials from "../src/Credentials.js"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as NodeServer from "../src/http/NodeServer.js"
import * as IpAddress from "../src/internal/ipAddress.js"
import * as Lockout from "../src/Lockout.js"
import * as TestAuth from "../src/testing/TestAuth.js"
import * as TestBackend from "../src/testing/TestBackend.js"
import {
  anotherAccountKeepsTheCount,
  aSuccessGivesBackItsOwnCount,
  concurrentSuccessesLockNobody,
  counting as sharedCounting,
  cutOffWhileCounting,
  illFormedNames,
  lapsedLockFoundOnce,
  lapsedLockPublishedOnce,
  lapsedPlacesCount,
  oddRequests,
  oddResetTargets,
  resetFindsItsKeys,
  twoAccounts
} from "./utils/lockout.js"

const alice = TestBackend.user("alice")

/** A password backend that counts what it is asked and what request it saw. */
const counting = () => {
  const seen: Array<AuthRequest | undefined> = []
  const backend = AuthBackend.make({
    id: "passwords",
    credentials: Credentials.UsernamePassword,
    authenticate: ({ password, username }, request) => {
      seen.push(request)
      return username === "alice" && Redacted.value(password) === "right"
        ? Effect.succeed(alice)
        : AuthError.noMatch("passwords", "invalid-credentials")
    },
    getUser: () => Effect.succeedNone
  })
  return { backend, seen }
}

const setup = (options: Lockout.Options, backends?: ReadonlyArray<AuthBackend.AuthBackend>) => {
  const count = counting()
  // One `base` value: layers are shared by reference, so the guarded service, the lockout and the
  // test see one AuthEvents. The outer (guarded) AuthService wins over base's in the merge.
  const base = TestAuth.layer(backends ?? [count.backend])
  const layer = Lockout.layerAuthService(base).pipe(
    Layer.provideMerge(Lockout.layerMemory(options)),
    Layer.provideMerge(base)
  )
  return { ...count, layer }
}

const wrong = { username: "alice", password: "wrong" }
const right = { username: "alice", password: "right" }
const from = (remoteAddress: string): AuthRequest => ({ remoteAddress })

const tagOf = (exit: Exit.Exit<unknown, AuthError.AuthenticateError>) =>
  Exit.isSuccess(exit) ? "success" : Option.getOrThrow(Exit.causeOption(exit).pipe(Option.flatMap((c) =>
    c._tag === "Fail" ? Option.some(c.error._tag) : Option.none()
  )))

const login = (credentials: Credentials.Input, request?: AuthRequest) =>
  Effect.map(Effect.exit(AuthService.authenticate(credentials, request)), tagOf)

const times = <A, E, R>(n: number, effect: Effect.Effect<A, E, R>) => Effect.replicateEffect(effect, n)

describe("Lockout: the lock", () => {
  it.effect("locks after `limit` failures, asks no backend while locked, and lifts after the cool-off", () => {
    const { layer, seen } = setup({ by: "username", limit: 3, coolOff: "1 minute" })
    return Effect.gen(function*() {
      expect(yield* times(3, login(wrong))).toEqual(["AuthenticationFailed", "AuthenticationFailed", "AuthenticationFailed"])
      expect(seen.length).toBe(3)
      const refused = yield* Effect.flip(AuthService.authenticate(right))
      expect(refused._tag).toBe("LockedOut")
      expect(Duration.toMillis((refused as AuthError.LockedOut).retryAfter)).toBe(60_000)
      expect(seen.length).toBe(3) // the right password was never checked
      yield* TestClock.adjust("59 seconds")
      expect(yield* login(right)).toBe("LockedOut")
      yield* TestClock.adjust("1 second")
      expect(yield* login(right)).toBe("success")
      expect(seen.length).toBe(4)
    }).pipe(Effect.provide(layer))
  })

  it.effect("credentials that throw when read fail typed, not as a defect, and count by address", () => {
    const { layer, seen } = setup({ by: "ip", limit: 2 })
    const hostile = () => new Proxy({}, { get: () => { throw new Error("hostile") }, ownKeys: () => { throw new Error("hostile") } })
    const revoked = () => {
      const { proxy, revoke } = Proxy.revocable({}, {})
      revoke()
      return proxy
    }
    return Effect.gen(function*() {
      const attempt = (credentials: unknown) =>
        Effect.map(Effect.exit(AuthService.authenticateUnknown(credentials, from("10.0.0.1"))), tagOf)
      expect(yield* attempt(hostile())).toBe("AuthenticationFailed")
      expect(yield* attempt(revoked())).toBe("AuthenticationFailed")
      expect(seen.length).toBe(0)
      expect(yield* login(right, from("10.0.0.1"))).toBe("LockedOut")
      expect(yield* login(right, from("10.0.0.2"))).toBe("success")
    }).pipe(Effect.provide(layer))
  })

  // Was "a success resets the count": the reset cleared the folded key, which another account
  // whose name folds to it (`Alice` beside `alice`) shares (see "another account's success" below).
  it.effect("a success gives back its own count only: the failures before it stay (django-axes' default)", () => {
    const { layer } = setup({ by: "username", limit: 3 })
    return Effect.gen(function*() {
      yield* times(2, login(wrong))
      expect(yield* login(right)).toBe("success")
      expect(yield* Lockout.list).toMatchObject([{ key: "username:alice", failures: 2, lockedUntil: undefined }])
      expect(yield* login(wrong)).toBe("AuthenticationFailed")
      expect(yield* login(right)).toBe("LockedOut")
    }).pipe(Effect.provide(layer))
  })

  it.live("a success whose place made the limit gets in and locks nothing; the failure before it stays", () =>
    Effect.gen(function*() {
      yield* aSuccessGivesBackItsOwnCount({ auth: yield* AuthService.AuthService, lockout: yield* Lockout.Lockout })
    }).pipe(Effect.provide(setup({ by: "username", limit: 2 }, [sharedCounting().backend]).layer)))

  it.effect("failures older than the cool-off are forgotten", () => {
    const { layer } = setup({ by: "username", limit: 2, coolOff: "1 minute" })
    return Effect.gen(function*() {
      yield* login(wrong)
      yield* TestClock.adjust("61 seconds")
      expect(yield* login(wrong)).toBe("AuthenticationFailed")
      expect(yield* login(right)).toBe("success")
    }).pipe(Effect.provide(layer))
  })

  it.effect("back-off: each further lock lasts `backOff` times longer, up to maxCoolOff", () => {
    const { layer } = setup({ by: "username", limit: 1, coolOff: "1 minute", backOff: 3, maxCoolOff: "5 minutes" })
    const retryAfter = Effect.map(Effect.flip(AuthService.authenticate(wrong)), (e) =>
      Duration.toMinutes((e as AuthError.LockedOut).retryAfter))
    return Effect.gen(function*() {
      yield* login(wrong)
      expect(yield* retryAfter).toBe(1)
      yield* TestClock.adjust("1 minute")
      yield* login(wrong)
      expect(yield* retryAfter).toBe(3)
      yield* TestClock.adjust("3 minutes")
      yield* login(wrong)
      expect(yield* retryAfter).toBe(5)
    }).pipe(Effect.provide(layer))
  })

  it.effect("BackendUnavailable and TransportError do not count when no backend checked a secret", () => {
    const { layer } = setup({ by: "username", limit: 2 }, [TestBackend.unavailable("ldap")])
    return Effect.gen(function*() {
      expect(yield* times(5, login(wrong))).toEqual(Array(5).fill("TransportError"))
      // nothing counted: each refund left the record empty, and an empty record is dropped
      expect(yield* Lockout.list).toEqual([])
    }).pipe(Effect.provide(layer))
  })

  it.effect("a wrong password one backend checked counts even when another could not answer (fallthrough)", () => {
    const { backend, seen } = counting()
    const down = TestBackend.unavailable("ldap", "down", { onTransportError: "fallthrough" })
    const { layer } = setup({ by: "username", limit: 2 }, [down, backend])
    return Effect.gen(function*() {
      expect(yield* times(3, login(wrong))).toEqual(["BackendUnavailable", "BackendUnavailable", "LockedOut"])
      expect(seen.length).toBe(2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a wrong password one backend checked counts even when a later one fails the call (fail)", () => {
    const { backend, seen } = counting()
    const { layer } = setup({ by: "username", limit: 2 }, [backend, TestBackend.unavailable("ldap")])
    return Effect.gen(function*() {
      expect(yield* times(3, login(wrong))).toEqual(["TransportError", "TransportError", "LockedOut"])
      expect(seen.length).toBe(2)
      expect(yield* Lockout.list).toMatchObject([{ key: "username:alice", failures: 2 }])
    }).pipe(Effect.provide(layer))
  })

  // The mark that a failed call judged a secret was put on the error object. A backend that fails
  // every call with one shared object (a circuit breaker's last error) had it marked by one
  // client's guess, and from then on every other client failing with it was counted: locked out
  // for guesses it never made.
  it.effect("a TransportError object shared by every call counts only for the calls that judged a secret", () => {
    const tokens = AuthBackend.make({
      id: "tokens",
      credentials: Credentials.Token,
      authenticate: ({ token }) =>
        AuthError.noMatch("tokens", Redacted.value(token).startsWith("ea_") ? "invalid-credentials" : "unsupported-credentials"),
      getUser: () => Effect.succeedNone
    })
    const lastError = new AuthError.TransportError({ backend: "sso", cause: "sso: circuit open" })
    const breaker = AuthBackend.make({
      id: "sso",
      credentials: Credentials.Token,
      authenticate: () => Exit.fail(lastError),
      getUser: () => Effect.succeedNone
    })
    const { layer } = setup({ by: "ip", limit: 3 }, [tokens, breaker])
    return Effect.gen(function*() {
      // one guess from 10.0.0.66 (refused by `tokens`, then the breaker ended the call)
      expect(yield* login({ token: "ea_guess" }, from("10.0.0.66"))).toBe("TransportError")
      // a client whose token no backend judged, failing with the same object
      expect(yield* times(5, login({ token: "eyJ.jwt.x" }, from("10.0.0.1")))).toEqual(Array(5).fill("TransportError"))
      expect((yield* Lockout.list).map((entry) => [entry.key, entry.failures])).toEqual([["ip:10.0.0.66", 1]])
    }).pipe(Effect.provide(layer))
  })

  // Only "invalid-credentials" counted: during an outage an existing name locked after `limit`
  // wrong passwords while a missing one never did, telling them apart (and an inactive account's
  // right password, refunded as "inactive-user", from a wrong one, counted).
  it.effect("during an outage an unknown name, an inactive account and a wrong password count alike; credentials no backend reads do not", () => {
    const reasonFor = (username: string) =>
      username === "alice" ? "invalid-credentials" : username === "ina" ? "inactive-user" : "unknown-user"
    const passwords = AuthBackend.make({
      id: "passwords",
      credentials: Credentials.UsernamePassword,
      authenticate: ({ username }) => AuthError.noMatch("passwords", reasonFor(username)),
      getUser: () => Effect.succeedNone
    })
    const { layer } = setup({ by: "username", limit: 2 }, [passwords, TestBackend.unavailable("ldap")])
    return Effect.gen(function*() {
      for (const username of ["alice", "nobody", "ina"]) {
        expect([username, yield* times(3, login({ username, password: "x" }))])
          .toEqual([username, ["TransportError", "TransportError", "LockedOut"]])
      }
      // a token is no password: the password backend does not read it, so nothing was judged
      const tokens = setup({ by: "ip", limit: 1 }, [passwords, TestBackend.unavailable("ldap")])
      expect(yield* Effect.provide(times(3, login({ token: "t" }, from("10.0.0.9"))), tokens.layer))
        .toEqual(["TransportError", "TransportError", "TransportError"])
    }).pipe(Effect.provide(layer))
  })

  it.effect("a refused attempt publishes one LoginFailed carrying LockedOut, and the lock one LockedOut event", () => {
    const { layer } = setup({ by: "username", limit: 1 })
    return Effect.gen(function*() {
      yield* login(wrong)
      yield* login(wrong)
      const events = yield* TestAuth.events
      expect(events.map((e) => e._tag)).toEqual(["LoginFailed", "LockedOut", "LoginFailed"])
      const last = events[2] as any
      expect(last.error._tag).toBe("LockedOut")
      expect(last.credentials.password).not.toBe("wrong")
    }).pipe(Effect.provide(layer))
  })
})

// The user store does not fold case (`alice` and `Alice` are two accounts), the lockout's keys do.
// The attacker owns `Alice`: before, a login to it reset `alice`'s folded key, so 4 guesses per own
// login went on without end (20 wrong passwords reached the backend, none was refused).
describe("Lockout: another account's success", () => {
  for (const by of ["username", "username-and-ip", "username-or-ip"] as const) {
    it.effect(`${by}: a login to \`Alice\` (another account) does not clear \`alice\`'s count`, () => {
      const { backend, calls } = twoAccounts()
      return Effect.gen(function*() {
        const instance = { auth: yield* AuthService.AuthService, lockout: yield* Lockout.Lockout }
        yield* anotherAccountKeepsTheCount(instance, calls, from("203.0.113.9"))
      }).pipe(Effect.provide(setup({ by, limit: 5 }, [backend]).layer))
    })
  }

  it.effect("a second factor's success for `Alice` does not clear `alice`'s count of code guesses", () => {
    const codes = AuthBackend.make({
      id: "totp",
      credentials: Schema.Struct({ username: Credentials.Username, otpToken: Credentials.secret(64) }),
      authenticate: ({ otpToken, username }) =>
        username === "Alice" && Redacted.value(otpToken) === "111111"
          ? Effect.succeed(TestBackend.user("Alice", { id: "2" }))
          : AuthError.noMatch("totp", "invalid-credentials"),
      getUser: () => Effect.succeedNone
    })
    const code = (username: string, otpToken: string) =>
      Effect.map(Effect.exit(AuthService.authenticateUnknown({ username, otpToken })), tagOf)
    return Effect.gen(function*() {
      expect(yield* times(2, code("alice", "000001"))).toEqual(["AuthenticationFailed", "AuthenticationFailed"])
      expect(yield* code("Alice", "111111")).toBe("success")
      expect(yield* code("alice", "000002")).toBe("AuthenticationFailed")
      expect(yield* code("alice", "000003")).toBe("LockedOut")
      expect((yield* Lockout.list).map((e) => [e.key, e.failures])).toEqual([["otp-username:alice", 3]])
    }).pipe(Effect.provide(setup({ by: "username", limit: 3 }, [codes]).layer))
  })
})

describe("Lockout: the memory store", () => {
  it.effect("past maxEntries, a flood of fresh names evicts unlocked records, never a lock", () => {
    const count = counting()
    const base = TestAuth.layer([count.backend])
    const layer = Lockout.layerAuthService(base).pipe(
      Layer.provideMerge(Lockout.layerMemory({ by: "username", limit: 2, maxEntries: 50 })),
      Layer.provideMerge(base)
    )
    return Effect.gen(function*() {
      yield* times(2, login(wrong))
      expect(yield* login(right)).toBe("LockedOut")
      for (let i = 0; i < 500; i++) yield* login({ username: `spray-${i}`, password: "x" })
      expect(yield* login(right)).toBe("LockedOut")
      const entries = yield* Lockout.list
      expect(entries.length).toBeLessThanOrEqual(50)
      expect(entries.map((e) => e.key)).toContain("username:alice")
      // the store still counts the newest names
      expect(entries.map((e) => e.key)).toContain("username:spray-499")
    }).pipe(Effect.provide(layer))
  })

  it.effect("reset finds a name's and an address's records without reading every one", () =>
    resetFindsItsKeys(Lockout.memoryStore()))

  // One store shared by two services: the second waits for the first's attempts by asking again.
  const onStore = (store: Lockout.Store, backend: AuthBackend.AuthBackend) =>
    Effect.map(
      Layer.build(Lockout.layerAuthService(AuthService.layer([backend])).pipe(
        Layer.provideMerge(Layer.effect(Lockout.Lockout, Lockout.make(store, { by: "username", limit: 5 }))),
        Layer.provideMerge(AuthEvents.layer)
      )),
      (context) => ({ auth: Context.get(context, AuthService.AuthService), lockout: Context.get(context, Lockout.Lockout) })
    )

  it.live("successes in flight lock nobody: 20 concurrent correct logins all get in, also after 4 failures (limit 5)", () => {
    const { backend, calls } = sharedCounting({ slowSuccess: true })
    return Effect.scoped(Effect.gen(function*() {
      const one = yield* onStore(Lockout.memoryStore(), backend)
      yield* concurrentSuccessesLockNobody(one, one, calls)
    }))
  })

  it.live("the same through two services sharing one store", () => {
    const { backend, calls } = sharedCounting({ slowSuccess: true })
    return Effect.scoped(Effect.gen(function*() {
      const store = Lockout.memoryStore()
      yield* concurrentSuccessesLockNobody(yield* onStore(store, backend), yield* onStore(store, backend), calls)
    }))
  })

  // With a slow hash, the correct logins of a burst run one at a time once failures and places
  // make the limit, and the fixed 10 s wait refused the tail of the burst (7 of 20 at PBKDF2 1.2M):
  // the wait is `busyTimeout`. Here the first login's check is held open (a slow hash) while the
  // others wait past a bound of 20 ms: each is refused for a second; a bad bound is a config error.
  it.live("busyTimeout bounds the wait for a busy key: past it, an attempt is LockedOut for a second", () =>
    Effect.scoped(Effect.gen(function*() {
      for (const busyTimeout of [0, -1, Infinity, Number.NaN]) {
        const bad = yield* Effect.either(Layer.build(Lockout.layerMemory({ busyTimeout })))
        expect(Either.isLeft(bad) && bad.left.message, String(busyTimeout)).toBe("Lockout: busyTimeout must be a positive number")
      }
      const gate = yield* Deferred.make<void>()
      let checked = 0
      const slow = AuthBackend.make({
        id: "passwords",
        credentials: Credentials.UsernamePassword,
        authenticate: ({ password }) =>
          Effect.suspend(() => {
            checked++
            return Redacted.value(password) === "right"
              ? Effect.as(Deferred.await(gate), alice)
              : AuthError.noMatch("passwords", "invalid-credentials")
          }),
        getUser: () => Effect.succeedNone
      })
      const context = yield* Layer.build(Lockout.layerAuthService(AuthService.layer([slow])).pipe(
        Layer.provideMerge(Lockout.layerMemory({ by: "username", limit: 5, busyTimeout: "20 millis" })),
        Layer.provideMerge(AuthEvents.layer)
      ))
      const auth = Context.get(context, AuthService.AuthService)
      for (let i = 0; i < 4; i++) expect(tagOf(yield* Effect.exit(auth.authenticate(wrong)))).toBe("AuthenticationFailed")
      const first = yield* Effect.fork(Effect.exit(auth.authenticate(right)))
      while (checked < 5) yield* Effect.yieldNow()
      const waiting = yield* Effect.all(Array.from({ length: 4 }, () => Effect.exit(auth.authenticate(right))), {
        concurrency: "unbounded"
      })
      expect(waiting.map((exit) => Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : exit)).toEqual(
        Array(4).fill(new AuthError.LockedOut({ retryAfter: Duration.seconds(1) }))
      )
      yield* Deferred.succeed(gate, undefined)
      expect(tagOf(yield* Fiber.join(first))).toBe("success")
      expect(checked).toBe(5)
    })))

  // Under the TestClock (it.effect), an attempt on a key whose places another instance holds waited
  // for ever: its pause between asks never ended and its bound read the frozen clock. The wait is
  // real time now; the store's times stay the app's clock, so locks and cool-offs still move only
  // with TestClock.adjust.
  it.effect("under the TestClock, an attempt waiting for another instance's place goes on when it settles, and its wait is bounded", () =>
    Effect.scoped(Effect.gen(function*() {
      const store = Lockout.memoryStore()
      const { backend } = sharedCounting()
      const instance = (busyTimeout: Duration.DurationInput) =>
        Effect.map(
          Layer.build(Lockout.layerAuthService(AuthService.layer([backend])).pipe(
            Layer.provideMerge(Layer.effect(Lockout.Lockout, Lockout.make(store, { by: "username", limit: 2, busyTimeout }))),
            Layer.provideMerge(AuthEvents.layer)
          )),
          (context) => Context.get(context, AuthService.AuthService)
        )
      const auth = yield* instance("10 seconds")
      // another instance holds both places of the limit (its attempts in flight)
      const now = yield* Clock.currentTimeMillis
      const policy = { limit: 2, coolOff: 900_000, backOff: 1, maxCoolOff: 86_400_000, forgetAfter: 86_400_000 }
      for (let i = 0; i < 2; i++) expect(yield* store.attempt(["username:alice"], now, policy)).toMatchObject({ _tag: "Allowed" })
      const waiting = yield* Effect.fork(Effect.exit(auth.authenticate(right)))
      // it waits (a few real pauses) until the other instance settles one of its places
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 30)))
      yield* store.refund(["username:alice"], now, policy)
      expect(tagOf(yield* Fiber.join(waiting))).toBe("success")
      // the other instance takes the place again, and nothing settles its places: the bound (real
      // time too) refuses the attempt for a second
      expect(yield* store.attempt(["username:alice"], now, policy)).toMatchObject({ _tag: "Allowed" })
      const bounded = yield* instance("50 millis")
      const refused = yield* Effect.exit(bounded.authenticate({ username: "alice", password: "x" }))
      expect(refused).toEqual(Exit.fail(new AuthError.LockedOut({ retryAfter: Duration.seconds(1) })))
      // which left the counts as they were: the other instance's place, no failure
      expect(yield* store.list(now)).toMatchObject([{ key: "username:alice", failures: 0 }])
    })))

  it.effect("a place nobody settles lapses after its hold and counts as a failure, once", () =>
    lapsedPlacesCount(Lockout.memoryStore()))

  it.effect("a lock that lapsed places set is answered by the first operation that finds it, and by no later one", () =>
    lapsedLockFoundOnce(Lockout.memoryStore()))

  it.live("a lock that lapsed places set publishes one LockedOut, also when two instances find it at once", () =>
    lapsedLockPublishedOnce(Lockout.memoryStore()))

  // Two guesses whose backend hangs past the hold (limit 2): their places lapse at 2 minutes and
  // lock the name. The failure of the first to settle publishes that lock, once; before, the key
  // was locked and no LockedOut was ever published (a lock without a failure of its own).
  it.effect("guesses that run past the hold and lock by their lapse: the first late settlement publishes one LockedOut", () => {
    const hung = AuthBackend.make({
      id: "passwords",
      credentials: Credentials.UsernamePassword,
      authenticate: () => Effect.zipRight(Effect.sleep("3 minutes"), AuthError.noMatch("passwords", "invalid-credentials")),
      getUser: () => Effect.succeedNone
    })
    const { layer } = setup({ by: "username", limit: 2, coolOff: "15 minutes" }, [hung])
    return Effect.gen(function*() {
      const guesses = yield* Effect.forEach(["w1", "w2"], (password) =>
        Effect.fork(login({ username: "alice", password })))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("3 minutes")
      expect(yield* Fiber.joinAll(guesses)).toEqual(["AuthenticationFailed", "AuthenticationFailed"])
      expect(yield* login(right)).toBe("LockedOut")
      const locks = (yield* TestAuth.events).filter((event) => event._tag === "LockedOut")
      expect(locks).toEqual([
        new AuthEvents.LockedOut({ key: "username:alice", until: new Date(120_000 + 900_000), request: undefined })
      ])
    }).pipe(Effect.provide(layer))
  })

  // At capacity, eviction judged a record as stored: one whose places lapsed into a lock still
  // read unlocked (u 0) and went first, and the attacker's key was free again.
  it.effect("eviction at capacity keeps a lock that lapsed places set: the key stays locked", () =>
    Effect.gen(function*() {
      const store = Lockout.memoryStore({ maxEntries: 10 })
      const policy = { limit: 1, coolOff: 60_000, backOff: 1, maxCoolOff: 60_000, forgetAfter: 60_000 }
      const victim = ["username:mallory"]
      expect((yield* store.attempt(victim, 0, policy))._tag).toBe("Allowed")
      // its place lapses at 120 s: one failure, the limit, locked until 180 s; then fresh names fill the store
      for (let i = 0; i < 10; i++) yield* store.attempt([`username:fresh-${i}`], 121_000, policy)
      expect(yield* store.attempt(victim, 121_001, policy)).toMatchObject({ _tag: "Locked", retryAfter: 58_999 })
      expect((yield* store.list(121_001, policy)).length).toBeLessThanOrEqual(10)
    }))

  // Attempts that outran the two-minute hold of their places (a backend with no timeout): the
  // places lapsed uncounted while the guesses were still being checked, and 5 every 121 s let 15
  // reach the backend within one cool-off (limit 5).
  it.effect("guesses that run past the hold count when their places lapse: 5 every 121 s reach the backend 5 times, not 15", () =>
    Effect.scoped(Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      let checked = 0
      const slow = AuthBackend.make({
        id: "passwords",
        credentials: Credentials.UsernamePassword,
        authenticate: () =>
          Effect.zipRight(Deferred.await(gate), Effect.suspend(() => {
            checked++
            return AuthError.noMatch("passwords", "invalid-credentials")
          })),
        getUser: () => Effect.succeedNone
      })
      const context = yield* Layer.build(Lockout.layerAuthService(AuthService.layer([slow])).pipe(
        Layer.provideMerge(Lockout.layerMemory({ by: "username", limit: 5 })),
        Layer.provideMerge(AuthEvents.layer)
      ))
      const auth = Context.get(context, AuthService.AuthService)
      const fibers: Array<Fiber.RuntimeFiber<string>> = []
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 5; i++) {
          fibers.push(yield* Effect.fork(Effect.map(Effect.exit(auth.authenticate({ username: "alice", password: `w${round}-${i}` })), tagOf)))
        }
        yield* Effect.yieldNow()
        yield* TestClock.adjust("121 seconds")
      }
      yield* Deferred.succeed(gate, undefined)
      const outcomes = yield* Fiber.joinAll(fibers)
      expect(checked).toBe(5)
      expect(outcomes).toEqual([...Array(5).fill("AuthenticationFailed"), ...Array(10).fill("LockedOut")])
      // the five lapsed places counted once: their late failures counted nothing more
      const entries = Context.get(context, Lockout.Lockout).list
      expect((yield* entries).map((e) => [e.key, e.failures, e.lockouts])).toEqual([["username:alice", 5, 1]])
    })))

  // A store away for a moment while a wrong password was checked: its failure was never counted
  // (10 outages let 15 guesses through at limit 5). The settlement is tried again.
  it.effect("a settlement the store refuses for a moment is tried again: the failure counts", () =>
    Effect.scoped(Effect.gen(function*() {
      const store = Lockout.memoryStore()
      let refusals = 2
      const blipping: Lockout.Store = {
        ...store,
        fail: (keys, now, policy, since) =>
          Effect.suspend(() =>
            refusals-- > 0
              ? Effect.fail(new Lockout.LockoutStoreError({ operation: "fail", message: "connection reset" }))
              : store.fail(keys, now, policy, since)
          )
      }
      const { backend } = counting()
      const context = yield* Layer.build(Lockout.layerAuthService(AuthService.layer([backend])).pipe(
        Layer.provideMerge(Layer.effect(Lockout.Lockout, Lockout.make(blipping, { by: "username", limit: 5 }))),
        Layer.provideMerge(AuthEvents.layer)
      ))
      const auth = Context.get(context, AuthService.AuthService)
      expect(tagOf(yield* Effect.exit(auth.authenticate(wrong)))).toBe("AuthenticationFailed")
      expect(refusals).toBe(-1)
      const now = yield* Clock.currentTimeMillis
      expect((yield* store.list(now)).map((e) => [e.key, e.failures])).toEqual([["username:alice", 1]])
    })))

  // reset(42) died in `usernameKey` (42.slice), reset(Proxy) in the key pattern's test.
  it.effect("reset of a target that is no string is a LockoutStoreError; an exact key is read as the records keep it", () =>
    Effect.gen(function*() {
      yield* oddResetTargets({ auth: yield* AuthService.AuthService, lockout: yield* Lockout.Lockout })
    }).pipe(Effect.provide(setup({ by: "username", limit: 5 }).layer)))

  it.effect("a name with a NUL or a lone surrogate is one key, as in the SQL stores", () => {
    const { layer, seen } = setup({ by: "username", limit: 2 })
    return Effect.gen(function*() {
      for (const username of illFormedNames) {
        expect(yield* times(3, login({ username, password: "x" }))).toEqual([
          "AuthenticationFailed",
          "AuthenticationFailed",
          "LockedOut"
        ])
      }
      expect(seen.length).toBeLessThanOrEqual(2 * illFormedNames.length)
      // kept as the databases keep them: U+FFFD in place of what they cannot store
      expect((yield* Lockout.list).map((e) => e.key)).toContain("username:bob\uFFFD")
    }).pipe(Effect.provide(layer))
  })
})

describe("Lockout: callers that leave", () => {
  // A slow check (a password hash runs on libuv's pool, which no interruption stops) and a caller
  // that never waits for its answer: a client dropping the connection, or the app's own timeout.
  it.live("an attempt whose caller is cut off runs to its end and is counted: 5 dropped guesses lock the 6th", () => {
    let checked = 0
    let finished = 0
    const slow = AuthBackend.make({
      id: "slow",
      credentials: Credentials.UsernamePassword,
      authenticate: () =>
        Effect.sleep("40 millis").pipe(
          Effect.zipRight(Effect.sync(() => void checked++)),
          Effect.zipRight(AuthError.noMatch("slow", "invalid-credentials")),
          Effect.ensuring(Effect.sync(() => void finished++))
        ),
      getUser: () => Effect.succeedNone
    })
    const { layer } = setup({ by: "username", limit: 5 }, [slow])
    return Effect.gen(function*() {
      for (let i = 0; i < 5; i++) {
        const cut = yield* Effect.exit(Effect.timeout(AuthService.authenticate({ username: "alice", password: `guess-${i}` }), "5 millis"))
        expect(cut._tag).toBe("Failure") // the caller gave up (TimeoutException)
      }
      // The attempts finish in the background; each was a real check, and each is counted.
      yield* Effect.sleep("150 millis")
      expect([checked, finished]).toEqual([5, 5])
      expect((yield* Lockout.list).map((e) => [e.key, e.failures, e.lockedUntil !== undefined])).toEqual([
        ["username:alice", 5, true]
      ])
      // Before: each was given back on interruption; the lock never engaged and every request was a check.
      expect(yield* login({ username: "alice", password: "guess-5" })).toBe("LockedOut")
      expect(checked).toBe(5)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a caller cut off while the store counts its attempt: the attempt still runs and is settled (3 correct logins cut off, the 4th gets in)", () =>
    Effect.scoped(cutOffWhileCounting(Lockout.memoryStore())))
})

describe("Lockout: keys", () => {
  it.effect("by ip: one address's failures lock every username from it, not other addresses", () => {
    const { layer } = setup({ by: "ip", limit: 2 })
    return Effect.gen(function*() {
      yield* login({ username: "bob", password: "x" }, from("203.0.113.7"))
      yield* login({ username: "carol", password: "x" }, from("203.0.113.7"))
      expect(yield* login(right, from("203.0.113.7"))).toBe("LockedOut")
      expect(yield* login(right, from("198.51.100.1"))).toBe("success")
      expect(yield* login(right)).toBe("success") // no address: not counted
    }).pipe(Effect.provide(layer))
  })

  it.effect("by ip: an IPv6 client is counted by its /64, so rotating addresses inside it gains no guesses", () => {
    const { layer, seen } = setup({ by: "ip", limit: 3 })
    return Effect.gen(function*() {
      // Three addresses of one /64 (a host picks any of its 2^64 addresses per request).
      yield* login({ username: "bob", password: "x" }, from("2001:db8:0:1::1"))
      yield* login({ username: "carol", password: "x" }, from("2001:db8:0:1:ffff:ffff:ffff:fffe"))
      yield* login({ username: "dave", password: "x" }, from("2001:DB8:0:1:1234::7"))
      const before = seen.length
      expect(yield* login(right, from("2001:db8:0:1::99"))).toBe("LockedOut")
      expect(seen.length).toBe(before) // refused before any backend ran
      expect((yield* Lockout.list).map((e) => e.key)).toEqual(["ip:2001:db8:0:1:0:0:0:0/64"])
      // the next /64 is another site, and IPv4 (mapped or not) is counted per address
      expect(yield* login(right, from("2001:db8:0:2::1"))).toBe("success")
      expect(yield* login(right, from("::ffff:203.0.113.7"))).toBe("success")
      // reset by any address of the network lifts it
      expect(yield* Lockout.reset("2001:db8:0:1::abcd")).toEqual(["ip:2001:db8:0:1:0:0:0:0/64"])
      expect(yield* login(right, from("2001:db8:0:1::99"))).toBe("success")
    }).pipe(Effect.provide(layer))
  })

  it.effect("ipv6Prefix: 128 counts each IPv6 address; 48 a whole site; out of range is a config error", () => {
    return Effect.gen(function*() {
      const perAddress = setup({ by: "username-and-ip", limit: 1, ipv6Prefix: 128 })
      yield* Effect.gen(function*() {
        yield* login(wrong, from("2001:db8::1"))
        expect(yield* login(right, from("2001:db8::1"))).toBe("LockedOut")
        expect(yield* login(right, from("2001:db8::2"))).toBe("success")
        expect((yield* Lockout.list).map((e) => e.key)).toEqual(["username-ip:2001:db8:0:0:0:0:0:1|alice"])
      }).pipe(Effect.provide(perAddress.layer))
      const perSite = setup({ by: "username-and-ip", limit: 1, ipv6Prefix: 48 })
      yield* Effect.gen(function*() {
        yield* login(wrong, from("2001:db8:7:1::1"))
        expect(yield* login(right, from("2001:db8:7:ff00::1"))).toBe("LockedOut")
        expect(yield* login(right, from("2001:db8:8::1"))).toBe("success")
        expect((yield* Lockout.list).map((e) => e.key)).toEqual(["username-ip:2001:db8:7:0:0:0:0:0/48|alice"])
      }).pipe(Effect.provide(perSite.layer))
      for (const ipv6Prefix of [0, 129, 64.5, Number.NaN]) {
        const bad = yield* Effect.either(Layer.build(Lockout.layerMemory({ ipv6Prefix })))
        expect(Either.isLeft(bad) && bad.left.message, String(ipv6Prefix)).toBe(
          "Lockout: ipv6Prefix must be an integer from 1 to 128"
        )
      }
    }).pipe(Effect.scoped)
  })

  it.effect("by username: the user is locked from every address; case and width variants share the count", () => {
    const { layer } = setup({ by: "username", limit: 2 })
    return Effect.gen(function*() {
      yield* login({ username: "Alice", password: "x" }, from("203.0.113.7"))
      yield* login({ username: "ａｌｉｃｅ", password: "x" }, from("198.51.100.1"))
      expect(yield* login(right, from("192.0.2.1"))).toBe("LockedOut")
    }).pipe(Effect.provide(layer))
  })

  it.effect("whitespace variants share the count: trimmed, runs collapsed (LDAP matches them as one user)", () => {
    const { layer, seen } = setup({ by: "username", limit: 3 })
    return Effect.gen(function*() {
      expect(yield* times(3, login(wrong))).toEqual(Array(3).fill("AuthenticationFailed"))
      const before = seen.length
      for (const username of [" alice ", "ALICE", "alice ", "\talice", "  Alice\u00a0"]) {
        expect(yield* login({ username, password: "right" }), JSON.stringify(username)).toBe("LockedOut")
      }
      expect(seen.length).toBe(before)
      // runs of inner whitespace are one space, wherever they come from
      yield* times(3, login({ username: "mary  jane", password: "x" }))
      expect(yield* login({ username: " Mary \t Jane ", password: "x" })).toBe("LockedOut")
      expect((yield* Lockout.list).map((e) => e.key)).toEqual(["username:alice", "username:mary jane"])
      // reset folds the name the same way
      expect(yield* Lockout.reset("  ALICE ")).toEqual(["username:alice"])
      expect(yield* login({ username: " alice ", password: "wrong" })).toBe("AuthenticationFailed")
    }).pipe(Effect.provide(layer))
  })

  // OpenLDAP binds `uid=alİce` as `alice`: `İ` lowers to `i` + U+0307, which had its own key, so
  // every `i` of a name doubled the guesses a directory checked within a cool-off.
  it.effect("case variants that lower case alone leaves apart share the count: İ, ß", () => {
    const { layer, seen } = setup({ by: "username", limit: 2 })
    return Effect.gen(function*() {
      expect(yield* times(2, login(wrong))).toEqual(Array(2).fill("AuthenticationFailed"))
      const before = seen.length
      for (const username of ["alİce", "ALİCE", "ali\u0307ce"]) {
        expect(yield* login({ username, password: "right" }), JSON.stringify(username)).toBe("LockedOut")
      }
      expect(seen.length).toBe(before)
      yield* times(2, login({ username: "straße", password: "x" }))
      expect(yield* login({ username: "STRASSE", password: "x" })).toBe("LockedOut")
      expect((yield* Lockout.list).map((e) => e.key)).toEqual(["username:alice", "username:strasse"])
      expect(yield* Lockout.reset("ALİCE")).toEqual(["username:alice"])
    }).pipe(Effect.provide(layer))
  })

  it.effect("username-and-ip: only the pair is locked", () => {
    const { layer } = setup({ by: "username-and-ip", limit: 2 })
    return Effect.gen(function*() {
      yield* times(2, login(wrong, from("203.0.113.7")))
      expect(yield* login(right, from("203.0.113.7"))).toBe("LockedOut")
      expect(yield* login(right, from("198.51.100.1"))).toBe("success")
      expect((yield* Lockout.list).map((e) => e.key)).toEqual(["username-ip:203.0.113.7|alice"])
    }).pipe(Effect.provide(layer))
  })

  it.effect("username-or-ip: either counter locks", () => {
    const { layer } = setup({ by: "username-or-ip", limit: 2 })
    return Effect.gen(function*() {
      yield* login({ username: "bob", password: "x" }, from("203.0.113.7"))
      yield* login({ username: "carol", password: "x" }, from("203.0.113.7"))
      expect(yield* login(right, from("203.0.113.7"))).toBe("LockedOut")
      expect(yield* login(right, from("198.51.100.1"))).toBe("success")
    }).pipe(Effect.provide(layer))
  })

  for (const by of ["ip", "username-or-ip"] as const) {
    it.effect(`${by}: a success resets the user's counters, never the address's (an own account cannot wipe a spray's count)`, () => {
      const { layer, seen } = setup({ by, limit: 3 })
      const attacker = from("203.0.113.7")
      return Effect.gen(function*() {
        // Guesses at other users' passwords, each batch followed by a login to the attacker's own account.
        yield* login({ username: "bob", password: "guess-1" }, attacker)
        yield* login({ username: "carol", password: "guess-2" }, attacker)
        expect(yield* login(right, attacker)).toBe("success")
        expect(yield* login({ username: "dave", password: "guess-3" }, attacker)).toBe("AuthenticationFailed")
        const asked = seen.length
        expect(yield* login({ username: "erin", password: "guess-4" }, attacker)).toBe("LockedOut")
        expect(yield* login(right, attacker)).toBe("LockedOut")
        expect(seen.length).toBe(asked)
        expect(yield* login(right, from("198.51.100.1"))).toBe("success")
      }).pipe(Effect.provide(layer))
    })
  }

  for (const by of ["username", "username-and-ip"] as const) {
    it.effect(`${by}: second-factor guesses count apart, and a password login does not reset them`, () => {
      // TotpBackend's credentials: `{ username, otpToken }`; 424242 is alice's code
      const codes = AuthBackend.make({
        id: "totp",
        credentials: Schema.Struct({ username: Credentials.Username, otpToken: Credentials.secret(64) }),
        authenticate: ({ otpToken, username }) =>
          username === "alice" && Redacted.value(otpToken) === "424242"
            ? Effect.succeed(alice)
            : AuthError.noMatch("totp", "invalid-credentials"),
        getUser: () => Effect.succeedNone
      })
      const { backend, seen } = counting()
      const { layer } = setup({ by, limit: 3 }, [backend, codes])
      const attacker = from("203.0.113.7")
      const code = (otpToken: string) =>
        Effect.map(Effect.exit(AuthService.authenticateUnknown({ username: "alice", otpToken }, attacker)), tagOf)
      return Effect.gen(function*() {
        // The attacker has the password: guesses at the code, a password login between batches.
        expect(yield* times(2, code("000001"))).toEqual(["AuthenticationFailed", "AuthenticationFailed"])
        expect(yield* login(right, attacker)).toBe("success")
        expect(yield* code("000002")).toBe("AuthenticationFailed")
        // the third guess locked the code, even for the right one; the password still logs in
        expect(yield* code("424242")).toBe("LockedOut")
        expect(yield* login(right, attacker)).toBe("success")
        expect(yield* code("424242")).toBe("LockedOut")
        const keys = (yield* Effect.flatMap(Lockout.Lockout, (l) => l.list)).map((entry) => entry.key)
        expect(keys).toEqual([by === "username" ? "otp-username:alice" : "otp-username-ip:203.0.113.7|alice"])
        // resetting the user clears their second-factor records too; a right code gives back its own count
        expect(yield* Lockout.reset("alice")).toEqual(keys)
        expect(yield* code("000003")).toBe("AuthenticationFailed")
        expect(yield* code("424242")).toBe("success")
        expect((yield* Effect.flatMap(Lockout.Lockout, (l) => l.list)).map((e) => [e.key, e.failures])).toEqual(
          keys.map((key) => [key, 1])
        )
        expect(seen.length).toBe(2) // the password backend saw only the password logins
      }).pipe(Effect.provide(layer))
    })
  }

  it.effect("a remoteAddress that is no string, or a request that throws when read, is no address: never a defect", () => {
    const attempt = (credentials: Credentials.Input, request: unknown) =>
      Effect.map(Effect.exit(Effect.suspend(() => AuthService.authenticate(credentials, request as AuthRequest))), (exit) =>
        Exit.isFailure(exit) && exit.cause._tag !== "Fail" ? "defect" : tagOf(exit))
    const byIp = setup({ by: "ip", limit: 1, deny: ["10.0.0.0/8"] })
    const byUsername = setup({ by: "username", limit: 2 })
    return Effect.gen(function*() {
      // by ip: no address, no key: not counted, and the deny list does not match
      for (const request of oddRequests()) expect(yield* attempt(wrong, request)).toBe("AuthenticationFailed")
      for (const request of oddRequests()) expect(yield* attempt(right, request)).toBe("success")
      expect(yield* Lockout.list).toEqual([])
      expect(yield* login(right, from("10.0.0.1"))).toBe("LockedOut") // a real address still is
    }).pipe(
      Effect.provide(byIp.layer),
      Effect.zipRight(
        Effect.gen(function*() {
          // by username: counted as attempts without an address are
          const [first, second, third] = oddRequests()
          expect(yield* attempt(wrong, first)).toBe("AuthenticationFailed")
          expect(yield* attempt(wrong, second)).toBe("AuthenticationFailed")
          expect(yield* attempt(right, third)).toBe("LockedOut")
        }).pipe(Effect.provide(byUsername.layer))
      )
    )
  })

  it.effect("allow list: never counted; deny list: refused before any backend", () => {
    const { layer, seen } = setup({ by: "ip", limit: 1, allow: ["10.0.0.0/8"], deny: ["2001:db8::/32"] })
    return Effect.gen(function*() {
      expect(yield* times(3, login(wrong, from("10.1.2.3")))).toEqual(Array(3).fill("AuthenticationFailed"))
      expect(yield* login(right, from("10.1.2.3"))).toBe("success")
      const before = seen.length
      expect(yield* login(right, from("2001:db8::1"))).toBe("LockedOut")
      expect(seen.length).toBe(before)
    }).pipe(Effect.provide(layer))
  })

  it.effect("reset by username or address, and bad options are a config error", () => {
    const { layer } = setup({ by: "username-and-ip", limit: 1 })
    return Effect.gen(function*() {
      yield* login(wrong, from("203.0.113.7"))
      yield* login({ username: "bob", password: "x" }, from("203.0.113.7"))
      expect(yield* login(right, from("203.0.113.7"))).toBe("LockedOut")
      expect(yield* Lockout.reset("ALICE")).toEqual(["username-ip:203.0.113.7|alice"])
      expect(yield* login(right, from("203.0.113.7"))).toBe("success")
      expect(yield* Lockout.reset("203.0.113.7")).toEqual(["username-ip:203.0.113.7|bob"])
      expect(yield* Lockout.list).toEqual([])
      expect((yield* TestAuth.events).filter((e) => e._tag === "Unlocked").length).toBe(2)
      const bad = yield* Effect.either(Layer.build(Lockout.layerMemory({ deny: ["10.0.0.0/33"] })))
      expect(Either.isLeft(bad) && bad.left._tag).toBe("AuthConfigError")
      // what an untyped config hands over: an entry that is no string (it threw a TypeError), a
      // string for the list (it was read character by character)
      for (const [options, problem] of [
        [{ allow: [123] }, "allow: a number is not an address or CIDR range"],
        [{ deny: [null] }, "deny: a null is not an address or CIDR range"],
        [{ allow: "10.0.0.0/8" }, "allow: must be a list of addresses or CIDR ranges"]
      ] as const) {
        const refused = yield* Effect.either(Layer.build(Lockout.layerMemory(options as never)))
        expect(Either.isLeft(refused) && refused.left).toMatchObject({ _tag: "AuthConfigError", message: `Lockout: ${problem}` })
      }
      const proxies = yield* Effect.either(Layer.build(HttpAuth.layer({ trustedProxies: [123] as never }).pipe(Layer.provide(layer))))
      expect(Either.isLeft(proxies) && String(proxies.left)).toContain("trustedProxies: a number is not an address or CIDR range")
      const zero = yield* Effect.either(Layer.build(Lockout.layerMemory({ limit: 0 })))
      expect(Either.isLeft(zero)).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(layer))
  })

  // A valid username that reads as an address: reset("1.2.3.4") cleared only the address's keys,
  // and the user "1.2.3.4", locked under `username-ip:203.0.113.9|1.2.3.4`, could not be unlocked.
  it.effect("reset of a target that reads as an address clears the user of that name too", () => {
    const { layer } = setup({ by: "username-and-ip", limit: 2 })
    const odd = { username: "1.2.3.4", password: "x" }
    return Effect.gen(function*() {
      expect(yield* times(3, login(odd, from("203.0.113.9")))).toEqual(["AuthenticationFailed", "AuthenticationFailed", "LockedOut"])
      yield* times(2, login({ username: "bob", password: "x" }, from("1.2.3.4")))
      expect(yield* Lockout.reset("1.2.3.4")).toEqual(["username-ip:1.2.3.4|bob", "username-ip:203.0.113.9|1.2.3.4"])
      expect(yield* login(odd, from("203.0.113.9"))).toBe("AuthenticationFailed")
      expect((yield* TestAuth.events).filter((e) => e._tag === "Unlocked").length).toBe(2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("concurrent attempts on one key: exactly `limit` reach the backend", () => {
    const { layer, seen } = setup({ by: "username", limit: 5 })
    return Effect.gen(function*() {
      const outcomes = yield* Effect.all(Array.from({ length: 100 }, () => login(wrong)), { concurrency: "unbounded" })
      expect(seen.length).toBe(5)
      expect(outcomes.filter((o) => o === "LockedOut").length).toBe(95)
    }).pipe(Effect.provide(layer))
  })
})

describe("client addresses behind proxies", () => {
  const trusted = ["10.0.0.0/8", "::1"].map((r) => IpAddress.parseRange(r)!)
  it("X-Forwarded-For counts only from a trusted peer, from the right, up to the first untrusted hop", () => {
    expect(IpAddress.clientAddress("203.0.113.9", "198.51.100.1", trusted)).toBe("203.0.113.9")
    expect(IpAddress.clientAddress("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.1", trusted)).toBe("198.51.100.1")
    expect(IpAddress.clientAddress("::1", "10.9.9.9", trusted)).toBe("10.9.9.9")
    expect(IpAddress.clientAddress("10.0.0.2", "junk, 10.0.0.1", trusted)).toBe("10.0.0.1")
    expect(IpAddress.clientAddress("10.0.0.2", undefined, trusted)).toBe("10.0.0.2")
    expect(IpAddress.clientAddress("10.0.0.2", "198.51.100.1", [])).toBe("10.0.0.2")
  })
  it("a hop written with a port (as Azure Application Gateway writes them) or in brackets is its address", () => {
    expect(IpAddress.clientAddress("10.0.0.2", "203.0.113.7:5555", trusted)).toBe("203.0.113.7")
    expect(IpAddress.clientAddress("10.0.0.2", "6.6.6.6:1, 203.0.113.7:5555, 10.0.0.1:443", trusted)).toBe("203.0.113.7")
    expect(IpAddress.clientAddress("10.0.0.2", "[2001:db8::1]:443", trusted)).toBe("2001:db8::1")
    expect(IpAddress.clientAddress("10.0.0.2", " [2001:db8::1] ", trusted)).toBe("2001:db8::1")
    // A bare IPv6 address keeps its last group; what is not an address still ends the walk.
    expect(IpAddress.clientAddress("10.0.0.2", "2001:db8::1:443", trusted)).toBe("2001:db8::1:443")
    expect(IpAddress.clientAddress("10.0.0.2", "203.0.113.7:99999", trusted)).toBe("10.0.0.2")
    expect(IpAddress.clientAddress("10.0.0.2", "[203.0.113.7:1]", trusted)).toBe("10.0.0.2")
  })
  it("parses IPv4, IPv6 and IPv4-mapped addresses and ranges", () => {
    expect(IpAddress.parse("::ffff:192.0.2.1")?.text).toBe("192.0.2.1")
    expect(IpAddress.parse("2001:DB8::1")?.text).toBe("2001:db8:0:0:0:0:0:1")
    expect(IpAddress.parse("1.2.3")).toBeUndefined()
    expect(IpAddress.parse("1:2:3:4:5:6:7:8:9")).toBeUndefined()
    expect(IpAddress.contains(IpAddress.parseRange("192.0.2.0/24")!, IpAddress.parse("192.0.2.200")!)).toBe(true)
    expect(IpAddress.contains(IpAddress.parseRange("192.0.2.0/24")!, IpAddress.parse("192.0.3.1")!)).toBe(false)
  })
})

describe("HTTP", () => {
  // `/me` behind Basic and a memory lockout, on a server of `createServer`; the backend counts.
  const lockedServer = (
    lockout: Lockout.Options,
    httpOptions: HttpAuth.Options,
    createServer: () => http.Server = () => http.createServer()
  ) => {
    const { backend, seen } = counting()
    const routes = HttpRouter.empty.pipe(
      HttpRouter.get("/me", Effect.map(CurrentUser.CurrentUser, ({ user }) => HttpServerResponse.text(user.username))),
      HttpRouter.use(HttpAuth.requireUser)
    )
    const base = TestAuth.layer([backend])
    const auth = Lockout.layerAuthService(base).pipe(Layer.provide(Lockout.layerMemory(lockout)), Layer.provideMerge(base))
    const server = HttpServer.serve(routes).pipe(
      Layer.provideMerge(HttpAuth.layer({ basic: true, bearer: false, ...httpOptions })),
      Layer.provide(auth),
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
    )
    return { seen, server }
  }

  it.live("a locked-out request is 429 with Retry-After; the client address comes from a trusted proxy", () => {
    const { seen, server } = lockedServer({ by: "ip", limit: 2, coolOff: "90 seconds" }, { trustedProxies: ["127.0.0.1"] })
    return Effect.gen(function*() {
      const context = yield* Layer.build(server)
      const url = HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
      const get = (password: string, forwardedFor: string) =>
        Effect.promise(() =>
          fetch(`${url}/me`, {
            headers: {
              authorization: `Basic ${Buffer.from(`alice:${password}`).toString("base64")}`,
              "x-forwarded-for": forwardedFor
            }
          })
        )
      expect((yield* get("wrong", "203.0.113.7")).status).toBe(401)
      expect((yield* get("wrong", "203.0.113.7")).status).toBe(401)
      const locked = yield* get("right", "203.0.113.7")
      expect(locked.status).toBe(429)
      expect(locked.headers.get("retry-after")).toBe("90")
      expect(seen.map((r) => r?.remoteAddress)).toEqual(["203.0.113.7", "203.0.113.7"])
      const other = yield* get("right", "198.51.100.1")
      expect(other.status).toBe(200)
      expect(yield* Effect.promise(() => other.text())).toBe("alice")
    }).pipe(Effect.scoped)
  })

  // Node forgets a socket's peer once the client resets the connection, unless it was read: a
  // login sent and reset at once had no address, so `deny` and an IP lock never applied to it and
  // its backend ran (a password hash) for nobody.
  for (const [name, createServer] of [["node:http", () => http.createServer()], ["NodeServer", () => NodeServer.createServer()]] as const) {
    it.live(`a client that resets its connection right after its login runs no backend past an IP lock (${name})`, () => {
      const { seen, server } = lockedServer({ by: "ip", limit: 2 }, {}, createServer)
      const basic = `Basic ${Buffer.from("alice:wrong").toString("base64")}`
      return Effect.gen(function*() {
        const context = yield* Layer.build(server)
        const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
        const resetAfterSending = Effect.async<void>((resume) => {
          const socket = net.connect(address.port, "127.0.0.1", () => {
            socket.write(`GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic}\r\n\r\n`)
            socket.resetAndDestroy()
          })
          socket.on("error", () => {})
          socket.on("close", () => resume(Effect.void))
        })
        const get = Effect.promise(() => fetch(`${HttpServer.formatAddress(address)}/me`, { headers: { authorization: basic } }))
        expect((yield* get).status).toBe(401)
        expect((yield* get).status).toBe(401)
        expect((yield* get).status).toBe(429)
        const before = seen.length
        for (let i = 0; i < 20; i++) yield* resetAfterSending
        yield* Effect.sleep("200 millis")
        // none reached the backend, and none without an address
        expect(seen.slice(before)).toEqual([])
        expect(seen.every((r) => r?.remoteAddress === "127.0.0.1")).toBe(true)
      }).pipe(Effect.scoped)
    })
  }

  it("toResponse carries Retry-After for a 429 built with it", () => {
    const failure = new HttpAuth.TooManyRequests()
    failure.retryAfter = 30
    const response = HttpAuth.toResponse(failure)
    expect(response.status).toBe(429)
    expect(response.headers["retry-after"]).toBe("30")
  })
})
