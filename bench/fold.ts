/**
 * The fold's cost: one authentication through a chain of three backends (NoMatch, NoMatch, then
 * the user from a bearer token in a Map), as calls per second, one process per case (see
 * `bench/harness.ts`), rounds rotated, ratios per round.
 *
 *   npx tsx bench/fold.ts                       # ROUNDS=7 SAMPLES=10 SAMPLE_MS=100 WARMUP_MS=1000
 *   FOLD_AGAINST=/path/to/other/checkout/src/index.ts npx tsx bench/fold.ts
 *
 * `FOLD_AGAINST` adds the default and the fold-alone cases of another build of the library (a
 * worktree of an older commit, say) to the same sitting: an A/B in which both builds share the
 * rounds, so their ratio is not the drift between two sittings.
 *
 * Cases, every Effect case driven the same way (n calls in one fiber, like the anchors' `iii-*`):
 * - `plain async chain`: three async functions awaited in turn (the baseline, 1.0);
 * - `hand-written Effect fold`: the shared anchors' yardstick, a preallocated `Data.TaggedError`
 *   per NoMatch and a `catchTag` chain; and the same with the token wrapped in a `Redacted` once
 *   per call, as effect-auth keeps every secret (what that one wrapping costs any implementation);
 * - `effect-auth`: `AuthService.authenticate` with the backends written as the docs teach
 *   (`AuthError.failures`, `Credentials.Token`), default configuration, under Effect's built-in
 *   tracer; then with a recording tracer installed (one span per call with an event per attempt),
 *   with `tracing: "attempts"` under that tracer (a child span per backend), with
 *   `tracing: "off"`, and with backends that build their failure per call
 *   (`Effect.fail(new AuthError.NoMatch(...))`).
 */
import { Data, Effect, Layer, Option, Redacted, Tracer } from "effect"
import * as Library from "../src/index.js"
import { bench, type Case, printRows } from "./harness.js"

interface PlainUser {
  readonly id: string
  readonly username: string
  readonly isActive: boolean
  readonly isSuperuser: boolean
}
const users = new Map<string, PlainUser>([["tok-1", { id: "1", username: "alice", isActive: true, isSuperuser: false }]])
const bearer = (header: unknown) =>
  typeof header === "string" && header.startsWith("Bearer ") ? header.slice(7) : undefined
// A fresh request per call, as every case gets one.
const request = () => ({ headers: { authorization: "Bearer tok-1" } })
let sink = 0
const check = (user: { readonly id: string } | null | undefined) => {
  if (user === undefined || user === null) throw new Error("authentication failed")
  sink += user.id.length
}

// --- plain async chain -------------------------------------------------------------------------
type AsyncBackend = (r: ReturnType<typeof request>) => Promise<PlainUser | null>
const asyncChain: ReadonlyArray<AsyncBackend> = [
  async () => null,
  async () => null,
  async (r) => users.get(bearer(r.headers.authorization) ?? "") ?? null
]
const authenticateAsync = async (r: ReturnType<typeof request>) => {
  for (const backend of asyncChain) {
    const user = await backend(r)
    if (user !== null) return user
  }
  return null
}

// --- the anchors' hand-written Effect fold -----------------------------------------------------
class NoMatch extends Data.TaggedError("NoMatch") {}
const noMatch = new NoMatch()
type EffectBackend = (r: ReturnType<typeof request>) => Effect.Effect<PlainUser, NoMatch>
const effectChain: ReadonlyArray<EffectBackend> = [
  () => Effect.fail(noMatch),
  () => Effect.fail(noMatch),
  (r) => {
    const user = users.get(bearer(r.headers.authorization) ?? "")
    return user === undefined ? Effect.fail(noMatch) : Effect.succeed(user)
  }
]
const authenticateHandWritten = (r: ReturnType<typeof request>) =>
  effectChain.slice(1).reduce((acc, backend) => Effect.catchTag(acc, "NoMatch", () => backend(r)), effectChain[0]!(r))
