// One lockout key's record and its transitions, shared by the memory and SQL stores (the Redis
// store runs the same rules in its Lua scripts), so that every store counts alike.
import type { Entry, Policy, Reservation } from "../Lockout.js"

/**
 * `f` failures counted, `t` the last failure, `u` locked until (0: not locked), `n` locks so far,
 * `p` attempts in flight (each holds a place until it settles), `q` until when those places are
 * held, `expiresAt` when the record may be forgotten. Times are milliseconds.
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
  expiresAt: number
}

/**
 * How long the places of attempts in flight are held when none settles: an instance that stopped
 * in the middle of an attempt (a crash, a deploy) never gives its place back, and the key would be
 * busy for ever. Each new place holds them all this long again. @internal
 */
export const pendingHold = 120_000

const empty: LockoutRecord = { f: 0, t: 0, u: 0, n: 0, p: 0, q: 0, expiresAt: 0 }

const lockFor = (policy: Policy, lockouts: number): number =>
  Math.floor(Math.min(policy.coolOff * Math.pow(policy.backOff, lockouts - 1), policy.maxCoolOff))

/** Attempts in flight that still hold a place. @internal */
export const pendingOf = (record: LockoutRecord, now: number): number => (record.q > now ? record.p : 0)

// The failures that still count toward a lock: a lock that ran out, or failures older than the
// cool-off, start a fresh count.
const failuresOf = (record: LockoutRecord, now: number, policy: Policy): number =>
  (record.u > 0 && record.u <= now) || record.t + policy.coolOff <= now ? 0 : record.f

const expiryOf = (record: LockoutRecord, now: number, policy: Policy): number =>
  Math.max(now + Math.max(record.u - now, policy.coolOff) + policy.forgetAfter, record.q)

/**
 * One attempt on `keys`, given their live records (`current[i]` for `keys[i]`): refused while any
 * key is locked (`Locked`), or while a key's failures and attempts in flight already make the limit
 * (`Busy`: one of those may still fail and lock, so this one may not be checked yet); else a place
 * is held on every key, with each key's new record to store. Nothing is counted yet: a success in
 * flight is no failure, and concurrent successes must not lock anyone out (django-axes counts a
 * failure once it happened). The memory and SQL stores decide alike with it; the Redis store's Lua
 * script does the same.
 *
 * @internal
 */
export const decideAttempt = (
  current: ReadonlyArray<LockoutRecord | undefined>,
  now: number,
  policy: Policy
): { readonly reservation: Reservation; readonly records: ReadonlyArray<LockoutRecord> } => {
  const refusal = refusalOf(current, now, policy)
  if (refusal !== undefined) return { reservation: refusal, records: [] }
  const records = current.map((old = empty): LockoutRecord => {
    const record = { ...old, p: pendingOf(old, now) + 1, q: now + pendingHold }
    record.expiresAt = Math.max(old.expiresAt, record.q)
    return record
  })
  return { reservation: { _tag: "Allowed" }, records }
}

// The refusal `decideAttempt` answers for these records, if any: a lock on any key, or a key whose
// failures and places already make the limit.
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
    else if (failuresOf(record, now, policy) + pendingOf(record, now) >= policy.limit) busy = true
  }
  if (retryAfter > 0) return { _tag: "Locked", retryAfter }
  return busy ? { _tag: "Busy" } : undefined
}

/**
 * Settles one attempt in flight as a failure (in place): its place is given back and one failure
 * counted; a key whose failures reach the limit is locked. A key locked meanwhile by other
 * failures keeps that lock, this failure counted under it. Answers whether this failure locked it.
 *
 * @internal
 */
export const countFailure = (old: LockoutRecord | undefined, now: number, policy: Policy): {
  readonly record: LockoutRecord
  readonly locked: boolean
} => {
  const base = old ?? empty
  const p = Math.max(pendingOf(base, now) - 1, 0)
  if (base.u > now) {
    const record = { ...base, f: base.f + 1, t: now, p }
    record.expiresAt = expiryOf(record, now, policy)
    return { record, locked: false }
  }
  const record: LockoutRecord = { f: failuresOf(base, now, policy) + 1, t: now, u: 0, n: base.n, p, q: base.q, expiresAt: 0 }
  const locked = record.f >= policy.limit
  if (locked) {
    record.n += 1
    record.u = now + lockFor(policy, record.n)
  }
  record.expiresAt = expiryOf(record, now, policy)
  return { record, locked }
}

/**
 * Settles one attempt in flight that was no failure (in place): its place is given back, and
 * nothing else changes. Answers whether the record is left with nothing to remember (no failure, no
 * lock so far, nothing in flight): the store drops it, as counting from no record and from this one
 * are alike; without this each login left a record behind for a day. @internal
 */
export const refundAttempt = (record: LockoutRecord, now: number): boolean => {
  record.p = Math.max(pendingOf(record, now) - 1, 0)
  return record.f === 0 && record.n === 0 && record.p === 0
}

/** @internal */
export const toEntry = (key: string, r: { f: number; t: number; u: number; n: number }, now: number): Entry => ({
  key,
  failures: r.f,
  lastFailure: new Date(r.t),
  lockedUntil: r.u > now ? new Date(r.u) : undefined,
  lockouts: r.n
})
