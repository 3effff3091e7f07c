// The hasher's places shared fairly between clients (docs/passwords.md, "Load shedding"): the fair
// limiter driven with Deferreds (no real hashes, no clocks), and one login flood end to end through
// AuthService and ModelBackend with a gated argon2 driver.
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, FiberRef, Layer, Option, Redacted } from "effect"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as Argon2 from "../src/internal/hashers/argon2.js"
import { clientOf, makeFairLimiter } from "../src/internal/hashers/admission.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as PasswordHasher from "../src/PasswordHasher.js"

/** Yields until `check` holds; dies naming `what` if it never does (a wrong expectation, not a slow machine). */
const until = (what: string, check: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000; i++) {
      if (check()) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`never came about: ${what}`)
  })

/**
 * A limiter whose calls are named and gated: a call records its name when it starts to run and
 * holds its permit until its gate opens. `submit` forks a call and waits until the limiter has
 * decided it (running, waiting, or refused), so the calls reach it in the order submitted.
 */
const harness = (concurrency: number, maxWaiting: number) =>
  Effect.gen(function*() {
    const limiter = makeFairLimiter(concurrency, maxWaiting, "busy" as const)
    const started: Array<string> = []
    const refused: Array<string> = []
    const gates = new Map<string, Deferred.Deferred<void>>()
    const fibers = new Map<string, Fiber.RuntimeFiber<string, "busy">>()
    const run = (client: string | undefined, name: string, work?: Effect.Effect<void>) =>
      limiter(Effect.zipRight(
        Effect.sync(() => started.push(name)),
        Effect.as(work ?? Deferred.await(gates.get(name)!), name)
      )).pipe(
        Effect.tapError(() => Effect.sync(() => refused.push(name))),
        PasswordHasher.withClient(client)
      )
    const submit = (client: string | undefined, name: string, work?: Effect.Effect<void>) =>
      Effect.gen(function*() {
        gates.set(name, yield* Deferred.make<void>())
        const before = { inFlight: limiter.inFlight(), refused: refused.length }
        const fiber = yield* Effect.fork(run(client, name, work))
        fibers.set(name, fiber)
        // decided: it runs, it holds a new place (it waits, or took a shed call's place and that
        // call has seen it), or it was refused
        yield* until(`${name} decided`, () =>
          started.includes(name) || refused.includes(name) ||
          limiter.inFlight() > before.inFlight ||
          (refused.length > before.refused && limiter.inFlight() === before.inFlight))
        return fiber
      })
    const finish = (name: string) =>
      Effect.gen(function*() {
        yield* Deferred.succeed(gates.get(name)!, undefined)
        expect(yield* Fiber.join(fibers.get(name)!)).toBe(name)
      })
    return { limiter, started, refused, submit, finish, fibers }
  })

