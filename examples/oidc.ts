/**
 * Log in with an identity provider: an app with OidcLogin's routes and an ordinary session,
 * against a local OpenID Connect provider started here (examples/local-provider.ts).
 *
 *   npx tsx examples/oidc.ts          serves http://127.0.0.1:3000: open /oidc/login, log in at the
 *                                     provider with any name and password, land on / as that user
 *   npx tsx examples/oidc.ts --demo   one login by a scripted browser, prints who logged in, exits
 *
 * For a real provider, replace `issuer`, `clientId`, `clientSecret` (docs/oidc.md) and drop
 * `allowInsecureRequests` and `secure: false` (https only).
 */
import { FetchHttpClient, HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { AuthStack, CurrentUser, ExternalIdentities, HttpAuth, MemorySessionStore, MemoryUserStore, NodeServer } from "effect-auth"
import * as OidcBackend from "effect-auth/OidcBackend"
import * as OidcLogin from "effect-auth/OidcLogin"
import { browser, type LocalProvider, signIn, startProvider } from "./local-provider.js"

const demo = process.argv.includes("--demo")
const secret = Redacted.make(process.env.SECRET_KEY ?? "example-only-secret-0123456789")

/** The app served at `app` (its base URL), logging in at `provider`. */
const AppLive = (app: string, provider: LocalProvider) => {
  const redirectUri = `${app}/oidc/callback`
  const OidcLive = OidcBackend.layer({
    issuer: provider.issuer,
    clientId: provider.clientId,
    clientSecret: Redacted.make(provider.clientSecret),
    redirectUri,
    groupsClaim: "groups",
    allowInsecureRequests: true // the local provider speaks plain HTTP on loopback
  }).pipe(Layer.provide(FetchHttpClient.layer))

  const home = HttpRouter.empty.pipe(
    HttpRouter.get(
      "/",
      Effect.map(CurrentUser.OptionalUser, (user) =>
        HttpServerResponse.text(
          Option.match(user, {
            onNone: () => `Anonymous. Log in: ${app}/oidc/login`,
            onSome: ({ backend, user }) => `Logged in as ${user.username} via ${backend}.`
          })
        ))
    ),
    HttpRouter.use(HttpAuth.middleware)
  )

  const routes = HttpRouter.concat(home, OidcLogin.router({ secret, secure: false }))

  return HttpServer.serve(routes).pipe(
    Layer.provideMerge(AuthStack.layer({ backends: [OidcBackend.OidcBackend], sessions: { secret }, cookie: { secure: false } })),
    Layer.provideMerge(OidcLive),
    // users, their bindings to the provider's `sub` (required by OidcBackend), sessions: in memory
    Layer.provide(Layer.mergeAll(MemoryUserStore.layer, ExternalIdentities.layerMemory, MemorySessionStore.layer))
  )
}

// The server listens first (the demo on a port the OS picks), so the URLs that name it are known
// before the provider and the backend are made.
const ServerLive = NodeHttpServer.layer(NodeServer.createServer, { port: demo ? 0 : Number(process.env.PORT ?? 3000), host: "127.0.0.1" })

const main = Effect.gen(function*() {
  const server = yield* Layer.build(ServerLive)
  const { port } = Context.get(server, HttpServer.HttpServer).address as HttpServer.TcpAddress
  const app = `http://127.0.0.1:${port}`
  const provider = yield* Effect.acquireRelease(
    Effect.promise(() => startProvider({ redirectUri: `${app}/oidc/callback`, postLogoutRedirectUri: `${app}/`, groups: () => ["staff"] })),
    (provider) => Effect.promise(() => provider.close())
  )
  yield* Layer.build(AppLive(app, provider).pipe(Layer.provide(Layer.succeedContext(server))))
  if (!demo) {
    yield* Effect.log(`Open ${app}/oidc/login (the provider at ${provider.issuer} takes any name and password)`)
    return yield* Effect.never
  }
  const b = browser()
  const started = yield* Effect.promise(() => b.request(`${app}/oidc/login`))
  const callback = yield* Effect.promise(() => signIn(b, started.headers.get("location")!, "alice", `${app}/oidc/callback`))
  yield* Effect.promise(() => b.request(callback))
  const page = yield* Effect.promise(async () => (await b.request(`${app}/`)).text())
  console.log(page)
})

NodeRuntime.runMain(Effect.scoped(main))
