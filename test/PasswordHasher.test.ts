import { describe, expect, it } from "@effect/vitest"
import { Cause, Config, ConfigProvider, Deferred, Effect, Either, Exit, Fiber, Layer, Option, Redacted } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as PasswordHasher from "../src/PasswordHasher.js"
import { makeFairLimiter } from "../src/internal/hashers/admission.js"
import type { Hasher } from "../src/internal/hashers/common.js"
import * as Registry from "../src/internal/hashers/registry.js"
import { djangos, runDjango } from "./utils/django.js"
import { hostile } from "./utils/hostile.js"
import * as RecordingTracer from "./utils/recordingTracer.js"

// ---------------------------------------------------------------------------------------------
// Vector files (layout and provenance: fixtures/vectors/README.md)

interface Check {
  readonly password?: string | null
  readonly result?: boolean
  readonly error?: unknown
  readonly setter_called: boolean
  readonly harden_runtime_called: boolean
  readonly preferred_hasher_encode_calls: number
}

interface Case {
  readonly id: string
  readonly algorithm: PasswordHasher.Algorithm
  readonly params: Record<string, number>
  readonly password: string
  readonly salt_kind: "fixed" | "weak" | "random" | "none"
  readonly salt_input?: string
  readonly encoded?: string
  readonly encode_error?: unknown
  readonly identified?: { readonly algorithm?: string }
  readonly is_password_usable?: boolean
  readonly hasher_must_update?: boolean
  readonly checks: ReadonlyArray<Check>
  readonly default_settings_check?: Check
}

interface VectorFile {
  readonly django_version: string
  readonly libraries: Record<string, string | number>
  readonly password_hashers_setting: ReadonlyArray<string>
  readonly global_default_password_hashers: ReadonlyArray<string>
  readonly preferred_algorithm: string
  readonly default_pbkdf2_iterations: number
  readonly cases: ReadonlyArray<Case>
  readonly unusable: ReadonlyArray<{ readonly encoded: string; readonly length: number; readonly prefix: string; readonly is_password_usable: boolean; readonly checks: ReadonlyArray<Check> }>
  readonly foreign_encodings: ReadonlyArray<{ readonly id: string; readonly encoded: string; readonly identified?: { readonly algorithm?: string }; readonly is_password_usable: boolean; readonly check: Check }>
}

const vectorFiles = ["django-hashers.json", "django-hashers-django5.2.json"] as const

// Checked in beside the tests, so a clone has them.
const load = (name: string): VectorFile =>
  JSON.parse(fs.readFileSync(new URL(`./fixtures/vectors/${name}`, import.meta.url), "utf8"))

const djangoClasses: Record<string, PasswordHasher.Algorithm> = {
  PBKDF2PasswordHasher: "pbkdf2_sha256",
  PBKDF2SHA1PasswordHasher: "pbkdf2_sha1",
  Argon2PasswordHasher: "argon2",
  BCryptSHA256PasswordHasher: "bcrypt_sha256",
  BCryptPasswordHasher: "bcrypt",
  ScryptPasswordHasher: "scrypt",
  MD5PasswordHasher: "md5",
  SHA1PasswordHasher: "sha1",
  UnsaltedMD5PasswordHasher: "unsalted_md5",
  UnsaltedSHA1PasswordHasher: "unsalted_sha1"
}

const algorithmsOf = (setting: ReadonlyArray<string>) =>
  setting.map((path) => {
    const algorithm = djangoClasses[path.split(".").at(-1)!]
    if (algorithm === undefined) throw new Error(`unknown hasher class ${path}`)
    return algorithm
  }) as unknown as PasswordHasher.Options["hashers"]

/** The settings Django ran with when it wrote the file: its iterations and argon2-cffi hash length. */
const optionsFor = (file: VectorFile, hashers: ReadonlyArray<string>): PasswordHasher.Options => ({
  hashers: algorithmsOf(hashers),
  pbkdf2: { iterations: file.default_pbkdf2_iterations },
  argon2: { hashLength: Number(file.libraries["argon2.DEFAULT_HASH_LENGTH"] ?? 32) },
  concurrency: 2,
  // The vectors are checked all at once: no load shedding here.
  maxWaiting: 1_000_000
})

const settingsFor = (file: VectorFile, params: Record<string, number> = {}): Registry.Settings => ({
  hashers: [],
  pbkdf2: { iterations: params.iterations ?? file.default_pbkdf2_iterations },
  argon2: {
    timeCost: params.time_cost ?? PasswordHasher.defaults.argon2.timeCost,
    memoryCost: params.memory_cost ?? PasswordHasher.defaults.argon2.memoryCost,
    parallelism: params.parallelism ?? PasswordHasher.defaults.argon2.parallelism,
    hashLength: Number(file.libraries["argon2.DEFAULT_HASH_LENGTH"] ?? 32)
  },
  bcrypt: { rounds: params.rounds ?? PasswordHasher.defaults.bcrypt.rounds, longPasswords: "reject" },
  scrypt: {
    workFactor: params.work_factor ?? PasswordHasher.defaults.scrypt.workFactor,
    blockSize: params.block_size ?? PasswordHasher.defaults.scrypt.blockSize,
    parallelism: params.parallelism ?? PasswordHasher.defaults.scrypt.parallelism,
    maxmem: PasswordHasher.defaults.scrypt.maxmem
  },
  concurrency: 2,
  maxWaiting: 1_000_000
})

const utf8 = (text: string) => Buffer.from(text, "utf8")

// ---------------------------------------------------------------------------------------------
// The bcrypt library split (README "Library notes").
//
// Plain `bcrypt` (not bcrypt_sha256, which pre-hashes to 64 hex characters) depends on the Python
// library version:
// - over 72 bytes: pyca/bcrypt 5 (the 5.2 file) refuses the password; pyca/bcrypt 3.2 (the 3.2
//   file) silently hashed the first 72 bytes, so longer wrong passwords sharing the prefix verify.
//   We refuse too (a typed HashError), the safe and current behaviour; the `truncate` option
//   reproduces the old one. So in the 3.2 file, and only for those checks, we expect a HashError
//   instead of the recorded result.
// - NUL bytes: pyca/bcrypt < 4 refused them; 4+ and we hash them as bytes. A 3.2-file check with
//   a NUL byte in a plain-bcrypt password is skipped (its recorded error is that library's).

