// What the Lockout suites on Redis and SQL share: a password backend that counts the attempts that
// reach it, and the outcome of an attempt as a tag.
import { expect } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as AuthBackend from "../../src/AuthBackend.js"
import * as AuthError from "../../src/AuthError.js"
import * as AuthEvents from "../../src/AuthEvents.js"
import type { AuthRequest } from "../../src/AuthRequest.js"
import * as AuthService from "../../src/AuthService.js"
import * as Credentials from "../../src/Credentials.js"
import * as Lockout from "../../src/Lockout.js"
import * as TestBackend from "../../src/testing/TestBackend.js"

const alice = TestBackend.user("alice")

/**
 * Accepts the password "right" for anyone; counts every attempt that reaches it. A wrong password
 * takes 5 ms; a right one too with `slowSuccess` (for successes that overlap).
 */
export const counting = (options: { readonly slowSuccess?: boolean } = {}) => {
  let calls = 0
  const backend = AuthBackend.make({
    id: "passwords",
    credentials: Credentials.UsernamePassword,
    // Asynchronous like a real hash, so attempts from both instances overlap.
    authenticate: ({ password }) =>
      Effect.suspend(() => {
        calls++
        if (Redacted.value(password) !== "right") {
          return Effect.zipRight(Effect.sleep("5 millis"), AuthError.noMatch("passwords", "invalid-credentials"))
        }
        return options.slowSuccess === true ? Effect.as(Effect.sleep("5 millis"), alice) : Effect.succeed(alice)
      }),
    getUser: () => Effect.succeedNone
  })
  return { backend, calls: () => calls }
}

/**
 * Two accounts whose names fold to one lockout key, as a user store that does not fold case
 * keeps them: `alice` (password "right") and `Alice`, the attacker's own (password "mallory's").
 * Anything else is a wrong password. Counts every attempt that reaches it.
 */
export const twoAccounts = () => {
  let calls = 0
  const accounts: Record<string, { readonly password: string; readonly user: ReturnType<typeof TestBackend.user> }> = {
    alice: { password: "right", user: TestBackend.user("alice", { id: "1" }) },
    Alice: { password: "mallory's", user: TestBackend.user("Alice", { id: "2" }) }
  }
  const backend = AuthBackend.make({
    id: "passwords",
    credentials: Credentials.UsernamePassword,
    authenticate: ({ password, username }) =>
      Effect.suspend(() => {
        calls++
        const account = Object.hasOwn(accounts, username) ? accounts[username] : undefined
        return account !== undefined && Redacted.value(password) === account.password
          ? Effect.succeed(account.user)
          : AuthError.noMatch("passwords", "invalid-credentials")
      }),
    getUser: () => Effect.succeedNone
  })
  return { backend, calls: () => calls }
}

export const tagOf = (exit: Exit.Exit<unknown, AuthError.AuthenticateError>) =>
  Exit.isSuccess(exit) ? "success" : exit.cause._tag === "Fail" ? exit.cause.error._tag : "other"

/** One app instance: its AuthService and its Lockout, sharing a store with the other. */
export interface Instance {
  readonly auth: AuthService.Service
  readonly lockout: Lockout.Service
}

/**
 * The law both shared stores are held to: 500 concurrent wrong passwords for one user through
 * two instances, limit 5: exactly 5 reach the backend, 495 are LockedOut; the lock holds on both
 * instances until a reset on either.
 */
export const exactlyTheLimitGetsThrough = (a: Instance, b: Instance, calls: () => number) =>
  Effect.gen(function*() {
    const outcomes = yield* Effect.all(
      Array.from({ length: 500 }, (_, i) =>
        Effect.map(Effect.exit((i % 2 === 0 ? a : b).auth.authenticate({ username: "alice", password: `wrong-${i}` })), tagOf)),
      { concurrency: "unbounded" }
    )
    expect(calls()).toBe(5)
    expect(outcomes.filter((o) => o === "AuthenticationFailed").length).toBe(5)
    expect(outcomes.filter((o) => o === "LockedOut").length).toBe(495)
    const entries = yield* b.lockout.list
    expect(entries).toHaveLength(1)
    expect(entries[0]).toMatchObject({ key: "username:alice", failures: 5, lockouts: 1 })
    expect(entries[0]!.lockedUntil).toBeInstanceOf(Date)
    expect(tagOf(yield* Effect.exit(a.auth.authenticate({ username: "alice", password: "right" })))).toBe("LockedOut")
    expect(yield* a.lockout.reset("alice")).toEqual(["username:alice"])
    expect(tagOf(yield* Effect.exit(b.auth.authenticate({ username: "alice", password: "right" })))).toBe("success")
  })

