import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose"
import * as AuthError from "../src/AuthError.js"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as JwtBackend from "../src/backends/JwtBackend.js"
import * as LdapBackend from "../src/backends/LdapBackend.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as Provisioning from "../src/Provisioning.js"
import * as SqlUserStore from "../src/SqlUserStore.js"
import type { User } from "../src/User.js"
import * as UserStore from "../src/UserStore.js"
import { hostile } from "./utils/hostile.js"
import * as Postgres from "./utils/postgres.js"
import * as SlapdTest from "./utils/slapd.js"
import { failureTag } from "./utils/userStoreSuite.js"

const make = (options: Partial<Provisioning.Options> = {}) => Provisioning.make({ backendId: "sso", ...options })

const provision = (external: Provisioning.ExternalUser, options: Partial<Provisioning.Options> = {}) =>
  Effect.flatMap(make(options), (users) => users.provision(external))

const findUser = (username: string) =>
  Effect.flatMap(UserStore.UserStore, (store) => Effect.map(store.findByUsername(username), Option.getOrThrow))

const groupsOf = (id: string) => Effect.flatMap(UserStore.UserStore, (store) => store.groupsOf(id))

const userCount = Effect.flatMap(UserStore.UserStore, (store) => Effect.map(store.list(), (users) => users.length))

const expectNoMatch = (exit: Exit.Exit<unknown, unknown>, reason: AuthError.NoMatchReason, backend = "sso") => {
  expect(failureTag(exit)).toBe("NoMatch")
  if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
    expect(exit.cause.error).toMatchObject({ reason, backend })
  }
}

