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
import { GossipMesh, type GossipFrame } from './gossip.ts'
import { Network, type NetFaults } from './network.ts'
import { Scheduler, type SimTimer } from './scheduler.ts'

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

type Payload<M> = M | Uint8Array
type Frame =
  | { kind: 'direct'; msg: Payload<DirectMessage>; size: number }
  | { kind: 'gossip'; frame: GossipFrame<Payload<BroadcastMessage>> }

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
export interface StateTraffic {
  direct: Record<string, { msgs: number; bytes: number }>
  gossipHops: { msgs: number; bytes: number }
  publishes: number
}

/** A change (a `changed` or `dropped` effect) seen at a peer. */
export type StateListener = (peer: string, effect: Effect, t: number) => void

/** A simulated desired-state cluster. */
export class StateSim {
  readonly seed: number
  readonly sched = new Scheduler(0)
  readonly rng: Rng
  readonly net: Network<Frame>
  readonly mesh: GossipMesh<Payload<BroadcastMessage>>
  readonly peers = new Map<string, SimStatePeer>()
  readonly violations: string[] = []
  readonly epoch: number
  traffic: StateTraffic = emptyTraffic()
  readonly #opts: StateSimOptions
  readonly #listeners: StateListener[] = []
  readonly #maxWait: number

  constructor(opts: StateSimOptions) {
    this.seed = opts.seed
    this.#opts = opts
    this.epoch = opts.epoch ?? 1.7e12
    this.rng = seededRng(opts.seed)
    this.net = new Network<Frame>(this.sched, this.rng, opts.faults)
    this.#maxWait = Math.max(1, opts.config?.antiEntropyIntervalMs ?? 2_000)
    this.mesh = new GossipMesh<Payload<BroadcastMessage>>({
      send: (from, to, frame) => this.#countHop(frame.size) && this.net.send(from, to, { kind: 'gossip', frame }),
      deliver: (at, publisher, payload) => this.#deliverBroadcast(at, publisher, payload),
      isUp: (id) => this.net.isUp(id),
      now: () => this.sched.now(),
    }, this.rng, opts.meshDegree ?? 6)
    const every = opts.peersEveryMs ?? 1_000
    this.sched.every(every, () => this.#refreshPeers(), 0)
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
    this.net.register(id, (from, frame) => this.#onFrame(id, from, frame))
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
    this.traffic = emptyTraffic()
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
          this.#send(id, eff.to, eff.msg)
          break
        case 'broadcast':
          this.#publish(id, eff.msg)
          break
      }
      if (eff.type === 'changed' || eff.type === 'dropped' || eff.type === 'refused') {
        const t = this.sched.now()
        for (const fn of this.#listeners) fn(id, eff, t)
      }
    }
    this.#plan(id)
  }

  #size(msg: DirectMessage | BroadcastMessage): number {
    return this.#opts.sizeOf?.(msg) ?? 0
  }

  #countHop(size: number): true {
    this.traffic.gossipHops.msgs++
    this.traffic.gossipHops.bytes += size
    return true
  }

  #send(from: string, to: string, msg: DirectMessage): void {
    const bytes = this.#opts.wire === true ? encode(msg) : undefined
    const size = bytes?.byteLength ?? this.#size(msg)
    const c = (this.traffic.direct[msg.t] ??= { msgs: 0, bytes: 0 })
    c.msgs++
    c.bytes += size
    this.net.send(from, to, { kind: 'direct', msg: bytes ?? msg, size })
  }

  #publish(from: string, msg: BroadcastMessage): void {
    const check = checkBroadcast(from, msg)
    if (!check.ok) this.violations.push(`${from} published a write that fails checkBroadcast: ${check.reason}`)
    this.traffic.publishes++
    if (this.#opts.wire === true) {
      const bytes = encode(msg)
      this.mesh.publish(from, bytes, bytes.byteLength)
    } else {
      this.mesh.publish(from, msg, this.#size(msg))
    }
  }

  #onFrame(at: string, from: string, frame: Frame): void {
    if (frame.kind === 'gossip') { this.mesh.onFrame(at, from, frame.frame); return }
    const core = this.peers.get(at)?.core
    if (core === undefined) return
    let msg: DirectMessage
    if (frame.msg instanceof Uint8Array) {
      const d = decodeDirect(frame.msg)
      if (!d.ok) { this.violations.push(`${at} could not decode a message from ${from}: ${d.reason}`); return }
      msg = d.value
    } else {
      msg = frame.msg
    }
    this.#exec(at, core.receive(from, msg, this.physical(at)))
  }

  #deliverBroadcast(at: string, publisher: string, payload: Payload<BroadcastMessage>): boolean {
    const core = this.peers.get(at)?.core
    if (core === undefined) return false
    let msg: BroadcastMessage
    if (payload instanceof Uint8Array) {
      const d = decodeBroadcast(payload)
      if (!d.ok) { this.violations.push(`${at} could not decode a broadcast from ${publisher}: ${d.reason}`); return false }
      msg = d.value
    } else {
      msg = payload
    }
    if (!checkBroadcast(publisher, msg).ok) return false
    this.#exec(at, core.receiveBroadcast(publisher, msg, this.physical(at)))
    return true
  }
}

function emptyTraffic(): StateTraffic {
  return { direct: {}, gossipHops: { msgs: 0, bytes: 0 }, publishes: 0 }
}
