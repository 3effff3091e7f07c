import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Config, ConfigError, ConfigProvider, Effect, Exit, Layer, Option, Redacted, Schema, TestClock } from "effect"
import { base64url, exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose"
import * as JwtBackend from "../src/backends/JwtBackend.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import { AuthError, AuthService, Credentials, ExternalIdentities, MemoryUserStore, PasswordHasher, Provisioning, TestAuth, UserStore } from "../src/index.js"
import type { User } from "../src/index.js"
import * as HttpPeer from "./utils/httpPeer.js"

const ISSUER = "https://issuer.test/"
const AUDIENCE = "api://effect-auth"
const NOW = Date.parse("2025-06-01T12:00:00Z")
const nowSeconds = Math.floor(NOW / 1000)

const rsaA = await generateKeyPair("RS256", { extractable: true })
const rsaB = await generateKeyPair("RS256", { extractable: true })
const rogue = await generateKeyPair("RS256", { extractable: true })
const ec = await generateKeyPair("ES256", { extractable: true })

type Key = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"]

const publicJwk = async (key: Key, kid: string, alg: string): Promise<JWK> => ({
  ...(await exportJWK(key)),
  kid,
  alg,
  use: "sig"
})
const jwkA = await publicJwk(rsaA.publicKey, "key-a", "RS256")
const jwkB = await publicJwk(rsaB.publicKey, "key-b", "RS256")
const jwkEc = await publicJwk(ec.publicKey, "key-ec", "ES256")
const pemA = await exportSPKI(rsaA.publicKey)

const Claims = Schema.Struct({
  sub: Schema.String,
  preferred_username: Schema.String,
  active: Schema.optional(Schema.Boolean),
  admin: Schema.optional(Schema.Boolean)
})
const UserFromClaims = JwtBackend.userFromClaims(Claims, (c) => ({
  id: c.sub,
  username: c.preferred_username,
  isActive: c.active ?? true,
  isSuperuser: c.admin ?? false
}))
const alice: User.BaseUser = { id: "u-1", username: "alice", isActive: true, isSuperuser: false }

interface MintOptions {
  readonly key?: Key | Uint8Array
  readonly alg?: string
  readonly kid?: string | undefined
  readonly iss?: string
  readonly aud?: string
  readonly iat?: number
  readonly exp?: number | undefined
  readonly nbf?: number
  readonly claims?: JWTPayload
}

const mint = (options: MintOptions = {}): Promise<string> => {
  const alg = options.alg ?? "RS256"
  const kid = "kid" in options ? options.kid : "key-a"
  const jwt = new SignJWT(options.claims ?? { sub: "u-1", preferred_username: "alice" })
    .setProtectedHeader(kid === undefined ? { alg } : { alg, kid })
    .setIssuer(options.iss ?? ISSUER)
    .setAudience(options.aud ?? AUDIENCE)
    .setIssuedAt(options.iat ?? nowSeconds)
  if (!("exp" in options) || options.exp !== undefined) jwt.setExpirationTime(options.exp ?? nowSeconds + 600)
  if (options.nbf !== undefined) jwt.setNotBefore(options.nbf)
  return jwt.sign(options.key ?? rsaA.privateKey)
}

const token = (raw: string): Credentials.Token => Schema.decodeSync(Credentials.Token)({ token: raw })

// The issuer's JWKS endpoint; `state.keys` is what it serves, `state.mode` how it misbehaves.
type Mode = "ok" | "down" | "broken" | "shape" | "deep" | "slow" | "reset" | "huge"
const jwksServer = (state: { keys: Array<JWK>; mode: Mode }) =>
  HttpPeer.start(async (request, reply) => {
    if (request.path !== "/.well-known/jwks.json") return reply.json(404, {})
    switch (state.mode) {
      case "down":
        return reply.json(503, {})
      case "broken":
        return reply.text(200, "{\"keys\": [")
      case "shape":
        return reply.json(200, { keys: "nope" })
      case "deep":
        // 5,000 nested arrays where the keys belong: a formatter that renders the value it got
        // recursively overflows the stack on it.
        return reply.text(200, `{"keys": [${"[".repeat(5_000)}${"]".repeat(5_000)}]}`)
      case "reset":
        return reply.reset()
      case "huge":
        // The key set followed by megabytes of whitespace: valid JSON, past any sane ceiling.
        return reply.text(200, JSON.stringify({ keys: state.keys }) + " ".repeat(2 * 1024 * 1024))
      case "slow":
        await HttpPeer.sleep(2_000)
        return reply.json(200, { keys: state.keys })
      case "ok":
        return reply.json(200, { keys: state.keys })
    }
  })

const remote = (
  peer: HttpPeer.Peer,
  overrides: Partial<JwtBackend.Options<JwtBackend.RemoteKeys>> = {},
  keys: Partial<JwtBackend.RemoteKeys> = {}
) =>
  JwtBackend.make({
    keys: { jwksUrl: `${peer.url}/.well-known/jwks.json`, ...keys },
    algorithms: ["RS256"],
    issuer: ISSUER,
    audience: AUDIENCE,
    claims: UserFromClaims,
    ...overrides
  }).pipe(Effect.provide(FetchHttpClient.layer))

const jwksRequests = (peer: HttpPeer.Peer) => peer.count((r) => r.path === "/.well-known/jwks.json")

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const invalid = new AuthError.NoMatch({ backend: "jwt", reason: "invalid-credentials" })
const expired = new AuthError.NoMatch({ backend: "jwt", reason: "expired-credentials" })

// Every test starts at NOW on the TestClock; tokens are minted relative to it.
const setup = (keys: Array<JWK> = [jwkA]) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(NOW)
    const state = { keys, mode: "ok" as Mode }
    const peer = yield* jwksServer(state)
    return { state, peer }
  })

