/**
 * The API token store: create tokens (shown once), list and revoke them. `ApiTokenBackend`
 * authenticates the tokens this service issues; an admin tool or a self-service page needs only
 * this module.
 *
 * A token looks like `ea_Zk3Qm9aB_<43 characters>`: a prefix (`ea`, configurable), a public
 * 8-character id that finds the row and names the token in lists, and a secret of 32 random
 * bytes in base64url. It is shown once, when created; the database keeps only the SHA-256 digest
 * of the whole token. Tokens may expire, carry scopes and be revoked.
 *
 * Tokens live in the SQL database of the user store, through the same `@effect/sql` `SqlClient`
 * (SQLite or PostgreSQL), in one table, `<tablePrefix>api_token` (`auth_api_token` by default),
 * migrated by the `Migrator` with its own bookkeeping table
 * (`effect_<tablePrefix>api_token_migrations`). A token's owner must exist in the `UserStore`.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { ApiTokens, SqlUserStore } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const tokens = yield* ApiTokens.ApiTokens
 *   const { token, info } = yield* tokens.create({ userId: "1", name: "deploy script", scopes: ["deploy"] })
 *   console.log(`shown once: ${Redacted.value(token)}; revoke it later with ${info.id}`)
 * })
 *
 * const TokensLive = ApiTokens.layer().pipe(Layer.provideMerge(SqlUserStore.layerSqlite({ filename: "./users.db" })))
 * ```
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as AuthError from "./AuthError.js"
import { infoOf, repoRunner, tokenPrefixOf } from "./internal/apiToken/info.js"
import * as Repository from "./internal/apiToken/repository.js"
import * as Token from "./internal/apiToken/token.js"
import * as SqlTables from "./internal/sqlTables.js"
import { failedMessage, safeCause } from "./internal/storeError.js"
import { isUserId } from "./internal/userId.js"
import { isStorable } from "./internal/wellFormed.js"
import { StorableDate } from "./internal/userStore.js"
import { treeMessage } from "./internal/parseErrors.js"
import * as UserModule from "./User.js"
import * as UserStore from "./UserStore.js"

/**
 * A token as lists show it. Never holds the secret or its digest.
 *
 * @example
 * ```ts
 * import type { ApiTokens } from "effect-auth"
 *
 * const line = (t: ApiTokens.TokenInfo) => `${t.prefix}… ${t.name} [${t.scopes.join(" ")}]`
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
 * What {@link Service.create} returns: the token, to show once, and its info.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { ApiTokens } from "effect-auth"
 *
 * const issue = (userId: string) =>
 *   Effect.flatMap(ApiTokens.ApiTokens, (tokens) => tokens.create({ userId, name: "laptop" })).pipe(
 *     Effect.map((created: ApiTokens.CreatedToken) => ({
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
 * import { ApiTokens } from "effect-auth"
 *
 * Schema.is(ApiTokens.Scope)("read:posts") // true
 * Schema.is(ApiTokens.Scope)("read posts") // false
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Scope = Schema.String.pipe(Schema.pattern(/^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/))

/**
 * The input of {@link Service.create}: at most 64 scopes (duplicates dropped), a name of 1 to
 * 255 characters, an expiry in the future.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { ApiTokens } from "effect-auth"
 *
 * const input = Schema.decodeUnknownSync(ApiTokens.CreateToken)({
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
    // (as every store keeps it: PostgreSQL refuses a NUL and keeps a lone surrogate as U+FFFD)
    Schema.filter((s) =>
      (s.length >= 1 && [...s].length <= 255 && isStorable(s)) || "must be 1 to 255 characters without NUL or lone surrogate"
    )
  ),
  scopes: Schema.optional(Schema.Array(Scope).pipe(Schema.maxItems(64))),
  expiresAt: Schema.optional(StorableDate)
})

/**
 * @example
 * ```ts
 * import type { ApiTokens } from "effect-auth"
 *
 * const input: ApiTokens.CreateToken = { userId: "1", name: "CI", scopes: ["deploy"] }
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
 * import { ApiTokens } from "effect-auth"
 *
 * const error = new ApiTokens.InvalidInput({ field: "expiresAt", message: "must be in the future" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>("effect-auth/ApiTokens/InvalidInput")(
  "InvalidInput",
  { field: Schema.String, message: Schema.String }
) {}

/**
 * No token has this id (or it belongs to another user than the one given to `revoke`).
 *
 * @example
 * ```ts
 * import { ApiTokens } from "effect-auth"
 *
 * const error = new ApiTokens.TokenNotFound({ tokenId: "Zk3Qm9aB" })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenNotFound extends Schema.TaggedError<TokenNotFound>("effect-auth/ApiTokens/TokenNotFound")(
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
 * import { ApiTokens } from "effect-auth"
 *
 * const error = new ApiTokens.ApiTokenStoreError({ operation: "list", cause: new Error("ECONNREFUSED") })
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
 * What the token store offers.
 *
 * @example
 * ```ts
 * import type { ApiTokens } from "effect-auth"
 *
 * const allTokens = (tokens: ApiTokens.Service, userId: string) => tokens.list(userId, { includeRevoked: true })
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
  /**
   * The user's tokens, oldest first; revoked ones only with `includeRevoked`. Options that do not
   * decode (`includeRevoked: "no"` from an untyped caller) are `InvalidInput` (field `"options"`).
   */
  readonly list: (
    userId: string,
    options?: { readonly includeRevoked?: boolean | undefined }
  ) => Effect.Effect<ReadonlyArray<TokenInfo>, InvalidInput | ApiTokenStoreError>
  readonly get: (tokenId: string) => Effect.Effect<Option.Option<TokenInfo>, ApiTokenStoreError>
  /**
   * Revokes a token; revoking it again is not an error. With `userId`, a token of another user
   * is `TokenNotFound`, so self-service pages need no separate ownership check. An id that is no
   * token id (a number, a whole token) and options whose `userId` is no string are
   * `TokenNotFound` too: nothing is revoked.
   */
  readonly revoke: (
    tokenId: string,
    options?: { readonly userId?: string | undefined }
  ) => Effect.Effect<void, TokenNotFound | ApiTokenStoreError>
}

