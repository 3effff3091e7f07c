// The SQL user store's rows and statements: how Django's tables are read (decoded by Schema) and
// written, on SQLite and PostgreSQL. `SqlUserStore.make` adds input decoding, errors and spans.
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqlSchema from "@effect/sql/SqlSchema"
import type * as Statement from "@effect/sql/Statement"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type { Tables } from "../SqlUserStore.js"
import { columnTypes, Integer } from "./sqlTables.js"
import * as UserStore from "../UserStore.js"
import * as internal from "./userStore.js"

// Rows as PostgreSQL (native types) and SQLite (0/1, ISO text) return them.
const Bool = Schema.Union(
  Schema.Boolean,
  Schema.transform(Schema.Literal(0, 1), Schema.Boolean, { strict: true, decode: (n) => n === 1, encode: (b) => (b ? 1 : 0) })
)
// SQLite text: ours is ISO 8601 with `Z`; Django writes naive UTC (`2024-05-01 12:00:00.123456`).
const naiveUtc = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d{1,3})?\d*$/
const TimestampText = Schema.transformOrFail(Schema.String, Schema.ValidDateFromSelf, {
  strict: true,
  decode: (text, _, ast) => {
    const naive = naiveUtc.exec(text)
    const date = new Date(naive ? `${naive[1]}T${naive[2]}${naive[3] ?? ""}Z` : text)
    return Number.isNaN(date.getTime())
      ? ParseResult.fail(new ParseResult.Type(ast, text, "not a timestamp"))
      : ParseResult.succeed(date)
  },
  encode: (date) => ParseResult.succeed(date.toISOString())
})
/** A timestamp column: a Date (PostgreSQL) or text, ISO or Django's naive UTC (SQLite). @internal */
export const Timestamp = Schema.Union(Schema.ValidDateFromSelf, TimestampText)
// An id past 2^53 - 1 (a BigAutoField can hold one) is refused, not read as the nearest number a
// JavaScript number holds: "9007199254740993" would be user 9007199254740992, someone else.
const Id = Integer.pipe(Schema.filter((n) => Number.isSafeInteger(n) || "an integer id at most 2^53 - 1"))
// A row id as the store's string ids (`"7"`, whether the driver answered 7 or "7").
const IdString = Schema.transform(Id, Schema.String, { strict: true, decode: (n) => String(n), encode: Number })

// A row of the user table as a StoredUser: Django's column names, the store's field names.
const column = <S extends Schema.Schema.Any>(schema: S, key: string) =>
  Schema.propertySignature(schema).pipe(Schema.fromKey(key))
// A text column a custom user model may let be NULL (`EmailField(unique=True, null=True,
// blank=True)`, where the admin saves a blank email as NULL so that two blanks do not collide):
// read as "", as Django's own code reads None there (`normalize_email(None)`, `get_full_name`).
// Refusing the row would fail that user's login and every list of users.
const Text = Schema.transform(Schema.NullOr(Schema.String), Schema.String, {
  strict: true,
  decode: (text) => text ?? "",
  encode: (text) => text
})
const StoredUserRow = Schema.Struct({
  id: IdString,
  passwordHash: column(Schema.Redacted(Schema.String), "password"),
  lastLogin: column(Schema.OptionFromNullOr(Timestamp), "last_login"),
  isSuperuser: column(Bool, "is_superuser"),
  // The login column (`usernameField`) may be one that allows NULL, such as an email.
  username: Text,
  firstName: column(Text, "first_name"),
  lastName: column(Text, "last_name"),
  email: Text,
  isStaff: column(Bool, "is_staff"),
  isActive: column(Bool, "is_active"),
  dateJoined: column(Timestamp, "date_joined")
})
const decodeUsers = Schema.decodeUnknown(Schema.Array(StoredUserRow))

const IdRow = Schema.Struct({ id: Id })
/** @internal */
export const decodeIds = Schema.decodeUnknown(Schema.Array(IdRow))
// `app_label.codename`, as the store's permission strings.
const PermissionRow = Schema.transform(
  Schema.Struct({ app_label: Schema.String, codename: Schema.String }),
  Schema.String,
  {
    strict: true,
    decode: (row) => `${row.app_label}.${row.codename}`,
    encode: (perm) => {
      const dot = perm.indexOf(".")
      return { app_label: perm.slice(0, dot), codename: perm.slice(dot + 1) }
    }
  }
)
const NameRow = Schema.Struct({ name: Schema.String })

