// Django's PasswordChangeView is a url-encoded form POST that calls update_session_auth_hash: the
// session that changed the password stays logged in (a new session id, bound to the new hash).
// Through the plain-router middlewares the handler sees another view of the request than the one
// the middleware resolved (the request that holds the form's body the CSRF check read; a mounted
// router's copy): what the middleware resolved must still be what the handler's calls see.
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted, Schema } from "effect"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as UserStore from "../src/UserStore.js"
import { call, login, routerLogin, serveApp } from "./utils/httpAuthServer.js"

const NewPassword = Schema.Struct({ password: Schema.String })

const changePassword = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const { password } = (request.headers["content-type"] ?? "").startsWith("application/json")
    ? yield* HttpServerRequest.schemaBodyJson(NewPassword)
    : yield* HttpServerRequest.schemaBodyForm(NewPassword)
  // The user the middleware provided (no second resolution).
  const { user } = Option.getOrThrow(yield* CurrentUser.OptionalUser)
  const store = yield* UserStore.UserStore
  const hasher = yield* PasswordHasher.PasswordHasher
  yield* store.setPassword(user.id, yield* hasher.hash(Redacted.make(password)))
  const reloaded = Option.getOrThrow(yield* store.findById(user.id))
  yield* HttpAuth.updateSessionAuthHash(reloaded)
  return HttpServerResponse.empty({ status: 204 })
}).pipe(Effect.orDie)

// `HttpAuth.currentUser` asks the middleware's resolution (a 401 without a user), in every form.
const me = Effect.map(HttpAuth.currentUser, ({ user }) => HttpServerResponse.text(user.username))

const account = (protect: boolean) => {
  const routes = HttpRouter.empty.pipe(HttpRouter.post("/password", changePassword), HttpRouter.get("/me", me))
  return protect ? HttpRouter.use(routes, HttpAuth.requireUser) : routes
}

const apps = {
  "HttpAuth.middleware, flat routes": HttpRouter.empty.pipe(
    HttpRouter.post("/login", routerLogin),
    HttpRouter.post("/account/password", changePassword),
    HttpRouter.get("/account/me", me),
    HttpRouter.use(HttpAuth.middleware)
  ),
  "HttpAuth.requireUser inside a mounted router": HttpRouter.empty.pipe(
    HttpRouter.post("/login", routerLogin),
    HttpRouter.mount("/account", account(true))
  ),
  "HttpAuth.middleware around a mounted router": HttpRouter.empty.pipe(
    HttpRouter.post("/login", routerLogin),
    HttpRouter.mount("/account", account(false)),
    HttpRouter.use(HttpAuth.middleware)
  )
}

describe("a password change keeps its session, as Django's update_session_auth_hash", () => {
  for (const [name, app] of Object.entries(apps)) {
    for (const body of ["form", "json"] as const) {
      it.scoped(`${name}, a ${body} body: a new session cookie, which is logged in; the old one is not`, () =>
        Effect.gen(function*() {
          const url = yield* serveApp(app)
          const alice = yield* login(url, "alice", "wonderland")
          const sent = body === "form"
            ? {
              headers: { cookie: alice.cookie },
              body: {
                text: new URLSearchParams({ csrfmiddlewaretoken: alice.csrf, password: "looking-glass" }).toString(),
                contentType: "application/x-www-form-urlencoded"
              }
            }
            : { headers: { cookie: alice.cookie, "x-csrftoken": alice.csrf }, json: { password: "looking-glass" } }
          const changed = yield* call(url, "POST", "/account/password", sent)
          expect(changed.status).toBe(204)
          const renewed = changed.cookies.cookies["sessionid"]?.value
          expect(renewed).toBeDefined()
          expect(renewed).not.toBe(alice.session)

          const withNew = yield* call(url, "GET", "/account/me", { headers: { cookie: `sessionid=${renewed}` } })
          expect(withNew).toMatchObject({ status: 200, body: "alice" })
          const withOld = yield* call(url, "GET", "/account/me", { headers: { cookie: alice.cookie } })
          expect(withOld.status).toBe(401)
          // And the new password is the one that logs in.
          expect((yield* login(url, "alice", "looking-glass")).session).toBeDefined()
        }))
    }
  }
})
