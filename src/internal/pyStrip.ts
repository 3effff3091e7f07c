// Python's str.isspace() characters (Unicode 14, Python 3.11): not JavaScript's trim() set. Python
// counts the separators U+001C..U+001F and NEL (U+0085) as whitespace, and not the BOM (U+FEFF).
const PY_SPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/

/**
 * Python's `str.strip()` with no argument, where Django strips input (`normalize_email`,
 * `CommonPasswordValidator`). A scan from each end, not a regex: `\s+$` backtracks
 * quadratically over inner runs of spaces.
 *
 * @internal
 */
export const pyStrip = (s: string): string => {
  let start = 0
  let end = s.length
  while (start < end && PY_SPACE.test(s[start]!)) start++
  while (end > start && PY_SPACE.test(s[end - 1]!)) end--
  return s.slice(start, end)
}
