// The laws of an ExternalIdentities store, on memory, SQLite and PostgreSQL alike: a binding per
// (provider, subject), at most one subject per user and provider, binds that never overwrite and
// of which exactly one of concurrent ones wins, and input no engine holds alike refused before
// the store is asked.
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ExternalIdentities from "../src/ExternalIdentities.js"
import * as SqlExternalIdentities from "../src/SqlExternalIdentities.js"
import { hostile } from "./utils/hostile.js"
import * as Postgres from "./utils/postgres.js"

const google = "https://accounts.google.com/"
const gitlab = "https://gitlab.example.com/"

const laws = (name: string, store: () => Layer.Layer<ExternalIdentities.ExternalIdentities, unknown>, skip = false) =>
  describe.skipIf(skip)(`ExternalIdentities on ${name}`, () => {
    const withStore = <A, E>(body: (store: ExternalIdentities.Service) => Effect.Effect<A, E>) =>
      Effect.flatMap(ExternalIdentities.ExternalIdentities, body).pipe(Effect.provide(store()))

    it.live("bind, find, subjectOf, unbind", () =>
      withStore((store) =>
        Effect.gen(function*() {
          expect(yield* store.find(google, "sub-a")).toEqual(Option.none())
          expect(yield* store.subjectOf(google, "1")).toEqual(Option.none())
          expect(yield* store.bind(google, "sub-a", "1")).toBe(true)
          expect(yield* store.find(google, "sub-a")).toEqual(Option.some("1"))
          expect(yield* store.subjectOf(google, "1")).toEqual(Option.some("sub-a"))
          // exact strings: no folding of case or width
          expect(yield* store.find(google, "SUB-A")).toEqual(Option.none())
          expect(yield* store.find(google.slice(0, -1), "sub-a")).toEqual(Option.none())
          expect(yield* store.unbind(google, "1")).toBe(true)
          expect(yield* store.unbind(google, "1")).toBe(false)
          expect(yield* store.find(google, "sub-a")).toEqual(Option.none())
          expect(yield* store.subjectOf(google, "1")).toEqual(Option.none())
          // once unbound, the user may be bound to another subject (an admin's re-binding)
          expect(yield* store.bind(google, "sub-new", "1")).toBe(true)
          expect(yield* store.find(google, "sub-new")).toEqual(Option.some("1"))
        })
      ))

    it.live("bind never overwrites: a bound subject keeps its user, a bound user keeps its subject", () =>
      withStore((store) =>
        Effect.gen(function*() {
          expect(yield* store.bind(google, "sub-a", "1")).toBe(true)
          expect(yield* store.bind(google, "sub-a", "2")).toBe(false)
          expect(yield* store.bind(google, "sub-b", "1")).toBe(false)
          expect(yield* store.bind(google, "sub-a", "1")).toBe(false) // already so: nothing new
          expect(yield* store.find(google, "sub-a")).toEqual(Option.some("1"))
          expect(yield* store.find(google, "sub-b")).toEqual(Option.none())
          expect(yield* store.subjectOf(google, "1")).toEqual(Option.some("sub-a"))
          expect(yield* store.subjectOf(google, "2")).toEqual(Option.none())
        })
      ))

    it.live("providers are namespaces: one subject at two providers, one user with a subject at each", () =>
      withStore((store) =>
        Effect.gen(function*() {
          expect(yield* store.bind(google, "42", "1")).toBe(true)
          expect(yield* store.bind(gitlab, "42", "2")).toBe(true)
          expect(yield* store.bind(gitlab, "7", "1")).toBe(true)
          expect(yield* store.find(google, "42")).toEqual(Option.some("1"))
          expect(yield* store.find(gitlab, "42")).toEqual(Option.some("2"))
          expect(yield* store.subjectOf(gitlab, "1")).toEqual(Option.some("7"))
          expect(yield* store.unbind(gitlab, "1")).toBe(true)
          expect(yield* store.subjectOf(google, "1")).toEqual(Option.some("42"))
        })
      ))

    it.live("concurrent binds of one subject to two users, or of two subjects to one user: exactly one wins", () =>
      withStore((store) =>
        Effect.gen(function*() {
          for (let round = 0; round < 20; round++) {
            const subject = `race-${round}`
            const [a, b] = [`${1000 + 2 * round}`, `${1001 + 2 * round}`]
            const bySubject = yield* Effect.all([store.bind(google, subject, a), store.bind(google, subject, b)], {
              concurrency: "unbounded"
            })
            expect(bySubject.filter(Boolean)).toHaveLength(1)
            const winner = bySubject[0] ? a : b
            expect(yield* store.find(google, subject)).toEqual(Option.some(winner))
            const loser = winner === a ? b : a
            expect(yield* store.subjectOf(google, loser)).toEqual(Option.none())

            const user = `${5000 + round}`
            const byUser = yield* Effect.all(
              [store.bind(gitlab, `x-${round}`, user), store.bind(gitlab, `y-${round}`, user)],
              { concurrency: "unbounded" }
            )
            expect(byUser.filter(Boolean)).toHaveLength(1)
            expect(yield* store.subjectOf(gitlab, user)).toEqual(Option.some(byUser[0] ? `x-${round}` : `y-${round}`))
          }
        })
      ), 30_000)

    it.live("input no store holds alike (no string, empty, NUL, a lone surrogate, past 255 characters) is an ExternalIdentitiesError, and nothing is written", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const any = store as unknown as Record<string, (...args: Array<unknown>) => Effect.Effect<unknown, { readonly _tag: string }>>
          const outcome = (call: () => Effect.Effect<unknown, { readonly _tag: string }>) =>
            Effect.map(Effect.exit(Effect.suspend(call)), (exit) =>
              Exit.isSuccess(exit) ? "success" : exit.cause._tag === "Fail" ? exit.cause.error._tag : "defect")
          const bad: ReadonlyArray<unknown> = [42, null, undefined, {}, hostile(), "", "a\u0000b", "a\uD800", "\uDC00", "x".repeat(256)]
          for (const value of bad) {
            for (
              const call of [
                () => any.bind!(value, "sub", "1"),
                () => any.bind!(google, value, "1"),
                () => any.bind!(google, "sub", value),
                () => any.find!(value, "sub"),
                () => any.find!(google, value),
                () => any.subjectOf!(value, "1"),
                () => any.subjectOf!(google, value),
                () => any.unbind!(value, "1"),
                () => any.unbind!(google, value)
              ]
            ) {
              expect(yield* outcome(call)).toBe("ExternalIdentitiesError")
            }
          }
          const error = yield* Effect.flip(store.bind(google, "sub", "a\u0000"))
          expect(error).toMatchObject({ _tag: "ExternalIdentitiesError", operation: "bind" })
          // nothing was written
          expect(yield* store.find(google, "sub")).toEqual(Option.none())
          // 255 characters fit, on every engine, and are found again as they are
          const long = "é".repeat(255)
          expect(yield* store.bind(long, long, "9".repeat(255))).toBe(true)
          expect(yield* store.find(long, long)).toEqual(Option.some("9".repeat(255)))
          expect(yield* store.subjectOf(long, "9".repeat(255))).toEqual(Option.some(long))
        })
      ))
  })