/**
 * Successes in flight are no failures: 20 concurrent correct logins through two instances (limit
 * 5) all get in, also after 4 failures, when only one attempt at a time may be in flight; the
 * failures stay counted, and the fifth locks. (Each attempt was counted as a failure when it
 * asked, the lock set at the limit: the sixth concurrent correct login was refused for the whole
 * cool-off, and 4 guesses every cool-off kept a user from two parallel requests.)
 */
export const concurrentSuccessesLockNobody = (a: Instance, b: Instance, calls: () => number) =>
  Effect.gen(function*() {
    const logins = (password: string, n: number) =>
      Effect.all(
        Array.from({ length: n }, (_, i) =>
          Effect.map(Effect.exit((i % 2 === 0 ? a : b).auth.authenticate({ username: "alice", password })), tagOf)),
        { concurrency: "unbounded" }
      )
    expect(yield* logins("right", 20)).toEqual(Array(20).fill("success"))
    expect(yield* b.lockout.list).toEqual([])
    for (let i = 0; i < 4; i++) expect(yield* logins("wrong", 1)).toEqual(["AuthenticationFailed"])
    expect(yield* logins("right", 20)).toEqual(Array(20).fill("success"))
    expect((yield* a.lockout.list).map((e) => [e.key, e.failures, e.lockedUntil])).toEqual([["username:alice", 4, undefined]])
    expect(calls()).toBe(44)
    expect(yield* logins("wrong", 1)).toEqual(["AuthenticationFailed"])
    expect(yield* logins("right", 2)).toEqual(["LockedOut", "LockedOut"])
    expect(calls()).toBe(45)
  })

/** The other law: 400 concurrent failures through two instances under a high limit count 400 on each key. */
export const noCountIsLost = (a: Instance, b: Instance, calls: () => number) =>
  Effect.gen(function*() {
    yield* Effect.all(
      Array.from({ length: 400 }, (_, i) =>
        Effect.exit(
          (i % 2 === 0 ? a : b).auth.authenticate({ username: "bob", password: "x" }, { remoteAddress: "192.0.2.5" })
        )),
      { concurrency: "unbounded" }
    )
    expect(calls()).toBe(400)
    const entries = yield* a.lockout.list
    expect(entries.map((e) => [e.key, e.failures])).toEqual([["ip:192.0.2.5", 400], ["username:bob", 400]])
  })

/**
 * Requests an untyped caller may hand over whose address is none: a `remoteAddress` that is no
 * string (10.0.0.1 as a number, an array, an object that prints as an address, a Proxy) or that
 * throws when read, a request that throws when read, a request that is no object.
 */
export const oddRequests = (): ReadonlyArray<unknown> => {
  const throwing = () => {
    throw new Error("hostile")
  }
  return [
    { remoteAddress: 167772161 },
    { remoteAddress: ["10.0.0.1"] },
    { remoteAddress: { toString: () => "10.0.0.1" } },
    { remoteAddress: new Proxy({}, { get: throwing }) },
    Object.defineProperty({}, "remoteAddress", { get: throwing }),
    new Proxy({}, { get: throwing, has: throwing }),
    "10.0.0.1"
  ]
}

/**
 * A law for every store: an attempt whose request has no address that can be read ({@link oddRequests})
 * counts as one without an address, never a defect: by "username-or-ip", limit 2, two failures
 * count under the name alone, then LockedOut; no `ip:` key is written.
 */
