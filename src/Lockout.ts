/**
 * Failed-attempt throttling and lockout (django-axes' job): failures are counted per username,
 * per client address, or both; at `limit` failures the key is locked for `coolOff` (longer with
 * each lock under `backOff`), and attempts under a locked key are refused with
 * `AuthError.LockedOut` before any backend is asked, so a refused attempt costs no password hash.
 *
 * Counting holds a place for the attempt before the backends run: the store does it atomically
 * (one Lua script in Redis), and while a key's failures and attempts in flight make the limit the
 * next attempt waits for one of them to settle, so N app instances under concurrent attempts let
 * exactly `limit` attempts through to the backends, and concurrent successes lock nobody (a
 * failure is counted once it happened, as django-axes counts it). The fold's outcome then settles
 * the place:
 *
 * | outcome | counted |
 * |---|---|
 * | `AuthenticationFailed`, `PermissionDenied` | yes: one failure; the one that reaches the limit locks |
 * | success | no: every key only gets this attempt's place back; the failures before it stay, as django-axes' default; a name's key is shared by every account whose name folds to it |
 * | `BackendUnavailable`, or `TransportError`, after a backend refused the credentials (any `NoMatch` but `unsupported-credentials`) | yes: an outage elsewhere does not make a checked guess free, and an unknown name counts as a wrong password does |
 * | `BackendUnavailable`, `TransportError` otherwise, defect | no: the place is given back |
 * | the caller interrupted (a dropped connection, a timeout), while the store holds the place or after | the attempt runs to its end in the background and is settled by its outcome |
 * | nobody settles the place within two minutes (the attempt ran longer, its instance died, the store could not write the settlement) | yes: the place lapses and counts as one failure, as an attempt whose outcome nobody recorded is presumed a wrong guess; a settlement after that counts nothing more |
 *
 * A lock that lapsed places set publishes its `LockedOut` (with no request) once, from the first
 * later call on the key that finds it (an attempt it refuses, a late settlement), on every store
 * and across instances: the store operation that writes the lapse answers it (`lapsed`), and no
 * later one finds it again.
 *
 * A settlement the store refused is tried again for up to a second before it is given up (then
 * its place lapses as above).
 *
 * An attempt that waits for a busy key longer than `busyTimeout` (10 seconds by default) is refused
 * for a second. That wait is real time, whatever `Clock` the app runs on (a `TestClock` moves the
 * locks and cool-offs, never the wait: see docs/testing.md).
 *
 * {@link protect} wraps an `AuthService` (see {@link layerAuthService}); the HTTP layer turns
 * `LockedOut` into 429 with `Retry-After`. See docs/throttling.md.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { AuthEvents, AuthService, Lockout, TestBackend } from "effect-auth"
 *
 * const AuthLive = Lockout.layerAuthService(
 *   AuthService.layer([TestBackend.noMatch("passwords")])
 * ).pipe(
 *   Layer.provide(Lockout.layerMemory({ by: "username-or-ip", limit: 5, coolOff: "15 minutes" })),
 *   Layer.provideMerge(AuthEvents.layer)
 * )
 * ```
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as AuthError from "./AuthError.js"
import * as AuthEvents from "./AuthEvents.js"
import type { AuthRequest } from "./AuthRequest.js"
import * as AuthService from "./AuthService.js"
import * as Credentials from "./Credentials.js"
import * as ConfigDuration from "./internal/configDuration.js"
import * as IpAddress from "./internal/ipAddress.js"
import * as Keys from "./internal/lockoutKeys.js"
import * as MemoryStore from "./internal/lockoutMemoryStore.js"
import * as RedisStore from "./internal/lockoutRedisStore.js"
import * as RefusedSecret from "./internal/refusedSecret.js"
import { pendingHold } from "./internal/lockoutRecord.js"
import { runToItsEnd } from "./internal/runToItsEnd.js"
import { forEvent } from "./internal/eventRequest.js"

/**
 * What a failure is counted against:
 *
 * - `"username"`: the credentials' username (an attacker can lock a user out from anywhere);
 * - `"ip"`: the client address (a shared NAT shares one counter);
 * - `"username-and-ip"` (default): the pair, so neither a user nor an address is locked for
 *   another's failures; falls back to whichever of the two the attempt has;
 * - `"username-or-ip"`: both counters; either one locked refuses the attempt.
 *
 * @example
 * ```ts
 * import type { Lockout } from "effect-auth"
 *
 * const by: Lockout.By = "username-or-ip"
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type By = "username" | "ip" | "username-and-ip" | "username-or-ip"

/**
 * @example
 * ```ts
 * import type { Lockout } from "effect-auth"
 *
 * const options: Lockout.Options = {
 *   by: "username-or-ip",
 *   limit: 5,
 *   coolOff: "15 minutes",
 *   backOff: 2,
 *   maxCoolOff: "1 day",
 *   allow: ["10.0.0.0/8"],
 *   deny: ["203.0.113.0/24"],
 *   busyTimeout: "30 seconds"
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Default: `"username-and-ip"`. */
  readonly by?: By | undefined
  /** Failures that lock a key. Default: 5. */
  readonly limit?: number | undefined
  /**
   * How long a lock holds, and how long failures are remembered after the last one. Default: 15
   * minutes.
   */
  readonly coolOff?: Duration.DurationInput | undefined
  /** Each further lock of a key lasts this many times the previous one. Default: 1 (no back-off). */
  readonly backOff?: number | undefined
  /** The longest lock under `backOff`. Default: 1 day. */
  readonly maxCoolOff?: Duration.DurationInput | undefined
  /**
   * A key's record (its lock count, which drives `backOff`) is dropped this long after its lock or
   * its failures end, as the app's `Clock` tells in every built-in store. Default: 1 day.
   */
  readonly forgetAfter?: Duration.DurationInput | undefined
  /**
   * An IPv6 client is counted by the network of this many leading bits, an integer from 1 to 128:
   * a site is handed at least a /64 and may use any address in it, so a counter per address
   * (128) is a fresh counter per request for an attacker. Default: 64, as `django-ratelimit`'s
   * `RATELIMIT_IPV6_MASK`. IPv4 addresses (IPv4-mapped IPv6 too) are counted each on its own.
   */
  readonly ipv6Prefix?: number | undefined
  /** Addresses or CIDR ranges never counted nor locked (monitoring, an office). */
  readonly allow?: ReadonlyArray<string> | undefined
  /** Addresses or CIDR ranges always refused (`LockedOut` for `coolOff`), before any backend. */
  readonly deny?: ReadonlyArray<string> | undefined
  /**
   * When the store cannot answer: `"fail"` (default) fails the attempt with `TransportError`
   * (HTTP 503); `"allow"` lets it through uncounted.
   */
  readonly onStoreError?: "fail" | "allow" | undefined
  /**
   * How long an attempt waits for a busy key (its failures and the attempts in flight make the
   * limit) before it is refused with `LockedOut` for a second (HTTP 429, `Retry-After: 1`).
   * Default: 10 seconds. Once a key's failures and places reach the limit, its attempts run one at
   * a time, so a burst of N correct logins there takes N times a password check: with a slow hash
   * (PBKDF2 at 1.2M iterations, about 0.5 s) 20 parallel logins after 4 typos (limit 5) passed
   * 10 seconds and the last 7 were refused. A longer bound lets such a burst in, at the price of
   * requests (and their connections) held that long while a key is under attack; a shorter one
   * answers 429 sooner. A positive duration, of real time whatever `Clock` the app runs on (under a
   * `TestClock` too).
   *
   * @since 0.4.0
   */
  readonly busyTimeout?: Duration.DurationInput | undefined
}

