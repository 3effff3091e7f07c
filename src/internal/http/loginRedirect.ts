// Where `HttpAuth.requireLogin` sends an anonymous request: Django's `redirect_to_login`.
import { location } from "../../http/SafeRedirect.js"
import { formDecode } from "./formBody.js"
import { percentEncode } from "./percentEncode.js"

// Python's `quote(text, safe="/")`, as `QueryDict.urlencode(safe="/")` writes `next`.
const quote = (text: string): string => percentEncode(text, /[A-Za-z0-9_.~/-]/)

// The login URL's query with `field` set to `value`, as Django's `QueryDict` does it: the query
// parsed as `parse_qsl(keep_blank_values=True)` reads it (`&`-separated, empty pieces skipped,
// names and values decoded), the field's values replaced by the one value where the field stood
// (or the field added last), and everything written again by `urlencode(safe="/")`.
const withField = (query: string, field: string, value: string): string => {
  const fields = new Map<string, Array<string>>()
  for (const piece of query.split("&")) {
    if (piece === "") continue
    const equals = piece.indexOf("=")
    const name = formDecode(equals === -1 ? piece : piece.slice(0, equals))
    const values = fields.get(name)
    const decoded = equals === -1 ? "" : formDecode(piece.slice(equals + 1))
    if (values === undefined) fields.set(name, [decoded])
    else values.push(decoded)
  }
  fields.set(field, [value])
  const pairs: Array<string> = []
  for (const [name, values] of fields) for (const v of values) pairs.push(`${quote(name)}=${quote(v)}`)
  return pairs.join("&")
}

/**
 * The login page's URL with `field=<fullPath>` in its query (before a fragment), as Django's
 * `redirect_to_login` writes it: a `field` the login URL already has is replaced, not repeated, and
 * the login URL's own query is written again as Django writes it; the page's URL alone when `field`
 * is false. @internal
 */
export const toLogin = (loginUrl: string, field: string | false, fullPath: string): string => {
  const hash = loginUrl.indexOf("#")
  const base = hash === -1 ? loginUrl : loginUrl.slice(0, hash)
  // `urlunparse` writes a query and a fragment only when they are not empty.
  const fragment = hash === -1 || hash === loginUrl.length - 1 ? "" : loginUrl.slice(hash)
  const questionMark = base.indexOf("?")
  const path = questionMark === -1 ? base : base.slice(0, questionMark)
  const own = questionMark === -1 ? "" : base.slice(questionMark + 1)
  const query = field === false ? own : withField(own, field, fullPath)
  return location(`${path}${query === "" ? "" : `?${query}`}${fragment}`)
}
