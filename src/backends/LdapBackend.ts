/**
 * A backend whose users live in an LDAP directory (OpenLDAP, 389-ds, Active Directory), reached
 * with `ldapts`. The LDAP counterpart of django-auth-ldap's `LDAPBackend`.
 *
 * The user's DN comes either from a template (`uid=%(user)s,ou=people,dc=example,dc=org`, "direct
 * bind") or from a search with a service account ("search, then bind"); the user's password is
 * then checked by binding as that DN. Attributes map onto user fields, group membership
 * (groupOfNames search or a memberOf attribute) can require or deny access, set the
 * `isActive`/`isStaff`/`isSuperuser` flags and grant permissions.
 *
 * Outcomes: wrong password (result code 49), unknown DN → `NoMatch("invalid-credentials")`; no
 * entry in a user search → `NoMatch("unknown-user")`; member of a denied group →
 * `PermissionDenied`; not in the required group or not active → `NoMatch("inactive-user")`;
 * directory down, timed out or any other LDAP error → `TransportError` (never with the password).
 * An empty password is refused before any bind, since LDAP treats it as an anonymous
 * ("unauthenticated") bind that some servers accept.
 *
 * The user name is escaped before it goes into a filter (RFC 4515) or a DN (RFC 4514).
 * Every call opens its own connection and unbinds it at the end. At most `maxConcurrent` calls
 * hold a connection at once and `maxWaiting` more wait for one; past that a call fails at once
 * with a `TransportError` (the directory is busy), as the password hasher sheds its load.
 *
 * @example
 * ```ts
 * import { Layer, Redacted } from "effect"
 * import { AuthEvents, AuthService } from "effect-auth"
 * import * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * const LdapLive = LdapBackend.layer({
 *   url: "ldap://ldap.example.org",
 *   startTls: true,
 *   bindDn: "cn=reader,ou=services,dc=example,dc=org",
 *   bindPassword: Redacted.make("reader-secret"),
 *   userSearch: { base: "ou=people,dc=example,dc=org", filter: "(uid=%(user)s)" },
 *   userAttributes: { email: "mail", firstName: "givenName", lastName: "sn" },
 *   groups: { type: "groupOfNames", base: "ou=groups,dc=example,dc=org" },
 *   denyGroup: "cn=banned,ou=groups,dc=example,dc=org",
 *   flagsByGroup: { isSuperuser: "cn=admins,ou=groups,dc=example,dc=org" },
 *   permissionsByGroup: { "cn=editors,ou=groups,dc=example,dc=org": ["blog.change_post"] }
 * })
 *
 * const AuthLive = AuthService.layer([LdapBackend.LdapBackend]).pipe(
 *   Layer.provide(LdapLive),
 *   Layer.provideMerge(AuthEvents.layer)
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as tls from "node:tls"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { FilterParser } from "ldapts"
import * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import type { AuthRequest } from "../AuthRequest.js"
import * as Credentials from "../Credentials.js"
import { forRequest, makeLimiter, readLimits } from "../internal/hashers/admission.js"
import * as Ldap from "../internal/ldap/client.js"
import { firstRdnValue, normalizeDn } from "../internal/ldap/dn.js"
import * as Escape from "../internal/ldap/escape.js"
import { holdsModulePerm } from "../internal/storeBackend.js"
import * as Permissions from "../Permissions.js"
import type { User } from "../User.js"

/**
 * The backend as a service, so apps pass the tag to `AuthService.layer` and tests swap it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * const program = Effect.flatMap(LdapBackend.LdapBackend, (backend) => backend.getUser("alice"))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class LdapBackend extends Context.Tag("effect-auth/LdapBackend")<
  LdapBackend,
  AuthBackend.AuthBackend<Credentials.UsernamePassword>
>() {}

/**
 * One group DN, or several of which any one counts.
 *
 * @example
 * ```ts
 * import type * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * const admins: LdapBackend.GroupList = "cn=admins,ou=groups,dc=example,dc=org"
 * const staff: LdapBackend.GroupList = ["cn=staff,ou=groups,dc=example,dc=org", "cn=admins,ou=groups,dc=example,dc=org"]
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type GroupList = string | ReadonlyArray<string>

/**
 * How to find a user's groups: a search for `groupOfNames` (or `groupOfUniqueNames`, with
 * `memberAttribute: "uniqueMember"`) entries that list the user's DN, or the user entry's
 * `memberOf` attribute (OpenLDAP's memberof overlay, Active Directory).
 *
 * @example
 * ```ts
 * import type * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * const bySearch: LdapBackend.GroupMembership = { type: "groupOfNames", base: "ou=groups,dc=example,dc=org" }
 * const byAttribute: LdapBackend.GroupMembership = { type: "memberOf" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type GroupMembership =
  | {
    readonly type: "groupOfNames"
    readonly base: string
    /** Which entries are groups. Default: `(objectClass=groupOfNames)`. */
    readonly filter?: string | undefined
    /** Default: `"sub"`. */
    readonly scope?: "one" | "sub" | undefined
    /** The attribute that holds member DNs. Default: `"member"`. */
    readonly memberAttribute?: string | undefined
  }
  | {
    readonly type: "memberOf"
    /** Default: `"memberOf"`. */
    readonly attribute?: string | undefined
  }

