/**
 * A second factor in the fold: a time-based one-time password (RFC 6238) from the user's
 * authenticator app, or one of their single-use recovery codes.
 *
 * Its credentials are `{ username, otpToken }` (`otp_token` is django-otp's name for the field).
 * It is meant for a step-up after a first factor, never alone in a login chain: a six-digit code
 * is not a password. `HttpAuth.stepUp` asks it with the username of the session's user, and
 * `Session.stepUp` marks that session as having passed the second factor, with the device it
 * passed (`secondFactorDevice`: a digest of the device's secret, which the session keys again):
 * once the device is removed or enrolled anew, `CurrentUser.requireSecondFactor` refuses the
 * session as one that never passed it (docs/mfa.md).
 *
 * - A code is accepted in the time steps within `window` (default ±1 step of 30 s) of now, or of
 *   where the user's app was last seen (`sync`, django-otp's `OTP_TOTP_SYNC`: the drift its last
 *   code showed), and only after the last step accepted for the user: a code cannot be replayed,
 *   even on another instance (the store's `useStep` is a compare-and-set).
 * - A recovery code is accepted once (the store deletes it).
 * - Unknown or inactive user, no confirmed device, a wrong, replayed or malformed code: `NoMatch`.
 *   An attempt the throttle refuses unchecked: `NoMatch("throttled")` with its `retryAfter`
 *   (`HttpAuth.stepUp` answers it with 429 and `Retry-After`). The store down: `TransportError`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { AuthService, MemoryUserStore, ModelBackend, PasswordHasher, TotpStore } from "effect-auth"
 * import * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * const AuthLive = AuthService.layer([ModelBackend.ModelBackend, TotpBackend.TotpBackend]).pipe(
 *   Layer.provide(Layer.merge(ModelBackend.layer(), TotpBackend.layer())),
 *   Layer.provide(Layer.mergeAll(MemoryUserStore.layer, PasswordHasher.layerTest, TotpStore.layerMemory))
 * )
 * ```
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import * as AuthBackend from "../AuthBackend.js"
import * as AuthError from "../AuthError.js"
import * as Credentials from "../Credentials.js"
import * as Throttle from "../internal/totpThrottle.js"
import { textOf } from "../internal/redactedString.js"
import { askStore } from "../internal/userStore.js"
import * as Totp from "../Totp.js"
import * as TotpStore from "../TotpStore.js"
import type { User } from "../User.js"
import * as UserStore from "../UserStore.js"

/**
 * The second factor's credentials: the user's name and the code they typed (six to eight digits,
 * or a recovery code).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * Schema.decodeUnknownSync(TotpBackend.SecondFactor)({ username: "alice", otpToken: "287082" })
 * ```
 *
 * @since 0.2.0
 * @category schemas
 */
export const SecondFactor = Schema.Struct({
  username: Credentials.Username,
  otpToken: Credentials.secret(64)
  // (a value that is no object at all is not shown either: it may hold the code)
}).annotations({ message: () => "Expected second-factor credentials" })

/**
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * const credentials: TotpBackend.SecondFactor = { username: "alice", otpToken: Redacted.make("287082") }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type SecondFactor = typeof SecondFactor.Type

/**
 * The backend's options.
 *
 * @example
 * ```ts
 * import type * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * const options: TotpBackend.Options = { id: "totp", totp: { window: 1 } }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Default: `"totp"`. */
  readonly id?: string | undefined
  /**
   * The drift `window` of the codes. `digits`, `period` and `algorithm` apply only to devices
   * stored without their own (enrolled before they were recorded): a device keeps the parameters
   * it was enrolled with ({@link enrol}'s options), so changing these later breaks no device.
   */
  readonly totp?: Totp.Options | undefined
  /**
   * The user type of your app, from the stored user (as `ModelBackend`'s `toUser`). The device
   * that verified a code is kept against the object a success answers, for the step-up to record:
   * a plain object is answered as a copy (so a `toUser` that caches one per user mixes no two
   * logins' devices); any other object (a class instance) as it is, and one that answered two
   * logins with different devices before a step-up read it steps up neither (the next try does).
   */
  readonly toUser?: ((stored: UserStore.StoredUser) => User) | undefined
  readonly policy?: AuthBackend.PolicyInput | undefined
  /**
   * django-otp's `OTP_TOTP_THROTTLE_FACTOR`: after n failed attempts in a row (wrong codes, used
   * codes, wrong recovery codes) the device takes no attempt for factor × 2^(n−1), and a right code
   * clears the count. Default: 1 second; `0` turns the throttle off. A negative or infinite factor
   * is an `AuthConfigError`.
   */
  readonly throttleFactor?: Duration.DurationInput | undefined
  /**
   * django-otp's `OTP_TOTP_SYNC`: the window follows the user's app. Each accepted code records
   * how many steps the app runs ahead or behind (`TotpStore.Device.drift`), and the next code is
   * looked for around there, so a phone whose clock drifts slowly keeps logging in. `false`: the
   * window stays centred on the server's clock. Default: `true`, as django-otp's.
   */
  readonly sync?: boolean | undefined
}

