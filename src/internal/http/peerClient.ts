import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

/**
 * The app's `HttpClient`, made not to follow redirects, for every request to an identity peer (a
 * user service, an OIDC provider, a key set URL).
 *
 * What such a peer answers decides who a user is, so the answer must come from the address the
 * app configured. `fetch` follows a 3xx to any origin by default, and `FetchHttpClient`, which the
 * docs' examples use, passes that default on: an issuer or key set URL that redirects (a
 * misconfiguration, an open redirect, an `http:` URL on a hostile network) would let another
 * origin name the token endpoint and sign the ID token, or choose the user outright, and would
 * receive the client secret and the code. oauth4webapi and jose ask for `redirect: "manual"` for
 * the same reason; this client keeps that promise whatever they are handed. A 3xx then reaches
 * the backend as it is, an unexpected status, which is a `TransportError`.
 *
 * The `fetch` `FetchHttpClient` calls is wrapped, not its `RequestInit`: the init the app gave the
 * client's layer (headers, a `dispatcher` with its own certificate authority or proxy) still
 * reaches `fetch`, with `redirect` overridden. The `fetch` wrapped is the one provided where the
 * backend is built, else the global one. Clients that do not follow redirects themselves (the
 * platform's undici and `node:http` clients) are unaffected. A client that follows them in Effect
 * (`HttpClient.followRedirects`) is the app's explicit choice and is left alone.
 *
 * @internal
 */
export const make: Effect.Effect<HttpClient.HttpClient, never, HttpClient.HttpClient> = Effect.map(
  Effect.all([HttpClient.HttpClient, Effect.serviceOption(FetchHttpClient.Fetch)]),
  ([client, fetch]) => {
    const base = Option.getOrElse(fetch, () => globalThis.fetch)
    const manual = ((input: Parameters<typeof globalThis.fetch>[0], init?: RequestInit) =>
      base(input, { ...init, redirect: "manual" })) as typeof globalThis.fetch
    return HttpClient.transformResponse(client, Effect.provideService(FetchHttpClient.Fetch, manual))
  }
)
