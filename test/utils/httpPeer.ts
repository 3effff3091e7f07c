/**
 * A real HTTP server on 127.0.0.1 and a random port, for the HttpBackend and JwtBackend suites.
 * Started in a scope and closed (with every open connection) when the scope ends. It records every
 * request so that tests can count upstream calls.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { refusedPort } from "./refusedPort.js"

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

export interface Reply {
  readonly json: (status: number, body: unknown) => void
  readonly text: (status: number, body: string, contentType?: string) => void
  /** Closes the socket without an answer (a connection reset as the client sees it). */
  readonly reset: () => void
  readonly raw: http.ServerResponse
}

export type Handler = (request: RecordedRequest, reply: Reply) => void | Promise<void>

export interface Peer {
  readonly url: string
  readonly requests: ReadonlyArray<RecordedRequest>
  readonly count: (predicate?: (request: RecordedRequest) => boolean) => number
  /** Replaces the handler (e.g. to simulate a rotation or an outage). */
  readonly setHandler: (handler: Handler) => void
}

export const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

export const start = (initial: Handler): Effect.Effect<Peer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: http.Server; peer: Peer }>((resume) => {
      const requests: Array<RecordedRequest> = []
      let handler = initial
      const server = http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          const url = new URL(req.url ?? "/", "http://127.0.0.1")
          const recorded: RecordedRequest = {
            method: req.method ?? "GET",
            path: url.pathname,
            query: url.searchParams,
            headers: req.headers,
            body: Buffer.concat(chunks).toString("utf8")
          }
          requests.push(recorded)
          const reply: Reply = {
            json: (status, body) => {
              res.writeHead(status, { "content-type": "application/json" })
              res.end(JSON.stringify(body))
            },
            text: (status, body, contentType = "application/json") => {
              res.writeHead(status, { "content-type": contentType })
              res.end(body)
            },
            reset: () => {
              req.socket.destroy()
            },
            raw: res
          }
          Promise.resolve(handler(recorded, reply)).catch(() => {
            if (!res.headersSent) res.writeHead(500)
            res.end()
          })
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({
          server,
          peer: {
            url: `http://127.0.0.1:${port}`,
            requests,
            count: (predicate) => predicate === undefined ? requests.length : requests.filter(predicate).length,
            setHandler: (next) => {
              handler = next
            }
          }
        }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ peer }) => peer))

/**
 * An `http://` URL on 127.0.0.1 whose port refuses connections until the scope ends (held bound,
 * so no other process can start listening there meanwhile: see refusedPort.ts).
 */
export const closedPort: Effect.Effect<string, never, Scope.Scope> = Effect.map(
  refusedPort,
  (port) => `http://127.0.0.1:${port}`
)
