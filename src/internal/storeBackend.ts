// What a backend over a `UserStore` answers as Django's `ModelBackend` does: the permission
// questions and the record of a login. `ModelBackend` and `RemoteUserBackend` (a `ModelBackend`
// subclass in Django) share them.
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as AuthError from "../AuthError.js"
import type { User } from "../User.js"
import type * as UserStore from "../UserStore.js"
import { askStore, isInactive, type StoreFlags, storeFlags } from "./userStore.js"

const isObjectPermission = (obj: unknown): boolean => obj !== undefined && obj !== null

/**
 * Django's `has_module_perms`: some permission's app label (the part before its first dot) is
 * `appLabel`. A dotted `appLabel` is no app's label, and matches nothing.
 *
 * @internal
 */
export const holdsModulePerm = (perms: Iterable<string>, appLabel: string): boolean => {
  for (const perm of perms) {
    const dot = perm.indexOf(".")
    if (dot >= 0 && perm.slice(0, dot) === appLabel) return true
  }
  return false
}

/** @internal */
export const make = (
  store: UserStore.Service,
  transport: (error: UserStore.UserStoreError) => AuthError.TransportError
) => {
  // An id this store never issued (another backend's user) holds nothing here.
  const storeQuery = <A>(query: Effect.Effect<A, UserStore.CommonError>, empty: A) =>
    askStore(query, empty, transport)

  // Only the store's own users hold its permissions, superusers included: another backend's
  // user 1 is not the store's user 1 (see `storeFlags`). The flags that count are the row's for a
  // copy of it, so both the user and those flags must say active.
  const asStoreUser = <A>(
    user: User,
    empty: A,
    answer: (flags: StoreFlags) => Effect.Effect<A, AuthError.TransportError>
  ) =>
    Effect.flatMap(
      storeFlags(store, user, transport),
      (flags) => flags === undefined || !flags.isActive ? Effect.succeed(empty) : answer(flags)
    )

  const none: ReadonlySet<string> = new Set()

  // Django's `_get_permissions`: nothing for inactive users or object permissions; every known
  // permission for a superuser (as the user's own and as its groups'); otherwise the user's own
  // or its groups'.
  const permissionsFrom = (from: "user" | "group") => (user: User, obj?: unknown) => {
    if (isInactive(user) || isObjectPermission(obj)) return Effect.succeed(none)
    return asStoreUser(user, none, (flags) =>
      flags.isSuperuser
        ? storeQuery(store.permissions(), none)
        : storeQuery(from === "user" ? store.userPermissions(flags.id) : store.groupPermissions(flags.id), none))
  }
  const getUserPermissions = permissionsFrom("user")
  const getGroupPermissions = permissionsFrom("group")

  const getAllPermissions = (user: User, obj?: unknown): Effect.Effect<ReadonlySet<string>, AuthError.TransportError> => {
    if (isInactive(user) || isObjectPermission(obj)) return Effect.succeed(none)
    return asStoreUser(user, none, (flags) =>
      flags.isSuperuser
        ? storeQuery(store.permissions(), none)
        : Effect.map(
          Effect.all([storeQuery(store.userPermissions(flags.id), none), storeQuery(store.groupPermissions(flags.id), none)]),
          ([own, viaGroups]): ReadonlySet<string> => new Set([...own, ...viaGroups])
        ))
  }

  // Django's `ModelBackend.has_perm`: among the user's permissions, a superuser's being every one
  // the store knows, so a permission that does not exist is held by nobody. (`AuthService`, as
  // Django's `User.has_perm`, grants an active superuser anything before asking a backend.)
  const hasPerm = (user: User, perm: string, obj?: unknown) => {
    if (isInactive(user) || isObjectPermission(obj)) return Effect.succeed(false)
    return Effect.map(getAllPermissions(user), (perms) => perms.has(perm))
  }

  // hasPerm's answer, and where it comes from: the user's own permission or which groups.
  const explainPerm = (user: User, perm: string, obj?: unknown) =>
    Effect.gen(function*() {
      if (isInactive(user)) return { granted: false, reasons: ["inactive user: no permissions"] }
      if (isObjectPermission(obj)) return { granted: false, reasons: ["the model backend holds no object permissions"] }
      const flags = yield* storeFlags(store, user, transport)
      if (flags === undefined) {
        return { granted: false, reasons: ["not a user of this store (another backend's id)"] }
      }
      if (!flags.isActive) return { granted: false, reasons: ["inactive user in the store: no permissions"] }
      if (flags.isSuperuser) {
        return (yield* storeQuery(store.permissions(), none)).has(perm)
          ? { granted: true, reasons: ["superuser"] }
          : { granted: false, reasons: ["superuser, but the store knows no such permission"] }
      }
      const reasons: Array<string> = []
      if ((yield* storeQuery(store.userPermissions(flags.id), none)).has(perm)) reasons.push("user permission")
      if ((yield* storeQuery(store.groupPermissions(flags.id), none)).has(perm)) {
        // Which groups: when the store can tell (`permissionsOfGroup` is optional).
        const ofGroup = store.permissionsOfGroup
        const granting: Array<string> = []
        if (ofGroup !== undefined) {
          for (const group of yield* storeQuery(store.groupsOf(flags.id), [] as ReadonlyArray<string>)) {
            if ((yield* storeQuery(ofGroup(group), none)).has(perm)) granting.push(group)
          }
        }
        reasons.push(granting.length === 0 ? "via a group" : `via group ${granting.join(", ")}`)
      }
      return reasons.length === 0
        ? { granted: false, reasons: ["neither the user nor its groups hold it"] }
        : { granted: true, reasons }
    })

  const hasModulePerms = (user: User, appLabel: string) => {
    if (isInactive(user)) return Effect.succeed(false)
    return Effect.map(getAllPermissions(user), (perms) => holdsModulePerm(perms, appLabel))
  }

  // Django's `update_last_login`, connected to `user_logged_in` by default. A user deleted
  // meanwhile has no login to record.
  const userLoggedIn = (user: User) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      store.setLastLogin(user.id, new Date(now)).pipe(
        Effect.catchTags({ UserNotFound: () => Effect.void, InvalidInput: () => Effect.void }),
        Effect.mapError(transport)
      ))

  return { getAllPermissions, getUserPermissions, getGroupPermissions, hasPerm, explainPerm, hasModulePerms, userLoggedIn }
}

