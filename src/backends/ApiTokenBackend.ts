/**
 * API tokens (personal access tokens) for scripts and services: a backend that authenticates
 * `Credentials.Token` issued by the `ApiTokens` store (`effect-auth/ApiTokens`), which creates,
 * lists and revokes them. {@link layer} provides both services.
 *
 * A token looks like `ea_Zk3Qm9aB_<43 characters>`: a prefix (`ea`, configurable), a public
 * 8-character id that finds the row and names the token in lists, and a secret of 32 random
 * bytes in base64url. It is shown once, when created; the database keeps only the SHA-256 digest
 * of the whole token, compared in constant time (`crypto.timingSafeEqual`). Tokens may expire,
 * carry scopes and be revoked; the time of last use is recorded.
 *
 * Tokens live in the SQL database of the user store, through the same `@effect/sql` `SqlClient`
 * (SQLite or PostgreSQL), in one table, `<tablePrefix>api_token` (`auth_api_token` by default),
 * migrated by the `Migrator` with its own bookkeeping table
 * (`effect_<tablePrefix>api_token_migrations`). The token's owner is loaded from the `UserStore`.
 *
 * Outcomes of `authenticate`:
 *
 * | token | outcome |
 * |---|---|
 * | not shaped like one of ours (a JWT, a truncated token) | `NoMatch("unsupported-credentials")`: another backend may take it |
 * | well-formed, id unknown | `NoMatch("invalid-credentials")` |
 * | wrong secret | `NoMatch("invalid-credentials")` |
 * | revoked | `NoMatch("invalid-credentials")` |
 * | expired | `NoMatch("expired-credentials")` |
 * | owner gone from the store | `NoMatch("unknown-user")` |
 * | owner inactive | `NoMatch("inactive-user")` |
 * | database down | `TransportError` |
 *
 * The secret is checked before anything else about the row, so someone who knows only a token's
 * public id learns nothing about its state.
 *
 * The backend grants no permissions itself: the owner's permissions come from the backends that
 * know the user (`ModelBackend` reads the same store). A token's scopes are for the app to
 * enforce: {@link scopesOf} and {@link hasScope} read them off the user `authenticate` returned.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { ApiTokens, AuthEvents, AuthService, SqlUserStore } from "effect-auth"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const AuthLive = AuthService.layer([ApiTokenBackend.ApiTokenBackend]).pipe(
 *   Layer.provideMerge(ApiTokenBackend.layer()),
 *   Layer.provideMerge(SqlUserStore.layerSqlite({ filename: "./users.db" })),
 *   Layer.provideMerge(AuthEvents.layer)
 * )
 *
 * const program = Effect.gen(function*() {
 *   const tokens = yield* ApiTokens.ApiTokens
 *   const { token } = yield* tokens.create({ userId: "1", name: "deploy script", scopes: ["deploy"] })
 *   // show Redacted.value(token) to the user once; then, on a request:
 *   const { user } = yield* AuthService.authenticate({ token })
 *   return ApiTokenBackend.hasScope(user, "deploy") // true
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as ApiTokens from "../ApiTokens.js"
import * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import * as Credentials from "../Credentials.js"
import { infoOf, repoRunner, tokenPrefixOf } from "../internal/apiToken/info.js"
import * as Repository from "../internal/apiToken/repository.js"
import * as Token from "../internal/apiToken/token.js"
import type { User } from "../User.js"
import * as UserStore from "../UserStore.js"
import { safeCause } from "../internal/storeError.js"
import { issuedBy } from "../internal/userStore.js"

/**
 * The token store's names, re-exported from their old home. They moved to `effect-auth/ApiTokens`
 * (`ApiTokens.ApiTokens`, `ApiTokens.TokenInfo`, `ApiTokens.tables`, ...); these re-exports go
 * in the next version.
 *
 * @example
 * ```ts
 * import { ApiTokens } from "effect-auth"
 *
 * const tag = ApiTokens.ApiTokens // was ApiTokenBackend.ApiTokens
 * ```
 *
 * @since 0.1.0
 * @deprecated Import them from `ApiTokens`.
 */
export * from "../ApiTokens.js"

