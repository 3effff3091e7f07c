// IP addresses and CIDR ranges, parsed by hand so that the core modules need no `node:net`.
// An address is kept as a family and a 128-bit (IPv6) or 32-bit (IPv4) bigint; IPv4-mapped IPv6
// addresses (`::ffff:192.0.2.1`, what a dual-stack Node server reports) are taken as IPv4.

/** @internal */
export interface Address {
  readonly family: 4 | 6
  readonly value: bigint
  /** The canonical text: dotted quad, or the lower-case IPv6 form without zero compression. */
  readonly text: string
}

/** @internal */
export interface Range {
  readonly family: 4 | 6
  readonly network: bigint
  readonly bits: number
}

const v4 = (text: string): bigint | undefined => {
  const parts = text.split(".")
  if (parts.length !== 4) return undefined
  let value = 0n
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined
    const n = Number(part)
    if (n > 255) return undefined
    value = (value << 8n) | BigInt(n)
  }
  return value
}

// The 16-bit words of one side of `::` (an embedded IPv4 address only as the last group).
const words = (side: string, last: boolean): Array<bigint> | undefined => {
  if (side === "") return []
  const groups = side.split(":")
  const out: Array<bigint> = []
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i]!
    if (last && i === groups.length - 1 && group.includes(".")) {
      const embedded = v4(group)
      if (embedded === undefined) return undefined
      out.push(embedded >> 16n, embedded & 0xffffn)
    } else if (/^[0-9a-fA-F]{1,4}$/.test(group)) out.push(BigInt(`0x${group}`))
    else return undefined
  }
  return out
}

const v6 = (text: string): bigint | undefined => {
  const halves = text.split("::")
  if (halves.length > 2) return undefined
  const compressed = halves.length === 2
  const head = words(halves[0]!, !compressed)
  const tail = compressed ? words(halves[1]!, true) : []
  if (head === undefined || tail === undefined) return undefined
  const missing = 8 - head.length - tail.length
  if (compressed ? missing < 1 : missing !== 0) return undefined
  let value = 0n
  for (const word of [...head, ...Array<bigint>(missing).fill(0n), ...tail]) value = (value << 16n) | word
  return value
}

/** Parses an IPv4 or IPv6 address (a zone id `%eth0` is dropped); undefined when it is none. @internal */
export const parse = (input: string): Address | undefined => {
  const text = input.trim()
  if (text.length === 0 || text.length > 64) return undefined
  const four = v4(text)
  if (four !== undefined) return { family: 4, value: four, text: toText(4, four) }
  const zone = text.indexOf("%")
  const six = v6(zone === -1 ? text : text.slice(0, zone))
  if (six === undefined) return undefined
  if (six >> 32n === 0xffffn) {
    const value = six & 0xffffffffn
    return { family: 4, value, text: toText(4, value) }
  }
  return { family: 6, value: six, text: toText(6, six) }
}

const toText = (family: 4 | 6, value: bigint): string => {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".")
  }
  const words: Array<string> = []
  for (let shift = 112n; shift >= 0n; shift -= 16n) words.push(((value >> shift) & 0xffffn).toString(16))
  return words.join(":")
}

/**
 * The text an address is counted under: IPv4 as itself, IPv6 as its network of `ipv6Prefix` bits
 * (`2001:db8:0:1:0:0:0:0/64`), or as itself when the prefix is 128. One end site is handed a
 * whole /64 (often a /56 or /48) and may use any address in it, so a counter per IPv6 address is
 * a fresh counter per request to anyone who wants one. @internal
 */
export const counted = (address: Address, ipv6Prefix: number): string => {
  if (address.family === 4 || ipv6Prefix >= 128) return address.text
  const shift = BigInt(128 - ipv6Prefix)
  return `${toText(6, (address.value >> shift) << shift)}/${ipv6Prefix}`
}

/**
 * A configured list of ranges (`trustedProxies`, a lockout's `allow`/`deny`), read as unknown: the
 * ranges, or why not, for an `AuthConfigError` (a string given for the list, say straight from an
 * environment variable, is no list, not its characters). @internal
 */