const attempt = (backend: { authenticate: (c: Credentials.Token, r: undefined) => Effect.Effect<User.User, AuthError.BackendError> }, raw: string) =>
  Effect.exit(backend.authenticate(token(raw), undefined))

describe("JwtBackend: valid tokens and the JWKS cache", () => {
  it.scoped("a valid RS256 token from the JWKS URL authenticates; the set is fetched once", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer)
      expect(backend.id).toBe("jwt")
      expect(backend.credentials).toBe(Credentials.Token)
      expect(yield* backend.authenticate(token(yield* Effect.promise(() => mint())), undefined)).toEqual(alice)
      const again = yield* Effect.promise(() => mint({ claims: { sub: "u-2", preferred_username: "bob", admin: true } }))
      expect(yield* backend.authenticate(token(again), undefined)).toEqual({
        id: "u-2",
        username: "bob",
        isActive: true,
        isSuperuser: true
      })
      expect(jwksRequests(peer)).toBe(1)
    }))

  it.scoped("concurrent first calls share one JWKS fetch", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer)
      const raw = yield* Effect.promise(() => mint())
      const users = yield* Effect.forEach(Array.from({ length: 20 }), () => backend.authenticate(token(raw), undefined), {
        concurrency: "unbounded"
      })
      expect(users).toHaveLength(20)
      expect(jwksRequests(peer)).toBe(1)
    }))

  it.scoped("key rotation: a token with a new kid makes the backend refetch the set, then it is accepted", () =>
    Effect.gen(function*() {
      const { peer, state } = yield* setup([jwkA])
      const backend = yield* remote(peer)
      yield* backend.authenticate(token(yield* Effect.promise(() => mint())), undefined)
      expect(jwksRequests(peer)).toBe(1)
      yield* TestClock.adjust("31 seconds")
      state.keys = [jwkA, jwkB]
      const rotated = yield* Effect.promise(() =>
        mint({ key: rsaB.privateKey, kid: "key-b", iat: nowSeconds + 31, exp: nowSeconds + 600 })
      )
      expect(yield* backend.authenticate(token(rotated), undefined)).toEqual(alice)
      expect(jwksRequests(peer)).toBe(2)
      // The old key still verifies from the refreshed set, without another request.
      yield* backend.authenticate(token(yield* Effect.promise(() => mint())), undefined)
      expect(jwksRequests(peer)).toBe(2)
    }))

  it.scoped("the refresh floor: a flood of unknown kids costs at most one JWKS request per cooldown", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer, {}, { cooldown: "30 seconds" })
      yield* backend.authenticate(token(yield* Effect.promise(() => mint())), undefined)
      const forged = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 40 }, (_, i) => mint({ key: rogue.privateKey, kid: `made-up-${i}` })))
      )
      const flood = () =>
        Effect.forEach(forged, (raw) => attempt(backend, raw), { concurrency: "unbounded" })
      for (const exit of yield* flood()) expect(failureOf(exit)).toEqual(invalid)
      // Within the cooldown of the first fetch: no request at all.
      expect(jwksRequests(peer)).toBe(1)
      yield* TestClock.adjust("31 seconds")
      for (const exit of yield* flood()) expect(failureOf(exit)).toEqual(invalid)
      for (const exit of yield* flood()) expect(failureOf(exit)).toEqual(invalid)
      expect(jwksRequests(peer)).toBe(2)
    }))

  it.scoped("a set older than cacheMaxAge is fetched again", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer, {}, { cacheMaxAge: "5 minutes" })
      const raw = yield* Effect.promise(() => mint({ exp: nowSeconds + 3600 }))
      yield* backend.authenticate(token(raw), undefined)
      yield* TestClock.adjust("4 minutes")
      yield* backend.authenticate(token(raw), undefined)
      expect(jwksRequests(peer)).toBe(1)
      yield* TestClock.adjust("2 minutes")
      yield* backend.authenticate(token(raw), undefined)
      expect(jwksRequests(peer)).toBe(2)
    }))
})

