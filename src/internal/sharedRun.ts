/**
 * One run of an effect shared by every caller that asks while it runs (a discovery document, a
 * key set): a flood of concurrent callers on a cold cache costs the peer one request.
 *
 * The run has a fiber of its own, bounded by whatever timeout the effect carries, so a caller
 * that gives up (a client gone, a timeout of its own) does not cut it short for the others
 * waiting on it; `settle` sees its outcome before any waiter does.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"

/** @internal */
export interface SharedRun<A, E> {
  /** Joins the run in progress, or starts one. */
  readonly run: Effect.Effect<A, E>
  /** Whether a run is in progress. */
  readonly running: () => boolean
}

/** @internal */
export const make = <A, E>(effect: Effect.Effect<A, E>, settle: (exit: Exit.Exit<A, E>) => void): SharedRun<A, E> => {
  let inflight: Deferred.Deferred<A, E> | undefined
  const run = Effect.suspend(() => {
    if (inflight !== undefined) return Deferred.await(inflight)
    const done = Deferred.unsafeMake<A, E>(FiberId.none)
    inflight = done
    return effect.pipe(
      Effect.onExit((exit) =>
        Effect.zipRight(
          Effect.sync(() => {
            inflight = undefined
            settle(exit)
          }),
          Deferred.done(done, exit)
        )
      ),
      Effect.forkDaemon,
      Effect.zipRight(Deferred.await(done))
    )
  })
  return { run, running: () => inflight !== undefined }
}
