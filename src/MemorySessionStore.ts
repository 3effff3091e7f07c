/**
 * A `SessionStore` in memory: for one process, quick starts and tests. It passes the same suite as
 * the SQL and Redis stores and forgets every session when its layer is released (or the process
 * restarts). Expired records are swept every 256 writes, so a busy server does not grow without
 * bound.
 *
 * @example
 * ```ts
 * import { Layer, Redacted } from "effect"
 * import { MemorySessionStore, Session } from "effect-auth"
 *
 * const SessionLive = Session.layer({ secret: Redacted.make("a long random app secret, 32+ chars") }).pipe(
 *   Layer.provide(MemorySessionStore.layer)
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as SessionStore from "./SessionStore.js"

const sweepEvery = 256

/**
 * Builds an empty memory store. Each operation runs synchronously, so each one is atomic.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemorySessionStore } from "effect-auth"
 *
 * const program = Effect.flatMap(MemorySessionStore.make, (store) => store.deleteExpired(Date.now()))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<SessionStore.Service> = Effect.sync(() => {
  const records = new Map<string, SessionStore.SessionRecord>()
  let writes = 0
  const sweep = (now: number): number => {
    let removed = 0
    for (const [key, record] of records) {
      if (record.expiresAt <= now) {
        records.delete(key)
        removed++
      }
    }
    return removed
  }
  const live = (key: string, now: number) => {
    const record = records.get(key)
    return record !== undefined && record.expiresAt > now ? record : undefined
  }
  // Records are copied in and out, so a caller mutating its object never changes the store.
  const write = (key: string, record: SessionStore.SessionRecord, now: number) => {
    if (++writes % sweepEvery === 0) sweep(now)
    if (record.expiresAt <= now) records.delete(key)
    else records.set(key, { ...record })
  }
  return SessionStore.make({
    get: (key, now) => Effect.sync(() => Option.map(Option.fromNullable(live(key, now)), (r) => ({ ...r }))),
    set: (key, record, now) => Effect.sync(() => write(key, record, now)),
    replace: (key, record, now) =>
      Effect.sync(() => {
        if (live(key, now) === undefined) return false
        write(key, record, now)
        return true
      }),
    delete: (key) => Effect.sync(() => records.delete(key)),
    deleteExpired: (now) => Effect.sync(() => sweep(now))
  })
})

/**
 * An empty memory store as a layer.
 *
 * @example
 * ```ts
 * import { MemorySessionStore } from "effect-auth"
 *
 * const StoreLive = MemorySessionStore.layer
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<SessionStore.SessionStore> = Layer.effect(SessionStore.SessionStore, make)
