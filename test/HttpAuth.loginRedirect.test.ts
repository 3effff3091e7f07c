// HttpAuth.requireLogin: Django's login_required for the pages of a server-rendered site, over
// real HTTP, and the Location it writes compared with Django's redirect_to_login.
import { describe, expect, it } from "@effect/vitest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as fc from "fast-check"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import { toLogin } from "../src/internal/http/loginRedirect.js"
import { djangos, runDjango } from "./utils/django.js"
import { basic, call, login, routerLogin, serveApp } from "./utils/httpAuthServer.js"

const pages = (options: HttpAuth.LoginRedirectOptions) =>
  HttpRouter.empty.pipe(
    HttpRouter.get("/reports", Effect.map(CurrentUser.CurrentUser, ({ user }) => HttpServerResponse.text(`reports for ${user.username}`))),
    HttpRouter.use(HttpAuth.requireLogin(options))
  )

// The redirect itself, not where it leads: fetch with `redirect: "manual"`.
const get = (url: string, path: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}${path}`, { redirect: "manual", headers })
    return { status: response.status, location: response.headers.get("location"), body: await response.text() }
  })

const serve = (options: HttpAuth.LoginRedirectOptions) =>
  Effect.gen(function*() {
    const app = HttpRouter.empty.pipe(
      HttpRouter.post("/login", routerLogin),
      HttpRouter.mount("/site", pages(options)),
      HttpRouter.use(HttpAuth.middleware)
    )
    return yield* serveApp(app)
  })

describe("HttpAuth.requireLogin", () => {
  it.live("an anonymous page request goes to the login page with where it was going; a user gets the page", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* serve({ loginUrl: "/accounts/login/" })
      const anonymous = yield* get(url, "/site/reports?q=1&sort=%C3%A9")
      expect(anonymous.status).toBe(302)
      // The whole path (a mounted router's prefix included) and its query, as Django's get_full_path().
      // The query as the browser sent it, encoded once more as a value (the login page decodes it once).
      expect(anonymous.location).toBe("/accounts/login/?next=/site/reports%3Fq%3D1%26sort%3D%25C3%25A9")
      const alice = yield* login(url, "alice", "wonderland")
      const page = yield* call(url, "GET", "/site/reports", { headers: { cookie: alice.cookie } })
      expect([page.status, page.body]).toEqual([200, "reports for alice"])
      expect((yield* call(url, "GET", "/site/reports", { headers: { authorization: basic("bob", "pa:ss:word") } })).body)
        .toBe("reports for bob")
      // Wrong credentials are no anonymous visit: 401, as with requireUser; a locked account too.
      expect((yield* call(url, "GET", "/site/reports", { headers: { authorization: "Bearer wrong-token" } })).status).toBe(401)
      expect((yield* call(url, "GET", "/site/reports", { headers: { authorization: "Bearer locked-token" } })).status).toBe(401)
    })))

  it.live("the field's name, none at all, and a login page with a query or a fragment", () =>
    Effect.scoped(Effect.gen(function*() {
      const renamed = yield* serve({ loginUrl: "/login?lang=fr#form", redirectFieldName: "continue" })
      expect((yield* get(renamed, "/site/reports")).location).toBe("/login?lang=fr&continue=/site/reports#form")
      const none = yield* serve({ loginUrl: "/login", redirectFieldName: false })
      expect((yield* get(none, "/site/reports?q=1")).location).toBe("/login")
    })))
})

const loginUrls = [
  "/accounts/login/", "/login", "/login?lang=fr", "/login#top", "/login?lang=fr#top", "https://sso.example.com/login",
  // a login URL that names the field already (it is replaced, not repeated), and queries Django
  // writes again as it parses them
  "/login/?next=/home", "/login/?a=1&next=/home&b=2&next=/other", "/login/?a=b c", "/login/?a=b+c", "/login/?a=1&a=2",
  "/login/#", "/login/?x=%2F", "/login/?", "/café/", "/login/?a=%ZZ", "/login/?a=é", "/login/?flag", "/login/?a=1;b=2",
  "/login/?&&a=&=b", "/login/?n%65xt=/x"
]
const trickyPaths = [
  "/", "/reports", "/reports?q=1", "/a b", "/é?x=ü", "/a%20b", "/a+b", "/a&b=c", "/a#b", "/?next=/x", "/😀", "/a/b/c/",
  "/~user/", "/a;b", "/a'b\"c", "/a<b>", "/a\\b", "/a|b", "/a^b", "/a`b", "/%", "/a?b=%zz"
]
const piece = fc.constantFrom("/", "a", "é", "?", "&", "=", "#", "%", "%41", "+", " ", "😀", "~", "-", ".", "_", ";", ":", "@", "!", "*", "'", "(", ")")
const randomPaths = fc.sample(fc.array(piece, { maxLength: 10 }).map((p) => `/${p.join("")}`), { numRuns: 1000, seed: 3 })

// resolve_url tries reverse() first: an empty URLconf (this script) makes every URL a plain one.
const DJANGO = `
urlpatterns = []
settings.ROOT_URLCONF = "__main__"
from django.contrib.auth.views import redirect_to_login
print(json.dumps([[redirect_to_login(p, u)["Location"] for p in data["paths"]] for u in data["urls"]]))
`

for (const django of djangos) {
  describe(`the login redirect against Django ${django.version}'s redirect_to_login`, () => {
    it("writes the Location Django writes for tricky and random paths", () => {
      const paths = [...trickyPaths, ...randomPaths]
      const theirs: Array<Array<string>> = runDjango(DJANGO, { paths, urls: loginUrls }, { django })
      const differing = loginUrls.flatMap((loginUrl, u) =>
        paths.filter((path, i) => toLogin(loginUrl, "next", path) !== theirs[u]![i]).map((path) => [loginUrl, path, toLogin(loginUrl, "next", path), theirs[u]![paths.indexOf(path)]])
      )
      expect(differing).toEqual([])
    })
  })
}
