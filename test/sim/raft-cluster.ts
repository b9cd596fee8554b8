/**
 * A Raft cluster in one process: pure cores driven through the simulated network of src/sim
 * (seeded delay, loss, duplication, partitions) on a virtual clock, with a shell per peer that
 * handles Ready batches the way a real one must (persist, then send, then apply, then advance).
 * A crash loses whatever the peer had not persisted yet; a restart rebuilds the core from its
 * storage. Invariants (raft-invariants.ts) are checked after every event.
 */
import { createRaft, type Raft, type RaftConfig } from '../../src/consensus/raft.ts'
import { MemoryRaftStorage } from '../../src/consensus/memory-storage.ts'
import { decodeRaftMessage, encodeRaftMessage } from '../../src/consensus/messages.ts'
import { bootstrap } from '../../src/consensus/storage.ts'
import type { ConfChange, ProposeResult, RaftMessage, RaftStatus, Ready } from '../../src/consensus/types.ts'
import { randRange, seededRng, type Rng } from '../../src/core/rng.ts'
import { Network, type NetFaults } from '../../src/sim/network.ts'
import { Scheduler, type SimTimer } from '../../src/sim/scheduler.ts'
import { applyToApp, decodeApp, emptyApp, encodeApp, RaftChecker, type AppState, type CheckedPeer } from './raft-invariants.ts'

/** The shell's tick period (ms). */
export const TICK_MS = 50

export interface ClusterOptions {
  seed: number
  /** Every peer of the simulation. */
  ids: string[]
  /** The peers bootstrapped as the initial voters; the others start with empty storage. */
  voters: string[]
  raft?: Partial<Omit<RaftConfig, 'id' | 'storage' | 'rng'>>
  net?: Partial<NetFaults>
  /** Delay (ms) between a peer having work and its shell handling the Ready. Default [0, 0]. */
  readyDelay?: [number, number]
  /** Carry every message through the msgpack codec and the zod schema. Default false. */
  wire?: boolean
  /** Handle each Ready a little after taking it, letting the core step meanwhile. Default false. */
  asyncReady?: boolean
}

/** One simulated peer: durable storage, and the volatile core and application state. */
export class SimPeer implements CheckedPeer {
  readonly id: string
  readonly storage = new MemoryRaftStorage()
  raft: Raft | undefined
  app: AppState = emptyApp()
  ticker: SimTimer | undefined
  epoch = 0
  flushPending = false
  /** Highest commit index already checked against the committed history. */
  checkedCommit = 0
  /** When set, the next Ready handling crashes the peer after persisting, before sending. */
  crashAfterPersist = false

  constructor(id: string) {
    this.id = id
  }

  role(): string | undefined {
    return this.raft?.status().role
  }

  term(): number {
    return this.raft?.status().term ?? 0
  }

  termAt(index: number): number | undefined {
    return this.raft?.termAt(index)
  }

  firstIndex(): number {
    return this.raft?.status().firstIndex ?? this.storage.firstIndex()
  }

  lastIndex(): number {
    return this.raft?.status().lastIndex ?? this.storage.lastIndex()
  }

  persistedTerm(): number {
    return this.storage.hardState().term
  }
}

/** The simulated cluster. */
export class RaftCluster {
  readonly seed: number
  readonly sched = new Scheduler(0)
  readonly rng: Rng
  readonly net: Network<RaftMessage | Uint8Array>
  readonly peers = new Map<string, SimPeer>()
  readonly checker: RaftChecker
  readonly opts: ClusterOptions

  constructor(opts: ClusterOptions) {
    this.opts = opts
    this.seed = opts.seed
    this.rng = seededRng(opts.seed)
    this.checker = new RaftChecker(opts.seed)
    this.net = new Network(this.sched, seededRng(opts.seed ^ 0x5eed), { delay: [1, 10], ...opts.net })
    for (const id of opts.ids) {
      const p = new SimPeer(id)
      if (opts.voters.includes(id)) bootstrap(p.storage, opts.voters)
      this.peers.set(id, p)
      this.#start(p)
    }
  }

  peer(id: string): SimPeer {
    const p = this.peers.get(id)
    if (p === undefined) throw new Error(`no peer ${id}`)
    return p
  }