export const oddAddressesCountByName = (a: Instance) =>
  Effect.gen(function*() {
    const requests = oddRequests()
    for (const [i, request] of requests.entries()) {
      const outcomes: Array<string> = []
      for (let n = 0; n < 3; n++) {
        const attempt = Effect.suspend(() =>
          a.auth.authenticate({ username: `odd${i}`, password: `wrong-${n}` }, request as AuthRequest)
        )
        outcomes.push(tagOf(yield* Effect.exit(attempt)))
      }
      expect(outcomes, String(i)).toEqual(["AuthenticationFailed", "AuthenticationFailed", "LockedOut"])
    }
    expect((yield* a.lockout.list).map((e) => e.key)).toEqual(requests.map((_, i) => `username:odd${i}`))
  })

/** Names a database cannot keep as they are: a NUL, a lone surrogate, a pair cut by the 300-unit fold. */
export const illFormedNames = ["bob\u0000", "dave\uD800", "\uDC00erin", `${"x".repeat(299)}\u{1F600}`]

/**
 * A third law, for every store: a name the database would keep as something else still counts,
 * limit 2: two failures, then LockedOut (the record is found again under its key).
 */
export const illFormedNamesCount = (a: Instance, calls: () => number) =>
  Effect.gen(function*() {
    for (const username of illFormedNames) {
      const before = calls()
      const outcomes: Array<string> = []
      for (let i = 0; i < 3; i++) {
        outcomes.push(tagOf(yield* Effect.exit(a.auth.authenticate({ username, password: `wrong-${i}` }))))
      }
      expect(outcomes, JSON.stringify(username)).toEqual(["AuthenticationFailed", "AuthenticationFailed", "LockedOut"])
      // none reached the backend once locked (some not at all: the credentials refuse a NUL)
      expect(calls() - before).toBeLessThanOrEqual(2)
    }
  })

/**
 * The reset law: `reset` finds a name's and an address's keys through the store's `find`, never by
 * reading every record (`list` dies here), and only theirs: not a name that ends like it, not a
 * LIKE or glob wildcard. A target that reads as an address is a username too (`10.0.0.1`).
 */
export const resetFindsItsKeys = (store: Lockout.Store) =>
  Effect.gen(function*() {
    const policy = { limit: 5, coolOff: 60_000, backOff: 1, maxCoolOff: 60_000, forgetAfter: 60_000 }
    const now = yield* Clock.currentTimeMillis
    const keys = [
      "username-ip:10.0.0.1|alice",
      "username-ip:10.0.0.2|alice",
      "otp-username-ip:10.0.0.2|alice",
      "username:alice",
      "username-ip:10.0.0.1|a|alice",
      "username-ip:10.0.0.1|bob",
      "username-ip:10.0.0.3|_lice",
      "username-ip:10.0.0.3|%",
      "username-ip:10.0.0.3|*",
      "ip:10.0.0.1",
      // the records of a user named "10.0.0.1"
      "username-ip:10.0.0.3|10.0.0.1",
      "otp-username:10.0.0.1"
    ]
    for (const key of keys) yield* store.attempt([key], now, policy)
    const lockout = yield* Lockout.make({ ...store, list: () => Effect.die("reset read every record") }, {
      by: "username-and-ip"
    })
    expect(yield* lockout.reset("alice")).toEqual([
      "otp-username-ip:10.0.0.2|alice",
      "username-ip:10.0.0.1|alice",
      "username-ip:10.0.0.2|alice",
      "username:alice"
    ])
    // an address is a valid username too: its target names both
    expect(yield* lockout.reset("10.0.0.1")).toEqual([
      "ip:10.0.0.1",
      "otp-username:10.0.0.1",
      "username-ip:10.0.0.1|a|alice",
      "username-ip:10.0.0.1|bob",
      "username-ip:10.0.0.3|10.0.0.1"
    ])
    expect(yield* lockout.reset("%")).toEqual(["username-ip:10.0.0.3|%"])
    expect(yield* lockout.reset("*")).toEqual(["username-ip:10.0.0.3|*"])
    expect((yield* store.list(now)).map((entry) => entry.key)).toEqual(["username-ip:10.0.0.3|_lice"])
  })

/** Targets an untyped caller may hand `reset` that are no string. */
export const oddTargets = (): ReadonlyArray<unknown> => {
  const throwing = () => {
    throw new Error("hostile")
  }
  const revoked = Proxy.revocable({}, {})
  revoked.revoke()
  return [
    42,
    null,
    undefined,
    ["alice"],
    { toString: () => "alice" },
    new Proxy({}, { get: throwing, has: throwing, getPrototypeOf: throwing }),
    revoked.proxy
  ]
}

