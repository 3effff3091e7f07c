/**
 * Login sessions with Django's rules: `login`, `logout`, `currentUser` and
 * `updateSessionAuthHash`, over any `SessionStore` (memory, SQL, Redis).
 *
 * A session stores `{ userId, backendId, authHash }` and a CSRF token under a fresh id of 32
 * random bytes (base64url). The store never sees the id itself, only its SHA-256 digest.
 *
 * - `login` always issues a new id and discards the one the client sent, so no id chosen by an
 *   attacker is ever adopted (session fixation). This is stricter than Django, which keeps the id
 *   when the same user logs in again; a session of another user, or one whose auth hash is stale,
 *   is flushed as in Django. Sessions hold only the fields above, so "flush" and "cycle" both end
 *   in a new id with fresh data and a new CSRF token; a store shared with Django's sessions
 *   (`DjangoSessionStore`) keeps other apps' data at a cycle, as Django does.
 * - `currentUser` asks the backend that authenticated the session (`AuthService.getUser`; a
 *   backend no longer configured, or a user it no longer knows, means anonymous), then checks the
 *   auth hash: an HMAC-SHA256 of the user's password hash keyed by the app secret, compared in
 *   constant time. A mismatch flushes the session, so changing a password logs out every session
 *   that was started with the old one. A hash made with one of `fallbackSecrets` is accepted, and
 *   the session moves to a new id signed with the current secret (key rotation), as Django's
 *   `get_user` cycles the key: the answer's `sessionId` is then the new id, whose cookie the HTTP
 *   layer sends.
 * - `updateSessionAuthHash` re-binds one session after its own user changed their password
 *   (Django's `update_session_auth_hash`), under a new id.
 * - Expiry: `maxAge` from login (absolute, default 14 days as Django's `SESSION_COOKIE_AGE`) and,
 *   when set, `idleTimeout` since the last request. To spare the store a write per request, the
 *   last-seen time is refreshed at most once a minute (or every tenth of the idle timeout, if
 *   shorter): a session may end up to that much before `idleTimeout` after the last request.
 *   Every reader (`currentUser`, `csrfToken`, `stepUp`, `updateSessionAuthHash`, the user named by
 *   `logout`'s event) checks both against the session's own login and last-seen times, whatever
 *   expiry the store holds: a store shared with Django (`DjangoSessionStore`) holds the one Django
 *   wrote last, and a Django view saving the session (a flash message) moves it to
 *   `SESSION_COOKIE_AGE` from then. Such a session is refused before it is served, and deleted, as
 *   Django deletes a session past its own expiry (a session shared with Django has then ended for
 *   Django's pages too, and Django's login form starts a new one); while it is still live here,
 *   the next request served brings the store's expiry back to this one. Only
 *   requests this service serves count as activity for `idleTimeout`: a Django save does not.
 * - "Remember me": whether the cookie outlives the browser is the login's choice
 *   (`LoginOptions.expireAtBrowserClose`), kept with its session, else the site's
 *   (`Options.expireAtBrowserClose`, Django's `SESSION_EXPIRE_AT_BROWSER_CLOSE`). The session's end
 *   on the server is the same either way, as in Django.
 *
 * The password hash comes from `passwordHashOf(user)`; by default the user's `passwordHash` field
 * (a `Redacted` or a string, as `UserStore.StoredUser` has it) when present. A user without one
 * (users a backend builds itself: the JWT and HTTP backends', an LDAP backend's without
 * provisioning) gets the auth hash `""`: the session is then not bound to a
 * password and ends only by logout or expiry, unless a password hash appears later (which flushes
 * it, like any change).
 *
 * `LoggedIn` and `LoggedOut` events are published on `AuthEvents`.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { AuthService, MemorySessionStore, Session, TestAuth, TestBackend } from "effect-auth"
 *
 * const SessionLive = Session.layer({ secret: Redacted.make("a long random app secret, 32+ chars") }).pipe(
 *   Layer.provide(MemorySessionStore.layer),
 *   Layer.provideMerge(TestAuth.layer([TestBackend.succeed("sso", TestBackend.user("alice"))]))
 * )
 *
 * const program = Effect.gen(function*() {
 *   const authenticated = yield* AuthService.authenticate({ token: "t" })
 *   const started = yield* Session.login(authenticated)
 *   const current = yield* Session.currentUser(started.sessionId) // Option.some({ user: alice, ... })
 *   yield* Session.logout(started.sessionId)
 * }).pipe(Effect.provide(SessionLive))
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import { AuthConfigError, type TransportError } from "./AuthError.js"
import * as AuthEvents from "./AuthEvents.js"
import type { AuthRequest } from "./AuthRequest.js"
import * as AuthService from "./AuthService.js"
import { fieldOf } from "./internal/fieldOf.js"
import { textOf } from "./internal/redactedString.js"
import * as crypto from "./internal/session/crypto.js"
import { withValueFreeSpan } from "./internal/tracing.js"
import * as SessionStore from "./SessionStore.js"
import type { User } from "./User.js"
import { forEvent } from "./internal/eventRequest.js"

/**
 * Options of {@link layer}.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type { Session } from "effect-auth"
 *
 * const options: Session.Options = {
 *   secret: Redacted.make("a long random app secret, 32+ chars"),
 *   fallbackSecrets: [Redacted.make("the previous app secret, 32+ chars")],
 *   maxAge: "14 days",
 *   idleTimeout: "2 hours",
 *   expireAtBrowserClose: true // unless a login asks to be remembered
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The app secret that keys auth hashes (Django's `SECRET_KEY`); at least 16 characters, 32+ random bytes advised. */
  readonly secret: Redacted.Redacted<string>
  /** Former secrets still accepted while a key rotation runs (Django's `SECRET_KEY_FALLBACKS`). */
  readonly fallbackSecrets?: ReadonlyArray<Redacted.Redacted<string>> | undefined
  /** Absolute lifetime from login, from one second to 1000 years (else an `AuthConfigError`). Default: 14 days. */
  readonly maxAge?: Duration.DurationInput | undefined
  /**
   * Ends a session this long after its last request served by this service, from one second to
   * 1000 years (else an `AuthConfigError`). Default: none.
   */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /**
   * Django's `SESSION_EXPIRE_AT_BROWSER_CLOSE`: the session cookies of a login that made no choice
   * of its own ({@link LoginOptions.expireAtBrowserClose}) carry no `Max-Age`, and end when the
   * browser closes. The session's end on the server (`maxAge`, `idleTimeout`) is the same, as in
   * Django. A login's own choice, kept with its session, wins. Default: `false`.
   *
   * @since 0.4.0
   */
  readonly expireAtBrowserClose?: boolean | undefined
  /** The user's stored password hash; none means the session is not bound to a password. */
  readonly passwordHashOf?: ((user: User) => Option.Option<string | Redacted.Redacted<string>>) | undefined
  /**
   * `"django"`: session keys and auth hashes as Django makes them (32 characters of `[a-z0-9]`,
   * stored as they are; `get_session_auth_hash()`), for sessions shared with a Django site through
   * `DjangoSessionStore`. `secret` and `fallbackSecrets` are then the site's `SECRET_KEY` and
   * `SECRET_KEY_FALLBACKS`. Default: `"effect-auth"` (43-character ids stored under their
   * SHA-256, so a leaked store holds no usable cookie).
   */
  readonly format?: "effect-auth" | "django" | undefined
  /**
   * With `format: "django"`, the site's `DEFAULT_HASHING_ALGORITHM` (Django 3.1–3.2), which keys
   * `get_session_auth_hash()`: `"sha1"` for a site that kept it, whose Django reads no SHA-256
   * auth hash. Give `DjangoSessionStore` the same. A hash of the other algorithm is still
   * accepted, and rewritten. `"sha1"` with another format is an `AuthConfigError`. Default: `"sha256"`.
   */
  readonly hashingAlgorithm?: "sha256" | "sha1" | undefined
}

