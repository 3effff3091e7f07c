import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
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

// The tracers that end their spans without a success value, by the tracer they record through:
// one per recording tracer, made on first use, so a request pays for no new tracer.
const quietTracers = new WeakMap<Tracer.Tracer, Tracer.Tracer>()
const quietOnes = new WeakSet<Tracer.Tracer>()

/**
 * `tracer`, but every span it makes ends a success with `Exit.void`. The span handed on is the
 * tracer's own object, with `end` shadowed on it: a tracer's spans may keep their state in
 * private fields (`#status`, which no other object can read) or be told apart by identity (a
 * tracer that builds its tree from the parent objects it is given), so a stand-in object broke
 * both. A failure ends the span as it is. A span that takes no own property (frozen) is seen
 * through `Object.create` instead, the one way left to hold its value back.
 */
const quiet = (tracer: Tracer.Tracer): Tracer.Tracer => {
  if (quietOnes.has(tracer)) return tracer
  let quieted = quietTracers.get(tracer)
  if (quieted === undefined) {
    quieted = Tracer.make({
      span: (name, parent, context, links, startTime, kind, options) =>
        withoutSuccessValue(tracer.span(name, parent, context, links, startTime, kind, options)),
      context: (execution, fiber) => tracer.context(execution, fiber)
    })
    quietTracers.set(tracer, quieted)
    quietOnes.add(quieted)
  }
  return quieted
}

// The `end`s this module put on spans. A tracer may hand out one span object again (a no-op
// tracer's single span, a pool): that object is quiet already, and wrapping its `end` once more
// per span would stack a wrapper per span for the life of the process, each later `end` calling
// them all, until the stack overflows.
const quietEnds = new WeakSet<object>()

const withoutSuccessValue = (span: Tracer.Span): Tracer.Span => {
  const end = span.end
  if (quietEnds.has(end)) return span
  const value = (endTime: bigint, exit: Exit.Exit<unknown, unknown>) =>
    end.call(span, endTime, Exit.isSuccess(exit) ? Exit.void : exit)
  quietEnds.add(value)
  const quietEnd = { value, configurable: true, writable: true }
  if (Object.isExtensible(span)) {
    try {
      Object.defineProperty(span, "end", quietEnd)
      return span
    } catch {
      // an own `end` that cannot be redefined: seen through Object.create below
    }
  }
  return Object.create(span, { end: quietEnd })
}

/**
 * Runs `self` so that every span made inside it (by the library or by a driver: `@effect/sql`'s
 * `sql.execute` ends with the rows a statement read, a password hash, a TOTP seed, a stored
 * session) ends a success with no value a tracer could read. Failures end their spans as they
 * are. Only where a tracer records ({@link isRecording}): under Effect's built-in tracer or with
 * tracing disabled, `self` runs as it is, for the cost of one look at the fiber (this is on every
 * session request's path).
 *
 * @internal
 */
export const withValueFreeChildren = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => isRecording(fiber) ? Effect.withTracer(self, quiet(fiber.currentTracer)) : self)

/**
 * `Effect.withSpan`, but a success ends the span with no value a tracer could read, nor do the
 * spans made inside it ({@link withValueFreeChildren}). A tracer is handed the effect's exit when
 * the span ends (`Span.end(time, exit)`), and what these effects return is a secret or made of
 * one: a derived key, an encoded hash, a session record with its CSRF token, a TOTP seed; a
 * driver's spans inside end with the rows it read. Exporters such as OpenTelemetry's drop success
 * values, but a custom tracer, a test's recording one or a dev tool may print them. Failures end
 * the spans as they are (the library's typed errors carry no secret).
 *
 * @internal
 */
export const withValueFreeSpan = (name: string, options?: Tracer.SpanOptions) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.map(Effect.withSpan(withValueFreeChildren(Effect.map(self, hide)), name, options), reveal)

/**
 * `Effect.useSpan`, but a success ends the span with no value a tracer could read: for the fold's
 * spans, whose value is the app's user object (an app's own user type may keep its password hash
 * as a plain string). Unlike {@link withValueFreeSpan}, the spans made inside are left as they are
 * (a backend's own spans are its to make), and the span is the caller's to annotate.
 *
 * @internal
 */
export const useValueFreeSpan = <A, E, R>(
  name: string,
  options: Tracer.SpanOptions,
  evaluate: (span: Tracer.Span) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => Effect.map(Effect.useSpan(name, options, (span) => Effect.map(evaluate(span), hide)), reveal)
