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
import type { AuthConfigError } from "./AuthError.js"
import { collectionOf } from "./internal/collection.js"
import * as internalModels from "./internal/modelPermissions.js"
import * as internalRef from "./internal/objectRef.js"
import { isStorable } from "./internal/wellFormed.js"
import * as Permissions from "./Permissions.js"

// (read once, own properties only: see internal/objectRef)
const readRef = internalRef.readRef

/**
 * An object, as object permissions name it: its content type (`app_label.model`, Django's
 * `ContentType` natural key, at most 201 characters) and its primary key as a string (1 to 255
 * characters), neither with a NUL or a lone surrogate, which not every store keeps: the lengths
 * are the SQL columns', in UTF-16 units.
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
export const ObjectRef = internalRef.ObjectRef

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

/**
 * The object reference of a `hasPerm` object, when it is one (anything with a valid `contentType`
 * and a string `objectPk` of its own, as {@link ObjectRef} checks them); none for anything else,
 * an object that throws when read and one with a NUL or a lone surrogate (which no store keeps)
 * included.
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
export const refOf = (obj: unknown): Option.Option<ObjectRef> => Option.fromNullable(readRef(obj))

/**
 * A store operation that failed (the database could not be reached, bad input: an id or a group
 * that is no string, a permission that is none, no object reference; see {@link make}).
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
  /**
   * The permissions a model has (`app_label.codename` each), named by its content type
   * (`app_label.model`): Django's `auth_permission` rows of that `django_content_type`, or the
   * {@link Models} a store was given; empty for a model it has none of. Optional: a store that
   * has it ({@link makeMemoryWith} or `SqlObjectPermissions` with `models`, `SqlObjectPermissions`
   * on a Django site's tables) refuses a grant of any other permission on the model's objects,
   * as guardian's `assign_perm` fails with `Permission.DoesNotExist`, and `ObjectPermissionBackend`
   * answers `false` for one and gives an active superuser every one of them. A store without it
   * knows only each permission's app.
   */
  readonly modelPermissions?: ((contentType: string) => Effect.Effect<ReadonlySet<string>, ObjectPermissionsError>) | undefined
}

/**
 * Each model's permissions, for a store that knows them (see `Service.modelPermissions`): its
 * content type (`app_label.model`, as object references name it) and every permission it has,
 * whole (`app_label.codename`, of that app), as Django makes them from the model (`add_`,
 * `change_`, `delete_`, `view_` and the model's `Meta.permissions`). A model not listed has no
 * permissions: no grant on its objects is taken. Checked when the store is built: a key that is
 * no content type, or a permission that is none or of another app (a codename alone included),
 * is an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import type { ObjectPermissions } from "effect-auth"
 *
 * const models: ObjectPermissions.Models = {
 *   "reports.report": ["reports.view_report", "reports.change_report", "reports.export_report"],
 *   "reports.invoice": ["reports.view_invoice", "reports.change_invoice"]
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Models = internalModels.Models

/**
 * Options of {@link makeMemoryWith} and {@link layerMemoryWith}.
 *
 * @example
 * ```ts
 * import type { ObjectPermissions } from "effect-auth"
 *
 * const options: ObjectPermissions.MemoryOptions = { models: { "reports.report": ["reports.view_report"] } }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface MemoryOptions {
  /** Each model's permissions (see {@link Models}); without it the store knows only their apps. */
  readonly models?: Models | undefined
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

