/**
 * Password reset tokens that are Django's `PasswordResetTokenGenerator`'s: the same algorithm
 * and format (`<timestamp in base 36>-<every other hex digit of an HMAC-SHA256>`), so a token
 * minted by a Django app verifies here and the reverse, given the same `SECRET_KEY`.
 *
 * A token is bound to the user's id, password hash, last login and email, and to the moment it
 * was made: it stops verifying once the password changes (the reset itself uses it up: set the
 * new password with `UserManager.resetPassword`, whose compare-and-set on the hash lets one of
 * two concurrent requests with the token through), the
 * user logs in (`Session.login` records `lastLogin` for `ModelBackend` users, as Django's
 * `update_last_login` does), the email changes, or `timeout` (Django's
 * `PASSWORD_RESET_TIMEOUT`, default 3 days) passes. The time comes from Effect's `Clock`, so `TestClock` drives expiry in tests.
 *
 * @example
 * ```ts
 * import { Effect, Option, Redacted } from "effect"
 * import { PasswordResetToken } from "effect-auth"
 *
 * const options = { secret: Redacted.make("django-insecure-...") }
 * const user = { id: "42", passwordHash: Redacted.make("pbkdf2_sha256$..."), lastLogin: Option.none(), email: "a@example.com" }
 *
 * const program = Effect.gen(function*() {
 *   const token = yield* PasswordResetToken.make(user, options)
 *   return yield* PasswordResetToken.check(user, token, options) // true
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as crypto from "node:crypto"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AuthConfigError } from "./AuthError.js"
import * as ConfigDuration from "./internal/configDuration.js"
import { textOf } from "./internal/redactedString.js"
import * as UserId from "./internal/userId.js"

/**
 * What a token is bound to. A `UserStore.StoredUser` is one.
 *
 * - `id`: the primary key, as Django formats it (`str(user.pk)`: `42` for an integer key).
 * - `passwordHash`: the stored hash (the `password` column), unusable ones included.
 * - `lastLogin`: `Option.none()` (or `null`) for a user who never logged in; only whole seconds count.
 * - `email`: the email, `""` or absent for none.
 *
 * A user that is none of this (from an untyped caller: `null`, a hash that is no `Redacted`
 * string, a `lastLogin` that is no valid date, an object that cannot be read) is refused:
 * {@link check} answers `false`, as Django's `check_token` does for what it cannot check, and
 * {@link make} fails with {@link InvalidUser}.
 *
 * @example
 * ```ts
 * import { Option, Redacted } from "effect"
 * import type { PasswordResetToken } from "effect-auth"
 *
 * const user: PasswordResetToken.TokenUser = {
 *   id: "42",
 *   passwordHash: Redacted.make("pbkdf2_sha256$1200000$salt$hash"),
 *   lastLogin: Option.some(new Date("2024-05-01T10:00:00Z")),
 *   email: "alice@example.com"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenUser {
  readonly id: string | number
  readonly passwordHash: Redacted.Redacted<string>
  readonly lastLogin: Option.Option<Date> | Date | null | undefined
  readonly email?: string | null | undefined
}

/**
 * {@link make} was given a user it cannot read (see {@link TokenUser}), from a caller without
 * types. The message names what a user needs; it never holds the user's data or hash.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordResetToken } from "effect-auth"
 *
 * const token = PasswordResetToken.make(null as any, { secret: Redacted.make("SECRET_KEY") }).pipe(
 *   Effect.catchTag("InvalidUser", () => Effect.succeed(undefined))
 * )
 * ```
 *
 * @since 0.3.0
 * @category errors
 */
export class InvalidUser extends Schema.TaggedError<InvalidUser>("effect-auth/PasswordResetToken/InvalidUser")(
  "InvalidUser",
  { message: Schema.String }
) {}

