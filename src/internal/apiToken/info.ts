// What the token store and the token backend share: a row as lists show it, the checked
// token prefix (both must accept the same prefixes), and the bound on each database operation.
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { TokenInfo } from "../../ApiTokens.js"
import { AuthConfigError } from "../../AuthError.js"
import * as SqlTables from "../sqlTables.js"
import { withValueFreeChildren } from "../tracing.js"
import type { RepositoryError } from "./repository.js"
import type { TokenRow } from "./repository.js"
import { isTokenPrefix } from "./token.js"

/** @internal */
export const infoOf = (tokenPrefix: string, row: TokenRow): TokenInfo => ({
  id: row.id,
  prefix: `${tokenPrefix}_${row.id}`,
  userId: row.userId,
  name: row.name,
  scopes: row.scopes,
  createdAt: row.createdAt,
  expiresAt: Option.fromNullable(row.expiresAt),
  lastUsedAt: Option.fromNullable(row.lastUsedAt),
  revokedAt: Option.fromNullable(row.revokedAt)
})

/** The token prefix (default `ea`), checked; `module` starts the error message. @internal */
export const tokenPrefixOf = (
  module: string,
  options: { readonly tokenPrefix?: string | undefined }
): Effect.Effect<string, AuthConfigError> => {
  const tokenPrefix = options.tokenPrefix ?? "ea"
  return isTokenPrefix(tokenPrefix)
    ? Effect.succeed(tokenPrefix)
    : Effect.fail(new AuthConfigError({ message: `${module}: tokenPrefix must match [a-z][a-z0-9]{0,15}` }))
}

/**
 * Each database operation mapped to the store's error and bounded by `timeout` (default 5 s, as
 * the other SQL stores): a database whose connections froze without closing answers with that
 * error instead of holding the caller. A malformed timeout is an `AuthConfigError`. The driver's
 * spans inside end a success without the rows they read ({@link withValueFreeChildren}).
 *
 * @internal
 */
export const repoRunner = <E>(
  module: string,
  options: { readonly timeout?: Duration.DurationInput | undefined },
  storeError: (operation: string) => (cause: unknown) => E
): Effect.Effect<<A>(operation: string, effect: Effect.Effect<A, RepositoryError>) => Effect.Effect<A, E>, AuthConfigError> => {
  return Effect.map(SqlTables.timeoutOf(module, "timeout", options.timeout, SqlTables.defaultTimeout), (timeout) => {
    const guard = SqlTables.guarded(timeout, storeError)
    // A token's row holds its digest: `sql.execute`'s span must not end with it.
    return <A>(operation: string, effect: Effect.Effect<A, RepositoryError>) => withValueFreeChildren(guard(operation)(effect))
  })
}
