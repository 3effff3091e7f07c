/**
 * vitest globalSetup: the servers the test files talk to, found or started once per run.
 *
 * - PostgreSQL: with DATABASE_URL, a fresh database `effect_auth_<pid>_<random>` on that server,
 *   dropped at the end; without it, a throwaway server from the system's binaries (initdb +
 *   postgres on a free 127.0.0.1 port, its files and socket in a temp dir), stopped at the end.
 * - Redis: REDIS_URL, or a throwaway `redis-server` on a free port; either way a key prefix of
 *   this run's own (deleted at the end), so two runs on one server never meet.
 * - slapd: only located here; the LDAP test files start their own throwaway servers.
 *
 * What cannot be had is skipped with one loud line naming what to install; with
 * EFFECT_AUTH_REQUIRE_SERVICES=1 (CI) that is an error instead. The test files read the result
 * through `inject("services")` (test/utils/postgres.ts, redis.ts, slapd.ts).
 *
 * Overrides, mostly to simulate a machine without a server: EFFECT_AUTH_PG_BIN (directory holding
 * initdb and postgres), EFFECT_AUTH_REDIS_BIN (the redis-server binary), SLAPD_BIN (the slapd
 * binary). A path that does not exist means "not installed".
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { Redis } from "ioredis"
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { TestProject } from "vitest/node"
import { freePort } from "../utils/freePort.js"

export interface Services {
  /** URL of this run's database, or null: the PostgreSQL suites are skipped. */
  readonly postgres: string | null
  /** This run's Redis: its URL and the key prefix every key of the run starts with; or null. */
  readonly redis: { readonly url: string; readonly keyPrefix: string } | null
  /** The slapd binary the LDAP test files start, or null. */
  readonly slapd: string | null
}

declare module "vitest" {
  export interface ProvidedContext {
    services: Services
  }
}

const runId = `${process.pid}_${randomBytes(4).toString("hex")}`

// --- small process helpers ------------------------------------------------------------------------

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

/** `name` on PATH, else in one of `extra`. */
const which = (name: string, extra: ReadonlyArray<string> = []): string | undefined =>
  [...(process.env.PATH ?? "").split(path.delimiter), ...extra]
    .filter((dir) => dir !== "")
    .map((dir) => path.join(dir, name))
    .find(isExecutable)


const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Like `delay`, but never keeps the process alive (the grace period of a stop). */
const grace = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref())

interface Started {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<void>
}

const start = (bin: string, args: ReadonlyArray<string>, options: { uid?: number; gid?: number } = {}): Started => {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], ...options })
  let output = ""
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-4_000)
  }
  child.stdout?.on("data", collect)
  child.stderr?.on("data", collect)
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve())
    child.once("error", (error) => {
      output += String(error)
      resolve()
    })
  })
  // Should vitest die without running the teardown, do not leave the server behind.
  const onExit = () => child.kill("SIGKILL")
  process.once("exit", onExit)
  void exited.then(() => process.removeListener("exit", onExit))
  return { child, output: () => output, exited }
}

const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

/** Stops our own child by its pid: `signal`, then SIGKILL after 10 s. */
const stop = async ({ child, exited }: Started, signal: NodeJS.Signals): Promise<void> => {
  if (hasExited(child)) return
  child.kill(signal)
  const done = await Promise.race([exited.then(() => true), grace(10_000).then(() => false)])
  if (!done) {
    child.kill("SIGKILL")
    await exited
  }
}

const run = (bin: string, args: ReadonlyArray<string>, options: { uid?: number; gid?: number } = {}) =>
  new Promise<void>((resolve, reject) => {
    const started = start(bin, args, options)
    void started.exited.then(() =>
      started.child.exitCode === 0
        ? resolve()
        : reject(new Error(`${path.basename(bin)} failed (${started.child.exitCode ?? started.child.signalCode}): ${started.output().trim()}`))
    )
  })

/** Polls `ready` every 100 ms until it answers true; fails if the server exits or 30 s pass. */
const waitFor = async (name: string, server: Started, ready: () => Promise<boolean>): Promise<void> => {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (hasExited(server.child)) throw new Error(`${name} exited early: ${server.output().trim()}`)
    if (await ready()) return
    await delay(100)
  }
  throw new Error(`${name} did not answer within 30 s: ${server.output().trim()}`)
}

const makeTempDir = (tag: string) => fs.mkdtempSync(path.join(os.tmpdir(), `effect-auth-${tag}-`))

// --- PostgreSQL -----------------------------------------------------------------------------------

const sqlOn = <A>(url: string, effect: Effect.Effect<A, unknown, SqlClient.SqlClient>): Promise<A> =>
  Effect.runPromise(
    Effect.provide(effect, PgClient.layer({ url: Redacted.make(url), maxConnections: 1, connectTimeout: "5 seconds" }))
  )

