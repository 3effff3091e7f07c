// The part of Python's pickle that a Django session dict needs (str, int, float, bool, None, list,
// tuple, dict), for sessions Django keeps in a cache (`django.core.cache.backends.redis`: pickled).
// `loads` accepts only these data opcodes: anything that could name or call Python code (GLOBAL,
// REDUCE, BUILD, INST, OBJ, ...) makes the whole value unreadable, never run. A session dict
// (`readSession`) may also hold other objects Django pickled as they were, of Python's and
// Django's own classes (a datetime, a Decimal, a set, bytes, a QueryDict): such a value is
// `opaque`, never interpreted, its entry copied back as Django's opcodes when the session is
// written, as Django's `cycle_key` keeps it. Only effect-auth's own keys are read, and an opaque
// one is no value of theirs.
//
// JavaScript has no float 1.0 apart from the int 1, nor tuples, nor dict keys that are not strings,
// so what effect-auth did not set itself is not written back from what JavaScript holds: each entry
// of the session dict is kept as the opcodes Django wrote (`RawPickle`), and copied into the pickle
// effect-auth writes, only the memo (pickle's back-references) renumbered.

/** Pickle's MARK on the stack while reading. */
const mark = Symbol("mark")

/**
 * A value of a session dict that is no plain data (a datetime, a Decimal, a set, bytes): read as
 * this, never interpreted; its entry is copied back as the opcodes that built it. @internal
 */
export const opaque: unique symbol = Symbol("effect-auth/pickle/opaque")

// `ignoreBOM`: a str Python holds may start with U+FEFF (a key "\ufeffcart" beside "cart"); a
// decoder that strips it read two keys as one, and wrote one of them back for both.
const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const isHigh = (unit: number) => unit >= 0xd800 && unit <= 0xdbff

// Python's `bytes.decode("utf-8", "surrogatepass")`, as pickle reads a str: a surrogate's own
// three bytes (ED A0-BF 80-BF) are that code point, anything else malformed raises (then the value
// is unreadable, as `pickle.loads` raises). A Python string can hold a high surrogate followed by a
// low one as two code points, which a JavaScript string would read as one other character (the
// user id "\ud83d\ude00" as "😀"): such a string is refused rather than read as another.
const utf8 = (bytes: Buffer): string => {
  try {
    return fatalUtf8.decode(bytes)
  } catch {
    let out = ""
    let from = 0
    for (let i = 0; i + 2 < bytes.length; i++) {
      if (bytes[i] !== 0xed || bytes[i + 1]! < 0xa0 || bytes[i + 1]! > 0xbf || (bytes[i + 2]! & 0xc0) !== 0x80) continue
      const unit = 0xd000 | ((bytes[i + 1]! & 0x3f) << 6) | (bytes[i + 2]! & 0x3f)
      const before = fatalUtf8.decode(bytes.subarray(from, i))
      const last = before === "" ? out.charCodeAt(out.length - 1) : before.charCodeAt(before.length - 1)
      if (!isHigh(unit) && isHigh(last)) throw new Error("a surrogate pair spelled as two code points")
      out += before + String.fromCharCode(unit)
      from = i + 3
      i += 2
    }
    return out + fatalUtf8.decode(bytes.subarray(from))
  }
}

// Opcodes that copying does not copy as they are.
const SKIP = 0 // PROTO, FRAME: dropped (framing is optional, the protocol is the header's)
const MEMOIZE = 1 // a memo definition at the next free index: kept, its index is the copy's
const PUT = 2 // BINPUT, LONG_BINPUT: a memo definition at an index given: renumbered
const GET = 3 // BINGET, LONG_BINGET: renumbered, or the value spelled out where its definition was not copied

