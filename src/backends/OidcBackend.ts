/**
 * Logging in with an identity provider: the OAuth 2.0 authorization-code flow with PKCE, and
 * OpenID Connect on top of it, as a backend in the fold. The protocol is `oauth4webapi`'s
 * (discovery, the authorization response, the code exchange, the ID token's issuer, audience,
 * nonce, expiry and signature); every request it makes goes through `@effect/platform`'s
 * `HttpClient`.
 *
 * The flow (routes in `OidcLogin`):
 *
 * 1. {@link Service.authorizationRequest} makes `state`, `nonce` and a PKCE verifier, and the
 *    provider's authorization URL to send the browser to;
 * 2. the provider sends the browser back to `redirectUri` with a code; the callback hands the
 *    URL and the values of step 1 to the fold as {@link Callback} credentials;
 * 3. this backend checks `state`, exchanges the code (with the verifier), verifies the ID token
 *    (or, for a plain OAuth 2.0 provider, asks its userinfo endpoint), maps the claims to an
 *    `ExternalUser` and provisions it into the `UserStore` (create on first login, update, groups
 *    from a claim), so the rest of the app sees an ordinary local user and session.
 *
 * Each local user is bound to the provider's stable id of the person (`sub`, in the namespace of
 * the issuer) in the `ExternalIdentities` store, on its first login: later logins find it by the
 * binding, so a `preferred_username` renamed at the provider still logs into the same user, and one
 * chosen, or released and taken, by someone else logs into nobody (`NoMatch("unknown-user")`).
 * Since 0.3.0 the backend requires the `ExternalIdentities` service (`ExternalIdentities.layerMemory`,
 * `SqlExternalIdentities.layer`): a breaking change of the 0.x series, made so that the secure
 * behaviour is the default. Users provisioned before have no binding yet: bind them
 * (`ExternalIdentities`' `bind`), or let their next login bind them (`linkUnboundUsers`, trust on
 * first use); by default a login never links to an existing user no subject is bound to.
 *
 * Outcomes: the provider down, slow or answering garbage (a body that does not parse as JSON, a
 * token answer whose fields are missing or of another type, a discovery document without a usable
 * token endpoint or key set, a key it cannot use) is a `TransportError` (503), and so is
 * a callback on which it says it failed (`error=server_error` or `error=temporarily_unavailable`,
 * RFC 6749 4.1.2.1, once its state matched); a callback that does not verify (`error=access_denied`
 * or any other error, a wrong state or nonce, a replayed code, an ID token for another audience,
 * or one oauth4webapi does not support: an HMAC or `none` alg, a `crit` header, an encrypted token)
 * is `NoMatch("invalid-credentials")`, an expired ID token `NoMatch("expired-credentials")`;
 * nothing is provisioned before the token verified.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { FetchHttpClient } from "@effect/platform"
 * import { AuthService, ExternalIdentities, MemoryUserStore } from "effect-auth"
 * import * as OidcBackend from "effect-auth/backends/OidcBackend"
 *
 * const OidcLive = OidcBackend.layer({
 *   issuer: "https://accounts.google.com",
 *   clientId: "1234.apps.googleusercontent.com",
 *   clientSecret: Redacted.make("from-the-console"),
 *   redirectUri: "https://app.example.com/oidc/callback",
 *   usernameClaim: "email"
 * }).pipe(Layer.provide(Layer.mergeAll(MemoryUserStore.layer, ExternalIdentities.layerMemory, FetchHttpClient.layer)))
 *
 * const AuthLive = AuthService.layer([OidcBackend.OidcBackend]).pipe(Layer.provide(OidcLive))
 *
 * // The provider's redirect after it failed: a TransportError in the fold (a 503 from OidcLogin),
 * // where error=access_denied would be a refusal (AuthenticationFailed, a 401).
 * const outage = AuthService.authenticateUnknown({
 *   oidcCallback: {
 *     url: Redacted.make("https://app.example.com/oidc/callback?error=temporarily_unavailable&state=s"),
 *     state: Redacted.make("s"),
 *     nonce: Redacted.make("n"),
 *     codeVerifier: Redacted.make("v")
 *   }
 * }).pipe(Effect.catchTag("TransportError", (error) => Effect.succeed(`the provider failed: ${String(error.cause)}`)))
 * ```
 *
 * @since 0.2.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import * as oauth from "oauth4webapi"
import * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import * as Credentials from "../Credentials.js"
import * as ExternalIdentities from "../ExternalIdentities.js"
import { mapped } from "../internal/externalUser.js"
import * as Transport from "../internal/oidc/transport.js"
import * as SharedRun from "../internal/sharedRun.js"
import * as Provisioning from "../Provisioning.js"
import type { User } from "../User.js"
import type * as UserStore from "../UserStore.js"

/**
 * The credentials of a callback: the URL the provider sent the browser back to (with `code` and
 * `state`, or `error`), and the values the login started with, from the browser's transaction.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as OidcBackend from "effect-auth/backends/OidcBackend"
 *
 * Schema.decodeUnknownSync(OidcBackend.Callback)({
 *   oidcCallback: { url: "https://app.example.com/oidc/callback?code=c&state=s", state: "s", nonce: "n", codeVerifier: "v" }
 * })
 * ```
 *
 * @since 0.2.0
 * @category schemas
 */
