/**
 * The one service an app uses: the configured backends folded, in order, into `authenticate`,
 * `getUser` and the permission queries, the way Django walks `AUTHENTICATION_BACKENDS`.
 *
 * `authenticate` decodes the raw credentials with each backend's Schema in turn. The first success
 * wins and names its backend; `NoMatch` goes on; `PermissionDenied` stops at once; a
 * `TransportError` fails the call or, under the backend's `onTransportError: "fallthrough"`
 * policy, is recorded and skipped. When nobody matched the call fails with `AuthenticationFailed`,
 * or `BackendUnavailable` if a backend that could not answer was skipped.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Option, Redacted } from "effect"
 * import { AuthBackend, AuthError, AuthEvents, AuthService, Credentials } from "effect-auth"
 *
 * const alice = { id: "1", username: "alice", isActive: true, isSuperuser: false }
 *
 * const Passwords = AuthBackend.make({
 *   id: "passwords",
 *   credentials: Credentials.UsernamePassword,
 *   authenticate: ({ username, password }) =>
 *     username === "alice" && Redacted.value(password) === "wonderland"
 *       ? Effect.succeed(alice)
 *       : Effect.fail(new AuthError.NoMatch({ backend: "passwords", reason: "invalid-credentials" })),
 *   getUser: (id) => Effect.succeed(id === "1" ? Option.some(alice) : Option.none())
 * })
 *
 * const AuthLive = AuthService.layer([Effect.succeed(Passwords)]).pipe(Layer.provide(AuthEvents.layer))
 *
 * const program = AuthService.authenticate({ username: "alice", password: "wonderland" }).pipe(
 *   Effect.map(({ user, backend }) => `${user.username} via ${backend}`),
 *   Effect.provide(AuthLive)
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import type * as AuthBackend from "./AuthBackend.js"
import * as AuthError from "./AuthError.js"
import * as AuthEvents from "./AuthEvents.js"
import type { AuthRequest } from "./AuthRequest.js"
import * as Control from "./Control.js"
import * as Credentials from "./Credentials.js"
import * as AuthAttempt from "./internal/authAttempt.js"
import { type CompiledBackend, compile, DecodeCache } from "./internal/compiledBackend.js"
import * as ControlFold from "./internal/controlFold.js"
import * as CredentialsDecoder from "./internal/credentialsDecoder.js"
import { collectionWithin } from "./internal/collection.js"
import * as RefusedSecret from "./internal/refusedSecret.js"
import { isRecording, tracerEnabled, useValueFreeSpan } from "./internal/tracing.js"
import { isUserId } from "./internal/userId.js"
import * as Permissions from "./Permissions.js"
import * as UserModule from "./User.js"
import { forEvent } from "./internal/eventRequest.js"

/**
 * The app's user type (see `User.Register`).
 *
 * @example
 * ```ts
 * import type { AuthService } from "effect-auth"
 *
 * const greet = (user: AuthService.User): string => `hello ${user.username}`
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type User = UserModule.User

/**
 * A successful `authenticate`: the user and the id of the backend that produced it (what a session
 * stores to find the user again).
 *
 * `degraded` is `true` when the success was reached after a backend was skipped because it could
 * not answer (a `TransportError` the fold went on from: `onTransportError: "fallthrough"`, or a
 * control map that continues on it); it is absent otherwise. An app may then ask for a second
 * factor, or limit what the login may do (see docs/control.md).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService } from "effect-auth"
 *
 * const sessionKey = AuthService.authenticate({ username: "alice", password: "wonderland" }).pipe(
 *   Effect.map((authenticated: AuthService.Authenticated) => `${authenticated.backend}:${authenticated.user.id}`)
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export class Authenticated extends Data.TaggedClass("Authenticated")<{
  readonly user: User
  readonly backend: string
  readonly degraded?: boolean | undefined
}> {}

// What `new Authenticated(...)` makes, own keys in the same order (the fields, then `_tag`),
// without the `Data.Class` constructor's `Object.assign` (8 % of the fold's time in a profile).
const authenticated = (user: User, backend: string, degraded: boolean): Authenticated => {
  const result = Object.create(Authenticated.prototype)
  result.user = user
  result.backend = backend
  if (degraded) result.degraded = true
  result._tag = "Authenticated"
  return result
}

/**
 * @example
 * ```ts
 * import type { AuthService } from "effect-auth"
 *
 * const mayModerate = (auth: AuthService.Service, user: AuthService.User) =>
 *   auth.hasPerms(user, ["blog.change_comment", "blog.delete_comment"])
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The ids of the configured backends, in order. */
  readonly backendIds: ReadonlyArray<string>
  /** The configured backend with this id, if any. */
  readonly backend: (id: string) => Option.Option<AuthBackend.AuthBackend>
  /**
   * Folds the backends over credentials of a known shape (see `Credentials.Input`): a shape that
   * no backend can take is a compile error.
   */
  readonly authenticate: (
    credentials: Credentials.Input,
    request?: AuthRequest
  ) => Effect.Effect<Authenticated, AuthError.AuthenticateError>
  /**
   * The same fold over input of unknown shape (a request body): each backend's Schema decodes it,
   * and a backend that cannot decode it answers `NoMatch("unsupported-credentials")`.
   */
  readonly authenticateUnknown: (
    input: unknown,
    request?: AuthRequest
  ) => Effect.Effect<Authenticated, AuthError.AuthenticateError>
  /** Asks the backend that issued the id; a backend no longer configured yields none. */
  readonly getUser: (backendId: string, userId: string) => Effect.Effect<Option.Option<User>, AuthError.TransportError>
  /**
   * Whether the user has the permission (Django's `has_perm`). A user that is none or cannot be
   * read (an untyped caller's `null`, a number, a Proxy whose traps throw) holds nothing, as an
   * inactive user: false here, none from the other permission methods, and no backend is asked.
   */
  readonly hasPerm: (user: User, perm: string, obj?: unknown) => Effect.Effect<boolean, AuthError.TransportError>
  /**
   * `hasPerm`'s decision with its trail: each backend asked, in order, and what it said (grant,
   * deny, abstain) with its reasons (`AuthBackend.explainPerm`). Not cached: it asks afresh. For
   * a user that is none or cannot be read, one step `user` says so and nothing is granted.
   */
  readonly explain: (
    user: User,
    perm: string,
    obj?: unknown
  ) => Effect.Effect<Permissions.Explanation, AuthError.TransportError>
  /**
   * True when the user has every permission in the list (and for an empty list). A string is not
   * a list (Django raises ValueError): false, even for a superuser; so is what is not iterable or
   * cannot be read (an untyped caller's `null`, a Proxy whose traps throw), and a list of more than
   * 10,000 permissions (an endless generator included), of which no more than 10,001 are read.
   */
  readonly hasPerms: (
    user: User,
    perms: Iterable<string>,
    obj?: unknown
  ) => Effect.Effect<boolean, AuthError.TransportError>
  readonly hasModulePerms: (user: User, appLabel: string) => Effect.Effect<boolean, AuthError.TransportError>
  readonly getAllPermissions: (
    user: User,
    obj?: unknown
  ) => Effect.Effect<ReadonlySet<string>, AuthError.PermissionDenied | AuthError.TransportError>
  /** Django's `get_user_permissions`: the union of what each backend that has the method answers. */
  readonly getUserPermissions: (
    user: User,
    obj?: unknown
  ) => Effect.Effect<ReadonlySet<string>, AuthError.PermissionDenied | AuthError.TransportError>
  /** Django's `get_group_permissions`: the union of what each backend that has the method answers. */
  readonly getGroupPermissions: (
    user: User,
    obj?: unknown
  ) => Effect.Effect<ReadonlySet<string>, AuthError.PermissionDenied | AuthError.TransportError>
}

