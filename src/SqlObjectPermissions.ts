/**
 * `ObjectPermissions` on `@effect/sql`, SQLite or PostgreSQL: django-guardian's two tables,
 * `auth_user_object_permission` and `auth_group_object_permission` by default (permission,
 * content type, object primary key, and the user id or group name), created by the `Migrator`
 * with their own bookkeeping table `effect_<prefix>object_permission_migrations`. On a Django
 * site's database (the `django` option) a group's grants are kept by the group's id, with a
 * foreign key to `auth_group` that deletes them with the group, as guardian's do, and each model's
 * permissions are Django's (`auth_permission` of the object's `django_content_type`); on its own
 * tables the store takes them as `models`. A store that knows them refuses a grant of any other
 * permission on the model's objects, as guardian's `assign_perm` fails. Any database
 * failure, or no answer within `timeout`, is an `ObjectPermissionsError` (a `TransportError` of
 * `ObjectPermissionBackend`, HTTP 503); so is input of the wrong type, or that not every engine
 * keeps as it is (a NUL, a lone surrogate, an id or group name past the columns' 255 characters),
 * refused before the database is asked, as the memory store refuses it (`ObjectPermissions.make`).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SqlObjectPermissions, SqlUserStore } from "effect-auth"
 *
 * const ObjectPermissionsLive = SqlObjectPermissions.layer().pipe(
 *   Layer.provide(SqlUserStore.layerSqlite({ filename: ":memory:" }))
 * )
 * ```
 *
 * @since 0.2.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { AuthConfigError } from "./AuthError.js"
import * as ModelRegistry from "./internal/modelPermissions.js"
import * as SqlTables from "./internal/sqlTables.js"
import * as ObjectPermissions from "./ObjectPermissions.js"

/**
 * Where the tables live, and how long one operation may take.
 *
 * @example
 * ```ts
 * import type { SqlObjectPermissions } from "effect-auth"
 *
 * const options: SqlObjectPermissions.Options = { tablePrefix: "shop_", timeout: "2 seconds" }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Prefix of the tables: `[a-z_][a-z0-9_]*`, at most 30 characters. Default: `"auth_"`. */
  readonly tablePrefix?: string | undefined
  /** The Migrator's bookkeeping table. Default: `effect_<tablePrefix>object_permission_migrations`. */
  readonly migrationsTable?: string | undefined
  /** How long one store operation may take. Default: 5 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * On a Django site's database, beside `SqlUserStore`'s `django` option (the same value may be
   * given: only `tables.group` is read): a group's grants follow the group itself, not its name.
   * They are kept by the id of its row in Django's group table (`auth_group`, or `tables.group`),
   * with a foreign key `ON DELETE CASCADE`, as guardian's `GroupObjectPermission.group`: when
   * Django deletes a group its grants go with it, and a new group Django makes under the same
   * name holds none of them. A grant to a group Django has no row for fails. The migration
   * `2_group_grants_by_group_id` converts a table made without this option: each grant gets the
   * id of the group now of its name, and the grants of groups that are gone are dropped. Once
   * converted, the tables need this option. Each model's permissions are then Django's own, read
   * from `auth_permission` and `django_content_type` (or `tables.permission` and
   * `tables.contentType`), as guardian reads them: a grant of a permission the object's model
   * has no row for fails, and the store has `modelPermissions` (see `ObjectPermissions.Service`).
   */
  readonly django?: boolean | DjangoGroups | undefined
  /**
   * Each model's permissions (`ObjectPermissions.Models`), on effect-auth's own tables (with
   * `django` they are Django's, and giving both is an `AuthConfigError`): a grant of a permission
   * the object's model does not have fails, as guardian's `assign_perm` fails. Without it (and
   * without `django`) the store knows only each permission's app.
   */
  readonly models?: ObjectPermissions.Models | undefined
}

