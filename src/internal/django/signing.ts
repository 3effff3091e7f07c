// Django 3.2's `django.core.signing`, `salted_hmac`, session encoding and session auth hash, on
// node:crypto and node:zlib, so that a Node service reads and writes a Django site's session data.
// Checked against /usr/lib/python3/dist-packages/django (3.2) by test/DjangoSigning.test.ts.
import { createHash, createHmac, timingSafeEqual } from "node:crypto"
import { deflateSync, inflateSync } from "node:zlib"

/** The hashlib algorithms Django signs with. @internal */
export type Algorithm = "sha1" | "sha256"

/** Mirrors `django.utils.crypto.salted_hmac`: HMAC(hash(key_salt + secret), value), UTF-8. @internal */
export const saltedHmac = (keySalt: string, value: string | Uint8Array, secret: string, algorithm: Algorithm = "sha1"): Buffer =>
  saltedHmacWith(keySalt, secret, algorithm)(value)

/** `salted_hmac` under one key salt and secret, its key derived once: for many values. @internal */
export const saltedHmacWith = (keySalt: string, secret: string, algorithm: Algorithm = "sha1") => {
  const key = createHash(algorithm).update(keySalt + secret, "utf8").digest()
  return (value: string | Uint8Array): Buffer => createHmac(algorithm, key).update(value).digest()
}

/** Mirrors `django.core.signing.b64_encode`: URL-safe base64 without padding. @internal */
export const b64Encode = (data: Uint8Array | string): string => Buffer.from(data).toString("base64url")

/**
 * Mirrors `django.core.signing.b64_decode` (padding optional); throws on what is not URL-safe
 * base64, as Python's binascii does (it is stricter: Python skips stray characters). @internal
 */
export const b64Decode = (text: string): Buffer => {
  const bare = text.replace(/={1,2}$/, "")
  if (!/^[A-Za-z0-9_-]*$/.test(bare) || bare.length % 4 === 1) throw new TypeError("Invalid base64 data")
  return Buffer.from(bare, "base64url")
}

/**
 * A value of a session dict kept as the JSON text it was read from, and written back as that text:
 * another app's `10.0`, `1e16` or `9223372036854775809` stays what Python's json wrote, where
 * JavaScript's numbers would make them `10`, `10000000000000000` and another integer. @internal
 */
export class RawJson {
  constructor(
    /** The value's JSON text, as Python's json wrote it. */
    readonly text: string
  ) {}
  /** The value as JSON.parse reads it; `undefined` where it cannot (Python's `NaN`, `Infinity`). */
  get value(): unknown {
    try {
      return JSON.parse(this.text)
    } catch {
      return undefined
    }
  }
}

/**
 * A session dict as read by {@link readSession}: its keys in their order (integer-like ones too,
 * which a JavaScript object would move to the front), each value a {@link RawJson}. @internal
 */
export type SessionDict = ReadonlyMap<string, unknown>

// `json.dumps(obj, separators=(",", ":"))` of a value effect-auth made (ensure_ascii: all but
// printable ASCII as lowercase `\uXXXX`, astral characters as surrogate pairs).
const pyJson = (obj: unknown): string => {
  const text = JSON.stringify(obj) as string | undefined
  if (text === undefined) throw new TypeError("Object of this type is not JSON serializable")
  return text.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
}

/**
 * Mirrors `signing.JSONSerializer.dumps`: `json.dumps(obj, separators=(",", ":"))`, latin-1. A
 * {@link SessionDict} is written in its order, each {@link RawJson} value as its text. @internal
 */
export const jsonDumps = (obj: unknown): Buffer => {
  if (!(obj instanceof Map)) return Buffer.from(pyJson(obj), "latin1")
  const members: Array<string> = []
  for (const [key, value] of obj as SessionDict) {
    if (typeof key !== "string") throw new TypeError("keys must be str")
    members.push(`${pyJson(key)}:${value instanceof RawJson ? value.text : pyJson(value)}`)
  }
  return Buffer.from(`{${members.join(",")}}`, "latin1")
}

