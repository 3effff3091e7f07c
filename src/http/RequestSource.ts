/**
 * Where a request's credentials come from. A source reads the request and answers one of three
 * things: nothing here ({@link absent}: the next source is asked), credentials to authenticate
 * ({@link credentials}), or a value that is there but unusable ({@link malformed}: 401 at once,
 * never a fall-through to a weaker source). `HttpAuth` folds its sources in order, the way
 * `AuthService` folds backends: the first source present decides.
 *
 * | source | reads | yields | method |
 * |---|---|---|---|
 * | {@link bearer} | `Authorization: Bearer <token>` | `{ token }` | `"bearer"` |
 * | {@link basic} | `Authorization: Basic <base64>` | `{ username, password }` | `"basic"` |
 * | {@link apiKey} | a configured header | `{ token }` or `{ apiKey }` | `"api-key"` |
 * | {@link remoteUser} | a reverse proxy's header | `Credentials.RemoteUser` | `"remote-user"` |
 * | {@link sessionCookie} | the session cookie | a session (through `Session`) | `"session"` |
 *
 * Headers are parsed here, strictly (`@effect/platform`'s security decoders are lenient: see
 * `docs/http.md`). Sources the browser sends on its own (the session cookie, the remote-user
 * header, Basic, a custom source with `browserSent: true`) are CSRF-checked before the first of them is
 * read; header sources an attacker's page cannot make a browser add are exempt.
 *
 * A source is a plain value: build the list once and hand it both to `HttpAuth.layer({ sources })`
 * and to `Authentication.Tag` (which declares the matching `security` in the `HttpApi`'s OpenAPI
 * document).
 *
 * @example
 * ```ts
 * import { HttpAuth, RequestSource } from "effect-auth"
 *
 * const sources = [
 *   RequestSource.bearer,
 *   RequestSource.apiKey({ header: "X-API-Key" }),
 *   RequestSource.sessionCookie({ secure: true })
 * ]
 * const HttpAuthLive = HttpAuth.layer({ realm: "api", sources })
 * ```
 *
 * @since 0.2.0
 */
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Redacted from "effect/Redacted"
import * as Authorization from "../internal/http/authorization.js"
import * as TrustedRemoteUser from "../internal/trustedRemoteUser.js"
import type * as CurrentUser from "./CurrentUser.js"

/**
 * What a source found in a request.
 *
 * @example
 * ```ts
 * import { RequestSource } from "effect-auth"
 *
 * const read = (value: string | undefined): RequestSource.Read =>
 *   value === undefined ? RequestSource.absent : value === "" ? RequestSource.malformed : RequestSource.credentials({ token: value })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Read =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Malformed" }
  | { readonly _tag: "Credentials"; readonly credentials: unknown }

/**
 * Nothing for this source: the next one is asked.
 *
 * @example
 * ```ts
 * import { RequestSource } from "effect-auth"
 *
 * RequestSource.absent._tag // "Absent"
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const absent: Read = { _tag: "Absent" }

/**
 * The source's header is there but unusable: the request is a 401, no later source is asked.
 *
 * @example
 * ```ts
 * import { RequestSource } from "effect-auth"
 *
 * RequestSource.malformed._tag // "Malformed"
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const malformed: Read = { _tag: "Malformed" }

/**
 * Credentials for `AuthService.authenticate`; put secrets in `Redacted`.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { RequestSource } from "effect-auth"
 *
 * const read = RequestSource.credentials({ token: Redacted.make("t0k3n") })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const credentials = (value: unknown): Read => ({ _tag: "Credentials", credentials: value })

/**
 * A source that reads credentials from headers (or anything else on the request) and hands them
 * to `AuthService`. {@link bearer}, {@link basic} and {@link apiKey} are such sources; {@link make}
 * builds your own.
 *
 * @example
 * ```ts
 * import { RequestSource } from "effect-auth"
 *
 * const describe = (source: RequestSource.CredentialsSource) => `${source.name}: ${source.headers.join(", ")}`
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface CredentialsSource {
  readonly _tag: "Credentials"
  /** Names the source in the OpenAPI `securitySchemes`; unique within a list. */
  readonly name: string
  /** What `CurrentUser.Info.method` says for a user authenticated through this source. */
  readonly method: CurrentUser.AuthMethod
  /** Lower-case names of the headers it reads: never handed to backends or events. */
  readonly headers: ReadonlyArray<string>
  /**
   * Names of the query parameters it reads (a token in `?access_token=`): their values are masked
   * (`********************`) in the URL handed to backends and events, and, for a request that
   * carries one, in the platform's server span (`url.full`, `url.query`), whose access log line
   * (`HttpMiddleware.logger`) is left out. Since 0.4.0.
   */
  readonly query: ReadonlyArray<string>
  /** Sent by the browser on its own (a cookie): CSRF-checked like the session cookie. */
  readonly browserSent: boolean
  readonly read: (request: HttpServerRequest.HttpServerRequest) => Read
  /** Its `WWW-Authenticate` challenge for `realm`, if it has one. */
  readonly challenge: ((realm: string) => string) | undefined
  /** How the OpenAPI document describes it, if at all. */
  readonly security: HttpApiSecurity.HttpApiSecurity | undefined
}

