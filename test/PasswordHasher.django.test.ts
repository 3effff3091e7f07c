// Django version presets, make_password and a legacy hasher first, held against Django itself
// (Debian's python3-django 3.2 with python3-argon2: argon2-cffi 21.1, which writes 16-byte hashes).
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { PasswordHasher } from "../src/index.js"
import { djangoPython, runDjango } from "./utils/django.js"
import { hostile } from "./utils/hostile.js"

const DJANGO = `
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers." + name for name in [
    "PBKDF2PasswordHasher", "PBKDF2SHA1PasswordHasher", "Argon2PasswordHasher", "BCryptSHA256PasswordHasher",
    "MD5PasswordHasher", "SHA1PasswordHasher", "UnsaltedMD5PasswordHasher", "UnsaltedSHA1PasswordHasher"]]
from django.contrib.auth.hashers import make_password, check_password, get_hasher, identify_hasher, is_password_usable
out = []
for case in data:
    if case["op"] == "make":
        out.append(make_password(case["password"], case["salt"], case["algorithm"]))
    elif case["op"] == "check":
        hasher = identify_hasher(case["encoded"]) if is_password_usable(case["encoded"]) else None
        out.append({
            "valid": check_password(case["password"], case["encoded"]),
            "usable": is_password_usable(case["encoded"]),
            "mustUpdate": hasher.must_update(case["encoded"]) if hasher else None,
        })
print(json.dumps(out))
`

const password = "correct horse battery staple ünïcödé"
const secret = Redacted.make(password)
const preset = PasswordHasher.djangoPresets["3.2"]

describe.skipIf(djangoPython === undefined)("PasswordHasher against Django 3.2 (python3-django)", () => {
  it.effect("makePassword with a given salt writes what Django's make_password writes", () =>
    Effect.gen(function*() {
      const cases = [
        { algorithm: "pbkdf2_sha256", salt: "seasalt2020" },
        { algorithm: "pbkdf2_sha1", salt: "seasalt2020" },
        { algorithm: "argon2", salt: "seasaltseasalt" },
        { algorithm: "md5", salt: "seasalt" },
        { algorithm: "sha1", salt: "seasalt" },
        { algorithm: "unsalted_md5", salt: "" },
        { algorithm: "unsalted_sha1", salt: "" }
      ] as const
      const theirs: Array<string> = runDjango(DJANGO, cases.map((c) => ({ op: "make", password, ...c })))
      for (const [i, c] of cases.entries()) {
        // Django's unsalted hashers refuse a salt; ours take none either.
        const ours = yield* PasswordHasher.makePassword(secret, {
          algorithm: c.algorithm,
          salt: c.salt === "" ? undefined : c.salt,
          settings: preset
        })
        expect([c.algorithm, ours]).toEqual([c.algorithm, theirs[i]])
      }
    }))

  it.effect("the 3.2 preset's hashes are current for Django 3.2, and Django 3.2's for the preset", () =>
    Effect.gen(function*() {
      const hasher = yield* PasswordHasher.make(preset)
      const argon2First = yield* PasswordHasher.make({ ...preset, hashers: ["argon2", "pbkdf2_sha256"] })
      const ours = [yield* hasher.hash(secret), yield* argon2First.hash(secret)]
      const theirs: Array<string> = runDjango(DJANGO, [
        { op: "make", password, salt: null, algorithm: "pbkdf2_sha256" },
        { op: "make", password, salt: null, algorithm: "argon2" }
      ])
      const checked = runDjango(DJANGO, ours.map((encoded) => ({ op: "check", password, encoded })))
      expect(checked).toEqual([
        { valid: true, usable: true, mustUpdate: false },
        { valid: true, usable: true, mustUpdate: false }
      ])
      expect(yield* hasher.verify(secret, theirs[0]!)).toEqual({ valid: true, mustUpdate: false })
      expect((yield* argon2First.verify(secret, theirs[1]!)).mustUpdate).toBe(false)
      // Django 6.0's defaults (this library's) would re-hash Django 3.2's on every login.
      const latest = yield* PasswordHasher.make({})
      expect((yield* latest.verify(secret, theirs[0]!)).mustUpdate).toBe(true)
    }))

  it.effect("a legacy hasher first writes new hashes with it, as Django allows", () =>
    Effect.gen(function*() {
      const hasher = yield* PasswordHasher.make({ ...PasswordHasher.testOptions, legacyFirst: "md5" })
      expect(hasher.preferredAlgorithm).toBe("md5")
      const encoded = yield* hasher.hash(secret)
      expect(encoded.startsWith("md5$")).toBe(true)
      expect(runDjango(DJANGO, [{ op: "check", password, encoded }])[0].valid).toBe(true)
      // The other hashers still verify.
      const pbkdf2 = yield* PasswordHasher.makePassword(secret, { algorithm: "pbkdf2_sha256", settings: PasswordHasher.testOptions })
      expect((yield* hasher.verify(secret, pbkdf2)).valid).toBe(true)
    }))

  it.effect("makePassword(null) is an unusable password, for Django too", () =>
    Effect.gen(function*() {
      const encoded = yield* PasswordHasher.makePassword(null)
      expect(runDjango(DJANGO, [{ op: "check", password, encoded }])[0]).toEqual({ valid: false, usable: false, mustUpdate: null })
    }))
})

