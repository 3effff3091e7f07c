/**
 * Cross-site request forgery protection for requests authenticated by something the browser sends
 * on its own: the session cookie, a reverse proxy's remote-user header, or `Authorization: Basic`
 * (a browser resends Basic credentials it has cached, cross-site too). Bearer and API-key requests
 * are exempt: a page on another site cannot make a browser add those.
 *
 * For unsafe methods (anything but GET, HEAD, OPTIONS, TRACE), as Django's `CsrfViewMiddleware`:
 *
 * 1. Origin: when the request has an `Origin` header it must be exactly the site's own origin
 *    (the scheme, `://` and the `Host` header as sent; `https:` only when cookies are `Secure`,
 *    either scheme otherwise, since the scheme is known from that setting alone), exactly one of
 *    `trustedOrigins` (`https://app.example.com`), or a subdomain of a `*` one
 *    (`https://*.example.com` for `example.com` and its subdomains), as Django compares them.
 *    `Origin: null` is refused. Without `Origin`, over HTTPS (Secure cookies) the `Referer` must be
 *    an `https:` URL of this host or of a trusted origin's host; over plain HTTP, as in Django, no
 *    Referer is checked.
 * 2. Token: when the request carries a live session, the token it sends must equal the session's
 *    CSRF token (compared in constant time). A POSTed url-encoded form (an HTML form) sends it in
 *    its `csrfmiddlewaretoken` field, as Django's `{% csrf_token %}` renders it; when the form has
 *    no such field, and for every other request, the `X-CSRFToken` header. Either may carry the
 *    token as it is or masked by {@link mask} (what a page should render). The token is made at
 *    login, bound to the session, handed out in the login result and in the `csrftoken` cookie
 *    (readable by JavaScript, unlike the session cookie), and changes with every login.
 *
 * Reading a form's field reads the request's body before the app does, through the request's
 * `text` (cached by the platform), at most the app's `HttpIncomingMessage.MaxBodySize` where the
 * check runs, else 2.5 MiB (Django's `DATA_UPLOAD_MAX_MEMORY_SIZE`; a larger form is checked by
 * its header alone; so is a form sent without a `Content-Length`, chunked, that sends the header:
 * its body is not read, as Django under WSGI reads none without a length). The app still reads the body as usual: `urlParamsBody`, `text`, `json`, an
 * `HttpApi` payload, and in the plain-router form also `stream`, `arrayBuffer` and from a mounted
 * router (the middlewares hand the app a request holding the body; an `HttpApi` raw handler reads
 * such a form through `text` or `urlParamsBody`). A multipart form's field is
 * not read (parsing it would store its files before the app decides where they go): it sends the
 * header.
 *
 * A request without a live session has no token to compare, so only the Origin/Referer check
 * applies: that is what protects a login form from login CSRF. Clients that send neither header
 * (curl, server-to-server) pass it, except over HTTPS (Secure cookies) where a request that starts,
 * ends or runs on a session must name its origin, as Django requires a Referer of every secure
 * request: `HttpAuth.login`/`logout`, a request with a live session, and a request carrying the
 * remote-user header (the proxy's header logs the user in). A failure is a 403 with an empty body.
 *
 * @example
 * ```ts
 * import { HttpAuth } from "effect-auth"
 *
 * const AuthLive = HttpAuth.layer({
 *   session: { secure: true },
 *   csrf: { trustedOrigins: ["https://app.example.com", "https://*.example.com"] }
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as HttpApiError from "@effect/platform/HttpApiError"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { randomBytes, timingSafeEqual } from "node:crypto"
import * as FormBody from "../internal/http/formBody.js"
import { urlsplit } from "../internal/pyUrlsplit.js"
import * as crypto from "../internal/session/crypto.js"

/**
 * The `csrf` options of `HttpAuth.layer`.
 *
 * @example
 * ```ts
 * import type { Csrf } from "effect-auth"
 *
 * const csrf: Csrf.Options = { headerName: "X-CSRF-Token", cookieName: false, trustedOrigins: ["https://*.example.com"] }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default: `true`. Turn it off only when no browser ever talks to the API with cookies. */
  readonly enabled?: boolean | undefined
  /** The request header that carries the token. Default: `"X-CSRFToken"` (Django's). */
  readonly headerName?: string | undefined
  /** The cookie the token is handed out in, readable by scripts; `false` for none. Default: `"csrftoken"`. */
  readonly cookieName?: string | false | undefined
  /**
   * Other origins allowed to send unsafe requests, as Django's `CSRF_TRUSTED_ORIGINS`:
   * `https://app.example.com` (an `Origin` equal to it as written), `https://*.example.com` (that
   * domain and its subdomains). Their hosts are also the other hosts a secure request's `Referer`
   * may name.
   */
  readonly trustedOrigins?: ReadonlyArray<string> | undefined
}

