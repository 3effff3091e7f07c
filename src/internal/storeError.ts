// The message of the stores' errors (users, sessions, API tokens): which store, which operation,
// and why, down to the driver's own reason, in one line. The layers between (a Migrator's
// "Migration … failed", a SqlError's "Failed to execute statement") say where; the innermost
// cause says why (`table auth_user already exists`), so every message is carried.

import * as ParseResult from "effect/ParseResult"
import { failingPaths } from "./parseErrors.js"

// A row that does not decode is described by its failing columns: a ParseError's own message
// shows the value found there, which may be a password hash (and renders it recursively).
const messageOf = (cause: unknown): string =>
  ParseResult.isParseError(cause)
    ? `a row does not decode at ${failingPaths(cause)}`
    : cause instanceof Error
    ? cause.message
    : typeof cause === "string"
    ? cause
    : String(cause)

/**
 * The cause a store's error keeps. A `ParseError` (a row that does not decode) becomes an `Error`
 * naming the failing columns: the error's message already hid the values, but Effect's loggers
 * render the cause itself (`renderErrorCause`), and so does `JSON.stringify`, and a ParseError
 * carries the value found, a password hash say. Any other error is copied down its causes with
 * its message, name, `_tag` and `code` only: a driver's error carries what it was given, and
 * PostgreSQL's `detail` of a refused row ("Failing row contains (1, pbkdf2_sha256$…, …)") showed a
 * password hash, or a session key, to `util.inspect` and every JSON logger. @internal
 */
export const safeCause = (cause: unknown, depth = 0): unknown => {
  if (ParseResult.isParseError(cause)) return new Error(messageOf(cause))
  if (!(cause instanceof Error)) return cause
  const inner = depth < 6 && cause.cause !== undefined ? { cause: safeCause(cause.cause, depth + 1) } : undefined
  const copy: Error & { _tag?: string; code?: string } = new Error(cause.message, inner)
  copy.name = cause.name
  const { _tag, code } = cause as { readonly _tag?: unknown; readonly code?: unknown }
  if (typeof _tag === "string") copy._tag = _tag
  if (typeof code === "string") copy.code = code
  return copy
}

/** Each cause's message, outermost first, without repeats. @internal */
export const reasons = (cause: unknown): Array<string> => {
  const out: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 6 && current !== undefined && current !== null; depth++) {
    const line = messageOf(current).replace(/\s+/g, " ").trim()
    if (line !== "" && !out.includes(line)) out.push(line)
    current = current instanceof Error || (typeof current === "object" && "cause" in current)
      ? (current as { readonly cause?: unknown }).cause
      : undefined
  }
  return out
}

/** `<store>: <operation> failed: <each cause's message, outermost first>`. @internal */
export const failedMessage = (store: string, operation: string, cause: unknown): string =>
  `${store}: ${operation} failed: ${reasons(cause).join(": ")}`