export const Callback = Schema.Struct({
  oidcCallback: Schema.Struct({
    /** The callback URL: it carries the code, so it is a secret as the others are. */
    url: Credentials.secret(8192),
    state: Credentials.secret(512),
    nonce: Credentials.secret(512),
    codeVerifier: Credentials.secret(512)
  }).annotations({ message: () => "Expected OIDC callback credentials" })
  // A ParseError quotes the input it was given by default: the code and the verifier here, as
  // UsernamePassword's message keeps the password out of its own.
}).annotations({ message: () => "Expected OIDC callback credentials" })

/**
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type * as OidcBackend from "effect-auth/backends/OidcBackend"
 *
 * const codeOf = (callback: OidcBackend.Callback) =>
 *   new URL(Redacted.value(callback.oidcCallback.url)).searchParams.get("code")
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Callback = typeof Callback.Type

/**
 * A plain OAuth 2.0 provider (GitHub style): its endpoints, and the userinfo endpoint whose
 * answer gives the claims, instead of discovery and an ID token. Each is an absolute `https:` URL
 * (`http:` with `allowInsecureRequests`); otherwise `make` fails with an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import type * as OidcBackend from "effect-auth/backends/OidcBackend"
 *
 * const github: OidcBackend.OAuth2Endpoints = {
 *   authorizationEndpoint: "https://github.com/login/oauth/authorize",
 *   tokenEndpoint: "https://github.com/login/oauth/access_token",
 *   userinfoEndpoint: "https://api.github.com/user"
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface OAuth2Endpoints {
  readonly authorizationEndpoint: string
  readonly tokenEndpoint: string
  readonly userinfoEndpoint: string
}

/**
 * The backend's options.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type * as OidcBackend from "effect-auth/backends/OidcBackend"
 *
 * const keycloak: OidcBackend.Options = {
 *   issuer: "https://sso.example.com/realms/staff",
 *   clientId: "shop",
 *   clientSecret: Redacted.make("from-keycloak"),
 *   redirectUri: "https://shop.example.com/oidc/callback",
 *   groupsClaim: "groups"
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Default: `"oidc"`. */
  readonly id?: string | undefined
  /** The provider's issuer identifier (discovery at `<issuer>/.well-known/openid-configuration`). */
  readonly issuer: string
  readonly clientId: string
  /** A confidential client's secret (sent with HTTP Basic); absent: a public client (PKCE only). */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** This app's callback URL, as registered at the provider. */
  readonly redirectUri: string
  /** Default: `["openid", "email", "profile"]` (`["read:user", "user:email"]`-style for OAuth 2.0). */
  readonly scopes?: ReadonlyArray<string> | undefined
  /** A plain OAuth 2.0 provider: no discovery, no ID token, claims from the userinfo endpoint. */
  readonly oauth2?: OAuth2Endpoints | undefined
  /**
   * The claim that names the local user on its first login. Default: `preferred_username`, else
   * `sub`. Only `sub` is stable and never reassigned (OIDC Core 5.7); a `preferred_username` or
   * `email` may be chosen or changed by the user at some providers. So a user, once logged in, is
   * bound to its `sub` (`ExternalIdentities`) and found by it on later logins, and another `sub`
   * presenting the same name is refused. `"email"` names a user only when the token says
   * `email_verified: true` (see {@link defaultExternalUser}).
   */
  readonly usernameClaim?: string | undefined
  /** A claim holding the user's groups (an array of names), mirrored into the local groups. */
  readonly groupsClaim?: string | undefined
  /**
   * The whole mapping from claims to the local user, instead of `usernameClaim`/`groupsClaim`.
   * The `subject` it leaves out is the default one (`sub`; in `oauth2` mode else `id`); a login
   * with none is refused (`NoMatch("unknown-user")`). A mapping that throws, or answers no string
   * `username`, fails the login with the `TransportError` of a user that does not fit the store
   * (as `Provisioning` gives one that does not decode), never a defect; an empty `username` is
   * `NoMatch("unknown-user")`.
   */
  readonly toExternalUser?: ((claims: Readonly<Record<string, unknown>>) => Provisioning.ExternalUser) | undefined
  /** Create users on their first login. Default: `true`. */
  readonly createUnknownUser?: boolean | undefined
  /**
   * Let a login link to an existing local user with a usable password (a local account such as
   * one made by `createsuperuser`) when the username claim names it. Default: `false`: the login
   * is `NoMatch("unknown-user")`, since the claim is whatever the provider says (a
   * `preferred_username` the user may choose). See `Provisioning.Options.linkLocalUsers`.
   */
  readonly linkLocalUsers?: boolean | undefined
  /**
   * Let a first login link to (and bind) an existing local user of its username that no subject
   * of this provider is bound to yet: users provisioned before bindings existed, or shared with
   * another backend by name. Default: `false` (`linkLocalUsers` when that is set): such a login is
   * `NoMatch("unknown-user")`; bind those users yourself (`ExternalIdentities`' `bind`). See
   * `Provisioning.Options.linkUnboundUsers`.
   *
   * @since 0.4.0
   */
  readonly linkUnboundUsers?: boolean | undefined
  /** How long one request to the provider may take. Default: 10 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** How long the discovery document is kept. Default: 1 hour. */
  readonly discoveryTtl?: Duration.DurationInput | undefined
  /** Allow an `http:` issuer (a local provider in development and tests). Default: `false`. */
  readonly allowInsecureRequests?: boolean | undefined
  readonly toUser?: ((stored: UserStore.StoredUser) => User) | undefined
  readonly policy?: AuthBackend.PolicyInput | undefined
}

