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
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as UserId from "./internal/userId.js"

/**
 * What a token is bound to. A `UserStore.StoredUser` is one.
 *
 * - `id`: the primary key, as Django formats it (`str(user.pk)`: `42` for an integer key).
 * - `passwordHash`: the stored hash (the `password` column), unusable ones included.
 * - `lastLogin`: `Option.none()` (or `null`) for a user who never logged in; only whole seconds count.
 * - `email`: the email, `""` or absent for none.
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
 *   own lived six and a half hours here). A name `Intl` does not know is a defect.
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

// str(last_login.replace(microsecond=0, tzinfo=None)): the UTC wall time Django reads back.
const loginTimestamp = (lastLogin: TokenUser["lastLogin"]): string => {
  const date = lastLogin instanceof Date ? lastLogin : Option.isOption(lastLogin) ? Option.getOrNull(lastLogin) : null
  if (date === null || date === undefined) return ""
  return `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`
}

// Django's `_make_hash_value`.
const hashValue = (user: TokenUser, timestamp: number): string =>
  `${user.id}${Redacted.value(user.passwordHash)}${loginTimestamp(user.lastLogin)}${timestamp}${user.email ?? ""}`

// Django's `salted_hmac(key_salt, value, secret, algorithm=...).hexdigest()[::2]`.
const digest = (keySalt: string, value: string, secret: string, algorithm: "sha256" | "sha1"): string => {
  const key = crypto.createHash(algorithm).update(Buffer.from(keySalt + secret, "utf8")).digest()
  const hex = crypto.createHmac(algorithm, key).update(Buffer.from(value, "utf8")).digest("hex")
  let every2nd = ""
  for (let i = 0; i < hex.length; i += 2) every2nd += hex[i]
  return every2nd
}

const tokenAt = (
  user: TokenUser,
  timestamp: number,
  secret: Redacted.Redacted<string>,
  algorithm: "sha256" | "sha1",
  keySalt: string
): string => `${timestamp.toString(36)}-${digest(keySalt, hashValue(user, timestamp), Redacted.value(secret), algorithm)}`

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
 * Mints a token for the user, now (Django's `make_token`).
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
export const make = (user: TokenUser, options: Options): Effect.Effect<string> =>
  Effect.map(
    secondsSince2001(options.timeZone),
    (now) => tokenAt(user, now, options.secret, options.algorithm ?? "sha256", options.keySalt ?? KEY_SALT)
  )

/**
 * Whether the token is valid for the user now (Django's `check_token`): made for this user in
 * its current state (password hash, last login, email), by `secret` or one of
 * `secretFallbacks`, no longer than `timeout` ago. A malformed token is simply `false`.
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
export const check = (user: TokenUser, token: string, options: Options): Effect.Effect<boolean> =>
  Effect.map(secondsSince2001(options.timeZone), (now) => {
    if (typeof token !== "string" || token === "") return false
    const parts = token.split("-")
    if (parts.length !== 2 || !B36.test(parts[0]!)) return false
    const timestamp = parseInt(parts[0]!, 36)
    const keySalt = options.keySalt ?? KEY_SALT
    const algorithms: ReadonlyArray<"sha256" | "sha1"> = options.acceptLegacySha1 === true
      ? [options.algorithm ?? "sha256", "sha1"]
      : [options.algorithm ?? "sha256"]
    const secrets = [options.secret, ...(options.secretFallbacks ?? [])]
    // Every candidate is computed and compared, so the time does not say which one matched.
    let matched = false
    for (const secret of secrets) {
      for (const algorithm of algorithms) {
        if (equal(tokenAt(user, timestamp, secret, algorithm, keySalt), token)) matched = true
      }
    }
    if (!matched) return false
    // Django 3.2 reads a stamp of under 4 digits as a token of 3.0 or older: days since 2001,
    // aged from that day's local midnight plus the time of day now.
    const stamped = options.acceptLegacySha1 === true && parts[0]!.length < 4
      ? timestamp * 86_400 + (now % 86_400)
      : timestamp
    return now - stamped <= Duration.toSeconds(options.timeout ?? defaultTimeout)
  })

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
    const id = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(uidb64, "base64url"))
    return UserId.isUserId(id) ? Option.some(id) : Option.none()
  } catch {
    return Option.none()
  }
}