/**
 * Checks a grant's input: a permission string of the object's app (`reports.view_report` on a
 * `reports.report`, as guardian, which raises `WrongAppError` for another app's) and a valid object
 * reference; a typed error otherwise (for stores of your own; {@link make} checks every call's
 * input, and a grant's model where the store knows its permissions: `validate` knows no store,
 * so it checks the app only). For a revocation (`operation` `"revokeUser"` or `"revokeGroup"`) the
 * app is not checked, so that a grant stored before this check can be taken back. Total: a permission or an object of
 * any type (`null`, a number, a Proxy whose traps throw) is refused, never a defect; an
 * `operation` that is no string is named `"validate"` in the error.
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
  // The operation only names the call in the error, whose Schema takes a string: a number from an
  // untyped caller threw a ParseError while the refusal was built, outside the Effect.
  Effect.asVoid(
    checkGrant(
      typeof operation === "string" ? operation : "validate",
      perm,
      obj,
      operation !== "revokeUser" && operation !== "revokeGroup"
    )
  )

const refuse = (operation: string, message: string) => Effect.fail(new ObjectPermissionsError({ operation, message }))

const isPermission = Schema.is(Permissions.Permission)

// Only a string is quoted, and only a short one (a 50 MB string from a form made a 50 MB error);
// anything else is named by its type, never shown: it may be anything (a Proxy whose traps throw,
// a bigint JSON.stringify throws on, a secret).
const quotedMaxLength = 300
const describe = (value: unknown): string => {
  if (typeof value === "string") {
    return value.length <= quotedMaxLength ? JSON.stringify(value) : `a string of ${value.length} UTF-16 units (too long to show)`
  }
  const type = value === null ? "null" : typeof value
  return type === "null" || type === "undefined" ? type : `${type === "object" ? "an" : "a"} ${type}`
}

// The permission and the object reference of a grant, the reference as read once (`readRef`);
// with `sameApp`, a permission of another app than the object's is refused too (a revocation
// takes it, so that a grant stored before can go).
const checkGrant = (
  operation: string,
  perm: unknown,
  obj: unknown,
  sameApp: boolean
): Effect.Effect<ObjectRef, ObjectPermissionsError> =>
  typeof perm !== "string" || !isPermission(perm)
    ? refuse(operation, `not a permission (app_label.codename): ${describe(perm)}`)
    : !isStorable(perm)
    ? refuse(operation, "permission must hold no NUL or lone surrogate")
    : Effect.flatMap(
      checkRef(operation, obj),
      (ref) =>
        !sameApp || internalRef.isOfObjectApp(perm, ref.contentType)
          ? Effect.succeed(ref)
          : refuse(
            operation,
            `permission ${JSON.stringify(perm)} is not of the object's app (content type ${JSON.stringify(ref.contentType)})`
          )
    )

const checkRef = (operation: string, obj: unknown): Effect.Effect<ObjectRef, ObjectPermissionsError> => {
  const ref = readRef(obj)
  return ref === undefined
    ? refuse(operation, "not an object reference ({ contentType: \"app_label.model\", objectPk })")
    : Effect.succeed(ref)
}

// Ids and group names are compared as strings: an untyped caller's number 1 was user "1" on
// PostgreSQL and SQLite (which convert it) and nobody in memory; and as every store keeps them
// (`isWho`).
const isWho = internalRef.isWho
const whoRule = `a string of at most ${internalRef.whoMaxLength} characters, no NUL or lone surrogate`
const checkWho = (operation: string, field: "userId" | "group", who: unknown): Effect.Effect<string, ObjectPermissionsError> =>
  isWho(who) ? Effect.succeed(who) : refuse(operation, `${field} must be ${whoRule}`)

const checkGroups = (operation: string, groups: unknown): Effect.Effect<ReadonlyArray<string>, ObjectPermissionsError> => {
  const problem = refuse(operation, `groups must be a collection of group names, each ${whoRule}`)
  // (a string is a collection of its characters: refused, not read as groups "s", "t", ...)
  try {
    const names = collectionOf(groups)
    return names !== undefined && names.every(isWho) ? Effect.succeed(names) : problem
  } catch {
    // an iterable that throws when iterated, a Proxy whose traps throw
    return problem
  }
}

/**
 * A store that checks every call's input before `store` sees it: a user id or a group name that
 * is a string every store keeps as it is (at most 255 characters, the columns' limit, and no NUL
 * or lone surrogate), a permission that is one (`app_label.codename`, grants and revocations,
 * with no lone surrogate either; a grant's of the object's app, see {@link validate}, and, when
 * `store` has `modelPermissions`, one of the object's model's), a valid object reference
 * ({@link ObjectRef}), and groups that are a collection of such names. Anything else, as an untyped caller may hand over (`null`, a
 * number, an object that throws when read, a value PostgreSQL refuses where SQLite and memory
 * kept it), fails with `ObjectPermissionsError` on every store alike, never a defect, and `store`
 * is not asked. The object reference `store` gets is a plain copy, read once. Both stores of this
 * library are built with it; so may stores of your own.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ObjectPermissions } from "effect-auth"
 *
 * // a store of your own: each grant logged, then kept in memory
 * const grants = ObjectPermissions.makeMemory()
 * const store = ObjectPermissions.make({
 *   ...grants,
 *   grantUser: (userId, perm, obj) => Effect.zipRight(Effect.log(`grant ${perm} to ${userId}`), grants.grantUser(userId, perm, obj))
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (store: Service): Service => {
  const modelPermissions = store.modelPermissions
  // guardian's assign_perm looks the permission up among the object's content type's
  // (Permission.DoesNotExist for another model's, `blog.change_comment` on a `blog.post`): where
  // the store knows the model's permissions a grant takes only those. A revocation takes any, so
  // that a grant stored before can go.
  const ofModel = (operation: string, perm: string, ref: ObjectRef): Effect.Effect<void, ObjectPermissionsError> =>
    modelPermissions === undefined ? Effect.void : Effect.flatMap(
      modelPermissions(ref.contentType),
      (perms) =>
        perms.has(perm) ? Effect.void : refuse(
          operation,
          `permission ${JSON.stringify(perm)} is not one of the object's model (content type ${JSON.stringify(ref.contentType)})`
        )
    )
  const change = (operation: "grantUser" | "revokeUser" | "grantGroup" | "revokeGroup", field: "userId" | "group") => {
    const granting = operation === "grantUser" || operation === "grantGroup"
    return (who: string, perm: string, obj: ObjectRef) =>
      Effect.suspend(() =>
        Effect.flatMap(
          Effect.zip(checkWho(operation, field, who), checkGrant(operation, perm, obj, granting)),
          ([whom, ref]) =>
            granting
              ? Effect.zipRight(ofModel(operation, perm, ref), store[operation](whom, perm, ref))
              : store[operation](whom, perm, ref)
        )
      )
  }
  return {
    ...(modelPermissions === undefined ? {} : {
      modelPermissions: (contentType: string) =>
        Effect.suspend(() =>
          internalModels.contentTypeOk(contentType)
            // (a copy: the registry is the store's own)
            ? Effect.map(modelPermissions(contentType), (perms): ReadonlySet<string> => new Set(perms))
            : refuse("modelPermissions", "not a content type (app_label.model)")
        )
    }),
    grantUser: change("grantUser", "userId"),
    revokeUser: change("revokeUser", "userId"),
    grantGroup: change("grantGroup", "group"),
    revokeGroup: change("revokeGroup", "group"),
    userPermissions: (userId, obj) =>
      Effect.suspend(() =>
        Effect.flatMap(
          Effect.zip(checkWho("userPermissions", "userId", userId), checkRef("userPermissions", obj)),
          ([id, ref]) => store.userPermissions(id, ref)
        )
      ),
    groupPermissions: (groups, obj) =>
      Effect.suspend(() =>
        Effect.flatMap(
          Effect.zip(checkGroups("groupPermissions", groups), checkRef("groupPermissions", obj)),
          ([names, ref]) => store.groupPermissions(names, ref)
        )
      )
  }
}

/**
 * A store in this process's memory (tests, one instance). It knows no model's permissions, only
 * their apps: see {@link makeMemoryWith} for one that does.
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
export const makeMemory = (): Service => memoryStore(undefined)

/**
 * A store in this process's memory that knows each model's permissions (`models`, see
 * {@link Models}): a grant of a permission the object's model does not have fails with
 * `ObjectPermissionsError`, as guardian's `assign_perm` fails, and `ObjectPermissionBackend`
 * answers as guardian's checker does (`false` for such a permission, every permission of the
 * model for an active superuser). A registry that is not one is an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ObjectPermissions } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* ObjectPermissions.makeMemoryWith({
 *     models: { "reports.report": ["reports.view_report", "reports.change_report"] }
 *   })
 *   const q3 = ObjectPermissions.ref("reports.report", 3)
 *   yield* store.grantUser("1", "reports.change_report", q3)
 *   // another model's permission: ObjectPermissionsError
 *   return yield* Effect.either(store.grantUser("1", "reports.change_invoice", q3))
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemoryWith = (options: MemoryOptions): Effect.Effect<Service, AuthConfigError> =>
  options.models === undefined
    ? Effect.sync(makeMemory)
    : Effect.map(internalModels.check("ObjectPermissions", options.models), memoryStore)

const noPermissions: ReadonlySet<string> = new Set()

const memoryStore = (models: ReadonlyMap<string, ReadonlySet<string>> | undefined): Service => {
  const grants = new Map<string, Set<string>>()
  const key = (kind: "user" | "group", who: string, obj: ObjectRef) => JSON.stringify([kind, who, obj.contentType, obj.objectPk])
  // `make` has checked the input
  const change = (kind: "user" | "group", add: boolean) => (who: string, perm: string, obj: ObjectRef) =>
    Effect.sync(() => {
      const k = key(kind, who, obj)
      if (add) {
        const set = grants.get(k) ?? new Set<string>()
        set.add(perm)
        grants.set(k, set)
      } else grants.get(k)?.delete(perm)
    })
  return make({
    grantUser: change("user", true),
    revokeUser: change("user", false),
    grantGroup: change("group", true),
    revokeGroup: change("group", false),
    ...(models === undefined ? {} : {
      modelPermissions: (contentType: string) => Effect.succeed(models.get(contentType) ?? noPermissions)
    }),
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
  })
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

/**
 * {@link makeMemoryWith} as a layer: a memory store that knows each model's permissions.
 *
 * @example
 * ```ts
 * import { ObjectPermissions } from "effect-auth"
 *
 * const ObjectPermissionsLive = ObjectPermissions.layerMemoryWith({
 *   models: { "reports.report": ["reports.view_report", "reports.change_report"] }
 * })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemoryWith = (options: MemoryOptions): Layer.Layer<ObjectPermissions, AuthConfigError> =>
  Layer.effect(ObjectPermissions, makeMemoryWith(options))
