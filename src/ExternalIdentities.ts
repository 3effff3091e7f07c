/**
 * Which local user an external identity is: bindings of `(provider, subject)` to a local user id,
 * django-allauth's `SocialAccount(provider, uid) -> user`.
 *
 * A provider's `preferred_username` (GitLab, a GitHub login, Azure AD's UPN, Keycloak with
 * editable usernames) may be chosen by the user, or released and taken by someone else; only the
 * subject (OIDC's `sub`, with the issuer) is stable and never reassigned (OIDC Core 5.7). Once a
 * login has bound its subject to a local user, `Provisioning` finds that user by the binding, not
 * by the name the provider sends, and refuses another subject presenting the same name (see
 * `Provisioning.Options.identities`; `OidcBackend` requires this service).
 *
 * A binding is one row per `(provider, subject)`, and a user has at most one subject per
 * provider. `bind` is atomic and never overwrites: of two concurrent binds of one subject (or of
 * one user), exactly one succeeds. `unbind` is for admins: account recovery, or a user who moved
 * to another account at the provider (their next login binds the new subject). `SqlExternalIdentities`
 * keeps the bindings in SQLite or PostgreSQL; {@link layerMemory} in this process (tests, one
 * instance). The stores of this library never reuse a user id, but Django's `flush` restarts
 * `auth_user`'s ids and leaves the bindings: `SqlExternalIdentities` records when each binding
 * was made (`boundAt`), and `Provisioning` removes a binding whose user joined after it. A user
 * store of your own that reuses ids must `unbind` a user it deletes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ExternalIdentities } from "effect-auth"
 *
 * // an admin's account recovery: alice's next login through the provider binds its subject anew
 * const recover = (userId: string) =>
 *   Effect.flatMap(ExternalIdentities.ExternalIdentities, (identities) =>
 *     identities.unbind("https://sso.example.com/realms/staff", userId))
 * ```
 *
 * @since 0.3.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { isUserId } from "./internal/userId.js"
import { checker, refuse, userIdMessage } from "./internal/checkedInput.js"
import { isStorable } from "./internal/wellFormed.js"

/**
 * A store operation that failed: the database could not be reached or answered garbage, or the
 * input was none a store can hold (see {@link make}). A backend turns it into a `TransportError`.
 *
 * @example
 * ```ts
 * import { ExternalIdentities } from "effect-auth"
 *
 * const error = new ExternalIdentities.ExternalIdentitiesError({ operation: "find", message: "the database did not answer" })
 * ```
 *
 * @since 0.3.0
 * @category errors
 */
export class ExternalIdentitiesError extends Schema.TaggedError<ExternalIdentitiesError>(
  "effect-auth/ExternalIdentitiesError"
)(
  "ExternalIdentitiesError",
  { operation: Schema.String, message: Schema.String }
) {}

