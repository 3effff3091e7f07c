// Input decoding shared by the memory and SQL user stores, so both accept and reject the same inputs.
import { randomInt } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as UserStore from "../UserStore.js"
import * as User from "../User.js"
import { boundedNfkc } from "./codePoints.js"
import { fieldOf } from "./fieldOf.js"
import { treeMessage } from "./parseErrors.js"
import { textOf } from "./redactedString.js"
import { collectionOf } from "./collection.js"
import { isStorable } from "./wellFormed.js"

/**
 * `read()`, which looks into a value an untyped caller handed over: a getter or a Proxy trap that
 * throws (a revoked Proxy) makes it InvalidInput, as any other value the store cannot take, not a
 * defect. Only the reading is wrapped: nothing is written before it succeeded.
 *
 * @internal
 */
export const readInput = <A>(
  field: string,
  read: () => Effect.Effect<A, UserStore.InvalidInput>
): Effect.Effect<A, UserStore.InvalidInput> =>
  Effect.catchAllDefect(
    Effect.suspend(read),
    () => Effect.fail(new UserStore.InvalidInput({ field, message: "could not be read" }))
  )

const decode = <A, I>(schema: Schema.Schema<A, I>, field: string) => {
  const run = Schema.decodeUnknown(schema, { errors: "first", onExcessProperty: "error" })
  const decoded = (value: unknown): Effect.Effect<A, UserStore.InvalidInput> =>
    Effect.mapError(run(value), (error) => new UserStore.InvalidInput({ field, message: treeMessage(error) }))
  // Only an object can throw when read; a name or an id (every login's lookup) is decoded as it is.
  return (value: unknown): Effect.Effect<A, UserStore.InvalidInput> =>
    typeof value === "object" && value !== null ? readInput(field, () => decoded(value)) : decoded(value)
}

/** @internal */
export const username = (raw: unknown): Effect.Effect<string, UserStore.InvalidInput> =>
  decodeUsername(typeof raw === "string" ? boundedNfkc(raw) : raw)
const decodeUsername = decode(UserStore.Username, "username")

/** A name to look up as given, as Django's `get_by_natural_key` does. @internal */
export const exactUsername = decode(UserStore.Username, "username")

/** A new user's name: normalised, then held to Django's `UnicodeUsernameValidator`. @internal */
export const newUsername = (raw: unknown): Effect.Effect<string, UserStore.InvalidInput> =>
  decodeNewUsername(typeof raw === "string" ? boundedNfkc(raw) : raw)
const decodeNewUsername = decode(UserStore.ValidUsername, "username")

/**
 * The name of a user an external system vouches for (a directory, an identity provider, a
 * proxy's header). Django's backends create those through the ORM, which applies no form
 * validator (django-auth-ldap, mozilla-django-oidc, `RemoteUserBackend`'s `get_or_create`): a
 * directory's `o'brien` and `john smith` are users there. The store keeps its own rules (1 to 150
 * code points, no NUL, no lone surrogate) and refuses what no directory name needs and what would
 * make two users that look alike or a name that breaks a log line: control, format and
 * line-separator characters (a newline, a right-to-left override, a zero-width space).
 *
 * @internal
 */
export const VouchedUsername = UserStore.Username.pipe(
  Schema.filter((s) =>
    !/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(s) || "must not contain control, format or line-separator characters", {
    identifier: "VouchedUsername"
  })
)
const decodeVouchedUsername = decode(VouchedUsername, "username")

// Create inputs made by provisioning and the remote-user backend (`vouched`): held, by object, so
// that no caller of the public `create` can ask for the lighter rule.
const vouchedInputs = new WeakSet<object>()

/**
 * Marks a `create` input as a user an external system vouches for: the built-in stores hold its
 * name to {@link VouchedUsername} instead of `UserStore.ValidUsername` (a store of the app's own
 * applies its rules; a refusal is `InvalidInput`, as before).
 *
 * @internal
 */
export const vouched = <A extends object>(input: A): A => {
  vouchedInputs.add(input)
  return input
}

const decodeUserId = decode(User.UserId, "userId")

