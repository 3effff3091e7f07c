// OidcBackend against a provider that misbehaves on purpose: a small HTTP server on 127.0.0.1
// serving discovery, keys and a token endpoint whose answers each test chooses (an ID token for
// another audience, expired, with another nonce, signed by a stranger; a 500, garbage, silence).
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { exportJWK, generateKeyPair, SignJWT } from "jose"
import { createHash } from "node:crypto"
import * as http from "node:http"
import * as AuthError from "../src/AuthError.js"
import * as AuthService from "../src/AuthService.js"
import * as OidcBackend from "../src/backends/OidcBackend.js"
import * as ExternalIdentities from "../src/ExternalIdentities.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as Provisioning from "../src/Provisioning.js"
import * as TestAuth from "../src/testing/TestAuth.js"
import * as UserStore from "../src/UserStore.js"
import * as HttpPeer from "./utils/httpPeer.js"

type Mode = "ok" | "500" | "garbage" | "slow" | "huge" | "invalid_client" | "truncated"

const fakeProvider = Effect.acquireRelease(
  Effect.promise(async () => {
    const key = await generateKeyPair("RS256")
    const stranger = await generateKeyPair("RS256")
    const jwk = { ...(await exportJWK(key.publicKey)), kid: "k1", alg: "RS256", use: "sig" }
    const state = {
      mode: "ok" as Mode,
      claims: {} as Record<string, unknown>,
      signWith: "provider" as "provider" | "stranger",
      discovery: {} as Record<string, unknown>,
      // a plain OAuth 2.0 provider: no ID token, the claims from /userinfo
      idToken: true,
      userinfo: {} as Record<string, unknown>,
      // fields of the token endpoint's answer put over the usual ones (undefined drops one)
      tokenFields: {} as Record<string, unknown>,
      discoveryRequests: 0,
      tokenRequests: 0
    }
    const server = http.createServer((req, res) => {
      const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`
      const json = (body: unknown, status = 200) => {
        res.writeHead(status, { "content-type": "application/json" })
        res.end(JSON.stringify(body))
      }
      if (req.url === "/.well-known/openid-configuration") {
        state.discoveryRequests++
        return json({
          issuer,
          authorization_endpoint: `${issuer}/auth`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ["code"],
          subject_types_supported: ["public"],
          id_token_signing_alg_values_supported: ["RS256"],
          ...state.discovery
        })
      }
      if (req.url === "/jwks") return json({ keys: [jwk] })
      if (req.url === "/userinfo") return json(state.userinfo)
      if (req.url === "/token" && req.method === "POST") {
        state.tokenRequests++
        if (state.mode === "500") return json({ error: "server_error" }, 500)
        if (state.mode === "invalid_client") {
          // RFC 6749 5.2: a client that authenticated with the Authorization header gets a 401
          // with a challenge
          res.setHeader("www-authenticate", `Basic realm="op", error="invalid_client"`)
          return json({ error: "invalid_client" }, 401)
        }
        if (state.mode === "garbage") {
          res.writeHead(200, { "content-type": "text/html" })
          return res.end("<html>maintenance</html>")
        }
        if (state.mode === "slow") return // never answers
        if (state.mode === "truncated") {
          // JSON by its content type, cut off mid-way
          res.writeHead(200, { "content-type": "application/json" })
          return res.end(`{"access_token":"at","token_type":"Bea`)
        }
        const now = Math.floor(Date.now() / 1000)
        const claims = { iss: issuer, aud: "client", sub: "u-1", nonce: "the-nonce", iat: now, exp: now + 300, preferred_username: "carol", ...state.claims }
        const signer = state.signWith === "provider" ? key.privateKey : stranger.privateKey
        void new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: state.signWith === "provider" ? "k1" : "k2" }).sign(signer)
          .then((idToken) => {
            const body = {
              access_token: "at",
              token_type: "Bearer",
              expires_in: 300,
              ...(state.idToken && { id_token: idToken }),
              ...state.tokenFields
            }
            if (state.mode !== "huge") return json(body)
            // A valid answer trailed by 2 MB of whitespace: past the ceiling on a provider's body.
            res.writeHead(200, { "content-type": "application/json" })
            res.end(JSON.stringify(body) + " ".repeat(2 * 1024 * 1024))
          })
        return
      }
      json({ error: "not_found" }, 404)
    })
    // A provider that is down keeps its port (closed and listened on again, the port could be
    // another process's by then): every connection is cut as it comes, as
    // examples/local-provider.ts's `stop` does.
    let down = false
    server.on("connection", (socket) => {
      if (down) socket.destroy()
    })
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject)
        resolve()
      })
    })
    // an error of the listening server fails no test by itself (without a listener it would be
    // an uncaught exception)
    server.on("error", () => undefined)
    const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    const setDown = (value: boolean) => {
      down = value
      if (value) server.closeAllConnections()
    }
    return { issuer, state, server, setDown }
  }),
  ({ server }) =>
    Effect.promise(() =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
    )
)

const withBackend = (issuer: string, options: Partial<OidcBackend.Options> = {}) =>
  TestAuth.layer([OidcBackend.OidcBackend]).pipe(
    Layer.provideMerge(
      OidcBackend.layer({
        // a request meant to succeed has time even on a loaded machine (a test may ask for less)
        timeout: "5 seconds",
        ...options,
        issuer,
        clientId: "client",
        clientSecret: Redacted.make("secret"),
        redirectUri: "http://127.0.0.1/cb",
        allowInsecureRequests: true
      })
    ),
    Layer.provideMerge(Layer.mergeAll(MemoryUserStore.layer, ExternalIdentities.layerMemory, FetchHttpClient.layer))
  )

