// A fold run inside a fiber that is already running.
//
// `AuthService.authenticate` is one `withFiberRuntime` step that decides, from the fiber, whether
// a recording tracer wants a span, then folds the backends; when every backend answers with an
// `Exit` the result is an `Exit` too. The HTTP middlewares already hold the fiber (they read the
// request from its context), so they call the fold directly and read that `Exit` on the spot:
// one fiber step per protected request instead of five. A service made by `AuthService.make`
// registers its fold here; any other (a test double) is asked through `authenticateUnknown`.
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type { AuthRequest } from "../AuthRequest.js"
import type * as AuthError from "../AuthError.js"
import type * as AuthService from "../AuthService.js"

/** @internal */
export type Attempt = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  credentials: unknown,
  request: AuthRequest | undefined
) => Effect.Effect<AuthService.Authenticated, AuthError.AuthenticateError>

const registry = new WeakMap<AuthService.Service, Attempt>()

/** @internal */
export const register = (service: AuthService.Service, attempt: Attempt): AuthService.Service => {
  registry.set(service, attempt)
  return service
}

/** The fold of `service` run in `fiber`: an `Exit` when no backend had to run as an effect. @internal */
export const attempt = (
  service: AuthService.Service,
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  credentials: unknown,
  request: AuthRequest | undefined
): Effect.Effect<AuthService.Authenticated, AuthError.AuthenticateError> => {
  const registered = registry.get(service)
  return registered === undefined ? service.authenticateUnknown(credentials, request) : registered(fiber, credentials, request)
}

/** Whether an effect is an `Exit` (`Exit.isExit` without its `in` check). @internal */
export const isExit = <A, E, R>(effect: Effect.Effect<A, E, R>): effect is Exit.Exit<A, E> => {
  const tag = (effect as { readonly _tag?: unknown })._tag
  return tag === "Success" || tag === "Failure"
}

/**
 * `Effect.flatMap`, applied on the spot when `effect` is already a successful `Exit` (no fiber
 * step in between); any other effect is flat-mapped as usual. @internal
 */
export const flatMapNow = <A, E, R, B, E2, R2>(
  effect: Effect.Effect<A, E, R>,
  f: (a: A) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, E | E2, R | R2> => isExit(effect) && effect._tag === "Success" ? f(effect.value) : Effect.flatMap(effect, f)
