import { Effect, Layer, Option, Redacted } from "effect"
import { AuthBackend, AuthError, AuthEvents, AuthService, Credentials } from "effect-auth"

const user = (username: string) => ({ id: username, username, isActive: true, isSuperuser: false })
// Failing a login is the common case: AuthError.failures(id) prebuilds a backend's failures once.
const noMatch = (backend: string) => AuthError.failures(backend).noMatch("invalid-credentials")

const Passwords = AuthBackend.make({
  id: "passwords",
  credentials: Credentials.UsernamePassword,
  authenticate: ({ password, username }) =>
    username === "admin" && Redacted.value(password) === "hunter2" ? Effect.succeed(user("admin")) : noMatch("passwords"),
  getUser: (id) => Effect.succeed(id === "admin" ? Option.some(user("admin")) : Option.none())
})
const Tokens = AuthBackend.make({
  id: "tokens",
  credentials: Credentials.Token,
  authenticate: ({ token }) => Redacted.value(token) === "ea_demo" ? Effect.succeed(user("bot")) : noMatch("tokens"),
  getUser: () => Effect.succeedNone
})

const AuthLive = AuthService.layer([Passwords, Tokens]).pipe(Layer.provide(AuthEvents.layer))

AuthService.authenticate({ token: "ea_demo" }).pipe(
  Effect.tap(({ backend, user }) => Effect.log(`${user.username} logged in via ${backend}`)),
  Effect.provide(AuthLive),
  Effect.runPromise
)