/**
 * The backend as a service: pass the Tag to `AuthService.layer([...])`, provide it with {@link layer}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const program = Effect.flatMap(ApiTokenBackend.ApiTokenBackend, (backend) => backend.getUser("1"))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class ApiTokenBackend extends Context.Tag("effect-auth/ApiTokenBackend")<
  ApiTokenBackend,
  AuthBackend.AuthBackend<Credentials.Token>
>() {}

/**
 * The backend's options. The store's options (`tokenPrefix`, `tablePrefix`, `migrationsTable`)
 * are shared with the `ApiTokens` service that {@link layer} builds beside it.
 *
 * @example
 * ```ts
 * import type * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const options: ApiTokenBackend.Options = {
 *   id: "api-token",
 *   tokenPrefix: "shop",
 *   tablePrefix: "shop_auth_",
 *   lastUsedInterval: "5 minutes"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends ApiTokens.Options {
  /** Backend id, stored in sessions. Default: `"api-token"`. */
  readonly id?: string | undefined
  /**
   * `lastUsedAt` is written only when it is older than this, so a busy token does not write on
   * every request, nor a burst of requests at once more than once (the database checks it too, for
   * other processes); it never moves back. `0` writes on every use. Default: 1 minute.
   */
  readonly lastUsedInterval?: Duration.DurationInput | undefined
  /**
   * Turns the stored owner into the app's user type; return a fresh object each call (scopes are
   * attached to the object). What it returns counts as the store's user: `ModelBackend` grants it
   * the owner's permissions, as it does its own users. Default: the stored user itself.
   */
  readonly toUser?: ((stored: UserStore.StoredUser) => User) | undefined
  readonly policy?: AuthBackend.PolicyInput | undefined
}

/**
 * Options of {@link layer}.
 *
 * @example
 * ```ts
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * // the app runs every module's migrations itself, through one Migrator
 * const options: ApiTokenBackend.LayerOptions = { migrate: false, tokenPrefix: "shop" }
 * const TokensLive = ApiTokenBackend.layer(options)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions extends Options {
  /** Run the migrations when the layer is built. Default: `true`. */
  readonly migrate?: boolean | undefined
}

// The token's scopes and info, keyed by the very user object `authenticate` returned.
const tokensByUser = new WeakMap<object, ApiTokens.TokenInfo>()

