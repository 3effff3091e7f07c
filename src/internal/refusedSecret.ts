// Whether an attempt that ended without a clean "nobody matched" was still a guess some backend
// judged: Lockout counts such a guess. Without this, a backend that cannot answer (an LDAP server
// down, under either policy) made every wrong password checked by the others a refund, and
// guessing at them was unlimited for as long as the outage lasted.
import * as AuthError from "../AuthError.js"

/**
 * A backend took the credentials as its own and refused them: a wrong secret, and equally a name
 * it does not know, an inactive account or expired credentials. All of these count alike, as they
 * do when no backend fails: were a missing name refunded while a wrong password counted, the lock
 * that only existing names reach would tell them apart during an outage (and an inactive
 * account's right password from a wrong one). Only credentials of a kind no backend reads are no
 * guess. @internal
 */
export const isRefusal = (attempt: AuthError.Attempt): boolean =>
  attempt._tag === "NoMatch" && attempt.reason !== "unsupported-credentials"

// The TransportErrors that ended a call (`onTransportError: "fail"`) after a backend had refused
// the secret. The error escapes the fold with its fields as they are (they are public, and Django
// lets the exception escape too), so the fact travels beside it; only that rare path writes here.
const afterRefusal = new WeakSet<object>()

/**
 * Notes that `error` ends a call in which `attempts` came before; answers the error that escapes.
 * A call that judged the secret gets an error object of its own, with the same fields: a backend
 * may fail every call with one shared object (a circuit breaker's last error, a prebuilt
 * failure), and the mark must not reach the calls that judged nothing (another client's, counted
 * by Lockout for a guess it never made). @internal
 */
export const escaping = (
  attempts: ReadonlyArray<AuthError.Attempt> | undefined,
  error: AuthError.TransportError
): AuthError.TransportError => {
  if (attempts === undefined || !attempts.some(isRefusal)) return error
  const own = new AuthError.TransportError({ backend: error.backend, cause: error.cause })
  afterRefusal.add(own)
  return own
}

/**
 * Whether a failed call still judged the secret: `BackendUnavailable` whose attempts hold a
 * refusal, or a `TransportError` that ended a call after one. @internal
 */
export const judged = (failure: unknown): boolean => {
  const tagged = failure as { readonly _tag?: unknown; readonly attempts?: ReadonlyArray<AuthError.Attempt> }
  if (tagged === null || typeof tagged !== "object") return false
  if (tagged._tag === "BackendUnavailable") return tagged.attempts?.some(isRefusal) === true
  return tagged._tag === "TransportError" && afterRefusal.has(tagged)
}
