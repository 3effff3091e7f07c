/**
 * `HttpApiMiddleware`s for `HttpApi`: `Authentication` provides `CurrentUser` (401 for anonymous
 * requests), `OptionalAuthentication` provides `OptionalUser`. Both run `HttpAuth`'s resolution
 * (credentials, sessions, CSRF, remote user) and fail with `HttpAuth.Failure` (401 with
 * `WWW-Authenticate`, 403, 503; empty bodies), which they declare, so every endpoint behind them
 * documents those statuses and its handlers may fail with them (e.g. through
 * `CurrentUser.requirePermission`).
 *
 * @example
 * ```ts
 * import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
 * import { Effect, Layer, Schema } from "effect"
 * import { Authentication, CurrentUser, HttpAuth } from "effect-auth"
 *
 * const Me = Schema.Struct({ id: Schema.String, username: Schema.String })
 *
 * class Account extends HttpApiGroup.make("account")
 *   .add(HttpApiEndpoint.get("me", "/me").addSuccess(Me))
 *   .add(HttpApiEndpoint.get("reports", "/reports").addSuccess(Schema.Array(Schema.String)))
 *   .middleware(Authentication.Authentication)
 * {}
 *
 * class Api extends HttpApi.make("api").add(Account) {}
 *
 * const AccountLive = HttpApiBuilder.group(Api, "account", (handlers) =>
 *   handlers
 *     .handle("me", () => Effect.map(CurrentUser.CurrentUser, ({ user }) => ({ id: user.id, username: user.username })))
 *     .handle("reports", () => Effect.as(CurrentUser.requirePermission("reports.view_report"), ["q1"])))
 *
 * const ApiLive = HttpApiBuilder.api(Api).pipe(
 *   Layer.provide(AccountLive),
 *   Layer.provide(Authentication.layer),
 *   Layer.provide(HttpAuth.layer())
 *   // ... and AuthService, Session
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import type * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as AuthAttempt from "../internal/authAttempt.js"
import * as Fold from "../internal/http/fold.js"
import * as Permissions from "../Permissions.js"
import * as CurrentUser from "./CurrentUser.js"
import * as HttpAuth from "./HttpAuth.js"
import * as RequestSource from "./RequestSource.js"

// HttpAuth's default sources (bearer, and the session cookie when sessions are on).
const defaultSecurity = RequestSource.security([RequestSource.bearer, RequestSource.sessionCookie()])

/**
 * Requires an authenticated user and provides `CurrentUser`. It declares the `security` of
 * `HttpAuth`'s defaults (`bearer`, and `session`: the `sessionid` cookie), so the `HttpApi`'s
 * OpenAPI document shows them; for other sources declare your own middleware with {@link Tag}.
 *
 * The credentials are still read by `HttpAuth`'s own strict parsers: the platform's security
 * decoders run (that is how a declared security works) but their lenient result is ignored.
 *
 * @example
 * ```ts
 * import { HttpApiEndpoint } from "@effect/platform"
 * import { Authentication } from "effect-auth"
 *
 * const me = HttpApiEndpoint.get("me", "/me").middleware(Authentication.Authentication)
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("effect-auth/http/Authentication", {
  provides: CurrentUser.CurrentUser,
  failure: HttpAuth.Failure
}) {}

// The `security` is attached at run time rather than passed to `HttpApiMiddleware.Tag`: passed
// there, it would turn the middleware's service from an effect (its type since 0.1.0, which apps
// and benchmarks run directly) into a record of per-scheme handlers. The layer below provides an
// effect that is also that record, so the platform's security path and OpenAPI both work.
Object.assign(Authentication, {
  [HttpApiMiddleware.SecurityTypeId]: HttpApiMiddleware.SecurityTypeId,
  security: defaultSecurity
})

/**
 * Provides `OptionalUser`: anonymous requests go through, bad credentials and CSRF failures do
 * not. Put it on login and logout endpoints (it declares their 401/403/503).
 *
 * @example
 * ```ts
 * import { HttpApiEndpoint } from "@effect/platform"
 * import { Authentication } from "effect-auth"
 *
 * const home = HttpApiEndpoint.get("home", "/").middleware(Authentication.OptionalAuthentication)
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export class OptionalAuthentication extends HttpApiMiddleware.Tag<OptionalAuthentication>()(
  "effect-auth/http/OptionalAuthentication",
  {
    provides: CurrentUser.OptionalUser,
    failure: HttpAuth.Failure
  }
) {}

/**
 * Both middlewares, on the `HttpAuth` service. One API per layer graph: @effect/platform's
 * `HttpApiBuilder` router is one memoised layer, so two `HttpApi` servers merged into one graph
 * share it with whichever `HttpAuth` was built first; build and launch each on its own.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Authentication, HttpAuth } from "effect-auth"
 *
 * const AuthenticationLive = Authentication.layer.pipe(Layer.provide(HttpAuth.layer({ basic: true })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Authentication | OptionalAuthentication, never, HttpAuth.HttpAuth> = Layer.merge(
  Layer.effect(Authentication, Effect.map(HttpAuth.HttpAuth, (service) => {
    const effect = required(service)
    return Object.assign(effect, handlers(defaultSecurity, effect))
  })),
  // An HttpApiMiddleware's service is the effect each request runs.
  Layer.effect(OptionalAuthentication, Effect.map(HttpAuth.HttpAuth, (service) => Effect.withFiberRuntime(resolve(service))))
)

// The request's resolution in the fiber that serves it, with the request cache if one is provided.
const resolve = (service: HttpAuth.Service) => (fiber: Fiber.RuntimeFiber<unknown, unknown>) => {
  const services = fiber.currentContext.unsafeMap
  return Fold.resolveIn(
    service,
    services.get(HttpServerRequest.HttpServerRequest.key),
    services.get(Permissions.RequestCache.key),
    fiber
  )
}

// Built once per layer: the effect a protected request runs, one fiber step when the backends
// answer with `Exit`s.
const required = (service: HttpAuth.Service) => {
  const resolveHere = resolve(service)
  const userOrUnauthorized = (user: Option.Option<CurrentUser.Info>) =>
    Option.isSome(user) ? Exit.succeed(user.value) : service.unauthorized
  return Effect.withFiberRuntime<CurrentUser.Info, HttpAuth.Failure>((fiber) =>
    AuthAttempt.flatMapNow(resolveHere(fiber), userOrUnauthorized)
  )
}

// A middleware with a `security` is a handler per scheme, each given what the platform decoded.
// Every handler runs the same resolution (memoised on the request) and ignores that value.
const handlers = <A>(security: Record<string, unknown> | undefined, effect: A): any => {
  if (security === undefined) return effect
  const out: Record<string, () => A> = {}
  for (const key of Object.keys(security)) out[key] = () => effect
  return out
}

/**
 * Declares an authentication middleware of your own whose `security` matches your request
 * sources, so the OpenAPI document shows exactly the schemes you configured (Bearer, Basic, the
 * API-key header, the session cookie). Give it the list you give `HttpAuth.layer({ sources })`
 * and build it with {@link layerTag}.
 *
 * @example
 * ```ts
 * import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
 * import { Schema } from "effect"
 * import { Authentication, HttpAuth, RequestSource } from "effect-auth"
 *
 * const sources = [RequestSource.bearer, RequestSource.apiKey({ header: "X-API-Key" })]
 *
 * class ApiAuth extends Authentication.Tag<ApiAuth>()("app/ApiAuth", { sources }) {}
 *
 * class Api extends HttpApi.make("api").add(
 *   HttpApiGroup.make("me").add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String)).middleware(ApiAuth)
 * ) {}
 *
 * const spec = OpenApi.fromApi(Api) // components.securitySchemes: bearer, apiKey
 * const HttpAuthLive = HttpAuth.layer({ sources })
 * const ApiAuthLive = Authentication.layerTag(ApiAuth)
 * ```
 *
 * @since 0.2.0
 * @category middleware
 */
