/**
 * Load shedding over HTTP: LOGINS concurrent wrong-password `POST /login` against a server whose
 * `PasswordHasher` runs CONCURRENCY hashes and lets MAX_WAITING more wait, at the default PBKDF2
 * iterations, while a logged-in user keeps calling `GET /me` with their session cookie (every 5 ms).
 * Reports how fast the excess logins get their 503 and the latency of `/me` meanwhile.
 *
 *   npx tsx bench/hasher-queue-http.ts
 *   LOGINS=200 CONCURRENCY=2 MAX_WAITING=8 npx tsx bench/hasher-queue-http.ts [--same-process]
 *
 * Goals (issue 10): the excess refused within 50 ms; `/me`'s median under 20 ms.
 * The server is the test suite's HttpApi app (test/utils/httpAuthServer.ts), in a child process
 * (the client's own work then stays out of its event loop), or in this one with `--same-process`.
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { once } from "node:events"
import * as os from "node:os"
import * as PasswordHasher from "../src/PasswordHasher.js"
import { serve } from "../test/utils/httpAuthServer.js"

const LOGINS = Number(process.env.LOGINS ?? 200)
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 2)
const MAX_WAITING = Number(process.env.MAX_WAITING ?? 4 * CONCURRENCY)

const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}
const fmt = (ms: number) => `${ms.toFixed(1)} ms`

const hasher = PasswordHasher.layer({ concurrency: CONCURRENCY, maxWaiting: MAX_WAITING })

// `--serve`: this file as the server, in a process of its own, printing its URL. Otherwise the
// load: against a child server (default), or `--same-process` against a server in this process.
const child = async (): Promise<string> => {
  const proc = spawn(process.execPath, ["--import", "tsx", new URL(import.meta.url).pathname, "--serve"], {
    stdio: ["ignore", "pipe", "inherit"],
    env: process.env
  })
  process.on("exit", () => proc.kill())
  const [chunk] = (await once(proc.stdout!, "data")) as [Buffer]
  return chunk.toString().trim()
}

if (process.argv.includes("--serve")) {
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const { url } = yield* serve({ hasher })
    console.log(url)
    return yield* Effect.never
  })))
}

const sameProcess = process.argv.includes("--same-process")
await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const url = sameProcess ? (yield* serve({ hasher })).url : yield* Effect.promise(child)
  const post = (body: unknown) =>
    fetch(`${url}/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  const login = yield* Effect.promise(() => post({ username: "alice", password: "wonderland" }))
  const session = login.headers.getSetCookie().find((c) => c.startsWith("sessionid="))!.split(";")[0]!
  const me = () => fetch(`${url}/me`, { headers: { cookie: session } })
  if ((yield* Effect.promise(me)).status !== 200) throw new Error("/me does not answer the logged-in user")

  // The floor: the same burst of logins that fail before any hash (no password: a 400), what 200
  // concurrent requests cost this client and server whatever the hasher does.
  const floor = yield* Effect.promise(() =>
    Promise.all(Array.from({ length: LOGINS }, async () => {
      const start = performance.now()
      const reply = await post({ username: "bob" })
      await reply.arrayBuffer()
      if (reply.status !== 400) throw new Error(`floor: ${reply.status}`)
      return performance.now() - start
    }))
  )

  const meTimes: Array<number> = []
  let done = false
  const poll = (async () => {
    while (!done) {
      const start = performance.now()
      const reply = await me()
      await reply.arrayBuffer()
      if (reply.status !== 200) throw new Error(`/me: ${reply.status}`)
      meTimes.push(performance.now() - start)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })()

  const outcomes = yield* Effect.promise(() =>
    Promise.all(Array.from({ length: LOGINS }, async () => {
      const start = performance.now()
      const reply = await post({ username: "bob", password: "wrong" })
      await reply.arrayBuffer()
      return { status: reply.status, ms: performance.now() - start, retryAfter: reply.headers.get("retry-after") }
    }))
  )
  done = true
  yield* Effect.promise(() => poll)

  const refused = outcomes.filter((o) => o.status === 503)
  const answered = outcomes.filter((o) => o.status === 401)
  const other = outcomes.filter((o) => o.status !== 503 && o.status !== 401)
  console.log(`server ${sameProcess ? "in this process" : "in a child process"}`)
  console.log(`${LOGINS} concurrent wrong-password POST /login, PBKDF2 ${PasswordHasher.defaults.pbkdf2.iterations} iterations, concurrency ${CONCURRENCY}, maxWaiting ${MAX_WAITING}`)
  console.log(`refused (503, Retry-After ${refused[0]?.retryAfter ?? "-"}): ${refused.length}, min ${fmt(Math.min(...refused.map((o) => o.ms)))}, p50 ${fmt(percentile(refused.map((o) => o.ms), 50))}, max ${fmt(Math.max(...refused.map((o) => o.ms)))}  (goal: max < 50 ms)`)
  console.log(`floor, the same burst refused before hashing (400): p50 ${fmt(percentile(floor, 50))}, max ${fmt(Math.max(...floor))}`)
  console.log(`hashed (401): ${answered.length}, p50 ${fmt(percentile(answered.map((o) => o.ms), 50))}, max ${fmt(Math.max(...answered.map((o) => o.ms)))}; other: ${other.length}`)
  console.log(`GET /me meanwhile: n ${meTimes.length}, p50 ${fmt(percentile(meTimes, 50))}, p99 ${fmt(percentile(meTimes, 99))}  (goal: p50 < 20 ms)`)
  console.log(`Node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`)
})))