const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** Creates this run's database on the server at `serverUrl`; answers its URL and how to drop it. */
const createDatabase = async (serverUrl: string) => {
  const name = `effect_auth_${runId}`
  // The name is ours ([a-z0-9_]), so quoting it by hand is safe.
  await sqlOn(serverUrl, Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`CREATE DATABASE "${name}"`)))
  const drop = (): Promise<void> =>
    sqlOn(
      serverUrl,
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        // FORCE (PostgreSQL 13+) ends connections a test left open; older servers get the plain form.
        sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).pipe(
          Effect.orElse(() => sql.unsafe(`DROP DATABASE IF EXISTS "${name}"`)),
          Effect.asVoid
        ))
    )
  return { url: withDatabase(serverUrl, name), name, drop }
}

/** The directory with initdb and postgres: EFFECT_AUTH_PG_BIN, PATH, or Debian's /usr/lib/postgresql/<v>/bin. */
const postgresBinDir = (): string | undefined => {
  const holds = (dir: string) => isExecutable(path.join(dir, "initdb")) && isExecutable(path.join(dir, "postgres"))
  const override = process.env.EFFECT_AUTH_PG_BIN
  if (override !== undefined && override !== "") return holds(override) ? override : undefined
  const onPath = which("initdb")
  if (onPath !== undefined && holds(path.dirname(onPath))) return path.dirname(onPath)
  const debian = "/usr/lib/postgresql"
  const versions = fs.existsSync(debian) ? fs.readdirSync(debian).sort((a, b) => Number(b) - Number(a)) : []
  return [...versions.map((v) => path.join(debian, v, "bin")), "/usr/local/pgsql/bin"].find(holds)
}

/** initdb and postgres refuse to run as root: as root, run them as `postgres` (or `nobody`). */
const unprivileged = (): { uid: number; gid: number } | {} => {
  if (process.getuid?.() !== 0) return {}
  const passwd = fs.existsSync("/etc/passwd") ? fs.readFileSync("/etc/passwd", "utf8").split("\n") : []
  for (const name of ["postgres", "nobody"]) {
    const fields = passwd.find((line) => line.startsWith(`${name}:`))?.split(":")
    if (fields !== undefined) return { uid: Number(fields[2]), gid: Number(fields[3]) }
  }
  return { uid: 65534, gid: 65534 }
}

