import * as crypto from "node:crypto"
import * as Effect from "effect/Effect"
import type { Hasher } from "./common.js"
import { checkSalt, constantTimeEquals, failWith, mustUpdateSalt, pyLen, pySplit, randomString, SALT_LENGTH } from "./common.js"

// These digests take microseconds, so they run inline: no pool, no permit.
const hex = (digest: "md5" | "sha1", ...parts: ReadonlyArray<Uint8Array>): string => {
  const h = crypto.createHash(digest)
  for (const part of parts) h.update(part)
  return h.digest("hex")
}

/** Django's `MD5PasswordHasher` / `SHA1PasswordHasher`: `<algorithm>$<salt>$<hex(digest(salt + password))>`. */
export const salted = (algorithm: "md5" | "sha1"): Hasher => {
  const fail = failWith(algorithm)
  const decode = (encoded: string) => {
    const parts = pySplit(encoded, "$", 2)
    return parts.length !== 3 || parts[0] !== algorithm
      ? fail(`expected ${algorithm}$<salt>$<hash>`)
      : Effect.succeed({ salt: parts[1]!, hash: parts[2]! })
  }
  const encode = (password: Uint8Array, salt: string) =>
    Effect.as(
      checkSalt(algorithm, salt),
      `${algorithm}$${salt}$${hex(algorithm, Buffer.from(salt, "utf8"), password)}`
    )
  return {
    algorithm,
    writable: false,
    salt: () => randomString(SALT_LENGTH),
    encode: (password, salt) => Effect.suspend(() => encode(password, salt)),
    verify: (password, encoded) =>
      Effect.flatMap(decode(encoded), (d) =>
        Effect.map(encode(password, d.salt), (again) => constantTimeEquals(encoded, again))),
    mustUpdate: (encoded) => Effect.map(decode(encoded), (d) => mustUpdateSalt(pyLen(d.salt))),
    hardenRuntime: () => Effect.void
  }
}

/**
 * Django's `UnsaltedMD5PasswordHasher`: a bare 32-character hex digest; `md5$$<hex>` (ancient
 * Django) is accepted too.
 */
export const unsaltedMd5: Hasher = {
  algorithm: "unsalted_md5",
  writable: false,
  salt: () => "",
  encode: (password, salt) =>
    salt === ""
      ? Effect.sync(() => hex("md5", password))
      : failWith("unsalted_md5")("unsalted_md5 takes no salt"),
  verify: (password, encoded) =>
    Effect.sync(() => {
      const bare = pyLen(encoded) === 37 && encoded.startsWith("md5$$") ? encoded.slice(5) : encoded
      return constantTimeEquals(bare, hex("md5", password))
    }),
  mustUpdate: () => Effect.succeed(false),
  hardenRuntime: () => Effect.void
}

/** Django's `UnsaltedSHA1PasswordHasher`: `sha1$$<hex>`. */
export const unsaltedSha1: Hasher = {
  algorithm: "unsalted_sha1",
  writable: false,
  salt: () => "",
  encode: (password, salt) =>
    salt === ""
      ? Effect.sync(() => `sha1$$${hex("sha1", password)}`)
      : failWith("unsalted_sha1")("unsalted_sha1 takes no salt"),
  verify: (password, encoded) =>
    Effect.sync(() => constantTimeEquals(encoded, `sha1$$${hex("sha1", password)}`)),
  mustUpdate: () => Effect.succeed(false),
  hardenRuntime: () => Effect.void
}
