/**
 * Redis for tests: this run's server (REDIS_URL, or one test/setup/services.ts started) and key
 * prefixes under this run's own, and deleting what a test wrote. Suites that need it:
 * `describe.skipIf(Redis.missing)`.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import { inject } from "vitest"
import { type Proxy, urlProxy } from "./tcpProxy.js"

const provided = inject("services").redis

/** No Redis for this run: its suites are skipped (the setup has said so, loudly). */
export const missing: boolean = provided === null

/** This run's Redis; where `missing`, a URL that never connects (the suites using it are skipped). */
export const redisUrl: string = provided?.url ?? "redis://unavailable.invalid:6379"

/**
 * `<run prefix><tag>:<8 hex digits>:`: a fresh key prefix inside this run's own, so tests, parallel
 * test files and other runs on the same server never share keys.
 */
export const uniquePrefix = (tag: string): string =>
  `${provided?.keyPrefix ?? "effect-auth-test:"}${tag}:${randomBytes(4).toString("hex")}:`

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