/**
 * The generator's settings.
 *
 * - `secret`: Django's `SECRET_KEY`.
 * - `secretFallbacks`: older secrets tokens still verify with (Django 4.1+'s
 *   `SECRET_KEY_FALLBACKS`); new tokens always use `secret`.
 * - `timeout`: how long a token verifies (Django's `PASSWORD_RESET_TIMEOUT`); default 3 days.
 * - `algorithm`: the HMAC's hash, `"sha256"` (default, Django 3.1+) or `"sha1"` (a Django 3.1 or
 *   3.2 app still on `DEFAULT_HASHING_ALGORITHM = "sha1"`).
 * - `acceptLegacySha1`: also accept SHA-1 tokens, as Django 3.1 and 3.2 do while migrating,
 *   and, as they do, read a stamp of under four base-36 digits as a Django 3.0 token's (days since
 *   2001, aged from that day's local midnight); default `false`, as Django 4.0+.
 * - `keySalt`: Django's `key_salt`; change it only to match a subclass that changed it.
 * - `timeZone`: the Django site's `TIME_ZONE` (an IANA name such as `"Europe/Paris"`); default
 *   `"UTC"`. Django stamps and ages tokens by the server's local wall clock (`datetime.now()`, in
 *   `TIME_ZONE`): outside UTC a token made here would be off by the zone's offset there (with
 *   `PASSWORD_RESET_TIMEOUT` of an hour and `"Asia/Kolkata"`, Django refused every one, and its
 *   own lived six and a half hours here).
 *
 * Options of the wrong shape (a `secret` that is no `Redacted` string, a `timeout` that is no
 * `Duration` input, a `timeZone` name `Intl` does not know, an unknown `algorithm`) make
 * {@link make} and {@link check} fail with an `AuthConfigError`; {@link checkOptions} finds them
 * when the app starts.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type { PasswordResetToken } from "effect-auth"
 *
 * const options: PasswordResetToken.Options = {
 *   secret: Redacted.make(process.env.SECRET_KEY ?? ""),
 *   secretFallbacks: [Redacted.make(process.env.OLD_SECRET_KEY ?? "")],
 *   timeout: "1 hour"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly secret: Redacted.Redacted<string>
  readonly secretFallbacks?: ReadonlyArray<Redacted.Redacted<string>> | undefined
  readonly timeout?: Duration.DurationInput | undefined
  readonly algorithm?: "sha256" | "sha1" | undefined
  readonly acceptLegacySha1?: boolean | undefined
  readonly keySalt?: string | undefined
  readonly timeZone?: string | undefined
}

/**
 * Django's `PASSWORD_RESET_TIMEOUT` default: three days.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { PasswordResetToken } from "effect-auth"
 *
 * Duration.toSeconds(PasswordResetToken.defaultTimeout) // 259200
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTimeout: Duration.Duration = Duration.days(3)

const KEY_SALT = "django.contrib.auth.tokens.PasswordResetTokenGenerator"
// datetime(2001, 1, 1): Django counts seconds from there.
const EPOCH_2001 = Date.UTC(2001, 0, 1)
// Python's int(s, 36) takes at most 13 digits in base36_to_int; longer is refused.
const B36 = /^[0-9a-z]{1,13}$/

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

// str(last_login.replace(microsecond=0, tzinfo=None)): the UTC wall time Django reads back;
// undefined for what is no date (an invalid Date, an Option of something else).
const loginTimestamp = (lastLogin: unknown): string | undefined => {
  const date: unknown = Option.isOption(lastLogin) ? Option.getOrNull(lastLogin) : lastLogin
  if (date === null || date === undefined) return ""
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return undefined
  return `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`
}

// What a token binds of the user, each field read once: `value` + timestamp + `email` is Django's
// `_make_hash_value`.
interface Bound {
  readonly value: string
  readonly email: string
}

// A user from an untyped caller may be anything, a Proxy whose traps throw included: what cannot
// be read as a TokenUser is undefined, never an exception.
const boundOf = (user: unknown): Bound | undefined => {
  try {
    if (typeof user !== "object" || user === null) return undefined
    const { email, id, lastLogin, passwordHash } = user as { readonly [K in keyof TokenUser]?: unknown }
    if (typeof id !== "string" && typeof id !== "number") return undefined
    if (email !== undefined && email !== null && typeof email !== "string") return undefined
    const hash = textOf(passwordHash)
    const login = loginTimestamp(lastLogin)
    return hash === undefined || login === undefined ? undefined : { value: `${id}${hash}${login}`, email: email ?? "" }
  } catch {
    return undefined
  }
}

const invalidUser = new InvalidUser({
  message: "a user needs an id (a string or a number), a passwordHash that is a Redacted string, a lastLogin " +
    "that is a valid Date, an Option of one or none, and an email that is a string or none"
})

// Django's `salted_hmac(key_salt, value, secret, algorithm=...).hexdigest()[::2]`.
const digest = (keySalt: string, value: string, secret: string, algorithm: "sha256" | "sha1"): string => {
  const key = crypto.createHash(algorithm).update(Buffer.from(keySalt + secret, "utf8")).digest()
  const hex = crypto.createHmac(algorithm, key).update(Buffer.from(value, "utf8")).digest("hex")
  let every2nd = ""
  for (let i = 0; i < hex.length; i += 2) every2nd += hex[i]
  return every2nd
}

const tokenAt = (
  user: Bound,
  timestamp: number,
  secret: string,
  algorithm: "sha256" | "sha1",
  keySalt: string
): string => `${timestamp.toString(36)}-${digest(keySalt, `${user.value}${timestamp}${user.email}`, secret, algorithm)}`

// Django's `_num_seconds(datetime.now())`: the seconds from 2001-01-01 00:00 to the wall clock in
// `TIME_ZONE`, not to the instant (the two differ by the zone's offset, DST included).
const wallClocks = new Map<string, Intl.DateTimeFormat>()
const wallClock = (timeZone: string): Intl.DateTimeFormat => {
  let format = wallClocks.get(timeZone)
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric"
    })
    wallClocks.set(timeZone, format)
  }
  return format
}

// `Intl.DateTimeFormat` throws a RangeError for a zone it does not know.
const isKnownZone = (timeZone: string): boolean => {
  try {
    wallClock(timeZone)
    return true
  } catch {
    return false
  }
}

// The options, read once and checked: what make and check compute with.
interface Settings {
  /** `secret`, then `secretFallbacks`. */
  readonly secrets: ReadonlyArray<string>
  readonly timeoutSeconds: number
  readonly algorithm: "sha256" | "sha1"
  readonly acceptLegacySha1: boolean
  readonly keySalt: string
  /** undefined for UTC */
  readonly timeZone: string | undefined
}

