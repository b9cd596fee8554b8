/**
 * An in-memory network for simulations: seeded per-hop delay, loss and duplication, partitions
 * (sets of groups), crash/restart and pauses (a stalled process: deliveries wait until it
 * resumes). Deterministic for a given seed and sequence of calls.
 */
import { randRange, type Rng } from '../core/rng.ts'
import type { Scheduler } from './scheduler.ts'

/** Fault settings; they can change while the simulation runs. */
export interface NetFaults {
  /** Per-hop delay range in ms, [lo, hi). */
  delay: [number, number]
  /** Probability that a message is lost. */
  loss: number
  /** Probability that a message is delivered twice. */
  dup: number
}

/** What became of a send. 'refused': the target is down (a connection would be refused). */
export type SendOutcome = 'sent' | 'dropped' | 'refused'

/** Counters of the network. */
export interface NetStats {
  sent: number
  delivered: number
  dropped: number
}

interface NodeState<M> {
  handler: (from: string, msg: M) => void
  up: boolean
  epoch: number
  pausedUntil: number
  held: { from: string; msg: M }[]
}

/** The simulated network, carrying messages of type M between named nodes. */
export class Network<M> {
  faults: NetFaults
  readonly stats: NetStats = { sent: 0, delivered: 0, dropped: 0 }
  readonly #sched: Scheduler
  readonly #rng: Rng
  readonly #nodes = new Map<string, NodeState<M>>()
  #groups: Map<string, number> | undefined

  constructor(sched: Scheduler, rng: Rng, faults: Partial<NetFaults> = {}) {
    this.#sched = sched
    this.#rng = rng
    this.faults = { delay: [1, 5], loss: 0, dup: 0, ...faults }
  }

  /** Attach a node (up) with its message handler. Re-registering replaces the handler. */
  register(id: string, handler: (from: string, msg: M) => void): void {
    const old = this.#nodes.get(id)
    this.#nodes.set(id, { handler, up: true, epoch: (old?.epoch ?? 0) + 1, pausedUntil: 0, held: [] })
  }

  /** Change fault settings (for example, stop the faults before checking convergence). */
  setFaults(f: Partial<NetFaults>): void {
    this.faults = { ...this.faults, ...f }
  }

  /** Split the nodes into groups that cannot reach each other. Unlisted nodes form one more group. */
  partition(groups: readonly (readonly string[])[]): void {
    const m = new Map<string, number>()
    groups.forEach((g, i) => { for (const id of g) m.set(id, i) })
    this.#groups = m
  }

  /** End any partition. */
  heal(): void {
    this.#groups = undefined
  }

  /** Can `a` reach `b` under the current partition? */
  canReach(a: string, b: string): boolean {
    if (this.#groups === undefined) return true
    return (this.#groups.get(a) ?? -1) === (this.#groups.get(b) ?? -1)
  }

  /** Stop a node: it loses everything in flight to it and sends nothing. */
  crash(id: string): void {
    const n = this.#nodes.get(id)
    if (n === undefined) return
    n.up = false
    n.epoch++
    n.held = []
    n.pausedUntil = 0
  }

  isUp(id: string): boolean {
    return this.#nodes.get(id)?.up === true
  }

  /** Is the node stalled right now? */
  isPaused(id: string): boolean {
    const n = this.#nodes.get(id)
    return n !== undefined && n.pausedUntil > this.#sched.now()
  }

  /**
   * Stall a node for `ms`: messages to it wait, then arrive in order when it resumes, right
   * after `onResume` runs (a process's timers fire before its socket reads, as in Node).
   */
  pause(id: string, ms: number, onResume: () => void): void {
    const n = this.#nodes.get(id)
    if (n === undefined || !n.up) return
    const epoch = n.epoch
    n.pausedUntil = this.#sched.now() + ms
    this.#sched.at(n.pausedUntil, () => {
      if (n.epoch !== epoch || !n.up) return
      onResume()
      const held = n.held
      n.held = []
      for (const h of held) this.#handle(n, h.from, h.msg)
    })
  }

  /** Send a message; the outcome says whether it is on its way. */
  send(from: string, to: string, msg: M): SendOutcome {
    this.stats.sent++
    const src = this.#nodes.get(from)
    const dst = this.#nodes.get(to)
    if (src?.up !== true || !this.canReach(from, to)) return this.#drop('dropped')
    if (dst?.up !== true) return this.#drop('refused')
    if (this.#rng.next() < this.faults.loss) return this.#drop('dropped')
    const copies = this.#rng.next() < this.faults.dup ? 2 : 1
    const epoch = dst.epoch
    for (let i = 0; i < copies; i++) {
      const [lo, hi] = this.faults.delay
      this.#sched.after(randRange(this.#rng, lo, hi), () => {
        if (dst.epoch !== epoch || !dst.up) { this.stats.dropped++; return }
        if (dst.pausedUntil > this.#sched.now()) dst.held.push({ from, msg })
        else this.#handle(dst, from, msg)
      })
    }
    return 'sent'
  }

  #drop(outcome: SendOutcome): SendOutcome {
    this.stats.dropped++
    return outcome
  }

  #handle(n: NodeState<M>, from: string, msg: M): void {
    this.stats.delivered++
    n.handler(from, msg)
  }
}