/**
 * The backend as a service, for `AuthService.layer([...])`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * const id = Effect.map(TotpBackend.TotpBackend, (backend) => backend.id)
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export class TotpBackend extends Context.Tag("effect-auth/backends/TotpBackend")<
  TotpBackend,
  AuthBackend.AuthBackend<SecondFactor>
>() {}

const storedAsUser = (stored: UserStore.StoredUser): User => stored as unknown as User

// How the device's codes are checked: with the parameters it was enrolled with, where it has them
// (what its app was told), the rest (the window, and all for an older device) from `options`.
const codeOptions = (device: TotpStore.Device, options: Totp.Options | undefined, after: number) => ({
  ...options,
  ...(device.digits !== undefined && { digits: device.digits }),
  ...(device.period !== undefined && { period: device.period }),
  ...(device.algorithm !== undefined && { algorithm: device.algorithm }),
  after
})

// SHA-256 of the secret under a label of its own: it names the device and tells nothing of the
// secret (160 random bits); `Session` keys it again with the app secret before storing it.
const deviceIdentity = (device: TotpStore.Device): string =>
  createHash("sha256").update("effect-auth.TotpBackend.device\0").update(Redacted.value(device.secret)).digest("base64url")
const digitsOnly = /^[0-9]{6,8}$/

// A code as the user typed it, without the spaces an authenticator app shows it with ("123 456"):
// the login and the confirmation of a device read it alike. Anything but a string (an untyped
// caller's number, a wiped `Redacted`) is no code.
const typedCode = (code: unknown): string | undefined => (typeof code === "string" ? code : textOf(code))?.replace(/\s/g, "")

// A plain object's copy (its own properties): an object of one authentication's own. Any other
// object is answered as it is: a copy of a class instance would lose its private fields.
const ownCopy = <A extends object>(user: A): A => {
  const prototype = Object.getPrototypeOf(user)
  return prototype === Object.prototype || prototype === null
    ? Object.create(prototype, Object.getOwnPropertyDescriptors(user))
    : user
}

// An object that answered two authentications with different devices: which one a step-up
// passed cannot be told.
const ambiguous: unique symbol = Symbol("ambiguous")

/**
 * Builds the backend on the `TotpStore` and `UserStore` in context. Options `Totp.checkOptions`
 * refuses (a zero period, a window of a million steps) are an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * const backend = TotpBackend.make({ totp: { window: 2 } })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<
  AuthBackend.AuthBackend<SecondFactor>,
  AuthError.AuthConfigError,
  TotpStore.TotpStore | UserStore.UserStore
> =>
  Effect.gen(function*() {
    // Unchecked, a zero period threw a RangeError at the first code (a defect, not a refusal),
    // and a huge window made every attempt compute that many HMACs.
    yield* Totp.checkOptions(options.totp, "TotpBackend")
    const factor = yield* Throttle.factorMillis(options.throttleFactor, "TotpBackend")
    const backendId = options.id ?? "totp"
    const sync = options.sync !== false
    const toUser = options.toUser ?? storedAsUser
    const devices = yield* TotpStore.TotpStore
    const users = yield* UserStore.UserStore
    const noMatch = AuthError.failures(backendId).noMatch
    const throttled = (waitMillis: number) =>
      Exit.fail(new AuthError.NoMatch({ backend: backendId, reason: "throttled", retryAfter: Duration.millis(waitMillis) }))
    const transport = (cause: unknown) => new AuthError.TransportError({ backend: backendId, cause })
    const find = (lookup: Effect.Effect<Option.Option<UserStore.StoredUser>, UserStore.CommonError>) =>
      askStore(lookup, Option.none(), transport)

    const authenticate = ({ otpToken, username }: SecondFactor): Effect.Effect<User, AuthError.BackendError> =>
      Effect.gen(function*() {
        const found = yield* find(users.findByUsername(username))
        if (Option.isNone(found)) return yield* noMatch("unknown-user")
        const user = found.value
        if (!user.isActive) return yield* noMatch("inactive-user")
        const device = yield* Effect.mapError(devices.get(user.id), transport)
        if (Option.isNone(device) || !device.value.confirmed) return yield* noMatch("unknown-user")
        const now = yield* Clock.currentTimeMillis
        // Throttled, or a concurrent attempt was admitted first: this one is not checked, and says
        // so (django-otp's "verification temporarily disabled"), with the wait.
        const wait = yield* Effect.mapError(Throttle.admit(devices, device.value, factor, now), transport)
        if (wait !== undefined) return yield* throttled(wait)
        const code = typedCode(otpToken) ?? ""
        if (digitsOnly.test(code)) {
          const checkedWith = codeOptions(device.value, options.totp, device.value.lastStep)
          // The window around the step the app was last seen at (django-otp's drift), not now's.
          const drift = sync ? device.value.drift ?? 0 : 0
          const period = (checkedWith.period ?? 30) * 1000
          const step = Totp.verify(device.value.secret, code, now + drift * period, checkedWith)
          if (Option.isNone(step)) return yield* noMatch("invalid-credentials")
          // Two requests with the same code: the compare-and-set lets one through. It names the
          // secret the code was checked against: a device replaced since the get is not used. The
          // app's drift, as this code shows it, is written by the same statement.
          const seen = sync ? step.value - Totp.counterAt(now, checkedWith) : undefined
          const fresh = yield* Effect.mapError(devices.useStep(user.id, step.value, device.value.secret, seen), transport)
          if (!fresh) return yield* noMatch("invalid-credentials")
        } else {
          const used = yield* Effect.mapError(devices.useRecoveryCode(user.id, Totp.hashRecoveryCode(code)), transport)
          if (!used) return yield* noMatch("invalid-credentials")
        }
        yield* Effect.mapError(Throttle.accepted(devices, user.id, factor), transport)
        const result = ownCopy(toUser(user))
        const identity = deviceIdentity(device.value)
        const earlier = verifiedWith.get(result)
        verifiedWith.set(result, earlier === undefined || earlier === identity ? identity : ambiguous)
        return result
      })

    const getUser = (userId: string): Effect.Effect<Option.Option<User>, AuthError.TransportError> =>
      Effect.map(find(users.findById(userId)), (found) => Option.map(Option.filter(found, (u) => u.isActive), toUser))

    // The device each user this backend returned was verified with (the code's, or the recovery
    // code's, device), by the returned object, for `Session.stepUp` to record: that device, not
    // whichever the user has by the time it asks (django-otp's `otp_login(request, device)` stores
    // the device that matched the token). A plain object is answered as a copy of `toUser`'s
    // (`ownCopy`), so its entry belongs to one authentication; any other object (a class instance,
    // perhaps cached by `toUser`) is answered as it is, and one that answered two authentications
    // with different devices before a step-up read it vouches for neither (`ambiguous`).
    const verifiedWith = new WeakMap<object, string | typeof ambiguous>()

    // The user's confirmed device, named by a digest of its secret: a new enrolment always has a
    // new secret, so a device removed and enrolled again is another device. What a session's second
    // factor is held against on every request: the device as it is now, whatever logins happened.
    const secondFactorDevice = (user: User): Effect.Effect<Option.Option<string>, AuthError.TransportError> =>
      Effect.map(
        Effect.mapError(devices.get(user.id), transport),
        (device) => Option.map(Option.filter(device, (d) => d.confirmed), deviceIdentity)
      )

    // The device that verified the authentication which answered `user`, read once: none when that
    // device is no longer the user's (replaced between the code's check and the step-up: before,
    // the session recorded the replacement and kept its second factor while it stayed), when it
    // cannot be told, or when `user` is no object this backend answered.
    const verifiedDevice = (user: User): Effect.Effect<Option.Option<string>, AuthError.TransportError> =>
      Effect.suspend(() => {
        const verified = typeof user === "object" && user !== null ? verifiedWith.get(user) : undefined
        if (verified !== undefined) verifiedWith.delete(user)
        if (verified === undefined || verified === ambiguous) return Effect.succeedNone
        return Effect.map(secondFactorDevice(user), Option.filter((identity) => identity === verified))
      })

    return AuthBackend.make({
      id: backendId,
      credentials: SecondFactor,
      authenticate,
      getUser,
      secondFactor: true,
      secondFactorDevice,
      verifiedDevice,
      ...(options.policy === undefined ? {} : { policy: options.policy })
    })
  })

/**
 * The backend on the `TotpStore` and `UserStore` you provide.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { MemoryUserStore, TotpStore } from "effect-auth"
 * import * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * const TotpLive = TotpBackend.layer().pipe(Layer.provide(Layer.merge(MemoryUserStore.layer, TotpStore.layerMemory)))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<TotpBackend, AuthError.AuthConfigError, TotpStore.TotpStore | UserStore.UserStore> =>
  Layer.effect(TotpBackend, make(options))

// --- enrolment ---------------------------------------------------------------------------------

/**
 * The code typed to confirm an enrolment did not match.
 *
 * @example
 * ```ts
 * import * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * const error = new TotpBackend.InvalidCode({ userId: "1" })
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidCode extends Schema.TaggedError<InvalidCode>("effect-auth/TotpBackend/InvalidCode")(
  "InvalidCode",
  { userId: Schema.String }
) {}

/**
 * The code typed to confirm an enrolment was not checked: the device's throttle takes no attempt
 * for `retryAfter` (after wrong codes in a row, as at login), or a concurrent attempt was taken
 * first (then `retryAfter` is at most the wait, should that attempt fail). django-otp's
 * "verification temporarily disabled". Ask for the code again after the wait.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * const error = new TotpBackend.Throttled({ userId: "1", retryAfter: Duration.seconds(2) })
 * const seconds = Math.ceil(Duration.toSeconds(error.retryAfter)) // 2
 * ```
 *
 * @since 0.4.0
 * @category errors
 */
