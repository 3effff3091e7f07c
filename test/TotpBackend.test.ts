// The second factor in the fold: enrolment, codes with drift and replay protection, recovery
// codes, on the memory, SQLite and PostgreSQL stores.
import * as SqlClient from "@effect/sql/SqlClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as AuthError from "../src/AuthError.js"
import * as AuthService from "../src/AuthService.js"
import * as TotpBackend from "../src/backends/TotpBackend.js"
import * as MemorySessionStore from "../src/MemorySessionStore.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as Session from "../src/Session.js"
import type * as SessionStore from "../src/SessionStore.js"
import type { User } from "../src/User.js"
import * as SqlTables from "../src/internal/sqlTables.js"
import * as SqlTotpStore from "../src/SqlTotpStore.js"
import * as TestAuth from "../src/testing/TestAuth.js"
import * as Totp from "../src/Totp.js"
import * as TotpStore from "../src/TotpStore.js"
import * as UserStore from "../src/UserStore.js"
import { hostile as makeHostile } from "./utils/hostile.js"
import * as Postgres from "./utils/postgres.js"

const T0 = 1_700_000_000_000 // a step boundary plus 20 s: 1_700_000_000 / 30 = 56_666_666.67

const suite = (name: string, store: () => Layer.Layer<TotpStore.TotpStore, unknown>, skip = false) =>
  describe.skipIf(skip)(`TotpBackend on ${name}`, () => {
    // `wrap` stands between the backend and the store: to make a race happen where a test needs it.
    const app = (
      options: TotpBackend.Options = {},
      wrap: (store: TotpStore.Service) => TotpStore.Service = (store) => store
    ) =>
      TestAuth.layer([TotpBackend.TotpBackend]).pipe(
        Layer.provideMerge(TotpBackend.layer(options)),
        Layer.provideMerge(
          Layer.merge(
            MemoryUserStore.layer,
            Layer.effect(TotpStore.TotpStore, Effect.map(TotpStore.TotpStore, wrap)).pipe(Layer.provide(store()))
          )
        )
      )
    const deviceOf = (userId: string) =>
      Effect.map(Effect.flatMap(TotpStore.TotpStore, (store) => store.get(userId)), Option.getOrThrow)

    const setUp = Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const users = yield* UserStore.UserStore
      const alice = yield* users.create({ username: "alice" })
      const enrolled = yield* TotpBackend.enrol(alice, { issuer: "Test" })
      return { alice, secret: enrolled.secret, uri: enrolled.uri }
    })
    // What a call ends in: its error's tag, "success", or "defect" (a store that throws while
    // building its effect, too).
    const outcome = (call: () => unknown) =>
      Effect.map(Effect.exit(Effect.suspend(() => call() as Effect.Effect<unknown, { readonly _tag: string }>)), (exit) =>
        Exit.isSuccess(exit) ? "success" : exit.cause._tag === "Fail" ? exit.cause.error._tag : "defect")
    const codeAt = (secret: Redacted.Redacted<string>, millis: number) => Redacted.value(Totp.generate(secret, millis))
    const attempt = (otpToken: string, username = "alice") =>
      Effect.exit(AuthService.authenticateUnknown({ username, otpToken }))
    const reasonOf = (exit: Exit.Exit<AuthService.Authenticated, AuthError.AuthenticateError>) =>
      Exit.isSuccess(exit)
        ? "success"
        : exit.cause._tag === "Fail" && exit.cause.error._tag === "AuthenticationFailed"
        ? exit.cause.error.attempts.map((a) => a.reason).join(",")
        : exit.cause._tag === "Fail"
        ? exit.cause.error._tag
        : "defect"

    it.effect("an unconfirmed device is no second factor; confirming it takes a right code and gives recovery codes", () =>
      Effect.gen(function*() {
        const { alice, secret, uri } = yield* setUp
        expect(Redacted.value(uri)).toContain(`secret=${Redacted.value(secret)}`)
        expect(reasonOf(yield* attempt(codeAt(secret, T0)))).toBe("unknown-user")
        const wrong = yield* Effect.flip(TotpBackend.confirm(alice.id, "000000"))
        expect(wrong._tag).toBe("InvalidCode")
        yield* TestClock.adjust("1 second") // the throttle's wait after one failure
        // typed as the app shows it, "123 456", as a login takes it too
        const typed = codeAt(secret, T0)
        const codes = yield* TotpBackend.confirm(alice.id, `${typed.slice(0, 3)} ${typed.slice(3)}`)
        expect(codes).toHaveLength(10)
        const store = yield* TotpStore.TotpStore
        expect(yield* store.recoveryCodesLeft(alice.id)).toBe(10)
        expect(Option.getOrThrow(yield* store.get(alice.id)).confirmed).toBe(true)
        // the confirming code is used up
        expect(reasonOf(yield* attempt(codeAt(secret, T0)))).toBe("invalid-credentials")
      }).pipe(Effect.provide(app())))

    it.effect("enrolling again replaces an unconfirmed device, never a confirmed one (AlreadyEnrolled)", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        // before confirmation: a new enrolment replaces the pending secret
        const again = yield* TotpBackend.enrol(alice, { issuer: "Test" })
        expect(Redacted.value(again.secret)).not.toBe(Redacted.value(secret))
        yield* TotpBackend.confirm(alice.id, codeAt(again.secret, T0 - 30_000))
        // after: one request without any code no longer wipes the working device
        const refused = yield* Effect.flip(TotpBackend.enrol(alice, { issuer: "Test" }))
        expect(refused).toBeInstanceOf(TotpBackend.AlreadyEnrolled)
        const device = Option.getOrThrow(yield* Effect.flatMap(TotpStore.TotpStore, (store) => store.get(alice.id)))
        expect([device.confirmed, Redacted.value(device.secret)]).toEqual([true, Redacted.value(again.secret)])
        expect(reasonOf(yield* attempt(codeAt(again.secret, T0)))).toBe("success")
        // removed (from a session that passed the second factor), the user can enrol anew
        yield* Effect.flatMap(TotpStore.TotpStore, (store) => store.remove(alice.id))
        yield* TotpBackend.enrol(alice, { issuer: "Test" })
      }).pipe(Effect.provide(app())))

    // What the user's authenticator app computes: the parameters its URI told it.
    const appCode = (uri: Redacted.Redacted<string>, secret: Redacted.Redacted<string>, millis: number) => {
      const query = new URL(Redacted.value(uri).replace("otpauth://", "http://")).searchParams
      return Redacted.value(Totp.generate(secret, millis, {
        digits: Number(query.get("digits")),
        period: Number(query.get("period")),
        algorithm: query.get("algorithm") as Totp.Algorithm
      }))
    }

    it.effect("a device keeps the code parameters it was enrolled with: the app's codes confirm it and log in, whatever the backend's options", () =>
      Effect.gen(function*() {
        // the backend set to 8 digits, the enrolment without options (6, as its URI says)
        const { alice, secret, uri } = yield* setUp
        expect(Redacted.value(uri)).toContain("&algorithm=SHA1&digits=6&period=30")
        yield* TotpBackend.confirm(alice.id, appCode(uri, secret, T0 - 30_000))
        expect(reasonOf(yield* attempt(appCode(uri, secret, T0)))).toBe("success")
        expect(yield* deviceOf(alice.id)).toMatchObject({ digits: 6, period: 30, algorithm: "SHA1" })
        // an enrolment with parameters of its own: confirm and the backend read them off the device
        const users = yield* UserStore.UserStore
        const bob = yield* users.create({ username: "bob" })
        const other = yield* TotpBackend.enrol(bob, { issuer: "Test", digits: 8, period: 60, algorithm: "SHA256" })
        expect(Redacted.value(other.uri)).toContain("&algorithm=SHA256&digits=8&period=60")
        yield* TotpBackend.confirm(bob.id, appCode(other.uri, other.secret, T0 - 60_000))
        expect(reasonOf(yield* attempt(appCode(other.uri, other.secret, T0), "bob"))).toBe("success")
        expect(yield* deviceOf(bob.id)).toMatchObject({ digits: 8, period: 60, algorithm: "SHA256" })
      }).pipe(Effect.provide(app({ totp: { digits: 8 } }))))

    it.effect("a code logs in once; the window takes the neighbouring steps and no further", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        yield* TotpBackend.confirm(alice.id, codeAt(secret, T0 - 30_000))
        const ok = yield* attempt(codeAt(secret, T0))
        expect(reasonOf(ok)).toBe("success")
        if (Exit.isSuccess(ok)) expect([ok.value.backend, ok.value.user.username]).toEqual(["totp", "alice"])
        expect(reasonOf(yield* attempt(codeAt(secret, T0)))).toBe("invalid-credentials") // replay
        yield* TestClock.adjust("30 seconds")
        // one step later: the previous step's code is in the window but already used; the next works
        expect(reasonOf(yield* attempt(codeAt(secret, T0)))).toBe("invalid-credentials")
        yield* TestClock.adjust("2 seconds") // the throttle's wait after two failures (same time step)
        expect(reasonOf(yield* attempt(codeAt(secret, T0 + 60_000)))).toBe("success") // drift +1
        expect(reasonOf(yield* attempt(codeAt(secret, T0 + 120_000)))).toBe("invalid-credentials") // +2: outside
        yield* TestClock.adjust("1 second") // the throttle's wait after the failure above
        expect(reasonOf(yield* attempt("12 34 56".replace(/ /g, "")))).toBe("invalid-credentials")
      }).pipe(Effect.provide(app())))

    // django-otp's OTP_TOTP_SYNC (default True): a code matched off-centre moves the window there.
    const phoneDrifts = Effect.gen(function*() {
      const { alice, secret } = yield* setUp
      yield* TotpBackend.confirm(alice.id, codeAt(secret, T0))
      // an hour later the phone is one step (30 s) behind
      yield* TestClock.adjust("1 hour")
      let now = T0 + 3_600_000
      expect(reasonOf(yield* attempt(codeAt(secret, now - 30_000)))).toBe("success")
      const first = (yield* deviceOf(alice.id)).drift
      // a week later it is two steps behind: outside ±1 of the server's clock
      yield* TestClock.adjust("7 days")
      now += 7 * 86_400_000
      const later = reasonOf(yield* attempt(codeAt(secret, now - 60_000)))
      return { first, later, device: yield* deviceOf(alice.id) }
    })

    it.effect("the window follows the phone's clock (sync, django-otp's OTP_TOTP_SYNC): a phone drifting slowly keeps logging in", () =>
      Effect.gen(function*() {
        const { device, first, later } = yield* phoneDrifts
        expect([first, later, device.drift]).toEqual([-1, "success", -2])
        // replay protection is unchanged: the step just used is refused, even inside the moved window
        yield* TestClock.adjust("2 seconds")
        const now = T0 + 3_600_000 + 7 * 86_400_000 + 2_000
        expect(reasonOf(yield* attempt(codeAt(device.secret, now - 60_000)))).toBe("invalid-credentials")
        // a new enrolment starts again at no drift
        yield* Effect.flatMap(TotpStore.TotpStore, (store) => store.remove(device.userId))
        const users = yield* UserStore.UserStore
        const alice = Option.getOrThrow(yield* users.findById(device.userId))
        yield* TotpBackend.enrol(alice, { issuer: "Test" })
        expect((yield* deviceOf(device.userId)).drift ?? 0).toBe(0)
      }).pipe(Effect.provide(app())))

    it.effect("sync: false keeps the window on the server's clock", () =>
      Effect.gen(function*() {
        const { device, first, later } = yield* phoneDrifts
        expect([first ?? 0, later, device.drift ?? 0]).toEqual([0, "invalid-credentials", 0])
      }).pipe(Effect.provide(app({ sync: false }))))

    it.effect("concurrent requests with one code: exactly one succeeds", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        yield* TotpBackend.confirm(alice.id, codeAt(secret, T0 - 30_000))
        const outcomes = yield* Effect.all(Array.from({ length: 20 }, () => attempt(codeAt(secret, T0))), {
          concurrency: "unbounded"
        })
        expect(outcomes.filter(Exit.isSuccess)).toHaveLength(1)
      }).pipe(Effect.provide(app())))

    it.effect("a recovery code works once, typed in any case or grouping", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        const codes = yield* TotpBackend.confirm(alice.id, codeAt(secret, T0))
        const code = Redacted.value(codes[3]!)
        expect(reasonOf(yield* attempt(code.toUpperCase().replace(/-/g, " ")))).toBe("success")
        expect(reasonOf(yield* attempt(code))).toBe("invalid-credentials")
        expect(yield* Effect.flatMap(TotpStore.TotpStore, (s) => s.recoveryCodesLeft(alice.id))).toBe(9)
        yield* TestClock.adjust("1 second") // the throttle's wait after one failure
        expect(reasonOf(yield* attempt("aaaa-bbbb-cccc"))).toBe("invalid-credentials")
        // new codes replace the old ones
        yield* TotpBackend.newRecoveryCodes(alice.id, 3)
        yield* TestClock.adjust("2 seconds") // and after two
        expect(reasonOf(yield* attempt(Redacted.value(codes[4]!)))).toBe("invalid-credentials")
      }).pipe(Effect.provide(app())))

    it.effect("the throttle: after n failures in a row the device waits 2^(n−1) s, unchecked; a right code clears it (django-otp's)", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        yield* TotpBackend.confirm(alice.id, codeAt(secret, T0 - 30_000))
        expect(yield* deviceOf(alice.id)).toMatchObject({ failures: 0, failedAt: 0 })
        expect(reasonOf(yield* attempt("000000"))).toBe("invalid-credentials")
        expect(yield* deviceOf(alice.id)).toMatchObject({ failures: 1, failedAt: T0 })
        // within the wait even the right code is refused unchecked, and not counted
        expect(reasonOf(yield* attempt(codeAt(secret, T0)))).toBe("throttled")
        expect(yield* deviceOf(alice.id)).toMatchObject({ failures: 1, failedAt: T0 })
        yield* TestClock.adjust("1 second")
        expect(reasonOf(yield* attempt("aaaa-bbbb-cccc"))).toBe("invalid-credentials") // a wrong recovery code counts too
        expect(yield* deviceOf(alice.id)).toMatchObject({ failures: 2, failedAt: T0 + 1_000 })
        yield* TestClock.adjust("1 second") // half of the 2 s
        expect(reasonOf(yield* attempt(codeAt(secret, T0)))).toBe("throttled")
        yield* TestClock.adjust("1 second")
        expect(reasonOf(yield* attempt(codeAt(secret, T0)))).toBe("success")
        expect(yield* deviceOf(alice.id)).toMatchObject({ failures: 0, failedAt: 0 })
        // enrolment's confirmation is throttled as well
        yield* Effect.flatMap(TotpStore.TotpStore, (store) => store.remove(alice.id))
        const again = yield* TotpBackend.enrol(alice, { issuer: "Test" })
        expect((yield* Effect.flip(TotpBackend.confirm(alice.id, "000000")))._tag).toBe("InvalidCode")
        expect((yield* Effect.flip(TotpBackend.confirm(alice.id, codeAt(again.secret, T0 + 3_000))))._tag).toBe("Throttled")
        yield* TestClock.adjust("1 second")
        expect(yield* TotpBackend.confirm(alice.id, codeAt(again.secret, T0 + 4_000))).toHaveLength(10)
      }).pipe(Effect.provide(app())))

    it.effect("a throttled attempt is told from a wrong code: NoMatch(\"throttled\") with the wait, and confirm's Throttled", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        const failureOf = (exit: Exit.Exit<AuthService.Authenticated, AuthError.AuthenticateError>) =>
          Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag === "AuthenticationFailed"
            ? exit.cause.error.attempts[0]
            : undefined
        // at enrolment: a wrong code, then the right one within the second's wait
        expect((yield* Effect.flip(TotpBackend.confirm(alice.id, "000000")))._tag).toBe("InvalidCode")
        yield* TestClock.adjust("400 millis")
        const early = yield* Effect.flip(TotpBackend.confirm(alice.id, codeAt(secret, T0)))
        expect(early).toBeInstanceOf(TotpBackend.Throttled)
        expect(early).toMatchObject({ userId: alice.id, retryAfter: Duration.millis(600) })
        yield* TestClock.adjust("600 millis")
        yield* TotpBackend.confirm(alice.id, codeAt(secret, T0))
        // at login: three wrong codes in a row, each after its wait; the fourth attempt waits 4 s
        yield* TestClock.adjust("30 seconds")
        for (const wait of [0, 1_000, 2_000]) {
          yield* TestClock.adjust(wait)
          expect(failureOf(yield* attempt("000000"))).toMatchObject({ reason: "invalid-credentials" })
        }
        const now = T0 + 1_000 + 30_000 + 3_000
        // the right code, unchecked: throttled, for the whole 4 s
        const refused = failureOf(yield* attempt(codeAt(secret, now)))
        expect(refused).toMatchObject({ _tag: "NoMatch", backend: "totp", reason: "throttled", retryAfter: Duration.millis(4_000) })
        expect(refused?.message).toBe("totp: throttled")
        expect(yield* deviceOf(alice.id)).toMatchObject({ failures: 3 })
        yield* TestClock.adjust("3 seconds")
        expect(failureOf(yield* attempt(codeAt(secret, now)))).toMatchObject({ reason: "throttled", retryAfter: Duration.millis(1_000) })
        yield* TestClock.adjust("1 second")
        expect(reasonOf(yield* attempt(codeAt(secret, now)))).toBe("success")
      }).pipe(Effect.provide(app())))

    // Each attempt reads the device, then yields: all twenty have read it before any is counted.
    const readThenYield = (store: TotpStore.Service): TotpStore.Service => ({
      ...store,
      get: (userId) => Effect.zipLeft(store.get(userId), Effect.yieldNow())
    })

    it.effect("a burst of concurrent guesses is one guess: one attempt per throttle state is checked", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        yield* TotpBackend.confirm(alice.id, codeAt(secret, T0 - 30_000))
        const guesses = Array.from({ length: 20 }, (_, i) => String(100000 + i))
        const outcomes = yield* Effect.all(guesses.map((guess) => attempt(guess)), { concurrency: "unbounded" })
        // one is checked (a wrong guess); the rest were not, and say so
        expect(outcomes.map(reasonOf).sort()).toEqual(["invalid-credentials", ...Array(19).fill("throttled")])
        // counted once: twenty increments of one read would have made 20, and each a checked guess
        expect(yield* deviceOf(alice.id)).toMatchObject({ failures: 1 })
      }).pipe(Effect.provide(app({}, readThenYield))))

    it.effect("throttleFactor 0 turns the throttle off; a negative or infinite one is an AuthConfigError", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        yield* TotpBackend.confirm(alice.id, codeAt(secret, T0 - 30_000), { throttleFactor: 0 })
        for (let i = 0; i < 5; i++) expect(reasonOf(yield* attempt("000000"))).toBe("invalid-credentials")
        expect(reasonOf(yield* attempt(codeAt(secret, T0)))).toBe("success")
        expect(yield* deviceOf(alice.id)).toMatchObject({ failures: 0 })
        for (const throttleFactor of [-1, Infinity, "forever" as never]) {
          const built = yield* Effect.flip(Layer.build(TotpBackend.layer({ throttleFactor })).pipe(Effect.scoped))
          expect(built).toMatchObject({ _tag: "AuthConfigError", message: expect.stringMatching(/throttleFactor/) })
          const confirmed = yield* Effect.flip(TotpBackend.confirm(alice.id, "000000", { throttleFactor }))
          expect(confirmed._tag).toBe("AuthConfigError")
        }
      }).pipe(Effect.provide(app({ throttleFactor: 0 }))))

    // A store whose next `get` stops after reading (or whose next `save` stops before writing)
    // until released: a request's read-then-write is held open while another runs to its end.
    const pausingOnce = (store: TotpStore.Service, at: "get" | "save" = "get") =>
      Effect.gen(function*() {
        const reached = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        let armed = true
        const pause = Effect.suspend(() => {
          if (!armed) return Effect.void
          armed = false
          return Effect.zipRight(Deferred.succeed(reached, undefined), Deferred.await(release))
        })
        const paused: TotpStore.Service = at === "get"
          ? { ...store, get: (userId) => Effect.zipLeft(store.get(userId), pause) }
          : { ...store, save: (input) => Effect.zipRight(pause, store.save(input)) }
        return { paused, reached, release }
      })

    it.effect("an enrolment racing the confirmation never replaces the device just confirmed", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        const store = yield* TotpStore.TotpStore
        const { paused, reached, release } = yield* pausingOnce(store, "save")
        // a second tab enrols: it stops just before writing
        const enrolling = yield* Effect.fork(
          Effect.provideService(TotpBackend.enrol(alice, { issuer: "Test" }), TotpStore.TotpStore, paused)
        )
        yield* Deferred.await(reached)
        yield* TotpBackend.confirm(alice.id, codeAt(secret, T0 - 30_000))
        yield* Deferred.succeed(release, undefined)
        const exit = yield* Fiber.await(enrolling)
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("AlreadyEnrolled")
        const device = Option.getOrThrow(yield* store.get(alice.id))
        expect([device.confirmed, Redacted.value(device.secret)]).toEqual([true, Redacted.value(secret)])
        expect(reasonOf(yield* attempt(codeAt(secret, T0)))).toBe("success")
      }).pipe(Effect.provide(app())))

    it.effect("a confirmation confirms only the secret its code was checked against, never one enrolled meanwhile", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        const store = yield* TotpStore.TotpStore
        const { paused, reached, release } = yield* pausingOnce(store)
        // the user confirms the secret they scanned; the request has read the device and stops
        const confirming = yield* Effect.fork(
          Effect.provideService(TotpBackend.confirm(alice.id, codeAt(secret, T0)), TotpStore.TotpStore, paused)
        )
        yield* Deferred.await(reached)
        // meanwhile someone holding the password starts an enrolment of their own
        const other = yield* TotpBackend.enrol(alice, { issuer: "Test" })
        yield* Deferred.succeed(release, undefined)
        const exit = yield* Fiber.await(confirming)
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("InvalidCode")
        // the other secret stays unconfirmed: no second factor the user never saw
        const device = Option.getOrThrow(yield* store.get(alice.id))
        expect([device.confirmed, Redacted.value(device.secret)]).toEqual([false, Redacted.value(other.secret)])
        expect(reasonOf(yield* attempt(codeAt(other.secret, T0 + 30_000)))).toBe("unknown-user")
      }).pipe(Effect.provide(app())))

    it.effect("a confirmation cut off once its device is confirmed still leaves the device its recovery codes", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        const store = yield* TotpStore.TotpStore
        const reached = yield* Deferred.make<void>()
        // the request stops right after the store confirmed, and is interrupted there (a client
        // that went away): before 91c6cf2 the codes were written by a second call, never reached
        const stopping: TotpStore.Service = {
          ...store,
          confirm: (userId, checked) =>
            Effect.zipLeft(store.confirm(userId, checked), Effect.zipRight(Deferred.succeed(reached, undefined), Effect.never))
        }
        const confirming = yield* Effect.fork(
          Effect.provideService(TotpBackend.confirm(alice.id, codeAt(secret, T0)), TotpStore.TotpStore, stopping)
        )
        yield* Deferred.await(reached)
        yield* Fiber.interrupt(confirming)
        expect((yield* deviceOf(alice.id)).confirmed).toBe(true)
        // a confirmed device never lacks the codes made for it
        expect(yield* store.recoveryCodesLeft(alice.id)).toBe(10)
      }).pipe(Effect.provide(app())))

    it.effect("a login whose device is replaced between the check and the use of its code fails", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        yield* TotpBackend.confirm(alice.id, codeAt(secret, T0 - 30_000))
        const store = yield* TotpStore.TotpStore
        const { paused, reached, release } = yield* pausingOnce(store)
        const backend = yield* TotpBackend.make().pipe(Effect.provideService(TotpStore.TotpStore, paused))
        const login = yield* Effect.fork(
          Effect.exit(backend.authenticate({ username: "alice", otpToken: Redacted.make(codeAt(secret, T0)) }, undefined))
        )
        yield* Deferred.await(reached)
        // the device is removed and a new one enrolled (not confirmed) before the code is used
        yield* store.remove(alice.id)
        yield* TotpBackend.enrol(alice, { issuer: "Test" })
        yield* Deferred.succeed(release, undefined)
        const exit = yield* Fiber.join(login)
        expect(Exit.isFailure(exit)).toBe(true)
        expect(Option.getOrThrow(yield* store.get(alice.id)).lastStep).toBe(-1)
      }).pipe(Effect.provide(app())))

    it.effect("at a login stage the backend is not asked: no code spent, no failure counted", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        yield* TotpBackend.confirm(alice.id, codeAt(secret, T0 - 30_000))
        const atLogin = (otpToken: string) =>
          Effect.exit(AuthService.authenticateUnknown({ username: "alice", otpToken }, { stage: "login" }))
        expect(reasonOf(yield* atLogin(codeAt(secret, T0)))).toBe("unsupported-credentials")
        expect(reasonOf(yield* atLogin("000000"))).toBe("unsupported-credentials")
        expect(yield* deviceOf(alice.id)).toMatchObject({ failures: 0, lastStep: Totp.counterAt(T0 - 30_000) })
        const stepUp = yield* Effect.exit(
          AuthService.authenticateUnknown({ username: "alice", otpToken: codeAt(secret, T0) }, { stage: "step-up" })
        )
        expect(reasonOf(stepUp)).toBe("success")
      }).pipe(Effect.provide(app())))

    it.effect("a step that is no non-negative safe integer (NaN, Infinity, 1.5, \"5\") is a TotpStoreError on every store, and nothing is written", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        const store = yield* TotpStore.TotpStore
        const any = store as any
        const step = Math.floor(T0 / 30_000)
        const steps: ReadonlyArray<unknown> = [Number.NaN, Infinity, -Infinity, step + 0.5, String(step), -1, 2 ** 53, null, undefined, BigInt(step)]
        for (const bad of steps) {
          expect(yield* outcome(() => any.confirm(alice.id, { secret, step: bad, recoveryCodes: ["a"] }))).toBe("TotpStoreError")
        }
        expect((yield* deviceOf(alice.id)).confirmed).toBe(false)
        expect(yield* store.confirm(alice.id, { secret, step, recoveryCodes: ["a"] })).toBe(true)
        for (const bad of steps) expect(yield* outcome(() => any.useStep(alice.id, bad, secret))).toBe("TotpStoreError")
        expect((yield* deviceOf(alice.id)).lastStep).toBe(step)
        expect(yield* store.useStep(alice.id, step + 1, secret)).toBe(true)
        expect((yield* deviceOf(alice.id)).lastStep).toBe(step + 1)
      }).pipe(Effect.provide(app())))

    it.effect("input of the wrong type (an untyped caller) is a TotpStoreError on every store, never a defect, and nothing is written", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        const store = yield* TotpStore.TotpStore
        const any = store as any
        const step = Math.floor(T0 / 30_000)
        const throwing = () => {
          throw new Error("hostile")
        }
        const hostile = makeHostile()
        const wiped = Redacted.make("JBSWY3DPEHPK3PXP")
        Redacted.unsafeWipe(wiped)
        const plain = Redacted.value(secret)
        const userIds: ReadonlyArray<unknown> = [null, undefined, 1, "", "x".repeat(256), "1\u0000", "\uD800", hostile, { id: alice.id }]
        const calls: ReadonlyArray<() => unknown> = [
          ...userIds.flatMap((userId) => [
            () => any.get(userId),
            () => any.save({ userId, secret }),
            () => any.confirm(userId, { secret, step, recoveryCodes: ["a"] }),
            () => any.recordFailure(userId, { failures: 0, failedAt: 0 }, 1_000),
            () => any.clearFailures(userId),
            () => any.useStep(userId, step, secret),
            () => any.remove(userId),
            () => any.setRecoveryCodes(userId, ["a"]),
            () => any.useRecoveryCode(userId, "a"),
            () => any.recoveryCodesLeft(userId)
          ]),
          ...[null, undefined, "alice", hostile, Object.defineProperty({ userId: alice.id }, "secret", { get: throwing })].map((input) =>
            () => any.save(input)
          ),
          ...[plain, null, 42, wiped, hostile, Redacted.make(""), Redacted.make(42), Redacted.make("x".repeat(256))].flatMap((bad) => [
            () => any.save({ userId: alice.id, secret: bad }),
            () => any.confirm(alice.id, { secret: bad, step, recoveryCodes: ["a"] }),
            () => any.useStep(alice.id, step, bad)
          ]),
          ...[null, "abc", hostile, [1], [null], ["x".repeat(65)], ["a\u0000"]].flatMap((codes) => [
            () => any.confirm(alice.id, { secret, step, recoveryCodes: codes }),
            () => any.setRecoveryCodes(alice.id, codes)
          ]),
          ...[{ digits: 5 }, { digits: 9 }, { digits: 6.5 }, { digits: "6" }, { period: 0 }, { period: 2 ** 31 }, { period: 1.5 }, {
            algorithm: "MD5"
          }, { algorithm: "sha1" }, { digits: null }].map((bad) => () => any.save({ userId: alice.id, secret, ...bad })),
          ...[1.5, Number.NaN, "1", 2 ** 31, -(2 ** 31), null].map((drift) => () => any.useStep(alice.id, step, secret, drift)),
          () => any.confirm(alice.id, null),
          () => any.confirm(alice.id, hostile),
          () => any.useRecoveryCode(alice.id, null),
          () => any.useRecoveryCode(alice.id, 42),
          () => any.recordFailure(alice.id, null, 1_000),
          () => any.recordFailure(alice.id, hostile, 1_000),
          () => any.recordFailure(alice.id, { failures: Number.NaN, failedAt: 0 }, 1_000),
          () => any.recordFailure(alice.id, { failures: 2 ** 31, failedAt: 0 }, 1_000),
          () => any.recordFailure(alice.id, { failures: 0, failedAt: "0" }, 1_000),
          () => any.recordFailure(alice.id, { failures: 0, failedAt: 0 }, Number.NaN)
        ]
        for (const call of calls) expect(yield* outcome(call)).toBe("TotpStoreError")
        // the message shows no secret
        const error = yield* Effect.flip(any.save({ userId: alice.id, secret: plain }) as Effect.Effect<boolean, TotpStore.TotpStoreError>)
        expect(JSON.stringify(error)).not.toContain(plain)
        expect(String(error)).not.toContain(plain)
        // nothing was written: the device is as enrolled, with no codes and no failures
        const device = yield* deviceOf(alice.id)
        expect([device.confirmed, device.lastStep, device.failures, device.failedAt]).toEqual([false, -1, 0, 0])
        expect(Redacted.value(device.secret)).toBe(plain)
        expect(yield* store.recoveryCodesLeft(alice.id)).toBe(0)
        expect(yield* store.get("x".repeat(255))).toEqual(Option.none())
      }).pipe(Effect.provide(app())))

    it.effect("unknown and inactive users, malformed credentials: NoMatch or a typed failure, never a defect", () =>
      Effect.gen(function*() {
        const { alice, secret } = yield* setUp
        yield* TotpBackend.confirm(alice.id, codeAt(secret, T0 - 30_000))
        expect(reasonOf(yield* attempt(codeAt(secret, T0), "nobody"))).toBe("unknown-user")
        const users = yield* UserStore.UserStore
        yield* users.setFlags(alice.id, { isActive: false })
        expect(reasonOf(yield* attempt(codeAt(secret, T0)))).toBe("inactive-user")
        for (const bad of [{ username: "alice" }, { username: "alice", otpToken: "" }, { username: "alice", otpToken: "x".repeat(65) }]) {
          const exit = yield* Effect.exit(AuthService.authenticateUnknown(bad))
          expect(Exit.isFailure(exit) && exit.cause._tag).toBe("Fail")
        }
      }).pipe(Effect.provide(app())))
  })