/**
 * The remote-user header a trusted reverse proxy sets (Django's `RemoteUserMiddleware`). Built by
 * {@link remoteUser}.
 *
 * @example
 * ```ts
 * import { RequestSource } from "effect-auth"
 *
 * const source: RequestSource.RemoteUserSource = RequestSource.remoteUser({ header: "X-Remote-User" })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface RemoteUserSource {
  readonly _tag: "RemoteUser"
  readonly name: string
  readonly method: "remote-user"
  /** Lower-case. */
  readonly header: string
  readonly persistent: boolean
  readonly backendId: string
  /** The header's value as trusted `Credentials.RemoteUser`, or absent. */
  readonly read: (request: HttpServerRequest.HttpServerRequest) => Read
}

/**
 * The session cookie: resolved through the `Session` service, not `AuthService`. Built by
 * {@link sessionCookie}.
 *
 * @example
 * ```ts
 * import { RequestSource } from "effect-auth"
 *
 * const source: RequestSource.SessionCookieSource = RequestSource.sessionCookie({ name: "sid" })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface SessionCookieSource {
  readonly _tag: "SessionCookie"
  readonly name: string
  readonly method: "session"
  readonly cookie: SessionCookieOptions
}

/**
 * Any source.
 *
 * @example
 * ```ts
 * import { RequestSource } from "effect-auth"
 *
 * const sources: ReadonlyArray<RequestSource.RequestSource> = [RequestSource.bearer, RequestSource.sessionCookie()]
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type RequestSource = CredentialsSource | RemoteUserSource | SessionCookieSource

/**
 * The session cookie's attributes.
 *
 * @example
 * ```ts
 * import type { RequestSource } from "effect-auth"
 *
 * const cookie: RequestSource.SessionCookieOptions = { name: "sid", secure: true, sameSite: "strict" }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface SessionCookieOptions {
  /** Default: `"sessionid"` (Django's). */
  readonly name?: string | undefined
  /** Send the cookies over HTTPS only. Default: `false`; turn it on in production. */
  readonly secure?: boolean | undefined
  /** Default: `"lax"`. `"none"` requires `secure`. */
  readonly sameSite?: "lax" | "strict" | "none" | undefined
  readonly domain?: string | undefined
  /** Default: `"/"`. */
  readonly path?: string | undefined
}

// The built-in sources read no query parameter.
const noQuery: ReadonlyArray<string> = []

/**
 * Builds a credentials source of your own: `read` must be cheap and synchronous (it runs on every
 * request that reaches it) and must never throw. Name in `headers` every header it reads and in
 * `query` every query parameter it reads: backends and `AuthEvents` never see those headers, and
 * see those parameters' values masked (`?access_token=********************`) in the request's
 * `url`, as credentials are cleansed. The parameters are matched as `URLSearchParams` decodes
 * them, ignoring case. The platform records what the client sent: `HttpAuth.layer` has the
 * server span record those headers redacted, and a request whose URL carries one of those
 * parameters has its value masked in the server span's `url.full` and `url.query` when
 * `HttpAuth` resolves it, and no line in `HttpMiddleware.logger`'s access log (which took the URL
 * before any handler ran).
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { RequestSource } from "effect-auth"
 *
 * // A signed token in a custom header, for a backend whose Schema is `{ signed: secret }`.
 * const signed = RequestSource.make({
 *   name: "signed",
 *   method: "api-key",
 *   headers: ["X-Signed-Token"],
 *   read: (request) => {
 *     const value = request.headers["x-signed-token"]
 *     if (value === undefined) return RequestSource.absent
 *     return /^[A-Za-z0-9._-]{1,512}$/.test(value)
 *       ? RequestSource.credentials({ signed: Redacted.make(value) })
 *       : RequestSource.malformed
 *   }
 * })
 *
 * // A token in the query, for clients that cannot set headers (EventSource, WebSocket): the
 * // events see `/events?access_token=********************`.
 * const queryToken = RequestSource.make({
 *   name: "queryToken",
 *   method: "api-key",
 *   query: ["access_token"],
 *   read: (request) => {
 *     const token = new URLSearchParams(request.url.split("?")[1] ?? "").get("access_token")
 *     return token === null ? RequestSource.absent : RequestSource.credentials({ token: Redacted.make(token) })
 *   }
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: {
  readonly name: string
  readonly method: CurrentUser.AuthMethod
  readonly headers?: ReadonlyArray<string> | undefined
  /**
   * The query parameters it reads: masked in the URL backends and events see, and in the server
   * span of a request that carries one (which the access log leaves out). Since 0.4.0.
   */
  readonly query?: ReadonlyArray<string> | undefined
  readonly browserSent?: boolean | undefined
  readonly read: (request: HttpServerRequest.HttpServerRequest) => Read
  readonly challenge?: ((realm: string) => string) | undefined
  readonly security?: HttpApiSecurity.HttpApiSecurity | undefined
}): CredentialsSource => ({
  _tag: "Credentials",
  name: options.name,
  method: options.method,
  headers: (options.headers ?? []).map((name) => name.toLowerCase()),
  query: options.query ?? noQuery,
  browserSent: options.browserSent ?? false,
  read: options.read,
  challenge: options.challenge,
  security: options.security
})

