/**
 * The fold's overhead: authenticate through a 3-backend chain (NoMatch, NoMatch, success) in one
 * long-running fiber, against a plain `async` function chain doing the same work, in one run.
 *
 *   npx tsx bench/fold.ts [--seconds 2] [--rounds 5]
 *
 * The baseline does what the fold does, by hand: checks the credentials' shape for each backend,
 * asks it, and on success returns the user and the backend's name. Rounds alternate the two so
 * that warm-up and machine noise fall on both.
 */
import { Effect, Layer, Option, Redacted } from "effect"
import { AuthBackend, AuthError, AuthEvents, AuthService, Credentials } from "../src/index.js"
import { parseArgs, printTable } from "./utils.js"

const { rounds, seconds } = parseArgs({ seconds: 2, rounds: 5 })

const alice = { id: "1", username: "alice", isActive: true, isSuperuser: false }
const credentials = { username: "alice", password: "wonderland" }

// --- effect-auth: three backends through AuthService (spans on, default tracer) ---
const backend = (id: string, answer: "no-match" | "user") =>
  AuthBackend.make({
    id,
    credentials: Credentials.UsernamePassword,
    authenticate: ({ password, username }) =>
      answer === "user" && username === "alice" && Redacted.value(password) === "wonderland"
        ? Effect.succeed(alice)
        : Effect.fail(new AuthError.NoMatch({ backend: id, reason: "unknown-user" })),
    getUser: () => Effect.succeed(Option.none())
  })

const chain = [backend("a", "no-match"), backend("b", "no-match"), backend("c", "user")]
const serviceWith = (tracing: AuthService.Tracing) =>
  Effect.provide(AuthService.AuthService, AuthService.layer(chain, { tracing }).pipe(Layer.provide(AuthEvents.layer)))

// --- baseline: a hand-written async chain ---
interface PlainUser {
  readonly id: string
  readonly username: string
  readonly isActive: boolean
  readonly isSuperuser: boolean
}
type PlainBackend = (c: { username: string; password: string }) => Promise<PlainUser | null>
const plainBackend = (answer: "no-match" | "user"): PlainBackend => async ({ password, username }) =>
  answer === "user" && username === "alice" && password === "wonderland" ? alice : null
const isCredentials = (raw: unknown): raw is { username: string; password: string } =>
  typeof raw === "object" && raw !== null && typeof (raw as any).username === "string" &&
  typeof (raw as any).password === "string" && (raw as any).username.length <= 150 &&
  (raw as any).password.length <= 4096
const plainChain: ReadonlyArray<readonly [string, PlainBackend]> = [
  ["a", plainBackend("no-match")],
  ["b", plainBackend("no-match")],
  ["c", plainBackend("user")]
]
const plainAuthenticate = async (raw: unknown) => {
  for (const [name, authenticate] of plainChain) {
    if (!isCredentials(raw)) continue
    const user = await authenticate(raw)
    if (user !== null) return { user, backend: name }
  }
  throw new Error("authentication failed")
}

// --- second baseline: the same chain as a hand-written Effect loop (no decode, no spans, no events) ---
type EffectBackend = (c: { username: string; password: string }) => Effect.Effect<PlainUser, AuthError.NoMatch>
const effectBackend = (id: string, answer: "no-match" | "user"): EffectBackend => ({ password, username }) =>
  answer === "user" && username === "alice" && password === "wonderland"
    ? Effect.succeed(alice)
    : Effect.fail(new AuthError.NoMatch({ backend: id, reason: "unknown-user" }))
