// django-otp's ThrottlingMixin for the second factor: after n failed attempts in a row, the next
// attempt waits factor × 2^(n−1); a right code clears the count. Unlike django-otp, which counts a
// failure after checking the code, an attempt is counted as failed before its code is checked,
// with a compare-and-set on the state it was admitted on: of concurrent attempts, one is checked,
// so a burst of guesses sent at once gets one guess, not one each.
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { AuthConfigError } from "../AuthError.js"
import type * as TotpStore from "../TotpStore.js"

/** The factor in milliseconds (0: no throttle); a negative or non-finite one is an AuthConfigError. @internal */
export const factorMillis = (
  factor: Duration.DurationInput | undefined,
  module: string
): Effect.Effect<number, AuthConfigError> =>
  Effect.suspend(() => {
    // Effect reads a negative number of milliseconds as zero: here that would be "off" by mistake.
    const decoded = typeof factor === "number" && !(factor >= 0) ? undefined : Duration.decodeUnknown(factor ?? Duration.seconds(1))
    const millis = decoded?._tag === "Some" ? Duration.toMillis(decoded.value) : Number.NaN
    return Number.isFinite(millis) && millis >= 0
      ? Effect.succeed(millis)
      : Effect.fail(new AuthConfigError({ message: `${module}: throttleFactor must be a finite duration of 0 or more` }))
  })

/** How long after its last failure a device with `failures` failures waits. @internal */
export const delayMillis = (factor: number, failures: number): number =>
  failures <= 0 ? 0 : factor * 2 ** Math.min(failures - 1, 40)

const admitted = Effect.succeed(undefined)

/**
 * Admits an attempt on `device` at `now`, counting it as failed (undefined); or answers how many
 * milliseconds (at least 1) until the device takes one again: while the device waits, the rest of
 * its wait; when a concurrent attempt was admitted on the same state first, the wait that attempt
 * starts should it fail (at most: a right code clears it).
 * @internal
 */
export const admit = (
  store: TotpStore.Service,
  device: TotpStore.Device,
  factor: number,
  now: number
): Effect.Effect<number | undefined, TotpStore.TotpStoreError> => {
  if (factor === 0) return admitted
  const until = device.failures > 0 ? device.failedAt + delayMillis(factor, device.failures) : 0
  if (now < until) return Effect.succeed(until - now)
  return Effect.map(
    store.recordFailure(device.userId, { failures: device.failures, failedAt: device.failedAt }, now),
    (counted) => counted ? undefined : Math.max(1, delayMillis(factor, device.failures + 1))
  )
}

/** After an accepted code. @internal */
export const accepted = (
  store: TotpStore.Service,
  userId: string,
  factor: number
): Effect.Effect<void, TotpStore.TotpStoreError> => factor === 0 ? Effect.void : store.clearFailures(userId)
