// Logging in with an identity provider, against a real one (oidc-provider) on 127.0.0.1: the
// browser's round trip, PKCE, state and nonce tampering, code replay, key rotation, the provider
// down mid-flow, concurrent first logins, logins in several tabs, RP-initiated logout, and a plain
// OAuth 2.0 provider; the options checked.
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHmac } from "node:crypto"
import * as http from "node:http"
import * as AuthError from "../src/AuthError.js"
import * as OidcBackend from "../src/backends/OidcBackend.js"
import * as ExternalIdentities from "../src/ExternalIdentities.js"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as TestAuth from "../src/testing/TestAuth.js"
import * as OidcLogin from "../src/http/OidcLogin.js"
import * as Transaction from "../src/internal/oidc/transaction.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as Session from "../src/Session.js"
import * as UserStore from "../src/UserStore.js"
import { appLayer } from "./utils/httpAuthServer.js"
import * as RecordingTracer from "./utils/recordingTracer.js"
import { browser, type LocalProvider, signIn, startProvider } from "./utils/oidcProvider.js"

const secret = Redacted.make("oidc-transaction-secret-0123456789")

const me = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/me",
    Effect.gen(function*() {
      const { backend, user } = yield* CurrentUser.CurrentUser
      const store = yield* UserStore.UserStore
      const stored = Option.getOrThrow(yield* Effect.orDie(store.findById(user.id)))
      return yield* HttpServerResponse.json({
        username: user.username,
        backend,
        email: stored.email,
        groups: yield* Effect.orDie(store.groupsOf(user.id))
      })
    })
  ),
  HttpRouter.use(HttpAuth.requireUser)
)

interface Setup {
  readonly app: string
  readonly loginUrl: string
  readonly redirectUri: string
  readonly provider: LocalProvider
  readonly users: UserStore.UserStore.Service
  readonly events: Effect.Effect<ReadonlyArray<unknown>>
  readonly sessions: Session.Service
}