// The behaviour suite, on the memory store and on SQLite.
const suite = (name: string, store: () => Layer.Layer<UserStore.UserStore, unknown>) =>
  describe(`Provisioning on ${name}`, () => {
    it.effect("creates an unknown user on first login, with the external attributes", () =>
      Effect.gen(function*() {
        const created = yield* provision({
          username: "alice",
          email: "alice@EXAMPLE.org",
          firstName: "Alice",
          lastName: "Liddell",
          isStaff: true
        })
        expect(created).toMatchObject({
          username: "alice",
          email: "alice@example.org",
          firstName: "Alice",
          lastName: "Liddell",
          isActive: true,
          isStaff: true,
          isSuperuser: false
        })
        expect(yield* findUser("alice")).toEqual(created)
        // a second login finds the same row
        expect((yield* provision({ username: "alice" })).id).toBe(created.id)
        expect(yield* userCount).toBe(1)
      }).pipe(Effect.provide(store())))

    // NFKC is many-to-one, and a provider keeps "ᵇoss" apart from "boss" (Keycloak allows both):
    // folded, the second account took over the first and rewrote its email.
    it.effect("a name NFKC would change is another user: never folded onto a local one, never created folded", () =>
      Effect.gen(function*() {
        const boss = yield* provision({ username: "boss", email: "boss@corp.example" })
        for (const username of ["\u1d47oss", "ｂｏｓｓ", "ｊｏｅ"]) {
          expectNoMatch(yield* Effect.exit(provision({ username, email: "attacker@evil.example" })), "invalid-credentials")
        }
        expect(yield* findUser("boss")).toEqual(boss)
        expect(yield* userCount).toBe(1)
        expect((yield* provision({ username: "boss" })).id).toBe(boss.id)
        // Canonically equivalent spellings are one name: a directory sending "José" decomposed
        // finds the user created from it composed, and the other way round.
        const jose = yield* provision({ username: "Jos\u00e9" })
        expect((yield* provision({ username: "Jose\u0301" })).id).toBe(jose.id)
        const zoe = yield* provision({ username: "Zoe\u0308" })
        expect(zoe.username).toBe("Zo\u00eb")
        expect((yield* provision({ username: "Zo\u00eb" })).id).toBe(zoe.id)
        expect(yield* userCount).toBe(3)
      }).pipe(Effect.provide(store())))

    // django-auth-ldap, mozilla-django-oidc and RemoteUserBackend create users through the ORM,
    // which applies no form validator: a directory's "o'brien" failed every login here with a
    // TransportError (a 503, retried) from the store's ValidUsername.
    it.effect("a name Django's sign-up form refuses (o'brien, john smith) is created, as Django's backends create it", () =>
      Effect.gen(function*() {
        for (const username of ["o'brien", "john smith", "o\u2019neil", "o'brien@contoso.com", "R&D (Paris)"]) {
          const created = yield* provision({ username, email: "x@example.org" })
          expect(created.username).toBe(username)
          expect((yield* provision({ username })).id).toBe(created.id)
        }
        // what the store still refuses is a refusal of the login, not an outage
        for (const username of ["al\u200bice", "bob\u202e", "line\nbreak", "tab\tbed", "para\u2029"]) {
          expectNoMatch(yield* Effect.exit(provision({ username })), "invalid-credentials")
        }
        expect(yield* userCount).toBe(5)
        // the sign-up form's rule is untouched for everyone else
        const store = yield* UserStore.UserStore
        expect(failureTag(yield* Effect.exit(store.create({ username: "o'reilly" })))).toBe("InvalidInput")
      }).pipe(Effect.provide(store())))

    it.effect("updates changed attributes on later logins; absent fields stay as they are", () =>
      Effect.gen(function*() {
        const first = yield* provision({ username: "bob", email: "bob@old.example", firstName: "Bob", isStaff: true })
        const second = yield* provision({ username: "bob", email: "bob@new.example", lastName: "Builder", isSuperuser: true })
        expect(second).toMatchObject({
          id: first.id,
          email: "bob@new.example",
          firstName: "Bob",
          lastName: "Builder",
          isStaff: true,
          isSuperuser: true
        })
        // what provision returned is what the store holds
        expect(yield* findUser("bob")).toEqual(second)
        const third = yield* provision({ username: "bob", isStaff: false })
        expect(yield* findUser("bob")).toMatchObject({ isStaff: false, isSuperuser: true, email: "bob@new.example" })
        expect(third.isStaff).toBe(false)
      }).pipe(Effect.provide(store())))

    it.effect("with updateAttributes: false, attributes are set on creation only", () =>
      Effect.gen(function*() {
        yield* provision({ username: "bob", email: "bob@old.example", isStaff: true }, { updateAttributes: false })
        const later = yield* provision({ username: "bob", email: "bob@new.example", isStaff: false }, { updateAttributes: false })
        expect(later).toMatchObject({ email: "bob@old.example", isStaff: true })
        expect(yield* findUser("bob")).toMatchObject({ email: "bob@old.example", isStaff: true })
      }).pipe(Effect.provide(store())))

    it.effect("with createUnknownUser: false, an unknown user is NoMatch(unknown-user) and no row is made", () =>
      Effect.gen(function*() {
        expectNoMatch(yield* Effect.exit(provision({ username: "eve" }, { createUnknownUser: false })), "unknown-user")
        expect(yield* userCount).toBe(0)
        // a user the site created itself still logs in, and is updated
        const store = yield* UserStore.UserStore
        const eve = yield* store.create({ username: "eve" })
        const found = yield* provision({ username: "eve", firstName: "Eve" }, { createUnknownUser: false })
        expect(found).toMatchObject({ id: eve.id, firstName: "Eve" })
      }).pipe(Effect.provide(store())))

    it.effect("mirrorGroups makes the local groups exactly the external ones, creating missing groups", () =>
      Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        yield* store.createGroup("local-only")
        const carol = yield* provision({ username: "carol", groups: ["staff", "editors"] }, { mirrorGroups: true })
        expect(yield* groupsOf(carol.id)).toEqual(["editors", "staff"])
        yield* store.addToGroup(carol.id, "local-only")
        yield* provision({ username: "carol", groups: ["staff", "admins"] }, { mirrorGroups: true })
        expect(yield* groupsOf(carol.id)).toEqual(["admins", "staff"])
        // no groups in the external user: the local ones stay
        yield* provision({ username: "carol" }, { mirrorGroups: true })
        expect(yield* groupsOf(carol.id)).toEqual(["admins", "staff"])
        // an empty list empties them
        yield* provision({ username: "carol", groups: [] }, { mirrorGroups: true })
        expect(yield* groupsOf(carol.id)).toEqual([])
      }).pipe(Effect.provide(store())))

    it.effect("without mirrorGroups, external groups are ignored", () =>
      Effect.gen(function*() {
        const dave = yield* provision({ username: "dave", groups: ["staff"] })
        expect(yield* groupsOf(dave.id)).toEqual([])
      }).pipe(Effect.provide(store())))

    it.effect("configureUser runs once, on creation, after the groups are mirrored; its changes are seen", () =>
      Effect.gen(function*() {
        const calls: Array<{ readonly username: string; readonly groups: ReadonlyArray<string> }> = []
        const options: Partial<Provisioning.Options> = {
          mirrorGroups: true,
          configureUser: (stored, external) =>
            Effect.gen(function*() {
              const store = yield* UserStore.UserStore
              calls.push({ username: external.username, groups: yield* store.groupsOf(stored.id) })
              yield* store.grantPermission(stored.id, "blog.add_post")
              yield* store.setFlags(stored.id, { isStaff: true })
            })
        }
        const created = yield* provision({ username: "frank", groups: ["staff"] }, options)
        expect(created.isStaff).toBe(true)
        expect(calls).toEqual([{ username: "frank", groups: ["staff"] }])
        yield* provision({ username: "frank", groups: ["staff"] }, options)
        yield* provision({ username: "frank", groups: ["staff"] }, options)
        expect(calls.length).toBe(1)
        const store = yield* UserStore.UserStore
        expect(yield* store.userPermissions(created.id)).toEqual(new Set(["blog.add_post"]))
      }).pipe(Effect.provide(store())))

    it.effect("a failing configureUser fails the login with its error; store errors become TransportError", () =>
      Effect.gen(function*() {
        const denied = yield* Effect.exit(provision({ username: "gina" }, {
          configureUser: () => Effect.fail(new AuthError.PermissionDenied({ backend: "sso", reason: "not in this tenant" }))
        }))
        expect(failureTag(denied)).toBe("PermissionDenied")
        const broken = yield* Effect.exit(provision({ username: "hank" }, {
          configureUser: (stored) => Effect.flatMap(UserStore.UserStore, (store) => store.addToGroup(stored.id, "no-such-group"))
        }))
        expect(failureTag(broken)).toBe("TransportError")
      }).pipe(Effect.provide(store())))

    it.effect("a configureUser refusal holds on later logins, which do not call it again", () =>
      Effect.gen(function*() {
        let calls = 0
        const options: Partial<Provisioning.Options> = {
          // the documented use: refuse users from outside the company when they first log in
          configureUser: (stored) => {
            calls++
            return stored.email.endsWith("@example.org")
              ? Effect.void
              : Effect.fail(new AuthError.PermissionDenied({ backend: "sso", reason: "foreign domain" }))
          }
        }
        const first = yield* Effect.exit(provision({ username: "mallory", email: "mallory@evil.example" }, options))
        expect(failureTag(first)).toBe("PermissionDenied")
        expectNoMatch(yield* Effect.exit(provision({ username: "mallory", email: "mallory@evil.example" }, options)), "inactive-user")
        expect((yield* findUser("mallory")).isActive).toBe(false)
        expect(calls).toBe(1)
        // a user the hook passes is active, and a hook that deactivates the user itself is obeyed
        expect((yield* provision({ username: "olga", email: "olga@example.org" }, options)).isActive).toBe(true)
        const deactivating: Partial<Provisioning.Options> = {
          configureUser: (stored) => Effect.flatMap(UserStore.UserStore, (store) => store.setFlags(stored.id, { isActive: false }))
        }
        expectNoMatch(yield* Effect.exit(provision({ username: "pete" }, deactivating)), "inactive-user")
        expect((yield* findUser("pete")).isActive).toBe(false)
      }).pipe(Effect.provide(store())))

    it.effect("a first login cut off while configureUser runs: the hook runs to its end, and the next login gets in", () =>
      Effect.gen(function*() {
        let calls = 0
        const entered = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const users = yield* make({
          configureUser: (stored) =>
            Effect.gen(function*() {
              calls++
              yield* Deferred.succeed(entered, undefined)
              yield* Deferred.await(release)
              yield* Effect.flatMap(UserStore.UserStore, (store) => store.grantPermission(stored.id, "blog.add_post"))
            })
        })
        const carol = { username: "carol", email: "carol@example.org" }
        const first = yield* Effect.fork(users.provision(carol))
        yield* Deferred.await(entered)
        // the client goes away (or the backend's timeout fires) while the hook runs
        expect(Exit.isInterrupted(yield* Fiber.interrupt(first))).toBe(true)
        yield* Deferred.succeed(release, undefined)
        // carol tries again: before, the row stayed inactive for ever and this was NoMatch(inactive-user)
        const second = yield* Effect.exit(users.provision(carol))
        expect(Exit.isSuccess(second) ? "success" : Cause.squash(second.cause)).toBe("success")
        const row = yield* findUser("carol")
        expect(row.isActive).toBe(true)
        expect(Exit.isSuccess(second) && second.value.id).toBe(row.id)
        expect(yield* Effect.flatMap(UserStore.UserStore, (store) => store.userPermissions(row.id))).toEqual(
          new Set(["blog.add_post"])
        )
        expect((yield* users.provision(carol)).id).toBe(row.id)
        expect(calls).toBe(1)
        expect(yield* userCount).toBe(1)
      }).pipe(Effect.provide(store())))

    it.effect("a first login cut off while configureUser runs: a refusal the hook makes afterwards still holds", () =>
      Effect.gen(function*() {
        let calls = 0
        const entered = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const users = yield* make({
          configureUser: () =>
            Effect.gen(function*() {
              calls++
              yield* Deferred.succeed(entered, undefined)
              yield* Deferred.await(release)
              return yield* Effect.fail(new AuthError.PermissionDenied({ backend: "sso", reason: "foreign domain" }))
            })
        })
        const first = yield* Effect.fork(users.provision({ username: "mallory" }))
        yield* Deferred.await(entered)
        expect(Exit.isInterrupted(yield* Fiber.interrupt(first))).toBe(true)
        yield* Deferred.succeed(release, undefined)
        expectNoMatch(yield* Effect.exit(users.provision({ username: "mallory" })), "inactive-user")
        expect((yield* findUser("mallory")).isActive).toBe(false)
        expect(calls).toBe(1)
      }).pipe(Effect.provide(store())))

    it.effect("an inactive local user is NoMatch(inactive-user), and provisioning never reactivates it", () =>
      Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        const ivan = yield* provision({ username: "ivan" })
        yield* store.setFlags(ivan.id, { isActive: false })
        expectNoMatch(yield* Effect.exit(provision({ username: "ivan", isActive: true })), "inactive-user")
        expect((yield* findUser("ivan")).isActive).toBe(false)
        // an external isActive: false refuses the login too
        yield* store.setFlags(ivan.id, { isActive: true })
        expectNoMatch(yield* Effect.exit(provision({ username: "ivan", isActive: false })), "inactive-user")
        expect((yield* provision({ username: "ivan" })).isActive).toBe(true)
        // created inactive when the external system says so
        expectNoMatch(yield* Effect.exit(provision({ username: "judy", isActive: false })), "inactive-user")
        expect((yield* findUser("judy")).isActive).toBe(false)
      }).pipe(Effect.provide(store())))

    it.effect("a local account (usable password) is not linked: NoMatch(unknown-user), untouched; linkLocalUsers links it", () =>
      Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        // createsuperuser's admin, and an external system where someone got the name "admin"
        const admin = yield* store.create({
          username: "admin",
          passwordHash: "pbkdf2_sha256$870000$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
          email: "root@example.org",
          isStaff: true,
          isSuperuser: true
        })
        const claims = { username: "admin", email: "evil@example.com", groups: ["x"] }
        expectNoMatch(yield* Effect.exit(provision(claims, { mirrorGroups: true })), "unknown-user")
        expect(yield* findUser("admin")).toEqual(admin)
        expect(yield* groupsOf(admin.id)).toEqual([])
        // users provisioning made (unusable password) are linked as before
        const nina = yield* provision({ username: "nina" })
        expect((yield* provision({ username: "nina", email: "nina@example.org" })).id).toBe(nina.id)
        // the explicit opt-in: the external system owns the local usernames
        const linked = yield* provision(claims, { linkLocalUsers: true })
        expect(linked.id).toBe(admin.id)
        expect(linked.email).toBe("evil@example.com")
      }).pipe(Effect.provide(store())))

    it.effect("loadUser answers active users by local id; inactive, unknown and foreign ids are none", () =>
      Effect.gen(function*() {
        const users = yield* make()
        const store = yield* UserStore.UserStore
        const kim = yield* users.provision({ username: "kim" })
        expect(yield* users.loadUser(kim.id)).toEqual(Option.some(kim))
        expect(yield* users.loadUser("424242")).toEqual(Option.none())
        expect(yield* users.loadUser("kim")).toEqual(Option.none())
        yield* store.setFlags(kim.id, { isActive: false })
        expect(yield* users.loadUser(kim.id)).toEqual(Option.none())
      }).pipe(Effect.provide(store())))

    it.effect("hook maps the backend's own user and applies toUser", () =>
      Effect.gen(function*() {
        const hook = yield* Provisioning.hook(
          { backendId: "sso", toUser: (stored) => ({ ...stored, id: stored.id, username: stored.username.toUpperCase() }) },
          (claims: { readonly sub: string; readonly mail: string }) => ({ username: claims.sub, email: claims.mail })
        )
        const user = yield* hook({ sub: "lena", mail: "lena@example.org" })
        expect(user.username).toBe("LENA")
        expect((yield* findUser("lena")).email).toBe("lena@example.org")
      }).pipe(Effect.provide(store())))

    it.effect("a hook's mapping that throws or answers no username is the TransportError of a user that does not fit, never a defect", () =>
      Effect.gen(function*() {
        const users = yield* make()
        const cases: ReadonlyArray<readonly [(claims: Record<string, unknown>) => Provisioning.ExternalUser, string]> = [
          [(c) => ({ username: (c.upn as string).toLowerCase() }), "the external user does not fit the store: the mapping threw"],
          [(c) => ({ username: c.upn as string }), "the external user does not fit the store at \"username\""],
          [() => undefined as unknown as Provisioning.ExternalUser, "the external user does not fit the store at \"username\""],
          // a field other than the username that throws when read, and a Proxy whose traps throw
          [() => ({
            username: "ann",
            get email(): string {
              throw new Error("boom")
            }
          }), "the external user does not fit the store: the mapping threw"],
          [() => ({ username: "ann", groups: hostile() as never }), "the external user does not fit the store at \"groups\""],
          [() => new Proxy({ username: "ann" }, { get: (_, key) => {
            if (key === "username") return "ann"
            throw new Error("trap")
          } }), "the external user does not fit the store: the mapping threw"]
        ]
        for (const [map, cause] of cases) {
          const exit = yield* Effect.exit(users.hook(map)({ mail: "ann@example.org" }))
          expect(failureTag(exit)).toBe("TransportError")
          expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe(Option.getOrUndefined)).toMatchObject({ backend: "sso", cause })
        }
        expect(yield* userCount).toBe(0)
      }).pipe(Effect.provide(store())))

    it.effect("an external user that does not fit the store is a TransportError", () =>
      Effect.gen(function*() {
        for (
          const external of [
            { username: "" },
            { username: "x".repeat(151) },
            { username: "nul\u0000" },
            { username: "mike", email: `${"m".repeat(250)}@example.org` },
            { username: "mike", groups: ["g".repeat(151)] }
          ]
        ) {
          const exit = yield* Effect.exit(provision(external))
          expect(failureTag(exit), JSON.stringify(external).slice(0, 40)).toBe("TransportError")
        }
        expect(yield* userCount).toBe(0)
      }).pipe(Effect.provide(store())))

    it.effect("the TransportError names the failing field, not its value, even for a value too deep to render", () =>
      Effect.gen(function*() {
        const deep = JSON.parse(`${"[".repeat(5_000)}${"]".repeat(5_000)}`)
        const long = `${"m".repeat(250)}@example.org`
        for (const [external, path] of [[{ username: "mike", email: deep }, "\"email\""], [{ username: "mike", email: long }, "\"email\""]] as const) {
          const exit = yield* Effect.exit(provision(external as Provisioning.ExternalUser))
          expect(failureTag(exit)).toBe("TransportError")
          const cause = String(Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe(Option.map((e) => (e as AuthError.TransportError).cause), Option.getOrUndefined))
          expect(cause).toBe(`the external user does not fit the store at ${path}`)
        }
        expect(yield* userCount).toBe(0)
      }).pipe(Effect.provide(store())))
  })

