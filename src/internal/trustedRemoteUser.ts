// The mark that tells a remote-user name set by a trusted reverse proxy from one a client typed.
//
// It lives here, not in `backends/RemoteUserBackend`, so that the HTTP layer (which reads the
// header) and the backend (which accepts only marked credentials) share it without `http/`
// importing a concrete backend. The symbol is not `Symbol.for` and this module is internal: only
// `RequestSource.remoteUser` and `RemoteUserBackend.trusted` can make a marked value.
import * as Predicate from "effect/Predicate"
import type * as Credentials from "../Credentials.js"

const trustedMark: unique symbol = Symbol("effect-auth/RemoteUser/trusted")

/**
 * Remote-user credentials marked as coming from the trusted header. The mark is a hidden
 * (non-enumerable) property: JSON cannot carry it and `Credentials.cleanse` does not show it.
 *
 * @internal
 */
export const trusted = (remoteUser: string): Credentials.RemoteUser =>
  Object.defineProperty({ remoteUser }, trustedMark, { value: true, enumerable: false })

/** @internal */
export const isTrusted = (u: unknown): boolean => Predicate.hasProperty(u, trustedMark)