/**
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService } from "effect-auth"
 *
 * const backendIds = Effect.map(AuthService.AuthService, (auth) => auth.backendIds)
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class AuthService extends Context.Tag("effect-auth/AuthService")<AuthService, Service>() {}

// Django's bounds for an app label (1 to 100 characters) and a permission (at most 255), checked
// directly: `Schema.is` of the same Schemas answers the same but costs ~0.15 µs and an allocation,
// on every `hasPerm` that reaches the backends. Characters as Python counts them (code points).
const isAppLabel = CredentialsDecoder.isCodePointText(1, 100)
const isPermission = CredentialsDecoder.isCodePointText(0, 255)
// The most permissions `hasPerms` reads of one list; a longer one is refused (false), as a
// permission longer than 255 characters is. No site has that many, and an endless iterable (a
// generator) was read until the process ran out of memory (Django's `all()` stops at the first
// False; here the list is read first, so that the effect run again asks the same permissions).
const maxPermsAsked = 10_000
// What the permission methods know of a user before any backend is asked: `undefined` for no user,
// else whether it is an active superuser. Every backend reads `id` and `isActive`, so they are
// read here once, inside the guard: an untyped caller's `null`, number or string, or an object
// that throws when read (a getter, a Proxy whose traps throw, a revoked Proxy), is no user and
// holds nothing, as an inactive user holds nothing, and no backend is asked (one would die on it).
// A few property reads, no Schema: `hasPerm` is hot.
const readUser = (user: unknown): boolean | undefined => {
  if (typeof user !== "object" || user === null) return undefined
  try {
    const { id: _id, isActive, isSuperuser } = user as User
    return Boolean(isActive && isSuperuser)
  } catch {
    return undefined
  }
}
// The name `explain` shows, read once: "" for one that is no string or throws when read.
const usernameOf = (user: User): string => {
  try {
    const { username } = user
    return typeof username === "string" ? username : ""
  } catch {
    return ""
  }
}
// What `explain` says of no user (see `readUser`), as it says of a superuser, in a step of its own.
const noUserStep: Permissions.Step = { backend: "user", answer: "abstain", reasons: ["no user that can be read: no permissions"] }
const noPermissions: Effect.Effect<ReadonlySet<string>> = Effect.sync(() => new Set<string>())

const checkBackends = (backends: ReadonlyArray<AuthBackend.AuthBackend>): Effect.Effect<void, AuthError.AuthConfigError> => {
  if (backends.length === 0) {
    return Effect.fail(new AuthError.AuthConfigError({ message: "AuthService needs at least one backend" }))
  }
  const seen = new Set<string>()
  for (const backend of backends) {
    if (seen.has(backend.id)) {
      return Effect.fail(new AuthError.AuthConfigError({ message: `two backends share the id "${backend.id}"` }))
    }
    seen.add(backend.id)
  }
  return Effect.void
}

/**
 * How `authenticate` traces. Spans cost real time (tens of microseconds each under Effect's
 * built-in tracer, more than the rest of a login), so by default the fold makes them only where
 * somebody records them:
 *
 * - `"auto"` (default): when a recording tracer is installed (any tracer other than Effect's
 *   built-in one, e.g. `@effect/opentelemetry`'s, or one set with `Layer.setTracer` /
 *   `Effect.withTracer`), each call is one span `effect-auth.authenticate` with the attributes
 *   `auth.outcome`, `auth.backend` (on success) and `auth.attempts`, and one span event
 *   `effect-auth.attempt` per backend asked, with `auth.backend`, `auth.outcome` and, for a
 *   `NoMatch`, `auth.reason`. Under the built-in tracer alone (nobody exports its spans), or under
 *   `Effect.withTracerEnabled(false)`, the fold does no span work at all.
 * - `"call"`: that call span, whatever the tracer.
 * - `"attempts"`: the call span and, under it, a child span `effect-auth.backend.<id>` per attempt
 *   with `auth.backend`, `auth.outcome` and `auth.reason`; spans a backend makes nest under its
 *   attempt.
 * - `"off"`: no spans.
 *
 * Spans made by a backend itself (LDAP, HTTP clients) nest under the call span in every mode but
 * `"off"`.
 *
 * @example
 * ```ts
 * import { AuthService, TestBackend } from "effect-auth"
 *
 * const tracing: AuthService.Tracing = "attempts"
 * const service = AuthService.make([TestBackend.noMatch("local")], { tracing })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Tracing = "auto" | "call" | "attempts" | "off"

/**
 * @example
 * ```ts
 * import { AuthService, TestBackend } from "effect-auth"
 *
 * const options: AuthService.Options = { tracing: "off" }
 * const AuthLive = AuthService.layer([TestBackend.noMatch("local")], options)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly tracing?: Tracing | undefined
}

/**
 * Builds the service from backends, in order, each bare or with its control (see {@link control}).
 * Fails with `AuthConfigError` when the list is empty, two backends share an id, or a control is
 * not a preset or a valid map.
 *
 * @example
 * ```ts
 * import { AuthService, TestBackend } from "effect-auth"
 *
 * const service = AuthService.make([TestBackend.noMatch("a"), TestBackend.succeed("b", TestBackend.user("bob"))])
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  entries: ReadonlyArray<AuthBackend.AuthBackend | Control.Controlled<AuthBackend.AuthBackend>>,
  options: Options = {}
): Effect.Effect<Service, AuthError.AuthConfigError, AuthEvents.AuthEvents> => {
  // --- control maps (issue 12): only a non-default control selects the general interpreter ---
  const backends = entries.map((entry) => Control.isControlled(entry) ? entry.backend : entry)
  const controls = controlsOf(entries)
  if (controls !== undefined && controls._tag === "Left") return Effect.fail(controls.left)
  // ---
  return Effect.zipRight(
    checkBackends(backends),
    Effect.map(
      AuthEvents.AuthEvents,
      (events) => fromBackends(backends.map(compile), events, options.tracing ?? "auto", controls?.right)
    )
  )
}

/** The control maps of a chain, or `undefined` when every backend runs under the `django` preset. */
const controlsOf = (
  entries: ReadonlyArray<AuthBackend.AuthBackend | Control.Controlled<AuthBackend.AuthBackend>>
): Either.Either<ReadonlyArray<Control.ControlMap>, AuthError.AuthConfigError> | undefined => {
  if (!entries.some((entry) => Control.isControlled(entry) && entry.control !== "django")) return undefined
  const maps: Array<Control.ControlMap> = []
  for (const entry of entries) {
    if (!Control.isControlled(entry)) {
      maps.push(Control.django(entry.policy.onTransportError))
      continue
    }
    const checked = Control.validate(entry.control)
    if (Either.isLeft(checked)) return Either.left(checked.left)
    maps.push(Control.resolve(checked.right, entry.backend))
  }
  return Either.right(maps)
}

