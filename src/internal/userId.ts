import * as CredentialsDecoder from "./credentialsDecoder.js"

/** A user id's bounds in UTF-16 units, as `User.UserId` declares them. @internal */
export const minLength = 1
/** @internal */
export const maxLength = 255

/**
 * `Schema.is(User.UserId)` without the Schema's interpreter, which costs ~0.15 µs and an
 * allocation per call on every `getUser` (1000 concurrent callers of a batched `HttpBackend`
 * pay it 1000 times). A property test holds the two equal (`test/UserId.test.ts`).
 *
 * @internal
 */
export const isUserId = CredentialsDecoder.isText(minLength, maxLength)
