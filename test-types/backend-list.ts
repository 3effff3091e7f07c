/** Type-level test: a chain of backends given by their Tags requires every Tag. */
import { Context, Effect, Layer, Option } from "effect"
import { AuthBackend, AuthEvents, AuthService, Credentials } from "../src/index.js"

class First extends Context.Tag("First")<First, AuthBackend.AuthBackend<Credentials.UsernamePassword>>() {}
class Second extends Context.Tag("Second")<Second, AuthBackend.AuthBackend<Credentials.Token>>() {}

const plain = AuthBackend.make({
  id: "plain",
  credentials: Credentials.Token,
  authenticate: () => Effect.never,
  getUser: () => Effect.succeed(Option.none())
})

export const chain: Layer.Layer<AuthService.AuthService, unknown, First | Second | AuthEvents.AuthEvents> = AuthService.layer([
  First,
  plain,
  Second
])

// @ts-expect-error the layer still needs First and Second
export const missing: Layer.Layer<AuthService.AuthService, unknown, AuthEvents.AuthEvents> = AuthService.layer([First, Second])
