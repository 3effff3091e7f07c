/**
 * Where login sessions live: the service `Session` reads and writes, with three implementations
 * that pass one test suite: `MemorySessionStore` (one process), `SqlSessionStore` (SQLite or
 * PostgreSQL through `@effect/sql`, the users' database) and `RedisSessionStore` (many processes,
 * keys with a TTL).
 *
 * A store is deliberately dumb: it keeps {@link SessionRecord}s under opaque keys and treats a
 * record whose `expiresAt` has passed as absent. Every time is an epoch in milliseconds given by
 * the caller (`now`), so the stores never read a clock and the `Session` service decides every
 * expiry with Effect's `Clock`. Keys are what `Session` makes of session ids (a SHA-256 digest),
 * never the ids themselves.
 *
 * A store that cannot answer (database or Redis down, a statement that fails) fails with
 * {@link SessionStoreError}, never a defect.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { MemorySessionStore, SessionStore } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* SessionStore.SessionStore
 *   const record: SessionStore.SessionRecord = {
 *     userId: "1", backendId: "model", authHash: "", csrfToken: "t",
 *     createdAt: 0, lastSeenAt: 0, expiresAt: 60_000
 *   }
 *   yield* store.set("key", record, 0)
 *   return yield* store.get("key", 1_000) // Option.some(record)
 * }).pipe(Effect.provide(MemorySessionStore.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { checker, refuse } from "./internal/checkedInput.js"
import { failedMessage } from "./internal/storeError.js"
import { isStorable } from "./internal/wellFormed.js"

/**
 * A store key: 1 to 128 characters of `[A-Za-z0-9_-]`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { SessionStore } from "effect-auth"
 *
 * Schema.is(SessionStore.SessionKey)("q1w2e3") // true
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const SessionKey = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,128}$/))

// Up to the last millisecond of year 9999: stores write times as dates, and Python's datetime
// (Django's side of a shared store, psycopg) ends there; a Date ends at 275760.
const Millis = Schema.Number.pipe(Schema.int(), Schema.between(0, 253_402_300_799_999))
// Text every engine keeps as it is: PostgreSQL refuses NUL, and its driver writes a lone
// surrogate as U+FFFD, so the ids "\uD800" and "\uFFFD" named one user there (Django, in
// Python, cannot encode either).
const Field = (max: number) =>
  Schema.String.pipe(
    Schema.maxLength(max),
    Schema.filter((s) => isStorable(s) || "no NUL or lone surrogate")
  )

/**
 * What a store keeps per session: the user id and the id of the backend that authenticated it
 * (to find the user again), the auth hash bound to the password, the session's CSRF token, and
 * three times in epoch milliseconds. `expiresAt` is the earlier of the absolute expiry and the
 * idle expiry; past it the record is gone.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { SessionStore } from "effect-auth"
 *
 * Schema.decodeUnknownSync(SessionStore.SessionRecord)({
 *   userId: "1", backendId: "model", authHash: "", csrfToken: "t",
 *   createdAt: 0, lastSeenAt: 0, expiresAt: 60_000
 * })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const SessionRecord = Schema.Struct({
  userId: Field(255).pipe(Schema.minLength(1)),
  backendId: Field(255).pipe(Schema.minLength(1)),
  /** Base64url HMAC, or `""` when the user has no password hash. */
  authHash: Field(128),
  csrfToken: Field(128),
  createdAt: Millis,
  lastSeenAt: Millis,
  expiresAt: Millis,
  /** Set when the login was degraded (`AuthService.Authenticated.degraded`); absent otherwise. */
  degraded: Schema.optional(Schema.Boolean),
  /** The backend that verified a second factor in this session (`Session.stepUp`); absent before. */
  secondFactor: Schema.optional(Field(255).pipe(Schema.minLength(1))),
  /**
   * Which device the second factor was verified against: a keyed hash (HMAC under the app secret)
   * of the backend's `secondFactorDevice`, set by `Session.stepUp`; absent when that backend names
   * no device, and on sessions stepped up before it was recorded. @since 0.4.0
   */
  secondFactorDevice: Schema.optional(Field(128).pipe(Schema.minLength(1))),
  /**
   * The login's choice of cookie, as Django's `set_expiry` makes it: `true`, the cookie ends with
   * the browser (`set_expiry(0)`, "remember me" unticked); `false`, it lasts whatever the
   * site-wide default (`set_expiry(<age>)`); absent, the site-wide default decides (`Session`'s
   * `expireAtBrowserClose`, Django's `SESSION_EXPIRE_AT_BROWSER_CLOSE`). A store keeps it as it
   * is given, absent included. @since 0.4.0
   */
  expireAtBrowserClose: Schema.optional(Schema.Boolean)
})

