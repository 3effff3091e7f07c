/**
 * Creating users and setting passwords from a password in clear, as Django's
 * `UserManager.create_user` / `create_superuser` and `User.set_password` do, with Django's
 * `validate_password` in front: the password is held to the `PasswordValidation.Validators` in
 * force, then hashed by the `PasswordHasher`, then stored by the `UserStore`. A refused password
 * fails with one `InvalidPassword` listing every broken rule, and nothing is hashed or written.
 *
 * `UserStore.create`/`setPassword` take a hash and check nothing: use them for imports and
 * fixtures (`PasswordHasher.makePassword`), and these functions wherever a person chooses a
 * password (sign-up, a password change or reset, the CLI's `createuser` and `changepassword`).
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { MemoryUserStore, PasswordHasher, UserManager } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const alice = yield* UserManager.createUser({ username: "alice", password: Redacted.make("correct horse battery") })
 *   // refused: too short, too common and entirely numeric, reported together
 *   const refused = yield* Effect.flip(UserManager.setPassword(alice, Redacted.make("123")))
 *   return refused._tag === "InvalidPassword" ? refused.messages : []
 * }).pipe(Effect.provide(Layer.merge(MemoryUserStore.layer, PasswordHasher.layerTest)))
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { nfkcBound } from "./internal/codePoints.js"
import * as CredentialsDecoder from "./internal/credentialsDecoder.js"
import { isRedactedString } from "./internal/redactedString.js"
import * as PasswordHasher from "./PasswordHasher.js"
import * as PasswordValidation from "./PasswordValidation.js"
import * as UserStore from "./UserStore.js"

/**
 * A new user: {@link UserStore.CreateUser} with the password in clear instead of its hash.
 * Without `password` the user gets an unusable password, as Django's `create_user(password=None)`.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type { UserManager } from "effect-auth"
 *
 * const bob: UserManager.NewUser = { username: "bob", email: "bob@example.com", password: Redacted.make("s3cret-enough!") }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface NewUser extends Omit<UserStore.CreateUser, "passwordHash"> {
  readonly password?: Redacted.Redacted<string> | undefined
}

/**
 * What choosing a password can fail with: a refused password, a hasher that failed or is
 * saturated (`HasherBusy`: try again later), or the store's errors.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { UserManager } from "effect-auth"
 *
 * const message = (error: UserManager.PasswordError) =>
 *   error._tag === "InvalidPassword" ? error.messages.join(" ") : "Please try again later."
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type PasswordError =
  | PasswordValidation.InvalidPassword
  | PasswordHasher.HashError
  | PasswordHasher.HasherBusy

// An untyped caller's input, read once into a plain copy that every later step reads: a getter or
// a Proxy trap that throws is then refused as the store's decoder refuses it, where it was a defect
// (or, in `createSuperuser`, a throw at call time). `undefined`: it could not be read.
const plainCopy = <A extends object>(input: A): A | undefined => {
  try {
    return { ...input }
  } catch {
    return undefined
  }
}
const unreadable = Effect.fail(new UserStore.InvalidInput({ field: "input", message: "could not be read" }))

/**
 * Creates a user (Django's `UserManager.create_user`): validates the password against the user's
 * own attributes (the username as it will be stored, NFKC-normalised; names; email), hashes it,
 * then inserts the user. A refused password or a taken username writes nothing, nor does input
 * that throws when read (a getter, a Proxy: `InvalidInput`, field `"input"`).
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { MemoryUserStore, PasswordHasher, UserManager } from "effect-auth"
 *
 * const signUp = UserManager.createUser({ username: "carol", password: Redacted.make("purple monkey dishwasher") }).pipe(
 *   Effect.catchTag("InvalidPassword", (error) => Effect.fail(error.messages)),
 *   Effect.provide(Layer.merge(MemoryUserStore.layer, PasswordHasher.layerTest))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createUser = (
  input: NewUser
): Effect.Effect<
  UserStore.StoredUser,
  PasswordError | UserStore.UserAlreadyExists | UserStore.CommonError,
  UserStore.UserStore | PasswordHasher.PasswordHasher
> =>
  Effect.gen(function*() {
    // Not a record (from a caller without types): the store's decoder refuses it as InvalidInput,
    // as it refuses every malformed field, and nothing is written.
    if (typeof input !== "object" || input === null) return yield* Effect.flatMap(UserStore.UserStore, (store) => store.create(input))
    const copy = plainCopy(input)
    if (copy === undefined) return yield* unreadable
    const { password, ...fields } = copy
    // Compared with the name as it will be stored (NFKC), as Django's UserCreationForm does: the
    // raw "ｊｏｅｓｍｉｔｈ" let "joesmith1" through for a user then stored as "joesmith".
    // A name past any username's length is refused by the store before the validators (and NFKC,
    // whose cost grows with the square of a run of combining marks) ever see it.
    if (typeof copy.username === "string" && copy.username.length > nfkcBound) {
      return yield* Effect.flatMap(UserStore.UserStore, (store) => store.create(fields))
    }
    const attributes = typeof copy.username === "string"
      ? { ...copy, username: UserStore.normalizeUsername(copy.username) }
      : copy
    const passwordHash = password === undefined ? undefined : yield* choose(password, attributes)
    const store = yield* UserStore.UserStore
    return yield* store.create({ ...fields, passwordHash })
  })

/**
 * Creates a superuser (Django's `UserManager.create_superuser`): as {@link createUser}, with
 * `isStaff` and `isSuperuser` set. An untyped caller's `isStaff` or `isSuperuser` other than `true`
 * is an `InvalidInput` and nothing is written, as Django raises "Superuser must have
 * is_staff=True." rather than quietly overriding it. Input that throws when read is an
 * `InvalidInput` (field `"input"`) too, when the Effect runs, never a throw.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { MemoryUserStore, PasswordHasher, UserManager } from "effect-auth"
 *
 * const admin = UserManager.createSuperuser({ username: "admin", password: Redacted.make("a long admin passphrase") }).pipe(
 *   Effect.provide(Layer.merge(MemoryUserStore.layer, PasswordHasher.layerTest))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createSuperuser = (
  input: Omit<NewUser, "isStaff" | "isSuperuser">
): Effect.Effect<
  UserStore.StoredUser,
  PasswordError | UserStore.UserAlreadyExists | UserStore.CommonError,
  UserStore.UserStore | PasswordHasher.PasswordHasher
> =>
  // Suspended: the input is read when the Effect runs, not when it is built (a getter that threw
  // escaped at call time, outside the Effect).
  Effect.suspend(() => {
    // (no record at all: the store's decoder refuses it, as before)
    if (typeof input !== "object" || input === null) {
      return createUser({ ...(input as object), isStaff: true, isSuperuser: true } as NewUser)
    }
    const given: Partial<NewUser> | undefined = plainCopy(input)
    if (given === undefined) return unreadable
    for (const field of ["isStaff", "isSuperuser"] as const) {
      if (field in given && given[field] !== true) {
        return Effect.fail(new UserStore.InvalidInput({ field, message: `a superuser must have ${field}: true` }))
      }
    }
    return createUser({ ...given, isStaff: true, isSuperuser: true } as NewUser)
  })

/**
 * Sets a user's password (Django's `validate_password` then `User.set_password` and `save`):
 * validates it against the user's attributes, hashes it, stores the hash. The user's sessions
 * end with the old hash (their session hash no longer matches), as Django's do. A user that is no
 * object (an untyped caller's `null`) is an `InvalidInput` (field `"user"`), before any hash.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { UserManager } from "effect-auth"
 * import type { UserStore } from "effect-auth"
 *
 * const change = (alice: UserStore.StoredUser) => UserManager.setPassword(alice, Redacted.make("new and long enough"))
 * // or, piped
 * const same = (alice: UserStore.StoredUser) =>
 *   Effect.succeed(alice).pipe(Effect.flatMap(UserManager.setPassword(Redacted.make("new and long enough"))))
 * ```
 *
 * @since 0.1.0
 * @category passwords
 */
