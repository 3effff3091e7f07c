/**
 * The routes of a login with an identity provider (`OidcBackend`), for an `@effect/platform`
 * router:
 *
 * - `GET /oidc/login`: starts a login: a new `state`, `nonce` and PKCE verifier, kept by the
 *   browser in a signed, HttpOnly, ten-minute cookie of its own (`oidc_tx_<id>`, the id named
 *   from the state; path = the callback), and a redirect (302) to the provider. Logins started in
 *   several tabs each keep theirs, up to `maxTransactions` (10) and 4096 bytes together, the
 *   oldest dropped past either (a site-wide `oidc_tx_index` cookie, holding no secret, lists
 *   them for this route). Where the app lets users choose (`rememberFieldName`), the login's
 *   choice of session cookie, "remember me" (`GET /oidc/login?remember=0`: it ends with the
 *   browser; `remember=1`: it lasts), is kept in the signed transaction too, as django-allauth
 *   keeps `remember` in its login state;
 * - `GET /oidc/callback`: the provider's redirect back: the transaction of the callback's
 *   `state` must be there and valid (else 400), and exactly it is cleared, whatever the answer
 *   (the other tabs' logins still finish); the callback URL and the transaction go through the fold as
 *   `OidcBackend.Callback` credentials (so lockout, events and control maps apply); success starts
 *   an ordinary session (`HttpAuth.login`, with the login's choice of cookie as its
 *   `LoginOptions`; none: `Session`'s `expireAtBrowserClose` decides) and redirects (302) to the login's `next` (`GET
 *   /oidc/login?next=/reports`, when `SafeRedirect` allows it: a path or a URL on this host) or
 *   else to `successRedirect`. Refused
 *   (`access_denied` or another error the provider sends back, bad state or nonce, a replayed
 *   code, an ID token for another audience or expired), or denied (`PermissionDenied`): 401;
 *   locked out: 429; the
 *   provider down or broken, or saying so (`error=server_error`, `error=temporarily_unavailable`):
 *   503. Nothing is created for a login that did not verify;
 * - `POST /oidc/logout`: ends the local session (CSRF-checked, as any logout), then redirects
 *   (303) to the provider's `end_session_endpoint` when it advertises one (RP-initiated logout),
 *   else to `postLogoutRedirectUri`.
 *
 * An app that starts logins from a route of its own (a form with its own "remember me" box, say)
 * uses {@link start}, with the same options, and the router's callback finishes them.
 *
 * Needs `HttpAuth` with sessions, `AuthService` (with `OidcBackend` in its chain) and `OidcBackend`.
 * The options are checked when the routes are built: an unusable one is an `AuthConfigError`
 * ({@link make} fails with it, {@link router} throws it).
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { Redacted } from "effect"
 * import * as OidcLogin from "effect-auth/http/OidcLogin"
 *
 * const routes = OidcLogin.router({ secret: Redacted.make(process.env.SECRET_KEY ?? "a-development-secret-only!") })
 * export const app = HttpRouter.empty.pipe(HttpRouter.concat(routes))
 *
 * // at most three logins in flight per browser (a fourth drops the first)
 * export const few = OidcLogin.router({ secret: Redacted.make("at least sixteen characters"), maxTransactions: 3 })
 * ```
 *
 * @since 0.2.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AuthConfigError } from "../AuthError.js"
import type * as Credentials from "../Credentials.js"
import * as OidcBackend from "../backends/OidcBackend.js"
import { fieldOf } from "../internal/fieldOf.js"
import { headerToken } from "../internal/http/cookies.js"
import * as SecretQuery from "../internal/http/secretQuery.js"
import * as StateGuarded from "../internal/http/stateGuarded.js"
import * as Transaction from "../internal/oidc/transaction.js"
import { textOf } from "../internal/redactedString.js"
import * as HttpAuth from "./HttpAuth.js"
import * as SafeRedirect from "./SafeRedirect.js"

/**
 * The routes' options.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type * as OidcLogin from "effect-auth/http/OidcLogin"
 *
 * const options: OidcLogin.Options = {
 *   secret: Redacted.make("at least sixteen characters"),
 *   successRedirect: "/dashboard",
 *   postLogoutRedirectUri: "https://app.example.com/"
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * Signs the transaction cookie: a `Redacted` string of at least 16 characters (the app's
   * `SECRET_KEY` will do).
   */
  readonly secret: Redacted.Redacted<string>
  /** Default: `/oidc/login`. Each path starts with `/` and holds no space, `?` or `#`. */
  readonly loginPath?: `/${string}` | undefined
  /** Default: `/oidc/callback`; the path of the backend's `redirectUri`. Not `loginPath`. */
  readonly callbackPath?: `/${string}` | undefined
  /** Default: `/oidc/logout`. */
  readonly logoutPath?: `/${string}` | undefined
  /**
   * Where a successful login lands when the login was not given a `next` it may follow. Default:
   * `/`.
   */
  readonly successRedirect?: string | undefined
  /**
   * The query parameter of the login route that names where the login should land (`GET
   * /oidc/login?next=/reports`), as Django's `LoginView` and mozilla-django-oidc read it; `false`
   * to ignore it. Followed only when `SafeRedirect.isAllowed` allows it: a path, or a URL on the
   * request's own host or one of `allowedRedirectHosts`, `https` only when `secure`. Default:
   * `"next"`.
   */
  readonly redirectFieldName?: string | false | undefined
  /**
   * The query parameter of the login route that carries the login's "remember me" (with
   * `"remember"`: `GET /oidc/login?remember=0`), kept in the signed transaction and applied at the callback as
   * `HttpAuth.LoginOptions.expireAtBrowserClose`: `1`, a session cookie that lasts `Session`'s
   * `maxAge` even where `Session`'s `expireAtBrowserClose` is on; `0`, one without `Max-Age`, that
   * ends with the browser. Absent, or anything but `1` or `0`: `Session`'s `expireAtBrowserClose`
   * decides. A repeated one counts by its last value (so a form's hidden `remember=0` before a
   * checkbox `remember=1` sends the box's state). `false` to ignore it: every OIDC login then
   * follows the site's default. Not `redirectFieldName`. Default: `false`: as with
   * `HttpAuth.login`'s `LoginOptions`, the app decides whether a user may choose (name the
   * parameter, `"remember"` say, to let them); read by default, any visitor could turn a
   * browser-close site's cookie into a lasting one.
   *
   * @since 0.4.0
   */
  readonly rememberFieldName?: string | false | undefined
  /** Other hosts a `next` may name (mozilla-django-oidc's `OIDC_REDIRECT_ALLOWED_HOSTS`). Default: none. */
  readonly allowedRedirectHosts?: ReadonlyArray<string> | undefined
  /** Where the provider sends the browser after its logout, and where a local logout lands. Default: `/`. */
  readonly postLogoutRedirectUri?: string | undefined
  /** The transaction cookies' `Secure` flag. Default: `true` (set `false` for http://localhost only). */
  readonly secure?: boolean | undefined
  /**
   * The prefix of the transaction cookies' names: a login's is `<cookieName>_<id>` (16 hex digits
   * named from its state), their index `<cookieName>_index`. Default: `oidc_tx`. An HTTP token of
   * at most 64 characters; not `__Host-` (the cookies' path is the callback's), `__Secure-` only
   * with `secure`.
   */
  readonly cookieName?: string | undefined
  /** How long a started login may take: a finite duration of at least a second. Default: 10 minutes. */
  readonly maxAge?: Duration.DurationInput | undefined
  /**
   * How many logins one browser may have started and not finished (in several tabs, say), each in
   * its own transaction cookie: past it, a new login drops the oldest (whose callback then answers
   * 400). Their cookies also add up to at most 4096 bytes, oldest dropped first, so a long `next`
   * may leave room for fewer. A positive integer; `1` keeps only the last login started, as
   * before 0.4.0. Default: 10 (mozilla-django-oidc's `OIDC_MAX_STATES` is 50, kept server-side).
   *
   * @since 0.4.0
   */
  readonly maxTransactions?: number | undefined
}

