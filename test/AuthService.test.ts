import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Equal, Exit, Fiber, Hash, Layer, Option, Redacted, Schedule, Schema, TestClock } from "effect"
import { AuthError, AuthEvents, AuthService, Credentials, TestAuth, TestBackend } from "../src/index.js"
import { hostile } from "./utils/hostile.js"

const alice = TestBackend.user("alice")
const bob = TestBackend.user("bob")
const creds = { username: "alice", password: "pw" }

const run = (backends: ReadonlyArray<TestBackend.TestBackend>, ...credentials: [] | [unknown]) =>
  AuthService.authenticateUnknown(credentials.length === 0 ? creds : credentials[0]).pipe(Effect.provide(TestAuth.layer(backends)))

const runWithEvents = (backends: ReadonlyArray<TestBackend.TestBackend>, credentials: unknown = creds) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(AuthService.authenticateUnknown(credentials))
    const events = yield* TestAuth.events
    return { exit, events }
  }).pipe(Effect.provide(TestAuth.layer(backends)))

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

describe("AuthService.authenticate: the fold", () => {
  it.effect("the first success wins, names its backend, and later backends never run", () =>
    Effect.gen(function*() {
      const a = TestBackend.noMatch("a")
      const b = TestBackend.succeed("b", alice)
      const c = TestBackend.succeed("c", bob)
      const result = yield* run([a, b, c])
      expect(result.user).toEqual(alice)
      expect(result.backend).toBe("b")
      expect(a.calls).toHaveLength(1)
      expect(b.calls).toHaveLength(1)
      expect(c.calls).toHaveLength(0)
    }))

  it.effect("NoMatch moves on; nobody matched is AuthenticationFailed listing every attempt in order", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(run([
        TestBackend.noMatch("a", "unknown-user"),
        TestBackend.noMatch("b", "invalid-credentials"),
        TestBackend.noMatch("c", "inactive-user")
      ]))
      expect(error).toBeInstanceOf(AuthError.AuthenticationFailed)
      const failed = error as AuthError.AuthenticationFailed
      expect(failed.attempts.map((a) => [a.backend, a.reason])).toEqual([
        ["a", "unknown-user"],
        ["b", "invalid-credentials"],
        ["c", "inactive-user"]
      ])
    }))

  it.effect("PermissionDenied stops the chain at once", () =>
    Effect.gen(function*() {
      const a = TestBackend.noMatch("a")
      const b = TestBackend.deny("b", "locked out")
      const c = TestBackend.succeed("c", alice)
      const error = yield* Effect.flip(run([a, b, c]))
      expect(error).toEqual(new AuthError.PermissionDenied({ backend: "b", reason: "locked out" }))
      expect(c.calls).toHaveLength(0)
    }))

  it.effect("credentials that do not decode are NoMatch(unsupported-credentials), and the backend is not called", () =>
    Effect.gen(function*() {
      const tokens = TestBackend.make("tokens", {
        behaviour: TestBackend.Behaviour.succeed(bob),
        credentials: Credentials.Token
      })
      const passwords = TestBackend.make("passwords", {
        behaviour: TestBackend.Behaviour.succeed(alice),
        credentials: Credentials.UsernamePassword
      })
      const result = yield* run([tokens, passwords])
      expect(result.backend).toBe("passwords")
      expect(tokens.calls).toHaveLength(0)

      const error = yield* Effect.flip(run([tokens], { username: "alice", password: "x".repeat(5000) }))
      expect((error as AuthError.AuthenticationFailed).attempts).toEqual([
        new AuthError.NoMatch({ backend: "tokens", reason: "unsupported-credentials" })
      ])
    }))

  it.effect("excess keys are unsupported, as Django's signature check rejects unknown keywords", () =>
    Effect.gen(function*() {
      const passwords = TestBackend.make("passwords", {
        behaviour: TestBackend.Behaviour.succeed(alice),
        credentials: Credentials.UsernamePassword
      })
      const error = yield* Effect.flip(run([passwords], { ...creds, otp: "123456" }))
      expect(error._tag).toBe("AuthenticationFailed")
      expect(passwords.calls).toHaveLength(0)
    }))

  it.effect("malformed credentials (not an object, oversized fields) are typed failures, never defects", () =>
    Effect.gen(function*() {
      const passwords = TestBackend.make("passwords", {
        behaviour: TestBackend.Behaviour.succeed(alice),
        credentials: Credentials.UsernamePassword
      })
      for (const raw of [null, undefined, 42, "alice:pw", [], { username: "a".repeat(151), password: "pw" }]) {
        const exit = yield* Effect.exit(run([passwords], raw))
        expect(failureOf(exit)._tag).toBe("AuthenticationFailed")
      }
    }))

  it.effect("a TransportError fails the call under the default policy, and later backends never run", () =>
    Effect.gen(function*() {
      const c = TestBackend.succeed("c", alice)
      const error = yield* Effect.flip(run([TestBackend.noMatch("a"), TestBackend.unavailable("b", "refused"), c]))
      expect(error).toEqual(new AuthError.TransportError({ backend: "b", cause: "refused" }))
      expect(c.calls).toHaveLength(0)
    }))

  it.effect("under fallthrough a TransportError is recorded and skipped; a later success still wins", () =>
    Effect.gen(function*() {
      const result = yield* run([
        TestBackend.unavailable("ldap", "down", { onTransportError: "fallthrough" }),
        TestBackend.succeed("local", alice)
      ])
      expect(result.backend).toBe("local")
    }))

  it.effect("the result is what `new Authenticated` builds: same class, keys in the same order, equal, same JSON", () =>
    Effect.gen(function*() {
      const plain = yield* run([TestBackend.noMatch("a"), TestBackend.succeed("b", alice)])
      const degraded = yield* run([
        TestBackend.unavailable("ldap", "down", { onTransportError: "fallthrough" }),
        TestBackend.succeed("local", alice)
      ])
      const cases = [
        [plain, new AuthService.Authenticated({ user: alice, backend: "b" })],
        [degraded, new AuthService.Authenticated({ user: alice, backend: "local", degraded: true })]
      ] as const
      for (const [actual, expected] of cases) {
        expect(actual).toBeInstanceOf(AuthService.Authenticated)
        expect(Object.keys(actual)).toEqual(Object.keys(expected))
        expect(Equal.equals(actual, expected)).toBe(true)
        expect(Hash.hash(actual)).toBe(Hash.hash(expected))
        expect(JSON.stringify(actual)).toBe(JSON.stringify(expected))
      }
      expect(Object.keys(plain)).toEqual(["user", "backend", "_tag"])
      expect(degraded.degraded).toBe(true)
    }))

  it.effect("nobody matched after a skipped TransportError is BackendUnavailable, attempts in order", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(run([
        TestBackend.noMatch("a", "unknown-user"),
        TestBackend.unavailable("ldap", "down", { onTransportError: "fallthrough" }),
        TestBackend.noMatch("c", "invalid-credentials")
      ]))
      expect(error).toBeInstanceOf(AuthError.BackendUnavailable)
      expect((error as AuthError.BackendUnavailable).attempts).toEqual([
        new AuthError.NoMatch({ backend: "a", reason: "unknown-user" }),
        new AuthError.TransportError({ backend: "ldap", cause: "down" }),
        new AuthError.NoMatch({ backend: "c", reason: "invalid-credentials" })
      ])
    }))

  it.effect("a backend can be given as its Tag and swapped by providing another layer", () =>
    Effect.gen(function*() {
      class Directory extends Effect.Tag("test/Directory")<Directory, TestBackend.TestBackend>() {}
      const layer = (backend: TestBackend.TestBackend) =>
        TestAuth.layer([Directory]).pipe(Layer.provide(Layer.succeed(Directory, backend)))
      const first = yield* AuthService.authenticate(creds).pipe(
        Effect.provide(layer(TestBackend.succeed("dir", alice)))
      )
      const second = yield* AuthService.authenticate(creds).pipe(
        Effect.provide(layer(TestBackend.succeed("dir", bob)))
      )
      expect([first.user.username, second.user.username]).toEqual(["alice", "bob"])
    }))
})

