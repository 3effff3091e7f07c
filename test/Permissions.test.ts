import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { AuthError, AuthService, ObjectPermissions, Permissions, TestAuth, TestBackend } from "../src/index.js"
import { hostile } from "./utils/hostile.js"

const alice = TestBackend.user("alice")
const root = TestBackend.user("root", { isSuperuser: true })
const inactiveRoot = TestBackend.user("old-root", { isSuperuser: true, isActive: false })

const grants = (id: string, perms: ReadonlyArray<string>, extra: Partial<TestBackend.PermissionScript> = {}) =>
  TestBackend.make(id, {
    behaviour: TestBackend.Behaviour.noMatch(),
    permissions: {
      hasPerm: (_user, perm) => perms.includes(perm),
      hasModulePerms: (_user, app) => perms.some((p) => p.startsWith(`${app}.`)),
      getAllPermissions: () => perms,
      ...extra
    }
  })

const withAuth = (backends: ReadonlyArray<TestBackend.TestBackend>) =>
  <A, E>(f: (auth: AuthService.Service) => Effect.Effect<A, E>) =>
    Effect.flatMap(AuthService.AuthService, f).pipe(Effect.provide(TestAuth.layer(backends)))

describe("hasPerm", () => {
  it.effect("an active superuser has every permission without asking any backend", () =>
    Effect.gen(function*() {
      const a = grants("a", [])
      const answers = yield* withAuth([a])((auth) =>
        Effect.all([auth.hasPerm(root, "blog.delete_post"), auth.hasModulePerms(root, "blog")])
      )
      expect(answers).toEqual([true, true])
      expect(a.permissionCalls).toEqual([])
    }))

  it.effect("a permission over 255 characters or an app label outside 1 to 100 is no permission, and no backend is asked", () =>
    Effect.gen(function*() {
      const longest = `blog.${"x".repeat(250)}`
      const a = grants("a", [longest, `${"y".repeat(100)}.view`])
      const answers = yield* withAuth([a])((auth) =>
        Effect.all([
          auth.hasPerm(alice, longest),
          auth.hasPerm(alice, `${longest}x`),
          auth.hasModulePerms(alice, "y".repeat(100)),
          auth.hasModulePerms(alice, "y".repeat(101)),
          auth.hasModulePerms(alice, "")
        ])
      )
      expect(answers).toEqual([true, false, true, false, false])
      expect(a.permissionCalls).toEqual([longest, `module:${"y".repeat(100)}`])
    }))

  it.effect("the bounds count characters as Django does (code points), not UTF-16 units", () =>
    Effect.gen(function*() {
      // 161 characters (an emoji is one to Python's len), 261 UTF-16 units.
      const astral = `${"a".repeat(60)}.${"\u{1F600}".repeat(100)}`
      const label = "\u{1F600}".repeat(100)
      const a = grants("a", [astral, `${label}.view`])
      const answers = yield* withAuth([a])((auth) =>
        Effect.all([
          auth.hasPerm(alice, astral),
          auth.hasModulePerms(alice, label),
          auth.hasModulePerms(alice, `${label}\u{1F600}`),
          auth.hasPerm(alice, `blog.${"\u{1F600}".repeat(251)}`)
        ])
      )
      expect(answers).toEqual([true, true, false, false])
      expect(a.permissionCalls).toEqual([astral, `module:${label}`])
    }))

  it.effect("an inactive superuser is asked about like anyone else", () =>
    Effect.gen(function*() {
      const a = grants("a", [])
      expect(yield* withAuth([a])((auth) => auth.hasPerm(inactiveRoot, "blog.delete_post"))).toBe(false)
      expect(a.permissionCalls).toEqual(["blog.delete_post"])
    }))

  it.effect("the first true grants and later backends are not asked", () =>
    Effect.gen(function*() {
      const a = grants("a", [])
      const b = grants("b", ["blog.add_post"])
      const c = grants("c", ["blog.add_post"])
      expect(yield* withAuth([a, b, c])((auth) => auth.hasPerm(alice, "blog.add_post"))).toBe(true)
      expect([a.permissionCalls.length, b.permissionCalls.length, c.permissionCalls.length]).toEqual([1, 1, 0])
    }))

  it.effect("a PermissionDenied vetoes: the answer is false and later backends are not asked", () =>
    Effect.gen(function*() {
      const a = grants("a", [], { hasPerm: () => "deny" })
      const b = grants("b", ["blog.add_post"])
      expect(yield* withAuth([a, b])((auth) => auth.hasPerm(alice, "blog.add_post"))).toBe(false)
      expect(b.permissionCalls).toEqual([])
    }))

  it.effect("backends without the method are skipped; no true means false", () =>
    Effect.gen(function*() {
      const plain = TestBackend.noMatch("plain")
      const b = grants("b", ["blog.add_post"])
      const answers = yield* withAuth([plain, b])((auth) =>
        Effect.all([auth.hasPerm(alice, "blog.add_post"), auth.hasPerm(alice, "blog.delete_post")])
      )
      expect(answers).toEqual([true, false])
    }))

  it.effect("a TransportError from a backend escapes", () =>
    Effect.gen(function*() {
      const broken = TestBackend.make("broken", { behaviour: TestBackend.Behaviour.noMatch() })
      const failing = {
        ...broken,
        hasPerm: () => Effect.fail(new AuthError.TransportError({ backend: "broken", cause: "down" }))
      }
      const error = yield* Effect.flip(
        Effect.flatMap(AuthService.AuthService, (auth) => auth.hasPerm(alice, "a.b")).pipe(
          Effect.provide(TestAuth.layer([failing]))
        )
      )
      expect(error._tag).toBe("TransportError")
    }))
})

