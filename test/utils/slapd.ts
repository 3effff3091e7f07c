/**
 * A throwaway OpenLDAP server for tests.
 *
 * `layer` starts the Debian `slapd` binary on a free 127.0.0.1 port with a configuration written
 * into a fresh temp dir (mdb database, `memberof` overlay, a small directory of users and
 * groupOfNames groups) and, when the layer's scope closes, kills the process and removes the dir.
 * Also here: a URL whose port refuses connections (`deadUrl`) and a TCP server that accepts and
 * never answers (`hangingServer`; `silentServerCounting` also counts its connections) for
 * transport-failure and load-shedding tests.
 *
 * Polling uses plain timers on purpose: `it.layer` builds layers under the TestClock, where
 * `Effect.sleep` would never wake up.
 *
 * test/setup/services.ts finds the binary (SLAPD_BIN, PATH, /usr/sbin, ...); schema and modules
 * can be moved with SLAPD_SCHEMA_DIR and SLAPD_MODULE_PATH. Suites that need slapd:
 * `describe.skipIf(SlapdTest.missing)`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { afterAll, beforeAll, describe, it, type Vitest } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type * as TestServices from "effect/TestServices"
import { Client } from "ldapts"
import { inject } from "vitest"
import { freePort } from "./freePort.js"
import { refusedPort } from "./refusedPort.js"

const slapdBin = inject("services").slapd

/** No slapd on this machine: the LDAP suites are skipped (the setup has said so, loudly). */
export const missing: boolean = slapdBin === null

export class SlapdError extends Data.TaggedError("SlapdError")<{ readonly message: string }> {}

const baseDn = "dc=example,dc=org"
const people = `ou=people,${baseDn}`
const groupsBase = `ou=groups,${baseDn}`

interface FixtureUser {
  readonly uid: string
  readonly dn: string
  readonly password: string
  readonly cn: string
  readonly sn: string
  readonly givenName?: string
  readonly mail?: string
}

const user = (uid: string, dnValue: string, password: string, extra: Partial<FixtureUser> = {}, ou = people): FixtureUser => ({
  uid,
  dn: `uid=${dnValue},${ou}`,
  password,
  cn: extra.cn ?? uid,
  sn: extra.sn ?? uid,
  ...extra
})

/**
 * What the test directory holds. DNs of users with special characters are escaped by hand here,
 * so the fixture does not depend on the escaping under test.
 */
export const fixture = {
  baseDn,
  adminDn: `cn=admin,${baseDn}`,
  adminPassword: "admin-secret",
  serviceDn: `cn=reader,ou=services,${baseDn}`,
  servicePassword: "reader-secret",
  /** A service account the server answers at most one entry per search (slapd's `limits`). */
  narrowServiceDn: `cn=narrow,ou=services,${baseDn}`,
  narrowServicePassword: "narrow-secret",
  peopleDn: people,
  groupsDn: groupsBase,
  /** A subtree with exactly one user: a widened filter there would find that user. */
  soloDn: `ou=solo,${baseDn}`,
  users: {
    // alice's password is stored as {SSHA}, the others in clear text: slapd verifies both
    alice: user("alice", "alice", "alice-pw", { cn: "Alice Liddell", givenName: "Alice", sn: "Liddell", mail: "alice@example.org" }),
    bob: user("bob", "bob", "bob-pw", { cn: "Bob Builder", givenName: "Bob", sn: "Builder", mail: "bob@example.org" }),
    carol: user("carol", "carol", "carol-pw", { cn: "Carol Banned", sn: "Banned" }),
    dave: user("dave", "dave", "dave-pw", { cn: "Dave Nogroup", sn: "Nogroup" }),
    special: user(`#a,b+c"d\\e<f>g;h=i`, `\\#a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h\\=i`, "special-pw", { cn: "Special", sn: "Special" }),
    stars: user("a*(b)\\c", "a*(b)\\5cc", "stars-pw", { cn: "Stars", sn: "Stars" }),
    solo: user("solo", "solo", "solo-pw", { cn: "Solo", sn: "Solo" }, `ou=solo,${baseDn}`)
  },
  groups: {
    staff: `cn=staff,${groupsBase}`,
    admins: `cn=admins,${groupsBase}`,
    editors: `cn=editors,${groupsBase}`,
    banned: `cn=banned,${groupsBase}`
  }
} as const

const members: Record<keyof typeof fixture.groups, ReadonlyArray<keyof typeof fixture.users>> = {
  staff: ["alice", "bob", "carol", "special"],
  admins: ["alice"],
  editors: ["bob"],
  banned: ["carol"]
}

/** The running server: its URL plus the fixture. */
export interface SlapdInfo {
  readonly url: string
  readonly port: number
  readonly dir: string
  readonly fixture: typeof fixture
}

