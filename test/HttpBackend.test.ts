import { FetchHttpClient, HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Cause, Config, ConfigError, ConfigProvider, Duration, Effect, Exit, Fiber, Layer, Option, ParseResult, Redacted, Schedule, Schema, Scope, TestClock } from "effect"
import * as HttpBackend from "../src/backends/HttpBackend.js"
import { AuthBackend, AuthError, AuthEvents, AuthService, Credentials } from "../src/index.js"
import type { User } from "../src/index.js"
import * as zlib from "node:zlib"
import * as HttpPeer from "./utils/httpPeer.js"
import * as Recording from "./utils/recordingTracer.js"
import { eventually, pending } from "./utils/fibers.js"

const SECRET = "wonderland-secret-4711"

const Body = Schema.Struct({ id: Schema.String, login: Schema.String, active: Schema.Boolean, admin: Schema.Boolean })
const UserFromBody: Schema.Schema<User.BaseUser, typeof Body.Encoded> = Schema.transform(
  Body,
  Schema.Struct({ id: Schema.String, username: Schema.String, isActive: Schema.Boolean, isSuperuser: Schema.Boolean }),
  {
    strict: true,
    decode: (b) => ({ id: b.id, username: b.login, isActive: b.active, isSuperuser: b.admin }),
    encode: (u) => ({ id: u.id, login: u.username, active: u.isActive, admin: u.isSuperuser })
  }
)

const users: Record<string, typeof Body.Encoded> = {
  "1": { id: "1", login: "alice", active: true, admin: false },
  "2": { id: "2", login: "bob", active: true, admin: true },
  "3": { id: "3", login: "carol", active: false, admin: false }
}
const alice: User.BaseUser = { id: "1", username: "alice", isActive: true, isSuperuser: false }

// A user whose `id` is 5,000 nested arrays (10 kB): a formatter that renders the value received
// recursively overflows the stack on it.
const deepBody = `{"id": ${"[".repeat(5_000)}${"]".repeat(5_000)}, "login": "alice", "active": true, "admin": false}`

/** Bodies that drip for ever: how many began, and how many the client dropped. */
const drips = { started: 0, closed: 0 }

/** How long the user service takes to answer for the id "late", in milliseconds. */
const LATE = 1_000

interface ServerOptions {
  /** Latency of the getUser endpoints, in milliseconds. */
  readonly latency?: number
}

// One user service with every misbehaviour the backend must survive, chosen by username or id.
const userService = (options: ServerOptions = {}): HttpPeer.Handler => async (request, reply) => {
  if (request.method === "POST" && request.path === "/authenticate") {
    const { password, username } = JSON.parse(request.body) as { username: string; password: string }
    switch (username) {
      case "alice":
        return password === SECRET ? reply.json(200, users["1"]) : reply.json(401, { error: "bad password" })
      case "carol":
        return reply.json(200, users["3"])
      case "banned":
        return reply.json(403, { error: "banned" })
      case "ghost":
        return reply.json(404, { error: "no such user" })
      case "slow":
        await HttpPeer.sleep(2_000)
        return reply.json(200, users["1"])
      case "boom":
        return reply.json(500, { error: "internal", echo: request.body })
      case "unavailable":
        return reply.json(503, { error: "maintenance" })
      case "reset":
        return reply.reset()
      case "broken":
        return reply.text(200, "{\"id\": \"1\", \"login\": ")
      case "shape":
        return reply.json(200, { id: 1, login: null, active: "yes", password: SECRET })
      case "deep":
        return reply.text(200, deepBody, "application/json")
      case "teapot":
        return reply.json(418, { error: "teapot" })
      case "huge": {
        // A valid user padded to 2 MB, its length announced.
        const body = JSON.stringify({ ...users["1"], padding: "x".repeat(2 * 1024 * 1024) })
        reply.raw.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
        reply.raw.end(body)
        return
      }
      case "huge-chunked": {
        // The same without a length: chunks that keep coming.
        reply.raw.writeHead(200, { "content-type": "application/json" })
        reply.raw.write(JSON.stringify(users["1"]).slice(0, -1) + ", \"padding\": \"")
        for (let i = 0; i < 64; i++) reply.raw.write("x".repeat(64 * 1024))
        reply.raw.end("\"}")
        return
      }
      case "chunked": {
        // a user in three chunks, without a length
        const body = JSON.stringify(users["1"])
        reply.raw.writeHead(200, { "content-type": "application/json" })
        reply.raw.write(body.slice(0, 5))
        reply.raw.write(body.slice(5, 20))
        reply.raw.end(body.slice(20))
        return
      }
      case "chunked-empty":
        reply.raw.writeHead(200, { "content-type": "application/json" })
        reply.raw.end()
        return
      case "chunked-cut": {
        // the connection dies in the middle of a chunked body
        reply.raw.writeHead(200, { "content-type": "application/json" })
        reply.raw.write(JSON.stringify(users["1"]).slice(0, 10))
        await HttpPeer.sleep(20)
        reply.raw.socket?.destroy()
        return
      }
      case "chunked-drip": {
        // a byte every 50 ms, for ever (until the client goes away)
        reply.raw.writeHead(200, { "content-type": "application/json" })
        reply.raw.write("{")
        drips.started++
        const timer = setInterval(() => reply.raw.write(" "), 50)
        reply.raw.on("close", () => {
          clearInterval(timer)
          drips.closed++
        })
        return
      }
      case "gzip-bomb": {
        // 40 kB on the wire that unpack to 40 MB.
        const body = zlib.gzipSync(JSON.stringify({ ...users["1"], padding: "x".repeat(40 * 1024 * 1024) }))
        reply.raw.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": body.length })
        reply.raw.end(body)
        return
      }
      default:
        return reply.json(401, {})
    }
  }
  if (request.method === "GET" && request.path === "/me") {
    return request.headers.authorization === `Bearer ${SECRET}` ? reply.json(200, users["2"]) : reply.json(401, {})
  }
  if (request.method === "GET" && request.path === "/users") {
    await HttpPeer.sleep(options.latency ?? 0)
    const ids = (request.query.get("ids") ?? "").split(",")
    if (ids.includes("late")) await HttpPeer.sleep(LATE)
    if (ids.includes("boom")) return reply.json(500, {})
    return reply.json(200, ids.flatMap((id) => (users[id] === undefined ? [] : [users[id]])))
  }
  const match = /^\/users\/([^/]+)$/.exec(request.path)
  if (request.method === "GET" && match !== null) {
    await HttpPeer.sleep(options.latency ?? 0)
    const id = decodeURIComponent(match[1]!)
    if (id === "boom") return reply.json(500, {})
    if (id === "late") {
      await HttpPeer.sleep(LATE)
      return reply.json(500, {})
    }
    if (id === "shape") return reply.json(200, { id: "shape" })
    if (id === "deep") return reply.text(200, deepBody, "application/json")
    const user = users[id]
    return user === undefined ? reply.json(404, {}) : reply.json(200, user)
  }
  return reply.json(404, {})
}

const withPeer = (options?: ServerOptions) => HttpPeer.start(userService(options))

const backendFor = (
  peer: HttpPeer.Peer,
  options: Partial<HttpBackend.DefaultOptions> = {},
  client: Layer.Layer<HttpClient.HttpClient> = FetchHttpClient.layer
) =>
  HttpBackend.make({ baseUrl: peer.url, user: UserFromBody, timeout: "3 seconds", ...options }).pipe(
    Effect.provide(client)
  )

const login = (username: string, password = SECRET) => ({ username, password: Redacted.make(password) })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const expectNoSecret = (error: AuthError.TransportError) => {
  const encoded = JSON.stringify(Schema.encodeSync(AuthError.TransportError)(error))
  for (const text of [encoded, String(error.cause), error.message, Cause.pretty(Cause.fail(error))]) {
    expect(text).not.toContain(SECRET)
    expect(text).not.toContain("password")
  }
}

const transportErrorOf = (exit: Exit.Exit<unknown, AuthError.BackendError>): AuthError.TransportError => {
  const error = failureOf(exit)
  expect(error).toBeInstanceOf(AuthError.TransportError)
  return error as AuthError.TransportError
}

const clients: ReadonlyArray<readonly [string, Layer.Layer<HttpClient.HttpClient>]> = [
  ["FetchHttpClient", FetchHttpClient.layer],
  ["the undici client", NodeHttpClient.layerUndici]
]
// (built for the test's scope: undici's dispatcher lives as long as its layer)
const built = (layer: Layer.Layer<HttpClient.HttpClient>) => Effect.map(Layer.build(layer), Layer.succeedContext)

