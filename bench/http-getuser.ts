/**
 * 1000 concurrent getUser calls over 10 ids against a user service with 5 ms latency.
 *
 * Compares, in one run: a naive loop (one fetch per call), `dataloader` (per-id loads and with a
 * batch endpoint), HttpBackend (dedup per id, and with a batch endpoint: its hand-written loader)
 * and `@effect/experimental`'s `RequestResolver.dataLoader` over a batched resolver on the same
 * batch endpoint (the building block the loader could have been made of). HttpBackend runs on
 * `FetchHttpClient` and again on `@effect/platform-node`'s undici client. Every caller of
 * HttpBackend is its own root fiber (`Effect.runPromise` per call), as independent HTTP handlers
 * would be. The user service runs in a child process of its own, so that `process.cpuUsage()`
 * measures the client side only.
 *
 * Method (the shared anchors' README): one process per mode and round, the modes' order rotated
 * each round. Each process warms its mode up (`--warmup` bursts), then measures `--samples` bursts
 * and reports their median and their mean CPU time; ratios are taken per round. The mean is what
 * the bursts cost in all: the garbage collector's work lands on a few bursts, which a median
 * leaves out. Modes sharing one process skew each other (the experimental loader's garbage lands
 * on whatever runs next).
 *
 * `--node-flag F` (repeatable) passes a flag to every mode's process, e.g. `--node-flag
 * --max-semi-space-size=32` to see what the young generation's size does to a burst.
 *
 * `--exchange` measures one HTTP exchange on its own instead: 1000 sequential `GET /users/:id`
 * per process (after 300 of warm-up), CPU per exchange for a bare `fetch`, the platform's
 * `HttpClient` (FetchHttpClient and the undici client) and `HttpBackend.getUser` on each, so that
 * the part of an exchange that is HttpBackend's own is told from the client's.
 *
 *   npx tsx bench/http-getuser.ts [--calls 1000] [--ids 10] [--latency 5] [--rounds 9] [--samples 9] [--warmup 20]
 *   npx tsx bench/http-getuser.ts --exchange [--rounds 5]
 *   npx tsx bench/http-getuser.ts --modes 1,2,3,4,7 --warmup 100 --samples 101   # loaders alone, steady state
 */
import { FetchHttpClient, HttpClient, HttpClientRequest } from "@effect/platform"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import DataLoader from "dataloader"
import * as ExperimentalResolver from "@effect/experimental/RequestResolver"
import { Effect, Layer, ManagedRuntime, Request, RequestResolver, Schema } from "effect"
import { spawn } from "node:child_process"
import { once } from "node:events"
import * as os from "node:os"
import { fileURLToPath } from "node:url"
import * as HttpBackend from "../src/backends/HttpBackend.js"
import { User } from "../src/index.js"
import { parseArgs, printTable } from "./utils.js"

const { calls: CALLS, ids: IDS, latency: LATENCY, rounds: ROUNDS, samples: SAMPLES, warmup: WARMUP } = parseArgs({
  calls: 1000,
  ids: 10,
  latency: 5,
  rounds: 9,
  samples: 9,
  warmup: 20
})
// In a mode's own process: which mode, and the user service the parent started.
const modeArg = process.argv.indexOf("--mode-child")
const childMode = modeArg === -1 ? undefined : Number(process.argv[modeArg + 1])
const exchangeArg = process.argv.indexOf("--exchange-child")
const childExchange = exchangeArg === -1 ? undefined : Number(process.argv[exchangeArg + 1])
const nodeFlags = process.argv.flatMap((arg, i) => (process.argv[i - 1] === "--node-flag" ? [arg] : []))

// Plain JS so the child needs no loader. Every answer waits LATENCY ms; /__count reports and
// resets the number of user requests served.
const serverSource = `
const http = require("node:http")
const latency = ${LATENCY}
let count = 0
const user = (id) => ({ id, username: "user" + id, isActive: true, isSuperuser: false })
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x")
  if (url.pathname === "/__count") {
    res.end(String(count)); count = 0; return
  }
  count++
  setTimeout(() => {
    res.writeHead(200, { "content-type": "application/json" })
    if (url.pathname === "/users") res.end(JSON.stringify(url.searchParams.get("ids").split(",").map(user)))
    else res.end(JSON.stringify(user(decodeURIComponent(url.pathname.slice("/users/".length)))))
  }, latency)
})
server.keepAliveTimeout = 60000
server.listen(0, "127.0.0.1", () => console.log(server.address().port))
`

