/**
 * Authentication for `@effect/platform` HTTP servers: who is making a request, login and logout
 * with a session cookie, and the plain-router middleware. `http/Authentication` wraps the same
 * service as `HttpApiMiddleware` for `HttpApi`.
 *
 * Credentials come from request sources (`http/RequestSource`), folded in order: the first source
 * present decides. Without `sources`, the options build this list:
 *
 * 1. `Authorization: Bearer <token>` → credentials `{ token }` (when `bearer`, default on).
 * 2. The API-key header (when `apiKey` is set) → `{ token }`, or `{ apiKey }` with
 *    `field: "apiKey"`.
 * 3. `Authorization: Basic <base64(user:password)>` → `{ username, password }` (when `basic`,
 *    default off: browsers answer its challenge with a login dialog). The password is what
 *    follows the first colon, so it may contain colons. Like the two below, a browser sends it on
 *    its own (a cached login), so it comes after the header sources and is CSRF-checked.
 * 4. The remote-user header set by a trusted reverse proxy (when `remoteUser` is set) →
 *    `Credentials.RemoteUser`, for `backends/RemoteUserBackend`.
 * 5. The session cookie (when a `Session` service is provided and `session` is not `false`).
 *
 * The `Authorization` header is parsed here, strictly: one scheme (case-insensitive), one space,
 * one token68. `Token x`, `Bearer` without a token, two spaces, bad base64, a Basic value without a
 * colon or with control characters are all a 401, never a fall-through to the cookie. A header
 * that is absent is no credentials (never an empty string).
 *
 * Status mapping (bodies are empty: they never say which backend or why):
 *
 * | outcome | status |
 * |---|---|
 * | `AuthenticationFailed` (no backend matched), `PermissionDenied` (a backend refused the user: answered as a failed login, as Django's `authenticate()` returns `None`, so a denied account's right password is not told from a wrong one), malformed header, anonymous on a protected route | 401 + `WWW-Authenticate` |
 * | CSRF failure, missing permission | 403 |
 * | `LockedOut` (see `Lockout`); at a step-up, a second factor's throttle (`NoMatch("throttled")`) | 429 + `Retry-After` |
 * | `BackendUnavailable`, `TransportError`, session store down | 503 |
 *
 * `WWW-Authenticate` lists a challenge per enabled header scheme, e.g.
 * `Bearer realm="api", Basic realm="api", charset="UTF-8"` (`Session realm="api"` when only
 * cookies are enabled).
 *
 * Session cookies are `HttpOnly`, `SameSite=Lax`, `Path=/` by default, `Secure` when configured,
 * and last `Session`'s `maxAge`, or end with the browser (no `Max-Age`) where the login asked for
 * it ({@link LoginOptions}) or the site does (`Session`'s `expireAtBrowserClose`). A cookie whose session is gone (expired, logged out, stale
 * password) is deleted in the response. Login also sets the CSRF cookie (see `http/Csrf`), and
 * both are deleted by logout. A session verified under one of `Session`'s `fallbackSecrets` moves
 * to a new id (Django's `get_user` cycles the key): the response sets the new cookies, and the rest
 * of the request goes by the new id. A response the session cookie decided (the request reached
 * the cookie among its sources, or logged in or out) carries `Vary: Cookie`, added to the app's own
 * `Vary` as Django's `SessionMiddleware` adds it, so that a shared cache keeps it to its user; a
 * request a bearer token decided gets none.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { HttpAuth } from "effect-auth"
 *
 * // Needs AuthService; uses Session when it is provided.
 * const HttpAuthLive = HttpAuth.layer({
 *   realm: "example",
 *   basic: true,
 *   apiKey: { header: "X-API-Key" },
 *   session: { secure: true },
 *   csrf: { trustedOrigins: ["https://app.example.com"] }
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as Headers from "@effect/platform/Headers"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { AuthConfigError } from "../AuthError.js"
import * as AuthService from "../AuthService.js"
import type * as Credentials from "../Credentials.js"
import * as Failures from "../internal/http/failures.js"
import * as AuthAttempt from "../internal/authAttempt.js"
import * as Fold from "../internal/http/fold.js"
import * as FormBody from "../internal/http/formBody.js"
import * as LoginRedirect from "../internal/http/loginRedirect.js"
import * as Compile from "../internal/http/make.js"
import * as RequestContext from "../internal/http/requestContext.js"
import * as Permissions from "../Permissions.js"
import type * as Session from "../Session.js"
import type { User } from "../User.js"
import type * as Csrf from "./Csrf.js"
import * as CurrentUser from "./CurrentUser.js"
import type * as RequestSource from "./RequestSource.js"

/**
 * The session cookie.
 *
 * @example
 * ```ts
 * import type { HttpAuth } from "effect-auth"
 *
 * const cookie: HttpAuth.SessionCookieOptions = { name: "sid", secure: true, sameSite: "strict" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionCookieOptions extends RequestSource.SessionCookieOptions {}

/**
 * The API-key header.
 *
 * @example
 * ```ts
 * import type { HttpAuth } from "effect-auth"
 *
 * const apiKey: HttpAuth.ApiKeyOptions = { header: "X-API-Key", field: "apiKey" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ApiKeyOptions {
  /** E.g. `"X-API-Key"`. */
  readonly header: string
  /** The credentials key the value goes under: `{ token }` (default) or `{ apiKey }`. */
  readonly field?: "token" | "apiKey" | undefined
}