export const Tag = <Self>() =>
<const Id extends string>(
  id: Id,
  options: { readonly sources: ReadonlyArray<RequestSource.RequestSource> }
): HttpApiMiddleware.TagClass<
  Self,
  Id,
  {
    readonly provides: typeof CurrentUser.CurrentUser
    readonly failure: typeof HttpAuth.Failure
    readonly security: Record<string, HttpApiSecurity.HttpApiSecurity>
  }
> => {
  const security = RequestSource.security(options.sources)
  // The platform refuses an empty `security` (sources such as the remote-user header have none):
  // then the middleware is a plain one.
  return HttpApiMiddleware.Tag<Self>()(id, {
    provides: CurrentUser.CurrentUser,
    failure: HttpAuth.Failure,
    ...(Object.keys(security).length === 0 ? {} : { security })
  }) as any
}

/**
 * The layer of a middleware declared with {@link Tag}, on the `HttpAuth` service: 401 for
 * anonymous requests, `CurrentUser` for the others.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Authentication, HttpAuth, RequestSource } from "effect-auth"
 *
 * const sources = [RequestSource.bearer, RequestSource.basic]
 * class ApiAuth extends Authentication.Tag<ApiAuth>()("app/ApiAuth", { sources }) {}
 *
 * const ApiAuthLive = Authentication.layerTag(ApiAuth).pipe(Layer.provide(HttpAuth.layer({ sources })))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerTag = <Self, Id extends string>(
  tag: HttpApiMiddleware.TagClass<Self, Id, {
    readonly provides: typeof CurrentUser.CurrentUser
    readonly failure: typeof HttpAuth.Failure
    readonly security: Record<string, HttpApiSecurity.HttpApiSecurity>
  }>
): Layer.Layer<Self, never, HttpAuth.HttpAuth> =>
  Layer.effect(
    tag as any,
    Effect.map(HttpAuth.HttpAuth, (service) =>
      handlers(HttpApiMiddleware.isSecurity(tag as any) ? (tag as any).security : undefined, required(service)))
  ) as any

/**
 * An `HttpApi`-level middleware that runs every request in a permission cache
 * (`Permissions.withRequestCache`), for handlers that call `AuthService.hasPerm` directly
 * (`CurrentUser`'s methods are cached per request without it).
 *
 * @example
 * ```ts
 * import type { HttpApi } from "@effect/platform"
 * import { Layer } from "effect"
 * import { Authentication } from "effect-auth"
 *
 * const withCache = (ApiLive: Layer.Layer<HttpApi.Api>) => ApiLive.pipe(Layer.provide(Authentication.layerRequestCache))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRequestCache: Layer.Layer<never> = HttpApiBuilder.middleware(Permissions.withRequestCache)
