// The CSRF token of an HTML form: Django's `csrfmiddlewaretoken` field of a POSTed url-encoded
// body, over real HTTP, in the HttpApi form and in the plain-router form (mounted routers too).
import { describe, expect, it } from "@effect/vitest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as http from "node:http"
import * as Csrf from "../src/http/Csrf.js"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as FormBody from "../src/internal/http/formBody.js"
import { call, login, routerLogin, serve, serveApp } from "./utils/httpAuthServer.js"

const form = (fields: Record<string, string>) => ({
  text: new URLSearchParams(fields).toString(),
  contentType: "application/x-www-form-urlencoded"
})

// A request the server never answers is a failed test, not a hung one.
const bounded = <A>(effect: Effect.Effect<A>) =>
  Effect.timeoutFail(effect, { duration: "5 seconds", onTimeout: () => new Error("no answer in 5 s: the body was read twice") })

describe("Csrf.check: the session's token", () => {
  // A session store hands back what its record holds: one a foreign or corrupted writer left
  // with an empty CSRF token let a POST whose X-CSRFToken header was empty through.
  it.effect("a session token shorter than Django's 32 characters matches nothing, not even itself or an empty header", () =>
    Effect.gen(function*() {
      const settings = Either.getOrThrow(Csrf.resolve())
      const post = (headers: Record<string, string>) =>
        HttpServerRequest.fromWeb(new Request("http://127.0.0.1/x", { method: "POST", headers }))
      const outcome = (sent: string, stored: string) =>
        Effect.map(Effect.exit(Csrf.check(settings, post({ "x-csrftoken": sent }), Option.some(Redacted.make(stored)))), Exit.isSuccess)
      expect(yield* outcome("", "")).toBe(false)
      expect(yield* outcome("a", "a")).toBe(false)
      expect(yield* outcome("x".repeat(31), "x".repeat(31))).toBe(false)
      // Django's own 32-character secret, as sent and masked; ours
      const django = "k".repeat(32)
      expect(yield* outcome(django, django)).toBe(true)
      expect(yield* outcome(Redacted.value(Csrf.mask(Redacted.make(django))), django)).toBe(true)
      const ours = "t".repeat(43)
      expect(yield* outcome(ours, ours)).toBe(true)
      expect(yield* outcome("", ours)).toBe(false)
    }))
})

