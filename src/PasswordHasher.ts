/**
 * Password hashes that are byte for byte Django's.
 *
 * Every format Django stores is read (`pbkdf2_sha256`, `pbkdf2_sha1`, `argon2`, `bcrypt_sha256`,
 * `bcrypt`, `scrypt`, and the legacy `md5`, `sha1`, `unsalted_md5`, `unsalted_sha1`), new hashes
 * are written with the preferred (first) hasher, and `verify` behaves as Django's
 * `check_password`: a missing, unusable or unknown hash still costs one run of the preferred
 * hasher, `mustUpdate` asks for a re-hash when the algorithm or its parameters are outdated, and
 * a wrong password on an outdated hash of the preferred algorithm pays the missing work.
 *
 * Hashing runs on Node's thread pool, never on the event loop, and at most `concurrency` hashes
 * run at once, so a flood of logins queues instead of starving every other request. The queue is
 * bounded too: past `concurrency + maxWaiting` hashes in flight, `hash` and `verify` fail at once
 * with {@link HasherBusy} (load shedding), which `ModelBackend` reports as a `TransportError`
 * and the HTTP layer as 503 with `Retry-After`. The places are shared fairly between clients
 * ({@link withClient}; `ModelBackend` keys its checks by the request's address): one client that
 * keeps every place taken loses its newest waiting calls to other clients' calls, which then run
 * at the next hasher freed.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordHasher } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const hasher = yield* PasswordHasher.PasswordHasher
 *   const encoded = yield* hasher.hash(Redacted.make("correct horse"))
 *   const { valid, mustUpdate } = yield* hasher.verify(Redacted.make("correct horse"), encoded)
 *   return { encoded, valid, mustUpdate }
 * })
 *
 * Effect.runPromise(Effect.provide(program, PasswordHasher.layer()))
 * ```
 *
 * @since 0.1.0
 */
import * as os from "node:os"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as FiberRef from "effect/FiberRef"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { HasherFailure } from "./internal/hashers/common.js"
import { randomString } from "./internal/hashers/common.js"
import { currentClient as clientRef, makeFairLimiter } from "./internal/hashers/admission.js"
import { djangoDefaults } from "./internal/hashers/djangoDefaults.js"
import { MAX_ITERATIONS } from "./internal/hashers/pbkdf2.js"
import * as Registry from "./internal/hashers/registry.js"
import { treeMessage } from "./internal/parseErrors.js"
import { textOf } from "./internal/redactedString.js"
import { isWellFormed } from "./internal/wellFormed.js"
import { withValueFreeSpan } from "./internal/tracing.js"

/**
 * Every algorithm name Django stores as the prefix of a hash.
 *
 * @example
 * ```ts
 * import { PasswordHasher } from "effect-auth"
 *
 * PasswordHasher.algorithms.includes("argon2") // true
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const algorithms: ReadonlyArray<Algorithm> = Registry.algorithms

/**
 * An algorithm name: `pbkdf2_sha256`, `pbkdf2_sha1`, `argon2`, `bcrypt_sha256`, `bcrypt`,
 * `scrypt`, or the verify-only `md5`, `sha1`, `unsalted_md5`, `unsalted_sha1`.
 *
 * @example
 * ```ts
 * import type { PasswordHasher } from "effect-auth"
 *
 * const verifyOnly: ReadonlyArray<PasswordHasher.Algorithm> = ["md5", "sha1", "unsalted_md5", "unsalted_sha1"]
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Algorithm = Registry.Algorithm

/**
 * An algorithm that can write new hashes, so can be the preferred one. The legacy digests
 * (`md5`, `sha1`, `unsalted_*`) only verify, to let old users log in once and be upgraded.
 *
 * @example
 * ```ts
 * import { PasswordHasher } from "effect-auth"
 *
 * const preferred: PasswordHasher.PreferredAlgorithm = "argon2"
 * const HasherLive = PasswordHasher.layer({ hashers: [preferred, "pbkdf2_sha256"] })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type PreferredAlgorithm = Registry.WritableAlgorithm

/**
 * The hash could not be computed or read: a malformed hash of a known algorithm, parameters the
 * algorithm refuses, a password `bcrypt` will not take (over 72 bytes), or a password that is not
 * a well-formed string. It never holds the password.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordHasher } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const hasher = yield* PasswordHasher.PasswordHasher
 *   return yield* hasher.verify(Redacted.make("pw"), "pbkdf2_sha256$many$salt$hash")
 * }).pipe(
 *   Effect.catchTag("HashError", (e) => Effect.logWarning(`unreadable hash (${e.algorithm}): ${e.reason}`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class HashError extends Schema.TaggedError<HashError>("effect-auth/HashError")("HashError", {
  algorithm: Schema.String,
  reason: Schema.String,
  /** What a hashing driver threw, e.g. the import error of a missing `@node-rs/argon2`. */
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `${this.algorithm}: ${this.reason}`
  }
}

