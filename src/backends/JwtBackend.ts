/**
 * A backend for bearer tokens: JWTs issued by an OpenID Connect provider (keys from its JWKS URL)
 * or by your own services (static keys or an HMAC secret), verified with `jose`.
 *
 * A token authenticates when its signature verifies with a key of the configured set under an
 * algorithm of the explicit allow-list (`none` is never accepted, and a key is only ever used with
 * the algorithms of its own type, so an HS256 token "signed" with an RSA public key fails), its
 * issuer and audience match, and `exp`/`nbf` hold within the configured clock skew. Its claims are
 * then decoded into the app's user by your Schema.
 *
 * Outcomes: an expired token is `NoMatch("expired-credentials")`; any other bad token (malformed,
 * wrong signature, algorithm, issuer, audience, `nbf`, unknown key, claims that do not decode) is
 * `NoMatch("invalid-credentials")`; a JWKS endpoint that is down, slow or answers garbage is a
 * `TransportError`.
 *
 * Tokens are stateless, so `getUser` (what a session uses to find the user again) has nothing to
 * look up: it answers `Option.none()` unless you give a `loadUser` hook. To keep Django-style
 * sessions after a token login, provision the user into your store with `provision` and load it
 * from there with `loadUser`.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer, Schema } from "effect"
 * import * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * const Claims = Schema.Struct({ sub: Schema.String, preferred_username: Schema.String })
 *
 * const JwtLive = JwtBackend.layer({
 *   keys: { jwksUrl: "https://login.example.com/.well-known/jwks.json" },
 *   algorithms: ["RS256"],
 *   issuer: "https://login.example.com/",
 *   audience: "my-api",
 *   claims: JwtBackend.userFromClaims(Claims, (c) => ({
 *     id: c.sub,
 *     username: c.preferred_username,
 *     isActive: true,
 *     isSuperuser: false
 *   }))
 * }).pipe(Layer.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as Arr from "effect/Array"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, type JWTPayload, jwtVerify } from "jose"
import * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import * as Credentials from "../Credentials.js"
import * as PeerClient from "../internal/http/peerClient.js"
import * as ConfigDuration from "../internal/configDuration.js"
import * as RemoteJwks from "../internal/jwt/remoteJwks.js"
import { isUserId } from "../internal/userId.js"
import * as UserModule from "../User.js"

type User = UserModule.User

/**
 * The JWS algorithms a backend may allow. `none` is not one of them.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * Schema.is(JwtBackend.Algorithm)("none") // false
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Algorithm = Schema.Literal(
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
  "HS256",
  "HS384",
  "HS512"
)

/**
 * @example
 * ```ts
 * import type * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * const algorithms: ReadonlyArray<JwtBackend.Algorithm> = ["ES256", "EdDSA"]
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Algorithm = typeof Algorithm.Type

/**
 * Keys from a JWKS URL, fetched through the app's `HttpClient` (the layer then requires one).
 *
 * @example
 * ```ts
 * import type * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * const keys: JwtBackend.RemoteKeys = {
 *   jwksUrl: "https://login.example.com/.well-known/jwks.json",
 *   cacheMaxAge: "10 minutes",
 *   cooldown: "30 seconds",
 *   timeout: "3 seconds"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RemoteKeys {
  readonly jwksUrl: string | URL
  /** Refetch a set older than this. Default: 10 minutes. Must be at least `cooldown`. */
  readonly cacheMaxAge?: Duration.DurationInput | undefined
  /**
   * The floor on refresh frequency: no two fetches less than this apart, whatever `kid`s tokens
   * name. Default: 30 seconds.
   */
  readonly cooldown?: Duration.DurationInput | undefined
  /** Each fetch is cut after this long (a `TransportError`). Default: 5 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * Keys given in the configuration as a JSON Web Key Set of public keys (RSA, EC, OKP). An HMAC key
 * goes in a {@link SecretKey} instead.
 *
 * @example
 * ```ts
 * import type * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * const keys: JwtBackend.StaticKeys = {
 *   jwks: { keys: [{ kty: "EC", crv: "P-256", x: "...", y: "...", kid: "2024-01", alg: "ES256" }] }
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface StaticKeys {
  readonly jwks: JSONWebKeySet
}

/**
 * One HMAC secret (HS256/384/512 only), at least as long as the hash: 32, 48 or 64 bytes.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * const keys: JwtBackend.SecretKey = { secret: Redacted.make("a-secret-of-at-least-thirty-two-bytes!") }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface SecretKey {
  readonly secret: Redacted.Redacted<string> | Redacted.Redacted<Uint8Array>
}

/**
 * Where the verification keys come from.
 *
 * @example
 * ```ts
 * import type * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * const keys: JwtBackend.Keys = { jwksUrl: "https://login.example.com/.well-known/jwks.json" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Keys = RemoteKeys | StaticKeys | SecretKey

/**
 * The JwtBackend configuration.
 *
 * @example
 * ```ts
 * import { Effect, Option, Schema } from "effect"
 * import { User } from "effect-auth"
 * import type * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * const options: JwtBackend.Options<JwtBackend.RemoteKeys> = {
 *   keys: { jwksUrl: "https://login.example.com/jwks" },
 *   algorithms: ["ES256", "RS256"],
 *   issuer: "https://login.example.com/",
 *   audience: ["my-api", "my-admin"],
 *   clockSkew: "1 minute",
 *   claims: User.BaseUserSchema,
 *   loadUser: (id) => Effect.succeed(Option.none())
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<K extends Keys = Keys> {
  /** Backend id, stored in sessions. Default: `"jwt"`. */
  readonly id?: string | undefined
  readonly keys: K
  /** The algorithms accepted, never `none`. HS* only with a secret, never with a key set (static or from a URL). */
  readonly algorithms: Arr.NonEmptyReadonlyArray<Algorithm>
  /** Expected `iss` (one of). Strongly recommended; required by OIDC. */
  readonly issuer?: string | ReadonlyArray<string> | undefined
  /**
   * Expected `aud` (one of). Required (RFC 8725 §3.9, OIDC Core 3.1.3.7): a token minted for
   * another service of the same issuer must not log in here. `false` opts out explicitly, for an
   * issuer that mints tokens for this service only.
   */
  readonly audience: string | ReadonlyArray<string> | false
  /**
   * Tolerance for `exp`, `nbf` and `iat`. Default: 30 seconds. A token whose `iat` lies further in
   * the future is refused, with or without `maxTokenAge`.
   */
  readonly clockSkew?: Duration.DurationInput | undefined
  /** Reject tokens whose `iat` is older than this. Default: no limit. */
  readonly maxTokenAge?: Duration.DurationInput | undefined
  /**
   * Claims that must be present besides `exp`, e.g. `["sub", "jti"]`: they are added to `exp`,
   * never put in its place (see `requireExpiry`). Default: none.
   */
  readonly requiredClaims?: ReadonlyArray<string> | undefined
  /**
   * Whether a token must carry `exp`. Default: `true`: a token without expiry never authenticates,
   * whatever `requiredClaims` says (simplejwt refuses one too). `false` accepts tokens that never
   * expire, for an issuer that mints none and revokes them some other way; an `exp` a token does
   * carry is still checked.
   *
   * @since 0.4.0
   */
  readonly requireExpiry?: boolean | undefined
  /** Expected `typ` header, e.g. `"at+jwt"` (RFC 9068). Default: not checked. */
  readonly typ?: string | undefined
  /** Decodes the verified claims (`JWTPayload`) into the app's user; failure is `NoMatch`. */
  readonly claims: Schema.Schema<User, any, never>
  /** Accept users whose `isActive` is false. Default: false (`NoMatch("inactive-user")`). */
  readonly allowInactive?: boolean | undefined
  /**
   * Runs after the claims decoded: create or update the user in a local store and return the
   * user to log in (e.g. with the local id, so that `loadUser` finds it again).
   */
  readonly provision?:
    | ((claims: JWTPayload, user: User) => Effect.Effect<User, AuthError.BackendError>)
    | undefined
  /** What `getUser` answers for an id this backend issued. Default: always `Option.none()`. */
  readonly loadUser?: ((userId: string) => Effect.Effect<Option.Option<User>, AuthError.TransportError>) | undefined
  /** Applied by `AuthService` to every call: timeout, retry of TransportErrors, fallthrough. */
  readonly policy?: AuthBackend.PolicyInput | undefined
}

