import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"

/** Whether the fiber is still running (it has no exit yet). */
export const pending = <A, E>(fiber: Fiber.Fiber<A, E>): Effect.Effect<boolean> => Effect.map(Fiber.poll(fiber), Option.isNone)

/**
 * Polls `check` every 10 ms until it holds, for at most 3 s (real time): some once it held, none
 * if it never did. For what another process or the event loop brings about (a peer
 * counting a request that the client's first connection takes a while to send).
 */
export const eventually = (check: () => boolean) =>
  Effect.repeat(Effect.sync(check), { schedule: Schedule.spaced("10 millis"), until: (ok) => ok }).pipe(
    Effect.timeoutOption("3 seconds")
  )
