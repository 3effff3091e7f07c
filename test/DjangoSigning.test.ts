// src/internal/django/signing.ts held against Django 3.2 itself (Debian's python3-django):
// signing.dumps/loads, salted_hmac, SessionStore.encode/decode and get_session_auth_hash.
import { describe, expect, it } from "@effect/vitest"
import { deflateSync } from "node:zlib"
import * as Signing from "../src/internal/django/signing.js"
import { djangoPython, runDjango } from "./utils/django.js"

const DJANGO = `
import time
from unittest import mock
from django.core import signing
from django.test.utils import override_settings
from django.utils import baseconv
from django.utils.crypto import salted_hmac
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth.models import User

def run(case):
    op = case["op"]
    key = case.get("secret", "unused")
    if op == "hmac":
        return salted_hmac(case["salt"], case["value"], key, algorithm=case["algorithm"]).hexdigest()
    if op == "b64":
        return signing.b64_encode(bytes.fromhex(case["hex"])).decode()
    if op == "base62":
        return baseconv.base62.encode(case["n"])
    if op == "dumps":
        return signing.dumps(case["obj"], key=key, salt=case["salt"], compress=case.get("compress", False))
    if op == "loads":
        try:
            return {"value": signing.loads(case["signed"], key=key, salt=case["salt"], max_age=case.get("maxAge"))}
        except signing.SignatureExpired:
            return {"error": "expired"}
        except signing.BadSignature:
            return {"error": "bad"}
    if op == "encode":
        return SessionStore().encode(case["data"])
    if op == "legacyEncode":
        return SessionStore()._legacy_encode(case["data"])
    if op == "decode":
        return SessionStore().decode(case["text"])
    if op == "decodeRepr":
        # 3.2 raises where the data is signed but no JSON (its legacy fallback fails on it)
        try:
            return repr(SessionStore().decode(case["text"]))
        except Exception as e:
            return type(e).__name__
    if op == "decodeDepth":
        # how deep the session Django read is nested, or the exception it raised
        try:
            value, depth = SessionStore().decode(case["text"]).get("x"), 0
        except Exception as e:
            return type(e).__name__
        while isinstance(value, list) and value:
            value, depth = value[0], depth + 1
        return depth
    if op == "authHash":
        user = User(password=case["password"])
        return [user.get_session_auth_hash(), user._legacy_get_session_auth_hash()]
    raise ValueError(op)

out = []
for case in data:
    now = case.get("now", time.time() * 1000) / 1000
    with override_settings(SECRET_KEY=case.get("secret", "unused"), DEFAULT_HASHING_ALGORITHM=case.get("algorithm", "sha256")):
        with mock.patch("time.time", return_value=now):
            out.append(run(case))
print(json.dumps(out))
`

const django = (cases: ReadonlyArray<Record<string, unknown>>): Array<any> => runDjango(DJANGO, cases)

const secret = "django-insecure-s3cret ünï"
const salt = "django.core.signing"
const T0 = Date.UTC(2024, 4, 1, 12, 0, 0, 250)
const objects: ReadonlyArray<unknown> = [
  "hello",
  { user: 42, roles: ["a", "b"], nested: { ok: true, none: null, half: 1.5, neg: -7 } },
  { text: "ünïcödé 😀 \u2028 \"quoted\" \\ \u0000\u001f\u007f </script>" },
  [],
  Array.from({ length: 40 }, (_, i) => ({ id: i, name: "repeated repeated" }))
]