/**
 * The token a user authenticated with, when `authenticate` of an `ApiTokenBackend` returned this
 * very object; none for users from other backends or from `getUser` (sessions).
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { AuthService } from "effect-auth"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const tokenName = (token: string) =>
 *   Effect.map(AuthService.authenticate({ token }), ({ user }) =>
 *     Option.map(ApiTokenBackend.tokenOf(user), (t) => t.name))
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const tokenOf = (user: User): Option.Option<ApiTokens.TokenInfo> => Option.fromNullable(tokensByUser.get(user))

/**
 * The scopes of the token the user authenticated with (see {@link tokenOf}); none when the user
 * did not come from a token.
 *
 * @example
 * ```ts
 * import { Option } from "effect"
 * import type { User } from "effect-auth"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const scopes = (user: User.User) => Option.getOrElse(ApiTokenBackend.scopesOf(user), () => [])
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const scopesOf = (user: User): Option.Option<ReadonlyArray<string>> => Option.map(tokenOf(user), (t) => t.scopes)

/**
 * Whether the user authenticated with a token that carries `scope`. False for users that did not
 * come from a token: an app that also accepts sessions decides itself what they may do.
 *
 * @example
 * ```ts
 * import type { User } from "effect-auth"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const mayDeploy = (user: User.User) => ApiTokenBackend.hasScope(user, "deploy")
 * const canDeploy = ApiTokenBackend.hasScope("deploy") // pipeable
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const hasScope: {
  (scope: string): (user: User) => boolean
  (user: User, scope: string): boolean
} = dual(2, (user: User, scope: string): boolean => {
  const token = tokensByUser.get(user)
  return token !== undefined && token.scopes.includes(scope)
})

// Without a registered app user type, `User` is `BaseUser` and a StoredUser is one (see ModelBackend).
const storedAsUser = (stored: UserStore.StoredUser): User => stored as unknown as User

const configError = (message: string) => new AuthError.AuthConfigError({ message: `ApiTokenBackend: ${message}` })

/**
 * Builds the backend on the `SqlClient` and `UserStore` in context (without migrating).
 * A bad table or token prefix is an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const program = Effect.gen(function*() {
 *   const backend = yield* ApiTokenBackend.make()
 *   return yield* backend.authenticate({ token: Redacted.make("ea_Zk3Qm9aB_...") }, undefined)
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<AuthBackend.AuthBackend<Credentials.Token>, AuthError.AuthConfigError, SqlClient.SqlClient | UserStore.UserStore> =>
  Effect.gen(function*() {
    const t = yield* ApiTokens.tables(options)
    const tokenPrefix = yield* tokenPrefixOf("ApiTokenBackend", options)
    // a typed DurationInput can still be a malformed string at runtime (from a config file, say)
    const interval = Duration.decodeUnknown(options.lastUsedInterval ?? "1 minute")
    if (Option.isNone(interval)) return yield* configError("lastUsedInterval must be a duration")
    const lastUsedInterval = Duration.toMillis(interval.value)
    const backendId = options.id ?? "api-token"
    const toUser = options.toUser ?? storedAsUser
    const repo = yield* Repository.make(t.token)
    const store = yield* UserStore.UserStore
    // The owner is the store's user, whatever the app's type makes of it: the store's backends
    // (ModelBackend) grant it the row's permissions, as they do the users of ModelBackend and
    // RemoteUserBackend (see `issuedBy`). An app type without the password hash would otherwise
    // be no store user, and a token would carry none of its owner's permissions.
    const asUser = (stored: UserStore.StoredUser): User => issuedBy(store, toUser(stored))
    const now = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis))
    const viaRepo = yield* repoRunner("ApiTokenBackend", options, (operation) => (cause) =>
      new ApiTokens.ApiTokenStoreError({ operation, cause: safeCause(cause) }))

    const noMatch = AuthError.failures(backendId).noMatch
    const transport = (cause: unknown) => new AuthError.TransportError({ backend: backendId, cause })

    const findOwner = (userId: string) =>
      store.findById(userId).pipe(
        Effect.catchTags({
          InvalidInput: () => Effect.succeedNone,
          UserStoreError: (error) => Effect.fail(transport(error))
        })
      )

    // The tokens whose last use this backend is writing. A burst of uses of one token (a job's
    // requests at once) all read the row before any wrote: one write is in flight, the others pass
    // (their time is within the interval of its). The UPDATE writes only a row whose last use is
    // older than the interval (repo.touch), for the other processes. `0` writes every use.
    const touching = new Set<string>()

    // Best effort: a token that works must not stop working because this write failed.
    const touch = (row: Repository.TokenRow, at: Date): Effect.Effect<Repository.TokenRow> =>
      Effect.suspend(() => {
        if (row.lastUsedAt !== null && at.getTime() - row.lastUsedAt.getTime() < lastUsedInterval) return Effect.succeed(row)
        const used: Repository.TokenRow = { ...row, lastUsedAt: at }
        if (lastUsedInterval > 0 && touching.has(row.id)) return Effect.succeed(used)
        touching.add(row.id)
        return viaRepo("touch", repo.touch(row.id, at, lastUsedInterval)).pipe(
          Effect.as(used),
          // a failed write only: a defect is a bug and stays one
          Effect.catchAll((cause) =>
            Effect.as(
              Effect.logWarning("ApiTokenBackend: could not record the token's last use").pipe(
                Effect.annotateLogs({ backend: backendId, tokenId: row.id }),
                Effect.annotateLogs("cause", cause)
              ),
              row
            )
          ),
          Effect.ensuring(Effect.sync(() => touching.delete(row.id)))
        )
      })

    const authenticate = (credentials: Credentials.Token): Effect.Effect<User, AuthError.BackendError> =>
      Effect.gen(function*() {
        const presented = Redacted.value(credentials.token)
        const parsed = Token.parse(tokenPrefix, presented)
        if (parsed === undefined) return yield* noMatch("unsupported-credentials")
        const digest = Token.digest(presented)
        const found = yield* viaRepo("authenticate", repo.findById(parsed.id)).pipe(Effect.mapError(transport))
        if (Option.isNone(found)) return yield* noMatch("invalid-credentials")
        const row = found.value
        // the secret first: knowing a token's public id must not reveal whether it is revoked or expired
        if (!Token.digestsEqual(row.digest, digest)) return yield* noMatch("invalid-credentials")
        if (row.revokedAt !== null) return yield* noMatch("invalid-credentials")
        const at = yield* now
        if (row.expiresAt !== null && row.expiresAt.getTime() <= at.getTime()) return yield* noMatch("expired-credentials")
        const owner = yield* findOwner(row.userId)
        if (Option.isNone(owner)) return yield* noMatch("unknown-user")
        if (!owner.value.isActive) return yield* noMatch("inactive-user")
        const used = yield* touch(row, at)
        const user = asUser(owner.value)
        tokensByUser.set(user, infoOf(tokenPrefix, used))
        return user
      })

    const getUser = (userId: string): Effect.Effect<Option.Option<User>, AuthError.TransportError> =>
      Effect.map(findOwner(userId), (found) => Option.map(Option.filter(found, (user) => user.isActive), asUser))

    return AuthBackend.make({
      id: backendId,
      credentials: Credentials.Token,
      authenticate,
      getUser,
      ...(options.policy === undefined ? {} : { policy: options.policy })
    })
  })

/**
 * The token store on the `SqlClient` and `UserStore` in context (without migrating).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ApiTokens } from "effect-auth"
 *
 * const tokens = ApiTokens.make() // was ApiTokenBackend.makeTokens()
 * ```
 *
 * @since 0.1.0
 * @category constructors
 * @deprecated Use `ApiTokens.make`.
 */
