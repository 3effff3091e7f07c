// A peer's response body read with a ceiling. A user service, a JWKS endpoint or an OIDC
// provider that answers with a body of hundreds of megabytes (broken, or taken over) must cost a
// TransportError, not the process's memory: `response.text` buffers whatever comes.
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Stream from "effect/Stream"
import { describeClientError } from "./clientErrors.js"

/** The ceiling a peer's body gets unless configured: a user, a batch of users or a key set fit in far less. @internal */
export const defaultMaxBytes = 1024 * 1024

// The length a body announces, when what arrives is exactly that many bytes: the client cuts the
// body at `content-length`, but decompresses an encoded one (a small gzip may unpack to gigabytes).
const announcedLength = (response: HttpClientResponse.HttpClientResponse): number | undefined => {
  const encoding = response.headers["content-encoding"]
  if (encoding !== undefined && encoding !== "identity") return undefined
  const length = response.headers["content-length"]
  return length !== undefined && /^\d{1,15}$/.test(length) ? Number(length) : undefined
}

const tooLarge = (where: string, maxBytes: number) => `${where}: response body larger than ${maxBytes} bytes`

// Counts the bytes as they arrive and stops reading (the client then drops the connection) at the
// first chunk past the ceiling.
const streamed = (
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number,
  where: string
): Effect.Effect<Uint8Array, string> =>
  Effect.suspend(() => {
    const chunks: Array<Uint8Array> = []
    let size = 0
    // Errors are sorted once at the end rather than by stream operators: each of those is one
    // more channel per exchange, and the stream is already the costly part.
    return Stream.runForEach(response.stream, (chunk): Effect.Effect<void, string> => {
      size += chunk.byteLength
      if (size > maxBytes) return Effect.fail(tooLarge(where, maxBytes))
      chunks.push(chunk)
      return Effect.void
    }).pipe(
      Effect.matchEffect({
        onFailure: (error) =>
          typeof error === "string"
            ? Effect.fail(error)
            : error.reason === "EmptyBody"
            ? Effect.succeed(new Uint8Array(0))
            : Effect.fail(describeClientError(error)),
        onSuccess: () => Effect.succeed<Uint8Array>(Buffer.concat(chunks, size))
      })
    )
  })

// A body that announces its length within the ceiling is read whole, as usual (the common case
// costs nothing more); one that announces more is refused unread; any other is counted as it
// streams.
const read = <A>(
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number,
  where: string,
  whole: (response: HttpClientResponse.HttpClientResponse) => Effect.Effect<A, HttpClientError.ResponseError>,
  fromBytes: (bytes: Uint8Array) => A
): Effect.Effect<A, string> => {
  const announced = announcedLength(response)
  if (announced === undefined) return Effect.map(streamed(response, maxBytes, where), fromBytes)
  return announced > maxBytes ? Effect.fail(tooLarge(where, maxBytes)) : Effect.mapError(whole(response), describeClientError)
}

const decoder = new TextDecoder()
const wholeText = (response: HttpClientResponse.HttpClientResponse) => response.text
const textOf = (bytes: Uint8Array) => decoder.decode(bytes)
const wholeBytes = (response: HttpClientResponse.HttpClientResponse) => response.arrayBuffer

/**
 * The body as text, at most `maxBytes` of it. A failure is a description without secrets, for
 * the caller's `TransportError`.
 *
 * @internal
 */
export const text = (
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number,
  where: string
): Effect.Effect<string, string> => read(response, maxBytes, where, wholeText, textOf)

/** The body as bytes, at most `maxBytes` of them (see {@link text}). @internal */
export const bytes = (
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number,
  where: string
): Effect.Effect<ArrayBuffer | Uint8Array, string> =>
  read<ArrayBuffer | Uint8Array>(response, maxBytes, where, wholeBytes, identity)
