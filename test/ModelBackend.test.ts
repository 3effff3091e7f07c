import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as Credentials from "../src/Credentials.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as TestAuth from "../src/testing/TestAuth.js"
import type { BaseUser } from "../src/User.js"
import * as UserStore from "../src/UserStore.js"
import { failureTag } from "./utils/userStoreSuite.js"

const pw = (s: string) => Redacted.make(s)

// The cheap test parameters (PBKDF2 at 1,000 iterations); the counts say how often hashing ran.
const countingHasher = () => {
  const counts = { hash: 0, verify: 0 }
  const layer = Layer.effect(
    PasswordHasher.PasswordHasher,
    Effect.map(PasswordHasher.make(PasswordHasher.testOptions), (real): PasswordHasher.Service => ({
      ...real,
      hash: (password) => Effect.suspend(() => (counts.hash++, real.hash(password))),
      verify: (password, encoded) => Effect.suspend(() => (counts.verify++, real.verify(password, encoded)))
    }))
  )
  return { counts, layer }
}

const env = (options?: ModelBackend.Options, store: Layer.Layer<UserStore.UserStore> = MemoryUserStore.layer) => {
  const hasher = countingHasher()
  const layer = ModelBackend.layer(options).pipe(
    Layer.provideMerge(store),
    Layer.provideMerge(hasher.layer)
  )
  return { counts: hasher.counts, layer }
}

// Seeds a user whose password is hashed the preferred (test) way.
const seed = (username: string, password: string, fields: Partial<UserStore.CreateUser> = {}) =>
  Effect.gen(function*() {
    const hasher = yield* PasswordHasher.PasswordHasher
    const store = yield* UserStore.UserStore
    return yield* store.create({ ...fields, username, passwordHash: yield* hasher.hash(pw(password)) })
  })

const storedHash = (id: string) =>
  Effect.flatMap(UserStore.UserStore, (store) =>
    Effect.map(store.findById(id), (user) => Redacted.value(Option.getOrThrow(user).passwordHash)))

const hashWith = (options: PasswordHasher.Options, password: string) =>
  Effect.flatMap(PasswordHasher.make(options), (hasher) => hasher.hash(pw(password)))