/**
 * The remote-user header, set by a reverse proxy that authenticated the user. Enable it only
 * behind a proxy that removes the header from what clients send.
 *
 * @example
 * ```ts
 * import type { HttpAuth } from "effect-auth"
 *
 * const remoteUser: HttpAuth.RemoteUserOptions = { header: "X-Remote-User", persistent: true }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RemoteUserOptions {
  /**
   * The header as the proxy sends it, dashed: `"X-Remote-User"`. Default: `"Remote-User"`. A name
   * with `_` fails the layer with `AuthConfigError`: Django's META key `HTTP_X_REMOTE_USER` is the
   * header `X-Remote-User`, and a header spelled with underscores is one the proxy does not set
   * (nor strip), so any client could send it.
   */
  readonly header?: string | undefined
  /**
   * Keep the session when a later request comes without the header (Django's
   * `PersistentRemoteUserMiddleware`). Default: `false`, the header's absence logs out a session
   * that the remote-user backend started.
   */
  readonly persistent?: boolean | undefined
  /** Id of the `RemoteUserBackend` in the `AuthService` chain. Default: `"remote-user"`. */
  readonly backendId?: string | undefined
}

/**
 * The options of {@link layer}. Either `sources` (the request sources in order) or the shorthand
 * `bearer` / `basic` / `apiKey` / `remoteUser` / `session`, not both.
 *
 * @example
 * ```ts
 * import type { HttpAuth } from "effect-auth"
 *
 * const options: HttpAuth.Options = {
 *   realm: "api",
 *   basic: true,
 *   apiKey: { header: "X-API-Key" },
 *   session: { secure: true },
 *   csrf: { trustedOrigins: ["https://app.example.com"] }
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The realm of the `WWW-Authenticate` challenges. Default: `"api"`. */
  readonly realm?: string | undefined
  /**
   * The request sources, folded in order (see `http/RequestSource`). A session-cookie source
   * requires the `Session` service. Replaces the five shorthand options below.
   */
  readonly sources?: ReadonlyArray<RequestSource.RequestSource> | undefined
  /**
   * Session cookies. Default: on when a `Session` service is provided. `false` turns them off;
   * options (or `true`) require the `Session` service.
   */
  readonly session?: boolean | SessionCookieOptions | undefined
  /** `Authorization: Bearer`. Default: `true`. */
  readonly bearer?: boolean | undefined
  /** `Authorization: Basic`. Default: `false`. */
  readonly basic?: boolean | undefined
  readonly apiKey?: ApiKeyOptions | undefined
  /** Default: off. `true` for the defaults. */
  readonly remoteUser?: boolean | RemoteUserOptions | undefined
  readonly csrf?: Csrf.Options | undefined
  /**
   * The reverse proxies in front of the app, as addresses or CIDR ranges (`"10.0.0.0/8"`,
   * `"::1"`). When the connection comes from one of them, the client address handed to backends,
   * events and `Lockout` (`AuthRequest.remoteAddress`) is the rightmost `X-Forwarded-For` hop
   * that is not a trusted proxy; from anyone else the header is ignored. Default: none, the
   * socket's peer is the client.
   */
  readonly trustedProxies?: ReadonlyArray<string> | undefined
}

