// The Origin/Referer half of the CSRF check, compared with Django's own `CsrfViewMiddleware`
// (`_origin_verified`, `_check_referer`; Django 4.0+, which checks `Origin`), behind a proxy
// that says the request is secure (`SECURE_PROXY_SSL_HEADER`), over hosts, origins and referers
// chosen to break a comparison: ports, case, trailing dots, IPv6, userinfo, `*.` wildcards,
// `#`/`?`/`\` tricks, control and compatibility characters.
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Csrf from "../src/http/Csrf.js"
import { djangos, runDjango } from "./utils/django.js"

const trusted = ["https://*.example.com", "https://app.test", "http://*.plain.test:8080", "https://*.Example.org", "https://[::1]:9000", "https://*ex.net"]
const hosts = ["example.com", "site.test", "site.test:8443", "SITE.test", "[::1]:9000", "exa_mple.com", "site.test.", "a.example.com", "app.test", "", ".example.com", "site.test:443", "user@site.test"]
const originsFor = (host: string) => [
  `https://${host}`, `http://${host}`, `HTTPS://${host}`, `https://${host}/`, `https://${host.toLowerCase()}`, "null", "",
  "https://evil-example.com", "https://example.com", "https://x.example.com", "https://x.EXAMPLE.com", "https://x.example.com:443",
  "https://x.example.com.evil", "https://x.example.org", "https://X.Example.ORG", "http://x.plain.test:8080", "http://x.plain.test",
  "https://x.plain.test:8080", "https://app.test", "https://APP.test", "https://app.test:443", "https://u@x.example.com", "https://[::1]:9000",
  "https://evil.com#.example.com", "https://evil.com?.example.com", "https://evil.com\\.example.com", "https://evil.com/.example.com",
  "https://evil\t.example.com", "https://ex.net", "https://yex.net", "https://a.ex.net", "https:x.example.com", "https:///x.example.com",
  "https://[x.example.com", "https://x.example.com]", "https://evilª.example.com", "https://x.example.com, https://evil.com",
  " https://x.example.com", "https://x.example.com ", "https://x.example.com\n", "file://x.example.com"
]
const referersFor = (host: string) => [
  undefined, `https://${host}/page`, `http://${host}/page`, `https://${host.toLowerCase()}/p`, `https://${host.toUpperCase()}/p`,
  `HTTPS://${host}/p`, `https://u:p@${host}/p`, `https://${host}:443/p`, "https://evil.com/", "https://x.example.com/p",
  "https://example.com/p", "https://evil-example.com/p", "https://app.test/p", "https://x.app.test/p", "https://x.plain.test:8080/",
  "https://plain.test:8080/", "https://x.plain.test/", "https://ex.net/", "https://a.ex.net/", "https://yex.net/", "not a url", "",
  "https:", "https://", `https:/${host}/p`, `https:${host}`, `https://${host}\\@evil.com/`, `https://evil.com\\@${host}/`,
  `https://${host}#@evil.com`, `https://evil.com#${host}`, `https://[::1]:9000/`, `https://x.example.com.evil/`,
  `https://x.example.com:8443/`, `https://evilª.example.com/`, `https://${host}ª/`, ` https://${host}/`, `\thttps://${host}/`,
  `https://${host}\t/`, `https://X.EXAMPLE.COM/`, `https://[::1/`, `https://${host}]/`
]

interface Case {
  readonly host: string
  readonly origin?: string
  readonly referer?: string
  readonly secure: boolean
}
const cases: ReadonlyArray<Case> = hosts.flatMap((host) =>
  [true, false].flatMap((secure) => [
    ...originsFor(host).map((origin): Case => ({ host, origin, secure })),
    ...referersFor(host).map((referer): Case => ({ host, ...(referer === undefined ? {} : { referer }), secure }))
  ])
)

// A request's verdict as CsrfViewMiddleware gives it: the Origin when there is one, else over
// HTTPS the Referer; over plain HTTP without an Origin, nothing to check.
const DJANGO = `
settings.ALLOWED_HOSTS = ["*"]
settings.CSRF_TRUSTED_ORIGINS = data["trusted"]
settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware, RejectRequest
middleware = CsrfViewMiddleware(lambda request: None)
def verdict(c):
    request = HttpRequest()
    request.method = "POST"
    if c["host"] != "": request.META["HTTP_HOST"] = c["host"]
    request.META["SERVER_NAME"] = "servername"
    request.META["SERVER_PORT"] = "80"
    if "origin" in c: request.META["HTTP_ORIGIN"] = c["origin"]
    if "referer" in c: request.META["HTTP_REFERER"] = c["referer"]
    if c["secure"]: request.META["HTTP_X_FORWARDED_PROTO"] = "https"
    if "HTTP_ORIGIN" in request.META: return middleware._origin_verified(request)
    if not request.is_secure(): return True
    try:
        middleware._check_referer(request)
        return True
    except RejectRequest:
        return False
print(json.dumps([verdict(c) for c in data["cases"]]))
`

const ours = (c: Case): boolean =>
  Csrf.originAllowed(
    Either.getOrThrow(Csrf.resolve({ trustedOrigins: trusted }, c.secure)),
    { host: c.host === "" ? undefined : c.host, origin: c.origin, referer: c.referer },
    true
  )

// Documented: without Secure cookies effect-auth takes the site's own origin in either scheme,
// where Django over plain HTTP takes only `http://` (a TLS-terminating proxy that does not say so).
const documented = (c: Case, theirs: boolean): boolean =>
  !c.secure && theirs === false && c.origin === `https://${c.host}`

for (const django of djangos.filter((d) => Number(d.version.split(".")[0]) >= 4)) {
  describe(`the Origin/Referer check against Django ${django.version}'s CsrfViewMiddleware`, () => {
    it("gives Django's verdict on every request", () => {
      const theirs: ReadonlyArray<boolean> = runDjango(DJANGO, { trusted, cases }, { django })
      const differing = cases.filter((c, i) => ours(c) !== theirs[i] && !documented(c, theirs[i]!))
      expect(differing).toEqual([])
      // The comparison can fail: both verdicts occur often.
      expect(theirs.filter((x) => x === true).length).toBeGreaterThan(300)
      expect(theirs.filter((x) => x === false).length).toBeGreaterThan(300)
    })
  })
}