/**
 * A session id as accepted by the functions below: the value of the session cookie.
 *
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type { Session } from "effect-auth"
 *
 * const fromCookie: Session.SessionId = "the session cookie's value"
 * const kept: Session.SessionId = Redacted.make("the session cookie's value")
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type SessionId = string | Redacted.Redacted<string>

/**
 * A live session and its user.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { Session } from "effect-auth"
 *
 * const greet = (sessionId: string) =>
 *   Effect.map(Session.currentUser(sessionId), Option.map((s: Session.SessionUser) => `${s.user.username} via ${s.backend}`))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionUser {
  readonly user: User
  /** Id of the backend that authenticated the session. */
  readonly backend: string
  readonly sessionId: Redacted.Redacted<string>
  /** The session's CSRF token (see `http/Csrf`). */
  readonly csrfToken: Redacted.Redacted<string>
  /**
   * When the session ends unless refreshed (the earlier of the absolute and idle expiries, and of
   * the store's expiry).
   */
  readonly expiresAt: Date
  /**
   * When the session's cookie is to expire (what the HTTP layer's `Max-Age` says): the session's
   * absolute end, `maxAge` from its login, or the store's where that is sooner (a Django session's
   * `set_expiry(3600)`). The idle deadline is not in it: it moves with every request while the
   * cookie is sent once, and a cookie that lapsed at the first idle deadline logged out a user
   * who kept using the site. Set on what `login`, `stepUp` and `updateSessionAuthHash` answer,
   * and `currentUser` when it moved the session to a new id (the sessions whose cookie the HTTP
   * layer sends); absent on `currentUser`'s otherwise, and where a `Session` service does not say
   * (the cookie then lasts `maxAge`).
   *
   * @since 0.4.0
   */
  readonly cookieExpiresAt?: Date | undefined
  /**
   * `true` when the login was degraded (`AuthService.Authenticated.degraded`: a backend that could
   * not answer was passed over), for the session's whole life; absent otherwise.
   */
  readonly degraded?: boolean | undefined
  /**
   * The backend that verified a second factor in this session ({@link Service.stepUp}); absent
   * while the session has passed its first factor only.
   */
  readonly secondFactor?: string | undefined
  /**
   * Which device that second factor was verified against: a keyed hash of the backend's
   * `AuthBackend.secondFactorDevice` (never the device's secret), as the session records it.
   * {@link Service.secondFactorHolds} compares it with the user's device of now.
   *
   * @since 0.4.0
   */
  readonly secondFactorDevice?: string | undefined
  /**
   * `true` when the session's cookie ends with the browser (the HTTP layer sends it without
   * `Max-Age`): its login chose so ({@link LoginOptions.expireAtBrowserClose}, or a Django view's
   * `set_expiry(0)` on a shared session), or made no choice under the site-wide
   * {@link Options.expireAtBrowserClose}. Absent otherwise, the cookie then lasting until
   * {@link cookieExpiresAt}.
   *
   * @since 0.4.0
   */
  readonly expireAtBrowserClose?: boolean | undefined
}

/**
 * Options of {@link Service.login}.
 *
 * @example
 * ```ts
 * import type { Session } from "effect-auth"
 *
 * const options: Session.LoginOptions = { sessionId: "the cookie's value", request: { method: "POST", url: "/login" } }
 * // "remember me" left unticked: the cookie ends with the browser
 * const forNow: Session.LoginOptions = { sessionId: "the cookie's value", expireAtBrowserClose: true }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface LoginOptions {
  /** The id the client sent, if any: that session is discarded. */
  readonly sessionId?: SessionId | undefined
  readonly request?: AuthRequest | undefined
  /**
   * This login's choice of cookie, kept with its session (through its requests, a password
   * change, a second factor): `true` ends it with the browser (Django's `set_expiry(0)` after
   * `login()`, "remember me" unticked); `false` makes it last `maxAge` even where the site-wide
   * {@link Options.expireAtBrowserClose} is on (`set_expiry(<age>)`, "remember me" ticked).
   * Absent: the site-wide default decides. The session's end on the server is the same either way.
   *
   * @since 0.4.0
   */
  readonly expireAtBrowserClose?: boolean | undefined
}

