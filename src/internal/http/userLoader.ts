import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Arr from "effect/Array"
import type * as Scope from "effect/Scope"
import type * as AuthError from "../../AuthError.js"
import type { User } from "../../User.js"

/**
 * One upstream request: the effect that makes it (without a timeout of its own) and the failure
 * it ends with when a timeout cuts it.
 *
 * @internal
 */
export interface Fetch<A, E = AuthError.TransportError> {
  readonly effect: Effect.Effect<A, E | AuthError.TransportError>
  readonly timedOut: () => AuthError.TransportError
}

/**
 * A batch endpoint's answer for some ids.
 *
 * @internal
 */
export interface Batch {
  /** The users found; ids missing from the answer (and from `failed`) have no user. */
  readonly users: ReadonlyArray<User>
  /**
   * Ids whose own record did not decode, each with what its callers fail with: the rest of the
   * chunk is answered (one user whose record the app's Schema refuses must not fail the others).
   * Undefined when every record decoded, the common case, so that it costs no Map.
   */
  readonly failed: ReadonlyMap<string, AuthError.TransportError> | undefined
}

/** @internal */
export interface LoaderOptions {
  readonly fetchOne: (id: string) => Fetch<Option.Option<User>>
  readonly fetchMany: ((ids: Arr.NonEmptyReadonlyArray<string>) => Fetch<Batch>) | undefined
  readonly maxBatchSize: number
  /**
   * A bound on a chunk besides `maxBatchSize`: the ids' `cost` summed stays within `max` (a chunk
   * of one id excepted). The default batch request puts the ids in its URL, which servers cap.
   */
  readonly batchBudget?: { readonly cost: (id: string) => number; readonly max: number } | undefined
  /** How long the first caller of a batch waits for others; zero = until the current macrotask ends. */
  readonly window: Duration.Duration
  /** A fetch still running after this long fails its callers with its `timedOut` and is interrupted. */
  readonly timeout: Duration.Duration
  readonly ttl: Duration.Duration | undefined
  readonly capacity: number
  /** What a caller fails with once the scope has closed: those waiting then, and any later one. */
  readonly closed: () => AuthError.TransportError
}

/** @internal */
export interface UserLoader {
  readonly load: (id: string) => Effect.Effect<Option.Option<User>, AuthError.TransportError>
}

type Result = Exit.Exit<Option.Option<User>, AuthError.TransportError>
type Resume = (result: Result) => void

// Cheaper than a Deferred per id: callers wait in one `Effect.async` each, and a settled fetch
// resumes them directly. With 1000 callers per burst this is where the CPU goes.
// A fetch settles the waiter it was started for, never "whoever waits for this id now": once a
// timeout has settled a waiter, a later caller of the same id starts a fetch of its own, and the
// first fetch's late end must not reach it.
interface Waiter {
  readonly id: string
  /** Undefined once settled. */
  resumers: Array<Resume> | undefined
}

interface CacheEntry {
  readonly value: Option.Option<User>
  readonly expiresAt: number
}

// The longest delay `setTimeout` takes (about 24.8 days): a longer one overflows and fires at once
// (after 1 ms), so a valid `timeout: "30 days"` would fail every fetch as it starts.
const maxTimerMillis = 2 ** 31 - 1
const timerMillis = (duration: Duration.Duration): number => Math.min(Duration.toMillis(duration), maxTimerMillis)

// A real timer on purpose: the window is a scheduling detail, not domain time, so a TestClock must
// not be able to freeze it.
const sleepReal = (window: Duration.Duration): Effect.Effect<void> => {
  const millis = timerMillis(window)
  return Effect.async<void>((resume) => {
    if (millis <= 0 && typeof globalThis.setImmediate === "function") {
      const handle = globalThis.setImmediate(() => resume(Effect.void))
      return Effect.sync(() => globalThis.clearImmediate(handle))
    }
    const handle = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(handle))
  })
}

