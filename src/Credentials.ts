/**
 * Schemas of the common kinds of credentials.
 *
 * A backend declares which credentials it accepts with a Schema; the fold decodes the raw
 * credentials with it (excess keys rejected, as Django's signature check rejects unknown keyword
 * arguments) and a decode failure means `NoMatch("unsupported-credentials")`. Secrets decode to
 * `Redacted`, so they never print.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Credentials } from "effect-auth"
 *
 * const creds = Schema.decodeUnknownSync(Credentials.UsernamePassword)({
 *   username: "alice",
 *   password: "s3cret"
 * })
 * String(creds.password) // "<redacted>"
 * ```
 *
 * @since 0.1.0
 */
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { codePointsWithin } from "./internal/codePoints.js"
import * as CredentialsDecoder from "./internal/credentialsDecoder.js"
import { textOf } from "./internal/redactedString.js"

/**
 * A secret string of 1 to `maxLength` characters that decodes to `Redacted`, from either a plain
 * string or a value that is already `Redacted`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Credentials } from "effect-auth"
 *
 * const Pin = Credentials.secret(8)
 * Schema.decodeUnknownSync(Pin)("1234")
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const secret = (maxLength: number): Schema.Schema<Redacted.Redacted<string>, string | Redacted.Redacted<string>> => {
  // Written by hand rather than as `Union(RedactedFromSelf(Text), Redacted(Text))`: that form
  // wraps a plain string twice and re-wraps a Redacted on the way (each wrap registers the value
  // in Redacted's WeakMap), which made decoding the secret most of the cost of a login. Here a
  // plain string is checked and wrapped once, and a Redacted input is checked and kept as it is.
  const expected = `a secret of 1 to ${maxLength} characters`
  const isText = CredentialsDecoder.isText(1, maxLength)
  const Secret = Schema.declare(
    (input: unknown): input is Redacted.Redacted<string> => isText(textOf(input)),
    {
      identifier: `Secret(${maxLength})`,
      description: expected,
      // The failing value is never shown: it may be the secret.
      message: () => `Expected ${expected}`,
      pretty: () => () => "<redacted>",
      arbitrary: () => (fc) =>
        fc.string({ minLength: 1, maxLength: Math.min(maxLength, 64) }).map((text) => Redacted.make(text)),
      equivalence: () => Redacted.getEquivalence((a: string, b: string) => a === b)
    }
  )
  // (the string member says what it expects too: its default message would show a non-string
  // input, which may be the secret: `Expected string, actual 13572468`)
  const Input = Schema.Union(Schema.String.annotations({ message: () => `Expected ${expected}` }), Secret)
  return Schema.transformOrFail(Input, Schema.typeSchema(Secret), {
    strict: true,
    decode: (input, _, ast) =>
      typeof input !== "string"
        ? ParseResult.succeed(input)
        : isText(input)
        ? ParseResult.succeed(Redacted.make(input))
        : ParseResult.fail(new ParseResult.Type(ast, "<redacted>", `Expected ${expected}`)),
    encode: ParseResult.succeed
  })
}

/**
 * A username: 1 to 150 characters (code points, as Django and the user store count them), Django's
 * limit: a name of 150 astral characters (300 UTF-16 units) is a valid username and logs in.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Credentials } from "effect-auth"
 *
 * Schema.decodeUnknownSync(Credentials.Username)("alice")
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Username = Schema.String.pipe(
  Schema.filter((s) => codePointsWithin(s, 1, 150) || "a username of 1 to 150 characters", {
    identifier: "Username",
    jsonSchema: { minLength: 1, maxLength: 300 }
  })
)

/**
 * A password: 1 to 4096 characters, decoded to `Redacted`. The upper bound keeps a hostile client
 * from making the server hash megabytes.
 *
 * @example
 * ```ts
 * import { Redacted, Schema } from "effect"
 * import { Credentials } from "effect-auth"
 *
 * const password = Schema.decodeUnknownSync(Credentials.Password)("correct horse")
 * Redacted.value(password) // "correct horse"
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Password = secret(CredentialsDecoder.passwordMaxLength)

/**
 * Username and password, as Django's `ModelBackend` takes them.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Credentials } from "effect-auth"
 *
 * Schema.decodeUnknownSync(Credentials.UsernamePassword)({ username: "alice", password: "pw" })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const UsernamePassword = CredentialsDecoder.register(
  Schema.Struct({
    username: Username,
    password: Password
  }).annotations({ message: () => "Expected username/password credentials" }),
  (() => {
    const keys = ["username", "password"]
    const isUsername = CredentialsDecoder.isCodePointText(1, 150)
    const username = (raw: unknown) => isUsername(raw) ? raw : CredentialsDecoder.invalid
    const password = CredentialsDecoder.secret(CredentialsDecoder.passwordMaxLength)
    return (raw: unknown) => {
      if (!CredentialsDecoder.hasExactKeys(raw, keys)) return CredentialsDecoder.invalid
      const u = username(raw.username)
      if (u === CredentialsDecoder.invalid) return CredentialsDecoder.invalid
      const p = password(raw.password)
      return p === CredentialsDecoder.invalid ? p : { username: u, password: p }
    }
  })()
)

/**
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type { Credentials } from "effect-auth"
 *
 * const credentials: Credentials.UsernamePassword = { username: "alice", password: Redacted.make("wonderland") }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type UsernamePassword = typeof UsernamePassword.Type

/**
 * An opaque token (API key, bearer JWT), 1 to 8192 characters, decoded to `Redacted`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Credentials } from "effect-auth"
 *
 * Schema.decodeUnknownSync(Credentials.Token)({ token: "ea_1234" })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Token = CredentialsDecoder.register(
  Schema.Struct({
    token: secret(8192)
  }).annotations({ message: () => "Expected token credentials" }),
  (() => {
    const keys = ["token"]
    const token = CredentialsDecoder.secret(8192)
    return (raw: unknown) => {
      if (!CredentialsDecoder.hasExactKeys(raw, keys)) return CredentialsDecoder.invalid
      const t = token(raw.token)
      return t === CredentialsDecoder.invalid ? t : { token: t }
    }
  })()
)

/**
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type { Credentials } from "effect-auth"
 *
 * const credentials: Credentials.Token = { token: Redacted.make("ea_Zk3Qm9aB_secret") }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Token = typeof Token.Type

// As long as a token: the header's value before `cleanUsername`, not a stored name.
const remoteUserMaxLength = 8192

/**
 * The user name a trusted reverse proxy put in a header (Django's `REMOTE_USER`), 1 to 8192
 * characters as the proxy sent it: the backend's `cleanUsername` (Django's `clean_username`) runs
 * on it before any rule of the user store's (a name past 150 or 255 characters there is no user),
 * so `alice@` and a long realm is still `alice` where the backend strips the realm.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Credentials } from "effect-auth"
 *
 * Schema.decodeUnknownSync(Credentials.RemoteUser)({ remoteUser: "alice@example.com" })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const RemoteUser = CredentialsDecoder.register(
  Schema.Struct({
    remoteUser: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(remoteUserMaxLength))
  }),
  (() => {
    const keys = ["remoteUser"]
    const remoteUser = CredentialsDecoder.text(1, remoteUserMaxLength)
    return (raw: unknown) => {
      if (!CredentialsDecoder.hasExactKeys(raw, keys)) return CredentialsDecoder.invalid
      const r = remoteUser(raw.remoteUser)
      return r === CredentialsDecoder.invalid ? r : { remoteUser: r }
    }
  })()
)

/**
 * @example
 * ```ts
 * import type { Credentials } from "effect-auth"
 *
 * const credentials: Credentials.RemoteUser = { remoteUser: "alice@example.com" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type RemoteUser = typeof RemoteUser.Type

/**
 * Where an app names the credentials of its own backends, once, so that `AuthService.authenticate`
 * and `HttpAuth.login` accept them as a type (as `User.Register` does for the user type). The
 * built-in kinds are always accepted; what is registered is added to them.
 *
 * @example
 * ```ts
 * // src/auth-credentials.ts of your app
 * import { Schema } from "effect"
 *
 * export const Pin = Schema.Struct({ employee: Schema.String, pin: Schema.String })
 *
 * declare module "effect-auth/Credentials" {
 *   interface Register {
 *     readonly credentials: typeof Pin.Encoded
 *   }
 * }
 * ```
 *
 * @since 0.2.0
 * @category registration
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface Register {}

/**
 * What `AuthService.authenticate` accepts: the encoded form of the built-in credentials
 * (`UsernamePassword`, `Token`, `RemoteUser`) and of whatever the app registered with
 * {@link Register}. A shape that is none of these is a compile error; input whose shape is not
 * known until run time (an HTTP body) goes through `AuthService.authenticateUnknown`, which the
 * backends' Schemas decode as usual.
 *
 * @example
 * ```ts
 * import type { Credentials } from "effect-auth"
 *
 * const login: Credentials.Input = { username: "alice", password: "wonderland" }
 * const bearer: Credentials.Input = { token: "ea_demo" }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Input =
  | typeof UsernamePassword.Encoded
  | typeof Token.Encoded
  | typeof RemoteUser.Encoded
  | (Register extends { readonly credentials: infer C } ? C : never)

/**
 * What Django puts in place of a sensitive credential value.
 *
 * @example
 * ```ts
 * import { Credentials } from "effect-auth"
 *
 * Credentials.cleanse({ password: "pw" })["password"] === Credentials.CLEANSED_SUBSTITUTE // true
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const CLEANSED_SUBSTITUTE = "********************"

// Django's `SENSITIVE_CREDENTIALS` pattern, matched against the key anywhere and in any case.
const sensitiveKey = /api|token|key|secret|password|signature/i

// A nested object's keys say nothing about its secrets: an OIDC callback given with plain strings
// (as OidcBackend's docs show) put its code and PKCE verifier in every LoginFailed event.
const cleanseValue = (value: unknown): unknown =>
  typeof value === "object" && value !== null && !Redacted.isRedacted(value) ? CLEANSED_SUBSTITUTE : value

// A key that is an index (an array's, or a record's "0") has no name to judge: `["alice", "pw"]`
// would otherwise show the password.
const isIndex = /^(?:0|[1-9][0-9]*)$/

const cleanseEntry = (credentials: object, key: string): unknown => {
  if (sensitiveKey.test(key) || isIndex.test(key)) return CLEANSED_SUBSTITUTE
  try {
    return cleanseValue((credentials as Record<string, unknown>)[key])
  } catch {
    // a getter that throws, or a value whose Proxy traps throw
    return CLEANSED_SUBSTITUTE
  }
}

/**
 * Cleanses raw credentials as Django's `_clean_credentials` does before sending
 * `user_login_failed`: the value of every key whose name contains `api`, `token`, `key`,
 * `secret`, `password` or `signature` (in any case) is replaced by 20 stars. Other values are
 * kept, except `Redacted` ones, which stay redacted, and nested objects and arrays, which are
 * replaced by 20 stars too: Django's credentials are keyword arguments, but a nested value
 * cannot be judged by its key (`OidcBackend`'s `{ oidcCallback: { url, codeVerifier, … } }`
 * carries the authorization code in `url` and PKCE's secret in `codeVerifier`). For the same
 * reason the value of an index key (`["alice", "pw"]`, or `{ "0": … }`) is replaced.
 *
 * Total: credentials that cannot be read (a Proxy whose traps throw, a revoked Proxy) cleanse to
 * `{}`, and a value whose getter throws to 20 stars.
 *
 * @example
 * ```ts
 * import { Credentials } from "effect-auth"
 *
 * Credentials.cleanse({ username: "alice", password: "pw", apiKey: "k" })
 * // { username: "alice", password: "********************", apiKey: "********************" }
 * Credentials.cleanse({ oidcCallback: { url: "https://app/cb?code=c", state: "s", nonce: "n", codeVerifier: "v" } })
 * // { oidcCallback: "********************" }
 * Credentials.cleanse(["alice", "pw"])
 * // { "0": "********************", "1": "********************" }
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const cleanse = (credentials: unknown): Readonly<Record<string, unknown>> => {
  if (typeof credentials !== "object" || credentials === null) return {}
  try {
    if (Redacted.isRedacted(credentials)) return {}
    // fromEntries defines own properties, so a key such as "__proto__" stays a plain key
    return Object.fromEntries(Object.keys(credentials).map((key) => [key, cleanseEntry(credentials, key)]))
  } catch {
    return {}
  }
}
