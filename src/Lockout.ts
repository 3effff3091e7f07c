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
import { nfkcBound } from "./internal/codePoints.js"
import { fieldOf } from "./internal/fieldOf.js"
import * as IpAddress from "./internal/ipAddress.js"
import { wellFormed } from "./internal/wellFormed.js"
import {
  countFailure,
  decideAttempt,
  lapsedLocks,
  liveView,
  type LockoutRecord,
  pendingHold,
  refundAttempt,
  toEntry
} from "./internal/lockoutRecord.js"
import * as RefusedSecret from "./internal/refusedSecret.js"
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
export const queryMatches = (query: KeyQuery, key: string): boolean =>
  query.exact.includes(key) ||
  query.pairs.some((p) =>
    key.length >= p.prefix.length + p.suffix.length && key.startsWith(p.prefix) && key.endsWith(p.suffix) &&
    (p.suffix === "" || !key.slice(p.prefix.length, key.length - p.suffix.length).includes("|"))
  )

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

// --- keys --------------------------------------------------------------------------------------

// Usernames are folded (NFKC, spaces trimmed and runs of whitespace made one space, lower case) so
// that `Alice`, `ａｌｉｃｅ` and ` alice ` share a counter: LDAP matches names ignoring case and
// insignificant spaces, so each of these logs in as the same user, and locking too much is safer
// than letting a variant spelling through. Every key (counting, `reset`) is made here, so a store
// only ever sees folded names. Long names are cut, keys stay small; a name past `nfkcBound` is cut
// before NFKC, whose cost grows with the square of a run of combining marks (no username is that
// long, so no spelling of one gets a key of its own this way).
const usernameKey = (username: string): string =>
  wellFormedKey(username.slice(0, nfkcBound).normalize("NFKC").trim().replace(/\s+/g, " ").toLowerCase().slice(0, 300))

// What a database keeps of a key: a SQL store writes a NUL or a lone surrogate (a name cut inside
// a pair, too) as something else, so the record it wrote was never found again under the key and
// every attempt counted from zero. Made U+FFFD here, as the databases do, all stores count alike.
const wellFormedKey = (key: string): string => wellFormed(key).replace(/\0/g, "\uFFFD")

// Credentials that throw when read (a getter, a Proxy) have no username or second factor here;
// the fold refuses them as credentials of no kind, and the attempt still counts by address.
const usernameOf = (credentials: unknown): string | undefined => {
  const username = fieldOf(credentials, "username")
  return typeof username === "string" && username.length > 0 ? usernameKey(username) : undefined
}

// An address that is no string (a number, an object, from an untyped caller) or that throws when
// read (a getter, a Proxy) is no address, as text that does not parse is none: the attempt counts
// as one without an address (by username, if at all), and no allow or deny list matches it.
const remoteAddressOf = (request: unknown): string | undefined => {
  const remote = fieldOf(request, "remoteAddress")
  return typeof remote === "string" ? remote : undefined
}

const keysFor = (by: By, username: string | undefined, ip: string | undefined): Array<string> => {
  const keys: Array<string> = []
  if (by === "username-and-ip" && username !== undefined && ip !== undefined) {
    keys.push(`username-ip:${ip}|${username}`)
    return keys
  }
  if (by !== "ip" && username !== undefined) keys.push(`username:${username}`)
  if (by !== "username" && ip !== undefined) keys.push(`ip:${ip}`)
  return keys
}

// Second-factor attempts (`TotpBackend`'s `{ username, otpToken }`) count under their own keys,
// `otp-username:` and `otp-username-ip:`: under the password's keys, the attacker this lockout is
// there for (one who has the password) reset the count of their code guesses with a password login
// between batches, and guessed six digits without end (when a success still reset its keys). A
// code's success gives back its own count on its own keys only, as any success does.
const isSecondFactor = (credentials: unknown): boolean => {
  if (typeof credentials !== "object" || credentials === null) return false
  try {
    return Object.hasOwn(credentials, "otpToken")
  } catch {
    return false
  }
}

