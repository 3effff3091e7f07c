// The CSRF token an HTML form sends in its body, as Django's `{% csrf_token %}` renders it: a
// hidden `csrfmiddlewaretoken` field of a POST form (`application/x-www-form-urlencoded`).
//
// Reading it consumes the request's body before the app runs. The body is read through the
// request's `text`, which the platform caches on the request object, so the app's own
// `urlParamsBody`, `text`, `json` and the `HttpApi` payload of the same request still see it. A
// mounted router reads a copy of the request (`request.modify`) that does not share that cache,
// and `stream` or `arrayBuffer` would read the consumed socket again and never end: the plain-router
// middlewares therefore hand the app {@link replacement}, a request that serves the body it holds.
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Multipart from "@effect/platform/Multipart"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Effect from "effect/Effect"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/** The form field Django's templates put the token in. @internal */
export const fieldName = "csrfmiddlewaretoken"

/**
 * The most a form body is read for its token when the app sets no `MaxBodySize`: Django's
 * `DATA_UPLOAD_MAX_MEMORY_SIZE` (2.5 MiB), past which Django does not parse `request.POST` either.
 *
 * @internal
 */
export const defaultMaxBytes = 2_621_440

/** Django's `DATA_UPLOAD_MAX_NUMBER_FIELDS`: a form with more fields is not parsed. @internal */
export const maxFields = 1000

const isHex = (code: number): boolean =>
  (code >= 48 && code <= 57) || (code >= 65 && code <= 70) || (code >= 97 && code <= 102)

const hexValue = (code: number): number => (code <= 57 ? code - 48 : (code | 32) - 87)

/**
 * A name or value of a url-encoded form or query as Django decodes it (Python's `unquote_plus`):
 * `+` is a space, each `%XX` a byte, a `%` that starts no such pair kept as it is, and the bytes
 * read as UTF-8 with U+FFFD for what is not (`decodeURIComponent` would throw on either). One pass
 * into one buffer, whatever the number of escapes.
 *
 * @internal
 */
export const formDecode = (text: string): string => {
  const spaced = text.includes("+") ? text.replaceAll("+", " ") : text
  let i = spaced.indexOf("%")
  if (i === -1) return spaced
  const bytes = Buffer.allocUnsafe(Buffer.byteLength(spaced))
  let size = 0
  let copied = 0
  for (; i !== -1; i = spaced.indexOf("%", i + 1)) {
    const high = spaced.charCodeAt(i + 1)
    const low = spaced.charCodeAt(i + 2)
    if (isHex(high) && isHex(low)) {
      if (i > copied) size += bytes.write(spaced.slice(copied, i), size)
      bytes[size++] = hexValue(high) * 16 + hexValue(low)
      copied = i + 3
      i += 2
    }
  }
  size += bytes.write(spaced.slice(copied), size)
  return bytes.toString("utf8", 0, size)
}

// A name that decodes to the field's is at most three characters (`%XX`) per character of it.
const longestName = fieldName.length * 3

/**
 * The `csrfmiddlewaretoken` of a url-encoded form as Django's `request.POST.get` reads it: the last
 * value when the field repeats, `""` when absent, `undefined` past {@link maxFields} fields (Django
 * refuses to parse such a form). Only the names are decoded, and the value kept: a body of many
 * fields costs no map of them.
 *
 * @internal
 */
export const fieldOf = (text: string): string | undefined => {
  // Python counts the fields as `&`s + 1; splitting no further than one past the limit bounds the
  // work whatever the body.
  const segments = text.split("&", maxFields + 1)
  if (segments.length > maxFields) return undefined
  let value = ""
  for (const segment of segments) {
    const equals = segment.indexOf("=")
    const name = equals === -1 ? segment : segment.slice(0, equals)
    if (segment !== "" && name.length <= longestName && formDecode(name) === fieldName) value = equals === -1 ? "" : formDecode(segment.slice(equals + 1))
  }
  return value
}

const mediaType = (contentType: string | undefined): string | undefined =>
  contentType?.split(";", 1)[0]!.trim().toLowerCase()

/**
 * Whether Django would look for the token in the body: a POST (Django parses `request.POST` for
 * POST only) of a url-encoded form. A multipart form's token is not read: parsing it would write
 * its files before the app decides where they go; such forms send the header.
 *
 * @internal
 */
export const carriesToken = (request: HttpServerRequest.HttpServerRequest): boolean =>
  request.method === "POST" && mediaType(request.headers["content-type"]) === "application/x-www-form-urlencoded"

const replacementKey = Symbol.for("effect-auth/internal/http/formBody/replacement")
interface Marked {
  [replacementKey]?: HttpServerRequest.HttpServerRequest
}

/**
 * The form's token ({@link fieldOf}): its `csrfmiddlewaretoken` field, `""` when the form has none
 * (Django then takes the header), `undefined` when the body could not be read (cut off, larger than
 * the app's `MaxBodySize` or {@link defaultMaxBytes}) or has more than {@link maxFields} fields.
 *
 * @internal
 */