export class Slapd extends Context.Tag("test/Slapd")<Slapd, SlapdInfo>() {}

const ssha = (password: string): string => {
  const salt = crypto.randomBytes(8)
  const digest = crypto.createHash("sha1").update(password).update(salt).digest()
  return `{SSHA}${Buffer.concat([digest, salt]).toString("base64")}`
}

const findSlapd = (): string => {
  if (slapdBin !== null) return slapdBin
  throw new Error("slapd not found: install the Debian packages `slapd` and `ldap-utils` (or set SLAPD_BIN)")
}

const slapdConf = (dir: string): string => {
  const schema = process.env.SLAPD_SCHEMA_DIR ?? "/etc/ldap/schema"
  const modules = process.env.SLAPD_MODULE_PATH ?? "/usr/lib/ldap"
  return [
    `include ${schema}/core.schema`,
    `include ${schema}/cosine.schema`,
    `include ${schema}/inetorgperson.schema`,
    `modulepath ${modules}`,
    "moduleload back_mdb",
    "moduleload memberof",
    `pidfile ${dir}/slapd.pid`,
    `argsfile ${dir}/slapd.args`,
    "database mdb",
    "maxsize 16777216",
    `suffix "${baseDn}"`,
    `rootdn "${fixture.adminDn}"`,
    `rootpw ${fixture.adminPassword}`,
    `directory ${dir}/db`,
    `limits dn.exact="${fixture.narrowServiceDn}" size=1`,
    "overlay memberof",
    // anonymous clients may only bind: searches need a bound user, as on most real directories
    "access to attrs=userPassword by self read by anonymous auth by * none",
    "access to * by users read by anonymous auth by * none",
    ""
  ].join("\n")
}

/**
 * Whether the server at `url` answers an LDAP operation as this fixture's slapd does: a bind as
 * its rootdn. A port that merely accepts connections may be another process's.
 */
const answersLdap = async (url: string): Promise<boolean> => {
  const client = new Client({ url, timeout: 2_000, connectTimeout: 1_000 })
  try {
    await client.bind(fixture.adminDn, fixture.adminPassword)
    return true
  } catch {
    return false
  } finally {
    await client.unbind().catch(() => undefined)
  }
}

/** The pid in slapd's pidfile, which it writes once it holds its port (and never if it cannot). */
const pidInFile = (dir: string): number | undefined => {
  try {
    return Number(fs.readFileSync(path.join(dir, "slapd.pid"), "utf8").trim())
  } catch {
    return undefined
  }
}

/** Whether `child` has exited, or does within `millis`. */
const exitsWithin = (child: ChildProcess, millis: number): Promise<boolean> => {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const onExit = () => {
      clearTimeout(timer)
      resolve(true)
    }
    const timer = setTimeout(() => {
      child.off("exit", onExit)
      resolve(false)
    }, millis)
    child.once("exit", onExit)
  })
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const stop = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  child.kill("SIGTERM")
  // an unref'd timer: the grace period must not keep the worker alive once slapd has gone
  const grace = new Promise<false>((resolve) => setTimeout(() => resolve(false), 5_000).unref())
  const done = await Promise.race([exited.then(() => true), grace])
  if (!done) {
    child.kill("SIGKILL")
    await exited
  }
}

/**
 * Starts slapd on `port`; resolves once this slapd answers LDAP there (its pid in its pidfile, a
 * bind as its rootdn), rejects if slapd exits first (as it does when another process has the port).
 */
const launch = async (bin: string, conf: string, dir: string, port: number): Promise<ChildProcess> => {
  const url = `ldap://127.0.0.1:${port}/`
  // a pidfile left by an earlier attempt in this dir must not pass for this slapd's
  fs.rmSync(path.join(dir, "slapd.pid"), { force: true })
  // -d keeps slapd in the foreground (so killing our child kills the server); no -u/-g: as root
  // slapd then simply keeps running as root in the temp dir it owns
  const child = spawn(bin, ["-f", conf, "-h", url, "-d", "0"], { stdio: ["ignore", "ignore", "pipe"] })
  // should the test process die without closing the scope, do not leave slapd behind
  const killOnExit = () => child.kill("SIGKILL")
  process.once("exit", killOnExit)
  child.once("exit", () => process.removeListener("exit", killOnExit))
  let stderr = ""
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-4_000)
  })
  let exited = false
  child.once("exit", () => {
    exited = true
  })
  child.once("error", () => {
    exited = true
  })
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (exited) throw new Error(`slapd exited early (code ${child.exitCode}): ${stderr.trim()}`)
    // Not a mere connect: another process listening on the port would accept one before slapd
    // failed to bind it and exited.
    if (pidInFile(dir) === child.pid && (await answersLdap(url)) && !exited) return child
    await delay(50)
  }
  await stop(child)
  throw new Error(`slapd did not answer on port ${port} within 15s: ${stderr.trim()}`)
}

