// Builds the `HttpAuth` service: checks the options, turns them into the list of request sources,
// compiles the fold once, and implements login / logout on top of it.
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import { AuthConfigError } from "../../AuthError.js"
import type { AuthRequest } from "../../AuthRequest.js"
import * as AuthService from "../../AuthService.js"
import type * as Credentials from "../../Credentials.js"
import * as Csrf from "../../http/Csrf.js"
import type * as HttpAuth from "../../http/HttpAuth.js"
import * as RequestSource from "../../http/RequestSource.js"
import * as Permissions from "../../Permissions.js"
import * as Session from "../../Session.js"
import { fieldOf } from "../fieldOf.js"
import * as IpAddress from "../ipAddress.js"
import * as Cookies from "./cookies.js"
import { fromStepUp, unavailableOnFailure as storeUnavailable } from "./failures.js"
import * as Fold from "./fold.js"
import * as LoginUsername from "./loginUsername.js"
import { connectionGone, credentialHeaders, type Hidden, toAuthRequest } from "./serverRequest.js"
import * as StateGuarded from "./stateGuarded.js"

const realmText = /^[\x20-\x7e]{1,100}$/

const configError = (message: string) => Effect.fail(new AuthConfigError({ message: `HttpAuth: ${message}` }))

const shorthand = ["bearer", "apiKey", "basic", "remoteUser", "session"] as const

/** The sources the shorthand options stand for, in their fixed order. @internal */
export const sourcesOf = (
  options: HttpAuth.Options,
  sessionProvided: boolean
): Array<RequestSource.RequestSource> => {
  const sources: Array<RequestSource.RequestSource> = []
  if (options.bearer ?? true) sources.push(RequestSource.bearer)
  // The sources a browser sends on its own (Basic, remote user, the session cookie) come last:
  // they are CSRF-checked, and so is every source after the first of them.
  if (options.apiKey !== undefined) sources.push(RequestSource.apiKey(options.apiKey))
  if (options.basic ?? false) sources.push(RequestSource.basic)
  if (options.remoteUser !== undefined && options.remoteUser !== false) {
    sources.push(RequestSource.remoteUser(options.remoteUser === true ? {} : options.remoteUser))
  }
  if (options.session !== false && (options.session !== undefined || sessionProvided)) {
    sources.push(RequestSource.sessionCookie(typeof options.session === "object" ? options.session : {}))
  }
  return sources
}

// A header named in Django's META spelling (`http_x_remote_user`) as the proxy sends it (`X-Remote-User`).
const dashed = (header: string): string =>
  header.replace(/^http_/, "").split(/[_-]/).filter((part) => part !== "").map((part) =>
    part.charAt(0).toUpperCase() + part.slice(1)
  ).join("-")

// The messages name the option a user wrote: the shorthand one, or the source in `sources`.
const label = (source: RequestSource.RequestSource, viaSources: boolean): string =>
  viaSources ? `sources: ${source.name}` : source._tag === "RemoteUser" ? "remoteUser" : source.name

/** @internal */
export const make = (
  options: HttpAuth.Options
): Effect.Effect<
  {
    readonly service: HttpAuth.Service
    readonly fold: Fold.Fold
    /** The request headers that carry a secret: credentials and the CSRF token. */
    readonly secretHeaders: ReadonlyArray<string>
  },
  AuthConfigError,
  AuthService.AuthService
