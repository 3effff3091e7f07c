// Usernames at creation: Django's UnicodeUsernameValidator, in the stores and compared with Django.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Redacted, Schema } from "effect"
import * as fc from "fast-check"
import * as LoginUsername from "../src/internal/http/loginUsername.js"
import * as Lockout from "../src/Lockout.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as UserManager from "../src/UserManager.js"
import * as UserStore from "../src/UserStore.js"
import { djangoPython, djangos, runDjango } from "./utils/django.js"

const tricky = [
  "alice",
  "alice ",
  " alice",
  "al ice",
  "al\u202eice", // right-to-left override
  "al\u200bice", // zero-width space
  "al\u200dice", // zero-width joiner
  "\u0430lice", // Cyrillic а: a letter, which Django accepts too
  "ali\u0301ce", // a combining accent: a mark, not a word character for Python
  "alice\n",
  "alice\t",
  "a.b@c+d-e_f",
  "ｊｏｅ",
  "名前",
  "١٢٣", // Arabic-Indic digits
  "Ⅻ", // a letter number
  "½", // a vulgar fraction (other number)
  "a/b",
  "a\\b",
  "a'b",
  "😀",
  // Kawi, assigned in Unicode 15: a letter to Node 20's Unicode 17, unassigned (no word
  // character) to Python 3.11's 14.0, where Django runs
  "\u{11F04}",
  "\u{1CCD6}dmin", // an outlined A (Unicode 16), which NFKC makes "A" under Unicode 17
  "x".repeat(150),
  ""
]

const ours = (name: string) => Schema.is(UserStore.ValidUsername)(name)

describe("UserStore.ValidUsername", () => {
  it("refuses spaces, invisible and format characters; accepts letters, digits and _ . @ + -", () => {
    expect(tricky.filter(ours)).toEqual([
      "alice",
      "\u0430lice",
      "a.b@c+d-e_f",
      "ｊｏｅ",
      "名前",
      "١٢٣",
      "Ⅻ",
      "½",
      "x".repeat(150)
    ])
  })

  it.effect("a store refuses to create a user whose name Django would refuse, and finds names made elsewhere", () =>
    Effect.gen(function*() {
      const store = yield* UserStore.UserStore
      for (const name of ["alice ", "al\u202eice", "al\u200bice"]) {
        const result = yield* Effect.either(store.create({ username: name }))
        expect(Either.isLeft(result) && result.left._tag).toBe("InvalidInput")
      }
      const alice = yield* store.create({ username: "alice" })
      expect(alice.username).toBe("alice")
      // Creation normalises first (Django's normalize_username): full-width letters are fine.
      expect((yield* store.create({ username: "ｊｏｅ" })).username).toBe("joe")
    }).pipe(Effect.provide(MemoryUserStore.layer)))
})

describe.skipIf(djangoPython === undefined)("against Django 3.2's UnicodeUsernameValidator", () => {
  const DJANGO = `
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
v = UnicodeUsernameValidator()
def ok(s):
    try:
        v(s)
        return True
    except ValidationError:
        return False
print(json.dumps([ok(s) for s in data]))
`
  // Any code point but a lone surrogate (Python refuses those on the way in).
  const codePoint = fc.integer({ min: 0, max: 0x10ffff })
    .filter((c) => c < 0xd800 || c > 0xdfff)
    .map((c) => String.fromCodePoint(c))
  it("gives Django's verdict on the tricky names and on random strings", () => {
    const random = fc.sample(
      fc.string({ unit: fc.oneof(fc.constantFrom(" ", "\u200b", "\u202e", "_", ".", "@", "-", "+", "/"), codePoint), minLength: 1, maxLength: 8 }),
      { numRuns: 400, seed: 42 }
    )
    const names = [...tricky.filter((s) => s.length > 0), ...random]
    const theirs: Array<boolean> = runDjango(DJANGO, names)
    const mismatches = names.filter((name, i) => ours(name) !== theirs[i])
    expect(mismatches).toEqual([])
    // The comparison can fail: both sides refuse some and accept some.
    expect(theirs.filter((x) => x === true).length).toBeGreaterThan(20)
    expect(theirs.filter((x) => x === false).length).toBeGreaterThan(20)
  })
})

