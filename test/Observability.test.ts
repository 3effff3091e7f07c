import { describe, expect, it } from "@effect/vitest"
import { inspect } from "node:util"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Cause, Effect, Exit, Inspectable, Layer, Logger, Option, Redacted, Schema } from "effect"
import { AuthError, AuthEvents, AuthRequest, AuthService, Credentials, TestAuth, TestBackend } from "../src/index.js"
import * as MemorySessionStore from "../src/MemorySessionStore.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as Session from "../src/Session.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SqlSessionStore from "../src/SqlSessionStore.js"
import * as RecordingTracer from "./utils/recordingTracer.js"
import { record } from "./utils/sessionStoreSuite.js"

const password = "c0rrect-h0rse-battery-staple"

describe("spans", () => {
  const chain = [
    TestBackend.noMatch("a", "unknown-user"),
    TestBackend.unavailable("b", "down", { onTransportError: "fallthrough" }),
    TestBackend.succeed("c", TestBackend.user("alice")),
    TestBackend.succeed("d", TestBackend.user("bob"))
  ]

  it.effect("by default, under a recording tracer, a call is one span with an event per attempt and the outcome", () =>
    Effect.gen(function*() {
      const tracer = RecordingTracer.make()
      yield* AuthService.authenticate({ username: "alice", password }).pipe(
        Effect.provide(TestAuth.layer(chain)),
        Effect.provide(tracer.layer)
      )
      expect(tracer.spans.map((s) => s.name)).toEqual(["effect-auth.authenticate"])
      const call = tracer.spans[0]!
      expect(call.events).toEqual([
        { name: "effect-auth.attempt", attributes: { "auth.backend": "a", "auth.outcome": "no-match", "auth.reason": "unknown-user" } },
        { name: "effect-auth.attempt", attributes: { "auth.backend": "b", "auth.outcome": "transport-error" } },
        { name: "effect-auth.attempt", attributes: { "auth.backend": "c", "auth.outcome": "success" } }
      ])
      expect(call.attributes.get("auth.outcome")).toBe("success")
      expect(call.attributes.get("auth.backend")).toBe("c")
      expect(call.attributes.get("auth.attempts")).toBe(3)
    }))

  it.effect("by default, a failed call's span carries the failure and every attempt", () =>
    Effect.gen(function*() {
      const tracer = RecordingTracer.make()
      yield* AuthService.authenticate({ username: "alice", password }).pipe(
        Effect.provide(TestAuth.layer([TestBackend.noMatch("a", "unknown-user"), TestBackend.deny("b", "locked")])),
        Effect.provide(tracer.layer),
        Effect.exit
      )
      const call = tracer.spans[0]!
      expect(call.attributes.get("auth.outcome")).toBe("PermissionDenied")
      expect(call.events.map((e) => e.attributes?.["auth.outcome"])).toEqual(["no-match", "permission-denied"])
    }))

  it.effect("by default, under Effect's built-in tracer or with tracing disabled, the fold makes no span", () =>
    Effect.gen(function*() {
      const parents: Array<string> = []
      const probe = TestBackend.make("probe", {
        behaviour: TestBackend.Behaviour.noMatch(),
        credentials: Credentials.UsernamePassword
      })
      const seeing = {
        ...probe,
        authenticate: (credentials: Credentials.UsernamePassword, request: AuthRequest.AuthRequest | undefined) =>
          Effect.zipRight(
            Effect.flatMap(Effect.option(Effect.currentSpan), (span) =>
              Effect.sync(() => parents.push(span._tag === "Some" ? span.value.name : "none"))),
            probe.authenticate(credentials, request)
          )
      }
      const login = AuthService.authenticate({ username: "alice", password }).pipe(
        Effect.provide(TestAuth.layer([seeing, TestBackend.succeed("b", TestBackend.user("alice"))])),
        Effect.withSpan("request")
      )
      yield* login
      yield* Effect.withTracerEnabled(login, false)
      // With a recording tracer the same call is traced, so the probe can see the difference.
      yield* Effect.provide(login, RecordingTracer.make().layer)
      // A recording tracer installed but tracing disabled: still no span.
      const disabled = RecordingTracer.make()
      yield* Effect.withTracerEnabled(Effect.provide(login, disabled.layer), false)
      expect(parents).toEqual(["request", "request", "effect-auth.authenticate", "request"])
      expect(disabled.spans.map((span) => span.name)).not.toContain("effect-auth.authenticate")
    }))

  it.effect("\"attempts\": every backend that is called runs in a span named after it, with its outcome, under one authenticate span", () =>
    Effect.gen(function*() {
      const tracer = RecordingTracer.make()
      yield* AuthService.authenticate({ username: "alice", password }).pipe(
        Effect.provide(TestAuth.layer(chain, { tracing: "attempts" })),
        Effect.provide(tracer.layer)
      )
      const attempts = tracer.spans.filter((s) => s.name.startsWith("effect-auth.backend."))
      expect(attempts.map((s) => [s.name, s.attributes.get("auth.backend"), s.attributes.get("auth.outcome")])).toEqual([
        ["effect-auth.backend.a", "a", "no-match"],
        ["effect-auth.backend.b", "b", "transport-error"],
        ["effect-auth.backend.c", "c", "success"]
      ])
      expect(attempts[0]!.attributes.get("auth.reason")).toBe("unknown-user")
      expect(attempts.every((s) => s.parentName === "effect-auth.authenticate")).toBe(true)
    }))

  it.effect("\"attempts\": a backend whose credentials do not decode is skipped without a span of its own", () =>
    Effect.gen(function*() {
      const tracer = RecordingTracer.make()
      const tokens = TestBackend.make("tokens", { behaviour: TestBackend.Behaviour.noMatch(), credentials: Credentials.Token })
      yield* AuthService.authenticate({ username: "alice", password }).pipe(
        Effect.provide(
          TestAuth.layer([tokens, TestBackend.succeed("local", TestBackend.user("alice"))], { tracing: "attempts" })
        ),
        Effect.provide(tracer.layer)
      )
      expect(tracer.spans.map((s) => s.name)).toEqual(["effect-auth.backend.local", "effect-auth.authenticate"])
    }))
})

