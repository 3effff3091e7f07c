// The session and CSRF cookies: checked settings, and the response handlers that set and delete
// them. Each handler is built once per settings where it can be (`clear`), or once per login.
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Session from "../../Session.js"
import type { SessionCookieOptions } from "../../http/RequestSource.js"
import { pyStrip } from "../pyStrip.js"

/** An HTTP token (RFC 7230 tchar+). @internal */
export const headerToken = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * The value of the last cookie named `name` in a `Cookie` header. Django's `parse_cookie` keeps
 * the last of cookies sharing a name (one set for a parent domain or another path, say), and the
 * platform's `request.cookies` the first: a session cookie read by both sides must name one
 * session. Names and values are stripped as Python strips them, and a value is read as Django
 * reads it ({@link unquote}).
 *
 * @internal
 */
export const lastValue = (header: string | undefined, name: string): string | undefined => {
  if (header === undefined || !header.includes(name)) return undefined
  let found: string | undefined
  let start = 0
  // The next "=" at or after `start`, searched again only once passed: searching from every
  // segment made a header of many "=" -less segments (1 MiB of ";") quadratic.
  let eq = header.indexOf("=")
  while (start <= header.length) {
    let end = header.indexOf(";", start)
    if (end === -1) end = header.length
    if (eq !== -1 && eq < start) eq = header.indexOf("=", start)
    if (eq !== -1 && eq < end && pyStrip(header.slice(start, eq)) === name) found = pyStrip(header.slice(eq + 1, end))
    start = end + 1
  }
  return found === undefined ? undefined : unquote(found)
}

// Python's `http.cookies._unquote`, which Django's `parse_cookie` reads every value with: a value
// in a full pair of double quotes loses them and its backslash escapes (`\"`, octal `\141`); any
// other value is taken as it is, without percent-decoding (before, `%61bc` here was the session
// `abc`, which Django reads as no session, and a lone leading quote was dropped).
const unquote = (value: string): string =>
  value.length < 2 || value.charCodeAt(0) !== 0x22 || value.charCodeAt(value.length - 1) !== 0x22
    ? value
    : value.slice(1, -1).replace(
      /\\(?:([0-3][0-7][0-7])|([^\n]))/g,
      (_, octal: string | undefined, char: string | undefined) => octal !== undefined ? String.fromCharCode(parseInt(octal, 8)) : char!
    )

/** @internal */
export interface CookieSettings {
  readonly name: string
  readonly options: {
    readonly httpOnly: true
    readonly secure: boolean
    readonly sameSite: "lax" | "strict" | "none"
    readonly path: string
    readonly domain?: string
  }
}

/** Checks the options; answers the settings or what is wrong. @internal */
export const settings = (input: SessionCookieOptions): Either.Either<CookieSettings, string> => {
  const name = input.name ?? "sessionid"
  if (!headerToken.test(name)) return Either.left(`session.name ${JSON.stringify(name)} is not a cookie name`)
  const sameSite = input.sameSite ?? "lax"
  const secure = input.secure ?? false
  if (sameSite === "none" && !secure) return Either.left("session.sameSite \"none\" requires session.secure")
  const path = input.path ?? "/"
  if (!/^\/[\x21-\x3a\x3c-\x7e]*$/.test(path)) return Either.left("session.path must start with / and hold no ; or spaces")
  if (input.domain !== undefined && !/^\.?[a-z0-9.-]+$/i.test(input.domain)) {
    return Either.left("session.domain is not a domain name")
  }
  // Browsers drop a prefixed cookie that breaks its prefix's rules (RFC 6265bis): refused here,
  // rather than a session cookie that silently never arrives.
  if ((name.startsWith("__Secure-") || name.startsWith("__Host-")) && !secure) {
    return Either.left(`session.name ${JSON.stringify(name)} requires session.secure`)
  }
  if (name.startsWith("__Host-") && (path !== "/" || input.domain !== undefined)) {
    return Either.left(`session.name ${JSON.stringify(name)} requires session.path "/" and no session.domain`)
  }
  return Either.right({
    name,
    options: { httpOnly: true, secure, sameSite, path, ...(input.domain === undefined ? {} : { domain: input.domain }) }
  })
}

