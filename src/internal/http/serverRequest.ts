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
  trustedProxies: ReadonlyArray<IpAddress.Range> = [],
  stage: "login" | "step-up" = "login"
): AuthRequest =>
  stage === "login" ? new RequestView(request, hidden, trustedProxies) : new StepUpView(request, hidden, trustedProxies)

// A class rather than an object literal with a getter: the literal's accessor made every request
// allocate a closure and a dictionary-mode object (1.8 µs of server CPU per request in a profile).
// The fields are read from the transport's request when asked; only `headers` is derived.
class RequestView implements AuthRequest {
  readonly #request: HttpServerRequest.HttpServerRequest
  readonly #hidden: ReadonlySet<string>
  readonly #trustedProxies: ReadonlyArray<IpAddress.Range>
  #headers: Record<string, string | undefined> | undefined
  readonly method: string
  readonly url: string
  constructor(
    request: HttpServerRequest.HttpServerRequest,
    hidden: ReadonlySet<string>,
    trustedProxies: ReadonlyArray<IpAddress.Range>
  ) {
    this.#request = request
    this.#hidden = hidden
    this.#trustedProxies = trustedProxies
    this.method = request.method
    this.url = request.url
  }
  // On the prototype: the requests of every route but the step-up pay nothing for it.
  get stage(): "login" | "step-up" {
    return "login"
  }
  // The client's address: the peer's, or with trusted proxies the rightmost X-Forwarded-For hop
  // that is not one of them.
  get remoteAddress(): string | undefined {
    const proxies = this.#trustedProxies
    return IpAddress.clientAddress(
      Option.getOrUndefined(this.#request.remoteAddress),
      proxies.length === 0 ? undefined : this.#request.headers["x-forwarded-for"],
      proxies
    )
  }
  // Most backends never look at the headers: copy them only when asked.
  get headers(): Record<string, string | undefined> {
    // fromEntries defines own properties: a client's "__proto__" header stays a plain key
    return (this.#headers ??= Object.fromEntries(
      Object.entries(this.#request.headers).filter(([name]) => !this.#hidden.has(name))
    ))
  }
  toJSON(): unknown {
    return { method: this.method, url: this.url, remoteAddress: this.remoteAddress, headers: this.headers, stage: this.stage }
  }
}

class StepUpView extends RequestView {
  override get stage(): "login" | "step-up" {
    return "step-up"
  }
}

/** Headers never handed to backends or events. @internal */
export const credentialHeaders: ReadonlyArray<string> = ["authorization", "proxy-authorization", "cookie"]
