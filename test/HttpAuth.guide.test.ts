// The complete server of docs/http.md (users and sessions in SQLite, the model backend, HttpApi
// with POST /login, POST /logout, GET /me and a permission-protected endpoint), over real HTTP.
import { describe, expect, it } from "@effect/vitest"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { createServer } from "node:http"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as Authentication from "../src/http/Authentication.js"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as Session from "../src/Session.js"
import * as SqlSessionStore from "../src/SqlSessionStore.js"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as UserStore from "../src/UserStore.js"
import { call } from "./utils/httpAuthServer.js"

// --- docs/http.md, "A complete server" (with `:memory:` and a random port) ----------------------

const Credentials = Schema.Struct({ username: Schema.String, password: Schema.Redacted(Schema.String) })
const Me = Schema.Struct({ id: Schema.String, username: Schema.String })
const LoggedIn = Schema.Struct({ username: Schema.String, csrfToken: Schema.String })

class AuthGroup extends HttpApiGroup.make("auth")
  .add(HttpApiEndpoint.post("login", "/login").setPayload(Credentials).addSuccess(LoggedIn))
  .add(HttpApiEndpoint.post("logout", "/logout"))
  .middleware(Authentication.OptionalAuthentication)
{}

class AccountGroup extends HttpApiGroup.make("account")
  .add(HttpApiEndpoint.get("me", "/me").addSuccess(Me))
  .add(HttpApiEndpoint.get("reports", "/reports").addSuccess(Schema.Array(Schema.String)))
  .middleware(Authentication.Authentication)
{}

class Api extends HttpApi.make("example").add(AuthGroup).add(AccountGroup) {}

const AuthGroupLive = HttpApiBuilder.group(Api, "auth", (handlers) =>
  handlers
    .handle("login", ({ payload }) =>
      HttpAuth.login(payload).pipe(
        Effect.map(({ csrfToken, user }) => ({ username: user.username, csrfToken: Redacted.value(csrfToken) }))
      ))
    .handle("logout", () => HttpAuth.logout))

const AccountGroupLive = HttpApiBuilder.group(Api, "account", (handlers) =>
  handlers
    .handle("me", () => Effect.map(CurrentUser.CurrentUser, ({ user }) => ({ id: user.id, username: user.username })))
    .handle("reports", () => Effect.as(CurrentUser.requirePermission("reports.view_report"), ["q1", "q2"])))

const makeServer = (filename: string, port: number) => {
  // Users and sessions in one SQLite database; SqlUserStore also provides the SqlClient.
  const Infrastructure = Layer.mergeAll(SqlUserStore.layerSqlite({ filename }), PasswordHasher.layer())

  const AuthLive = AuthService.layer([ModelBackend.ModelBackend]).pipe(
    Layer.provide(ModelBackend.layer()),
    Layer.provideMerge(AuthEvents.layer)
  )

  const SessionLive = Session.layer({ secret: Redacted.make("change me: 50 random characters, e.g. from openssl rand") })
    .pipe(Layer.provide(SqlSessionStore.layer()))

  const SecurityLive = Authentication.layer.pipe(
    Layer.provideMerge(HttpAuth.layer({ realm: "example" })),
    Layer.provideMerge(SessionLive),
    Layer.provideMerge(AuthLive),
    Layer.provideMerge(Infrastructure)
  )

  const ApiLive = HttpApiBuilder.api(Api).pipe(
    Layer.provide([AuthGroupLive, AccountGroupLive]),
    Layer.provideMerge(SecurityLive)
  )

  return HttpApiBuilder.serve().pipe(
    Layer.provideMerge(ApiLive),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
  )
}

// --- the test ------------------------------------------------------------------------------------

describe("docs/http.md: the complete server", () => {
  it.live("login, /me, the permission endpoint, logout", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(makeServer(":memory:", 0))
      const url = HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
      // What `effect-auth createuser` and `grant` do.
      const store = Context.get(context, UserStore.UserStore)
      const hasher = Context.get(context, PasswordHasher.PasswordHasher)
      const alice = yield* store.create({ username: "alice", passwordHash: yield* hasher.hash(Redacted.make("wonderland")) })
      yield* store.create({ username: "bob", passwordHash: yield* hasher.hash(Redacted.make("builder")) })
      yield* store.grantPermission(alice.id, "reports.view_report")

      expect((yield* call(url, "GET", "/me")).status).toBe(401)
      const logged = yield* call(url, "POST", "/login", { json: { username: "alice", password: "wonderland" } })
      expect(logged.status).toBe(200)
      const cookie = `sessionid=${logged.cookies.cookies["sessionid"]!.value}`
      const csrf = logged.json().csrfToken as string
      expect((yield* call(url, "GET", "/me", { headers: { cookie } })).json()).toEqual({ id: alice.id, username: "alice" })
      expect((yield* call(url, "GET", "/reports", { headers: { cookie } })).json()).toEqual(["q1", "q2"])
      const bob = yield* call(url, "POST", "/login", { json: { username: "bob", password: "builder" } })
      const bobCookie = `sessionid=${bob.cookies.cookies["sessionid"]!.value}`
      expect((yield* call(url, "GET", "/reports", { headers: { cookie: bobCookie } })).status).toBe(403)
      expect((yield* call(url, "POST", "/logout", { headers: { cookie, "x-csrftoken": csrf } })).status).toBe(204)
      expect((yield* call(url, "GET", "/me", { headers: { cookie } })).status).toBe(401)
    }).pipe(Effect.scoped))
})
