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
  readonly authenticate: (credentials: DecodeCache, request: AuthRequest | undefined) => Effect.Effect<User, AuthError.BackendError>
  readonly getUser: (userId: string) => Effect.Effect<Option.Option<User>, AuthError.TransportError>
  readonly guard: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | AuthError.TransportError>
}

/**
 * The raw credentials of one `authenticate` call and their decodings so far, by Schema: backends
 * that share a credentials Schema (LDAP and the model backend both take `UsernamePassword`) decode
 * the input once per call. Decoding is pure, so sharing the result changes nothing but the cost.
 *
 * @internal
 */
export class DecodeCache {
  readonly schemas: Array<unknown> = []
  readonly results: Array<Either.Either<unknown, ParseResult.ParseIssue>> = []
  constructor(readonly raw: unknown) {}
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
export const compile = (backend: AuthBackend.AuthBackend, traced: boolean): CompiledBackend => {
  const id = backend.id
  // Django binds credentials to the backend's signature, which rejects unknown keywords:
  // excess keys are an error here for the same reason.
  const options = { onExcessProperty: "error", errors: "first" } as const
  const decodeSync = ParseResult.decodeUnknownEither(backend.credentials, options)
  const decodeAsync = ParseResult.decodeUnknown(backend.credentials, options)
  const unsupported = new AuthError.NoMatch({ backend: id, reason: "unsupported-credentials" })
  const toUnsupported = () => unsupported
  // Credentials Schemas are synchronous in practice: decoding them without a fiber step keeps
  // the fold cheap; an asynchronous Schema ("Forbidden" in a synchronous decode) falls back to the
  // effectful decoder.
  const schema = backend.credentials
  const decodeCached = (cache: DecodeCache): Either.Either<unknown, ParseResult.ParseIssue> => {
    const index = cache.schemas.indexOf(schema)
    if (index !== -1) return cache.results[index]!
    const result = decodeSync(cache.raw)
    cache.schemas.push(schema)
    cache.results.push(result)
    return result
  }
  const guarded = guard(id, backend.policy)
  const spanName = `effect-auth.backend.${id}`
  const spanOptions = { attributes: { "auth.backend": id }, captureStackTrace: false, kind: "internal" } as const
  const run = (credentials: Effect.Effect<unknown, AuthError.NoMatch>, request: AuthRequest | undefined) =>
    Effect.flatMap(credentials, (decoded) => guarded(backend.authenticate(decoded, request)))
  const traceRun = (credentials: Effect.Effect<unknown, AuthError.NoMatch>, request: AuthRequest | undefined) =>
    Effect.useSpan(spanName, spanOptions, (span) =>
      Effect.onExit(Effect.withParentSpan(run(credentials, request), span), (exit) => {
        span.attribute("auth.outcome", outcomeOf(exit))
        if (Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag === "NoMatch") {
          span.attribute("auth.reason", exit.cause.error.reason)
        }
        return Effect.void
      }))
  const call = traced ? traceRun : run
  return {
    id,
    backend,
    onTransportError: backend.policy.onTransportError,
    guard: guarded,
    // Credentials that do not decode never reach the backend (Django skips a backend whose
    // signature does not bind), so they get no span of their own: the NoMatch still lands in the
    // call's attempts.
    authenticate: (cache, request) => {
      const decoded = decodeCached(cache)
      if (Either.isRight(decoded)) return call(Effect.succeed(decoded.right), request)
      return decoded.left._tag === "Forbidden"
        ? call(Effect.mapError(decodeAsync(cache.raw), toUnsupported), request)
        : Effect.fail(unsupported)
    },
    getUser: (userId) => guarded(backend.getUser(userId))
  }
}
