// Child processes run asynchronously: a test worker waiting for one keeps its event loop turning
// (see docs/testing.md on vitest's "Timeout calling onTaskUpdate").
import { spawn } from "node:child_process"

export interface ProcessResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface ProcessOptions {
  readonly cwd?: string
  readonly env: NodeJS.ProcessEnv
  /** Written to the child's stdin, which is then closed. */
  readonly input?: string
  /** Kills the child when aborted (`Effect.promise` hands one over for interruption). */
  readonly signal?: AbortSignal
}

/** Runs `command ...args`: its exit and what it printed. */
export const runProcess = (command: string, args: ReadonlyArray<string>, options: ProcessOptions): Promise<ProcessResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...(options.cwd !== undefined && { cwd: options.cwd }),
      env: options.env,
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.signal !== undefined && { signal: options.signal })
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
    child.stdin.end(options.input ?? "")
  })

/** Runs `node ...args` (this process's Node). */
export const runNode = (args: ReadonlyArray<string>, options: ProcessOptions): Promise<ProcessResult> =>
  runProcess(process.execPath, args, options)