// `signing.JSONSerializer.loads`: json.loads(data.decode("latin-1")). Python's json reads and
// writes nothing nested deeper than its recursion limit (1000): deeper data came from no Django,
// Django reads it as an empty session (its RecursionError is caught), and JSON.stringify
// overflowed the stack writing it back when a login replaced or cycled the session.
const jsonLoads = (data: Buffer): unknown => {
  const text = data.toString("latin1")
  if (!nestedWithin(text, 1000)) throw new RangeError("JSON nested too deep")
  return JSON.parse(text)
}

// `json.loads` of a session dict, each member's value kept as its text: the keys in Python's
// order (a key given twice keeps its first place and its last value, as in a dict), the text
// checked against Python's grammar (JSON, and the `NaN`, `Infinity` and `-Infinity` Python
// writes for floats), so that what Python cannot read is refused here too. Values are not parsed.
const jsonMembers = (data: Buffer): Map<string, RawJson> | undefined => {
  const text = data.toString("latin1")
  if (!nestedWithin(text, 1000)) throw new RangeError("JSON nested too deep")
  let at = 0
  const fail = (): never => {
    throw new SyntaxError(`JSON: unexpected input at ${at}`)
  }
  const space = () => {
    while (at < text.length && " \t\n\r".includes(text[at]!)) at++
  }
  const expect = (c: string) => {
    if (text[at] !== c) fail()
    at++
  }
  const string = () => {
    expect("\"")
    for (;;) {
      const c = text.charCodeAt(at++)
      if (Number.isNaN(c) || c < 0x20) fail()
      if (c === 0x22) return
      if (c === 0x5c) {
        const e = text[at++]
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(at, at + 4))) fail()
          at += 4
        } else if (e === undefined || !"\"\\/bfnrt".includes(e)) fail()
      }
    }
  }
  const number = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?/y
  const value = (): void => {
    space()
    const c = text[at]
    if (c === "\"") return string()
    if (c === "{") {
      at++
      space()
      if (text[at] === "}") return void at++
      for (;;) {
        space()
        string()
        space()
        expect(":")
        value()
        space()
        if (text[at] === "}") return void at++
        expect(",")
      }
    }
    if (c === "[") {
      at++
      space()
      if (text[at] === "]") return void at++
      for (;;) {
        value()
        space()
        if (text[at] === "]") return void at++
        expect(",")
      }
    }
    for (const literal of ["true", "false", "null", "NaN", "Infinity", "-Infinity"]) {
      if (text.startsWith(literal, at)) return void (at += literal.length)
    }
    number.lastIndex = at
    if (!number.test(text)) fail()
    at = number.lastIndex
  }
  const members = new Map<string, RawJson>()
  space()
  if (text[at] !== "{") return undefined
  at++
  space()
  if (text[at] === "}") at++
  else {
    for (;;) {
      space()
      const keyStart = at
      string()
      const key = JSON.parse(text.slice(keyStart, at)) as string
      space()
      expect(":")
      space()
      const valueStart = at
      value()
      members.set(key, new RawJson(text.slice(valueStart, at)))
      space()
      if (text[at] === "}") {
        at++
        break
      }
      expect(",")
    }
  }
  space()
  if (at !== text.length) fail()
  return members
}

// Whether no array or object of the JSON text lies more than `max` deep (strings skipped).
const nestedWithin = (text: string, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // a backslash escapes the next character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return false
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return true
}

const base62Digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/** Mirrors `django.utils.baseconv.base62.encode` (TimestampSigner's timestamps). @internal */
export const base62Encode = (n: number): string => {
  if (n < 0) return `-${base62Encode(-n)}`
  let out = ""
  do {
    out = base62Digits[n % 62]! + out
    n = Math.floor(n / 62)
  } while (n > 0)
  return out
}

