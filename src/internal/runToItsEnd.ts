/**
 * Runs `effect` in a daemon fiber of its own that the caller only joins: a caller cut off (a
 * client that drops the connection, an app's timeout, a backend policy's timeout) stops waiting,
 * while the work goes on to its end and does whatever it does with its outcome, as Django's
 * request goes on when its client leaves. For work that must not stop half-way: a lockout
 * attempt from its reservation to its settlement, a provisioned user from its row's creation to
 * its activation.
 *
 * Whatever must happen once the work has begun belongs inside `effect`: an interruption that
 * arrives before the fork stops nothing, since nothing has begun.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"

/** @internal */
export const runToItsEnd = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.flatMap(Effect.forkDaemon(effect), Fiber.join)
