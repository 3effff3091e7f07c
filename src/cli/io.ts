// The CLI's standard streams and environment as values, so the commands run the same in a
// process (main.ts passes process.*) and in a test (strings in, strings out).
import * as EffectConsole from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { Console as NodeConsole } from "node:console"
import { Writable } from "node:stream"

/** Where the CLI reads and writes; `process.stdin`, `process.stdout` and `process.stderr` fit. */
export interface Io {
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean | undefined }
  readonly stdout: Output
  readonly stderr: Output
  /** Read for `DATABASE_FILE`, `DJANGO_VERSION`, `PASSWORD_HASHER*`, `PASSWORD_VALIDATORS` and the other
   * `PASSWORD_*` settings of `PasswordValidation.config`, and `NO_COLOR`; `process.env` fits. */
  readonly env: Readonly<Record<string, string | undefined>>
}

/** A stream the CLI writes text to. */
export interface Output {
  readonly write: (text: string) => unknown
  readonly isTTY?: boolean | undefined
}

/** The standard input of the running command, for the password reader. */
export class Stdin extends Context.Tag("effect-auth/cli/Stdin")<Stdin, Io["stdin"]>() {}

const ansi = /\u001b\[[0-9;]*[A-Za-z]/g

/**
 * Colours only for a terminal, and never with NO_COLOR set (https://no-color.org): @effect/cli
 * renders help and usage errors with ANSI codes unconditionally.
 */
const colours = (output: Output, env: Io["env"]): boolean =>
  output.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === "")

// A URL's password: @effect/cli quotes a `--database-url=postgres://u:PW@…` token it cannot place
// (given twice, a misspelt flag) in its usage error, which would print the password. Every
// output masks it, whoever wrote the text.
const urlPassword = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/@:]*):[^\s/@]*@/gi

const writableOf = (output: Output, env: Io["env"]): Writable => {
  const keep = colours(output, env)
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      const text = (typeof chunk === "string" ? chunk : chunk.toString("utf8")).replace(urlPassword, "$1:***@")
      output.write(keep ? text : text.replace(ansi, ""))
      callback()
    }
  })
}

/** An Effect `Console` that writes to `io.stdout` and `io.stderr`. */
export const console = (io: Io): EffectConsole.Console => {
  const unsafe = new NodeConsole({
    stdout: writableOf(io.stdout, io.env),
    stderr: writableOf(io.stderr, io.env),
    colorMode: false
  })
  const sync = (f: () => void) => Effect.sync(f)
  return {
    [EffectConsole.TypeId]: EffectConsole.TypeId,
    assert: (condition, ...args) => sync(() => unsafe.assert(condition, ...args)),
    clear: sync(() => unsafe.clear()),
    count: (label) => sync(() => unsafe.count(label)),
    countReset: (label) => sync(() => unsafe.countReset(label)),
    debug: (...args) => sync(() => unsafe.debug(...args)),
    dir: (item, options) => sync(() => unsafe.dir(item, options)),
    dirxml: (...args) => sync(() => unsafe.dirxml(...args)),
    error: (...args) => sync(() => unsafe.error(...args)),
    group: (options) => sync(() => options?.collapsed ? unsafe.groupCollapsed(options.label) : unsafe.group(options?.label)),
    groupEnd: sync(() => unsafe.groupEnd()),
    info: (...args) => sync(() => unsafe.info(...args)),
    log: (...args) => sync(() => unsafe.log(...args)),
    table: (data, properties) => sync(() => unsafe.table(data, properties)),
    time: (label) => sync(() => unsafe.time(label)),
    timeEnd: (label) => sync(() => unsafe.timeEnd(label)),
    timeLog: (label, ...args) => sync(() => unsafe.timeLog(label, ...args)),
    trace: (...args) => sync(() => unsafe.trace(...args)),
    warn: (...args) => sync(() => unsafe.warn(...args)),
    unsafe
  }
}
