/**
 * A port on 127.0.0.1 that refuses connections for as long as the scope lasts.
 *
 * A port that was free a moment ago (bound, then released) is anyone's: another process's
 * `listen(0)` or outgoing connection may take it, and a test that expected ECONNREFUSED there
 * sees an answer, a reset or a hang instead. This one stays bound, never listening: the local end
 * of a connection this helper makes to a server of its own. Connecting to it is refused, and no
 * other socket can listen on it (EADDRINUSE) until the scope's finalizer lets it go.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as net from "node:net"

interface Held {
  readonly port: number
  readonly server: net.Server
  readonly client: net.Socket
  readonly accepted: Set<net.Socket>
}

const release = ({ accepted, client, server }: Held): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    client.destroy()
    for (const socket of accepted) socket.destroy()
    server.close(() => resume(Effect.void))
  })

/** The port: bound (as a connected socket's local end), not listening, until the scope ends. */
export const refusedPort: Effect.Effect<number, never, Scope.Scope> = Effect.acquireRelease(
  Effect.async<Held>((resume) => {
    const accepted = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      accepted.add(socket)
      socket.on("error", () => undefined)
      socket.on("close", () => accepted.delete(socket))
    })
    server.once("error", (error) => resume(Effect.die(error)))
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      // localPort 0: the OS picks the client's port, and it stays bound while the connection lasts
      const client = net.connect({ port, host: "127.0.0.1", localPort: 0 })
      const failed = (error: Error) => {
        server.close()
        resume(Effect.die(error))
      }
      client.once("error", failed)
      client.once("connect", () => {
        client.off("error", failed)
        client.on("error", () => undefined)
        resume(Effect.succeed({ port: client.localPort!, server, client, accepted }))
      })
    })
  }),
  release
).pipe(Effect.map((held) => held.port))
