import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Redacted, Schema, TestClock } from "effect"
import * as Credentials from "../src/Credentials.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as PasswordResetToken from "../src/PasswordResetToken.js"
import * as PasswordValidation from "../src/PasswordValidation.js"
import * as UserManager from "../src/UserManager.js"
import * as UserStore from "../src/UserStore.js"
import { djangoPython, runDjango } from "./utils/django.js"
import { hostile } from "./utils/hostile.js"

const pw = (s: string) => Redacted.make(s)
const Live = Layer.merge(MemoryUserStore.layer, PasswordHasher.layerTest)

const verify = (user: UserStore.StoredUser, password: string) =>
  Effect.flatMap(PasswordHasher.PasswordHasher, (hasher) =>
    Effect.map(hasher.verify(pw(password), Redacted.value(user.passwordHash)), (result) => result.valid))

const reload = (username: string) =>
  Effect.flatMap(UserStore.UserStore, (store) => Effect.map(store.findByUsername(username), Option.getOrThrow))

describe("UserManager", () => {
  it.effect("createUser validates, hashes and stores: the password logs in, the hash is Django's", () =>
    Effect.gen(function*() {
      const alice = yield* UserManager.createUser({ username: "alice", email: "alice@example.com", password: pw("correct horse battery") })
      expect(Redacted.value(alice.passwordHash).startsWith("pbkdf2_sha256$")).toBe(true)
      expect(yield* verify(alice, "correct horse battery")).toBe(true)
      expect(yield* verify(alice, "wrong horse battery")).toBe(false)
      expect(alice.isSuperuser).toBe(false)
    }).pipe(Effect.provide(Live)))

  it.effect("a refused password lists every broken rule, as Django reports them, and creates nothing", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(UserManager.createUser({ username: "bob", password: pw("1234") }))
      expect(error._tag).toBe("InvalidPassword")
      if (error._tag !== "InvalidPassword") return
      expect(error.issues.map((i) => i.code)).toEqual([
        "password_too_short",
        "password_too_common",
        "password_entirely_numeric"
      ])
      const store = yield* UserStore.UserStore
      expect(Option.isNone(yield* store.findByUsername("bob"))).toBe(true)
    }).pipe(Effect.provide(Live)))

  // Set with no bound, a 4,097-character password was stored and then refused at every login
  // (Credentials.Password takes at most 4,096): the user was locked out of the account just made.
  it.effect("a password longer than a login takes (4,096 characters) is refused, and nothing is stored; 4,096 logs in", () =>
    Effect.gen(function*() {
      const long = "correct horse battery ".repeat(200).slice(0, 4096)
      const error = yield* Effect.flip(UserManager.createUser({ username: "erin", password: pw(long + "x") }))
      expect(error._tag === "InvalidPassword" && error.issues.map((i) => i.code)).toEqual(["password_too_long"])
      const store = yield* UserStore.UserStore
      expect(Option.isNone(yield* store.findByUsername("erin"))).toBe(true)
      const erin = yield* UserManager.createUser({ username: "erin", password: pw(long) })
      const refused = yield* Effect.flip(UserManager.setPassword(erin, pw(long + "x")))
      expect(refused._tag).toBe("InvalidPassword")
      // what a login takes, and the password it checks
      expect(Schema.is(Credentials.UsernamePassword)({ username: "erin", password: Redacted.make(long) })).toBe(true)
      expect(Schema.is(Credentials.UsernamePassword)({ username: "erin", password: Redacted.make(long + "x") })).toBe(false)
      expect(yield* verify(erin, long)).toBe(true)
    }).pipe(Effect.provide(Live)))

  // The validators lower the whole password (similarity, common passwords): run before the bound,
  // a password of megabytes held the thread for seconds before it was refused for its length.
  it.effect("a password over the bound is refused before any validator reads it", () => {
    const seen: Array<number> = []
    const watching: PasswordValidation.Validator = {
      helpText: "watched",
      validate: (password) => Effect.sync(() => void seen.push(Redacted.value(password).length))
    }
    return Effect.gen(function*() {
      const long = "Σʕ".repeat(2049)
      const created = yield* Effect.flip(UserManager.createUser({ username: "zoe", password: pw(long) }))
      expect(created._tag === "InvalidPassword" && created.issues.map((i) => i.code)).toEqual(["password_too_long"])
      const zoe = yield* UserManager.createUser({ username: "zoe", password: pw("a fine passphrase") })
      expect(seen).toEqual([17])
      const set = yield* Effect.flip(UserManager.setPassword(zoe, pw(long)))
      expect(set._tag === "InvalidPassword" && set.issues.map((i) => i.code)).toEqual(["password_too_long"])
      expect(seen).toEqual([17])
    }).pipe(Effect.provide(Layer.merge(Live, PasswordValidation.layer([watching]))))
  })

  it.effect("input without types: a password that is not a Redacted string, or no record at all, is a typed failure that writes nothing", () =>
    Effect.gen(function*() {
      const notRedacted: ReadonlyArray<unknown> = ["plain text passphrase", Redacted.make(4711), Redacted.make({}), null, 42]
      for (const password of notRedacted) {
        const error = yield* Effect.flip(UserManager.createUser({ username: "frank", password: password as Redacted.Redacted<string> }))
        expect(error._tag === "InvalidPassword" && error.issues.map((i) => i.code)).toEqual(["password_not_redacted_string"])
      }
      const store = yield* UserStore.UserStore
      expect(yield* store.list()).toEqual([])
      for (const input of [null, undefined, "frank", 42]) {
        const error = yield* Effect.flip(UserManager.createUser(input as unknown as UserManager.NewUser))
        expect(error._tag).toBe("InvalidInput")
      }
      expect(yield* store.list()).toEqual([])
      const grace = yield* UserManager.createUser({ username: "grace", password: pw("original passphrase") })
      const refused = yield* Effect.flip(UserManager.setPassword(grace, "plain text passphrase" as unknown as Redacted.Redacted<string>))
      expect(refused._tag === "InvalidPassword" && refused.issues.map((i) => i.code)).toEqual(["password_not_redacted_string"])
      const reset = yield* Effect.flip(UserManager.resetPassword(grace, Redacted.make(7) as unknown as Redacted.Redacted<string>))
      expect(reset._tag).toBe("InvalidPassword")
      expect(yield* verify(yield* reload("grace"), "original passphrase")).toBe(true)
    }).pipe(Effect.provide(Live)))

  it.effect("the password is compared with the new user's own attributes", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        UserManager.createUser({ username: "wonderland", email: "alice@wonderland.example", password: pw("wonderland1") })
      )
      expect(error._tag === "InvalidPassword" && error.issues.map((i) => i.code)).toEqual(["password_too_similar"])
    }).pipe(Effect.provide(Live)))

  it.effect("the password is compared with the username as stored (NFKC), as UserCreationForm does", () =>
    Effect.gen(function*() {
      // Fullwidth letters: stored as "joesmith", which "joesmith1" is too similar to.
      const error = yield* Effect.flip(UserManager.createUser({ username: "ｊｏｅｓｍｉｔｈ", password: pw("joesmith1") }))
      expect(error._tag === "InvalidPassword" && error.messages).toEqual(["The password is too similar to the username."])
      expect((yield* (yield* UserStore.UserStore).list()).length).toBe(0)
    }).pipe(Effect.provide(Live)))

  it.effect("without a password the user gets an unusable one (create_user(password=None))", () =>
    Effect.gen(function*() {
      const carol = yield* UserManager.createUser({ username: "carol" })
      expect(Redacted.value(carol.passwordHash).startsWith("!")).toBe(true)
      expect(yield* verify(carol, "")).toBe(false)
    }).pipe(Effect.provide(Live)))

  it.effect("createSuperuser sets staff and superuser", () =>
    Effect.gen(function*() {
      const admin = yield* UserManager.createSuperuser({ username: "admin", password: pw("a long admin passphrase") })
      expect([admin.isStaff, admin.isSuperuser]).toEqual([true, true])
    }).pipe(Effect.provide(Live)))

  it.effect("createSuperuser of an untyped caller's isStaff/isSuperuser other than true is InvalidInput, nothing written (Django raises)", () =>
    Effect.gen(function*() {
      for (const [field, value] of [["isStaff", false], ["isSuperuser", false], ["isStaff", "yes"], ["isSuperuser", undefined]] as const) {
        const input = { username: "root", password: pw("a long admin passphrase"), [field]: value } as never
        const error = yield* Effect.flip(UserManager.createSuperuser(input))
        expect(error, `${field}: ${String(value)}`).toEqual(
          new UserStore.InvalidInput({ field, message: `a superuser must have ${field}: true` })
        )
      }
      const store = yield* UserStore.UserStore
      expect(yield* store.findByUsername("root")).toEqual(Option.none())
      const typed = yield* UserManager.createSuperuser({ username: "root", isStaff: true, isSuperuser: true } as never)
      expect([typed.isStaff, typed.isSuperuser]).toEqual([true, true])
    }).pipe(Effect.provide(Live)))

  it.effect("input that throws when read is InvalidInput inside the Effect, for createUser and createSuperuser, nothing written", () =>
    Effect.gen(function*() {
      const throwing = (field: string) =>
        Object.defineProperty({ username: "root", password: pw("a long admin passphrase") }, field, {
          get() {
            throw new Error("getter")
          },
          enumerable: true
        })
      const inputs = [throwing("username"), throwing("password"), throwing("isStaff"), hostile()]
      for (const input of inputs) {
        // built outside Effect.suspend on purpose: createSuperuser threw here, at call time
        let superuser: Effect.Effect<unknown, { readonly _tag: string }, UserStore.UserStore | PasswordHasher.PasswordHasher>
        try {
          superuser = UserManager.createSuperuser(input as never)
        } catch (error) {
          superuser = Effect.die(error)
        }
        for (const call of [superuser, UserManager.createUser(input as never)]) {
          const exit = yield* Effect.exit(call)
          expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error).toEqual(
            new UserStore.InvalidInput({ field: "input", message: "could not be read" })
          )
        }
      }
      expect(yield* Effect.flatMap(UserStore.UserStore, (store) => store.list())).toEqual([])
    }).pipe(Effect.provide(Live)))

  it.effect("a taken username fails with UserAlreadyExists and keeps the first user's password", () =>
    Effect.gen(function*() {
      yield* UserManager.createUser({ username: "dave", password: pw("first passphrase here") })
      const error = yield* Effect.flip(UserManager.createUser({ username: "dave", password: pw("second passphrase here") }))
      expect(error._tag).toBe("UserAlreadyExists")
      expect(yield* verify(yield* reload("dave"), "first passphrase here")).toBe(true)
    }).pipe(Effect.provide(Live)))

  it.effect("setPassword validates against the user, then replaces the hash (data-first and piped)", () =>
    Effect.gen(function*() {
      const erin = yield* UserManager.createUser({ username: "erin_k", password: pw("original passphrase") })
      const refused = yield* Effect.flip(UserManager.setPassword(erin, pw("erin_k")))
      expect(refused._tag === "InvalidPassword" && refused.issues.map((i) => i.code)).toEqual([
        "password_too_similar",
        "password_too_short"
      ])
      expect(yield* verify(yield* reload("erin_k"), "original passphrase")).toBe(true)

      yield* UserManager.setPassword(erin, pw("a brand new passphrase"))
      expect(yield* verify(yield* reload("erin_k"), "a brand new passphrase")).toBe(true)
      expect(yield* verify(yield* reload("erin_k"), "original passphrase")).toBe(false)

      yield* reload("erin_k").pipe(Effect.flatMap(UserManager.setPassword(pw("and another one, piped"))))
      expect(yield* verify(yield* reload("erin_k"), "and another one, piped")).toBe(true)
    }).pipe(Effect.provide(Live)))

  it.effect("setPassword of a user that no longer exists fails with UserNotFound", () =>
    Effect.gen(function*() {
      const frank = yield* UserManager.createUser({ username: "frank", password: pw("frank's passphrase") })
      const ghost = { ...frank, id: "999999" }
      const error = yield* Effect.flip(UserManager.setPassword(ghost, pw("another passphrase")))
      expect(error._tag).toBe("UserNotFound")
    }).pipe(Effect.provide(Live)))

  // setPassword(null, pw) hashed the password, then died reading null.id (a TypeError defect).
  it.effect("setPassword and resetPassword of a user that is no object are InvalidInput (field user), before any hash", () =>
    Effect.gen(function*() {
      const outcome = (effect: Effect.Effect<void, { readonly _tag: string }, any>) =>
        Effect.map(Effect.exit(Effect.suspend(() => effect)), (exit) =>
          Exit.isSuccess(exit) ? "success" : exit.cause._tag === "Fail" ? exit.cause.error : "defect")
      for (const user of [null, undefined, 42, "alice"] as ReadonlyArray<any>) {
        const calls = [
          UserManager.setPassword(user, pw("a perfectly long passphrase")),
          UserManager.setPassword(pw("a perfectly long passphrase"))(user),
          UserManager.resetPassword(user, pw("a perfectly long passphrase")),
          UserManager.resetPassword(pw("a perfectly long passphrase"))(user)
        ]
        for (const [i, call] of calls.entries()) {
          expect(yield* outcome(call), `${String(user)} ${i}`).toMatchObject({ _tag: "InvalidInput", field: "user" })
        }
      }
    }).pipe(
      // nothing is hashed for such a user: a hasher that is asked fails the test
      Effect.provide(MemoryUserStore.layer),
      Effect.provide(Layer.succeed(PasswordHasher.PasswordHasher, new Proxy({} as PasswordHasher.Service, {
        get: () => () => Effect.die("the hasher was asked")
      })))
    ))

  it.effect("resetPassword: two requests with one reset token that both passed the check set one password", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2024-05-01T10:00:00Z"))
      const options = { secret: pw("the app's secret key") }
      const gina = yield* UserManager.createUser({ username: "gina", password: pw("original passphrase") })
      const token = yield* PasswordResetToken.make(gina, options)
      // both requests loaded the user and checked the token before either wrote (the hashing of
      // the new password leaves that window open): the interleaving of a race, step by step
      const [mine, theirs] = [yield* reload("gina"), yield* reload("gina")]
      expect([yield* PasswordResetToken.check(mine, token, options), yield* PasswordResetToken.check(theirs, token, options)])
        .toEqual([true, true])
      yield* UserManager.resetPassword(mine, pw("the owner's new passphrase"))
      const late = yield* Effect.flip(UserManager.resetPassword(theirs, pw("someone else's passphrase")))
      expect(late).toBeInstanceOf(UserManager.PasswordChanged)
      const now = yield* reload("gina")
      expect(yield* verify(now, "the owner's new passphrase")).toBe(true)
      expect(yield* verify(now, "someone else's passphrase")).toBe(false)
      expect(yield* PasswordResetToken.check(now, token, options)).toBe(false)
    }).pipe(Effect.provide(Live)))

  it.effect("resetPassword validates first (InvalidPassword, nothing written) and runs concurrent resets once", () =>
    Effect.gen(function*() {
      const hana = yield* UserManager.createUser({ username: "hana", password: pw("original passphrase") })
      const refused = yield* Effect.flip(UserManager.resetPassword(hana, pw("123")))
      expect(refused._tag).toBe("InvalidPassword")
      const outcomes = yield* Effect.all(
        Array.from({ length: 10 }, (_, i) => Effect.exit(UserManager.resetPassword(hana, pw(`concurrent passphrase ${i}`)))),
        { concurrency: "unbounded" }
      )
      expect(outcomes.filter((exit) => exit._tag === "Success")).toHaveLength(1)
    }).pipe(Effect.provide(Live)))

  it.effect("the validators in force come from PasswordValidation.layer (AUTH_PASSWORD_VALIDATORS)", () =>
    Effect.gen(function*() {
      // 11 characters: enough for Django's defaults, not for a 12-character minimum
      const defaults = yield* UserManager.createUser({ username: "gina", password: pw("xk3!vq9#rtz") }).pipe(Effect.either)
      expect(defaults._tag).toBe("Right")
      const strict = yield* UserManager.createUser({ username: "hank", password: pw("xk3!vq9#rtz") }).pipe(
        Effect.provide(PasswordValidation.layer([PasswordValidation.minimumLength({ minLength: 12 })])),
        Effect.flip
      )
      expect(strict._tag === "InvalidPassword" && strict.messages).toEqual([
        "This password is too short. It must contain at least 12 characters."
      ])
      // validate without explicit validators reads the same setting
      const direct = yield* PasswordValidation.validate(pw("xk3!vq9#rtz")).pipe(
        Effect.provide(PasswordValidation.layer([PasswordValidation.minimumLength({ minLength: 12 })])),
        Effect.either
      )
      expect(direct._tag).toBe("Left")
    }).pipe(Effect.provide(Live)))
})