export const setPassword: {
  (
    password: Redacted.Redacted<string>
  ): (
    user: UserStore.StoredUser
  ) => Effect.Effect<
    void,
    PasswordError | UserStore.UserNotFound | UserStore.CommonError,
    UserStore.UserStore | PasswordHasher.PasswordHasher
  >
  (
    user: UserStore.StoredUser,
    password: Redacted.Redacted<string>
  ): Effect.Effect<
    void,
    PasswordError | UserStore.UserNotFound | UserStore.CommonError,
    UserStore.UserStore | PasswordHasher.PasswordHasher
  >
} = dual(2, (user: UserStore.StoredUser, password: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    yield* checkUser(user)
    const passwordHash = yield* choose(password, user)
    const store = yield* UserStore.UserStore
    yield* store.setPassword(user.id, passwordHash)
  }))

/**
 * The user's password hash is no longer the one they were loaded with: a password reset that
 * checked a token against the old hash lost the race to another reset with the same token, a
 * password change, or a login that upgraded the hash. Answer it as an invalid or expired link.
 *
 * @example
 * ```ts
 * import { UserManager } from "effect-auth"
 *
 * const error = new UserManager.PasswordChanged({ userId: "42" })
 * ```
 *
 * @since 0.3.0
 * @category errors
 */
