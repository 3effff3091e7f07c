/**
 * The whole stack in one layer: `AuthEvents`, the `AuthService` fold over your backends, sessions
 * (when you give a session store), the HTTP auth service and the `HttpApi` middlewares
 * (`Authentication`, `OptionalAuthentication`), wired in the right order. What it still needs is
 * in its type: your backends' services and, with sessions, a `SessionStore`. Forgetting one is a
 * compile error where the app is launched, not a 500 at the first login.
 *
 * The same layer serves an `HttpApi` (its middlewares are in it) and a plain router
 * (`HttpAuth.middleware`, `HttpAuth.requireUser`). The fine-grained layers (`AuthService.layer`,
 * `Session.layer`, `HttpAuth.layer`, `Authentication.layer`) stay for apps that need another shape.
 *
 * @example
 * ```ts
 * import { Layer, Redacted } from "effect"
 * import { AuthStack, MemorySessionStore, TestBackend } from "effect-auth"
 *
 * const alice = TestBackend.user("alice")
 *
 * const AuthLive = AuthStack.layer({
 *   backends: [TestBackend.passwords("local", [{ user: alice, password: "wonderland" }])],
 *   sessions: { secret: Redacted.make("a long random secret, from the environment") }
 * }).pipe(Layer.provide(MemorySessionStore.layer))
 * ```
 *
 * @since 0.2.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Layer from "effect/Layer"
import type * as AuthError from "./AuthError.js"
import * as AuthEvents from "./AuthEvents.js"
import * as AuthService from "./AuthService.js"
import * as Lockout from "./Lockout.js"
import * as AuthenticationModule from "./http/Authentication.js"
import * as HttpAuth from "./http/HttpAuth.js"
import * as Session from "./Session.js"
import type * as SessionStore from "./SessionStore.js"

/**
 * The options of a stack without sessions (bearer tokens, API keys, Basic, remote user).
 *
 * @example
 * ```ts
 * import { AuthStack, TestBackend } from "effect-auth"
 *
 * const options: AuthStack.Options<[TestBackend.TestBackend]> = {
 *   backends: [TestBackend.noMatch("tokens")],
 *   http: { realm: "api", bearer: true }
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options<Backends extends ReadonlyArray<AuthService.BackendInput>> {
  /** The backends, in order (values, or effects such as their Tags): see `AuthService.layer`. */
  readonly backends: Backends
  readonly tracing?: AuthService.Tracing | undefined
  /** The HTTP side: realm, request sources, CSRF. Cookies are set by `sessions` and `cookie`. */
  readonly http?: Omit<HttpAuth.Options, "session"> | undefined
  /**
   * Throttling: a `Lockout` layer (`Lockout.layerMemory(...)`, `Lockout.layerRedis(...)`) that
   * guards every login of the stack's `AuthService` (see docs/throttling.md). None by default.
   */
  readonly lockout?: Layer.Layer<Lockout.Lockout, AuthError.AuthConfigError> | undefined
}

/**
 * The options of a stack with sessions: `sessions` is `Session.Options` (the secret and the
 * lifetimes), or a `Config` of them such as `Session.config` (reads `SECRET_KEY`,
 * `SECRET_KEY_FALLBACKS`, `SESSION_MAX_AGE`, `SESSION_IDLE_TIMEOUT`).
 *
 * @example
 * ```ts
 * import { AuthStack, Session, TestBackend } from "effect-auth"
 *
 * const options: AuthStack.SessionOptions<[TestBackend.TestBackend]> = {
 *   backends: [TestBackend.noMatch("local")],
 *   sessions: Session.config,
 *   cookie: { secure: true, sameSite: "strict" }
 * }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface SessionOptions<Backends extends ReadonlyArray<AuthService.BackendInput>> extends Options<Backends> {
  readonly sessions: Session.Options | Config.Config<Session.ConfigOptions>
  /** The session cookie: name, `Secure`, `SameSite`, path, domain. Defaults: see `HttpAuth`. */
  readonly cookie?: HttpAuth.SessionCookieOptions | undefined
}