/**
 * The store could not answer, or `reset` was given a target that is no string.
 *
 * @example
 * ```ts
 * import { Lockout } from "effect-auth"
 *
 * const error = new Lockout.LockoutStoreError({ operation: "attempt", message: "connection refused" })
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class LockoutStoreError extends Schema.TaggedError<LockoutStoreError>("effect-auth/LockoutStoreError")(
  "LockoutStoreError",
  { operation: Schema.String, message: Schema.String }
) {}

/**
 * The timing rules a store applies, in milliseconds.
 *
 * @example
 * ```ts
 * import type { Lockout } from "effect-auth"
 *
 * const policy: Lockout.Policy = { limit: 5, coolOff: 900_000, backOff: 2, maxCoolOff: 86_400_000, forgetAfter: 86_400_000 }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Policy {
  readonly limit: number
  readonly coolOff: number
  readonly backOff: number
  readonly maxCoolOff: number
  readonly forgetAfter: number
}

/**
 * A lock that places which lapsed set (attempts nobody settled within their hold, each counted as
 * a failure), answered by the one store operation that wrote that lapse (see {@link Store}):
 * the key, and until when it is locked (ms).
 *
 * @example
 * ```ts
 * import type { Lockout } from "effect-auth"
 *
 * const lock: Lockout.LapsedLock = { key: "username:alice", until: 1_700_000_900_000 }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export interface LapsedLock {
  readonly key: string
  readonly until: number
}

/**
 * What the store answered to an attempt: refused (`Locked`, for `retryAfter` ms), not yet (`Busy`:
 * the failures counted and the attempts in flight already make the limit, and one of those may
 * still fail and lock the key), or a place held for it (`Allowed`) until it is settled with
 * `fail` or `refund`. `since` names, per key (in the order given), the places this one joined
 * (when the first of them was taken); `fail` and `refund` take it back, so that the settlement of
 * a place that lapsed meanwhile (counted as a failure then) neither counts again nor gives back
 * another attempt's place. A store of an earlier release answers no `since`. `Locked` answers in
 * `lapsed` the locks that lapsed places set which this very operation found (and wrote), for
 * their `LockedOut` event.
 *
 * @example
 * ```ts
 * import type { Lockout } from "effect-auth"
 *
 * const answer: Lockout.Reservation = { _tag: "Locked", retryAfter: 900_000 }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Reservation =
  | {
    readonly _tag: "Locked"
    readonly retryAfter: number
    /** @since 0.4.0 */
    readonly lapsed?: ReadonlyArray<LapsedLock> | undefined
  }
  | { readonly _tag: "Busy" }
  | {
    readonly _tag: "Allowed"
    /** @since 0.4.0 */
    readonly since?: ReadonlyArray<number> | undefined
  }