/**
 * Where to search for the user in "search, then bind" mode. `%(user)s` in the filter is replaced
 * by the escaped user name.
 *
 * @example
 * ```ts
 * import type * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * const search: LdapBackend.UserSearch = {
 *   base: "ou=people,dc=example,dc=org",
 *   filter: "(&(objectClass=inetOrgPerson)(uid=%(user)s))"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface UserSearch {
  readonly base: string
  /** Default: `(uid=%(user)s)`. */
  readonly filter?: string | undefined
  /** Default: `"sub"`. */
  readonly scope?: "one" | "sub" | undefined
}

/**
 * What the directory says about a user, as handed to `provision`.
 *
 * @example
 * ```ts
 * import type * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * const email = (user: LdapBackend.LdapUser) => user.attributes["mail"]?.[0]
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface LdapUser {
  readonly dn: string
  /** The `usernameAttribute` of the entry (the name typed at login when the entry has none). */
  readonly username: string
  /** The requested attributes, names in lower case (never `userPassword`). */
  readonly attributes: Readonly<Record<string, ReadonlyArray<string>>>
  /** Group DNs as the directory spells them. */
  readonly groups: ReadonlyArray<string>
  /**
   * The groups' names: the value of each DN's first RDN, unescaped, in the order of `groups`
   * (`cn=R&D\2C Paris,ou=groups,dc=example,dc=org` is `R&D, Paris`, `cn=a\3Db,...` is `a=b`), as
   * django-auth-ldap's `MIRROR_GROUPS` names the local groups. A DN that does not parse, or whose
   * value is empty, is left out. Splitting the DN by hand (`dn.split(",")`) gets escaped names
   * wrong.
   *
   * @since 0.4.0
   */
  readonly groupNames: ReadonlyArray<string>
  /** The `userAttributes` mapping applied: field name → first value. */
  readonly fields: Readonly<Record<string, string>>
  readonly isActive: boolean
  readonly isStaff: boolean
  readonly isSuperuser: boolean
}

/**
 * The backend's configuration. Exactly one of `userDnTemplate` (direct bind) and `userSearch`
 * (search, then bind) must be given.
 *
 * @example
 * ```ts
 * import type * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * const options: LdapBackend.Options = {
 *   url: "ldaps://ldap.example.org",
 *   userDnTemplate: "uid=%(user)s,ou=people,dc=example,dc=org",
 *   groups: { type: "memberOf" },
 *   requireGroup: "cn=staff,ou=groups,dc=example,dc=org",
 *   // at most 16 connections to the directory; 64 more calls may wait; the rest: 503 at once
 *   maxConcurrent: 16,
 *   maxWaiting: 64
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default: `"ldap"`. */
  readonly id?: string | undefined
  /** `ldap://host:port` or `ldaps://host:port`. */
  readonly url: string
  /** Upgrade an `ldap://` connection with StartTLS before anything else is sent. Default: false. */
  readonly startTls?: boolean | undefined
  /** Node TLS options (ca, servername, rejectUnauthorized, ...) for `ldaps://` or StartTLS; on `ldap://` without `startTls`, an `AuthConfigError`. */
  readonly tlsOptions?: tls.ConnectionOptions | undefined
  /**
   * How long to wait for the TCP (and TLS) connection. With `startTls`, the StartTLS step (its
   * request and the handshake after it) may take this plus `timeout`. Default: 5 seconds.
   */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** How long each LDAP operation may take. Default: 10 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * How many calls may hold a connection to the directory at once: logins, `getUser` lookups and
   * the permission lookups of `authorizeAllUsers` and `loadUser` users, together (each call opens
   * one connection of its own). A positive integer. Default: 64.
   *
   * The bound is for the directory and for this process: without it, a flood of logins with
   * distinct names held a socket and a bind at the directory each for as long as the directory
   * took (2000 logins against one that never answers: 2000 sockets for 10 seconds), where Django
   * is bounded by its worker count. 64 is above a healthy directory's need, where a login is a
   * few round trips of milliseconds each (64 in flight serve thousands of logins per second), and
   * of the order of what a Django deployment keeps in flight (a few dozen workers and threads).
   */
  readonly maxConcurrent?: number | undefined
  /**
   * How many more calls may wait for a connection when `maxConcurrent` are open; past that a call
   * fails at once, without connecting, with `TransportError` (cause `busy: ...`), which the fold
   * treats as any directory failure (503, or the next backend under `onTransportError:
   * "fallthrough"`). A non-negative integer; `0` refuses whatever cannot connect at once.
   * Default: 256, 4 × the default `maxConcurrent`, the password hasher's ratio: a burst of 320
   * logins against a healthy directory is served rather than refused, and a waiting call holds no
   * socket, only its fiber. Time spent waiting counts against `policy.timeout`, not `timeout`.
   */
  readonly maxWaiting?: number | undefined
  /** The service account's DN, for user searches, group lookups and `getUser`. */
  readonly bindDn?: string | undefined
  readonly bindPassword?: Redacted.Redacted<string> | undefined
  /**
   * Direct bind: the user's DN, with `%(user)s` replaced by the escaped user name, or a function
   * that receives the user name already escaped as a DN attribute value.
   */
  readonly userDnTemplate?: string | ((escapedUsername: string) => string) | undefined
  /** Search, then bind. */
  readonly userSearch?: UserSearch | undefined
  /** The attribute that holds the user name (the user's id). Default: `"uid"`. */
  readonly usernameAttribute?: string | undefined
  /** User field → LDAP attribute, e.g. `{ email: "mail", firstName: "givenName", lastName: "sn" }`. */
  readonly userAttributes?: Readonly<Record<string, string>> | undefined
  /** Required for every group option below. */
  readonly groups?: GroupMembership | undefined
  /** Only members (of any one) may log in; others get `NoMatch("inactive-user")`. */
  readonly requireGroup?: GroupList | undefined
  /** Members (of any one) get `PermissionDenied`, which stops the whole chain. */
  readonly denyGroup?: GroupList | undefined
  /** Each flag is true for members of (any one of) its groups. `isActive` defaults to true when unset. */
  readonly flagsByGroup?: {
    readonly isActive?: GroupList | undefined
    readonly isStaff?: GroupList | undefined
    readonly isSuperuser?: GroupList | undefined
  } | undefined
  /** Group DN → permissions (`app_label.codename`) its members hold. */
  readonly permissionsByGroup?: Readonly<Record<string, ReadonlyArray<string>>> | undefined
  /**
   * Answer permission questions for users this backend did not produce, by looking their user
   * name up in the directory (django-auth-ldap's `AUTHORIZE_ALL_USERS`). Default: false. Only an
   * entry whose `usernameAttribute` is the user name spelled exactly counts: a local `ALICE` gets
   * nothing from `alice`'s groups, though the directory finds her entry by that name.
   */
  readonly authorizeAllUsers?: boolean | undefined
  /** Turns a directory user into the app's user at login (e.g. create or update it in a `UserStore`). */
  readonly provision?:
    | ((user: LdapUser) => Effect.Effect<User, AuthError.BackendError>)
    | undefined
  /**
   * Loads a user by id for `getUser` instead of asking the directory (use it with `provision`).
   * With `permissionsByGroup`, the groups of a user it loaded are looked up by the user's
   * `username` on the first permission check of that user object, then remembered.
   */
  readonly loadUser?: ((id: string) => Effect.Effect<Option.Option<User>, AuthError.TransportError>) | undefined
  readonly policy?: AuthBackend.PolicyInput | undefined
}

