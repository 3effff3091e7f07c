/**
 * Django's `ModelBackend`: usernames and passwords checked against the local `UserStore`.
 *
 * - Unknown user: the preferred hasher runs once on the given password (so a stranger's name
 *   costs as long as a member's, Django #20760), then `NoMatch("unknown-user")`.
 * - Wrong password: `NoMatch("invalid-credentials")`.
 * - Right password, inactive user: `NoMatch("inactive-user")`, unless `allowInactive` (Django's
 *   `AllowAllUsersModelBackend`).
 * - Right password on a hash that `mustUpdate` (older algorithm, fewer iterations, short salt):
 *   the password is re-hashed with the preferred hasher and saved, for inactive users too, as
 *   Django's `check_password` setter does. The save is a compare-and-set, so a password changed
 *   meanwhile is never overwritten; a failed save is logged and the login goes on.
 * - A stored hash the hasher cannot read (malformed) does not match: `NoMatch("invalid-credentials")`
 *   and a warning in the log, rather than an error page.
 * - The store unreachable: `TransportError`, never a defect.
 * - The hasher's places all taken: `TransportError` (cause `HasherBusy`), for a known user as for
 *   an unknown one. The checks run as calls of the request's client address
 *   (`PasswordHasher.withClient`; an IPv6 address by its /48), so one address keeping every place
 *   taken loses its own waiting calls to other addresses' logins rather than starving them.
 *
 * `getUser` answers only active users (unless `allowInactive`). Permissions are the user's own
 * and its groups'; an active superuser has every one the store knows (and, as Django's
 * `ModelBackend`, not one that exists nowhere: `AuthService` grants it anything before asking);
 * an inactive user has none; object permissions are not this backend's business (`false`,
 * empty). They are the store's users' only:
 * another backend's user whose id the store issued to someone else holds none of them. A session
 * login records the user's `lastLogin` (`userLoggedIn`, Django's `update_last_login`).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { AuthEvents, AuthService, PasswordHasher, SqlUserStore } from "effect-auth"
 * import * as ModelBackend from "effect-auth/backends/ModelBackend"
 *
 * const AuthLive = AuthService.layer([ModelBackend.ModelBackend]).pipe(
 *   Layer.provideMerge(AuthEvents.layer),
 *   Layer.provide(ModelBackend.layer()),
 *   Layer.provide(SqlUserStore.layerSqlite({ filename: "./users.db" })),
 *   Layer.provide(PasswordHasher.layer())
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import type { AuthRequest } from "../AuthRequest.js"
import * as Credentials from "../Credentials.js"
import { forRequest } from "../internal/hashers/admission.js"
import * as StoreBackend from "../internal/storeBackend.js"
import { askStore, issuedBy } from "../internal/userStore.js"
import { isWellFormed } from "../internal/wellFormed.js"
import * as PasswordHasher from "../PasswordHasher.js"
import type { User } from "../User.js"
import * as UserStore from "../UserStore.js"

/**
 * @example
 * ```ts
 * import type * as ModelBackend from "effect-auth/backends/ModelBackend"
 *
 * // Django's AllowAllUsersModelBackend, under its own id
 * const options: ModelBackend.Options = { id: "all-users", allowInactive: true }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Backend id, stored in sessions. Default: `"model"`. */
  readonly id?: string | undefined
  /**
   * Let inactive users authenticate and be loaded (Django's `AllowAllUsersModelBackend`), so an
   * app can tell them apart. `HttpAuth.login` still starts no session for them, as Django's
   * login form refuses them (`confirm_login_allowed`). Default: `false`.
   */
  readonly allowInactive?: boolean | undefined
  /**
   * Turns the stored user into the app's user type. Default: the stored user itself, which is
   * right as long as the app has not registered its own `User` type. An app that registers a
   * richer user (see `User.Register`) must pass this, e.g. to load its profile fields.
   */
  readonly toUser?: ((stored: UserStore.StoredUser) => User) | undefined
  /** Applied by `AuthService` to every call: timeout, retry of TransportErrors, fallthrough. */
  readonly policy?: AuthBackend.PolicyInput | undefined
}