export const makeTokens = (
  options: Options = {}
): Effect.Effect<ApiTokens.Service, AuthError.AuthConfigError, SqlClient.SqlClient | UserStore.UserStore> =>
  ApiTokens.make(options)

/**
 * The backend and the `ApiTokens` store, on the `SqlClient` and `UserStore` you provide
 * (`SqlUserStore.layerSqlite`/`layerPg` provide both); runs the migrations first unless
 * `migrate: false`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SqlUserStore } from "effect-auth"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const TokensLive = ApiTokenBackend.layer({ lastUsedInterval: "5 minutes" }).pipe(
 *   Layer.provideMerge(SqlUserStore.layerPg({ url: "postgres://app@db/app" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<
  ApiTokenBackend | ApiTokens.ApiTokens,
  AuthError.AuthConfigError | ApiTokens.ApiTokenStoreError,
  SqlClient.SqlClient | UserStore.UserStore
> =>
  Layer.effectContext(
    Effect.gen(function*() {
      if (options.migrate !== false) yield* ApiTokens.migrate(options)
      const backend = yield* make(options)
      const tokens = yield* ApiTokens.make(options)
      return Context.make(ApiTokenBackend, backend).pipe(Context.add(ApiTokens.ApiTokens, tokens))
    })
  )

/**
 * {@link layer} with its options read from `Config` (any field may be a `Config`).
 *
 * @example
 * ```ts
 * import { Config, Layer } from "effect"
 * import { SqlUserStore } from "effect-auth"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const TokensLive = ApiTokenBackend.layerConfig({
 *   tokenPrefix: Config.string("API_TOKEN_PREFIX").pipe(Config.withDefault("ea")),
 *   lastUsedInterval: Config.duration("API_TOKEN_LAST_USED_INTERVAL").pipe(Config.withDefault("1 minute"))
 * }).pipe(Layer.provideMerge(SqlUserStore.layerPgConfig({ url: Config.redacted("DATABASE_URL") })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<LayerOptions>
): Layer.Layer<
  ApiTokenBackend | ApiTokens.ApiTokens,
  ConfigError.ConfigError | AuthError.AuthConfigError | ApiTokens.ApiTokenStoreError,
  SqlClient.SqlClient | UserStore.UserStore
> => Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
