/**
 * Login events, Django's `user_logged_in`, `user_logged_out` and `user_login_failed` signals as
 * values on a `PubSub`.
 *
 * `AuthService.authenticate` publishes exactly one {@link LoginFailed} per call that ends in
 * `AuthenticationFailed`, `BackendUnavailable` or `PermissionDenied`, with the credentials
 * cleansed as Django cleanses them (and per call refused by a lockout, `LockedOut`). Sessions
 * publish {@link LoggedIn} and {@link LoggedOut}; the `Lockout` module publishes {@link LockedOut}
 * and {@link Unlocked}.
 *
 * @example
 * ```ts
 * import { Effect, Queue } from "effect"
 * import { AuthEvents } from "effect-auth"
 *
 * const audit = Effect.gen(function* () {
 *   const events = yield* AuthEvents.AuthEvents
 *   const queue = yield* events.subscribe
 *   const event = yield* Queue.take(queue)
 *   if (event._tag === "LoginFailed") yield* Effect.logWarning("login failed", event.credentials)
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as AuthError from "./AuthError.js"
import { AuthConfigError } from "./AuthError.js"
import type { AuthRequest } from "./AuthRequest.js"
import type { User } from "./User.js"

/**
 * A call to `authenticate` failed. `credentials` are cleansed (`Credentials.cleanse`): no secret.
 *
 * @example
 * ```ts
 * import { AuthError, AuthEvents } from "effect-auth"
 *
 * const event = new AuthEvents.LoginFailed({
 *   credentials: { username: "alice", password: "********************" },
 *   request: { remoteAddress: "203.0.113.7" },
 *   error: new AuthError.AuthenticationFailed({
 *     attempts: [new AuthError.NoMatch({ backend: "model", reason: "invalid-credentials" })]
 *   })
 * })
 * ```
 *
 * @since 0.1.0
 * @category events
 */
export class LoginFailed extends Data.TaggedClass("LoginFailed")<{
  readonly credentials: Readonly<Record<string, unknown>>
  readonly request: AuthRequest | undefined
  readonly error:
    | AuthError.AuthenticationFailed
    | AuthError.BackendUnavailable
    | AuthError.LockedOut
    | AuthError.PermissionDenied
}> {}

/**
 * A user logged in (a session was started for them).
 *
 * @example
 * ```ts
 * import { AuthEvents } from "effect-auth"
 *
 * const event = new AuthEvents.LoggedIn({
 *   user: { id: "1", username: "alice", isActive: true, isSuperuser: false },
 *   backend: "model",
 *   request: undefined
 * })
 * ```
 *
 * @since 0.1.0
 * @category events
 */
export class LoggedIn extends Data.TaggedClass("LoggedIn")<{
  readonly user: User
  readonly backend: string
  readonly request: AuthRequest | undefined
}> {}

/**
 * A session was ended; `user` is none when the session was anonymous.
 *
 * @example
 * ```ts
 * import { Option } from "effect"
 * import { AuthEvents } from "effect-auth"
 *
 * const event = new AuthEvents.LoggedOut({ user: Option.none(), request: undefined })
 * ```
 *
 * @since 0.1.0
 * @category events
 */
export class LoggedOut extends Data.TaggedClass("LoggedOut")<{
  readonly user: Option.Option<User>
  readonly request: AuthRequest | undefined
}> {}

/**
 * A lockout key reached its limit of failed attempts (see the `Lockout` module): attempts under it
 * are refused until `until`. `key` names what is locked: `username:alice`, `ip:203.0.113.7` or
 * `username-ip:203.0.113.7|alice`. Published once per lock, by the failed attempt that set it
 * (`request` is that attempt's). A lock that attempts nobody settled set (their places lapsed,
 * each counted as a failure) is published once by the first later call on the key that finds it,
 * with `request` `undefined`: no request set it.
 *
 * @example
 * ```ts
 * import { AuthEvents } from "effect-auth"
 *
 * const event = new AuthEvents.LockedOut({
 *   key: "username:alice",
 *   until: new Date("2030-01-01T00:15:00Z"),
 *   request: { remoteAddress: "203.0.113.7" }
 * })
 * ```
 *
 * @since 0.2.0
 * @category events
 */
export class LockedOut extends Data.TaggedClass("LockedOut")<{
  readonly key: string
  readonly until: Date
  readonly request: AuthRequest | undefined
}> {}

/**
 * A lock was lifted before it ended: by `Lockout.reset` (an administrator, `effect-auth unlock`).
 * A lock that runs out is not announced.
 *
 * @example
 * ```ts
 * import { AuthEvents } from "effect-auth"
 *
 * const event = new AuthEvents.Unlocked({ key: "username:alice" })
 * ```
 *
 * @since 0.2.0
 * @category events
 */
export class Unlocked extends Data.TaggedClass("Unlocked")<{
  readonly key: string
}> {}

