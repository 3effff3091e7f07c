/**
 * Scripted backends for tests: each one behaves as told (succeed, no match, deny, fail, hang),
 * records the credentials it was asked with, and can answer permission questions. An app that
 * depends on `AuthService` tests its own code with them, without any external system.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { AuthService, TestAuth, TestBackend } from "effect-auth"
 *
 * const ldap = TestBackend.unavailable("ldap", "connection refused", { onTransportError: "fallthrough" })
 * const local = TestBackend.passwords("local", [{ user: TestBackend.user("alice"), password: "pw" }])
 *
 * const test = AuthService.authenticate({ username: "alice", password: "pw" }).pipe(
 *   Effect.provide(TestAuth.layer([ldap, local]))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import * as Credentials from "../Credentials.js"
import * as Permissions from "../Permissions.js"
import type { BaseUser, User } from "../User.js"

/**
 * What a scripted backend does on one call to `authenticate`.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const behaviour: TestBackend.Behaviour = { _tag: "Deny", reason: "locked out" }
 * const locked = TestBackend.make("locked", { behaviour })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Behaviour =
  | { readonly _tag: "Succeed"; readonly user: User }
  | { readonly _tag: "NoMatch"; readonly reason: AuthError.NoMatchReason }
  | { readonly _tag: "Deny"; readonly reason: string }
  | { readonly _tag: "Unavailable"; readonly cause: string }
  | { readonly _tag: "Hang" }

/**
 * Behaviour constructors.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const flaky = TestBackend.scripted("flaky", [TestBackend.Behaviour.unavailable("reset"), TestBackend.Behaviour.succeed(TestBackend.user("bob"))])
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const Behaviour = {
  succeed: (user: User): Behaviour => ({ _tag: "Succeed", user }),
  noMatch: (reason: AuthError.NoMatchReason = "invalid-credentials"): Behaviour => ({ _tag: "NoMatch", reason }),
  deny: (reason = "denied"): Behaviour => ({ _tag: "Deny", reason }),
  unavailable: (cause = "unavailable"): Behaviour => ({ _tag: "Unavailable", cause }),
  hang: { _tag: "Hang" } as Behaviour
} as const

/**
 * A user with the base fields; `id` defaults to the username.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const admin = TestBackend.user("admin", { isSuperuser: true })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const user = (username: string, fields: Partial<BaseUser> = {}): BaseUser => ({
  id: username,
  username,
  isActive: true,
  isSuperuser: false,
  ...fields
})

/**
 * A backend built by this module: an `AuthBackend` that also tells what it was asked.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthService, TestAuth, TestBackend } from "effect-auth"
 *
 * const local: TestBackend.TestBackend = TestBackend.noMatch("local")
 *
 * const program = AuthService.authenticate({ username: "alice", password: "pw" }).pipe(
 *   Effect.ignore,
 *   Effect.provide(TestAuth.layer([local])),
 *   Effect.map(() => local.calls) // [{ username: "alice", password: "pw" }]
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface TestBackend extends AuthBackend.AuthBackend {
  /** The decoded credentials of every `authenticate` call, in order. */
  readonly calls: ReadonlyArray<unknown>
  /** Every permission question asked (`perm`, `module:<app>` or `all`), in order. */
  readonly permissionCalls: ReadonlyArray<string>
}

/**
 * Permission answers of a test backend: `true` grants, `"deny"` vetoes (PermissionDenied),
 * `false` does not grant. A method left out is one the backend does not have.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const permissions: TestBackend.PermissionScript = {
 *   hasPerm: (user, perm) => perm === "blog.delete_post" ? "deny" : perm.startsWith("blog."),
 *   getAllPermissions: () => ["blog.add_post", "blog.change_post"]
 * }
 * const editor = TestBackend.make("editor", { behaviour: TestBackend.Behaviour.noMatch(), permissions })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface PermissionScript {
  readonly hasPerm?: ((user: User, perm: string, obj: unknown) => boolean | "deny") | undefined
  readonly hasModulePerms?: ((user: User, appLabel: string) => boolean | "deny") | undefined
  readonly getAllPermissions?: ((user: User, obj: unknown) => ReadonlyArray<string> | "deny") | undefined
}

/**
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const options: TestBackend.Options = {
 *   behaviour: [TestBackend.Behaviour.unavailable("reset"), TestBackend.Behaviour.succeed(TestBackend.user("bob"))],
 *   users: [TestBackend.user("bob")],
 *   policy: { onTransportError: "fallthrough" }
 * }
 * const flaky = TestBackend.make("flaky", options)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** A fixed behaviour, or one per call (the last repeats), or a function of the credentials. */
  readonly behaviour: Behaviour | ReadonlyArray<Behaviour> | ((credentials: unknown, call: number) => Behaviour)
  /** Default: any record of string keys. */
  readonly credentials?: Schema.Schema<any, any> | undefined
  /** Users `getUser` can load. */
  readonly users?: ReadonlyArray<User> | undefined
  readonly permissions?: PermissionScript | undefined
  readonly policy?: AuthBackend.PolicyInput | undefined
}

