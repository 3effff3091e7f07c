/**
 * Child processes for the CLI (src/cli/main.ts) and the example app (examples/server.ts), run from
 * source through tsx's loader (`node --import tsx`, as `npx tsx` does, without npx's own start-up
 * and without a wrapper process between the test and the server it signals).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { runNode } from "./childProcess.js"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** Cheap hashes for tests; the server and the CLI read it through PasswordHasher.layerConfig. */
export const fastHashing = { PASSWORD_HASHER_PBKDF2_ITERATIONS: "1000" }

const childEnv = (env: Readonly<Record<string, string | undefined>>): NodeJS.ProcessEnv => {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...fastHashing, NO_COLOR: "1" }
  // The children must see only what the test gives them.
  delete merged.DATABASE_FILE
  delete merged.SECRET_KEY
  delete merged.PORT
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete merged[key]
    else merged[key] = value
  }
  return merged
}

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `effect-auth ...args`; `input` is written to stdin, which is then closed. */
export const runCli = (
  args: ReadonlyArray<string>,
  options: { readonly input?: string; readonly env?: Readonly<Record<string, string | undefined>> } = {}
): Promise<CliResult> =>
  runNode(["--import", "tsx", "src/cli/main.ts", ...args], { cwd: root, env: childEnv(options.env ?? {}), input: options.input ?? "" })
    .then(({ code, stderr, stdout }) => ({ code, stdout, stderr }))

/** A fresh directory for a test file's SQLite databases. */
export const tempDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "effect-auth-example-"))

export interface RunningServer {
  readonly url: string
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly stop: () => Promise<void>
}

/** Starts examples/server.ts on a free port (PORT=0) and waits for the URL it prints. */
export const startServer = (env: Readonly<Record<string, string | undefined>>): Promise<RunningServer> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "examples/server.ts"], {
      cwd: root,
      env: childEnv({ PORT: "0", ...env }),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    const exited = new Promise<void>((done) => child.on("exit", () => done()))
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      await exited
    }
    // Longer than an example's own 60 s (test/Examples.test.ts): a start slowed by the full
    // suite's load is no failure of the app.
    const timer = setTimeout(() => {
      void stop()
      reject(new Error(`the example app printed no URL within 90 s\n${stdout}\n${stderr}`))
    }, 90_000)
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
      const match = /listening on (http:\/\/\S+)/.exec(stdout)
      if (match !== null) {
        clearTimeout(timer)
        resolve({ url: match[1]!, child, stdout: () => stdout, stderr: () => stderr, stop })
      }
    })
    child.on("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`the example app exited with ${code}\n${stdout}\n${stderr}`))
    })
  })
