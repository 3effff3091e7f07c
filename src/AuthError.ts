/**
 * The failure model of effect-auth.
 *
 * A backend fails only with {@link NoMatch} (try the next backend), {@link PermissionDenied}
 * (stop the whole chain) or {@link TransportError} (the external system could not answer).
 * The fold in `AuthService` turns a chain where nobody matched into {@link AuthenticationFailed},
 * or {@link BackendUnavailable} when a backend that could not answer was skipped.
 *
 * Every error is a `Schema.TaggedError`: it can be matched with `Effect.catchTag`, encoded for
 * logs and audit, and never holds a secret.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Exit from "effect/Exit"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * These errors are expected outcomes (a wrong password, a directory that is down), made on every
 * failed login, so they are built cheaply:
 *
 * - without a JavaScript stack trace: it says nothing useful about an outcome and capturing one
 *   costs more than the rest of a backend attempt (the fold's spans record where it ran);
 * - without re-validating the fields against their Schema unless asked (`{ disableValidation:
 *   false }`): the constructor's types already guarantee them, and decoding (`Schema.decode`)
 *   always validates.
 */
const asOutcome = <C extends abstract new(...args: Array<any>) => object>(Base: C): C => {
  abstract class Outcome extends Base {
    constructor(...args: Array<any>) {
      const limit = Error.stackTraceLimit
      Error.stackTraceLimit = 0
      try {
        super(args[0], args[1] ?? true)
      } finally {
        Error.stackTraceLimit = limit
      }
    }
  }
  return Outcome
}

/**
 * Why a backend did not match. `reason` is for logs and audit, never for the HTTP client.
 *
 * - `unsupported-credentials`: the credentials do not decode with the backend's Schema
 * - `unknown-user`: no such user
 * - `invalid-credentials`: wrong secret
 * - `inactive-user`: right secret, but the user is inactive
 * - `expired-credentials`: a token or key that is past its expiry
 * - `throttled`: the backend took no attempt now (too many wrong ones in a row: a second factor's
 *   throttle, django-otp's "verification temporarily disabled"); the secret was not checked.
 *   `NoMatch.retryAfter` says how long until it takes one again, where the backend knows
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { AuthError } from "effect-auth"
 *
 * Schema.is(AuthError.NoMatchReason)("unknown-user") // true
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const NoMatchReason = Schema.Literal(
  "unsupported-credentials",
  "unknown-user",
  "invalid-credentials",
  "inactive-user",
  "expired-credentials",
  "throttled"
)

/**
 * @example
 * ```ts
 * import type { AuthError } from "effect-auth"
 *
 * const reason: AuthError.NoMatchReason = "expired-credentials"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type NoMatchReason = typeof NoMatchReason.Type

/**
 * These credentials are not for this backend, or the user is unknown, the secret wrong or the
 * user inactive, or the backend takes no attempt for now (`throttled`). The fold goes on with the
 * next backend. `retryAfter`: with `throttled`, how long until the backend takes an attempt again
 * (at most: a concurrent attempt may clear the wait sooner); absent otherwise.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { AuthError } from "effect-auth"
 *
 * const error = new AuthError.NoMatch({ backend: "ldap", reason: "unknown-user" })
 * const wait = new AuthError.NoMatch({ backend: "totp", reason: "throttled", retryAfter: Duration.seconds(4) })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class NoMatch extends asOutcome(
  Schema.TaggedError<NoMatch>("effect-auth/NoMatch")("NoMatch", {
    backend: Schema.String,
    reason: NoMatchReason,
    /** @since 0.4.0 */
    retryAfter: Schema.optional(Schema.DurationFromMillis)
  })
) {
  override get message(): string {
    return `${this.backend}: ${this.reason}`
  }
}