const callback = { oidcCallback: { url: "http://127.0.0.1/cb?code=abc&state=the-state", state: "the-state", nonce: "the-nonce", codeVerifier: "v".repeat(43) } }

const outcome = (exit: Exit.Exit<AuthService.Authenticated, AuthError.AuthenticateError>) =>
  Exit.isSuccess(exit)
    ? `success:${exit.value.user.username}`
    : exit.cause._tag !== "Fail"
    ? "defect"
    : exit.cause.error._tag === "AuthenticationFailed"
    ? exit.cause.error.attempts.map((a) => a.reason).join(",")
    : exit.cause.error._tag

const attempt = (input: unknown = callback) => Effect.map(Effect.exit(AuthService.authenticateUnknown(input)), outcome)

describe("OidcBackend.Callback", () => {
  // Its ParseError quoted the input by default: the callback URL with its code, and the verifier.
  it("a ParseError never quotes the code or the verifier", () => {
    const url = "https://app.example/oidc/callback?code=SECRET-9f8e7d&state=st"
    const inputs = [
      { oidcCallback: url },
      [url, "st", "nonce", "VERIFIER-4c3b"],
      url,
      { oidcCallback: { url, state: "st", nonce: 5, codeVerifier: "VERIFIER-4c3b" } }
    ]
    for (const input of inputs) {
      const decoded = Schema.decodeUnknownEither(OidcBackend.Callback)(input)
      expect(decoded._tag).toBe("Left")
      const message = decoded._tag === "Left" ? String(decoded.left) : ""
      expect(message).toContain("Expected")
      expect(message).not.toContain("SECRET-9f8e7d")
      expect(message).not.toContain("VERIFIER-4c3b")
    }
  })
})

