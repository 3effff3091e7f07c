import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc, Schema } from "effect"
import { User } from "../src/index.js"
import { isUserId } from "../src/internal/userId.js"

// Lengths at the bounds (in UTF-16 units, as the Schema counts them), surrogate pairs that
// straddle the upper bound, and values that are not strings at all.
const candidate = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom(0, 1, 2, 254, 255, 256, 1000).map((n) => "7".repeat(n)),
  fc.constantFrom("\u{1F600}".repeat(127), "\u{1F600}".repeat(128), "x" + "\u{1F600}".repeat(127)),
  fc.anything()
)

describe("User.UserId: the direct check that getUser paths use", () => {
  it.prop("accepts exactly what Schema.is(User.UserId) accepts", [candidate], ([input]) => {
    expect(isUserId(input)).toBe(Schema.is(User.UserId)(input))
  })

  it("draws the line where the Schema does", () => {
    expect(isUserId("")).toBe(false)
    expect(isUserId("1")).toBe(true)
    expect(isUserId("7".repeat(255))).toBe(true)
    expect(isUserId("7".repeat(256))).toBe(false)
    expect(isUserId(42)).toBe(false)
    expect(Schema.is(User.UserId)("7".repeat(256))).toBe(false)
  })
})