/**
 * The start of a login: where to send the browser, and the values the callback must be given
 * back (keep them bound to the browser: `OidcLogin` uses a signed, HttpOnly cookie).
 *
 * @example
 * ```ts
 * import type * as OidcBackend from "effect-auth/backends/OidcBackend"
 *
 * const redirectTo = (start: OidcBackend.AuthorizationRequest) => start.url.href
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface AuthorizationRequest {
  readonly url: URL
  readonly state: Redacted.Redacted<string>
  readonly nonce: Redacted.Redacted<string>
  readonly codeVerifier: Redacted.Redacted<string>
}

/**
 * The backend, and what the login routes need of the provider.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as OidcBackend from "effect-auth/backends/OidcBackend"
 *
 * const start = Effect.flatMap(OidcBackend.OidcBackend, (oidc) => oidc.authorizationRequest)
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Service extends AuthBackend.AuthBackend<Callback> {
  /** A new `state`, `nonce` and PKCE verifier (S256), and the authorization URL. */
  readonly authorizationRequest: Effect.Effect<AuthorizationRequest, AuthError.TransportError>
  /** The provider's RP-initiated logout URL, when it advertises `end_session_endpoint`. */
  readonly endSessionUrl: (postLogoutRedirectUri?: string) => Effect.Effect<Option.Option<URL>, AuthError.TransportError>
  /**
   * The configured `redirectUri`: where the provider sends the browser back, so where the browser
   * sends a cookie scoped to the callback (`OidcLogin` takes its path from it).
   *
   * @since 0.4.0
   */
  readonly redirectUri: string
}