> =>
  Effect.gen(function*() {
    const auth = yield* AuthService.AuthService
    const sessionService = yield* Effect.serviceOption(Session.Session)

    const realm = options.realm ?? "api"
    if (!realmText.test(realm) || realm.includes("\"") || realm.includes("\\")) {
      return yield* configError("realm must be 1 to 100 printable ASCII characters without quotes or backslashes")
    }

    const viaSources = options.sources !== undefined
    if (viaSources && shorthand.some((key) => options[key] !== undefined)) {
      return yield* configError(`give either sources or ${shorthand.join("/")}, not both`)
    }
    if (!viaSources && options.session !== undefined && options.session !== false && Option.isNone(sessionService)) {
      return yield* configError("session cookies are configured but no Session service is provided")
    }
    const sources = options.sources ?? sourcesOf(options, Option.isSome(sessionService))

    const names = new Set<string>()
    const hidden = new Set<string>(credentialHeaders)
    const hiddenQuery = new Set<string>()
    let sessionSource: RequestSource.SessionCookieSource | undefined
    for (const source of sources) {
      if (names.has(source.name)) return yield* configError(`two sources are named ${JSON.stringify(source.name)}`)
      names.add(source.name)
      switch (source._tag) {
        case "Credentials":
          for (const header of source.headers) {
            // `authorization` is read only by the built-in parsers of its schemes.
            const builtIn = header === "authorization" &&
              (source === RequestSource.bearer || source === RequestSource.basic)
            if (!builtIn && (!Cookies.headerToken.test(header) || credentialHeaders.includes(header))) {
              return yield* configError(`${label(source, viaSources)}.header ${JSON.stringify(header)} is not a usable header name`)
            }
            hidden.add(header)
          }
          for (const parameter of source.query) {
            if (parameter === "") return yield* configError(`${label(source, viaSources)}.query "" is not a query parameter name`)
            hiddenQuery.add(parameter.toLowerCase())
          }
          break
        case "RemoteUser":
          if (!Cookies.headerToken.test(source.header) || credentialHeaders.includes(source.header)) {
            return yield* configError(`${label(source, viaSources)}.header ${JSON.stringify(source.header)} is not a usable header name`)
          }
          // Django's META spelling (HTTP_X_REMOTE_USER) is the header X-Remote-User. A name with an
          // underscore is one the proxy does not set and may pass through from the client as it
          // came (nginx drops or forwards underscore headers, it does not strip them): any client
          // sending it would log in as whoever it names.
          if (source.header.includes("_")) {
            return yield* configError(
              `${label(source, viaSources)}.header ${JSON.stringify(source.header)} contains "_": use the dashed header ` +
                `name the proxy sends, ${JSON.stringify(dashed(source.header))} (Django's HTTP_X_REMOTE_USER is the ` +
                `header X-Remote-User)`
            )
          }
          if (Option.isNone(auth.backend(source.backendId))) {
            return yield* configError(`remoteUser.backendId "${source.backendId}" is not a configured backend`)
          }
          // The header is a check on the session (Django's RemoteUserMiddleware compares it with
          // the session's user on every request): after the cookie it would never run, and a
          // session it started would outlive the header or a switch to another user.
          if (sessionSource !== undefined) {
            return yield* configError(`${label(source, viaSources)} must come before the session cookie in sources`)
          }
          break
        case "SessionCookie":
          if (Option.isNone(sessionService)) {
            return yield* configError("session cookies are configured but no Session service is provided")
          }
          sessionSource = source
          break
      }
    }

    const sessions = sessionSource === undefined ? Option.none<Session.Service>() : sessionService
    const cookie = Cookies.settings(sessionSource?.cookie ?? {})
    if (Either.isLeft(cookie)) return yield* configError(cookie.left)
    const sessionCookie = cookie.right

    const csrfResolved = Csrf.resolve(options.csrf, sessionCookie.options.secure)
    if (Either.isLeft(csrfResolved)) return yield* configError(csrfResolved.left)
    const csrf = csrfResolved.right
    if (Option.contains(csrf.cookieName, sessionCookie.name)) {
      return yield* configError("the CSRF cookie and the session cookie need different names")
    }
    hidden.add(csrf.headerName)
    const proxyList = IpAddress.parseRangeList(options.trustedProxies)
    if ("problem" in proxyList) return yield* configError(`trustedProxies: ${proxyList.problem}`)
    const trustedProxies = proxyList.ranges
    const hiddenParts: Hidden = { headers: hidden, query: hiddenQuery }
    const authRequest = (request: HttpServerRequest.HttpServerRequest): AuthRequest =>
      toAuthRequest(request, hiddenParts, trustedProxies)

    const challenges: Array<string> = []
    for (const source of sources) {
      if (source._tag === "Credentials" && source.challenge !== undefined) challenges.push(source.challenge(realm))
    }
    if (challenges.length === 0) challenges.push(`Session realm="${realm}"`)
    const challenge = challenges.join(", ")

    // Built once: the pre-response handler and the failure carry nothing of the request.
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
    const cookies = Cookies.handlers(sessionCookie, csrf.cookieName, maxAge)

    const fold = Fold.make({
      auth,
      sources,
      sessions,
      cookieName: sessionCookie.name,
      cookies,
      csrf,
      authRequest,
      secretQuery: hiddenQuery,
      unauthorized
    })
    const { sessionIdOf, toFailure } = fold
    // What the rest of the request sees after it started, changed or ended its session.
    const adopt = (request: HttpServerRequest.HttpServerRequest, session: Option.Option<Session.SessionUser>) =>
      Effect.withFiberRuntime<void>((fiber) => {
        fold.adopt(request, session, fiber.currentContext.unsafeMap.get(Permissions.RequestCache.key))
        return Effect.void
      })

    // Resolves when run, not when built (an effect built early may run after another middleware
    // resolved the request), in the fiber that runs it.
    const authenticate: HttpAuth.Service["authenticate"] = (request) =>
      Effect.withFiberRuntime((fiber) =>
        fold.resolve(request, fiber.currentContext.unsafeMap.get(Permissions.RequestCache.key), fiber)
      )

    // Login, logout and a step-up read the request's session and answer with its cookies (or
    // their deletion), whatever they decide: their responses carry `Vary: Cookie` (see the fold),
    // also when no middleware resolved the request first.
    const requireSessions = Option.match(sessions, {
      onNone: () =>
        Effect.dieMessage("HttpAuth: login and logout need sessions (provide the Session service, session not false)"),
      onSome: (s) => Effect.as(cookies.vary, s)
    })

    // Login and logout start or end a session: over HTTPS they must name their origin.
    const sessionRequest: Csrf.CheckOptions = { session: true }
    // The session this request goes by: the one it already resolved to (no store read), else the
    // one its cookie names, loaded as the middleware loads it (one store read) and remembered. A
    // session the middleware would not serve (its user's password changed since, say) is ended
    // here too, so that a login, logout or step-up answers the same with and without the
    // middleware in front; a session moved to a new id is what the rest of the request goes by.
    const sessionFor = (
      request: HttpServerRequest.HttpServerRequest,
      s: Session.Service
    ): Effect.Effect<Option.Option<Session.SessionUser>, HttpAuth.Failure> => {
      const loaded = fold.loadedSession(request)
      if (loaded !== undefined) return Effect.succeed(loaded)
      const cookieValue = sessionIdOf(request)
      return cookieValue === undefined ? Effect.succeedNone : fold.loadSession(request, s, cookieValue)
    }
    // That session's token: a request that carries a live session must send it.
    const csrfFor = (request: HttpServerRequest.HttpServerRequest, s: Session.Service) =>
      Effect.flatMap(sessionFor(request, s), (session) =>
        Csrf.check(csrf, request, Option.map(session, ({ csrfToken }) => csrfToken), sessionRequest))

    // Login, logout and a second factor change the session. By a safe method (a link, an <img> on
    // another site) they would pass without any CSRF check: a cross-site page logged its visitors
    // out, or into the attacker's account. Refused, as Django's LoginView takes credentials only
    // by POST and its LogoutView (5.0+) answers GET with 405. An OAuth callback is a GET, guarded
    // by its `state` (OidcLogin marks it; `loginAs` is not held to this either).
    const refusedSafe = Effect.fail(new HttpApiError.Forbidden())
    const csrfForChange = (request: HttpServerRequest.HttpServerRequest, s: Session.Service) =>
      csrf.enabled && Csrf.isSafeMethod(request.method) && !StateGuarded.isGuarded(request)
        ? refusedSafe
        : csrfFor(request, s)

    // The request's session (if any) is discarded by `Session.login`, which deletes it without
    // reading it again. The login's choice of cookie ("remember me") goes with it, and is kept
    // with the session; what is no boolean (an untyped caller's) is no choice.
    const startSession = (
      request: HttpServerRequest.HttpServerRequest,
      s: Session.Service,
      authenticated: AuthService.Authenticated,
      options: HttpAuth.LoginOptions | undefined
    ) =>
      Effect.gen(function*() {
        const choice = fieldOf(options, "expireAtBrowserClose")
        const started = yield* storeUnavailable(
          s.login(authenticated, {
            sessionId: sessionIdOf(request),
            request: authRequest(request),
            ...(typeof choice === "boolean" && { expireAtBrowserClose: choice })
          })
        )
        yield* adopt(request, Option.some(started))
        yield* cookies.set(started)
        return started
      })

    const loginAs: HttpAuth.Service["loginAs"] = (request, authenticated, options) =>
      Effect.flatMap(requireSessions, (s) =>
        Effect.zipRight(csrfFor(request, s), startSession(request, s, authenticated, options)))

    // A login form's username as Django's AuthenticationForm cleans it (`UsernameField`: stripped,
    // NFKC), before any backend sees it; stores then look it up exactly (`get_by_natural_key`).
    const asTyped = (credentials: Credentials.Input): Credentials.Input =>
      Predicate.hasProperty(credentials, "username") && typeof credentials.username === "string"
        ? { ...credentials, username: LoginUsername.clean(credentials.username) } as Credentials.Input
        : credentials

    const login: HttpAuth.Service["login"] = (request, credentials, options) =>
      Effect.gen(function*() {
        const s = yield* requireSessions
        yield* csrfForChange(request, s)
        // a client gone with its address unread: no backend runs for it (see `connectionGone`)
        if (connectionGone(request)) return yield* Effect.interrupt
        const authenticated = yield* Effect.catchAll(
          auth.authenticate(asTyped(credentials), authRequest(request)),
          toFailure
        )
        // A code alone is no login: a second factor steps up a session its first factor started.
        if (isSecondFactor(authenticated)) return yield* unauthorized
        // Django's AuthenticationForm.confirm_login_allowed: a backend that lets inactive users
        // authenticate (`allowInactive`, Django's AllowAllUsersModelBackend) does not log them in.
        if (authenticated.user.isActive === false) return yield* unauthorized
        return yield* startSession(request, s, authenticated, options)
      })

    const stepUpFailure = fromStepUp(unauthorized)

    const isSecondFactor = (authenticated: AuthService.Authenticated): boolean =>
      Option.getOrUndefined(auth.backend(authenticated.backend))?.secondFactor === true

    // The second factor is asked of the fold like any credentials (so lockout, events and control
    // maps apply), for the session's own user: a code proves nothing about anybody else.
    const stepUp: HttpAuth.Service["stepUp"] = (request, otpToken) =>
      Effect.gen(function*() {
        const s = yield* requireSessions
        yield* csrfForChange(request, s)
        // (read by the check when no middleware did: a session verified under a fallback secret
        // moved to a new id then, its cookie sent whatever the code's verdict)
        const current = yield* sessionFor(request, s)
        if (Option.isNone(current)) return yield* unauthorized
        const currentId = Redacted.value(current.value.sessionId)
        const authenticated = yield* Effect.catchAll(
          auth.authenticateUnknown(
            { username: current.value.user.username, otpToken },
            toAuthRequest(request, hiddenParts, trustedProxies, "step-up")
          ),
          stepUpFailure
        )
        // Only a second-factor backend's word counts, not another that happens to take the shape.
        if (!isSecondFactor(authenticated)) return yield* unauthorized
        const stepped = yield* storeUnavailable(s.stepUp(currentId, authenticated))
        if (Option.isNone(stepped)) return yield* unauthorized
        yield* adopt(request, stepped)
        yield* cookies.set(stepped.value)
        return stepped.value
      })

    const logout: HttpAuth.Service["logout"] = (request) =>
      Effect.gen(function*() {
        const s = yield* requireSessions
        yield* csrfForChange(request, s)
        // The id the request goes by after the check (which may have moved the session).
        yield* storeUnavailable(s.logout(sessionIdOf(request), authRequest(request)))
        yield* adopt(request, Option.none())
        yield* cookies.clear
      })

    // Django's update_session_auth_hash re-binds only when `request.user == user`, request.user
    // coming from the session (its auth hash checked when it was loaded). Here that check is the
    // session this request resolved to: a cookie the request carried without being authenticated
    // by it (a bearer token or API key decided first) may name a session a password change already
    // ended, and re-binding it would bring it back. It is left as it is (stale: flushed when used).
    const updateSessionAuthHash: HttpAuth.Service["updateSessionAuthHash"] = (request, user) =>
      Effect.gen(function*() {
        const s = yield* requireSessions
        const loaded = fold.loadedSession(request)
        if (loaded === undefined || Option.isNone(loaded) || loaded.value.user.id !== user.id) return
        const updated = yield* storeUnavailable(s.updateSessionAuthHash(sessionIdOf(request), user))
        yield* adopt(request, updated)
        if (Option.isSome(updated)) yield* cookies.set(updated.value)
      })

    // What a page renders into its forms (Django's `get_token`): the token of the live session
    // this request resolved to, masked afresh. Resolving first means a session that has ended, or
    // whose user changed their password, hands out nothing.
    const csrfToken: HttpAuth.Service["csrfToken"] = (request) =>
      Effect.map(authenticate(request), () => {
        const loaded = fold.loadedSession(request)
        return loaded === undefined ? Option.none() : Option.map(loaded, (session) => Csrf.mask(session.csrfToken))
      })

    const service: HttpAuth.Service = {
      authenticate,
      csrfToken,
      login,
      loginAs,
      stepUp,
      logout,
      updateSessionAuthHash,
      unauthorized,
      challenge,
      csrf
    }
    return { service, fold, secretHeaders: [...hidden] }
  })
