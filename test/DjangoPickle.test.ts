// The plain-data pickle Django's Redis cache keeps sessions in, against Python's own pickle.
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Pickle from "../src/internal/django/pickle.js"
import { djangoPython } from "./utils/django.js"

const python = (script: string, input: string): string =>
  execFileSync(djangoPython!, ["-c", `import base64, json, pickle, sys\n${script}`], { input, encoding: "utf8" })

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
      "print(base64.b64encode(pickle.dumps({1: 'int key'})).decode())",
      "print(base64.b64encode(b\"cos\\nsystem\\n(S'echo hi'\\ntR.\").decode())"
    ]) {
      expect(Pickle.loads(Buffer.from(python(script, ""), "base64")), script).toBeUndefined()
    }
    const good = Pickle.dumps(session)
    expect(Pickle.loads(good.subarray(0, good.length - 5))).toBeUndefined()
    expect(Pickle.loads(Buffer.from([0x80, 0x05, 0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toBeUndefined()
    expect(Pickle.loads(Buffer.alloc(0))).toBeUndefined()
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
