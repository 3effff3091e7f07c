/**
 * Parsing and normalizing DNs (RFC 4514), to compare group DNs from configuration with the ones a
 * directory returns (which may differ in case, spacing and escaping: OpenLDAP answers
 * `uid=\2Cx` for `uid=\,x`).
 *
 * @internal
 */
import * as Option from "effect/Option"
import { escapeDnValue } from "./escape.js"

/** One attribute type and value; the value is unescaped. */
type Ava = readonly [type: string, value: string]

const attributeType = /^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)$/
const hexPair = /^[0-9A-Fa-f]{2}$/
const escapable = new Set([" ", "\"", "#", "+", ",", ";", "<", "=", ">", "\\"])

/**
 * Splits a DN into RDNs of attribute type/value pairs, unescaping values. Lenient where servers
 * are (`;` as separator, spaces around separators, quoted values); `None` when malformed.
 *
 * @internal
 */
export const parseDn = (dn: string): Option.Option<ReadonlyArray<ReadonlyArray<Ava>>> => {
  const n = dn.length
  let i = 0
  const skipSpaces = () => {
    while (i < n && dn[i] === " ") i++
  }
  const rdns: Array<Array<Ava>> = []
  let rdn: Array<Ava> = []
  skipSpaces()
  if (i === n) return Option.some([])
  for (;;) {
    skipSpaces()
    const typeStart = i
    while (i < n && dn[i] !== "=") i++
    if (i === n) return Option.none()
    const type = dn.slice(typeStart, i).trim()
    if (!attributeType.test(type)) return Option.none()
    i++
    skipSpaces()
    const bytes: Array<number> = []
    // unescaped trailing spaces are not part of the value
    let significant = 0
    const pushChar = (char: string, escaped: boolean) => {
      for (const byte of Buffer.from(char, "utf8")) bytes.push(byte)
      if (escaped || char !== " ") significant = bytes.length
    }
    if (dn[i] === "#") {
      const start = i
      i++
      while (i < n && /[0-9A-Fa-f]/.test(dn[i]!)) i++
      if (i === start + 1 || (i - start - 1) % 2 !== 0) return Option.none()
      // BER-encoded value: compared as its lower-case hex form
      for (const char of dn.slice(start, i).toLowerCase()) pushChar(char, true)
    } else if (dn[i] === "\"") {
      i++
      while (i < n && dn[i] !== "\"") {
        if (dn[i] === "\\") {
          if (i + 1 >= n) return Option.none()
          pushChar(dn[i + 1]!, true)
          i += 2
        } else {
          const char = String.fromCodePoint(dn.codePointAt(i)!)
          pushChar(char, true)
          i += char.length
        }
      }
      if (i === n) return Option.none()
      i++
    } else {
      while (i < n && dn[i] !== "," && dn[i] !== ";" && dn[i] !== "+") {
        if (dn[i] === "\\") {
          const pair = dn.slice(i + 1, i + 3)
          if (hexPair.test(pair)) {
            bytes.push(Number.parseInt(pair, 16))
            significant = bytes.length
            i += 3
          } else if (i + 1 < n && escapable.has(dn[i + 1]!)) {
            pushChar(dn[i + 1]!, true)
            i += 2
          } else {
            return Option.none()
          }
        } else if (dn[i] === "\"") {
          return Option.none()
        } else {
          const char = String.fromCodePoint(dn.codePointAt(i)!)
          pushChar(char, false)
          i += char.length
        }
      }
    }
    rdn.push([type, Buffer.from(bytes.slice(0, significant)).toString("utf8")])
    skipSpaces()
    if (i === n) {
      rdns.push(rdn)
      return Option.some(rdns)
    }
    const separator = dn[i]
    i++
    if (separator === "," || separator === ";") {
      rdns.push(rdn)
      rdn = []
    } else if (separator !== "+") {
      return Option.none()
    }
  }
}

/**
 * The value of a DN's first RDN, unescaped (its first attribute's, when it has several): a group's
 * name as django-auth-ldap names it (`cn=R&D\2C Paris,ou=groups,...` is `R&D, Paris`). `None`
 * when the DN is malformed or empty.
 *
 * @internal
 */
export const firstRdnValue = (dn: string): Option.Option<string> =>
  Option.flatMap(parseDn(dn), (rdns) => Option.fromNullable(rdns[0]?.[0]?.[1]))

/**
 * A canonical string for comparing DNs: attribute types and values in lower case, runs of spaces
 * in values collapsed, multi-valued RDNs sorted, values re-escaped one way. Good for the
 * case-insensitive naming attributes groups and people use (cn, uid, ou, dc); `None` when the
 * DN is malformed.
 *
 * @internal
 */
export const normalizeDn = (dn: string): Option.Option<string> =>
  Option.map(parseDn(dn), (rdns) =>
    rdns
      .map((rdn) =>
        rdn
          .map(([type, value]) => `${type.toLowerCase()}=${escapeDnValue(value.toLowerCase().replace(/ +/g, " ").trim())}`)
          .sort()
          .join("+")
      )
      .join(","))