const outcomeOf = (exit: Exit.Exit<Authenticated, AuthError.AuthenticateError>): string =>
  Exit.isSuccess(exit)
    ? "success"
    : Option.match(Cause.failureOption(exit.cause), { onNone: () => "interrupted-or-defect", onSome: (e) => e._tag })

/** The state of one `authenticate` call, its credentials' decodings included (one object per call). */
class Call extends DecodeCache {
  attempts: Array<AuthError.Attempt> | undefined = undefined
  unavailable = false
  constructor(
    raw: unknown,
    readonly request: AuthRequest | undefined,
    readonly span: Tracer.Span | undefined,
    readonly clock: Clock.Clock | undefined,
    readonly traceAttempts: boolean
  ) {
    super(raw)
  }
  record(attempt: AuthError.Attempt): void {
    if (this.attempts === undefined) this.attempts = [attempt]
    else this.attempts.push(attempt)
  }
  event(backend: string, outcome: string, reason?: string): void {
    if (this.span === undefined) return
    const attributes: Record<string, unknown> = { "auth.backend": backend, "auth.outcome": outcome }
    if (reason !== undefined) attributes["auth.reason"] = reason
    this.span.event("effect-auth.attempt", this.clock!.unsafeCurrentTimeNanos(), attributes)
  }
}

