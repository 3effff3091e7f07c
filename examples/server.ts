// The example app: an HttpApi with session login, backed by the model backend on a SQLite file.
//
//   npm start                                   # http://127.0.0.1:8000
//   npm run cli -- createuser alice             # in another terminal
//   curl -c jar -H 'content-type: application/json' -d '{"username":"alice","password":"..."}' localhost:8000/login
//   curl -b jar localhost:8000/me
//
// Environment: PORT (8000; 0 picks a free port), HOST (127.0.0.1), DATABASE_FILE
// (./effect-auth.sqlite, shared with the CLI), SECRET_KEY (a development default with a warning),
// SECRET_KEY_FALLBACKS, SESSION_MAX_AGE, SESSION_IDLE_TIMEOUT, PASSWORD_HASHERS and
// PASSWORD_HASHER_* (see PasswordHasher.layerConfig), REDIS_URL (login throttling counters in
// Redis, shared by every instance; in memory without it). docs/example-app.md walks through it.
//
// POST /login takes JSON or an HTML form (application/x-www-form-urlencoded); any other body is a
// 415. A body that does not parse or decode is a 400 with a fixed message that never repeats what
// was sent (it may hold a password), logged in one line.
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as AuthStack from "effect-auth/AuthStack"
import * as ModelBackend from "effect-auth/backends/ModelBackend"
import * as Lockout from "effect-auth/Lockout"
import * as Authentication from "effect-auth/http/Authentication"
import * as CurrentUser from "effect-auth/http/CurrentUser"
import * as HttpAuth from "effect-auth/http/HttpAuth"
import * as NodeServer from "effect-auth/http/NodeServer"
import * as PasswordHasher from "effect-auth/PasswordHasher"
import * as Session from "effect-auth/Session"
import * as SqlSessionStore from "effect-auth/SqlSessionStore"
import * as SqlUserStore from "effect-auth/SqlUserStore"
import type { User } from "effect-auth/User"

// --- the API -------------------------------------------------------------------------------------

const UserJson = Schema.Struct({
  id: Schema.String,
  username: Schema.String,
  isSuperuser: Schema.Boolean
})

const LoginPayload = Schema.Struct({
  username: Schema.String,
  // Redacted from the moment it is decoded: it never reaches a log or a span in clear.
  password: Schema.Redacted(Schema.String.annotations({ message: () => "Expected a password" }))
})

const LoginResult = Schema.Struct({
  user: UserJson,
  // Send it back as `X-CSRFToken` on unsafe requests (POST /logout) made with the cookie.
  csrfToken: Schema.String
})

const Me = Schema.Struct({
  user: UserJson,
  method: Schema.String,
  permissions: Schema.Array(Schema.String)
})

const Report = Schema.Struct({ id: Schema.Number, title: Schema.String })

// The payload is declared for the API's description (OpenAPI); the handler reads and checks the body
// itself (see "request bodies" below).
const LoginEndpoint = HttpApiEndpoint.post("login", "/login").setPayload(LoginPayload).addSuccess(LoginResult)

// Login and logout serve anonymous requests too; OptionalAuthentication still declares and
// enforces the 401/403/503 of bad credentials and CSRF failures.
class SessionGroup extends HttpApiGroup.make("session")
  .add(LoginEndpoint)
  .add(HttpApiEndpoint.post("logout", "/logout"))
  .middleware(Authentication.OptionalAuthentication)
{}

class AccountGroup extends HttpApiGroup.make("account")
  .add(HttpApiEndpoint.get("me", "/me").addSuccess(Me))
  .add(HttpApiEndpoint.get("reports", "/reports").addSuccess(Schema.Array(Report)))
  .middleware(Authentication.Authentication)
{}

class Api extends HttpApi.make("example").add(SessionGroup).add(AccountGroup) {}

// The stored user carries its password hash: answer only the public fields.
const userJson = (user: User) => ({ id: user.id, username: user.username, isSuperuser: user.isSuperuser })

const AccountLive = HttpApiBuilder.group(Api, "account", (handlers) =>
  handlers
    .handle("me", () =>
      Effect.gen(function*() {
        const { getAllPermissions, method, user } = yield* CurrentUser.CurrentUser
        const permissions = yield* Effect.orElseSucceed(getAllPermissions(), () => new Set<string>())
        return { user: userJson(user), method, permissions: Array.from(permissions).sort() }
      }))
    .handle("reports", () =>
      Effect.as(CurrentUser.requirePermission("reports.view_report"), [
        { id: 1, title: "Q1 revenue" },
        { id: 2, title: "Q2 revenue" }
      ])))

// --- request bodies ------------------------------------------------------------------------------