const startService = async () => {
  const service = spawn(process.execPath, ["-e", serverSource], { stdio: ["ignore", "pipe", "inherit"] })
  // Never leave the server behind, whatever ends this process.
  process.on("exit", () => service.kill())
  const [portChunk] = (await once(service.stdout!, "data")) as [Buffer]
  return { service, base: `http://127.0.0.1:${portChunk.toString().trim()}` }
}
const base = childMode === undefined && childExchange === undefined ? undefined! : process.env.GETUSER_BENCH_BASE!

const upstreamCount = async (): Promise<number> => Number(await (await fetch(`${base}/__count`)).text())

const ids = Array.from({ length: CALLS }, (_, i) => String(i % IDS))

const fetchOne = async (id: string): Promise<unknown> => (await fetch(`${base}/users/${encodeURIComponent(id)}`)).json()
const fetchMany = async (batch: ReadonlyArray<string>): Promise<Array<{ id: string }>> =>
  (await fetch(`${base}/users?ids=${batch.join(",")}`)).json() as Promise<Array<{ id: string }>>

// The client is the app's choice (the layer requires `HttpClient`): `FetchHttpClient` (the global
// `fetch`) or `@effect/platform-node`'s undici client, which costs less CPU per exchange.
const makeBackend = (batch: boolean, client: "fetch" | "undici" = "fetch") =>
  ManagedRuntime.make(
    HttpBackend.layer({
      baseUrl: base,
      user: User.BaseUserSchema,
      getUser: batch ? { batch: true } : {}
    }).pipe(Layer.provide(client === "undici" ? NodeHttpClient.layerUndici : FetchHttpClient.layer))
  )

const decodeUser = Schema.decodeUnknownPromise(User.BaseUserSchema)

// The candidate building block: @effect/experimental's RequestResolver.dataLoader over a batched
// resolver on the same batch endpoint (HttpBackend's fetchMany does the same HTTP call).
class GetUser extends Request.TaggedClass("GetUser")<unknown, Error, { readonly id: string }> {}
const batchResolver = RequestResolver.makeBatched((requests: ReadonlyArray<GetUser>) =>
  Effect.flatMap(
    Effect.promise(() => fetchMany([...new Set(requests.map((r) => r.id))])),
    (users) => {
      const byId = new Map(users.map((u) => [u.id, u]))
      return Effect.forEach(requests, (r) => Request.succeed(r, byId.get(r.id) ?? null), { discard: true })
    }
  )
)

// Built in a mode's own process only (the parent runs no mode).
const makeClients = async () => {
  const dedupRuntime = makeBackend(false)
  const batchRuntime = makeBackend(true)
  const dedupUndiciRuntime = makeBackend(false, "undici")
  const batchUndiciRuntime = makeBackend(true, "undici")
  const experimentalRuntime = ManagedRuntime.make(Layer.empty)
  return {
    dedup: await dedupRuntime.runPromise(HttpBackend.HttpBackend),
    batched: await batchRuntime.runPromise(HttpBackend.HttpBackend),
    dedupUndici: await dedupUndiciRuntime.runPromise(HttpBackend.HttpBackend),
    batchedUndici: await batchUndiciRuntime.runPromise(HttpBackend.HttpBackend),
    // The loader's fiber is forked per batch into the runtime; closing this scope at once
    // interrupts only a batch pending at that moment (none).
    experimentalLoader: await experimentalRuntime.runPromise(
      Effect.scoped(ExperimentalResolver.dataLoader(batchResolver, { window: "1 millis" }))
    ),
    dispose: () =>
      Promise.all([dedupRuntime, batchRuntime, dedupUndiciRuntime, batchUndiciRuntime, experimentalRuntime].map((r) => r.dispose()))
  }
}
const clients = childMode === undefined ? undefined! : await makeClients()

interface Mode {
  readonly name: string
  readonly run: () => Promise<ReadonlyArray<unknown>>
}

