/**
 * What keeping a secret `Redacted` costs by itself: the one wrapping a call must make when the
 * credentials arrive as a plain string (see bench/fold.ts, whose default case pays it and whose
 * "fold alone" case does not). Effect's `Redacted.make` registers each value in a `WeakMap`; the
 * cases split that from the allocation, and the last one shows what the entry costs is its
 * lifetime: wiped at once (`Redacted.unsafeWipe`), it leaves the garbage collector nothing to do.
 * One process per case, rounds rotated (`bench/harness.ts`).
 *
 *   npx tsx bench/redacted.ts        # ROUNDS=7 SAMPLES=10 SAMPLE_MS=100 WARMUP_MS=1000
 */
import { Redacted } from "effect"
import { bench, type Case, printRows } from "./harness.js"

// The prototype of a `Redacted`, to allocate the same object without registering it.
const redactedPrototype = Object.getPrototypeOf(Redacted.make("")) as object
const registry = new WeakMap<object, string>()
let sink = 0
// A fresh string per call would measure string building; the secret is the same, as in the fold.
const secret = "tok-1"

// Each value is kept in a ring for a while, as a call keeps its credentials, so that no case's
// allocation can be optimized away.
const ring: Array<object | undefined> = new Array(1024).fill(undefined)
const loop = (make: () => object): Case => async (n) => {
  for (let i = 0; i < n; i++) ring[i & 1023] = make()
  sink += ring.length
}

const unregistered = "an object on Redacted's prototype (no registry)"
const cases: Record<string, Case> = {
  [unregistered]: loop(() => Object.create(redactedPrototype)),
  "the same object, registered in a WeakMap of our own": loop(() => {
    const value = Object.create(redactedPrototype)
    registry.set(value, secret)
    return value
  }),
  "Redacted.make": loop(() => Redacted.make(secret)),
  // What the fold would pay if it wiped the secret it wrapped when the call ends. It does not: a
  // backend may keep the credentials it was handed (docs/performance.md, "The fold").
  "Redacted.make, then Redacted.unsafeWipe": loop(() => {
    const value = Redacted.make(secret)
    Redacted.unsafeWipe(value)
    return value
  })
}

const rows = await bench(new URL(import.meta.url).pathname, cases, [unregistered])
if (rows !== undefined) {
  printRows("One secret wrapped per call, one process per case", rows, [unregistered])
  for (const row of rows) console.log(`${row.name}: ${(1e6 / row.median).toFixed(3)} µs per call`)
}
if (sink === -1) console.log("")