// Store ids are positive integers, up to what a JavaScript number holds exactly: a Django model's
// BigAutoField (and any SQLite id) is 64-bit, and a user id 3000000000 must keep its permissions
// and sessions. An id past that names nobody; so does one past an `integer` column's range, which
// the SQL store compares as bigint (sqlUserStore's `userIdParam`) rather than fail the query.
const maxId = Number.MAX_SAFE_INTEGER

/** @internal */
export const userId = (raw: unknown): Effect.Effect<Option.Option<number>, UserStore.InvalidInput> =>
  Effect.map(decodeUserId(raw), (id) => {
    if (!/^[1-9][0-9]{0,15}$/.test(id)) return Option.none()
    const n = Number(id)
    return n <= maxId ? Option.some(n) : Option.none()
  })

/** @internal */
export const groupName = decode(UserStore.GroupName, "group")

/** @internal */
export const groupNames = decode(Schema.Array(UserStore.GroupName), "groups")

/** Group names as an untyped caller may hand them over: any iterable, or InvalidInput (`null`). @internal */
export const groupNamesOf = (raw: unknown): Effect.Effect<ReadonlyArray<string>, UserStore.InvalidInput> =>
  readInput("groups", () => {
    const names = collectionOf(raw)
    return names === undefined
      ? Effect.fail(new UserStore.InvalidInput({ field: "groups", message: "must be a collection of group names" }))
      : groupNames(names)
  })

/** The `{ from, to }` of `upgradePasswordHash`, each checked as a hash; `null` is InvalidInput. @internal */
export const hashChange = (raw: unknown): Effect.Effect<{ readonly from: string; readonly to: string }, UserStore.InvalidInput> =>
  readInput("hashes", () =>
    typeof raw !== "object" || raw === null
      ? Effect.fail(new UserStore.InvalidInput({ field: "hashes", message: "must be { from, to }" }))
      : Effect.zipWith(
        passwordHash((raw as { readonly from?: unknown }).from, "from"),
        passwordHash((raw as { readonly to?: unknown }).to, "to"),
        (from, to) => ({ from, to })
      ))

/** @internal */
export interface ParsedPermission {
  readonly perm: string
  readonly appLabel: string
  readonly codename: string
}

const decodePerm = decode(UserStore.StoredPermission, "permission")

/** @internal */
export const permission = (raw: unknown): Effect.Effect<ParsedPermission, UserStore.InvalidInput> =>
  Effect.map(decodePerm(raw), (perm) => {
    const dot = perm.indexOf(".")
    return { perm, appLabel: perm.slice(0, dot), codename: perm.slice(dot + 1) }
  })

/**
 * A date Django's `datetime` can hold (years 1 to 9999), which every engine stores alike:
 * PostgreSQL refuses years past 9999 and before 1 where SQLite and memory kept them.
 *
 * @internal
 */
export const StorableDate = Schema.ValidDateFromSelf.pipe(
  Schema.filter((date) =>
    (date.getTime() >= -62_135_596_800_000 && date.getTime() <= 253_402_300_799_999) ||
    "must lie within the years 1 to 9999", { identifier: "StorableDate" })
)

/** @internal */
export const permissionName = decode(
  Schema.String.pipe(
    Schema.maxLength(255),
    Schema.filter((s) => isStorable(s) || "must not contain NUL or lone surrogates")
  ),
  "name"
)

// Checked by hand: a Schema issue would quote the actual value, and a hash must never be quoted.
/** @internal */
export const passwordHash = (raw: unknown, field = "passwordHash"): Effect.Effect<string, UserStore.InvalidInput> => {
  // (a wiped Redacted, or a Proxy whose traps throw, holds no string: `textOf` never throws)
  const value = typeof raw === "string" ? raw : textOf(raw)
  if (value === undefined) {
    return Effect.fail(new UserStore.InvalidInput({ field, message: "must be a string or a Redacted string" }))
  }
  if ([...value].length > 128 || !isStorable(value)) {
    return Effect.fail(
      new UserStore.InvalidInput({ field, message: "must be at most 128 characters without NUL or lone surrogates" })
    )
  }
  return Effect.succeed(value)
}