/**
 * Loads users by id so that concurrent callers share upstream requests.
 *
 * Effect's own request batching only groups requests issued together by one `forEach`/`all`
 * with `batching: true`; independent callers (one fiber per HTTP request) never meet there. So
 * callers meet in an in-flight map keyed by id: the first caller of an id starts the fetch, later
 * callers wait for the same result. With a batch endpoint, the ids that arrive during a short
 * window are sent in chunks of `maxBatchSize`.
 *
 * The chunks are issued directly rather than as `Request`s through `RequestResolver.makeBatched`:
 * measured on 1000 callers, Effect's request machinery (a fiber per request in the batching
 * `forEach`) cost about 0.2 ms of CPU per distinct id, 210 ms for 1000 ids against 22 ms here, and
 * it adds nothing once the callers have met in the map.
 *
 * Fetches run in root fibers of the backend's scope, not in the callers' fibers: a caller that is
 * interrupted (its own timeout, a closed connection) stops waiting without failing the others,
 * and closing the scope interrupts what is in flight. Closing it also fails every caller still
 * waiting (on a fetch or on the batch window) with `closed`, and so does every later call, at once:
 * a fiber the closed scope would have run is interrupted before it starts, and its callers would
 * wait for ever.
 *
 * The timeout is a timer per fetch rather than `Effect.timeout`: the fetch already has a fiber of
 * its own, so the timer settles the callers and interrupts that fiber, where `Effect.timeout`
 * would race it against a second fiber (measured on the undici client: about 0.3 ms of CPU per
 * exchange, a fifth of it). The callers are released at the deadline even when the exchange takes
 * long to interrupt (an uninterruptible client transform, say). Like the window, it is a real
 * timer: a transport deadline, not domain time. Both are cut to `setTimeout`'s longest delay,
 * 2^31 - 1 ms (about 24.8 days), past which it would fire at once.
 *
 * @internal
 */
