import * as crypto from "node:crypto"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"

/** A hasher's failure; the public module turns it into `HashError`. Never holds the password. */
export class HasherFailure extends Data.TaggedError("HasherFailure")<{
  readonly algorithm: string
  readonly reason: string
  /** What the driver threw (never the password: drivers get bytes, and errors do not echo them). */
  readonly cause?: unknown
}> {}

/** An optional driver that could not be imported; `reason` says what to do about it. */
export class DriverUnavailable extends Error {
  constructor(readonly reason: string, options: { readonly cause: unknown }) {
    super(reason, options)
  }
}

/**
 * An optional peer dependency (a native hashing driver), imported on first use so sites that do
 * not use its algorithm need not install it. A failed import is not cached, and becomes a
 * `DriverUnavailable` that names the package and the install command. `setImport` is the seam the
 * tests use to simulate a missing package.
 */
export const optionalDriver = <A>(pkg: string, version: string, importIt: () => Promise<A>) => {
  let load = importIt
  let loaded: Promise<A> | undefined
  return {
    load: (): Promise<A> =>
      loaded ??= load().catch((cause: unknown) => {
        loaded = undefined
        const code = (cause as { code?: unknown } | null)?.code
        const missing = (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") &&
          String((cause as { message?: unknown }).message).includes(pkg)
        throw new DriverUnavailable(
          missing ? `${pkg} is not installed (npm i ${pkg}@${version})` : `${pkg} could not be loaded`,
          { cause }
        )
      }),
    setImport: (next: () => Promise<A>): void => {
      load = next
      loaded = undefined
    }
  }
}

/**
 * A stored hash may ask for at most this many times the work of the hasher's settings (or of
 * Django's defaults, when they ask for more) before it is refused rather than checked. Django
 * checks any cost it can parse: a hash of PBKDF2 at 2^31 - 1 iterations held a hasher for ten
 * minutes, bcrypt at cost 31 for days, and every login of that user took another. Sixteen times
 * leaves room for a database written by a newer Django, or by stronger settings since lowered.
 */
export const WORK_CEILING = 16

/** Whether `stored` work is within {@link WORK_CEILING} of the settings' and Django's default. */
export const withinCeiling = (stored: number, configured: number, djangoDefault: number): boolean =>
  stored <= WORK_CEILING * Math.max(configured, djangoDefault)

/** Why a key derivation runs; recorded on its span so timing defences can be observed. */
export type Purpose = "encode" | "verify" | "dummy" | "harden"

/**
 * Runs one expensive derivation off the event loop. The service gives every hasher the same
 * runner, which bounds concurrency and records a span.
 */
export type Run = <A>(algorithm: string, purpose: Purpose, work: () => Promise<A>) => Effect.Effect<A, HasherFailure>

/** One of Django's hashers: the same five operations, on UTF-8 password bytes. */
export interface Hasher {
  readonly algorithm: string
  /** Whether it may be the preferred hasher (legacy ones only verify). */
  readonly writable: boolean
  /** A fresh salt in the form `encode` takes (Django's `salt()`). */
  readonly salt: () => string
  readonly encode: (password: Uint8Array, salt: string, purpose?: Purpose) => Effect.Effect<string, HasherFailure>
  readonly verify: (password: Uint8Array, encoded: string) => Effect.Effect<boolean, HasherFailure>
  /** Django's `must_update`: parameters or salt outdated for this hasher's settings. */
  readonly mustUpdate: (encoded: string) => Effect.Effect<boolean, HasherFailure>
  /** Django's `harden_runtime`: spend the work a wrong password on an outdated hash saved. */
  readonly hardenRuntime: (password: Uint8Array, encoded: string) => Effect.Effect<void, HasherFailure>
}

/** Django's `RANDOM_STRING_CHARS`. */
const ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/** Django's `get_random_string`: uniform over `[a-zA-Z0-9]` (rejection sampling keeps it unbiased). */
export const randomString = (length: number): string => {
  let out = ""
  while (out.length < length) {
    for (const byte of crypto.randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += ALPHANUMERIC[byte % 62]
    }
  }
  return out
}

/** 22 characters: the fewest of `[a-zA-Z0-9]` that carry 128 bits, as Django's `salt()`. */
export const SALT_LENGTH = 22

/** Django's `must_update_salt` with the 128-bit entropy floor: fewer than 22 characters. */
export const mustUpdateSalt = (saltLength: number): boolean => saltLength * Math.log2(62) < 128

/** Python's `len()`: code points, not UTF-16 units (matters for Django's length-based identify). */
export const pyLen = (s: string): number => {
  let n = 0
  for (const _ of s) n++
  return n
}

/** Python's `str.split(sep, maxsplit)`. */
export const pySplit = (s: string, sep: string, maxsplit: number): Array<string> => {
  const out: Array<string> = []
  let rest = s
  while (out.length < maxsplit) {
    const i = rest.indexOf(sep)
    if (i < 0) break
    out.push(rest.slice(0, i))
    rest = rest.slice(i + sep.length)
  }
  out.push(rest)
  return out
}

// Python's int(): surrounding whitespace, a sign, underscores between digits. Django re-encodes
// the parsed number and compares whole strings, so "0260000" parses but then never verifies.
const PY_INT = /^[ \t\n\r\f\v]*([+-]?[0-9]+(?:_[0-9]+)*)[ \t\n\r\f\v]*$/

/** Python's `int(text)` for the parameter fields of an encoded hash. */
export const pyInt = (text: string): number | undefined => {
  const match = PY_INT.exec(text)
  return match === null ? undefined : Number(match[1]!.replaceAll("_", ""))
}

/** Django's `constant_time_compare` on two encoded hashes (ASCII, so UTF-8 equals the code units). */
export const constantTimeEquals = (a: string, b: string): boolean => {
  const left = Buffer.from(a, "utf8")
  const right = Buffer.from(b, "utf8")
  // timingSafeEqual needs equal lengths; comparing right with itself keeps the work the same.
  return left.length === right.length
    ? crypto.timingSafeEqual(left, right)
    : !crypto.timingSafeEqual(right, right)
}

/** Standard base64 with padding, as Python's `base64.b64encode`. */
export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64")

/** A failure constructor bound to one algorithm. */
export const failWith = (algorithm: string) => (reason: string): Effect.Effect<never, HasherFailure> =>
  Effect.fail(new HasherFailure({ algorithm, reason }))

/** Django's `_check_encode_args`: a salt is required and may not contain `$`. */
export const checkSalt = (algorithm: string, salt: string): Effect.Effect<void, HasherFailure> =>
  salt.length === 0 || salt.includes("$")
    ? failWith(algorithm)("salt must be provided and cannot contain $")
    : Effect.void
