/**
 * A `SessionStore` on a Django site's own `django_session` table (Django's database session
 * backend), so that a Django site and an effect-auth service share their users' sessions: a user
 * logged in on either side is logged in on both, a logout on one ends the session on both, and a
 * password change on either side ends the other's sessions (the auth hash no longer matches).
 *
 * Rows are Django's: the session key as primary key, the data as `signing.dumps(data,
 * salt="django.contrib.sessions.SessionStore", compress=True)` (the store class's name: see
 * `storeClass`) with the JSON serializer under the
 * site's `SECRET_KEY` (any of `SECRET_KEY_FALLBACKS` is accepted on read), and `expire_date` in
 * Django's format. The login is Django's three keys: `_auth_user_id`, `_auth_user_backend` (the
 * Django backend path of the effect-auth backend, see `backends`) and `_auth_user_hash`
 * (`get_session_auth_hash()`); the user id is read, as Django reads it through the primary key, as
 * the string Django's `login` writes or as a JSON integer (Djangos before 1.7, another app's code),
 * and written as the string. What effect-auth keeps besides (the CSRF token, the login and
 * last-seen times, the second factor) is one more key, `_effect_auth`, which Django ignores; the
 * keys other Django apps put in a session are kept when effect-auth updates it, in their order and
 * each value as the JSON text Django wrote (a float `10.0` stays a float, an integer past 2^53
 * that integer, `NaN` is kept), effect-auth setting only its own four keys (`replace` writes
 * only over the value it read, and reads again when a write landed in between, so requests
 * refreshing one session at once all find it live), and `_session_expiry` at a login that chose
 * its cookie ("remember me", as a Django view's `set_expiry` after `login()`; read back as
 * `SessionRecord.expireAtBrowserClose`); they move with the
 * session to its new key at a login, as Django's `cycle_key` moves them (`cycle`). `expire_date`
 * is the one written last, by either side: a Django save moves it to `SESSION_COOKIE_AGE` from then,
 * and `Session` checks its `maxAge` and `idleTimeout` against the times in `_effect_auth` whatever
 * it says (a session Django made counts as seen at the first request effect-auth serves). A live session
 * that is no effect-auth login (an anonymous one holding a cart) is answered by `isLive`, so that
 * the HTTP layer keeps its cookie.
 *
 * `expire_date` is read and written in UTC, as Django keeps it under `USE_TZ = True` (its default
 * since 5.0). A site on `USE_TZ = False` writes its `TIME_ZONE`'s local time, which SQLite keeps
 * without a zone: both sides then misjudge the other's expiry by the offset. Set `USE_TZ = True`
 * or `TIME_ZONE = "UTC"` there (PostgreSQL's column keeps the zone, and is right either way).
 *
 * A Django 3.1–3.2 site still on `DEFAULT_HASHING_ALGORITHM = "sha1"` reads only the pre-3.1
 * session format and the SHA-1 auth hash: give it `hashingAlgorithm: "sha1"`, here and on `Session`.
 *
 * Use it with `Session.layer({ format: "django", secret: <SECRET_KEY> })`, the store of users on
 * the same database (`SqlUserStore` with `django`), and the session cookie named as Django's
 * `SESSION_COOKIE_NAME` (`sessionid`, `HttpAuth`'s default). The table belongs to Django: this
 * store never creates or alters it. Run Django's `clearsessions` or `Session.clearExpired`.
 *
 * A site that keeps its sessions in its Redis cache (Django's `cache` session backend on
 * `django.core.cache.backends.redis.RedisCache`) is shared through {@link layerCache} instead.
 *
 * @example
 * ```ts
 * import { Layer, Redacted } from "effect"
 * import { DjangoSessionStore, Session, SqlUserStore } from "effect-auth"
 *
 * const secret = Redacted.make(process.env.DJANGO_SECRET_KEY ?? "")
 * const Database = SqlUserStore.layerPg({ url: Redacted.make("postgres://app@db/site"), django: true })
 * const Sessions = Session.layer({ secret, format: "django" }).pipe(
 *   Layer.provide(DjangoSessionStore.layer({ secret }).pipe(Layer.provide(Database)))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createHash, createHmac } from "node:crypto"
import { AuthConfigError } from "./AuthError.js"
import * as Pickle from "./internal/django/pickle.js"
import * as CompareAndSet from "./internal/session/compareAndSet.js"
import * as Signing from "./internal/django/signing.js"
import * as SqlTables from "./internal/sqlTables.js"
import { djangoSqliteTime, Timestamp } from "./internal/sqlUserStore.js"
import { hashingAlgorithmOf } from "./internal/session/crypto.js"
import * as SessionStore from "./SessionStore.js"
import { safeCause } from "./internal/storeError.js"
import { withValueFreeSpan } from "./internal/tracing.js"
import { nullIfWrongType } from "./internal/redisWrongType.js"

/**
 * The Django site's settings the store needs.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type { DjangoSessionStore } from "effect-auth"
 *
 * const options: DjangoSessionStore.Options = {
 *   secret: Redacted.make("the Django site's SECRET_KEY"),
 *   backends: { model: "django.contrib.auth.backends.ModelBackend", ldap: "django_auth_ldap.backend.LDAPBackend" }
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The site's `SECRET_KEY`: signs the session data. */
  readonly secret: Redacted.Redacted<string>
  /** The site's `SECRET_KEY_FALLBACKS`: session data signed with one of them is still read. */
  readonly fallbackSecrets?: ReadonlyArray<Redacted.Redacted<string>> | undefined
  /**
   * Each effect-auth backend id whose sessions Django shares, and the path Django knows that
   * backend by (an entry of its `AUTHENTICATION_BACKENDS`). A session of a backend not listed is
   * stored for effect-auth alone: Django sees an anonymous session. Default: `{ model: "django.contrib.auth.backends.ModelBackend" }`.
   */
  readonly backends?: Readonly<Record<string, string>> | undefined
  /** The table. Default: `django_session`. */
  readonly table?: string | undefined
  /**
   * The `__qualname__` of the site's session store class. Django salts the signature of the
   * session data with `"django.contrib.sessions." + that name`, which is `SessionStore` for its
   * db and cached_db engines and for a subclass that keeps the name; a store class of another
   * name (`class CustomStore(DBStore)`) signs with its own. Default: `SessionStore`.
   */
  readonly storeClass?: string | undefined
  /**
   * The site's `SESSION_COOKIE_AGE`: dates the start of a session Django made (Django does not
   * record it), for `Session`'s `maxAge`: its last save, `expire_date` less this age, or less
   * the session's own `_session_expiry` seconds where a view set one (`set_expiry(3600)`); now,
   * when that is a datetime. Also the age a login that asks for a lasting cookie is given
   * (`set_expiry(SESSION_COOKIE_AGE)`), or its time left where longer. Default: 14 days, Django's.
   */
  readonly cookieAge?: Duration.DurationInput | undefined
  /** How long one store operation may take before it fails with a store error. Default: 5 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * The site's `DEFAULT_HASHING_ALGORITHM` (Django 3.1–3.2). Under `"sha1"` Django 3.2 writes the
   * session data in the pre-3.1 format (`base64(hash + ":" + json)`, the hash a salted HMAC-SHA1)
   * and reads no SHA-256 signature, so the store writes that format too; give `Session` the same
   * option, for the auth hash. Either format is read whatever the setting. Default: `"sha256"`.
   */
  readonly hashingAlgorithm?: "sha256" | "sha1" | undefined
}


