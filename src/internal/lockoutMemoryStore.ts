// The lockout's memory store (`Lockout.memoryStore`): records in a Map, each operation one
// synchronous step, the record rules of internal/lockoutRecord.ts.
import * as Effect from "effect/Effect"
import type { Entry, Failure, LapsedLock, Policy, Reservation, Settlement, Store } from "../Lockout.js"
import { queryMatches } from "./lockoutKeys.js"
import {
  countFailure,
  decideAttempt,
  lapsedLocks,
  liveView,
  type LockoutRecord,
  refundAttempt,
  toEntry
} from "./lockoutRecord.js"

export const make = (options: { readonly maxEntries?: number | undefined } = {}): Store => {
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

