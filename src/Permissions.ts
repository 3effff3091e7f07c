/**
 * Permission strings, the permission fold over the backends, and the per-request cache.
 *
 * Permissions are Django's `app_label.codename` strings. `AuthService.hasPerm` asks the backends
 * in order: an active superuser has every permission without asking; the first `true` grants, a
 * `PermissionDenied` vetoes (the answer is `false` and later backends are not asked), backends
 * without the method are skipped, and no `true` means `false`.
 *
 * Within {@link withRequestCache} each answer is computed once per user object, permission and
 * object (an object by its reference, `contentType` and `objectPk`: see {@link cached}), so a
 * page that asks the same question twenty times asks each backend once.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as AuthError from "./AuthError.js"
import { codePointsWithin } from "./internal/codePoints.js"
import { readRef } from "./internal/objectRef.js"

/**
 * A permission string `app_label.codename`, at most 255 characters: an app label (no dot, no
 * whitespace: a Python identifier in Django) and a codename, which Django stores as free text
 * (`"can publish"`, `"view.archive"`): any characters but control characters.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Permissions } from "effect-auth"
 *
 * Schema.decodeUnknownSync(Permissions.Permission)("blog.change_post")
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Permission = Schema.String.pipe(
  // 255 characters as Django counts them (code points, not UTF-16 units).
  Schema.filter((perm) => codePointsWithin(perm, 0, 255) || "must be at most 255 characters", {
    jsonSchema: { maxLength: 255 }
  }),
  Schema.pattern(/^[^.\s\p{Cc}]+\.[^\p{Cc}]+$/u)
)

/**
 * Splits a permission string into its app label and codename (at the first dot).
 *
 * @example
 * ```ts
 * import { Permissions } from "effect-auth"
 *
 * Permissions.parse("blog.change_post") // Option.some({ appLabel: "blog", codename: "change_post" })
 * Permissions.parse("nodot") // Option.none()
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const parse = (perm: string): Option.Option<{ readonly appLabel: string; readonly codename: string }> => {
  if (!Schema.is(Permission)(perm)) return Option.none()
  const dot = perm.indexOf(".")
  return Option.some({ appLabel: perm.slice(0, dot), codename: perm.slice(dot + 1) })
}

/**
 * The app label of a permission string, or none when it is not `app_label.codename`.
 *
 * @example
 * ```ts
 * import { Permissions } from "effect-auth"
 *
 * Permissions.appLabel("blog.change_post") // Option.some("blog")
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const appLabel = (perm: string): Option.Option<string> => Option.map(parse(perm), (p) => p.appLabel)

/**
 * The per-request answer cache. Keys are the user object (so two users with equal ids from
 * different backends never share answers), the question, and the object of an object permission
 * (by its reference: see {@link cached}).
 *
 * @example
 * ```ts
 * import type { Permissions } from "effect-auth"
 *
 * const fresh = (): Permissions.RequestCacheStore => ({ answers: new Map() })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestCacheStore {
  readonly answers: Map<unknown, Map<string, Map<unknown, unknown>>>
}

/**
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { Permissions } from "effect-auth"
 *
 * const inRequest = Effect.map(Effect.serviceOption(Permissions.RequestCache), Option.isSome)
 *
 * Effect.runSync(inRequest) // false
 * Effect.runSync(Permissions.withRequestCache(inRequest)) // true
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class RequestCache extends Context.Tag("effect-auth/Permissions/RequestCache")<RequestCache, RequestCacheStore>() {}

/**
 * Runs an effect with a fresh permission cache, as the HTTP middleware does for each request.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, Permissions } from "effect-auth"
 *
 * declare const user: AuthService.User
 * const handler = Effect.gen(function* () {
 *   const auth = yield* AuthService.AuthService
 *   const canEdit = yield* auth.hasPerm(user, "blog.change_post")
 *   const canEditAgain = yield* auth.hasPerm(user, "blog.change_post") // answered from the cache
 *   return canEdit && canEditAgain
 * }).pipe(Permissions.withRequestCache)
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withRequestCache = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => Effect.provideService(self, RequestCache, { answers: new Map() }))

/**
 * Answers from the request cache when one is in scope and holds the answer; otherwise computes
 * the answer and stores it (successes only: a failure is asked again). Answers are kept per user
 * object and question, and per object: a value that is no object (a string, a number) as itself;
 * an object by its reference as `ObjectPermissions.refOf` reads it (`contentType` and `objectPk`),
 * never by its identity, since an object reused for another row (its `objectPk` changed) is
 * another question; an object that is no reference is not cached. A user that is not active
 * (`isActive` false, or missing) is not cached either: Django's `ModelBackend` checks `is_active`
 * before its `_perm_cache`, so a user object set inactive mid-request holds nothing from then on,
 * whatever it was answered while active.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Permissions } from "effect-auth"
 *
 * const user = { id: "1", isActive: true }
 * let asked = 0
 * const ask = Permissions.cached(user, "perm:blog.add_post", undefined, Effect.sync(() => ++asked > 0))
 *
 * Effect.runSync(Permissions.withRequestCache(Effect.zip(ask, ask)))
 * assert.strictEqual(asked, 1)
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const cached = <A, E>(
  user: object,
  question: string,
  obj: unknown,
  compute: Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.flatMap(Effect.serviceOption(RequestCache), (cache) => {
    if (Option.isNone(cache) || !isActive(user)) return compute
    const byUser = cache.value.answers
    let byQuestion = byUser.get(user)
    if (byQuestion === undefined) byUser.set(user, byQuestion = new Map())
    let byObject = byQuestion.get(question)
    if (byObject === undefined) byQuestion.set(question, byObject = new Map())
    const slot = slotOf(byObject, obj)
    if (slot === undefined) return compute
    const [answers, key] = slot
    if (answers.has(key)) return Effect.succeed(answers.get(key) as A)
    return Effect.tap(compute, (answer) => {
      answers.set(key, answer)
    })
  })

// Read as `AuthService` reads it (truthy); a user that throws when read is asked afresh.
const isActive = (user: object): boolean => {
  try {
    return Boolean((user as { readonly isActive?: unknown }).isActive)
  } catch {
    return false
  }
}

// Where an object's answer is kept: a value that is no object (undefined for no object) under
// itself, since it cannot change; an object reference under `contentType NUL objectPk`, in a map
// of their own (under a symbol no caller holds: a string object cannot take a reference's place);
// nothing for any other object, which may be mutated between questions.
const refAnswers = Symbol("effect-auth/Permissions/refAnswers")
const slotOf = (byObject: Map<unknown, unknown>, obj: unknown): readonly [Map<unknown, unknown>, unknown] | undefined => {
  if ((typeof obj !== "object" && typeof obj !== "function") || obj === null) return [byObject, obj]
  const ref = readRef(obj)
  if (ref === undefined) return undefined
  let refs = byObject.get(refAnswers) as Map<unknown, unknown> | undefined
  if (refs === undefined) byObject.set(refAnswers, refs = new Map())
  return [refs, `${ref.contentType}\u0000${ref.objectPk}`]
}

/**
 * The "first true grants, PermissionDenied vetoes" fold over the backends that answer a question.
 * A TransportError escapes, as an exception does in Django.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Permissions } from "effect-auth"
 *
 * const answer = Permissions.firstGrant([false, true], (b) => Effect.succeed(b)) // Effect.succeed(true)
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const firstGrant = <A>(
  askers: ReadonlyArray<A>,
  ask: (asker: A) => Effect.Effect<boolean, AuthError.PermissionDenied | AuthError.TransportError>
): Effect.Effect<boolean, AuthError.TransportError> => {
  const step = (i: number): Effect.Effect<boolean, AuthError.TransportError> =>
    i >= askers.length
      ? Effect.succeed(false)
      : Effect.matchEffect(ask(askers[i]!), {
        onFailure: (error) => error._tag === "PermissionDenied" ? Effect.succeed(false) : Effect.fail(error),
        onSuccess: (granted) => granted ? Effect.succeed(true) : step(i + 1)
      })
  return step(0)
}

/**
 * The union of every backend's permissions; a PermissionDenied fails the whole answer, as in
 * Django, where only `has_perm` turns it into `False`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Permissions } from "effect-auth"
 *
 * const all = Permissions.union([["a.x"], ["a.y"]], (perms) => Effect.succeed(new Set(perms)))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const union = <A>(
  askers: ReadonlyArray<A>,
  ask: (asker: A) => Effect.Effect<ReadonlySet<string>, AuthError.PermissionDenied | AuthError.TransportError>
): Effect.Effect<ReadonlySet<string>, AuthError.PermissionDenied | AuthError.TransportError> =>
  Effect.map(
    Effect.forEach(askers, ask),
    (sets) => {
      const all = new Set<string>()
      for (const set of sets) for (const perm of set) all.add(perm)
      return all
    }
  )

// --- explanations ------------------------------------------------------------------------------

/**
 * What one backend said about a permission: `grant`, `deny` (a `PermissionDenied`: the fold stops
 * with `false`), or `abstain` (`false`: the next backend is asked), with its reasons when the
 * backend gives them (`AuthBackend.explainPerm`).
 *
 * @example
 * ```ts
 * import type { Permissions } from "effect-auth"
 *
 * const step: Permissions.Step = { backend: "model", answer: "grant", reasons: ["via group editors"] }
 * ```
 *
 * @since 0.2.0
 * @category explanations
 */
