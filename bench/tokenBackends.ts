/**
 * The token backends the HTTP benchmarks put behind their protected routes, written as the docs
 * teach backends to fail (prebuilt failures, docs/writing-a-backend.md).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as AuthBackend from "../src/AuthBackend.js"
import * as AuthError from "../src/AuthError.js"
import * as Credentials from "../src/Credentials.js"
import type { User } from "../src/User.js"

/** A token backend that matches nothing (another issuer's tokens), as a JWT backend would answer. */
export const refusing = (id: string) =>
  AuthBackend.make({
    id,
    credentials: Credentials.Token,
    authenticate: () => AuthError.noMatch(id, "invalid-credentials"),
    getUser: () => Effect.succeedNone
  })

/** A token backend that looks the token up in a table. */
export const table = (id: string, tokens: ReadonlyMap<string, User>) =>
  AuthBackend.make({
    id,
    credentials: Credentials.Token,
    authenticate: ({ token }) => {
      const user = tokens.get(Redacted.value(token))
      return user === undefined ? AuthError.noMatch(id, "invalid-credentials") : Effect.succeed(user)
    },
    getUser: (userId) => Effect.succeed(Option.fromNullable([...tokens.values()].find((u) => u.id === userId)))
  })
