/**
 * Login events, Django's `user_logged_in`, `user_logged_out` and `user_login_failed` signals as
 * values on a `PubSub`.
 *
 * `AuthService.authenticate` publishes exactly one {@link LoginFailed} per call that ends in
 * `AuthenticationFailed`, `BackendUnavailable` or `PermissionDenied`, with the credentials
 * cleansed as Django cleanses them. Sessions publish {@link LoggedIn} and {@link LoggedOut}.
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
import type { AuthRequest } from "./AuthRequest.js"
import type { User } from "./User.js"

/**
 * A call to `authenticate` failed. `credentials` are cleansed (`Credentials.cleanse`): no secret.
 *
 * @since 0.1.0
 * @category events
 */
export class LoginFailed extends Data.TaggedClass("LoginFailed")<{
  readonly credentials: Readonly<Record<string, unknown>>
  readonly request: AuthRequest | undefined
  readonly error: AuthError.AuthenticationFailed | AuthError.BackendUnavailable | AuthError.PermissionDenied
}> {}

/**
 * A user logged in (a session was started for them).
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
 * @since 0.1.0
 * @category events
 */
export class LoggedOut extends Data.TaggedClass("LoggedOut")<{
  readonly user: Option.Option<User>
  readonly request: AuthRequest | undefined
}> {}

/**
 * @since 0.1.0
 * @category events
 */
export type AuthEvent = LoginFailed | LoggedIn | LoggedOut

/**
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
 * @since 0.1.0
 * @category tags
 */
export class AuthEvents extends Context.Tag("effect-auth/AuthEvents")<AuthEvents, Service>() {}

/**
 * Builds the events service on an unbounded `PubSub`: publishing never waits for a slow
 * subscriber, so auditing cannot slow logins down.
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
export const make: Effect.Effect<Service, never, Scope.Scope> = Effect.map(
  Effect.acquireRelease(PubSub.unbounded<AuthEvent>(), PubSub.shutdown),
  (pubsub): Service => ({
    publish: (event) => PubSub.publish(pubsub, event),
    subscribe: PubSub.subscribe(pubsub),
    stream: Stream.fromPubSub(pubsub)
  })
)

/**
 * The events service, ready to provide to `AuthService.layer`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { AuthEvents, AuthService } from "effect-auth"
 *
 * declare const backends: Parameters<typeof AuthService.layer>[0]
 * const AuthLive = AuthService.layer(backends).pipe(Layer.provideMerge(AuthEvents.layer))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<AuthEvents> = Layer.scoped(AuthEvents, make)
