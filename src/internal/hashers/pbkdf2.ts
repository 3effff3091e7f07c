import * as crypto from "node:crypto"
import * as Effect from "effect/Effect"
import type { Hasher, Purpose, Run } from "./common.js"
import {
  b64,
  checkSalt,
  constantTimeEquals,
  failWith,
  mustUpdateSalt,
  pyInt,
  pyLen,
  pySplit,
  randomString,
  SALT_LENGTH,
  WORK_CEILING,
  withinCeiling
} from "./common.js"

import { djangoDefaults } from "./djangoDefaults.js"

/** The two PBKDF2 algorithms Django ships. */
export type Pbkdf2Algorithm = "pbkdf2_sha256" | "pbkdf2_sha1"

/** Node's limit for the iteration count (a signed 32-bit integer). */
export const MAX_ITERATIONS = 2 ** 31 - 1

const derive = (password: Uint8Array, salt: string, iterations: number, digest: "sha256" | "sha1") =>
  new Promise<Buffer>((resolve, reject) =>
    crypto.pbkdf2(password, Buffer.from(salt, "utf8"), iterations, digest === "sha256" ? 32 : 20, digest, (e, key) =>
      e === null ? resolve(key) : reject(e)
    )
  )

/**
 * Django's `PBKDF2PasswordHasher` / `PBKDF2SHA1PasswordHasher`:
 * `<algorithm>$<iterations>$<salt>$<base64 hash>`.
 */
export const make = (algorithm: Pbkdf2Algorithm, iterations: number, run: Run): Hasher => {
  const digest = algorithm === "pbkdf2_sha256" ? "sha256" : "sha1"
  const fail = failWith(algorithm)

  const decode = (encoded: string) => {
    const parts = pySplit(encoded, "$", 3)
    if (parts.length !== 4 || parts[0] !== algorithm) {
      return fail(`expected ${algorithm}$<iterations>$<salt>$<hash>`)
    }
    const count = pyInt(parts[1]!)
    return count === undefined
      ? fail("iterations is not an integer")
      : Effect.succeed({ iterations: count, salt: parts[2]!, hash: parts[3]! })
  }

  const encode = (password: Uint8Array, salt: string, count: number | undefined, purpose: Purpose) =>
    Effect.gen(function*() {
      yield* checkSalt(algorithm, salt)
      // Python's `iterations or self.iterations`: a stored 0 falls back to the setting.
      const effective = count || iterations
      if (effective < 1 || effective > MAX_ITERATIONS || !Number.isSafeInteger(effective)) {
        return yield* fail(`iterations must be between 1 and ${MAX_ITERATIONS}`)
      }
      if (purpose === "verify" && !withinCeiling(effective, iterations, djangoDefaults.pbkdf2.iterations)) {
        return yield* fail(`iterations beyond ${WORK_CEILING} times the configured work: not checked`)
      }
      const key = yield* run(algorithm, purpose, () => derive(password, salt, effective, digest))
      return `${algorithm}$${effective}$${salt}$${b64(key)}`
    })

  return {
    algorithm,
    writable: true,
    salt: () => randomString(SALT_LENGTH),
    encode: (password, salt, purpose = "encode") => encode(password, salt, undefined, purpose),
    verify: (password, encoded) =>
      Effect.flatMap(decode(encoded), (d) =>
        Effect.map(encode(password, d.salt, d.iterations, "verify"), (again) => constantTimeEquals(encoded, again))),
    mustUpdate: (encoded) =>
      Effect.map(decode(encoded), (d) => d.iterations !== iterations || mustUpdateSalt(pyLen(d.salt))),
    hardenRuntime: (password, encoded) =>
      Effect.flatMap(decode(encoded), (d) => {
        const extra = iterations - d.iterations
        return extra > 0 ? Effect.asVoid(encode(password, d.salt, extra, "harden")) : Effect.void
      })
  }
}
