// Multi-factor login end to end over real HTTP: password, then a TOTP code (or a recovery code)
// steps the session up; routes that need both factors refuse a session that passed one. Sessions
// in SQLite (with the TOTP store in the same database) and in Redis.
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as http from "node:http"
import * as Option from "effect/Option"
import * as AuthBackend from "../src/AuthBackend.js"
import * as AuthError from "../src/AuthError.js"
import * as TotpBackend from "../src/backends/TotpBackend.js"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as MemorySessionStore from "../src/MemorySessionStore.js"
import * as RedisSessionStore from "../src/RedisSessionStore.js"
import type * as SessionStore from "../src/SessionStore.js"
import * as SqlSessionStore from "../src/SqlSessionStore.js"
import * as SqlTotpStore from "../src/SqlTotpStore.js"
import * as Totp from "../src/Totp.js"
import * as TotpStore from "../src/TotpStore.js"
import * as UserStore from "../src/UserStore.js"
import { appLayer, call, cookieHeader, type Reply } from "./utils/httpAuthServer.js"
import * as Postgres from "./utils/postgres.js"
import * as Redis from "./utils/redis.js"

const Login = Schema.Struct({ username: Schema.String, password: Schema.Redacted(Schema.String) })
const Code = Schema.Struct({ otpToken: Schema.String })

const csrfJson = (started: { readonly csrfToken: Redacted.Redacted<string> }) =>
  HttpServerResponse.json({ csrfToken: Redacted.value(started.csrfToken) })

const publicRoutes = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/login",
    Effect.flatMap(Effect.orDie(HttpServerRequest.schemaBodyJson(Login)), (body) =>
      Effect.flatMap(HttpAuth.login(body), csrfJson))
  ),
  HttpRouter.post(
    "/mfa",
    Effect.flatMap(Effect.orDie(HttpServerRequest.schemaBodyJson(Code)), ({ otpToken }) =>
      Effect.flatMap(HttpAuth.stepUp(otpToken), csrfJson))
  ),
  // A careless app that hands the client's JSON to the fold as it came.
  HttpRouter.post(
    "/login-any",
    Effect.flatMap(Effect.orDie(HttpServerRequest.schemaBodyJson(Schema.Unknown)), (body) =>
      Effect.flatMap(HttpAuth.login(body as any), csrfJson))
  ),
  HttpRouter.use(HttpAuth.middleware)
)

// A backend that takes the second factor's shape but is no second factor (it says yes to one code).
const lookalike = Effect.map(UserStore.UserStore, (store) =>
  AuthBackend.make({
    id: "lookalike",
    credentials: Schema.Struct({ username: Schema.String, otpToken: Schema.String }),
    authenticate: ({ otpToken, username }) =>
      otpToken === "999999"
        ? Effect.map(Effect.orDie(store.findByUsername(username)), (found) => Option.getOrThrow(found) as any)
        : AuthError.failures("lookalike").noMatch("invalid-credentials"),
    getUser: () => Effect.succeedNone
  }))

const privateRoutes = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/me",
    Effect.flatMap(CurrentUser.CurrentUser, (info) =>
      HttpServerResponse.json({ username: info.user.username, secondFactor: info.secondFactor ?? null }))
  ),
  HttpRouter.get("/payroll", Effect.zipRight(CurrentUser.requireSecondFactor, HttpServerResponse.text("payroll"))),
  HttpRouter.post(
    "/mfa/enrol",
    Effect.flatMap(CurrentUser.CurrentUser, ({ user }) =>
      Effect.flatMap(
        Effect.orDie(TotpBackend.enrol(user, { issuer: "Test" })),
        ({ uri }) => HttpServerResponse.json({ uri: Redacted.value(uri) })
      ))
  ),
  HttpRouter.post(
    "/mfa/confirm",
    Effect.gen(function*() {
      const { user } = yield* CurrentUser.CurrentUser
      const { otpToken } = yield* Effect.orDie(HttpServerRequest.schemaBodyJson(Code))
      return yield* TotpBackend.confirm(user.id, otpToken, { throttleFactor: 0 }).pipe(
        Effect.flatMap((codes) => HttpServerResponse.json({ codes: codes.map(Redacted.value) })),
        Effect.catchTag("InvalidCode", () => HttpServerResponse.json({ error: "wrong code" }, { status: 400 })),
        Effect.orDie
      )
    })
  ),
  HttpRouter.use(HttpAuth.requireUser)
)

