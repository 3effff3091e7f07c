/**
 * Load shedding: LOGINS concurrent wrong-password checks against a `PasswordHasher` bounded at
 * CONCURRENCY running + MAX_WAITING waiting. Reports how fast the excess are refused
 * (`HasherBusy`, which HTTP answers 503), how long the admitted ones take, and the latency of a
 * cheap request (a `setImmediate` round trip through the event loop) meanwhile.
 *
 *   npx tsx bench/hasher-queue.ts
 *   LOGINS=200 CONCURRENCY=2 MAX_WAITING=8 ITERATIONS=1200000 npx tsx bench/hasher-queue.ts
 *
 * Goals (issue 10): the excess refused within 50 ms; the cheap request's median under 20 ms.
 */
import { Effect, Either, Redacted } from "effect"
import * as PasswordHasher from "../src/PasswordHasher.js"

const LOGINS = Number(process.env.LOGINS ?? 200)
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 2)
const MAX_WAITING = Number(process.env.MAX_WAITING ?? 4 * CONCURRENCY)
const ITERATIONS = Number(process.env.ITERATIONS ?? PasswordHasher.defaults.pbkdf2.iterations)

const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}
const fmt = (ms: number) => `${ms.toFixed(1)} ms`

const hasher = await Effect.runPromise(
  PasswordHasher.make({ pbkdf2: { iterations: ITERATIONS }, concurrency: CONCURRENCY, maxWaiting: MAX_WAITING })
)
const stored = await Effect.runPromise(hasher.hash(Redacted.make("the real password")))

// The cheap request: a turn of the event loop, sampled every 5 ms while the flood runs.
const cheap: Array<number> = []
let flooding = true
const probe = (async () => {
  while (flooding) {
    const started = performance.now()
    await new Promise((resolve) => setImmediate(resolve))
    cheap.push(performance.now() - started)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
})()

const started = performance.now()
const outcomes = await Promise.all(
  Array.from({ length: LOGINS }, (_, i) =>
    Effect.runPromise(Effect.either(hasher.verify(Redacted.make(`wrong-${i}`), stored))).then((result) => ({
      busy: Either.isLeft(result) && result.left._tag === "HasherBusy",
      ms: performance.now() - started
    })))
)
flooding = false
await probe

const refused = outcomes.filter((o) => o.busy).map((o) => o.ms)
const admitted = outcomes.filter((o) => !o.busy).map((o) => o.ms)
console.log(`${LOGINS} concurrent logins, PBKDF2 ${ITERATIONS} iterations, concurrency ${CONCURRENCY}, maxWaiting ${MAX_WAITING}`)
console.log(`refused (503): ${refused.length}, p50 ${fmt(percentile(refused, 50))}, max ${fmt(Math.max(...refused, 0))}  (goal: max < 50 ms)`)
console.log(`admitted: ${admitted.length}, p50 ${fmt(percentile(admitted, 50))}, max ${fmt(Math.max(...admitted, 0))}`)
console.log(`cheap request meanwhile: n ${cheap.length}, p50 ${fmt(percentile(cheap, 50))}, p99 ${fmt(percentile(cheap, 99))}  (goal: p50 < 20 ms)`)