const effectChain: ReadonlyArray<readonly [string, EffectBackend]> = [
  ["a", effectBackend("a", "no-match")],
  ["b", effectBackend("b", "no-match")],
  ["c", effectBackend("c", "user")]
]
const handWritten = (raw: unknown) => {
  const step = (i: number): Effect.Effect<{ user: PlainUser; backend: string }, string> => {
    if (i === effectChain.length) return Effect.fail("authentication failed")
    const [name, authenticate] = effectChain[i]!
    if (!isCredentials(raw)) return step(i + 1)
    return Effect.matchEffect(authenticate(raw), {
      onFailure: () => step(i + 1),
      onSuccess: (user) => Effect.succeed({ user, backend: name })
    })
  }
  return step(0)
}

const runPlain = async (ms: number) => {
  const end = performance.now() + ms
  let calls = 0
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) await plainAuthenticate(credentials)
    calls += 1000
  }
  return calls / (ms / 1000)
}

const runLoop = <A, E>(once: Effect.Effect<A, E>, ms: number) =>
  Effect.gen(function*() {
    const end = performance.now() + ms
    let calls = 0
    while (performance.now() < end) {
      for (let i = 0; i < 1000; i++) yield* once
      calls += 1000
    }
    return calls / (ms / 1000)
  })

const runFold = (auth: AuthService.Service, ms: number) => runLoop(auth.authenticate(credentials), ms)
const runHandWritten = (ms: number) => runLoop(Effect.suspend(() => handWritten(credentials)), ms)

const program = Effect.gen(function*() {
  const attempts = yield* serviceWith("attempts")
  const call = yield* serviceWith("call")
  const off = yield* serviceWith("off")
  const results: Array<{ plain: number; fold: number; hand: number; call: number; off: number }> = []
  // warm-up
  yield* Effect.promise(() => runPlain(300))
  yield* runFold(attempts, 300)
  yield* runFold(call, 300)
  yield* runFold(off, 300)
  yield* runHandWritten(300)
  for (let r = 0; r < rounds; r++) {
    const plain = yield* Effect.promise(() => runPlain(seconds * 1000))
    const fold = yield* runFold(attempts, seconds * 1000)
    const hand = yield* runHandWritten(seconds * 1000)
    const callOnly = yield* runFold(call, seconds * 1000)
    const noSpans = yield* runFold(off, seconds * 1000)
    results.push({ plain, fold, hand, call: callOnly, off: noSpans })
  }
  const median = (xs: Array<number>) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const plain = median(results.map((r) => r.plain))
  const fold = median(results.map((r) => r.fold))
  const hand = median(results.map((r) => r.hand))
  const callOnly = median(results.map((r) => r.call))
  const noSpans = median(results.map((r) => r.off))
  printTable("AuthService fold, 3 backends (NoMatch, NoMatch, success), one fiber", [
    ["implementation", "calls/s (median of rounds)", "µs/call", "ratio to plain async"],
    ["plain async chain", plain.toFixed(0), (1e6 / plain).toFixed(2), "1.000"],
    ["hand-written Effect loop (no decode/spans)", hand.toFixed(0), (1e6 / hand).toFixed(2), (hand / plain).toFixed(3)],
    ["effect-auth, tracing \"attempts\" (default: 4 spans)", fold.toFixed(0), (1e6 / fold).toFixed(2), (fold / plain).toFixed(3)],
    ["effect-auth, tracing \"call\" (1 span)", callOnly.toFixed(0), (1e6 / callOnly).toFixed(2), (callOnly / plain).toFixed(3)],
    ["effect-auth, tracing \"off\"", noSpans.toFixed(0), (1e6 / noSpans).toFixed(2), (noSpans / plain).toFixed(3)]
  ])
  console.log(`effect-auth (attempts) / hand-written Effect loop: ${(fold / hand).toFixed(3)}`)
  console.log(`effect-auth (off) / hand-written Effect loop: ${(noSpans / hand).toFixed(3)}`)
  console.log(`goal: effect-auth (spans on) / plain async chain >= 0.33`)
  return fold / plain
})

Effect.runPromise(program).then((ratio) => {
  if (process.env.BENCH_STRICT === "1" && ratio < 0.33) process.exitCode = 1
})
