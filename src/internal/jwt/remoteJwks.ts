import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { createLocalJWKSet, type JSONWebKeySet } from "jose"
import * as AuthError from "../../AuthError.js"
import { describeClientError, describeRequest } from "../http/clientErrors.js"
import { failingPaths } from "../parseErrors.js"
import * as BoundedBody from "../http/boundedBody.js"
import * as SharedRun from "../sharedRun.js"

/** @internal */
export type KeySet = ReturnType<typeof createLocalJWKSet>

/** @internal */
export interface RemoteJwks {
  /** The key set to verify a token whose header names `kid` (or none). */
  readonly keySet: (kid: string | undefined) => Effect.Effect<KeySet, AuthError.TransportError>
}

/** @internal */
export interface RemoteJwksOptions {
  readonly backend: string
  readonly url: string
  readonly client: HttpClient.HttpClient
  readonly cacheMaxAge: Duration.Duration
  readonly cooldown: Duration.Duration
  readonly timeout: Duration.Duration
}

const JwksBody = Schema.Struct({
  keys: Schema.Array(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})

interface Loaded {
  readonly set: KeySet
  readonly kids: ReadonlySet<string>
  readonly fetchedAt: number
}

/**
 * A JWKS fetched through the app's `HttpClient` (not jose's `createRemoteJWKSet`, which uses the
 * global `fetch`): failures become `TransportError`s like every other peer's, tests and apps
 * choose the client, and the time source is Effect's `Clock`.
 *
 * The set is fetched on first use, again when older than `cacheMaxAge`, and when a token names a
 * `kid` the set lacks (key rotation). No two fetches start less than `cooldown` apart: a flood of
 * tokens with made-up `kid`s costs at most one request per cooldown, and a JWKS endpoint that is
 * down is asked once per cooldown while callers get the last error. Concurrent callers share one
 * request. A stale set is not used when the refresh fails (like jose): a key the issuer has
 * withdrawn must stop verifying.
 *
 * @internal
 */
export const make = (options: RemoteJwksOptions): Effect.Effect<RemoteJwks> =>
  Effect.sync(() => {
    const { backend, client, url } = options
    const cacheMaxAge = Duration.toMillis(options.cacheMaxAge)
    const cooldown = Duration.toMillis(options.cooldown)
    const timeoutText = Duration.format(options.timeout)
    const request = HttpClientRequest.get(url).pipe(HttpClientRequest.acceptJson)
    const where = describeRequest(request)
    const transport = (cause: string) => new AuthError.TransportError({ backend, cause: `JWKS ${cause}` })
    const decodeBody = Schema.decodeUnknown(JwksBody)

    let loaded: Loaded | undefined
    let lastAttemptAt = Number.NEGATIVE_INFINITY
    let lastError: AuthError.TransportError | undefined

    const fetchSet: Effect.Effect<Loaded, AuthError.TransportError> = client.execute(request).pipe(
      Effect.mapError((error) => transport(describeClientError(error))),
      Effect.flatMap((response) =>
        response.status >= 200 && response.status < 300
          ? Effect.mapError(BoundedBody.text(response, BoundedBody.defaultMaxBytes, where), transport)
          : Effect.mapError(BoundedBody.unexpectedStatus(response, where), transport)
      ),
      Effect.flatMap((text) =>
        Effect.try({
          try: (): unknown => JSON.parse(text),
          catch: () => transport(`${where}: body is not JSON`)
        })
      ),
      Effect.flatMap((json) =>
        Effect.mapError(decodeBody(json), (error) => transport(`${where}: not a key set at ${failingPaths(error)}`))
      ),
      Effect.flatMap((jwks) =>
        Effect.try({
          try: () => createLocalJWKSet(jwks as unknown as JSONWebKeySet),
          catch: () => transport(`${where}: not a key set`)
        }).pipe(
          Effect.zip(Clock.currentTimeMillis),
          Effect.map(([set, fetchedAt]): Loaded => ({
            set,
            fetchedAt,
            kids: new Set(jwks.keys.flatMap((key) => (Predicate.isString(key.kid) ? [key.kid] : [])))
          }))
        )
      ),
      Effect.timeoutFail({ duration: options.timeout, onTimeout: () => transport(`${where}: timed out after ${timeoutText}`) })
    )

    const record = (exit: Exit.Exit<Loaded, AuthError.TransportError>): void => {
      if (Exit.isSuccess(exit)) {
        loaded = exit.value
        lastError = undefined
      } else {
        lastError = Option.getOrElse(Cause.failureOption(exit.cause), () => transport(`${where}: fetch failed`))
      }
    }

    // (bounded by the timeout; a caller that gives up does not cut it short for the others)
    const fetching = SharedRun.make(fetchSet, record)
    const refresh = (now: number): Effect.Effect<Loaded, AuthError.TransportError> =>
      Effect.suspend(() => {
        lastAttemptAt = now
        return fetching.run
      })

    const keySet = (kid: string | undefined): Effect.Effect<KeySet, AuthError.TransportError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const fresh = loaded !== undefined && now - loaded.fetchedAt < cacheMaxAge ? loaded : undefined
        if (fresh !== undefined && (kid === undefined || fresh.kids.has(kid))) return Effect.succeed(fresh.set)
        if (fetching.running()) return Effect.map(fetching.run, (next) => next.set)
        if (now - lastAttemptAt < cooldown) {
          // Within the floor: a failed attempt is repeated to the caller without asking the
          // endpoint again; otherwise the fresh set answers (an unknown kid then fails to verify).
          if (lastError !== undefined) return Effect.fail(lastError)
          if (fresh !== undefined) return Effect.succeed(fresh.set)
        }
        return Effect.map(refresh(now), (next) => next.set)
      })

    return { keySet }
  })
