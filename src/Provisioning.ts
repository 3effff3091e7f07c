/**
 * Provisioning: external users (LDAP, OIDC/JWT, a REST user service) mapped into the local
 * `UserStore` on login, as Django sites do with `RemoteUserBackend.create_unknown_user` /
 * `configure_user` and django-auth-ldap's `MIRROR_GROUPS`.
 *
 * On every login through an external backend, the backend's `provision` hook turns what the
 * external system says ({@link ExternalUser}) into the local `StoredUser`:
 *
 * 1. find the user of exactly this username, in NFC (the store looks names up through NFKC,
 *    which is many-to-one: a provider's `ᵇoss` is not the local `boss`; a name NFKC would fold
 *    further is never created: `NoMatch("invalid-credentials")`);
 * 2. unknown: create it when `createUnknownUser` (the default), else `NoMatch("unknown-user")`;
 *    the name as the external system spells it, without the sign-up form's character rule
 *    (`UserStore.ValidUsername`), as django-auth-ldap and mozilla-django-oidc create users through
 *    the ORM: a directory's `o'brien` or `john smith` is a user; a name with a control, format or
 *    line-separator character (a zero-width space), or one the store refuses otherwise, is
 *    `NoMatch("invalid-credentials")`; a new user then gets its groups mirrored and `configureUser` called (creation only; the
 *    user is active only once it has passed, so its refusal holds on later logins; a login cut
 *    off meanwhile leaves the creation and the hook running to their end, and the hook decides);
 * 3. known but a local account (it has a usable password: `createsuperuser`, a sign-up, an
 *    admin), and `linkLocalUsers` is not set: `NoMatch("unknown-user")`, nothing is written; with
 *    {@link Options.identities} (a login that can be bound: OIDC), so is a staff or superuser
 *    account found by name whatever its password (`createsuperuser --noinput` makes one whose
 *    password is unusable, as provisioning makes its users): an administrator binds it;
 * 4. known: update the profile and the staff/superuser flags that differ (`updateAttributes`,
 *    the default) and mirror its groups (`mirrorGroups`);
 * 5. refuse an inactive user with `NoMatch("inactive-user")`, Django's `user_can_authenticate`.
 *
 * The username comes from the external system (a claim of the identity provider, often one the
 * user chose). Linking it to a local account with a password would let whoever gets that name at
 * the provider log in as the local user, a superuser made with `createsuperuser` included, and
 * overwrite its email: so only users without a usable password (those provisioning made) are
 * linked unless `linkLocalUsers: true` says the external system owns the local usernames.
 *
 * With {@link Options.identities} (a binding store and the provider's name; `OidcBackend` sets
 * them) and an external user that has a `subject` (the external system's stable id of the user),
 * the user is found by the binding of `(provider, subject)` first, as django-allauth does:
 *
 * - bound: the login is the bound user, found by id, whatever its name at the external system is
 *   now (a rename there moves nothing; the local username is not changed); its attributes and
 *   groups are updated as above, and rule 3 does not apply (the binding proves it is the same
 *   person). A binding to a user that no longer exists is removed, and the login goes on unbound;
 * - unbound: the user is found by name as above; one bound to another subject of this provider is
 *   `NoMatch("unknown-user")` and nothing is written (the takeover this closes); an unbound one
 *   was made elsewhere (a created user is written with its binding) and is
 *   `NoMatch("unknown-user")` too, nothing written, unless {@link Options.linkUnboundUsers} (or
 *   `linkLocalUsers`): then it passes rule 3, staff and superusers excepted, and is bound to the
 *   subject (trust on first use, for users provisioned before bindings existed). Of concurrent
 *   first logins, the one whose bind lost goes on only if the winner bound the same user, else
 *   `NoMatch("unknown-user")`;
 * - created: a new user and its binding are written together or not at all, as django-allauth
 *   saves a user and its `SocialAccount` in one `transaction.atomic`. When the user store and the
 *   binding store run on one `SqlClient` (`SqlUserStore` and `SqlExternalIdentities` on one
 *   database: both name it as `sqlClient`), both writes are one `sql.withTransaction`: a bind that
 *   fails rolls the user back and the login fails with a `TransportError` (on SQLite, a COMMIT
 *   another connection holds off, a reader outside WAL, is asked again for up to 5 seconds, as
 *   the stores ask again a statement that found the file locked). Otherwise (memory
 *   stores, two databases) a bind that fails is asked again three times (100, 200, 400 ms), and
 *   past that the user is removed again (`UserStore.Service.delete`; a store without it, or whose
 *   removal fails too, keeps the row and a warning names it). Either way the subject's next login
 *   finds nobody and creates it anew. A first login whose bind lost the subject to another user
 *   (another instance's first login of the subject under another name) leaves no row either, and
 *   logs into that user.
 *
 * With `identities`, a login without a `subject` is refused (`NoMatch("unknown-user")`, nothing
 * written; `OidcBackend` requires one too): it could not be bound, so it would reach users by name
 * and create users its next login is refused; with `linkLocalUsers` (the provider owns the local
 * names) it goes by name, never to a bound user. The binding store's failures are
 * `TransportError`s, as the user store's are.
 *
 * The local `isActive` flag belongs to the site: provisioning sets it only when it creates the
 * user and never turns it back on, so deactivating a user in the store locks them out of every
 * external backend. An external `isActive: false` refuses the login too.
 *
 * Concurrent first logins of one user create one row: the losers of the race see the store's
 * `UserAlreadyExists`, read the winner's row and go on with it (while a `configureUser` runs,
 * logins on the same instance wait for it; another instance's are refused as inactive until it
 * has passed). Store failures become
 * `TransportError`s of the backend; an external user that does not fit the store (a user name of
 * 200 characters, say) is a `TransportError` as well, like a peer's body that does not decode;
 * its cause names the failing fields, never their values. So is a `hook`'s mapping that throws.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Redacted } from "effect"
 * import { Provisioning } from "effect-auth"
 * import * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * const LdapLive = Layer.effect(
 *   LdapBackend.LdapBackend,
 *   Effect.gen(function*() {
 *     const users = yield* Provisioning.make({ backendId: "ldap", mirrorGroups: true })
 *     return yield* LdapBackend.make({
 *       url: "ldap://ldap.example.org",
 *       userDnTemplate: "uid=%(user)s,ou=people,dc=example,dc=org",
 *       userAttributes: { email: "mail" },
 *       provision: users.hook((ldap: LdapBackend.LdapUser) => ({
 *         username: ldap.username,
 *         email: ldap.fields["email"],
 *         isStaff: ldap.isStaff
 *       })),
 *       loadUser: users.loadUser
 *     })
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as AuthError from "./AuthError.js"
import * as ExternalIdentities from "./ExternalIdentities.js"
import type { User } from "./User.js"
import * as UserStore from "./UserStore.js"
import { doesNotFit, mapped } from "./internal/externalUser.js"
import { failingPaths } from "./internal/parseErrors.js"
import { runToItsEnd } from "./internal/runToItsEnd.js"
import { issuedBy, vouched } from "./internal/userStore.js"
import * as SqlTables from "./internal/sqlTables.js"
import * as VouchedName from "./internal/vouchedName.js"
import { isStorable } from "./internal/wellFormed.js"

/**
 * What an external system says about a user. Only `username` is required; an absent field is
 * left as it is in the store (or takes the store's default on creation).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Provisioning } from "effect-auth"
 *
 * const external = Schema.decodeUnknownSync(Provisioning.ExternalUser)({
 *   username: "alice",
 *   email: "alice@example.org",
 *   isStaff: true,
 *   groups: ["editors", "staff"]
 * })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const ExternalUser = Schema.Struct({
  /**
   * 1 to 150 characters (the store's rule); found exactly in NFC, created only when NFKC leaves it
   * as NFC does. Not held to `UserStore.ValidUsername` (spaces and apostrophes are created, as
   * Django's backends create them); no control, format or line-separator character.
   */
  username: Schema.String,
  email: Schema.optional(UserStore.Email),
  firstName: Schema.optional(UserStore.PersonName),
  lastName: Schema.optional(UserStore.PersonName),
  /** Used when the user is created; `false` refuses the login. Never written on later logins. */
  isActive: Schema.optional(Schema.Boolean),
  isStaff: Schema.optional(Schema.Boolean),
  isSuperuser: Schema.optional(Schema.Boolean),
  /** Group names; with `mirrorGroups`, the user's local groups become exactly these. */
  groups: Schema.optional(Schema.Array(UserStore.GroupName)),
  /**
   * The external system's stable id of the user (OIDC's `sub`; GitHub's numeric `id`), never
   * reassigned to someone else: 1 to 255 characters, no NUL or lone surrogate. With
   * {@link Options.identities}, the login is bound to the local user by it (see the module
   * documentation). Since 0.3.0.
   */
  subject: Schema.optional(
    Schema.String.pipe(Schema.minLength(1), Schema.maxLength(255), Schema.filter((s) => isStorable(s)))
  )
})