suite("the memory store", () => MemoryUserStore.layer)
suite("SQLite", () => SqlUserStore.layerSqlite({ filename: ":memory:" }))

describe("Provisioning: store failures", () => {
  it.effect("a name an app's own store refuses on create is NoMatch(invalid-credentials), not a TransportError", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(provision({ username: "o'brien" }))
      expectNoMatch(exit, "invalid-credentials")
    }).pipe(Effect.provide(Layer.effect(
      UserStore.UserStore,
      Effect.map(UserStore.UserStore, (store) => ({
        ...store,
        create: () => Effect.fail(new UserStore.InvalidInput({ field: "username", message: "not here" }))
      } satisfies UserStore.Service))
    ).pipe(Layer.provide(MemoryUserStore.layer)))))

  it.effect("a store that cannot answer is a TransportError of the backend", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`DROP TABLE auth_user_groups`
      yield* sql`DROP TABLE auth_user_user_permissions`
      yield* sql`DROP TABLE auth_user`
      const exit = yield* Effect.exit(provision({ username: "alice" }))
      expect(failureTag(exit)).toBe("TransportError")
      if (Exit.isFailure(exit) && exit.cause._tag === "Fail") expect(exit.cause.error).toMatchObject({ backend: "sso" })
      const users = yield* make()
      expect(failureTag(yield* Effect.exit(users.loadUser("1")))).toBe("TransportError")
    }).pipe(Effect.provide(SqlUserStore.layerSqlite({ filename: ":memory:" }))))
})