describe("hasPerms, hasModulePerms, getAllPermissions", () => {
  it.effect("hasPerms needs every permission, and an empty list is true", () =>
    Effect.gen(function*() {
      const a = grants("a", ["blog.add_post", "blog.change_post"])
      const answers = yield* withAuth([a])((auth) =>
        Effect.all([
          auth.hasPerms(alice, []),
          auth.hasPerms(alice, ["blog.add_post", "blog.change_post"]),
          auth.hasPerms(alice, ["blog.add_post", "blog.delete_post"])
        ])
      )
      expect(answers).toEqual([true, true, false])
    }))

  // Untyped callers: a list whose iterator throws, and no user at all, died in the service.
  it.effect("an iterable that throws, and a null user, are refused, never a defect", () =>
    Effect.gen(function*() {
      const a = grants("a", ["blog.add_post"])
      const throwing: Iterable<string> = {
        *[Symbol.iterator]() {
          yield "blog.add_post"
          throw new Error("broken iterator")
        }
      }
      const nobody = null as unknown as typeof alice
      const answers = yield* withAuth([a])((auth) =>
        Effect.all([
          auth.hasPerms(alice, throwing),
          auth.hasPerm(nobody, "blog.add_post"),
          auth.hasPerms(nobody, ["blog.add_post"]),
          auth.hasModulePerms(nobody, "blog"),
          Effect.map(auth.getAllPermissions(nobody), (perms) => perms.size === 0),
          Effect.map(auth.getUserPermissions(nobody), (perms) => perms.size === 0),
          Effect.map(auth.getGroupPermissions(nobody), (perms) => perms.size === 0),
          Effect.map(auth.explain(nobody, "blog.add_post"), (explanation) => explanation.granted)
        ]).pipe(Permissions.withRequestCache)
      )
      expect(answers).toEqual([false, false, false, false, true, true, true, false])
    }))

  it.effect("hasPerms of a string (or of no list) is false, not its characters' answer: Django raises ValueError", () =>
    Effect.gen(function*() {
      const a = grants("a", ["b", "blog.add_post"])
      const answers = yield* withAuth([a])((auth) =>
        Effect.all([
          auth.hasPerms(alice, ""),
          auth.hasPerms(alice, "b"),
          auth.hasPerms(alice, "blog.add_post"),
          auth.hasPerms(root, "blog.add_post"),
          auth.hasPerms(alice, undefined as unknown as Iterable<string>),
          // a Proxy whose every trap throws threw out of the call (`Symbol.iterator in perms`)
          Effect.suspend(() => auth.hasPerms(alice, hostile())),
          auth.hasPerms(alice, new Set(["blog.add_post"]))
        ])
      )
      expect(answers).toEqual([false, false, false, false, false, false, true])
    }))

  // Django's all() stops at the first False; the list was read whole first, and an endless
  // generator ran the process out of memory.
  it.effect("hasPerms reads at most 10,000 permissions: a longer list (an endless generator) is false, its rest never read", () =>
    Effect.gen(function*() {
      const a = grants("a", ["blog.add_post"])
      let read = 0
      function* held(count: number) {
        for (let i = 0; i < count; i++) {
          read++
          yield "blog.add_post"
        }
      }
      function* endless() {
        for (let i = 0;; i++) {
          read++
          yield `blog.p${i}`
        }
      }
      const ask = (user: typeof alice, perms: Iterable<string>) =>
        Effect.gen(function*() {
          read = 0
          const answer = yield* withAuth([a])((auth) => auth.hasPerms(user, perms))
          return [answer, read]
        })
      expect(yield* ask(alice, held(2_000_000))).toEqual([false, 10_001])
      expect(yield* ask(alice, endless())).toEqual([false, 10_001])
      expect(yield* ask(root, endless())).toEqual([false, 10_001])
      expect(yield* ask(alice, held(10_000))).toEqual([true, 10_000])
      expect(yield* ask(alice, held(10_001))).toEqual([false, 10_001])
      // the list is read at the call: the effect run again asks the same permissions
      const spent = held(3)
      const twice = yield* withAuth([a])((auth) => {
        const ask = auth.hasPerms(alice, spent)
        return Effect.zip(ask, ask)
      })
      expect(twice).toEqual([true, true])
    }), 60_000)

  it.effect("hasModulePerms: first true grants, a veto is false", () =>
    Effect.gen(function*() {
      const a = grants("a", ["blog.add_post"])
      const vetoing = grants("v", [], { hasModulePerms: () => "deny" })
      expect(yield* withAuth([a])((auth) => auth.hasModulePerms(alice, "blog"))).toBe(true)
      expect(yield* withAuth([a])((auth) => auth.hasModulePerms(alice, "shop"))).toBe(false)
      expect(yield* withAuth([vetoing, a])((auth) => auth.hasModulePerms(alice, "blog"))).toBe(false)
    }))

  it.effect("getAllPermissions is the union of the backends' permissions", () =>
    Effect.gen(function*() {
      const all = yield* withAuth([grants("a", ["blog.add_post"]), grants("b", ["shop.buy", "blog.add_post"])])(
        (auth) => auth.getAllPermissions(alice)
      )
      expect([...all].sort()).toEqual(["blog.add_post", "shop.buy"])
    }))

  it.effect("getAllPermissions lets a PermissionDenied through as a failure", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        withAuth([grants("a", ["x.y"]), grants("b", [], { getAllPermissions: () => "deny" })])((auth) =>
          auth.getAllPermissions(alice)
        )
      )
      expect(error._tag).toBe("PermissionDenied")
    }))
})

