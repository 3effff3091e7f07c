/**
 * effect-auth: Django's pluggable authentication backends, rebuilt for Effect.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as AuthBackend from "./AuthBackend.js"

/**
 * @since 0.1.0
 */
export * as AuthError from "./AuthError.js"

/**
 * @since 0.1.0
 */
export * as AuthEvents from "./AuthEvents.js"

/**
 * @since 0.1.0
 */
export * as AuthRequest from "./AuthRequest.js"

/**
 * @since 0.1.0
 */
export * as AuthService from "./AuthService.js"

/**
 * @since 0.1.0
 */
export * as Credentials from "./Credentials.js"

/**
 * @since 0.1.0
 */
export * as MemoryUserStore from "./MemoryUserStore.js"

/**
 * @since 0.1.0
 */
export * as ModelBackend from "./backends/ModelBackend.js"

/**
 * @since 0.1.0
 */
export * as PasswordHasher from "./PasswordHasher.js"

/**
 * @since 0.1.0
 */
export * as Permissions from "./Permissions.js"

/**
 * @since 0.1.0
 */
export * as Provisioning from "./Provisioning.js"

/**
 * @since 0.1.0
 */
export * as SqlUserStore from "./SqlUserStore.js"

/**
 * @since 0.1.0
 */
export * as User from "./User.js"

/**
 * @since 0.1.0
 */
export * as UserStore from "./UserStore.js"

/**
 * @since 0.1.0
 */
export * as TestAuth from "./testing/TestAuth.js"

/**
 * @since 0.1.0
 */
export * as TestBackend from "./testing/TestBackend.js"