const json = (status: number, error: string) => HttpServerResponse.unsafeJson({ error }, { status })

const codeParameter: ReadonlySet<string> = new Set(["code"])

/**
 * The callback's URL carries the authorization code, a secret until it is redeemed (and a replay
 * is tried with it), but the platform records the URL as sent: its server span in `url.full` and
 * `url.query`, which exporters send on, and `HttpMiddleware.logger` in the access log line. The
 * span's two attributes are written again with the code masked, and the logger's line for this
 * route is turned off (see `internal/http/secretQuery`, which `HttpAuth` uses for its sources'
 * query parameters too).
 */
const codeKeptOutOfTraceAndLog = Effect.withFiberRuntime<void>((fiber) =>
  SecretQuery.keepOutOfTraceAndLog(fiber, codeParameter)
)

// The options as the routes use them, checked once.
interface Settings {
  readonly secret: Redacted.Redacted<string>
  readonly loginPath: `/${string}`
  readonly callbackPath: `/${string}`
  readonly logoutPath: `/${string}`
  readonly successRedirect: string
  readonly redirectFieldName: string | false
  readonly rememberFieldName: string | false
  readonly allowedRedirectHosts: ReadonlyArray<string>
  readonly postLogoutRedirectUri: string | undefined
  readonly secure: boolean
  readonly cookieName: string
  readonly maxAge: Duration.Duration
  readonly maxTransactions: number
}