describe("HttpBackend.authenticate", () => {
  it.scoped("a 2xx body decodes to the user; the default request is POST /authenticate with JSON", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const backend = yield* backendFor(peer)
      expect(backend.id).toBe("http")
      const user = yield* backend.authenticate(login("alice"), undefined)
      expect(user).toEqual(alice)
      const [request] = peer.requests
      expect(request?.method).toBe("POST")
      expect(request?.path).toBe("/authenticate")
      expect(request?.headers["content-type"]).toContain("application/json")
      expect(JSON.parse(request!.body)).toEqual({ username: "alice", password: SECRET })
    }))

  it.scoped("the base URL's path prefixes relative request URLs", () =>
    Effect.gen(function*() {
      const peer = yield* HttpPeer.start((request, reply) =>
        request.path === "/api/v1/authenticate" ? reply.json(200, users["1"]) : reply.json(500, {})
      )
      const backend = yield* HttpBackend.make({ baseUrl: `${peer.url}/api/v1/`, user: UserFromBody }).pipe(
        Effect.provide(FetchHttpClient.layer)
      )
      expect(yield* backend.authenticate(login("alice"), undefined)).toEqual(alice)
    }))

  it.scoped("401 (wrong password) is NoMatch invalid-credentials", () =>
    Effect.gen(function*() {
      const backend = yield* backendFor(yield* withPeer())
      const error = failureOf(yield* Effect.exit(backend.authenticate(login("alice", "wrong"), undefined)))
      expect(error).toEqual(new AuthError.NoMatch({ backend: "http", reason: "invalid-credentials" }))
    }))

  it.scoped("404 is NoMatch unknown-user", () =>
    Effect.gen(function*() {
      const backend = yield* backendFor(yield* withPeer())
      const error = failureOf(yield* Effect.exit(backend.authenticate(login("ghost"), undefined)))
      expect(error).toEqual(new AuthError.NoMatch({ backend: "http", reason: "unknown-user" }))
    }))

  it.scoped("403 is PermissionDenied", () =>
    Effect.gen(function*() {
      const backend = yield* backendFor(yield* withPeer())
      const error = failureOf(yield* Effect.exit(backend.authenticate(login("banned"), undefined)))
      expect(error).toEqual(new AuthError.PermissionDenied({ backend: "http", reason: "upstream answered 403" }))
    }))

  it.scoped("configured statuses replace the defaults", () =>
    Effect.gen(function*() {
      const backend = yield* backendFor(yield* withPeer(), {
        id: "users",
        statuses: { 401: { permissionDenied: "locked upstream" }, 418: { noMatch: "inactive-user" } }
      })
      const wrong = failureOf(yield* Effect.exit(backend.authenticate(login("alice", "wrong"), undefined)))
      expect(wrong).toEqual(new AuthError.PermissionDenied({ backend: "users", reason: "locked upstream" }))
      const teapot = failureOf(yield* Effect.exit(backend.authenticate(login("teapot"), undefined)))
      expect(teapot).toEqual(new AuthError.NoMatch({ backend: "users", reason: "inactive-user" }))
      // 403 is no longer mapped: an unexpected status
      const banned = transportErrorOf(yield* Effect.exit(backend.authenticate(login("banned"), undefined)))
      expect(banned.backend).toBe("users")
      expect(String(banned.cause)).toContain("unexpected status 403")
    }))

  it.scoped("an inactive upstream user is NoMatch inactive-user, unless allowInactive", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const strict = yield* backendFor(peer)
      const error = failureOf(yield* Effect.exit(strict.authenticate(login("carol"), undefined)))
      expect(error).toEqual(new AuthError.NoMatch({ backend: "http", reason: "inactive-user" }))
      const lenient = yield* backendFor(peer, { allowInactive: true })
      const carol = yield* lenient.authenticate(login("carol"), undefined)
      expect(carol.username).toBe("carol")
    }))

  it.scoped("custom credentials and request: a bearer token against GET /me", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const backend = yield* HttpBackend.make({
        id: "me",
        baseUrl: peer.url,
        user: UserFromBody,
        credentials: Credentials.Token,
        request: ({ token }) => HttpClientRequest.get("/me").pipe(HttpClientRequest.bearerToken(Redacted.value(token)))
      }).pipe(Effect.provide(FetchHttpClient.layer))
      const token = Schema.decodeSync(Credentials.Token)({ token: SECRET })
      const user = yield* backend.authenticate(token, undefined)
      expect(user.username).toBe("bob")
      const other = Schema.decodeSync(Credentials.Token)({ token: "nope" })
      const error = failureOf(yield* Effect.exit(backend.authenticate(other, undefined)))
      expect(error).toEqual(new AuthError.NoMatch({ backend: "me", reason: "invalid-credentials" }))
      expect(backend.credentials).toBe(Credentials.Token)
    }))
})