/** A pickle read, for {@link RawPickle} values to be copied out of. @internal */
interface Source {
  readonly buf: Buffer
  /** The highest PROTO it declares (0 without one). */
  protocol: number
  // The opcodes copying does not copy as they are, in the pickle's order: where each is, its
  // length, what it is, and the memo definition it makes or fetches (an id: an index of def*).
  readonly at: Array<number>
  readonly size: Array<number>
  readonly kind: Array<number>
  readonly ref: Array<number>
  // Each memo definition's value as the opcodes that built it, [start, end): copied where a value
  // fetches it and the definition was not copied.
  readonly defStart: Array<number>
  readonly defEnd: Array<number>
}

/**
 * An entry of a pickled session dict (its key and value) kept as the opcodes Django wrote, and
 * written back as them by {@link dumps}: a float `1.0` stays a float, a tuple a tuple, a dict with
 * int keys that dict, an int past 2^53 that int. @internal
 */
export class RawPickle {
  constructor(
    /** The pickle it was read from. */
    readonly source: Source,
    /** The entry's opcodes, its key's then its value's: [start, end) of the pickle. */
    readonly start: number,
    readonly end: number,
    /**
     * The value as JavaScript reads it (as {@link loads} does): floats and ints are numbers (ints
     * past 2^53 bigints), tuples arrays, dicts objects (Maps when a key is not a string).
     */
    readonly value: unknown
  ) {}
}

/**
 * A pickled session dict read: each key (a string; where it is not, the entry itself stands for it)
 * to its entry, in the dict's order; `undefined` for a pickle of anything else, one that is not
 * plain data, or a malformed one. @internal
 */
export const readSession = (bytes: Uint8Array): Map<unknown, RawPickle> | undefined => {
  try {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const { entries, root, source } = read(buf, true)
    if (!(root instanceof Map)) return undefined
    // A key set twice keeps its first place and its last value, as in Python's dict.
    const final = new Map<unknown, Entry>()
    for (const entry of entries) final.set(typeof entry.key === "string" ? entry.key : entry, entry)
    const budget = budgetOf(buf)
    budget.values--
    const dict = new Map<unknown, RawPickle>()
    for (const [key, entry] of final) {
      plain(entry.key, budget, 1)
      const raw = new RawPickle(source, entry.start, entry.end, plain(entry.value, budget, 1))
      dict.set(typeof key === "string" ? key : raw, raw)
    }
    return dict
  } catch {
    return undefined
  }
}

/** The value of a pickle of plain data; `undefined` for anything else or a malformed pickle. @internal */
export const loads = (bytes: Uint8Array): unknown => {
  try {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    return plain(read(buf, false).root, budgetOf(buf), 0)
  } catch {
    return undefined
  }
}

/** An item of the root dict, as set: its key and value, and the opcodes that built them. */
interface Entry {
  readonly key: unknown
  readonly value: unknown
  readonly start: number
  readonly end: number
}

