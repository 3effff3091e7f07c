import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Argon2 from "./argon2.js"
import * as Bcrypt from "./bcrypt.js"
import type { Hasher, Purpose, Run } from "./common.js"
import { DriverUnavailable, HasherFailure, pyLen, randomString } from "./common.js"
import * as Legacy from "./legacy.js"
import * as Pbkdf2 from "./pbkdf2.js"
import * as Scrypt from "./scrypt.js"
import { withValueFreeSpan } from "../tracing.js"

/** Every algorithm name Django stores, in the order of its documentation. */
export const algorithms = [
  "pbkdf2_sha256",
  "pbkdf2_sha1",
  "argon2",
  "bcrypt_sha256",
  "bcrypt",
  "scrypt",
  "md5",
  "sha1",
  "unsalted_md5",
  "unsalted_sha1"
] as const

export type Algorithm = typeof algorithms[number]

/** The algorithms that may write new hashes; the legacy ones only verify. */
export const writableAlgorithms = ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "bcrypt", "scrypt"] as const

export type WritableAlgorithm = typeof writableAlgorithms[number]

/** All settings with their defaults filled in. */
export interface Settings {
  readonly hashers: ReadonlyArray<Algorithm>
  readonly pbkdf2: { readonly iterations: number }
  readonly argon2: Argon2.Argon2Params
  readonly bcrypt: Bcrypt.BcryptParams
  readonly scrypt: Scrypt.ScryptParams
  readonly concurrency: number
  readonly maxWaiting: number
}

/** Builds one hasher with the given settings. */
export const makeHasher = (algorithm: Algorithm, settings: Settings, run: Run): Hasher => {
  switch (algorithm) {
    case "pbkdf2_sha256":
    case "pbkdf2_sha1":
      return Pbkdf2.make(algorithm, settings.pbkdf2.iterations, run)
    case "argon2":
      return Argon2.make(settings.argon2, run)
    case "bcrypt_sha256":
    case "bcrypt":
      return Bcrypt.make(algorithm, settings.bcrypt, run)
    case "scrypt":
      return Scrypt.make(settings.scrypt, run)
    case "md5":
    case "sha1":
      return Legacy.salted(algorithm)
    case "unsalted_md5":
      return Legacy.unsaltedMd5
    case "unsalted_sha1":
      return Legacy.unsaltedSha1
  }
}

/**
 * The runner every hasher shares: each derivation runs in a span naming its algorithm and purpose.
 * How many run at once is the service's limiter's business (`PasswordHasher`'s fair limiter holds
 * a permit around each `hash` or `verify` call, all its derivations included).
 */
export const run: Run = (algorithm, purpose, work) =>
  Effect.tryPromise({
    try: work,
    // The cause is kept (drivers see bytes, never the Redacted password, and do not echo them).
    catch: (cause) =>
      cause instanceof DriverUnavailable
        ? new HasherFailure({ algorithm, reason: cause.reason, cause: cause.cause })
        : new HasherFailure({ algorithm, reason: `${algorithm} computation failed`, cause })
  }).pipe(
    // Native work cannot be cancelled: an interrupted call keeps its permit until the work ends,
    // which keeps the bound true.
    Effect.uninterruptible,
    withValueFreeSpan("effect-auth.password.derive", {
      attributes: { "password.algorithm": algorithm, "password.purpose": purpose },
      captureStackTrace: false
    })
  )

/** Django's `UNUSABLE_PASSWORD_PREFIX`. */
export const UNUSABLE_PREFIX = "!"

/** Django's `is_password_usable`: only the `!` marker makes a value unusable. */
export const isUsable = (encoded: string | null | undefined): boolean =>
  encoded === null || encoded === undefined || !encoded.startsWith(UNUSABLE_PREFIX)

/** Django's `identify_hasher`, against the configured hashers only. */
export const identify = (byAlgorithm: ReadonlyMap<string, Hasher>, encoded: string): Option.Option<Hasher> => {
  const length = pyLen(encoded)
  const algorithm = (length === 32 && !encoded.includes("$")) || (length === 37 && encoded.startsWith("md5$$"))
    ? "unsalted_md5"
    : length === 46 && encoded.startsWith("sha1$$")
    ? "unsalted_sha1"
    : encoded.split("$", 1)[0]!
  return Option.fromNullable(byAlgorithm.get(algorithm))
}

/** What `verify` answers before `mustUpdate` is narrowed to successful checks. */
export interface Checked {
  readonly valid: boolean
  readonly mustUpdate: boolean
}

/** The hasher list in use: the preferred one first. */
export interface Registry {
  readonly preferred: Hasher
  readonly byAlgorithm: ReadonlyMap<string, Hasher>
  readonly hash: (password: Uint8Array) => Effect.Effect<string, HasherFailure>
  /** Django's `verify_password`; `password` is undefined when none was supplied. */
  readonly verify: (password: Uint8Array | undefined, encoded: string | null | undefined) => Effect.Effect<Checked, HasherFailure>
}

export const makeRegistry = (settings: Settings, run: Run): Registry => {
  const hashers = settings.hashers.map((algorithm) => makeHasher(algorithm, settings, run))
  const preferred = hashers[0]!
  const byAlgorithm = new Map<string, Hasher>()
  for (const hasher of hashers) if (!byAlgorithm.has(hasher.algorithm)) byAlgorithm.set(hasher.algorithm, hasher)

  const encodeWith = (password: Uint8Array, purpose: Purpose) =>
    Effect.suspend(() => preferred.encode(password, preferred.salt(), purpose))

  // Django's make_password(get_random_string(40)): the same work a real check would cost.
  const dummy = Effect.as(
    Effect.suspend(() => encodeWith(Buffer.from(randomString(40), "ascii"), "dummy")),
    { valid: false, mustUpdate: false }
  )

  return {
    preferred,
    byAlgorithm,
    hash: (password) => encodeWith(password, "encode"),
    verify: (password, encoded) =>
      Effect.suspend(() => {
        const hasher = encoded === null || encoded === undefined ? Option.none() : identify(byAlgorithm, encoded)
        if (password === undefined || !isUsable(encoded) || Option.isNone(hasher)) return dummy
        const stored = encoded!
        const changed = hasher.value.algorithm !== preferred.algorithm
        return Effect.gen(function*() {
          const mustUpdate = changed || (yield* preferred.mustUpdate(stored))
          const valid = yield* hasher.value.verify(password, stored)
          // Same hasher, outdated hash, wrong password: spend the work a current hash would cost,
          // so the outdated ones do not stand out by answering faster.
          if (!valid && !changed && mustUpdate) {
            yield* preferred.hardenRuntime(password, stored).pipe(
              withValueFreeSpan("effect-auth.password.harden", {
                attributes: { "password.algorithm": preferred.algorithm },
                captureStackTrace: false
              })
            )
          }
          return { valid, mustUpdate }
        })
      })
  }
}