/**
 * The ModelBackend service: pass the Tag to `AuthService.layer([...])`, provide it with {@link layer}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as ModelBackend from "effect-auth/backends/ModelBackend"
 *
 * const program = Effect.flatMap(ModelBackend.ModelBackend, (backend) => backend.getUser("1"))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class ModelBackend extends Context.Tag("effect-auth/ModelBackend")<
  ModelBackend,
  AuthBackend.AuthBackend<Credentials.UsernamePassword>
>() {}

// Without a registered app user type, `User` is `BaseUser` and a StoredUser is one. With a
// registered type this default is wrong, which is why `toUser` is documented as required then;
// the cast keeps the library compiling in either world.
const storedAsUser = (stored: UserStore.StoredUser): User => stored as unknown as User

/**
 * Builds the backend on the `UserStore` and `PasswordHasher` in context.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { MemoryUserStore, PasswordHasher } from "effect-auth"
 * import * as ModelBackend from "effect-auth/backends/ModelBackend"
 *
 * const program = Effect.gen(function*() {
 *   const backend = yield* ModelBackend.make({ allowInactive: true })
 *   return yield* backend.authenticate({ username: "alice", password: Redacted.make("pw") }, undefined)
 * }).pipe(Effect.provide(MemoryUserStore.layer), Effect.provide(PasswordHasher.layer()))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<
  AuthBackend.AuthBackend<Credentials.UsernamePassword>,
  never,
  UserStore.UserStore | PasswordHasher.PasswordHasher
> =>
  Effect.gen(function*() {
    const store = yield* UserStore.UserStore
    const hasher = yield* PasswordHasher.PasswordHasher
    const id = options.id ?? "model"
    const allowInactive = options.allowInactive ?? false
    const toUser = options.toUser ?? storedAsUser

    const noMatch = AuthError.failures(id).noMatch
    const transport = (error: UserStore.UserStoreError | PasswordHasher.HasherBusy) =>
      new AuthError.TransportError({ backend: id, cause: error })
    const canAuthenticate = (user: { readonly isActive: boolean }) => allowInactive || user.isActive
    const ours = (user: User): User => issuedBy(store, user)

    // A name the store refuses (a NUL, 151 characters after NFKC) belongs to nobody.
    const findByUsername = (username: string) => askStore(store.findByUsername(username), Option.none(), transport)

    // Django's `check_password` setter: save the password hashed the preferred way. The user
    // answered carries the hash saved, as Django's in-memory user does: a session started with it
    // is bound to the stored hash (Django's `get_session_auth_hash` reads the same row).
    const upgrade = (user: UserStore.StoredUser, password: Redacted.Redacted<string>) =>
      Effect.flatMap(hasher.hash(password), (to) =>
        Effect.flatMap(
          store.upgradePasswordHash(user.id, { from: user.passwordHash, to: Redacted.make(to) }),
          (saved): Effect.Effect<UserStore.StoredUser, UserStore.CommonError | PasswordHasher.HasherBusy> =>
            saved ? Effect.succeed({ ...user, passwordHash: Redacted.make(to) }) : afterLostUpgrade(user, password)
        )).pipe(
          Effect.catchAll((error) =>
            Effect.as(
              Effect.logWarning("ModelBackend: could not save the upgraded password hash").pipe(
                Effect.annotateLogs({ backend: id, userId: user.id, error: error._tag, reason: error.message })
              ),
              user
            )
          )
        )

    // Another write won the compare-and-set: most often a concurrent login's upgrade of the same
    // password (two tabs, after a hasher change), whose hash the session must be bound to, or the
    // sessions of all but one such login were flushed at their next request. The row is read again
    // and the hash now stored checked (one more hash, in this race only); a password changed
    // meanwhile does not verify, and the user as read is answered: its session ends, as in Django.
    const afterLostUpgrade = (user: UserStore.StoredUser, password: Redacted.Redacted<string>) =>
      Effect.flatMap(store.findById(user.id), (row) => {
        if (Option.isNone(row)) return Effect.succeed(user)
        return hasher.verify(password, Redacted.value(row.value.passwordHash)).pipe(
          Effect.map((result) => (result.valid ? row.value : user)),
          Effect.catchTag("HashError", () => Effect.succeed(user))
        )
      })

    // The hasher shares its places between clients: the checks run as calls of the request's
    // client address, so that one address flooding logins (a new unknown name each costs a full
    // hash, as in Django) sheds its own calls rather than every other client's.
    const authenticate = (credentials: Credentials.UsernamePassword, request: AuthRequest | undefined) =>
      forRequest(check(credentials), request)

    const check = (credentials: Credentials.UsernamePassword) =>
      Effect.gen(function*() {
        const found = yield* findByUsername(credentials.username)
        if (Option.isNone(found)) {
          // Spend the work a real check costs (Django's `UserModel().set_password(password)`).
          // A busy hasher is a 503 here as for a known user, so that shedding reveals no names.
          yield* hasher.hash(credentials.password).pipe(
            Effect.catchTags({ HashError: () => Effect.void, HasherBusy: (busy) => Effect.fail(transport(busy)) })
          )
          return yield* noMatch("unknown-user")
        }
        let user = found.value
        const result = yield* hasher.verify(credentials.password, Redacted.value(user.passwordHash)).pipe(
          Effect.catchTag("HashError", (error) =>
            Effect.as(
              // A submitted password that is no Unicode text (a lone surrogate, which any client
              // can send) is just a wrong password: the warning is for the stored hash's faults.
              isWellFormed(Redacted.value(credentials.password))
                ? Effect.logWarning("ModelBackend: the stored password hash cannot be read").pipe(
                  Effect.annotateLogs({ backend: id, userId: user.id, algorithm: error.algorithm, reason: error.reason })
                )
                : Effect.void,
              { valid: false, mustUpdate: false }
            )),
          Effect.catchTag("HasherBusy", (busy) => Effect.fail(transport(busy)))
        )
        if (result.valid && result.mustUpdate) user = yield* upgrade(user, credentials.password)
        if (!result.valid) return yield* noMatch("invalid-credentials")
        if (!canAuthenticate(user)) return yield* noMatch("inactive-user")
        return ours(toUser(user))
      })

    const getUser = (userId: string) =>
      Effect.map(
        askStore(store.findById(userId), Option.none(), transport),
        (found) => Option.map(Option.filter(found, canAuthenticate), (user) => ours(toUser(user)))
      )

    const {
      explainPerm,
      getAllPermissions,
      getGroupPermissions,
      getUserPermissions,
      hasModulePerms,
      hasPerm,
      userLoggedIn
    } = StoreBackend.make(store, transport)

    return AuthBackend.make({
      id,
      credentials: Credentials.UsernamePassword,
      authenticate,
      getUser,
      userLoggedIn,
      hasPerm,
      explainPerm,
      hasModulePerms,
      getAllPermissions,
      getUserPermissions,
      getGroupPermissions,
      ...(options.policy === undefined ? {} : { policy: options.policy })
    })
  })

/**
 * The backend as a layer, on the `UserStore` and `PasswordHasher` you provide.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { PasswordHasher, SqlUserStore } from "effect-auth"
 * import * as ModelBackend from "effect-auth/backends/ModelBackend"
 *
 * const ModelBackendLive = ModelBackend.layer().pipe(
 *   Layer.provide(SqlUserStore.layerPg({ url: "postgres://app@db/app" })),
 *   Layer.provide(PasswordHasher.layer())
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<ModelBackend, never, UserStore.UserStore | PasswordHasher.PasswordHasher> =>
  Layer.effect(ModelBackend, make(options))

/**
 * {@link layer} with its options read from `Config` (any field may be a `Config`). A missing or
 * malformed value fails the layer with a `ConfigError`.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import * as ModelBackend from "effect-auth/backends/ModelBackend"
 *
 * const ModelBackendLive = ModelBackend.layerConfig({
 *   allowInactive: Config.boolean("AUTH_ALLOW_INACTIVE").pipe(Config.withDefault(false)),
 *   policy: { timeout: Config.duration("AUTH_MODEL_TIMEOUT").pipe(Config.withDefault("2 seconds")) }
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<ModelBackend, ConfigError.ConfigError, UserStore.UserStore | PasswordHasher.PasswordHasher> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