const startPostgres = async (binDir: string) => {
  const dir = makeTempDir("pg")
  const user = unprivileged()
  if ("uid" in user) fs.chownSync(dir, user.uid, user.gid)
  const data = path.join(dir, "data")
  try {
    await run(path.join(binDir, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], user)
    let lastError: unknown
    // Another process may take the port between freePort() and postgres's bind: try again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort()
      const server = start(path.join(binDir, "postgres"), [
        "-D", data, "-p", String(port), "-h", "127.0.0.1", "-k", dir,
        // a throwaway server: durability buys nothing, and the suites open many pools at once
        "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        "-c", "max_connections=300"
      ], user)
      const url = `postgres://postgres@127.0.0.1:${port}/postgres`
      try {
        await waitFor("postgres", server, () =>
          sqlOn(url, Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1`)).then(() => true, () => false))
      } catch (error) {
        lastError = error
        await stop(server, "SIGQUIT")
        continue
      }
      return {
        url,
        port,
        // SIGINT: PostgreSQL's fast shutdown, to our own postmaster's pid only
        stop: async () => {
          await stop(server, "SIGINT")
          fs.rmSync(dir, { recursive: true, force: true })
        }
      }
    }
    throw lastError
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw error
  }
}

// --- Redis ----------------------------------------------------------------------------------------

const redisBin = (): string | undefined => {
  const override = process.env.EFFECT_AUTH_REDIS_BIN
  if (override !== undefined && override !== "") return isExecutable(override) ? override : undefined
  return which("redis-server", ["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"])
}

const ping = async (url: string): Promise<boolean> => {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null })
  client.on("error", () => undefined)
  try {
    await client.connect()
    return (await client.ping()) === "PONG"
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

const deleteKeys = async (url: string, prefix: string): Promise<void> => {
  const client = new Redis(url, { maxRetriesPerRequest: 1 })
  client.on("error", () => undefined)
  try {
    let cursor = "0"
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      if (keys.length > 0) await client.del(...keys)
      cursor = next
    } while (cursor !== "0")
  } finally {
    client.disconnect()
  }
}

const startRedis = async (bin: string) => {
  const dir = makeTempDir("redis")
  try {
    let lastError: unknown
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort()
      const server = start(bin, [
        "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir
      ])
      const url = `redis://127.0.0.1:${port}`
      try {
        await waitFor("redis-server", server, () => ping(url))
      } catch (error) {
        lastError = error
        await stop(server, "SIGTERM")
        continue
      }
      return {
        url,
        stop: async () => {
          await stop(server, "SIGTERM")
          fs.rmSync(dir, { recursive: true, force: true })
        }
      }
    }
    throw lastError
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw error
  }
}

// --- slapd ----------------------------------------------------------------------------------------

const slapdBin = (): string | undefined => {
  const override = process.env.SLAPD_BIN
  if (override !== undefined && override !== "") return isExecutable(override) ? override : undefined
  return which("slapd", ["/usr/sbin", "/usr/local/sbin", "/usr/libexec", "/opt/homebrew/opt/openldap/libexec"])
}

// --- setup and teardown ---------------------------------------------------------------------------

type Teardown = () => Promise<void>

const say = (line: string) => process.stderr.write(`${line}\n`)

export default async function setup(project: TestProject): Promise<Teardown> {
  const teardowns: Array<Teardown> = []
  const skipped: Array<string> = []
  const teardown = async () => {
    for (const step of teardowns.reverse()) await step().catch((error) => say(`services teardown: ${String(error)}`))
  }

  // PostgreSQL and Redis start side by side: each takes a second or more.
  const postgres = (async (): Promise<string | null> => {
    const configured = process.env.DATABASE_URL
    if (configured !== undefined && configured !== "") {
      // The user named this server: failing to use it is an error, not a skip.
      const database = await createDatabase(configured)
      teardowns.push(database.drop)
      say(`services: PostgreSQL from DATABASE_URL, database ${database.name} (dropped at the end)`)
      return database.url
    }
    const binDir = postgresBinDir()
    if (binDir === undefined) {
      skipped.push("SKIPPED PostgreSQL suites: install PostgreSQL (initdb, postgres; Debian: apt-get install postgresql) or set DATABASE_URL")
      return null
    }
    const server = await startPostgres(binDir).catch((error) => {
      skipped.push(`SKIPPED PostgreSQL suites: PostgreSQL from ${binDir} did not start (${String(error)}); set DATABASE_URL instead`)
      return undefined
    })
    if (server === undefined) return null
    teardowns.push(server.stop)
    const database = await createDatabase(server.url)
    say(`services: PostgreSQL ${binDir} on 127.0.0.1:${server.port} (stopped at the end)`)
    return database.url
  })()

  const redis = (async (): Promise<Services["redis"]> => {
    const keyPrefix = `effect-auth-test:${runId}:`
    const configured = process.env.REDIS_URL
    if (configured !== undefined && configured !== "") {
      if (!(await ping(configured))) throw new Error(`REDIS_URL=${configured} does not answer PING`)
      teardowns.push(() => deleteKeys(configured, keyPrefix))
      say(`services: Redis from REDIS_URL, keys under ${keyPrefix} (deleted at the end)`)
      return { url: configured, keyPrefix }
    }
    const bin = redisBin()
    if (bin === undefined) {
      skipped.push("SKIPPED Redis suites: install Redis (redis-server; Debian: apt-get install redis-server) or set REDIS_URL")
      return null
    }
    const server = await startRedis(bin).catch((error) => {
      skipped.push(`SKIPPED Redis suites: ${bin} did not start (${String(error)}); set REDIS_URL instead`)
      return undefined
    })
    if (server === undefined) return null
    teardowns.push(server.stop)
    say(`services: Redis ${bin} on ${server.url} (stopped at the end)`)
    return { url: server.url, keyPrefix }
  })()

  const slapd = slapdBin() ?? null
  if (slapd === null) {
    skipped.push("SKIPPED LDAP suites: install OpenLDAP's slapd (Debian: apt-get install slapd ldap-utils) or set SLAPD_BIN")
  }

  let services: Services
  try {
    const [pg, rd] = await Promise.all([postgres, redis])
    services = { postgres: pg, redis: rd, slapd }
  } catch (error) {
    await Promise.allSettled([postgres, redis])
    await teardown()
    throw error
  }

  for (const line of skipped) say(`*** ${line}`)
  if (skipped.length > 0 && process.env.EFFECT_AUTH_REQUIRE_SERVICES === "1") {
    await teardown()
    throw new Error(`EFFECT_AUTH_REQUIRE_SERVICES=1 and not every server could be had:\n${skipped.join("\n")}`)
  }

  project.provide("services", services)
  // Child processes the tests spawn (the CLI, the example app) find the same servers.
  const saved = { DATABASE_URL: process.env.DATABASE_URL, REDIS_URL: process.env.REDIS_URL }
  if (services.postgres !== null) process.env.DATABASE_URL = services.postgres
  if (services.redis !== null) process.env.REDIS_URL = services.redis.url
  teardowns.unshift(async () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key]
      else process.env[key] = value
    }
  })
  return teardown
}