/**
 * Escapes a value for an LDAP search filter (RFC 4515): `*`, `(`, `)`, `\`, NUL and other ASCII
 * control characters become `\xx`. For hand-written filters; the backend escapes user names itself.
 *
 * @example
 * ```ts
 * import * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * LdapBackend.escapeFilterValue("*)(uid=*") // "\\2a\\29\\28uid=\\2a"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const escapeFilterValue: (value: string) => string = Escape.escapeFilterValue

/**
 * Escapes an attribute value for a DN (RFC 4514): `, + " \ < > ; =` get a backslash, as do a
 * leading space or `#` and a trailing space; NUL and ASCII control characters become `\xx`.
 *
 * @example
 * ```ts
 * import * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * LdapBackend.escapeDnValue("Smith, John") // "Smith\\, John"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const escapeDnValue: (value: string) => string = Escape.escapeDnValue

const configError = (message: string) => new AuthError.AuthConfigError({ message: `LdapBackend: ${message}` })

const reservedFields = new Set(["id", "username", "isActive", "isStaff", "isSuperuser"])
const isPermission = Schema.is(Permissions.Permission)
const isUsername = Schema.is(Credentials.Username)

interface Group {
  readonly dn: string
  readonly key: string
}

type Locate =
  | { readonly _tag: "Template"; readonly dn: (escapedUsername: string) => string }
  | { readonly _tag: "Search"; readonly base: string; readonly filter: string; readonly scope: "one" | "sub" }

type Membership =
  | { readonly _tag: "None" }
  | {
    readonly _tag: "Search"
    readonly base: string
    readonly filter: string
    readonly scope: "one" | "sub"
    readonly memberAttribute: string
  }
  | { readonly _tag: "MemberOf"; readonly attribute: string }

interface Compiled {
  readonly id: string
  readonly connection: Ldap.ConnectionOptions
  readonly maxConcurrent: number
  readonly maxWaiting: number
  readonly service: { readonly dn: string; readonly password: Redacted.Redacted<string> } | undefined
  readonly locate: Locate
  readonly usernameAttribute: string
  readonly fieldMap: ReadonlyArray<readonly [field: string, attribute: string]>
  readonly requested: ReadonlyArray<string>
  readonly membership: Membership
  readonly require: ReadonlyArray<Group> | undefined
  readonly deny: ReadonlyArray<Group> | undefined
  readonly isActive: ReadonlyArray<Group> | undefined
  readonly isStaff: ReadonlyArray<Group> | undefined
  readonly isSuperuser: ReadonlyArray<Group> | undefined
  readonly permissions: ReadonlyMap<string, ReadonlyArray<string>> | undefined
  readonly authorizeAllUsers: boolean
}

const millis = (input: Duration.DurationInput | undefined, fallback: Duration.DurationInput, name: string) => {
  const duration = Duration.decodeUnknown(input ?? fallback)
  if (Option.isNone(duration)) return Effect.fail(configError(`${name} is not a duration`))
  if (!Duration.isFinite(duration.value)) return Effect.succeed(0)
  const ms = Duration.toMillis(duration.value)
  return ms <= 0 ? Effect.fail(configError(`${name} must be positive`)) : Effect.succeed(Math.ceil(ms))
}

const groupList = (list: GroupList | undefined, name: string): Effect.Effect<ReadonlyArray<Group> | undefined, AuthError.AuthConfigError> => {
  if (list === undefined) return Effect.succeed(undefined)
  const dns = typeof list === "string" ? [list] : list
  return Effect.forEach(dns, (dn) =>
    Option.match(normalizeDn(dn), {
      onNone: () => Effect.fail(configError(`${name}: "${dn}" is not a DN`)),
      onSome: (key) => Effect.succeed({ dn, key })
    }))
}

const checkFilter = (filter: string, name: string): Effect.Effect<void, AuthError.AuthConfigError> =>
  Effect.try({
    try: () => void FilterParser.parseString(Escape.fillTemplate(filter, "x")),
    catch: () => configError(`${name} is not an LDAP filter: ${filter}`)
  })

const checkDn = (dn: string, name: string): Effect.Effect<void, AuthError.AuthConfigError> =>
  Option.isSome(normalizeDn(dn)) && dn.trim() !== "" ? Effect.void : Effect.fail(configError(`${name} is not a DN: "${dn}"`))

const compileOptions = (options: Options): Effect.Effect<Compiled, AuthError.AuthConfigError> =>
  Effect.gen(function*() {
    const id = options.id ?? "ldap"
    if (id === "") return yield* configError("id must not be empty")

    let protocol: string
    try {
      protocol = new URL(options.url).protocol
    } catch {
      return yield* configError(`url is not a URL: ${options.url}`)
    }
    if (protocol !== "ldap:" && protocol !== "ldaps:") {
      return yield* configError(`url must start with ldap:// or ldaps://, got ${options.url}`)
    }
    const startTls = options.startTls ?? false
    if (startTls && protocol === "ldaps:") return yield* configError("startTls needs an ldap:// url (ldaps:// is TLS already)")
    // TLS options on a plain ldap:// url without StartTLS would never be used: every bind, its
    // password with it, would go in clear while the configuration reads as TLS.
    if (options.tlsOptions !== undefined && protocol === "ldap:" && !startTls) {
      return yield* configError("tlsOptions need an ldaps:// url or startTls: true (on ldap:// alone the passwords go in clear)")
    }
    const connection: Ldap.ConnectionOptions = {
      url: options.url,
      startTls,
      tlsOptions: options.tlsOptions,
      connectTimeout: yield* millis(options.connectTimeout, "5 seconds", "connectTimeout"),
      timeout: yield* millis(options.timeout, "10 seconds", "timeout")
    }
    const limits = readLimits(options)
    if ("problem" in limits) return yield* configError(limits.problem)
    const { maxConcurrent, maxWaiting } = limits

    if ((options.bindDn === undefined) !== (options.bindPassword === undefined)) {
      return yield* configError("bindDn and bindPassword go together")
    }
    let service: Compiled["service"] = undefined
    if (options.bindDn !== undefined && options.bindPassword !== undefined) {
      yield* checkDn(options.bindDn, "bindDn")
      // an empty password would make the service bind anonymous
      if (Redacted.value(options.bindPassword) === "") return yield* configError("bindPassword must not be empty")
      service = { dn: options.bindDn, password: options.bindPassword }
    }

    let locate: Locate
    if (options.userDnTemplate !== undefined && options.userSearch !== undefined) {
      return yield* configError("give userDnTemplate or userSearch, not both")
    } else if (options.userDnTemplate !== undefined) {
      const template = options.userDnTemplate
      if (typeof template === "string") {
        if (!template.includes(Escape.placeholder)) {
          return yield* configError(`userDnTemplate must contain ${Escape.placeholder}`)
        }
        yield* checkDn(Escape.fillTemplate(template, "x"), "userDnTemplate")
        locate = { _tag: "Template", dn: (escaped) => Escape.fillTemplate(template, escaped) }
      } else {
        locate = { _tag: "Template", dn: template }
      }
    } else if (options.userSearch !== undefined) {
      const search = options.userSearch
      const filter = search.filter ?? `(uid=${Escape.placeholder})`
      if (!filter.includes(Escape.placeholder)) return yield* configError(`userSearch.filter must contain ${Escape.placeholder}`)
      yield* checkFilter(filter, "userSearch.filter")
      yield* checkDn(search.base, "userSearch.base")
      locate = { _tag: "Search", base: search.base, filter, scope: search.scope ?? "sub" }
    } else {
      return yield* configError("give userDnTemplate (direct bind) or userSearch (search, then bind)")
    }

    const usernameAttribute = (options.usernameAttribute ?? "uid").toLowerCase()
    const fieldMap: Array<readonly [string, string]> = []
    for (const [field, attribute] of Object.entries(options.userAttributes ?? {})) {
      if (reservedFields.has(field)) return yield* configError(`userAttributes cannot set "${field}"`)
      fieldMap.push([field, attribute.toLowerCase()])
    }

    let membership: Membership = { _tag: "None" }
    const groups = options.groups
    if (groups?.type === "groupOfNames") {
      const filter = groups.filter ?? "(objectClass=groupOfNames)"
      yield* checkFilter(filter, "groups.filter")
      yield* checkDn(groups.base, "groups.base")
      membership = {
        _tag: "Search",
        base: groups.base,
        filter,
        scope: groups.scope ?? "sub",
        memberAttribute: groups.memberAttribute ?? "member"
      }
    } else if (groups?.type === "memberOf") {
      membership = { _tag: "MemberOf", attribute: (groups.attribute ?? "memberOf").toLowerCase() }
    }

    const require = yield* groupList(options.requireGroup, "requireGroup")
    const deny = yield* groupList(options.denyGroup, "denyGroup")
    const isActive = yield* groupList(options.flagsByGroup?.isActive, "flagsByGroup.isActive")
    const isStaff = yield* groupList(options.flagsByGroup?.isStaff, "flagsByGroup.isStaff")
    const isSuperuser = yield* groupList(options.flagsByGroup?.isSuperuser, "flagsByGroup.isSuperuser")
    let permissions: Map<string, Array<string>> | undefined
    if (options.permissionsByGroup !== undefined) {
      permissions = new Map()
      for (const [dn, perms] of Object.entries(options.permissionsByGroup)) {
        const key = normalizeDn(dn)
        if (Option.isNone(key)) return yield* configError(`permissionsByGroup: "${dn}" is not a DN`)
        for (const perm of perms) {
          if (!isPermission(perm)) return yield* configError(`permissionsByGroup: "${perm}" is not app_label.codename`)
        }
        permissions.set(key.value, [...(permissions.get(key.value) ?? []), ...perms])
      }
    }
    const usesGroups = [require, deny, isActive, isStaff, isSuperuser, permissions].some((x) => x !== undefined)
    if (usesGroups && membership._tag === "None") {
      return yield* configError("group options need `groups` (how to find a user's groups)")
    }

    const authorizeAllUsers = options.authorizeAllUsers ?? false
    if (authorizeAllUsers && service === undefined && locate._tag === "Template") {
      return yield* configError("authorizeAllUsers needs a service account (bindDn) or userSearch to look users up")
    }

    const requested = new Set([usernameAttribute, ...fieldMap.map(([, attribute]) => attribute)])
    if (membership._tag === "MemberOf") requested.add(membership.attribute)
    requested.delete("userpassword")

    return {
      id,
      connection,
      maxConcurrent,
      maxWaiting,
      service,
      locate,
      usernameAttribute,
      fieldMap,
      requested: [...requested],
      membership,
      require,
      deny,
      isActive,
      isStaff,
      isSuperuser,
      permissions,
      authorizeAllUsers
    }
  })

/**
 * Builds the backend. Fails with `AuthConfigError` when the options are unusable (both or
 * neither of `userDnTemplate`/`userSearch`, a malformed DN or filter, group options without
 * `groups`, a `maxConcurrent` or `maxWaiting` that is no count, ...).
 *
 * Every call that opens a connection (`authenticate`, `getUser` without `loadUser`, a permission
 * lookup) takes one of `maxConcurrent` slots, or waits among `maxWaiting` others; one more fails
 * at once with a `TransportError` whose cause starts with `busy:`, before connecting. The places
 * are shared fairly between clients: a login runs as a call of the request's client address
 * (`PasswordHasher.withClient`), and a client holding far more places than a newcomer's loses
 * its newest waiting call to it, as the password hasher's do (docs/passwords.md).
 *
 * `getUser(id)` uses `loadUser` when given; otherwise it looks the user name up in the directory
 * (with the service account when there is one, anonymously in search mode without one) and
 * returns none for unknown, denied, not-required or inactive users, and for an entry whose
 * `usernameAttribute` is not `id` spelled exactly (the directory matches `ALICE` to `alice`). In
 * direct-bind mode without a service account there is nothing to look users up with, and
 * `getUser` always returns none.
 *
 * With `permissionsByGroup`, permission checks use the groups remembered for the user objects
 * the backend returned. For a user from `loadUser`, the first check looks the user's `username`
 * up in the directory (same exact-name rule) and remembers the groups; a failed lookup is a
 * `TransportError` from the permission method.
 *
 * Without `provision`, the user is built from the directory: `{ id: username, username,
 * isActive, isStaff, isSuperuser, ...userAttributes }`; register a user type to match, or
 * provision into your own.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * const program = Effect.gen(function*() {
 *   const backend = yield* LdapBackend.make({
 *     url: "ldap://127.0.0.1:389",
 *     userDnTemplate: "uid=%(user)s,ou=people,dc=example,dc=org"
 *   })
 *   return yield* backend.authenticate({ username: "alice", password: Redacted.make("pw") }, undefined)
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<AuthBackend.AuthBackend<Credentials.UsernamePassword>, AuthError.AuthConfigError> =>
  Effect.flatMap(compileOptions(options), (compiled) =>
    Effect.map(
      makeLimiter(
        compiled.maxConcurrent,
        compiled.maxWaiting,
        new AuthError.TransportError({
          backend: compiled.id,
          cause: `busy: ${compiled.maxConcurrent} directory calls running and ${compiled.maxWaiting} waiting ` +
            `(maxConcurrent, maxWaiting); refused without connecting`
        })
      ),
      (limited) => build(compiled, options, limited)
    ))

const messageOf = (error: unknown): string => {
  if (error instanceof Error) return error.message.split("\n")[0] ?? error.name
  return String(error)
}

// `connect ECONNREFUSED 127.0.0.1:389` and the like: Node's, built from the socket's address.
const isSocketError = (error: unknown): boolean =>
  error instanceof Error && typeof (error as { syscall?: unknown }).syscall === "string" &&
  typeof (error as { code?: unknown }).code === "string"

type Limited = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | AuthError.TransportError, R>

const build = (c: Compiled, options: Options, limited: Limited): AuthBackend.AuthBackend<Credentials.UsernamePassword> => {
  const backend = c.id
  // groups of the users this backend produced, keyed by the very object it returned
  const groupsByUser = new WeakMap<object, ReadonlySet<string>>()
  // users `getUser` returned from `loadUser`: the directory was not asked, so their groups are
  // looked up when a permission question first needs them (django-auth-ldap's lazy `ldap_user`)
  const loadedUsers = new WeakSet<object>()
  const noGroups: ReadonlySet<string> = new Set()

  // ldapts does not put passwords in its errors, but a server's diagnostic message might. A message
  // holding a password is withheld whole: cutting the password out would leave its place marked
  // in a text otherwise known (a password "7" in "ECONNREFUSED 127.0.0.1:47799"). Node's socket
  // errors are made of the peer's address alone and are kept as they are.
  const transport = (error: Ldap.LdapCallError, password?: Redacted.Redacted<string>) => {
    const text = messageOf(error.error)
    const holdsSecret = !isSocketError(error.error) && [password, c.service?.password].some((secret) => {
      const value = secret === undefined ? "" : Redacted.value(secret)
      return value !== "" && text.includes(value)
    })
    return new AuthError.TransportError({
      backend,
      cause: `${error.op}: ${holdsSecret ? "(the message is withheld: it contains a password)" : text}`
    })
  }
  const noMatch = AuthError.failures(backend).noMatch

  const bindService = (client: Ldap.Client) =>
    c.service === undefined
      ? Effect.void
      : Ldap.bind(client, c.service.dn, c.service.password, "service account bind")

  const findEntry = (client: Ldap.Client, username: string): Effect.Effect<Option.Option<Ldap.LdapEntry>, Ldap.LdapCallError> => {
    const locate = c.locate
    if (locate._tag === "Search") {
      const filter = Escape.fillTemplate(locate.filter, Escape.escapeFilterValue(username))
      // No client-side size limit: ldapts hides the server's sizeLimitExceeded whenever the request
      // carries one, so a server that cuts the answer to one entry (its limit for the bound
      // account) would make an ambiguous search look like a match. Without it, that answer is the
      // error caught below, as django-auth-ldap takes any LDAP error of the search as nobody.
      return Ldap.search(client, locate.base, { scope: locate.scope, filter, attributes: c.requested }, "user search")
        .pipe(
          // two or more matches: ambiguous, so nobody (as django-auth-ldap does)
          Effect.map((entries) => entries.length === 1 ? Option.some(entries[0]!) : Option.none()),
          Effect.catchIf((e) => e.code === Ldap.resultCodes.sizeLimitExceeded, () => Effect.succeed(Option.none()))
        )
    }
    const dn = locate.dn(Escape.escapeDnValue(username))
    return dn === "" ? Effect.succeed(Option.none()) : readEntry(client, dn)
  }

  const readEntry = (client: Ldap.Client, dn: string): Effect.Effect<Option.Option<Ldap.LdapEntry>, Ldap.LdapCallError> =>
    Ldap.search(client, dn, { scope: "base", filter: "(objectClass=*)", attributes: c.requested }, "user read").pipe(
      Effect.map((entries) => Option.fromNullable(entries[0])),
      Effect.catchIf((e) => e.code === Ldap.resultCodes.noSuchObject, () => Effect.succeed(Option.none()))
    )

  const groupsOf = (client: Ldap.Client, entry: Ldap.LdapEntry): Effect.Effect<ReadonlyArray<string>, Ldap.LdapCallError> => {
    const membership = c.membership
    switch (membership._tag) {
      case "None":
        return Effect.succeed([])
      case "MemberOf":
        return Effect.succeed(entry.attributes[membership.attribute] ?? [])
      case "Search": {
        const filter = `(&${membership.filter}(${membership.memberAttribute}=${Escape.escapeFilterValue(entry.dn)}))`
        return Ldap.search(client, membership.base, { scope: membership.scope, filter, attributes: [] }, "group search").pipe(
          Effect.map((entries) => entries.map((e) => e.dn))
        )
      }
    }
  }

  const namesOf = (groups: ReadonlyArray<string>): ReadonlyArray<string> =>
    groups.flatMap((dn) => Option.toArray(Option.filter(firstRdnValue(dn), (name) => name !== "")))

  const keysOf = (groups: ReadonlyArray<string>): ReadonlySet<string> => {
    const keys = new Set<string>()
    for (const dn of groups) {
      // a DN we cannot parse cannot equal a configured one either
      const key = normalizeDn(dn)
      if (Option.isSome(key)) keys.add(key.value)
    }
    return keys
  }
  const memberOfAny = (keys: ReadonlySet<string>, groups: ReadonlyArray<Group> | undefined) =>
    groups !== undefined && groups.some((g) => keys.has(g.key))

  const describe = (entry: Ldap.LdapEntry, groups: ReadonlyArray<string>, typed: string) => {
    const keys = keysOf(groups)
    const fields: Record<string, string> = {}
    for (const [field, attribute] of c.fieldMap) {
      const value = entry.attributes[attribute]?.[0]
      if (value !== undefined) fields[field] = value
    }
    const user: LdapUser = {
      dn: entry.dn,
      username: entry.attributes[c.usernameAttribute]?.[0] ?? typed,
      attributes: entry.attributes,
      groups,
      groupNames: namesOf(groups),
      fields,
      isActive: c.isActive === undefined || memberOfAny(keys, c.isActive),
      isStaff: memberOfAny(keys, c.isStaff),
      isSuperuser: memberOfAny(keys, c.isSuperuser)
    }
    return { user, keys }
  }

  /** The access rules, in order of strength: a denied group wins over everything. */
  const admit = (user: LdapUser, keys: ReadonlySet<string>): Effect.Effect<void, AuthError.NoMatch | AuthError.PermissionDenied> => {
    const denied = c.deny?.find((g) => keys.has(g.key))
    if (denied !== undefined) {
      return AuthError.failures(backend).permissionDenied(`member of ${denied.dn}`)
    }
    if (c.require !== undefined && !memberOfAny(keys, c.require)) return noMatch("inactive-user")
    if (!user.isActive) return noMatch("inactive-user")
    return Effect.void
  }

  const directoryUser = (user: LdapUser): User =>
    ({
      ...user.fields,
      id: user.username,
      username: user.username,
      isActive: user.isActive,
      isStaff: user.isStaff,
      isSuperuser: user.isSuperuser
    }) as unknown as User

  const remember = (user: User, keys: ReadonlySet<string>): User => {
    groupsByUser.set(user, keys)
    return user
  }

  const authenticate = (
    credentials: Credentials.UsernamePassword
  ): Effect.Effect<User, AuthError.BackendError> => {
    const { password, username } = credentials
    if (username === "") return noMatch("unknown-user")
    // LDAP takes a DN with an empty password as an anonymous bind, which some servers accept
    if (Redacted.value(password) === "") return noMatch("invalid-credentials")
    const toTransport = (error: Ldap.LdapCallError) => transport(error, password)
    // In direct mode the DN is made of what the user typed: a DN the server cannot parse names
    // nobody there, as a wrong password does. A found entry's DN is the directory's own.
    const refused = (code: number | undefined, typed: boolean) =>
      code === Ldap.resultCodes.invalidCredentials || (typed && code === Ldap.resultCodes.invalidDnSyntax)
    const bindUser = (client: Ldap.Client, dn: string, typed: boolean) =>
      Ldap.bind(client, dn, password, "user bind").pipe(
        Effect.catchIf((e) => refused(e.code, typed), () => noMatch("invalid-credentials")),
        Effect.mapError((e) => e instanceof AuthError.NoMatch ? e : toTransport(e))
      )
    // The slot is held from before connecting until the connection is closed (Effect.scoped).
    return limited(Effect.scoped(Effect.gen(function*() {
      const client = yield* Effect.mapError(Ldap.connect(c.connection), toTransport)
      let entry: Ldap.LdapEntry
      if (c.locate._tag === "Search") {
        yield* Effect.mapError(bindService(client), toTransport)
        const found = yield* Effect.mapError(findEntry(client, username), toTransport)
        if (Option.isNone(found)) return yield* noMatch("unknown-user")
        entry = found.value
        yield* bindUser(client, entry.dn, false)
        // read groups with the same rights getUser has
        yield* Effect.mapError(bindService(client), toTransport)
      } else {
        const dn = c.locate.dn(Escape.escapeDnValue(username))
        if (dn === "") return yield* noMatch("unknown-user")
        yield* bindUser(client, dn, true)
        yield* Effect.mapError(bindService(client), toTransport)
        // a bind can succeed without an entry (a rootdn): no entry, no user
        const found = yield* Effect.mapError(readEntry(client, dn), toTransport)
        if (Option.isNone(found)) return yield* noMatch("unknown-user")
        entry = found.value
      }
      const groups = yield* Effect.mapError(groupsOf(client, entry), toTransport)
      return describe(entry, groups, username)
    }))).pipe(
      // the connection is closed (and its slot free) before provisioning, which may take its time
      Effect.tap(({ keys, user }) => admit(user, keys)),
      Effect.flatMap(({ keys, user }) =>
        options.provision === undefined
          ? Effect.succeed(remember(directoryUser(user), keys))
          : Effect.map(options.provision(user), (appUser) => remember(appUser, keys))
      )
    )
  }

  const canLookUp = c.service !== undefined || c.locate._tag === "Search"

  /**
   * Whether an entry is the one a user name from elsewhere (a session's id, another backend's
   * user) stands for: its `usernameAttribute` spelled exactly so. The directory found the entry
   * ignoring case and insignificant spaces (`ALICE` and ` alice` find `alice`), which is right for
   * a login, whose password then decides, but would hand `alice`'s entry to a different local user.
   */
  const isEntryOf = (entry: Ldap.LdapEntry, username: string): boolean =>
    entry.attributes[c.usernameAttribute]?.[0] === username

  /**
   * The directory's view of a user name, with the service account (or anonymously): none unless
   * the entry's user name is exactly this one (see {@link isEntryOf}).
   */
  const lookUp = (username: string) =>
    limited(Effect.gen(function*() {
      const client = yield* Ldap.connect(c.connection)
      yield* bindService(client)
      const found = yield* findEntry(client, username)
      if (Option.isNone(found) || !isEntryOf(found.value, username)) return Option.none()
      const groups = yield* groupsOf(client, found.value)
      return Option.some(describe(found.value, groups, username))
    }).pipe(Effect.scoped, Effect.mapError((e) => transport(e))))

  /** The group keys a user name holds in the directory; none for unknown or denied users. */
  const directoryGroupKeys = (username: string): Effect.Effect<ReadonlySet<string>, AuthError.TransportError> =>
    !canLookUp || !isUsername(username)
      ? Effect.succeed(noGroups)
      : Effect.map(lookUp(username), (found) => {
        if (Option.isNone(found)) return noGroups
        const { keys } = found.value
        return c.deny?.some((g) => keys.has(g.key)) ? noGroups : keys
      })

  const getUser = (id: string): Effect.Effect<Option.Option<User>, AuthError.TransportError> => {
    if (!isUsername(id)) return Effect.succeed(Option.none())
    if (options.loadUser !== undefined) {
      return c.permissions === undefined
        ? options.loadUser(id)
        : Effect.tap(options.loadUser(id), (user) => {
          if (Option.isSome(user)) loadedUsers.add(user.value)
        })
    }
    if (!canLookUp) return Effect.succeed(Option.none())
    return lookUp(id).pipe(
      Effect.flatMap(Option.match({
        onNone: () => Effect.succeed(Option.none<User>()),
        onSome: ({ keys, user }) =>
          admit(user, keys).pipe(
            Effect.as(Option.some(remember(directoryUser(user), keys))),
            Effect.catchTags({
              NoMatch: () => Effect.succeed(Option.none<User>()),
              PermissionDenied: () => Effect.succeed(Option.none<User>())
            })
          )
      }))
    )
  }

  const base = {
    id: backend,
    credentials: Credentials.UsernamePassword,
    // The connections are shared fairly between client addresses (the limiter's buckets).
    authenticate: (credentials: Credentials.UsernamePassword, request: AuthRequest | undefined) =>
      forRequest(authenticate(credentials), request),
    getUser,
    ...(options.policy === undefined ? {} : { policy: options.policy })
  }
  const permissions = c.permissions
  if (permissions === undefined) return AuthBackend.make(base)

  const groupKeysOf = (user: User): Effect.Effect<ReadonlySet<string>, AuthError.TransportError> => {
    const known = groupsByUser.get(user)
    if (known !== undefined) return Effect.succeed(known)
    // a user loadUser gave: looked up once, then remembered like a user from authenticate
    if (loadedUsers.has(user)) {
      return Effect.tap(directoryGroupKeys(user.username), (keys) => {
        groupsByUser.set(user, keys)
      })
    }
    return c.authorizeAllUsers ? directoryGroupKeys(user.username) : Effect.succeed(noGroups)
  }
  const getAllPermissions = (user: User, obj?: unknown): Effect.Effect<ReadonlySet<string>, AuthError.TransportError> => {
    // object permissions need a backend built for them; inactive users hold nothing (as in Django)
    if (obj !== undefined || !user.isActive) return Effect.succeed(new Set())
    return Effect.map(groupKeysOf(user), (keys) => {
      const perms = new Set<string>()
      for (const key of keys) for (const perm of permissions.get(key) ?? []) perms.add(perm)
      return perms
    })
  }
  return AuthBackend.make({
    ...base,
    getAllPermissions,
    hasPerm: (user, perm, obj) => Effect.map(getAllPermissions(user, obj), (perms) => perms.has(perm)),
    hasModulePerms: (user, appLabel) => Effect.map(getAllPermissions(user), (perms) => holdsModulePerm(perms, appLabel))
  })
}