export interface Step {
  readonly backend: string
  readonly answer: "grant" | "deny" | "abstain"
  readonly reasons: ReadonlyArray<string>
}

/**
 * A backend's own account of a permission question (what `AuthBackend.explainPerm` answers):
 * `granted` as `hasPerm` would say, and why.
 *
 * @example
 * ```ts
 * import type { Permissions } from "effect-auth"
 *
 * const answer: Permissions.Account = { granted: false, reasons: ["inactive user"] }
 * ```
 *
 * @since 0.2.0
 * @category explanations
 */
export interface Account {
  readonly granted: boolean
  readonly reasons: ReadonlyArray<string>
}

/**
 * The answer to "why can (or can't) this user do that?": the decision `hasPerm` gives, and the
 * trail of the fold that reached it, in the order the backends were asked. `decidedBy` names the
 * backend that granted or denied, or is `"superuser"` when the fold did not need to ask anyone,
 * and is absent when every backend abstained.
 *
 * @example
 * ```ts
 * import type { Permissions } from "effect-auth"
 *
 * const explanation: Permissions.Explanation = {
 *   username: "alice",
 *   perm: "reports.view_report",
 *   object: undefined,
 *   granted: true,
 *   decidedBy: "model",
 *   steps: [{ backend: "model", answer: "grant", reasons: ["via group analysts"] }]
 * }
 * ```
 *
 * @since 0.2.0
 * @category explanations
 */
