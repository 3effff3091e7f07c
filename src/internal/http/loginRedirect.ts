// Where `HttpAuth.requireLogin` sends an anonymous request: Django's `redirect_to_login`.
import { location } from "../../http/SafeRedirect.js"
import { percentEncode } from "./percentEncode.js"

// Python's `quote(text, safe="/")`, as `QueryDict.urlencode(safe="/")` writes `next`.
const quote = (text: string): string => percentEncode(text, /[A-Za-z0-9_.~/-]/)

/**
 * The login page's URL with `field=<fullPath>` added to its query (before a fragment), encoded as
 * Django's `redirect_to_login` encodes it; the page's URL alone when `field` is false. @internal
 */
export const toLogin = (loginUrl: string, field: string | false, fullPath: string): string => {
  const hash = loginUrl.indexOf("#")
  const base = hash === -1 ? loginUrl : loginUrl.slice(0, hash)
  const fragment = hash === -1 ? "" : loginUrl.slice(hash)
  const query = field === false ? "" : `${base.includes("?") ? "&" : "?"}${quote(field)}=${quote(fullPath)}`
  return location(`${base}${query}${fragment}`)
}