/**
 * The reset law for an untyped caller's targets, for every store (an instance by "username"): one
 * that is no string ({@link oddTargets}) is a LockoutStoreError, never a defect, and nothing is
 * cleared; an exact key with a NUL or a lone surrogate names the record as the store keeps it
 * (PostgreSQL failed on the NUL, the other stores found nothing).
 */
export const oddResetTargets = (a: Instance) =>
  Effect.gen(function*() {
    for (const username of ["carol", "bob\u0000", "dave\uD800"]) {
      yield* Effect.exit(a.auth.authenticate({ username, password: "wrong" }))
    }
    const keys = Effect.map(a.lockout.list, (entries) => entries.map((entry) => entry.key))
    const before = yield* keys
    expect(before).toEqual(["username:bob\uFFFD", "username:carol", "username:dave\uFFFD"])
    for (const [i, target] of oddTargets().entries()) {
      const exit = yield* Effect.exit(Effect.suspend(() => a.lockout.reset(target as string)))
      const outcome = Exit.isSuccess(exit) ? "success" : exit.cause._tag === "Fail" ? exit.cause.error : "defect"
      expect(outcome, String(i)).toMatchObject({ _tag: "LockoutStoreError", operation: "reset" })
    }
    expect(yield* keys).toEqual(before)
    expect(yield* a.lockout.reset("username:bob\u0000")).toEqual(["username:bob\uFFFD"])
    expect(yield* a.lockout.reset("username:dave\uD800")).toEqual(["username:dave\uFFFD"])
    expect(yield* keys).toEqual(["username:carol"])
  })

/**
 * The law of a success, for every store (an instance on {@link twoAccounts}, limit 5): a login to
 * another account never clears the victim's count, even when both names fold to one key. Four
 * wrong passwords for `alice`, a login as `Alice` (the attacker's own account), one more wrong
 * password: the fifth failure locks `alice`, and even her right password is LockedOut. Before,
 * the success reset the folded key, and 4 guesses per own login went on without end.
 */
export const anotherAccountKeepsTheCount = (a: Instance, calls: () => number, request?: AuthRequest) =>
  Effect.gen(function*() {
    const login = (username: string, password: string) =>
      Effect.map(Effect.exit(a.auth.authenticate({ username, password }, request)), tagOf)
    for (let i = 0; i < 4; i++) expect(yield* login("alice", `guess-${i}`)).toBe("AuthenticationFailed")
    expect(yield* login("Alice", "mallory's")).toBe("success")
    expect(yield* login("alice", "guess-4")).toBe("AuthenticationFailed")
    const before = calls()
    expect(yield* login("alice", "guess-5")).toBe("LockedOut")
    expect(yield* login("alice", "right")).toBe("LockedOut")
    expect(calls()).toBe(before)
    // every key (the name's, and under "username-or-ip" the address's) holds its 5 failures and the lock
    const entries = yield* a.lockout.list
    expect(entries.length).toBeGreaterThan(0)
    for (const entry of entries) {
      expect(entry, entry.key).toMatchObject({ failures: 5, lockouts: 1 })
      expect(entry.lockedUntil, entry.key).toBeInstanceOf(Date)
    }
  })

/**
 * A success gives back its own place and nothing more, for every store (an instance by
 * "username", limit 2, on {@link counting}): one wrong password, then the right one, whose place
 * made the limit: it gets in, locks nothing, and the failure before it stays, so the next wrong
 * password locks.
 */
export const aSuccessGivesBackItsOwnCount = (a: Instance) =>
  Effect.gen(function*() {
    const login = (password: string) => Effect.map(Effect.exit(a.auth.authenticate({ username: "carol", password })), tagOf)
    expect(yield* login("x")).toBe("AuthenticationFailed")
    expect(yield* login("right")).toBe("success")
    const entries = yield* a.lockout.list
    expect(entries.map((e) => [e.key, e.failures, e.lockedUntil])).toEqual([["username:carol", 1, undefined]])
    expect(yield* login("y")).toBe("AuthenticationFailed")
    expect(yield* login("right")).toBe("LockedOut")
  })

