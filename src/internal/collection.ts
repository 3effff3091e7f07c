import * as Predicate from "effect/Predicate"

/**
 * The items of a collection as an untyped caller hands it over, read once into an array: any
 * iterable but a string, which is a collection of its characters and never meant as one (the
 * groups `"staff"` are not `s`, `t`, `a`, `f`); `undefined` for anything else. Reading may throw
 * (an iterable that throws, a Proxy whose traps throw as soon as it is asked whether it is
 * iterable): the caller's guard decides what that means.
 *
 * @internal
 */
export const collectionOf = (raw: unknown): Array<unknown> | undefined => collectionWithin(raw, Infinity)

/**
 * {@link collectionOf}, reading at most `max` items: a collection with more (an endless
 * generator among them) is `undefined` once item `max + 1` is read, the rest never read.
 *
 * @internal
 */
export const collectionWithin = (raw: unknown, max: number): Array<unknown> | undefined => {
  if (typeof raw === "string" || !Predicate.isIterable(raw)) return undefined
  const items: Array<unknown> = []
  for (const item of raw) {
    if (items.length === max) return undefined
    items.push(item)
  }
  return items
}
