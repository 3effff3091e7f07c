/**
 * Where each user's authenticator (TOTP device) and recovery codes live, for `TotpBackend`:
 * the secret, whether the user confirmed the enrolment with a first code, the last time step
 * used (replay protection), the failed attempts since the last accepted code (the throttle) and
 * the hashes of the unused recovery codes.
 *
 * `useStep` and `useRecoveryCode` are atomic (compare-and-set, delete-if-present), so two
 * concurrent logins with the same code or recovery code succeed once; so are `save` (never over
 * a confirmed device), `confirm` and `useStep` (only on the device whose secret the code was
 * checked against; `confirm` stores the recovery codes with the confirmation) and `recordFailure`
 * (of concurrent attempts on one throttle state, one is checked). `SqlTotpStore` keeps
 * them in SQLite or PostgreSQL; {@link layerMemory} in this process (tests, one instance).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Totp, TotpStore } from "effect-auth"
 *
 * const enrol = (userId: string) =>
 *   Effect.flatMap(TotpStore.TotpStore, (store) => store.save({ userId, secret: Totp.generateSecret() }))
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { textOf } from "./internal/redactedString.js"
import { isUserId } from "./internal/userId.js"
import { collectionOf } from "./internal/collection.js"
import { checker, refuse, Refused, userIdMessage } from "./internal/checkedInput.js"
import { isStorable } from "./internal/wellFormed.js"
import type * as Totp from "./Totp.js"

/**
 * One user's authenticator.
 *
 * @example
 * ```ts
 * import type { TotpStore } from "effect-auth"
 *
 * const confirmed = (device: TotpStore.Device) => device.confirmed
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Device {
  readonly userId: string
  readonly secret: Redacted.Redacted<string>
  /** Set by the first code the user typed after scanning: until then the device is not used to log in. */
  readonly confirmed: boolean
  /** The last time step a code was accepted for (-1: none yet). */
  readonly lastStep: number
  /** Attempts since the last accepted code that were not accepted (django-otp's `throttling_failure_count`). */
  readonly failures: number
  /** When the latest of those attempts began, epoch milliseconds (0: none). */
  readonly failedAt: number
  /**
   * The code parameters the device was enrolled with (what its `otpauth://` URI told the app):
   * codes are checked with them, whatever the backend's options say now. Absent on a device
   * stored without them (enrolled before they were recorded, or saved by a caller that gave
   * none): the backend's `totp` options apply to it.
   *
   * @since 0.4.0
   */
  readonly digits?: number | undefined
  /** See {@link Device.digits}. @since 0.4.0 */
  readonly period?: number | undefined
  /** See {@link Device.digits}. @since 0.4.0 */
  readonly algorithm?: Totp.Algorithm | undefined
  /**
   * How many time steps the user's app runs ahead (+) or behind (−) of this server's clock, as
   * its last accepted code showed (django-otp's `drift`): the backend centres its window there.
   * Absent: 0 (a device never logged in with, or stored before drift was recorded).
   *
   * @since 0.4.0
   */
  readonly drift?: number | undefined
}

/**
 * What {@link Service}'s `save` stores: a user's new secret, and the code parameters the device
 * is enrolled with (`TotpBackend.enrol` gives all three; one left out is not recorded, and the
 * backend's option applies to it).
 *
 * @example
 * ```ts
 * import { Totp, type TotpStore } from "effect-auth"
 *
 * const enrolment: TotpStore.Enrolment = { userId: "1", secret: Totp.generateSecret(), digits: 6, period: 30, algorithm: "SHA1" }
 * ```
 *
 * @since 0.4.0
 * @category models
 */
export interface Enrolment {
  readonly userId: string
  readonly secret: Redacted.Redacted<string>
  readonly digits?: number | undefined
  readonly period?: number | undefined
  readonly algorithm?: Totp.Algorithm | undefined
}