const configError = (problem: string) => Either.left(new AuthConfigError({ message: `PasswordResetToken: ${problem}` }))

// An untyped caller's options may be anything, a Proxy whose traps throw included: a config
// error, never an exception.
const settingsOf = (options: Options): Either.Either<Settings, AuthConfigError> => {
  try {
    if (typeof options !== "object" || options === null) return configError("the options must be an object")
    const { acceptLegacySha1, algorithm, keySalt, secret, secretFallbacks, timeZone, timeout } = options
    const key = textOf(secret)
    if (key === undefined) return configError("secret must be a Redacted string")
    // (absent and null alike mean the default, as they did when these were read with `??`)
    const fallbacks: unknown = secretFallbacks ?? []
    const fallbackKeys = Array.isArray(fallbacks) ? fallbacks.map(textOf) : undefined
    if (fallbackKeys === undefined || !fallbackKeys.every((s): s is string => s !== undefined)) {
      return configError("secretFallbacks must be an array of Redacted strings")
    }
    // (NaN or a negative one made every link die within a second, unnoticed; Django refuses every
    // token under a negative PASSWORD_RESET_TIMEOUT. Infinity is Django's float("inf"): no expiry.)
    const duration = ConfigDuration.nonNegative(timeout ?? defaultTimeout, true)
    if (Option.isNone(duration)) {
      return configError("timeout must be a non-negative Duration input, such as \"1 hour\" or 3600000")
    }
    const hmac = algorithm ?? "sha256"
    if (hmac !== "sha256" && hmac !== "sha1") return configError("algorithm must be \"sha256\" or \"sha1\"")
    const salt = keySalt ?? KEY_SALT
    if (typeof salt !== "string") return configError("keySalt must be a string")
    const zone = timeZone ?? "UTC"
    if (zone !== "UTC" && (typeof zone !== "string" || !isKnownZone(zone))) {
      return configError("timeZone must be a time zone name Intl knows, such as \"Europe/Paris\"")
    }
    return Either.right({
      secrets: [key, ...fallbackKeys],
      timeoutSeconds: Duration.toSeconds(duration.value),
      algorithm: hmac,
      acceptLegacySha1: acceptLegacySha1 === true,
      keySalt: salt,
      timeZone: zone === "UTC" ? undefined : zone
    })
  } catch {
    return configError("the options cannot be read")
  }
}