/**
 * Options of a login ({@link login}, {@link loginAs}): the choice a login form's "remember me" box
 * makes, which the app maps from its own field. See `Session.LoginOptions`.
 *
 * @example
 * ```ts
 * import { Effect, Redacted, Schema } from "effect"
 * import { HttpServerRequest } from "@effect/platform"
 * import { HttpAuth } from "effect-auth"
 *
 * const Form = Schema.Struct({ username: Schema.String, password: Schema.Redacted(Schema.String), remember: Schema.optional(Schema.String) })
 * const handler = Effect.flatMap(HttpServerRequest.schemaBodyUrlParams(Form), ({ password, remember, username }) => {
 *   // an unticked checkbox is not sent: the cookie then ends with the browser
 *   const options: HttpAuth.LoginOptions = { expireAtBrowserClose: remember !== "on" }
 *   return HttpAuth.login({ username, password }, options)
 * })
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export interface LoginOptions {
  /**
   * `true`: the session's cookies carry no `Max-Age` and end with the browser (Django's
   * `set_expiry(0)`); `false`: they last `Session`'s `maxAge` even where `Session`'s
   * `expireAtBrowserClose` is on. Absent: `Session`'s `expireAtBrowserClose` decides. Kept with
   * the session, for the cookies of its password change and second factor too.
   */
  readonly expireAtBrowserClose?: boolean | undefined
}

/**
 * 429 Too Many Requests: the credentials' username or the client address is locked out (see the
 * `Lockout` module). `retryAfter` is the lock's remaining time in whole seconds, sent as the
 * `Retry-After` header (0 for a failure decoded from a peer, which has none).
 *
 * @example
 * ```ts
 * import { HttpAuth } from "effect-auth"
 *
 * const failure = new HttpAuth.TooManyRequests()
 * HttpAuth.toResponse(failure).status // 429
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export const TooManyRequests: typeof Failures.TooManyRequests = Failures.TooManyRequests

/**
 * @example
 * ```ts
 * import { HttpAuth } from "effect-auth"
 *
 * const seconds = (failure: HttpAuth.TooManyRequests): number => failure.retryAfter
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export type TooManyRequests = Failures.TooManyRequests

/**
 * What the HTTP layer fails with: 401, 403, 429 (locked out, with `Retry-After`) or 503, with
 * empty bodies.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpApiError } from "@effect/platform"
 * import type { HttpAuth } from "effect-auth"
 *
 * const refuse: Effect.Effect<never, HttpAuth.Failure> = Effect.fail(new HttpApiError.Forbidden())
 * ```
 * @since 0.1.0
 * @category models
 */
export type Failure =
  | HttpApiError.Unauthorized
  | HttpApiError.Forbidden
  | HttpApiError.ServiceUnavailable
  | Failures.TooManyRequests

/**
 * Schema of {@link Failure}, the `failure` of the `HttpApiMiddleware`s.
 *
 * @example
 * ```ts
 * import { HttpApiEndpoint } from "@effect/platform"
 * import { HttpAuth } from "effect-auth"
 *
 * const login = HttpApiEndpoint.post("login", "/login").addError(HttpAuth.Failure)
 * ```
 * @since 0.1.0
 * @category schemas
 */
export const Failure: Schema.Schema<Failure, void> = Schema.Union(
  HttpApiError.Unauthorized,
  HttpApiError.Forbidden,
  HttpApiError.ServiceUnavailable,
  Failures.TooManyRequests
) as any

