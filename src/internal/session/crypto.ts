// Session ids, store keys, auth hashes and constant-time comparison.
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import * as Redacted from "effect/Redacted"

/** 32 random bytes, base64url without padding: 43 characters. @internal */
export const randomToken = (): string => randomBytes(32).toString("base64url")

const tokenPattern = /^[A-Za-z0-9_-]{43}$/

/** Whether a value can be a session id or CSRF token made by {@link randomToken}. @internal */
export const isToken = (value: unknown): value is string => typeof value === "string" && tokenPattern.test(value)

/**
 * The key a session is stored under: a SHA-256 digest of its id, so that whoever reads the store
 * (a backup, a replica, a leaked dump) holds no session id that could be replayed as a cookie.
 *
 * @internal
 */
export const storeKey = (sessionId: string): string => createHash("sha256").update(sessionId).digest("base64url")

// Domain separation, as Django's salted_hmac: the secret keys nothing else with the same bytes.
const keySalt = "effect-auth.Session.authHash"

/** The HMAC key derived from an app secret. @internal */
export const deriveKey = (secret: Redacted.Redacted<string>): Buffer =>
  createHash("sha256").update(keySalt).update(Redacted.value(secret)).digest()

/** HMAC-SHA256 of the password hash, base64url; `""` when the user has no password hash. @internal */
export const authHash = (key: Buffer, passwordHash: string): string =>
  passwordHash === "" ? "" : createHmac("sha256", key).update(passwordHash).digest("base64url")

/** Constant-time equality; lengths are not secret (every hash and token has a fixed length). @internal */
export const equal = (a: string, b: string): boolean => {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}
