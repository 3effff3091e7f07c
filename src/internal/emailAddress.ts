// Django's `EmailValidator` (5.2, `django.core.validators`), as `createsuperuser` runs it on an
// email through `EmailField.clean`: the address as Django 5.2 reads it, for the CLI's
// `createuser --email`. Django's patterns are `re.IGNORECASE` over Unicode strings, under which
// `[A-Z]` also matches four letters outside ASCII (İ ı ſ K: their case maps land in A-Z); the
// patterns here spell those out instead of relying on JavaScript's case folding, which differs.
import { isIPv4, isIPv6 } from "node:net"

const FOLDED = "\u0130\u0131\u017F\u212A"
const atom = `[-!#$%&'*+/=?^_\`{}|~0-9A-Za-z${FOLDED}]+`
const userPart = new RegExp(
  `^(?:${atom}(?:\\.${atom})*|"(?:[\\x01-\\x08\\x0B\\x0C\\x0E-\\x1F!#-\\[\\]-\\x7F${FOLDED}]|\\\\[\\x01-\\x09\\x0B\\x0C\\x0E-\\x7F${FOLDED}])*")$`,
  "u"
)
// DomainNameValidator's hostname, domain and top-level-domain patterns; `ul` is U+00A1 to U+FFFF.
const ul = "\\u00A1-\\uFFFF"
const domainPart = new RegExp(
  `^[a-zA-Z${ul}0-9](?:[a-zA-Z${ul}0-9-]{0,61}[a-zA-Z${ul}0-9])?` +
    `(?:\\.(?!-)[a-zA-Z${ul}0-9-]{1,63}(?<!-))*` +
    `\\.(?!-)(?:[a-zA-Z${ul}-]{2,63}|[Xx][Nn]--[a-zA-Z0-9${FOLDED}]{1,59})(?<!-)$`,
  "u"
)
const literal = /^\[([A-Fa-f0-9:.]+)\]$/u

// Python's ipaddress: a dotted quad without leading zeros, or an IPv6 address (Django refuses
// one longer than 39 characters before parsing it).
const isAddress = (text: string): boolean =>
  isIPv4(text) || (text.length <= 39 && isIPv6(text))

/** Whether Django 5.2's `validate_email` takes `value`. @internal */
export const isEmailAddress = (value: string): boolean => {
  // Python counts code points (RFC 3696's 320)
  if (value === "" || !value.includes("@") || [...value].length > 320) return false
  const at = value.lastIndexOf("@")
  const user = value.slice(0, at)
  const domain = value.slice(at + 1)
  if (!userPart.test(user)) return false
  if (domain === "localhost" || domainPart.test(domain)) return true
  const address = literal.exec(domain)
  return address !== null && isAddress(address[1]!)
}
