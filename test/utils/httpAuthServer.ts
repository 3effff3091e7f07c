/**
 * A small example `HttpApi` app behind effect-auth (POST /login, POST /logout, GET /me, a
 * permission-protected endpoint, ...), served by NodeHttpServer on 127.0.0.1 and a random port,
 * and a real HTTP client (FetchHttpClient) to talk to it. The HTTP test files build it with the
 * options under test.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as Cookies from "@effect/platform/Cookies"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as http from "node:http"
import * as AuthBackend from "../../src/AuthBackend.js"
import * as AuthError from "../../src/AuthError.js"
import * as AuthService from "../../src/AuthService.js"
import * as ModelBackend from "../../src/backends/ModelBackend.js"
import * as Credentials from "../../src/Credentials.js"
import * as Authentication from "../../src/http/Authentication.js"
import * as CurrentUser from "../../src/http/CurrentUser.js"
import * as HttpAuth from "../../src/http/HttpAuth.js"
import * as MemorySessionStore from "../../src/MemorySessionStore.js"
import * as MemoryUserStore from "../../src/MemoryUserStore.js"
import * as PasswordHasher from "../../src/PasswordHasher.js"
import * as Session from "../../src/Session.js"
import type * as SessionStore from "../../src/SessionStore.js"
import * as TestAuth from "../../src/testing/TestAuth.js"
import * as TestBackend from "../../src/testing/TestBackend.js"
import * as UserStore from "../../src/UserStore.js"

// --- the example API ---------------------------------------------------------------------------

const LoginPayload = Schema.Struct({ username: Schema.String, password: Schema.Redacted(Schema.String) })
// The login form's "remember me", which the app maps to the session's choice of cookie.
const LoginForm = Schema.Struct({ ...LoginPayload.fields, rememberMe: Schema.optional(Schema.Boolean) })
const LoginResult = Schema.Struct({ username: Schema.String, csrfToken: Schema.String })
const Me = Schema.Struct({
  id: Schema.String,
  username: Schema.String,
  backend: Schema.String,
  method: Schema.String,
  degraded: Schema.Boolean
})

export class AuthGroup extends HttpApiGroup.make("auth")
  .add(HttpApiEndpoint.post("login", "/login").setPayload(LoginForm).addSuccess(LoginResult))
  .add(HttpApiEndpoint.post("logout", "/logout"))
  .add(HttpApiEndpoint.get("whoami", "/whoami").addSuccess(Schema.NullOr(Schema.String)))
  .middleware(Authentication.OptionalAuthentication)
{}

export class AccountGroup extends HttpApiGroup.make("account")
  .add(HttpApiEndpoint.get("me", "/me").addSuccess(Me))
  .add(HttpApiEndpoint.get("reports", "/reports").addSuccess(Schema.Array(Schema.String)))
  .add(HttpApiEndpoint.get("reportsAny", "/reports/any").addSuccess(Schema.String))
  .add(HttpApiEndpoint.get("reportsTwice", "/reports/twice").addSuccess(Schema.Boolean))
  .add(HttpApiEndpoint.post("notes", "/notes").addSuccess(Schema.String))
  .add(HttpApiEndpoint.del("note", "/notes").addSuccess(Schema.String))
  .add(HttpApiEndpoint.post("password", "/password").setPayload(Schema.Struct({ password: Schema.String })))
  .middleware(Authentication.Authentication)
{}

export class Api extends HttpApi.make("test").add(AuthGroup).add(AccountGroup) {}

export const AuthGroupLive = HttpApiBuilder.group(Api, "auth", (handlers) =>
  handlers
    .handle("login", ({ payload: { password, rememberMe, username } }) =>
      HttpAuth.login({ username, password }, rememberMe === undefined ? undefined : { expireAtBrowserClose: !rememberMe }).pipe(
        Effect.map(({ csrfToken, user }) => ({ username: user.username, csrfToken: Redacted.value(csrfToken) }))
      ))
    .handle("logout", () => HttpAuth.logout)
    .handle("whoami", () =>
      Effect.map(CurrentUser.OptionalUser, Option.match({ onNone: () => null, onSome: ({ user }) => user.username }))))

export const AccountGroupLive = HttpApiBuilder.group(Api, "account", (handlers) =>
  handlers
    .handle("me", () =>
      Effect.map(CurrentUser.CurrentUser, ({ backend, degraded, method, user }) => ({
        id: user.id,
        username: user.username,
        backend,
        method,
        degraded
      })))
    .handle("reports", () => Effect.as(CurrentUser.requirePermission("reports.view_report"), ["q1", "q2"]))
    .handle("reportsAny", () => Effect.as(CurrentUser.requireModulePerms("reports"), "some"))
    .handle("reportsTwice", () =>
      Effect.gen(function*() {
        const { hasPerm } = yield* CurrentUser.CurrentUser
        const first = yield* Effect.orDie(hasPerm("reports.export_report"))
        const second = yield* Effect.orDie(hasPerm("reports.export_report"))
        return first === second
      }))
    .handle("notes", () => Effect.succeed("noted"))
    .handle("note", () => Effect.succeed("deleted"))
    .handle("password", ({ payload }) =>
      Effect.gen(function*() {
        const { user } = yield* CurrentUser.CurrentUser
        const store = yield* UserStore.UserStore
        const hasher = yield* PasswordHasher.PasswordHasher
        const hash = yield* hasher.hash(Redacted.make(payload.password))
        yield* store.setPassword(user.id, hash)
        const reloaded = yield* store.findById(user.id)
        yield* HttpAuth.updateSessionAuthHash(reloaded.pipe(Option.getOrThrow) as unknown as AuthService.User)
      }).pipe(Effect.orDie)))

// --- backends ------------------------------------------------------------------------------------

const TokenCredentials = Schema.Union(
  Schema.Struct({ token: Credentials.secret(8192) }),
  Schema.Struct({ apiKey: Credentials.secret(8192) })
)

/** Bearer and API-key tokens, each naming a scripted outcome; users come from the user store. */
export const tokensBackend: Effect.Effect<AuthBackend.AuthBackend, never, UserStore.UserStore> = Effect.map(
  UserStore.UserStore,
  (store) =>
    AuthBackend.make({
      id: "tokens",
      credentials: TokenCredentials,
      authenticate: (credentials) => {
        const value = Redacted.value("token" in credentials ? credentials.token : credentials.apiKey)
        switch (value) {
          case "alice-token":
          case "alice.key-with/odd+chars==":
            return Effect.map(Effect.orDie(store.findByUsername("alice")), (u) => Option.getOrThrow(u) as AuthService.User)
          case "locked-token":
            return Effect.fail(new AuthError.PermissionDenied({ backend: "tokens", reason: "member of cn=banned-group" }))
          case "down-token":
            return Effect.fail(new AuthError.TransportError({ backend: "tokens", cause: "ECONNREFUSED 10.9.8.7:389" }))
          default:
            return Effect.fail(new AuthError.NoMatch({ backend: "tokens", reason: "invalid-credentials" }))
        }
      },
      getUser: (id) => Effect.map(Effect.orDie(store.findById(id)), (u) => u as Option.Option<AuthService.User>)
    })
)

