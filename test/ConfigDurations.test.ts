/**
 * A duration in a module's options that is no duration (a config file's `"5 secondz"`, which
 * `Duration.decode` throws on) or one out of range is an `AuthConfigError` when the service or
 * layer is built, never a defect.
 */
import { FetchHttpClient } from "@effect/platform"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option, Redacted } from "effect"
import * as JwtBackend from "../src/backends/JwtBackend.js"
import * as DjangoSessionStore from "../src/DjangoSessionStore.js"
import { User } from "../src/index.js"
import * as Lockout from "../src/Lockout.js"
import * as SqlLockoutStore from "../src/SqlLockoutStore.js"
import * as SqlSessionStore from "../src/SqlSessionStore.js"
import * as SqlUserStore from "../src/SqlUserStore.js"

const memoryDb = SqliteClient.layer({ filename: ":memory:" })

// The typed failure of `effect`, or a test failure naming what it was instead (a defect, a success).
const configErrorOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
    if (Option.isNone(failure)) throw new Error(`expected an AuthConfigError, got ${Exit.isSuccess(exit) ? "a success" : Cause.pretty(exit.cause)}`)
    expect(failure.value).toMatchObject({ _tag: "AuthConfigError" })
    return (failure.value as { readonly message: string }).message
  })

const built = <A, E>(layer: Layer.Layer<A, E>) => Effect.scoped(Layer.build(layer))

describe("durations in options", () => {
  it.effect("JwtBackend: clockSkew, maxTokenAge and the key set's cooldown; a negative skew too", () =>
    Effect.gen(function*() {
      const base = {
        algorithms: ["HS256"] as const,
        issuer: "me",
        audience: "api",
        claims: User.BaseUserSchema,
        keys: { secret: Redacted.make("0123456789abcdef0123456789abcdef") }
      }
      const make = (options: object) => JwtBackend.make({ ...base, ...options } as never).pipe(Effect.provide(FetchHttpClient.layer))
      expect(yield* configErrorOf(make({ clockSkew: "30 secondz" }))).toContain("clockSkew")
      expect(yield* configErrorOf(make({ clockSkew: "-5 seconds" }))).toContain("clockSkew")
      expect(yield* configErrorOf(make({ clockSkew: -5000 }))).toContain("clockSkew")
      expect(yield* configErrorOf(make({ maxTokenAge: "one hour" }))).toContain("maxTokenAge")
      expect(yield* configErrorOf(make({
        algorithms: ["RS256"],
        keys: { jwksUrl: "https://issuer.test/jwks", cooldown: "soon" }
      }))).toContain("cooldown")
      // what is a duration still is
      yield* make({ clockSkew: "30 seconds", maxTokenAge: 3_600_000 })
    }))

  it.effect("the SQL stores' timeouts, SqlUserStore's busyTimeout and DjangoSessionStore's cookieAge", () =>
    Effect.gen(function*() {
      const secret = Redacted.make("a-django-secret-key")
      expect(yield* configErrorOf(built(SqlSessionStore.layer({ timeout: "5 secondz" } as never).pipe(Layer.provide(memoryDb)))))
        .toContain("timeout")
      expect(yield* configErrorOf(built(SqlUserStore.layer({ busyTimeout: "1 minutez" } as never).pipe(Layer.provide(memoryDb)))))
        .toContain("busyTimeout")
      expect(yield* configErrorOf(built(SqlUserStore.layer({ timeout: 0 }).pipe(Layer.provide(memoryDb))))).toContain("timeout")
      expect(yield* configErrorOf(built(DjangoSessionStore.layer({ secret, cookieAge: "2 weekz" } as never).pipe(Layer.provide(memoryDb)))))
        .toContain("cookieAge")
      expect(yield* configErrorOf(built(DjangoSessionStore.layerCache({ secret, cookieAge: "2 weekz", client: {} } as never))))
        .toContain("cookieAge")
      // forever would date every session Django made at the epoch: each deleted when first read
      expect(yield* configErrorOf(built(DjangoSessionStore.layer({ secret, cookieAge: "Infinity" } as never).pipe(Layer.provide(memoryDb)))))
        .toContain("cookieAge")
      yield* built(SqlSessionStore.layer({ timeout: "5 seconds" }).pipe(Layer.provide(memoryDb)))
    }))

  it.effect("Lockout: coolOff, maxCoolOff, forgetAfter and busyTimeout", () =>
    Effect.gen(function*() {
      const store = yield* SqlLockoutStore.make().pipe(Effect.provide(memoryDb))
      for (const name of ["coolOff", "maxCoolOff", "forgetAfter", "busyTimeout"]) {
        expect(yield* configErrorOf(Lockout.make(store, { [name]: "15 minutez" }))).toContain(name)
      }
    }))
})
