// How the CSRF check reads an HTML form's `csrfmiddlewaretoken`, compared with Django itself:
// `QueryDict(body).get("csrfmiddlewaretoken", "")`, as `CsrfViewMiddleware` reads `request.POST`.
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { fieldOf, maxFields } from "../src/internal/http/formBody.js"
import { djangos, runDjango } from "./utils/django.js"

const field = "csrfmiddlewaretoken"
const tricky = [
  "", "&", "&&", "=", `${field}`, `${field}=`, `${field}=abc`, `a=1&${field}=abc&b=2`,
  `${field}=first&${field}=last`, `${field}=last&${field}=`, `${field}=a+b`, `${field}=a%2Bb`, `${field}=%41%zz%`,
  `csrf%6Diddlewaretoken=encoded-name`, `csrf%6diddlewaretoken=lower-hex`, `csrfmiddleware+token=space`,
  `${field}=%C3%A9`, `${field}=%C3`, `${field}=%C3é`, `${field}=%E2%82`, `${field}=%F0%9F%98%80`, `${field}=é`,
  `${field}=a=b=c`, `${field};x=1`, `x=1;${field}=semicolon`, ` ${field}=leading-space`, `${field} =trailing-space`,
  `${field.toUpperCase()}=upper`, `%00${field}=nul`, `${field}=%00`,
  // the field limit, on either side of it
  `${"a=1&".repeat(maxFields - 1)}${field}=at-the-limit`,
  `${"a=1&".repeat(maxFields)}${field}=past-the-limit`,
  `${"&".repeat(maxFields - 1)}${field}=empty-fields-count`,
  `${"&".repeat(maxFields)}${field}=empty-fields-count-past`
]

const DJANGO = `
from django.http import QueryDict
from django.core.exceptions import TooManyFieldsSent
def read(body):
    try:
        return QueryDict(body.encode("utf-8")).get("csrfmiddlewaretoken", "")
    except TooManyFieldsSent:
        return None
print(json.dumps([read(b) for b in data]))
`

const piece = fc.constantFrom(
  field, "csrf", "middlewaretoken", "&", "=", "+", "%", "%41", "%6D", "%C3", "%A9", "%zz", "%2", "%26", "%3D",
  "%2B", "é", "a", "tok", ";", " ", "%F0%9F", "%98%80", "😀"
)
const text = (maxLength: number) => fc.array(piece, { maxLength }).map((parts) => parts.join(""))
const name = fc.oneof(fc.constantFrom(field, "csrf%6Diddlewaretoken", "csrf%6diddlewaretoken", `${field}%zz`, "a"), text(4))
const pair = fc.tuple(name, fc.option(text(6))).map(([n, v]) => (v === null ? n : `${n}=${v}`))
const random = fc.sample(fc.array(pair, { maxLength: 5 }).map((pairs) => pairs.join("&")), { numRuns: 2000, seed: 11 })

describe("the form's csrfmiddlewaretoken", () => {
  it("is the field's last value, empty when absent, unread past the field limit", () => {
    expect(fieldOf(`a=1&${field}=x&${field}=y`)).toBe("y")
    expect(fieldOf("a=1")).toBe("")
    expect(fieldOf(`${"a&".repeat(maxFields)}${field}=x`)).toBeUndefined()
    expect(fieldOf(`${field}=%41%zz`)).toBe("A%zz")
  })
})

for (const django of djangos) {
  describe(`against Django ${django.version}'s request.POST`, () => {
    it("reads the field Django reads, on tricky and random bodies", () => {
      const inputs = [...tricky, ...random]
      const theirs: Array<string | null> = runDjango(DJANGO, inputs, { django })
      expect(inputs.filter((input, i) => (fieldOf(input) ?? null) !== theirs[i]).map((input) => [input.slice(0, 80), fieldOf(input), theirs[inputs.indexOf(input)]])).toEqual([])
      // The comparison can fail: some bodies carry a value, some none, some too many fields.
      expect(theirs.filter((x) => x !== null && x !== "").length).toBeGreaterThan(100)
      expect(theirs.filter((x) => x === "").length).toBeGreaterThan(100)
      expect(theirs.filter((x) => x === null).length).toBe(2)
    })
  })
}