/**
 * What the session service offers.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Session } from "effect-auth"
 *
 * const sweep = Effect.flatMap(Session.Session, (service: Session.Service) => service.clearExpired)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * Starts a session for the user under a new id; the session in `options.sessionId` is discarded.
   * What is no `AuthService.Authenticated` (from an untyped caller: `undefined`, a user without a
   * string id, one that throws when read) fails with `SessionStoreError` (operation `"login"`)
   * before the store is asked anything.
   */
  readonly login: (
    authenticated: AuthService.Authenticated,
    options?: LoginOptions
  ) => Effect.Effect<SessionUser, SessionStore.SessionStoreError>
  /**
   * Ends the session (if any) and publishes `LoggedOut`, even for an anonymous request. Once the
   * session is read the logout runs to its end: a caller that leaves (a client disconnect, a
   * timeout) does not leave the session valid; the event then names nobody, as it does while the
   * user's backend is down.
   */
  readonly logout: (
    sessionId: SessionId | undefined,
    request?: AuthRequest
  ) => Effect.Effect<void, SessionStore.SessionStoreError>
  /**
   * The session's user, or none (no session, expired by the store or past this service's `maxAge`
   * or `idleTimeout`, user gone, backend gone, stale auth hash: that session is flushed).
   *
   * A session whose auth hash was made under one of `fallbackSecrets` moves to a new id, as
   * Django's `get_user` cycles the key (`cycle_key`) after a key rotation: the answer's `sessionId`
   * is then not the one given (send it as the new cookie, with `cookieExpiresAt`, which is set only
   * then), the old id is dead, and the session keeps its CSRF token, its login time and, in a store
   * shared with Django, its other data. Of several requests that read the old id at once, one
   * moves the session; the others answer none (one session lives on, under the winner's id), as a
   * request that reaches Django after its cycle reads an empty session. A session that verifies
   * under the current secret costs no more than before: no write beyond the idle refresh.
   *
   * @example
   * ```ts
   * import { Effect, Option, Redacted } from "effect"
   * import { Session } from "effect-auth"
   *
   * const resolve = (cookie: string) =>
   *   Effect.flatMap(Session.Session, (sessions) =>
   *     Effect.map(sessions.currentUser(cookie), Option.map((current) => ({
   *       user: current.user,
   *       // A session verified under a fallback secret moved: the response must carry its new id.
   *       newCookie: Redacted.value(current.sessionId) === cookie ? undefined : current.sessionId
   *     }))))
   * ```
   */
  readonly currentUser: (
    sessionId: SessionId | undefined
  ) => Effect.Effect<Option.Option<SessionUser>, SessionStore.SessionStoreError | TransportError>
  /**
   * After `user` changed their own password: re-binds their session to the new password hash
   * under a new id (none when the session is not `user`'s, or was logged out, or replaced, while
   * this ran: the new session is then deleted again). Pass the user as loaded after the change,
   * and the session this request was authenticated by (checked by `currentUser` before the change):
   * the stored hash is of the old password, so a session that was already stale cannot be told apart.
   */
  readonly updateSessionAuthHash: (
    sessionId: SessionId | undefined,
    user: User
  ) => Effect.Effect<Option.Option<SessionUser>, SessionStore.SessionStoreError>
  /**
   * Marks the session as having passed a second factor, verified by `authenticated` (e.g. the
   * `TotpBackend`), under a new id (the old one is discarded, as at login). None when there is no
   * live session or `authenticated` is another user: a second factor counts only for the user of
   * the first. None too when the session was logged out (or stepped up by another request) while
   * this ran: a logout is not undone by a step-up that read the session before it, and one session
   * has one successor. When the backend names its devices (`AuthBackend.secondFactorDevice`), the
   * session records a keyed hash of the user's device (none when the user has no device by now),
   * for {@link secondFactorHolds}; the backend failing to answer is its `TransportError`.
   */
  readonly stepUp: (
    sessionId: SessionId | undefined,
    authenticated: AuthService.Authenticated
  ) => Effect.Effect<Option.Option<SessionUser>, SessionStore.SessionStoreError | TransportError>
  /**
   * Whether `session`'s second factor still holds (what `CurrentUser.requireSecondFactor` asks,
   * only of routes that require it): false when it has none, when the backend that verified it is
   * no longer configured, or, for a backend that names its devices
   * (`AuthBackend.secondFactorDevice`), when the user's device is gone or is another than the one
   * the session recorded (removed and enrolled again, say). A session stepped up before devices
   * were recorded (no `secondFactorDevice`) has none either: it cannot show which device it passed,
   * so it is asked for a code again. With a backend that names no device, the session's word holds.
   *
   * @since 0.4.0
   */
  readonly secondFactorHolds: (
    session: Pick<SessionUser, "user" | "secondFactor" | "secondFactorDevice">
  ) => Effect.Effect<boolean, TransportError>
  /**
   * Ask it when {@link currentUser} found none: whether the store still holds a live entry under
   * `sessionId` all the same, one that is no login of this service (with `DjangoSessionStore`: an
   * anonymous Django session keeping a cart, a login through a Django backend not shared, a user
   * gone). The HTTP layer then keeps the cookie that names it, as Django does. Always `false` on a
   * store that keeps logins only, without asking it.
   */
  readonly holdsOther: (sessionId: SessionId | undefined) => Effect.Effect<boolean, SessionStore.SessionStoreError>
  /** The CSRF token of a live session, without loading its user. */
  readonly csrfToken: (
    sessionId: SessionId | undefined
  ) => Effect.Effect<Option.Option<Redacted.Redacted<string>>, SessionStore.SessionStoreError>
  /** Deletes expired sessions (Django's `clearsessions`); answers how many. */
  readonly clearExpired: Effect.Effect<number, SessionStore.SessionStoreError>
  readonly maxAge: Duration.Duration
  readonly idleTimeout: Option.Option<Duration.Duration>
}

