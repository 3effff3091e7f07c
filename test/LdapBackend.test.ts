import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import * as AuthError from "../src/AuthError.js"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as LdapBackend from "../src/backends/LdapBackend.js"
import * as Lockout from "../src/Lockout.js"
import type { User } from "../src/User.js"
import * as SlapdTest from "./utils/slapd.js"
import { urlProxy } from "./utils/tcpProxy.js"
import { eventually, pending } from "./utils/fibers.js"

const { fixture } = SlapdTest
const { groups, users } = fixture

const creds = (username: string, password: string) => ({ username, password: Redacted.make(password) })

const direct = (url: string): LdapBackend.Options => ({
  url,
  userDnTemplate: `uid=%(user)s,${fixture.peopleDn}`
})

const service = {
  bindDn: fixture.serviceDn,
  bindPassword: Redacted.make(fixture.servicePassword)
}

const search = (url: string, base: string = fixture.peopleDn): LdapBackend.Options => ({
  url,
  ...service,
  userSearch: { base, filter: "(&(objectClass=inetOrgPerson)(uid=%(user)s))" }
})

const permissionsByGroup = {
  [groups.staff]: ["blog.view_post"],
  [groups.editors]: ["blog.add_post", "blog.change_post"],
  // spelled differently from the directory on purpose: DNs compare case- and space-insensitively
  "CN=Admins, OU=Groups, DC=example, DC=org": ["admin.view_logentry"]
}

const full = (url: string): LdapBackend.Options => ({
  ...search(url),
  userAttributes: { email: "mail", firstName: "givenName", lastName: "sn" },
  groups: { type: "groupOfNames", base: fixture.groupsDn },
  denyGroup: groups.banned,
  flagsByGroup: { isStaff: groups.staff, isSuperuser: groups.admins },
  permissionsByGroup
})

const backendFor = (options: LdapBackend.Options) => LdapBackend.make(options).pipe(Effect.orDie)

const login = (options: LdapBackend.Options, username: string, password: string) =>
  Effect.flatMap(backendFor(options), (backend) => backend.authenticate(creds(username, password), undefined))

/** The default directory user carries isStaff beside the BaseUser fields. */
const isStaff = (user: User): unknown => (user as User & { readonly isStaff?: boolean }).isStaff

const failure = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.flip(effect)

const expectNoMatch = (error: unknown, reason: AuthError.NoMatchReason) => {
  expect(error).toBeInstanceOf(AuthError.NoMatch)
  expect((error as AuthError.NoMatch).reason).toBe(reason)
  expect((error as AuthError.NoMatch).backend).toBe("ldap")
}

const expectTransport = (error: unknown, ...secrets: ReadonlyArray<string>) => {
  expect(error).toBeInstanceOf(AuthError.TransportError)
  const text = JSON.stringify(error) + String((error as AuthError.TransportError).cause) + (error as Error).message
  for (const secret of secrets) expect(text).not.toContain(secret)
}

