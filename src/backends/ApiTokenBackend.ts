/**
 * API tokens (personal access tokens) for scripts and services: a backend that authenticates
 * `Credentials.Token`, and the {@link ApiTokens} service that creates, lists and revokes them.
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
 * import { AuthEvents, AuthService, SqlUserStore } from "effect-auth"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const AuthLive = AuthService.layer([ApiTokenBackend.ApiTokenBackend]).pipe(
 *   Layer.provideMerge(ApiTokenBackend.layer()),
 *   Layer.provideMerge(SqlUserStore.layerSqlite({ filename: "./users.db" })),
 *   Layer.provideMerge(AuthEvents.layer)
 * )
 *
 * const program = Effect.gen(function*() {
 *   const tokens = yield* ApiTokenBackend.ApiTokens
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
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import * as Credentials from "../Credentials.js"
import * as Repository from "../internal/apiToken/repository.js"
import * as Token from "../internal/apiToken/token.js"
import * as SqlTables from "../internal/sqlTables.js"
import { failedMessage } from "../internal/storeError.js"
import * as UserModule from "../User.js"
import type { User } from "../User.js"
import * as UserStore from "../UserStore.js"

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
 * A token as lists show it. Never holds the secret or its digest.
 *
 * @example
 * ```ts
 * import type * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const line = (t: ApiTokenBackend.TokenInfo) => `${t.prefix}… ${t.name} [${t.scopes.join(" ")}]`
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenInfo {
  /** The public id: what `revoke` takes. */
  readonly id: string
  /** The token's visible start, e.g. `ea_Zk3Qm9aB`, to recognise it. */
  readonly prefix: string
  readonly userId: string
  readonly name: string
  readonly scopes: ReadonlyArray<string>
  readonly createdAt: Date
  readonly expiresAt: Option.Option<Date>
  readonly lastUsedAt: Option.Option<Date>
  readonly revokedAt: Option.Option<Date>
}

