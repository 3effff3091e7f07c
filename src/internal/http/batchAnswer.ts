import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import type * as AuthError from "../../AuthError.js"
import type { User } from "../../User.js"
import type { Batch } from "./userLoader.js"

/** @internal */
export interface Options {
  /** Schema of the whole body: `Schema.Array(user)` by default, or the app's own. */
  readonly users: Schema.Schema<ReadonlyArray<User>, any, never>
  /** Whether `getUser` may answer with this user (Django's `get_user` hides the inactive). */
  readonly visible: (user: User) => boolean
  /** The failure for a record (or body) that does not decode, at `issue`. */
  readonly mismatch: (where: string, issue: ParseResult.ParseIssue) => AuthError.TransportError
  readonly transport: (cause: string) => AuthError.TransportError
}

/**
 * Turns a batch endpoint's parsed JSON body into the answer for the ids asked.
 *
 * When the body's Schema is an array of users (`Schema.Array(user)`, the default), each element is
 * decoded on its own: an element that does not decode fails only the callers of the id it carries,
 * as `GET /users/:id` would have failed that id's caller alone. Decoding the array as a whole
 * made one record the app's Schema refuses (a user who set a field to something the app does not
 * accept) fail every caller of the chunk, a 503 for the other users' requests for as long as that
 * user kept sending requests. Django loads each user on its own (`get_user(user_id)`).
 *
 * The id an element that does not decode carries is its `id` field as the service sent it: a
 * string, or an integer written as one (the Schema may turn `42` into `"42"`). An element whose id
 * cannot be read that way, or that is not one of the ids asked, cannot be pinned on a caller: it
 * fails the whole chunk, as does a body that is not an array, or one that another Schema of the
 * app's (not an array of users) refuses. So does any such element where the `id` key may not be
 * the user's id (see `idKeyOf`).
 *
 * An id listed twice fails the whole chunk, whether or not its copies decode (which copy is the
 * user is not for the backend to guess); users not asked for are dropped.
 *
 * @internal
 */
export const make = (options: Options) => {
  const { mismatch, transport, visible } = options
  const element = elementOf(options.users)
  const idKey = element === undefined ? "renamed" : idKeyOf(element.ast)

  const answer = (
    ids: ReadonlyArray<string>,
    where: string,
    elements: ReadonlyArray<unknown>,
    results: ReadonlyArray<Either.Either<User, ParseResult.ParseIssue>>
  ): Effect.Effect<Batch, AuthError.TransportError> => {
    const asked = new Set(ids)
    const seen = new Set<string>()
    const users: Array<User> = []
    let failed: Map<string, AuthError.TransportError> | undefined = undefined
    // A record that does not decode is pinned on its raw `id` only where that key is the user's
    // id: a Schema that keeps the key (a struct, a class), or one whose mapping the records that
    // did decode vouch for (each one's raw `id` is its user's id). A Schema taking the id from
    // another key (`Schema.fromKey("user_id")`) beside a raw `id` of other meaning (a row number)
    // would pin user 7's broken record on user 3: 3's callers failed, 7's told "no such user".
    let pinnable = idKey === "kept"
    if (idKey === "unknown") {
      let vouched = false
      pinnable = true
      for (let i = 0; i < results.length && pinnable; i++) {
        const result = results[i]!
        if (Either.isLeft(result)) continue
        vouched = true
        pinnable = carriedId(elements[i]) === result.right.id
      }
      pinnable &&= vouched
    }
    for (let i = 0; i < results.length; i++) {
      const result = results[i]!
      if (Either.isRight(result)) {
        const user = result.right
        if (!asked.has(user.id)) continue
        // Checked before the inactive are hidden, so hiding one copy cannot hide the conflict.
        if (seen.has(user.id)) return Effect.fail(listedTwice(where))
        seen.add(user.id)
        if (visible(user)) users.push(user)
        continue
      }
      const id = pinnable ? carriedId(elements[i]) : undefined
      if (id === undefined || !asked.has(id)) {
        // Nobody's in particular: the chunk fails, its message pointing at the element.
        return Effect.fail(mismatch(where, new ParseResult.Pointer(i, elements[i], result.left)))
      }
      if (seen.has(id)) return Effect.fail(listedTwice(where))
      seen.add(id)
      // The wording `GET /users/:id` gives its caller: the request and the failing paths.
      ;(failed ??= new Map()).set(id, mismatch(where, result.left))
    }
    return Effect.succeed({ users, failed })
  }

  const listedTwice = (where: string) => transport(`${where}: the answer lists an id asked for more than once`)

  if (element === undefined) {
    const decode = ParseResult.decodeUnknown(options.users)
    return (json: unknown, ids: ReadonlyArray<string>, where: string): Effect.Effect<Batch, AuthError.TransportError> =>
      Effect.flatMap(
        Effect.mapError(decode(json), (issue) => mismatch(where, issue)),
        (users) => answer(ids, where, users, users.map((user) => Either.right(user)))
      )
  }

  // Built once: the loader's CPU per chunk is benched (bench/http-getuser.ts).
  const decodeOne = ParseResult.decodeUnknown(element)
  const decodeEach = (
    elements: ReadonlyArray<unknown>
  ): Effect.Effect<ReadonlyArray<Either.Either<User, ParseResult.ParseIssue>>> => {
    const results = new Array<Either.Either<User, ParseResult.ParseIssue>>(elements.length)
    for (let i = 0; i < elements.length; i++) {
      // A Schema that decodes synchronously answers with an Either, no fiber step per element.
      const result = decodeOne(elements[i])
      if (!Either.isEither(result)) {
        // One with asynchronous parts (a `transformOrFail` returning an effect): run each.
        return Effect.forEach(elements, (value) => Effect.either(decodeOne(value)))
      }
      results[i] = result as Either.Either<User, ParseResult.ParseIssue>
    }
    return Effect.succeed(results)
  }
  return (json: unknown, ids: ReadonlyArray<string>, where: string): Effect.Effect<Batch, AuthError.TransportError> => {
    if (!Array.isArray(json)) {
      return Effect.fail(mismatch(where, new ParseResult.Type(options.users.ast, json)))
    }
    return Effect.flatMap(decodeEach(json), (results) => answer(ids, where, json, results))
  }
}