const serve = (sessions: Layer.Layer<SessionStore.SessionStore, unknown>, totp: Layer.Layer<TotpStore.TotpStore, unknown>) =>
  Effect.map(serveWith(sessions, totp), ({ url }) => url)

// The server, the TOTP store it uses (as an admin's tool would reach it), and how many times the
// server has read a device (`get`) so far.
const serveWith = (
  sessions: Layer.Layer<SessionStore.SessionStore, unknown>,
  totp: Layer.Layer<TotpStore.TotpStore, unknown>,
  // The throttle has tests of its own (TotpBackend.test.ts, on a TestClock); the flows here, on the
  // real clock, need every attempt to reach its code check, unless a test is about the throttle.
  backend: TotpBackend.Options = { throttleFactor: 0 }
) =>
  Effect.gen(function*() {
    let reads = 0
    const counted = Layer.effect(
      TotpStore.TotpStore,
      Effect.map(TotpStore.TotpStore, (store): TotpStore.Service => ({
        ...store,
        get: (userId) => Effect.suspend(() => {
          reads++
          return store.get(userId)
        })
      }))
    ).pipe(Layer.provide(totp))
    const totpStore = yield* Layer.memoize(counted)
    const app = appLayer({
      store: sessions,
      backends: [TotpBackend.TotpBackend, lookalike],
      backendLayer: TotpBackend.layer(backend).pipe(Layer.provide(totpStore)) as any
    })
    const server = HttpServer.serve(HttpRouter.concat(publicRoutes, privateRoutes)).pipe(
      Layer.provideMerge(app),
      Layer.provideMerge(totpStore),
      Layer.provideMerge(NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" }))
    )
    const context = yield* Layer.build(server)
    return {
      url: HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address),
      devices: Context.get(context, TotpStore.TotpStore),
      reads: () => reads
    }
  })

const sessionOf = (reply: Reply) => reply.cookies.cookies["sessionid"]!.value

