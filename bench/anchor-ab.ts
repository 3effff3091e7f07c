/**
 * effect-auth on the shared anchors' own same-process A/B (`bench-anchors/http-auth/ab.sh`), as
 * their README says to point it at a library: a server with `GET /plain` bare and `GET /auth`
 * behind the library's middleware, run by `ab.sh` in the same sitting as the anchors' hand-written
 * Effect middleware (`servers/ab-effect.mjs`) and express + passport (`servers/ab-express.mjs`).
 *
 *   npx tsx bench/anchor-ab.ts [--sittings 1]     # ~6 min a sitting; ANCHORS=<dir> to point elsewhere
 *
 * The anchors are copied into `.tmp/anchor-ab` (their `npm ci` installs the harness's own
 * dependencies for their two servers); nothing of theirs is kept in this repository. Our servers
 * are this file (`--serve router|api`), started through a small `.mjs` shim because `ab.sh` runs
 * `node <script>`. As in the anchors: token `tok-1`, three backends (NoMatch, NoMatch, the token's
 * user), text `ok` on both routes (JSON `"ok"` for the HttpApi form, whose endpoints encode), 401
 * without a token, Effect's default tracer on. Each server's order is rotated per sitting.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { spawnSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as Authentication from "../src/http/Authentication.js"
import * as HttpAuth from "../src/http/HttpAuth.js"
import * as TokenBackends from "./tokenBackends.js"
import { parseArgs } from "./utils.js"

// --- our servers ---------------------------------------------------------------------------------

const tokens = new Map([["tok-1", { id: "1", username: "alice", isActive: true, isSuperuser: false }]])
const Tokens = TokenBackends.table("tokens", tokens)
const authLayer = HttpAuth.layer({ bearer: true, session: false }).pipe(
  Layer.provideMerge(AuthService.layer([TokenBackends.refusing("b1"), TokenBackends.refusing("b2"), Tokens])),
  Layer.provide(AuthEvents.layer)
)
const listen = () =>
  NodeHttpServer.layer(createServer, { port: Number(process.env.PORT ?? 3000), host: "127.0.0.1" })

const ok = HttpServerResponse.text("ok")
const routerServer = () =>
  HttpServer.serve(HttpRouter.empty.pipe(HttpRouter.get("/plain", ok), HttpRouter.get("/auth", HttpAuth.requireUser(ok))))
    .pipe(Layer.provide(authLayer), Layer.provide(listen()))

class Open extends HttpApiGroup.make("open").add(HttpApiEndpoint.get("plain", "/plain").addSuccess(Schema.String)) {}
class Protected extends HttpApiGroup.make("protected")
  .add(HttpApiEndpoint.get("auth", "/auth").addSuccess(Schema.String))
  .middleware(Authentication.Authentication)
{}
class Api extends HttpApi.make("anchor-ab").add(Open).add(Protected) {}
const apiServer = () =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.api(Api).pipe(
      Layer.provide([
        HttpApiBuilder.group(Api, "open", (h) => h.handle("plain", () => Effect.succeed("ok"))),
        HttpApiBuilder.group(Api, "protected", (h) => h.handle("auth", () => Effect.succeed("ok")))
      ]),
      Layer.provide(Authentication.layer),
      Layer.provide(authLayer)
    )),
    Layer.provide(listen())
  )

// --- the sitting ---------------------------------------------------------------------------------

const serveIndex = process.argv.indexOf("--serve")
if (serveIndex !== -1) {
  const form = process.argv[serveIndex + 1]
  NodeRuntime.runMain(Layer.launch(form === "api" ? apiServer() : routerServer()), { disablePrettyLogger: true })
} else {
  const { sittings } = parseArgs({ sittings: 1 })
  const root = fileURLToPath(new URL("..", import.meta.url))
  const anchors = path.resolve(root, process.env.ANCHORS ?? "../shared/bench-anchors/http-auth")
  if (!existsSync(path.join(anchors, "ab.sh"))) {
    console.log(`skipped: the shared anchors are not at ${anchors} (ANCHORS=<dir>)`)
  } else {
    const work = path.join(root, ".tmp", "anchor-ab")
    rmSync(work, { recursive: true, force: true })
    mkdirSync(work, { recursive: true })
    const harness = path.join(work, "http-auth")
    cpSync(anchors, harness, { recursive: true, filter: (src) => !src.includes(`${path.sep}node_modules`) && !src.includes(`${path.sep}results`) })
    const install = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: harness, stdio: ["ignore", "ignore", "inherit"] })
    if (install.status !== 0) throw new Error("npm ci of the anchors' harness failed")
    // `ab.sh` runs `node <script>`: a shim in this repository's tree, so that tsx and every
    // package resolve from our node_modules (one copy of effect), starting this file as a server.
    const self = fileURLToPath(import.meta.url)
    const shim = (form: string) => {
      const file = path.join(work, `ab-effect-auth-${form}.mjs`)
      writeFileSync(
        file,
        `import { register } from "tsx/esm/api"\nregister()\nprocess.argv.push("--serve", ${JSON.stringify(form)})\nawait import(${
          JSON.stringify(new URL(`file://${self}`).href)
        })\n`
      )
      return file
    }
    const servers = [shim("router"), shim("api"), "servers/ab-effect.mjs", "servers/ab-express.mjs"]
    console.log(`Node ${process.version}, ${os.availableParallelism()} cores, load average ${os.loadavg()[0]!.toFixed(2)} before`)
    for (let sitting = 0; sitting < sittings; sitting++) {
      for (let i = 0; i < servers.length; i++) {
        const server = servers[(i + sitting) % servers.length]!
        console.log(`\n== ${path.basename(server)} ${new Date().toISOString().slice(11, 19)} UTC, load ${os.loadavg()[0]!.toFixed(2)}`)
        const run = spawnSync("bash", ["ab.sh", server], { cwd: harness, encoding: "utf8", env: { ...process.env, PORT: "3100" } })
        const table = run.stdout.split("\n").filter((line) => line.startsWith("|"))
        console.log(table.join("\n"))
        if (run.status !== 0) throw new Error(`ab.sh ${server} failed:\n${run.stderr}`)
      }
    }
    console.log(`\nload average ${os.loadavg()[0]!.toFixed(2)} after`)
  }
}