/**
 * What a store offers. `provider` is the namespace of the subjects (`OidcBackend` uses its
 * issuer); every store checks its input first (see {@link make}): what it cannot hold alike on
 * every engine is an {@link ExternalIdentitiesError}, and nothing is written.
 *
 * @example
 * ```ts
 * import type { ExternalIdentities } from "effect-auth"
 *
 * const whoIs = (identities: ExternalIdentities.Service, sub: string) => identities.find("https://accounts.google.com/", sub)
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface Service {
  /** The id of the local user `subject` of `provider` is bound to. */
  readonly find: (provider: string, subject: string) => Effect.Effect<Option.Option<string>, ExternalIdentitiesError>
  /** The subject of `provider` the local user `userId` is bound to. */
  readonly subjectOf: (provider: string, userId: string) => Effect.Effect<Option.Option<string>, ExternalIdentitiesError>
  /**
   * Binds `subject` of `provider` to the local user `userId`, unless that subject or that user is
   * bound at `provider` already; answers whether it did. Atomic, and never overwrites: of
   * concurrent binds of one subject or of one user, exactly one answers `true`.
   */
  readonly bind: (provider: string, subject: string, userId: string) => Effect.Effect<boolean, ExternalIdentitiesError>
  /** Removes the binding of `userId` at `provider` (for admins); answers whether there was one. */
  readonly unbind: (provider: string, userId: string) => Effect.Effect<boolean, ExternalIdentitiesError>
  /**
   * When the binding of `subject` at `provider` was made (ms since the epoch, by the `Clock`),
   * where the store records it (`SqlExternalIdentities`; none for a binding made before 0.5.0).
   * `Provisioning` holds it against the bound user's `dateJoined`: a user who joined after the
   * binding was made is not the one it was made for but a new user given a reused id (Django's
   * `manage.py flush` empties `auth_user` and restarts its ids, and leaves this table), and the
   * binding is removed instead of logging the subject into that user. Since 0.5.0.
   */
  readonly boundAt?: ((provider: string, subject: string) => Effect.Effect<Option.Option<number>, ExternalIdentitiesError>) | undefined
  /**
   * The `@effect/sql` client the store runs every statement on (`SqlExternalIdentities`'), if it
   * is one. When it is the user store's too (`UserStore.Service.sqlClient`), `Provisioning`
   * writes a new user and its binding in one transaction (`sql.withTransaction`): both or
   * neither, as django-allauth saves a user and its `SocialAccount` in one `transaction.atomic`.
   * A store of your own that sets it must run its statements on that client only, within the
   * caller's fiber. Since 0.4.0.
   */
  readonly sqlClient?: SqlClient.SqlClient | undefined
}

/**
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ExternalIdentities } from "effect-auth"
 *
 * const boundTo = (provider: string, subject: string) =>
 *   Effect.flatMap(ExternalIdentities.ExternalIdentities, (identities) => identities.find(provider, subject))
 * ```
 *
 * @since 0.3.0
 * @category tags
 */
export class ExternalIdentities extends Context.Tag("effect-auth/ExternalIdentities")<ExternalIdentities, Service>() {}

/**
 * The name of a provider's namespace of subjects, for an issuer: an `http:` or `https:` issuer as a
 * URL (`new URL(issuer).href`: `https://GitLab.com` and `https://gitlab.com/` are one provider,
 * named `https://gitlab.com/`), any other name as it is. `Provisioning` names its
 * `identities.provider` with it and `OidcBackend` its issuer, so a user bound on one path (an
 * `OidcBackend` login) is bound on the other (a `JwtBackend` provisioning with the same issuer,
 * written either way).
 *
 * @example
 * ```ts
 * import { ExternalIdentities } from "effect-auth"
 *
 * ExternalIdentities.providerOf("https://gitlab.com") // "https://gitlab.com/"
 * ExternalIdentities.providerOf("https://login.example.com/realms/main") // unchanged
 * ExternalIdentities.providerOf("github") // "github"
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const providerOf = (issuer: string): string => {
  if (typeof issuer !== "string" || !URL.canParse(issuer)) return issuer
  const url = new URL(issuer)
  return url.protocol === "https:" || url.protocol === "http:" ? url.href : issuer
}

// --- input -------------------------------------------------------------------------------------

// What an untyped caller may hand over (null, a number, an object whose getter throws) is refused
// here, before any store sees it, alike on every engine.


/** The columns' bounds: `provider`, `subject` and `user_id` are varchar(255). */
const textOf = (field: string, raw: unknown): string =>
  typeof raw === "string" && raw.length >= 1 && raw.length <= 255 && isStorable(raw)
    ? raw
    : refuse(`${field} must be a string of 1 to 255 characters, no NUL or lone surrogate`)

const userIdOf = (raw: unknown): string =>
  isUserId(raw) && isStorable(raw) ? raw : refuse(userIdMessage)

// Reads and checks the input of `operation`, then runs it on what was read (see internal/checkedInput).
const checked = checker((operation, message) => new ExternalIdentitiesError({ operation, message }))

