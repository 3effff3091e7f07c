// One lockout key's record and its transitions, shared by the memory and SQL stores (the Redis
// store runs the same rules in its Lua scripts), so that every store counts alike.
import type { Entry, Policy } from "../Lockout.js"

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
export const countFailure = (
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

/** Gives one counted failure back (in place), lifting the lock it set. @internal */
export const refundFailure = (record: LockoutRecord, now: number, policy: Policy): void => {
  record.f = Math.max(record.f - 1, 0)
  if (record.u > now && record.f < policy.limit) {
    record.u = 0
    record.n = Math.max(record.n - 1, 0)
  }
}

/** @internal */
export const toEntry = (key: string, r: { f: number; t: number; u: number; n: number }, now: number): Entry => ({
  key,
  failures: r.f,
  lastFailure: new Date(r.t),
  lockedUntil: r.u > now ? new Date(r.u) : undefined,
  lockouts: r.n
})