type Expectation = "as-recorded" | "hash-error" | "skip"

const bcryptMajor = (file: VectorFile) => Number(String(file.libraries["bcrypt"] ?? "5").split(".")[0])

const bcryptSplit = (file: VectorFile, hasher: string | undefined, password: string | null | undefined): Expectation => {
  if (hasher !== "bcrypt" || password === null || password === undefined) return "as-recorded"
  if (utf8(password).length > 72) return "hash-error"
  if (password.includes("\0") && bcryptMajor(file) < 4) return "skip"
  return "as-recorded"
}

// ---------------------------------------------------------------------------------------------
// A tracer that counts the hasher's spans: derivations by algorithm and purpose, harden runs,
// and how many derivations were in flight at once.

const derive = "effect-auth.password.derive"

const recorder = () => {
  const rec = RecordingTracer.make()
  return {
    spans: rec.spans,
    tracer: rec.tracer,
    maxInFlight: () => rec.maxInFlight(derive),
    derivations: (algorithm: string) =>
      rec.spans.filter((s) => s.name === derive && s.attributes.get("password.algorithm") === algorithm),
    hardened: () => rec.spans.some((s) => s.name === "effect-auth.password.harden")
  }
}

/** Runs one Django check through `verify` and reports it in the vector's terms. */
const observe = (hasher: PasswordHasher.Service, password: string | null | undefined, encoded: string) =>
  Effect.gen(function*() {
    const rec = recorder()
    const exit = yield* Effect.exit(
      hasher.verify(password === null || password === undefined ? null : Redacted.make(password), encoded)
    ).pipe(Effect.withTracer(rec.tracer))
    const calls = rec.derivations(hasher.preferredAlgorithm).length
    if (Exit.isFailure(exit)) {
      const error = Cause.failureOption(exit.cause)
      return { outcome: Option.isSome(error) ? error.value._tag : `defect: ${Cause.pretty(exit.cause)}` }
    }
    return {
      outcome: exit.value.valid,
      setter_called: exit.value.mustUpdate,
      harden_runtime_called: rec.hardened(),
      preferred_hasher_encode_calls: calls
    }
  })

const expected = (check: Check, expectation: Expectation) =>
  expectation === "hash-error" || check.error !== undefined
    ? { outcome: "HashError" }
    : {
      outcome: check.result,
      setter_called: check.setter_called,
      harden_runtime_called: check.harden_runtime_called,
      preferred_hasher_encode_calls: check.preferred_hasher_encode_calls
    }

const identified = (value: { readonly algorithm?: string } | undefined) =>
  value?.algorithm === undefined ? Option.none() : Option.some(value.algorithm)

// ---------------------------------------------------------------------------------------------

for (const name of vectorFiles) {
  const file = load(name)

  describe(`conformance with ${name} (Django ${file.django_version})`, () => {
    const configured = algorithmsOf(file.password_hashers_setting) as ReadonlyArray<string>
    const service = PasswordHasher.make(optionsFor(file, file.password_hashers_setting))
    const defaultService = PasswordHasher.make(optionsFor(file, file.global_default_password_hashers))
    const hashersWith = (params: Record<string, number> = {}) =>
      Effect.succeed((algorithm: PasswordHasher.Algorithm): Hasher =>
        Registry.makeHasher(algorithm, settingsFor(file, params), Registry.run)
      )

    it.effect("the preferred hasher and the hasher list are the file's", () =>
      Effect.gen(function*() {
        const hasher = yield* service
        expect(hasher.preferredAlgorithm).toBe(file.preferred_algorithm)
        expect(hasher.algorithms).toEqual(configured)
      }))

    for (const c of file.cases) {
      it.effect(`case ${c.id}`, () =>
        Effect.gen(function*() {
          const hasher = yield* service
          const split = bcryptSplit(file, c.algorithm, c.password)

          // hash: byte for byte where the salt is known (fixed, weak, none), else an error where Django had one
          if (c.salt_kind !== "random" && split !== "skip") {
            const withParams = (yield* hashersWith(c.params))(c.algorithm)
            const exit = yield* Effect.exit(withParams.encode(utf8(c.password), c.salt_input ?? ""))
            if (c.encode_error !== undefined || split === "hash-error") {
              expect(Exit.isFailure(exit), "encode should fail").toBe(true)
            } else {
              expect(Exit.isSuccess(exit) ? exit.value : Cause.pretty(exit.cause)).toBe(c.encoded)
            }
          }
          if (c.encoded === undefined) return
          const encoded = c.encoded

          expect(hasher.identify(encoded)).toEqual(identified(c.identified))
          if (c.is_password_usable !== undefined) expect(hasher.isUsable(encoded)).toBe(c.is_password_usable)
          if (c.hasher_must_update !== undefined) {
            const withDefaults = (yield* hashersWith())(c.algorithm)
            expect(yield* withDefaults.mustUpdate(encoded)).toBe(c.hasher_must_update)
          }

          const checks = yield* Effect.forEach(c.checks, (check, i) => {
            const expectation = configured.includes(c.algorithm)
              ? bcryptSplit(file, c.algorithm, check.password)
              : "as-recorded"
            return expectation === "skip"
              ? Effect.succeed(null)
              : Effect.map(observe(hasher, check.password, encoded), (actual) => ({
                check: i,
                actual,
                expected: expected(check, expectation)
              }))
          }, { concurrency: "unbounded" })
          for (const check of checks) {
            if (check !== null) expect({ check: check.check, ...check.actual }).toEqual({ check: check.check, ...check.expected })
          }

          if (c.default_settings_check !== undefined) {
            const defaults = yield* defaultService
            const inDefaults = (algorithmsOf(file.global_default_password_hashers) as ReadonlyArray<string>).includes(c.algorithm)
            const expectation = inDefaults ? bcryptSplit(file, c.algorithm, c.password) : "as-recorded"
            if (expectation !== "skip") {
              expect(yield* observe(defaults, c.password, encoded)).toEqual(expected(c.default_settings_check, expectation))
            }
          }
        }), 60_000)
    }

    it.effect("unusable passwords: never usable, never identified, never verify, one dummy run each", () =>
      Effect.gen(function*() {
        const hasher = yield* service
        expect(file.unusable.length).toBeGreaterThan(0)
        for (const u of file.unusable) {
          expect(u.encoded).toHaveLength(u.length)
          expect(u.encoded.startsWith(u.prefix)).toBe(true)
          expect(hasher.isUsable(u.encoded)).toBe(u.is_password_usable)
          expect(hasher.identify(u.encoded)).toEqual(Option.none())
          const observed = yield* Effect.forEach(u.checks, (check) => observe(hasher, check.password, u.encoded), {
            concurrency: "unbounded"
          })
          expect(observed).toEqual(u.checks.map((check) => expected(check, "as-recorded")))
        }
      }), 60_000)

    it.effect("foreign encodings: argon2i/d/id and v=16, bcrypt $2a$/$2b$/$2y$", () =>
      Effect.gen(function*() {
        const hasher = yield* service
        expect(file.foreign_encodings.length).toBeGreaterThan(0)
        for (const f of file.foreign_encodings) {
          expect(hasher.identify(f.encoded), f.id).toEqual(identified(f.identified))
          expect(hasher.isUsable(f.encoded), f.id).toBe(f.is_password_usable)
          const algorithm = Option.getOrUndefined(hasher.identify(f.encoded))
          const expectation = bcryptSplit(file, algorithm, f.check.password)
          if (expectation === "skip") continue
          expect({ id: f.id, ...(yield* observe(hasher, f.check.password, f.encoded)) })
            .toEqual({ id: f.id, ...expected(f.check, expectation) })
        }
      }), 60_000)
  })
}

