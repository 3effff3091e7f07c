// AuthService.explain: hasPerm's decision with the trail of the fold, and object permissions
// (django-guardian's shape) on the memory, SQLite and PostgreSQL stores.
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as AuthBackend from "../src/AuthBackend.js"
import * as AuthError from "../src/AuthError.js"
import * as AuthService from "../src/AuthService.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as ObjectPermissionBackend from "../src/backends/ObjectPermissionBackend.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as ObjectPermissions from "../src/ObjectPermissions.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as Permissions from "../src/Permissions.js"
import * as SqlObjectPermissions from "../src/SqlObjectPermissions.js"
import * as TestAuth from "../src/testing/TestAuth.js"
import type { User } from "../src/User.js"
import * as UserStore from "../src/UserStore.js"
import { hostile } from "./utils/hostile.js"
import * as Postgres from "./utils/postgres.js"

// A directory that vetoes one permission for everybody (Django: raise PermissionDenied in has_perm).
const veto = AuthBackend.make({
  id: "policy",
  credentials: Schema.Struct({ never: Schema.Literal("x") }),
  authenticate: () => Effect.fail(new AuthError.NoMatch({ backend: "policy", reason: "unsupported-credentials" })),
  getUser: () => Effect.succeedNone,
  hasPerm: (_user, perm) =>
    perm === "payroll.view_salary"
      ? Effect.fail(new AuthError.PermissionDenied({ backend: "policy", reason: "salaries are HR's only" }))
      : Effect.succeed(false)
})

const app = (objects: Layer.Layer<ObjectPermissions.ObjectPermissions, unknown>) =>
  TestAuth.layer([veto, ModelBackend.ModelBackend, ObjectPermissionBackend.ObjectPermissionBackend]).pipe(
    Layer.provideMerge(Layer.merge(ModelBackend.layer(), ObjectPermissionBackend.layer())),
    Layer.provideMerge(Layer.mergeAll(MemoryUserStore.layer, PasswordHasher.layerTest, objects))
  )

const asUser = (stored: UserStore.StoredUser) => stored as unknown as User

const people = Effect.gen(function*() {
  const store = yield* UserStore.UserStore
  const alice = yield* store.create({ username: "alice" })
  const bob = yield* store.create({ username: "bob" })
  const root = yield* store.create({ username: "root", isSuperuser: true })
  const gone = yield* store.create({ username: "gone", isActive: false })
  yield* store.grantPermission(alice.id, "reports.view_report")
  yield* store.createGroup("analysts")
  yield* store.createGroup("auditors")
  yield* store.grantGroupPermission("analysts", "reports.export_report")
  yield* store.grantGroupPermission("auditors", "reports.export_report")
  yield* store.addToGroup(bob.id, "analysts")
  yield* store.addToGroup(bob.id, "auditors")
  yield* store.grantPermission(gone.id, "reports.view_report")
  return { alice: asUser(alice), bob: asUser(bob), root: asUser(root), gone: asUser(gone) }
})

