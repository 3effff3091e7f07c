import { describe, expect, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import * as Option from "effect/Option"
import { EqualityFilter, FilterParser } from "ldapts"
import * as LdapBackend from "../src/backends/LdapBackend.js"
import { normalizeDn, parseDn } from "../src/internal/ldap/dn.js"
import { escapeDnValue, escapeFilterValue, fillTemplate } from "../src/internal/ldap/escape.js"

const payloads = ["*)(uid=*", "*", "admin)(|(uid=*", "a\u0000b", "back\\slash", "(paren)", "\\2a", "x*y", "é*ü", "$&$1"]

describe("escapeFilterValue (RFC 4515)", () => {
  it("escapes the filter specials and NUL as \\xx", () => {
    expect(escapeFilterValue("*)(uid=*")).toBe("\\2a\\29\\28uid=\\2a")
    expect(escapeFilterValue("admin)(|(uid=*")).toBe("admin\\29\\28|\\28uid=\\2a")
    expect(escapeFilterValue("a\u0000b")).toBe("a\\00b")
    expect(escapeFilterValue("a\\b")).toBe("a\\5cb")
    expect(escapeFilterValue("tab\there\u007f")).toBe("tab\\09here\\7f")
  })

  it("leaves plain and non-ASCII characters alone (ldapts decodes \\xx one byte per character)", () => {
    expect(escapeFilterValue("alice")).toBe("alice")
    expect(escapeFilterValue("Zoë 日本 😀 = , + # ;")).toBe("Zoë 日本 😀 = , + # ;")
  })

  it("is re-exported by the backend module", () => {
    expect(LdapBackend.escapeFilterValue("*")).toBe("\\2a")
    expect(LdapBackend.escapeDnValue(",")).toBe("\\,")
  })

  it("turns every injection payload into one equality filter on the literal value", () => {
    for (const payload of payloads) {
      const filter = FilterParser.parseString(`(uid=${escapeFilterValue(payload)})`)
      expect(filter).toBeInstanceOf(EqualityFilter)
      expect((filter as EqualityFilter).value).toBe(payload)
    }
  })

  it.prop(
    "any value round-trips through ldapts' filter parser as a single equality match",
    [fc.string({ minLength: 1, unit: "binary-ascii" })],
    ([value]) => {
      const filter = FilterParser.parseString(`(&(objectClass=person)(uid=${escapeFilterValue(value)}))`)
      expect(filter.toString()).toMatch(/^\(&\(objectclass=person\)\(uid=[^()*]*\)\)$/i)
      const parsed = FilterParser.parseString(`(uid=${escapeFilterValue(value)})`)
      expect(parsed).toBeInstanceOf(EqualityFilter)
      expect((parsed as EqualityFilter).value).toBe(value)
    }
  )

  it.prop(
    "escaped values never hold an unescaped special",
    [fc.string({ unit: "binary" })],
    ([value]) => {
      const escaped = escapeFilterValue(value)
      expect(escaped).not.toMatch(/[()*\u0000]/)
      // every backslash starts a two-digit hex escape
      expect(escaped.replace(/\\[0-9a-f]{2}/g, "")).not.toContain("\\")
    }
  )
})

describe("escapeDnValue (RFC 4514)", () => {
  it("escapes the DN specials with a backslash", () => {
    expect(escapeDnValue(",+\"\\<>;=")).toBe("\\,\\+\\\"\\\\\\<\\>\\;\\=")
    expect(escapeDnValue("Smith, John")).toBe("Smith\\, John")
  })

  it("escapes a leading # or space and a trailing space, but not inner ones", () => {
    expect(escapeDnValue("#a#b")).toBe("\\#a#b")
    expect(escapeDnValue(" a b ")).toBe("\\ a b\\ ")
    expect(escapeDnValue(" ")).toBe("\\ ")
    expect(escapeDnValue("  ")).toBe("\\ \\ ")
  })

  it("hex-escapes NUL and control characters and keeps non-ASCII", () => {
    expect(escapeDnValue("a\u0000b\nc")).toBe("a\\00b\\0ac")
    expect(escapeDnValue("Zoë 日本")).toBe("Zoë 日本")
  })

  it("keeps a payload inside one attribute value of one RDN", () => {
    for (const payload of ["alice,ou=admins", "alice+uid=bob", "\\61lice", "\"alice\"", "#0c05616c696365", " alice ", "a;b", "<a>"]) {
      const rdns = Option.getOrThrow(parseDn(`uid=${escapeDnValue(payload)},ou=people,dc=example,dc=org`))
      expect(rdns).toHaveLength(4)
      expect(rdns[0]).toEqual([["uid", payload]])
    }
  })

  it.prop(
    "any value parses back as the single value of the first RDN",
    [fc.string({ minLength: 1, unit: "binary" })],
    ([value]) => {
      const rdns = Option.getOrThrow(parseDn(`uid=${escapeDnValue(value)},dc=example,dc=org`))
      expect(rdns).toHaveLength(3)
      expect(rdns[0]).toEqual([["uid", value]])
    }
  )
})

describe("fillTemplate", () => {
  it("fills every placeholder and gives `$` patterns no meaning", () => {
    expect(fillTemplate("(|(uid=%(user)s)(mail=%(user)s))", "$&$1")).toBe("(|(uid=$&$1)(mail=$&$1))")
  })
})

describe("normalizeDn", () => {
  it("ignores case, spaces around separators and the escaping style", () => {
    const a = normalizeDn("CN=Staff , OU=Groups,DC=Example,DC=org")
    const b = normalizeDn("cn=staff,ou=groups,dc=example,dc=org")
    expect(Option.isSome(a) && Option.isSome(b) && a.value === b.value).toBe(true)
    // OpenLDAP answers hex escapes for a DN that was added with backslash escapes
    expect(normalizeDn("uid=\\23a\\2Cb\\2Bc\\22d\\5Ce\\3Cf\\3Eg\\3Bh\\3Di,ou=people")).toEqual(
      normalizeDn("uid=\\#a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\=i,ou=people")
    )
    expect(normalizeDn("cn=b+sn=a,dc=x")).toEqual(normalizeDn("sn=a+cn=b,dc=x"))
  })

  it("tells different DNs apart", () => {
    expect(normalizeDn("cn=staff,dc=example,dc=org")).not.toEqual(normalizeDn("cn=staff2,dc=example,dc=org"))
    expect(normalizeDn("cn=a\\,b,dc=x")).not.toEqual(normalizeDn("cn=a,b=,dc=x"))
  })

  it("rejects malformed DNs", () => {
    for (const dn of ["cn", "cn=a,", "=a", "cn=a\\", "cn=a\\zz", "cn=\"open", "c n=a"]) {
      expect(Option.isNone(normalizeDn(dn))).toBe(true)
    }
  })
})
