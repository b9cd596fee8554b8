/**
 * A whole desired-state cluster in one process: pure state replicas driven through the simulated
 * network (anti-entropy) and the gossip mesh (write broadcasts) on a virtual clock, each with its
 * own skewed physical clock and a simulated disk. The disk follows the persistence effects
 * (changed / history / dropped / meta), so a crashed peer restarts from exactly what a real shell
 * would have made durable. Used by the simulation tests and the benchmark.
 */
import { seededRng, type Rng } from '../core/rng.ts'
import { checkBroadcast, decodeBroadcast, decodeDirect, toWire } from '../state/messages.ts'
import { sameBytes } from '../state/store.ts'
import { createStateReplica, type StateReplica, type WriteResult } from '../state/replica.ts'
import type { BroadcastMessage, DirectMessage, Effect, Entry, ReplicaMeta, StateConfig, Write } from '../state/types.ts'
import { encode } from '../transport/codec.ts'
import type { GossipMesh } from './gossip.ts'
import type { NetFaults, Network } from './network.ts'
import { Scheduler, type SimTimer } from './scheduler.ts'
import { SimWire, type Traffic, type WireFrame } from './wire.ts'

/** Options of a simulated cluster. */
export interface StateSimOptions {
  seed: number
  faults?: Partial<NetFaults>
  config?: Partial<StateConfig>
  meshDegree?: number
  /** Encode, size-check, decode and schema-check every message, as the real shell does (default false). */
  wire?: boolean
  /** Size of a message in bytes, for traffic accounting (wire mode measures it anyway). */
  sizeOf?: (msg: DirectMessage | BroadcastMessage) => number
  /** Each peer's physical clock is off by a fixed amount in [−skewMs, skewMs] (default 0). */
  skewMs?: number
  /** Physical time at virtual time 0 (default 1.7e12, a realistic epoch). */
  epoch?: number
  /** How often each peer's peer list is refreshed from who is up (membership's lag; default 1 s). */
  peersEveryMs?: number
}

/** What a peer's shell has made durable. */
export interface SimDisk {
  entries: Map<string, Entry>
  history: Map<string, Entry[]>
  meta: ReplicaMeta | undefined
}

/** A simulated peer. */
export interface SimStatePeer {
  id: string
  core: StateReplica | undefined
  disk: SimDisk
  /** Physical clock offset (ms). */
  skew: number
  ticker: SimTimer | undefined
  tickAt: number
}

/** Traffic counters by message type, plus gossip hops. */
export type StateTraffic = Traffic

/** A change (a `changed` or `dropped` effect) seen at a peer. */
export type StateListener = (peer: string, effect: Effect, t: number) => void

/** A simulated desired-state cluster. */
export class StateSim {
  readonly seed: number
  readonly sched = new Scheduler(0)
  readonly rng: Rng
  readonly wire: SimWire<DirectMessage, BroadcastMessage>
  readonly peers = new Map<string, SimStatePeer>()
  readonly violations: string[] = []
  readonly epoch: number
  readonly #opts: StateSimOptions
  readonly #listeners: StateListener[] = []
  readonly #maxWait: number

