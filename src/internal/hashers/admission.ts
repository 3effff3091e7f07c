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

/** A network backend's load-shedding options, as its `Options` spell them. */
export interface LimitOptions {
  readonly maxConcurrent?: number | undefined
  readonly maxWaiting?: number | undefined
}

/**
 * The network backends' defaults (LdapBackend, HttpBackend): 64 calls at once, above a healthy
 * peer's need and of the order of a Django deployment's workers × threads, and 4 × as many
 * waiting, the hasher's ratio.
 */
export const defaultLimits = { maxConcurrent: 64, maxWaiting: 256 } as const

/**
 * The two options read with their defaults, or the problem with the first that is not a count (a
 * safe integer: the bound must be a real bound; `maxConcurrent` at least 1, `maxWaiting` at
 * least 0), for the backend to word as its own configuration error.
 */
export const readLimits = (
  options: LimitOptions
): { readonly maxConcurrent: number; readonly maxWaiting: number } | { readonly problem: string } => {
  const maxConcurrent = options.maxConcurrent ?? defaultLimits.maxConcurrent
  if (!Number.isSafeInteger(maxConcurrent) || maxConcurrent < 1) return { problem: "maxConcurrent must be a positive integer" }
  const maxWaiting = options.maxWaiting ?? defaultLimits.maxWaiting
  if (!Number.isSafeInteger(maxWaiting) || maxWaiting < 0) return { problem: "maxWaiting must be a non-negative integer" }
  return { maxConcurrent, maxWaiting }
}