describe("AuthService: prebuilt failures", () => {
  // Every call shares the prebuilt NoMatch objects (each AuthenticationFailed.attempts holds them):
  // a request whose code tagged its failure with its own id changed what every other request saw.
  it.effect("are frozen: one request's code cannot change the failure another request sees", () =>
    Effect.gen(function*() {
      const first = yield* Effect.flip(AuthService.authenticate({ username: "alice", password: "wrong" }))
      const attempt = (first as AuthError.AuthenticationFailed).attempts[0]!
      const tagged = Effect.try(() => Object.assign(attempt, { requestId: "req-1" }))
      expect((yield* Effect.exit(tagged))._tag).toBe("Failure")
      const second = yield* Effect.flip(AuthService.authenticate({ username: "bob", password: "wrong" }))
      const seen = (second as AuthError.AuthenticationFailed).attempts[0]!
      expect(seen).toBe(attempt)
      expect("requestId" in seen).toBe(false)
      expect(Cause.pretty(Cause.fail(seen))).toContain("NoMatch")
    }).pipe(Effect.provide(TestAuth.layer([TestBackend.noMatch("ldap")]))))
})

describe("AuthService: policies", () => {
  it.effect("a backend that hangs is cut at its timeout and becomes a TransportError", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(run([TestBackend.hang("slow", { timeout: "2 seconds" })]))
      yield* TestClock.adjust("1999 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 millis")
      const error = failureOf(yield* Fiber.await(fiber))
      expect(error).toBeInstanceOf(AuthError.TransportError)
      expect((error as AuthError.TransportError).backend).toBe("slow")
    }))

  it.effect("a timed-out backend under fallthrough lets a later backend answer", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(run([
        TestBackend.hang("slow", { timeout: "1 second", onTransportError: "fallthrough" }),
        TestBackend.succeed("local", alice)
      ]))
      yield* TestClock.adjust("1 second")
      const result = yield* Fiber.join(fiber)
      expect(result.backend).toBe("local")
    }))

  it.effect("a flaky backend succeeds on retry, each retry waiting for its schedule", () =>
    Effect.gen(function*() {
      const flaky = TestBackend.scripted("flaky", [
        TestBackend.Behaviour.unavailable("reset"),
        TestBackend.Behaviour.unavailable("reset"),
        TestBackend.Behaviour.succeed(alice)
      ], { retry: Schedule.spaced("100 millis").pipe(Schedule.intersect(Schedule.recurs(3))) })
      const fiber = yield* Effect.fork(run([flaky]))
      yield* TestClock.adjust("100 millis")
      expect(flaky.calls).toHaveLength(2)
      yield* TestClock.adjust("100 millis")
      const result = yield* Fiber.join(fiber)
      expect(result.backend).toBe("flaky")
      expect(flaky.calls).toHaveLength(3)
    }))

  it.effect("retries stop when the schedule is exhausted and the TransportError applies", () =>
    Effect.gen(function*() {
      const down = TestBackend.unavailable("down", "refused", { retry: Schedule.recurs(2) })
      const error = yield* Effect.flip(run([down]))
      expect(error._tag).toBe("TransportError")
      expect(down.calls).toHaveLength(3)
    }))

  it.effect("a timeout counts as a TransportError for retries", () =>
    Effect.gen(function*() {
      const slowThenFine = TestBackend.scripted("s", [TestBackend.Behaviour.hang, TestBackend.Behaviour.succeed(alice)], {
        timeout: "1 second",
        retry: Schedule.recurs(1)
      })
      const fiber = yield* Effect.fork(run([slowThenFine]))
      yield* TestClock.adjust("1 second")
      const result = yield* Fiber.join(fiber)
      expect(result.user).toEqual(alice)
      expect(slowThenFine.calls).toHaveLength(2)
    }))

  it.effect("NoMatch and PermissionDenied are never retried", () =>
    Effect.gen(function*() {
      const retry = Schedule.recurs(5)
      const noMatch = TestBackend.scripted("n", [TestBackend.Behaviour.noMatch(), TestBackend.Behaviour.succeed(alice)], { retry })
      const denied = TestBackend.scripted("d", [TestBackend.Behaviour.deny(), TestBackend.Behaviour.succeed(alice)], { retry })
      expect((yield* Effect.flip(run([noMatch])))._tag).toBe("AuthenticationFailed")
      expect((yield* Effect.flip(run([denied])))._tag).toBe("PermissionDenied")
      expect(noMatch.calls).toHaveLength(1)
      expect(denied.calls).toHaveLength(1)
    }))
})