export class PasswordChanged extends Schema.TaggedError<PasswordChanged>("effect-auth/UserManager/PasswordChanged")(
  "PasswordChanged",
  { userId: Schema.String }
) {}

/**
 * Sets the password of a user whose password reset token was just checked (`PasswordResetToken.check`
 * against this very `user`): as {@link setPassword}, but the new hash is written only while the
 * stored hash is still `user.passwordHash` (a compare-and-set), else it fails with
 * {@link PasswordChanged} and writes nothing. The token is single-use even under concurrency:
 * of two requests with one token that both passed the check, one sets its password. (Django's
 * `PasswordResetConfirmView` checks, then saves: both succeed there, and the last one wins.)
 * A user that is no object is an `InvalidInput` (field `"user"`), as for {@link setPassword}.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordResetToken, UserManager } from "effect-auth"
 * import type { UserStore } from "effect-auth"
 *
 * const options = { secret: Redacted.make("SECRET_KEY") }
 * const confirm = (user: UserStore.StoredUser, token: string, password: Redacted.Redacted<string>) =>
 *   Effect.flatMap(PasswordResetToken.check(user, token, options), (valid) =>
 *     valid ? Effect.as(UserManager.resetPassword(user, password), true) : Effect.succeed(false))
 * ```
 *
 * @since 0.3.0
 * @category passwords
 */
export const resetPassword: {
  (
    password: Redacted.Redacted<string>
  ): (
    user: UserStore.StoredUser
  ) => Effect.Effect<
    void,
    PasswordError | PasswordChanged | UserStore.CommonError,
    UserStore.UserStore | PasswordHasher.PasswordHasher
  >
  (
    user: UserStore.StoredUser,
    password: Redacted.Redacted<string>
  ): Effect.Effect<
    void,
    PasswordError | PasswordChanged | UserStore.CommonError,
    UserStore.UserStore | PasswordHasher.PasswordHasher
  >
} = dual(2, (user: UserStore.StoredUser, password: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    yield* checkUser(user)
    const passwordHash = yield* choose(password, user)
    const store = yield* UserStore.UserStore
    // Check-then-set let two requests with one token both pass the check (the hash takes long
    // enough to make that easy) and both write: the last password won, and both were told so.
    const replaced = yield* store.upgradePasswordHash(user.id, { from: user.passwordHash, to: passwordHash })
    if (!replaced) return yield* new PasswordChanged({ userId: user.id })
  }))

// A user that is no object (null from an untyped caller) is refused before the password is
// validated or hashed: reading `user.id` after the hash died with a TypeError (a defect), and a
// hash was spent on a call that could never write. Its fields are the store's to check.
const checkUser = (user: unknown): Effect.Effect<void, UserStore.InvalidInput> =>
  typeof user === "object" && user !== null
    ? Effect.void
    : Effect.fail(new UserStore.InvalidInput({ field: "user", message: "user must be a stored user" }))

// A password longer than a login takes (`Credentials.Password`) could be set but never used: the
// user was locked out of the account just made (Django has no such bound; its forms take any).
const tooLong = new PasswordValidation.InvalidPassword({
  issues: [{
    code: "password_too_long",
    message: `This password is too long. It must contain at most ${CredentialsDecoder.passwordMaxLength} characters.`
  }]
})

// The bound, then validate_password (which refuses what is no Redacted string), then
// make_password: nothing is hashed for a refused password. The bound comes first because the
// validators lower the whole password (similarity, common passwords): a password of megabytes
// held the thread for seconds before being refused for its length.
const choose = (password: Redacted.Redacted<string>, user: PasswordValidation.UserAttributes) =>
  Effect.zipRight(
    Effect.suspend(() =>
      isRedactedString(password) && Redacted.value(password).length > CredentialsDecoder.passwordMaxLength
        ? Effect.fail(tooLong)
        : PasswordValidation.validate(password, user)
    ),
    Effect.flatMap(PasswordHasher.PasswordHasher, (hasher) => hasher.hash(password))
  )