suite("memory", () => TotpStore.layerMemory)
suite("SQLite", () => SqlTotpStore.layer().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" }))))
suite(
  "PostgreSQL",
  () => {
    const prefix = Postgres.uniquePrefix("totp")
    const tables = Effect.map(SqlTotpStore.tables({ tablePrefix: prefix }), (t) => [t.device, t.recoveryCode, t.migrations])
    return SqlTotpStore.layer({ tablePrefix: prefix }).pipe(Layer.provide(Postgres.poolDropping(tables)))
  },
  Postgres.missing
)

describe("TotpBackend: options", () => {
  const stores = Layer.merge(MemoryUserStore.layer, TotpStore.layerMemory)

  it.effect("options that cannot make codes are an AuthConfigError when the backend is built, never a defect at login", () =>
    Effect.gen(function*() {
      for (const totp of [{ period: 0 }, { period: 0.5 }, { digits: 4 }, { digits: 10 }, { window: -1 }, { window: 1e9 }, {
        algorithm: "MD5" as never
      }]) {
        const error = yield* Effect.flip(Layer.build(TotpBackend.layer({ totp })).pipe(Effect.provide(stores), Effect.scoped))
        expect(error).toBeInstanceOf(AuthError.AuthConfigError)
        expect(error.message).toMatch(/^TotpBackend: (digits|period|window|algorithm) /)
      }
      // the bounds themselves are fine
      yield* Layer.build(TotpBackend.layer({ totp: { digits: 8, period: 60, window: 10, algorithm: "SHA512" } })).pipe(
        Effect.provide(stores),
        Effect.scoped
      )
    }))

  it.effect("enrol, confirm and newRecoveryCodes refuse bad options and counts with AuthConfigError, storing nothing", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const alice = yield* Effect.flatMap(UserStore.UserStore, (users) => users.create({ username: "alice" }))
      const store = yield* TotpStore.TotpStore
      expect((yield* Effect.flip(TotpBackend.enrol(alice, { issuer: "Test", period: 0 })))._tag).toBe("AuthConfigError")
      expect(yield* store.get(alice.id)).toEqual(Option.none())
      const { secret } = yield* TotpBackend.enrol(alice, { issuer: "Test" })
      const code = Redacted.value(Totp.generate(secret, T0))
      expect((yield* Effect.flip(TotpBackend.confirm(alice.id, code, { period: 0 })))._tag).toBe("AuthConfigError")
      expect((yield* Effect.flip(TotpBackend.confirm(alice.id, code, { count: -1 })))._tag).toBe("AuthConfigError")
      // the code was not spent by the refused calls
      expect(Option.getOrThrow(yield* store.get(alice.id))).toMatchObject({ confirmed: false, lastStep: -1 })
      expect(yield* TotpBackend.confirm(alice.id, code, { count: 2 })).toHaveLength(2)
      for (const count of [-1, 0, 1.5, 1e9]) {
        expect((yield* Effect.flip(TotpBackend.newRecoveryCodes(alice.id, count)))._tag).toBe("AuthConfigError")
      }
      expect(yield* store.recoveryCodesLeft(alice.id)).toBe(2)
    }).pipe(Effect.provide(stores)))

  it.effect("enrol checks issuer, account and username before it stores anything (AuthConfigError); confirm of any id is InvalidCode", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      const alice = yield* Effect.flatMap(UserStore.UserStore, (users) => users.create({ username: "alice" }))
      const store = yield* TotpStore.TotpStore
      const throwing = Object.defineProperty({ id: alice.id }, "username", {
        get() {
          throw new Error("getter")
        },
        enumerable: true
      })
      // An untyped caller's: the device was saved, then `Totp.uri` threw (a defect, and an
      // unconfirmed device left stored whose secret nobody was shown).
      const bad: ReadonlyArray<readonly [unknown, unknown]> = [
        [alice, { issuer: 42 }],
        [alice, { issuer: null }],
        [alice, {}],
        [{ id: alice.id, username: null }, { issuer: "Test" }],
        [{ id: alice.id, username: 7 }, { issuer: "Test" }],
        [alice, { issuer: "Test", account: ["alice"] }],
        [throwing, { issuer: "Test" }],
        [makeHostile(), { issuer: "Test" }],
        [null, { issuer: "Test" }]
      ]
      for (const [user, options] of bad) {
        const exit = yield* Effect.exit(Effect.suspend(() => TotpBackend.enrol(user as never, options as never)))
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("AuthConfigError")
        expect(yield* store.get(alice.id)).toEqual(Option.none())
      }
      // an account given stands in for the username, as before
      const { uri } = yield* TotpBackend.enrol({ id: alice.id, username: null as never }, { issuer: "Test", account: "a@b" })
      expect(Redacted.value(uri)).toContain("otpauth://totp/Test:a%40b?")
      for (const userId of [Object.create(null), makeHostile(), { toString: () => { throw new Error("toString") } }, 42, null]) {
        const exit = yield* Effect.exit(Effect.suspend(() => TotpBackend.confirm(userId, "123456")))
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("InvalidCode")
      }
      expect(Option.getOrThrow(yield* store.get(alice.id))).toMatchObject({ confirmed: false, lastStep: -1 })
    }).pipe(Effect.provide(stores)))
})