/**
 * The throttle state an attempt was admitted on (see {@link Service}'s `recordFailure`).
 *
 * @example
 * ```ts
 * import type { TotpStore } from "effect-auth"
 *
 * const seen: TotpStore.Throttle = { failures: 0, failedAt: 0 }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Throttle {
  readonly failures: number
  readonly failedAt: number
}

/**
 * A store operation that failed: the database could not be reached or answered garbage, or the
 * input was none a store can hold (see {@link make}: a user id that is none, a step that is no
 * non-negative integer, ...). The message never holds a secret.
 *
 * @example
 * ```ts
 * import { TotpStore } from "effect-auth"
 *
 * const error = new TotpStore.TotpStoreError({ operation: "get", message: "the database did not answer" })
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class TotpStoreError extends Schema.TaggedError<TotpStoreError>("effect-auth/TotpStoreError")(
  "TotpStoreError",
  { operation: Schema.String, message: Schema.String }
) {}

/**
 * What a store offers. Every store checks its input first (see {@link make}): what it cannot hold
 * alike on every engine is a {@link TotpStoreError}, and nothing is written.
 *
 * @example
 * ```ts
 * import type { TotpStore } from "effect-auth"
 *
 * const left = (store: TotpStore.Service, userId: string) => store.recoveryCodesLeft(userId)
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Service {
  readonly get: (userId: string) => Effect.Effect<Option.Option<Device>, TotpStoreError>
  /**
   * Enrols a device (unconfirmed, no step used, no failures, the code parameters given) unless the
   * user has a confirmed one; answers whether it did (atomic: an enrolment racing a confirmation
   * never replaces the device the confirmation confirmed).
   */
  readonly save: (input: Enrolment) => Effect.Effect<boolean, TotpStoreError>
  /**
   * Confirms the unconfirmed device that has this `secret`, records `step` as used and replaces the
   * user's recovery codes by `recoveryCodes` (hashes, `Totp.hashRecoveryCode`), if the step is
   * later than the last one; answers whether it did. All or nothing, in one step: a device enrolled
   * anew since the code was checked has another secret, so it is not confirmed by a code for the
   * old one, and no device is ever confirmed without the codes made for it (a store failure or an
   * interruption halfway would otherwise leave a second factor with no way back).
   */
  readonly confirm: (
    userId: string,
    checked: {
      readonly secret: Redacted.Redacted<string>
      readonly step: number
      readonly recoveryCodes: ReadonlyArray<string>
    }
  ) => Effect.Effect<boolean, TotpStoreError>
  /**
   * Counts an attempt as failed before its code is checked (`failures + 1`, `failedAt = now`), if
   * the device's throttle state is still `seen`; answers whether it was (a compare-and-set: of
   * attempts admitted on one state, one gets through).
   */
  readonly recordFailure: (userId: string, seen: Throttle, now: number) => Effect.Effect<boolean, TotpStoreError>
  /** Clears the failures: a code was accepted. */
  readonly clearFailures: (userId: string) => Effect.Effect<void, TotpStoreError>
  /**
   * Records `step` as used on the confirmed device that has this `secret`, if the step is later
   * than the last one, and with it the app's `drift` when given; answers whether it did (atomic:
   * a compare-and-set, so a device replaced since the code was checked is not used, and the drift
   * is that of the code that used the step).
   */
  readonly useStep: (
    userId: string,
    step: number,
    secret: Redacted.Redacted<string>,
    drift?: number | undefined
  ) => Effect.Effect<boolean, TotpStoreError>
  /** Removes the device and its recovery codes. Answers whether there was one. */
  readonly remove: (userId: string) => Effect.Effect<boolean, TotpStoreError>
  /** Replaces the user's recovery codes by these hashes (`Totp.hashRecoveryCode`). */
  readonly setRecoveryCodes: (userId: string, hashes: ReadonlyArray<string>) => Effect.Effect<void, TotpStoreError>
  /** Deletes the code with this hash if the user has it; answers whether it did (atomic). */
  readonly useRecoveryCode: (userId: string, hash: string) => Effect.Effect<boolean, TotpStoreError>
  readonly recoveryCodesLeft: (userId: string) => Effect.Effect<number, TotpStoreError>
}

