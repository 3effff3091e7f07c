/**
 * A local OpenID Connect provider for the OIDC example and tests: `oidc-provider` (the reference
 * implementation, a dev dependency) on 127.0.0.1 and a free port, with RSA keys generated per run,
 * one confidential client, accounts that exist for any login name (any password), and its
 * development login and consent pages. It keeps its port from start to `close`: `stop` makes it
 * refuse every connection (a provider that is down) and `start` serves again; `rotate` signs with a
 * new key (the old one still published, as in a rotation). No port is ever given back and bound
 * again, where another process could take it in between. `browser` is a fetch with a cookie jar that
 * follows the redirects a browser would; `signIn` fills the provider's pages. Not for production.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto"
import * as http from "node:http"
import Provider from "oidc-provider"

const newKey = () => {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 })
  return { ...privateKey.export({ format: "jwk" }), kid: randomBytes(8).toString("hex"), alg: "RS256", use: "sig" }
}

export interface LocalProvider {
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: string
  /** Signs with a new key from now on (the old key stays published). */
  readonly rotate: () => Promise<void>
  /** Down: every connection, open or new, is cut. */
  readonly stop: () => Promise<void>
  /** Serves again after `stop`. */
  readonly start: () => Promise<void>
  /** Gives the port back. */
  readonly close: () => Promise<void>
}

export const startProvider = async (options: {
  readonly redirectUri: string
  readonly postLogoutRedirectUri: string
  readonly groups?: (login: string) => ReadonlyArray<string>
}): Promise<LocalProvider> => {
  // Bound first, on a port the OS picks (the issuer names it), and kept until close.
  let handle: http.RequestListener | undefined
  const server = http.createServer((request, response) => handle!(request, response))
  server.on("connection", (socket) => {
    if (handle === undefined) socket.destroy()
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const clientId = "effect-auth-test"
  const clientSecret = randomBytes(24).toString("base64url")
  let keys = [newKey()]
  const cookieKeys = [randomBytes(16).toString("hex")]

  const start = async () => {
    const provider = new Provider(issuer, {
      clients: [{
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [options.redirectUri],
        post_logout_redirect_uris: [options.postLogoutRedirectUri],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic"
      }],
      jwks: { keys: keys as any },
      cookies: { keys: cookieKeys },
      pkce: { required: () => true },
      ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3600, IdToken: 600, Interaction: 600, Session: 3600 },
      conformIdTokenClaims: false,
      claims: { openid: ["sub"], email: ["email"], profile: ["preferred_username", "groups"] },
      features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
      findAccount: async (_ctx: unknown, sub: string) => ({
        accountId: sub,
        claims: async () => ({
          sub,
          email: `${sub}@example.com`,
          preferred_username: sub,
          groups: [...(options.groups?.(sub) ?? [])]
        })
      })
    } as any)
    // oidc-provider logs every unhandled protocol error by default; the tests cause them on purpose.
    provider.on("server_error", () => {})
    handle = provider.callback()
  }
  const stop = async () => {
    handle = undefined
    server.closeAllConnections()
  }
  await start()
  return {
    issuer,
    clientId,
    clientSecret,
    start,
    stop,
    rotate: async () => {
      keys = [newKey(), ...keys]
      await stop()
      await start()
    },
    close: () =>
      new Promise<void>((resolve) => {
        handle = undefined
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

/** A browser: cookies kept per host (as browsers do, whatever the port), redirects followed by hand. */
export const browser = () => {
  const jar = new Map<string, string>()
  const request = async (url: string, init: { method?: string; body?: URLSearchParams; headers?: Record<string, string> } = {}) => {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ")
    const response = await fetch(url, {
      method: init.method ?? "GET",
      redirect: "manual",
      headers: { ...(cookie === "" ? {} : { cookie }), ...init.headers },
      ...(init.body === undefined ? {} : { body: init.body })
    })
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";")
      const eq = pair!.indexOf("=")
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /expires=thu, 01 jan 1970/i.test(a))
      if (expired || value === "") jar.delete(name)
      else jar.set(name, value)
    }
    return response
  }
  /** Follows redirects from `url` until a response that is not one (or `stopAt` matches the next URL). */
  const follow = async (url: string, stopAt?: (next: URL) => boolean): Promise<{ response: Response; url: string }> => {
    let current = url
    for (let i = 0; i < 20; i++) {
      const response = await request(current)
      const location = response.headers.get("location")
      if (response.status < 300 || response.status >= 400 || location === null) return { response, url: current }
      const next = new URL(location, current)
      if (stopAt?.(next)) return { response, url: next.href }
      current = next.href
    }
    throw new Error("too many redirects")
  }
  return { jar, request, follow }
}

/** At the provider's development pages: logs in as `login`, then consents. Answers the callback URL. */
export const signIn = async (b: ReturnType<typeof browser>, authorizationUrl: string, login: string, redirectUri: string) => {
  const isCallback = (next: URL) => next.href.startsWith(redirectUri)
  let step = await b.follow(authorizationUrl, isCallback)
  for (let i = 0; i < 4 && !step.url.startsWith(redirectUri); i++) {
    const page = await step.response.text()
    const prompt = page.includes('name="prompt" value="login"') ? "login" : "consent"
    const body = new URLSearchParams(prompt === "login" ? { prompt, login, password: "any" } : { prompt })
    const posted = await b.request(step.url, { method: "POST", body })
    const location = posted.headers.get("location")
    if (location === null) throw new Error(`the provider answered ${posted.status} to the ${prompt} form`)
    const next = new URL(location, step.url)
    step = isCallback(next) ? { response: posted, url: next.href } : await b.follow(next.href, isCallback)
  }
  if (!step.url.startsWith(redirectUri)) throw new Error("the provider did not send the browser back")
  return step.url
}