const suite = (name: string, objects: () => Layer.Layer<ObjectPermissions.ObjectPermissions, unknown>, skip = false) =>
  describe.skipIf(skip)(`explain, object permissions on ${name}`, () => {
    it.effect("a user permission: the model backend grants, after the veto backend abstained", () =>
      Effect.gen(function*() {
        const { alice } = yield* people
        const explanation = yield* AuthService.explain(alice, "reports.view_report")
        expect(explanation).toEqual({
          username: "alice",
          perm: "reports.view_report",
          object: undefined,
          granted: true,
          decidedBy: "model",
          steps: [
            { backend: "policy", answer: "abstain", reasons: [] },
            { backend: "model", answer: "grant", reasons: ["user permission"] }
          ]
        })
        expect(explanation.granted).toBe(yield* AuthService.hasPerm(alice, "reports.view_report"))
        expect(Permissions.describe(explanation)).toEqual([
          "alice may reports.view_report: granted by model",
          "  policy: abstain",
          "  model: grant (user permission)"
        ])
      }).pipe(Effect.provide(app(objects()))))

    it.effect("a group permission names every group it comes through", () =>
      Effect.gen(function*() {
        const { bob } = yield* people
        const explanation = yield* AuthService.explain(bob, "reports.export_report")
        expect(explanation.granted).toBe(true)
        expect(explanation.steps[1]).toEqual({ backend: "model", answer: "grant", reasons: ["via group analysts, auditors"] })
      }).pipe(Effect.provide(app(objects()))))

    it.effect("no grant anywhere: every backend abstains, with its reason", () =>
      Effect.gen(function*() {
        const { bob } = yield* people
        const explanation = yield* AuthService.explain(bob, "reports.view_report")
        expect(explanation.granted).toBe(false)
        expect(explanation.decidedBy).toBeUndefined()
        expect(explanation.steps.map((s) => [s.backend, s.answer, s.reasons])).toEqual([
          ["policy", "abstain", []],
          ["model", "abstain", ["neither the user nor its groups hold it"]],
          ["object", "abstain", ["no object, or one this backend does not know"]]
        ])
        expect(Permissions.describe(explanation)[0]).toBe("bob may not reports.view_report: refused: no backend granted it")
      }).pipe(Effect.provide(app(objects()))))

    it.effect("a veto stops the fold: later backends are not asked", () =>
      Effect.gen(function*() {
        const { alice } = yield* people
        const store = yield* UserStore.UserStore
        yield* store.grantPermission(alice.id, "payroll.view_salary")
        const explanation = yield* AuthService.explain(alice, "payroll.view_salary")
        expect(explanation).toMatchObject({ granted: false, decidedBy: "policy" })
        expect(explanation.steps).toEqual([{ backend: "policy", answer: "deny", reasons: ["salaries are HR's only"] }])
        expect(yield* AuthService.hasPerm(alice, "payroll.view_salary")).toBe(false)
      }).pipe(Effect.provide(app(objects()))))

    it.effect("a superuser needs nobody; an inactive user holds nothing", () =>
      Effect.gen(function*() {
        const { gone, root } = yield* people
        const su = yield* AuthService.explain(root, "payroll.view_salary")
        expect(su).toMatchObject({ granted: true, decidedBy: "superuser" })
        const inactive = yield* AuthService.explain(gone, "reports.view_report")
        expect(inactive.granted).toBe(false)
        expect(inactive.steps[1]).toEqual({ backend: "model", answer: "abstain", reasons: ["inactive user: no permissions"] })
        expect(inactive.steps[2]!.reasons).toEqual(["inactive user: no object permissions"])
      }).pipe(Effect.provide(app(objects()))))

    it.effect("object permissions: a grant to the user or to a group on one object, and on no other", () =>
      Effect.gen(function*() {
        const { alice, bob } = yield* people
        const grants = yield* ObjectPermissions.ObjectPermissions
        const q3 = ObjectPermissions.ref("reports.report", 3)
        const q4 = ObjectPermissions.ref("reports.report", 4)
        yield* grants.grantUser(alice.id, "reports.change_report", q3)
        yield* grants.grantUser(alice.id, "reports.change_report", q3) // twice: no error
        yield* grants.grantGroup("auditors", "reports.change_report", q4)
        expect(yield* AuthService.hasPerm(alice, "reports.change_report", q3)).toBe(true)
        expect(yield* AuthService.hasPerm(alice, "reports.change_report", q4)).toBe(false)
        expect(yield* AuthService.hasPerm(alice, "reports.change_report")).toBe(false) // no global grant
        expect(yield* AuthService.hasPerm(bob, "reports.change_report", q4)).toBe(true)
        expect(yield* AuthService.hasPerm(bob, "reports.change_report", q3)).toBe(false)
        expect([...(yield* AuthService.getAllPermissions(alice, q3))]).toEqual(["reports.change_report"])

        const viaGroup = yield* AuthService.explain(bob, "reports.change_report", q4)
        expect(viaGroup).toMatchObject({ granted: true, decidedBy: "object", object: "reports.report:4" })
        expect(viaGroup.steps.map((s) => s.answer)).toEqual(["abstain", "abstain", "grant"])
        expect(viaGroup.steps[1]!.reasons).toEqual(["the model backend holds no object permissions"])
        expect(viaGroup.steps[2]!.reasons).toEqual(["granted on this object to group auditors"])
        const own = yield* AuthService.explain(alice, "reports.change_report", q3)
        expect(own.steps[2]!.reasons).toEqual(["granted to the user on this object"])

        yield* grants.revokeUser(alice.id, "reports.change_report", q3)
        expect(yield* AuthService.hasPerm(alice, "reports.change_report", q3)).toBe(false)
        yield* grants.revokeGroup("auditors", "reports.change_report", q4)
        expect(yield* AuthService.hasPerm(bob, "reports.change_report", q4)).toBe(false)
      }).pipe(Effect.provide(app(objects()))))

    it.effect("another backend's user with a store user's id holds none of that user's permissions", () =>
      Effect.gen(function*() {
        const { alice, bob } = yield* people
        const grants = yield* ObjectPermissions.ObjectPermissions
        const q3 = ObjectPermissions.ref("reports.report", 3)
        yield* grants.grantUser(alice.id, "reports.change_report", q3)
        yield* grants.grantGroup("analysts", "reports.change_report", q3)
        // An SSO subject "1" (a JWT `sub`), or bob's id under another name: not the store's users.
        const sso: User = { id: alice.id, username: "mallory@idp", isActive: true, isSuperuser: false }
        const posing: User = { id: bob.id, username: "carol", isActive: true, isSuperuser: true }
        for (const stranger of [sso, posing]) {
          expect(yield* AuthService.hasPerm(stranger, "reports.view_report")).toBe(stranger.isSuperuser)
          expect(yield* AuthService.hasPerm(stranger, "reports.export_report")).toBe(stranger.isSuperuser)
          expect(yield* AuthService.hasModulePerms(stranger, "reports")).toBe(stranger.isSuperuser)
          expect(yield* AuthService.hasPerm(stranger, "reports.change_report", q3)).toBe(stranger.isSuperuser)
          expect([...(yield* AuthService.getAllPermissions(stranger))]).toEqual([])
          expect([...(yield* AuthService.getAllPermissions(stranger, q3))]).toEqual([])
        }
        const explained = yield* AuthService.explain(sso, "reports.view_report")
        expect(explained.steps[1]).toEqual({
          backend: "model",
          answer: "abstain",
          reasons: ["not a user of this store (another backend's id)"]
        })
        // The same id and name is the store's user, as a user an external backend provisioned is:
        // a copy of the row holds the row's permissions.
        const copy: User = { ...alice }
        expect(yield* AuthService.hasPerm(copy, "reports.view_report")).toBe(true)
        expect(yield* AuthService.hasPerm(copy, "reports.change_report", q3)).toBe(true)
      }).pipe(Effect.provide(app(objects()))))

    // An untyped caller's user that throws when read died: `isActiveSuperuser` read `isActive` (a
    // Proxy), and every backend reads `id` (a getter that throws on it alone).
    it.effect("a user that is none or cannot be read holds nothing, as an inactive user: false, empty, explained, never a defect", () =>
      Effect.gen(function*() {
        const { alice } = yield* people
        const grants = yield* ObjectPermissions.ObjectPermissions
        const q3 = ObjectPermissions.ref("reports.report", 3)
        yield* grants.grantUser(alice.id, "reports.change_report", q3)
        const auth = yield* AuthService.AuthService
        const throwing = () => {
          throw new Error("hostile")
        }
        const revoked = Proxy.revocable({ ...alice }, {})
        revoked.revoke()
        const idThrows = Object.defineProperty({ ...alice }, "id", { get: throwing })
        const superIdThrows = Object.defineProperty({ ...alice, isSuperuser: true }, "id", { get: throwing })
        const nobodies: ReadonlyArray<unknown> = [null, 42, "alice", hostile(), revoked.proxy, idThrows, superIdThrows]
        for (const [i, nobody] of nobodies.entries()) {
          const user = nobody as User
          // (each asked inside `suspend`: a throw at the call is a defect here, not a test crash)
          const answers = yield* Effect.all([
            () => auth.hasPerm(user, "reports.view_report"),
            () => auth.hasPerm(user, "reports.change_report", q3),
            () => auth.hasPerms(user, ["reports.view_report"]),
            () => auth.hasModulePerms(user, "reports"),
            () => Effect.map(auth.getAllPermissions(user), (perms) => perms.size),
            () => Effect.map(auth.getAllPermissions(user, q3), (perms) => perms.size),
            () => Effect.map(auth.getUserPermissions(user), (perms) => perms.size),
            () => Effect.map(auth.getGroupPermissions(user), (perms) => perms.size)
          ].map((ask) => Effect.suspend<boolean | number, unknown, never>(ask)))
          expect(answers, String(i)).toEqual([false, false, false, false, 0, 0, 0, 0])
          const explained = yield* Effect.suspend(() => auth.explain(user, "reports.change_report", q3))
          expect(explained, String(i)).toEqual({
            username: "",
            perm: "reports.change_report",
            object: "reports.report:3",
            granted: false,
            decidedBy: undefined,
            steps: [{ backend: "user", answer: "abstain", reasons: ["no user that can be read: no permissions"] }]
          })
        }
        // the request cache keys answers by the user object: a Proxy is no trouble to it either
        expect(yield* Permissions.withRequestCache(Effect.suspend(() => auth.hasPerm(hostile(), "reports.view_report"))))
          .toBe(false)
        expect(yield* auth.hasPerm(alice, "reports.change_report", q3)).toBe(true)
      }).pipe(Effect.provide(app(objects()))))

    // An untyped caller's Proxy as `obj` died in ObjectPermissions.refOf (and, for a superuser,
    // threw out of `explain` at the call, naming the object).
    it.effect("an object that cannot be read (a Proxy whose every trap throws) is none the backend knows: false, an abstention", () =>
      Effect.gen(function*() {
        const { alice, root } = yield* people
        const grants = yield* ObjectPermissions.ObjectPermissions
        yield* grants.grantUser(alice.id, "reports.change_report", ObjectPermissions.ref("reports.report", 3))
        const auth = yield* AuthService.AuthService
        const obj = hostile()
        expect(yield* Effect.suspend(() => auth.hasPerm(alice, "reports.change_report", obj))).toBe(false)
        expect(yield* Effect.suspend(() => auth.hasPerms(alice, ["reports.change_report"], obj))).toBe(false)
        expect([...(yield* Effect.suspend(() => auth.getAllPermissions(alice, obj)))]).toEqual([])
        const explained = yield* Effect.suspend(() => auth.explain(alice, "reports.change_report", obj))
        expect(explained).toMatchObject({ granted: false, object: "an object" })
        expect(explained.steps.map((s) => [s.backend, s.answer, s.reasons])).toEqual([
          ["policy", "abstain", []],
          ["model", "abstain", ["the model backend holds no object permissions"]],
          ["object", "abstain", ["no object, or one this backend does not know"]]
        ])
        expect(yield* Effect.suspend(() => auth.explain(root, "reports.change_report", obj))).toMatchObject({
          granted: true,
          object: "an object"
        })
      }).pipe(Effect.provide(app(objects()))))

    it.effect("bad grants are typed errors, nothing is written", () =>
      Effect.gen(function*() {
        const grants = yield* ObjectPermissions.ObjectPermissions
        const notPerm = yield* Effect.flip(grants.grantUser("1", "nodot", ObjectPermissions.ref("reports.report", 1)))
        expect(notPerm._tag).toBe("ObjectPermissionsError")
        const notRef = yield* Effect.flip(grants.grantUser("1", "reports.view_report", ObjectPermissions.ref("report", 1)))
        expect(notRef._tag).toBe("ObjectPermissionsError")
        // From untyped callers: JSON.stringify threw on a bigint permission and on a Proxy; the
        // Schema check threw on a Proxy as the object.
        const ref = ObjectPermissions.ref("reports.report", 1)
        for (const [perm, obj] of [[10n, ref], [hostile(), ref], ["reports.view_report", hostile()]] as const) {
          const refused = yield* Effect.flip(Effect.suspend(() => grants.grantUser("1", perm as never, obj)))
          expect(refused).toMatchObject({ _tag: "ObjectPermissionsError", operation: "grantUser" })
        }
        expect(yield* grants.userPermissions("1", ObjectPermissions.ref("reports.report", 1))).toEqual(new Set())
      }).pipe(Effect.provide(app(objects()))))

    it.effect("a permission of another app than the object's is refused when granted (guardian: WrongAppError), and can be revoked", () =>
      Effect.gen(function*() {
        const { alice, bob } = yield* people
        const grants = yield* ObjectPermissions.ObjectPermissions
        const r1 = ObjectPermissions.ref("reports.report", 1)
        for (const grant of [grants.grantUser(alice.id, "admin.delete_user", r1), grants.grantGroup("auditors", "admin.delete_user", r1)]) {
          const refused = yield* Effect.flip(grant)
          expect(refused._tag).toBe("ObjectPermissionsError")
          expect(refused.message).toContain("is not of the object's app")
        }
        const validated = yield* Effect.flip(ObjectPermissions.validate("grantUser", "admin.delete_user", r1))
        expect(validated._tag).toBe("ObjectPermissionsError")
        expect(yield* AuthService.hasPerm(alice, "admin.delete_user", r1)).toBe(false)
        expect(yield* AuthService.hasPerm(bob, "admin.delete_user", r1)).toBe(false)
        // (a revocation takes it: a grant stored before this check can go)
        yield* grants.revokeUser(alice.id, "admin.delete_user", r1)
        yield* grants.revokeGroup("auditors", "admin.delete_user", r1)
        yield* ObjectPermissions.validate("revokeUser", "admin.delete_user", r1)
        // an app label that only starts like the object's is another app
        const prefixed = yield* Effect.flip(grants.grantUser(alice.id, "report.view_report", ObjectPermissions.ref("reports.report", 1)))
        expect(prefixed._tag).toBe("ObjectPermissionsError")
        yield* grants.grantUser(alice.id, "reports.delete_report", r1)
        expect(yield* AuthService.hasPerm(alice, "reports.delete_report", r1)).toBe(true)
      }).pipe(Effect.provide(app(objects()))))

    it.effect("a codename alone is that codename's permission in the object's app, as guardian takes it", () =>
      Effect.gen(function*() {
        const { alice, bob } = yield* people
        const grants = yield* ObjectPermissions.ObjectPermissions
        const r1 = ObjectPermissions.ref("reports.report", 1)
        yield* grants.grantUser(alice.id, "reports.change_report", r1)
        yield* grants.grantGroup("auditors", "reports.view_report", r1)
        expect(yield* AuthService.hasPerm(alice, "change_report", r1)).toBe(true)
        expect(yield* AuthService.hasPerm(bob, "view_report", r1)).toBe(true)
        const auth = yield* AuthService.AuthService
        expect(yield* auth.hasPerms(alice, ["change_report", "reports.change_report"], r1)).toBe(true)
        // on another object, another app's object, or none: not held
        expect(yield* AuthService.hasPerm(alice, "change_report", ObjectPermissions.ref("reports.report", 2))).toBe(false)
        expect(yield* AuthService.hasPerm(alice, "change_report", ObjectPermissions.ref("docs.report", 1))).toBe(false)
        expect(yield* AuthService.hasPerm(alice, "change_report")).toBe(false)
        expect(yield* AuthService.hasPerm(alice, "view_report", r1)).toBe(false)
        const why = yield* AuthService.explain(bob, "view_report", r1)
        expect(why).toMatchObject({ granted: true, decidedBy: "object" })
        expect(why.steps[2]!.reasons).toEqual(["granted on this object to group auditors"])
      }).pipe(Effect.provide(app(objects()))))

    // SQLite takes at most 32,766 bound values in a statement, PostgreSQL 65,535: the SQL stores
    // failed where the memory store answered.
    it.effect("groupPermissions of 70,000 groups answers as for a few", () =>
      Effect.gen(function*() {
        const grants = yield* ObjectPermissions.ObjectPermissions
        const r1 = ObjectPermissions.ref("reports.report", 1)
        const names = Array.from({ length: 70_000 }, (_, i) => `team-${i}`)
        yield* grants.grantGroup("team-0", "reports.view_report", r1)
        yield* grants.grantGroup("team-69999", "reports.change_report", r1)
        expect(yield* grants.groupPermissions(names, r1)).toEqual(
          new Map([["team-0", new Set(["reports.view_report"])], ["team-69999", new Set(["reports.change_report"])]])
        )
      }).pipe(Effect.provide(app(objects()))), 60_000)

    it.effect("input of the wrong type (an untyped caller) is an ObjectPermissionsError on every store, never a defect", () =>
      Effect.gen(function*() {
        const grants = yield* ObjectPermissions.ObjectPermissions
        const report = ObjectPermissions.ref("reports.report", 1)
        const throwing = () => {
          throw new Error("hostile")
        }
        const hostile = new Proxy({}, { get: throwing, has: throwing, ownKeys: throwing, getOwnPropertyDescriptor: throwing })
        // the store may throw while building its effect: that is a defect too
        const outcome = (call: () => Effect.Effect<unknown, ObjectPermissions.ObjectPermissionsError>) =>
          Effect.map(Effect.exit(Effect.suspend(call)), (exit) =>
            exit._tag === "Success" ? "success" : exit.cause._tag === "Fail" ? exit.cause.error._tag : "defect")
        const any = grants as any
        const refused = ["grantUser", "revokeUser", "grantGroup", "revokeGroup"].flatMap((method) => [
          () => any[method]("1", "reports.view_report", null),
          () => any[method]("1", "reports.view_report", undefined),
          () => any[method]("1", "reports.view_report", 42),
          () => any[method]("1", "reports.view_report", hostile),
          () => any[method](null, "reports.view_report", report),
          () => any[method](1, "reports.view_report", report),
          () => any[method]({ id: "1" }, "reports.view_report", report),
          () => any[method]("1", null, report),
          () => any[method]("1", hostile, report),
          () => any[method]("1", 10n, report)
        ]).concat([
          () => any.userPermissions("1", null),
          () => any.userPermissions("1", undefined),
          () => any.userPermissions("1", "reports.report:1"),
          () => any.userPermissions("1", hostile),
          () => any.userPermissions(null, report),
          () => any.userPermissions(1, report),
          () => any.groupPermissions(["analysts"], null),
          () => any.groupPermissions(["analysts"], hostile),
          () => any.groupPermissions(null, report),
          () => any.groupPermissions("analysts", report),
          () => any.groupPermissions([1], report),
          () => any.groupPermissions(hostile, report)
        ])
        for (const call of refused) expect(yield* outcome(call)).toBe("ObjectPermissionsError")
        // nothing was written, and a string id is still asked as before
        yield* grants.grantUser("1", "reports.view_report", report)
        expect(yield* grants.userPermissions("1", report)).toEqual(new Set(["reports.view_report"]))
        expect(yield* grants.groupPermissions(["1", "analysts"], report)).toEqual(new Map())
        expect(ObjectPermissions.refOf(hostile)).toEqual(Option.none())
      }).pipe(Effect.provide(app(objects()))))

    // PostgreSQL refused a NUL and an id past its varchar(255) (an ObjectPermissionsError), and
    // wrote a lone surrogate as U+FFFD, where SQLite and memory stored each as given.
    it.effect("an id, group, permission or object key that not every engine keeps is an ObjectPermissionsError on every store", () =>
      Effect.gen(function*() {
        const { alice } = yield* people
        const grants = yield* ObjectPermissions.ObjectPermissions
        const report = ObjectPermissions.ref("reports.report", 1)
        const perm = "reports.view_report"
        const badNames = ["bob\u0000", "dave\uD800", "\uDC00erin", "x".repeat(256)]
        const badPerms = ["reports.view\u0000report", "reports.view_\uD800"]
        const badRefs = [
          { contentType: "reports.rep\u0000ort", objectPk: "1" },
          { contentType: "reports.report\uD800", objectPk: "1" },
          { contentType: "reports.report", objectPk: "4\u00002" },
          { contentType: "reports.report", objectPk: "\uDC00" }
        ]
        const calls: Array<() => Effect.Effect<unknown, ObjectPermissions.ObjectPermissionsError>> = [
          ...badNames.flatMap((name) => [
            () => grants.grantUser(name, perm, report),
            () => grants.revokeUser(name, perm, report),
            () => grants.grantGroup(name, perm, report),
            () => grants.revokeGroup(name, perm, report),
            () => grants.userPermissions(name, report),
            () => grants.groupPermissions(["analysts", name], report)
          ]),
          ...badPerms.flatMap((bad) => [() => grants.grantUser("1", bad, report), () => grants.grantGroup("analysts", bad, report)]),
          ...badRefs.flatMap((ref) => [
            () => grants.grantUser("1", perm, ref),
            () => grants.revokeGroup("analysts", perm, ref),
            () => grants.userPermissions("1", ref),
            () => grants.groupPermissions(["analysts"], ref)
          ])
        ]
        for (const [i, call] of calls.entries()) {
          const exit = yield* Effect.exit(Effect.suspend(call))
          expect(exit._tag === "Failure" && exit.cause._tag === "Fail" ? exit.cause.error._tag : exit._tag, String(i))
            .toBe("ObjectPermissionsError")
        }
        // nothing was written; no such object is a reference, so the backend abstains (no 503)
        for (const ref of badRefs) {
          expect(ObjectPermissions.refOf(ref)).toEqual(Option.none())
          expect(yield* AuthService.hasPerm(alice, perm, ref)).toBe(false)
        }
        // at the limits, kept and found again alike on every engine
        const longest = "x".repeat(255)
        const astral = "\u{1F600}".repeat(127)
        const far = ObjectPermissions.ref("reports.report", "9".repeat(255))
        yield* grants.grantUser(longest, perm, far)
        yield* grants.grantGroup(astral, perm, far)
        expect(yield* grants.userPermissions(longest, far)).toEqual(new Set([perm]))
        expect(yield* grants.groupPermissions([astral], far)).toEqual(new Map([[astral, new Set([perm])]]))
      }).pipe(Effect.provide(app(objects()))))
  })