describe("HttpBackend: TransportError, without the request body in the cause", () => {
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ["500", "boom", "unexpected status 500"],
    ["503", "unavailable", "unexpected status 503"],
    ["an unmapped status (418)", "teapot", "unexpected status 418"],
    ["a connection reset", "reset", "connection failed"],
    ["broken JSON", "broken", "not JSON"],
    ["a body of the wrong shape", "shape", "does not match the schema"]
  ]
  for (const [name, username, expected] of cases) {
    it.scoped(`${name} is a TransportError`, () =>
      Effect.gen(function*() {
        const backend = yield* backendFor(yield* withPeer())
        const error = transportErrorOf(yield* Effect.exit(backend.authenticate(login(username), undefined)))
        expect(error.backend).toBe("http")
        expect(String(error.cause)).toContain(expected)
        expect(String(error.cause)).toContain("POST http://127.0.0.1:")
        expectNoSecret(error)
      }))
  }

  for (const username of ["huge", "huge-chunked", "gzip-bomb"]) {
    it.scoped(`a body past maxResponseBytes (${username}) is a TransportError; reading stops there`, () =>
      Effect.gen(function*() {
        const backend = yield* backendFor(yield* withPeer())
        const error = transportErrorOf(yield* Effect.exit(backend.authenticate(login(username), undefined)))
        expect(String(error.cause)).toContain("response body larger than 1048576 bytes")
        expectNoSecret(error)
        const roomy = yield* backendFor(yield* withPeer(), { maxResponseBytes: 64 * 1024 * 1024 })
        const user = yield* roomy.authenticate(login(username), undefined)
        expect(user.username).toBe("alice")
      }))
  }

  // A body without a length is counted as it arrives, from what each of the platform's clients
  // keeps under its response (undici's Node stream, fetch's web stream).
  for (const [name, layer] of clients) {
    it.scoped(`a chunked body on ${name}: read whole, cut at the ceiling, a broken one a TransportError`, () =>
      Effect.gen(function*() {
        const client = yield* built(layer)
        const peer = yield* withPeer()
        const backend = yield* backendFor(peer, {}, client)
        expect((yield* backend.authenticate(login("chunked"), undefined)).username).toBe("alice")
        const empty = transportErrorOf(yield* Effect.exit(backend.authenticate(login("chunked-empty"), undefined)))
        expect(String(empty.cause)).toContain("not JSON")
        const huge = transportErrorOf(yield* Effect.exit(backend.authenticate(login("huge-chunked"), undefined)))
        expect(String(huge.cause)).toBe(`POST ${peer.url}/authenticate: response body larger than 1048576 bytes`)
        const cut = transportErrorOf(yield* Effect.exit(backend.authenticate(login("chunked-cut"), undefined)))
        expect(String(cut.cause)).toMatch(new RegExp(`^POST ${peer.url}/authenticate: response body could not be read \\(status 200\\)`))
        for (const error of [empty, huge, cut]) expectNoSecret(error)
        const roomy = yield* backendFor(peer, { maxResponseBytes: 64 * 1024 * 1024 }, client)
        expect((yield* roomy.authenticate(login("huge-chunked"), undefined)).username).toBe("alice")
      }))

    it.live(`a body that drips past the timeout on ${name} is a TransportError, and the connection is dropped`, () =>
      Effect.gen(function*() {
        const client = yield* built(layer)
        const backend = yield* backendFor(yield* withPeer(), { timeout: "300 millis" }, client)
        const before = { ...drips }
        const error = transportErrorOf(yield* Effect.exit(backend.authenticate(login("chunked-drip"), undefined)))
        expect(String(error.cause)).toContain("timed out after 300ms")
        expect(drips.started).toBe(before.started + 1)
        // the peer sees its answer dropped, rather than dripping on for ever
        yield* Effect.promise(() => HttpPeer.sleep(0)).pipe(
          Effect.repeat({ until: () => drips.closed === before.closed + 1, schedule: Schedule.spaced("20 millis") }),
          Effect.timeoutFail({ duration: "3 seconds", onTimeout: () => new Error("the dripping answer was never dropped") })
        )
      }).pipe(Effect.scoped))
  }

  const unreadClients: ReadonlyArray<readonly [string, Layer.Layer<HttpClient.HttpClient>]> = [
    ...clients,
    ["the node:http client", NodeHttpClient.layer]
  ]
  for (const [name, layer] of unreadClients) {
    it.live(`on ${name}, an answer whose body is not read (a mapped status, an unexpected one, a 404) lets go of its connection`, () =>
      Effect.gen(function*() {
        const client = yield* built(layer)
        // 401 to a login, 418 to another, 404 to a user: each with a body that drips for ever
        // (until the client goes away)
        const open = { started: 0, closed: 0 }
        const peer = yield* HttpPeer.start((request, reply) => {
          const status = request.method === "GET" ? 404 : JSON.parse(request.body).username === "teapot" ? 418 : 401
          reply.raw.writeHead(status, { "content-type": "application/json" })
          reply.raw.write("{\"error\": \"")
          open.started++
          const timer = setInterval(() => reply.raw.write("x".repeat(1024)), 20)
          reply.raw.on("close", () => {
            clearInterval(timer)
            open.closed++
          })
        })
        const backend = yield* backendFor(peer, {}, client)
        expect(failureOf(yield* Effect.exit(backend.authenticate(login("alice"), undefined)))).toBeInstanceOf(AuthError.NoMatch)
        const teapot = transportErrorOf(yield* Effect.exit(backend.authenticate(login("teapot"), undefined)))
        expect(String(teapot.cause)).toContain("unexpected status 418")
        expect(yield* backend.getUser("1")).toEqual(Option.none())
        expect(open.started).toBe(3)
        // the peer sees each answer dropped, long before the backend's timeout or a garbage collection
        yield* Effect.promise(() => HttpPeer.sleep(0)).pipe(
          Effect.repeat({ until: () => open.closed === 3, schedule: Schedule.spaced("20 millis") }),
          Effect.timeoutFail({
            duration: "2 seconds",
            onTimeout: () => new Error(`${3 - open.closed} of 3 unread answers were never dropped`)
          })
        )
      }).pipe(Effect.scoped))
  }

  // The platform's clients keep the body they were handed under the response (`original.source.body`),
  // and a body without a length is read from there, without a stream per exchange. A client that
  // keeps nothing of the kind (its own response type, a wrapper) is read through `response.stream`,
  // with the same ceiling and the same errors.
  const counting = (layer: Layer.Layer<HttpClient.HttpClient>, hideSource: boolean) => {
    const reads = { stream: 0 }
    const wrapped = Layer.effect(
      HttpClient.HttpClient,
      Effect.map(HttpClient.HttpClient, (client) =>
        HttpClient.transformResponse(client, Effect.map((response) =>
          new Proxy(response, {
            get: (target, key) => {
              if (hideSource && (key === "original" || key === "source")) return undefined
              if (key === "stream") reads.stream++
              return Reflect.get(target, key, target)
            }
          }))))
    ).pipe(Layer.provide(layer))
    return { reads, wrapped }
  }
  for (const [name, layer] of clients) {
    it.scoped(`a chunked body on ${name} is read from the client's own body, not through response.stream`, () =>
      Effect.gen(function*() {
        const { reads, wrapped } = counting(layer, false)
        const backend = yield* backendFor(yield* withPeer(), {}, yield* built(wrapped))
        expect((yield* backend.authenticate(login("chunked"), undefined)).username).toBe("alice")
        const huge = transportErrorOf(yield* Effect.exit(backend.authenticate(login("huge-chunked"), undefined)))
        expect(String(huge.cause)).toContain("response body larger than 1048576 bytes")
        expect(reads.stream).toBe(0)
      }))

    it.scoped(`a response on ${name} that keeps no source of its own is read through response.stream, the same ceiling`, () =>
      Effect.gen(function*() {
        const { reads, wrapped } = counting(layer, true)
        const peer = yield* withPeer()
        const backend = yield* backendFor(peer, {}, yield* built(wrapped))
        expect((yield* backend.authenticate(login("chunked"), undefined)).username).toBe("alice")
        expect(reads.stream).toBe(1)
        const huge = transportErrorOf(yield* Effect.exit(backend.authenticate(login("huge-chunked"), undefined)))
        expect(String(huge.cause)).toBe(`POST ${peer.url}/authenticate: response body larger than 1048576 bytes`)
        const cut = transportErrorOf(yield* Effect.exit(backend.authenticate(login("chunked-cut"), undefined)))
        expect(String(cut.cause)).toMatch(new RegExp(`^POST ${peer.url}/authenticate: response body could not be read \\(status 200\\)`))
        expect(reads.stream).toBe(3)
      }))
  }

  // A body refused for its size is not read on: one that announces more than the ceiling is let
  // go of unread, one counted past it as it streams is cut there. Either way the connection goes.
  // A response that keeps no source of its own is cut through response.stream; one it announces
  // too large is left alone, as every unread body of such a client is (BoundedBody.discard).
  const refusedClients: ReadonlyArray<readonly [string, Layer.Layer<HttpClient.HttpClient>, ReadonlyArray<string>]> = [
    ...unreadClients.map(([name, layer]) => [name, layer, ["/authenticate", "/users/1"]] as const),
    ...clients.map(([name, layer]) => [`${name} without its source`, counting(layer, true).wrapped, ["/users/1"]] as const)
  ]
  for (const [name, layer, droppable] of refusedClients) {
    it.live(`on ${name}, an answer refused for its size (announced, or counted as it streams) lets go of its connection`, () =>
      Effect.gen(function*() {
        const client = yield* built(layer)
        // the paths (a login's, a user's) whose answers began, and those the client dropped
        const started = new Set<string>()
        const dropped = new Set<string>()
        const peer = yield* HttpPeer.start((request, reply) => {
          // a login announces 2 MiB, a user announces nothing and sends 1 MiB and more; both then
          // drip for ever (until the client goes away)
          const announced = request.method === "POST"
          reply.raw.writeHead(200, {
            "content-type": "application/json",
            ...(announced ? { "content-length": String(2 * 1024 * 1024) } : {})
          })
          reply.raw.write(announced ? "{\"id\": \"" : `{"id": "${"x".repeat(1024 * 1024)}`)
          started.add(request.path)
          const timer = setInterval(() => reply.raw.write("x".repeat(1024)), 20)
          reply.raw.on("close", () => {
            clearInterval(timer)
            dropped.add(request.path)
          })
        })
        const backend = yield* backendFor(peer, {}, client)
        const announced = transportErrorOf(yield* Effect.exit(backend.authenticate(login("alice"), undefined)))
        expect(String(announced.cause)).toBe(`POST ${peer.url}/authenticate: response body larger than 1048576 bytes`)
        const counted = yield* Effect.flip(backend.getUser("1"))
        expect(String(counted.cause)).toBe(`GET ${peer.url}/users/1: response body larger than 1048576 bytes`)
        expect([...started]).toEqual(["/authenticate", "/users/1"])
        // the peer sees each answer dropped, long before the backend's timeout or a garbage collection
        yield* Effect.promise(() => HttpPeer.sleep(0)).pipe(
          Effect.repeat({ until: () => droppable.every((path) => dropped.has(path)), schedule: Schedule.spaced("20 millis") }),
          Effect.timeoutFail({
            duration: "2 seconds",
            onTimeout: () => new Error(`refused answers never dropped: ${droppable.filter((path) => !dropped.has(path))}`)
          })
        )
      }).pipe(Effect.scoped))
  }

  it.scoped("a client whose body hands over chunks that are no bytes is a TransportError, not a defect", () =>
    Effect.gen(function*() {
      const strings = Layer.succeed(
        HttpClient.HttpClient,
        HttpClient.make((request) =>
          Effect.succeed(HttpClientResponse.fromWeb(
            request,
            new Response(new ReadableStream<string>({
              start: (controller) => {
                controller.enqueue("{\"id\": \"1\"}")
                controller.close()
              }
            }) as unknown as ReadableStream<Uint8Array>, { headers: { "content-type": "application/json" } })
          ))
        )
      )
      const backend = yield* HttpBackend.make({ baseUrl: "http://127.0.0.1:9", user: UserFromBody }).pipe(Effect.provide(strings))
      const error = transportErrorOf(yield* Effect.exit(backend.authenticate(login("alice"), undefined)))
      expect(String(error.cause)).toBe("POST http://127.0.0.1:9/authenticate: response body could not be read (status 200) (TypeError)")
    }))

  it.scoped("a body of the wrong shape names the failing paths, not the values", () =>
    Effect.gen(function*() {
      const backend = yield* backendFor(yield* withPeer())
      const error = transportErrorOf(yield* Effect.exit(backend.authenticate(login("shape"), undefined)))
      expect(String(error.cause)).toMatch(/"id"|"login"|"active"/)
      expect(String(error.cause)).not.toContain("yes")
    }))

  // A record's keys are the peer's data (Keycloak-style `attributes`): one may echo the login, or
  // be a megabyte long. The path names the record, its key is `*`.
  it.scoped("a record's key in a failing path is written *, never the key the peer sent", () =>
    Effect.gen(function*() {
      const Base = Schema.Struct({ id: Schema.String, username: Schema.String, isActive: Schema.Boolean, isSuperuser: Schema.Boolean })
      const WithAttributes = Schema.Struct({
        ...Base.fields,
        attributes: Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) })
      })
      const UserWithAttributes: Schema.Schema<User.BaseUser, typeof WithAttributes.Encoded> = Schema.transform(
        WithAttributes,
        Base,
        { strict: true, decode: ({ attributes: _, ...user }) => user, encode: (user) => ({ ...user, attributes: {} }) }
      )
      const peer = yield* HttpPeer.start((request, reply) => {
        const echoed = request.body === "" ? "" : (JSON.parse(request.body) as { password?: string }).password
        reply.json(200, {
          id: "1",
          username: "alice",
          isActive: true,
          isSuperuser: false,
          attributes: { phone: ["+1 555 0100"], [`echo:${echoed}`]: 2, ["k".repeat(300_000)]: 1 }
        })
      })
      const backend = yield* HttpBackend.make({ baseUrl: peer.url, user: UserWithAttributes }).pipe(Effect.provide(FetchHttpClient.layer))
      const error = transportErrorOf(yield* Effect.exit(backend.authenticate(login("alice"), undefined)))
      expect(String(error.cause)).toBe(`POST ${peer.url}/authenticate: response body does not match the schema at "attributes".*`)
      const byId = transportErrorOf(yield* Effect.exit(backend.getUser("1")))
      expect(String(byId.cause)).toBe(`GET ${peer.url}/users/1: response body does not match the schema at "attributes".*`)
    }))

  it.scoped("a deeply nested body of the wrong shape is a TransportError naming the path, not a defect", () =>
    Effect.gen(function*() {
      const backend = yield* backendFor(yield* withPeer())
      const error = transportErrorOf(yield* Effect.exit(backend.authenticate(login("deep"), undefined)))
      expect(String(error.cause)).toContain("does not match the schema at \"id\"")
      expectNoSecret(error)
      const byId = failureOf(yield* Effect.exit(backend.getUser("deep")))
      expect(byId).toBeInstanceOf(AuthError.TransportError)
      expect(String(byId.cause)).toContain("does not match the schema at \"id\"")
    }))

  it.scoped("connection refused is a TransportError", () =>
    Effect.gen(function*() {
      const url = yield* HttpPeer.closedPort
      const backend = yield* HttpBackend.make({ baseUrl: url, user: UserFromBody }).pipe(
        Effect.provide(FetchHttpClient.layer)
      )
      const error = transportErrorOf(yield* Effect.exit(backend.authenticate(login("alice"), undefined)))
      expect(String(error.cause)).toContain("connection failed")
      expectNoSecret(error)
    }))

  // The service's answer decides who logs in: it must come from baseUrl. `fetch` follows a 3xx to
  // any origin by default, and another origin's 200 would have been the user.
  it.scoped("a redirect from the service is a TransportError, not followed (FetchHttpClient, the app's RequestInit kept)", () =>
    Effect.gen(function*() {
      const other = yield* HttpPeer.start((_, reply) => reply.json(200, users["2"]))
      const peer = yield* HttpPeer.start((request, reply) => {
        reply.raw.writeHead(request.method === "POST" ? 307 : 302, { location: `${other.url}${request.path}` })
        reply.raw.end()
      })
      // The app's RequestInit given to the client's layer, as the platform documents it.
      const backend = yield* HttpBackend.make({ baseUrl: peer.url, user: UserFromBody, timeout: "3 seconds" }).pipe(
        Effect.provide(FetchHttpClient.layer.pipe(Layer.provide(Layer.succeed(FetchHttpClient.RequestInit, { headers: { "x-app": "kept" } }))))
      )
      const error = transportErrorOf(yield* Effect.exit(backend.authenticate(login("alice"), undefined)))
      expect(String(error.cause)).toContain("unexpected status 307")
      expectNoSecret(error)
      const lookup = yield* Effect.exit(backend.getUser("1"))
      expect(failureOf(lookup)).toBeInstanceOf(AuthError.TransportError)
      expect(String((failureOf(lookup) as AuthError.TransportError).cause)).toContain("unexpected status 302")
      expect(other.requests).toEqual([])
      expect(peer.requests.map((request) => request.headers["x-app"])).toEqual(["kept", "kept"])
    }))

  it.live("the backend's own timeout cuts a slow answer into a TransportError", () =>
    Effect.gen(function*() {
      const backend = yield* backendFor(yield* withPeer(), { timeout: "100 millis" })
      const error = transportErrorOf(yield* Effect.exit(backend.authenticate(login("slow"), undefined)))
      expect(String(error.cause)).toContain("timed out after 100ms")
      expectNoSecret(error)
    }).pipe(Effect.scoped))

  it.live("the policy timeout, applied by AuthService, is a TransportError too", () =>
    Effect.gen(function*() {
      const backend = yield* backendFor(yield* withPeer(), { policy: { timeout: "100 millis" } })
      expect(backend.policy.timeout).toBeDefined()
      const error = yield* AuthService.authenticate({ username: "slow", password: SECRET }).pipe(
        Effect.flip,
        Effect.provide(AuthService.layer([backend]).pipe(Layer.provide(AuthEvents.layer)))
      )
      expect(error).toBeInstanceOf(AuthError.TransportError)
      expectNoSecret(error as AuthError.TransportError)
    }).pipe(Effect.scoped))

  it.effect("an unusable configuration fails the layer with AuthConfigError", () =>
    Effect.gen(function*() {
      const error = yield* HttpBackend.make({ baseUrl: "not a url", user: UserFromBody }).pipe(
        Effect.provide(FetchHttpClient.layer),
        Effect.scoped,
        Effect.flip
      )
      expect(error).toBeInstanceOf(AuthError.AuthConfigError)
      const layerError = yield* Layer.build(
        HttpBackend.layer({ baseUrl: "http://127.0.0.1", user: UserFromBody, getUser: { batch: { maxSize: 0 } } })
      ).pipe(Effect.provide(FetchHttpClient.layer), Effect.scoped, Effect.flip)
      expect(layerError).toBeInstanceOf(AuthError.AuthConfigError)
      for (const maxResponseBytes of [0, -1, 1.5, Number.NaN]) {
        const error = yield* HttpBackend.make({ baseUrl: "http://127.0.0.1", user: UserFromBody, maxResponseBytes }).pipe(
          Effect.provide(FetchHttpClient.layer),
          Effect.scoped,
          Effect.flip
        )
        expect(error.message).toContain("maxResponseBytes")
      }
    }))

  // A query or fragment was joined into every request's path (`?key=K/authenticate`: the login
  // went to the service's root resource); user:password failed every fetch or was dropped.
  it.effect("a baseUrl with a query, a fragment, a user or another scheme is an AuthConfigError", () =>
    Effect.gen(function*() {
      for (const baseUrl of ["http://127.0.0.1/api?key=K", "http://127.0.0.1/api?", "http://127.0.0.1/api#frag", "http://svc:pw@127.0.0.1/api", "ftp://127.0.0.1/api"]) {
        const error = failureOf(
          yield* HttpBackend.make({ baseUrl, user: UserFromBody }).pipe(Effect.provide(FetchHttpClient.layer), Effect.scoped, Effect.exit)
        )
        expect(error, baseUrl).toBeInstanceOf(AuthError.AuthConfigError)
        expect(error.message, baseUrl).toMatch(/^HttpBackend: baseUrl must/)
        expect(error.message).not.toContain("pw")
      }
    }))

  // From a config file, `statuses` is whatever was written: an outcome of another shape failed
  // every login answered with its status as a defect, or made an error its own Schema refuses.
  it.effect("statuses the backend cannot use are an AuthConfigError, not a defect at the first login", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<unknown> = [
        { 401: "nomatch" },
        { 401: null },
        { 401: 42 },
        { 401: {} },
        { 401: { noMatch: "account-closed" } },
        { 401: { permissionDenied: 7 } },
        { abc: "no-match" },
        { 600: "no-match" },
        "no-match"
      ]
      for (const statuses of cases) {
        const error = failureOf(
          yield* HttpBackend.make({ baseUrl: "http://127.0.0.1", user: UserFromBody, statuses: statuses as any }).pipe(
            Effect.provide(FetchHttpClient.layer),
            Effect.scoped,
            Effect.exit
          )
        )
        expect(error, JSON.stringify(statuses)).toBeInstanceOf(AuthError.AuthConfigError)
        expect(error.message).toContain("statuses")
      }
      const fine = yield* HttpBackend.make({
        baseUrl: "http://127.0.0.1",
        user: UserFromBody,
        statuses: { ...HttpBackend.defaultStatuses, 423: { permissionDenied: "locked" }, 410: { noMatch: "expired-credentials" } }
      }).pipe(Effect.provide(FetchHttpClient.layer), Effect.scoped, Effect.exit)
      expect(Exit.isSuccess(fine)).toBe(true)
    }))

  it.effect("a malformed duration (timeout, getUser.cache.ttl, getUser.batch.window) is an AuthConfigError, not a defect", () =>
    Effect.gen(function*() {
      // typed DurationInputs, but read from a config file or given by an untyped caller
      const cases: ReadonlyArray<readonly [Partial<HttpBackend.DefaultOptions>, string]> = [
        [{ timeout: "ten seconds" as Duration.DurationInput }, "timeout"],
        [{ timeout: "2 ms" as Duration.DurationInput }, "timeout"],
        [{ getUser: { cache: { ttl: "soon" as Duration.DurationInput } } }, "getUser.cache.ttl"],
        [{ getUser: { cache: { ttl: undefined as unknown as Duration.DurationInput } } }, "getUser.cache.ttl"],
        [{ getUser: { batch: { window: "2 ms" as Duration.DurationInput } } }, "getUser.batch.window"],
        [{ getUser: { batch: { window: Duration.infinity } } }, "getUser.batch.window"]
      ]
      for (const [options, field] of cases) {
        const exit = yield* HttpBackend.make({ baseUrl: "http://127.0.0.1", user: UserFromBody, ...options }).pipe(
          Effect.provide(FetchHttpClient.layer),
          Effect.scoped,
          Effect.exit
        )
        const error = failureOf(exit)
        expect(error).toBeInstanceOf(AuthError.AuthConfigError)
        expect(error.message).toContain(field)
      }
    }))

  it.scoped("a request builder that throws is a TransportError, without its message", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const backend = yield* HttpBackend.make({
        baseUrl: peer.url,
        user: UserFromBody,
        credentials: Credentials.UsernamePassword,
        request: (credentials) => {
          throw new Error(`cannot send ${Redacted.value(credentials.password)}`)
        }
      }).pipe(Effect.provide(FetchHttpClient.layer))
      const error = transportErrorOf(yield* Effect.exit(backend.authenticate(login("alice"), undefined)))
      expect(String(error.cause)).toContain("the request builder threw")
      expectNoSecret(error)
      expect(peer.count()).toBe(0)
    }))
})

