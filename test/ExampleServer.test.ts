// The example app as `npm start` runs it (examples/server.ts in a child process, on a temporary
// SQLite file and a free port), driven with fetch and the CLI: the README's walk-through.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { type RunningServer, runCli, startServer, tempDir } from "./utils/exampleApp.js"
import * as http from "node:http"

const dir = tempDir()
const database = path.join(dir, "example.sqlite")
// No REDIS_URL: the login throttling counters stay in the server's memory, this run's own. An
// empty SECRET_KEY_FALLBACKS, as a deployment template's `${OLD:-}` leaves it, is no fallback (the
// app failed to start on it).
const env = { DATABASE_FILE: database, REDIS_URL: undefined, SECRET_KEY_FALLBACKS: "" }
let server: RunningServer

beforeAll(async () => {
  // Users first, through the CLI, on the file the server will open (no SECRET_KEY on purpose).
  const alice = await runCli(["createuser", "alice"], { input: "white rabbit hole 1865\n", env })
  const bob = await runCli(["createuser", "bob"], { input: "can we fix it? yes!\n", env })
  expect([alice.code, bob.code]).toEqual([0, 0])
  server = await startServer(env)
  // two CLI runs, then up to 90 s for the server's URL (startServer)
}, 180_000)

afterAll(async () => {
  await server?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

interface Reply {
  readonly status: number
  readonly body: string
  readonly headers: Headers
  readonly json: () => any
}

const request = async (
  method: string,
  pathname: string,
  options: { readonly cookie?: string; readonly csrf?: string; readonly json?: unknown } = {}
): Promise<Reply> => {
  const headers: Record<string, string> = {}
  if (options.cookie !== undefined) headers.cookie = options.cookie
  if (options.csrf !== undefined) headers["x-csrftoken"] = options.csrf
  if (options.json !== undefined) headers["content-type"] = "application/json"
  const response = await fetch(`${server.url}${pathname}`, {
    method,
    headers,
    ...(options.json === undefined ? {} : { body: JSON.stringify(options.json) })
  })
  const body = await response.text()
  return { status: response.status, body, headers: response.headers, json: () => JSON.parse(body) }
}

/** The `name=value` pairs of the response's Set-Cookie headers. */
const setCookies = (reply: Reply): Record<string, string> =>
  Object.fromEntries(
    reply.headers.getSetCookie().map((header) => {
      const [pair] = header.split(";")
      const index = pair!.indexOf("=")
      return [pair!.slice(0, index), pair!.slice(index + 1)]
    })
  )

const login = async (username: string, password: string) => {
  const reply = await request("POST", "/login", { json: { username, password } })
  expect(reply.status).toBe(200)
  const session = setCookies(reply)["sessionid"]
  expect(session).toMatch(/^[A-Za-z0-9_-]{43}$/)
  return { reply, cookie: `sessionid=${session}`, csrf: reply.json().csrfToken as string }
}

describe("example app", { timeout: 120_000 }, () => {
  it("prints its URL on 127.0.0.1 and warns that SECRET_KEY is not set", () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(server.stderr()).toContain("SECRET_KEY is not set")
  })

  it("login → cookie → /me → /reports 403 → grant with the CLI → 200 → logout → /me 401", async () => {
    const { cookie, csrf, reply } = await login("alice", "white rabbit hole 1865")
    expect(reply.json()).toEqual({ user: { id: "1", username: "alice", isSuperuser: false }, csrfToken: csrf })
    expect(reply.headers.getSetCookie().find((c) => c.startsWith("sessionid="))).toMatch(/HttpOnly/i)

    const me = await request("GET", "/me", { cookie })
    expect(me.status).toBe(200)
    expect(me.json()).toEqual({ user: { id: "1", username: "alice", isSuperuser: false }, method: "session", permissions: [] })

    expect((await request("GET", "/reports", { cookie })).status).toBe(403)

    const granted = await runCli(["grant", "alice", "reports.view_report"], { env })
    expect(granted.code).toBe(0)

    // Permission answers are cached per request only: the next request sees the grant.
    const reports = await request("GET", "/reports", { cookie })
    expect(reports.status).toBe(200)
    expect(reports.json()).toEqual([{ id: 1, title: "Q1 revenue" }, { id: 2, title: "Q2 revenue" }])
    expect((await request("GET", "/me", { cookie })).json().permissions).toEqual(["reports.view_report"])

    // An unsafe request on the cookie needs the session's CSRF token.
    expect((await request("POST", "/logout", { cookie })).status).toBe(403)
    expect((await request("GET", "/me", { cookie })).status).toBe(200)
    const logout = await request("POST", "/logout", { cookie, csrf })
    expect(logout.status).toBe(204)
    expect(setCookies(logout)["sessionid"]).toBe("")

    const after = await request("GET", "/me", { cookie })
    expect(after.status).toBe(401)
    expect(after.body).toBe("")
  })

  it("a wrong password is a 401 with an empty body and no cookie; a bad payload a 400", async () => {
    const wrong = await request("POST", "/login", { json: { username: "alice", password: "nope" } })
    expect(wrong.status).toBe(401)
    expect(wrong.body).toBe("")
    expect(wrong.headers.get("www-authenticate")).toContain("realm=")
    expect(wrong.headers.getSetCookie()).toEqual([])
    const unknown = await request("POST", "/login", { json: { username: "mallory", password: "nope" } })
    expect(unknown.status).toBe(401)
    expect((await request("POST", "/login", { json: { username: "alice" } })).status).toBe(400)
  })

  const post = (contentType: string | undefined, body: string) =>
    fetch(`${server.url}/login`, {
      method: "POST",
      headers: contentType === undefined ? {} : { "content-type": contentType },
      body
    }).then(async (response) => ({ status: response.status, body: await response.text(), headers: response.headers }))

  it("throttling: the sixth wrong password in a row for one name is a 429 with Retry-After; another name is not locked", async () => {
    for (let i = 0; i < 5; i++) {
      expect((await request("POST", "/login", { json: { username: "eve", password: `guess ${i}` } })).status).toBe(401)
    }
    const locked = await request("POST", "/login", { json: { username: "eve", password: "guess 5" } })
    expect(locked.status).toBe(429)
    expect(Number(locked.headers.get("retry-after"))).toBeGreaterThan(800) // 15 minutes, in seconds
    expect(locked.body).toBe("")
    // The lock is the pair (username, address): bob from the same address still logs in.
    await login("bob", "can we fix it? yes!")
  })

  it("a login body that is neither JSON nor a form is a 415 that does not repeat it", async () => {
    const reply = await post("text/plain", "username=alice&password=wonderland")
    expect(reply.status).toBe(415)
    expect(reply.body).not.toContain("wonderland")
    expect(JSON.parse(reply.body)).toEqual({
      message: "Send the body as application/json or application/x-www-form-urlencoded."
    })
  })

  it("an HTML form logs in; a form or JSON of the wrong shape is a 400 that quotes no value", async () => {
    const form = await post("application/x-www-form-urlencoded", "username=alice&password=white+rabbit+hole+1865")
    expect(form.status).toBe(200)
    expect(JSON.parse(form.body).user.username).toBe("alice")
    expect(form.headers.getSetCookie().some((c) => c.startsWith("sessionid="))).toBe(true)

    const expected = { message: "The request body must have the fields username and password, as strings." }
    for (
      const [type, body] of [
        ["application/json", JSON.stringify({ username: "alice", password: ["wonderland"] })],
        ["application/json", JSON.stringify("wonderland")],
        ["application/x-www-form-urlencoded", "username=alice&passwd=wonderland"]
      ] as const
    ) {
      const reply = await post(type, body)
      expect(reply.status).toBe(400)
      expect(JSON.parse(reply.body)).toEqual(expected)
    }
    const repeated = await post("application/x-www-form-urlencoded", "username=alice&password=wonderland&password=x")
    expect(repeated.status).toBe(400)
    expect(repeated.body).not.toContain("wonderland")
  })

  it("malformed JSON is a 400 with a fixed message, logged in one line without a stack", async () => {
    const [out, err] = [server.stdout().length, server.stderr().length]
    const reply = await post("application/json", `{"username":"alice","password":"wonderland"`)
    expect(reply.status).toBe(400)
    expect(JSON.parse(reply.body)).toEqual({ message: "The request body could not be read." })
    // The log line is written before the response, but the pipe from the child may deliver it after:
    // wait for the request's "Sent HTTP response" entry, the last thing logged for it.
    const logSince = () => server.stdout().slice(out) + server.stderr().slice(err)
    for (let i = 0; i < 100 && !logSince().includes("http.status: 400"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const log = logSince()
    expect(log).toMatch(/WARN .*POST \/login: malformed JSON\n/)
    expect(log).not.toContain("SyntaxError")
    expect(log).not.toMatch(/^\s+at /m)
    expect(log).not.toContain("wonderland")
  })

  it("a login body over the bound is a 413, whether it declares its length or streams it", async () => {
    const big = JSON.stringify({ username: "alice", password: "x".repeat(100_000) })
    const declared = await post("application/json", big)
    expect(declared.status).toBe(413)
    expect(JSON.parse(declared.body)).toEqual({ message: "The request body is too large." })
    // a chunked body names no length: it is cut while it is read — the server stops reading and
    // answers 413 or drops the connection, and goes on serving
    const streamed = await new Promise<number | string>((resolve) => {
      const request = http.request(`${server.url}/login`, {
        method: "POST",
        headers: { "content-type": "application/json", "transfer-encoding": "chunked" }
      }, (response) => {
        response.resume()
        resolve(response.statusCode ?? 0)
      })
      request.on("error", (error) => resolve((error as { code?: string }).code ?? "error"))
      for (let i = 0; i < 10; i++) request.write(big.slice(i * 10_001, (i + 1) * 10_001))
      request.end()
    })
    expect([413, "ECONNRESET", "EPIPE"]).toContain(streamed)
    expect((await fetch(`${server.url}/me`)).status).toBe(401)
  })

  it("JSON nested very deep is a 400, not a defect", async () => {
    const deep = "[".repeat(8_000) + "]".repeat(8_000)
    const reply = await post("application/json", deep)
    expect(reply.status).toBe(400)
  })

  // The router serves the login endpoint under other spellings of its path than "/login": a trailing
  // or doubled slash, another case, a `;` parameter, a %-escaped letter. The body checks belong to
  // the endpoint, so they hold whatever the spelling; had they been keyed on the path's text, these
  // would reach HttpApi's own decoding, which quotes the body and logs the parser's error with it.
  it("the body checks hold on every spelling of /login the router accepts; nothing sent is echoed or logged", async () => {
    // mallory has no account: a body that got through to the login counts no failure against alice
    const [out, err] = [server.stdout().length, server.stderr().length]
    const logSince = () => server.stdout().slice(out) + server.stderr().slice(err)
    // Every password sent starts with one marker: a log that quotes only its start still shows it.
    let sent = 0
    const secret = (kind: string) => `sEcReT-${kind}-${sent}-through-the-looking-glass`
    const postTo = (pathname: string, contentType: string, body: string) =>
      fetch(`${server.url}${pathname}`, { method: "POST", headers: { "content-type": contentType }, body })
        .then(async (response) => ({ status: response.status, body: await response.text() }))
    const spellings = ["/login/", "//login", "/Login", "/LOGIN", "/login;x", "/%6cogin"]
    for (const pathname of spellings) {
      const cases = [
        ["text/plain", `username=mallory&password=${secret("plain")}`, 415, "Send the body as application/json or application/x-www-form-urlencoded."],
        [
          "multipart/form-data; boundary=zz",
          `--zz\r\nContent-Disposition: form-data; name="username"\r\n\r\nmallory\r\n--zz\r\n` +
          `Content-Disposition: form-data; name="password"\r\n\r\n${secret("multipart")}\r\n--zz--\r\n`,
          415,
          "Send the body as application/json or application/x-www-form-urlencoded."
        ],
        ["application/json", JSON.stringify({ username: "mallory", password: secret("big") + "x".repeat(20_000) }), 413, "The request body is too large."],
        ["application/json", `{"username":"mallory","password":${secret("broken")}}`, 400, "The request body could not be read."],
        [
          "application/json",
          JSON.stringify({ username: "mallory", password: { secret: secret("typed") } }),
          400,
          "The request body must have the fields username and password, as strings."
        ]
      ] as const
      for (const [contentType, body, status, message] of cases) {
        const reply = await postTo(pathname, contentType, body)
        sent++
        // soft: a failure names every spelling and body that got through, not only the first
        expect.soft({ pathname, contentType, status: reply.status }).toEqual({ pathname, contentType, status })
        expect.soft(reply.body).toBe(JSON.stringify({ message }))
        expect.soft(reply.body).not.toContain("sEcReT")
      }
    }
    // Each request ends with the logger's "Sent HTTP response" entry, which the pipe from the child
    // may deliver after the answer: wait for those of the last spelling, sent last, before reading.
    const lastEntries = () => (logSince().match(/http\.url: \/%6cogin\n/g) ?? []).length
    for (let i = 0; i < 100 && lastEntries() < sent / spellings.length; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(lastEntries()).toBe(sent / spellings.length)
    const log = logSince()
    expect(log).not.toContain("sEcReT")
    expect(log).not.toMatch(/^\s+at /m)
    expect(log).toMatch(/WARN .*POST \/login: malformed JSON\n/)
    expect(log).toMatch(/WARN .*POST \/login: invalid fields: password\n/)
  })

  it("anonymous requests to /me and /reports are 401", async () => {
    expect((await request("GET", "/me")).status).toBe(401)
    expect((await request("GET", "/reports")).status).toBe(401)
  })

  it("changepassword with the CLI logs out the user's sessions on the running server", async () => {
    const { cookie } = await login("bob", "can we fix it? yes!")
    expect((await request("GET", "/me", { cookie })).status).toBe(200)
    expect((await runCli(["changepassword", "bob"], { input: "a new scaffold at noon\n", env })).code).toBe(0)
    expect((await request("GET", "/me", { cookie })).status).toBe(401)
    await login("bob", "a new scaffold at noon")
  })

  it("the session lives in the SQLite file: it survives a restart of the app", async () => {
    const { cookie } = await login("alice", "white rabbit hole 1865")
    await server.stop()
    server = await startServer(env)
    const me = await request("GET", "/me", { cookie })
    expect(me.status).toBe(200)
    expect(me.json().user.username).toBe("alice")
  })
})
