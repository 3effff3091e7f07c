import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
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