const configError = (problem: string) => Either.left(new AuthConfigError({ message: `OidcLogin: ${problem}` }))

// A route's path: the router matches the path alone, so one with a query, a fragment or a space
// would never match.
const isPath = (value: unknown): value is `/${string}` => typeof value === "string" && /^\/[^\s?#]*$/.test(value)

// An untyped caller's options (from a configuration file, say) may be anything, a Proxy whose
// traps throw included: a config error, never an exception. The secret is never part of a message.
const settingsOf = (options: Options): Either.Either<Settings, AuthConfigError> => {
  try {
    if (typeof options !== "object" || options === null) return configError("the options must be an object")
    const secretText = textOf(options.secret)
    if (secretText === undefined || secretText.length < 16) {
      return configError("secret must be Redacted and at least 16 characters")
    }
    const paths = {
      loginPath: options.loginPath ?? "/oidc/login",
      callbackPath: options.callbackPath ?? "/oidc/callback",
      logoutPath: options.logoutPath ?? "/oidc/logout"
    }
    for (const [name, path] of Object.entries(paths)) {
      if (!isPath(path)) return configError(`${name} must be a path: start with / and hold no space, ? or #`)
    }
    // Both are GET routes: the router cannot hold two at one path.
    if (paths.loginPath === paths.callbackPath) return configError("loginPath and callbackPath must differ")
    const successRedirect = options.successRedirect ?? "/"
    if (typeof successRedirect !== "string" || successRedirect.length === 0) {
      return configError("successRedirect must be a non-empty string")
    }
    const redirectFieldName = options.redirectFieldName ?? "next"
    if (redirectFieldName !== false && (typeof redirectFieldName !== "string" || redirectFieldName.length === 0)) {
      return configError("redirectFieldName must be a non-empty string or false")
    }
    const rememberFieldName = options.rememberFieldName ?? false
    if (rememberFieldName !== false && (typeof rememberFieldName !== "string" || rememberFieldName.length === 0)) {
      return configError("rememberFieldName must be a non-empty string or false")
    }
    // One parameter cannot say both where to land and which cookie to send.
    if (rememberFieldName !== false && rememberFieldName === redirectFieldName) {
      return configError("rememberFieldName and redirectFieldName must differ")
    }
    const allowedRedirectHosts: unknown = options.allowedRedirectHosts ?? []
    if (!Array.isArray(allowedRedirectHosts) || !allowedRedirectHosts.every((host) => typeof host === "string")) {
      return configError("allowedRedirectHosts must be an array of host names")
    }
    const postLogoutRedirectUri = options.postLogoutRedirectUri
    if (postLogoutRedirectUri !== undefined && (typeof postLogoutRedirectUri !== "string" || postLogoutRedirectUri.length === 0)) {
      return configError("postLogoutRedirectUri must be a non-empty string")
    }
    const secure = options.secure ?? true
    if (typeof secure !== "boolean") return configError("secure must be a boolean")
    const cookieName = options.cookieName ?? "oidc_tx"
    if (typeof cookieName !== "string" || !headerToken.test(cookieName) || cookieName.length > 64) {
      return configError("cookieName must be a cookie name (an HTTP token) of at most 64 characters")
    }
    // Browsers drop a prefixed cookie that breaks its prefix's rules (RFC 6265bis), so every login
    // would end in a 400: `__Host-` needs Path=/ (the transaction is scoped to the callback), and
    // `__Secure-` the Secure flag.
    if (/^__host-/i.test(cookieName)) return configError("cookieName cannot start with __Host- (the cookie's path is the callback's)")
    if (/^__secure-/i.test(cookieName) && !secure) return configError("cookieName starting with __Secure- requires secure")
    // A typed DurationInput can still be a malformed string at runtime ("ten minutes"), on which
    // `Duration.decode` throws. The cookie's Max-Age counts whole seconds: under one it is 0, and
    // the browser drops the transaction at once.
    const maxAge = Duration.decodeUnknown(options.maxAge ?? Duration.minutes(10))
    if (Option.isNone(maxAge) || !Duration.isFinite(maxAge.value) || Duration.toMillis(maxAge.value) < 1000) {
      return configError("maxAge must be a finite duration of at least one second")
    }
    const maxTransactions = options.maxTransactions ?? 10
    if (!Number.isSafeInteger(maxTransactions) || maxTransactions < 1) return configError("maxTransactions must be a positive integer")
    return Either.right({
      secret: Redacted.make(secretText),
      ...(paths as Pick<Settings, "loginPath" | "callbackPath" | "logoutPath">),
      successRedirect,
      redirectFieldName,
      rememberFieldName,
      allowedRedirectHosts: [...allowedRedirectHosts as ReadonlyArray<string>],
      postLogoutRedirectUri,
      secure,
      cookieName,
      maxAge: maxAge.value,
      maxTransactions
    })
  } catch {
    return configError("the options cannot be read")
  }
}

/**
 * The login, callback and logout routes, or an `AuthConfigError` (its message starts with
 * `OidcLogin:`) when an option is unusable: a `secret` that is not a `Redacted` string of at least
 * 16 characters, a path that does not start with `/` (or holds a space, `?` or `#`), the same
 * `loginPath` and `callbackPath`, a `cookieName` that is not an HTTP token of at most 64 characters
 * (or starts with `__Host-`, or `__Secure-` without `secure`), a `maxAge` that is not a finite
 * duration of at least a second, a `rememberFieldName` that is `redirectFieldName`, and a
 * `successRedirect`, `redirectFieldName`, `rememberFieldName`,
 * `allowedRedirectHosts`, `postLogoutRedirectUri` or `secure` of the wrong type. The secret never
 * appears in the message.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { Effect, Redacted } from "effect"
 * import * as OidcLogin from "effect-auth/http/OidcLogin"
 *
 * const app = Effect.map(
 *   OidcLogin.make({ secret: Redacted.make("at least sixteen characters"), maxAge: "5 minutes" }),
 *   (routes) => HttpRouter.empty.pipe(HttpRouter.concat(routes))
 * )
 *
 * Effect.runSync(Effect.flip(OidcLogin.make({ secret: Redacted.make("too short") }))).message
 * // 'OidcLogin: secret must be Redacted and at least 16 characters'
 * ```
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (options: Options) =>
  Effect.suspend(() => Either.match(settingsOf(options), { onLeft: Effect.fail, onRight: (settings) => Effect.succeed(routes(settings)) }))

/**
 * The login, callback and logout routes. The options are checked as {@link make} checks them; an
 * unusable one throws that same `AuthConfigError` (an `Error` whose `_tag` is `"AuthConfigError"`)
 * at once, where the routes are built. Use {@link make} to have it in an Effect's error channel
 * instead.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { Redacted } from "effect"
 * import { AuthError } from "effect-auth"
 * import * as OidcLogin from "effect-auth/http/OidcLogin"
 *
 * const routes = OidcLogin.router({ secret: Redacted.make("at least sixteen characters"), secure: false })
 * export const app = HttpRouter.empty.pipe(HttpRouter.concat(routes))
 *
 * try {
 *   OidcLogin.router({ secret: Redacted.make("at least sixteen characters"), cookieName: "oidc tx" })
 * } catch (error) {
 *   console.log(error instanceof AuthError.AuthConfigError) // true
 * }
 * ```
 *
 * @since 0.2.0
 * @category routes
 */
export const router = (options: Options) => {
  const settings = settingsOf(options)
  if (Either.isLeft(settings)) throw settings.left
  return routes(settings.right)
}

/**
 * What a login started with {@link start} asks of the session it ends in.
 *
 * @example
 * ```ts
 * import type * as OidcLogin from "effect-auth/http/OidcLogin"
 *
 * // "remember me" unticked: the session's cookie ends with the browser
 * const forNow: OidcLogin.StartOptions = { expireAtBrowserClose: true }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export interface StartOptions {
  /**
   * The login's choice of session cookie, as `HttpAuth.LoginOptions.expireAtBrowserClose`: `true`
   * ends with the browser, `false` lasts `Session`'s `maxAge` even where `Session`'s
   * `expireAtBrowserClose` is on. Kept in the signed transaction and applied at the callback.
   * Absent (or no boolean): the request's `rememberFieldName` parameter, as the login route reads
   * it, else `Session`'s `expireAtBrowserClose`.
   */
  readonly expireAtBrowserClose?: boolean | undefined
}