/**
 * The law of a caller cut off while the store holds its attempt's place, for every store (by
 * "username", limit 3, on {@link counting}): the store holds the place at once and its answer
 * arrives late (a Redis a few milliseconds away), and each of three correct logins is interrupted
 * (the client went away) after that and before the answer. Each attempt still runs in the
 * background and, a success, gives its place back: no record is left, and a fourth correct login
 * gets in. Before, the interrupted caller took its reservation with it: the attempt never ran and
 * was never settled, three failures were left counted, and the fourth correct login was
 * `LockedOut`.
 */
export const cutOffWhileCounting = (store: Lockout.Store) =>
  Effect.gen(function*() {
    // one store answer let through per caller (asks for one key wait in line, one at a time)
    const answers = yield* Queue.unbounded<void>()
    const counted = yield* Queue.unbounded<void>()
    // how each reservation ended: given back by its settlement, or taken away by the caller
    const ends = yield* Queue.unbounded<"refunded" | "reservation interrupted">()
    const late: Lockout.Store = {
      ...store,
      attempt: (keys, now, policy) =>
        store.attempt(keys, now, policy).pipe(
          Effect.tap(() => Queue.offer(counted, undefined)),
          Effect.zipLeft(Queue.take(answers)),
          Effect.onInterrupt(() => Queue.offer(ends, "reservation interrupted"))
        ),
      refund: (keys, now, policy) => Effect.zipLeft(store.refund(keys, now, policy), Queue.offer(ends, "refunded"))
    }
    const { backend, calls } = counting()
    const lockout = yield* Lockout.make(late, { by: "username", limit: 3 })
    const layer = Lockout.layerAuthService(AuthService.layer([backend])).pipe(
      Layer.provideMerge(Layer.succeed(Lockout.Lockout, lockout)),
      Layer.provideMerge(AuthEvents.layer)
    )
    const auth = Context.get(yield* Layer.build(layer), AuthService.AuthService)
    const login = auth.authenticate({ username: "alice", password: "right" })
    for (let i = 0; i < 3; i++) {
      const caller = yield* Effect.fork(login)
      yield* Queue.take(counted)
      // the client goes away while the store's answer is on its way
      expect(Exit.isInterrupted(yield* Fiber.interrupt(caller)), String(i)).toBe(true)
      yield* Queue.offer(answers, undefined)
    }
    expect(Chunk.toArray(yield* Queue.takeN(ends, 3))).toEqual(["refunded", "refunded", "refunded"])
    // each attempt ran (a correct password was checked), and each success gave its count back
    expect(calls()).toBe(3)
    expect(yield* lockout.list).toEqual([])
    yield* Queue.offer(answers, undefined)
    expect(tagOf(yield* Effect.exit(login))).toBe("success")
    expect(yield* lockout.list).toEqual([])
  })

/**
 * The law of a place nobody settles, for every store (store operations at given times): an
 * attempt whose outcome was never recorded (it ran past the two-minute hold, its instance died, its
 * settlement could not be written) is presumed a wrong guess. Limit 3: two places left unsettled
 * lapse at their hold and count two failures; a late settlement of either counts nothing more and
 * gives back no place of a newer attempt; that newer attempt's own failure is the third and locks.
 * Three places that lapse lock the key from the lapse. Before, a lapsed place vanished uncounted,
 * and a stale refund freed a newer attempt's place.
 */