// --- the device a step-up records: live clock, memory stores ------------------------------------

const appSecret = Redacted.make("an app secret of thirty-two characters or more")
const confirmNow = (userId: string, totpSecret: Redacted.Redacted<string>) =>
  TotpBackend.confirm(userId, Totp.generate(totpSecret, Date.now() - 30_000), { throttleFactor: 0 })
/** A code of `totpSecret` now, or `steps` time steps later (a next code of the same device). */
const codeOf = (totpSecret: Redacted.Redacted<string>, steps = 0) =>
  Redacted.value(Totp.generate(totpSecret, Date.now() + steps * 30_000))
/** A session at one factor, as a password login leaves it. */
const oneFactor = (user: UserStore.StoredUser) => Session.login(new AuthService.Authenticated({ backend: "totp", user }))
const holdsAfter = (stepped: Session.SessionUser) =>
  Effect.flatMap(Session.currentUser(stepped.sessionId), (current) => Session.secondFactorHolds(Option.getOrThrow(current)))

/**
 * A memory TOTP store that can run an effect once, right after a code's step is used: the moment
 * between a code's check and the step-up. `replaceDevice` is what a user who lost a phone does
 * (remove, enrol, confirm); it answers the new device's secret.
 */
const interceptingStore = () => {
  const memory = TotpStore.makeMemory()
  let afterUse: Effect.Effect<void> = Effect.void
  const store: TotpStore.Service = {
    ...memory,
    useStep: (userId, step, totpSecret, drift) =>
      Effect.tap(memory.useStep(userId, step, totpSecret, drift), (used) =>
        used ? Effect.suspend(() => {
          const run = afterUse
          afterUse = Effect.void
          return run
        }) : Effect.void)
  }
  const replaceDevice = (user: UserStore.StoredUser) =>
    Effect.gen(function*() {
      yield* memory.remove(user.id)
      const fresh = (yield* TotpBackend.enrol(user, { issuer: "ACME" })).secret
      yield* confirmNow(user.id, fresh)
      return fresh
    }).pipe(Effect.provideService(TotpStore.TotpStore, store), Effect.orDie)
  return { memory, store, replaceDevice, afterNextUse: (effect: Effect.Effect<void>) => void (afterUse = effect) }
}