const ownKeysOf = (keys: Array<string>, secondFactor: boolean): Array<string> =>
  secondFactor ? keys.map((key) => (key.startsWith("ip:") ? key : `otp-${key}`)) : keys

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
export const memoryStore = (options: { readonly maxEntries?: number | undefined } = {}): Store => {
  const maxEntries = options.maxEntries ?? 100_000
  const records = new Map<string, LockoutRecord>()
  const live = (key: string, now: number): LockoutRecord | undefined => {
    const record = records.get(key)
    if (record !== undefined && record.expiresAt <= now) {
      records.delete(key)
      return undefined
    }
    return record
  }
  // Past `maxEntries`, one pass makes room for a tenth more: expired records go, then the least
  // recently used that hold no lock, and locked ones only when nothing else is left. One scan per
  // insert at capacity cost ~0.9 ms of event loop an attempt there, and evicting by use alone let
  // a flood of fresh names push out the lock it was meant to outlast. A lock is read from the
  // record as it stands (`liveView`): a record whose places lapsed into a lock holds `u` 0 until an
  // operation writes it back, and read as stored it went as unlocked, its attacker's key freed.
  const room = Math.max(1, Math.floor(maxEntries * 0.9))
  const makeRoom = (now: number, policy: Policy) => {
    for (const [k, r] of records) if (r.expiresAt <= now) records.delete(k)
    for (const [k, r] of records) {
      if (records.size <= room) return
      if (liveView(r, now, policy).u <= now) records.delete(k)
    }
    for (const k of records.keys()) {
      if (records.size <= room) return
      records.delete(k)
    }
  }
  const put = (key: string, record: LockoutRecord, now: number, policy: Policy) => {
    // Re-inserted at the end: the map's order is the order of last use.
    records.delete(key)
    records.set(key, record)
    if (records.size > maxEntries) makeRoom(now, policy)
  }
  // A record as it stands, its lapsed places counted (when the caller gave the policy).
  const view = (key: string, now: number, policy: Policy | undefined) => {
    const record = live(key, now)
    return record === undefined ? record : liveView(record, now, policy)
  }
  return {
    attempt: (keys, now, policy) =>
      Effect.sync((): Reservation => {
        const decided = decideAttempt(keys, keys.map((key) => live(key, now)), now, policy)
        decided.records.forEach((record, i) => {
          if (record === undefined) return
          // A refusal writes back a lapse in place: it is no use of the key (nor makes a record).
          if (decided.reservation._tag === "Allowed") put(keys[i]!, record, now, policy)
          else records.set(keys[i]!, record)
        })
        return decided.reservation
      }),
    fail: (keys, now, policy, since) =>
      Effect.sync((): Failure => {
        const locked: Array<string> = []
        const lapsed: Array<LapsedLock> = []
        let until = 0
        for (const [i, key] of keys.entries()) {
          const stored = live(key, now)
          lapsed.push(...lapsedLocks([key], [stored], now, policy))
          const counted = countFailure(stored, now, policy, since?.[i])
          put(key, counted.record, now, policy)
          if (counted.locked) {
            locked.push(key)
            until = Math.max(until, counted.record.u)
          }
        }
        return lapsed.length > 0 ? { locked, until, lapsed } : { locked, until }
      }),
    refund: (keys, now, policy, since) =>
      Effect.sync((): Settlement => {
        const lapsed: Array<LapsedLock> = []
        for (const [i, key] of keys.entries()) {
          const record = live(key, now)
          if (record === undefined) continue
          // A lapse that locked leaves a lock so far: the record is kept, the lapse written.
          lapsed.push(...lapsedLocks([key], [record], now, policy))
          const left = refundAttempt(record, now, policy, since?.[i])
          if (left === undefined) records.delete(key)
          else records.set(key, left)
        }
        return lapsed.length > 0 ? { lapsed } : {}
      }),
    reset: (keys, now, policy) =>
      Effect.sync(() => {
        const wasLocked: Array<string> = []
        for (const key of keys) {
          const record = view(key, now, policy)
          if (record !== undefined && record.u > now) wasLocked.push(key)
          records.delete(key)
        }
        return wasLocked
      }),
    find: (query, now) =>
      Effect.sync(() => {
        const keys: Array<string> = []
        for (const [key, record] of records) if (record.expiresAt > now && queryMatches(query, key)) keys.push(key)
        return keys
      }),
    list: (now, policy) =>
      Effect.sync(() => {
        const entries: Array<Entry> = []
        for (const [key] of records) {
          const record = view(key, now, policy)
          if (record !== undefined) entries.push(toEntry(key, record, now))
        }
        return entries
      })
  }
}

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