/**
 * This user must not get in (locked out, denied group, disabled upstream). The fold stops at once
 * and no later backend is asked; in permission checks it is a veto.
 *
 * @example
 * ```ts
 * import { AuthError } from "effect-auth"
 *
 * const error = new AuthError.PermissionDenied({ backend: "ldap", reason: "member of cn=banned" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class PermissionDenied extends asOutcome(
  Schema.TaggedError<PermissionDenied>("effect-auth/PermissionDenied")(
    "PermissionDenied",
    {
      backend: Schema.String,
      reason: Schema.String
    }
  )
) {
  override get message(): string {
    return `${this.backend}: permission denied (${this.reason})`
  }
}

/**
 * The external system was unreachable, timed out, answered an unexpected status or sent a body
 * that did not decode. `cause` describes what happened; it must never hold a secret.
 *
 * @example
 * ```ts
 * import { AuthError } from "effect-auth"
 *
 * const error = new AuthError.TransportError({ backend: "rest", cause: "timed out after 2 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TransportError extends asOutcome(
  Schema.TaggedError<TransportError>("effect-auth/TransportError")(
    "TransportError",
    {
      backend: Schema.String,
      cause: Schema.Defect
    }
  )
) {
  override get message(): string {
    const cause = this.cause
    const text = Predicate.isString(cause)
      ? cause
      : cause instanceof Error
      ? cause.message
      : Predicate.hasProperty(cause, "message") && Predicate.isString(cause.message)
      ? cause.message
      : String(cause)
    return `${this.backend}: ${text}`
  }
}

/**
 * One backend's outcomes, built once and raised for free: each `noMatch(reason)` is the same
 * prebuilt `Exit` on every call, so a wrong password or a foreign credential costs neither an
 * allocation nor a fiber step, and the fold reads the outcome without running an effect.
 * An `Exit` is an `Effect`: return these from `authenticate` as you would `Effect.fail(...)`.
 *
 * `permissionDenied` and `transportError` build their error per call (their reason or cause is
 * free text) but skip the fiber step of `Effect.fail` all the same.
 *
 * The prebuilt `NoMatch` errors are shared by every call and frozen: add what a request needs to
 * a failure of your own (or to a log annotation), never to one of these.
 *
 * @example
 * ```ts
 * import { Effect, Option, Redacted } from "effect"
 * import { AuthBackend, AuthError, Credentials } from "effect-auth"
 *
 * const fail = AuthError.failures("tokens")
 * const bot = { id: "bot", username: "bot", isActive: true, isSuperuser: false }
 *
 * const Tokens = AuthBackend.make({
 *   id: "tokens",
 *   credentials: Credentials.Token,
 *   authenticate: ({ token }) =>
 *     Redacted.value(token) === "ea_demo" ? Effect.succeed(bot) : fail.noMatch("invalid-credentials"),
 *   getUser: () => Effect.succeedNone
 * })
 *
 * fail.noMatch("unknown-user") === fail.noMatch("unknown-user") // true: built once
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export interface Failures {
  readonly backend: string
  readonly noMatch: (reason: NoMatchReason) => Exit.Exit<never, NoMatch>
  /** The error inside `noMatch(reason)`, for `Effect.mapError` and the like: also built once. */
  readonly noMatchError: (reason: NoMatchReason) => NoMatch
  readonly permissionDenied: (reason: string) => Exit.Exit<never, PermissionDenied>
  readonly transportError: (cause: unknown) => Exit.Exit<never, TransportError>
}

const makeFailures = (backend: string): Failures => {
  // Frozen: every call of every request shares these objects (each `AuthenticationFailed.attempts`
  // holds them), so a request's code that tagged one (`Object.assign(error, { requestId })`)
  // would have changed what every other request sees. Effect marks a failure's span on a Proxy,
  // never on the error itself.
  const errors = new Map<NoMatchReason, NoMatch>(
    NoMatchReason.literals.map((reason) => [reason, Object.freeze(new NoMatch({ backend, reason }))])
  )
  const exits = new Map<NoMatchReason, Exit.Exit<never, NoMatch>>(
    NoMatchReason.literals.map((reason) => [reason, Exit.fail(errors.get(reason)!)])
  )
  return {
    backend,
    noMatch: (reason) => exits.get(reason) ?? Exit.fail(new NoMatch({ backend, reason })),
    noMatchError: (reason) => errors.get(reason) ?? new NoMatch({ backend, reason }),
    permissionDenied: (reason) => Exit.fail(new PermissionDenied({ backend, reason })),
    transportError: (cause) => Exit.fail(new TransportError({ backend, cause }))
  }
}

// Backend ids are configuration, so this stays small; the bound keeps a misuse (ids made per
// request) from growing it without end.
const failuresByBackend = new Map<string, Failures>()
const maxCachedBackends = 1024