describe("Csrf: the token of a POSTed form (HttpApi)", () => {
  it.live("a form's csrfmiddlewaretoken is the token; the payload is still decoded from the same body", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* serve({})
      const alice = yield* login(url, "alice", "wonderland")
      const changed = yield* call(url, "POST", "/password", {
        headers: { cookie: alice.cookie },
        body: form({ csrfmiddlewaretoken: alice.csrf, password: "looking-glass" })
      })
      expect(changed.status).toBe(204)
      // The new password came from the form's body, read once by the check and once by the payload.
      expect((yield* login(url, "alice", "looking-glass")).reply.status).toBe(200)
    })))

  it.live("a wrong field is refused even with the right header (Django reads the field first); no field: the header", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* serve({})
      const alice = yield* login(url, "alice", "wonderland")
      const wrongField = yield* call(url, "POST", "/notes", {
        headers: { cookie: alice.cookie, "x-csrftoken": alice.csrf },
        body: form({ csrfmiddlewaretoken: "x".repeat(alice.csrf.length) })
      })
      expect(wrongField.status).toBe(403)
      const emptyField = yield* call(url, "POST", "/notes", {
        headers: { cookie: alice.cookie, "x-csrftoken": alice.csrf },
        body: form({ csrfmiddlewaretoken: "", note: "hi" })
      })
      expect(emptyField.status).toBe(200)
      const noToken = yield* call(url, "POST", "/notes", { headers: { cookie: alice.cookie }, body: form({ note: "hi" }) })
      expect(noToken.status).toBe(403)
      // A repeated field: its last value, as Django's QueryDict.get; past 1000 fields (Django's
      // DATA_UPLOAD_MAX_NUMBER_FIELDS) the form is not parsed and the header decides.
      const post = (text: string, headers: Record<string, string> = {}) =>
        Effect.map(call(url, "POST", "/notes", { headers: { cookie: alice.cookie, ...headers }, body: { text, contentType: form({}).contentType } }), (r) => r.status)
      expect(yield* post(`csrfmiddlewaretoken=wrong&csrfmiddlewaretoken=${alice.csrf}`)).toBe(200)
      expect(yield* post(`csrfmiddlewaretoken=${alice.csrf}&csrfmiddlewaretoken=wrong`)).toBe(403)
      const many = `${"a=1&".repeat(1000)}csrfmiddlewaretoken=${alice.csrf}`
      expect(yield* post(many)).toBe(403)
      expect(yield* post(many, { "x-csrftoken": alice.csrf })).toBe(200)
      expect(yield* post(`${"a=1&".repeat(999)}csrfmiddlewaretoken=${alice.csrf}`)).toBe(200)
    })))

  it.live("a masked token (Csrf.mask: new on every call) is taken in the field and in the header; altered, or another session's, it is refused", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* serve({})
      const alice = yield* login(url, "alice", "wonderland")
      const bob = yield* login(url, "bob", "pa:ss:word")
      const masked = Redacted.value(Csrf.mask(Redacted.make(alice.csrf)))
      const again = Redacted.value(Csrf.mask(Redacted.make(alice.csrf)))
      expect(masked).not.toBe(again)
      expect(masked).not.toContain(alice.csrf)
      expect(masked).toMatch(/^[A-Za-z0-9_-]{115}$/)
      const post = (headers: Record<string, string>, fields: Record<string, string>) =>
        Effect.map(call(url, "POST", "/notes", { headers: { cookie: alice.cookie, ...headers }, body: form(fields) }), (r) => r.status)
      expect(yield* post({}, { csrfmiddlewaretoken: masked })).toBe(200)
      expect(yield* post({}, { csrfmiddlewaretoken: again })).toBe(200)
      expect(yield* post({ "x-csrftoken": masked }, {})).toBe(200)
      const altered = `${masked.slice(0, 50)}${masked[50] === "A" ? "B" : "A"}${masked.slice(51)}`
      expect(yield* post({}, { csrfmiddlewaretoken: altered })).toBe(403)
      expect(yield* post({}, { csrfmiddlewaretoken: Redacted.value(Csrf.mask(Redacted.make(bob.csrf))) })).toBe(403)
      expect(yield* post({}, { csrfmiddlewaretoken: masked.slice(0, 114) })).toBe(403)
      expect(yield* post({}, { csrfmiddlewaretoken: `${masked.slice(0, 114)}=` })).toBe(403)
      // The last character's two low bits are not the token's (115 characters carry 86 bytes): a
      // second spelling of the same bytes is refused, as Django takes one string only.
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
      const respelled = masked.slice(0, 114) + alphabet[alphabet.indexOf(masked[114]!) ^ 1]!
      expect(Buffer.from(respelled, "base64url")).toEqual(Buffer.from(masked, "base64url"))
      expect(yield* post({}, { csrfmiddlewaretoken: respelled })).toBe(403)
      expect(yield* post({ "x-csrftoken": respelled }, {})).toBe(403)
    })))

  it.live("only a POSTed url-encoded form is read: other methods and multipart forms send the header", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* serve({})
      const alice = yield* login(url, "alice", "wonderland")
      const deleted = yield* call(url, "DELETE", "/notes", {
        headers: { cookie: alice.cookie },
        body: form({ csrfmiddlewaretoken: alice.csrf })
      })
      expect(deleted.status).toBe(403)
      const boundary = "----effect-auth-boundary"
      const multipart = yield* call(url, "POST", "/notes", {
        headers: { cookie: alice.cookie },
        body: {
          text: `--${boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n${alice.csrf}\r\n--${boundary}--\r\n`,
          contentType: `multipart/form-data; boundary=${boundary}`
        }
      })
      expect(multipart.status).toBe(403)
      // The media type is compared as Django compares it: parameters aside, any case.
      const charset = yield* call(url, "POST", "/notes", {
        headers: { cookie: alice.cookie },
        body: { ...form({ csrfmiddlewaretoken: alice.csrf }), contentType: "Application/X-WWW-Form-Urlencoded; charset=utf-8" }
      })
      expect(charset.status).toBe(200)
    })))

  it.live("a form larger than 2.5 MiB is not read for its token: refused without the header", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* serve({})
      const alice = yield* login(url, "alice", "wonderland")
      const big = yield* bounded(call(url, "POST", "/notes", {
        headers: { cookie: alice.cookie },
        body: form({ csrfmiddlewaretoken: alice.csrf, note: "x".repeat(2_621_440) })
      }))
      expect(big.status).toBe(403)
      // Just under the ceiling, the same form passes.
      const under = yield* bounded(call(url, "POST", "/notes", {
        headers: { cookie: alice.cookie },
        body: form({ csrfmiddlewaretoken: alice.csrf, note: "x".repeat(2_600_000) })
      }))
      expect(under.status).toBe(200)
    })))

  it.live("without a session there is no token to compare: the field is not read and the Origin check alone applies", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* serve({})
      const anonymous = yield* call(url, "POST", "/notes", { headers: { authorization: "Bearer alice-token" }, body: form({}) })
      expect(anonymous.status).toBe(200)
      const crossSite = yield* call(url, "POST", "/logout", {
        headers: { origin: "https://evil.test" },
        body: form({ csrfmiddlewaretoken: "anything" })
      })
      expect(crossSite.status).toBe(403)
    })))
})

