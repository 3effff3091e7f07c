// The HTTP middlewares run AuthService's fold directly in the request's fiber (one fiber step when
// the backends answer with `Exit`s). These tests hold that a recording tracer still gets the call
// span, with every attempt and the outcome, through both forms, whichever way the backends answer.
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import { AuthBackend, AuthError, AuthEvents, AuthService, Credentials, TestBackend } from "../src/index.js"
import * as Authentication from "../src/http/Authentication.js"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as RecordingTracer from "./utils/recordingTracer.js"

const token = "tok_5d41402abc4b2a76b9719d911017c592"
const alice = TestBackend.user("alice")

// Backends as the docs teach them: prebuilt failures and `Effect.succeed`, so they answer with
// `Exit`s and the fold never steps the fiber.
const exitChain = [
  AuthBackend.make({
    id: "other-tokens",
    credentials: Credentials.Token,
    authenticate: () => AuthError.noMatch("other-tokens", "invalid-credentials"),
    getUser: () => Effect.succeedNone
  }),
  AuthBackend.make({
    id: "tokens",
    credentials: Credentials.Token,
    authenticate: ({ token: t }) =>
      Redacted.value(t) === token ? Effect.succeed(alice) : AuthError.noMatch("tokens", "invalid-credentials"),
    getUser: () => Effect.succeedNone
  })
]
// The same answers from backends that must run as effects.
const effectChain = [
  TestBackend.make("other-tokens", { behaviour: TestBackend.Behaviour.noMatch(), credentials: Credentials.Token }),
  TestBackend.make("tokens", {
    behaviour: (credentials: unknown) =>
      Redacted.value((credentials as Credentials.Token).token) === token
        ? TestBackend.Behaviour.succeed(alice)
        : TestBackend.Behaviour.noMatch(),
    credentials: Credentials.Token
  })
]

const Hello = Schema.Struct({ hello: Schema.String })
class Protected extends HttpApiGroup.make("protected")
  .add(HttpApiEndpoint.get("protected", "/protected").addSuccess(Hello))
  .middleware(Authentication.Authentication)
{}
class Api extends HttpApi.make("traced").add(Protected) {}

const router = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/protected",
    HttpAuth.requireUser(Effect.flatMap(CurrentUser.CurrentUser, ({ user }) => HttpServerResponse.json({ hello: user.username })))
  )
)

const handlerFor = (
  form: "HttpApi" | "router",
  backends: ReadonlyArray<AuthBackend.AuthBackend>,
  tracer: Layer.Layer<never>
) => {
  const auth = HttpAuth.layer({ bearer: true, session: false }).pipe(
    Layer.provideMerge(AuthService.layer(backends)),
    Layer.provide(AuthEvents.layer)
  )
  return form === "HttpApi"
    ? HttpApiBuilder.toWebHandler(Layer.mergeAll(
      HttpApiBuilder.api(Api).pipe(
        Layer.provide(HttpApiBuilder.group(Api, "protected", (h) =>
          h.handle("protected", () => Effect.map(CurrentUser.CurrentUser, ({ user }) => ({ hello: user.username }))))),
        Layer.provide(Authentication.layer),
        Layer.provide(auth)
      ),
      HttpServer.layerContext,
      tracer
    ))
    : HttpApp.toWebHandlerLayer(router, Layer.merge(auth, tracer))
}

const get = (handler: (request: Request) => Promise<Response>, bearer: string) =>
  Effect.promise(async () => {
    const response = await handler(new Request("http://test/protected", { headers: { authorization: `Bearer ${bearer}` } }))
    return { status: response.status, body: await response.text() }
  })

describe("spans through the HTTP middlewares", () => {
  for (const form of ["HttpApi", "router"] as const) {
    for (const [answers, backends] of [["Exits", exitChain], ["effects", effectChain]] as const) {
      it.scoped(`${form}, backends answering with ${answers}: one authenticate span per request, with every attempt and the outcome`, () =>
        Effect.gen(function*() {
          const recording = RecordingTracer.make()
          const { dispose, handler } = handlerFor(form, backends, recording.layer)
          yield* Effect.addFinalizer(() => Effect.promise(dispose))

          const ok = yield* get(handler, token)
          expect(ok).toEqual({ status: 200, body: JSON.stringify({ hello: "alice" }) })
          const calls = () => recording.spans.filter((s) => s.name === "effect-auth.authenticate")
          expect(calls()).toHaveLength(1)
          const success = calls()[0]!
          // In the request's trace: a child of the platform's server span.
          expect(success.parentName).toBe("http.server GET")
          expect(success.attributes.get("auth.outcome")).toBe("success")
          expect(success.attributes.get("auth.backend")).toBe("tokens")
          expect(success.attributes.get("auth.attempts")).toBe(2)
          expect(success.events).toEqual([
            {
              name: "effect-auth.attempt",
              attributes: { "auth.backend": "other-tokens", "auth.outcome": "no-match", "auth.reason": "invalid-credentials" }
            },
            { name: "effect-auth.attempt", attributes: { "auth.backend": "tokens", "auth.outcome": "success" } }
          ])

          const wrong = yield* get(handler, `${token}x`)
          expect(wrong.status).toBe(401)
          expect(calls()).toHaveLength(2)
          const failure = calls()[1]!
          expect(failure.attributes.get("auth.outcome")).toBe("AuthenticationFailed")
          expect(failure.events.map((e) => e.attributes?.["auth.outcome"])).toEqual(["no-match", "no-match"])
          // The token is in no span of the requests, the platform's included.
          for (const span of recording.spans) expect(RecordingTracer.render(span)).not.toContain(token)
        }))
    }
  }

  it.scoped("under Effect's built-in tracer the HTTP path makes no authenticate span: backends run in the request's span", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const probe = AuthBackend.make({
        id: "probe",
        credentials: Credentials.Token,
        authenticate: () =>
          Effect.flatMap(Effect.option(Effect.currentSpan), (span) => {
            seen.push(Option.match(span, { onNone: () => "none", onSome: (s) => s.name }))
            return AuthError.noMatch("probe", "invalid-credentials")
          }),
        getUser: () => Effect.succeedNone
      })
      for (const form of ["HttpApi", "router"] as const) {
        const { dispose, handler } = handlerFor(form, [probe, ...exitChain], Layer.empty)
        yield* Effect.addFinalizer(() => Effect.promise(dispose))
        expect((yield* get(handler, token)).status).toBe(200)
      }
      expect(seen).toEqual(["http.server GET", "http.server GET"])
    }))
})
