// A session cookie made before a SECRET_KEY rotation, over real HTTP: the session verifies under the
// fallback secret and moves to a new id, as Django's get_user cycles the key, and the response
// carries the new cookie (as Django's middleware sends the cycled key); the old id is dead.
import { describe, expect, it } from "@effect/vitest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as http from "node:http"
import * as AuthBackend from "../src/AuthBackend.js"
import * as AuthError from "../src/AuthError.js"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as MemorySessionStore from "../src/MemorySessionStore.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as SessionStore from "../src/SessionStore.js"
import * as UserStore from "../src/UserStore.js"
import { appLayer, call, cookieHeader, login, type Reply, secret, serve, users } from "./utils/httpAuthServer.js"

const rotatedSecret = Redacted.make("the-rotated-test-secret-that-is-long-enough")
const rotating = { secret: rotatedSecret, fallbackSecrets: [secret] }

const cookieOf = (reply: Reply, name: string) => reply.cookies.cookies[name]

// One session store (a memory store that records the key of every session written) and one user
// store, shared by the servers before and after the rotation, as a database is.
const sharedStores = Effect.gen(function*() {
  const keys: Array<string> = []
  const recording = Layer.effect(
    SessionStore.SessionStore,
    Effect.map(MemorySessionStore.make, (memory): SessionStore.Service => ({
      ...memory,
      set: (key, record, now) => Effect.zipRight(Effect.sync(() => keys.push(key)), memory.set(key, record, now))
    }))
  )
  const context = yield* Layer.build(
    Layer.merge(recording, users.pipe(Layer.provideMerge(MemoryUserStore.layer), Layer.provide(PasswordHasher.layerTest)))
  )
  const store = Layer.succeedContext(context)
  // The sessions still live in the store.
  const live = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.filter(keys, (key) => Effect.map(Context.get(context, SessionStore.SessionStore).get(key, now), Option.isSome)))
  return { store, live }
})

