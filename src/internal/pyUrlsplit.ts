// Python's `urllib.parse.urlsplit`, for the checks Django makes of URLs it is sent: a redirect's
// target (`url_has_allowed_host_and_scheme`) and a request's Origin and Referer (CSRF).
import { isIPv6 } from "node:net"
import { pyNfkc } from "./pyNfkc.js"

/**
 * Python's `urlsplit` (3.11), as far as Django's checks read it: the scheme (lower-cased) and the
 * network location exactly as written (userinfo and port included), or undefined where it raises
 * `ValueError`.
 *
 * @internal
 */
export const urlsplit = (input: string): { readonly scheme: string; readonly netloc: string } | undefined => {
  // Leading C0 controls and spaces go (WHATWG), and tabs and newlines anywhere.
  let url = input.replace(/^[\x00-\x20]+/, "").replace(/[\t\r\n]/g, "")
  let scheme = ""
  const colon = url.indexOf(":")
  if (colon > 0 && /^[A-Za-z][A-Za-z0-9+.-]*$/.test(url.slice(0, colon))) {
    scheme = url.slice(0, colon).toLowerCase()
    url = url.slice(colon + 1)
  }
  if (!url.startsWith("//")) return { scheme, netloc: "" }
  const end = url.slice(2).search(/[/?#]/)
  const netloc = end === -1 ? url.slice(2) : url.slice(2, 2 + end)
  const open = netloc.includes("[")
  if (open !== netloc.includes("]")) return undefined
  if (open && !bracketedHostValid(netloc)) return undefined
  if (!netlocSurvivesNfkc(netloc)) return undefined
  return { scheme, netloc }
}

// `[...]` holds an IPv6 address (a zone allowed) or an IPvFuture one, with nothing before it and
// only a port after it.
const bracketedHostValid = (netloc: string): boolean => {
  const hostAndPort = netloc.slice(netloc.lastIndexOf("@") + 1)
  const open = hostAndPort.indexOf("[")
  let host: string
  if (open === -1) {
    const colon = hostAndPort.indexOf(":")
    host = colon === -1 ? hostAndPort : hostAndPort.slice(0, colon)
  } else {
    if (open > 0) return false
    const close = hostAndPort.indexOf("]")
    host = close === -1 ? hostAndPort.slice(1) : hostAndPort.slice(1, close)
    const port = close === -1 ? "" : hostAndPort.slice(close + 1)
    if (port !== "" && !port.startsWith(":")) return false
  }
  return host.startsWith("v") ? /^v[a-fA-F0-9]+\..+$/s.test(host) : isIPv6(host)
}

// Characters such as U+2100 (℀) become `a/c` under NFKC, as IDNA reads a host: a host that turns
// into a path, query or credentials that way is refused (Python's `urlsplit` raises there, with
// its own Unicode's NFKC).
const netlocSurvivesNfkc = (netloc: string): boolean => {
  if (/^[\x00-\x7f]*$/.test(netloc)) return true
  const kept = netloc.replace(/[@:#?]/g, "")
  const normalized = pyNfkc(kept)
  return normalized === kept || !/[/?#@:]/.test(normalized)
}
