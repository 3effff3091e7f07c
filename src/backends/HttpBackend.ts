/**
 * A backend whose users live in a REST user service, reached through `@effect/platform`'s
 * `HttpClient` (provide any client layer: `FetchHttpClient.layer`, `NodeHttpClient.layerUndici`, ...).
 *
 * `authenticate` turns the decoded credentials into one request (by default
 * `POST /authenticate` with `{ username, password }` as JSON), decodes a 2xx body into a user with
 * your Schema, and maps other statuses as configured (by default 401 and 404 → `NoMatch`, 403 →
 * `PermissionDenied`). Connection errors, timeouts, 5xx, unmapped statuses and bodies that do not
 * decode are `TransportError`s whose cause names the method, URL (without query) and what went
 * wrong, never the request body.
 *
 * `getUser` (`GET /users/:id`, 404 → no user) shares one upstream request among concurrent callers
 * of the same id, batches ids when the service has a batch endpoint (where a user's record that
 * does not decode fails that id's callers only), and can keep answers for a TTL.
 *
 * At most `maxConcurrent` `authenticate` requests are in flight at once and `maxWaiting` more wait
 * for a turn; past that a login fails at once, without a request, with a `TransportError` (the
 * service is busy), as the password hasher sheds its load, and as there the turns are shared
 * fairly between client addresses (one address cannot keep every other one out).
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer, Schema } from "effect"
 * import * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * // The service answers { id, login, active, admin }; the app's user is { id, username, ... }
 * const UserFromBody = Schema.transform(
 *   Schema.Struct({ id: Schema.String, login: Schema.String, active: Schema.Boolean, admin: Schema.Boolean }),
 *   Schema.Struct({ id: Schema.String, username: Schema.String, isActive: Schema.Boolean, isSuperuser: Schema.Boolean }),
 *   {
 *     strict: true,
 *     decode: (b) => ({ id: b.id, username: b.login, isActive: b.active, isSuperuser: b.admin }),
 *     encode: (u) => ({ id: u.id, login: u.username, active: u.isActive, admin: u.isSuperuser })
 *   }
 * )
 *
 * const UsersLive = HttpBackend.layer({
 *   baseUrl: "https://users.internal.example.com/api",
 *   user: UserFromBody,
 *   timeout: "2 seconds",
 *   getUser: { batch: true, cache: { ttl: "30 seconds" } },
 *   maxConcurrent: 32, // logins in flight to the service at once (default 64)
 *   policy: { onTransportError: "fallthrough" }
 * }).pipe(Layer.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Arr from "effect/Array"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import type { AuthRequest } from "../AuthRequest.js"
import * as Credentials from "../Credentials.js"
import * as BatchAnswer from "../internal/http/batchAnswer.js"
import * as BoundedBody from "../internal/http/boundedBody.js"
import { forRequest, makeLimiter, readLimits } from "../internal/hashers/admission.js"
import { describeClientError, describeRequest } from "../internal/http/clientErrors.js"
import * as PeerClient from "../internal/http/peerClient.js"
import { failingPaths } from "../internal/parseErrors.js"
import * as UserLoader from "../internal/http/userLoader.js"
import { isUserId } from "../internal/userId.js"
import * as UserModule from "../User.js"

type User = UserModule.User

/**
 * What a non-2xx status of the authenticate endpoint means.
 *
 * - `"no-match"`: `NoMatch` with reason `"unknown-user"` for 404, `"invalid-credentials"` otherwise
 * - `"permission-denied"`: `PermissionDenied` with reason `"upstream answered <status>"`
 * - `{ noMatch: reason }` / `{ permissionDenied: reason }`: the same with your reason
 *
 * A status that is neither 2xx nor mapped is a `TransportError`.
 *
 * @example
 * ```ts
 * import type * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * const locked: HttpBackend.StatusOutcome = { permissionDenied: "account locked upstream" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type StatusOutcome =
  | "no-match"
  | "permission-denied"
  | { readonly noMatch: AuthError.NoMatchReason }
  | { readonly permissionDenied: string }

/**
 * The default status mapping: 401 and 404 → `NoMatch`, 403 → `PermissionDenied`.
 *
 * @example
 * ```ts
 * import * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * const statuses = { ...HttpBackend.defaultStatuses, 423: "permission-denied" } as const
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultStatuses: Readonly<Record<number, StatusOutcome>> = {
  401: "no-match",
  403: "permission-denied",
  404: "no-match"
}

/**
 * How `getUser` fetches several ids at once from a batch endpoint.
 *
 * @example
 * ```ts
 * import { HttpClientRequest } from "@effect/platform"
 * import type * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * const batch: HttpBackend.BatchOptions = {
 *   request: (ids) => HttpClientRequest.post("/users/lookup").pipe(HttpClientRequest.bodyUnsafeJson({ ids })),
 *   maxSize: 50,
 *   window: "2 millis"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface BatchOptions {
  /**
   * Default: `GET /users?ids=a,b,c` (ids must not contain a comma with this default).
   * Ids missing from the answer have no user; an answer that lists an id asked for more than once
   * fails the request's callers with a `TransportError`.
   */
  readonly request?: ((ids: Arr.NonEmptyReadonlyArray<string>) => HttpClientRequest.HttpClientRequest) | undefined
  /**
   * Schema of the 2xx body. Default: an array of the `getUser` user Schema.
   *
   * An array Schema (`Schema.Array(user)`, the default) is decoded element by element: a record
   * that does not decode fails only the callers of the id in its `id` field (a string, or an
   * integer for its string), with the `TransportError` `GET /users/:id` would give; the other ids
   * get their users. A record whose `id` cannot be read or was not asked for, a body that is not
   * an array, and a record refused by any other Schema (decoded whole) fail every caller of the
   * request.
   */
  readonly users?: Schema.Schema<ReadonlyArray<User>, any, never> | undefined
  /** At most this many ids per upstream call. Default: 100. */
  readonly maxSize?: number | undefined
  /**
   * How long the first caller waits for others before the batch is sent. Default: zero, which
   * collects every caller of the current event-loop turn. Measured with a real timer, not `Clock`.
   * Must be finite; one that does not parse is an `AuthConfigError`.
   */
  readonly window?: Duration.DurationInput | undefined
}