/**
 * What settling an attempt as a failure did: the keys this very failure locked (their failures
 * reached the limit), and until when; in `lapsed`, the locks that lapsed places set which this
 * operation found (as {@link Settlement}'s).
 *
 * @example
 * ```ts
 * import type { Lockout } from "effect-auth"
 *
 * const settled: Lockout.Failure = { locked: ["username:alice"], until: 1_700_000_900_000 }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Failure extends Settlement {
  readonly locked: ReadonlyArray<string>
  readonly until: number
}

/**
 * What a settlement found besides its own count: the locks that places which lapsed set, written
 * by this operation (the first to find the lapse), for their `LockedOut` event. A store of an
 * earlier release answers none (its `refund` answers nothing).
 *
 * @example
 * ```ts
 * import type { Lockout } from "effect-auth"
 *
 * const settled: Lockout.Settlement = { lapsed: [{ key: "username:alice", until: 1_700_000_900_000 }] }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export interface Settlement {
  readonly lapsed?: ReadonlyArray<LapsedLock> | undefined
}

/**
 * One key's record, as `list` reports it.
 *
 * @example
 * ```ts
 * import type { Lockout } from "effect-auth"
 *
 * const locked = (entries: ReadonlyArray<Lockout.Entry>) => entries.filter((entry) => entry.lockedUntil !== undefined)
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Entry {
  /**
   * `username:<name>`, `ip:<address>` or `username-ip:<address>|<name>`, where an IPv6 address
   * stands as its network (`ip:2001:db8:0:1:0:0:0:0/64`, see `ipv6Prefix`). The name is folded: NFKC,
   * leading and trailing whitespace trimmed, runs of whitespace made one space, lower case, at most
   * 300 characters (`" Alice "` → `alice`).
   */
  readonly key: string
  /** Failures counted since the last lock or reset. */
  readonly failures: number
  readonly lastFailure: Date
  /** Set while the key is locked. */
  readonly lockedUntil: Date | undefined
  /** Locks so far (what `backOff` multiplies by). */
  readonly lockouts: number
}

/**
 * Where counters live. Every operation on a list of keys is atomic: two app instances sharing a
 * store never lose a count. `now` is the app's clock in milliseconds.
 *
 * A lock that lapsed places set has no failure of its own to announce it: `attempt` (its `Locked`
 * answer), `fail` and `refund` answer in `lapsed` each such lock, still in force, whose lapse they
 * wrote. An operation writes every record it reads as it stands, its lapsed places counted, so
 * only the first to find a lapse answers it, also among app instances on one store; `Lockout`
 * publishes one `LockedOut` for each. A store that answers none publishes none for such locks.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Lockout } from "effect-auth"
 *
 * const store = Lockout.memoryStore()
 * const policy = { limit: 2, coolOff: 1000, backOff: 1, maxCoolOff: 1000, forgetAfter: 1000 }
 * const answer = Effect.runSync(store.attempt(["username:alice"], 0, policy)) // { _tag: "Allowed", ... }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Store {
  /**
   * Refuses if any key is locked (`Locked`), or if a key's failures and attempts in flight already
   * make the limit (`Busy`); otherwise holds a place for one attempt on every key (`Allowed`), which
   * `fail` or `refund` gives back. A place is held for two minutes at most when nothing settles it
   * (an instance that stopped mid-attempt, an attempt that ran longer, a settlement that could not
   * be written); then it lapses and is counted as a failure, as the built-in stores do.
   */
  readonly attempt: (keys: ReadonlyArray<string>, now: number, policy: Policy) => Effect.Effect<Reservation, LockoutStoreError>
  /**
   * Settles an attempt that held a place as a failure: counts one failure on every key, and locks
   * each key whose failures reach the limit (a key locked meanwhile stays locked). `since` is the
   * `Allowed` reservation's: a key whose place lapsed meanwhile (counted then) is left as it is.
   */
  readonly fail: (
    keys: ReadonlyArray<string>,
    now: number,
    policy: Policy,
    since?: ReadonlyArray<number> | undefined
  ) => Effect.Effect<Failure, LockoutStoreError>
  /**
   * Settles an attempt that held a place and was no failure (it succeeded, or its outcome does not
   * count): gives the place back, and nothing else. The built-in stores drop a record left with no
   * failure, no lock so far and nothing in flight. `since` as in `fail`: a place that lapsed is not
   * given back again (that was another attempt's). Answers the locks that lapsed places set which
   * it found ({@link Settlement}), or nothing.
   */
  readonly refund: (
    keys: ReadonlyArray<string>,
    now: number,
    policy: Policy,
    since?: ReadonlyArray<number> | undefined
  ) => Effect.Effect<Settlement | void, LockoutStoreError>
  /**
   * Deletes the keys; answers those that were locked (with `policy`, the built-in stores count a
   * lock that lapsed places made, too).
   */
  readonly reset: (
    keys: ReadonlyArray<string>,
    now: number,
    policy?: Policy | undefined
  ) => Effect.Effect<ReadonlyArray<string>, LockoutStoreError>
  /**
   * Every live record (with `policy`, the built-in stores count the places that lapsed as
   * failures, as the next attempt will).
   */
  readonly list: (now: number, policy?: Policy | undefined) => Effect.Effect<ReadonlyArray<Entry>, LockoutStoreError>
  /**
   * The live keys `query` names (see {@link queryMatches}); more may be answered (the caller
   * keeps only those `queryMatches` accepts).
   * `Lockout.reset` asks it for one user's or address's keys, so that an operator's reset does
   * not read every record during a spray of a million names. Optional: without it, `reset` reads
   * `list`.
   */
  readonly find?: ((query: KeyQuery, now: number) => Effect.Effect<ReadonlyArray<string>, LockoutStoreError>) | undefined
}

