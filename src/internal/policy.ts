import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Schedule from "effect/Schedule"
import type * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"

const isTransportError = (error: unknown): error is AuthError.TransportError =>
  error instanceof AuthError.TransportError

/**
 * Wraps calls to one backend in its policy: each try is cut at the timeout (becoming a
 * TransportError), and only TransportErrors are retried. Built once per backend, so a call pays
 * for exactly the parts of the policy that are set.
 *
 * @internal
 */
export const guard = (
  backendId: string,
  policy: AuthBackend.Policy
): <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | AuthError.TransportError> => {
  const { retry, timeout } = policy
  const cut = (duration: Duration.DurationInput, disconnected: boolean) =>
  <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | AuthError.TransportError> =>
    Effect.timeoutFail(disconnected ? Effect.disconnect(effect) : effect, {
      duration,
      onTimeout: () => new AuthError.TransportError({ backend: backendId, cause: `timed out after ${Duration.format(duration)}` })
    })
  if (retry === undefined) {
    // Without retries the try is disconnected: a backend's work may be uninterruptible (a password
    // hash runs on libuv's pool and cannot be stopped), and the timeout must answer at its
    // deadline all the same; the work then ends in the background (holding its hasher permit).
    return timeout === undefined ? (effect) => effect : cut(timeout, true)
  }
  // With retries, a try that timed out is interrupted and waited for before the next one starts:
  // disconnected, tries that cannot be stopped would run side by side, each holding a permit.
  const timed = timeout === undefined ? <A, E>(effect: Effect.Effect<A, E>) => effect : cut(timeout, false)
  // The `while` guard feeds the schedule TransportErrors only, so widening its input is sound.
  const schedule = retry as Schedule.Schedule<unknown, unknown>
  return (effect) => Effect.retry(timed(effect), { schedule, while: isTransportError })
}