export class Throttled extends Schema.TaggedError<Throttled>("effect-auth/TotpBackend/Throttled")(
  "Throttled",
  { userId: Schema.String, retryAfter: Schema.DurationFromMillis }
) {}

/**
 * The user already has a confirmed device: {@link enrol} does not replace it. Remove it first
 * (`TotpStore.remove`), from a session that passed the second factor.
 *
 * @example
 * ```ts
 * import * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * const error = new TotpBackend.AlreadyEnrolled({ userId: "1" })
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class AlreadyEnrolled extends Schema.TaggedError<AlreadyEnrolled>("effect-auth/TotpBackend/AlreadyEnrolled")(
  "AlreadyEnrolled",
  { userId: Schema.String }
) {}

// The inputs of an enrolment, read once into plain values before anything is stored: an issuer or
// a username that was no string (from an untyped caller) made `Totp.uri` throw after the save, a
// defect that left stored an unconfirmed device whose secret nobody was shown. What it answers
// instead is the reason for an `AuthConfigError`.
interface Enrolment {
  // (checked by the store, which refuses a bad one with a TotpStoreError before it writes)
  readonly userId: string
  readonly issuer: string
  readonly account: string
  readonly totp: Totp.Options
}

// The parameters a new device is enrolled with, stored with it and written into its URI: the
// options given, else RFC 6238's and every authenticator app's defaults.
const enrolledWith = (totp: Totp.Options) => ({
  digits: totp.digits ?? 6,
  period: totp.period ?? 30,
  algorithm: totp.algorithm ?? "SHA1"
})
const enrolmentOf = (user: unknown, options: unknown): Enrolment | string => {
  try {
    const { id, username } = user as { readonly id: string; readonly username: unknown }
    const { account, algorithm, digits, issuer, period } = options as Record<string, unknown>
    if (typeof issuer !== "string") return "issuer must be a string"
    const label = account ?? username
    if (typeof label !== "string") {
      return account === undefined || account === null ? "user.username must be a string" : "account must be a string"
    }
    return { userId: id, issuer, account: label, totp: { digits, period, algorithm } as Totp.Options }
  } catch {
    // a user or options whose getter or Proxy trap throws
    return "user and options must be objects whose fields can be read"
  }
}

/**
 * Starts enrolling a user: a new secret, stored unconfirmed (it replaces an unconfirmed one), and
 * the `otpauth://` URI to show as a QR code. The options' `digits`, `period` and `algorithm`
 * (default 6, 30 and `"SHA1"`, what every authenticator app reads) are stored with the device and
 * written into the URI: {@link confirm} and the backend check the device's codes with them,
 * whatever the backend's `totp` options say, so the app's codes always log in, and changing
 * options later leaves enrolled devices working. A user with a confirmed device gets
 * {@link AlreadyEnrolled} and keeps it, even one confirmed by a request running at the same time
 * (the store checks and writes in one step). Options `Totp.checkOptions` refuses are an
 * `AuthConfigError`, and so are an `issuer`, an `account` or a `username` that is no string, or a
 * user or options that throw when read: nothing is stored then. A user id the store refuses is a
 * `TotpStoreError`, also before anything is written.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * const page = (user: { readonly id: string; readonly username: string }) =>
 *   Effect.map(TotpBackend.enrol(user, { issuer: "Example" }), ({ uri }) => Redacted.value(uri)) // → a QR code
 * ```
 *
 * @since 0.2.0
 * @category enrolment
 */
