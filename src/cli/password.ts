import * as Prompt from "@effect/cli/Prompt"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { pyStrip } from "../internal/pyStrip.js"
import { Stdin } from "./io.js"

/** A failure the CLI reports as one line on stderr, with exit code 1. */
export class CliError extends Data.TaggedError("CliError")<{ readonly message: string }> {}

/** Exit code 130 (as a shell reports Ctrl-C): the user left a prompt. */
export class Aborted extends Data.TaggedError("Aborted")<{}> {}

/**
 * Whether a password is blank as Django's `createsuperuser` judges it (`password.strip() == ""`,
 * Python's whitespace): ten spaces pass every default validator, so this is the only refusal.
 */
export const isBlank = (password: string): boolean => pyStrip(password) === ""

const nonBlank = (value: string) =>
  isBlank(value) ? Effect.fail("Blank passwords are not allowed.") : Effect.succeed(value)

// Hidden prompts (no echo, no asterisks), asked twice as Django's createsuperuser does.
const fromTerminal = (confirm: boolean): Effect.Effect<Redacted.Redacted<string>, CliError | Aborted, Prompt.Prompt.Environment> =>
  Effect.gen(function*() {
    const first = yield* Prompt.run(Prompt.hidden({ message: "Password", validate: nonBlank }))
    if (!confirm) return first
    const again = yield* Prompt.run(Prompt.hidden({ message: "Password (again)" }))
    if (Redacted.value(first) !== Redacted.value(again)) {
      return yield* new CliError({ message: "the two passwords differ" })
    }
    return first
  }).pipe(Effect.catchTag("QuitException", () => new Aborted()))

// The first line of stdin, for scripts: `echo "$PASSWORD" | effect-auth createuser alice`. The
// bytes are decoded strictly, as Python decodes Django's: bytes that are no UTF-8 (a Latin-1
// `ä` from a legacy file) were read as U+FFFD, so `pässwort` and `pösswort` stored one password,
// neither of them the one piped.
const fromStdin = (stdin: Stdin["Type"]): Effect.Effect<Redacted.Redacted<string>, CliError> =>
  Effect.async((resume) => {
    const chunks: Array<Uint8Array> = []
    let answered = false
    const answer = (effect: Effect.Effect<Redacted.Redacted<string>, CliError>) => {
      if (answered) return
      stop()
      resume(effect)
    }
    const stop = () => {
      answered = true
      stdin.off("data", onData)
      stdin.off("end", onEnd)
      stdin.off("error", onEnd)
      // Nothing else reads stdin; an open pipe must not keep the process alive.
      if ("destroy" in stdin && typeof stdin.destroy === "function") stdin.destroy()
    }
    const onData = (chunk: Uint8Array | string) => {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk
      // A line ends at LF, CR or CRLF, as readline ends it.
      const end = bytes.findIndex((byte) => byte === 0x0a || byte === 0x0d)
      if (end === -1) return void chunks.push(bytes)
      chunks.push(bytes.subarray(0, end))
      answer(lineOf(Buffer.concat(chunks)))
    }
    // The last line may lack its newline; no line at all is no password.
    const onEnd = () =>
      answer(chunks.every((chunk) => chunk.length === 0) ? Effect.fail(noPassword) : lineOf(Buffer.concat(chunks)))
    stdin.on("data", onData)
    stdin.on("end", onEnd)
    stdin.on("error", onEnd)
    return Effect.sync(stop)
  })

const noPassword = new CliError({ message: "no password on standard input" })

const lineOf = (bytes: Uint8Array): Effect.Effect<Redacted.Redacted<string>, CliError> => {
  let line: string
  try {
    line = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes)
  } catch {
    return Effect.fail(new CliError({ message: "the password read from standard input is not valid UTF-8" }))
  }
  return isBlank(line)
    ? Effect.fail(new CliError({ message: "the password read from standard input is blank" }))
    : Effect.succeed(Redacted.make(line))
}

/**
 * Reads a new password: from hidden prompts when stdin is a terminal (twice with `confirm`),
 * otherwise the first line of stdin.
 */
export const read = (
  options: { readonly confirm: boolean }
): Effect.Effect<Redacted.Redacted<string>, CliError | Aborted, Prompt.Prompt.Environment | Stdin> =>
  Effect.flatMap(Stdin, (stdin) => (stdin.isTTY === true ? fromTerminal(options.confirm) : fromStdin(stdin)))