// Each record is a hash: f failures, t last failure (ms), u locked until (ms, 0: not locked),
// n locks so far, p attempts in flight, q until when their places are held (ms), g when the first
// of those places was taken (ms), e when it is forgotten (ms). The times are the app's clock (ARGV), so every instance judges with the same
// rule, and a record whose e is not after now is absent to every script, as the other stores
// forget by the app's clock; the key's TTL only collects garbage. A record without e (written
// before it was kept) lives by its TTL. The rules are internal/lockoutRecord.ts's.

// P: the policy {limit, cool, mult, maxc, forget} when the script was given one (ARGV from
// index i: limit, coolOff, backOff, maxCoolOff, forgetAfter), else nil (a list or a reset of a
// caller of an earlier release: lapsed places are then shown as they were left).
// A record is {f, t, u, n, p, q, e, g}: g when the first place in flight was taken (see
// internal/lockoutRecord.ts's LockoutRecord).
// addfail: k failures counted at `at`, p places left in flight, as lockoutRecord's addFailures
// (with places left, kept until their lapse is forgotten, as its keptUntil).
// live: the record of KEY as it stands at now, or nil: places held past q have lapsed, each counted
// as a failure at q (lockoutRecord's liveView); then whether places lapsed, and the end of the lock
// their lapse set if it holds at now, else 0 (lockoutRecord's lapsedLocks). A script writes back
// every record it finds lapsed, so that only the first to find a lapse answers its lock.
const liveRecord = `
local P = nil
local function policy(i)
  if ARGV[i] and ARGV[i] ~= '' then
    P = {limit = tonumber(ARGV[i]), cool = tonumber(ARGV[i + 1]), mult = tonumber(ARGV[i + 2]), maxc = tonumber(ARGV[i + 3]), forget = tonumber(ARGV[i + 4])}
  end
end
local function failures(r, now)
  if (r[3] > 0 and r[3] <= now) or r[2] + P.cool <= now then return 0 end
  return r[1]
end
local function addfail(r, k, at, p)
  local locked = false
  if r[3] > at then
    r = {r[1] + k, at, r[3], r[4], p, r[6], 0, r[8]}
  else
    r = {failures(r, at) + k, at, 0, r[4], p, r[6], 0, r[8]}
    if r[1] >= P.limit then
      r[4] = r[4] + 1
      r[3] = at + math.floor(math.min(P.cool * P.mult ^ (r[4] - 1), P.maxc))
      locked = true
    end
  end
  r[7] = math.max(at + math.max(r[3] - at, P.cool) + P.forget, r[6])
  if p > 0 then r[7] = math.max(r[7], addfail(r, p, r[6], 0)[7]) end
  return r, locked
end
local function lapsed(r, now)
  if P and r[5] > 0 and r[6] <= now then
    local e, n = r[7], r[4]
    r = addfail(r, r[5], r[6], 0)
    r[7] = math.max(r[7], e)
    if r[4] > n and r[3] > now then return r, true, r[3] end
    return r, true, 0
  end
  return r, false, 0
end
local function live(key, now)
  local v = redis.call('HMGET', key, 'f', 't', 'u', 'n', 'e', 'p', 'q', 'g')
  if not v[1] then return nil end
  if v[5] and tonumber(v[5]) <= now then return nil end
  local r = {tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or 0, tonumber(v[6]) or 0, tonumber(v[7]) or 0, tonumber(v[5]) or 0, tonumber(v[8]) or 0}
  return lapsed(r, now)
end
local function store(key, r, now)
  redis.call('HSET', key, 'f', r[1], 't', r[2], 'u', r[3], 'n', r[4], 'p', r[5], 'q', r[6], 'g', r[8])
  if r[7] > 0 then
    redis.call('HSET', key, 'e', r[7])
    redis.call('PEXPIRE', key, math.max(r[7] - now, 1))
  end
end
local function settled(r, i)
  local since = ARGV[6 + i]
  if since == nil or since == '' then return false end
  return r[5] == 0 or r[8] ~= tonumber(since)
end
`

