// One lockout key's record and its transitions, shared by the memory and SQL stores (the Redis
// store runs the same rules in its Lua scripts), so that every store counts alike.
import type { Entry, LapsedLock, Policy, Reservation } from "../Lockout.js"

/**
 * `f` failures counted, `t` the last failure, `u` locked until (0: not locked), `n` locks so far,
 * `p` attempts in flight (each holds a place until it settles), `q` until when those places are
 * held, `g` when the first of those places was taken (it names them: a settlement that brings
 * another `g` is of a place that lapsed), `expiresAt` when the record may be forgotten. Times are
 * milliseconds.
 *
 * @internal
 */
export interface LockoutRecord {
  f: number
  t: number
  u: number
  n: number
  p: number
  q: number
  g: number
  expiresAt: number
}

/**
 * How long the places of attempts in flight are held when none settles: an instance that stopped
 * in the middle of an attempt (a crash, a deploy), an attempt that runs longer, a settlement the
 * store could not write. Each new place holds them all this long again; then they lapse, each
 * counted as a failure (see {@link liveView}). @internal
 */
export const pendingHold = 120_000

const empty: LockoutRecord = { f: 0, t: 0, u: 0, n: 0, p: 0, q: 0, g: 0, expiresAt: 0 }

const lockFor = (policy: Policy, lockouts: number): number =>
  Math.floor(Math.min(policy.coolOff * Math.pow(policy.backOff, lockouts - 1), policy.maxCoolOff))

// The failures that still count toward a lock: a lock that ran out, or failures older than the
// cool-off, start a fresh count.
const failuresOf = (record: LockoutRecord, now: number, policy: Policy): number =>
  (record.u > 0 && record.u <= now) || record.t + policy.coolOff <= now ? 0 : record.f

const expiryOf = (record: LockoutRecord, now: number, policy: Policy): number =>
  Math.max(now + Math.max(record.u - now, policy.coolOff) + policy.forgetAfter, record.q)

// `k` failures counted at `at`, `p` places left in flight: the count and, at the limit, the lock. A
// key locked meanwhile keeps its lock, the failures counted under it.
const addFailures = (base: LockoutRecord, k: number, at: number, policy: Policy, p: number): {
  readonly record: LockoutRecord
  readonly locked: boolean
} => {
  if (base.u > at) {
    const record = { ...base, f: base.f + k, t: at, p }
    record.expiresAt = keptUntil(record, at, policy)
    return { record, locked: false }
  }
  const record: LockoutRecord = { ...base, f: failuresOf(base, at, policy) + k, t: at, u: 0, p, expiresAt: 0 }
  const locked = record.f >= policy.limit
  if (locked) {
    record.n += 1
    record.u = at + lockFor(policy, record.n)
  }
  record.expiresAt = keptUntil(record, at, policy)
  return { record, locked }
}

// When a record written at `at` may be forgotten: with places left in flight, not before their
// lapse is (the failures it counts at `q`). A cool-off and memory shorter than the hold let the
// record go just as they lapsed, and the lapse counted nothing.
const keptUntil = (record: LockoutRecord, at: number, policy: Policy): number =>
  record.p === 0
    ? expiryOf(record, at, policy)
    : Math.max(expiryOf(record, at, policy), addFailures(record, record.p, record.q, policy, 0).record.expiresAt)

/**
 * The record as it stands at `now`: places held past their hold (`q`) have lapsed, each counted as
 * a failure at `q` (the one that reaches the limit locks, from `q`). An attempt whose outcome was
 * never recorded (it ran past the hold, its instance died, its settlement could not be written) is
 * presumed a wrong guess: given back for nothing, as it was, 5 guesses every 121 s that were all
 * still running let 15 reach a backend within one cool-off, and a store out while a wrong password
 * was checked lost that failure. Every store reads a record through this (the Redis store's Lua
 * does the same), and writes it back as it stands whenever it writes; until then it is worked out
 * again, alike, at each read. Without the policy (a list or a reset asked by a caller of an earlier
 * release), the record as it was left. @internal
 */
export const liveView = (record: LockoutRecord, now: number, policy: Policy | undefined): LockoutRecord => {
  if (policy === undefined || record.p === 0 || record.q > now) return record
  const lapsed = addFailures(record, record.p, record.q, policy, 0).record
  return { ...lapsed, expiresAt: Math.max(lapsed.expiresAt, record.expiresAt) }
}

/**
 * The locks that the lapse of places sets in `stored` (`stored[i]` the record of `keys[i]` as the
 * store holds it) and that still hold at `now`. A store reads a record through {@link liveView}
 * and writes it back as it stands in the same atomic operation: the operation that writes a lapse
 * is the only one to find it (the record it leaves has no lapsed place), so it alone answers the
 * lock, and `Lockout` publishes its `LockedOut` event once, as the failure that sets a lock does.
 * An operation that writes no record back finds the lapse again, and must not answer it: it
 * would be published again. A lock that ended before any operation found it is not answered (it
 * refused nobody). @internal
 */
export const lapsedLocks = (
  keys: ReadonlyArray<string>,
  stored: ReadonlyArray<LockoutRecord | undefined>,
  now: number,
  policy: Policy
): Array<LapsedLock> => {
  const locks: Array<LapsedLock> = []
  for (const [i, record] of stored.entries()) {
    // A key given twice is one record, one lock.
    if (record === undefined || keys.indexOf(keys[i]!) !== i) continue
    const live = liveView(record, now, policy)
    // A lapse locks when it counts a lock (`n`); one under a lock set meanwhile adds none.
    if (live.n > record.n && live.u > now) locks.push({ key: keys[i]!, until: live.u })
  }
  return locks
}