const modes: ReadonlyArray<Mode> = [
  {
    name: "naive loop (fetch per call)",
    run: () => Promise.all(ids.map(async (id) => decodeUser(await fetchOne(id))))
  },
  {
    name: "dataloader (per-id load)",
    run: () => {
      const loader = new DataLoader<string, unknown>((keys) => Promise.all(keys.map(async (id) => decodeUser(await fetchOne(id)))))
      return Promise.all(ids.map((id) => loader.load(id)))
    }
  },
  {
    name: "dataloader (batch endpoint)",
    run: () => {
      const loader = new DataLoader<string, unknown>(async (keys) => {
        const users = await Promise.all((await fetchMany(keys)).map((u) => decodeUser(u)))
        const byId = new Map(users.map((u) => [u.id, u]))
        return keys.map((key) => byId.get(key) ?? null)
      })
      return Promise.all(ids.map((id) => loader.load(id)))
    }
  },
  {
    name: "HttpBackend (dedup per id)",
    run: () => Promise.all(ids.map((id) => Effect.runPromise(clients.dedup.getUser(id))))
  },
  {
    name: "HttpBackend (batch endpoint)",
    run: () => Promise.all(ids.map((id) => Effect.runPromise(clients.batched.getUser(id))))
  },
  {
    name: "HttpBackend (dedup per id), undici client",
    run: () => Promise.all(ids.map((id) => Effect.runPromise(clients.dedupUndici.getUser(id))))
  },
  {
    name: "HttpBackend (batch endpoint), undici client",
    run: () => Promise.all(ids.map((id) => Effect.runPromise(clients.batchedUndici.getUser(id))))
  },
  {
    // Not a loader: what 1000 callers cost when each is a root fiber that waits for one shared
    // answer, the part of every row above that belongs to the callers, not to the loader.
    name: "floor: root fibers awaiting one shared fetch (no loader)",
    run: () => {
      const shared = fetchMany([...new Set(ids)])
      const wait = Effect.promise(() => shared)
      return Promise.all(ids.map(() => Effect.runPromise(wait)))
    }
  },
  {
    // The same loader when the callers are fibers of one effect (one handler resolving many
    // users) rather than 1000 root fibers: what the loader costs without a runtime entry per call.
    name: "HttpBackend (batch endpoint), callers forked by one Effect.forEach",
    run: () => Effect.runPromise(Effect.forEach(ids, (id) => clients.batched.getUser(id), { concurrency: "unbounded" }))
  },
  {
    name: "floor: fibers of one Effect.forEach awaiting one shared fetch (no loader)",
    run: () => {
      const shared = fetchMany([...new Set(ids)])
      const wait = Effect.promise(() => shared)
      return Effect.runPromise(Effect.forEach(ids, () => wait, { concurrency: "unbounded" }))
    }
  },
  {
    name: "@effect/experimental dataLoader (batch endpoint)",
    run: () => Promise.all(ids.map((id) => Effect.runPromise(Effect.request(new GetUser({ id }), clients.experimentalLoader))))
  }
]

interface Sample {
  readonly wallMs: number
  readonly cpuMs: number
  readonly upstream: number
}

// What a mode's process reports: medians of its bursts, and the mean CPU time, which is the total
// a server pays (the collector's work lands on a few bursts, and a median of bursts leaves it out).
interface Result extends Sample {
  readonly cpuMeanMs: number
}