// KEYS: the attempt's keys. ARGV: now, limit, coolOff, backOff, maxCoolOff, forgetAfter, hold.
// Reply: {0, retryAfter, i, until, ...} (locked; i the 1-based index of a key whose lapsed places
// set a lock this script found, until its end), {2} (busy) or {1, g...} (a place held, g per key).
// A refusal writes back the records whose places lapsed.
const attemptScript = `${liveRecord}
policy(2)
local now, hold = tonumber(ARGV[1]), tonumber(ARGV[7])
local retry, busy = 0, false
local state, changed, lapse = {}, {}, {}
for i, key in ipairs(KEYS) do
  local r, c, lk = live(key, now)
  state[i], changed[i], lapse[i] = r, c, lk or 0
  if r then
    if r[3] > now then
      if r[3] - now > retry then retry = r[3] - now end
    elseif failures(r, now) + r[5] >= P.limit then
      busy = true
    end
  end
end
if retry > 0 or busy then
  local reply = {2}
  if retry > 0 then reply = {0, retry} end
  for i, key in ipairs(KEYS) do
    if changed[i] then store(key, state[i], now) end
    if retry > 0 and lapse[i] > 0 then
      reply[#reply + 1] = i
      reply[#reply + 1] = lapse[i]
    end
  end
  return reply
end
local reply = {1}
for i, key in ipairs(KEYS) do
  local r = state[i] or {0, 0, 0, 0, 0, 0, 0, 0}
  if r[5] == 0 then r[8] = now end
  r[5] = r[5] + 1
  r[6] = now + hold
  r[7] = math.max(r[7], lapsed(r, r[6])[7])
  store(key, r, now)
  reply[#reply + 1] = r[8]
end
return reply`

// KEYS: the keys. ARGV: now, limit, coolOff, backOff, maxCoolOff, forgetAfter, since (one per key,
// '' for none). Reply: {until, count, i..., j, until, ...}: count i, the 1-based indexes of the keys
// this failure locked; then each key j whose lapsed places set a lock this script found, and its end.
const failScript = `${liveRecord}
policy(2)
local now = tonumber(ARGV[1])
local reply, lapses = {0, 0}, {}
for i, key in ipairs(KEYS) do
  local r, _, lk = live(key, now)
  local locked = false
  if lk and lk > 0 then
    lapses[#lapses + 1] = i
    lapses[#lapses + 1] = lk
  end
  if not r then
    r, locked = addfail({0, 0, 0, 0, 0, 0, 0, 0}, 1, now, 0)
  elseif not settled(r, i) then
    r, locked = addfail(r, 1, now, math.max(r[5] - 1, 0))
  end
  if locked then
    if r[3] > reply[1] then reply[1] = r[3] end
    reply[2] = reply[2] + 1
    reply[#reply + 1] = i
  end
  store(key, r, now)
end
for _, v in ipairs(lapses) do reply[#reply + 1] = v end
return reply`

// KEYS: the keys. ARGV: now, limit, coolOff, backOff, maxCoolOff, forgetAfter, since (as failScript).
// A record left with no failure, no lock so far and nothing in flight is deleted (as refundAttempt
// answers for the other stores), and so is a forgotten one. Reply: {j, until, ...}, as failScript's
// lapsed locks.
const refundScript = `${liveRecord}
policy(2)
local now = tonumber(ARGV[1])
local reply = {}
for i, key in ipairs(KEYS) do
  local r, _, lk = live(key, now)
  if lk and lk > 0 then
    reply[#reply + 1] = i
    reply[#reply + 1] = lk
  end
  if r then
    if not settled(r, i) then r[5] = math.max(r[5] - 1, 0) end
    if r[1] == 0 and r[4] == 0 and r[5] == 0 then
      redis.call('DEL', key)
    else
      store(key, r, now)
    end
  else
    redis.call('DEL', key)
  end
end
return reply`

