// The API token format: `<tokenPrefix>_<id>_<secret>`, e.g. `ea_Zk3Qm9aB_<43 characters>`.
// The id is public (it finds the row and names the token in lists); the secret is 32 random
// bytes in base64url. Only the SHA-256 digest of the whole token is stored: with 256 bits of
// entropy in the secret, a fast hash is enough (nothing to brute-force), unlike passwords.
import { createHash, randomBytes, randomInt, timingSafeEqual } from "node:crypto"

/** @internal */
export const ID_LENGTH = 8
/** @internal */
export const SECRET_BYTES = 32
/** base64url of 32 bytes, without padding. @internal */
export const SECRET_LENGTH = 43

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// `RegExp.test` turns what it is given into a string first: a number such as 12345678 (from an
// untyped caller, a JSON body) would pass for an id, `["ea"]` for a prefix. Only strings are.

/** @internal */
export const isTokenId = (id: unknown): id is string => typeof id === "string" && /^[A-Za-z0-9]{8}$/.test(id)

/** @internal */
export const isTokenPrefix = (prefix: unknown): prefix is string =>
  typeof prefix === "string" && /^[a-z][a-z0-9]{0,15}$/.test(prefix)

/** @internal */
export const generateId = (): string => {
  let id = ""
  for (let i = 0; i < ID_LENGTH; i++) id += idAlphabet[randomInt(idAlphabet.length)]
  return id
}

/** @internal */
export const generate = (tokenPrefix: string, id: string): string =>
  `${tokenPrefix}_${id}_${randomBytes(SECRET_BYTES).toString("base64url")}`

/** @internal */
export interface Parsed {
  readonly id: string
}

/**
 * The id of a well-formed token, or undefined: the length is checked first, so the patterns
 * only ever run over 55-odd characters.
 * @internal
 */
export const parse = (tokenPrefix: string, token: string): Parsed | undefined => {
  const head = tokenPrefix.length + 1
  if (token.length !== head + ID_LENGTH + 1 + SECRET_LENGTH) return undefined
  if (!token.startsWith(`${tokenPrefix}_`) || token[head + ID_LENGTH] !== "_") return undefined
  const id = token.slice(head, head + ID_LENGTH)
  if (!isTokenId(id)) return undefined
  if (!/^[A-Za-z0-9_-]{43}$/.test(token.slice(head + ID_LENGTH + 1))) return undefined
  return { id }
}

/** SHA-256 of the whole token, hex. @internal */
export const digest = (token: string): string => createHash("sha256").update(token, "utf8").digest("hex")

/**
 * Compares two hex digests in constant time. A stored value that is not a 64-digit hex digest
 * (a damaged row) matches nothing.
 * @internal
 */
export const digestsEqual = (stored: string, presented: string): boolean => {
  if (!/^[0-9a-f]{64}$/.test(stored)) return false
  return timingSafeEqual(Buffer.from(stored, "hex"), Buffer.from(presented, "hex"))
}
