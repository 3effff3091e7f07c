/**
 * The routes of a login with an identity provider (`OidcBackend`), for an `@effect/platform`
 * router:
 *
 * - `GET /oidc/login`: starts a login: a new `state`, `nonce` and PKCE verifier, kept by the
 *   browser in a signed, HttpOnly, ten-minute cookie (`oidc_tx`, path = the callback), and a
 *   redirect (302) to the provider;
 * - `GET /oidc/callback`: the provider's redirect back: the transaction cookie must be there and
 *   valid (else 400), and is cleared; the callback URL and the transaction go through the fold as
 *   `OidcBackend.Callback` credentials (so lockout, events and control maps apply); success starts
 *   an ordinary session (`HttpAuth.loginAs`) and redirects (302) to the login's `next` (`GET
 *   /oidc/login?next=/reports`, when `SafeRedirect` allows it: a path or a URL on this host) or
 *   else to `successRedirect`. Refused
 *   (`access_denied`, bad state or nonce, a replayed code, an ID token for another audience or
 *   expired): 401; denied: 403; locked out: 429; the provider down or broken: 503. Nothing is
 *   created for a login that did not verify;
 * - `POST /oidc/logout`: ends the local session (CSRF-checked, as any logout), then redirects
 *   (303) to the provider's `end_session_endpoint` when it advertises one (RP-initiated logout),
 *   else to `postLogoutRedirectUri`.
 *
 * Needs `HttpAuth` with sessions, `AuthService` (with `OidcBackend` in its chain) and `OidcBackend`.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { Redacted } from "effect"
 * import * as OidcLogin from "effect-auth/http/OidcLogin"
 *
 * const routes = OidcLogin.router({ secret: Redacted.make(process.env.SECRET_KEY ?? "a-development-secret-only!") })
 * export const app = HttpRouter.empty.pipe(HttpRouter.concat(routes))
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
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Credentials from "../Credentials.js"
import * as OidcBackend from "../backends/OidcBackend.js"
import * as Transaction from "../internal/oidc/transaction.js"
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
  /** Signs the transaction cookie: at least 16 characters (the app's `SECRET_KEY` will do). */
  readonly secret: Redacted.Redacted<string>
  /** Default: `/oidc/login`. */
  readonly loginPath?: `/${string}` | undefined
  /** Default: `/oidc/callback`; the path of the backend's `redirectUri`. */
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
  /** Other hosts a `next` may name (mozilla-django-oidc's `OIDC_REDIRECT_ALLOWED_HOSTS`). Default: none. */
  readonly allowedRedirectHosts?: ReadonlyArray<string> | undefined
  /** Where the provider sends the browser after its logout, and where a local logout lands. Default: `/`. */
  readonly postLogoutRedirectUri?: string | undefined
  /** The transaction cookie's `Secure` flag. Default: `true` (set `false` for http://localhost only). */
  readonly secure?: boolean | undefined
  /** Default: `oidc_tx`. */
  readonly cookieName?: string | undefined
  /** How long a started login may take. Default: 10 minutes. */
  readonly maxAge?: Duration.DurationInput | undefined
}

const json = (status: number, error: string) => HttpServerResponse.unsafeJson({ error }, { status })

/**
 * The login, callback and logout routes.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { Redacted } from "effect"
 * import * as OidcLogin from "effect-auth/http/OidcLogin"
 *
 * const routes = OidcLogin.router({ secret: Redacted.make("at least sixteen characters"), secure: false })
 * ```
 *
 * @since 0.2.0
 * @category routes
 */