describe("a question kept and run again", () => {
  it.effect("reads the user when it runs: a superuser deactivated or a user promoted since is answered as now", () =>
    Effect.gen(function*() {
      const a = grants("a", [])
      yield* withAuth([a])((auth) =>
        Effect.gen(function*() {
          const boss = { ...root }
          const questions = [
            auth.hasPerm(boss, "blog.delete_post"),
            auth.hasModulePerms(boss, "blog"),
            Effect.map(auth.explain(boss, "blog.delete_post"), (e) => e.granted)
          ]
          expect(yield* Effect.all(questions)).toEqual([true, true, true])
          // Django: an inactive superuser holds nothing it was not granted
          ;(boss as { isActive: boolean }).isActive = false
          expect(yield* Effect.all(questions)).toEqual([false, false, false])

          const bob = { ...alice }
          const bobsQuestion = auth.hasPerm(bob, "blog.delete_post")
          expect(yield* bobsQuestion).toBe(false)
          ;(bob as { isSuperuser: boolean }).isSuperuser = true
          expect(yield* bobsQuestion).toBe(true)
        })
      )
    }))
})

describe("per-request cache", () => {
  it.effect("within one request a backend is asked once per user and permission", () =>
    Effect.gen(function*() {
      const a = grants("a", ["blog.add_post"])
      const bob = TestBackend.user("bob")
      yield* withAuth([a])((auth) =>
        Effect.gen(function*() {
          for (let i = 0; i < 3; i++) {
            expect(yield* auth.hasPerm(alice, "blog.add_post")).toBe(true)
            expect(yield* auth.hasPerm(alice, "blog.delete_post")).toBe(false)
            expect(yield* auth.hasPerm(bob, "blog.add_post")).toBe(true)
          }
        }).pipe(Permissions.withRequestCache)
      )
      expect(a.permissionCalls).toEqual(["blog.add_post", "blog.delete_post", "blog.add_post"])
    }))

  it.effect("outside a request scope, and in a new request, the backend is asked again", () =>
    Effect.gen(function*() {
      const a = grants("a", ["blog.add_post"])
      yield* withAuth([a])((auth) =>
        Effect.gen(function*() {
          yield* auth.hasPerm(alice, "blog.add_post")
          yield* auth.hasPerm(alice, "blog.add_post")
          yield* Permissions.withRequestCache(auth.hasPerm(alice, "blog.add_post"))
          yield* Permissions.withRequestCache(auth.hasPerm(alice, "blog.add_post"))
        })
      )
      expect(a.permissionCalls).toHaveLength(4)
    }))

  it.effect("object permissions are cached per object", () =>
    Effect.gen(function*() {
      const a = grants("a", [], { hasPerm: (_u, _p, obj) => obj === "post-1" })
      const answers = yield* withAuth([a])((auth) =>
        Effect.all([
          auth.hasPerm(alice, "blog.change_post", "post-1"),
          auth.hasPerm(alice, "blog.change_post", "post-2"),
          auth.hasPerm(alice, "blog.change_post", "post-1")
        ]).pipe(Permissions.withRequestCache)
      )
      expect(answers).toEqual([true, false, true])
      expect(a.permissionCalls).toHaveLength(2)
    }))

  it.effect("an object question is cached by the object's reference: one reference object reused for other rows is asked again", () =>
    Effect.gen(function*() {
      const a = grants("a", [], { hasPerm: (_u, _p, obj) => (obj as ObjectPermissions.ObjectRef).objectPk === "1" })
      const visible = yield* withAuth([a])((auth) =>
        Effect.gen(function*() {
          const ref = { contentType: "docs.document", objectPk: "" }
          const out: Array<string> = []
          for (const pk of ["1", "2", "3", "1"]) {
            ref.objectPk = pk
            if (yield* auth.hasPerm(alice, "docs.view_document", ref)) out.push(pk)
          }
          // an equal reference in another object is the same question
          out.push(String(yield* auth.hasPerm(alice, "docs.view_document", ObjectPermissions.ref("docs.document", 2))))
          return out
        }).pipe(Permissions.withRequestCache)
      )
      expect(visible).toEqual(["1", "1", "false"])
      expect(a.permissionCalls).toHaveLength(3)
    }))

  it.effect("an object that is no reference is not cached: it may be another row at the next question", () =>
    Effect.gen(function*() {
      const a = grants("a", [], { hasPerm: (_u, _p, obj) => (obj as { id: number }).id === 1 })
      const answers = yield* withAuth([a])((auth) =>
        Effect.gen(function*() {
          const row = { id: 1 }
          const first = yield* auth.hasPerm(alice, "docs.view_document", row)
          row.id = 2
          const second = yield* auth.hasPerm(alice, "docs.view_document", row)
          return [first, second]
        }).pipe(Permissions.withRequestCache)
      )
      expect(answers).toEqual([true, false])
      expect(a.permissionCalls).toHaveLength(2)
    }))

  it.effect("a string object is no reference's key: each is its own question", () =>
    Effect.gen(function*() {
      const a = grants("a", [], { hasPerm: (_u, _p, obj) => typeof obj === "string" })
      const answers = yield* withAuth([a])((auth) =>
        Effect.all([
          auth.hasPerm(alice, "docs.view_document", "docs.document\u00001"),
          auth.hasPerm(alice, "docs.view_document", ObjectPermissions.ref("docs.document", 1))
        ]).pipe(Permissions.withRequestCache)
      )
      expect(answers).toEqual([true, false])
    }))
})

