import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, ParseResult, Redacted, Schema } from "effect"
import { Credentials } from "../src/index.js"
import * as Direct from "../src/internal/credentialsDecoder.js"
import * as TotpBackend from "../src/backends/TotpBackend.js"

// The fold decodes with these options (src/internal/compiledBackend.ts).
const options = { onExcessProperty: "error", errors: "first" } as const

const schemas = {
  UsernamePassword: Credentials.UsernamePassword,
  Token: Credentials.Token,
  RemoteUser: Credentials.RemoteUser
} as const

// Values around every limit the Schemas set, of every type the decoders branch on.
const stringAround = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom(0, 1, 149, 150, 151, 254, 255, 256, 4095, 4096, 4097, 8191, 8192, 8193).map((n) => "x".repeat(n)),
  fc.constantFrom("\u{1F600}".repeat(75), "\u{1F600}".repeat(76))
)
const value = fc.oneof(
  stringAround,
  stringAround.map((text) => Redacted.make(text)),
  fc.constantFrom(undefined, null, 0, 42, true, [], {}, ["alice"])
)
const key = fc.constantFrom("username", "password", "token", "remoteUser", "extra", "__proto__")
// Records near the Schema's own shape (its fields, each maybe missing, sometimes an extra key),
// and records of any of the known keys.
const inputFor = (fields: ReadonlyArray<string>) => {
  const own = fc.record(Object.fromEntries(fields.map((field) => [field, value])), { requiredKeys: [] })
  const extra = fc.option(fc.tuple(key, value), { freq: 4 })
  const near = fc.tuple(own, extra).map(([r, e]) => (e === null ? r : { ...r, [e[0]]: e[1] }))
  const any = fc.array(fc.tuple(key, value), { maxLength: 3 }).map((entries) => Object.fromEntries(entries))
  return fc.oneof(
    { weight: 8, arbitrary: near },
    { weight: 2, arbitrary: any },
    { weight: 1, arbitrary: fc.constantFrom(undefined, null, "alice", 42, [], Redacted.make("x")) },
    // a symbol key is an excess key too
    { weight: 1, arbitrary: near.map((r) => ({ ...r, [Symbol.for("extra")]: "x" })) },
    // and so are keys that are not enumerable, string or symbol
    {
      weight: 1,
      arbitrary: fc.tuple(near, fc.constantFrom<PropertyKey>("hidden", Symbol.for("hidden"))).map(([r, hidden]) =>
        Object.defineProperty({ ...r }, hidden, { value: "x", enumerable: false })
      )
    }
  )
}

// Decoded values compared with secrets opened: Redacted has no structural equality of its own here.
const open = (decoded: unknown): unknown =>
  Object.fromEntries(
    Object.entries(decoded as Record<string, unknown>).map(([k, v]) => [k, Redacted.isRedacted(v) ? `redacted:${Redacted.value(v)}` : v])
  )

describe("direct credentials decoders", () => {
  for (const [name, schema] of Object.entries(schemas)) {
    const direct = Direct.lookup(schema)!
    const decode = ParseResult.decodeUnknownEither(schema as Schema.Schema<unknown, unknown>, options)

    it(`${name} has one`, () => {
      expect(direct).toBeTypeOf("function")
    })

    const fields = Object.keys((schema as unknown as Schema.Struct<Schema.Struct.Fields>).fields)
    it.prop(`${name}: the direct decoder accepts exactly what the Schema accepts, with the same value`, [inputFor(fields)], ([raw]) => {
      const fromSchema = decode(raw)
      const fromDirect = direct(raw)
      if (fromDirect === Direct.invalid) {
        // Exactly: the Schema refuses it too, so the fold's fallback to the Schema changes nothing
        // but the cost.
        expect(Either.isLeft(fromSchema)).toBe(true)
      } else {
        expect(Either.isRight(fromSchema)).toBe(true)
        expect(open(fromDirect)).toEqual(open(Either.getOrThrow(fromSchema)))
      }
    }, { fastCheck: { numRuns: 2000 } })
  }

  it("a Redacted input is kept, a plain string wrapped once", () => {
    const secret = Redacted.make("wonderland")
    const decoded = Direct.lookup(Credentials.UsernamePassword)!({ username: "alice", password: secret }) as Credentials.UsernamePassword
    expect(decoded.password).toBe(secret)
    const wrapped = Direct.lookup(Credentials.Token)!({ token: "t0k" }) as Credentials.Token
    expect(Redacted.value(wrapped.token)).toBe("t0k")
  })
})

