// Django counts `max_length` in code points (Python `len`), where JavaScript's `length` counts
// UTF-16 units: a name of 150 astral characters (300 units) is 150 characters to Django.

/**
 * Whether `s` has `min` to `max` code points. Counting them is needed only past `max` UTF-16
 * units. @internal
 */
export const codePointsWithin = (s: string, min: number, max: number): boolean =>
  s.length >= min && (s.length <= max || (s.length <= 2 * max && Array.from(s).length <= max))