const flow = (sessions: () => Layer.Layer<SessionStore.SessionStore, unknown>, totp: () => Layer.Layer<TotpStore.TotpStore, unknown>) =>
  Effect.gen(function*() {
    const url = yield* serve(sessions(), totp())
    const post = (path: string, session: string, csrf: string, json: unknown) =>
      call(url, "POST", path, { json, headers: { cookie: cookieHeader({ sessionid: session }), "x-csrftoken": csrf } })
    const get = (path: string, session: string) => call(url, "GET", path, { headers: { cookie: cookieHeader({ sessionid: session }) } })
    const login = Effect.gen(function*() {
      const reply = yield* call(url, "POST", "/login", { json: { username: "alice", password: "wonderland" } })
      expect(reply.status).toBe(200)
      return { session: sessionOf(reply), csrf: reply.json().csrfToken as string }
    })

    // First factor: logged in, but not for the routes that need two.
    const first = yield* login
    expect((yield* get("/me", first.session)).json()).toEqual({ username: "alice", secondFactor: null })
    expect((yield* get("/payroll", first.session)).status).toBe(403)
    // Without a device, no code steps up.
    expect((yield* post("/mfa", first.session, first.csrf, { otpToken: "123456" })).status).toBe(401)

    // Enrolment: scan the URI, confirm with the first code, keep the recovery codes.
    const enrolled = yield* post("/mfa/enrol", first.session, first.csrf, {})
    const secret = Redacted.make(new URL(enrolled.json().uri.replace("otpauth://", "http://")).searchParams.get("secret")!)
    expect((yield* post("/mfa/confirm", first.session, first.csrf, { otpToken: "000000" })).status).toBe(400)
    // The previous step's code is accepted, not one two steps back: generated in the last 5 s of
    // a step, it could be two steps old by the time the server checks it. So the code is made
    // with at least 5 s of its step left.
    const intoStep = Date.now() % 30_000
    if (intoStep >= 25_000) yield* Effect.sleep(30_000 - intoStep)
    const previous = Redacted.value(Totp.generate(secret, Date.now() - 30_000))
    const confirmed = yield* post("/mfa/confirm", first.session, first.csrf, { otpToken: previous })
    expect(confirmed.status).toBe(200)
    const recovery: ReadonlyArray<string> = confirmed.json().codes

    // Second factor: a wrong code is 401, the current code steps up under a new session id.
    expect((yield* post("/mfa", first.session, first.csrf, { otpToken: previous })).status).toBe(401) // used
    const code = Redacted.value(Totp.generate(secret, Date.now()))
    const stepped = yield* post("/mfa", first.session, first.csrf, { otpToken: code })
    expect(stepped.status).toBe(200)
    const second = sessionOf(stepped)
    expect(second).not.toBe(first.session)
    expect((yield* get("/me", second)).json()).toEqual({ username: "alice", secondFactor: "totp" })
    expect((yield* get("/payroll", second)).body).toBe("payroll")
    expect((yield* get("/me", first.session)).status).toBe(401) // the pre-step-up id is gone

    // A new login starts at one factor again; the same code cannot be replayed; a recovery code works once.
    const again = yield* login
    expect((yield* get("/payroll", again.session)).status).toBe(403)
    expect((yield* post("/mfa", again.session, again.csrf, { otpToken: code })).status).toBe(401)
    const recovered = yield* post("/mfa", again.session, again.csrf, { otpToken: recovery[0] })
    expect(recovered.status).toBe(200)
    expect((yield* get("/payroll", sessionOf(recovered))).status).toBe(200)
    const third = yield* login
    expect((yield* post("/mfa", third.session, third.csrf, { otpToken: recovery[0] })).status).toBe(401)

    // A code alone is no login, even where the app hands the client's JSON to the fold; and a
    // step-up counts only a second-factor backend's word.
    const codeOnly = yield* call(url, "POST", "/login-any", { json: { username: "alice", otpToken: recovery[2] } })
    expect(codeOnly.status).toBe(401)
    expect(codeOnly.cookies.cookies["sessionid"]).toBeUndefined()
    expect((yield* post("/mfa", third.session, third.csrf, { otpToken: "999999" })).status).toBe(401)

    // No session, or no CSRF token: refused before any code is checked.
    expect((yield* call(url, "POST", "/mfa", { json: { otpToken: recovery[1] } })).status).toBe(401)
    expect((yield* post("/mfa", third.session, "wrong-csrf", { otpToken: recovery[1] })).status).toBe(403)
    // The code sent to the login was never checked (a login does not ask a second factor): not
    // spent, it still steps a session up. Checked, it would have been used up there.
    expect((yield* post("/mfa", third.session, third.csrf, { otpToken: recovery[2] })).status).toBe(200)
  }).pipe(Effect.scoped)