// A login form's username, as Django's AuthenticationForm (UsernameField) cleans it before the
// backends see it: stripped as Python strips, then NFKC unless longer than the field allows.
describe.skipIf(djangoPython === undefined)("a login form's username, against Django's UsernameField", () => {
  const DJANGO = `
from django.contrib.auth.forms import UsernameField
from django.core.exceptions import ValidationError
field = UsernameField(max_length=150)
def cleaned(s):
    try:
        return field.clean(s)
    except ValidationError:
        return None
print(json.dumps([[field.to_python(s), cleaned(s)] for s in data]))
`
  const names = [
    " alice ",
    "alice\u3000",
    "\talice\n",
    "alice\u00a0",
    "alice\x1c",
    "\ufeffalice",
    "ａｌｉｃｅ ",
    " \u0430lice",
    "x".repeat(150) + " ",
    // 200 characters that NFKC makes 100: too long for the form before normalising
    "e\u0301".repeat(100),
    "\ufb00".repeat(151),
    // 100 mathematical bold letters: 200 UTF-16 units, 100 characters to Django, which normalises
    "\u{1D41A}".repeat(100),
    "  ",
    // characters Unicode assigned after 14.0 (Python 3.11's), which NFKC folds under Node 20's 17.0:
    // Django leaves them as they are, so must the form here
    "\u{1CCD6}dmin",
    " \u{1E030}lice ",
    "\uFB01\u{1CCD6}\u0301"
  ]
  for (const django of djangos) {
    it(`cleans as Django ${django.version} does, and what it refuses as too long stays too long for the store`, () => {
      const theirs: Array<[string, string | null]> = runDjango(DJANGO, names, { django })
      names.forEach((name, i) => {
        const expected = theirs[i]!
        expect(LoginUsername.clean(name), JSON.stringify(name)).toBe(expected[0])
        // the form refuses it (too long, empty): no user of the store can have that name
        if (expected[1] === null) expect(Schema.is(UserStore.Username)(LoginUsername.clean(name))).toBe(false)
      })
    })
  }
})

// NFKC's cost grows with the square of a run of combining marks: one 128 KiB name (a JSON login
// body) held the event loop for seconds in the lockout's key, the store's lookup and UserManager.
// No username is that long, so no path normalises a string past the bound; each still refuses it.
describe("a name of 64,000 combining marks", () => {
  const name = "a" + "\u0301".repeat(32_000) + "\u0316".repeat(32_000)
  // Records the length of every string NFKC is asked to normalise while `effect` runs.
  const normalisedLengths = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.gen(function*() {
      const lengths: Array<number> = []
      const original = String.prototype.normalize
      const result = yield* Effect.acquireUseRelease(
        Effect.sync(() => {
          String.prototype.normalize = function(this: string, form?: string) {
            lengths.push(this.length)
            return original.call(this, form)
          }
        }),
        () => Effect.either(effect),
        () => Effect.sync(() => (String.prototype.normalize = original))
      )
      return { result, longest: Math.max(0, ...lengths) }
    })

  it.effect("is refused by the store, UserManager and the lockout without being normalised whole", () =>
    Effect.gen(function*() {
      const store = yield* UserStore.UserStore
      const lookup = yield* normalisedLengths(store.findByUsername(name))
      expect(Either.isLeft(lookup.result) && lookup.result.left._tag).toBe("InvalidInput")
      const created = yield* normalisedLengths(UserManager.createUser({ username: name, password: Redacted.make("a long password 1") }))
      expect(Either.isLeft(created.result) && created.result.left._tag).toBe("InvalidInput")
      expect(yield* store.list()).toEqual([])
      const reset = yield* normalisedLengths(Lockout.reset(name))
      expect(reset.result).toEqual(Either.right([]))
      for (const { longest } of [lookup, created, reset]) expect(longest).toBeLessThanOrEqual(1_200)
    }).pipe(Effect.provide(Layer.mergeAll(MemoryUserStore.layer, PasswordHasher.layerTest, Lockout.layerMemory()))))
})
