// An app's mapping of what an external system says (claims, a directory entry) to an
// `ExternalUser`, run where a backend's login calls it. It is written against values the
// external system chose (`c.upn as string` for a token without `upn`), so it may throw, or answer
// something that is no user: either is the failure provisioning gives an external user that does
// not fit the store (a TransportError naming the field, never a value: the claims are personal
// data), not a defect (an HTTP 500).
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as AuthError from "../AuthError.js"

/** The cause of a TransportError for an external user that does not fit the store. @internal */
export const doesNotFit = (detail: string): string => `the external user does not fit the store${detail}`

/**
 * Runs `map` and checks that it answered an object with a string `username` (what a backend reads
 * before provisioning); the rest is checked when it is provisioned.
 *
 * @internal
 */
export const mapped = <A extends { readonly username: string }>(
  backend: string,
  map: () => A
): Effect.Effect<A, AuthError.TransportError> =>
  Effect.suspend(() => {
    let external: A
    let username: unknown
    try {
      external = map()
      // read here too: a getter may throw as well
      username = Predicate.isObject(external) ? external.username : undefined
    } catch {
      return Effect.fail(new AuthError.TransportError({ backend, cause: doesNotFit(": the mapping threw") }))
    }
    return typeof username === "string"
      ? Effect.succeed(external)
      : Effect.fail(new AuthError.TransportError({ backend, cause: doesNotFit(" at \"username\"") }))
  })