/** Answers no permission but records every question (for the per-request cache test). */
export const questions = TestBackend.make("questions", {
  behaviour: TestBackend.Behaviour.noMatch("unsupported-credentials"),
  credentials: Schema.Struct({ questionsOnly: Schema.Literal(true) }),
  permissions: { hasPerm: () => false }
})

export const users = Layer.effectDiscard(
  Effect.gen(function*() {
    const store = yield* UserStore.UserStore
    const hasher = yield* PasswordHasher.PasswordHasher
    const alice = yield* store.create({ username: "alice", passwordHash: yield* hasher.hash(Redacted.make("wonderland")) })
    yield* store.grantPermission(alice.id, "reports.view_report")
    yield* store.create({ username: "bob", passwordHash: yield* hasher.hash(Redacted.make("pa:ss:word")) })
    yield* store.create({ username: "carol", isActive: false, passwordHash: yield* hasher.hash(Redacted.make("carol")) })
  }).pipe(Effect.orDie)
)

export const secret = Redacted.make("test-secret-that-is-long-enough-0123456789")

export interface ServerOptions {
  readonly http?: HttpAuth.Options
  readonly session?: Partial<Session.Options> | false
  /** Default: a fresh memory store. */
  readonly store?: Layer.Layer<SessionStore.SessionStore, unknown>
  /** Backends after the default chain (model, tokens, questions). */
  readonly backends?: ReadonlyArray<AuthBackend.AuthBackend | Effect.Effect<AuthBackend.AuthBackend, never, any>>
  /** Replaces the whole chain. */
  readonly chain?: ReadonlyArray<AuthBackend.AuthBackend | Effect.Effect<AuthBackend.AuthBackend, never, any>>
  /** Default: a fresh memory user store with alice, bob and carol. */
  readonly userStore?: Layer.Layer<UserStore.UserStore, unknown, PasswordHasher.PasswordHasher>
  /** Layers of the backends named in `chain` or `backends` (they get the user store). */
  readonly backendLayer?: Layer.Layer<any, never, UserStore.UserStore>
  /** Default: `PasswordHasher.layerTest` (cheap hashing). */
  readonly hasher?: Layer.Layer<PasswordHasher.PasswordHasher>
}

export const defaultHttp: HttpAuth.Options = {
  realm: "test",
  basic: true,
  apiKey: { header: "X-API-Key" },
  csrf: { trustedOrigins: ["https://trusted.example"] }
}

/** The app's services (without the HTTP server), for tests that look inside. */
export type AppServices =
  | HttpAuth.HttpAuth
  | AuthService.AuthService
  | TestAuth.EventLog
  | UserStore.UserStore
  | PasswordHasher.PasswordHasher

