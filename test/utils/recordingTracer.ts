import { Cause, Exit, Layer, Option, Tracer } from "effect"

/** A finished span as the recording tracer saw it. */
export interface RecordedSpan {
  readonly name: string
  readonly spanId: string
  readonly parentName: string | undefined
  readonly kind: Tracer.SpanKind
  readonly attributes: ReadonlyMap<string, unknown>
  readonly events: ReadonlyArray<{ readonly name: string; readonly attributes: Record<string, unknown> | undefined }>
  readonly exit: Exit.Exit<unknown, unknown> | undefined
}

/**
 * A tracer that keeps every span in memory, for tests that assert on spans. Spans are recorded when
 * they end; `maxInFlight(name)` is the most spans of that name open at once.
 */
export const make = () => {
  const spans: Array<RecordedSpan> = []
  const open = new Map<string, number>()
  const mostOpen = new Map<string, number>()
  let next = 0
  const tracer = Tracer.make({
    span(name, parent, context, links, startTime, kind) {
      const nowOpen = (open.get(name) ?? 0) + 1
      open.set(name, nowOpen)
      mostOpen.set(name, Math.max(mostOpen.get(name) ?? 0, nowOpen))
      const attributes = new Map<string, unknown>()
      const events: Array<{ name: string; attributes: Record<string, unknown> | undefined }> = []
      const record: { -readonly [K in keyof RecordedSpan]: RecordedSpan[K] } = {
        name,
        spanId: `span-${next++}`,
        parentName: Option.match(parent, { onNone: () => undefined, onSome: (p) => p._tag === "Span" ? p.name : undefined }),
        kind,
        attributes,
        events,
        exit: undefined
      }
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: record.spanId,
        traceId: "trace",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes,
        links: [...links],
        sampled: true,
        kind,
        end(_endTime, exit) {
          open.set(name, (open.get(name) ?? 1) - 1)
          record.exit = exit
          spans.push(record)
        },
        attribute(key, value) {
          attributes.set(key, value)
        },
        event(name, _startTime, attributes) {
          events.push({ name, attributes })
        },
        addLinks() {}
      }
      return span
    },
    context: (f) => f()
  })
  return { spans, tracer, layer: Layer.setTracer(tracer), maxInFlight: (name: string) => mostOpen.get(name) ?? 0 }
}

/** Everything a span holds, as text, to search for secrets. */
export const render = (span: RecordedSpan): string =>
  [
    span.name,
    JSON.stringify(Object.fromEntries(span.attributes)),
    JSON.stringify(span.events),
    span.exit === undefined ? "" : Exit.isFailure(span.exit) ? Cause.pretty(span.exit.cause) : String(span.exit)
  ].join("\n")