/**
 * The session service; build it with {@link layer}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Session } from "effect-auth"
 *
 * const maxAge = Effect.map(Session.Session, (service) => service.maxAge)
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class Session extends Context.Tag("effect-auth/Session")<Session, Service>() {}

/**
 * The default `passwordHashOf`: the user's `passwordHash` field, `Redacted` or a string.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Session } from "effect-auth"
 *
 * Session.passwordHashField({ id: "1", username: "a", isActive: true, isSuperuser: false, passwordHash: Redacted.make("x") } as any)
 * // Option.some(<redacted>)
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const passwordHashField = (user: User): Option.Option<string | Redacted.Redacted<string>> => {
  if (!Predicate.hasProperty(user, "passwordHash")) return Option.none()
  const hash = user.passwordHash
  return Predicate.isString(hash) || Redacted.isRedacted(hash) ? Option.some(hash as string | Redacted.Redacted<string>) : Option.none()
}

// An untyped caller's value is no id, never an exception (`Redacted.isRedacted` asks `in`, which a
// hostile Proxy can throw from; `textOf` reads a Redacted that holds something else as nothing).
const idOf = (format: crypto.Format, sessionId: SessionId | undefined): string | undefined => {
  const raw = typeof sessionId === "string" ? sessionId : textOf(sessionId)
  return format.isId(raw) ? raw : undefined
}

// The id of what an untyped caller passed as a user: a string, or nothing (null, a number, a
// Proxy that throws).
const userIdOf = (user: unknown): string | undefined => {
  const id = fieldOf(user, "id")
  return typeof id === "string" ? id : undefined
}

const configError = (message: string) => Effect.fail(new AuthConfigError({ message: `Session: ${message}` }))

// A session's times are kept as far as year 9999 (`SessionStore.Millis`): a longer maxAge or
// idleTimeout made every login a SessionStoreError ("invalid record") at run time.
const longestDuration = Duration.days(1000 * 365)

const positive = (name: string, input: Duration.DurationInput | undefined, fallback: Option.Option<Duration.Duration>) => {
  if (input === undefined) return Effect.succeed(fallback)
  const duration = Duration.decodeUnknown(input)
  return Option.isSome(duration) && Duration.isFinite(duration.value) && Duration.toMillis(duration.value) >= 1000 &&
      Duration.lessThanOrEqualTo(duration.value, longestDuration)
    ? Effect.succeed(duration)
    : configError(`${name} must be a duration of at least one second and at most 1000 years`)
}

const validSecret = (secret: unknown): secret is Redacted.Redacted<string> => {
  if (!Redacted.isRedacted(secret)) return false
  const value: unknown = Redacted.value(secret)
  return Predicate.isString(value) && value.length >= 16
}

/**
 * Builds the service. Fails with `AuthConfigError` when a secret is missing or shorter than 16
 * characters, or a duration is not a finite one of at least a second.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Session } from "effect-auth"
 *
 * const service = Session.make({ secret: Redacted.make("a long random app secret, 32+ chars"), idleTimeout: "30 minutes" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<
  Service,
  AuthConfigError,
  SessionStore.SessionStore | AuthService.AuthService | AuthEvents.AuthEvents
> =>
  Effect.gen(function*() {
    if (!validSecret(options.secret)) return yield* configError("secret must be Redacted and at least 16 characters")
    const fallbacks = options.fallbackSecrets ?? []
    if (!Array.isArray(fallbacks) || !fallbacks.every(validSecret)) {
      return yield* configError("every fallback secret must be Redacted and at least 16 characters")
    }
    const maxAge = Option.getOrThrow(yield* positive("maxAge", options.maxAge, Option.some(Duration.days(14))))
    const idleTimeout = yield* positive("idleTimeout", options.idleTimeout, Option.none())
    if (options.expireAtBrowserClose !== undefined && typeof options.expireAtBrowserClose !== "boolean") {
      return yield* configError("expireAtBrowserClose must be a boolean")
    }
    // Django's `get_expire_at_browser_close`: a session's own choice, else the site's.
    const atBrowserClose = (record: SessionStore.SessionRecord) =>
      record.expireAtBrowserClose ?? options.expireAtBrowserClose === true
    const store = yield* SessionStore.SessionStore
    const auth = yield* AuthService.AuthService
    const events = yield* AuthEvents.AuthEvents

    const hashing = crypto.hashingAlgorithmOf(options.hashingAlgorithm)
    if (hashing === undefined) return yield* configError("hashingAlgorithm must be \"sha256\" or \"sha1\"")
    if (hashing === "sha1" && options.format !== "django") {
      return yield* configError("hashingAlgorithm \"sha1\" is Django's: it needs format \"django\"")
    }
    const format = options.format === "django" ? crypto.djangoFormatWith(hashing) : crypto.effectAuthFormat
    const authHash = format.authHasher(options.secret)
    // A hash made under a fallback secret (in any form the format accepts): valid, and the session
    // moves to a new id under the current one, as Django's `get_user` cycles its key. A hash in an
    // older form under the current secret (Django 3.2's `_legacy_get_session_auth_hash`): valid,
    // and rewritten in place, as the secret it proves is still the current one.
    const fallbackAuthHashes = fallbacks.flatMap((fallback) => [
      format.authHasher(fallback),
      ...format.legacyAuthHashers(fallback)
    ])
    const legacyAuthHashes = format.legacyAuthHashers(options.secret)
    // The device of a second factor, keyed as the auth hash is: by the secret, a fallback accepted.
    const deviceHash = crypto.deviceHasher(options.secret)
    const deviceHashes = [deviceHash, ...fallbacks.map(crypto.deviceHasher)]
    const passwordHashOf = options.passwordHashOf ?? passwordHashField
    const maxAgeMillis = Duration.toMillis(maxAge)
    const idleMillis = Option.map(idleTimeout, Duration.toMillis)
    const touchEvery = Option.match(idleMillis, { onNone: () => Infinity, onSome: (idle) => Math.min(idle / 10, 60_000) })

    // A hash that is no string (a `Redacted` number from an untyped store or hook) counts as none.
    const passwordHash = (user: User): string =>
      Option.match(passwordHashOf(user), {
        onNone: () => "",
        onSome: (hash) => (typeof hash === "string" ? hash : textOf(hash) ?? "")
      })
    const hashOf = (user: User) => authHash(passwordHash(user))
    // Django's `get_user`: the session's hash must be the user's password hash's, under the secret
    // or one of its fallbacks (then the session is signed again under the secret, under a new id).
    // An empty one (no password when it started) never holds under a fallback. The current
    // secret's hash is compared first and alone: a session that holds costs nothing more.
    const authHashHolds = (
      record: SessionStore.SessionRecord,
      user: User
    ): "yes" | "in an older form" | "under a fallback secret" | "no" => {
      if (crypto.equal(record.authHash, hashOf(user))) return "yes"
      if (record.authHash === "") return "no"
      const password = passwordHash(user)
      const matches = (older: (passwordHash: string) => string) => crypto.equal(record.authHash, older(password))
      return legacyAuthHashes.some(matches)
        ? "in an older form"
        : fallbackAuthHashes.some(matches)
        ? "under a fallback secret"
        : "no"
    }
    const expiry = (createdAt: number, lastSeenAt: number) =>
      Option.match(idleMillis, {
        onNone: () => createdAt + maxAgeMillis,
        onSome: (idle) => Math.min(createdAt + maxAgeMillis, lastSeenAt + idle)
      })
    // The session's end by this service's own rules, from the times in its record. A store shared
    // with another app (`DjangoSessionStore`) keeps that app's expiry as well, which the app moves
    // when it writes the session (Django's save sets `expire_date` to `SESSION_COOKIE_AGE` from
    // then): a later expiry there never lifts `maxAge` or `idleTimeout`.
    const ownExpiry = (record: SessionStore.SessionRecord) => expiry(record.createdAt, record.lastSeenAt)
    // A store's expiry later than ours by more than this is written back to ours at the next
    // request served (a Django save moved it); less is left alone (a cache's TTL read back).
    const realignAfter = 60_000

    const sessionUser = (
      user: User,
      id: string,
      record: SessionStore.SessionRecord
    ): SessionUser => ({
      user,
      backend: record.backendId,
      sessionId: Redacted.make(id),
      csrfToken: Redacted.make(record.csrfToken),
      expiresAt: new Date(Math.min(record.expiresAt, ownExpiry(record))),
      ...(record.degraded === true && { degraded: true }),
      ...(record.secondFactor !== undefined && { secondFactor: record.secondFactor }),
      ...(record.secondFactorDevice !== undefined && { secondFactorDevice: record.secondFactorDevice }),
      ...(atBrowserClose(record) && { expireAtBrowserClose: true })
    })

    // A session whose cookie is sent now (a login, a successor). `keptUntil`: the end a store
    // shared with Django gave it where that is sooner than the one asked for (`asStored`).
    const withCookie = (
      user: User,
      id: string,
      record: SessionStore.SessionRecord,
      keptUntil: number
    ): SessionUser => ({
      ...sessionUser(user, id, record),
      cookieExpiresAt: new Date(Math.min(record.createdAt + maxAgeMillis, keptUntil))
    })

    // A live session by the store and by this service's own expiry. One past ours has ended, and
    // is deleted, as Django deletes a session past its own expiry: in a store shared with Django
    // it was left for Django to end, and its user, logged in on Django pages and anonymous here,
    // could not get back in by Django's login form (Django's `login` over a session of the same
    // user keeps it as it is, with the times that ended it here). A delete that fails leaves it
    // ended all the same; the next request tries again.
    const none = Option.none<readonly [string, SessionStore.SessionRecord]>()
    const load = (sessionId: SessionId | undefined, now: number) => {
      const id = idOf(format, sessionId)
      if (id === undefined) return Effect.succeed(none)
      const key = format.storeKey(id)
      return Effect.flatMap(store.get(key, now), (found) =>
        Option.isNone(found)
          ? Effect.succeed(none)
          : now < ownExpiry(found.value)
          ? Effect.succeed(Option.some([id, found.value] as const))
          : Effect.as(Effect.ignore(store.delete(key)), none))
    }

    // A new id for `record`; the old session (if any) is deleted after the new one is stored,
    // so a failed write never leaves the user without a session. `carry`: the new id takes over
    // what a store shared with Django keeps besides the login (Django's `cycle_key`); `login`: but
    // Django's CSRF secret, which its `login` rotates.
    const issue = (record: SessionStore.SessionRecord, now: number, old: string | undefined, carry: boolean, login = false) =>
      Effect.gen(function*() {
        const id = format.newId()
        if (carry && old !== undefined && store.cycle !== undefined) {
          yield* store.cycle(format.storeKey(old), format.storeKey(id), record, now, { login })
        } else {
          yield* store.set(format.storeKey(id), record, now)
        }
        const oldWasThere = old === undefined ? false : yield* store.delete(format.storeKey(old)).pipe(
          // The old session stays and the call fails: the new one, whose id nobody is given, must
          // not stay behind in the store until it expires.
          Effect.tapError(() => Effect.ignore(store.delete(format.storeKey(id))))
        )
        return { id, oldWasThere }
      })

    // The successor of a live session (step-up, password change): it stands only if the session
    // it replaces was still there when it was deleted. A logout (or another successor) that came
    // between the read and the write otherwise came undone: the new cookie logged the user back
    // in, or two step-ups left two sessions. The loser's new session is deleted again.
    const succeed = (record: SessionStore.SessionRecord, now: number, old: string) =>
      Effect.flatMap(issue(record, now, old, true), ({ id, oldWasThere }) =>
        !oldWasThere
          ? Effect.as(store.delete(format.storeKey(id)), Option.none<readonly [string, SessionStore.SessionRecord, number]>())
          : Effect.map(asStored(id, record, now), (stored) => Option.some([id, ...stored] as const)))

    // A store shared with Django (`cycle`) keeps what the session it replaced held, Django's
    // `set_expiry` with it: the new session may end sooner than this service would end it, or with
    // the browser (`set_expiry(0)`), or last though the site's default is the browser's
    // (`set_expiry(3600)`). The record answered, and the cookie made of it, say what the store
    // keeps; with the end the store set where it is sooner than the one asked for (by more than
    // `realignAfter`, the store's rounding: a cache keeps whole seconds).
    const asStored = (
      id: string,
      record: SessionStore.SessionRecord,
      now: number
    ): Effect.Effect<readonly [SessionStore.SessionRecord, number], SessionStore.SessionStoreError> =>
      store.cycle === undefined
        ? Effect.succeed([record, Infinity])
        : Effect.map(store.get(format.storeKey(id), now), (stored) => {
          if (Option.isNone(stored)) return [record, Infinity] as const
          const { expireAtBrowserClose: _, ...rest } = record
          const kept = stored.value.expiresAt
          return [{
            ...rest,
            expiresAt: Math.min(kept, record.expiresAt),
            ...(stored.value.expireAtBrowserClose !== undefined && { expireAtBrowserClose: stored.value.expireAtBrowserClose })
          }, kept < record.expiresAt - realignAfter ? kept : Infinity] as const
        })

    // Django's `login` keeps the data of the session it replaces (an anonymous one, or the same
    // user's under the same password) and flushes any other. Only a store that keeps more than
    // logins (`cycle`) has anything to keep, so only there is the old session read first.
    const keepsAtLogin = (old: string | undefined, record: SessionStore.SessionRecord, now: number) =>
      old === undefined || store.cycle === undefined
        ? Effect.succeed(false)
        : Effect.map(
          store.get(format.storeKey(old), now),
          Option.match({
            onNone: () => true,
            onSome: (before) =>
              before.userId === record.userId && before.backendId === record.backendId &&
              crypto.equal(before.authHash, record.authHash)
          })
        )

    // Django's `user_logged_in` receivers (`update_last_login`): the backend's own, if it has one.
    // The session stands whatever they answer, as it is already stored.
    const loggedIn = (backendId: string, user: User) => {
      const backend = Option.getOrUndefined(auth.backend(backendId))
      return backend?.userLoggedIn === undefined
        ? Effect.void
        : Effect.catchAll(backend.userLoggedIn(user), (error) =>
          Effect.logWarning(`effect-auth: the ${backendId} backend could not record a login: ${error.message}`))
    }

    // What `login` is given, read once and guarded: an untyped caller's `undefined`, `{}`, a user
    // with no string id, or one that throws when read (its password hash included) died with a
    // TypeError. None: no login at all, refused before the store is asked anything.
    const loginOf = (authenticated: unknown) => {
      const backend = fieldOf(authenticated, "backend")
      const user = fieldOf(authenticated, "user") as User
      const userId = userIdOf(user)
      if (typeof backend !== "string" || userId === undefined) return undefined
      try {
        return { backend, user, userId, authHash: hashOf(user), degraded: fieldOf(authenticated, "degraded") === true }
      } catch {
        return undefined
      }
    }

    const login: Service["login"] = (authenticated, loginOptions = {}) =>
      Effect.gen(function*() {
        const input = loginOf(authenticated)
        if (input === undefined) {
          return yield* new SessionStore.SessionStoreError({ operation: "login", cause: "not an authenticated user" })
        }
        const { authHash, backend, user } = input
        const now = yield* Clock.currentTimeMillis
        // Django flushes a session of another user or with a stale hash and cycles the key of the
        // same user's; either way the old id is discarded here. Its login is deleted without being
        // read first (deleting a session that is already gone does nothing, and the HTTP layer has
        // usually read it for this request already), unless the store keeps other data with it.
        const old = idOf(format, fieldOf(loginOptions, "sessionId") as SessionId | undefined)
        // The login's own choice of cookie, kept with the session; none follows the site's.
        const choice = fieldOf(loginOptions, "expireAtBrowserClose")
        const record: SessionStore.SessionRecord = {
          userId: input.userId,
          backendId: backend,
          authHash,
          csrfToken: crypto.randomToken(),
          createdAt: now,
          lastSeenAt: now,
          expiresAt: expiry(now, now),
          ...(input.degraded && { degraded: true }),
          ...(typeof choice === "boolean" && { expireAtBrowserClose: choice })
        }
        const carried = yield* keepsAtLogin(old, record, now)
        const { id } = yield* issue(record, now, old, carried, true)
        const [stored, keptUntil] = carried ? yield* asStored(id, record, now) : [record, Infinity]
        const request = fieldOf(loginOptions, "request") as AuthRequest | undefined
        yield* events.publish(new AuthEvents.LoggedIn({ user, backend, request: forEvent(request) }))
        yield* loggedIn(backend, user)
        return withCookie(user, id, stored, keptUntil)
      }).pipe(withValueFreeSpan("effect-auth.Session.login", { captureStackTrace: false }))

    const logout: Service["logout"] = (sessionId, request) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const previous = yield* load(sessionId, now)
        // From here on the logout runs to its end: a client that gives up (or a timeout) must not
        // leave the session valid. The delete comes before the user's lookup, which only names the
        // user in the event and may wait on a backend that is down (an HTTP peer's timeout).
        yield* Effect.uninterruptibleMask((restore) =>
          Effect.gen(function*() {
            // Django's `flush`: the session goes whatever it held, a login of ours or not (an
            // anonymous session in a store shared with Django).
            const id = idOf(format, sessionId)
            if (id !== undefined) yield* store.delete(format.storeKey(id))
            let user = Option.none<User>()
            if (Option.isSome(previous)) {
              const [, record] = previous.value
              // Logging out must work while the user's backend is down: the event then names
              // nobody, as it does when the caller leaves during the lookup. So does a session a
              // password change ended (Django's `logout` takes `request.user`, which `get_user`
              // made anonymous when the session's hash no longer held).
              user = yield* restore(auth.getUser(record.backendId, record.userId)).pipe(
                Effect.map(Option.filter((found) => authHashHolds(record, found) !== "no")),
                // A failure, or the caller gone: nobody. A defect stays one.
                Effect.catchAllCause((cause) =>
                  Option.match(Cause.dieOption(cause), {
                    onNone: () => Effect.succeed(Option.none<User>()),
                    onSome: Effect.die
                  })
                )
              )
            }
            yield* events.publish(new AuthEvents.LoggedOut({ user, request: forEvent(request) }))
          })
        )
      }).pipe(Effect.withSpan("effect-auth.Session.logout", { captureStackTrace: false }))

    const currentUser: Service["currentUser"] = (sessionId) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const previous = yield* load(sessionId, now)
        if (Option.isNone(previous)) return Option.none()
        const [id, record] = previous.value
        const storeKey = format.storeKey(id)
        const found = yield* auth.getUser(record.backendId, record.userId)
        if (Option.isNone(found)) return Option.none()
        const user = found.value
        let current = record
        const held = authHashHolds(record, user)
        if (held === "no") {
          yield* store.delete(storeKey)
          return Option.none()
        }
        if (held === "under a fallback secret") {
          // Django's `get_user` cycles the key (`cycle_key`, which keeps the session's data) and
          // stores the current hash: the session moves to a new id, whose cookie the HTTP layer
          // sends, and keeps its CSRF token, its login time and what a store shared with Django
          // holds besides. Of requests that read the old id at once, only the one whose delete
          // found it wins (`succeed`); the others delete their new session again and read as
          // anonymous, as a request reaching Django after its cycle reads an empty session.
          return yield* resigned(user, record, now, id)
        }
        if (held === "in an older form") {
          current = { ...record, authHash: hashOf(user) }
          if (!(yield* store.replace(storeKey, current, now))) return Option.none()
        }
        // The last-seen time is due, or the store's expiry was moved past ours (a Django save):
        // both sides are brought back to this service's expiry.
        if (now - current.lastSeenAt >= touchEvery || current.expiresAt - ownExpiry(current) > realignAfter) {
          current = { ...current, lastSeenAt: now, expiresAt: expiry(current.createdAt, now) }
          // Gone meanwhile (logged out on another instance): the request is anonymous.
          if (!(yield* store.replace(storeKey, current, now))) return Option.none()
        }
        return Option.some(sessionUser(user, id, current))
      }).pipe(withValueFreeSpan("effect-auth.Session.currentUser", { captureStackTrace: false }))

    const updateSessionAuthHash: Service["updateSessionAuthHash"] = (sessionId, user) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const previous = yield* load(sessionId, now)
        if (Option.isNone(previous) || previous.value[1].userId !== userIdOf(user)) return Option.none()
        const [old, record] = previous.value
        // Django's `update_session_auth_hash` cycles the key and keeps the session's data.
        return yield* resigned(user, record, now, old)
      })

    // The session under a new id, its auth hash the user's of now under the current secret (a
    // password change, a session verified under a fallback secret): a successor with its cookie.
    const resigned = (user: User, record: SessionStore.SessionRecord, now: number, old: string) =>
      Effect.map(
        succeed({ ...record, authHash: hashOf(user), lastSeenAt: now, expiresAt: expiry(record.createdAt, now) }, now, old),
        Option.map(([id, stored, keptUntil]) => withCookie(user, id, stored, keptUntil))
      )

    const stepUp: Service["stepUp"] = (sessionId, authenticated) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const previous = yield* load(sessionId, now)
        if (Option.isNone(previous) || previous.value[1].userId !== userIdOf(fieldOf(authenticated, "user"))) return Option.none()
        const [old, record] = previous.value
        // The device the code was checked against, as the backend names it now: recorded, so that
        // removing the device (or replacing it) takes the second factor from this session too.
        const backend = Option.getOrUndefined(auth.backend(authenticated.backend))
        const deviceOf = backend?.verifiedDevice ?? backend?.secondFactorDevice
        let device: string | undefined
        if (deviceOf !== undefined) {
          const identity = yield* deviceOf(authenticated.user)
          // removed since the code was checked: no second factor to record
          if (Option.isNone(identity)) return Option.none()
          device = deviceHash(identity.value)
        }
        const { secondFactorDevice: _, ...rest } = record
        const next: SessionStore.SessionRecord = {
          ...rest,
          secondFactor: authenticated.backend,
          ...(device !== undefined && { secondFactorDevice: device }),
          lastSeenAt: now,
          expiresAt: expiry(record.createdAt, now)
        }
        // A new id, as at login: an id seen before the second factor is worth nothing after it.
        const issued = yield* succeed(next, now, old)
        return Option.map(issued, ([id, stored, keptUntil]) => withCookie(authenticated.user, id, stored, keptUntil))
      }).pipe(withValueFreeSpan("effect-auth.Session.stepUp", { captureStackTrace: false }))

    const secondFactorHolds: Service["secondFactorHolds"] = (session) => {
      const backendId = session.secondFactor
      if (backendId === undefined) return Effect.succeed(false)
      // A backend no longer configured vouches for nothing, as it yields no user (Django's get_user).
      const backend = Option.getOrUndefined(auth.backend(backendId))
      if (backend === undefined) return Effect.succeed(false)
      const deviceOf = backend.secondFactorDevice
      if (deviceOf === undefined) return Effect.succeed(true)
      const recorded = session.secondFactorDevice
      // Stepped up before devices were recorded: which device it passed is unknown, and trusting it
      // while the user has some device would let it outlive a removal followed by a new enrolment.
      if (recorded === undefined) return Effect.succeed(false)
      return Effect.map(deviceOf(session.user), (identity) =>
        Option.isSome(identity) && deviceHashes.some((hash) => crypto.equal(hash(identity.value), recorded)))
    }

    const csrfToken: Service["csrfToken"] = (sessionId) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(load(sessionId, now), Option.map(([, record]) => Redacted.make(record.csrfToken))))

    const holdsOther: Service["holdsOther"] = (sessionId) => {
      const { isLive } = store
      const id = idOf(format, sessionId)
      return isLive === undefined || id === undefined
        ? Effect.succeed(false)
        : Effect.flatMap(Clock.currentTimeMillis, (now) => isLive(format.storeKey(id), now))
    }

    return {
      login,
      logout,
      currentUser,
      holdsOther,
      updateSessionAuthHash,
      stepUp,
      secondFactorHolds,
      csrfToken,
      clearExpired: Effect.flatMap(Clock.currentTimeMillis, store.deleteExpired),
      maxAge,
      idleTimeout
    }
  })

/**
 * The session service as a layer over a `SessionStore`, `AuthService` and `AuthEvents`.
 *
 * @example
 * ```ts
 * import { Layer, Redacted } from "effect"
 * import { MemorySessionStore, Session } from "effect-auth"
 *
 * const SessionLive = Session.layer({
 *   secret: Redacted.make(process.env.SECRET_KEY ?? ""),
 *   idleTimeout: "2 hours"
 * }).pipe(Layer.provide(MemorySessionStore.layer))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<Session, AuthConfigError, SessionStore.SessionStore | AuthService.AuthService | AuthEvents.AuthEvents> =>
  Layer.effect(Session, make(options))

/**
 * The options read by {@link layerConfig}.
 *
 * @example
 * ```ts
 * import { Config, Option } from "effect"
 * import { Session } from "effect-auth"
 *
 * const custom: Config.Config<Session.ConfigOptions> = Config.all({
 *   secret: Config.redacted("APP_SECRET"),
 *   fallbackSecrets: Config.succeed([]),
 *   maxAge: Config.succeed(Option.none()),
 *   idleTimeout: Config.option(Config.duration("APP_IDLE_TIMEOUT"))
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigOptions {
  readonly secret: Redacted.Redacted<string>
  readonly fallbackSecrets: ReadonlyArray<Redacted.Redacted<string>>
  readonly maxAge: Option.Option<Duration.Duration>
  readonly idleTimeout: Option.Option<Duration.Duration>
  /** See {@link Options.format}. Default: `"effect-auth"`. */
  readonly format?: "effect-auth" | "django" | undefined
  /** See {@link Options.hashingAlgorithm}. Default: `"sha256"`. */
  readonly hashingAlgorithm?: "sha256" | "sha1" | undefined
  /** See {@link Options.expireAtBrowserClose}. Default: `false`. @since 0.4.0 */
  readonly expireAtBrowserClose?: boolean | undefined
}

