// The platform's server span records every request header as `http.request.header.<name>`, but
// for those named in `Headers.currentRedactedNames` (by default `authorization`, `cookie`,
// `set-cookie`, `x-api-key`). A credential in another header (an API key sent as `X-Auth-Token`,
// the CSRF token, `Proxy-Authorization`) must not reach a trace: `HttpAuth.layer` adds them. And a
// backend or an event never gets them in the request's headers.
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, HashMap, Layer, Logger, Redacted, Schema } from "effect"
import * as http from "node:http"
import { AuthBackend, AuthError } from "../src/index.js"
import * as Authentication from "../src/http/Authentication.js"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as RequestSource from "../src/http/RequestSource.js"
import * as TestAuth from "../src/testing/TestAuth.js"
import type { AuthRequest } from "../src/AuthRequest.js"
import {
  AccountGroupLive,
  Api,
  appLayer,
  AuthGroupLive,
  call,
  defaultHttp,
  login,
  routerLogin,
  serve
} from "./utils/httpAuthServer.js"
import * as RecordingTracer from "./utils/recordingTracer.js"

const apiKey = "alice-token"
const proxySecret = "Basic cHJveHk6c2VjcmV0LXByb3h5LXBhc3N3b3Jk"
const options: HttpAuth.Options = { ...defaultHttp, apiKey: { header: "X-Auth-Token" } }

// Records the headers every authentication hands the backends.
const seenHeaders: Array<Readonly<Record<string, string | undefined>>> = []
const probe = AuthBackend.make({
  id: "probe",
  credentials: Schema.Unknown,
  authenticate: (_credentials, request?: AuthRequest) => {
    if (request?.headers !== undefined) seenHeaders.push(request.headers)
    return AuthError.noMatch("probe", "unsupported-credentials")
  },
  getUser: () => Effect.succeedNone
})

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/me", Effect.map(CurrentUser.CurrentUser, ({ user }) => HttpServerResponse.text(user.username))),
  HttpRouter.post("/me", Effect.map(CurrentUser.CurrentUser, ({ user }) => HttpServerResponse.text(user.username))),
  HttpRouter.use(HttpAuth.requireUser),
  HttpRouter.post("/login", routerLogin)
)

const serveForm = (form: "HttpApi" | "router", tracer: Layer.Layer<never>) =>
  Effect.gen(function*() {
    const app = appLayer({ http: options, backends: [probe] })
    const listen = NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" })
    const server = (form === "HttpApi"
      ? HttpApiBuilder.serve().pipe(
        Layer.provide(HttpApiBuilder.api(Api)),
        Layer.provide([AuthGroupLive, AccountGroupLive]),
        Layer.provide(Authentication.layer),
        Layer.provideMerge(app),
        Layer.provideMerge(listen)
      )
      : HttpServer.serve(router).pipe(Layer.provideMerge(app), Layer.provideMerge(listen))) as Layer.Layer<
        HttpServer.HttpServer,
        unknown
      >
    const context = yield* Layer.build(Layer.provide(server, tracer))
    return HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
  })