export const lapsedPlacesCount = (store: Lockout.Store) =>
  Effect.gen(function*() {
    const policy = { limit: 3, coolOff: 60_000, backOff: 1, maxCoolOff: 60_000, forgetAfter: 60_000 }
    const hold = 120_000
    const key = ["username:lapse"]
    const since = (reservation: Lockout.Reservation) => (reservation._tag === "Allowed" ? reservation.since : undefined)
    const failures = (now: number) =>
      Effect.map(store.list(now, policy), (entries) => entries.filter((e) => e.key === key[0]).map((e) => [e.failures, e.lockedUntil?.getTime()]))
    const first = yield* store.attempt(key, 0, policy)
    const second = yield* store.attempt(key, 10, policy)
    expect([first._tag, second._tag]).toEqual(["Allowed", "Allowed"])
    expect(yield* failures(10 + hold - 1)).toEqual([[0, undefined]])
    // held until 10 + hold (each place holds them all): then both lapse, counted as two failures
    expect(yield* failures(10 + hold)).toEqual([[2, undefined]])
    const newer = yield* store.attempt(key, 10 + hold + 5, policy)
    expect(newer._tag).toBe("Allowed")
    // the lapsed attempts' settlements arrive late: neither counts again nor frees the newer place
    expect(yield* store.fail(key, 10 + hold + 6, policy, since(first))).toEqual({ locked: [], until: 0 })
    yield* store.refund(key, 10 + hold + 6, policy, since(second))
    expect(yield* failures(10 + hold + 7)).toEqual([[2, undefined]])
    expect(yield* store.attempt(key, 10 + hold + 7, policy)).toEqual({ _tag: "Busy" })
    // the newer attempt's own failure is the third: it locks
    const end = 10 + hold + 8
    expect(yield* store.fail(key, end, policy, since(newer))).toEqual({ locked: key, until: end + 60_000 })
    // three places that lapse lock the key, from the lapse
    const other = ["username:lapse-three"]
    for (let i = 0; i < 3; i++) expect((yield* store.attempt(other, 0, policy))._tag).toBe("Allowed")
    expect(yield* store.attempt(other, hold + 30_000, policy)).toEqual({
      _tag: "Locked",
      retryAfter: 30_000,
      lapsed: [{ key: other[0], until: hold + 60_000 }]
    })
    expect(yield* store.reset(other, hold + 30_000, policy)).toEqual(other)
    // a policy whose cool-off and memory end before the hold: the record of a group that one
    // attempt settled as a failure is kept until its other places lapse and that is counted.
    // Before, it was forgotten just as they lapsed, and 3 more guesses went through, not 1.
    const brief = { ...policy, coolOff: 60_000, forgetAfter: 30_000 }
    const group = ["username:lapse-brief"]
    const a = yield* store.attempt(group, 0, brief)
    for (let i = 0; i < 2; i++) expect((yield* store.attempt(group, 0, brief))._tag).toBe("Allowed")
    expect(yield* store.fail(group, 1, brief, since(a))).toEqual({ locked: [], until: 0 })
    const atLapse = yield* store.list(hold, brief)
    expect(atLapse.filter((e) => e.key === group[0]).map((e) => e.failures)).toEqual([2])
    const last = yield* store.attempt(group, hold, brief)
    expect(last._tag).toBe("Allowed")
    expect(yield* store.fail(group, hold, brief, since(last))).toEqual({ locked: group, until: hold + 60_000 })
    expect(yield* store.reset(group, hold, brief)).toEqual(group)
  })

/**
 * The law of a lock that lapsed places set, for every store (store operations at given times,
 * limit 2, cool-off 60 s, hold 120 s): two places nobody settles lapse at 120 s and lock the key
 * until 180 s. The first operation to find that lapse, and only that one, answers the lock in
 * `lapsed`: a refused `attempt` (its `Locked`), a late `fail` or a late `refund`; the next finds
 * nothing (the first wrote the lapse back). Each key of an attempt is answered, in its place. A
 * lock that ended before anything found it is not answered. Before, no operation answered such a
 * lock, and no `LockedOut` event was ever published for it.
 */
