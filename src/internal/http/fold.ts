// The fold of request sources, compiled once when the `HttpAuth` layer is built.
//
// Sources are tried in order; the first one present decides (a malformed one is a 401, never a
// fall-through to a weaker source). The sources a browser sends on its own (session cookie,
// remote-user header, custom `browserSent` sources) form the "ambient" part: before the first of
// them is read, the session (if the cookie names one) is loaded once and the CSRF check runs with
// its token (and as a login's check when the request carries a remote-user header). What the request resolved to, and the session loaded on the way, are remembered on
// the request object, so that `login`/`logout` and nested middlewares do not read the store again.
import type * as HttpApiError from "@effect/platform/HttpApiError"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import type * as AuthError from "../../AuthError.js"
import type { AuthRequest } from "../../AuthRequest.js"
import type * as AuthService from "../../AuthService.js"
import * as Csrf from "../../http/Csrf.js"
import * as AuthAttempt from "../authAttempt.js"
import * as CurrentUser from "../../http/CurrentUser.js"
import type * as RequestSource from "../../http/RequestSource.js"
import type * as HttpAuth from "../../http/HttpAuth.js"
import * as Permissions from "../../Permissions.js"
import type * as Session from "../../Session.js"
import type { User } from "../../User.js"
import * as Cookies from "./cookies.js"
import * as Failures from "./failures.js"
import * as SecretQuery from "./secretQuery.js"
import { connectionGone } from "./serverRequest.js"

type Failure = Failures.Failure
type Resolved = Option.Option<CurrentUser.Info>

/** What the fold needs, prepared at layer build. @internal */
export interface Env {
  readonly auth: AuthService.Service
  readonly sources: ReadonlyArray<RequestSource.RequestSource>
  /** Some when a session-cookie source is listed and the `Session` service is provided. */
  readonly sessions: Option.Option<Session.Service>
  readonly cookieName: string
  readonly cookies: Cookies.CookieHandlers
  readonly csrf: Csrf.Settings
  readonly authRequest: (request: HttpServerRequest.HttpServerRequest) => AuthRequest
  /** The query parameters the sources read a credential from (lower-case); empty for most apps. */
  readonly secretQuery: ReadonlySet<string>
  readonly unauthorized: Effect.Effect<never, HttpApiError.Unauthorized>
}

/** The request's permission cache, if the caller has one (else the `Info` makes one lazily). @internal */
export type Cache = Permissions.RequestCacheStore | undefined

/** @internal */
export interface Fold {
  /**
   * The request's resolution, memoised on the request, run in `fiber` (the fiber that runs the
   * returned effect): an `Exit` when nothing had to run as an effect.
   */
  readonly resolve: (
    request: HttpServerRequest.HttpServerRequest,
    cache: Cache,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ) => Effect.Effect<Resolved, Failure>
  /** The live session the resolution loaded: none when the cookie named none, undefined when not loaded. */
  readonly loadedSession: (
    request: HttpServerRequest.HttpServerRequest
  ) => Option.Option<Session.SessionUser> | undefined
  /**
   * After a login, a step-up, a password change (`session`: the session now in force) or a logout
   * (none) in this request: what the rest of the request sees, as Django's `login` sets
   * `request.user` and `request.session`. Later asks in the same request resolve to it, without the
   * store and without another CSRF check, and later session calls use its id.
   */
  readonly adopt: (
    request: HttpServerRequest.HttpServerRequest,
    session: Option.Option<Session.SessionUser>,
    cache: Cache
  ) => void
  /**
   * The session the request's cookie names, loaded as a resolution loads it (see `sessionOf`),
   * for a login, logout or step-up that no resolution read first; remembered as the loaded session.
   */
  readonly loadSession: (
    request: HttpServerRequest.HttpServerRequest,
    service: Session.Service,
    cookieValue: string
  ) => Effect.Effect<Option.Option<Session.SessionUser>, Failure>
  /** The session cookie's value, when sessions are on. */
  readonly sessionIdOf: (request: HttpServerRequest.HttpServerRequest) => string | undefined
  readonly toFailure: (error: AuthError.AuthenticateError) => Effect.Effect<never, Failure>
}