export interface Explanation {
  readonly username: string
  readonly perm: string
  /** The object asked about, as `String(obj)` or its `contentType:objectPk`, when there was one. */
  readonly object: string | undefined
  readonly granted: boolean
  readonly decidedBy: string | undefined
  readonly steps: ReadonlyArray<Step>
}

/**
 * An explanation as lines for a person (the CLI's `explain` prints them).
 *
 * @example
 * ```ts
 * import { Permissions } from "effect-auth"
 *
 * Permissions.describe({
 *   username: "alice", perm: "reports.view_report", object: undefined, granted: true, decidedBy: "model",
 *   steps: [{ backend: "model", answer: "grant", reasons: ["via group analysts"] }]
 * })
 * // [ "alice may reports.view_report: granted by model",
 * //   "  model: grant (via group analysts)" ]
 * ```
 *
 * @since 0.2.0
 * @category explanations
 */
export const describe = (explanation: Explanation): ReadonlyArray<string> => {
  const on = explanation.object === undefined ? "" : ` on ${explanation.object}`
  const verdict = explanation.granted
    ? `granted by ${explanation.decidedBy}`
    : explanation.decidedBy === undefined
    ? "refused: no backend granted it"
    : `refused: denied by ${explanation.decidedBy}`
  const head = `${explanation.username} ${explanation.granted ? "may" : "may not"} ${explanation.perm}${on}: ${verdict}`
  return [
    head,
    ...explanation.steps.map((step) =>
      `  ${step.backend}: ${step.answer}${step.reasons.length === 0 ? "" : ` (${step.reasons.join("; ")})`}`
    )
  ]
}