// django-otp's OTPMiddleware loads the session's device on every request and drops the
// verification when it is gone. Here the session records which device it passed, and the routes
// that require the second factor (only they) check that it is still the user's.
const deviceGone = (sessions: () => Layer.Layer<SessionStore.SessionStore, unknown>, totp: () => Layer.Layer<TotpStore.TotpStore, unknown>) =>
  Effect.gen(function*() {
    const { devices, reads, url } = yield* serveWith(sessions(), totp())
    const post = (path: string, session: string, csrf: string, json: unknown) =>
      call(url, "POST", path, { json, headers: { cookie: cookieHeader({ sessionid: session }), "x-csrftoken": csrf } })
    const get = (path: string, session: string) => call(url, "GET", path, { headers: { cookie: cookieHeader({ sessionid: session }) } })
    const login = Effect.gen(function*() {
      const reply = yield* call(url, "POST", "/login", { json: { username: "alice", password: "wonderland" } })
      expect(reply.status).toBe(200)
      return { session: sessionOf(reply), csrf: reply.json().csrfToken as string }
    })
    // Codes made with at least 5 s of their step left (see the flow above); each enrolment and
    // step-up uses a step of its own, as the device refuses a step used before.
    const intoStep = Date.now() % 30_000
    if (intoStep >= 25_000) yield* Effect.sleep(30_000 - intoStep)
    const codeAt = (secret: Redacted.Redacted<string>, steps: number) =>
      Redacted.value(Totp.generate(secret, Date.now() + steps * 30_000))
    const enrol = (at: { readonly session: string; readonly csrf: string }) =>
      Effect.gen(function*() {
        const enrolled = yield* post("/mfa/enrol", at.session, at.csrf, {})
        const secret = Redacted.make(new URL(enrolled.json().uri.replace("otpauth://", "http://")).searchParams.get("secret")!)
        expect((yield* post("/mfa/confirm", at.session, at.csrf, { otpToken: codeAt(secret, -1) })).status).toBe(200)
        return secret
      })
    const stepUp = (at: { readonly session: string; readonly csrf: string }, otpToken: string) =>
      Effect.gen(function*() {
        const reply = yield* post("/mfa", at.session, at.csrf, { otpToken })
        expect(reply.status).toBe(200)
        return sessionOf(reply)
      })
    const userId = "1"

    const first = yield* login
    const secret = yield* enrol(first)
    const stepped = yield* stepUp(first, codeAt(secret, 0))
    expect((yield* get("/payroll", stepped)).status).toBe(200)

    // The phone is stolen: an admin removes the device. The session that stepped up with it is
    // refused as one that never passed the second factor (it stays logged in, at one factor).
    expect(yield* devices.remove(userId)).toBe(true)
    expect((yield* get("/payroll", stepped)).status).toBe(403)
    expect((yield* get("/me", stepped)).status).toBe(200)

    // The user enrols a new phone from a fresh login: the old session does not get its second
    // factor back from the new device, while a session that steps up with the new one has it.
    const second = yield* login
    const renewed = yield* enrol(second)
    expect((yield* get("/payroll", stepped)).status).toBe(403)
    const steppedAgain = yield* stepUp(second, codeAt(renewed, 0))
    expect((yield* get("/payroll", steppedAgain)).status).toBe(200)

    // The check costs nothing where the second factor is not required: a plain route of the
    // stepped-up session, and a bearer token on a guarded route, read no device.
    const before = reads()
    expect((yield* get("/me", steppedAgain)).json()).toEqual({ username: "alice", secondFactor: "totp" })
    expect((yield* call(url, "GET", "/me", { headers: { authorization: "Bearer alice-token" } })).status).toBe(200)
    expect((yield* call(url, "GET", "/payroll", { headers: { authorization: "Bearer alice-token" } })).status).toBe(403)
    expect(reads()).toBe(before)
    expect((yield* get("/payroll", steppedAgain)).status).toBe(200)
    expect(reads()).toBe(before + 1)

    // Replaced without a gap (removed and enrolled again between two requests): refused too.
    yield* devices.remove(userId)
    const third = yield* login
    yield* enrol(third)
    expect((yield* get("/payroll", steppedAgain)).status).toBe(403)
  }).pipe(Effect.scoped)

