/**
 * ldapts calls as Effects. Each connection is a fresh `Client` in a scope: closing the scope
 * unbinds and destroys the socket, which also abandons a call cut off by a timeout.
 *
 * @internal
 */
import * as net from "node:net"
import type * as tls from "node:tls"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { Client, DN, type Entry } from "ldapts"

export type { Client }

/**
 * A failed ldapts call: `op` names it, `error` is what ldapts threw.
 *
 * @internal
 */
export class LdapCallError extends Data.TaggedError("LdapCallError")<{
  readonly op: string
  readonly error: unknown
}> {
  /** The LDAP result code, when the server answered with one. */
  get code(): number | undefined {
    const code = (this.error as { code?: unknown } | null)?.code
    return typeof code === "number" ? code : undefined
  }
}

/** @internal */
export const resultCodes = {
  sizeLimitExceeded: 4,
  noSuchObject: 32,
  invalidDnSyntax: 34,
  invalidCredentials: 49
} as const

/** @internal */
export interface ConnectionOptions {
  readonly url: string
  readonly startTls: boolean
  readonly tlsOptions: tls.ConnectionOptions | undefined
  /** Milliseconds; 0 means none. */
  readonly connectTimeout: number
  /** Milliseconds; 0 means none. */
  readonly timeout: number
}

/** Entries with attribute names in lower case and every value a string. */
export interface LdapEntry {
  readonly dn: string
  readonly attributes: Readonly<Record<string, ReadonlyArray<string>>>
}

const closeQuietly = (client: Client): Promise<void> =>
  new Promise((resolve) => {
    // unbind normally resolves as soon as the request is written; the timer only guards a
    // socket that cannot even take the write
    const timer = setTimeout(resolve, 2_000)
    timer.unref()
    client.unbind().then(
      () => {
        clearTimeout(timer)
        resolve()
      },
      () => {
        clearTimeout(timer)
        resolve()
      }
    )
  })

/**
 * Opens a connection (lazily: ldapts connects on the first operation, or here for StartTLS).
 *
 * @internal
 */
export const connect = (options: ConnectionOptions): Effect.Effect<Client, LdapCallError, Scope.Scope> => {
  const secure = options.url.toLowerCase().startsWith("ldaps:")
  return Effect.acquireRelease(
    Effect.try({
      try: () =>
        new Client({
          url: options.url,
          timeout: options.timeout,
          connectTimeout: options.connectTimeout,
          // ldapts switches to TLS-on-connect whenever tlsOptions is set, even for ldap://: for
          // StartTLS the options go to startTLS() instead
          ...(secure && options.tlsOptions !== undefined ? { tlsOptions: options.tlsOptions } : {})
        }),
      catch: (error) => new LdapCallError({ op: "connect", error })
    }),
    (client) => Effect.promise(() => closeQuietly(client))
  ).pipe(
    Effect.tap((client) => {
      if (!options.startTls) return Effect.void
      const host = new URL(options.url).hostname.replace(/^\[(.*)\]$/, "$1")
      // a copy: ldapts writes the socket into the object it is given. Node checks the
      // certificate against `servername`/`host` and sends SNI only for `servername` (never an IP)
      const tlsOptions: tls.ConnectionOptions = {
        host,
        ...(net.isIP(host) === 0 ? { servername: host } : {}),
        ...options.tlsOptions
      }
      const upgrade = Effect.tryPromise({
        try: () => client.startTLS(tlsOptions),
        catch: (error) => new LdapCallError({ op: "startTLS", error })
      })
      // ldapts times the StartTLS request but not the TLS handshake after it: a peer that grants
      // StartTLS and then stalls would hold the call forever. The handshake is connecting, so it
      // gets `connectTimeout` on top of the request's `timeout` (none when connectTimeout is 0).
      if (options.connectTimeout <= 0) return upgrade
      const deadline = options.connectTimeout + Math.max(0, options.timeout)
      return Effect.timeoutFail(upgrade, {
        duration: deadline,
        onTimeout: () =>
          new LdapCallError({ op: "startTLS", error: new Error(`no TLS connection within ${deadline} ms (timed out)`) })
      })
    })
  )
}

// ldapts takes a string argument that spells a SASL mechanism (`EXTERNAL`, `PLAIN`, ...) as a SASL
// bind; a DN built from what a user typed must stay a simple bind (RFC 4513 5.1), so it is
// handed over as a DN object, which ldapts sends as its text.
class VerbatimDn extends DN {
  constructor(private readonly text: string) {
    super()
  }
  override toString(): string {
    return this.text
  }
}

/**
 * A simple bind, whatever the DN spells. The password is unwrapped only here, for the call.
 *
 * @internal
 */
export const bind = (
  client: Client,
  dn: string,
  password: Redacted.Redacted<string>,
  op = "bind"
): Effect.Effect<void, LdapCallError> =>
  Effect.tryPromise({
    try: () => client.bind(new VerbatimDn(dn), Redacted.value(password)),
    catch: (error) => new LdapCallError({ op, error })
  })

const toStrings = (value: Entry[string]): ReadonlyArray<string> => {
  const values: ReadonlyArray<string | Buffer> = Array.isArray(value) ? value : [value]
  return values.map((v) => (typeof v === "string" ? v : v.toString("utf8")))
}

/** @internal */
export interface SearchOptions {
  readonly scope: "base" | "one" | "sub"
  readonly filter: string
  readonly attributes: ReadonlyArray<string>
  readonly sizeLimit?: number
}

/**
 * A search whose entries come back with lower-case attribute names and string values.
 * `userPassword` is dropped whatever was asked for.
 *
 * @internal
 */
export const search = (
  client: Client,
  base: string,
  options: SearchOptions,
  op = "search"
): Effect.Effect<ReadonlyArray<LdapEntry>, LdapCallError> =>
  Effect.tryPromise({
    try: () =>
      client.search(base, {
        scope: options.scope,
        filter: options.filter,
        attributes: options.attributes.length === 0 ? ["1.1"] : [...options.attributes],
        ...(options.sizeLimit === undefined ? {} : { sizeLimit: options.sizeLimit })
      }),
    catch: (error) => new LdapCallError({ op, error })
  }).pipe(
    Effect.map((result) =>
      result.searchEntries.map((entry) => {
        const attributes: Record<string, ReadonlyArray<string>> = {}
        for (const [key, value] of Object.entries(entry)) {
          const name = key.toLowerCase()
          if (name === "dn" || name === "userpassword") continue
          const values = toStrings(value)
          if (values.length > 0) attributes[name] = values
        }
        return { dn: entry.dn, attributes }
      })
    )
  )