/**
 * @example
 * ```ts
 * import type { Provisioning } from "effect-auth"
 *
 * const fromClaims = (claims: { readonly sub: string; readonly email: string }): Provisioning.ExternalUser => ({
 *   username: claims.sub,
 *   email: claims.email
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ExternalUser extends Schema.Schema.Type<typeof ExternalUser> {}

/**
 * What {@link Options.configureUser} may fail with. Store errors become `TransportError`s;
 * `NoMatch` and `PermissionDenied` refuse the login as they are.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AuthError } from "effect-auth"
 * import type { Provisioning, UserStore } from "effect-auth"
 *
 * // refuse users from outside the company when they first log in
 * const configureUser = (stored: UserStore.StoredUser): Effect.Effect<void, Provisioning.ConfigureError> =>
 *   stored.email.endsWith("@example.org")
 *     ? Effect.void
 *     : Effect.fail(new AuthError.PermissionDenied({ backend: "oidc", reason: "foreign domain" }))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type ConfigureError =
  | AuthError.BackendError
  | UserStore.CommonError
  | UserStore.UserNotFound
  | UserStore.GroupNotFound
  | UserStore.UserAlreadyExists
  | UserStore.PermissionNotFound

/**
 * How external users are provisioned.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Provisioning, UserStore } from "effect-auth"
 *
 * const options: Provisioning.Options = {
 *   backendId: "oidc",
 *   updateAttributes: true,
 *   mirrorGroups: false,
 *   // Django's configure_user: runs once, when the user is created
 *   configureUser: (stored) =>
 *     Effect.flatMap(UserStore.UserStore, (store) => store.addToGroup(stored.id, "newcomers"))
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The id of the backend the hook belongs to: errors carry it. */
  readonly backendId: string
  /** Create users seen for the first time; otherwise they get `NoMatch("unknown-user")`. Default: `true`. */
  readonly createUnknownUser?: boolean | undefined
  /** Write changed names, email and staff/superuser flags on later logins. Default: `true`. */
  readonly updateAttributes?: boolean | undefined
  /**
   * Link an external user to an existing local user of the same name that has a usable password
   * (a local account). Default: `false`: such a login is `NoMatch("unknown-user")` and the local
   * user is left alone, so a name taken at the external system (a `preferred_username`, an
   * unverified email) cannot take over a local account such as a superuser. Users provisioning
   * created have an unusable password and are always linked. Set it when the external system is
   * the authority for the local usernames (a directory whose users had local passwords before,
   * django-auth-ldap's and `RemoteUserBackend`'s behaviour).
   */
  readonly linkLocalUsers?: boolean | undefined
  /**
   * With {@link Options.identities}: link a login to an existing local user of its name that no
   * subject of the provider is bound to, and bind it (trust on first use). Default: `false`, or
   * `linkLocalUsers`: such a login is `NoMatch("unknown-user")` and nothing is written, as
   * django-allauth never connects a new social account to an existing user by name. A user
   * provisioning creates is bound at once, so an unbound one found by name was made elsewhere (an
   * admin, `createsuperuser`, a sign-up, another backend on the same store, a release before
   * bindings), and a name the provider's user may choose (a `preferred_username`) must not log
   * into it and take its permissions, groups and data. Bind such users yourself
   * (`ExternalIdentities`' `bind`); set this while migrating users provisioned before bindings
   * existed, or where two external backends share their users by name. A staff or superuser
   * account is linked by name only with `linkLocalUsers`. Since 0.4.0.
   */
  readonly linkUnboundUsers?: boolean | undefined
  /**
   * Make the user's local groups exactly the external `groups` on every login (creating missing
   * groups), as django-auth-ldap's `MIRROR_GROUPS`. An external user without `groups` keeps its
   * local groups. Default: `false`.
   */
  readonly mirrorGroups?: boolean | undefined
  /**
   * Bind each external user to its local user by the external system's stable id
   * (`ExternalUser.subject`), as django-allauth's `SocialAccount` does: `store` keeps the
   * bindings, `provider` names the namespace of the subjects (an OIDC issuer). A user bound at
   * `provider` is found by its binding whatever name the external system sends now, and no other
   * subject (nor a login without a subject) logs into it by name: the takeover of a username that
   * was chosen, or released and taken by someone else, at the external system. See the module
   * documentation for the rules. Default: none (users are found by name only). `OidcBackend` sets
   * it. Since 0.3.0.
   *
   * `provider` is named through `ExternalIdentities.providerOf`, as `OidcBackend` names its
   * issuer: an `http(s)` URL as `new URL(provider).href` (`https://gitlab.com` is
   * `https://gitlab.com/`), so a JWT hook and an `OidcBackend` of one issuer share its bindings
   * however the issuer is written. Bindings stored before under the name as written, when it
   * differs, are still read (the user is found by its subject and refused to other subjects) and
   * the user is bound under the new name on its next login.
   */
  readonly identities?:
    | { readonly store: ExternalIdentities.Service; readonly provider: string }
    | undefined
  /**
   * Called once, right after the user is created (and its groups mirrored). The row is read
   * again afterwards, so changes it makes through the store are seen. The row is created
   * inactive and made active only when the hook succeeds (unless the hook sets `isActive`
   * itself): a failure fails the login and leaves the user inactive, so a refusal holds on every
   * later login, which does not call the hook again; concurrent first logins on this instance
   * wait for the hook, and another instance's are refused (`NoMatch("inactive-user")`) until it
   * has passed. After a failure that was no refusal
   * (the store was down), activate the user in the store (`setFlags(id, { isActive: true })`).
   * Once the row's creation has begun, the creation, the groups, the hook and the activation run
   * to their end in a fiber of their own that the login only waits for: a login cut off meanwhile
   * (a client gone, the backend policy's timeout) does not stop the hook, whose outcome decides as
   * if the login had waited, so the user's next login gets in (or is refused, if the hook refused).
   */
  readonly configureUser?:
    | ((stored: UserStore.StoredUser, external: ExternalUser) => Effect.Effect<void, ConfigureError, UserStore.UserStore>)
    | undefined
  /**
   * Turns the stored user into the app's user type. Default: the stored user itself, right as
   * long as the app has not registered its own `User` type (see `User.Register`).
   */
  readonly toUser?: ((stored: UserStore.StoredUser) => User) | undefined
}