describe("fair load shedding: the limiter", () => {
  it.effect("client A holding every place: B's call takes A's newest waiting place, and runs at the next permit, before A's other waiters", () =>
    Effect.gen(function*() {
      const h = yield* harness(1, 3)
      for (const name of ["a0", "a1", "a2", "a3"]) yield* h.submit("A", name)
      expect(h.started).toEqual(["a0"])
      // A alone: a fifth call is refused, as by the plain bound
      yield* h.submit("A", "a4")
      expect(h.refused).toEqual(["a4"])
      // B holds nothing, A four: A's newest waiting call is shed at once, and B waits in its place
      yield* h.submit("B", "b0")
      yield* until("a3 shed", () => h.refused.includes("a3"))
      expect(h.refused).toEqual(["a4", "a3"])
      expect(Exit.isFailure(yield* Fiber.await(h.fibers.get("a3")!))).toBe(true)
      expect(h.limiter.inFlight()).toBe(4)
      // the permit a0 frees goes to B (no call running) before A's remaining waiters
      yield* h.finish("a0")
      yield* until("b0 runs", () => h.started.length === 2)
      expect(h.started).toEqual(["a0", "b0"])
      yield* h.finish("b0")
      yield* h.finish("a1")
      yield* h.finish("a2")
      expect(h.started).toEqual(["a0", "b0", "a1", "a2"])
      expect({ inFlight: h.limiter.inFlight(), running: h.limiter.running(), clients: h.limiter.clients() })
        .toEqual({ inFlight: 0, running: 0, clients: 0 })
    }))

  for (const client of ["A", undefined]) {
    it.effect(`one client alone (${client === undefined ? "calls without a client" : "a keyed client"}) sees exactly the plain bound, in order`, () =>
      Effect.gen(function*() {
        const h = yield* harness(2, 3)
        for (let i = 0; i < 8; i++) yield* h.submit(client, `c${i}`)
        expect(h.started).toEqual(["c0", "c1"])
        expect(h.refused).toEqual(["c5", "c6", "c7"])
        expect(h.limiter.inFlight()).toBe(5)
        for (let i = 0; i < 5; i++) yield* h.finish(`c${i}`)
        expect(h.started).toEqual(["c0", "c1", "c2", "c3", "c4"])
        expect(h.limiter.inFlight()).toBe(0)
      }))
  }

  it.effect("a newcomer is refused when its client holds nearly as many places as the greediest; new clients even the places out", () =>
    Effect.gen(function*() {
      const h = yield* harness(1, 4)
      for (const name of ["a0", "a1", "a2"]) yield* h.submit("A", name)
      for (const name of ["b0", "b1"]) yield* h.submit("B", name)
      // full: A holds 3, B 2; B's third is refused (3 is not more than 2 + 1)
      yield* h.submit("B", "b2")
      expect(h.refused).toEqual(["b2"])
      // C holds none: A's newest waiting call gives way (A 2, B 2, C 1)
      yield* h.submit("C", "c0")
      expect(h.refused).toEqual(["b2", "a2"])
      // D: B's newest (B came to hold two first), then E: A's last waiting one
      yield* h.submit("D", "d0")
      yield* h.submit("E", "e0")
      expect(h.refused).toEqual(["b2", "a2", "b1", "a1"])
      // one place each now: F is refused, and A's running call is never shed
      yield* h.submit("F", "f0")
      expect(h.refused).toEqual(["b2", "a2", "b1", "a1", "f0"])
      expect(h.limiter.inFlight()).toBe(5)
      // the permits go to the waiting clients in the order they came
      for (const name of ["a0", "b0", "c0", "d0", "e0"]) yield* h.finish(name)
      expect(h.started).toEqual(["a0", "b0", "c0", "d0", "e0"])
      expect(h.limiter.inFlight()).toBe(0)
    }))

  it.effect("two clients that both flood share the places and the permits evenly", () =>
    Effect.gen(function*() {
      const h = yield* harness(2, 6)
      for (let i = 0; i < 8; i++) yield* h.submit("A", `a${i}`)
      for (let i = 0; i < 6; i++) yield* h.submit("B", `b${i}`)
      // B took four places from A's newest waiters; its fifth and sixth were refused
      expect(h.refused).toEqual(["a7", "a6", "a5", "a4", "b4", "b5"])
      expect(h.started).toEqual(["a0", "a1"])
      for (const name of ["a0", "a1", "b0", "a2", "b1", "a3", "b2", "b3"]) yield* h.finish(name)
      expect(h.started).toEqual(["a0", "a1", "b0", "a2", "b1", "a3", "b2", "b3"])
      expect(h.limiter.inFlight()).toBe(0)
    }))

  it.effect("interruption gives back the places: a waiting call's at once, a running call's permit once its uninterruptible work ends", () =>
    Effect.gen(function*() {
      const h = yield* harness(1, 2)
      const work = yield* Deferred.make<void>()
      yield* h.submit("A", "a0", Effect.uninterruptible(Deferred.await(work)))
      yield* h.submit("A", "a1")
      yield* h.submit("B", "b0")
      expect(h.limiter.inFlight()).toBe(3)
      // a waiter interrupted: its place is free at once, and a new call takes it
      yield* Fiber.interrupt(h.fibers.get("a1")!)
      expect(h.limiter.inFlight()).toBe(2)
      yield* h.submit("C", "c0")
      expect(h.refused).toEqual([])
      // the running call interrupted: it keeps its permit while its work runs, nobody else starts
      const interrupting = yield* Effect.fork(Fiber.interrupt(h.fibers.get("a0")!))
      yield* Effect.yieldNow()
      expect(h.started).toEqual(["a0"])
      expect(h.limiter.running()).toBe(1)
      yield* Deferred.succeed(work, undefined)
      yield* Fiber.join(interrupting)
      // then the permit goes on, in turn
      yield* until("b0 runs", () => h.started.length === 2)
      expect(h.started).toEqual(["a0", "b0"])
      // a running call interrupted while interruptible gives back its permit and place at once
      yield* Fiber.interrupt(h.fibers.get("b0")!)
      yield* until("c0 runs", () => h.started.length === 3)
      yield* Fiber.interrupt(h.fibers.get("c0")!)
      expect({ inFlight: h.limiter.inFlight(), running: h.limiter.running(), clients: h.limiter.clients() })
        .toEqual({ inFlight: 0, running: 0, clients: 0 })
      // every place is back: the full bound admits again
      for (const name of ["d0", "d1", "d2"]) yield* h.submit("D", name)
      expect(h.limiter.inFlight()).toBe(3)
      for (const name of ["d0", "d1", "d2"]) yield* h.finish(name)
      expect(h.limiter.inFlight()).toBe(0)
    }))

  // Keyed by /64, one site spreading its logins over the /64s of its /56 (or /48) held one place
  // per /64, and by the two-place rule nobody could take one from it: 0 of 12 other addresses got in.
  it.effect("an IPv6 site is one client, whichever of its /64s it sends from: a flood over its /64s still gives way", () =>
    Effect.gen(function*() {
      const site = Array.from({ length: 10 }, (_, i) => `2001:db8:0:${(0x10 + i).toString(16)}::${i + 1}`)
      expect(new Set(site.map((remoteAddress) => clientOf({ remoteAddress }))).size).toBe(1)
      expect(clientOf({ remoteAddress: "2001:db8:1::1" })).not.toBe(clientOf({ remoteAddress: site[0] }))
      expect(clientOf({ remoteAddress: "203.0.113.7" })).toBe("203.0.113.7")
      expect(clientOf({})).toBeUndefined()
      // the site's ten calls hold every place (2 running, 8 waiting); another address still gets in
      const h = yield* harness(2, 8)
      for (const [i, remoteAddress] of site.entries()) yield* h.submit(clientOf({ remoteAddress }), `site-${i}`)
      yield* h.submit(clientOf({ remoteAddress: "203.0.113.7" }), "other")
      expect(h.refused).toEqual(["site-9"])
      yield* h.finish("site-0")
      expect(h.started).toEqual(["site-0", "site-1", "other"])
    }))

  it.effect("withClient sets the client in both forms; undefined runs without one", () =>
    Effect.gen(function*() {
      const current = FiberRef.get(PasswordHasher.currentClient)
      expect(yield* current).toEqual(Option.none())
      expect(yield* PasswordHasher.withClient(current, "203.0.113.7")).toEqual(Option.some("203.0.113.7"))
      expect(yield* current.pipe(PasswordHasher.withClient("198.51.100.1"))).toEqual(Option.some("198.51.100.1"))
      expect(yield* PasswordHasher.withClient(PasswordHasher.withClient(current, undefined), "x")).toEqual(Option.none())
    }))
})

