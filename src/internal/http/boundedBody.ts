// A peer's response body read with a ceiling. A user service, a JWKS endpoint or an OIDC
// provider that answers with a body of hundreds of megabytes (broken, or taken over) must cost a
// TransportError, not the process's memory: `response.text` buffers whatever comes.
import * as HttpClientError from "@effect/platform/HttpClientError"
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

const decodeFailure = (response: HttpClientResponse.HttpClientResponse, cause: unknown): string =>
  describeClientError(new HttpClientError.ResponseError({ request: response.request, response, reason: "Decode", cause }))

// Collects chunks up to the ceiling; answers the failure that ends the read, if any. A chunk that
// is no bytes (a client of the app's that hands over strings) is a body that cannot be read.
const collector = (response: HttpClientResponse.HttpClientResponse, maxBytes: number, where: string) => {
  const chunks: Array<Uint8Array> = []
  let size = 0
  return {
    add: (chunk: unknown): string | undefined => {
      if (!(chunk instanceof Uint8Array)) return decodeFailure(response, new TypeError("a body chunk that is no bytes"))
      size += chunk.byteLength
      if (size > maxBytes) return tooLarge(where, maxBytes)
      chunks.push(chunk)
      return undefined
    },
    bytes: (): Uint8Array => Buffer.concat(chunks, size)
  }
}

// Counts the bytes as they arrive through the response's stream and stops reading (the client
// then drops the connection) at the first chunk past the ceiling.
const streamed = (
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number,
  where: string
): Effect.Effect<Uint8Array, string> =>
  Effect.suspend(() => {
    const collected = collector(response, maxBytes, where)
    // Errors are sorted once at the end rather than by stream operators: each of those is one
    // more channel per exchange, and the stream is already the costly part.
    return Stream.runForEach(response.stream, (chunk): Effect.Effect<void, string> => {
      const failure = collected.add(chunk)
      return failure === undefined ? Effect.void : Effect.fail(failure)
    }).pipe(
      Effect.matchEffect({
        onFailure: (error) =>
          typeof error === "string"
            ? Effect.fail(error)
            : error.reason === "EmptyBody"
            ? Effect.succeed(new Uint8Array(0))
            : Effect.fail(describeClientError(error)),
        onSuccess: () => Effect.succeed(collected.bytes())
      })
    )
  })

// The body as the client hands it over, read without Effect's stream machinery: a stream per
// exchange cost more CPU than the rest of the exchange (350 µs of 800 on the undici client, a
// chunked body, 2026-12-06). Both of the platform's clients keep what they were handed as
// `source` (under the `original` response the platform's `HttpClient` scopes): the fetch client
// a web `Response` (its body a `ReadableStream`), the undici client undici's answer (its body a
// Node `Readable`). Any other client's response, or a body already being read, goes through
// `response.stream`, as before.
interface NodeBody {
  on(event: string, listener: (...args: Array<any>) => void): unknown
  off(event: string, listener: (...args: Array<any>) => void): unknown
  destroy(): unknown
  readonly readableEnded?: unknown
  readonly destroyed?: unknown
}
const isWebBody = (body: unknown): body is ReadableStream<unknown> =>
  typeof ReadableStream !== "undefined" && body instanceof ReadableStream && !body.locked
const isNodeBody = (body: unknown): body is NodeBody =>
  typeof body === "object" && body !== null && typeof (body as NodeBody).on === "function" &&
  typeof (body as NodeBody).off === "function" && typeof (body as NodeBody).destroy === "function" &&
  (body as NodeBody).readableEnded === false && (body as NodeBody).destroyed === false

const fromWebBody = (
  response: HttpClientResponse.HttpClientResponse,
  body: ReadableStream<unknown>,
  maxBytes: number,
  where: string
): Effect.Effect<Uint8Array, string> =>
  Effect.async<Uint8Array, string>((resume) => {
    const reader = body.getReader()
    const collected = collector(response, maxBytes, where)
    let settled = false
    const stop = () => {
      settled = true
      reader.cancel().catch(() => {})
    }
    const step = (): void => {
      reader.read().then((next) => {
        if (settled) return
        if (next.done) {
          settled = true
          return resume(Effect.succeed(collected.bytes()))
        }
        const failure = collected.add(next.value)
        if (failure !== undefined) {
          stop()
          return resume(Effect.fail(failure))
        }
        step()
      }, (cause) => {
        if (settled) return
        settled = true
        resume(Effect.fail(decodeFailure(response, cause)))
      })
    }
    step()
    return Effect.sync(() => {
      if (!settled) stop()
    })
  })

// Stays on the body once read: an error the body emits after this module has let go of it (a
// reset after a destroy) must not be an uncaught exception.
const ignore = () => {}

