// The lockout's keys: how an attempt's username and address become the keys it counts under,
// and which keys a `Lockout.KeyQuery` (a reset, a list) asks for. Every key is made here, so a
// store only ever sees folded, well-formed keys.
import type { By, KeyQuery } from "../Lockout.js"
import { nfkcBound } from "./codePoints.js"
import { fieldOf } from "./fieldOf.js"
import { wellFormed } from "./wellFormed.js"

// --- keys --------------------------------------------------------------------------------------

// Usernames are folded (NFKC, spaces trimmed and runs of whitespace made one space, lower case) so
// that `Alice`, `ａｌｉｃｅ` and ` alice ` share a counter: LDAP matches names ignoring case and
// insignificant spaces, so each of these logs in as the same user, and locking too much is safer
// than letting a variant spelling through. Every key (counting, `reset`) is made here, so a store
// only ever sees folded names. Long names are cut, keys stay small; a name past `nfkcBound` is cut
// before NFKC, whose cost grows with the square of a run of combining marks (no username is that
// long, so no spelling of one gets a key of its own this way).
export const usernameKey = (username: string): string =>
  wellFormedKey(caseFolded(username.slice(0, nfkcBound).normalize("NFKC").trim().replace(/\s+/g, " ")).slice(0, 300))

// Lower case, and what lower case alone leaves apart: `İ` (U+0130) lowers to `i` and a combining
// dot above (U+0307), where OpenLDAP matches `alİce` as `alice` (a second counter gave each `i`
// of a name a fresh set of guesses); `ß`/`ẞ` go to `ss` as in Unicode's full case folding. Coarser
// than a directory's match is safe: two spellings then share a count.
const caseFolded = (name: string): string => name.toLowerCase().toUpperCase().toLowerCase().replace(/\u0307/g, "")

// What a database keeps of a key: a SQL store writes a NUL or a lone surrogate (a name cut inside
// a pair, too) as something else, so the record it wrote was never found again under the key and
// every attempt counted from zero. Made U+FFFD here, as the databases do, all stores count alike.
export const wellFormedKey = (key: string): string => wellFormed(key).replace(/\0/g, "\uFFFD")

// Credentials that throw when read (a getter, a Proxy) have no username or second factor here;
// the fold refuses them as credentials of no kind, and the attempt still counts by address.
export const usernameOf = (credentials: unknown): string | undefined => {
  const username = fieldOf(credentials, "username")
  return typeof username === "string" && username.length > 0 ? usernameKey(username) : undefined
}

// An address that is no string (a number, an object, from an untyped caller) or that throws when
// read (a getter, a Proxy) is no address, as text that does not parse is none: the attempt counts
// as one without an address (by username, if at all), and no allow or deny list matches it.
export const remoteAddressOf = (request: unknown): string | undefined => {
  const remote = fieldOf(request, "remoteAddress")
  return typeof remote === "string" ? remote : undefined
}

export const keysFor = (by: By, username: string | undefined, ip: string | undefined): Array<string> => {
  const keys: Array<string> = []
  if (by === "username-and-ip" && username !== undefined && ip !== undefined) {
    keys.push(`username-ip:${ip}|${username}`)
    return keys
  }
  if (by !== "ip" && username !== undefined) keys.push(`username:${username}`)
  if (by !== "username" && ip !== undefined) keys.push(`ip:${ip}`)
  return keys
}

// Second-factor attempts (`TotpBackend`'s `{ username, otpToken }`) count under their own keys,
// `otp-username:` and `otp-username-ip:`: under the password's keys, the attacker this lockout is
// there for (one who has the password) reset the count of their code guesses with a password login
// between batches, and guessed six digits without end (when a success still reset its keys). A
// code's success gives back its own count on its own keys only, as any success does.
export const isSecondFactor = (credentials: unknown): boolean => {
  if (typeof credentials !== "object" || credentials === null) return false
  try {
    return Object.hasOwn(credentials, "otpToken")
  } catch {
    return false
  }
}

export const ownKeysOf = (keys: Array<string>, secondFactor: boolean): Array<string> =>
  secondFactor ? keys.map((key) => (key.startsWith("ip:") ? key : `otp-${key}`)) : keys

// Whether `key` is one `query` asks for (`Lockout.queryMatches`).
export const queryMatches = (query: KeyQuery, key: string): boolean =>
  query.exact.includes(key) ||
  query.pairs.some((p) =>
    key.length >= p.prefix.length + p.suffix.length && key.startsWith(p.prefix) && key.endsWith(p.suffix) &&
    (p.suffix === "" || !key.slice(p.prefix.length, key.length - p.suffix.length).includes("|"))
  )