describe("fair load shedding: end to end", () => {
  afterEach(() => {
    Argon2.driver.setImport(() => import("@node-rs/argon2"))
  })

  // An argon2 driver whose every derivation waits until the test lets it end; the password names it.
  // `openAll` lets every derivation through, so that a failed test's fibers can end.
  const gatedArgon2 = () => {
    const started: Array<string> = []
    const release = new Map<string, () => void>()
    let open = false
    const hashRaw = (password: Uint8Array) =>
      new Promise<Uint8Array>((resolve) => {
        const name = Buffer.from(password).toString("utf8")
        started.push(name)
        release.set(name, () => resolve(new Uint8Array(32)))
        if (open) resolve(new Uint8Array(32))
      })
    Argon2.driver.setImport(() => Promise.resolve({ hashRaw } as any))
    const openAll = Effect.sync(() => {
      open = true
      for (const resume of release.values()) resume()
    })
    return { started, release, openAll }
  }

  const outcome = (exit: Exit.Exit<unknown, { readonly _tag: string }>): string =>
    Exit.isSuccess(exit) ? "success" : exit.cause._tag === "Fail" ? exit.cause.error._tag : String(exit.cause)

  const done = (fiber: Fiber.RuntimeFiber<unknown, unknown>) => fiber.unsafePoll() !== null

  // One address keeps every place taken with new names, then another address logs in.
  const flood = (argon2: ReturnType<typeof gatedArgon2>) =>
    Effect.gen(function*() {
      const auth = yield* AuthService.AuthService
      const login = (remoteAddress: string, name: string) =>
        Effect.exit(auth.authenticate({ username: name, password: name }, { remoteAddress }))
      const flooder = "192.0.2.66"
      const visitor = "2001:db8:0:7::1"
      // eight logins from one address, each with a new name (each costs a hash): four hold every
      // place (concurrency 1 + maxWaiting 3), four are refused at once, as by the plain bound
      const logins = yield* Effect.forEach(
        Array.from({ length: 8 }, (_, i) => `flood-${i}`),
        (name) => Effect.fork(login(flooder, name))
      )
      yield* until("four of the flood refused", () => logins.filter(done).length === 4)
      yield* until("the first of the flood hashing", () => argon2.started.length === 1)
      // another address: admitted (one of the flood's waiting logins gives way), not a 503
      const visit = yield* Effect.fork(login(visitor, "visitor"))
      yield* until("the visitor refused, or one more of the flood", () => done(visit) || logins.filter(done).length === 5)
      expect(done(visit) ? outcome(yield* Fiber.join(visit)) : "waiting").toBe("waiting")
      const refused = yield* Effect.forEach(logins.filter(done), Fiber.join)
      expect(refused.map(outcome)).toEqual(Array(5).fill("TransportError"))
      // the visitor's hash runs as soon as the flood's running one ends, before the flood's waiters
      argon2.release.get(argon2.started[0]!)!()
      yield* until("the next hash", () => argon2.started.length === 2)
      expect(argon2.started[1]).toBe("visitor")
      argon2.release.get("visitor")!()
      // an unknown name: the fold's plain failure, not the busy hasher's TransportError
      expect(outcome(yield* Fiber.join(visit))).toBe("AuthenticationFailed")
      // the flood's two remaining waiters then run, in order
      for (let i = 2; i <= 3; i++) {
        yield* until(`hash ${i}`, () => argon2.started.length === i + 1)
        argon2.release.get(argon2.started[i]!)!()
      }
      const all = yield* Effect.forEach(logins, Fiber.join)
      expect(all.map(outcome).filter((tag) => tag === "AuthenticationFailed")).toHaveLength(3)
    })

  it.live("one address flooding logins with new names does not shut out another address: its login runs at the next hasher freed", () =>
    Effect.suspend(() => {
      const argon2 = gatedArgon2()
      return Effect.ensuring(flood(argon2), argon2.openAll)
    }).pipe(
      Effect.provide(
        AuthService.layer([ModelBackend.ModelBackend]).pipe(
          Layer.provideMerge(AuthEvents.layer),
          Layer.provide(ModelBackend.layer()),
          Layer.provide(MemoryUserStore.layer),
          Layer.provide(PasswordHasher.layer({ hashers: ["argon2"], concurrency: 1, maxWaiting: 3 }))
        )
      )
    ))
})