describe("permission strings", () => {
  it("parse splits at the first dot and rejects malformed strings", () => {
    expect(Permissions.parse("blog.change_post")).toEqual(Option.some({ appLabel: "blog", codename: "change_post" }))
    expect(Permissions.parse("nodot")).toEqual(Option.none())
    expect(Permissions.parse(".x")).toEqual(Option.none())
    expect(Permissions.parse("a.")).toEqual(Option.none())
    expect(Permissions.parse(`a.${"x".repeat(300)}`)).toEqual(Option.none())
  })

  it.effect("a codename is Django's free text: spaces and dots are in it, control characters and a spaced app label are not", () =>
    Effect.gen(function*() {
      expect(Permissions.parse("blog.can publish")).toEqual(Option.some({ appLabel: "blog", codename: "can publish" }))
      expect(Permissions.parse("blog.view.archive")).toEqual(Option.some({ appLabel: "blog", codename: "view.archive" }))
      expect(Permissions.parse("my blog.publish")).toEqual(Option.none())
      expect(Permissions.parse("blog.can\npublish")).toEqual(Option.none())
      expect(Permissions.parse("blog.\u0000")).toEqual(Option.none())
      expect(Permissions.parse("bl\u0001og.publish")).toEqual(Option.none())
      expect(Permissions.parse("blog\u007f.publish")).toEqual(Option.none())
      // Django's ModelBackend answers such a permission from the rows: so does the fold.
      const a = grants("a", ["blog.can publish"])
      const answers = yield* withAuth([a])((auth) =>
        Effect.all([auth.hasPerm(alice, "blog.can publish"), auth.hasPerm(alice, "blog.can publisher")])
      )
      expect(answers).toEqual([true, false])
      expect(a.permissionCalls).toEqual(["blog.can publish", "blog.can publisher"])
      // and an object permission of that codename can be granted (django-guardian's rows are free text too)
      const store = ObjectPermissions.makeMemory()
      const post = ObjectPermissions.ref("blog.post", 1)
      yield* store.grantUser("1", "blog.can publish", post)
      expect(yield* store.userPermissions("1", post)).toEqual(new Set(["blog.can publish"]))
      expect((yield* Effect.flip(store.grantUser("1", "my blog.publish", post)))._tag).toBe("ObjectPermissionsError")
    }))

  it.effect("ObjectPermissions.validate and refOf refuse what an untyped caller hands over (a bigint, a Proxy), never throwing", () =>
    Effect.gen(function*() {
      const post = ObjectPermissions.ref("blog.post", 1)
      // JSON.stringify threw on the bigint and the Proxy; the Schema check on a Proxy as the object.
      const bigint = yield* Effect.flip(Effect.suspend(() => ObjectPermissions.validate("grantUser", 10n as never, post)))
      expect(bigint).toMatchObject({ _tag: "ObjectPermissionsError", message: "not a permission (app_label.codename): a bigint" })
      const proxy = yield* Effect.flip(Effect.suspend(() => ObjectPermissions.validate("grantUser", hostile(), post)))
      expect(proxy.message).toBe("not a permission (app_label.codename): an object")
      expect((yield* Effect.flip(Effect.suspend(() => ObjectPermissions.validate("grantUser", "blog.add_post", hostile()))))._tag)
        .toBe("ObjectPermissionsError")
      // a string is quoted as before
      expect((yield* Effect.flip(ObjectPermissions.validate("grantUser", "nodot", post))).message).toBe(
        "not a permission (app_label.codename): \"nodot\""
      )
      // but a long one only by its length (a 5 MB string from a form made a 5 MB error)
      expect((yield* Effect.flip(ObjectPermissions.validate("grantUser", "x".repeat(5_000_000), post))).message).toBe(
        "not a permission (app_label.codename): a string of 5000000 UTF-16 units (too long to show)"
      )
      expect(ObjectPermissions.refOf(hostile())).toEqual(Option.none())
      expect(ObjectPermissions.refOf({ ...post, title: "Q3" })).toEqual(Option.some(post))
    }))

  it.effect("ObjectPermissions.validate with an operation that is no string refuses under \"validate\", never throwing", () =>
    Effect.gen(function*() {
      const post = ObjectPermissions.ref("blog.post", 1)
      // the error was built with the caller's operation, and its Schema threw a ParseError at call time
      for (const operation of [42, null, hostile()]) {
        const refused = yield* Effect.flip(Effect.suspend(() => ObjectPermissions.validate(operation as never, "bad", post)))
        expect(refused).toMatchObject({ _tag: "ObjectPermissionsError", operation: "validate" })
      }
      // a grant that is fine is fine whatever the operation
      yield* ObjectPermissions.validate(42 as never, "blog.add_post", post)
    }))
})
