// The registry of each model's permissions that object permissions are checked against, as
// guardian checks them against Django's `auth_permission` rows of the object's content type: a
// grant of a permission the model does not have fails (`Permission.DoesNotExist`), a question
// about one is `false`, and a superuser holds every permission of the model.
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { AuthConfigError } from "../AuthError.js"
import * as Permissions from "../Permissions.js"
import { collectionOf } from "./collection.js"
import { isOfObjectApp, ObjectRef } from "./objectRef.js"
import { isStorable } from "./wellFormed.js"

/**
 * Each model's permissions: its content type (`app_label.model`) and the whole permissions
 * (`app_label.codename`) it has. `ObjectPermissions.Models`.
 *
 * @internal
 */
export type Models = { readonly [contentType: string]: Iterable<string> }

const isContentType = Schema.is(ObjectRef.fields.contentType)
const isPermission = Schema.is(Permissions.Permission)

/**
 * Whether `value` is a content type as object references name one (`app_label.model`).
 *
 * @internal
 */
export const contentTypeOk = (value: unknown): value is string => typeof value === "string" && isContentType(value)

/**
 * The registry, checked once (when a store is built): a plain object whose keys are content
 * types and whose values are collections of permissions of that content type's app, each one a
 * store keeps as it is. A mistake is an `AuthConfigError` naming `module` and the entry, rather
 * than a registry that silently refuses every grant of a model.
 *
 * @internal
 */
export const check = (
  module: string,
  models: unknown
): Effect.Effect<ReadonlyMap<string, ReadonlySet<string>>, AuthConfigError> =>
  Effect.suspend(() => {
    const fail = (message: string) => Effect.fail(new AuthConfigError({ message: `${module}: models ${message}` }))
    if (typeof models !== "object" || models === null || Array.isArray(models)) {
      return fail("must map each content type (app_label.model) to its permissions")
    }
    const out = new Map<string, ReadonlySet<string>>()
    try {
      for (const [contentType, listed] of Object.entries(models)) {
        if (!contentTypeOk(contentType)) {
          return fail(`${JSON.stringify(contentType)}: not a content type (app_label.model)`)
        }
        const perms = collectionOf(listed)
        if (perms === undefined) return fail(`${JSON.stringify(contentType)}: its permissions must be a list`)
        const set = new Set<string>()
        for (const perm of perms) {
          // Whole permissions, as grants name them: a codename alone (`view_report`) would be
          // no permission of the app, and every grant of it refused.
          if (typeof perm !== "string" || !isPermission(perm) || !isStorable(perm) || !isOfObjectApp(perm, contentType)) {
            return fail(
              `${JSON.stringify(contentType)}: ${
                typeof perm === "string" ? JSON.stringify(perm) : "a value that is no string"
              } is not a permission of its app (app_label.codename, e.g. ${contentType.slice(0, contentType.indexOf("."))}.view_${
                contentType.slice(contentType.indexOf(".") + 1)
              })`
            )
          }
          set.add(perm)
        }
        out.set(contentType, set)
      }
    } catch {
      // a getter or an iterable that throws, a Proxy whose traps throw
      return fail("could not be read")
    }
    return Effect.succeed(out)
  })
