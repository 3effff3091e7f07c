/**
 * Requests per second of a route behind the HTTP middleware, against the same route without it,
 * and against express 5 + passport doing the same work.
 *
 * Six servers, each in its own child process (this file with `--serve <kind>`), all answering
 * `GET /plain` with `{"hello":"world"}` and `GET /protected` with `{"hello":<username>}` after
 * authenticating `Authorization: Bearer <token>` through a chain of three:
 *
 * - effect-api: an `HttpApi`; /protected's group has the `Authentication` middleware. Chain:
 *   ModelBackend (username/password: the token does not decode, NoMatch "unsupported"), a token
 *   backend that knows no token (NoMatch), a token backend with an in-memory table (match).
 * - effect-router: the same on `HttpRouter`, /protected wrapped in `HttpAuth.requireUser`.
 * - effect-api/attempts: effect-api with `AuthService.layer(..., { tracing: "attempts" })`: a span
 *   per call and per backend attempt whatever the tracer (the default, "auto", makes none under
 *   Effect's built-in tracer, which nobody exports).
 * - reference: the yardstick of the shared anchors (bench-anchors/http-auth, ab-effect.mjs)
 *   written for these routes: a hand-written Effect middleware, three functions folded with
 *   `catchTag` over a preallocated error, the user provided with `Effect.provideService`.
 * - reference-api: the same hand-written fold as an `HttpApiMiddleware` that provides the user,
 *   on an `HttpApi` shaped as effect-api's: the platform's own price of an API middleware.
 * - express: express 5 + passport 0.7, `passport.authenticate([...three], { session: false })`:
 *   a username/password strategy that fails without a body, a bearer strategy that knows no
 *   token, a bearer strategy with the same table.
 *
 * Method: the shared anchors' same-process A/B (bench-anchors/http-auth/ab.sh). Each server
 * exposes both routes, and the load alternates between them; the servers run on core 0 and the
 * load generator on core 1 (`taskset`; `--pin 0` turns it off), so the server is the bottleneck
 * and its requests/s price its own work. The load comes from `wrk` (one thread, 50 connections)
 * when it is installed (Debian: `apt install wrk`), else from autocannon in this process. Each
 * round measures every (server, route) pair once, the servers' order rotated and plain/protected
 * swapped every other round, so a server's two routes are always neighbours in time. Both routes
 * get the same request, `Authorization` header included, as ab.sh sends it, so that the ratio
 * prices the middleware and not Node parsing a header the plain route never saw (`--token-on-plain
 * 0` sends it to /protected only, as this bench did until 2026-12-06). Effect's
 * default tracer stays on (the server makes a span per request); no request logging anywhere.
 * Each server also reports its own CPU time (`process.cpuUsage()`, over IPC), giving its CPU per
 * request.
 *
 *   npx tsx bench/http-middleware.ts [--rounds 5] [--duration 5] [--connections 50] [--warmup 2] [--pin 1] [--token-on-plain 1]
 *   npx tsx bench/http-middleware.ts --in-process [--rounds 5]   # the same A/B through a web handler, no sockets
 *   npx tsx bench/http-middleware.ts --breakdown   # where a protected request's time goes, in-process
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { spawn, spawnSync } from "node:child_process"
import { once } from "node:events"
import * as http from "node:http"
import { createRequire } from "node:module"
import * as os from "node:os"
import { fileURLToPath } from "node:url"
import * as AuthError from "../src/AuthError.js"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as Authentication from "../src/http/Authentication.js"
import * as CurrentUser from "../src/http/CurrentUser.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import type { User } from "../src/User.js"
import * as TokenBackends from "./tokenBackends.js"
import { parseArgs, printTable } from "./utils.js"

const require = createRequire(import.meta.url)

const TOKEN = "tok_7f3a9c1e5b2d4f6a8c0e"
const alice: User = { id: "1", username: "alice", isActive: true, isSuperuser: false }
// The token table every "tokens" backend and strategy looks the token up in.
const tokens = new Map<string, User>([[TOKEN, alice]])
for (let i = 0; i < 1000; i++) tokens.set(`tok_other_${i}`, { ...alice, id: String(i + 2), username: `user${i}` })

// --- effect-auth servers ---------------------------------------------------------------------------

// Two token backends (docs/writing-a-backend.md's prebuilt failures): one that knows no token,
// one with the table.
const OtherTokens = TokenBackends.refusing("other-tokens")
const Tokens = TokenBackends.table("tokens", tokens)

const httpAuth = (tracing: AuthService.Tracing) =>
  HttpAuth.layer({ bearer: true, session: false }).pipe(
    Layer.provideMerge(AuthService.layer([ModelBackend.ModelBackend, OtherTokens, Tokens], { tracing })),
    Layer.provide(AuthEvents.layer),
    Layer.provide(ModelBackend.layer()),
    Layer.provide(MemoryUserStore.layer),
    Layer.provide(PasswordHasher.layerTest)
  )

const Hello = Schema.Struct({ hello: Schema.String })

class Open extends HttpApiGroup.make("open").add(HttpApiEndpoint.get("plain", "/plain").addSuccess(Hello)) {}
class Protected extends HttpApiGroup.make("protected")
  .add(HttpApiEndpoint.get("protected", "/protected").addSuccess(Hello))
  .middleware(Authentication.Authentication)
{}
class Api extends HttpApi.make("bench").add(Open).add(Protected) {}

const listen = NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" })

const printPort = Layer.effectDiscard(
  Effect.flatMap(HttpServer.HttpServer, (server) =>
    Effect.sync(() => console.log((server.address as HttpServer.TcpAddress).port)))
)

// The apps without a server: the in-process A/B (`--in-process`) runs them through a web handler.
const effectApiApp = (tracing: AuthService.Tracing) => HttpApiBuilder.api(Api).pipe(
  Layer.provide([
    HttpApiBuilder.group(Api, "open", (h) => h.handle("plain", () => Effect.succeed({ hello: "world" }))),
    HttpApiBuilder.group(Api, "protected", (h) =>
      h.handle("protected", () => Effect.map(CurrentUser.CurrentUser, ({ user }) => ({ hello: user.username }))))
  ]),
  Layer.provide(Authentication.layer),
  Layer.provide(httpAuth(tracing))
)

// The same API behind an Authentication that declares no `security` (Authentication.Tag with no
// sources): the platform's security decoding is skipped, and OpenAPI documents no scheme.
class UndeclaredAuthentication extends Authentication.Tag<UndeclaredAuthentication>()("bench/UndeclaredAuthentication", {
  sources: []
}) {}
class ProtectedUndeclared extends HttpApiGroup.make("protected")
  .add(HttpApiEndpoint.get("protected", "/protected").addSuccess(Hello))
  .middleware(UndeclaredAuthentication)
{}
class ApiUndeclared extends HttpApi.make("bench-undeclared").add(Open).add(ProtectedUndeclared) {}
const effectApiUndeclaredApp = (tracing: AuthService.Tracing) => HttpApiBuilder.api(ApiUndeclared).pipe(
  Layer.provide([
    HttpApiBuilder.group(ApiUndeclared, "open", (h) => h.handle("plain", () => Effect.succeed({ hello: "world" }))),
    HttpApiBuilder.group(ApiUndeclared, "protected", (h) =>
      h.handle("protected", () => Effect.map(CurrentUser.CurrentUser, ({ user }) => ({ hello: user.username }))))
  ]),
  Layer.provide(Authentication.layerTag(UndeclaredAuthentication)),
  Layer.provide(httpAuth(tracing))
)

const effectApi = (tracing: AuthService.Tracing) => HttpApiBuilder.serve().pipe(
  Layer.merge(printPort),
  Layer.provide(effectApiApp(tracing)),
  Layer.provide(listen)
)

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/plain", HttpServerResponse.json({ hello: "world" })),
  HttpRouter.get(
    "/protected",
    HttpAuth.requireUser(
      Effect.flatMap(CurrentUser.CurrentUser, ({ user }) => HttpServerResponse.json({ hello: user.username }))
    )
  )
)

const effectRouter = (tracing: AuthService.Tracing) => HttpServer.serve(router).pipe(
  Layer.merge(printPort),
  Layer.provide(httpAuth(tracing)),
  Layer.provide(listen)
)

// --- the yardstick: a hand-written Effect middleware ------------------------------------------------

// What the shared anchors call a hand-written 3-backend Effect fold (bench-anchors/http-auth,
// ab-effect.mjs), written here for this bench's routes: preallocated failures, a `catchTag` chain,
// `Effect.provideService` for the user. It has none of the library's semantics (no attempts, no
// events, no CSRF, no typed outcomes): it prices the least an Effect middleware can cost.
class RefNoMatch extends Data.TaggedError("RefNoMatch") {}
class RefUser extends Context.Tag("bench/RefUser")<RefUser, User>() {}
const refNoMatch = new RefNoMatch()
const refBearer = (header: string | undefined) =>
  header !== undefined && header.startsWith("Bearer ") ? header.slice(7) : undefined
const refBackends: ReadonlyArray<(request: HttpServerRequest.HttpServerRequest) => Effect.Effect<User, RefNoMatch>> = [
  () => Effect.fail(refNoMatch),
  () => Effect.fail(refNoMatch),
  (request) => {
    const user = tokens.get(refBearer(request.headers.authorization) ?? "")
    return user === undefined ? Effect.fail(refNoMatch) : Effect.succeed(user)
  }
]
const refAuthenticate = (request: HttpServerRequest.HttpServerRequest) =>
  refBackends.slice(1).reduce(
    (chain, backend) => Effect.catchTag(chain, "RefNoMatch", () => backend(request)),
    refBackends[0]!(request)
  )
const refUnauthorized = HttpServerResponse.empty({ status: 401 })
const refRequireUser = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.matchEffect(refAuthenticate(request), {
      onFailure: () => Effect.succeed(refUnauthorized),
      onSuccess: (user) => Effect.provideService(app, RefUser, user)
    }))
const referenceRouter = HttpRouter.empty.pipe(
  HttpRouter.get("/plain", HttpServerResponse.json({ hello: "world" })),
  HttpRouter.get("/protected", refRequireUser(Effect.flatMap(RefUser, (user) => HttpServerResponse.json({ hello: user.username }))))
)
const referenceServer = HttpServer.serve(referenceRouter).pipe(Layer.merge(printPort), Layer.provide(listen))

// The same hand-written fold as an `HttpApiMiddleware` (no `security`: it reads the header itself),
// on an `HttpApi` like effect-api's: what the platform's middleware machinery costs by itself.
class RefAuthentication extends HttpApiMiddleware.Tag<RefAuthentication>()("bench/RefAuthentication", {
  provides: RefUser,
  failure: HttpApiError.Unauthorized
}) {}
class RefProtected extends HttpApiGroup.make("protected")
  .add(HttpApiEndpoint.get("protected", "/protected").addSuccess(Hello))
  .middleware(RefAuthentication)
{}
class RefApi extends HttpApi.make("bench-ref").add(Open).add(RefProtected) {}
const refUnauthorizedError = new HttpApiError.Unauthorized()
const referenceApiApp = HttpApiBuilder.api(RefApi).pipe(
  Layer.provide([
    HttpApiBuilder.group(RefApi, "open", (h) => h.handle("plain", () => Effect.succeed({ hello: "world" }))),
    HttpApiBuilder.group(RefApi, "protected", (h) =>
      h.handle("protected", () => Effect.map(RefUser, (user) => ({ hello: user.username }))))
  ]),
  Layer.provide(Layer.succeed(
    RefAuthentication,
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.mapError(refAuthenticate(request), () => refUnauthorizedError))
  ))
)
// The hand-written HttpApi app with as many services beside it as an app built on effect-auth
// has (AuthService, HttpAuth, AuthEvents, the stores, ...): each request that provides a service
// copies and compares the whole context, so its size is part of a middleware's cost.
const padding: Layer.Layer<never> = Layer.effectContext(Effect.sync(() =>
  Array.from({ length: 16 }, (_, i) => i).reduce(
    (context, i) => Context.add(context, Context.GenericTag<{ readonly i: number }>(`pad-${i}`), { i }),
    Context.empty() as Context.Context<never>
  )
))

const referenceApi = HttpApiBuilder.serve().pipe(
  Layer.merge(printPort),
  Layer.provide(referenceApiApp),
  Layer.provide(listen)
)

// --- express + passport ----------------------------------------------------------------------------

const expressServer = () => {
  const express = require("express")
  const passport = require("passport")
  const { Strategy: BearerStrategy } = require("passport-http-bearer")
  const { Strategy } = require("passport-strategy")

  // passport-local's part for a request without username and password: fail. (passport-local
  // itself fails those with status 400, which passport would then answer instead of 401.)
  class PasswordStrategy extends Strategy {
    name = "password"
    authenticate(this: any, req: any) {
      const username = req.body?.username
      const password = req.body?.password
      if (typeof username !== "string" || typeof password !== "string") return this.fail()
      return this.fail()
    }
  }
  passport.use("password", new PasswordStrategy())
  passport.use("other-tokens", new BearerStrategy((_token: string, done: any) => done(null, false)))
  passport.use("tokens", new BearerStrategy((token: string, done: any) => done(null, tokens.get(token) ?? false)))

  const app = express()
  app.use(passport.initialize())
  app.get("/plain", (_req: any, res: any) => res.json({ hello: "world" }))
  app.get(
    "/protected",
    passport.authenticate(["password", "other-tokens", "tokens"], { session: false }),
    (req: any, res: any) => res.json({ hello: req.user.username })
  )
  const server = app.listen(0, "127.0.0.1", () => console.log(server.address().port))
}

// The apps of the in-process A/B (`--in-process`, below).
const inProcessKinds = ["effect-api", "effect-api-undeclared", "effect-router", "reference", "reference-api", "reference-api-padded"] as const
type InProcessKind = typeof inProcessKinds[number]

// --- the child: one server ---------------------------------------------------------------------------

const serveIndex = process.argv.indexOf("--serve")
if (serveIndex !== -1) {
  const kind = process.argv[serveIndex + 1]
  // A clean exit, so that `node --cpu-prof` can write its profile.
  process.on("SIGTERM", () => process.exit(0))
  // The parent asks for the CPU time used so far, to split the server's cost from autocannon's.
  process.on("message", () => process.send?.(process.cpuUsage()))
  // effect-api | effect-router, optionally with the AuthService tracing level: effect-api/attempts
  const [form, tracing = "auto"] = (kind ?? "").split("/") as [string, AuthService.Tracing | undefined]
  if (form === "express") expressServer()
  else if (form === "reference") Effect.runFork(Layer.launch(referenceServer))
  else if (form === "reference-api") Effect.runFork(Layer.launch(referenceApi))
  else Effect.runFork(Layer.launch(form === "effect-router" ? effectRouter(tracing) : effectApi(tracing)))
} else if (process.argv.includes("--in-process-child")) {
  await inProcessChild(process.argv[process.argv.indexOf("--in-process-child") + 1] as InProcessKind)
} else if (process.argv.includes("--in-process")) {
  await inProcess()
} else if (process.argv.includes("--breakdown")) {
  await breakdown()
} else {
  await main()
}

// --- the same A/B without sockets: the apps through a web handler, in-process -----------------------

// Without node:http and the kernel's share of every request, a route costs less, so the same
// middleware is a larger part of it: a stricter ratio than over sockets, and a much steadier one
// (no load generator competing for the cores). One process per (kind, round), kinds rotated.

async function inProcessChild(kind: InProcessKind) {
  const { handler } = kind === "effect-api"
    ? HttpApiBuilder.toWebHandler(Layer.merge(effectApiApp("auto"), HttpServer.layerContext))
    : kind === "effect-api-undeclared"
    ? HttpApiBuilder.toWebHandler(Layer.merge(effectApiUndeclaredApp("auto"), HttpServer.layerContext))
    : kind === "reference-api"
    ? HttpApiBuilder.toWebHandler(Layer.merge(referenceApiApp, HttpServer.layerContext))
    : kind === "reference-api-padded"
    ? HttpApiBuilder.toWebHandler(Layer.mergeAll(referenceApiApp, HttpServer.layerContext, padding))
    : kind === "effect-router"
    ? HttpApp.toWebHandlerLayer(router, httpAuth("auto"))
    : HttpApp.toWebHandlerLayer(referenceRouter, Layer.empty)
  const N = 4000
  // µs per request of N sequential requests, each a fresh web Request with the bearer token.
  const run = async (path: string) => {
    const start = performance.now()
    for (let i = 0; i < N; i++) {
      const response = await handler(new Request(`http://bench${path}`, { headers: { authorization: `Bearer ${TOKEN}` } }))
      if (response.status !== 200) throw new Error(`${kind} ${path}: ${response.status}`)
      await response.arrayBuffer()
    }
    return ((performance.now() - start) * 1000) / N
  }
  for (let i = 0; i < 3; i++) await run(i % 2 === 0 ? "/plain" : "/protected")
  const pairs: Array<{ plain: number; protected: number }> = []
  for (let r = 0; r < 9; r++) {
    // plain and protected back to back, their order swapped every other pair
    if (r % 2 === 0) {
      const plain = await run("/plain")
      pairs.push({ plain, protected: await run("/protected") })
    } else {
      const protectedTime = await run("/protected")
      pairs.push({ plain: await run("/plain"), protected: protectedTime })
    }
  }
  console.log(JSON.stringify(pairs))
  process.exit(0)
}

async function inProcess() {
  const { rounds: ROUNDS } = parseArgs({ rounds: 5 })
  const self = fileURLToPath(import.meta.url)
  const loadBefore = os.loadavg()[0]!
  const results = new Map<InProcessKind, Array<{ plain: number; protected: number }>>()
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < inProcessKinds.length; i++) {
      const kind = inProcessKinds[(i + round) % inProcessKinds.length]!
      const child = spawn(process.execPath, ["--import", "tsx", self, "--in-process-child", kind], {
        stdio: ["ignore", "pipe", "inherit"]
      })
      let out = ""
      child.stdout!.on("data", (chunk) => (out += chunk))
      await once(child, "close")
      results.set(kind, [...(results.get(kind) ?? []), ...JSON.parse(out)])
    }
  }
  const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
  console.log(
    `Node ${process.version}, ${os.availableParallelism()} cores, load average ${loadBefore.toFixed(1)} before, ${
      os.loadavg()[0]!.toFixed(1)
    } after; ${ROUNDS} processes per kind x 9 pairs of 4000 requests`
  )
  printTable("in-process A/B through a web handler (median over all pairs)", [
    ["app", "plain µs/req", "protected µs/req", "protected ÷ plain (throughput, per pair)", "protected − plain µs (per pair)"],
    ...inProcessKinds.map((kind) => {
      const pairs = results.get(kind)!
      return [
        kind,
        median(pairs.map((p) => p.plain)).toFixed(1),
        median(pairs.map((p) => p.protected)).toFixed(1),
        median(pairs.map((p) => p.plain / p.protected)).toFixed(3),
        median(pairs.map((p) => p.protected - p.plain)).toFixed(1)
      ]
    })
  ])
}

// --- where a protected request's time goes, in-process ---------------------------------------------

// Microseconds per request of each layer, without HTTP: fresh requests (HttpAuth memoises per
// request object) built outside the timed loop, best of 7 rounds of 5000.
async function breakdown() {
  const N = 5000
  const request = () =>
    HttpServerRequest.fromWeb(new Request("http://x/protected", { headers: { authorization: `Bearer ${TOKEN}` } }))
  const measure = (
    layer: Layer.Layer<Authentication.Authentication | HttpAuth.HttpAuth | AuthService.AuthService, unknown>,
    run: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<unknown, unknown, any>
  ) =>
    Effect.runPromise(
      Effect.gen(function*() {
        let best = Infinity
        for (let round = 0; round < 7; round++) {
          const requests = Array.from({ length: N }, request)
          const start = performance.now()
          for (const r of requests) yield* Effect.provideService(run(r), HttpServerRequest.HttpServerRequest, r)
          best = Math.min(best, ((performance.now() - start) * 1000) / N)
        }
        return best.toFixed(1)
      }).pipe(Effect.provide(layer)) as Effect.Effect<string, unknown>
    )
  const micro = (run: (i: number) => unknown) => {
    let best = Infinity
    for (let round = 0; round < 5; round++) {
      const start = performance.now()
      for (let i = 0; i < 100_000; i++) run(i)
      best = Math.min(best, ((performance.now() - start) * 1000) / 100_000)
    }
    return best.toFixed(2)
  }
  // Inside one running fiber, as in a request handler.
  const inFiber = (wrap: (e: Effect.Effect<number>) => Effect.Effect<number>) =>
    Effect.runSync(Effect.gen(function*() {
      let best = Infinity
      for (let round = 0; round < 5; round++) {
        const start = performance.now()
        for (let i = 0; i < 100_000; i++) yield* wrap(Effect.succeed(i))
        best = Math.min(best, ((performance.now() - start) * 1000) / 100_000)
      }
      return best.toFixed(2)
    }))
  const handler = Effect.flatMap(CurrentUser.CurrentUser, ({ user }) => HttpServerResponse.json({ hello: user.username }))
  const authenticate = Effect.flatMap(AuthService.AuthService, (auth) => auth.authenticate({ token: Redacted.make(TOKEN) }))
  const rows: Array<Array<string>> = [["µs per request (best of 7 x 5000)", "auto", "attempts", "off"]]
  const layers = (["auto", "attempts", "off"] as const).map((tracing) =>
    Authentication.layer.pipe(Layer.provideMerge(httpAuth(tracing)))
  )
  // One measurement at a time: concurrent fibers would interleave and share the clock.
  const row = async (label: string, run: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<unknown, unknown, any>) => {
    const cells: Array<string> = []
    for (const layer of layers) cells.push(await measure(layer, run))
    rows.push([label, ...cells])
  }
  await row("the handler alone (JSON response)", () => HttpServerResponse.json({ hello: "world" }))
  await row("AuthService.authenticate, 3 backends", () => authenticate)
  await row("HttpAuth.authenticate (header parsing, memo)", (r) => Effect.flatMap(HttpAuth.HttpAuth, (s) => s.authenticate(r)))
  await row("HttpAuth.requireUser(handler)", () => HttpAuth.requireUser(handler))
  // As HttpApiBuilder applies a middleware that provides a service.
  await row(
    "Authentication middleware + handler (HttpApi)",
    () => Effect.flatMap(Authentication.Authentication, (m) => Effect.provideServiceEffect(handler, CurrentUser.CurrentUser, m))
  )
  printTable("AuthService tracing level:", rows)

  const Tag = Context.GenericTag<number>("bench/Tag")
  const Tag2 = Context.GenericTag<number>("bench/Tag2")
  const Tag3 = Context.GenericTag<number>("bench/Tag3")
  printTable("primitives (µs each, best of 5 x 100,000)", [
    ["operation", "µs"],
    ["yield* Effect.succeed(i) in a fiber (reference)", inFiber((e) => e)],
    ["... with Effect.provideService around it", inFiber((e) => Effect.provideService(e, Tag, 1))],
    ["... with 3 Effect.provideService around it", inFiber((e) => e.pipe(Effect.provideService(Tag, 1), Effect.provideService(Tag2, 2), Effect.provideService(Tag3, 3)))],
    ["... with the 3 services added in one context change", inFiber((e) =>
      Effect.contextWithEffect((context: Context.Context<never>) =>
        Effect.locally(e, FiberRef.currentContext, Context.add(Context.add(Context.add(context, Tag, 1), Tag2, 2), Tag3, 3))
      ))],
    ["... with Effect.withSpan around it", inFiber((e) => Effect.withSpan(e, "span", { captureStackTrace: false }))],
    ["new AuthError.NoMatch({ ... })", micro(() => new AuthError.NoMatch({ backend: "b", reason: "invalid-credentials" }))]
  ])
}

// --- the parent: load and report ---------------------------------------------------------------------

interface AutocannonResult {
  readonly requests: { readonly average: number; readonly total: number }
  readonly latency: { readonly p50: number; readonly p99: number }
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
}

async function main() {
  // Before our own processes add to it: how busy the machine was with other work.
  const loadBefore = os.loadavg()[0]!
  const { connections: CONNECTIONS, duration: DURATION, pin: PIN, rounds: ROUNDS, "token-on-plain": TOKEN_ON_PLAIN, warmup: WARMUP } =
    parseArgs({
      rounds: 5,
      duration: 5,
      connections: 50,
      warmup: 2,
      pin: 1,
      "token-on-plain": 1
    })
  const self = fileURLToPath(import.meta.url)
  const kinds = ["effect-api", "effect-router", "effect-api/attempts", "reference", "reference-api", "express"] as const
  type Kind = typeof kinds[number]

  // As the shared anchors' ab.sh: the servers on core 0, the load generator on core 1, so that a
  // server is the bottleneck and requests/s price its own work. wrk (C, one thread) where it is
  // installed, else autocannon in this process.
  const onPath = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0
  const pinned = PIN === 1 && os.availableParallelism() >= 2 && onPath("taskset")
  const useWrk = onPath("wrk")
  const onCore = (core: number, argv: ReadonlyArray<string>): [string, Array<string>] =>
    pinned ? ["taskset", ["-c", String(core), ...argv]] : [argv[0]!, argv.slice(1)]

  const children: Array<ReturnType<typeof spawn>> = []
  const byKind = new Map<Kind, ReturnType<typeof spawn>>()
  process.on("exit", () => children.forEach((child) => child.kill()))
  const start = async (kind: Kind): Promise<string> => {
    const [cmd, args] = onCore(0, [process.execPath, "--import", "tsx", self, "--serve", kind])
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit", "ipc"] })
    children.push(child)
    byKind.set(kind, child)
    const [chunk] = (await once(child.stdout!, "data")) as [Buffer]
    return `http://127.0.0.1:${chunk.toString().trim()}`
  }
  const urls = Object.fromEntries(await Promise.all(kinds.map(async (k) => [k, await start(k)] as const))) as Record<Kind, string>

  const headers = { authorization: `Bearer ${TOKEN}` }
  // Every server must answer as the others do before it is measured.
  for (const kind of kinds) {
    const plain = await fetch(`${urls[kind]}/plain`)
    const ok = await fetch(`${urls[kind]}/protected`, { headers })
    const anonymous = await fetch(`${urls[kind]}/protected`)
    const wrong = await fetch(`${urls[kind]}/protected`, { headers: { authorization: "Bearer nope" } })
    const bodies = [await plain.json(), await ok.json()]
    if (
      plain.status !== 200 || ok.status !== 200 || anonymous.status !== 401 || wrong.status !== 401 ||
      JSON.stringify(bodies) !== JSON.stringify([{ hello: "world" }, { hello: "alice" }])
    ) {
      throw new Error(`${kind} does not answer as expected: ${plain.status} ${ok.status} ${anonymous.status} ${wrong.status}`)
    }
  }

  // Microseconds of CPU (user + system) the server's process has used so far.
  const cpuOf = async (kind: Kind): Promise<number> => {
    const child = byKind.get(kind)!
    child.send("cpu")
    const [usage] = (await once(child, "message")) as [NodeJS.CpuUsage]
    return usage.user + usage.system
  }
  interface LoadResult {
    readonly rps: number
    readonly total: number
    readonly p99: number
    /** Non-2xx answers: the server did not do the work it is measured on. */
    readonly bad: number
    /** Connections wrk saw fail (connect, read, write, timeout): reported, not fatal. */
    readonly socketErrors: number
    readonly output: string
  }
  const millis = (value: string, unit: string) => Number(value) * (unit === "us" ? 0.001 : unit === "s" ? 1000 : 1)
  const viaWrk = async (url: string, withToken: boolean, seconds: number): Promise<LoadResult> => {
    const [cmd, args] = onCore(1, [
      "wrk", "-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, "--latency",
      ...(withToken ? ["-H", `Authorization: Bearer ${TOKEN}`] : []),
      url
    ])
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout!.on("data", (chunk) => (out += chunk))
    await once(child, "close")
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)
    const total = /(\d+) requests in/.exec(out)
    const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out)
    if (rps === null || total === null || p99 === null) throw new Error(`wrk printed no result:\n${out}`)
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
    const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
    const socketErrors = errors === null ? 0 : errors.slice(1).reduce((n, x) => n + Number(x), 0)
    return { rps: Number(rps[1]), total: Number(total[1]), p99: millis(p99[1]!, p99[2]!), bad: non2xx, socketErrors, output: out }
  }
  const viaAutocannon = async (url: string, withToken: boolean, seconds: number): Promise<LoadResult> => {
    const autocannon: (options: object) => Promise<AutocannonResult> = require("autocannon")
    const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds, ...(withToken ? { headers } : {}) })
    return {
      rps: result.requests.average,
      total: result.requests.total,
      p99: result.latency.p99,
      bad: result.non2xx,
      socketErrors: result.errors + result.timeouts,
      output: ""
    }
  }
  const load = async (kind: Kind, route: "plain" | "protected", seconds: number) => {
    const cpuBefore = await cpuOf(kind)
    const url = `${urls[kind]}/${route}`
    const result = await (useWrk ? viaWrk : viaAutocannon)(url, route === "protected" || TOKEN_ON_PLAIN === 1, seconds)
    if (result.bad > 0) throw new Error(`${kind} /${route}: ${result.bad} non-2xx answers\n${result.output}`)
    if (result.socketErrors > 0) console.warn(`${kind} /${route}: ${result.socketErrors} socket errors\n${result.output}`)
    return { ...result, cpuPerRequest: (await cpuOf(kind) - cpuBefore) / result.total }
  }

  const runs = kinds.flatMap((kind) => (["plain", "protected"] as const).map((route) => ({ kind, route })))
  for (const { kind, route } of runs) await load(kind, route, WARMUP)

  const rps = new Map<string, Array<number>>()
  const p99 = new Map<string, Array<number>>()
  const cpu = new Map<string, Array<number>>()
  const push = (map: Map<string, Array<number>>, key: string, value: number) => map.set(key, [...(map.get(key) ?? []), value])
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the servers, and swap plain/protected every other round.
    const order = kinds.map((_, i) => kinds[(i + round) % kinds.length]!)
    const routes = round % 2 === 0 ? (["plain", "protected"] as const) : (["protected", "plain"] as const)
    const line: Array<string> = []
    for (const kind of order) {
      for (const route of routes) {
        const result = await load(kind, route, DURATION)
        push(rps, `${kind} ${route}`, result.rps)
        push(p99, `${kind} ${route}`, result.p99)
        push(cpu, `${kind} ${route}`, result.cpuPerRequest)
        line.push(`${kind}/${route} ${Math.round(result.rps)}`)
      }
    }
    console.log(`round ${round + 1}: ${line.join(", ")}`)
  }

  const median = (xs: ReadonlyArray<number>) => {
    const s = [...xs].sort((a, b) => a - b)
    const m = s.length >> 1
    return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
  }
  const perRound = (a: string, b: string) => rps.get(a)!.map((x, i) => x / rps.get(b)![i]!)
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US")

  console.log(
    `\nNode ${process.version}, ${os.cpus()[0]?.model ?? "?"}, ${os.availableParallelism()} cores, load average ${loadBefore.toFixed(1)} before the run, ${
      os.loadavg()[0]!.toFixed(1)
    } at its end; ${ROUNDS} rounds x ${DURATION} s, ${CONNECTIONS} connections, load from ${
      useWrk ? "wrk" : "autocannon (in this process)"
    }, ${pinned ? "servers pinned to core 0 and the load generator to core 1" : "nothing pinned"}, ${
      TOKEN_ON_PLAIN === 1 ? "the token sent to both routes" : "the token sent to /protected only"
    }`
  )
  printTable(
    "requests/s (median over rounds)",
    [
      ["server", "plain", "protected", "protected ÷ plain (median per round)", "p99 plain / protected (ms)"],
      ...kinds.map((kind) => [
        kind,
        fmt(median(rps.get(`${kind} plain`)!)),
        fmt(median(rps.get(`${kind} protected`)!)),
        median(perRound(`${kind} protected`, `${kind} plain`)).toFixed(3),
        `${median(p99.get(`${kind} plain`)!).toFixed(1)} / ${median(p99.get(`${kind} protected`)!).toFixed(1)}`
      ])
    ]
  )
  printTable("protected route, effect-auth ÷ express + passport (median per round)", [
    ["server", "ratio"],
    ...kinds.filter((kind) => kind.startsWith("effect")).map((kind) => [
      kind,
      median(perRound(`${kind} protected`, "express protected")).toFixed(3)
    ])
  ])
  // Each form against the hand-written middleware of the same form (router / HttpApi).
  const referenceOf = (kind: Kind) => kind.startsWith("effect-api") ? "reference-api" : "reference"
  printTable("protected ÷ plain, effect-auth ÷ the hand-written reference of the same form (median per round)", [
    ["server", "reference", "ratio"],
    ...kinds.filter((kind) => kind.startsWith("effect")).map((kind) => [
      kind,
      referenceOf(kind),
      median(
        perRound(`${kind} protected`, `${kind} plain`).map((x, i) =>
          x / perRound(`${referenceOf(kind)} protected`, `${referenceOf(kind)} plain`)[i]!
        )
      ).toFixed(3)
    ])
  ])
  // The server's own CPU time per request: what a route costs it, whatever the load generator did.
  const cpuDiff = (kind: Kind) => cpu.get(`${kind} protected`)!.map((x, i) => x - cpu.get(`${kind} plain`)![i]!)
  printTable("server CPU per request, µs (median over rounds)", [
    ["server", "plain", "protected", "protected − plain (median per round)"],
    ...kinds.map((kind) => [
      kind,
      median(cpu.get(`${kind} plain`)!).toFixed(0),
      median(cpu.get(`${kind} protected`)!).toFixed(0),
      median(cpuDiff(kind)).toFixed(0)
    ])
  ])
  children.forEach((child) => child.kill())
}
