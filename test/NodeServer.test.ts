// Request fibers whose client hangs up while the answer is written: @effect/platform-node resumes
// them on the response's `finish`, which never comes then. NodeServer.createServer ends them on
// `close` too. The handler answers after awaiting I/O (an asynchronous PBKDF2, as a login's hash),
// which is what opens the window: the client's FIN is read in the same turn of the event loop.
import { describe, expect, it } from "@effect/vitest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect, Supervisor } from "effect"
import { pbkdf2 } from "node:crypto"
import * as net from "node:net"
import * as NodeServer from "../src/http/NodeServer.js"

class Counting extends Supervisor.AbstractSupervisor<void> {
  live = 0
  value = Effect.void
  override onStart() {
    this.live++
  }
  override onEnd() {
    this.live--
  }
}

const app = HttpRouter.empty.pipe(HttpRouter.post(
  "/login",
  Effect.gen(function*() {
    yield* Effect.async<void>((resume) => pbkdf2("pw", "salt", 2000, 32, "sha256", () => resume(Effect.void)))
    return yield* HttpServerResponse.json({ ok: true })
  })
))

// Sends a request and hangs up a millisecond later, without reading the answer.
const hangUp = (port: number) =>
  Effect.async<void>((resume) => {
    const socket = net.connect(port, "127.0.0.1")
    socket.on("error", () => {})
    socket.on("connect", () => {
      socket.write("POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
      setTimeout(() => {
        socket.destroy()
        resume(Effect.void)
      }, 1)
    })
  })

describe("NodeServer.createServer", () => {
  it.live("a request fiber whose client hung up before its answer was flushed ends", () =>
    Effect.gen(function*() {
      const counting = new Counting()
      yield* Effect.supervised(
        Effect.scoped(Effect.gen(function*() {
          const server = yield* HttpServer.HttpServer
          const port = (server.address as HttpServer.TcpAddress).port
          yield* HttpServer.serveEffect(app)
          yield* Effect.forEach(Array.from({ length: 600 }), () => hangUp(port), { concurrency: 20, discard: true })
          // every fiber started for a request has ended: none waits for a `finish` that never comes
          for (let i = 0; i < 50 && counting.live > 0; i++) yield* Effect.sleep("100 millis")
          expect(counting.live).toBe(0)
        }).pipe(Effect.provide(NodeHttpServer.layer(NodeServer.createServer, { port: 0, host: "127.0.0.1" })))),
        counting
      )
    }), 60_000)

  it.live("answers as node:http's server does", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const port = (server.address as HttpServer.TcpAddress).port
      yield* HttpServer.serveEffect(app)
      const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/login`, { method: "POST", body: "{}" }))
      expect(response.status).toBe(200)
      expect(yield* Effect.promise(() => response.json())).toEqual({ ok: true })
    }).pipe(Effect.provide(NodeHttpServer.layer(() => NodeServer.createServer({ keepAliveTimeout: 1_000 }), { port: 0, host: "127.0.0.1" })))))
})
