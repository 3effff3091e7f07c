// What the HTTP layer fails with, and the responses for it. None of them carries request data,
// so each failure and each response is built once (but for 429, whose Retry-After varies).
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as AuthError from "../../AuthError.js"

/**
 * 429: the attempt was refused by a lockout. `retryAfter` is in whole seconds (0 when unknown,
 * as for a failure decoded from a peer); the `Retry-After` header is added to the response by the
 * pre-response handler the failing effect installs, and by `toResponse`.
 *
 * @internal
 */
export class TooManyRequests extends HttpApiSchema.EmptyError<TooManyRequests>()({
  tag: "TooManyRequests",
  status: 429
}) {
  retryAfter = 0
}

/** @internal */
export type Failure =
  | HttpApiError.Unauthorized
  | HttpApiError.Forbidden
  | HttpApiError.ServiceUnavailable
  | TooManyRequests

/**
 * 503. Every one is transient (a store outage, a shed login), so the response says when to try
 * again: `Retry-After: 1`, added by a pre-response handler for the `HttpApi` form (whose error
 * encoding builds the response) and by `toResponse` for the router form.
 *
 * @internal
 */
export const serviceUnavailable: Effect.Effect<never, HttpApiError.ServiceUnavailable> = Effect.zipRight(
  HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.succeed(response.status === 503 ? HttpServerResponse.setHeader(response, "retry-after", "1") : response)
  ),
  Effect.fail(new HttpApiError.ServiceUnavailable())
)

/**
 * A session store's (or a backend's) failure as {@link serviceUnavailable}'s 503, `Retry-After`
 * included: the store's outage is as transient as a backend's.
 *
 * @internal
 */
export const unavailableOnFailure = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, HttpApiError.ServiceUnavailable, R> => Effect.catchAll(effect, () => serviceUnavailable)

/** Whole seconds, at least 1: `Retry-After: 0` would invite an immediate retry. @internal */
export const retryAfterSeconds = (retryAfter: Duration.Duration): number =>
  Math.max(1, Math.ceil(Duration.toMillis(retryAfter) / 1000))

const withRetryAfter = (response: HttpServerResponse.HttpServerResponse, seconds: number) =>
  HttpServerResponse.setHeader(response, "retry-after", String(seconds))

/** A 429 failure whose response carries `Retry-After`. @internal */
export const tooManyRequests = (retryAfter: Duration.Duration): Effect.Effect<never, TooManyRequests> => {
  const seconds = retryAfterSeconds(retryAfter)
  const failure = new TooManyRequests()
  failure.retryAfter = seconds
  return Effect.zipRight(
    HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.succeed(response.status === 429 ? withRetryAfter(response, seconds) : response)
    ),
    Effect.fail(failure)
  )
}

/** The HTTP failure of a failed `AuthService.authenticate`. @internal */
export const fromAuthenticate = (
  unauthorized: Effect.Effect<never, HttpApiError.Unauthorized>
) =>
(error: AuthError.AuthenticateError): Effect.Effect<never, Failure> => {
  switch (error._tag) {
    // A backend's PermissionDenied answers as a failed login, as Django's authenticate() returns
    // None for it: a 403 would tell whoever holds a denied account's password that it is right
    // (LDAP checks the deny group only after the bind succeeded), and that the account exists.
    // The reason stays in the LoginFailed event and the span.
    case "AuthenticationFailed":
    case "PermissionDenied":
      return unauthorized
    case "LockedOut":
      return tooManyRequests(error.retryAfter)
    case "BackendUnavailable":
    case "TransportError":
      return serviceUnavailable
  }
}

/**
 * The HTTP failure of a failed step-up: as {@link fromAuthenticate}, but an attempt a second
 * factor's throttle refused unchecked (`NoMatch("throttled")`) is a 429 with `Retry-After`, as a
 * lockout's is: the user is told to wait, not that the code was wrong (django-otp's
 * "verification temporarily disabled"). The wait is the shortest of the throttled attempts'.
 *
 * @internal
 */
export const fromStepUp = (
  unauthorized: Effect.Effect<never, HttpApiError.Unauthorized>
) => {
  const otherwise = fromAuthenticate(unauthorized)
  return (error: AuthError.AuthenticateError): Effect.Effect<never, Failure> => {
    if (error._tag !== "AuthenticationFailed") return otherwise(error)
    let wait: Duration.Duration | undefined
    for (const attempt of error.attempts) {
      if (attempt.reason !== "throttled") continue
      const after = attempt.retryAfter ?? Duration.seconds(1)
      if (wait === undefined || Duration.lessThan(after, wait)) wait = after
    }
    return wait === undefined ? otherwise(error) : tooManyRequests(wait)
  }
}

/** @internal */
export const isFailure = (u: unknown): u is Failure =>
  u instanceof HttpApiError.Unauthorized || u instanceof HttpApiError.Forbidden ||
  u instanceof HttpApiError.ServiceUnavailable || u instanceof TooManyRequests

// Responses are immutable (the 401's challenge is added to a copy), so each is built once.
const responses = {
  401: HttpServerResponse.empty({ status: 401 }),
  403: HttpServerResponse.empty({ status: 403 }),
  429: HttpServerResponse.empty({ status: 429 }),
  // Every 503 is transient (a store outage, a shed login): tell clients when to try again.
  503: HttpServerResponse.empty({ status: 503, headers: { "retry-after": "1" } })
}

/** @internal */
export const toResponse = (failure: Failure): HttpServerResponse.HttpServerResponse => {
  switch (failure._tag) {
    case "Unauthorized":
      return responses[401]
    case "Forbidden":
      return responses[403]
    case "TooManyRequests":
      return failure.retryAfter > 0 ? withRetryAfter(responses[429], failure.retryAfter) : responses[429]
    case "ServiceUnavailable":
      return responses[503]
  }
}

const succeeded = {
  401: Effect.succeed(responses[401]),
  403: Effect.succeed(responses[403]),
  503: Effect.succeed(responses[503])
}

/** `toResponse` as a prebuilt effect. @internal */
export const respond = (failure: Failure): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  failure._tag === "Unauthorized"
    ? succeeded[401]
    : failure._tag === "Forbidden"
    ? succeeded[403]
    : failure._tag === "ServiceUnavailable"
    ? succeeded[503]
    : Effect.succeed(toResponse(failure))