// HttpApi's own payload decoding answers a body it cannot use with an error that quotes the value
// ("Expected string, actual ...": a password, or the whole raw body), logs a JSON syntax error with
// its stack, reads a body of any size whole and writes a multipart body's parts to disk. So the
// login endpoint is implemented with `handleRaw`, which leaves the body alone, and its handler reads
// and checks it here. The checks belong to the endpoint the router matched, not to a path: the
// router also serves it as /login/, //login, /Login, /login;x or /%6cogin, which a middleware
// comparing the path's text with "/login" would let through unchecked.
const loginRoute = `${LoginEndpoint.method} ${LoginEndpoint.path}`

// A refusal: logged in one line, and the response it is answered with as the failure.
const badRequest = (status: number, message: string, logged: string) =>
  Effect.zipRight(Effect.logWarning(`${loginRoute}: ${logged}`), Effect.fail(HttpServerResponse.unsafeJson({ message }, { status })))

const maxLoginBody = 16 * 1024
const tooLarge = badRequest(413, "The request body is too large.", `refused a body over ${maxLoginBody} bytes`)
const unreadable = (logged: string) => badRequest(400, "The request body could not be read.", logged)

/** The body as a value to decode: JSON, or a form whose fields each appear once; or why not. */
const parseBody = (contentType: string, text: string): Either.Either<unknown, string> => {
  if (contentType === "application/json") {
    return Either.try({ try: () => JSON.parse(text) as unknown, catch: () => "malformed JSON" })
  }
  const fields: Record<string, string> = {}
  for (const [key, value] of new URLSearchParams(text)) {
    if (Object.hasOwn(fields, key)) return Either.left(`the form field "${key}" is repeated`)
    fields[key] = value
  }
  return Either.right(fields)
}

const pathsOf = (issue: ParseResult.ParseIssue, path: ReadonlyArray<PropertyKey> = []): Array<string> => {
  switch (issue._tag) {
    case "Pointer":
      return pathsOf(issue.issue, [...path, ...(Array.isArray(issue.path) ? issue.path : [issue.path])])
    case "Composite":
      return (Array.isArray(issue.issues) ? issue.issues : [issue.issues]).flatMap((inner) => pathsOf(inner, path))
    case "Refinement":
    case "Transformation":
      return pathsOf(issue.issue, path)
    default:
      return [path.map(String).join(".") || "(body)"]
  }
}

/**
 * The login body, decoded with the endpoint's Schema; or a failure with the response that refuses
 * it: 415 for a body that is neither JSON nor a url-encoded form, 413 over {@link maxLoginBody},
 * 400 with a fixed message for one that does not parse or decode. Each refusal is logged in one
 * line that names what was wrong, never what was sent.
 */
const loginPayload = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const contentType = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
    if (contentType !== "application/json" && contentType !== "application/x-www-form-urlencoded") {
      return yield* badRequest(
        415,
        "Send the body as application/json or application/x-www-form-urlencoded.",
        `refused a body of type "${contentType || "(none)"}"`
      )
    }
    // A login body is a few hundred bytes: anything past the bound is refused before it is read
    // (Content-Length) or while it is read (a chunked body stops at the bound), never buffered whole.
    const declared = Number(request.headers["content-length"] ?? 0)
    if (declared > maxLoginBody) return yield* tooLarge
    const text = yield* Effect.either(HttpIncomingMessage.withMaxBodySize(request.text, Option.some(maxLoginBody)))
    if (Either.isLeft(text)) {
      return yield* text.left.reason === "Decode" && /exceed|too large|max/i.test(String(text.left.cause))
        ? tooLarge
        : unreadable("the body could not be read")
    }
    // The text may have been read before, under a larger bound (the CSRF check reads a form's
    // csrfmiddlewaretoken when the request carries a session cookie), and is then not read again.
    if (Buffer.byteLength(text.right) > maxLoginBody) return yield* tooLarge
    const parsed = parseBody(contentType, text.right)
    if (Either.isLeft(parsed)) return yield* unreadable(parsed.left)
    const decoded = Schema.decodeUnknownEither(LoginPayload)(parsed.right, { errors: "all" })
    if (Either.isLeft(decoded)) {
      // Only the paths of the fields in error are logged, never their values: the issues are walked
      // without formatting them (a formatter prints the value, which may be a secret, or nested so
      // deep that printing it overflows the stack).
      const fields = pathsOf(decoded.left.issue)
      return yield* badRequest(
        400,
        "The request body must have the fields username and password, as strings.",
        `invalid fields: ${[...new Set(fields)].join(", ")}`
      )
    }
    return decoded.right
  })