// Concurrent first logins of one user, on the real databases.
const pgStore = () => Postgres.userStore(Postgres.uniquePrefix("pv_pg"))

// Counts the store's creates and the ones that lost the race (UserAlreadyExists). With `lookups`,
// the first that many username lookups wait until all of them have answered, so every login reads
// "no such user" before any creates it: the race, forced.
const countingCreates = (counts: { attempts: number; conflicts: number }, lookups = 0) =>
  Layer.effect(
    UserStore.UserStore,
    Effect.gen(function*() {
      const store = yield* UserStore.UserStore
      const gate = yield* Deferred.make<void>()
      let seen = 0
      const findByUsername = (username: string) =>
        Effect.tap(store.findByUsername(username), () => {
          seen++
          if (seen > lookups) return Effect.void
          return seen === lookups ? Deferred.succeed(gate, undefined) : Deferred.await(gate)
        })
      return {
        ...store,
        findByUsername,
        create: (input) =>
        Effect.suspend(() => {
          counts.attempts++
          return store.create(input)
        }).pipe(Effect.tapErrorTag("UserAlreadyExists", () => Effect.sync(() => void counts.conflicts++)))
      } satisfies UserStore.Service
    })
  )

// Holds the answer of one username lookup, once asked to: the lookup reads the store at once and
// answers only when `answer` is done, as a query on a pool can read before another connection's
// write commits and answer after the writer has moved on.
const holdingLookup = (hold: { next: boolean; read: Deferred.Deferred<void>; answer: Deferred.Deferred<void> }) =>
  Layer.effect(
    UserStore.UserStore,
    Effect.map(UserStore.UserStore, (store) => ({
      ...store,
      findByUsername: (username: string) =>
        Effect.flatMap(store.findByUsername(username), (found) => {
          if (!hold.next) return Effect.succeed(found)
          hold.next = false
          return Deferred.succeed(hold.read, undefined).pipe(Effect.zipRight(Deferred.await(hold.answer)), Effect.as(found))
        })
    } satisfies UserStore.Service))
  )