const fromBackends = (
  compiled: ReadonlyArray<CompiledBackend>,
  events: AuthEvents.Service,
  tracing: Tracing,
  controls?: ReadonlyArray<Control.ControlMap>
): Service => {
  const byId = new Map(compiled.map((backend) => [backend.id, backend]))
  const count = compiled.length

  const loginFailed = (
    call: Call,
    error: AuthError.AuthenticationFailed | AuthError.BackendUnavailable | AuthError.PermissionDenied
  ) =>
    Effect.zipRight(
      events.publish(
        new AuthEvents.LoginFailed({ credentials: Credentials.cleanse(call.raw), request: forEvent(call.request), error })
      ),
      Exit.fail(error)
    )

  const nobodyMatched = (call: Call) => {
    const attempts = call.attempts ?? []
    return loginFailed(
      call,
      call.unavailable
        ? new AuthError.BackendUnavailable({ attempts })
        : new AuthError.AuthenticationFailed({ attempts: attempts as Array<AuthError.NoMatch> })
    )
  }

  /**
   * What one backend's answer means for the call: the call's result, or `undefined` to ask the
   * next backend. Django's rules: the first user wins, `PermissionDenied` stops, `NoMatch` goes
   * on, a `TransportError` fails the call or, under `"fallthrough"`, is recorded and skipped.
   */
  const settle = (
    call: Call,
    backend: CompiledBackend,
    exit: Exit.Exit<User, AuthError.BackendError>
  ): Effect.Effect<Authenticated, AuthError.AuthenticateError> | undefined => {
    if (exit._tag === "Success") {
      call.event(backend.id, "success")
      return Exit.succeed(authenticated(exit.value, backend.id, call.unavailable))
    }
    const cause = exit.cause
    const error = cause._tag === "Fail" ? cause.error : Option.getOrUndefined(Cause.failureOption(cause))
    // An interruption or a defect is not an outcome: it ends the call as it is.
    if (error === undefined) return exit as Exit.Exit<never>
    switch (error._tag) {
      case "NoMatch":
        call.event(backend.id, "no-match", error.reason)
        call.record(error)
        return undefined
      case "PermissionDenied":
        call.event(backend.id, "permission-denied")
        return loginFailed(call, error)
      case "TransportError":
        call.event(backend.id, "transport-error")
        if (backend.onTransportError === "fail") return Exit.fail(RefusedSecret.escaping(call.attempts, error))
        call.record(error)
        call.unavailable = true
        return undefined
    }
  }

  // The fold itself: a plain loop while backends answer with `Exit`s (prebuilt failures,
  // `Effect.succeed`), one fiber step for a backend that must run.
  const fold = (call: Call, from: number): Effect.Effect<Authenticated, AuthError.AuthenticateError> => {
    for (let index = from; index < count; index++) {
      const backend = compiled[index]!
      const attempt = call.traceAttempts
        ? backend.authenticateTraced(call, call.request)
        : backend.authenticate(call, call.request)
      if (AuthAttempt.isExit(attempt)) {
        const settled = settle(call, backend, attempt)
        if (settled !== undefined) return settled
        continue
      }
      const next = index + 1
      return Effect.matchCauseEffect(attempt, {
        onFailure: (cause) => settle(call, backend, Exit.failCause(cause)) ?? fold(call, next),
        onSuccess: (user) => settle(call, backend, Exit.succeed(user))!
      })
    }
    return nobodyMatched(call)
  }

  // --- control maps (issue 12): the general interpreter, only when some control is not `django` ---
  const run = controls === undefined ? fold : ControlFold.make(compiled, controls, {
    succeed: authenticated,
    loginFailed,
    nobodyMatched
  })
  // ---

  const spanOptions = { captureStackTrace: false, kind: "internal" } as const

  const traced = (
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    credentials: unknown,
    request: AuthRequest | undefined,
    traceAttempts: boolean
  ) => {
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    // The span ends without the user: the user object is the app's (see `useValueFreeSpan`).
    return useValueFreeSpan("effect-auth.authenticate", spanOptions, (span) => {
      const call = new Call(credentials, request, span, clock, traceAttempts)
      return Effect.onExit(
        Effect.withParentSpan(Effect.suspend(() => run(call, 0)), span),
        (exit) => {
          span.attribute("auth.outcome", outcomeOf(exit))
          span.attribute("auth.attempts", (call.attempts?.length ?? 0) + (Exit.isSuccess(exit) ? 1 : 0))
          if (Exit.isSuccess(exit)) span.attribute("auth.backend", exit.value.backend)
          if (Exit.isSuccess(exit) && exit.value.degraded === true) span.attribute("auth.degraded", true)
          return Effect.void
        }
      )
    })
  }

  const untraced = (credentials: unknown, request: AuthRequest | undefined) =>
    run(new Call(credentials, request, undefined, undefined, false), 0)

  // The fold in a running fiber (see `internal/authAttempt`): `authenticate` is this in one step.
  const attempt: AuthAttempt.Attempt = tracing === "off"
    ? (_fiber, credentials, request) => untraced(credentials, request)
    : tracing === "auto"
    ? (fiber, credentials, request) =>
      isRecording(fiber) ? traced(fiber, credentials, request, false) : untraced(credentials, request)
    : (fiber, credentials, request) =>
      tracerEnabled(fiber)
        ? traced(fiber, credentials, request, tracing === "attempts")
        : untraced(credentials, request)

  const authenticate: Service["authenticateUnknown"] = (credentials, request) =>
    Effect.withFiberRuntime((fiber) => attempt(fiber, credentials, request))

  // How an explanation names the object asked about: `contentType:objectPk` for an object
  // permission reference (ObjectPermissions.ObjectRef), the value for a string or number, and
  // "an object" for anything else, one that cannot be read included (an untyped caller's Proxy
  // whose traps throw).
  const describeObject = (obj: unknown): string | undefined => {
    if (obj === undefined || obj === null) return undefined
    if (typeof obj === "string" || typeof obj === "number") return String(obj)
    try {
      const { contentType, objectPk } = obj as { readonly contentType?: unknown; readonly objectPk?: unknown }
      return typeof contentType === "string" && typeof objectPk === "string" ? `${contentType}:${objectPk}` : "an object"
    } catch {
      return "an object"
    }
  }

  const withHasPerm = compiled.filter((b) => b.backend.hasPerm !== undefined)
  const withModulePerms = compiled.filter((b) => b.backend.hasModulePerms !== undefined)
  const withAllPermissions = compiled.filter((b) => b.backend.getAllPermissions !== undefined)
  const withUserPermissions = compiled.filter((b) => b.backend.getUserPermissions !== undefined)
  const withGroupPermissions = compiled.filter((b) => b.backend.getGroupPermissions !== undefined)

  // Every question reads the user when it runs, not when it is made: an effect kept and run again
  // (a periodic re-check, a retry) sees a superuser demoted or a user deactivated since.
  const hasPerm = (user: User, perm: string, obj?: unknown): Effect.Effect<boolean, AuthError.TransportError> =>
    Effect.suspend(() => hasPermNow(user, perm, obj))
  const hasPermNow = (user: User, perm: string, obj?: unknown): Effect.Effect<boolean, AuthError.TransportError> => {
    // (an untyped caller's `null` user, or one that throws when read, holds nothing: refused,
    // never a defect)
    const superuser = readUser(user)
    if (superuser === undefined) return Effect.succeed(false)
    if (superuser) return Effect.succeed(true)
    if (!isPermission(perm)) return Effect.succeed(false)
    return Permissions.cached(
      user,
      `perm:${perm}`,
      obj,
      Permissions.firstGrant(withHasPerm, (b) => b.guard(b.backend.hasPerm!(user, perm, obj)))
    )
  }

  // The fold of `hasPerm`, step by step: the first grant decides, a PermissionDenied stops with
  // false, a TransportError fails the question as it fails `hasPerm`.
  const explain = (user: User, perm: string, obj?: unknown): Effect.Effect<Permissions.Explanation, AuthError.TransportError> =>
    Effect.suspend(() => explainNow(user, perm, obj))
  const explainNow = (user: User, perm: string, obj?: unknown): Effect.Effect<Permissions.Explanation, AuthError.TransportError> => {
    const superuser = readUser(user)
    const username = superuser === undefined ? "" : usernameOf(user)
    const explanation = (granted: boolean, decidedBy: string | undefined, steps: ReadonlyArray<Permissions.Step>) => ({
      username,
      perm,
      object: describeObject(obj),
      granted,
      decidedBy,
      steps
    })
    if (superuser === undefined) return Effect.succeed(explanation(false, undefined, [noUserStep]))
    if (superuser) {
      return Effect.succeed(explanation(true, "superuser", [{ backend: "superuser", answer: "grant", reasons: ["active superuser: every permission"] }]))
    }
    if (!isPermission(perm)) return Effect.succeed(explanation(false, undefined, []))
    return askFrom(0, [])
    function askFrom(i: number, steps: Array<Permissions.Step>): Effect.Effect<Permissions.Explanation, AuthError.TransportError> {
      if (i >= withHasPerm.length) return Effect.succeed(explanation(false, undefined, steps))
      const b = withHasPerm[i]!
      const account: Effect.Effect<Permissions.Account, AuthError.PermissionDenied | AuthError.TransportError> =
        b.backend.explainPerm !== undefined
          ? b.backend.explainPerm(user, perm, obj)
          : Effect.map(b.backend.hasPerm!(user, perm, obj), (granted) => ({ granted, reasons: [] }))
      return Effect.matchEffect(b.guard(account), {
        onFailure: (error) => {
          if (error._tag !== "PermissionDenied") return Effect.fail(error)
          steps.push({ backend: b.id, answer: "deny", reasons: [error.reason] })
          return Effect.succeed(explanation(false, b.id, steps))
        },
        onSuccess: ({ granted, reasons }) => {
          steps.push({ backend: b.id, answer: granted ? "grant" : "abstain", reasons })
          return granted ? Effect.succeed(explanation(true, b.id, steps)) : askFrom(i + 1, steps)
        }
      })
    }
  }

  const hasPerms = (user: User, perms: Iterable<string>, obj?: unknown) => {
    // Django raises ValueError for a str (`Iterable<string>` here: its characters, and "" none at
    // all, so true for anybody) and for what is not iterable: refused, never granted nor thrown.
    // Read once, at the call (the effect may run again; a generator would be spent by then), and
    // at most `maxPermsAsked` of them: a longer list (an endless generator) is refused. An iterable
    // that throws while read is refused too, and so is a Proxy whose traps throw, which throws as
    // soon as it is asked whether it is iterable (`Symbol.iterator in perms`).
    let read: ReadonlyArray<unknown> | undefined
    try {
      read = collectionWithin(perms, maxPermsAsked)
    } catch {
      return Effect.succeed(false)
    }
    if (read === undefined) return Effect.succeed(false)
    // (an item that is no permission string is refused by `hasPerm` itself)
    const list = read as ReadonlyArray<string>
    const step = (i: number): Effect.Effect<boolean, AuthError.TransportError> =>
      i >= list.length
        ? Effect.succeed(true)
        : Effect.flatMap(hasPerm(user, list[i]!, obj), (granted) => granted ? step(i + 1) : Effect.succeed(false))
    return step(0)
  }

  const hasModulePerms = (user: User, appLabel: string): Effect.Effect<boolean, AuthError.TransportError> =>
    Effect.suspend(() => hasModulePermsNow(user, appLabel))
  const hasModulePermsNow = (user: User, appLabel: string): Effect.Effect<boolean, AuthError.TransportError> => {
    const superuser = readUser(user)
    if (superuser === undefined) return Effect.succeed(false)
    if (superuser) return Effect.succeed(true)
    if (!isAppLabel(appLabel)) return Effect.succeed(false)
    return Permissions.cached(
      user,
      `module:${appLabel}`,
      undefined,
      Permissions.firstGrant(withModulePerms, (b) => b.guard(b.backend.hasModulePerms!(user, appLabel)))
    )
  }

  const getAllPermissions = (user: User, obj?: unknown) =>
    Effect.suspend(() => readUser(user) === undefined ? noPermissions : Permissions.cached(
      user,
      "all",
      obj,
      Permissions.union(withAllPermissions, (b) => b.guard(b.backend.getAllPermissions!(user, obj)))
    ))

  // Django's PermissionsMixin asks every backend that has the method, superusers included.
  const getUserPermissions = (user: User, obj?: unknown) =>
    Effect.suspend(() => readUser(user) === undefined ? noPermissions : Permissions.cached(
      user,
      "user",
      obj,
      Permissions.union(withUserPermissions, (b) => b.guard(b.backend.getUserPermissions!(user, obj)))
    ))

  const getGroupPermissions = (user: User, obj?: unknown) =>
    Effect.suspend(() => readUser(user) === undefined ? noPermissions : Permissions.cached(
      user,
      "group",
      obj,
      Permissions.union(withGroupPermissions, (b) => b.guard(b.backend.getGroupPermissions!(user, obj)))
    ))

  return AuthAttempt.register({
    backendIds: compiled.map((b) => b.id),
    backend: (id) => Option.map(Option.fromNullable(byId.get(id)), (b) => b.backend),
    authenticate,
    authenticateUnknown: authenticate,
    getUser: (backendId, userId) => {
      const backend = byId.get(backendId)
      return backend === undefined || !isUserId(userId) ? Effect.succeedNone : backend.getUser(userId)
    },
    hasPerm,
    explain,
    hasPerms,
    hasModulePerms,
    getAllPermissions,
    getUserPermissions,
    getGroupPermissions
  }, attempt)
}

