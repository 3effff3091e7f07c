/**
 * Escaping of user input placed into LDAP filters (RFC 4515) and DNs (RFC 4514).
 *
 * Characters at or above U+0080 are left as UTF-8 on purpose: RFC 4515 and RFC 4514 allow them,
 * and ldapts decodes `\xx` escapes one byte per character, so hex-escaping the bytes of a
 * multi-byte character would corrupt it on the wire.
 *
 * @internal
 */

const hex = (code: number): string => "\\" + code.toString(16).padStart(2, "0")

const isControl = (code: number): boolean => code < 0x20 || code === 0x7f

/**
 * Escapes a value for an LDAP search filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL become
 * `\2a`, `\28`, `\29`, `\5c`, `\00`; other ASCII control characters are hex-escaped too.
 *
 * @internal
 */
export const escapeFilterValue = (value: string): string => {
  let out = ""
  for (const char of value) {
    const code = char.codePointAt(0)!
    out += code === 0x2a || code === 0x28 || code === 0x29 || code === 0x5c || isControl(code) ? hex(code) : char
  }
  return out
}

// RFC 4514 §2.4 specials, plus `=` which §3 allows escaped and some parsers misread unescaped
const dnSpecials = new Set([",", "+", "\"", "\\", "<", ">", ";", "="])

/**
 * Escapes a value for an attribute value of a DN (RFC 4514 §2.4): `, + " \ < > ; =` get a
 * backslash, as do a leading space or `#` and a trailing space; NUL and other ASCII control
 * characters are hex-escaped.
 *
 * @internal
 */
export const escapeDnValue = (value: string): string => {
  const chars = Array.from(value)
  let out = ""
  chars.forEach((char, index) => {
    const code = char.codePointAt(0)!
    if (isControl(code)) {
      out += hex(code)
    } else if (dnSpecials.has(char)) {
      out += "\\" + char
    } else if ((index === 0 && (char === " " || char === "#")) || (index === chars.length - 1 && char === " ")) {
      out += "\\" + char
    } else {
      out += char
    }
  })
  return out
}

/**
 * The placeholder for the user name in DN and filter templates, as in django-auth-ldap.
 *
 * @internal
 */
export const placeholder = "%(user)s"

/**
 * Puts an already escaped value into every placeholder of a template. `split`/`join` rather than
 * `String.replace`, which would give `$&` and friends in the value a meaning.
 *
 * @internal
 */
export const fillTemplate = (template: string, escapedValue: string): string =>
  template.split(placeholder).join(escapedValue)