/**
 * The token store as a service.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ApiTokens } from "effect-auth"
 *
 * // a "revoke" button on the user's own token page
 * const revokeMine = (userId: string, tokenId: string) =>
 *   Effect.flatMap(ApiTokens.ApiTokens, (tokens) => tokens.revoke(tokenId, { userId }))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class ApiTokens extends Context.Tag("effect-auth/ApiTokens")<ApiTokens, Service>() {}

/**
 * The old home of {@link Service}.
 *
 * @example
 * ```ts
 * import type { ApiTokens } from "effect-auth"
 *
 * type Old = ApiTokens.ApiTokens.Service // prefer ApiTokens.Service
 * ```
 *
 * @since 0.1.0
 * @category models
 * @deprecated Use `ApiTokens.Service`.
 */
export declare namespace ApiTokens {
  /**
   * @deprecated Use `ApiTokens.Service`.
   *
   * @example
   * ```ts
   * import type { ApiTokens } from "effect-auth"
   *
   * type Old = ApiTokens.ApiTokens.Service // prefer ApiTokens.Service
   * ```
   *
   * @since 0.1.0
   */
  export type Service = import("./ApiTokens.js").Service
}

/**
 * Where the token table lives.
 *
 * @example
 * ```ts
 * import type { ApiTokens } from "effect-auth"
 *
 * const options: ApiTokens.TableOptions = { tablePrefix: "shop_auth_" }
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
 * The store's options. `ApiTokenBackend` takes the same ones (and more): give both the same.
 *
 * @example
 * ```ts
 * import type { ApiTokens } from "effect-auth"
 *
 * const options: ApiTokens.Options = { tokenPrefix: "shop", tablePrefix: "shop_auth_" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends TableOptions {
  /**
   * The start of every token, `[a-z][a-z0-9]{0,15}`; a distinctive one lets secret scanners
   * (GitHub's, for one) spot leaked tokens. Default: `"ea"`.
   */
  readonly tokenPrefix?: string | undefined
  /**
   * How long one database operation may take before it fails with `ApiTokenStoreError` (a
   * database whose connections froze answers with a 503 rather than holding the request).
   * Default: 5 seconds.
   */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * Options of {@link layer}.
 *
 * @example
 * ```ts
 * import { ApiTokens } from "effect-auth"
 *
 * // the app runs every module's migrations itself, through one Migrator
 * const TokensLive = ApiTokens.layer({ migrate: false, tokenPrefix: "shop" })
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
 * import { ApiTokens } from "effect-auth"
 *
 * const tables: ApiTokens.Tables = Effect.runSync(ApiTokens.tables({ tablePrefix: "shop_" }))
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

/**
 * Resolves and checks the table names; a bad prefix is an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ApiTokens } from "effect-auth"
 *
 * Effect.runSync(ApiTokens.tables()).token // "auth_api_token"
 * Effect.runSync(ApiTokens.tables()).migrations // "effect_auth_api_token_migrations"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const tables = (options: TableOptions = {}): Effect.Effect<Tables, AuthError.AuthConfigError> =>
  SqlTables.resolve("ApiTokens", "api_token", options, (prefix) => ({ token: `${prefix}api_token` }))

/**
 * The migrations, for apps that run every module's migrations through one `Migrator` (then
 * build the layer with `migrate: false`).
 *
 * @example
 * ```ts
 * import { Migrator } from "@effect/sql"
 * import { Effect } from "effect"
 * import { ApiTokens } from "effect-auth"
 *
 * const migrate = Effect.flatMap(ApiTokens.tables(), (tables) =>
 *   Migrator.make({})({ loader: Migrator.fromRecord(ApiTokens.migrations(tables)), table: "app_migrations" }))
 * ```
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrations = (t: Tables): Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> => ({
  "1_create_api_token_table": Repository.createTable(t.token)
})

const storeError = (operation: string) => (cause: unknown) => new ApiTokenStoreError({ operation, cause: safeCause(cause) })

/**
 * Runs the migrations with their own bookkeeping table. Failures are an `ApiTokenStoreError`.
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Effect } from "effect"
 * import { ApiTokens } from "effect-auth"
 *
 * const program = ApiTokens.migrate().pipe(Effect.provide(SqliteClient.layer({ filename: "./users.db" })))
 * ```
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrate = (
  options: TableOptions = {}
): Effect.Effect<void, AuthError.AuthConfigError | ApiTokenStoreError, SqlClient.SqlClient> =>
  Effect.flatMap(tables(options), (t) => SqlTables.migrate(migrations(t), t.migrations, storeError("migrate")))