const concurrency = (name: string, store: () => Layer.Layer<UserStore.UserStore, unknown>, skip = false) =>
  describe.skipIf(skip)(`Provisioning on ${name}: concurrent first logins`, () => {
    const counts = { attempts: 0, conflicts: 0 }
    it.effect("20 concurrent provisions of a new user create one row and all return its id", () =>
      Effect.gen(function*() {
        const users = yield* make({ mirrorGroups: true })
        const results = yield* Effect.all(
          Array.from({ length: 20 }, () => users.provision({ username: "nina", email: "nina@example.org", groups: ["staff"] })),
          { concurrency: "unbounded" }
        )
        const ids = new Set(results.map((user) => user.id))
        expect(ids.size).toBe(1)
        expect(yield* userCount).toBe(1)
        expect((yield* findUser("nina")).id).toBe(results[0]!.id)
        expect(yield* groupsOf(results[0]!.id)).toEqual(["staff"])
        // exactly one create won, whatever the interleaving
        expect(counts.attempts - counts.conflicts).toBe(1)
      }).pipe(Effect.provide(countingCreates(counts).pipe(Layer.provideMerge(store())))))

    it.effect("with configureUser, 20 concurrent first logins on one instance wait for it: one row, one call", () => {
      const created = { attempts: 0, conflicts: 0 }
      return Effect.gen(function*() {
        let configured = 0
        const users = yield* make({ mirrorGroups: true, configureUser: () => Effect.sync(() => void configured++) })
        const results = yield* Effect.all(
          Array.from({ length: 20 }, () => users.provision({ username: "nina", email: "nina@example.org", groups: ["staff"] })),
          { concurrency: "unbounded" }
        )
        expect(yield* userCount).toBe(1)
        expect(configured).toBe(1)
        const nina = yield* findUser("nina")
        expect(nina.isActive).toBe(true)
        expect(new Set(results.map((user) => user.id))).toEqual(new Set([nina.id]))
        expect(results.every((user) => user.isActive)).toBe(true)
      }).pipe(Effect.provide(countingCreates(created).pipe(Layer.provideMerge(store()))))
    })

    it.effect("with configureUser, another instance's login is refused until the hook has passed", () =>
      Effect.gen(function*() {
        const latch = yield* Deferred.make<void>()
        const entered = yield* Deferred.make<void>()
        const options: Partial<Provisioning.Options> = {
          configureUser: () => Effect.zipRight(Deferred.succeed(entered, undefined), Deferred.await(latch))
        }
        const a = yield* make(options)
        const b = yield* make(options)
        const first = yield* Effect.fork(a.provision({ username: "otto" }))
        yield* Deferred.await(entered)
        // the row is there, inactive, while instance a's hook runs
        expectNoMatch(yield* Effect.exit(b.provision({ username: "otto" })), "inactive-user")
        // a login on instance a itself waits for its hook instead
        const second = yield* Effect.fork(a.provision({ username: "otto" }))
        yield* Effect.yieldNow()
        expect(second.unsafePoll()).toBeNull()
        yield* Deferred.succeed(latch, undefined)
        const otto = yield* first
        expect((yield* second).id).toBe(otto.id)
        expect((yield* b.provision({ username: "otto" })).id).toBe(otto.id)
      }).pipe(Effect.provide(store())))

    it.effect("with configureUser, a login that read the row inactive while the hook ran and answers after it reads it again", () =>
      Effect.gen(function*() {
        const hold = { next: false, read: yield* Deferred.make<void>(), answer: yield* Deferred.make<void>() }
        const latch = yield* Deferred.make<void>()
        const entered = yield* Deferred.make<void>()
        return yield* Effect.gen(function*() {
          const users = yield* make({
            configureUser: () => Effect.zipRight(Deferred.succeed(entered, undefined), Deferred.await(latch))
          })
          const first = yield* Effect.fork(users.provision({ username: "otto" }))
          yield* Deferred.await(entered)
          // the second login reads the row while it is inactive...
          hold.next = true
          const second = yield* Effect.fork(users.provision({ username: "otto" }))
          yield* Deferred.await(hold.read)
          // ...and its answer arrives only after the first login has ended
          yield* Deferred.succeed(latch, undefined)
          const otto = yield* first
          expect(otto.isActive).toBe(true)
          yield* Deferred.succeed(hold.answer, undefined)
          const again = yield* second
          expect(again.id).toBe(otto.id)
          expect(again.isActive).toBe(true)
        }).pipe(Effect.provide(holdingLookup(hold).pipe(Layer.provideMerge(store()))))
      }))

    it.effect("when every login reads before any creates (20 instances), 19 creates lose and carry on with the winner's row", () => {
      const forced = { attempts: 0, conflicts: 0 }
      return Effect.gen(function*() {
        // one provisioner per login: app instances, which share no in-process bookkeeping
        const instances = yield* Effect.all(Array.from({ length: 20 }, () => make({ mirrorGroups: true })))
        const results = yield* Effect.all(
          instances.map((users) => users.provision({ username: "oscar", firstName: "Oscar", groups: ["staff"] })),
          { concurrency: "unbounded" }
        )
        expect(forced).toEqual({ attempts: 20, conflicts: 19 })
        expect(new Set(results.map((user) => user.id)).size).toBe(1)
        expect(yield* userCount).toBe(1)
        expect(results.every((user) => user.firstName === "Oscar")).toBe(true)
        expect(yield* groupsOf(results[0]!.id)).toEqual(["staff"])
      }).pipe(Effect.provide(countingCreates(forced, 20).pipe(Layer.provideMerge(store()))))
    })

    // On one instance, a first login of a name waits for the one already creating it (with or
    // without configureUser), so that a second login of the same subject finds the row bound.
    it.effect("on one instance, 20 concurrent first logins of one name create once and all get the row", () => {
      const forced = { attempts: 0, conflicts: 0 }
      return Effect.gen(function*() {
        const users = yield* make({ mirrorGroups: true })
        const results = yield* Effect.all(
          Array.from({ length: 20 }, () => users.provision({ username: "olga", firstName: "Olga", groups: ["staff"] })),
          { concurrency: "unbounded" }
        )
        expect(forced).toEqual({ attempts: 1, conflicts: 0 })
        expect(new Set(results.map((user) => user.id)).size).toBe(1)
        expect(yield* userCount).toBe(1)
      }).pipe(Effect.provide(countingCreates(forced, 20).pipe(Layer.provideMerge(store()))))
    })
  })