// `CSRF_TRUSTED_ORIGINS` as Django reads it: the entries without `*` match an Origin exactly,
// as written; those with one match a subdomain's netloc per scheme; every entry's netloc (its
// leading `*` dropped) is a host a secure request's Referer may name, whatever its scheme.
interface TrustedOrigins {
  readonly exact: ReadonlySet<string>
  readonly subdomains: ReadonlyArray<{ readonly scheme: string; readonly pattern: string }>
  readonly refererHosts: ReadonlyArray<string>
}

/**
 * Checked settings, made by {@link resolve}.
 *
 * @example
 * ```ts
 * import { Either } from "effect"
 * import { Csrf } from "effect-auth"
 *
 * const settings: Csrf.Settings = Either.getOrThrow(Csrf.resolve({ trustedOrigins: ["https://app.example.com"] }, true))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly enabled: boolean
  /** Lower-case. */
  readonly headerName: string
  readonly cookieName: Option.Option<string>
  readonly trustedOrigins: TrustedOrigins
  /**
   * The site is served over HTTPS (cookies are `Secure`): its own origin is `https:` only, and a
   * request without `Origin` must send an `https:` Referer of this site or a trusted one.
   */
  readonly requireHttps: boolean
}

const headerToken = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * Checks the options: header and cookie names must be HTTP tokens, trusted origins
 * `http(s)://host[:port]` (a bracketed IPv6 address too) with an optional leading `*`, as
 * Django's `CSRF_TRUSTED_ORIGINS`. Answers the settings or what is wrong.
 *
 * @example
 * ```ts
 * import { Csrf } from "effect-auth"
 *
 * Csrf.resolve({ trustedOrigins: ["https://*.example.com"] }, true) // Either.right(...)
 * Csrf.resolve({ trustedOrigins: ["example.com"] }, true) // Either.left("...")
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (options: Options = {}, requireHttps = false): Either.Either<Settings, string> => {
  const headerName = options.headerName ?? "X-CSRFToken"
  if (!headerToken.test(headerName)) return Either.left(`csrf.headerName ${JSON.stringify(headerName)} is not a header name`)
  const cookieName = options.cookieName ?? "csrftoken"
  if (cookieName !== false && !headerToken.test(cookieName)) {
    return Either.left(`csrf.cookieName ${JSON.stringify(cookieName)} is not a cookie name`)
  }
  const exact = new Set<string>()
  const subdomains: Array<{ scheme: string; pattern: string }> = []
  const refererHosts: Array<string> = []
  for (const origin of options.trustedOrigins ?? []) {
    const match = /^(https?):\/\/(\*?)([a-z0-9.-]+|\[[a-f0-9:.]+\])(:[0-9]{1,5})?$/i.exec(origin)
    if (match === null) {
      return Either.left(`csrf.trustedOrigins: ${JSON.stringify(origin)} is not scheme://host[:port] (host may start with *.)`)
    }
    const netloc = match[3]! + (match[4] ?? "")
    if (match[2] === "") exact.add(origin)
    else subdomains.push({ scheme: match[1]!.toLowerCase(), pattern: netloc })
    refererHosts.push(netloc)
  }
  const trustedOrigins: TrustedOrigins = { exact, subdomains, refererHosts }
  return Either.right({
    enabled: options.enabled ?? true,
    headerName: headerName.toLowerCase(),
    cookieName: cookieName === false ? Option.none() : Option.some(cookieName),
    trustedOrigins,
    requireHttps
  })
}

/**
 * GET, HEAD, OPTIONS and TRACE (RFC 9110's safe methods) are never checked.
 *
 * @example
 * ```ts
 * import { Csrf } from "effect-auth"
 *
 * Csrf.isSafeMethod("GET") // true
 * Csrf.isSafeMethod("DELETE") // false
 * ```
 *
 * @since 0.1.0
 * @category predicates
 */