describe("headers that carry a secret", () => {
  for (const form of ["HttpApi", "router"] as const) {
    it.scoped(`${form}: the server span records an API key's header, the CSRF header and Proxy-Authorization redacted`, () =>
      Effect.gen(function*() {
        const recording = RecordingTracer.make()
        const url = yield* serveForm(form, recording.layer)

        // An API key in its own header, and a proxy's credentials beside it.
        const byKey = yield* call(url, "GET", "/me", { headers: { "x-auth-token": apiKey, "proxy-authorization": proxySecret } })
        expect(byKey.status).toBe(200)

        // A session's unsafe request: the CSRF token in its header.
        const { cookie, csrf: csrfToken } = yield* login(url, "alice", "wonderland")
        expect(csrfToken.length).toBeGreaterThanOrEqual(20)
        const posted = yield* call(url, "POST", form === "HttpApi" ? "/logout" : "/me", {
          headers: { cookie, "x-csrftoken": csrfToken }
        })
        expect(posted.status).toBeLessThan(300)

        const server = recording.spans.filter((span) => span.name.startsWith("http.server"))
        expect(server.length).toBeGreaterThanOrEqual(3)
        const headers = new Map(server.flatMap((span) => [...span.attributes].filter(([key]) => key.startsWith("http.request.header."))))
        // The headers were there, and recorded as redacted.
        expect(String(headers.get("http.request.header.x-auth-token"))).toBe("<redacted>")
        expect(String(headers.get("http.request.header.proxy-authorization"))).toBe("<redacted>")
        expect(String(headers.get("http.request.header.x-csrftoken"))).toBe("<redacted>")
        // What an exporter sends of every span of the server's (the test's own client spans record
        // what it sent; the login's answer, the span's exit, holds the token by design of this app).
        for (const span of recording.spans.filter((span) => !span.name.startsWith("http.client"))) {
          const text = JSON.stringify([...span.attributes]) + JSON.stringify(span.events)
          expect(text).not.toContain(apiKey)
          expect(text).not.toContain(proxySecret)
          expect(text).not.toContain(csrfToken)
        }
      }))
  }

  it.scoped("a backend never gets the CSRF header among the request's headers, whatever its case in the options", () =>
    Effect.gen(function*() {
      seenHeaders.length = 0
      const url = yield* serveForm("router", Layer.empty)
      const { cookie, csrf: csrfToken } = yield* login(url, "alice", "wonderland")
      // A wrong API key, so the chain runs (the probe records), over a live session's cookie.
      const reply = yield* call(url, "POST", "/me", {
        headers: {
          cookie,
          "x-csrftoken": csrfToken,
          "x-auth-token": "not-a-key",
          "x-request-id": "r-1"
        }
      })
      expect(reply.status).toBe(401)
      expect(seenHeaders.length).toBeGreaterThan(0)
      for (const headers of seenHeaders) {
        expect(headers["x-request-id"]).toBe("r-1")
        expect(Object.keys(headers)).not.toContain("x-csrftoken")
        expect(Object.keys(headers)).not.toContain("x-auth-token")
        expect(Object.values(headers)).not.toContain(csrfToken)
      }
    }))
})

