import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import * as Option from "effect/Option"
import * as IpAddress from "../ipAddress.js"
import { remoteAddressOf } from "../lockoutKeys.js"

/**
 * The client a call is made for (`PasswordHasher.currentClient`): the key the fair limiters below
 * count a call under. None: the call shares one bucket with every other call without a client
 * (the CLI, a password change, a backend that sets none). A global value, so that two copies of
 * the module loaded side by side still read the same reference.
 */
export const currentClient: FiberRef.FiberRef<Option.Option<string>> = globalValue(
  Symbol.for("effect-auth/PasswordHasher/currentClient"),
  () => FiberRef.unsafeMake<Option.Option<string>>(Option.none())
)

/**
 * The client key of a request: an IPv4 address as itself, an IPv6 address by its /48, text that is
 * no address as it is. None without an address. Coarser than the lockout's /64: a site is handed a
 * /64 at least and often a /56 or a /48, and may use any address in it, so keyed by /64 one machine
 * spreading its logins over the /64s of its /56 held one place per /64, and nobody could take a
 * place from it (measured: 0 of 12 other addresses admitted). A bucket that is too coarse only makes
 * neighbours share one fair share, and only while the hasher is full.
 */
export const clientOf = (request: unknown): string | undefined => {
  const remote = remoteAddressOf(request)
  if (remote === undefined) return undefined
  const address = IpAddress.parse(remote)
  return address === undefined ? remote : IpAddress.counted(address, clientIpv6Prefix)
}

/** The IPv6 network a client is keyed by (see {@link clientOf}). */
export const clientIpv6Prefix = 48

/**
 * Runs `effect` as a call of the request's client (see {@link clientOf}); as it is when the
 * request carries no address, so a client set further out is kept.
 */
export const forRequest = <A, E, R>(effect: Effect.Effect<A, E, R>, request: unknown): Effect.Effect<A, E, R> => {
  const client = clientOf(request)
  return client === undefined ? effect : Effect.locally(effect, currentClient, Option.some(client))
}

/** A call's place: waiting for a permit, running with one, shed (its slot given away), or gone. */
interface Ticket {
  readonly client: Client
  state: "waiting" | "running" | "shed" | "done"
  /** The waiting fiber's resume, once it is suspended. */
  wake: ((effect: Effect.Effect<void, any>) => void) | undefined
  /** Neighbours in the client's queue of waiting calls, oldest first. */
  prev: Ticket | undefined
  next: Ticket | undefined
}

/** One client's calls: `held` slots, `running` of them with a permit, `waiting` in the queue. */
interface Client {
  readonly key: string | undefined
  held: number
  running: number
  waiting: number
  first: Ticket | undefined
  last: Ticket | undefined
}

/** A fair limiter, with its counters for tests. */
export interface FairLimiter<B> {
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | B, R>
  /** Slots taken: calls running or waiting, every client. */
  readonly inFlight: () => number
  /** Calls holding a permit. */
  readonly running: () => number
  /** Clients holding a slot. */
  readonly clients: () => number
}

/**
 * Load shedding and a concurrency bound, fair between clients (the key in {@link currentClient}
 * when the call starts; calls without one share a bucket). At most `concurrency` calls run at once,
 * and at most `concurrency + maxWaiting` are in flight (running or waiting): one more fails at once
 * with `busy`, before it has taken anything, as a plain counter would refuse it, except that
 *
 * - when every slot is taken, a newcomer whose client holds fewer slots than the greediest client
 *   with a waiting call, by two or more, takes that client's newest waiting call's slot: that call
 *   fails at once with `busy` (as it would have, had it come last) and the newcomer waits in its
 *   place. So one client can hold every slot only while nobody else asks, and a client alone
 *   sees the plain bound, whatever order its calls come in. Running calls are never shed: the
 *   hasher's native work cannot be stopped, so a shed running call would free nothing.
 * - when a permit comes free, it goes to the client with the fewest running calls among those with
 *   a waiting call (of those, the one that has been there longest), its oldest waiting call. A
 *   newcomer then runs at the first permit freed, not after a flooding client's whole queue; two
 *   clients that both flood share the permits evenly. With one client, this is its queue in order.
 *
 * Every change happens in one synchronous step on the one JavaScript thread. A slot is taken and
 * its release armed without a gap (`uninterruptibleMask`); a waiter interrupted (a timeout, a
 * closed connection) gives back its slot, a running call interrupted its permit and slot once it
 * ends (the effect's own uninterruptible parts run to their end first). Clients are dropped once
 * they hold nothing, so memory follows the calls in flight, not the clients ever seen.
 */
