// One lockout key's record and its transitions, shared by the memory and SQL stores (the Redis
// store runs the same rules in its Lua scripts), so that every store counts alike.
import type { Entry, Policy, Reservation } from "../Lockout.js"

/**
 * `f` failures counted, `t` the last failure, `u` locked until (0: not locked), `n` locks so far,
 * `expiresAt` when the record may be forgotten. Times are milliseconds.
 *
 * @internal
 */
export interface LockoutRecord {
  f: number
  t: number
  u: number
  n: number
  expiresAt: number
}

const lockFor = (policy: Policy, lockouts: number): number =>
  Math.floor(Math.min(policy.coolOff * Math.pow(policy.backOff, lockouts - 1), policy.maxCoolOff))

const expiryOf = (record: LockoutRecord, now: number, policy: Policy): number =>
  now + Math.max(record.u - now, policy.coolOff) + policy.forgetAfter

/** The record after one more failure at `now`; `locked` when this failure reached the limit. @internal */
const countFailure = (
  old: LockoutRecord | undefined,
  now: number,
  policy: Policy
): { readonly record: LockoutRecord; readonly locked: boolean } => {
  // A lock that ran out, or failures older than the cool-off, start a fresh count.
  const fresh = old === undefined || old.u > 0 || old.t + policy.coolOff <= now
  const record: LockoutRecord = { f: (fresh ? 0 : old.f) + 1, t: now, u: 0, n: old?.n ?? 0, expiresAt: 0 }
  const locked = record.f >= policy.limit
  if (locked) {
    record.n += 1
    record.u = now + lockFor(policy, record.n)
  }
  record.expiresAt = expiryOf(record, now, policy)
  return { record, locked }
}

/**
 * One attempt on `keys`, given their live records (`current[i]` for `keys[i]`): refused while any
 * key is locked (`records` empty), else counted on every key, with each key's new record to store.
 * The memory and SQL stores decide alike with it; the Redis store's Lua script does the same.
 *
 * @internal
 */
export const decideAttempt = (
  keys: ReadonlyArray<string>,
  current: ReadonlyArray<LockoutRecord | undefined>,
  now: number,
  policy: Policy
): { readonly reservation: Reservation; readonly records: ReadonlyArray<LockoutRecord> } => {
  let retryAfter = 0
  for (const record of current) {
    if (record !== undefined && record.u > now) retryAfter = Math.max(retryAfter, record.u - now)
  }
  if (retryAfter > 0) return { reservation: { _tag: "Locked", retryAfter }, records: [] }
  const locked: Array<string> = []
  let until = 0
  const records = keys.map((key, i) => {
    const counted = countFailure(current[i], now, policy)
    if (counted.locked) {
      locked.push(key)
      until = Math.max(until, counted.record.u)
    }
    return counted.record
  })
  return { reservation: { _tag: "Allowed", locked, until }, records }
}

/**
 * Gives one counted failure back (in place), lifting the lock it set. Answers whether the record
 * is left with nothing to remember (no failure, no lock so far): the store drops it, as counting
 * from no record and from this one are alike. Every success is refunded, so without this each
 * login left a record behind for a day. @internal
 */
export const refundFailure = (record: LockoutRecord, now: number, policy: Policy): boolean => {
  record.f = Math.max(record.f - 1, 0)
  if (record.u > now && record.f < policy.limit) {
    record.u = 0
    record.n = Math.max(record.n - 1, 0)
  }
  return record.f === 0 && record.n === 0
}

/** @internal */
export const toEntry = (key: string, r: { f: number; t: number; u: number; n: number }, now: number): Entry => ({
  key,
  failures: r.f,
  lastFailure: new Date(r.t),
  lockedUntil: r.u > now ? new Date(r.u) : undefined,
  lockouts: r.n
})