const withSettings = <A, E>(
  options: Options,
  f: (settings: Settings) => Effect.Effect<A, E>
): Effect.Effect<A, E | AuthConfigError> =>
  Effect.suspend((): Effect.Effect<A, E | AuthConfigError> => {
    const settings = settingsOf(options)
    return Either.isLeft(settings) ? Effect.fail(settings.left) : f(settings.right)
  })

/**
 * Checks the options as {@link make} and {@link check} read them: a `secret` and
 * `secretFallbacks` of `Redacted` strings, a `timeout` that is a `Duration` input, a known
 * `algorithm`, a string `keySalt`, a `timeZone` name `Intl` knows. Anything else is an
 * `AuthConfigError` whose message starts with `PasswordResetToken:`. Run it where the app builds
 * its options (from configuration, say), so that a typo in `TIME_ZONE` stops the app at start
 * rather than every reset.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordResetToken } from "effect-auth"
 *
 * const options = { secret: Redacted.make("SECRET_KEY"), timeZone: "Europe/Pariss" }
 * Effect.runSync(Effect.flip(PasswordResetToken.checkOptions(options))).message
 * // 'PasswordResetToken: timeZone must be a time zone name Intl knows, such as "Europe/Paris"'
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export const checkOptions = (options: Options): Effect.Effect<void, AuthConfigError> =>
  withSettings(options, () => Effect.void)

const secondsSince2001 = (timeZone: string | undefined) =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    let wall = now
    if (timeZone !== undefined && timeZone !== "UTC") {
      const part: Record<string, number> = {}
      for (const { type, value } of wallClock(timeZone).formatToParts(now)) part[type] = Number(value)
      wall = Date.UTC(part.year!, part.month! - 1, part.day!, part.hour!, part.minute!, part.second!)
    }
    return Math.floor((wall - EPOCH_2001) / 1000)
  })

const equal = (a: string, b: string): boolean => {
  const x = Buffer.from(a, "utf8")
  const y = Buffer.from(b, "utf8")
  return x.length === y.length && crypto.timingSafeEqual(x, y)
}

/**
 * Mints a token for the user, now (Django's `make_token`). A user that cannot be read (see
 * {@link TokenUser}) is {@link InvalidUser}; options {@link checkOptions} refuses, an
 * `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect, Option, Redacted } from "effect"
 * import { PasswordResetToken } from "effect-auth"
 *
 * const token = PasswordResetToken.make(
 *   { id: 42, passwordHash: Redacted.make("pbkdf2_sha256$..."), lastLogin: Option.none(), email: "" },
 *   { secret: Redacted.make("django-insecure-...") }
 * )
 * // e.g. "c2m7hb-3f2b0d0c6f4f1b2a0e9d8c7b6a5f4e3d"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (user: TokenUser, options: Options): Effect.Effect<string, InvalidUser | AuthConfigError> =>
  withSettings(options, (settings) => {
    const bound = boundOf(user)
    return bound === undefined ? Effect.fail(invalidUser) : Effect.map(
      secondsSince2001(settings.timeZone),
      (now) => tokenAt(bound, now, settings.secrets[0]!, settings.algorithm, settings.keySalt)
    )
  })

/**
 * Whether the token is valid for the user now (Django's `check_token`): made for this user in
 * its current state (password hash, last login, email), by `secret` or one of
 * `secretFallbacks`, no longer than `timeout` ago. A malformed token, or a user that cannot be
 * read (see {@link TokenUser}), is simply `false`, as in Django; options {@link checkOptions}
 * refuses are an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect, Option, Redacted } from "effect"
 * import { PasswordResetToken } from "effect-auth"
 *
 * const user = { id: "42", passwordHash: Redacted.make("pbkdf2_sha256$..."), lastLogin: Option.none(), email: "" }
 * const valid = PasswordResetToken.check(user, "c2m7hb-3f2b0d0c6f4f1b2a0e9d8c7b6a5f4e3d", {
 *   secret: Redacted.make("django-insecure-...")
 * })
 * ```
 *
 * @since 0.1.0
 * @category validation
 */
