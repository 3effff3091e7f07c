// Session ids, store keys, auth hashes and constant-time comparison.
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import * as Redacted from "effect/Redacted"
import { type Algorithm, sessionAuthHasher } from "../django/signing.js"

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

/**
 * HMAC-SHA256 of the password hash under a key derived once from an app secret, base64url; `""`
 * when the user has no password hash. @internal
 */
export const authHasher = (secret: Redacted.Redacted<string>) => {
  const key = createHash("sha256").update(keySalt).update(Redacted.value(secret)).digest()
  return (passwordHash: string): string =>
    passwordHash === "" ? "" : createHmac("sha256", key).update(passwordHash).digest("base64url")
}

// Its own salt: a device fingerprint and an auth hash of the same bytes never coincide.
const deviceSalt = "effect-auth.Session.secondFactorDevice"

/**
 * HMAC-SHA256 of a second factor's device identity (`AuthBackend.secondFactorDevice`) under a key
 * derived once from an app secret, base64url: what a session records of the device its second
 * factor was verified against. Keyed, so that the session store holds nothing a device's identity
 * (a digest of its secret) can be matched against without the app secret. The same under every
 * session format: Django never reads it. @internal
 */
export const deviceHasher = (secret: Redacted.Redacted<string>) => {
  const key = createHash("sha256").update(deviceSalt).update(Redacted.value(secret)).digest()
  return (identity: string): string => createHmac("sha256", key).update(identity).digest("base64url")
}

/** Constant-time equality; lengths are not secret (every hash and token has a fixed length). @internal */
export const equal = (a: string, b: string): boolean => {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

/**
 * How a session's id, store key and auth hash are made: effect-auth's own, or Django's, so that
 * a Django site and an effect-auth service can share one session table. @internal
 */
export interface Format {
  readonly newId: () => string
  readonly isId: (value: unknown) => value is string
  readonly storeKey: (id: string) => string
  /** The auth hash under one secret (its key derived once, at `Session.make`). */
  readonly authHasher: (secret: Redacted.Redacted<string>) => (passwordHash: string) => string
  /** Older auth hashes still accepted under one secret (then rewritten with `authHasher`'s). */
  readonly legacyAuthHashers: (secret: Redacted.Redacted<string>) => ReadonlyArray<(passwordHash: string) => string>
}

/** effect-auth's: 43-character random ids, stored under their SHA-256, base64url HMACs. @internal */
export const effectAuthFormat: Format = {
  newId: randomToken,
  isId: isToken,
  storeKey,
  authHasher,
  legacyAuthHashers: () => []
}

// Django's `VALID_KEY_CHARS` (lowercase letters and digits) and `_get_new_session_key`'s length.
const djangoKeyChars = "abcdefghijklmnopqrstuvwxyz0123456789"
const djangoKeyPattern = /^[a-z0-9]{8,40}$/

/** Django's `get_random_string(32, VALID_KEY_CHARS)`, unbiased. @internal */
export const djangoSessionKey = (): string => {
  let key = ""
  while (key.length < 32) {
    for (const byte of randomBytes(48)) {
      // 252 = 7 × 36: bytes above it would favour the first characters.
      if (byte < 252 && key.length < 32) key += djangoKeyChars[byte % 36]
    }
  }
  return key
}

/**
 * Django's: 32-character keys from `[a-z0-9]` stored as they are (the `django_session` primary key),
 * and `get_session_auth_hash()` (salted HMAC of the password hash, hex) under the site's
 * `DEFAULT_HASHING_ALGORITHM`: "sha256" (Django 3.1's default, and all 4.0+ knows), or "sha1" for
 * a 3.1–3.2 site that kept the pre-3.1 hash. Django hashes whatever `password` holds, "" included
 * (and flushes a session whose hash is empty), so every session is bound to the row's password
 * field, as on Django's side. @internal
 */
export const djangoFormatWith = (algorithm: Algorithm): Format => ({
  newId: djangoSessionKey,
  isId: (value): value is string => typeof value === "string" && djangoKeyPattern.test(value),
  storeKey: (id) => id,
  authHasher: (secret) => sessionAuthHasher(Redacted.value(secret), algorithm),
  // The other algorithm's hash, accepted and rewritten: under "sha256", what Django before 3.1 (or
  // 3.1–3.2 under "sha1") wrote, which Django 3.2 accepts too (`_legacy_get_session_auth_hash`);
  // under "sha1", what a site on "sha256" (or effect-auth before it was told "sha1") wrote.
  legacyAuthHashers: (secret) => [sessionAuthHasher(Redacted.value(secret), algorithm === "sha1" ? "sha256" : "sha1")]
})

/**
 * A Django site's `DEFAULT_HASHING_ALGORITHM` as an option: `undefined` is "sha256"; anything but
 * the two names is `undefined`, for the caller's AuthConfigError. @internal
 */
export const hashingAlgorithmOf = (value: unknown): "sha256" | "sha1" | undefined =>
  value === undefined ? "sha256" : value === "sha256" || value === "sha1" ? value : undefined
