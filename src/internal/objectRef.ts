// An object permission's object reference, as `ObjectPermissions.refOf` reads it: here so that the
// request cache (`Permissions.cached`) keys object questions by it without importing
// `ObjectPermissions`, which imports `Permissions`.
import * as Schema from "effect/Schema"
import { isStorable } from "./wellFormed.js"

// What every store keeps as it is (`isStorable`): PostgreSQL refuses a NUL and writes a lone
// surrogate as U+FFFD, where SQLite and memory kept both, so the engines answered each their own way.
const storable = (s: string) => isStorable(s) || "no NUL or lone surrogate"

/** `ObjectPermissions.ObjectRef`. @internal */
export const ObjectRef = Schema.Struct({
  contentType: Schema.String.pipe(Schema.maxLength(201), Schema.pattern(/^[^.\s]+\.[^.\s]+$/), Schema.filter(storable)),
  objectPk: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(255), Schema.filter(storable))
})

const isRef = Schema.is(ObjectRef)

/**
 * The reference of an object, or `undefined`: an untyped caller's object is read once, own
 * properties only, into a plain reference: a getter or a Proxy trap that throws (a revoked Proxy)
 * makes it no reference, and one that answers something else when read again cannot change what
 * was checked.
 *
 * @internal
 */
export const readRef = (obj: unknown): Schema.Schema.Type<typeof ObjectRef> | undefined => {
  if (typeof obj !== "object" || obj === null) return undefined
  try {
    const ref = { contentType: ownValue(obj, "contentType"), objectPk: ownValue(obj, "objectPk") }
    return isRef(ref) ? ref : undefined
  } catch {
    return undefined
  }
}
const ownValue = (obj: object, key: string): unknown =>
  Object.hasOwn(obj, key) ? (obj as Record<string, unknown>)[key] : undefined

/**
 * Whether a permission (`app_label.codename`) is of the app of an object's content type
 * (`app_label.model`): guardian looks an object's permissions up among its content type's, and
 * raises `WrongAppError` for a permission of another app.
 *
 * @internal
 */
export const isOfObjectApp = (perm: string, contentType: string): boolean => {
  const dot = perm.indexOf(".")
  return dot > 0 && perm.slice(0, dot) === contentType.slice(0, contentType.indexOf("."))
}

/** The longest user id or group name an object grant names (the columns' 255 characters). @internal */
export const whoMaxLength = 255

/**
 * A user id or group name as every object permission store keeps it: at most
 * {@link whoMaxLength} UTF-16 units (as `User.UserId` counts; PostgreSQL's 255 characters hold at
 * least as many) and no NUL or lone surrogate, which PostgreSQL refused (or kept as U+FFFD) where
 * SQLite and memory kept them.
 *
 * @internal
 */
export const isWho = (who: unknown): who is string =>
  typeof who === "string" && who.length <= whoMaxLength && isStorable(who)