/**
 * A backend as `AuthService.layer` takes it: the backend itself, or an effect that produces it
 * (its `Context.Tag`, or a constructor that needs services).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, TestBackend } from "effect-auth"
 *
 * const inputs: ReadonlyArray<AuthService.BackendInput> = [
 *   TestBackend.noMatch("a value"),
 *   Effect.sync(() => TestBackend.noMatch("built by an effect"))
 * ]
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type BackendInput =
  | AuthBackend.AuthBackend
  | Effect.Effect<AuthBackend.AuthBackend, never, any>
  | Control.Controlled<AuthBackend.AuthBackend | Effect.Effect<AuthBackend.AuthBackend, never, any>>

/**
 * The services the backends of a list need (their Tags and the requirements of their effects).
 *
 * @example
 * ```ts
 * import type { AuthService } from "effect-auth"
 * import type * as JwtBackend from "effect-auth/backends/JwtBackend"
 * import type * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * // LdapBackend | JwtBackend: the layers `AuthService.layer([LdapBackend, JwtBackend])` needs
 * type Needs = AuthService.BackendsContext<[typeof LdapBackend.LdapBackend, typeof JwtBackend.JwtBackend]>
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type BackendsContext<Backends extends ReadonlyArray<BackendInput>> = Backends[number] extends infer B
  ? B extends Control.Controlled<infer Inner> ? Inner extends Effect.Effect<any, any, infer R> ? R : never
  : B extends Effect.Effect<any, any, infer R> ? R
  : never
  : never

/**
 * Resolves a list of backends given as values or effects, in order.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, TestBackend } from "effect-auth"
 *
 * const ids = AuthService.resolveBackends([
 *   TestBackend.noMatch("a"),
 *   Effect.sync(() => TestBackend.noMatch("b"))
 * ]).pipe(Effect.map((backends) => backends.map((backend) => backend.id)))
 *
 * Effect.runSync(ids) // ["a", "b"]
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveBackends = <const Backends extends ReadonlyArray<BackendInput>>(
  backends: Backends
): Effect.Effect<ReadonlyArray<AuthBackend.AuthBackend>, never, BackendsContext<Backends>> =>
  // The requirements are tracked by the signature; inside, each element's are erased to `any`.
  Effect.forEach(
    backends as ReadonlyArray<BackendInput>,
    (backend): Effect.Effect<AuthBackend.AuthBackend, never, any> =>
      Control.isControlled(backend)
        ? resolveOne(backend.backend)
        : resolveOne(backend)
  )

const resolveOne = (
  backend: AuthBackend.AuthBackend | Effect.Effect<AuthBackend.AuthBackend, never, any>
): Effect.Effect<AuthBackend.AuthBackend, never, any> => Effect.isEffect(backend) ? backend : Effect.succeed(backend)

/** The list resolved with each backend's control kept (`make` reads it). */
const resolveEntries = (
  backends: ReadonlyArray<BackendInput>
): Effect.Effect<ReadonlyArray<AuthBackend.AuthBackend | Control.Controlled<AuthBackend.AuthBackend>>, never, any> =>
  Effect.forEach(
    backends,
    (entry): Effect.Effect<AuthBackend.AuthBackend | Control.Controlled<AuthBackend.AuthBackend>, never, any> =>
      Control.isControlled(entry)
        ? Effect.map(resolveOne(entry.backend), (backend) => Control.controlled(backend, entry.control))
        : resolveOne(entry)
  )

