import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as AuthError from "../AuthError.js"
import type { AuthRequest } from "../AuthRequest.js"
import type * as Control from "../Control.js"
import type { User } from "../User.js"
import type { CompiledBackend, DecodeCache } from "./compiledBackend.js"
import * as RefusedSecret from "./refusedSecret.js"

/**
 * The per-call state the fold in `AuthService` keeps (its `Call`): shared so both folds record
 * attempts and span events the same way.
 *
 * @internal
 */
export interface ControlCall extends DecodeCache {
  readonly request: AuthRequest | undefined
  readonly traceAttempts: boolean
  unavailable: boolean
  readonly attempts: ReadonlyArray<AuthError.Attempt> | undefined
  record(attempt: AuthError.Attempt): void
  event(backend: string, outcome: string, reason?: string): void
}

/**
 * What `AuthService` lends the interpreter, so results, events and failures are built by the same
 * helpers as on the default path.
 *
 * @internal
 */
export interface Helpers<A, C extends ControlCall> {
  readonly succeed: (user: User, backend: string, degraded: boolean) => A
  readonly loginFailed: (
    call: C,
    error: AuthError.PermissionDenied
  ) => Effect.Effect<never, AuthError.AuthenticateError>
  /** `AuthenticationFailed`, or `BackendUnavailable` when a backend could not answer; one event. */
  readonly nobodyMatched: (call: C) => Effect.Effect<never, AuthError.AuthenticateError>
}

/** The first failure recorded: it decides the error, as PAM's first `bad` status does. */
type Failure =
  | { readonly _tag: "PermissionDenied"; readonly error: AuthError.PermissionDenied }
  | { readonly _tag: "TransportError"; readonly error: AuthError.TransportError }
  | { readonly _tag: "Other" }

/** One call's walk through the stack: PAM's impression and status. */
class Walk {
  /** undefined: nothing counted yet (PAM's _PAM_UNDEF); a success counted; or a failure. */
  failure: Failure | undefined = undefined
  winner: { readonly user: User; readonly backend: string } | undefined = undefined
}

const other: Failure = { _tag: "Other" }

/**
 * The general interpreter of control maps, used by `AuthService` only when some backend's
 * control is not the `django` preset (the default path stays the hand-tuned fold). It follows
 * Linux-PAM's dispatch: `succeed`/`succeed-at-end` count a success only while no failure is
 * recorded, `succeed` ends the stack only then; `fail`/`fail-at-end` record the first failure,
 * `fail` ends the stack; a skip jumps over backends; at the end the call succeeds only when a
 * success counted and no failure was recorded.
 *
 * The user is fixed by the first success that counts; a later success for another user (another
 * id or another username, see `samePerson`) is that backend's `NoMatch("invalid-credentials")`
 * (a second factor must be the same person's).
 *
 * @internal
 */