/**
 * The JwtBackend service: pass the Tag to `AuthService.layer([...])`, provide it with {@link layer}.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * const program = Effect.flatMap(
 *   JwtBackend.JwtBackend,
 *   (backend) => backend.authenticate({ token: Redacted.make("eyJhbGciOi...") }, undefined)
 * )
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class JwtBackend extends Context.Tag("effect-auth/JwtBackend")<
  JwtBackend,
  AuthBackend.AuthBackend<Credentials.Token>
>() {}

/**
 * A decode-only Schema from claims to the app's user: decode the claims you need with `claims`,
 * then build the user with `f`. (Users are never encoded back into claims.)
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * const UserFromClaims = JwtBackend.userFromClaims(
 *   Schema.Struct({ sub: Schema.String, email: Schema.String, groups: Schema.optional(Schema.Array(Schema.String)) }),
 *   (c) => ({ id: c.sub, username: c.email, isActive: true, isSuperuser: c.groups?.includes("admins") ?? false })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const userFromClaims = <A, I>(
  claims: Schema.Schema<A, I, never>,
  f: (claims: A) => User
): Schema.Schema<User, I, never> =>
  Schema.transformOrFail(claims, Schema.Any as Schema.Schema<User>, {
    strict: true,
    decode: (decoded) => ParseResult.succeed(f(decoded)),
    encode: (user, _, ast) => ParseResult.fail(new ParseResult.Forbidden(ast, user, "users are not encoded into claims"))
  })

const isHmac = (alg: Algorithm) => alg.startsWith("HS")
const minSecretBytes: Record<string, number> = { HS256: 32, HS384: 48, HS512: 64 }
const decodeAlgorithms = Schema.decodeUnknownEither(Schema.NonEmptyArray(Algorithm))
const configError = (message: string) => new AuthError.AuthConfigError({ message: `JwtBackend: ${message}` })

// A negative skew (`"-5 seconds"`, which Duration reads as zero) is refused, not taken as none.
const seconds = (input: Duration.DurationInput | undefined, fallback: Duration.DurationInput, name: string) =>
  Option.match(ConfigDuration.nonNegative(input ?? fallback), {
    onNone: () => Effect.fail(configError(`${name} must be a finite, non-negative duration`)),
    onSome: Effect.succeed
  })

type KeyResolver =
  | { readonly _tag: "Static"; readonly key: ReturnType<typeof createLocalJWKSet> | Uint8Array }
  | { readonly _tag: "Remote"; readonly jwks: RemoteJwks.RemoteJwks }

// A compact JWS: three base64url parts, no padding, nothing else (RFC 7515 §3.1, §7.1).
const compactJws = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/**
 * Builds the backend. With {@link RemoteKeys} it needs an `HttpClient`. Fails with
 * `AuthConfigError` when the configuration is unusable (no or unknown algorithms, HMAC with a
 * JWKS URL, a short secret, ...).
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { User } from "effect-auth"
 * import * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * const program = Effect.gen(function*() {
 *   const backend = yield* JwtBackend.make({
 *     keys: { secret: Redacted.make("0123456789abcdef0123456789abcdef") },
 *     algorithms: ["HS256"],
 *     issuer: "my-service",
 *     audience: "my-api",
 *     claims: User.BaseUserSchema
 *   })
 *   return yield* Effect.either(backend.authenticate({ token: Redacted.make("not.a.jwt") }, undefined))
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: {
  (
    options: Options<RemoteKeys>
  ): Effect.Effect<AuthBackend.AuthBackend<Credentials.Token>, AuthError.AuthConfigError, HttpClient.HttpClient>
  (options: Options<StaticKeys | SecretKey>): Effect.Effect<AuthBackend.AuthBackend<Credentials.Token>, AuthError.AuthConfigError>
} = (options: Options): Effect.Effect<AuthBackend.AuthBackend<Credentials.Token>, AuthError.AuthConfigError> =>
  makeWith(options)

const makeWith = (
  options: Options
): Effect.Effect<AuthBackend.AuthBackend<Credentials.Token>, AuthError.AuthConfigError> =>
  Effect.gen(function*() {
    const id = options.id ?? "jwt"
    const decodedAlgorithms = decodeAlgorithms(options.algorithms)
    if (decodedAlgorithms._tag === "Left") {
      return yield* configError("algorithms must be a non-empty list of supported JWS algorithms (never \"none\")")
    }
    const algorithms = decodedAlgorithms.right
    const keys = options.keys
    // A key set, static or from a URL, never verifies HMAC: a JWKS URL is public (it cannot hold a
    // secret), and jose checks HS* only against a secret, not a set's `oct` keys, so every HS*
    // token would fail at run time as a bad signature.
    if (!("secret" in keys) && algorithms.some(isHmac)) {
      return yield* configError("HMAC algorithms (HS*) need keys.secret, not a key set")
    }
    let resolver: KeyResolver
    if ("jwksUrl" in keys) {
      let url: URL
      try {
        url = new URL(keys.jwksUrl)
      } catch {
        return yield* configError("jwksUrl is not a URL")
      }
      if (url.protocol !== "https:" && url.protocol !== "http:") return yield* configError("jwksUrl must be http(s)")
      const cacheMaxAge = yield* seconds(keys.cacheMaxAge, "10 minutes", "cacheMaxAge")
      const cooldown = yield* seconds(keys.cooldown, "30 seconds", "cooldown")
      const timeout = yield* seconds(keys.timeout, "5 seconds", "timeout")
      if (Duration.lessThan(cacheMaxAge, cooldown)) return yield* configError("cacheMaxAge must be at least cooldown")
      if (Duration.toMillis(timeout) === 0) return yield* configError("timeout must be positive")
      const client = yield* Effect.serviceOption(HttpClient.HttpClient)
      if (Option.isNone(client)) return yield* configError("a JWKS URL needs an HttpClient layer")
      const jwks = yield* RemoteJwks.make({
        backend: id,
        url: url.toString(),
        // The key set must come from this URL: a redirect is an unexpected status, not followed.
        client: yield* Effect.provideService(PeerClient.make, HttpClient.HttpClient, client.value),
        cacheMaxAge,
        cooldown,
        timeout
      })
      resolver = { _tag: "Remote", jwks }
    } else if ("jwks" in keys) {
      try {
        resolver = { _tag: "Static", key: createLocalJWKSet(keys.jwks) }
      } catch {
        return yield* configError("jwks is not a JSON Web Key Set")
      }
    } else {
      if (!algorithms.every(isHmac)) return yield* configError("a secret verifies HMAC algorithms (HS*) only")
      const raw = Redacted.value(keys.secret as Redacted.Redacted<string | Uint8Array>)
      const secret = Predicate.isString(raw) ? new TextEncoder().encode(raw) : raw
      const needed = Math.max(...algorithms.map((alg) => minSecretBytes[alg] ?? 0))
      if (secret.length < needed) return yield* configError(`the secret must be at least ${needed} bytes`)
      resolver = { _tag: "Static", key: secret }
    }

    const clockSkew = yield* seconds(options.clockSkew, "30 seconds", "clockSkew")
    const clockSkewMillis = Duration.toMillis(clockSkew)
    if (options.audience !== false && (options.audience as unknown) === undefined) {
      return yield* configError("audience is required (pass audience: false to accept tokens for any audience)")
    }
    const maxTokenAge = options.maxTokenAge === undefined
      ? undefined
      : yield* seconds(options.maxTokenAge, 0, "maxTokenAge")
    // `exp` is required unless opted out in so many words: `requiredClaims: ["sub"]` (meant as
    // "sub too") once replaced it, and tokens that never expire logged in.
    const claimsNamed: unknown = options.requiredClaims ?? []
    if (!Array.isArray(claimsNamed) || !claimsNamed.every(Predicate.isString)) {
      return yield* configError("requiredClaims must be a list of claim names")
    }
    const requiredClaims = [...new Set([...(options.requireExpiry === false ? [] : ["exp"]), ...claimsNamed])]
    const allowed: ReadonlySet<string> = new Set(algorithms)
    const verifyOptions = {
      algorithms: [...algorithms],
      clockTolerance: Duration.toSeconds(clockSkew),
      requiredClaims,
      ...(options.issuer === undefined ? {} : { issuer: Predicate.isString(options.issuer) ? options.issuer : [...options.issuer] }),
      ...(options.audience === false
        ? {}
        : { audience: Predicate.isString(options.audience) ? options.audience : [...options.audience] }),
      ...(maxTokenAge === undefined ? {} : { maxTokenAge: Duration.toSeconds(maxTokenAge) }),
      ...(options.typ === undefined ? {} : { typ: options.typ })
    }

    const fail = AuthError.failures(id)
    const invalid = fail.noMatchError("invalid-credentials")
    const expired = fail.noMatchError("expired-credentials")
    const inactive = fail.noMatchError("inactive-user")
    const decodeClaims = Schema.decodeUnknown(options.claims)
    const allowInactive = options.allowInactive ?? false
    const provision = options.provision

    const keyFor = (kid: string | undefined) =>
      resolver._tag === "Static" ? Effect.succeed(resolver.key) : resolver.jwks.keySet(kid)

    const verify = (token: string) =>
      Effect.gen(function*() {
        // Only the compact form RFC 7515 §7.1 defines (base64url without padding or whitespace):
        // jose's forgiving base64 read `a.b.c` with a space or a `=` inside as the same token, so
        // one signed JWT had many spellings, and whatever keys on the token's text (a revocation
        // list, a cache, a log search) was sidestepped by adding a space. PyJWT refuses them too.
        if (!compactJws.test(token)) return yield* invalid
        let header: ReturnType<typeof decodeProtectedHeader>
        try {
          header = decodeProtectedHeader(token)
        } catch {
          return yield* invalid
        }
        // Checked before any key lookup, so a forged header cannot trigger a JWKS refresh.
        if (!Predicate.isString(header.alg) || !allowed.has(header.alg)) return yield* invalid
        const key = yield* keyFor(Predicate.isString(header.kid) ? header.kid : undefined)
        const now = yield* Clock.currentTimeMillis
        const { payload } = yield* Effect.tryPromise({
          try: () => jwtVerify(token, key, { ...verifyOptions, currentDate: new Date(now) }),
          // jose raises ERR_JWT_EXPIRED for `maxTokenAge` too (claim `iat`): only a past `exp` is expired.
          catch: (error) =>
            Predicate.hasProperty(error, "code") && error.code === "ERR_JWT_EXPIRED" &&
              Predicate.hasProperty(error, "claim") && error.claim === "exp"
              ? expired
              : invalid
        })
        // jose checks `iat` only with maxTokenAge: a token issued in the future (a clock far off, or
        // a token minted ahead to outlive a key) is refused here in every case.
        if (typeof payload.iat === "number" && payload.iat * 1000 > now + clockSkewMillis) return yield* invalid
        return payload
      })

    const authenticate = (credentials: Credentials.Token): Effect.Effect<User, AuthError.BackendError> =>
      Effect.gen(function*() {
        const claims = yield* verify(Redacted.value(credentials.token))
        const mapped = yield* Effect.mapError(decodeClaims(claims), () => invalid)
        const user = provision === undefined ? mapped : yield* provision(claims, mapped)
        if (!user.isActive && !allowInactive) return yield* inactive
        return user
      })

    const noUser = Effect.succeed(Option.none<User>())
    const loadUser = options.loadUser
    const getUser = (userId: string): Effect.Effect<Option.Option<User>, AuthError.TransportError> =>
      loadUser === undefined || !isUserId(userId) ? noUser : loadUser(userId)

    return AuthBackend.make({
      id,
      credentials: Credentials.Token,
      authenticate,
      getUser,
      policy: options.policy
    })
  })

/**
 * A layer of the {@link JwtBackend} service. With {@link RemoteKeys} it requires an `HttpClient`.
 *
 * @example
 * ```ts
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { User } from "effect-auth"
 * import * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * const JwtLive = JwtBackend.layer({
 *   keys: { jwksUrl: "https://login.example.com/jwks" },
 *   algorithms: ["RS256"],
 *   issuer: "https://login.example.com/",
 *   audience: "my-api",
 *   claims: User.BaseUserSchema,
 *   policy: { timeout: "3 seconds", onTransportError: "fallthrough" }
 * }).pipe(Layer.provide(NodeHttpClient.layerUndici))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: {
  (options: Options<RemoteKeys>): Layer.Layer<JwtBackend, AuthError.AuthConfigError, HttpClient.HttpClient>
  (options: Options<StaticKeys | SecretKey>): Layer.Layer<JwtBackend, AuthError.AuthConfigError>
} = (options: Options): Layer.Layer<JwtBackend, AuthError.AuthConfigError> =>
  Layer.effect(JwtBackend, makeWith(options))

/**
 * {@link layer} with its options read from `Config`; read an HMAC secret with `Config.redacted`.
 * As with every `Config.Config.Wrap`, each field is a `Config`: values that do not come from the
 * environment (the claims Schema, functions) are `Config.succeed(...)`. A missing or malformed
 * value fails the layer with a `ConfigError`; a secret that is too short, with an
 * `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { User } from "effect-auth"
 * import * as JwtBackend from "effect-auth/backends/JwtBackend"
 *
 * const JwtLive = JwtBackend.layerConfig({
 *   keys: { secret: Config.redacted("JWT_SECRET") },
 *   algorithms: Config.succeed(["HS256"] as const),
 *   issuer: Config.string("JWT_ISSUER"),
 *   audience: Config.string("JWT_AUDIENCE"),
 *   claims: Config.succeed(User.BaseUserSchema)
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: {
  (
    config: Config.Config.Wrap<Options<RemoteKeys>>
  ): Layer.Layer<JwtBackend, ConfigError.ConfigError | AuthError.AuthConfigError, HttpClient.HttpClient>
  (config: Config.Config.Wrap<Options<SecretKey>>): Layer.Layer<JwtBackend, ConfigError.ConfigError | AuthError.AuthConfigError>
  (config: Config.Config.Wrap<Options<StaticKeys>>): Layer.Layer<JwtBackend, ConfigError.ConfigError | AuthError.AuthConfigError>
} = (
  config: Config.Config.Wrap<Options<RemoteKeys>> | Config.Config.Wrap<Options<SecretKey>> | Config.Config.Wrap<Options<StaticKeys>>
): Layer.Layer<JwtBackend, ConfigError.ConfigError | AuthError.AuthConfigError> =>
  Layer.unwrapEffect(
    Effect.map(Config.unwrap(config as Config.Config.Wrap<Options<SecretKey>>), (options) => layer(options))
  )