/**
 * Gives a backend of the list its control (see the `Control` module): a preset's name
 * (`"required"`, `"requisite"`, `"sufficient"`, `"optional"`, `"django"`) or a map from each
 * outcome to an action. A backend given without one runs under `"django"`, today's fold; while
 * every backend does, the fold is the default one, unchanged. Data-last in a pipe.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { AuthEvents, AuthService, Control, TestBackend } from "effect-auth"
 *
 * const AuthLive = AuthService.layer([
 *   AuthService.control(TestBackend.noMatch("directory"), "sufficient"),
 *   AuthService.control(TestBackend.noMatch("password"), "required"),
 *   AuthService.control(TestBackend.noMatch("totp"), { ...Control.required, TransportError: "continue" })
 * ]).pipe(Layer.provide(AuthEvents.layer))
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const control: {
  (control: Control.Control): <B extends AuthBackend.AuthBackend | Effect.Effect<AuthBackend.AuthBackend, never, any>>(
    backend: B
  ) => Control.Controlled<B>
  <B extends AuthBackend.AuthBackend | Effect.Effect<AuthBackend.AuthBackend, never, any>>(
    backend: B,
    control: Control.Control
  ): Control.Controlled<B>
} = Control.controlled

/**
 * The `AuthService` layer over an ordered list of backends. Each backend is given as a value or
 * as an effect that produces it, so a backend's own Tag can be passed, and a test can swap a
 * backend by providing another layer for that Tag.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { AuthEvents, AuthService, TestBackend } from "effect-auth"
 *
 * const AuthLive = AuthService.layer([
 *   TestBackend.noMatch("first"),
 *   TestBackend.succeed("second", TestBackend.user("alice"))
 * ]).pipe(Layer.provideMerge(AuthEvents.layer))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const Backends extends ReadonlyArray<BackendInput>>(
  backends: Backends,
  options: Options = {}
): Layer.Layer<AuthService, AuthError.AuthConfigError, BackendsContext<Backends> | AuthEvents.AuthEvents> =>
  Layer.effect(AuthService, Effect.flatMap(resolveEntries(backends), (resolved) => make(resolved, options)))

/**
 * Authenticates with the `AuthService` in context.
 *
 * @example
 * ```ts
 * import { AuthService } from "effect-auth"
 *
 * const login = AuthService.authenticate({ username: "alice", password: "wonderland" })
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const authenticate = (
  credentials: Credentials.Input,
  request?: AuthRequest
): Effect.Effect<Authenticated, AuthError.AuthenticateError, AuthService> =>
  Effect.flatMap(AuthService, (service) => service.authenticate(credentials, request))

/**
 * Authenticates input of unknown shape (a parsed request body) with the `AuthService` in context:
 * every backend decodes it with its own Schema.
 *
 * @example
 * ```ts
 * import { AuthService } from "effect-auth"
 *
 * const fromBody = (body: unknown) => AuthService.authenticateUnknown(body)
 * ```
 *
 * @since 0.2.0
 * @category accessors
 */