/**
 *
 * @example
 * ```ts
 * import { HttpServerRequest } from "@effect/platform"
 * import { Effect } from "effect"
 * import { HttpAuth } from "effect-auth"
 *
 * const who = Effect.gen(function*() {
 *   const service: HttpAuth.Service = yield* HttpAuth.HttpAuth
 *   return yield* service.authenticate(yield* HttpServerRequest.HttpServerRequest)
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Who made the request: none for an anonymous one. Memoised per request. */
  readonly authenticate: (
    request: HttpServerRequest.HttpServerRequest
  ) => Effect.Effect<Option.Option<CurrentUser.Info>, Failure>
  /**
   * Authenticates the credentials and starts a session (sets the cookies). Needs sessions. A
   * second-factor backend (`AuthBackend.secondFactor`, `TotpBackend`) is not asked (the fold's
   * `AuthRequest` is at `stage: "login"`), and its success would be a 401: a code alone is no
   * login. `options`: the session's choice of cookie ("remember me").
   */
  readonly login: (
    request: HttpServerRequest.HttpServerRequest,
    credentials: Credentials.Input,
    options?: LoginOptions
  ) => Effect.Effect<Session.SessionUser, Failure>
  /** Starts a session for a user authenticated otherwise (e.g. an OAuth callback). Needs sessions. */
  readonly loginAs: (
    request: HttpServerRequest.HttpServerRequest,
    authenticated: AuthService.Authenticated,
    options?: LoginOptions
  ) => Effect.Effect<Session.SessionUser, Failure>
  /**
   * Verifies a second factor for the user of the request's session (asks the fold with
   * `{ username, otpToken }`, as `TotpBackend` takes it) and marks the session as having passed
   * it, under a new id (new cookie). 401 without a live session, when the code is refused, or
   * when the backend that said yes is no second factor (`AuthBackend.secondFactor`). 429 with
   * `Retry-After` when the second factor's throttle took no attempt (`NoMatch("throttled")`: the
   * code was not checked; ask for it again after the wait), as for a lockout.
   */
  readonly stepUp: (
    request: HttpServerRequest.HttpServerRequest,
    otpToken: string | Redacted.Redacted<string>
  ) => Effect.Effect<Session.SessionUser, Failure>
  /**
   * The CSRF token of the live session the request resolved to, masked afresh (`Csrf.mask`): what
   * a page renders into its forms' `csrfmiddlewaretoken` field, as Django's `get_token`. None for
   * a request without a live session (anonymous, or authenticated by a bearer token or API key
   * before its cookie was read).
   */
  readonly csrfToken: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<Option.Option<Redacted.Redacted<string>>, Failure>
  /**
   * Ends the request's session (if any) and deletes the cookies. A safe method (`GET`, ...) is
   * refused with 403, as are `login` and `stepUp` by one: it is not CSRF-checked.
   */
  readonly logout: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<void, Failure>
  /**
   * Keeps the request's session after its user changed their password (new id, new cookie): only
   * the session the request was authenticated by, as Django's `request.user == user` check.
   */
  readonly updateSessionAuthHash: (
    request: HttpServerRequest.HttpServerRequest,
    user: User
  ) => Effect.Effect<void, Failure>
  /** Fails with 401 and adds the `WWW-Authenticate` header to the response. */
  readonly unauthorized: Effect.Effect<never, HttpApiError.Unauthorized>
  /** The `WWW-Authenticate` value. */
  readonly challenge: string
  readonly csrf: Csrf.Settings
}