// A step-up the throttle refuses unchecked is told from a wrong code: 429 and Retry-After, as a
// lockout answers, where a wrong code is a 401 (django-otp: "Verification temporarily disabled").
const throttledStepUp = (sessions: () => Layer.Layer<SessionStore.SessionStore, unknown>, totp: () => Layer.Layer<TotpStore.TotpStore, unknown>) =>
  Effect.gen(function*() {
    const { url } = yield* serveWith(sessions(), totp(), { throttleFactor: "1 second" })
    const post = (path: string, session: string, csrf: string, json: unknown) =>
      call(url, "POST", path, { json, headers: { cookie: cookieHeader({ sessionid: session }), "x-csrftoken": csrf } })
    const reply = yield* call(url, "POST", "/login", { json: { username: "alice", password: "wonderland" } })
    const at = { session: sessionOf(reply), csrf: reply.json().csrfToken as string }
    const intoStep = Date.now() % 30_000
    if (intoStep >= 25_000) yield* Effect.sleep(30_000 - intoStep)
    const enrolled = yield* post("/mfa/enrol", at.session, at.csrf, {})
    const secret = Redacted.make(new URL(enrolled.json().uri.replace("otpauth://", "http://")).searchParams.get("secret")!)
    expect((yield* post("/mfa/confirm", at.session, at.csrf, { otpToken: Redacted.value(Totp.generate(secret, Date.now() - 30_000)) })).status).toBe(200)
    const code = Redacted.value(Totp.generate(secret, Date.now()))

    const wrong = yield* post("/mfa", at.session, at.csrf, { otpToken: "000000" })
    expect(wrong.status).toBe(401)
    // the right code within the second's wait: not checked, and the client is told to wait
    const early = yield* post("/mfa", at.session, at.csrf, { otpToken: code })
    expect([early.status, early.headers["retry-after"]]).toEqual([429, "1"])
    expect(early.body).toBe("")
    expect(early.cookies.cookies["sessionid"]).toBeUndefined()
    yield* Effect.sleep("1100 millis")
    expect((yield* post("/mfa", at.session, at.csrf, { otpToken: code })).status).toBe(200)
  }).pipe(Effect.scoped)

type Scenario = typeof flow

// A scenario with its sessions and TOTP devices in one SQLite database.
const onSqlite = (scenario: Scenario) => {
  const database = SqliteClient.layer({ filename: ":memory:" })
  return Effect.gen(function*() {
    const shared = yield* Layer.memoize(database)
    yield* scenario(
      () => SqlSessionStore.layer().pipe(Layer.provide(shared)),
      () => SqlTotpStore.layer().pipe(Layer.provide(shared))
    )
  }).pipe(Effect.scoped)
}

// The same on PostgreSQL, under a prefix of its own whose tables are dropped after.
const onPostgres = (scenario: Scenario) => {
  const prefix = Postgres.uniquePrefix("mfa")
  const tables = Effect.all([SqlSessionStore.tables({ tablePrefix: prefix }), SqlTotpStore.tables({ tablePrefix: prefix })]).pipe(
    Effect.map(([s, t]) => [s.session, s.migrations, t.device, t.recoveryCode, t.migrations])
  )
  return Effect.gen(function*() {
    const shared = yield* Layer.memoize(Postgres.poolDropping(tables))
    yield* scenario(
      () => SqlSessionStore.layer({ tablePrefix: prefix }).pipe(Layer.provide(shared)),
      () => SqlTotpStore.layer({ tablePrefix: prefix }).pipe(Layer.provide(shared))
    )
  }).pipe(Effect.scoped)
}

// Sessions in Redis under a prefix of their own, deleted after; TOTP devices in memory.
const onRedis = (scenario: Scenario, name: string) => {
  const keyPrefix = Redis.uniquePrefix(name)
  return scenario(
    () => RedisSessionStore.layer({ url: Redis.redisUrl, keyPrefix }),
    () => TotpStore.layerMemory
  ).pipe(Effect.ensuring(Redis.deleteKeys(keyPrefix)))
}

describe("multi-factor login over HTTP", () => {
  it.live("sessions and TOTP devices in SQLite", () => onSqlite(flow))

  describe("removing or replacing the device takes the second factor from the sessions that stepped up with it", () => {
    it.live("memory", () => deviceGone(() => MemorySessionStore.layer, () => TotpStore.layerMemory))

    it.live("SQLite", () => onSqlite(deviceGone))

    it.live.skipIf(Postgres.missing)("PostgreSQL", () => onPostgres(deviceGone))

    it.live.skipIf(Redis.missing)("sessions in Redis", () => onRedis(deviceGone, "mfa-device"))
  })

  describe("a step-up the throttle refuses unchecked is a 429 with Retry-After, a wrong code a 401", () => {
    it.live("memory", () => throttledStepUp(() => MemorySessionStore.layer, () => TotpStore.layerMemory))

    it.live("SQLite", () => onSqlite(throttledStepUp))

    it.live.skipIf(Postgres.missing)("PostgreSQL", () => onPostgres(throttledStepUp))
  })

  it.live.skipIf(Redis.missing)("sessions in Redis", () => onRedis(flow, "mfa"))
})
