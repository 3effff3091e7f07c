import * as crypto from "node:crypto"
import * as Effect from "effect/Effect"
import type { Hasher, Purpose, Run } from "./common.js"
import { failWith, mustUpdateSalt, optionalDriver, randomString, SALT_LENGTH, WORK_CEILING, withinCeiling } from "./common.js"
import { djangoDefaults } from "./djangoDefaults.js"

const django = djangoDefaults.argon2

/** Argon2 parameters as Django's `Argon2PasswordHasher` names them (memory in KiB). */
export interface Argon2Params {
  readonly timeCost: number
  readonly memoryCost: number
  readonly parallelism: number
  /** Raw hash length in bytes: argon2-cffi wrote 16 before 21.2.0, 32 since. */
  readonly hashLength: number
}

// @node-rs/argon2 declares these as ambient const enums, which isolated modules cannot read.
// @node-rs/argon2 is an optional peer dependency: loaded on first use, so sites that never store
// argon2 hashes need not install it (a missing package fails that hash with a HashError that
// says how to install it).
//
// The driver's type names only what this module calls: the declarations this package ships must
// not name an optional peer, or a consumer without it could not type-check them.
export interface Argon2Driver {
  readonly hashRaw: (
    password: string | Uint8Array,
    options: {
      readonly salt: Uint8Array
      readonly timeCost: number
      readonly memoryCost: number
      readonly parallelism: number
      readonly outputLen: number
      readonly algorithm: number
      readonly version: number
    }
  ) => Promise<Uint8Array>
}
export const driver = optionalDriver<Argon2Driver>(
  "@node-rs/argon2",
  "2.2.1",
  () => import("@node-rs/argon2")
)

const VARIETY = { argon2d: 0, argon2i: 1, argon2id: 2 } as const
const VERSION = { 16: 0, 19: 1 } as const
type Variety = keyof typeof VARIETY

// Larger stored costs are refused rather than attempted: an allocation that size would abort the
// process instead of failing.
const MAX_MEMORY_KIB = 4 * 1024 * 1024

// Numbers as the reference decoder reads them: no leading zeros (`t=01` is not `t=1`).
const PHC =
  /^argon2\$(argon2id|argon2i|argon2d)\$(?:v=(0|[1-9][0-9]*)\$)?m=(0|[1-9][0-9]*),t=(0|[1-9][0-9]*),p=(0|[1-9][0-9]*)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/

// The largest time cost argon2 takes (a 32-bit count): the driver would wrap a larger one
// modulo 2^32, so that `t=4294967297` ran as `t=1` and verified.
const MAX_TIME_COST = 0xffff_ffff
// Argon2's own bound on lanes (RFC 9106: 2^24 - 1), as argon2-cffi takes them.
const MAX_LANES = 0xff_ffff

// Unpadded standard base64, as the argon2 reference encoder writes it. Only its canonical form is
// read, as the reference decoder does: `Buffer` would drop non-zero trailing bits, so that two
// spellings decoded to the same salt.
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64").replace(/=+$/, "")
const unb64 = (text: string) => {
  if (text.length % 4 === 1) return undefined
  const bytes = Buffer.from(text, "base64")
  return b64(bytes) === text ? bytes : undefined
}

interface Decoded {
  readonly variety: Variety
  readonly version: 16 | 19
  /** Only as argon2-cffi's `extract_parameters` reads it; a missing `v=` is not 19. */
  readonly versionGiven: boolean
  readonly memoryCost: number
  readonly timeCost: number
  readonly parallelism: number
  readonly salt: Buffer
  readonly hash: Buffer
}

/**
 * Django's `Argon2PasswordHasher`: `argon2` followed by the PHC string,
 * `argon2$argon2id$v=19$m=102400,t=2,p=8$<salt>$<hash>`. Writes argon2id; reads argon2id,
 * argon2i and argon2d, versions 0x13 and 0x10.
 */
export const make = (params: Argon2Params, run: Run): Hasher => {
  const algorithm = "argon2"
  const fail = failWith(algorithm)

  const decode = (encoded: string) => {
    const m = PHC.exec(encoded)
    if (m === null) return fail("expected argon2$argon2<type>$v=<n>$m=<n>,t=<n>,p=<n>$<salt>$<hash>")
    const version = m[2] === undefined ? 16 : Number(m[2])
    if (version !== 16 && version !== 19) return fail("unsupported argon2 version")
    const salt = unb64(m[6]!)
    const hash = unb64(m[7]!)
    if (salt === undefined || hash === undefined) return fail("salt or hash is not base64")
    const decoded: Decoded = {
      variety: m[1] as Variety,
      version,
      versionGiven: m[2] !== undefined,
      memoryCost: Number(m[3]),
      timeCost: Number(m[4]),
      parallelism: Number(m[5]),
      salt,
      hash
    }
    return Effect.succeed(decoded)
  }

  const compute = (password: Uint8Array, d: Omit<Decoded, "hash" | "versionGiven">, length: number, purpose: Purpose) => {
    if (d.salt.length < 8) return fail("salt is too short (argon2 needs at least 8 bytes)")
    if (length < 4) return fail("hash is too short")
    if (
      d.timeCost < 1 || d.timeCost > MAX_TIME_COST || d.parallelism < 1 || d.parallelism > MAX_LANES ||
      d.memoryCost < 8 * d.parallelism
    ) {
      return fail("invalid argon2 parameters")
    }
    if (d.memoryCost > MAX_MEMORY_KIB) return fail("argon2 memory cost is too large")
    if (
      purpose === "verify" && (
        !withinCeiling(d.timeCost * d.memoryCost, params.timeCost * params.memoryCost, django.timeCost * django.memoryCost) ||
        !withinCeiling(d.memoryCost, params.memoryCost, django.memoryCost)
      )
    ) {
      return fail(`argon2 costs beyond ${WORK_CEILING} times the configured work: not checked`)
    }
    return run(algorithm, purpose, () =>
      driver.load().then((argon2) => argon2.hashRaw(password, {
        salt: d.salt,
        timeCost: d.timeCost,
        memoryCost: d.memoryCost,
        parallelism: d.parallelism,
        outputLen: length,
        algorithm: VARIETY[d.variety],
        version: VERSION[d.version]
      })))
  }

  return {
    algorithm,
    writable: true,
    salt: () => randomString(SALT_LENGTH),
    encode: (password, salt, purpose = "encode") => {
      const saltBytes = Buffer.from(salt, "utf8")
      const settings = { variety: "argon2id", version: 19, ...params, salt: saltBytes } as const
      return Effect.map(
        compute(password, settings, params.hashLength, purpose),
        (hash) =>
          `argon2$argon2id$v=19$m=${params.memoryCost},t=${params.timeCost},p=${params.parallelism}$${b64(saltBytes)}$${
            b64(hash)
          }`
      )
    },
    verify: (password, encoded) =>
      Effect.flatMap(decode(encoded), (d) =>
        Effect.map(
          compute(password, d, d.hash.length, "verify"),
          (hash) => crypto.timingSafeEqual(hash, d.hash)
        )),
    mustUpdate: (encoded) =>
      Effect.map(decode(encoded), (d) =>
        d.variety !== "argon2id" || !d.versionGiven || d.version !== 19 ||
        d.timeCost !== params.timeCost || d.memoryCost !== params.memoryCost ||
        d.parallelism !== params.parallelism || d.hash.length !== params.hashLength ||
        // Django decodes the salt as latin-1, so its length in characters is its length in bytes.
        mustUpdateSalt(d.salt.length)),
    // Django: "too complicated to implement a sensible hardening algorithm".
    hardenRuntime: () => Effect.void
  }
}