export const token = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<string | undefined> =>
  Effect.flatMap(HttpIncomingMessage.MaxBodySize, (appLimit) => {
    const limit = Number(Option.getOrElse(appLimit, () => defaultMaxBytes))
    // A body that announces more than the limit is not read at all, so the refusal can still be
    // answered (the platform drops the connection of a body it stops reading at the limit, which
    // only a body without a length, or one longer than it said, comes to).
    const length = request.headers["content-length"]
    if (length !== undefined && !(/^[0-9]{1,16}$/.test(length) && Number(length) <= limit)) return Effect.succeed(undefined)
    return request.text.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(limit)),
      Effect.map((text) => {
        ;(request as Marked)[replacementKey] = new BufferedRequest(request, text)
        return fieldOf(text)
      }),
      Effect.orElseSucceed(() => undefined)
    )
  })

/**
 * The request the app should read the body from, when the token check read it; `undefined` when
 * the body was not read.
 *
 * @internal
 */
export const replacement = (request: HttpServerRequest.HttpServerRequest): HttpServerRequest.HttpServerRequest | undefined =>
  (request as Marked)[replacementKey]

// The transport's request, but the body is the text already read from it. `modify` (a mounted
// router's prefix) keeps the body; everything else is the transport's.
class BufferedRequest extends Inspectable.Class implements HttpServerRequest.HttpServerRequest {
  readonly #request: HttpServerRequest.HttpServerRequest
  readonly #text: string
  constructor(request: HttpServerRequest.HttpServerRequest, text: string) {
    super()
    this.#request = request
    this.#text = text
  }
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId
  readonly [HttpServerRequest.TypeId]: HttpServerRequest.TypeId = HttpServerRequest.TypeId
  get source() {
    return this.#request.source
  }
  get url() {
    return this.#request.url
  }
  get originalUrl() {
    return this.#request.originalUrl
  }
  get method() {
    return this.#request.method
  }
  get cookies() {
    return this.#request.cookies
  }
  get headers() {
    return this.#request.headers
  }
  get remoteAddress() {
    return this.#request.remoteAddress
  }
  get upgrade() {
    return this.#request.upgrade
  }
  modify(options: Parameters<HttpServerRequest.HttpServerRequest["modify"]>[0]): HttpServerRequest.HttpServerRequest {
    return new BufferedRequest(this.#request.modify(options), this.#text)
  }
  get text() {
    return Effect.succeed(this.#text)
  }
  get json(): Effect.Effect<unknown, HttpServerError.RequestError> {
    return Effect.try({
      try: () => (this.#text === "" ? null : JSON.parse(this.#text)) as unknown,
      catch: (cause) => this.#decodeError(cause)
    })
  }
  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpServerError.RequestError> {
    return Effect.try({
      try: () => UrlParams.fromInput(new URLSearchParams(this.#text)),
      catch: (cause) => this.#decodeError(cause)
    })
  }
  // The body's bytes, encoded again from the text the check read: the same bytes, unless reading
  // them as text changed them: bytes that are no UTF-8 become U+FFFD, and a web request's text
  // (`Request.text()`, behind `toWebHandler`) drops a leading byte order mark. Those cannot be
  // given back (a signature over the raw body would fail, a body in another charset would read
  // wrongly), so a body whose text holds U+FFFD (sent or put there by the reading: which cannot be
  // told), or whose bytes encoded again are not the `Content-Length` it announced, is a decode
  // error here rather than other bytes than were sent. A browser's url-encoded form is ASCII (it
  // percent-encodes the rest), so no form of theirs is.
  #exact(): Uint8Array | undefined {
    if (this.#text.includes("\uFFFD")) return undefined
    const bytes = new TextEncoder().encode(this.#text)
    const announced = this.#request.headers["content-length"]
    return announced !== undefined && Number(announced) !== bytes.length ? undefined : bytes
  }
  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpServerError.RequestError> {
    return Effect.suspend(() => {
      const bytes = this.#exact()
      return bytes === undefined ? Effect.fail(this.#notExact()) : Effect.succeed(bytes.buffer as ArrayBuffer)
    })
  }
  get stream(): Stream.Stream<Uint8Array, HttpServerError.RequestError> {
    return Stream.suspend(() => {
      const bytes = this.#exact()
      return bytes === undefined ? Stream.fail(this.#notExact()) : Stream.succeed(bytes)
    })
  }
  #notExact() {
    return this.#decodeError(
      new Error("the body's bytes changed when read as text (bytes that are no UTF-8, a U+FFFD, a byte order mark): they cannot be given back as sent")
    )
  }
  // The body is a url-encoded form: read as multipart it is what the transport's parser says of
  // such a body, a parse error (and the consumed socket is never read again).
  get multipart() {
    return Effect.fail(this.#notMultipart())
  }
  get multipartStream() {
    return Stream.fail(this.#notMultipart())
  }
  #notMultipart() {
    return new Multipart.MultipartError({ reason: "Parse", cause: new Error("the body is a url-encoded form") })
  }
  #decodeError(cause: unknown): HttpServerError.RequestError {
    return new HttpServerError.RequestError({ request: this, reason: "Decode", cause })
  }
  override toJSON() {
    return this.#request.toJSON()
  }
  override toString() {
    return this.#request.toString()
  }
}