  raft(id: string): Raft {
    const r = this.peer(id).raft
    if (r === undefined) throw new Error(`peer ${id} is down`)
    return r
  }

  status(id: string): RaftStatus {
    return this.raft(id).status()
  }

  now(): number {
    return this.sched.now()
  }

  isUp(id: string): boolean {
    return this.peer(id).raft !== undefined
  }

  #start(p: SimPeer): void {
    p.epoch++
    p.flushPending = false
    p.crashAfterPersist = false
    // The application keeps no state of its own across a crash: it reloads the snapshot and the
    // core hands it every committed entry after it again.
    p.app = decodeApp(p.storage.snapshot().data)
    const rngSeed = Math.floor(this.rng.next() * 2 ** 32)
    p.raft = createRaft({ id: p.id, storage: p.storage, rng: seededRng(rngSeed), ...this.opts.raft })
    p.checkedCommit = Math.max(p.checkedCommit, p.storage.firstIndex() - 1)
    this.net.register(p.id, (_from, msg) => this.#deliver(p, msg))
    const phase = randRange(this.rng, 0, TICK_MS)
    p.ticker = this.sched.every(TICK_MS, () => {
      p.raft?.tick()
      this.#touched(p)
    }, phase)
    this.#touched(p)
  }

  #deliver(p: SimPeer, payload: RaftMessage | Uint8Array): void {
    if (p.raft === undefined) return
    let msg: RaftMessage
    if (payload instanceof Uint8Array) {
      const d = decodeRaftMessage(payload)
      if (!d.ok) this.checker.fail(`a message failed to decode: ${d.reason}`)
      msg = d.value
    } else {
      msg = payload
    }
    p.raft.step(msg)
    this.#touched(p)
  }

  #touched(p: SimPeer): void {
    if (p.raft === undefined) return
    this.checker.observe(p)
    if (p.flushPending || !p.raft.hasReady()) return
    p.flushPending = true
    const [lo, hi] = this.opts.readyDelay ?? [0, 0]
    const epoch = p.epoch
    this.sched.after(hi > lo ? randRange(this.rng, lo, hi) : lo, () => {
      if (p.epoch !== epoch) return
      p.flushPending = false
      this.#flush(p)
    })
  }

  /**
   * The shell's Ready loop: persist, send, apply, advance. In async mode the shell takes one
   * Ready, and handles it a little later while the core keeps receiving messages and ticks (as
   * a shell that awaits its disk would); otherwise it drains every Ready at once.
   */
  #flush(p: SimPeer): void {
    const raft = p.raft
    if (raft === undefined) return
    if (this.opts.asyncReady === true) {
      const rd = raft.ready()
      const epoch = p.epoch
      this.sched.after(randRange(this.rng, 0, 20), () => {
        if (p.epoch !== epoch || p.raft !== raft) return
        this.#handle(p, raft, rd)
        this.#touched(p)
      })
      return
    }
    for (let guard = 0; p.raft === raft && raft.hasReady() && guard < 1000; guard++) this.#handle(p, raft, raft.ready())
  }

  #handle(p: SimPeer, raft: Raft, rd: Ready): void {
    const c = this.checker
    const st = p.storage
    const persistedCommit = st.hardState().commit
    if (rd.snapshot !== undefined) {
      st.applySnapshot(rd.snapshot)
      p.app = decodeApp(rd.snapshot.data)
      c.snapshotInstalled(p, rd.snapshot, p.app)
      p.checkedCommit = Math.max(p.checkedCommit, rd.snapshot.index)
    }
    if (rd.entries.length > 0) {
      st.append(rd.entries)
      c.appended(p, rd.entries, (i) => st.term(i), persistedCommit)
    }
    if (rd.hardState !== undefined) {
      st.setHardState(rd.hardState)
      c.hardState(p.id, rd.hardState)
      const commit = rd.hardState.commit
      if (commit > p.checkedCommit) {
        const lo = Math.max(p.checkedCommit + 1, st.firstIndex())
        c.committedEntries(p, lo <= commit ? st.entries(lo, commit + 1) : [], rd.hardState.term)
        p.checkedCommit = commit
      }
    }
    if (p.crashAfterPersist) {
      this.crash(p.id)
      return
    }
    for (const m of rd.messages) {
      c.sent(m)
      this.net.send(p.id, m.to, this.opts.wire === true ? encodeRaftMessage(m) : m)
    }
    for (const e of rd.committed) {
      c.applying(p, p.app, e)
      applyToApp(p.app, e)
      c.appStateAt(p, p.app)
    }
    raft.advance(rd)
    c.observe(p)
  }

  // ---- faults ----

  /** Stop a peer: its unpersisted state, timers and in-flight messages to it are lost. */
  crash(id: string): void {
    const p = this.peer(id)
    if (p.raft === undefined) return
    p.ticker?.cancel()
    p.ticker = undefined
    p.raft = undefined
    p.epoch++
    this.net.crash(id)
    this.checker.observe(p)
  }

  /** Start a crashed peer again from its storage. */
  restart(id: string): void {
    const p = this.peer(id)
    if (p.raft !== undefined) return
    this.#start(p)
  }

  partition(groups: string[][]): void {
    this.net.partition(groups)
  }

  /** Cut one peer off from all others. */
  isolate(id: string): void {
    this.net.partition([[id]])
  }

  heal(): void {
    this.net.heal()
  }

  // ---- time ----

  runFor(ms: number): void {
    this.sched.runFor(ms)
  }

  runTicks(n: number): void {
    this.sched.runFor(n * TICK_MS)
  }

  /** Run until `pred` holds (checked every ms of virtual time); false if maxMs passed first. */
  runUntil(pred: () => boolean, maxMs: number): boolean {
    const end = this.now() + maxMs
    while (this.now() < end) {
      if (pred()) return true
      this.sched.runFor(1)
    }
    return pred()
  }

  // ---- clients ----

  /** The live peer that leads at the highest term, if any. */
  leader(): string | undefined {
    let best: { id: string; term: number } | undefined
    for (const p of this.peers.values()) {
      const st = p.raft?.status()
      if (st?.role === 'leader' && (best === undefined || st.term > best.term)) best = { id: p.id, term: st.term }
    }
    return best?.id
  }

  /** Wait for a leader; throws with the seed if none emerges. */
  awaitLeader(maxMs = 10_000): string {
    if (!this.runUntil(() => this.leader() !== undefined, maxMs)) this.checker.fail(`no leader within ${maxMs} ms`)
    return this.leader() as string
  }

  propose(id: string, text: string): ProposeResult {
    const r = this.raft(id).propose(new Uint8Array(Buffer.from(text)))
    this.#touched(this.peer(id))
    return r
  }

  proposeConfChange(id: string, change: ConfChange): ProposeResult {
    const r = this.raft(id).proposeConfChange(change)
    this.#touched(this.peer(id))
    return r
  }

  transfer(from: string, to: string): boolean {
    const r = this.raft(from).transferLeadership(to)
    this.#touched(this.peer(from))
    return r.ok
  }

  /** Compact a peer's log up to what its application has applied. */
  compact(id: string): boolean {
    const p = this.peer(id)
    const raft = this.raft(id)
    const r = raft.compact(p.app.index, encodeApp(p.app))
    return r.ok
  }

  /** The payloads a peer's application has applied, in order. */
  applied(id: string): string[] {
    return this.peer(id).app.items.slice()
  }

  /**
   * Converged: one leader; every live member of its configuration has the leader's log (same
   * last index and term), has committed and applied all of it, and follows that leader.
   */
  converged(): boolean {
    const lid = this.leader()
    if (lid === undefined) return false
    const ls = this.status(lid)
    if (ls.commit !== ls.lastIndex || ls.applied !== ls.commit) return false
    for (const id of [...ls.voters, ...ls.learners]) {
      const p = this.peers.get(id)
      if (p?.raft === undefined) return false
      const st = p.raft.status()
      if (st.lastIndex !== ls.lastIndex || p.raft.termAt(st.lastIndex) !== ls.term) return false
      if (st.commit !== ls.commit || st.applied !== ls.commit || st.leader !== lid || st.term !== ls.term) return false
      if (p.flushPending || p.raft.hasReady()) return false
    }
    return true
  }
}
