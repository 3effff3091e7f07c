/**
 * The authenticated user of an HTTP request, as the `http/Authentication` middleware (for
 * `HttpApi`) or `HttpAuth.requireUser` (for plain routers) provide it, and the permission guards
 * for handlers.
 *
 * Permission answers are cached for the request (`Permissions.withRequestCache`): a handler that
 * asks the same question twice asks each backend once.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CurrentUser } from "effect-auth"
 *
 * // A handler of an endpoint behind the Authentication middleware:
 * const publish = Effect.gen(function*() {
 *   yield* CurrentUser.requirePermission("blog.publish_post") // 403 otherwise
 *   const { user } = yield* CurrentUser.CurrentUser
 *   return `published by ${user.username}`
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as AuthError from "../AuthError.js"
import type * as AuthService from "../AuthService.js"
import * as Permissions from "../Permissions.js"
import type { User } from "../User.js"

/**
 * How the request was authenticated.
 *
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CurrentUser } from "effect-auth"
 *
 * const viaCookie = Effect.map(CurrentUser.CurrentUser, ({ method }): boolean => method === ("session" satisfies CurrentUser.AuthMethod))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type AuthMethod = "session" | "bearer" | "basic" | "api-key" | "remote-user"

/**
 * The request's user and its permission questions, answered by `AuthService` with the request's
 * cache.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CurrentUser } from "effect-auth"
 *
 * const describe = Effect.map(CurrentUser.CurrentUser, (info: CurrentUser.Info) =>
 *   `${info.user.username} (${info.method} via ${info.backend})`)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Info {
  readonly user: User
  /** Id of the backend that authenticated the user. */
  readonly backend: string
  readonly method: AuthMethod
  /**
   * `true` when the login was degraded: it succeeded after a backend that could not answer was
   * passed over (`AuthService.Authenticated.degraded`, kept in the session). An app may ask for
   * a second factor, or limit what such a login may do (docs/control.md).
   */
  readonly degraded: boolean
  /**
   * The backend that verified a second factor in the request's session (`HttpAuth.stepUp`), or
   * `undefined`: the user passed one factor only (or did not come with a session). This is what
   * the session recorded: routes that need both factors guard with {@link requireSecondFactor},
   * which also checks that the device it was verified against is still the user's.
   */
  readonly secondFactor: string | undefined
  /**
   * Whether the second factor still holds (`Session.secondFactorHolds`): `false` without one, or
   * when the device it was verified against has been removed or replaced since; a
   * `TransportError` when the backend's store cannot answer. Asked when run, once per request
   * (later runs answer what the first found): a request that never asks reads no device.
   *
   * @since 0.4.0
   */
  readonly secondFactorHolds: Effect.Effect<boolean, AuthError.TransportError>
  readonly hasPerm: (perm: string, obj?: unknown) => Effect.Effect<boolean, AuthError.TransportError>
  readonly hasPerms: (perms: Iterable<string>, obj?: unknown) => Effect.Effect<boolean, AuthError.TransportError>
  readonly hasModulePerms: (appLabel: string) => Effect.Effect<boolean, AuthError.TransportError>
  readonly getAllPermissions: (
    obj?: unknown
  ) => Effect.Effect<ReadonlySet<string>, AuthError.PermissionDenied | AuthError.TransportError>
}