export const makeFairLimiter = <B>(concurrency: number, maxWaiting: number, busy: B): FairLimiter<B> => {
  const limit = concurrency + maxWaiting
  const refused = Effect.fail(busy)
  const clients = new Map<string | undefined, Client>()
  let held = 0
  let running = 0
  // The clients with a waiting call, by how many calls they run and by how many slots they hold.
  // A Set keeps its order, so each bucket lists its clients by when they entered it.
  const byRunning: Array<Set<Client>> = Array.from({ length: concurrency + 1 }, () => new Set())
  const byHeld = new Map<number, Set<Client>>()
  let maxHeld = 0

  // Applies `mutate` to a client and moves it between the buckets (a client keeps its place in a
  // bucket while its count there stays), dropping it once it holds nothing.
  const change = (client: Client, mutate: () => void): void => {
    const wasListed = client.waiting > 0
    const wasRunning = client.running
    const wasHeld = client.held
    mutate()
    const listed = client.waiting > 0
    if (wasListed && (!listed || wasRunning !== client.running)) byRunning[wasRunning]!.delete(client)
    if (listed && (!wasListed || wasRunning !== client.running)) byRunning[client.running]!.add(client)
    if (wasListed && (!listed || wasHeld !== client.held)) {
      const bucket = byHeld.get(wasHeld)!
      bucket.delete(client)
      if (bucket.size === 0) byHeld.delete(wasHeld)
    }
    if (listed && (!wasListed || wasHeld !== client.held)) {
      let bucket = byHeld.get(client.held)
      if (bucket === undefined) byHeld.set(client.held, bucket = new Set())
      bucket.add(client)
      if (client.held > maxHeld) maxHeld = client.held
    }
    if (client.held === 0) clients.delete(client.key)
  }

  const enqueue = (client: Client, ticket: Ticket): void => {
    ticket.prev = client.last
    if (client.last === undefined) client.first = ticket
    else client.last.next = ticket
    client.last = ticket
    client.waiting++
  }

  const unlink = (client: Client, ticket: Ticket): void => {
    if (ticket.prev === undefined) client.first = ticket.next
    else ticket.prev.next = ticket.next
    if (ticket.next === undefined) client.last = ticket.prev
    else ticket.next.prev = ticket.prev
    ticket.prev = ticket.next = undefined
    client.waiting--
  }

  const wake = (ticket: Ticket, effect: Effect.Effect<void, B>): void => {
    const resume = ticket.wake
    ticket.wake = undefined
    if (resume !== undefined) resume(effect)
  }

  // The client with the most slots among those with a waiting call. `maxHeld` only ever rises by
  // one step at a time, so walking it down costs no more, overall, than the calls that raised it.
  const greediest = (): Client | undefined => {
    while (maxHeld > 0) {
      const bucket = byHeld.get(maxHeld)
      if (bucket !== undefined) return bucket.values().next().value
      maxHeld--
    }
    return undefined
  }

  // Hands the free permits out: the first client of the lowest running count, its oldest call.
  const dispatch = (): void => {
    let level = 0
    while (running < concurrency) {
      while (level <= concurrency && byRunning[level]!.size === 0) level++
      if (level > concurrency) return
      const client: Client = byRunning[level]!.values().next().value!
      const ticket = client.first!
      change(client, () => {
        unlink(client, ticket)
        client.running++
      })
      running++
      ticket.state = "running"
      wake(ticket, Effect.void)
    }
  }

  const take = (key: string | undefined): Ticket | undefined => {
    let client = clients.get(key)
    if (held >= limit) {
      const greedy = greediest()
      if (greedy === undefined || greedy.held <= (client?.held ?? 0) + 1) return undefined
      const shed = greedy.last!
      change(greedy, () => {
        unlink(greedy, shed)
        greedy.held--
      })
      held--
      shed.state = "shed"
      wake(shed, refused)
    }
    if (client === undefined) {
      client = { key, held: 0, running: 0, waiting: 0, first: undefined, last: undefined }
      clients.set(key, client)
    }
    const ticket: Ticket = { client, state: "waiting", wake: undefined, prev: undefined, next: undefined }
    const own = client
    held++
    // A call waits only while every permit is taken, so a free permit means an empty queue.
    if (running < concurrency) {
      running++
      ticket.state = "running"
      change(own, () => {
        own.held++
        own.running++
      })
    } else {
      change(own, () => {
        own.held++
        enqueue(own, ticket)
      })
    }
    return ticket
  }

  const leave = (ticket: Ticket): void => {
    const client = ticket.client
    if (ticket.state === "running") {
      ticket.state = "done"
      change(client, () => {
        client.running--
        client.held--
      })
      running--
      held--
      dispatch()
    } else if (ticket.state === "waiting") {
      ticket.state = "done"
      change(client, () => {
        unlink(client, ticket)
        client.held--
      })
      held--
    }
    // A shed call's slot went to the call that shed it.
  }

  // Suspends until the call is handed a permit (or shed); either may have happened already, if
  // the fiber yielded between taking its slot and suspending.
  const wait = (ticket: Ticket) =>
    Effect.async<void, B>((resume) => {
      if (ticket.state === "running") resume(Effect.void)
      else if (ticket.state === "shed") resume(refused)
      else ticket.wake = resume
    })

  const limited = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | B, R> =>
    // Uninterruptible between taking the slot and arming its release, so no slot ever leaks.
    Effect.uninterruptibleMask((restore) =>
      Effect.withFiberRuntime<A, E | B, R>((fiber) => {
        const ticket = take(Option.getOrUndefined(fiber.getFiberRef(currentClient)))
        if (ticket === undefined) return refused
        const body: Effect.Effect<A, E | B, R> = ticket.state === "running"
          ? restore(effect)
          : Effect.zipRight(restore(wait(ticket)), restore(effect))
        return Effect.ensuring(body, Effect.sync(() => leave(ticket)))
      })
    )

  return Object.assign(limited, {
    inFlight: () => held,
    running: () => running,
    clients: () => clients.size
  })
}

