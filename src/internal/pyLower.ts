import { mapAsUnicode14 } from "./unicode14.js"

const lower = (s: string): string => s.toLowerCase()

/**
 * Python's `str.lower()` as Django runs it here (Python 3.11, Unicode 14.0): a character its
 * Unicode has not assigned keeps its case, where JavaScript's newer tables would lower it (e.g.
 * U+A7CB). The text between such characters is lowered as a whole, so context rules (Greek final
 * sigma) apply as in Python, to which those characters are neither cased nor case-ignorable.
 *
 * @internal
 */
export const pyLower = (s: string): string => mapAsUnicode14(s, lower)