// --- the plain-router form -----------------------------------------------------------------------

const decoder = new TextDecoder()
// Each route answers the body as its reader saw it.
const readers = HttpRouter.empty.pipe(
  HttpRouter.post("/text", Effect.flatMap(HttpServerRequest.HttpServerRequest, (r) => Effect.map(r.text, HttpServerResponse.text))),
  HttpRouter.post(
    "/bytes",
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (r) =>
      Effect.map(r.arrayBuffer, (bytes) => HttpServerResponse.text(decoder.decode(bytes))))
  ),
  HttpRouter.post(
    "/stream",
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (r) =>
      Effect.map(Stream.runCollect(Stream.decodeText(r.stream)), (chunks) => HttpServerResponse.text([...chunks].join(""))))
  ),
  HttpRouter.post(
    "/form",
    Effect.map(
      HttpServerRequest.schemaBodyForm(Schema.Struct({ note: Schema.String })),
      ({ note }) => HttpServerResponse.text(note)
    )
  ),
  // A protected router inside the mount: its middleware resolves the mounted copy again.
  HttpRouter.mount(
    "/private",
    HttpRouter.empty.pipe(
      HttpRouter.post(
        "/user",
        Effect.flatMap(CurrentUser.CurrentUser, ({ user }) =>
          Effect.flatMap(HttpServerRequest.HttpServerRequest, (r) =>
            Effect.map(r.text, (text) => HttpServerResponse.text(`${user.username} ${text.length}`))))
      ),
      HttpRouter.use(HttpAuth.requireUser)
    )
  )
)

const serveRouter = Effect.gen(function*() {
  const app = HttpRouter.empty.pipe(
    HttpRouter.post("/login", routerLogin),
    HttpRouter.get(
    "/page",
    Effect.map(HttpAuth.csrfToken, (token) =>
      HttpServerResponse.text(Option.match(token, { onNone: () => "none", onSome: Redacted.value })))
  ),
  HttpRouter.post("/direct", Effect.flatMap(HttpServerRequest.HttpServerRequest, (r) => Effect.map(r.arrayBuffer, (bytes) => HttpServerResponse.text(decoder.decode(bytes))))),
    // A mounted router reads a copy of the request (`modify`), which shares no cache with it.
    HttpRouter.mount("/forms", readers),
    HttpRouter.use(HttpAuth.middleware)
  )
  return yield* serveApp(app)
})

