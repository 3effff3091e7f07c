/**
 * The price of one counted login attempt: `Lockout`'s stores against `@effect/experimental`'s
 * `RateLimiter` (0.61.1, fixed window), in memory and on Redis (127.0.0.1:6379, or REDIS_URL).
 *
 *   npx tsx bench/lockout-vs-ratelimiter.ts     # ROUNDS=5, N=5000 sequential attempts per case
 *
 * Each case counts N attempts on one key, one after the other (a login counts once), rounds
 * rotated, median µs per attempt. The Lockout store's `attempt` also checks for a lock and for
 * attempts in flight, and holds a place (a failure is counted when it settles: `fail`, one more
 * operation, which this bench does not time); `consume` only counts. (RateLimiter lacks what a
 * lockout needs — refund, reset on success, listing, back-off — see docs/throttling.md; this is
 * its price.)
 */
import * as RateLimiter from "@effect/experimental/RateLimiter"
import * as RateLimiterRedis from "@effect/experimental/RateLimiter/Redis"
import { Effect, Layer, ManagedRuntime } from "effect"
import { Redis } from "ioredis"
import * as os from "node:os"
import * as Lockout from "../src/Lockout.js"

const rounds = Number(process.env.ROUNDS ?? 5)
const n = Number(process.env.N ?? 5000)
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const policy = { limit: 1_000_000_000, coolOff: 900_000, backOff: 1, maxCoolOff: 86_400_000, forgetAfter: 86_400_000 }
const prefix = `effect-auth-bench:${process.pid}:`

const timeIt = async (run: (i: number) => Promise<unknown>) => {
  const started = performance.now()
  for (let i = 0; i < n; i++) await run(i)
  return ((performance.now() - started) * 1000) / n
}

const redis = new Redis(redisUrl, { lazyConnect: true })
const lockoutMemory = Lockout.memoryStore()
const lockoutRedis = Lockout.redisStore(redis, { keyPrefix: `${prefix}lockout:` })

// The stores hold their Redis connection for the runtime's life.
const limiterOn = (store: Layer.Layer<RateLimiter.RateLimiterStore>) =>
  ManagedRuntime.make(RateLimiter.layer.pipe(Layer.provide(store))).runPromise(RateLimiter.RateLimiter)

const main = async () => {
  const limiterMemory = await limiterOn(RateLimiter.layerStoreMemory)
  const url = new URL(redisUrl)
  const limiterRedis = await limiterOn(
    RateLimiterRedis.layerStore({ host: url.hostname, port: Number(url.port || 6379), prefix: `${prefix}rl:` })
  )
  const consume = (limiter: RateLimiter.RateLimiter, key: string) =>
    Effect.runPromise(limiter.consume({ key, limit: 1_000_000, window: "1000 seconds", algorithm: "fixed-window", onExceeded: "fail" }))
  const cases: ReadonlyArray<readonly [string, (round: number) => Promise<number>]> = [
    ["Lockout memory store (attempt)", (r) => timeIt(() => Effect.runPromise(lockoutMemory.attempt([`k${r}`], Date.now(), policy)))],
    ["RateLimiter memory store (consume)", (r) => timeIt(() => consume(limiterMemory, `k${r}`))],
    ["Lockout Redis store (attempt, Lua)", (r) => timeIt(() => Effect.runPromise(lockoutRedis.attempt([`k${r}`], Date.now(), policy)))],
    ["RateLimiter Redis store (consume)", (r) => timeIt(() => consume(limiterRedis, `k${r}`))]
  ]
  const results = new Map<string, Array<number>>()
  for (let round = 0; round < rounds; round++) {
    const order = cases.map((_, i) => cases[(i + round) % cases.length]!)
    for (const [name, run] of order) {
      const us = await run(round)
      results.set(name, [...(results.get(name) ?? []), us])
    }
  }
  const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  console.log(`\nOne counted attempt, ${n} sequential per case, ${rounds} rounds, load ${os.loadavg()[0]!.toFixed(2)}`)
  console.log("| case | median µs per attempt | min..max |")
  console.log("|---|---|---|")
  for (const [name, xs] of results) {
    console.log(`| ${name} | ${median(xs).toFixed(1)} | ${Math.min(...xs).toFixed(1)}..${Math.max(...xs).toFixed(1)} |`)
  }
  await cleanUp()
  redis.disconnect()
  process.exit(0)
}
// The keys under this run's prefix go whatever happens.
const cleanUp = async () => {
  const keys = await redis.keys(`${prefix}*`)
  if (keys.length > 0) await redis.del(...keys)
}
main().catch(async (error) => {
  console.error(error)
  await cleanUp().catch(() => {})
  process.exit(1)
})