/**
 * Too many hashes are in flight (`concurrency` running and `maxWaiting` queued): the call was
 * refused at once, without hashing, so that a flood of logins is answered quickly (HTTP 503 with
 * `Retry-After`) instead of queueing for minutes. A call that was waiting fails with it too when a
 * call of a client holding far fewer places takes its place ({@link withClient}). It says nothing
 * about the password.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordHasher } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const hasher = yield* PasswordHasher.PasswordHasher
 *   return yield* hasher.hash(Redacted.make("correct horse"))
 * }).pipe(
 *   Effect.catchTag("HasherBusy", (e) => Effect.fail(`busy: ${e.inFlight} hashes in flight, try again`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class HasherBusy extends Schema.TaggedError<HasherBusy>("effect-auth/HasherBusy")("HasherBusy", {
  /** `concurrency + maxWaiting`: the hashes running or waiting when this one was refused. */
  inFlight: Schema.Number
}) {
  override get message(): string {
    return `the password hasher is busy (${this.inFlight} hashes running or waiting)`
  }
}

/**
 * The answer of {@link Service.verify}. `mustUpdate` is only ever `true` together with `valid`:
 * it then asks the caller to store `hash(password)` in place of the old hash (Django calls the
 * `setter`), because the algorithm is not the preferred one or its parameters or salt are
 * outdated.
 *
 * @example
 * ```ts
 * import type { PasswordHasher } from "effect-auth"
 *
 * const shouldRehash = (result: PasswordHasher.VerifyResult): boolean => result.valid && result.mustUpdate
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface VerifyResult {
  readonly valid: boolean
  readonly mustUpdate: boolean
}

/**
 * The password hasher service.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import type { PasswordHasher } from "effect-auth"
 *
 * const checkPassword = (hasher: PasswordHasher.Service, password: string, encoded: string) =>
 *   Effect.map(hasher.verify(Redacted.make(password), encoded), (result) => result.valid)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * Hashes with the preferred hasher and a fresh salt (22 characters of `[a-zA-Z0-9]`; bcrypt: its
   * own 16 bytes). A password that is no `Redacted` string (from an untyped caller: a plain string,
   * a wiped `Redacted`, a Proxy whose traps throw) is a {@link HashError}.
   */
  readonly hash: (password: Redacted.Redacted<string>) => Effect.Effect<string, HashError | HasherBusy>
  /**
   * Django's `check_password`. A missing password, or a missing, unusable (`!…`) or unknown hash,
   * runs the preferred hasher once on a throwaway value and answers `{ valid: false }`. A password
   * that is neither missing nor a `Redacted` string, or a hash that is no string, is a {@link HashError}.
   */
  readonly verify: (
    password: Redacted.Redacted<string> | null | undefined,
    encoded: string | null | undefined
  ) => Effect.Effect<VerifyResult, HashError | HasherBusy>
  /** The algorithm of a stored hash, if it is one of the configured hashers (Django's `identify_hasher`). */
  readonly identify: (encoded: string) => Option.Option<string>
  /**
   * Django's `is_password_usable`: `false` only for the `!` marker of {@link Service.makeUnusable}.
   * As in Django, a missing value (`null`) counts as usable; it still never verifies.
   */
  readonly isUsable: (encoded: string | null | undefined) => boolean
  /** A value that no password verifies against: `!` and 40 random characters of `[a-zA-Z0-9]`. */
  readonly makeUnusable: () => string
  /** The algorithm new hashes are written with. */
  readonly preferredAlgorithm: string
  /** The configured algorithms, the preferred one first. */
  readonly algorithms: ReadonlyArray<string>
}

/**
 * The password hasher.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordHasher } from "effect-auth"
 *
 * const setPassword = (password: Redacted.Redacted<string>) =>
 *   Effect.flatMap(PasswordHasher.PasswordHasher, (hasher) => hasher.hash(password))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class PasswordHasher extends Context.Tag("effect-auth/PasswordHasher")<PasswordHasher, Service>() {}

/**
 * The client a hashing call is made for: the key the hasher shares its places by (see
 * {@link withClient}). None (the default) puts a call in the one bucket shared by every call
 * without a client, such as the CLI's or a password change's. `ModelBackend` sets it to the
 * request's client address for its checks; read it to see the key in effect.
 *
 * @example
 * ```ts
 * import { Effect, FiberRef, Option } from "effect"
 * import { PasswordHasher } from "effect-auth"
 *
 * const program = PasswordHasher.withClient(FiberRef.get(PasswordHasher.currentClient), "203.0.113.7")
 * Effect.runSync(program) // Option.some("203.0.113.7")
 * Effect.runSync(FiberRef.get(PasswordHasher.currentClient)) // Option.none()
 * ```
 *
 * @since 0.1.0
 * @category fiber refs
 */