// What effect-auth keeps in a Django session besides Django's own keys.
const Extra = Schema.Struct({
  csrf: Schema.String,
  createdAt: Schema.Number,
  lastSeenAt: Schema.Number,
  degraded: Schema.optional(Schema.Boolean),
  secondFactor: Schema.optional(Schema.String),
  secondFactorDevice: Schema.optional(Schema.String)
})
const decodeExtra = Schema.decodeUnknownOption(Extra)

const Row = Schema.Struct({ session_data: Schema.String, expire_date: Timestamp })
const decodeRows = Schema.decodeUnknown(Schema.Array(Row))
const decodeKeys = Schema.decodeUnknown(Schema.Array(Schema.Struct({ session_key: Schema.String })))

const storeError = (operation: string) => (cause: unknown) => new SessionStore.SessionStoreError({ operation, cause: safeCause(cause) })

// The keys effect-auth reads and writes in a Django session; every other key is another app's,
// written back as it was read: its place, and its value as Django wrote it (on the database its
// JSON text, `Signing.RawJson`; in the cache its pickle opcodes, `Pickle.RawPickle`).
const ownKeys = ["_auth_user_id", "_auth_user_backend", "_auth_user_hash", "_effect_auth"] as const

// Read besides them: the age Django gave the session (`set_expiry`), which dates the start of a
// session Django made and says whether its cookie ends with the browser. Written only where a
// login chose (`SessionRecord.expireAtBrowserClose`), as Django's view calls `set_expiry` after
// `login()`; every other write keeps what the session holds.
const readKeys = [...ownKeys, "_session_expiry"] as const