// `strict`: only as Python's pickler writes, for the session dict's entries to be copied out:
// nothing left on the stack under the value, and no list or dict added to once it is done.
const read = (buf: Buffer, strict: boolean): { root: unknown; entries: Array<Entry>; source: Source } => {
  const source: Source = { buf, protocol: 0, at: [], size: [], kind: [], ref: [], defStart: [], defEnd: [] }
  // The stack, and for each of its slots: where the opcodes building it start; whether it is a
  // list or dict being built (made there by EMPTY_LIST or EMPTY_DICT, not fetched from the memo);
  // the memo definitions of its value.
  const stack: Array<unknown> = []
  const starts: Array<number> = []
  const building: Array<boolean> = []
  const slotDefs: Array<Array<number> | undefined> = []
  // memo index -> definition id
  const memo = new Map<number, number>()
  const defValue: Array<unknown> = []
  // Tuples holding a list or a dict, which Python cannot hash.
  const unhashable = new WeakSet<object>()
  const entries: Array<Entry> = []
  let at = 0
  let op = 0 // where the current opcode starts
  const take = (n: number) => {
    if (at + n > buf.length) throw new Error("truncated")
    const slice = buf.subarray(at, at + n)
    at += n
    return slice
  }
  const special = (kind: number, ref: number) => {
    source.at.push(op)
    source.size.push(at - op)
    source.kind.push(kind)
    source.ref.push(ref)
  }
  const push = (value: unknown, start: number = op, isBuilding: boolean = false) => {
    stack.push(value)
    starts.push(start)
    building.push(isBuilding)
    slotDefs.push(undefined)
  }
  // The slots from `from` up, taken by the current opcode. Each slot's opcodes end where the next
  // slot's start (or at this opcode): that is where its memo definitions' values end.
  const consume = (from: number): Array<unknown> => {
    for (let i = from; i < stack.length; i++) {
      const defs = slotDefs[i]
      if (defs === undefined) continue
      const end = i + 1 < stack.length ? starts[i + 1]! : op
      for (const d of defs) source.defEnd[d] = end
    }
    starts.length = building.length = slotDefs.length = from
    return stack.splice(from)
  }
  const consumeTop = (n: number): Array<unknown> => {
    if (stack.length < n) throw new Error("empty stack")
    for (let i = stack.length - n; i < stack.length; i++) if (stack[i] === mark) throw new Error("unexpected mark")
    return consume(stack.length - n)
  }
  const markAt = (): number => {
    const i = stack.lastIndexOf(mark)
    if (i < 0) throw new Error("no mark")
    return i
  }
  // The list or dict items are added to; where strict, one being built in its own slot (Python's
  // pickler adds nothing to a container once it is done; one fetched from the memo is done).
  const target = (isDict: boolean): Map<unknown, unknown> | Array<unknown> => {
    const i = stack.length - 1
    const value = stack[i]
    if (i < 0 || (strict && !building[i]) || (isDict ? !(value instanceof Map) : !Array.isArray(value))) {
      throw new Error(isDict ? "not a dict being built" : "not a list being built")
    }
    return value as Map<unknown, unknown> | Array<unknown>
  }
  const isUnhashable = (value: unknown) =>
    value instanceof Map || (Array.isArray(value) && (!Object.isFrozen(value) || unhashable.has(value)))
  const tuple = (items: Array<unknown>, start: number) => {
    const t = Object.freeze(items)
    if (items.some(isUnhashable)) unhashable.add(t)
    push(t, start)
  }
  // SETITEM (the top two slots) or SETITEMS (the slots above the mark at `from`).
  const setItems = (from: number, marked: boolean) => {
    const itemStarts = starts.slice(marked ? from + 1 : from)
    const items = marked ? consume(from).slice(1) : consumeTop(2)
    if (items.length % 2 !== 0) throw new Error("odd number of dict items")
    // An object's own dict items (an OrderedDict, a defaultdict, Django's QueryDict: their reduce
    // answers them after REDUCE or NEWOBJ): part of the opaque object.
    if (strict && stack.length > 1 && stack[stack.length - 1] === opaque) return
    const dict = target(true) as Map<unknown, unknown>
    const root = stack.length === 1
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i]
      // Python's unpickling fails there (TypeError: unhashable type): Django reads no session.
      if (isUnhashable(key)) throw new Error("an unhashable dict key")
      dict.set(key, items[i + 1])
      if (root) entries.push({ key, value: items[i + 1], start: itemStarts[i]!, end: itemStarts[i + 2] ?? op })
    }
  }
  const define = (kind: number, index: number) => {
    const i = stack.length - 1
    if (i < 0 || stack[i] === mark) throw new Error("nothing to memoize")
    const d = source.defStart.length
    source.defStart.push(starts[i]!)
    source.defEnd.push(-1)
    defValue.push(stack[i])
    ;(slotDefs[i] ??= []).push(d)
    memo.set(index, d)
    special(kind, d)
  }
  const long = (bytes: Buffer): number | bigint => {
    if (bytes.length === 0) return 0
    let n = BigInt(`0x${Buffer.from(bytes).reverse().toString("hex")}`)
    if (bytes[bytes.length - 1]! & 0x80) n -= 1n << BigInt(8 * bytes.length)
    return n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER) ? n : Number(n)
  }
  while (at < buf.length) {
    op = at
    const code = buf[at++]!
    switch (code) {
      case 0x80: // PROTO
        source.protocol = Math.max(source.protocol, take(1).readUInt8(0))
        special(SKIP, -1)
        break
      case 0x95: // FRAME
        take(8)
        special(SKIP, -1)
        break
      case 0x2e: { // STOP
        // Python's pickler leaves nothing on the stack but the value (its unpickler ignores the rest).
        if (strict && stack.length > 1) throw new Error("items left on the stack")
        const [root] = consumeTop(1)
        return { root, entries, source }
      }
      case 0x7d: // EMPTY_DICT
        push(new Map(), op, true)
        break
      case 0x5d: // EMPTY_LIST
        push([], op, true)
        break
      case 0x29: // EMPTY_TUPLE
        tuple([], op)
        break
      case 0x28: // MARK
        push(mark)
        break
      case 0x4e: // NONE
        push(null)
        break
      case 0x88: // NEWTRUE
        push(true)
        break
      case 0x89: // NEWFALSE
        push(false)
        break
      case 0x4b: // BININT1
        push(take(1).readUInt8(0))
        break
      case 0x4d: // BININT2
        push(take(2).readUInt16LE(0))
        break
      case 0x4a: // BININT
        push(take(4).readInt32LE(0))
        break
      case 0x8a: // LONG1: little-endian two's complement
        push(long(take(take(1).readUInt8(0))))
        break
      case 0x8b: { // LONG4
        const n = take(4).readInt32LE(0)
        if (n < 0) throw new Error("negative LONG4 length")
        push(long(take(n)))
        break
      }
      case 0x47: // BINFLOAT
        push(take(8).readDoubleBE(0))
        break
      case 0x8c: // SHORT_BINUNICODE
        push(utf8(take(take(1).readUInt8(0))))
        break
      case 0x58: // BINUNICODE
        push(utf8(take(take(4).readUInt32LE(0))))
        break
      case 0x8d: { // BINUNICODE8
        const n = take(8).readBigUInt64LE(0)
        if (n > BigInt(buf.length)) throw new Error("truncated")
        push(utf8(take(Number(n))))
        break
      }
      case 0x94: // MEMOIZE
        define(MEMOIZE, memo.size)
        break
      case 0x71: // BINPUT
        define(PUT, take(1).readUInt8(0))
        break
      case 0x72: // LONG_BINPUT
        define(PUT, take(4).readUInt32LE(0))
        break
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const d = memo.get(code === 0x68 ? take(1).readUInt8(0) : take(4).readUInt32LE(0))
        if (d === undefined) throw new Error("memo miss")
        special(GET, d)
        push(defValue[d])
        break
      }
      case 0x73: // SETITEM
        setItems(stack.length - 2, false)
        break
      case 0x75: // SETITEMS
        setItems(markAt(), true)
        break
      case 0x61: { // APPEND
        const [value] = consumeTop(1)
        // (an object's own list items, a deque's or a list subclass's: part of the opaque object)
        if (!(strict && stack[stack.length - 1] === opaque)) (target(false) as Array<unknown>).push(value)
        break
      }
      case 0x65: { // APPENDS
        const items = consume(markAt()).slice(1)
        if (!(strict && stack[stack.length - 1] === opaque)) (target(false) as Array<unknown>).push(...items)
        break
      }
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: { // TUPLE3
        const n = code - 0x84
        if (stack.length < n) throw new Error("empty stack")
        const start = starts[stack.length - n]!
        tuple(consumeTop(n), start)
        break
      }
      case 0x74: { // TUPLE
        const i = markAt()
        const start = starts[i]!
        tuple(consume(i).slice(1), start)
        break
      }
      default:
        // Within a session dict, an object Django pickled (`strict`): opaque, its opcodes kept.
        if (!strict || !objectOpcodes.has(code)) throw new Error(`opcode 0x${code.toString(16)} is not plain data`)
        switch (code) {
          case 0x63: { // GLOBAL: "module\nname\n"
            const end = buf.indexOf(0x0a, at)
            if (end < 0 || buf.indexOf(0x0a, end + 1) < 0) throw new Error("truncated")
            const module = buf.toString("latin1", at, end)
            at = buf.indexOf(0x0a, end + 1) + 1
            importable(module)
            push(opaque)
            break
          }
          case 0x43: // SHORT_BINBYTES
            take(take(1).readUInt8(0))
            push(opaque)
            break
          case 0x42: // BINBYTES
            take(take(4).readUInt32LE(0))
            push(opaque)
            break
          case 0x8e: // BINBYTES8
          case 0x96: { // BYTEARRAY8
            const n = take(8).readBigUInt64LE(0)
            if (n > BigInt(buf.length)) throw new Error("truncated")
            take(Number(n))
            push(opaque)
            break
          }
          case 0x8f: // EMPTY_SET
            push(opaque)
            break
          case 0x93: { // STACK_GLOBAL: module and name
            if (stack.length < 2) throw new Error("empty stack")
            importable(stack[stack.length - 2])
            const start = starts[stack.length - 2]!
            consumeTop(2)
            push(opaque, start)
            break
          }
          case 0x52: // REDUCE: callable and arguments
          case 0x81: // NEWOBJ: class and arguments
          case 0x92: { // NEWOBJ_EX: class, arguments and keyword arguments
            const n = code === 0x92 ? 3 : 2
            if (stack.length < n) throw new Error("empty stack")
            // (what is called or instantiated is a global, or an object built from one)
            if (stack[stack.length - n] !== opaque) throw new Error("a call of no global")
            const start = starts[stack.length - n]!
            consumeTop(n)
            push(opaque, start)
            break
          }
          case 0x62: // BUILD: the state given to the object under it, which stays
            consumeTop(1)
            if (stack[stack.length - 1] !== opaque) throw new Error("BUILD of no object")
            break
          case 0x90: // ADDITEMS: the items above the mark added to the set under it
            consume(markAt())
            if (stack[stack.length - 1] !== opaque) throw new Error("ADDITEMS to no set")
            break
          case 0x91: { // FROZENSET of the items above the mark
            const i = markAt()
            const start = starts[i]!
            consume(i)
            push(opaque, start)
            break
          }
        }
    }
  }
  throw new Error("no STOP")
}