describe("OidcBackend against a misbehaving provider", () => {
  it.scopedLive("endpoints in discovery that are not URLs: a login is a TransportError, a logout has no end-session URL; never a defect", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      for (const bad of ["not a url", 42, "::nope"]) {
        p.state.discovery = { authorization_endpoint: bad, end_session_endpoint: bad }
        yield* Effect.gen(function*() {
          const oidc = yield* OidcBackend.OidcBackend
          const login = yield* Effect.exit(oidc.authorizationRequest)
          expect(Exit.isFailure(login) && login.cause._tag === "Fail" && login.cause.error._tag).toBe("TransportError")
          expect(yield* oidc.endSessionUrl("http://127.0.0.1/bye")).toEqual(Option.none())
        }).pipe(Effect.provide(withBackend(p.issuer)))
      }
      p.state.discovery = { end_session_endpoint: `${p.issuer}/logout` }
      yield* Effect.gen(function*() {
        const oidc = yield* OidcBackend.OidcBackend
        expect((yield* oidc.authorizationRequest).url.pathname).toBe("/auth")
        expect(Option.map(yield* oidc.endSessionUrl("http://127.0.0.1/bye"), (url) => url.pathname)).toEqual(Option.some("/logout"))
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }))

  // oauth4webapi checks an endpoint only when it uses it: a document without a usable token
  // endpoint or key set refused every login as bad credentials (NoMatch), and a lockout by
  // address charged each one to the client, locked out after the provider was fixed.
  it.scopedLive("a token endpoint or key set that discovery omits or gives as no URL: a login is a TransportError, and nobody is provisioned", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      for (const discovery of [
        { token_endpoint: undefined },
        { token_endpoint: "not a url" },
        { jwks_uri: undefined },
        { jwks_uri: "not a url" }
      ]) {
        p.state.discovery = discovery
        yield* Effect.gen(function*() {
          expect([discovery, yield* attempt()]).toEqual([discovery, "TransportError"])
          expect(yield* Effect.orDie(Effect.flatMap(UserStore.UserStore, (users) => users.list()))).toEqual([])
        }).pipe(Effect.provide(withBackend(p.issuer)))
      }
      p.state.discovery = {}
      yield* attempt().pipe(Effect.map((result) => expect(result).toBe("success:carol")), Effect.provide(withBackend(p.issuer)))
    }))

  // What oauth4webapi does not support in an ID token is that token's fault, not the provider's
  // outage: a 503, a fall-through to the next backend and a second code exchange under a retry
  // policy, where any other ID token that does not verify is refused.
  it.scopedLive("an ID token oauth4webapi does not support (an HMAC or \"none\" alg the discovery lists, a crit header, an encrypted token) is refused, not an outage", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      p.state.discovery = { id_token_signing_alg_values_supported: ["RS256", "HS256", "none"] }
      const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
      const now = Math.floor(Date.now() / 1000)
      const claims = b64({ iss: p.issuer, aud: "client", sub: "u-1", nonce: "the-nonce", iat: now, exp: now + 300 })
      const tokens = [
        `${b64({ alg: "HS256" })}.${claims}.c2ln`,
        `${b64({ alg: "none" })}.${claims}.`,
        `${b64({ alg: "RS256", kid: "k1", crit: ["exp2"], exp2: 1 })}.${claims}.c2ln`,
        "a.b.c.d.e"
      ]
      yield* Effect.gen(function*() {
        for (const id_token of tokens) {
          p.state.tokenFields = { id_token }
          expect([id_token, yield* attempt()]).toEqual([id_token, "invalid-credentials"])
        }
        // the provider's own answer that oauth4webapi does not support stays the provider's
        p.state.tokenFields = { token_type: "MAC" }
        expect(yield* attempt()).toBe("TransportError")
        p.state.tokenFields = {}
        expect(yield* attempt()).toBe("success:carol")
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }))

  it.scopedLive("a preferred_username naming a local account (createsuperuser's admin) is refused unless linkLocalUsers", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      Object.assign(p.state, { mode: "ok", claims: { sub: "someone-at-the-provider", preferred_username: "admin" } })
      const adminLogin = (options: Partial<OidcBackend.Options>) =>
        Effect.gen(function*() {
          const users = yield* UserStore.UserStore
          const admin = yield* Effect.orDie(users.create({
            username: "admin",
            passwordHash: "pbkdf2_sha256$870000$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            isStaff: true,
            isSuperuser: true
          }))
          return [yield* attempt(), admin] as const
        }).pipe(Effect.provide(withBackend(p.issuer, options)))
      expect((yield* adminLogin({}))[0]).toBe("unknown-user")
      expect((yield* adminLogin({ linkLocalUsers: true }))[0]).toBe("success:admin")
    }))

  it.scopedLive("a valid ID token logs in (and provisions); each broken one is refused and provisions nothing", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        const users = yield* UserStore.UserStore
        const cases: ReadonlyArray<readonly [Partial<typeof p.state>, string]> = [
          [{ claims: { aud: "someone-else" } }, "invalid-credentials"],
          [{ claims: { exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 7200 } }, "expired-credentials"],
          [{ claims: { nonce: "another-nonce" } }, "invalid-credentials"],
          [{ claims: { iss: "https://impostor.example" } }, "invalid-credentials"],
          [{ signWith: "stranger" }, "invalid-credentials"],
          [{ claims: { at_hash: "not-the-access-tokens-hash" } }, "invalid-credentials"],
          // OIDC Core 3.1.3.7: an azp naming another client; issued a year ahead; not valid for an hour
          [{ claims: { azp: "some-other-client" } }, "invalid-credentials"],
          [{ claims: { iat: Math.floor(Date.now() / 1000) + 365 * 86400, exp: Math.floor(Date.now() / 1000) + 366 * 86400 } }, "invalid-credentials"],
          [{ claims: { nbf: Math.floor(Date.now() / 1000) + 3600 } }, "invalid-credentials"],
          // a verified token without the username claim names nobody: a refusal, not an outage
          [{ claims: { preferred_username: undefined, sub: "" } }, "unknown-user"]
        ]
        for (const [change, expected] of cases) {
          Object.assign(p.state, { mode: "ok", claims: {}, signWith: "provider" }, change)
          expect(yield* attempt()).toBe(expected)
          expect(Option.isNone(yield* Effect.orDie(users.findByUsername("carol")))).toBe(true)
        }
        // the access token's own hash is accepted: SHA-256's left half of "at", base64url
        const atHash = createHash("sha256").update("at").digest().subarray(0, 16).toString("base64url")
        Object.assign(p.state, { mode: "ok", claims: { at_hash: atHash, azp: "client" }, signWith: "provider" })
        expect(yield* attempt()).toBe("success:carol")
        expect(Option.isSome(yield* Effect.orDie(users.findByUsername("carol")))).toBe(true)
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }), 30_000)

  it.scopedLive("an email names a user only when the provider verified it: usernameClaim email needs email_verified true; an unverified address is not copied", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      const login = (claims: Record<string, unknown>, options: Partial<OidcBackend.Options> = { usernameClaim: "email" }) =>
        Effect.gen(function*() {
          Object.assign(p.state, { mode: "ok", claims, signWith: "provider" })
          const users = yield* UserStore.UserStore
          const outcome = yield* attempt()
          const created = Option.getOrUndefined(yield* Effect.orDie(users.findByUsername(outcome.replace(/^success:/, ""))))
          return { outcome, email: created?.email, stored: (yield* Effect.orDie(users.list())).length }
        }).pipe(Effect.provide(withBackend(p.issuer, options)))
      // someone who registered ann's address at a provider that did not verify it
      for (const unverified of [{}, { email_verified: false }, { email_verified: "false" }, { email_verified: "yes" }, { email_verified: 1 }]) {
        expect(yield* login({ email: "ann@example.com", ...unverified })).toEqual({ outcome: "unknown-user", email: undefined, stored: 0 })
      }
      for (const verified of [{ email_verified: true }, { email_verified: "true" }]) {
        expect(yield* login({ email: "ann@example.com", ...verified }))
          .toEqual({ outcome: "success:ann@example.com", email: "ann@example.com", stored: 1 })
      }
      // under another username claim the login goes on, without an address the provider says is not theirs
      expect(yield* login({ email: "ann@example.com", email_verified: false }, {})).toEqual({ outcome: "success:carol", email: "", stored: 1 })
      expect(yield* login({ email: "ann@example.com" }, {})).toEqual({ outcome: "success:carol", email: "ann@example.com", stored: 1 })
    }))

  it.scopedLive("a token endpoint refusing the client with a 401 challenge (RFC 6749 5.2) refuses the login: NoMatch, not an outage", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      p.state.mode = "invalid_client"
      expect(yield* attempt().pipe(Effect.provide(withBackend(p.issuer)))).toBe("invalid-credentials")
    }))

  it.scopedLive("concurrent logins on a cold discovery cache share one discovery request", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        const oidc = yield* OidcBackend.OidcBackend
        const requests = yield* Effect.all(Array.from({ length: 25 }, () => oidc.authorizationRequest), { concurrency: "unbounded" })
        expect(requests.every((request) => request.url.pathname === "/auth")).toBe(true)
        expect(p.state.discoveryRequests).toBe(1)
        // and the cached document answers the next ones
        yield* oidc.authorizationRequest
        expect(p.state.discoveryRequests).toBe(1)
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }))

  it.scopedLive("the provider failing: a 500, garbage, silence past the timeout, a body past 1 MiB are TransportErrors", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        for (const mode of ["500", "garbage", "slow", "huge"] as const) {
          p.state.mode = mode
          expect(yield* attempt()).toBe("TransportError")
        }
      }).pipe(Effect.provide(withBackend(p.issuer, { timeout: "1 second" })))
    }), 30_000)

  // oauth4webapi names a body that does not parse, and a field of the wrong type, with the codes it
  // also gives an ID token that fails its checks: they were all taken for refusals, and a provider
  // answering 200 with garbage refused every login (NoMatch, a 401) where it is down (a
  // TransportError, a 503 under the backend's onTransportError policy).
  it.scopedLive("a token answer that is no JSON, or whose fields are not the protocol's, is a TransportError; an ID token failing its checks stays a refusal", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      const b64 = (text: string) => Buffer.from(text).toString("base64url")
      const cases: ReadonlyArray<readonly [Partial<typeof p.state>, string]> = [
        [{ mode: "truncated" }, "TransportError"],
        [{ tokenFields: { token_type: 5 } }, "TransportError"],
        [{ tokenFields: { access_token: ["at"] } }, "TransportError"],
        [{ tokenFields: { expires_in: "soon" } }, "TransportError"],
        [{ tokenFields: { scope: 7 } }, "TransportError"],
        [{ tokenFields: { id_token: 12 } }, "TransportError"],
        // an OpenID Connect answer without its ID token
        [{ idToken: false }, "TransportError"],
        // and this login's ID token: another audience or nonce, one that is no JWT at all
        [{ claims: { aud: "someone-else" } }, "invalid-credentials"],
        [{ claims: { nonce: "another-nonce" } }, "invalid-credentials"],
        [{ claims: { sub: 42 } }, "invalid-credentials"],
        [{ tokenFields: { id_token: `${b64("not json")}.${b64("{}")}.c2ln` } }, "invalid-credentials"],
        [{ tokenFields: { id_token: `${b64("{\"alg\":\"RS256\"}")}.${b64("[1")}.c2ln` } }, "invalid-credentials"],
        [{ tokenFields: { id_token: "two.parts" } }, "invalid-credentials"]
      ]
      yield* Effect.gen(function*() {
        const users = yield* UserStore.UserStore
        for (const [change, expected] of cases) {
          Object.assign(p.state, { mode: "ok", claims: {}, signWith: "provider", idToken: true, tokenFields: {} }, change)
          expect([change, yield* attempt()]).toEqual([change, expected])
          expect(yield* Effect.orDie(users.list())).toEqual([])
        }
        // the same provider answering as it should: the login goes through
        Object.assign(p.state, { mode: "ok", claims: {}, idToken: true, tokenFields: {} })
        expect(yield* attempt()).toBe("success:carol")
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }), 30_000)

  // A plain OAuth 2.0 user endpoint need not send `sub` (it is waived for it), but an answer that
  // is no JSON object is the provider's fault, not this login's.
  it.scopedLive("a plain OAuth 2.0 user endpoint answering no JSON object is a TransportError", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      Object.assign(p.state, { mode: "ok", idToken: false })
      const plain: Partial<OidcBackend.Options> = {
        oauth2: { authorizationEndpoint: `${p.issuer}/auth`, tokenEndpoint: `${p.issuer}/token`, userinfoEndpoint: `${p.issuer}/userinfo` },
        usernameClaim: "login"
      }
      yield* Effect.gen(function*() {
        for (const answer of [["octocat"], "octocat", 583231, null]) {
          p.state.userinfo = answer as unknown as Record<string, unknown>
          expect([answer, yield* attempt()]).toEqual([answer, "TransportError"])
        }
        p.state.userinfo = { id: 583231, login: "octocat" }
        expect(yield* attempt()).toBe("success:octocat")
      }).pipe(Effect.provide(withBackend(p.issuer, plain)))
    }))

  // Every answer must come from the provider's own URLs: followed, a redirect would let another
  // origin name the token endpoint and the keys (and so the user), and hand it the client secret
  // and the code. oauth4webapi asks for `redirect: "manual"`; the app's FetchHttpClient obeys it.
  it.scopedLive("a discovery or token endpoint that redirects to another origin is a TransportError, not followed", () =>
    Effect.gen(function*() {
      const other = yield* fakeProvider
      const redirector = yield* HttpPeer.start((request, reply) => {
        reply.raw.writeHead(request.method === "POST" ? 307 : 302, { location: `${other.issuer}${request.path}` })
        reply.raw.end()
      })
      // The other origin answers as if it were the configured issuer: followed, this logged carol in.
      other.state.discovery = { issuer: redirector.url }
      other.state.claims = { iss: redirector.url }
      expect(yield* attempt().pipe(Effect.provide(withBackend(redirector.url)))).toBe("TransportError")
      // The configured issuer's own discovery, naming a token endpoint that redirects.
      const provider = yield* fakeProvider
      provider.state.discovery = { token_endpoint: `${redirector.url}/token` }
      expect(yield* attempt().pipe(Effect.provide(withBackend(provider.issuer)))).toBe("TransportError")
      expect(other.state.tokenRequests).toBe(0)
      expect(redirector.count((request) => request.path === "/token")).toBe(1)
    }), 30_000)

  it.scopedLive("a state that does not match is refused before the provider is asked", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        const forged = { oidcCallback: { ...callback.oidcCallback, url: "http://127.0.0.1/cb?code=abc&state=forged" } }
        expect(yield* attempt(forged)).toBe("invalid-credentials")
        const denied = { oidcCallback: { ...callback.oidcCallback, url: "http://127.0.0.1/cb?error=access_denied&state=the-state" } }
        expect(yield* attempt(denied)).toBe("invalid-credentials")
        expect(p.state.tokenRequests).toBe(0)
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }), 30_000)

  // RFC 6749 4.1.2.1: a provider that failed sends the browser back with error=server_error or
  // error=temporarily_unavailable (a 500 or a 503 cannot be redirected). Every `error` was read as
  // a refused login (NoMatch, 401), though the credentials may well have been good.
  it.scopedLive("the provider's error at the callback: server_error and temporarily_unavailable are a TransportError, access_denied and the others a refusal", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        const withError = (error: string, state = "the-state") => ({
          oidcCallback: { ...callback.oidcCallback, url: `http://127.0.0.1/cb?error=${error}&error_description=x&state=${state}` }
        })
        for (const error of ["server_error", "temporarily_unavailable"]) {
          expect([error, yield* attempt(withError(error))]).toEqual([error, "TransportError"])
        }
        for (const error of ["access_denied", "invalid_scope", "login_required", "consent_required", "unauthorized_client", "other"]) {
          expect([error, yield* attempt(withError(error))]).toEqual([error, "invalid-credentials"])
        }
        // the state first: a callback that is not this browser's cannot pass for an outage
        expect(yield* attempt(withError("server_error", "forged"))).toBe("invalid-credentials")
        expect(p.state.tokenRequests).toBe(0)
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }), 30_000)

  it.scopedLive("malformed callbacks are NoMatch (unsupported credentials), never a defect", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        for (const bad of [
          { oidcCallback: {} },
          { oidcCallback: { ...callback.oidcCallback, url: "x".repeat(9000) } },
          { oidcCallback: { ...callback.oidcCallback, state: "" } },
          { oidcCallback: "nope" }
        ]) {
          expect(yield* attempt(bad)).toBe("unsupported-credentials")
        }
        expect(yield* attempt({ oidcCallback: { ...callback.oidcCallback, url: "not a url" } })).toBe("invalid-credentials")
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }), 30_000)

  it.scopedLive("a provider that cannot be reached at discovery is a TransportError, and is not remembered", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      p.setDown(true)
      yield* Effect.gen(function*() {
        expect(yield* attempt()).toBe("TransportError")
        p.setDown(false)
        expect(yield* attempt()).toBe("success:carol")
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }), 30_000)

  it.effect("bad configuration is an AuthConfigError: an http issuer without allowInsecureRequests, a bad URL", () =>
    Effect.gen(function*() {
      for (const options of [
        { issuer: "http://idp.example", clientId: "c", redirectUri: "https://app.example/cb" },
        { issuer: "not a url", clientId: "c", redirectUri: "https://app.example/cb" },
        { issuer: "https://idp.example", clientId: "", redirectUri: "https://app.example/cb" },
        // the namespace of the bindings is a column of 255 characters
        { issuer: `https://idp.example/${"x".repeat(240)}`, clientId: "c", redirectUri: "https://app.example/cb" }
      ]) {
        const error = yield* Effect.flip(
          OidcBackend.make(options).pipe(
            Effect.provide(Layer.mergeAll(MemoryUserStore.layer, ExternalIdentities.layerMemory, FetchHttpClient.layer))
          )
        )
        expect(error._tag).toBe("AuthConfigError")
      }
    }))

  // The future-iat check read Date.now(), not Effect's Clock as the rest of the library does.
  it.scoped("an ID token issued in the future is refused on Effect's Clock (TestClock)", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      Object.assign(p.state, { mode: "ok", signWith: "provider", claims: {} })
      yield* Effect.gen(function*() {
        // the provider's iat is the wall clock's now: within the tolerance of a Clock at now
        yield* TestClock.setTime(Date.now())
        expect(yield* attempt()).toBe("success:carol")
        // ten minutes ahead of a Clock set back: issued in the future
        yield* TestClock.setTime(Date.now() - 10 * 60_000)
        expect(yield* attempt()).toBe("invalid-credentials")
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }))

  // `new URL("github.com/login/oauth/authorize")` threw inside authorizationRequest: a defect, a
  // 500 from OidcLogin on every login, instead of a configuration error when the layer is built.
  it.effect("oauth2 endpoints that are no absolute URL (or http without allowInsecureRequests) are an AuthConfigError", () =>
    Effect.gen(function*() {
      const github: OidcBackend.OAuth2Endpoints = {
        authorizationEndpoint: "https://github.com/login/oauth/authorize",
        tokenEndpoint: "https://github.com/login/oauth/access_token",
        userinfoEndpoint: "https://api.github.com/user"
      }
      const build = (oauth2: unknown, insecure = false) =>
        Effect.gen(function*() {
          const exit = yield* Effect.exit(
            OidcBackend.make({
              issuer: "https://github.com",
              clientId: "c",
              redirectUri: "https://app.example/cb",
              oauth2: oauth2 as OidcBackend.OAuth2Endpoints,
              allowInsecureRequests: insecure
            }).pipe(Effect.provide(Layer.mergeAll(MemoryUserStore.layer, ExternalIdentities.layerMemory, FetchHttpClient.layer)))
          )
          if (Exit.isSuccess(exit)) {
            // what a login does with it: a URL to send the browser to, or a typed failure
            const login = yield* Effect.exit(exit.value.authorizationRequest)
            return Exit.isSuccess(login) ? "success" : login.cause._tag === "Fail" ? login.cause.error._tag : "defect"
          }
          return exit.cause._tag === "Fail" ? exit.cause.error._tag : "defect"
        })
      expect(yield* build(github)).toBe("success")
      expect(yield* build({ ...github, authorizationEndpoint: "github.com/login/oauth/authorize" })).toBe("AuthConfigError")
      expect(yield* build({ ...github, tokenEndpoint: "not a url" })).toBe("AuthConfigError")
      expect(yield* build({ ...github, userinfoEndpoint: 42 })).toBe("AuthConfigError")
      expect(yield* build({ ...github, userinfoEndpoint: "http://api.github.com/user" })).toBe("AuthConfigError")
      expect(yield* build({ ...github, userinfoEndpoint: "http://api.github.com/user" }, true)).toBe("success")
      expect(yield* build(null)).toBe("AuthConfigError")
    }))
})

