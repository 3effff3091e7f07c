/**
 * Object-level permissions, in django-guardian's shape: a permission granted to a user or a group
 * on one object, named by its content type (`app_label.model`) and primary key. The store behind
 * `ObjectPermissionBackend`, which answers `hasPerm(user, perm, obj)` from it.
 *
 * `SqlObjectPermissions` keeps the grants in SQLite or PostgreSQL; {@link layerMemory} in this
 * process. Group grants use the group's name, as `UserStore` does.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ObjectPermissions } from "effect-auth"
 *
 * const report = ObjectPermissions.ref("reports.report", "42")
 * const share = (userId: string) =>
 *   Effect.flatMap(ObjectPermissions.ObjectPermissions, (store) => store.grantUser(userId, "reports.view_report", report))
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Permissions from "./Permissions.js"

/**
 * An object, as object permissions name it: its content type (`app_label.model`, Django's
 * `ContentType` natural key) and its primary key as a string.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { ObjectPermissions } from "effect-auth"
 *
 * Schema.decodeUnknownSync(ObjectPermissions.ObjectRef)({ contentType: "reports.report", objectPk: "42" })
 * ```
 *
 * @since 0.2.0
 * @category schemas
 */
export const ObjectRef = Schema.Struct({
  contentType: Schema.String.pipe(Schema.maxLength(201), Schema.pattern(/^[^.\s]+\.[^.\s]+$/)),
  objectPk: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(255))
})

/**
 * @example
 * ```ts
 * import type { ObjectPermissions } from "effect-auth"
 *
 * const report: ObjectPermissions.ObjectRef = { contentType: "reports.report", objectPk: "42" }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface ObjectRef extends Schema.Schema.Type<typeof ObjectRef> {}

/**
 * An object reference from its parts.
 *
 * @example
 * ```ts
 * import { ObjectPermissions } from "effect-auth"
 *
 * const report = ObjectPermissions.ref("reports.report", 42)
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const ref = (contentType: string, objectPk: string | number): ObjectRef => ({
  contentType,
  objectPk: String(objectPk)
})

const isObjectRef = Schema.is(ObjectRef)

// An untyped caller's object may be a Proxy whose traps throw as it is read: no reference.
const isRef = (u: unknown): u is ObjectRef => {
  try {
    return isObjectRef(u)
  } catch {
    return false
  }
}

/**
 * The object reference of a `hasPerm` object, when it is one (anything with a valid `contentType`
 * and a string `objectPk`). An object that cannot be read (a Proxy whose traps throw) is none.
 *
 * @example
 * ```ts
 * import { ObjectPermissions } from "effect-auth"
 *
 * ObjectPermissions.refOf({ contentType: "reports.report", objectPk: "7", title: "Q3" }) // Option.some(...)
 * ObjectPermissions.refOf("reports.report:7") // Option.none()
 * ```
 *
 * @since 0.2.0
 * @category utils
 */
export const refOf = (obj: unknown): Option.Option<ObjectRef> => {
  try {
    return isObjectRef(obj) ? Option.some({ contentType: obj.contentType, objectPk: obj.objectPk }) : Option.none()
  } catch {
    return Option.none()
  }
}

/**
 * A store operation that failed (the database could not be reached, bad input).
 *
 * @example
 * ```ts
 * import { ObjectPermissions } from "effect-auth"
 *
 * const error = new ObjectPermissions.ObjectPermissionsError({ operation: "grantUser", message: "not a permission" })
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class ObjectPermissionsError extends Schema.TaggedError<ObjectPermissionsError>(
  "effect-auth/ObjectPermissionsError"
)("ObjectPermissionsError", { operation: Schema.String, message: Schema.String }) {}

/**
 * What a store offers. Granting twice, or revoking what was not granted, is not an error.
 *
 * @example
 * ```ts
 * import type { ObjectPermissions } from "effect-auth"
 *
 * const mine = (store: ObjectPermissions.Service, userId: string, obj: ObjectPermissions.ObjectRef) =>
 *   store.userPermissions(userId, obj)
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Service {
  readonly grantUser: (userId: string, perm: string, obj: ObjectRef) => Effect.Effect<void, ObjectPermissionsError>
  readonly revokeUser: (userId: string, perm: string, obj: ObjectRef) => Effect.Effect<void, ObjectPermissionsError>
  readonly grantGroup: (group: string, perm: string, obj: ObjectRef) => Effect.Effect<void, ObjectPermissionsError>
  readonly revokeGroup: (group: string, perm: string, obj: ObjectRef) => Effect.Effect<void, ObjectPermissionsError>
  /** The permissions granted to the user directly on the object. */
  readonly userPermissions: (userId: string, obj: ObjectRef) => Effect.Effect<ReadonlySet<string>, ObjectPermissionsError>
  /** The permissions granted on the object to each of these groups (groups with none are absent). */
  readonly groupPermissions: (
    groups: ReadonlyArray<string>,
    obj: ObjectRef
  ) => Effect.Effect<ReadonlyMap<string, ReadonlySet<string>>, ObjectPermissionsError>
}

