import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, FastCheck, Layer, Option, Redacted } from "effect"
import { AuthError, AuthEvents, AuthService, Control, MemorySessionStore, Session, TestAuth, TestBackend } from "../src/index.js"
import * as FoldLaws from "../src/testing/FoldLaws.js"

const credentials = { username: "alice", password: "pw" }
const presetOnly = (preset: Control.Preset) => FoldLaws.chain({ control: FastCheck.constant(preset) })

// A property's runs are promises that settle in microtasks: 500 of them held the worker's event
// loop for 11.6 s in one stretch (see docs/testing.md on vitest's "Timeout calling onTaskUpdate").
// One turn of the event loop per run lets it breathe.
const breathing = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.zipRight(Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve))), effect)

const success = (user = "alice"): FoldLaws.ModelOutcome => ({ _tag: "Success", user })
const noMatch: FoldLaws.ModelOutcome = { _tag: "NoMatch", reason: "invalid-credentials" }
const down: FoldLaws.ModelOutcome = { _tag: "TransportError" }
const denied: FoldLaws.ModelOutcome = { _tag: "PermissionDenied" }

describe("control maps: the real fold equals the reference model (fast-check)", () => {
  for (const preset of ["required", "requisite", "sufficient", "optional", "django"] as const) {
    it.effect.prop(`every backend ${preset}`, [presetOnly(preset)], ([chain]) => breathing(FoldLaws.check(chain)))
  }
  // More runs where the rare interleavings live (a success after a recorded failure, skips).
  const many = { timeout: 60_000, fastCheck: { numRuns: 500 } }
  it.effect.prop("random presets and random maps, mixed", [FoldLaws.chain()], ([chain]) => breathing(FoldLaws.check(chain)), many)
  it.effect.prop("random maps only", [FoldLaws.chain({ control: FoldLaws.controlMap })], ([chain]) =>
    breathing(FoldLaws.check(chain)), many)
})

describe("the laws of each preset, stated without the model (fast-check)", () => {
  const outcomes = FastCheck.array(FoldLaws.outcome, { minLength: 1, maxLength: 6 })
  const all = (preset: Control.Preset, list: ReadonlyArray<FoldLaws.ModelOutcome>) =>
    list.map((outcome): FoldLaws.ModelEntry => ({ outcome, control: preset }))

  it.prop("required: succeeds iff every backend succeeds for one user; all are asked unless one denies", [outcomes], ([list]) => {
    const run = FoldLaws.reference(all("required", list))
    const first = list[0]!
    const allSame = list.every((o) => o._tag === "Success" && first._tag === "Success" && o.user === first.user)
    expect(run.result._tag === "Authenticated").toBe(allSame)
    const deniedAt = list.findIndex((o) => o._tag === "PermissionDenied")
    expect(run.asked.length).toBe(deniedAt < 0 ? list.length : deniedAt + 1)
  })

  it.prop("requisite: the first failure stops the chain", [outcomes], ([list]) => {
    const run = FoldLaws.reference(all("requisite", list))
    const first = list[0]!
    const failedAt = list.findIndex((o) => !(o._tag === "Success" && first._tag === "Success" && o.user === first.user))
    expect(run.asked.length).toBe(failedAt < 0 ? list.length : failedAt + 1)
    expect(run.result._tag === "Authenticated").toBe(failedAt < 0)
  })

  it.prop("sufficient: the first success wins, failures other than a denial are ignored", [outcomes], ([list]) => {
    const run = FoldLaws.reference(all("sufficient", list))
    const stop = list.findIndex((o) => o._tag === "Success" || o._tag === "PermissionDenied")
    const at = list[stop]
    if (at === undefined) expect(["AuthenticationFailed", "BackendUnavailable"]).toContain(run.result._tag)
    else if (at._tag === "PermissionDenied") expect(run.result).toEqual({ _tag: "PermissionDenied", backend: stop })
    else expect(run.result).toMatchObject({ _tag: "Authenticated", backend: stop })
  })

  it.prop("optional: succeeds iff some backend succeeds and none denies", [outcomes], ([list]) => {
    const run = FoldLaws.reference(all("optional", list))
    const denies = list.some((o) => o._tag === "PermissionDenied")
    expect(run.result._tag === "Authenticated").toBe(!denies && list.some((o) => o._tag === "Success"))
  })

  it.prop("a success is degraded iff a backend that could not answer was passed over", [FoldLaws.chain()], ([chain]) => {
    const run = FoldLaws.reference(chain)
    if (run.result._tag === "Authenticated") {
      expect(run.result.degraded).toBe(run.asked.some((i) => chain[i]!.outcome._tag === "TransportError"))
    }
  })

  it.effect.prop("the django preset through the default path equals explicit django maps through the interpreter", [
    FoldLaws.chain({ control: FastCheck.constant("django") })
  ], ([chain]) =>
    breathing(Effect.all([
      FoldLaws.check(chain),
      FoldLaws.check(chain.map((entry) => ({ ...entry, control: Control.django(entry.onTransportError ?? "fail") })))
    ], { discard: true })))
})

