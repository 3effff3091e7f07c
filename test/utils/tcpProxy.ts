/**
 * A TCP proxy on 127.0.0.1 in front of a real server (PostgreSQL, Redis) that a test can cut, to
 * take the server away from a client mid-life. Closed with every connection when the scope ends.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as net from "node:net"
import { refusedPort } from "./refusedPort.js"

export interface Proxy {
  readonly port: number
  /** Stops listening and drops every open connection. */
  readonly cut: () => void
  /**
   * Stops forwarding on every connection without closing any (a partition, a server that froze):
   * clients see neither data nor a reset.
   */
  readonly freeze: () => void
}

export const tcpProxy = (host: string, port: number): Effect.Effect<Proxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<Proxy>((resume) => {
      const sockets = new Set<net.Socket>()
      const server = net.createServer((client) => {
        const upstream = net.connect(port, host)
        sockets.add(client)
        sockets.add(upstream)
        const close = () => {
          client.destroy()
          upstream.destroy()
        }
        client.on("error", close).on("close", close)
        upstream.on("error", close).on("close", close)
        if (frozen) return
        client.pipe(upstream)
        upstream.pipe(client)
      })
      let frozen = false
      const cut = () => {
        server.close()
        for (const socket of sockets) socket.destroy()
      }
      const freeze = () => {
        frozen = true
        for (const socket of sockets) {
          socket.unpipe()
          socket.pause()
        }
      }
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({ port: (server.address() as net.AddressInfo).port, cut, freeze })))
    }),
    (p) => Effect.sync(p.cut)
  )

/** `url` pointed at 127.0.0.1:`port`: a proxy, or a port where nothing listens. */
export const withPort = (url: string, port: number): string => {
  const u = new URL(url)
  u.hostname = "127.0.0.1"
  u.port = String(port)
  return u.toString()
}

/** A proxy in front of the server at `url` (`defaultPort` when the URL names none), and the URL through it. */
export const urlProxy = (
  url: string,
  defaultPort: number
): Effect.Effect<Proxy & { readonly url: string }, never, Scope.Scope> =>
  Effect.suspend(() => {
    const target = new URL(url)
    return Effect.map(
      tcpProxy(target.hostname, Number(target.port || defaultPort)),
      (proxy) => ({ ...proxy, url: withPort(url, proxy.port) })
    )
  })

/**
 * A port on 127.0.0.1 that refuses connections until the scope ends (held bound, so no other
 * process can start listening there meanwhile: see refusedPort.ts).
 */
export const closedPort: Effect.Effect<number, never, Scope.Scope> = refusedPort