/**
 * Where a Django site keeps its groups and its permissions: `SqlUserStore.DjangoOptions` has this
 * shape, so the options given to the user store can be given here too.
 *
 * @example
 * ```ts
 * import type { SqlObjectPermissions } from "effect-auth"
 *
 * const django: SqlObjectPermissions.DjangoGroups = { tables: { group: "auth_group" } }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface DjangoGroups {
  readonly tables?: {
    /** Default `auth_group`. */
    readonly group?: string | undefined
    /** Default `auth_permission`. */
    readonly permission?: string | undefined
    /** Default `django_content_type`. */
    readonly contentType?: string | undefined
  } | undefined
}

/**
 * The resolved table names.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlObjectPermissions } from "effect-auth"
 *
 * const t: SqlObjectPermissions.Tables = Effect.runSync(SqlObjectPermissions.tables())
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Tables {
  readonly user: string
  readonly group: string
  readonly migrations: string
  /** On a Django site's database (`django`): the groups table the group grants reference by id. */
  readonly djangoGroup?: string | undefined
  /** On a Django site's database (`django`): its permissions table, read for each model's permissions. */
  readonly djangoPermission?: string | undefined
  /** On a Django site's database (`django`): its content types table. */
  readonly djangoContentType?: string | undefined
}

/**
 * Resolves and checks the table names; a bad prefix is an `AuthConfigError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlObjectPermissions } from "effect-auth"
 *
 * Effect.runSync(SqlObjectPermissions.tables()).user // "auth_user_object_permission"
 * ```
 *
 * @since 0.2.0
 * @category utils
 */
export const tables = (options: Options = {}): Effect.Effect<Tables, AuthConfigError> =>
  Effect.flatMap(
    SqlTables.resolve("SqlObjectPermissions", "object_permission", options, (prefix) => ({
      user: `${prefix}user_object_permission`,
      group: `${prefix}group_object_permission`
    })),
    (t) => {
      if (!options.django) return Effect.succeed(t)
      if (options.models !== undefined) {
        return Effect.fail(
          new AuthConfigError({
            message: "SqlObjectPermissions: models and django exclude each other (on Django's tables the models' permissions are Django's)"
          })
        )
      }
      const given = typeof options.django === "object" ? options.django.tables : undefined
      // (each read once: an untyped caller's value may be anything)
      const group: unknown = given?.group ?? "auth_group"
      const permission: unknown = given?.permission ?? "auth_permission"
      const contentType: unknown = given?.contentType ?? "django_content_type"
      const bad = ([["group", group], ["permission", permission], ["contentType", contentType]] as const)
        .find(([, name]) => typeof name !== "string" || !SqlTables.isTableName(name))
      return bad === undefined
        ? Effect.succeed({
          ...t,
          djangoGroup: group as string,
          djangoPermission: permission as string,
          djangoContentType: contentType as string
        })
        : Effect.fail(
          new AuthConfigError({
            message: `SqlObjectPermissions: django.tables.${bad[0]} must match [A-Za-z_][A-Za-z0-9_]* (at most 63 characters)`
          })
        )
    }
  )

const createTables = (t: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlTables.client
    for (const [table, who] of [[t.user, "user_id"], [t.group, "group_name"]] as const) {
      yield* sql`CREATE TABLE ${sql(table)} (
        ${sql(who)} varchar(255) NOT NULL,
        permission varchar(255) NOT NULL,
        content_type varchar(201) NOT NULL,
        object_pk varchar(255) NOT NULL,
        PRIMARY KEY (${sql(who)}, content_type, object_pk, permission)
      )`
      yield* sql`CREATE INDEX ${sql(`${table}_object`)} ON ${sql(table)} (content_type, object_pk)`
    }
  })

