import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { createHash } from "node:crypto"
import * as AuthError from "../src/AuthError.js"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as ApiTokens from "../src/ApiTokens.js"
import * as ApiTokenBackend from "../src/backends/ApiTokenBackend.js"
import * as Repository from "../src/internal/apiToken/repository.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as TestBackend from "../src/testing/TestBackend.js"
import * as UserStore from "../src/UserStore.js"
import * as Postgres from "./utils/postgres.js"
import { failureTag } from "./utils/userStoreSuite.js"

const url = Postgres.databaseUrl

// The token table's name, which differs per layer on PostgreSQL.
class TokenTable extends Context.Tag("test/ApiTokenBackend/TokenTable")<TokenTable, string>() {}

type Env = ApiTokenBackend.ApiTokenBackend | ApiTokens.ApiTokens | UserStore.UserStore | SqlClient.SqlClient | TokenTable

const tableLayer = (prefix: string | undefined) =>
  Layer.effect(TokenTable, Effect.map(Effect.orDie(ApiTokens.tables({ tablePrefix: prefix })), (t) => t.token))

const sqliteEnv = (options: ApiTokenBackend.Options = {}): Layer.Layer<Env, unknown> =>
  Layer.merge(ApiTokenBackend.layer(options), tableLayer(options.tablePrefix)).pipe(
    Layer.provideMerge(SqlUserStore.layerSqlite({ filename: ":memory:" }))
  )

const uniquePrefix = () => Postgres.uniquePrefix("at_pg")

const dropTables = (prefix: string) =>
  Effect.flatMap(Effect.orDie(ApiTokens.tables({ tablePrefix: prefix })), (tokens) =>
    Effect.flatMap(Postgres.userStoreTables(prefix), (users) =>
      Postgres.dropTables([tokens.token, tokens.migrations, ...users])))

// A fresh prefix per layer; its tables are dropped when the layer is released.
const pgEnv = (options: ApiTokenBackend.Options = {}): Layer.Layer<Env, unknown> => {
  const prefix = uniquePrefix()
  return Postgres.dropOnRelease(dropTables(prefix)).pipe(
    Layer.provideMerge(Layer.merge(ApiTokenBackend.layer({ ...options, tablePrefix: prefix }), tableLayer(prefix))),
    Layer.provideMerge(SqlUserStore.layerPg({ url, tablePrefix: prefix, maxConnections: 5 }))
  )
}

const creds = (token: string | Redacted.Redacted<string>) => ({
  token: Redacted.isRedacted(token) ? token : Redacted.make(token)
})

const authenticate = (token: string | Redacted.Redacted<string>) =>
  Effect.flatMap(ApiTokenBackend.ApiTokenBackend, (backend) => backend.authenticate(creds(token), undefined))

const expectNoMatch = (exit: Exit.Exit<unknown, unknown>, reason: AuthError.NoMatchReason) => {
  expect(failureTag(exit)).toBe("NoMatch")
  if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
    const error = exit.cause.error as AuthError.NoMatch
    expect(error.reason).toBe(reason)
    expect(error.backend).toBe("api-token")
  }
}

const seedUser = (username = "alice", fields: Partial<UserStore.CreateUser> = {}) =>
  Effect.flatMap(UserStore.UserStore, (store) => store.create({ ...fields, username }))

const newToken = (input: Partial<ApiTokens.CreateToken> & { readonly userId: string }) =>
  Effect.flatMap(ApiTokens.ApiTokens, (tokens) => tokens.create({ name: "test", ...input }))

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex")

// Replaces one character of the secret (the last one), keeping the shape valid.
const tamper = (token: string) => token.slice(0, -1) + (token.endsWith("A") ? "B" : "A")

