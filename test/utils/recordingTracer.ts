import { Cause, Exit, Layer, Option, Tracer } from "effect"

/** A finished span as the recording tracer saw it. */
export interface RecordedSpan {
  readonly name: string
  readonly spanId: string
  readonly parentName: string | undefined
  readonly attributes: ReadonlyMap<string, unknown>
  readonly exit: Exit.Exit<unknown, unknown> | undefined
}

/** A tracer that keeps every span in memory, for tests that assert on spans. */
export const make = () => {
  const spans: Array<RecordedSpan> = []
  let next = 0
  const tracer = Tracer.make({
    span(name, parent, context, links, startTime, kind) {
      const attributes = new Map<string, unknown>()
      const record: { -readonly [K in keyof RecordedSpan]: RecordedSpan[K] } = {
        name,
        spanId: `span-${next++}`,
        parentName: Option.match(parent, { onNone: () => undefined, onSome: (p) => p._tag === "Span" ? p.name : undefined }),
        attributes,
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
          record.exit = exit
          spans.push(record)
        },
        attribute(key, value) {
          attributes.set(key, value)
        },
        event() {},
        addLinks() {}
      }
      return span
    },
    context: (f) => f()
  })
  return { spans, layer: Layer.setTracer(tracer) }
}

/** Everything a span holds, as text, to search for secrets. */
export const render = (span: RecordedSpan): string =>
  [
    span.name,
    JSON.stringify(Object.fromEntries(span.attributes)),
    span.exit === undefined ? "" : Exit.isFailure(span.exit) ? Cause.pretty(span.exit.cause) : String(span.exit)
  ].join("\n")


