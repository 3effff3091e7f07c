import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as AuthError from "../src/AuthError.js"
import * as AuthEvents from "../src/AuthEvents.js"

const failed = (i: number) =>
  new AuthEvents.LoginFailed({
    credentials: { username: `user-${i}` },
    request: undefined,
    error: new AuthError.AuthenticationFailed({ attempts: [] })
  })

const usernameOf = (event: AuthEvents.AuthEvent) =>
  event._tag === "LoginFailed" ? event.credentials.username : undefined

describe("AuthEvents", () => {
  // The PubSub was unbounded: a subscriber slower than a flood of failed logins held every event.
  it.scoped("a subscriber that falls behind holds at most `capacity` events, the newest; one that keeps up misses none", () =>
    Effect.gen(function*() {
      const events = yield* AuthEvents.makeWith({ capacity: 8 })
      const behind = yield* events.subscribe
      const keepingUp = yield* events.subscribe
      const seen: Array<unknown> = []
      for (let i = 0; i < 20; i++) {
        yield* events.publish(failed(i))
        seen.push(usernameOf(yield* Queue.take(keepingUp)))
      }
      expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => `user-${i}`))
      expect(yield* Queue.size(behind)).toBe(8)
      const kept = Chunk.toReadonlyArray(yield* Queue.takeAll(behind)).map(usernameOf)
      expect(kept).toEqual(Array.from({ length: 8 }, (_, i) => `user-${i + 12}`))
    }))

  it.scoped("the default keeps 4096 behind; publishing never waits", () =>
    Effect.gen(function*() {
      const events = yield* AuthEvents.make
      const behind = yield* events.subscribe
      for (let i = 0; i < AuthEvents.defaultCapacity + 100; i++) yield* events.publish(failed(i))
      expect(yield* Queue.size(behind)).toBe(AuthEvents.defaultCapacity)
      expect(Option.map(yield* Queue.poll(behind), usernameOf)).toEqual(Option.some("user-100"))
    }))

  it.scoped("a capacity that is no positive integer is an AuthConfigError", () =>
    Effect.gen(function*() {
      for (const capacity of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        const error = yield* Effect.flip(AuthEvents.makeWith({ capacity }))
        expect(error).toBeInstanceOf(AuthError.AuthConfigError)
      }
    }))
})