const suite = (name: string, env: (options?: ApiTokenBackend.Options) => Layer.Layer<Env, unknown>, skip = false) =>
  describe.skipIf(skip)(`ApiTokenBackend on ${name}`, () => {
    it.effect("creates a token shown once in the ea_<id>_<secret> format; it authenticates its owner with its scopes", () =>
      Effect.gen(function*() {
        const alice = yield* seedUser()
        const { info, token } = yield* newToken({ userId: alice.id, name: "CI", scopes: ["read:posts", "deploy", "deploy"] })
        expect(String(token)).toBe("<redacted>")
        const value = Redacted.value(token)
        expect(value).toMatch(/^ea_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43}$/)
        expect(value.slice(3, 11)).toBe(info.id)
        expect(info).toMatchObject({ prefix: `ea_${info.id}`, userId: alice.id, name: "CI", scopes: ["read:posts", "deploy"] })
        expect(Option.isNone(info.expiresAt) && Option.isNone(info.lastUsedAt) && Option.isNone(info.revokedAt)).toBe(true)
        expect(JSON.stringify(info)).not.toContain(value.slice(12))

        const user = yield* authenticate(token)
        expect(user).toMatchObject({ id: alice.id, username: "alice" })
        expect(ApiTokenBackend.scopesOf(user)).toEqual(Option.some(["read:posts", "deploy"]))
        expect(Option.map(ApiTokenBackend.tokenOf(user), (t) => t.id)).toEqual(Option.some(info.id))
        expect(ApiTokenBackend.hasScope(user, "deploy")).toBe(true)
        expect(ApiTokenBackend.hasScope("admin")(user)).toBe(false)
        // a user from elsewhere (here: getUser, as sessions do) carries no token
        const loaded = Option.getOrThrow(yield* Effect.flatMap(ApiTokenBackend.ApiTokenBackend, (b) => b.getUser(alice.id)))
        expect(loaded).toMatchObject({ id: alice.id })
        expect(ApiTokenBackend.scopesOf(loaded)).toEqual(Option.none())
        expect(ApiTokenBackend.hasScope(loaded, "deploy")).toBe(false)
      }).pipe(Effect.provide(env())))

    it.effect("the stored row holds the SHA-256 digest of the token, never the token or its secret", () =>
      Effect.gen(function*() {
        const alice = yield* seedUser()
        const { info, token } = yield* newToken({ userId: alice.id, scopes: ["x"] })
        const value = Redacted.value(token)
        const secret = value.slice(12)
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql.unsafe<Record<string, unknown>>(`SELECT * FROM ${yield* TokenTable}`)
        expect(rows.length).toBe(1)
        const dump = JSON.stringify(rows)
        expect(dump).not.toContain(secret)
        expect(dump).not.toContain(value)
        // nor the secret's base64url decoded bytes, in hex or base64
        const bytes = Buffer.from(secret, "base64url")
        expect(dump).not.toContain(bytes.toString("hex"))
        expect(dump).not.toContain(bytes.toString("base64"))
        expect(String(rows[0]!["digest"]).trim()).toBe(sha256(value))
        expect(rows[0]!["id"]).toBe(info.id)
      }).pipe(Effect.provide(env())))

    it.effect("a wrong secret or an unknown id is NoMatch(invalid-credentials)", () =>
      Effect.gen(function*() {
        const alice = yield* seedUser()
        const { token } = yield* newToken({ userId: alice.id })
        const value = Redacted.value(token)
        expectNoMatch(yield* Effect.exit(authenticate(tamper(value))), "invalid-credentials")
        const otherId = value.slice(3, 11) === "AAAAAAAA" ? "BBBBBBBB" : "AAAAAAAA"
        expectNoMatch(yield* Effect.exit(authenticate(`ea_${otherId}_${value.slice(12)}`)), "invalid-credentials")
        // the right token still works
        expect((yield* authenticate(token)).id).toBe(alice.id)
      }).pipe(Effect.provide(env())))

    it.effect("a token not shaped like ours is NoMatch(unsupported-credentials)", () =>
      Effect.gen(function*() {
        const alice = yield* seedUser()
        const value = Redacted.value((yield* newToken({ userId: alice.id })).token)
        const malformed = [
          "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln", // a JWT
          value.slice(0, -1), // truncated
          `${value}A`, // too long
          `xx${value.slice(2)}`, // another prefix
          `${value.slice(0, 11)}-${value.slice(12)}`, // separator replaced
          `ea_abc!efgh_${value.slice(12)}`, // id outside the alphabet
          `${value.slice(0, 12)}${"!".repeat(43)}` // secret outside the alphabet
        ]
        for (const token of malformed) expectNoMatch(yield* Effect.exit(authenticate(token)), "unsupported-credentials")
      }).pipe(Effect.provide(env())))

    it.effect("an expired token is NoMatch(expired-credentials); an expiry in the past is refused at creation", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(Date.parse("2030-01-01T00:00:00Z"))
        const alice = yield* seedUser()
        const expiresAt = new Date("2030-01-01T01:00:00Z")
        const { info, token } = yield* newToken({ userId: alice.id, expiresAt })
        expect(info.expiresAt).toEqual(Option.some(expiresAt))
        expect((yield* authenticate(token)).id).toBe(alice.id)
        yield* TestClock.adjust("59 minutes")
        expect((yield* authenticate(token)).id).toBe(alice.id)
        yield* TestClock.adjust("1 minute")
        expectNoMatch(yield* Effect.exit(authenticate(token)), "expired-credentials")
        // a wrong secret on an expired token says nothing about the expiry
        expectNoMatch(yield* Effect.exit(authenticate(tamper(Redacted.value(token)))), "invalid-credentials")

        const past = yield* Effect.exit(newToken({ userId: alice.id, expiresAt: new Date("2029-12-31T00:00:00Z") }))
        expect(failureTag(past)).toBe("InvalidInput")
        // past the year 9999 (PostgreSQL refused it as a store error; SQLite kept it)
        const far = yield* Effect.exit(newToken({ userId: alice.id, expiresAt: new Date("+010000-01-01T00:00:00Z") }))
        expect(failureTag(far)).toBe("InvalidInput")
      }).pipe(Effect.provide(env())))

    it.effect("a revoked token is NoMatch(invalid-credentials); revoke is idempotent and scoped to its owner", () =>
      Effect.gen(function*() {
        const tokens = yield* ApiTokens.ApiTokens
        const alice = yield* seedUser()
        const bob = yield* seedUser("bob")
        const first = yield* newToken({ userId: alice.id, name: "first" })
        yield* TestClock.adjust("1 second")
        const second = yield* newToken({ userId: alice.id, name: "second" })

        // bob cannot revoke alice's token through a self-service page
        expect(failureTag(yield* Effect.exit(tokens.revoke(first.info.id, { userId: bob.id })))).toBe("TokenNotFound")
        expect((yield* authenticate(first.token)).id).toBe(alice.id)

        yield* tokens.revoke(first.info.id, { userId: alice.id })
        expectNoMatch(yield* Effect.exit(authenticate(first.token)), "invalid-credentials")
        const revokedAt = Option.getOrThrow(Option.getOrThrow(yield* tokens.get(first.info.id)).revokedAt)
        yield* TestClock.adjust("1 hour")
        yield* tokens.revoke(first.info.id)
        expect(Option.getOrThrow(yield* tokens.get(first.info.id)).revokedAt).toEqual(Option.some(revokedAt))

        // a whole token handed to revoke by mistake is no id, and the error does not quote it;
        // nor does a value of the wrong type die in the error's constructor
        const mistaken = yield* Effect.flip(tokens.revoke(Redacted.value(second.token)))
        expect(mistaken._tag).toBe("TokenNotFound")
        expect(JSON.stringify([mistaken, mistaken.message, String(mistaken)])).not.toContain(Redacted.value(second.token))
        expect(failureTag(yield* Effect.exit(tokens.revoke(123 as any)))).toBe("TokenNotFound")
        // an input that throws when read is InvalidInput, never a defect
        const hostile = new Proxy({}, {
          get: () => {
            throw new Error("no")
          },
          has: () => true,
          ownKeys: () => ["userId", "name"],
          getOwnPropertyDescriptor: () => ({ configurable: true, enumerable: true })
        })
        expect(failureTag(yield* Effect.exit(tokens.create(hostile as any)))).toBe("InvalidInput")

        // the other token is untouched
        expect((yield* authenticate(second.token)).id).toBe(alice.id)
        expect((yield* tokens.list(alice.id)).map((t) => t.name)).toEqual(["second"])
        expect((yield* tokens.list(alice.id, { includeRevoked: true })).map((t) => t.name)).toEqual(["first", "second"])
        expect(yield* tokens.list(bob.id)).toEqual([])

        expect(failureTag(yield* Effect.exit(tokens.revoke("ZZZZZZZZ")))).toBe("TokenNotFound")
        expect(failureTag(yield* Effect.exit(tokens.revoke("not an id")))).toBe("TokenNotFound")
        expect(yield* tokens.get("not an id")).toEqual(Option.none())
      }).pipe(Effect.provide(env())))

    it.effect("ids and options of the wrong type from an untyped caller are typed failures, never a defect or a guess", () =>
      Effect.gen(function*() {
        const tokens = yield* ApiTokens.ApiTokens
        const alice = yield* seedUser()
        const created = yield* newToken({ userId: alice.id, name: "first" })
        // an 8-digit number reads as an id to a RegExp, and died in TokenNotFound's constructor
        for (const id of [12345678, ["ABCDEFGH"], { toString: () => created.info.id }]) {
          expect(failureTag(yield* Effect.exit(tokens.revoke(id as any)))).toBe("TokenNotFound")
          expect(yield* tokens.get(id as any)).toEqual(Option.none())
        }
        // "no" is truthy: it must not list revoked tokens, nor be read as false
        for (const options of [{ includeRevoked: "no" }, { includeRevoked: 1 }, "yes", 42]) {
          const error = yield* Effect.flip(tokens.list(alice.id, options as any))
          expect(error._tag).toBe("InvalidInput")
          expect(error).toMatchObject({ field: "options" })
        }
        expect(yield* Effect.exit(tokens.list(alice.id, { includeRevoked: undefined }))).toEqual(Exit.succeed([created.info]))
        // an owner that is no string owns nothing: not found, and the token stays valid
        for (const options of [{ userId: Number(alice.id) }, { userId: [alice.id] }, "alice"]) {
          expect(failureTag(yield* Effect.exit(tokens.revoke(created.info.id, options as any)))).toBe("TokenNotFound")
        }
        expect((yield* authenticate(created.token)).id).toBe(alice.id)
      }).pipe(Effect.provide(env())))

    it.effect("an inactive owner is NoMatch(inactive-user); an owner gone from the store is NoMatch(unknown-user)", () =>
      Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        const sql = yield* SqlClient.SqlClient
        const alice = yield* seedUser()
        const { info, token } = yield* newToken({ userId: alice.id })
        yield* store.setFlags(alice.id, { isActive: false })
        expectNoMatch(yield* Effect.exit(authenticate(token)), "inactive-user")
        expect(yield* Effect.flatMap(ApiTokenBackend.ApiTokenBackend, (b) => b.getUser(alice.id))).toEqual(Option.none())
        yield* store.setFlags(alice.id, { isActive: true })
        expect((yield* authenticate(token)).id).toBe(alice.id)

        yield* sql.unsafe(`UPDATE ${yield* TokenTable} SET user_id = '999999' WHERE id = '${info.id}'`)
        expectNoMatch(yield* Effect.exit(authenticate(token)), "unknown-user")
      }).pipe(Effect.provide(env())))

    it.effect("lastUsedAt is written on use, at most once per interval", () =>
      Effect.gen(function*() {
        const tokens = yield* ApiTokens.ApiTokens
        yield* TestClock.setTime(Date.parse("2030-01-01T00:00:00Z"))
        const alice = yield* seedUser()
        const { info, token } = yield* newToken({ userId: alice.id })
        const lastUsed = Effect.map(tokens.get(info.id), (t) => Option.map(Option.getOrThrow(t).lastUsedAt, (d) => d.toISOString()))

        const user = yield* authenticate(token)
        expect(yield* lastUsed).toEqual(Option.some("2030-01-01T00:00:00.000Z"))
        expect(Option.flatMap(ApiTokenBackend.tokenOf(user), (t) => t.lastUsedAt)).toEqual(Option.some(new Date("2030-01-01T00:00:00Z")))
        yield* TestClock.adjust("59 seconds")
        yield* authenticate(token)
        expect(yield* lastUsed).toEqual(Option.some("2030-01-01T00:00:00.000Z"))
        yield* TestClock.adjust("1 second")
        yield* authenticate(token)
        expect(yield* lastUsed).toEqual(Option.some("2030-01-01T00:01:00.000Z"))
      }).pipe(Effect.provide(env())))

    // How many times the token table's rows had last_used_at written (a row trigger: UPDATEs that
    // match no row count nothing). The PostgreSQL function goes with the test (the table with the layer).
    const countingWrites = (table: string) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`ALTER TABLE ${table} ADD COLUMN writes integer NOT NULL DEFAULT 0`)
        yield* sql.onDialectOrElse({
          pg: () =>
            Effect.zipRight(
              sql.unsafe(`CREATE FUNCTION ${table}_writes() RETURNS trigger AS $$
                BEGIN NEW.writes = OLD.writes + 1; RETURN NEW; END $$ LANGUAGE plpgsql`),
              sql.unsafe(`CREATE TRIGGER ${table}_writes BEFORE UPDATE OF last_used_at ON ${table}
                FOR EACH ROW EXECUTE FUNCTION ${table}_writes()`)
            ),
          orElse: () =>
            sql.unsafe(`CREATE TRIGGER ${table}_writes AFTER UPDATE OF last_used_at ON ${table}
              BEGIN UPDATE ${table} SET writes = writes + 1 WHERE id = NEW.id; END`)
        })
        yield* Effect.addFinalizer(() =>
          sql.onDialectOrElse({
            pg: () => sql.unsafe(`DROP FUNCTION IF EXISTS ${table}_writes() CASCADE`),
            orElse: () => Effect.void
          }).pipe(Effect.ignore)
        )
        return (id: string) =>
          Effect.map(
            sql.unsafe<{ readonly writes: number }>(`SELECT writes FROM ${table} WHERE id = '${id}'`),
            (rows) => Number(rows[0]?.writes)
          )
      })

    it.scoped("a burst of uses of one token past lastUsedInterval writes its last use once", () =>
      Effect.gen(function*() {
        const tokens = yield* ApiTokens.ApiTokens
        yield* TestClock.setTime(Date.parse("2030-01-01T00:00:00Z"))
        const alice = yield* seedUser()
        const { info, token } = yield* newToken({ userId: alice.id })
        const writes = yield* countingWrites(yield* TokenTable)
        const burst = Effect.forEach(Array.from({ length: 50 }), () => authenticate(token), { concurrency: "unbounded" })
        // never used: the first burst writes once
        for (const user of yield* burst) {
          const used = Option.flatMap(ApiTokenBackend.tokenOf(user), (t) => t.lastUsedAt)
          expect(used).toEqual(Option.some(new Date("2030-01-01T00:00:00Z")))
        }
        expect(yield* writes(info.id)).toBe(1)
        // past the interval: once more
        yield* TestClock.adjust("2 minutes")
        yield* burst
        expect(yield* writes(info.id)).toBe(2)
        expect(Option.getOrThrow(yield* tokens.get(info.id)).lastUsedAt).toEqual(Option.some(new Date("2030-01-01T00:02:00Z")))
      }).pipe(Effect.provide(env())))

    it.effect("the last use written is never moved back, nor written again within the interval, whoever writes", () =>
      Effect.gen(function*() {
        const tokens = yield* ApiTokens.ApiTokens
        const repo = yield* Repository.make(yield* TokenTable)
        const alice = yield* seedUser()
        const { info } = yield* newToken({ userId: alice.id })
        const lastUsed = Effect.map(tokens.get(info.id), (t) => Option.map(Option.getOrThrow(t).lastUsedAt, (d) => d.toISOString()))
        const minute = 60_000
        // another process (or a use whose time was read before) that writes after a later use
        yield* repo.touch(info.id, new Date("2030-01-01T00:10:00Z"), minute)
        yield* repo.touch(info.id, new Date("2030-01-01T00:05:00Z"), minute)
        expect(yield* lastUsed).toEqual(Option.some("2030-01-01T00:10:00.000Z"))
        yield* repo.touch(info.id, new Date("2030-01-01T00:10:59.999Z"), minute)
        expect(yield* lastUsed).toEqual(Option.some("2030-01-01T00:10:00.000Z"))
        yield* repo.touch(info.id, new Date("2030-01-01T00:11:00Z"), minute)
        expect(yield* lastUsed).toEqual(Option.some("2030-01-01T00:11:00.000Z"))
        // an interval of 0 writes every use, still never back
        yield* repo.touch(info.id, new Date("2030-01-01T00:11:00.001Z"), 0)
        yield* repo.touch(info.id, new Date("2030-01-01T00:11:00Z"), 0)
        expect(yield* lastUsed).toEqual(Option.some("2030-01-01T00:11:00.001Z"))
      }).pipe(Effect.provide(env())))

    it.effect("with lastUsedInterval 0 every use is written", () =>
      Effect.gen(function*() {
        const tokens = yield* ApiTokens.ApiTokens
        yield* TestClock.setTime(Date.parse("2030-01-01T00:00:00Z"))
        const alice = yield* seedUser()
        const { info, token } = yield* newToken({ userId: alice.id })
        yield* authenticate(token)
        yield* TestClock.adjust("1 second")
        yield* authenticate(token)
        const used = Option.getOrThrow(yield* tokens.get(info.id)).lastUsedAt
        expect(Option.map(used, (d) => d.toISOString())).toEqual(Option.some("2030-01-01T00:00:01.000Z"))
      }).pipe(Effect.provide(env({ lastUsedInterval: 0 }))))

    it.effect("create checks its input and the owner", () =>
      Effect.gen(function*() {
        const tokens = yield* ApiTokens.ApiTokens
        const alice = yield* seedUser()
        expect(failureTag(yield* Effect.exit(tokens.create({ userId: "424242", name: "x" })))).toBe("UserNotFound")
        expect(failureTag(yield* Effect.exit(tokens.create({ userId: alice.id, name: "" })))).toBe("InvalidInput")
        expect(failureTag(yield* Effect.exit(tokens.create({ userId: alice.id, name: "x", scopes: ["read posts"] }))))
          .toBe("InvalidInput")
        const many = Array.from({ length: 65 }, (_, i) => `s${i}`)
        expect(failureTag(yield* Effect.exit(tokens.create({ userId: alice.id, name: "x", scopes: many })))).toBe("InvalidInput")
        expect(failureTag(yield* Effect.exit(tokens.list("")))).toBe("InvalidInput")
        // what no store keeps as given: PostgreSQL failed the query on a NUL (a store error, read
        // as an outage) and stored a lone surrogate as U+FFFD (a name other than the one answered)
        expect(failureTag(yield* Effect.exit(tokens.list("a\u0000b")))).toBe("InvalidInput")
        expect(failureTag(yield* Effect.exit(tokens.create({ userId: alice.id, name: "tok\ud800x" })))).toBe("InvalidInput")
        expect(yield* tokens.list(alice.id)).toEqual([])
      }).pipe(Effect.provide(env())))

    it.effect("a configured token prefix: tokens start with it, and ea_ tokens are not ours", () =>
      Effect.gen(function*() {
        const alice = yield* seedUser()
        const { info, token } = yield* newToken({ userId: alice.id })
        expect(Redacted.value(token)).toMatch(/^shop_[A-Za-z0-9]{8}_/)
        expect(info.prefix).toBe(`shop_${info.id}`)
        expect((yield* authenticate(token)).id).toBe(alice.id)
        expectNoMatch(yield* Effect.exit(authenticate(`ea_${Redacted.value(token).slice(5)}`)), "unsupported-credentials")
      }).pipe(Effect.provide(env({ tokenPrefix: "shop" }))))

    it.effect("a database failure is a TransportError without the token", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const alice = yield* seedUser()
        const { token } = yield* newToken({ userId: alice.id })
        yield* sql.unsafe(`DROP TABLE ${yield* TokenTable}`)
        const exit = yield* Effect.exit(authenticate(token))
        expect(failureTag(exit)).toBe("TransportError")
        expect(JSON.stringify(exit)).not.toContain(Redacted.value(token).slice(12))
        const tokens = yield* ApiTokens.ApiTokens
        expect(failureTag(yield* Effect.exit(tokens.list(alice.id)))).toBe("ApiTokenStoreError")
      }).pipe(Effect.provide(env())))

    it.effect("through AuthService: a token logs in and a JWT falls through to the next backend", () =>
      Effect.gen(function*() {
        const alice = yield* seedUser()
        const { token } = yield* newToken({ userId: alice.id, scopes: ["deploy"] })
        const auth = yield* AuthService.AuthService
        const ok = yield* auth.authenticate({ token: Redacted.value(token) })
        expect(ok.backend).toBe("api-token")
        expect(ok.user.id).toBe(alice.id)
        expect(ApiTokenBackend.hasScope(ok.user, "deploy")).toBe(true)
        const jwt = yield* auth.authenticate({ token: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln" })
        expect(jwt.backend).toBe("jwt")
        expect(Option.map(yield* auth.getUser("api-token", alice.id), (u) => u.username)).toEqual(Option.some("alice"))
      }).pipe(
        Effect.provide(
          AuthService.layer([ApiTokenBackend.ApiTokenBackend, TestBackend.succeed("jwt", TestBackend.user("bob"))]).pipe(
            Layer.provideMerge(env()),
            Layer.provideMerge(AuthEvents.layer)
          )
        )
      ))

    // The app's own user type, as docs/model-backend.md shows it: a fresh object without the
    // stored password hash, so only the backend's word makes it the store's user.
    const appUser = (stored: UserStore.StoredUser) => ({
      id: stored.id,
      username: stored.username,
      isActive: stored.isActive,
      isSuperuser: stored.isSuperuser
    })
    it.effect("with the app's toUser, a token's user holds its owner's permissions (ModelBackend), through getUser too", () =>
      Effect.gen(function*() {
        const store = yield* UserStore.UserStore
        const alice = yield* seedUser()
        yield* store.grantPermission(alice.id, "blog.change_post")
        const { token } = yield* newToken({ userId: alice.id })
        const auth = yield* AuthService.AuthService
        const byToken = yield* auth.authenticate({ token: Redacted.value(token) })
        expect(byToken.backend).toBe("api-token")
        expect(yield* auth.hasPerm(byToken.user, "blog.change_post")).toBe(true)
        expect([...(yield* auth.getAllPermissions(byToken.user))]).toEqual(["blog.change_post"])
        const fromSession = Option.getOrThrow(yield* auth.getUser("api-token", alice.id))
        expect(yield* auth.hasPerm(fromSession, "blog.change_post")).toBe(true)
        // the same fields from elsewhere (another backend's mapping of claims) are no store user
        expect(yield* auth.hasPerm(appUser(alice), "blog.change_post")).toBe(false)
      }).pipe(
        Effect.provide(
          AuthService.layer([ApiTokenBackend.ApiTokenBackend, ModelBackend.ModelBackend]).pipe(
            Layer.provideMerge(ModelBackend.layer({ toUser: appUser })),
            Layer.provideMerge(PasswordHasher.layerTest),
            Layer.provideMerge(env({ toUser: appUser })),
            Layer.provideMerge(AuthEvents.layer)
          )
        )
      ))
  })