/**
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TotpStore } from "effect-auth"
 *
 * const hasDevice = (userId: string) =>
 *   Effect.flatMap(TotpStore.TotpStore, (store) => store.get(userId)).pipe(Effect.map((d) => d._tag === "Some"))
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export class TotpStore extends Context.Tag("effect-auth/TotpStore")<TotpStore, Service>() {}

const sameSecret = (device: Device, secret: Redacted.Redacted<string>) =>
  Redacted.value(device.secret) === Redacted.value(secret)

// --- input -------------------------------------------------------------------------------------

// What an untyped caller may hand over (null, a number, NaN, an object whose getter throws) is
// refused here, before any store sees it: the engines answered it each their own way (a step NaN
// was recorded in memory, matched nothing in SQLite and failed in PostgreSQL), or died.


/** The columns' bounds: `user_id` and `secret` are varchar(255), `code_hash` varchar(64). */
const userIdOf = (raw: unknown): string =>
  isUserId(raw) && isStorable(raw) ? raw : refuse(userIdMessage)

// (the message never shows what was given: it may be the secret)
const secretOf = (raw: unknown): Redacted.Redacted<string> => {
  const text = textOf(raw)
  return text !== undefined && text.length >= 1 && text.length <= 255 && isStorable(text)
    ? Redacted.make(text)
    : refuse("secret must be a Redacted string of 1 to 255 characters, no NUL or lone surrogate")
}

/** A time step, a count or epoch milliseconds: what every engine compares and stores alike. */
const countOf = (field: string, raw: unknown, max = Number.MAX_SAFE_INTEGER): number =>
  Number.isSafeInteger(raw) && (raw as number) >= 0 && (raw as number) <= max
    ? raw as number
    : refuse(`${field} must be an integer from 0 to ${max}`)

// The code parameters, each optional (absent: not recorded), as `Totp.checkOptions` bounds them;
// `period` an integer column, 32 bits on PostgreSQL.
const digitsOf = (raw: unknown): number | undefined =>
  raw === undefined ? undefined : Number.isSafeInteger(raw) && (raw as number) >= 6 && (raw as number) <= 8
    ? raw as number
    : refuse("digits must be an integer from 6 to 8")

const periodOf = (raw: unknown): number | undefined =>
  raw === undefined ? undefined : Number.isSafeInteger(raw) && (raw as number) >= 1 && (raw as number) <= 2_147_483_647
    ? raw as number
    : refuse("period must be an integer from 1 to 2,147,483,647 (seconds)")

const algorithmOf = (raw: unknown): Totp.Algorithm | undefined =>
  raw === undefined || raw === "SHA1" || raw === "SHA256" || raw === "SHA512"
    ? raw
    : refuse("algorithm must be SHA1, SHA256 or SHA512")

// Steps either way, an integer column (32 bits on PostgreSQL).
const driftOf = (raw: unknown): number | undefined =>
  raw === undefined ? undefined : Number.isSafeInteger(raw) && Math.abs(raw as number) <= 2_147_483_647
    ? raw as number
    : refuse("drift must be an integer from -2,147,483,647 to 2,147,483,647")

const hashOf = (raw: unknown): string =>
  typeof raw === "string" && raw.length >= 1 && raw.length <= 64 && isStorable(raw)
    ? raw
    : refuse("a recovery code hash must be a string of 1 to 64 characters, no NUL or lone surrogate")

const hashesOf = (field: string, raw: unknown): ReadonlyArray<string> =>
  // (a string is a collection of its characters: refused, not stored as one code per character)
  collectionOf(raw)?.map(hashOf) ?? refuse(`${field} must be a collection of recovery code hashes`)

const fieldOf = (what: string, raw: unknown, key: string): unknown =>
  typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>)[key] : refuse(`${what} must be an object`)

