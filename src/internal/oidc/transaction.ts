// The login transaction (state, nonce, PKCE verifier) kept by the browser between the redirect to
// the provider and the callback: a short-lived cookie, HttpOnly, signed with HMAC-SHA256 under a
// key derived from the app's secret. Signed rather than server-side: nothing to store or clean up,
// any instance can finish a login any other started; the values are useless without the code the
// provider sends to the same browser, and the cookie lives ten minutes and is cleared at the
// callback (a replayed code is refused by the provider anyway).
//
// One cookie per login, named from its state (`<cookieName>_<id>`), so that logins started in two
// tabs both finish (mozilla-django-oidc keeps several states in the session for the same reason):
// the callback finds its transaction by the `state` it is given. They are scoped to the callback,
// so the login route never sees them; a small index cookie (`<cookieName>_index`, Path=/, no
// secret in it: ids, expiry times and sizes) tells it which a browser holds, so that it can drop
// the oldest past a bound.
//
// The login's choice of cookie ("remember me", `HttpAuth.LoginOptions.expireAtBrowserClose`) is
// kept here too, as django-allauth keeps `remember` in its login state: made when the login
// starts, it cannot be changed at the callback, whose query the provider (or anyone) writes.
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHash, createHmac, timingSafeEqual } from "node:crypto"

/** @internal */
export interface Transaction {
  readonly state: string
  readonly nonce: string
  readonly codeVerifier: string
  /** Epoch milliseconds after which the callback is refused. */
  readonly expiresAt: number
  /** Where the login lands, checked when it started (`SafeRedirect`); `""` for the default. */
  readonly next: string
  /**
   * The login's choice of session cookie (`HttpAuth.LoginOptions.expireAtBrowserClose`): `true`
   * ends with the browser, `false` lasts; absent, the site's default (`Session`'s).
   */
  readonly expireAtBrowserClose?: boolean | undefined
}

/**
 * The longest cookie value `open` takes: a browser keeps 4096 bytes a cookie, name and attributes
 * included. A transaction whose `next` makes it longer is sealed without it. @internal
 */
export const maxCookieLength = 3800

const keyOf = (secret: Redacted.Redacted<string>): Buffer =>
  createHmac("sha256", "effect-auth.oidc.transaction").update(Redacted.value(secret)).digest()

const sign = (key: Buffer, payload: string): string => createHmac("sha256", key).update(payload).digest("base64url")

/** The cookie's value: `<payload>.<signature>`, both base64url. @internal */
export const seal = (secret: Redacted.Redacted<string>, transaction: Transaction): string => {
  const fields: Array<unknown> = [transaction.state, transaction.nonce, transaction.codeVerifier, transaction.expiresAt, transaction.next]
  // A sixth field only for a login that chose: one that did not is sealed as before, so an
  // instance not yet upgraded (a rolling deploy) still finishes it.
  if (typeof transaction.expireAtBrowserClose === "boolean") fields.push(transaction.expireAtBrowserClose)
  const payload = Buffer.from(JSON.stringify(fields)).toString("base64url")
  return `${payload}.${sign(keyOf(secret), payload)}`
}

/** The transaction of a cookie value, if it is one this app signed and it has not expired. @internal */
export const open = (secret: Redacted.Redacted<string>, value: string | undefined, now: number): Option.Option<Transaction> => {
  if (value === undefined || value.length > maxCookieLength) return Option.none()
  const dot = value.indexOf(".")
  if (dot <= 0) return Option.none()
  const payload = value.slice(0, dot)
  const given = Buffer.from(value.slice(dot + 1))
  const expected = Buffer.from(sign(keyOf(secret), payload))
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return Option.none()
  try {
    const parsed: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"))
    // Four fields: a login started before `next` was kept (the default landing); five: one that
    // made no choice of cookie, or was started before the choice was kept (the site's default).
    if (!Array.isArray(parsed) || parsed.length < 4 || parsed.length > 6) return Option.none()
    const [state, nonce, codeVerifier, expiresAt, next = "", expireAtBrowserClose] = parsed
    if (typeof state !== "string" || typeof nonce !== "string" || typeof codeVerifier !== "string") return Option.none()
    if (typeof expiresAt !== "number" || expiresAt <= now || typeof next !== "string") return Option.none()
    if (parsed.length === 6 && typeof expireAtBrowserClose !== "boolean") return Option.none()
    return Option.some({
      state,
      nonce,
      codeVerifier,
      expiresAt,
      next,
      ...(typeof expireAtBrowserClose === "boolean" && { expireAtBrowserClose })
    })
  } catch {
    return Option.none()
  }
}

