// The one behaviour suite every UserStore implementation must pass (memory, SQLite, PostgreSQL).
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as UserStore from "../../src/UserStore.js"
import { hostile } from "./hostile.js"

/** The tag of the error an exit failed with; "success", "defect" or "interrupt"/"sequential"/... otherwise. */
export const failureTag = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.isSuccess(exit)
    ? "success"
    : exit.cause._tag === "Fail"
    ? String((exit.cause.error as { readonly _tag?: unknown })._tag)
    : exit.cause._tag === "Die"
    ? "defect"
    : exit.cause._tag.toLowerCase()

export interface UserStoreSuiteOptions {
  /** A fresh, empty store per call. */
  readonly layer: () => Layer.Layer<UserStore.UserStore, unknown>
  /** Skip the whole suite: its server is missing (test/setup/services.ts has said so, loudly). */
  readonly skip?: boolean
}

const hash = "pbkdf2_sha256$1200000$abcdefghijklmnopqrstuv$0000000000000000000000000000000000000000000="

export const userStoreSuite = (name: string, options: UserStoreSuiteOptions) =>
  describe.skipIf(options.skip === true)(`UserStore suite: ${name}`, () => {
    const withStore = <A, E>(f: (store: UserStore.Service) => Effect.Effect<A, E>) =>
      Effect.flatMap(UserStore.UserStore, f).pipe(Effect.provide(options.layer()))

    describe("create and find", () => {
      it.effect("creates with Django's defaults: unusable password, active, no flags, joined now", () =>
        Effect.gen(function*() {
          yield* TestClock.setTime(Date.parse("2024-05-01T12:00:00.123Z"))
          return yield* withStore((store) =>
            Effect.gen(function*() {
              const user = yield* store.create({ username: "alice" })
              expect(user.username).toBe("alice")
              expect(user.id).toMatch(/^[1-9][0-9]*$/)
              expect(Redacted.value(user.passwordHash)).toMatch(/^![a-zA-Z0-9]{40}$/)
              expect(user).toMatchObject({
                email: "",
                firstName: "",
                lastName: "",
                isActive: true,
                isStaff: false,
                isSuperuser: false
              })
              expect(user.dateJoined.toISOString()).toBe("2024-05-01T12:00:00.123Z")
              expect(Option.isNone(user.lastLogin)).toBe(true)
              const found = yield* store.findById(user.id)
              expect(Option.getOrThrow(found)).toEqual(user)
              const byName = yield* store.findByUsername("alice")
              expect(Option.getOrThrow(byName)).toEqual(user)
            })
          )
        }))

      it.effect("stores every given field", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const joined = new Date("2020-01-02T03:04:05.678Z")
            const user = yield* store.create({
              username: "bob",
              passwordHash: Redacted.make(hash),
              email: "bob@example.org",
              firstName: "Bob",
              lastName: "Builder",
              isActive: false,
              isStaff: true,
              isSuperuser: true,
              dateJoined: joined
            })
            const found = Option.getOrThrow(yield* store.findById(user.id))
            expect(found).toEqual(user)
            expect(Redacted.value(found.passwordHash)).toBe(hash)
            expect(found).toMatchObject({
              email: "bob@example.org",
              firstName: "Bob",
              lastName: "Builder",
              isActive: false,
              isStaff: true,
              isSuperuser: true
            })
            expect(found.dateJoined.getTime()).toBe(joined.getTime())
          })
        ))

      it.effect("never prints the password hash", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "carol", passwordHash: hash })
            expect(String(user.passwordHash)).toBe("<redacted>")
            expect(JSON.stringify(user)).not.toContain("pbkdf2")
            const found = Option.getOrThrow(yield* store.findByUsername("carol"))
            expect(JSON.stringify(found)).not.toContain("pbkdf2")
          })
        ))

      it.effect("normalises usernames with NFKC on create and on lookup", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "ｊｏｅ" })
            expect(user.username).toBe("joe")
            expect(Option.getOrThrow(yield* store.findByUsername("joe")).id).toBe(user.id)
            expect(Option.getOrThrow(yield* store.findByUsername("ｊｏｅ")).id).toBe(user.id)
            const again = yield* Effect.flip(store.create({ username: "joe" }))
            expect(again).toEqual(new UserStore.UserAlreadyExists({ username: "joe" }))
          })
        ))

      it.effect("matches usernames exactly and case-sensitively", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const lower = yield* store.create({ username: "dave" })
            const upper = yield* store.create({ username: "Dave" })
            expect(lower.id).not.toBe(upper.id)
            expect(Option.getOrThrow(yield* store.findByUsername("Dave")).id).toBe(upper.id)
            expect(Option.isNone(yield* store.findByUsername("DAVE"))).toBe(true)
            expect(Option.isNone(yield* store.findByUsername("dave "))).toBe(true)
          })
        ))

      it.effect("normalises the email's domain as Django's normalize_email", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "erin", email: "Erin.X@EXAMPLE.Com" })
            expect(user.email).toBe("Erin.X@example.com")
            expect(Option.getOrThrow(yield* store.findById(user.id)).email).toBe("Erin.X@example.com")
          })
        ))

      it.effect("fails with UserAlreadyExists on a taken username", () =>
        withStore((store) =>
          Effect.gen(function*() {
            yield* store.create({ username: "frank" })
            const error = yield* Effect.flip(store.create({ username: "frank", isSuperuser: true }))
            expect(error._tag).toBe("UserAlreadyExists")
            expect((yield* store.list()).length).toBe(1)
          })
        ))

      it.effect("of 20 concurrent creates of one username exactly one wins", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const results = yield* Effect.forEach(
              Array.from({ length: 20 }, (_, i) => i),
              (i) => Effect.either(store.create({ username: "grace", firstName: `try ${i}` })),
              { concurrency: "unbounded" }
            )
            const wins = results.filter(Either.isRight)
            const losses = results.filter(Either.isLeft)
            expect(wins.length).toBe(1)
            expect(losses.length).toBe(19)
            for (const loss of losses) expect(loss.left).toEqual(new UserStore.UserAlreadyExists({ username: "grace" }))
            const users = yield* store.list()
            expect(users.map((u) => u.id)).toEqual([wins[0]!.right.id])
          })
        ))

      it.effect("finds nobody for unknown or impossible ids", () =>
        withStore((store) =>
          Effect.gen(function*() {
            yield* store.create({ username: "heidi" })
            expect(Option.isNone(yield* store.findById("999999"))).toBe(true)
            expect(Option.isNone(yield* store.findById("abc"))).toBe(true)
            expect(Option.isNone(yield* store.findById("01"))).toBe(true)
            expect(Option.isNone(yield* store.findById("99999999999999999999"))).toBe(true)
            expect(Option.isNone(yield* store.findByUsername("nobody"))).toBe(true)
            // Past an `integer` column's range (a 64-bit id of another table's kind): nobody, on every
            // query, never a database error.
            for (const id of ["3000000000", String(Number.MAX_SAFE_INTEGER), "9007199254740993"]) {
              expect(Option.isNone(yield* store.findById(id))).toBe(true)
              expect(yield* store.groupsOf(id)).toEqual([])
              expect((yield* store.userPermissions(id)).size).toBe(0)
              expect((yield* store.groupPermissions(id)).size).toBe(0)
              expect((yield* Effect.flip(store.setFlags(id, { isActive: false })))._tag).toBe("UserNotFound")
              expect((yield* Effect.flip(store.setLastLogin(id, new Date(0))))._tag).toBe("UserNotFound")
              expect(yield* store.upgradePasswordHash(id, { from: "a", to: "b" })).toBe(false)
            }
          })
        ))

      it.effect("lists users sorted by id", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const a = yield* store.create({ username: "zed" })
            const b = yield* store.create({ username: "amy" })
            const c = yield* store.create({ username: "mia" })
            const ids = (yield* store.list()).map((u) => u.id)
            expect(ids).toEqual([a.id, b.id, c.id])
            expect(ids.map(Number)).toEqual([...ids.map(Number)].sort((x, y) => x - y))
          })
        ))
    })

    describe("input validation", () => {
      it.effect("rejects bad usernames with InvalidInput", () =>
        withStore((store) =>
          Effect.gen(function*() {
            for (const username of ["", "x".repeat(151), "nul\u0000byte"]) {
              const error = yield* Effect.flip(store.create({ username }))
              expect(error._tag).toBe("InvalidInput")
              expect(error._tag === "InvalidInput" && error.field).toBe("username")
            }
            expect((yield* Effect.flip(store.findByUsername("")))._tag).toBe("InvalidInput")
            expect((yield* store.list()).length).toBe(0)
          })
        ))

      it.effect("text no engine keeps as it is (a lone surrogate, NUL) is InvalidInput, and nothing is written", () =>
        withStore((store) =>
          Effect.gen(function*() {
            // PostgreSQL's driver writes a lone surrogate as U+FFFD: "\uD800" and "\uDBFF" were one group there
            for (const name of ["\uD800", "staff\uDBFF"]) {
              expect((yield* Effect.flip(store.createGroup(name)))._tag).toBe("InvalidInput")
            }
            expect((yield* Effect.flip(store.create({ username: "surrogate\uD800" })))._tag).toBe("InvalidInput")
            expect((yield* Effect.flip(store.create({ username: "eve", email: "x\uD800@example.org" })))._tag).toBe("InvalidInput")
            expect((yield* Effect.flip(store.createPermission("blog.view_post\uDC00")))._tag).toBe("InvalidInput")
            expect((yield* Effect.flip(store.createPermission("blog.view_post", "View\uD800")))._tag).toBe("InvalidInput")
            expect((yield* Effect.flip(store.createPermission("blog.view_post", "View\u0000")))._tag).toBe("InvalidInput")
            const user = yield* store.create({ username: "alice", passwordHash: "h\uD800" }).pipe(
              Effect.flip,
              Effect.map((error) => expect(error._tag).toBe("InvalidInput")),
              Effect.zipRight(store.create({ username: "alice", passwordHash: "hash" }))
            )
            expect((yield* Effect.flip(store.upgradePasswordHash(user.id, { from: "h\uDBFF", to: "new" })))._tag).toBe("InvalidInput")
            expect(Redacted.value(Option.getOrThrow(yield* store.findById(user.id)).passwordHash)).toBe("hash")
            expect((yield* store.list()).map((u) => u.username)).toEqual(["alice"])
          })
        ))

      it.effect("groups or a hash change that are no collection or object (an untyped caller) are InvalidInput, not a defect", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "alice", passwordHash: "hash" })
            for (const groups of [null, undefined, 42, "staff"]) {
              expect((yield* Effect.flip(store.setGroups(user.id, groups as any)))._tag).toBe("InvalidInput")
            }
            for (const hashes of [null, undefined, "hash"]) {
              expect((yield* Effect.flip(store.upgradePasswordHash(user.id, hashes as any)))._tag).toBe("InvalidInput")
            }
            expect(yield* store.groupsOf(user.id)).toEqual([])
            expect(Redacted.value(Option.getOrThrow(yield* store.findById(user.id)).passwordHash)).toBe("hash")
          })
        ))

      it.effect("an input that throws when read (a getter, a Proxy) is InvalidInput, not a defect, and nothing is written", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const throwing = () => {
              throw new Error("hostile")
            }
            const revoked = () => {
              const { proxy, revoke } = Proxy.revocable({}, {})
              revoke()
              return proxy
            }
            const getter = (field: string, base: object = {}) =>
              Object.defineProperty({ ...base }, field, { enumerable: true, get: throwing })
            const inputs: ReadonlyArray<unknown> = [
              hostile(),
              revoked(),
              getter("username"),
              getter("email", { username: "eve" }),
              { username: "eve", passwordHash: hostile() },
              { username: "eve", passwordHash: (() => {
                const wiped = Redacted.make("hash")
                Redacted.unsafeWipe(wiped)
                return wiped
              })() }
            ]
            for (const input of inputs) {
              expect(failureTag(yield* Effect.exit(store.create(input as UserStore.CreateUser)))).toBe("InvalidInput")
            }
            const user = yield* store.create({ username: "alice", passwordHash: "hash" })
            for (const flags of [hostile(), revoked(), getter("isActive"), getter("isStaff", { isActive: false })]) {
              expect(failureTag(yield* Effect.exit(store.setFlags(user.id, flags as UserStore.Flags)))).toBe("InvalidInput")
            }
            expect(failureTag(yield* Effect.exit(store.updateProfile(user.id, getter("email") as UserStore.Profile)))).toBe("InvalidInput")
            expect(failureTag(yield* Effect.exit(store.setGroups(user.id, hostile() as any)))).toBe("InvalidInput")
            expect(failureTag(yield* Effect.exit(store.upgradePasswordHash(user.id, getter("to", { from: "hash" }) as any))))
              .toBe("InvalidInput")
            const found = Option.getOrThrow(yield* store.findById(user.id))
            expect([found.isActive, found.isStaff, Redacted.value(found.passwordHash)]).toEqual([true, false, "hash"])
            expect((yield* store.list()).map((u) => u.username)).toEqual(["alice"])
          })
        ))

      it.effect("a value too long to show is InvalidInput naming its path, not quoting a megabyte", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(store.create({ username: "long", email: "x".repeat(1_000_000) }))
            expect(error._tag === "InvalidInput" && error.message).toBe("invalid at \"email\" (the value is too long to show)")
            expect((yield* store.list()).length).toBe(0)
          })
        ))

      it.effect("a value too deep to render is InvalidInput naming its path, not a stack overflow", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const deep = JSON.parse(`${"[".repeat(5_000)}${"]".repeat(5_000)}`)
            const error = yield* Effect.flip(store.create({ username: "deep", email: deep } as any))
            expect(error._tag === "InvalidInput" && error.message).toBe("invalid at \"email\"")
            expect((yield* store.list()).length).toBe(0)
          })
        ))

      it.effect("counts 150 characters as Django does (code points)", () =>
        withStore((store) =>
          Effect.gen(function*() {
            // U+20000, a CJK letter outside the BMP: two UTF-16 units, one code point.
            const astral = "\u{20000}".repeat(150)
            const user = yield* store.create({ username: astral })
            expect(Option.getOrThrow(yield* store.findByUsername(astral)).id).toBe(user.id)
            const error = yield* Effect.flip(store.create({ username: "\u{20000}".repeat(151) }))
            expect(error._tag).toBe("InvalidInput")
          })
        ))

      it.effect("rejects bad emails, names, flags, dates and unknown fields", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const bad: ReadonlyArray<unknown> = [
              { username: "a", email: "x".repeat(255) },
              { username: "a", firstName: "x".repeat(151) },
              { username: "a", isActive: "yes" },
              { username: "a", dateJoined: new Date(Number.NaN) },
              // past what Django's datetime holds (and PostgreSQL stores): refused on every engine
              { username: "a", dateJoined: new Date("+010000-01-01T00:00:00Z") },
              { username: "a", dateJoined: new Date("-000001-06-01T00:00:00Z") },
              { username: "a", is_staff: true },
              "alice",
              null
            ]
            for (const input of bad) {
              const error = yield* Effect.flip(store.create(input as UserStore.CreateUser))
              expect(error._tag).toBe("InvalidInput")
            }
            const user = yield* store.create({ username: "a" })
            expect((yield* Effect.flip(store.setFlags(user.id, { isActive: 1 as unknown as boolean })))._tag)
              .toBe("InvalidInput")
            expect((yield* Effect.flip(store.setLastLogin(user.id, new Date(Number.NaN))))._tag).toBe("InvalidInput")
            expect((yield* Effect.flip(store.setLastLogin(user.id, new Date("+010000-01-01T00:00:00Z"))))._tag).toBe("InvalidInput")
            // the last day Django can hold is kept
            yield* store.setLastLogin(user.id, new Date("9999-12-31T23:59:59.999Z"))
            expect((yield* Effect.flip(store.findById("")))._tag).toBe("InvalidInput")
          })
        ))

      it.effect("rejects a bad password hash without quoting it", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const long = `secrethash${"x".repeat(200)}`
            const error = yield* Effect.flip(store.create({ username: "a", passwordHash: long }))
            expect(error._tag).toBe("InvalidInput")
            expect(JSON.stringify(error)).not.toContain("secrethash")
            expect(String(error)).not.toContain("secrethash")
            const user = yield* store.create({ username: "b" })
            const error2 = yield* Effect.flip(store.setPassword(user.id, Redacted.make(long)))
            expect(error2._tag).toBe("InvalidInput")
            expect(String(error2)).not.toContain("secrethash")
          })
        ))

      it.effect("rejects permissions that are not app_label.codename", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            yield* store.createGroup("g")
            for (const perm of ["nodot", ".codename", "app.", "has space.x", `${"a".repeat(101)}.x`]) {
              expect((yield* Effect.flip(store.grantPermission(user.id, perm)))._tag).toBe("InvalidInput")
              expect((yield* Effect.flip(store.grantGroupPermission("g", perm)))._tag).toBe("InvalidInput")
              expect((yield* Effect.flip(store.withPerm(perm)))._tag).toBe("InvalidInput")
            }
            expect((yield* store.permissions()).size).toBe(0)
          })
        ))

      it.effect("rejects bad group names", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            expect((yield* Effect.flip(store.createGroup("")))._tag).toBe("InvalidInput")
            expect((yield* Effect.flip(store.createGroup("g".repeat(151))))._tag).toBe("InvalidInput")
            expect((yield* Effect.flip(store.setGroups(user.id, ["ok", ""])))._tag).toBe("InvalidInput")
            expect(yield* store.groupsOf(user.id)).toEqual([])
          })
        ))
    })

    describe("updates", () => {
      it.effect("sets the password hash; unknown users are UserNotFound", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            yield* store.setPassword(user.id, hash)
            expect(Redacted.value(Option.getOrThrow(yield* store.findById(user.id)).passwordHash)).toBe(hash)
            yield* store.setPassword(user.id, Redacted.make("pbkdf2_sha256$1$x$y"))
            expect(Redacted.value(Option.getOrThrow(yield* store.findById(user.id)).passwordHash))
              .toBe("pbkdf2_sha256$1$x$y")
            expect(yield* Effect.flip(store.setPassword("424242", hash)))
              .toEqual(new UserStore.UserNotFound({ userId: "424242" }))
            expect((yield* Effect.flip(store.setPassword("abc", hash)))._tag).toBe("UserNotFound")
          })
        ))

      it.effect("upgrades a hash only while it is unchanged (compare-and-set)", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a", passwordHash: "old" })
            expect(yield* store.upgradePasswordHash(user.id, { from: "other", to: "new" })).toBe(false)
            expect(Redacted.value(Option.getOrThrow(yield* store.findById(user.id)).passwordHash)).toBe("old")
            expect(yield* store.upgradePasswordHash(user.id, { from: Redacted.make("old"), to: "new" })).toBe(true)
            expect(Redacted.value(Option.getOrThrow(yield* store.findById(user.id)).passwordHash)).toBe("new")
            expect(yield* store.upgradePasswordHash("424242", { from: "new", to: "newer" })).toBe(false)
          })
        ))

      it.effect("sets only the given flags", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            yield* store.setFlags(user.id, { isSuperuser: true })
            expect(Option.getOrThrow(yield* store.findById(user.id))).toMatchObject({
              isActive: true,
              isStaff: false,
              isSuperuser: true
            })
            yield* store.setFlags(user.id, { isActive: false, isStaff: true })
            expect(Option.getOrThrow(yield* store.findById(user.id))).toMatchObject({
              isActive: false,
              isStaff: true,
              isSuperuser: true
            })
            yield* store.setFlags(user.id, {})
            expect(yield* Effect.flip(store.setFlags("424242", { isActive: true })))
              .toEqual(new UserStore.UserNotFound({ userId: "424242" }))
            expect((yield* Effect.flip(store.setFlags("424242", {})))._tag).toBe("UserNotFound")
          })
        ))

      it.effect("updates only the given profile fields, normalising the email", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a", firstName: "Ann", lastName: "Lee" })
            yield* store.updateProfile(user.id, { email: "ann@EXAMPLE.org", lastName: "Smith" })
            expect(Option.getOrThrow(yield* store.findById(user.id))).toMatchObject({
              email: "ann@example.org",
              firstName: "Ann",
              lastName: "Smith"
            })
            expect((yield* Effect.flip(store.updateProfile("424242", { firstName: "x" })))._tag)
              .toBe("UserNotFound")
          })
        ))

      it.effect("records the last login", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            const at = new Date("2025-02-03T04:05:06.789Z")
            yield* store.setLastLogin(user.id, at)
            const lastLogin = Option.getOrThrow(Option.getOrThrow(yield* store.findById(user.id)).lastLogin)
            expect(lastLogin.getTime()).toBe(at.getTime())
            expect((yield* Effect.flip(store.setLastLogin("424242", at)))._tag).toBe("UserNotFound")
          })
        ))
    })

    // Django's `user.delete()`: the row goes with its memberships and direct permissions; the groups,
    // their permissions and other users stay; the id is never handed out again.
    describe("delete", () => {
      it.effect("removes the user, its memberships and direct permissions; the id is not reused", () =>
        withStore((store) =>
          Effect.gen(function*() {
            expect(store.delete).toBeTypeOf("function")
            const remove = store.delete!
            const alice = yield* store.create({ username: "alice" })
            const bob = yield* store.create({ username: "bob" })
            yield* store.setGroups(alice.id, ["editors"])
            yield* store.setGroups(bob.id, ["editors"])
            yield* store.grantGroupPermission("editors", "blog.change_post")
            yield* store.grantPermission(alice.id, "blog.delete_post")
            yield* store.grantPermission(bob.id, "blog.delete_post")
            expect(yield* remove(alice.id)).toBe(true)
            expect(yield* store.findById(alice.id)).toEqual(Option.none())
            expect(yield* store.findByUsername("alice")).toEqual(Option.none())
            expect(yield* store.groupsOf(alice.id)).toEqual([])
            expect(yield* store.userPermissions(alice.id)).toEqual(new Set())
            expect((yield* store.withPerm("blog.delete_post")).map((u) => u.username)).toEqual(["bob"])
            expect(yield* store.groupsOf(bob.id)).toEqual(["editors"])
            expect(yield* store.groupPermissions(bob.id)).toEqual(new Set(["blog.change_post"]))
            expect(yield* remove(alice.id)).toBe(false)
            expect(yield* remove("999999")).toBe(false)
            expect(yield* remove("not an id")).toBe(false)
            // the name is free again, under a new id
            const again = yield* store.create({ username: "alice" })
            expect(again.id).not.toBe(alice.id)
            expect(yield* store.groupsOf(again.id)).toEqual([])
            expect(yield* store.userPermissions(again.id)).toEqual(new Set())
            // the newest id removed: the next user still gets a new one
            expect(yield* remove(again.id)).toBe(true)
            const third = yield* store.create({ username: "carol" })
            expect([alice.id, bob.id, again.id]).not.toContain(third.id)
          })
        ))
    })

    describe("groups", () => {
      it.effect("creates a group once, even concurrently", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const groups = yield* Effect.forEach(
              Array.from({ length: 10 }),
              () => store.createGroup("editors"),
              { concurrency: "unbounded" }
            )
            expect(new Set(groups.map((g) => g.id)).size).toBe(1)
            expect(groups[0]!.name).toBe("editors")
            const other = yield* store.createGroup("admins")
            expect(other.id).not.toBe(groups[0]!.id)
          })
        ))

      it.effect("adds, lists and removes memberships", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            yield* store.createGroup("b-group")
            yield* store.createGroup("a-group")
            yield* store.addToGroup(user.id, "b-group")
            yield* store.addToGroup(user.id, "a-group")
            yield* store.addToGroup(user.id, "a-group")
            expect(yield* store.groupsOf(user.id)).toEqual(["a-group", "b-group"])
            yield* store.removeFromGroup(user.id, "b-group")
            yield* store.removeFromGroup(user.id, "b-group")
            yield* store.removeFromGroup(user.id, "never-created")
            expect(yield* store.groupsOf(user.id)).toEqual(["a-group"])
          })
        ))

      it.effect("fails with GroupNotFound or UserNotFound", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            yield* store.createGroup("g")
            expect(yield* Effect.flip(store.addToGroup(user.id, "missing")))
              .toEqual(new UserStore.GroupNotFound({ name: "missing" }))
            expect(yield* Effect.flip(store.addToGroup("424242", "g")))
              .toEqual(new UserStore.UserNotFound({ userId: "424242" }))
            expect((yield* Effect.flip(store.removeFromGroup("424242", "g")))._tag).toBe("UserNotFound")
            expect((yield* Effect.flip(store.setGroups("424242", ["g"])))._tag).toBe("UserNotFound")
            expect((yield* Effect.flip(store.grantGroupPermission("missing", "app.x")))._tag).toBe("GroupNotFound")
            expect((yield* Effect.flip(store.revokeGroupPermission("missing", "app.x")))._tag).toBe("GroupNotFound")
          })
        ))

      it.effect("mirrors a group list with setGroups, creating missing groups", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            const other = yield* store.create({ username: "b" })
            yield* store.createGroup("old")
            yield* store.addToGroup(user.id, "old")
            yield* store.addToGroup(other.id, "old")
            yield* store.setGroups(user.id, ["staff", "dev", "staff"])
            expect(yield* store.groupsOf(user.id)).toEqual(["dev", "staff"])
            expect(yield* store.groupsOf(other.id)).toEqual(["old"])
            yield* store.setGroups(user.id, new Set(["dev", "ops"]))
            expect(yield* store.groupsOf(user.id)).toEqual(["dev", "ops"])
            yield* store.addToGroup(other.id, "staff")
            yield* store.setGroups(user.id, [])
            expect(yield* store.groupsOf(user.id)).toEqual([])
            expect(yield* store.groupsOf(other.id)).toEqual(["old", "staff"])
          })
        ))

      it.effect("answers nothing about unknown users", () =>
        withStore((store) =>
          Effect.gen(function*() {
            expect(yield* store.groupsOf("424242")).toEqual([])
            expect((yield* store.userPermissions("424242")).size).toBe(0)
            expect((yield* store.groupPermissions("abc")).size).toBe(0)
          })
        ))
    })

    describe("permissions", () => {
      it.effect("grants and revokes direct permissions", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            const other = yield* store.create({ username: "b" })
            yield* store.grantPermission(user.id, "blog.add_post")
            yield* store.grantPermission(user.id, "blog.add_post")
            yield* store.grantPermission(user.id, "shop.refund")
            expect(yield* store.userPermissions(user.id)).toEqual(new Set(["blog.add_post", "shop.refund"]))
            expect((yield* store.userPermissions(other.id)).size).toBe(0)
            yield* store.revokePermission(user.id, "blog.add_post")
            yield* store.revokePermission(user.id, "never.granted")
            expect(yield* store.userPermissions(user.id)).toEqual(new Set(["shop.refund"]))
            expect((yield* Effect.flip(store.grantPermission("424242", "blog.add_post")))._tag).toBe("UserNotFound")
            expect((yield* Effect.flip(store.revokePermission("424242", "blog.add_post")))._tag).toBe("UserNotFound")
          })
        ))

      it.effect("separates direct from group permissions", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            yield* store.setGroups(user.id, ["editors", "readers"])
            yield* store.createGroup("others")
            yield* store.grantGroupPermission("editors", "blog.change_post")
            yield* store.grantGroupPermission("readers", "blog.view_post")
            yield* store.grantGroupPermission("readers", "blog.change_post")
            yield* store.grantGroupPermission("others", "blog.delete_post")
            yield* store.grantPermission(user.id, "blog.add_post")
            expect(yield* store.groupPermissions(user.id)).toEqual(new Set(["blog.change_post", "blog.view_post"]))
            expect(yield* store.userPermissions(user.id)).toEqual(new Set(["blog.add_post"]))
            yield* store.revokeGroupPermission("readers", "blog.change_post")
            expect(yield* store.groupPermissions(user.id)).toEqual(new Set(["blog.change_post", "blog.view_post"]))
            yield* store.revokeGroupPermission("editors", "blog.change_post")
            expect(yield* store.groupPermissions(user.id)).toEqual(new Set(["blog.view_post"]))
            yield* store.removeFromGroup(user.id, "readers")
            expect((yield* store.groupPermissions(user.id)).size).toBe(0)
          })
        ))

      it.effect("knows every registered or granted permission", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            yield* store.createPermission("blog.publish", "Can publish posts")
            yield* store.createPermission("blog.publish")
            yield* store.grantPermission(user.id, "shop.refund")
            yield* store.createGroup("g")
            yield* store.grantGroupPermission("g", "shop.ship")
            yield* store.revokePermission(user.id, "shop.refund")
            expect(yield* store.permissions()).toEqual(new Set(["blog.publish", "shop.refund", "shop.ship"]))
          })
        ))

      it.effect("keeps dots inside the codename", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            yield* store.grantPermission(user.id, "app.code.name")
            expect(yield* store.userPermissions(user.id)).toEqual(new Set(["app.code.name"]))
            expect((yield* store.withPerm("app.code.name")).map((u) => u.id)).toEqual([user.id])
          })
        ))

      it.effect("counts an app label's and a codename's 100 characters as Django does (code points)", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const user = yield* store.create({ username: "a" })
            // 100 emoji: 100 characters to Django (Python's len), 200 UTF-16 units.
            const astral = `${"a".repeat(60)}.${"\u{1F600}".repeat(100)}`
            yield* store.createPermission(astral)
            yield* store.grantPermission(user.id, astral)
            expect(yield* store.userPermissions(user.id)).toEqual(new Set([astral]))
            expect((yield* store.withPerm(astral)).map((u) => u.id)).toEqual([user.id])
            const tooLong = `odd.${"\u{1F600}".repeat(101)}`
            expect((yield* Effect.flip(store.grantPermission(user.id, tooLong)))._tag).toBe("InvalidInput")
          })
        ))
    })

    describe("withPerm (Django's with_perm)", () => {
      const fixture = (store: UserStore.Service) =>
        Effect.gen(function*() {
          const direct = yield* store.create({ username: "direct" })
          const viaGroup = yield* store.create({ username: "via-group" })
          const superuser = yield* store.create({ username: "root", isSuperuser: true })
          const inactive = yield* store.create({ username: "inactive", isActive: false })
          const inactiveSuper = yield* store.create({ username: "old-root", isSuperuser: true, isActive: false })
          const nobody = yield* store.create({ username: "nobody" })
          yield* store.grantPermission(direct.id, "blog.change_post")
          yield* store.setGroups(viaGroup.id, ["editors"])
          yield* store.grantGroupPermission("editors", "blog.change_post")
          yield* store.grantPermission(inactive.id, "blog.change_post")
          yield* store.grantPermission(nobody.id, "blog.view_post")
          return { direct, viaGroup, superuser, inactive, inactiveSuper, nobody }
        })

      it.effect("finds active holders, direct or through a group, and active superusers", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const u = yield* fixture(store)
            const users = yield* store.withPerm("blog.change_post")
            expect(users.map((x) => x.id)).toEqual([u.direct.id, u.viaGroup.id, u.superuser.id])
            expect(users[0]).toEqual(u.direct)
          })
        ))

      it.effect("leaves superusers out with includeSuperusers: false", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const u = yield* fixture(store)
            const users = yield* store.withPerm("blog.change_post", { includeSuperusers: false })
            expect(users.map((x) => x.id)).toEqual([u.direct.id, u.viaGroup.id])
          })
        ))

      it.effect("filters on isActive: false, or not at all with null", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const u = yield* fixture(store)
            const inactive = yield* store.withPerm("blog.change_post", { isActive: false })
            expect(inactive.map((x) => x.id)).toEqual([u.inactive.id, u.inactiveSuper.id])
            const all = yield* store.withPerm("blog.change_post", { isActive: null })
            expect(all.map((x) => x.id)).toEqual([
              u.direct.id,
              u.viaGroup.id,
              u.superuser.id,
              u.inactive.id,
              u.inactiveSuper.id
            ])
          })
        ))

      it.effect("yields only superusers for a permission nobody holds", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const u = yield* fixture(store)
            expect((yield* store.withPerm("never.seen")).map((x) => x.id)).toEqual([u.superuser.id])
            expect(yield* store.withPerm("never.seen", { includeSuperusers: false })).toEqual([])
          })
        ))
    })
  })