SlapdTest.suite({ timeout: "60 seconds" })("LdapBackend against slapd", (it) => {
  describe("direct bind", () => {
    it.effect("authenticates with the right password, building the user from the directory", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const user = yield* login(
          { ...direct(url), userAttributes: { email: "mail", firstName: "givenName", lastName: "sn" } },
          "alice",
          users.alice.password
        )
        expect(user).toEqual({
          id: "alice",
          username: "alice",
          isActive: true,
          isStaff: false,
          isSuperuser: false,
          email: "alice@example.org",
          firstName: "Alice",
          lastName: "Liddell"
        })
      }))

    it.effect("wrong password → NoMatch(invalid-credentials)", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        expectNoMatch(yield* failure(login(direct(url), "alice", "wrong")), "invalid-credentials")
        expectNoMatch(yield* failure(login(direct(url), "bob", users.alice.password)), "invalid-credentials")
      }))

    it.effect("unknown user → NoMatch(invalid-credentials): a bind cannot tell a missing DN from a wrong password", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        expectNoMatch(yield* failure(login(direct(url), "nobody", "whatever")), "invalid-credentials")
      }))

    it.scoped("empty password → NoMatch before any bind (no unauthenticated bind)", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        expectNoMatch(yield* failure(login(direct(url), "alice", "")), "invalid-credentials")
        expectNoMatch(yield* failure(login(search(url), "alice", "")), "invalid-credentials")
        // against a dead server: had the backend tried to bind, this would be a TransportError
        const dead = yield* SlapdTest.deadUrl
        expectNoMatch(yield* failure(login(direct(dead), "alice", "")), "invalid-credentials")
      }))

    it.effect("takes a DN function, which receives the escaped user name", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const seen: Array<string> = []
        const options: LdapBackend.Options = {
          url,
          userDnTemplate: (escaped) => {
            seen.push(escaped)
            return `uid=${escaped},${fixture.peopleDn}`
          }
        }
        const user = yield* login(options, "bob", users.bob.password)
        expect(user.username).toBe("bob")
        const special = yield* login(options, users.special.uid, users.special.password)
        expect(special.username).toBe(users.special.uid)
        expect(seen).toEqual(["bob", "\\#a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\=i"])
      }))

    it.effect("a bind that succeeds without a readable entry yields no user", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        // the rootdn binds without being an entry
        const error = yield* failure(login({ url, userDnTemplate: `cn=%(user)s,${fixture.baseDn}` }, "admin", fixture.adminPassword))
        expectNoMatch(error, "unknown-user")
      }))
  })

  describe("search, then bind", () => {
    it.effect("finds the user with the service account and binds as them", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const user = yield* login(search(url), "bob", users.bob.password)
        expect(user).toEqual({ id: "bob", username: "bob", isActive: true, isStaff: false, isSuperuser: false })
      }))

    it.effect("takes the user name from the entry (the directory matches case-insensitively)", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const user = yield* login(search(url), "BOB", users.bob.password)
        expect(user.id).toBe("bob")
      }))

    it.effect("wrong password → NoMatch(invalid-credentials), unknown user → NoMatch(unknown-user)", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        expectNoMatch(yield* failure(login(search(url), "bob", "wrong")), "invalid-credentials")
        expectNoMatch(yield* failure(login(search(url), "nobody", "whatever")), "unknown-user")
      }))

    it.effect("a filter that matches several entries matches nobody", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const options: LdapBackend.Options = {
          ...search(url),
          userSearch: { base: fixture.peopleDn, filter: "(|(uid=%(user)s)(uid=bob))" }
        }
        expectNoMatch(yield* failure(login(options, "alice", users.alice.password)), "unknown-user")
      }))

    it.effect("a rejected service account is a TransportError, not the user's fault", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const options: LdapBackend.Options = { ...search(url), bindPassword: Redacted.make("not-the-reader-secret") }
        const error = yield* failure(login(options, "bob", users.bob.password))
        expectTransport(error, "not-the-reader-secret", users.bob.password)
        expect(String((error as AuthError.TransportError).cause)).toContain("service account bind")
      }))
  })

  describe("attributes and groups", () => {
    it.effect("maps attributes; a missing attribute leaves its field out", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const alice = yield* login(full(url), "alice", users.alice.password)
        expect(alice).toMatchObject({ email: "alice@example.org", firstName: "Alice", lastName: "Liddell" })
        const dave = yield* login(full(url), "dave", users.dave.password)
        expect(dave).toEqual({ id: "dave", username: "dave", isActive: true, isStaff: false, isSuperuser: false, lastName: "Nogroup" })
      }))

    it.effect("sets staff and superuser flags from groupOfNames membership", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const alice = yield* login(full(url), "alice", users.alice.password)
        const bob = yield* login(full(url), "bob", users.bob.password)
        const dave = yield* login(full(url), "dave", users.dave.password)
        expect([isStaff(alice), alice.isSuperuser]).toEqual([true, true])
        expect([isStaff(bob), bob.isSuperuser]).toEqual([true, false])
        expect([isStaff(dave), dave.isSuperuser]).toEqual([false, false])
      }))

    it.effect("reads groups from memberOf just the same, in direct-bind mode too", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const options: LdapBackend.Options = {
          ...direct(url),
          groups: { type: "memberOf" },
          flagsByGroup: { isStaff: groups.staff, isSuperuser: [groups.admins] }
        }
        const alice = yield* login(options, "alice", users.alice.password)
        const bob = yield* login(options, "bob", users.bob.password)
        expect([isStaff(alice), alice.isSuperuser]).toEqual([true, true])
        expect([isStaff(bob), bob.isSuperuser]).toEqual([true, false])
        // the special user's DN comes back hex-escaped from slapd; membership still resolves
        const special = yield* login({ ...options, groups: { type: "groupOfNames", base: fixture.groupsDn } }, users.special.uid, users.special.password)
        expect(isStaff(special)).toBe(true)
      }))

    it.effect("requireGroup: non-members get NoMatch(inactive-user), and only after their password checked out", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const options: LdapBackend.Options = { ...full(url), requireGroup: [groups.editors, groups.admins] }
        expect((yield* login(options, "bob", users.bob.password)).username).toBe("bob")
        expect((yield* login(options, "alice", users.alice.password)).username).toBe("alice")
        expectNoMatch(yield* failure(login(options, "dave", users.dave.password)), "inactive-user")
        expectNoMatch(yield* failure(login(options, "dave", "wrong")), "invalid-credentials")
      }))

    it.effect("denyGroup: members get PermissionDenied; a wrong password is still just NoMatch", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const error = yield* failure(login(full(url), "carol", users.carol.password))
        expect(error).toBeInstanceOf(AuthError.PermissionDenied)
        expect((error as AuthError.PermissionDenied).reason).toBe(`member of ${groups.banned}`)
        expectNoMatch(yield* failure(login(full(url), "carol", "wrong")), "invalid-credentials")
        // the deny wins over requireGroup
        const required = yield* failure(login({ ...full(url), requireGroup: groups.admins }, "carol", users.carol.password))
        expect(required).toBeInstanceOf(AuthError.PermissionDenied)
      }))

    it.effect("flagsByGroup.isActive: users outside it are inactive → NoMatch(inactive-user)", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const options: LdapBackend.Options = { ...full(url), flagsByGroup: { isActive: groups.staff } }
        expect((yield* login(options, "bob", users.bob.password)).isActive).toBe(true)
        expectNoMatch(yield* failure(login(options, "dave", users.dave.password)), "inactive-user")
      }))
  })

  describe("permissions by group", () => {
    it.effect("grants the permissions of the user's groups", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const backend = yield* backendFor(full(url))
        const alice = yield* backend.authenticate(creds("alice", users.alice.password), undefined)
        const bob = yield* backend.authenticate(creds("bob", users.bob.password), undefined)
        const dave = yield* backend.authenticate(creds("dave", users.dave.password), undefined)
        expect([...(yield* backend.getAllPermissions!(alice))].sort()).toEqual(["admin.view_logentry", "blog.view_post"])
        expect([...(yield* backend.getAllPermissions!(bob))].sort()).toEqual(["blog.add_post", "blog.change_post", "blog.view_post"])
        expect((yield* backend.getAllPermissions!(dave)).size).toBe(0)
        expect(yield* backend.hasPerm!(bob, "blog.change_post")).toBe(true)
        expect(yield* backend.hasPerm!(alice, "blog.change_post")).toBe(false)
        expect(yield* backend.hasModulePerms!(bob, "blog")).toBe(true)
        expect(yield* backend.hasModulePerms!(bob, "admin")).toBe(false)
        expect(yield* backend.hasModulePerms!(alice, "admin")).toBe(true)
        expect(yield* backend.hasModulePerms!(dave, "blog")).toBe(false)
      }))

    it.effect("gives nothing for objects, to inactive users, or to users another backend produced", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const backend = yield* backendFor(full(url))
        const bob = yield* backend.authenticate(creds("bob", users.bob.password), undefined)
        expect(yield* backend.hasPerm!(bob, "blog.change_post", { id: 1 })).toBe(false)
        expect(yield* backend.hasPerm!({ ...bob, isActive: false }, "blog.change_post")).toBe(false)
        const localBob: User = { id: "7", username: "bob", isActive: true, isSuperuser: false }
        expect(yield* backend.hasPerm!(localBob, "blog.change_post")).toBe(false)
      }))

    it.effect("authorizeAllUsers: looks other backends' users up in the directory by user name", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const backend = yield* backendFor({ ...full(url), authorizeAllUsers: true })
        const localBob: User = { id: "7", username: "bob", isActive: true, isSuperuser: false }
        const localCarol: User = { id: "8", username: "carol", isActive: true, isSuperuser: false }
        const stranger: User = { id: "9", username: "stranger", isActive: true, isSuperuser: false }
        expect(yield* backend.hasPerm!(localBob, "blog.change_post")).toBe(true)
        // denied in the directory: no permissions from it either
        expect((yield* backend.getAllPermissions!(localCarol)).size).toBe(0)
        expect((yield* backend.getAllPermissions!(stranger)).size).toBe(0)
      }))

    it.effect("authorizeAllUsers: only a user name spelled exactly as the entry's gets its groups", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const backend = yield* backendFor({ ...full(url), authorizeAllUsers: true })
        const local = (username: string): User => ({ id: `model-${username}`, username, isActive: true, isSuperuser: false })
        // the directory finds alice's entry by each of these names (case and spaces ignored)
        for (const username of ["ALICE", " Alice", "alice ", "Alice"]) {
          expect((yield* backend.getAllPermissions!(local(username))).size, JSON.stringify(username)).toBe(0)
          expect(yield* backend.hasPerm!(local(username), "admin.view_logentry"), JSON.stringify(username)).toBe(false)
        }
        expect([...(yield* backend.getAllPermissions!(local("alice")))].sort()).toEqual(["admin.view_logentry", "blog.view_post"])
        // getUser maps an id to an entry the same way: no user for another spelling
        for (const id of ["ALICE", " alice", "alice "]) {
          expect(Option.isNone(yield* backend.getUser(id)), JSON.stringify(id)).toBe(true)
        }
        expect(Option.getOrThrow(yield* backend.getUser("alice")).id).toBe("alice")
      }))

    it.effect("answers through AuthService for the user it authenticated", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const auth = yield* AuthService.AuthService
        const { backend, user } = yield* auth.authenticate({ username: "bob", password: users.bob.password })
        expect(backend).toBe("ldap")
        expect(yield* auth.hasPerm(user, "blog.add_post")).toBe(true)
        expect(yield* auth.hasPerm(user, "admin.view_logentry")).toBe(false)
        expect(yield* auth.hasModulePerms(user, "blog")).toBe(true)
        void url
      }).pipe(Effect.provide(
        Layer.unwrapEffect(Effect.map(SlapdTest.Slapd, ({ url }) =>
          AuthService.layer([LdapBackend.LdapBackend]).pipe(
            Layer.provide(LdapBackend.layer(full(url))),
            Layer.provide(AuthEvents.layer)
          )))
      )))
  })

  // The directory matches names as its schema says (caseIgnoreMatch): `alİce` binds as alice. The
  // lockout's key must fold it too, or each spelling is a fresh set of guesses at her password.
  describe("behind a lockout", () => {
    it.effect("every spelling the directory binds as alice counts on her key: a lock holds for all of them", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        // What the lockout guards against: the directory takes these spellings for alice.
        for (const spelling of ["ALICE", "alİce"]) {
          expect((yield* login(direct(url), spelling, users.alice.password)).id, spelling).toBe("alice")
        }
        const auth = yield* Lockout.layerAuthService(AuthService.layer([LdapBackend.LdapBackend])).pipe(
          Layer.provide(LdapBackend.layer(direct(url))),
          Layer.provide(Lockout.layerMemory({ by: "username", limit: 2 })),
          Layer.provide(AuthEvents.layer),
          Layer.build,
          Effect.map((context) => Context.get(context, AuthService.AuthService))
        )
        const attempt = (username: string, password: string) =>
          Effect.match(auth.authenticate({ username, password }), { onFailure: (e) => e._tag, onSuccess: () => "success" })
        expect(yield* attempt("alice", "wrong-1")).toBe("AuthenticationFailed")
        expect(yield* attempt("alİce", "wrong-2")).toBe("AuthenticationFailed")
        for (const spelling of ["alice", "alİce", "ALİCE"]) {
          expect(yield* attempt(spelling, users.alice.password), spelling).toBe("LockedOut")
        }
      }).pipe(Effect.scoped))
  })

  describe("getUser", () => {
    it.effect("search mode: re-reads the user with the service account", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const backend = yield* backendFor(full(url))
        const alice = yield* backend.getUser("alice")
        expect(Option.getOrThrow(alice)).toEqual({
          id: "alice",
          username: "alice",
          isActive: true,
          isStaff: true,
          isSuperuser: true,
          email: "alice@example.org",
          firstName: "Alice",
          lastName: "Liddell"
        })
        expect(yield* backend.hasPerm!(Option.getOrThrow(alice), "admin.view_logentry")).toBe(true)
        expect(Option.isNone(yield* backend.getUser("nobody"))).toBe(true)
        // denied, inactive and malformed ids: no user
        expect(Option.isNone(yield* backend.getUser("carol"))).toBe(true)
        expect(Option.isNone(yield* backend.getUser(""))).toBe(true)
        expect(Option.isNone(yield* backend.getUser("*"))).toBe(true)
        const requiring = yield* backendFor({ ...full(url), requireGroup: groups.admins })
        expect(Option.isNone(yield* requiring.getUser("bob"))).toBe(true)
        expect(Option.isSome(yield* requiring.getUser("alice"))).toBe(true)
      }))

    it.effect("direct mode: none without a service account, a directory read with one", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const bare = yield* backendFor(direct(url))
        expect(Option.isNone(yield* bare.getUser("alice"))).toBe(true)
        const withService = yield* backendFor({ ...direct(url), ...service })
        expect(Option.getOrThrow(yield* withService.getUser("alice")).username).toBe("alice")
        expect(Option.isNone(yield* withService.getUser("nobody"))).toBe(true)
        expect(Option.getOrThrow(yield* withService.getUser(users.special.uid)).username).toBe(users.special.uid)
      }))

    // docs/provisioning.md split the DN by hand (`dn.split(",")[0].split("=")[1]`): slapd's
    // `cn=R&D\2C Paris` became the local group `R&D\2C Paris`, where django-auth-ldap's
    // MIRROR_GROUPS names it `R&D, Paris`.
    it.scoped("groupNames: each group's first RDN value, unescaped, as django-auth-ldap names the groups", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const dn = `uid=ronda,${fixture.peopleDn}`
        yield* SlapdTest.withEntries(url, [
          [dn, { objectClass: "inetOrgPerson", uid: "ronda", cn: "Ronda", sn: "Ronda", userPassword: "ronda-pw" }],
          [`cn=R&D\\, Paris,${fixture.groupsDn}`, { objectClass: "groupOfNames", cn: "R&D, Paris", member: dn }],
          [`cn=a\\=b,${fixture.groupsDn}`, { objectClass: "groupOfNames", cn: "a=b", member: dn }],
          [`cn=Ünïcode+ou=x,${fixture.groupsDn}`, { objectClass: "groupOfNames", cn: "Ünïcode", ou: "x", member: dn }]
        ])
        for (const membership of [{ type: "groupOfNames", base: fixture.groupsDn }, { type: "memberOf" }] as const) {
          const seen: Array<LdapBackend.LdapUser> = []
          const backend = yield* backendFor({
            ...search(url),
            groups: membership,
            provision: (ldap) =>
              Effect.sync(() => {
                seen.push(ldap)
                return { id: ldap.username, username: ldap.username, isActive: true, isSuperuser: false }
              })
          })
          yield* backend.authenticate(creds("ronda", "ronda-pw"), undefined)
          const [ldap] = seen
          expect([...ldap!.groupNames].sort()).toEqual(["R&D, Paris", "a=b", "Ünïcode"].sort())
          // in the order of `groups`, one name for each DN
          expect(ldap!.groupNames.length).toBe(ldap!.groups.length)
          expect(ldap!.groups.some((group) => group.includes("\\"))).toBe(true)
        }
      }))

    it.effect("uses provision at login and loadUser for getUser", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const store = new Map<string, User & { dn: string; groups: ReadonlyArray<string> }>()
        const backend = yield* backendFor({
          ...full(url),
          provision: (external) =>
            Effect.sync(() => {
              const user = {
                id: `local-${external.username}`,
                username: external.username,
                isActive: external.isActive,
                isSuperuser: external.isSuperuser,
                dn: external.dn,
                groups: external.groups
              }
              store.set(user.id, user)
              return user
            }),
          loadUser: (id) => Effect.succeed(Option.fromNullable(store.get(id)))
        })
        const bob = yield* backend.authenticate(creds("bob", users.bob.password), undefined)
        expect(bob).toMatchObject({ id: "local-bob", dn: users.bob.dn, groups: [groups.staff, groups.editors] })
        expect(yield* backend.hasPerm!(bob, "blog.change_post")).toBe(true)
        expect(Option.getOrThrow(yield* backend.getUser("local-bob"))).toBe(bob)
        expect(Option.isNone(yield* backend.getUser("bob"))).toBe(true)
      }))

    it.scoped("with provision and loadUser, the groups of a loaded user are looked up once, on first need", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        // through a proxy the test can cut, to tell a remembered answer from a directory lookup
        const proxy = yield* urlProxy(url, 389)
        const store = new Map<string, User>()
        const backend = yield* backendFor({
          ...full(proxy.url),
          provision: (external) =>
            Effect.sync(() => {
              const user: User = { id: `local-${external.username}`, username: external.username, isActive: true, isSuperuser: false }
              store.set(user.id, user)
              return { ...user }
            }),
          // a fresh object per call, as a database read gives (a new request)
          loadUser: (id) => Effect.sync(() => Option.map(Option.fromNullable(store.get(id)), (user) => ({ ...user })))
        })
        const bob = yield* backend.authenticate(creds("bob", users.bob.password), undefined)
        expect(yield* backend.hasPerm!(bob, "blog.change_post")).toBe(true)
        // the next request: the session's user comes from getUser, i.e. loadUser
        const again = Option.getOrThrow(yield* backend.getUser("local-bob"))
        expect(again).not.toBe(bob)
        expect(yield* backend.hasPerm!(again, "blog.change_post")).toBe(true)
        expect([...(yield* backend.getAllPermissions!(again))].sort()).toEqual(["blog.add_post", "blog.change_post", "blog.view_post"])
        expect(yield* backend.hasModulePerms!(again, "admin")).toBe(false)
        // a user loadUser gives whose name is another spelling of bob's gets nothing from his entry
        store.set("local-BOB", { id: "local-BOB", username: "BOB", isActive: true, isSuperuser: false })
        expect(yield* backend.hasPerm!(Option.getOrThrow(yield* backend.getUser("local-BOB")), "blog.change_post")).toBe(false)

        // with the directory gone, the looked-up user answers from memory: one lookup per object
        const later = Option.getOrThrow(yield* backend.getUser("local-bob"))
        proxy.cut()
        expect(yield* backend.hasPerm!(again, "blog.change_post")).toBe(true)
        // a user object not looked up yet needs the directory: its failure is a TransportError
        expectTransport(yield* failure(backend.hasPerm!(later, "blog.change_post")), users.bob.password, fixture.servicePassword)
        expectTransport(yield* failure(backend.getAllPermissions!(later)))
        // other backends' users are still not looked up (authorizeAllUsers is off)
        const localBob: User = { id: "7", username: "bob", isActive: true, isSuperuser: false }
        expect(yield* backend.hasPerm!(localBob, "blog.change_post")).toBe(false)
      }))

    it.effect("a PermissionDenied from provision stops the login", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const backend = yield* backendFor({
          ...full(url),
          provision: () => Effect.fail(new AuthError.PermissionDenied({ backend: "ldap", reason: "disabled locally" }))
        })
        const error = yield* failure(backend.authenticate(creds("bob", users.bob.password), undefined))
        expect(error).toBeInstanceOf(AuthError.PermissionDenied)
      }))
  })

  describe("an ambiguous search", () => {
    // A filter that finds alice and bob: two entries, so nobody (django-auth-ldap takes exactly one).
    const both = (url: string, bind: { readonly dn: string; readonly password: string }): LdapBackend.Options => ({
      url,
      bindDn: bind.dn,
      bindPassword: Redacted.make(bind.password),
      userSearch: { base: fixture.peopleDn, filter: "(|(uid=%(user)s)(uid=bob))" }
    })
    const reader = { dn: fixture.serviceDn, password: fixture.servicePassword }
    const narrow = { dn: fixture.narrowServiceDn, password: fixture.narrowServicePassword }

    it.effect("is nobody, also when the server cuts the answer to one entry (its size limit for the bound account)", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        for (const bind of [reader, narrow]) {
          expectNoMatch(yield* failure(login(both(url, bind), "alice", users.alice.password)), "unknown-user")
        }
        // the control: under the same limit, a search with one answer finds its user
        const single = { ...both(url, narrow), userSearch: { base: fixture.peopleDn, filter: "(uid=%(user)s)" } }
        expect((yield* login(single, "alice", users.alice.password)).username).toBe("alice")
      }))
  })

  describe("injection", () => {
    const filterPayloads = ["*", "*)(uid=*", "s*", "*o", "admin)(|(uid=*", "sol\\6f", "solo)", "(solo", "solo\u0000", "solo\\", "*)(|(objectClass=*"]

    it.effect("filter payloads cannot widen the user search (a subtree holding only `solo`)", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const options = search(url, fixture.soloDn)
        // the control: the one user there is found
        expect((yield* login(options, "solo", users.solo.password)).username).toBe("solo")
        for (const payload of filterPayloads) {
          const result = yield* Effect.either(login(options, payload, users.solo.password))
          expect(Either.isLeft(result), `payload ${JSON.stringify(payload)}`).toBe(true)
          expectNoMatch(Either.getLeft(result).pipe(Option.getOrThrow), "unknown-user")
        }
      }))

    it.effect("filter payloads cannot widen the group search", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        // a user whose DN is full of filter specials is in no group, so stays no staff
        const stars = yield* login(full(url), users.stars.uid, users.stars.password)
        expect(isStaff(stars)).toBe(false)
        expect((yield* backendFor(full(url)).pipe(Effect.flatMap((b) => b.getAllPermissions!(stars)))).size).toBe(0)
      }))

    it.effect("user names made of filter and DN specials match themselves literally", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        for (const options of [search(url), direct(url)]) {
          expect((yield* login(options, users.stars.uid, users.stars.password)).username).toBe(users.stars.uid)
          expect((yield* login(options, users.special.uid, users.special.password)).username).toBe(users.special.uid)
          // and nobody else's password opens them
          expectNoMatch(yield* failure(login(options, users.stars.uid, users.alice.password)), "invalid-credentials")
        }
      }))

    it.effect("DN payloads cannot change the bind DN", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        // each of these, unescaped, is a DN slapd resolves to alice (\61 = "a", LDAPv2 quoting)
        // or rejects as malformed (a TransportError); escaped, each names a user that does not exist
        const payloads = [
          "\\61lice",
          "alic\\65",
          "\"alice\"",
          "#0c05616c696365",
          "alice,ou=people",
          "alice+uid=bob",
          "alice\u0000",
          "alice;",
          "<alice>",
          "alice\\",
          "alice=",
          ",alice",
          "alice,"
        ]
        for (const payload of payloads) {
          const result = yield* Effect.either(login(direct(url), payload, users.alice.password))
          expect(Either.isLeft(result), `payload ${JSON.stringify(payload)}`).toBe(true)
          expectNoMatch(Either.getLeft(result).pipe(Option.getOrThrow), "invalid-credentials")
        }
      }))

    it.effect("spaces around a name are escaped and stay the same entry (LDAP ignores them when matching)", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        for (const name of [" alice", "alice ", " alice "]) {
          const user = yield* login(direct(url), name, users.alice.password)
          // the id comes from the entry, never the typed spelling
          expect(user.id).toBe("alice")
        }
      }))
  })

  describe("transport", () => {
    it.scoped("a server that is down → TransportError without the password", () =>
      Effect.gen(function*() {
        const url = yield* SlapdTest.deadUrl
        const error = yield* failure(login(direct(url), "alice", "p4ssw0rd-not-in-errors"))
        expectTransport(error, "p4ssw0rd-not-in-errors")
        expect(String((error as AuthError.TransportError).cause)).toMatch(/ECONNREFUSED/)
        const searchError = yield* failure(login(search(url), "alice", "p4ssw0rd-not-in-errors"))
        expectTransport(searchError, "p4ssw0rd-not-in-errors", fixture.servicePassword)
        const getUserError = yield* failure(Effect.flatMap(backendFor(search(url)), (b) => b.getUser("alice")))
        expectTransport(getUserError, fixture.servicePassword)
      }))

    it.scoped("a server that never answers is cut by the operation timeout → TransportError", () =>
      Effect.gen(function*() {
        const url = yield* SlapdTest.hangingServer
        const options = { connectTimeout: "2 seconds", timeout: "300 millis" } as const
        const error = yield* failure(login({ ...direct(url), ...options }, "alice", "secret-pw"))
        expectTransport(error, "secret-pw")
        expect(String((error as AuthError.TransportError).cause)).toMatch(/timed out/i)
        const searchError = yield* failure(login({ ...search(url), ...options }, "alice", "secret-pw"))
        expectTransport(searchError, "secret-pw", fixture.servicePassword)
      }))

    it.scoped("a hanging call is also cut by the policy timeout of AuthService (TestClock)", () =>
      Effect.gen(function*() {
        const url = yield* SlapdTest.hangingServer
        const layer = AuthService.layer([LdapBackend.LdapBackend]).pipe(
          Layer.provide(LdapBackend.layer({ ...direct(url), policy: { timeout: "3 seconds" } })),
          Layer.provide(AuthEvents.layer)
        )
        const fiber = yield* AuthService.authenticate(creds("alice", "secret-pw")).pipe(
          Effect.provide(layer),
          Effect.flip,
          Effect.fork
        )
        yield* Effect.yieldNow()
        yield* TestClock.adjust("4 seconds")
        const error = yield* Fiber.join(fiber)
        expectTransport(error, "secret-pw")
        expect(String((error as AuthError.TransportError).cause)).toMatch(/timed out after 3s/)
      }))

    it.effect("a user name that spells a SASL mechanism is still a simple bind: NoMatch, never a SASL bind", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        // a DN function passing the name through (a directory that binds by name, as AD's UPNs)
        const passThrough: LdapBackend.Options = { url, userDnTemplate: (escaped) => escaped }
        for (const name of ["EXTERNAL", "PLAIN", "DIGEST-MD5", "SCRAM-SHA-1", "alice"]) {
          // slapd takes none of them as a DN (invalidDNSyntax): a name that names nobody here
          expectNoMatch(yield* failure(login(passThrough, name, "x-pw")), "invalid-credentials")
        }
      }))

    it.effect("StartTLS is asked for before anything else (this slapd has no TLS → TransportError)", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const error = yield* failure(login({ ...direct(url), startTls: true, tlsOptions: { rejectUnauthorized: true } }, "alice", users.alice.password))
        expectTransport(error, users.alice.password)
        expect(String((error as AuthError.TransportError).cause)).toMatch(/^startTLS: /)
      }))

    it.effect("ldaps:// speaks TLS from the first byte (a plain server → TransportError)", () =>
      Effect.gen(function*() {
        const { port } = yield* SlapdTest.Slapd
        const error = yield* failure(
          login({ ...direct(`ldaps://127.0.0.1:${port}`), timeout: "2 seconds", connectTimeout: "2 seconds", tlsOptions: { rejectUnauthorized: false } }, "alice", users.alice.password)
        )
        expectTransport(error, users.alice.password)
      }))

    it.scoped("falls through a down directory under onTransportError: fallthrough → BackendUnavailable", () =>
      Effect.gen(function*() {
        const url = yield* SlapdTest.deadUrl
        const layer = AuthService.layer([LdapBackend.LdapBackend]).pipe(
          Layer.provide(LdapBackend.layer({ ...direct(url), policy: { onTransportError: "fallthrough" } })),
          Layer.provide(AuthEvents.layer)
        )
        const error = yield* failure(AuthService.authenticate(creds("alice", "pw")).pipe(Effect.provide(layer)))
        expect(error).toBeInstanceOf(AuthError.BackendUnavailable)
        const strict = AuthService.layer([LdapBackend.LdapBackend]).pipe(
          Layer.provide(LdapBackend.layer(direct(url))),
          Layer.provide(AuthEvents.layer)
        )
        expect(yield* failure(AuthService.authenticate(creds("alice", "pw")).pipe(Effect.provide(strict)))).toBeInstanceOf(
          AuthError.TransportError
        )
      }))
  })

  describe("layers and configuration", () => {
    it.effect("layerConfig reads url, bind DN and a redacted bind password from Config", () =>
      Effect.gen(function*() {
        const { url } = yield* SlapdTest.Slapd
        const layer = LdapBackend.layerConfig({
          url: Config.string("LDAP_URL"),
          bindDn: Config.string("LDAP_BIND_DN"),
          bindPassword: Config.redacted("LDAP_BIND_PASSWORD"),
          userSearch: { base: Config.string("LDAP_USER_BASE") },
          timeout: Config.duration("LDAP_TIMEOUT")
        })
        const provider = ConfigProvider.fromMap(
          new Map([
            ["LDAP_URL", url],
            ["LDAP_BIND_DN", fixture.serviceDn],
            ["LDAP_BIND_PASSWORD", fixture.servicePassword],
            ["LDAP_USER_BASE", fixture.peopleDn],
            ["LDAP_TIMEOUT", "5 seconds"]
          ])
        )
        const user = yield* Effect.flatMap(LdapBackend.LdapBackend, (backend) =>
          backend.authenticate(creds("bob", users.bob.password), undefined)).pipe(
            Effect.provide(layer),
            Effect.withConfigProvider(provider)
          )
        expect(user.id).toBe("bob")
        const backend = yield* LdapBackend.LdapBackend.pipe(Effect.provide(layer), Effect.withConfigProvider(provider))
        expect(backend.id).toBe("ldap")
      }))
  })
})