/**
 * Provisioning bound to a store, as {@link make} returns it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryUserStore, Provisioning } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const users = yield* Provisioning.make({ backendId: "sso" })
 *   const alice = yield* users.provision({ username: "alice", email: "alice@example.org" })
 *   return yield* users.loadUser(alice.id) // Option.some(alice)
 * }).pipe(Effect.provide(MemoryUserStore.layer))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Provisioner {
  readonly backendId: string
  /** Finds, creates or updates the local user; see the module documentation for the rules. */
  readonly provision: (external: ExternalUser) => Effect.Effect<UserStore.StoredUser, AuthError.BackendError>
  /** A backend's `loadUser`/`getUser`: the active local user with this id, through `toUser`. */
  readonly loadUser: (userId: string) => Effect.Effect<Option.Option<User>, AuthError.TransportError>
  /**
   * A backend's `provision` hook: maps what the backend hands over (an `LdapUser`; JWT claims and
   * the decoded user) to an {@link ExternalUser}, provisions it, applies `toUser`. A `map` that
   * throws (an attribute the entry lacks) is a `TransportError`, as a user that does not fit the
   * store is, never a defect.
   */
  readonly hook: <Args extends ReadonlyArray<any>>(
    map: (...args: Args) => ExternalUser
  ) => (...args: Args) => Effect.Effect<User, AuthError.BackendError>
}

// Without a registered app user type, `User` is `BaseUser` and a StoredUser is one (see
// ModelBackend): the cast keeps the library compiling when an app registers a richer type.
const storedAsUser = (stored: UserStore.StoredUser): User => stored as unknown as User

// A first login's bind that lost its subject to another user: the row it created is rolled back
// (or removed), and the login goes on as that user.
class BindLost extends Data.TaggedError("BindLost")<{}> {}

const decodeExternal = Schema.decodeUnknown(ExternalUser, { errors: "first" })