// The same fold keeping the secret as effect-auth must: wrapped in a `Redacted` once per call.
const redactedChain: ReadonlyArray<(token: Redacted.Redacted<string>) => Effect.Effect<PlainUser, NoMatch>> = [
  () => Effect.fail(noMatch),
  () => Effect.fail(noMatch),
  (token) => {
    const user = users.get(Redacted.value(token))
    return user === undefined ? Effect.fail(noMatch) : Effect.succeed(user)
  }
]
const authenticateHandWrittenRedacted = (r: ReturnType<typeof request>) => {
  const token = Redacted.make(bearer(r.headers.authorization) ?? "")
  return redactedChain.slice(1).reduce(
    (acc, backend) => Effect.catchTag(acc, "NoMatch", () => backend(token)),
    redactedChain[0]!(token)
  )
}

// --- effect-auth -------------------------------------------------------------------------------
const makeService = (lib: typeof Library, options: Library.AuthService.Options, prebuilt = true) => {
  const { AuthBackend, AuthError, AuthEvents, AuthService, Credentials } = lib
  const make = (id: string, answers: boolean) => {
    const fail = AuthError.failures(id)
    return AuthBackend.make({
      id,
      credentials: Credentials.Token,
      authenticate: ({ token }) => {
        const user = answers ? users.get(Redacted.value(token)) : undefined
        if (user !== undefined) return Effect.succeed(user)
        return prebuilt
          ? fail.noMatch("invalid-credentials")
          : Effect.fail(new AuthError.NoMatch({ backend: id, reason: "invalid-credentials" }))
      },
      getUser: () => Effect.succeed(Option.none())
    })
  }
  const backends = [make("a", false), make("b", false), make("tokens", true)]
  return Effect.runSync(AuthService.make(backends, options).pipe(Effect.provide(AuthEvents.layer)))
}
const service = (options: Library.AuthService.Options, prebuilt = true) => makeService(Library, options, prebuilt)
const against = process.env.FOLD_AGAINST

// A tracer that records: it keeps a count of spans and events (an exporter would batch them).
let recorded = 0
const recording = Tracer.make({
  span: (name, parent, context, links, startTime, kind) => ({
    _tag: "Span",
    name,
    spanId: `${recorded}`,
    traceId: "t",
    parent,
    context,
    status: { _tag: "Started", startTime },
    attributes: new Map(),
    links,
    sampled: true,
    kind,
    end() {
      recorded++
    },
    attribute() {},
    event() {
      recorded++
    },
    addLinks() {}
  }),
  context: (f) => f()
})

const inOneFiber = <A extends { readonly user: { readonly id: string } } | PlainUser>(
  call: () => Effect.Effect<A, unknown>,
  wrap: <X, E>(effect: Effect.Effect<X, E>) => Effect.Effect<X, E> = (effect) => effect
): Case =>
(n) =>
  Effect.runPromise(wrap(Effect.gen(function*() {
    for (let i = 0; i < n; i++) {
      const result = yield* call()
      check("user" in result ? result.user : result)
    }
  })))

const fromToken = () => ({ token: bearer(request().headers.authorization)! })
const redactedToken = Redacted.make("tok-1")
const lazy = <A>(make: () => A) => {
  let value: A | undefined
  return () => (value ??= make())
}
const byDefault = lazy(() => service({}))
const attempts = lazy(() => service({ tracing: "attempts" }))
const off = lazy(() => service({ tracing: "off" }))
const perCall = lazy(() => service({}, false))
const withRecorder = <X, E>(effect: Effect.Effect<X, E>) => Effect.withTracer(effect, recording)