export const parseRangeList = (list: unknown): { readonly ranges: ReadonlyArray<Range> } | { readonly problem: string } => {
  if (list === undefined) return { ranges: [] }
  if (!Array.isArray(list)) return { problem: "must be a list of addresses or CIDR ranges" }
  const ranges: Array<Range> = []
  for (const entry of list as ReadonlyArray<unknown>) {
    const range = parseRange(entry as string)
    if (range === undefined) {
      const shown = typeof entry === "string" ? JSON.stringify(entry.slice(0, 100)) : `a ${entry === null ? "null" : typeof entry}`
      return { problem: `${shown} is not an address or CIDR range` }
    }
    ranges.push(range)
  }
  return { ranges }
}

/** Parses `192.0.2.0/24`, `2001:db8::/32` or a single address (a full-length range). @internal */
export const parseRange = (input: string): Range | undefined => {
  // (an untyped caller's `123` or `null` in a list of ranges: no range, refused as configuration)
  if (typeof input !== "string") return undefined
  const slash = input.indexOf("/")
  const address = parse(slash === -1 ? input : input.slice(0, slash))
  if (address === undefined) return undefined
  const max = address.family === 4 ? 32 : 128
  let bits = max
  if (slash !== -1) {
    const suffix = input.slice(slash + 1).trim()
    if (!/^[0-9]{1,3}$/.test(suffix)) return undefined
    bits = Number(suffix)
    // `::ffff:10.0.0.0/104` names an IPv4 range written as IPv6.
    if (address.family === 4 && input.includes(":")) bits -= 96
    if (bits < 0 || bits > max) return undefined
  }
  const shift = BigInt(max - bits)
  return { family: address.family, network: (address.value >> shift) << shift, bits }
}

/** @internal */
export const contains = (range: Range, address: Address): boolean => {
  if (range.family !== address.family) return false
  const shift = BigInt((range.family === 4 ? 32 : 128) - range.bits)
  return (address.value >> shift) << shift === range.network
}

/** @internal */
export const inAny = (ranges: ReadonlyArray<Range>, address: Address): boolean => {
  for (const range of ranges) if (contains(range, address)) return true
  return false
}

// A hop's address without the port or brackets some proxies write (Azure Application Gateway:
// `203.0.113.7:5555`; others `[2001:db8::1]:443` or `[2001:db8::1]`). A bare IPv6 address keeps its
// colons: only a dotted IPv4 address or a bracketed one can carry a port.
const hopAddress = (hop: string): string => {
  const text = hop.trim()
  const port = /^(?:\[([^\]]*)\]|([0-9.]+))(?::([0-9]{1,5}))?$/.exec(text)
  if (port === null || (port[2] !== undefined && port[3] === undefined)) return text
  // (a port past 65535 is no port: the hop is no address)
  if (port[3] !== undefined && Number(port[3]) > 65535) return text
  return port[1] ?? port[2]!
}

/**
 * The client address of a request: the socket's peer, or, when that peer is a trusted proxy, the
 * rightmost `X-Forwarded-For` hop that is not a trusted proxy (hops to its left were written by
 * the client and may be forged). A hop may carry a port (`203.0.113.7:5555`, `[2001:db8::1]:443`),
 * which is dropped. A hop that is not an address ends the walk at the proxy that passed it on.
 * @internal
 */
export const clientAddress = (
  peer: string | undefined,
  forwardedFor: string | undefined,
  trusted: ReadonlyArray<Range>
): string | undefined => {
  if (peer === undefined || trusted.length === 0 || forwardedFor === undefined) return peer
  let text = peer
  let current = parse(peer)
  const hops = forwardedFor.split(",")
  for (let i = hops.length - 1; i >= 0 && current !== undefined && inAny(trusted, current); i--) {
    const address = hopAddress(hops[i]!)
    const hop = parse(address)
    if (hop === undefined) break
    text = address
    current = hop
  }
  return text
}
