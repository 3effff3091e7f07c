/**
 * A `SessionStore` on Redis through `ioredis`, for many app instances: every instance that uses
 * the same Redis and key prefix sees the same logins and logouts at once.
 *
 * Each session is one string key, `<keyPrefix><key>`, holding the record as JSON, with a TTL
 * (`PX`) that ends when the record expires, so Redis removes expired sessions by itself. Refreshing
 * a session (`replace`) runs as one Lua script that writes only while a live record is there, so
 * an instance can never bring back a session another instance just logged out.
 *
 * The layer either connects from a URL (the connection is opened when the layer is built and
 * closed when it is released) or uses a client you own. Its own connection fails fast while Redis
 * is down (no offline queue, a command timeout), so a dead Redis is a `SessionStoreError` (HTTP
 * 503) within `commandTimeout`, never a hang or a defect.
 *
 * @example
 * ```ts
 * import { Layer, Redacted } from "effect"
 * import { Session } from "effect-auth"
 * import * as RedisSessionStore from "effect-auth/RedisSessionStore"
 *
 * const StoreLive = RedisSessionStore.layer({ url: Redacted.make("redis://:secret@cache:6379/0") })
 * const SessionLive = Session.layer({ secret: Redacted.make("a long random app secret, 32+ chars") }).pipe(
 *   Layer.provide(StoreLive)
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as SessionStore from "./SessionStore.js"
import { withValueFreeSpan } from "./internal/tracing.js"
import { nullIfWrongType } from "./internal/redisWrongType.js"

/**
 * Options shared by both ways of building the store.
 *
 * @example
 * ```ts
 * import type * as RedisSessionStore from "effect-auth/RedisSessionStore"
 *
 * const options: RedisSessionStore.Options = { keyPrefix: "shop:session:" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Prepended to every key. Default: `"effect-auth:session:"`. */
  readonly keyPrefix?: string | undefined
}

/**
 * Connect from a URL.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type * as RedisSessionStore from "effect-auth/RedisSessionStore"
 *
 * const options: RedisSessionStore.UrlOptions = {
 *   url: Redacted.make("redis://:secret@cache:6379/0"),
 *   commandTimeout: "1 second"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface UrlOptions extends Options {
  /** `redis://[:password@]host:port[/db]` or `rediss://...`; pass it `Redacted` when it holds a password. */
  readonly url: string | Redacted.Redacted<string>
  /** Default: 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** How long one command may take before it fails. Default: 2 seconds. */
  readonly commandTimeout?: Duration.DurationInput | undefined
}