// A session dict as read: each key (a string, but for a pickled key of another type, which its
// entry stands for) to its value, in the dict's order.
type Dict<K> = ReadonlyMap<K, unknown>

// effect-auth's keys of a session dict and `_session_expiry`, their values read.
const ownOf = (data: Dict<unknown>): Record<string, unknown> => {
  const own: Record<string, unknown> = {}
  for (const key of readKeys) {
    const value = data.get(key)
    if (value !== undefined) {
      own[key] = value instanceof Signing.RawJson || value instanceof Pickle.RawPickle ? value.value : value
    }
  }
  return own
}

const noData: Dict<never> = new Map<never, unknown>()
// Django's CSRF_SESSION_KEY: where CsrfViewMiddleware keeps its secret under CSRF_USE_SESSIONS.
const csrfSessionKey = "_csrftoken"

// The user id a session names, as text. Django reads `_auth_user_id` through the user model's
// primary key (`_get_user_session_key`: `pk.to_python(...)`), so besides the string its `login`
// writes it takes a JSON integer (written by Djangos before 1.7, or by code of another app); an
// integer JavaScript holds exactly is that id in decimal. A string is taken as it is, as before;
// anything else (a fraction, a boolean, an integer past 2^53) names no user here.
const userIdOf = (value: unknown): string | undefined =>
  typeof value === "string" ? value : Number.isSafeInteger(value) ? String(value) : undefined

