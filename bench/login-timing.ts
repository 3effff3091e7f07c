/**
 * Login timing: does a login's duration tell an attacker whether the user exists or is active?
 * Django runs the password hasher once for an unknown user (`UserModel().set_password(password)`)
 * and checks the password of an inactive user before refusing it, so the three cases cost one hash
 * each. This bench times `AuthService.authenticate` through the model backend at the default
 * PBKDF2 iterations (1,200,000) for a known user with a wrong password, an unknown user and an
 * inactive user (right password), one login at a time, the three cases rotated every round.
 *
 *   npx tsx bench/login-timing.ts [--rounds 15]
 */
import { Effect, Layer, Redacted } from "effect"
import * as AuthEvents from "../src/AuthEvents.js"
import * as AuthService from "../src/AuthService.js"
import * as ModelBackend from "../src/backends/ModelBackend.js"
import * as MemoryUserStore from "../src/MemoryUserStore.js"
import * as PasswordHasher from "../src/PasswordHasher.js"
import * as UserStore from "../src/UserStore.js"
import { parseArgs, printTable } from "./utils.js"

const { rounds: ROUNDS } = parseArgs({ rounds: 15 })
const password = "correct horse battery staple"

const Live = AuthService.layer([ModelBackend.ModelBackend]).pipe(
  Layer.provide(AuthEvents.layer),
  Layer.provideMerge(ModelBackend.layer()),
  Layer.provideMerge(MemoryUserStore.layer),
  Layer.provideMerge(PasswordHasher.layer())
)

const cases = {
  "known user, wrong password": { username: "alice", password: "wrong password" },
  "unknown user": { username: "mallory", password },
  "inactive user, right password": { username: "ina", password }
} as const
type Case = keyof typeof cases

const program = Effect.gen(function*() {
  const store = yield* UserStore.UserStore
  const hasher = yield* PasswordHasher.PasswordHasher
  const hash = yield* hasher.hash(Redacted.make(password))
  yield* store.create({ username: "alice", passwordHash: hash })
  yield* store.create({ username: "ina", passwordHash: hash, isActive: false })
  const auth = yield* AuthService.AuthService
  const names = Object.keys(cases) as Array<Case>
  const times = new Map<Case, Array<number>>(names.map((n) => [n, []]))
  const once = (name: Case) =>
    Effect.gen(function*() {
      const start = performance.now()
      const exit = yield* Effect.exit(auth.authenticate(cases[name]))
      if (exit._tag === "Success") throw new Error(`${name}: logged in`)
      return performance.now() - start
    })
  for (const name of names) yield* once(name) // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length]!
      times.get(name)!.push(yield* once(name))
    }
  }
  return times
})

const times = await Effect.runPromise(program.pipe(Effect.provide(Live)))
const sorted = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)
const at = (xs: ReadonlyArray<number>, p: number) => sorted(xs)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!
const median = (xs: ReadonlyArray<number>) => at(xs, 0.5)
const known = times.get("known user, wrong password")!
printTable(
  `login time through the model backend, PBKDF2 ${PasswordHasher.defaults.pbkdf2.iterations} iterations, ${ROUNDS} rounds`,
  [
    ["case", "median (ms)", "p10 (ms)", "p90 (ms)", "median ÷ known user's"],
    ...[...times].map(([name, xs]) => [
      name,
      median(xs).toFixed(1),
      at(xs, 0.1).toFixed(1),
      at(xs, 0.9).toFixed(1),
      (median(xs) / median(known)).toFixed(3)
    ])
  ]
)
console.log(`Node ${process.version}, load average ${(await import("node:os")).loadavg().map((x) => x.toFixed(2)).join(" ")}`)
