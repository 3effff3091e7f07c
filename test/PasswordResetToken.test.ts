import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option, Redacted, TestClock } from "effect"
import * as PasswordResetToken from "../src/PasswordResetToken.js"
import { djangoPython, runDjango } from "./utils/django.js"
import { hostile } from "./utils/hostile.js"

const secret = Redacted.make("django-insecure-test-secret-ü")
const options: PasswordResetToken.Options = { secret }
const T0 = Date.UTC(2024, 4, 17, 9, 30, 12, 345)

interface Case {
  readonly id: string
  readonly password: string
  readonly lastLogin: string | null
  readonly email: string
}

const cases: ReadonlyArray<Case> = [
  { id: "1", password: "pbkdf2_sha256$1200000$abc$def=", lastLogin: null, email: "" },
  { id: "42", password: "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA", lastLogin: "2024-05-16T08:01:02.987Z", email: "alice@example.com" },
  { id: "7", password: "!unusableXYZ", lastLogin: "1999-12-31T23:59:59.000Z", email: "zoë@exämple.org" }
]

const userOf = (c: Case, changes: Partial<Case> = {}): PasswordResetToken.TokenUser => {
  const merged = { ...c, ...changes }
  return {
    id: merged.id,
    passwordHash: Redacted.make(merged.password),
    lastLogin: merged.lastLogin === null ? Option.none() : Option.some(new Date(merged.lastLogin)),
    email: merged.email
  }
}

const at = (ms: number) => TestClock.setTime(ms)