/**
 * How `getUser` loads users.
 *
 * @example
 * ```ts
 * import { HttpClientRequest } from "@effect/platform"
 * import type * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * const getUser: HttpBackend.GetUserOptions = {
 *   request: (id) => HttpClientRequest.get(`/v2/accounts/${encodeURIComponent(id)}`),
 *   cache: { ttl: "1 minute", capacity: 10_000 }
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface GetUserOptions {
  /**
   * Default: `GET /users/:id` (id URL-encoded; the ids `.` and `..`, which no URL path can hold,
   * are no user). 2xx → decode, 404 → no user, else TransportError.
   */
  readonly request?: ((userId: string) => HttpClientRequest.HttpClientRequest) | undefined
  /** Schema of the 2xx body. Default: the backend's `user` Schema. */
  readonly user?: Schema.Schema<User, any, never> | undefined
  /** Batch endpoint; `true` takes every default. Without it, concurrent calls per id are deduplicated. */
  readonly batch?: BatchOptions | true | undefined
  /** Keep answers (users and "no such user") for `ttl`, at most `capacity` ids (default 10 000). */
  readonly cache?: { readonly ttl: Duration.DurationInput; readonly capacity?: number | undefined } | undefined
}

/**
 * What every HttpBackend configuration holds, whatever its credentials.
 *
 * @example
 * ```ts
 * import { User } from "effect-auth"
 * import type * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * const base: HttpBackend.BaseOptions = {
 *   baseUrl: "https://users.example.com",
 *   user: User.BaseUserSchema,
 *   timeout: "2 seconds",
 *   getUser: { cache: { ttl: "30 seconds" } },
 *   // at most 16 logins in flight to the service; 64 more may wait; the rest: 503 at once
 *   maxConcurrent: 16,
 *   maxWaiting: 64
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface BaseOptions {
  /** Backend id, stored in sessions. Default: `"http"`. */
  readonly id?: string | undefined
  /** Relative request URLs are prefixed with it (`https://host/api` + `/authenticate`). */
  readonly baseUrl: string | URL
  /** Schema of the authenticate endpoint's 2xx body, mapped to the app's user. */
  readonly user: Schema.Schema<User, any, never>
  /** Default: {@link defaultStatuses}. Replaces the defaults (it is not merged with them). */
  readonly statuses?: Readonly<Record<number, StatusOutcome>> | undefined
  /** Each HTTP exchange (request and body) is cut after this long. Default: 10 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * A response body larger than this many bytes (decompressed) is a `TransportError`, and its
   * reading stops there (one that announces more is not read at all): its connection is dropped.
   * Default: 1 MiB.
   */
  readonly maxResponseBytes?: number | undefined
  /** Accept users whose `isActive` is false (Django's `AllowAllUsersModelBackend`). Default: false. */
  readonly allowInactive?: boolean | undefined
  /**
   * How many `authenticate` requests may be in flight to the service at once. A positive integer.
   * Default: 64.
   *
   * Without a bound, a flood of logins with distinct names held a socket and a request at the
   * service each for as long as it took to answer (2000 logins against one that never answers:
   * 2000 sockets for the whole `timeout`), where Django is bounded by its worker count; the
   * platform's clients open as many connections as they are asked for. 64 is above a healthy
   * service's need, where a login is one exchange of milliseconds (64 in flight serve thousands of
   * logins per second), and of the order of what a Django deployment keeps in flight (a few dozen
   * workers and threads).
   *
   * `getUser` is not counted: its loader already holds at most one request per id (one per
   * chunk with `getUser.batch`), and its ids come from sessions, which a client cannot make up,
   * so a login flood cannot take the turns of logged-in users' requests either.
   */
  readonly maxConcurrent?: number | undefined
  /**
   * How many more `authenticate` calls may wait for a turn when `maxConcurrent` are in flight;
   * past that a login fails at once, without a request, with `TransportError` (cause `busy: ...`),
   * which the fold treats as any failure of the service (503, or the next backend under
   * `onTransportError: "fallthrough"`). A non-negative integer; `0` refuses whatever cannot be
   * sent at once. Default: 256, 4 × the default `maxConcurrent`, the password hasher's ratio: a
   * burst of 320 logins against a healthy service is served rather than refused, and a waiting
   * call holds no socket, only its fiber. Time spent waiting counts against `policy.timeout`, not
   * `timeout` (which is the exchange's).
   */
  readonly maxWaiting?: number | undefined
  /** Adjust the client, e.g. to add the service's own API key header. */
  readonly transformClient?: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
  readonly getUser?: GetUserOptions | undefined
  /** Applied by `AuthService` to every call: timeout, retry of TransportErrors, fallthrough. */
  readonly policy?: AuthBackend.PolicyInput | undefined
}

