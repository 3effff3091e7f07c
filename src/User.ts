/**
 * The user type that flows through every effect-auth service.
 *
 * Like Django's `AUTH_USER_MODEL`, an application picks one user type for the whole site.
 * It does so once, by augmenting the {@link Register} interface; from then on
 * `AuthService.authenticate`, `getUser`, sessions and the HTTP `CurrentUser` all carry that type,
 * without casts.
 *
 * @example
 * ```ts
 * // src/auth-user.ts of your app
 * import type { User } from "effect-auth"
 *
 * export interface AppUser extends User.BaseUser {
 *   readonly email?: string
 *   readonly department?: string
 * }
 *
 * declare module "effect-auth/User" {
 *   interface Register {
 *     readonly user: AppUser
 *   }
 * }
 * ```
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as UserIdBounds from "./internal/userId.js"

/**
 * The fields every user carries, whatever the app adds.
 *
 * @example
 * ```ts
 * import type { User } from "effect-auth"
 *
 * const alice: User.BaseUser = { id: "1", username: "alice", isActive: true, isSuperuser: false }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface BaseUser {
  /** The id the issuing backend understands in `getUser`. */
  readonly id: string
  readonly username: string
  /** Inactive users never authenticate through the model backend and hold no permissions. */
  readonly isActive: boolean
  /** An active superuser has every permission without asking any backend. */
  readonly isSuperuser: boolean
}

/**
 * Augment this interface with `readonly user: YourUser` to choose the app's user type.
 *
 * @example
 * ```ts
 * import type { User } from "effect-auth"
 *
 * interface AppUser extends User.BaseUser {
 *   readonly email?: string
 *   readonly department?: string
 * }
 *
 * declare module "effect-auth/User" {
 *   interface Register {
 *     readonly user: AppUser
 *   }
 * }
 *
 * // `User.User` is now `AppUser` everywhere in the app
 * const email = (user: User.User): string | undefined => user.email
 * ```
 *
 * @since 0.1.0
 * @category registration
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface Register {}

/**
 * The app's user type: what {@link Register} names, or {@link BaseUser} when nothing is registered.
 *
 * @example
 * ```ts
 * import type { User } from "effect-auth"
 *
 * const greet = (user: User.User) => `hello ${user.username}`
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type User = Register extends { readonly user: infer U extends BaseUser } ? U : BaseUser

/**
 * Schema of a user id as accepted by `getUser`: a non-empty string of at most 255 characters.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { User } from "effect-auth"
 *
 * Schema.decodeUnknownSync(User.UserId)("42")
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const UserId = Schema.String.pipe(Schema.minLength(UserIdBounds.minLength), Schema.maxLength(UserIdBounds.maxLength))

/**
 * Schema of the base user fields, handy for backends whose peers answer JSON.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { User } from "effect-auth"
 *
 * const user = Schema.decodeUnknownSync(User.BaseUserSchema)({
 *   id: "1", username: "alice", isActive: true, isSuperuser: false
 * })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const BaseUserSchema: Schema.Schema<BaseUser> = Schema.Struct({
  id: UserId,
  username: Schema.String,
  isActive: Schema.Boolean,
  isSuperuser: Schema.Boolean
})

/**
 * Whether the user is an active superuser, who holds every permission.
 *
 * @example
 * ```ts
 * import { User } from "effect-auth"
 *
 * User.isActiveSuperuser({ id: "1", username: "root", isActive: true, isSuperuser: true }) // true
 * ```
 *
 * @since 0.1.0
 * @category predicates
 */
export const isActiveSuperuser = (user: BaseUser): boolean => user.isActive && user.isSuperuser