/**
 * What {@link Store.find} looks for: exact keys, and keys by prefix and suffix (an address's pair
 * keys, `username-ip:<address>|`, or a name's, `username-ip:` ... `|<name>`). Between a prefix and
 * a suffix that is not empty stands an address, which holds no `|`: `username-ip:<address>|a|alice`
 * is a key of the name `a|alice`, not of `alice`.
 *
 * @example
 * ```ts
 * import type { Lockout } from "effect-auth"
 *
 * const alices: Lockout.KeyQuery = {
 *   exact: ["username:alice", "otp-username:alice"],
 *   pairs: [{ prefix: "username-ip:", suffix: "|alice" }, { prefix: "otp-username-ip:", suffix: "|alice" }]
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface KeyQuery {
  readonly exact: ReadonlyArray<string>
  readonly pairs: ReadonlyArray<{ readonly prefix: string; readonly suffix: string }>
}

/**
 * Whether `key` is one `query` asks for (for stores that filter in memory).
 *
 * @example
 * ```ts
 * import { Lockout } from "effect-auth"
 *
 * Lockout.queryMatches({ exact: [], pairs: [{ prefix: "username-ip:", suffix: "|alice" }] }, "username-ip:10.0.0.1|alice") // true
 * ```
 *
 * @since 0.2.0
 * @category predicates
 */
export const queryMatches: (query: KeyQuery, key: string) => boolean = Keys.queryMatches

/**
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Lockout } from "effect-auth"
 *
 * const lockedKeys = Effect.flatMap(Lockout.Lockout, (lockout) => lockout.list).pipe(
 *   Effect.map((entries) => entries.filter((entry) => entry.lockedUntil !== undefined).map((entry) => entry.key))
 * )
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Service {
  readonly by: By
  readonly policy: Policy
  /**
   * Runs one authentication attempt under the lockout: refuses it (publishing one `LoginFailed`)
   * when a key is locked or the address denied, else holds a place for it (waiting while the key
   * is busy), runs `attempt` and settles with its outcome. Once the store is asked, the place, the
   * attempt and the settlement run to
   * their end in a fiber of their own that the caller only waits for: a caller interrupted
   * meanwhile stops waiting, and the attempt is still run and settled. A request whose
   * `remoteAddress` is no string (a number, an object) or that throws when read has no address:
   * the attempt counts as one without an address would.
   */
  readonly guard: <A>(
    credentials: unknown,
    request: AuthRequest | undefined,
    attempt: Effect.Effect<A, AuthError.AuthenticateError>
  ) => Effect.Effect<A, AuthError.AuthenticateError>
  /** Every live record, sorted by key. */
  readonly list: Effect.Effect<ReadonlyArray<Entry>, LockoutStoreError>
  /**
   * Clears every record of a username or an address (its own key and the pairs it is in, second
   * factor's `otp-` keys included; a target that reads as an address is taken as both, since
   * `1.2.3.4` is a valid username too), or one exact key (`username:alice`, `otp-username:alice`);
   * answers the keys deleted. A username is folded as the keys are
   * (`reset(" ALICE ")` clears `alice`'s records); an exact key is taken as written, a NUL or a
   * lone surrogate in it read as U+FFFD, as every store keeps the keys. Publishes
   * `Unlocked` for each lock it lifts. The keys are asked of the store (`Store.find`), not found by
   * reading every record; answered sorted. A target that is no string (from an untyped caller:
   * a number, `null`, a Proxy) fails with `LockoutStoreError` (operation `"reset"`) on every
   * store, and nothing is cleared.
   */
  readonly reset: (target: string) => Effect.Effect<ReadonlyArray<string>, LockoutStoreError>
}