// On a Django site's database the group grants reference the group's row (guardian's FK with
// on_delete=CASCADE): kept by name, a group Django deleted left its grants to the next group of
// that name, whoever its members. The table is made anew (SQLite cannot change a primary key):
// each grant takes the id of the group now of its name; a grant whose group is gone is dropped.
const groupGrantsById = (t: Tables, groups: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlTables.client
    const next = `${t.group}_by_id`
    yield* sql`CREATE TABLE ${sql(next)} (
      group_id integer NOT NULL REFERENCES ${sql(groups)} (id) ON DELETE CASCADE,
      permission varchar(255) NOT NULL,
      content_type varchar(201) NOT NULL,
      object_pk varchar(255) NOT NULL,
      PRIMARY KEY (group_id, content_type, object_pk, permission)
    )`
    yield* sql`INSERT INTO ${sql(next)} (group_id, permission, content_type, object_pk)
      SELECT g.id, o.permission, o.content_type, o.object_pk
      FROM ${sql(t.group)} o JOIN ${sql(groups)} g ON g.name = o.group_name`
    yield* sql`DROP TABLE ${sql(t.group)}`
    yield* sql`ALTER TABLE ${sql(next)} RENAME TO ${sql(t.group)}`
    yield* sql`CREATE INDEX ${sql(`${t.group}_object`)} ON ${sql(t.group)} (content_type, object_pk)`
  })

/**
 * The store's migrations, for apps that run every module's migrations through one `Migrator`.
 * On a Django site's database (`django`) there is a second: `2_group_grants_by_group_id`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlObjectPermissions } from "effect-auth"
 *
 * const names = Effect.map(SqlObjectPermissions.tables(), (t) => Object.keys(SqlObjectPermissions.migrations(t)))
 * ```
 *
 * @since 0.2.0
 * @category migrations
 */
export const migrations = (t: Tables): Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> => ({
  "1_create_object_permission_tables": createTables(t),
  ...(t.djangoGroup === undefined ? {} : { "2_group_grants_by_group_id": groupGrantsById(t, t.djangoGroup) })
})

const storeError = (operation: string) => (cause: unknown) =>
  new ObjectPermissions.ObjectPermissionsError({ operation, message: SqlTables.oneLine(cause) })

/**
 * Runs the store's migrations with its own migrations table.
 *
 * @example
 * ```ts
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Effect } from "effect"
 * import { SqlObjectPermissions } from "effect-auth"
 *
 * const program = SqlObjectPermissions.migrate().pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" })))
 * ```
 *
 * @since 0.2.0
 * @category migrations
 */
export const migrate = (
  options: Options = {}
): Effect.Effect<void, AuthConfigError | ObjectPermissions.ObjectPermissionsError, SqlClient.SqlClient> =>
  Effect.flatMap(tables(options), (t) => SqlTables.migrate(migrations(t), t.migrations, storeError("migrate")))

const decodePerms = Schema.decodeUnknown(Schema.Array(Schema.Struct({ permission: Schema.String })))
const decodeGroupPerms = Schema.decodeUnknown(
  Schema.Array(Schema.Struct({ group_name: Schema.String, permission: Schema.String }))
)

