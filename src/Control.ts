/**
 * Control per backend: what each typed outcome of a backend does to the fold, as Linux-PAM's
 * `[value=action]` syntax does for a module stack (see pam.conf(5)).
 *
 * A {@link ControlMap} names an {@link Action} for every {@link Outcome}: `success`, each
 * `NoMatch` reason, `PermissionDenied` and `TransportError`. The map is a mapped type over the
 * outcomes, so a new outcome (a new `NoMatchReason`, a new backend error) is a compile error in
 * every map written out in full.
 *
 * The actions and their PAM names:
 *
 * | action | PAM | meaning |
 * |---|---|---|
 * | `"continue"` | `ignore` | the outcome does not count; ask the next backend |
 * | `"succeed-at-end"` | `ok` | counts as a success unless a failure was recorded; ask the rest |
 * | `"succeed"` | `done` | as `"succeed-at-end"`, then stop, unless a failure was recorded (then go on) |
 * | `"fail-at-end"` | `bad` | records a failure (the first one recorded decides the error); ask the rest |
 * | `"fail"` | `die` | as `"fail-at-end"`, then stop |
 * | `{ skip: n }` | `n` | do not run the next `n` backends |
 *
 * When the stack ends, the call succeeds only if a success was counted and no failure was
 * recorded (PAM's "impression"); a stack where everything was ignored fails. The presets are
 * PAM's: {@link required}, {@link requisite}, {@link sufficient}, {@link optional}, and
 * {@link django}, today's fold (the default). See docs/control.md.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { AuthEvents, AuthService, Control, TestBackend } from "effect-auth"
 *
 * // The password must hold; a code is required too, but only when one is sent (a backend that
 * // cannot take the credentials is skipped rather than counted as a failure).
 * const AuthLive = AuthService.layer([
 *   AuthService.control(TestBackend.noMatch("password"), "required"),
 *   AuthService.control(TestBackend.noMatch("totp"), { ...Control.required, "unsupported-credentials": "continue" })
 * ]).pipe(Layer.provide(AuthEvents.layer))
 * ```
 *
 * @since 0.3.0
 */
import * as Either from "effect/Either"
import { dual } from "effect/Function"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as AuthBackend from "./AuthBackend.js"
import * as AuthError from "./AuthError.js"

/**
 * What a backend's attempt can end in: `"success"`, one of the `NoMatch` reasons, or the tag of
 * another backend error. Derived from `AuthError`, so a new reason or error is a new outcome.
 *
 * @example
 * ```ts
 * import type { Control } from "effect-auth"
 *
 * const outcome: Control.Outcome = "expired-credentials"
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type Outcome =
  | "success"
  | AuthError.NoMatchReason
  | Exclude<AuthError.BackendError["_tag"], "NoMatch">

/**
 * Every {@link Outcome}, in a fixed order.
 *
 * @example
 * ```ts
 * import { Control } from "effect-auth"
 *
 * Control.outcomes.length // 9
 * ```
 *
 * @since 0.3.0
 * @category constants
 */
export const outcomes: ReadonlyArray<Outcome> = [
  "success",
  ...AuthError.NoMatchReason.literals,
  "PermissionDenied",
  "TransportError"
]