/**
 * The four commands the store sends, typed as `ioredis` declares them: an ioredis `Redis` or
 * `Cluster` fits. Declared here, rather than imported from ioredis, so that this module's types
 * check without ioredis installed (a client from `make` needs no ioredis at all).
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis"
 * import type * as RedisSessionStore from "effect-auth/RedisSessionStore"
 *
 * const client: RedisSessionStore.RedisClient = new Redis("redis://127.0.0.1:6379", { lazyConnect: true })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisClient {
  get(key: string): Promise<string | null>
  set(key: string, value: string, mode: "PX", milliseconds: number): Promise<unknown>
  del(key: string): Promise<number>
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
}

/**
 * Use a client you created (and will close). Its options are yours: without `enableOfflineQueue:
 * false` and a `commandTimeout`, commands wait while Redis is down.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis"
 * import type * as RedisSessionStore from "effect-auth/RedisSessionStore"
 *
 * const options: RedisSessionStore.ClientOptions = {
 *   client: new Redis("redis://127.0.0.1:6379", { lazyConnect: true, enableOfflineQueue: false, commandTimeout: 2000 })
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions extends Options {
  readonly client: RedisClient
}

const storeError = (operation: string) => (cause: unknown) =>
  new SessionStore.SessionStoreError({
    operation,
    // ioredis attaches the command and its arguments (keys, records) to its errors: keep only the message.
    cause: new Error(cause instanceof Error ? cause.message : String(cause))
  })

// KEYS[1] key; ARGV[1] record JSON, ARGV[2] TTL in ms (<= 0: delete), ARGV[3] now.
// A key of another type holds no session (as in `get`): it is left alone, where its GET would
// fail the script with WRONGTYPE.
const replaceScript = `
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return 0 end
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, r = pcall(cjson.decode, v)
if not ok or type(r) ~= 'table' or type(r.expiresAt) ~= 'number' or r.expiresAt <= tonumber(ARGV[3]) then return 0 end
if tonumber(ARGV[2]) <= 0 then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 1`

const parse = (text: string | null, now: number): Option.Option<SessionStore.SessionRecord> => {
  if (text === null) return Option.none()
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return Option.none()
  }
  return Option.filter(SessionStore.decodeStored(value), (r) => r.expiresAt > now)
}

/**
 * Builds the store on a connected client.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Redis } from "ioredis"
 * import * as RedisSessionStore from "effect-auth/RedisSessionStore"
 *
 * const store = RedisSessionStore.make(new Redis("redis://127.0.0.1:6379", { lazyConnect: true }), { keyPrefix: "shop:session:" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (client: RedisClient, options: Options = {}): Effect.Effect<SessionStore.Service> =>
  Effect.sync(() => {
    const prefix = options.keyPrefix ?? "effect-auth:session:"
    const call = <A>(operation: string, f: () => Promise<A>) =>
      Effect.tryPromise({ try: f, catch: storeError(operation) }).pipe(
        withValueFreeSpan(`SessionStore.${operation}`, { captureStackTrace: false })
      )
    return SessionStore.make({
      // A key of another type (a hash, a list: not ours) is no session, as a value that does not
      // parse is; its WRONGTYPE error made the cookie a 503 on every request, its logout too.
      get: (key, now) =>
        Effect.map(
          call("get", () => nullIfWrongType(client.get(prefix + key))),
          (text) => parse(text, now)
        ),
      set: (key, record, now) => {
        const ttl = record.expiresAt - now
        return ttl <= 0
          ? Effect.asVoid(call("set", () => client.del(prefix + key)))
          : Effect.asVoid(call("set", () => client.set(prefix + key, JSON.stringify(record), "PX", ttl)))
      },
      replace: (key, record, now) =>
        Effect.map(
          call("replace", () =>
            client.eval(replaceScript, 1, prefix + key, JSON.stringify(record), record.expiresAt - now, now)),
          (n) => n === 1
        ),
      delete: (key) => Effect.map(call("delete", () => client.del(prefix + key)), (n) => n > 0),
      deleteExpired: () => Effect.succeed(0)
    })
  })

const connect = (options: UrlOptions) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const { Redis } = await import("ioredis")
        const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
        const client = new Redis(url, {
          lazyConnect: true,
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          connectTimeout: Duration.toMillis(options.connectTimeout ?? "5 seconds"),
          commandTimeout: Duration.toMillis(options.commandTimeout ?? "2 seconds")
        })
        // Failures reach the caller through the commands; without a listener ioredis prints them.
        client.on("error", () => {})
        try {
          await client.connect()
        } catch (error) {
          client.disconnect()
          throw error
        }
        return client
      },
      catch: storeError("connect")
    }),
    (client) =>
      Effect.promise(() => client.quit().catch(() => undefined)).pipe(
        Effect.timeout("1 second"),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => client.disconnect()))
      )
  )

/**
 * The store as a layer, from a URL (a connection opened and closed with the layer) or from a
 * client you own. A URL whose server cannot be reached fails the layer with `SessionStoreError`.
 *
 * @example
 * ```ts
 * import * as RedisSessionStore from "effect-auth/RedisSessionStore"
 *
 * const StoreLive = RedisSessionStore.layer({ url: "redis://127.0.0.1:6379", keyPrefix: "shop:session:" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: UrlOptions | ClientOptions
): Layer.Layer<SessionStore.SessionStore, SessionStore.SessionStoreError> =>
  Layer.scoped(
    SessionStore.SessionStore,
    Effect.flatMap("client" in options ? Effect.succeed(options.client) : connect(options), (client) =>
      make(client, options))
  )

/**
 * The store from configuration: `REDIS_URL` (redacted) and, optionally, `SESSION_REDIS_KEY_PREFIX`,
 * or any `Config.Wrap<UrlOptions>`.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import * as RedisSessionStore from "effect-auth/RedisSessionStore"
 *
 * const FromEnv = RedisSessionStore.layerConfig()
 * const Custom = RedisSessionStore.layerConfig({ url: Config.redacted("SESSIONS_REDIS"), keyPrefix: Config.succeed("app:") })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<UrlOptions> = Config.all({
    url: Config.redacted("REDIS_URL"),
    keyPrefix: Config.string("SESSION_REDIS_KEY_PREFIX").pipe(Config.option, Config.map(Option.getOrUndefined))
  })
): Layer.Layer<SessionStore.SessionStore, SessionStore.SessionStoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
