// The SQL stores under a recording tracer: `@effect/sql` makes a `sql.execute` span per statement
// and ends it with the rows the statement read, so a tracer that prints a span's exit printed
// password hashes, TOTP seeds, stored sessions and token digests. Inside the library's store
// operations those spans now end a success without a value; they are still made, with their
// attributes, and a failing statement still ends its span as a failure.
import { describe, expect, it } from "@effect/vitest"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { Context, Effect, Exit, Layer, Option, Redacted, Tracer } from "effect"
import { randomBytes } from "node:crypto"
import { inspect } from "node:util"
import * as ApiTokens from "../src/ApiTokens.js"
import * as AuthService from "../src/AuthService.js"
import * as ApiTokenBackend from "../src/backends/ApiTokenBackend.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as TotpBackend from "../src/backends/TotpBackend.js"
import * as DjangoSessionStore from "../src/DjangoSessionStore.js"
import { withValueFreeSpan } from "../src/internal/tracing.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SqlSessionStore from "../src/SqlSessionStore.js"
import * as SqlTotpStore from "../src/SqlTotpStore.js"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as TestAuth from "../src/testing/TestAuth.js"
import * as UserStore from "../src/UserStore.js"
import * as Postgres from "./utils/postgres.js"
import * as RecordingTracer from "./utils/recordingTracer.js"
import { record } from "./utils/sessionStoreSuite.js"

// Everything a span holds, as text: the exit also as JSON and as Node prints it.
const rendered = (span: RecordingTracer.RecordedSpan): string =>
  [RecordingTracer.render(span), JSON.stringify(span.exit), inspect(span.exit, { depth: Infinity })].join("\n")

// Django's session store beside the SQL one (both are a `SessionStore`).
class DjangoStore extends Context.Tag("test/Observability.sql/DjangoStore")<DjangoStore, SessionStore.Service>() {}

// The test's own look at what was stored, out of the tracer's sight.
const untraced = Effect.withTracerEnabled(false)

const key = () => randomBytes(16).toString("hex")

