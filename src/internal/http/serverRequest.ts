// What backends and events learn about an HTTP request.
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Option from "effect/Option"
import type { AuthRequest } from "../../AuthRequest.js"
import { CLEANSED_SUBSTITUTE } from "../../Credentials.js"
import * as IpAddress from "../ipAddress.js"
import { detach } from "../eventRequest.js"

/**
 * What a request's view leaves out: the headers that carry a credential (lower-case) and the query
 * parameters a source reads one from (lower-case, as `URLSearchParams` decodes them), whose values
 * are masked in the URL.
 *
 * @internal
 */
export interface Hidden {
  readonly headers: ReadonlySet<string>
  readonly query: ReadonlySet<string>
}

/**
 * The request as backends and `AuthEvents` see it: method, URL, client address (proxy-aware, see
 * `IpAddress.clientAddress`) and headers,
 * minus every header that carries a credential (`authorization`, `cookie`, the API-key and CSRF
 * headers, ...), and with the value of every query parameter that carries one masked in the URL.
 * The transport's request object is left out (`raw`), because events carry this record and its
 * headers hold the secrets.
 *
 * @internal
 */
export const toAuthRequest = (
  request: HttpServerRequest.HttpServerRequest,
  hidden: Hidden,
  trustedProxies: ReadonlyArray<IpAddress.Range> = [],
  stage: "login" | "step-up" = "login"
): AuthRequest =>
  stage === "login" ? new RequestView(request, hidden, trustedProxies) : new StepUpView(request, hidden, trustedProxies)

/**
 * Whether the request's connection is gone with its peer unread: a client that reset the
 * connection right after sending. Node forgets a socket's address once it is destroyed unless it
 * was read before, so nothing could key, deny or lock such an attempt by its address (`Lockout`'s
 * `deny`, `by: "ip"`), and its backends would run for nobody. Asked before every authentication,
 * it is also what reads the peer in time: once read, Node keeps it for the lockout's later read,
 * whatever the client does then. Only a Node request can tell; any other is never gone.
 *
 * @internal
 */
export const connectionGone = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const socket = (request.source as { readonly socket?: NodeSocket } | null)?.socket
  // A TCP socket (one with a local address) whose peer the kernel no longer knows: reset, though
  // Node may not have seen the reset yet (the socket still reads as open). A Unix socket has no
  // address at either end, and is not gone; a destroyed socket of either kind is.
  return socket !== undefined && socket.remoteAddress === undefined &&
    (socket.destroyed === true || socket.localAddress !== undefined)
}
interface NodeSocket {
  readonly destroyed?: unknown
  readonly localAddress?: unknown
  readonly remoteAddress?: unknown
}

// The first name of `encoded` (one `name` of `name=value`) as `URLSearchParams` decodes it.
const decodedName = (encoded: string): string | undefined => {
  for (const [name] of new URLSearchParams(encoded)) return name
  return undefined
}

/**
 * `url` with the value of every query parameter named in `names` (lower-case, compared with the
 * decoded name in lower case) replaced by Django's cleansed substitute; the URL itself when none is
 * there. Every parameter of that name is masked, however often it is repeated, however its name
 * is percent-encoded.
 *
 * @internal
 */
export const maskQuery = (url: string, names: ReadonlySet<string>): string => {
  if (names.size === 0) return url
  const at = url.indexOf("?")
  if (at < 0) return url
  const parts = url.slice(at + 1).split("&")
  let masked = false
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!
    const eq = part.indexOf("=")
    if (eq <= 0) continue
    const name = part.slice(0, eq)
    if (names.has((decodedName(name) ?? name).toLowerCase())) {
      parts[i] = `${name}=${CLEANSED_SUBSTITUTE}`
      masked = true
    }
  }
  return masked ? `${url.slice(0, at + 1)}${parts.join("&")}` : url
}

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
    hidden: Hidden,
    trustedProxies: ReadonlyArray<IpAddress.Range>
  ) {
    this.#request = request
    this.#hidden = hidden.headers
    this.#trustedProxies = trustedProxies
    this.method = request.method
    // Sources that read no query parameter (the built-in ones) leave the URL as it is, unparsed.
    this.url = hidden.query.size === 0 ? request.url : maskQuery(request.url, hidden.query)
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
  [detach](): AuthRequest {
    return { method: this.method, url: this.url, remoteAddress: this.remoteAddress, headers: this.headers, stage: this.stage }
  }
  toJSON(): unknown {
    return this[detach]()
  }
}

class StepUpView extends RequestView {
  override get stage(): "login" | "step-up" {
    return "step-up"
  }
}

/** Headers never handed to backends or events. @internal */
export const credentialHeaders: ReadonlyArray<string> = ["authorization", "proxy-authorization", "cookie"]
