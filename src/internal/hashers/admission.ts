import * as Effect from "effect/Effect"

/**
 * Load shedding in front of the hasher's semaphore: at most `limit` calls are in flight (running
 * or queued for a permit); one more fails at once with `busy` instead of joining a queue that
 * would make every login wait. A plain counter suffices, since admission and release both run on
 * the one JavaScript thread; `ensuring` releases the slot on success, failure and interruption.
 */
export const makeAdmission = <B>(limit: number, busy: B) => {
  let inFlight = 0
  const refused = Effect.fail(busy)
  const release = Effect.sync(() => {
    inFlight--
  })
  const admit = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | B, R> =>
    // Uninterruptible between taking the slot and arming its release, so no slot ever leaks.
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (inFlight >= limit) return refused
        inFlight++
        return Effect.ensuring(restore(effect), release) as Effect.Effect<A, E | B, R>
      })
    )
  return Object.assign(admit, { inFlight: () => inFlight })
}

/**
 * The hasher's structure for any other bounded resource (a network backend's connections): at
 * most `concurrency` effects run at once (a semaphore), at most `maxWaiting` more wait for a
 * turn, and one more fails at once with `busy`, before it has taken anything. The admission wraps
 * the semaphore, so a caller waiting for a permit holds a slot: an interrupted waiter, or one
 * interrupted while running, gives back both its permit (`withPermits`) and its slot (`ensuring`).
 */
export const makeLimiter = <B>(
  concurrency: number,
  maxWaiting: number,
  busy: B
): Effect.Effect<<A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | B, R>> =>
  Effect.map(Effect.makeSemaphore(concurrency), (semaphore) => {
    const admit = makeAdmission(concurrency + maxWaiting, busy)
    const permit = semaphore.withPermits(1)
    return <A, E, R>(effect: Effect.Effect<A, E, R>) => admit(permit(effect))
  })