/**
 * The HTTP authentication service; build it with {@link layer}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpAuth } from "effect-auth"
 *
 * const challenge = Effect.map(HttpAuth.HttpAuth, (service) => service.challenge)
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class HttpAuth extends Context.Tag("effect-auth/http/HttpAuth")<HttpAuth, Service>() {}

/**
 * Builds the service on `AuthService` (and `Session`, when provided). Fails with
 * `AuthConfigError` on a bad option: a header or cookie name that is not an HTTP token, a
 * remote-user header with `_` (Django's `HTTP_X_REMOTE_USER` is the header `X-Remote-User`), an empty
 * query parameter name in a custom source's `query`, a `Session`-requiring option without the
 * service, a remote-user backend id that is not in the chain, `sources` together with the
 * shorthand options.
 *
 * Prefer {@link layer}: it also adds the headers that carry a secret here (an API key's header, a
 * custom source's, the CSRF header) to the platform's `Headers.currentRedactedNames`, so that the
 * server's request span records them as `<redacted>`. A service built with `make` alone leaves that
 * list as it is.
 *
 * @example
 * ```ts
 * import { HttpAuth } from "effect-auth"
 *
 * const service = HttpAuth.make({ apiKey: { header: "X-API-Key", field: "apiKey" } })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, AuthConfigError, AuthService.AuthService> =>
  Effect.map(Compile.make(options), ({ fold, service }) => Fold.register(service, fold))

/**
 * The service as a layer. Provide `Session.layer(...)` beside `AuthService` to enable cookies.
 * With `session: true` (or cookie options) the layer needs `Session` in its type, so a forgotten
 * session layer does not compile. `AuthStack.layer` wires all of it in one call.
 *
 * @example
 * ```ts
 * import { Layer, Redacted } from "effect"
 * import { HttpAuth, MemorySessionStore, Session, TestAuth, TestBackend } from "effect-auth"
 *
 * const AuthLive = TestAuth.layer([TestBackend.succeed("sso", TestBackend.user("alice"))])
 * const SessionLive = Session.layer({ secret: Redacted.make("a long random app secret, 32+ chars") }).pipe(
 *   Layer.provide(MemorySessionStore.layer)
 * )
 *
 * const HttpAuthLive = HttpAuth.layer({ session: { secure: true } }).pipe(
 *   Layer.provide(SessionLive),
 *   Layer.provideMerge(AuthLive)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: {
  (
    options: Options & { readonly session: true | SessionCookieOptions }
  ): Layer.Layer<HttpAuth, AuthConfigError, AuthService.AuthService | Session.Session>
  (options?: Options): Layer.Layer<HttpAuth, AuthConfigError, AuthService.AuthService>
} = (options: Options = {}): Layer.Layer<HttpAuth, AuthConfigError, AuthService.AuthService> =>
  Layer.scopedContext(Effect.gen(function*() {
    const compiled = yield* Compile.make(options)
    // The platform's server span records every request header but those it is told to redact
    // (by default `authorization`, `cookie`, `set-cookie`, `x-api-key`): an API key sent as
    // `X-Auth-Token`, or the CSRF token, would be in every trace. The list is a FiberRef, so the
    // layer sets it for whatever is built after it, the server included.
    yield* Effect.locallyScopedWith(Headers.currentRedactedNames, (names) => withSecretHeaders(names, compiled.secretHeaders))
    return Context.make(HttpAuth, Fold.register(compiled.service, compiled.fold))
  }))

const withSecretHeaders = (
  names: ReadonlyArray<string | RegExp>,
  secretHeaders: ReadonlyArray<string>
): ReadonlyArray<string | RegExp> => {
  const missing = secretHeaders.filter((header) =>
    !names.some((name) => typeof name === "string" ? name.toLowerCase() === header : name.test(header))
  )
  return missing.length === 0 ? names : [...names, ...missing]
}

const withRequest = <A, E>(
  f: (service: Service, request: HttpServerRequest.HttpServerRequest) => Effect.Effect<A, E>
): Effect.Effect<A, E, HttpAuth | HttpServerRequest.HttpServerRequest> =>
  Effect.contextWithEffect((context: Context.Context<HttpAuth | HttpServerRequest.HttpServerRequest>) =>
    f(Context.unsafeGet(context, HttpAuth), Context.unsafeGet(context, HttpServerRequest.HttpServerRequest))
  )

/**
 * The request's user, or 401.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpAuth } from "effect-auth"
 *
 * const me = Effect.map(HttpAuth.currentUser, ({ user }) => user.username)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const currentUser: Effect.Effect<
  CurrentUser.Info,
  Failure,
  HttpAuth | HttpServerRequest.HttpServerRequest
> = withRequest((service, request) =>
  Effect.flatMap(
    service.authenticate(request),
    Option.match({ onNone: () => service.unauthorized, onSome: Effect.succeed })
  )
)

/**
 * The request's user, if any. Invalid credentials are still a 401 (a wrong bearer token is not
 * "anonymous"); a session that is gone is anonymous.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { HttpAuth } from "effect-auth"
 *
 * const name = Effect.map(HttpAuth.optionalUser, Option.map(({ user }) => user.username))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const optionalUser: Effect.Effect<
  Option.Option<CurrentUser.Info>,
  Failure,
  HttpAuth | HttpServerRequest.HttpServerRequest
> = withRequest((service, request) => service.authenticate(request))

/**
 * Authenticates `credentials` (e.g. the decoded login payload; typed as `Credentials.Input`, so
 * a shape no backend takes does not compile) and starts a session: sets the
 * session and CSRF cookies and answers the session (its `csrfToken` is for the client). The old
 * session of the request, if any, is discarded. CSRF: the Origin/Referer check always applies
 * (login CSRF); a request that carries a live session must also send its token (a session the
 * middleware would not serve, its user's password changed since say, is ended and asks for none,
 * whether or not a middleware resolved the request first). A `username` is
 * cleaned first as Django's `AuthenticationForm` cleans it: stripped (Python's `str.strip()`: a
 * phone's trailing space, an ideographic space), then NFKC-normalised (`ｊｏｅ` → `joe`). A second
 * factor's success (`TotpBackend`) starts no session: 401. Nor does an inactive user that a
 * backend let authenticate (`ModelBackend`'s `allowInactive`, Django's
 * `AllowAllUsersModelBackend`), as the form's `confirm_login_allowed` refuses it: 401.
 *
 * `options.expireAtBrowserClose` is the login's "remember me" ({@link LoginOptions}): `true` sends
 * the cookies without `Max-Age`, `false` makes them last even where `Session`'s
 * `expireAtBrowserClose` is on; the choice stays with the session.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { HttpAuth } from "effect-auth"
 *
 * const handler = (payload: {
 *   readonly username: string
 *   readonly password: Redacted.Redacted<string>
 *   readonly rememberMe: boolean
 * }) =>
 *   HttpAuth.login(
 *     { username: payload.username, password: payload.password },
 *     { expireAtBrowserClose: !payload.rememberMe }
 *   ).pipe(
 *     Effect.map(({ csrfToken, user }) => ({ username: user.username, csrfToken: Redacted.value(csrfToken) }))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const login = (
  credentials: Credentials.Input,
  options?: LoginOptions
): Effect.Effect<Session.SessionUser, Failure, HttpAuth | HttpServerRequest.HttpServerRequest> =>
  withRequest((service, request) => service.login(request, credentials, options))

/**
 * Starts a session for a user your own code authenticated; `options` as {@link login}'s.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, HttpAuth } from "effect-auth"
 *
 * const callback = (credentials: unknown) =>
 *   Effect.flatMap(AuthService.authenticateUnknown(credentials), (authenticated) => HttpAuth.loginAs(authenticated))
 * // a login that ends with the browser
 * const forNow = (credentials: unknown) =>
 *   Effect.flatMap(AuthService.authenticateUnknown(credentials), (authenticated) =>
 *     HttpAuth.loginAs(authenticated, { expireAtBrowserClose: true }))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const loginAs = (
  authenticated: AuthService.Authenticated,
  options?: LoginOptions
): Effect.Effect<Session.SessionUser, Failure, HttpAuth | HttpServerRequest.HttpServerRequest> =>
  withRequest((service, request) => service.loginAs(request, authenticated, options))

/**
 * Verifies the second factor the user typed and steps the request's session up (new id, new
 * cookie); CSRF-checked like a login. Routes then pass `CurrentUser.requireSecondFactor`.
 *
 * @example
 * ```ts
 * import { HttpServerRequest } from "@effect/platform"
 * import { Effect, Schema } from "effect"
 * import { HttpAuth } from "effect-auth"
 *
 * const verify = Effect.flatMap(
 *   HttpServerRequest.schemaBodyJson(Schema.Struct({ otpToken: Schema.String })),
 *   ({ otpToken }) => HttpAuth.stepUp(otpToken)
 * )
 * ```
 *
 * @since 0.2.0
 * @category accessors
 */