describe("JwtBackend: tokens that fail are NoMatch", () => {
  it.scoped("wrong issuer and wrong audience are invalid-credentials", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer)
      expect(failureOf(yield* attempt(backend, yield* Effect.promise(() => mint({ iss: "https://evil.test/" }))))).toEqual(
        invalid
      )
      expect(failureOf(yield* attempt(backend, yield* Effect.promise(() => mint({ aud: "another-api" }))))).toEqual(invalid)
    }))

  it.scoped("only the compact form is a token: a space, padding or a line break inside a signed token is invalid-credentials", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer)
      const good = yield* Effect.promise(() => mint({}))
      expect((yield* backend.authenticate(token(good), undefined)).username).toBe("alice")
      const [head, body, signature] = good.split(".")
      // one signed JWT spelled otherwise: before, jose's forgiving base64 accepted these
      const spellings = [
        `${head}.${body}.${signature!.slice(0, 10)} ${signature!.slice(10)}`,
        `${head}.${body}.${signature}=`,
        `${head}.${body} .${signature}`,
        `${head}.${body}.${signature!.slice(0, 10)}\n${signature!.slice(10)}`,
        `${head}=.${body}.${signature}`
      ]
      for (const spelled of spellings) expect([spelled, failureOf(yield* attempt(backend, spelled))]).toEqual([spelled, invalid])
    }))

  it.scoped("the audience is required: leaving it out fails the layer; audience: false accepts any, on purpose", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const missing = yield* Effect.flip(remote(peer, { audience: undefined as never }))
      expect(missing).toBeInstanceOf(AuthError.AuthConfigError)
      expect(missing.message).toContain("audience is required")
      const any = yield* remote(peer, { audience: false })
      const other = yield* Effect.promise(() => mint({ aud: "another-api" }))
      expect((yield* any.authenticate(token(other), undefined)).username).toBe("alice")
    }))

  it.scoped("a token issued in the future (beyond the clock skew) is invalid-credentials, even without maxTokenAge", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer)
      const ahead = yield* Effect.promise(() => mint({ iat: nowSeconds + 365 * 24 * 3600, exp: nowSeconds + 366 * 24 * 3600 }))
      expect(failureOf(yield* attempt(backend, ahead))).toEqual(invalid)
      // within the skew (30 s by default) it passes: clocks differ a little
      const slightly = yield* Effect.promise(() => mint({ iat: nowSeconds + 20 }))
      expect((yield* backend.authenticate(token(slightly), undefined)).username).toBe("alice")
    }))

  it.scoped("an expired token is expired-credentials; within the clock skew it still passes", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer)
      const old = yield* Effect.promise(() => mint({ iat: nowSeconds - 900, exp: nowSeconds - 60 }))
      expect(failureOf(yield* attempt(backend, old))).toEqual(expired)
      const justExpired = yield* Effect.promise(() => mint({ iat: nowSeconds - 900, exp: nowSeconds - 10 }))
      expect(yield* backend.authenticate(token(justExpired), undefined)).toEqual(alice)
      // The same token once the TestClock has moved past the skew.
      yield* TestClock.adjust("25 seconds")
      expect(failureOf(yield* attempt(backend, justExpired))).toEqual(expired)
    }))

  it.scoped("a token older than maxTokenAge is invalid-credentials, not expired (its exp may be hours away)", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer, { maxTokenAge: "1 hour" })
      const old = yield* Effect.promise(() => mint({ iat: nowSeconds - 2 * 3600, exp: nowSeconds + 3600 }))
      expect(failureOf(yield* attempt(backend, old))).toEqual(invalid)
      const fresh = yield* Effect.promise(() => mint({ iat: nowSeconds - 60 }))
      expect(yield* backend.authenticate(token(fresh), undefined)).toEqual(alice)
    }))

  it.scoped("nbf in the future is invalid-credentials; within the clock skew it passes", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer)
      const future = yield* Effect.promise(() => mint({ nbf: nowSeconds + 120 }))
      expect(failureOf(yield* attempt(backend, future))).toEqual(invalid)
      const soon = yield* Effect.promise(() => mint({ nbf: nowSeconds + 10 }))
      expect(yield* backend.authenticate(token(soon), undefined)).toEqual(alice)
    }))

  it.scoped("the clock skew is configurable", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const strict = yield* remote(peer, { clockSkew: "0 seconds" })
      const lenient = yield* remote(peer, { clockSkew: "5 minutes" })
      const raw = yield* Effect.promise(() => mint({ iat: nowSeconds - 900, exp: nowSeconds - 10 }))
      expect(failureOf(yield* attempt(strict, raw))).toEqual(expired)
      const older = yield* Effect.promise(() => mint({ iat: nowSeconds - 900, exp: nowSeconds - 200 }))
      expect(yield* lenient.authenticate(token(older), undefined)).toEqual(alice)
      const future = yield* Effect.promise(() => mint({ nbf: nowSeconds + 200 }))
      expect(yield* lenient.authenticate(token(future), undefined)).toEqual(alice)
      expect(failureOf(yield* attempt(strict, yield* Effect.promise(() => mint({ nbf: nowSeconds + 5 }))))).toEqual(invalid)
    }))

  it.scoped("a token without exp is refused whatever requiredClaims adds; only requireExpiry: false accepts it", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const forever = yield* Effect.promise(() => mint({ exp: undefined }))
      // `requiredClaims` names claims besides `exp`: ["sub"] means "sub too", never "sub instead"
      for (const requiredClaims of [undefined, [], ["sub"], ["exp", "sub"]]) {
        const backend = yield* remote(peer, { requiredClaims })
        expect(failureOf(yield* attempt(backend, forever))).toEqual(invalid)
      }
      // ...and the claims it names are required too
      const withJti = yield* remote(peer, { requiredClaims: ["sub", "jti"] })
      const identified = yield* Effect.promise(() => mint({ claims: { sub: "u-1", preferred_username: "alice", jti: "t-1" } }))
      expect(yield* withJti.authenticate(token(identified), undefined)).toEqual(alice)
      expect(failureOf(yield* attempt(withJti, yield* Effect.promise(() => mint())))).toEqual(invalid)
      // accepting tokens that never expire is said explicitly
      const lasting = yield* remote(peer, { requireExpiry: false, requiredClaims: ["sub"] })
      expect(yield* lasting.authenticate(token(forever), undefined)).toEqual(alice)
      expect(yield* lasting.authenticate(token(yield* Effect.promise(() => mint())), undefined)).toEqual(alice)
      const past = yield* Effect.promise(() => mint({ iat: nowSeconds - 900, exp: nowSeconds - 300 }))
      expect(failureOf(yield* attempt(lasting, past))).toEqual(expired)
    }))

  it.scoped("alg none is always rejected, and cannot be configured", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer)
      const encode = (value: unknown) => base64url.encode(JSON.stringify(value))
      const unsigned = `${encode({ alg: "none", typ: "JWT", kid: "key-a" })}.${
        encode({ sub: "u-1", preferred_username: "alice", iss: ISSUER, aud: AUDIENCE, exp: nowSeconds + 600 })
      }.`
      expect(failureOf(yield* attempt(backend, unsigned))).toEqual(invalid)
      const error = yield* remote(peer, { algorithms: ["none" as JwtBackend.Algorithm] }).pipe(Effect.flip)
      expect(error).toBeInstanceOf(AuthError.AuthConfigError)
    }))

  it.scoped("HS256 signed with the RSA public key as secret (HMAC/RSA confusion) is rejected", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const secret = new TextEncoder().encode(pemA)
      const confused = yield* Effect.promise(() => mint({ alg: "HS256", key: secret }))
      // Remote keys: HS* cannot even be allowed.
      const backend = yield* remote(peer)
      expect(failureOf(yield* attempt(backend, confused))).toEqual(invalid)
      const misconfigured = yield* remote(peer, { algorithms: ["RS256", "HS256"] }).pipe(Effect.flip)
      expect(misconfigured).toBeInstanceOf(AuthError.AuthConfigError)
      // Static keys: HS* cannot be allowed with a key set either, so the RSA key is never an HMAC secret.
      const options = { keys: { jwks: { keys: [jwkA] } }, issuer: ISSUER, audience: AUDIENCE, claims: UserFromClaims }
      const mixed = yield* JwtBackend.make({ ...options, algorithms: ["RS256", "HS256"] }).pipe(Effect.flip)
      expect(mixed).toBeInstanceOf(AuthError.AuthConfigError)
      const rsa = yield* JwtBackend.make({ ...options, algorithms: ["RS256"] })
      expect(failureOf(yield* attempt(rsa, confused))).toEqual(invalid)
      const noKid = yield* Effect.promise(() => mint({ alg: "HS256", key: secret, kid: undefined }))
      expect(failureOf(yield* attempt(rsa, noKid))).toEqual(invalid)
      // ...while the genuine RS256 token passes the same backend.
      expect(yield* rsa.authenticate(token(yield* Effect.promise(() => mint())), undefined)).toEqual(alice)
    }))

  it.scoped("an algorithm outside the allow-list is rejected before any key lookup", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup([jwkA, jwkEc])
      const backend = yield* remote(peer)
      const es = yield* Effect.promise(() => mint({ alg: "ES256", key: ec.privateKey, kid: "key-ec" }))
      expect(failureOf(yield* attempt(backend, es))).toEqual(invalid)
      expect(jwksRequests(peer)).toBe(0)
      const both = yield* remote(peer, { algorithms: ["RS256", "ES256"] })
      expect(yield* both.authenticate(token(es), undefined)).toEqual(alice)
    }))

  it.scoped("a wrong signature, an unknown key and garbage are invalid-credentials", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer)
      const forged = yield* Effect.promise(() => mint({ key: rogue.privateKey }))
      expect(failureOf(yield* attempt(backend, forged))).toEqual(invalid)
      const valid = yield* Effect.promise(() => mint())
      const [h, p] = valid.split(".")
      const tampered = `${h}.${base64url.encode(JSON.stringify({ sub: "u-0", preferred_username: "root", admin: true, iss: ISSUER, aud: AUDIENCE, exp: nowSeconds + 600 }))}.${valid.split(".")[2]}`
      expect(p).toBeDefined()
      expect(failureOf(yield* attempt(backend, tampered))).toEqual(invalid)
      for (const garbage of ["abc", "a.b.c", `${h}..`]) {
        expect(failureOf(yield* attempt(backend, garbage))).toEqual(invalid)
      }
    }))

  it.scoped("claims that do not decode into a user are invalid-credentials", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer)
      const raw = yield* Effect.promise(() => mint({ claims: { sub: "u-1" } }))
      expect(failureOf(yield* attempt(backend, raw))).toEqual(invalid)
      const wrongType = yield* Effect.promise(() => mint({ claims: { sub: "u-1", preferred_username: 42 } }))
      expect(failureOf(yield* attempt(backend, wrongType))).toEqual(invalid)
    }))

  it.scoped("an inactive user is NoMatch inactive-user, unless allowInactive", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const raw = yield* Effect.promise(() => mint({ claims: { sub: "u-3", preferred_username: "carol", active: false } }))
      const strict = yield* remote(peer)
      expect(failureOf(yield* attempt(strict, raw))).toEqual(new AuthError.NoMatch({ backend: "jwt", reason: "inactive-user" }))
      const lenient = yield* remote(peer, { allowInactive: true })
      expect((yield* lenient.authenticate(token(raw), undefined)).username).toBe("carol")
    }))
})

