/**
 * Where local users live: the service the model backend reads and other backends provision into.
 *
 * A store keeps Django's user shape (`auth_user`): username, password hash, names, email, the
 * active, staff and superuser flags, the join date and the last login; groups; and permissions
 * (`app_label.codename`) granted to users directly or through their groups. Two implementations
 * pass one test suite: `SqlUserStore` (SQLite or PostgreSQL through `@effect/sql`) and
 * `MemoryUserStore`.
 *
 * Usernames are normalised with NFKC on create, as Django's `create_user` does, **and on every
 * lookup**. Django's `get_by_natural_key` matches exactly, but its login form normalises the
 * typed name with NFKC first (`UsernameField.to_python`); normalising in the store gives every
 * caller that behaviour, so "ｊｏｅ" (full width) logs in as "joe". Matching is otherwise exact
 * and case-sensitive, as on Django's PostgreSQL and SQLite backends.
 *
 * Every input is decoded with Schema; bad input fails with {@link InvalidInput} (an input that
 * cannot even be read, whose getter or Proxy trap throws, too), a database problem with
 * {@link UserStoreError}, never a defect.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryUserStore, UserStore } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* UserStore.UserStore
 *   const alice = yield* store.create({ username: "alice", email: "alice@EXAMPLE.com" })
 *   yield* store.setGroups(alice.id, ["editors"])
 *   yield* store.grantGroupPermission("editors", "blog.change_post")
 *   return yield* store.groupPermissions(alice.id) // Set { "blog.change_post" }
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(MemoryUserStore.layer)))
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { codePointsWithin } from "./internal/codePoints.js"
import { pyLower } from "./internal/pyLower.js"
import { pyNfkc } from "./internal/pyNfkc.js"
import { pyStrip } from "./internal/pyStrip.js"
import { holdsAssignedAfterUnicode14 } from "./internal/unicode14.js"
import { isWellFormed } from "./internal/wellFormed.js"
import { failedMessage } from "./internal/storeError.js"
import * as Permissions from "./Permissions.js"
import type { BaseUser } from "./User.js"

/**
 * A user as the store keeps it. `passwordHash` is `Redacted`: it never prints, not even in logs.
 *
 * @example
 * ```ts
 * import type { UserStore } from "effect-auth"
 *
 * const describe = (user: UserStore.StoredUser) =>
 *   `${user.username} <${user.email}>, joined ${user.dateJoined.toISOString()}`
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredUser extends BaseUser {
  /** Integer id of the row, as a string. */
  readonly id: string
  /** Django's encoded hash (`pbkdf2_sha256$...`, or `!...` when unusable). */
  readonly passwordHash: Redacted.Redacted<string>
  readonly email: string
  readonly firstName: string
  readonly lastName: string
  readonly isStaff: boolean
  readonly dateJoined: Date
  readonly lastLogin: Option.Option<Date>
}

/**
 * A group of users.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { UserStore } from "effect-auth"
 *
 * const editors = Effect.flatMap(UserStore.UserStore, (store) => store.createGroup("editors"))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Group {
  readonly id: string
  readonly name: string
}

/**
 * What {@link Service.create} takes. Absent fields take Django's defaults: an unusable
 * password, empty names and email, active, neither staff nor superuser, joined now.
 *
 * @example
 * ```ts
 * import type { UserStore } from "effect-auth"
 *
 * const input: UserStore.CreateUser = { username: "alice", email: "alice@example.com", isStaff: true }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateUser {
  readonly username: string
  /** An encoded hash from `PasswordHasher.hash`; absent means an unusable password. */
  readonly passwordHash?: string | Redacted.Redacted<string> | undefined
  readonly email?: string | undefined
  readonly firstName?: string | undefined
  readonly lastName?: string | undefined
  readonly isActive?: boolean | undefined
  readonly isStaff?: boolean | undefined
  readonly isSuperuser?: boolean | undefined
  /** For imports; default: the current time (`Clock`). */
  readonly dateJoined?: Date | undefined
}

