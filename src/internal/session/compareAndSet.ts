// A session `replace` over storage another writer shares (Django's own sessions): read, merge,
// then write only if the value is still the one read.
import * as Effect from "effect/Effect"

/**
 * What one round of a compare-and-set `replace` found: it wrote, there was no live session to
 * write over, or the value changed between its read and its write. @internal
 */
export type Round = "written" | "gone" | "changed"

/**
 * Rounds before a `replace` gives up. A round loses only to another writer's success in between,
 * so `n` requests refreshing one session at once all settle within `n` rounds. @internal
 */
export const maxRounds = 16

/** The cause of a `replace` that lost every round. @internal */
export const contended = (): Error =>
  new Error(`the session changed between read and write in each of ${maxRounds} rounds`)

/**
 * Runs `round` until it writes or finds no live session, answering which; a round that lost to a
 * concurrent write reads again. Django saves a session last-writer-wins, so two requests
 * refreshing the same live session at once must both see it live; one read and one conditional
 * write answered "no session" to all but the first, and the request went anonymous.
 *
 * @internal
 */
export const untilSettled = <E, E2>(
  round: Effect.Effect<Round, E>,
  onContended: (cause: Error) => E2
): Effect.Effect<boolean, E | E2> => {
  const loop = (left: number): Effect.Effect<boolean, E | E2> =>
    Effect.flatMap(round, (found) =>
      found !== "changed"
        ? Effect.succeed(found === "written")
        : left > 1
        ? loop(left - 1)
        : Effect.fail(onContended(contended())))
  return loop(maxRounds)
}