export const isSafeMethod = (method: string): boolean =>
  method === "GET" || method === "HEAD" || method === "OPTIONS" || method === "TRACE"

// Django's `is_same_domain`: a pattern starting with `.` is that domain and its subdomains.
const isSameDomain = (host: string, pattern: string): boolean => {
  const lower = pattern.toLowerCase()
  return lower !== "" && (lower.startsWith(".") ? host.endsWith(lower) || host === lower.slice(1) : host === lower)
}

// Django's `request.get_host()`: the Host header as sent, when its lower-cased form is a host name
// or a bracketed IPv6 address with an optional port (`host_validation_re`); else no site origin
// can match (Django raises `DisallowedHost`).
const siteHost = (host: string | undefined): string | undefined => {
  if (host === undefined) return undefined
  const match = /^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(:[0-9]+)?$/.exec(host.toLowerCase())
  return match !== null && match[1] !== "." ? host : undefined
}

/**
 * Whether the `Origin` header, or over HTTPS without it the `Referer`, names an allowed origin;
 * true when the request has neither (unless `requireSource`). As Django's `CsrfViewMiddleware`
 * compares them: `Origin` must be exactly `scheme://` and the `Host` header (either scheme but
 * with `requireHttps`, which makes it `https` only), exactly a trusted origin, or a subdomain of a
 * `*` one; a `Referer` (over HTTPS only) must be `https:` and name this host or a trusted one.
 *
 * @example
 * ```ts
 * import { Csrf } from "effect-auth"
 * import { Either } from "effect"
 *
 * const settings = Either.getOrThrow(Csrf.resolve())
 * Csrf.originAllowed(settings, { host: "example.com", origin: "http://example.com" }) // true
 * Csrf.originAllowed(settings, { host: "example.com", origin: "https://evil.test" }) // false
 * ```
 *
 * @since 0.1.0
 * @category predicates
 */
export const originAllowed = (
  settings: Settings,
  headers: Readonly<Record<string, string | undefined>>,
  requireSource = false
): boolean => {
  const trusted = settings.trustedOrigins
  const origin = headers.origin
  if (origin !== undefined) {
    const host = siteHost(headers.host)
    if (host !== undefined && (origin === `https://${host}` || (!settings.requireHttps && origin === `http://${host}`))) {
      return true
    }
    if (trusted.exact.has(origin)) return true
    const url = urlsplit(origin)
    return url !== undefined && trusted.subdomains.some((t) => t.scheme === url.scheme && isSameDomain(url.netloc, t.pattern))
  }
  // Over plain HTTP Django checks no Referer: a page can withhold it, and a network attacker write it.
  if (!settings.requireHttps) return true
  const referer = headers.referer
  if (referer === undefined) return !requireSource
  const url = urlsplit(referer)
  if (url === undefined || url.scheme !== "https" || url.netloc === "") return false
  if (trusted.refererHosts.some((pattern) => isSameDomain(url.netloc, pattern))) return true
  const host = siteHost(headers.host)
  return host !== undefined && isSameDomain(url.netloc, host)
}

// The refusal carries nothing of the request: built once.
const forbidden = Effect.fail(new HttpApiError.Forbidden())

/**
 * @example
 * ```ts
 * import type { Csrf } from "effect-auth"
 *
 * // a login: it starts a session, so over HTTPS it must name its origin
 * const options: Csrf.CheckOptions = { session: true }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface CheckOptions {
  /**
   * The request starts or ends a session (login, logout, a request carrying the remote-user header,
   * which logs in by it) or runs on one: over HTTPS it must then carry an Origin or a Referer.
   * Implied when `sessionToken` is some. Over plain HTTP it changes nothing (Django checks the
   * Referer only of secure requests).
   */
  readonly session?: boolean | undefined
}

/**
 * The check for one request: nothing for safe methods or when disabled; otherwise the
 * Origin/Referer check and, when `sessionToken` is some, the token check (a POSTed url-encoded
 * form's `csrfmiddlewaretoken` field, else the header; see the module's documentation). Over HTTPS (Secure
 * cookies) a request of a session (`sessionToken` some, or `options.session`) that sends neither
 * Origin nor Referer is refused, as Django refuses it. Fails with `HttpApiError.Forbidden`.
 *
 * @example
 * ```ts
 * import { Effect, Either, Option } from "effect"
 * import { HttpServerRequest } from "@effect/platform"
 * import { Csrf } from "effect-auth"
 *
 * const settings = Either.getOrThrow(Csrf.resolve())
 * const guard = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
 *   Csrf.check(settings, request, Option.none()))
 * ```
 *
 * @since 0.1.0
 * @category guards
 */