export const lapsedLockFoundOnce = (store: Lockout.Store) =>
  Effect.gen(function*() {
    const policy = { limit: 2, coolOff: 60_000, backOff: 1, maxCoolOff: 60_000, forgetAfter: 60_000 }
    const hold = 120_000
    const until = hold + 60_000
    const since = (reservation: Lockout.Reservation) => (reservation._tag === "Allowed" ? reservation.since : undefined)
    const twoPlaces = (keys: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const first = yield* store.attempt(keys, 0, policy)
        const second = yield* store.attempt(keys, 0, policy)
        expect([first._tag, second._tag]).toEqual(["Allowed", "Allowed"])
        return [since(first), since(second)] as const
      })
    // found by a refused attempt, on each of its keys
    const both = ["ip:192.0.2.9", "username:lapse-attempt"]
    yield* twoPlaces(both)
    expect(yield* store.attempt(both, hold + 1000, policy)).toEqual({
      _tag: "Locked",
      retryAfter: 59_000,
      lapsed: [{ key: both[0], until }, { key: both[1], until }]
    })
    expect(yield* store.attempt(both, hold + 2000, policy)).toEqual({ _tag: "Locked", retryAfter: 58_000 })
    // found by the late failure of one of the lapsed places; its refund and the next attempt find nothing
    const failed = ["username:lapse-fail"]
    const [a, b] = yield* twoPlaces(failed)
    expect(yield* store.fail(failed, hold + 1000, policy, a)).toEqual({ locked: [], until: 0, lapsed: [{ key: failed[0], until }] })
    expect(yield* store.refund(failed, hold + 1500, policy, b)).toEqual({})
    expect(yield* store.attempt(failed, hold + 2000, policy)).toEqual({ _tag: "Locked", retryAfter: 58_000 })
    // found by a late refund; the failure after it finds nothing
    const refunded = ["username:lapse-refund"]
    const [c, d] = yield* twoPlaces(refunded)
    expect(yield* store.refund(refunded, hold + 1000, policy, c)).toEqual({ lapsed: [{ key: refunded[0], until }] })
    expect(yield* store.fail(refunded, hold + 1500, policy, d)).toEqual({ locked: [], until: 0 })
    // a lock that ran out before anything found it refused nobody: not answered
    const late = ["username:lapse-late"]
    yield* twoPlaces(late)
    expect(yield* store.attempt(late, until, policy)).toMatchObject({ _tag: "Allowed" })
    expect((yield* store.list(until, policy)).filter((e) => e.key === late[0]).map((e) => e.lockouts)).toEqual([1])
  })

/**
 * The law of the event, for every store: the lock that lapsed places set is published as one
 * `LockedOut` (with no request: none was settled), also when the attempts that find it come at
 * once on two instances. By "username", limit 2, cool-off 1 minute: an instance that died left two
 * places held 150 s ago, which lapsed 30 s ago and locked `mallory` for 30 s more; 20 concurrent
 * attempts on two other instances are all refused, and one `LockedOut` is published. Before, none
 * was. `other` is the second instance's store (its own connections to the same data), if any.
 */
export const lapsedLockPublishedOnce = (store: Lockout.Store, other: Lockout.Store = store) =>
  Effect.gen(function*() {
    const events: Array<AuthEvents.AuthEvent> = []
    const recorder: AuthEvents.Service = {
      publish: (event) => Effect.sync(() => void events.push(event)),
      subscribe: Effect.dieMessage("not subscribed"),
      stream: Stream.empty
    }
    const options = { by: "username", limit: 2, coolOff: "1 minute" } as const
    const policy = { limit: 2, coolOff: 60_000, backOff: 1, maxCoolOff: 86_400_000, forgetAfter: 86_400_000 }
    const now = yield* Clock.currentTimeMillis
    const key = ["username:mallory"]
    for (let i = 0; i < 2; i++) expect((yield* store.attempt(key, now - 150_000, policy))._tag).toBe("Allowed")
    const instances = yield* Effect.all([Lockout.make(store, options), Lockout.make(other, options)]).pipe(
      Effect.provideService(AuthEvents.AuthEvents, recorder)
    )
    const outcomes = yield* Effect.all(
      Array.from({ length: 20 }, (_, i) =>
        Effect.map(
          Effect.exit(instances[i % 2]!.guard({ username: "Mallory", password: `guess-${i}` }, undefined, Effect.dieMessage("reached a backend"))),
          tagOf
        )),
      { concurrency: "unbounded" }
    )
    expect(outcomes).toEqual(Array(20).fill("LockedOut"))
    const until = new Date(Math.floor(now - 150_000 + 120_000) + 60_000)
    expect(events.filter((event) => event._tag === "LockedOut")).toEqual([
      new AuthEvents.LockedOut({ key: "username:mallory", until, request: undefined })
    ])
    expect(events.filter((event) => event._tag === "LoginFailed")).toHaveLength(20)
  })
