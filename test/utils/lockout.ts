// What the Lockout suites on Redis and SQL share: a password backend that counts the attempts that
// reach it, and the outcome of an attempt as a tag.
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as AuthBackend from "../../src/AuthBackend.js"
import * as AuthError from "../../src/AuthError.js"
import * as Credentials from "../../src/Credentials.js"
import * as TestBackend from "../../src/testing/TestBackend.js"

const alice = TestBackend.user("alice")

/** Accepts the password "right" for anyone; counts every attempt that reaches it. */
export const counting = () => {
  let calls = 0
  const backend = AuthBackend.make({
    id: "passwords",
    credentials: Credentials.UsernamePassword,
    // Asynchronous like a real hash, so attempts from both instances overlap.
    authenticate: ({ password }) =>
      Effect.suspend(() => {
        calls++
        return Redacted.value(password) === "right"
          ? Effect.succeed(alice)
          : Effect.zipRight(Effect.sleep("5 millis"), AuthError.noMatch("passwords", "invalid-credentials"))
      }),
    getUser: () => Effect.succeedNone
  })
  return { backend, calls: () => calls }
}

export const tagOf = (exit: Exit.Exit<unknown, AuthError.AuthenticateError>) =>
  Exit.isSuccess(exit) ? "success" : exit.cause._tag === "Fail" ? exit.cause.error._tag : "other"
