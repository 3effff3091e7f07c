// RemoteUserBackend and the remote-user header over real HTTP.
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Exit from "effect/Exit"
import * as Effect from "effect/Effect"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Authentication from "../src/http/Authentication.js"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as AuthError from "../src/AuthError.js"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as RemoteUserBackend from "../src/backends/RemoteUserBackend.js"
import type * as HttpAuth from "../src/http/HttpAuth.js"
import * as RequestSource from "../src/http/RequestSource.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as UserStore from "../src/UserStore.js"
import {
  AccountGroupLive,
  Api,
  appLayer,
  AuthGroupLive,
  call,
  cookieHeader,
  defaultHttp,
  login,
  serve,
  type ServerOptions
} from "./utils/httpAuthServer.js"

const remote = (
  remoteUser: HttpAuth.RemoteUserOptions = {},
  backend: RemoteUserBackend.Options = {},
  extra: Partial<ServerOptions> = {}
): ServerOptions => ({
  chain: [ModelBackend.ModelBackend, RemoteUserBackend.RemoteUserBackend],
  backendLayer: RemoteUserBackend.layer(backend),
  http: { ...defaultHttp, remoteUser: { header: "X-Remote-User", ...remoteUser } },
  ...extra
})

const withServer = <A, E>(
  options: ServerOptions,
  f: (server: { readonly url: string; readonly context: Context.Context<never> }) => Effect.Effect<A, E>
) => Effect.scoped(Effect.flatMap(serve(options), f))

const store = (context: Context.Context<never>) => Context.get(context as Context.Context<UserStore.UserStore>, UserStore.UserStore)

const sessionCookie = (reply: { readonly cookies: { readonly cookies: Record<string, any> } }) =>
  reply.cookies.cookies["sessionid"] as { readonly value: string; readonly options: any } | undefined