/**
 * The flags {@link Service.setFlags} changes; absent flags stay as they are.
 *
 * @example
 * ```ts
 * import type { UserStore } from "effect-auth"
 *
 * const promote: UserStore.Flags = { isStaff: true, isSuperuser: true }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Flags {
  readonly isActive?: boolean | undefined
  readonly isStaff?: boolean | undefined
  readonly isSuperuser?: boolean | undefined
}

/**
 * The profile fields {@link Service.updateProfile} changes; absent fields stay as they are.
 *
 * @example
 * ```ts
 * import type { UserStore } from "effect-auth"
 *
 * const profile: UserStore.Profile = { firstName: "Alice", lastName: "Liddell" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Profile {
  readonly email?: string | undefined
  readonly firstName?: string | undefined
  readonly lastName?: string | undefined
}

/**
 * Options of {@link Service.withPerm}, Django's `with_perm`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { UserStore } from "effect-auth"
 *
 * // every user, active or not, who may publish, superusers left out
 * const publishers = Effect.flatMap(UserStore.UserStore, (store) =>
 *   store.withPerm("blog.publish_post", { isActive: null, includeSuperusers: false }))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface WithPermOptions {
  /** Only users with this `isActive`; `null` means both. Default: `true`. */
  readonly isActive?: boolean | null | undefined
  /** Include superusers, who hold every permission. Default: `true`. */
  readonly includeSuperusers?: boolean | undefined
}

