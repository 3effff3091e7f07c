/**
 * Object permissions in the fold, as django-guardian's `ObjectPermissionBackend`: it never
 * authenticates anyone (every credential is `NoMatch("unsupported-credentials")`), and answers
 * `hasPerm(user, perm, obj)` for an object (`ObjectPermissions.ObjectRef`, or anything `refOf`
 * turns into one) from the `ObjectPermissions` store: the user's own grants on the object, and
 * their groups' (groups from the `UserStore`). Only a permission of the object's app is the
 * object's (guardian raises `WrongAppError` for another app's): another's is `false`; where the
 * store knows each model's permissions (`ObjectPermissions.Service.modelPermissions`: Django's
 * tables, or a registry of `Models`), only the object's model's are, as guardian looks them up
 * among the object's content type's, and `getAllPermissions(user, obj)` gives an active superuser
 * every one of them, as guardian's `get_perms(obj)` does. A codename alone (`"change_report"`) is
 * the permission of that codename in the object's app, as guardian takes it. Inactive users hold
 * nothing; without an object, or with one it does not know or cannot read, it abstains, leaving
 * global permissions to `ModelBackend`. `AuthService.explain` says which grant (or which group)
 * answered.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { AuthService, MemoryUserStore, ModelBackend, ObjectPermissions, PasswordHasher } from "effect-auth"
 * import * as ObjectPermissionBackend from "effect-auth/backends/ObjectPermissionBackend"
 *
 * const AuthLive = AuthService.layer([ModelBackend.ModelBackend, ObjectPermissionBackend.ObjectPermissionBackend]).pipe(
 *   Layer.provide(Layer.merge(ModelBackend.layer(), ObjectPermissionBackend.layer())),
 *   Layer.provide(Layer.mergeAll(MemoryUserStore.layer, PasswordHasher.layerTest, ObjectPermissions.layerMemory))
 * )
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import { isOfObjectApp, isWho } from "../internal/objectRef.js"
import { askStore, isInactive, storeFlags } from "../internal/userStore.js"
import * as ObjectPermissions from "../ObjectPermissions.js"
import type * as Permissions from "../Permissions.js"
import type { User } from "../User.js"
import * as UserStore from "../UserStore.js"

/**
 * The backend's options.
 *
 * @example
 * ```ts
 * import type * as ObjectPermissionBackend from "effect-auth/backends/ObjectPermissionBackend"
 *
 * interface Report { readonly id: number; readonly title: string }
 * const options: ObjectPermissionBackend.Options = {
 *   refOf: (obj) => ({ contentType: "reports.report", objectPk: String((obj as Report).id) })
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Default: `"object"`. */
  readonly id?: string | undefined
  /**
   * The reference of a `hasPerm` object; default `ObjectPermissions.refOf` (objects that carry
   * `contentType` and `objectPk`). Answer `undefined` for objects this backend does not know; an
   * object it throws on (one that cannot be read) counts as one this backend does not know. Its
   * answer is checked as `ObjectPermissions.refOf` checks an object, after an integer `objectPk`
   * (a number or a bigint) is made its decimal string, as guardian's `force_str(obj.pk)`: what
   * is then no reference counts as an object this backend does not know (an abstention).
   */
  readonly refOf?: ((obj: unknown) => ObjectPermissions.ObjectRef | undefined) | undefined
  readonly policy?: AuthBackend.PolicyInput | undefined
}