// What the SQL and cache stores share: Django's session dict to a record and back.
const codec = (options: Options) =>
  Effect.gen(function*() {
    const secrets = [options.secret, ...(options.fallbackSecrets ?? [])]
    if (!secrets.every((s) => Redacted.isRedacted(s) && Redacted.value(s).length > 0)) {
      return yield* configError("secret and fallbackSecrets must be Redacted and not empty")
    }
    const backends = options.backends ?? { model: "django.contrib.auth.backends.ModelBackend" }
    // A backend Django does not share is stored under a path Django knows nothing of: Django then
    // treats the session as anonymous (without flushing it), effect-auth reads it back.
    const ownPrefix = "effect-auth:"
    const pathOf = (backendId: string) => backends[backendId] ?? `${ownPrefix}${backendId}`
    const backendOfPath = new Map(Object.entries(backends).map(([id, djangoPath]) => [djangoPath, id]))
    const backendOf = (djangoPath: string) =>
      backendOfPath.get(djangoPath) ?? (djangoPath.startsWith(ownPrefix) ? djangoPath.slice(ownPrefix.length) : undefined)
    const cookieAge = Duration.toMillis(
      yield* SqlTables.timeoutOf("DjangoSessionStore", "cookieAge", options.cookieAge, Duration.weeks(2))
    )
    const secret = Redacted.value(options.secret)
    const hashing = hashingAlgorithmOf(options.hashingAlgorithm)
    if (hashing === undefined) return yield* configError("hashingAlgorithm must be \"sha256\" or \"sha1\"")
    // Django 3.2 under DEFAULT_HASHING_ALGORITHM = "sha1" writes sessions as `_legacy_encode`.
    const legacy = hashing === "sha1"

    // A session Django made has no CSRF token of ours: one derived from the key, stable for the
    // session's life and unknowable without the secret.
    const csrfKey = createHash("sha256").update("effect-auth.DjangoSessionStore.csrf").update(secret).digest()
    const derivedCsrf = (key: string) => createHmac("sha256", csrfKey).update(key).digest("base64url")

    // When a session Django made started, which Django does not record. Its expiry counts from
    // its last save (`get_expiry_date`): `_session_expiry` seconds when that is a number
    // (`set_expiry(3600)`), `SESSION_COOKIE_AGE` when it is none or 0. A datetime (ISO text: what
    // Djangos after 3.2 keep for `set_expiry` of a datetime or timedelta) tells nothing of the
    // save: now. The
    // last save is the latest the login can have been, so the estimate never makes a session older
    // than it is, and never lies in the future.
    const startOf = (data: Record<string, unknown>, expiresAt: number, now: number) => {
      const expiry = data._session_expiry
      const age = !expiry ? cookieAge : typeof expiry === "number" && Number.isFinite(expiry) ? expiry * 1000 : undefined
      return age === undefined ? now : Math.max(0, Math.min(now, Math.ceil(expiresAt - age)))
    }

    // Django's session data as a record; none for an anonymous session or a backend not shared.
    const toRecord = (key: string, data: Record<string, unknown>, expiresAt: number, now: number) => {
      const userId = userIdOf(data._auth_user_id)
      const backendId = typeof data._auth_user_backend === "string" ? backendOf(data._auth_user_backend) : undefined
      if (userId === undefined || backendId === undefined) return Option.none()
      const authHash = typeof data._auth_user_hash === "string" ? data._auth_user_hash : ""
      const extra = decodeExtra(data._effect_auth)
      const createdAt = Option.match(extra, {
        onNone: () => startOf(data, expiresAt, now),
        onSome: (e) => e.createdAt
      })
      return SessionStore.decodeStored({
        userId,
        backendId,
        authHash,
        csrfToken: Option.match(extra, { onNone: () => derivedCsrf(key), onSome: (e) => e.csrf }),
        createdAt,
        // A session Django made has not been seen here yet: its idle time counts from now, the
        // first request effect-auth serves (Django keeps no last-seen time).
        lastSeenAt: Option.match(extra, { onNone: () => now, onSome: (e) => e.lastSeenAt }),
        expiresAt,
        ...Option.match(extra, {
          onNone: () => ({}),
          onSome: (e) => ({
            ...(e.degraded === true && { degraded: true }),
            ...(e.secondFactor !== undefined && { secondFactor: e.secondFactor }),
            ...(e.secondFactorDevice !== undefined && { secondFactorDevice: e.secondFactorDevice })
          })
        }),
        ...browserCloseOf(data._session_expiry)
      })
    }

    // Django's `get_expire_at_browser_close`: no `_session_expiry` follows the site's
    // `SESSION_EXPIRE_AT_BROWSER_CLOSE` (absent here: `Session`'s `expireAtBrowserClose` is that
    // setting); `set_expiry(0)` ("remember me" unticked) ends the cookie with the browser, whatever
    // the row's expiry; any other age or date makes it last, whatever the site's default.
    const browserCloseOf = (expiry: unknown): { readonly expireAtBrowserClose?: boolean } =>
      expiry === undefined || expiry === null ? {} : { expireAtBrowserClose: expiry === 0 || expiry === false }

    // A login's choice of cookie, as its Django view would make it after `login()`:
    // `set_expiry(0)`, or `set_expiry(<age>)` for a lasting one. The age is `SESSION_COOKIE_AGE`
    // (`cookieAge`, which `Session`'s `maxAge` is to equal), or the session's time left where that
    // is longer: Django's save then never ends it before `Session` does. No choice leaves what the
    // session held (Django's `cycle_key` carries `_session_expiry`).
    const chosen = <K>(before: Dict<K>, record: SessionStore.SessionRecord, now: number): Dict<K | string> => {
      const choice = record.expireAtBrowserClose
      if (choice === undefined) return before
      const age = Math.max(Math.ceil(cookieAge / 1000), Math.ceil((record.expiresAt - now) / 1000))
      return new Map<K | string, unknown>(before).set("_session_expiry", choice ? 0 : age)
    }

    // The record as Django's keys, over what the session held before: other apps' keys stay, in
    // their order and as they were read; a key of ours keeps its place, a new one goes last, as
    // Python's dict assignment does.
    const toDict = <K>(record: SessionStore.SessionRecord, before: Dict<K>): Map<K | string, unknown> =>
      new Map<K | string, unknown>(before)
        .set("_auth_user_id", record.userId)
        .set("_auth_user_backend", pathOf(record.backendId))
        .set("_auth_user_hash", record.authHash)
        .set("_effect_auth", {
          csrf: record.csrfToken,
          createdAt: record.createdAt,
          lastSeenAt: record.lastSeenAt,
          ...(record.degraded === true && { degraded: true }),
          ...(record.secondFactor !== undefined && { secondFactor: record.secondFactor }),
          ...(record.secondFactorDevice !== undefined && { secondFactorDevice: record.secondFactorDevice })
        })

    // What a new key takes over from the session it replaces (Django's `cycle_key`): everything,
    // unless that session is a login of another user or through another backend, which Django's
    // `login` flushes. The login keys themselves are then overwritten by `toDict`. A login leaves
    // Django's CSRF secret behind (`_csrftoken`, under CSRF_USE_SESSIONS), as Django's `login`
    // rotates it: carried over, whoever planted the anonymous session (a cookie set from a
    // sibling domain) knew the secret of the victim's logged-in one, and forged its form posts.
    // A login's choice of cookie is then made over what was carried (`chosen`).
    const carried = <K>(
      before: Dict<K>,
      record: SessionStore.SessionRecord,
      now: number,
      login: boolean
    ): Dict<K | string> => {
      const own = ownOf(before)
      const kept = own._auth_user_id === undefined ||
          (userIdOf(own._auth_user_id) === record.userId && own._auth_user_backend === pathOf(record.backendId))
        ? before
        : noData
      if (!login) return kept
      if (!kept.has(csrfSessionKey as K)) return chosen(kept, record, now)
      const without = new Map(kept)
      without.delete(csrfSessionKey as K)
      return chosen(without, record, now)
    }

    // The expiry Django's save would write (`get_expiry_date`): `_session_expiry` seconds from now
    // (`set_expiry(3600)`), or the date it names (ISO text with an offset, as Djangos after 3.2
    // keep one), within this service's own. Without it a password change or a step-up here made
    // a one-hour session of Django's a fortnight's.
    const expiresAtOf = <K>(record: SessionStore.SessionRecord, before: Dict<K>, now: number): number => {
      const expiry = ownOf(before)._session_expiry
      if (typeof expiry === "number" && Number.isFinite(expiry) && expiry > 0) {
        return Math.min(record.expiresAt, now + Math.floor(expiry * 1000))
      }
      if (typeof expiry === "string" && /(?:Z|[+-]\d\d:\d\d)$/.test(expiry)) {
        const at = Date.parse(expiry)
        if (Number.isFinite(at)) return Math.min(record.expiresAt, at)
      }
      return record.expiresAt
    }

    return {
      secret,
      legacy,
      readSecrets: secrets.map(Redacted.value),
      cookieAge,
      toRecord,
      toDict,
      carried,
      chosen,
      expiresAtOf
    }
  })