/**
 * Skips the next `skip` backends (PAM's jump `N`); a jump past the end ends the stack.
 *
 * @example
 * ```ts
 * import type { Control } from "effect-auth"
 *
 * const overTheNextTwo: Control.Skip = { skip: 2 }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface Skip {
  readonly skip: number
}

/**
 * What a failed outcome may do: it never counts as a success.
 *
 * @example
 * ```ts
 * import type { Control } from "effect-auth"
 *
 * const onUnknownUser: Control.FailureAction = "fail-at-end"
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type FailureAction = "continue" | "fail-at-end" | "fail" | Skip

/**
 * What an outcome does to the fold (see the table at the top of this module).
 *
 * @example
 * ```ts
 * import type { Control } from "effect-auth"
 *
 * const onSuccess: Control.Action = "succeed-at-end"
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type Action = FailureAction | "succeed-at-end" | "succeed"

/**
 * A control map over a set of outcomes: one action for each, success the only one that may
 * succeed. {@link ControlMap} is this over today's {@link Outcome}s.
 *
 * @example
 * ```ts
 * import type { Control } from "effect-auth"
 *
 * type WithRateLimit = Control.ControlMapOf<Control.Outcome | "rate-limited">
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type ControlMapOf<O extends string> = {
  readonly [K in O]: K extends "success" ? Action : FailureAction
}

/**
 * One action for every outcome of a backend.
 *
 * @example
 * ```ts
 * import type { Control } from "effect-auth"
 *
 * const strict: Control.ControlMap = {
 *   success: "succeed-at-end",
 *   "unsupported-credentials": "fail-at-end",
 *   "unknown-user": "fail-at-end",
 *   "invalid-credentials": "fail-at-end",
 *   "inactive-user": "fail",
 *   "expired-credentials": "fail-at-end",
 *   throttled: "fail-at-end",
 *   PermissionDenied: "fail",
 *   TransportError: "fail-at-end"
 * }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type ControlMap = ControlMapOf<Outcome>

/**
 * The named presets.
 *
 * @example
 * ```ts
 * import type { Control } from "effect-auth"
 *
 * const preset: Control.Preset = "sufficient"
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type Preset = "required" | "requisite" | "sufficient" | "optional" | "django"

/**
 * A backend's control: a preset's name or a map.
 *
 * @example
 * ```ts
 * import { Control } from "effect-auth"
 *
 * const lenient: Control.Control = { ...Control.required, TransportError: "continue" }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export type Control = Preset | ControlMap

const allNoMatch = <A extends FailureAction>(action: A): { readonly [R in AuthError.NoMatchReason]: A } => ({
  "unsupported-credentials": action,
  "unknown-user": action,
  "invalid-credentials": action,
  "inactive-user": action,
  "expired-credentials": action,
  throttled: action
})

/**
 * PAM's `required`, `[success=ok new_authtok_reqd=ok ignore=ignore default=bad]`: this backend
 * must succeed, and the rest is asked either way (so a failure does not tell which backend
 * refused). Credentials it cannot take count as a failure (a required factor that was not given
 * is missing, not ignored). `PermissionDenied` stops at once, in every preset (see docs/control.md).
 *
 * @example
 * ```ts
 * import { Control } from "effect-auth"
 *
 * Control.required.success // "succeed-at-end"
 * ```
 *
 * @since 0.3.0
 * @category presets
 */
export const required: ControlMap = {
  success: "succeed-at-end",
  ...allNoMatch("fail-at-end"),
  PermissionDenied: "fail",
  TransportError: "fail-at-end"
}

/**
 * PAM's `requisite`, `[success=ok new_authtok_reqd=ok ignore=ignore default=die]`: as
 * {@link required}, but a failure stops the stack at once.
 *
 * @example
 * ```ts
 * import { Control } from "effect-auth"
 *
 * Control.requisite["unknown-user"] // "fail"
 * ```
 *
 * @since 0.3.0
 * @category presets
 */
export const requisite: ControlMap = {
  success: "succeed-at-end",
  ...allNoMatch("fail"),
  PermissionDenied: "fail",
  TransportError: "fail"
}

/**
 * PAM's `sufficient`, `[success=done new_authtok_reqd=done default=ignore]`: a success ends the
 * stack with success, unless an earlier backend recorded a failure (then the stack goes on and
 * fails); a failure is ignored.
 *
 * @example
 * ```ts
 * import { Control } from "effect-auth"
 *
 * Control.sufficient.success // "succeed"
 * ```
 *
 * @since 0.3.0
 * @category presets
 */
export const sufficient: ControlMap = {
  success: "succeed",
  ...allNoMatch("continue"),
  PermissionDenied: "fail",
  TransportError: "continue"
}

/**
 * PAM's `optional`, `[success=ok new_authtok_reqd=ok default=ignore]`: a success counts (and is
 * enough only when nothing else counted), a failure is ignored.
 *
 * @example
 * ```ts
 * import { Control } from "effect-auth"
 *
 * Control.optional.TransportError // "continue"
 * ```
 *
 * @since 0.3.0
 * @category presets
 */
export const optional: ControlMap = {
  success: "succeed-at-end",
  ...allNoMatch("continue"),
  PermissionDenied: "fail",
  TransportError: "continue"
}

/**
 * Today's fold as a map (Django's `authenticate()`): the first success wins, `NoMatch` goes on,
 * `PermissionDenied` stops, and a `TransportError` does what the backend's `onTransportError`
 * policy says (`"fail"`: stop with it; `"fallthrough"`: go on). The `"django"` preset is this map
 * for each backend's own policy; the other presets ignore that policy.
 *
 * @example
 * ```ts
 * import { Control } from "effect-auth"
 *
 * Control.django("fallthrough").TransportError // "continue"
 * ```
 *
 * @since 0.3.0
 * @category presets
 */
export const django = (onTransportError: AuthBackend.OnTransportError): ControlMap => ({
  success: "succeed",
  ...allNoMatch("continue"),
  PermissionDenied: "fail",
  TransportError: onTransportError === "fail" ? "fail" : "continue"
})

/**
 * The map of a preset for a backend (the `"django"` preset reads the backend's policy).
 *
 * @example
 * ```ts
 * import { Control, TestBackend } from "effect-auth"
 *
 * const map = Control.resolve("sufficient", TestBackend.noMatch("ldap"))
 * ```
 *
 * @since 0.3.0
 * @category utils
 */