suite("SQLite", sqliteEnv)
suite("PostgreSQL", pgEnv, Postgres.missing)

describe("ApiTokenBackend on SQLite: tables and configuration", () => {
  it.effect("uses its own migrations table; the table prefix is configurable", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const names = (yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
        .map((t) => t.name)
      expect(names).toEqual(expect.arrayContaining([
        "auth_api_token",
        "effect_auth_api_token_migrations",
        "shop_api_token",
        "effect_shop_api_token_migrations",
        "effect_auth_user_migrations"
      ]))
      expect(names).not.toContain("effect_sql_migrations")
    }).pipe(
      Effect.provide(
        Layer.mergeAll(ApiTokenBackend.layer(), ApiTokenBackend.layer({ tablePrefix: "shop_" })).pipe(
          Layer.provideMerge(SqlUserStore.layerSqlite({ filename: ":memory:" }))
        )
      )
    ))

  it.effect("bad prefixes or intervals are an AuthConfigError when the layer is built", () =>
    Effect.gen(function*() {
      const bad: ReadonlyArray<ApiTokenBackend.LayerOptions> = [
        { tokenPrefix: "EA" },
        { tokenPrefix: "e_a" },
        { tablePrefix: "x; DROP" },
        { migrationsTable: "Bad-Name" },
        { tokenPrefix: ["ea"] as never },
        { lastUsedInterval: "every now and then" as never },
        { timeout: "soon" as never },
        { timeout: 0 }
      ]
      for (const options of bad) {
        const layer = ApiTokenBackend.layer(options).pipe(Layer.provide(SqlUserStore.layerSqlite({ filename: ":memory:" })))
        const exit = yield* Effect.exit(Layer.build(layer).pipe(Effect.scoped))
        expect(failureTag(exit)).toBe("AuthConfigError")
      }
    }))
})

