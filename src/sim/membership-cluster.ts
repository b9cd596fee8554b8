/**
 * A whole membership cluster in one process: pure membership cores driven through the simulated
 * network (direct messages) and the gossip mesh (broadcasts) on a virtual clock. Used by the
 * simulation tests and the benchmark. It checks invariants as it goes and lists violations.
 */
import { seededRng, type Rng } from '../core/rng.ts'
import { checkSender, decodeBroadcast, decodeDirect } from '../membership/messages.ts'
import { createMembership, type Membership } from '../membership/table.ts'
import type { BroadcastMessage, DirectMessage, Effect, Member, MemberRecord, MemberState, MembershipConfig } from '../membership/types.ts'
import type { GossipMesh } from './gossip.ts'
import type { NetFaults, Network } from './network.ts'
import { Scheduler, type SimTimer } from './scheduler.ts'
import { SimWire, type Traffic, type WireFrame } from './wire.ts'

export type { Traffic } from './wire.ts'

/** Options of a simulated cluster. */
export interface MembershipSimOptions {
  seed: number
  faults?: Partial<NetFaults>
  config?: Partial<MembershipConfig>
  meshDegree?: number
  /** Sends to a crashed peer fail fast (connection refused) and the core hears sendFailed (default true). */
  refuse?: boolean
  /** Encode, size-check, decode and schema-check every message, as the real shell does (default false). */
  wire?: boolean
  /** Size of a message in bytes, for traffic accounting (wire mode measures it anyway). */
  sizeOf?: (msg: DirectMessage | BroadcastMessage) => number
}

/** A simulated peer. `incarnation` is what its shell would have persisted. */
export interface SimPeer {
  id: string
  name: string
  address: string
  labels: Record<string, string>
  core: Membership | undefined
  incarnation: number
  ticker: SimTimer | undefined
  /** When the ticker fires. */
  tickAt: number
}

/** A change seen by one peer about another. */
export type ChangeListener = (observer: string, member: Member, previous: MemberState | undefined, t: number) => void

/** A simulated cluster. */
export class MembershipSim {
  readonly seed: number
  readonly sched = new Scheduler(0)
  readonly rng: Rng
  readonly wire: SimWire<DirectMessage, BroadcastMessage>
  readonly peers = new Map<string, SimPeer>()
  readonly violations: string[] = []
  readonly #opts: MembershipSimOptions
  /** The longest a core goes without a tick (a real shell wakes up at least this often). */
  readonly #maxWait: number
  readonly #listeners: ChangeListener[] = []
  /** observer → member → highest incarnation seen, for the monotonicity invariant. */
  readonly #seenInc = new Map<string, Map<string, number>>()

  constructor(opts: MembershipSimOptions) {
    this.seed = opts.seed
    this.#opts = opts
    this.rng = seededRng(opts.seed)
    const probe = opts.config?.probeIntervalMs ?? 200
    this.#maxWait = Math.max(1, Math.floor(probe / 2))
    this.wire = new SimWire<DirectMessage, BroadcastMessage>(
      { sched: this.sched, rng: this.rng, faults: opts.faults, meshDegree: opts.meshDegree, wire: opts.wire, sizeOf: opts.sizeOf, violations: this.violations },
      {
        decodeDirect, decodeBroadcast, checkDirect: checkSender, checkBroadcast: checkSender, checkName: 'checkSender',
        onDirect: (at, from, msg) => {
          const core = this.peers.get(at)?.core
          if (core !== undefined) this.#exec(at, core.receive(from, msg, this.sched.now()))
        },
        onBroadcast: (at, publisher, msg) => {
          const core = this.peers.get(at)?.core
          if (core === undefined) return false
          this.#exec(at, core.receiveBroadcast(publisher, msg, this.sched.now()))
          return true
        },
      },
    )
  }

  /** The simulated network. */
  get net(): Network<WireFrame<DirectMessage, BroadcastMessage>> {
    return this.wire.net
  }

  /** The gossip mesh. */
  get mesh(): GossipMesh<BroadcastMessage | Uint8Array> {
    return this.wire.mesh
  }

