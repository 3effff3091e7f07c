import { mapAsUnicode14 } from "./unicode14.js"

const nfkc = (s: string): string => s.normalize("NFKC")

/**
 * Python's `unicodedata.normalize("NFKC", s)` as Django runs it here (Python 3.11, Unicode 14.0):
 * a character its Unicode has not assigned stays as it is (U+1CCD6, an outlined `A` to Unicode
 * 16, is no `A` there), where JavaScript's newer tables would fold it. Every character both know
 * normalises the same (Unicode's stability policy).
 *
 * @internal
 */
export const pyNfkc = (s: string): string => mapAsUnicode14(s, nfkc)