describe("JwtBackend: a JWKS endpoint that cannot answer is a TransportError", () => {
  const modes = [
    ["answers 503", "down", "unexpected status 503"],
    ["sends broken JSON", "broken", "not JSON"],
    ["sends something that is not a key set", "shape", "not a key set"],
    ["sends a deeply nested body that is not a key set", "deep", "not a key set at \"keys\".\"0\""],
    ["resets the connection", "reset", "connection failed"],
    ["sends a body past 1 MiB", "huge", "response body larger than 1048576 bytes"]
  ] as const
  for (const [name, mode, expected] of modes) {
    it.scoped(`the endpoint ${name}`, () =>
      Effect.gen(function*() {
        const { peer, state } = yield* setup()
        state.mode = mode
        const backend = yield* remote(peer)
        const raw = yield* Effect.promise(() => mint())
        const error = failureOf(yield* attempt(backend, raw))
        expect(error).toBeInstanceOf(AuthError.TransportError)
        expect(String((error as AuthError.TransportError).cause)).toContain(expected)
        expect(String((error as AuthError.TransportError).cause)).not.toContain(raw)
      }))
  }

  // The key set must come from the configured URL: followed, a redirect would let another
  // origin choose the keys, and every token it signs would verify.
  it.scoped("the endpoint redirects to another origin: a TransportError, the redirect not followed", () =>
    Effect.gen(function*() {
      const { peer: other } = yield* setup([jwkB])
      const peer = yield* HttpPeer.start((_, reply) => {
        reply.raw.writeHead(302, { location: `${other.url}/.well-known/jwks.json` })
        reply.raw.end()
      })
      const backend = yield* remote(peer)
      const raw = yield* Effect.promise(() => mint({ key: rsaB.privateKey, kid: "key-b" }))
      const error = failureOf(yield* attempt(backend, raw))
      expect(error).toBeInstanceOf(AuthError.TransportError)
      expect(String((error as AuthError.TransportError).cause)).toContain("unexpected status 302")
      expect(jwksRequests(other)).toBe(0)
    }))

  it.scoped("a refused connection is a TransportError", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const url = yield* HttpPeer.closedPort
      const backend = yield* JwtBackend.make({
        keys: { jwksUrl: `${url}/jwks` },
        algorithms: ["RS256"],
        audience: AUDIENCE,
        claims: UserFromClaims
      }).pipe(Effect.provide(FetchHttpClient.layer))
      const error = failureOf(yield* attempt(backend, yield* Effect.promise(() => mint())))
      expect(error).toBeInstanceOf(AuthError.TransportError)
    }))

  it.scoped("a down endpoint is asked once per cooldown; when it is back, tokens verify again", () =>
    Effect.gen(function*() {
      const { peer, state } = yield* setup()
      state.mode = "down"
      const backend = yield* remote(peer)
      const raw = yield* Effect.promise(() => mint({ exp: nowSeconds + 3600 }))
      for (let i = 0; i < 5; i++) {
        expect(failureOf(yield* attempt(backend, raw))).toBeInstanceOf(AuthError.TransportError)
      }
      expect(jwksRequests(peer)).toBe(1)
      state.mode = "ok"
      yield* TestClock.adjust("31 seconds")
      expect(yield* backend.authenticate(token(raw), undefined)).toEqual(alice)
      expect(jwksRequests(peer)).toBe(2)
    }))

  it.scoped("a stale set is not used when the refresh fails", () =>
    Effect.gen(function*() {
      const { peer, state } = yield* setup()
      const backend = yield* remote(peer, {}, { cacheMaxAge: "1 minute" })
      const raw = yield* Effect.promise(() => mint({ exp: nowSeconds + 3600 }))
      yield* backend.authenticate(token(raw), undefined)
      state.mode = "down"
      yield* TestClock.adjust("2 minutes")
      expect(failureOf(yield* attempt(backend, raw))).toBeInstanceOf(AuthError.TransportError)
    }))

  it.live("a slow endpoint is cut by the JWKS timeout", () =>
    Effect.gen(function*() {
      const state = { keys: [jwkA], mode: "slow" as const }
      const peer = yield* jwksServer(state)
      const backend = yield* remote(peer, {}, { timeout: "100 millis" })
      const raw = yield* Effect.promise(() => mint({ iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 }))
      const error = failureOf(yield* attempt(backend, raw))
      expect(error).toBeInstanceOf(AuthError.TransportError)
      expect(String((error as AuthError.TransportError).cause)).toContain("timed out")
    }).pipe(Effect.scoped))
})

