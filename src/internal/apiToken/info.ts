// What the token store and the token backend share: a row as lists show it, and the checked
// token prefix (both must accept the same prefixes).
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { TokenInfo } from "../../ApiTokens.js"
import { AuthConfigError } from "../../AuthError.js"
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