/**
 * A decoded {@link SessionRecord}.
 *
 * @example
 * ```ts
 * import type { SessionStore } from "effect-auth"
 *
 * const record: SessionStore.SessionRecord = {
 *   userId: "1", backendId: "model", authHash: "", csrfToken: "t",
 *   createdAt: 0, lastSeenAt: 0, expiresAt: 60_000
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionRecord extends Schema.Schema.Type<typeof SessionRecord> {}

/**
 * The store could not answer (connection refused, timeout, failed statement) or was given a key
 * or record that does not decode. `cause` is the driver's error; it never holds a session key.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-auth"
 *
 * const error = new SessionStore.SessionStoreError({ operation: "get", cause: new Error("ECONNREFUSED") })
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionStoreError extends Schema.TaggedError<SessionStoreError>("effect-auth/SessionStoreError")(
  "SessionStoreError",
  { operation: Schema.String, cause: Schema.Defect }
) {
  override get message(): string {
    return failedMessage("session store", this.operation, this.cause)
  }
}


/**
 * The operations of a store. `now` is the caller's clock, in epoch milliseconds.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SessionStore } from "effect-auth"
 *
 * const count = Effect.flatMap(SessionStore.SessionStore, (store: SessionStore.Service) =>
 *   store.deleteExpired(Date.now()))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The record, unless it is missing or `expiresAt <= now`. */
  readonly get: (key: string, now: number) => Effect.Effect<Option.Option<SessionRecord>, SessionStoreError>
  /** Inserts or replaces. A record that is already expired is not stored. */
  readonly set: (key: string, record: SessionRecord, now: number) => Effect.Effect<void, SessionStoreError>
  /**
   * Replaces the record only while a live one exists, and answers whether one did: refreshing a
   * session must never bring back one that another instance deleted meanwhile. An already
   * expired `record` removes the live one.
   */
  readonly replace: (key: string, record: SessionRecord, now: number) => Effect.Effect<boolean, SessionStoreError>
  /** Answers whether a record was there. */
  readonly delete: (key: string) => Effect.Effect<boolean, SessionStoreError>
  /** Deletes every expired record and answers how many (Redis expires keys itself: 0). */
  readonly deleteExpired: (now: number) => Effect.Effect<number, SessionStoreError>
  /**
   * For a store that shares its keys with another framework's sessions (`DjangoSessionStore`),
   * whose entries may hold what is no login of ours (an anonymous Django session keeping a cart,
   * a login through a Django backend effect-auth does not share): whether a live entry, whatever
   * it holds, is under `key`. The HTTP layer then keeps the cookie that names it, as Django keeps
   * the cookie of a live session. A store of logins only leaves it out.
   */
  readonly isLive?: ((key: string, now: number) => Effect.Effect<boolean, SessionStoreError>) | undefined
  /**
   * For the same stores: stores `record` under `key` together with what the live entry under
   * `from` holds besides a login (other apps' keys), as Django's `cycle_key` moves a session's data
   * to a new key. Nothing is carried when `from` holds a login of another user, or of another
   * backend: Django flushes that session at login. At a login (`options.login`), a store shared
   * with Django also leaves out the CSRF secret Django keeps in the session (`_csrftoken` under
   * `CSRF_USE_SESSIONS`), as Django's `login` rotates it. `from` is left for the caller to delete.
   * A store of logins only leaves it out, and `set` is used instead.
   */
  readonly cycle?:
    | ((
      from: string,
      key: string,
      record: SessionRecord,
      now: number,
      options?: { readonly login?: boolean | undefined }
    ) => Effect.Effect<void, SessionStoreError>)
    | undefined
}

