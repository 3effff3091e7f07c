/**
 * Test layers for apps that depend on `AuthService`: the service over scripted backends, the
 * events service, and a log of every published event to assert on.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, TestAuth, TestBackend } from "effect-auth"
 *
 * const test = Effect.gen(function* () {
 *   yield* AuthService.authenticate({ username: "alice", password: "wrong" }).pipe(Effect.ignore)
 *   const events = yield* TestAuth.events
 *   return events.map((e) => e._tag) // ["LoginFailed"]
 * }).pipe(Effect.provide(TestAuth.layer([TestBackend.noMatch("local")])))
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import type * as AuthError from "../AuthError.js"
import * as AuthEvents from "../AuthEvents.js"
import * as AuthService from "../AuthService.js"

/**
 * Every event published since the layer was built.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TestAuth } from "effect-auth"
 *
 * const failedLogins = Effect.flatMap(TestAuth.EventLog, (log) => log.events).pipe(
 *   Effect.map((events) => events.filter((event) => event._tag === "LoginFailed").length)
 * )
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class EventLog extends Context.Tag("effect-auth/testing/EventLog")<EventLog, {
  readonly events: Effect.Effect<ReadonlyArray<AuthEvents.AuthEvent>>
}>() {}

const eventLog = Layer.scoped(
  EventLog,
  Effect.gen(function*() {
    const events = yield* AuthEvents.AuthEvents
    const queue = yield* events.subscribe
    const seen: Array<AuthEvents.AuthEvent> = []
    return {
      // Draining on read (instead of in a background fiber) makes the log complete the moment
      // the publishing effect has returned.
      events: Effect.map(Queue.takeAll(queue), (chunk) => {
        seen.push(...chunk)
        return seen.slice()
      })
    }
  })
)

/**
 * `AuthService`, `AuthEvents` and an {@link EventLog} over the given backends.
 *
 * @example
 * ```ts
 * import { TestAuth, TestBackend } from "effect-auth"
 *
 * const AuthTest = TestAuth.layer([TestBackend.succeed("sso", TestBackend.user("alice"))])
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const Backends extends ReadonlyArray<AuthService.BackendInput>>(
  backends: Backends,
  options: AuthService.Options = {}
): Layer.Layer<
  AuthService.AuthService | AuthEvents.AuthEvents | EventLog,
  AuthError.AuthConfigError,
  AuthService.BackendsContext<Backends>
> => Layer.merge(AuthService.layer(backends, options), eventLog).pipe(Layer.provideMerge(AuthEvents.layer))

/**
 * The events published so far.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, TestAuth, TestBackend } from "effect-auth"
 *
 * const tags = Effect.gen(function*() {
 *   yield* AuthService.authenticate({ username: "alice", password: "wrong" }).pipe(Effect.ignore)
 *   const events = yield* TestAuth.events
 *   return events.map((event) => event._tag)
 * }).pipe(Effect.provide(TestAuth.layer([TestBackend.noMatch("local")])))
 *
 * Effect.runPromise(tags).then((tags) => assert.deepStrictEqual(tags, ["LoginFailed"]))
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const events: Effect.Effect<ReadonlyArray<AuthEvents.AuthEvent>, never, EventLog> = Effect.flatMap(
  EventLog,
  (log) => log.events
)
