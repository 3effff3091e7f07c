// The plain HttpRouter form (HttpAuth.middleware / HttpAuth.requireUser) over real HTTP.
import { describe, expect, it } from "@effect/vitest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as http from "node:http"
import * as Credentials from "../src/Credentials.js"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as TestBackend from "../src/testing/TestBackend.js"
import { appLayer, basic, call, cookieHeader, routerLogin, serveApp } from "./utils/httpAuthServer.js"

const publicRoutes = HttpRouter.empty.pipe(
  HttpRouter.post("/login", routerLogin),
  HttpRouter.post("/logout", Effect.as(HttpAuth.logout, HttpServerResponse.empty())),
  // A logout and a login an app routed on GET: what a link or an <img> on another site can make.
  HttpRouter.get("/logout", Effect.as(HttpAuth.logout, HttpServerResponse.empty())),
  HttpRouter.get(
    "/login",
    Effect.as(HttpAuth.login({ username: "alice", password: Redacted.make("wonderland") }), HttpServerResponse.empty())
  ),
  HttpRouter.get(
    "/hello",
    Effect.map(CurrentUser.OptionalUser, (user) =>
      HttpServerResponse.text(
        Option.match(user, { onNone: () => "hello, stranger", onSome: ({ user }) => `hello, ${user.username}` })
      ))
  ),
  HttpRouter.use(HttpAuth.middleware)
)

const privateRoutes = HttpRouter.empty.pipe(
  HttpRouter.get("/private", Effect.map(CurrentUser.CurrentUser, ({ user }) => HttpServerResponse.text(user.username))),
  HttpRouter.get(
    "/private/reports",
    Effect.zipRight(CurrentUser.requirePermission("reports.view_report"), HttpServerResponse.text("reports"))
  ),
  HttpRouter.post("/private/notes", HttpServerResponse.text("noted")),
  HttpRouter.use(HttpAuth.requireUser)
)

const serveRouter = serveApp(HttpRouter.concat(publicRoutes, privateRoutes))

describe("HttpAuth: plain router form", () => {
  it.live("a request is resolved once, however many middlewares ask", () => {
    const counted = TestBackend.make("counted", {
      behaviour: TestBackend.Behaviour.succeed(TestBackend.user("robot")),
      credentials: Schema.Struct({ token: Credentials.secret(100) }),
      users: [TestBackend.user("robot")]
    })
    const nested = HttpRouter.empty.pipe(
      HttpRouter.get(
        "/twice",
        Effect.gen(function*() {
          const outer = yield* CurrentUser.OptionalUser
          const inner = yield* CurrentUser.CurrentUser
          const again = yield* HttpAuth.currentUser
          return HttpServerResponse.text(String(Option.getOrThrow(outer) === inner && inner === again))
        })
      ),
      HttpRouter.use(HttpAuth.requireUser),
      HttpRouter.use(HttpAuth.middleware)
    )
    return Effect.gen(function*() {
      const server = HttpServer.serve(nested).pipe(
        Layer.provideMerge(appLayer({ chain: [counted] })),
        Layer.provideMerge(NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" }))
      )
      const context = yield* Layer.build(server)
      const url = HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
      const reply = yield* call(url, "GET", "/twice", { headers: { authorization: "Bearer t" } })
      expect(reply.body).toBe("true")
      expect(counted.calls).toHaveLength(1)
      yield* call(url, "GET", "/twice", { headers: { authorization: "Bearer t" } })
      expect(counted.calls).toHaveLength(2)
    }).pipe(Effect.scoped)
  })

  // Django's LoginView takes credentials by POST only and its LogoutView (5.0+) answers GET with
  // 405: a safe method is not CSRF-checked, so a page on another site logged its visitors out, or
  // into the attacker's account.
  it.live("a login or logout by a safe method is refused: the session lives on, none is started", () =>
    Effect.gen(function*() {
      const url = yield* serveRouter
      const logged = yield* call(url, "POST", "/login", { json: { username: "alice", password: "wonderland" } })
      const cookie = cookieHeader({ sessionid: logged.cookies.cookies["sessionid"]!.value })
      const out = yield* call(url, "GET", "/logout", { headers: { cookie } })
      expect([out.status, out.cookies.cookies["sessionid"]]).toEqual([403, undefined])
      expect((yield* call(url, "GET", "/hello", { headers: { cookie } })).body).toBe("hello, alice")
      const planted = yield* call(url, "GET", "/login")
      expect([planted.status, planted.cookies.cookies["sessionid"]]).toEqual([403, undefined])
    }).pipe(Effect.scoped))

  it.live("requireUser: 401 with WWW-Authenticate when anonymous, the user otherwise", () =>
    Effect.gen(function*() {
      const url = yield* serveRouter
      const anonymous = yield* call(url, "GET", "/private")
      expect(anonymous.status).toBe(401)
      expect(anonymous.body).toBe("")
      expect(anonymous.headers["www-authenticate"]).toContain("Bearer realm=\"test\"")
      const alice = yield* call(url, "GET", "/private", { headers: { authorization: basic("alice", "wonderland") } })
      expect(alice.status).toBe(200)
      expect(alice.body).toBe("alice")
      expect((yield* call(url, "GET", "/private", { headers: { authorization: "Token alice-token" } })).status).toBe(401)
      expect((yield* call(url, "GET", "/private", { headers: { authorization: "Bearer locked-token" } })).status).toBe(401)
      expect((yield* call(url, "GET", "/private", { headers: { authorization: "Bearer down-token" } })).status).toBe(503)
    }).pipe(Effect.scoped))

  it.live("requirePermission inside a route: 403 without the permission", () =>
    Effect.gen(function*() {
      const url = yield* serveRouter
      const bob = yield* call(url, "GET", "/private/reports", { headers: { authorization: basic("bob", "pa:ss:word") } })
      expect(bob.status).toBe(403)
      expect(bob.body).toBe("")
      const alice = yield* call(url, "GET", "/private/reports", { headers: { authorization: "Bearer alice-token" } })
      expect(alice.body).toBe("reports")
    }).pipe(Effect.scoped))

  it.live("middleware: optional user; login, cookie session, CSRF and logout through plain routes", () =>
    Effect.gen(function*() {
      const url = yield* serveRouter
      expect((yield* call(url, "GET", "/hello")).body).toBe("hello, stranger")
      const failed = yield* call(url, "POST", "/login", { json: { username: "alice", password: "no" } })
      expect(failed.status).toBe(401)
      expect(failed.headers["www-authenticate"]).toBeDefined()
      const logged = yield* call(url, "POST", "/login", { json: { username: "alice", password: "wonderland" } })
      expect(logged.status).toBe(200)
      const session = logged.cookies.cookies["sessionid"]!.value
      const csrf = logged.json().csrfToken as string
      const cookie = cookieHeader({ sessionid: session })
      expect((yield* call(url, "GET", "/hello", { headers: { cookie } })).body).toBe("hello, alice")
      expect((yield* call(url, "POST", "/private/notes", { headers: { cookie } })).status).toBe(403)
      expect((yield* call(url, "POST", "/private/notes", { headers: { cookie, "x-csrftoken": csrf } })).status).toBe(200)
      expect((yield* call(url, "POST", "/logout", { headers: { cookie, "x-csrftoken": csrf } })).status).toBe(204)
      expect((yield* call(url, "GET", "/private", { headers: { cookie } })).status).toBe(401)
    }).pipe(Effect.scoped))
})