const AnyCredentials = Schema.Record({ key: Schema.String, value: Schema.Unknown })

const pick = (behaviour: Options["behaviour"], credentials: unknown, call: number): Behaviour => {
  if (typeof behaviour === "function") return behaviour(credentials, call)
  if (Array.isArray(behaviour)) return behaviour[Math.min(call, behaviour.length - 1)] ?? Behaviour.noMatch()
  return behaviour as Behaviour
}

const run = (id: string, behaviour: Behaviour): Effect.Effect<User, AuthError.BackendError> => {
  switch (behaviour._tag) {
    case "Succeed":
      return Effect.succeed(behaviour.user)
    case "NoMatch":
      return AuthError.failures(id).noMatch(behaviour.reason)
    case "Deny":
      return AuthError.failures(id).permissionDenied(behaviour.reason)
    case "Unavailable":
      return AuthError.failures(id).transportError(behaviour.cause)
    case "Hang":
      return Effect.never
  }
}

/**
 * A scripted backend.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const backend = TestBackend.make("scripted", {
 *   behaviour: (credentials, call) => call === 0 ? TestBackend.Behaviour.noMatch() : TestBackend.Behaviour.deny("locked")
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (id: string, options: Options): TestBackend => {
  const calls: Array<unknown> = []
  const permissionCalls: Array<string> = []
  const users = options.users ?? []
  const script = options.permissions ?? {}
  const veto = (what: string) => new AuthError.PermissionDenied({ backend: id, reason: `vetoed ${what}` })
  const ask = <A>(what: string, answer: () => A | "deny"): Effect.Effect<A, AuthError.PermissionDenied> =>
    Effect.suspend(() => {
      permissionCalls.push(what)
      const result = answer()
      return result === "deny" ? Effect.fail(veto(what)) : Effect.succeed(result)
    })
  const { getAllPermissions, hasModulePerms, hasPerm } = script
  const backend = AuthBackend.make({
    id,
    credentials: options.credentials ?? AnyCredentials,
    authenticate: (credentials) =>
      Effect.suspend(() => {
        calls.push(credentials)
        return run(id, pick(options.behaviour, credentials, calls.length - 1))
      }),
    getUser: (userId) => Effect.sync(() => Option.fromNullable(users.find((u) => u.id === userId))),
    policy: options.policy,
    ...(hasPerm && { hasPerm: (u: User, perm: string, obj?: unknown) => ask(perm, () => hasPerm(u, perm, obj)) }),
    ...(hasModulePerms && {
      hasModulePerms: (u: User, appLabel: string) => ask(`module:${appLabel}`, () => hasModulePerms(u, appLabel))
    }),
    ...(getAllPermissions && {
      getAllPermissions: (u: User, obj?: unknown) =>
        ask("all", () => {
          const perms = getAllPermissions(u, obj)
          return perms === "deny" ? perms : new Set(perms) as ReadonlySet<string>
        })
    })
  })
  return Object.assign(backend, { calls, permissionCalls })
}

/**
 * Succeeds with the user on every call.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const sso = TestBackend.succeed("sso", TestBackend.user("alice"))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const succeed = (id: string, u: User, policy?: AuthBackend.PolicyInput): TestBackend =>
  make(id, { behaviour: Behaviour.succeed(u), users: [u], policy })

/**
 * Fails with `NoMatch` on every call.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const expired = TestBackend.noMatch("jwt", "expired-credentials")
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const noMatch = (id: string, reason: AuthError.NoMatchReason = "invalid-credentials"): TestBackend =>
  make(id, { behaviour: Behaviour.noMatch(reason) })

/**
 * Fails with `PermissionDenied` on every call.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const lockout = TestBackend.deny("lockout", "too many attempts")
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const deny = (id: string, reason = "denied"): TestBackend => make(id, { behaviour: Behaviour.deny(reason) })

/**
 * Fails with `TransportError` on every call; pass `{ onTransportError: "fallthrough" }` to be skipped.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const ldapDown = TestBackend.unavailable("ldap", "connection refused", { onTransportError: "fallthrough" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const unavailable = (id: string, cause = "unavailable", policy?: AuthBackend.PolicyInput): TestBackend =>
  make(id, { behaviour: Behaviour.unavailable(cause), policy })

/**
 * Never answers: only its policy's timeout ends a call.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const slow = TestBackend.hang("slow", { timeout: "100 millis", onTransportError: "fallthrough" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const hang = (id: string, policy?: AuthBackend.PolicyInput): TestBackend =>
  make(id, { behaviour: Behaviour.hang, policy })

/**
 * One behaviour per call, in order; the last one repeats.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const flaky = TestBackend.scripted("flaky", [
 *   TestBackend.Behaviour.unavailable("reset"),
 *   TestBackend.Behaviour.succeed(TestBackend.user("bob"))
 * ])
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const scripted = (
  id: string,
  behaviours: ReadonlyArray<Behaviour>,
  policy?: AuthBackend.PolicyInput
): TestBackend => make(id, { behaviour: behaviours, policy })

/**
 * A user in a {@link passwords} backend.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const entry: TestBackend.PasswordEntry = {
 *   user: TestBackend.user("alice"),
 *   password: "wonderland",
 *   permissions: ["blog.add_post"]
 * }
 * const local = TestBackend.passwords("local", [entry])
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface PasswordEntry {
  readonly user: User
  readonly password: string
  readonly permissions?: ReadonlyArray<string> | undefined
}

/**
 * An in-memory username/password backend with permissions, behaving like Django's model backend:
 * unknown user and wrong password are `NoMatch`, inactive users do not log in and hold no
 * permissions, object permissions are not its business.
 *
 * @example
 * ```ts
 * import { TestBackend } from "effect-auth"
 *
 * const local = TestBackend.passwords("local", [
 *   { user: TestBackend.user("alice"), password: "wonderland", permissions: ["blog.add_post"] }
 * ])
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const passwords = (id: string, entries: ReadonlyArray<PasswordEntry>): AuthBackend.AuthBackend => {
  const byUsername = new Map(entries.map((entry) => [entry.user.username, entry]))
  const byId = new Map(entries.map((entry) => [entry.user.id, entry]))
  const permissionsOf = (u: User, obj: unknown): ReadonlySet<string> =>
    !u.isActive || obj !== undefined ? new Set() : new Set(byId.get(u.id)?.permissions ?? [])
  return AuthBackend.make({
    id,
    credentials: Credentials.UsernamePassword,
    authenticate: ({ password, username }) => {
      const entry = byUsername.get(username)
      if (entry === undefined) return AuthError.noMatch(id, "unknown-user")
      if (entry.password !== Redacted.value(password)) {
        return AuthError.noMatch(id, "invalid-credentials")
      }
      if (!entry.user.isActive) return AuthError.noMatch(id, "inactive-user")
      return Effect.succeed(entry.user)
    },
    getUser: (userId) => Effect.sync(() => Option.fromNullable(byId.get(userId)?.user).pipe(Option.filter((u) => u.isActive))),
    hasPerm: (u, perm, obj) => Effect.sync(() => permissionsOf(u, obj).has(perm)),
    hasModulePerms: (u, appLabel) =>
      Effect.sync(() => {
        for (const perm of permissionsOf(u, undefined)) {
          if (Option.getOrUndefined(Permissions.appLabel(perm)) === appLabel) return true
        }
        return false
      }),
    getAllPermissions: (u, obj) => Effect.sync(() => permissionsOf(u, obj))
  })
}
