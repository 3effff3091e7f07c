import * as Redacted from "effect/Redacted"
import { codePointsWithin } from "./codePoints.js"
import { textOf } from "./redactedString.js"

/**
 * Direct decoders for the credentials Schemas whose shape the library knows (`UsernamePassword`,
 * `Token`, `RemoteUser`). Each accepts exactly what its Schema accepts in the common case and
 * returns the same value; for anything else it answers `invalid`, and the fold asks the Schema,
 * which gives the failure (or, for an unusual but valid input, the value). Decoding through the
 * Schema's interpreter costs more than the rest of a login; these are a property test away from
 * the Schemas (`test/Credentials.test.ts`).
 *
 * @internal
 */
export const invalid: unique symbol = Symbol.for("effect-auth/internal/credentialsDecoder/invalid")

/** @internal */
export type Decoder<A> = (raw: unknown) => A | typeof invalid

const registry = new WeakMap<object, Decoder<unknown>>()

/** Records the direct decoder of a Schema. @internal */
export const register = <S extends object, A>(schema: S, decoder: Decoder<A>): S => {
  registry.set(schema, decoder)
  return schema
}

/** The direct decoder of a Schema, if it has one. @internal */
export const lookup = (schema: unknown): Decoder<unknown> | undefined =>
  typeof schema === "object" || typeof schema === "function" ? registry.get(schema as object) : undefined

/**
 * The longest password a login takes (`Credentials.Password`), in UTF-16 code units: a hostile
 * client cannot make the hasher work on megabytes. A password set through `UserManager` is held to
 * it too, or it could never log in. @internal
 */
export const passwordMaxLength = 4096

/**
 * Whether the input is a string of `min` to `max` UTF-16 units, as `Schema.minLength`/`maxLength`
 * count them.
 *
 * @internal
 */
export const isText = (min: number, max: number) => (raw: unknown): raw is string =>
  typeof raw === "string" && raw.length >= min && raw.length <= max

/**
 * Whether the input is a string of `min` to `max` characters as Python (and Django's
 * `max_length`) counts them: code points, an emoji one where `length` counts two.
 *
 * @internal
 */
export const isCodePointText = (min: number, max: number) => (raw: unknown): raw is string =>
  typeof raw === "string" && codePointsWithin(raw, min, max)

/** The same check as a decoder: the string itself, or `invalid`. @internal */
export const text = (min: number, max: number): Decoder<string> => {
  const check = isText(min, max)
  return (raw) => check(raw) ? raw : invalid
}

/** `Credentials.secret(max)`: a plain string is wrapped once, a valid `Redacted` kept. @internal */
export const secret = (max: number): Decoder<Redacted.Redacted<string>> => {
  const isSecretText = isText(1, max)
  return (raw) => {
    if (typeof raw === "string") return isSecretText(raw) ? Redacted.make(raw) : invalid
    // (a wiped Redacted holds nothing: `textOf` answers undefined where `Redacted.value` throws)
    return isSecretText(textOf(raw)) ? raw as Redacted.Redacted<string> : invalid
  }
}

/**
 * Whether the input is a plain record whose own keys (symbols and non-enumerable ones included, as
 * the Schema's excess-property check counts them) are exactly the given ones.
 *
 * @internal
 */
export const hasExactKeys = (raw: unknown, keys: ReadonlyArray<string>): raw is Record<string, unknown> => {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return false
  // The keys first: credentials of another kind (a token where a password is expected, the common
  // case in a mixed chain) are refused before their own keys are listed.
  for (let i = 0; i < keys.length; i++) {
    if (!Object.prototype.hasOwnProperty.call(raw, keys[i]!)) return false
  }
  // Every own key counts, as in `Reflect.ownKeys`, which costs twice these two.
  return Object.getOwnPropertyNames(raw).length === keys.length && Object.getOwnPropertySymbols(raw).length === 0
}