const load = async (url: string): Promise<void> => {
  const client = new Client({ url, timeout: 10_000, connectTimeout: 5_000 })
  try {
    await client.bind(fixture.adminDn, fixture.adminPassword)
    await client.add(baseDn, { objectClass: ["dcObject", "organization"], dc: "example", o: "Example" })
    for (const ou of ["people", "groups", "services", "solo"]) {
      await client.add(`ou=${ou},${baseDn}`, { objectClass: "organizationalUnit", ou })
    }
    await client.add(fixture.serviceDn, {
      objectClass: ["organizationalRole", "simpleSecurityObject"],
      cn: "reader",
      userPassword: fixture.servicePassword
    })
    await client.add(fixture.narrowServiceDn, {
      objectClass: ["organizationalRole", "simpleSecurityObject"],
      cn: "narrow",
      userPassword: fixture.narrowServicePassword
    })
    for (const [name, u] of Object.entries(fixture.users)) {
      const entry: Record<string, string | Array<string>> = {
        objectClass: ["inetOrgPerson"],
        uid: u.uid,
        cn: u.cn,
        sn: u.sn,
        userPassword: name === "alice" ? ssha(u.password) : u.password
      }
      if ("givenName" in u) entry.givenName = u.givenName
      if ("mail" in u) entry.mail = u.mail
      await client.add(u.dn, entry)
    }
    // groups last, so the memberof overlay writes memberOf into the user entries
    for (const [name, dn] of Object.entries(fixture.groups)) {
      await client.add(dn, {
        objectClass: "groupOfNames",
        cn: name,
        member: members[name as keyof typeof members].map((m) => fixture.users[m].dn)
      })
    }
  } finally {
    await client.unbind().catch(() => undefined)
  }
}

/**
 * Starts slapd and loads the fixture; the scope's end stops it and deletes its files.
 */
export const start: Effect.Effect<SlapdInfo, SlapdError, Scope.Scope> = Effect.acquireRelease(
  Effect.tryPromise({
    try: async () => {
      const bin = findSlapd()
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-auth-slapd-"))
      try {
        fs.mkdirSync(path.join(dir, "db"))
        const conf = path.join(dir, "slapd.conf")
        fs.writeFileSync(conf, slapdConf(dir))
        let lastError: unknown
        // another process may grab the port between freePort() and slapd's bind: slapd exits, and
        // the next attempt takes another port
        for (let attempt = 0; attempt < 5; attempt++) {
          const port = await freePort()
          let child: ChildProcess
          try {
            child = await launch(bin, conf, dir, port)
          } catch (error) {
            lastError = error
            continue
          }
          const url = `ldap://127.0.0.1:${port}`
          try {
            await load(url)
          } catch (error) {
            // slapd lost the port after all (it exits): what answered was another server. Try
            // another port; a slapd still running failed for a reason of its own.
            if (await exitsWithin(child, 1_000)) {
              lastError = error
              continue
            }
            await stop(child)
            throw error
          }
          return { child, info: { url, port, dir, fixture } }
        }
        throw lastError
      } catch (error) {
        fs.rmSync(dir, { recursive: true, force: true })
        throw error
      }
    },
    catch: (error) => new SlapdError({ message: error instanceof Error ? error.message : String(error) })
  }),
  ({ child, info }) =>
    Effect.promise(async () => {
      await stop(child)
      fs.rmSync(info.dir, { recursive: true, force: true })
    })
).pipe(Effect.map(({ info }) => info))

/**
 * Entries added (as the rootdn, in order) for the scope of one test and deleted (in reverse) when
 * it ends, so the shared fixture is as before for the next test. Groups after their members: the
 * memberof overlay then writes the members' `memberOf`.
 */
export const withEntries = (
  url: string,
  entries: ReadonlyArray<readonly [dn: string, attributes: Record<string, string | Array<string>>]>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Client({ url, timeout: 10_000, connectTimeout: 5_000 })
      try {
        await client.bind(fixture.adminDn, fixture.adminPassword)
        for (const [dn, attributes] of entries) await client.add(dn, attributes)
      } finally {
        await client.unbind().catch(() => undefined)
      }
    }),
    () =>
      Effect.promise(async () => {
        const client = new Client({ url, timeout: 10_000, connectTimeout: 5_000 })
        try {
          await client.bind(fixture.adminDn, fixture.adminPassword)
          for (const [dn] of [...entries].reverse()) await client.del(dn).catch(() => undefined)
        } finally {
          await client.unbind().catch(() => undefined)
        }
      })
  )

/**
 * A scoped layer with a running slapd, for `it.layer(SlapdTest.layer)`.
 */
