import * as Redacted from "effect/Redacted"

/**
 * The string a `Redacted` holds, or `undefined` when it holds something else or nothing: a value
 * wiped with `Redacted.unsafeWipe`, or an object that merely inherits from a `Redacted`, passes
 * `Redacted.isRedacted`, and `Redacted.value` throws on it. `Redacted.isRedacted` itself throws
 * on a `Proxy` whose `has` trap throws (it asks `TypeId in value`), so it is asked inside the
 * `try` too: an untyped caller's hostile object is no string, never an exception.
 *
 * @internal
 */
export const textOf = (value: unknown): string | undefined => {
  try {
    if (!Redacted.isRedacted(value)) return undefined
    const held: unknown = Redacted.value(value)
    return typeof held === "string" ? held : undefined
  } catch {
    return undefined
  }
}

/**
 * Whether a value is a `Redacted` holding a string: what the hashers and the password validators
 * read, checked before either does, since untyped callers hand over plain strings, `Redacted`
 * numbers or wiped values.
 *
 * @internal
 */
export const isRedactedString = (value: unknown): value is Redacted.Redacted<string> => textOf(value) !== undefined