concurrency("SQLite", () => SqlUserStore.layerSqlite({ filename: ":memory:" }))
concurrency("PostgreSQL", pgStore, Postgres.missing)

// The backends' `provision` hooks are typed to fail with TransportError | PermissionDenied only,
// while provisioning also refuses with NoMatch (unknown-user, inactive-user). Both backends pass
// that NoMatch through unchanged at runtime, as the tests below show; until the hooks' error type
// is widened to AuthError.BackendError, these casts bridge the types.
// End to end: a directory user logs in through the real LdapBackend and lands in the store.

const ldapAuth = (ldapUrl: string, options: Partial<Provisioning.Options> = {}) => {
  const LdapLive = Layer.effect(
    LdapBackend.LdapBackend,
    Effect.gen(function*() {
      const users = yield* Provisioning.make({ backendId: "ldap", mirrorGroups: true, ...options })
      return yield* LdapBackend.make({
        url: ldapUrl,
        bindDn: SlapdTest.fixture.serviceDn,
        bindPassword: Redacted.make(SlapdTest.fixture.servicePassword),
        userSearch: { base: SlapdTest.fixture.peopleDn },
        userAttributes: { email: "mail", firstName: "givenName", lastName: "sn" },
        groups: { type: "groupOfNames", base: SlapdTest.fixture.groupsDn },
        flagsByGroup: { isStaff: SlapdTest.fixture.groups.staff, isSuperuser: SlapdTest.fixture.groups.admins },
        provision: (users.hook((ldap: LdapBackend.LdapUser) => ({
          username: ldap.username,
          email: ldap.fields["email"],
          firstName: ldap.fields["firstName"],
          lastName: ldap.fields["lastName"],
          isStaff: ldap.isStaff,
          isSuperuser: ldap.isSuperuser,
          groups: ldap.groupNames
        }))),
        loadUser: users.loadUser
      })
    })
  )
  return AuthService.layer([LdapBackend.LdapBackend]).pipe(
    Layer.provide(LdapLive),
    Layer.provideMerge(AuthEvents.layer),
    Layer.provideMerge(SqlUserStore.layerSqlite({ filename: ":memory:" }))
  )
}