/** Mirrors `django.utils.baseconv.base62.decode`; `undefined` where Python raises. @internal */
export const base62Decode = (text: string): number | undefined => {
  const negative = text.startsWith("-")
  const digits = negative ? text.slice(1) : text
  if (digits === "") return undefined
  let n = 0
  for (const c of digits) {
    const d = base62Digits.indexOf(c)
    if (d < 0) return undefined
    n = n * 62 + d
  }
  return Number.isSafeInteger(n) ? (negative ? -n : n) : undefined
}

// `Signer.signature` (`base64_hmac`): b64_encode(salted_hmac(salt + "signer", value, key)).
const signature = (salt: string, value: string, secret: string, algorithm: Algorithm): string =>
  b64Encode(saltedHmac(`${salt}signer`, value, secret, algorithm))

// `constant_time_compare`: a length mismatch is told at once, as by Python's compare_digest.
const constantTimeEquals = (a: string, b: string): boolean => {
  const left = Buffer.from(a, "utf8")
  const right = Buffer.from(b, "utf8")
  return left.length === right.length && timingSafeEqual(left, right)
}

/** @internal */
export interface DumpsOptions {
  readonly secret: string
  readonly salt: string
  readonly compress?: boolean
  /** `DEFAULT_HASHING_ALGORITHM` (3.1–3.2): "sha256", the default; "sha1" for a site that kept it. */
  readonly algorithm?: Algorithm
  /** The time to stamp, in ms (default `Date.now()`). */
  readonly now?: number
}

/**
 * Mirrors `django.core.signing.dumps(obj, key=secret, salt=salt, compress=compress)` with the JSON
 * serializer: TimestampSigner's `payload:timestamp:signature`, payload "."-prefixed if compressed.
 * @internal
 */
export const dumps = (obj: unknown, options: DumpsOptions): string => {
  const data = jsonDumps(obj)
  let payload = b64Encode(data)
  if (options.compress === true) {
    const compressed = deflateSync(data) // zlib.compress: zlib format, level 6
    if (compressed.length < data.length - 1) payload = `.${b64Encode(compressed)}`
  }
  const value = `${payload}:${base62Encode(Math.floor((options.now ?? Date.now()) / 1000))}`
  return `${value}:${signature(options.salt, value, options.secret, options.algorithm ?? "sha256")}`
}

/** @internal */
export interface LoadsOptions {
  /** `SECRET_KEY`, then `SECRET_KEY_FALLBACKS` (Django 4.1+; 3.2 has only the one key). */
  readonly secrets: ReadonlyArray<string>
  readonly salt: string
  readonly maxAgeSeconds?: number
  /** The time to check `maxAgeSeconds` against, in ms (default `Date.now()`). */
  readonly now?: number
  /**
   * Refuse compressed data that inflates past this many bytes (zip bombs). Default: 1 MiB, or 64
   * times the compressed bytes where that is more, at most 64 MiB.
   */
  readonly maxDecompressedBytes?: number
}

/**
 * Mirrors `django.core.signing.loads(signed, key, salt, max_age=...)` (3.2: an HMAC-SHA256 or the
 * legacy HMAC-SHA1 signature), trying each secret in turn. `undefined` where Django raises
 * (BadSignature, SignatureExpired, malformed data); never throws. @internal
 */
export const loads = (signed: string, options: LoadsOptions): unknown | undefined => {
  try {
    const payload = signedPayload(signed, options)
    return payload === undefined ? undefined : jsonLoads(payload)
  } catch {
    return undefined
  }
}

