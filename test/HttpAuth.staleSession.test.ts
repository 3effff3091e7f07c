// A login or logout over a cookie whose session no longer holds (its user's password changed
// elsewhere, so Django's get_user would flush it): no token is asked for a session the middleware
// would not serve, the session is ended, and the answer is the same with or without the middleware
// in front. A live session still needs its token (HttpAuth.test.ts).
import { describe, expect, it } from "@effect/vitest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as UserStore from "../src/UserStore.js"
import { call, cookieHeader, login, routerLogin, serveApp } from "./utils/httpAuthServer.js"

// Alice's password changed by another process (an admin, Django's own pages): her sessions' hash
// no longer matches.
const changePassword = Effect.gen(function*() {
  const store = yield* UserStore.UserStore
  const hasher = yield* PasswordHasher.PasswordHasher
  const alice = Option.getOrThrow(yield* store.findByUsername("alice"))
  yield* store.setPassword(alice.id, yield* hasher.hash(Redacted.make("a-new-password-1")))
  return HttpServerResponse.empty()
}).pipe(Effect.orDie)

const answered = <E extends { readonly _tag: string }, R>(effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.catchAll(effect, (failure) => Effect.succeed(HttpAuth.toResponse(failure as any)))

const routes = (guarded: boolean) => {
  const app = HttpRouter.empty.pipe(
    HttpRouter.post("/login", answered(routerLogin)),
    HttpRouter.post("/logout", answered(Effect.as(HttpAuth.logout, HttpServerResponse.empty())))
  )
  const whoami = HttpRouter.empty.pipe(
    HttpRouter.get(
      "/whoami",
      Effect.map(CurrentUser.OptionalUser, (user) =>
        HttpServerResponse.text(Option.match(user, { onNone: () => "anonymous", onSome: ({ user }) => user.username })))
    ),
    HttpRouter.use(HttpAuth.middleware)
  )
  return HttpRouter.concat(
    HttpRouter.concat(guarded ? HttpRouter.use(app, HttpAuth.middleware) : app, whoami),
    HttpRouter.empty.pipe(HttpRouter.post("/change-password", changePassword))
  )
}

describe.each([["without the middleware", false], ["behind the middleware", true]] as const)(
  "HttpAuth: login and logout over a session that no longer holds, %s",
  (_, guarded) => {
    it.live("a login over it asks for no token, ends it and starts the new user's", () =>
      Effect.gen(function*() {
        const url = yield* serveApp(routes(guarded))
        const alice = yield* login(url, "alice", "wonderland")
        expect((yield* call(url, "POST", "/change-password")).status).toBe(204)

        const bob = yield* call(url, "POST", "/login", {
          json: { username: "bob", password: "pa:ss:word" },
          headers: { cookie: alice.cookie }
        })
        expect(bob.status).toBe(200)
        const session = bob.cookies.cookies["sessionid"]!.value
        expect(session).not.toBe(alice.session)
        const whoami = yield* call(url, "GET", "/whoami", { headers: { cookie: cookieHeader({ sessionid: session }) } })
        expect(whoami.body).toBe("bob")
        expect((yield* call(url, "GET", "/whoami", { headers: { cookie: alice.cookie } })).body).toBe("anonymous")
      }).pipe(Effect.scoped))

    it.live("a logout over it asks for no token and deletes the cookie", () =>
      Effect.gen(function*() {
        const url = yield* serveApp(routes(guarded))
        const alice = yield* login(url, "alice", "wonderland")
        expect((yield* call(url, "POST", "/change-password")).status).toBe(204)

        const out = yield* call(url, "POST", "/logout", { headers: { cookie: alice.cookie } })
        expect(out.status).toBe(204)
        expect(Duration.toMillis(out.cookies.cookies["sessionid"]!.options!.maxAge!)).toBe(0)
      }).pipe(Effect.scoped))

    it.live("a live session still needs its token", () =>
      Effect.gen(function*() {
        const url = yield* serveApp(routes(guarded))
        const alice = yield* login(url, "alice", "wonderland")
        const bob = yield* call(url, "POST", "/login", {
          json: { username: "bob", password: "pa:ss:word" },
          headers: { cookie: alice.cookie }
        })
        expect(bob.status).toBe(403)
        expect((yield* call(url, "POST", "/logout", { headers: { cookie: alice.cookie } })).status).toBe(403)
        expect((yield* call(url, "GET", "/whoami", { headers: { cookie: alice.cookie } })).body).toBe("alice")
      }).pipe(Effect.scoped))
  }
)
