import { assignedAfterUnicode14, mapAsUnicode14 } from "./unicode14.js"

const lower = (s: string): string => s.toLowerCase()

// The two characters both Unicodes assign whose case properties moved after 14.0, which decide
// a capital sigma's form next to them: U+0295 (ʕ) is a cased letter (Ll) to Python 3.11 and not
// to Unicode 17; U+1171E is a nonspacing mark (case-ignorable) there and a spacing one here.
const CASED_IN_14 = 0x295
const CASE_IGNORABLE_IN_14 = 0x1171e
const SIGMA = "\u03a3"

const isCased = (codePoint: number, character: string): boolean =>
  codePoint === CASED_IN_14 ||
  (codePoint !== CASE_IGNORABLE_IN_14 && !assignedAfterUnicode14(codePoint) && /\p{Cased}/u.test(character))
const isCaseIgnorable = (codePoint: number, character: string): boolean =>
  codePoint === CASE_IGNORABLE_IN_14 ||
  (codePoint !== CASED_IN_14 && !assignedAfterUnicode14(codePoint) && /\p{Case_Ignorable}/u.test(character))

// Python's `handle_capital_sigma`: final (ς) after a cased letter and any case-ignorables, unless
// a cased letter follows after any case-ignorables.
const finalSigma = (characters: ReadonlyArray<string>, at: number): boolean => {
  const cased = (i: number) => isCased(characters[i]!.codePointAt(0)!, characters[i]!)
  const ignorable = (i: number) => isCaseIgnorable(characters[i]!.codePointAt(0)!, characters[i]!)
  let before = at - 1
  while (before >= 0 && ignorable(before)) before--
  if (before < 0 || !cased(before)) return false
  let after = at + 1
  while (after < characters.length && ignorable(after)) after++
  return after === characters.length || !cased(after)
}

// Character by character: a capital sigma's form is the only context-dependent lowercase mapping.
const lowerAroundSigmas = (s: string): string => {
  const characters = Array.from(s)
  let out = ""
  for (let i = 0; i < characters.length; i++) {
    const c = characters[i]!
    if (c === SIGMA) out += finalSigma(characters, i) ? "\u03c2" : "\u03c3"
    else out += assignedAfterUnicode14(c.codePointAt(0)!) ? c : c.toLowerCase()
  }
  return out
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