/**
 * Builds the store on the `SqlClient` in context; it does not migrate (see {@link layer}).
 *
 * @example
 * ```ts
 * import { SqlObjectPermissions } from "effect-auth"
 *
 * const store = SqlObjectPermissions.make({ tablePrefix: "shop_" })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<ObjectPermissions.Service, AuthConfigError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const t = yield* tables(options)
    const models = options.models === undefined ? undefined : yield* ModelRegistry.check("SqlObjectPermissions", options.models)
    const sql = yield* SqlTables.client
    const run = yield* SqlTables.runner("ObjectPermissions", options.timeout, storeError)
    // `ObjectPermissions.make` checks every call's input before these run
    const change = (operation: string, table: string, who: "user_id" | "group_name", add: boolean) =>
    (whom: string, perm: string, obj: ObjectPermissions.ObjectRef) =>
      run(
        operation,
        Effect.asVoid(
          add
            ? sql`INSERT INTO ${sql(table)} (${sql(who)}, permission, content_type, object_pk)
              VALUES (${whom}, ${perm}, ${obj.contentType}, ${obj.objectPk}) ON CONFLICT DO NOTHING`
            : sql`DELETE FROM ${sql(table)} WHERE ${sql(who)} = ${whom} AND permission = ${perm}
              AND content_type = ${obj.contentType} AND object_pk = ${obj.objectPk}`
        )
      )
    const byName = (rows: ReadonlyArray<{ readonly group_name: string; readonly permission: string }>) => {
      const out = new Map<string, Set<string>>()
      for (const row of rows) {
        const set = out.get(row.group_name) ?? new Set<string>()
        set.add(row.permission)
        out.set(row.group_name, set)
      }
      return out as ReadonlyMap<string, ReadonlySet<string>>
    }
    const groupPermissionsByName = (groups: ReadonlyArray<string>, obj: ObjectPermissions.ObjectRef) =>
      Effect.flatMap(
        sql`SELECT group_name, permission FROM ${sql(t.group)} WHERE ${sql.in("group_name", groups)}
          AND content_type = ${obj.contentType} AND object_pk = ${obj.objectPk}`,
        decodeGroupPerms
      )
    const groupStore = t.djangoGroup === undefined
      ? {
        grantGroup: change("grantGroup", t.group, "group_name", true),
        revokeGroup: change("revokeGroup", t.group, "group_name", false),
        groupRows: groupPermissionsByName
      }
      : djangoGroups(sql, t, t.djangoGroup, run)
    const modelPermissions = t.djangoPermission !== undefined && t.djangoContentType !== undefined
      ? djangoModelPermissions(sql, t.djangoPermission, t.djangoContentType, run)
      : models === undefined
      ? undefined
      : (contentType: string) => Effect.succeed(models.get(contentType) ?? noPermissions)
    return ObjectPermissions.make({
      ...(modelPermissions === undefined ? {} : { modelPermissions }),
      grantUser: change("grantUser", t.user, "user_id", true),
      revokeUser: change("revokeUser", t.user, "user_id", false),
      grantGroup: groupStore.grantGroup,
      revokeGroup: groupStore.revokeGroup,
      userPermissions: (userId, obj) =>
        run(
          "userPermissions",
          Effect.map(
            Effect.flatMap(
              sql`SELECT permission FROM ${sql(t.user)} WHERE user_id = ${userId}
                AND content_type = ${obj.contentType} AND object_pk = ${obj.objectPk}`,
              decodePerms
            ),
            (rows): ReadonlySet<string> => new Set(rows.map((row) => row.permission))
          )
        ),
      groupPermissions: (groups, obj) =>
        groups.length === 0
          ? Effect.succeed(new Map())
          : run(
            "groupPermissions",
            Effect.map(
              Effect.forEach(slices(groups, groupsPerQuery), (names) => groupStore.groupRows(names, obj)),
              (rows) => byName(rows.flat())
            )
          )
    })
  })

// A statement takes at most 32,766 bound values on SQLite ("too many SQL variables") and 65,535 on
// PostgreSQL: a longer list of groups is asked in slices, so that the SQL store answers what the
// memory store answers for any list.
const groupsPerQuery = 10_000
const slices = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

const noPermissions: ReadonlySet<string> = new Set()

const decodeCodenames = Schema.decodeUnknown(Schema.Array(Schema.Struct({ codename: Schema.String })))

// A model's permissions on a Django site's database, as guardian reads them
// (`Permission.objects.filter(content_type=ctype)`): the rows of `auth_permission` of the
// content type's row in `django_content_type`; none for a model Django has no row for.
const djangoModelPermissions = (
  sql: SqlClient.SqlClient,
  permissions: string,
  contentTypes: string,
  run: <A, E, R>(operation: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, ObjectPermissions.ObjectPermissionsError, R>
) =>
(contentType: string): Effect.Effect<ReadonlySet<string>, ObjectPermissions.ObjectPermissionsError> => {
  // (a content type has one dot, `ObjectPermissions.make` has checked it)
  const [appLabel, model] = contentType.split(".") as [string, string]
  return run(
    "modelPermissions",
    Effect.map(
      Effect.flatMap(
        sql`SELECT p.codename FROM ${sql(permissions)} p JOIN ${sql(contentTypes)} c ON c.id = p.content_type_id
          WHERE c.app_label = ${appLabel} AND c.model = ${model}`,
        decodeCodenames
      ),
      (rows): ReadonlySet<string> => new Set(rows.map((row) => `${appLabel}.${row.codename}`))
    )
  )
}

const decodeGroupIds = Schema.decodeUnknown(Schema.Array(Schema.Struct({ id: SqlTables.Integer })))

// Group grants on a Django site's database: by the id of the group's row in Django's table, which
// the names the `UserStore` answers are looked up in, so that a grant is the group's own and goes
// when Django deletes it (the table's foreign key), never to a later group of the same name.
const djangoGroups = (
  sql: SqlClient.SqlClient,
  t: Tables,
  groups: string,
  run: <A, E, R>(operation: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, ObjectPermissions.ObjectPermissionsError, R>
) => ({
  // guardian assigns to a Group row: a name Django has no group of is refused, not kept for a
  // group that may be made under it later.
  grantGroup: (name: string, perm: string, obj: ObjectPermissions.ObjectRef) =>
    Effect.flatMap(
      run(
        "grantGroup",
        Effect.flatMap(sql`SELECT id FROM ${sql(groups)} WHERE name = ${name}`, decodeGroupIds)
      ),
      (rows) =>
        rows.length === 0
          ? Effect.fail(
            new ObjectPermissions.ObjectPermissionsError({
              operation: "grantGroup",
              message: `no group named ${JSON.stringify(name)} in ${groups}`
            })
          )
          : run(
            "grantGroup",
            Effect.asVoid(
              sql`INSERT INTO ${sql(t.group)} (group_id, permission, content_type, object_pk)
                VALUES (${rows[0]!.id}, ${perm}, ${obj.contentType}, ${obj.objectPk}) ON CONFLICT DO NOTHING`
            )
          )
    ),
  revokeGroup: (name: string, perm: string, obj: ObjectPermissions.ObjectRef) =>
    run(
      "revokeGroup",
      Effect.asVoid(
        sql`DELETE FROM ${sql(t.group)} WHERE group_id IN (SELECT id FROM ${sql(groups)} WHERE name = ${name})
          AND permission = ${perm} AND content_type = ${obj.contentType} AND object_pk = ${obj.objectPk}`
      )
    ),
  groupRows: (names: ReadonlyArray<string>, obj: ObjectPermissions.ObjectRef) =>
    Effect.flatMap(
      sql`SELECT g.name AS group_name, o.permission FROM ${sql(t.group)} o JOIN ${sql(groups)} g ON g.id = o.group_id
        WHERE ${sql.in("g.name", names)} AND o.content_type = ${obj.contentType} AND o.object_pk = ${obj.objectPk}`,
      decodeGroupPerms
    )
})

/**
 * The store on the `SqlClient` in context, migrated unless `migrate: false`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SqlObjectPermissions, SqlUserStore } from "effect-auth"
 *
 * const ObjectPermissionsLive = SqlObjectPermissions.layer({ tablePrefix: "shop_" }).pipe(
 *   Layer.provide(SqlUserStore.layerPg({ url: "postgres://app@db/app" }))
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options & { readonly migrate?: boolean | undefined } = {}
): Layer.Layer<
  ObjectPermissions.ObjectPermissions,
  AuthConfigError | ObjectPermissions.ObjectPermissionsError,
  SqlClient.SqlClient
> =>
  Layer.effect(
    ObjectPermissions.ObjectPermissions,
    Effect.zipRight(options.migrate === false ? Effect.void : migrate(options), make(options))
  )
