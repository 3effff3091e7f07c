import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Tracer from "effect/Tracer"

// Effect's built-in tracer: its spans are kept by nobody unless the app reads them itself.
const builtInTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/**
 * Whether tracing is enabled for this fiber (not under `Effect.withTracerEnabled(false)`).
 *
 * @internal
 */
export const tracerEnabled = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  fiber.getFiberRef(FiberRef.currentTracerEnabled)

/**
 * Whether a tracer that records spans is installed for this fiber: any tracer other than Effect's
 * built-in one (an exporter's, or one set with `Layer.setTracer` / `Effect.withTracer`), tracing
 * enabled. The fiber keeps its tracer in a field; the tracer-enabled flag is a `FiberRef` lookup,
 * asked only when the tracer records.
 *
 * @internal
 */
export const isRecording = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  fiber.currentTracer !== builtInTracer && tracerEnabled(fiber)

// The value handed through a span out of the tracer's sight: a closure, which no exporter or
// `Inspectable` rendering opens.
const hide = <A>(value: A) => () => value
const reveal = <A>(hidden: () => A): A => hidden()

/**
 * `Effect.withSpan`, but a success ends the span with no value a tracer could read. A tracer is
 * handed the effect's exit when the span ends (`Span.end(time, exit)`), and what these effects
 * return is a secret or made of one: a derived key, an encoded hash, a session record with its
 * CSRF token, a TOTP seed. Exporters such as OpenTelemetry's drop success values, but a custom
 * tracer, a test's recording one or a dev tool may print them. Failures end the span as they are
 * (the library's typed errors carry no secret).
 *
 * @internal
 */
export const withValueFreeSpan = (name: string, options?: Tracer.SpanOptions) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.map(Effect.withSpan(Effect.map(self, hide), name, options), reveal)