const measure = async (mode: Mode): Promise<Sample> => {
  await upstreamCount()
  const cpu = process.cpuUsage()
  const start = performance.now()
  const results = await mode.run()
  const wallMs = performance.now() - start
  const used = process.cpuUsage(cpu)
  if (results.length !== CALLS || results.some((r) => r === undefined || r === null)) {
    throw new Error(`${mode.name}: wrong results`)
  }
  return { wallMs, cpuMs: (used.user + used.system) / 1000, upstream: await upstreamCount() }
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

if (childMode !== undefined) {
  // One mode: warm it up (`WARMUP` bursts: JIT, keep-alive sockets), then report the median and
  // the mean of `SAMPLES` bursts.
  const mode = modes[childMode]!
  for (let i = 0; i < WARMUP; i++) await measure(mode)
  const samples: Array<Sample> = []
  for (let i = 0; i < SAMPLES; i++) samples.push(await measure(mode))
  const result: Result = {
    wallMs: median(samples.map((x) => x.wallMs)),
    cpuMs: median(samples.map((x) => x.cpuMs)),
    cpuMeanMs: samples.reduce((sum, x) => sum + x.cpuMs, 0) / samples.length,
    upstream: Math.max(...samples.map((x) => x.upstream))
  }
  console.log(JSON.stringify(result))
  await clients.dispose()
  process.exit(0)
}

// One HTTP exchange alone: each case makes one `GET /users/:id` per call, sequentially.
interface ExchangeCase {
  readonly name: string
  readonly make: () => Promise<{ readonly call: (i: number) => Promise<unknown>; readonly dispose: () => Promise<void> }>
}
const platformClient = (layer: Layer.Layer<HttpClient.HttpClient>) => async () => {
  const runtime = ManagedRuntime.make(layer)
  const client = await runtime.runPromise(HttpClient.HttpClient)
  return {
    call: (i: number) =>
      Effect.runPromise(Effect.flatMap(client.execute(HttpClientRequest.get(`${base}/users/${i % IDS}`)), (r) => r.json)),
    dispose: () => runtime.dispose()
  }
}
const backendOn = (client: "fetch" | "undici") => async () => {
  const runtime = makeBackend(false, client)
  const backend = await runtime.runPromise(HttpBackend.HttpBackend)
  // Sequential calls never meet in flight: each is one exchange.
  return { call: (i: number) => Effect.runPromise(backend.getUser(String(i % IDS))), dispose: () => runtime.dispose() }
}
const exchangeCases: ReadonlyArray<ExchangeCase> = [
  {
    name: "fetch + res.json() (bare)",
    make: async () => ({ call: (i) => fetchOne(String(i % IDS)), dispose: async () => {} })
  },
  { name: "HttpClient (FetchHttpClient): execute + json", make: platformClient(FetchHttpClient.layer) },
  { name: "HttpBackend.getUser on FetchHttpClient", make: backendOn("fetch") },
  { name: "HttpClient (undici): execute + json", make: platformClient(NodeHttpClient.layerUndici) },
  { name: "HttpBackend.getUser on the undici client", make: backendOn("undici") }
]
const EXCHANGES = 1000

if (childExchange !== undefined) {
  const { call, dispose } = await exchangeCases[childExchange]!.make()
  for (let i = 0; i < 300; i++) await call(i)
  await upstreamCount()
  const cpu = process.cpuUsage()
  for (let i = 0; i < EXCHANGES; i++) {
    if ((await call(i)) == null) throw new Error("no user")
  }
  const used = process.cpuUsage(cpu)
  const upstream = await upstreamCount()
  if (upstream !== EXCHANGES) throw new Error(`${upstream} upstream requests for ${EXCHANGES} exchanges`)
  console.log(JSON.stringify({ cpuUs: (used.user + used.system) / EXCHANGES }))
  await dispose()
  process.exit(0)
}

const { service, base: serviceBase } = await startService()
const self = fileURLToPath(import.meta.url)
const loadBefore = os.loadavg()[0]!

// Runs this script again as one mode's (or one exchange case's) own process.
const runChild = async (role: "--mode-child" | "--exchange-child", index: number, name: string): Promise<any> => {
  const child = spawn(process.execPath, [...nodeFlags, "--import", "tsx", self, ...process.argv.slice(2), role, String(index)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, GETUSER_BENCH_BASE: serviceBase }
  })
  let out = ""
  child.stdout!.on("data", (chunk) => (out += chunk))
  const [code] = (await once(child, "close")) as [number]
  if (code !== 0) throw new Error(`${name}: exit ${code}`)
  return JSON.parse(out)
}

if (process.argv.includes("--exchange")) {
  const perCase = new Map<string, Array<number>>(exchangeCases.map((c) => [c.name, []]))
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < exchangeCases.length; i++) {
      const index = (i + round) % exchangeCases.length
      const name = exchangeCases[index]!.name
      perCase.get(name)!.push((await runChild("--exchange-child", index, name)).cpuUs)
    }
    console.error(`round ${round + 1}/${ROUNDS} done (load ${os.loadavg()[0]!.toFixed(2)})`)
  }
  const bare = perCase.get(exchangeCases[0]!.name)!
  printTable(
    `${EXCHANGES} sequential exchanges per process, ${LATENCY} ms upstream latency, one process per case and round, ` +
      `median of ${ROUNDS} rounds${nodeFlags.length > 0 ? `, node ${nodeFlags.join(" ")}` : ""}`,
    [
      ["case", "CPU µs per exchange", "÷ bare fetch (per round)"],
      ...exchangeCases.map((c) => {
        const cpu = perCase.get(c.name)!
        return [c.name, median(cpu).toFixed(0), median(cpu.map((x, i) => x / bare[i]!)).toFixed(2)]
      })
    ]
  )
  console.log(`Node ${process.version}, load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0]!.toFixed(1)} after`)
  service.kill()
  process.exit(0)
}