describe("tracing option", () => {
  const chain = [TestBackend.noMatch("a"), TestBackend.succeed("b", TestBackend.user("alice"))]
  const spansOf = (tracing: AuthService.Tracing) =>
    Effect.gen(function*() {
      const tracer = RecordingTracer.make()
      yield* AuthService.authenticate({ username: "alice", password }).pipe(
        Effect.provide(AuthService.layer(chain, { tracing }).pipe(Layer.provide(AuthEvents.layer))),
        Effect.provide(tracer.layer)
      )
      return tracer.spans
    })

  it.effect("\"call\" records one span with the outcome and the answering backend", () =>
    Effect.gen(function*() {
      const spans = yield* spansOf("call")
      expect(spans.map((s) => s.name)).toEqual(["effect-auth.authenticate"])
      expect(spans[0]!.attributes.get("auth.outcome")).toBe("success")
      expect(spans[0]!.attributes.get("auth.backend")).toBe("b")
    }))

  it.effect("\"off\" records none, \"attempts\" one per attempt plus the call", () =>
    Effect.gen(function*() {
      expect(yield* spansOf("off")).toEqual([])
      expect((yield* spansOf("attempts")).map((s) => s.name)).toEqual([
        "effect-auth.backend.a",
        "effect-auth.backend.b",
        "effect-auth.authenticate"
      ])
    }))
})

