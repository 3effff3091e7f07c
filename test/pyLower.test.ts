import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { pyLower } from "../src/internal/pyLower.js"
import { assignedAfterUnicode14 } from "../src/internal/unicode14.js"

// Python 3.11's `str.lower()` (Unicode 14.0) of strings where a capital sigma's form depends on
// U+0295 (cased there) or U+1171E (case-ignorable there), as printed by Debian's python3.11.
const python: ReadonlyArray<readonly [string, string]> = [
  ["AʕΣ", "aʕς"],
  ["ʕΣ", "ʕς"],
  ["ʕΣa", "ʕσa"],
  ["ʕaΣ'", "ʕaς'"],
  ["ʕa'Σ'b", "ʕa'σ'b"],
  ["ʕ\u{1171e}Σ", "ʕ\u{1171e}ς"],
  ["AΣ\u{1171e}", "aς\u{1171e}"],
  ["ʕΣΣ", "ʕσς"],
  ["ʕ\u{10400}Σ", "ʕ\u{10428}ς"],
  ["ʕ·Σ·", "ʕ·ς·"],
  ["ʕΣxʕΣxʕΣx", "ʕσxʕσxʕσx"],
  ["ΣʕΣ", "σʕς"],
  ["ʕ\ua7cbΣ", "ʕ\ua7cbσ"],
  ["ʕİΣ", "ʕi̇ς"]
]

// The law's other side: Python's `handle_capital_sigma`, one code point at a time over Unicode 14's
// properties, every other code point lowered on its own (how pyLower read these strings before it
// lowered the text between the sigmas in runs).
const cased = (c: string) => {
  const p = c.codePointAt(0)!
  return p === 0x295 || (p !== 0x1171e && !assignedAfterUnicode14(p) && /\p{Cased}/u.test(c))
}
const ignorable = (c: string) => {
  const p = c.codePointAt(0)!
  return p === 0x1171e || (p !== 0x295 && !assignedAfterUnicode14(p) && /\p{Case_Ignorable}/u.test(c))
}
const oneByOne = (s: string): string => {
  const cs = Array.from(s)
  return cs.map((c, i) => {
    if (c !== "\u03a3") return assignedAfterUnicode14(c.codePointAt(0)!) ? c : c.toLowerCase()
    let before = i - 1
    while (before >= 0 && ignorable(cs[before]!)) before--
    let after = i + 1
    while (after < cs.length && ignorable(cs[after]!)) after++
    return before >= 0 && cased(cs[before]!) && (after === cs.length || !cased(cs[after]!)) ? "ς" : "σ"
  }).join("")
}

// Sigmas, the two moved characters, cased and case-ignorable neighbours, astral letters, lone
// surrogates and a character Unicode 14 had not assigned.
const pieces = [
  "Σ", "ʕ", "\u{1171e}", "'", "·", "\u0301", "a", "A", "Ω", "1", " ", "\u{10400}", "\u{10428}",
  "\ud800", "\udc00", "\ua7cb", "İ", "ß", "\u00ad", "\u200d", "\u{1e900}", "\u0345", "ǅ"
]
const sigmaText = fc.array(fc.constantFrom(...pieces), { maxLength: 16 }).map((parts) => "ʕ" + parts.join(""))

describe("pyLower", () => {
  it("lowers a capital sigma beside U+0295 or U+1171E as Python 3.11 does", () => {
    expect(python.map(([s]) => pyLower(s))).toEqual(python.map(([, lowered]) => lowered))
  })

  it.prop("the text around the sigmas lowered in runs equals Python's rule applied a code point at a time", [sigmaText], ([s]) => {
    expect(pyLower(s)).toBe(oneByOne(s))
  })
})
