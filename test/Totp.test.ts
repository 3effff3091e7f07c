// TOTP against RFC 6238's published test vectors (appendix B), and the rest of the module's laws.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fc from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Totp from "../src/Totp.js"
import { hostile } from "./utils/hostile.js"

// Appendix B's seeds: the ASCII digits repeated to the hash's length.
const seed = (bytes: number) => Redacted.make(Totp.base32Encode(Buffer.from("1234567890".repeat(7).slice(0, bytes))))
const seeds = { SHA1: seed(20), SHA256: seed(32), SHA512: seed(64) } as const

const vectors: ReadonlyArray<readonly [number, string, string, string]> = [
  [59, "94287082", "46119246", "90693936"],
  [1111111109, "07081804", "68084774", "25091201"],
  [1111111111, "14050471", "67062674", "99943326"],
  [1234567890, "89005924", "91819424", "93441116"],
  [2000000000, "69279037", "90698825", "38618901"],
  [20000000000, "65353130", "77737706", "47863826"]
]

describe("Totp", () => {
  it.each(vectors)("RFC 6238 appendix B at T = %d s", (seconds, sha1, sha256, sha512) => {
    const at = seconds * 1000
    expect(Redacted.value(Totp.generate(seeds.SHA1, at, { digits: 8 }))).toBe(sha1)
    expect(Redacted.value(Totp.generate(seeds.SHA256, at, { digits: 8, algorithm: "SHA256" }))).toBe(sha256)
    expect(Redacted.value(Totp.generate(seeds.SHA512, at, { digits: 8, algorithm: "SHA512" }))).toBe(sha512)
    // and each verifies at its own time step
    expect(Totp.verify(seeds.SHA1, sha1, at, { digits: 8 })).toEqual(Option.some(Totp.counterAt(at)))
    expect(Totp.verify(seeds.SHA512, sha512, at, { digits: 8, algorithm: "SHA512" })).toEqual(Option.some(Totp.counterAt(at)))
  })

  it("six digits are the last six of the eight (RFC 4226's truncation)", () => {
    expect(Redacted.value(Totp.generate(seeds.SHA1, 59_000))).toBe("287082")
  })

  it("the window: ±1 step accepted by default, ±2 refused; `after` refuses used steps", () => {
    const secret = Totp.generateSecret()
    const at = 1_700_000_000_000
    const step = Totp.counterAt(at)
    const codeAt = (s: number) => Totp.generate(secret, s * 30_000 + 1)
    expect(Totp.verify(secret, codeAt(step - 1), at)).toEqual(Option.some(step - 1))
    expect(Totp.verify(secret, codeAt(step + 1), at)).toEqual(Option.some(step + 1))
    expect(Totp.verify(secret, codeAt(step - 2), at)).toEqual(Option.none())
    expect(Totp.verify(secret, codeAt(step + 2), at)).toEqual(Option.none())
    expect(Totp.verify(secret, codeAt(step - 2), at, { window: 2 })).toEqual(Option.some(step - 2))
    expect(Totp.verify(secret, codeAt(step), at, { after: step })).toEqual(Option.none())
    expect(Totp.verify(secret, codeAt(step), at, { after: step - 1 })).toEqual(Option.some(step))
  })

  it("generateSecret: 20 random bytes by default; any size held to 16–1024 bytes, never a throw", () => {
    // base32 without padding: ceil(bytes * 8 / 5) characters
    const length = (bytes?: number) => Redacted.value(Totp.generateSecret(bytes)).length
    expect(length()).toBe(32)
    expect(length(32)).toBe(52)
    // -1 was a RangeError from randomBytes; 8 bytes (64 bits) is below RFC 4226's 128
    for (const bytes of [-1, 0, 8, 15, 16.9]) expect(length(bytes), String(bytes)).toBe(26)
    expect(length(1e9)).toBe(1639)
    for (const bytes of [Number.NaN, Number.POSITIVE_INFINITY, "20" as never]) expect(length(bytes), String(bytes)).toBe(32)
    expect(Redacted.value(Totp.generateSecret())).not.toBe(Redacted.value(Totp.generateSecret()))
  })

  it("malformed codes and secrets never match", () => {
    const secret = Totp.generateSecret()
    for (const code of ["", "12345", "1234567", "abcdef", "12345678901234"]) {
      expect(Totp.verify(secret, code, Date.now())).toEqual(Option.none())
    }
    expect(Totp.verify(Redacted.make("not base32!"), "123456", Date.now())).toEqual(Option.none())
  })

  it("options that cannot make codes, and times that are not finite, match nothing and never throw", () => {
    const secret = Totp.generateSecret()
    const now = Date.now()
    const code = Totp.generate(secret, now)
    // period 0 made every step Infinity (a RangeError from BigInt); a window of 1e9 ran 2e9 HMACs
    for (const options of [{ period: 0 }, { period: -30 }, { digits: 0 }, { window: -1 }, { window: 1e9 }, { algorithm: "MD4" as never }]) {
      expect(Totp.verify(secret, code, now, options)).toEqual(Option.none())
      expect(Effect.runSync(Effect.flip(Totp.checkOptions(options))).message).toMatch(/^Totp: (digits|period|window|algorithm) /)
    }
    for (const time of [Number.NaN, Number.POSITIVE_INFINITY, 1e300]) expect(Totp.verify(secret, code, time)).toEqual(Option.none())
    // Past 2^53 below zero `counter++` no longer moved: the loop never ended.
    for (const time of [-1e300, -1e19, -1]) expect(Totp.verify(secret, code, time)).toEqual(Option.none())
    expect(Totp.verify(secret, code, -1e19, { period: 1 })).toEqual(Option.none())
    // Codes and secrets of untyped callers: a number, a wiped Redacted, a Proxy whose every trap
    // throws (Redacted.isRedacted threw on it).
    const wiped = Redacted.make(code)
    Redacted.unsafeWipe(wiped)
    for (const given of [Number(code), wiped, hostile()]) expect(Totp.verify(secret, given as never, now)).toEqual(Option.none())
    const wipedSecret = Redacted.make(Redacted.value(secret))
    Redacted.unsafeWipe(wipedSecret)
    for (const given of [wipedSecret, hostile()]) expect(Totp.verify(given, code, now)).toEqual(Option.none())
    expect(Totp.hashRecoveryCode(hostile())).toBe(Totp.hashRecoveryCode(""))
    expect(Totp.verify(secret, code, now)).toEqual(Option.some(Totp.counterAt(now)))
    Effect.runSync(Totp.checkOptions({ digits: 8, period: 60, window: 10, algorithm: "SHA256" }))
  })

  // settings() read the options outside any guard: the throw escaped verify and checkOptions.
  it("options that throw when read (a Proxy whose traps throw, a getter) match nothing and are an AuthConfigError", () => {
    const secret = Totp.generateSecret()
    const now = Date.now()
    const code = Totp.generate(secret, now)
    const afterThrows = Object.defineProperty({}, "after", {
      get: () => {
        throw new Error("hostile")
      }
    })
    for (const options of [hostile(), afterThrows]) {
      expect(Totp.verify(secret, code, now, options)).toEqual(Option.none())
    }
    expect(Effect.runSync(Effect.flip(Totp.checkOptions(hostile()))).message).toBe(
      "Totp: options must be an object whose fields can be read"
    )
    expect(Totp.verify(secret, code, now, { after: Totp.counterAt(now) - 2 })).toEqual(Option.some(Totp.counterAt(now)))
  })

  it("base32 round-trips any bytes, and decodes as people type it", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const text = Totp.base32Encode(bytes)
      expect(Option.getOrThrow(Totp.base32Decode(text))).toEqual(Buffer.from(bytes))
      expect(Option.getOrThrow(Totp.base32Decode(text.toLowerCase().replace(/(.{4})/g, "$1 ")))).toEqual(Buffer.from(bytes))
    }))
    expect(Totp.base32Decode("ABC1")).toEqual(Option.none())
    // (from an untyped caller)
    for (const notText of [null, undefined, 42, {}]) expect(Totp.base32Decode(notText as any)).toEqual(Option.none())
  })

  // An email stored with a lone surrogate made encodeURIComponent throw, and TotpBackend.enrol died
  // after it had saved the device.
  it("a lone surrogate in the issuer or the account is U+FFFD in the URI, never a throw", () => {
    const uri = Totp.uri({ secret: Redacted.make("JBSWY3DPEHPK3PXP"), issuer: "Ex\uDC00", account: "b\uD800b@example.com" })
    expect(Redacted.value(uri).startsWith("otpauth://totp/Ex%EF%BF%BD:b%EF%BF%BDb%40example.com?")).toBe(true)
  })

  it("the enrolment URI follows the Key Uri Format and stays Redacted", () => {
    const uri = Totp.uri({ secret: Redacted.make("JBSWY3DPEHPK3PXP"), issuer: "Example Co", account: "alice@example.com" })
    expect(String(uri)).not.toContain("JBSWY3DPEHPK3PXP")
    const parsed = new URL(Redacted.value(uri))
    expect(parsed.protocol).toBe("otpauth:")
    expect(Redacted.value(uri).startsWith("otpauth://totp/Example%20Co:alice%40example.com?")).toBe(true)
    expect(Object.fromEntries(parsed.searchParams)).toEqual({
      secret: "JBSWY3DPEHPK3PXP",
      issuer: "Example Co",
      algorithm: "SHA1",
      digits: "6",
      period: "30"
    })
  })

  // Apps percent-decode the label and split it at its first colon: the Key Uri Format allows none
  // in the issuer or the account. django-otp's config_url strips it from the issuer, and leaves
  // the issuer out when there is none.
  it("a colon is left out of the issuer and the account; an empty issuer leaves out the label prefix and the parameter", () => {
    const secret = Redacted.make("JBSWY3DPEHPK3PXP")
    const read = (issuer: string, account: string) => {
      const uri = new URL(Redacted.value(Totp.uri({ secret, issuer, account })))
      expect(uri.host).toBe("totp")
      const label = decodeURIComponent(uri.pathname.slice(1))
      const colon = label.indexOf(":")
      return {
        label: colon < 0 ? { account: label } : { issuer: label.slice(0, colon), account: label.slice(colon + 1) },
        issuer: uri.searchParams.get("issuer")
      }
    }
    expect(read("ACME:Prod", "alice")).toEqual({ label: { issuer: "ACMEProd", account: "alice" }, issuer: "ACMEProd" })
    expect(read("Example", "dept:alice")).toEqual({ label: { issuer: "Example", account: "deptalice" }, issuer: "Example" })
    expect(read("A&B #1", "a+b@x.y")).toEqual({ label: { issuer: "A&B #1", account: "a+b@x.y" }, issuer: "A&B #1" })
    expect(read("", "alice")).toEqual({ label: { account: "alice" }, issuer: null })
    expect(read(":", "dept:alice")).toEqual({ label: { account: "deptalice" }, issuer: null })
    expect(Redacted.value(Totp.uri({ secret, issuer: "", account: "alice" }))).toBe(
      "otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&algorithm=SHA1&digits=6&period=30"
    )
  })

  it("recovery codes: distinct, 60 random bits each, hashed as typed in any case or grouping", () => {
    const codes = Totp.generateRecoveryCodes(20).map(Redacted.value)
    expect(new Set(codes).size).toBe(20)
    for (const code of codes) expect(code).toMatch(/^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/)
    const code = codes[0]!
    expect(Totp.hashRecoveryCode(code.toUpperCase().replace(/-/g, " "))).toBe(Totp.hashRecoveryCode(code))
    expect(Totp.hashRecoveryCode(code)).not.toBe(Totp.hashRecoveryCode(codes[1]!))
    expect(Totp.hashRecoveryCode(code)).not.toContain(code.replace(/-/g, ""))
  })
})
