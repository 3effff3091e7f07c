// The input check of a store built by a module's `make(store)`: what an untyped caller may hand
// over (null, a number, NaN, an object whose getter or Proxy trap throws) is read and checked once,
// before the store sees it, and refused alike on every engine with the module's own error.

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
 * Reads and checks the input of an operation, then runs it on what was read; a refusal, or a
 * throw while reading (the input could not be read), is `fail(message)`. Only the reading is
 * caught: a store that throws is a defect of that store, not bad input.
 *
 * @internal
 */
export const checked = <I, R>(
  read: () => I,
  run: (input: I) => R,
  fail: (message: string) => R
): R => {
  let input: I
  try {
    input = read()
  } catch (error) {
    return fail(error instanceof Refused ? error.message : "the input could not be read")
  }
  return run(input)
}