/**
 * What {@link ApiTokens.Service.create} returns: the token, to show once, and its info.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const issue = (userId: string) =>
 *   Effect.flatMap(ApiTokenBackend.ApiTokens, (tokens) => tokens.create({ userId, name: "laptop" })).pipe(
 *     Effect.map((created: ApiTokenBackend.CreatedToken) => ({
 *       showOnce: Redacted.value(created.token),
 *       id: created.info.id
 *     }))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CreatedToken {
  readonly token: Redacted.Redacted<string>
  readonly info: TokenInfo
}

/**
 * A scope: an OAuth 2.0 `scope-token` (RFC 6749 §3.3), 1 to 100 printable ASCII characters
 * without space, `"` or `\`, e.g. `read:posts` or `blog.change_post`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * Schema.is(ApiTokenBackend.Scope)("read:posts") // true
 * Schema.is(ApiTokenBackend.Scope)("read posts") // false
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Scope = Schema.String.pipe(Schema.pattern(/^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/))

/**
 * The input of {@link ApiTokens.Service.create}: at most 64 scopes (duplicates dropped), a name
 * of 1 to 255 characters, an expiry in the future.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const input = Schema.decodeUnknownSync(ApiTokenBackend.CreateToken)({
 *   userId: "1",
 *   name: "CI",
 *   scopes: ["deploy"],
 *   expiresAt: new Date("2030-01-01")
 * })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const CreateToken = Schema.Struct({
  userId: UserModule.UserId,
  name: Schema.String.pipe(
    Schema.filter((s) => (s.length >= 1 && [...s].length <= 255 && !s.includes("\u0000")) || "must be 1 to 255 characters without NUL")
  ),
  scopes: Schema.optional(Schema.Array(Scope).pipe(Schema.maxItems(64))),
  expiresAt: Schema.optional(Schema.ValidDateFromSelf)
})

/**
 * @example
 * ```ts
 * import type * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const input: ApiTokenBackend.CreateToken = { userId: "1", name: "CI", scopes: ["deploy"] }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateToken extends Schema.Schema.Type<typeof CreateToken> {}

/**
 * An input did not decode. `message` names the rule; it never holds a token.
 *
 * @example
 * ```ts
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const error = new ApiTokenBackend.InvalidInput({ field: "expiresAt", message: "must be in the future" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>("effect-auth/ApiTokenBackend/InvalidInput")(
  "InvalidInput",
  { field: Schema.String, message: Schema.String }
) {}

/**
 * No token has this id (or it belongs to another user than the one given to `revoke`).
 *
 * @example
 * ```ts
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const error = new ApiTokenBackend.TokenNotFound({ tokenId: "Zk3Qm9aB" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenNotFound extends Schema.TaggedError<TokenNotFound>("effect-auth/ApiTokenBackend/TokenNotFound")(
  "TokenNotFound",
  { tokenId: Schema.String }
) {
  override get message(): string {
    return `no API token with id ${JSON.stringify(this.tokenId)}`
  }
}

/**
 * The database could not answer. `cause` is the driver's (or the user store's) error; it holds no
 * token, since the secret never reaches the database.
 *
 * @example
 * ```ts
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const error = new ApiTokenBackend.ApiTokenStoreError({ operation: "list", cause: new Error("ECONNREFUSED") })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiTokenStoreError extends Schema.TaggedError<ApiTokenStoreError>("effect-auth/ApiTokenStoreError")(
  "ApiTokenStoreError",
  { operation: Schema.String, cause: Schema.Defect }
) {
  override get message(): string {
    return failedMessage("API tokens", this.operation, this.cause)
  }
}

/**
 * The management service: create tokens (shown once), list and revoke them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * // a "revoke" button on the user's own token page
 * const revokeMine = (userId: string, tokenId: string) =>
 *   Effect.flatMap(ApiTokenBackend.ApiTokens, (tokens) => tokens.revoke(tokenId, { userId }))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class ApiTokens extends Context.Tag("effect-auth/ApiTokens")<ApiTokens, ApiTokens.Service>() {}

/**
 * @example
 * ```ts
 * import type * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const activeTokens = (tokens: ApiTokenBackend.ApiTokens.Service, userId: string) => tokens.list(userId)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export declare namespace ApiTokens {
  /**
   * @example
   * ```ts
   * import type * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
   *
   * const allTokens = (tokens: ApiTokenBackend.ApiTokens.Service, userId: string) =>
   *   tokens.list(userId, { includeRevoked: true })
   * ```
   *
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The token format's prefix, e.g. `ea`. */
    readonly tokenPrefix: string
    /** Creates a token for an existing user; the returned `token` is the only copy of the secret. */
    readonly create: (
      input: CreateToken
    ) => Effect.Effect<CreatedToken, InvalidInput | UserStore.UserNotFound | ApiTokenStoreError>
    /** The user's tokens, oldest first; revoked ones only with `includeRevoked`. */
    readonly list: (
      userId: string,
      options?: { readonly includeRevoked?: boolean | undefined }
    ) => Effect.Effect<ReadonlyArray<TokenInfo>, InvalidInput | ApiTokenStoreError>
    readonly get: (tokenId: string) => Effect.Effect<Option.Option<TokenInfo>, ApiTokenStoreError>
    /**
     * Revokes a token; revoking it again is not an error. With `userId`, a token of another user
     * is `TokenNotFound`, so self-service pages need no separate ownership check.
     */
    readonly revoke: (
      tokenId: string,
      options?: { readonly userId?: string | undefined }
    ) => Effect.Effect<void, TokenNotFound | ApiTokenStoreError>
  }
}

