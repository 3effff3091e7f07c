import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import type { AuthRequest } from "../AuthRequest.js"
import type { User } from "../User.js"
import * as CredentialsDecoder from "./credentialsDecoder.js"
import { guard } from "./policy.js"
import { useValueFreeSpan } from "./tracing.js"

/**
 * A backend prepared once, when the layer is built, for the calls the fold makes: the credentials
 * decoder is compiled, the policy is wrapped around every call, the failure for credentials that
 * do not decode is prebuilt, and the span options are fixed, so nothing of this is rebuilt per
 * request.
 *
 * @internal
 */
export interface CompiledBackend {
  readonly id: string
  readonly backend: AuthBackend.AuthBackend
  readonly onTransportError: AuthBackend.OnTransportError
  /**
   * One attempt, without a span of its own. When the credentials do not decode, or the backend
   * answers with an `Exit` (as `AuthError.failures` and `Effect.succeed` do) and has no policy,
   * the result is that `Exit` itself: the fold reads it without running an effect.
   */
  readonly authenticate: (credentials: DecodeCache, request: AuthRequest | undefined) => Effect.Effect<User, AuthError.BackendError>
  /** The same attempt in a span `effect-auth.backend.<id>` with its outcome (tracing `"attempts"`). */
  readonly authenticateTraced: (
    credentials: DecodeCache,
    request: AuthRequest | undefined
  ) => Effect.Effect<User, AuthError.BackendError>
  readonly getUser: (userId: string) => Effect.Effect<Option.Option<User>, AuthError.TransportError>
  readonly guard: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | AuthError.TransportError>
}

/**
 * The raw credentials of one `authenticate` call and their decodings so far, by Schema: backends
 * that share a credentials Schema (LDAP and the model backend both take `UsernamePassword`) decode
 * the input once per call. Decoding is pure, so sharing the result changes nothing but the cost.
 * One entry is kept inline, since most chains use one or two Schemas.
 *
 * @internal
 */
export class DecodeCache {
  schema: unknown = undefined
  result: Either.Either<unknown, ParseResult.ParseIssue> | undefined = undefined
  more: Map<unknown, Either.Either<unknown, ParseResult.ParseIssue>> | undefined = undefined
  constructor(readonly raw: unknown) {}
}

/** The `auth.outcome` value of an attempt. */
export const attemptOutcome = (exit: Exit.Exit<unknown, AuthError.BackendError>): string => {
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

// Whether a second factor must not be asked: the request is a login's. Read guarded, as `forEvent`
// reads it: a caller's request whose reads throw (a hostile Proxy, a getter) died in the fold.
// Such a request's stage is unknown, and a second factor is asked only where it is known to be no
// login: it is not asked then, so a code is never checked on a login's way.
const mayBeLogin = (request: AuthRequest | undefined): boolean => {
  try {
    return request?.stage === "login"
  } catch {
    return true
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
  const unsupported = AuthError.noMatch(id, "unsupported-credentials")
  const unsupportedError = ((unsupported as Exit.Failure<never, AuthError.NoMatch>).cause as Cause.Fail<AuthError.NoMatch>).error
  const toUnsupported = () => unsupportedError
  const toUnsupportedFailure = () => unsupported
  const schema = backend.credentials
  // Credentials Schemas are synchronous in practice: decoding them without a fiber step keeps
  // the fold cheap; an asynchronous Schema ("Forbidden" in a synchronous decode) falls back to the
  // effectful decoder.
  const direct = CredentialsDecoder.lookup(schema)
  // What a direct decoder refuses, its Schema refuses too (a property test holds them equal), so
  // the refusal needs no Schema run: building a ParseIssue is the dearest part of skipping a
  // backend whose credentials are of another kind, the common case in a mixed chain.
  const refused = Either.left(new ParseResult.Type(schema.ast, undefined, "unsupported credentials"))
  // Credentials that throw when read (a getter that throws, a Proxy whose traps throw, a revoked
  // Proxy) are credentials of no kind this backend takes, not a defect of the fold. The try sits
  // in each decoder, not in a wrapper around both: no extra call on the hot path.
  const decode = direct === undefined
    ? (raw: unknown): Either.Either<unknown, ParseResult.ParseIssue> => {
      try {
        return decodeSync(raw)
      } catch {
        return refused
      }
    }
    : (raw: unknown): Either.Either<unknown, ParseResult.ParseIssue> => {
      try {
        const value = direct(raw)
        return value === CredentialsDecoder.invalid ? refused : Either.right(value)
      } catch {
        return refused
      }
    }
  const decodeCached = (cache: DecodeCache): Either.Either<unknown, ParseResult.ParseIssue> => {
    if (cache.schema === schema) return cache.result!
    const known = cache.more?.get(schema)
    if (known !== undefined) return known
    const result = decode(cache.raw)
    if (cache.schema === undefined) {
      cache.schema = schema
      cache.result = result
    } else {
      ;(cache.more ??= new Map()).set(schema, result)
    }
    return result
  }
  const guarded = guard(id, backend.policy)
  const authenticate = (cache: DecodeCache, request: AuthRequest | undefined): Effect.Effect<User, AuthError.BackendError> => {
    const decoded = decodeCached(cache)
    if (Either.isRight(decoded)) return guarded(backend.authenticate(decoded.right, request))
    // Credentials that do not decode never reach the backend (Django skips a backend whose
    // signature does not bind).
    return decoded.left._tag === "Forbidden"
      ? Effect.flatMap(
        Effect.catchAllDefect(Effect.mapError(Effect.suspend(() => decodeAsync(cache.raw)), toUnsupported), toUnsupportedFailure),
        (credentials) => guarded(backend.authenticate(credentials, request))
      )
      : unsupported
  }
  // A second factor is asked to step a session up, never to log in (see `AuthRequest.stage`):
  // decided here, once, so other backends pay nothing for it.
  const ask = backend.secondFactor === true
    ? (cache: DecodeCache, request: AuthRequest | undefined) =>
      mayBeLogin(request) ? unsupported : authenticate(cache, request)
    : authenticate
  const spanName = `effect-auth.backend.${id}`
  const spanOptions = { attributes: { "auth.backend": id }, captureStackTrace: false, kind: "internal" } as const
  const authenticateTraced = (cache: DecodeCache, request: AuthRequest | undefined) => {
    const attempt = ask(cache, request)
    // A backend skipped because its credentials do not decode gets no span: it never ran.
    if (attempt === unsupported) return attempt
    return useValueFreeSpan(spanName, spanOptions, (span) =>
      Effect.onExit(Effect.withParentSpan(attempt, span), (exit) => {
        span.attribute("auth.outcome", attemptOutcome(exit))
        if (Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag === "NoMatch") {
          span.attribute("auth.reason", exit.cause.error.reason)
        }
        return Effect.void
      }))
  }
  return {
    id,
    backend,
    onTransportError: backend.policy.onTransportError,
    guard: guarded,
    authenticate: ask,
    authenticateTraced,
    getUser: (userId) => guarded(backend.getUser(userId))
  }
}