export const authenticateUnknown = (
  input: unknown,
  request?: AuthRequest
): Effect.Effect<Authenticated, AuthError.AuthenticateError, AuthService> =>
  Effect.flatMap(AuthService, (service) => service.authenticateUnknown(input, request))

/**
 * Loads a user through the backend that issued the id.
 *
 * @example
 * ```ts
 * import { AuthService } from "effect-auth"
 *
 * const user = AuthService.getUser("model", "42")
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const getUser = (
  backendId: string,
  userId: string
): Effect.Effect<Option.Option<User>, AuthError.TransportError, AuthService> =>
  Effect.flatMap(AuthService, (service) => service.getUser(backendId, userId))

/**
 * Why the user has (or has not) the permission: `hasPerm`'s decision and the trail of the fold,
 * with the `AuthService` in context.
 *
 * @example
 * ```ts
 * import { Console, Effect } from "effect"
 * import { AuthService, Permissions } from "effect-auth"
 *
 * const why = (user: AuthService.User) =>
 *   AuthService.explain(user, "reports.view_report").pipe(
 *     Effect.flatMap((explanation) => Console.log(Permissions.describe(explanation).join("\n")))
 *   )
 * ```
 *
 * @since 0.2.0
 * @category accessors
 */
export const explain = (
  user: User,
  perm: string,
  obj?: unknown
): Effect.Effect<Permissions.Explanation, AuthError.TransportError, AuthService> =>
  Effect.flatMap(AuthService, (service) => service.explain(user, perm, obj))