describe("HttpBackend: the bound on logins in flight (maxConcurrent, maxWaiting)", () => {
  const isBusy = (error: AuthError.TransportError) => {
    expect(String(error.cause)).toMatch(/^busy: /)
    expectNoSecret(error)
  }
  const isTimedOut = (error: unknown) => {
    expect(error).toBeInstanceOf(AuthError.TransportError)
    expect(String((error as AuthError.TransportError).cause)).toContain("timed out after 1s")
    expectNoSecret(error as AuthError.TransportError)
  }
  // (the client's first request of a worker takes a while to reach the peer: undici loads lazily)

  // (before the bound, every login sent its request at once: 2000 logins against a service that
  // never answers held 2000 sockets and requests there for the whole timeout)
  it.live("against a service that never answers, a login past maxConcurrent + maxWaiting fails at once with a busy TransportError, without a request; a login that ends or is interrupted gives its turn back", () =>
    Effect.gen(function*() {
      const peer = yield* HttpPeer.start(() => undefined)
      const logins = () => peer.count((r) => r.path === "/authenticate")
      const backend = yield* backendFor(peer, { maxConcurrent: 2, maxWaiting: 1, timeout: "1 second" })
      const attempt = (name: string) => backend.authenticate(login(name), undefined)
      const fork = (name: string) => Effect.fork(Effect.flip(attempt(name)))

      // two logins are sent, a third waits for a turn
      const first = yield* fork("user0")
      const second = yield* fork("user1")
      const third = yield* fork("user2")
      yield* eventually(() => logins() >= 2)
      yield* Effect.sleep("100 millis")
      expect(logins()).toBe(2)

      // the fourth is refused at once, while the others are still pending: no request, no wait
      const startedAt = performance.now()
      isBusy(transportErrorOf(yield* Effect.exit(attempt("user3"))))
      expect(performance.now() - startedAt).toBeLessThan(200)
      // through AuthService it is what any failure of the service is: here BackendUnavailable (503)
      const fallthrough = AuthBackend.withPolicy(backend, { onTransportError: "fallthrough" })
      const folded = yield* AuthService.authenticate(login("user3")).pipe(
        Effect.flip,
        Effect.provide(AuthService.layer([fallthrough]).pipe(Layer.provide(AuthEvents.layer)))
      )
      expect(folded).toBeInstanceOf(AuthError.BackendUnavailable)
      expect(logins()).toBe(2)
      for (const fiber of [first, second, third]) expect(yield* pending(fiber)).toBe(true)
      // getUser is not counted (its loader holds one request per id): it is sent, not refused
      const lookup = yield* Effect.fork(Effect.flip(backend.getUser("1")))
      yield* eventually(() => peer.count((r) => r.path === "/users/1") === 1)
      expect(peer.count((r) => r.path === "/users/1")).toBe(1)

      // an interrupted login gives its turn back: the waiting one is sent, and one more may wait
      yield* Fiber.interrupt(first)
      yield* eventually(() => logins() >= 3)
      expect(logins()).toBe(3)
      const fourth = yield* fork("user4")
      yield* Effect.sleep("50 millis")
      expect(yield* pending(fourth)).toBe(true)
      isBusy(transportErrorOf(yield* Effect.exit(attempt("user5"))))
      // so does an interrupted waiter
      yield* Fiber.interrupt(fourth)
      const fifth = yield* fork("user6")
      yield* Effect.sleep("50 millis")
      expect(yield* pending(fifth)).toBe(true)

      // the running ones end at their timeout; the waiter gets its turn and ends at its own
      for (const fiber of [second, third, fifth]) isTimedOut(yield* Fiber.join(fiber))
      isTimedOut(yield* Fiber.join(lookup))
      expect(logins()).toBe(4)
      // every turn is back: a new login is sent again, and answered now that the service is
      peer.setHandler(userService())
      expect(yield* attempt("alice")).toEqual(alice)
      expect(logins()).toBe(5)
    }).pipe(Effect.scoped))

  it.live("the turns are shared between client addresses: one address holding them all gives its newest waiting login's turn to another address's, which is sent next", () =>
    Effect.gen(function*() {
      const peer = yield* HttpPeer.start(() => undefined)
      const sent = () => peer.requests.filter((r) => r.path === "/authenticate").map((r) => JSON.parse(r.body).username)
      const backend = yield* backendFor(peer, { maxConcurrent: 1, maxWaiting: 2, timeout: "30 seconds" })
      const attempt = (name: string, remoteAddress: string) => backend.authenticate(login(name), { remoteAddress })
      const fork = (name: string, remoteAddress: string) => Effect.fork(Effect.exit(attempt(name, remoteAddress)))

      // one address takes every turn: one login sent, two waiting, a fourth refused
      const first = yield* fork("flood0", "192.0.2.66")
      yield* eventually(() => sent().length === 1)
      const waiting = [yield* fork("flood1", "192.0.2.66"), yield* fork("flood2", "192.0.2.66")]
      yield* Effect.sleep("50 millis")
      isBusy(transportErrorOf(yield* Effect.exit(attempt("flood3", "192.0.2.66"))))
      // another address is not refused: the flood's newest waiting login is, at once
      const visitor = yield* fork("visitor", "198.51.100.7")
      yield* eventually(() => visitor.unsafePoll() !== null || waiting[1]!.unsafePoll() !== null)
      const visitorDone = visitor.unsafePoll() !== null
      expect(visitorDone ? String(transportErrorOf(yield* Fiber.join(visitor)).cause) : "waiting").toBe("waiting")
      isBusy(transportErrorOf(yield* Fiber.join(waiting[1]!)))
      // the turn the flood's first login gives back goes to the visitor, not to the flood's waiter
      yield* Fiber.interrupt(first)
      yield* eventually(() => sent().length === 2)
      expect(sent()).toEqual(["flood0", "visitor"])
      yield* Fiber.interrupt(visitor)
      yield* Fiber.interrupt(waiting[0]!)
    }).pipe(Effect.scoped))

  it.effect("maxConcurrent and maxWaiting must be counts: anything else is an AuthConfigError", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Partial<HttpBackend.DefaultOptions>, string]> = [
        ...[0, -1, 1.5, Number.NaN, Infinity].map((maxConcurrent) =>
          [{ maxConcurrent }, "maxConcurrent must be a positive integer"] as const
        ),
        ...[-1, 0.5, Number.NaN, Infinity].map((maxWaiting) => [{ maxWaiting }, "maxWaiting must be a non-negative integer"] as const)
      ]
      for (const [options, message] of cases) {
        const exit = yield* HttpBackend.make({ baseUrl: "http://127.0.0.1", user: UserFromBody, ...options }).pipe(
          Effect.provide(FetchHttpClient.layer),
          Effect.scoped,
          Effect.exit
        )
        expect(Exit.isFailure(exit), JSON.stringify(options)).toBe(true)
        const error = failureOf(exit)
        expect(error).toBeInstanceOf(AuthError.AuthConfigError)
        expect(error.message).toContain(message)
      }
      // 0 waiting is a bound too: whatever cannot be sent at once is refused
      yield* HttpBackend.make({ baseUrl: "http://127.0.0.1", user: UserFromBody, maxConcurrent: 1, maxWaiting: 0 }).pipe(
        Effect.provide(FetchHttpClient.layer),
        Effect.scoped
      )
      const layerError = yield* Layer.build(HttpBackend.layer({ baseUrl: "http://127.0.0.1", user: UserFromBody, maxWaiting: -1 })).pipe(
        Effect.provide(FetchHttpClient.layer),
        Effect.scoped,
        Effect.flip
      )
      expect(layerError).toBeInstanceOf(AuthError.AuthConfigError)
    }))
})

