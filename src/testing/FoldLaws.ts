/**
 * The fold's laws as a kit: a reference model of `AuthService.authenticate` under control maps
 * (a plain-TypeScript loop over outcomes), fast-check arbitraries of chains and control maps, and
 * checks that run the real fold and compare it with the model, for scripted backends or for your
 * own.
 *
 * The arbitraries come from `effect/FastCheck` (the fast-check that `effect` bundles), so this
 * module needs no test runner and no extra package; run the checks under any runner, e.g.
 * `@effect/vitest`'s `it.effect.prop`. See docs/testing.md.
 *
 * @example
 * ```ts
 * import { Effect, FastCheck } from "effect"
 * import * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * // In a test file: it.effect.prop("the fold obeys its model", [FoldLaws.chain()], ([chain]) => FoldLaws.check(chain))
 * const law = FastCheck.asyncProperty(FoldLaws.chain(), (chain) => Effect.runPromise(FoldLaws.check(chain)))
 * ```
 *
 * @since 0.3.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import * as AuthEvents from "../AuthEvents.js"
import * as AuthService from "../AuthService.js"
import * as Control from "../Control.js"
import * as Credentials from "../Credentials.js"
import type { User } from "../User.js"

/**
 * What one backend answers, without the typed detail: a user (by id), a `NoMatch` reason,
 * `PermissionDenied` or `TransportError`.
 *
 * @example
 * ```ts
 * import type * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const outcome: FoldLaws.ModelOutcome = { _tag: "NoMatch", reason: "unknown-user" }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type ModelOutcome =
  | { readonly _tag: "Success"; readonly user: string }
  | { readonly _tag: "NoMatch"; readonly reason: AuthError.NoMatchReason }
  | { readonly _tag: "PermissionDenied" }
  | { readonly _tag: "TransportError" }

/**
 * One backend of a modelled chain: its outcome, its control, and (for the `"django"` preset) its
 * `onTransportError` policy (default `"fail"`).
 *
 * @example
 * ```ts
 * import type * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const entry: FoldLaws.ModelEntry = { outcome: { _tag: "Success", user: "alice" }, control: "sufficient" }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface ModelEntry {
  readonly outcome: ModelOutcome
  readonly control: Control.Control
  readonly onTransportError?: AuthBackend.OnTransportError | undefined
}

/**
 * What a call ends in, backends named by their position in the chain.
 *
 * @example
 * ```ts
 * import type * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const result: FoldLaws.ModelResult = { _tag: "Authenticated", user: "alice", backend: 0, degraded: false }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type ModelResult =
  | { readonly _tag: "Authenticated"; readonly user: string; readonly backend: number; readonly degraded: boolean }
  | { readonly _tag: "PermissionDenied"; readonly backend: number }
  | { readonly _tag: "TransportError"; readonly backend: number }
  | { readonly _tag: "AuthenticationFailed"; readonly attempts: ReadonlyArray<number> }
  | { readonly _tag: "BackendUnavailable"; readonly attempts: ReadonlyArray<number> }

/**
 * A call as the model sees it: its result, the backends asked (in order) and how many
 * `LoginFailed` events it published.
 *
 * @example
 * ```ts
 * import type * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const run: FoldLaws.ModelRun = { result: { _tag: "AuthenticationFailed", attempts: [0] }, asked: [0], loginFailed: 1 }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface ModelRun {
  readonly result: ModelResult
  readonly asked: ReadonlyArray<number>
  readonly loginFailed: number
}

const mapOf = (entry: ModelEntry): Control.ControlMap =>
  entry.control === "django"
    ? Control.django(entry.onTransportError ?? "fail")
    : entry.control === "required"
    ? Control.required
    : entry.control === "requisite"
    ? Control.requisite
    : entry.control === "sufficient"
    ? Control.sufficient
    : entry.control === "optional"
    ? Control.optional
    : entry.control

/**
 * The reference model: Linux-PAM's dispatch (pam.conf(5)) over typed outcomes, written as plainly
 * as possible. A success counts only while no failure is recorded and only for the first user
 * that counted (a success for another user is `NoMatch("invalid-credentials")`; a model user
 * stands for both the id and the username, which the real fold both compares); the first failure
 * recorded decides the error; the call succeeds only when a success counted and no failure was
 * recorded; a `TransportError` that stops the chain as its first failure escapes without an
 * event; a success after a `TransportError` that was passed over is degraded.
 *
 * @example
 * ```ts
 * import * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const run = FoldLaws.reference([
 *   { outcome: { _tag: "NoMatch", reason: "invalid-credentials" }, control: "required" },
 *   { outcome: { _tag: "Success", user: "alice" }, control: "sufficient" }
 * ])
 * run.result._tag // "AuthenticationFailed": a sufficient success does not undo a failed required
 * ```
 *
 * @since 0.3.0
 * @category model
 */