/**
 * A store that checks every call's input before `store` sees it: a provider and a subject of 1 to
 * 255 characters, a user id (1 to 255 characters), no NUL or lone surrogate in any of them.
 * Anything else, as an untyped caller may hand over (`null`, `42`, an object), fails with an
 * {@link ExternalIdentitiesError} on every store alike, never a defect, and `store` is not asked,
 * so nothing is written. `store`'s `sqlClient`, if it has one, is kept. Both stores of this library
 * are built with it; so may stores of your own.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ExternalIdentities } from "effect-auth"
 *
 * // a store of your own: each unbinding logged, the rest in memory
 * const bindings = ExternalIdentities.makeMemory()
 * const store = ExternalIdentities.make({
 *   ...bindings,
 *   unbind: (provider, userId) =>
 *     Effect.zipRight(Effect.log(`${userId} unbound from ${provider}`), bindings.unbind(provider, userId))
 * })
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (store: Service): Service => ({
  ...(store.sqlClient === undefined ? {} : { sqlClient: store.sqlClient }),
  ...(store.boundAt === undefined ? {} : {
    boundAt: (provider: string, subject: string) =>
      checked(
        "boundAt",
        () => ({ provider: textOf("provider", provider), subject: textOf("subject", subject) }),
        (input) => store.boundAt!(input.provider, input.subject)
      )
  }),
  find: (provider, subject) =>
    checked(
      "find",
      () => ({ provider: textOf("provider", provider), subject: textOf("subject", subject) }),
      (input) => store.find(input.provider, input.subject)
    ),
  subjectOf: (provider, userId) =>
    checked(
      "subjectOf",
      () => ({ provider: textOf("provider", provider), userId: userIdOf(userId) }),
      (input) => store.subjectOf(input.provider, input.userId)
    ),
  bind: (provider, subject, userId) =>
    checked(
      "bind",
      () => ({ provider: textOf("provider", provider), subject: textOf("subject", subject), userId: userIdOf(userId) }),
      (input) => store.bind(input.provider, input.subject, input.userId)
    ),
  unbind: (provider, userId) =>
    checked(
      "unbind",
      () => ({ provider: textOf("provider", provider), userId: userIdOf(userId) }),
      (input) => store.unbind(input.provider, input.userId)
    )
})

/**
 * A store in this process's memory.
 *
 * @example
 * ```ts
 * import { ExternalIdentities } from "effect-auth"
 *
 * const store = ExternalIdentities.makeMemory()
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const makeMemory = (): Service => {
  // `make` has checked the input: no NUL in it, so a NUL separates the parts of a key.
  const key = (provider: string, part: string) => `${provider}\u0000${part}`
  const userOfSubject = new Map<string, string>()
  const subjectOfUser = new Map<string, string>()
  return make({
    find: (provider, subject) => Effect.sync(() => Option.fromNullable(userOfSubject.get(key(provider, subject)))),
    subjectOf: (provider, userId) => Effect.sync(() => Option.fromNullable(subjectOfUser.get(key(provider, userId)))),
    // Each operation reads and writes in one synchronous step: nothing runs in between.
    bind: (provider, subject, userId) =>
      Effect.sync(() => {
        if (userOfSubject.has(key(provider, subject)) || subjectOfUser.has(key(provider, userId))) return false
        userOfSubject.set(key(provider, subject), userId)
        subjectOfUser.set(key(provider, userId), subject)
        return true
      }),
    unbind: (provider, userId) =>
      Effect.sync(() => {
        const subject = subjectOfUser.get(key(provider, userId))
        if (subject === undefined) return false
        subjectOfUser.delete(key(provider, userId))
        userOfSubject.delete(key(provider, subject))
        return true
      })
  })
}

/**
 * The store in memory, as a layer.
 *
 * @example
 * ```ts
 * import { ExternalIdentities } from "effect-auth"
 *
 * const IdentitiesLive = ExternalIdentities.layerMemory
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layerMemory: Layer.Layer<ExternalIdentities> = Layer.sync(ExternalIdentities, makeMemory)
