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
import { Effect, Layer, Option, Redacted } from "effect"
import { AuthStack, CurrentUser, ExternalIdentities, HttpAuth, MemorySessionStore, MemoryUserStore } from "effect-auth"
import * as OidcBackend from "effect-auth/OidcBackend"
import * as OidcLogin from "effect-auth/OidcLogin"
import { createServer } from "node:http"
import { browser, freeLocalPort, signIn, startProvider } from "./local-provider.js"

const demo = process.argv.includes("--demo")
const port = demo ? await freeLocalPort() : Number(process.env.PORT ?? 3000)
const app = `http://127.0.0.1:${port}`
const redirectUri = `${app}/oidc/callback`
const provider = await startProvider({ redirectUri, postLogoutRedirectUri: `${app}/`, groups: () => ["staff"] })
const secret = Redacted.make(process.env.SECRET_KEY ?? "example-only-secret-0123456789")

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

const AppLive = HttpServer.serve(routes).pipe(
  Layer.provideMerge(AuthStack.layer({ backends: [OidcBackend.OidcBackend], sessions: { secret }, cookie: { secure: false } })),
  Layer.provideMerge(OidcLive),
  // users, their bindings to the provider's `sub` (required by OidcBackend), sessions: in memory
  Layer.provide(Layer.mergeAll(MemoryUserStore.layer, ExternalIdentities.layerMemory, MemorySessionStore.layer)),
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
)

if (demo) {
  await Effect.runPromise(
    Effect.gen(function*() {
      yield* Layer.build(AppLive)
      const b = browser()
      const started = yield* Effect.promise(() => b.request(`${app}/oidc/login`))
      const callback = yield* Effect.promise(() => signIn(b, started.headers.get("location")!, "alice", redirectUri))
      yield* Effect.promise(() => b.request(callback))
      const page = yield* Effect.promise(async () => (await b.request(`${app}/`)).text())
      console.log(page)
    }).pipe(Effect.scoped)
  )
  await provider.stop()
} else {
  console.log(`Open ${app}/oidc/login (the provider at ${provider.issuer} takes any name and password)`)
  NodeRuntime.runMain(Layer.launch(AppLive))
}
