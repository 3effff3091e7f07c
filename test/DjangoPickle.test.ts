// The plain-data pickle Django's Redis cache keeps sessions in, against Python's own pickle.
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Pickle from "../src/internal/django/pickle.js"
import { djangoPython } from "./utils/django.js"

const python = (script: string, input: string): string =>
  execFileSync(djangoPython!, ["-c", `import base64, json, pickle, sys\n${script}`], { input, encoding: "utf8", maxBuffer: 1 << 28 })

const session = {
  _auth_user_id: "42",
  _auth_user_backend: "django.contrib.auth.backends.ModelBackend",
  _auth_user_hash: "a".repeat(64),
  _effect_auth: { csrf: "t", createdAt: 1_796_357_924_286, lastSeenAt: -3, secondFactor: "totp", degraded: true },
  cart: [1, 2.5, null, false, "jos\u00e9 \ud83d\ude00", [], {}],
  big: 2 ** 40,
  negative: -(2 ** 40),
  edge: [127, 128, 255, 256, -128, -129, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1]
}

describe.skipIf(djangoPython === undefined)("pickle, as Python reads and writes it", () => {
  it("Python reads ours; ours reads Python's at every protocol from 2 to 5", () => {
    const ours = Pickle.dumps(session).toString("base64")
    expect(JSON.parse(python("print(json.dumps(pickle.loads(base64.b64decode(sys.stdin.read()))))", ours))).toEqual(session)
    for (const protocol of [2, 3, 4, 5]) {
      const theirs = python(
        `print(base64.b64encode(pickle.dumps(json.loads(sys.stdin.read()), protocol=${protocol})).decode())`,
        JSON.stringify(session)
      )
      expect(Pickle.loads(Buffer.from(theirs, "base64")), `protocol ${protocol}`).toEqual(session)
    }
    // tuples and shared (memoised) values
    const tuples = python(
      "s = 'shared'; print(base64.b64encode(pickle.dumps({'t': (1, 2), 'u': (s,), 'v': (1, 2, 3, 4), 'w': [s, s]}, protocol=4)).decode())",
      ""
    )
    expect(Pickle.loads(Buffer.from(tuples, "base64"))).toEqual({ t: [1, 2], u: ["shared"], v: [1, 2, 3, 4], w: ["shared", "shared"] })
  })

  it("anything that is not plain data is unreadable, never run", () => {
    for (const script of [
      "import os; print(base64.b64encode(pickle.dumps({'x': os.getcwd}, protocol=2)).decode())",
      "import datetime; print(base64.b64encode(pickle.dumps({'x': datetime.datetime(2030, 1, 1)})).decode())",
      // a dict key Python cannot hash (its unpickling fails: TypeError), crafted
      "print(base64.b64encode(b'\\x80\\x02}(]K\\x01u.').decode())",
      "print(base64.b64encode(b'\\x80\\x02}(K\\x01]\\x86K\\x01u.').decode())",
      "print(base64.b64encode(b\"cos\\nsystem\\n(S'echo hi'\\ntR.\").decode())"
    ]) {
      expect(Pickle.loads(Buffer.from(python(script, ""), "base64")), script).toBeUndefined()
    }
    const good = Pickle.dumps(session)
    expect(Pickle.loads(good.subarray(0, good.length - 5))).toBeUndefined()
    expect(Pickle.loads(Buffer.from([0x80, 0x05, 0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toBeUndefined()
    expect(Pickle.loads(Buffer.alloc(0))).toBeUndefined()
  })

  // Python writes a str as UTF-8 with "surrogatepass": a lone surrogate is its own three bytes.
  // Read as Buffer's UTF-8 they were three U+FFFD, another (valid-looking) user id; a high and a
  // low surrogate kept apart (two code points to Python) would read as one other character.
  it("strings read as Python reads them: a lone surrogate is kept; two that JavaScript would pair, or bytes Python cannot decode, are unreadable", () => {
    const pickled = (literal: string) =>
      Buffer.from(python(`print(base64.b64encode(pickle.dumps({"_auth_user_id": ${literal}}, protocol=5)).decode())`, ""), "base64")
    expect(Pickle.loads(pickled(`"a\\ud800"`))).toEqual({ _auth_user_id: "a\ud800" })
    expect(Pickle.loads(pickled(`"\\udc00b\\ud83dc"`))).toEqual({ _auth_user_id: "\udc00b\ud83dc" })
    expect(Pickle.loads(pickled(`"\\ud83d\\ude00"`))).toBeUndefined()
    expect(Pickle.loads(pickled(`"\\U0001f600"`))).toEqual({ _auth_user_id: "\u{1f600}" })
    // a leading U+FEFF is part of the string (a decoder strips it by default), also after a surrogate
    expect(Pickle.loads(pickled(`"\\ufeff42"`))).toEqual({ _auth_user_id: "\ufeff42" })
    expect(Pickle.loads(pickled(`"a\\ud800\\ufeffb"`))).toEqual({ _auth_user_id: "a\ud800\ufeffb" })
    const twoKeys = Buffer.from(
      python(`print(base64.b64encode(pickle.dumps({"cart": "apples", "\\ufeffcart": "pears"}, protocol=4)).decode())`, ""),
      "base64"
    )
    expect(Pickle.loads(twoKeys)).toEqual({ cart: "apples", "\ufeffcart": "pears" })
    expect([...Pickle.readSession(twoKeys)!.keys()]).toEqual(["cart", "\ufeffcart"])
    // BINUNICODE of one byte 0xff: Python's unpickler raises UnicodeDecodeError
    expect(Pickle.loads(Buffer.from([0x80, 0x02, 0x58, 0x01, 0x00, 0x00, 0x00, 0xff, 0x2e]))).toBeUndefined()
  })
})

describe("pickle, read from odd data", () => {
  it("memoised values copied past the pickle's size are refused, not expanded", () => {
    // [x, x] of [x, x] of ... 22 deep, each level one list memoised and fetched twice: Python
    // shares the one list, copies are 2^23 lists from 181 bytes (40 deep, 325 bytes: 2^41, a hang).
    const bytes = [0x80, 0x05, 0x5d, 0x94]
    for (let i = 0; i < 22; i++) bytes.push(0x5d, 0x28, 0x68, i, 0x68, i, 0x65, 0x94)
    bytes.push(0x2e)
    const started = Date.now()
    // (compared as a boolean: printing 2^23 lists in a failure would hang the runner)
    expect(Pickle.loads(Buffer.from(bytes)) === undefined).toBe(true)
    expect(Date.now() - started).toBeLessThan(1000)
    // a list that holds itself
    expect(Pickle.loads(Buffer.from([0x80, 0x05, 0x5d, 0x94, 0x68, 0x00, 0x61, 0x2e]))).toBeUndefined()
    // deeper than Python's pickler nests: refused; as deep as it does: read
    const nested = (depth: number) =>
      Buffer.from([0x80, 0x05, ...Array<number>(depth).fill(0x5d), ...Array<number>(depth - 1).fill(0x61), 0x2e])
    expect(Pickle.loads(nested(1001))).toBeUndefined()
    expect(Pickle.loads(nested(1000))).toBeDefined()
    // a few shared values are copied, as Python's reader would give them
    expect(Pickle.loads(Buffer.from([0x80, 0x05, 0x5d, 0x94, 0x5d, 0x28, 0x68, 0x00, 0x68, 0x00, 0x65, 0x2e]))).toEqual([[], []])
  })
})

describe("pickle, strings named many times", () => {
  // Python's pickle of {"k": [s] * 4000}, s 100 KB: the string once, then 3,999 BINGETs of 2 bytes.
  // Copied, it was 400 MB read, and 400 MB again written back by every touch of the session.
  it("a long string named thousands of times is refused, not copied past 64 times the pickle's size", () => {
    const s = Buffer.from("x".repeat(100_000))
    const head = Buffer.alloc(5)
    head[0] = 0x58 // BINUNICODE
    head.writeUInt32LE(s.length, 1)
    const many = (copies: number) =>
      Buffer.concat([
        Buffer.from([0x80, 0x02, 0x7d, 0x58, 1, 0, 0, 0, 0x6b, 0x5d, 0x28]), // {  "k"  [ MARK
        head,
        s,
        Buffer.from([0x71, 0x00]), // BINPUT 0
        Buffer.from(Array.from({ length: copies - 1 }, () => [0x68, 0x00]).flat()), // BINGET 0
        Buffer.from([0x65, 0x73, 0x2e]) // APPENDS SETITEM STOP
      ])
    expect(Pickle.loads(many(4_000))).toBeUndefined()
    // Values are held to the pickle's length as before: a list of 100 ints named 60,000 times
    // (120 KB) is 6 M values, each written back as 5 bytes.
    const ints = Buffer.concat([
      Buffer.from([0x80, 0x02, 0x5d, 0x28, 0x5d, 0x71, 0x00, 0x28]), // [ MARK [ BINPUT 0 MARK
      Buffer.from(Array.from({ length: 100 }, (_, i) => [0x4b, i]).flat()), // BININT1 i
      Buffer.from([0x65]), // APPENDS (the inner list)
      Buffer.from(Array.from({ length: 59_999 }, () => [0x68, 0x00]).flat()), // BINGET 0
      Buffer.from([0x65, 0x2e]) // APPENDS STOP
    ])
    expect(Pickle.loads(ints)).toBeUndefined()
    // A few copies (a value repeated in a session) still read.
    const few = Pickle.loads(many(3)) as { k: Array<string> }
    expect(few.k).toHaveLength(3)
    expect(few.k.every((item) => item.length === 100_000)).toBe(true)
  })
})

describe("pickle, dict keys", () => {
  it("a key \"__proto__\" is the dict's own, as JSON.parse reads it: it neither sets the prototype nor is lost", () => {
    const withProto = JSON.parse("{\"__proto__\": {\"_auth_user_id\": \"7\"}, \"a\": 1}") as Record<string, unknown>
    const read = Pickle.loads(Pickle.dumps(withProto)) as Record<string, unknown>
    expect(Object.getPrototypeOf(read)).toBe(Object.prototype)
    expect(read._auth_user_id).toBeUndefined()
    expect(Object.keys(read)).toEqual(["__proto__", "a"])
    expect(JSON.stringify(read)).toBe(JSON.stringify(withProto))
  })
})

// Django's Redis cache pickles the session dict with Python's types, which JavaScript's values
// cannot tell apart: a float 1.0 and the int 1, a tuple and a list; and a dict with int keys or an
// int past 2^53 made the whole session unreadable. Rewritten from what JavaScript held, a session
// came back to Django changed. Each entry is now copied as Django's opcodes.
describe.skipIf(djangoPython === undefined)("pickle, a session dict written back", () => {
  // Python's description of a value: every type, nested, and each leaf's repr.
  const described = `
def t(v):
    if isinstance(v, dict): return ["dict", [[t(k), t(x)] for k, x in v.items()]]
    if isinstance(v, (list, tuple)): return [type(v).__name__, [t(x) for x in v]]
    return [type(v).__name__, repr(v)]
`
  // Python's pickle (protocol 5, as Django's cache writes it) of the literal `data`, and how
  // Python holds it.
  const theirs = (data: string) => {
    const out = JSON.parse(python(
      `${described}d = ${data}\nprint(json.dumps({"pickle": base64.b64encode(pickle.dumps(d, 5)).decode(), "t": t(d)}))`,
      ""
    )) as { pickle: string; t: unknown }
    return { bytes: Buffer.from(out.pickle, "base64"), t: out.t }
  }
  // How Python holds our pickle, and the identities asked of it (`checks`: Python expressions of d).
  const asPythonReads = (ours: Buffer, checks: ReadonlyArray<string> = []) =>
    JSON.parse(python(
      `${described}d = pickle.loads(base64.b64decode(sys.stdin.read()))\nprint(json.dumps({"t": t(d), "checks": [${checks.join(", ")}]}))`,
      ours.toString("base64")
    )) as { t: [string, Array<[unknown, unknown]>]; checks: Array<unknown> }
  // effect-auth's rewrite of a session: its own keys set, the others kept.
  const rewritten = (bytes: Buffer, own: Record<string, unknown>) => {
    const dict = new Map<unknown, unknown>(Pickle.readSession(bytes))
    for (const [key, value] of Object.entries(own)) dict.set(key, value)
    return Pickle.dumps(dict)
  }
  const own = {
    _auth_user_id: "42",
    _effect_auth: { csrf: "t", createdAt: 1_796_357_924_286, lastSeenAt: 3, degraded: true }
  }
  const data = `{"one": 1.0, "half": 2.5, "pair": (1, "ab"), "pairs": [(1, 2), ("xy", (3.0, None)), [], ()],
    "by_id": {1: "cd", 2: (2.0, "ef"), 10: {"n": -0.0}, (1, 2.0): True, None: 1.5, 2.5: [1e16]},
    "big": 2 ** 70, "neg_big": -(2 ** 64) - 1, "huge": 7 ** 1000, "3": [True, False, "jos\\u00e9 \\U0001F600"]}`

  it("every value effect-auth did not set comes back with its Python type and value, in its place, as Django's bytes", () => {
    const { bytes, t } = theirs(data)
    const ours = rewritten(bytes, own)
    const read = asPythonReads(ours)
    // Python's view of ours: theirs, then effect-auth's keys (ints stay ints, strings strings).
    expect(read.t).toEqual([
      "dict",
      [
        ...(t as [string, Array<unknown>])[1],
        [["str", "'_auth_user_id'"], ["str", "'42'"]],
        [["str", "'_effect_auth'"], ["dict", [
          [["str", "'csrf'"], ["str", "'t'"]],
          [["str", "'createdAt'"], ["int", "1796357924286"]],
          [["str", "'lastSeenAt'"], ["int", "3"]],
          [["str", "'degraded'"], ["bool", "True"]]
        ]]]
      ]
    ])
    // Nothing in this data is shared (fetched from the memo): Django's bytes of every entry are
    // ours as they are. Theirs: PROTO 5, FRAME, EMPTY_DICT, MEMOIZE, MARK ... SETITEMS STOP;
    // ours: PROTO 5, EMPTY_DICT, MARK, then the same entries.
    expect(ours.subarray(0, 4)).toEqual(Buffer.from([0x80, 0x05, 0x7d, 0x28]))
    expect(bytes.subarray(11, 14)).toEqual(Buffer.from([0x7d, 0x94, 0x28]))
    expect(ours.subarray(4, 4 + bytes.length - 16).equals(bytes.subarray(14, bytes.length - 2))).toBe(true)
    // What effect-auth reads of them: JavaScript's numbers, arrays, Maps for int keys, bigints.
    const dict = Pickle.readSession(bytes)!
    expect(dict.get("one")!.value).toBe(1)
    expect(dict.get("pair")!.value).toEqual([1, "ab"])
    expect(dict.get("big")!.value).toBe(2n ** 70n)
    expect(dict.get("by_id")!.value).toBeInstanceOf(Map)
    // Read and written again, as a login over a login does: the same.
    expect(asPythonReads(rewritten(ours, { _auth_user_id: "43" })).t[1].slice(0, -2)).toEqual((t as [string, Array<unknown>])[1])
  })

  it("values Python shares stay shared; a value shared with one effect-auth replaced is spelled out", () => {
    // `u` is one str object under three keys (one of them effect-auth's), `l` one list under two;
    // single characters and interned names are shared by CPython itself (the key "a" and the "a"
    // in the tuple).
    const { bytes } = theirs(`(lambda u, l: {"_auth_user_id": u, "mine": u, "l1": l, "a": ("a", u), "l2": l, "x": [l, u]})(
      "user-" + str(7), [1.0, ("t",)])`)
    // (the memo is used: BINGET)
    expect(bytes.includes(0x68)).toBe(true)
    const ours = rewritten(bytes, own)
    const read = asPythonReads(ours, [
      "d['mine']",
      "d['a'] == ('a', 'user-7')",
      "d['l1'] is d['l2']",
      "d['x'][0] is d['l1']",
      "d['x'][1] is d['mine']",
      "d['a'][1] is d['mine']",
      "d['l1'] == [1.0, ('t',)] and type(d['l1'][0]) is float and type(d['l1'][1]) is tuple",
      "list(d)"
    ])
    expect(read.checks).toEqual([
      "user-7",
      true,
      true,
      true,
      true,
      true,
      true,
      ["_auth_user_id", "mine", "l1", "a", "l2", "x", "_effect_auth"]
    ])
    // A protocol 2 pickle (BINPUT and BINGET, no frames) is copied the same way, under its protocol.
    const two = Buffer.from(
      python("l = [1.0, (2,)]\nprint(base64.b64encode(pickle.dumps({'_auth_user_id': '1', 'p': l, 'q': l}, 2)).decode())", ""),
      "base64"
    )
    const ours2 = rewritten(two, own)
    expect(ours2[1]).toBe(2)
    expect(asPythonReads(ours2, ["d['p'] is d['q']", "repr(d['p'])"]).checks).toEqual([true, "[1.0, (2,)]"])
  })

  it("random sessions as Python pickles them (protocols 2 to 5) come back the same, what Python shared still shared", () => {
    // Seeded random dicts: every kind of value, nested; lists past 1000 items (two APPENDS) and
    // strings past 64 KB (outside a frame); values shared between keys and within one, and with
    // the keys effect-auth replaces.
    const generated = JSON.parse(python(
      `import random
random.seed(7)
pool = []
def leaf():
    return random.choice([lambda: random.randint(-5, 300), lambda: random.randint(-2**80, 2**80), lambda: float(random.randint(-3, 3)),
        lambda: random.random(), lambda: None, lambda: True, lambda: False, lambda: "s" * random.randint(0, 3),
        lambda: "\u00e9" + str(random.random()), lambda: 7 ** random.randint(100, 1500)])()
def key():
    return random.choice([lambda: "k" + str(random.randint(0, 20)), lambda: random.randint(-3, 10), lambda: (1, "a"), lambda: 2.5, lambda: None])()
def val(depth):
    r = random.random()
    if pool and r < 0.15: return random.choice(pool)
    if depth > 4 or r < 0.4: v = leaf()
    elif r < 0.6: v = [val(depth + 1) for _ in range(random.choice([0, 1, 3, 1001]) if depth == 0 else random.randint(0, 4))]
    elif r < 0.8: v = tuple(val(depth + 1) for _ in range(random.randint(0, 5)))
    else: v = {key(): val(depth + 1) for _ in range(random.randint(0, 4))}
    if random.random() < 0.3: pool.append(v)
    return v
out = []
for i in range(60):
    pool.clear()
    d = {"_auth_user_id": val(1) if random.random() < 0.5 else "1"}
    for _ in range(random.randint(0, 8)): d["k" + str(random.randint(0, 12))] = val(0)
    if random.random() < 0.2: d["long"] = "x" * 70000
    if random.random() < 0.2: d[random.randint(0, 5)] = val(0)
    d["_effect_auth"] = val(1)
    out.append(base64.b64encode(pickle.dumps(d, random.choice([2, 3, 4, 5]))).decode())
print(json.dumps(out))`,
      ""
    )) as Array<string>
    const pairs = generated.map((theirs) => [theirs, rewritten(Buffer.from(theirs, "base64"), own).toString("base64")])
    // Python's own rewrite of theirs against its reading of ours: types, values, order and which
    // lists and dicts are one object.
    const differing = JSON.parse(python(
      `def t(v, seen):
    if isinstance(v, (list, dict)):
        if id(v) in seen: return ["same as", seen[id(v)]]
        seen[id(v)] = len(seen)
    if isinstance(v, dict): return ["dict", [[t(k, seen), t(x, seen)] for k, x in v.items()]]
    if isinstance(v, (list, tuple)): return [type(v).__name__, [t(x, seen) for x in v]]
    return [type(v).__name__, repr(v)]
differing = []
for i, (theirs, ours) in enumerate(json.load(sys.stdin)):
    d = pickle.loads(base64.b64decode(theirs))
    d.update(${JSON.stringify(own).replace("true", "True")})
    if t(d, {}) != t(pickle.loads(base64.b64decode(ours)), {}): differing.append(i)
print(json.dumps(differing))`,
      JSON.stringify(pairs)
    ))
    expect(differing).toEqual([])
  })

  // Django's cache pickles the session dict as it is: a view may keep a datetime or a Decimal in
  // it. Such a session was no session here, and a login over it left only the login behind (its
  // `cycle_key` keeps every entry).
  it("objects Django pickled (datetime, Decimal, set, bytes) are kept as Django wrote them, at every protocol, never read", () => {
    for (const protocol of [2, 3, 4, 5]) {
      const out = JSON.parse(python(
        `${described}import collections, datetime, decimal
when = datetime.datetime(2026, 12, 8, 9, 30, 1, 5, tzinfo=datetime.timezone.utc)
d = {"_auth_user_id": "7", "seen": when, "day": datetime.date(2026, 12, 8), "naive": datetime.datetime(2030, 1, 1),
  "price": decimal.Decimal("19.99"), "tags": {"a"}, "frozen": frozenset([1]), "raw": b"\\x00\\xff",
  "again": when, "nested": [when, ("t", decimal.Decimal("-0"))],
  "ordered": collections.OrderedDict([("b", 1), ("a", 2)]), "by_default": collections.defaultdict(list, {"k": [1]}),
  "queue": collections.deque([1, 2]), "buffer": bytearray(b"xy"), "after": 1.0}
print(json.dumps({"pickle": base64.b64encode(pickle.dumps(d, ${protocol})).decode(), "t": t(d)}))`,
        ""
      )) as { pickle: string; t: [string, Array<[unknown, unknown]>] }
      const bytes = Buffer.from(out.pickle, "base64")
      const dict = Pickle.readSession(bytes)
      expect(dict, `protocol ${protocol}`).toBeDefined()
      expect(dict!.get("seen")!.value).toBe(Pickle.opaque)
      expect(dict!.get("_auth_user_id")!.value).toBe("7")
      expect(dict!.get("after")!.value).toBe(1)
      // effect-auth's keys written over, every other entry Python's as it was, shared where it was
      const ours = rewritten(bytes, own)
      const read = asPythonReads(ours, ["d['seen'] is d['again']", "d['nested'][0] is d['seen']"])
      expect(read.t[1].slice(1, -1), `protocol ${protocol}`).toEqual(out.t[1].slice(1))
      expect(read.checks).toEqual([true, true])
    }
    // An object of the app's own class (here `__main__`'s) may not import where Django reads the
    // session (a class renamed since): Django then reads none, and neither does effect-auth.
    const appClass = python(
      `class Cart:\n    pass\nc = Cart()\nc.items = [1]\nprint(base64.b64encode(pickle.dumps({"_auth_user_id": "7", "cart": c}, 5)).decode())`,
      ""
    )
    expect(Pickle.readSession(Buffer.from(appClass, "base64"))).toBeUndefined()
    // still nothing but plain data for a value read on its own
    expect(Pickle.loads(Buffer.from(python("import datetime; print(base64.b64encode(pickle.dumps(datetime.date(2026, 1, 1))).decode())", ""), "base64")))
      .toBeUndefined()
  })

  it("a pickle Python's pickler would not write is no session, nor one Python cannot read", () => {
    for (
      const bytes of [
        // a list key: Python's unpickling fails (unhashable), Django reads no session
        [0x80, 0x02, 0x7d, 0x28, 0x5d, 0x4b, 0x01, 0x75, 0x2e],
        // a tuple key holding a list
        [0x80, 0x02, 0x7d, 0x28, 0x4b, 0x01, 0x5d, 0x86, 0x4b, 0x01, 0x75, 0x2e],
        // an item added to a list fetched from the memo, once done: {"l": l, "m": l}, 1 appended to l
        // through "m" (Python reads {"l": [1], "m": [1]})
        [0x80, 0x02, 0x7d, 0x28, 0x58, 1, 0, 0, 0, 0x6c, 0x5d, 0x71, 0x00, 0x58, 1, 0, 0, 0, 0x6d, 0x68, 0x00, 0x4b, 0x01, 0x61, 0x75, 0x2e],
        // something left on the stack under the dict
        [0x80, 0x02, 0x4e, 0x7d, 0x2e],
        // MEMOIZE of a mark, then the mark fetched
        [0x80, 0x04, 0x7d, 0x28, 0x94, 0x58, 1, 0, 0, 0, 0x6b, 0x68, 0x00, 0x75, 0x2e],
        // an odd number of dict items
        [0x80, 0x02, 0x7d, 0x28, 0x4b, 0x01, 0x75, 0x2e]
      ]
    ) {
      expect(Pickle.readSession(Buffer.from(bytes)), Buffer.from(bytes).toString("hex")).toBeUndefined()
    }
    // not a dict
    expect(Pickle.readSession(Pickle.dumps([1, 2]))).toBeUndefined()
    // Django's own pickle of an empty session
    expect(Pickle.readSession(Buffer.from(python("print(base64.b64encode(pickle.dumps({}, 5)).decode())", ""), "base64")))
      .toEqual(new Map())
  })
})