// The opcodes that build an object other than plain data, read (as `opaque`) in a session dict.
const objectOpcodes = new Set([0x63, 0x43, 0x42, 0x8e, 0x96, 0x8f, 0x93, 0x52, 0x81, 0x92, 0x62, 0x90, 0x91])

// The modules whose objects a session may hold and still be one: Python's own that every Django
// process imports (protocol 2 names builtins `__builtin__` and copyreg `copy_reg`), pytz (Django
// 3.2's time zones) and Django's. A class of the app's own (a model moved, an enum renamed since
// the session was written) may no longer import, and Django then reads no session at all (and
// its logout cannot delete it): such a pickle is no session here either, as before.
const importableModules = new Set([
  "builtins", "__builtin__", "copyreg", "copy_reg", "_codecs", "datetime", "decimal", "fractions", "uuid",
  "zoneinfo", "collections", "types", "pytz", "django"
])
const importable = (module: unknown): void => {
  if (
    typeof module !== "string" ||
    !(importableModules.has(module) || module.startsWith("django.") || module.startsWith("pytz."))
  ) throw new Error("an object of a module a session is not read with")
}

// Python's pickler fails (RecursionError) before its recursion limit, 1000 by default: no session
// Django wrote is nested deeper.
const maxDepth = 1000
// A memoised value (BINGET) stands for the same object again, which `plain` copies: 2 bytes can
// double what was built so far, so 40 levels of [x, x] in 325 bytes would be 2^40 copies (the
// process hangs; Python shares them), and a 100 KB string named 4,000 times in 108 KB (Python's
// pickle of `[s] * 4000`) is 400 MB once copied. The values copied are bounded by the pickle's
// length (or `minCopies`), and the characters of the strings copied by `maxGrowth` times it.
const maxGrowth = 64
const minCopies = 100_000