// A device as a store answers it: code parameters and drift out of the bounds a write is held to
// (a row edited by hand, a store of your own) are the store's garbage, a `TotpStoreError`, where
// they would otherwise match no code and answer the right one as a wrong one (each counted by the
// throttle), as a bad algorithm name already is.
const storedDevice = (found: Option.Option<Device>): Effect.Effect<Option.Option<Device>, TotpStoreError> => {
  try {
    if (Option.isNone(found)) return Effect.succeed(found)
    // `null` is absent, as a store of your own may pass a row's NULL columns through (a device
    // enrolled before the parameters were kept): the device is answered without them.
    const absent = (value: unknown) => value === null ? undefined : value
    const { algorithm: rawAlgorithm, digits: rawDigits, drift: rawDrift, period: rawPeriod, ...rest } = found.value
    const digits = digitsOf(absent(rawDigits))
    const period = periodOf(absent(rawPeriod))
    const algorithm = algorithmOf(absent(rawAlgorithm))
    const drift = driftOf(absent(rawDrift))
    return Effect.succeed(Option.some({
      ...rest,
      ...(digits !== undefined && { digits }),
      ...(period !== undefined && { period }),
      ...(algorithm !== undefined && { algorithm }),
      ...(drift !== undefined && { drift })
    }))
  } catch (error) {
    const message = error instanceof Refused ? error.message : "the device could not be read"
    return Effect.fail(new TotpStoreError({ operation: "get", message: `the stored device is malformed: ${message}` }))
  }
}

// Reads and checks the input of `operation`, then runs it on what was read (see internal/checkedInput).
const checked = checker((operation, message) => new TotpStoreError({ operation, message }))

