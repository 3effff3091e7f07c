/**
 * What a SQLite file locked by another process costs the rest of this process: the longest
 * event-loop stall while one write waits for the lock, and the write's outcome.
 *
 *   npx tsx bench/sqlite-busy.ts            # ROUNDS=3, lock held 1,000 ms
 *
 * A child process takes the write lock (`BEGIN IMMEDIATE`) and holds it `HOLD_MS`; meanwhile this
 * process writes through
 * - `driver default`: `@effect/sql-sqlite-node` as it comes (better-sqlite3 waits up to 5 s for
 *   the lock inside the call, holding the event loop);
 * - `SqlUserStore.layerSqlite`: the driver's wait capped at 10 ms per try, retried asynchronously
 *   up to `busyTimeout` (5 s).
 * The write is `UserStore.create` in both. The stall is the longest gap between the ticks of a
 * 5 ms interval timer while the write runs.
 */
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as SqlUserStore from "../src/SqlUserStore.js"
import * as UserStore from "../src/UserStore.js"

const rounds = Number(process.env.ROUNDS ?? 3)
const holdMs = Number(process.env.HOLD_MS ?? 1000)

const holder = (filename: string) =>
  new Promise<{ readonly done: Promise<void> }>((resolve, reject) => {
    const child = spawn(process.execPath, [
      "-e",
      `const D = require("better-sqlite3"); const db = new D(${JSON.stringify(filename)});
       db.exec("BEGIN IMMEDIATE"); console.log("locked");
       setTimeout(() => { db.exec("COMMIT"); db.close(); }, ${holdMs});`
    ], { stdio: ["ignore", "pipe", "inherit"] })
    const done = new Promise<void>((r) => child.on("exit", () => r()))
    child.stdout.once("data", () => resolve({ done }))
    child.once("error", reject)
  })

const measure = async (name: string, layer: (filename: string) => Layer.Layer<UserStore.UserStore, unknown>) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-auth-busy-bench-"))
  const filename = path.join(dir, "db.sqlite")
  return Effect.runPromise(
    Effect.gen(function*() {
      const store = yield* UserStore.UserStore
      const lock = yield* Effect.promise(() => holder(filename))
      let last = performance.now()
      let stall = 0
      const ticker = setInterval(() => {
        const now = performance.now()
        stall = Math.max(stall, now - last)
        last = now
      }, 5)
      const started = performance.now()
      const outcome = yield* Effect.either(store.create({ username: `u${Math.random().toString(36).slice(2)}` }))
      const took = performance.now() - started
      clearInterval(ticker)
      stall = Math.max(stall, performance.now() - last)
      yield* Effect.promise(() => lock.done)
      fs.rmSync(dir, { recursive: true, force: true })
      return { name, stallMs: stall, took, ok: outcome._tag === "Right" }
    }).pipe(Effect.provide(layer(filename)), Effect.scoped)
  )
}

const cases = [
  ["driver default", (filename: string) => SqlUserStore.layer().pipe(Layer.provide(SqliteClient.layer({ filename })))],
  ["SqlUserStore.layerSqlite", (filename: string) => SqlUserStore.layerSqlite({ filename })]
] as const

const rows: Array<Awaited<ReturnType<typeof measure>>> = []
for (let round = 0; round < rounds; round++) {
  for (const [name, layer] of round % 2 === 0 ? cases : [...cases].reverse()) rows.push(await measure(name, layer))
}
console.log(`\nOne write while another process holds the lock for ${holdMs} ms (${rounds} rounds, load ${os.loadavg()[0]!.toFixed(2)})`)
console.log("| case | longest event-loop stall (ms) | the write took (ms) | the write |")
console.log("|---|---|---|---|")
for (const row of rows) console.log(`| ${row.name} | ${row.stallMs.toFixed(0)} | ${row.took.toFixed(0)} | ${row.ok ? "succeeded" : "failed"} |`)
