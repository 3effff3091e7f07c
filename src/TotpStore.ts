/**
 * Where each user's authenticator (TOTP device) and recovery codes live, for `TotpBackend`:
 * the secret, whether the user confirmed the enrolment with a first code, the last time step
 * used (replay protection) and the hashes of the unused recovery codes.
 *
 * `useStep` and `useRecoveryCode` are atomic (compare-and-set, delete-if-present), so two
 * concurrent logins with the same code or recovery code succeed once. `SqlTotpStore` keeps
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
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

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
}

/**
 * A store operation that failed (the database could not be reached or answered garbage).
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
 * What a store offers.
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
  /** Enrols (or re-enrols) a device: unconfirmed, no step used. */
  readonly save: (input: { readonly userId: string; readonly secret: Redacted.Redacted<string> }) => Effect.Effect<void, TotpStoreError>
  /** Marks the device confirmed. Answers whether there was one. */
  readonly confirm: (userId: string) => Effect.Effect<boolean, TotpStoreError>
  /** Records `step` as used if it is later than the last one; answers whether it was (atomic). */
  readonly useStep: (userId: string, step: number) => Effect.Effect<boolean, TotpStoreError>
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
  return {
    get: (userId) => Effect.sync(() => Option.fromNullable(devices.get(userId))),
    save: ({ secret, userId }) =>
      Effect.sync(() => {
        devices.set(userId, { userId, secret, confirmed: false, lastStep: -1 })
      }),
    confirm: (userId) =>
      Effect.sync(() => {
        const device = devices.get(userId)
        if (device !== undefined) devices.set(userId, { ...device, confirmed: true })
        return device !== undefined
      }),
    useStep: (userId, step) =>
      Effect.sync(() => {
        const device = devices.get(userId)
        if (device === undefined || step <= device.lastStep) return false
        devices.set(userId, { ...device, lastStep: step })
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
  }
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