describe("AuthService: LoginFailed events", () => {
  const loginFailedCount = (events: ReadonlyArray<AuthEvents.AuthEvent>) =>
    events.filter((e) => e._tag === "LoginFailed").length

  it.effect("exactly one LoginFailed for AuthenticationFailed, BackendUnavailable and PermissionDenied", () =>
    Effect.gen(function*() {
      const chains = [
        [TestBackend.noMatch("a"), TestBackend.noMatch("b")],
        [TestBackend.unavailable("a", "down", { onTransportError: "fallthrough" }), TestBackend.noMatch("b")],
        [TestBackend.noMatch("a"), TestBackend.deny("b")]
      ]
      const tags = []
      for (const chain of chains) {
        const { events, exit } = yield* runWithEvents(chain)
        expect(loginFailedCount(events)).toBe(1)
        const event = events[0] as AuthEvents.LoginFailed
        expect(event.error).toEqual(failureOf(exit))
        tags.push(event.error._tag)
      }
      expect(tags).toEqual(["AuthenticationFailed", "BackendUnavailable", "PermissionDenied"])
    }))

  it.effect("no event on success, nor when a TransportError escapes under \"fail\"", () =>
    Effect.gen(function*() {
      const ok = yield* runWithEvents([TestBackend.noMatch("a"), TestBackend.succeed("b", alice)])
      expect(Exit.isSuccess(ok.exit)).toBe(true)
      expect(ok.events).toEqual([])
      const escaped = yield* runWithEvents([TestBackend.unavailable("a")])
      expect(failureOf(escaped.exit)._tag).toBe("TransportError")
      expect(escaped.events).toEqual([])
    }))

  it.effect("credentials are cleansed as Django does", () =>
    Effect.gen(function*() {
      const raw = {
        username: "alice",
        password: "hunter2",
        API_KEY: "k",
        accessToken: "t",
        client_secret: "s",
        Signature: "sig",
        otp: "123456"
      }
      const { events } = yield* runWithEvents([TestBackend.noMatch("a")], raw)
      expect((events[0] as AuthEvents.LoginFailed).credentials).toEqual({
        username: "alice",
        password: "********************",
        API_KEY: "********************",
        accessToken: "********************",
        client_secret: "********************",
        Signature: "********************",
        otp: "123456"
      })
    }))

  it.effect("a nested credential (an OIDC callback given as plain strings) is cleansed whole: no code or verifier in the event", () =>
    Effect.gen(function*() {
      const raw = {
        oidcCallback: { url: "https://app.example.com/oidc/callback?code=the-code&state=s", state: "s", nonce: "n", codeVerifier: "the-verifier" },
        scopes: ["a"],
        username: "alice"
      }
      const { events } = yield* runWithEvents([TestBackend.noMatch("a")], raw)
      expect((events[0] as AuthEvents.LoginFailed).credentials).toEqual({
        oidcCallback: "********************",
        scopes: "********************",
        username: "alice"
      })
      expect(JSON.stringify(events) + String(events[0])).not.toMatch(/the-code|the-verifier/)
      // a Redacted value stays itself
      const secret = Redacted.make("x")
      expect(Credentials.cleanse({ username: secret }).username).toBe(secret)
    }))

  it.effect("credentials in an array are cleansed whole: an index says nothing about its value", () =>
    Effect.gen(function*() {
      const { events } = yield* runWithEvents([TestBackend.noMatch("a")], ["alice", "hunter2"])
      expect((events[0] as AuthEvents.LoginFailed).credentials).toEqual({ 0: "********************", 1: "********************" })
      expect(Credentials.cleanse({ username: "alice", 1: "hunter2" })).toEqual({ 1: "********************", username: "alice" })
    }))

  describe("credentials that throw when read are credentials of no kind: AuthenticationFailed and one event, never a defect", () => {
    const revoked = () => {
      const { proxy, revoke } = Proxy.revocable({}, {})
      revoke()
      return proxy
    }
    const throwing = () => {
      throw new Error("hostile")
    }
    const cases: ReadonlyArray<readonly [string, () => unknown, Record<string, unknown>]> = [
      ["a password getter that throws", () => ({ username: "alice", get password() { return throwing() } }), {
        username: "alice",
        password: "********************"
      }],
      ["a username getter that throws", () => ({ get username() { return throwing() }, password: "pw" }), {
        username: "********************",
        password: "********************"
      }],
      ["a Proxy whose ownKeys trap throws", () => new Proxy({ username: "alice", password: "pw" }, { ownKeys: throwing }), {}],
      ["a Proxy whose every trap throws", () =>
        new Proxy({}, { get: throwing, has: throwing, ownKeys: throwing, getOwnPropertyDescriptor: throwing, getPrototypeOf: throwing }), {}],
      ["a revoked Proxy", revoked, {}]
    ]
    for (const [name, make, cleansed] of cases) {
      it.effect(name, () =>
        Effect.gen(function*() {
          const typed = TestBackend.make("typed", { behaviour: TestBackend.Behaviour.succeed(alice), credentials: Credentials.UsernamePassword })
          const schema = TestBackend.make("schema", { behaviour: TestBackend.Behaviour.succeed(alice) })
          const { events, exit } = yield* runWithEvents([typed, schema], make())
          const error = failureOf(exit)
          expect(error).toBeInstanceOf(AuthError.AuthenticationFailed)
          expect((error as AuthError.AuthenticationFailed).attempts.map((a) => [a.backend, a.reason])).toEqual([
            ["typed", "unsupported-credentials"],
            ["schema", "unsupported-credentials"]
          ])
          expect(typed.calls).toEqual([])
          expect(schema.calls).toEqual([])
          expect(events.length).toBe(1)
          expect((events[0] as AuthEvents.LoginFailed).credentials).toEqual(cleansed)
        }))
    }
  })

  describe("a request that throws when read is no defect: a second factor is not asked, other backends are", () => {
    const requests: ReadonlyArray<readonly [string, () => unknown]> = [
      ["a Proxy whose every trap throws", hostile],
      ["a stage getter that throws", () => ({
        get stage() {
          throw new Error("hostile")
        }
      })]
    ]
    for (const [name, request] of requests) {
      it.effect(name, () =>
        Effect.gen(function*() {
          // the fold read `request?.stage` for a second-factor backend unguarded, and died
          const otp = TestBackend.make("otp", { behaviour: TestBackend.Behaviour.succeed(alice) })
          const passwords = TestBackend.noMatch("passwords", "invalid-credentials")
          const exit = yield* Effect.exit(AuthService.authenticateUnknown(creds, request() as never)).pipe(
            Effect.provide(TestAuth.layer([passwords, { ...otp, secondFactor: true }]))
          )
          const error = failureOf(exit)
          expect(error).toBeInstanceOf(AuthError.AuthenticationFailed)
          expect((error as AuthError.AuthenticationFailed).attempts.map((a) => [a.backend, a.reason])).toEqual([
            ["passwords", "invalid-credentials"],
            ["otp", "unsupported-credentials"]
          ])
          expect(passwords.calls).toHaveLength(1)
          expect(otp.calls).toEqual([])
        }))
    }
  })

  it("a \"__proto__\" key stays a plain key (found by the property below)", () => {
    const raw = JSON.parse(`{"__proto__": "x", "password": "pw"}`)
    expect(Credentials.cleanse(raw)).toEqual(JSON.parse(`{"__proto__": "x", "password": "********************"}`))
    expect(Object.keys(Credentials.cleanse(raw))).toEqual(["__proto__", "password"])
  })

  it.prop(
    "cleanse replaces exactly the values of sensitive and index keys",
    [Schema.Record({ key: Schema.String, value: Schema.String })],
    ([raw]) => {
      const cleansed = Credentials.cleanse(raw)
      expect(Object.keys(cleansed)).toEqual(Object.keys(raw))
      for (const key of Object.keys(raw)) {
        const sensitive = /api|token|key|secret|password|signature/i.test(key) || /^(?:0|[1-9][0-9]*)$/.test(key)
        expect(cleansed[key]).toBe(sensitive ? "********************" : raw[key])
      }
    }
  )
})

