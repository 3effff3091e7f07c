/**
 * The backend contract: what Django calls an authentication backend, as a typed Effect service.
 *
 * A backend has an `id`, a Schema for the credentials it accepts, `authenticate`, `getUser` and,
 * optionally, permission methods. It fails only with the errors of `AuthError`. A per-backend
 * {@link Policy} says how long a call may take, how a {@link AuthError.TransportError} is retried,
 * and whether the chain fails or moves on when the backend cannot answer.
 *
 * @example
 * ```ts
 * import { Effect, Option, Redacted } from "effect"
 * import { AuthBackend, AuthError, Credentials } from "effect-auth"
 *
 * const admin = { id: "1", username: "admin", isActive: true, isSuperuser: true }
 *
 * // Django's docs' "SettingsBackend": one admin whose password lives in configuration
 * export const SettingsBackend = AuthBackend.make({
 *   id: "settings",
 *   credentials: Credentials.UsernamePassword,
 *   authenticate: ({ username, password }) =>
 *     username === "admin" && Redacted.value(password) === "hunter2"
 *       ? Effect.succeed(admin)
 *       : Effect.fail(new AuthError.NoMatch({ backend: "settings", reason: "invalid-credentials" })),
 *   getUser: (id) => Effect.succeed(id === admin.id ? Option.some(admin) : Option.none())
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import type * as Schema from "effect/Schema"
import type * as AuthError from "./AuthError.js"
import type { AuthRequest } from "./AuthRequest.js"
import type * as Permissions from "./Permissions.js"
import type { User } from "./User.js"

/**
 * What the fold does when the backend fails with a `TransportError` (after retries):
 * `"fail"` fails the whole call with it (Django lets the exception escape); `"fallthrough"`
 * records it and asks the next backend.
 *
 * @example
 * ```ts
 * import { AuthBackend } from "effect-auth"
 *
 * const onTransportError: AuthBackend.OnTransportError = "fallthrough"
 * const policy = AuthBackend.policy({ onTransportError })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type OnTransportError = "fail" | "fallthrough"

/**
 * A backend's resilience policy. Applied by `AuthService` to every call it makes to the backend
 * (`authenticate`, `getUser`, permission methods).
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import type { AuthBackend } from "effect-auth"
 *
 * const policy: AuthBackend.PolicyInput = {
 *   timeout: "2 seconds",
 *   retry: Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
 *   onTransportError: "fallthrough"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface PolicyInput {
  /**
   * Each try is cut after this long and becomes a `TransportError`. Default: no timeout. The
   * call answers at the deadline even when the work cannot be interrupted (a password hash): it
   * then ends in the background. With `retry`, a try that timed out is waited for before the next
   * one starts, so tries never overlap (and one that cannot be stopped holds the call).
   */
  readonly timeout?: Duration.DurationInput | undefined
  /** Retries `TransportError`s only (never `NoMatch` or `PermissionDenied`). Default: none. */
  readonly retry?: Schedule.Schedule<unknown, AuthError.TransportError> | undefined
  /** Default: `"fail"`. */
  readonly onTransportError?: OnTransportError | undefined
}