// Inputs where Python's str.strip() and JavaScript's trim() part ways, and the rsplit at the last '@'.
const emails = [
  "Erin.X@EXAMPLE.Com",
  "  Erin@EXAMPLE.com\n",
  "no-at-sign ",
  "a@b@EXAMPLE.COM",
  "@",
  "",
  "erin@EXAMPLE.COM\x1c",
  "\x85erin@EXAMPLE.COM\x1f",
  "\ufeffErin@EXAMPLE.COM\ufeff",
  "erin@STRASSE.DE\u3000",
  // Letters Unicode 14.0 (Python 3.11's) has not assigned keep their case; Node's tables know them.
  "erin@X\uA7CB\uA7DA.COM",
  "erin@\u{10D50}EXAMPLE.COM",
  // Greek final sigma, at the end and beside such a letter.
  "erin@ΟΔΟΣ.GR",
  "erin@ΟΔΟΣ\uA7CB.GR",
  "erin@EXAMPLE.ΟΔΟΣ",
  "erin@EXAMPLE.ΟΔΟΣ\uA7CB",
  // A sigma beside the two letters whose case properties changed after 14.0: U+0295 is a cased
  // letter to Python 3.11 (final sigma after it), U+1171E a case-ignorable mark (skipped)
  "erin@AʕΣ.GR",
  "erin@AΣʕ.GR",
  "erin@A\u{1171E}Σ.GR",
  "erin@ΟΔΟΣ\u{1171E}.GR"
]