export const enrol = (
  user: { readonly id: string; readonly username: string },
  options: Totp.Options & { readonly issuer: string; readonly account?: string | undefined }
): Effect.Effect<
  { readonly secret: Redacted.Redacted<string>; readonly uri: Redacted.Redacted<string> },
  AlreadyEnrolled | AuthError.AuthConfigError | TotpStore.TotpStoreError,
  TotpStore.TotpStore
> =>
  Effect.gen(function*() {
    yield* Totp.checkOptions(options, "TotpBackend.enrol")
    const input = enrolmentOf(user, options)
    if (typeof input === "string") {
      return yield* new AuthError.AuthConfigError({ message: `TotpBackend.enrol: ${input}` })
    }
    const store = yield* TotpStore.TotpStore
    // Replacing a confirmed device took no code: anyone holding only the password (an enrolment
    // page needs a session, not a second factor, since the user has none yet) wiped the user's
    // working device with one request and could then confirm one of their own. The store's save
    // checks and writes in one step: a get here, then a save, let a device confirmed in between
    // be replaced.
    const secret = Totp.generateSecret()
    const parameters = enrolledWith(input.totp)
    if (!(yield* store.save({ userId: input.userId, secret, ...parameters }))) {
      return yield* new AlreadyEnrolled({ userId: input.userId })
    }
    return { secret, uri: Totp.uri({ ...parameters, secret, issuer: input.issuer, account: input.account }) }
  })