describe("PasswordResetToken", () => {
  it.effect("a token verifies for its user until the timeout, and not a second later", () =>
    Effect.gen(function*() {
      const user = userOf(cases[1]!)
      yield* at(T0)
      const token = yield* PasswordResetToken.make(user, options)
      expect(token).toMatch(/^[0-9a-z]+-[0-9a-f]{32}$/)
      expect(yield* PasswordResetToken.check(user, token, options)).toBe(true)
      // Django counts whole seconds: the last instant of the token's last second is still in.
      const second = Math.floor(T0 / 1000) * 1000
      yield* at(second + Duration.toMillis(PasswordResetToken.defaultTimeout) + 999)
      expect(yield* PasswordResetToken.check(user, token, options)).toBe(true)
      yield* TestClock.adjust("1 second")
      expect(yield* PasswordResetToken.check(user, token, options)).toBe(false)
      // A shorter timeout of one's own.
      yield* at(T0 + 3_600_000 + 1000)
      expect(yield* PasswordResetToken.check(user, token, { ...options, timeout: "1 hour" })).toBe(false)
    }))

  it.effect("a password change, a login, an email change, another user or another secret invalidate it", () =>
    Effect.gen(function*() {
      yield* at(T0)
      const c = cases[1]!
      const token = yield* PasswordResetToken.make(userOf(c), options)
      yield* TestClock.adjust("1 minute")
      const check = (user: PasswordResetToken.TokenUser, opts = options) => PasswordResetToken.check(user, token, opts)
      expect(yield* check(userOf(c))).toBe(true)
      expect(yield* check(userOf(c, { password: c.password + "x" }))).toBe(false)
      expect(yield* check(userOf(c, { lastLogin: new Date(T0 + 30_000).toISOString() }))).toBe(false)
      // Only whole seconds count, as Django drops the microseconds.
      expect(yield* check(userOf(c, { lastLogin: "2024-05-16T08:01:02.000Z" }))).toBe(true)
      expect(yield* check(userOf(c, { email: "mallory@example.com" }))).toBe(false)
      expect(yield* check(userOf(c, { id: "43" }))).toBe(false)
      expect(yield* check(userOf(c), { secret: Redacted.make("other") })).toBe(false)
      expect(yield* check(userOf(c), { secret: Redacted.make("new"), secretFallbacks: [secret] })).toBe(true)
    }))

  it.effect("malformed tokens are false, never a failure", () =>
    Effect.gen(function*() {
      yield* at(T0)
      const user = userOf(cases[0]!)
      const token = yield* PasswordResetToken.make(user, options)
      const [ts, hash] = token.split("-")
      for (const bad of ["", "-", token + "-x", `${ts!.toUpperCase()}-${hash}`, `+${ts}-${hash}`, `${ts}-${hash!.slice(1)}`, `${"z".repeat(14)}-${hash}`]) {
        expect(yield* PasswordResetToken.check(user, bad, options), bad).toBe(false)
      }
      expect(yield* PasswordResetToken.check(user, undefined as any, options)).toBe(false)
    }))

  // From untyped callers: reading such a user died (Redacted.value of a plain string, a Proxy,
  // `getUTCFullYear` of a string) or bound nothing of it (a number as the email).
  it.effect("a user that cannot be read is false to check and an InvalidUser to make, never a defect", () =>
    Effect.gen(function*() {
      yield* at(T0)
      const user = userOf(cases[1]!)
      const token = yield* PasswordResetToken.make(user, options)
      const wiped = Redacted.make("pbkdf2_sha256$1$salt$hash")
      Redacted.unsafeWipe(wiped)
      const malformed: ReadonlyArray<unknown> = [
        null,
        undefined,
        "42",
        hostile(),
        { ...user, id: null },
        { ...user, id: { toString: () => "42" } },
        { ...user, passwordHash: Redacted.value(user.passwordHash) },
        { ...user, passwordHash: wiped },
        { ...user, passwordHash: hostile() },
        { ...user, lastLogin: Option.some("2024-05-16T08:01:02.987Z") },
        { ...user, lastLogin: "2024-05-16T08:01:02.987Z" },
        { ...user, lastLogin: new Date(Number.NaN) },
        { ...user, email: 42 },
        { ...user, email: Symbol("email") }
      ]
      for (const bad of malformed) {
        expect(yield* Effect.suspend(() => PasswordResetToken.check(bad as never, token, options))).toBe(false)
        const refused = yield* Effect.flip(Effect.suspend(() => PasswordResetToken.make(bad as never, options)))
        expect(refused._tag).toBe("InvalidUser")
        // it names what a user needs, never the user's hash
        expect(refused.message).not.toContain(Redacted.value(user.passwordHash))
      }
      // The shapes TokenUser allows: a Date or an Option of one, and a numeric id.
      const lastLogin = Option.getOrThrow(user.lastLogin as Option.Option<Date>)
      expect(yield* PasswordResetToken.check({ ...user, lastLogin }, token, options)).toBe(true)
      const numeric = { ...user, id: 42 }
      expect(yield* PasswordResetToken.check(numeric, yield* PasswordResetToken.make(numeric, options), options)).toBe(true)
    }))

  it.effect("options of the wrong shape are an AuthConfigError of make, check and checkOptions, never a defect", () =>
    Effect.gen(function*() {
      yield* at(T0)
      const user = userOf(cases[0]!)
      const token = yield* PasswordResetToken.make(user, options)
      const bad: ReadonlyArray<readonly [unknown, string]> = [
        [{ ...options, timeZone: "Europe/Pariss" }, "timeZone"],
        [{ ...options, timeZone: 42 }, "timeZone"],
        [{ ...options, timeout: "1 fortnight" }, "timeout"],
        [{ ...options, timeout: {} }, "timeout"],
        // read as zero by Duration: every link dead within a second, unnoticed (Number(env) unset is NaN)
        [{ ...options, timeout: Number.NaN }, "timeout"],
        [{ ...options, timeout: -3_600_000 }, "timeout"],
        [{ ...options, timeout: "-1 hour" }, "timeout"],
        [{ ...options, algorithm: "md5" }, "algorithm"],
        [{ ...options, keySalt: 42 }, "keySalt"],
        [{ ...options, secret: "plain" }, "secret"],
        [{ ...options, secret: hostile() }, "secret"],
        [{ ...options, secretFallbacks: [Redacted.make("old"), "plain"] }, "secretFallbacks"],
        [{ ...options, secretFallbacks: Redacted.make("old") }, "secretFallbacks"],
        [null, "the options"],
        [hostile(), "the options"]
      ]
      for (const [opts, problem] of bad) {
        const runs = [
          PasswordResetToken.checkOptions(opts as never),
          Effect.suspend(() => PasswordResetToken.make(user, opts as never)),
          Effect.suspend(() => PasswordResetToken.check(user, token, opts as never))
        ]
        for (const run of runs) {
          const error = yield* Effect.flip(run)
          expect(error._tag, problem).toBe("AuthConfigError")
          expect(error.message).toMatch(new RegExp(`^PasswordResetToken: ${problem} `))
          // the secret in force is never shown
          expect(error.message).not.toContain("django-insecure")
        }
      }
      // Absent and null are the defaults, as before; a known zone and a Duration are fine.
      const fine = { ...options, timeout: null, keySalt: null, algorithm: null, secretFallbacks: null, timeZone: null } as never
      yield* PasswordResetToken.checkOptions(fine)
      expect(yield* PasswordResetToken.check(user, token, fine)).toBe(true)
      yield* PasswordResetToken.checkOptions({ ...options, timeZone: "Europe/Paris", timeout: Duration.hours(1) })
    }))

  it("uidb64 round-trips like Django's urlsafe_base64_encode; a uid that names no user id (empty, too long) is none", () => {
    expect(PasswordResetToken.encodeUid("42")).toBe("NDI")
    expect(PasswordResetToken.decodeUid("NDI")).toEqual(Option.some("42"))
    expect(PasswordResetToken.decodeUid("N")).toEqual(Option.none())
    expect(PasswordResetToken.decodeUid("%%")).toEqual(Option.none())
    // not a user id: Django's view finds nobody; here it never reaches findById (InvalidInput)
    expect(PasswordResetToken.decodeUid("")).toEqual(Option.none())
    expect(PasswordResetToken.decodeUid(PasswordResetToken.encodeUid("7".repeat(256)))).toEqual(Option.none())
    expect(PasswordResetToken.decodeUid("A".repeat(100_000))).toEqual(Option.none())
    // a leading U+FEFF is kept, as Python's decode keeps it (Django's view then finds nobody)
    expect(PasswordResetToken.decodeUid(Buffer.from("\ufeff42").toString("base64url"))).toEqual(Option.some("\ufeff42"))
    const longest = "\u{1F600}".repeat(127) + "x" // 255 UTF-16 units, 509 bytes
    expect(PasswordResetToken.decodeUid(PasswordResetToken.encodeUid(longest))).toEqual(Option.some(longest))
  })
})