export const stepUp = (
  otpToken: string | Redacted.Redacted<string>
): Effect.Effect<Session.SessionUser, Failure, HttpAuth | HttpServerRequest.HttpServerRequest> =>
  withRequest((service, request) => service.stepUp(request, otpToken))

/**
 * Ends the request's session and deletes the cookies; CSRF-checked like any unsafe request.
 *
 * @example
 * ```ts
 * import { HttpAuth } from "effect-auth"
 *
 * const handler = HttpAuth.logout
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const logout: Effect.Effect<void, Failure, HttpAuth | HttpServerRequest.HttpServerRequest> = withRequest((
  service,
  request
) => service.logout(request))

/**
 * The CSRF token of the request's live session, masked afresh, for a page to render into its
 * forms (Django's `get_token` and `{% csrf_token %}`); none without a live session. See
 * {@link Service.csrfToken}.
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect, Option, Redacted } from "effect"
 * import { HttpAuth } from "effect-auth"
 *
 * const page = Effect.map(HttpAuth.csrfToken, (token) =>
 *   HttpServerResponse.html(`<form method="post" action="/notes">
 *   <input type="hidden" name="csrfmiddlewaretoken" value="${Option.match(token, { onNone: () => "", onSome: Redacted.value })}">
 *   <button>Save</button>
 * </form>`))
 * ```
 *
 * @since 0.3.0
 * @category accessors
 */