/**
 * Finishes an enrolment with the first code the user's app shows: marks the device confirmed,
 * records the code's step as used, and answers `count` (default 10) new recovery codes to show
 * once (only their hashes are stored, in the same step as the confirmation: a confirmed device
 * always has the codes made for it). A wrong code fails with {@link InvalidCode}, and so does
 * one for a device already confirmed, or one checked against a device enrolled anew meanwhile
 * (nothing is confirmed then). A code sent while the device's throttle waits (`throttleFactor`,
 * as {@link Options} has it: give both the same) is not checked: {@link Throttled}, with the
 * wait. The code is checked with the parameters the device was enrolled with; the options'
 * `window` applies (and their `digits`, `period` and `algorithm` only to a device stored without
 * its own). Options `Totp.checkOptions` refuses, a `count` that is not an integer from 1 to 100,
 * or a bad `throttleFactor`, fail with `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * const finish = (userId: string, code: string) =>
 *   Effect.map(TotpBackend.confirm(userId, code), (codes) => codes.map(Redacted.value))
 * ```
 *
 * @since 0.2.0
 * @category enrolment
 */
export const confirm = (
  userId: string,
  code: string | Redacted.Redacted<string>,
  options: Totp.Options & {
    readonly count?: number | undefined
    readonly throttleFactor?: Duration.DurationInput | undefined
  } = {}
): Effect.Effect<
  ReadonlyArray<Redacted.Redacted<string>>,
  InvalidCode | Throttled | AuthError.AuthConfigError | TotpStore.TotpStoreError,
  TotpStore.TotpStore
