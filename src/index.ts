/**
 * effect-auth: Django's pluggable authentication backends, rebuilt for Effect. Every module is a
 * namespace here and a sub-path of its own, named after the module (`effect-auth/AuthService`,
 * `effect-auth/ModelBackend`). The modules whose drivers are optional peer dependencies are
 * imported from their sub-paths only, so an app installs just the drivers it uses:
 * `effect-auth/LdapBackend` (ldapts), `effect-auth/JwtBackend` (jose) and
 * `effect-auth/RedisSessionStore` (ioredis).
 *
 * @example
 * ```ts
 * import { AuthBackend } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as AuthBackend from "./AuthBackend.js"

/**
 * @example
 * ```ts
 * import { AuthError } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as AuthError from "./AuthError.js"

/**
 * @example
 * ```ts
 * import { AuthEvents } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as AuthEvents from "./AuthEvents.js"

/**
 * @example
 * ```ts
 * import { ApiTokens } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as ApiTokens from "./ApiTokens.js"

/**
 * @example
 * ```ts
 * import { ApiTokenBackend } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as ApiTokenBackend from "./backends/ApiTokenBackend.js"

/**
 * @example
 * ```ts
 * import type { AuthRequest } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as AuthRequest from "./AuthRequest.js"

/**
 * @example
 * ```ts
 * import { AuthService } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as AuthService from "./AuthService.js"

/**
 * The whole stack in one layer: events, the fold, sessions and HTTP auth for HttpApi and routers.
 *
 * @example
 * ```ts
 * import { AuthStack } from "effect-auth"
 * ```
 *
 * @since 0.2.0
 * @category exports
 */
export * as AuthStack from "./AuthStack.js"

/**
 * Control per backend: PAM's required / requisite / sufficient / optional over the typed outcomes.
 *
 * @example
 * ```ts
 * import { Control } from "effect-auth"
 * ```
 *
 * @since 0.3.0
 * @category exports
 */
export * as Control from "./Control.js"

/**
 * @example
 * ```ts
 * import { Authentication } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as Authentication from "./http/Authentication.js"

/**
 * @example
 * ```ts
 * import { Credentials } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as Credentials from "./Credentials.js"

/**
 * @example
 * ```ts
 * import { Csrf } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as Csrf from "./http/Csrf.js"

/**
 * @example
 * ```ts
 * import { CurrentUser } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as CurrentUser from "./http/CurrentUser.js"

/**
 * Bindings of an external identity (a provider's stable `sub`) to a local user, so a username
 * chosen or reassigned at the provider cannot log into someone else's account.
 *
 * @example
 * ```ts
 * import { ExternalIdentities } from "effect-auth"
 * ```
 *
 * @since 0.3.0
 * @category exports
 */
export * as ExternalIdentities from "./ExternalIdentities.js"

/**
 * @example
 * ```ts
 * import { HttpBackend } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as HttpBackend from "./backends/HttpBackend.js"

/**
 * @example
 * ```ts
 * import { HttpAuth } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as HttpAuth from "./http/HttpAuth.js"

/**
 * @example
 * ```ts
 * import { DjangoSessionStore } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as DjangoSessionStore from "./DjangoSessionStore.js"

/**
 * @example
 * ```ts
 * import { Lockout } from "effect-auth"
 * ```
 *
 * @since 0.2.0
 * @category exports
 */
export * as Lockout from "./Lockout.js"

/**
 * @example
 * ```ts
 * import { MemorySessionStore } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as MemorySessionStore from "./MemorySessionStore.js"

/**
 * @example
 * ```ts
 * import { MemoryUserStore } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as MemoryUserStore from "./MemoryUserStore.js"

/**
 * @example
 * ```ts
 * import { ModelBackend } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as ModelBackend from "./backends/ModelBackend.js"

/**
 * @example
 * ```ts
 * import { ObjectPermissionBackend } from "effect-auth"
 * ```
 *
 * @since 0.2.0
 * @category exports
 */
export * as ObjectPermissionBackend from "./backends/ObjectPermissionBackend.js"

/**
 * @example
 * ```ts
 * import { ObjectPermissions } from "effect-auth"
 * ```
 *
 * @since 0.2.0
 * @category exports
 */
export * as ObjectPermissions from "./ObjectPermissions.js"