// The serialized bytes `loads` would deserialize, once the signature and age check out; throws on
// malformed data.
const signedPayload = (signed: string, options: LoadsOptions): Buffer | undefined => {
  const cut = signed.lastIndexOf(":")
  if (cut < 0) return undefined
  const value = signed.slice(0, cut)
  const sig = signed.slice(cut + 1)
  const verified = options.secrets.some((secret) =>
    constantTimeEquals(sig, signature(options.salt, value, secret, "sha256")) ||
    constantTimeEquals(sig, signature(options.salt, value, secret, "sha1"))
  )
  if (!verified) return undefined
  const stampCut = value.lastIndexOf(":")
  if (stampCut < 0) return undefined
  const timestamp = base62Decode(value.slice(stampCut + 1))
  if (timestamp === undefined) return undefined
  if (options.maxAgeSeconds !== undefined && (options.now ?? Date.now()) / 1000 - timestamp > options.maxAgeSeconds) {
    return undefined
  }
  const payload = value.slice(0, stampCut)
  if (!payload.startsWith(".")) return b64Decode(payload)
  const compressed = b64Decode(payload.slice(1))
  return inflateSync(compressed, { maxOutputLength: options.maxDecompressedBytes ?? inflatedLimit(compressed.length) })
}

// How far signed data may inflate. Django sets no bound; the signature is checked first, so only a
// holder of the secret could make a bomb, and this bounds the memory one row costs all the same.
// Proportional to what is stored: a Django session of a large cart (1.3 MB of JSON, a few hundred
// KB compressed) is read, and moved with its data at a login, where a flat 1 MiB made it no
// session and the login left its data behind; a deflate bomb inflates a thousandfold.
const inflatedLimit = (compressedBytes: number): number =>
  Math.min(64 * 1024 * 1024, Math.max(1024 * 1024, 64 * compressedBytes))

/**
 * Mirrors `SessionBase.key_salt`: "django.contrib.sessions." + the store's class name, which is
 * "SessionStore" for the db, cache, cached_db and file backends. @internal
 */
export const sessionKeySalt = (className = "SessionStore"): string => `django.contrib.sessions.${className}`

// Python's `base64.b64decode` (not validating), which Django 3.2 reads a pre-3.1 session with:
// characters outside the alphabet are skipped, a run of `=` completing a quad ends the data, and
// data that is not whole quads raises ("Incorrect padding"), as does text that is not ASCII. (The
// platform's decoder takes unpadded and trailing data Python refuses, and refuses `-` Python skips.)
const pyB64decode = (text: string): Buffer | undefined => {
  if (!/^[\x00-\x7f]*$/.test(text)) return undefined
  let data = ""
  let pads = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c === "=") {
      const quad = data.length % 4
      if (quad >= 2 && quad + ++pads >= 4) return Buffer.from(data, "base64")
    } else if (/[A-Za-z0-9+/]/.test(c)) {
      data += c
      pads = 0
    }
  }
  return data.length % 4 === 0 ? Buffer.from(data, "base64") : undefined
}

// `SessionBase._hash` (pre-3.1 format): salted_hmac("django.contrib.sessions" + class name, ...).
const legacySessionHash = (serialized: Buffer, secret: string, className: string): string =>
  saltedHmac(`django.contrib.sessions${className}`, serialized, secret, "sha1").toString("hex")

/** @internal */
export interface SessionOptions {
  /** The session store's class name (default "SessionStore"). */
  readonly className?: string
}

/**
 * Mirrors `SessionBase.encode`: signing.dumps(data, salt=key_salt, compress=True); with
 * `legacy`, `_legacy_encode` (what 3.1–3.2 write under DEFAULT_HASHING_ALGORITHM = "sha1", and
 * all a Django before 3.1 reads). A {@link SessionDict} is written in its order, the
 * {@link RawJson} values {@link readSession} read as their text. @internal
 */
