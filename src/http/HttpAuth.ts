/**
 * Authentication for `@effect/platform` HTTP servers: who is making a request, login and logout
 * with a session cookie, and the plain-router middleware. `http/Authentication` wraps the same
 * service as `HttpApiMiddleware` for `HttpApi`.
 *
 * Credentials are read in this order; the first source present decides:
 *
 * 1. `Authorization: Bearer <token>` → credentials `{ token }` (when `bearer`, default on).
 * 2. `Authorization: Basic <base64(user:password)>` → `{ username, password }` (when `basic`,
 *    default off: browsers answer its challenge with a login dialog). The password is what
 *    follows the first colon, so it may contain colons.
 * 3. The API-key header (when `apiKey` is set) → `{ token }`, or `{ apiKey }` with
 *    `field: "apiKey"`.
 * 4. The remote-user header set by a trusted reverse proxy (when `remoteUser` is set), see
 *    `backends/RemoteUserBackend`.
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
 * | `AuthenticationFailed` (no backend matched), malformed header, anonymous on a protected route | 401 + `WWW-Authenticate` |
 * | `PermissionDenied`, CSRF failure, missing permission | 403 |
 * | `BackendUnavailable`, `TransportError`, session store down | 503 |
 *
 * `WWW-Authenticate` lists a challenge per enabled header scheme, e.g.
 * `Bearer realm="api", Basic realm="api", charset="UTF-8"` (`Session realm="api"` when only
 * cookies are enabled).
 *
 * Session cookies are `HttpOnly`, `SameSite=Lax`, `Path=/` by default, `Secure` when configured,
 * and last `Session`'s `maxAge`. A cookie whose session is gone (expired, logged out, stale
 * password) is deleted in the response. Login also sets the CSRF cookie (see `http/Csrf`), and
 * both are deleted by logout.
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
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AuthConfigError } from "../AuthError.js"
import type * as AuthError from "../AuthError.js"
import type { AuthRequest } from "../AuthRequest.js"
import * as AuthService from "../AuthService.js"
import * as RemoteUserBackend from "../backends/RemoteUserBackend.js"
import * as Authorization from "../internal/http/authorization.js"
import { credentialHeaders, toAuthRequest } from "../internal/http/serverRequest.js"
import * as Permissions from "../Permissions.js"
import * as Session from "../Session.js"
import type { SessionStoreError } from "../SessionStore.js"
import type { User } from "../User.js"
import * as Csrf from "./Csrf.js"
import * as CurrentUser from "./CurrentUser.js"

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
  /** Default: `"Remote-User"`. */
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
}

/**
 * What the HTTP layer fails with: 401, 403 or 503, with empty bodies.
 *
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
export type Failure = HttpApiError.Unauthorized | HttpApiError.Forbidden | HttpApiError.ServiceUnavailable

/**
 * Schema of {@link Failure}, the `failure` of the `HttpApiMiddleware`s.
 *
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
  HttpApiError.ServiceUnavailable
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
  /** Authenticates the credentials and starts a session (sets the cookies). Needs sessions. */
  readonly login: (
    request: HttpServerRequest.HttpServerRequest,
    credentials: unknown
  ) => Effect.Effect<Session.SessionUser, Failure>
  /** Starts a session for a user authenticated otherwise (e.g. an OAuth callback). Needs sessions. */
  readonly loginAs: (
    request: HttpServerRequest.HttpServerRequest,
    authenticated: AuthService.Authenticated
  ) => Effect.Effect<Session.SessionUser, Failure>
  /** Ends the request's session (if any) and deletes the cookies. */
  readonly logout: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<void, Failure>
  /** Keeps the request's session after its user changed their password (new id, new cookie). */
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

const headerToken = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const realmText = /^[\x20-\x7e]{1,100}$/

interface CookieSettings {
  readonly name: string
  readonly options: {
    readonly httpOnly: true
    readonly secure: boolean
    readonly sameSite: "lax" | "strict" | "none"
    readonly path: string
    readonly domain?: string
  }
}

const configError = (message: string) => Effect.fail(new AuthConfigError({ message: `HttpAuth: ${message}` }))

const cookieSettings = (input: SessionCookieOptions): Either.Either<CookieSettings, string> => {
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
  return Either.right({
    name,
    options: { httpOnly: true, secure, sameSite, path, ...(input.domain === undefined ? {} : { domain: input.domain }) }
  })
}