export const csrfToken: Effect.Effect<
  Option.Option<Redacted.Redacted<string>>,
  Failure,
  HttpAuth | HttpServerRequest.HttpServerRequest
> = withRequest((service, request) => service.csrfToken(request))

/**
 * After the request's user changed their own password, keeps their session (under a new id)
 * while every other session of theirs ends. Pass the user as reloaded after the change.
 *
 * Only the session the request resolved to, as `user`, is kept (Django's `request.user == user`):
 * a request decided by a bearer token or API key before its session cookie was read leaves that
 * session alone (after the change it is stale, and ends when next used), so a cookie carried
 * along never brings back a session an earlier password change ended.
 *
 * @example
 * ```ts
 * import { HttpAuth } from "effect-auth"
 *
 * const afterPasswordChange = (reloaded: Parameters<typeof HttpAuth.updateSessionAuthHash>[0]) =>
 *   HttpAuth.updateSessionAuthHash(reloaded)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const updateSessionAuthHash = (
  user: User
): Effect.Effect<void, Failure, HttpAuth | HttpServerRequest.HttpServerRequest> =>
  withRequest((service, request) => service.updateSessionAuthHash(request, user))

/**
 * The response for a {@link Failure}: 401, 403, 429 or 503 with an empty body (the 401 gets its
 * `WWW-Authenticate` header from the handler that `unauthorized` registered; the 429 its
 * `Retry-After`).
 *
 * @example
 * ```ts
 * import { HttpApiError } from "@effect/platform"
 * import { HttpAuth } from "effect-auth"
 *
 * HttpAuth.toResponse(new HttpApiError.Forbidden()).status // 403
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const toResponse = (failure: Failure): HttpServerResponse.HttpServerResponse => Failures.toResponse(failure)

// The plain-router middlewares: the request's permission cache (made on first use), the user and
// the optional user reach the app in one context change, made without `Effect.locally`'s
// acquire/release (see `internal/http/requestContext`).
const withUser = <E, R>(
  app: HttpApp.Default<E, R>,
  required: boolean,
  anonymous?: (request: HttpServerRequest.HttpServerRequest) => HttpServerResponse.HttpServerResponse
): HttpApp.Default<any, any> =>
  Effect.catchIf(
    Effect.withFiberRuntime((fiber) => {
      const context = fiber.currentContext as Context.Context<any>
      const service = context.unsafeMap.get(HttpAuth.key) as Service
      const cache = RequestContext.lazyCache()
      const request: HttpServerRequest.HttpServerRequest = context.unsafeMap.get(HttpServerRequest.HttpServerRequest.key)
      const resolved = Fold.resolveIn(service, request, cache, fiber)
      const next = (
        user: Option.Option<CurrentUser.Info>
      ): Effect.Effect<HttpServerResponse.HttpServerResponse, E | Failure, R | HttpServerRequest.HttpServerRequest> =>
        required && Option.isNone(user)
          ? anonymous === undefined ? service.unauthorized : Effect.succeed(anonymous(request))
          : RequestContext.runWith(app, context, cache, user, required, FormBody.replacement(request))
      // Resolved on the spot (backends that answered with `Exit`s): no fiber step in between.
      return AuthAttempt.flatMapNow(resolved, next)
    }),
    Failures.isFailure,
    Failures.respond
  )

/**
 * Plain-router middleware: resolves the request's user (if any) and provides `OptionalUser`, runs
 * the app in a permission request cache, and turns every {@link Failure} (of the resolution or of
 * the app: `CurrentUser.requirePermission`, `HttpAuth.login`, ...) into its response.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect, Option } from "effect"
 * import { CurrentUser, HttpAuth } from "effect-auth"
 *
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.get("/hello", Effect.map(CurrentUser.OptionalUser, (user) =>
 *     HttpServerResponse.text(Option.match(user, { onNone: () => "hello", onSome: (u) => `hello ${u.user.username}` })))),
 *   HttpRouter.use(HttpAuth.middleware)
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = <E, R>(
  app: HttpApp.Default<E, R>
): HttpApp.Default<Exclude<E, Failure>, Exclude<R, CurrentUser.OptionalUser> | HttpAuth> => withUser(app, false)

/**
 * Plain-router middleware for protected routes: as {@link middleware}, but an anonymous request
 * gets a 401 and the app gets `CurrentUser`.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 * import { CurrentUser, HttpAuth } from "effect-auth"
 *
 * const reports = HttpRouter.empty.pipe(
 *   HttpRouter.get("/reports", Effect.zipRight(CurrentUser.requirePermission("reports.view_report"), HttpServerResponse.text("ok"))),
 *   HttpRouter.use(HttpAuth.requireUser)
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const requireUser = <E, R>(
  app: HttpApp.Default<E, R>
): HttpApp.Default<Exclude<E, Failure>, Exclude<Exclude<R, CurrentUser.CurrentUser>, CurrentUser.OptionalUser> | HttpAuth> =>
  withUser(app, true)

/**
 * The options of {@link requireLogin}.
 *
 * @example
 * ```ts
 * import type { HttpAuth } from "effect-auth"
 *
 * const options: HttpAuth.LoginRedirectOptions = { loginUrl: "/accounts/login/", redirectFieldName: "next" }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface LoginRedirectOptions {
  /** The login page (Django's `LOGIN_URL`): a path on this site, which may carry a query. */
  readonly loginUrl: string
  /** The query parameter that tells the login page where the user was going; `false` for none. Default: `"next"`. */
  readonly redirectFieldName?: string | false | undefined
}

