/**
 * Time-based one-time passwords (RFC 6238, over RFC 4226's HOTP) and what enrolling an
 * authenticator app takes: a random secret, the `otpauth://` URI that the QR code carries
 * (Google's Key Uri Format, read by every authenticator app), and recovery codes.
 *
 * The HMAC is `node:crypto`'s. Codes are compared in constant time. Every secret, URI and code
 * is `Redacted`.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Totp } from "effect-auth"
 *
 * const secret = Totp.generateSecret()
 * const uri = Totp.uri({ secret, issuer: "Example", account: "alice@example.com" })
 * // render Redacted.value(uri) as a QR code for the user to scan
 * const now = Totp.generate(secret, Date.now())
 * Totp.verify(secret, now, Date.now()) // Option.some(<the time step>)
 * ```
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import { AuthConfigError } from "./AuthError.js"
import { textOf } from "./internal/redactedString.js"
import { wellFormed } from "./internal/wellFormed.js"

/**
 * The HMAC of the codes. Authenticator apps all support `SHA1` (the default, and what most
 * ignore the parameter for); use another only when every app of your users honours it.
 *
 * @example
 * ```ts
 * import type { Totp } from "effect-auth"
 *
 * const algorithm: Totp.Algorithm = "SHA1"
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Algorithm = "SHA1" | "SHA256" | "SHA512"

/**
 * How codes are made and checked.
 *
 * @example
 * ```ts
 * import type { Totp } from "effect-auth"
 *
 * const options: Totp.Options = { digits: 6, period: 30, algorithm: "SHA1", window: 1 }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Digits per code, an integer from 6 to 8. Default: 6. */
  readonly digits?: number | undefined
  /** Seconds per time step, a positive integer. Default: 30. */
  readonly period?: number | undefined
  /** Default: `"SHA1"`. */
  readonly algorithm?: Algorithm | undefined
  /**
   * Time steps accepted on either side of the current one, for clock drift and a code typed as
   * it changes: an integer from 0 to 10. Default: 1 (the previous, current and next codes).
   */
  readonly window?: number | undefined
}

/** The widest drift window: ±10 steps (five minutes each way at 30 s) is already generous. */
const MAX_WINDOW = 10

// (`undefined`: options that cannot be read, see `readSettings`)
const problemOf = (s: Settings | undefined): string | undefined => {
  if (s === undefined) return "options must be an object whose fields can be read"
  const integerIn = (n: number, min: number, max: number) => Number.isSafeInteger(n) && n >= min && n <= max
  if (!integerIn(s.digits, 6, 8)) return "digits must be an integer from 6 to 8"
  if (!integerIn(s.period, 1, Number.MAX_SAFE_INTEGER)) return "period must be a positive integer (seconds)"
  if (!integerIn(s.window, 0, MAX_WINDOW)) return `window must be an integer from 0 to ${MAX_WINDOW}`
  if (s.algorithm !== "SHA1" && s.algorithm !== "SHA256" && s.algorithm !== "SHA512") {
    return "algorithm must be SHA1, SHA256 or SHA512"
  }
  return undefined
}