export const check = (user: TokenUser, token: string, options: Options): Effect.Effect<boolean, AuthConfigError> =>
  withSettings(options, (settings) =>
    Effect.map(secondsSince2001(settings.timeZone), (now) => {
      if (typeof token !== "string" || token === "") return false
      const parts = token.split("-")
      if (parts.length !== 2 || !B36.test(parts[0]!)) return false
      const bound = boundOf(user)
      if (bound === undefined) return false
      const timestamp = parseInt(parts[0]!, 36)
      const algorithms: ReadonlyArray<"sha256" | "sha1"> = settings.acceptLegacySha1
        ? [settings.algorithm, "sha1"]
        : [settings.algorithm]
      // Every candidate is computed and compared, so the time does not say which one matched.
      let matched = false
      for (const secret of settings.secrets) {
        for (const algorithm of algorithms) {
          if (equal(tokenAt(bound, timestamp, secret, algorithm, settings.keySalt), token)) matched = true
        }
      }
      if (!matched) return false
      // Django 3.2 reads a stamp of under 4 digits as a token of 3.0 or older: days since 2001,
      // aged from that day's local midnight plus the time of day now.
      const stamped = settings.acceptLegacySha1 && parts[0]!.length < 4
        ? timestamp * 86_400 + (now % 86_400)
        : timestamp
      return now - stamped <= settings.timeoutSeconds
    }))

/**
 * Django's `urlsafe_base64_encode(force_bytes(user.pk))`: the `uidb64` a reset link carries next
 * to the token.
 *
 * @example
 * ```ts
 * import { PasswordResetToken } from "effect-auth"
 *
 * PasswordResetToken.encodeUid("42") // "NDI"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const encodeUid = (id: string | number): string => Buffer.from(String(id), "utf8").toString("base64url")

/**
 * Django's `urlsafe_base64_decode(uidb64).decode()`: the user id of a reset link, or none when it
 * is not base64url of UTF-8 text or not a user id (`User.UserId`: 1 to 255 characters), where
 * Django's view finds no user. So its result goes to `UserStore.findById` as it is: an id the
 * store would refuse with `InvalidInput` (the empty uid `""`, a long one) never gets there.
 *
 * @example
 * ```ts
 * import { PasswordResetToken } from "effect-auth"
 *
 * PasswordResetToken.decodeUid("NDI") // Option.some("42")
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const decodeUid = (uidb64: string): Option.Option<string> => {
  // At most 3 UTF-8 bytes per UTF-16 unit, 4 base64 characters per 3 bytes: a longer uid is not
  // the encoding of any user id, and is not decoded at all.
  if (
    typeof uidb64 !== "string" || uidb64.length > UserId.maxLength * 4 ||
    !/^[A-Za-z0-9_-]*$/.test(uidb64) || uidb64.length % 4 === 1
  ) return Option.none()
  try {
    // `ignoreBOM`: Python's decode keeps a leading U+FEFF, and Django's view finds nobody for it.
    const id = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(Buffer.from(uidb64, "base64url"))
    return UserId.isUserId(id) ? Option.some(id) : Option.none()
  } catch {
    return Option.none()
  }
}
