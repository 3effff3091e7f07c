/**
 * What a backend may know of the request that carries the credentials.
 *
 * Django hands every backend the `HttpRequest`; effect-auth hands it this small, transport-neutral
 * record (the HTTP middleware fills it from `HttpServerRequest`), so backends stay testable without
 * a server and lockouts can key on the client address.
 *
 * @since 0.1.0
 */

/**
 * @example
 * ```ts
 * import type { AuthRequest } from "effect-auth"
 *
 * const request: AuthRequest.AuthRequest = {
 *   method: "POST",
 *   url: "/login",
 *   remoteAddress: "127.0.0.1",
 *   headers: { "user-agent": "curl/8" }
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthRequest {
  readonly method?: string | undefined
  /**
   * The path and query. From the HTTP middleware, the value of every query parameter a request
   * source reads a credential from (`RequestSource.make({ query })`) is masked:
   * `/events?access_token=********************`.
   */
  readonly url?: string | undefined
  /** The client address, as the server or a trusted proxy reports it. */
  readonly remoteAddress?: string | undefined
  /** Lower-case header names. Never log `authorization` or `cookie`. */
  readonly headers?: Readonly<Record<string, string | undefined>> | undefined
  /**
   * The transport's own request object, where a caller hands it over. The HTTP middleware leaves
   * it out (events carry this record, and that object's headers hold the secrets): its backends
   * get `method`, `url` (secret query parameters masked), `remoteAddress` and `headers` without
   * the ones that carry credentials.
   */
  readonly raw?: unknown
  /**
   * What the call is for, as the HTTP middleware says it: `"step-up"` for `HttpAuth.stepUp`,
   * `"login"` for every other authentication it makes (`HttpAuth.login`, a request's own
   * credentials). At a `"login"` a second-factor backend (`AuthBackend.secondFactor`, as
   * `TotpBackend`) is not asked: its credentials answer `NoMatch("unsupported-credentials")`,
   * since a code alone proves nothing, and asking would spend the code and count against the
   * user's throttle. Unset (a call of your own), every backend is asked. A request whose `stage`
   * throws when read (an untyped caller's Proxy) counts as a login's.
   */
  readonly stage?: "login" | "step-up" | undefined
}