export const reference = (chain: ReadonlyArray<ModelEntry>): ModelRun => {
  const asked: Array<number> = []
  const attempts: Array<number> = []
  let unavailable = false
  let failure: { readonly tag: "PermissionDenied" | "TransportError" | "Other"; readonly at: number } | undefined
  let winner: { readonly user: string; readonly at: number } | undefined

  const end = (escaped: boolean): ModelRun => {
    if (failure === undefined && winner !== undefined) {
      return { result: { _tag: "Authenticated", user: winner.user, backend: winner.at, degraded: unavailable }, asked, loginFailed: 0 }
    }
    if (failure?.tag === "PermissionDenied") {
      return { result: { _tag: "PermissionDenied", backend: failure.at }, asked, loginFailed: 1 }
    }
    if (failure?.tag === "TransportError" && escaped) {
      return { result: { _tag: "TransportError", backend: failure.at }, asked, loginFailed: 0 }
    }
    return {
      result: unavailable ? { _tag: "BackendUnavailable", attempts } : { _tag: "AuthenticationFailed", attempts },
      asked,
      loginFailed: 1
    }
  }

  let i = 0
  while (i < chain.length) {
    const entry = chain[i]!
    asked.push(i)
    let outcome = entry.outcome
    if (outcome._tag === "Success" && winner !== undefined && winner.user !== outcome.user) {
      outcome = { _tag: "NoMatch", reason: "invalid-credentials" }
    }
    const key: Control.Outcome = outcome._tag === "Success"
      ? "success"
      : outcome._tag === "NoMatch"
      ? outcome.reason
      : outcome._tag
    if (outcome._tag === "NoMatch" || outcome._tag === "TransportError") attempts.push(i)
    if (outcome._tag === "TransportError") unavailable = true
    const tag = outcome._tag === "PermissionDenied" || outcome._tag === "TransportError" ? outcome._tag : "Other"
    const action = mapOf(entry)[key]
    if (action === "continue") {
      i += 1
    } else if (typeof action === "object") {
      i += 1 + action.skip
    } else if (action === "succeed" || action === "succeed-at-end") {
      if (failure === undefined && winner === undefined && outcome._tag === "Success") winner = { user: outcome.user, at: i }
      if (action === "succeed" && failure === undefined) return end(false)
      i += 1
    } else if (action === "fail-at-end") {
      if (failure === undefined) failure = { tag, at: i }
      i += 1
    } else {
      const first = failure === undefined
      if (first) failure = { tag, at: i }
      return end(first && tag === "TransportError")
    }
  }
  return end(false)
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

/**
 * Outcomes over a few users (so that successes for different users meet).
 *
 * @example
 * ```ts
 * import { FastCheck } from "effect"
 * import * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const samples = FastCheck.sample(FoldLaws.outcome, 3)
 * ```
 *
 * @since 0.3.0
 * @category arbitraries
 */
export const outcome: FastCheck.Arbitrary<ModelOutcome> = FastCheck.oneof(
  // Weighted towards successes: most of the rules are about what a success may do.
  { weight: 4, arbitrary: FastCheck.constantFrom("alice", "alice", "bob").map((user): ModelOutcome => ({ _tag: "Success", user })) },
  {
    weight: 3,
    arbitrary: FastCheck.constantFrom(...AuthError.NoMatchReason.literals).map((reason): ModelOutcome => ({ _tag: "NoMatch", reason }))
  },
  { weight: 1, arbitrary: FastCheck.constant<ModelOutcome>({ _tag: "PermissionDenied" }) },
  { weight: 2, arbitrary: FastCheck.constant<ModelOutcome>({ _tag: "TransportError" }) }
)

const failureAction: FastCheck.Arbitrary<Control.FailureAction> = FastCheck.oneof(
  FastCheck.constantFrom<Control.FailureAction>("continue", "fail-at-end", "fail"),
  FastCheck.integer({ min: 1, max: 3 }).map((skip): Control.FailureAction => ({ skip }))
)
const action: FastCheck.Arbitrary<Control.Action> = FastCheck.oneof(
  failureAction,
  FastCheck.constantFrom<Control.Action>("succeed-at-end", "succeed")
)

/**
 * Any control map: every outcome gets a random action (skips of 1 to 3).
 *
 * @example
 * ```ts
 * import { FastCheck } from "effect"
 * import * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const [map] = FastCheck.sample(FoldLaws.controlMap, 1)
 * ```
 *
 * @since 0.3.0
 * @category arbitraries
 */
export const controlMap: FastCheck.Arbitrary<Control.ControlMap> = FastCheck.record({
  success: action,
  "unsupported-credentials": failureAction,
  "unknown-user": failureAction,
  "invalid-credentials": failureAction,
  "inactive-user": failureAction,
  "expired-credentials": failureAction,
  throttled: failureAction,
  PermissionDenied: failureAction,
  TransportError: failureAction
})

/**
 * A preset's name.
 *
 * @example
 * ```ts
 * import { FastCheck } from "effect"
 * import * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const presets = FastCheck.sample(FoldLaws.preset, 5)
 * ```
 *
 * @since 0.3.0
 * @category arbitraries
 */
export const preset: FastCheck.Arbitrary<Control.Preset> = FastCheck.constantFrom(
  "required",
  "requisite",
  "sufficient",
  "optional",
  "django"
)

/**
 * Options of {@link chain}.
 *
 * @example
 * ```ts
 * import { FastCheck } from "effect"
 * import type * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const options: FoldLaws.ChainOptions = { control: FastCheck.constant("required"), maxLength: 4 }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface ChainOptions {
  /** The controls to draw from; default: presets and random maps. */
  readonly control?: FastCheck.Arbitrary<Control.Control> | undefined
  readonly maxLength?: number | undefined
}