/**
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Lockout } from "effect-auth"
 *
 * const unlockAlice = Effect.flatMap(Lockout.Lockout, (lockout) => lockout.reset("alice"))
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export class Lockout extends Context.Tag("effect-auth/Lockout")<Lockout, Service>() {}

const deny: unique symbol = Symbol("deny")

// --- the memory store --------------------------------------------------------------------------

/**
 * A store in this process's memory: one app instance (or tests). At most `maxEntries` records
 * (default 100,000); past it, room is made for a tenth more in one pass: expired records go
 * first, then the least recently used that hold no lock, and locked ones only when every record
 * is locked. A record is judged as it stands: a lock that lapsed places set is a lock (not yet
 * written back, it is still kept).
 *
 * @example
 * ```ts
 * import { Lockout } from "effect-auth"
 *
 * const store = Lockout.memoryStore({ maxEntries: 10_000 })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const memoryStore: (options?: { readonly maxEntries?: number | undefined }) => Store = MemoryStore.make

// --- the Redis store ---------------------------------------------------------------------------

/**
 * The one command the Redis store sends, typed as `ioredis` declares it: an ioredis `Redis`
 * fits. Declared here so that this module needs no ioredis.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis"
 * import type { Lockout } from "effect-auth"
 *
 * // lazyConnect: the client connects on its first command
 * const client: Lockout.RedisClient = new Redis("redis://127.0.0.1:6379/0", { lazyConnect: true })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface RedisClient {
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
}

/**
 * A store on Redis: every app instance on the same server and prefix shares the counters, and each
 * operation is one Lua script, so concurrent attempts on many instances count exactly. Records are
 * forgotten by the app's clock, as in the other stores; the keys' TTL only collects garbage.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis"
 * import { Lockout } from "effect-auth"
 *
 * const client = new Redis("redis://127.0.0.1:6379/0", { lazyConnect: true })
 * const store = Lockout.redisStore(client, { keyPrefix: "myapp:lockout:" })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const redisStore = (client: RedisClient, options: { readonly keyPrefix?: string | undefined } = {}): Store =>
  RedisStore.make(client, options, (operation: string, message: string) => new LockoutStoreError({ operation, message }))

// --- the service -------------------------------------------------------------------------------

const checkRanges = (name: string, list: ReadonlyArray<string> | undefined) => {
  const parsed = IpAddress.parseRangeList(list)
  return "problem" in parsed
    ? Effect.fail(new AuthError.AuthConfigError({ message: `Lockout: ${name}: ${parsed.problem}` }))
    : Effect.succeed(parsed.ranges)
}

const positive = (name: string, value: number, integer: boolean) =>
  Number.isFinite(value) && value > 0 && (!integer || Number.isInteger(value))
    ? Effect.void
    : Effect.fail(new AuthError.AuthConfigError({ message: `Lockout: ${name} must be a positive ${integer ? "integer" : "number"}` }))

// What is no positive, finite duration (`"15 minutez"` from a config file, which `Duration.decode`
// throws on) is NaN, which `positive` refuses with an AuthConfigError.
const millis = (input: Duration.DurationInput): number =>
  Option.match(ConfigDuration.positive(input), { onNone: () => NaN, onSome: Duration.toMillis })

// The wall clock, for how long a request waits (see `reserve`), never the app's `Clock`.
const realClock = Clock.make()

// A settlement the store refused (a connection dropped, a failover) is tried again after 50, 100,
// 200 and 400 ms of real time, while less than a second has passed since the first try: the
// caller waits for it. Given up at once, as it was, a store away for 300 ms while 10 wrong
// passwords were checked lost all 10 failures (15 guesses reached the backend at limit 5). A
// retried `fail` whose first try the store did run (its answer lost) counts twice: the safe side.
const persistently = <A>(settlement: Effect.Effect<A, LockoutStoreError>): Effect.Effect<A, LockoutStoreError> =>
  Effect.suspend(() => {
    const start = realClock.unsafeCurrentTimeMillis()
    const again = (pause: number): Effect.Effect<A, LockoutStoreError> =>
      Effect.catchAll(settlement, (error) =>
        pause > 400 || realClock.unsafeCurrentTimeMillis() - start >= 1000
          ? Effect.fail(error)
          : Effect.zipRight(realClock.sleep(Duration.millis(pause)), again(pause * 2)))
    return again(50)
  })

/**
 * Builds the service on a store. Fails with `AuthConfigError` for a limit that is not a positive
 * integer, a `busyTimeout` that is not a positive duration, a `backOff` below 1, an `ipv6Prefix` that is not an integer from 1 to 128, or an
 * allow/deny entry that is not an address or CIDR range.
 * Publishes `LockedOut`, `Unlocked` and (for refused attempts) `LoginFailed` on `AuthEvents` when
 * that service is provided: `LockedOut` for a lock a failure set (with its request), and for one
 * that lapsed places set, once, when the store answers it in `lapsed` (with no request).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Lockout } from "effect-auth"
 *
 * const lockout = Lockout.make(Lockout.memoryStore(), { by: "ip", limit: 10 })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (store: Store, options: Options = {}): Effect.Effect<Service, AuthError.AuthConfigError> =>
  Effect.gen(function*() {
    const by = options.by ?? "username-and-ip"
    const policy: Policy = {
      limit: options.limit ?? 5,
      coolOff: millis(options.coolOff ?? Duration.minutes(15)),
      backOff: options.backOff ?? 1,
      maxCoolOff: millis(options.maxCoolOff ?? Duration.days(1)),
      forgetAfter: millis(options.forgetAfter ?? Duration.days(1))
    }
    yield* positive("limit", policy.limit, true)
    yield* positive("coolOff", policy.coolOff, false)
    yield* positive("maxCoolOff", policy.maxCoolOff, false)
    yield* positive("forgetAfter", policy.forgetAfter, false)
    // How long an attempt waits for a busy key (see `reserve`) before it is refused for a second.
    const busyTimeout = millis(options.busyTimeout ?? Duration.seconds(10))
    yield* positive("busyTimeout", busyTimeout, false)
    if (!(policy.backOff >= 1 && Number.isFinite(policy.backOff))) {
      return yield* Effect.fail(new AuthError.AuthConfigError({ message: "Lockout: backOff must be a number >= 1" }))
    }
    const ipv6Prefix = options.ipv6Prefix ?? 64
    if (!(Number.isInteger(ipv6Prefix) && ipv6Prefix >= 1 && ipv6Prefix <= 128)) {
      return yield* Effect.fail(new AuthError.AuthConfigError({ message: "Lockout: ipv6Prefix must be an integer from 1 to 128" }))
    }
    const allow = yield* checkRanges("allow", options.allow)
    const denied = yield* checkRanges("deny", options.deny)
    const onStoreError = options.onStoreError ?? "fail"
    const events = Option.getOrUndefined(yield* Effect.serviceOption(AuthEvents.AuthEvents))
    const publish = (event: AuthEvents.AuthEvent) => (events === undefined ? Effect.void : events.publish(event))

    /** The keys an attempt counts against; `deny` for a denied address; empty: not counted. */
    const plan = (credentials: unknown, request: AuthRequest | undefined): Array<string> | typeof deny => {
      const remote = Keys.remoteAddressOf(request)
      const address = remote === undefined ? undefined : IpAddress.parse(remote)
      if (address !== undefined) {
        if (IpAddress.inAny(denied, address)) return deny
        if (IpAddress.inAny(allow, address)) return []
      }
      const ip = address === undefined ? undefined : IpAddress.counted(address, ipv6Prefix)
      return Keys.ownKeysOf(Keys.keysFor(by, Keys.usernameOf(credentials), ip), Keys.isSecondFactor(credentials))
    }

    const refuse = (credentials: unknown, request: AuthRequest | undefined, retryAfter: number) => {
      const error = new AuthError.LockedOut({ retryAfter: Duration.millis(retryAfter) })
      return Effect.zipRight(
        publish(new AuthEvents.LoginFailed({ credentials: Credentials.cleanse(credentials), request: forEvent(request), error })),
        Effect.fail(error)
      )
    }

    // A lock that places which lapsed set (attempts nobody settled within their hold, each counted
    // as a failure) had no failure of its own to announce it: the key was locked, attempts were
    // refused, and no `LockedOut` was seen. The store operation that wrote the lapse answers it
    // (`lapsed`, on `attempt`'s `Locked`, `fail` and `refund`), and only that one (it writes the
    // record as it stands, so the next finds no lapse): announced here, once, as the failure that
    // sets a lock announces it. No request set it (none was settled), so the event carries none.
    const announceLapsed = (lapsed: ReadonlyArray<LapsedLock> | undefined) =>
      lapsed === undefined ? Effect.void : Effect.forEach(
        lapsed,
        (lock) => publish(new AuthEvents.LockedOut({ key: lock.key, until: new Date(lock.until), request: undefined })),
        { discard: true }
      )

    const storeFailed = (error: LockoutStoreError) =>
      Effect.fail(new AuthError.TransportError({ backend: "lockout", cause: error.message }))

    // This instance's attempts that hold (or are asking for) a place, per key, and the callers
    // waiting for one of them to settle: a caller told `Busy` waits for a settlement here instead
    // of asking the store again and again. Attempts held by other instances are waited for by
    // asking again after a pause that doubles.
    const local = new Map<string, { holders: number; readonly waiters: Set<() => void> }>()
    const hold = (keys: ReadonlyArray<string>) => {
      for (const key of keys) {
        const entry = local.get(key)
        if (entry === undefined) local.set(key, { holders: 1, waiters: new Set() })
        else entry.holders += 1
      }
    }
    const release = (keys: ReadonlyArray<string>, wake: boolean) => {
      for (const key of keys) {
        const entry = local.get(key)
        if (entry === undefined) continue
        entry.holders -= 1
        if (wake) {
          const waiters = [...entry.waiters]
          entry.waiters.clear()
          for (const waiter of waiters) waiter()
        }
        forgetIfIdle(key, entry)
      }
    }
    const forgetIfIdle = (key: string, entry: { holders: number; readonly waiters: Set<() => void> }) => {
      if (entry.holders <= 0 && entry.waiters.size === 0) local.delete(key)
    }
    const heldHere = (keys: ReadonlyArray<string>) => keys.some((key) => (local.get(key)?.holders ?? 0) > 0)
    // Resumes at the next settlement of an attempt of this instance on one of `keys`.
    const settlementOn = (keys: ReadonlyArray<string>) =>
      Effect.async<void>((resume) => {
        const waiter = () => {
          for (const key of keys) local.get(key)?.waiters.delete(waiter)
          resume(Effect.void)
        }
        for (const key of keys) local.get(key)?.waiters.add(waiter)
        return Effect.sync(() => {
          for (const key of keys) {
            const entry = local.get(key)
            if (entry === undefined) continue
            entry.waiters.delete(waiter)
            forgetIfIdle(key, entry)
          }
        })
      })

    // The outcome settles the attempt's place (`since`: the reservation's); a store failure here
    // cannot change the outcome. A settlement the store refused is tried again (see `persistently`),
    // then given up with a warning: its place lapses after `pendingHold` and is counted as a
    // failure then (a success's too, the safe side).
    const settle = (
      keys: ReadonlyArray<string>,
      request: AuthRequest | undefined,
      exit: Exit.Exit<unknown, AuthError.AuthenticateError>,
      since: ReadonlyArray<number> | undefined
    ): Effect.Effect<void> => {
      const settled = Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<void, LockoutStoreError> => {
        // A success gives back its own place on every key (it was no failure) and clears nothing
        // else, as django-axes does by default (AXES_RESET_ON_SUCCESS off). A key is shared by more
        // than the one who got in: an address by everyone behind it, a folded name by every account
        // that folds to it. A reset let one account of the attacker's own wipe the count of guesses
        // at another's: `Alice`'s login cleared `alice`'s key (a user store need not fold case), so
        // 4 guesses per own login went on without end; an own login between batches of a spray, the
        // address's. The failures before a success end with their cool-off, or by `reset`.
        // A success and an outcome that is no guess share the refund below.
        const failure = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
        // A backend that could not answer does not make a refused secret no guess.
        if (failure?._tag === "AuthenticationFailed" || failure?._tag === "PermissionDenied" || RefusedSecret.judged(failure)) {
          return Effect.flatMap(store.fail(keys, now, policy, since), (counted) => {
            const until = new Date(counted.until)
            return Effect.zipRight(
              announceLapsed(counted.lapsed),
              Effect.forEach(counted.locked, (key) => publish(new AuthEvents.LockedOut({ key, until, request: forEvent(request) })), {
                discard: true
              })
            )
          })
        }
        // A store of an earlier release answers nothing (`void`).
        return Effect.flatMap(store.refund(keys, now, policy, since), (settled) =>
          announceLapsed((settled as Settlement | undefined)?.lapsed))
      })
      return Effect.catchAll(
        persistently(settled),
        (error) => Effect.logWarning("Lockout: could not settle an attempt", error.message)
      )
    }

    // Concurrent asks for the same keys wait in line, one store operation at a time, and a refusal
    // answered after a caller joined the line is its answer too: a burst of 400 guesses at a locked
    // name is one store operation, not 400 that queue for the store's connections (past its
    // timeout; under `onStoreError: "allow"` each timed-out one went to the backend uncounted).
    let tick = 0
    const lines = new Map<string, { readonly permit: Effect.Semaphore; refusal: { readonly at: number; readonly answer: Reservation } | undefined; users: number }>()
    const askInLine = (keys: ReadonlyArray<string>): Effect.Effect<Reservation, LockoutStoreError> =>
      Effect.suspend(() => {
        const id = keys.join("\n")
        let line = lines.get(id)
        if (line === undefined) {
          line = { permit: Effect.unsafeMakeSemaphore(1), refusal: undefined, users: 0 }
          lines.set(id, line)
        }
        const joined = line
        joined.users += 1
        const arrived = ++tick
        const ask = Effect.suspend(() => {
          if (joined.refusal !== undefined && joined.refusal.at > arrived) return Effect.succeed(joined.refusal.answer)
          return Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.tap(store.attempt(keys, now, policy), (answer) =>
              Effect.zipRight(
                Effect.sync(() => {
                  joined.refusal = answer._tag === "Allowed" ? undefined : { at: ++tick, answer }
                }),
                // Announced by the one store operation that found the lapse; the callers that
                // share its refusal announce nothing.
                answer._tag === "Locked" ? announceLapsed(answer.lapsed) : Effect.void
              )))
        })
        return Effect.ensuring(
          joined.permit.withPermits(1)(ask),
          Effect.sync(() => {
            joined.users -= 1
            if (joined.users === 0 && lines.get(id) === joined) lines.delete(id)
          })
        )
      })

    // Asks the store for a place until it answers `Allowed` or `Locked`. While the key is busy
    // (failures and attempts in flight already make the limit), waits: for a settlement of this
    // instance's attempts, or a pause (10 ms, doubling up to 320 ms) for another instance's; after
    // `busyTimeout` of that, the attempt is refused for a second. Refused at once, the sixth of six
    // concurrent correct logins was a 429; counted as a failure when it asked, as it was, the sixth
    // locked the user out for the cool-off though nobody had failed (django-axes counts failures
    // once they happened, and lets all six in).
    //
    // The pause and the bound are real time, whatever `Clock` the app runs on: they measure how
    // long a request is held, not the lockout's times (the store is asked with the app's clock).
    // Under a `TestClock`, read from it, an attempt on a key whose place another instance held
    // waited for ever: its pause never ended and its bound never came, unless the test advanced
    // the clock, which moves every lock and cool-off with it.
    const reserve = (keys: ReadonlyArray<string>): Effect.Effect<Reservation, LockoutStoreError> =>
      Effect.suspend(() => {
        const start = realClock.unsafeCurrentTimeMillis()
        const ask = (pause: number): Effect.Effect<Reservation, LockoutStoreError> => {
          hold(keys)
          return Effect.flatMap(
            Effect.onError(askInLine(keys), () => Effect.sync(() => release(keys, false))),
            (reservation): Effect.Effect<Reservation, LockoutStoreError> => {
              if (reservation._tag === "Allowed") return Effect.succeed(reservation)
              release(keys, false)
              if (reservation._tag === "Locked") return Effect.succeed(reservation)
              return Effect.suspend(() => {
                if (realClock.unsafeCurrentTimeMillis() - start >= busyTimeout) {
                  return Effect.succeed({ _tag: "Locked", retryAfter: 1000 } as const)
                }
                const pauseOver = realClock.sleep(Duration.millis(pause))
                const wait = heldHere(keys) ? Effect.race(settlementOn(keys), pauseOver) : pauseOver
                return Effect.zipRight(wait, ask(Math.min(pause * 2, 320)))
              })
            }
          )
        }
        return ask(10)
      })

    // A counted attempt runs in a fiber of its own that the caller only waits for, from its
    // reservation to its settlement: a caller cut off (a client that drops the connection, an app's
    // timeout) stops waiting, while the attempt goes on and is settled by its real outcome, as
    // Django's request goes on when the client leaves. Given back on interruption, every dropped
    // request was a free, uncounted password hash: a client that never read an answer was never
    // locked. The reservation is in that fiber too: a caller cut off while the store held its place
    // (Redis holds it for a script it has run, whether or not its reply is awaited) left a place
    // held for an attempt that never ran nor was settled. A reservation answered after the caller
    // left runs its attempt and settles it all the same; a refusal still publishes its `LoginFailed`.
    const guard: Service["guard"] = (credentials, request, attempt) => {
      const keys = plan(credentials, request)
      if (keys === deny) return refuse(credentials, request, policy.coolOff)
      if (keys.length === 0) return attempt
      return runToItsEnd(
        Effect.matchEffect(reserve(keys), {
          onFailure: (error) => (onStoreError === "allow" ? attempt : storeFailed(error)),
          onSuccess: (reservation) =>
            reservation._tag !== "Allowed"
              ? refuse(credentials, request, reservation._tag === "Locked" ? reservation.retryAfter : 1000)
              : Effect.onExit(attempt, (exit) =>
                Effect.ensuring(settle(keys, request, exit, reservation.since), Effect.sync(() => release(keys, true))))
        })
      )
    }

    const list = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.map(store.list(now, policy), (entries) => [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))))

    // What `reset(target)` clears: a name's or an address's records include its second-factor
    // ones (`otp-`). A store may answer more than asked (SQLite's LIKE ignores case, neither LIKE
    // nor a glob knows the `|` rule), so each key is tested again.
    const queryOf = (target: string): KeyQuery => {
      // An exact key as the stores hold it (`wellFormedKey`): PostgreSQL failed on a NUL that
      // memory and Redis looked up, and the record of name "bob\0" is `username:bob\uFFFD`.
      if (/^((otp-)?username|ip|(otp-)?username-ip):/.test(target)) return { exact: [Keys.wellFormedKey(target)], pairs: [] }
      const name = Keys.usernameKey(target)
      const byName: KeyQuery = {
        exact: [`username:${name}`, `otp-username:${name}`],
        pairs: [{ prefix: "username-ip:", suffix: `|${name}` }, { prefix: "otp-username-ip:", suffix: `|${name}` }]
      }
      const address = IpAddress.parse(target)
      if (address === undefined) return byName
      // A target that reads as an address may also be a username ("1.2.3.4" is a valid one): it
      // names both, as an operator cannot say which was meant. As an address only, the records of
      // the user "1.2.3.4" could not be cleared at all (their pair keys end in `|1.2.3.4`).
      const ip = IpAddress.counted(address, ipv6Prefix)
      return {
        exact: [`ip:${ip}`, ...byName.exact],
        pairs: [{ prefix: `username-ip:${ip}|`, suffix: "" }, { prefix: `otp-username-ip:${ip}|`, suffix: "" }, ...byName.pairs]
      }
    }
    // A target that is no string (an untyped caller's number, `null`, a Proxy) names nothing: a
    // typed failure before any store is asked; `queryOf` threw on it (a defect).
    const badTarget = Effect.fail(
      new LockoutStoreError({ operation: "reset", message: "target must be a string: a username, an address or a key" })
    )
    const reset: Service["reset"] = (target) =>
      typeof target !== "string" ? badTarget : Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const query = queryOf(target)
        const found = store.find === undefined
          ? (yield* store.list(now, policy)).map((entry) => entry.key)
          : yield* store.find(query, now)
        const keys = [...new Set(found)].filter((key) => queryMatches(query, key)).sort()
        const unlocked = yield* store.reset(keys, now, policy)
        yield* Effect.forEach(unlocked, (key) => publish(new AuthEvents.Unlocked({ key })), { discard: true })
        return keys
      })

    return { by, policy, guard, list, reset }
  })

