/**
 * Whether a URL a request names (a login form's `next`, a `?next=` parameter) may be redirected
 * to: Django's `url_has_allowed_host_and_scheme`, the check its `LoginView` and `LogoutView` make
 * before following `next`. Without it, a link to your own login page can send the user on to a
 * look-alike site once they have signed in (an open redirect).
 *
 * A URL is allowed when it stays on a host of `allowedHosts` (or names no host: a path such as
 * `/reports?q=1`) with the `http` or `https` scheme (`https` only with `requireHttps`), read as a
 * browser would read it: `\` as `/` (Chrome), three leading slashes or a scheme without a host
 * (`http:///evil.example`) as another host, a leading control character (which browsers skip) as
 * suspect (and, as Django on Python 3.11 judges it, a leading character Unicode 14.0 had not
 * assigned yet), tabs and newlines as nothing. Empty, whitespace-only and over-long (2048 characters)
 * URLs are refused, as are `javascript:` and every other scheme.
 *
 * Compared with Django 5.2's own function on tricky and random URLs in
 * `test/SafeRedirect.django.test.ts`.
 *
 * @example
 * ```ts
 * import { SafeRedirect } from "effect-auth"
 *
 * const options = { allowedHosts: ["app.example.com"] }
 * SafeRedirect.isAllowed("/reports?q=1", options) // true
 * SafeRedirect.isAllowed("https://app.example.com/reports", options) // true
 * SafeRedirect.isAllowed("//evil.example/", options) // false
 * SafeRedirect.isAllowed("/\\evil.example", options) // false: Chrome reads it as //evil.example
 * SafeRedirect.isAllowed("javascript:alert(1)", options) // false
 * ```
 *
 * @since 0.3.0
 */
import { dual } from "effect/Function"
import { percentEncode } from "../internal/http/percentEncode.js"
import { pyStrip } from "../internal/pyStrip.js"
import { urlsplit } from "../internal/pyUrlsplit.js"
import { assignedAfterUnicode14 } from "../internal/unicode14.js"

/**
 * @example
 * ```ts
 * import type { SafeRedirect } from "effect-auth"
 *
 * // the request's own host, as Django passes `request.get_host()`, and a sister site
 * const options: SafeRedirect.Options = { allowedHosts: ["app.example.com", "docs.example.com"], requireHttps: true }
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** The hosts (with their port, if not the default: `localhost:8000`) a URL may name. */
  readonly allowedHosts: Iterable<string>
  /** Only `https` URLs (besides paths): set it when the request came over HTTPS. Default: `false`. */
  readonly requireHttps?: boolean | undefined
}

/** Django's `MAX_URL_LENGTH`, in code points. */
const maxLength = 2048

/**
 * Whether `url` may be redirected to. Anything that is not a string is refused.
 *
 * @example
 * ```ts
 * import { pipe } from "effect"
 * import { SafeRedirect } from "effect-auth"
 *
 * const next = "/orders/42"
 * const target = pipe(next, SafeRedirect.isAllowed({ allowedHosts: ["shop.example.com"] })) ? next : "/"
 * ```
 *
 * @since 0.3.0
 * @category predicates
 */
export const isAllowed: {
  (options: Options): (url: unknown) => boolean
  (url: unknown, options: Options): boolean
} = dual(2, (url: unknown, options: Options): boolean => {
  if (typeof url !== "string") return false
  const stripped = pyStrip(url)
  if (stripped === "") return false
  const hosts = new Set(options.allowedHosts)
  const requireHttps = options.requireHttps === true
  // Chrome reads `\` as `/` in a path, but it may be part of a URL's credentials: both readings
  // must be allowed.
  return allowedAsRead(stripped, hosts, requireHttps) && allowedAsRead(stripped.replaceAll("\\", "/"), hosts, requireHttps)
})

/**
 * The URL as a `Location` header carries it: every character but RFC 3986's reserved and
 * unreserved ones and `%` percent-encoded as UTF-8, as Django's `iri_to_uri` writes every redirect.
 * An allowed URL may hold a space, a newline (browsers drop it) or `é`, which a header cannot
 * carry as they are (Node refuses to send it).
 *
 * @example
 * ```ts
 * import { SafeRedirect } from "effect-auth"
 *
 * SafeRedirect.location("/café?q=a b") // "/caf%C3%A9?q=a%20b"
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const location = (url: string): string => percentEncode(url, keptInLocation)

// RFC 3986's reserved and unreserved characters, and `%`: what `iri_to_uri` keeps.
const keptInLocation = /[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]/

const allowedAsRead = (url: string, hosts: ReadonlySet<string>, requireHttps: boolean): boolean => {
  // Chrome reads more than two leading slashes as an absolute URL.
  if (url.startsWith("///") || longerThan(url, maxLength)) return false
  const parts = urlsplit(url)
  if (parts === undefined) return false
  // `http:///evil.example`: no host for Python, but Chrome goes to evil.example.
  if (parts.netloc === "" && parts.scheme !== "") return false
  // Browsers skip some control characters at the start, and may then read `//` after them. Django
  // refuses a first character of category C by its Python's Unicode (14.0 on Python 3.11): a
  // character assigned since is unassigned (Cn) there, refused too.
  if (/^\p{C}/u.test(url) || assignedAfterUnicode14(url.codePointAt(0) ?? 0)) return false
  // `//host/path` takes the page's scheme: http at least.
  const scheme = parts.scheme === "" && parts.netloc !== "" ? "http" : parts.scheme
  return (parts.netloc === "" || hosts.has(parts.netloc)) &&
    (scheme === "" || scheme === "https" || (scheme === "http" && !requireHttps))
}

const longerThan = (text: string, limit: number): boolean => {
  if (text.length <= limit) return false
  let count = 0
  for (const _ of text) if (++count > limit) return true
  return false
}