// The Authorization sources answer "absent" for the other scheme, so that Bearer and Basic can
// both be listed; a header that no listed source claims is a 401 (`HttpAuth` checks that after
// the last source that reads `authorization`). Where no source reads it, the header is not read at
// all (a proxy's own Basic auth forwards it; Django reads none).
const authorizationHeaders: ReadonlyArray<string> = ["authorization"]

// The `Authorization` header read for one scheme: absent without the header or with another
// scheme (a later source may claim it), malformed (401) when it does not parse.
const readAuthorization = <Tag extends "Bearer" | "Basic">(
  request: HttpServerRequest.HttpServerRequest,
  scheme: Tag,
  toCredentials: (parsed: Extract<Authorization.Authorization, { readonly _tag: Tag }>) => unknown
): Read => {
  const header = request.headers.authorization
  if (header === undefined) return absent
  const parsed = Authorization.parse(header)
  return parsed._tag === scheme
    ? credentials(toCredentials(parsed as Extract<Authorization.Authorization, { readonly _tag: Tag }>))
    : parsed._tag === "Malformed"
    ? malformed
    : absent
}

/**
 * `Authorization: Bearer <token>` → `{ token }` (`Redacted`). One scheme (case-insensitive), one
 * space, one token68: `Token x`, `Bearer` alone or two spaces are a 401.
 *
 * @example
 * ```ts
 * import { HttpAuth, RequestSource } from "effect-auth"
 *
 * const HttpAuthLive = HttpAuth.layer({ sources: [RequestSource.bearer] })
 * ```
 *
 * @since 0.2.0
 * @category sources
 */
export const bearer: CredentialsSource = {
  _tag: "Credentials",
  name: "bearer",
  method: "bearer",
  headers: authorizationHeaders,
  query: noQuery,
  browserSent: false,
  read: (request) => readAuthorization(request, "Bearer", (parsed) => ({ token: Redacted.make(parsed.token) })),
  challenge: (realm) => `Bearer realm="${realm}"`,
  security: HttpApiSecurity.bearer
}

/**
 * `Authorization: Basic <base64(user:password)>` → `{ username, password }`. The password is what
 * follows the first colon, so it may contain colons; bad base64, no colon or control characters
 * are a 401. Off by default in `HttpAuth`: browsers answer its challenge with a login dialog.
 * Browsers also resend Basic credentials on their own, cross-site too, so an unsafe request that
 * carries them is CSRF-checked like one with a session cookie (its Origin or Referer must be this
 * site or a trusted origin); bearer tokens and API keys are not.
 *
 * @example
 * ```ts
 * import { HttpAuth, RequestSource } from "effect-auth"
 *
 * const HttpAuthLive = HttpAuth.layer({ sources: [RequestSource.bearer, RequestSource.basic] })
 * ```
 *
 * @since 0.2.0
 * @category sources
 */
export const basic: CredentialsSource = {
  _tag: "Credentials",
  name: "basic",
  method: "basic",
  headers: authorizationHeaders,
  query: noQuery,
  // Browsers keep Basic credentials once given (our own challenge asks for them) and send them
  // cross-site like a cookie: the source is ambient, so its unsafe requests are CSRF-checked.
  browserSent: true,
  read: (request) =>
    readAuthorization(request, "Basic", (parsed) => ({
      username: parsed.username,
      password: Redacted.make(parsed.password)
    })),
  challenge: (realm) => `Basic realm="${realm}", charset="UTF-8"`,
  security: HttpApiSecurity.basic
}

/**
 * An API key in a header of your choice → `{ token }` (default) or `{ apiKey }` with
 * `field: "apiKey"`. An empty value or one longer than 8192 characters is a 401.
 *
 * @example
 * ```ts
 * import { RequestSource } from "effect-auth"
 *
 * const source = RequestSource.apiKey({ header: "X-API-Key", field: "apiKey" })
 * ```
 *
 * @since 0.2.0
 * @category sources
 */