/**
 * Chains of 1 to `maxLength` (default 6) modelled backends.
 *
 * @example
 * ```ts
 * import { FastCheck } from "effect"
 * import * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const requiredOnly = FoldLaws.chain({ control: FastCheck.constant("required") })
 * ```
 *
 * @since 0.3.0
 * @category arbitraries
 */
export const chain = (options: ChainOptions = {}): FastCheck.Arbitrary<ReadonlyArray<ModelEntry>> =>
  FastCheck.array(
    FastCheck.record({
      outcome,
      control: options.control ?? FastCheck.oneof({ weight: 3, arbitrary: preset }, { weight: 1, arbitrary: controlMap }),
      onTransportError: FastCheck.constantFrom<AuthBackend.OnTransportError>("fail", "fallthrough")
    }),
    { minLength: 1, maxLength: options.maxLength ?? 6 }
  )

// ---------------------------------------------------------------------------------------------
// Running the real fold

/**
 * The fold's laws were broken: what the model expected and what the fold did.
 *
 * @example
 * ```ts
 * import * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const error = new FoldLaws.FoldLawViolation({ expected: "AuthenticationFailed", actual: "Authenticated" })
 * ```
 *
 * @since 0.3.0
 * @category errors
 */
export class FoldLawViolation extends Schema.TaggedError<FoldLawViolation>("effect-auth/FoldLawViolation")(
  "FoldLawViolation",
  { expected: Schema.String, actual: Schema.String }
) {}

const credentials = { username: "alice", password: "pw" }