/**
 * Whether the user has the permission, with the `AuthService` in context.
 *
 * @example
 * ```ts
 * import { AuthService } from "effect-auth"
 *
 * const canPublish = (user: AuthService.User) => AuthService.hasPerm(user, "blog.publish_post")
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const hasPerm = (
  user: User,
  perm: string,
  obj?: unknown
): Effect.Effect<boolean, AuthError.TransportError, AuthService> =>
  Effect.flatMap(AuthService, (service) => service.hasPerm(user, perm, obj))

/**
 * Django's `user.get_user_permissions(obj)`: the permissions the user holds directly, the union
 * over every backend that answers the question (the model backend: the user's own permissions;
 * every permission for an active superuser; none for an inactive user or an object).
 *
 * @example
 * ```ts
 * import { AuthService } from "effect-auth"
 *
 * const own = (user: AuthService.User) => AuthService.getUserPermissions(user)
 * ```
 *
 * @since 0.3.0
 * @category accessors
 */
export const getUserPermissions = (
  user: User,
  obj?: unknown
): Effect.Effect<ReadonlySet<string>, AuthError.PermissionDenied | AuthError.TransportError, AuthService> =>
  Effect.flatMap(AuthService, (service) => service.getUserPermissions(user, obj))

/**
 * Django's `user.get_group_permissions(obj)`: the permissions the user holds through its groups,
 * the union over every backend that answers the question.
 *
 * @example
 * ```ts
 * import { AuthService } from "effect-auth"
 *
 * const viaGroups = (user: AuthService.User) => AuthService.getGroupPermissions(user)
 * ```
 *
 * @since 0.3.0
 * @category accessors
 */
export const getGroupPermissions = (
  user: User,
  obj?: unknown
): Effect.Effect<ReadonlySet<string>, AuthError.PermissionDenied | AuthError.TransportError, AuthService> =>
  Effect.flatMap(AuthService, (service) => service.getGroupPermissions(user, obj))

/**
 * Django's `user.get_all_permissions(obj)`, with the `AuthService` in context: the union over every
 * backend that answers it.
 *
 * @example
 * ```ts
 * import { AuthService } from "effect-auth"
 *
 * const everything = (user: AuthService.User) => AuthService.getAllPermissions(user)
 * ```
 *
 * @since 0.3.0
 * @category accessors
 */
export const getAllPermissions = (
  user: User,
  obj?: unknown
): Effect.Effect<ReadonlySet<string>, AuthError.PermissionDenied | AuthError.TransportError, AuthService> =>
  Effect.flatMap(AuthService, (service) => service.getAllPermissions(user, obj))

/**
 * Django's `user.has_module_perms(app_label)`, with the `AuthService` in context.
 *
 * @example
 * ```ts
 * import { AuthService } from "effect-auth"
 *
 * const seesBlog = (user: AuthService.User) => AuthService.hasModulePerms(user, "blog")
 * ```
 *
 * @since 0.3.0
 * @category accessors
 */
export const hasModulePerms = (
  user: User,
  appLabel: string
): Effect.Effect<boolean, AuthError.TransportError, AuthService> =>
  Effect.flatMap(AuthService, (service) => service.hasModulePerms(user, appLabel))