describe("JwtBackend: static keys, secrets, hooks and configuration", () => {
  it.scoped("an HMAC secret verifies HS256 tokens and needs no HttpClient", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const secret = "s".repeat(32)
      const backend = yield* JwtBackend.make({
        keys: { secret: Redacted.make(secret) },
        algorithms: ["HS256"],
        issuer: ISSUER,
        audience: AUDIENCE,
        claims: UserFromClaims
      })
      const raw = yield* Effect.promise(() => mint({ alg: "HS256", key: new TextEncoder().encode(secret), kid: undefined }))
      expect(yield* backend.authenticate(token(raw), undefined)).toEqual(alice)
      const other = yield* Effect.promise(() =>
        mint({ alg: "HS256", key: new TextEncoder().encode("t".repeat(32)), kid: undefined })
      )
      expect(failureOf(yield* attempt(backend, other))).toEqual(invalid)
      // An RS256 token cannot reach an HMAC-only backend.
      expect(failureOf(yield* attempt(backend, yield* Effect.promise(() => mint())))).toEqual(invalid)
    }))

  it.effect("unusable configurations fail with AuthConfigError", () =>
    Effect.gen(function*() {
      const base = { issuer: ISSUER, audience: AUDIENCE, claims: UserFromClaims }
      const errors = yield* Effect.all([
        JwtBackend.make({ ...base, keys: { secret: Redacted.make("short") }, algorithms: ["HS256"] }).pipe(Effect.flip),
        JwtBackend.make({ ...base, keys: { secret: Redacted.make("s".repeat(40)) }, algorithms: ["HS512"] }).pipe(Effect.flip),
        JwtBackend.make({ ...base, keys: { secret: Redacted.make("s".repeat(64)) }, algorithms: ["RS256"] }).pipe(Effect.flip),
        JwtBackend.make({ ...base, keys: { jwks: { keys: [jwkA] } }, algorithms: [] as any }).pipe(Effect.flip),
        JwtBackend.make({ ...base, keys: { jwks: "nope" as any }, algorithms: ["RS256"] }).pipe(Effect.flip),
        // jose verifies HS* against a secret only: an `oct` key in a set would refuse every token
        JwtBackend.make({
          ...base,
          keys: { jwks: { keys: [{ kty: "oct", k: Buffer.from("s".repeat(32)).toString("base64url"), kid: "h" }] } },
          algorithms: ["HS256"]
        }).pipe(Effect.flip),
        JwtBackend.make({ ...base, keys: { jwks: { keys: [jwkA] } }, algorithms: ["RS256", "HS256"] }).pipe(Effect.flip),
        JwtBackend.make({ ...base, keys: { jwksUrl: "not a url" }, algorithms: ["RS256"] }).pipe(
          Effect.provide(FetchHttpClient.layer),
          Effect.flip
        ),
        JwtBackend.make({ ...base, keys: { jwksUrl: "https://x.test/jwks", cooldown: "1 hour" }, algorithms: ["RS256"] })
          .pipe(Effect.provide(FetchHttpClient.layer), Effect.flip),
        // requiredClaims from an untyped caller that is no list of claim names
        JwtBackend.make({ ...base, keys: { jwks: { keys: [jwkA] } }, algorithms: ["RS256"], requiredClaims: "sub" as any })
          .pipe(Effect.flip),
        JwtBackend.make({ ...base, keys: { jwks: { keys: [jwkA] } }, algorithms: ["RS256"], requiredClaims: [42] as any })
          .pipe(Effect.flip),
        // A JWKS URL without an HttpClient in context (the types forbid it; the runtime says why).
        (JwtBackend.make as any)({ ...base, keys: { jwksUrl: "https://x.test/jwks" }, algorithms: ["RS256"] }).pipe(
          Effect.flip
        ) as Effect.Effect<AuthError.AuthConfigError>
      ])
      for (const error of errors) expect(error).toBeInstanceOf(AuthError.AuthConfigError)
    }))

  it.scoped("getUser answers Option.none() without a loadUser hook, and asks the hook otherwise", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const stateless = yield* remote(peer)
      expect(yield* stateless.getUser("u-1")).toEqual(Option.none())
      const asked: Array<string> = []
      const withHook = yield* remote(peer, {
        loadUser: (id) =>
          Effect.sync(() => {
            asked.push(id)
            return id === "u-1" ? Option.some(alice) : Option.none()
          })
      })
      expect(yield* withHook.getUser("u-1")).toEqual(Option.some(alice))
      expect(yield* withHook.getUser("u-9")).toEqual(Option.none())
      expect(yield* withHook.getUser("")).toEqual(Option.none())
      expect(asked).toEqual(["u-1", "u-9"])
    }))

  it.scoped("provision receives the verified claims and the mapped user; its user and its denial win", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const seen: Array<[JWTPayload, User.User]> = []
      const backend = yield* remote(peer, {
        provision: (claims, user) =>
          claims.sub === "banned"
            ? Effect.fail(new AuthError.PermissionDenied({ backend: "jwt", reason: "disabled locally" }))
            : Effect.sync(() => {
              seen.push([claims, user])
              return { ...user, id: "local-7" }
            })
      })
      const user = yield* backend.authenticate(token(yield* Effect.promise(() => mint())), undefined)
      expect(user).toEqual({ ...alice, id: "local-7" })
      expect(seen[0]?.[0].iss).toBe(ISSUER)
      expect(seen[0]?.[1]).toEqual(alice)
      const banned = yield* Effect.promise(() => mint({ claims: { sub: "banned", preferred_username: "mallory" } }))
      expect(failureOf(yield* attempt(backend, banned))).toEqual(
        new AuthError.PermissionDenied({ backend: "jwt", reason: "disabled locally" })
      )
    }))

  it.scoped("the typ header is checked when configured", () =>
    Effect.gen(function*() {
      const { peer } = yield* setup()
      const backend = yield* remote(peer, { typ: "at+jwt" })
      expect(failureOf(yield* attempt(backend, yield* Effect.promise(() => mint())))).toEqual(invalid)
      const at = yield* Effect.promise(() =>
        new SignJWT({ sub: "u-1", preferred_username: "alice" })
          .setProtectedHeader({ alg: "RS256", kid: "key-a", typ: "at+jwt" })
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setExpirationTime(nowSeconds + 600)
          .sign(rsaA.privateKey)
      )
      expect(yield* backend.authenticate(token(at), undefined)).toEqual(alice)
    }))
})