describe("RemoteUserBackend over HTTP", () => {
  // An app serving an internal API behind its SSO proxy and a public one: @effect/platform's
  // `HttpApiBuilder` keeps one router per layer graph (`HttpApiBuilder.Router.Live`, memoised), so
  // two APIs merged into one graph share it, with whichever `HttpAuth` reached it first (the public
  // API then took the proxy's header from anyone). docs/http.md says to build each on its own;
  // this holds that way to its promise: each build runs the `HttpAuth` it was given.
  it.live("two HttpApi servers in one process, each built on its own, run their own HttpAuth: only the proxied one reads the header", () =>
    Effect.gen(function*() {
      const serveApi = (server: http.Server, options: ServerOptions) =>
        HttpApiBuilder.serve().pipe(
          Layer.provide(HttpApiBuilder.api(Api)),
          Layer.provide([AuthGroupLive, AccountGroupLive]),
          Layer.provide(Authentication.layer),
          Layer.provideMerge(appLayer(options)),
          Layer.provide(NodeHttpServer.layer(() => server, { port: 0, host: "127.0.0.1" }))
        )
      const header = { headers: { "x-remote-user": "alice" } }
      const url = (server: http.Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      for (const internalFirst of [true, false]) {
        const internal = http.createServer()
        const open = http.createServer()
        const builds = [Layer.build(serveApi(internal, remote())), Layer.build(serveApi(open, { ...remote(), http: defaultHttp }))]
        yield* Effect.scoped(Effect.gen(function*() {
          yield* Effect.all(internalFirst ? builds : [builds[1]!, builds[0]!], { concurrency: "unbounded" })
          expect((yield* call(url(internal), "GET", "/me", header)).status, `internal, internalFirst: ${internalFirst}`).toBe(200)
          expect((yield* call(url(open), "GET", "/me", header)).status, `public, internalFirst: ${internalFirst}`).toBe(401)
        }))
      }
    }))

  it.live("the header is ignored unless remoteUser is enabled", () =>
    withServer({}, ({ url }) =>
      Effect.gen(function*() {
        expect((yield* call(url, "GET", "/me", { headers: { "remote-user": "alice" } })).status).toBe(401)
      })))

  it.live("a trusted header logs in, creating unknown users, and starts a session", () =>
    withServer(remote(), ({ context, url }) =>
      Effect.gen(function*() {
        const first = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "dave" } })
        expect(first.status).toBe(200)
        expect(first.json()).toMatchObject({ username: "dave", backend: "remote-user", method: "remote-user" })
        const dave = Option.getOrThrow(yield* store(context).findByUsername("dave"))
        expect(dave.isActive).toBe(true)
        expect(String(dave.passwordHash)).toBe("<redacted>")
        const cookie = cookieHeader({ sessionid: sessionCookie(first)!.value })
        const second = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "dave", cookie } })
        expect(second.status).toBe(200)
        expect(sessionCookie(second)).toBeUndefined() // same session: no new cookie
        expect((yield* store(context).list()).filter((u) => u.username === "dave")).toHaveLength(1)
      })))

  // Header bytes are read as Latin-1 (by Node, as by WSGI), and NFKC folds some of those letters
  // into others: U+00AA into "a", the micro sign U+00B5 into the Greek mu. The proxy's "ªdmin" is
  // another principal than "admin"; Django's get_or_create and its middleware compare exactly.
  it.live("a header NFKC would change is another principal: never the user it folds to, nor that user's session", () =>
    withServer(remote(), ({ context, url }) =>
      Effect.gen(function*() {
        const admin = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "admin" } })
        expect(admin.json()).toMatchObject({ username: "admin" })
        const users = (yield* store(context).list()).length
        expect((yield* call(url, "GET", "/me", { headers: { "x-remote-user": "\u00aadmin" } })).status).toBe(401)
        // Over admin's session, the other principal ends it rather than riding it.
        const cookie = cookieHeader({ sessionid: sessionCookie(admin)!.value })
        expect((yield* call(url, "GET", "/me", { headers: { "x-remote-user": "\u00aadmin", cookie } })).status).toBe(401)
        // Nor is such a name created folded (it would be the first "\u03bcarc" to come).
        expect((yield* call(url, "GET", "/me", { headers: { "x-remote-user": "\u00b5arc" } })).status).toBe(401)
        expect((yield* store(context).list()).length).toBe(users)
        // The exact name still logs in, and keeps its session.
        const again = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "admin" } })
        const kept = yield* call(url, "GET", "/me", {
          headers: { "x-remote-user": "admin", cookie: cookieHeader({ sessionid: sessionCookie(again)!.value }) }
        })
        expect(kept.status).toBe(200)
        expect(sessionCookie(kept)).toBeUndefined()
      })))

  it.live("cleanUsername maps the header value to the username", () =>
    withServer(remote({}, { cleanUsername: (name) => name.replace(/@EXAMPLE\.COM$/, "").toLowerCase() }), ({ url }) =>
      Effect.gen(function*() {
        const reply = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "Alice@EXAMPLE.COM" } })
        expect(reply.json()).toMatchObject({ id: "1", username: "alice" })
        const cookie = cookieHeader({ sessionid: sessionCookie(reply)!.value })
        // Compared through cleanUsername: the session is kept.
        const again = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "alice@EXAMPLE.COM", cookie } })
        expect(again.status).toBe(200)
        expect(sessionCookie(again)).toBeUndefined()
      })))

  it.live("cleanUsername runs before any length rule: a header past 255 characters that cleans to a name logs in, as Django's", () =>
    withServer(remote({}, { cleanUsername: (name) => name.split("@")[0]! }), ({ url }) =>
      Effect.gen(function*() {
        const long = `alice@${"R".repeat(300)}`
        const reply = yield* call(url, "GET", "/me", { headers: { "x-remote-user": long } })
        expect(reply.status).toBe(200)
        expect(reply.json()).toMatchObject({ id: "1", username: "alice" })
        // one that cleans to a name no store keeps is no user; past a token's 8192, no credentials
        expect((yield* call(url, "GET", "/me", { headers: { "x-remote-user": "x".repeat(300) } })).status).toBe(401)
        expect((yield* call(url, "GET", "/me", { headers: { "x-remote-user": `bob@${"R".repeat(8200)}` } })).status).toBe(401)
      })))

  it.live("trustedOnly: false: the header still logs in", () =>
    withServer(remote({}, { trustedOnly: false }), ({ url }) =>
      Effect.gen(function*() {
        const reply = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "erin" } })
        expect(reply.status).toBe(200)
        expect(reply.json()).toMatchObject({ username: "erin", backend: "remote-user", method: "remote-user" })
      })))

  it.live("createUnknownUser: false only lets known users in", () =>
    withServer(remote({}, { createUnknownUser: false }), ({ context, url }) =>
      Effect.gen(function*() {
        expect((yield* call(url, "GET", "/me", { headers: { "x-remote-user": "mallory" } })).status).toBe(401)
        expect(Option.isNone(yield* store(context).findByUsername("mallory"))).toBe(true)
        expect((yield* call(url, "GET", "/me", { headers: { "x-remote-user": "bob" } })).status).toBe(200)
      })))

  it.live("configureUser runs on every login with the created flag", () => {
    const seen: Array<[string, boolean]> = []
    const configureUser: RemoteUserBackend.Options["configureUser"] = (user, { created }) =>
      Effect.sync(() => {
        seen.push([user.username, created])
        return user
      })
    return withServer(remote({}, { configureUser }), ({ url }) =>
      Effect.gen(function*() {
        yield* call(url, "GET", "/me", { headers: { "x-remote-user": "erin" } })
        yield* call(url, "GET", "/me", { headers: { "x-remote-user": "erin" } })
        yield* call(url, "GET", "/me", { headers: { "x-remote-user": "alice" } })
        expect(seen).toEqual([["erin", true], ["erin", false], ["alice", false]])
      }))
  })

  it.live("inactive users do not get in", () =>
    withServer(remote(), ({ url }) =>
      Effect.gen(function*() {
        expect((yield* call(url, "GET", "/me", { headers: { "x-remote-user": "carol" } })).status).toBe(401)
      })))

  it.live("without the header, a session the remote-user backend started is logged out", () =>
    withServer(remote(), ({ url }) =>
      Effect.gen(function*() {
        const first = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "alice" } })
        const cookie = cookieHeader({ sessionid: sessionCookie(first)!.value })
        const gone = yield* call(url, "GET", "/me", { headers: { cookie } })
        expect(gone.status).toBe(401)
        expect(Duration.toMillis(sessionCookie(gone)!.options.maxAge)).toBe(0)
        // Logged out, not just ignored for one request.
        expect((yield* call(url, "GET", "/whoami", { headers: { cookie } })).json()).toBeNull()
      })))

  it.live("persistent: the session outlives the header (PersistentRemoteUserMiddleware)", () =>
    withServer(remote({ persistent: true }), ({ url }) =>
      Effect.gen(function*() {
        const first = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "alice" } })
        const cookie = cookieHeader({ sessionid: sessionCookie(first)!.value })
        const later = yield* call(url, "GET", "/me", { headers: { cookie } })
        expect(later.status).toBe(200)
        expect(later.json()).toMatchObject({ username: "alice", method: "session" })
      })))

  it.live("persistent: an empty header still ends a remote-user session (PersistentRemoteUserMiddleware)", () =>
    withServer(remote({ persistent: true }), ({ url }) =>
      Effect.gen(function*() {
        const first = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "alice" } })
        const cookie = cookieHeader({ sessionid: sessionCookie(first)!.value })
        // Django exempts only a missing header: an empty one is a name that is not the session's.
        const emptied = yield* call(url, "GET", "/me", { headers: { cookie, "x-remote-user": "" } })
        expect(emptied.status).toBe(401)
        expect(Duration.toMillis(sessionCookie(emptied)!.options.maxAge)).toBe(0)
        expect((yield* call(url, "GET", "/whoami", { headers: { cookie } })).json()).toBeNull()
      })))

  it.live("persistent: an empty header keeps a session another backend started", () =>
    withServer(remote({ persistent: true }), ({ url }) =>
      Effect.gen(function*() {
        const { cookie } = yield* login(url, "bob", "pa:ss:word")
        const reply = yield* call(url, "GET", "/me", { headers: { cookie, "x-remote-user": "" } })
        expect(reply.json()).toMatchObject({ username: "bob", backend: "model", method: "session" })
      })))

  it.live("a different user in the header replaces the session", () =>
    withServer(remote(), ({ url }) =>
      Effect.gen(function*() {
        const alice = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "alice" } })
        const aliceCookie = cookieHeader({ sessionid: sessionCookie(alice)!.value })
        const bob = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "bob", cookie: aliceCookie } })
        expect(bob.json().username).toBe("bob")
        const bobCookie = cookieHeader({ sessionid: sessionCookie(bob)!.value })
        expect(bobCookie).not.toBe(aliceCookie)
        expect((yield* call(url, "GET", "/whoami", { headers: { cookie: aliceCookie, "x-remote-user": "" } })).json())
          .toBeNull()
      })))

  it.live("a session started by another backend is kept when the header is absent", () =>
    withServer(remote(), ({ url }) =>
      Effect.gen(function*() {
        const { cookie } = yield* login(url, "bob", "pa:ss:word")
        const reply = yield* call(url, "GET", "/me", { headers: { cookie } })
        expect(reply.json()).toMatchObject({ username: "bob", backend: "model", method: "session" })
      })))

  it.live("CSRF applies to remote-user requests (the proxy's login is ambient)", () =>
    withServer(remote(), ({ url }) =>
      Effect.gen(function*() {
        const headers = { "x-remote-user": "alice" }
        expect((yield* call(url, "POST", "/notes", { headers: { ...headers, origin: "https://evil.example" } })).status)
          .toBe(403)
        const first = yield* call(url, "POST", "/notes", { headers })
        expect(first.status).toBe(200)
        const cookie = cookieHeader({ sessionid: sessionCookie(first)!.value })
        expect((yield* call(url, "POST", "/notes", { headers: { ...headers, cookie } })).status).toBe(403)
        const csrf = first.cookies.cookies["csrftoken"]!.value
        expect((yield* call(url, "POST", "/notes", { headers: { ...headers, cookie, "x-csrftoken": csrf } })).status)
          .toBe(200)
      })))

  const secureRemote: ServerOptions = { ...remote(), http: { ...remote().http, session: { secure: true } } }

  // The header logs in, as HttpAuth.login does: over HTTPS the request must name its origin, as
  // Django's CsrfViewMiddleware answers a secure POST with neither (403 "Referer checking failed -
  // no Referer."). The SameSite=Lax cookie is not sent on a cross-site POST, so without this only
  // the Origin/Referer check stood, and a request naming no origin passed.
  it.live("Secure cookies: a remote-user request that names no origin at all is refused, and starts no session", () =>
    withServer(secureRemote, ({ url }) =>
      Effect.gen(function*() {
        const https = url.replace("http:", "https:")
        const headers = { "x-remote-user": "alice" }
        const nowhere = yield* call(url, "POST", "/notes", { headers })
        expect(nowhere.status).toBe(403)
        expect(sessionCookie(nowhere)).toBeUndefined()
        expect((yield* call(url, "POST", "/notes", { headers: { ...headers, origin: "https://evil.example" } })).status)
          .toBe(403)
        expect((yield* call(url, "POST", "/notes", { headers: { ...headers, referer: "https://evil.example/x" } })).status)
          .toBe(403)
        // a same-host origin must be https
        expect((yield* call(url, "POST", "/notes", { headers: { ...headers, origin: url } })).status).toBe(403)
        expect((yield* call(url, "POST", "/notes", { headers: { ...headers, referer: `${https}/page` } })).status)
          .toBe(200)
        const first = yield* call(url, "POST", "/notes", { headers: { ...headers, origin: https } })
        expect(first.status).toBe(200)
        expect(sessionCookie(first)).toBeDefined()
        // safe methods are never checked
        expect((yield* call(url, "GET", "/me", { headers })).json()).toMatchObject({ username: "alice", method: "remote-user" })
      })))

  // Django names the header by its META key (RemoteUserMiddleware.header = "HTTP_X_REMOTE_USER"):
  // read literally, that is a header the proxy, which sets X-Remote-User, neither sets nor strips,
  // so any client sending "HTTP_X_REMOTE_USER: admin" would log in as admin.
  it.effect("a remote-user header named with _ (Django's META spelling) fails the layer: the proxy sends the dashed name", () =>
    Effect.gen(function*() {
      const refused = (http: HttpAuth.Options) =>
        Effect.flatMap(Effect.exit(Effect.scoped(Layer.build(appLayer({ ...remote(), http })))), (exit) =>
          Exit.isFailure(exit) ? Effect.succeed(Cause.squash(exit.cause) as AuthError.AuthConfigError) : Effect.dieMessage("the layer was built"))
      const django = yield* refused({ ...defaultHttp, remoteUser: { header: "HTTP_X_REMOTE_USER" } })
      expect(django).toBeInstanceOf(AuthError.AuthConfigError)
      expect(django.message).toBe(
        `HttpAuth: remoteUser.header "http_x_remote_user" contains "_": use the dashed header name the proxy sends, ` +
          `"X-Remote-User" (Django's HTTP_X_REMOTE_USER is the header X-Remote-User)`
      )
      const mixed = yield* refused({ ...defaultHttp, remoteUser: { header: "X_Remote_User" } })
      expect(mixed.message).toContain(`"x_remote_user" contains "_": use the dashed header name the proxy sends, "X-Remote-User"`)
      // in sources too
      const viaSources = yield* refused({ realm: "test", sources: [RequestSource.remoteUser({ header: "HTTP_REMOTE_USER" })] })
      expect(viaSources.message).toContain(`sources: remoteUser.header "http_remote_user" contains "_"`)
      expect(viaSources.message).toContain(`"Remote-User"`)
      // the dashed name builds
      yield* Effect.scoped(Layer.build(appLayer(remote())))
    }))

  it.live("permissions come from the user store", () =>
    withServer(remote(), ({ url }) =>
      Effect.gen(function*() {
        expect((yield* call(url, "GET", "/reports", { headers: { "x-remote-user": "alice" } })).status).toBe(200)
        expect((yield* call(url, "GET", "/reports", { headers: { "x-remote-user": "bob" } })).status).toBe(403)
      })))

  it.live("concurrent first requests of one name create one user", () =>
    withServer(remote(), ({ context, url }) =>
      Effect.gen(function*() {
        const replies = yield* Effect.forEach(
          Array.from({ length: 12 }, () => 0),
          () => call(url, "GET", "/me", { headers: { "x-remote-user": "newbie" } }),
          { concurrency: "unbounded" }
        )
        expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200))
        expect((yield* store(context).list()).filter((u) => u.username === "newbie")).toHaveLength(1)
      })))

  it.live("without sessions, every request is authenticated by the header alone", () =>
    withServer(remote({}, {}, { session: false }), ({ url }) =>
      Effect.gen(function*() {
        const reply = yield* call(url, "GET", "/me", { headers: { "x-remote-user": "alice" } })
        expect(reply.status).toBe(200)
        expect(sessionCookie(reply)).toBeUndefined()
        expect((yield* call(url, "GET", "/me")).status).toBe(401)
      })))
})