describe("AuthService: configuration", () => {
  it.effect("no backends is a typed configuration error when the layer is built", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(TestAuth.layer([])).pipe(Effect.scoped))
      expect(error).toBeInstanceOf(AuthError.AuthConfigError)
    }))

  it.effect("two backends with one id are a configuration error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Layer.build(TestAuth.layer([TestBackend.noMatch("x"), TestBackend.noMatch("x")])).pipe(Effect.scoped)
      )
      expect(error.message).toContain("\"x\"")
    }))
})

describe("AuthService.getUser", () => {
  it.effect("asks the backend that issued the id; an unknown backend or a malformed id yields none", () =>
    Effect.gen(function*() {
      const a = TestBackend.make("a", { behaviour: TestBackend.Behaviour.noMatch(), users: [bob] })
      const b = TestBackend.make("b", { behaviour: TestBackend.Behaviour.noMatch(), users: [alice] })
      const auth = yield* AuthService.AuthService
      expect(yield* auth.getUser("b", "alice")).toEqual(Option.some(alice))
      expect(yield* auth.getUser("a", "alice")).toEqual(Option.none())
      expect(yield* auth.getUser("a", "bob")).toEqual(Option.some(bob))
      expect(yield* auth.getUser("removed", "alice")).toEqual(Option.none())
      expect(yield* auth.getUser("b", "")).toEqual(Option.none())
      expect(yield* auth.getUser("b", "x".repeat(300))).toEqual(Option.none())
      void a
    }).pipe(Effect.provide(TestAuth.layer([
      TestBackend.make("a", { behaviour: TestBackend.Behaviour.noMatch(), users: [bob] }),
      TestBackend.make("b", { behaviour: TestBackend.Behaviour.noMatch(), users: [alice] })
    ]))))

  // A password hash is checked uninterruptibly (the work runs on libuv's pool and cannot be
  // stopped), and a stored hash may cost minutes: the timeout must still answer at its deadline,
  // leaving the work to end in the background.
  it.effect("the policy timeout answers at its deadline even when the backend's work cannot be interrupted", () =>
    Effect.gen(function*() {
      const base = TestBackend.make("u", { behaviour: TestBackend.Behaviour.noMatch(), policy: { timeout: "1 second" } })
      const stuck = { ...base, authenticate: () => Effect.uninterruptible(Effect.never) }
      const fiber = yield* Effect.fork(AuthService.authenticate({ token: "t" }).pipe(Effect.provide(TestAuth.layer([stuck]))))
      yield* TestClock.adjust("1 second")
      // (without the fix the fiber never ends, and this test fails on vitest's timeout)
      expect(failureOf(yield* Fiber.await(fiber))._tag).toBe("TransportError")
    }))

  // Disconnected, a retried try that cannot be stopped ran beside the next one: four attempts of
  // one login at once, each holding a hasher permit.
  it.effect("with retries, a try that timed out is waited for before the next: tries never overlap", () =>
    Effect.gen(function*() {
      let running = 0
      let peak = 0
      const base = TestBackend.make("u", {
        behaviour: TestBackend.Behaviour.noMatch(),
        policy: { timeout: "1 second", retry: Schedule.recurs(3) }
      })
      const slow = {
        ...base,
        authenticate: () =>
          Effect.uninterruptible(Effect.acquireUseRelease(
            Effect.sync(() => peak = Math.max(peak, ++running)),
            () => Effect.sleep("3 seconds"),
            () => Effect.sync(() => running--)
          )).pipe(Effect.zipRight(AuthError.noMatch("u", "invalid-credentials")))
      }
      const fiber = yield* Effect.fork(AuthService.authenticate({ token: "t" }).pipe(Effect.provide(TestAuth.layer([slow]))))
      for (let i = 0; i < 4; i++) yield* TestClock.adjust("3 seconds")
      expect(failureOf(yield* Fiber.await(fiber))._tag).toBe("TransportError")
      expect(peak).toBe(1)
    }))

  it.effect("getUser runs under the backend's timeout", () =>
    Effect.gen(function*() {
      const hanging = TestBackend.make("h", { behaviour: TestBackend.Behaviour.noMatch(), policy: { timeout: "1 second" } })
      const slow = { ...hanging, getUser: () => Effect.never }
      const fiber = yield* Effect.fork(AuthService.getUser("h", "x").pipe(Effect.provide(TestAuth.layer([slow]))))
      yield* TestClock.adjust("1 second")
      expect(failureOf(yield* Fiber.await(fiber))._tag).toBe("TransportError")
    }))
})