/**
 * A configuration with its own credentials Schema and the request they become.
 *
 * @example
 * ```ts
 * import { HttpClientRequest } from "@effect/platform"
 * import { Redacted, Schema } from "effect"
 * import { Credentials, User } from "effect-auth"
 * import type * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * const options: HttpBackend.Options<Credentials.Token> = {
 *   baseUrl: "https://api.example.com",
 *   user: User.BaseUserSchema,
 *   credentials: Credentials.Token,
 *   request: ({ token }) => HttpClientRequest.get("/me").pipe(HttpClientRequest.bearerToken(Redacted.value(token)))
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<C> extends BaseOptions {
  readonly credentials: Schema.Schema<C, any, never>
  readonly request: (credentials: C, request: AuthRequest | undefined) => HttpClientRequest.HttpClientRequest
}

/**
 * A configuration for username and password (`Credentials.UsernamePassword`), by default sent as
 * `POST /authenticate` with the JSON body `{ "username": ..., "password": ... }`.
 *
 * @example
 * ```ts
 * import { User } from "effect-auth"
 * import type * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * const options: HttpBackend.DefaultOptions = { baseUrl: "http://127.0.0.1:8080", user: User.BaseUserSchema }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface DefaultOptions extends BaseOptions {
  readonly credentials?: undefined
  readonly request?:
    | ((credentials: Credentials.UsernamePassword, request: AuthRequest | undefined) => HttpClientRequest.HttpClientRequest)
    | undefined
}

/**
 * The HttpBackend service: pass the Tag to `AuthService.layer([...])`, provide it with {@link layer}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * const program = Effect.flatMap(HttpBackend.HttpBackend, (backend) => backend.getUser("42"))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class HttpBackend extends Context.Tag("effect-auth/HttpBackend")<HttpBackend, AuthBackend.AuthBackend>() {}

/**
 * The request the default configuration sends: `POST /authenticate`, JSON `{ username, password }`.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * const request = HttpBackend.defaultRequest({ username: "alice", password: Redacted.make("pw") })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultRequest = (credentials: Credentials.UsernamePassword): HttpClientRequest.HttpClientRequest =>
  HttpClientRequest.post("/authenticate").pipe(
    HttpClientRequest.acceptJson,
    HttpClientRequest.bodyUnsafeJson({ username: credentials.username, password: Redacted.value(credentials.password) })
  )

const defaultUserRequest = (userId: string): HttpClientRequest.HttpClientRequest =>
  HttpClientRequest.get(`/users/${encodeURIComponent(userId)}`).pipe(HttpClientRequest.acceptJson)

// Ids `/users/:id` cannot hold: URLs read `.` and `..` (encoded or not) as "here" and "up one level".
const isDotSegment = (userId: string): boolean => userId === "." || userId === ".."

const defaultBatchRequest = (ids: Arr.NonEmptyReadonlyArray<string>): HttpClientRequest.HttpClientRequest =>
  HttpClientRequest.get("/users").pipe(HttpClientRequest.setUrlParam("ids", ids.join(",")), HttpClientRequest.acceptJson)

// The default batch request carries its ids in the URL, which servers cap (Node at 16 KB of
// headers, nginx at 8 KB for the request line): 100 ids of 255 characters answered 431 to every
// caller. A chunk's `ids` parameter stays within 4 KB (encoded, each id with its "%2C"); the
// ids past it go in the next.
const idsInQuery = { cost: (id: string) => encodeURIComponent(id).length + 3, max: 4096 }

// A base URL is a scheme, a host and a path: a query or fragment would be joined into every
// request's path (`?key=K/authenticate`), and user:password is dropped or refused by the clients.
const baseUrlProblem = (url: URL): string | undefined => {
  if (url.protocol !== "http:" && url.protocol !== "https:") return "baseUrl must be an http: or https: URL"
  // (`href` keeps a bare `?` or `#`, which `search` and `hash` read as empty)
  if (/[?#]/.test(url.href)) {
    return "baseUrl must have no query or fragment (add query parameters with transformClient)"
  }
  if (url.username !== "" || url.password !== "") {
    return "baseUrl must carry no user or password (send credentials with transformClient)"
  }
  return undefined
}

const isStatusOutcome = Schema.is(Schema.Union(
  Schema.Literal("no-match", "permission-denied"),
  Schema.Struct({ noMatch: AuthError.NoMatchReason }),
  Schema.Struct({ permissionDenied: Schema.String })
))

// `statuses` from an untyped source (a config file) is checked when the backend is built: an
// outcome of another shape failed every login answered with its status as a defect.
const statusesProblem = (statuses: unknown): string | undefined => {
  if (typeof statuses !== "object" || statuses === null) return "statuses must be a record from status to outcome"
  for (const [status, outcome] of Object.entries(statuses)) {
    if (!/^[1-5][0-9]{2}$/.test(status)) return `statuses: ${JSON.stringify(status.slice(0, 20))} is not an HTTP status`
    if (!isStatusOutcome(outcome)) {
      return `statuses[${status}] must be "no-match", "permission-denied", { noMatch: <a NoMatchReason> } or { permissionDenied: <reason> }`
    }
  }
  return undefined
}

const absoluteUrl = /^[a-z][a-z0-9+.-]*:/i

const configError = (message: string) => new AuthError.AuthConfigError({ message: `HttpBackend: ${message}` })

/**
 * Builds the backend. Needs an `HttpClient` and a `Scope` (shared `getUser` fetches run in it and
 * stop when it closes; from then on `getUser` fails at once with a `TransportError`, as do the
 * callers still waiting). Fails with `AuthConfigError` when the configuration is unusable.
 *
 * `authenticate` takes one of `maxConcurrent` turns, or waits among `maxWaiting` others; one more
 * fails at once, without a request, with a `TransportError` whose cause starts with `busy:`. A
 * login runs as a call of the request's client address (`PasswordHasher.withClient`): an address
 * holding far more turns than a newcomer's loses its newest waiting login to it, as the password
 * hasher's places are shared (docs/passwords.md).
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { User } from "effect-auth"
 * import * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * const program = Effect.gen(function*() {
 *   const backend = yield* HttpBackend.make({ baseUrl: "http://127.0.0.1:8080", user: User.BaseUserSchema })
 *   return yield* backend.getUser("1")
 * }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: {
  (
    options: DefaultOptions
  ): Effect.Effect<AuthBackend.AuthBackend<Credentials.UsernamePassword>, AuthError.AuthConfigError, HttpClient.HttpClient | Scope.Scope>
  <C>(
    options: Options<C>
  ): Effect.Effect<AuthBackend.AuthBackend<C>, AuthError.AuthConfigError, HttpClient.HttpClient | Scope.Scope>
} = (options: DefaultOptions | Options<any>) => makeWith(options)

const makeWith = (
  options: DefaultOptions | Options<any>
): Effect.Effect<AuthBackend.AuthBackend<any>, AuthError.AuthConfigError, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const id = options.id ?? "http"
    let url: URL
    try {
      url = new URL(options.baseUrl)
    } catch {
      return yield* configError("baseUrl is not a URL")
    }
    const urlProblem = baseUrlProblem(url)
    if (urlProblem !== undefined) return yield* configError(urlProblem)
    const base = url.href.replace(/\/$/, "")
    // A typed DurationInput can still be a malformed string at runtime (from a config file, say):
    // `Duration.decode` throws on one, a defect; it is an AuthConfigError.
    const timeoutInput = Duration.decodeUnknown(options.timeout ?? "10 seconds")
    if (Option.isNone(timeoutInput)) return yield* configError("timeout must be a duration")
    const timeout = timeoutInput.value
    if (!Duration.isFinite(timeout) || Duration.toMillis(timeout) <= 0) {
      return yield* configError("timeout must be a positive, finite duration")
    }
    const batchInput = options.getUser?.batch === true ? {} : options.getUser?.batch
    const window = Duration.decodeUnknown(batchInput?.window ?? Duration.zero)
    if (Option.isNone(window) || !Duration.isFinite(window.value)) {
      return yield* configError("getUser.batch.window must be a finite duration")
    }
    const maxBatchSize = batchInput?.maxSize ?? 100
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
      return yield* configError("getUser.batch.maxSize must be a positive integer")
    }
    const maxResponseBytes = options.maxResponseBytes ?? BoundedBody.defaultMaxBytes
    if (!Number.isSafeInteger(maxResponseBytes) || maxResponseBytes < 1) {
      return yield* configError("maxResponseBytes must be a positive integer")
    }
    const limits = readLimits(options)
    if ("problem" in limits) return yield* configError(limits.problem)
    const { maxConcurrent, maxWaiting } = limits
    const cacheInput = options.getUser?.cache
    const ttl = cacheInput === undefined ? Option.some(undefined) : Duration.decodeUnknown(cacheInput.ttl)
    if (Option.isNone(ttl)) return yield* configError("getUser.cache.ttl must be a duration")
    const capacity = cacheInput?.capacity ?? 10_000
    if (!Number.isInteger(capacity) || capacity < 1) {
      return yield* configError("getUser.cache.capacity must be a positive integer")
    }

    // The service's answer decides who the user is: it must come from baseUrl, so a redirect is
    // an unexpected status rather than followed (see PeerClient).
    const baseClient = yield* PeerClient.make
    const client = options.transformClient === undefined ? baseClient : options.transformClient(baseClient)
    const statuses = options.statuses ?? defaultStatuses
    const statusProblem = statusesProblem(statuses)
    if (statusProblem !== undefined) return yield* configError(statusProblem)
    const allowInactive = options.allowInactive ?? false
    const toRequest = options.request ?? defaultRequest
    const userRequest = options.getUser?.request ?? defaultUserRequest
    const transport = (cause: string) => new AuthError.TransportError({ backend: id, cause })
    const timeoutText = Duration.format(timeout)

    const resolve = (request: HttpClientRequest.HttpClientRequest) =>
      absoluteUrl.test(request.url) ? request : HttpClientRequest.prependUrl(request, base)

    // One HTTP exchange, its body included. Every failure becomes a TransportError built from a
    // description: the client error holds the request body. The backend's timeout is applied by
    // whoever runs it: `authenticate` with `timed`, the user loader by a timer on the fiber it
    // already runs each fetch in.
    // The request builders are the app's code, run outside any effect: one that throws
    // (`encodeURIComponent` on a lone surrogate, say) fails this exchange with a TransportError,
    // never a defect that would leave the other callers of a shared fetch waiting. Its message
    // is not kept: it may quote the credentials.
    const exchange = <A, E>(
      build: () => HttpClientRequest.HttpClientRequest,
      onResponse: (response: HttpClientResponse.HttpClientResponse, where: string) => Effect.Effect<A, E>
    ): UserLoader.Fetch<A, E> => {
      let request: HttpClientRequest.HttpClientRequest
      try {
        request = resolve(build())
      } catch {
        const failure = transport("the request builder threw")
        return { effect: Effect.fail(failure), timedOut: () => failure }
      }
      const where = describeRequest(request)
      return {
        effect: client.execute(request).pipe(
          Effect.mapError((error) => transport(describeClientError(error))),
          Effect.flatMap((response) => onResponse(response, where))
        ),
        timedOut: () => transport(`${where}: timed out after ${timeoutText}`)
      }
    }
    const timed = <A, E>(run: UserLoader.Fetch<A, E>): Effect.Effect<A, E | AuthError.TransportError> =>
      Effect.timeoutFail(run.effect, { duration: timeout, onTimeout: run.timedOut })

    const readJson = (response: HttpClientResponse.HttpClientResponse, where: string): Effect.Effect<unknown, AuthError.TransportError> =>
      BoundedBody.text(response, maxResponseBytes, where).pipe(
        Effect.mapError(transport),
        Effect.flatMap((text) =>
          Effect.try({
            try: (): unknown => JSON.parse(text),
            catch: () => transport(`${where}: response body is not JSON (status ${response.status})`)
          })
        )
      )
    const mismatch = (where: string, issue: ParseResult.ParseIssue) =>
      transport(`${where}: response body does not match the schema at ${failingPaths(new ParseResult.ParseError({ issue }))}`)

    const decodeBody = <A>(schema: Schema.Schema<A, any, never>) => {
      const decode = ParseResult.decodeUnknown(schema)
      return (response: HttpClientResponse.HttpClientResponse, where: string): Effect.Effect<A, AuthError.TransportError> =>
        Effect.flatMap(readJson(response, where), (json) => Effect.mapError(decode(json), (issue) => mismatch(where, issue)))
    }

    const decodeUser = decodeBody(options.user)
    // Every answer whose body is not read lets go of it (BoundedBody.discard): a peer's body that
    // never ends would otherwise hold its connection until the response is garbage collected.
    const unread = <A, E>(response: HttpClientResponse.HttpClientResponse, outcome: Effect.Effect<A, E>) =>
      Effect.zipRight(BoundedBody.discard(response), outcome)
    const unexpected = (response: HttpClientResponse.HttpClientResponse, where: string) =>
      Effect.mapError(BoundedBody.unexpectedStatus(response, where), transport)

    const statusOutcome = (status: number): AuthError.NoMatch | AuthError.PermissionDenied | undefined => {
      const outcome = statuses[status]
      if (outcome === undefined) return undefined
      if (outcome === "no-match") {
        return AuthError.failures(id).noMatchError(status === 404 ? "unknown-user" : "invalid-credentials")
      }
      if (outcome === "permission-denied") {
        return new AuthError.PermissionDenied({ backend: id, reason: `upstream answered ${status}` })
      }
      return "noMatch" in outcome
        ? AuthError.failures(id).noMatchError(outcome.noMatch)
        : new AuthError.PermissionDenied({ backend: id, reason: outcome.permissionDenied })
    }

    const inactive = AuthError.failures(id).noMatch("inactive-user")

    // The hasher's load shedding for logins: a turn is taken before the request is even built, and
    // held until the exchange ends (its body read, or the timeout cut it).
    const limited = yield* makeLimiter(
      maxConcurrent,
      maxWaiting,
      transport(
        `busy: ${maxConcurrent} authenticate requests in flight and ${maxWaiting} waiting ` +
          `(maxConcurrent, maxWaiting); refused without a request`
      )
    )

    // The places are shared fairly between client addresses (the limiter's buckets).
    const authenticate = (credentials: unknown, request: AuthRequest | undefined): Effect.Effect<User, AuthError.BackendError> =>
      forRequest(limited(Effect.suspend(() =>
        timed(exchange(() => toRequest(credentials as any, request), (response, where): Effect.Effect<User, AuthError.BackendError> => {
          const mapped = statusOutcome(response.status)
          if (mapped !== undefined) return unread(response, Effect.fail(mapped))
          if (response.status < 200 || response.status >= 300) return unexpected(response, where)
          return Effect.flatMap(
            decodeUser(response, where),
            (user) => user.isActive || allowInactive ? Effect.succeed(user) : inactive
          )
        }))
      )), request)

    const noUser = Effect.succeed(Option.none<User>())
    // Django's get_user hides users that may not authenticate; filtered once per fetch, not per caller.
    const visible = (user: User): boolean => allowInactive || user.isActive
    const decodeFetchedUser = options.getUser?.user === undefined ? decodeUser : decodeBody(options.getUser.user)
    const fetchOne = (userId: string): UserLoader.Fetch<Option.Option<User>> =>
      exchange(() => userRequest(userId), (response, where) => {
        if (response.status === 404) return unread(response, noUser)
        if (response.status < 200 || response.status >= 300) return unexpected(response, where)
        // A body for another id is no answer for this one (a session of user 42 must not resolve to
        // user 999), as the batch path drops users it did not ask for.
        return Effect.map(
          decodeFetchedUser(response, where),
          (user) => visible(user) && user.id === userId ? Option.some(user) : Option.none()
        )
      })

    let fetchMany: UserLoader.LoaderOptions["fetchMany"] = undefined
    if (batchInput !== undefined) {
      const batchRequest = batchInput.request ?? defaultBatchRequest
      // Each record decoded on its own (see BatchAnswer): one that does not decode fails its id's
      // callers, not the chunk's.
      const decodeAnswer = BatchAnswer.make({
        users: batchInput.users ?? Schema.Array(options.getUser?.user ?? options.user),
        visible,
        mismatch,
        transport
      })
      fetchMany = (ids) =>
        exchange(() => batchRequest(ids), (response, where) =>
          response.status < 200 || response.status >= 300
            ? unexpected(response, where)
            : Effect.flatMap(readJson(response, where), (json) => decodeAnswer(json, ids, where)))
    }

    const loader = yield* UserLoader.make({
      fetchOne,
      fetchMany,
      maxBatchSize,
      batchBudget: batchInput !== undefined && batchInput.request === undefined ? idsInQuery : undefined,
      window: window.value,
      timeout,
      ttl: ttl.value,
      capacity,
      closed: () => transport("the backend is closed (its scope has ended)")
    })

    const byDefaultPath = options.getUser?.request === undefined
    const getUser = (userId: string): Effect.Effect<Option.Option<User>, AuthError.TransportError> =>
      // An id this service could never have issued, or the default path could not hold, is no
      // user, not a request.
      isUserId(userId) && !(byDefaultPath && isDotSegment(userId)) ? loader.load(userId) : noUser

    return AuthBackend.make<any>({
      id,
      credentials: options.credentials ?? Credentials.UsernamePassword,
      authenticate,
      getUser,
      policy: options.policy
    })
  })

/**
 * A layer of the {@link HttpBackend} service. Requires an `HttpClient`.
 *
 * @example
 * ```ts
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { User } from "effect-auth"
 * import * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * const HttpBackendLive = HttpBackend.layer({
 *   baseUrl: "https://users.example.com",
 *   user: User.BaseUserSchema,
 *   statuses: { ...HttpBackend.defaultStatuses, 423: { permissionDenied: "locked" } }
 * }).pipe(Layer.provide(NodeHttpClient.layerUndici))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: {
  (options: DefaultOptions): Layer.Layer<HttpBackend, AuthError.AuthConfigError, HttpClient.HttpClient>
  <C>(options: Options<C>): Layer.Layer<HttpBackend, AuthError.AuthConfigError, HttpClient.HttpClient>
} = (options: DefaultOptions | Options<any>) => Layer.scoped(HttpBackend, makeWith(options))

/**
 * {@link layer} with its options read from `Config`. As with every `Config.Config.Wrap`, each
 * field is a `Config`: values that do not come from the environment (the user Schema, functions)
 * are `Config.succeed(...)`. A missing or malformed value fails the layer with a `ConfigError`.
 *
 * @example
 * ```ts
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Config, Layer } from "effect"
 * import { User } from "effect-auth"
 * import * as HttpBackend from "effect-auth/backends/HttpBackend"
 *
 * const HttpBackendLive = HttpBackend.layerConfig({
 *   baseUrl: Config.string("USERS_SERVICE_URL"),
 *   user: Config.succeed(User.BaseUserSchema),
 *   timeout: Config.duration("USERS_SERVICE_TIMEOUT").pipe(Config.withDefault("2 seconds"))
 * }).pipe(Layer.provide(NodeHttpClient.layerUndici))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: {
  (
    config: Config.Config.Wrap<DefaultOptions>
  ): Layer.Layer<HttpBackend, ConfigError.ConfigError | AuthError.AuthConfigError, HttpClient.HttpClient>
  <C>(
    config: Config.Config.Wrap<Options<C>>
  ): Layer.Layer<HttpBackend, ConfigError.ConfigError | AuthError.AuthConfigError, HttpClient.HttpClient>
} = (config: Config.Config.Wrap<DefaultOptions | Options<any>>) =>
  Layer.unwrapEffect(
    Effect.map(Config.unwrap(config as Config.Config.Wrap<DefaultOptions>), (options) => layer(options))
  )
