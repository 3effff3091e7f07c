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
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Permissions from "../Permissions.js"
import * as CurrentUser from "./CurrentUser.js"
import * as HttpAuth from "./HttpAuth.js"

/**
 * Requires an authenticated user and provides `CurrentUser`.
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
 * Both middlewares, on the `HttpAuth` service.
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
  // An HttpApiMiddleware's service is the effect each request runs.
  Layer.effect(
    Authentication,
    Effect.map(HttpAuth.HttpAuth, (service) =>
      Effect.flatMap(
        Effect.flatMap(HttpServerRequest.HttpServerRequest, service.authenticate),
        Option.match({ onNone: () => service.unauthorized, onSome: Effect.succeed })
      ))
  ),
  Layer.effect(
    OptionalAuthentication,
    Effect.map(HttpAuth.HttpAuth, (service) => Effect.flatMap(HttpServerRequest.HttpServerRequest, service.authenticate))
  )
)

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