/**
 * Checks `options` (a typed `number` can still be 0, fractional or huge at run time, from a
 * config file say): digits an integer from 6 to 8, period a positive integer, window an integer
 * from 0 to 10, a known algorithm. Anything else, options that throw when read included, is an
 * `AuthConfigError` whose message starts with `module`. `TotpBackend` checks its options with it
 * when it is built.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Totp } from "effect-auth"
 *
 * Effect.runSync(Effect.flip(Totp.checkOptions({ period: 0 }))).message // "Totp: period must be a positive integer (seconds)"
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export const checkOptions = (options?: Options, module = "Totp"): Effect.Effect<void, AuthConfigError> => {
  const problem = problemOf(readSettings(options))
  return problem === undefined ? Effect.void : Effect.fail(new AuthConfigError({ message: `${module}: ${problem}` }))
}

interface Settings {
  readonly digits: number
  readonly period: number
  readonly algorithm: Algorithm
  readonly window: number
  readonly after: number | undefined
}

const settings = (options: Options & { readonly after?: number | undefined } = {}): Settings => ({
  digits: options.digits ?? 6,
  period: options.period ?? 30,
  algorithm: options.algorithm ?? "SHA1",
  window: options.window ?? 1,
  after: options.after
})

// The options read once, into plain values: options of an untyped caller that throw when read (a
// getter, a Proxy whose traps throw) are none, which `problemOf` refuses, where the throw escaped
// `verify` and `checkOptions`.
const readSettings = (options: (Options & { readonly after?: number | undefined }) | undefined): Settings | undefined => {
  try {
    return settings(options)
  } catch {
    return undefined
  }
}

// --- base32 (RFC 4648, no padding: what authenticator apps read) --------------------------------

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

/**
 * Base32 (RFC 4648) without padding, the encoding of TOTP secrets.
 *
 * @example
 * ```ts
 * import { Totp } from "effect-auth"
 *
 * Totp.base32Encode(Buffer.from("12345678901234567890")) // "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
 * ```
 *
 * @since 0.2.0
 * @category encoding
 */
export const base32Encode = (bytes: Uint8Array): string => {
  let out = ""
  let bits = 0
  let value = 0
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out
}

/**
 * Decodes base32, ignoring case, spaces, hyphens and padding (as people type secrets); none for
 * any other character.
 *
 * @example
 * ```ts
 * import { Totp } from "effect-auth"
 *
 * Totp.base32Decode("gezd gnbv") // Option.some(<Buffer 31 32 33 34 35>)
 * ```
 *
 * @since 0.2.0
 * @category encoding
 */
export const base32Decode = (text: string): Option.Option<Buffer> => {
  if (typeof text !== "string") return Option.none()
  const clean = text.replace(/[\s=-]/g, "").toUpperCase()
  const out: Array<number> = []
  let bits = 0
  let value = 0
  for (const char of clean) {
    const index = alphabet.indexOf(char)
    if (index < 0) return Option.none()
    value = ((value << 5) | index) & 0xffff
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff)
      bits -= 8
    }
  }
  return Option.some(Buffer.from(out))
}

// --- codes -------------------------------------------------------------------------------------

/**
 * A new random secret, base32: 20 bytes (160 bits, RFC 4226's recommendation) by default.
 * `bytes` is held to 16–1024 (RFC 4226 asks for at least 128 bits; a count read from a config
 * file at run time can be anything): below 16 it is 16, above 1024 it is 1024, a fraction is
 * rounded down, and what is not a finite number gives the default. Never throws.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Totp } from "effect-auth"
 *
 * Redacted.value(Totp.generateSecret()).length // 32
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const generateSecret = (bytes = 20): Redacted.Redacted<string> =>
  Redacted.make(base32Encode(randomBytes(secretBytes(bytes))))

const secretBytes = (bytes: unknown): number =>
  typeof bytes === "number" && Number.isFinite(bytes) ? Math.min(1024, Math.max(16, Math.floor(bytes))) : 20

/**
 * The time step of `timeMillis`: `floor(seconds / period)`.
 *
 * @example
 * ```ts
 * import { Totp } from "effect-auth"
 *
 * Totp.counterAt(59_000) // 1
 * ```
 *
 * @since 0.2.0
 * @category codes
 */
export const counterAt = (timeMillis: number, options?: Options): number =>
  Math.floor(timeMillis / 1000 / settings(options).period)

const hotp = (key: Buffer, counter: number, digits: number, algorithm: Algorithm): string => {
  const message = Buffer.alloc(8)
  message.writeBigUInt64BE(BigInt(counter))
  const mac = createHmac(algorithm.toLowerCase(), key).update(message).digest()
  const offset = mac[mac.length - 1]! & 0x0f
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!
  return String(binary % 10 ** digits).padStart(digits, "0")
}