describe("UserStore.normalizeEmail", () => {
  it("strips as Python's str.strip(), not trim(), before lowering the domain", () => {
    expect(UserStore.normalizeEmail("erin@EXAMPLE.COM\x1c")).toBe("erin@example.com")
    expect(UserStore.normalizeEmail("\x85erin@EXAMPLE.COM\x1f")).toBe("erin@example.com")
    // Python keeps the BOM, so the domain keeps it too.
    expect(UserStore.normalizeEmail("\ufeffErin@EXAMPLE.COM\ufeff")).toBe("\ufeffErin@example.com\ufeff")
    expect(UserStore.normalizeEmail("no-at-sign ")).toBe("no-at-sign ")
  })

  it("lowers the domain as Python 3.11 does: a letter Unicode 14.0 has not assigned keeps its case", () => {
    expect(UserStore.normalizeEmail("erin@X\uA7CB.COM")).toBe("erin@x\uA7CB.com")
    expect(UserStore.normalizeEmail("erin@EXAMPLE.ΟΔΟΣ")).toBe("erin@example.οδος")
  })
})

describe.skipIf(djangoPython === undefined)("UserStore.normalizeEmail against Django (python3-django)", () => {
  it("answers what BaseUserManager.normalize_email answers", () => {
    const theirs: Array<string> = runDjango(
      `from django.contrib.auth.base_user import BaseUserManager
print(json.dumps([BaseUserManager.normalize_email(e) for e in data]))`,
      emails
    )
    expect(emails.map(UserStore.normalizeEmail)).toEqual(theirs)
  })
})