describe("ModelBackend", () => {
  describe("authenticate", () => {
    it.effect("a submitted password that is no Unicode text is a wrong password, not a warning about the stored hash", () => {
      const { layer } = env()
      const warnings: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push(String(message))
      })
      return Effect.gen(function*() {
        const alice = yield* seed("alice", "wonderland")
        const backend = yield* ModelBackend.ModelBackend
        const exit = yield* Effect.exit(backend.authenticate({ username: "alice", password: pw("wonder\uD800land") }, undefined))
        expect(failureTag(exit)).toBe("NoMatch")
        expect(warnings).toEqual([])
        // a stored hash nobody can read still warns
        const store = yield* UserStore.UserStore
        yield* store.setPassword(alice.id, "pbkdf2_sha256$not-a-number$salt$hash")
        yield* Effect.exit(backend.authenticate({ username: "alice", password: pw("wonderland") }, undefined))
        expect(warnings.length).toBe(1)
        expect(warnings[0]).toContain("the stored password hash cannot be read")
      }).pipe(Effect.provide(Layer.merge(layer, Logger.replace(Logger.defaultLogger, logger))))
    })

    it.effect("returns the stored user for the right password", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const alice = yield* seed("alice", "wonderland", { email: "alice@example.com" })
        const backend = yield* ModelBackend.ModelBackend
        const user = yield* backend.authenticate({ username: "alice", password: pw("wonderland") }, undefined)
        expect(user).toEqual(alice)
        expect(backend.id).toBe("model")
      }).pipe(Effect.provide(layer))
    })

    it.effect("takes username/password credentials and nothing else", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const backend = yield* ModelBackend.ModelBackend
        expect(backend.credentials).toBe(Credentials.UsernamePassword)
        expect(Schema.decodeUnknownEither(backend.credentials)({ token: "x" })._tag).toBe("Left")
      }).pipe(Effect.provide(layer))
    })

    it.effect("unknown user: runs the hasher once, then NoMatch(unknown-user)", () => {
      const { counts, layer } = env()
      return Effect.gen(function*() {
        const backend = yield* ModelBackend.ModelBackend
        const error = yield* Effect.flip(backend.authenticate({ username: "nobody", password: pw("x") }, undefined))
        expect(error).toMatchObject({ _tag: "NoMatch", backend: "model", reason: "unknown-user" })
        expect(counts.hash + counts.verify).toBe(1)
      }).pipe(Effect.provide(layer))
    })

    it.effect("a busy hasher (load shedding) is a TransportError for known and unknown users alike", () => {
      const busy = new PasswordHasher.HasherBusy({ inFlight: 10 })
      const layer = ModelBackend.layer().pipe(
        Layer.provideMerge(MemoryUserStore.layer),
        Layer.provideMerge(Layer.effect(
          PasswordHasher.PasswordHasher,
          Effect.map(PasswordHasher.make(PasswordHasher.testOptions), (real): PasswordHasher.Service => ({
            ...real,
            hash: () => Effect.fail(busy),
            verify: () => Effect.fail(busy)
          }))
        ))
      )
      return Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        yield* store.create({ username: "alice", passwordHash: "pbkdf2_sha256$1000$salt$hash" })
        const backend = yield* ModelBackend.ModelBackend
        for (const username of ["alice", "nobody"]) {
          const error = yield* Effect.flip(backend.authenticate({ username, password: pw("x") }, undefined))
          expect(error).toMatchObject({ _tag: "TransportError", backend: "model", cause: busy })
        }
      }).pipe(Effect.provide(layer))
    })

    it.effect("a username the store refuses is an unknown user, with the same hashing", () => {
      const { counts, layer } = env()
      return Effect.gen(function*() {
        const backend = yield* ModelBackend.ModelBackend
        const error = yield* Effect.flip(backend.authenticate({ username: "a\u0000b", password: pw("x") }, undefined))
        expect(error).toMatchObject({ _tag: "NoMatch", reason: "unknown-user" })
        expect(counts.hash + counts.verify).toBe(1)
      }).pipe(Effect.provide(layer))
    })

    it.effect("wrong password: NoMatch(invalid-credentials), hash untouched", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const alice = yield* seed("alice", "wonderland")
        const before = yield* storedHash(alice.id)
        const backend = yield* ModelBackend.ModelBackend
        const error = yield* Effect.flip(backend.authenticate({ username: "alice", password: pw("nope") }, undefined))
        expect(error).toMatchObject({ _tag: "NoMatch", backend: "model", reason: "invalid-credentials" })
        expect(yield* storedHash(alice.id)).toBe(before)
      }).pipe(Effect.provide(layer))
    })

    it.effect("a user with an unusable password never logs in", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        yield* store.create({ username: "ldap-only" })
        const backend = yield* ModelBackend.ModelBackend
        const error = yield* Effect.flip(backend.authenticate({ username: "ldap-only", password: pw("x") }, undefined))
        expect(error).toMatchObject({ _tag: "NoMatch", reason: "invalid-credentials" })
      }).pipe(Effect.provide(layer))
    })

    it.effect("a malformed stored hash does not match and is no defect", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        yield* store.create({ username: "broken", passwordHash: "pbkdf2_sha256$many$salt$hash" })
        const backend = yield* ModelBackend.ModelBackend
        const exit = yield* Effect.exit(backend.authenticate({ username: "broken", password: pw("x") }, undefined))
        expect(failureTag(exit)).toBe("NoMatch")
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error).toMatchObject({
          reason: "invalid-credentials"
        })
      }).pipe(Effect.provide(layer))
    })

    it.effect("normalises the typed username with NFKC", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const joe = yield* seed("joe", "pw")
        const backend = yield* ModelBackend.ModelBackend
        const user = yield* backend.authenticate({ username: "ｊｏｅ", password: pw("pw") }, undefined)
        expect(user.id).toBe(joe.id)
      }).pipe(Effect.provide(layer))
    })

    it.effect("inactive user, right password: NoMatch(inactive-user); wrong password: invalid-credentials", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        yield* seed("bob", "builder", { isActive: false })
        const backend = yield* ModelBackend.ModelBackend
        const right = yield* Effect.flip(backend.authenticate({ username: "bob", password: pw("builder") }, undefined))
        expect(right).toMatchObject({ _tag: "NoMatch", reason: "inactive-user" })
        const wrong = yield* Effect.flip(backend.authenticate({ username: "bob", password: pw("nope") }, undefined))
        expect(wrong).toMatchObject({ _tag: "NoMatch", reason: "invalid-credentials" })
      }).pipe(Effect.provide(layer))
    })

    it.effect("allowInactive (AllowAllUsersModelBackend) logs inactive users in", () => {
      const { layer } = env({ allowInactive: true, id: "all-users" })
      return Effect.gen(function*() {
        const bob = yield* seed("bob", "builder", { isActive: false })
        const backend = yield* ModelBackend.ModelBackend
        expect(backend.id).toBe("all-users")
        const user = yield* backend.authenticate({ username: "bob", password: pw("builder") }, undefined)
        expect(user.id).toBe(bob.id)
        expect(Option.getOrThrow(yield* backend.getUser(bob.id)).id).toBe(bob.id)
        const error = yield* Effect.flip(backend.authenticate({ username: "bob", password: pw("x") }, undefined))
        expect(error).toMatchObject({ backend: "all-users", reason: "invalid-credentials" })
      }).pipe(Effect.provide(layer))
    })

    it.effect("toUser maps the stored user to the app's user", () => {
      const { layer } = env({
        toUser: (stored) => ({ ...stored, username: stored.username.toUpperCase() })
      })
      return Effect.gen(function*() {
        const alice = yield* seed("alice", "pw")
        const backend = yield* ModelBackend.ModelBackend
        expect((yield* backend.authenticate({ username: "alice", password: pw("pw") }, undefined)).username)
          .toBe("ALICE")
        expect(Option.getOrThrow(yield* backend.getUser(alice.id)).username).toBe("ALICE")
      }).pipe(Effect.provide(layer))
    })

    it.effect("logs in through AuthService", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const alice = yield* seed("alice", "pw")
        const result = yield* AuthService.authenticate({ username: "alice", password: "pw" })
        expect(result.backend).toBe("model")
        expect(result.user.id).toBe(alice.id)
        const failed = yield* Effect.flip(AuthService.authenticate({ username: "alice", password: "no" }))
        expect(failed._tag).toBe("AuthenticationFailed")
        expect(Option.getOrThrow(yield* AuthService.getUser("model", alice.id)).id).toBe(alice.id)
      }).pipe(
        Effect.provide(
          AuthService.layer([ModelBackend.ModelBackend]).pipe(Layer.provideMerge(AuthEvents.layer), Layer.provideMerge(layer))
        )
      )
    })
  })

  describe("upgrading hashes on login", () => {
    it.effect("re-hashes a pbkdf2_sha1 hash with the preferred hasher", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        const old = yield* hashWith({ hashers: ["pbkdf2_sha1"], pbkdf2: { iterations: 1000 } }, "secret")
        expect(old.startsWith("pbkdf2_sha1$")).toBe(true)
        const user = yield* store.create({ username: "legacy", passwordHash: old })
        const backend = yield* ModelBackend.ModelBackend
        yield* backend.authenticate({ username: "legacy", password: pw("secret") }, undefined)
        const now = yield* storedHash(user.id)
        expect(now.startsWith("pbkdf2_sha256$1000$")).toBe(true)
        const hasher = yield* PasswordHasher.PasswordHasher
        expect(yield* hasher.verify(pw("secret"), now)).toEqual({ valid: true, mustUpdate: false })
      }).pipe(Effect.provide(layer))
    })

    it.effect("re-hashes a hash with fewer iterations than configured", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        const old = yield* hashWith({ hashers: ["pbkdf2_sha256"], pbkdf2: { iterations: 500 } }, "secret")
        expect(old.startsWith("pbkdf2_sha256$500$")).toBe(true)
        const user = yield* store.create({ username: "slow", passwordHash: old })
        const backend = yield* ModelBackend.ModelBackend
        yield* backend.authenticate({ username: "slow", password: pw("secret") }, undefined)
        expect((yield* storedHash(user.id)).startsWith("pbkdf2_sha256$1000$")).toBe(true)
      }).pipe(Effect.provide(layer))
    })

    it.effect("concurrent logins during an upgrade each answer the hash now stored (their sessions stay bound to it)", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        const old = yield* hashWith({ hashers: ["pbkdf2_sha256"], pbkdf2: { iterations: 500 } }, "secret")
        const user = yield* store.create({ username: "tabs", passwordHash: old })
        const backend = yield* ModelBackend.ModelBackend
        // Eight logins at once: each reads the old hash and re-hashes; one compare-and-set wins.
        const answered = yield* Effect.all(
          Array.from({ length: 8 }, () => backend.authenticate({ username: "tabs", password: pw("secret") }, undefined)),
          { concurrency: "unbounded" }
        )
        const stored = yield* storedHash(user.id)
        expect(stored.startsWith("pbkdf2_sha256$1000$")).toBe(true)
        // A session binds the hash of the user answered: before, all but the winner answered the
        // old hash, and Session.currentUser flushed their sessions at the next request.
        expect(answered.map((u) => Redacted.value((u as unknown as UserStore.StoredUser).passwordHash))).toEqual(
          Array(8).fill(stored)
        )
      }).pipe(Effect.provide(layer))
    })

    it.effect("re-hashes for inactive users too, as Django does", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        const old = yield* hashWith({ hashers: ["pbkdf2_sha1"], pbkdf2: { iterations: 1000 } }, "secret")
        const user = yield* store.create({ username: "gone", passwordHash: old, isActive: false })
        const backend = yield* ModelBackend.ModelBackend
        const error = yield* Effect.flip(backend.authenticate({ username: "gone", password: pw("secret") }, undefined))
        expect(error).toMatchObject({ reason: "inactive-user" })
        expect((yield* storedHash(user.id)).startsWith("pbkdf2_sha256$")).toBe(true)
      }).pipe(Effect.provide(layer))
    })

    it.effect("keeps the old hash on a wrong password, and a current hash as it is", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        const old = yield* hashWith({ hashers: ["pbkdf2_sha1"], pbkdf2: { iterations: 1000 } }, "secret")
        const legacy = yield* store.create({ username: "legacy", passwordHash: old })
        const current = yield* seed("current", "pw")
        const currentHash = yield* storedHash(current.id)
        const backend = yield* ModelBackend.ModelBackend
        yield* Effect.flip(backend.authenticate({ username: "legacy", password: pw("wrong") }, undefined))
        expect(yield* storedHash(legacy.id)).toBe(old)
        yield* backend.authenticate({ username: "current", password: pw("pw") }, undefined)
        expect(yield* storedHash(current.id)).toBe(currentHash)
      }).pipe(Effect.provide(layer))
    })

    it.effect("never overwrites a password changed while the login ran", () => {
      // A store whose lookup returns the user as it was, then sees the password change.
      const racing = Layer.effect(
        UserStore.UserStore,
        Effect.map(MemoryUserStore.make, (real): UserStore.Service => ({
          ...real,
          findByUsername: (name) =>
            Effect.tap(real.findByUsername(name), (found) =>
              Option.isSome(found) ? Effect.orDie(real.setPassword(found.value.id, "changed-meanwhile")) : Effect.void)
        }))
      )
      const { layer } = env(undefined, racing)
      return Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        const old = yield* hashWith({ hashers: ["pbkdf2_sha1"], pbkdf2: { iterations: 1000 } }, "secret")
        const user = yield* store.create({ username: "legacy", passwordHash: old })
        const backend = yield* ModelBackend.ModelBackend
        yield* backend.authenticate({ username: "legacy", password: pw("secret") }, undefined)
        expect(yield* storedHash(user.id)).toBe("changed-meanwhile")
      }).pipe(Effect.provide(layer))
    })
  })

  describe("getUser", () => {
    it.effect("returns active users only", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const alice = yield* seed("alice", "pw")
        const bob = yield* seed("bob", "pw", { isActive: false })
        const backend = yield* ModelBackend.ModelBackend
        expect(Option.getOrThrow(yield* backend.getUser(alice.id))).toEqual(alice)
        expect(Option.isNone(yield* backend.getUser(bob.id))).toBe(true)
        const store = yield* UserStore.UserStore
        yield* store.setFlags(alice.id, { isActive: false })
        expect(Option.isNone(yield* backend.getUser(alice.id))).toBe(true)
      }).pipe(Effect.provide(layer))
    })

    it.effect("returns none for unknown and malformed ids", () => {
      const { layer } = env()
      return Effect.gen(function*() {
        const backend = yield* ModelBackend.ModelBackend
        for (const id of ["424242", "abc", "", "x".repeat(300)]) {
          expect(Option.isNone(yield* backend.getUser(id))).toBe(true)
        }
      }).pipe(Effect.provide(layer))
    })
  })

  describe("permissions", () => {
    const setup = Effect.gen(function*() {
      const store = yield* UserStore.UserStore
      const editor = yield* store.create({ username: "editor" })
      const root = yield* store.create({ username: "root", isSuperuser: true })
      const inactive = yield* store.create({ username: "inactive", isActive: false })
      const inactiveRoot = yield* store.create({ username: "old-root", isActive: false, isSuperuser: true })
      yield* store.grantPermission(editor.id, "blog.add_post")
      yield* store.setGroups(editor.id, ["editors"])
      yield* store.grantGroupPermission("editors", "blog.change_post")
      yield* store.grantGroupPermission("editors", "shop.view_order")
      yield* store.createPermission("admin.view_logentry")
      yield* store.grantPermission(inactive.id, "blog.add_post")
      const backend = yield* ModelBackend.ModelBackend
      return { backend, editor, root, inactive, inactiveRoot }
    })

    it.effect("getAllPermissions is the user's own and its groups' permissions", () =>
      Effect.gen(function*() {
        const { backend, editor } = yield* setup
        expect(yield* backend.getAllPermissions!(editor)).toEqual(
          new Set(["blog.add_post", "blog.change_post", "shop.view_order"])
        )
      }).pipe(Effect.provide(env().layer)))

    // An untyped caller's user object whose getter answers once and then throws: each question
    // reads it once, guarded, and a user that cannot be read holds nothing (it died before).
    it.effect("a user object whose getters throw on a later read holds nothing: never a defect", () =>
      Effect.gen(function*() {
        const { backend, editor } = yield* setup
        const flaky = (field: "isActive" | "id" | "username") => {
          let reads = 0
          const value = editor[field]
          return Object.defineProperty({ ...editor }, field, {
            get() {
              if (++reads > 1) throw new Error("gone")
              return value
            }
          })
        }
        for (const field of ["isActive", "id", "username"] as const) {
          yield* backend.hasPerm!(flaky(field), "blog.add_post")
          yield* backend.getAllPermissions!(flaky(field))
          yield* backend.hasModulePerms!(flaky(field), "blog")
          yield* backend.explainPerm!(flaky(field), "blog.add_post")
        }
      }).pipe(Effect.provide(env().layer)))

    it.effect("hasPerm grants direct and group permissions only", () =>
      Effect.gen(function*() {
        const { backend, editor } = yield* setup
        expect(yield* backend.hasPerm!(editor, "blog.add_post")).toBe(true)
        expect(yield* backend.hasPerm!(editor, "blog.change_post")).toBe(true)
        expect(yield* backend.hasPerm!(editor, "blog.delete_post")).toBe(false)
        expect(yield* backend.hasPerm!(editor, "admin.view_logentry")).toBe(false)
        expect(yield* backend.hasPerm!(editor, "not a permission")).toBe(false)
      }).pipe(Effect.provide(env().layer)))

    it.effect("an active superuser has every permission the store knows, as Django's ModelBackend; getAllPermissions lists them", () =>
      Effect.gen(function*() {
        const { backend, root } = yield* setup
        expect(yield* backend.hasPerm!(root, "blog.add_post")).toBe(true)
        expect(yield* backend.hasPerm!(root, "admin.view_logentry")).toBe(true)
        // one nobody ever created or granted: Django's ModelBackend.has_perm is False for it
        expect(yield* backend.hasPerm!(root, "never.heard_of")).toBe(false)
        expect(yield* backend.hasModulePerms!(root, "shop")).toBe(true)
        expect(yield* backend.hasModulePerms!(root, "anything")).toBe(false)
        expect(yield* backend.getAllPermissions!(root)).toEqual(
          new Set(["blog.add_post", "blog.change_post", "shop.view_order", "admin.view_logentry"])
        )
      }).pipe(Effect.provide(env().layer)))

    it.effect("an inactive user has no permission, superuser or not", () =>
      Effect.gen(function*() {
        const { backend, inactive, inactiveRoot } = yield* setup
        for (const user of [inactive, inactiveRoot]) {
          expect(yield* backend.hasPerm!(user, "blog.add_post")).toBe(false)
          expect(yield* backend.hasModulePerms!(user, "blog")).toBe(false)
          expect((yield* backend.getAllPermissions!(user)).size).toBe(0)
        }
      }).pipe(Effect.provide(env().layer)))

    it.effect("object permissions are not this backend's: false and empty", () =>
      Effect.gen(function*() {
        const { backend, editor, root } = yield* setup
        const post = { id: 1 }
        for (const user of [editor, root]) {
          expect(yield* backend.hasPerm!(user, "blog.add_post", post)).toBe(false)
          expect((yield* backend.getAllPermissions!(user, post)).size).toBe(0)
        }
        expect(yield* backend.hasPerm!(editor, "blog.add_post", null)).toBe(true)
      }).pipe(Effect.provide(env().layer)))

    it.effect("hasModulePerms answers by app label", () =>
      Effect.gen(function*() {
        const { backend, editor } = yield* setup
        expect(yield* backend.hasModulePerms!(editor, "blog")).toBe(true)
        expect(yield* backend.hasModulePerms!(editor, "shop")).toBe(true)
        expect(yield* backend.hasModulePerms!(editor, "admin")).toBe(false)
        expect(yield* backend.hasModulePerms!(editor, "blo")).toBe(false)
      }).pipe(Effect.provide(env().layer)))

    it.effect("a user another backend issued (foreign id) has nothing here", () =>
      Effect.gen(function*() {
        const { backend } = yield* setup
        const foreign: BaseUser = { id: "uid=alice,ou=people", username: "alice", isActive: true, isSuperuser: false }
        expect(yield* backend.hasPerm!(foreign, "blog.add_post")).toBe(false)
        expect((yield* backend.getAllPermissions!(foreign)).size).toBe(0)
      }).pipe(Effect.provide(env().layer)))

    // Django's ModelBackend gives an inactive user nothing: there the user object is the row.
    it.effect("another backend's user with a deactivated store user's id and name holds nothing", () =>
      Effect.gen(function*() {
        const { editor } = yield* setup
        const store = yield* UserStore.UserStore
        yield* store.setFlags(editor.id, { isActive: false })
        const foreign: BaseUser = { id: editor.id, username: "editor", isActive: true, isSuperuser: false }
        expect(yield* AuthService.hasPerm(foreign, "blog.add_post")).toBe(false)
        expect((yield* AuthService.getAllPermissions(foreign)).size).toBe(0)
        // nor while it is active: an id and a name are what another backend's claims say
        yield* store.setFlags(editor.id, { isActive: true })
        const again: BaseUser = { ...foreign }
        expect(yield* AuthService.hasPerm(again, "blog.add_post")).toBe(false)
        expect((yield* AuthService.getAllPermissions(again)).size).toBe(0)
      }).pipe(Effect.provide(TestAuth.layer([ModelBackend.ModelBackend]).pipe(Layer.provideMerge(env().layer)))))

    it.effect("a copy of a row the store handed out counts with the row's flags as they are now", () =>
      Effect.gen(function*() {
        const { backend, editor } = yield* setup
        const store = yield* UserStore.UserStore
        // a fresh copy (Django's User.objects.get(pk=...)) holds the row's permissions
        const fresh = Option.getOrThrow(yield* store.findById(editor.id))
        expect(yield* backend.hasPerm!(fresh, "blog.add_post")).toBe(true)
        // one that says superuser holds what the row holds, not every permission
        expect(yield* backend.getAllPermissions!({ ...editor, isSuperuser: true })).toEqual(
          new Set(["blog.add_post", "blog.change_post", "shop.view_order"])
        )
        // one read before the user was deactivated holds nothing
        yield* store.setFlags(editor.id, { isActive: false })
        expect(yield* backend.hasPerm!(editor, "blog.add_post")).toBe(false)
        expect((yield* backend.getAllPermissions!(editor)).size).toBe(0)
        expect(yield* backend.explainPerm!(editor, "blog.add_post")).toEqual({
          granted: false,
          reasons: ["inactive user in the store: no permissions"]
        })
      }).pipe(Effect.provide(env().layer)))

    it.effect("revoked permissions and left groups stop counting", () =>
      Effect.gen(function*() {
        const { backend, editor } = yield* setup
        const store = yield* UserStore.UserStore
        yield* store.revokePermission(editor.id, "blog.add_post")
        yield* store.removeFromGroup(editor.id, "editors")
        expect(yield* backend.hasPerm!(editor, "blog.add_post")).toBe(false)
        expect(yield* backend.hasPerm!(editor, "blog.change_post")).toBe(false)
      }).pipe(Effect.provide(env().layer)))
  })

  describe("database down", () => {
    it.effect("every call fails with TransportError, never a defect", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const store = Context.get(
          yield* Layer.buildWithScope(SqlUserStore.layerSqlite({ filename: ":memory:" }), scope),
          UserStore.UserStore
        )
        const hasher = yield* PasswordHasher.make(PasswordHasher.testOptions)
        const alice = yield* store.create({ username: "alice", passwordHash: yield* hasher.hash(pw("pw")) })
        const backend = yield* ModelBackend.make().pipe(
          Effect.provideService(UserStore.UserStore, store),
          Effect.provideService(PasswordHasher.PasswordHasher, hasher)
        )
        expect((yield* backend.authenticate({ username: "alice", password: pw("pw") }, undefined)).id).toBe(alice.id)
        yield* Scope.close(scope, Exit.void)
        const exits: ReadonlyArray<Exit.Exit<unknown, unknown>> = [
          yield* Effect.exit(backend.authenticate({ username: "alice", password: pw("pw") }, undefined)),
          yield* Effect.exit(backend.getUser(alice.id)),
          yield* Effect.exit(backend.hasPerm!(alice, "blog.add_post")),
          yield* Effect.exit(backend.hasModulePerms!(alice, "blog")),
          yield* Effect.exit(backend.getAllPermissions!(alice)),
          yield* Effect.exit(backend.getAllPermissions!({ ...alice, isSuperuser: true }))
        ]
        expect(exits.map(failureTag)).toEqual(exits.map(() => "TransportError"))
        const first = exits[0]!
        expect(Exit.isFailure(first) && first.cause._tag === "Fail" && first.cause.error).toMatchObject({
          backend: "model",
          cause: { _tag: "UserStoreError" }
        })
      }))
  })
})