const SessionLive = HttpApiBuilder.group(Api, "session", (handlers) =>
  handlers
    // handleRaw: the platform does not decode the payload (nor parse a multipart body); loginPayload does.
    .handleRaw("login", ({ request }) =>
      Effect.gen(function*() {
        const payload = yield* Effect.either(loginPayload(request))
        if (Either.isLeft(payload)) return payload.left
        const { csrfToken, user } = yield* HttpAuth.login(payload.right)
        return { user: userJson(user), csrfToken: Redacted.value(csrfToken) }
      }))
    .handle("logout", () => HttpAuth.logout))

// --- configuration -------------------------------------------------------------------------------

const developmentSecret = Redacted.make("development-only-secret-do-not-use-in-production")

const SessionConfig: Config.Config<Session.ConfigOptions> = Config.all({
  secret: Config.withDefault(Config.redacted("SECRET_KEY"), developmentSecret),
  // (empty entries, and an empty value, are none)
  fallbackSecrets: Session.fallbackSecretsConfig,
  maxAge: Config.option(Config.duration("SESSION_MAX_AGE")),
  idleTimeout: Config.option(Config.duration("SESSION_IDLE_TIMEOUT"))
})

// One SQLite file holds the users (migrated by layerSqlite) and the sessions (by SqlSessionStore).
const DatabaseLive = SqlUserStore.layerSqliteConfig({
  filename: Config.withDefault(Config.string("DATABASE_FILE"), "./effect-auth.sqlite")
})

// The whole auth stack in one layer: events, the fold over the model backend, sessions, HTTP auth
// and the HttpApi middlewares. Its type lists what is left to provide (the backend's layer and a
// session store); forgetting one does not compile.
// Throttling (docs/throttling.md): 5 failed logins for one username from one address lock that
// pair for 15 minutes, twice as long at each further lock; a locked login is a 429 with
// Retry-After and costs no password hash. With REDIS_URL the counters live in Redis.
const lockoutOptions: Lockout.Options = { by: "username-and-ip", limit: 5, coolOff: "15 minutes", backOff: 2 }
const LockoutLive = Effect.gen(function*() {
  const redisUrl = yield* Config.option(Config.string("REDIS_URL"))
  if (Option.isNone(redisUrl)) return Lockout.layerMemory(lockoutOptions)
  const { Redis } = yield* Effect.promise(() => import("ioredis"))
  const client = yield* Effect.acquireRelease(
    Effect.sync(() => new Redis(redisUrl.value)),
    (client) => Effect.promise(() => client.quit())
  )
  return Lockout.layerRedis({ client, ...lockoutOptions })
})

const AuthLive = Layer.unwrapScoped(
  Effect.gen(function*() {
    const lockout = yield* LockoutLive
    const sessions = yield* SessionConfig
    if (sessions.secret === developmentSecret) {
      yield* Console.warn(
        "WARNING: SECRET_KEY is not set; using a development secret that everybody knows. " +
          "Set SECRET_KEY to a long random string before this app faces anyone."
      )
    }
    return AuthStack.layer({
      backends: [ModelBackend.ModelBackend],
      sessions: {
        secret: sessions.secret,
        fallbackSecrets: sessions.fallbackSecrets,
        maxAge: Option.getOrUndefined(sessions.maxAge),
        idleTimeout: Option.getOrUndefined(sessions.idleTimeout)
      },
      // Plain HTTP on loopback: the cookies cannot be Secure here; behind TLS set `cookie: { secure: true }`.
      http: { realm: "effect-auth example", bearer: false },
      lockout
    })
  })
).pipe(
  Layer.provide(ModelBackend.layer()),
  Layer.provide(SqlSessionStore.layer()),
  Layer.provide(PasswordHasher.layerConfig()),
  Layer.provide(DatabaseLive)
)

const ServerLive = NodeHttpServer.layerConfig(NodeServer.createServer, {
  port: Config.withDefault(Config.integer("PORT"), 8000),
  host: Config.withDefault(Config.string("HOST"), "127.0.0.1")
})

// (an IPv6 host in brackets, as a URL has it: `http://[::1]:8000`)
const PrintUrl = Layer.effectDiscard(
  HttpServer.addressWith((address) =>
    Console.log(`effect-auth example app listening on ${
      address._tag === "TcpAddress" && address.hostname.includes(":")
        ? `http://[${address.hostname}]:${address.port}`
        : HttpServer.formatAddress(address)
    }`)
  )
)

const AppLive = HttpApiBuilder.serve(HttpMiddleware.logger).pipe(
  Layer.merge(PrintUrl),
  Layer.provide(HttpApiBuilder.api(Api)),
  Layer.provide([SessionLive, AccountLive]),
  Layer.provide(AuthLive),
  Layer.provide(ServerLive)
)

NodeRuntime.runMain(Layer.launch(AppLive))