/**
 * The authenticated user of the request. Endpoints behind `Authentication` (or routes behind
 * `HttpAuth.requireUser`) always have one; anonymous requests never reach them (401).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CurrentUser } from "effect-auth"
 *
 * const me = Effect.map(CurrentUser.CurrentUser, ({ user }) => ({ id: user.id, username: user.username }))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class CurrentUser extends Context.Tag("effect-auth/http/CurrentUser")<CurrentUser, Info>() {}

/**
 * The user of the request if it has one: what `OptionalAuthentication` (or `HttpAuth.middleware`)
 * provides, for endpoints that serve anonymous requests too.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { CurrentUser } from "effect-auth"
 *
 * const greeting = Effect.map(CurrentUser.OptionalUser, Option.match({
 *   onNone: () => "hello, stranger",
 *   onSome: ({ user }) => `hello, ${user.username}`
 * }))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class OptionalUser extends Context.Tag("effect-auth/http/OptionalUser")<OptionalUser, Option.Option<Info>>() {}

/**
 * Builds the request's {@link Info}; the permission methods answer through `auth` with `cache`
 * (the request's; made on the first permission question when not given). `secondFactorHolds` is
 * what {@link Info.secondFactorHolds} runs (the middleware gives `Session.secondFactorHolds` of the
 * request's session); without it, a `secondFactor` given holds as it is. The middleware does
 * this; tests of handlers can too.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { AuthService, CurrentUser, TestBackend } from "effect-auth"
 *
 * const alice = TestBackend.user("alice")
 * const AsAlice = Layer.effect(
 *   CurrentUser.CurrentUser,
 *   Effect.map(AuthService.AuthService, (auth) => CurrentUser.make({ user: alice, backend: "test", method: "session" }, auth))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  who: {
    readonly user: User
    readonly backend: string
    readonly method: AuthMethod
    readonly degraded?: boolean | undefined
    readonly secondFactor?: string | undefined
    readonly secondFactorHolds?: Effect.Effect<boolean, AuthError.TransportError> | undefined
  },
  auth: AuthService.Service,
  cache?: Permissions.RequestCacheStore | undefined
): Info =>
  new RequestInfo(
    who.user,
    who.backend,
    who.method,
    who.degraded === true,
    who.secondFactor,
    auth,
    cache,
    who.secondFactor === undefined ? undefined : who.secondFactorHolds
  )

const holds = Effect.succeed(true)
const holdsNot = Effect.succeed(false)

// Built once per authenticated request, and most requests ask no permission question: the
// permission methods are prototype getters that make their function when a handler takes it
// (destructuring works: it reads the getter), so a request that asks none allocates nothing but
// this object; the cache is made on the first question.
class RequestInfo implements Info {
  // Private fields: not enumerable, so the object prints and serialises as its own fields only.
  readonly #auth: AuthService.Service
  #cache: Permissions.RequestCacheStore | undefined
  // The check of the second factor, run at most once per request (its answer kept in #held).
  readonly #secondFactorCheck: Effect.Effect<boolean, AuthError.TransportError> | undefined
  #held: boolean | undefined
  constructor(
    readonly user: User,
    readonly backend: string,
    readonly method: AuthMethod,
    readonly degraded: boolean,
    readonly secondFactor: string | undefined,
    auth: AuthService.Service,
    cache: Permissions.RequestCacheStore | undefined,
    secondFactorCheck: Effect.Effect<boolean, AuthError.TransportError> | undefined
  ) {
    this.#auth = auth
    this.#cache = cache
    this.#secondFactorCheck = secondFactorCheck
  }
  get secondFactorHolds(): Info["secondFactorHolds"] {
    if (this.secondFactor === undefined) return holdsNot
    const check = this.#secondFactorCheck
    if (check === undefined) return holds
    if (this.#held !== undefined) return this.#held ? holds : holdsNot
    return Effect.tap(check, (held) => {
      this.#held = held
    })
  }
  private store(): Permissions.RequestCacheStore {
    return (this.#cache ??= { answers: new Map() })
  }
  get hasPerm(): Info["hasPerm"] {
    return (perm, obj) => cached(this.#auth.hasPerm(this.user, perm, obj), () => this.store())
  }
  get hasPerms(): Info["hasPerms"] {
    return (perms, obj) => cached(this.#auth.hasPerms(this.user, perms, obj), () => this.store())
  }
  get hasModulePerms(): Info["hasModulePerms"] {
    return (appLabel) => cached(this.#auth.hasModulePerms(this.user, appLabel), () => this.store())
  }
  get getAllPermissions(): Info["getAllPermissions"] {
    return (obj) => cached(this.#auth.getAllPermissions(this.user, obj), () => this.store())
  }
}

// The plain-router middlewares run the handler with this very cache as `RequestCache` already:
// then there is nothing to provide, and a context change is the dearest step of a permission check.
const cached = <A, E>(effect: Effect.Effect<A, E>, store: () => Permissions.RequestCacheStore): Effect.Effect<A, E> =>
  Effect.contextWithEffect((context: Context.Context<never>) => {
    const cache = store()
    return context.unsafeMap.get(Permissions.RequestCache.key) === cache
      ? effect
      : Effect.provideService(effect, Permissions.RequestCache, cache)
  })

const forbidden = Effect.fail(new HttpApiError.Forbidden())
const unavailable = () => new HttpApiError.ServiceUnavailable()

const guard = (
  ask: (info: Info) => Effect.Effect<boolean, AuthError.TransportError>
): Effect.Effect<void, HttpApiError.Forbidden | HttpApiError.ServiceUnavailable, CurrentUser> =>
  Effect.flatMap(CurrentUser, (info) =>
    Effect.flatMap(
      Effect.mapError(ask(info), unavailable),
      (granted) => (granted ? Effect.void : forbidden)
    ))

/**
 * Fails with 403 (`HttpApiError.Forbidden`) unless the request's user has the permission, or 503
 * (`ServiceUnavailable`) when a backend cannot answer. Django's `permission_required`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CurrentUser } from "effect-auth"
 *
 * const handler = CurrentUser.requirePermission("reports.view_report").pipe(Effect.as({ rows: [] }))
 * ```
 *
 * @since 0.1.0
 * @category guards
 */