/**
 * The backend as a service, for `AuthService.layer([...])`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as ObjectPermissionBackend from "effect-auth/backends/ObjectPermissionBackend"
 *
 * const id = Effect.map(ObjectPermissionBackend.ObjectPermissionBackend, (backend) => backend.id)
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export class ObjectPermissionBackend extends Context.Tag("effect-auth/backends/ObjectPermissionBackend")<
  ObjectPermissionBackend,
  AuthBackend.AuthBackend<unknown>
>() {}

const none: ReadonlySet<string> = new Set()

// A codename alone (no dot: `change_report`) is the permission of that codename in the object's
// app, as guardian's ObjectPermissionChecker takes it (it looks the codename up among the object's
// content type's permissions). A permission string with a dot is taken as it is.
const qualified = (perm: string, ref: ObjectPermissions.ObjectRef): string =>
  typeof perm === "string" && !perm.includes(".") ? `${ref.contentType.slice(0, ref.contentType.indexOf("."))}.${perm}` : perm

// A `refOf` of the app's answers what it answers: an integer primary key as a number (or a bigint)
// is its decimal string, as guardian's `force_str(obj.pk)` makes it; the rest is checked as
// `ObjectPermissions.refOf` checks an object, and anything that is no reference then (a content
// type with no dot, an empty key, a fraction) is an object this backend does not know, an
// abstention. Before, the store refused it and the question failed with a TransportError (a 503).
const checkedRef = (given: unknown): ObjectPermissions.ObjectRef | undefined => {
  if (typeof given !== "object" || given === null) return undefined
  const { contentType, objectPk } = given as { readonly contentType?: unknown; readonly objectPk?: unknown }
  const pk = typeof objectPk === "bigint" || (typeof objectPk === "number" && Number.isSafeInteger(objectPk))
    ? String(objectPk)
    : objectPk
  return Option.getOrUndefined(ObjectPermissions.refOf({ contentType, objectPk: pk }))
}

// It authenticates nobody: no input decodes, so the fold skips it as unsupported credentials.
const NoCredentials = Schema.Unknown.pipe(Schema.filter(() => false, { message: () => "object permissions only" }))

/**
 * Builds the backend on the `ObjectPermissions` store and `UserStore` in context.
 *
 * @example
 * ```ts
 * import * as ObjectPermissionBackend from "effect-auth/backends/ObjectPermissionBackend"
 *
 * const backend = ObjectPermissionBackend.make({ id: "guardian" })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<AuthBackend.AuthBackend<unknown>, never, ObjectPermissions.ObjectPermissions | UserStore.UserStore> =>
  Effect.gen(function*() {
    const id = options.id ?? "object"
    const grants = yield* ObjectPermissions.ObjectPermissions
    const users = yield* UserStore.UserStore
    const custom = options.refOf
    const toRef = custom === undefined
      ? (obj: unknown) => Option.getOrUndefined(ObjectPermissions.refOf(obj))
      : (obj: unknown) => checkedRef(custom(obj))
    const transport = (cause: unknown) => new AuthError.TransportError({ backend: id, cause })
    // An object that cannot be read (an untyped caller's Proxy whose traps throw, which `refOf`
    // reads) is none this backend knows: an abstention, never a defect.
    const refFor = (obj: unknown): ObjectPermissions.ObjectRef | undefined => {
      try {
        return toRef(obj)
      } catch {
        return undefined
      }
    }

    // The user's own grants on the object and each group's, or none when there is nothing to ask.
    const grantsOn = (user: User, obj: unknown) =>
      Effect.gen(function*() {
        if (isInactive(user) || obj === undefined || obj === null) return undefined
        const ref = refFor(obj)
        if (ref === undefined) return undefined
        // Grants are by user id: another backend's user 1 is not the store's user 1; a copy of a
        // row counts with the row's flags (see `storeFlags`).
        const flags = yield* storeFlags(users, user, transport)
        if (flags === undefined || !flags.isActive) return undefined
        // The model's permissions, where the store knows them (guardian's
        // `Permission.objects.filter(content_type=ctype)`), of the object's app only.
        const model = grants.modelPermissions === undefined
          ? undefined
          : new Set(
            [...(yield* Effect.mapError(grants.modelPermissions(ref.contentType), transport))].filter((perm) =>
              isOfObjectApp(perm, ref.contentType)
            )
          )
        // Only the object's app's permissions are the object's (guardian raises WrongAppError for
        // another's), and only its model's where the store knows them (guardian looks them up
        // among the content type's): a grant stored before the stores refused it counts for nothing.
        const isObjects = (perm: string) => isOfObjectApp(perm, ref.contentType) && (model === undefined || model.has(perm))
        // guardian's checker gives an active superuser every permission of the object's model,
        // asking for no grant: where the store cannot say which those are, the superuser's grants.
        if (flags.isSuperuser && model !== undefined) {
          return { ref, model, superuser: true, own: none, viaGroups: new Map<string, ReadonlySet<string>>() }
        }
        // A group whose name no object grant can hold (a Django group named with a NUL, which
        // PostgreSQL cannot store in the grants' table) has no grants: left out, not a refusal of
        // the user's other groups' and own grants.
        const groups = (yield* askStore(users.groupsOf(flags.id), [] as ReadonlyArray<string>, transport)).filter(isWho)
        const own = yield* Effect.mapError(grants.userPermissions(flags.id, ref), transport)
        const viaGroups = yield* Effect.mapError(grants.groupPermissions(groups, ref), transport)
        const ofObject = (perms: ReadonlySet<string>): ReadonlySet<string> => new Set([...perms].filter(isObjects))
        return {
          ref,
          model,
          superuser: false,
          own: ofObject(own),
          viaGroups: new Map([...viaGroups].map(([group, perms]) => [group, ofObject(perms)] as const))
        }
      })

    const getAllPermissions = (user: User, obj?: unknown) =>
      Effect.map(grantsOn(user, obj), (found): ReadonlySet<string> => {
        if (found === undefined) return none
        if (found.superuser) return new Set(found.model)
        const all = new Set(found.own)
        for (const perms of found.viaGroups.values()) for (const perm of perms) all.add(perm)
        return all
      })

    const explainPerm = (user: User, asked: string, obj?: unknown) =>
      Effect.map(grantsOn(user, obj), (found): Permissions.Account => {
        if (isInactive(user)) return { granted: false, reasons: ["inactive user: no object permissions"] }
        if (found === undefined) return { granted: false, reasons: ["no object, or one this backend does not know"] }
        const perm = qualified(asked, found.ref)
        if (!isOfObjectApp(perm, found.ref.contentType)) {
          return { granted: false, reasons: [`not a permission of the object's app (${found.ref.contentType})`] }
        }
        if (found.model !== undefined && !found.model.has(perm)) {
          return { granted: false, reasons: [`not a permission of the object's model (${found.ref.contentType})`] }
        }
        if (found.superuser) return { granted: true, reasons: ["superuser: every permission of the object's model"] }
        const reasons: Array<string> = []
        if (found.own.has(perm)) reasons.push("granted to the user on this object")
        const groups = [...found.viaGroups].filter(([, perms]) => perms.has(perm)).map(([group]) => group)
        if (groups.length > 0) reasons.push(`granted on this object to group ${groups.join(", ")}`)
        return reasons.length === 0 ? { granted: false, reasons: ["no grant on this object"] } : { granted: true, reasons }
      })

    return AuthBackend.make({
      id,
      credentials: NoCredentials,
      authenticate: () => AuthError.failures(id).noMatch("unsupported-credentials"),
      getUser: () => Effect.succeedNone,
      hasPerm: (user, perm, obj) =>
        Effect.map(grantsOn(user, obj), (found) => {
          if (found === undefined) return false
          const full = qualified(perm, found.ref)
          if (found.superuser) return found.model !== undefined && found.model.has(full)
          return found.own.has(full) || [...found.viaGroups.values()].some((perms) => perms.has(full))
        }),
      explainPerm,
      getAllPermissions,
      ...(options.policy === undefined ? {} : { policy: options.policy })
    })
  })

/**
 * The backend on the `ObjectPermissions` store and `UserStore` you provide.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { MemoryUserStore, ObjectPermissions } from "effect-auth"
 * import * as ObjectPermissionBackend from "effect-auth/backends/ObjectPermissionBackend"
 *
 * const Live = ObjectPermissionBackend.layer().pipe(Layer.provide(Layer.merge(MemoryUserStore.layer, ObjectPermissions.layerMemory)))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<ObjectPermissionBackend, never, ObjectPermissions.ObjectPermissions | UserStore.UserStore> =>
  Layer.effect(ObjectPermissionBackend, make(options))