export const router = (options: Options) => {
  if (Redacted.value(options.secret).length < 16) throw new Error("OidcLogin: secret must be at least 16 characters")
  const loginPath = options.loginPath ?? "/oidc/login"
  const callbackPath = options.callbackPath ?? "/oidc/callback"
  const logoutPath = options.logoutPath ?? "/oidc/logout"
  const cookieName = options.cookieName ?? "oidc_tx"
  const maxAge = Duration.decode(options.maxAge ?? Duration.minutes(10))
  const cookieOptions = {
    httpOnly: true,
    secure: options.secure ?? true,
    // Lax: the provider's redirect back is a top-level navigation from another site.
    sameSite: "lax" as const
  }
  // The cookie is scoped to where the browser comes back: the backend's `redirectUri`, whose path
  // is the callback's as the browser sees it (this router mounted under a prefix, or behind a
  // proxy that strips one), not `callbackPath` as the router matches it.
  const cookieOptionsFor = (oidc: OidcBackend.Service) => ({ ...cookieOptions, path: new URL(oidc.redirectUri).pathname })
  const redirectFieldName = options.redirectFieldName ?? "next"
  // Where this login should land, if the request names a place it may: checked now, against the
  // host the browser asked for (Django's `request.get_host()`), and kept in the signed cookie.
  const nextOf = (request: HttpServerRequest.HttpServerRequest): string => {
    if (redirectFieldName === false) return ""
    const queryAt = request.url.indexOf("?")
    if (queryAt < 0) return ""
    // A repeated field: its last value, as Django's `QueryDict.get` reads it.
    const next = new URLSearchParams(request.url.slice(queryAt + 1)).getAll(redirectFieldName).at(-1) ?? null
    const host = request.headers.host
    const allowedHosts = host === undefined ? options.allowedRedirectHosts ?? [] : [host, ...options.allowedRedirectHosts ?? []]
    return next !== null && SafeRedirect.isAllowed(next, { allowedHosts, requireHttps: cookieOptions.secure }) ? next : ""
  }
  const clearTransaction = (oidc: OidcBackend.Service, response: HttpServerResponse.HttpServerResponse) =>
    HttpServerResponse.unsafeSetCookie(response, cookieName, "", { ...cookieOptionsFor(oidc), maxAge: Duration.zero })

  const login = Effect.gen(function*() {
    const oidc = yield* OidcBackend.OidcBackend
    const start = yield* Effect.either(oidc.authorizationRequest)
    if (start._tag === "Left") return json(503, "the identity provider could not be reached")
    const now = yield* Clock.currentTimeMillis
    const transaction: Transaction.Transaction = {
      state: Redacted.value(start.right.state),
      nonce: Redacted.value(start.right.nonce),
      codeVerifier: Redacted.value(start.right.codeVerifier),
      expiresAt: now + Duration.toMillis(maxAge),
      next: nextOf(yield* HttpServerRequest.HttpServerRequest)
    }
    const withNext = Transaction.seal(options.secret, transaction)
    // A `next` too long for the cookie is dropped, not the login.
    const sealed = withNext.length <= Transaction.maxCookieLength
      ? withNext
      : Transaction.seal(options.secret, { ...transaction, next: "" })
    return HttpServerResponse.unsafeSetCookie(
      HttpServerResponse.redirect(start.right.url.href, { status: 302 }),
      cookieName,
      sealed,
      { ...cookieOptionsFor(oidc), maxAge }
    )
  })

  const callback = Effect.gen(function*() {
    const oidc = yield* OidcBackend.OidcBackend
    const request = yield* HttpServerRequest.HttpServerRequest
    const now = yield* Clock.currentTimeMillis
    const transaction = Transaction.open(options.secret, request.cookies[cookieName], now)
    if (Option.isNone(transaction)) {
      return clearTransaction(oidc, json(400, "this login was not started here, or took too long: start again"))
    }
    // Only the query counts (code, state, iss, error): neither the origin nor the path is taken
    // from the request. Resolving the request target as a URL reference threw (a defect, a 500)
    // for a target such as `//v1.0/callback`, which the router matches (it merges slashes) but
    // which URL reads as an authority with a host that is no host; a search setter never throws.
    const queryAt = request.url.indexOf("?")
    const callbackUrl = new URL("http://callback.invalid/")
    callbackUrl.search = queryAt < 0 ? "" : request.url.slice(queryAt)
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
    const started = yield* Effect.either(auth.login(withoutQuery, callbackCredentials as unknown as Credentials.Input))
    if (started._tag === "Left") {
      const failure = started.left
      const [status, message] = failure._tag === "ServiceUnavailable"
        ? [503, "the identity provider could not be reached"] as const
        : failure._tag === "Forbidden"
        ? [403, "this account may not log in"] as const
        : failure._tag === "TooManyRequests"
        ? [429, "too many attempts: try again later"] as const
        : [401, "the login could not be verified"] as const
      return clearTransaction(oidc, json(status, message))
    }
    const landing = transaction.value.next === "" ? options.successRedirect ?? "/" : transaction.value.next
    return clearTransaction(oidc, HttpServerResponse.redirect(SafeRedirect.location(landing), { status: 302 }))
  })

  const logout = Effect.gen(function*() {
    const oidc = yield* OidcBackend.OidcBackend
    const ended = yield* Effect.either(HttpAuth.logout)
    if (ended._tag === "Left") return HttpAuth.toResponse(ended.left)
    const after = options.postLogoutRedirectUri ?? "/"
    const atProvider = yield* Effect.orElseSucceed(oidc.endSessionUrl(options.postLogoutRedirectUri), () => Option.none<URL>())
    return HttpServerResponse.redirect(Option.match(atProvider, { onNone: () => after, onSome: (u) => u.href }), { status: 303 })
  })

  return HttpRouter.empty.pipe(
    HttpRouter.get(loginPath, login),
    HttpRouter.get(callbackPath, callback),
    HttpRouter.post(logoutPath, logout)
  )
}
