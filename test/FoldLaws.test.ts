import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, FastCheck, Option } from "effect"
import { AuthError, AuthService, Credentials, TestAuth, TestBackend } from "../src/index.js"

type Kind = "user" | "no-match" | "unsupported" | "denied" | "error" | "error-fallthrough"
const kinds: ReadonlyArray<Kind> = ["user", "no-match", "unsupported", "denied", "error", "error-fallthrough"]
const chainArb = FastCheck.array(FastCheck.constantFrom(...kinds), { minLength: 1, maxLength: 6 })
const credentials = { username: "alice", password: "pw" }

/** What a call ended in, without the typed detail. */
type Outcome =
  | { readonly _tag: "user"; readonly backend: string }
  | { readonly _tag: "denied"; readonly backend: string }
  | { readonly _tag: "error"; readonly backend: string }
  | { readonly _tag: "failed"; readonly attempts: ReadonlyArray<string> }
  | { readonly _tag: "unavailable"; readonly attempts: ReadonlyArray<string> }

const idOf = (i: number) => `b${i}`

const backendFor = (kind: Kind, i: number): TestBackend.TestBackend => {
  const id = idOf(i)
  switch (kind) {
    case "user":
      return TestBackend.succeed(id, TestBackend.user(`user-of-${id}`))
    case "no-match":
      return TestBackend.noMatch(id)
    case "unsupported":
      return TestBackend.make(id, { behaviour: TestBackend.Behaviour.succeed(TestBackend.user("never")), credentials: Credentials.Token })
    case "denied":
      return TestBackend.deny(id)
    case "error":
      return TestBackend.unavailable(id)
    case "error-fallthrough":
      return TestBackend.unavailable(id, "down", { onTransportError: "fallthrough" })
  }
}

/** The plain reference loop of DESIGN.md §3. */
const referenceLoop = (chain: ReadonlyArray<Kind>): Outcome => {
  const attempts: Array<string> = []
  let unavailable = false
  for (let i = 0; i < chain.length; i++) {
    const id = idOf(i)
    switch (chain[i]!) {
      case "user":
        return { _tag: "user", backend: id }
      case "denied":
        return { _tag: "denied", backend: id }
      case "error":
        return { _tag: "error", backend: id }
      case "error-fallthrough":
        unavailable = true
        attempts.push(id)
        break
      default:
        attempts.push(id)
    }
  }
  return unavailable ? { _tag: "unavailable", attempts } : { _tag: "failed", attempts }
}

/**
 * Django's `authenticate()`, transcribed: a backend whose signature does not bind is skipped, a
 * PermissionDenied breaks the loop, None continues, an exception escapes. A fallthrough error is a
 * backend that catches its own exception and returns None.
 */
const djangoAuthenticate = (chain: ReadonlyArray<Kind>): { user: string } | null | "raised" => {
  for (let i = 0; i < chain.length; i++) {
    const kind = chain[i]!
    if (kind === "unsupported") continue
    if (kind === "denied") break
    if (kind === "error") return "raised"
    if (kind === "user") return { user: `user-of-${idOf(i)}` }
  }
  return null
}

// Builds the backends once per chain and returns them with the layer, so calls can be inspected.
const runWith = (chain: ReadonlyArray<Kind>) => {
  const backends = chain.map(backendFor)
  return Effect.gen(function*() {
    const exit = yield* Effect.exit(AuthService.authenticate(credentials))
    const events = yield* TestAuth.events
    let outcome: Outcome
    if (Exit.isSuccess(exit)) {
      outcome = { _tag: "user", backend: exit.value.backend }
    } else {
      const error = Option.getOrThrow(Cause.failureOption(exit.cause))
      outcome = error._tag === "PermissionDenied"
        ? { _tag: "denied", backend: error.backend }
        : error._tag === "TransportError"
        ? { _tag: "error", backend: error.backend }
        : error._tag === "AuthenticationFailed"
        ? { _tag: "failed", attempts: error.attempts.map((a) => a.backend) }
        // No lockout is configured here: the only other outcome is BackendUnavailable.
        : { _tag: "unavailable", attempts: (error as AuthError.BackendUnavailable).attempts.map((a) => a.backend) }
    }
    return {
      outcome,
      user: Exit.isSuccess(exit) ? exit.value.user.username : undefined,
      loginFailed: events.filter((e) => e._tag === "LoginFailed").length,
      calls: backends.map((b) => b.calls.length)
    }
  }).pipe(Effect.provide(TestAuth.layer(backends)))
}

describe("laws of the fold (fast-check, chains of 1 to 6 backends)", () => {
  it.effect.prop("the fold's outcome equals the plain reference loop", [chainArb], ([chain]) =>
    Effect.map(runWith(chain), ({ outcome }) => {
      expect(outcome).toEqual(referenceLoop(chain))
    }))

  it.effect.prop("projected to Django's terms, the outcome is what Django's authenticate() gives", [chainArb], ([chain]) =>
    Effect.map(runWith(chain), ({ outcome, user }) => {
      const django = djangoAuthenticate(chain)
      if (django === "raised") expect(outcome._tag).toBe("error")
      else if (django === null) expect(["failed", "unavailable", "denied"]).toContain(outcome._tag)
      else expect(user).toBe(django.user)
    }))

  it.effect.prop(
    "a NoMatch backend inserted anywhere is neutral",
    [chainArb.filter((c) => c.length < 6), FastCheck.nat()],
    ([chain, at]) =>
      Effect.gen(function*() {
        const position = at % (chain.length + 1)
        const withNoMatch = [...chain.slice(0, position), "no-match" as const, ...chain.slice(position)]
        const before = yield* runWith(chain)
        const after = yield* runWith(withNoMatch)
        // Ids shift by one past the insertion point; compare the behaviour, not the ids.
        const kindOf = (o: Outcome, c: ReadonlyArray<Kind>) =>
          o._tag === "failed" || o._tag === "unavailable" ? o._tag : `${o._tag}:${c[Number(o.backend.slice(1))]}`
        expect(kindOf(after.outcome, withNoMatch)).toBe(kindOf(before.outcome, chain))
        expect(after.user === undefined).toBe(before.user === undefined)
      })
  )

  it.effect.prop("nothing after a success or a PermissionDenied runs", [chainArb], ([chain]) =>
    Effect.map(runWith(chain), ({ calls }) => {
      const stop = chain.findIndex((k) => k === "user" || k === "denied" || k === "error")
      if (stop >= 0) expect(calls.slice(stop + 1).every((n) => n === 0)).toBe(true)
      // Backends before the stop that accept the credentials were each called once.
      chain.forEach((kind, i) => {
        if (kind !== "unsupported" && (stop < 0 || i <= stop)) expect(calls[i]).toBe(1)
      })
    }))

  it.effect.prop("exactly one LoginFailed per failed call, none otherwise", [chainArb], ([chain]) =>
    Effect.map(runWith(chain), ({ loginFailed, outcome }) => {
      const failed = outcome._tag === "failed" || outcome._tag === "unavailable" || outcome._tag === "denied"
      expect(loginFailed).toBe(failed ? 1 : 0)
    }))
})