describe("HttpBackend: spans", () => {
  // A token in the query string and in a header of the service's own: the platform's client span
  // would record both (url.full, url.query, http.request.header.private-token).
  const tokenBackend = (peer: HttpPeer.Peer, client: Layer.Layer<HttpClient.HttpClient>, inline = false) =>
    HttpBackend.make({
      baseUrl: peer.url,
      user: UserFromBody,
      timeout: "3 seconds",
      credentials: Credentials.Token,
      request: ({ token }) =>
        (inline
          ? HttpClientRequest.get(`/introspect?access_token=${Redacted.value(token)}`)
          : HttpClientRequest.get("/introspect").pipe(HttpClientRequest.setUrlParam("access_token", Redacted.value(token))))
          .pipe(HttpClientRequest.setHeader("private-token", Redacted.value(token)))
    }).pipe(Effect.provide(client))
  const introspect: HttpPeer.Handler = (request, reply) =>
    request.query.get("access_token") === SECRET && request.headers["private-token"] === SECRET
      ? reply.json(200, users["1"])
      : reply.json(401, {})

  for (const [name, layer] of clients) {
    it.scoped(`on ${name}, each peer request is one client span with method, host, path and status, and no secret`, () =>
      Effect.gen(function*() {
        const client = yield* built(layer)
        const peer = yield* HttpPeer.start(introspect)
        const recording = Recording.make()
        const backend = yield* tokenBackend(peer, client)
        const user = yield* backend.authenticate({ token: Redacted.make(SECRET) }, undefined).pipe(Effect.withTracer(recording.tracer))
        expect(user.username).toBe("alice")
        const wrong = failureOf(
          yield* Effect.exit(backend.authenticate({ token: Redacted.make(`${SECRET}-x`) }, undefined).pipe(Effect.withTracer(recording.tracer)))
        )
        expect(wrong).toBeInstanceOf(AuthError.NoMatch)
        // A refused connection, the token in the URL itself: the platform's error quotes that URL.
        const refused = yield* tokenBackend({ ...peer, url: yield* HttpPeer.closedPort }, client, true)
        transportErrorOf(
          yield* Effect.exit(refused.authenticate({ token: Redacted.make(SECRET) }, undefined).pipe(Effect.withTracer(recording.tracer)))
        )

        const spans = recording.spans.filter((span) => span.name === "http.client GET")
        expect(spans).toHaveLength(3)
        const port = Number(new URL(peer.url).port)
        expect(spans.map((span) => [span.kind, Object.fromEntries(span.attributes)])).toEqual([200, 401].map((status) => [
          "client",
          {
            "http.request.method": "GET",
            "server.address": "127.0.0.1",
            "server.port": port,
            "url.scheme": "http",
            "url.path": "/introspect",
            "url.full": `${peer.url}/introspect`,
            "http.response.status_code": status
          }
        ]).concat([["client", expect.objectContaining({ "url.path": "/introspect" })]]))
        expect(Exit.isFailure(spans[2]!.exit!)).toBe(true)
        for (const span of recording.spans) expect(Recording.render(span)).not.toContain(SECRET)
        // The peer still receives the trace context, of the span above.
        expect(peer.requests[0]?.headers.traceparent).toBe(`00-trace-${spans[0]!.spanId}-01`)
      }))
  }

  it.scoped("getUser's requests are traced the same way; with tracing disabled there is no span", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const recording = Recording.make()
      // getUser's fetches run in the backend's own fibers: they trace with the tracer it was built under.
      const backend = yield* backendFor(peer, { getUser: { request: (id) => HttpClientRequest.get(`/users/${id}?key=${SECRET}`) } }).pipe(
        Effect.withTracer(recording.tracer)
      )
      expect(yield* backend.getUser("1")).toEqual(Option.some(alice))
      const [span] = recording.spans.filter((span) => span.name === "http.client GET")
      expect(span?.attributes.get("url.full")).toBe(`${peer.url}/users/1`)
      expect(span?.attributes.get("http.response.status_code")).toBe(200)
      for (const span of recording.spans) expect(Recording.render(span)).not.toContain(SECRET)
      const before = recording.spans.length
      yield* Effect.exit(backend.authenticate(login("alice"), undefined).pipe(Effect.withTracer(recording.tracer), Effect.withTracerEnabled(false)))
      expect(recording.spans.length).toBe(before)
    }))
})

