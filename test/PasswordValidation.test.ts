import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import * as PasswordValidation from "../src/PasswordValidation.js"
import { djangoPython, runDjango } from "./utils/django.js"

const pw = (s: string) => Redacted.make(s)

interface Case {
  readonly password: string
  readonly user?: { readonly username?: string; readonly firstName?: string; readonly lastName?: string; readonly email?: string }
}

const alice = { username: "alice_w", firstName: "Alice", lastName: "Wonderland", email: "alice.w@example.com" }

const cases: ReadonlyArray<Case> = [
  { password: "correct horse battery staple" },
  { password: "short" },
  { password: "1234" },
  { password: "12345678" },
  { password: "password" },
  { password: "PASSWORD " },
  { password: "39281746" },
  { password: "²³¹⁴⁵⁶⁷⁸" },
  { password: "١٢٣٤٥٦٧٨٩" },
  { password: "½½½½½½½½" },
  { password: "😀😀😀😀😀😀😀" },
  { password: "a" },
  { password: "" },
  { password: "alice_wonderland", user: alice },
  { password: "wonderland!", user: alice },
  { password: "dnalrednow", user: alice },
  { password: "example.com", user: alice },
  { password: "ALICE", user: alice },
  { password: "x7#Qm9!vR2", user: alice },
  { password: "aliceaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", user: alice },
  { password: "zoë straße", user: { username: "zoë", email: "zoe@straße.de" } },
  { password: "qwertyuiop", user: { username: "bob" } },
  { password: "bob12345", user: { username: "bob12345", email: "" } }
]

const ours = (c: Case) =>
  Effect.map(Effect.either(PasswordValidation.validate(pw(c.password), c.user)), Either.match({
    onLeft: (e) => e.messages,
    onRight: () => []
  }))

describe("PasswordValidation", () => {
  it.effect("reports every broken rule, in the validators' order, with Django's messages and codes", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PasswordValidation.validate(pw("1234"), { username: "x" }))
      expect(error._tag).toBe("InvalidPassword")
      expect(error.issues).toEqual([
        { code: "password_too_short", message: "This password is too short. It must contain at least 8 characters." },
        { code: "password_too_common", message: "This password is too common." },
        { code: "password_entirely_numeric", message: "This password is entirely numeric." }
      ])
      expect(error.message).not.toContain("1234")
      expect(yield* PasswordValidation.validate(pw("correct horse battery staple"))).toBeUndefined()
    }))

  it("quickRatio is difflib's", () => {
    expect(PasswordValidation.quickRatio("abcd", "bcde")).toBe(0.75)
    expect(PasswordValidation.quickRatio("", "")).toBe(1)
    expect(PasswordValidation.quickRatio("aab", "abb")).toBeCloseTo(4 / 6)
  })

  it.effect("validators are pluggable; minimumLength counts code points and says 'character' for 1", () =>
    Effect.gen(function*() {
      const noSpaces: PasswordValidation.Validator = {
        helpText: "No spaces.",
        validate: (p) => Redacted.value(p).includes(" ") ? Effect.fail({ code: "spaces", message: "Spaces." }) : Effect.void
      }
      const validators = [PasswordValidation.minimumLength({ minLength: 1 }), noSpaces, PasswordValidation.minimumLength({ minLength: 3 })]
      const error = yield* Effect.flip(PasswordValidation.validate(pw(" 😀😀"), undefined, validators))
      expect(error.messages).toEqual(["Spaces."])
      // Two code points, four UTF-16 units: too short, as Python counts.
      expect((yield* Effect.flip(PasswordValidation.validate(pw("😀😀"), undefined, validators))).messages).toEqual([
        "This password is too short. It must contain at least 3 characters."
      ])
      const short = yield* Effect.flip(PasswordValidation.validate(pw(""), undefined, validators))
      expect(short.messages).toEqual([
        "This password is too short. It must contain at least 1 character.",
        "This password is too short. It must contain at least 3 characters."
      ])
      expect(PasswordValidation.helpTexts(validators)).toEqual([
        "Your password must contain at least 1 character.",
        "No spaces.",
        "Your password must contain at least 3 characters."
      ])
      const custom = PasswordValidation.commonPassword({ passwords: ["acme2024"] })
      expect(Either.isLeft(yield* Effect.either(custom.validate(pw(" ACME2024 "))))).toBe(true)
      expect(() => PasswordValidation.userAttributeSimilarity({ maxSimilarity: 0.05 })).toThrow(RangeError)
    }))
})

const DJANGO = `
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password, password_validators_help_texts
from django.core.exceptions import ValidationError
out = []
for c in data["cases"]:
    u = c.get("user")
    user = None if u is None else User(username=u.get("username", ""), first_name=u.get("firstName", ""), last_name=u.get("lastName", ""), email=u.get("email", ""))
    try:
        validate_password(c["password"], user)
        out.append([])
    except ValidationError as e:
        out.append(e.messages)
print(json.dumps({"results": out, "help": password_validators_help_texts()}))
`

describe.skipIf(djangoPython === undefined)("PasswordValidation against Django (python3-django)", () => {
  it.effect("the same passwords pass and fail with the same messages, and the help texts agree", () =>
    Effect.gen(function*() {
      const django: { results: Array<Array<string>>; help: Array<string> } = runDjango(DJANGO, { cases })
      const results = yield* Effect.forEach(cases, ours)
      for (const [i, c] of cases.entries()) expect(results[i], c.password).toEqual(django.results[i])
      expect(PasswordValidation.helpTexts()).toEqual(django.help)
      // The comparison covers every rule, passing and failing.
      const all = django.results.flat()
      for (const fragment of ["too short", "too similar to the username", "too similar to the last name", "too common", "entirely numeric"]) {
        expect(all.some((m) => m.includes(fragment)), fragment).toBe(true)
      }
      expect(django.results.some((r) => r.length === 0)).toBe(true)
    }))

  it.effect("every entry of Django's common-password list is refused, and only those", () =>
    Effect.gen(function*() {
      const sample: Array<string> = runDjango(
        `from django.contrib.auth.password_validation import CommonPasswordValidator
ps = sorted(CommonPasswordValidator().passwords)
print(json.dumps([len(ps)] + ps[::97]))`,
        {}
      )
      const [count, ...some] = sample as unknown as [number, ...Array<string>]
      expect(count).toBe(19727)
      const common = PasswordValidation.commonPassword()
      for (const p of some) expect(Either.isLeft(yield* Effect.either(common.validate(pw(p)))), p).toBe(true)
      expect(Either.isRight(yield* Effect.either(common.validate(pw("correct horse battery staple"))))).toBe(true)
    }))
})