/**
 * A {@link PolicyInput} with its defaults filled in.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { AuthBackend } from "effect-auth"
 *
 * const policy: AuthBackend.Policy = AuthBackend.policy({ timeout: "2 seconds" })
 * const millis = policy.timeout === undefined ? Infinity : Duration.toMillis(policy.timeout) // 2000
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Policy {
  readonly timeout: Duration.Duration | undefined
  readonly retry: Schedule.Schedule<unknown, AuthError.TransportError> | undefined
  readonly onTransportError: OnTransportError
}

/**
 * The default policy: no timeout, no retry, a `TransportError` fails the call.
 *
 * @example
 * ```ts
 * import { AuthBackend } from "effect-auth"
 *
 * AuthBackend.defaultPolicy.onTransportError // "fail"
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPolicy: Policy = { timeout: undefined, retry: undefined, onTransportError: "fail" }

/**
 * Fills in a policy's defaults.
 *
 * @example
 * ```ts
 * import { AuthBackend } from "effect-auth"
 *
 * AuthBackend.policy({ timeout: "1 second" }).onTransportError // "fail"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const policy = (input: PolicyInput = {}, base: Policy = defaultPolicy): Policy => ({
  timeout: input.timeout === undefined ? base.timeout : Duration.decode(input.timeout),
  retry: input.retry ?? base.retry,
  onTransportError: input.onTransportError ?? base.onTransportError
})

/**
 * The backend contract. `C` is the type the credentials decode to.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { AuthBackend, AuthError, Credentials } from "effect-auth"
 *
 * // a backend that knows no token: every token goes on to the next backend
 * const NoTokens: AuthBackend.AuthBackend<Credentials.Token> = {
 *   id: "no-tokens",
 *   credentials: Credentials.Token,
 *   authenticate: () => Effect.fail(new AuthError.NoMatch({ backend: "no-tokens", reason: "unknown-user" })),
 *   getUser: () => Effect.succeed(Option.none()),
 *   policy: AuthBackend.defaultPolicy
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthBackend<C = any> {
  /** Unique in a chain; stored in sessions to find the backend again (Django's backend path). */
  readonly id: string
  /** Decodes the raw credentials; failure means `NoMatch("unsupported-credentials")`. */
  readonly credentials: Schema.Schema<C, any, never>
  readonly authenticate: (
    credentials: C,
    request: AuthRequest | undefined
  ) => Effect.Effect<User, AuthError.BackendError>
  /** Loads a user by the id this backend issued. */
  readonly getUser: (userId: string) => Effect.Effect<Option.Option<User>, AuthError.TransportError>
  /**
   * Called by `Session.login` once a session has started for a user this backend authenticated:
   * Django's `user_logged_in` signal, whose `update_last_login` receiver records the time of the
   * login (`ModelBackend` does the same in its store; a password reset token made before then
   * no longer verifies). A failure is logged and does not undo the login.
   */
  readonly userLoggedIn?: (user: User) => Effect.Effect<void, AuthError.TransportError>
  /**
   * `true` for a backend that verifies a second factor only (`TotpBackend`): `HttpAuth.login`
   * never starts a session on its success alone (a code is no login), and `HttpAuth.stepUp`
   * counts the success of no other backend.
   */
  readonly secondFactor?: boolean | undefined
  /**
   * For a second-factor backend: the identity of the device it checks `user`'s codes against now,
   * or none when the user has no usable device (removed, not confirmed). Any string that changes
   * when the device is replaced and names no secret (an id, a digest of the device's secret; never
   * the secret itself). `Session.stepUp` records a keyed hash of it, and
   * `CurrentUser.requireSecondFactor` asks again: a session whose device is gone or replaced has
   * no second factor any more (django-otp's `OTPMiddleware` loads the session's device on every
   * request). Without it, a stepped-up session keeps its second factor for its whole life.
   *
   * @since 0.4.0
   */
  readonly secondFactorDevice?: ((user: User) => Effect.Effect<Option.Option<string>, AuthError.TransportError>) | undefined
  /**
   * For a second-factor backend: the identity (as `secondFactorDevice` names it) of the device
   * that verified the authentication which answered `user` (the object `authenticate` returned),
   * or none when that device is no longer the user's or cannot be told. `Session.stepUp` records
   * it, and asks once per authentication: a device replaced between the code's check and the
   * step-up must not become the session's (django-otp's `otp_login(request, device)` stores the
   * device that matched the token). Without it, `Session.stepUp` records `secondFactorDevice`'s
   * answer. `TotpBackend` has it.
   *
   * @since 0.4.0
   */
  readonly verifiedDevice?: ((user: User) => Effect.Effect<Option.Option<string>, AuthError.TransportError>) | undefined
  readonly hasPerm?: (
    user: User,
    perm: string,
    obj?: unknown
  ) => Effect.Effect<boolean, AuthError.PermissionDenied | AuthError.TransportError>
  /**
   * Why this backend answers `hasPerm` as it does (`AuthService.explain`); `granted` must equal
   * `hasPerm`'s answer. Without it, `explain` records the bare answer.
   */
  readonly explainPerm?: (
    user: User,
    perm: string,
    obj?: unknown
  ) => Effect.Effect<Permissions.Account, AuthError.PermissionDenied | AuthError.TransportError>
  readonly hasModulePerms?: (
    user: User,
    appLabel: string
  ) => Effect.Effect<boolean, AuthError.PermissionDenied | AuthError.TransportError>
  readonly getAllPermissions?: (
    user: User,
    obj?: unknown
  ) => Effect.Effect<ReadonlySet<string>, AuthError.PermissionDenied | AuthError.TransportError>
  /** Django's `get_user_permissions`: the permissions the user holds directly. */
  readonly getUserPermissions?: (
    user: User,
    obj?: unknown
  ) => Effect.Effect<ReadonlySet<string>, AuthError.PermissionDenied | AuthError.TransportError>
  /** Django's `get_group_permissions`: the permissions the user holds through its groups. */
  readonly getGroupPermissions?: (
    user: User,
    obj?: unknown
  ) => Effect.Effect<ReadonlySet<string>, AuthError.PermissionDenied | AuthError.TransportError>
  readonly policy: Policy
}

