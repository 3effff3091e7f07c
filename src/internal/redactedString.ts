import * as Redacted from "effect/Redacted"

/**
 * Whether a value is a `Redacted` holding a string: what the hashers and the password validators
 * read, checked before either does, since untyped callers hand over plain strings or `Redacted`
 * numbers.
 *
 * @internal
 */
export const isRedactedString = (value: unknown): value is Redacted.Redacted<string> =>
  Redacted.isRedacted(value) && typeof Redacted.value(value) === "string"
