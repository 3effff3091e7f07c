import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpTraceContext from "@effect/platform/HttpTraceContext"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { isRecording } from "../tracing.js"
import { describeClientError } from "./clientErrors.js"

// What a peer request's span may say: the method and where it went, without the query string or
// user info (an app's request builder may put a token there), and no header at all (a custom
// header such as `Private-Token` carries one, and the platform redacts only a few known names).
const requestAttributes = (request: HttpClientRequest.HttpClientRequest): Record<string, unknown> => {
  const attributes: Record<string, unknown> = { "http.request.method": request.method }
  let url: URL
  try {
    url = new URL(request.url)
  } catch {
    return attributes
  }
  attributes["server.address"] = url.hostname
  if (url.port !== "") attributes["server.port"] = Number(url.port)
  attributes["url.scheme"] = url.protocol.slice(0, -1)
  attributes["url.path"] = url.pathname
  attributes["url.full"] = `${url.origin}${url.pathname}`
  return attributes
}

// The exit the span ends with. The response and the platform's error both hold the request (its
// URL with the query, its headers, its body): a success ends the span with no value, a failure
// with the same secret-free sentence a TransportError gives.
const spanExit = (
  exit: Exit.Exit<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>
): Exit.Exit<unknown, unknown> => {
  if (Exit.isSuccess(exit)) return Exit.void
  if (Cause.isInterruptedOnly(exit.cause)) return exit
  return Exit.fail(Option.match(Cause.failureOption(exit.cause), {
    onNone: () => "the request failed",
    onSome: describeClientError
  }))
}

// One span per peer request, kind "client", made only where a tracer records it (the check the
// fold makes, internal/tracing): under Effect's built-in tracer alone, a request costs no span.
const traced = (
  client: HttpClient.HttpClient,
  request: HttpClientRequest.HttpClientRequest,
  fiber: Fiber.RuntimeFiber<unknown, unknown>
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(
      Effect.makeSpan(`http.client ${request.method}`, {
        kind: "client",
        captureStackTrace: false,
        attributes: requestAttributes(request)
      }),
      (span) => {
        const sent = fiber.getFiberRef(HttpClient.currentTracerPropagation)
          ? HttpClientRequest.setHeaders(request, HttpTraceContext.toHeaders(span))
          : request
        return Effect.onExit(
          restore(Effect.withParentSpan(client.execute(sent), span)),
          (exit) =>
            Effect.map(Clock.currentTimeNanos, (now) => {
              if (Exit.isSuccess(exit)) span.attribute("http.response.status_code", exit.value.status)
              span.end(now, spanExit(exit))
            })
        )
      }
    )
  )

/**
 * The app's `HttpClient`, made not to follow redirects and to trace without secrets, for every
 * request to an identity peer (a user service, an OIDC provider, a key set URL).
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
 * The platform's client span is turned off for these requests: it records the full URL, the
 * query string (`url.full`, `url.query`) and every request header but a few known names, where a
 * request builder may have put a token (`?access_token=`, `Private-Token:`). In its place, where a
 * recording tracer is installed, each request is one span `http.client <METHOD>` of kind
 * `"client"` with the method, the host, port, scheme and path, the URL without query or user info,
 * and the response status; a failure ends it with the secret-free description a
 * `TransportError` gives. Trace headers go to the peer as the platform sends them
 * (`HttpClient.currentTracerPropagation`). Under Effect's built-in tracer alone, or with tracing
 * disabled (`Effect.withTracerEnabled(false)`, the app's `HttpClient.withTracerDisabledWhen`),
 * there is no span and no trace header.
 *
 * @internal
 */
export const make: Effect.Effect<HttpClient.HttpClient, never, HttpClient.HttpClient> = Effect.map(
  Effect.all([HttpClient.HttpClient, Effect.serviceOption(FetchHttpClient.Fetch)]),
  ([client, fetch]) => {
    const base = Option.getOrElse(fetch, () => globalThis.fetch)
    const manual = ((input: Parameters<typeof globalThis.fetch>[0], init?: RequestInit) =>
      base(input, { ...init, redirect: "manual" })) as typeof globalThis.fetch
    const inner = HttpClient.withTracerDisabledWhen(
      HttpClient.transformResponse(client, Effect.provideService(FetchHttpClient.Fetch, manual)),
      () => true
    )
    // The outer client has no preprocessing of its own: what the app's `transformClient` adds
    // around it (headers, URL changes) reaches `execute` below as the final request.
    return HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
      (effect) =>
        Effect.flatMap(effect, (request) =>
          Effect.withFiberRuntime<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>((fiber) =>
            isRecording(fiber) && !fiber.getFiberRef(HttpClient.currentTracerDisabledWhen)(request)
              ? traced(inner, request, fiber)
              : inner.execute(request)
          )),
      (request) => Effect.succeed(request)
    )
  }
)