/**
 * The id of a login's transaction: the first 64 bits of SHA-256 of its state, in hex. It names the
 * transaction's cookie; the state itself is no secret (it is in the provider's URLs), and the id
 * says no more. @internal
 */
export const idOf = (state: string): string => createHash("sha256").update(state).digest("hex").slice(0, 16)

/** The cookie of the transaction of id `id` ({@link idOf} its state). @internal */
export const cookieNameOf = (cookieName: string, id: string): string => `${cookieName}_${id}`

/** The index cookie's name. @internal */
export const indexNameOf = (cookieName: string): string => `${cookieName}_index`

/**
 * What the transaction cookies of one browser add up to at most (`name=value`, every one): one
 * cookie's worth, so the callback's `Cookie` header carries no more of them than a single
 * transaction with a long `next` did. @internal
 */
export const maxTotalLength = 4096

/** A transaction cookie the browser holds, as the index lists it. @internal */
export interface Entry {
  readonly id: string
  /** Epoch milliseconds, as the transaction's own. */
  readonly expiresAt: number
  /** The length of the cookie's `name=value`. */
  readonly size: number
}

const entryPattern = /^([0-9a-f]{16})_([0-9a-z]{1,10})_([0-9a-z]{1,4})$/

/**
 * The index's entries that have not expired, oldest first. The browser's own cookie, so whatever
 * it holds: what does not read as an entry is skipped, never an error, and so is an entry that
 * expires after `latest` (no login of this app does: one planted to outlive the others would be
 * the last ever dropped). @internal
 */
export const readIndex = (value: string | undefined, now: number, latest: number): ReadonlyArray<Entry> => {
  if (value === undefined || value.length > maxTotalLength) return []
  const entries: Array<Entry> = []
  for (const part of value.split(".")) {
    const match = entryPattern.exec(part)
    if (match === null) continue
    const id = match[1]!
    const expiresAt = parseInt(match[2]!, 36)
    const size = parseInt(match[3]!, 36)
    if (expiresAt <= now || expiresAt > latest || size > maxTotalLength || entries.some((e) => e.id === id)) continue
    entries.push({ id, expiresAt, size })
  }
  return entries.sort((a, b) => a.expiresAt - b.expiresAt)
}

/** The index cookie's value (only characters a cookie carries as they are). @internal */
export const writeIndex = (entries: ReadonlyArray<Entry>): string =>
  entries.map((e) => `${e.id}_${e.expiresAt.toString(36)}_${e.size.toString(36)}`).join(".")

/**
 * A new transaction beside those the browser holds: the oldest are dropped until at most `max`
 * are kept and their cookies add up to at most {@link maxTotalLength} (the new one is always
 * kept). Answers the index to keep, oldest first, and the entries whose cookies must be cleared.
 * @internal
 */
export const admit = (
  held: ReadonlyArray<Entry>,
  added: Entry,
  max: number
): { readonly kept: ReadonlyArray<Entry>; readonly dropped: ReadonlyArray<Entry> } => {
  const others = held.filter((e) => e.id !== added.id)
  const dropped: Array<Entry> = []
  let total = others.reduce((sum, e) => sum + e.size, added.size)
  while (others.length > 0 && (others.length + 1 > max || total > maxTotalLength)) {
    const oldest = others.shift()!
    dropped.push(oldest)
    total -= oldest.size
  }
  return { kept: [...others, added], dropped }
}