// A JWT user's id is its `sub`, its username a `preferred_username` the person may choose (the
// mapping docs/jwt-backend.md shows): GitLab's and Gitea's subs are small integers, so a token can
// name the store's user 1 by id and by name. Only users the store handed out hold its permissions;
// one provisioned into the store through `Provisioning` does.
describe("JwtBackend users and the store's permissions (ModelBackend)", () => {
  const secret = "s".repeat(32)
  const hmac = (claims: JWTPayload) =>
    Effect.promise(() => mint({ alg: "HS256", key: new TextEncoder().encode(secret), kid: undefined, claims }))
  const jwtOptions = {
    keys: { secret: Redacted.make(secret) },
    algorithms: ["HS256"],
    issuer: ISSUER,
    audience: AUDIENCE,
    claims: UserFromClaims
  } as const
  const app = (jwt: Layer.Layer<JwtBackend.JwtBackend, AuthError.AuthConfigError, UserStore.UserStore | ExternalIdentities.ExternalIdentities>) =>
    TestAuth.layer([ModelBackend.ModelBackend, JwtBackend.JwtBackend]).pipe(
      Layer.provideMerge(Layer.merge(ModelBackend.layer(), jwt)),
      Layer.provideMerge(Layer.mergeAll(MemoryUserStore.layer, ExternalIdentities.layerMemory, PasswordHasher.layerTest))
    )
  const loginWith = (claims: JWTPayload) =>
    Effect.flatMap(hmac(claims), (raw) => AuthService.authenticate({ token: raw }))

  it.effect("a token whose sub is a local id holds none of that user's permissions, whatever its preferred_username", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const store = yield* UserStore.UserStore
      const local = yield* Effect.orDie(store.create({ username: "alice" }))
      yield* Effect.orDie(store.grantPermission(local.id, "blog.add_post"))
      for (const preferred_username of ["alice", "mallory"]) {
        const { backend, user } = yield* loginWith({ sub: local.id, preferred_username })
        expect([backend, user.id, user.username]).toEqual(["jwt", local.id, preferred_username])
        expect(yield* AuthService.hasPerm(user, "blog.add_post")).toBe(false)
        expect((yield* AuthService.getAllPermissions(user)).size).toBe(0)
      }
    }).pipe(Effect.provide(app(Layer.effect(JwtBackend.JwtBackend, JwtBackend.make(jwtOptions))))))

  it.effect("a JwtBackend provisioning through Provisioning.hook: its users hold their local permissions, after login and from a session", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const store = yield* UserStore.UserStore
      const first = yield* loginWith({ sub: "gitlab-7", preferred_username: "bob" })
      yield* Effect.orDie(store.grantPermission(first.user.id, "blog.add_post"))
      const { user } = yield* loginWith({ sub: "gitlab-7", preferred_username: "bob" })
      expect(user.id).not.toBe("gitlab-7")
      expect(yield* AuthService.hasPerm(user, "blog.add_post")).toBe(true)
      const session = Option.getOrThrow(yield* AuthService.getUser("jwt", user.id))
      expect(yield* AuthService.hasPerm(session, "blog.add_post")).toBe(true)
      expect([...(yield* AuthService.getAllPermissions(session))]).toEqual(["blog.add_post"])
    }).pipe(Effect.provide(app(Layer.effect(
      JwtBackend.JwtBackend,
      Effect.gen(function*() {
        const users = yield* Provisioning.make({
          backendId: "jwt",
          identities: { store: yield* ExternalIdentities.ExternalIdentities, provider: ISSUER },
          // an app's own user type, without the row's password hash: marked as the store's all the same
          toUser: (stored) => ({ id: stored.id, username: stored.username, isActive: stored.isActive, isSuperuser: stored.isSuperuser })
        })
        return yield* JwtBackend.make({
          ...jwtOptions,
          provision: users.hook((claims: Readonly<Record<string, unknown>>, user: { readonly username: string }) => ({
            username: user.username,
            subject: typeof claims.sub === "string" ? claims.sub : undefined
          })),
          loadUser: users.loadUser
        })
      })
    )))))
})