const appWith = (store: TotpStore.Service, toUser?: (stored: UserStore.StoredUser) => User) =>
  Session.layer({ secret: appSecret }).pipe(
    Layer.provideMerge(TestAuth.layer([TotpBackend.TotpBackend])),
    Layer.provideMerge(TotpBackend.layer({ throttleFactor: 0, ...(toUser !== undefined && { toUser }) })),
    Layer.provideMerge(Layer.merge(MemoryUserStore.layer, Layer.succeed(TotpStore.TotpStore, store))),
    Layer.provideMerge(MemorySessionStore.layer)
  )

/**
 * The thief's code of the old device is checked; the owner replaces the device at that moment,
 * then (with `ownerFirst`) logs in with the new one before the thief's step-up runs. Answers the
 * two step-ups' outcomes and the owner's sessions and new device.
 */
const raceForTheDevice = (store: ReturnType<typeof interceptingStore>, ownerFirst: boolean) =>
  Effect.gen(function*() {
    const users = yield* UserStore.UserStore
    const alice = yield* users.create({ username: "alice", email: "alice@example.com" })
    const stolen = yield* TotpBackend.enrol(alice, { issuer: "ACME" })
    yield* confirmNow(alice.id, stolen.secret)
    const thiefSession = yield* oneFactor(alice)
    const ownSession = yield* oneFactor(alice)
    let fresh: Redacted.Redacted<string> | undefined
    store.afterNextUse(Effect.asVoid(Effect.tap(store.replaceDevice(alice), (secret) => void (fresh = secret))))
    const thief = yield* AuthService.authenticateUnknown({ username: "alice", otpToken: codeOf(stolen.secret) })
    expect(thief.backend).toBe("totp")
    const owner = ownerFirst ? yield* AuthService.authenticateUnknown({ username: "alice", otpToken: codeOf(fresh!) }) : undefined
    const ownerStep = owner === undefined ? undefined : yield* Session.stepUp(ownSession.sessionId, owner)
    const thiefStep = yield* Session.stepUp(thiefSession.sessionId, thief)
    return { thief, owner, thiefStep, ownerStep, ownSession, fresh: fresh! }
  })