const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/** Django's `make_password(None)`: `!` and 40 random characters, which no password verifies. @internal */
export const unusablePassword = (): string => {
  let out = "!"
  for (let i = 0; i < 40; i++) out += alphabet[randomInt(alphabet.length)]
  return out
}

const CreateUserInput = Schema.Struct({
  username: Schema.String,
  passwordHash: Schema.optional(Schema.Unknown),
  email: Schema.optional(UserStore.Email),
  firstName: Schema.optional(UserStore.PersonName),
  lastName: Schema.optional(UserStore.PersonName),
  isActive: Schema.optional(Schema.Boolean),
  isStaff: Schema.optional(Schema.Boolean),
  isSuperuser: Schema.optional(Schema.Boolean),
  dateJoined: Schema.optional(StorableDate)
})
const decodeCreate = decode(CreateUserInput, "input")

/** A decoded, normalised `create` input. @internal */
export interface NewUser {
  readonly username: string
  readonly passwordHash: string
  readonly email: string
  readonly firstName: string
  readonly lastName: string
  readonly isActive: boolean
  readonly isStaff: boolean
  readonly isSuperuser: boolean
  readonly dateJoined: Date
}

/** @internal */
export const createUser = (raw: unknown): Effect.Effect<NewUser, UserStore.InvalidInput> =>
  Effect.gen(function*() {
    const input = yield* decodeCreate(raw)
    const isVouched = typeof raw === "object" && raw !== null && vouchedInputs.has(raw)
    const name = yield* (isVouched ? decodeVouchedUsername(boundedNfkc(input.username)) : newUsername(input.username))
    const hash = input.passwordHash === undefined ? unusablePassword() : yield* passwordHash(input.passwordHash)
    const dateJoined = input.dateJoined ?? new Date(yield* Clock.currentTimeMillis)
    return {
      username: name,
      passwordHash: hash,
      email: UserStore.normalizeEmail(input.email ?? ""),
      firstName: input.firstName ?? "",
      lastName: input.lastName ?? "",
      isActive: input.isActive ?? true,
      isStaff: input.isStaff ?? false,
      isSuperuser: input.isSuperuser ?? false,
      dateJoined
    }
  })

/** @internal */
export const flags = decode(
  Schema.Struct({
    isActive: Schema.optional(Schema.Boolean),
    isStaff: Schema.optional(Schema.Boolean),
    isSuperuser: Schema.optional(Schema.Boolean)
  }),
  "flags"
)

const decodeProfile = decode(
  Schema.Struct({
    email: Schema.optional(UserStore.Email),
    firstName: Schema.optional(UserStore.PersonName),
    lastName: Schema.optional(UserStore.PersonName)
  }),
  "profile"
)

/** @internal */
export const profile = (raw: unknown) =>
  Effect.map(decodeProfile(raw), (p) => ({
    ...p,
    ...(p.email === undefined ? {} : { email: UserStore.normalizeEmail(p.email) })
  }))

/** @internal */
export const date = decode(StorableDate, "date")

/** @internal */
export const withPermOptions = decode(
  Schema.Struct({
    isActive: Schema.optional(Schema.NullOr(Schema.Boolean)),
    includeSuperusers: Schema.optional(Schema.Boolean)
  }),
  "options"
)

/** Code-unit order, the same on every database (SQL `ORDER BY` follows the collation). @internal */
export const sortNames = (names: Iterable<string>): ReadonlyArray<string> =>
  Array.from(names).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))

/**
 * A store query as a backend asks it: an id or name the store refuses (another backend's user, a
 * name no user can have) holds `empty` here, and a store failure is the backend's own error
 * (`onStoreError`, its `TransportError`).
 *
 * @internal
 */
export const askStore = <A, E>(
  query: Effect.Effect<A, UserStore.CommonError>,
  empty: A,
  onStoreError: (error: UserStore.UserStoreError) => E
): Effect.Effect<A, E> =>
  Effect.catchTags(query, {
    InvalidInput: () => Effect.succeed(empty),
    UserStoreError: (error) => Effect.fail(onStoreError(error))
  })

