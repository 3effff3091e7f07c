/**
 * A field of a value an untyped caller handed over: `undefined` when the value is no object, or
 * when reading the field throws (a getter, a `Proxy`). Public entry points read such values
 * through this, so that hostile input is no input rather than an exception.
 *
 * @internal
 */
export const fieldOf = (value: unknown, name: string): unknown => {
  if (typeof value !== "object" || value === null) return undefined
  try {
    return (value as Record<string, unknown>)[name]
  } catch {
    return undefined
  }
}