/**
 * The backend as a service, for `AuthService.layer([...])` and `OidcLogin`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as OidcBackend from "effect-auth/backends/OidcBackend"
 *
 * const id = Effect.map(OidcBackend.OidcBackend, (oidc) => oidc.id)
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export class OidcBackend extends Context.Tag("effect-auth/OidcBackend")<OidcBackend, Service>() {}

const stringClaim = (claims: Readonly<Record<string, unknown>>, name: string): string | undefined => {
  const value = claims[name]
  return typeof value === "string" && value.length > 0 ? value : typeof value === "number" ? String(value) : undefined
}

// OIDC Core 5.1: `email_verified` is a boolean; some providers (Cognito, older ones) send the
// strings "true"/"false". Absent means the provider does not say.
const emailVerified = (claims: Readonly<Record<string, unknown>>): boolean | undefined => {
  const value = claims.email_verified
  return value === true || value === "true" ? true : value === false || value === "false" ? false : undefined
}

// The provider's stable id of the user: `sub` (an ID token's is a string, oauth4webapi checks it);
// from a plain OAuth 2.0 provider's user endpoint, which follows no standard, `sub` or else `id`,
// each a non-empty string or a safe integer (GitHub's /user has no `sub` and a numeric `id`; some
// send a numeric `sub`).
const subjectClaim = (claims: Readonly<Record<string, unknown>>, oauth2: boolean): string | undefined => {
  const sub = claims.sub
  if (typeof sub === "string" && sub.length > 0) return sub
  if (!oauth2) return undefined
  return idLike(sub) ?? idLike(claims.id)
}
const idLike = (value: unknown): string | undefined =>
  typeof value === "string" && value.length > 0 ? value : Number.isSafeInteger(value) ? String(value) : undefined

/**
 * The default mapping of claims to the local user: the username from `usernameClaim`
 * (`preferred_username`, else `sub`), `email`, `given_name`, `family_name`, the groups from
 * `groupsClaim` when set, and the `subject` the user is bound by: `sub`, or with `oauth2` (claims
 * from a userinfo endpoint) `sub`, else `id`, whichever first is a non-empty string or a safe
 * integer. A login whose claims have no subject is refused (`NoMatch("unknown-user")`): it could
 * not be bound.
 *
 * An address the provider has not verified names nobody: with `usernameClaim: "email"` the
 * username is the `email` only when `email_verified` is `true` (else the username is empty, and
 * the login `NoMatch("unknown-user")`), since whoever registers someone else's address at the
 * provider would otherwise log in as that user. An `email` with `email_verified: false` is not
 * copied to the user either. A provider that never sends `email_verified` but does verify
 * addresses needs a `toExternalUser` of its own.
 *
 * @example
 * ```ts
 * import * as OidcBackend from "effect-auth/backends/OidcBackend"
 *
 * OidcBackend.defaultExternalUser({ usernameClaim: "email" })({ sub: "1", email: "ann@example.com", email_verified: true })
 * // { username: "ann@example.com", email: "ann@example.com", subject: "1" }
 * OidcBackend.defaultExternalUser({ usernameClaim: "email" })({ sub: "1", email: "ann@example.com" })
 * // { username: "", email: "ann@example.com", subject: "1" }: no verified address, nobody
 * OidcBackend.defaultExternalUser({ usernameClaim: "login", oauth2: {} })({ login: "octocat", id: 583231 })
 * // { username: "octocat", subject: "583231" }: GitHub's user endpoint
 * ```
 *
 * @since 0.2.0
 * @category mapping
 */
export const defaultExternalUser = (
  options: {
    readonly usernameClaim?: string | undefined
    readonly groupsClaim?: string | undefined
    /** Set (to anything): the claims come from a plain OAuth 2.0 provider's userinfo endpoint. */
    readonly oauth2?: unknown
  } = {}
) =>
(claims: Readonly<Record<string, unknown>>): Provisioning.ExternalUser => {
  const verified = emailVerified(claims)
  const username = options.usernameClaim === undefined
    ? stringClaim(claims, "preferred_username") ?? stringClaim(claims, "sub")
    : options.usernameClaim === "email" && verified !== true
    ? undefined
    : stringClaim(claims, options.usernameClaim)
  const groups = options.groupsClaim === undefined ? undefined : claims[options.groupsClaim]
  const email = verified === false ? undefined : stringClaim(claims, "email")
  const firstName = stringClaim(claims, "given_name")
  const lastName = stringClaim(claims, "family_name")
  const subject = subjectClaim(claims, options.oauth2 !== undefined)
  return {
    username: username ?? "",
    ...(email !== undefined && { email }),
    ...(firstName !== undefined && { firstName }),
    ...(lastName !== undefined && { lastName }),
    ...(Array.isArray(groups) && { groups: groups.filter((g): g is string => typeof g === "string") }),
    ...(subject !== undefined && { subject })
  }
}