suite("memory", () => ObjectPermissions.layerMemory)
suite("SQLite", () => SqlObjectPermissions.layer().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" }))))
suite(
  "PostgreSQL",
  () => {
    const prefix = Postgres.uniquePrefix("objperm")
    const tables = Effect.map(SqlObjectPermissions.tables({ tablePrefix: prefix }), (t) => [t.user, t.group, t.migrations])
    return SqlObjectPermissions.layer({ tablePrefix: prefix }).pipe(Layer.provide(Postgres.poolDropping(tables)))
  },
  Postgres.missing
)

// Each model's permissions, as Django makes them from its models and guardian looks an object's up
// among its content type's: a registry the memory store and effect-auth's own tables are given.
const models: ObjectPermissions.Models = {
  "reports.report": ["reports.view_report", "reports.change_report", "reports.export_report"],
  "reports.invoice": ["reports.view_invoice", "reports.change_invoice"]
}

const modelSuite = (name: string, objects: () => Layer.Layer<ObjectPermissions.ObjectPermissions, unknown>, skip = false) =>
  describe.skipIf(skip)(`object permissions of another model than the object's, on ${name}`, () => {
    it.effect("a grant of another model's permission of the same app is refused (guardian: Permission.DoesNotExist), and false", () =>
      Effect.gen(function*() {
        const { alice, bob } = yield* people
        const grants = yield* ObjectPermissions.ObjectPermissions
        const q3 = ObjectPermissions.ref("reports.report", 3)
        for (
          const grant of [
            grants.grantUser(alice.id, "reports.change_invoice", q3),
            grants.grantGroup("auditors", "reports.change_invoice", q3),
            grants.grantUser(alice.id, "reports.change_nothing", q3) // a permission no model has
          ]
        ) {
          const refused = yield* Effect.flip(grant)
          expect(refused._tag).toBe("ObjectPermissionsError")
          expect(refused.message).toContain("is not one of the object's model (content type \"reports.report\")")
        }
        // nothing was written
        expect(yield* grants.userPermissions(alice.id, q3)).toEqual(new Set())
        expect(yield* grants.groupPermissions(["auditors"], q3)).toEqual(new Map())
        expect(yield* AuthService.hasPerm(alice, "reports.change_invoice", q3)).toBe(false)
        expect(yield* AuthService.hasPerm(bob, "change_invoice", q3)).toBe(false)
        // the model's own are taken, and held
        yield* grants.grantUser(alice.id, "reports.change_report", q3)
        yield* grants.grantGroup("auditors", "reports.export_report", q3)
        expect(yield* AuthService.hasPerm(alice, "change_report", q3)).toBe(true)
        expect(yield* AuthService.hasPerm(bob, "reports.export_report", q3)).toBe(true)
        expect(yield* AuthService.getAllPermissions(bob, q3)).toEqual(new Set(["reports.export_report"]))
        // another model's objects take their own model's
        yield* grants.grantUser(alice.id, "reports.change_invoice", ObjectPermissions.ref("reports.invoice", 3))
        const why = yield* AuthService.explain(alice, "reports.change_invoice", q3)
        expect(why.granted).toBe(false)
        expect(why.steps[2]).toEqual({
          backend: "object",
          answer: "abstain",
          reasons: ["not a permission of the object's model (reports.report)"]
        })
        // a revocation takes any permission of the app, so that a grant stored before can go
        yield* grants.revokeUser(alice.id, "reports.change_invoice", q3)
        yield* grants.revokeGroup("auditors", "reports.change_invoice", q3)
        expect(yield* grants.modelPermissions!("reports.invoice")).toEqual(new Set(["reports.view_invoice", "reports.change_invoice"]))
        expect(yield* grants.modelPermissions!("reports.nothing")).toEqual(new Set())
        expect((yield* Effect.flip(grants.modelPermissions!("reports"))).operation).toBe("modelPermissions")
      }).pipe(Effect.provide(app(objects()))))

    it.effect("an active superuser's getAllPermissions(user, obj) is every permission of the object's model, as guardian's get_perms", () =>
      Effect.gen(function*() {
        const { root, alice } = yield* people
        const q3 = ObjectPermissions.ref("reports.report", 3)
        const everyOne = new Set(["reports.view_report", "reports.change_report", "reports.export_report"])
        expect(yield* AuthService.getAllPermissions(root, q3)).toEqual(everyOne)
        expect(yield* AuthService.getAllPermissions(root, ObjectPermissions.ref("reports.invoice", 1))).toEqual(
          new Set(["reports.view_invoice", "reports.change_invoice"])
        )
        expect(yield* AuthService.getAllPermissions(root, ObjectPermissions.ref("docs.page", 1))).toEqual(new Set()) // no such model
        // the backend itself answers so (AuthService grants a superuser anything before asking it)
        const backend = yield* ObjectPermissionBackend.ObjectPermissionBackend
        expect(yield* backend.getAllPermissions!(root, q3)).toEqual(everyOne)
        expect(yield* backend.hasPerm!(root, "export_report", q3)).toBe(true)
        expect(yield* backend.hasPerm!(root, "reports.change_invoice", q3)).toBe(false)
        expect(yield* backend.explainPerm!(root, "reports.view_report", q3)).toEqual({
          granted: true,
          reasons: ["superuser: every permission of the object's model"]
        })
        // an inactive superuser holds nothing, another user only its grants
        const store = yield* UserStore.UserStore
        const retired = asUser(yield* store.create({ username: "retired", isSuperuser: true, isActive: false }))
        expect(yield* AuthService.getAllPermissions(retired, q3)).toEqual(new Set())
        expect(yield* AuthService.getAllPermissions(alice, q3)).toEqual(new Set())
      }).pipe(Effect.provide(app(objects()))))
  })

modelSuite("memory", () => ObjectPermissions.layerMemoryWith({ models }))
modelSuite("SQLite", () => SqlObjectPermissions.layer({ models }).pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" }))))
modelSuite(
  "PostgreSQL",
  () => {
    const prefix = Postgres.uniquePrefix("objperm")
    const tables = Effect.map(SqlObjectPermissions.tables({ tablePrefix: prefix }), (t) => [t.user, t.group, t.migrations])
    return SqlObjectPermissions.layer({ tablePrefix: prefix, models }).pipe(Layer.provide(Postgres.poolDropping(tables)))
  },
  Postgres.missing
)
// A store of your own that knows the models (`modelPermissions`), built with `ObjectPermissions.make`.
modelSuite("a store of your own", () =>
  Layer.sync(ObjectPermissions.ObjectPermissions, () => {
    const memory = ObjectPermissions.makeMemory()
    const registry = new Map(Object.entries(models).map(([type, perms]) => [type, new Set(perms)] as const))
    return ObjectPermissions.make({
      ...memory,
      modelPermissions: (contentType) => Effect.succeed(registry.get(contentType) ?? new Set<string>())
    })
  }))

describe("a registry of the models' permissions", () => {
  it.effect("that is none is a configuration error when the store is built", () =>
    Effect.gen(function*() {
      const bad: ReadonlyArray<unknown> = [
        null,
        ["reports.report"],
        { report: ["reports.view_report"] }, // no content type
        { "reports.report": "reports.view_report" }, // a string is no list
        { "reports.report": ["view_report"] }, // a codename alone
        { "reports.report": ["docs.view_page"] }, // another app's
        { "reports.report": [42] },
        { "reports.report": ["reports.view\u0000report"] },
        hostile()
      ]
      for (const given of bad) {
        const memory = yield* Effect.flip(ObjectPermissions.makeMemoryWith({ models: given as never }))
        expect(memory._tag).toBe("AuthConfigError")
        expect(memory.message).toMatch(/^ObjectPermissions: models /)
        const sql = yield* Effect.flip(
          SqlObjectPermissions.make({ models: given as never }).pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" })))
        )
        expect(sql).toMatchObject({ _tag: "AuthConfigError", message: expect.stringMatching(/^SqlObjectPermissions: models /) })
      }
      // on Django's tables the models' permissions are Django's: not both
      const both = yield* Effect.flip(SqlObjectPermissions.tables({ django: true, models }))
      expect(both.message).toContain("models and django exclude each other")
      const noTable = yield* Effect.flip(SqlObjectPermissions.tables({ django: { tables: { permission: "auth permission" } } }))
      expect(noTable.message).toContain("django.tables.permission must match")
      // and without one, a store knows only the apps
      expect(ObjectPermissions.makeMemory().modelPermissions).toBeUndefined()
      expect((yield* ObjectPermissions.makeMemoryWith({})).modelPermissions).toBeUndefined()
    }))
})

describe("object permissions of another app than the object's", () => {
  // A store holding what the stores kept before they refused such grants: another app's permission.
  const stale = Layer.effect(
    ObjectPermissions.ObjectPermissions,
    Effect.sync(() => {
      const memory = ObjectPermissions.makeMemory()
      const held = new Set(["admin.delete_user", "reports.change_report"])
      return {
        ...memory,
        userPermissions: () => Effect.succeed(held),
        groupPermissions: (groups: ReadonlyArray<string>) => Effect.succeed(new Map(groups.map((g) => [g, held] as const)))
      }
    })
  )
  it.effect("a grant of another app already stored counts for nothing: false, absent from the set, explained", () =>
    Effect.gen(function*() {
      const { alice, bob } = yield* people
      const r1 = ObjectPermissions.ref("reports.report", 1)
      expect(yield* AuthService.hasPerm(alice, "admin.delete_user", r1)).toBe(false)
      expect(yield* AuthService.hasPerm(bob, "admin.delete_user", r1)).toBe(false)
      expect(yield* AuthService.hasPerm(alice, "reports.change_report", r1)).toBe(true)
      expect([...(yield* AuthService.getAllPermissions(alice, r1))]).toEqual(["reports.change_report"])
      const why = yield* AuthService.explain(alice, "admin.delete_user", r1)
      expect(why.granted).toBe(false)
      expect(why.steps[2]).toEqual({
        backend: "object",
        answer: "abstain",
        reasons: ["not a permission of the object's app (reports.report)"]
      })
    }).pipe(Effect.provide(app(stale))))
})

describe("ObjectPermissionBackend's refOf", () => {
  // An app's refOf, as an untyped one may write it: the row's id as it is.
  const withRefOf = (refOf: (obj: unknown) => unknown) =>
    TestAuth.layer([ModelBackend.ModelBackend, ObjectPermissionBackend.ObjectPermissionBackend]).pipe(
      Layer.provideMerge(Layer.merge(ModelBackend.layer(), ObjectPermissionBackend.layer({ refOf: refOf as never }))),
      Layer.provideMerge(Layer.mergeAll(MemoryUserStore.layer, PasswordHasher.layerTest, ObjectPermissions.layerMemory))
    )
  const rows = (obj: unknown) => (obj as { readonly ref: unknown }).ref

  it.effect("an integer key is made its string, as guardian's force_str; what is then no reference is an abstention, not a 503", () =>
    Effect.gen(function*() {
      const { alice } = yield* people
      const grants = yield* ObjectPermissions.ObjectPermissions
      yield* grants.grantUser(alice.id, "reports.view_report", ObjectPermissions.ref("reports.report", 7))
      const ask = (ref: unknown) => Effect.either(AuthService.hasPerm(alice, "reports.view_report", { ref }))
      expect(yield* ask({ contentType: "reports.report", objectPk: 7 })).toEqual(Either.right(true))
      expect(yield* ask({ contentType: "reports.report", objectPk: 7n })).toEqual(Either.right(true))
      expect(yield* ask({ contentType: "reports.report", objectPk: "7" })).toEqual(Either.right(true))
      for (
        const bad of [
          { contentType: "reports.report", objectPk: 7.5 },
          { contentType: "reports.report", objectPk: Number.NaN },
          { contentType: "reports.report", objectPk: "" },
          { contentType: "reports.report", objectPk: null },
          { contentType: "report", objectPk: "7" },
          { contentType: 42, objectPk: "7" },
          "reports.report:7",
          null
        ]
      ) {
        expect(yield* ask(bad), JSON.stringify(bad)).toEqual(Either.right(false))
      }
      expect(yield* AuthService.getAllPermissions(alice, { ref: { contentType: "report", objectPk: 7 } })).toEqual(new Set())
    }).pipe(Effect.provide(withRefOf(rows))))
})

describe("explain", () => {
  it.effect("a backend down fails the question as hasPerm does (TransportError)", () =>
    Effect.gen(function*() {
      const down = AuthBackend.make({
        id: "ldap",
        credentials: Schema.Struct({ never: Schema.Literal("x") }),
        authenticate: () => Effect.fail(new AuthError.NoMatch({ backend: "ldap", reason: "unsupported-credentials" })),
        getUser: () => Effect.succeedNone,
        hasPerm: () => Effect.fail(new AuthError.TransportError({ backend: "ldap", cause: "down" }))
      })
      const user = { id: "1", username: "x", isActive: true, isSuperuser: false } as unknown as User
      const error = yield* Effect.flip(
        AuthService.explain(user, "a.b").pipe(Effect.provide(TestAuth.layer([down])))
      )
      expect(error).toMatchObject({ _tag: "TransportError", backend: "ldap" })
    }))
})
