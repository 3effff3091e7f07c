/**
 * Type-level test, compiled on its own (`tsc -p test-types`), because registering a user type is
 * global to a program: an app registers its user type once and it flows through without casts.
 */
import { Effect, Option } from "effect"
import { AuthBackend, AuthError, AuthService, Credentials, type User } from "../src/index.js"

interface AppUser extends User.BaseUser {
  readonly email: string
  readonly department: "ops" | "sales"
}

declare module "../src/User.js" {
  interface Register {
    readonly user: AppUser
  }
}

const carol: AppUser = { id: "3", username: "carol", isActive: true, isSuperuser: false, email: "c@example.org", department: "ops" }

// A backend must now produce the app's user type ...
export const Directory = AuthBackend.make({
  id: "directory",
  credentials: Credentials.UsernamePassword,
  authenticate: () => Effect.succeed(carol),
  getUser: () => Effect.succeed(Option.some(carol))
})

export const NotAnAppUser = AuthBackend.make({
  id: "bad",
  credentials: Credentials.UsernamePassword,
  // @ts-expect-error a BaseUser without the app's fields is no longer a user
  authenticate: () => Effect.succeed({ id: "1", username: "x", isActive: true, isSuperuser: false }),
  getUser: () => Effect.succeed(Option.none())
})

// ... and every service hands the app's type back, with no cast.
export const department: Effect.Effect<"ops" | "sales", AuthError.AuthenticateError, AuthService.AuthService> = Effect.map(
  AuthService.authenticate({ username: "carol", password: "pw" }),
  ({ user }) => user.department
)

export const email = Effect.map(
  AuthService.getUser("directory", "3"),
  Option.map((user) => user.email)
)
