import { pyNfkc } from "./pyNfkc.js"

// Django counts `max_length` in code points (Python `len`), where JavaScript's `length` counts
// UTF-16 units: a name of 150 astral characters (300 units) is 150 characters to Django.

/**
 * Whether `s` has `min` to `max` code points. Counting them is needed only past `max` UTF-16
 * units. @internal
 */
export const codePointsWithin = (s: string, min: number, max: number): boolean =>
  s.length >= min && (s.length <= max || (s.length <= 2 * max && Array.from(s).length <= max))

/**
 * Past this many UTF-16 units a string is never a username of 150 characters, whatever NFKC does
 * to it (NFKC's compositions join at most five code points into one). @internal
 */
export const nfkcBound = 1_200

/**
 * NFKC as Django's Python has it (`pyNfkc`), skipped past {@link nfkcBound}: its cost grows with
 * the square of a run of combining marks (a 128 KiB name of them held the event loop for seconds),
 * and a string that long is refused as a username anyway. @internal
 */
export const boundedNfkc = (s: string): string => s.length > nfkcBound ? s : pyNfkc(s)

/**
 * NFC, skipped past {@link nfkcBound} as {@link boundedNfkc} is: the form in which a name an
 * external system vouches for is looked up and compared. Canonically equivalent spellings
 * (`José` composed or decomposed) are one name; compatibility ones (`ªdmin` and `admin`) are not.
 * @internal
 */
export const boundedNfc = (s: string): string => s.length > nfkcBound ? s : s.normalize("NFC")