// What the app's mapping answered, read once into plain data (its fields, the groups' items): a
// getter or a Proxy's trap that throws does so here, where it is the mapping's failure, and not
// inside the Schema's decoding, which lets it out as a defect. A field that is an object of any
// other kind (none is one) is read no further: an empty object stands for it, which the Schema
// refuses at its path. `undefined` when reading threw.
const externalKeys = Object.keys(ExternalUser.fields)
const plainValue = (value: unknown): unknown => Predicate.isObject(value) || typeof value === "function" ? {} : value
const readExternal = (raw: unknown): { readonly value: unknown } | undefined => {
  try {
    if (!Predicate.isObject(raw)) return { value: raw }
    const plain: Record<string, unknown> = {}
    for (const key of externalKeys) {
      const value: unknown = (raw as Record<string, unknown>)[key]
      if (value !== undefined) plain[key] = Array.isArray(value) ? Array.from(value, plainValue) : plainValue(value)
    }
    return { value: plain }
  } catch {
    return undefined
  }
}
const isUsername = Schema.is(UserStore.Username)

type StoreError =
  | UserStore.CommonError
  | UserStore.UserNotFound
  | UserStore.GroupNotFound
  | UserStore.UserAlreadyExists
  | UserStore.PermissionNotFound

const isStoreError = (error: unknown): error is StoreError =>
  Predicate.isTagged(error, "InvalidInput") || Predicate.isTagged(error, "UserStoreError") ||
  Predicate.isTagged(error, "UserNotFound") || Predicate.isTagged(error, "GroupNotFound") ||
  Predicate.isTagged(error, "UserAlreadyExists") || Predicate.isTagged(error, "PermissionNotFound")

// Django's `is_password_usable`: only the `!` prefix of `make_password(None)` marks an unusable
// hash; provisioning creates users with one.
const isUsablePassword = (encoded: string): boolean => !encoded.startsWith("!")

const sameGroups = (a: ReadonlyArray<string>, b: ReadonlySet<string>): boolean =>
  a.length === b.size && a.every((name) => b.has(name))

// A provider's bindings, named by `ExternalIdentities.providerOf`, and the name as given when it
// differs (`formerly`: bindings written under it before are still read).
const namespaceOf = (given: NonNullable<Options["identities"]>) => {
  const provider = ExternalIdentities.providerOf(given.provider)
  return { store: given.store, provider, formerly: provider === given.provider ? undefined : given.provider }
}

