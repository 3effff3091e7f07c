/**
 * PBKDF2-SHA256 at the default 1,200,000 iterations: `PasswordHasher.hash` against Node's
 * `crypto.pbkdf2` called directly and Python's `hashlib.pbkdf2_hmac`, in one run, rounds
 * alternated; then the event-loop delay while eight hashes run at once.
 *
 *   npx tsx bench/password-hasher.ts            # 5 rounds
 *   ROUNDS=9 npx tsx bench/password-hasher.ts
 *
 * Goals: `hash` within 1.05× of raw `crypto.pbkdf2`; event-loop p99 under 10 ms.
 */
import { execFile } from "node:child_process"
import * as crypto from "node:crypto"
import * as os from "node:os"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Effect, Redacted } from "effect"
import * as PasswordHasher from "../src/PasswordHasher.js"

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const ITERATIONS = PasswordHasher.defaults.pbkdf2.iterations
const PASSWORD = "correct horse battery staple"

const hasher = await Effect.runPromise(PasswordHasher.make())

const salt = () => crypto.randomBytes(16).toString("base64url").slice(0, 22)

const ours = async () => {
  const started = performance.now()
  await Effect.runPromise(hasher.hash(Redacted.make(PASSWORD)))
  return performance.now() - started
}

const raw = async () => {
  const started = performance.now()
  await new Promise<Buffer>((resolve, reject) =>
    crypto.pbkdf2(PASSWORD, salt(), ITERATIONS, 32, "sha256", (e, key) => (e === null ? resolve(key) : reject(e)))
  )
  return performance.now() - started
}

// Timed inside the interpreter, so process start-up is not counted against Python.
const PYTHON = [
  "import hashlib, sys, time",
  "t = time.perf_counter()",
  "hashlib.pbkdf2_hmac('sha256', sys.argv[1].encode(), sys.argv[2].encode(), int(sys.argv[3]))",
  "print((time.perf_counter() - t) * 1000)"
].join("\n")

const python = () =>
  new Promise<number>((resolve, reject) =>
    execFile("python3", ["-c", PYTHON, PASSWORD, salt(), String(ITERATIONS)], (e, stdout) =>
      e === null ? resolve(Number(stdout.trim())) : reject(e)
    )
  )

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

const methods = { "PasswordHasher.hash": ours, "crypto.pbkdf2": raw, "python hashlib.pbkdf2_hmac": python } as const
type Method = keyof typeof methods
const names = Object.keys(methods) as Array<Method>
const times: Record<Method, Array<number>> = { "PasswordHasher.hash": [], "crypto.pbkdf2": [], "python hashlib.pbkdf2_hmac": [] }

console.log(
  `node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"}, availableParallelism ${os.availableParallelism()}, ` +
    `UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? "4 (default)"}, ${ROUNDS} rounds, ${ITERATIONS} iterations`
)

await raw() // warm-up: OpenSSL and the thread pool
for (let round = 0; round < ROUNDS; round++) {
  // Rotate the order so that no method always runs first (or after Python's process start).
  for (let i = 0; i < names.length; i++) {
    const name = names[(round + i) % names.length]!
    times[name].push(await methods[name]())
  }
}

const base = median(times["crypto.pbkdf2"])
const paired = (name: Method) => median(times[name].map((t, i) => t / times["crypto.pbkdf2"][i]!))
console.log("\nOne hash at a time (ms)")
console.table(Object.fromEntries(names.map((name) => [name, {
  median: Number(median(times[name]).toFixed(1)),
  min: Number(Math.min(...times[name]).toFixed(1)),
  max: Number(Math.max(...times[name]).toFixed(1)),
  "÷ crypto.pbkdf2 (medians)": Number((median(times[name]) / base).toFixed(3)),
  "÷ crypto.pbkdf2 (per round, median)": Number(paired(name).toFixed(3))
}])))

const delayWhile = async (label: string, work: () => Promise<unknown>) => {
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  const started = performance.now()
  await work()
  const wall = performance.now() - started
  histogram.disable()
  return [label, {
    "wall (ms)": Number(wall.toFixed(0)),
    "loop delay p50 (ms)": Number((histogram.percentile(50) / 1e6).toFixed(2)),
    "loop delay p99 (ms)": Number((histogram.percentile(99) / 1e6).toFixed(2)),
    "loop delay max (ms)": Number((histogram.max / 1e6).toFixed(2))
  }] as const
}

const eight = <A>(f: () => Promise<A>) => Promise.all(Array.from({ length: 8 }, f))
const rows = [
  await delayWhile("8 × PasswordHasher.hash at once", () =>
    Effect.runPromise(Effect.all(Array.from({ length: 8 }, () => hasher.hash(Redacted.make(PASSWORD))), {
      concurrency: "unbounded"
    }))),
  await delayWhile("8 × crypto.pbkdf2 at once", () => eight(raw)),
  await delayWhile("idle, 1 s", () => new Promise((resolve) => setTimeout(resolve, 1000)))
]
console.log(`\nEvent loop while eight hashes run (concurrency bound ${os.availableParallelism()})`)
console.table(Object.fromEntries(rows))

const ratio = paired("PasswordHasher.hash")
const p99 = rows[0]![1]["loop delay p99 (ms)"]
console.log(
  `\nhash ÷ crypto.pbkdf2 = ${ratio.toFixed(3)} (goal ≤ 1.05: ${ratio <= 1.05 ? "met" : "MISSED"}); ` +
    `event-loop p99 = ${p99} ms (goal < 10: ${p99 < 10 ? "met" : "MISSED"})`
)