// A form POSTed without a Content-Length (Transfer-Encoding: chunked), as Node's client sends a
// body written in parts; answers the status and the body.
const chunked = (url: string, path: string, headers: Readonly<Record<string, string>>, body: string) =>
  Effect.async<{ readonly status: number; readonly body: string }>((resume) => {
    const request = http.request(new URL(path, url), {
      method: "POST",
      headers: { ...headers, "content-type": "application/x-www-form-urlencoded" }
    }, (response) => {
      let text = ""
      response.setEncoding("utf8")
      response.on("data", (chunk) => (text += chunk))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode!, body: text })))
    })
    request.on("error", (error) => resume(Effect.die(error)))
    for (let i = 0; i < body.length; i += 65_536) request.write(body.slice(i, i + 65_536))
    request.end()
  })

describe("Csrf: the token of a POSTed form (plain router)", () => {
  it.live("a chunked form that sends the header is checked by it alone, its body not read (as Django under WSGI), whatever its size", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* serveRouter
      const alice = yield* login(url, "alice", "wonderland")
      // Past the 2.5 MiB a read would stop at: the app reads it all.
      const big = new URLSearchParams({ note: "x".repeat(3_000_000) }).toString()
      const read = yield* bounded(chunked(url, "/forms/private/user", { cookie: alice.cookie, "x-csrftoken": alice.csrf }, big))
      expect([read.status, read.body]).toEqual([200, `alice ${big.length}`])
      // The header decides: a wrong one is refused, a wrong field beside the right one does not count.
      const wrongHeader = yield* bounded(chunked(url, "/forms/text", { cookie: alice.cookie, "x-csrftoken": "x".repeat(43) }, "note=hi"))
      expect(wrongHeader.status).toBe(403)
      const fieldIgnored = new URLSearchParams({ note: "hi", csrfmiddlewaretoken: "x".repeat(43) }).toString()
      const byHeader = yield* bounded(chunked(url, "/forms/text", { cookie: alice.cookie, "x-csrftoken": alice.csrf }, fieldIgnored))
      expect([byHeader.status, byHeader.body]).toEqual([200, fieldIgnored])
      // Without the header, the chunked form's field is read as before.
      const withField = new URLSearchParams({ note: "hi", csrfmiddlewaretoken: alice.csrf }).toString()
      const byField = yield* bounded(chunked(url, "/forms/text", { cookie: alice.cookie }, withField))
      expect([byField.status, byField.body]).toEqual([200, withField])
      const noToken = yield* bounded(chunked(url, "/forms/text", { cookie: alice.cookie }, "note=hi"))
      expect(noToken.status).toBe(403)
    })))

  it.live("the app reads the body the check read: text, bytes, stream, a form Schema, from a mounted router", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* serveRouter
      const alice = yield* login(url, "alice", "wonderland")
      const body = form({ note: "héllo wörld", csrfmiddlewaretoken: alice.csrf })
      for (const path of ["/forms/text", "/forms/bytes", "/forms/stream", "/direct"]) {
        const reply = yield* bounded(call(url, "POST", path, { headers: { cookie: alice.cookie }, body }))
        expect([path, reply.status, reply.body]).toEqual([path, 200, body.text])
      }
      const decoded = yield* bounded(call(url, "POST", "/forms/form", { headers: { cookie: alice.cookie }, body }))
      expect(decoded.body).toBe("héllo wörld")
      const user = yield* bounded(call(url, "POST", "/forms/private/user", { headers: { cookie: alice.cookie }, body }))
      expect(user.body).toBe(`alice ${body.text.length}`)
      // The page's token: the session's, masked afresh for every page.
      expect((yield* call(url, "GET", "/page")).body).toBe("none")
      const page = (yield* call(url, "GET", "/page", { headers: { cookie: alice.cookie } })).body
      const other = (yield* call(url, "GET", "/page", { headers: { cookie: alice.cookie } })).body
      expect(page).toMatch(/^[A-Za-z0-9_-]{115}$/)
      expect(other).not.toBe(page)
      for (const token of [page, other]) {
        const posted = yield* bounded(call(url, "POST", "/forms/text", {
          headers: { cookie: alice.cookie },
          body: form({ note: "hi", csrfmiddlewaretoken: token })
        }))
        expect(posted.status).toBe(200)
      }
      // Raw bytes, as no browser sends a form (it percent-encodes them): valid UTF-8 comes back as
      // sent; a byte that is no UTF-8 cannot, so reading the bytes fails (400) rather than hand
      // the app other bytes than were sent (before: caf\xE9 came back as the 3 bytes of U+FFFD).
      const raw = (bytes: Uint8Array, path: string) =>
        Effect.promise(async () => {
          const response = await fetch(`${url}${path}`, {
            method: "POST",
            headers: { cookie: alice.cookie, "content-type": "application/x-www-form-urlencoded" },
            body: bytes
          })
          return { status: response.status, bytes: new Uint8Array(await response.arrayBuffer()) }
        })
      const prefix = new TextEncoder().encode(`csrfmiddlewaretoken=${alice.csrf}&note=caf`)
      const utf8 = new Uint8Array([...prefix, 0xc3, 0xa9])
      for (const path of ["/forms/bytes", "/direct"]) {
        const reply = yield* bounded(raw(utf8, path))
        expect([path, reply.status, [...reply.bytes]]).toEqual([path, 200, [...utf8]])
      }
      const latin1 = new Uint8Array([...prefix, 0xe9])
      for (const path of ["/forms/bytes", "/forms/stream", "/direct"]) {
        expect([path, (yield* bounded(raw(latin1, path))).status]).toEqual([path, 400])
      }
      expect((yield* bounded(raw(latin1, "/forms/text"))).status).toBe(200)
      const wrong = yield* bounded(call(url, "POST", "/forms/text", {
        headers: { cookie: alice.cookie },
        body: form({ note: "hi", csrfmiddlewaretoken: "nope" })
      }))
      expect(wrong.status).toBe(403)
    })))
})