export const check = (
  settings: Settings,
  request: HttpServerRequest.HttpServerRequest,
  sessionToken: Option.Option<Redacted.Redacted<string>>,
  options: CheckOptions = {}
): Effect.Effect<void, HttpApiError.Forbidden> => {
  if (!settings.enabled || isSafeMethod(request.method)) return Effect.void
  const headers = request.headers
  // Over HTTPS (Secure cookies) Django refuses an unsafe request that names no origin at all
  // (neither Origin nor Referer): where a login or a session's request came from must be known.
  const requireSource = settings.requireHttps && (options.session === true || Option.isSome(sessionToken))
  if (!originAllowed(settings, headers, requireSource)) return forbidden
  if (Option.isNone(sessionToken)) return Effect.void
  const expected = sessionToken.value
  const header = headers[settings.headerName]
  // As Django: a POSTed url-encoded form's `csrfmiddlewaretoken` field first, the header when the
  // form has none (or could not be read). A form sent without a length (chunked) that carries the
  // header is checked by the header alone, its body not read, as Django under WSGI reads no body
  // without a `Content-Length`: read here, a body past the limit would be cut off, and the
  // platform drops the connection of a body it stops reading (the app's own limit may be larger).
  if (FormBody.carriesToken(request) && (header === undefined || headers["content-length"] !== undefined)) {
    return Effect.flatMap(FormBody.token(request), (field) => matches(field === "" || field === undefined ? header : field, expected))
  }
  return matches(header, expected)
}

const matches = (sent: string | undefined, expected: Redacted.Redacted<string>): Effect.Effect<void, HttpApiError.Forbidden> =>
  sent !== undefined && tokenMatches(sent, Redacted.value(expected)) ? Effect.void : forbidden

const base64url = /^[A-Za-z0-9_-]+$/

// Django's CSRF secrets are 32 characters, ours 43: a session's token shorter than that was not
// written by either (a corrupted or foreign record, `""` say) and matches nothing, where an empty
// header would have matched an empty token.
const shortestToken = 32

// The token as sent, or masked by `mask`: a random mask and the token XOR that mask, base64url.
const tokenMatches = (sent: string, token: string): boolean => {
  if (token.length < shortestToken) return false
  if (crypto.equal(sent, token)) return true
  const size = Buffer.byteLength(token)
  if (sent.length !== Math.ceil((size * 2 * 4) / 3) || !base64url.test(sent)) return false
  const masked = Buffer.from(sent, "base64url")
  // The last character carries bits decoding drops: one spelling only, as Django's is one string.
  if (masked.length !== size * 2 || masked.toString("base64url") !== sent) return false
  return timingSafeEqual(applyMask(masked), Buffer.from(token))
}

// `mask || text`: XORs the second half with the first in place and answers it (XOR masks and
// unmasks alike).
const applyMask = (masked: Buffer): Buffer => {
  const size = masked.length / 2
  for (let i = 0; i < size; i++) masked[size + i]! ^= masked[i]!
  return masked.subarray(size)
}

/**
 * A fresh masked form of a session's CSRF token, for pages that put the token in their HTML (a
 * form's `csrfmiddlewaretoken` field): a random mask and the token XOR that mask, base64url, new on
 * every call, so that a compressed HTTPS response does not repeat the same secret from page to page
 * (the BREACH attack), as Django's `{% csrf_token %}` masks it. {@link check} takes the token
 * masked or as it is, in the field and in the header.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { Csrf, HttpAuth } from "effect-auth"
 *
 * const hiddenField = HttpAuth.login({ username: "alice", password: Redacted.make("wonderland") }).pipe(
 *   Effect.map(({ csrfToken }) =>
 *     `<input type="hidden" name="csrfmiddlewaretoken" value="${Redacted.value(Csrf.mask(csrfToken))}">`)
 * )
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const mask = (token: Redacted.Redacted<string>): Redacted.Redacted<string> => {
  const bytes = Buffer.from(Redacted.value(token))
  const masked = Buffer.concat([randomBytes(bytes.length), bytes])
  applyMask(masked)
  return Redacted.make(masked.toString("base64url"))
}