// oauth4webapi checks a discovery document's issuer, not the endpoints this module builds URLs
// from: one that is not an absolute URL ("not a url", 42) made every login and logout a defect
// for as long as the document was cached. Such an endpoint is taken as absent: a login fails
// with a TransportError, a logout ends locally without the provider's end-session redirect.
const usableEndpoints = (as: oauth.AuthorizationServer): oauth.AuthorizationServer => {
  const { authorization_endpoint, end_session_endpoint, ...rest } = as
  return {
    ...rest,
    ...(isAbsoluteUrl(authorization_endpoint) && { authorization_endpoint }),
    ...(isAbsoluteUrl(end_session_endpoint) && { end_session_endpoint })
  }
}
const isAbsoluteUrl = (value: unknown): value is string => typeof value === "string" && URL.canParse(value)

// The userinfo answer oauth4webapi refused only for its `sub` (absent, or no non-empty string).
// Told by its shape, not its message: an invalid response whose cause is the parsed body, a JSON
// object (the one other such refusal, a body that is no object, is not one) without a `sub` that
// is a non-empty string.
const withoutSub = (error: unknown): Readonly<Record<string, unknown>> | undefined => {
  if (!(error instanceof oauth.OperationProcessingError) || error.code !== oauth.INVALID_RESPONSE) return undefined
  const body = (error.cause as { readonly body?: unknown } | undefined)?.body
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined
  const sub = (body as Record<string, unknown>).sub
  return typeof sub === "string" && sub.length > 0 ? undefined : body as Record<string, unknown>
}

// The left half of the access token's hash, with the hash of the ID token's signature algorithm
// (SHA-512 for EdDSA), base64url: what `at_hash` must be.
const atHashMatches = (idToken: string, accessToken: string, atHash: unknown): boolean => {
  try {
    const header = JSON.parse(Buffer.from(idToken.split(".")[0] ?? "", "base64url").toString("utf8")) as { alg?: unknown }
    const alg = typeof header.alg === "string" ? header.alg : ""
    const bits = alg === "EdDSA" || alg === "Ed25519" || alg.endsWith("512") ? 512 : alg.endsWith("384") ? 384 : 256
    const digest = createHash(`sha${bits}`).update(accessToken).digest()
    return typeof atHash === "string" && digest.subarray(0, digest.length / 2).toString("base64url") === atHash
  } catch {
    return false
  }
}