describe("TotpBackend and Session: the device a step-up records", () => {
  // The user replaces a stolen phone's device (remove, enrol, confirm) while the thief's code of the
  // old one is being checked: the step-up must not record the new device (django-otp's
  // otp_login(request, device) stores the device that matched the token). Before, Session.stepUp
  // asked for the user's device as it was by then, recorded the new one, and the thief's session
  // kept its second factor for as long as the new device stayed.
  it.live("a device replaced between the code's check and the step-up is not recorded: the step-up is refused", () => {
    const store = interceptingStore()
    return Effect.gen(function*() {
      const { fresh, ownSession, thiefStep } = yield* raceForTheDevice(store, false)
      expect(thiefStep).toEqual(Option.none())
      // without a replacement, the same flow steps up and the second factor holds
      const again = yield* AuthService.authenticateUnknown({ username: "alice", otpToken: codeOf(fresh, 1) })
      const stepped = Option.getOrThrow(yield* Session.stepUp(ownSession.sessionId, again))
      expect(yield* holdsAfter(stepped)).toBe(true)
    }).pipe(Effect.provide(appWith(store.store)))
  })
})

describe("TotpBackend and Session: a toUser that caches one object per user", () => {
  // A common pattern: one user object per id, refreshed from the store. The device that verified
  // a login must belong to that login alone (before, it was kept against toUser's object).
  const cachingToUser = () => {
    const cache = new Map<string, UserStore.StoredUser>()
    return (stored: UserStore.StoredUser) => {
      const cached = cache.get(stored.id)
      if (cached === undefined) {
        const made = { ...stored }
        cache.set(stored.id, made)
        return made
      }
      return Object.assign(cached, stored)
    }
  }
  const instance = (shared: Context.Context<UserStore.UserStore | TotpStore.TotpStore | SessionStore.SessionStore>) =>
    Session.layer({ secret: appSecret }).pipe(
      Layer.provideMerge(TestAuth.layer([TotpBackend.TotpBackend])),
      Layer.provideMerge(TotpBackend.layer({ throttleFactor: 0, toUser: cachingToUser() })),
      Layer.provideMerge(Layer.succeedContext(shared))
    )

  it.live("a login with the new device between the thief's code check and step-up does not lend the thief its device", () => {
    const store = interceptingStore()
    return Effect.gen(function*() {
      const { ownerStep, thiefStep } = yield* raceForTheDevice(store, true)
      expect(Option.isSome(ownerStep!)).toBe(true)
      expect(thiefStep).toEqual(Option.none())
    }).pipe(Effect.provide(appWith(store.store, cachingToUser())))
  })

  it.live("an instance that once verified the old device still sees the second factor a session passed with the new one", () =>
    Effect.gen(function*() {
      const memory = TotpStore.makeMemory()
      const users = yield* MemoryUserStore.make
      const sessions = yield* Layer.build(MemorySessionStore.layer)
      const shared = Context.make(UserStore.UserStore, users).pipe(Context.add(TotpStore.TotpStore, memory), Context.merge(sessions))
      const one = yield* Layer.build(instance(shared))
      const two = yield* Layer.build(instance(shared))
      const alice = yield* users.create({ username: "alice" })
      const steppedWith = (totpSecret: Redacted.Redacted<string>) =>
        Effect.gen(function*() {
          const session = yield* oneFactor(alice)
          const passed = yield* AuthService.authenticateUnknown({ username: "alice", otpToken: codeOf(totpSecret) })
          return Option.getOrThrow(yield* Session.stepUp(session.sessionId, passed))
        })
      const old = yield* Effect.provide(TotpBackend.enrol(alice, { issuer: "ACME" }), one)
      yield* Effect.provide(confirmNow(alice.id, old.secret), one)
      const before = yield* Effect.provide(steppedWith(old.secret), one)
      // the device replaced; a session steps up with the new one on the other instance
      yield* memory.remove(alice.id)
      const replaced = yield* Effect.provide(TotpBackend.enrol(alice, { issuer: "ACME" }), two)
      yield* Effect.provide(confirmNow(alice.id, replaced.secret), two)
      const after = yield* Effect.provide(steppedWith(replaced.secret), two)
      for (const app of [one, two]) {
        expect(yield* Effect.provide(holdsAfter(after), app)).toBe(true)
        expect(yield* Effect.provide(holdsAfter(before), app)).toBe(false)
      }
    }).pipe(Effect.scoped))
})

