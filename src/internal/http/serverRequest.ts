// What backends and events learn about an HTTP request.
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Option from "effect/Option"
import type { AuthRequest } from "../../AuthRequest.js"
import * as IpAddress from "../ipAddress.js"

/**
 * The request as backends and `AuthEvents` see it: method, URL, client address (proxy-aware, see
 * `IpAddress.clientAddress`) and headers,
 * minus every header that carries a credential (`authorization`, `cookie`, the API-key and CSRF
 * headers, ...). The transport's request object is left out (`raw`), because events carry this
 * record and its headers hold the secrets.
 *
 * @internal
 */
export const toAuthRequest = (
  request: HttpServerRequest.HttpServerRequest,
  hidden: ReadonlySet<string>,
  trustedProxies: ReadonlyArray<IpAddress.Range> = []
): AuthRequest => {
  // Most backends never look at the headers: copy them only when asked.
  let headers: Record<string, string | undefined> | undefined
  return {
    method: request.method,
    url: request.url,
    remoteAddress: IpAddress.clientAddress(
      Option.getOrUndefined(request.remoteAddress),
      trustedProxies.length === 0 ? undefined : request.headers["x-forwarded-for"],
      trustedProxies
    ),
    get headers() {
      // fromEntries defines own properties: a client's "__proto__" header stays a plain key
      headers ??= Object.fromEntries(Object.entries(request.headers).filter(([name]) => !hidden.has(name)))
      return headers
    }
  }
}

/** Headers never handed to backends or events. @internal */
export const credentialHeaders: ReadonlyArray<string> = ["authorization", "proxy-authorization", "cookie"]
