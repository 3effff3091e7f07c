import * as crypto from "node:crypto"
import * as Effect from "effect/Effect"
import type { Hasher, Purpose, Run } from "./common.js"
import { constantTimeEquals, failWith, optionalDriver, pyInt, pySplit, WORK_CEILING, withinCeiling } from "./common.js"
import { djangoDefaults } from "./djangoDefaults.js"

// @node-rs/bcrypt is an optional peer dependency: loaded on first use, so sites that never store
// bcrypt hashes need not install it (a missing package fails that hash with a HashError that
// says how to install it).
//
// The driver's type names only what this module calls: the declarations this package ships must
// not name an optional peer, or a consumer without it could not type-check them.
export interface BcryptDriver {
  readonly hash: (input: Uint8Array | string, cost: number, salt: Uint8Array | string) => Promise<string>
}
export const driver = optionalDriver<BcryptDriver>("@node-rs/bcrypt", "1.10.8", () => import("@node-rs/bcrypt"))

/**
 * What plain `bcrypt` does with a password over 72 bytes: `"reject"` fails with a typed error
 * (pyca/bcrypt 5, Django 5.2+); `"truncate"` hashes the first 72 bytes (pyca/bcrypt before 5).
 */
export type LongPasswords = "reject" | "truncate"

export interface BcryptParams {
  readonly rounds: number
  readonly longPasswords: LongPasswords
}

const MAX_BYTES = 72

// bcrypt's own base64 alphabet.
const ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/** 16 salt bytes to the 22 characters of a bcrypt setting string. */
export const encodeSalt = (bytes: Uint8Array): string => {
  let out = ""
  for (let i = 0; i < bytes.length; i += 3) {
    const b0 = bytes[i]!, b1 = bytes[i + 1] ?? 0, b2 = bytes[i + 2] ?? 0
    out += ALPHABET[b0 >> 2]! + ALPHABET[((b0 & 3) << 4) | (b1 >> 4)]!
    if (i + 1 < bytes.length) out += ALPHABET[((b1 & 15) << 2) | (b2 >> 6)]!
    if (i + 2 < bytes.length) out += ALPHABET[b2 & 63]!
  }
  return out
}

/** The 22 salt characters back to 16 bytes; the surplus low bits of the last one are dropped, as OpenBSD does. */
const decodeSalt = (text: string): Buffer => {
  const out: Array<number> = []
  let acc = 0
  let bits = 0
  for (const ch of text) {
    acc = ((acc << 6) | ALPHABET.indexOf(ch)) & 0xffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out.push((acc >> bits) & 0xff)
    }
  }
  return Buffer.from(out.slice(0, 16))
}

// What pyca/bcrypt's hashpw accepts as a salt: ident, two-digit cost, 22 salt characters; the rest
// (an existing hash's checksum) is ignored.
const SETTING = /^\$(2a|2b|2y)\$([0-9]{2})\$([./A-Za-z0-9]{22})/

/**
 * Django's `BCryptSHA256PasswordHasher` (`bcrypt_sha256$$2b$12$...`, the password pre-hashed to
 * 64 hex characters) and `BCryptPasswordHasher` (`bcrypt$$2b$12$...`, the raw password).
 */
export const make = (algorithm: "bcrypt_sha256" | "bcrypt", params: BcryptParams, run: Run): Hasher => {
  const fail = failWith(algorithm)

  const input = (password: Uint8Array) => {
    if (algorithm === "bcrypt_sha256") {
      return Effect.succeed(Buffer.from(crypto.createHash("sha256").update(password).digest("hex"), "ascii"))
    }
    if (password.length <= MAX_BYTES) return Effect.succeed(password)
    return params.longPasswords === "truncate"
      ? Effect.succeed(password.subarray(0, MAX_BYTES))
      : fail("password is longer than 72 bytes")
  }

  // Django's encode: bcrypt.hashpw(password, salt), where salt is a setting string or a whole hash.
  const encode = (password: Uint8Array, salt: string, purpose: Purpose) => {
    const m = SETTING.exec(salt)
    if (m === null) return fail("invalid bcrypt salt")
    const cost = Number(m[2])
    if (cost < 4 || cost > 31) return fail("bcrypt cost must be between 4 and 31")
    // The cost is a power of two: each step above the settings doubles the work.
    if (purpose === "verify" && !withinCeiling(2 ** cost, 2 ** params.rounds, 2 ** djangoDefaults.bcrypt.rounds)) {
      return fail(`bcrypt cost beyond ${WORK_CEILING} times the configured work: not checked`)
    }
    return Effect.flatMap(input(password), (bytes) =>
      Effect.map(
        run(algorithm, purpose, () => driver.load().then((bcrypt) => bcrypt.hash(bytes, cost, decodeSalt(m[3]!)))),
        // pyca/bcrypt hands back the ident it was given ($2a$, $2y$); the computation is the same.
        (hashed) => `${algorithm}$$${m[1]}${hashed.slice(3)}`
      ))
  }

  const data = (encoded: string) => {
    const parts = pySplit(encoded, "$", 1)
    return parts.length !== 2 || parts[0] !== algorithm
      ? fail(`expected ${algorithm}$$2b$<cost>$<salt and hash>`)
      : Effect.succeed(parts[1]!)
  }

  const workFactor = (encoded: string) => {
    const parts = pySplit(encoded, "$", 4)
    const factor = parts.length === 5 && parts[0] === algorithm ? pyInt(parts[3]!) : undefined
    return factor === undefined ? fail("work factor is missing or not an integer") : Effect.succeed(factor)
  }

  return {
    algorithm,
    writable: true,
    salt: () => `$2b$${String(params.rounds).padStart(2, "0")}$${encodeSalt(crypto.randomBytes(16))}`,
    encode: (password, salt, purpose = "encode") => encode(password, salt, purpose),
    verify: (password, encoded) =>
      Effect.flatMap(data(encoded), (setting) =>
        Effect.map(encode(password, setting, "verify"), (again) => constantTimeEquals(encoded, again))),
    mustUpdate: (encoded) => Effect.map(workFactor(encoded), (factor) => factor !== params.rounds),
    hardenRuntime: (password, encoded) =>
      Effect.gen(function*() {
        const setting = yield* data(encoded)
        const stored = yield* workFactor(encoded)
        // The work factor is logarithmic: each missing round doubles the work.
        const missing = 2 ** (params.rounds - stored) - 1
        for (let i = 0; i < missing; i++) {
          yield* encode(password, setting.slice(0, 29), "harden")
        }
      })
  }
}
