/**
 * A `node:http` server for `NodeHttpServer.layer` whose request fibers always end, even when the
 * client goes away while the answer is being written.
 *
 * `@effect/platform-node` (0.108) writes a response body with `response.end(body, callback)` and
 * resumes the request's fiber in that callback, which Node calls on `finish` only. When the
 * client closes its connection after its request was read but before the answer was flushed (in
 * the same turn of the event loop in which the handler answers after awaiting I/O: a password
 * hash, a database write, a peer's reply), `finish` never comes, and the platform's `close`
 * listener does not interrupt a response whose `end` was already called: the fiber waits for ever,
 * holding the request, the response and their context (about 30 KB). A login answers after
 * exactly such I/O, so a client that sends valid credentials and hangs up at once leaks one fiber
 * per try; a bare platform app whose handler awaits an asynchronous PBKDF2 loses 265 fibers of 3000
 * aborted requests the same way.
 *
 * `createServer` answers the platform's callback on `close` too, once: a fiber whose client has gone
 * ends as the answered ones do. Use it where `node:http`'s `createServer` would go.
 *
 * @example
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { NodeServer } from "effect-auth"
 *
 * const ServerLive = NodeHttpServer.layer(NodeServer.createServer, { port: 3000 })
 * ```
 *
 * @since 0.4.0
 */
import * as http from "node:http"

type End = http.ServerResponse["end"]

// Node calls `end`'s callback on `finish` only; `close` always comes, after `finish` or instead of it.
const settleEndOnClose = (_request: http.IncomingMessage, response: http.ServerResponse): void => {
  const end: End = response.end
  response.end = function(this: http.ServerResponse, ...args: Array<unknown>) {
    const last = args.length - 1
    const callback = args[last]
    if (typeof callback === "function") {
      let settled = false
      const once = (...results: Array<unknown>) => {
        if (settled) return
        settled = true
        callback(...results)
      }
      args[last] = once
      this.once("close", () => once())
    }
    return (end as (...args: Array<unknown>) => http.ServerResponse).apply(this, args)
  } as End
}

// (reading it is what makes Node keep it)
const readPeer = (socket: { readonly remoteAddress?: string | undefined }): void => {
  void socket.remoteAddress
}

/**
 * `node:http`'s `createServer`, with every response's `end` callback also called when the
 * connection closes before the answer was flushed (see the module's documentation).
 *
 * @example
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { NodeServer } from "effect-auth"
 *
 * const ServerLive = NodeHttpServer.layer(() => NodeServer.createServer({ keepAliveTimeout: 5_000 }), { port: 3000 })
 * ```
 *
 * @since 0.4.0
 * @category constructors
 */
export const createServer = (options: http.ServerOptions = {}): http.Server => {
  const server = http.createServer(options)
  // Registered before the platform's own `request` listener, so it runs first for every request.
  server.on("request", settleEndOnClose)
  // The peer's address read as the connection is accepted: Node forgets it once the socket is
  // destroyed unless it was read, and a client that resets the connection right after sending a
  // login would otherwise leave the lockout no address to deny or lock.
  server.on("connection", readPeer)
  return server
}
