// oauth4webapi does the protocol; every request it makes goes through @effect/platform's
// HttpClient (its `customFetch` hook), bounded by the backend's timeout, and every failure is
// sorted into what the fold needs: the provider could not be reached or answered garbage
// (TransportError), or it refused what it was shown (NoMatch).
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { identity } from "effect/Function"
import * as Runtime from "effect/Runtime"
import * as oauth from "oauth4webapi"
import * as BoundedBody from "../http/boundedBody.js"
import * as PeerClient from "../http/peerClient.js"

/**
 * A failure of the transport itself (no answer, timeout, refused connection, a body past its
 * ceiling, which comes described already). @internal
 */
export class Unreachable extends Error {
  constructor(readonly url: string, cause: unknown) {
    super(
      typeof cause === "string"
        ? cause
        : `${new URL(url).origin} did not answer: ${cause instanceof Error ? cause.message : String(cause)}`
    )
  }
}

/** A `fetch` for oauth4webapi's `customFetch`, made of the HttpClient in context. @internal */
export const customFetch = (timeout: Duration.DurationInput) =>
  Effect.map(
    // oauth4webapi asks for `redirect: "manual"`: every answer must come from the provider's own
    // URL (a discovery document that redirected could name another origin's token endpoint and
    // keys). The app's client is made to keep that promise.
    Effect.zip(Effect.runtime<never>(), PeerClient.make),
    ([runtime, client]) => {
      const run = Runtime.runPromise(runtime)
      return (url: string, options: oauth.CustomFetchOptions<string, unknown>): Promise<Response> =>
        run(
          Effect.gen(function*() {
            let request = HttpClientRequest.make(options.method as "GET")(url).pipe(
              HttpClientRequest.setHeaders(options.headers)
            )
            if (options.body !== undefined && options.body !== null) {
              request = HttpClientRequest.bodyText(
                request,
                String(options.body),
                options.headers["content-type"] ?? "application/x-www-form-urlencoded"
              )
            }
            const response = yield* client.execute(request)
            // A provider's answer (a discovery document, a token, a key set) has a ceiling.
            const body = yield* BoundedBody.bytes(response, BoundedBody.defaultMaxBytes, new URL(url).origin)
            return new Response(response.status === 204 ? null : body, { status: response.status, headers: response.headers })
          }).pipe(
            Effect.scoped,
            // A provider that never answers must not hold the login: fail at the timeout, and let
            // the request's interruption finish in the background.
            Effect.disconnect,
            Effect.timeout(timeout),
            Effect.catchAll((cause) => Effect.fail(new Unreachable(url, cause))),
            Effect.either
          )
        ).then(
          // oauth4webapi sees our Unreachable itself, not the FiberFailure runPromise would throw.
          Either.getOrThrowWith(identity)
        )
    }
  )


/** What went wrong, for the fold: the provider is down or broken, or it refused. @internal */
export type Classified =
  | { readonly _tag: "Transport"; readonly message: string }
  | { readonly _tag: "Refused"; readonly reason: "invalid-credentials" | "expired-credentials"; readonly message: string }

// oauth4webapi's PARSE_ERROR and INVALID_RESPONSE each name two kinds of failure. The provider's
// answer is not the protocol's: a body that does not parse as JSON, a discovery, token, userinfo or
// key set body that is no JSON object or has a field missing or of another type (`token_type: 5`,
// a token answer with no `id_token`); the provider is broken, as with a 500. Or this login's own
// ID token or callback fails a check (a JWT that does not parse, a claim missing or of another
// type, a bad signature, the callback's parameters): a refusal. An invalid response is the
// answer's when its cause is the body as parsed (`{ body }`, the one shape oauth4webapi gives
// those; a JWT's failures carry its claims, header or text). The two parse errors carry the same
// kind of cause (JSON.parse's), so only the message tells them apart: a JWT's names it.
const isMalformedAnswer = (error: oauth.OperationProcessingError): boolean => {
  if (error.code === oauth.PARSE_ERROR) return !/\bJWT\b/.test(error.message)
  if (error.code !== oauth.INVALID_RESPONSE) return false
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && Object.hasOwn(cause, "body")
}

