// The login transaction (state, nonce, PKCE verifier) kept by the browser between the redirect to
// the provider and the callback: a short-lived cookie, HttpOnly, signed with HMAC-SHA256 under a
// key derived from the app's secret. Signed rather than server-side: nothing to store or clean up,
// any instance can finish a login any other started; the values are useless without the code the
// provider sends to the same browser, and the cookie lives ten minutes and is cleared at the
// callback (a replayed code is refused by the provider anyway).
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHmac, timingSafeEqual } from "node:crypto"

/** @internal */
export interface Transaction {
  readonly state: string
  readonly nonce: string
  readonly codeVerifier: string
  /** Epoch milliseconds after which the callback is refused. */
  readonly expiresAt: number
  /** Where the login lands, checked when it started (`SafeRedirect`); `""` for the default. */
  readonly next: string
}

/**
 * The longest cookie value `open` takes: a browser keeps 4096 bytes a cookie, name and attributes
 * included. A transaction whose `next` makes it longer is sealed without it. @internal
 */
export const maxCookieLength = 3800

const keyOf = (secret: Redacted.Redacted<string>): Buffer =>
  createHmac("sha256", "effect-auth.oidc.transaction").update(Redacted.value(secret)).digest()

const sign = (key: Buffer, payload: string): string => createHmac("sha256", key).update(payload).digest("base64url")

/** The cookie's value: `<payload>.<signature>`, both base64url. @internal */
export const seal = (secret: Redacted.Redacted<string>, transaction: Transaction): string => {
  const payload = Buffer.from(
    JSON.stringify([transaction.state, transaction.nonce, transaction.codeVerifier, transaction.expiresAt, transaction.next])
  )
    .toString("base64url")
  return `${payload}.${sign(keyOf(secret), payload)}`
}

/** The transaction of a cookie value, if it is one this app signed and it has not expired. @internal */
export const open = (secret: Redacted.Redacted<string>, value: string | undefined, now: number): Option.Option<Transaction> => {
  if (value === undefined || value.length > maxCookieLength) return Option.none()
  const dot = value.indexOf(".")
  if (dot <= 0) return Option.none()
  const payload = value.slice(0, dot)
  const given = Buffer.from(value.slice(dot + 1))
  const expected = Buffer.from(sign(keyOf(secret), payload))
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return Option.none()
  try {
    const parsed: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"))
    // Four fields: a login started before `next` was kept (the default landing).
    if (!Array.isArray(parsed) || (parsed.length !== 4 && parsed.length !== 5)) return Option.none()
    const [state, nonce, codeVerifier, expiresAt, next = ""] = parsed
    if (typeof state !== "string" || typeof nonce !== "string" || typeof codeVerifier !== "string") return Option.none()
    if (typeof expiresAt !== "number" || expiresAt <= now || typeof next !== "string") return Option.none()
    return Option.some({ state, nonce, codeVerifier, expiresAt, next })
  } catch {
    return Option.none()
  }
}