// A direct step answers synchronously that its source is absent (undefined), or the effect that
// decides the request.
type Direct = (
  request: HttpServerRequest.HttpServerRequest,
  cache: Cache,
  fiber: Fiber.RuntimeFiber<unknown, unknown>
) => Effect.Effect<Resolved, Failure> | undefined
// An ambient step also gets the session loaded before the ambient part.
type Ambient = (
  request: HttpServerRequest.HttpServerRequest,
  cookieValue: string | undefined,
  session: Option.Option<Session.SessionUser>,
  cache: Cache,
  fiber: Fiber.RuntimeFiber<unknown, unknown>
) => Effect.Effect<Resolved, Failure> | undefined

const isAmbient = (source: RequestSource.RequestSource): boolean =>
  source._tag !== "Credentials" || source.browserSent

/** @internal */
export const make = (env: Env): Fold => {
  const { auth, authRequest, cookies, csrf, sessions, unauthorized } = env
  const toFailure = Failures.fromAuthenticate(unauthorized)
  const storeUnavailable = Failures.unavailableOnFailure

  // Remembered per service instance: two HttpAuth services never read each other's answers.
  const memoKey: unique symbol = Symbol("effect-auth/HttpAuth/resolved") as any
  const sessionKey: unique symbol = Symbol("effect-auth/HttpAuth/session") as any
  const sessionIdKey: unique symbol = Symbol("effect-auth/HttpAuth/sessionId") as any
  type Memo = {
    [memoKey]?: Exit.Exit<Resolved, Failure> | undefined
    [sessionKey]?: Option.Option<Session.SessionUser> | undefined
    /** The session id this request now goes by (null: none), once it started or ended one. */
    [sessionIdKey]?: string | null | undefined
  }
  // Kept on the transport's request (`source`), which every view of one request shares: a mounted
  // router's copy (`modify`), and the request holding a form's body that the CSRF check read and
  // the router middlewares hand the app. Kept on a view, a handler behind either would not see
  // what the middleware resolved (`updateSessionAuthHash` after a form's password change would
  // find no session to bind again).
  const memoOf = (request: HttpServerRequest.HttpServerRequest): Memo => {
    const source = request.source
    return typeof source === "object" && source !== null ? source as Memo : request as Memo
  }
  const loadedSession = (request: HttpServerRequest.HttpServerRequest) => memoOf(request)[sessionKey]
  // The session this request goes by from now on (none: it ended its session), and that session's id.
  const goBy = (request: HttpServerRequest.HttpServerRequest, session: Option.Option<Session.SessionUser>): Memo => {
    const memo = memoOf(request)
    memo[sessionKey] = session
    memo[sessionIdKey] = Option.isSome(session) ? Redacted.value(session.value.sessionId) : null
    return memo
  }
  const adopt = (request: HttpServerRequest.HttpServerRequest, session: Option.Option<Session.SessionUser>, cache: Cache) => {
    goBy(request, session)[memoKey] = Exit.succeed(Option.map(session, (started) => info(started, "session", cache)))
  }
  const sessionIdOf = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
    if (Option.isNone(sessions)) return undefined
    const adopted = memoOf(request)[sessionIdKey]
    return adopted === undefined ? Cookies.lastValue(request.headers.cookie, env.cookieName) : adopted ?? undefined
  }

  const info = (
    who: {
      readonly user: User
      readonly backend: string
      readonly degraded?: boolean | undefined
      readonly secondFactor?: string | undefined
      readonly secondFactorDevice?: string | undefined
    },
    method: CurrentUser.AuthMethod,
    cache: Cache
  ) =>
    CurrentUser.make(
      {
        user: who.user,
        backend: who.backend,
        method,
        degraded: who.degraded,
        secondFactor: who.secondFactor,
        // Only a stepped-up session has anything to check, and only a route that requires the
        // second factor runs the check: every other request reads no device.
        secondFactorHolds: who.secondFactor === undefined || Option.isNone(sessions)
          ? undefined
          : secondFactorCheck(sessions.value, who)
      },
      auth,
      cache
    )
  const secondFactorCheck = (
    service: Session.Service,
    session: Pick<Session.SessionUser, "user" | "secondFactor" | "secondFactorDevice">
  ) => Effect.suspend(() => service.secondFactorHolds(session))

  const viaCredentials = (
    request: HttpServerRequest.HttpServerRequest,
    credentials: unknown,
    method: CurrentUser.AuthMethod,
    cache: Cache,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<Resolved, Failure> => {
    // A client gone with its address unread: no backend runs for it (see `connectionGone`).
    if (connectionGone(request)) return Effect.interrupt
    const attempt = AuthAttempt.attempt(auth, fiber, credentials, authRequest(request))
    // The common case, backends that answered with `Exit`s: read on the spot, no fiber step.
    if (AuthAttempt.isExit(attempt)) {
      if (attempt._tag === "Success") return Exit.succeed(Option.some(info(attempt.value, method, cache)))
      if (attempt.cause._tag === "Fail") return toFailure(attempt.cause.error)
      return attempt as Exit.Exit<never>
    }
    return Effect.matchEffect(attempt, {
      onFailure: toFailure,
      onSuccess: (authenticated) => Effect.succeed(Option.some(info(authenticated, method, cache)))
    })
  }

  const credentialsStep = (source: RequestSource.CredentialsSource): Direct => (request, cache, fiber) => {
    const read = source.read(request)
    switch (read._tag) {
      case "Absent":
        return undefined
      case "Malformed":
        return unauthorized
      case "Credentials":
        return viaCredentials(request, read.credentials, source.method, cache, fiber)
    }
  }

  // An Authorization header that no listed source claimed (another scheme, a disabled one) is a
  // 401, never a fall-through to the cookie.
  const unclaimedAuthorization = (request: HttpServerRequest.HttpServerRequest) =>
    request.headers.authorization === undefined ? undefined : unauthorized

  const dropSession = (request: HttpServerRequest.HttpServerRequest, cookieValue: string | undefined) =>
    Option.isNone(sessions)
      ? cookies.clear
      : Effect.zipRight(
        storeUnavailable(sessions.value.logout(cookieValue, authRequest(request))),
        Effect.zipRight(cookies.clear, Effect.sync(() => goBy(request, Option.none())))
      )

  const cleanRemoteUser = (source: RequestSource.RemoteUserSource, value: string): string => {
    // The backend is found by id, not imported: `http/` knows no concrete backend.
    const backend = Option.getOrUndefined(auth.backend(source.backendId))
    return Predicate.hasProperty(backend, "cleanUsername") && Predicate.isFunction(backend.cleanUsername)
      ? String(backend.cleanUsername(value))
      : value
  }

  // Django's RemoteUserMiddleware, on top of the session the cookie resolved to. The common cases
  // (no header, or the header naming the session's user) answer without a generator.
  const remoteUserStep = (source: RequestSource.RemoteUserSource): Ambient => (request, cookieValue, session, cache) => {
    const read = source.read(request)
    const fromRemote = Option.isSome(session) && session.value.backend === source.backendId
    if (read._tag !== "Credentials") {
      // Only a missing header is exempt under `persistent`, as in Django's
      // PersistentRemoteUserMiddleware: an empty one names nobody, which is not the session's user.
      if (fromRemote && (!source.persistent || request.headers[source.header] === "")) {
        return Effect.as(dropSession(request, cookieValue), Option.none())
      }
      return undefined
    }
    const value = (read.credentials as { readonly remoteUser: string }).remoteUser
    // Compared exactly, as the backend finds names and Django's RemoteUserMiddleware compares: a
    // header naming "ªdmin" is another principal than the session's "admin".
    if (Option.isSome(session) && session.value.user.username === cleanRemoteUser(source, value)) {
      return Effect.succeed(Option.some(info(session.value, "remote-user", cache)))
    }
    return switchRemoteUser(request, cookieValue, fromRemote ? Option.none() : session, fromRemote, read.credentials, cache)
  }

  // The header names another user than the session's (or there is no session): authenticate
  // them, and start their session.
  const switchRemoteUser = (
    request: HttpServerRequest.HttpServerRequest,
    cookieValue: string | undefined,
    kept: Option.Option<Session.SessionUser>,
    fromRemote: boolean,
    credentials: unknown,
    cache: Cache
  ): Effect.Effect<Resolved, Failure> =>
    Effect.gen(function*() {
      if (fromRemote) yield* dropSession(request, cookieValue)
      if (connectionGone(request)) return yield* Effect.interrupt
      const result = yield* Effect.either(auth.authenticateUnknown(credentials, authRequest(request)))
      if (Either.isLeft(result)) {
        if (result.left._tag === "AuthenticationFailed") return Option.map(kept, (s) => info(s, "session", cache))
        return yield* toFailure(result.left)
      }
      if (Option.isSome(sessions)) {
        const started = yield* storeUnavailable(sessions.value.login(result.right, {
          sessionId: Option.isSome(kept) ? cookieValue : undefined,
          request: authRequest(request)
        }))
        yield* cookies.set(started)
        // The rest of the request (a page rendering `HttpAuth.csrfToken`) goes by the new session.
        goBy(request, Option.some(started))
      }
      return Option.some(info(result.right, "remote-user", cache))
    })

  const sessionStep: Ambient = (_request, _cookieValue, session, cache) =>
    Option.isSome(session) ? Effect.succeed(Option.some(info(session.value, "session", cache))) : undefined

  const ambientCredentialsStep = (source: RequestSource.CredentialsSource): Ambient => {
    const step = credentialsStep(source)
    return (request, _cookieValue, _session, cache, fiber) => step(request, cache, fiber)
  }

  // Compiled once: the direct steps up to the first ambient source, then the ambient ones.
  const direct: Array<Direct> = []
  const ambient: Array<Ambient> = []
  const lastAuthorization = env.sources.reduce(
    (last, source, i) => source._tag === "Credentials" && source.headers.includes("authorization") ? i : last,
    -1
  )
  let inAmbient = false
  env.sources.forEach((source, i) => {
    inAmbient ||= isAmbient(source)
    switch (source._tag) {
      case "Credentials":
        if (inAmbient) ambient.push(ambientCredentialsStep(source))
        else direct.push(credentialsStep(source))
        break
      case "RemoteUser":
        ambient.push(remoteUserStep(source))
        break
      case "SessionCookie":
        if (Option.isSome(sessions)) ambient.push(sessionStep)
        break
    }
    if (i === lastAuthorization) {
      if (inAmbient) ambient.push(unclaimedAuthorization)
      else direct.push(unclaimedAuthorization)
    }
  })
  const hasAmbient = ambient.length > 0
  // The remote-user headers: a request carrying one logs in by it (or checks it against the
  // session), so its CSRF check is a login's: over HTTPS it must name its origin, as
  // `HttpAuth.login` must and as Django's CsrfViewMiddleware asks of every secure request.
  const remoteUserHeaders = env.sources.flatMap((source) => source._tag === "RemoteUser" ? [source.header] : [])
  const sessionRequest: Csrf.CheckOptions = { session: true }
  const carriesRemoteUser = (request: HttpServerRequest.HttpServerRequest): boolean => {
    for (const header of remoteUserHeaders) if (request.headers[header] !== undefined) return true
    return false
  }

  const runAmbient = (
    request: HttpServerRequest.HttpServerRequest,
    cookieValue: string | undefined,
    session: Option.Option<Session.SessionUser>,
    cache: Cache,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<Resolved, Failure> => {
    memoOf(request)[sessionKey] = session
    const checked = Csrf.check(
      csrf,
      request,
      Option.map(session, (s) => s.csrfToken),
      carriesRemoteUser(request) ? sessionRequest : undefined
    )
    for (const step of ambient) {
      const decided = step(request, cookieValue, session, cache, fiber)
      if (decided !== undefined) return checked === Effect.void ? decided : Effect.zipRight(checked, decided)
    }
    return checked === Effect.void ? Effect.succeedNone : Effect.as(checked, Option.none())
  }

  const viaAmbient = (
    request: HttpServerRequest.HttpServerRequest,
    cache: Cache,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<Resolved, Failure> => {
    const cookieValue = sessionIdOf(request)
    if (Option.isNone(sessions)) return runAmbient(request, cookieValue, Option.none(), cache, fiber)
    // From here the answer depends on the session cookie (its user, its CSRF token, or its
    // absence: anonymous), so the response says so, as Django's SessionMiddleware adds
    // `Vary: Cookie` once the session was accessed. A request decided by an earlier source (a
    // bearer token) never gets here and pays nothing.
    if (cookieValue === undefined) {
      return Effect.zipRight(cookies.vary, runAmbient(request, cookieValue, Option.none(), cache, fiber))
    }
    // The continuation runs in the same fiber, so `fiber` still describes it.
    return Effect.zipRight(
      cookies.vary,
      Effect.flatMap(sessionOf(request, sessions.value, cookieValue), (session) =>
        runAmbient(
          request,
          Option.isSome(session) ? Redacted.value(session.value.sessionId) : cookieValue,
          session,
          cache,
          fiber
        ))
    )
  }

  // The session the cookie names, with its user (`currentUser`): none when it is gone, past its
  // limits, or its user no longer holds it (a password changed since: Django's `get_user` flushes
  // it), and then the cookie is cleared. A session verified under a fallback secret moved to a
  // new id (Django's `get_user` cycles the key): the response carries its cookie, as Django's
  // middleware sends the cycled key, and the rest of the request goes by it: the old id is dead,
  // so a logout, a step-up or a login later in the request (or the remote-user step) must name
  // the new one.
  const sessionOf = (
    request: HttpServerRequest.HttpServerRequest,
    service: Session.Service,
    cookieValue: string
  ): Effect.Effect<Option.Option<Session.SessionUser>, Failure> =>
    Effect.flatMap(storeUnavailable(service.currentUser(cookieValue)), (session): Effect.Effect<Option.Option<Session.SessionUser>, Failure> => {
      if (Option.isNone(session)) return Effect.as(forgetCookie(service, cookieValue), session)
      // The one check a session that holds under the current secret pays: it kept its id.
      if (Redacted.value(session.value.sessionId) === cookieValue) return Effect.succeed(session)
      return Effect.zipRight(cookies.set(session.value), Effect.sync(() => (goBy(request, session), session)))
    })
  const loadSession: Fold["loadSession"] = (request, service, cookieValue) =>
    Effect.tap(sessionOf(request, service, cookieValue), (session) => {
      memoOf(request)[sessionKey] = session
    })

  // A cookie that names no session is cleared, unless the store still holds something under it
  // that is not ours to end (an anonymous Django session): Django keeps that cookie.
  const forgetCookie = (service: Session.Service, cookieValue: string) =>
    Effect.flatMap(
      storeUnavailable(service.holdsOther(cookieValue)),
      (held) => held ? Effect.void : cookies.clear
    )

  const fold = (
    request: HttpServerRequest.HttpServerRequest,
    cache: Cache,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<Resolved, Failure> => {
    for (const step of direct) {
      const decided = step(request, cache, fiber)
      if (decided !== undefined) return decided
    }
    return hasAmbient ? viaAmbient(request, cache, fiber) : Effect.succeedNone
  }

  // One resolution per request, however many middlewares and handlers ask. A request is handled
  // by one fiber, so the outcome is simply remembered on the request (as the platform marks
  // handled requests): a plain value, no Deferred, since nothing else can be waiting for it.
  const remember = (request: HttpServerRequest.HttpServerRequest, exit: Exit.Exit<Resolved, Failure>) => {
    if (!Exit.isInterrupted(exit)) memoOf(request)[memoKey] = exit
    return exit
  }
  // A source that reads a credential from the query (`?access_token=`, for EventSource and
  // WebSocket clients): the platform's server span and access log would keep it as sent. Known at
  // build time, so apps whose sources read no query parameter (the built-in ones) pay nothing.
  const secretQuery = env.secretQuery.size === 0 ? undefined : env.secretQuery
  const resolve = (
    request: HttpServerRequest.HttpServerRequest,
    cache: Cache,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<Resolved, Failure> => {
    const known = memoOf(request)[memoKey]
    if (known !== undefined) return known
    if (secretQuery !== undefined && SecretQuery.carries(request.url, secretQuery)) {
      return Effect.zipRight(SecretQuery.keepOutOfTraceAndLog(fiber, secretQuery), decide(request, cache, fiber))
    }
    return decide(request, cache, fiber)
  }
  const decide = (
    request: HttpServerRequest.HttpServerRequest,
    cache: Cache,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<Resolved, Failure> => {
    const decided = fold(request, cache, fiber)
    return AuthAttempt.isExit(decided)
      ? remember(request, decided)
      : Effect.flatMap(Effect.exit(decided), (exit) => remember(request, exit))
  }

  return { resolve, loadedSession, loadSession, adopt, sessionIdOf, toFailure }
}

// The middlewares resolve a request in the fiber they run in. A `Service` built by `HttpAuth.make`
// registers its fold here; any other (a test double) is asked through `authenticate`, with the
// cache provided around it.
const registry = new WeakMap<HttpAuth.Service, Fold>()

/** @internal */
export const register = (service: HttpAuth.Service, fold: Fold): HttpAuth.Service => {
  registry.set(service, fold)
  return service
}

/** The request's resolution by `service`, run in `fiber`: an `Exit` when nothing had to run. @internal */
export const resolveIn = (
  service: HttpAuth.Service,
  request: HttpServerRequest.HttpServerRequest,
  cache: Cache,
  fiber: Fiber.RuntimeFiber<unknown, unknown>
): Effect.Effect<Resolved, Failure> => {
  const fold = registry.get(service)
  if (fold !== undefined) return fold.resolve(request, cache, fiber)
  const resolved = service.authenticate(request) as Effect.Effect<Resolved, Failure>
  return cache === undefined ? resolved : Effect.provideService(resolved, Permissions.RequestCache, cache)
}