> =>
  Effect.gen(function*() {
    yield* Totp.checkOptions(options, "TotpBackend.confirm")
    // (an untyped caller's number would die in the error's own Schema; an object is not shown, as
    // String() of it may throw: Object.create(null) has no toString, a Proxy's traps may throw)
    if (typeof userId !== "string") {
      const shown = userId !== null && (typeof userId === "object" || typeof userId === "function") ? "" : String(userId)
      return yield* new InvalidCode({ userId: shown })
    }
    // before the code is spent: a bad count must not confirm anything
    yield* checkCount(options.count, "TotpBackend.confirm")
    const factor = yield* Throttle.factorMillis(options.throttleFactor, "TotpBackend.confirm")
    const store = yield* TotpStore.TotpStore
    const device = yield* store.get(userId)
    if (Option.isNone(device)) return yield* new InvalidCode({ userId })
    const now = yield* Clock.currentTimeMillis
    // The throttle holds here too: six digits are as guessable at enrolment as at login.
    const wait = yield* Throttle.admit(store, device.value, factor, now)
    if (wait !== undefined) return yield* new Throttled({ userId, retryAfter: Duration.millis(wait) })
    const typed = typedCode(code)
    const step = typed === undefined
      ? Option.none()
      : Totp.verify(device.value.secret, typed, now, codeOptions(device.value, options, device.value.lastStep))
    if (Option.isNone(step)) return yield* new InvalidCode({ userId })
    // One compare-and-set on the secret just checked: a device enrolled anew in between (its
    // secret unseen by this user, perhaps someone else's) is not confirmed by this code. The step
    // is spent and the recovery codes stored together with the confirmation: no used step on an
    // unconfirmed device, no confirmed device without recovery codes (were they stored after,
    // a store failure or an interruption in between would leave one).
    const codes = Totp.generateRecoveryCodes(options.count)
    const confirmed = yield* store.confirm(userId, {
      secret: device.value.secret,
      step: step.value,
      recoveryCodes: codes.map(Totp.hashRecoveryCode)
    })
    if (!confirmed) return yield* new InvalidCode({ userId })
    yield* Throttle.accepted(store, userId, factor)
    return codes
  })

const checkCount = (count: number | undefined, module: string): Effect.Effect<void, AuthError.AuthConfigError> =>
  count === undefined || (Number.isSafeInteger(count) && count >= 1 && count <= 100)
    ? Effect.void
    : Effect.fail(new AuthError.AuthConfigError({ message: `${module}: count must be an integer from 1 to 100` }))

/**
 * Replaces the user's recovery codes by `count` (default 10; an integer from 1 to 100, else an
 * `AuthConfigError`) new ones; answers them, to show once.
 *
 * @example
 * ```ts
 * import * as TotpBackend from "effect-auth/backends/TotpBackend"
 *
 * const regenerate = (userId: string) => TotpBackend.newRecoveryCodes(userId)
 * ```
 *
 * @since 0.2.0
 * @category enrolment
 */
export const newRecoveryCodes = (
  userId: string,
  count?: number
): Effect.Effect<
  ReadonlyArray<Redacted.Redacted<string>>,
  AuthError.AuthConfigError | TotpStore.TotpStoreError,
  TotpStore.TotpStore
> =>
  Effect.gen(function*() {
    // Array.from threw a RangeError for a negative count; zero would wipe every code
    yield* checkCount(count, "TotpBackend.newRecoveryCodes")
    const store = yield* TotpStore.TotpStore
    const codes = Totp.generateRecoveryCodes(count)
    yield* store.setRecoveryCodes(userId, codes.map(Totp.hashRecoveryCode))
    return codes
  })
