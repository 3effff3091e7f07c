// The part of Python's pickle that a Django session dict needs (str, int, float, bool, None, list,
// tuple, dict), for sessions Django keeps in a cache (`django.core.cache.backends.redis`: pickled).
// Reading accepts only these data opcodes: anything that could name or call Python code
// (GLOBAL, REDUCE, BUILD, INST, OBJ, ...) makes the whole value unreadable, never run.

/** The value of a pickle of plain data; `undefined` for anything else or a malformed pickle. @internal */
export const loads = (bytes: Uint8Array): unknown => {
  try {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    return plain(read(buf), { values: Math.max(buf.length, minCopies), chars: Math.max(maxGrowth * buf.length, minCopies) }, 0)
  } catch {
    return undefined
  }
}

const mark = Symbol("mark")
type Item = unknown | typeof mark

const read = (buf: Buffer): unknown => {
  const stack: Array<Item> = []
  const memo = new Map<number, unknown>()
  let at = 0
  const take = (n: number) => {
    if (at + n > buf.length) throw new Error("truncated")
    const slice = buf.subarray(at, at + n)
    at += n
    return slice
  }
  const pop = (): unknown => {
    if (stack.length === 0) throw new Error("empty stack")
    const value = stack.pop()
    if (value === mark) throw new Error("unexpected mark")
    return value
  }
  const popToMark = (): Array<unknown> => {
    const i = stack.lastIndexOf(mark)
    if (i < 0) throw new Error("no mark")
    const items = stack.splice(i) as Array<unknown>
    return items.slice(1)
  }
  const top = (): unknown => {
    const value = stack[stack.length - 1]
    if (value === undefined && stack.length === 0) throw new Error("empty stack")
    return value
  }
  const setItems = (dict: unknown, items: ReadonlyArray<unknown>) => {
    if (!(dict instanceof Map) || items.length % 2 !== 0) throw new Error("not a dict")
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1])
  }
  while (at < buf.length) {
    const op = buf[at++]!
    switch (op) {
      case 0x80: // PROTO
        take(1)
        break
      case 0x95: // FRAME
        take(8)
        break
      case 0x2e: // STOP
        return pop()
      case 0x7d: // EMPTY_DICT
        stack.push(new Map())
        break
      case 0x5d: // EMPTY_LIST
        stack.push([])
        break
      case 0x29: // EMPTY_TUPLE
        stack.push(Object.freeze([]))
        break
      case 0x28: // MARK
        stack.push(mark)
        break
      case 0x4e: // NONE
        stack.push(null)
        break
      case 0x88: // NEWTRUE
        stack.push(true)
        break
      case 0x89: // NEWFALSE
        stack.push(false)
        break
      case 0x4b: // BININT1
        stack.push(take(1).readUInt8(0))
        break
      case 0x4d: // BININT2
        stack.push(take(2).readUInt16LE(0))
        break
      case 0x4a: // BININT
        stack.push(take(4).readInt32LE(0))
        break
      case 0x8a: { // LONG1: little-endian two's complement
        const bytes = take(take(1).readUInt8(0))
        let n = 0n
        for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!)
        if (bytes.length > 0 && bytes[bytes.length - 1]! & 0x80) n -= 1n << BigInt(8 * bytes.length)
        if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) throw new Error("int too large")
        stack.push(Number(n))
        break
      }
      case 0x47: // BINFLOAT
        stack.push(take(8).readDoubleBE(0))
        break
      case 0x8c: // SHORT_BINUNICODE
        stack.push(take(take(1).readUInt8(0)).toString("utf8"))
        break
      case 0x58: // BINUNICODE
        stack.push(take(take(4).readUInt32LE(0)).toString("utf8"))
        break
      case 0x8d: { // BINUNICODE8
        const n = take(8).readBigUInt64LE(0)
        if (n > BigInt(buf.length)) throw new Error("truncated")
        stack.push(take(Number(n)).toString("utf8"))
        break
      }
      case 0x94: // MEMOIZE
        memo.set(memo.size, top())
        break
      case 0x71: // BINPUT
        memo.set(take(1).readUInt8(0), top())
        break
      case 0x72: // LONG_BINPUT
        memo.set(take(4).readUInt32LE(0), top())
        break
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const key = op === 0x68 ? take(1).readUInt8(0) : take(4).readUInt32LE(0)
        if (!memo.has(key)) throw new Error("memo miss")
        stack.push(memo.get(key))
        break
      }
      case 0x73: { // SETITEM
        const value = pop()
        const key = pop()
        setItems(top(), [key, value])
        break
      }
      case 0x75: { // SETITEMS
        const items = popToMark()
        setItems(top(), items)
        break
      }
      case 0x61: { // APPEND
        const value = pop()
        const list = top()
        if (!Array.isArray(list) || Object.isFrozen(list)) throw new Error("not a list")
        list.push(value)
        break
      }
      case 0x65: { // APPENDS
        const items = popToMark()
        const list = top()
        if (!Array.isArray(list) || Object.isFrozen(list)) throw new Error("not a list")
        list.push(...items)
        break
      }
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: { // TUPLE3
        const n = op - 0x84
        if (stack.length < n) throw new Error("empty stack")
        const items: Array<unknown> = []
        for (let i = 0; i < n; i++) items.unshift(pop())
        stack.push(Object.freeze(items))
        break
      }
      case 0x74: // TUPLE
        stack.push(Object.freeze(popToMark()))
        break
      default:
        throw new Error(`opcode 0x${op.toString(16)} is not plain data`)
    }
  }
  throw new Error("no STOP")
}

