// `Vary: Cookie` on every response the session cookie decided (Django's SessionMiddleware adds it
// once the session was accessed), so that a shared cache never hands one user's answer to another;
// none on a request a bearer token decided without the cookie. Both forms, over real HTTP.
import { describe, expect, it } from "@effect/vitest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as Cookies from "../src/internal/http/cookies.js"
import { call, cookieHeader, login, routerLogin, serve, serveApp } from "./utils/httpAuthServer.js"

const vary = (reply: { readonly headers: Readonly<Record<string, string>> }) => reply.headers["vary"]

describe("HttpAuth: Vary: Cookie (HttpApi form)", () => {
  it.live("login, a request by the session (200 and 401) and logout vary on Cookie; a bearer request does not", () =>
    Effect.gen(function*() {
      const { url } = yield* serve()
      const { cookie, csrf, reply } = yield* login(url, "alice", "wonderland")
      expect(vary(reply)).toBe("Cookie")
      const failed = yield* call(url, "POST", "/login", { json: { username: "alice", password: "wrong" } })
      expect([failed.status, vary(failed)]).toEqual([401, "Cookie"])

      const me = yield* call(url, "GET", "/me", { headers: { cookie } })
      expect([me.status, vary(me)]).toEqual([200, "Cookie"])
      const gone = yield* call(url, "GET", "/me", { headers: { cookie: cookieHeader({ sessionid: "no-such-session" }) } })
      expect([gone.status, vary(gone)]).toEqual([401, "Cookie"])
      // Anonymous, without a cookie: the answer still depends on the cookie it did not carry.
      const anonymous = yield* call(url, "GET", "/me")
      expect([anonymous.status, vary(anonymous)]).toEqual([401, "Cookie"])

      const bearer = yield* call(url, "GET", "/me", { headers: { authorization: "Bearer alice-token" } })
      expect([bearer.status, vary(bearer)]).toEqual([200, undefined])
      const wrongBearer = yield* call(url, "GET", "/me", { headers: { authorization: "Bearer nope" } })
      expect([wrongBearer.status, vary(wrongBearer)]).toEqual([401, undefined])

      const out = yield* call(url, "POST", "/logout", { headers: { cookie, "x-csrftoken": csrf } })
      expect([out.status, vary(out)]).toEqual([204, "Cookie"])
      const after = yield* call(url, "GET", "/me", { headers: { cookie } })
      expect([after.status, vary(after)]).toEqual([401, "Cookie"])
    }).pipe(Effect.scoped))
})

const routes = HttpRouter.empty.pipe(
  HttpRouter.post("/login", routerLogin),
  HttpRouter.post("/logout", Effect.as(HttpAuth.logout, HttpServerResponse.empty())),
  HttpRouter.get(
    "/hello",
    Effect.map(CurrentUser.OptionalUser, (user) =>
      HttpServerResponse.text(Option.match(user, { onNone: () => "hello", onSome: ({ user }) => user.username })))
  ),
  // Pages whose answer also depends on other headers, as the app says.
  HttpRouter.get("/accept", HttpServerResponse.text("ok", { headers: { vary: "Accept" } })),
  HttpRouter.get("/star", HttpServerResponse.text("ok", { headers: { vary: "*" } })),
  HttpRouter.get("/cookie-already", HttpServerResponse.text("ok", { headers: { vary: "accept-encoding, cookie" } })),
  HttpRouter.use(HttpAuth.middleware)
)
const privateRoutes = HttpRouter.empty.pipe(
  HttpRouter.get("/private", Effect.map(CurrentUser.CurrentUser, ({ user }) => HttpServerResponse.text(user.username))),
  HttpRouter.use(HttpAuth.requireUser)
)
// A login and a logout that no middleware resolved first.
const bare = HttpRouter.empty.pipe(
  HttpRouter.post("/bare/login", routerLogin),
  HttpRouter.post("/bare/logout", Effect.as(HttpAuth.logout, HttpServerResponse.empty()))
)

describe("HttpAuth: Vary: Cookie (plain router form)", () => {
  it.live("a request by the session gets Vary: Cookie on 200 and 401; a bearer request without a cookie none", () =>
    Effect.gen(function*() {
      const url = yield* serveApp(HttpRouter.concat(HttpRouter.concat(routes, privateRoutes), bare))
      const { cookie, csrf, reply } = yield* login(url, "alice", "wonderland")
      expect(vary(reply)).toBe("Cookie")

      const ok = yield* call(url, "GET", "/private", { headers: { cookie } })
      expect([ok.status, ok.body, vary(ok)]).toEqual([200, "alice", "Cookie"])
      const gone = yield* call(url, "GET", "/private", { headers: { cookie: cookieHeader({ sessionid: "no-such-session" }) } })
      expect([gone.status, vary(gone)]).toEqual([401, "Cookie"])
      const hello = yield* call(url, "GET", "/hello", { headers: { cookie } })
      expect([hello.body, vary(hello)]).toEqual(["alice", "Cookie"])

      const bearer = yield* call(url, "GET", "/private", { headers: { authorization: "Bearer alice-token" } })
      expect([bearer.status, vary(bearer)]).toEqual([200, undefined])

      const out = yield* call(url, "POST", "/logout", { headers: { cookie, "x-csrftoken": csrf } })
      expect([out.status, vary(out)]).toEqual([204, "Cookie"])
    }).pipe(Effect.scoped))

  it.live("an app's own Vary is kept: Accept becomes Accept, Cookie; * stays *; a Cookie already named is not repeated", () =>
    Effect.gen(function*() {
      const url = yield* serveApp(routes)
      const { cookie } = yield* login(url, "alice", "wonderland")
      expect(vary(yield* call(url, "GET", "/accept", { headers: { cookie } }))).toBe("Accept, Cookie")
      expect(vary(yield* call(url, "GET", "/star", { headers: { cookie } }))).toBe("*")
      expect(vary(yield* call(url, "GET", "/cookie-already", { headers: { cookie } }))).toBe("accept-encoding, cookie")
      // A bearer request leaves the app's Vary alone.
      const bearer = yield* call(url, "GET", "/accept", { headers: { authorization: "Bearer alice-token" } })
      expect(vary(bearer)).toBe("Accept")
    }).pipe(Effect.scoped))

  it.live("a login and a logout that no middleware resolved first vary on Cookie", () =>
    Effect.gen(function*() {
      const url = yield* serveApp(bare)
      const started = yield* call(url, "POST", "/bare/login", { json: { username: "alice", password: "wonderland" } })
      expect([started.status, vary(started)]).toEqual([200, "Cookie"])
      const cookie = cookieHeader({ sessionid: started.cookies.cookies["sessionid"]!.value })
      const csrf = started.json().csrfToken as string
      const out = yield* call(url, "POST", "/bare/logout", { headers: { cookie, "x-csrftoken": csrf } })
      expect([out.status, vary(out)]).toEqual([204, "Cookie"])
    }).pipe(Effect.scoped))
})

describe("cookies.varyOnCookie (Django's patch_vary_headers)", () => {
  const of = (vary?: string) =>
    Cookies.varyOnCookie(HttpServerResponse.empty(vary === undefined ? {} : { headers: { vary } })).headers["vary"]
  it("adds Cookie to what the response varies on, once, keeping *", () => {
    expect(of()).toBe("Cookie")
    expect(of("Accept")).toBe("Accept, Cookie")
    expect(of("Accept ,  Accept-Language")).toBe("Accept, Accept-Language, Cookie")
    expect(of("COOKIE")).toBe("COOKIE")
    expect(of("Accept, *")).toBe("*")
    expect(of("")).toBe("Cookie")
  })
})
