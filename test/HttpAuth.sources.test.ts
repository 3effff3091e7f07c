// Request sources: the `sources` option, the OpenAPI security the middlewares declare, and the
// store reads a request costs.
import { describe, expect, it } from "@effect/vitest"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Authentication from "../src/http/Authentication.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as RequestSource from "../src/http/RequestSource.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as RemoteUserBackend from "../src/backends/RemoteUserBackend.js"
import * as MemorySessionStore from "../src/MemorySessionStore.js"
import * as SessionStore from "../src/SessionStore.js"
import { appLayer, call, defaultHttp, login, serve, type ServerOptions } from "./utils/httpAuthServer.js"

const withServer = <A, E>(options: ServerOptions, f: (url: string) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(serve(options), ({ url }) => f(url)))

const specOf = (middleware: unknown) => {
  class Api extends HttpApi.make("api").add(
    HttpApiGroup.make("me").add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String)).middleware(middleware as any)
  ) {}
  return OpenApi.fromApi(Api)
}

describe("HttpAuth: security in the OpenAPI document", () => {
  it("Authentication declares HttpAuth's default schemes: bearer and the session cookie", () => {
    const spec = specOf(Authentication.Authentication)
    expect(spec.components.securitySchemes).toEqual({
      bearer: { type: "http", scheme: "bearer" },
      session: { type: "apiKey", name: "sessionid", in: "cookie" }
    })
    expect(spec.paths["/me"]?.get?.security).toEqual([{ bearer: [] }, { session: [] }])
  })

  it("Authentication.Tag declares the configured sources: bearer, basic, the API-key header", () => {
    const sources = [
      RequestSource.bearer,
      RequestSource.basic,
      RequestSource.apiKey({ header: "X-API-Key" }),
      RequestSource.remoteUser()
    ]
    class ApiAuth extends Authentication.Tag<ApiAuth>()("test/ApiAuth", { sources }) {}
    const spec = specOf(ApiAuth)
    expect(spec.components.securitySchemes).toEqual({
      bearer: { type: "http", scheme: "bearer" },
      basic: { type: "http", scheme: "basic" },
      apiKey: { type: "apiKey", name: "X-API-Key", in: "header" }
    })
  })
})

// The tokens backend of the test app reads `{ token }` and `{ apiKey }`.
const signed = RequestSource.make({
  name: "signed",
  method: "api-key",
  headers: ["X-Signed"],
  read: (request) => {
    const value = request.headers["x-signed"]
    if (value === undefined) return RequestSource.absent
    return value.startsWith("v1.") ? RequestSource.credentials({ apiKey: Redacted.make(value.slice(3)) }) : RequestSource.malformed
  },
  challenge: (realm) => `Signed realm="${realm}"`
})

