import * as Duration from "effect/Duration"
import * as Option from "effect/Option"

/**
 * A duration from options, read as unknown: a typed `DurationInput` can still be a malformed
 * string from a config file (`"5 secondz"`), which `Duration.decode` throws on, or NaN from
 * `Number(process.env.X)` with the variable unset. None for those and for a negative number or
 * string (`-1`, `"-1 hour"`), which `Duration` reads as zero; an infinite one only where
 * `allowInfinite`.
 *
 * @internal
 */
export const nonNegative = (input: unknown, allowInfinite = false): Option.Option<Duration.Duration> => {
  if (typeof input === "number" && !(input >= 0)) return Option.none()
  if (typeof input === "string" && input.trim().startsWith("-")) return Option.none()
  return Option.filter(Duration.decodeUnknown(input), (d) => allowInfinite || Duration.isFinite(d))
}

/** {@link nonNegative}, finite and more than zero: a time bound. @internal */
export const positive = (input: unknown): Option.Option<Duration.Duration> =>
  Option.filter(nonNegative(input), (d) => Duration.greaterThan(d, Duration.zero))