// A secret that holds no string (a wiped Redacted, from an untyped caller) is no key: no code.
const keyOf = (secret: Redacted.Redacted<string>): Buffer =>
  Option.getOrElse(base32Decode(textOf(secret) ?? ""), () => Buffer.alloc(0))

/**
 * The code of the time step of `timeMillis` (RFC 6238 `TOTP`). Throws a `RangeError` for options
 * {@link checkOptions} refuses or a time that is not a finite number from 1970 on: check options
 * from configuration first ({@link verify} answers none for both instead).
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Totp } from "effect-auth"
 *
 * // RFC 6238, appendix B: the SHA1 secret "12345678901234567890" at T = 59 s
 * const secret = Redacted.make(Totp.base32Encode(Buffer.from("12345678901234567890")))
 * Redacted.value(Totp.generate(secret, 59_000, { digits: 8 })) // "94287082"
 * ```
 *
 * @since 0.2.0
 * @category codes
 */
export const generate = (
  secret: Redacted.Redacted<string>,
  timeMillis: number,
  options?: Options
): Redacted.Redacted<string> => {
  const s = settings(options)
  return Redacted.make(hotp(keyOf(secret), counterAt(timeMillis, s), s.digits, s.algorithm))
}

/**
 * Checks `code` against the time steps within `window` of `timeMillis`, and answers the step it
 * matched. Steps at or before `after` are refused: pass the last step a user logged in with, and
 * a code cannot be used twice (RFC 6238 §5.2). Options {@link checkOptions} refuses (options that
 * throw when read, a Proxy whose traps throw, included), a time that is not a finite number, or a
 * code or secret that holds no string (from an untyped caller: a number, a wiped `Redacted`, a
 * Proxy whose traps throw) match nothing.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Totp } from "effect-auth"
 *
 * const secret = Totp.generateSecret()
 * const code = Totp.generate(secret, Date.now())
 * const step = Totp.verify(secret, code, Date.now()) // Option.some(n)
 * ```
 *
 * @since 0.2.0
 * @category codes
 */
export const verify = (
  secret: Redacted.Redacted<string>,
  code: string | Redacted.Redacted<string>,
  timeMillis: number,
  options?: Options & { readonly after?: number | undefined }
): Option.Option<number> => {
  const s = readSettings(options)
  // A zero period made every step Infinity, which BigInt refused with a RangeError (a defect).
  if (s === undefined || problemOf(s) !== undefined || !Number.isFinite(timeMillis)) return Option.none()
  // (untyped callers hand over numbers or wiped values: no code)
  const text = typeof code === "string" ? code : textOf(code)
  if (text === undefined) return Option.none()
  const given = Buffer.from(text)
  const key = keyOf(secret)
  if (key.length === 0 || given.length !== s.digits) return Option.none()
  const now = counterAt(timeMillis, s)
  // The counter is 8 bytes: a time that far out has no code. Nor has a time before 1970 by more
  // than the window (past 2^53 in magnitude, `counter++` would no longer move, and the loop
  // below would never end).
  if (now + s.window > Number.MAX_SAFE_INTEGER || now + s.window < 0) return Option.none()
  let matched: number | undefined
  // Every step of the window is computed and compared, whatever matches, in constant time.
  for (let counter = now - s.window; counter <= now + s.window; counter++) {
    if (counter < 0) continue
    const expected = Buffer.from(hotp(key, counter, s.digits, s.algorithm))
    if (timingSafeEqual(expected, given) && (s.after === undefined || counter > s.after)) {
      matched ??= counter
    }
  }
  return Option.fromNullable(matched)
}