export const appLayer = (options: ServerOptions = {}): Layer.Layer<AppServices, unknown> => {
  const userStore = options.userStore ?? users.pipe(Layer.provideMerge(MemoryUserStore.layer))
  const base = userStore.pipe(Layer.provideMerge(options.hasher ?? PasswordHasher.layerTest))
  const chain = options.chain ?? [ModelBackend.ModelBackend, tokensBackend, questions, ...(options.backends ?? [])]
  const auth = TestAuth.layer(chain).pipe(
    Layer.provide(ModelBackend.layer()),
    Layer.provide(options.backendLayer ?? Layer.empty),
    Layer.provideMerge(base)
  )
  const session = options.session === false
    ? Layer.empty
    : Session.layer({ secret, ...options.session }).pipe(
      Layer.provide(options.store ?? MemorySessionStore.layer)
    )
  return HttpAuth.layer(options.http ?? defaultHttp).pipe(
    Layer.provideMerge(session),
    Layer.provideMerge(auth)
  ) as unknown as Layer.Layer<AppServices, unknown>
}

/** Serves the example API on 127.0.0.1, a random port; answers its base URL and the app's context. */
export const serve = (
  options: ServerOptions = {}
): Effect.Effect<{ readonly url: string; readonly context: Context.Context<never> }, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const app = appLayer(options)
    const server = HttpApiBuilder.serve().pipe(
      Layer.provide(HttpApiBuilder.api(Api)),
      Layer.provide([AuthGroupLive, AccountGroupLive]),
      Layer.provide(Authentication.layer),
      Layer.provideMerge(app),
      Layer.provideMerge(NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" }))
    )
    const context = yield* Layer.build(server)
    const url = HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
    return { url, context: context as Context.Context<never> }
  }) as any

/** Serves a plain-router app over the example's services (`appLayer()`) on 127.0.0.1; answers its URL. */
export const serveApp = (app: HttpApp.Default<unknown, any>): Effect.Effect<string, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const server = HttpServer.serve(app).pipe(
      Layer.provideMerge(appLayer()),
      Layer.provideMerge(NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" }))
    ) as Layer.Layer<HttpServer.HttpServer, unknown>
    const context = yield* Layer.build(server)
    return HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
  })

/** POST /login of the plain-router tests: JSON `{ username, password }`, answered with the CSRF token. */
export const routerLogin = Effect.gen(function*() {
  const payload = yield* Effect.orDie(HttpServerRequest.schemaBodyJson(LoginPayload))
  const started = yield* HttpAuth.login(payload)
  return yield* HttpServerResponse.json({ csrfToken: Redacted.value(started.csrfToken) })
})

// --- the client ----------------------------------------------------------------------------------

export interface Reply {
  readonly status: number
  readonly body: string
  readonly headers: Readonly<Record<string, string>>
  readonly cookies: Cookies.Cookies
  readonly json: () => any
}

export interface RequestOptions {
  readonly headers?: Readonly<Record<string, string>>
  readonly json?: unknown
  /** A body sent as it is, with its content type. */
  readonly body?: { readonly text: string; readonly contentType: string }
}

/** One request with a real HTTP client (fetch); no cookie jar: tests send cookies explicitly. */
export const call = (
  url: string,
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
  path: string,
  options: RequestOptions = {}
): Effect.Effect<Reply> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    let request = HttpClientRequest.make(method)(`${url}${path}`).pipe(HttpClientRequest.setHeaders(options.headers ?? {}))
    if (options.json !== undefined) request = HttpClientRequest.bodyUnsafeJson(request, options.json)
    if (options.body !== undefined) request = HttpClientRequest.bodyText(request, options.body.text, options.body.contentType)
    const response = yield* client.execute(request)
    const body = yield* response.text
    return {
      status: response.status,
      body,
      headers: response.headers,
      cookies: response.cookies,
      json: () => JSON.parse(body)
    }
  }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer), Effect.orDie)

/** `Cookie` header value for the given cookies. */
export const cookieHeader = (cookies: Readonly<Record<string, string>>) =>
  Object.entries(cookies).map(([name, value]) => `${name}=${value}`).join("; ")

export const basic = (username: string, password: string) =>
  `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`

/** Logs in through POST /login; answers the session id and CSRF token the server handed out. */
export const login = (url: string, username: string, password: string, headers: Readonly<Record<string, string>> = {}) =>
  Effect.map(call(url, "POST", "/login", { json: { username, password }, headers }), (reply) => {
    if (reply.status !== 200) throw new Error(`login failed: ${reply.status}`)
    const session = reply.cookies.cookies["sessionid"]!.value
    const csrf = reply.json().csrfToken as string
    return { session, csrf, reply, cookie: cookieHeader({ sessionid: session }) }
  })

export type Served = Effect.Effect.Success<ReturnType<typeof serve>>