describe("Credentials.Username", () => {
  it("counts code points as Django and the user store do: 150 astral characters log in, 151 do not", () => {
    const decode = Schema.decodeUnknownEither(Credentials.UsernamePassword)
    const direct = Direct.lookup(Credentials.UsernamePassword)!
    const astral = (n: number) => "\u{1D4D0}".repeat(n)
    expect(Either.isRight(decode({ username: astral(150), password: "pw" }))).toBe(true)
    expect(direct({ username: astral(150), password: "pw" })).not.toBe(Direct.invalid)
    expect(Either.isLeft(decode({ username: astral(151), password: "pw" }))).toBe(true)
    expect(direct({ username: astral(151), password: "pw" })).toBe(Direct.invalid)
    expect(Either.isLeft(decode({ username: "", password: "pw" }))).toBe(true)
  })
})

describe("Credentials.secret", () => {
  // A wiped Redacted (or an object inheriting from one) passes isRedacted, and reading it threw out
  // of the decoder instead of failing it.
  it("a Redacted that holds nothing is refused, never a throw", () => {
    const wiped = Redacted.make("secret")
    Redacted.unsafeWipe(wiped)
    for (const password of [wiped, Object.create(Redacted.make("x"))]) {
      expect(Either.isLeft(Schema.decodeUnknownEither(Credentials.UsernamePassword)({ username: "alice", password }))).toBe(true)
      expect(Either.isLeft(Schema.decodeUnknownEither(Credentials.Token)({ token: password }))).toBe(true)
      expect(Direct.lookup(Credentials.Token)!({ token: password })).toBe(Direct.invalid)
    }
  })

  it("never shows the rejected value in its message", () => {
    const long = "s3cret".repeat(1000)
    const result = Schema.decodeUnknownEither(Credentials.Password)(long)
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      const message = ParseResult.TreeFormatter.formatErrorSync(result.left)
      expect(message).toContain("a secret of 1 to 4096 characters")
      expect(message).not.toContain("s3cret")
    }
  })

  it("never shows a rejected value that is no string, nor credentials that are no object", () => {
    const cases: ReadonlyArray<readonly [Schema.Schema<any, any>, unknown, string]> = [
      [Credentials.Password, 13572468, "13572468"],
      [Credentials.Password, ["hunter2"], "hunter2"],
      [Credentials.UsernamePassword, { username: "alice", password: 13572468 }, "13572468"],
      [Credentials.UsernamePassword, ["alice", "hunter2"], "hunter2"],
      [Credentials.Token, { token: { value: "ea_live_9f8e7d" } }, "ea_live_9f8e7d"],
      [Credentials.Token, "ea_live_9f8e7d", "ea_live_9f8e7d"],
      [TotpBackend.SecondFactor, { username: "alice", otpToken: 287082 }, "287082"],
      [TotpBackend.SecondFactor, 287082, "287082"]
    ]
    for (const [schema, input, secret] of cases) {
      const result = Schema.decodeUnknownEither(schema)(input)
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(ParseResult.TreeFormatter.formatErrorSync(result.left)).not.toContain(secret)
    }
  })

  it("decodes a string or a Redacted, and encodes back to a Redacted", () => {
    const Pin = Credentials.secret(4)
    expect(Redacted.value(Schema.decodeUnknownSync(Pin)("1234"))).toBe("1234")
    expect(Redacted.value(Schema.decodeUnknownSync(Pin)(Redacted.make("12")))).toBe("12")
    expect(Either.isLeft(Schema.decodeUnknownEither(Pin)(""))).toBe(true)
    expect(Either.isLeft(Schema.decodeUnknownEither(Pin)(Redacted.make("12345")))).toBe(true)
    expect(Either.isLeft(Schema.decodeUnknownEither(Pin)(1234))).toBe(true)
  })
})