describe("TotpBackend and Session: a toUser that answers class instances", () => {
  // An app's user type with private fields: a copy would lose them (before: the step-up refused,
  // and reading the user threw "Cannot read private member").
  class AppUser {
    readonly #stored: UserStore.StoredUser
    constructor(stored: UserStore.StoredUser) {
      this.#stored = stored
    }
    get id() {
      return this.#stored.id
    }
    get username() {
      return this.#stored.username
    }
    get isActive() {
      return this.#stored.isActive
    }
    get isSuperuser() {
      return this.#stored.isSuperuser
    }
    get passwordHash() {
      return this.#stored.passwordHash
    }
    get displayName() {
      return `${this.#stored.username} <${this.#stored.email}>`
    }
  }

  it.live("the instance is answered as it is: the step-up records its device and the user reads as the app made it", () => {
    const store = interceptingStore()
    return Effect.gen(function*() {
      const users = yield* UserStore.UserStore
      const alice = yield* users.create({ username: "alice", email: "alice@example.com" })
      const device = yield* TotpBackend.enrol(alice, { issuer: "ACME" })
      yield* confirmNow(alice.id, device.secret)
      const started = yield* oneFactor(alice)
      const passed = yield* AuthService.authenticateUnknown({ username: "alice", otpToken: codeOf(device.secret) })
      expect(passed.user).toBeInstanceOf(AppUser)
      expect((passed.user as unknown as AppUser).displayName).toBe("alice <alice@example.com>")
      const stepped = Option.getOrThrow(yield* Session.stepUp(started.sessionId, passed))
      expect(yield* holdsAfter(stepped)).toBe(true)
    }).pipe(Effect.provide(appWith(store.store, (stored) => new AppUser(stored) as unknown as User)))
  })

  it.live("one cached instance verified with two devices before a step-up steps up neither; the next try does", () => {
    const store = interceptingStore()
    const cache = new Map<string, AppUser>()
    const cached = (stored: UserStore.StoredUser) => {
      const made = cache.get(stored.id) ?? new AppUser(stored)
      cache.set(stored.id, made)
      return made as unknown as User
    }
    return Effect.gen(function*() {
      const { fresh, owner, ownerStep, ownSession, thief, thiefStep } = yield* raceForTheDevice(store, true)
      expect(owner!.user).toBe(thief.user) // the one cached instance
      expect(thiefStep).toEqual(Option.none())
      expect(ownerStep).toEqual(Option.none())
      // the owner's next code steps up
      const again = yield* AuthService.authenticateUnknown({ username: "alice", otpToken: codeOf(fresh, 1) })
      const stepped = Option.getOrThrow(yield* Session.stepUp(ownSession.sessionId, again))
      expect(yield* holdsAfter(stepped)).toBe(true)
    }).pipe(Effect.provide(appWith(store.store, cached)))
  })
})

