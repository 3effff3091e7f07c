/**
 * Django's `RemoteUserBackend`: trust the user name that a reverse proxy (SSO gateway, Kerberos
 * front end, client-certificate terminator) authenticated and put in a request header, and find or
 * create that user in the local `UserStore`.
 *
 * - `cleanUsername` turns the header value into a username (strip a realm, lower-case, ...).
 * - The user is found by exactly that name, as Django's `get_or_create` finds it, and compared so
 *   with a session's user: `José` composed and decomposed are two names, as in Django, and the
 *   proxy's `ªdmin` (a Latin-1 byte) is another principal than `admin`. The store looks names up
 *   through NFKC, which is many-to-one, so a name NFKC would change is never created
 *   (`NoMatch("invalid-credentials")`), nor found unless a user of exactly that name exists (a
 *   Django site's tables may hold one); normalise it in `cleanUsername` if your proxy's names are
 *   unique after NFKC (`(name) => name.normalize("NFC")` for one that sends either form).
 * - `createUnknownUser` (default `true`, as Django's `create_unknown_user`): an unknown name
 *   creates a user with an unusable password; with `false` it is `NoMatch("unknown-user")`. The
 *   name is created as Django's `get_or_create` creates it, without the sign-up form's character
 *   rule (`UserStore.ValidUsername`): a proxy's `john smith` or `o'brien` is a user; one with a
 *   control, format or line-separator character is `NoMatch("invalid-credentials")`.
 *   Concurrent first requests of one name create one user.
 * - `configureUser(user, { created, request })` runs on every login (Django's `configure_user`),
 *   to sync names or groups from the proxy's other headers.
 * - Inactive users do not log in (`NoMatch("inactive-user")`) and `getUser` does not load them.
 * - Permissions are the store's, answered by the model backend's code (for the store's users
 *   only: another backend's user with a colliding id holds none), and a session login records
 *   `lastLogin`, as Django's `RemoteUserBackend` (a `ModelBackend`) does.
 *
 * **Only the HTTP layer may produce its credentials.** The backend accepts a
 * `Credentials.RemoteUser` value only when it was made by {@link trusted}, which
 * `HttpAuth` (with `remoteUser` enabled) does for the configured header. A login endpoint that
 * forwards a JSON body `{ "remoteUser": "admin" }` to `AuthService.authenticate` gets
 * `NoMatch("unsupported-credentials")`, never a login. Turn this off (`trustedOnly: false`) only
 * for transports that are not HTTP: plain `{ remoteUser }` is then accepted as well as the
 * header's credentials.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { AuthEvents, AuthService, HttpAuth, SqlUserStore } from "effect-auth"
 * import * as RemoteUserBackend from "effect-auth/backends/RemoteUserBackend"
 *
 * const AuthLive = AuthService.layer([RemoteUserBackend.RemoteUserBackend]).pipe(
 *   Layer.provideMerge(AuthEvents.layer),
 *   Layer.provide(RemoteUserBackend.layer({ cleanUsername: (name) => name.replace(/@EXAMPLE\.COM$/, "").toLowerCase() })),
 *   Layer.provide(SqlUserStore.layerSqlite({ filename: "./users.db" }))
 * )
 *
 * // The proxy sets (and strips from clients) the X-Remote-User header:
 * const HttpAuthLive = HttpAuth.layer({ remoteUser: { header: "X-Remote-User" } })
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
import * as Schema from "effect/Schema"
import * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import type { AuthRequest } from "../AuthRequest.js"
import * as Credentials from "../Credentials.js"
import * as StoreBackend from "../internal/storeBackend.js"
import * as TrustedRemoteUserMark from "../internal/trustedRemoteUser.js"
import { issuedBy, vouched } from "../internal/userStore.js"
import * as VouchedName from "../internal/vouchedName.js"
import type { User } from "../User.js"
import * as UserStore from "../UserStore.js"

/**
 * Options of {@link make} and {@link layer}.
 *
 * @example
 * ```ts
 * import type * as RemoteUserBackend from "effect-auth/backends/RemoteUserBackend"
 *
 * const options: RemoteUserBackend.Options = {
 *   cleanUsername: (name) => name.replace(/@EXAMPLE\.COM$/, "").toLowerCase(),
 *   createUnknownUser: true
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Backend id, stored in sessions. Default: `"remote-user"`. */
  readonly id?: string | undefined
  /** Create users the store does not know. Default: `true`. */
  readonly createUnknownUser?: boolean | undefined
  /** Turns the header value into the username. Default: unchanged. */
  readonly cleanUsername?: ((remoteUser: string) => string) | undefined
  /** Runs on every successful match, after a create too; answers the user to log in. */
  readonly configureUser?:
    | ((
      user: UserStore.StoredUser,
      context: { readonly created: boolean; readonly request: AuthRequest | undefined }
    ) => Effect.Effect<UserStore.StoredUser, UserStore.UserStoreError>)
    | undefined
  /**
   * Accept only credentials made by {@link trusted} (or by `RequestSource.remoteUser` from the
   * configured header). Default: `true`. With `false`, plain `{ remoteUser }` is accepted too, for
   * transports that are not HTTP, and the header's credentials still are.
   */
  readonly trustedOnly?: boolean | undefined
  /** Turns the stored user into the app's user type (see `ModelBackend`'s `toUser`). */
  readonly toUser?: ((stored: UserStore.StoredUser) => User) | undefined
  readonly policy?: AuthBackend.PolicyInput | undefined
}

