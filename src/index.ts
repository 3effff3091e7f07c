/**
 * effect-auth: Django's pluggable authentication backends, rebuilt for Effect.
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
 * import { UserStore } from "effect-auth"
 * ```
 *
 * @since 0.1.0
 * @category exports
 */
export * as UserStore from "./UserStore.js"

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
