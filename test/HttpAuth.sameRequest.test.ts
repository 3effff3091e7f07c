// Django's login() sets request.user and request.session; logout() sets AnonymousUser: the rest of
// the request goes by the session it just started, changed or ended. So does HttpAuth: a handler
// that logs in and then asks who the request is (to render a page, its CSRF token) sees the new
// user, and the response keeps the new session's cookie.
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as http from "node:http"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as RemoteUserBackend from "../src/backends/RemoteUserBackend.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as UserStore from "../src/UserStore.js"
import { appLayer, call, defaultHttp, login, routerLogin, serveApp } from "./utils/httpAuthServer.js"

const Payload = Schema.Struct({ username: Schema.String, password: Schema.Redacted(Schema.String) })
const who = Effect.map(HttpAuth.optionalUser, Option.match({ onNone: () => null, onSome: ({ user }) => user.username }))
const token = Effect.map(HttpAuth.csrfToken, Option.match({ onNone: () => null, onSome: Redacted.value }))

const app = HttpRouter.empty.pipe(
  HttpRouter.post("/login", routerLogin),
  // A login that then renders a page: who is logged in, and the token its forms carry.
  HttpRouter.post(
    "/login-page",
    Effect.gen(function*() {
      const payload = yield* Effect.orDie(HttpServerRequest.schemaBodyJson(Payload))
      yield* HttpAuth.login(payload)
      return yield* HttpServerResponse.json({ who: yield* who, csrfToken: yield* token })
    })
  ),
  HttpRouter.post(
    "/logout-page",
    Effect.gen(function*() {
      yield* HttpAuth.logout
      return yield* HttpServerResponse.json({ who: yield* who, csrfToken: yield* token })
    })
  ),
  HttpRouter.post(
    "/password",
    Effect.gen(function*() {
      const { user } = yield* HttpAuth.currentUser
      const store = yield* UserStore.UserStore
      const hasher = yield* PasswordHasher.PasswordHasher
      yield* Effect.orDie(store.setPassword(user.id, yield* Effect.orDie(hasher.hash(Redacted.make("looking-glass")))))
      yield* HttpAuth.updateSessionAuthHash(Option.getOrThrow(yield* Effect.orDie(store.findById(user.id))))
      return yield* HttpServerResponse.json({ who: yield* who, csrfToken: yield* token })
    })
  ),
  HttpRouter.get("/me", Effect.flatMap(who, (name) => HttpServerResponse.json({ who: name }))),
  HttpRouter.post("/note", HttpServerResponse.json({ ok: true })),
  HttpRouter.use(HttpAuth.middleware)
)

const sessionCookie = (reply: { readonly cookies: { readonly cookies: Readonly<Record<string, { readonly value: string }>> } }) =>
  reply.cookies.cookies["sessionid"]?.value

describe("the rest of the request goes by the session it started, changed or ended", () => {
  it.scoped("a login over another user's session: the page sees the new user, and the new session's cookie is kept", () =>
    Effect.gen(function*() {
      const url = yield* serveApp(app)
      const bob = yield* login(url, "bob", "pa:ss:word")
      const reply = yield* call(url, "POST", "/login-page", {
        json: { username: "alice", password: "wonderland" },
        headers: { cookie: bob.cookie, "x-csrftoken": bob.csrf }
      })
      expect(reply.status).toBe(200)
      expect(reply.json().who).toBe("alice")
      const renewed = sessionCookie(reply)
      expect(renewed).toMatch(/.+/)
      expect(renewed).not.toBe(bob.session)
      expect((yield* call(url, "GET", "/me", { headers: { cookie: `sessionid=${renewed}` } })).json()).toEqual({ who: "alice" })
      // The page's token is the new session's: a form posted with it passes.
      const posted = yield* call(url, "POST", "/note", {
        headers: { cookie: `sessionid=${renewed}`, "x-csrftoken": reply.json().csrfToken }
      })
      expect(posted.status).toBe(200)
      // bob's session ended with the login.
      expect((yield* call(url, "GET", "/me", { headers: { cookie: bob.cookie } })).json()).toEqual({ who: null })
    }))

  it.scoped("a password change, then the page's CSRF token: the new session's, which passes", () =>
    Effect.gen(function*() {
      const url = yield* serveApp(app)
      const alice = yield* login(url, "alice", "wonderland")
      const reply = yield* call(url, "POST", "/password", { headers: { cookie: alice.cookie, "x-csrftoken": alice.csrf } })
      expect(reply.status).toBe(200)
      expect(reply.json().who).toBe("alice")
      const renewed = sessionCookie(reply)
      expect(renewed).toMatch(/.+/)
      expect(reply.json().csrfToken).toEqual(expect.any(String))
      const posted = yield* call(url, "POST", "/note", {
        headers: { cookie: `sessionid=${renewed}`, "x-csrftoken": reply.json().csrfToken }
      })
      expect(posted.status).toBe(200)
    }))

  it.scoped("a logout: the rest of the request is anonymous and hands out no token", () =>
    Effect.gen(function*() {
      const url = yield* serveApp(app)
      const alice = yield* login(url, "alice", "wonderland")
      const reply = yield* call(url, "POST", "/logout-page", { headers: { cookie: alice.cookie, "x-csrftoken": alice.csrf } })
      expect(reply.status).toBe(200)
      expect(reply.json()).toEqual({ who: null, csrfToken: null })
      expect((yield* call(url, "GET", "/me", { headers: { cookie: alice.cookie } })).json()).toEqual({ who: null })
    }))

  it.scoped("remote user: the first page a proxy's header logs into renders the new session's token, and a form posted with it passes", () =>
    Effect.gen(function*() {
      const remoteApp = HttpRouter.empty.pipe(
        HttpRouter.get("/page", Effect.flatMap(token, (t) => HttpServerResponse.json({ csrfToken: t }))),
        HttpRouter.post("/note", HttpServerResponse.json({ ok: true })),
        HttpRouter.use(HttpAuth.middleware)
      )
      const layer = appLayer({
        chain: [ModelBackend.ModelBackend, RemoteUserBackend.RemoteUserBackend],
        backendLayer: RemoteUserBackend.layer({}),
        http: { ...defaultHttp, remoteUser: { header: "X-Remote-User" } }
      })
      const server = HttpServer.serve(remoteApp).pipe(
        Layer.provideMerge(layer),
        Layer.provideMerge(NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" }))
      ) as Layer.Layer<HttpServer.HttpServer, unknown>
      const url = HttpServer.formatAddress(Context.get(yield* Layer.build(server), HttpServer.HttpServer).address)

      const first = yield* call(url, "GET", "/page", { headers: { "x-remote-user": "alice" } })
      expect(first.status).toBe(200)
      const session = sessionCookie(first)
      expect(session).toMatch(/.+/)
      const rendered = first.json().csrfToken
      expect(rendered).toEqual(expect.any(String))
      const posted = yield* call(url, "POST", "/note", {
        headers: { "x-remote-user": "alice", cookie: `sessionid=${session}`, "x-csrftoken": rendered }
      })
      expect(posted.status).toBe(200)
    }))
})