/**
 * The `otpauth://totp/…` URI an authenticator app reads from a QR code (Google's Key Uri Format):
 * render it as a QR code on the enrolment page, or show the secret for typing.
 *
 * The label is `issuer:account`, and apps split it at its first colon (encoded or not), so the
 * format allows no colon in either: every `:` is left out of both (django-otp's `config_url`
 * strips it from the issuer), lest `"ACME:Prod"` show as issuer `ACME`, account `Prod:alice`. An
 * issuer that is empty (once stripped) is left out, label prefix and `issuer=` parameter both, as
 * django-otp leaves it out, where `"otpauth://totp/:alice"` named an empty issuer.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { Totp } from "effect-auth"
 *
 * const uri = Totp.uri({ secret: Redacted.make("JBSWY3DPEHPK3PXP"), issuer: "Example Co", account: "alice" })
 * Redacted.value(uri) // "otpauth://totp/Example%20Co:alice?secret=JBSWY3DPEHPK3PXP&issuer=Example%20Co&algorithm=SHA1&digits=6&period=30"
 * Redacted.value(Totp.uri({ secret: Redacted.make("JBSWY3DPEHPK3PXP"), issuer: "", account: "alice" }))
 * // "otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&algorithm=SHA1&digits=6&period=30"
 * ```
 *
 * @since 0.2.0
 * @category enrolment
 */
export const uri = (
  input: Options & { readonly secret: Redacted.Redacted<string>; readonly issuer: string; readonly account: string }
): Redacted.Redacted<string> => {
  const s = settings(input)
  // A lone surrogate (an email stored with one, say) made `encodeURIComponent` throw: U+FFFD here.
  const issuer = encodeURIComponent(labelPart(input.issuer))
  const account = encodeURIComponent(labelPart(input.account))
  const label = issuer === "" ? account : `${issuer}:${account}`
  const query = `secret=${Redacted.value(input.secret)}${issuer === "" ? "" : `&issuer=${issuer}`}` +
    `&algorithm=${s.algorithm}&digits=${s.digits}&period=${s.period}`
  return Redacted.make(`otpauth://totp/${label}?${query}`)
}

// A part of the label as the Key Uri Format allows it: no colon, no lone surrogate.
const labelPart = (text: string): string => wellFormed(text).replaceAll(":", "")

// --- recovery codes ----------------------------------------------------------------------------

/**
 * `count` single-use recovery codes (default 10), each 12 base32 characters (60 random bits) in
 * groups of four: `abcd-efgh-ijkl`. Show them once; store only {@link hashRecoveryCode}'s.
 *
 * @example
 * ```ts
 * import { Totp } from "effect-auth"
 *
 * const codes = Totp.generateRecoveryCodes()
 * const stored = codes.map(Totp.hashRecoveryCode)
 * ```
 *
 * @since 0.2.0
 * @category recovery codes
 */
export const generateRecoveryCodes = (count = 10): ReadonlyArray<Redacted.Redacted<string>> =>
  Array.from({ length: count }, () => {
    const text = base32Encode(randomBytes(8)).slice(0, 12).toLowerCase()
    return Redacted.make(`${text.slice(0, 4)}-${text.slice(4, 8)}-${text.slice(8, 12)}`)
  })

/**
 * What is stored of a recovery code: SHA-256 of the code as typed, lower-cased, without spaces or
 * hyphens (hex). A fast hash suffices: the codes carry 60 random bits each, so unlike a password
 * a leaked hash cannot be reversed by guessing, and a slow hasher would only cost every check.
 *
 * @example
 * ```ts
 * import { Totp } from "effect-auth"
 *
 * Totp.hashRecoveryCode("ABCD EFGH IJKL") === Totp.hashRecoveryCode("abcd-efgh-ijkl") // true
 * ```
 *
 * @since 0.2.0
 * @category recovery codes
 */
export const hashRecoveryCode = (code: string | Redacted.Redacted<string>): string =>
  createHash("sha256")
    .update((typeof code === "string" ? code : textOf(code) ?? "").replace(/[\s-]/g, "").toLowerCase())
    .digest("hex")
