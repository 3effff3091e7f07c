// What the HTTP layer fails with, and the responses for it. None of them carries request data,
// so each failure and each response is built once.
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import type * as AuthError from "../../AuthError.js"

/** @internal */
export type Failure = HttpApiError.Unauthorized | HttpApiError.Forbidden | HttpApiError.ServiceUnavailable

/** @internal */
export const forbidden: Effect.Effect<never, HttpApiError.Forbidden> = Effect.fail(new HttpApiError.Forbidden())

/** @internal */
export const unavailable = (): HttpApiError.ServiceUnavailable => new HttpApiError.ServiceUnavailable()

/** @internal */
export const serviceUnavailable: Effect.Effect<never, HttpApiError.ServiceUnavailable> = Effect.fail(unavailable())

/** The HTTP failure of a failed `AuthService.authenticate`. @internal */
export const fromAuthenticate = (
  unauthorized: Effect.Effect<never, HttpApiError.Unauthorized>
) =>
(error: AuthError.AuthenticateError): Effect.Effect<never, Failure> => {
  switch (error._tag) {
    case "AuthenticationFailed":
      return unauthorized
    case "PermissionDenied":
      return forbidden
    case "BackendUnavailable":
    case "TransportError":
      return serviceUnavailable
  }
}

/** @internal */
export const isFailure = (u: unknown): u is Failure =>
  u instanceof HttpApiError.Unauthorized || u instanceof HttpApiError.Forbidden ||
  u instanceof HttpApiError.ServiceUnavailable

// Responses are immutable (the 401's challenge is added to a copy), so each is built once.
const responses = {
  401: HttpServerResponse.empty({ status: 401 }),
  403: HttpServerResponse.empty({ status: 403 }),
  // Every 503 is transient (a store outage, a shed login): tell clients when to try again.
  503: HttpServerResponse.empty({ status: 503, headers: { "retry-after": "1" } })
}

/** @internal */
export const toResponse = (failure: Failure): HttpServerResponse.HttpServerResponse =>
  failure._tag === "Unauthorized" ? responses[401] : failure._tag === "Forbidden" ? responses[403] : responses[503]

const succeeded = {
  401: Effect.succeed(responses[401]),
  403: Effect.succeed(responses[403]),
  503: Effect.succeed(responses[503])
}

/** `toResponse` as a prebuilt effect. @internal */
export const respond = (failure: Failure): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  failure._tag === "Unauthorized" ? succeeded[401] : failure._tag === "Forbidden" ? succeeded[403] : succeeded[503]