/** @internal */
export const isUniqueViolation = (error: SqlError | ParseResult.ParseError): boolean => {
  const code = error._tag === "SqlError" && Predicate.hasProperty(error.cause, "code") ? error.cause.code : undefined
  // PostgreSQL's unique_violation; better-sqlite3's extended result code.
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE"
}

/** A table linking an owner (user or group) to a target (group or permission). @internal */
export interface Link {
  readonly table: string
  readonly owner: string
  readonly target: "group_id" | "permission_id"
}

/**
 * Django's on-disk datetime on SQLite with `USE_TZ = True`: naive UTC, `str(datetime)`, so
 * microseconds only when there are some (`2024-05-01 12:00:00` or `2024-05-01 12:00:00.123000`).
 * Django compares these as text: ISO text with `T` and `Z` would sort apart from its own.
 *
 * @internal
 */
export const djangoSqliteTime = (d: Date): string => {
  const iso = d.toISOString() // 2024-05-01T12:00:00.123Z
  const ms = d.getUTCMilliseconds()
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${ms === 0 ? "" : `.${iso.slice(20, 23)}000`}`
}

// A Django permission codename's model: `change_post` → `post`, as Django names the default
// permissions (`<action>_<model>`); a codename without `_` is its own model. (The CLI's object
// grant reads it too: the model a permission it makes hangs off.)
/** @internal */
export const modelOf = (codename: string): string => {
  const underscore = codename.indexOf("_")
  return underscore < 0 ? codename : codename.slice(underscore + 1)
}
// Django's default permission label: `change_post` → `Can change post`.
const djangoPermissionName = (codename: string): string => {
  const underscore = codename.indexOf("_")
  return underscore < 0 ? codename : `Can ${codename.slice(0, underscore)} ${codename.slice(underscore + 1)}`
}

/** The statements of one store, on its tables. @internal */
export const make = (sql: SqlClient.SqlClient, t: Tables) => {
  const pg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
  const bool = (b: boolean): boolean | number => (pg ? b : b ? 1 : 0)
  // A user id as a parameter compared with an id column. PostgreSQL types an untyped parameter as
  // the column it meets: against an `integer` column (auth_user, effect-auth's own tables) an id
  // past 2^31-1 (valid on a BigAutoField model's table) would fail the whole query ("out of range
  // for type integer"); as bigint it matches nobody there, and every bigint id where there are some.
  const userIdParam = (id: number): Statement.Fragment => (pg ? sql`${id}::bigint` : sql`${id}`)
  const django = t.contentType !== undefined
  const time = (d: Date): string => (django && !pg ? djangoSqliteTime(d) : d.toISOString())
  const T = {
    user: sql(t.user),
    group: sql(t.group),
    // Permissions as rows of (id, app_label, codename, name). Django keeps the app label in
    // `django_content_type`: `ModelBackend` reads `content_type__app_label`, and so does this view.
    permission: django
      ? sql`(SELECT p0.id, ct0.app_label, p0.codename, p0.name FROM ${sql(t.permission)} p0
          JOIN ${sql(t.contentType!)} ct0 ON ct0.id = p0.content_type_id)`
      : sql(t.permission)
  }
  const userColumn = t.userColumn ?? "user_id"
  // The column users log in by (Django's USERNAME_FIELD): what the store calls a user's username,
  // finds users by and writes a new user's name into.
  const usernameField = t.usernameField ?? "username"
  const login = sql(usernameField)

  // --- reads, decoded by Schema

  const columns = sql`u.id, u.password, u.last_login, u.is_superuser, u.${login} AS username, u.first_name, u.last_name,
    u.email, u.is_staff, u.is_active, u.date_joined`
  const selectUsers = (where: Statement.Fragment) =>
    Effect.flatMap(sql`SELECT ${columns} FROM ${T.user} u WHERE ${where} ORDER BY u.id`, decodeUsers)
  const userById = SqlSchema.findOne({
    Request: Schema.Number,
    Result: StoredUserRow,
    execute: (id) => sql`SELECT ${columns} FROM ${T.user} u WHERE u.id = ${userIdParam(id)}`
  })
  const userByName = SqlSchema.findOne({
    Request: Schema.String,
    Result: StoredUserRow,
    execute: (name) => sql`SELECT ${columns} FROM ${T.user} u WHERE u.${login} = ${name}`
  })
  const userExists = SqlSchema.findOne({
    Request: Schema.Number,
    Result: IdRow,
    execute: (id) => sql`SELECT id FROM ${T.user} WHERE id = ${userIdParam(id)}`
  })
  const groupId = SqlSchema.findOne({
    Request: Schema.String,
    Result: IdRow,
    execute: (name) => sql`SELECT id FROM ${T.group} WHERE name = ${name}`
  })
  const permissionId = SqlSchema.findOne({
    Request: PermissionRow,
    Result: IdRow,
    execute: (p) => sql`SELECT id FROM ${T.permission} p WHERE app_label = ${p.app_label} AND codename = ${p.codename}`
  })
  const groupNames = SqlSchema.findAll({
    Request: Schema.Number,
    Result: NameRow,
    execute: (id) =>
      sql`SELECT g.name FROM ${T.group} g JOIN ${sql(t.userGroups)} ug ON ug.group_id = g.id
        WHERE ug.${sql(userColumn)} = ${userIdParam(id)}`
  })
  const permSet = (statement: Statement.Statement<unknown>) =>
    Effect.map(
      Effect.flatMap(statement, Schema.decodeUnknown(Schema.Array(PermissionRow))),
      (perms) => new Set(perms) as ReadonlySet<string>
    )

  // --- new users

  // Whether a new row needs AbstractUser's `username` besides `usernameField`: a model logging in
  // by email may keep it (REQUIRED_FIELDS = ["username"], NOT NULL and unique) or drop it
  // (`username = None`). Asked of the catalog at the first create and remembered, failures not.
  let keepsUsername: boolean | undefined = usernameField === "username" ? true : undefined
  const keepsUsernameColumn = Effect.suspend(() =>
    keepsUsername !== undefined
      ? Effect.succeed(keepsUsername)
      : Effect.map(columnTypes(sql, t.user), (types) => {
        keepsUsername = types.has("username")
        return keepsUsername
      })
  )
  // A new user's row: the name in `usernameField`, and in `username` where the model keeps that
  // column too, so that it holds a unique value as Django's `createsuperuser` would ask for one.
  // On `usernameField` "email", `u.email` is the name (see SqlUserStore's create).
  const insertUser = (u: internal.NewUser) =>
    Effect.flatMap(keepsUsernameColumn, (keeps) =>
      sql`INSERT INTO ${T.user} ${
        sql.insert({
          password: u.passwordHash,
          last_login: null,
          is_superuser: bool(u.isSuperuser),
          ...(keeps ? { username: u.username } : {}),
          first_name: u.firstName,
          last_name: u.lastName,
          email: u.email,
          is_staff: bool(u.isStaff),
          is_active: bool(u.isActive),
          date_joined: time(u.dateJoined),
          [usernameField]: u.username
        })
      } RETURNING id`)

  // --- users and groups that must exist

  // The numeric id of an existing user, or UserNotFound.
  const existing = (rawId: string) =>
    Effect.flatMap(internal.userId(rawId), (id) =>
      Option.isNone(id)
        ? Effect.fail(new UserStore.UserNotFound({ userId: rawId }))
        : Effect.flatMap(userExists(id.value), (row) =>
          Option.isNone(row) ? Effect.fail(new UserStore.UserNotFound({ userId: rawId })) : Effect.succeed(id.value)))

  // Queries about an id that cannot name a user answer `none`.
  const ifUser = <A, E, R>(rawId: string, none: A, f: (id: number) => Effect.Effect<A, E, R>) =>
    Effect.flatMap(internal.userId(rawId), Option.match({ onNone: () => Effect.succeed(none), onSome: f }))

  // UPDATE ... RETURNING id: no row means no such user.
  const update = (rawId: string, sets: ReadonlyArray<Statement.Fragment>) =>
    Effect.flatMap(internal.userId(rawId), (id) =>
      Option.isNone(id)
        ? Effect.fail(new UserStore.UserNotFound({ userId: rawId }))
        : sets.length === 0
        ? Effect.asVoid(existing(rawId))
        : Effect.flatMap(
          sql`UPDATE ${T.user} SET ${sql.csv(sets)} WHERE id = ${userIdParam(id.value)} RETURNING id`,
          decodeIds
        ).pipe(
          Effect.flatMap((rows) =>
            rows.length === 0 ? Effect.fail(new UserStore.UserNotFound({ userId: rawId })) : Effect.void
          )
        ))

  const existingGroup = (rawName: string) =>
    Effect.flatMap(internal.groupName(rawName), (name) =>
      Effect.flatMap(
        groupId(name),
        Option.match({
          onNone: () => Effect.fail(new UserStore.GroupNotFound({ name })),
          onSome: (row) => Effect.succeed(row.id)
        })
      ))

  // INSERT ... ON CONFLICT DO NOTHING, then the row's id: concurrent creators agree on one row.
  const ensure = (
    what: string,
    insert: Statement.Statement<unknown>,
    find: Effect.Effect<Option.Option<{ readonly id: number }>, SqlError | ParseResult.ParseError>
  ) =>
    Effect.zipRight(
      insert,
      Effect.flatMap(find, (row) =>
        Option.isSome(row) ? Effect.succeed(row.value.id) : Effect.dieMessage(`${what} vanished after its insert`))
    )
  const ensureGroup = (name: string) =>
    ensure(
      `group ${name}`,
      sql`INSERT INTO ${T.group} (name) VALUES (${name}) ON CONFLICT (name) DO NOTHING`,
      groupId(name)
    )
  // On Django's tables a new permission hangs off the content type of its app label and the
  // codename's model (`blog.change_post` → `blog | post`), made if missing, as Django names them.
  const ensurePermission = (p: internal.ParsedPermission, name?: string) =>
    django
      ? Effect.flatMap(permissionId(p.perm), (found) =>
        Option.isSome(found) ? Effect.succeed(found.value.id) : Effect.flatMap(
          ensure(
            `content type ${p.appLabel}.${modelOf(p.codename)}`,
            sql`INSERT INTO ${sql(t.contentType!)} (app_label, model) VALUES (${p.appLabel}, ${modelOf(p.codename)})
              ON CONFLICT (app_label, model) DO NOTHING`,
            contentTypeId(p.appLabel, modelOf(p.codename))
          ),
          (contentType) =>
            ensure(
              `permission ${p.perm}`,
              sql`INSERT INTO ${sql(t.permission)} (name, content_type_id, codename)
                VALUES (${name ?? djangoPermissionName(p.codename)}, ${contentType}, ${p.codename})
                ON CONFLICT (content_type_id, codename) DO NOTHING`,
              permissionId(p.perm)
            )
        ))
      : ensure(
        `permission ${p.perm}`,
        sql`INSERT INTO ${T.permission} (name, app_label, codename)
          VALUES (${name ?? p.perm}, ${p.appLabel}, ${p.codename})
          ON CONFLICT (app_label, codename) DO NOTHING`,
        permissionId(p.perm)
      )
  const contentTypeId = (appLabel: string, model: string) =>
    Effect.map(
      Effect.flatMap(
        sql`SELECT id FROM ${sql(t.contentType!)} WHERE app_label = ${appLabel} AND model = ${model}`,
        decodeIds
      ),
      (rows) => Option.fromNullable(rows[0])
    )

  // --- the link tables: one path for memberships and for user and group permissions

  const links = {
    userGroups: { table: t.userGroups, owner: userColumn, target: "group_id" },
    userPermissions: { table: t.userPermissions, owner: userColumn, target: "permission_id" },
    groupPermissions: { table: t.groupPermissions, owner: "group_id", target: "permission_id" }
  } as const satisfies Record<string, Link>

  const link = (l: Link, ownerId: number, targetId: number) =>
    sql`INSERT INTO ${sql(l.table)} (${sql(l.owner)}, ${sql(l.target)}) VALUES (${ownerId}, ${targetId})
      ON CONFLICT (${sql(l.owner)}, ${sql(l.target)}) DO NOTHING`
  const unlink = (l: Link, ownerId: number, targets: Statement.Fragment) =>
    sql`DELETE FROM ${sql(l.table)} WHERE ${sql(l.owner)} = ${ownerId} AND ${sql(l.target)} IN (${targets})`
  const permissionIds = (p: internal.ParsedPermission) =>
    sql`SELECT id FROM ${T.permission} p WHERE app_label = ${p.appLabel} AND codename = ${p.codename}`

  return {
    django,
    permissionId,
    userColumn,
    usernameField,
    insertUser,
    bool,
    userIdParam,
    time,
    T,
    selectUsers,
    userById,
    userByName,
    groupNames,
    permSet,
    existing,
    ifUser,
    update,
    existingGroup,
    ensureGroup,
    ensurePermission,
    links,
    link,
    unlink,
    permissionIds
  }
}