const budgetOf = (buf: Buffer) => ({ values: Math.max(buf.length, minCopies), chars: Math.max(maxGrowth * buf.length, minCopies) })

// Dicts as plain objects (their keys must be strings, as JSON's; a dict with another key is a Map),
// tuples as arrays. Each key is defined as the object's own, as JSON.parse does: assigning
// "__proto__" would set the prototype (its keys then read as the session's).
const plain = (value: unknown, budget: { values: number; chars: number }, depth: number): unknown => {
  if (--budget.values < 0) throw new Error("too many values")
  if (typeof value === "string") {
    budget.chars -= value.length
    if (budget.chars < 0) throw new Error("too many characters")
    return value
  }
  if (value instanceof Map) {
    if (depth >= maxDepth) throw new Error("nested too deep")
    const entries: Array<[unknown, unknown]> = []
    let strings = true
    for (const [key, item] of value) {
      strings &&= typeof key === "string"
      entries.push([plain(key, budget, depth + 1), plain(item, budget, depth + 1)])
    }
    if (!strings) return new Map(entries)
    const out: Record<string, unknown> = {}
    for (const [key, item] of entries) {
      Object.defineProperty(out, key as string, { value: item, enumerable: true, writable: true, configurable: true })
    }
    return out
  }
  if (!Array.isArray(value)) return value
  if (depth >= maxDepth) throw new Error("nested too deep")
  return value.map((item) => plain(item, budget, depth + 1))
}