const unavailable = () => new HttpApiError.ServiceUnavailable()
// Failures carry no request data, so each is built once.
const forbidden = Effect.fail(new HttpApiError.Forbidden())
const serviceUnavailable = Effect.fail(unavailable())

/** A request's resolution (memoised), the user's permission questions answered with `cache`. */
type Resolve = (
  request: HttpServerRequest.HttpServerRequest,
  cache: Permissions.RequestCacheStore
) => Effect.Effect<Option.Option<CurrentUser.Info>, Failure>

// The middlewares resolve a request with the permission cache they are about to provide. A
// `Service` built by `make` registers that entry point here; any other (a test double) is asked
// through `authenticate`, with the cache provided around it.
const resolvers = new WeakMap<Service, Resolve>()
const resolveWith = (
  service: Service,
  request: HttpServerRequest.HttpServerRequest,
  cache: Permissions.RequestCacheStore
): Effect.Effect<Option.Option<CurrentUser.Info>, Failure> => {
  const resolve = resolvers.get(service)
  return resolve !== undefined
    ? resolve(request, cache)
    : Effect.provideService(service.authenticate(request), Permissions.RequestCache, cache)
}

/**
 * Builds the service on `AuthService` (and `Session`, when provided). Fails with
 * `AuthConfigError` on a bad option: a header or cookie name that is not an HTTP token, a
 * `Session`-requiring option without the service, a remote-user backend id that is not in the
 * chain.
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
  Effect.gen(function*() {
    const auth = yield* AuthService.AuthService
    const sessionService = yield* Effect.serviceOption(Session.Session)

    const realm = options.realm ?? "api"
    if (!realmText.test(realm) || realm.includes("\"") || realm.includes("\\")) {
      return yield* configError("realm must be 1 to 100 printable ASCII characters without quotes or backslashes")
    }
    const bearer = options.bearer ?? true
    const basic = options.basic ?? false

    const apiKeyHeader = options.apiKey?.header.toLowerCase()
    if (apiKeyHeader !== undefined && (!headerToken.test(apiKeyHeader) || credentialHeaders.includes(apiKeyHeader))) {
      return yield* configError(`apiKey.header ${JSON.stringify(options.apiKey?.header)} is not a usable header name`)
    }
    const apiKeyField = options.apiKey?.field ?? "token"

    if (options.session !== undefined && options.session !== false && Option.isNone(sessionService)) {
      return yield* configError("session cookies are configured but no Session service is provided")
    }
    const sessions = options.session === false ? Option.none<Session.Service>() : sessionService
    const cookieInput = typeof options.session === "object" ? options.session : {}
    const cookie = cookieSettings(cookieInput)
    if (Either.isLeft(cookie)) return yield* configError(cookie.left)
    const sessionCookie = cookie.right

    const csrfResolved = Csrf.resolve(options.csrf, sessionCookie.options.secure)
    if (Either.isLeft(csrfResolved)) return yield* configError(csrfResolved.left)
    const csrf = csrfResolved.right
    if (Option.contains(csrf.cookieName, sessionCookie.name)) {
      return yield* configError("the CSRF cookie and the session cookie need different names")
    }

    const remoteInput = options.remoteUser === true ? {} : options.remoteUser === false ? undefined : options.remoteUser
    const remote = remoteInput === undefined ? undefined : {
      header: (remoteInput.header ?? "Remote-User").toLowerCase(),
      persistent: remoteInput.persistent ?? false,
      backendId: remoteInput.backendId ?? "remote-user"
    }
    if (remote !== undefined) {
      if (!headerToken.test(remote.header) || credentialHeaders.includes(remote.header)) {
        return yield* configError(`remoteUser.header ${JSON.stringify(remoteInput?.header)} is not a usable header name`)
      }
      if (Option.isNone(auth.backend(remote.backendId))) {
        return yield* configError(`remoteUser.backendId "${remote.backendId}" is not a configured backend`)
      }
    }
    const cleanRemoteUser = (value: string): string => {
      const backend = Option.getOrUndefined(auth.backend(remote?.backendId ?? ""))
      return Predicate.hasProperty(backend, "cleanUsername") && Predicate.isFunction(backend.cleanUsername)
        ? String(backend.cleanUsername(value))
        : value
    }

    const hidden = new Set<string>([...credentialHeaders, csrf.headerName])
    if (apiKeyHeader !== undefined) hidden.add(apiKeyHeader)
    const authRequest = (request: HttpServerRequest.HttpServerRequest): AuthRequest => toAuthRequest(request, hidden)

    const challenges: Array<string> = []
    if (bearer) challenges.push(`Bearer realm="${realm}"`)
    if (basic) challenges.push(`Basic realm="${realm}", charset="UTF-8"`)
    if (apiKeyHeader !== undefined) challenges.push(`ApiKey realm="${realm}"`)
    if (challenges.length === 0) challenges.push(`Session realm="${realm}"`)
    const challenge = challenges.join(", ")

    const addChallenge = HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.succeed(
        response.status === 401 ? HttpServerResponse.setHeader(response, "www-authenticate", challenge) : response
      )
    )
    const unauthorized: Effect.Effect<never, HttpApiError.Unauthorized> = Effect.zipRight(
      addChallenge,
      Effect.fail(new HttpApiError.Unauthorized())
    )

    const maxAge = Option.match(sessions, { onNone: () => Duration.days(14), onSome: (s) => s.maxAge })
    const setCookies = (started: Session.SessionUser) =>
      HttpApp.appendPreResponseHandler((_request, response) => {
        let next = HttpServerResponse.unsafeSetCookie(
          response,
          sessionCookie.name,
          Redacted.value(started.sessionId),
          { ...sessionCookie.options, maxAge }
        )
        if (Option.isSome(csrf.cookieName)) {
          next = HttpServerResponse.unsafeSetCookie(next, csrf.cookieName.value, Redacted.value(started.csrfToken), {
            ...sessionCookie.options,
            httpOnly: false,
            maxAge
          })
        }
        return Effect.succeed(next)
      })
    const clearCookies = HttpApp.appendPreResponseHandler((_request, response) => {
      const { domain, path } = sessionCookie.options
      const where = { path, ...(domain === undefined ? {} : { domain }) }
      let next = HttpServerResponse.expireCookie(response, sessionCookie.name, where)
      if (Option.isSome(csrf.cookieName)) next = HttpServerResponse.expireCookie(next, csrf.cookieName.value, where)
      return Effect.succeed(next)
    })

    const toFailure = (error: AuthError.AuthenticateError): Effect.Effect<never, Failure> => {
      switch (error._tag) {
        case "AuthenticationFailed":
          return unauthorized
        case "PermissionDenied":
          return forbidden
        case "BackendUnavailable":
        case "TransportError":
          return serviceUnavailable
      }
    }
    const storeFailure = (_: SessionStoreError | AuthError.TransportError) => unavailable()

    const info = (
      who: { readonly user: User; readonly backend: string },
      method: CurrentUser.AuthMethod,
      cache: Permissions.RequestCacheStore
    ) => CurrentUser.make({ user: who.user, backend: who.backend, method }, auth, cache)

    // `cache` is the request's permission cache: the one the middleware runs the handler with.
    const viaCredentials = (
      request: HttpServerRequest.HttpServerRequest,
      credentials: unknown,
      method: CurrentUser.AuthMethod,
      cache: Permissions.RequestCacheStore
    ): Effect.Effect<Option.Option<CurrentUser.Info>, Failure> =>
      Effect.map(
        Effect.catchAll(auth.authenticateUnknown(credentials, authRequest(request)), toFailure),
        (authenticated) => Option.some(info(authenticated, method, cache))
      )

    const viaAuthorization = (
      request: HttpServerRequest.HttpServerRequest,
      header: string,
      cache: Permissions.RequestCacheStore
    ) => {
      const parsed = Authorization.parse(header)
      switch (parsed._tag) {
        case "Bearer":
          return bearer ? viaCredentials(request, { token: Redacted.make(parsed.token) }, "bearer", cache) : unauthorized
        case "Basic":
          return basic
            ? viaCredentials(
              request,
              { username: parsed.username, password: Redacted.make(parsed.password) },
              "basic",
              cache
            )
            : unauthorized
        default:
          return unauthorized
      }
    }

    const viaApiKey = (request: HttpServerRequest.HttpServerRequest, value: string, cache: Permissions.RequestCacheStore) =>
      value === "" || value.length > 8192
        ? unauthorized
        : viaCredentials(request, { [apiKeyField]: Redacted.make(value) }, "api-key", cache)

    const sessionOf = (request: HttpServerRequest.HttpServerRequest): string | undefined =>
      Option.isSome(sessions) ? request.cookies[sessionCookie.name] : undefined

    // Django's RemoteUserMiddleware, on top of the session the cookie resolved to. The common
    // cases (no header, or the header naming the session's user) answer without a generator.
    const viaRemoteUser = (
      request: HttpServerRequest.HttpServerRequest,
      cookieValue: string | undefined,
      session: Option.Option<Session.SessionUser>,
      cache: Permissions.RequestCacheStore
    ): Effect.Effect<Option.Option<CurrentUser.Info>, Failure> => {
      const settings = remote!
      const value = request.headers[settings.header]
      const fromRemote = Option.isSome(session) && session.value.backend === settings.backendId
      if (value === undefined || value === "") {
        if (fromRemote && !settings.persistent) return Effect.as(dropSession(request, cookieValue), Option.none())
        return Effect.succeed(Option.map(session, (s) => info(s, "session", cache)))
      }
      if (Option.isSome(session) && session.value.user.username === cleanRemoteUser(value)) {
        return Effect.succeed(Option.some(info(session.value, "remote-user", cache)))
      }
      return switchRemoteUser(request, cookieValue, fromRemote ? Option.none() : session, fromRemote, value, cache)
    }

    const dropSession = (request: HttpServerRequest.HttpServerRequest, cookieValue: string | undefined) =>
      Effect.zipRight(
        Effect.mapError(
          Effect.flatMap(Effect.fromNullable(Option.getOrUndefined(sessions)), (s) => s.logout(cookieValue, authRequest(request))),
          () => unavailable()
        ),
        clearCookies
      )

    // The header names another user than the session's (or there is no session): authenticate
    // them, and start their session.
    const switchRemoteUser = (
      request: HttpServerRequest.HttpServerRequest,
      cookieValue: string | undefined,
      kept: Option.Option<Session.SessionUser>,
      fromRemote: boolean,
      value: string,
      cache: Permissions.RequestCacheStore
    ): Effect.Effect<Option.Option<CurrentUser.Info>, Failure> =>
      Effect.gen(function*() {
        if (fromRemote) yield* dropSession(request, cookieValue)
        const result = yield* Effect.either(auth.authenticate(RemoteUserBackend.trusted(value), authRequest(request)))
        if (Either.isLeft(result)) {
          if (result.left._tag === "AuthenticationFailed") return Option.map(kept, (s) => info(s, "session", cache))
          return yield* toFailure(result.left)
        }
        if (Option.isSome(sessions)) {
          const started = yield* Effect.mapError(
            sessions.value.login(result.right, {
              sessionId: Option.isSome(kept) ? cookieValue : undefined,
              request: authRequest(request)
            }),
            storeFailure
          )
          yield* setCookies(started)
        }
        return Option.some(info(result.right, "remote-user", cache))
      })

    // Without a remote-user header the session (if any) is the answer.
    const afterSession = (
      request: HttpServerRequest.HttpServerRequest,
      cookieValue: string | undefined,
      session: Option.Option<Session.SessionUser>,
      cache: Permissions.RequestCacheStore
    ): Effect.Effect<Option.Option<CurrentUser.Info>, Failure> => {
      const checked = Csrf.check(csrf, request, Option.map(session, (s) => s.csrfToken))
      if (remote !== undefined) return Effect.zipRight(checked, viaRemoteUser(request, cookieValue, session, cache))
      return Effect.as(checked, Option.map(session, (s) => info(s, "session", cache)))
    }

    const viaAmbient = (
      request: HttpServerRequest.HttpServerRequest,
      cache: Permissions.RequestCacheStore
    ): Effect.Effect<Option.Option<CurrentUser.Info>, Failure> => {
      const cookieValue = sessionOf(request)
      if (cookieValue === undefined || Option.isNone(sessions)) {
        return afterSession(request, cookieValue, Option.none(), cache)
      }
      return Effect.flatMap(Effect.mapError(sessions.value.currentUser(cookieValue), storeFailure), (session) =>
        Option.isNone(session)
          ? Effect.zipRight(clearCookies, afterSession(request, cookieValue, session, cache))
          : afterSession(request, cookieValue, session, cache))
    }

    const ambient = Option.isSome(sessions) || remote !== undefined
    const resolve = (
      request: HttpServerRequest.HttpServerRequest,
      cache: Permissions.RequestCacheStore
    ): Effect.Effect<Option.Option<CurrentUser.Info>, Failure> => {
      const headers = request.headers
      if (bearer || basic) {
        const authorization = headers.authorization
        if (authorization !== undefined) return viaAuthorization(request, authorization, cache)
      }
      if (apiKeyHeader !== undefined) {
        const key = headers[apiKeyHeader]
        if (key !== undefined) return viaApiKey(request, key, cache)
      }
      return ambient ? viaAmbient(request, cache) : Effect.succeedNone
    }

    // One resolution per request, however many middlewares and handlers ask. A request is
    // handled by one fiber, so the outcome is simply remembered on the request object (as the
    // platform marks handled requests), under a symbol of this service instance: a plain value,
    // no Deferred, since nothing else can be waiting for it.
    const memo: unique symbol = Symbol("effect-auth/HttpAuth/resolved") as any
    type Memo = { [memo]?: Exit.Exit<Option.Option<CurrentUser.Info>, Failure> | undefined }
    const forget = (request: HttpServerRequest.HttpServerRequest) => {
      ;(request as Memo)[memo] = undefined
    }
    const resolveOnce: Resolve = (request, cache) =>
      (request as Memo)[memo] ?? Effect.flatMap(Effect.exit(resolve(request, cache)), (exit) => {
        if (!Exit.isInterrupted(exit)) (request as Memo)[memo] = exit
        return exit
      })
    // Looks the memo up when run, not when built: an effect built early may run after another
    // middleware resolved the request.
    const authenticate: Service["authenticate"] = (request) =>
      Effect.contextWithEffect((context: Context.Context<never>) =>
        (request as Memo)[memo] ??
          resolveOnce(request, context.unsafeMap.get(Permissions.RequestCache.key) ?? { answers: new Map() })
      )

    const requireSessions = Option.match(sessions, {
      onNone: () =>
        Effect.dieMessage("HttpAuth: login and logout need sessions (provide the Session service, session not false)"),
      onSome: Effect.succeed
    })

    const csrfFor = (request: HttpServerRequest.HttpServerRequest, s: Session.Service, cookieValue: string | undefined) =>
      cookieValue === undefined
        ? Csrf.check(csrf, request, Option.none())
        : Effect.flatMap(Effect.mapError(s.csrfToken(cookieValue), storeFailure), (token) => Csrf.check(csrf, request, token))

    const loginAs: Service["loginAs"] = (request, authenticated) =>
      Effect.gen(function*() {
        const s = yield* requireSessions
        const cookieValue = sessionOf(request)
        yield* csrfFor(request, s, cookieValue)
        const started = yield* Effect.mapError(
          s.login(authenticated, { sessionId: cookieValue, request: authRequest(request) }),
          storeFailure
        )
        forget(request)
        yield* setCookies(started)
        return started
      })

    const login: Service["login"] = (request, credentials) =>
      Effect.gen(function*() {
        const s = yield* requireSessions
        yield* csrfFor(request, s, sessionOf(request))
        const authenticated = yield* Effect.catchAll(auth.authenticateUnknown(credentials, authRequest(request)), toFailure)
        return yield* loginAs(request, authenticated)
      })

    const logout: Service["logout"] = (request) =>
      Effect.gen(function*() {
        const s = yield* requireSessions
        const cookieValue = sessionOf(request)
        yield* csrfFor(request, s, cookieValue)
        yield* Effect.mapError(s.logout(cookieValue, authRequest(request)), storeFailure)
        forget(request)
        yield* clearCookies
      })

    const updateSessionAuthHash: Service["updateSessionAuthHash"] = (request, user) =>
      Effect.gen(function*() {
        const s = yield* requireSessions
        const updated = yield* Effect.mapError(s.updateSessionAuthHash(sessionOf(request), user), storeFailure)
        forget(request)
        if (Option.isSome(updated)) yield* setCookies(updated.value)
      })

    const service: Service = { authenticate, login, loginAs, logout, updateSessionAuthHash, unauthorized, challenge, csrf }
    resolvers.set(service, resolveOnce)
    return service
  })

/**
 * The service as a layer. Provide `Session.layer(...)` beside `AuthService` to enable cookies.
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
export const layer = (options: Options = {}): Layer.Layer<HttpAuth, AuthConfigError, AuthService.AuthService> =>
  Layer.effect(HttpAuth, make(options))

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
 * Authenticates `credentials` (e.g. the decoded login payload) and starts a session: sets the
 * session and CSRF cookies and answers the session (its `csrfToken` is for the client). The old
 * session of the request, if any, is discarded. CSRF: the Origin/Referer check always applies
 * (login CSRF); a request that carries a live session must also send its token.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { HttpAuth } from "effect-auth"
 *
 * const handler = (payload: { readonly username: string; readonly password: Redacted.Redacted<string> }) =>
 *   HttpAuth.login(payload).pipe(
 *     Effect.map(({ csrfToken, user }) => ({ username: user.username, csrfToken: Redacted.value(csrfToken) }))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const login = (
  credentials: unknown
): Effect.Effect<Session.SessionUser, Failure, HttpAuth | HttpServerRequest.HttpServerRequest> =>
  withRequest((service, request) => service.login(request, credentials))

/**
 * Starts a session for a user your own code authenticated.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, HttpAuth } from "effect-auth"
 *
 * const callback = (credentials: unknown) => Effect.flatMap(AuthService.authenticate(credentials), HttpAuth.loginAs)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const loginAs = (
  authenticated: AuthService.Authenticated
): Effect.Effect<Session.SessionUser, Failure, HttpAuth | HttpServerRequest.HttpServerRequest> =>
  withRequest((service, request) => service.loginAs(request, authenticated))

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
 * After the request's user changed their own password, keeps their session (under a new id)
 * while every other session of theirs ends. Pass the user as reloaded after the change.
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

const isFailure = (u: unknown): u is Failure =>
  u instanceof HttpApiError.Unauthorized || u instanceof HttpApiError.Forbidden ||
  u instanceof HttpApiError.ServiceUnavailable

/**
 * The response for a {@link Failure}: 401, 403 or 503 with an empty body (the 401 gets its
 * `WWW-Authenticate` header from the handler that `unauthorized` registered).
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
export const toResponse = (failure: Failure): HttpServerResponse.HttpServerResponse =>
  failure._tag === "Unauthorized" ? responses[401] : failure._tag === "Forbidden" ? responses[403] : responses[503]

// Responses are immutable (the 401's challenge is added to a copy), so each is built once.
const responses = {
  401: HttpServerResponse.empty({ status: 401 }),
  403: HttpServerResponse.empty({ status: 403 }),
  503: HttpServerResponse.empty({ status: 503 })
}

const respond = (failure: Failure) => Effect.succeed(toResponse(failure))

// The plain-router middlewares. The request's permission cache, the user and the optional user
// are provided in one context change: each change costs about as much as the rest of the
// middleware, so three `provideService`s in a row would dominate it.
const withUser = <E, R>(app: HttpApp.Default<E, R>, required: boolean): HttpApp.Default<any, any> =>
  Effect.catchIf(
    Effect.contextWithEffect((context: Context.Context<HttpAuth | HttpServerRequest.HttpServerRequest>) => {
      const service = Context.unsafeGet(context, HttpAuth)
      const cache: Permissions.RequestCacheStore = { answers: new Map() }
      return Effect.flatMap(
        resolveWith(service, Context.unsafeGet(context, HttpServerRequest.HttpServerRequest), cache),
        (user): Effect.Effect<HttpServerResponse.HttpServerResponse, E | Failure, R | HttpServerRequest.HttpServerRequest> => {
          if (required && Option.isNone(user)) return service.unauthorized
          const services = new Map(context.unsafeMap)
          services.set(Permissions.RequestCache.key, cache)
          if (required) services.set(CurrentUser.CurrentUser.key, (user as Option.Some<CurrentUser.Info>).value)
          services.set(CurrentUser.OptionalUser.key, user)
          // `Effect.provide(context)` would merge (copy) the context once more.
          return Effect.locally(app, FiberRef.currentContext, Context.unsafeMake(services))
        }
      )
    }),
    isFailure,
    respond
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
