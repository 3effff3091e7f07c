import { describe, expect, it } from "@effect/vitest"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Context, Effect, Layer, Redacted } from "effect"
import * as http from "node:http"
import {
  AuthService,
  AuthStack,
  CurrentUser,
  HttpAuth,
  MemorySessionStore,
  MemoryUserStore,
  PasswordHasher,
  Session
} from "../src/index.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import {
  AccountGroupLive,
  Api,
  AuthGroupLive,
  call,
  login,
  secret,
  tokensBackend,
  users
} from "./utils/httpAuthServer.js"

// The app's own services: its users (with the hasher the model backend needs).
const Users = users.pipe(Layer.provideMerge(MemoryUserStore.layer), Layer.provideMerge(PasswordHasher.layerTest))

const withSessions = AuthStack.layer({
  backends: [ModelBackend.ModelBackend, tokensBackend],
  sessions: { secret },
  http: { realm: "test", bearer: true }
}).pipe(
  Layer.provide(ModelBackend.layer()),
  Layer.provide(MemorySessionStore.layer),
  Layer.provide(Users)
)

const urlOf = (context: Context.Context<HttpServer.HttpServer>) =>
  HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)

const listen = NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" })

const serveApi = <E>(auth: Layer.Layer<AuthStack.Services | Session.Session, E>) =>
  Effect.map(
    Layer.build(
      HttpApiBuilder.serve().pipe(
        Layer.provide(HttpApiBuilder.api(Api)),
        Layer.provide([AuthGroupLive, AccountGroupLive]),
        Layer.provide(auth),
        Layer.provide(Users),
        Layer.provideMerge(listen)
      )
    ),
    urlOf
  )

describe("AuthStack.layer", () => {
  it.scoped("one layer serves an HttpApi: session login, the cookie, bearer tokens, logout with CSRF", () =>
    Effect.gen(function*() {
      const url = yield* serveApi(withSessions)
      expect((yield* call(url, "GET", "/me")).status).toBe(401)

      const { cookie, csrf } = yield* login(url, "alice", "wonderland")
      const me = yield* call(url, "GET", "/me", { headers: { cookie } })
      expect(me.status).toBe(200)
      expect(me.json()).toMatchObject({ username: "alice", backend: "model", method: "session" })

      const bearer = yield* call(url, "GET", "/me", { headers: { authorization: "Bearer alice-token" } })
      expect(bearer.json()).toMatchObject({ username: "alice", backend: "tokens", method: "bearer" })

      const out = yield* call(url, "POST", "/logout", { headers: { cookie: `${cookie}; csrftoken=${csrf}`, "x-csrftoken": csrf } })
      expect(out.status).toBe(204)
      expect((yield* call(url, "GET", "/me", { headers: { cookie } })).status).toBe(401)
    }))

  it.scoped("the same layer serves a plain router", () =>
    Effect.gen(function*() {
      const router = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/me",
          HttpAuth.requireUser(Effect.flatMap(CurrentUser.CurrentUser, ({ user }) => HttpServerResponse.text(user.username)))
        )
      )
      const url = yield* Effect.map(
        Layer.build(HttpServer.serve(router).pipe(Layer.provide(withSessions), Layer.provide(Users), Layer.provideMerge(listen))),
        urlOf
      )
      expect((yield* call(url, "GET", "/me", { headers: { authorization: "Bearer alice-token" } })).body).toBe("alice")
      expect((yield* call(url, "GET", "/me")).status).toBe(401)
    }))

  it.scoped("without sessions it serves credentials sent with each request, and sets no cookie", () =>
    Effect.gen(function*() {
      const tokensOnly = AuthStack.layer({ backends: [tokensBackend], http: { realm: "api" } })
      const auth = yield* Layer.build(Layer.provide(tokensOnly, Users))
      expect(Context.get(auth, AuthService.AuthService).backendIds).toEqual(["tokens"])
      expect(Context.getOption(auth, Session.Session)._tag).toBe("None")
      const router = HttpRouter.empty.pipe(
        HttpRouter.get("/me", HttpAuth.requireUser(HttpServerResponse.text("ok")))
      )
      const url = yield* Effect.map(
        Layer.build(HttpServer.serve(router).pipe(Layer.provide(tokensOnly), Layer.provide(Users), Layer.provideMerge(listen))),
        urlOf
      )
      const reply = yield* call(url, "GET", "/me", { headers: { authorization: "Bearer alice-token" } })
      expect(reply.status).toBe(200)
      expect(reply.headers["set-cookie"]).toBeUndefined()
    }))

  it.effect("a bad configuration fails the layer with AuthConfigError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(AuthStack.layer({ backends: [] })).pipe(Effect.scoped))
      expect(error._tag).toBe("AuthConfigError")
      const short = yield* Effect.flip(
        Layer.build(
          AuthStack.layer({ backends: [tokensBackend], sessions: { secret: Redacted.make("short") } }).pipe(
            Layer.provide(MemorySessionStore.layer),
            Layer.provide(Users)
          )
        ).pipe(Effect.scoped)
      )
      expect(short._tag).toBe("AuthConfigError")
    }))
})