  constructor(opts: StateSimOptions) {
    this.seed = opts.seed
    this.#opts = opts
    this.epoch = opts.epoch ?? 1.7e12
    this.rng = seededRng(opts.seed)
    this.#maxWait = Math.max(1, opts.config?.antiEntropyIntervalMs ?? 2_000)
    this.wire = new SimWire<DirectMessage, BroadcastMessage>(
      { sched: this.sched, rng: this.rng, faults: opts.faults, meshDegree: opts.meshDegree, wire: opts.wire, sizeOf: opts.sizeOf, violations: this.violations },
      {
        decodeDirect, decodeBroadcast, checkBroadcast, checkName: 'checkBroadcast',
        onDirect: (at, from, msg) => {
          const core = this.peers.get(at)?.core
          if (core !== undefined) this.#exec(at, core.receive(from, msg, this.physical(at)))
        },
        onBroadcast: (at, publisher, msg) => {
          const core = this.peers.get(at)?.core
          if (core === undefined) return false
          this.#exec(at, core.receiveBroadcast(publisher, msg, this.physical(at)))
          return true
        },
      },
    )
    const every = opts.peersEveryMs ?? 1_000
    this.sched.every(every, () => this.#refreshPeers(), 0)
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
  get traffic(): StateTraffic {
    return this.wire.traffic
  }

  /** Add `n` peers (not started); returns their ids. */
  add(n: number): string[] {
    const ids: string[] = []
    const skew = this.#opts.skewMs ?? 0
    for (let i = 0; i < n; i++) {
      const id = `peer-${String(this.peers.size).padStart(4, '0')}`
      this.peers.set(id, {
        id, core: undefined, skew: skew === 0 ? 0 : Math.round((2 * this.rng.next() - 1) * skew),
        disk: { entries: new Map(), history: new Map(), meta: undefined }, ticker: undefined, tickAt: Infinity,
      })
      this.mesh.addNode(id)
      ids.push(id)
    }
    return ids
  }

  /** A peer's physical clock. */
  physical(id: string): number {
    return this.epoch + this.sched.now() + this.#peer(id).skew
  }

  /**
   * Start (or restart) a peer from its disk. `founder` marks the fresh peer that founds the
   * cluster; `preload` fills an empty disk first (a peer that is already converged: benchmarks).
   */
  start(id: string, opts: { founder?: boolean; preload?: Entry[]; meta?: ReplicaMeta } = {}): void {
    const p = this.#peer(id)
    p.ticker?.cancel()
    p.ticker = undefined
    if (opts.preload !== undefined) for (const e of opts.preload) p.disk.entries.set(e.key, e)
    if (opts.meta !== undefined) p.disk.meta = opts.meta
    const hasDisk = p.disk.entries.size > 0 || p.disk.meta !== undefined
    const core = createStateReplica({
      nodeId: id, rng: seededRng(this.rng.next() * 2 ** 32), now: this.physical(id), config: this.#opts.config ?? {},
      founder: opts.founder === true,
      ...(hasDisk ? { restore: { entries: [...p.disk.entries.values()], history: [...p.disk.history.values()], meta: p.disk.meta } } : {}),
    })
    p.core = core
    this.mesh.reset(id)
    this.wire.register(id)
    core.setPeers(this.up())
    this.#plan(id)
  }

  /** Kill a peer: it stops at once; only its disk survives. */
  crash(id: string): void {
    const p = this.#peer(id)
    p.ticker?.cancel()
    p.ticker = undefined
    p.core = undefined
    this.net.crash(id)
  }

  /** Write a batch at a peer, as its API would; returns what was acknowledged. */
  apply(id: string, writes: Write[]): WriteResult[] {
    const core = this.#peer(id).core
    if (core === undefined || !this.net.isUp(id)) throw new Error(`${id} is not running`)
    const { results, effects } = core.apply(writes, this.physical(id))
    this.#exec(id, effects)
    return results
  }

  /** The running peers. */
  up(): string[] {
    return [...this.peers.values()].filter((p) => p.core !== undefined && this.net.isUp(p.id)).map((p) => p.id)
  }

  /** The running replica of a peer. */
  core(id: string): StateReplica | undefined {
    return this.peers.get(id)?.core
  }

  /** The whole store of a peer (tombstones included), encoded: compare these byte for byte. */
  encodeState(id: string): Uint8Array {
    return encode((this.core(id)?.entries() ?? []).map(toWire))
  }

  /** Undefined if every running peer holds byte-identical state; else why not. */
  convergence(): string | undefined {
    const up = this.up()
    let ref: Uint8Array | undefined
    for (const id of up) {
      const bytes = this.encodeState(id)
      if (ref === undefined) ref = bytes
      else if (!sameBytes(ref, bytes)) return `${id} differs from ${up[0]} (${this.core(id)?.entries().length} vs ${this.core(up[0] as string)?.entries().length} entries)`
    }
    return undefined
  }

  /** Listen to the effects of every peer. */
  onEffect(fn: StateListener): void {
    this.#listeners.push(fn)
  }

  runFor(ms: number): void {
    this.sched.runFor(ms)
  }

  /** Run until `pred` holds (checked every `stepMs`) or `maxMs` pass; the elapsed time, or undefined. */
  runUntil(pred: () => boolean, maxMs: number, stepMs = 10): number | undefined {
    const t0 = this.sched.now()
    while (this.sched.now() - t0 < maxMs) {
      if (pred()) return this.sched.now() - t0
      this.sched.runFor(stepMs)
    }
    return pred() ? this.sched.now() - t0 : undefined
  }

  resetTraffic(): void {
    this.wire.resetTraffic()
  }

  #peer(id: string): SimStatePeer {
    const p = this.peers.get(id)
    if (p === undefined) throw new Error(`no simulated peer ${id}`)
    return p
  }

  #refreshPeers(): void {
    const up = this.up()
    for (const id of up) this.core(id)?.setPeers(up)
  }

  /** Schedule the next tick at the core's next deadline (in this peer's physical time). */
  #plan(id: string): void {
    const p = this.#peer(id)
    const core = p.core
    if (core === undefined) return
    const now = this.sched.now()
    const due = Math.min(Math.max(core.nextDeadline() - this.epoch - p.skew, now + 1), now + this.#maxWait)
    if (p.ticker !== undefined && p.tickAt > now && p.tickAt <= due) return
    p.ticker?.cancel()
    p.tickAt = due
    p.ticker = this.sched.at(due, () => {
      p.ticker = undefined
      p.tickAt = Infinity
      if (p.core !== core || !this.net.isUp(id)) return
      this.#exec(id, core.tick(this.physical(id)))
    })
  }

  #exec(id: string, effects: Effect[]): void {
    const p = this.#peer(id)
    for (const eff of effects) {
      switch (eff.type) {
        case 'changed':
          p.disk.entries.set(eff.key, eff.entry)
          break
        case 'history':
          p.disk.history.set(eff.key, eff.entries)
          break
        case 'dropped':
          p.disk.entries.delete(eff.key)
          p.disk.history.delete(eff.key)
          break
        case 'meta':
          p.disk.meta = eff.meta
          break
        case 'refused':
          break
        case 'send':
          this.wire.send(id, eff.to, eff.msg)
          break
        case 'broadcast':
          this.wire.publish(id, eff.msg)
          break
      }
      if (eff.type === 'changed' || eff.type === 'dropped' || eff.type === 'refused') {
        const t = this.sched.now()
        for (const fn of this.#listeners) fn(id, eff, t)
      }
    }
    this.#plan(id)
  }
}
