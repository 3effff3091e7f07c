// An app's `SqlClient` that renames names for its own tables (`transformResultNames:
// String.snakeToCamel`, `transformQueryNames: String.camelToSnake`), as Effect apps commonly set
// it; on PostgreSQL also reading `bigint` as a `BigInt` (a type parser for oid 20, as Node apps set
// `pg.types.setTypeParser(20, BigInt)`), which read every session as gone and made every lockout
// count a store error. The stores name their columns as the tables have them (Django's `last_login`,
// `session_key`) and decode rows by those names: on such a client every row read failed to decode
// (a UserStoreError on every login, every session a 503). They now query the app's client without
// its transforms, on the same connections and in the same transactions.
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Redacted, String as Str } from "effect"
import { randomBytes } from "node:crypto"
import { createRequire } from "node:module"
import * as ApiTokens from "../src/ApiTokens.js"
import * as AuthService from "../src/AuthService.js"
import * as ApiTokenBackend from "../src/backends/ApiTokenBackend.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as TotpBackend from "../src/backends/TotpBackend.js"
import * as DjangoSessionStore from "../src/DjangoSessionStore.js"
import * as ExternalIdentities from "../src/ExternalIdentities.js"
import * as ObjectPermissions from "../src/ObjectPermissions.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SqlExternalIdentities from "../src/SqlExternalIdentities.js"
import * as SqlLockoutStore from "../src/SqlLockoutStore.js"
import * as SqlObjectPermissions from "../src/SqlObjectPermissions.js"
import * as SqlSessionStore from "../src/SqlSessionStore.js"
import * as SqlTotpStore from "../src/SqlTotpStore.js"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as TestAuth from "../src/testing/TestAuth.js"
import * as TotpStore from "../src/TotpStore.js"
import * as UserStore from "../src/UserStore.js"
import { resetFindsItsKeys } from "./utils/lockout.js"
import * as Postgres from "./utils/postgres.js"
import { record, sessionStoreSuite } from "./utils/sessionStoreSuite.js"
import { userStoreSuite } from "./utils/userStoreSuite.js"

const renaming = { transformResultNames: Str.snakeToCamel, transformQueryNames: Str.camelToSnake } as const

const sqlite = () => SqliteClient.layer({ filename: ":memory:", ...renaming })

// node-postgres' own parsers, for every type but `bigint` (its types are not installed: typed here).
type Parser = (text: string) => unknown
const pgTypes = (createRequire(import.meta.url)("pg") as { types: { getTypeParser: (oid: number, format?: string) => Parser } }).types
const bigintAsBigInt = {
  getTypeParser: (oid: number, format?: string): Parser => oid === 20 ? (text) => BigInt(text) : pgTypes.getTypeParser(oid, format)
}

// A pool of its own on this run's database, with the app's transforms and `bigint` parser,
// dropping `tables` after.
const pg = (tables: Effect.Effect<ReadonlyArray<string>, unknown>) =>
  Postgres.dropOnRelease(Effect.flatMap(Effect.orDie(tables), Postgres.dropTables)).pipe(
    Layer.provideMerge(Layer.orDie(PgClient.layer({
      url: Redacted.make(Postgres.databaseUrl),
      maxConnections: 5,
      ...renaming,
      types: bigintAsBigInt as NonNullable<PgClient.PgClientConfig["types"]>
    })))
  )

userStoreSuite("SQLite, the app's client renaming columns", { layer: () => SqlUserStore.layer().pipe(Layer.provide(sqlite())) })
sessionStoreSuite("SQLite, the app's client renaming columns", { layer: () => SqlSessionStore.layer().pipe(Layer.provide(sqlite())) })
userStoreSuite("PostgreSQL, the app's client renaming columns and reading bigint as BigInt", {
  layer: () => {
    const prefix = Postgres.uniquePrefix("tr_users")
    return SqlUserStore.layer({ tablePrefix: prefix }).pipe(Layer.provide(pg(Postgres.userStoreTables(prefix))))
  },
  skip: Postgres.missing
})
sessionStoreSuite("PostgreSQL, the app's client renaming columns and reading bigint as BigInt", {
  layer: () => {
    const prefix = Postgres.uniquePrefix("tr_sessions")
    const tables = Effect.map(SqlSessionStore.tables({ tablePrefix: prefix }), (t) => [t.session, t.migrations])
    return SqlSessionStore.layer({ tablePrefix: prefix }).pipe(Layer.provide(pg(tables)))
  },
  skip: Postgres.missing
})

class DjangoStore extends Context.Tag("test/SqlClientTransforms/DjangoStore")<DjangoStore, SessionStore.Service>() {}