/**
 * What the stack provides.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, type AuthStack } from "effect-auth"
 *
 * const needsTheStack: Effect.Effect<ReadonlyArray<string>, never, AuthStack.Services> = Effect.map(
 *   AuthService.AuthService,
 *   (auth) => auth.backendIds
 * )
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Services =
  | AuthEvents.AuthEvents
  | AuthService.AuthService
  | HttpAuth.HttpAuth
  | AuthenticationModule.Authentication
  | AuthenticationModule.OptionalAuthentication

/**
 * The `HttpApi` middleware the stack implements: put it on groups or endpoints that need a user
 * (`Authentication.Authentication`, re-exported here).
 *
 * @example
 * ```ts
 * import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
 * import { Schema } from "effect"
 * import { AuthStack } from "effect-auth"
 *
 * class Account extends HttpApiGroup.make("account")
 *   .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String))
 *   .middleware(AuthStack.Authentication)
 * {}
 * ```
 *
 * @since 0.2.0
 * @category middleware
 */
export const Authentication = AuthenticationModule.Authentication

/**
 * The `HttpApi` middleware for endpoints open to anonymous requests too (login, logout):
 * `Authentication.OptionalAuthentication`, re-exported here.
 *
 * @example
 * ```ts
 * import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
 * import { AuthStack } from "effect-auth"
 *
 * class Session extends HttpApiGroup.make("session")
 *   .add(HttpApiEndpoint.post("logout", "/logout"))
 *   .middleware(AuthStack.OptionalAuthentication)
 * {}
 * ```
 *
 * @since 0.2.0
 * @category middleware
 */
export const OptionalAuthentication = AuthenticationModule.OptionalAuthentication

const sessionLayer = (
  sessions: Session.Options | Config.Config<Session.ConfigOptions>
): Layer.Layer<
  Session.Session,
  AuthError.AuthConfigError | ConfigError.ConfigError,
  SessionStore.SessionStore | AuthService.AuthService | AuthEvents.AuthEvents
> => Config.isConfig(sessions) ? Session.layerConfig(sessions) : Session.layer(sessions)

/**
 * The stack as one layer. With `sessions` it provides `Session` too and needs a `SessionStore`
 * (`MemorySessionStore.layer`, `SqlSessionStore.layer()`, `RedisSessionStore.layer(...)`);
 * without, it serves credentials sent with each request only.
 *
 * @example
 * ```ts
 * import { HttpApiBuilder } from "@effect/platform"
 * import { Layer, Redacted } from "effect"
 * import { AuthStack, SqlSessionStore } from "effect-auth"
 * import * as ModelBackend from "effect-auth/backends/ModelBackend"
 *
 * // users and sessions in the database the app already has (its SqlClient)
 * const AuthLive = AuthStack.layer({
 *   backends: [ModelBackend.ModelBackend],
 *   sessions: { secret: Redacted.make("from SECRET_KEY") },
 *   cookie: { secure: true }
 * }).pipe(
 *   Layer.provide(ModelBackend.layer()),
 *   Layer.provide(SqlSessionStore.layer())
 * )
 * // HttpApiBuilder.api(Api).pipe(Layer.provide(AuthLive), ...)
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: {
  <const Backends extends ReadonlyArray<AuthService.BackendInput>>(
    options: SessionOptions<Backends>
  ): Layer.Layer<
    Services | Session.Session,
    AuthError.AuthConfigError | ConfigError.ConfigError,
    AuthService.BackendsContext<Backends> | SessionStore.SessionStore
  >
  <const Backends extends ReadonlyArray<AuthService.BackendInput>>(
    options: Options<Backends>
  ): Layer.Layer<Services, AuthError.AuthConfigError, AuthService.BackendsContext<Backends>>
} = (options: SessionOptions<ReadonlyArray<AuthService.BackendInput>> | Options<ReadonlyArray<AuthService.BackendInput>>) => {
  const fold = AuthService.layer(options.backends, { tracing: options.tracing })
  const guarded = options.lockout === undefined
    ? fold
    : Lockout.layerAuthService(fold).pipe(Layer.provide(options.lockout))
  // AuthEvents above the lockout as well: it publishes LockedOut/Unlocked there.
  const core = guarded.pipe(Layer.provideMerge(AuthEvents.layer))
  const withSessions = "sessions" in options
    ? sessionLayer(options.sessions).pipe(Layer.provideMerge(core))
    : core
  const http = HttpAuth.layer({
    ...options.http,
    session: "sessions" in options ? options.cookie ?? true : false
  }).pipe(Layer.provideMerge(withSessions))
  return AuthenticationModule.layer.pipe(Layer.provideMerge(http)) as Layer.Layer<any, any, any>
}
