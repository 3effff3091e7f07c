/**
 * "Writing a backend", runnable: a custom backend that asks a yes/no web API whether to let a
 * user in, as in Django's documentation, folded with a second backend into one AuthService.
 *
 *   npx tsx examples/yes-no-backend.ts
 *
 * The example starts its own tiny user service on 127.0.0.1 (a random port), so it needs nothing
 * else to run.
 */
import { FetchHttpClient, HttpClient, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { Context, Effect, Layer, Option, Redacted, Schedule, Schema } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { AuthBackend, AuthError, AuthEvents, AuthService, Credentials, TestBackend, type User } from "../src/index.js"

// ---------------------------------------------------------------------------------------------
// 1. The backend
// ---------------------------------------------------------------------------------------------

/** What the user service answers to `POST /check`. */
const CheckResponse = Schema.Struct({
  allowed: Schema.Boolean,
  user: Schema.optional(Schema.Struct({
    id: Schema.String,
    username: Schema.String,
    active: Schema.Boolean,
    admin: Schema.Boolean,
    permissions: Schema.Array(Schema.String)
  }))
})

/** What `GET /users/:id` answers. */
const UserResponse = Schema.Struct({
  id: Schema.String,
  username: Schema.String,
  active: Schema.Boolean,
  admin: Schema.Boolean,
  permissions: Schema.Array(Schema.String)
})
type UserResponse = typeof UserResponse.Type

const toUser = (u: UserResponse) => ({ id: u.id, username: u.username, isActive: u.active, isSuperuser: u.admin })

/** The backend is a service, so an app passes its Tag to AuthService.layer and tests swap it. */
export class YesNoBackend extends Context.Tag("example/YesNoBackend")<
  YesNoBackend,
  AuthBackend.AuthBackend<Credentials.UsernamePassword>
>() {}

export const makeYesNoBackend = (baseUrl: string) =>
  Effect.gen(function*() {
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest(HttpClientRequest.prependUrl(baseUrl))
    )
    const id = "yes-no"
    const fail = AuthError.failures(id)
    const transport = (cause: unknown) => new AuthError.TransportError({ backend: id, cause })
    // Every failure of the call itself (refused, reset, 5xx, a body that does not decode)
    // becomes a TransportError; the password never goes into it.

    const fetchUser = (userId: string) =>
      client.get(`/users/${encodeURIComponent(userId)}`).pipe(
        Effect.flatMap((response) =>
          response.status === 404
            ? Effect.succeed(Option.none<UserResponse>())
            : HttpClientResponse.filterStatusOk(response).pipe(
              Effect.flatMap(HttpClientResponse.schemaBodyJson(UserResponse)),
              Effect.map(Option.some)
            )
        ),
        Effect.mapError((error) => transport(error.message))
      )

    return AuthBackend.make({
      id,
      credentials: Credentials.UsernamePassword,
      authenticate: ({ password, username }) =>
        HttpClientRequest.post("/check").pipe(
          HttpClientRequest.bodyUnsafeJson({ username, password: Redacted.value(password) }),
          client.execute,
          Effect.flatMap(HttpClientResponse.filterStatusOk),
          Effect.flatMap(HttpClientResponse.schemaBodyJson(CheckResponse)),
          Effect.mapError((error) =>
            transport(error._tag === "ParseError" ? "unexpected response body" : `${error._tag}: ${error.reason}`)
          ),
          Effect.flatMap(({ allowed, user }): Effect.Effect<User.BaseUser, AuthError.BackendError> => {
            if (!allowed || user === undefined) {
              return fail.noMatch("invalid-credentials")
            }
            if (!user.active) return fail.permissionDenied("disabled upstream")
            return Effect.succeed(toUser(user))
          })
        ),
      getUser: (userId) => Effect.map(fetchUser(userId), Option.map(toUser)),
      hasPerm: (user, perm, obj) =>
        obj !== undefined || !user.isActive
          ? Effect.succeed(false)
          : Effect.map(fetchUser(user.id), Option.match({ onNone: () => false, onSome: (u) => u.permissions.includes(perm) })),
      policy: {
        timeout: "2 seconds",
        retry: Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
        onTransportError: "fallthrough"
      }
    })
  })

export const YesNoBackendLive = (baseUrl: string) =>
  Layer.effect(YesNoBackend, makeYesNoBackend(baseUrl)).pipe(Layer.provide(FetchHttpClient.layer))

// ---------------------------------------------------------------------------------------------
// 2. A tiny user service to ask (in real life: somebody else's server)
// ---------------------------------------------------------------------------------------------

const users = [
  { id: "7", username: "alice", password: "wonderland", active: true, admin: false, permissions: ["blog.add_post"] },
  { id: "8", username: "mallory", password: "evil", active: false, admin: false, permissions: [] }
]

export const startUserService = Effect.acquireRelease(
  Effect.async<http.Server>((resume) => {
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (chunk) => body += chunk)
      req.on("end", () => {
        const send = (status: number, value: unknown) => {
          res.writeHead(status, { "content-type": "application/json" })
          res.end(JSON.stringify(value))
        }
        if (req.method === "POST" && req.url === "/check") {
          const { password, username } = JSON.parse(body) as { username: string; password: string }
          const found = users.find((u) => u.username === username && u.password === password)
          if (found === undefined) return send(200, { allowed: false })
          const { password: _, ...user } = found
          return send(200, { allowed: true, user })
        }
        const match = /^\/users\/(.+)$/.exec(req.url ?? "")
        const found = match && users.find((u) => u.id === decodeURIComponent(match[1]!))
        if (found) {
          const { password: _, ...user } = found
          return send(200, user)
        }
        send(404, { detail: "not found" })
      })
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`))

// ---------------------------------------------------------------------------------------------
// 3. An app: the yes/no backend first, then a local fallback, folded into one AuthService
// ---------------------------------------------------------------------------------------------

const localBackend = TestBackend.passwords("local", [
  { user: TestBackend.user("ops", { id: "ops" }), password: "break-glass", permissions: ["blog.add_post"] }
])

const main = Effect.gen(function*() {
  const url = yield* startUserService
  const AuthLive = AuthService.layer([YesNoBackend, localBackend]).pipe(
    Layer.provide(Layer.merge(YesNoBackendLive(url), AuthEvents.layer))
  )
  yield* Effect.gen(function*() {
    const auth = yield* AuthService.AuthService
    const attempts = [
      { username: "alice", password: "wonderland" },
      { username: "alice", password: "wrong" },
      { username: "mallory", password: "evil" },
      { username: "ops", password: "break-glass" }
    ]
    for (const credentials of attempts) {
      const result = yield* Effect.either(auth.authenticate(credentials))
      const text = result._tag === "Right"
        ? `logged in as ${result.right.user.username} via ${result.right.backend}`
        : `refused: ${result.left._tag}`
      yield* Effect.log(`${credentials.username}: ${text}`)
    }
    const alice = yield* auth.getUser("yes-no", "7")
    if (Option.isSome(alice)) {
      yield* Effect.log(`alice may add posts: ${yield* auth.hasPerm(alice.value, "blog.add_post")}`)
    }
  }).pipe(Effect.provide(AuthLive))
})

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(Effect.scoped(main)).catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}