describe("Csrf: the bytes of a form the check read, behind a web handler", () => {
  // `Request.text()` (HttpServerRequest.fromWeb, as toWebHandler makes requests) drops a leading
  // byte order mark, and leaves no U+FFFD behind: before, the app's arrayBuffer lost the 3 bytes.
  const webRequest = (bytes: Uint8Array) =>
    HttpServerRequest.fromWeb(
      new Request("http://localhost/forms", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "content-length": String(bytes.length) },
        body: bytes
      })
    )
  const form = new TextEncoder().encode("csrfmiddlewaretoken=abc&note=cafe")

  it.effect("a leading byte order mark: the token is read, the bytes are refused rather than given back without it", () =>
    Effect.gen(function*() {
      const request = webRequest(new Uint8Array([0xef, 0xbb, 0xbf, ...form]))
      expect(yield* FormBody.token(request)).toBe("abc")
      const app = FormBody.replacement(request)!
      expect((yield* Effect.flip(app.arrayBuffer))._tag).toBe("RequestError")
      expect((yield* Effect.flip(Stream.runCollect(app.stream)))._tag).toBe("RequestError")
      // a body without one comes back as it was sent
      const plain = webRequest(form)
      expect(yield* FormBody.token(plain)).toBe("abc")
      expect([...new Uint8Array(yield* FormBody.replacement(plain)!.arrayBuffer)]).toEqual([...form])
    }))
})
