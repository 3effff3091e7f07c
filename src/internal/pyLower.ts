import { assignedAfterUnicode14 } from "./unicode14.js"

const newer = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i)
    // Every code point in the table is past U+0800: plain text never pays for the lookup.
    if (unit >= 0x800 && assignedAfterUnicode14(s.codePointAt(i)!)) return true
  }
  return false
}

/**
 * Python's `str.lower()` as Django runs it here (Python 3.11, Unicode 14.0): a character its
 * Unicode has not assigned keeps its case, where JavaScript's newer tables would lower it (e.g.
 * U+A7CB). The text between such characters is lowered as a whole, so context rules (Greek final
 * sigma) apply as in Python, to which those characters are neither cased nor case-ignorable.
 *
 * @internal
 */
export const pyLower = (s: string): string => {
  if (!newer(s)) return s.toLowerCase()
  let out = ""
  let segment = ""
  for (const c of s) {
    if (assignedAfterUnicode14(c.codePointAt(0)!)) {
      out += segment.toLowerCase() + c
      segment = ""
    } else segment += c
  }
  return out + segment.toLowerCase()
}