describe("ApiTokens on its own, and ApiTokenBackend.layerConfig", () => {
  it.effect("ApiTokens.layer manages tokens without the backend; ApiTokenBackend on the same tables accepts them", () =>
    Effect.gen(function*() {
      const alice = yield* seedUser()
      const tokens = yield* ApiTokens.ApiTokens
      const { info, token } = yield* tokens.create({ userId: alice.id, name: "cli" })
      expect(Option.map(yield* tokens.get(info.id), (t) => t.name)).toEqual(Option.some("cli"))
      const backend = yield* ApiTokenBackend.make()
      expect((yield* backend.authenticate(creds(token), undefined)).id).toBe(alice.id)
      yield* tokens.revoke(info.id)
      expectNoMatch(yield* Effect.exit(backend.authenticate(creds(token), undefined)), "invalid-credentials")
    }).pipe(Effect.provide(ApiTokens.layer().pipe(Layer.provideMerge(SqlUserStore.layerSqlite({ filename: ":memory:" }))))))

  it.effect("the old names in ApiTokenBackend are the ApiTokens module's", () =>
    Effect.sync(() => {
      expect(ApiTokenBackend.ApiTokens).toBe(ApiTokens.ApiTokens)
      expect(ApiTokenBackend.ApiTokenStoreError).toBe(ApiTokens.ApiTokenStoreError)
      expect(ApiTokenBackend.tables).toBe(ApiTokens.tables)
    }))

  it.effect("layerConfig reads the token prefix and the last-use interval from Config", () =>
    Effect.gen(function*() {
      const alice = yield* seedUser()
      const { token } = yield* newToken({ userId: alice.id })
      expect(Redacted.value(token)).toMatch(/^shop_[A-Za-z0-9]{8}_/)
      expect((yield* authenticate(token)).id).toBe(alice.id)
      expect((yield* ApiTokenBackend.ApiTokenBackend).id).toBe("tokens")
    }).pipe(
      Effect.provide(
        ApiTokenBackend.layerConfig({
          id: Config.string("API_TOKEN_BACKEND_ID"),
          tokenPrefix: Config.string("API_TOKEN_PREFIX"),
          lastUsedInterval: Config.duration("API_TOKEN_LAST_USED_INTERVAL")
        }).pipe(Layer.provideMerge(SqlUserStore.layerSqlite({ filename: ":memory:" })))
      ),
      Effect.withConfigProvider(
        ConfigProvider.fromMap(
          new Map([
            ["API_TOKEN_BACKEND_ID", "tokens"],
            ["API_TOKEN_PREFIX", "shop"],
            ["API_TOKEN_LAST_USED_INTERVAL", "5 minutes"]
          ])
        )
      )
    ))

  it.effect("layerConfig: a missing or malformed value is a ConfigError when the layer is built", () =>
    Effect.gen(function*() {
      const layer = ApiTokenBackend.layerConfig({ lastUsedInterval: Config.duration("API_TOKEN_LAST_USED_INTERVAL") }).pipe(
        Layer.provide(SqlUserStore.layerSqlite({ filename: ":memory:" }))
      )
      const build = (entries: ReadonlyArray<readonly [string, string]>) =>
        Effect.flip(Effect.withConfigProvider(Layer.build(layer).pipe(Effect.scoped), ConfigProvider.fromMap(new Map(entries))))
      expect(ConfigError.isConfigError(yield* build([]))).toBe(true)
      expect(ConfigError.isConfigError(yield* build([["API_TOKEN_LAST_USED_INTERVAL", "every now and then"]]))).toBe(true)
    }))
})