/**
 * @example
 * ```ts
 * import type { AuthEvents } from "effect-auth"
 *
 * const describe = (event: AuthEvents.AuthEvent): string => {
 *   switch (event._tag) {
 *     case "LoginFailed":
 *       return `login failed: ${event.error._tag}`
 *     case "LoggedIn":
 *       return `${event.user.username} logged in through ${event.backend}`
 *     case "LoggedOut":
 *       return "logged out"
 *     case "LockedOut":
 *       return `${event.key} locked out`
 *     case "Unlocked":
 *       return `${event.key} unlocked`
 *   }
 * }
 * ```
 *
 * @since 0.1.0
 * @category events
 */
export type AuthEvent = LoginFailed | LoggedIn | LoggedOut | LockedOut | Unlocked

/**
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import type { AuthEvents } from "effect-auth"
 *
 * const firstTenFailures = (events: AuthEvents.Service) =>
 *   events.stream.pipe(Stream.filter((event) => event._tag === "LoginFailed"), Stream.take(10), Stream.runCollect)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly publish: (event: AuthEvent) => Effect.Effect<void>
  /** A subscription that receives every event published after it was taken. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<AuthEvent>, never, Scope.Scope>
  /** The events published while the stream runs. */
  readonly stream: Stream.Stream<AuthEvent>
}

/**
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { AuthEvents } from "effect-auth"
 *
 * const auditLog = Effect.flatMap(AuthEvents.AuthEvents, (events) =>
 *   Stream.runForEach(events.stream, (event) => Effect.logInfo(event._tag)))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class AuthEvents extends Context.Tag("effect-auth/AuthEvents")<AuthEvents, Service>() {}

/**
 * How many events a subscriber may fall behind before it loses the oldest: 4096.
 *
 * @example
 * ```ts
 * import { AuthEvents } from "effect-auth"
 *
 * const EventsLive = AuthEvents.layerWith({ capacity: 4 * AuthEvents.defaultCapacity })
 * ```
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultCapacity = 4096

/**
 * Options of {@link makeWith} and {@link layerWith}.
 *
 * @example
 * ```ts
 * import type { AuthEvents } from "effect-auth"
 *
 * const options: AuthEvents.Options = { capacity: 100_000 }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * How many events a subscriber may fall behind (default {@link defaultCapacity}). Publishing
   * never waits: past it, a subscriber that is slower than the events come loses the oldest ones.
   */
  readonly capacity?: number | undefined
}

/**
 * Builds the events service on a sliding `PubSub` of `capacity` events: publishing never waits for
 * a slow subscriber, so auditing cannot slow logins down, and a subscriber that falls further
 * behind than `capacity` loses the oldest events rather than holding every one in memory (a flood
 * of failed logins, each an event, against an audit subscriber writing to a database was memory
 * without bound). Django's signals run their receivers in the request instead; subscribe with a
 * queue that keeps up (a batch writer), or a larger `capacity`, where no event may be lost.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthEvents } from "effect-auth"
 *
 * // fails with AuthConfigError for a capacity that is no positive integer
 * const program = Effect.scoped(AuthEvents.makeWith({ capacity: 100_000 }))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeWith = (options: Options = {}): Effect.Effect<Service, AuthConfigError, Scope.Scope> => {
  const capacity = options.capacity ?? defaultCapacity
  if (!Number.isSafeInteger(capacity) || capacity < 1) {
    return Effect.fail(new AuthConfigError({ message: `AuthEvents: capacity must be a positive integer, got ${capacity}` }))
  }
  return Effect.map(
    Effect.acquireRelease(PubSub.sliding<AuthEvent>(capacity), PubSub.shutdown),
    (pubsub): Service => ({
      publish: (event) => PubSub.publish(pubsub, event),
      subscribe: PubSub.subscribe(pubsub),
      stream: Stream.fromPubSub(pubsub)
    })
  )
}

/**
 * {@link makeWith} with the default capacity.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthEvents } from "effect-auth"
 *
 * const program = Effect.scoped(AuthEvents.make)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Service, never, Scope.Scope> = Effect.orDie(makeWith())

/**
 * The events service with a capacity of its own (see {@link makeWith}).
 *
 * @example
 * ```ts
 * import { AuthEvents } from "effect-auth"
 *
 * const EventsLive = AuthEvents.layerWith({ capacity: 100_000 })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWith = (options: Options): Layer.Layer<AuthEvents, AuthConfigError> =>
  Layer.scoped(AuthEvents, makeWith(options))

/**
 * The events service, ready to provide to `AuthService.layer`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { AuthEvents, AuthService, MemoryUserStore, PasswordHasher } from "effect-auth"
 * import * as ModelBackend from "effect-auth/backends/ModelBackend"
 *
 * const AuthLive = AuthService.layer([ModelBackend.ModelBackend]).pipe(
 *   Layer.provide(ModelBackend.layer()),
 *   Layer.provide(Layer.merge(MemoryUserStore.layer, PasswordHasher.layer())),
 *   Layer.provideMerge(AuthEvents.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<AuthEvents> = Layer.scoped(AuthEvents, make)
