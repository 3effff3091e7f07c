import * as crypto from "node:crypto"
import * as Effect from "effect/Effect"
import type { Hasher, Purpose, Run } from "./common.js"
import { b64, checkSalt, constantTimeEquals, failWith, pyInt, randomString, SALT_LENGTH, WORK_CEILING, withinCeiling } from "./common.js"
import { djangoDefaults } from "./djangoDefaults.js"

const django = djangoDefaults.scrypt

/** Django's `ScryptPasswordHasher` settings: N, r, p, and the memory bound. */
export interface ScryptParams {
  readonly workFactor: number
  readonly blockSize: number
  readonly parallelism: number
  /** Bytes; Django passes `maxmem=0`, which is OpenSSL's 32 MiB, Node's default too. */
  readonly maxmem: number
}

const derive = (password: Uint8Array, salt: string, N: number, r: number, p: number, maxmem: number) =>
  new Promise<Buffer>((resolve, reject) =>
    crypto.scrypt(password, Buffer.from(salt, "utf8"), 64, { N, r, p, maxmem }, (e, key) =>
      e === null ? resolve(key) : reject(e)
    )
  )

/** Django's `ScryptPasswordHasher`: `scrypt$<N>$<salt>$<r>$<p>$<base64 64-byte hash>`. */
export const make = (params: ScryptParams, run: Run): Hasher => {
  const algorithm = "scrypt"
  const fail = failWith(algorithm)

  const decode = (encoded: string) => {
    // Django unpacks `split("$", 6)` into six names: exactly five separators.
    const parts = encoded.split("$")
    if (parts.length !== 6 || parts[0] !== algorithm) return fail("expected scrypt$<N>$<salt>$<r>$<p>$<hash>")
    const [n, r, p] = [pyInt(parts[1]!), pyInt(parts[3]!), pyInt(parts[4]!)]
    return n === undefined || r === undefined || p === undefined
      ? fail("N, r and p must be integers")
      : Effect.succeed({ n, salt: parts[2]!, r, p })
  }

  const encode = (password: Uint8Array, salt: string, n: number, r: number, p: number, purpose: Purpose) =>
    Effect.gen(function*() {
      yield* checkSalt(algorithm, salt)
      // Python's `n or self.work_factor` and so on.
      const N = n || params.workFactor, R = r || params.blockSize, P = p || params.parallelism
      if (N < 2 || !Number.isSafeInteger(N) || (N & (N - 1)) !== 0) return yield* fail("N must be a power of 2 above 1")
      if (R < 1 || P < 1 || !Number.isSafeInteger(R) || !Number.isSafeInteger(P)) {
        return yield* fail("r and p must be positive")
      }
      if (
        purpose === "verify" &&
        !withinCeiling(
          N * R * P,
          params.workFactor * params.blockSize * params.parallelism,
          django.workFactor * django.blockSize * django.parallelism
        )
      ) {
        return yield* fail(`scrypt costs beyond ${WORK_CEILING} times the configured work: not checked`)
      }
      const key = yield* run(algorithm, purpose, () => derive(password, salt, N, R, P, params.maxmem))
      return `${algorithm}$${N}$${salt}$${R}$${P}$${b64(key)}`
    })

  return {
    algorithm,
    writable: true,
    salt: () => randomString(SALT_LENGTH),
    encode: (password, salt, purpose = "encode") => encode(password, salt, 0, 0, 0, purpose),
    verify: (password, encoded) =>
      Effect.flatMap(decode(encoded), (d) =>
        Effect.map(encode(password, d.salt, d.n, d.r, d.p, "verify"), (again) => constantTimeEquals(encoded, again))),
    // Django's scrypt ignores the salt length here.
    mustUpdate: (encoded) =>
      Effect.map(decode(encoded), (d) =>
        d.n !== params.workFactor || d.r !== params.blockSize || d.p !== params.parallelism),
    // Django: "too complicated to implement a sensible hardening algorithm".
    hardenRuntime: () => Effect.void
  }
}
