import type { AuthRequest } from "../AuthRequest.js"

/**
 * A request that holds more than it shows (the HTTP layer's view keeps the transport's request: its
 * socket, every header, a body already read) answers this with a plain copy of what it shows.
 *
 * @internal
 */
export const detach: unique symbol = Symbol.for("effect-auth/AuthRequest/detach")

/**
 * The request an event carries: a copy of what the request shows, never what it holds. An event
 * outlives its request in every subscriber's queue; holding the transport's request there kept
 * each failed login's socket state and body alive (42 KiB an event for a 16 KB login body, while
 * a slow audit subscriber fell behind a flood of them).
 *
 * @internal
 */
export const forEvent = (request: AuthRequest | undefined): AuthRequest | undefined => {
  // Total: a caller's request whose reads throw (a hostile Proxy) is carried as it was given.
  try {
    const copy = (request as { readonly [detach]?: unknown } | undefined)?.[detach]
    return typeof copy === "function" ? copy.call(request) : request
  } catch {
    return request
  }
}