// Every other store of the library on one renaming client, the SQL ones under `prefix`, Django's
// sessions in `djangoTable` (made here, as Django's migration makes it).
const stores = (prefix: string | undefined, djangoTable: string) => {
  const options = { tablePrefix: prefix }
  const django = Layer.effect(
    DjangoStore,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE ${sql(djangoTable)} (session_key varchar(40) PRIMARY KEY, session_data text NOT NULL, expire_date timestamp NOT NULL)`
      return yield* DjangoSessionStore.make({ secret: Redacted.make("django-site-secret"), table: djangoTable })
    })
  )
  return TestAuth.layer([ModelBackend.ModelBackend, ApiTokenBackend.ApiTokenBackend]).pipe(
    Layer.provideMerge(Layer.mergeAll(ModelBackend.layer(), TotpBackend.layer(), ApiTokenBackend.layer(options))),
    Layer.provideMerge(Layer.mergeAll(
      SqlTotpStore.layer(options),
      SqlExternalIdentities.layer(options),
      SqlObjectPermissions.layer(options),
      django
    )),
    Layer.provideMerge(SqlUserStore.layer(options)),
    Layer.provideMerge(PasswordHasher.layerTest)
  )
}

const everyStore = (prefix: string | undefined) =>
  Effect.gen(function*() {
    const users = yield* UserStore.UserStore
    const hasher = yield* PasswordHasher.PasswordHasher
    const alice = yield* users.create({ username: "alice", passwordHash: yield* hasher.hash(Redacted.make("wonderland")) })
    // a login through the model backend reads the user's row, groups and permissions
    const login = yield* AuthService.authenticate({ username: "alice", password: "wonderland" })
    expect(login.user.username).toBe("alice")
    // an API token: created, then its row found by the backend
    const created = yield* (yield* ApiTokens.ApiTokens).create({ userId: alice.id, name: "ci" })
    expect((yield* AuthService.authenticateUnknown({ token: created.token })).user.username).toBe("alice")
    expect((yield* (yield* ApiTokens.ApiTokens).list(alice.id)).map((token) => token.name)).toEqual(["ci"])
    // a TOTP device: enrolled, then read back
    yield* TotpBackend.enrol(alice, { issuer: "Example" })
    expect(Option.map(yield* (yield* TotpStore.TotpStore).get(alice.id), (device) => device.confirmed)).toEqual(Option.some(false))
    // Django's sessions
    const django = yield* DjangoStore
    const now = Date.now()
    const key = randomBytes(16).toString("hex")
    yield* django.set(key, record({ userId: alice.id, createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 }), now)
    expect(Option.map(yield* django.get(key, now), (r) => r.userId)).toEqual(Option.some(alice.id))
    // external identities, and the user store's client the same object as theirs: Provisioning
    // runs a first login's create and bind in one transaction on it
    const identities = yield* ExternalIdentities.ExternalIdentities
    expect(yield* identities.bind("https://sso.example.com/", "sub-1", alice.id)).toBe(true)
    expect(yield* identities.find("https://sso.example.com/", "sub-1")).toEqual(Option.some(alice.id))
    expect(identities.sqlClient).toBeDefined()
    expect(identities.sqlClient).toBe(users.sqlClient)
    // object permissions
    const objects = yield* ObjectPermissions.ObjectPermissions
    const report = ObjectPermissions.ref("reports.report", "7")
    yield* objects.grantUser(alice.id, "reports.view_report", report)
    expect(yield* objects.userPermissions(alice.id, report)).toEqual(new Set(["reports.view_report"]))
    // the lockout store's rows
    yield* SqlLockoutStore.migrate({ tablePrefix: prefix })
    yield* resetFindsItsKeys(yield* SqlLockoutStore.make({ tablePrefix: prefix }))
  })

describe("every store on the app's client renaming columns", () => {
  it.scoped("SQLite", () =>
    everyStore(undefined).pipe(Effect.provide(stores(undefined, "django_session").pipe(Layer.provideMerge(sqlite())))))

  it.scoped.skipIf(Postgres.missing)("PostgreSQL, bigint read as BigInt", () => {
    const prefix = Postgres.uniquePrefix("tr_all")
    const djangoTable = `${prefix}django_session`
    const tables = Effect.gen(function*() {
      const t = yield* SqlTotpStore.tables({ tablePrefix: prefix })
      const a = yield* ApiTokens.tables({ tablePrefix: prefix })
      const e = yield* SqlExternalIdentities.tables({ tablePrefix: prefix })
      const o = yield* SqlObjectPermissions.tables({ tablePrefix: prefix })
      const l = yield* SqlLockoutStore.tables({ tablePrefix: prefix })
      const u = yield* Postgres.userStoreTables(prefix)
      return [
        t.device,
        t.recoveryCode,
        t.migrations,
        a.token,
        a.migrations,
        djangoTable,
        ...Object.values(e),
        ...Object.values(o),
        ...Object.values(l),
        ...u
      ].filter((name): name is string => typeof name === "string")
    })
    return everyStore(prefix).pipe(Effect.provide(stores(prefix, djangoTable).pipe(Layer.provideMerge(pg(tables)))))
  })
})