/**
 * @example
 * ```ts
 * import { PasswordHasher } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as PasswordHasher from "./PasswordHasher.js"

/**
 * @example
 * ```ts
 * import { PasswordResetToken } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as PasswordResetToken from "./PasswordResetToken.js"

/**
 * @example
 * ```ts
 * import { PasswordValidation } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as PasswordValidation from "./PasswordValidation.js"

/**
 * @example
 * ```ts
 * import { Permissions } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as Permissions from "./Permissions.js"

/**
 * @example
 * ```ts
 * import { Provisioning } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as Provisioning from "./Provisioning.js"

/**
 * @example
 * ```ts
 * import { RemoteUserBackend } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as RemoteUserBackend from "./backends/RemoteUserBackend.js"

/**
 * Where a request's credentials come from (Bearer, Basic, API key, remote user, session cookie,
 * your own), folded in order by `HttpAuth`.
 *
 * @example
 * ```ts
 * import { RequestSource } from "effect-auth"
 *
 * const sources = [RequestSource.bearer, RequestSource.sessionCookie({ secure: true })]
 * ```
 *
 * @since 0.2.0
 * @category exports
 */
export * as RequestSource from "./http/RequestSource.js"

/**
 * Whether a URL a request names (`next`) may be redirected to: Django's
 * `url_has_allowed_host_and_scheme`, against open redirects.
 *
 * @example
 * ```ts
 * import { SafeRedirect } from "effect-auth"
 *
 * SafeRedirect.isAllowed("/reports", { allowedHosts: ["app.example.com"] }) // true
 * ```
 *
 * @since 0.3.0
 * @category exports
 */
export * as SafeRedirect from "./http/SafeRedirect.js"

/**
 * A `node:http` server for `NodeHttpServer.layer` whose request fibers end even when a client
 * hangs up while its answer is written (`@effect/platform-node` 0.108 would leave them waiting).
 *
 * @example
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { NodeServer } from "effect-auth"
 *
 * const ServerLive = NodeHttpServer.layer(NodeServer.createServer, { port: 3000 })
 * ```
 *
 * @since 0.4.0
 * @category exports
 */
export * as NodeServer from "./http/NodeServer.js"

/**
 * @example
 * ```ts
 * import { Session } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as Session from "./Session.js"

/**
 * @example
 * ```ts
 * import { SessionStore } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as SessionStore from "./SessionStore.js"

/**
 * @example
 * ```ts
 * import { SqlExternalIdentities } from "effect-auth"
 * ```
 *
 * @since 0.3.0
 * @category exports
 */
export * as SqlExternalIdentities from "./SqlExternalIdentities.js"

/**
 * @example
 * ```ts
 * import { SqlLockoutStore } from "effect-auth"
 * ```
 *
 * @since 0.2.0
 * @category exports
 */
export * as SqlLockoutStore from "./SqlLockoutStore.js"

/**
 * @example
 * ```ts
 * import { SqlObjectPermissions } from "effect-auth"
 * ```
 *
 * @since 0.2.0
 * @category exports
 */
export * as SqlObjectPermissions from "./SqlObjectPermissions.js"

/**
 * @example
 * ```ts
 * import { SqlSessionStore } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as SqlSessionStore from "./SqlSessionStore.js"

/**
 * @example
 * ```ts
 * import { SqlTotpStore } from "effect-auth"
 * ```
 *
 * @since 0.2.0
 * @category exports
 */
export * as SqlTotpStore from "./SqlTotpStore.js"

/**
 * @example
 * ```ts
 * import { SqlUserStore } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as SqlUserStore from "./SqlUserStore.js"

/**
 * @example
 * ```ts
 * import { TestAuth } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as TestAuth from "./testing/TestAuth.js"

/**
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as TestBackend from "./testing/TestBackend.js"

/**
 * @example
 * ```ts
 * import { Totp } from "effect-auth"
 * ```
 *
 * @since 0.2.0
 * @category exports
 */
export * as Totp from "./Totp.js"

/**
 * @example
 * ```ts
 * import { TotpBackend } from "effect-auth"
 * ```
 *
 * @since 0.2.0
 * @category exports
 */
export * as TotpBackend from "./backends/TotpBackend.js"

/**
 * @example
 * ```ts
 * import { TotpStore } from "effect-auth"
 * ```
 *
 * @since 0.2.0
 * @category exports
 */
export * as TotpStore from "./TotpStore.js"

/**
 * @example
 * ```ts
 * import { User } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as User from "./User.js"

/**
 * @example
 * ```ts
 * import { UserManager } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as UserManager from "./UserManager.js"

/**
 * @example
 * ```ts
 * import { UserStore } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as UserStore from "./UserStore.js"