// Python's pickler fails (RecursionError) before its recursion limit, 1000 by default: no session
// Django wrote is nested deeper.
const maxDepth = 1000
// A memoised value (BINGET) stands for the same object again, which `plain` copies: 2 bytes can
// double what was built so far, so 40 levels of [x, x] in 325 bytes would be 2^40 copies (the
// process hangs; Python shares them), and a 100 KB string named 4,000 times in 108 KB (Python's
// pickle of `[s] * 4000`) is 400 MB once copied, and again when the session is written back
// (`dumps` spells each copy out). The values copied are bounded by the pickle's length (or
// `minCopies`), and the characters of the strings copied by `maxGrowth` times it.
const maxGrowth = 64
const minCopies = 100_000

// Dicts as plain objects (their keys must be strings, as JSON's), tuples as arrays. Each key is
// defined as the object's own, as JSON.parse does: assigning "__proto__" would set the prototype
// (its keys then read as the session's, and the key itself vanish when the session is written).
const plain = (value: unknown, budget: { values: number; chars: number }, depth: number): unknown => {
  if (--budget.values < 0) throw new Error("too many values")
  if (typeof value === "string") {
    budget.chars -= value.length
    if (budget.chars < 0) throw new Error("too many characters")
    return value
  }
  if (value instanceof Map) {
    if (depth >= maxDepth) throw new Error("nested too deep")
    const out: Record<string, unknown> = {}
    for (const [key, item] of value) {
      if (typeof key !== "string") throw new Error("a dict key that is not a str")
      Object.defineProperty(out, key, {
        value: plain(item, budget, depth + 1),
        enumerable: true,
        writable: true,
        configurable: true
      })
    }
    return out
  }
  if (!Array.isArray(value)) return value
  if (depth >= maxDepth) throw new Error("nested too deep")
  return value.map((item) => plain(item, budget, depth + 1))
}

/**
 * A pickle (protocol 2) of JSON-like data: what `pickle.loads` reads back as dicts, lists, str,
 * int, float. A Map is a dict in the Map's order. @internal
 */
export const dumps = (value: unknown): Buffer => {
  const parts: Array<Buffer> = [Buffer.from([0x80, 0x02])]
  const write = (v: unknown): void => {
    if (v === null || v === undefined) parts.push(Buffer.from([0x4e]))
    else if (v === true) parts.push(Buffer.from([0x88]))
    else if (v === false) parts.push(Buffer.from([0x89]))
    else if (typeof v === "string") {
      const bytes = Buffer.from(v, "utf8")
      const head = Buffer.alloc(5)
      head[0] = 0x58
      head.writeUInt32LE(bytes.length, 1)
      parts.push(head, bytes)
    } else if (typeof v === "number" && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff) {
      const b = Buffer.alloc(5)
      b[0] = 0x4a
      b.writeInt32LE(v, 1)
      parts.push(b)
    } else if (typeof v === "number" && Number.isSafeInteger(v)) {
      let n = BigInt(v)
      const bytes: Array<number> = []
      while (n !== 0n && n !== -1n) {
        bytes.push(Number(n & 0xffn))
        n >>= 8n
      }
      // one more byte when the sign bit would say otherwise
      if (bytes.length === 0 || ((bytes[bytes.length - 1]! & 0x80) !== 0) !== v < 0) bytes.push(v < 0 ? 0xff : 0)
      parts.push(Buffer.from([0x8a, bytes.length, ...bytes]))
    } else if (typeof v === "number") {
      const b = Buffer.alloc(9)
      b[0] = 0x47
      b.writeDoubleBE(v, 1)
      parts.push(b)
    } else if (Array.isArray(v)) {
      parts.push(Buffer.from([0x5d, 0x28]))
      v.forEach(write)
      parts.push(Buffer.from([0x65]))
    } else if (typeof v === "object") {
      parts.push(Buffer.from([0x7d, 0x28]))
      for (const [key, item] of v instanceof Map ? v : Object.entries(v as Record<string, unknown>)) {
        write(key)
        write(item)
      }
      parts.push(Buffer.from([0x75]))
    } else throw new TypeError(`cannot pickle a ${typeof v}`)
  }
  write(value)
  parts.push(Buffer.from([0x2e]))
  return Buffer.concat(parts)
}