/**
 * The prebuilt failures of the backend with this id (see {@link Failures}); the same object for
 * the same id.
 *
 * @example
 * ```ts
 * import { AuthError } from "effect-auth"
 *
 * const ldap = AuthError.failures("ldap")
 * const unknown = ldap.noMatch("unknown-user")
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const failures = (backend: string): Failures => {
  let found = failuresByBackend.get(backend)
  if (found === undefined) {
    found = makeFailures(backend)
    if (failuresByBackend.size < maxCachedBackends) failuresByBackend.set(backend, found)
  }
  return found
}

/**
 * A prebuilt `NoMatch` failure: `AuthError.failures(backend).noMatch(reason)`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthError } from "effect-auth"
 *
 * const wrongSecret: Effect.Effect<never, AuthError.NoMatch> = AuthError.noMatch("api", "invalid-credentials")
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const noMatch = (backend: string, reason: NoMatchReason): Exit.Exit<never, NoMatch> =>
  failures(backend).noMatch(reason)

/**
 * One backend's recorded outcome in a chain where nobody matched.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { AuthError } from "effect-auth"
 *
 * const attempt = new AuthError.TransportError({ backend: "ldap", cause: "connection refused" })
 * Schema.is(AuthError.Attempt)(attempt) // true
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const Attempt = Schema.Union(NoMatch, TransportError)

/**
 * @example
 * ```ts
 * import type { AuthError } from "effect-auth"
 *
 * const describe = (attempt: AuthError.Attempt): string =>
 *   attempt._tag === "NoMatch" ? `${attempt.backend}: ${attempt.reason}` : `${attempt.backend} could not answer`
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Attempt = typeof Attempt.Type

/**
 * No backend matched; `attempts` lists each backend's NoMatch, in order.
 *
 * @example
 * ```ts
 * import { AuthError } from "effect-auth"
 *
 * const error = new AuthError.AuthenticationFailed({
 *   attempts: [new AuthError.NoMatch({ backend: "model", reason: "invalid-credentials" })]
 * })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthenticationFailed extends asOutcome(
  Schema.TaggedError<AuthenticationFailed>(
    "effect-auth/AuthenticationFailed"
  )("AuthenticationFailed", {
    attempts: Schema.Array(NoMatch)
  })
) {
  override get message(): string {
    return `no backend matched: ${this.attempts.map((a) => a.message).join("; ")}`
  }
}

/**
 * No backend matched, but at least one backend could not answer and was skipped under
 * `onTransportError: "fallthrough"`: the credentials may be valid on the system that was down.
 * HTTP maps this to 503, not 401.
 *
 * @example
 * ```ts
 * import { AuthError } from "effect-auth"
 *
 * const error = new AuthError.BackendUnavailable({
 *   attempts: [new AuthError.TransportError({ backend: "ldap", cause: "connection refused" })]
 * })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class BackendUnavailable extends asOutcome(
  Schema.TaggedError<BackendUnavailable>(
    "effect-auth/BackendUnavailable"
  )("BackendUnavailable", {
    attempts: Schema.Array(Attempt)
  })
) {
  override get message(): string {
    return `no backend matched and some could not answer: ${this.attempts.map((a) => a.message).join("; ")}`
  }
}

/**
 * The attempt was refused before any backend was asked: too many failed attempts for its
 * username or client address (see the `Lockout` module), or an address on the deny list.
 * `retryAfter` is how long the lock still holds. HTTP maps this to 429 with `Retry-After`.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { AuthError } from "effect-auth"
 *
 * const error = new AuthError.LockedOut({ retryAfter: Duration.minutes(15) })
 * const seconds = Math.ceil(Duration.toSeconds(error.retryAfter)) // 900
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class LockedOut extends asOutcome(
  Schema.TaggedError<LockedOut>(
    "effect-auth/LockedOut"
  )("LockedOut", {
    retryAfter: Schema.DurationFromMillis
  })
) {
  override get message(): string {
    return `too many failed attempts: locked out for ${Math.ceil(Duration.toSeconds(this.retryAfter))} s`
  }
}

/**
 * The configuration of a layer is unusable: no backends, two backends with one id, and so on.
 * Raised when the layer is built, never per call.
 *
 * @example
 * ```ts
 * import { AuthError } from "effect-auth"
 *
 * const error = new AuthError.AuthConfigError({ message: "no backends configured" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthConfigError extends Schema.TaggedError<AuthConfigError>("effect-auth/AuthConfigError")(
  "AuthConfigError",
  { message: Schema.String }
) {}

/**
 * What a backend's `authenticate` may fail with.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthError } from "effect-auth"
 * import type { User } from "effect-auth"
 *
 * const authenticate = (username: string): Effect.Effect<User.User, AuthError.BackendError> =>
 *   username === "mallory"
 *     ? Effect.fail(new AuthError.PermissionDenied({ backend: "local", reason: "banned" }))
 *     : Effect.fail(new AuthError.NoMatch({ backend: "local", reason: "unknown-user" }))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type BackendError = NoMatch | PermissionDenied | TransportError

/**
 * What `AuthService.authenticate` may fail with.
 *
 * @example
 * ```ts
 * import type { AuthError } from "effect-auth"
 *
 * const status = (error: AuthError.AuthenticateError): number => {
 *   switch (error._tag) {
 *     case "AuthenticationFailed":
 *       return 401
 *     case "PermissionDenied":
 *       return 403
 *     case "LockedOut":
 *       return 429
 *     case "BackendUnavailable":
 *     case "TransportError":
 *       return 503
 *   }
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type AuthenticateError =
  | AuthenticationFailed
  | BackendUnavailable
  | LockedOut
  | PermissionDenied
  | TransportError

/**
 * Schema of every error above, to encode them for logs or decode them from a peer.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { AuthError } from "effect-auth"
 *
 * const encoded = Schema.encodeSync(AuthError.AuthError)(
 *   new AuthError.NoMatch({ backend: "model", reason: "unknown-user" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthError = Schema.Union(
  NoMatch,
  PermissionDenied,
  TransportError,
  AuthenticationFailed,
  BackendUnavailable,
  LockedOut,
  AuthConfigError
)

/**
 * @example
 * ```ts
 * import type { AuthError } from "effect-auth"
 *
 * const summary = (error: AuthError.AuthError): string => `${error._tag}: ${error.message}`
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type AuthError = typeof AuthError.Type