describe("TotpStore.make: a store of your own that passes NULL columns through", () => {
  it.effect("null code parameters and drift are absent: the device logs in with its code", () =>
    Effect.gen(function*() {
      const memory = TotpStore.makeMemory()
      const store = TotpStore.make({
        ...memory,
        get: (userId) =>
          Effect.map(memory.get(userId), Option.map((device) => ({ ...device, digits: null, period: null, algorithm: null, drift: null } as unknown as TotpStore.Device)))
      })
      const users = yield* UserStore.UserStore
      const alice = yield* users.create({ username: "alice" })
      const totpSecret = Totp.generateSecret()
      yield* memory.save({ userId: alice.id, secret: totpSecret })
      yield* memory.confirm(alice.id, { secret: totpSecret, step: 1, recoveryCodes: [] })
      const device = Option.getOrThrow(yield* store.get(alice.id))
      expect([device.digits, device.period, device.algorithm, device.drift]).toEqual([undefined, undefined, undefined, undefined])
      expect("digits" in device).toBe(false)
      const backend = yield* TotpBackend.make().pipe(Effect.provideService(TotpStore.TotpStore, store))
      yield* TestClock.setTime(1_700_000_000_000)
      const now = yield* Clock.currentTimeMillis
      const user = yield* backend.authenticate({ username: "alice", otpToken: Totp.generate(totpSecret, now) }, undefined)
      expect(user.username).toBe("alice")
    }).pipe(Effect.provide(MemoryUserStore.layer)))
})