// ---------------------------------------------------------------------------------------------

const pw = (text: string) => Redacted.make(text)
const test = PasswordHasher.make(PasswordHasher.testOptions)
const withOptions = (options: PasswordHasher.Options) => PasswordHasher.make({ ...PasswordHasher.testOptions, ...options })

describe("hash", () => {
  it.effect("writes pbkdf2_sha256 at 1,200,000 iterations by default, with a 22-character salt", () =>
    Effect.gen(function*() {
      const hasher = yield* PasswordHasher.make()
      expect(hasher.preferredAlgorithm).toBe("pbkdf2_sha256")
      expect(hasher.algorithms).toEqual(["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "scrypt"])
      const encoded = yield* hasher.hash(pw("correct horse"))
      expect(encoded).toMatch(/^pbkdf2_sha256\$1200000\$[a-zA-Z0-9]{22}\$[A-Za-z0-9+/]{43}=$/)
      expect(yield* hasher.verify(pw("correct horse"), encoded)).toEqual({ valid: true, mustUpdate: false })
    }), 30_000)

  it.effect("every hash gets a fresh salt", () =>
    Effect.gen(function*() {
      const hasher = yield* test
      const hashes = yield* Effect.forEach(Array.from({ length: 20 }), () => hasher.hash(pw("same")))
      const salts = hashes.map((h) => h.split("$")[2])
      expect(new Set(salts).size).toBe(20)
      for (const salt of salts) expect(salt).toMatch(/^[a-zA-Z0-9]{22}$/)
    }))

  for (
    const [algorithm, pattern] of [
      ["pbkdf2_sha256", /^pbkdf2_sha256\$1000\$[a-zA-Z0-9]{22}\$/],
      ["pbkdf2_sha1", /^pbkdf2_sha1\$1000\$[a-zA-Z0-9]{22}\$[A-Za-z0-9+/]{27}=$/],
      ["argon2", /^argon2\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{30}\$[A-Za-z0-9+/]{43}$/],
      ["bcrypt_sha256", /^bcrypt_sha256\$\$2b\$04\$[./A-Za-z0-9]{53}$/],
      ["bcrypt", /^bcrypt\$\$2b\$04\$[./A-Za-z0-9]{53}$/],
      ["scrypt", /^scrypt\$1024\$[a-zA-Z0-9]{22}\$8\$1\$[A-Za-z0-9+/]{86}==$/]
    ] as const
  ) {
    it.effect(`${algorithm} as the preferred hasher: writes its format, verifies, no update needed`, () =>
      Effect.gen(function*() {
        const hasher = yield* withOptions({ hashers: [algorithm] })
        const encoded = yield* hasher.hash(pw("naïve café 🐍"))
        expect(encoded).toMatch(pattern)
        expect(yield* hasher.verify(pw("naïve café 🐍"), encoded)).toEqual({ valid: true, mustUpdate: false })
        expect(yield* hasher.verify(pw("naïve cafe 🐍"), encoded)).toEqual({ valid: false, mustUpdate: false })
      }))
  }
})

describe("verify: Django's check_password", () => {
  it.effect("a hash of another configured algorithm verifies and asks for an update; its re-hash does not", () =>
    Effect.gen(function*() {
      const old = yield* withOptions({ hashers: ["argon2"] })
      const current = yield* withOptions({ hashers: ["pbkdf2_sha256", "argon2"] })
      const legacy = yield* old.hash(pw("s3cret"))
      expect(yield* current.verify(pw("s3cret"), legacy)).toEqual({ valid: true, mustUpdate: true })
      // mustUpdate is never true for a wrong password: nobody re-hashes what did not verify
      expect(yield* current.verify(pw("guess"), legacy)).toEqual({ valid: false, mustUpdate: false })
      const upgraded = yield* current.hash(pw("s3cret"))
      expect(yield* current.verify(pw("s3cret"), upgraded)).toEqual({ valid: true, mustUpdate: false })
    }))

  it.effect("more iterations configured: update asked; a wrong password pays the missing iterations", () =>
    Effect.gen(function*() {
      const before = yield* withOptions({ pbkdf2: { iterations: 1000 } })
      const after = yield* withOptions({ pbkdf2: { iterations: 3000 } })
      const encoded = yield* before.hash(pw("s3cret"))
      expect(yield* after.verify(pw("s3cret"), encoded)).toEqual({ valid: true, mustUpdate: true })
      expect(yield* observe(after, "wrong", encoded)).toEqual({
        outcome: false,
        setter_called: false,
        harden_runtime_called: true,
        preferred_hasher_encode_calls: 2
      })
      // a current hash: nothing to harden
      const current = yield* after.hash(pw("s3cret"))
      expect(yield* observe(after, "wrong", current)).toEqual({
        outcome: false,
        setter_called: false,
        harden_runtime_called: false,
        preferred_hasher_encode_calls: 1
      })
    }))

  it.effect("unknown, unusable or missing hashes and missing passwords: one dummy run, no match", () =>
    Effect.gen(function*() {
      const hasher = yield* withOptions({ hashers: ["pbkdf2_sha256"] })
      const md5 = "md5$pub1icSALTqwertyuiopAS$60339ae4c41d10510d4accb16be93416" // md5 is not configured here
      const stored = yield* hasher.hash(pw("pw"))
      const cases: ReadonlyArray<[string | null, string | null | undefined]> = [
        ["naïve café", md5],
        ["pw", hasher.makeUnusable()],
        ["pw", null],
        ["pw", undefined],
        ["pw", ""],
        ["pw", "nonsense"],
        [null, stored]
      ]
      for (const [password, encoded] of cases) {
        const rec = recorder()
        const result = yield* hasher.verify(password === null ? null : pw(password), encoded).pipe(
          Effect.withTracer(rec.tracer)
        )
        expect(result).toEqual({ valid: false, mustUpdate: false })
        expect(rec.derivations("pbkdf2_sha256").map((s) => s.attributes.get("password.purpose"))).toEqual(["dummy"])
      }
    }))

  it.effect("a Redacted that holds nothing (wiped) is a typed HashError to hash and verify, not a throw", () =>
    Effect.gen(function*() {
      const hasher = yield* test
      const wiped = Redacted.make("secret")
      Redacted.unsafeWipe(wiped)
      expect((yield* Effect.flip(hasher.hash(wiped)))._tag).toBe("HashError")
      expect((yield* Effect.flip(hasher.verify(wiped, "pbkdf2_sha256$1000$PublicSaltZ9y8X7w6V5u4$hash")))._tag).toBe("HashError")
    }))

  it.effect("a Proxy whose every trap throws is a typed HashError to hash and verify, not a throw", () =>
    Effect.gen(function*() {
      const hasher = yield* test
      // Redacted.isRedacted asks `TypeId in password`, which threw before the effect was even made.
      const refused = { _tag: "HashError", reason: "the password must be a Redacted string" }
      expect(yield* Effect.flip(Effect.suspend(() => hasher.hash(hostile())))).toMatchObject(refused)
      const encoded = yield* hasher.hash(Redacted.make("secret"))
      expect(yield* Effect.flip(Effect.suspend(() => hasher.verify(hostile(), encoded)))).toMatchObject(refused)
    }))

  it.effect("a malformed hash of a known algorithm is a typed HashError, not a defect", () =>
    Effect.gen(function*() {
      const hasher = yield* test
      const malformed = [
        "pbkdf2_sha256$many$PublicSaltZ9y8X7w6V5u4$hash",
        "pbkdf2_sha256$1000$PublicSaltZ9y8X7w6V5u4",
        "pbkdf2_sha256$-5$PublicSaltZ9y8X7w6V5u4$hash",
        "pbkdf2_sha256$1000$$hash",
        "pbkdf2_sha256$99999999999$PublicSaltZ9y8X7w6V5u4$hash",
        "pbkdf2_sha1$$",
        "argon2$argon2x$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        "argon2$argon2id$v=19$m=64,t=1,p=1$!!!$aGFzaGhhc2g",
        "argon2$argon2id$v=20$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        "argon2$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaGhhc2g",
        "argon2$argon2id$v=19$m=4,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        "argon2$argon2id$v=19$m=999999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        "bcrypt_sha256$$2b$04$short",
        "bcrypt$$2x$04$PublicBcryptSaltQrStUuujN.RipHyZkR116DyNxTal.7.2LzoEK",
        "bcrypt$$2b$99$PublicBcryptSaltQrStUuujN.RipHyZkR116DyNxTal.7.2LzoEK",
        "bcrypt$$2b$04$Public*cryptSaltQrStUuujN.RipHyZkR116DyNxTal.7.2LzoEK",
        "scrypt$1000$PublicSaltZ9y8X7w6V5u4$8$1$hash",
        "scrypt$1024$PublicSaltZ9y8X7w6V5u4$8$hash",
        "scrypt$1024$PublicSaltZ9y8X7w6V5u4$8$x$hash",
        "scrypt$1048576$PublicSaltZ9y8X7w6V5u4$8$1$hash",
        "md5$$abc",
        "sha1$$abc"
      ]
      for (const encoded of malformed) {
        const exit = yield* Effect.exit(hasher.verify(pw("pw"), encoded))
        const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        expect(Option.map(failure, (e) => e._tag), encoded).toEqual(Option.some("HashError"))
        expect(Option.map(failure, (e) => (e as PasswordHasher.HashError).algorithm), encoded).toEqual(hasher.identify(encoded))
      }
    }))

  // Django checks any cost it can parse: PBKDF2 at 2^31 - 1 iterations held a hasher for ten
  // minutes, bcrypt at cost 31 for days, and each login of that user took another. Past sixteen
  // times the work of the settings (or of Django's defaults, when higher) a hash is not checked.
  it.effect("a stored hash asking for more than 16 times the configured work is a HashError, not checked", () =>
    Effect.gen(function*() {
      const hasher = yield* test
      const absurd = [
        "pbkdf2_sha256$19200001$PublicSaltZ9y8X7w6V5u4$hash",
        "pbkdf2_sha1$2147483647$PublicSaltZ9y8X7w6V5u4$hash",
        "bcrypt_sha256$$2b$17$PublicBcryptSaltQrStUuujN.RipHyZkR116DyNxTal.7.2LzoEK",
        "bcrypt$$2b$31$PublicBcryptSaltQrStUuujN.RipHyZkR116DyNxTal.7.2LzoEK",
        "argon2$argon2id$v=19$m=102400,t=33,p=8$c2FsdHNhbHQ$aGFzaGhhc2g",
        "argon2$argon2id$v=19$m=1638408,t=1,p=8$c2FsdHNhbHQ$aGFzaGhhc2g",
        "scrypt$16384$PublicSaltZ9y8X7w6V5u4$8$81$hash"
      ]
      for (const encoded of absurd) {
        const error = yield* Effect.flip(hasher.verify(pw("pw"), encoded))
        expect(error._tag, encoded).toBe("HashError")
        expect(error.message, encoded).toContain("times the configured work: not checked")
      }
      // The settings' own cost is checked as ever.
      expect((yield* hasher.verify(pw("pw"), "bcrypt_sha256$$2b$04$PublicBcryptSaltQrStUuujN.RipHyZkR116DyNxTal.7.2LzoEK")).valid).toBe(false)
    }))

  // Argon2 allows 2^24 - 1 lanes and argon2-cffi takes them; a cap of 255 refused a Django user
  // whose hash had 256 (an availability fault: that user could not log in here).
  it.effect("argon2 takes as many lanes as argon2 allows (2^24 - 1), as argon2-cffi does, both ways", () =>
    Effect.gen(function*() {
      const wide = yield* withOptions({ hashers: ["argon2"], argon2: { timeCost: 1, memoryCost: 2048, parallelism: 256 } })
      const ours = yield* wide.hash(pw("correct horse"))
      expect(ours).toMatch(/^argon2\$argon2id\$v=19\$m=2048,t=1,p=256\$/)
      const hasher = yield* withOptions({ hashers: ["argon2"] })
      expect(yield* hasher.verify(pw("correct horse"), ours)).toEqual({ valid: true, mustUpdate: true })
      expect(yield* hasher.verify(pw("wrong"), ours)).toEqual({ valid: false, mustUpdate: false })
      for (const django of djangos) {
        const theirs: { encoded: string; ours: boolean } = runDjango(
          `from django.contrib.auth.hashers import Argon2PasswordHasher, check_password
class Wide(Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 2048
    parallelism = 256
print(json.dumps({"encoded": Wide().encode("correct horse", Wide().salt()), "ours": check_password("correct horse", data)}))`,
          ours,
          { django }
        )
        expect(theirs.ours, django.version).toBe(true)
        expect(theirs.encoded).toContain(",p=256$")
        expect(yield* hasher.verify(pw("correct horse"), theirs.encoded)).toEqual({ valid: true, mustUpdate: true })
        expect(yield* hasher.verify(pw("wrong"), theirs.encoded)).toEqual({ valid: false, mustUpdate: false })
      }
    }))

  it.effect("argon2 reads only what argon2-cffi reads: no wrapped time cost, no leading zeros, canonical base64", () =>
    Effect.gen(function*() {
      const hasher = yield* withOptions({ hashers: ["argon2"] })
      const encoded = yield* hasher.hash(pw("pw"))
      expect(yield* hasher.verify(pw("pw"), encoded)).toEqual({ valid: true, mustUpdate: false })
      const [, , , params, salt, hash] = encoded.split("$")
      expect(params).toBe("m=64,t=1,p=1")
      // The last character of unpadded base64 carries padding bits (4 in a 22-byte salt, 2 in a
      // 32-byte hash): setting the lowest spells the same bytes non-canonically.
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
      const lastBits = alphabet.indexOf(salt!.at(-1)!)
      const noncanonical = salt!.slice(0, -1) + alphabet[lastBits | 1]!
      const variants = [
        encoded.replace("t=1,", "t=4294967297,"), // 2^32 + 1: the driver would run t=1
        encoded.replace("t=1,", "t=99999999999999999999,"),
        encoded.replace("t=1,", "t=01,"),
        encoded.replace("m=64,", "m=064,"),
        encoded.replace("v=19$", "v=019$"),
        encoded.replace(`$${salt}$`, `$${noncanonical}$`),
        encoded.replace(`$${hash}`, `$${hash!.slice(0, -1)}${alphabet[alphabet.indexOf(hash!.at(-1)!) | 1]}`)
      ]
      for (const variant of variants) {
        expect(variant).not.toBe(encoded)
        const exit = yield* Effect.exit(hasher.verify(pw("pw"), variant))
        const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        expect(Option.map(failure, (e) => e._tag), variant).toEqual(Option.some("HashError"))
      }
    }))

  it.effect("a leading zero in the iterations parses, as Python's int() does, but never verifies", () =>
    Effect.gen(function*() {
      const hasher = yield* test
      const encoded = "pbkdf2_sha256$1000$PublicSaltZ9y8X7w6V5u4$9F8N07QlnW9cYzn0m13K0gSdAyGKpUsNc0HLqlvTZNQ="
      const password = "Ω≈ç√∫˜µ≤≥÷"
      expect(yield* hasher.verify(pw(password), encoded)).toEqual({ valid: true, mustUpdate: false })
      expect(yield* hasher.verify(pw(password), encoded.replace("$1000$", "$01000$"))).toEqual({ valid: false, mustUpdate: false })
    }))

  it.effect("a password that is not well-formed Unicode, or not Redacted, is a HashError", () =>
    Effect.gen(function*() {
      const hasher = yield* test
      const encoded = yield* hasher.hash(pw("pw"))
      expect((yield* Effect.flip(hasher.hash(pw("a\uD800b"))))._tag).toBe("HashError")
      expect((yield* Effect.flip(hasher.verify(pw("\uDC00"), encoded)))._tag).toBe("HashError")
      expect((yield* Effect.flip(hasher.verify("pw" as any, encoded)))._tag).toBe("HashError")
      expect((yield* Effect.flip(hasher.verify(pw("pw"), 42 as any)))._tag).toBe("HashError")
      expect(yield* hasher.verify(pw("😀"), yield* hasher.hash(pw("😀")))).toEqual({ valid: true, mustUpdate: false })
    }))

  it.effect("no password appears in an error or a span", () =>
    Effect.gen(function*() {
      const secret = "Tr0ub4dor&3-unique-secret"
      const hasher = yield* withOptions({ hashers: ["bcrypt", "pbkdf2_sha256"] })
      const rec = recorder()
      const errors = yield* Effect.forEach(
        [
          Effect.asVoid(hasher.hash(pw(secret.repeat(4)))),
          hasher.verify(pw(secret.repeat(4)), "bcrypt$$2b$04$PublicBcryptSaltQrStUuujN.RipHyZkR116DyNxTal.7.2LzoEK"),
          hasher.verify(pw(secret), "pbkdf2_sha256$x$salt$hash"),
          hasher.verify(pw(secret + "\uD800"), "pbkdf2_sha256$1000$salt$hash")
        ],
        (effect: Effect.Effect<unknown, PasswordHasher.HashError | PasswordHasher.HasherBusy>) => Effect.flip(effect)
      ).pipe(Effect.withTracer(rec.tracer))
      yield* hasher.verify(pw(secret), yield* hasher.hash(pw(secret))).pipe(Effect.withTracer(rec.tracer))
      expect(errors).toHaveLength(4)
      const rendered = [
        ...errors.flatMap((e) => [String(e), e.message, JSON.stringify(e), Cause.pretty(Cause.fail(e))]),
        ...rec.spans.map((s) => `${s.name} ${JSON.stringify(Object.fromEntries(s.attributes))}`)
      ].join("\n")
      expect(rendered).not.toContain("Tr0ub4dor")
      expect(rendered).toContain("effect-auth.password.verify")
    }))
})

describe("bcrypt and passwords over 72 bytes", () => {
  const long = "x".repeat(72) + "-tail"
  const prefixShared = "x".repeat(72) + "-other"

  it.effect("by default plain bcrypt refuses them, on hash and verify; bcrypt_sha256 takes them", () =>
    Effect.gen(function*() {
      const hasher = yield* withOptions({ hashers: ["bcrypt", "bcrypt_sha256"] })
      const error = yield* Effect.flip(hasher.hash(pw(long)))
      expect(error).toEqual(new PasswordHasher.HashError({ algorithm: "bcrypt", reason: "password is longer than 72 bytes" }))
      const short = yield* hasher.hash(pw("x".repeat(72)))
      expect((yield* Effect.flip(hasher.verify(pw(long), short)))._tag).toBe("HashError")
      const sha = yield* withOptions({ hashers: ["bcrypt_sha256"] })
      const encoded = yield* sha.hash(pw(long))
      expect(yield* sha.verify(pw(long), encoded)).toEqual({ valid: true, mustUpdate: false })
      expect(yield* sha.verify(pw(prefixShared), encoded)).toEqual({ valid: false, mustUpdate: false })
    }))

  it.effect("with longPasswords: \"truncate\" only the first 72 bytes count, as pyca/bcrypt < 5", () =>
    Effect.gen(function*() {
      const hasher = yield* withOptions({ hashers: ["bcrypt"], bcrypt: { rounds: 4, longPasswords: "truncate" } })
      const encoded = yield* hasher.hash(pw(long))
      expect(yield* hasher.verify(pw(prefixShared), encoded)).toEqual({ valid: true, mustUpdate: false })
      expect(yield* hasher.verify(pw("x".repeat(72)), encoded)).toEqual({ valid: true, mustUpdate: false })
      expect(yield* hasher.verify(pw("x".repeat(71)), encoded)).toEqual({ valid: false, mustUpdate: false })
    }))

  it.effect("NUL bytes are hashed as bytes (pyca/bcrypt 4+), not a string end", () =>
    Effect.gen(function*() {
      const hasher = yield* withOptions({ hashers: ["bcrypt"] })
      const encoded = yield* hasher.hash(pw("a\0b"))
      expect(yield* hasher.verify(pw("a\0b"), encoded)).toEqual({ valid: true, mustUpdate: false })
      expect(yield* hasher.verify(pw("a"), encoded)).toEqual({ valid: false, mustUpdate: false })
    }))
})

describe("identify, isUsable, makeUnusable", () => {
  it.effect("Django's identify rules, against the configured hashers only", () =>
    Effect.gen(function*() {
      const all = yield* test
      const modern = yield* PasswordHasher.make({ ...PasswordHasher.testOptions, hashers: ["pbkdf2_sha256", "md5"] })
      const md5hex = "8feed1b062e175e77b3769d990f9e527"
      expect(all.identify(md5hex)).toEqual(Option.some("unsalted_md5"))
      expect(all.identify(`md5$$${md5hex}`)).toEqual(Option.some("unsalted_md5"))
      expect(all.identify(`md5$$${md5hex}0`)).toEqual(Option.some("md5"))
      expect(all.identify(`sha1$$${"a".repeat(40)}`)).toEqual(Option.some("unsalted_sha1"))
      expect(all.identify(`sha1$$${"a".repeat(41)}`)).toEqual(Option.some("sha1"))
      expect(all.identify("argon2$argon2id$...")).toEqual(Option.some("argon2"))
      expect(all.identify("whirlpool$x$y")).toEqual(Option.none())
      expect(modern.identify(md5hex)).toEqual(Option.none())
      expect(modern.identify("argon2$argon2id$...")).toEqual(Option.none())
      expect(yield* all.verify(pw("naïve café"), md5hex)).toEqual({ valid: true, mustUpdate: true })
    }))

  it.effect("makeUnusable: '!' and 40 random characters, never usable, never verifying", () =>
    Effect.gen(function*() {
      const hasher = yield* test
      const values = Array.from({ length: 10 }, () => hasher.makeUnusable())
      for (const v of values) {
        expect(v).toMatch(/^![a-zA-Z0-9]{40}$/)
        expect(hasher.isUsable(v)).toBe(false)
        expect(yield* hasher.verify(pw(v), v)).toEqual({ valid: false, mustUpdate: false })
      }
      expect(new Set(values).size).toBe(10)
      // As Django's is_password_usable: only the marker is unusable.
      expect(hasher.isUsable("!")).toBe(false)
      expect(hasher.isUsable("")).toBe(true)
      expect(hasher.isUsable(null)).toBe(true)
      expect(hasher.isUsable("pbkdf2_sha256$1000$x$y")).toBe(true)
    }))
})

describe("concurrency and the event loop", () => {
  for (const concurrency of [1, 2]) {
    it.effect(`at most ${concurrency} hash(es) run at once when bounded to ${concurrency}`, () =>
      Effect.gen(function*() {
        const hasher = yield* PasswordHasher.make({ pbkdf2: { iterations: 20_000 }, concurrency, maxWaiting: 5 })
        const rec = recorder()
        const hashes = yield* Effect.forEach(Array.from({ length: 6 }), () => hasher.hash(pw("pw")), {
          concurrency: "unbounded"
        }).pipe(Effect.withTracer(rec.tracer))
        expect(hashes).toHaveLength(6)
        expect(rec.derivations("pbkdf2_sha256")).toHaveLength(6)
        expect(rec.maxInFlight()).toBe(concurrency)
      }))
  }

  /** Counts the ticks of a 5 ms interval while `work` runs; a blocked loop ticks about never. */
  const ticksDuring = <A, E>(work: Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      let ticks = 0
      const timer = setInterval(() => ticks++, 5)
      const started = performance.now()
      const result = yield* Effect.ensuring(work, Effect.sync(() => clearInterval(timer)))
      return { result, ticks, ideal: (performance.now() - started) / 5 }
    })

  it.live("a timer keeps firing while eight hashes at the default 1,200,000 iterations run", () =>
    Effect.gen(function*() {
      const hasher = yield* PasswordHasher.make({ concurrency: 2 })
      const { ideal, result, ticks } = yield* ticksDuring(
        Effect.forEach(Array.from({ length: 8 }), (_, i) => hasher.hash(pw(`pw-${i}`)), { concurrency: "unbounded" })
      )
      expect(result).toHaveLength(8)
      for (const encoded of result) expect(encoded.startsWith("pbkdf2_sha256$1200000$")).toBe(true)
      // A blocked loop would tick once or not at all; a free one ticks about `ideal` times.
      expect(ticks).toBeGreaterThan(20)
      expect(ticks).toBeGreaterThan(ideal / 4)
    }), 60_000)

  it.live("the probe itself sees a blocked loop (synchronous PBKDF2 as the counter-example)", () =>
    Effect.gen(function*() {
      const { ideal, ticks } = yield* ticksDuring(
        Effect.promise(() =>
          new Promise<void>((resolve) =>
            setImmediate(() => {
              for (let i = 0; i < 4; i++) crypto.pbkdf2Sync("pw", "salt", 100_000, 32, "sha256")
              resolve()
            })
          )
        )
      )
      expect(ideal).toBeGreaterThan(4)
      expect(ticks).toBeLessThan(ideal / 4)
    }))
})

describe("load shedding: a bounded wait queue in front of the hasher", () => {
  it.effect("past the bound the excess fail at once; the admitted finish, and release their slots", () =>
    Effect.gen(function*() {
      // three places, all running at once (no waiting room): the plain bound of calls without a client
      const admit = makeFairLimiter(3, 0, "busy" as const)
      const gate = yield* Deferred.make<void>()
      let admitted = 0
      let refused = 0
      const call = (i: number) =>
        admit(Effect.zipRight(Effect.sync(() => admitted++), Effect.as(Deferred.await(gate), i))).pipe(
          Effect.tapError(() => Effect.sync(() => refused++)),
          Effect.either
        )
      const all = yield* Effect.fork(Effect.forEach(Array.from({ length: 10 }, (_, i) => i), call, { concurrency: "unbounded" }))
      // Every call has been admitted or refused while the gate is still closed: the refusals did not wait.
      while (admitted + refused < 10) yield* Effect.yieldNow()
      expect({ admitted, refused, inFlight: admit.inFlight() }).toEqual({ admitted: 3, refused: 7, inFlight: 3 })
      expect(yield* call(99)).toEqual(Either.left("busy"))
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Fiber.join(all)
      expect(results.filter(Either.isRight)).toHaveLength(3)
      expect(results.filter(Either.isLeft).map((e) => e.left)).toEqual(Array(7).fill("busy"))
      expect(admit.inFlight()).toBe(0)
      expect(yield* call(100)).toEqual(Either.right(100))
    }))

  it.effect("an interrupted call gives its slot back", () =>
    Effect.gen(function*() {
      const admit = makeFairLimiter(1, 0, "busy" as const)
      const fiber = yield* Effect.fork(admit(Effect.never))
      while (admit.inFlight() === 0) yield* Effect.yieldNow()
      expect(yield* Effect.either(admit(Effect.succeed(1)))).toEqual(Either.left("busy"))
      yield* Fiber.interrupt(fiber)
      expect(admit.inFlight()).toBe(0)
      expect(yield* admit(Effect.succeed(1))).toBe(1)
    }))

  it.effect("the service refuses with HasherBusy past concurrency + maxWaiting, and serves again after", () =>
    Effect.gen(function*() {
      const hasher = yield* withOptions({ concurrency: 1, maxWaiting: 1, pbkdf2: { iterations: 20_000 } })
      const results = yield* Effect.forEach(
        Array.from({ length: 12 }),
        (_, i) => Effect.either(i % 2 === 0 ? Effect.asVoid(hasher.hash(pw("pw"))) : Effect.asVoid(hasher.verify(pw("pw"), null))),
        { concurrency: "unbounded" }
      )
      const busy = results.filter(Either.isLeft).map((e) => e.left)
      // At most two are in flight at once, so at least ten of twelve are refused.
      expect(busy.length).toBeGreaterThanOrEqual(10)
      for (const error of busy) {
        expect(error).toBeInstanceOf(PasswordHasher.HasherBusy)
        expect(error).toMatchObject({ _tag: "HasherBusy", inFlight: 2 })
      }
      expect(yield* hasher.verify(pw("pw"), yield* hasher.hash(pw("pw")))).toEqual({ valid: true, mustUpdate: false })
    }))

  it.effect("maxWaiting defaults to four times the concurrency and is read from PASSWORD_HASHER_MAX_WAITING", () =>
    Effect.gen(function*() {
      const fromEnv = yield* Effect.withConfigProvider(
        PasswordHasher.config,
        ConfigProvider.fromJson({ PASSWORD_HASHER_CONCURRENCY: "2", PASSWORD_HASHER_MAX_WAITING: "0" })
      )
      expect(fromEnv).toMatchObject({ concurrency: 2, maxWaiting: 0 })
      const refused = yield* Effect.flip(Layer.build(PasswordHasher.layerConfig(
        Config.succeed({ maxWaiting: -1 })
      )).pipe(Effect.scoped))
      expect(String(refused)).toContain("maxWaiting")
      // concurrency 1, default maxWaiting 4: five in flight, the rest refused.
      const hasher = yield* withOptions({ concurrency: 1, pbkdf2: { iterations: 20_000 } })
      const results = yield* Effect.forEach(Array.from({ length: 12 }), () => Effect.either(hasher.hash(pw("pw"))), {
        concurrency: "unbounded"
      })
      expect(results.filter(Either.isLeft).length).toBeGreaterThanOrEqual(7)
      for (const r of results) if (Either.isLeft(r)) expect(r.left).toMatchObject({ _tag: "HasherBusy", inFlight: 5 })
    }))
})

describe("layers and configuration", () => {
  it.effect("layerConfig reads PASSWORD_HASHERS and the parameters", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromMap(
        new Map([
          ["PASSWORD_HASHERS", "argon2,pbkdf2_sha256"],
          ["PASSWORD_HASHER_ARGON2_TIME_COST", "1"],
          ["PASSWORD_HASHER_ARGON2_MEMORY_COST", "64"],
          ["PASSWORD_HASHER_ARGON2_PARALLELISM", "1"],
          ["PASSWORD_HASHER_PBKDF2_ITERATIONS", "1000"]
        ])
      )
      const hasher = yield* PasswordHasher.PasswordHasher.pipe(
        Effect.provide(PasswordHasher.layerConfig().pipe(Layer.provide(Layer.setConfigProvider(provider))))
      )
      expect(hasher.preferredAlgorithm).toBe("argon2")
      expect(hasher.algorithms).toEqual(["argon2", "pbkdf2_sha256"])
      expect(yield* hasher.hash(pw("pw"))).toMatch(/^argon2\$argon2id\$v=19\$m=64,t=1,p=1\$/)
    }))

  it.effect("layerConfig refuses a verify-only hasher first, or bad parameters, with a ConfigError", () =>
    Effect.gen(function*() {
      for (
        const entries of [
          [["PASSWORD_HASHERS", "md5,pbkdf2_sha256"]],
          [["PASSWORD_HASHERS", "whirlpool"]],
          [["PASSWORD_HASHER_PBKDF2_ITERATIONS", "0"]],
          [["PASSWORD_HASHER_SCRYPT_WORK_FACTOR", "1000"]],
          [["PASSWORD_HASHER_ARGON2_MEMORY_COST", "8"], ["PASSWORD_HASHER_ARGON2_PARALLELISM", "2"]]
        ] as const
      ) {
        const provider = ConfigProvider.fromMap(new Map(entries))
        const exit = yield* Effect.exit(PasswordHasher.PasswordHasher.pipe(
          Effect.provide(PasswordHasher.layerConfig().pipe(Layer.provide(Layer.setConfigProvider(provider))))
        ))
        const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        expect(Option.map(failure, (e) => e._op), JSON.stringify(entries)).toEqual(Option.some("InvalidData"))
      }
    }))

  it.effect("layer with options the types forbid is a defect naming the problem", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(PasswordHasher.make({ hashers: ["md5"] } as any))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "").toContain("PasswordHasher options")
    }))

  it.effect("a preferred hasher whose hashes overflow Django's 128-character password column is refused up front", () =>
    Effect.gen(function*() {
      // scrypt at N = 2^17 (OWASP's minimum) writes 129 characters: no UserStore would take one.
      for (
        const options of [
          { hashers: ["scrypt"], scrypt: { workFactor: 2 ** 17 } },
          { hashers: ["scrypt"], scrypt: { blockSize: 16 } },
          { hashers: ["argon2"], argon2: { hashLength: 64 } }
        ] as const
      ) {
        const exit = yield* Effect.exit(PasswordHasher.make(options))
        expect(Exit.isFailure(exit) && Cause.isDie(exit.cause), JSON.stringify(options)).toBe(true)
        expect(Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "").toContain("128")
      }
      const provider = ConfigProvider.fromMap(
        new Map([["PASSWORD_HASHERS", "scrypt"], ["PASSWORD_HASHER_SCRYPT_WORK_FACTOR", String(2 ** 17)]])
      )
      const exit = yield* Effect.exit(PasswordHasher.PasswordHasher.pipe(
        Effect.provide(PasswordHasher.layerConfig().pipe(Layer.provide(Layer.setConfigProvider(provider))))
      ))
      const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      expect(Option.map(failure, (e) => e._op)).toEqual(Option.some("InvalidData"))
      // The longest that fits is allowed, and writes exactly 128 characters; a hasher that only
      // verifies may have any parameters.
      const longest = yield* PasswordHasher.make({
        hashers: ["argon2"],
        argon2: { hashLength: 48, memoryCost: 9, timeCost: 1, parallelism: 1 }
      })
      expect((yield* longest.hash(pw("pw"))).length).toBe(128)
      const verifyOnly = yield* PasswordHasher.make({ hashers: ["pbkdf2_sha256", "scrypt"], scrypt: { workFactor: 2 ** 17 } })
      expect(verifyOnly.preferredAlgorithm).toBe("pbkdf2_sha256")
    }))

  it.effect("layerTest hashes cheaply with every algorithm readable", () =>
    Effect.gen(function*() {
      const hasher = yield* PasswordHasher.PasswordHasher
      expect(hasher.algorithms).toHaveLength(10)
      const encoded = yield* hasher.hash(pw("pw"))
      expect(encoded.startsWith("pbkdf2_sha256$1000$")).toBe(true)
      expect(yield* hasher.verify(pw("pw"), encoded)).toEqual({ valid: true, mustUpdate: false })
    }).pipe(Effect.provide(PasswordHasher.layerTest)))
})