/**
 * Starts a login from a route of the app's own: what `GET /oidc/login` does (a transaction cookie,
 * the request's `next` when `SafeRedirect` allows it, a 302 to the provider, a 503 when the
 * provider cannot be reached), with the login's choice of session cookie given by the app
 * ({@link StartOptions}) rather than read from the query. The router built from the same
 * `options` (same `secret` and `cookieName`) finishes the login at its callback. Unusable options
 * fail with the `AuthConfigError` {@link make} fails with.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerRequest } from "@effect/platform"
 * import { Effect, Redacted, Schema } from "effect"
 * import * as OidcLogin from "effect-auth/http/OidcLogin"
 *
 * const options: OidcLogin.Options = { secret: Redacted.make("at least sixteen characters") }
 *
 * // a form posting `staySignedIn` (an unticked checkbox is not sent)
 * const Form = Schema.Struct({ staySignedIn: Schema.optional(Schema.String) })
 * const startFromForm = Effect.flatMap(HttpServerRequest.schemaBodyUrlParams(Form), ({ staySignedIn }) =>
 *   OidcLogin.start(options, { expireAtBrowserClose: staySignedIn !== "on" }))
 *
 * export const app = HttpRouter.empty.pipe(
 *   HttpRouter.post("/sso", startFromForm),
 *   HttpRouter.concat(OidcLogin.router(options))
 * )
 * ```
 *
 * @since 0.4.0
 * @category routes
 */