/**
 * `SECRET_KEY_FALLBACKS`: comma-separated old secrets, `Redacted`; empty entries are none, and so
 * is an empty value (a deployment template's `${VAR:-}` reads as `[""]`, which failed the layer as
 * a secret shorter than 16 characters; Django's setting is `[]`). Absent: none. {@link config}
 * reads it; an app that builds its own configuration can too.
 *
 * @example
 * ```ts
 * import { Config, Redacted } from "effect"
 * import { Session } from "effect-auth"
 *
 * const SessionConfig = Config.all({
 *   secret: Config.withDefault(Config.redacted("SECRET_KEY"), Redacted.make("development-only-secret")),
 *   fallbackSecrets: Session.fallbackSecretsConfig
 * })
 * ```
 *
 * @since 0.5.0
 * @category config
 */
export const fallbackSecretsConfig: Config.Config<ReadonlyArray<Redacted.Redacted<string>>> = Config.withDefault(
  Config.map(
    Config.array(Config.redacted(), "SECRET_KEY_FALLBACKS"),
    (secrets) => secrets.filter((secret) => Redacted.value(secret).trim() !== "")
  ),
  []
)

/**
 * Reads `SECRET_KEY`, `SECRET_KEY_FALLBACKS` (comma-separated, optional), `SESSION_MAX_AGE` and
 * `SESSION_IDLE_TIMEOUT` (durations such as `14 days`, optional), `SESSION_FORMAT`
 * (`effect-auth`, the default, or `django`: sessions shared with a Django site),
 * `DEFAULT_HASHING_ALGORITHM` (`sha256`, the default, or `sha1`: a Django 3.1–3.2 site that kept
 * it), and `SESSION_EXPIRE_AT_BROWSER_CLOSE` (`true` or `false`, the default). Every secret is
 * `Redacted`.
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { Session } from "effect-auth"
 *
 * const options = Effect.withConfigProvider(
 *   Session.config,
 *   ConfigProvider.fromJson({
 *     SECRET_KEY: "a long random app secret, 32+ chars",
 *     SESSION_IDLE_TIMEOUT: "30 minutes",
 *     SESSION_EXPIRE_AT_BROWSER_CLOSE: "true"
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<ConfigOptions> = Config.all({
  secret: Config.redacted("SECRET_KEY"),
  fallbackSecrets: fallbackSecretsConfig,
  maxAge: Config.option(Config.duration("SESSION_MAX_AGE")),
  idleTimeout: Config.option(Config.duration("SESSION_IDLE_TIMEOUT")),
  format: Config.withDefault(Config.literal("effect-auth", "django")("SESSION_FORMAT"), "effect-auth" as const),
  hashingAlgorithm: Config.withDefault(Config.literal("sha256", "sha1")("DEFAULT_HASHING_ALGORITHM"), "sha256" as const),
  expireAtBrowserClose: Config.withDefault(Config.boolean("SESSION_EXPIRE_AT_BROWSER_CLOSE"), false)
})

/**
 * The session service with its options read from `Config` ({@link config} by default); options
 * that are not data (`passwordHashOf`) are passed beside it.
 *
 * @example
 * ```ts
 * import { Config, Layer, Option } from "effect"
 * import { MemorySessionStore, Session } from "effect-auth"
 *
 * const FromEnv = Session.layerConfig().pipe(Layer.provide(MemorySessionStore.layer))
 * const Custom = Session.layerConfig(Config.all({
 *   secret: Config.redacted("APP_SECRET"),
 *   fallbackSecrets: Config.succeed([]),
 *   maxAge: Config.option(Config.duration("APP_SESSION_AGE")),
 *   idleTimeout: Config.succeed(Option.none())
 * }))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config<ConfigOptions> = config,
  extra: Pick<Options, "passwordHashOf"> = {}
): Layer.Layer<
  Session,
  AuthConfigError | ConfigError.ConfigError,
  SessionStore.SessionStore | AuthService.AuthService | AuthEvents.AuthEvents
> =>
  Layer.effect(
    Session,
    Effect.flatMap(options, (c) =>
      make({
        ...extra,
        secret: c.secret,
        fallbackSecrets: c.fallbackSecrets,
        maxAge: Option.getOrUndefined(c.maxAge),
        idleTimeout: Option.getOrUndefined(c.idleTimeout),
        format: c.format,
        hashingAlgorithm: c.hashingAlgorithm,
        expireAtBrowserClose: c.expireAtBrowserClose
      }))
  )

/**
 * Starts a session with the `Session` service in context. What is no `AuthService.Authenticated`
 * (from an untyped caller) fails with `SessionStoreError` (operation `"login"`), storing nothing.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, Session } from "effect-auth"
 *
 * const program = Effect.flatMap(AuthService.authenticate({ username: "alice", password: "pw" }), (authenticated) =>
 *   Session.login(authenticated, { sessionId: "the id the client sent, if any" }))
 *
 * // "remember me" unticked: a cookie that ends with the browser
 * const forNow = (rememberMe: boolean) =>
 *   Effect.flatMap(AuthService.authenticate({ username: "alice", password: "pw" }), (authenticated) =>
 *     Session.login(authenticated, { expireAtBrowserClose: !rememberMe }))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const login = (
  authenticated: AuthService.Authenticated,
  options?: LoginOptions
): Effect.Effect<SessionUser, SessionStore.SessionStoreError, Session> =>
  Effect.flatMap(Session, (s) => s.login(authenticated, options))

/**
 * Ends a session with the `Session` service in context.
 *
 * @example
 * ```ts
 * import { Session } from "effect-auth"
 *
 * const logoutOf = (sessionId: string) => Session.logout(sessionId)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const logout = (
  sessionId: SessionId | undefined,
  request?: AuthRequest
): Effect.Effect<void, SessionStore.SessionStoreError, Session> => Effect.flatMap(Session, (s) => s.logout(sessionId, request))

/**
 * The session's user, with the `Session` service in context (see {@link Service.currentUser}).
 * A session verified under one of `fallbackSecrets` moves to a new id, as Django's `get_user`
 * cycles the key: the answer's `sessionId` is then the new id, which the client must be sent (the
 * HTTP layer sets the cookie), and the old id is dead.
 *
 * @example
 * ```ts
 * import { Effect, Option, Redacted } from "effect"
 * import { Session } from "effect-auth"
 *
 * const nameOf = (sessionId: string) => Effect.map(Session.currentUser(sessionId), Option.map((s) => s.user.username))
 *
 * // Outside the HTTP layer: after a key rotation the session may come back under a new id.
 * const withCookie = (sessionId: string) =>
 *   Effect.map(Session.currentUser(sessionId), Option.map((s) => ({
 *     username: s.user.username,
 *     cookie: Redacted.value(s.sessionId) // differs from `sessionId` when the session moved
 *   })))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const currentUser = (
  sessionId: SessionId | undefined
): Effect.Effect<Option.Option<SessionUser>, SessionStore.SessionStoreError | TransportError, Session> =>
  Effect.flatMap(Session, (s) => s.currentUser(sessionId))

/**
 * Keeps a user's own session after a password change, with the `Session` service in context.
 *
 * @example
 * ```ts
 * import { Session } from "effect-auth"
 *
 * const keep = (sessionId: string, reloaded: Session.SessionUser["user"]) =>
 *   Session.updateSessionAuthHash(sessionId, reloaded)
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const updateSessionAuthHash = (
  sessionId: SessionId | undefined,
  user: User
): Effect.Effect<Option.Option<SessionUser>, SessionStore.SessionStoreError, Session> =>
  Effect.flatMap(Session, (s) => s.updateSessionAuthHash(sessionId, user))

/**
 * Marks a session as having passed a second factor (under a new id), with the `Session` service in
 * context. See `HttpAuth.stepUp` for the HTTP form.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, Session } from "effect-auth"
 *
 * const verify = (sessionId: string, username: string, otpToken: string) =>
 *   Effect.flatMap(AuthService.authenticateUnknown({ username, otpToken }), (authenticated) =>
 *     Session.stepUp(sessionId, authenticated))
 * ```
 *
 * @since 0.2.0
 * @category accessors
 */