/**
 * A store that checks every call's input before `store` sees it: a user id (1 to 255 characters),
 * a secret (a `Redacted` string of 1 to 255 characters), code parameters where given (digits 6 to
 * 8, a period of 1 to 2,147,483,647 seconds, a known algorithm), a drift where given (an integer
 * within ±2,147,483,647), a time step, failure count or time that is
 * a non-negative safe integer (a failure count at most 2,147,483,647), recovery code hashes (a
 * collection of strings of 1 to 64 characters), no NUL or lone surrogate in any text. Anything else,
 * as an untyped caller may hand over (`null`, `NaN`, `Infinity`, `1.5`, `"5"`, a plain string for
 * a secret, an object that throws when read), fails with a {@link TotpStoreError} on every store
 * alike, never a defect, and `store` is not asked, so nothing is written. `store` gets plain
 * values, read once. Both stores of this library are built with it; so may stores of your own.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TotpStore } from "effect-auth"
 *
 * // a store of your own: each removal logged, the rest in memory
 * const devices = TotpStore.makeMemory()
 * const store = TotpStore.make({
 *   ...devices,
 *   remove: (userId) => Effect.zipRight(Effect.log(`second factor of ${userId} removed`), devices.remove(userId))
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (store: Service): Service => ({
  get: (userId) =>
    checked("get", () => userIdOf(userId), (id) => Effect.flatMap(store.get(id), (found) => storedDevice(found))),
  save: (input) =>
    checked("save", () => {
      const digits = digitsOf(fieldOf("input", input, "digits"))
      const period = periodOf(fieldOf("input", input, "period"))
      const algorithm = algorithmOf(fieldOf("input", input, "algorithm"))
      return {
        userId: userIdOf(fieldOf("input", input, "userId")),
        secret: secretOf(fieldOf("input", input, "secret")),
        ...(digits !== undefined && { digits }),
        ...(period !== undefined && { period }),
        ...(algorithm !== undefined && { algorithm })
      }
    }, (device) => store.save(device)),
  confirm: (userId, input) =>
    checked("confirm", () => ({
      userId: userIdOf(userId),
      secret: secretOf(fieldOf("checked", input, "secret")),
      step: countOf("step", fieldOf("checked", input, "step")),
      recoveryCodes: hashesOf("recoveryCodes", fieldOf("checked", input, "recoveryCodes"))
    }), ({ userId, ...rest }) => store.confirm(userId, rest)),
  recordFailure: (userId, seen, now) =>
    checked("recordFailure", () => ({
      userId: userIdOf(userId),
      // `failures` is an integer column: 32 bits on PostgreSQL
      seen: {
        failures: countOf("failures", fieldOf("seen", seen, "failures"), 2_147_483_647),
        failedAt: countOf("failedAt", fieldOf("seen", seen, "failedAt"))
      },
      now: countOf("now", now)
    }), (input) => store.recordFailure(input.userId, input.seen, input.now)),
  clearFailures: (userId) => checked("clearFailures", () => userIdOf(userId), (id) => store.clearFailures(id)),
  useStep: (userId, step, secret, drift) =>
    checked(
      "useStep",
      () => ({ userId: userIdOf(userId), step: countOf("step", step), secret: secretOf(secret), drift: driftOf(drift) }),
      (input) => store.useStep(input.userId, input.step, input.secret, input.drift)
    ),
  remove: (userId) => checked("remove", () => userIdOf(userId), (id) => store.remove(id)),
  setRecoveryCodes: (userId, hashes) =>
    checked(
      "setRecoveryCodes",
      () => ({ userId: userIdOf(userId), hashes: hashesOf("hashes", hashes) }),
      (input) => store.setRecoveryCodes(input.userId, input.hashes)
    ),
  useRecoveryCode: (userId, hash) =>
    checked(
      "useRecoveryCode",
      () => ({ userId: userIdOf(userId), hash: hashOf(hash) }),
      (input) => store.useRecoveryCode(input.userId, input.hash)
    ),
  recoveryCodesLeft: (userId) => checked("recoveryCodesLeft", () => userIdOf(userId), (id) => store.recoveryCodesLeft(id))
})

/**
 * A store in this process's memory.
 *
 * @example
 * ```ts
 * import { TotpStore } from "effect-auth"
 *
 * const store = TotpStore.makeMemory()
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemory = (): Service => {
  const devices = new Map<string, Device>()
  const codes = new Map<string, Set<string>>()
  // `make` has checked the input
  return make({
    get: (userId) => Effect.sync(() => Option.fromNullable(devices.get(userId))),
    // Each operation reads and writes in one synchronous step: nothing runs in between.
    save: ({ userId, ...enrolled }) =>
      Effect.sync(() => {
        if (devices.get(userId)?.confirmed === true) return false
        devices.set(userId, { userId, ...enrolled, confirmed: false, lastStep: -1, failures: 0, failedAt: 0 })
        return true
      }),
    confirm: (userId, { recoveryCodes, secret, step }) =>
      Effect.sync(() => {
        const device = devices.get(userId)
        if (device === undefined || device.confirmed || !sameSecret(device, secret) || step <= device.lastStep) {
          return false
        }
        devices.set(userId, { ...device, confirmed: true, lastStep: step })
        codes.set(userId, new Set(recoveryCodes))
        return true
      }),
    recordFailure: (userId, seen, now) =>
      Effect.sync(() => {
        const device = devices.get(userId)
        if (device === undefined || device.failures !== seen.failures || device.failedAt !== seen.failedAt) return false
        devices.set(userId, { ...device, failures: device.failures + 1, failedAt: now })
        return true
      }),
    clearFailures: (userId) =>
      Effect.sync(() => {
        const device = devices.get(userId)
        if (device !== undefined) devices.set(userId, { ...device, failures: 0, failedAt: 0 })
      }),
    useStep: (userId, step, secret, drift) =>
      Effect.sync(() => {
        const device = devices.get(userId)
        if (device === undefined || !device.confirmed || !sameSecret(device, secret) || step <= device.lastStep) {
          return false
        }
        devices.set(userId, { ...device, lastStep: step, ...(drift !== undefined && { drift }) })
        return true
      }),
    remove: (userId) =>
      Effect.sync(() => {
        codes.delete(userId)
        return devices.delete(userId)
      }),
    setRecoveryCodes: (userId, hashes) =>
      Effect.sync(() => {
        codes.set(userId, new Set(hashes))
      }),
    useRecoveryCode: (userId, hash) => Effect.sync(() => codes.get(userId)?.delete(hash) ?? false),
    recoveryCodesLeft: (userId) => Effect.sync(() => codes.get(userId)?.size ?? 0)
  })
}

/**
 * The store in memory, as a layer.
 *
 * @example
 * ```ts
 * import { TotpStore } from "effect-auth"
 *
 * const TotpStoreLive = TotpStore.layerMemory
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TotpStore> = Layer.sync(TotpStore, makeMemory)