// `--modes 1,2,3` runs only those modes (indices into `modes`), e.g. to take a long sitting of
// the loaders alone without the slow naive and experimental rows.
const modesArg = process.argv.indexOf("--modes")
const selected: ReadonlyArray<number> = modesArg === -1
  ? modes.map((_, i) => i)
  : process.argv[modesArg + 1]!.split(",").map(Number).filter((i) => modes[i] !== undefined)
const perRound = new Map<string, Array<Result>>(selected.map((i) => [modes[i]!.name, []]))
for (let round = 0; round < ROUNDS; round++) {
  for (let i = 0; i < selected.length; i++) {
    const index = selected[(i + round) % selected.length]!
    perRound.get(modes[index]!.name)!.push(await runChild("--mode-child", index, modes[index]!.name))
  }
  console.error(`round ${round + 1}/${ROUNDS} done (load ${os.loadavg()[0]!.toFixed(2)})`)
}

const fmt = (n: number) => n.toFixed(1)
const rows = selected.map((index) => modes[index]!).map((mode) => {
  const s = perRound.get(mode.name)!
  const upstream = s.map((x) => x.upstream)
  return [
    mode.name,
    `${median(upstream)} (max ${Math.max(...upstream)})`,
    fmt(median(s.map((x) => x.wallMs))),
    fmt(median(s.map((x) => x.cpuMs))),
    fmt(median(s.map((x) => x.cpuMeanMs)))
  ]
})
printTable(
  `${CALLS} concurrent getUser calls over ${IDS} ids, ${LATENCY} ms upstream latency; one process per mode and round, ` +
    `${SAMPLES} bursts each, median of ${ROUNDS} rounds`,
  [["mode", "upstream requests", "total time (ms), median burst", "CPU time (ms), median burst", "CPU time (ms), mean"], ...rows]
)

// Per-round ratios (both modes ran in the same round, so drift on a shared machine cancels out
// better) and the ratio of the medians.
const cpuRatios = (metric: "cpuMs" | "cpuMeanMs") => (ours: string, theirs: string) => {
  if (!perRound.has(ours) || !perRound.has(theirs)) return "— (not run)"
  const a = perRound.get(ours)!.map((x) => x[metric])
  const b = perRound.get(theirs)!.map((x) => x[metric])
  return `${median(a.map((x, i) => x / b[i]!)).toFixed(2)}× per round, ${(median(a) / median(b)).toFixed(2)}× of medians`
}
const ratioRows = (ratio: (ours: string, theirs: string) => string) => [
  ["HttpBackend", "÷ dataloader", "ratio"],
  ["dedup per id", "per-id load", ratio("HttpBackend (dedup per id)", "dataloader (per-id load)")],
  ["batch endpoint", "batch endpoint", ratio("HttpBackend (batch endpoint)", "dataloader (batch endpoint)")],
  ["batch endpoint", "per-id load", ratio("HttpBackend (batch endpoint)", "dataloader (per-id load)")],
  ["dedup per id, undici client", "per-id load", ratio("HttpBackend (dedup per id), undici client", "dataloader (per-id load)")],
  ["batch endpoint, undici client", "batch endpoint", ratio("HttpBackend (batch endpoint), undici client", "dataloader (batch endpoint)")],
  ["experimental dataLoader", "batch endpoint", ratio("@effect/experimental dataLoader (batch endpoint)", "dataloader (batch endpoint)")],
  ["floor (root fibers, no loader)", "batch endpoint", ratio("floor: root fibers awaiting one shared fetch (no loader)", "dataloader (batch endpoint)")],
  ["batch endpoint, callers in one forEach", "batch endpoint", ratio("HttpBackend (batch endpoint), callers forked by one Effect.forEach", "dataloader (batch endpoint)")],
  ["floor (one forEach, no loader)", "batch endpoint", ratio("floor: fibers of one Effect.forEach awaiting one shared fetch (no loader)", "dataloader (batch endpoint)")]
]
printTable("CPU time of the median burst ÷ dataloader's", ratioRows(cpuRatios("cpuMs")))
printTable("mean CPU time per burst (what the bursts cost in all) ÷ dataloader's", ratioRows(cpuRatios("cpuMeanMs")))
console.log(
  `Node ${process.version}${nodeFlags.length > 0 ? ` (${nodeFlags.join(" ")})` : ""}, ` +
    `load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0]!.toFixed(1)} after`
)
service.kill()
