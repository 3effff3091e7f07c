/**
 * A read of a Redis key that holds another type (a hash or a list where a string is read) fails
 * with WRONGTYPE. Such a key holds nothing a store wrote: it is read as no value (as Django's
 * cache session store answers an empty session for whatever it cannot load), where the error
 * made its cookie a 503 on every request.
 *
 * @internal
 */
export const nullIfWrongType = <A>(read: Promise<A | null>): Promise<A | null> =>
  read.catch((error: unknown) =>
    error instanceof Error && error.message.startsWith("WRONGTYPE") ? null : Promise.reject(error)
  )
