import { describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as UserStore from "../src/UserStore.js"
import { failureTag, userStoreSuite } from "./utils/userStoreSuite.js"
import { withBug } from "./utils/buggyClient.js"

userStoreSuite("SQLite (:memory:)", { layer: () => SqlUserStore.layerSqlite({ filename: ":memory:" }) })

describe("SqlUserStore on SQLite", () => {
  const dir = mkdtempSync(join(tmpdir(), "effect-auth-users-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  // The error's message named the failing column only, but it kept the ParseError as its cause,
  // and Effect's loggers (renderErrorCause) and JSON.stringify render that: the hash found there.
  it.effect("a row that does not decode fails with an error whose cause, logged or serialised, holds no value of the row", () =>
    Effect.gen(function*() {
      const hash = "pbkdf2_sha256$1000$SALTsaltSALTsalt$SECRETHASHVALUE0123456789abcdefghijklmnopq="
      const store = yield* UserStore.UserStore
      yield* store.create({ username: "alice", passwordHash: hash })
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`UPDATE auth_user SET password = CAST('${hash}' AS BLOB)`)
      const exit = yield* Effect.exit(store.findByUsername("alice"))
      expect(failureTag(exit)).toBe("UserStoreError")
      if (Exit.isFailure(exit)) {
        const rendered = [
          Cause.pretty(exit.cause, { renderErrorCause: true }),
          JSON.stringify(Cause.squash(exit.cause)),
          String(Cause.squash(exit.cause))
        ]
        for (const text of rendered) expect(text).not.toContain("SECRETHASHVALUE")
        expect(rendered[0]).toContain("a row does not decode at \"password\"")
      }
    }).pipe(Effect.provide(SqlUserStore.layer().pipe(Layer.provideMerge(SqliteClient.layer({ filename: ":memory:" }))))))

  // SQLite keeps a transaction open after a COMMIT that fails (here a deferred foreign key, as
  // Django declares its own, violated by deleting a user another table still names), and
  // @effect/sql handed the connection back as it was: every later write of the process ran inside
  // that transaction, uncommitted, while other connections found the database locked, until a
  // later transaction's ROLLBACK dropped them.
  it.effect("a transaction whose COMMIT fails is rolled back: later writes are committed, other connections are not locked out", () =>
    Effect.gen(function*() {
      const filename = join(dir, "commit-fails.db")
      const store = yield* UserStore.UserStore
      const sql = yield* SqlClient.SqlClient
      const ann = yield* store.create({ username: "ann" })
      const bob = yield* store.create({ username: "bob" })
      yield* sql.unsafe(
        "CREATE TABLE audit_log (id integer PRIMARY KEY, user_id integer NOT NULL REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED)"
      )
      yield* sql.unsafe(`INSERT INTO audit_log (user_id) VALUES (${Number(ann.id)})`)
      expect(failureTag(yield* Effect.exit(store.delete!(ann.id)))).toBe("UserStoreError")
      yield* store.updateProfile(bob.id, { email: "bob@new.example" })
      // another connection to the same file sees the write, and may write itself
      const other = yield* Effect.provide(
        Effect.gen(function*() {
          const otherSql = yield* SqlClient.SqlClient
          const rows = yield* otherSql<{ email: string }>`SELECT email FROM auth_user WHERE id = ${Number(bob.id)}`
          yield* otherSql`UPDATE auth_user SET first_name = 'Ann' WHERE id = ${Number(ann.id)}`
          return rows.map((row) => row.email)
        }),
        SqliteClient.layer({ filename })
      )
      expect(other).toEqual(["bob@new.example"])
      expect(Option.map(yield* store.findById(ann.id), (user) => user.firstName)).toEqual(Option.some("Ann"))
    }).pipe(
      Effect.provide(SqlUserStore.layer().pipe(Layer.provideMerge(SqliteClient.layer({ filename: join(dir, "commit-fails.db") }))))
    ))

  it.effect("keeps users in a file across restarts and migrates once", () =>
    Effect.gen(function*() {
      const filename = join(dir, "users.db")
      const layer = () => SqlUserStore.layerSqlite({ filename })
      const created = yield* Effect.flatMap(UserStore.UserStore, (s) => s.create({ username: "alice" })).pipe(
        Effect.provide(layer())
      )
      const found = yield* Effect.flatMap(UserStore.UserStore, (s) => s.findByUsername("alice")).pipe(
        Effect.provide(layer())
      )
      expect(Option.getOrThrow(found)).toEqual(created)
      const migrations = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ migration_id: number }>`SELECT migration_id FROM effect_auth_user_migrations`).pipe(
        Effect.provide(layer())
      )
      expect(migrations.map((m) => m.migration_id)).toEqual([1])
    }))

  it.effect("uses its own migrations table and table prefix, so stores share a database", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const a = yield* Layer.build(SqlUserStore.layer()).pipe(Effect.map(Context.get(UserStore.UserStore)))
      const b = yield* Layer.build(SqlUserStore.layer({ tablePrefix: "shop_" })).pipe(Effect.map(Context.get(UserStore.UserStore)))
      yield* a.create({ username: "alice" })
      yield* b.create({ username: "alice" })
      expect((yield* a.list()).length).toBe(1)
      expect((yield* b.list()).length).toBe(1)
      const tables = (yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
        .map((t) => t.name)
      expect(tables).toEqual(expect.arrayContaining([
        "auth_group",
        "auth_group_permissions",
        "auth_permission",
        "auth_user",
        "auth_user_groups",
        "auth_user_user_permissions",
        "effect_auth_user_migrations",
        "effect_shop_user_migrations",
        "shop_user"
      ]))
      expect(tables).not.toContain("effect_sql_migrations")
    }).pipe(Effect.scoped, Effect.provide(SqlUserStore.layerSqlite({ filename: ":memory:", migrate: false }))))

  it.effect("reads rows Django wrote (naive UTC timestamps, 0/1 booleans); a bad row is a UserStoreError", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* UserStore.UserStore
      yield* sql`INSERT INTO auth_user
        (password, last_login, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
        VALUES ('pbkdf2_sha256$1$s$h', '2025-01-02 03:04:05.678901', 1, 'django', 'D', 'J', 'd@example.com', 0, 1,
          '2024-05-01 12:00:00.123456')`
      const user = Option.getOrThrow(yield* store.findByUsername("django"))
      expect(user).toMatchObject({ isSuperuser: true, isStaff: false, isActive: true, firstName: "D" })
      expect(user.dateJoined.toISOString()).toBe("2024-05-01T12:00:00.123Z")
      expect(Option.getOrThrow(user.lastLogin).toISOString()).toBe("2025-01-02T03:04:05.678Z")
      yield* sql`INSERT INTO auth_user
        (password, last_login, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
        VALUES ('x', NULL, 0, 'broken', '', '', '', 0, 1, 'not a date')`
      const exit = yield* Effect.exit(store.findByUsername("broken"))
      expect(failureTag(exit)).toBe("UserStoreError")
      // The message names the column, never the value: a password column may hold a hash.
      const error = yield* Effect.flip(store.findByUsername("broken"))
      expect(error.message).toBe("user store: findByUsername failed: a row does not decode at \"date_joined\"")
    }).pipe(Effect.provide(SqlUserStore.layerSqlite({ filename: ":memory:" }))))

  it.effect("reads its options from Config", () =>
    Effect.gen(function*() {
      const store = yield* UserStore.UserStore
      yield* store.create({ username: "alice" })
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ username: string }>`SELECT username FROM cfg_user`
      expect(rows.map((r) => r.username)).toEqual(["alice"])
    }).pipe(
      Effect.provide(SqlUserStore.layerSqliteConfig({
        filename: Config.string("USERS_DB"),
        tablePrefix: Config.string("USERS_PREFIX")
      })),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["USERS_DB", ":memory:"], ["USERS_PREFIX", "cfg_"]])))
    ))

  it.effect("rejects a bad table prefix when the layer is built", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.provide(UserStore.UserStore, SqlUserStore.layerSqlite({ filename: ":memory:", tablePrefix: "x; drop" }))
      )
      expect(error._tag).toBe("AuthConfigError")
    }))

  it.effect("a bug is a defect, not a UserStoreError (which HTTP reports as 503)", () =>
    Effect.gen(function*() {
      const filename = join(dir, "bug.db")
      yield* Effect.flatMap(UserStore.UserStore, (s) => s.create({ username: "alice" })).pipe(
        Effect.provide(SqlUserStore.layerSqlite({ filename }))
      )
      // statements that die stand for any bug between the driver and the store's caller
      const buggy = withBug(SqliteClient.layer({ filename }))
      const exit = yield* Effect.exit(
        Effect.flatMap(UserStore.UserStore, (s) => s.findByUsername("alice")).pipe(
          Effect.provide(SqlUserStore.layer({ migrate: false }).pipe(Layer.provide(buggy)))
        )
      )
      expect(failureTag(exit)).toBe("defect")
    }))

  it.effect("a closed database is a UserStoreError, not a defect", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(SqlUserStore.layerSqlite({ filename: ":memory:" }), scope)
      const store = Context.get(ctx, UserStore.UserStore)
      const user = yield* store.create({ username: "alice" })
      yield* Scope.close(scope, Exit.void)
      const exits = yield* Effect.all([
        Effect.exit(store.findByUsername("alice")),
        Effect.exit(store.create({ username: "bob" })),
        Effect.exit(store.withPerm("a.b")),
        // Last: on a closed database @effect/sql-sqlite-node 0.53 keeps its transaction permit
        // after a failed BEGIN, so any later call would wait forever.
        Effect.exit(store.setGroups(user.id, ["g"]))
      ])
      // A failure (not a defect) with a UserStoreError
      expect(exits.map(failureTag)).toEqual(exits.map(() => "UserStoreError"))
    }))
})

describe("SqlUserStore.layerSqlite: a file that cannot be opened", () => {
  it.effect("is a typed UserStoreError when the layer is built, not a defect", () =>
    Effect.gen(function*() {
      const layer = SqlUserStore.layerSqlite({ filename: "/nonexistent-dir/effect-auth/users.sqlite" })
      const exit = yield* Effect.exit(Layer.build(layer).pipe(Effect.scoped))
      expect(failureTag(exit)).toBe("UserStoreError")
    }))
})