/**
 * Where the token table lives.
 *
 * @example
 * ```ts
 * import type * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const options: ApiTokenBackend.TableOptions = { tablePrefix: "shop_auth_" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface TableOptions {
  /** `[a-z_][a-z0-9_]*`, at most 30 characters. Default: `"auth_"` (table `auth_api_token`). */
  readonly tablePrefix?: string | undefined
  /** The Migrator's bookkeeping table. Default: `effect_<tablePrefix>api_token_migrations`. */
  readonly migrationsTable?: string | undefined
}

/**
 * The backend's and the service's options.
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
export interface Options extends TableOptions {
  /** Backend id, stored in sessions. Default: `"api-token"`. */
  readonly id?: string | undefined
  /**
   * The start of every token, `[a-z][a-z0-9]{0,15}`; a distinctive one lets secret scanners
   * (GitHub's, for one) spot leaked tokens. Default: `"ea"`.
   */
  readonly tokenPrefix?: string | undefined
  /**
   * `lastUsedAt` is written only when it is older than this, so a busy token does not write on
   * every request; `0` writes on every use. Default: 1 minute.
   */
  readonly lastUsedInterval?: Duration.DurationInput | undefined
  /**
   * Turns the stored owner into the app's user type; return a fresh object each call (scopes are
   * attached to the object). Default: the stored user itself.
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

/**
 * The table names.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const tables: ApiTokenBackend.Tables = Effect.runSync(ApiTokenBackend.tables({ tablePrefix: "shop_" }))
 * tables.token // "shop_api_token"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Tables {
  readonly token: string
  readonly migrations: string
}

const configError = (message: string) => new AuthError.AuthConfigError({ message: `ApiTokenBackend: ${message}` })

/**
 * Resolves and checks the table names; a bad prefix is an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * Effect.runSync(ApiTokenBackend.tables()).token // "auth_api_token"
 * Effect.runSync(ApiTokenBackend.tables()).migrations // "effect_auth_api_token_migrations"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const tables = (options: TableOptions = {}): Effect.Effect<Tables, AuthError.AuthConfigError> =>
  SqlTables.resolve("ApiTokenBackend", "api_token", options, (prefix) => ({ token: `${prefix}api_token` }))

/**
 * The migrations, for apps that run every module's migrations through one `Migrator` (then
 * build the layer with `migrate: false`).
 *
 * @example
 * ```ts
 * import { Migrator } from "@effect/sql"
 * import { Effect } from "effect"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const migrate = Effect.flatMap(ApiTokenBackend.tables(), (tables) =>
 *   Migrator.make({})({ loader: Migrator.fromRecord(ApiTokenBackend.migrations(tables)), table: "app_migrations" }))
 * ```
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrations = (t: Tables): Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> => ({
  "1_create_api_token_table": Repository.createTable(t.token)
})

const storeError = (operation: string) => (cause: unknown) => new ApiTokenStoreError({ operation, cause })

/**
 * Runs the migrations with their own bookkeeping table. Failures are an `ApiTokenStoreError`.
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Effect } from "effect"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const program = ApiTokenBackend.migrate().pipe(Effect.provide(SqliteClient.layer({ filename: "./users.db" })))
 * ```
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrate = (
  options: TableOptions = {}
): Effect.Effect<void, AuthError.AuthConfigError | ApiTokenStoreError, SqlClient.SqlClient> =>
  Effect.flatMap(tables(options), (t) => SqlTables.migrate(migrations(t), t.migrations, storeError("migrate")))

// The token's scopes and info, keyed by the very user object `authenticate` returned.
const tokensByUser = new WeakMap<object, TokenInfo>()

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
export const tokenOf = (user: User): Option.Option<TokenInfo> => Option.fromNullable(tokensByUser.get(user))

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

const infoOf = (tokenPrefix: string, row: Repository.TokenRow): TokenInfo => ({
  id: row.id,
  prefix: `${tokenPrefix}_${row.id}`,
  userId: row.userId,
  name: row.name,
  scopes: row.scopes,
  createdAt: row.createdAt,
  expiresAt: Option.fromNullable(row.expiresAt),
  lastUsedAt: Option.fromNullable(row.lastUsedAt),
  revokedAt: Option.fromNullable(row.revokedAt)
})

// Without a registered app user type, `User` is `BaseUser` and a StoredUser is one (see ModelBackend).
const storedAsUser = (stored: UserStore.StoredUser): User => stored as unknown as User

const decodeCreate = Schema.decodeUnknown(CreateToken, { errors: "first", onExcessProperty: "error" })
const isUserId = Schema.is(UserModule.UserId)

interface Built {
  readonly backend: AuthBackend.AuthBackend<Credentials.Token>
  readonly tokens: ApiTokens.Service
}

const build = (options: Options): Effect.Effect<Built, AuthError.AuthConfigError, SqlClient.SqlClient | UserStore.UserStore> =>
  Effect.gen(function*() {
    const t = yield* tables(options)
    const tokenPrefix = options.tokenPrefix ?? "ea"
    if (!Token.isTokenPrefix(tokenPrefix)) return yield* configError("tokenPrefix must match [a-z][a-z0-9]{0,15}")
    // a typed DurationInput can still be a malformed string at runtime (from a config file, say)
    const interval = Duration.decodeUnknown(options.lastUsedInterval ?? "1 minute")
    if (Option.isNone(interval)) return yield* configError("lastUsedInterval must be a duration")
    const lastUsedInterval = Duration.toMillis(interval.value)
    const backendId = options.id ?? "api-token"
    const toUser = options.toUser ?? storedAsUser
    const repo = yield* Repository.make(t.token)
    const store = yield* UserStore.UserStore
    const now = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis))

    const viaRepo = <A>(operation: string, effect: Effect.Effect<A, Repository.RepositoryError>) =>
      SqlTables.mapStoreErrors(storeError(operation))(effect)

    const insertFresh = (row: Omit<Repository.TokenRow, "id" | "digest">) =>
      Effect.suspend(() => {
        const id = Token.generateId()
        const token = Token.generate(tokenPrefix, id)
        const stored: Repository.TokenRow = { ...row, id, digest: Token.digest(token) }
        return Effect.as(repo.insert(stored), { token, row: stored })
      }).pipe(
        // 62^8 ids: a clash is rare, and a fresh id settles it
        Effect.retry({
          times: 4,
          while: (error) => error._tag === "SqlError" && Repository.isUniqueViolation(error)
        })
      )

    const tokens: ApiTokens.Service = {
      tokenPrefix,
      create: (raw) =>
        Effect.gen(function*() {
          const input = yield* Effect.mapError(decodeCreate(raw), (error) =>
            new InvalidInput({ field: "input", message: ParseResult.TreeFormatter.formatErrorSync(error) }))
          const createdAt = yield* now
          if (input.expiresAt !== undefined && input.expiresAt.getTime() <= createdAt.getTime()) {
            return yield* new InvalidInput({ field: "expiresAt", message: "must be in the future" })
          }
          const owner = yield* store.findById(input.userId).pipe(
            Effect.catchTags({
              InvalidInput: () => Effect.succeedNone,
              UserStoreError: (error) => Effect.fail(storeError("create")(error))
            })
          )
          if (Option.isNone(owner)) return yield* new UserStore.UserNotFound({ userId: input.userId })
          const { row, token } = yield* viaRepo(
            "create",
            insertFresh({
              userId: input.userId,
              name: input.name,
              scopes: Array.from(new Set(input.scopes ?? [])),
              createdAt,
              expiresAt: input.expiresAt ?? null,
              lastUsedAt: null,
              revokedAt: null
            })
          )
          return { token: Redacted.make(token), info: infoOf(tokenPrefix, row) }
        }),
      list: (userId, listOptions) =>
        isUserId(userId)
          ? Effect.map(
            viaRepo("list", repo.listByUser(userId, listOptions?.includeRevoked ?? false)),
            (rows) => rows.map((row) => infoOf(tokenPrefix, row))
          )
          : Effect.fail(new InvalidInput({ field: "userId", message: "must be 1 to 255 characters" })),
      get: (tokenId) =>
        Token.isTokenId(tokenId)
          ? Effect.map(viaRepo("get", repo.findById(tokenId)), Option.map((row) => infoOf(tokenPrefix, row)))
          : Effect.succeedNone,
      revoke: (tokenId, revokeOptions) =>
        Effect.gen(function*() {
          const notFound = new TokenNotFound({ tokenId })
          if (!Token.isTokenId(tokenId)) return yield* notFound
          const found = yield* viaRepo("revoke", repo.findById(tokenId))
          if (Option.isNone(found)) return yield* notFound
          if (revokeOptions?.userId !== undefined && found.value.userId !== revokeOptions.userId) return yield* notFound
          if (found.value.revokedAt !== null) return
          yield* viaRepo("revoke", repo.revoke(tokenId, yield* now))
        })
    }

    const noMatch = (reason: AuthError.NoMatchReason) => new AuthError.NoMatch({ backend: backendId, reason })
    const transport = (cause: unknown) => new AuthError.TransportError({ backend: backendId, cause })

    const findOwner = (userId: string) =>
      store.findById(userId).pipe(
        Effect.catchTags({
          InvalidInput: () => Effect.succeedNone,
          UserStoreError: (error) => Effect.fail(transport(error))
        })
      )

    // Best effort: a token that works must not stop working because this write failed.
    const touch = (row: Repository.TokenRow, at: Date) =>
      row.lastUsedAt !== null && at.getTime() - row.lastUsedAt.getTime() < lastUsedInterval
        ? Effect.succeed(row)
        : repo.touch(row.id, at).pipe(
          Effect.as<Repository.TokenRow>({ ...row, lastUsedAt: at }),
          // a failed write only: a defect is a bug and stays one
          Effect.catchAll((cause) =>
            Effect.as(
              Effect.logWarning("ApiTokenBackend: could not record the token's last use").pipe(
                Effect.annotateLogs({ backend: backendId, tokenId: row.id }),
                Effect.annotateLogs("cause", cause)
              ),
              row
            )
          )
        )

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
        const user = toUser(owner.value)
        tokensByUser.set(user, infoOf(tokenPrefix, used))
        return user
      })

    const getUser = (userId: string): Effect.Effect<Option.Option<User>, AuthError.TransportError> =>
      Effect.map(findOwner(userId), (found) => Option.map(Option.filter(found, (user) => user.isActive), toUser))

    const backend = AuthBackend.make({
      id: backendId,
      credentials: Credentials.Token,
      authenticate,
      getUser,
      ...(options.policy === undefined ? {} : { policy: options.policy })
    })
    return { backend, tokens }
  })

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
  Effect.map(build(options), (built) => built.backend)

/**
 * Builds the management service on the `SqlClient` and `UserStore` in context (without migrating).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as ApiTokenBackend from "effect-auth/backends/ApiTokenBackend"
 *
 * const program = Effect.gen(function*() {
 *   const tokens = yield* ApiTokenBackend.makeTokens()
 *   return yield* tokens.list("1")
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTokens = (
  options: Options = {}
): Effect.Effect<ApiTokens.Service, AuthError.AuthConfigError, SqlClient.SqlClient | UserStore.UserStore> =>
  Effect.map(build(options), (built) => built.tokens)

/**
 * The backend and the management service, on the `SqlClient` and `UserStore` you provide
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
  ApiTokenBackend | ApiTokens,
  AuthError.AuthConfigError | ApiTokenStoreError,
  SqlClient.SqlClient | UserStore.UserStore
> =>
  Layer.effectContext(
    Effect.gen(function*() {
      if (options.migrate !== false) yield* migrate(options)
      const built = yield* build(options)
      return Context.make(ApiTokenBackend, built.backend).pipe(Context.add(ApiTokens, built.tokens))
    })
  )