const configError = (message: string) => new AuthConfigError({ message: `DjangoSessionStore: ${message}` })

// A class's `__qualname__`: identifiers (ASCII here), dotted for a class nested in another.
const QUALNAME = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/

/**
 * Builds the store on the `SqlClient` in context (the Django site's database).
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { DjangoSessionStore } from "effect-auth"
 *
 * const store = DjangoSessionStore.make({ secret: Redacted.make("the Django site's SECRET_KEY") })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<SessionStore.Service, AuthConfigError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { carried, chosen, expiresAtOf, legacy, readSecrets, secret, toDict, toRecord } = yield* codec(options)
    const tableName = options.table ?? "django_session"
    if (!SqlTables.isTableName(tableName)) return yield* configError("table must match [A-Za-z_][A-Za-z0-9_]*")
    const className = options.storeClass ?? "SessionStore"
    if (!QUALNAME.test(className)) return yield* configError("storeClass must be a Python class name, dotted when nested")

    const sql = yield* SqlTables.client
    const pg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    const table = sql(tableName)
    const time = (millis: number): string => (pg ? new Date(millis).toISOString() : djangoSqliteTime(new Date(millis)))
    const run = yield* SqlTables.runner("SessionStore", options.timeout, storeError)
    const count = (statement: Effect.Effect<ReadonlyArray<unknown>, SqlError>) =>
      Effect.map(Effect.flatMap(statement, decodeKeys), (rows) => rows.length)

    // Data that does not verify is an empty session, as Django reads it.
    const decodeData = (text: string): Signing.SessionDict => Signing.readSession(text, readSecrets, { className }) ?? noData
    const toData = (record: SessionStore.SessionRecord, before: Signing.SessionDict) =>
      Signing.encodeSession(toDict(record, before), secret, { className, legacy })

    const live = (key: string, now: number) =>
      Effect.map(
        Effect.flatMap(
          sql`SELECT session_data, expire_date FROM ${table} WHERE session_key = ${key} AND expire_date > ${time(now)}`,
          decodeRows
        ),
        (rows) => Option.fromNullable(rows[0])
      )

    const write = (key: string, record: SessionStore.SessionRecord, before: Signing.SessionDict, now: number) => {
      const expiresAt = expiresAtOf(record, before, now)
      return expiresAt <= now
        ? Effect.asVoid(sql`DELETE FROM ${table} WHERE session_key = ${key}`)
        : Effect.asVoid(sql`INSERT INTO ${table} (session_key, session_data, expire_date)
            VALUES (${key}, ${toData(record, before)}, ${time(expiresAt)})
            ON CONFLICT (session_key) DO UPDATE SET
              session_data = excluded.session_data, expire_date = excluded.expire_date`)
    }

    return SessionStore.make({
      get: (key, now) =>
        run(
          "get",
          Effect.map(live(key, now), (row) =>
            Option.flatMap(row, (r) => toRecord(key, ownOf(decodeData(r.session_data)), r.expire_date.getTime(), now)))
        ),
      set: (key, record, now) => run("set", write(key, record, chosen(noData, record, now), now)),
      // Compare-and-set on the data read, so a write by Django in between is not overwritten;
      // a round that lost to one reads again.
      replace: (key, record, now) =>
        run(
          "replace",
          CompareAndSet.untilSettled(
            Effect.gen(function*() {
              const row = yield* live(key, now)
              if (Option.isNone(row)) return "gone" as const
              // Data that no longer verifies (Django rewrote it under a SECRET_KEY this store does
              // not know) is no session, as `get` reads it: written over, the keys Django keeps
              // would be lost.
              const before = Signing.readSession(row.value.session_data, readSecrets, { className })
              const expiresAt = before === undefined ? record.expiresAt : expiresAtOf(record, before, now)
              if (expiresAt <= now) {
                const deleted = yield* count(sql`DELETE FROM ${table} WHERE session_key = ${key} RETURNING session_key`)
                return deleted > 0 ? "written" as const : "gone" as const
              }
              if (before === undefined) return "gone" as const
              const data = toData(record, before)
              const expires = time(expiresAt)
              const written = yield* count(sql`UPDATE ${table} SET session_data = ${data}, expire_date = ${expires}
                WHERE session_key = ${key} AND session_data = ${row.value.session_data} RETURNING session_key`)
              return written > 0 ? "written" as const : "changed" as const
            }),
            (cause) => cause
          )
        ),
      delete: (key) =>
        run("delete", Effect.map(count(sql`DELETE FROM ${table} WHERE session_key = ${key} RETURNING session_key`), (n) => n > 0)),
      isLive: (key, now) => run("isLive", Effect.map(live(key, now), Option.isSome)),
      cycle: (from, key, record, now, cycleOptions) =>
        run(
          "cycle",
          Effect.flatMap(live(from, now), (row) =>
            write(
              key,
              record,
              carried(
                Option.match(row, { onNone: () => noData, onSome: (r) => decodeData(r.session_data) }),
                record,
                now,
                cycleOptions?.login === true
              ),
              now
            ))
        ),
      deleteExpired: (now) =>
        run("deleteExpired", count(sql`DELETE FROM ${table} WHERE expire_date <= ${time(now)} RETURNING session_key`))
    })
  })

/**
 * The store as a layer on the `SqlClient` in context.
 *
 * @example
 * ```ts
 * import { Layer, Redacted } from "effect"
 * import { DjangoSessionStore, SqlUserStore } from "effect-auth"
 *
 * const Sessions = DjangoSessionStore.layer({ secret: Redacted.make("the Django site's SECRET_KEY") }).pipe(
 *   Layer.provide(SqlUserStore.layerSqlite({ filename: "./db.sqlite3", django: true }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<SessionStore.SessionStore, AuthConfigError, SqlClient.SqlClient> =>
  Layer.effect(SessionStore.SessionStore, make(options))

/**
 * A Redis client as {@link makeCache} uses it; ioredis's `Redis` is one. Give it a
 * `commandTimeout` and `enableOfflineQueue: false`, or commands wait while Redis is down.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis"
 * import type { DjangoSessionStore } from "effect-auth"
 *
 * const client: DjangoSessionStore.CacheClient = new Redis("redis://127.0.0.1:6379/1", { lazyConnect: true })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheClient {
  getBuffer(key: string): Promise<Buffer | null>
  pttl(key: string): Promise<number>
  set(key: string, value: Buffer, mode: "PX", milliseconds: number): Promise<unknown>
  del(key: string): Promise<number>
  eval(script: string, numKeys: number, ...args: Array<string | Buffer | number>): Promise<unknown>
}

/**
 * The cache store's settings: the client on the Redis that Django's `CACHES` names, and that
 * cache's `KEY_PREFIX` and `VERSION`.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Redis } from "ioredis"
 * import type { DjangoSessionStore } from "effect-auth"
 *
 * const options: DjangoSessionStore.CacheOptions = {
 *   secret: Redacted.make("the Django site's SECRET_KEY"),
 *   client: new Redis("redis://127.0.0.1:6379/1", { lazyConnect: true }),
 *   keyPrefix: "site"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheOptions extends Omit<Options, "table" | "timeout" | "storeClass" | "hashingAlgorithm"> {
  readonly client: CacheClient
  /** The cache's `KEY_PREFIX`. Default: `""`, Django's. */
  readonly keyPrefix?: string | undefined
  /** The cache's `VERSION`. Default: `1`, Django's. */
  readonly version?: number | undefined
}

