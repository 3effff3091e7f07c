import * as Prompt from "@effect/cli/Prompt"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as readline from "node:readline"
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

// The first line of stdin, for scripts: `echo "$PASSWORD" | effect-auth createuser alice`.
const fromStdin = (stdin: Stdin["Type"]): Effect.Effect<Redacted.Redacted<string>, CliError> =>
  Effect.async((resume) => {
    const rl = readline.createInterface({ input: stdin, terminal: false, crlfDelay: Infinity })
    let answered = false
    const answer = (effect: Effect.Effect<Redacted.Redacted<string>, CliError>) => {
      if (answered) return
      answered = true
      rl.close()
      // Nothing else reads stdin; an open pipe must not keep the process alive.
      if ("destroy" in stdin && typeof stdin.destroy === "function") stdin.destroy()
      resume(effect)
    }
    rl.on("line", (line) =>
      answer(
        isBlank(line)
          ? Effect.fail(new CliError({ message: "the password read from standard input is blank" }))
          : Effect.succeed(Redacted.make(line))
      ))
    rl.on("close", () => answer(Effect.fail(new CliError({ message: "no password on standard input" }))))
    return Effect.sync(() => {
      answered = true
      rl.close()
    })
  })

/**
 * Reads a new password: from hidden prompts when stdin is a terminal (twice with `confirm`),
 * otherwise the first line of stdin.
 */
export const read = (
  options: { readonly confirm: boolean }
): Effect.Effect<Redacted.Redacted<string>, CliError | Aborted, Prompt.Prompt.Environment | Stdin> =>
  Effect.flatMap(Stdin, (stdin) => (stdin.isTTY === true ? fromTerminal(options.confirm) : fromStdin(stdin)))