// `Schema.Array(user)`: a tuple of no fixed elements and one rest element. Anything else (a
// refinement of the array, a wrapper object) is decoded as a whole.
const elementOf = (schema: Schema.Schema<ReadonlyArray<User>, any, never>): Schema.Schema<User, any, never> | undefined => {
  const ast = schema.ast
  if (!AST.isTupleType(ast) || ast.elements.length !== 0 || ast.rest.length !== 1) return undefined
  return Schema.make<User, any, never>(ast.rest[0]!.type)
}

// Whether the element Schema reads the user's id from the record's own `id` key: "kept" for a
// struct or a class over one (refined or not), "renamed" where a key mapping moves `id` from or to
// another key, "unknown" for any other transformation (a `Schema.transform` may build the id from
// anything): then the records that decode tell.
const idKeyOf = (ast: AST.AST): "kept" | "renamed" | "unknown" => {
  switch (ast._tag) {
    case "TypeLiteral":
      return "kept"
    case "Refinement":
      return idKeyOf(ast.from)
    case "Transformation": {
      const transformation = ast.transformation
      if (AST.isTypeLiteralTransformation(transformation)) {
        const moved = transformation.propertySignatureTransformations.some((t) => (t.from === "id") !== (t.to === "id"))
        return moved ? "renamed" : combine(idKeyOf(ast.from), idKeyOf(ast.to))
      }
      // `Schema.Class`: its instances are made of the fields as they are
      if (AST.isDeclaration(ast.to) && AST.isFinalTransformation(transformation)) return idKeyOf(ast.from)
      return "unknown"
    }
    default:
      return "unknown"
  }
}

const combine = (a: "kept" | "renamed" | "unknown", b: "kept" | "renamed" | "unknown") =>
  a === "renamed" || b === "renamed" ? "renamed" : a === "kept" && b === "kept" ? "kept" : "unknown"

const carriedId = (element: unknown): string | undefined => {
  if (typeof element !== "object" || element === null) return undefined
  const id = (element as { readonly id?: unknown }).id
  if (typeof id === "string") return id
  return typeof id === "number" && Number.isSafeInteger(id) ? String(id) : undefined
}