  /** Traffic counters since the start or the last resetTraffic(). */
  get traffic(): Traffic {
    return this.wire.traffic
  }

  /** Add `n` peers (not started yet); returns their ids. */
  add(n: number): string[] {
    const ids: string[] = []
    for (let i = 0; i < n; i++) {
      const k = this.peers.size
      const id = `peer-${String(k).padStart(4, '0')}`
      this.peers.set(id, { id, name: `node${k}`, address: `10.0.${k >> 8}.${k & 255}:7946`, labels: { zone: `z${k % 3}` }, core: undefined, incarnation: -1, ticker: undefined, tickAt: Infinity })
      this.mesh.addNode(id)
      ids.push(id)
    }
    return ids
  }

  /** Start (or restart) a peer with the next incarnation, optionally preloaded and joining seeds. */
  start(id: string, opts: { join?: string[]; preload?: MemberRecord[] } = {}): void {
    const p = this.#peer(id)
    p.ticker?.cancel()
    p.ticker = undefined
    p.incarnation += 1
    this.#seenInc.delete(id)
    this.mesh.reset(id)
    const core = createMembership({ self: { id, name: p.name, address: p.address, labels: p.labels }, incarnation: p.incarnation, config: this.#opts.config ?? {}, rng: seededRng(this.rng.next() * 2 ** 32), now: this.sched.now() })
    p.core = core
    this.wire.register(id)
    if (opts.preload !== undefined && opts.preload.length > 0) {
      const from = opts.preload.find((r) => r.id !== id)?.id
      if (from !== undefined) this.#exec(id, core.receive(from, { t: 'push-pull', from, reply: true, members: opts.preload }, this.sched.now()))
    }
    this.#plan(id)
    for (const seed of opts.join ?? []) {
      const s = this.peers.get(seed)
      if (s !== undefined && seed !== id && this.net.isUp(seed) && this.net.canReach(id, seed)) this.#exec(id, core.join(seed, s.address, this.sched.now()))
    }
  }

  /** Schedule the peer's next tick at its core's next deadline (as the real shell does). */
  #plan(id: string): void {
    const p = this.#peer(id)
    const core = p.core
    if (core === undefined) return
    const now = this.sched.now()
    const due = Math.min(Math.max(core.nextDeadline(), now + 1), now + this.#maxWait)
    if (p.ticker !== undefined && p.tickAt > now && p.tickAt <= due) return
    p.ticker?.cancel()
    p.tickAt = due
    p.ticker = this.sched.at(due, () => {
      p.ticker = undefined
      p.tickAt = Infinity
      if (p.core !== core || !this.net.isUp(id)) return
      if (this.net.isPaused(id)) return // the resume tick plans again
      this.#exec(id, core.tick(this.sched.now()))
    })
  }

  /** Kill a peer (kill -9): it stops at once and loses its in-memory state. */
  crash(id: string): void {
    const p = this.#peer(id)
    p.ticker?.cancel()
    p.ticker = undefined
    // The real shell persists every incarnation change, so the last one survives the crash.
    if (p.core !== undefined) p.incarnation = p.core.incarnation()
    p.core = undefined
    this.net.crash(id)
  }

  /** Stall a peer for `ms` (a GC pause): no ticks, messages wait; on resume it ticks first. */
  pause(id: string, ms: number): void {
    const p = this.#peer(id)
    const core = p.core
    this.net.pause(id, ms, () => { if (core !== undefined && p.core === core) this.#exec(id, core.tick(this.sched.now())) })
  }

  /** A graceful leave: broadcast `left`, keep answering for `stopAfterMs`, then stop. */
  leave(id: string, stopAfterMs = 300): void {
    const core = this.#peer(id).core
    if (core === undefined) return
    this.#exec(id, core.leave(this.sched.now()))
    this.sched.after(stopAfterMs, () => { if (this.#peer(id).core === core) this.crash(id) })
  }

  /** Change a peer's labels (bumps its incarnation and broadcasts). */
  updateLabels(id: string, labels: Record<string, string>): void {
    const p = this.#peer(id)
    p.labels = { ...labels }
    if (p.core !== undefined) this.#exec(id, p.core.updateSelf({ labels }, this.sched.now()))
  }

  /** The running peers. */
  up(): string[] {
    return [...this.peers.values()].filter((p) => p.core !== undefined && this.net.isUp(p.id)).map((p) => p.id)
  }

  /** What `observer` thinks of `id`. */
  member(observer: string, id: string): Member | undefined {
    return this.peers.get(observer)?.core?.member(id)
  }

  /** Listen to every change any peer reports. */
  onChange(fn: ChangeListener): void {
    this.#listeners.push(fn)
  }

  runFor(ms: number): void {
    this.sched.runFor(ms)
  }

  /** Run until `pred` holds (checked every `stepMs`) or `maxMs` pass; returns the elapsed time or undefined. */
  runUntil(pred: () => boolean, maxMs: number, stepMs = 10): number | undefined {
    const t0 = this.sched.now()
    while (this.sched.now() - t0 < maxMs) {
      if (pred()) return this.sched.now() - t0
      this.sched.runFor(stepMs)
    }
    return pred() ? this.sched.now() - t0 : undefined
  }

  /**
   * Undefined if every running peer has the same view (same ids, states and incarnations), in
   * which every running peer is alive and every other known peer is dead or left; else why not.
   */
  convergence(): string | undefined {
    const up = this.up()
    const upSet = new Set(up)
    let ref: string | undefined
    for (const id of up) {
      const view = (this.peers.get(id)?.core?.members() ?? []).map((m) => `${m.id}:${m.state}:${m.incarnation}`).join(' ')
      for (const m of this.peers.get(id)?.core?.members() ?? []) {
        if (upSet.has(m.id) && m.state !== 'alive') return `${id} sees running ${m.id} as ${m.state}`
        if (!upSet.has(m.id) && (m.state === 'alive' || m.state === 'suspect')) return `${id} sees stopped ${m.id} as ${m.state}`
      }
      const known = new Set((this.peers.get(id)?.core?.members() ?? []).map((m) => m.id))
      for (const other of up) if (!known.has(other)) return `${id} does not know ${other}`
      if (ref === undefined) ref = view
      else if (view !== ref) return `views differ: ${up[0]} has [${ref}] but ${id} has [${view}]`
    }
    return undefined
  }

  /** Zero the traffic counters. */
  resetTraffic(): void {
    this.wire.resetTraffic()
  }

  #peer(id: string): SimPeer {
    const p = this.peers.get(id)
    if (p === undefined) throw new Error(`no simulated peer ${id}`)
    return p
  }



  #exec(id: string, effects: Effect[]): void {
    for (const eff of effects) {
      if (eff.type === 'send') this.#send(id, eff.to, eff.msg)
      else if (eff.type === 'broadcast') this.wire.publish(id, eff.msg)
      else this.#changed(id, eff.member, eff.previous)
    }
    this.#plan(id)
  }

  #send(from: string, to: string, msg: DirectMessage): void {
    const outcome = this.wire.send(from, to, msg)
    if (outcome === 'refused' && this.#opts.refuse !== false) {
      const core = this.peers.get(from)?.core
      const [lo, hi] = this.net.faults.delay
      this.sched.after(lo + hi, () => {
        if (core !== undefined && this.peers.get(from)?.core === core) this.#exec(from, core.sendFailed(to, this.sched.now()))
      })
    }
  }

  #changed(observer: string, m: Member, previous: MemberState | undefined): void {
    let seen = this.#seenInc.get(observer)
    if (seen === undefined) this.#seenInc.set(observer, (seen = new Map()))
    const before = seen.get(m.id)
    if (before !== undefined && m.incarnation < before) this.violations.push(`${observer} lowered ${m.id}'s incarnation from ${before} to ${m.incarnation}`)
    seen.set(m.id, Math.max(before ?? m.incarnation, m.incarnation))
    if (m.id === observer && m.state !== 'alive' && m.state !== 'left') this.violations.push(`${observer} marked itself ${m.state}`)
    const t = this.sched.now()
    for (const fn of this.#listeners) fn(observer, m, previous, t)
  }
}