export const stepUp = (
  sessionId: SessionId | undefined,
  authenticated: AuthService.Authenticated
): Effect.Effect<Option.Option<SessionUser>, SessionStore.SessionStoreError | TransportError, Session> =>
  Effect.flatMap(Session, (s) => s.stepUp(sessionId, authenticated))

/**
 * Whether a session's second factor still holds (see {@link Service.secondFactorHolds}), with the
 * `Session` service in context. `CurrentUser.requireSecondFactor` asks it for the HTTP layer.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { Session } from "effect-auth"
 *
 * const twoFactors = (sessionId: string) =>
 *   Effect.flatMap(Session.currentUser(sessionId), Option.match({
 *     onNone: () => Effect.succeed(false),
 *     onSome: Session.secondFactorHolds
 *   }))
 * ```
 *
 * @since 0.4.0
 * @category accessors
 */
export const secondFactorHolds = (
  session: Pick<SessionUser, "user" | "secondFactor" | "secondFactorDevice">
): Effect.Effect<boolean, TransportError, Session> => Effect.flatMap(Session, (s) => s.secondFactorHolds(session))

/**
 * Deletes expired sessions, with the `Session` service in context (Django's `clearsessions`).
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Session } from "effect-auth"
 *
 * const nightly = Session.clearExpired.pipe(Effect.repeat(Schedule.spaced("1 day")))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const clearExpired: Effect.Effect<number, SessionStore.SessionStoreError, Session> = Effect.flatMap(
  Session,
  (s) => s.clearExpired
)