describe("SqlTotpStore", () => {
  it.effect("a database migrated before the throttle gets its columns; its devices start with no failures", () =>
    Effect.gen(function*() {
      const t = yield* SqlTotpStore.tables()
      const first = { "1_create_totp_tables": SqlTotpStore.migrations(t)["1_create_totp_tables"]! }
      yield* SqlTables.migrate(first, t.migrations, (cause) => cause)
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO auth_totp_device (user_id, secret, confirmed, last_step) VALUES ('7', 'JBSWY3DPEHPK3PXP', 1, 5)`
      yield* SqlTotpStore.migrate()
      const store = yield* SqlTotpStore.make()
      const device = Option.getOrThrow(yield* store.get("7"))
      expect(device).toMatchObject({ confirmed: true, lastStep: 5, failures: 0, failedAt: 0 })
      expect(yield* store.recordFailure("7", { failures: 0, failedAt: 0 }, 1_000)).toBe(true)
      expect(yield* store.recordFailure("7", { failures: 0, failedAt: 0 }, 2_000)).toBe(false)
      expect(Option.getOrThrow(yield* store.get("7"))).toMatchObject({ failures: 1, failedAt: 1_000 })
    }).pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" }))))

  it.effect("a database migrated before the code parameters gets their columns; its devices keep the backend's options", () =>
    Effect.gen(function*() {
      const t = yield* SqlTotpStore.tables()
      const all = SqlTotpStore.migrations(t)
      yield* SqlTables.migrate(
        { "1_create_totp_tables": all["1_create_totp_tables"]!, "2_totp_throttle": all["2_totp_throttle"]! },
        t.migrations,
        (cause) => cause
      )
      const sql = yield* SqlClient.SqlClient
      const secret = Totp.generateSecret()
      yield* sql`INSERT INTO auth_totp_device (user_id, secret, confirmed, last_step) VALUES ('1', ${Redacted.value(secret)}, 1, 5)`
      yield* SqlTotpStore.migrate()
      const store = yield* SqlTotpStore.make()
      const device = Option.getOrThrow(yield* store.get("1"))
      expect([device.digits, device.period, device.algorithm, device.drift]).toEqual([undefined, undefined, undefined, undefined])
      // an app that enrolled it with the backend's 8 digits logs in as before
      const users = yield* UserStore.UserStore
      yield* users.create({ username: "alice" })
      yield* TestClock.setTime(T0)
      const code = Redacted.value(Totp.generate(secret, T0, { digits: 8 }))
      const backend = yield* TotpBackend.make({ totp: { digits: 8 } }).pipe(Effect.provideService(TotpStore.TotpStore, store))
      const user = yield* backend.authenticate({ username: "alice", otpToken: Redacted.make(code) }, undefined)
      expect(user.username).toBe("alice")
    }).pipe(Effect.provide(Layer.merge(SqliteClient.layer({ filename: ":memory:" }), MemoryUserStore.layer))))

  it.effect("confirm writes the device and its recovery codes together: a failure writing the codes confirms nothing", () =>
    Effect.gen(function*() {
      yield* SqlTotpStore.migrate()
      const store = yield* SqlTotpStore.make()
      const sql = yield* SqlClient.SqlClient
      const secret = Totp.generateSecret()
      expect(yield* store.save({ userId: "7", secret })).toBe(true)
      // the codes' table refuses every row: the confirmation's second statement fails
      yield* sql`CREATE TRIGGER refuse_codes BEFORE INSERT ON auth_totp_recovery_code BEGIN SELECT RAISE(ABORT, 'no'); END`
      const error = yield* Effect.flip(store.confirm("7", { secret, step: 5, recoveryCodes: ["a", "b"] }))
      expect(error._tag).toBe("TotpStoreError")
      expect(Option.getOrThrow(yield* store.get("7"))).toMatchObject({ confirmed: false, lastStep: -1 })
      yield* sql`DROP TRIGGER refuse_codes`
      expect(yield* store.confirm("7", { secret, step: 5, recoveryCodes: ["a", "b"] })).toBe(true)
      expect(Option.getOrThrow(yield* store.get("7"))).toMatchObject({ confirmed: true, lastStep: 5 })
      expect(yield* store.recoveryCodesLeft("7")).toBe(2)
    }).pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" }))))

  it.effect("a stored device whose code parameters or drift are out of bounds is a TotpStoreError, not a wrong code", () =>
    Effect.gen(function*() {
      yield* SqlTotpStore.migrate()
      const store = yield* SqlTotpStore.make()
      const sql = yield* SqlClient.SqlClient
      expect(yield* store.save({ userId: "7", secret: Totp.generateSecret() })).toBe(true)
      // rows edited by hand: each value is one a write refuses; before, the device was answered and
      // every right code failed as a wrong one (and counted by the throttle)
      const edits = [
        sql`UPDATE auth_totp_device SET digits = 0`,
        sql`UPDATE auth_totp_device SET digits = 9`,
        sql`UPDATE auth_totp_device SET digits = NULL, period = 0`,
        sql`UPDATE auth_totp_device SET period = -30`,
        sql`UPDATE auth_totp_device SET period = NULL, drift = 4294967296`
      ]
      for (const edit of edits) {
        yield* edit
        const error = yield* Effect.flip(store.get("7"))
        expect(error._tag).toBe("TotpStoreError")
      }
    }).pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" }))))

  it.effect("a store of your own that answers a malformed device fails with a TotpStoreError through TotpStore.make, and the backend says TransportError", () =>
    Effect.gen(function*() {
      const memory = TotpStore.makeMemory()
      const secret = Totp.generateSecret()
      yield* memory.save({ userId: "1", secret })
      yield* memory.confirm("1", { secret, step: 1, recoveryCodes: [] })
      const device = Option.getOrThrow(yield* memory.get("1"))
      for (const bad of [{ digits: 0 }, { period: 0 }, { algorithm: "MD5" }, { drift: 0.5 }]) {
        const store = TotpStore.make({ ...memory, get: () => Effect.succeed(Option.some({ ...device, ...bad } as TotpStore.Device)) })
        const error = yield* Effect.flip(store.get("1"))
        expect(error._tag).toBe("TotpStoreError")
        expect(error.message).toMatch(/malformed/)
        const users = yield* UserStore.UserStore
        const alice = yield* users.findByUsername("alice")
        if (Option.isNone(alice)) yield* users.create({ username: "alice" })
        const backend = yield* TotpBackend.make().pipe(Effect.provideService(TotpStore.TotpStore, store))
        const refused = yield* Effect.flip(backend.authenticate({ username: "alice", otpToken: Redacted.make("123456") }, undefined))
        expect(refused._tag).toBe("TransportError")
      }
    }).pipe(Effect.provide(MemoryUserStore.layer)))

  it.effect("a database that cannot answer is a TotpStoreError, and the backend says TransportError", () =>
    Effect.gen(function*() {
      const store = yield* SqlTotpStore.make() // no migration: every statement fails
      const error = yield* Effect.flip(store.get("1"))
      expect(error._tag).toBe("TotpStoreError")
      expect(error.message).toMatch(/auth_totp_device/)
      const users = yield* UserStore.UserStore
      yield* users.create({ username: "alice" })
      const exit = yield* Effect.exit(AuthService.authenticateUnknown({ username: "alice", otpToken: "123456" }))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("TransportError")
    }).pipe(
      Effect.provide(
        TestAuth.layer([TotpBackend.TotpBackend]).pipe(
          Layer.provideMerge(TotpBackend.layer()),
          Layer.provideMerge(MemoryUserStore.layer),
          Layer.provideMerge(Layer.effect(TotpStore.TotpStore, SqlTotpStore.make())),
          Layer.provideMerge(SqliteClient.layer({ filename: ":memory:" }))
        )
      )
    ))
})