// KEYS: the keys. ARGV: now, then the policy or nothing. Reply: 1-based indexes of the keys that
// were locked.
const resetScript = `${liveRecord}
policy(2)
local now = tonumber(ARGV[1])
local reply = {}
for i, key in ipairs(KEYS) do
  local v = live(key, now)
  if v and v[3] > now then reply[#reply + 1] = i end
  redis.call('DEL', key)
end
return reply`

// ARGV: cursor, pattern, now, then the policy or nothing. Reply: {cursor, key, f, t, u, n, key, ...}:
// one SCAN step, live records only.
const listScript = `${liveRecord}
policy(4)
local now = tonumber(ARGV[3])
local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 500)
local reply = {r[1]}
for _, key in ipairs(r[2]) do
  local v = live(key, now)
  if v then
    reply[#reply + 1] = key
    for j = 1, 4 do reply[#reply + 1] = tostring(v[j]) end
  end
end
return reply`

const globEscape = (text: string): string => text.replace(/[*?[\]\\]/g, (c) => `\\${c}`)

// KEYS: keys. ARGV: now. Answers the 1-based indexes of those that hold a live record.
const existingScript = `${liveRecord}
local now = tonumber(ARGV[1])
local found = {}
for i, key in ipairs(KEYS) do
  if live(key, now) then found[#found + 1] = i end
end
return found`

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
export const redisStore = (client: RedisClient, options: { readonly keyPrefix?: string | undefined } = {}): Store => {
  const prefix = options.keyPrefix ?? "effect-auth:lockout:"
  const call = (operation: string, f: () => Promise<unknown>) =>
    Effect.tryPromise({
      try: f,
      // ioredis attaches the command and its arguments to its errors: keep only the message.
      catch: (cause) =>
        new LockoutStoreError({ operation, message: cause instanceof Error ? cause.message : String(cause) })
    })
  const full = (keys: ReadonlyArray<string>) => keys.map((key) => prefix + key)
  const ints = (reply: unknown): Array<number> => (Array.isArray(reply) ? reply.map(Number) : [])
  // The policy as the scripts read it (`policy(i)` in liveRecord), or nothing.
  const rules = (policy: Policy | undefined): Array<number> =>
    policy === undefined ? [] : [policy.limit, policy.coolOff, policy.backOff, policy.maxCoolOff, policy.forgetAfter]
  // The scripts' lapsed locks, {i, until, ...} with i a 1-based index into `keys` (a key given
  // twice, found twice by one script, is one lock).
  const lapsedOf = (keys: ReadonlyArray<string>, pairs: ReadonlyArray<number>): Array<LapsedLock> => {
    const locks: Array<LapsedLock> = []
    for (let j = 0; j + 1 < pairs.length; j += 2) {
      const key = keys[pairs[j]! - 1]!
      if (!locks.some((lock) => lock.key === key)) locks.push({ key, until: pairs[j + 1]! })
    }
    return locks
  }
  // One `since` a key, "" where the caller gave none.
  const sinceOf = (keys: ReadonlyArray<string>, since: ReadonlyArray<number> | undefined) =>
    keys.map((_, i) => since?.[i] ?? "")
  return {
    attempt: (keys, now, policy) =>
      Effect.map(
        call("attempt", () => client.eval(attemptScript, keys.length, ...full(keys), now, ...rules(policy), pendingHold)),
        (reply): Reservation => {
          const [answer, ...rest] = ints(reply)
          if (answer === 1) return { _tag: "Allowed", since: rest }
          if (answer === 2) return { _tag: "Busy" }
          const lapsed = lapsedOf(keys, rest.slice(1))
          const retryAfter = rest[0] ?? policy.coolOff
          return lapsed.length > 0 ? { _tag: "Locked", retryAfter, lapsed } : { _tag: "Locked", retryAfter }
        }
      ),
    fail: (keys, now, policy, since) =>
      Effect.map(
        call("fail", () => client.eval(failScript, keys.length, ...full(keys), now, ...rules(policy), ...sinceOf(keys, since))),
        (reply): Failure => {
          const [until = 0, count = 0, ...rest] = ints(reply)
          const locked = rest.slice(0, count).map((i) => keys[i - 1]!)
          const lapsed = lapsedOf(keys, rest.slice(count))
          return lapsed.length > 0 ? { locked, until, lapsed } : { locked, until }
        }
      ),
    refund: (keys, now, policy, since) =>
      Effect.map(
        call("refund", () => client.eval(refundScript, keys.length, ...full(keys), now, ...rules(policy), ...sinceOf(keys, since))),
        (reply): Settlement => {
          const lapsed = lapsedOf(keys, ints(reply))
          return lapsed.length > 0 ? { lapsed } : {}
        }
      ),
    reset: (keys, now, policy) =>
      keys.length === 0
        ? Effect.succeed([])
        : Effect.map(
          call("reset", () => client.eval(resetScript, keys.length, ...full(keys), now, ...rules(policy))),
          (reply) => ints(reply).map((i) => keys[i - 1]!)
        ),
    list: (now, policy) => scan("list", `${globEscape(prefix)}*`, now, policy),
    // The exact keys in one script; each pair pattern by a SCAN MATCH of its own.
    find: (query, now) =>
      Effect.gen(function*() {
        const keys: Array<string> = []
        if (query.exact.length > 0) {
          const reply = yield* call("find", () => client.eval(existingScript, query.exact.length, ...full(query.exact), now))
          for (const i of ints(reply)) keys.push(query.exact[i - 1]!)
        }
        for (const pair of query.pairs) {
          const pattern = `${globEscape(prefix + pair.prefix)}*${globEscape(pair.suffix)}`
          for (const entry of yield* scan("find", pattern, now)) keys.push(entry.key)
        }
        return keys
      })
  }

  function scan(operation: string, pattern: string, now: number, policy?: Policy) {
    return Effect.gen(function*() {
      const entries: Array<Entry> = []
      let cursor = "0"
      do {
        const reply = yield* call(operation, () => client.eval(listScript, 0, cursor, pattern, now, ...rules(policy)))
        const items = Array.isArray(reply) ? reply.map(String) : ["0"]
        cursor = items[0] ?? "0"
        for (let i = 1; i + 4 < items.length; i += 5) {
          const n = (j: number) => Number(items[i + j])
          entries.push(toEntry(items[i]!.slice(prefix.length), { f: n(1), t: n(2), u: n(3), n: n(4) }, now))
        }
      } while (cursor !== "0")
      return entries
    })
  }
}