// Permissions are looked up by user id, and ids are each backend's own: a user another backend
// issued (a JWT subject "1") must not get the permissions of the store's user 1. Django has one
// user table, so it never has to ask: there the user object is the row. Here a user is the
// store's when a backend on the store answered it (`issuedBy`: ModelBackend, RemoteUserBackend,
// Provisioning and so OidcBackend), or when it is a copy of a row the store handed out
// (`store.findById`, `store.create`, an app's own provisioning hook returning the row): the row
// under its id has its username and its password hash. Id and username alone are no proof: both
// are what another backend's mapping makes of claims a person may choose (a JWT `sub` of "1" and
// a `preferred_username` of "alice"), and only the store knows the hash (an unusable one is 40
// random characters). For such a copy, the row's own flags count, not the copy's: a user
// deactivated since, or a copy that says `isSuperuser`, holds what the row holds now. The answer is
// kept per user object, so a request's permission questions ask the store once.
interface StoreUsers {
  readonly issued: WeakSet<object>
  readonly checked: WeakMap<object, StoreFlags | null>
}
const storeUsers = new WeakMap<UserStore.Service, StoreUsers>()
const usersOf = (store: UserStore.Service): StoreUsers => {
  let users = storeUsers.get(store)
  if (users === undefined) {
    users = { issued: new WeakSet(), checked: new WeakMap() }
    storeUsers.set(store, users)
  }
  return users
}

/** Marks `user` as one of `store`'s (answered by a backend on it). @internal */
export const issuedBy = <U extends object>(store: UserStore.Service, user: U): U => {
  usersOf(store).issued.add(user)
  return user
}

/** The flags a store user's permissions are computed from (see above). @internal */
export interface StoreFlags {
  /** The user's id, as read once. */
  readonly id: string
  readonly isActive: boolean
  readonly isSuperuser: boolean
}

/**
 * Whether `user` is not active, read guarded: a user object whose getter throws (an untyped
 * caller's) is not active. @internal
 */
export const isInactive = (user: object): boolean => fieldOf(user, "isActive") !== true

// An issued user's flags, each field read once and guarded: a user object whose getter throws on
// a later read (an untyped caller's) holds nothing, rather than dying in a permission question.
const issuedFlags = (user: object): StoreFlags | undefined => {
  const id = fieldOf(user, "id")
  return typeof id === "string"
    ? { id, isActive: fieldOf(user, "isActive") === true, isSuperuser: fieldOf(user, "isSuperuser") === true }
    : undefined
}

// The user's password hash when it carries the store's kind (a `Redacted`), read as an untyped
// caller's object may have to be (a getter that throws is no hash).
const hashOf = (user: object): string | undefined => {
  const hash = fieldOf(user, "passwordHash")
  try {
    return Redacted.isRedacted(hash) ? String(Redacted.value(hash)) : undefined
  } catch {
    return undefined
  }
}

/**
 * The flags that count for `user`'s permissions in `store`, or `undefined` when it is not one of
 * the store's users (see above): an issued user's own flags, a copy's row's.
 *
 * @internal
 */
export const storeFlags = <E>(
  store: UserStore.Service,
  user: { readonly id: string; readonly username: string; readonly isActive: boolean; readonly isSuperuser: boolean },
  onStoreError: (error: UserStore.UserStoreError) => E
): Effect.Effect<StoreFlags | undefined, E> => {
  const users = usersOf(store)
  if (users.issued.has(user)) return Effect.succeed(issuedFlags(user))
  const known = users.checked.get(user)
  if (known !== undefined) return Effect.succeed(known ?? undefined)
  const hash = hashOf(user)
  const id = fieldOf(user, "id")
  if (hash === undefined || typeof id !== "string") {
    users.checked.set(user, null)
    return Effect.succeed(undefined)
  }
  return Effect.map(askStore(store.findById(id), Option.none(), onStoreError), (found) => {
    const row = Option.getOrUndefined(found)
    const flags = row !== undefined && row.username === fieldOf(user, "username") && Redacted.value(row.passwordHash) === hash
      ? { id: row.id, isActive: row.isActive, isSuperuser: row.isSuperuser }
      : null
    users.checked.set(user, flags)
    return flags ?? undefined
  })
}