describe("RemoteUserBackend", () => {
  const layer = (options: RemoteUserBackend.Options = {}) =>
    AuthService.layer([RemoteUserBackend.RemoteUserBackend]).pipe(
      Layer.provide(RemoteUserBackend.layer(options)),
      Layer.provideMerge(MemoryUserStore.layer),
      Layer.provide(AuthEvents.layer)
    )

  it.effect("accepts only credentials made by trusted(): a forwarded JSON body never logs in", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(AuthService.authenticate({ remoteUser: "alice" }))
      expect(error).toMatchObject({ _tag: "AuthenticationFailed", attempts: [{ reason: "unsupported-credentials" }] })
      const ok = yield* AuthService.authenticate(RemoteUserBackend.trusted("alice"))
      expect(ok.user.username).toBe("alice")
      expect(JSON.stringify(RemoteUserBackend.trusted("alice"))).toBe("{\"remoteUser\":\"alice\"}")
    }).pipe(Effect.provide(layer())))

  it.effect("trustedOnly: false accepts plain { remoteUser } (for transports that are not HTTP)", () =>
    Effect.gen(function*() {
      const ok = yield* AuthService.authenticate({ remoteUser: "alice" })
      expect(ok.backend).toBe("remote-user")
    }).pipe(Effect.provide(layer({ trustedOnly: false }))))

  // Names are looked up exactly, as Django's get_or_create does: a decomposed spelling is another
  // name than the composed one (this store, which folds names through NFKC, cannot keep both: it is
  // nobody), and compatibility spellings are other principals. test/DjangoSchema.test.ts compares
  // with Django's RemoteUserBackend on a Django site's tables, where both can exist.
  it.effect("a name decomposed (NFD) is not the user of the same name composed; one NFKC would fold is nobody", () =>
    Effect.gen(function*() {
      yield* AuthService.authenticate({ remoteUser: "Jos\u00e9" })
      const decomposed = yield* Effect.flip(AuthService.authenticate({ remoteUser: "Jose\u0301" }))
      expect(decomposed).toMatchObject({ _tag: "AuthenticationFailed", attempts: [{ reason: "invalid-credentials" }] })
      const normalised = yield* Effect.provide(
        AuthService.authenticate({ remoteUser: "Jose\u0301" }),
        layer({ trustedOnly: false, cleanUsername: (name) => name.normalize("NFC") })
      )
      expect(normalised.user.username).toBe("Jos\u00e9")
      yield* AuthService.authenticate({ remoteUser: "admin" })
      const folded = yield* Effect.flip(AuthService.authenticate({ remoteUser: "\u00aadmin" }))
      expect(folded).toMatchObject({ _tag: "AuthenticationFailed", attempts: [{ reason: "invalid-credentials" }] })
    }).pipe(Effect.provide(layer({ trustedOnly: false }))))

  // Django's get_or_create applies no form validator: a certificate's or a gateway's "John Smith"
  // is a user there, and was NoMatch(invalid-credentials) here.
  it.effect("a name Django's sign-up form refuses (john smith, o'brien) is created, as get_or_create creates it", () =>
    Effect.gen(function*() {
      for (const name of ["john smith", "o'brien", "CN=Jane Doe,O=Example"]) {
        const first = yield* AuthService.authenticate(RemoteUserBackend.trusted(name))
        expect(first.user.username).toBe(name)
        expect((yield* AuthService.authenticate(RemoteUserBackend.trusted(name))).user.id).toBe(first.user.id)
      }
      for (const name of ["al\u200bice", "line\nbreak"]) {
        const error = yield* Effect.flip(AuthService.authenticate(RemoteUserBackend.trusted(name)))
        expect(error).toMatchObject({ _tag: "AuthenticationFailed", attempts: [{ reason: "invalid-credentials" }] })
      }
    }).pipe(Effect.provide(layer())))

  it.effect("trustedOnly: false still accepts the header's credentials (trusted()), not only plain ones", () =>
    Effect.gen(function*() {
      const fromHeader = yield* AuthService.authenticate(RemoteUserBackend.trusted("alice"))
      expect(fromHeader).toMatchObject({ backend: "remote-user", user: { username: "alice" } })
      const plain = yield* AuthService.authenticateUnknown({ remoteUser: "bob" })
      expect(plain.user.username).toBe("bob")
      // what stays refused: other keys, an empty name
      for (const input of [{ remoteUser: "carol", extra: 1 }, { remoteUser: "" }, { remoteUser: 7 }]) {
        const error = yield* Effect.flip(AuthService.authenticateUnknown(input))
        expect(error).toMatchObject({ _tag: "AuthenticationFailed", attempts: [{ reason: "unsupported-credentials" }] })
      }
    }).pipe(Effect.provide(layer({ trustedOnly: false }))))

  it.effect("getUser loads active users only; permissions are the store's", () =>
    Effect.gen(function*() {
      const store = yield* UserStore.UserStore
      const auth = yield* AuthService.AuthService
      const alice = yield* store.create({ username: "alice" })
      const ghost = yield* store.create({ username: "ghost", isActive: false })
      yield* store.grantPermission(alice.id, "blog.add_post")
      expect(Option.isSome(yield* auth.getUser("remote-user", alice.id))).toBe(true)
      expect(Option.isNone(yield* auth.getUser("remote-user", ghost.id))).toBe(true)
      expect(yield* auth.hasPerm(alice as any, "blog.add_post")).toBe(true)
      expect(yield* auth.hasPerm(alice as any, "blog.delete_post")).toBe(false)
      expect(yield* auth.hasModulePerms(alice as any, "blog")).toBe(true)
      expect(yield* auth.hasPerm(ghost as any, "blog.add_post")).toBe(false)
      // Django's has_module_perms compares the label before the first dot: "blog.add" is no app.
      expect(yield* auth.hasModulePerms(alice as any, "blog.add")).toBe(false)
      // Another backend's user that has alice's id is not alice (Django's one table never asks).
      const stranger = { id: alice.id, username: "mallory@sso", isActive: true, isSuperuser: false }
      expect(yield* auth.hasPerm(stranger, "blog.add_post")).toBe(false)
      expect(yield* auth.hasModulePerms(stranger, "blog")).toBe(false)
      expect([...(yield* auth.getAllPermissions(stranger))]).toEqual([])
      // As a ModelBackend in Django, it records the login a session starts.
      const backend = Option.getOrThrow(auth.backend("remote-user"))
      yield* backend.userLoggedIn!(alice as any)
      expect(Option.isSome(Option.getOrThrow(yield* store.findById(alice.id)).lastLogin)).toBe(true)
    }).pipe(Effect.provide(layer())))

  it.effect("a store that cannot answer is a TransportError", () => {
    const broken = Layer.succeed(UserStore.UserStore, new Proxy({} as UserStore.Service, {
      get: () => () => Effect.fail(new UserStore.UserStoreError({ operation: "x", cause: "down" }))
    }))
    return Effect.gen(function*() {
      const backend = yield* RemoteUserBackend.make()
      const error = yield* Effect.flip(backend.authenticate(RemoteUserBackend.trusted("alice"), undefined))
      expect(error._tag).toBe("TransportError")
      expect((yield* Effect.flip(backend.getUser("1")))._tag).toBe("TransportError")
    }).pipe(Effect.provide(broken))
  })
})

