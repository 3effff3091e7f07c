// Django's three permission-set questions (get_user_permissions, get_group_permissions,
// get_all_permissions), asked of the model backend through AuthService and of Django 3.2's
// ModelBackend through PermissionsMixin, and the backend's own has_perm / has_module_perms, on
// the same users, groups and grants.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as Permissions from "../src/Permissions.js"
import * as UserStore from "../src/UserStore.js"
import { djangoPython, djangos, runDjango } from "./utils/django.js"

interface Seed {
  readonly users: ReadonlyArray<{
    readonly username: string
    readonly isActive: boolean
    readonly isSuperuser: boolean
    readonly perms: ReadonlyArray<string>
    readonly groups: ReadonlyArray<string>
  }>
  readonly groups: Record<string, ReadonlyArray<string>>
  readonly permissions: ReadonlyArray<string>
}

const seed: Seed = {
  permissions: ["blog.add_post", "blog.change_post", "shop.view_order", "admin.view_logentry"],
  groups: { editors: ["blog.change_post", "shop.view_order"], auditors: ["admin.view_logentry"] },
  users: [
    { username: "editor", isActive: true, isSuperuser: false, perms: ["blog.add_post"], groups: ["editors"] },
    { username: "both", isActive: true, isSuperuser: false, perms: ["blog.change_post"], groups: ["editors", "auditors"] },
    { username: "root", isActive: true, isSuperuser: true, perms: [], groups: [] },
    { username: "inactive", isActive: false, isSuperuser: false, perms: ["blog.add_post"], groups: ["editors"] },
    { username: "old-root", isActive: false, isSuperuser: true, perms: [], groups: [] },
    { username: "nobody", isActive: true, isSuperuser: false, perms: [], groups: [] }
  ]
}

// The same data in an in-memory SQLite database made by Django's migrations; only the seed's
// permissions exist (the ones migrate creates are removed, so that a superuser's "every
// permission" is the same set on both sides).
const DJANGO = `
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
Permission.objects.all().delete()
def perm(name):
    app, codename = name.split(".")
    ct, _ = ContentType.objects.get_or_create(app_label=app, model=codename.split("_", 1)[1])
    p, _ = Permission.objects.get_or_create(content_type=ct, codename=codename, defaults={"name": codename})
    return p
for name in data["permissions"]:
    perm(name)
for name, perms in data["groups"].items():
    g = Group.objects.create(name=name)
    g.permissions.set([perm(p) for p in perms])
out = {}
for u in data["users"]:
    user = User.objects.create(username=u["username"], is_active=u["isActive"], is_superuser=u["isSuperuser"])
    user.user_permissions.set([perm(p) for p in u["perms"]])
    user.groups.set(Group.objects.filter(name__in=u["groups"]))
    user = User.objects.get(pk=user.pk)
    obj = Group.objects.get(name="editors")
    out[u["username"]] = {
        "user": sorted(user.get_user_permissions()),
        "group": sorted(user.get_group_permissions()),
        "all": sorted(user.get_all_permissions()),
        "userObj": sorted(user.get_user_permissions(obj)),
        "groupObj": sorted(user.get_group_permissions(obj)),
        # the backend's own answers (User.has_perm grants an active superuser anything first)
        "backendPerms": [p for p in data["asked"] if ModelBackend().has_perm(user, p)],
        "backendModules": [a for a in data["apps"] if ModelBackend().has_module_perms(user, a)],
    }
print(json.dumps(out))
`

const Live = AuthService.layer([ModelBackend.ModelBackend]).pipe(
  Layer.provide(AuthEvents.layer),
  Layer.provideMerge(ModelBackend.layer()),
  Layer.provideMerge(MemoryUserStore.layer),
  Layer.provide(PasswordHasher.layerTest)
)

// Asked of the backend itself: known permissions, one that exists nowhere, apps with and without any.
const asked = ["blog.add_post", "blog.change_post", "shop.view_order", "admin.view_logentry", "blog.delete_post", "never.heard_of"]
const apps = ["blog", "shop", "admin", "never"]

const ours = Effect.gen(function*() {
  const store = yield* UserStore.UserStore
  const backend = yield* ModelBackend.ModelBackend
  for (const perm of seed.permissions) yield* store.createPermission(perm)
  for (const [group, perms] of Object.entries(seed.groups)) {
    yield* store.createGroup(group)
    for (const perm of perms) yield* store.grantGroupPermission(group, perm)
  }
  const out: Record<string, Record<string, Array<string>>> = {}
  // An object permission question: the model backend, as Django's, holds none.
  const obj = { _meta: "auth.group", pk: 1 }
  for (const u of seed.users) {
    const stored = yield* store.create({ username: u.username, isActive: u.isActive, isSuperuser: u.isSuperuser })
    for (const perm of u.perms) yield* store.grantPermission(stored.id, perm)
    yield* store.setGroups(stored.id, u.groups)
    // The row itself, as Django's user object is: a bare {id, username, isActive, isSuperuser} is
    // what another backend's claims make too (a JWT with sub "1" and a chosen preferred_username),
    // and holds none of the store's permissions (see ModelBackend.test and JwtBackend.test).
    const user = stored
    const sorted = (set: ReadonlySet<string>) => [...set].sort()
    out[u.username] = {
      user: sorted(yield* AuthService.getUserPermissions(user)),
      group: sorted(yield* AuthService.getGroupPermissions(user)),
      all: sorted(yield* AuthService.getAllPermissions(user)),
      userObj: sorted(yield* AuthService.getUserPermissions(user, obj)),
      groupObj: sorted(yield* AuthService.getGroupPermissions(user, obj)),
      backendPerms: yield* Effect.filter(asked, (perm) => backend.hasPerm!(user, perm)),
      backendModules: yield* Effect.filter(apps, (app) => backend.hasModulePerms!(user, app))
    }
  }
  return out
})

