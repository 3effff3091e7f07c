/**
 * Requests whose login is guarded by something other than the CSRF check: an OAuth callback, a
 * `GET` the provider redirects the browser to, which carries the `state` its login started with
 * and is logged in only when that `state` matches (`OidcLogin`). `HttpAuth`'s `login` refuses any
 * other request made by a safe method, which no CSRF check covers.
 *
 * @internal
 */
const guarded = new WeakSet<object>()

/** Marks the request as guarded by its `state`; answers it. @internal */
export const mark = <A extends object>(request: A): A => {
  guarded.add(request)
  return request
}

/** Whether the request was marked by {@link mark}. @internal */
export const isGuarded = (request: object): boolean => guarded.has(request)
