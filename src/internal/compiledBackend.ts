import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Option from "effect/Option"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import type * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import type { AuthRequest } from "../AuthRequest.js"
import type { User } from "../User.js"
import { guard } from "./policy.js"

/**
 * A backend prepared once, when the layer is built, for the calls the fold makes: the credentials
 * decoder is compiled, the policy is wrapped around every call, and the span options are fixed, so
 * nothing of this is rebuilt per request.
 *
 * @internal
 */
export interface CompiledBackend {
  readonly id: string
  readonly backend: AuthBackend.AuthBackend
  readonly onTransportError: AuthBackend.OnTransportError
  readonly authenticate: (raw: unknown, request: AuthRequest | undefined) => Effect.Effect<User, AuthError.BackendError>
  readonly getUser: (userId: string) => Effect.Effect<Option.Option<User>, AuthError.TransportError>
  readonly guard: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | AuthError.TransportError>
}

/** The outcome attribute of a backend attempt's span. */
const outcomeOf = (exit: Exit.Exit<unknown, AuthError.BackendError>): string => {
  if (Exit.isSuccess(exit)) return "success"
  const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  switch (failure?._tag) {
    case "NoMatch":
      return "no-match"
    case "PermissionDenied":
      return "permission-denied"
    case "TransportError":
      return "transport-error"
    default:
      return "interrupted-or-defect"
  }
}

/** @internal */
export const compile = (backend: AuthBackend.AuthBackend): CompiledBackend => {
  const id = backend.id
  // Django binds credentials to the backend's signature, which rejects unknown keywords:
  // excess keys are an error here for the same reason.
  const options = { onExcessProperty: "error", errors: "first" } as const
  const decodeSync = ParseResult.decodeUnknownEither(backend.credentials, options)
  const decodeAsync = ParseResult.decodeUnknown(backend.credentials, options)
  const unsupported = new AuthError.NoMatch({ backend: id, reason: "unsupported-credentials" })
  const toUnsupported = () => unsupported
  // Credentials Schemas are synchronous in practice: decoding them without a fiber step keeps
  // the fold cheap; an asynchronous Schema falls back to the effectful decoder.
  const decode = (raw: unknown): Effect.Effect<any, AuthError.NoMatch> => {
    const result = decodeSync(raw)
    if (Either.isRight(result)) return Effect.succeed(result.right)
    return result.left._tag === "Forbidden" ? Effect.mapError(decodeAsync(raw), toUnsupported) : Effect.fail(unsupported)
  }
  const guarded = guard(id, backend.policy)
  const spanName = `effect-auth.backend.${id}`
  const spanOptions = { attributes: { "auth.backend": id }, captureStackTrace: false, kind: "internal" } as const
  const attempt = (raw: unknown, request: AuthRequest | undefined): Effect.Effect<User, AuthError.BackendError> =>
    Effect.flatMap(decode(raw), (credentials) => guarded(backend.authenticate(credentials, request)))
  return {
    id,
    backend,
    onTransportError: backend.policy.onTransportError,
    guard: guarded,
    authenticate: (raw, request) =>
      Effect.useSpan(spanName, spanOptions, (span) =>
        Effect.onExit(Effect.withParentSpan(attempt(raw, request), span), (exit) => {
          span.attribute("auth.outcome", outcomeOf(exit))
          if (Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag === "NoMatch") {
            span.attribute("auth.reason", exit.cause.error.reason)
          }
          return Effect.void
        })),
    getUser: (userId) => guarded(backend.getUser(userId))
  }
}