// Each user is bound to the provider's `sub` (ExternalIdentities): a preferred_username is chosen
// by the user, or released and taken by someone else, at many providers; the sub never is.
describe("OidcBackend: users bound to the provider's sub", () => {
  type Provider = Effect.Effect.Success<typeof fakeProvider>

  // the namespace of the bindings: the issuer as a URL
  const namespace = (p: Provider) => new URL(p.issuer).href

  const loginAs = (p: Provider, claims: Record<string, unknown>) => {
    Object.assign(p.state, { mode: "ok", signWith: "provider", claims, userinfo: claims })
    return attempt()
  }

  const stored = (username: string) =>
    Effect.flatMap(UserStore.UserStore, (users) => Effect.map(Effect.orDie(users.findByUsername(username)), Option.getOrThrow))

  const userCount = Effect.flatMap(UserStore.UserStore, (users) => Effect.map(Effect.orDie(users.list()), (all) => all.length))

  const boundTo = (p: Provider, subject: string) =>
    Effect.flatMap(ExternalIdentities.ExternalIdentities, (identities) => Effect.orDie(identities.find(namespace(p), subject)))

  const subjectOf = (p: Provider, userId: string) =>
    Effect.flatMap(ExternalIdentities.ExternalIdentities, (identities) => Effect.orDie(identities.subjectOf(namespace(p), userId)))

  // `c.upn as string` for a token without `upn` (the kind of mapping oidc.md shows) read
  // `external.username.length` of undefined: a TypeError, an HTTP 500.
  it.scopedLive("a toExternalUser that throws or answers no username is the TransportError of a user that does not fit, never a defect", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      type Mapping = NonNullable<OidcBackend.Options["toExternalUser"]>
      const mappings: ReadonlyArray<readonly [Mapping, string]> = [
        [(c) => ({ username: c.upn as string, email: c.email as string }), "the external user does not fit the store at \"username\""],
        [(c) => ({ username: (c.upn as string).toLowerCase() }), "the external user does not fit the store: the mapping threw"],
        [() => null as unknown as Provisioning.ExternalUser, "the external user does not fit the store at \"username\""],
        [(c) => ({ username: c.oid as string }), "the external user does not fit the store at \"username\""]
      ]
      for (const [toExternalUser, cause] of mappings) {
        yield* Effect.gen(function*() {
          Object.assign(p.state, { mode: "ok", signWith: "provider", claims: { sub: "s-1", email: "ann@contoso.com", oid: 7 } })
          const exit = yield* Effect.exit(AuthService.authenticateUnknown(callback))
          expect(outcome(exit)).toBe("TransportError")
          const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause).pipe(Option.getOrUndefined) : undefined
          expect(error).toMatchObject({ backend: "oidc", cause })
          expect(JSON.stringify(error)).not.toContain("ann@contoso.com")
          expect(yield* userCount).toBe(0)
        }).pipe(Effect.provide(withBackend(p.issuer, { toExternalUser })))
      }
    }))

  it.scopedLive("the takeover: another sub presenting a preferred_username that is taken logs into nobody, and nothing is written", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        const users = yield* UserStore.UserStore
        expect(yield* loginAs(p, { sub: "subject-a", preferred_username: "alice", email: "alice@example.com", groups: ["staff"] }))
          .toBe("success:alice")
        const alice = yield* stored("alice")

        // alice renamed herself at the provider; mallory took the name "alice" there
        expect(yield* loginAs(p, { sub: "subject-b", preferred_username: "alice", email: "mallory@example.com", groups: ["admins"] }))
          .toBe("unknown-user")
        expect(yield* boundTo(p, "subject-a")).toEqual(Option.some(alice.id))
        const after = yield* stored("alice")
        expect(after.email).toBe("alice@example.com")
        expect({ ...after, passwordHash: undefined }).toEqual({ ...alice, passwordHash: undefined })
        expect(yield* Effect.orDie(users.groupsOf(alice.id))).toEqual(["staff"])
        expect(yield* boundTo(p, "subject-b")).toEqual(Option.none())
        expect(yield* subjectOf(p, alice.id)).toEqual(Option.some("subject-a"))
        expect(yield* userCount).toBe(1)
      }).pipe(Effect.provide(withBackend(p.issuer, { groupsClaim: "groups" })))
    }))

  it.scopedLive("a rename at the provider: the same sub under another preferred_username is the same local user, its username unchanged", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        expect(yield* loginAs(p, { sub: "subject-a", preferred_username: "alice", email: "alice@example.com" })).toBe("success:alice")
        const alice = yield* stored("alice")
        expect(yield* loginAs(p, { sub: "subject-a", preferred_username: "alice2", email: "alice2@example.com" })).toBe("success:alice")
        const after = yield* stored("alice")
        expect(after.id).toBe(alice.id)
        expect(after.email).toBe("alice2@example.com") // the attributes are still updated
        expect(Option.isNone(yield* Effect.flatMap(UserStore.UserStore, (users) => Effect.orDie(users.findByUsername("alice2")))))
          .toBe(true)
        expect(yield* userCount).toBe(1)
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }))

  it.scopedLive("with linkUnboundUsers, a user provisioned before bindings is bound on its first login (trust on first use); then another sub of the same name is refused", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        const users = yield* UserStore.UserStore
        // no password: an unusable one, as provisioning made it before 0.3.0
        const bob = yield* Effect.orDie(users.create({ username: "bob", email: "bob@example.com" }))
        expect(yield* subjectOf(p, bob.id)).toEqual(Option.none())
        expect(yield* loginAs(p, { sub: "subject-bob", preferred_username: "bob" })).toBe("success:bob")
        expect(yield* boundTo(p, "subject-bob")).toEqual(Option.some(bob.id))
        expect(yield* loginAs(p, { sub: "subject-other", preferred_username: "bob", email: "other@example.com" })).toBe("unknown-user")
        expect((yield* stored("bob")).email).toBe("bob@example.com")
        expect(yield* loginAs(p, { sub: "subject-bob", preferred_username: "bob" })).toBe("success:bob")
      }).pipe(Effect.provide(withBackend(p.issuer, { linkUnboundUsers: true })))
    }))

  // A binding a JWT hook stored under the issuer as written (here without the trailing slash
  // OidcBackend's namespace has): before, OidcBackend passed the normalised name to Provisioning,
  // which then never read it: the owner was refused, and with linkUnboundUsers another subject
  // presenting the name was bound to the user (the reviewer's formerly.ts).
  it.scopedLive("bindings stored under the issuer as written are read: the owner logs in, another subject is refused", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      expect(namespace(p)).not.toBe(p.issuer)
      for (const linkUnboundUsers of [false, true]) {
        yield* Effect.gen(function*() {
          const users = yield* UserStore.UserStore
          const identities = yield* ExternalIdentities.ExternalIdentities
          const alice = yield* Effect.orDie(users.create({ username: "alice", email: "alice@corp.example" }))
          expect(yield* Effect.orDie(identities.bind(p.issuer, "subject-7", alice.id))).toBe(true)
          expect(yield* loginAs(p, { sub: "subject-8", preferred_username: "alice", email: "mallory@attacker.example" })).toBe("unknown-user")
          expect((yield* stored("alice")).email).toBe("alice@corp.example")
          expect(yield* loginAs(p, { sub: "subject-7", preferred_username: "alice" })).toBe("success:alice")
          // bound under OidcBackend's own name too, from then on
          expect(yield* boundTo(p, "subject-7")).toEqual(Option.some(alice.id))
        }).pipe(Effect.provide(withBackend(p.issuer, { linkUnboundUsers })))
      }
    }))

  // A user made elsewhere (an admin, a sign-up, another backend) with no usable password and
  // permissions of its own: before, a provider account that chose its name was bound to it and
  // took its permissions and email (the reviewer's perm-takeover.ts).
  it.scopedLive("by default an existing user no subject is bound to is not linked by name: refused, nothing written or bound", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        const users = yield* UserStore.UserStore
        const ops = yield* Effect.orDie(users.create({ username: "ops", email: "ops@example.com" }))
        yield* Effect.orDie(users.createPermission("auth.change_user"))
        yield* Effect.orDie(users.grantPermission(ops.id, "auth.change_user"))
        expect(yield* loginAs(p, { sub: "mallory", preferred_username: "ops", email: "mallory@attacker.example" })).toBe("unknown-user")
        expect(yield* boundTo(p, "mallory")).toEqual(Option.none())
        expect((yield* stored("ops")).email).toBe("ops@example.com")
        // a new name is created and bound as before
        expect(yield* loginAs(p, { sub: "newcomer", preferred_username: "newcomer" })).toBe("success:newcomer")
        expect(Option.isSome(yield* boundTo(p, "newcomer"))).toBe(true)
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }))

  it.scopedLive("a local account (a usable password) is still refused without linkLocalUsers, and not bound", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        const users = yield* UserStore.UserStore
        const admin = yield* Effect.orDie(users.create({
          username: "admin",
          passwordHash: "pbkdf2_sha256$870000$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
          isSuperuser: true
        }))
        expect(yield* loginAs(p, { sub: "someone", preferred_username: "admin" })).toBe("unknown-user")
        expect(yield* boundTo(p, "someone")).toEqual(Option.none())
        expect(yield* subjectOf(p, admin.id)).toEqual(Option.none())
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }))

  it.scopedLive("a binding to a user that no longer exists is removed, and the login goes on as a first login", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        const identities = yield* ExternalIdentities.ExternalIdentities
        expect(yield* Effect.orDie(identities.bind(namespace(p), "subject-e", "999999"))).toBe(true)
        expect(yield* loginAs(p, { sub: "subject-e", preferred_username: "erin" })).toBe("success:erin")
        const erin = yield* stored("erin")
        expect(yield* boundTo(p, "subject-e")).toEqual(Option.some(erin.id))
        expect(yield* subjectOf(p, "999999")).toEqual(Option.none())
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }))

  // docs/jwt-backend.md's hook names the provider `issuer` as written; OidcBackend named it
  // `new URL(issuer).href`. For an issuer without a path the two differed by a slash, so a user
  // bound through OIDC was unbound on the JWT path, and the first subject presenting its name got it.
  it.scopedLive("a JWT Provisioning hook on the same issuer written without the slash shares the bindings: another sub of a bound name is refused", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      yield* Effect.gen(function*() {
        expect(yield* loginAs(p, { sub: "subject-a", preferred_username: "alice" })).toBe("success:alice")
        const alice = yield* stored("alice")
        expect(p.issuer).not.toMatch(/\/$/)
        const jwt = yield* Provisioning.make({
          backendId: "jwt",
          identities: { store: yield* ExternalIdentities.ExternalIdentities, provider: p.issuer }
        })
        const hook = jwt.hook((claims: { readonly sub: string; readonly preferred_username: string }) => ({
          username: claims.preferred_username,
          subject: claims.sub
        }))
        expect(yield* Effect.flip(hook({ sub: "subject-b", preferred_username: "alice" }))).toEqual(
          new AuthError.NoMatch({ backend: "jwt", reason: "unknown-user" })
        )
        expect(yield* boundTo(p, "subject-b")).toEqual(Option.none())
        expect((yield* hook({ sub: "subject-a", preferred_username: "alice" })).id).toBe(alice.id)
        expect(ExternalIdentities.providerOf(p.issuer)).toBe(namespace(p))
      }).pipe(Effect.provide(withBackend(p.issuer)))
    }))

  it.scopedLive("a plain OAuth 2.0 provider whose user endpoint has no sub (GitHub): bound by its numeric id", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      p.state.idToken = false
      const github: Partial<OidcBackend.Options> = {
        oauth2: { authorizationEndpoint: `${p.issuer}/auth`, tokenEndpoint: `${p.issuer}/token`, userinfoEndpoint: `${p.issuer}/userinfo` },
        usernameClaim: "login"
      }
      yield* Effect.gen(function*() {
        expect(yield* loginAs(p, { id: 583231, login: "octocat", email: "octocat@example.com" })).toBe("success:octocat")
        const octocat = yield* stored("octocat")
        expect(yield* boundTo(p, "583231")).toEqual(Option.some(octocat.id))
        // renamed at GitHub: the same user; the old login taken by another account: nobody
        expect(yield* loginAs(p, { id: 583231, login: "octocat-renamed" })).toBe("success:octocat")
        expect(yield* loginAs(p, { id: 9_000_001, login: "octocat" })).toBe("unknown-user")
        expect(yield* userCount).toBe(1)
      }).pipe(Effect.provide(withBackend(p.issuer, github)))
    }))

  // A numeric `sub` was ignored though a numeric `id` was taken, and an answer with neither was
  // linked by name with no binding, on every login: to whoever held the name at the provider then.
  it.scopedLive("a plain OAuth 2.0 provider: a numeric sub binds the user; an answer with no sub and no id is refused", () =>
    Effect.gen(function*() {
      const p = yield* fakeProvider
      p.state.idToken = false
      const plain: Partial<OidcBackend.Options> = {
        oauth2: { authorizationEndpoint: `${p.issuer}/auth`, tokenEndpoint: `${p.issuer}/token`, userinfoEndpoint: `${p.issuer}/userinfo` },
        usernameClaim: "login"
      }
      yield* Effect.gen(function*() {
        expect(yield* loginAs(p, { login: "hubot" })).toBe("unknown-user")
        expect(Option.isNone(yield* Effect.flatMap(UserStore.UserStore, (users) => Effect.orDie(users.findByUsername("hubot")))))
          .toBe(true)
        expect(yield* loginAs(p, { login: "octocat", sub: 583231 })).toBe("success:octocat")
        const octocat = yield* stored("octocat")
        expect(yield* boundTo(p, "583231")).toEqual(Option.some(octocat.id))
        expect(yield* loginAs(p, { login: "octocat" })).toBe("unknown-user")
        expect(yield* userCount).toBe(1)
      }).pipe(Effect.provide(withBackend(p.issuer, plain)))
    }))

  it("the default mapping's subject: sub; in oauth2 mode else an id that is a non-empty string or a safe integer", () => {
    const oidc = OidcBackend.defaultExternalUser({})
    const plain = OidcBackend.defaultExternalUser({ oauth2: {} })
    expect(oidc({ sub: "s", id: 1, preferred_username: "a" }).subject).toBe("s")
    expect(oidc({ id: 1, preferred_username: "a" }).subject).toBeUndefined()
    expect(plain({ sub: "s", id: 1 }).subject).toBe("s")
    expect(plain({ sub: "", id: 7 }).subject).toBe("7")
    expect(plain({ id: "abc" }).subject).toBe("abc")
    expect(plain({ sub: 583231, id: 1 }).subject).toBe("583231")
    expect(oidc({ sub: 583231, preferred_username: "a" }).subject).toBeUndefined()
    for (const sub of [1.5, 2 ** 53, null, true, {}]) expect(plain({ sub, id: 9 }).subject).toBe("9")
    for (const id of [1.5, 2 ** 53, "", null, true, {}]) expect(plain({ id }).subject).toBeUndefined()
  })
})