/**
 * A user with this username exists already (the database's unique constraint said so).
 *
 * @example
 * ```ts
 * import { UserStore } from "effect-auth"
 *
 * const error = new UserStore.UserAlreadyExists({ username: "alice" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class UserAlreadyExists extends Schema.TaggedError<UserAlreadyExists>("effect-auth/UserAlreadyExists")(
  "UserAlreadyExists",
  { username: Schema.String }
) {
  override get message(): string {
    return `a user named ${JSON.stringify(this.username)} exists already`
  }
}

/**
 * No user has this id.
 *
 * @example
 * ```ts
 * import { UserStore } from "effect-auth"
 *
 * const error = new UserStore.UserNotFound({ userId: "42" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class UserNotFound extends Schema.TaggedError<UserNotFound>("effect-auth/UserNotFound")("UserNotFound", {
  userId: Schema.String
}) {
  override get message(): string {
    return `no user with id ${JSON.stringify(this.userId)}`
  }
}

/**
 * No group has this name.
 *
 * @example
 * ```ts
 * import { UserStore } from "effect-auth"
 *
 * const error = new UserStore.GroupNotFound({ name: "editors" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class GroupNotFound extends Schema.TaggedError<GroupNotFound>("effect-auth/GroupNotFound")("GroupNotFound", {
  name: Schema.String
}) {
  override get message(): string {
    return `no group named ${JSON.stringify(this.name)}`
  }
}

/**
 * No such permission, and the store does not create permissions on a grant: a store on a Django
 * site's tables, where permissions come from Django's models (see `SqlUserStore`'s `django`
 * option and its `createMissingPermissions`).
 *
 * @example
 * ```ts
 * import { UserStore } from "effect-auth"
 *
 * const error = new UserStore.PermissionNotFound({ permission: "blog.publish_post" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class PermissionNotFound extends Schema.TaggedError<PermissionNotFound>("effect-auth/PermissionNotFound")(
  "PermissionNotFound",
  { permission: Schema.String }
) {
  override get message(): string {
    return `no permission ${JSON.stringify(this.permission)}`
  }
}

/**
 * An input did not decode (username too long, permission not `app_label.codename`, an object
 * whose getter throws, ...). `message` names the field and the rule; it never holds a password
 * hash.
 *
 * @example
 * ```ts
 * import { UserStore } from "effect-auth"
 *
 * const error = new UserStore.InvalidInput({ field: "username", message: "must be 1 to 150 characters" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>("effect-auth/UserStore/InvalidInput")(
  "InvalidInput",
  { field: Schema.String, message: Schema.String }
) {}

/**
 * The store could not answer: database unreachable, a statement failed, a row did not decode.
 * `cause` is a copy of the driver's error down its causes, each with its message, name, `_tag`
 * and `code` only: a driver's error may carry the values of the row it refused (PostgreSQL's
 * `detail`), a password hash among them, and the copy leaves them out.
 *
 * @example
 * ```ts
 * import { UserStore } from "effect-auth"
 *
 * const error = new UserStore.UserStoreError({ operation: "findByUsername", cause: new Error("ECONNREFUSED") })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class UserStoreError extends Schema.TaggedError<UserStoreError>("effect-auth/UserStoreError")(
  "UserStoreError",
  { operation: Schema.String, cause: Schema.Defect }
) {
  override get message(): string {
    return failedMessage("user store", this.operation, this.cause)
  }
}

/**
 * The errors every store operation may fail with.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { UserStore } from "effect-auth"
 *
 * const users = Effect.flatMap(UserStore.UserStore, (store) => store.list()).pipe(
 *   Effect.catchTags({ InvalidInput: () => Effect.succeed([]), UserStoreError: Effect.die })
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type CommonError = InvalidInput | UserStoreError

/**
 * What a store offers. Queries about an unknown user id answer "nothing" (none, empty);
 * changes to an unknown user fail with {@link UserNotFound}.
 *
 * @example
 * ```ts
 * import type { Effect } from "effect"
 * import { MemoryUserStore } from "effect-auth"
 * import type { UserStore } from "effect-auth"
 *
 * const store: Effect.Effect<UserStore.Service> = MemoryUserStore.make
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** NFKC-normalises `username`, then matches exactly. */
  readonly findByUsername: (username: string) => Effect.Effect<Option.Option<StoredUser>, CommonError>
  readonly findById: (userId: string) => Effect.Effect<Option.Option<StoredUser>, CommonError>
  readonly create: (input: CreateUser) => Effect.Effect<StoredUser, UserAlreadyExists | CommonError>
  readonly setPassword: (
    userId: string,
    passwordHash: string | Redacted.Redacted<string>
  ) => Effect.Effect<void, UserNotFound | CommonError>
  /**
   * Replaces the hash only while it still equals `from` (compare-and-set): a login that
   * upgrades an outdated hash must not undo a password change that happened meanwhile.
   * Answers whether it replaced it.
   */
  readonly upgradePasswordHash: (
    userId: string,
    hashes: {
      readonly from: string | Redacted.Redacted<string>
      readonly to: string | Redacted.Redacted<string>
    }
  ) => Effect.Effect<boolean, CommonError>
  readonly setFlags: (userId: string, flags: Flags) => Effect.Effect<void, UserNotFound | CommonError>
  readonly updateProfile: (userId: string, profile: Profile) => Effect.Effect<void, UserNotFound | CommonError>
  readonly setLastLogin: (userId: string, date: Date) => Effect.Effect<void, UserNotFound | CommonError>
  /** Creates the group unless it exists (get-or-create, safe under concurrency); returns it. */
  readonly createGroup: (name: string) => Effect.Effect<Group, CommonError>
  readonly addToGroup: (userId: string, group: string) => Effect.Effect<void, UserNotFound | GroupNotFound | CommonError>
  /** Removing a membership that does not exist is not an error. */
  readonly removeFromGroup: (userId: string, group: string) => Effect.Effect<void, UserNotFound | CommonError>
  /** Makes the user's groups exactly `names`, creating missing groups (mirroring a directory). */
  readonly setGroups: (userId: string, names: Iterable<string>) => Effect.Effect<void, UserNotFound | CommonError>
  /** Group names, sorted by code unit. */
  readonly groupsOf: (userId: string) => Effect.Effect<ReadonlyArray<string>, CommonError>
  /** Registers a permission (get-or-create); `name` is the human-readable label. */
  readonly createPermission: (perm: string, name?: string) => Effect.Effect<void, CommonError>
  /** Every permission the store knows: registered or ever granted. */
  readonly permissions: () => Effect.Effect<ReadonlySet<string>, CommonError>
  /**
   * Grants (registering the permission if needed); granting twice is not an error. A store on a
   * Django site's tables fails with `PermissionNotFound` instead of registering, unless told to.
   */
  readonly grantPermission: (
    userId: string,
    perm: string
  ) => Effect.Effect<void, UserNotFound | PermissionNotFound | CommonError>
  readonly revokePermission: (userId: string, perm: string) => Effect.Effect<void, UserNotFound | CommonError>
  readonly grantGroupPermission: (
    group: string,
    perm: string
  ) => Effect.Effect<void, GroupNotFound | PermissionNotFound | CommonError>
  readonly revokeGroupPermission: (group: string, perm: string) => Effect.Effect<void, GroupNotFound | CommonError>
  /** Permissions granted to the user directly. */
  readonly userPermissions: (userId: string) => Effect.Effect<ReadonlySet<string>, CommonError>
  /** Permissions the user holds through its groups. */
  readonly groupPermissions: (userId: string) => Effect.Effect<ReadonlySet<string>, CommonError>
  /**
   * Permissions granted to one group (empty for an unknown group). Optional: `AuthService.explain`
   * names the group a permission comes through when the store has it.
   */
  readonly permissionsOfGroup?: ((group: string) => Effect.Effect<ReadonlySet<string>, CommonError>) | undefined
  /**
   * Django's `UserManager.with_perm`: users holding `perm` directly or through a group, plus
   * superusers unless `includeSuperusers: false`, filtered on `isActive` (default `true`).
   * Sorted by id. As in Django, a permission the store has never seen still yields the
   * superusers.
   */
  readonly withPerm: (perm: string, options?: WithPermOptions) => Effect.Effect<ReadonlyArray<StoredUser>, CommonError>
  /** Every user, sorted by id. */
  readonly list: () => Effect.Effect<ReadonlyArray<StoredUser>, CommonError>
  /**
   * Removes the user with its group memberships and direct permissions, as Django's
   * `user.delete()` cascades to `user_groups` and `user_user_permissions`; answers whether there
   * was such a user. Rows other stores keep of it (sessions, API tokens, bindings, object
   * permissions) are theirs to remove. Optional, for stores written before it: `Provisioning`
   * removes a user it created and could not bind with it (see `Provisioning.Options.identities`).
   * Both stores of this library have it and never reuse an id. Since 0.4.0.
   */
  readonly delete?: ((userId: string) => Effect.Effect<boolean, CommonError>) | undefined
  /**
   * The `@effect/sql` client the store runs every statement on (`SqlUserStore`'s), if it is one:
   * a caller that writes to another store on the same client runs both writes in one
   * `sql.withTransaction`, as `Provisioning` writes a new user and its binding
   * (`ExternalIdentities.Service.sqlClient`). A store of your own that sets it must run its
   * statements on that client only, within the caller's fiber. Since 0.4.0.
   */
  readonly sqlClient?: SqlClient.SqlClient | undefined
}

