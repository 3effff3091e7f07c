// The input check of a store built by a module's `make(store)`: what an untyped caller may hand
// over (null, a number, NaN, an object whose getter or Proxy trap throws) is read and checked once,
// before the store sees it, and refused alike on every engine with the module's own error.
import * as Effect from "effect/Effect"

/** Thrown by a reader to refuse the input with this message. @internal */
export class Refused {
  constructor(readonly message: string) {}
}

/** Refuses the input being read (see {@link checked}). @internal */
export const refuse = (message: string): never => {
  throw new Refused(message)
}

/** The user id columns' bound, shared by the stores: 1 to 255 characters, no NUL or lone surrogate. @internal */
export const userIdMessage = "userId must be a user id: 1 to 255 characters, no NUL or lone surrogate"

/**
 * The input check of one module's store: `checked(operation, read, run)` reads and checks the
 * input of `operation`, then runs it on what was read; a refusal, or a throw while reading (the
 * input could not be read), fails with `fail(operation, message)`, the module's own error, and
 * `run` is not called. Only the reading is caught: a store that throws is a defect of that store,
 * not bad input.
 *
 * @internal
 */
export const checker = <E>(fail: (operation: string, message: string) => E) =>
<I, A>(operation: string, read: () => I, run: (input: I) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.suspend(() => {
    let input: I
    try {
      input = read()
    } catch (error) {
      return Effect.fail(fail(operation, error instanceof Refused ? error.message : "the input could not be read"))
    }
    return run(input)
  })