describe("PAM's rules, by example", () => {
  it("a sufficient success after a failed required does not succeed, and the rest is still asked", () => {
    const run = FoldLaws.reference([
      { outcome: noMatch, control: "required" },
      { outcome: success(), control: "sufficient" },
      { outcome: success(), control: "required" }
    ])
    expect(run.result).toEqual({ _tag: "AuthenticationFailed", attempts: [0] })
    expect(run.asked).toEqual([0, 1, 2])
  })

  it("a sufficient success after a passed required ends the stack", () => {
    const run = FoldLaws.reference([
      { outcome: success(), control: "required" },
      { outcome: success(), control: "sufficient" },
      { outcome: noMatch, control: "required" }
    ])
    expect(run.result).toEqual({ _tag: "Authenticated", user: "alice", backend: 0, degraded: false })
    expect(run.asked).toEqual([0, 1])
  })

  it("a stack where everything was ignored fails", () => {
    const run = FoldLaws.reference([{ outcome: noMatch, control: "optional" }, { outcome: noMatch, control: "sufficient" }])
    expect(run.result._tag).toBe("AuthenticationFailed")
  })

  it("the first failure decides the error (a later denial does not replace it)", () => {
    const run = FoldLaws.reference([{ outcome: noMatch, control: "required" }, { outcome: denied, control: "requisite" }])
    expect(run.result._tag).toBe("AuthenticationFailed")
    expect(run.loginFailed).toBe(1)
  })

  it("a second factor for another user is that backend's invalid-credentials", () => {
    const run = FoldLaws.reference([
      { outcome: success("alice"), control: "required" },
      { outcome: success("bob"), control: "required" }
    ])
    expect(run.result).toEqual({ _tag: "AuthenticationFailed", attempts: [1] })
  })

  it("skip jumps over backends", () => {
    const run = FoldLaws.reference([
      { outcome: success(), control: { ...Control.required, success: { skip: 1 } } },
      { outcome: noMatch, control: "requisite" },
      { outcome: success(), control: "required" }
    ])
    expect(run.asked).toEqual([0, 2])
    expect(run.result).toEqual({ _tag: "Authenticated", user: "alice", backend: 2, degraded: false })
  })
})

