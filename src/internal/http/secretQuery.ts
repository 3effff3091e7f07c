// A secret in a request's query string (the OIDC callback's authorization code, a token a custom
// source reads from `?access_token=`) is masked in what backends and events see, but the platform
// records the URL as the client sent it: `HttpMiddleware.tracer` in its server span (`url.full`,
// `url.query`), which exporters send on when the span ends, and `HttpMiddleware.logger` in the
// access log line ("Sent HTTP response", `http.url`).
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import { maskQuery } from "./serverRequest.js"

/**
 * Keeps the values of the query parameters named in `names` (lower-case, as {@link maskQuery}
 * matches them) out of the platform's trace and access log for the request `fiber` serves.
 *
 * - The server span is an ancestor of the code running in `fiber` (its parent, unless the app
 *   opened spans of its own in between): its `url.full` and `url.query`, and those of any span on
 *   the way up to it, are written again with those values masked. A tracer exports a span's
 *   attributes when it ends, after the handler.
 * - The logger took the URL before any handler ran and cannot be given another: its line for this
 *   request is turned off by the effect returned (`HttpMiddleware.withLoggerDisabled`, a flag the
 *   logger reads in this fiber once the app answered). The request still shows up in the trace.
 *
 * The span is rewritten when called, from the fiber that serves the request (inside
 * `Effect.withFiberRuntime`); the returned effect must run in that fiber.
 *
 * @internal
 */
export const keepOutOfTraceAndLog = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  names: ReadonlySet<string>
): Effect.Effect<void> => {
  let span = fiber.currentContext.unsafeMap.get(Tracer.ParentSpan.key) as Tracer.AnySpan | undefined
  while (span !== undefined && span._tag === "Span") {
    const full = span.attributes.get("url.full")
    if (typeof full === "string") span.attribute("url.full", maskQuery(full, names))
    const query = span.attributes.get("url.query")
    if (typeof query === "string") span.attribute("url.query", maskQuery(`?${query}`, names).slice(1))
    if (span.kind === "server") break
    span = Option.getOrUndefined(span.parent)
  }
  return loggerOff
}

const loggerOff = HttpMiddleware.withLoggerDisabled(Effect.void)

/**
 * Whether `url`'s query carries one of the parameters named in `names` (with a value to mask).
 *
 * @internal
 */
export const carries = (url: string, names: ReadonlySet<string>): boolean => maskQuery(url, names) !== url