export const make = <A, C extends ControlCall>(
  compiled: ReadonlyArray<CompiledBackend>,
  controls: ReadonlyArray<Control.ControlMap>,
  helpers: Helpers<A, C>
): (call: C, from: number) => Effect.Effect<A, AuthError.AuthenticateError> => {
  const count = compiled.length

  const decide = (
    call: C,
    walk: Walk,
    escaped: AuthError.TransportError | undefined
  ): Effect.Effect<A, AuthError.AuthenticateError> => {
    const failure = walk.failure
    if (failure === undefined && walk.winner !== undefined) {
      return Exit.succeed(helpers.succeed(walk.winner.user, walk.winner.backend, call.unavailable))
    }
    if (failure?._tag === "PermissionDenied") return helpers.loginFailed(call, failure.error)
    // A TransportError that stops the stack as its first failure escapes as it is, as under the
    // `onTransportError: "fail"` policy (and Django, where the exception escapes): no event.
    if (failure?._tag === "TransportError" && escaped === failure.error) {
      return Exit.fail(RefusedSecret.escaping(call.attempts, escaped))
    }
    return helpers.nobodyMatched(call)
  }

  /**
   * Applies one backend's outcome: the next index to run, or the call's result. `undefined`
   * from a `fail` means "decide now".
   */
  const step = (
    call: C,
    walk: Walk,
    index: number,
    exit: Exit.Exit<User, AuthError.BackendError>
  ): number | Effect.Effect<A, AuthError.AuthenticateError> => {
    const backend = compiled[index]!
    const control = controls[index]!
    let outcome: Control.Outcome
    let failure: Failure | undefined
    let user: User | undefined
    if (exit._tag === "Success") {
      user = exit.value
      if (walk.winner !== undefined && !samePerson(walk.winner.user, user)) {
        const error = AuthError.failures(backend.id).noMatchError("invalid-credentials")
        call.event(backend.id, "no-match", error.reason)
        call.record(error)
        outcome = "invalid-credentials"
        failure = other
        user = undefined
      } else {
        call.event(backend.id, "success")
        outcome = "success"
        failure = other
      }
    } else {
      const cause = exit.cause
      const error = cause._tag === "Fail" ? cause.error : Option.getOrUndefined(Cause.failureOption(cause))
      // An interruption or a defect is not an outcome: it ends the call as it is.
      if (error === undefined) return exit as Exit.Exit<never>
      switch (error._tag) {
        case "NoMatch":
          call.event(backend.id, "no-match", error.reason)
          call.record(error)
          outcome = error.reason
          failure = other
          break
        case "PermissionDenied":
          call.event(backend.id, "permission-denied")
          outcome = "PermissionDenied"
          failure = { _tag: "PermissionDenied", error }
          break
        case "TransportError":
          call.event(backend.id, "transport-error")
          call.record(error)
          outcome = "TransportError"
          failure = { _tag: "TransportError", error }
          break
        default:
          return absurdOutcome(error)
      }
    }
    const action: Control.Action = control[outcome]
    switch (action) {
      case "continue":
        if (outcome === "TransportError") call.unavailable = true
        return index + 1
      case "succeed-at-end":
      case "succeed":
        // Only `success` may map to these (the map's type and `Control.validate` see to it).
        if (walk.failure === undefined && walk.winner === undefined) {
          walk.winner = { user: user!, backend: backend.id }
        }
        return action === "succeed" && walk.failure === undefined ? decide(call, walk, undefined) : index + 1
      case "fail-at-end":
        if (outcome === "TransportError") call.unavailable = true
        if (walk.failure === undefined) walk.failure = failure
        return index + 1
      case "fail": {
        if (outcome === "TransportError") call.unavailable = true
        const first = walk.failure === undefined
        if (first) walk.failure = failure
        const escaped = first && failure._tag === "TransportError" ? failure.error : undefined
        return decide(call, walk, escaped)
      }
      default:
        if (outcome === "TransportError") call.unavailable = true
        return index + 1 + action.skip
    }
  }

  const run = (call: C, walk: Walk, from: number): Effect.Effect<A, AuthError.AuthenticateError> => {
    let index = from
    while (index < count) {
      const backend = compiled[index]!
      const attempt = call.traceAttempts
        ? backend.authenticateTraced(call, call.request)
        : backend.authenticate(call, call.request)
      const tag = (attempt as { readonly _tag?: unknown })._tag
      if (tag === "Success" || tag === "Failure") {
        const next = step(call, walk, index, attempt as Exit.Exit<User, AuthError.BackendError>)
        if (typeof next !== "number") return next
        index = next
        continue
      }
      const at = index
      const resume = (exit: Exit.Exit<User, AuthError.BackendError>) => {
        const next = step(call, walk, at, exit)
        return typeof next === "number" ? run(call, walk, next) : next
      }
      return Effect.matchCauseEffect(attempt, {
        onFailure: (cause) => resume(Exit.failCause(cause)),
        onSuccess: (user) => resume(Exit.succeed(user))
      })
    }
    return decide(call, walk, undefined)
  }

  return (call, from) => run(call, new Walk(), from)
}

// Whether two backends' successes name one person: the same id *and* the same username. Each
// backend has its own id space (ModelBackend's is the store's key, LdapBackend's the directory
// name), so by id alone a directory account named "7" passed as store user 7's second factor.
// Both must match, never either: a username alone is no better (two systems may each hold an
// "alice"), and backends that vouch for one user return that user, id and name alike.
const samePerson = (a: User, b: User): boolean => a.id === b.id && a.username === b.username

const absurdOutcome = (error: never): never => {
  throw new Error(`unhandled backend outcome: ${String((error as { _tag?: unknown })._tag)}`)
}