export const apiKey = (options: {
  /** E.g. `"X-API-Key"`. */
  readonly header: string
  /** The credentials key the value goes under: `{ token }` (default) or `{ apiKey }`. */
  readonly field?: "token" | "apiKey" | undefined
}): CredentialsSource => {
  // Lower-cased once here: Node's request headers are lower-case.
  const header = options.header.toLowerCase()
  const field = options.field ?? "token"
  return {
    _tag: "Credentials",
    name: "apiKey",
    method: "api-key",
    headers: [header],
    query: noQuery,
    browserSent: false,
    read: (request) => {
      const value = request.headers[header]
      if (value === undefined) return absent
      return value === "" || value.length > 8192 ? malformed : credentials({ [field]: Redacted.make(value) })
    },
    challenge: (realm) => `ApiKey realm="${realm}"`,
    security: HttpApiSecurity.apiKey({ key: options.header, in: "header" })
  }
}

/**
 * The user name a trusted reverse proxy put in a header → trusted `Credentials.RemoteUser` (the
 * only kind `backends/RemoteUserBackend` accepts by default). A session the remote-user backend
 * started ends when a later request comes without the header, unless `persistent` (Django's
 * `PersistentRemoteUserMiddleware`). Enable it only behind a proxy that strips the header from
 * what clients send. In `sources` it comes before `sessionCookie` (else `AuthConfigError`): the
 * header is checked against the session on every request. The header logs the user in, so an
 * unsafe request carrying it is CSRF-checked as `HttpAuth.login` is: over HTTPS (Secure cookies)
 * it must send an `Origin` or `Referer` of this site or a trusted origin.
 *
 * @example
 * ```ts
 * import { RequestSource } from "effect-auth"
 *
 * const source = RequestSource.remoteUser({ header: "X-Remote-User", persistent: true })
 * ```
 *
 * @since 0.2.0
 * @category sources
 */
export const remoteUser = (options: {
  /**
   * The header as the proxy sends it, dashed. Default: `"Remote-User"`. A name with `_` (Django's
   * META spelling `HTTP_X_REMOTE_USER`, which is the header `X-Remote-User`) fails `HttpAuth`'s
   * layer with `AuthConfigError`: the proxy would not set it, and a client could.
   */
  readonly header?: string | undefined
  /**
   * Keep the session when a later request comes without the header, as Django's
   * `PersistentRemoteUserMiddleware` does. A header that is there but empty still ends a session
   * the remote-user backend started (it names nobody), as there. Default: `false`.
   */
  readonly persistent?: boolean | undefined
  /** Id of the remote-user backend in the `AuthService` chain. Default: `"remote-user"`. */
  readonly backendId?: string | undefined
} = {}): RemoteUserSource => {
  const header = (options.header ?? "Remote-User").toLowerCase()
  return {
    _tag: "RemoteUser",
    name: "remoteUser",
    method: "remote-user",
    header,
    persistent: options.persistent ?? false,
    backendId: options.backendId ?? "remote-user",
    read: (request) => {
      const value = request.headers[header]
      return value === undefined || value === "" ? absent : credentials(TrustedRemoteUser.trusted(value))
    }
  }
}

/**
 * The session cookie, resolved through the `Session` service (which `HttpAuth` then requires).
 * Cookies are `HttpOnly`, `SameSite=Lax`, `Path=/` by default.
 *
 * @example
 * ```ts
 * import { RequestSource } from "effect-auth"
 *
 * const source = RequestSource.sessionCookie({ secure: true, sameSite: "strict" })
 * ```
 *
 * @since 0.2.0
 * @category sources
 */
export const sessionCookie = (options: SessionCookieOptions = {}): SessionCookieSource => ({
  _tag: "SessionCookie",
  name: "session",
  method: "session",
  cookie: options
})

/**
 * The OpenAPI security schemes of a list of sources, by source name: what `Authentication.Tag`
 * declares. The remote-user header has none (a proxy sets it, clients never do).
 *
 * @example
 * ```ts
 * import { RequestSource } from "effect-auth"
 *
 * Object.keys(RequestSource.security([RequestSource.bearer, RequestSource.basic])) // ["bearer", "basic"]
 * ```
 *
 * @since 0.2.0
 * @category utils
 */
export const security = (
  sources: ReadonlyArray<RequestSource>
): Record<string, HttpApiSecurity.HttpApiSecurity> => {
  const out: Record<string, HttpApiSecurity.HttpApiSecurity> = {}
  for (const source of sources) {
    switch (source._tag) {
      case "Credentials":
        if (source.security !== undefined) out[source.name] = source.security
        break
      case "SessionCookie":
        out[source.name] = HttpApiSecurity.apiKey({ key: source.cookie.name ?? "sessionid", in: "cookie" })
        break
      case "RemoteUser":
        break
    }
  }
  return out
}