SlapdTest.suite({ timeout: "60 seconds" })("Provisioning through the real LdapBackend (slapd)", (it) => {
  it.effect("an LDAP login creates the local user; getUser loads it by its local id", () =>
    Effect.gen(function*() {
      const { url: ldapUrl } = yield* SlapdTest.Slapd
      return yield* Effect.gen(function*() {
        const { users } = SlapdTest.fixture
        const { backend, user } = yield* AuthService.authenticate({ username: "alice", password: users.alice.password })
        expect(backend).toBe("ldap")
        const stored = yield* findUser("alice")
        expect(stored).toMatchObject({
          username: "alice",
          email: "alice@example.org",
          firstName: "Alice",
          lastName: "Liddell",
          isStaff: true,
          isSuperuser: true
        })
        expect(user.id).toBe(stored.id)
        expect(yield* groupsOf(stored.id)).toEqual(["admins", "staff"])
        // sessions keep (backend, local id): getUser resolves it through loadUser
        const loaded = yield* AuthService.getUser("ldap", stored.id)
        expect(Option.map(loaded, (u) => u.username)).toEqual(Option.some("alice"))

        // a second login updates nothing and creates nothing
        yield* AuthService.authenticate({ username: "alice", password: users.alice.password })
        expect(yield* userCount).toBe(1)

        // deactivated locally: the directory's password no longer gets her in, nor does her session
        const store = yield* UserStore.UserStore
        yield* store.setFlags(stored.id, { isActive: false })
        const refused = yield* Effect.flip(
          AuthService.authenticate({ username: "alice", password: users.alice.password })
        )
        expect(refused).toBeInstanceOf(AuthError.AuthenticationFailed)
        expect((refused as AuthError.AuthenticationFailed).attempts).toMatchObject([{ backend: "ldap", reason: "inactive-user" }])
        expect(yield* AuthService.getUser("ldap", stored.id)).toEqual(Option.none())
      }).pipe(Effect.provide(ldapAuth(ldapUrl)))
    }))

  // django-auth-ldap creates a Django user of whatever uid the directory has: this one was a
  // TransportError from the store's sign-up form rule on every login.
  it.effect("a directory name Django's sign-up form refuses is created, as django-auth-ldap creates it", () =>
    Effect.gen(function*() {
      const { url: ldapUrl } = yield* SlapdTest.Slapd
      return yield* Effect.gen(function*() {
        const { special } = SlapdTest.fixture.users
        const { user } = yield* AuthService.authenticate({ username: special.uid, password: special.password })
        expect(user.username).toBe(special.uid)
        expect((yield* findUser(special.uid)).id).toBe(user.id)
        expect(yield* userCount).toBe(1)
      }).pipe(Effect.provide(ldapAuth(ldapUrl)))
    }))

  // The groups were named by splitting the DN by hand, as docs/provisioning.md showed: slapd's
  // `cn=R&D\2C Paris` became the local group `R&D\2C Paris`, not django-auth-ldap's `R&D, Paris`.
  it.scoped("mirrored groups are named as django-auth-ldap's MIRROR_GROUPS names them, escaped DNs included", () =>
    Effect.gen(function*() {
      const { url: ldapUrl } = yield* SlapdTest.Slapd
      const { groupsDn, peopleDn } = SlapdTest.fixture
      const dn = `uid=ronda,${peopleDn}`
      yield* SlapdTest.withEntries(ldapUrl, [
        [dn, { objectClass: "inetOrgPerson", uid: "ronda", cn: "Ronda", sn: "Ronda", userPassword: "ronda-pw" }],
        [`cn=R&D\\, Paris,${groupsDn}`, { objectClass: "groupOfNames", cn: "R&D, Paris", member: dn }],
        [`cn=a\\=b,${groupsDn}`, { objectClass: "groupOfNames", cn: "a=b", member: dn }]
      ])
      return yield* Effect.gen(function*() {
        const { user } = yield* AuthService.authenticate({ username: "ronda", password: "ronda-pw" })
        expect(yield* groupsOf(user.id)).toEqual(["R&D, Paris", "a=b"])
      }).pipe(Effect.provide(ldapAuth(ldapUrl)))
    }))

  // A mapping of an attribute some entries lack (dave has no mail): a TypeError, a defect, before.
  it.effect("a mapping that throws on a directory entry is a TransportError of the LDAP backend, never a defect", () =>
    Effect.gen(function*() {
      const { url } = yield* SlapdTest.Slapd
      const { dave } = SlapdTest.fixture.users
      const LdapLive = Layer.effect(
        LdapBackend.LdapBackend,
        Effect.gen(function*() {
          const users = yield* Provisioning.make({ backendId: "ldap" })
          return yield* LdapBackend.make({
            url,
            bindDn: SlapdTest.fixture.serviceDn,
            bindPassword: Redacted.make(SlapdTest.fixture.servicePassword),
            userSearch: { base: SlapdTest.fixture.peopleDn },
            provision: users.hook((ldap: LdapBackend.LdapUser) => ({ username: ldap.attributes["mail"]![0]! })),
            loadUser: users.loadUser
          })
        })
      )
      const exit = yield* Effect.exit(AuthService.authenticate({ username: dave.uid, password: dave.password })).pipe(
        Effect.provide(AuthService.layer([LdapBackend.LdapBackend]).pipe(
          Layer.provide(LdapLive),
          Layer.provideMerge(AuthEvents.layer),
          Layer.provideMerge(MemoryUserStore.layer)
        ))
      )
      expect(failureTag(exit)).toBe("TransportError")
    }))

  it.effect("with createUnknownUser: false, a directory user unknown to the store does not get in", () =>
    Effect.gen(function*() {
      const { url: ldapUrl } = yield* SlapdTest.Slapd
      return yield* Effect.gen(function*() {
        const refused = yield* Effect.flip(
          AuthService.authenticate({ username: "bob", password: SlapdTest.fixture.users.bob.password })
        )
        expect((refused as AuthError.AuthenticationFailed).attempts).toMatchObject([{ backend: "ldap", reason: "unknown-user" }])
        expect(yield* userCount).toBe(0)
      }).pipe(Effect.provide(ldapAuth(ldapUrl, { createUnknownUser: false })))
    }))
})