// LDAPMessage { messageID (the request's), bindResponse { resultCode other (80), matchedDN "",
// diagnosticMessage } }: a server that answers a bind with a message of its own.
const bindAnswer = (diagnostic: string) => (request: Buffer) => {
  const text = Buffer.from(diagnostic, "utf8")
  const result = Buffer.concat([Buffer.from([0x0a, 0x01, 0x50, 0x04, 0x00, 0x04, text.length]), text])
  const op = Buffer.concat([Buffer.from([0x61, result.length]), result])
  return Buffer.concat([Buffer.from([0x30, op.length + 3, 0x02, 0x01, request[4]!]), op])
}

describe("LdapBackend against peers that misbehave", () => {
  it.scopedLive("a peer that grants StartTLS and never starts the TLS handshake is cut by the timeouts → TransportError", () =>
    Effect.gen(function*() {
      const url = yield* SlapdTest.startTlsStallingServer
      const options = { ...direct(url), startTls: true, connectTimeout: "300 millis", timeout: "200 millis" } as const
      const error = yield* failure(login(options, "alice", "secret-pw").pipe(
        // (before the handshake had a deadline, this call never ended)
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "still waiting after 10 s" })
      ))
      expectTransport(error, "secret-pw")
      // The handshake's deadline (connectTimeout + timeout) ends it. On an event loop too slow for
      // 300 and 200 ms, ldapts's own connect or request timer may end the StartTLS first: a timeout
      // of the StartTLS all the same, never another failure.
      expect(String((error as AuthError.TransportError).cause)).toMatch(
        /^startTLS: (no TLS connection within 500 ms \(timed out\)|Connection timeout|ExtendedRequest: Operation timed out)$/
      )
    }))

  it.scoped("a socket error is reported as it is, whatever the password spells", () =>
    Effect.gen(function*() {
      const url = yield* SlapdTest.deadUrl
      const port = new URL(url).port
      for (const password of ["7", "127.0.0.1", "ECONNREFUSED", port]) {
        const error = yield* failure(login(direct(url), "alice", password))
        expect(error).toBeInstanceOf(AuthError.TransportError)
        // no mark where the password's text was: that would spell it out of a known message
        expect((error as AuthError.TransportError).cause).toBe(`user bind: connect ECONNREFUSED 127.0.0.1:${port}`)
      }
    }))

  it.scopedLive("a server message that holds the password is withheld whole", () =>
    Effect.gen(function*() {
      const url = yield* SlapdTest.silentServer(bindAnswer("the password hunter2 is not welcome here"))
      for (const password of ["hunter2", "e", "welcome here"]) {
        const error = yield* failure(login(direct(url), "alice", password))
        expect(error).toBeInstanceOf(AuthError.TransportError)
        expect((error as AuthError.TransportError).cause).toBe("user bind: (the message is withheld: it contains a password)")
      }
      // a message without the password is kept
      const error = yield* failure(login(direct(url), "alice", "correct-horse"))
      expect(String((error as AuthError.TransportError).cause)).toMatch(/^user bind: the password hunter2 is not welcome here/)
    }))
})