/**
 * The backend, with its `cleanUsername` (the HTTP layer compares a session's user with the header
 * through it, as Django's `RemoteUserMiddleware` does).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as RemoteUserBackend from "effect-auth/backends/RemoteUserBackend"
 *
 * const clean = Effect.map(RemoteUserBackend.RemoteUserBackend, (backend: RemoteUserBackend.Service) =>
 *   backend.cleanUsername("alice@EXAMPLE.COM"))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Service extends AuthBackend.AuthBackend<Credentials.RemoteUser> {
  readonly cleanUsername: (remoteUser: string) => string
}

/**
 * The RemoteUserBackend service: pass the Tag to `AuthService.layer([...])`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as RemoteUserBackend from "effect-auth/backends/RemoteUserBackend"
 *
 * const program = Effect.flatMap(RemoteUserBackend.RemoteUserBackend, (backend) => backend.getUser("1"))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class RemoteUserBackend extends Context.Tag("effect-auth/RemoteUserBackend")<RemoteUserBackend, Service>() {}

/**
 * Credentials for this backend, marked as coming from the trusted header (as
 * `RequestSource.remoteUser` makes them). The mark is a hidden, library-private property: JSON
 * cannot carry it and `Credentials.cleanse` does not show it.
 *
 * @example
 * ```ts
 * import { AuthService } from "effect-auth"
 * import * as RemoteUserBackend from "effect-auth/backends/RemoteUserBackend"
 *
 * // What the HTTP layer does with the header value:
 * const login = AuthService.authenticate(RemoteUserBackend.trusted("alice@EXAMPLE.COM"))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const trusted = (remoteUser: string): Credentials.RemoteUser => TrustedRemoteUserMark.trusted(remoteUser)

const isRemoteUser = Schema.is(Credentials.RemoteUser)

const TrustedRemoteUser: Schema.Schema<Credentials.RemoteUser> = Schema.declare(
  (u: unknown): u is Credentials.RemoteUser => TrustedRemoteUserMark.isTrusted(u) && isRemoteUser(u),
  { identifier: "TrustedRemoteUser" }
)

// `trustedOnly: false`: plain `{ remoteUser }` (its Schema refuses excess keys, the hidden mark
// among them) or the marked credentials the HTTP layer makes, passed through as they are.
const AnyRemoteUser: Schema.Schema<Credentials.RemoteUser> = Schema.Union(TrustedRemoteUser, Credentials.RemoteUser)

const storedAsUser = (stored: UserStore.StoredUser): User => stored as unknown as User

/**
 * Builds the backend on the `UserStore` in context.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryUserStore } from "effect-auth"
 * import * as RemoteUserBackend from "effect-auth/backends/RemoteUserBackend"
 *
 * const program = Effect.gen(function*() {
 *   const backend = yield* RemoteUserBackend.make({ createUnknownUser: false })
 *   return yield* backend.authenticate(RemoteUserBackend.trusted("alice"), undefined)
 * }).pipe(Effect.provide(MemoryUserStore.layer))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, UserStore.UserStore> =>
  Effect.gen(function*() {
    const store = yield* UserStore.UserStore
    const id = options.id ?? "remote-user"
    const createUnknownUser = options.createUnknownUser ?? true
    const cleanUsername = options.cleanUsername ?? ((name: string) => name)
    const toUser = options.toUser ?? storedAsUser

    const noMatch = AuthError.failures(id).noMatch
    const transport = (error: UserStore.UserStoreError) => new AuthError.TransportError({ backend: id, cause: error })
    const storeError = { UserStoreError: (error: UserStore.UserStoreError) => Effect.fail(transport(error)) }

    // A name the store refuses (too long after cleaning, a NUL) belongs to nobody; one it finds
    // through NFKC is somebody else's (see VouchedName).
    const find = (username: string) =>
      store.findByUsername(username).pipe(
        Effect.map(Option.filter(VouchedName.names(username))),
        Effect.catchTags({ InvalidInput: () => Effect.succeedNone, ...storeError })
      )

    // Django's get_or_create: of concurrent creates one wins, the others find its user.
    const findOrCreate = (username: string) =>
      Effect.flatMap(find(username), (found) =>
        Option.isSome(found)
          ? Effect.succeed({ user: found.value, created: false })
          : !VouchedName.creatable(username)
          ? noMatch("invalid-credentials")
          // as get_or_create makes it: no sign-up form rule (a proxy's "john smith" is a user)
          : store.create(vouched({ username })).pipe(
            Effect.map((user) => ({ user, created: true })),
            Effect.catchTags({
              UserAlreadyExists: () =>
                Effect.flatMap(find(username), (again) =>
                  Option.isSome(again)
                    ? Effect.succeed({ user: again.value, created: false })
                    : noMatch("unknown-user")),
              InvalidInput: () => noMatch("invalid-credentials"),
              ...storeError
            })
          ))

    const authenticate = (credentials: Credentials.RemoteUser, request: AuthRequest | undefined) =>
      Effect.gen(function*() {
        // Exactly the cleaned name, as Django's get_or_create looks it up: composed here (NFC), a
        // decomposed name a Django site had made a user of was missed and created again.
        const username = cleanUsername(credentials.remoteUser)
        if (username === "") return yield* noMatch("invalid-credentials")
        let found: { readonly user: UserStore.StoredUser; readonly created: boolean }
        if (createUnknownUser) {
          found = yield* findOrCreate(username)
        } else {
          const user = yield* find(username)
          if (Option.isNone(user)) return yield* noMatch("unknown-user")
          found = { user: user.value, created: false }
        }
        const user = options.configureUser === undefined
          ? found.user
          : yield* Effect.catchTags(options.configureUser(found.user, { created: found.created, request }), storeError)
        if (!user.isActive) return yield* noMatch("inactive-user")
        return issuedBy(store, toUser(user))
      })

    const getUser = (userId: string) =>
      store.findById(userId).pipe(
        Effect.catchTags({ InvalidInput: () => Effect.succeedNone, ...storeError }),
        Effect.map((found) => Option.map(Option.filter(found, (u) => u.isActive), (u) => issuedBy(store, toUser(u))))
      )

    // Django's RemoteUserBackend is a ModelBackend: the store's permissions and the login record,
    // as ModelBackend answers them.
    const storeBackend = StoreBackend.make(store, transport)

    const backend = AuthBackend.make({
      id,
      credentials: options.trustedOnly === false ? AnyRemoteUser : TrustedRemoteUser,
      authenticate,
      getUser,
      ...storeBackend,
      ...(options.policy === undefined ? {} : { policy: options.policy })
    })
    return { ...backend, cleanUsername }
  })

/**
 * The backend as a layer, on the `UserStore` you provide.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { MemoryUserStore } from "effect-auth"
 * import * as RemoteUserBackend from "effect-auth/backends/RemoteUserBackend"
 *
 * const RemoteUserLive = RemoteUserBackend.layer({ createUnknownUser: false }).pipe(Layer.provide(MemoryUserStore.layer))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<RemoteUserBackend, never, UserStore.UserStore> =>
  Layer.effect(RemoteUserBackend, make(options))

/**
 * {@link layer} with its options read from `Config` (any field may be a `Config`). A missing or
 * malformed value fails the layer with a `ConfigError`.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import * as RemoteUserBackend from "effect-auth/backends/RemoteUserBackend"
 *
 * const RemoteUserLive = RemoteUserBackend.layerConfig({
 *   createUnknownUser: Config.boolean("REMOTE_USER_CREATE").pipe(Config.withDefault(true))
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<RemoteUserBackend, ConfigError.ConfigError, UserStore.UserStore> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
