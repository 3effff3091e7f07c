// Django's `django.core.signing` and session encoding (3.2 and later), so that a Django site and an
// effect-auth service read and write each other's session data.
import { createHash, createHmac, timingSafeEqual } from "node:crypto"
import { deflateSync, inflateSync } from "node:zlib"

/** Django's `salted_hmac(key_salt, value, secret, algorithm)`. @internal */
export const saltedHmac = (keySalt: string, value: string, secret: string, algorithm: "sha1" | "sha256"): Buffer =>
  createHmac(algorithm, createHash(algorithm).update(keySalt + secret).digest()).update(value).digest()

/** Python's `json.dumps(obj, separators=(",", ":"))`: non-ASCII escaped (`ensure_ascii`). @internal */
export const pythonJson = (value: unknown): string =>
  JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

const base62Chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
const base62 = (n: number): string => {
  let out = ""
  do {
    out = base62Chars[n % 62] + out
    n = Math.floor(n / 62)
  } while (n > 0)
  return out
}

// `Signer.signature`: base64url (no padding) of salted_hmac(salt + "signer", value, key).
const signature = (salt: string, value: string, secret: string, algorithm: "sha1" | "sha256") =>
  saltedHmac(`${salt}signer`, value, secret, algorithm).toString("base64url")

const same = (a: string, b: string): boolean => {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

/**
 * Django's `signing.dumps(obj, key=secret, salt=salt, compress=compress)` with the JSON
 * serializer: a TimestampSigner's `value:timestamp:signature` (HMAC-SHA256). @internal
 */
export const dumps = (
  value: unknown,
  options: { readonly secret: string; readonly salt: string; readonly compress?: boolean; readonly now?: number }
): string => {
  const data = Buffer.from(pythonJson(value), "latin1")
  let payload = data.toString("base64url")
  if (options.compress === true) {
    const compressed = deflateSync(data)
    // Only when it saves more than a byte, as Django decides.
    if (compressed.length < data.length - 1) payload = `.${compressed.toString("base64url")}`
  }
  const stamped = `${payload}:${base62(Math.floor((options.now ?? Date.now()) / 1000))}`
  return `${stamped}:${signature(options.salt, stamped, options.secret, "sha256")}`
}

// A decompressed session is small; a larger one is refused rather than inflated (zip bombs).
const maxInflated = 1 << 20

/**
 * Django's `signing.loads(signed, key, salt)` tried with each secret (`SECRET_KEY`, then
 * `SECRET_KEY_FALLBACKS`), SHA-256 or legacy SHA-1 signatures (3.2 accepts both). No timestamp
 * check, as sessions make none. Anything that does not verify or parse is `undefined`. @internal
 */
export const loads = (
  signed: string,
  options: { readonly secrets: ReadonlyArray<string>; readonly salt: string }
): unknown => {
  const cut = signed.lastIndexOf(":")
  if (cut < 0) return undefined
  const stamped = signed.slice(0, cut)
  const sig = signed.slice(cut + 1)
  const valid = options.secrets.some((secret) =>
    same(sig, signature(options.salt, stamped, secret, "sha256")) ||
    same(sig, signature(options.salt, stamped, secret, "sha1"))
  )
  if (!valid) return undefined
  const stampCut = stamped.lastIndexOf(":")
  if (stampCut < 0) return undefined
  let payload = stamped.slice(0, stampCut)
  const compressed = payload.startsWith(".")
  if (compressed) payload = payload.slice(1)
  if (!/^[A-Za-z0-9_-]*$/.test(payload)) return undefined
  try {
    const raw = Buffer.from(payload, "base64url")
    const data = compressed ? inflateSync(raw, { maxOutputLength: maxInflated }) : raw
    return JSON.parse(data.toString("latin1"))
  } catch {
    return undefined
  }
}

/** `django.contrib.sessions.backends.db.SessionStore.key_salt`. @internal */
export const sessionSalt = "django.contrib.sessions.SessionStore"

/** Django's `SessionBase.encode`: signed, compressed JSON under `SECRET_KEY`. @internal */
export const encodeSession = (data: Record<string, unknown>, secret: string, now?: number): string =>
  dumps(data, { secret, salt: sessionSalt, compress: true, ...(now === undefined ? {} : { now }) })

/** Django's `SessionBase.decode`: the data, or `undefined` (Django: an empty session). @internal */
export const decodeSession = (text: string, secrets: ReadonlyArray<string>): unknown =>
  loads(text, { secrets, salt: sessionSalt })
