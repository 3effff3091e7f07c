import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Predicate from "effect/Predicate"

/**
 * Where a request went, as `METHOD origin/path`. The query string and any user info are left
 * out: an app's request builder may put a secret there, and the body is never looked at.
 *
 * @internal
 */
export const describeRequest = (request: HttpClientRequest.HttpClientRequest): string => {
  try {
    const url = new URL(request.url)
    return `${request.method} ${url.origin}${url.pathname}`
  } catch {
    return `${request.method} <invalid url>`
  }
}

// The innermost `code` (ECONNRESET, UND_ERR_SOCKET, ...) or error name: enough to tell a reset
// from a refusal, without copying messages that some clients fill with request details.
const rootCode = (cause: unknown): string | undefined => {
  let current: unknown = cause
  let found: string | undefined
  for (let depth = 0; depth < 5 && Predicate.isObject(current); depth++) {
    if (Predicate.hasProperty(current, "code") && Predicate.isString(current.code)) found = current.code
    else if (found === undefined && current instanceof Error && current.name !== "Error") found = current.name
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  return found
}

/**
 * A secret-free description of an `HttpClientError`. The error itself holds the request (and so
 * its body, where the password is): it must never become the `cause` of a `TransportError`.
 *
 * @internal
 */
export const describeClientError = (error: HttpClientError.HttpClientError): string => {
  const where = describeRequest(error.request)
  const code = rootCode(error.cause)
  const suffix = code === undefined ? "" : ` (${code})`
  if (error._tag === "RequestError") {
    switch (error.reason) {
      case "Transport":
        return `${where}: connection failed${suffix}`
      case "Encode":
        return `${where}: request body could not be encoded`
      case "InvalidUrl":
        return `${where}: invalid URL`
    }
  }
  switch (error.reason) {
    case "StatusCode":
      return `${where}: unexpected status ${error.response.status}`
    case "EmptyBody":
      return `${where}: empty response body (status ${error.response.status})`
    case "Decode":
      return `${where}: response body could not be read (status ${error.response.status})${suffix}`
  }
}