describe("LdapBackend's bound on calls in flight (maxConcurrent, maxWaiting)", () => {
  const isBusy = (error: unknown) => {
    expectTransport(error, "secret-pw", fixture.servicePassword)
    expect(String((error as AuthError.TransportError).cause)).toMatch(/^busy: /)
  }
  const isTimedOut = (error: unknown) => {
    expectTransport(error, "secret-pw", fixture.servicePassword)
    expect(String((error as AuthError.TransportError).cause)).toMatch(/timed out/i)
  }

  // (before the bound, every login opened its connection at once: 2000 logins against a directory
  // that never answers held 2000 sockets and binds there for the whole timeout)
  it.scopedLive("against a directory that never answers, a call past maxConcurrent + maxWaiting fails at once with a busy TransportError, without connecting; a call that ends or is interrupted gives its turn back", () =>
    Effect.gen(function*() {
      const directory = yield* SlapdTest.silentServerCounting()
      const backend = yield* backendFor({
        ...search(directory.url),
        maxConcurrent: 2,
        maxWaiting: 1,
        connectTimeout: "2 seconds",
        timeout: "1 second"
      })
      const attempt = (name: string) => backend.authenticate(creds(name, "secret-pw"), undefined)
      const fork = (name: string) => Effect.fork(Effect.flip(attempt(name)))

      // two logins connect, a third waits for a turn
      const first = yield* fork("user0")
      const second = yield* fork("user1")
      const third = yield* fork("user2")
      yield* eventually(() => directory.accepted() >= 2)
      yield* Effect.sleep("100 millis")
      expect(directory.accepted()).toBe(2)
      expect(directory.open()).toBe(2)

      // the fourth is refused at once, while the others are still pending: no connection, no wait
      const startedAt = performance.now()
      isBusy(yield* failure(attempt("user3")))
      expect(performance.now() - startedAt).toBeLessThan(200)
      // getUser looks the user up on a connection of its own: counted and refused alike
      isBusy(yield* failure(backend.getUser("alice")))
      expect(directory.accepted()).toBe(2)
      for (const fiber of [first, second, third]) expect(yield* pending(fiber)).toBe(true)

      // an interrupted login gives its turn back: the waiting one connects, and one more may wait
      yield* Fiber.interrupt(first)
      yield* eventually(() => directory.accepted() >= 3)
      expect(directory.accepted()).toBe(3)
      const fourth = yield* fork("user4")
      yield* Effect.sleep("50 millis")
      expect(yield* pending(fourth)).toBe(true)
      isBusy(yield* failure(attempt("user5")))
      // so does an interrupted waiter
      yield* Fiber.interrupt(fourth)
      const fifth = yield* fork("user6")
      yield* Effect.sleep("50 millis")
      expect(yield* pending(fifth)).toBe(true)

      // the running ones end at their timeout; the waiter gets its turn and ends at its own
      for (const fiber of [second, third, fifth]) isTimedOut(yield* Fiber.join(fiber))
      expect(directory.accepted()).toBe(4)
      // every turn is back: a new login connects again (and times out, not busy)
      isTimedOut(yield* failure(attempt("user7")))
      expect(directory.accepted()).toBe(5)
    }))

  it.effect("maxConcurrent and maxWaiting must be counts: anything else is an AuthConfigError", () =>
    Effect.gen(function*() {
      const url = "ldap://127.0.0.1:389"
      const refused = (options: Partial<LdapBackend.Options>, message: string) =>
        Effect.map(Effect.either(LdapBackend.make({ ...direct(url), ...options })), (result) => {
          expect(result._tag, JSON.stringify(options)).toBe("Left")
          const error = Either.getLeft(result).pipe(Option.getOrThrow)
          expect(error).toBeInstanceOf(AuthError.AuthConfigError)
          expect(error.message).toContain(message)
        })
      for (const maxConcurrent of [0, -1, 1.5, Number.NaN, Infinity]) {
        yield* refused({ maxConcurrent }, "maxConcurrent must be a positive integer")
      }
      for (const maxWaiting of [-1, 0.5, Number.NaN, Infinity]) {
        yield* refused({ maxWaiting }, "maxWaiting must be a non-negative integer")
      }
      // 0 waiting is a bound too: whatever cannot connect at once is refused
      yield* LdapBackend.make({ ...direct(url), maxConcurrent: 1, maxWaiting: 0 })
      const layerError = yield* Layer.build(LdapBackend.layer({ ...direct(url), maxConcurrent: 0 })).pipe(Effect.scoped, Effect.flip)
      expect(layerError).toBeInstanceOf(AuthError.AuthConfigError)
    }))
})