/**
 * The same limiter for any other bounded resource (a network backend's connections): at most
 * `concurrency` effects run at once, at most `maxWaiting` more wait for a turn, one more fails at
 * once with `busy` (before it has taken anything), and the turns are shared fairly between the
 * clients in {@link currentClient} as {@link makeFairLimiter} says. A caller waiting for a turn
 * holds a slot: an interrupted waiter, or one interrupted while running, gives both back.
 */
export const makeLimiter = <B>(
  concurrency: number,
  maxWaiting: number,
  busy: B
): Effect.Effect<<A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | B, R>> =>
  Effect.sync(() => makeFairLimiter(concurrency, maxWaiting, busy))

/** A network backend's load-shedding options, as its `Options` spell them. */
export interface LimitOptions {
  readonly maxConcurrent?: number | undefined
  readonly maxWaiting?: number | undefined
}

/**
 * The network backends' defaults (LdapBackend, HttpBackend): 64 calls at once, above a healthy
 * peer's need and of the order of a Django deployment's workers × threads, and 4 × as many
 * waiting, the hasher's ratio.
 */
export const defaultLimits = { maxConcurrent: 64, maxWaiting: 256 } as const

/**
 * The two options read with their defaults, or the problem with the first that is not a count (a
 * safe integer: the bound must be a real bound; `maxConcurrent` at least 1, `maxWaiting` at
 * least 0), for the backend to word as its own configuration error.
 */
export const readLimits = (
  options: LimitOptions
): { readonly maxConcurrent: number; readonly maxWaiting: number } | { readonly problem: string } => {
  const maxConcurrent = options.maxConcurrent ?? defaultLimits.maxConcurrent
  if (!Number.isSafeInteger(maxConcurrent) || maxConcurrent < 1) return { problem: "maxConcurrent must be a positive integer" }
  const maxWaiting = options.maxWaiting ?? defaultLimits.maxWaiting
  if (!Number.isSafeInteger(maxWaiting) || maxWaiting < 0) return { problem: "maxWaiting must be a non-negative integer" }
  return { maxConcurrent, maxWaiting }
}
