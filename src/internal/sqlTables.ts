// Table names under a prefix, and migrations run with a module's own Migrator table: shared by the
// SQL user store, session store and API token backend, so they accept the same prefixes and fail
// the same way.
import * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { AuthConfigError } from "../AuthError.js"

/** @internal */
export interface TableOptions {
  readonly tablePrefix?: string | undefined
  readonly migrationsTable?: string | undefined
}

const identifier = /^[a-z_][a-z0-9_]*$/

/**
 * Checks the prefix (default `auth_`) and the Migrator's table (default
 * `effect_<prefix><name>_migrations`); `module` starts the error message.
 *
 * @internal
 */
export const resolve = <T extends object>(
  module: string,
  name: string,
  options: TableOptions,
  names: (prefix: string) => T
): Effect.Effect<T & { readonly migrations: string }, AuthConfigError> => {
  const prefix = options.tablePrefix ?? "auth_"
  if (!identifier.test(prefix) || prefix.length > 30) {
    return Effect.fail(
      new AuthConfigError({ message: `${module}: tablePrefix must match [a-z_][a-z0-9_]* (at most 30 characters)` })
    )
  }
  const migrations = options.migrationsTable ?? `effect_${prefix}${name}_migrations`
  if (!identifier.test(migrations) || migrations.length > 63) {
    return Effect.fail(
      new AuthConfigError({ message: `${module}: migrationsTable must match [a-z_][a-z0-9_]* (at most 63 characters)` })
    )
  }
  return Effect.succeed({ ...names(prefix), migrations })
}

/**
 * Every failure and every defect of `effect` as `onError(cause)`: a store's database problems
 * are its typed error, never a defect.
 *
 * @internal
 */
export const mapAllErrors = <E2>(onError: (cause: unknown) => E2) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E2, R> =>
  effect.pipe(
    Effect.mapError(onError),
    Effect.catchAllDefect((defect) => Effect.fail(onError(defect)))
  )

/**
 * Runs `migrations` with their own bookkeeping `table`; failures are `onError(cause)`.
 *
 * @internal
 */
export const migrate = <E>(
  migrations: Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>>,
  table: string,
  onError: (cause: unknown) => E
): Effect.Effect<void, E, SqlClient.SqlClient> =>
  Migrator.make({})({ loader: Migrator.fromRecord(migrations), table }).pipe(
    // The Migrator turns a failing migration into a defect; it is a database problem here.
    mapAllErrors(onError),
    Effect.asVoid
  )