/**
 * A pickle (protocol 2) of JSON-like data: what `pickle.loads` reads back as dicts, lists, str,
 * int (a bigint too), float. A Map is a dict in the Map's order; where the value is a Map, an
 * entry that is a {@link RawPickle} is its key and value as read, its opcodes copied (the memo
 * renumbered), and the pickle declares the protocol it was read under where that is higher. @internal
 */
export const dumps = (value: unknown): Buffer => {
  let protocol = 2
  if (value instanceof Map) {
    for (const item of value.values()) if (item instanceof RawPickle) protocol = Math.max(protocol, item.source.protocol)
  }
  const parts: Array<Buffer> = [Buffer.from([0x80, protocol])]
  // The memo of the pickle written: each definition copied, by source, to its index here.
  const renumbered = new Map<Source, Map<number, number>>()
  let memoSize = 0
  const indexOp = (short: number, long: number, n: number) => {
    if (n < 256) return Buffer.from([short, n])
    const b = Buffer.alloc(5)
    b[0] = long
    b.writeUInt32LE(n, 1)
    return b
  }
  // Each source's memo definitions by where their values' opcodes start (the outermost first).
  const byStart = new Map<Source, { readonly ids: Array<number>; readonly starts: Array<number> }>()
  const definitionsOf = (source: Source) => {
    let found = byStart.get(source)
    if (found === undefined) {
      const ids = source.defStart.map((_, d) => d)
        .sort((a, b) => source.defStart[a]! - source.defStart[b]! || source.defEnd[b]! - source.defEnd[a]!)
      byStart.set(source, found = { ids, starts: ids.map((d) => source.defStart[d]!) })
    }
    return found
  }
  const firstAtOrAfter = (positions: ReadonlyArray<number>, from: number) => {
    let lo = 0
    let hi = positions.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (positions[mid]! < from) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  // Copies the opcodes [from, to) of `source`. A value whose memo definition was copied already
  // (spelled out before, within a value effect-auth replaced) is fetched, not built again, so that
  // what Python shared stays shared.
  const copy = (source: Source, from: number, to: number): void => {
    let defs = renumbered.get(source)
    if (defs === undefined) renumbered.set(source, defs = new Map())
    const definitions = definitionsOf(source)
    let i = firstAtOrAfter(source.at, from)
    let j = firstAtOrAfter(definitions.starts, from)
    let at = from
    for (;;) {
      const special = i < source.at.length ? source.at[i]! : Infinity
      const start = j < definitions.starts.length ? definitions.starts[j]! : Infinity
      if (Math.min(special, start) >= to) break
      if (start <= special) {
        const d = definitions.ids[j]!
        const n = defs.get(d)
        if (n !== undefined && source.defEnd[d]! <= to) {
          if (start > at) parts.push(source.buf.subarray(at, start))
          parts.push(indexOp(0x68, 0x6a, n))
          at = source.defEnd[d]!
          i = firstAtOrAfter(source.at, at)
          j = firstAtOrAfter(definitions.starts, at)
        } else j++
        continue
      }
      if (special > at) parts.push(source.buf.subarray(at, special))
      const ref = source.ref[i]!
      switch (source.kind[i]) {
        case MEMOIZE:
          defs.set(ref, memoSize++)
          parts.push(Buffer.from([0x94]))
          break
        case PUT:
          defs.set(ref, memoSize)
          parts.push(indexOp(0x71, 0x72, memoSize++))
          break
        case GET: {
          const n = defs.get(ref)
          // Defined in what was not copied (a value effect-auth replaced): the value itself.
          if (n === undefined) copy(source, source.defStart[ref]!, source.defEnd[ref]!)
          else parts.push(indexOp(0x68, 0x6a, n))
          break
        }
      }
      at = special + source.size[i]!
      i++
    }
    if (to > at) parts.push(source.buf.subarray(at, to))
  }
  const int = (v: number | bigint) => {
    if (typeof v === "number" && v >= -0x80000000 && v <= 0x7fffffff) {
      const b = Buffer.alloc(5)
      b[0] = 0x4a
      b.writeInt32LE(v, 1)
      return parts.push(b)
    }
    let n = BigInt(v)
    const negative = n < 0n
    const bytes: Array<number> = []
    while (n !== 0n && n !== -1n) {
      bytes.push(Number(n & 0xffn))
      n >>= 8n
    }
    // one more byte when the sign bit would say otherwise
    if (bytes.length === 0 || ((bytes[bytes.length - 1]! & 0x80) !== 0) !== negative) bytes.push(negative ? 0xff : 0)
    if (bytes.length < 256) return parts.push(Buffer.from([0x8a, bytes.length, ...bytes]))
    const head = Buffer.alloc(5)
    head[0] = 0x8b
    head.writeInt32LE(bytes.length, 1)
    return parts.push(head, Buffer.from(bytes))
  }
  const write = (v: unknown, top: boolean): void => {
    if (v === null || v === undefined) parts.push(Buffer.from([0x4e]))
    else if (v === true) parts.push(Buffer.from([0x88]))
    else if (v === false) parts.push(Buffer.from([0x89]))
    else if (typeof v === "string") {
      const bytes = Buffer.from(v, "utf8")
      const head = Buffer.alloc(5)
      head[0] = 0x58
      head.writeUInt32LE(bytes.length, 1)
      parts.push(head, bytes)
    } else if (typeof v === "bigint" || (typeof v === "number" && Number.isSafeInteger(v))) int(v)
    else if (typeof v === "number") {
      const b = Buffer.alloc(9)
      b[0] = 0x47
      b.writeDoubleBE(v, 1)
      parts.push(b)
    } else if (Array.isArray(v)) {
      parts.push(Buffer.from([0x5d, 0x28]))
      v.forEach((item) => write(item, false))
      parts.push(Buffer.from([0x65]))
    } else if (v instanceof RawPickle) throw new TypeError("a RawPickle is an entry of the dict pickled")
    else if (typeof v === "object") {
      parts.push(Buffer.from([0x7d, 0x28]))
      for (const [key, item] of v instanceof Map ? v : Object.entries(v as Record<string, unknown>)) {
        if (top && item instanceof RawPickle) copy(item.source, item.start, item.end)
        else {
          write(key, false)
          write(item, false)
        }
      }
      parts.push(Buffer.from([0x75]))
    } else throw new TypeError(`cannot pickle a ${typeof v}`)
  }
  write(value, true)
  parts.push(Buffer.from([0x2e]))
  return Buffer.concat(parts)
}