// Whether a settlement of the place taken among those that began at `since` (`Reservation.since`)
// finds that place gone: it lapsed (and was counted as a failure), or the key was reset and its
// places since are others'. Without `since` (a caller of an earlier release), the place is taken
// to be there.
const settledAlready = (live: LockoutRecord, since: number | undefined): boolean =>
  since !== undefined && (live.p === 0 || live.g !== since)

/**
 * One attempt on `keys`, given their stored records (`current[i]` for `keys[i]`): refused while any
 * key is locked (`Locked`), or while a key's failures and attempts in flight already make the limit
 * (`Busy`: one of those may still fail and lock, so this one may not be checked yet); else a place
 * is held on every key. Nothing is counted yet: a success in flight is no failure, and concurrent
 * successes must not lock anyone out (django-axes counts a failure once it happened). Answers each
 * key's new record to store (`undefined`: leave it as it is): a refusal stores the records whose
 * places lapsed, as they stand, and its `Locked` answers the locks that lapse set
 * ({@link lapsedLocks}), found by this operation alone. The memory and SQL stores decide alike
 * with it; the Redis store's Lua script does the same.
 *
 * @internal
 */
export const decideAttempt = (
  keys: ReadonlyArray<string>,
  current: ReadonlyArray<LockoutRecord | undefined>,
  now: number,
  policy: Policy
): { readonly reservation: Reservation; readonly records: ReadonlyArray<LockoutRecord | undefined> } => {
  const live = current.map((record) => (record === undefined ? undefined : liveView(record, now, policy)))
  const refusal = refusalOf(live, now, policy)
  if (refusal !== undefined) {
    // Written back, the lapse is found once: left unwritten, each refusal found it (and its lock)
    // again. (`liveView` answers the record itself when nothing lapsed.)
    const records = live.map((record, i) => (record === current[i] ? undefined : record))
    // A lock in force is a `Locked` refusal: a `Busy` one finds none.
    if (refusal._tag !== "Locked") return { reservation: refusal, records }
    const lapsed = lapsedLocks(keys, current, now, policy)
    return { reservation: lapsed.length > 0 ? { ...refusal, lapsed } : refusal, records }
  }
  const records = live.map((old = empty): LockoutRecord => {
    // The first place in flight names those that join it (`g`).
    const record = { ...old, p: old.p + 1, q: now + pendingHold, g: old.p === 0 ? now : old.g }
    // Kept at least until the places' lapse is forgotten: a record that expired with its places
    // dropped the failures their lapse counts.
    record.expiresAt = Math.max(old.expiresAt, liveView(record, record.q, policy).expiresAt)
    return record
  })
  return { reservation: { _tag: "Allowed", since: records.map((record) => record.g) }, records }
}

// The refusal `decideAttempt` answers for these live records, if any: a lock on any key, or a key
// whose failures and places already make the limit.
const refusalOf = (
  current: ReadonlyArray<LockoutRecord | undefined>,
  now: number,
  policy: Policy
): Reservation | undefined => {
  let retryAfter = 0
  let busy = false
  for (const record of current) {
    if (record === undefined) continue
    if (record.u > now) retryAfter = Math.max(retryAfter, record.u - now)
    else if (failuresOf(record, now, policy) + record.p >= policy.limit) busy = true
  }
  if (retryAfter > 0) return { _tag: "Locked", retryAfter }
  return busy ? { _tag: "Busy" } : undefined
}

/**
 * Settles one attempt in flight as a failure: its place is given back and one failure counted; a
 * key whose failures reach the limit is locked. A key locked meanwhile by other failures keeps that
 * lock, this failure counted under it. Answers the record to store and whether this failure locked
 * it. A place that lapsed meanwhile was counted then, and is not again (nor is another attempt's
 * place given back for it); a key with no record (reset, forgotten) counts the failure.
 *
 * @internal
 */
export const countFailure = (old: LockoutRecord | undefined, now: number, policy: Policy, since?: number): {
  readonly record: LockoutRecord
  readonly locked: boolean
} => {
  if (old === undefined) return addFailures(empty, 1, now, policy, 0)
  const live = liveView(old, now, policy)
  if (settledAlready(live, since)) return { record: live, locked: false }
  return addFailures(live, 1, now, policy, Math.max(live.p - 1, 0))
}

/**
 * Settles one attempt in flight that was no failure: its place is given back, and nothing else
 * changes (a place that lapsed meanwhile is gone already: another attempt's is not given back for
 * it). Answers the record to store, or `undefined` when it is left with nothing to remember (no
 * failure, no lock so far, nothing in flight): the store drops it, as counting from no record and
 * from this one are alike; without this each login left a record behind for a day. @internal
 */
export const refundAttempt = (old: LockoutRecord, now: number, policy: Policy, since?: number): LockoutRecord | undefined => {
  const live = liveView(old, now, policy)
  const record = settledAlready(live, since) ? live : { ...live, p: Math.max(live.p - 1, 0) }
  return record.f === 0 && record.n === 0 && record.p === 0 ? undefined : record
}

/** @internal */
export const toEntry = (key: string, r: { f: number; t: number; u: number; n: number }, now: number): Entry => ({
  key,
  failures: r.f,
  lastFailure: new Date(r.t),
  lockedUntil: r.u > now ? new Date(r.u) : undefined,
  lockouts: r.n
})