describe("ModelBackend.layerConfig", () => {
  const layer = ModelBackend.layerConfig({
    id: Config.string("AUTH_MODEL_ID"),
    allowInactive: Config.boolean("AUTH_ALLOW_INACTIVE"),
    policy: { timeout: Config.duration("AUTH_MODEL_TIMEOUT") }
  }).pipe(Layer.provideMerge(MemoryUserStore.layer), Layer.provideMerge(countingHasher().layer))

  it.effect("reads the id, allowInactive and the policy's timeout from Config", () =>
    Effect.gen(function*() {
      yield* seed("carol", "pw", { isActive: false })
      const backend = yield* ModelBackend.ModelBackend
      expect(backend.id).toBe("local")
      // allowInactive: true lets an inactive user in
      expect((yield* backend.authenticate({ username: "carol", password: pw("pw") }, undefined)).username).toBe("carol")
    }).pipe(
      Effect.provide(layer),
      Effect.withConfigProvider(
        ConfigProvider.fromMap(
          new Map([["AUTH_MODEL_ID", "local"], ["AUTH_ALLOW_INACTIVE", "true"], ["AUTH_MODEL_TIMEOUT", "2 seconds"]])
        )
      )
    ))

  it.effect("a missing or malformed value fails the layer with a ConfigError", () =>
    Effect.gen(function*() {
      const build = (entries: ReadonlyArray<readonly [string, string]>) =>
        Effect.flip(
          Effect.withConfigProvider(Layer.build(layer).pipe(Effect.scoped), ConfigProvider.fromMap(new Map(entries)))
        )
      expect(ConfigError.isConfigError(yield* build([["AUTH_MODEL_ID", "local"], ["AUTH_MODEL_TIMEOUT", "2 seconds"]])))
        .toBe(true)
      expect(
        ConfigError.isConfigError(
          yield* build([["AUTH_MODEL_ID", "local"], ["AUTH_ALLOW_INACTIVE", "maybe"], ["AUTH_MODEL_TIMEOUT", "2 seconds"]])
        )
      ).toBe(true)
    }))
})
