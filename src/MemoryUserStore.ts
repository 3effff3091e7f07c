/**
 * A `UserStore` in memory, for quick starts and tests. It behaves as `SqlUserStore` does (the same
 * test suite runs on both) and forgets everything when its layer is released.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryUserStore, UserStore } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* UserStore.UserStore
 *   return yield* store.create({ username: "alice" })
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(MemoryUserStore.layer)))
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as internal from "./internal/userStore.js"
import * as UserStore from "./UserStore.js"

interface Row {
  id: number
  username: string
  passwordHash: string
  email: string
  firstName: string
  lastName: string
  isActive: boolean
  isStaff: boolean
  isSuperuser: boolean
  dateJoined: Date
  lastLogin: Date | undefined
}

const toStored = (row: Row): UserStore.StoredUser => ({
  id: String(row.id),
  username: row.username,
  passwordHash: Redacted.make(row.passwordHash),
  email: row.email,
  firstName: row.firstName,
  lastName: row.lastName,
  isActive: row.isActive,
  isStaff: row.isStaff,
  isSuperuser: row.isSuperuser,
  dateJoined: new Date(row.dateJoined.getTime()),
  lastLogin: row.lastLogin === undefined ? Option.none() : Option.some(new Date(row.lastLogin.getTime()))
})

/**
 * Builds an empty memory store. Every operation runs synchronously on the state, so each one is
 * atomic, as a statement is in SQL.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryUserStore } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* MemoryUserStore.make
 *   yield* store.create({ username: "alice" })
 *   return yield* store.list()
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<UserStore.Service> = Effect.sync(() => {
  let nextUserId = 1
  let nextGroupId = 1
  const users = new Map<number, Row>()
  const byUsername = new Map<string, number>()
  const groups = new Map<string, number>()
  const memberships = new Map<number, Set<string>>()
  const known = new Map<string, string>()
  const userPerms = new Map<number, Set<string>>()
  const groupPerms = new Map<string, Set<string>>()

  const rowOf = (rawId: string) =>
    Effect.map(internal.userId(rawId), (id) => Option.flatMap(id, (n) => Option.fromNullable(users.get(n))))

  const existing = (rawId: string) =>
    Effect.flatMap(rowOf(rawId), (row) =>
      Option.match(row, {
        onNone: () => Effect.fail(new UserStore.UserNotFound({ userId: rawId })),
        onSome: Effect.succeed
      }))

  const setOf = <K>(map: Map<K, Set<string>>, key: K): Set<string> => {
    let set = map.get(key)
    if (set === undefined) map.set(key, set = new Set())
    return set
  }

  const ensureGroup = (name: string): UserStore.Group => {
    let id = groups.get(name)
    if (id === undefined) groups.set(name, id = nextGroupId++)
    return { id: String(id), name }
  }

  const existingGroup = (rawName: string) =>
    Effect.flatMap(internal.groupName(rawName), (name) =>
      groups.has(name) ? Effect.succeed(name) : Effect.fail(new UserStore.GroupNotFound({ name })))

  const register = (perm: string, name?: string) => {
    if (!known.has(perm)) known.set(perm, name ?? perm)
  }

  const usersWith = (predicate: (row: Row) => boolean) =>
    Array.from(users.values()).filter(predicate).sort((a, b) => a.id - b.id).map(toStored)

  const service: UserStore.Service = {
    findByUsername: (raw) =>
      Effect.map(internal.username(raw), (name) => {
        const id = byUsername.get(name)
        return id === undefined ? Option.none() : Option.some(toStored(users.get(id)!))
      }),
    findById: (raw) => Effect.map(rowOf(raw), Option.map(toStored)),
    create: (raw) =>
      Effect.flatMap(internal.createUser(raw), (input) => {
        if (byUsername.has(input.username)) {
          return Effect.fail(new UserStore.UserAlreadyExists({ username: input.username }))
        }
        const row: Row = { id: nextUserId++, ...input, lastLogin: undefined }
        users.set(row.id, row)
        byUsername.set(row.username, row.id)
        return Effect.succeed(toStored(row))
      }),
    setPassword: (rawId, rawHash) =>
      Effect.flatMap(internal.passwordHash(rawHash), (hash) =>
        Effect.map(existing(rawId), (row) => {
          row.passwordHash = hash
        })),
    upgradePasswordHash: (rawId, hashes) =>
      Effect.gen(function*() {
        const { from, to } = yield* internal.hashChange(hashes)
        const row = yield* rowOf(rawId)
        if (Option.isNone(row) || row.value.passwordHash !== from) return false
        row.value.passwordHash = to
        return true
      }),
    setFlags: (rawId, rawFlags) =>
      Effect.flatMap(internal.flags(rawFlags), (flags) =>
        Effect.map(existing(rawId), (row) => {
          if (flags.isActive !== undefined) row.isActive = flags.isActive
          if (flags.isStaff !== undefined) row.isStaff = flags.isStaff
          if (flags.isSuperuser !== undefined) row.isSuperuser = flags.isSuperuser
        })),
    updateProfile: (rawId, rawProfile) =>
      Effect.flatMap(internal.profile(rawProfile), (profile) =>
        Effect.map(existing(rawId), (row) => {
          if (profile.email !== undefined) row.email = profile.email
          if (profile.firstName !== undefined) row.firstName = profile.firstName
          if (profile.lastName !== undefined) row.lastName = profile.lastName
        })),
    setLastLogin: (rawId, rawDate) =>
      Effect.flatMap(internal.date(rawDate), (date) =>
        Effect.map(existing(rawId), (row) => {
          row.lastLogin = new Date(date.getTime())
        })),
    createGroup: (raw) => Effect.map(internal.groupName(raw), ensureGroup),
    addToGroup: (rawId, rawGroup) =>
      Effect.flatMap(existing(rawId), (row) =>
        Effect.map(existingGroup(rawGroup), (name) => {
          setOf(memberships, row.id).add(name)
        })),
    removeFromGroup: (rawId, rawGroup) =>
      Effect.flatMap(internal.groupName(rawGroup), (name) =>
        Effect.map(existing(rawId), (row) => {
          memberships.get(row.id)?.delete(name)
        })),
    setGroups: (rawId, rawNames) =>
      Effect.flatMap(internal.groupNamesOf(rawNames), (names) =>
        Effect.map(existing(rawId), (row) => {
          for (const name of names) ensureGroup(name)
          memberships.set(row.id, new Set(names))
        })),
    groupsOf: (rawId) =>
      Effect.map(rowOf(rawId), (row) =>
        Option.isNone(row) ? [] : internal.sortNames(memberships.get(row.value.id) ?? [])),
    createPermission: (rawPerm, rawName) =>
      Effect.flatMap(internal.permission(rawPerm), ({ perm }) =>
        Effect.map(
          rawName === undefined ? Effect.succeed(undefined) : internal.permissionName(rawName),
          (name) => register(perm, name)
        )),
    permissions: () => Effect.sync(() => new Set(known.keys())),
    grantPermission: (rawId, rawPerm) =>
      Effect.flatMap(internal.permission(rawPerm), ({ perm }) =>
        Effect.map(existing(rawId), (row) => {
          register(perm)
          setOf(userPerms, row.id).add(perm)
        })),
    revokePermission: (rawId, rawPerm) =>
      Effect.flatMap(internal.permission(rawPerm), ({ perm }) =>
        Effect.map(existing(rawId), (row) => {
          userPerms.get(row.id)?.delete(perm)
        })),
    grantGroupPermission: (rawGroup, rawPerm) =>
      Effect.flatMap(internal.permission(rawPerm), ({ perm }) =>
        Effect.map(existingGroup(rawGroup), (name) => {
          register(perm)
          setOf(groupPerms, name).add(perm)
        })),
    revokeGroupPermission: (rawGroup, rawPerm) =>
      Effect.flatMap(internal.permission(rawPerm), ({ perm }) =>
        Effect.map(existingGroup(rawGroup), (name) => {
          groupPerms.get(name)?.delete(perm)
        })),
    userPermissions: (rawId) =>
      Effect.map(rowOf(rawId), (row) =>
        Option.isNone(row) ? new Set<string>() : new Set(userPerms.get(row.value.id) ?? [])),
    groupPermissions: (rawId) =>
      Effect.map(rowOf(rawId), (row) => {
        const out = new Set<string>()
        if (Option.isNone(row)) return out
        for (const name of memberships.get(row.value.id) ?? []) {
          for (const perm of groupPerms.get(name) ?? []) out.add(perm)
        }
        return out
      }),
    permissionsOfGroup: (rawName) =>
      Effect.map(internal.groupName(rawName), (name): ReadonlySet<string> => new Set(groupPerms.get(name) ?? [])),
    withPerm: (rawPerm, rawOptions = {}) =>
      Effect.flatMap(internal.permission(rawPerm), ({ perm }) =>
        Effect.map(internal.withPermOptions(rawOptions), (options) => {
          const isActive = options.isActive === undefined ? true : options.isActive
          const includeSuperusers = options.includeSuperusers ?? true
          const holds = (row: Row) =>
            (includeSuperusers && row.isSuperuser) ||
            (userPerms.get(row.id)?.has(perm) ?? false) ||
            Array.from(memberships.get(row.id) ?? []).some((name) => groupPerms.get(name)?.has(perm) ?? false)
          return usersWith((row) => (isActive === null || row.isActive === isActive) && holds(row))
        })),
    list: () => Effect.sync(() => usersWith(() => true)),
    // The row, its memberships and its direct permissions, as Django's `user.delete()` cascades;
    // ids are never handed out again (`nextUserId` only grows).
    delete: (rawId) =>
      Effect.map(rowOf(rawId), (row) => {
        if (Option.isNone(row)) return false
        users.delete(row.value.id)
        byUsername.delete(row.value.username)
        memberships.delete(row.value.id)
        userPerms.delete(row.value.id)
        return true
      })
  }
  return service
})

/**
 * A fresh, empty memory store.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryUserStore, UserStore } from "effect-auth"
 *
 * const count = Effect.flatMap(UserStore.UserStore, (store) => store.list()).pipe(
 *   Effect.map((users) => users.length),
 *   Effect.provide(MemoryUserStore.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<UserStore.UserStore> = Layer.effect(UserStore.UserStore, make)