/** @internal */
export interface CookieHandlers {
  /** Sets the session cookie and (when configured) the CSRF cookie of a started session. */
  readonly set: (started: Session.SessionUser) => Effect.Effect<void>
  /** Deletes both. */
  readonly clear: Effect.Effect<void>
  /**
   * Adds `Cookie` to the response's `Vary`: for a request whose answer the session cookie
   * decided (or whose session a login or logout changed), so that a shared cache keeps one
   * user's answer from another.
   */
  readonly vary: Effect.Effect<void>
}

/**
 * Django's `patch_vary_headers(response, ("Cookie",))`: `Cookie` added to the `Vary` the
 * response already has, unless it names it already (compared case-insensitively); a `*` among
 * them makes it `*`. The response is answered as it is when nothing changes.
 *
 * @internal
 */
export const varyOnCookie = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  const existing = response.headers["vary"]
  if (existing === undefined) return HttpServerResponse.setHeader(response, "vary", "Cookie")
  const names = existing.split(",").map((name) => name.trim()).filter((name) => name !== "")
  if (!names.some((name) => name.toLowerCase() === "cookie")) names.push("Cookie")
  const value = names.includes("*") ? "*" : names.join(", ")
  return value === existing ? response : HttpServerResponse.setHeader(response, "vary", value)
}

// Built once: the handler carries nothing of the request.
const vary = HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(varyOnCookie(response)))

/** @internal */
export const handlers = (
  cookie: CookieSettings,
  csrfCookie: Option.Option<string>,
  maxAge: Duration.Duration
): CookieHandlers => {
  const maxAgeMillis = Duration.toMillis(maxAge)
  const sessionOptions = { ...cookie.options, maxAge }
  const csrfOptions = { ...cookie.options, httpOnly: false, maxAge }
  // A session whose cookie is to lapse sooner than `maxAge` from now (`cookieExpiresAt`: the
  // successor of an older login, a Django site's `set_expiry(3600)` kept through a password change
  // here) gets a cookie that says so, as Django's does; within a minute of `maxAge` it is a new
  // login, and the cookie says `maxAge`. Never the idle deadline: the cookie is not sent again as
  // the session is used.
  // A session its store says ends with the browser (a Django site's `set_expiry(0)`) gets cookies
  // without `Max-Age`, as Django's middleware sets them: a lasting one would keep a user who did
  // not ask to be remembered logged in after the browser closed.
  const browserSession = { session: cookie.options, csrf: { ...cookie.options, httpOnly: false } }
  const optionsFor = (started: Session.SessionUser, now: number) => {
    if (started.expireAtBrowserClose === true) return browserSession
    if (started.cookieExpiresAt === undefined) return { session: sessionOptions, csrf: csrfOptions }
    const left = started.cookieExpiresAt.getTime() - now
    if (left >= maxAgeMillis - 60_000) return { session: sessionOptions, csrf: csrfOptions }
    const shorter = Duration.seconds(Math.max(0, Math.ceil(left / 1000)))
    return { session: { ...sessionOptions, maxAge: shorter }, csrf: { ...csrfOptions, maxAge: shorter } }
  }
  const set = (started: Session.SessionUser) =>
    HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const options = optionsFor(started, now)
        let next = HttpServerResponse.unsafeSetCookie(response, cookie.name, Redacted.value(started.sessionId), options.session)
        if (Option.isSome(csrfCookie)) {
          next = HttpServerResponse.unsafeSetCookie(next, csrfCookie.value, Redacted.value(started.csrfToken), options.csrf)
        }
        return next
      }))
  // A deletion carries the attributes the cookie was set with, as Django's `delete_cookie` does:
  // browsers ignore one without `Secure` for a `__Host-`/`__Secure-` name, and one without
  // `SameSite=None` in a cross-site frame.
  const { domain, path, sameSite, secure } = cookie.options
  const where = { path, secure, sameSite, ...(domain === undefined ? {} : { domain }) }
  const clear = HttpApp.appendPreResponseHandler((_request, response) => {
    let next = HttpServerResponse.expireCookie(response, cookie.name, where)
    if (Option.isSome(csrfCookie)) next = HttpServerResponse.expireCookie(next, csrfCookie.value, where)
    return Effect.succeed(next)
  })
  return { set, clear, vary }
}