export const make = (options: LoaderOptions): Effect.Effect<UserLoader, never, Scope.Scope> =>
  Effect.gen(function*() {
    // Forks into a set that the scope interrupts on close: cheaper per fetch than a child scope.
    const runFork = yield* FiberSet.makeRuntime<never, void, never>()
    const inFlight = new Map<string, Waiter>()
    const cache = new Map<string, CacheEntry>()
    const { batchBudget, capacity, fetchMany, fetchOne, maxBatchSize, ttl, window } = options
    const chunksOf = (waiters: ReadonlyArray<Waiter>): Array<Arr.NonEmptyReadonlyArray<Waiter>> => {
      if (batchBudget === undefined) return Arr.chunksOf(waiters, maxBatchSize)
      const chunks: Array<Arr.NonEmptyReadonlyArray<Waiter>> = []
      let chunk: Array<Waiter> = []
      let spent = 0
      for (const waiter of waiters) {
        const cost = batchBudget.cost(waiter.id)
        if (chunk.length > 0 && (chunk.length >= maxBatchSize || spent + cost > batchBudget.max)) {
          chunks.push(chunk as Arr.NonEmptyArray<Waiter>)
          chunk = []
          spent = 0
        }
        chunk.push(waiter)
        spent += cost
      }
      if (chunk.length > 0) chunks.push(chunk as Arr.NonEmptyArray<Waiter>)
      return chunks
    }
    const ttlMillis = ttl === undefined ? 0 : Duration.toMillis(ttl)
    const timeoutMillis = timerMillis(options.timeout)
    const caching = ttlMillis > 0 && capacity > 0
    let closed: Effect.Effect<never, AuthError.TransportError> | undefined = undefined

    const remember = (id: string, value: Option.Option<User>, now: number): void => {
      cache.delete(id)
      cache.set(id, { value, expiresAt: now + ttlMillis })
      if (cache.size > capacity) {
        // Map keeps insertion order: the first key is the oldest write.
        const oldest = cache.keys().next()
        if (!oldest.done) cache.delete(oldest.value)
      }
    }

    const settle = (waiter: Waiter, result: Result, now: number): void => {
      const resumers = waiter.resumers
      if (resumers === undefined) return
      waiter.resumers = undefined
      if (inFlight.get(waiter.id) === waiter) inFlight.delete(waiter.id)
      if (caching && Exit.isSuccess(result)) remember(waiter.id, result.value, now)
      for (const resume of resumers) resume(result)
    }

    const settleEach = (waiters: ReadonlyArray<Waiter>, result: Result, now: number): void => {
      for (const waiter of waiters) settle(waiter, result, now)
    }

    // Failures and interruptions are handed to the waiting callers but never cached.
    const settleWith = (f: (now: number) => void): Effect.Effect<void> =>
      caching ? Effect.map(Clock.currentTimeMillis, f) : Effect.sync(() => f(0))

    // Runs one fetch for `waiters` in a fiber of its own, under the timeout.
    const start = <A>(
      waiters: ReadonlyArray<Waiter>,
      fetch: Fetch<A>,
      settleFetched: (exit: Exit.Exit<A, AuthError.TransportError>, now: number) => void
    ): void => {
      const fiber = runFork(Effect.ignore(Effect.onExit(fetch.effect, (exit) => settleWith((now) => settleFetched(exit, now)))))
      const timer = setTimeout(() => {
        settleEach(waiters, Exit.fail(fetch.timedOut()), 0)
        fiber.unsafeInterruptAsFork(FiberId.none)
      }, timeoutMillis)
      fiber.addObserver(() => clearTimeout(timer))
    }

    const fetchSingle = (waiter: Waiter): void =>
      start([waiter], fetchOne(waiter.id), (exit, now) => settle(waiter, exit, now))

    const fetchChunk = (
      run: NonNullable<LoaderOptions["fetchMany"]>,
      waiters: Arr.NonEmptyReadonlyArray<Waiter>
    ): void =>
      start(waiters, run(Arr.map(waiters, (waiter) => waiter.id)), (exit, now) => {
        if (Exit.isFailure(exit)) return settleEach(waiters, Exit.failCause(exit.cause), now)
        const { failed, users } = exit.value
        const byId = new Map<string, User>()
        for (const user of users) byId.set(user.id, user)
        for (const waiter of waiters) {
          const failure = failed?.get(waiter.id)
          settle(
            waiter,
            failure === undefined ? Exit.succeed(Option.fromNullable(byId.get(waiter.id))) : Exit.fail(failure),
            now
          )
        }
      })

    let pending: Array<Waiter> = []
    const takePending = (): Array<Waiter> => {
      const waiters = pending
      pending = []
      return waiters
    }

    // Runs before the fiber set's own finalizer (finalizers run in reverse order): every waiter
    // not yet settled is in `inFlight`, the batch window's included.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        const failure = options.closed()
        closed = Effect.fail(failure)
        const waiters = Array.from(inFlight.values())
        pending = []
        cache.clear()
        settleEach(waiters, Exit.fail(failure), 0)
      })
    )
    const batchWindow: Effect.Effect<void> = fetchMany === undefined ? Effect.void : sleepReal(window).pipe(
      Effect.zipRight(Effect.sync(() => {
        for (const chunk of chunksOf(takePending())) fetchChunk(fetchMany, chunk)
      }))
      // Closing the scope during the window settles its callers in the finalizer above.
    )

    const loadUncached = (id: string): Effect.Effect<Option.Option<User>, AuthError.TransportError> =>
      Effect.async<Option.Option<User>, AuthError.TransportError>((resume) => {
        if (closed !== undefined) return resume(closed)
        let waiter = inFlight.get(id)
        if (waiter === undefined) {
          const created: Waiter = { id, resumers: [resume] }
          inFlight.set(id, created)
          if (fetchMany === undefined) {
            fetchSingle(created)
          } else if (pending.push(created) === 1) {
            runFork(batchWindow)
          }
          return
        }
        // No canceler on purpose: it would wrap every call in `onInterrupt`. An interrupted caller
        // stops waiting at once anyway, and the runtime ignores its resume when the fetch settles;
        // the fetch goes on for the others.
        waiter.resumers!.push(resume)
      })

    const load = caching
      ? (id: string) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (closed !== undefined) return closed
          const hit = cache.get(id)
          if (hit !== undefined) {
            if (hit.expiresAt > now) return Effect.succeed(hit.value)
            cache.delete(id)
          }
          return loadUncached(id)
        })
      : loadUncached

    return { load }
  })