describe("JwtBackend.layerConfig", () => {
  const layer = JwtBackend.layerConfig({
    keys: { secret: Config.redacted("JWT_SECRET") },
    algorithms: Config.succeed(["HS256"] as const),
    issuer: Config.string("JWT_ISSUER"),
    audience: Config.string("JWT_AUDIENCE"),
    claims: Config.succeed(UserFromClaims)
  })
  const provider = (secret: string | undefined) =>
    ConfigProvider.fromMap(
      new Map([
        ...(secret === undefined ? [] : [["JWT_SECRET", secret] as const]),
        ["JWT_ISSUER", ISSUER],
        ["JWT_AUDIENCE", AUDIENCE]
      ])
    )

  it.effect("reads a redacted HMAC secret, the issuer and the audience from Config", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const secret = "c".repeat(32)
      const backend = yield* JwtBackend.JwtBackend.pipe(Effect.provide(layer), Effect.withConfigProvider(provider(secret)))
      const raw = yield* Effect.promise(() => mint({ alg: "HS256", key: new TextEncoder().encode(secret), kid: undefined }))
      expect(yield* backend.authenticate(token(raw), undefined)).toEqual(alice)
      const wrongIssuer = yield* Effect.promise(() =>
        mint({ alg: "HS256", key: new TextEncoder().encode(secret), kid: undefined, iss: "https://other.test/" })
      )
      expect(failureOf(yield* attempt(backend, wrongIssuer))).toEqual(invalid)
    }))

  it.effect("a missing secret is a ConfigError; a short one an AuthConfigError that does not show it", () =>
    Effect.gen(function*() {
      const build = (secret: string | undefined) =>
        Effect.flip(Effect.withConfigProvider(Layer.build(layer).pipe(Effect.scoped), provider(secret)))
      expect(ConfigError.isConfigError(yield* build(undefined))).toBe(true)
      const short = yield* build("tiny-secret-value")
      expect(short).toBeInstanceOf(AuthError.AuthConfigError)
      expect(JSON.stringify(short) + String(short)).not.toContain("tiny-secret-value")
    }))
})
