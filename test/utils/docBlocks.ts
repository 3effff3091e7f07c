/**
 * The fenced TypeScript blocks of README.md and docs/*.md, as programs: extracted to
 * `.tmp/docs/` (git-ignored), type-checked as one TypeScript program, and run one by one.
 *
 * What a block's fence says (the conventions are documented in docs/README.md):
 *
 * - ```` ```ts ````: a complete program (imports included); it must type-check and run to
 *   completion (exit 0) in a fresh empty working directory.
 * - ```` ```ts check-only ````: a complete program that must type-check but is not run (it starts a
 *   server, or needs PostgreSQL, Redis, a directory or a network service).
 * - ```` ```ts test ````: a complete test module (`@effect/vitest`); it must type-check, and its
 *   tests run inside test/Docs.test.ts.
 * - ```` ```ts fragment ````: neither: a piece of a program shown for its shape, on purpose.
 *
 * Any other word after `ts` is an error, so a typo cannot turn a checked block into an unchecked one.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import ts from "typescript"
import { runNode } from "./childProcess.js"

export const root = fileURLToPath(new URL("../..", import.meta.url))
export const outDir = path.join(root, ".tmp", "docs")

export type Mode = "run" | "check-only" | "test" | "fragment"

export interface Block {
  /** `docs/sessions.md:42`: where the opening fence is. */
  readonly where: string
  readonly source: string
  /** 1-based line of the opening fence in the markdown file. */
  readonly fenceLine: number
  readonly mode: Mode
  readonly code: string
  /** The file the block is written to, under `.tmp/docs/`. */
  readonly file: string
}

const markers: Record<string, Mode> = { "": "run", "check-only": "check-only", test: "test", fragment: "fragment" }

/** README.md and every docs/*.md, relative to the repository root. */
export const markdownFiles = (): ReadonlyArray<string> => [
  "README.md",
  ...fs.readdirSync(path.join(root, "docs")).filter((name) => name.endsWith(".md")).sort().map((name) =>
    `docs/${name}`
  )
]

/** The TypeScript blocks of one markdown file; throws on an unknown marker or an unclosed fence. */
export const extractBlocks = (source: string, text: string): ReadonlyArray<Block> => {
  const lines = text.split("\n")
  const blocks: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)\s*(.*?)\s*$/.exec(lines[i]!)
    if (open === null) continue
    const [, indent, fence, language, info] = open as unknown as [string, string, string, string, string]
    let end = i + 1
    while (end < lines.length && !lines[end]!.trimStart().startsWith(fence)) end++
    if (end === lines.length) throw new Error(`${source}:${i + 1}: unclosed code fence`)
    if (language === "ts" || language === "typescript") {
      const mode = markers[info]
      if (mode === undefined) {
        throw new Error(`${source}:${i + 1}: unknown marker "${info}" (use none, "check-only", "test" or "fragment")`)
      }
      const code = lines.slice(i + 1, end).map((line) => line.startsWith(indent) ? line.slice(indent.length) : line)
        .join("\n")
      const name = source.replace(/^docs\//, "").replace(/\.md$/, "").replace(/[^\w-]/g, "_")
      blocks.push({
        where: `${source}:${i + 1}`,
        source,
        fenceLine: i + 1,
        mode,
        code,
        file: path.join(outDir, `${name}-${i + 1}.ts`)
      })
    }
    i = end
  }
  return blocks
}

export const allBlocks = (): ReadonlyArray<Block> =>
  markdownFiles().flatMap((source) => extractBlocks(source, fs.readFileSync(path.join(root, source), "utf8")))

/**
 * Writes the checked blocks to `.tmp/docs/` with a tsconfig that extends the project's (so
 * `effect-auth` and `effect-auth/*` resolve to ./src), replacing what an earlier run left there.
 */
export const writeBlocks = (blocks: ReadonlyArray<Block>): string => {
  fs.rmSync(outDir, { recursive: true, force: true })
  fs.mkdirSync(outDir, { recursive: true })
  for (const block of blocks) {
    if (block.mode === "fragment") continue
    // `export {}` keeps each block a module of its own, even one without imports: blocks in the
    // same program cannot see each other's top-level names. It goes last so line numbers match.
    fs.writeFileSync(block.file, `${block.code}\nexport {}\n`)
  }
  const tsconfig = path.join(outDir, "tsconfig.json")
  fs.writeFileSync(
    tsconfig,
    JSON.stringify({ extends: "../../tsconfig.json", compilerOptions: { noEmit: true }, include: ["*.ts"] }, null, 2)
  )
  return tsconfig
}