/** A backend that answers `outcome` and counts its calls (as an `Exit` or through a fiber step). */
const scripted = (entry: ModelEntry, index: number, asked: Array<number>): AuthBackend.AuthBackend => {
  const id = `b${index}`
  const outcome = entry.outcome
  const fail = AuthError.failures(id)
  const answer = (): Effect.Effect<User, AuthError.BackendError> => {
    switch (outcome._tag) {
      case "Success":
        return Exit.succeed({ id: outcome.user, username: outcome.user, isActive: true, isSuperuser: false })
      case "NoMatch":
        return fail.noMatch(outcome.reason)
      case "PermissionDenied":
        return fail.permissionDenied("scripted")
      case "TransportError":
        return fail.transportError("scripted")
    }
  }
  return AuthBackend.make<any>({
    id,
    // Credentials of another kind make a real "unsupported-credentials": the backend never runs.
    credentials: (outcome._tag === "NoMatch" && outcome.reason === "unsupported-credentials"
      ? Credentials.Token
      : Credentials.UsernamePassword) as Schema.Schema<any, any, never>,
    // Alternate between an answer the fold reads as an `Exit` and one it must run.
    authenticate: index % 2 === 0
      ? () => {
        asked.push(index)
        return answer()
      }
      : () => Effect.suspend(() => {
        asked.push(index)
        return answer()
      }),
    getUser: () => Effect.succeedNone,
    policy: { onTransportError: entry.onTransportError ?? "fail" }
  })
}

const indexOf = (ids: ReadonlyArray<string>, id: string): number => ids.indexOf(id)

const project = (
  ids: ReadonlyArray<string>,
  exit: Exit.Exit<AuthService.Authenticated, AuthError.AuthenticateError>
): ModelResult => {
  if (Exit.isSuccess(exit)) {
    return {
      _tag: "Authenticated",
      user: exit.value.user.id,
      backend: indexOf(ids, exit.value.backend),
      degraded: exit.value.degraded === true
    }
  }
  const error = Option.getOrUndefined(Cause.failureOption(exit.cause))
  switch (error?._tag) {
    case "PermissionDenied":
    case "TransportError":
      return { _tag: error._tag, backend: indexOf(ids, error.backend) }
    case "AuthenticationFailed":
    case "BackendUnavailable":
      return { _tag: error._tag, attempts: error.attempts.map((a) => indexOf(ids, a.backend)) }
    default:
      throw new Error(`unexpected end of a call: ${Cause.pretty(exit.cause)}`)
  }
}

/**
 * Runs a chain of backends with their controls through the real `AuthService` (with a fresh
 * `AuthEvents`) and describes the call as the model does. `asked` lists the backends whose
 * `authenticate` ran, so it leaves out those skipped for credentials of another kind.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, TestBackend } from "effect-auth"
 * import * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const run = FoldLaws.runChain(
 *   [AuthService.control(TestBackend.succeed("sso", TestBackend.user("alice")), "sufficient")],
 *   { token: "t" }
 * )
 * ```
 *
 * @since 0.3.0
 * @category running
 */
export const runChain = (
  entries: ReadonlyArray<AuthBackend.AuthBackend | Control.Controlled<AuthBackend.AuthBackend>>,
  input: unknown,
  asked: () => ReadonlyArray<number> = () => []
): Effect.Effect<ModelRun, AuthError.AuthConfigError> =>
  Effect.gen(function*() {
    const ids = entries.map((entry) => Control.isControlled(entry) ? entry.backend.id : entry.id)
    const events = yield* AuthEvents.make
    const subscription = yield* events.subscribe
    const service = yield* Effect.provideService(AuthService.make(entries), AuthEvents.AuthEvents, events)
    const exit = yield* Effect.exit(service.authenticateUnknown(input))
    const published = yield* subscription.takeAll
    return {
      result: project(ids, exit),
      asked: asked(),
      loginFailed: Array.from(published).filter((event) => event._tag === "LoginFailed").length
    }
  }).pipe(Effect.scoped)

/**
 * Checks one modelled chain: scripted backends give the outcomes, the real fold runs them under
 * their controls, and the result, the backends asked and the `LoginFailed` count must be the
 * model's ({@link reference}). Fails with {@link FoldLawViolation} otherwise.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const ok = FoldLaws.check([
 *   { outcome: { _tag: "TransportError" }, control: "optional" },
 *   { outcome: { _tag: "Success", user: "alice" }, control: "required" }
 * ])
 * Effect.runSync(ok) // passes: alice, degraded
 * ```
 *
 * @since 0.3.0
 * @category running
 */