describe("user, group and all permissions", () => {
  it.effect("the user's own, through its groups, and their union", () =>
    Effect.gen(function*() {
      const answers = yield* ours
      expect(answers.editor).toEqual({
        user: ["blog.add_post"],
        group: ["blog.change_post", "shop.view_order"],
        all: ["blog.add_post", "blog.change_post", "shop.view_order"],
        userObj: [],
        groupObj: [],
        backendPerms: ["blog.add_post", "blog.change_post", "shop.view_order"],
        backendModules: ["blog", "shop"]
      })
      // A superuser holds every permission the store knows, and no other (Django's ModelBackend).
      expect(answers.root!.backendPerms).toEqual(["blog.add_post", "blog.change_post", "shop.view_order", "admin.view_logentry"])
      expect(answers.root!.backendModules).toEqual(["blog", "shop", "admin"])
      expect(answers.inactive!.all).toEqual([])
      expect(answers.root!.group).toEqual([...seed.permissions].sort())
    }).pipe(Effect.provide(Live)))
})

describe.skipIf(djangoPython === undefined)("against Django 3.2 (python3-django)", () => {
  it.effect("every user's three sets equal Django's, objects included", () =>
    Effect.gen(function*() {
      const theirs = runDjango(DJANGO, { ...seed, asked, apps }, { database: "memory" })
      expect(yield* ours).toEqual(theirs)
    }).pipe(Effect.provide(Live)))
})

// Django's user object keeps its answers (_perm_cache) for its life, as a request cache does here,
// but ModelBackend checks is_active before that cache: a user object set inactive holds nothing
// from then on. The answers filled before, then asked again of the same object.
const CACHE = `
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import Permission, User
u = User.objects.create(username="alice")
p = Permission.objects.get(codename="change_user")
u.user_permissions.add(p)
u = User.objects.get(pk=u.pk)
out = {"before": u.has_perm("auth.change_user")}
u.user_permissions.remove(p)
out["afterRevokeSameObject"] = u.has_perm("auth.change_user")
u.user_permissions.add(p)
u = User.objects.get(pk=u.pk)
out["filled"] = [u.has_perm("auth.change_user"), u.has_module_perms("auth"), sorted(u.get_all_permissions())]
u.is_active = False
out["afterDeactivateSameObject"] = [u.has_perm("auth.change_user"), u.has_module_perms("auth"), sorted(u.get_all_permissions())]
u.is_active = True
out["activeAgain"] = [u.has_perm("auth.change_user"), u.has_module_perms("auth"), sorted(u.get_all_permissions())]
print(json.dumps(out))
`

const cacheOurs = Effect.gen(function*() {
  const store = yield* UserStore.UserStore
  yield* store.createPermission("auth.change_user")
  const row = yield* store.create({ username: "alice" })
  yield* store.grantPermission(row.id, "auth.change_user")
  return yield* Effect.gen(function*() {
    const three = (user: UserStore.StoredUser) =>
      Effect.all([
        AuthService.hasPerm(user, "auth.change_user"),
        AuthService.hasModulePerms(user, "auth"),
        Effect.map(AuthService.getAllPermissions(user), (all) => [...all].sort())
      ])
    // a user object as the app holds it: its own copy of the row, which it may change
    let user = { ...row }
    const out: Record<string, unknown> = { before: yield* AuthService.hasPerm(user, "auth.change_user") }
    yield* store.revokePermission(row.id, "auth.change_user")
    out.afterRevokeSameObject = yield* AuthService.hasPerm(user, "auth.change_user")
    yield* store.grantPermission(row.id, "auth.change_user")
    user = { ...row }
    out.filled = yield* three(user)
    user.isActive = false
    out.afterDeactivateSameObject = yield* three(user)
    user.isActive = true
    out.activeAgain = yield* three(user)
    return out
  }).pipe(Permissions.withRequestCache)
})

describe.skipIf(djangoPython === undefined)("the request cache against Django's _perm_cache", () => {
  for (const django of djangos) {
    it.effect(`a user object set inactive within a request holds nothing from then on, as in Django ${django.version}`, () =>
      Effect.gen(function*() {
        const theirs = runDjango(CACHE, {}, { database: "memory", django })
        expect(theirs.afterDeactivateSameObject).toEqual([false, false, []])
        expect(yield* cacheOurs).toEqual(theirs)
      }).pipe(Effect.provide(Live)))
  }
})