describe("makePassword's input", () => {
  it.effect("a salt Django would refuse, or an unknown algorithm, is a HashError", () =>
    Effect.gen(function*() {
      // (from an untyped caller: a salt that is no string)
      for (const salt of ["", "a$b", 12345 as any, null as any]) {
        const result = yield* Effect.either(PasswordHasher.makePassword(secret, { algorithm: "pbkdf2_sha256", salt }))
        expect(Either.isLeft(result) && result.left._tag).toBe("HashError")
      }
      const unknown = yield* Effect.either(PasswordHasher.makePassword(secret, { algorithm: "rot13" as any }))
      expect(Either.isLeft(unknown) && unknown.left.reason).toBe("not one of Django's hashers")
      const numbered = yield* Effect.either(PasswordHasher.makePassword(secret, { algorithm: 5 as any }))
      expect(Either.isLeft(numbered) && numbered.left).toMatchObject({ algorithm: "unknown", reason: "not one of Django's hashers" })
      const notRedacted = yield* Effect.either(PasswordHasher.makePassword("plain" as any))
      expect(Either.isLeft(notRedacted)).toBe(true)
    }))

  it.effect("options that are null or throw when read are a HashError, never a defect", () =>
    Effect.gen(function*() {
      const throwing = (field: string) =>
        Object.defineProperty({ algorithm: "pbkdf2_sha256" }, field, {
          get() {
            throw new Error("getter")
          },
          enumerable: true
        })
      for (const options of [null, throwing("salt"), throwing("settings"), { settings: hostile() }, hostile()]) {
        const exit = yield* Effect.exit(Effect.suspend(() => PasswordHasher.makePassword(secret, options as any)))
        expect(exit._tag === "Failure" && exit.cause._tag === "Fail" && exit.cause.error).toMatchObject({
          _tag: "HashError",
          algorithm: "unknown"
        })
      }
    }))

  it("the presets carry each version's iteration count", () => {
    expect(Object.fromEntries(
      Object.entries(PasswordHasher.djangoPresets).map(([version, options]) => [version, options.pbkdf2?.iterations])
    )).toEqual({ "3.2": 260_000, "4.2": 600_000, "5.2": 1_000_000, "6.0": 1_200_000 })
    expect(PasswordHasher.djangoPresets["3.2"].hashers).not.toContain("scrypt")
    expect(PasswordHasher.djangoPresets["4.2"].hashers).toContain("scrypt")
  })
})