/**
 * The user store service.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { UserStore } from "effect-auth"
 *
 * const deactivate = (username: string) =>
 *   Effect.gen(function*() {
 *     const store = yield* UserStore.UserStore
 *     const user = yield* store.findByUsername(username)
 *     if (user._tag === "Some") yield* store.setFlags(user.value.id, { isActive: false })
 *   })
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class UserStore extends Context.Tag("effect-auth/UserStore")<UserStore, Service>() {}

/**
 * The old home of {@link Service}.
 *
 * @example
 * ```ts
 * import type { UserStore } from "effect-auth"
 *
 * type Old = UserStore.UserStore.Service // prefer UserStore.Service
 * ```
 *
 * @since 0.1.0
 * @category models
 * @deprecated Use `UserStore.Service`.
 */
export declare namespace UserStore {
  /**
   * @deprecated Use `UserStore.Service`.
   *
   * @example
   * ```ts
   * import type { UserStore } from "effect-auth"
   *
   * type Old = UserStore.UserStore.Service // prefer UserStore.Service
   * ```
   *
   * @since 0.1.0
   */
  export type Service = import("./UserStore.js").Service
}


// Django counts `max_length` in code points (Python `len`), not UTF-16 units; NUL is refused
// because PostgreSQL cannot store it in text, and a lone surrogate because no engine keeps it
// (PostgreSQL's driver writes U+FFFD, so "\uD800" and "\uDBFF" became one group; Python cannot
// encode it either).
const text = (min: number, max: number) =>
  Schema.String.pipe(Schema.filter((s) => {
    if (s.includes("\u0000")) return "must not contain NUL characters"
    if (!isWellFormed(s)) return "must not contain lone surrogates"
    const n = [...s].length
    return (n >= min && n <= max) || `must be ${min} to ${max} characters`
  }))