export const currentClient: FiberRef.FiberRef<Option.Option<string>> = clientRef

/**
 * Runs an effect as calls of one client (an address, a connection, an account: any key), so
 * that the hasher's load shedding keeps that client from starving the others. While every place
 * (`concurrency + maxWaiting`) is taken, a call of a client holding fewer places than the
 * greediest client with a waiting call, by two or more, takes the place of that client's newest
 * waiting call (which fails with {@link HasherBusy}, as it would have had it come last), and a
 * hasher coming free goes to the waiting client with the fewest running calls. One client alone,
 * and calls without a client, see the plain bound. `undefined` runs the effect without a client.
 *
 * `ModelBackend` does this itself with the request's client address (an IPv6 address by its /48,
 * coarser than the lockout's /64: a site is often handed a /56 or a /48); a backend of your own that hashes does it with what it knows of the
 * request, and an app outside HTTP can key the whole `AuthService.authenticate` call.
 *
 * @example
 * ```ts
 * import { Effect, Option, Redacted, Schema } from "effect"
 * import { AuthBackend, AuthError, PasswordHasher } from "effect-auth"
 *
 * const PinCredentials = Schema.Struct({ account: Schema.String, pin: Schema.Redacted(Schema.String) })
 *
 * const pinBackend = (findPinHash: (account: string) => Effect.Effect<Option.Option<string>>) =>
 *   Effect.map(PasswordHasher.PasswordHasher, (hasher) =>
 *     AuthBackend.make({
 *       id: "pin",
 *       credentials: PinCredentials,
 *       authenticate: ({ account, pin }, request) =>
 *         Effect.gen(function*() {
 *           const stored = yield* findPinHash(account)
 *           const { valid } = yield* hasher.verify(pin, Option.getOrNull(stored)).pipe(
 *             // this client's checks wait their turn; a flood from one address sheds its own calls
 *             PasswordHasher.withClient(request?.remoteAddress),
 *             Effect.catchTags({
 *               HashError: () => Effect.succeed({ valid: false }),
 *               HasherBusy: (busy) => Effect.fail(new AuthError.TransportError({ backend: "pin", cause: busy }))
 *             })
 *           )
 *           if (!valid) return yield* new AuthError.NoMatch({ backend: "pin", reason: "invalid-credentials" })
 *           return { id: account, username: account, isActive: true, isSuperuser: false }
 *         }),
 *       getUser: () => Effect.succeed(Option.none())
 *     }))
 *
 * // Data-first, as well:
 * const check = (hasher: PasswordHasher.Service, pin: Redacted.Redacted<string>, encoded: string) =>
 *   PasswordHasher.withClient(hasher.verify(pin, encoded), "connection-42")
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withClient: {
  (client: string | undefined): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, client: string | undefined): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, client: string | undefined): Effect.Effect<A, E, R> =>
    Effect.locally(self, clientRef, Option.fromNullable(client))
)

const between = (min: number, max: number) => Schema.Int.pipe(Schema.between(min, max))

const legacyAlgorithms = Registry.algorithms.filter(
  (a): a is Exclude<Algorithm, PreferredAlgorithm> => !(Registry.writableAlgorithms as ReadonlyArray<string>).includes(a)
)

/**
 * The options of {@link layer}, as a Schema; every field is optional.
 *
 * - `hashers`: the ordered hasher list. The first writes new hashes, the rest only verify.
 *   Default (Django's): `["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "scrypt"]`.
 * - `pbkdf2.iterations`: default 1,200,000 (Django 6.0), for both PBKDF2 hashers.
 * - `argon2`: `timeCost` 2, `memoryCost` 102,400 KiB, `parallelism` 8 (Django's), `hashLength`
 *   32 bytes (argon2-cffi 21.2.0 and later; a Django on an older argon2-cffi, such as Debian 12's
 *   python3-argon2 21.1.0, writes 16: set `hashLength` to what the site's argon2-cffi writes).
 * - `bcrypt`: `rounds` 12; `longPasswords` `"reject"` (default) or `"truncate"` for plain `bcrypt`.
 * - `scrypt`: `workFactor` (N) 16,384, `blockSize` (r) 8, `parallelism` (p) 5, `maxmem` 32 MiB.
 * - `concurrency`: how many hashes run at once; default `os.availableParallelism()`.
 * - `maxWaiting`: how many more may wait for a turn; past it `hash` and `verify` fail at once
 *   with {@link HasherBusy}. Default 4 × `concurrency`; `0` refuses whatever cannot run at once.
 * - `legacyFirst`: put one of Django's legacy hashers (`md5`, `sha1`, `unsalted_md5`,
 *   `unsalted_sha1`) before `hashers`, so that it writes new hashes — what Django allows with
 *   `PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", ...]`, which test
 *   settings use for speed. Never in production: those hashes fall to a GPU in seconds.
 *
 * The preferred hasher's hashes must fit Django's 128-character `password` column, which every
 * `UserStore` enforces: longer ones (scrypt with N ≥ 2^17, or a two-digit r or p; argon2 with a
 * `hashLength` over 44 at the default costs) are refused with the other bad options.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { PasswordHasher } from "effect-auth"
 *
 * Schema.decodeUnknownSync(PasswordHasher.Options)({ hashers: ["argon2", "pbkdf2_sha256"] })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Options = Schema.Struct({
  hashers: Schema.optional(
    Schema.Tuple([Schema.Literal(...Registry.writableAlgorithms)], Schema.Literal(...Registry.algorithms))
  ),
  pbkdf2: Schema.optional(Schema.Struct({
    iterations: Schema.optional(between(1, MAX_ITERATIONS))
  })),
  argon2: Schema.optional(Schema.Struct({
    timeCost: Schema.optional(between(1, 2 ** 32 - 1)),
    memoryCost: Schema.optional(between(8, 4 * 1024 * 1024)),
    parallelism: Schema.optional(between(1, 0xff_ffff)),
    hashLength: Schema.optional(between(4, 1024))
  })),
  bcrypt: Schema.optional(Schema.Struct({
    rounds: Schema.optional(between(4, 31)),
    longPasswords: Schema.optional(Schema.Literal("reject", "truncate"))
  })),
  scrypt: Schema.optional(Schema.Struct({
    workFactor: Schema.optional(
      between(2, 2 ** 30).pipe(Schema.filter((n) => (n & (n - 1)) === 0, { message: () => "N must be a power of 2" }))
    ),
    blockSize: Schema.optional(between(1, 1024)),
    parallelism: Schema.optional(between(1, 1024)),
    maxmem: Schema.optional(between(0, Number.MAX_SAFE_INTEGER))
  })),
  concurrency: Schema.optional(between(1, 1024)),
  maxWaiting: Schema.optional(between(0, 1_000_000)),
  legacyFirst: Schema.optional(Schema.Literal(...legacyAlgorithms))
})

/**
 * @example
 * ```ts
 * import { PasswordHasher } from "effect-auth"
 *
 * const options: PasswordHasher.Options = {
 *   hashers: ["argon2", "pbkdf2_sha256"],
 *   argon2: { memoryCost: 65_536 }
 * }
 * const HasherLive = PasswordHasher.layer(options)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Schema.Schema.Type<typeof Options> {}

/**
 * Django's defaults (6.0): the hasher list, PBKDF2 iterations and every parameter.
 *
 * @example
 * ```ts
 * import { PasswordHasher } from "effect-auth"
 *
 * PasswordHasher.defaults.pbkdf2.iterations // 1200000
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  hashers: ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "scrypt"],
  ...djangoDefaults
} as const

/**
 * The Django versions {@link djangoPresets} knows.
 *
 * @example
 * ```ts
 * import { PasswordHasher } from "effect-auth"
 *
 * const sharedWith: PasswordHasher.DjangoVersion = "4.2"
 * const HasherLive = PasswordHasher.layer(PasswordHasher.djangoPresets[sharedWith])
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type DjangoVersion = "3.2" | "4.2" | "5.2" | "6.0"

/**
 * Django's own defaults, version by version: the `PASSWORD_HASHERS` list and the PBKDF2 iteration
 * count of each LTS release and of 6.0. Give the preset of the Django that shares the database:
 * a hash made by either side then counts as current on both, and neither side re-hashes the
 * other's on every login (with different iteration counts, each would). Move to the next preset
 * when the Django site upgrades.
 *
 * - 3.2: 260,000 iterations; no scrypt (Django < 4.0 cannot read it). Argon2 hashes of 16 bytes,
 *   as argon2-cffi wrote them before 21.2.0.
 * - 4.2: 600,000 iterations, scrypt listed last (from Django 4.0).
 * - 5.2: 1,000,000 iterations.
 * - 6.0: 1,200,000 iterations (the same as {@link defaults}).
 *
 * The argon2 hash length is not Django's but its argon2-cffi's: Django's `must_update` compares a
 * hash with the installed argon2-cffi's `DEFAULT_HASH_LENGTH`, 16 bytes before argon2-cffi 21.2.0
 * and 32 from it (RFC 9106's profile). The presets of 4.2 and later take 32; a site on an older
 * argon2-cffi (Debian 12's python3-argon2 is 21.1.0) needs `argon2: { hashLength: 16 }` on top of
 * its preset, and a 3.2 site on argon2-cffi 21.2.0 or later `hashLength: 32`. With argon2 first in
 * both lists and the lengths apart, each side re-hashes the other's hash at every login, and the
 * new hash ends the user's sessions on the other side. `python3 -c "import argon2;
 * print(argon2.DEFAULT_HASH_LENGTH)"` on the Django host tells the length.
 *
 * @example
 * ```ts
 * import { PasswordHasher } from "effect-auth"
 *
 * // The Effect service shares its users with a Django 4.2 site.
 * const HasherLive = PasswordHasher.layer(PasswordHasher.djangoPresets["4.2"])
 *
 * PasswordHasher.djangoPresets["3.2"].pbkdf2?.iterations // 260000
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const djangoPresets: { readonly [V in DjangoVersion]: Options } = {
  "3.2": {
    hashers: ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256"],
    pbkdf2: { iterations: 260_000 },
    argon2: { hashLength: 16 }
  },
  "4.2": { hashers: defaults.hashers, pbkdf2: { iterations: 600_000 } },
  "5.2": { hashers: defaults.hashers, pbkdf2: { iterations: 1_000_000 } },
  "6.0": { hashers: defaults.hashers, pbkdf2: { iterations: 1_200_000 } }
}

const settingsFrom = (input: unknown): Either.Either<Registry.Settings, string> =>
  Either.flatMap(
    Either.mapLeft(Schema.decodeUnknownEither(Options)(input), (e) => treeMessage(e)),
    (o): Either.Either<Registry.Settings, string> => {
      const concurrency = o.concurrency ?? os.availableParallelism()
      const settings: Registry.Settings = {
        hashers: o.legacyFirst === undefined
          ? o.hashers ?? defaults.hashers
          : [o.legacyFirst, ...(o.hashers ?? defaults.hashers).filter((a) => a !== o.legacyFirst)],
        pbkdf2: { ...defaults.pbkdf2, ...stripUndefined(o.pbkdf2) },
        argon2: { ...defaults.argon2, ...stripUndefined(o.argon2) },
        bcrypt: { ...defaults.bcrypt, ...stripUndefined(o.bcrypt) },
        scrypt: { ...defaults.scrypt, ...stripUndefined(o.scrypt) },
        concurrency,
        maxWaiting: o.maxWaiting ?? 4 * concurrency
      }
      if (settings.argon2.memoryCost < 8 * settings.argon2.parallelism) {
        return Either.left("argon2.memoryCost must be at least 8 KiB per lane (8 × parallelism)")
      }
      const length = encodedLength(settings)
      return length > MAX_ENCODED_LENGTH
        ? Either.left(
          `${settings.hashers[0]} hashes with these parameters are ${length} characters, more than the ` +
            `${MAX_ENCODED_LENGTH} of Django's password column`
        )
        : Either.right(settings)
    }
  )

// Django's `AbstractBaseUser.password` is a CharField(max_length=128), and every UserStore refuses
// a longer hash: a preferred hasher that writes longer ones (scrypt with N = 2^17, OWASP's
// minimum, writes 129 characters) would fail every sign-up and password change, and never
// upgrade a hash at login. Such settings are refused up front instead.
const MAX_ENCODED_LENGTH = 128

// The length of the hashes the preferred hasher writes: salts are 22 characters, argon2 and
// scrypt write unpadded / padded base64, bcrypt and PBKDF2 (at most 10 digits of iterations)
// always fit.
const encodedLength = (settings: Registry.Settings): number => {
  const b64 = (bytes: number, padded: boolean) => padded ? 4 * Math.ceil(bytes / 3) : Math.ceil((bytes * 4) / 3)
  switch (settings.hashers[0]) {
    case "argon2": {
      const { hashLength, memoryCost, parallelism, timeCost } = settings.argon2
      return `argon2$argon2id$v=19$m=${memoryCost},t=${timeCost},p=${parallelism}$$`.length + b64(22, false) +
        b64(hashLength, false)
    }
    case "scrypt": {
      const { blockSize, parallelism, workFactor } = settings.scrypt
      return `scrypt$${workFactor}$$${blockSize}$${parallelism}$`.length + 22 + b64(64, true)
    }
    default:
      return 0
  }
}

// Spreading `{ iterations: undefined }` over the defaults would erase them.
const stripUndefined = <A extends object>(o: A | undefined): { [K in keyof A]?: Exclude<A[K], undefined> } =>
  o === undefined ? {} : Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as any

const isEncoded = Schema.is(Schema.NullishOr(Schema.String))

const passwordBytes = (password: unknown, algorithm: string): Effect.Effect<Uint8Array, HashError> => {
  const text = textOf(password)
  if (text === undefined) {
    return Effect.fail(new HashError({ algorithm, reason: "the password must be a Redacted string" }))
  }
  // A stray lone surrogate would be hashed as U+FFFD by Node but refused by Python: refused here too.
  return !isWellFormed(text)
    ? Effect.fail(new HashError({ algorithm, reason: "the password is not well-formed Unicode" }))
    : Effect.succeed(Buffer.from(text, "utf8"))
}

const toHashError = (e: HasherFailure) =>
  new HashError({ algorithm: e.algorithm, reason: e.reason, ...(e.cause === undefined ? {} : { cause: e.cause }) })

const fromSettings = (settings: Registry.Settings): Effect.Effect<Service> =>
  Effect.sync(() => {
    const registry = Registry.makeRegistry(settings, Registry.run)
    const preferred = registry.preferred.algorithm
    const inFlight = settings.concurrency + settings.maxWaiting
    // One permit per call, held across its derivations (a wrong password on an outdated hash
    // runs two): at most `concurrency` calls hash at once, fairly shared between clients.
    const admit = makeFairLimiter(settings.concurrency, settings.maxWaiting, new HasherBusy({ inFlight }))
    return {
      preferredAlgorithm: preferred,
      algorithms: [...registry.byAlgorithm.keys()],
      hash: (password) =>
        passwordBytes(password, preferred).pipe(
          Effect.flatMap((bytes) => admit(Effect.mapError(registry.hash(bytes), toHashError))),
          withValueFreeSpan("effect-auth.password.hash", {
            attributes: { "password.algorithm": preferred },
            captureStackTrace: false
          })
        ),
      verify: (password, encoded) => {
        const algorithm = isEncoded(encoded) && typeof encoded === "string"
          ? Option.getOrElse(Option.map(Registry.identify(registry.byAlgorithm, encoded), (h) => h.algorithm), () => "unknown")
          : "unknown"
        const checked = !isEncoded(encoded)
          ? Effect.fail(new HashError({ algorithm, reason: "the stored hash must be a string" }))
          : password === null || password === undefined
          ? admit(Effect.mapError(registry.verify(undefined, encoded), toHashError))
          : Effect.flatMap(passwordBytes(password, algorithm), (bytes) =>
            admit(Effect.mapError(registry.verify(bytes, encoded), toHashError)))
        return checked.pipe(
          Effect.map(({ mustUpdate, valid }) => ({ valid, mustUpdate: valid && mustUpdate })),
          Effect.tap(({ mustUpdate, valid }) =>
            Effect.annotateCurrentSpan({ "password.valid": valid, "password.must_update": mustUpdate })
          ),
          Effect.withSpan("effect-auth.password.verify", {
            attributes: { "password.algorithm": algorithm },
            captureStackTrace: false
          })
        )
      },
      identify: (encoded) =>
        typeof encoded === "string"
          ? Option.map(Registry.identify(registry.byAlgorithm, encoded), (h) => h.algorithm)
          : Option.none(),
      isUsable: (encoded) => typeof encoded !== "string" || Registry.isUsable(encoded),
      makeUnusable: () => Registry.UNUSABLE_PREFIX + randomString(40)
    }
  })

/**
 * Builds the service. Options are checked against {@link Options}; options the types already
 * forbid (a verify-only hasher first, a negative cost) are a defect, since they are a programming
 * error rather than input.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordHasher } from "effect-auth"
 *
 * const program = Effect.gen(function*() {
 *   const hasher = yield* PasswordHasher.make({ hashers: ["argon2", "pbkdf2_sha256"] })
 *   return yield* hasher.hash(Redacted.make("correct horse"))
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service> =>
  Either.match(settingsFrom(options), {
    onLeft: (message) => Effect.dieMessage(`PasswordHasher options: ${message}`),
    onRight: fromSettings
  })

// `makePassword`'s options, read once and guarded: an untyped caller's `null` died with a
// TypeError, and so did options or settings that throw when read (a getter, a Proxy).
const makeOptionsOf = (options: unknown) => {
  try {
    const { algorithm, salt, settings } = options as Record<string, unknown>
    return { algorithm, salt, settings: settingsFrom(settings ?? {}) }
  } catch {
    return undefined
  }
}

/**
 * Django's `make_password(password, salt, hasher)`: the encoded hash of `password` with a given
 * algorithm and salt, for fixtures, data migrations and comparisons with Django. `null` gives an
 * unusable password, as Django's `make_password(None)`. Without `algorithm` the first hasher of
 * `settings` (Django's defaults unless given) is used, without `salt` a fresh one; any of
 * Django's algorithms may be named, the legacy ones included, as Django allows. A salt Django
 * would refuse (empty, or containing `$`) or one the algorithm cannot take is a `HashError`, and
 * so are options that are no object (`null`) or throw when read.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordHasher } from "effect-auth"
 *
 * // The same string Django 3.2 prints for
 * // make_password("secret", "seasalt", "pbkdf2_sha256") with 260,000 iterations.
 * const encoded = PasswordHasher.makePassword(Redacted.make("secret"), {
 *   algorithm: "pbkdf2_sha256",
 *   salt: "seasalt",
 *   settings: PasswordHasher.djangoPresets["3.2"]
 * })
 * Effect.runPromise(encoded).then((hash) => hash.startsWith("pbkdf2_sha256$260000$seasalt$")) // true
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makePassword = (
  password: Redacted.Redacted<string> | null,
  options: {
    readonly algorithm?: Algorithm | undefined
    readonly salt?: string | undefined
    readonly settings?: Options | undefined
  } = {}
): Effect.Effect<string, HashError> =>
  Effect.gen(function*() {
    if (password === null) return Registry.UNUSABLE_PREFIX + randomString(40)
    const read = makeOptionsOf(options)
    if (read === undefined) {
      return yield* new HashError({ algorithm: "unknown", reason: "options must be an object whose fields can be read" })
    }
    const settings = read.settings
    const chosen: unknown = read.algorithm ?? (Either.isRight(settings) ? settings.right.hashers[0]! : "unknown")
    // (from an untyped caller: an algorithm or a salt that is no string is refused, not a defect)
    const algorithm = typeof chosen === "string" ? chosen : "unknown"
    if (Either.isLeft(settings)) return yield* new HashError({ algorithm, reason: `settings: ${settings.left}` })
    if (!Registry.algorithms.includes(chosen as Algorithm)) {
      return yield* new HashError({ algorithm, reason: "not one of Django's hashers" })
    }
    const salt: unknown = read.salt
    if (salt !== undefined && (typeof salt !== "string" || salt.length === 0 || salt.includes("$"))) {
      return yield* new HashError({ algorithm, reason: "the salt must be non-empty and contain no '$'" })
    }
    const bytes = yield* passwordBytes(password, algorithm)
    const hasher = Registry.makeHasher(algorithm as Algorithm, settings.right, Registry.run)
    return yield* Effect.mapError(hasher.encode(bytes, salt ?? hasher.salt()), toHashError)
  })

/**
 * The service as a layer.
 *
 * @example
 * ```ts
 * import { PasswordHasher } from "effect-auth"
 *
 * // Argon2 for new hashes; users with Django's PBKDF2 hashes still log in and are upgraded.
 * const HasherLive = PasswordHasher.layer({
 *   hashers: ["argon2", "pbkdf2_sha256", "pbkdf2_sha1", "bcrypt_sha256"],
 *   argon2: { memoryCost: 65_536 },
 *   concurrency: 4,
 *   maxWaiting: 16
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<PasswordHasher> => Layer.effect(PasswordHasher, make(options))

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/**
 * The options read from configuration (environment variables by default), all optional:
 * `PASSWORD_HASHERS` (comma-separated algorithm names, preferred first),
 * `PASSWORD_HASHER_PBKDF2_ITERATIONS`, `PASSWORD_HASHER_ARGON2_TIME_COST`,
 * `PASSWORD_HASHER_ARGON2_MEMORY_COST`, `PASSWORD_HASHER_ARGON2_PARALLELISM`,
 * `PASSWORD_HASHER_ARGON2_HASH_LENGTH`, `PASSWORD_HASHER_BCRYPT_ROUNDS`,
 * `PASSWORD_HASHER_BCRYPT_LONG_PASSWORDS`, `PASSWORD_HASHER_SCRYPT_WORK_FACTOR`,
 * `PASSWORD_HASHER_SCRYPT_BLOCK_SIZE`, `PASSWORD_HASHER_SCRYPT_PARALLELISM`,
 * `PASSWORD_HASHER_SCRYPT_MAXMEM`, `PASSWORD_HASHER_CONCURRENCY`, `PASSWORD_HASHER_MAX_WAITING`.
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { PasswordHasher } from "effect-auth"
 *
 * const options = Effect.withConfigProvider(
 *   PasswordHasher.config,
 *   ConfigProvider.fromJson({ PASSWORD_HASHERS: "argon2,pbkdf2_sha256" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.map(
  Config.all({
    hashers: optional(Config.array(Config.literal(...Registry.algorithms)(), "PASSWORD_HASHERS")),
    iterations: optional(Config.integer("PASSWORD_HASHER_PBKDF2_ITERATIONS")),
    timeCost: optional(Config.integer("PASSWORD_HASHER_ARGON2_TIME_COST")),
    memoryCost: optional(Config.integer("PASSWORD_HASHER_ARGON2_MEMORY_COST")),
    argon2Parallelism: optional(Config.integer("PASSWORD_HASHER_ARGON2_PARALLELISM")),
    hashLength: optional(Config.integer("PASSWORD_HASHER_ARGON2_HASH_LENGTH")),
    rounds: optional(Config.integer("PASSWORD_HASHER_BCRYPT_ROUNDS")),
    longPasswords: optional(Config.literal("reject", "truncate")("PASSWORD_HASHER_BCRYPT_LONG_PASSWORDS")),
    workFactor: optional(Config.integer("PASSWORD_HASHER_SCRYPT_WORK_FACTOR")),
    blockSize: optional(Config.integer("PASSWORD_HASHER_SCRYPT_BLOCK_SIZE")),
    scryptParallelism: optional(Config.integer("PASSWORD_HASHER_SCRYPT_PARALLELISM")),
    maxmem: optional(Config.integer("PASSWORD_HASHER_SCRYPT_MAXMEM")),
    concurrency: optional(Config.integer("PASSWORD_HASHER_CONCURRENCY")),
    maxWaiting: optional(Config.integer("PASSWORD_HASHER_MAX_WAITING"))
  }),
  (c) =>
    ({
      hashers: c.hashers,
      pbkdf2: { iterations: c.iterations },
      argon2: { timeCost: c.timeCost, memoryCost: c.memoryCost, parallelism: c.argon2Parallelism, hashLength: c.hashLength },
      bcrypt: { rounds: c.rounds, longPasswords: c.longPasswords },
      scrypt: { workFactor: c.workFactor, blockSize: c.blockSize, parallelism: c.scryptParallelism, maxmem: c.maxmem },
      concurrency: c.concurrency,
      maxWaiting: c.maxWaiting
      // Checked against the Options schema by layerConfig, which reports a ConfigError.
    }) as Options
)

/**
 * The service as a layer, its options read from `Config` ({@link config} by default, or any
 * `Config.Wrap<Options>`). Options that fail {@link Options} are a `ConfigError`.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { PasswordHasher } from "effect-auth"
 *
 * // From PASSWORD_HASHERS, PASSWORD_HASHER_PBKDF2_ITERATIONS, ...
 * const FromEnv = PasswordHasher.layerConfig()
 *
 * // Or with names of your own
 * const Custom = PasswordHasher.layerConfig({
 *   pbkdf2: { iterations: Config.integer("AUTH_PBKDF2_ITERATIONS") }
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<PasswordHasher, ConfigError.ConfigError> =>
  Layer.effect(
    PasswordHasher,
    Effect.flatMap(Config.unwrap(options), (value) =>
      Either.match(settingsFrom(value), {
        onLeft: (message) => Effect.fail(ConfigError.InvalidData([], `PasswordHasher options: ${message}`)),
        onRight: fromSettings
      }))
  )

/**
 * Cheap parameters for tests, **never for production**: every algorithm enabled
 * (`pbkdf2_sha256` preferred), PBKDF2 at 1,000 iterations, argon2 at `t=1, m=64 KiB, p=1`,
 * bcrypt at 4 rounds, scrypt at `N=1024, r=8, p=1`. A hash or check costs about a millisecond.
 *
 * @example
 * ```ts
 * import { PasswordHasher } from "effect-auth"
 *
 * const layer = PasswordHasher.layer({ ...PasswordHasher.testOptions, hashers: ["argon2", "pbkdf2_sha256"] })
 * ```
 *
 * @since 0.1.0
 * @category testing
 */
export const testOptions: Options = {
  hashers: Registry.algorithms,
  pbkdf2: { iterations: 1000 },
  argon2: { timeCost: 1, memoryCost: 64, parallelism: 1 },
  bcrypt: { rounds: 4 },
  scrypt: { workFactor: 1024, blockSize: 8, parallelism: 1 }
}

/**
 * The service with {@link testOptions}: for tests of code that logs users in, which must not
 * spend 1.2 million PBKDF2 iterations per login. **Never use it in production.**
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PasswordHasher } from "effect-auth"
 *
 * const encoded = Effect.flatMap(PasswordHasher.PasswordHasher, (h) => h.hash(Redacted.make("pw"))).pipe(
 *   Effect.provide(PasswordHasher.layerTest)
 * )
 * ```
 *
 * @since 0.1.0
 * @category testing
 */
export const layerTest: Layer.Layer<PasswordHasher> = layer(testOptions)
