// How the plain-router middlewares hand the request's user to the app.
//
// `Effect.provideService` and `Effect.locally` both change the context through
// `acquireUseRelease` (an uninterruptible region, an `Exit`, a release step), and providing
// three services that way would copy the context three times. Here the request's services are
// added to one copy of the context, set, and the outer context is put back when the app is done.
// An interrupted request fiber skips the put-back: it is ending, and the only thing its
// finalizers could notice is the extra services.
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import type * as Option from "effect/Option"
import * as CurrentUser from "../../http/CurrentUser.js"
import * as Permissions from "../../Permissions.js"

// Most requests ask no permission question: the answers map is made on the first one.
class LazyCache implements Permissions.RequestCacheStore {
  #answers: Permissions.RequestCacheStore["answers"] | undefined
  get answers() {
    return (this.#answers ??= new Map())
  }
}

/** One per request, its map made on first use. @internal */
export const lazyCache = (): Permissions.RequestCacheStore => new LazyCache()

/** @internal */
export const runWith = <A, E, R>(
  app: HttpApp.Default<E, R>,
  outer: Context.Context<any>,
  cache: Permissions.RequestCacheStore,
  user: Option.Option<CurrentUser.Info>,
  required: boolean,
  request: HttpServerRequest.HttpServerRequest | undefined
): Effect.Effect<A, E, any> => {
  const services = new Map<string, unknown>()
  outer.unsafeMap.forEach(copyInto, services)
  // The CSRF check read a form's body: the app reads it from the request that holds it.
  if (request !== undefined) services.set(HttpServerRequest.HttpServerRequest.key, request)
  services.set(Permissions.RequestCache.key, cache)
  if (required) services.set(CurrentUser.CurrentUser.key, (user as Option.Some<CurrentUser.Info>).value)
  services.set(CurrentUser.OptionalUser.key, user)
  const restore = FiberRef.set(FiberRef.currentContext, outer)
  return Effect.zipRight(
    FiberRef.set(FiberRef.currentContext, Context.unsafeMake(services)),
    Effect.matchCauseEffect(app as unknown as Effect.Effect<A, E>, {
      onFailure: (cause) => Effect.zipRight(restore, Effect.failCause(cause)),
      onSuccess: (value) => Effect.as(restore, value)
    })
  )
}

// `forEach` into a new Map: `new Map(map)` goes through the iterator protocol, with an entry array
// and a result object per service.
function copyInto(this: Map<string, unknown>, value: unknown, key: string): void {
  this.set(key, value)
}
