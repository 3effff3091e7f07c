/** Redis for tests: the server at REDIS_URL, and deleting what a test wrote. */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import { type Proxy, urlProxy } from "./tcpProxy.js"

export const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

/** A TCP proxy in front of Redis that can be cut, to take it away mid-life. */
export const proxy: Effect.Effect<Proxy & { readonly url: string }, never, Scope.Scope> = urlProxy(redisUrl, 6379)

/** A plain client, closed with the scope, to look at what a store wrote. */
export const client: Effect.Effect<Redis, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => new Redis(redisUrl)),
  (c) => Effect.promise(() => c.quit())
)

/** Deletes every key under `prefix`, on a client of its own; failures are ignored. */
export const deleteKeys = (prefix: string): Effect.Effect<void> =>
  Effect.flatMap(client, (c) =>
    Effect.promise(async () => {
      const keys = await c.keys(`${prefix}*`)
      if (keys.length > 0) await c.del(...keys)
    })).pipe(Effect.scoped, Effect.ignore)