describe("HttpBackend.getUser", () => {
  it.scoped("a body naming another id is no user: a session of user 1 never resolves to user 2", () =>
    Effect.gen(function*() {
      const peer = yield* HttpPeer.start((_, reply) => reply.json(200, users["2"]))
      const backend = yield* backendFor(peer)
      expect(yield* backend.getUser("1")).toEqual(Option.none())
      expect(yield* backend.getUser("2")).toEqual(Option.some({ id: "2", username: "bob", isActive: true, isSuperuser: true }))
    }))

  it.scoped("GET /users/:id decodes the user; 404 is Option.none()", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const backend = yield* backendFor(peer)
      expect(yield* backend.getUser("1")).toEqual(Option.some(alice))
      expect(yield* backend.getUser("404")).toEqual(Option.none())
      expect(peer.requests.map((r) => `${r.method} ${r.path}`)).toEqual(["GET /users/1", "GET /users/404"])
    }))

  it.scoped("5xx and bodies that do not decode are TransportErrors", () =>
    Effect.gen(function*() {
      const backend = yield* backendFor(yield* withPeer())
      const boom = failureOf(yield* Effect.exit(backend.getUser("boom")))
      expect(String(boom.cause)).toContain("unexpected status 500")
      const shape = failureOf(yield* Effect.exit(backend.getUser("shape")))
      expect(String(shape.cause)).toContain("does not match the schema")
    }))

  it.scoped("ids `.` and `..`, which would leave /users/, are no user and no request by default", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const backend = yield* backendFor(peer)
      expect(yield* backend.getUser(".")).toEqual(Option.none())
      expect(yield* backend.getUser("..")).toEqual(Option.none())
      expect(yield* backend.getUser("...")).toEqual(Option.none())
      expect(peer.requests.map((r) => r.path)).toEqual(["/users/..."])
      const byQuery = yield* backendFor(peer, {
        getUser: { request: (userId) => HttpClientRequest.get("/lookup").pipe(HttpClientRequest.setUrlParam("id", userId)) }
      })
      expect(yield* byQuery.getUser("..")).toEqual(Option.none())
      expect(peer.requests.at(-1)?.query.get("id")).toBe("..")
    }))

  it.live("an id the request builder cannot encode fails its callers with a TransportError, every time, never a hang", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const id = "\ud800"
      const refuse = (ids: ReadonlyArray<string>) => {
        if (ids.includes(id)) throw new Error(`cannot encode ${ids.join(",")}`)
      }
      for (const backend of [
        yield* backendFor(peer), // encodeURIComponent throws on a lone surrogate
        yield* backendFor(peer, {
          getUser: {
            batch: {
              request: (ids) => {
                refuse(ids)
                return HttpClientRequest.get("/users").pipe(HttpClientRequest.setUrlParam("ids", ids.join(",")))
              }
            }
          }
        }),
        yield* backendFor(peer, {
          getUser: {
            request: (userId) => {
              refuse([userId])
              return HttpClientRequest.get(`/users/${userId}`)
            }
          }
        })
      ]) {
        for (let call = 0; call < 2; call++) {
          const results = yield* Effect.all([backend.getUser(id), backend.getUser(id)], { concurrency: "unbounded", mode: "either" }).pipe(
            Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "a caller was left waiting" })
          )
          for (const result of results) {
            expect(result._tag).toBe("Left")
            if (result._tag === "Left") expect(String(result.left.cause)).toContain("the request builder threw")
          }
        }
        expect(yield* backend.getUser("1")).toEqual(Option.some(alice))
      }
      expect(peer.requests.map((r) => r.path)).toEqual(["/users/1", "/users", "/users/1"])
    }).pipe(Effect.scoped))

  it.scoped("an id that fails the UserId schema is no user and no request; inactive users are hidden", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const backend = yield* backendFor(peer)
      expect(yield* backend.getUser("")).toEqual(Option.none())
      expect(yield* backend.getUser("x".repeat(256))).toEqual(Option.none())
      expect(peer.count()).toBe(0)
      expect(yield* backend.getUser("3")).toEqual(Option.none())
      const lenient = yield* backendFor(peer, { allowInactive: true })
      expect(Option.map(yield* lenient.getUser("3"), (u) => u.username)).toEqual(Option.some("carol"))
    }))

  it.live("concurrent calls for one id from independent fibers share one upstream request", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer({ latency: 50 })
      const backend = yield* backendFor(peer)
      const fibers = yield* Effect.forEach(Array.from({ length: 50 }), () => Effect.fork(backend.getUser("1")))
      const results = yield* Fiber.joinAll(fibers)
      expect(results).toHaveLength(50)
      for (const result of results) expect(result).toEqual(Option.some(alice))
      expect(peer.count((r) => r.path === "/users/1")).toBe(1)
      // Nothing is cached without a TTL: a later call asks again.
      yield* backend.getUser("1")
      expect(peer.count((r) => r.path === "/users/1")).toBe(2)
    }).pipe(Effect.scoped))

  it.live("a waiting caller that is interrupted does not fail the others", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer({ latency: 100 })
      const backend = yield* backendFor(peer)
      const first = yield* Effect.fork(backend.getUser("2"))
      const second = yield* Effect.fork(backend.getUser("2"))
      yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(first)
      const user = yield* Fiber.join(second)
      expect(Option.map(user, (u) => u.username)).toEqual(Option.some("bob"))
      expect(peer.count()).toBe(1)
    }).pipe(Effect.scoped))

  it.live("a fetch still running at the timeout fails all its callers with a TransportError; the next call asks again", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const backend = yield* backendFor(peer, { timeout: "150 millis" })
      const fibers = yield* Effect.forEach(Array.from({ length: 5 }), () => Effect.fork(Effect.exit(backend.getUser("late"))))
      for (const exit of yield* Fiber.joinAll(fibers)) {
        const error = failureOf(exit)
        expect(error).toBeInstanceOf(AuthError.TransportError)
        expect(String(error.cause)).toBe(`GET ${peer.url}/users/late: timed out after 150ms`)
      }
      expect(peer.count((r) => r.path === "/users/late")).toBe(1)
      expect(String(failureOf(yield* Effect.exit(backend.getUser("late"))).cause)).toContain("timed out after 150ms")
      expect(peer.count((r) => r.path === "/users/late")).toBe(2)
      // The 150 ms are for "late": a call meant to succeed gets the suite's 3 seconds (on a loaded
      // machine, an answer from this process's own server can take longer than 150 ms).
      expect(yield* (yield* backendFor(peer)).getUser("1")).toEqual(Option.some(alice))
    }).pipe(Effect.scoped))

  it.live("the timeout cuts a batch: every id of the chunk fails with a TransportError", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const backend = yield* backendFor(peer, { timeout: "150 millis", getUser: { batch: true } })
      const exits = yield* Effect.forEach(["1", "late", "2"], (id) => Effect.exit(backend.getUser(id)), {
        concurrency: "unbounded"
      })
      for (const exit of exits) expect(String(failureOf(exit).cause)).toBe(`GET ${peer.url}/users: timed out after 150ms`)
      expect(peer.count()).toBe(1)
      // The cut batch leaves nothing behind: the next call asks again, in a batch of its own.
      expect(String(failureOf(yield* Effect.exit(backend.getUser("late"))).cause)).toBe(`GET ${peer.url}/users: timed out after 150ms`)
      expect(peer.count()).toBe(2)
      // The 150 ms are for "late": a call meant to succeed gets the suite's 3 seconds (on a loaded
      // machine, an answer from this process's own server can take longer than 150 ms).
      expect(yield* (yield* backendFor(peer, { getUser: { batch: true } })).getUser("1")).toEqual(Option.some(alice))
    }).pipe(Effect.scoped))

  it.live("callers are released at the timeout even when the exchange cannot be interrupted, and its late end reaches nobody", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      // An uninterruptible exchange outlives its timeout: the first fetch of "late" answers 500
      // at LATE ms, after the second caller (at 0.75 LATE) has started a fetch of its own.
      const backend = yield* backendFor(peer, {
        timeout: `${LATE / 2} millis`,
        transformClient: HttpClient.transform((effect) => Effect.uninterruptible(effect))
      })
      const first = yield* Effect.exit(backend.getUser("late"))
      expect(String(failureOf(first).cause)).toContain(`timed out after ${LATE / 2}ms`)
      yield* Effect.sleep(`${LATE / 4} millis`)
      const second = yield* Effect.exit(backend.getUser("late"))
      // Not the first fetch's "unexpected status 500".
      expect(String(failureOf(second).cause)).toContain(`timed out after ${LATE / 2}ms`)
      expect(peer.count((r) => r.path === "/users/late")).toBe(2)
    }).pipe(Effect.scoped))

  // The default batch request carries the ids in its URL: 100 ids of 255 characters made a
  // 26 KB request line, which Node's server answers 431 (nginx refuses 8 KB): every caller a 503.
  it.live("the default batch request keeps its ids within 4 KB of URL: long ids go in several requests", () =>
    Effect.gen(function*() {
      const peer = yield* HttpPeer.start((request, reply) => {
        const ids = (request.query.get("ids") ?? "").split(",")
        reply.json(200, ids.map((id) => ({ id, login: `user-${id.length}-${id.slice(-3)}`, active: true, admin: false })))
      })
      const backend = yield* backendFor(peer, { getUser: { batch: true } })
      const ids = Array.from({ length: 100 }, (_, i) => `${String(i).padStart(3, "0")}-${"x".repeat(251)}`)
      const users = yield* Effect.forEach(ids, (id) => backend.getUser(id), { concurrency: "unbounded" })
      expect(users.map((user) => Option.getOrUndefined(user)?.id)).toEqual(ids)
      // 15 ids of 256 characters (and their separators) to a request: 7 requests, each URL under 4.2 KB
      expect(peer.count()).toBe(7)
      for (const request of peer.requests) {
        expect(request.query.get("ids")!.split(",").length).toBeLessThanOrEqual(15)
        expect(encodeURIComponent(request.query.get("ids")!).length).toBeLessThanOrEqual(4096)
      }
      // Short ids still go together, up to maxSize.
      const short = Array.from({ length: 100 }, (_, i) => `s${i}`)
      yield* Effect.forEach(short, (id) => backend.getUser(id), { concurrency: "unbounded" })
      expect(peer.count()).toBe(8)
    }).pipe(Effect.scoped))

  it.live("with a batch endpoint, concurrent calls over several ids become one GET /users?ids=", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer({ latency: 20 })
      const backend = yield* backendFor(peer, { getUser: { batch: true } })
      const ids = ["1", "2", "404", "1", "2", "404"]
      const fibers = yield* Effect.forEach(
        Array.from({ length: 60 }, (_, i) => ids[i % ids.length]!),
        (id) => Effect.fork(backend.getUser(id))
      )
      const results = yield* Fiber.joinAll(fibers)
      expect(results.map((r) => Option.getOrUndefined(Option.map(r, (u) => u.username))).slice(0, 3)).toEqual([
        "alice",
        "bob",
        undefined
      ])
      expect(peer.count()).toBe(1)
      const [request] = peer.requests
      expect(request?.path).toBe("/users")
      expect(new Set(request?.query.get("ids")?.split(","))).toEqual(new Set(["1", "2", "404"]))
    }).pipe(Effect.scoped))

  it.live("batches are split at maxSize", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer({ latency: 20 })
      const backend = yield* backendFor(peer, { getUser: { batch: { maxSize: 2 } } })
      yield* Effect.forEach(["1", "2", "3", "4", "5"], (id) => backend.getUser(id), { concurrency: "unbounded" })
      expect(peer.count()).toBe(3)
      const sizes = peer.requests.map((r) => r.query.get("ids")!.split(",").length).sort()
      expect(sizes).toEqual([1, 2, 2])
    }).pipe(Effect.scoped))

  it.live("a failed batch fails each of its callers with a TransportError", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const backend = yield* backendFor(peer, { getUser: { batch: true } })
      const exits = yield* Effect.forEach(["1", "boom"], (id) => Effect.exit(backend.getUser(id)), {
        concurrency: "unbounded"
      })
      for (const exit of exits) expect(failureOf(exit)).toBeInstanceOf(AuthError.TransportError)
      expect(peer.count()).toBe(1)
      // Failures are never cached: the next call asks again and succeeds.
      expect(yield* backend.getUser("1")).toEqual(Option.some(alice))
      expect(peer.count()).toBe(2)
    }).pipe(Effect.scoped))

  it.live("a batch answer that lists an id asked for twice fails the chunk with a TransportError, whichever copy is inactive", () =>
    Effect.gen(function*() {
      let answer: ReadonlyArray<typeof Body.Encoded> = []
      const peer = yield* HttpPeer.start((_request, reply) => reply.json(200, answer))
      const backend = yield* backendFor(peer, { getUser: { batch: true } })
      const both = Effect.forEach(["1", "2"], (id) => Effect.exit(backend.getUser(id)), { concurrency: "unbounded" })
      const mallory = { ...users["1"]!, login: "mallory", admin: true }
      for (const twice of [
        [users["1"]!, mallory], // the last copy must not win
        [{ ...users["1"]!, active: false }, users["1"]!] // nor the active one, the inactive hidden
      ]) {
        answer = [...twice, users["2"]!]
        for (const exit of yield* both) {
          expect(String(transportErrorOf(exit).cause)).toBe(`GET ${peer.url}/users: the answer lists an id asked for more than once`)
        }
      }
      // An id that was not asked for is dropped, twice or not.
      answer = [users["1"]!, users["3"]!, users["3"]!]
      const [one, two] = yield* both
      expect(one).toEqual(Exit.succeed(Option.some(alice)))
      expect(two).toEqual(Exit.succeed(Option.none()))
    }).pipe(Effect.scoped))

  it.live("a batch record that does not decode fails only the callers of its id, as GET /users/:id fails its one caller", () =>
    Effect.gen(function*() {
      // User 7 has made their record one the app's Schema refuses; the value must not be quoted.
      const seven = { id: "7", login: [SECRET], active: true, admin: false }
      let answer: ReadonlyArray<unknown> = []
      const peer = yield* HttpPeer.start((request, reply) =>
        request.path === "/users" ? reply.json(200, answer) : reply.json(200, seven)
      )
      const ids = ["1", "2", "7", "404"]
      const ask = (backend: AuthBackend.AuthBackend<any>) =>
        Effect.forEach([...ids, "7", "1"], (id) => Effect.exit(backend.getUser(id)), { concurrency: "unbounded" })

      const perId = transportErrorOf(yield* Effect.exit((yield* backendFor(peer)).getUser("7")))
      expect(String(perId.cause)).toBe(`GET ${peer.url}/users/7: response body does not match the schema at "login"`)

      const cached = yield* backendFor(peer, { getUser: { batch: true, cache: { ttl: "1 hour" } } })
      const custom = yield* backendFor(peer, { getUser: { batch: { users: Schema.Array(UserFromBody) } } })
      // an async Schema: each element decoded through its effect
      const delayed = Schema.transformOrFail(Body, Schema.typeSchema(UserFromBody), {
        strict: true,
        decode: (b) => Effect.as(Effect.sleep("1 millis"), { id: b.id, username: b.login, isActive: b.active, isSuperuser: b.admin }),
        encode: (u) => ParseResult.succeed({ id: u.id, login: u.username, active: u.isActive, admin: u.isSuperuser })
      })
      const asynchronous = yield* backendFor(peer, { user: delayed, getUser: { batch: true } })
      for (const backend of [cached, custom, asynchronous]) {
        for (const record of [seven, { ...seven, id: 7 }]) { // an integer id is read as the string the Schema would make
          answer = [users["1"]!, users["2"]!, record]
          const before = peer.count()
          const [one, two, other, none, again, oneAgain] = yield* ask(backend)
          expect(peer.count()).toBe(before + 1)
          expect(one).toEqual(Exit.succeed(Option.some(alice)))
          expect(oneAgain).toEqual(one)
          expect(Option.map(Exit.getOrElse(two!, () => Option.none()), (u) => u.username)).toEqual(Option.some("bob"))
          expect(none).toEqual(Exit.succeed(Option.none()))
          for (const exit of [other!, again!]) {
            const error = transportErrorOf(exit)
            expect(error.backend).toBe("http")
            expect(String(error.cause)).toMatch(new RegExp(`^GET ${peer.url}/users: response body does not match the schema at "(login|id)"$`))
            expectNoSecret(error)
          }
        }
      }
      // The failure is not cached: the cached backend asks for 7 again, and only for 7.
      const before = peer.count()
      expect(failureOf(yield* Effect.exit(cached.getUser("7")))).toBeInstanceOf(AuthError.TransportError)
      expect(peer.count()).toBe(before + 1)
      expect(peer.requests.at(-1)?.query.get("ids")).toBe("7")
    }).pipe(Effect.scoped))

  it.live("a batch record whose id cannot be read or was not asked for, or a body that is no array, fails the whole chunk", () =>
    Effect.gen(function*() {
      const bad = { login: null, active: true, admin: false }
      let answer: unknown = []
      const peer = yield* HttpPeer.start((_request, reply) => reply.json(200, answer))
      const backend = yield* backendFor(peer, { getUser: { batch: true } })
      const both = Effect.forEach(["1", "2"], (id) => Effect.exit(backend.getUser(id)), { concurrency: "unbounded" })
      const whole = yield* backendFor(peer, {
        getUser: { batch: { users: Schema.Struct({ data: Schema.Array(UserFromBody) }).pipe(Schema.pluck("data")) } }
      })
      for (
        const [body, cause] of [
          [[users["1"]!, bad, users["2"]!], `at "1"."id"`], // no id
          [[users["1"]!, { ...bad, id: ["2"] }], `at "1"."id"`], // an id that is no string
          [[{ ...bad, id: "9" }, users["1"]!, users["2"]!], `at "0"."login"`], // an id not asked for
          [{ users: [users["1"]!, users["2"]!] }, "at <root>"] // no array
        ] as const
      ) {
        answer = body
        for (const exit of yield* both) {
          expect(String(transportErrorOf(exit).cause)).toBe(`GET ${peer.url}/users: response body does not match the schema ${cause}`)
        }
      }
      // A record that does not decode, listed with a copy that does: the id is listed twice.
      answer = [users["1"]!, { ...users["2"]!, login: null }, users["2"]!]
      for (const exit of yield* both) {
        expect(String(transportErrorOf(exit).cause)).toBe(`GET ${peer.url}/users: the answer lists an id asked for more than once`)
      }
      // A Schema of the app's that is not an array of users is decoded whole, as before.
      answer = { data: [users["1"]!, { ...users["2"]!, login: null }] }
      const exits = yield* Effect.forEach(["1", "2"], (id) => Effect.exit(whole.getUser(id)), { concurrency: "unbounded" })
      for (const exit of exits) {
        expect(String(transportErrorOf(exit).cause)).toBe(`GET ${peer.url}/users: response body does not match the schema at "data"."1"."login"`)
      }
    }).pipe(Effect.scoped))

  // A Schema may take the user's id from another key (`Schema.fromKey("user_id")`) while the
  // records carry an `id` of other meaning (a row number): user 7's broken record, whose row is 3,
  // was pinned on user 3 (3's callers failed, 7's were told "no such user").
  it.live("a broken batch record is pinned on its id only where the id key is the user's id; otherwise the chunk fails", () =>
    Effect.gen(function*() {
      const Row = Schema.Struct({ id: Schema.String, user_id: Schema.String, login: Schema.String, active: Schema.Boolean, admin: Schema.Boolean })
      const renamed = Schema.Struct({
        id: Schema.propertySignature(Schema.String).pipe(Schema.fromKey("user_id")),
        username: Schema.propertySignature(Schema.String).pipe(Schema.fromKey("login")),
        isActive: Schema.propertySignature(Schema.Boolean).pipe(Schema.fromKey("active")),
        isSuperuser: Schema.propertySignature(Schema.Boolean).pipe(Schema.fromKey("admin"))
      })
      const transformed = Schema.transform(Row, Schema.typeSchema(renamed), {
        strict: true,
        decode: (r) => ({ id: r.user_id, username: r.login, isActive: r.active, isSuperuser: r.admin }),
        encode: (u) => ({ id: "0", user_id: u.id, login: u.username, active: u.isActive, admin: u.isSuperuser })
      })
      const answer = [
        { id: "30", user_id: "5", login: "eve", active: true, admin: false },
        { id: "3", user_id: "7", login: null, active: true, admin: false }
      ]
      const peer = yield* HttpPeer.start((_request, reply) => reply.json(200, answer))
      for (const user of [renamed, transformed]) {
        const backend = yield* backendFor(peer, { user, getUser: { batch: true } })
        const exits = yield* Effect.forEach(["5", "7", "3"], (id) => Effect.exit(backend.getUser(id)), { concurrency: "unbounded" })
        for (const exit of exits) {
          expect(String(transportErrorOf(exit).cause)).toBe(`GET ${peer.url}/users: response body does not match the schema at "1"."login"`)
        }
      }
    }).pipe(Effect.scoped))

  it.live("a timeout or window longer than a timer can hold (30 days) is cut to the longest one, not fired at once", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer({ latency: 20 })
      for (const getUser of [{}, { batch: true }] as const) {
        const backend = yield* backendFor(peer, { timeout: "30 days", getUser })
        expect(yield* backend.getUser("1")).toEqual(Option.some(alice))
      }
      // A window of 30 days waits (about 24.8 days), rather than sending at once.
      const scope = yield* Scope.make()
      const waiting = yield* backendFor(peer, { getUser: { batch: { window: "30 days" } } }).pipe(Scope.extend(scope))
      const before = peer.count()
      const caller = yield* Effect.fork(Effect.exit(waiting.getUser("2")))
      yield* Effect.sleep("100 millis")
      expect(peer.count()).toBe(before)
      expect(caller.unsafePoll()).toBeNull()
      yield* Scope.close(scope, Exit.void)
      expect(String(transportErrorOf(yield* Fiber.join(caller)).cause)).toContain("the backend is closed")
    }).pipe(Effect.scoped))

  it.live("closing the backend's scope fails its waiting callers, and every later call, with a TransportError at once", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const options: ReadonlyArray<HttpBackend.GetUserOptions> = [
        {}, // waiting on a fetch of "late"
        { batch: true }, // waiting on a batch with "late"
        { batch: { window: "10 seconds" } }, // waiting on the batch window
        { cache: { ttl: "1 hour" } } // "1" cached before the close
      ]
      for (const getUser of options) {
        const scope = yield* Scope.make()
        const backend = yield* backendFor(peer, { getUser }).pipe(Scope.extend(scope))
        if (getUser.cache !== undefined) expect(yield* backend.getUser("1")).toEqual(Option.some(alice))
        const waiting = yield* Effect.fork(backend.getUser("late"))
        yield* Effect.sleep("50 millis")
        yield* Scope.close(scope, Exit.void)
        const guard = Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error("a caller was left waiting") })
        const exits = [
          yield* Fiber.await(waiting).pipe(guard),
          yield* Effect.exit(backend.getUser("1")).pipe(guard),
          yield* Effect.exit(backend.getUser("2")).pipe(guard)
        ]
        for (const exit of exits) {
          expect(String(transportErrorOf(exit).cause)).toBe("the backend is closed (its scope has ended)")
        }
      }
    }).pipe(Effect.scoped))

  it.scoped("a TTL cache answers repeated calls until the TTL has passed", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const backend = yield* backendFor(peer, { getUser: { cache: { ttl: "1 minute" } } })
      expect(yield* backend.getUser("1")).toEqual(Option.some(alice))
      expect(yield* backend.getUser("1")).toEqual(Option.some(alice))
      expect(yield* backend.getUser("404")).toEqual(Option.none())
      expect(yield* backend.getUser("404")).toEqual(Option.none())
      expect(peer.count()).toBe(2)
      yield* TestClock.adjust("59 seconds")
      yield* backend.getUser("1")
      expect(peer.count()).toBe(2)
      yield* TestClock.adjust("2 seconds")
      yield* backend.getUser("1")
      expect(peer.count((r) => r.path === "/users/1")).toBe(2)
    }))

  it.scoped("the cache holds at most `capacity` ids, dropping the oldest", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const backend = yield* backendFor(peer, { getUser: { cache: { ttl: "1 hour", capacity: 2 } } })
      yield* backend.getUser("1")
      yield* backend.getUser("2")
      yield* backend.getUser("404")
      expect(peer.count()).toBe(3)
      yield* backend.getUser("2")
      yield* backend.getUser("404")
      expect(peer.count()).toBe(3)
      yield* backend.getUser("1")
      expect(peer.count()).toBe(4)
    }))
})