const DJANGO = `
from datetime import datetime, timezone
from zoneinfo import ZoneInfo
from django.contrib.auth.models import User
from django.contrib.auth.tokens import PasswordResetTokenGenerator

class At(PasswordResetTokenGenerator):
    def __init__(self, secret, ms, algorithm=None, zone="UTC", timeout=None):
        self.secret = secret
        self.algorithm = algorithm
        super().__init__()
        # datetime.now() on a server whose TIME_ZONE is zone: the local wall clock.
        self.at = datetime.fromtimestamp(ms / 1000, tz=ZoneInfo(zone)).replace(tzinfo=None)
        if timeout is not None:
            settings.PASSWORD_RESET_TIMEOUT = timeout
    def _now(self):
        return self.at

def user(c):
    ll = None if c["lastLogin"] is None else datetime.fromisoformat(c["lastLogin"].replace("Z", "+00:00")).replace(tzinfo=None)
    return User(pk=int(c["id"]), password=c["password"], last_login=ll, email=c["email"])

out = []
for q in data:
    if q["op"] == "make":
        out.append(At(q["secret"], q["ms"], q.get("algorithm"), q.get("zone", "UTC")).make_token(user(q["user"])))
    elif q["op"] == "legacy":
        # a token of Django 3.0 or older, stamped in days since 2001-01-01, as 3.2 makes one
        g = At(q["secret"], q["ms"], None, q.get("zone", "UTC"))
        out.append(g._make_token_with_timestamp(user(q["user"]), (g.at.date() - datetime(2001, 1, 1).date()).days, legacy=True))
    else:
        out.append(At(q["secret"], q["ms"], None, q.get("zone", "UTC"), q.get("timeout")).check_token(user(q["user"]), q["token"]))
print(json.dumps(out))
`