export const requirePermission = (
  perm: string,
  obj?: unknown
): Effect.Effect<void, HttpApiError.Forbidden | HttpApiError.ServiceUnavailable, CurrentUser> =>
  guard((info) => info.hasPerm(perm, obj))

/**
 * As {@link requirePermission}, for every permission of the list.
 *
 * @example
 * ```ts
 * import { CurrentUser } from "effect-auth"
 *
 * const guard = CurrentUser.requirePermissions(["blog.add_post", "blog.publish_post"])
 * ```
 *
 * @since 0.1.0
 * @category guards
 */
export const requirePermissions = (
  perms: Iterable<string>,
  obj?: unknown
): Effect.Effect<void, HttpApiError.Forbidden | HttpApiError.ServiceUnavailable, CurrentUser> =>
  guard((info) => info.hasPerms(perms, obj))

/**
 * Fails with 403 unless the user has some permission in the app (Django's `has_module_perms`).
 *
 * @example
 * ```ts
 * import { CurrentUser } from "effect-auth"
 *
 * const guard = CurrentUser.requireModulePerms("reports")
 * ```
 *
 * @since 0.1.0
 * @category guards
 */
export const requireModulePerms = (
  appLabel: string
): Effect.Effect<void, HttpApiError.Forbidden | HttpApiError.ServiceUnavailable, CurrentUser> =>
  guard((info) => info.hasModulePerms(appLabel))

/**
 * Fails with 403 (`HttpApiError.Forbidden`) unless the request's session passed a second factor
 * (`HttpAuth.stepUp`, docs/mfa.md) that still holds: the device it was verified against must still
 * be the user's ({@link Info.secondFactorHolds}; removed or replaced, the session is as one that
 * never passed it). 503 (`ServiceUnavailable`) when the second factor's store cannot answer. A
 * request authenticated otherwise (a bearer token, an API key) has none, and is refused without a
 * store being read. Django's `otp_required` (django-otp), whose `OTPMiddleware` loads the
 * session's device on every request; here only the routes that require it do.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CurrentUser } from "effect-auth"
 *
 * const handler = CurrentUser.requireSecondFactor.pipe(Effect.as({ payroll: [] }))
 * ```
 *
 * @since 0.2.0
 * @category guards
 */
export const requireSecondFactor: Effect.Effect<
  void,
  HttpApiError.Forbidden | HttpApiError.ServiceUnavailable,
  CurrentUser
> = guard((info) => info.secondFactorHolds)