/**
 * Binds provisioning to the `UserStore` in context. Build it inside the effect that builds an
 * external backend, and hand its `hook` and `loadUser` to the backend.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Provisioning } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const users = yield* Provisioning.make({ backendId: "ldap", createUnknownUser: false })
 *   return yield* users.provision({ username: "alice" }) // NoMatch("unknown-user") if not in the store
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Provisioner, never, UserStore.UserStore> =>
  Effect.map(UserStore.UserStore, (store): Provisioner => {
    const backend = options.backendId
    const createUnknownUser = options.createUnknownUser ?? true
    const updateAttributes = options.updateAttributes ?? true
    const mirrorGroups = options.mirrorGroups ?? false
    const linkLocalUsers = options.linkLocalUsers ?? false
    const linkUnboundUsers = options.linkUnboundUsers ?? linkLocalUsers
    // The provider's namespace named as OidcBackend names its issuer (`ExternalIdentities.providerOf`),
    // so a user bound on one path is bound on the other: `https://gitlab.com` and
    // `https://gitlab.com/` were two namespaces, and the first subject presenting a user's name
    // on the other path was bound to it. Bindings written under the name as given (`formerly`,
    // when it differs) are still read: such a user is found by its subject and refused to others,
    // and bound under the new name on its next login.
    const identities = options.identities === undefined ? undefined : namespaceOf(options.identities)
    const toUser = options.toUser ?? storedAsUser

    // The users handed out are the store's: they hold its permissions (ModelBackend's,
    // ObjectPermissionBackend's) whatever `toUser` makes of them, as Django's provisioned users
    // are rows. Another backend's user of the same id and name holds none (see `issuedBy`).
    const asUser = (stored: UserStore.StoredUser): User => issuedBy(store, toUser(stored))

    const noMatch = AuthError.failures(backend).noMatch
    const transport = (cause: unknown) => new AuthError.TransportError({ backend, cause })
    // Every store failure, whatever the operation, means the backend cannot answer.
    const viaStore = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.mapError(effect, (error) =>
        isStoreError(error) ? transport(error) : error as Exclude<E, StoreError>)

    const decode = (raw: unknown): Effect.Effect<ExternalUser, AuthError.TransportError> => {
      const read = readExternal(raw)
      if (read === undefined) return Effect.fail(transport(doesNotFit(": the mapping threw")))
      return decodeExternal(read.value).pipe(
        Effect.mapError((error) =>
          transport(doesNotFit(` at ${failingPaths(error)}`))
        ),
        Effect.flatMap((external) => {
          const username = VouchedName.canonical(external.username)
          return isUsername(username)
            ? Effect.succeed({ ...external, username })
            : Effect.fail(transport(doesNotFit(": username must be 1 to 150 characters without NUL")))
        })
      )
    }

    // Only the user of exactly this name is this external user: a provider's "ᵇoss", found
    // through the store's NFKC, would be the local "boss" (see VouchedName).
    const find = (username: string) =>
      Effect.map(viaStore(store.findByUsername(username)), Option.filter(VouchedName.names(username)))
    const reread = (id: string) =>
      Effect.flatMap(viaStore(store.findById(id)), Option.match({
        onNone: () => Effect.fail(transport(`user ${id} vanished while being provisioned`)),
        onSome: Effect.succeed
      }))

    const mirror = (user: UserStore.StoredUser, external: ExternalUser) => {
      const groups = external.groups
      if (!mirrorGroups || groups === undefined) return Effect.void
      const wanted = new Set(groups)
      // Read first: a login whose groups did not change writes nothing.
      return viaStore(Effect.flatMap(store.groupsOf(user.id), (current) =>
        sameGroups(current, wanted) ? Effect.void : store.setGroups(user.id, wanted)))
    }

    const update = (user: UserStore.StoredUser, external: ExternalUser) =>
      Effect.gen(function*() {
        let current = user
        if (updateAttributes) {
          const profile: { email?: string; firstName?: string; lastName?: string } = {}
          const email = external.email === undefined ? undefined : UserStore.normalizeEmail(external.email)
          if (email !== undefined && email !== user.email) profile.email = email
          if (external.firstName !== undefined && external.firstName !== user.firstName) {
            profile.firstName = external.firstName
          }
          if (external.lastName !== undefined && external.lastName !== user.lastName) profile.lastName = external.lastName
          const flags: { isStaff?: boolean; isSuperuser?: boolean } = {}
          if (external.isStaff !== undefined && external.isStaff !== user.isStaff) flags.isStaff = external.isStaff
          if (external.isSuperuser !== undefined && external.isSuperuser !== user.isSuperuser) {
            flags.isSuperuser = external.isSuperuser
          }
          if (Object.keys(profile).length > 0) yield* viaStore(store.updateProfile(user.id, profile))
          if (Object.keys(flags).length > 0) yield* viaStore(store.setFlags(user.id, flags))
          current = { ...user, ...profile, ...flags }
        }
        yield* mirror(current, external)
        return current
      })

    // The binding store's failures, as the user store's: the backend cannot answer.
    const viaIdentities = <A>(effect: Effect.Effect<A, ExternalIdentities.ExternalIdentitiesError>) =>
      Effect.mapError(effect, transport)

    // With bindings, a user found by name is this login's only if it is bound to no other subject
    // of the provider: it is bound to the login's subject here (trust on first use), before
    // anything of it is written. A bind that lost (the user is bound to another subject, or a
    // concurrent first login bound the subject first) goes on only if the winner bound this very
    // user. A login without a subject never reaches a bound user by name.
    const claim = (user: UserStore.StoredUser, external: ExternalUser): Effect.Effect<void, AuthError.BackendError> => {
      if (identities === undefined) return Effect.void
      const { formerly, provider, store: bindings } = identities
      const subject = external.subject
      // the user's subject under the former name of the namespace, if it has one there
      const boundFormerly = formerly === undefined
        ? Effect.succeedNone
        : viaIdentities(bindings.subjectOf(formerly, user.id))
      if (subject === undefined) {
        return Effect.flatMap(
          Effect.zipWith(viaIdentities(bindings.subjectOf(provider, user.id)), boundFormerly, (now, before) =>
            Option.isSome(now) ? now : before),
          (bound) => Option.isSome(bound) ? noMatch("unknown-user") : Effect.void
        )
      }
      return Effect.gen(function*() {
        const earlier = yield* Effect.suspend(() => boundFormerly)
        if (Option.isSome(earlier) && earlier.value !== subject) return yield* noMatch("unknown-user")
        if (yield* viaIdentities(bindings.bind(provider, subject, user.id))) return
        const winner = yield* viaIdentities(bindings.find(provider, subject))
        if (!(Option.isSome(winner) && winner.value === user.id)) return yield* noMatch("unknown-user")
      })
    }

    // A local account (usable password) is not the external system's to log into.
    const link = (
      user: UserStore.StoredUser,
      external: ExternalUser
    ): Effect.Effect<UserStore.StoredUser, AuthError.BackendError> =>
      !linkLocalUsers && isUsablePassword(Redacted.value(user.passwordHash))
        ? noMatch("unknown-user")
        : Effect.zipRight(claim(user, external), update(user, external))

    // A user found by name, with bindings (OIDC): this login's if bound to its subject meanwhile;
    // else linked (and bound: trust on first use) only where the app says so (`linkUnboundUsers`),
    // and a staff or superuser account not even then, but with `linkLocalUsers` (the provider owns
    // the local names). A user provisioning creates is bound at once, so an unbound one was made
    // elsewhere, and an unusable password tells nothing: Django's `createsuperuser --noinput` makes
    // a superuser with one, as provisioning makes its users. Before, a provider account that chose
    // the name (`admin`, a `preferred_username`) was linked to such a user, bound to it, and wrote
    // its email over the user's. An administrator binds such an account (`ExternalIdentities`' `bind`).
    const linkByName = (
      user: UserStore.StoredUser,
      external: ExternalUser
    ): Effect.Effect<UserStore.StoredUser, AuthError.BackendError> => {
      const subject = external.subject
      if (identities === undefined || linkLocalUsers) return link(user, external)
      // (a login without a subject is refused before it looks: `userFor`)
      if (subject === undefined) return noMatch("unknown-user")
      if (linkUnboundUsers && !user.isStaff && !user.isSuperuser) return link(user, external)
      // Bound to this very subject since the login looked for its binding (a first login of the
      // same subject on another instance, or a binding made meanwhile): it is this login's user.
      return Effect.flatMap(
        viaIdentities(identities.store.find(identities.provider, subject)),
        (bound) => Option.isSome(bound) && bound.value === user.id ? link(user, external) : noMatch("unknown-user")
      )
    }

    // With `configureUser`, the row is created inactive and made active only once the hook has
    // passed: a refusal (or a failure) must hold on later logins, which find the row and do not
    // call the hook again, and on concurrent first logins, which find it before the hook ends.
    const configure = (
      hook: NonNullable<Options["configureUser"]>,
      created: UserStore.StoredUser,
      external: ExternalUser
    ) =>
      Effect.gen(function*() {
        const active = external.isActive ?? true
        // What the hook itself decides about the flag wins over the activation.
        let decided = false
        // (on the store's own object as prototype: a store may keep its methods there)
        const watched: UserStore.Service = Object.assign(Object.create(store) as UserStore.Service, {
          setFlags: (userId: string, flags: UserStore.Flags) => {
            if (userId === created.id && flags.isActive !== undefined) decided = true
            return store.setFlags(userId, flags)
          }
        })
        yield* viaStore(Effect.provideService(hook({ ...created, isActive: active }, external), UserStore.UserStore, watched))
        if (active && !decided) yield* viaStore(store.setFlags(created.id, { isActive: true }))
        return yield* reread(created.id)
      })

    // A name the store cannot create apart (`ᵇoss`, `ªdmin`) is refused as credentials that name
    // nobody here: a refusal, not a failure to retry. The row is created as Django's backends
    // create theirs, without the sign-up form's character rule (`vouched`): a directory's
    // `o'brien` is a user; a name the store still refuses (a zero-width space; any rule of an
    // app's own store) is such a refusal too.
    // None: the subject was bound to another user meanwhile (another instance's first login of it
    // under another name) and nothing of this login's is left; the login is that user.
    const createRow = (external: ExternalUser): Effect.Effect<Option.Option<UserStore.StoredUser>, AuthError.BackendError> =>
      !VouchedName.creatable(external.username)
        ? noMatch("invalid-credentials")
        : createBound(external).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.succeed(Option.none<UserStore.StoredUser>()),
            onSome: (created) =>
              Effect.asSome(Effect.zipRight(
                mirror(created, external),
                options.configureUser === undefined ? Effect.succeed(created) : configure(options.configureUser, created, external)
              ))
          })),
          // Another login of the same user created it first: carry on with that row.
          Effect.catchTag("UserAlreadyExists", () => Effect.asSome(linkCreated(external))),
          viaStore
        )

    // The row of a name another login created first, or that came into being between this login's
    // lookup and its insert: settled as a user found by name (`linkByName`), so a row an admin,
    // `createsuperuser` or another backend made meanwhile is no more this login's than one made
    // before it (before, `link` bound it to the login's subject); a first login of the same
    // subject finds it bound to that subject.
    const linkCreated = (external: ExternalUser) =>
      Effect.flatMap(find(external.username), Option.match({
        onNone: () => Effect.fail(transport(`user ${JSON.stringify(external.username)} vanished while being created`)),
        onSome: (user) => linkByName(user, external)
      }))

    // The new row, as the external system describes the user.
    const insert = (external: ExternalUser) =>
      store.create(vouched({
        username: external.username,
        email: external.email,
        firstName: external.firstName,
        lastName: external.lastName,
        isActive: options.configureUser === undefined ? external.isActive : false,
        isStaff: external.isStaff,
        isSuperuser: external.isSuperuser
      })).pipe(Effect.catchTag("InvalidInput", () => noMatch("invalid-credentials")))

    // The user store and the binding store on one `SqlClient` (SqlUserStore and
    // SqlExternalIdentities on one database, the common deployment): a new user and its binding
    // are written in one transaction. @effect/sql runs every statement of the client inside
    // `withTransaction` on its connection, so both stores must be on this very client: compared
    // without the app's name transforms (the library's stores publish the client they query,
    // `SqlTables.untransformedOf` of the app's, and a store of the app's own may publish the app's).
    const userSql = store.sqlClient === undefined ? undefined : SqlTables.untransformedOf(store.sqlClient)
    const bindingSql = identities?.store.sqlClient === undefined ? undefined : SqlTables.untransformedOf(identities.store.sqlClient)
    const sharedSql = userSql !== undefined && userSql === bindingSql ? userSql : undefined

    // A new user and its binding are written together or not at all, as django-allauth saves a
    // user and its SocialAccount in one `transaction.atomic`. Before, they were two writes: a
    // binding store that failed between them left the user unbound, and every later login of the
    // subject was refused (an unbound user found by name); two instances' first logins of one
    // subject under two names left the loser's row unbound. On one SqlClient both run in one
    // transaction (a failed or lost bind rolls the row back); otherwise the bind is asked again a
    // few times on a TransportError and, past that or lost, the row is removed again
    // (`UserStore.Service.delete`).
    const createBound = (
      external: ExternalUser
    ): Effect.Effect<Option.Option<UserStore.StoredUser>, AuthError.BackendError | StoreError> => {
      const subject = identities === undefined ? undefined : external.subject
      if (identities === undefined || subject === undefined) return Effect.asSome(insert(external))
      const bindNew = (created: UserStore.StoredUser) => bindCreated(identities, subject, created)
      if (sharedSql !== undefined) {
        // On SQLite a COMMIT another connection's reader holds off (a Django request reading the
        // file, outside WAL) fails SQLITE_BUSY at once (the driver's own wait is capped: see
        // `SqlUserStore.Options.busyTimeout`) and is rolled back: asked again, as the stores ask
        // again a statement that found the file locked, for their default 5 seconds.
        return SqlTables.withTransaction(sharedSql, Effect.tap(insert(external), bindNew)).pipe(
          SqlTables.retryBusy(SqlTables.defaultTimeout),
          Effect.catchTag("SqlError", (error) => Effect.fail(transport(error))),
          Effect.asSome,
          Effect.catchTag("BindLost", () => Effect.succeedNone)
        )
      }
      return Effect.flatMap(insert(external), (created) =>
        bindNew(created).pipe(
          Effect.retry({
            times: 3,
            schedule: Schedule.exponential("100 millis"),
            while: (error) => error._tag === "TransportError"
          }),
          Effect.tapError((error) => removeUnbound(identities, subject, created, error)),
          Effect.as(Option.some(created)),
          Effect.catchTag("BindLost", () => Effect.succeedNone)
        ))
    }

    // Binds a user this login just created. A bind that loses goes on if the winner bound this
    // very user (a login that linked it by name meanwhile: `linkUnboundUsers`); one that lost the
    // subject to another user is `BindLost`; one that lost for the user's sake (a store of your
    // own that reused the id of a bound user) refuses the login.
    const bindCreated = (
      bindings: NonNullable<typeof identities>,
      subject: string,
      created: UserStore.StoredUser
    ): Effect.Effect<void, AuthError.BackendError | BindLost> =>
      // (suspended: each retry asks the store anew)
      Effect.flatMap(viaIdentities(Effect.suspend(() => bindings.store.bind(bindings.provider, subject, created.id))), (bound) =>
        bound ? Effect.void : Effect.flatMap(
          viaIdentities(bindings.store.find(bindings.provider, subject)),
          (winner): Effect.Effect<void, AuthError.BackendError | BindLost> =>
            Option.isNone(winner)
              ? noMatch("unknown-user")
              : winner.value === created.id
              ? Effect.void
              : Effect.fail(new BindLost())
        ))

    // A user this login created and could not bind, removed again: left, it would be an unbound
    // user found by name, refused to the subject's later logins. A store without `delete` (one of
    // your own, written before it), or a removal that fails too, leaves it, and a warning names it
    // for an administrator to bind or remove.
    const removeUnbound = (
      bindings: NonNullable<typeof identities>,
      subject: string,
      created: UserStore.StoredUser,
      error: AuthError.BackendError | BindLost
    ) => {
      const left = (why: string) =>
        Effect.logWarning(
          `effect-auth: user ${created.id} (${JSON.stringify(created.username)}) was created but not bound to subject ` +
            `${JSON.stringify(subject)} of ${bindings.provider} (${error._tag}), and ${why}; bind it ` +
            `(ExternalIdentities.bind) or remove it, or the logins of its name are refused`
        )
      if (store.delete === undefined) return left("the user store has no delete")
      return Effect.catchAll(Effect.asVoid(store.delete(created.id)), (cause) => left(`removing it failed too: ${cause._tag}`))
    }

    // First logins this process is configuring, by username: a concurrent login of the same user
    // here waits for the hook instead of finding the row inactive (another instance's logins are
    // refused until it has passed).
    const creating = new Map<string, Deferred.Deferred<void>>()
    const creatingSubjects = new Map<string, Deferred.Deferred<void>>()
    // How many of those first logins have ended: a lookup that overlapped one may have read the
    // row while it was still inactive (on a pool, the read can run before the hook's activation
    // commits and answer after the login has left `creating`), so such a lookup is read again.
    let firstLoginsEnded = 0
    const whileCreating = (username: string) => {
      const pending = creating.get(username)
      return pending === undefined ? undefined : Deferred.await(pending)
    }
    // What a lookup of the user named `username` found (`found`), settled against the first logins
    // above: one this instance is still configuring under that name is waited for, then the user
    // is read `again`; a row read inactive while another first login ended is read `again` too.
    const settled = <E>(
      found: Option.Option<UserStore.StoredUser>,
      username: string,
      endedBefore: number,
      again: Effect.Effect<Option.Option<UserStore.StoredUser>, E>
    ): Effect.Effect<Option.Option<UserStore.StoredUser>, E> => {
      const pending = whileCreating(username)
      if (pending !== undefined) return Effect.zipRight(pending, again)
      return firstLoginsEnded !== endedBefore && Option.isSome(found) && !found.value.isActive
        ? again
        : Effect.succeed(found)
    }

    // With `configureUser`, a first login's row, groups, hook and activation run to their end in a
    // fiber of their own that the login only waits for: a login cut off while the hook ran (a
    // client gone, the backend policy's timeout) left the row inactive for ever, and every later
    // login, which finds the row and does not call the hook again, was NoMatch("inactive-user").
    // The hook's own outcome decides, whether or not its login is still there: a success activates
    // the user, a failure leaves it inactive, as documented. The look at `creating` and the entry
    // it adds are made in that fiber too, so no interruption falls between the entry and the
    // `ensuring` that removes it.
    // Every first login is kept in `creating` (with or without the hook): a login of the same name
    // here waits for it rather than find its row before the row is bound to its subject (a second
    // login of the same subject, a double submit, was then a user found by name and not bound).
    // So is its subject (`creatingSubjects`): a first login of the same subject under another name
    // (renamed at the provider between two authorizations) waits for it and then finds the
    // subject bound, where both created a row and the loser's was left unbound, its name refused
    // to every other subject. Across instances both create, and the loser's bind rolls its row
    // back (or removes it) and logs into the winner's user (`createBound`).
    const create = (external: ExternalUser): Effect.Effect<UserStore.StoredUser, AuthError.BackendError> =>
      runToItsEnd(Effect.flatMap(Deferred.make<void>(), (done) => {
        const pending = whileCreating(external.username)
        if (pending !== undefined) return Effect.zipRight(pending, linkCreated(external))
        const subject = identities === undefined ? undefined : external.subject
        const sameSubject = subject === undefined ? undefined : creatingSubjects.get(subject)
        if (sameSubject !== undefined) return Effect.zipRight(Deferred.await(sameSubject), Effect.suspend(() => userFor(external)))
        creating.set(external.username, done)
        if (subject !== undefined) creatingSubjects.set(subject, done)
        // A first login of the subject that ended between this login's lookup and here has bound
        // it: this login is that user (looked up again once this entry is gone, so a lookup that
        // finds nobody after all creates without waiting for itself).
        const boundMeanwhile = subject === undefined || identities === undefined
          ? Effect.succeed(false)
          : Effect.map(viaIdentities(identities.store.find(identities.provider, subject)), Option.isSome)
        return Effect.ensuring(
          Effect.flatMap(boundMeanwhile, (meanwhile) => meanwhile ? Effect.succeedNone : createRow(external)),
          Effect.suspend(() => {
            firstLoginsEnded++
            creating.delete(external.username)
            if (subject !== undefined) creatingSubjects.delete(subject)
            return Deferred.succeed(done, undefined)
          })
        ).pipe(Effect.flatMap(Option.match({ onNone: () => userFor(external), onSome: Effect.succeed })))
      }))

    // A bound user who joined after the binding was made (by more than the stores' rounding of
    // their times) is not the one it was made for: a new user given a reused id, after Django's
    // `flush` emptied `auth_user` and restarted its ids (the new superuser is id 1 again) but left
    // the bindings. Where the store records no time, nothing can be told.
    const joinedSinceBound = (
      bindings: NonNullable<typeof identities>,
      namespace: string,
      subject: string,
      user: UserStore.StoredUser
    ): Effect.Effect<boolean, AuthError.BackendError> =>
      bindings.store.boundAt === undefined
        ? Effect.succeed(false)
        : Effect.map(
          viaIdentities(bindings.store.boundAt(namespace, subject)),
          Option.match({ onNone: () => false, onSome: (at) => user.dateJoined.getTime() > at + 1000 })
        )

    // The user `subject` is bound to, by id. A binding to a user that no longer exists, or to a
    // user who joined after it was made (a reused id), is removed (the login goes on as unbound).
    // The user found is settled as one found by name is.
    const bound = (
      bindings: NonNullable<typeof identities>,
      subject: string,
      endedBefore: number
    ): Effect.Effect<Option.Option<UserStore.StoredUser>, AuthError.BackendError> =>
      Effect.gen(function*() {
        let namespace = bindings.provider
        let userId = yield* viaIdentities(bindings.store.find(namespace, subject))
        if (Option.isNone(userId) && bindings.formerly !== undefined) {
          namespace = bindings.formerly
          userId = yield* viaIdentities(bindings.store.find(namespace, subject))
        }
        if (Option.isNone(userId)) return Option.none()
        const found = yield* viaStore(store.findById(userId.value))
        if (Option.isNone(found) || (yield* joinedSinceBound(bindings, namespace, subject, found.value))) {
          yield* viaIdentities(bindings.store.unbind(namespace, userId.value))
          return Option.none()
        }
        // found under the former name: bound under the new one too (a bind that loses changes nothing)
        if (namespace !== bindings.provider) yield* viaIdentities(bindings.store.bind(bindings.provider, subject, userId.value))
        return yield* settled(found, found.value.username, endedBefore, Effect.map(reread(userId.value), Option.some))
      })

    const provision = (raw: ExternalUser): Effect.Effect<UserStore.StoredUser, AuthError.BackendError> =>
      Effect.gen(function*() {
        const external = yield* decode(raw)
        const user = yield* userFor(external)
        // Django's user_can_authenticate, after configure_user as in RemoteUserBackend.
        if (!user.isActive || external.isActive === false) return yield* noMatch("inactive-user")
        return issuedBy(store, user)
      }).pipe(Effect.withSpan("effect-auth.provision", { attributes: { backend }, captureStackTrace: false }))

    // The user a decoded login is: by its binding, by name, or created.
    const userFor = (external: ExternalUser): Effect.Effect<UserStore.StoredUser, AuthError.BackendError> =>
      Effect.gen(function*() {
        // With bindings a login names its subject, as `OidcBackend` requires: one without could
        // not be bound, so it reached users by name (a `createsuperuser --noinput` superuser, an
        // account with permissions made by an admin) and created users its next login was refused
        // (staff: never linked by name). Refused, nothing written, unless the provider owns the
        // local names (`linkLocalUsers`); tokens that may lack `sub` are provisioned without
        // `identities`.
        if (identities !== undefined && external.subject === undefined && !linkLocalUsers) return yield* noMatch("unknown-user")
        const endedBefore = firstLoginsEnded
        const viaBinding = identities === undefined || external.subject === undefined
          ? Option.none<UserStore.StoredUser>()
          : yield* bound(identities, external.subject, endedBefore)
        let user: UserStore.StoredUser
        if (Option.isSome(viaBinding)) {
          // the binding proves it is the same person: no local-account rule, whatever the name
          user = yield* update(viaBinding.value, external)
        } else {
          const byName = find(external.username)
          const found = yield* settled(yield* byName, external.username, endedBefore, byName)
          if (Option.isSome(found)) {
            user = yield* linkByName(found.value, external)
          } else {
            if (!createUnknownUser) return yield* noMatch("unknown-user")
            user = yield* create(external)
          }
        }
        return user
      })

    const loadUser = (userId: string): Effect.Effect<Option.Option<User>, AuthError.TransportError> =>
      store.findById(userId).pipe(
        Effect.catchTags({
          // an id this store never issued names nobody
          InvalidInput: () => Effect.succeedNone,
          UserStoreError: (error) => Effect.fail(transport(error))
        }),
        Effect.map((found) => Option.map(Option.filter(found, (user) => user.isActive), asUser))
      )

    // The app's mapping meets values the external system chose: a throw is a user that does not
    // fit, as a result that does not decode is, never a defect.
    const hook = <Args extends ReadonlyArray<any>>(map: (...args: Args) => ExternalUser) => (...args: Args) =>
      Effect.map(Effect.flatMap(mapped(backend, () => map(...args)), provision), asUser)

    return { backendId: backend, provision, loadUser, hook }
  })

/**
 * A backend's `provision` hook on the `UserStore` in context: `map` turns what the backend hands
 * to its hook (an `LdapUser`; JWT claims and the decoded user) into an {@link ExternalUser}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Provisioning } from "effect-auth"
 * import type * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * const provision = Provisioning.hook(
 *   { backendId: "ldap" },
 *   (ldap: LdapBackend.LdapUser) => ({ username: ldap.username, email: ldap.fields["email"] })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const hook = <Args extends ReadonlyArray<any>>(
  options: Options,
  map: (...args: Args) => ExternalUser
): Effect.Effect<(...args: Args) => Effect.Effect<User, AuthError.BackendError>, never, UserStore.UserStore> =>
  Effect.map(make(options), (provisioner) => provisioner.hook(map))

/**
 * A backend's `loadUser` on the `UserStore` in context: sessions of provisioned users resolve by
 * their local id; inactive users resolve to none.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Provisioning } from "effect-auth"
 *
 * const loadUser = Provisioning.loadUser({ backendId: "ldap" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadUser = (
  options: Options
): Effect.Effect<(userId: string) => Effect.Effect<Option.Option<User>, AuthError.TransportError>, never, UserStore.UserStore> =>
  Effect.map(make(options), (provisioner) => provisioner.loadUser)