const decodeCreate = Schema.decodeUnknown(CreateToken, { errors: "first", onExcessProperty: "error" })
// The options of `list` and `revoke` as an untyped caller may give them: `includeRevoked: "no"`
// is truthy, so it must not be read as a boolean by JavaScript's rules.
const decodeListOptions = Schema.decodeUnknownEither(
  Schema.UndefinedOr(Schema.Struct({ includeRevoked: Schema.optional(Schema.UndefinedOr(Schema.Boolean)) })),
  { errors: "first" }
)
const decodeRevokeOptions = Schema.decodeUnknownEither(
  Schema.UndefinedOr(Schema.Struct({ userId: Schema.optional(Schema.UndefinedOr(Schema.String)) })),
  { errors: "first" }
)
// Decodes options that may throw when read (a getter, a Proxy): such options did not decode.
const decodeOptions = <A>(
  decode: (input: unknown) => Either.Either<A, ParseResult.ParseError>,
  input: unknown,
  message: string
): Either.Either<A, string> => {
  try {
    return Either.mapLeft(decode(input), () => message)
  } catch {
    return Either.left("could not be read")
  }
}
const now = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis))

/**
 * Builds the store on the `SqlClient` and `UserStore` in context (without migrating). A bad
 * table or token prefix is an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ApiTokens } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const tokens = yield* ApiTokens.make()
 *   return yield* tokens.list("1")
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<Service, AuthError.AuthConfigError, SqlClient.SqlClient | UserStore.UserStore> =>
  Effect.gen(function*() {
    const t = yield* tables(options)
    const tokenPrefix = yield* tokenPrefixOf("ApiTokens", options)
    const viaRepo = yield* repoRunner("ApiTokens", options, storeError)
    const repo = yield* Repository.make(t.token)
    const store = yield* UserStore.UserStore

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

    return {
      tokenPrefix,
      create: (raw) =>
        Effect.gen(function*() {
          const input = yield* Effect.suspend(() => decodeCreate(raw)).pipe(
            Effect.mapError((error) => new InvalidInput({ field: "input", message: treeMessage(error) })),
            // An input that throws when read (a getter, a Proxy, from an untyped caller) is no input.
            Effect.catchAllDefect(() => Effect.fail(new InvalidInput({ field: "input", message: "could not be read" })))
          )
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
      list: (userId, listOptions) => {
        // (a NUL made PostgreSQL's query fail: a store error, read as an outage)
        if (!isUserId(userId) || !isStorable(userId)) {
          return Effect.fail(new InvalidInput({ field: "userId", message: "must be 1 to 255 characters without NUL or lone surrogate" }))
        }
        const decoded = decodeOptions(decodeListOptions, listOptions, "must be an object whose includeRevoked is a boolean")
        if (Either.isLeft(decoded)) return Effect.fail(new InvalidInput({ field: "options", message: decoded.left }))
        return Effect.map(
          viaRepo("list", repo.listByUser(userId, decoded.right?.includeRevoked ?? false)),
          (rows) => rows.map((row) => infoOf(tokenPrefix, row))
        )
      },
      get: (tokenId) =>
        Token.isTokenId(tokenId)
          ? Effect.map(viaRepo("get", repo.findById(tokenId)), Option.map((row) => infoOf(tokenPrefix, row)))
          : Effect.succeedNone,
      revoke: (tokenId, revokeOptions) =>
        Effect.gen(function*() {
          // Not a token id (a whole token handed over by mistake, a number): the error must not
          // quote it, and the error's own Schema refuses what is not a string.
          if (!Token.isTokenId(tokenId)) return yield* new TokenNotFound({ tokenId: "(not a token id)" })
          const notFound = new TokenNotFound({ tokenId })
          // Options that do not decode (a `userId` that is no string) name no owner this token
          // could have: not found, never revoked on a guess.
          const decoded = decodeOptions(decodeRevokeOptions, revokeOptions, "must be an object whose userId is a string")
          if (Either.isLeft(decoded)) return yield* notFound
          const owner = decoded.right?.userId
          const found = yield* viaRepo("revoke", repo.findById(tokenId))
          if (Option.isNone(found)) return yield* notFound
          if (owner !== undefined && found.value.userId !== owner) return yield* notFound
          if (found.value.revokedAt !== null) return
          yield* viaRepo("revoke", repo.revoke(tokenId, yield* now))
        })
    }
  })

/**
 * The store on the `SqlClient` and `UserStore` you provide (`SqlUserStore.layerSqlite`/`layerPg`
 * provide both); runs the migrations first unless `migrate: false`. `ApiTokenBackend.layer`
 * provides this service too: use this layer where tokens are managed but not authenticated
 * (an admin tool).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ApiTokens, SqlUserStore } from "effect-auth"
 *
 * const TokensLive = ApiTokens.layer({ tokenPrefix: "shop" }).pipe(
 *   Layer.provideMerge(SqlUserStore.layerPg({ url: "postgres://app@db/app" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<ApiTokens, AuthError.AuthConfigError | ApiTokenStoreError, SqlClient.SqlClient | UserStore.UserStore> =>
  Layer.effect(ApiTokens, Effect.zipRight(options.migrate === false ? Effect.void : migrate(options), make(options)))