// End to end: a bearer token verified by the real JwtBackend (static JWKS) provisions its subject.
describe("Provisioning through the real JwtBackend (static key)", () => {
  const issuer = "https://login.example.test/"
  const audience = "effect-auth-tests"
  const Claims = Schema.Struct({ sub: Schema.String, preferred_username: Schema.String })
  const strings = (value: unknown) => Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : undefined

  const setup = Effect.gen(function*() {
    const { privateKey, publicKey } = yield* Effect.promise(() => generateKeyPair("RS256", { extractable: true }))
    const jwk = { ...(yield* Effect.promise(() => exportJWK(publicKey))), kid: "k1", alg: "RS256", use: "sig" }
    const JwtLive = Layer.effect(
      JwtBackend.JwtBackend,
      Effect.gen(function*() {
        const users = yield* Provisioning.make({ backendId: "jwt", mirrorGroups: true })
        return yield* JwtBackend.make({
          keys: { jwks: { keys: [jwk] } },
          algorithms: ["RS256"],
          issuer,
          audience,
          claims: JwtBackend.userFromClaims(Claims, (c) => ({
            id: c.sub,
            username: c.preferred_username,
            isActive: true,
            isSuperuser: false
          })),
          provision: (users.hook((claims: JWTPayload, user: User) => ({
            username: user.username,
            email: typeof claims["email"] === "string" ? claims["email"] : undefined,
            groups: strings(claims["groups"])
          }))),
          loadUser: users.loadUser
        })
      })
    )
    const layer = AuthService.layer([JwtBackend.JwtBackend]).pipe(
      Layer.provide(JwtLive),
      Layer.provideMerge(AuthEvents.layer),
      Layer.provideMerge(SqlUserStore.layerSqlite({ filename: ":memory:" }))
    )
    const mint = (claims: JWTPayload) =>
      Effect.promise(() =>
        new SignJWT(claims)
          .setProtectedHeader({ alg: "RS256", kid: "k1" })
          .setIssuer(issuer)
          .setAudience(audience)
          .setIssuedAt()
          .setExpirationTime("10 minutes")
          .sign(privateKey)
      )
    return { layer, mint }
  })

  it.live("a token's subject is created in the store; getUser loads it by its local id", () =>
    Effect.gen(function*() {
      const { layer, mint } = yield* setup
      return yield* Effect.gen(function*() {
        const token = yield* mint({ sub: "idp|8f3a", preferred_username: "olga", email: "olga@EXAMPLE.test", groups: ["ops"] })
        const { backend, user } = yield* AuthService.authenticate({ token })
        expect(backend).toBe("jwt")
        const stored = yield* findUser("olga")
        // the session keeps the local id, not the identity provider's subject
        expect(user.id).toBe(stored.id)
        expect(stored.email).toBe("olga@example.test")
        expect(yield* groupsOf(stored.id)).toEqual(["ops"])
        expect(Option.map(yield* AuthService.getUser("jwt", stored.id), (u) => u.username)).toEqual(Option.some("olga"))

        // a later token with other groups updates the mirror, creates nothing
        yield* AuthService.authenticate({ token: yield* mint({ sub: "idp|8f3a", preferred_username: "olga", groups: ["dev"] }) })
        expect(yield* groupsOf(stored.id)).toEqual(["dev"])
        expect(yield* userCount).toBe(1)

        // deactivated locally: a valid token no longer gets her in
        yield* Effect.flatMap(UserStore.UserStore, (store) => store.setFlags(stored.id, { isActive: false }))
        const refused = yield* Effect.flip(AuthService.authenticate({ token }))
        expect((refused as AuthError.AuthenticationFailed).attempts).toMatchObject([{ backend: "jwt", reason: "inactive-user" }])
        expect(yield* AuthService.getUser("jwt", stored.id)).toEqual(Option.none())
      }).pipe(Effect.provide(layer))
    }))
})