/**
 * Builds the backend on the `UserStore` (where users are provisioned), the `ExternalIdentities`
 * store (where each user is bound to its `sub`, in the namespace of the issuer:
 * `ExternalIdentities.providerOf(issuer)`, the issuer as a URL, `new URL(issuer).href`) and the
 * `HttpClient` in context. Discovery happens on first use and
 * is cached for `discoveryTtl`; a failed discovery is not cached, and concurrent callers share one
 * discovery request.
 *
 * Since 0.3.0 it requires `ExternalIdentities` (breaking): see the module documentation.
 *
 * @example
 * ```ts
 * import * as OidcBackend from "effect-auth/backends/OidcBackend"
 *
 * const backend = OidcBackend.make({
 *   issuer: "https://login.microsoftonline.com/<tenant>/v2.0",
 *   clientId: "<application id>",
 *   redirectUri: "https://app.example.com/oidc/callback"
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<
  Service,
  AuthError.AuthConfigError,
  UserStore.UserStore | ExternalIdentities.ExternalIdentities | HttpClient.HttpClient
> =>
  Effect.gen(function*() {
    const id = options.id ?? "oidc"
    const configError = (message: string) => new AuthError.AuthConfigError({ message: `OidcBackend: ${message}` })
    const issuer = yield* Effect.try({ try: () => new URL(options.issuer), catch: () => configError("issuer must be a URL") })
    yield* Effect.try({ try: () => new URL(options.redirectUri), catch: () => configError("redirectUri must be a URL") })
    if (options.clientId.length === 0) return yield* configError("clientId must not be empty")
    const insecure = options.allowInsecureRequests === true
    if (issuer.protocol !== "https:" && !insecure) return yield* configError("the issuer must be https (or allowInsecureRequests)")
    // The namespace of the subjects: the issuer as discovery reads it (so `https://idp` and
    // `https://idp/` are one provider), named as Provisioning names a JWT hook's provider
    // (`ExternalIdentities.providerOf`). It is a column of 255 characters.
    const provider = ExternalIdentities.providerOf(options.issuer)
    if (provider.length > 255) return yield* configError("the issuer must be at most 255 characters long")
    const identities = yield* ExternalIdentities.ExternalIdentities

    const timeout = options.timeout ?? Duration.seconds(10)
    const fetch = yield* Transport.customFetch(timeout)
    const http = { [oauth.customFetch]: fetch, [oauth.allowInsecureRequests]: insecure }
    const client: oauth.Client = { client_id: options.clientId }
    const clientAuth = options.clientSecret === undefined
      ? oauth.None()
      : oauth.ClientSecretBasic(Redacted.value(options.clientSecret))
    const plain = options.oauth2
    // The oauth2 endpoints are the app's, not a provider's document: one that is not an absolute
    // URL ("github.com/login/oauth/authorize") made every login a defect (a 500 from OidcLogin),
    // so it is refused here, as a discovered one is dropped (`usableEndpoints`), and held to the
    // issuer's rule on https.
    if (plain !== undefined) {
      if (typeof plain !== "object" || plain === null) return yield* configError("oauth2 must be an object of endpoints")
      for (const name of ["authorizationEndpoint", "tokenEndpoint", "userinfoEndpoint"] as const) {
        const value: unknown = plain[name]
        if (!isAbsoluteUrl(value)) return yield* configError(`oauth2.${name} must be an absolute URL`)
        if (new URL(value).protocol !== "https:" && !insecure) {
          return yield* configError(`oauth2.${name} must be https (or allowInsecureRequests)`)
        }
      }
    }
    const scopes = (options.scopes ?? (plain === undefined ? ["openid", "email", "profile"] : [])).join(" ")
    const mapClaims = options.toExternalUser ?? defaultExternalUser(options)
    // An app's own mapping that leaves the subject out is bound by the default one. The mapping
    // meets claims the provider chose (`c.upn as string` without a `upn`): a throw, or an answer
    // without a string username, is a user that does not fit the store, as Provisioning says of
    // one that does not decode, never a defect.
    const toExternal = (
      claims: Readonly<Record<string, unknown>>
    ): Effect.Effect<Provisioning.ExternalUser, AuthError.TransportError> =>
      mapped(id, () => {
        const external = mapClaims(claims)
        if (!Predicate.isObject(external) || external.subject !== undefined) return external
        const subject = subjectClaim(claims, plain !== undefined)
        return subject === undefined ? external : { ...external, subject }
      })
    const provisioner = yield* Provisioning.make({
      backendId: id,
      createUnknownUser: options.createUnknownUser,
      linkLocalUsers: options.linkLocalUsers,
      linkUnboundUsers: options.linkUnboundUsers,
      mirrorGroups: options.groupsClaim !== undefined,
      // the issuer as written: Provisioning names it through `providerOf` and still reads the
      // bindings a JWT hook stored under the name as written (before, the normalised name was
      // passed, and those bindings were not read: their users' logins were refused, and with
      // `linkUnboundUsers` another subject presenting the name was bound to them)
      identities: { store: identities, provider: options.issuer },
      toUser: options.toUser
    })

    const login = provisioner.hook((external: Provisioning.ExternalUser) => external)

    const transport = (cause: unknown) => new AuthError.TransportError({ backend: id, cause })
    const noMatch = AuthError.failures(id).noMatch
    const fromError = (error: unknown): AuthError.TransportError | AuthError.NoMatch => {
      const classified = Transport.classify(error)
      return classified._tag === "Transport" ? transport(classified.message) : AuthError.failures(id).noMatchError(classified.reason)
    }
    const protocol = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: fromError })

    const clockToleranceMillis = 30_000
    // Discovery, cached for discoveryTtl; a failure is not remembered. Concurrent callers on a
    // cold (or expired) cache share one request, so login traffic is not passed on to the
    // provider one for one.
    const ttl = Duration.toMillis(options.discoveryTtl ?? Duration.hours(1))
    let cached: { readonly as: oauth.AuthorizationServer; readonly until: number } | undefined
    const discovery = SharedRun.make(
      Effect.tryPromise({
        try: async () => usableEndpoints(await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, http))),
        catch: (error) => transport(`discovery: ${Transport.classify(error).message}`)
      }).pipe(Effect.zip(Clock.currentTimeMillis)),
      (exit) => {
        if (Exit.isSuccess(exit)) cached = { as: exit.value[0], until: exit.value[1] + ttl }
      }
    )
    const discover: Effect.Effect<oauth.AuthorizationServer, AuthError.TransportError> = plain !== undefined
      ? Effect.succeed({
        issuer: options.issuer,
        authorization_endpoint: plain.authorizationEndpoint,
        token_endpoint: plain.tokenEndpoint,
        userinfo_endpoint: plain.userinfoEndpoint
      })
      : Effect.flatMap(Clock.currentTimeMillis, (now) =>
        cached !== undefined && cached.until > now ? Effect.succeed(cached.as) : Effect.map(discovery.run, ([as]) => as))

    const authorizationRequest: Service["authorizationRequest"] = Effect.gen(function*() {
      const as = yield* discover
      if (as.authorization_endpoint === undefined) return yield* transport("the provider has no usable authorization_endpoint")
      const codeVerifier = oauth.generateRandomCodeVerifier()
      const challenge = yield* Effect.promise(() => oauth.calculatePKCECodeChallenge(codeVerifier))
      const state = oauth.generateRandomState()
      const nonce = oauth.generateRandomNonce()
      const url = new URL(as.authorization_endpoint)
      url.searchParams.set("client_id", options.clientId)
      url.searchParams.set("redirect_uri", options.redirectUri)
      url.searchParams.set("response_type", "code")
      if (scopes.length > 0) url.searchParams.set("scope", scopes)
      url.searchParams.set("state", state)
      if (plain === undefined) url.searchParams.set("nonce", nonce)
      url.searchParams.set("code_challenge", challenge)
      url.searchParams.set("code_challenge_method", "S256")
      return { url, state: Redacted.make(state), nonce: Redacted.make(nonce), codeVerifier: Redacted.make(codeVerifier) }
    })

    const claimsOf = (as: oauth.AuthorizationServer, { oidcCallback: cb }: Callback) =>
      Effect.gen(function*() {
        const current = yield* Effect.try({
          try: () => new URL(Redacted.value(cb.url)),
          catch: () => AuthError.failures(id).noMatchError("invalid-credentials")
        })
        // state (and error=access_denied, and the issuer parameter) first: nothing is sent to the
        // provider for a callback that is not the one this browser started.
        const params = yield* Effect.try({
          try: () => oauth.validateAuthResponse(as, client, current, Redacted.value(cb.state)),
          catch: fromError
        })
        const response = yield* protocol(() =>
          oauth.authorizationCodeGrantRequest(
            as,
            client,
            clientAuth,
            params,
            options.redirectUri,
            Redacted.value(cb.codeVerifier),
            http
          )
        )
        if (plain !== undefined) {
          const tokens = yield* protocol(() => oauth.processAuthorizationCodeResponse(as, client, response, { requireIdToken: false }))
          const info = yield* protocol(async () => {
            const answer = await oauth.userInfoRequest(as, client, tokens.access_token, http)
            try {
              return await oauth.processUserInfoResponse(as, client, oauth.skipSubjectCheck, answer)
            } catch (error) {
              // A plain OAuth 2.0 provider's user endpoint need not send OIDC's `sub` (GitHub's
              // /user has a numeric `id`): oauth4webapi's last check, after the status, the
              // challenges and the JSON object, is waived for it, and its answer taken.
              const body = withoutSub(error)
              if (body === undefined) throw error
              return body
            }
          })
          return info as Readonly<Record<string, unknown>>
        }
        const tokens = yield* protocol(() =>
          oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: Redacted.value(cb.nonce), requireIdToken: true })
        )
        // The signature too, against the provider's keys. oauth4webapi keeps the key set per
        // provider metadata object and refetches it for an unknown kid only after 60 s; a token
        // from the token endpoint itself signed with a key we have not seen means the provider
        // rotated, so it is checked once more against a fresh key set (a new metadata object).
        yield* Effect.tryPromise({
          try: () => oauth.validateApplicationLevelSignature(as, response, http),
          catch: (error) => error
        }).pipe(
          Effect.catchIf(
            (error) => error instanceof oauth.OperationProcessingError && error.code === oauth.KEY_SELECTION,
            () => {
              const fresh = { ...as }
              if (cached !== undefined && cached.as === as) cached = { ...cached, as: fresh }
              return Effect.tryPromise({ try: () => oauth.validateApplicationLevelSignature(fresh, response, http), catch: (e) => e })
            }
          ),
          Effect.mapError(fromError)
        )
        const claims = oauth.getValidatedIdTokenClaims(tokens)
        if (claims === undefined) return yield* noMatch("invalid-credentials")
        // OIDC Core 3.1.3.7: an `azp` present must be this client (oauth4webapi checks it only
        // beside several audiences), and a token issued in the future (`iat` beyond the 30 s
        // oauth4webapi allows `exp` and `nbf`) is refused, as JwtBackend does, on Effect's Clock
        // as the rest of the library's time (a TestClock drives it; JwtBackend's checks too).
        if (claims.azp !== undefined && claims.azp !== options.clientId) return yield* noMatch("invalid-credentials")
        const now = yield* Clock.currentTimeMillis
        if (claims.iat * 1000 > now + clockToleranceMillis) return yield* noMatch("invalid-credentials")
        // at_hash where present (OIDC Core 3.1.3.8): oauth4webapi leaves it to the client in the
        // code flow. A token whose access token is not the one it names is refused.
        if (claims.at_hash !== undefined && !atHashMatches(tokens.id_token!, tokens.access_token, claims.at_hash)) {
          return yield* noMatch("invalid-credentials")
        }
        return claims as Readonly<Record<string, unknown>>
      })

    const authenticate = (callback: Callback): Effect.Effect<User, AuthError.BackendError> =>
      Effect.gen(function*() {
        const as = yield* discover
        const claims = yield* claimsOf(as, callback)
        const external = yield* toExternal(claims)
        // a verified token without the username claim names nobody here: a refusal, not an outage
        if (external.username.length === 0) return yield* noMatch("unknown-user")
        // Nor does an answer without a subject (a plain OAuth 2.0 user endpoint with neither `sub`
        // nor `id`; an ID token always has one): unbound, it would be linked by name on every
        // login, to whoever holds the name at the provider then.
        if (external.subject === undefined) return yield* noMatch("unknown-user")
        // through the hook: the user answered is marked as the store's (its permissions)
        return yield* login(external)
      })

    const endSessionUrl: Service["endSessionUrl"] = (postLogoutRedirectUri) =>
      Effect.map(plain === undefined ? discover : Effect.succeed(undefined), (as) => {
        if (as?.end_session_endpoint === undefined) return Option.none()
        const url = new URL(as.end_session_endpoint)
        url.searchParams.set("client_id", options.clientId)
        if (postLogoutRedirectUri !== undefined) url.searchParams.set("post_logout_redirect_uri", postLogoutRedirectUri)
        return Option.some(url)
      })

    const backend = AuthBackend.make({
      id,
      credentials: Callback,
      authenticate,
      getUser: provisioner.loadUser,
      ...(options.policy === undefined ? {} : { policy: options.policy })
    })
    return { ...backend, authorizationRequest, endSessionUrl, redirectUri: options.redirectUri }
  })

/**
 * The backend on the `UserStore`, the `ExternalIdentities` store and the `HttpClient` you
 * provide. Since 0.3.0 it requires `ExternalIdentities` (breaking): see the module documentation.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import { SqlExternalIdentities, SqlUserStore } from "effect-auth"
 * import * as OidcBackend from "effect-auth/backends/OidcBackend"
 *
 * const Database = SqlUserStore.layerSqlite({ filename: "./app.db" })
 * const OidcLive = OidcBackend.layer({
 *   issuer: "https://sso.example.com/realms/staff",
 *   clientId: "shop",
 *   redirectUri: "https://shop.example.com/oidc/callback"
 * }).pipe(
 *   Layer.provide(SqlExternalIdentities.layer()),
 *   Layer.provide(Layer.merge(Database, FetchHttpClient.layer))
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  OidcBackend,
  AuthError.AuthConfigError,
  UserStore.UserStore | ExternalIdentities.ExternalIdentities | HttpClient.HttpClient
> =>
  Layer.effect(OidcBackend, make(options))