describe("secrets", () => {
  it.effect("no password appears in any error, event, span or log, whatever the outcome", () =>
    Effect.gen(function*() {
      const rendered: Array<string> = []
      const logs: Array<string> = []
      const logger = Logger.make(({ cause, message }) => {
        logs.push(Inspectable.toStringUnknown(message), Cause.pretty(cause))
      })
      const chains = [
        [TestBackend.noMatch("a")],
        [TestBackend.unavailable("a", "down", { onTransportError: "fallthrough" })],
        [TestBackend.deny("a", "locked")],
        [TestBackend.unavailable("a", "down")],
        [TestBackend.passwords("a", [{ user: TestBackend.user("alice"), password: "other" }])],
        [TestBackend.succeed("a", TestBackend.user("alice"))]
      ]
      const credentialSets = [
        { username: "alice", password },
        { username: "alice", password: Redacted.make(password) },
        { token: password },
        { username: "alice", password, apiKey: password, my_signature: password, Secret: password }
      ]
      const tracer = RecordingTracer.make()
      for (const chain of chains) {
        for (const credentials of credentialSets) {
          const program = Effect.gen(function*() {
            const exit = yield* Effect.exit(AuthService.authenticate(credentials))
            if (Exit.isFailure(exit)) {
              yield* Effect.logError("login failed", exit.cause)
              const error = Cause.failureOption(exit.cause)
              if (error._tag === "Some") {
                rendered.push(
                  String(error.value),
                  JSON.stringify(error.value),
                  Inspectable.format(error.value),
                  JSON.stringify(Schema.encodeSync(AuthError.AuthError)(error.value as AuthError.AuthError))
                )
              }
            } else {
              yield* Effect.logInfo("logged in", exit.value)
              rendered.push(JSON.stringify(exit.value), String(exit.value))
            }
            for (const event of yield* TestAuth.events) {
              yield* Effect.logInfo("event", event)
              rendered.push(JSON.stringify(event), String(event), Inspectable.format(event))
            }
          })
          yield* program.pipe(
            Effect.provide(TestAuth.layer(chain)),
            Effect.provide(Layer.merge(tracer.layer, Logger.replace(Logger.defaultLogger, logger)))
          )
        }
      }
      rendered.push(...tracer.spans.map(RecordingTracer.render), ...logs)
      expect(rendered.length).toBeGreaterThan(50)
      for (const text of rendered) expect(text).not.toContain(password)
      // The check itself can fail: the password is findable when it is printed.
      expect(JSON.stringify({ password })).toContain(password)
    }))

  // A tracer is handed each span's exit: the hasher's spans ended with the encoded hash and the
  // derived key (what an offline guess of the typed password needs), the session stores' with the
  // record and its CSRF token.
  it.effect("the library's own spans end without the value: no hash, derived key or stored session's token", () =>
    Effect.gen(function*() {
      const tracer = RecordingTracer.make()
      const csrfToken = "c3RvcmVkLWNzcmYtdG9rZW4tb2YtYWxpY2U"
      const seen = yield* Effect.gen(function*() {
        const hasher = yield* PasswordHasher.make({ pbkdf2: { iterations: 1000 } })
        const encoded = yield* hasher.hash(Redacted.make(password))
        expect((yield* hasher.verify(Redacted.make(password), encoded)).valid).toBe(true)
        expect((yield* hasher.verify(Redacted.make("wrong"), encoded)).valid).toBe(false)
        const store = yield* SessionStore.SessionStore
        const now = record().createdAt
        yield* store.set("k", record({ csrfToken }), now)
        expect(Option.map(yield* store.get("k", now), (r) => r.csrfToken)).toEqual(Option.some(csrfToken))
        return encoded
      }).pipe(
        Effect.provide(SqlSessionStore.layer().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))),
        Effect.provide(tracer.layer)
      )
      const derivedKey = seen.split("$")[3]!
      const ours = tracer.spans.filter((span) => /^(effect-auth\.password\.|SessionStore\.)/.test(span.name))
      expect(ours.map((span) => span.name)).toEqual(expect.arrayContaining([
        "effect-auth.password.hash",
        "effect-auth.password.derive",
        "effect-auth.password.verify",
        "SessionStore.get"
      ]))
      for (const span of ours) {
        const text = RecordingTracer.render(span)
        for (const secret of [seen, derivedKey, csrfToken, password]) expect([span.name, text.includes(secret)]).toEqual([span.name, false])
      }
    }).pipe(Effect.scoped))

  // The user object is the app's: an app's own user type may keep its password hash as a plain
  // string (Session.passwordHashField reads one). The fold's and the session service's spans
  // ended with it, and a tracer that prints exits printed the hash.
  it.effect("the fold's and the session service's spans end without the user, whose own type may hold a plain password hash", () =>
    Effect.gen(function*() {
      const tracer = RecordingTracer.make()
      const passwordHash = "pbkdf2_sha256$1000$salt$cGxhaW4tc3RyaW5nLWhhc2gtb2YtYWxpY2U="
      const alice = { ...TestBackend.user("alice"), passwordHash } as ReturnType<typeof TestBackend.user>
      for (const tracing of ["auto", "attempts"] as const) {
        yield* Effect.gen(function*() {
          const sessions = yield* Session.Session
          const started = yield* sessions.login(yield* AuthService.authenticate({ username: "alice", password }))
          expect(Option.isSome(yield* sessions.currentUser(started.sessionId))).toBe(true)
        }).pipe(
          Effect.provide(
            Session.layer({ secret: Redacted.make("a-session-secret-of-32-characters") }).pipe(
              Layer.provideMerge(TestAuth.layer([TestBackend.succeed("local", alice)], { tracing })),
              Layer.provideMerge(MemorySessionStore.layer)
            )
          ),
          Effect.provide(tracer.layer)
        )
      }
      const names = tracer.spans.map((span) => span.name)
      expect(names).toEqual(expect.arrayContaining([
        "effect-auth.authenticate",
        "effect-auth.backend.local",
        "effect-auth.Session.login",
        "effect-auth.Session.currentUser"
      ]))
      for (const span of tracer.spans) {
        const text = [RecordingTracer.render(span), JSON.stringify(span.exit), inspect(span.exit, { depth: Infinity })].join("\n")
        expect([span.name, text.includes("cGxhaW4tc3RyaW5nLWhhc2gtb2YtYWxpY2U")]).toEqual([span.name, false])
      }
    }))

  it("decoded secrets print as <redacted>", () => {
    const decoded = Schema.decodeUnknownSync(Credentials.UsernamePassword)({ username: "alice", password })
    expect(String(decoded.password)).toBe("<redacted>")
    expect(JSON.stringify(decoded)).not.toContain(password)
    expect(Redacted.value(decoded.password)).toBe(password)
  })
})