const fromNodeBody = (
  response: HttpClientResponse.HttpClientResponse,
  body: NodeBody,
  maxBytes: number,
  where: string
): Effect.Effect<Uint8Array, string> =>
  Effect.async<Uint8Array, string>((resume) => {
    const collected = collector(response, maxBytes, where)
    const release = () => {
      body.off("data", onData)
      body.off("end", onEnd)
      body.off("error", onError)
      body.off("close", onClose)
    }
    const finish = (result: Effect.Effect<Uint8Array, string>, destroy: boolean) => {
      release()
      if (destroy) body.destroy()
      resume(result)
    }
    const onData = (chunk: unknown) => {
      const failure = collected.add(chunk)
      if (failure !== undefined) finish(Effect.fail(failure), true)
    }
    const onEnd = () => finish(Effect.succeed(collected.bytes()), false)
    const onError = (cause: unknown) => finish(Effect.fail(decodeFailure(response, cause)), false)
    // Destroyed before its end (the socket closed) without an error.
    const onClose = () => finish(Effect.fail(decodeFailure(response, new Error("premature close"))), false)
    body.on("error", ignore)
    body.on("data", onData)
    body.on("end", onEnd)
    body.on("error", onError)
    body.on("close", onClose)
    return Effect.sync(() => {
      release()
      body.destroy()
    })
  })

// What the client was handed: fetch's `Response`, undici's answer, `node:http`'s `IncomingMessage`.
const sourceOf = (response: HttpClientResponse.HttpClientResponse): unknown => {
  const inner: unknown = (response as { readonly original?: unknown }).original ?? response
  return typeof inner === "object" && inner !== null ? (inner as { readonly source?: unknown }).source : undefined
}

const bodyOf = (source: unknown): unknown =>
  typeof source === "object" && source !== null ? (source as { readonly body?: unknown }).body : undefined

const rawBody = (
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number,
  where: string
): Effect.Effect<Uint8Array, string> | undefined => {
  try {
    const body = bodyOf(sourceOf(response))
    if (isWebBody(body)) return fromWebBody(response, body, maxBytes, where)
    if (isNodeBody(body)) return fromNodeBody(response, body, maxBytes, where)
  } catch {
    // a response of some other client that throws when looked at: its own stream decides
  }
  return undefined
}

/**
 * Lets go of a body that will not be read (a 401, an unexpected status, a redirect, one that
 * announces more than the ceiling): a body nobody reads keeps its connection open, and the
 * platform's client aborts it only when the response is garbage collected. A peer that answers a status with a body that never ends (broken,
 * or hostile) would otherwise hold a socket per request for as long as the process keeps the
 * response. fetch's web stream is cancelled, undici's body and `node:http`'s `IncomingMessage`
 * destroyed; a body that had fully arrived leaves its connection to the client's pool. A body
 * already being read, or a response of some other client, is left alone.
 *
 * @internal
 */
export const discard = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<void> =>
  Effect.sync(() => {
    try {
      const source = sourceOf(response)
      const body = bodyOf(source)
      if (isWebBody(body)) {
        body.cancel().catch(ignore)
        return
      }
      const node = isNodeBody(body) ? body : isNodeBody(source) ? source : undefined
      if (node !== undefined) {
        node.on("error", ignore)
        node.destroy()
      }
    } catch {
      // a response of some other client that throws when looked at: nothing to let go of
    }
  })

/**
 * A status the caller does not read a body for: the body let go of ({@link discard}), and the
 * failure `<where>: unexpected status <status>` for the caller's TransportError.
 *
 * @internal
 */
export const unexpectedStatus = (response: HttpClientResponse.HttpClientResponse, where: string): Effect.Effect<never, string> =>
  Effect.zipRight(discard(response), Effect.fail(`${where}: unexpected status ${response.status}`))

// A body that announces its length within the ceiling is read whole, as usual (the common case
// costs nothing more); one that announces more is refused unread, and let go of like any other
// unread body ({@link discard}); any other is counted as it streams, and cut at the ceiling.
const read = <A>(
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number,
  where: string,
  whole: (response: HttpClientResponse.HttpClientResponse) => Effect.Effect<A, HttpClientError.ResponseError>,
  fromBytes: (bytes: Uint8Array) => A
): Effect.Effect<A, string> => {
  const announced = announcedLength(response)
  if (announced === undefined) {
    return Effect.map(Effect.suspend(() => rawBody(response, maxBytes, where) ?? streamed(response, maxBytes, where)), fromBytes)
  }
  return announced > maxBytes
    ? Effect.zipRight(discard(response), Effect.fail(tooLarge(where, maxBytes)))
    : Effect.mapError(whole(response), describeClientError)
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