describe("HttpAuth: the sources option", () => {
  const http: HttpAuth.Options = { realm: "test", sources: [signed, RequestSource.bearer, RequestSource.sessionCookie()] }

  it.live("a custom source is folded in order: present decides, malformed is a 401, absent goes on", () =>
    withServer({ http }, (url) =>
      Effect.gen(function*() {
        const ok = yield* call(url, "GET", "/me", { headers: { "x-signed": "v1.alice-token" } })
        expect(ok.status).toBe(200)
        expect(ok.json()).toMatchObject({ username: "alice", method: "api-key" })
        // The custom source comes first: its bad value is a 401 even with a good bearer token.
        const bad = yield* call(url, "GET", "/me", { headers: { "x-signed": "v0.x", authorization: "Bearer alice-token" } })
        expect(bad.status).toBe(401)
        expect(bad.headers["www-authenticate"]).toBe("Signed realm=\"test\", Bearer realm=\"test\"")
        const bearer = yield* call(url, "GET", "/me", { headers: { authorization: "Bearer alice-token" } })
        expect(bearer.json()).toMatchObject({ username: "alice", method: "bearer" })
        // Basic is not listed: an Authorization header no source claims is a 401, not the cookie.
        const { cookie } = yield* login(url, "alice", "wonderland")
        const basic = yield* call(url, "GET", "/me", { headers: { authorization: "Basic YWxpY2U6d29uZGVybGFuZA==", cookie } })
        expect(basic.status).toBe(401)
        expect((yield* call(url, "GET", "/me", { headers: { cookie } })).json()).toMatchObject({ method: "session" })
      })))

  it.live("without a source that reads Authorization, the header is not read: a proxy's own Basic auth leaves the cookie to decide", () =>
    withServer({ http: { realm: "test", sources: [signed, RequestSource.sessionCookie()] } }, (url) =>
      Effect.gen(function*() {
        const { cookie } = yield* login(url, "alice", "wonderland")
        for (const authorization of ["Basic cHJveHk6cGFzcw==", "Bearer garbage", "Token x", "Bearer"]) {
          const response = yield* call(url, "GET", "/me", { headers: { authorization, cookie } })
          expect(response.status, authorization).toBe(200)
          expect(response.json()).toMatchObject({ username: "alice", method: "session" })
        }
        expect((yield* call(url, "GET", "/me", { headers: { authorization: "Bearer alice-token" } })).status).toBe(401)
      })))

  it.live("sources together with the shorthand options, or a source's bad header name, fail the layer", () =>
    Effect.gen(function*() {
      for (
        const bad of [
          { sources: [RequestSource.bearer], basic: true },
          { sources: [RequestSource.apiKey({ header: "Bad Header" })] },
          { sources: [RequestSource.apiKey({ header: "Cookie" })] },
          { sources: [RequestSource.bearer, RequestSource.bearer] }
        ] satisfies ReadonlyArray<HttpAuth.Options>
      ) {
        const exit = yield* Effect.exit(Layer.build(appLayer({ http: bad, session: false })))
        expect(Exit.isFailure(exit) && exit.cause.toString()).toContain("AuthConfigError")
      }
    }).pipe(Effect.scoped))

  it.live("the remote-user header comes before the session cookie: it checks the session, so after the cookie it would never run", () =>
    Effect.gen(function*() {
      const build = (sources: ReadonlyArray<RequestSource.RequestSource>) =>
        Effect.exit(Layer.build(appLayer({
          chain: [ModelBackend.ModelBackend, RemoteUserBackend.RemoteUserBackend],
          backendLayer: RemoteUserBackend.layer({}),
          http: { realm: "test", sources }
        })))
      const remote = RequestSource.remoteUser({ header: "X-Remote-User" })
      const after = yield* build([RequestSource.sessionCookie(), remote])
      expect(Exit.isFailure(after) && after.cause.toString()).toContain("must come before the session cookie")
      expect(Exit.isSuccess(yield* build([remote, RequestSource.sessionCookie()]))).toBe(true)
    }).pipe(Effect.scoped))
})

// A memory store that counts its reads.
const countingStore = (reads: { count: number }) =>
  Layer.effect(
    SessionStore.SessionStore,
    Effect.map(MemorySessionStore.make, (store): SessionStore.SessionStore.Service => ({
      ...store,
      get: (key, now) => Effect.zipRight(Effect.sync(() => reads.count++), store.get(key, now))
    }))
  )

describe("HttpAuth: the session is read once per request", () => {
  it.live("a login over a live session reads the store once", () => {
    const reads = { count: 0 }
    return withServer({ http: defaultHttp, store: countingStore(reads) }, (url) =>
      Effect.gen(function*() {
        const alice = yield* login(url, "alice", "wonderland")
        reads.count = 0
        const bob = yield* login(url, "bob", "pa:ss:word", { cookie: alice.cookie, "x-csrftoken": alice.csrf })
        expect(reads.count).toBe(1)
        // ... and still flushes the old session and checks its CSRF token.
        expect(bob.session).not.toBe(alice.session)
        expect((yield* call(url, "GET", "/me", { headers: { cookie: alice.cookie } })).status).toBe(401)
        const forged = yield* call(url, "POST", "/login", {
          json: { username: "alice", password: "wonderland" },
          headers: { cookie: bob.cookie, "x-csrftoken": alice.csrf }
        })
        expect(forged.status).toBe(403)
      }))
  })

  it.live("a cookie request reads the store once, however many times its user is asked for", () => {
    const reads = { count: 0 }
    return withServer({ http: defaultHttp, store: countingStore(reads) }, (url) =>
      Effect.gen(function*() {
        const { cookie } = yield* login(url, "alice", "wonderland")
        reads.count = 0
        expect((yield* call(url, "GET", "/reports/twice", { headers: { cookie } })).status).toBe(200)
        expect(reads.count).toBe(1)
      }))
  })
})
