// The fold's tracing as an app sees it through OpenTelemetry: `@effect/opentelemetry`'s NodeSdk with
// the SDK's in-memory exporter stands for an exporting tracer (Jaeger, Honeycomb, an OTLP collector).
// Under it, the default `tracing: "auto"` must record what the built-in tracer alone never pays for.
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { describe, expect, it } from "@effect/vitest"
import * as OtelApi from "@opentelemetry/api"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Exit, Layer, Option } from "effect"
import { AuthService, TestAuth, TestBackend } from "../src/index.js"
import { withValueFreeSpan } from "../src/internal/tracing.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SqlSessionStore from "../src/SqlSessionStore.js"
import { record } from "./utils/sessionStoreSuite.js"

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

// Inside the library's value-free spans the spans made are OpenTelemetry's own, seen through an
// object that only ends them without a success value: exported as before, with their parents, and
// the active OpenTelemetry span inside them is the real one (the exporter checks `instanceof
// OtelSpan` on the current span to make it active).
describe("spans inside the library's value-free spans, under OpenTelemetry", () => {
  const Otel = (exporter: InMemorySpanExporter) =>
    NodeSdk.layer(() => ({ resource: { serviceName: "effect-auth-test" }, spanProcessor: new SimpleSpanProcessor(exporter) }))
  const idOf = (span: ReadableSpan) => span.spanContext().spanId
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId

  it.effect("a store's sql.execute spans are exported under the store's span, with their attributes", () =>
    Effect.gen(function*() {
      const exporter = new InMemorySpanExporter()
      // (read before the SDK's layer is released: its shutdown empties the exporter)
      const spans = yield* Effect.gen(function*() {
        const store = yield* SessionStore.SessionStore
        yield* store.set("k", record(), record().createdAt)
        expect(Option.isSome(yield* store.get("k", record().createdAt))).toBe(true)
        return exporter.getFinishedSpans()
      }).pipe(
        Effect.provide(SqlSessionStore.layer().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))),
        Effect.provide(Otel(exporter))
      )
      const get = spans.find((span) => span.name === "SessionStore.get")!
      const statements = spans.filter((span) => span.name === "sql.execute" && parentOf(span) === idOf(get))
      expect(statements.length).toBeGreaterThan(0)
      for (const span of statements) {
        expect(span.spanContext().traceId).toBe(get.spanContext().traceId)
        expect(span.attributes["db.query.text"]).toMatch(/SELECT/)
        expect(span.status.code).toBe(OtelApi.SpanStatusCode.OK)
      }
    }))

  // The SDK's layer registers no context manager (an app's NodeSDK registers AsyncLocalStorage's);
  // the fiber's tracer makes each step run in its span's context, so a synchronous one will do.
  const synchronousContexts = (): OtelApi.ContextManager => {
    let current = OtelApi.ROOT_CONTEXT
    const manager: OtelApi.ContextManager = {
      active: () => current,
      with: (context, fn, thisArg, ...args) => {
        const before = current
        current = context
        try {
          return fn.call(thisArg, ...args)
        } finally {
          current = before
        }
      },
      bind: (_context, target) => target,
      enable: () => manager,
      disable: () => manager
    }
    return manager
  }

  it.effect("nested spans keep their parents, and the active OpenTelemetry span is the real one", () =>
    Effect.gen(function*() {
      yield* Effect.acquireRelease(
        Effect.sync(() => OtelApi.context.setGlobalContextManager(synchronousContexts())),
        () => Effect.sync(() => OtelApi.context.disable())
      )
      const exporter = new InMemorySpanExporter()
      const [active, spans] = yield* Effect.sync(() => OtelApi.trace.getActiveSpan()).pipe(
        Effect.withSpan("grandchild"),
        Effect.withSpan("child"),
        withValueFreeSpan("outer"),
        Effect.map((active) => [active, exporter.getFinishedSpans()] as const),
        Effect.provide(Otel(exporter))
      )
      const byName = new Map(spans.map((span) => [span.name, span]))
      const [outer, child, grandchild] = ["outer", "child", "grandchild"].map((name) => byName.get(name)!)
      expect(parentOf(child!)).toBe(idOf(outer!))
      expect(parentOf(grandchild!)).toBe(idOf(child!))
      // the SDK's own span (a context built from ids alone would give a non-recording one)
      expect(active).toBe(grandchild)
      expect(grandchild!.status.code).toBe(OtelApi.SpanStatusCode.OK)
    }).pipe(Effect.scoped))

  it.effect("a failure inside still ends its span as an error", () =>
    Effect.gen(function*() {
      const exporter = new InMemorySpanExporter()
      const spans = yield* Effect.fail(new Error("boom")).pipe(
        Effect.withSpan("child"),
        withValueFreeSpan("outer"),
        Effect.exit,
        Effect.map(() => exporter.getFinishedSpans()),
        Effect.provide(Otel(exporter))
      )
      const child = spans.find((span) => span.name === "child")!
      expect(child.status).toEqual({ code: OtelApi.SpanStatusCode.ERROR, message: "boom" })
    }))
})