const cases: Record<string, Case> = {
  "plain async chain": async (n) => {
    for (let i = 0; i < n; i++) check(await authenticateAsync(request()))
  },
  "hand-written Effect fold": inOneFiber(() => authenticateHandWritten(request())),
  "hand-written Effect fold, the token wrapped in a Redacted per call": inOneFiber(() =>
    authenticateHandWrittenRedacted(request())
  ),
  "effect-auth (default, built-in tracer)": inOneFiber(() => byDefault().authenticate(fromToken())),
  "effect-auth, recording tracer (1 span + 3 events per call)": inOneFiber(
    () => byDefault().authenticate(fromToken()),
    withRecorder
  ),
  "effect-auth, recording tracer, tracing \"attempts\" (4 spans per call)": inOneFiber(
    () => attempts().authenticate(fromToken()),
    withRecorder
  ),
  "effect-auth, tracing \"off\"": inOneFiber(() => off().authenticate(fromToken())),
  // The token handed over already Redacted and reused: what is left is the fold itself, without
  // the one Redacted a call must make of a plain secret (Effect's Redacted registers each value in
  // a WeakMap: about 0.6 µs here, the largest single cost of a call).
  "effect-auth, the fold alone (token already Redacted)": inOneFiber(() => byDefault().authenticate({ token: redactedToken })),
  "effect-auth, failures built per call": inOneFiber(() => perCall().authenticate(fromToken()))
}
if (against !== undefined) {
  // Loaded in every child, so that both builds' modules are in every case's heap.
  const otherLibrary = (await import(against)) as typeof Library
  const other = lazy(() => makeService(otherLibrary, {}))
  cases[`effect-auth (default), ${against}`] = inOneFiber(() => other().authenticate(fromToken()))
  cases[`effect-auth, the fold alone, ${against}`] = inOneFiber(() => other().authenticate({ token: redactedToken }))
}

const handWrittenRedacted = "hand-written Effect fold, the token wrapped in a Redacted per call"
const againstDefault = `effect-auth (default), ${against}`
const references = ["plain async chain", "hand-written Effect fold", handWrittenRedacted, ...(against === undefined ? [] : [againstDefault])]
const rows = await bench(new URL(import.meta.url).pathname, cases, references)
if (rows !== undefined) {
  printRows("AuthService.authenticate, 3 backends (NoMatch, NoMatch, success), one process per case", rows, references)
  const ours = rows.find((row) => row.name.startsWith("effect-auth (default"))!
  const foldAlone = rows.find((row) => row.name.startsWith("effect-auth, the fold alone"))!
  console.log(`\nbar: effect-auth (default) ÷ plain async chain = ${ours.ratios["plain async chain"]!.toFixed(3)} (≥ 0.33); ` +
    `÷ hand-written Effect fold = ${ours.ratios["hand-written Effect fold"]!.toFixed(3)} (aim ≥ 1.0); ` +
    `÷ the hand-written fold that wraps the token in a Redacted as effect-auth must = ${ours.ratios[handWrittenRedacted]!.toFixed(3)}`)
  console.log(`the token already Redacted (as the HTTP sources hand it over): ÷ plain async chain = ` +
    `${foldAlone.ratios["plain async chain"]!.toFixed(3)}; ÷ hand-written Effect fold = ${foldAlone.ratios["hand-written Effect fold"]!.toFixed(3)}`)
  const recorded = rows.find((row) => row.name.startsWith("effect-auth, recording tracer (1"))!
  if (against !== undefined) {
    const theirs = rows.find((row) => row.name === againstDefault)!
    const theirsAlone = rows.find((row) => row.name === `effect-auth, the fold alone, ${against}`)!
    console.log(`A/B: this build ÷ ${against} = ${ours.ratios[againstDefault]!.toFixed(3)} (default); that build ÷ plain async chain = ` +
      `${theirs.ratios["plain async chain"]!.toFixed(3)} (default), ${theirsAlone.ratios["plain async chain"]!.toFixed(3)} (the fold alone)`)
  }
  console.log(`a recording tracer adds ${(1e6 / recorded.median - 1e6 / ours.median).toFixed(2)} µs per call (one span, three events)`)
}
if (sink === -1) console.log("")