// Every store on one database (`SqlClient`), the SQL ones under `prefix`, Django's sessions in
// `djangoTable` (made here, as Django's migration makes it).
const stores = (prefix: string | undefined, djangoTable: string) => {
  const options = { tablePrefix: prefix }
  const secret = Redacted.make("django-site-secret")
  const django = Layer.effect(
    DjangoStore,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE ${sql(djangoTable)} (session_key varchar(40) PRIMARY KEY, session_data text NOT NULL, expire_date timestamp NOT NULL)`
      return yield* DjangoSessionStore.make({ secret, table: djangoTable })
    })
  )
  return TestAuth.layer([ModelBackend.ModelBackend, TotpBackend.TotpBackend, ApiTokenBackend.ApiTokenBackend]).pipe(
    Layer.provideMerge(Layer.mergeAll(ModelBackend.layer(), TotpBackend.layer(), ApiTokenBackend.layer(options))),
    Layer.provideMerge(Layer.mergeAll(SqlSessionStore.layer(options), SqlTotpStore.layer(options), django)),
    Layer.provideMerge(SqlUserStore.layer(options)),
    Layer.provideMerge(PasswordHasher.layerTest)
  )
}

// What a login, a second factor, an API token and the session stores read and write, under a
// recording tracer; then a statement that fails (its table dropped). Answers the secrets that went
// through the database and what the tracer saw.
const drive = (prefix: string | undefined, djangoTable: string) =>
  Effect.gen(function*() {
    const tracer = RecordingTracer.make()
    const secrets = yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const users = yield* UserStore.UserStore
      const hasher = yield* PasswordHasher.PasswordHasher
      const passwordHash = yield* hasher.hash(Redacted.make("wonderland"))
      const alice = yield* users.create({ username: "alice", passwordHash })
      // a wrong password: the user's row, with its hash, is read
      const login = yield* Effect.exit(AuthService.authenticate({ username: "alice", password: "wrong-password" }))
      expect(Exit.isFailure(login)).toBe(true)
      // a wrong second factor: the device, with its seed, is read
      const seed = Redacted.value((yield* TotpBackend.enrol(alice, { issuer: "Example" })).secret)
      const otp = yield* Effect.exit(AuthService.authenticateUnknown({ username: "alice", otpToken: "000000" }))
      expect(Exit.isFailure(otp)).toBe(true)
      // an API token, used: its row, with its digest, is read
      const created = yield* (yield* ApiTokens.ApiTokens).create({ userId: alice.id, name: "ci" })
      const token = Redacted.value(created.token)
      const used = yield* AuthService.authenticateUnknown({ token: created.token })
      expect(used.user.username).toBe("alice")
      const tokenTable = (yield* ApiTokens.tables({ tablePrefix: prefix })).token
      const digest = (yield* untraced(sql<{ digest: string }>`SELECT digest FROM ${sql(tokenTable)}`))[0]!.digest
      // both session stores: set, get, delete
      const authHash = `AUTHHASH${key()}`
      const csrfToken = `CSRF${key()}`
      const now = Date.now()
      const stored = record({ userId: alice.id, authHash, csrfToken, createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 })
      const sessionKey = key()
      const sessions = yield* SessionStore.SessionStore
      yield* sessions.set(sessionKey, stored, now)
      expect(Option.map(yield* sessions.get(sessionKey, now), (r) => r.csrfToken)).toEqual(Option.some(csrfToken))
      yield* sessions.delete(sessionKey)
      const djangoKey = key()
      const djangoStore = yield* DjangoStore
      yield* djangoStore.set(djangoKey, stored, now)
      expect(Option.map(yield* djangoStore.get(djangoKey, now), (r) => r.csrfToken)).toEqual(Option.some(csrfToken))
      const djangoData = (yield* untraced(sql<{ session_data: string }>`SELECT session_data FROM ${sql(djangoTable)}`))[0]!
        .session_data
      yield* djangoStore.delete(djangoKey)
      // a statement that fails
      yield* sql`DROP TABLE ${sql((yield* SqlSessionStore.tables({ tablePrefix: prefix })).session)}`
      const failed = yield* Effect.exit(sessions.get(sessionKey, now))
      expect(Exit.isFailure(failed)).toBe(true)
      return {
        "password hash": passwordHash,
        "TOTP seed": seed,
        "API token": token,
        "API token digest": digest,
        "session key": sessionKey,
        "Django session key": djangoKey,
        "Django session data": djangoData,
        "auth hash": authHash,
        "CSRF token": csrfToken
      }
    }).pipe(Effect.provide(tracer.layer))
    return { secrets, spans: tracer.spans }
  })

const expectNoSecretInSpans = (
  { secrets, spans }: Effect.Effect.Success<ReturnType<typeof drive>>,
  sessionTable: string
) => {
  // the driver's spans are still there, with their attributes
  const statements = spans.filter((span) => span.name === "sql.execute")
  expect(statements.length).toBeGreaterThan(10)
  for (const span of statements) expect(typeof span.attributes.get("db.query.text")).toBe("string")
  expect(statements.some((span) => (span.attributes.get("db.query.text") as string).includes("SELECT"))).toBe(true)
  // nested under the store operation that made them
  expect(statements.map((span) => span.parentName)).toEqual(
    expect.arrayContaining(["UserStore.findByUsername", "TotpStore.get", "SessionStore.get"])
  )
  // a failing statement still ends as a failure
  const failing = statements.filter((span) => span.exit !== undefined && Exit.isFailure(span.exit))
  expect(failing.map((span) => span.attributes.get("db.query.text"))).toEqual(
    expect.arrayContaining([expect.stringContaining(sessionTable)])
  )
  // and no span, of the library or of the driver, ends with a secret
  const leaks = new Set(spans.flatMap((span) => {
    const text = rendered(span)
    return Object.entries(secrets).flatMap(([what, secret]) => text.includes(secret) ? [`${span.name}: ${what}`] : [])
  }))
  expect([...leaks]).toEqual([])
}

describe("the SQL stores' spans under a recording tracer", () => {
  it.scoped("SQLite: sql.execute spans end without the rows they read, still recorded; failures stay failures", () =>
    Effect.gen(function*() {
      const seen = yield* drive(undefined, "django_session").pipe(
        Effect.provide(stores(undefined, "django_session").pipe(Layer.provideMerge(SqliteClient.layer({ filename: ":memory:" }))))
      )
      expectNoSecretInSpans(seen, Effect.runSync(SqlSessionStore.tables()).session)
    }))

  it.scoped.skipIf(Postgres.missing)(
    "PostgreSQL: sql.execute spans end without the rows they read, still recorded; failures stay failures",
    () =>
      Effect.gen(function*() {
        const prefix = Postgres.uniquePrefix("spans")
        const djangoTable = `${prefix}django_session`
        const tables = Effect.gen(function*() {
          const s = yield* SqlSessionStore.tables({ tablePrefix: prefix })
          const t = yield* SqlTotpStore.tables({ tablePrefix: prefix })
          const a = yield* ApiTokens.tables({ tablePrefix: prefix })
          const u = yield* Postgres.userStoreTables(prefix)
          return [s.session, s.migrations, t.device, t.recoveryCode, t.migrations, a.token, a.migrations, djangoTable, ...u]
        })
        const seen = yield* drive(prefix, djangoTable).pipe(
          Effect.provide(stores(prefix, djangoTable).pipe(Layer.provideMerge(Postgres.poolDropping(tables))))
        )
        expectNoSecretInSpans(seen, Effect.runSync(SqlSessionStore.tables({ tablePrefix: prefix })).session)
      })
  )
})

describe("withValueFreeSpan", () => {
  // It costs nothing where nobody records: the spans inside are made by the tracer as it is.
  it.effect("under Effect's built-in tracer or with tracing disabled, the spans inside keep the tracer as it is", () =>
    Effect.gen(function*() {
      const outside = yield* Effect.tracer
      const inside = yield* Effect.tracer.pipe(withValueFreeSpan("probe"))
      expect(inside).toBe(outside)
      const recording = RecordingTracer.make()
      const disabled = yield* Effect.tracer.pipe(withValueFreeSpan("probe"), Effect.withTracerEnabled(false), Effect.withTracer(recording.tracer))
      expect(disabled).toBe(recording.tracer)
    }))

  it.effect("a span inside ends a success with no value, and a failure as it is; nesting quiets once", () =>
    Effect.gen(function*() {
      const recording = RecordingTracer.make()
      const secret = "the-secret-value"
      const tracers = yield* Effect.gen(function*() {
        const inner = yield* Effect.succeed(secret).pipe(Effect.withSpan("child"))
        expect(inner).toBe(secret)
        yield* Effect.exit(Effect.fail("boom").pipe(Effect.withSpan("failing")))
        const once = yield* Effect.tracer
        const twice = yield* Effect.tracer.pipe(withValueFreeSpan("nested"))
        return [once, twice]
      }).pipe(withValueFreeSpan("outer"), Effect.withTracer(recording.tracer))
      expect(tracers[0]).toBe(tracers[1])
      const byName = new Map(recording.spans.map((span) => [span.name, span]))
      expect(byName.get("child")!.exit).toEqual(Exit.void)
      expect(byName.get("child")!.parentName).toBe("outer")
      expect(byName.get("failing")!.exit).toEqual(Exit.fail("boom"))
      expect(byName.get("nested")!.parentName).toBe("outer")
    }))

  // A tracer's spans may keep their state in private fields, which no other object can read, and
  // a tracer may build its tree from the parent objects it is handed: the spans inside are the
  // tracer's own objects (a stand-in made through Object.create broke both: every hash died with
  // "Cannot read private member", and children named a parent the tracer never made).
  it.effect("the spans inside are the tracer's own objects: private fields, identity and parents hold", () =>
    Effect.gen(function*() {
      const ended: Array<readonly [string, Exit.Exit<unknown, unknown>]> = []
      const made: Array<OwnSpan> = []
      const parents = new Map<string, unknown>()
      class OwnSpan {
        readonly _tag = "Span"
        readonly #attributes = new Map<string, unknown>()
        #status: Tracer.SpanStatus = { _tag: "Started", startTime: 0n }
        readonly spanId: string
        readonly traceId = "t"
        readonly context = Context.empty()
        readonly links: Array<Tracer.SpanLink> = []
        readonly sampled = true
        readonly kind = "internal" as const
        constructor(readonly name: string, readonly parent: Option.Option<Tracer.AnySpan>) {
          this.spanId = name
        }
        get attributes(): ReadonlyMap<string, unknown> {
          return this.#attributes
        }
        get status(): Tracer.SpanStatus {
          return this.#status
        }
        attribute(key: string, value: unknown) {
          this.#attributes.set(key, value)
        }
        event() {}
        addLinks() {}
        end(endTime: bigint, exit: Exit.Exit<unknown, unknown>) {
          this.#status = { _tag: "Ended", startTime: 0n, endTime, exit }
          ended.push([this.name, exit])
        }
      }
      const tracer = Tracer.make({
        span: (name, parent) => {
          const span = new OwnSpan(name, parent)
          made.push(span)
          parents.set(name, Option.getOrUndefined(parent))
          return span
        },
        context: (f) => f()
      })
      const seen = yield* Effect.currentSpan.pipe(
        Effect.tap(() => Effect.annotateCurrentSpan("db.query.text", "SELECT 1")),
        Effect.withSpan("grandchild"),
        Effect.withSpan("child"),
        withValueFreeSpan("outer"),
        Effect.withTracer(tracer)
      )
      expect(seen).toBe(made[2])
      expect(seen).toBeInstanceOf(OwnSpan)
      expect(seen.attributes.get("db.query.text")).toBe("SELECT 1")
      // each parent is the object the tracer made
      expect(parents.get("child")).toBe(made[0])
      expect(parents.get("grandchild")).toBe(made[1])
      // no success (the span itself, here) is handed to the tracer, and each span's status is its own
      expect(ended.map(([name]) => name)).toEqual(["grandchild", "child", "outer"])
      expect(ended.slice(0, 2).map(([, exit]) => exit)).toEqual([Exit.void, Exit.void])
      // (the outer span's own value is hidden in a closure, as before)
      const outer = ended[2]![1]
      expect(Exit.isSuccess(outer) && typeof outer.value).toBe("function")
      expect(made.map((span) => span.status._tag)).toEqual(["Ended", "Ended", "Ended"])
    }))

  // A tracer may hand out one span object again and again (a no-op tracer installed to silence
  // tracing). Shadowing its `end` once per span stacked a wrapper per span on that one object for
  // the life of the process: every later `end` ran through all of them, deeper and deeper, until
  // the stack overflowed (about 10^5 store operations).
  it.effect("a tracer that hands out one span object: its end is shadowed once, not once per span", () =>
    Effect.gen(function*() {
      const depths: Array<number> = []
      const one: Tracer.Span = {
        _tag: "Span",
        name: "one",
        spanId: "0",
        traceId: "0",
        parent: Option.none(),
        context: Context.empty(),
        status: { _tag: "Started", startTime: 0n },
        attributes: new Map(),
        links: [],
        sampled: false,
        kind: "internal",
        end() {
          const limit = Error.stackTraceLimit
          Error.stackTraceLimit = Infinity
          depths.push(new Error().stack!.split("\n").length)
          Error.stackTraceLimit = limit
        },
        attribute() {},
        event() {},
        addLinks() {}
      }
      const tracer = Tracer.make({ span: () => one, context: (f) => f() })
      const operation = Effect.succeed(1).pipe(Effect.withSpan("sql.execute"), withValueFreeSpan("store"))
      yield* Effect.withTracer(operation, tracer)
      const first = depths.slice()
      yield* Effect.withTracer(Effect.repeatN(operation, 300), tracer)
      depths.length = 0
      yield* Effect.withTracer(operation, tracer)
      // the same two ends, at the same depth as the first time (before: 301 wrappers deeper each)
      expect(depths).toEqual(first)
    }))
})