laws("memory", () => ExternalIdentities.layerMemory)
laws("SQLite", () => SqlExternalIdentities.layer().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" }))))
laws(
  "PostgreSQL",
  () => {
    const prefix = Postgres.uniquePrefix("extid")
    const tables = Effect.map(SqlExternalIdentities.tables({ tablePrefix: prefix }), (t) => [t.identity, t.migrations])
    return SqlExternalIdentities.layer({ tablePrefix: prefix }).pipe(Layer.provide(Postgres.poolDropping(tables)))
  },
  Postgres.missing
)

describe("SqlExternalIdentities", () => {
  it.effect("a bad table prefix is an AuthConfigError; the default table is auth_external_identity", () =>
    Effect.gen(function*() {
      expect((yield* SqlExternalIdentities.tables()).identity).toBe("auth_external_identity")
      expect((yield* SqlExternalIdentities.tables()).migrations).toBe("effect_auth_external_identity_migrations")
      const error = yield* Effect.flip(SqlExternalIdentities.tables({ tablePrefix: "Bad-Prefix" }))
      expect(error._tag).toBe("AuthConfigError")
    }))

  it.live("the database failing (no table: not migrated) is an ExternalIdentitiesError, never a defect", () =>
    Effect.gen(function*() {
      const store = yield* SqlExternalIdentities.make()
      const calls: ReadonlyArray<Effect.Effect<unknown, ExternalIdentities.ExternalIdentitiesError>> = [
        store.find(google, "s"),
        store.subjectOf(google, "1"),
        store.bind(google, "s", "1"),
        store.unbind(google, "1")
      ]
      for (const call of calls) {
        const error = yield* Effect.flip(call)
        expect(error._tag).toBe("ExternalIdentitiesError")
      }
    }).pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" }))))

  it.live("migrating twice is a no-op; a table of its own, found again by a second store on the same database", () =>
    Effect.gen(function*() {
      yield* SqlExternalIdentities.migrate()
      yield* SqlExternalIdentities.migrate()
      const first = yield* SqlExternalIdentities.make()
      const second = yield* SqlExternalIdentities.make()
      expect(yield* first.bind(google, "s", "1")).toBe(true)
      expect(yield* second.find(google, "s")).toEqual(Option.some("1"))
      expect(yield* second.bind(google, "s", "2")).toBe(false)
    }).pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" }))))
})