describe.skipIf(djangoPython === undefined)("Django signing against Django 3.2 (python3-django)", () => {
  it("saltedHmac, b64Encode and base62Encode write what Django's salted_hmac, b64_encode and base62 do", () => {
    const hmacs = [
      { salt: "a", value: "b", secret: "c", algorithm: "sha1" as const },
      { salt: "django.contrib.sessionsSessionStore", value: "{\"x\":1}", secret, algorithm: "sha1" as const },
      { salt: "ünï salt", value: "välüe 😀", secret, algorithm: "sha256" as const },
      { salt: "", value: "", secret: "k".repeat(200), algorithm: "sha256" as const }
    ]
    const bytes = ["", "ff", "fbff", "00fbff", Buffer.from("any carnal pleasure.").toString("hex")]
    const numbers = [0, 1, 61, 62, 1714564800, 2 ** 40]
    const theirs = django([
      ...hmacs.map((c) => ({ op: "hmac", ...c })),
      ...bytes.map((hex) => ({ op: "b64", hex })),
      ...numbers.map((n) => ({ op: "base62", n }))
    ])
    const ours = [
      ...hmacs.map((c) => Signing.saltedHmac(c.salt, c.value, c.secret, c.algorithm).toString("hex")),
      ...bytes.map((hex) => Signing.b64Encode(Buffer.from(hex, "hex"))),
      ...numbers.map((n) => Signing.base62Encode(n))
    ]
    expect(ours).toEqual(theirs)
    expect(Signing.saltedHmac("a", "b", "c").toString("hex")).toBe(theirs[0])
    for (const hex of bytes) expect(Signing.b64Decode(Signing.b64Encode(Buffer.from(hex, "hex"))).toString("hex")).toBe(hex)
    for (const n of numbers) expect(Signing.base62Decode(Signing.base62Encode(n))).toBe(n)
    expect(() => Signing.b64Decode("abcde")).toThrow()
    expect(() => Signing.b64Decode("ab:c")).toThrow()
  })

  it("dumps writes exactly what Django's signing.dumps writes at the same time, and compresses when Django does", () => {
    const theirs = django(objects.flatMap((obj) => [
      { op: "dumps", obj, secret, salt, now: T0 },
      { op: "dumps", obj, secret, salt, now: T0, compress: true }
    ]))
    objects.forEach((obj, i) => {
      expect(Signing.dumps(obj, { secret, salt, now: T0 })).toBe(theirs[2 * i])
      const compressed = Signing.dumps(obj, { secret, salt, now: T0, compress: true })
      expect(compressed.startsWith(".")).toBe(theirs[2 * i + 1].startsWith("."))
    })
    expect(theirs[9].startsWith(".")).toBe(true) // the repetitive one compresses
  })

  it("Django's signing.loads reads our dumps (plain, compressed, legacy SHA-1) and ours reads Django's", () => {
    const ours = objects.flatMap((obj) => [
      Signing.dumps(obj, { secret, salt }),
      Signing.dumps(obj, { secret, salt, compress: true }),
      Signing.dumps(obj, { secret, salt, compress: true, algorithm: "sha1" })
    ])
    const read = django(ours.map((signed) => ({ op: "loads", signed, secret, salt })))
    expect(read).toEqual(objects.flatMap((value) => [{ value }, { value }, { value }]))

    // Django 3.2 writes SHA-1 signatures under DEFAULT_HASHING_ALGORITHM = "sha1".
    const theirs = django(objects.flatMap((obj) =>
      [false, true].flatMap((compress) =>
        ["sha256", "sha1"].map((algorithm) => ({ op: "dumps", obj, secret, salt, compress, algorithm }))
      )
    ))
    expect(theirs.map((signed: string) => Signing.loads(signed, { secrets: [secret], salt })))
      .toEqual(objects.flatMap((obj) => [obj, obj, obj, obj]))
  })

  it("a tampered value or signature, another secret or salt, and an expired max_age give undefined, as Django refuses", () => {
    const signed = Signing.dumps({ user: 1 }, { secret, salt, compress: true, now: T0 - 100_000 })
    const cut = signed.lastIndexOf(":")
    const flipped = signed.slice(0, -1) + (signed.endsWith("A") ? "B" : "A")
    const cases = [
      { signed: flipped, secret, salt },
      { signed: signed.slice(0, cut), secret, salt },
      { signed: `x${signed}`, secret, salt },
      { signed, secret: "another secret", salt },
      { signed, secret, salt: "another salt" },
      { signed, secret, salt, maxAge: 99, now: T0 },
      { signed, secret, salt, maxAge: 101, now: T0 },
      { signed: "", secret, salt },
      { signed: "::", secret, salt }
    ]
    const theirs = django(cases.map((c) => ({ op: "loads", ...c })))
    const ours = cases.map((c) =>
      Signing.loads(c.signed, {
        secrets: [c.secret],
        salt: c.salt,
        ...(c.maxAge === undefined ? {} : { maxAgeSeconds: c.maxAge }),
        ...(c.now === undefined ? {} : { now: c.now })
      })
    )
    expect(theirs).toEqual([
      ...Array(5).fill({ error: "bad" }),
      { error: "expired" },
      { value: { user: 1 } },
      { error: "bad" },
      { error: "bad" }
    ])
    expect(ours).toEqual([...Array(6).fill(undefined), { user: 1 }, undefined, undefined])
  })

  it("a fallback secret (SECRET_KEY_FALLBACKS) reads what the old SECRET_KEY signed; without it, nothing", () => {
    const [signed, session] = django([
      { op: "dumps", obj: { a: 1 }, secret: "old key", salt },
      { op: "encode", data: { _auth_user_id: "7" }, secret: "old key" }
    ])
    expect(Signing.loads(signed, { secrets: ["new key", "old key"], salt })).toEqual({ a: 1 })
    expect(Signing.loads(signed, { secrets: ["new key"], salt })).toBeUndefined()
    expect(Signing.decodeSession(session, ["new key", "old key"])).toEqual({ _auth_user_id: "7" })
    expect(Signing.decodeSession(session, ["new key"])).toBeUndefined()
  })

  it("encodeSession and decodeSession agree with SessionStore.encode/decode, the pre-3.1 format included", () => {
    const data = {
      _auth_user_id: "42",
      _auth_user_backend: "django.contrib.auth.backends.ModelBackend",
      _auth_user_hash: "ab".repeat(32),
      cart: Array.from({ length: 20 }, (_, i) => `ïtem ${i}`)
    }
    const ours = Signing.encodeSession(data, secret)
    const oursLegacy = Signing.encodeSession(data, secret, { legacy: true })
    expect(ours.startsWith(".")).toBe(true)
    const [decoded, decodedLegacy, theirs, theirsLegacy, wrongKey] = django([
      { op: "decode", text: ours, secret },
      { op: "decode", text: oursLegacy, secret },
      { op: "encode", data, secret },
      { op: "legacyEncode", data, secret },
      { op: "decode", text: ours, secret: "another secret" }
    ])
    expect([decoded, decodedLegacy, wrongKey]).toEqual([data, data, {}])
    expect(oursLegacy).toBe(theirsLegacy)
    expect(Signing.decodeSession(theirs, [secret])).toEqual(data)
    expect(Signing.decodeSession(theirsLegacy, [secret])).toEqual(data)
    expect(Signing.decodeSession(theirs, ["another secret"])).toBeUndefined()
    expect(Signing.decodeSession(theirsLegacy, ["another secret"])).toBeUndefined()
    expect(Signing.decodeSession("not a session", [secret])).toBeUndefined()
    // Signed under another salt (not a session): Django's SessionStore refuses it too.
    const foreign = Signing.dumps(data, { secret, salt, compress: true })
    expect(Signing.decodeSession(foreign, [secret])).toBeUndefined()
    expect(django([{ op: "decode", text: foreign, secret }])).toEqual([{}])
  })

  // Django 3.2 reads a pre-3.1 session with Python's b64decode, which skips characters outside
  // the alphabet and refuses data that is not whole quads; the platform's decoder did neither.
  it("a pre-3.1 session's base64 is read as Django 3.2 reads it: stray characters skipped, bad padding refused", () => {
    const data = { _auth_user_id: "1", _auth_user_backend: "django.contrib.auth.backends.ModelBackend", _auth_user_hash: "aa" }
    const texts = [0, 1, 2, 3].map((n) => Signing.encodeSession({ ...data, pad: "x".repeat(n) }, secret, { legacy: true }))
    const variants = texts.flatMap((t) => {
      const bare = t.replace(/=+$/, "")
      return [
        t, bare, `${bare}A`, `${bare}+`, `${bare}:x:`, `${t}A`, `${t}=`, `${bare}=`, `${bare}==`, `${bare}===`,
        `${t.slice(0, 20)}-${t.slice(20)}`, `${t.slice(0, 20)}\n${t.slice(20)}`, `${t.slice(0, 20)}=${t.slice(20)}`,
        `${t.slice(0, 21)}==${t.slice(21)}`, `${t.slice(0, 20)}é${t.slice(20)}`
      ]
    })
    const theirs: Array<unknown> = django(variants.map((text) => ({ op: "decode", text, secret })))
    const ours = variants.map((text) => Signing.decodeSession(text, [secret]) ?? {})
    expect(ours).toEqual(theirs)
    // both readings occur: the comparison can fail either way
    expect(theirs.filter((d) => Object.keys(d as object).length > 0).length).toBeGreaterThan(8)
    expect(theirs.filter((d) => Object.keys(d as object).length === 0).length).toBeGreaterThan(8)
  })

  it("sessionAuthHash is User.get_session_auth_hash, and with sha1 the legacy one; verifySessionAuthHash takes both", () => {
    const passwords = [
      "pbkdf2_sha256$260000$seasalt$Q1bDC3BO2b0dC0M9gq0VtGQFS5lLGYgN4eCZ5gWJpZk=",
      "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA",
      "!unusable ünï"
    ]
    const theirs = django(passwords.map((password) => ({ op: "authHash", password, secret })))
    const ours = passwords.map((p) => [Signing.sessionAuthHash(p, secret), Signing.sessionAuthHash(p, secret, "sha1")])
    expect(ours).toEqual(theirs)
    const [[current, legacy]] = theirs
    expect(Signing.verifySessionAuthHash(current, passwords[0]!, ["new key", secret])).toBe(true)
    expect(Signing.verifySessionAuthHash(legacy, passwords[0]!, [secret])).toBe(true)
    expect(Signing.verifySessionAuthHash(current, passwords[1]!, [secret])).toBe(false)
    expect(Signing.verifySessionAuthHash(current, passwords[0]!, ["new key"])).toBe(false)
    expect(Signing.verifySessionAuthHash("", passwords[0]!, [secret])).toBe(false)
  })

  it("data nested deeper than Python's json reads is no session (JSON.stringify overflowed writing it back)", () => {
    const signedSession = (depth: number) => {
      const json = Buffer.from(`{"_auth_user_id":"1","x":${"[".repeat(depth)}0${"]".repeat(depth)}}`)
      const value = `${Signing.b64Encode(json)}:${Signing.base62Encode(Math.floor(T0 / 1000))}`
      return `${value}:${Signing.b64Encode(Signing.saltedHmac(`${Signing.sessionKeySalt()}signer`, value, secret, "sha256"))}`
    }
    const deep = signedSession(200_000)
    // Django itself reads nothing from it (an empty session, or 3.2's fallback to the legacy format raising).
    expect(django([{ op: "decodeDepth", text: deep, secret }])[0]).not.toBe(200_000)
    expect(Signing.decodeSession(deep, [secret])).toBeUndefined()
    expect(Signing.decodeSession(signedSession(1001), [secret])).toBeUndefined()
    // What Django reads (and so may have written), ours reads too; brackets inside strings do not count.
    const within = signedSession(900)
    expect(django([{ op: "decodeDepth", text: within, secret }])).toEqual([900])
    let value = Signing.decodeSession(within, [secret])?.x
    let depth = 0
    while (Array.isArray(value)) [value, depth] = [value[0], depth + 1]
    expect(depth).toBe(900)
    const brackets = { _auth_user_id: "1", note: "[".repeat(5000) + "\\\"{" }
    expect(Signing.decodeSession(Signing.encodeSession(brackets, secret), [secret])).toEqual(brackets)
  })

  it("readSession reads what Django's decode reads, keeping each value's text; encodeSession writes it back", () => {
    const signedText = (json: string) => {
      const value = `${Signing.b64Encode(Buffer.from(json, "latin1"))}:${Signing.base62Encode(Math.floor(T0 / 1000))}`
      return `${value}:${Signing.b64Encode(Signing.saltedHmac(`${Signing.sessionKeySalt()}signer`, value, secret, "sha256"))}`
    }
    const texts = [
      `{"f": 10.0, "e": 1e16, "big": 9223372036854775809, "n": NaN, "i": -Infinity, "neg": -0.0, "10": 1, "2": [2]}`,
      ` {"a" : 1 , "b":{"10":"x","2":"y"}, "a": 2, "s": "\\ud800 \\u00e9 \\"q\\" \\/", "t": true, "u": null} `,
      `{}`,
      // Refused by Python's json: Django reads an empty session.
      `{"x": 01}`,
      `{"x": 1,}`,
      `{"x": "a\u0001b"}`,
      `{"x": tru}`,
      `{"x": 1} x`,
      `{"x": 1.}`,
      `{"x": "\\x"}`,
      `{"x" 1}`
    ]
    const theirs = django(texts.map((json) => ({ op: "decodeRepr", text: signedText(json), secret })))
    const read = texts.map((json) => Signing.readSession(signedText(json), [secret]))
    expect(read.map((dict) => dict !== undefined)).toEqual(theirs.map((repr: string, i: number) => repr.startsWith("{") && (repr !== "{}" || i === 2)))
    // Written back with a key of ours set, Django reads every other value as it was, in its order.
    const rewritten = read.flatMap((dict) => dict === undefined ? [] : [new Map<string, unknown>(dict).set("_auth_user_id", "7")])
    const again = django(rewritten.map((dict) => ({ op: "decodeRepr", text: Signing.encodeSession(dict, secret), secret })))
    expect(again).toEqual(theirs.slice(0, 3).map((repr: string) => repr === "{}" ? "{'_auth_user_id': '7'}" : `${repr.slice(0, -1)}, '_auth_user_id': '7'}`))
    expect([...read[0]!].map(([key, value]) => [key, value.text])).toEqual([
      ["f", "10.0"], ["e", "1e16"], ["big", "9223372036854775809"], ["n", "NaN"], ["i", "-Infinity"], ["neg", "-0.0"], ["10", "1"], ["2", "[2]"]
    ])
    expect(read[1]!.get("a")!.value).toBe(2)
    expect([...read[1]!.keys()]).toEqual(["a", "b", "s", "t", "u"])
  })

  it("a validly signed zlib bomb gives undefined, not a crash or 64 MiB in memory", () => {
    const json = Buffer.from(`"${"a".repeat(64 * 1024 * 1024)}"`)
    const value = `.${Signing.b64Encode(deflateSync(json))}:${Signing.base62Encode(Math.floor(T0 / 1000))}`
    const bomb = `${value}:${Signing.b64Encode(Signing.saltedHmac(`${salt}signer`, value, secret, "sha256"))}`
    expect(bomb.length).toBeLessThan(200_000)
    expect(Signing.loads(bomb, { secrets: [secret], salt })).toBeUndefined()
    // It is the cap that refuses it: the signature is good.
    expect((Signing.loads(bomb, { secrets: [secret], salt, maxDecompressedBytes: 65 * 1024 * 1024 }) as string).length)
      .toBe(64 * 1024 * 1024)
    const sessionBomb = `${value}:${
      Signing.b64Encode(Signing.saltedHmac(`${Signing.sessionKeySalt()}signer`, value, secret, "sha256"))
    }`
    expect(Signing.decodeSession(sessionBomb, [secret])).toBeUndefined()
  })
})
