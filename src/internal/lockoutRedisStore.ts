// The lockout's Redis store (`Lockout.redisStore`): each operation one Lua script, so that every
// instance sharing the Redis judges a key in one atomic step, with the record rules of
// internal/lockoutRecord.ts written again in Lua.
import * as Effect from "effect/Effect"
import type {
  Entry,
  Failure,
  LapsedLock,
  LockoutStoreError,
  Policy,
  RedisClient,
  Reservation,
  Settlement,
  Store
} from "../Lockout.js"
import { fieldOf } from "./fieldOf.js"
import { pendingHold, toEntry } from "./lockoutRecord.js"

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

// The `keyPrefix` an ioredis client was built with ("" for none), read without trusting the object.
const clientKeyPrefix = (client: RedisClient): string => {
  const keyPrefix = fieldOf(fieldOf(client, "options"), "keyPrefix")
  return typeof keyPrefix === "string" ? keyPrefix : ""
}

export const make = (
  client: RedisClient,
  options: { readonly keyPrefix?: string | undefined },
  storeError: (operation: string, message: string) => LockoutStoreError
): Store => {
  const prefix = options.keyPrefix ?? "effect-auth:lockout:"
  // ioredis prefixes the KEYS of a script with the client's own `keyPrefix` (an app's shared
  // client: `new Redis(url, { keyPrefix: "app:" })`), not a SCAN pattern the script is given, nor
  // the keys SCAN answers: `list` and `reset` found nothing there, and a locked user stayed locked.
  const clientPrefix = clientKeyPrefix(client)
  const call = (operation: string, f: () => Promise<unknown>) =>
    Effect.tryPromise({
      try: f,
      // ioredis attaches the command and its arguments to its errors: keep only the message.
      catch: (cause) =>
        storeError(operation, cause instanceof Error ? cause.message : String(cause))
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
        const reply = yield* call(
          operation,
          () => client.eval(listScript, 0, cursor, globEscape(clientPrefix) + pattern, now, ...rules(policy))
        )
        const items = Array.isArray(reply) ? reply.map(String) : ["0"]
        cursor = items[0] ?? "0"
        for (let i = 1; i + 4 < items.length; i += 5) {
          const n = (j: number) => Number(items[i + j])
          entries.push(toEntry(items[i]!.slice(clientPrefix.length + prefix.length), { f: n(1), t: n(2), u: n(3), n: n(4) }, now))
        }
      } while (cursor !== "0")
      return entries
    })
  }
}