/**
 * Plain-router middleware for the pages of a server-rendered site: as {@link requireUser}, but an
 * anonymous request is sent (302) to the login page with where it was going, as Django's
 * `login_required` does: `/accounts/login/?next=/reports/%3Fq%3D1`. The login page follows that
 * `next` once the user has signed in, when `SafeRedirect.isAllowed` allows it. Credentials that
 * are wrong (a bad bearer token) or refused (a backend's `PermissionDenied`) are still a 401, a locked-out login a 429.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 * import { CurrentUser, HttpAuth } from "effect-auth"
 *
 * const pages = HttpRouter.empty.pipe(
 *   HttpRouter.get("/reports", Effect.map(CurrentUser.CurrentUser, ({ user }) => HttpServerResponse.html(`<h1>${user.username}</h1>`))),
 *   HttpRouter.use(HttpAuth.requireLogin({ loginUrl: "/accounts/login/" }))
 * )
 * ```
 *
 * @since 0.3.0
 * @category middleware
 */
export const requireLogin = (options: LoginRedirectOptions) => {
  const field = options.redirectFieldName ?? "next"
  // `originalUrl`: the whole path and query (Django's `get_full_path()`), not a mounted router's rest.
  const toLogin = (request: HttpServerRequest.HttpServerRequest) =>
    HttpServerResponse.redirect(LoginRedirect.toLogin(options.loginUrl, field, request.originalUrl), { status: 302 })
  return <E, R>(
    app: HttpApp.Default<E, R>
  ): HttpApp.Default<Exclude<E, Failure>, Exclude<Exclude<R, CurrentUser.CurrentUser>, CurrentUser.OptionalUser> | HttpAuth> =>
    withUser(app, true, toLogin)
}