describe("RemoteUserBackend.layerConfig", () => {
  const layer = RemoteUserBackend.layerConfig({
    id: Config.string("REMOTE_USER_ID"),
    createUnknownUser: Config.boolean("REMOTE_USER_CREATE")
  }).pipe(Layer.provideMerge(MemoryUserStore.layer))

  it.effect("reads the id and createUnknownUser from Config", () =>
    Effect.gen(function*() {
      const backend = yield* RemoteUserBackend.RemoteUserBackend
      expect(backend.id).toBe("proxy")
      // createUnknownUser: false, so an unknown user is no match and nobody is created
      const error = yield* Effect.flip(backend.authenticate(RemoteUserBackend.trusted("dave"), undefined))
      expect(error._tag).toBe("NoMatch")
      expect(Option.isNone(yield* Effect.flatMap(UserStore.UserStore, (s) => s.findByUsername("dave")))).toBe(true)
    }).pipe(
      Effect.provide(layer),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REMOTE_USER_ID", "proxy"], ["REMOTE_USER_CREATE", "false"]])))
    ))

  it.effect("a malformed value fails the layer with a ConfigError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.withConfigProvider(
          Layer.build(layer).pipe(Effect.scoped),
          ConfigProvider.fromMap(new Map([["REMOTE_USER_ID", "proxy"], ["REMOTE_USER_CREATE", "sometimes"]]))
        )
      )
      expect(ConfigError.isConfigError(error)).toBe(true)
    }))
})
