import { assignedAfterUnicode14, holdsAssignedAfterUnicode14, mapAsUnicode14 } from "./unicode14.js"

const lower = (s: string): string => s.toLowerCase()

// The two characters both Unicodes assign whose case properties moved after 14.0, which decide
// a capital sigma's form next to them: U+0295 (ʕ) is a cased letter (Ll) to Python 3.11 and not
// to Unicode 17; U+1171E is a nonspacing mark (case-ignorable) there and a spacing one here.
const CASED_IN_14 = 0x295
const CASE_IGNORABLE_IN_14 = 0x1171e
const SIGMA = "\u03a3"

// Sticky, so a code point is tested where it stands in the string, without a copy of it.
const cased = /\p{Cased}/uy
const caseIgnorable = /\p{Case_Ignorable}/uy
const holds = (property: RegExp, s: string, start: number): boolean => {
  property.lastIndex = start
  return property.test(s)
}
const isCased = (s: string, start: number): boolean => {
  const codePoint = s.codePointAt(start)!
  return codePoint === CASED_IN_14 ||
    (codePoint !== CASE_IGNORABLE_IN_14 && !assignedAfterUnicode14(codePoint) && holds(cased, s, start))
}
const isCaseIgnorable = (s: string, start: number): boolean => {
  const codePoint = s.codePointAt(start)!
  return codePoint === CASE_IGNORABLE_IN_14 ||
    (codePoint !== CASED_IN_14 && !assignedAfterUnicode14(codePoint) && holds(caseIgnorable, s, start))
}

// Python's `handle_capital_sigma`: final (ς) after a cased letter and any case-ignorables, unless
// a cased letter follows after any case-ignorables. Read on the string itself, a code point at a
// time from the sigma outwards (`at` is the sigma's index).
const finalSigma = (s: string, at: number): boolean => {
  let before = at
  while (before > 0 && isCaseIgnorable(s, startBefore(s, before))) before = startBefore(s, before)
  if (before === 0 || !isCased(s, startBefore(s, before))) return false
  let after = at + 1
  while (after < s.length && isCaseIgnorable(s, after)) after += codePointLength(s, after)
  return after === s.length || !isCased(s, after)
}

const codePointLength = (s: string, start: number): number => (s.codePointAt(start)! > 0xffff ? 2 : 1)
// Where the code point that ends just before `end` starts: a low surrogate after a high one is
// the second half of a pair, any other unit a code point of its own (as `Array.from` splits).
const startBefore = (s: string, end: number): number => {
  const last = s.charCodeAt(end - 1)
  if (end >= 2 && last >= 0xdc00 && last <= 0xdfff) {
    const first = s.charCodeAt(end - 2)
    if (first >= 0xd800 && first <= 0xdbff) return end - 2
  }
  return end - 1
}

// A capital sigma's form is the only context-dependent lowercase mapping: the text between the
// sigmas is lowered in runs (a 2.5 MB password was lowered a character at a time, seconds of one
// thread), each sigma by its context.
const lowerAroundSigmas = (s: string): string => {
  const lowerRun = holdsAssignedAfterUnicode14(s) ? (run: string) => mapAsUnicode14(run, lower) : lower
  let out = ""
  let from = 0
  for (let at = s.indexOf(SIGMA); at !== -1; at = s.indexOf(SIGMA, from)) {
    out += lowerRun(s.slice(from, at)) + (finalSigma(s, at) ? "\u03c2" : "\u03c3")
    from = at + 1
  }
  return out + lowerRun(s.slice(from))
}

const movedCaseProperties = (s: string): boolean =>
  s.includes(SIGMA) && (s.includes("\u0295") || s.includes("\u{1171e}"))

/**
 * Python's `str.lower()` as Django runs it here (Python 3.11, Unicode 14.0): a character its
 * Unicode has not assigned keeps its case, where JavaScript's newer tables would lower it (e.g.
 * U+A7CB). The text between such characters is lowered as a whole, so context rules (Greek final
 * sigma) apply as in Python, to which those characters are neither cased nor case-ignorable; a
 * capital sigma beside one of the two characters whose case properties changed since 14.0 takes
 * the form Python gives it.
 *
 * @internal
 */
export const pyLower = (s: string): string => movedCaseProperties(s) ? lowerAroundSigmas(s) : mapAsUnicode14(s, lower)