/**
 * The session store service.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SessionStore } from "effect-auth"
 *
 * const sweep = Effect.flatMap(SessionStore.SessionStore, (store) => store.deleteExpired(Date.now()))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class SessionStore extends Context.Tag("effect-auth/SessionStore")<SessionStore, Service>() {}

/**
 * The old home of {@link Service}.
 *
 * @example
 * ```ts
 * import type { SessionStore } from "effect-auth"
 *
 * type Old = SessionStore.SessionStore.Service // prefer SessionStore.Service
 * ```
 *
 * @since 0.1.0
 * @category models
 * @deprecated Use `SessionStore.Service`.
 */
export declare namespace SessionStore {
  /**
   * @deprecated Use `SessionStore.Service`.
   *
   * @example
   * ```ts
   * import type { SessionStore } from "effect-auth"
   *
   * type Old = SessionStore.SessionStore.Service // prefer SessionStore.Service
   * ```
   *
   * @since 0.1.0
   */
  export type Service = import("./SessionStore.js").Service
}

const decodeKey = ParseResult.decodeUnknownEither(SessionKey)
const decodeRecord = ParseResult.decodeUnknownEither(SessionRecord, { onExcessProperty: "error" })
const isMillis = Schema.is(Millis)
const decodeOption = Schema.decodeUnknownOption(SessionRecord)

// Each operation reads the inputs it takes, every one of them: an `undefined` record or time from
// an untyped caller is bad input like any other, not "this operation has none" (it reached the
// stores, which died reading its `expiresAt`).
const keyOf = (raw: unknown): string => decodeKey(raw)._tag === "Right" ? raw as string : refuse("invalid key")
const timeOf = (raw: unknown): number => isMillis(raw) ? raw : refuse("invalid time")
// The store gets the decoded copy, read once: a getter that answers differently on a second read
// cannot hand the store what the check never saw.
const recordOf = (raw: unknown): SessionRecord => {
  const decoded = decodeRecord(raw)
  return decoded._tag === "Right" ? decoded.right : refuse("invalid record")
}

// Reads and checks the input of `operation`, then runs it on what was read (see internal/checkedInput).
const checked = checker((operation, message) => new SessionStoreError({ operation, cause: message }))

/**
 * Wraps a store's raw operations with the input checks every store shares: keys, records and
 * times are decoded, and a bad one (`undefined` included, or an object that throws when read)
 * fails with `SessionStoreError` before the store is touched. The store gets the decoded values.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { SessionStore } from "effect-auth"
 *
 * const nothing = SessionStore.make({
 *   get: () => Effect.succeed(Option.none()),
 *   set: () => Effect.void,
 *   replace: () => Effect.succeed(false),
 *   delete: () => Effect.succeed(false),
 *   deleteExpired: () => Effect.succeed(0)
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (raw: SessionStore.Service): SessionStore.Service => {
  const { cycle, isLive } = raw
  return {
    get: (key, now) => checked("get", () => [keyOf(key), timeOf(now)] as const, ([k, n]) => raw.get(k, n)),
    set: (key, record, now) =>
      checked("set", () => [keyOf(key), timeOf(now), recordOf(record)] as const, ([k, n, r]) => raw.set(k, r, n)),
    replace: (key, record, now) =>
      checked("replace", () => [keyOf(key), timeOf(now), recordOf(record)] as const, ([k, n, r]) => raw.replace(k, r, n)),
    delete: (key) => checked("delete", () => keyOf(key), (k) => raw.delete(k)),
    deleteExpired: (now) => checked("deleteExpired", () => timeOf(now), (n) => raw.deleteExpired(n)),
    ...(isLive !== undefined && {
      isLive: (key, now) => checked("isLive", () => [keyOf(key), timeOf(now)] as const, ([k, n]) => isLive(k, n))
    }),
    ...(cycle !== undefined && {
      cycle: (from, key, record, now, options) =>
        checked(
          "cycle",
          () => [keyOf(from), keyOf(key), timeOf(now), recordOf(record), options?.login === true] as const,
          ([f, k, n, r, login]) => cycle(f, k, r, n, { login })
        )
    })
  }
}

/**
 * Decodes a record read back from a store; a record that does not decode (written by another
 * version, or tampered with) counts as absent, as Django treats corrupted session data.
 *
 * @example
 * ```ts
 * import { SessionStore } from "effect-auth"
 *
 * SessionStore.decodeStored({ userId: 1 }) // Option.none()
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const decodeStored = (value: unknown): Option.Option<SessionRecord> =>
  decodeOption(value)