const cacheError = (operation: string) => (cause: unknown) =>
  new SessionStore.SessionStoreError({
    operation,
    // ioredis attaches the command and its arguments (keys, session data) to its errors.
    cause: new Error(cause instanceof Error ? cause.message : String(cause))
  })

// KEYS[1] key; ARGV[1] the value read, ARGV[2] the new one, ARGV[3] its TTL in ms (<= 0: delete).
const compareAndSet = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[3]) <= 0 then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1`

/**
 * A `SessionStore` on Django's cache session backend (`SESSION_ENGINE =
 * "django.contrib.sessions.backends.cache"`) with Django's Redis cache
 * (`django.core.cache.backends.redis.RedisCache`, Django 4.0+): the session dict, pickled as that
 * cache pickles it, under `<KEY_PREFIX>:<VERSION>:django.contrib.sessions.cache<session key>`, with
 * the session's age as the key's TTL. Unpickling reads plain data only (dicts, lists, tuples,
 * strings, ints, floats, booleans, None); an object of Python's or Django's own classes in the
 * session (a datetime, a Decimal, a set, bytes, a QueryDict) is never interpreted nor run, its
 * entry kept as it is, and one of the app's own classes makes the session none, as Django reads
 * it where that class no longer imports. The
 * entries effect-auth does not set are written back as the pickle opcodes Django wrote (the memo
 * renumbered), so a float `1.0`, a tuple, a dict with int keys, an int past 2^53 or a datetime
 * comes back to Django as it was, in its place, and a login moves them to the new key as Django's
 * `cycle_key` does.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Redis } from "ioredis"
 * import { DjangoSessionStore } from "effect-auth"
 *
 * const store = DjangoSessionStore.makeCache({
 *   secret: Redacted.make("the Django site's SECRET_KEY"),
 *   client: new Redis("redis://127.0.0.1:6379/1", { lazyConnect: true, enableOfflineQueue: false, commandTimeout: 2000 })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCache = (options: CacheOptions): Effect.Effect<SessionStore.Service, AuthConfigError> =>
  Effect.gen(function*() {
    const { carried, chosen, cookieAge, expiresAtOf, toDict, toRecord } = yield* codec(options)
    const version = options.version ?? 1
    if (!Number.isSafeInteger(version)) return yield* configError("version must be an integer")
    const client = options.client
    const keyOf = (key: string) => `${options.keyPrefix ?? ""}:${version}:django.contrib.sessions.cache${key}`
    const call = <A>(operation: string, f: () => Promise<A>) =>
      Effect.tryPromise({ try: f, catch: cacheError(operation) }).pipe(
        withValueFreeSpan(`SessionStore.${operation}`, { captureStackTrace: false })
      )
    const read = (key: string) =>
      call("get", () => Promise.all([nullIfWrongType(client.getBuffer(keyOf(key))), client.pttl(keyOf(key))]))
    // Each entry as the opcodes Django wrote, copied back when the session is written: what
    // JavaScript reads of them (a float 1.0 is 1, a tuple an array) is only for effect-auth's keys.
    const dictOf = (value: Buffer): Dict<unknown> => Pickle.readSession(value) ?? noData

    const write = (
      operation: string,
      key: string,
      record: SessionStore.SessionRecord,
      before: Dict<unknown>,
      now: number
    ) => {
      const ttl = expiresAtOf(record, before, now) - now
      return ttl <= 0
        ? Effect.asVoid(call(operation, () => client.del(keyOf(key))))
        : Effect.asVoid(call(operation, () => client.set(keyOf(key), Pickle.dumps(toDict(record, before)), "PX", ttl)))
    }

    return SessionStore.make({
      get: (key, now) =>
        Effect.map(read(key), ([value, ttl]) =>
          // PTTL: -2 gone, -1 no expiry (the cache's TIMEOUT None).
          value === null || ttl === -2
            ? Option.none()
            : toRecord(key, ownOf(dictOf(value)), ttl === -1 ? now + cookieAge : now + ttl, now)),
      set: (key, record, now) => write("set", key, record, chosen(noData, record, now), now),
      // Compare-and-set on the value read, so a write by Django in between is not overwritten;
      // a round that lost to one reads again.
      replace: (key, record, now) =>
        CompareAndSet.untilSettled(
          Effect.flatMap(call("replace", () => nullIfWrongType(client.getBuffer(keyOf(key)))), (value) => {
            // A value that does not read as a session dict (a pickle Python's pickler would not
            // write, put there since it was read) is no session, as `get` reads it: written over,
            // everything Django keeps in the session would be lost.
            const before = value === null ? undefined : Pickle.readSession(value)
            return value === null || before === undefined
              ? Effect.succeed("gone" as const)
              : Effect.map(
                call("replace", () =>
                  client.eval(
                    compareAndSet,
                    1,
                    keyOf(key),
                    value,
                    Pickle.dumps(toDict(record, before)),
                    expiresAtOf(record, before, now) - now
                  )),
                (n) => n === 1 ? "written" as const : "changed" as const
              )
          }),
          cacheError("replace")
        ),
      delete: (key) => Effect.map(call("delete", () => client.del(keyOf(key))), (n) => n > 0),
      // PTTL: -2 gone.
      isLive: (key) => Effect.map(call("isLive", () => client.pttl(keyOf(key))), (ttl) => ttl !== -2),
      cycle: (from, key, record, now, cycleOptions) =>
        Effect.flatMap(call("cycle", () => nullIfWrongType(client.getBuffer(keyOf(from)))), (value) =>
          write("cycle", key, record, carried(value === null ? noData : dictOf(value), record, now, cycleOptions?.login === true), now)),
      // Redis drops expired keys itself.
      deleteExpired: () => Effect.succeed(0)
    })
  })

/**
 * {@link makeCache} as a layer; the client is yours to close.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Redis } from "ioredis"
 * import { DjangoSessionStore } from "effect-auth"
 *
 * const Sessions = DjangoSessionStore.layerCache({
 *   secret: Redacted.make("the Django site's SECRET_KEY"),
 *   client: new Redis("redis://127.0.0.1:6379/1", { lazyConnect: true, enableOfflineQueue: false, commandTimeout: 2000 }),
 *   keyPrefix: "site"
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCache = (options: CacheOptions): Layer.Layer<SessionStore.SessionStore, AuthConfigError> =>
  Layer.effect(SessionStore.SessionStore, makeCache(options))