describe("HttpAuth: a session cookie from before a secret rotation", () => {
  it.live("moves to a new id: the response carries its cookie, the CSRF token is kept, the old id is dead", () =>
    Effect.gen(function*() {
      const { live, store } = yield* sharedStores
      const before = yield* serve({ store, userStore: store })
      const alice = yield* login(before.url, "alice", "wonderland")
      const after = yield* serve({ store, userStore: store, session: rotating })

      const me = yield* call(after.url, "GET", "/me", { headers: { cookie: alice.cookie } })
      expect(me.status).toBe(200)
      expect(me.json().username).toBe("alice")
      const moved = cookieOf(me, "sessionid")
      expect(moved?.value).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(moved?.value).not.toBe(alice.session)
      // a re-issued session's cookie: the login's attributes, to the login's end (maxAge from it)
      expect(moved?.options).toMatchObject({ httpOnly: true, sameSite: "lax", path: "/" })
      expect(Duration.toSeconds(moved!.options!.maxAge!)).toBe(14 * 24 * 3600)
      expect(cookieOf(me, "csrftoken")?.value).toBe(alice.csrf)
      expect((yield* live).length).toBe(1)

      // The old id: anonymous, and its cookie deleted.
      const old = yield* call(after.url, "GET", "/me", { headers: { cookie: alice.cookie } })
      expect(old.status).toBe(401)
      expect(Duration.toMillis(cookieOf(old, "sessionid")!.options!.maxAge!)).toBe(0)
      // The new one: served as it is, no cookie sent again; the kept token passes the CSRF check.
      const renewed = cookieHeader({ sessionid: moved!.value })
      const again = yield* call(after.url, "GET", "/me", { headers: { cookie: renewed } })
      expect(again.status).toBe(200)
      expect(cookieOf(again, "sessionid")).toBeUndefined()
      const unsafe = yield* call(after.url, "POST", "/notes", { headers: { cookie: renewed, "x-csrftoken": alice.csrf } })
      expect(unsafe.status).toBe(200)
      expect((yield* live).length).toBe(1)
    }).pipe(Effect.scoped))

  it.live("an unsafe request passes its CSRF check with the kept token while it moves; a logout in it ends the new session", () =>
    Effect.gen(function*() {
      const { live, store } = yield* sharedStores
      const before = yield* serve({ store, userStore: store })
      const first = yield* login(before.url, "alice", "wonderland")
      const second = yield* login(before.url, "alice", "wonderland")
      const after = yield* serve({ store, userStore: store, session: rotating })

      const noted = yield* call(after.url, "POST", "/notes", { headers: { cookie: first.cookie, "x-csrftoken": first.csrf } })
      expect(noted.status).toBe(200)
      expect(cookieOf(noted, "sessionid")?.value).not.toBe(first.session)
      expect((yield* live).length).toBe(2)
      // The logout goes by the session the request moved to: nothing of it stays live.
      const out = yield* call(after.url, "POST", "/logout", { headers: { cookie: second.cookie, "x-csrftoken": second.csrf } })
      expect(out.status).toBe(204)
      expect(Duration.toMillis(cookieOf(out, "sessionid")!.options!.maxAge!)).toBe(0)
      expect((yield* live).length).toBe(1)
    }).pipe(Effect.scoped))

  // HttpAuth.stepUp on a route no middleware resolved reads the session itself.
  it.live("a step-up on a route without the middleware steps up the moved session and sends its cookie", () =>
    Effect.gen(function*() {
      const { live, store } = yield* sharedStores
      // A second factor that takes one code.
      const code = Effect.map(UserStore.UserStore, (users) =>
        AuthBackend.make({
          id: "code",
          secondFactor: true,
          credentials: Schema.Struct({ username: Schema.String, otpToken: Schema.String }),
          authenticate: ({ otpToken, username }) =>
            otpToken === "123456"
              ? Effect.map(Effect.orDie(users.findByUsername(username)), (found) => Option.getOrThrow(found) as any)
              : Effect.fail(new AuthError.NoMatch({ backend: "code", reason: "invalid-credentials" })),
          getUser: () => Effect.succeedNone
        }))
      const routes = HttpRouter.empty.pipe(
        HttpRouter.post(
          "/mfa",
          Effect.flatMap(
            Effect.orDie(HttpServerRequest.schemaBodyJson(Schema.Struct({ otpToken: Schema.String }))),
            ({ otpToken }) =>
              HttpAuth.stepUp(otpToken).pipe(
                Effect.flatMap(() => HttpServerResponse.empty()),
                // (no middleware here to answer the failures)
                Effect.catchAll((failure) => HttpServerResponse.empty({ status: failure._tag === "Unauthorized" ? 401 : 500 }))
              )
          )
        ),
        HttpRouter.concat(HttpRouter.empty.pipe(
          HttpRouter.get(
            "/me",
            Effect.flatMap(CurrentUser.CurrentUser, (info) =>
              HttpServerResponse.json({ username: info.user.username, secondFactor: info.secondFactor ?? null }))
          ),
          HttpRouter.use(HttpAuth.requireUser)
        ))
      )
      const serveRoutes = (session: typeof rotating | undefined) =>
        Effect.gen(function*() {
          const server = HttpServer.serve(routes).pipe(
            Layer.provideMerge(appLayer({ store, userStore: store, backends: [code], ...(session && { session }) })),
            Layer.provideMerge(NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" }))
          ) as Layer.Layer<HttpServer.HttpServer, unknown>
          const context = yield* Layer.build(server)
          return HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
        })
      const before = yield* serve({ store, userStore: store })
      const alice = yield* login(before.url, "alice", "wonderland")
      const url = yield* serveRoutes(rotating)

      const headers = { cookie: alice.cookie, "x-csrftoken": alice.csrf }
      // A wrong code: 401, but the session moved all the same, and the response says where.
      const wrong = yield* call(url, "POST", "/mfa", { headers, json: { otpToken: "000000" } })
      expect(wrong.status).toBe(401)
      const moved = cookieOf(wrong, "sessionid")!.value
      expect(moved).not.toBe(alice.session)
      expect((yield* call(url, "GET", "/me", { headers: { cookie: cookieHeader({ sessionid: moved }) } })).json())
        .toEqual({ username: "alice", secondFactor: null })
      // The right code, from another session of before: stepped up, under the step-up's new id.
      const other = yield* login(before.url, "alice", "wonderland")
      const stepped = yield* call(url, "POST", "/mfa", {
        headers: { cookie: other.cookie, "x-csrftoken": other.csrf },
        json: { otpToken: "123456" }
      })
      expect(stepped.status).toBe(204)
      const steppedId = cookieOf(stepped, "sessionid")!.value
      expect(steppedId).not.toBe(other.session)
      expect((yield* call(url, "GET", "/me", { headers: { cookie: cookieHeader({ sessionid: steppedId }) } })).json())
        .toEqual({ username: "alice", secondFactor: "code" })
      expect((yield* call(url, "GET", "/me", { headers: { cookie: other.cookie } })).status).toBe(401)
      // Two sessions live: the first one's move and the step-up's.
      expect((yield* live).length).toBe(2)
    }).pipe(Effect.scoped))

  it.live("a logout on a route without the middleware ends the session it moved, not only the old id", () =>
    Effect.gen(function*() {
      const { live, store } = yield* sharedStores
      const before = yield* serve({ store, userStore: store })
      const alice = yield* login(before.url, "alice", "wonderland")
      const routes = HttpRouter.empty.pipe(
        HttpRouter.post("/logout", Effect.as(HttpAuth.logout, HttpServerResponse.empty()))
      )
      const server = HttpServer.serve(routes).pipe(
        Layer.provideMerge(appLayer({ store, userStore: store, session: rotating })),
        Layer.provideMerge(NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" }))
      ) as Layer.Layer<HttpServer.HttpServer, unknown>
      const url = HttpServer.formatAddress(Context.get(yield* Layer.build(server), HttpServer.HttpServer).address)
      expect((yield* live).length).toBe(1)

      const out = yield* call(url, "POST", "/logout", { headers: { cookie: alice.cookie, "x-csrftoken": alice.csrf } })
      expect(out.status).toBe(204)
      expect(Duration.toMillis(cookieOf(out, "sessionid")!.options!.maxAge!)).toBe(0)
      expect((yield* live).length).toBe(0)
    }).pipe(Effect.scoped))
})