export const layer: Layer.Layer<Slapd, SlapdError> = Layer.scoped(Slapd, start)

/** What a suite against slapd gets: `it.effect` and `it.scoped`, with `Slapd` provided. */
export interface SuiteMethods {
  readonly effect: Vitest.Test<Slapd | TestServices.TestServices>
  readonly scoped: Vitest.Test<Slapd | TestServices.TestServices | Scope.Scope>
}

/**
 * A suite against one slapd, started before its first test and stopped after its last. Without
 * slapd the suite is skipped (test/setup/services.ts has said so, loudly) instead of failing in a
 * hook. Not `it.layer`: that re-points the global `it`'s `effect`/`scoped` at its layer (and its one
 * shared TestClock) for every test collected after it, in this file and, without isolation, in the
 * next files of the same worker.
 */
export const suite = (options?: { readonly timeout?: Duration.DurationInput }) =>
(name: string, f: (it: SuiteMethods) => void): void => {
  describe.skipIf(missing)(name, () => {
    const hookTimeout = options?.timeout === undefined ? undefined : Duration.toMillis(options.timeout)
    const scope = Effect.runSync(Scope.make())
    let running: SlapdInfo | undefined
    beforeAll(async () => {
      running = await Effect.runPromise(Scope.extend(start, scope))
    }, hookTimeout)
    afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)), hookTimeout)
    const withSlapd = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Slapd>> =>
      Effect.suspend(() =>
        running === undefined
          ? Effect.dieMessage("slapd did not start (see the suite's beforeAll)")
          : Effect.provideService(effect, Slapd, running)
      )
    f({
      effect: (testName, self, timeout) => it.effect(testName, (ctx) => withSlapd(self(ctx)), timeout),
      scoped: (testName, self, timeout) => it.scoped(testName, (ctx) => withSlapd(self(ctx)), timeout)
    })
  })
}

/**
 * An `ldap://` URL on 127.0.0.1 whose port refuses connections until the scope ends (held bound,
 * so no other process can start listening there meanwhile: see refusedPort.ts).
 */
export const deadUrl: Effect.Effect<string, never, Scope.Scope> = Effect.map(
  refusedPort,
  (port) => `ldap://127.0.0.1:${port}`
)

/** A silent server (see {@link silentServer}) and what it has seen. */
export interface SilentServer {
  readonly url: string
  /** Connections accepted so far. */
  readonly accepted: () => number
  /** Connections open now. */
  readonly open: () => number
}

/**
 * A TCP server that accepts connections and, after its `first` answer to the first bytes a client
 * sends (none by default), answers nothing; closed (with its sockets) when the scope ends.
 * Returns its `ldap://` URL and counts of its connections.
 */
export const silentServerCounting = (first?: (request: Buffer) => Buffer): Effect.Effect<SilentServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ server: net.Server; sockets: Set<net.Socket>; info: SilentServer }>((resolve, reject) => {
          const sockets = new Set<net.Socket>()
          let accepted = 0
          const server = net.createServer((socket) => {
            accepted++
            sockets.add(socket)
            socket.on("error", () => undefined)
            socket.on("close", () => sockets.delete(socket))
            if (first !== undefined) socket.once("data", (request) => socket.write(first(request)))
            // read and drop whatever else the client sends
            socket.on("data", () => undefined)
          })
          server.once("error", reject)
          server.listen(0, "127.0.0.1", () => {
            const address = server.address()
            if (typeof address === "object" && address !== null) {
              resolve({
                server,
                sockets,
                info: { url: `ldap://127.0.0.1:${address.port}`, accepted: () => accepted, open: () => sockets.size }
              })
            } else {
              reject(new Error("no port"))
            }
          })
        })
    ),
    ({ server, sockets }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => resolve())
          })
      )
  ).pipe(Effect.map(({ info }) => info))

/** {@link silentServerCounting}, its `ldap://` URL alone. */
export const silentServer = (first?: (request: Buffer) => Buffer): Effect.Effect<string, never, Scope.Scope> =>
  Effect.map(silentServerCounting(first), ({ url }) => url)

/** A server that accepts connections and never answers. Returns its `ldap://` URL. */
export const hangingServer: Effect.Effect<string, never, Scope.Scope> = silentServer()

/**
 * A server that grants StartTLS (an ExtendedResponse with resultCode success, to the client's
 * first request, whose message id it echoes) and then never starts the TLS handshake.
 */
export const startTlsStallingServer: Effect.Effect<string, never, Scope.Scope> = silentServer((request) =>
  // LDAPMessage { messageID (the request's, one byte at offset 4), extendedResp [APPLICATION 24]
  // { resultCode success, matchedDN "", diagnosticMessage "" } }
  Buffer.from([0x30, 0x0c, 0x02, 0x01, request[4]!, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00])
)