describe("LdapBackend configuration", () => {
  const url = "ldap://127.0.0.1:389"
  const configError = (options: LdapBackend.Options) =>
    Effect.map(Effect.flip(LdapBackend.make(options)), (error) => {
      expect(error).toBeInstanceOf(AuthError.AuthConfigError)
      return error.message
    })

  it.effect("rejects unusable options with AuthConfigError", () =>
    Effect.gen(function*() {
      expect(yield* configError({ url })).toMatch(/userDnTemplate .* or userSearch/)
      expect(yield* configError({ ...direct(url), userSearch: { base: "dc=x" } })).toMatch(/not both/)
      expect(yield* configError({ url: "http://x", userDnTemplate: "uid=%(user)s,dc=x" })).toMatch(/ldap:\/\//)
      expect(yield* configError({ url, userDnTemplate: "uid=alice,dc=x" })).toMatch(/%\(user\)s/)
      expect(yield* configError({ url, userSearch: { base: "dc=x", filter: "(uid=%(user)s" } })).toMatch(/not an LDAP filter/)
      expect(yield* configError({ url, userSearch: { base: "dc=x", filter: "(uid=alice)" } })).toMatch(/%\(user\)s/)
      expect(yield* configError({ ...direct(url), bindDn: "cn=x,dc=x" })).toMatch(/go together/)
      expect(yield* configError({ ...direct(url), bindDn: "cn=x,dc=x", bindPassword: Redacted.make("") })).toMatch(/must not be empty/)
      expect(yield* configError({ ...direct(url), requireGroup: "cn=staff,dc=x" })).toMatch(/need `groups`/)
      expect(yield* configError({ ...direct(url), groups: { type: "memberOf" }, denyGroup: "not a dn" })).toMatch(/not a DN/)
      expect(yield* configError({ ...direct(url), groups: { type: "memberOf" }, permissionsByGroup: { "cn=a,dc=x": ["nodot"] } })).toMatch(
        /app_label\.codename/
      )
      expect(yield* configError({ ...direct(url), userAttributes: { id: "uid" } })).toMatch(/cannot set "id"/)
      expect(yield* configError({ ...direct("ldaps://x"), startTls: true })).toMatch(/startTls/)
      // TLS options that a plain ldap:// connection would never use (the binds in clear)
      expect(yield* configError({ ...direct("ldap://x"), tlsOptions: { rejectUnauthorized: true } })).toMatch(/tlsOptions/)
      expect(yield* configError({ ...direct(url), authorizeAllUsers: true })).toMatch(/authorizeAllUsers/)
      expect(yield* configError({ ...direct(url), timeout: -1 })).toMatch(/timeout/)
    }))

  it.effect("passes the policy through and defaults the id to ldap", () =>
    Effect.gen(function*() {
      const backend = yield* LdapBackend.make({ ...direct(url), policy: { onTransportError: "fallthrough", timeout: "2 seconds" } })
      expect(backend.id).toBe("ldap")
      expect(backend.policy.onTransportError).toBe("fallthrough")
      const named = yield* LdapBackend.make({ ...direct(url), id: "corp-ldap" })
      expect(named.id).toBe("corp-ldap")
      expect(named.policy.onTransportError).toBe("fail")
      // no permission options, no permission methods: AuthService skips the backend for them
      expect(named.hasPerm).toBeUndefined()
    }))
})