describe.skipIf(Postgres.missing)("ApiTokenBackend on PostgreSQL: a database that goes away", () => {
  // The backend and its stores behind a proxy that can be cut or frozen, alice and a token of
  // hers made; `done` closes the layer and drops the tables.
  const behindProxy = (timeout?: Duration.DurationInput) =>
    Effect.gen(function*() {
      const prefix = uniquePrefix()
      const proxy = yield* Postgres.proxy
      const scope = yield* Scope.make()
      const build = (options: { readonly timeout?: Duration.DurationInput }) =>
        Layer.buildWithScope(
          ApiTokenBackend.layer({ tablePrefix: prefix, ...options }).pipe(
            Layer.provideMerge(SqlUserStore.layerPg({ url: proxy.url, tablePrefix: prefix, connectTimeout: "2 seconds", ...options }))
          ),
          scope
        )
      // alice and her token are made with the default timeout: `timeout` is for the calls under
      // test, not for a set-up write on a loaded machine
      const setup = yield* build({})
      const alice = yield* Context.get(setup, UserStore.UserStore).create({ username: "alice" })
      const { info, token } = yield* Context.get(setup, ApiTokens.ApiTokens).create({ userId: alice.id, name: "t" })
      const ctx = timeout === undefined ? setup : yield* build({ timeout })
      const tokens = Context.get(ctx, ApiTokens.ApiTokens)
      const backend = Context.get(ctx, ApiTokenBackend.ApiTokenBackend)
      const done = Effect.zipRight(Scope.close(scope, Exit.void), Postgres.dropDirect(dropTables(prefix)))
      return { proxy, tokens, backend, alice, info, token, done }
    })

  it.live("is a TransportError for authenticate and an ApiTokenStoreError for the service, not a defect", () =>
    Effect.gen(function*() {
      const { alice, backend, done, info, proxy, token, tokens } = yield* behindProxy()
      expect((yield* backend.authenticate(creds(token), undefined)).id).toBe(alice.id)
      proxy.cut()
      const exit = yield* Effect.exit(backend.authenticate(creds(token), undefined))
      expect(failureTag(exit)).toBe("TransportError")
      expect(JSON.stringify(exit)).not.toContain(Redacted.value(token).slice(12))
      expect(failureTag(yield* Effect.exit(backend.getUser(alice.id)))).toBe("TransportError")
      expect(failureTag(yield* Effect.exit(tokens.list(alice.id)))).toBe("ApiTokenStoreError")
      expect(failureTag(yield* Effect.exit(tokens.revoke(info.id)))).toBe("ApiTokenStoreError")
      expect(failureTag(yield* Effect.exit(tokens.create({ userId: alice.id, name: "u" })))).toBe("ApiTokenStoreError")
      yield* done
    }).pipe(Effect.scoped))

  it.live("a database whose connections freeze (no reset) is an error after the timeout, not a hang", () =>
    Effect.gen(function*() {
      const { alice, backend, done, info, proxy, token, tokens } = yield* behindProxy("300 millis")
      proxy.freeze()
      const exits = yield* Effect.all([
        Effect.exit(backend.authenticate(creds(token), undefined)),
        Effect.exit(tokens.get(info.id)),
        Effect.exit(tokens.list(alice.id)),
        Effect.exit(tokens.revoke(info.id))
      ], { concurrency: "unbounded" }).pipe(
        // (before each operation had a bound, these never ended)
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("still waiting after 10 s") })
      )
      expect(exits.map(failureTag)).toEqual(["TransportError", "ApiTokenStoreError", "ApiTokenStoreError", "ApiTokenStoreError"])
      expect(String((exits[1] as any).cause.error.cause)).toContain("did not answer within 300ms")
      proxy.cut()
      yield* done
    }).pipe(Effect.scoped), 20_000)
})