export const start = (
  options: Options,
  login?: StartOptions
): Effect.Effect<
  HttpServerResponse.HttpServerResponse,
  AuthConfigError,
  OidcBackend.OidcBackend | HttpServerRequest.HttpServerRequest
> => {
  const settings = settingsOf(options)
  if (Either.isLeft(settings)) return Effect.fail(settings.left)
  // What is no boolean (an untyped caller's) is no choice, as HttpAuth.login takes it.
  const chosen = fieldOf(login, "expireAtBrowserClose")
  return handlersOf(settings.right).start(typeof chosen === "boolean" ? chosen : undefined)
}

// `remember=1`: a session cookie that lasts (expireAtBrowserClose false); `remember=0`: one that
// ends with the browser. Anything else decodes to nothing: the site's default.
const RememberParameter = Schema.transformLiterals(["1", false], ["0", true])
const decodeRemember = Schema.decodeUnknownOption(RememberParameter)

const routes = (options: Settings) => {
  const handlers = handlersOf(options)
  return HttpRouter.empty.pipe(
    HttpRouter.get(options.loginPath, handlers.start(undefined)),
    HttpRouter.get(options.callbackPath, handlers.callback),
    HttpRouter.post(options.logoutPath, handlers.logout)
  )
}

const handlersOf = (options: Settings) => {
  const { cookieName, maxAge, redirectFieldName, rememberFieldName } = options
  const cookieOptions = {
    httpOnly: true,
    secure: options.secure,
    // Lax: the provider's redirect back is a top-level navigation from another site.
    sameSite: "lax" as const
  }
  // The cookie is scoped to where the browser comes back: the backend's `redirectUri`, whose path
  // is the callback's as the browser sees it (this router mounted under a prefix, or behind a
  // proxy that strips one), not `callbackPath` as the router matches it.
  const cookieOptionsFor = (oidc: OidcBackend.Service) => ({ ...cookieOptions, path: new URL(oidc.redirectUri).pathname })
  // Where this login should land, if the request names a place it may: checked now, against the
  // host the browser asked for (Django's `request.get_host()`), and kept in the signed cookie.
  const nextOf = (request: HttpServerRequest.HttpServerRequest): string => {
    if (redirectFieldName === false) return ""
    const queryAt = request.url.indexOf("?")
    if (queryAt < 0) return ""
    // A repeated field: its last value, as Django's `QueryDict.get` reads it.
    const next = new URLSearchParams(request.url.slice(queryAt + 1)).getAll(redirectFieldName).at(-1) ?? null
    const host = request.headers.host
    const allowedHosts = host === undefined ? options.allowedRedirectHosts : [host, ...options.allowedRedirectHosts]
    return next !== null && SafeRedirect.isAllowed(next, { allowedHosts, requireHttps: cookieOptions.secure }) ? next : ""
  }
  // The login's "remember me" as the request's query carries it, if it does (see
  // `Options.rememberFieldName`); its last value, as `next`'s.
  const rememberOf = (request: HttpServerRequest.HttpServerRequest): boolean | undefined => {
    if (rememberFieldName === false) return undefined
    const queryAt = request.url.indexOf("?")
    if (queryAt < 0) return undefined
    const value = new URLSearchParams(request.url.slice(queryAt + 1)).getAll(rememberFieldName).at(-1)
    return Option.getOrUndefined(decodeRemember(value))
  }
  const indexName = Transaction.indexNameOf(cookieName)
  // The index is read by the login route, which the transactions' own path does not reach: it is
  // scoped to the whole site. It holds no secret.
  const indexOptions = { ...cookieOptions, path: "/" }
  const withIndex = (response: HttpServerResponse.HttpServerResponse, entries: ReadonlyArray<Transaction.Entry>, now: number) =>
    entries.length === 0
      ? HttpServerResponse.unsafeSetCookie(response, indexName, "", { ...indexOptions, maxAge: Duration.zero })
      : HttpServerResponse.unsafeSetCookie(response, indexName, Transaction.writeIndex(entries), {
        ...indexOptions,
        // until the last transaction it lists expires
        maxAge: Duration.millis(Math.max(...entries.map((e) => e.expiresAt)) - now + 999)
      })
  const clearCookie = (oidc: OidcBackend.Service, response: HttpServerResponse.HttpServerResponse, name: string) =>
    HttpServerResponse.unsafeSetCookie(response, name, "", { ...cookieOptionsFor(oidc), maxAge: Duration.zero })

  // `chosen`: the app's choice of session cookie ({@link start}); without one, the query's.
  const startLogin = (chosen: boolean | undefined) =>
    Effect.gen(function*() {
      const oidc = yield* OidcBackend.OidcBackend
      const start = yield* Effect.either(oidc.authorizationRequest)
      if (start._tag === "Left") return json(503, "the identity provider could not be reached")
      const request = yield* HttpServerRequest.HttpServerRequest
      const now = yield* Clock.currentTimeMillis
      const transaction: Transaction.Transaction = {
        state: Redacted.value(start.right.state),
        nonce: Redacted.value(start.right.nonce),
        codeVerifier: Redacted.value(start.right.codeVerifier),
        expiresAt: now + Duration.toMillis(maxAge),
        next: nextOf(request),
        expireAtBrowserClose: chosen ?? rememberOf(request)
      }
      const withNext = Transaction.seal(options.secret, transaction)
      // A `next` too long for the cookie is dropped, not the login (nor its choice of cookie).
      const sealed = withNext.length <= Transaction.maxCookieLength
        ? withNext
        : Transaction.seal(options.secret, { ...transaction, next: "" })
      const id = Transaction.idOf(transaction.state)
      const name = Transaction.cookieNameOf(cookieName, id)
      // The logins this browser has started and not finished: the oldest are dropped past the bound
      // (their cookies cleared, so their callbacks answer 400), the others still finish.
      const { dropped, kept } = Transaction.admit(
        Transaction.readIndex(request.cookies[indexName], now, transaction.expiresAt),
        { id, expiresAt: transaction.expiresAt, size: name.length + 1 + sealed.length },
        options.maxTransactions
      )
      let response = HttpServerResponse.unsafeSetCookie(
        HttpServerResponse.redirect(start.right.url.href, { status: 302 }),
        name,
        sealed,
        { ...cookieOptionsFor(oidc), maxAge }
      )
      for (const entry of dropped) response = clearCookie(oidc, response, Transaction.cookieNameOf(cookieName, entry.id))
      return withIndex(response, kept, now)
    })

  const callback = Effect.gen(function*() {
    yield* codeKeptOutOfTraceAndLog
    const oidc = yield* OidcBackend.OidcBackend
    const request = yield* HttpServerRequest.HttpServerRequest
    const now = yield* Clock.currentTimeMillis
    const queryAt = request.url.indexOf("?")
    const query = queryAt < 0 ? "" : request.url.slice(queryAt)
    // The transaction is the one of the callback's `state`: the login this browser started in
    // this tab. Exactly that one is cleared, whatever the answer; the others are left to finish.
    const state = new URLSearchParams(query).get("state")
    const id = state === null ? undefined : Transaction.idOf(state)
    const name = id === undefined ? undefined : Transaction.cookieNameOf(cookieName, id)
    const sent = name === undefined ? undefined : request.cookies[name]
    const index = request.cookies[indexName]
    const finish = (response: HttpServerResponse.HttpServerResponse) => {
      const cleared = sent === undefined || name === undefined ? response : clearCookie(oidc, response, name)
      if (index === undefined) return cleared
      return withIndex(cleared, Transaction.readIndex(index, now, now + Duration.toMillis(maxAge)).filter((e) => e.id !== id), now)
    }
    const transaction = Option.filter(Transaction.open(options.secret, sent, now), (t) => t.state === state)
    if (Option.isNone(transaction)) {
      return finish(json(400, "this login was not started here, or took too long: start again"))
    }
    // Only the query counts (code, state, iss, error): neither the origin nor the path is taken
    // from the request. Resolving the request target as a URL reference threw (a defect, a 500)
    // for a target such as `//v1.0/callback`, which the router matches (it merges slashes) but
    // which URL reads as an authority with a host that is no host; a search setter never throws.
    const callbackUrl = new URL("http://callback.invalid/")
    callbackUrl.search = query
    const url = callbackUrl.href
    // Through HttpAuth.login: the fold (with the client's address, behind trusted proxies, for
    // events and Lockout), then a new session. Redacted: events and logs of a refused login must
    // not show the code or the verifier.
    const callbackCredentials: OidcBackend.Callback = {
      oidcCallback: {
        url: Redacted.make(url),
        state: Redacted.make(transaction.value.state),
        nonce: Redacted.make(transaction.value.nonce),
        codeVerifier: Redacted.make(transaction.value.codeVerifier)
      }
    }
    // The callback's credentials are OidcBackend's own type, not one of Credentials.Input's: the
    // fold decodes them like any input.
    // The request the fold and its events see has no query: the code in it is a secret.
    const auth = yield* HttpAuth.HttpAuth
    const withoutQuery = request.modify({ url: queryAt < 0 ? request.url : request.url.slice(0, queryAt) })
    // (a GET, as every callback: HttpAuth's login takes it as guarded by the state checked above)
    // The login's choice of cookie is the one made when it started, kept signed in the
    // transaction: never read from this query, which whoever sends the callback writes.
    const choice = transaction.value.expireAtBrowserClose
    const started = yield* Effect.either(
      auth.login(
        StateGuarded.mark(withoutQuery),
        callbackCredentials as unknown as Credentials.Input,
        choice === undefined ? undefined : { expireAtBrowserClose: choice }
      )
    )
    if (started._tag === "Left") {
      const failure = started.left
      const [status, message] = failure._tag === "ServiceUnavailable"
        ? [503, "the identity provider could not be reached"] as const
        // (a denied account is a 401 below, as any refused login: see HttpAuth's status mapping)
        : failure._tag === "Forbidden"
        ? [403, "the request was refused"] as const
        : failure._tag === "TooManyRequests"
        ? [429, "too many attempts: try again later"] as const
        : [401, "the login could not be verified"] as const
      return finish(json(status, message))
    }
    const landing = transaction.value.next === "" ? options.successRedirect : transaction.value.next
    return finish(HttpServerResponse.redirect(SafeRedirect.location(landing), { status: 302 }))
  })

  const logout = Effect.gen(function*() {
    const oidc = yield* OidcBackend.OidcBackend
    const ended = yield* Effect.either(HttpAuth.logout)
    if (ended._tag === "Left") return HttpAuth.toResponse(ended.left)
    const after = options.postLogoutRedirectUri ?? "/"
    const atProvider = yield* Effect.orElseSucceed(oidc.endSessionUrl(options.postLogoutRedirectUri), () => Option.none<URL>())
    return HttpServerResponse.redirect(Option.match(atProvider, { onNone: () => after, onSome: (u) => u.href }), { status: 303 })
  })

  return { start: startLogin, callback, logout }
}