describe("AuthService with controls", () => {
  // Backends have their own id spaces (the store's key, a directory's name): by id alone, another
  // system's account whose id is also "7" passed as store user 7's second factor.
  it.effect("two required successes with one id but different usernames are two people: AuthenticationFailed", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(AuthService.authenticate(credentials))
      expect(error._tag).toBe("AuthenticationFailed")
      if (error._tag !== "AuthenticationFailed") return
      expect(error.attempts.map((a) => [a.backend, a._tag === "NoMatch" ? a.reason : a._tag])).toEqual([
        ["second", "invalid-credentials"]
      ])
    }).pipe(Effect.provide(TestAuth.layer([
      AuthService.control(TestBackend.succeed("password", TestBackend.user("alice", { id: "7" })), "required"),
      AuthService.control(TestBackend.succeed("second", TestBackend.user("mallory", { id: "7" })), "required")
    ]))))

  it.effect("two required successes with one username but different ids are two people too; the same user passes", () =>
    Effect.gen(function*() {
      const auth = yield* AuthService.make([
        AuthService.control(TestBackend.succeed("password", TestBackend.user("alice", { id: "7" })), "required"),
        AuthService.control(TestBackend.succeed("directory", TestBackend.user("alice", { id: "alice" })), "required")
      ])
      expect((yield* Effect.flip(auth.authenticate(credentials)))._tag).toBe("AuthenticationFailed")
      const same = yield* AuthService.make([
        AuthService.control(TestBackend.succeed("password", TestBackend.user("alice", { id: "7" })), "required"),
        AuthService.control(TestBackend.succeed("totp", TestBackend.user("alice", { id: "7" })), "required")
      ])
      const result = yield* same.authenticate(credentials)
      expect([result.user.id, result.user.username, result.backend]).toEqual(["7", "alice", "password"])
    }).pipe(Effect.provide(AuthEvents.layer)))

  it.effect("a degraded success: the directory was down, the local password held", () =>
    Effect.gen(function*() {
      const result = yield* AuthService.authenticate(credentials)
      expect(result.degraded).toBe(true)
      expect(result.backend).toBe("local")
    }).pipe(Effect.provide(TestAuth.layer([
      AuthService.control(TestBackend.unavailable("ldap"), "sufficient"),
      AuthService.control(TestBackend.succeed("local", TestBackend.user("alice")), "required")
    ]))))

  it.effect("the default path marks degraded too (fallthrough), and not otherwise", () =>
    Effect.gen(function*() {
      const degraded = yield* AuthService.authenticate(credentials).pipe(
        Effect.provide(TestAuth.layer([
          TestBackend.unavailable("ldap", "down", { onTransportError: "fallthrough" }),
          TestBackend.succeed("local", TestBackend.user("alice"))
        ]))
      )
      expect(degraded.degraded).toBe(true)
      const plain = yield* AuthService.authenticate(credentials).pipe(
        Effect.provide(TestAuth.layer([TestBackend.succeed("local", TestBackend.user("alice"))]))
      )
      expect(plain.degraded).toBeUndefined()
    }))

  it.effect("password then a required second factor: both are asked, one LoginFailed when the second fails", () => {
    const password = TestBackend.succeed("password", TestBackend.user("alice"))
    const totp = TestBackend.noMatch("totp", "invalid-credentials")
    return Effect.gen(function*() {
      const exit = yield* Effect.exit(AuthService.authenticate(credentials))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(password.calls.length).toBe(1)
      expect(totp.calls.length).toBe(1)
      const events = yield* TestAuth.events
      expect(events.filter((e) => e._tag === "LoginFailed").length).toBe(1)
    }).pipe(Effect.provide(TestAuth.layer([
      AuthService.control(password, "required"),
      AuthService.control(totp, "required")
    ])))
  })

  it.effect("a bad control map is an AuthConfigError when the layer is built", () =>
    Effect.gen(function*() {
      const bad = { ...Control.required, success: { skip: 0 } }
      const exit = yield* Effect.exit(
        Effect.provide(Effect.map(AuthService.AuthService, (s) => s.backendIds), TestAuth.layer([AuthService.control(TestBackend.noMatch("a"), bad)]))
      )
      expect(exit).toStrictEqual(Exit.fail(new AuthError.AuthConfigError({ message: `control: bad action for "success": {"skip":0}` })))
      expect(Either.isLeft(Control.validate({ ...Control.required, "unknown-user": "succeed" }))).toBe(true)
      expect(Either.isRight(Control.validate("requisite"))).toBe(true)
      // actions JSON cannot show (a bigint, a cycle) are the same typed error, not a thrown TypeError
      const cycle: Record<string, unknown> = {}
      cycle["self"] = cycle
      for (const [action, shown] of [[1n, "bigint"], [cycle, "object"], [() => "x", "() => \"x\""]] as const) {
        const checked = Control.validate({ ...Control.required, success: action })
        expect(Either.isLeft(checked) && checked.left.message).toBe(`control: bad action for "success": ${shown}`)
      }
    }))

  it.effect("a chain runs by the map as it was checked: changing the caller's map later changes nothing", () =>
    Effect.gen(function*() {
      const map: Record<string, unknown> = { ...Control.sufficient }
      const service = yield* Effect.provide(
        AuthService.AuthService,
        TestAuth.layer([
          AuthService.control(TestBackend.noMatch("a"), map as Control.ControlMap),
          TestBackend.succeed("b", TestBackend.user("alice"))
        ])
      )
      expect((yield* service.authenticate(credentials)).user.username).toBe("alice")
      // a valid action would change the outcome, an unchecked one (a backward skip) would loop
      map["invalid-credentials"] = "fail"
      expect((yield* service.authenticate(credentials)).user.username).toBe("alice")
      // a map whose entry throws when read is the typed error, not an exception out of make
      const throwing = Object.defineProperty({ ...Control.required }, "success", {
        get: () => {
          throw new Error("boom")
        }
      })
      const checked = Control.validate(throwing)
      expect(Either.isLeft(checked) && checked.left.message).toBe(`control: the action for "success" cannot be read`)
    }))

  it.effect("checkBackends runs the kit against ordinary backends", () =>
    FoldLaws.checkBackends(
      [
        AuthService.control(TestBackend.unavailable("ldap"), "optional"),
        AuthService.control(TestBackend.noMatch("api", "unsupported-credentials"), "sufficient"),
        AuthService.control(TestBackend.succeed("local", TestBackend.user("alice")), "required")
      ],
      credentials
    ))
})

describe("a degraded login, carried into the session", () => {
  const alice = TestBackend.user("alice")
  const sessions = (backends: Parameters<typeof TestAuth.layer>[0]) =>
    Session.layer({ secret: Redacted.make("a long random app secret, 32+ chars") }).pipe(
      Layer.provide(MemorySessionStore.layer),
      Layer.provideMerge(TestAuth.layer(backends))
    )

  it.effect("login stores the flag, currentUser reads it back", () =>
    Effect.gen(function*() {
      const started = yield* Session.login(yield* AuthService.authenticate(credentials))
      expect(started.degraded).toBe(true)
      const current = Option.getOrThrow(yield* Session.currentUser(started.sessionId))
      expect(current.degraded).toBe(true)
    }).pipe(Effect.provide(sessions([
      AuthService.control(TestBackend.unavailable("directory"), "optional"),
      AuthService.control(TestBackend.succeed("local", alice), "required")
    ]))))

  it.effect("a login that was not degraded has no flag", () =>
    Effect.gen(function*() {
      const started = yield* Session.login(yield* AuthService.authenticate(credentials))
      const current = Option.getOrThrow(yield* Session.currentUser(started.sessionId))
      expect(current.degraded).toBeUndefined()
    }).pipe(Effect.provide(sessions([TestBackend.succeed("local", alice)]))))
})
