import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer, Redacted } from "effect"
import * as PasswordValidation from "../src/PasswordValidation.js"
import { commonPasswords } from "../src/internal/commonPasswords.js"
import { djangoPython, djangos, runDjango } from "./utils/django.js"
import { hostile } from "./utils/hostile.js"

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
  { password: "bob12345", user: { username: "bob12345", email: "" } },
  // Python's strip() whitespace, not JavaScript's trim()
  { password: "password\x1c" },
  { password: "\x85qwerty\x1f" },
  { password: "password\ufeff" },
  // Characters Unicode assigned after 14.0 (Python 3.11's, where Django runs), which Node 20's
  // 17.0 knows: to Python they are no word character (U+11F04 splits the username), no case
  // (U+A7CB is not lowered to U+0264) and no digit (U+10D40)
  { password: "alicesmith", user: { username: "alicesmith" + "\u{11F04}".repeat(9) } },
  { password: "\uA7CB".repeat(8), user: { username: "\u0264".repeat(8) } },
  { password: "\u{10D40}".repeat(8) }
]

const ours = (c: Case, validators?: ReadonlyArray<PasswordValidation.Validator>) =>
  Effect.map(Effect.either(PasswordValidation.validate(pw(c.password), c.user, validators)), Either.match({
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

  it.effect("a password that is not a Redacted string is one typed issue, and no validator sees it", () =>
    Effect.gen(function*() {
      let asked = 0
      const counting: PasswordValidation.Validator = {
        helpText: "counts",
        validate: () => Effect.sync(() => void asked++)
      }
      // A wiped Redacted (or an object inheriting from one) passes isRedacted, and reading it threw.
      const wiped = Redacted.make("secret")
      Redacted.unsafeWipe(wiped)
      // A Proxy whose every trap throws made Redacted.isRedacted throw at the call.
      for (const password of ["plain", Redacted.make(42), undefined, {}, wiped, Object.create(Redacted.make("x")), hostile()]) {
        const error = yield* Effect.flip(Effect.suspend(() =>
          PasswordValidation.validate(password as Redacted.Redacted<string>, undefined, [...PasswordValidation.defaultValidators(), counting])
        ))
        expect(error.issues).toEqual([{ code: "password_not_redacted_string", message: "The password must be a Redacted string." }])
      }
      expect(asked).toBe(0)
    }))

  it.effect("a user that cannot be read (a Proxy whose every trap throws) has no attributes, not a defect", () =>
    Effect.gen(function*() {
      const similar = [PasswordValidation.userAttributeSimilarity()]
      yield* PasswordValidation.validate(pw("alice_w"), hostile(), similar)
      const error = yield* Effect.flip(PasswordValidation.validate(pw("alice_w"), alice, similar))
      expect(error.issues.map((issue) => issue.code)).toEqual(["password_too_similar"])
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

  it.effect("commonPassword strips what Python's str.strip() strips, not what trim() does", () =>
    Effect.gen(function*() {
      const common = PasswordValidation.commonPassword()
      const refused = (p: string) => Effect.map(Effect.either(common.validate(pw(p))), Either.isLeft)
      // U+001C..U+001F and NEL are Python whitespace: Django strips them and refuses the password.
      for (const p of ["password\x1c", "\x1dpassword\x1f", "password\x85", "\u3000PASSWORD\u2028"]) {
        expect(yield* refused(p), JSON.stringify(p)).toBe(true)
      }
      // The BOM is not: Django lets "password\ufeff" through.
      expect(yield* refused("password\ufeff")).toBe(false)
      const custom = PasswordValidation.commonPassword({ passwords: ["acme\x1e", "\ufeffzeta"] })
      expect(Either.isLeft(yield* Effect.either(custom.validate(pw("acme"))))).toBe(true)
      expect(Either.isLeft(yield* Effect.either(custom.validate(pw("zeta"))))).toBe(false)
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
  for (const django of djangos) {
    const list = `django-${django.version}` as PasswordValidation.CommonPasswordList

    it.effect(`the same passwords pass and fail with the same messages, and the help texts agree (Django ${django.version})`, () =>
      Effect.gen(function*() {
        const validators = PasswordValidation.defaultValidators({ commonPasswordList: list })
        const theirs: { results: Array<Array<string>>; help: Array<string> } = runDjango(DJANGO, { cases }, { django })
        const results = yield* Effect.forEach(cases, (c) => ours(c, validators))
        for (const [i, c] of cases.entries()) expect(results[i], c.password).toEqual(theirs.results[i])
        expect(PasswordValidation.helpTexts(validators)).toEqual(theirs.help)
        // The comparison covers every rule, passing and failing.
        const all = theirs.results.flat()
        for (const fragment of ["too short", "too similar to the username", "too similar to the last name", "too common", "entirely numeric"]) {
          expect(all.some((m) => m.includes(fragment)), fragment).toBe(true)
        }
        expect(theirs.results.some((r) => r.length === 0)).toBe(true)
      }))

    it.effect(`Django ${django.version}'s common-password list is refused entry by entry, and only it`, () =>
      Effect.gen(function*() {
        expect(PasswordValidation.commonPasswordLists).toContain(list)
        const theirs: Array<string> = runDjango(
          `from django.contrib.auth.password_validation import CommonPasswordValidator
print(json.dumps(sorted(CommonPasswordValidator().passwords)))`,
          {},
          { django }
        )
        expect(theirs.length).toBeGreaterThan(19000)
        // The same set, not only a sample of it: each release's list must be this release's.
        expect([...commonPasswords(list)].sort()).toEqual(theirs)
        const common = PasswordValidation.commonPassword({ list })
        for (const p of theirs.filter((_, i) => i % 97 === 0)) {
          expect(Either.isLeft(yield* Effect.either(common.validate(pw(p)))), p).toBe(true)
          expect(Either.isLeft(yield* Effect.either(common.validate(pw(` ${p.toUpperCase()} `)))), p).toBe(true)
        }
        expect(Either.isRight(yield* Effect.either(common.validate(pw("correct horse battery staple"))))).toBe(true)
      }))
  }

  it("the default list is the newer releases' one; an unknown list is refused when the validator is built", () => {
    expect(PasswordValidation.commonPasswordLists[0]).toBe("django-5.2")
    // in 3.2's list, not in 5.2's, and the other way round: the two lists really differ
    const only32 = [...commonPasswords("django-3.2")].find((p) => !commonPasswords("django-5.2").has(p))!
    const only52 = [...commonPasswords("django-5.2")].find((p) => !commonPasswords("django-3.2").has(p))!
    const refuses = (v: PasswordValidation.Validator, p: string) => Either.isLeft(Effect.runSync(Effect.either(v.validate(pw(p)))))
    expect(refuses(PasswordValidation.commonPassword(), only52)).toBe(true)
    expect(refuses(PasswordValidation.commonPassword(), only32)).toBe(false)
    expect(refuses(PasswordValidation.commonPassword({ list: "django-3.2" }), only32)).toBe(true)
    expect(refuses(PasswordValidation.commonPassword({ list: "django-3.2" }), only52)).toBe(false)
    expect(() => PasswordValidation.commonPassword({ list: "django-4.0" as PasswordValidation.CommonPasswordList })).toThrow(RangeError)
  })

  it.effect("layerConfig sets the validators AUTH_PASSWORD_VALIDATORS would: PASSWORD_VALIDATORS, PASSWORD_MIN_LENGTH, ...; bad settings are a ConfigError", () =>
    Effect.gen(function*() {
      const issuesUnder = (env: Record<string, string>, password: string) =>
        PasswordValidation.validate(pw(password), { username: "carol" }).pipe(
          Effect.as<ReadonlyArray<string>>([]),
          Effect.catchTag("InvalidPassword", (e) => Effect.succeed(e.issues.map((issue) => issue.code))),
          Effect.provide(PasswordValidation.layerConfig()),
          Effect.withConfigProvider(ConfigProvider.fromJson(env)),
          Effect.orDie
        )
      // nothing set: Django's four, as a new project's settings
      expect(yield* issuesUnder({}, "12345")).toEqual(["password_too_short", "password_too_common", "password_entirely_numeric"])
      expect(yield* issuesUnder({ PASSWORD_VALIDATORS: "none" }, "12345")).toEqual([])
      expect(yield* issuesUnder({ PASSWORD_MIN_LENGTH: "12" }, "Short-pw-9!")).toEqual(["password_too_short"])
      const listed = { PASSWORD_VALIDATORS: "django.contrib.auth.password_validation.NumericPasswordValidator, MinimumLengthValidator" }
      expect(yield* issuesUnder(listed, "12345")).toEqual(["password_entirely_numeric", "password_too_short"])
      expect(yield* issuesUnder({}, "carolXYZ12")).toEqual([])
      expect(yield* issuesUnder({ PASSWORD_MAX_SIMILARITY: "0.5" }, "carolXYZ12")).toEqual(["password_too_similar"])
      expect(yield* issuesUnder({ PASSWORD_COMMON_LIST: "django-3.2" }, "giuliano")).toEqual(["password_too_common"])
      expect(yield* issuesUnder({}, "giuliano")).toEqual([])

      for (
        const env of [
          { PASSWORD_VALIDATORS: "Frobnicator" },
          { PASSWORD_VALIDATORS: "" },
          { PASSWORD_MIN_LENGTH: "0" },
          { PASSWORD_MIN_LENGTH: "eight" },
          { PASSWORD_MAX_SIMILARITY: "0.05" },
          { PASSWORD_COMMON_LIST: "django-4.0" }
        ]
      ) {
        const built = yield* Effect.either(
          Layer.build(PasswordValidation.layerConfig()).pipe(Effect.scoped, Effect.withConfigProvider(ConfigProvider.fromJson(env)))
        )
        expect(Either.isLeft(built) && built.left._op, JSON.stringify(env)).toBe("InvalidData")
      }
      expect(() => PasswordValidation.fromSettings({ validators: ["Nope" as PasswordValidation.DjangoValidatorName] })).toThrow(RangeError)
      expect(PasswordValidation.fromSettings().map((v) => v.helpText)).toEqual(PasswordValidation.helpTexts())
    }))
})