export const resolve = (control: Control, backend: AuthBackend.AuthBackend): ControlMap => {
  switch (control) {
    case "required":
      return required
    case "requisite":
      return requisite
    case "sufficient":
      return sufficient
    case "optional":
      return optional
    case "django":
      return django(backend.policy.onTransportError)
    default:
      return control
  }
}

const SkipSchema = Schema.Struct({ skip: Schema.Int.pipe(Schema.positive()) })
const FailureActionSchema = Schema.Union(Schema.Literal("continue", "fail-at-end", "fail"), SkipSchema)
const ActionSchema = Schema.Union(Schema.Literal("continue", "fail-at-end", "fail", "succeed-at-end", "succeed"), SkipSchema)
const PresetSchema = Schema.Literal("required", "requisite", "sufficient", "optional", "django")
const decodeAction = ParseResult.decodeUnknownEither(ActionSchema)
const decodeFailureAction = ParseResult.decodeUnknownEither(FailureActionSchema)
const isPreset = Schema.is(PresetSchema)

// For the error message only: JSON.stringify threw for a bigint or a cyclic map (a defect where
// an AuthConfigError is promised), and answers undefined for a function.
const shown = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return typeof value
  }
}

/**
 * Checks a control given at run time (from configuration, or through a cast): a preset's name,
 * or a map with a valid action for every outcome (a skip is a positive integer; only `success`
 * may succeed). Anything else is an `AuthConfigError` naming the first bad entry. A map is answered
 * as a frozen copy of the actions checked, which is what a chain runs by: changing the map later
 * changes nothing.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Control } from "effect-auth"
 *
 * const checked = Control.validate({ ...Control.required, success: { skip: 0 } }) // fails: skip must be positive
 * ```
 *
 * @since 0.3.0
 * @category utils
 */
export const validate = (control: unknown): Either.Either<Control, AuthError.AuthConfigError> => {
  if (isPreset(control)) return Either.right(control)
  if (typeof control !== "object" || control === null) {
    return Either.left(new AuthError.AuthConfigError({ message: `control: not a preset or a map: ${String(control)}` }))
  }
  // The fold reads the map on every call: it gets a frozen copy of what was checked, so a caller's
  // map changed afterwards (or a getter answering differently later) cannot put an unchecked
  // action, such as a backward skip, into a running chain.
  const checked: Record<string, Action> = {}
  for (const outcome of outcomes) {
    let action: unknown
    try {
      action = (control as Record<string, unknown>)[outcome]
    } catch {
      return Either.left(new AuthError.AuthConfigError({ message: `control: the action for "${outcome}" cannot be read` }))
    }
    const decoded = outcome === "success" ? decodeAction(action) : decodeFailureAction(action)
    if (Either.isLeft(decoded)) {
      return Either.left(
        new AuthError.AuthConfigError({ message: `control: bad action for "${outcome}": ${shown(action)}` })
      )
    }
    checked[outcome] = typeof decoded.right === "object" ? Object.freeze({ skip: decoded.right.skip }) : decoded.right
  }
  return Either.right(Object.freeze(checked) as ControlMap)
}

/**
 * A backend (a value, or an effect producing it) with its control, as `AuthService.layer`
 * takes it. Build one with `AuthService.control`.
 *
 * @example
 * ```ts
 * import { AuthService, TestBackend } from "effect-auth"
 *
 * const entry = AuthService.control(TestBackend.noMatch("ldap"), "sufficient")
 * entry.control // "sufficient"
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface Controlled<B> {
  readonly _tag: "effect-auth/Controlled"
  readonly backend: B
  readonly control: Control
}

/**
 * Whether a value is a {@link Controlled} entry.
 *
 * @example
 * ```ts
 * import { Control, TestBackend } from "effect-auth"
 *
 * Control.isControlled(TestBackend.noMatch("a")) // false
 * ```
 *
 * @since 0.3.0
 * @category guards
 */
export const isControlled = (value: unknown): value is Controlled<unknown> =>
  typeof value === "object" && value !== null && (value as { _tag?: unknown })._tag === "effect-auth/Controlled"

/**
 * Pairs a backend with its control (also `AuthService.control`, data-last in a pipe).
 *
 * @example
 * ```ts
 * import { pipe } from "effect"
 * import { Control, TestBackend } from "effect-auth"
 *
 * const first = Control.controlled(TestBackend.noMatch("password"), "required")
 * const second = pipe(TestBackend.noMatch("totp"), Control.controlled("required"))
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const controlled: {
  (control: Control): <B>(backend: B) => Controlled<B>
  <B>(backend: B, control: Control): Controlled<B>
} = dual(2, <B>(backend: B, control: Control): Controlled<B> => ({ _tag: "effect-auth/Controlled", backend, control }))