export const check = (chain: ReadonlyArray<ModelEntry>): Effect.Effect<void, FoldLawViolation | AuthError.AuthConfigError> =>
  Effect.suspend(() => {
    const asked: Array<number> = []
    const entries = chain.map((entry, i) => Control.controlled(scripted(entry, i, asked), entry.control))
    const expected = reference(chain)
    const notUnsupported = (i: number) => {
      const o = chain[i]!.outcome
      return !(o._tag === "NoMatch" && o.reason === "unsupported-credentials")
    }
    return Effect.flatMap(runChain(entries, credentials, () => asked), (actual) => {
      const want = { ...expected, asked: expected.asked.filter(notUnsupported) }
      return equalRuns(want, actual)
        ? Effect.void
        : Effect.fail(new FoldLawViolation({ expected: JSON.stringify(want), actual: JSON.stringify(actual) }))
    })
  })

const equalRuns = (a: ModelRun, b: ModelRun): boolean => JSON.stringify(a) === JSON.stringify(b)

/**
 * Checks a chain of your own backends: each backend is first run alone to learn its outcome for
 * `input` (so they must answer the same input the same way each time: no replay protection or
 * lockout in play), then the model predicts the chain's result and the real fold must give it.
 * Use it with your backends and control maps, e.g. over `FastCheck.shuffledSubarray` of them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, TestBackend } from "effect-auth"
 * import * as FoldLaws from "effect-auth/testing/FoldLaws"
 *
 * const ok = FoldLaws.checkBackends(
 *   [
 *     AuthService.control(TestBackend.noMatch("ldap", "unknown-user"), "sufficient"),
 *     AuthService.control(TestBackend.succeed("local", TestBackend.user("alice")), "required")
 *   ],
 *   { username: "alice", password: "pw" }
 * )
 * ```
 *
 * @since 0.3.0
 * @category running
 */
export const checkBackends = (
  entries: ReadonlyArray<AuthBackend.AuthBackend | Control.Controlled<AuthBackend.AuthBackend>>,
  input: unknown
): Effect.Effect<void, FoldLawViolation | AuthError.AuthConfigError> =>
  Effect.gen(function*() {
    const model: Array<ModelEntry> = []
    for (const entry of entries) {
      const backend = Control.isControlled(entry) ? entry.backend : entry
      const control = Control.isControlled(entry) ? entry.control : "django"
      const alone = yield* Effect.exit(
        Effect.provide(
          Effect.flatMap(
            AuthService.make([AuthBackend.withPolicy(backend, { onTransportError: "fallthrough" })]),
            (service) => service.authenticateUnknown(input)
          ),
          AuthEvents.layer
        )
      )
      const outcome = outcomeOf(alone)
      if (outcome === undefined) return yield* new FoldLawViolation({ expected: "an outcome", actual: String(alone) })
      model.push({ outcome, control, onTransportError: backend.policy.onTransportError })
    }
    const expected = reference(model)
    const actual = yield* runChain(entries, input)
    const project = (run: ModelRun) => ({ result: run.result, loginFailed: run.loginFailed })
    if (!equalRuns({ ...project(expected), asked: [] }, { ...project(actual), asked: [] })) {
      return yield* new FoldLawViolation({
        expected: JSON.stringify(project(expected)),
        actual: JSON.stringify(project(actual))
      })
    }
  })

/** A backend's outcome, read from a call to it alone under `"fallthrough"`. */
const outcomeOf = (
  exit: Exit.Exit<AuthService.Authenticated, AuthError.AuthenticateError | AuthError.AuthConfigError>
): ModelOutcome | undefined => {
  if (Exit.isSuccess(exit)) return { _tag: "Success", user: exit.value.user.id }
  const error = Option.getOrUndefined(Cause.failureOption(exit.cause))
  switch (error?._tag) {
    case "PermissionDenied":
      return { _tag: "PermissionDenied" }
    case "BackendUnavailable":
      return { _tag: "TransportError" }
    case "AuthenticationFailed": {
      const first = error.attempts[0]
      return first === undefined ? undefined : { _tag: "NoMatch", reason: first.reason }
    }
    default:
      return undefined
  }
}