// EventSource and WebSocket clients cannot set headers: a token comes in the query. The source
// names the parameter it reads, as it names its headers, and backends and events see its value
// masked in the request's URL.
describe("query parameters that carry a secret", () => {
  const token = "s3cr3t-token-value"
  const queryToken = RequestSource.make({
    name: "queryToken",
    method: "api-key",
    query: ["access_token"],
    read: (request) => {
      const value = new URLSearchParams(request.url.split("?")[1] ?? "").get("access_token")
      return value === null ? RequestSource.absent : RequestSource.credentials({ token: Redacted.make(value) })
    }
  })

  it.scoped("a source's query parameter is masked in the URL that LoginFailed carries; the token is nowhere in the event", () =>
    Effect.gen(function*() {
      const { context, url } = yield* serve({ http: { realm: "test", sources: [queryToken] } })
      const refused = yield* call(url, "GET", `/whoami?page=2&access_token=${token}&sort=asc`)
      expect(refused.status).toBe(401)
      // the name percent-encoded is the same parameter to URLSearchParams, so to the source
      expect((yield* call(url, "GET", `/whoami?access%5Ftoken=${token}`)).status).toBe(401)
      // a good token still authenticates: the source reads the request, not the view
      const ok = yield* call(url, "GET", "/whoami?access_token=alice-token")
      expect(ok.status).toBe(200)
      expect(ok.json()).toBe("alice")

      const events = yield* Effect.provide(TestAuth.events, context as Context.Context<TestAuth.EventLog>)
      const failed = events.filter((event) => event._tag === "LoginFailed")
      expect(failed.map((event) => event.request?.url)).toEqual([
        "/whoami?page=2&access_token=********************&sort=asc",
        "/whoami?access%5Ftoken=********************"
      ])
      for (const event of events) expect(JSON.stringify(event)).not.toContain(token)
    }))

  // An event kept the HTTP layer's request view, and with it the transport's request (its socket
  // state, every header, a body read): 42 KiB an event for a 16 KB login body, held in every slow
  // subscriber's queue.
  it.scoped("LoginFailed carries a plain copy of the request, nothing of the transport's", () =>
    Effect.gen(function*() {
      const { context, url } = yield* serve({ http: { realm: "test", sources: [queryToken] } })
      expect((yield* call(url, "GET", `/whoami?access_token=${token}`, { headers: { "x-trace": "t-1" } })).status).toBe(401)
      const events = yield* Effect.provide(TestAuth.events, context as Context.Context<TestAuth.EventLog>)
      const request = events.find((event) => event._tag === "LoginFailed")?.request
      expect(Object.getPrototypeOf(request)).toBe(Object.prototype)
      expect(Object.keys(request!).sort()).toEqual(["headers", "method", "remoteAddress", "stage", "url"])
      expect(request).toMatchObject({ method: "GET", url: "/whoami?access_token=********************", stage: "login" })
      expect(request!.headers!["x-trace"]).toBe("t-1")
      expect(Object.getOwnPropertySymbols(request!)).toEqual([])
    }))

  // The platform's server span recorded the URL as sent (`url.full`, `url.query`), and
  // HttpMiddleware.logger's line ("Sent HTTP response", `http.url`) too: the token was in both,
  // though backends and events saw it masked.
  const queryRouter = HttpRouter.empty.pipe(
    HttpRouter.get("/me", Effect.map(CurrentUser.CurrentUser, ({ user }) => HttpServerResponse.text(user.username))),
    HttpRouter.use(HttpAuth.requireUser)
  )
  for (const form of ["HttpApi", "router"] as const) {
    it.scoped(`${form}: the token is in neither the server span nor the access log; a request without it is recorded as sent`, () =>
      Effect.gen(function*() {
        const recording = RecordingTracer.make()
        const lines: Array<string> = []
        const logger = Logger.replace(Logger.defaultLogger, Logger.make(({ annotations, message }) => {
          lines.push(JSON.stringify([message, Object.fromEntries(HashMap.toEntries(annotations))]))
        }))
        const app = appLayer({ http: { realm: "test", sources: [queryToken, RequestSource.bearer] } })
        const listen = NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" })
        const server = (form === "HttpApi"
          ? HttpApiBuilder.serve(HttpMiddleware.logger).pipe(
            Layer.provide(HttpApiBuilder.api(Api)),
            Layer.provide([AuthGroupLive, AccountGroupLive]),
            Layer.provide(Authentication.layer),
            Layer.provideMerge(app),
            Layer.provideMerge(listen)
          )
          : HttpServer.serve(queryRouter, HttpMiddleware.logger).pipe(Layer.provideMerge(app), Layer.provideMerge(listen))) as Layer.Layer<
            HttpServer.HttpServer,
            unknown
          >
        const context = yield* Layer.build(Layer.provide(server, Layer.merge(recording.layer, logger)))
        const url = HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)

        const good = "alice-token"
        expect((yield* call(url, "GET", `/me?page=2&access_token=${good}`)).status).toBe(200)
        expect((yield* call(url, "GET", `/me?ACCESS_TOKEN=${token}&sort=asc`)).status).toBe(401)
        expect((yield* call(url, "GET", "/me?page=3&sort=desc", { headers: { authorization: `Bearer ${good}` } })).status)
          .toBe(200)

        const spans = recording.spans.filter((span) => span.name.startsWith("http.server"))
        expect(spans.map((span) => span.attributes.get("url.query"))).toEqual([
          "page=2&access_token=********************",
          "ACCESS_TOKEN=********************&sort=asc",
          "page=3&sort=desc"
        ])
        expect(spans.map((span) => span.attributes.get("url.full"))).toEqual([
          `${url}/me?page=2&access_token=********************`,
          `${url}/me?ACCESS_TOKEN=********************&sort=asc`,
          `${url}/me?page=3&sort=desc`
        ])
        // every span of the server's (the test's own client spans record what it sent)
        for (const span of recording.spans.filter((span) => !span.name.startsWith("http.client"))) {
          expect(RecordingTracer.render(span)).not.toContain(good)
          expect(RecordingTracer.render(span)).not.toContain(token)
        }
        // the logger's line for a request with the token is left out; the other is logged as sent
        const sent = lines.filter((line) => line.includes("Sent HTTP response"))
        expect(sent).toHaveLength(1)
        expect(sent[0]).toContain(`"http.url":"/me?page=3&sort=desc"`)
        for (const line of lines) {
          expect(line).not.toContain(good)
          expect(line).not.toContain(token)
        }
      }))
  }

  it.effect("a source's query parameter must have a name", () =>
    Effect.gen(function*() {
      const nameless = RequestSource.make({ name: "nameless", method: "api-key", query: [""], read: () => RequestSource.absent })
      const error = yield* Effect.flip(Layer.build(appLayer({ http: { realm: "test", sources: [nameless] } })).pipe(Effect.scoped))
      expect(String((error as { message?: string }).message)).toContain("sources: nameless.query")
    }))
})