/**
 * Type-checks the written blocks: one program for all of them, except that a block which augments
 * a module (`declare module "effect-auth/User"`, registering an app's user type) gets a program of
 * its own, as its augmentation would otherwise apply to every other block. Answers one message per
 * diagnostic, located in the markdown file (`docs/sessions.md:57: error TS2322: ...`);
 * diagnostics in other files (src) are reported where they are.
 */
export const typeCheck = (blocks: ReadonlyArray<Block>, tsconfig: string): ReadonlyArray<string> => {
  const parsed = ts.getParsedCommandLineOfConfigFile(tsconfig, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"))
    }
  })
  if (parsed === undefined) throw new Error(`cannot read ${tsconfig}`)
  const checked = blocks.filter((block) => block.mode !== "fragment")
  const augmenting = checked.filter((block) => /^\s*declare module\s/m.test(block.code))
  const groups = [
    checked.filter((block) => !augmenting.includes(block)).map((block) => block.file),
    ...augmenting.map((block) => [block.file])
  ].filter((group) => group.length > 0)
  const byFile = new Map(blocks.map((block) => [path.resolve(block.file), block]))
  let host: ts.CompilerHost | undefined
  let oldProgram: ts.Program | undefined
  const diagnostics: Array<ts.Diagnostic> = []
  for (const rootNames of groups) {
    // One host and the previous program let the later programs reuse the parsed library files.
    host ??= ts.createCompilerHost(parsed.options)
    const program: ts.Program = ts.createProgram({ rootNames, options: parsed.options, host, ...(oldProgram ? { oldProgram } : {}) })
    oldProgram = program
    diagnostics.push(...ts.getPreEmitDiagnostics(program))
  }
  return diagnostics.map((diagnostic) => {
    const message = `error TS${diagnostic.code}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")}`
    if (diagnostic.file === undefined || diagnostic.start === undefined) return message
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start)
    const block = byFile.get(path.resolve(diagnostic.file.fileName))
    return block === undefined
      ? `${path.relative(root, diagnostic.file.fileName)}:${line + 1}: ${message}`
      : `${block.source}:${block.fenceLine + 1 + line}: ${message}`
  })
}

// The blocks run outside the repository, where a bare `--import tsx` would not resolve.
const tsxLoader = pathToFileURL(path.join(root, "node_modules", "tsx", "dist", "loader.mjs")).href

export interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
}

/**
 * Runs a written block with tsx's loader in a fresh empty directory (what a reader who pasted it
 * into a new file would have), with the project's tsconfig for `effect-auth` paths.
 */
export const runBlock = (block: Block, timeoutMs: number): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "effect-auth-doc-"))
    const env: NodeJS.ProcessEnv = { ...process.env, TSX_TSCONFIG_PATH: path.join(root, "tsconfig.json"), NO_COLOR: "1" }
    // A block must not depend on the environment of whoever runs the tests.
    for (const key of ["DATABASE_URL", "REDIS_URL", "DATABASE_FILE", "PORT"]) delete env[key]
    // Blocks that read SECRET_KEY say so; a reader runs them with one set.
    env.SECRET_KEY = "docs-test-secret-key-0123456789"
    const child = spawn(process.execPath, ["--import", tsxLoader, block.file], { cwd, env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, timeoutMs)
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      fs.rmSync(cwd, { recursive: true, force: true })
      resolve({ code, signal, stdout, stderr, timedOut })
    })
  })

/**
 * {@link typeCheck} in a child process (test/utils/typeCheckBlocks.ts), for the tests: the check is
 * tens of seconds of CPU, and a test worker whose event loop is held that long cannot hear vitest's
 * answers to its own reports, which fails the run ("Timeout calling onTaskUpdate").
 */
export const typeCheckApart = async (blocks: ReadonlyArray<Block>, tsconfig: string): Promise<ReadonlyArray<string>> => {
  const script = path.join(root, "test", "utils", "typeCheckBlocks.ts")
  const { code, signal, stderr, stdout } = await runNode(["--import", tsxLoader, script], {
    cwd: root,
    env: { ...process.env, TSX_TSCONFIG_PATH: path.join(root, "tsconfig.json") },
    input: JSON.stringify({ blocks, tsconfig })
  })
  if (code !== 0) throw new Error(`typeCheckBlocks exited with ${code ?? signal}\n${stderr}`)
  try {
    return JSON.parse(stdout)
  } catch (error) {
    throw new Error(`typeCheckBlocks answered no JSON: ${String(error)}\n${stdout}\n${stderr}`)
  }
}