export const encodeSession = (
  data: Readonly<Record<string, unknown>> | SessionDict,
  secret: string,
  options: SessionOptions & { readonly legacy?: boolean; readonly now?: number } = {}
): string => {
  const className = options.className ?? "SessionStore"
  if (options.legacy === true) {
    const serialized = jsonDumps(data)
    const hash = legacySessionHash(serialized, secret, className)
    return Buffer.concat([Buffer.from(`${hash}:`, "latin1"), serialized]).toString("base64")
  }
  return dumps(data, {
    secret,
    salt: sessionKeySalt(className),
    compress: true,
    ...(options.now === undefined ? {} : { now: options.now })
  })
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

// `SessionBase.decode` up to the serializer: the signed format, else the pre-3.1 `_legacy_decode`,
// each secret in turn, and the serializer's `loads` of the verified bytes. `undefined` where
// Django gives an empty session, and for data that is not a JSON object.
const decodeWith = <A>(
  text: string,
  secrets: ReadonlyArray<string>,
  options: SessionOptions,
  read: (serialized: Buffer) => A | undefined
): A | undefined => {
  const className = options.className ?? "SessionStore"
  try {
    const signed = signedPayload(text, { secrets, salt: sessionKeySalt(className) })
    if (signed !== undefined) return read(signed)
  } catch {
    // Malformed signed data: Django tries the legacy format.
  }
  try {
    const raw = pyB64decode(text)
    if (raw === undefined) return undefined
    const cut = raw.indexOf(":")
    if (cut < 0) return undefined
    const serialized = raw.subarray(cut + 1)
    const hash = raw.subarray(0, cut).toString("latin1")
    if (!secrets.some((secret) => constantTimeEquals(hash, legacySessionHash(serialized, secret, className)))) {
      return undefined
    }
    return read(serialized)
  } catch {
    return undefined
  }
}

/**
 * Mirrors `SessionBase.decode`: the signed format, else the pre-3.1 `_legacy_decode`, each secret
 * in turn (`SECRET_KEY`, then fallbacks). `undefined` where Django gives an empty session, and for
 * data that is not a JSON object. @internal
 */
export const decodeSession = (
  text: string,
  secrets: ReadonlyArray<string>,
  options: SessionOptions = {}
): Record<string, unknown> | undefined =>
  decodeWith(text, secrets, options, (serialized) => {
    const value = jsonLoads(serialized)
    return isRecord(value) ? value : undefined
  })

/**
 * {@link decodeSession} for writing the session back: the dict in its order, each value the JSON
 * text Django wrote (see {@link RawJson}), so that {@link encodeSession} of it, with effect-auth's
 * own keys set, gives back every other key's value as it was, and Django reads the same types,
 * numbers and key order. Data Python's json reads is read (its `NaN` and `Infinity` too). @internal
 */
export const readSession = (
  text: string,
  secrets: ReadonlyArray<string>,
  options: SessionOptions = {}
): Map<string, RawJson> | undefined => decodeWith(text, secrets, options, jsonMembers)

const sessionAuthSalt = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"

/**
 * Mirrors `AbstractBaseUser.get_session_auth_hash` (3.2 with the default DEFAULT_HASHING_ALGORITHM,
 * and 4.0+: "sha256"), or with "sha1" `_legacy_get_session_auth_hash`: hex. @internal
 */
export const sessionAuthHash = (passwordHash: string, secret: string, algorithm: Algorithm = "sha256"): string =>
  sessionAuthHasher(secret, algorithm)(passwordHash)

/** {@link sessionAuthHash} under one secret, its key derived once. @internal */
export const sessionAuthHasher = (secret: string, algorithm: Algorithm = "sha256") => {
  const mac = saltedHmacWith(sessionAuthSalt, secret, algorithm)
  return (passwordHash: string): string => mac(passwordHash).toString("hex")
}

/**
 * Mirrors the check in `django.contrib.auth.get_user` (3.2: the SHA-256 hash or the legacy SHA-1
 * one; 4.1+: under SECRET_KEY or a fallback), in constant time. @internal
 */
export const verifySessionAuthHash = (sessionHash: string, passwordHash: string, secrets: ReadonlyArray<string>): boolean =>
  sessionHash !== "" && secrets.some((secret) =>
    constantTimeEquals(sessionHash, sessionAuthHash(passwordHash, secret, "sha256")) ||
    constantTimeEquals(sessionHash, sessionAuthHash(passwordHash, secret, "sha1"))
  )