describe("HttpBackend.layerConfig", () => {
  // the service's own API key is a secret: read it redacted, and add it to every request
  const layer = HttpBackend.layerConfig({
    id: Config.string("USERS_BACKEND_ID"),
    baseUrl: Config.string("USERS_URL"),
    user: Config.succeed(UserFromBody),
    timeout: Config.duration("USERS_TIMEOUT"),
    transformClient: Config.map(Config.redacted("USERS_API_KEY"), (key) => (client: HttpClient.HttpClient) =>
      HttpClient.mapRequest(client, HttpClientRequest.setHeader("x-api-key", Redacted.value(key))))
  }).pipe(Layer.provide(FetchHttpClient.layer))
  const provider = (url: string, entries: ReadonlyArray<readonly [string, string]> = [["USERS_TIMEOUT", "3 seconds"]]) =>
    ConfigProvider.fromMap(
      new Map([["USERS_BACKEND_ID", "users"], ["USERS_URL", url], ["USERS_API_KEY", "service-key-1"], ...entries])
    )

  it.scoped("reads the base URL, the timeout and a redacted API key from Config", () =>
    Effect.gen(function*() {
      const peer = yield* withPeer()
      const backend = yield* HttpBackend.HttpBackend.pipe(Effect.provide(layer), Effect.withConfigProvider(provider(peer.url)))
      expect(backend.id).toBe("users")
      expect(yield* backend.authenticate(login("alice"), undefined)).toEqual(alice)
      expect(peer.requests[0]?.headers["x-api-key"]).toBe("service-key-1")
    }))

  it.effect("a missing or malformed value fails the layer with a ConfigError", () =>
    Effect.gen(function*() {
      const build = (entries: ReadonlyArray<readonly [string, string]>) =>
        Effect.flip(Effect.withConfigProvider(Layer.build(layer).pipe(Effect.scoped), provider("http://127.0.0.1:1", entries)))
      expect(ConfigError.isConfigError(yield* build([]))).toBe(true)
      expect(ConfigError.isConfigError(yield* build([["USERS_TIMEOUT", "soon"]]))).toBe(true)
    }))
})