const setUp = (
  backendOptions: (provider: LocalProvider, redirectUri: string) => Partial<OidcBackend.Options> = () => ({}),
  loginOptions: Partial<OidcLogin.Options> = {},
  /** Where the login routes are mounted (`HttpRouter.mount`), "" for the top. */
  prefix: `/${string}` | "" = "",
  /** A tracer and a logger for the server, which then also logs each response (`HttpMiddleware.logger`). */
  observed?: Layer.Layer<never>,
  more: {
    /** `Session`'s options (the site-wide `expireAtBrowserClose`, say). */
    readonly session?: Partial<Session.Options>
    /** The app's own routes beside the login routes, built from the same options. */
    readonly routes?: (options: OidcLogin.Options) => HttpRouter.HttpRouter<any, any>
  } = {}
) =>
  Effect.gen(function*() {
    // The app's server is bound first, on a port the OS picks, so the URLs that name it are known
    // before the provider and backend are made (a port probed, given back and bound again later
    // could be taken in between by another process: EADDRINUSE)
    const listening = yield* Layer.build(NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" }))
    const { port } = Context.get(listening, HttpServer.HttpServer).address as HttpServer.TcpAddress
    const app = `http://127.0.0.1:${port}`
    const redirectUri = `${app}${prefix}/oidc/callback`
    const provider = yield* Effect.acquireRelease(
      Effect.promise(() =>
        startProvider({
          redirectUri,
          postLogoutRedirectUri: `${app}/bye`,
          groups: (login) => (login === "alice" ? ["staff", "editors"] : [])
        })
      ),
      (p) => Effect.promise(() => p.close())
    )
    const store = yield* Layer.memoize(MemoryUserStore.layer)
    const identities = yield* Layer.memoize(ExternalIdentities.layerMemory)
    const oidc = yield* Layer.memoize(
      OidcBackend.layer({
        issuer: provider.issuer,
        clientId: provider.clientId,
        clientSecret: Redacted.make(provider.clientSecret),
        redirectUri,
        groupsClaim: "groups",
        allowInsecureRequests: true,
        timeout: "3 seconds",
        ...backendOptions(provider, redirectUri)
      }).pipe(Layer.provide(FetchHttpClient.layer), Layer.provide(Layer.merge(store, identities)), Layer.orDie)
    )
    const options: OidcLogin.Options = { secret, secure: false, postLogoutRedirectUri: `${app}/bye`, ...loginOptions }
    const login = OidcLogin.router(options)
    const routes = HttpRouter.concat(
      HttpRouter.concat(prefix === "" ? login : HttpRouter.empty.pipe(HttpRouter.mount(prefix, login)), me),
      // (the app's routes need what the login routes need)
      (more.routes?.(options) ?? HttpRouter.empty) as unknown as typeof login
    )
    const served = observed === undefined ? HttpServer.serve(routes) : HttpServer.serve(routes, HttpMiddleware.logger).pipe(Layer.provide(observed))
    const server = served.pipe(
      Layer.provideMerge(
        appLayer({
          chain: [OidcBackend.OidcBackend],
          backendLayer: oidc as any,
          userStore: store,
          ...(more.session !== undefined && { session: more.session })
        })
      ),
      Layer.provideMerge(oidc),
      Layer.provideMerge(Layer.succeedContext(listening))
    )
    const context = yield* Layer.build(server)
    const users = Context.get(context as Context.Context<UserStore.UserStore>, UserStore.UserStore)
    const events = Effect.provide(TestAuth.events, context as Context.Context<TestAuth.EventLog>)
    const sessions = Context.get(context as unknown as Context.Context<Session.Session>, Session.Session)
    return { app, loginUrl: `${app}${prefix}/oidc/login`, redirectUri, provider, users, events, sessions } satisfies Setup
  })

/** The browser's whole login: our /oidc/login, the provider's pages, back to our callback. */
const logIn = (s: Setup, login: string, b = browser()) =>
  Effect.promise(async () => {
    const started = await b.request(s.loginUrl)
    const authorizationUrl = started.headers.get("location")!
    const callbackUrl = await signIn(b, authorizationUrl, login, s.redirectUri)
    const callback = await b.request(callbackUrl)
    return { b, started, authorizationUrl, callbackUrl, callback }
  })

const status = (s: Setup, b: ReturnType<typeof browser>, path: string) =>
  Effect.promise(async () => (await b.request(`${s.app}${path}`)).status)

const userNamed = (s: Setup, name: string) => Effect.map(Effect.orDie(s.users.findByUsername(name)), Option.isSome)

/** The transaction cookie of the login whose authorization URL (or state) is given. */
const transactionCookie = (authorizationUrlOrState: string) => {
  const state = authorizationUrlOrState.startsWith("http")
    ? new URL(authorizationUrlOrState).searchParams.get("state")!
    : authorizationUrlOrState
  return Transaction.cookieNameOf("oidc_tx", Transaction.idOf(state))
}

/** The OIDC cookies a browser holds: transactions and their index. */
const oidcCookies = (b: ReturnType<typeof browser>) => [...b.jar.keys()].filter((name) => name.startsWith("oidc_tx"))

/** The session cookie a response sets: its `Max-Age` (undefined without one) and whether it has an `Expires`. */
const sessionCookieOf = (response: Response) => {
  const line = response.headers.getSetCookie().find((l) => l.startsWith("sessionid="))
  if (line === undefined) return undefined
  return { maxAge: /;\s*max-age=(\d+)/i.exec(line)?.[1], expires: /;\s*expires=/i.test(line) }
}

const fortnight = String(14 * 24 * 3600)

/**
 * A transaction cookie as releases before the login's "remember me" sealed it (a JSON array of
 * four or five fields, HMAC-SHA256 under the key derived from the secret): written here byte for
 * byte as they did, so that a change of the format cannot go unnoticed.
 */
const sealOldForm = (fields: ReadonlyArray<unknown>) => {
  const key = createHmac("sha256", "effect-auth.oidc.transaction").update(Redacted.value(secret)).digest()
  const payload = Buffer.from(JSON.stringify(fields)).toString("base64url")
  return `${payload}.${createHmac("sha256", key).update(payload).digest("base64url")}`
}

/** A whole login started at `start` (a URL of the app), its callback sent with `extra` appended to its query. */
const logInAt = (s: Setup, start: string, login = "alice", extra = "") =>
  Effect.promise(async () => {
    const b = browser()
    const started = await b.request(`${s.app}${start}`)
    const callbackUrl = await signIn(b, started.headers.get("location")!, login, s.redirectUri)
    const callback = await b.request(callbackUrl + extra)
    return { b, callback }
  })

/** The session the browser's cookie names, as the server keeps it. */
const sessionOf = (s: Setup, b: ReturnType<typeof browser>) =>
  Effect.map(Effect.orDie(s.sessions.currentUser(b.jar.get("sessionid"))), Option.getOrThrow)

describe("OIDC login against a real provider", () => {
  it.live("the browser's round trip: redirect with PKCE, login at the provider, callback, session, /me", () =>
    Effect.gen(function*() {
      const s = yield* setUp()
      const { authorizationUrl, b, callback, started } = yield* logIn(s, "alice")
      expect(started.status).toBe(302)
      const params = new URL(authorizationUrl).searchParams
      expect(params.get("code_challenge_method")).toBe("S256")
      expect(params.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(params.get("state")).toBeTruthy()
      expect(params.get("nonce")).toBeTruthy()
      expect(params.get("scope")).toBe("openid email profile")
      expect(oidcCookies(b)).toEqual([]) // cleared at the callback, and the index with it
      expect(callback.status).toBe(302)
      expect(callback.headers.get("location")).toBe("/")
      expect(b.jar.has("sessionid")).toBe(true)
      const whoami = yield* Effect.promise(async () => (await b.request(`${s.app}/me`)).json())
      expect(whoami).toEqual({ username: "alice", backend: "oidc", email: "alice@example.com", groups: ["editors", "staff"] })
    }).pipe(Effect.scoped), 60_000)

  it.live("mounted under a prefix: the transaction cookie is scoped to the callback as the browser reaches it (redirectUri)", () =>
    Effect.gen(function*() {
      const s = yield* setUp(undefined, {}, "/auth")
      const { b, callback, started } = yield* logIn(s, "alice")
      expect(s.redirectUri).toBe(`${s.app}/auth/oidc/callback`)
      // a browser sends a cookie only to its path: `/oidc/callback` would never reach `/auth/oidc/callback`
      expect(started.headers.getSetCookie()).toContainEqual(expect.stringMatching(/^oidc_tx_[0-9a-f]{16}=[^;]+;.*Path=\/auth\/oidc\/callback;/))
      expect(callback.status).toBe(302)
      expect(callback.headers.getSetCookie()).toContainEqual(
        expect.stringMatching(/^oidc_tx_[0-9a-f]{16}=;.*Max-Age=0;.*Path=\/auth\/oidc\/callback;/)
      )
      const whoami = yield* Effect.promise(async () => (await b.request(`${s.app}/me`)).json())
      expect(whoami).toMatchObject({ username: "alice", backend: "oidc" })
    }).pipe(Effect.scoped), 60_000)

  it.live("the login lands where its `next` says when SafeRedirect allows it, else on successRedirect", () =>
    Effect.gen(function*() {
      const s = yield* setUp(undefined, { allowedRedirectHosts: ["docs.example.com"], successRedirect: "/home" })
      const landing = (query: string) =>
        Effect.promise(async () => {
          const b = browser()
          const started = await b.request(`${s.app}/oidc/login${query}`)
          const callbackUrl = await signIn(b, started.headers.get("location")!, "alice", s.redirectUri)
          const callback = await b.request(callbackUrl)
          return callback.headers.get("location")
        })
      expect(yield* landing(`?next=${encodeURIComponent("/reports?q=1&page=2")}`)).toBe("/reports?q=1&page=2")
      expect(yield* landing(`?next=${encodeURIComponent(`${s.app}/reports`)}`)).toBe(`${s.app}/reports`)
      expect(yield* landing(`?next=${encodeURIComponent("http://docs.example.com/guide")}`)).toBe("http://docs.example.com/guide")
      // Another host, a host in disguise, another scheme: the default landing.
      for (const next of ["https://evil.example/", "//evil.example/", "/\\evil.example", "http:///evil.example", "javascript:alert(1)"]) {
        expect([next, yield* landing(`?next=${encodeURIComponent(next)}`)]).toEqual([next, "/home"])
      }
      expect(yield* landing("")).toBe("/home")
      // A repeated field: its last value, as Django's QueryDict.get reads it.
      expect(yield* landing("?next=/first&next=/second")).toBe("/second")
      // What a Location header cannot carry as it is, encoded as Django's redirects encode it.
      expect(yield* landing(`?next=${encodeURIComponent("/café?q=ü")}`)).toBe("/caf%C3%A9?q=%C3%BC")
      expect(yield* landing(`?next=${encodeURIComponent("/a\nb 😀")}`)).toBe("/a%0Ab%20%F0%9F%98%80")
      // Too long for the transaction cookie: dropped, and the login still completes.
      expect(yield* landing(`?next=${encodeURIComponent(`/${"\u00e9".repeat(1500)}`)}`)).toBe("/home")
    }).pipe(Effect.scoped), 60_000)

  it.live("secure: a `next` must be https (a path still goes); redirectFieldName false: never followed", () =>
    Effect.gen(function*() {
      const secureSetup = yield* setUp(undefined, { secure: true, allowedRedirectHosts: ["docs.example.com"] })
      const sealedNext = (s: Setup, query: string) =>
        Effect.promise(async () => {
          const started = await browser().request(`${s.app}/oidc/login${query}`)
          const cookie = started.headers.getSetCookie().join("\n")
          const value = /oidc_tx_[0-9a-f]{16}=([^;]*)/.exec(cookie)?.[1]
          return Option.map(Transaction.open(secret, value, Date.now()), (t) => t.next)
        })
      expect(yield* sealedNext(secureSetup, `?next=${encodeURIComponent("http://docs.example.com/x")}`)).toEqual(Option.some(""))
      expect(yield* sealedNext(secureSetup, `?next=${encodeURIComponent("https://docs.example.com/x")}`)).toEqual(Option.some("https://docs.example.com/x"))
      expect(yield* sealedNext(secureSetup, `?next=${encodeURIComponent("/x")}`)).toEqual(Option.some("/x"))
      const ignoring = yield* setUp(undefined, { redirectFieldName: false, secure: true })
      expect(yield* sealedNext(ignoring, `?next=${encodeURIComponent("/x")}`)).toEqual(Option.some(""))
    }).pipe(Effect.scoped), 60_000)

  it.live("a tampered state, a missing transaction, error=access_denied: 4xx, and nobody is created", () =>
    Effect.gen(function*() {
      const s = yield* setUp()
      const b = browser()
      const started = yield* Effect.promise(() => b.request(`${s.app}/oidc/login`))
      const callbackUrl = yield* Effect.promise(() => signIn(b, started.headers.get("location")!, "mallory", s.redirectUri))
      // a state this browser started no login with: no transaction, nothing asked (as none at all)
      const tampered = new URL(callbackUrl)
      tampered.searchParams.set("state", "not-the-state")
      expect((yield* Effect.promise(() => b.request(tampered.href))).status).toBe(400)
      expect((yield* Effect.promise(() => fetch(callbackUrl, { redirect: "manual" }))).status).toBe(400)
      expect(yield* userNamed(s, "mallory")).toBe(false)
      // the transaction's state with another issuer: the fold refuses it
      const otherIssuer = new URL(callbackUrl)
      otherIssuer.searchParams.set("iss", "https://evil.example")
      expect((yield* Effect.promise(() => b.request(otherIssuer.href))).status).toBe(401)
      expect(yield* userNamed(s, "mallory")).toBe(false)
      // the refusal is an event, and it shows neither the code nor the transaction's values
      const code = new URL(callbackUrl).searchParams.get("code")!
      const logged = JSON.stringify(yield* s.events) + String(yield* s.events)
      expect(logged).toContain("LoginFailed")
      expect(logged).not.toContain(code)
      expect(logged).not.toContain(new URL(callbackUrl).searchParams.get("state")!)
      // the transaction was cleared with that answer: the genuine callback now has none
      expect((yield* Effect.promise(() => b.request(callbackUrl))).status).toBe(400)
      expect(yield* userNamed(s, "mallory")).toBe(false)

      const c = browser()
      const again = yield* Effect.promise(() => c.request(`${s.app}/oidc/login`))
      const state = new URL(again.headers.get("location")!).searchParams.get("state")!
      const denied = yield* Effect.promise(() => c.request(`${s.redirectUri}?error=access_denied&state=${state}&iss=${encodeURIComponent(s.provider.issuer)}`))
      expect(denied.status).toBe(401)
      expect(yield* Effect.promise(() => denied.json())).toEqual({ error: "the login could not be verified" })
    }).pipe(Effect.scoped), 60_000)

  it.live("a wrong nonce or a wrong PKCE verifier is refused; a code is good once (replay refused)", () =>
    Effect.gen(function*() {
      const s = yield* setUp()
      const b = browser()
      const started = yield* Effect.promise(() => b.request(`${s.app}/oidc/login`))
      const callbackUrl = yield* Effect.promise(() => signIn(b, started.headers.get("location")!, "nora", s.redirectUri))
      const name = transactionCookie(started.headers.get("location")!)
      const genuine = Option.getOrThrow(Transaction.open(secret, b.jar.get(name), Date.now()))
      const withTransaction = (t: Transaction.Transaction) =>
        Effect.promise(() => b.request(callbackUrl, { headers: { cookie: `${name}=${Transaction.seal(secret, t)}` } }))

      expect((yield* withTransaction({ ...genuine, nonce: "another-nonce" })).status).toBe(401)
      expect(yield* userNamed(s, "nora")).toBe(false)

      // a fresh code (the first was spent by the wrong-nonce attempt), then a wrong verifier
      const second = browser()
      const start2 = yield* Effect.promise(() => second.request(`${s.app}/oidc/login`))
      const callback2 = yield* Effect.promise(() => signIn(second, start2.headers.get("location")!, "nora", s.redirectUri))
      const name2 = transactionCookie(start2.headers.get("location")!)
      const t2 = Option.getOrThrow(Transaction.open(secret, second.jar.get(name2), Date.now()))
      const wrongVerifier = yield* Effect.promise(() =>
        second.request(callback2, { headers: { cookie: `${name2}=${Transaction.seal(secret, { ...t2, codeVerifier: "x".repeat(43) })}` } })
      )
      expect(wrongVerifier.status).toBe(401)
      expect(yield* userNamed(s, "nora")).toBe(false)

      // the genuine transaction: the login succeeds once; the same code and transaction again fail
      const third = browser()
      const start3 = yield* Effect.promise(() => third.request(`${s.app}/oidc/login`))
      const callback3 = yield* Effect.promise(() => signIn(third, start3.headers.get("location")!, "nora", s.redirectUri))
      const name3 = transactionCookie(start3.headers.get("location")!)
      const sealed = third.jar.get(name3)!
      expect((yield* Effect.promise(() => third.request(callback3))).status).toBe(302)
      expect(yield* userNamed(s, "nora")).toBe(true)
      const replay = yield* Effect.promise(() => fetch(callback3, { redirect: "manual", headers: { cookie: `${name3}=${sealed}` } }))
      expect(replay.status).toBe(401)
    }).pipe(Effect.scoped), 60_000)

  it.live("a callback target the router matches but URL cannot resolve (`//v1.0/callback`) is refused, never a 500", () =>
    Effect.gen(function*() {
      const s = yield* setUp(undefined, { callbackPath: "/v1.0/callback" })
      const sealed = Transaction.seal(secret, { state: "another", nonce: "n", codeVerifier: "v".repeat(43), expiresAt: Date.now() + 60_000, next: "" })
      const answer = (path: string) =>
        Effect.promise(async () => {
          const response = await fetch(`${s.app}${path}`, { redirect: "manual", headers: { cookie: `${transactionCookie("another")}=${sealed}` } })
          return [response.status, await response.text()] as const
        })
      // `//v1.0` read as an authority is a host that is no host: new URL threw before the fold ran
      for (const path of ["//v1.0/callback?code=c&state=another", "/v1.0/callback?code=c&state=another"]) {
        expect(yield* answer(path)).toEqual([401, JSON.stringify({ error: "the login could not be verified" })])
      }
      const logged = JSON.stringify(yield* s.events)
      expect(logged).toContain("LoginFailed")
    }).pipe(Effect.scoped), 60_000)

  it.live("key rotation at the provider: the next login verifies with the new key", () =>
    Effect.gen(function*() {
      const s = yield* setUp()
      expect((yield* logIn(s, "alice")).callback.status).toBe(302)
      yield* Effect.promise(() => s.provider.rotate())
      const after = yield* logIn(s, "alice")
      expect(after.callback.status).toBe(302)
      expect(yield* status(s, after.b, "/me")).toBe(200)
    }).pipe(Effect.scoped), 60_000)

  // The platform's server span recorded the callback's URL as sent (url.full, url.query), and
  // HttpMiddleware.logger logged it: the authorization code was in both, for a login and for a
  // replay of its code.
  it.live("the authorization code is in neither the server span nor the access log, for a login or a replay", () =>
    Effect.gen(function*() {
      const recording = RecordingTracer.make()
      const lines: Array<string> = []
      const logger = Logger.replace(Logger.defaultLogger, Logger.make(({ annotations, message }) => {
        lines.push(JSON.stringify([message, Object.fromEntries(annotations)]))
      }))
      const s = yield* setUp(() => ({}), {}, "", Layer.merge(recording.layer, logger))
      const { callback, callbackUrl } = yield* logIn(s, "alice")
      expect(callback.status).toBe(302)
      const code = new URL(callbackUrl).searchParams.get("code")!
      expect(code.length).toBeGreaterThan(10)
      const replay = yield* Effect.promise(() => browser().request(callbackUrl))
      expect(replay.status).toBe(400)
      const callbackSpans = recording.spans.filter((span) => String(span.attributes.get("url.path")) === "/oidc/callback")
      expect(callbackSpans).toHaveLength(2)
      for (const span of callbackSpans) {
        expect(span.attributes.get("url.full")).toMatch(/[?&]code=\*{20}(&|$)/)
        expect(span.attributes.get("url.query")).toMatch(/^code=\*{20}&|&code=\*{20}(&|$)/)
        expect(String(span.attributes.get("url.full"))).toContain("state=")
      }
      for (const span of recording.spans) expect(RecordingTracer.render(span)).not.toContain(code)
      // the other routes are still logged, the callback's line is left out
      expect(lines.some((line) => line.includes("/oidc/login"))).toBe(true)
      expect(lines.filter((line) => line.includes("/oidc/callback"))).toEqual([])
      for (const line of lines) expect(line).not.toContain(code)
    }).pipe(Effect.scoped), 60_000)

  it.live("the provider down mid-flow: 503, never a 500, and no session", () =>
    Effect.gen(function*() {
      const s = yield* setUp()
      const b = browser()
      const started = yield* Effect.promise(() => b.request(`${s.app}/oidc/login`))
      const callbackUrl = yield* Effect.promise(() => signIn(b, started.headers.get("location")!, "alice", s.redirectUri))
      yield* Effect.promise(() => s.provider.stop())
      const callback = yield* Effect.promise(() => b.request(callbackUrl))
      expect(callback.status).toBe(503)
      expect(b.jar.has("sessionid")).toBe(false)
      // and starting a login while it is down (discovery was cached; a fresh backend would 503 too)
      yield* Effect.promise(() => s.provider.start())
    }).pipe(Effect.scoped), 60_000)

  it.live("the provider's error=server_error or temporarily_unavailable at the callback: 503, not 401; access_denied stays 401", () =>
    Effect.gen(function*() {
      const s = yield* setUp()
      const answer = (error: string) =>
        Effect.promise(async () => {
          const b = browser()
          const started = await b.request(s.loginUrl)
          const state = new URL(started.headers.get("location")!).searchParams.get("state")!
          const query = new URLSearchParams({ error, error_description: "try later", state, iss: s.provider.issuer })
          const response = await b.request(`${s.redirectUri}?${query}`)
          // the transaction is cleared with the answer, as for any other, and there is no session
          return [error, response.status, await response.json(), oidcCookies(b), b.jar.has("sessionid")] as const
        })
      for (const error of ["server_error", "temporarily_unavailable"]) {
        expect(yield* answer(error)).toEqual([error, 503, { error: "the identity provider could not be reached" }, [], false])
      }
      expect(yield* answer("access_denied")).toEqual(["access_denied", 401, { error: "the login could not be verified" }, [], false])
    }).pipe(Effect.scoped), 60_000)

  it.live("concurrent first logins of one user create one user", () =>
    Effect.gen(function*() {
      const s = yield* setUp()
      const results = yield* Effect.all(Array.from({ length: 4 }, () => logIn(s, "zoe")), { concurrency: "unbounded" })
      expect(results.map((r) => r.callback.status)).toEqual([302, 302, 302, 302])
      const all = yield* Effect.orDie(s.users.list())
      expect(all.filter((u) => u.username === "zoe")).toHaveLength(1)
    }).pipe(Effect.scoped), 60_000)

  // One transaction cookie was overwritten by the next login: a user who started a login in tab A,
  // then in tab B, could finish only B (A's callback was refused, and cleared B's transaction).
  it.live("two tabs: logins started one after the other both finish, in either order; each callback clears only its own transaction", () =>
    Effect.gen(function*() {
      const s = yield* setUp()
      const b = browser()
      const start = (next: string) =>
        Effect.promise(async () => (await b.request(`${s.loginUrl}?next=${encodeURIComponent(next)}`)).headers.get("location")!)
      const finish = (callbackUrl: string) =>
        Effect.promise(async () => {
          const response = await b.request(callbackUrl)
          return [response.status, response.headers.get("location")] as const
        })
      for (const order of ["older first", "newer first"] as const) {
        const tabA = yield* start("/a")
        const tabB = yield* start("/b")
        const callbackA = yield* Effect.promise(() => signIn(b, tabA, "alice", s.redirectUri))
        const callbackB = yield* Effect.promise(() => signIn(b, tabB, "alice", s.redirectUri))
        const [first, second] = order === "older first" ? [callbackA, callbackB] : [callbackB, callbackA]
        const [firstLanding, secondLanding] = order === "older first" ? ["/a", "/b"] : ["/b", "/a"]
        expect([order, yield* finish(first)]).toEqual([order, [302, firstLanding]])
        // exactly the used transaction is cleared: the other tab's is still there
        const [used, other] = order === "older first" ? [tabA, tabB] : [tabB, tabA]
        expect([b.jar.has(transactionCookie(used)), b.jar.has(transactionCookie(other))]).toEqual([false, true])
        expect([order, yield* finish(second)]).toEqual([order, [302, secondLanding]])
        expect(oidcCookies(b)).toEqual([])
        expect(yield* status(s, b, "/me")).toBe(200)
      }
    }).pipe(Effect.scoped), 60_000)

  it.live("past maxTransactions (or 4096 bytes of them) a new login drops the oldest: its callback answers 400, the others finish", () =>
    Effect.gen(function*() {
      const s = yield* setUp(undefined, { maxTransactions: 2, secure: true })
      const b = browser()
      const start = (query = "") => Effect.promise(() => b.request(`${s.loginUrl}${query}`))
      const first = yield* start()
      const second = yield* start()
      const third = yield* start()
      const [x, y, z] = [first, second, third].map((r) => r.headers.get("location")!) as [string, string, string]
      // each transaction: HttpOnly, Secure, SameSite=Lax, scoped to the callback, for maxAge
      expect(third.headers.getSetCookie()).toContainEqual(
        `${transactionCookie(z)}=${b.jar.get(transactionCookie(z))}; Max-Age=600; Path=/oidc/callback; HttpOnly; Secure; SameSite=Lax`
      )
      // the third login cleared the first's cookie; the index (no secret in it) is site-wide
      expect(third.headers.getSetCookie()).toContainEqual(
        `${transactionCookie(x)}=; Max-Age=0; Path=/oidc/callback; HttpOnly; Secure; SameSite=Lax`
      )
      expect(third.headers.getSetCookie()).toContainEqual(expect.stringMatching(/^oidc_tx_index=[^;]+; Max-Age=600; Path=\/; HttpOnly; Secure; SameSite=Lax$/))
      expect(oidcCookies(b).sort()).toEqual([transactionCookie(y), transactionCookie(z), "oidc_tx_index"].sort())
      const callbackX = yield* Effect.promise(() => signIn(b, x, "alice", s.redirectUri))
      const callbackY = yield* Effect.promise(() => signIn(b, y, "alice", s.redirectUri))
      const callbackZ = yield* Effect.promise(() => signIn(b, z, "alice", s.redirectUri))
      expect((yield* Effect.promise(() => b.request(callbackX))).status).toBe(400)
      expect((yield* Effect.promise(() => b.request(callbackZ))).status).toBe(302)
      expect((yield* Effect.promise(() => b.request(callbackY))).status).toBe(302)
      expect(oidcCookies(b)).toEqual([])

      // Under the count, the bytes: two logins whose `next` fills most of a cookie do not fit.
      const long = (page: string) => `/${page}/${"r".repeat(1800)}`
      const older = (yield* start(`?next=${encodeURIComponent(long("older"))}`)).headers.get("location")!
      const newer = (yield* start(`?next=${encodeURIComponent(long("newer"))}`)).headers.get("location")!
      expect(oidcCookies(b).sort()).toEqual([transactionCookie(newer), "oidc_tx_index"].sort())
      const finish = (authorizationUrl: string) =>
        Effect.promise(async () => {
          const response = await b.request(await signIn(b, authorizationUrl, "alice", s.redirectUri))
          return [response.status, response.headers.get("location")] as const
        })
      expect(yield* finish(older)).toEqual([400, null])
      expect(yield* finish(newer)).toEqual([302, long("newer")])
    }).pipe(Effect.scoped), 60_000)

  // "Remember me" at the start of the login, as mozilla-django-oidc and django-allauth let the
  // start request carry it (allauth keeps `remember` in the login's state): kept in the signed
  // transaction, applied at the callback as HttpAuth.login's LoginOptions.
  it.live("remember=0 at the start: the callback's session cookie ends with the browser and the session keeps that; the callback's query has no say", () =>
    Effect.gen(function*() {
      const s = yield* setUp(undefined, { rememberFieldName: "remember" })
      const forNow = yield* logInAt(s, "/oidc/login?remember=0", "alice", "&remember=1")
      expect(forNow.callback.status).toBe(302)
      expect(sessionCookieOf(forNow.callback)).toEqual({ maxAge: undefined, expires: false })
      expect((yield* sessionOf(s, forNow.b)).expireAtBrowserClose).toBe(true)
      // No choice, or what is not 1 or 0: the site's default (here a lasting cookie); the
      // callback's own query is not read for it.
      for (const query of ["", "?remember=yes", "?remember=", "?remember=true", "?remember=0&remember=1"]) {
        const other = yield* logInAt(s, `/oidc/login${query}`, "alice", "&remember=0")
        expect([query, other.callback.status, sessionCookieOf(other.callback)?.maxAge]).toEqual([query, 302, fortnight])
        expect([query, (yield* sessionOf(s, other.b)).expireAtBrowserClose]).toEqual([query, undefined])
      }
      // with a `next` too long for the cookie, the choice is kept all the same
      const long = yield* logInAt(s, `/oidc/login?remember=0&next=${encodeURIComponent(`/${"\u00e9".repeat(1500)}`)}`)
      expect([long.callback.headers.get("location"), sessionCookieOf(long.callback)?.maxAge]).toEqual(["/", undefined])
    }).pipe(Effect.scoped), 60_000)

  it.live("remember=1 under a site-wide browser-close default: a lasting cookie where the app names the parameter; not read by default", () =>
    Effect.gen(function*() {
      const s = yield* setUp(undefined, { rememberFieldName: "remember" }, "", undefined, { session: { expireAtBrowserClose: true } })
      const remembered = yield* logInAt(s, "/oidc/login?remember=1&next=/reports")
      expect(remembered.callback.headers.get("location")).toBe("/reports")
      expect(sessionCookieOf(remembered.callback)?.maxAge).toBe(fortnight)
      expect((yield* sessionOf(s, remembered.b)).expireAtBrowserClose).toBeUndefined()
      const byDefault = yield* logInAt(s, "/oidc/login")
      expect(sessionCookieOf(byDefault.callback)).toEqual({ maxAge: undefined, expires: false })
      expect((yield* sessionOf(s, byDefault.b)).expireAtBrowserClose).toBe(true)
      // a site that lets no login choose: by default, and with rememberFieldName false
      for (const loginOptions of [{}, { rememberFieldName: false as const }]) {
        const fixed = yield* setUp(undefined, loginOptions, "", undefined, { session: { expireAtBrowserClose: true } })
        const ignored = yield* logInAt(fixed, "/oidc/login?remember=1")
        expect([ignored.callback.status, sessionCookieOf(ignored.callback)?.maxAge]).toEqual([302, undefined])
      }
      // another name for the parameter
      const renamed = yield* setUp(undefined, { rememberFieldName: "stay" }, "", undefined, { session: { expireAtBrowserClose: true } })
      expect(sessionCookieOf((yield* logInAt(renamed, "/oidc/login?stay=1")).callback)?.maxAge).toBe(fortnight)
      expect(sessionCookieOf((yield* logInAt(renamed, "/oidc/login?remember=1")).callback)?.maxAge).toBeUndefined()
    }).pipe(Effect.scoped), 60_000)

  it.live("OidcLogin.start: an app's own start route chooses the cookie (over the query); its callback is the router's", () =>
    Effect.gen(function*() {
      const s = yield* setUp(undefined, { rememberFieldName: "remember" }, "", undefined, {
        session: { expireAtBrowserClose: true },
        routes: (options) =>
          HttpRouter.empty.pipe(
            HttpRouter.get("/sso/lasting", OidcLogin.start(options, { expireAtBrowserClose: false })),
            HttpRouter.get("/sso/for-now", OidcLogin.start(options, { expireAtBrowserClose: true })),
            HttpRouter.get("/sso", OidcLogin.start(options))
          )
      })
      const lasting = yield* logInAt(s, "/sso/lasting?next=/reports")
      expect([lasting.callback.headers.get("location"), sessionCookieOf(lasting.callback)?.maxAge]).toEqual(["/reports", fortnight])
      const forNow = yield* logInAt(s, "/sso/for-now?remember=1")
      expect(sessionCookieOf(forNow.callback)).toEqual({ maxAge: undefined, expires: false })
      expect((yield* sessionOf(s, forNow.b)).expireAtBrowserClose).toBe(true)
      // without a choice of its own, the query's (as the router's login route reads it)
      expect(sessionCookieOf((yield* logInAt(s, "/sso?remember=1")).callback)?.maxAge).toBe(fortnight)
      expect(sessionCookieOf((yield* logInAt(s, "/sso")).callback)?.maxAge).toBeUndefined()
    }).pipe(Effect.scoped), 60_000)

  it.live("the choice is signed: a transaction whose choice was changed is refused (400, no session); one sealed before the choice existed still completes", () =>
    Effect.gen(function*() {
      const s = yield* setUp(undefined, { rememberFieldName: "remember" })
      const started = (query: string) =>
        Effect.promise(async () => {
          const b = browser()
          const response = await b.request(`${s.app}/oidc/login${query}`)
          const authorizationUrl = response.headers.get("location")!
          return { b, authorizationUrl, name: transactionCookie(authorizationUrl) }
        })
      const finish = (login: { readonly b: ReturnType<typeof browser>; readonly authorizationUrl: string }, as: string) =>
        Effect.promise(async () => login.b.request(await signIn(login.b, login.authorizationUrl, as, s.redirectUri)))

      // the payload rewritten to ask for a lasting cookie, or for none at all, under the old signature
      for (const rewrite of [(fields: Array<unknown>) => fields.map((f) => f === true ? false : f), (fields: Array<unknown>) => fields.slice(0, 5)]) {
        const login = yield* started("?remember=0")
        const [payload, signature] = login.b.jar.get(login.name)!.split(".")
        const fields = JSON.parse(Buffer.from(payload!, "base64url").toString("utf8")) as Array<unknown>
        expect(fields).toContain(true)
        login.b.jar.set(login.name, `${Buffer.from(JSON.stringify(rewrite(fields))).toString("base64url")}.${signature}`)
        const callback = yield* finish(login, "mallory")
        expect(callback.status).toBe(400)
        expect(sessionCookieOf(callback)).toBeUndefined()
        expect(login.b.jar.has("sessionid")).toBe(false)
      }
      expect(yield* userNamed(s, "mallory")).toBe(false)

      // A login started before the upgrade (its cookie of four or five fields) finishes under the
      // site's default, its `next` followed.
      for (const old of [(t: Transaction.Transaction) => [t.state, t.nonce, t.codeVerifier, t.expiresAt, "/reports"], (t: Transaction.Transaction) => [t.state, t.nonce, t.codeVerifier, t.expiresAt]]) {
        const login = yield* started("?remember=0")
        const transaction = Option.getOrThrow(Transaction.open(secret, login.b.jar.get(login.name), Date.now()))
        login.b.jar.set(login.name, sealOldForm(old(transaction)))
        const callback = yield* finish(login, "alice")
        expect(callback.status).toBe(302)
        expect(callback.headers.get("location")).toBe(old(transaction).length === 5 ? "/reports" : "/")
        expect(sessionCookieOf(callback)?.maxAge).toBe(fortnight)
        expect((yield* sessionOf(s, login.b)).expireAtBrowserClose).toBeUndefined()
      }
    }).pipe(Effect.scoped), 60_000)

  it.live("logout ends the local session and sends the browser to the provider's end_session_endpoint", () =>
    Effect.gen(function*() {
      const s = yield* setUp()
      const { b } = yield* logIn(s, "alice")
      const csrf = b.jar.get("csrftoken")!
      const out = yield* Effect.promise(() => b.request(`${s.app}/oidc/logout`, { method: "POST", headers: { "x-csrftoken": csrf } }))
      expect(out.status).toBe(303)
      const location = new URL(out.headers.get("location")!)
      expect(location.origin).toBe(s.provider.issuer)
      expect(location.searchParams.get("client_id")).toBe(s.provider.clientId)
      expect(location.searchParams.get("post_logout_redirect_uri")).toBe(`${s.app}/bye`)
      expect(yield* status(s, b, "/me")).toBe(401)
    }).pipe(Effect.scoped), 60_000)

  it.live("a plain OAuth 2.0 provider (no discovery, no ID token): claims from the userinfo endpoint", () =>
    Effect.gen(function*() {
      const s = yield* setUp((provider) => ({
        oauth2: {
          authorizationEndpoint: `${provider.issuer}/auth`,
          tokenEndpoint: `${provider.issuer}/token`,
          userinfoEndpoint: `${provider.issuer}/me`
        },
        scopes: ["openid", "email", "profile"]
      }))
      const { authorizationUrl, b, callback } = yield* logIn(s, "alice")
      expect(new URL(authorizationUrl).searchParams.has("nonce")).toBe(false)
      expect(callback.status).toBe(302)
      const whoami = yield* Effect.promise(async () => (await b.request(`${s.app}/me`)).json())
      expect(whoami).toMatchObject({ username: "alice", email: "alice@example.com" })
    }).pipe(Effect.scoped), 60_000)
})

describe("OidcLogin options", () => {
  // A short secret threw a plain Error, and the other options were not checked at all: a
  // malformed maxAge died in Duration.decode at the first login, a cookie name with a space or a
  // path without its "/" made every login fail. Bad configuration is an AuthConfigError.
  it.effect("an unusable option is an AuthConfigError: router throws it, make fails with it; the secret is never in it", () =>
    Effect.gen(function*() {
      const shortSecret = "short-secret-15" // 15 characters
      const bad: ReadonlyArray<readonly [string, unknown]> = [
        ["secret", { secret: Redacted.make(shortSecret) }],
        ["secret", { secret: shortSecret }],
        ["secret", {}],
        ["maxAge", { secret, maxAge: "ten minutes" }],
        ["maxAge", { secret, maxAge: "500 millis" }],
        ["maxAge", { secret, maxAge: Infinity }],
        ["cookieName", { secret, cookieName: "oidc tx" }],
        ["cookieName", { secret, cookieName: "oidc;tx" }],
        ["cookieName", { secret, cookieName: "" }],
        ["cookieName", { secret, cookieName: "x".repeat(65) }],
        ["cookieName", { secret, cookieName: "__Host-oidc" }],
        ["cookieName", { secret, cookieName: "__Secure-oidc", secure: false }],
        ["loginPath", { secret, loginPath: "oidc/login" }],
        ["callbackPath", { secret, callbackPath: "/oidc/callback?x=1" }],
        ["logoutPath", { secret, logoutPath: "" }],
        ["callbackPath", { secret, loginPath: "/oidc", callbackPath: "/oidc" }],
        ["successRedirect", { secret, successRedirect: 42 }],
        ["redirectFieldName", { secret, redirectFieldName: "" }],
        ["rememberFieldName", { secret, rememberFieldName: "" }],
        ["rememberFieldName", { secret, rememberFieldName: true }],
        ["rememberFieldName", { secret, rememberFieldName: "next" }],
        ["rememberFieldName", { secret, redirectFieldName: "to", rememberFieldName: "to" }],
        ["allowedRedirectHosts", { secret, allowedRedirectHosts: "docs.example.com" }],
        ["postLogoutRedirectUri", { secret, postLogoutRedirectUri: new URL("https://app.example.com/") }],
        ["secure", { secret, secure: "false" }],
        ["maxTransactions", { secret, maxTransactions: 0 }],
        ["maxTransactions", { secret, maxTransactions: 2.5 }],
        ["options", null],
        ["options", new Proxy({}, { get: () => { throw new Error("trap") } })]
      ]
      for (const [option, options] of bad) {
        let thrown: unknown
        try {
          OidcLogin.router(options as OidcLogin.Options)
        } catch (error) {
          thrown = error
        }
        expect([option, thrown]).toEqual([option, expect.any(AuthError.AuthConfigError)])
        const failed = yield* Effect.flip(OidcLogin.make(options as OidcLogin.Options))
        expect(failed._tag).toBe("AuthConfigError")
        expect(failed.message).toMatch(/^OidcLogin: /)
        expect(failed.message).toContain(option)
        expect(failed.message).not.toContain(shortSecret)
        expect(failed.message).not.toContain(Redacted.value(secret))
        // OidcLogin.start fails with the same, before it asks for any service
        const startFailed = yield* Effect.flip(
          OidcLogin.start(options as OidcLogin.Options) as Effect.Effect<unknown, AuthError.AuthConfigError>
        )
        expect(startFailed).toEqual(failed)
      }
      // Usable options: the same routes either way.
      const routesOf = (router: HttpRouter.HttpRouter<any, any>) => Chunk.toReadonlyArray(router.routes).map((r) => `${r.method} ${r.path}`)
      expect(routesOf(OidcLogin.router({ secret }))).toEqual(["GET /oidc/login", "GET /oidc/callback", "POST /oidc/logout"])
      const custom = { secret, maxAge: "5 minutes", cookieName: "__Secure-oidc", loginPath: "/sso" } as const
      expect(routesOf(OidcLogin.router(custom))).toEqual(["GET /sso", "GET /oidc/callback", "POST /oidc/logout"])
      expect(routesOf(yield* OidcLogin.make(custom))).toEqual(["GET /sso", "GET /oidc/callback", "POST /oidc/logout"])
    }))
})

describe("the transactions' index", () => {
  it.effect("what a browser sends as its index is read, never trusted: malformed, expired, far-future and repeated entries are skipped", () =>
    Effect.sync(() => {
      const now = 1_000_000
      const entry = (id: string, expiresAt: number, size = 300): Transaction.Entry => ({ id, expiresAt, size })
      const a = entry("aaaaaaaaaaaaaaaa", now + 1000)
      const b = entry("bbbbbbbbbbbbbbbb", now + 2000)
      const written = Transaction.writeIndex([b, a])
      expect(written).toMatch(/^[0-9a-z_.]+$/)
      expect(Transaction.readIndex(written, now, now + 600_000)).toEqual([a, b])
      const planted = Transaction.writeIndex([entry("cccccccccccccccc", now + 10_000_000), entry("dddddddddddddddd", now - 1)])
      expect(Transaction.readIndex(`${written}.${planted}.${written}.x_y_z.;`, now, now + 600_000)).toEqual([a, b])
      expect(Transaction.readIndex(undefined, now, now + 600_000)).toEqual([])
      // the oldest go first, past the count or the bytes; the new one always stays
      const c = entry("cccccccccccccccc", now + 3000)
      expect(Transaction.admit([a, b], c, 2)).toEqual({ kept: [b, c], dropped: [a] })
      expect(Transaction.admit([a, b], c, 10)).toEqual({ kept: [a, b, c], dropped: [] })
      expect(Transaction.admit([a, b], { ...c, size: 3700 }, 10)).toEqual({ kept: [b, { ...c, size: 3700 }], dropped: [a] })
      expect(Transaction.admit([a, b], { ...c, size: 4000 }, 10)).toEqual({ kept: [{ ...c, size: 4000 }], dropped: [a, b] })
    }))
})
