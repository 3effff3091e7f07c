// A SQLite file locked by another connection (another process, a Django worker): the stores wait
// for it asynchronously, so the rest of the process keeps running, and give up with a typed error
// after `busyTimeout`.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import * as SqlSessionStore from "../src/SqlSessionStore.js"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as SessionStore from "../src/SessionStore.js"
import * as UserStore from "../src/UserStore.js"

// better-sqlite3 (the driver under @effect/sql-sqlite-node) ships no types; two calls are used.
const Database = createRequire(import.meta.url)("better-sqlite3") as new(filename: string) => {
  exec(sql: string): void
  close(): void
}

const tempFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "effect-auth-busy-")), "app.sqlite")
// The test's folder goes when the test ends, whatever the outcome.
const removeFolderOf = (filename: string) => Effect.sync(() => fs.rmSync(path.dirname(filename), { recursive: true, force: true }))

/** Another connection holding the write lock (as another process would) until `release`. */
const holdWriteLock = (filename: string) => {
  const other = new Database(filename)
  other.exec("BEGIN IMMEDIATE")
  return {
    release: () => {
      other.exec("COMMIT")
      other.close()
    }
  }
}

describe("SQLite locked by another connection", () => {
  it.live("a write waits without blocking the process, and succeeds once the lock is released", () => {
    const filename = tempFile()
    const log: Array<string> = []
    return Effect.gen(function*() {
      const store = yield* UserStore.UserStore
      const lock = holdWriteLock(filename)
      const write = yield* Effect.fork(Effect.tap(store.create({ username: "alice" }), () => Effect.sync(() => log.push("created"))))
      // This fiber runs while the write is waiting: the event loop is free.
      yield* Effect.sleep("100 millis")
      log.push("released")
      lock.release()
      const created = yield* Fiber.join(write)
      expect(created.username).toBe("alice")
      expect(log).toEqual(["released", "created"])
    }).pipe(Effect.provide(SqlUserStore.layerSqlite({ filename, busyTimeout: "3 seconds" })), Effect.ensuring(removeFolderOf(filename)))
  })

  it.live("a lock held past busyTimeout is a typed store error, while the process keeps running", () => {
    const filename = tempFile()
    return Effect.gen(function*() {
      const store = yield* UserStore.UserStore
      const sessions = yield* SessionStore.SessionStore
      const lock = holdWriteLock(filename)
      let ticks = 0
      const ticker = yield* Effect.fork(Effect.forever(Effect.zipRight(Effect.sleep("10 millis"), Effect.sync(() => ticks++))))
      const users = yield* Effect.exit(store.create({ username: "bob" }))
      const session = yield* Effect.exit(
        sessions.set("k", { userId: "1", backendId: "model", authHash: "", csrfToken: "t", createdAt: 0, lastSeenAt: 0, expiresAt: Date.now() + 60_000 }, Date.now())
      )
      yield* Fiber.interrupt(ticker)
      lock.release()
      expect(Exit.isFailure(users) && users.cause._tag === "Fail" && users.cause.error._tag).toBe("UserStoreError")
      expect(Exit.isFailure(session) && session.cause._tag === "Fail" && session.cause.error._tag).toBe("SessionStoreError")
      // 300 ms of waiting (user store) and 300 ms (session store, its timeout): the ticker ran throughout
      expect(ticks).toBeGreaterThan(5)
      expect(Exit.isSuccess(yield* Effect.exit(store.create({ username: "bob" })))).toBe(true)
    }).pipe(
      Effect.provide(
        SqlSessionStore.layer({ timeout: "300 millis" }).pipe(
          Layer.provideMerge(SqlUserStore.layerSqlite({ filename, busyTimeout: "300 millis" }))
        )
      ),
      Effect.ensuring(removeFolderOf(filename))
    )
  })
})