/**
 * A username as stored: 1 to 150 characters (code points, as Django counts), no NUL.
 * Decode the NFKC-normalised name ({@link normalizeUsername}).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { UserStore } from "effect-auth"
 *
 * Schema.decodeUnknownSync(UserStore.Username)("alice")
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Username = text(1, 150)

/**
 * A username that Django's `UnicodeUsernameValidator` accepts (`^[\w.@+-]+\Z`, Unicode `\w`):
 * letters, digits and `_ . @ + -` only, 1 to 150 of them. It refuses spaces, control and format
 * characters (a right-to-left override, a zero-width space) and punctuation. Django applies it to
 * the username field (forms, `createsuperuser`, `full_clean`); the stores apply it when a user is
 * created, so names that look alike but differ by an invisible character never become two users.
 * Users an external system vouches for (`Provisioning`, `RemoteUserBackend`) are created as
 * Django's backends create them, without it (`o'brien`, `john smith`), though still without a
 * control, format or line-separator character. Lookups are not restricted: a name made elsewhere
 * (by Django's `create_user`) is still found.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { UserStore } from "effect-auth"
 *
 * Schema.is(UserStore.ValidUsername)("alice.smith+test@example") // true
 * Schema.is(UserStore.ValidUsername)("alice ") // false
 * Schema.is(UserStore.ValidUsername)("al\u200bice") // false
 * ```
 *
 * @since 0.3.0
 * @category schemas
 */
export const ValidUsername = Username.pipe(
  Schema.filter((s) =>
    // Python's `\w` (Django's `^[\w.@+-]+\Z`) as Python 3.11 has it: a character Unicode 14.0
    // leaves unassigned is no word character there.
    (/^[\p{L}\p{N}_.@+-]+$/u.test(s) && !holdsAssignedAfterUnicode14(s)) ||
    "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.", {
    identifier: "ValidUsername"
  })
)

/**
 * A group name: 1 to 150 characters, no NUL (Django's `Group.name`).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { UserStore } from "effect-auth"
 *
 * Schema.is(UserStore.GroupName)("editors") // true
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const GroupName = text(1, 150)

/**
 * A first or last name: up to 150 characters, no NUL.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { UserStore } from "effect-auth"
 *
 * Schema.is(UserStore.PersonName)("Alice") // true
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const PersonName = text(0, 150)

/**
 * An email address: up to 254 characters, no NUL. Not validated further, as Django's
 * `create_user` does not; normalise it with {@link normalizeEmail}.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { UserStore } from "effect-auth"
 *
 * Schema.is(UserStore.Email)("alice@example.com") // true
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Email = text(0, 254)

/**
 * A permission as stored: `app_label.codename` (split at the first dot, see
 * `Permissions.Permission`) with an app label and a codename of at most 100 characters each.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { UserStore } from "effect-auth"
 *
 * Schema.is(UserStore.StoredPermission)("blog.change_post") // true
 * Schema.is(UserStore.StoredPermission)("change_post") // false
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const StoredPermission = Permissions.Permission.pipe(
  Schema.filter((perm) => {
    if (!isWellFormed(perm)) return "must not contain lone surrogates"
    const dot = perm.indexOf(".")
    // Characters as Django counts them (code points): an emoji is one, not two UTF-16 units.
    return (codePointsWithin(perm.slice(0, dot), 0, 100) && codePointsWithin(perm.slice(dot + 1), 0, 100)) ||
      "app label and codename must be at most 100 characters each"
  })
)

/**
 * Django's `AbstractBaseUser.normalize_username`: Unicode NFKC, as Python 3.11 (Unicode 14.0) has
 * it: a character assigned since stays as it is, as it does there.
 *
 * @example
 * ```ts
 * import { UserStore } from "effect-auth"
 *
 * UserStore.normalizeUsername("ｊｏｅ") // "joe"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const normalizeUsername = (username: string): string => pyNfkc(username)

/**
 * Django's `BaseUserManager.normalize_email`: lower-cases the domain part (after the last `@`),
 * and strips surrounding whitespace (as Python's `str.strip`) when there is an `@`; an address
 * without one is returned as given. Both as Python 3.11 (Unicode 14.0) does them: a character
 * assigned since keeps its case.
 *
 * @example
 * ```ts
 * import { UserStore } from "effect-auth"
 *
 * UserStore.normalizeEmail("Alice@EXAMPLE.com") // "Alice@example.com"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const normalizeEmail = (email: string): string => {
  // Python's strip(), not trim(): Django strips U+001C..U+001F and NEL and keeps a BOM.
  const trimmed = pyStrip(email)
  const at = trimmed.lastIndexOf("@")
  return at < 0 ? email : `${trimmed.slice(0, at)}@${pyLower(trimmed.slice(at + 1))}`
}
