// The fold's tracing as an app sees it through OpenTelemetry: `@effect/opentelemetry`'s NodeSdk with
// the SDK's in-memory exporter stands for an exporting tracer (Jaeger, Honeycomb, an OTLP collector).
// Under it, the default `tracing: "auto"` must record what the built-in tracer alone never pays for.
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { describe, expect, it } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Exit, Layer } from "effect"
import { AuthService, TestAuth, TestBackend } from "../src/index.js"

const password = "c0rrect-h0rse-battery-staple"

const chain = [
  TestBackend.noMatch("a", "unknown-user"),
  TestBackend.unavailable("b", "down", { onTransportError: "fallthrough" }),
  TestBackend.passwords("c", [{ user: TestBackend.user("alice"), password }]),
  TestBackend.succeed("d", TestBackend.user("bob"))
]

// A fresh SDK and exporter per test; the SDK layer's scope flushes and shuts the provider down.
const withOtel = <A, E>(
  backends: typeof chain,
  run: (exporter: InMemorySpanExporter) => Effect.Effect<A, E, AuthService.AuthService>
) => {
  const exporter = new InMemorySpanExporter()
  const Otel = NodeSdk.layer(() => ({
    resource: { serviceName: "effect-auth-test" },
    spanProcessor: new SimpleSpanProcessor(exporter)
  }))
  return run(exporter).pipe(Effect.provide(Layer.merge(TestAuth.layer(backends), Otel)))
}

const attemptsOf = (span: ReadableSpan) =>
  span.events.map((event) => [event.name, event.attributes?.["auth.backend"], event.attributes?.["auth.outcome"], event.attributes?.["auth.reason"]])

describe("tracing under OpenTelemetry", () => {
  it.effect("the exporter receives one authenticate span per call, with every attempt and the outcome", () =>
    withOtel(chain, (exporter) =>
      Effect.gen(function*() {
        yield* AuthService.authenticate({ username: "alice", password })
        const spans = exporter.getFinishedSpans().filter((span) => span.name.startsWith("effect-auth"))
        expect(spans.map((span) => span.name)).toEqual(["effect-auth.authenticate"])
        const call = spans[0]!
        expect(attemptsOf(call)).toEqual([
          ["effect-auth.attempt", "a", "no-match", "unknown-user"],
          ["effect-auth.attempt", "b", "transport-error", undefined],
          ["effect-auth.attempt", "c", "success", undefined]
        ])
        expect(call.attributes["auth.outcome"]).toBe("success")
        expect(call.attributes["auth.backend"]).toBe("c")
        expect(call.attributes["auth.attempts"]).toBe(3)
      })
    ))

  it.effect("a failed call's span carries the failure, its attempts, and no secret", () =>
    withOtel(chain.slice(0, 3), (exporter) =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(AuthService.authenticate({ username: "alice", password: `${password}!` }))
        expect(Exit.isFailure(exit)).toBe(true)
        const call = exporter.getFinishedSpans().find((span) => span.name === "effect-auth.authenticate")!
        expect(call.attributes["auth.outcome"]).toBe("BackendUnavailable")
        // (OpenTelemetry adds an "exception" event of its own for a failed span)
        const attempts = attemptsOf(call).filter(([name]) => name === "effect-auth.attempt")
        expect(attempts.map(([, backend, outcome]) => `${backend}:${outcome}`)).toEqual([
          "a:no-match",
          "b:transport-error",
          "c:no-match"
        ])
        const exported = JSON.stringify(exporter.getFinishedSpans().map((span) => ({
          name: span.name,
          attributes: span.attributes,
          events: span.events,
          status: span.status
        })))
        expect(exported).not.toContain(password)
        // The check can fail: the exported text does contain what the spans carry.
        expect(exported).toContain("unknown-user")
      })
    ))
})