/**
 * What {@link make} takes: the contract, with an optional policy input.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { AuthBackend, AuthError, Credentials } from "effect-auth"
 *
 * const options: AuthBackend.Options<Credentials.UsernamePassword> = {
 *   id: "closed",
 *   credentials: Credentials.UsernamePassword,
 *   authenticate: () => Effect.fail(new AuthError.NoMatch({ backend: "closed", reason: "unknown-user" })),
 *   getUser: () => Effect.succeed(Option.none()),
 *   policy: { timeout: "1 second" }
 * }
 * const Closed = AuthBackend.make(options)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<C> extends Omit<AuthBackend<C>, "policy"> {
  readonly policy?: PolicyInput | undefined
}

/**
 * Builds a backend, filling in its policy.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { AuthBackend, AuthError, Credentials } from "effect-auth"
 *
 * const Nobody = AuthBackend.make({
 *   id: "nobody",
 *   credentials: Credentials.Token,
 *   authenticate: () => Effect.fail(new AuthError.NoMatch({ backend: "nobody", reason: "unknown-user" })),
 *   getUser: () => Effect.succeed(Option.none()),
 *   policy: { timeout: "1 second" }
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <C>(options: Options<C>): AuthBackend<C> => ({
  ...options,
  policy: policy(options.policy)
})

/**
 * Replaces parts of a backend's policy, e.g. to make a library backend fall through when its
 * directory is down.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { AuthBackend, AuthError, Credentials } from "effect-auth"
 *
 * const ldap = AuthBackend.make({
 *   id: "ldap",
 *   credentials: Credentials.UsernamePassword,
 *   authenticate: () => Effect.fail(new AuthError.TransportError({ backend: "ldap", cause: "down" })),
 *   getUser: () => Effect.succeed(Option.none())
 * })
 * const lenient = AuthBackend.withPolicy(ldap, { onTransportError: "fallthrough" })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPolicy: {
  (input: PolicyInput): <C>(self: AuthBackend<C>) => AuthBackend<C>
  <C>(self: AuthBackend<C>, input: PolicyInput): AuthBackend<C>
} = dual(2, <C>(self: AuthBackend<C>, input: PolicyInput): AuthBackend<C> => ({
  ...self,
  policy: policy(input, self.policy)
}))