describe.skipIf(djangoPython === undefined)("PasswordResetToken against Django (python3-django)", () => {
  const secretText = Redacted.value(secret)
  const later = T0 + 3 * 86_400_000 + 1000

  it.effect("tokens are byte for byte Django's, and each side verifies the other's, expiry and invalidation included", () =>
    Effect.gen(function*() {
      const ours: Array<string> = []
      for (const c of cases) {
        yield* at(T0)
        ours.push(yield* PasswordResetToken.make(userOf(c), options))
      }
      const theirs: Array<string> = runDjango(DJANGO, cases.map((user) => ({ op: "make", secret: secretText, ms: T0, user })))
      expect(ours).toEqual(theirs)

      // Django checks ours: valid now, after the timeout, after a password change, after a login.
      const djangoChecks: Array<boolean> = runDjango(
        DJANGO,
        cases.flatMap((c, i) => [
          { op: "check", secret: secretText, ms: T0 + 60_000, user: c, token: ours[i] },
          { op: "check", secret: secretText, ms: later, user: c, token: ours[i] },
          { op: "check", secret: secretText, ms: T0 + 60_000, user: { ...c, password: c.password + "x" }, token: ours[i] },
          { op: "check", secret: secretText, ms: T0 + 60_000, user: { ...c, lastLogin: new Date(T0 + 1000).toISOString() }, token: ours[i] }
        ])
      )
      expect(djangoChecks).toEqual(cases.flatMap(() => [true, false, false, false]))

      // We check Django's, the same four ways.
      const ourChecks: Array<boolean> = []
      for (const [i, c] of cases.entries()) {
        for (const [ms, user] of [
          [T0 + 60_000, userOf(c)],
          [later, userOf(c)],
          [T0 + 60_000, userOf(c, { password: c.password + "x" })],
          [T0 + 60_000, userOf(c, { lastLogin: new Date(T0 + 1000).toISOString() })]
        ] as const) {
          yield* at(ms)
          ourChecks.push(yield* PasswordResetToken.check(user, theirs[i]!, options))
        }
      }
      expect(ourChecks).toEqual(cases.flatMap(() => [true, false, false, false]))
    }))

  it.effect("Django 3.2's legacy SHA-1 tokens verify only with acceptLegacySha1, and with algorithm: sha1", () =>
    Effect.gen(function*() {
      const c = cases[1]!
      const [legacy]: Array<string> = runDjango(DJANGO, [{ op: "make", secret: secretText, ms: T0, user: c, algorithm: "sha1" }])
      yield* at(T0 + 1000)
      expect(yield* PasswordResetToken.check(userOf(c), legacy!, options)).toBe(false)
      expect(yield* PasswordResetToken.check(userOf(c), legacy!, { ...options, acceptLegacySha1: true })).toBe(true)
      yield* at(T0)
      expect(yield* PasswordResetToken.make(userOf(c), { ...options, algorithm: "sha1" })).toBe(legacy)
    }))

  it.effect("Django 3.0's tokens, stamped in days, verify with acceptLegacySha1 and age as Django 3.2 ages them", () =>
    Effect.gen(function*() {
      const c = { ...cases[1]!, email: "" }
      const zone = "America/Chicago"
      const [legacy]: Array<string> = runDjango(DJANGO, [{ op: "legacy", secret: secretText, ms: T0, user: c, zone }])
      expect(legacy!.split("-")[0]!.length).toBeLessThan(4)
      const steps = [T0 + 60_000, T0 + 2 * 86_400_000, T0 + 4 * 86_400_000]
      const theirs: Array<boolean> = runDjango(
        DJANGO,
        steps.map((ms) => ({ op: "check", secret: secretText, ms, user: c, token: legacy, zone }))
      )
      expect(theirs).toEqual([true, true, false])
      const ours: Array<boolean> = []
      for (const ms of steps) {
        yield* at(ms)
        ours.push(yield* PasswordResetToken.check(userOf(c), legacy!, { ...options, timeZone: zone, acceptLegacySha1: true }))
      }
      expect(ours).toEqual(theirs)
      // Django 4.0 and later read the stamp as seconds: long expired
      yield* at(T0 + 60_000)
      expect(yield* PasswordResetToken.check(userOf(c), legacy!, { ...options, timeZone: zone })).toBe(false)
    }))

  it.effect("with timeZone, tokens are stamped and aged by Django's local wall clock (TIME_ZONE), both ways", () =>
    Effect.gen(function*() {
      const c = cases[1]!
      const hour = 3600
      // Summer (DST in Chicago and Paris) and winter; Kolkata is +05:30 all year.
      const runs = [T0, Date.UTC(2024, 0, 15, 23, 45, 1)].flatMap((ms) =>
        ["Asia/Kolkata", "America/Chicago", "Europe/Paris"].map((zone) => ({ ms, zone }))
      )
      const zoned = (zone: string) => ({ ...options, timeZone: zone, timeout: Duration.seconds(hour) })
      const ours: Array<string> = []
      for (const { ms, zone } of runs) {
        yield* at(ms)
        ours.push(yield* PasswordResetToken.make(userOf(c), zoned(zone)))
      }
      const theirs: Array<string> = runDjango(DJANGO, runs.map(({ ms, zone }) => ({ op: "make", secret: secretText, ms, user: c, zone })))
      expect(ours).toEqual(theirs)
      // Django checks ours and we check theirs: valid within the hour, expired after it.
      const steps = (ms: number) => [ms + 60_000, ms + (hour + 60) * 1000]
      const djangoChecks: Array<boolean> = runDjango(
        DJANGO,
        runs.flatMap(({ ms, zone }, i) =>
          steps(ms).map((now) => ({ op: "check", secret: secretText, ms: now, user: c, token: ours[i], zone, timeout: hour }))
        )
      )
      const ourChecks: Array<boolean> = []
      for (const [i, { ms, zone }] of runs.entries()) {
        for (const now of steps(ms)) {
          yield* at(now)
          ourChecks.push(yield* PasswordResetToken.check(userOf(c), theirs[i]!, zoned(zone)))
        }
      }
      expect(djangoChecks).toEqual(runs.flatMap(() => [true, false]))
      expect(ourChecks).toEqual(runs.flatMap(() => [true, false]))
    }))
})
