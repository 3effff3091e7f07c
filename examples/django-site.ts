/**
 * An Effect service beside a Django site: the same database (Django's own auth tables, adopted
 * as they are) and the same sessions (Django's `django_session`, its `sessionid` cookie), so a user
 * logged in on either side is logged in on both. See docs/django.md.
 *
 *   DJANGO_DATABASE=/path/to/db.sqlite3 DJANGO_SECRET_KEY=... npx tsx examples/django-site.ts
 *       serves http://127.0.0.1:3000 on the Django site's database: GET / says who the
 *       `sessionid` cookie belongs to, POST /login (JSON { username, password }) logs in
 *   npx tsx examples/django-site.ts --demo
 *       makes a throwaway Django site (examples/django/site.py, Debian's python3-django, or
 *       $DJANGO_PYTHON), logs in on
 *       Django and is recognised here, logs in here and is recognised by Django, then exits
 */
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import {
  AuthStack,
  CurrentUser,
  DjangoSessionStore,
  HttpAuth,
  ModelBackend,
  NodeServer,
  PasswordHasher,
  SqlUserStore
} from "effect-auth"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const demo = process.argv.includes("--demo")
const demoDir = demo ? fs.mkdtempSync(path.join(os.tmpdir(), "effect-auth-django-site-")) : undefined
const database = demoDir ? path.join(demoDir, "db.sqlite3") : process.env.DJANGO_DATABASE ?? "./db.sqlite3"
const secretKey = process.env.DJANGO_SECRET_KEY ?? "example-only-django-secret-key-0123456789"
const djangoSite = (...args: Array<string>) =>
  execFileSync(process.env.DJANGO_PYTHON ?? "/usr/bin/python3", [path.join(import.meta.dirname, "django", "site.py"), ...args], {
    env: { ...process.env, DJANGO_DATABASE: database, DJANGO_SECRET_KEY: secretKey },
    encoding: "utf8"
  }).trim()
if (demo) djangoSite("init")

// The Django site's SECRET_KEY signs its session data and keys the session auth hash.
const secret = Redacted.make(secretKey)

const Database = SqlUserStore.layerSqlite({ filename: database, django: true })

const Login = Schema.Struct({ username: Schema.String, password: Schema.Redacted(Schema.String.annotations({ message: () => "Expected a password" })) })

const routes = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/",
    Effect.map(CurrentUser.OptionalUser, (current) =>
      HttpServerResponse.text(Option.match(current, {
        onNone: () => "anonymous",
        onSome: ({ user }) => user.username
      })))
  ),
  HttpRouter.post(
    "/login",
    Effect.flatMap(HttpServerRequest.schemaBodyJson(Login), (credentials) =>
      Effect.map(HttpAuth.login(credentials), ({ user }) => HttpServerResponse.text(`logged in as ${user.username}`)))
  ),
  HttpRouter.use(HttpAuth.middleware)
)

const AppLive = HttpServer.serve(routes).pipe(
  Layer.provideMerge(AuthStack.layer({
    backends: [ModelBackend.ModelBackend],
    // Django's session keys and auth hash; Django's cookie name (`sessionid`) is HttpAuth's default.
    sessions: { secret, format: "django" },
    cookie: { secure: false }
  })),
  Layer.provideMerge(ModelBackend.layer()),
  Layer.provide(DjangoSessionStore.layer({ secret })),
  // The hashers and iteration count of the Django that shares the database: no re-hashing.
  Layer.provideMerge(PasswordHasher.layer(PasswordHasher.djangoPresets["3.2"])),
  Layer.provideMerge(Database),
  Layer.provideMerge(NodeHttpServer.layer(NodeServer.createServer, { port: demo ? 0 : Number(process.env.PORT ?? 3000), host: "127.0.0.1" }))
)

if (demo) {
  await Effect.runPromise(
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const port = (server.address as { readonly port: number }).port
      const app = `http://127.0.0.1:${port}`
      // Logged in on Django: the Effect service reads the same cookie.
      const djangoKey = djangoSite("login", "alice")
      const seen = yield* Effect.promise(async () =>
        (await fetch(`${app}/`, { headers: { cookie: `sessionid=${djangoKey}` } })).text()
      )
      console.log(`Django's session is ${seen}'s here.`)
      // Logged in here: Django reads the session.
      const response = yield* Effect.promise(() =>
        fetch(`${app}/login`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: "alice", password: "alice's django password" })
        })
      )
      const cookie = response.headers.getSetCookie().find((c) => c.startsWith("sessionid="))!
      const ourKey = cookie.slice("sessionid=".length, cookie.indexOf(";"))
      console.log(`This service's session is ${djangoSite("whoami", ourKey)}'s on Django.`)
      // The login form's name is NFKC-normalised first, as Django's AuthenticationForm does;
      // the store then looks it up exactly, as Django's get_by_natural_key.
      const typed = "\uff41\uff4c\uff49\uff43\uff45" // ａｌｉｃｅ, full-width
      const wide = yield* Effect.promise(async () =>
        (await fetch(`${app}/login`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: typed, password: "alice's django password" })
        })).text()
      )
      console.log(`Typed ${typed}: ${wide}.`)
    }).pipe(Effect.provide(Layer.fresh(AppLive)), Effect.scoped)
  )
  fs.rmSync(demoDir!, { recursive: true, force: true })
} else {
  NodeRuntime.runMain(Layer.launch(AppLive))
}