// --- the service -------------------------------------------------------------------------------

const checkRanges = (name: string, list: ReadonlyArray<string> | undefined) => {
  const ranges: Array<IpAddress.Range> = []
  for (const text of list ?? []) {
    const range = IpAddress.parseRange(text)
    if (range === undefined) {
      return Effect.fail(
        new AuthError.AuthConfigError({ message: `Lockout: ${name}: ${JSON.stringify(text)} is not an address or CIDR range` })
      )
    }
    ranges.push(range)
  }
  return Effect.succeed(ranges)
}

const positive = (name: string, value: number, integer: boolean) =>
  Number.isFinite(value) && value > 0 && (!integer || Number.isInteger(value))
    ? Effect.void
    : Effect.fail(new AuthError.AuthConfigError({ message: `Lockout: ${name} must be a positive ${integer ? "integer" : "number"}` }))

const millis = (input: Duration.DurationInput): number => Duration.toMillis(Duration.decode(input))

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
      const remote = remoteAddressOf(request)
      const address = remote === undefined ? undefined : IpAddress.parse(remote)
      if (address !== undefined) {
        if (IpAddress.inAny(denied, address)) return deny
        if (IpAddress.inAny(allow, address)) return []
      }
      const ip = address === undefined ? undefined : IpAddress.counted(address, ipv6Prefix)
      return ownKeysOf(keysFor(by, usernameOf(credentials), ip), isSecondFactor(credentials))
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
      if (/^((otp-)?username|ip|(otp-)?username-ip):/.test(target)) return { exact: [wellFormedKey(target)], pairs: [] }
      const name = usernameKey(target)
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