/**
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ObjectPermissions } from "effect-auth"
 *
 * const revoke = (userId: string) =>
 *   Effect.flatMap(ObjectPermissions.ObjectPermissions, (store) =>
 *     store.revokeUser(userId, "reports.view_report", ObjectPermissions.ref("reports.report", 42)))
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export class ObjectPermissions extends Context.Tag("effect-auth/ObjectPermissions")<ObjectPermissions, Service>() {}

const isPermission = Schema.is(Permissions.Permission)

// JSON.stringify throws on a bigint and on a Proxy whose traps throw, and would quote a whole
// object: only a string is quoted, anything else named by its type.
const describe = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  const type = value === null ? "null" : typeof value
  return type === "null" || type === "undefined" ? type : `${type === "object" ? "an" : "a"} ${type}`
}

/**
 * Checks a grant's input: a permission string and a valid object reference; a typed error
 * otherwise (for stores of your own), whatever an untyped caller hands over (a bigint, a Proxy
 * whose traps throw). The message quotes a permission only when it is a string.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ObjectPermissions } from "effect-auth"
 *
 * const ok = ObjectPermissions.validate("grantUser", "reports.view_report", ObjectPermissions.ref("reports.report", 1))
 * ```
 *
 * @since 0.2.0
 * @category utils
 */
export const validate = (
  operation: string,
  perm: string,
  obj: ObjectRef
): Effect.Effect<void, ObjectPermissionsError> =>
  !isPermission(perm)
    ? Effect.fail(new ObjectPermissionsError({ operation, message: `not a permission (app_label.codename): ${describe(perm)}` }))
    : !isRef(obj)
    ? Effect.fail(new ObjectPermissionsError({ operation, message: "not an object reference ({ contentType: \"app_label.model\", objectPk })" }))
    : Effect.void

/**
 * A store in this process's memory (tests, one instance).
 *
 * @example
 * ```ts
 * import { ObjectPermissions } from "effect-auth"
 *
 * const store = ObjectPermissions.makeMemory()
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemory = (): Service => {
  const grants = new Map<string, Set<string>>()
  const key = (kind: "user" | "group", who: string, obj: ObjectRef) => JSON.stringify([kind, who, obj.contentType, obj.objectPk])
  const change = (operation: string, kind: "user" | "group", add: boolean) => (who: string, perm: string, obj: ObjectRef) =>
    Effect.zipRight(
      validate(operation, perm, obj),
      Effect.sync(() => {
        const k = key(kind, who, obj)
        if (add) {
          const set = grants.get(k) ?? new Set<string>()
          set.add(perm)
          grants.set(k, set)
        } else grants.get(k)?.delete(perm)
      })
    )
  return {
    grantUser: change("grantUser", "user", true),
    revokeUser: change("revokeUser", "user", false),
    grantGroup: change("grantGroup", "group", true),
    revokeGroup: change("revokeGroup", "group", false),
    userPermissions: (userId, obj) => Effect.sync(() => new Set(grants.get(key("user", userId, obj)) ?? [])),
    groupPermissions: (groups, obj) =>
      Effect.sync(() => {
        const out = new Map<string, ReadonlySet<string>>()
        for (const group of groups) {
          const perms = grants.get(key("group", group, obj))
          if (perms !== undefined && perms.size > 0) out.set(group, new Set(perms))
        }
        return out
      })
  }
}

/**
 * The memory store as a layer.
 *
 * @example
 * ```ts
 * import { ObjectPermissions } from "effect-auth"
 *
 * const ObjectPermissionsLive = ObjectPermissions.layerMemory
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory: Layer.Layer<ObjectPermissions> = Layer.sync(ObjectPermissions, makeMemory)
