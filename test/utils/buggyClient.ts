// A `SqlClient` with a bug in it, to show that a store keeps a bug a defect (never its store error,
// which HTTP answers with 503): every statement made with the client's template tag dies when run.
// (A row transform that throws was the stand-in before; the stores query without the app's
// transforms now.)
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export const withBug = <E, R>(layer: Layer.Layer<SqlClient.SqlClient, E, R>): Layer.Layer<SqlClient.SqlClient, E, R> =>
  Layer.map(layer, (context) => {
    const sql = Context.get(context, SqlClient.SqlClient)
    const buggy: SqlClient.SqlClient = new Proxy(sql, {
      apply: () => Effect.die(new Error("a bug between the driver and the store's caller")),
      get: (target, key) => (key === "withoutTransforms" ? () => buggy : Reflect.get(target, key))
    })
    return Context.add(context, SqlClient.SqlClient, buggy)
  })