/**
 * The service on a store in memory (one app instance).
 *
 * @example
 * ```ts
 * import { Lockout } from "effect-auth"
 *
 * const LockoutLive = Lockout.layerMemory({ limit: 5, coolOff: "15 minutes", backOff: 2 })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory = (
  options: Options & { readonly maxEntries?: number | undefined } = {}
): Layer.Layer<Lockout, AuthError.AuthConfigError> =>
  Layer.effect(Lockout, Effect.suspend(() => make(memoryStore(options), options)))

/**
 * The service on Redis, shared by every app instance that uses the same server and `keyPrefix`.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis"
 * import { Lockout } from "effect-auth"
 *
 * const LockoutLive = Lockout.layerRedis({
 *   client: new Redis("redis://127.0.0.1:6379/0", { lazyConnect: true }),
 *   by: "username-or-ip",
 *   limit: 5
 * })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerRedis = (
  options: Options & { readonly client: RedisClient; readonly keyPrefix?: string | undefined }
): Layer.Layer<Lockout, AuthError.AuthConfigError> =>
  Layer.effect(Lockout, Effect.suspend(() => make(redisStore(options.client, options), options)))

/**
 * Wraps an `AuthService`: `authenticate` and `authenticateUnknown` run under `Lockout.guard`;
 * everything else is the service's own. Attempts the lockout does not count (no username, no
 * client address, an allowed address) run as they would without it. A `remoteAddress` that is no
 * string, or a request that throws when read (from an untyped caller), counts as no address.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, Lockout } from "effect-auth"
 *
 * const guarded = Effect.flatMap(AuthService.AuthService, Lockout.protect)
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const protect = (service: AuthService.Service): Effect.Effect<AuthService.Service, never, Lockout> =>
  Effect.map(Lockout, (lockout) => ({
    ...service,
    authenticate: (credentials, request) =>
      lockout.guard(credentials, request, service.authenticate(credentials, request)),
    authenticateUnknown: (input, request) =>
      lockout.guard(input, request, service.authenticateUnknown(input, request))
  }))

/**
 * An `AuthService` layer under the lockout: the given layer's service, wrapped by {@link protect}.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { AuthEvents, AuthService, Lockout, TestBackend } from "effect-auth"
 *
 * const AuthLive = Lockout.layerAuthService(AuthService.layer([TestBackend.noMatch("passwords")])).pipe(
 *   Layer.provide(Lockout.layerMemory()),
 *   Layer.provideMerge(AuthEvents.layer)
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerAuthService = <E, R>(
  layer: Layer.Layer<AuthService.AuthService, E, R>
): Layer.Layer<AuthService.AuthService, E, R | Lockout> =>
  Layer.effect(AuthService.AuthService, Effect.flatMap(AuthService.AuthService, protect)).pipe(Layer.provide(layer))

/**
 * Lists the records of the `Lockout` in context.
 *
 * @example
 * ```ts
 * import { Lockout } from "effect-auth"
 *
 * const entries = Lockout.list
 * ```
 *
 * @since 0.2.0
 * @category accessors
 */
export const list: Effect.Effect<ReadonlyArray<Entry>, LockoutStoreError, Lockout> = Effect.flatMap(
  Lockout,
  (lockout) => lockout.list
)

/**
 * Clears the records of a username, an address or one key, with the `Lockout` in context. A
 * target that is no string is a `LockoutStoreError`, never a defect.
 *
 * @example
 * ```ts
 * import { Lockout } from "effect-auth"
 *
 * const unlock = Lockout.reset("203.0.113.7")
 * ```
 *
 * @since 0.2.0
 * @category accessors
 */
export const reset = (target: string): Effect.Effect<ReadonlyArray<string>, LockoutStoreError, Lockout> =>
  Effect.flatMap(Lockout, (lockout) => lockout.reset(target))