/**
 * The backend as a layer.
 *
 * @example
 * ```ts
 * import * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * const LdapLive = LdapBackend.layer({
 *   url: "ldap://ldap.example.org",
 *   userDnTemplate: "uid=%(user)s,ou=people,dc=example,dc=org",
 *   policy: { timeout: "3 seconds", onTransportError: "fallthrough" }
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<LdapBackend, AuthError.AuthConfigError> =>
  Layer.effect(LdapBackend, make(options))

/**
 * The backend as a layer whose options come from `Config` (any field may be a `Config`).
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import * as LdapBackend from "effect-auth/backends/LdapBackend"
 *
 * const LdapLive = LdapBackend.layerConfig({
 *   url: Config.string("LDAP_URL"),
 *   bindDn: Config.string("LDAP_BIND_DN"),
 *   bindPassword: Config.redacted("LDAP_BIND_PASSWORD"),
 *   userSearch: {
 *     base: Config.string("LDAP_USER_BASE"),
 *     filter: Config.string("LDAP_USER_FILTER").pipe(Config.withDefault("(uid=%(user)s)"))
 *   },
 *   timeout: Config.duration("LDAP_TIMEOUT").pipe(Config.withDefault("5 seconds"))
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<LdapBackend, ConfigError.ConfigError | AuthError.AuthConfigError> =>
  Layer.effect(LdapBackend, Effect.flatMap(Config.unwrap(config), make))