/** @internal */
export const classify = (error: unknown): Classified => {
  let current: unknown = error
  for (let i = 0; i < 5 && current !== undefined && current !== null; i++) {
    if (current instanceof Unreachable) return { _tag: "Transport", message: current.message }
    current = (current as { cause?: unknown }).cause
  }
  if (error instanceof oauth.ResponseBodyError) {
    // The provider answered with an OAuth error: a 5xx is the provider's trouble, the rest
    // (invalid_grant for a replayed or stolen code, invalid_client) refuses this login.
    return error.status >= 500
      ? { _tag: "Transport", message: `the provider answered ${error.status} ${error.error}` }
      : { _tag: "Refused", reason: "invalid-credentials", message: `the provider refused: ${error.error}` }
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    // RFC 6749 5.2: a client that authenticated with the Authorization header (Basic, as here)
    // is refused with a 401 and a challenge (invalid_client): the login is refused like any
    // other OAuth error; a 5xx is the provider's trouble.
    const named = error.cause.find((challenge) => challenge.parameters.error !== undefined)?.parameters.error
    return error.status >= 500
      ? { _tag: "Transport", message: `the provider answered ${error.status}` }
      : { _tag: "Refused", reason: "invalid-credentials", message: `the provider refused: ${named ?? error.status}` }
  }
  if (error instanceof oauth.AuthorizationResponseError) {
    // The callback's own `error` (RFC 6749 4.1.2.1), read once its state matched: `server_error`
    // and `temporarily_unavailable` are the provider saying it failed (the redirect's stand-in for
    // a 500 and a 503), so the login may well be valid; `access_denied` and the others refuse it.
    return error.error === "server_error" || error.error === "temporarily_unavailable"
      ? { _tag: "Transport", message: `the provider answered ${error.error}` }
      : { _tag: "Refused", reason: "invalid-credentials", message: `the provider answered ${error.error}` }
  }
  if (error instanceof oauth.OperationProcessingError) {
    const code = error.code ?? ""
    // A body that is not what the protocol says: the provider is broken (or not the provider).
    // So is a discovery document without a usable token endpoint or key set (oauth4webapi checks
    // an endpoint only when it is used): every login would be refused as bad credentials, and
    // charged to the client's address by a lockout, until the document is fixed.
    if (
      code === oauth.RESPONSE_IS_NOT_JSON || code === oauth.RESPONSE_IS_NOT_CONFORM ||
      code === oauth.MISSING_SERVER_METADATA || code === oauth.INVALID_SERVER_METADATA || isMalformedAnswer(error)
    ) {
      return { _tag: "Transport", message: error.message }
    }
    // A past `exp` (or `auth_time`/`iat` too old for max_age) is expired; a future `nbf` is not
    // yet valid: invalid, as JwtBackend answers it.
    if (code === oauth.JWT_TIMESTAMP_CHECK) {
      const claim = (error.cause as { claim?: unknown } | undefined)?.claim
      return { _tag: "Refused", reason: claim === "nbf" ? "invalid-credentials" : "expired-credentials", message: error.message }
    }
    return { _tag: "Refused", reason: "invalid-credentials", message: error.message }
  }
  if (error instanceof oauth.UnsupportedOperationError) {
    // What oauth4webapi does not support is the provider's when it is a key of its key set (a JWK
    // of an unknown type, a CryptoKey it cannot use) or its token answer (an unknown token_type);
    // in the ID token (an HMAC or "none" alg the discovery lists, a `crit` header, an encrypted
    // token) it is this token's: refused as any ID token that does not verify.
    const cause: unknown = error.cause
    const providers = cause !== null && typeof cause === "object" &&
      ("body" in cause || "kty" in cause || ("algorithm" in cause && "usages" in cause))
    return providers
      ? { _tag: "Transport", message: error.message }
      : { _tag: "Refused", reason: "invalid-credentials", message: error.message }
  }
  return { _tag: "Transport", message: error instanceof Error ? error.message : String(error) }
}
