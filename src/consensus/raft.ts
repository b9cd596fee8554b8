import type { Rng } from '../core/rng.ts'
import { RaftCore } from './core.ts'
import { DEFAULT_APPEND_BYTES, MAX_APPEND_BYTES, MAX_ENTRIES_PER_MESSAGE, MAX_SNAPSHOT_BYTES } from './limits.ts'
import { leaderPersisted, transferLeadership, type TransferRefusal } from './leader.ts'
import type { RaftStorage } from './storage.ts'
import type {
  ConfChange, HardState, ProgressStatus, ProposeResult, RaftMessage, RaftStatus, Ready, Role, Snapshot, SoftState,
} from './types.ts'

/** Options of createRaft. Ticks are the shell's unit of time (50 ms in Skein). */
export interface RaftConfig {
  /** This peer's id (its libp2p peer id). */
  id: string
  storage: RaftStorage
  /** Randomness for election timeouts. */
  rng: Rng
  /** Election timeout: a follower campaigns after a random [electionTicks, 2×electionTicks) ticks of silence. Default 10. */
  electionTicks?: number
  /** Leader heartbeat interval in ticks. Default 2. Must be below electionTicks. */
  heartbeatTicks?: number
  /** Pre-vote (§9.6): campaign only after a majority says it would vote for us. Default true. */
  preVote?: boolean
  /** Check-quorum: a leader steps down without a quorum for an election timeout; enables leader stickiness. Default true. */
  checkQuorum?: boolean
  /** Most entries in one append. Default 64, at most MAX_ENTRIES_PER_MESSAGE. */
  maxEntriesPerMsg?: number
  /** Most entry bytes in one append (at least one entry is always sent). Default 512 KiB, at most MAX_APPEND_BYTES. */
  maxBytesPerMsg?: number
  /** Most unacknowledged appends per follower in replicate state. Default 256. */
  maxInflight?: number
  /** Most committed entries handed out by one Ready. Default 1024. */
  maxCommittedPerReady?: number
  /**
   * The index up to which the application's own durable state already includes the log (on a
   * restart). Committed entries after it are delivered again. Default: the snapshot index.
   */
  applied?: number
}

/** The result of `compact`. */
export type CompactResult =
  | { ok: true; snapshot: Snapshot }
  | { ok: false; reason: 'already-compacted' | 'not-applied' | 'snapshot-pending' | 'too-large' }

/** A Raft peer, driven by its shell: ticks and messages in, Ready batches out. Not thread-safe; not re-entrant. */
export interface Raft {
  readonly id: string
  /** Advance logical time by one tick. */
  tick(): void
  /** Hand in a message from a peer (messages not addressed to this peer, or malformed, are dropped). */
  step(msg: RaftMessage): void
  /** Append application data to the log (leader only). The (term, index) is where it will commit, if it does. */
  propose(data: Uint8Array): ProposeResult
  /** Propose a single-server membership change (leader only; one pending at a time). */
  proposeConfChange(change: ConfChange): ProposeResult
  /** Hand leadership to a voter (leader only), for example before leaving. */
  transferLeadership(to: string): { ok: true } | { ok: false; reason: TransferRefusal }
  /** Is there work for the shell? (false while a Ready is out and not yet advanced) */
  hasReady(): boolean
  /** The next batch of work. Call `advance` with it before asking for another. */
  ready(): Ready
  /** The shell has persisted, sent and applied `rd`. */
  advance(rd: Ready): void
  /**
   * Compact the log up to `index` (at most the applied index): `data` is the application state
   * after applying `index`. Writes the snapshot through storage.compact and returns it.
   */
  compact(index: number, data: Uint8Array): CompactResult
  /** Term of the entry at `index` in this peer's log, undefined when compacted or absent. */
  termAt(index: number): number | undefined
  status(): RaftStatus
}

/**
 * Create a Raft peer from its storage (empty, bootstrapped, or holding a previous run's state).
 * Throws a RangeError on invalid options and an Error on inconsistent storage.
 */
export function createRaft(config: RaftConfig): Raft {
  const electionTicks = config.electionTicks ?? 10
  const heartbeatTicks = config.heartbeatTicks ?? 2
  const positive = (name: string, v: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (!Number.isInteger(v) || v < 1 || v > max) throw new RangeError(`raft: ${name} must be an integer in [1, ${max}], got ${v}`)
    return v
  }
  positive('electionTicks', electionTicks)
  positive('heartbeatTicks', heartbeatTicks)
  if (heartbeatTicks >= electionTicks) throw new RangeError('raft: heartbeatTicks must be below electionTicks')
  if (config.id.length === 0) throw new RangeError('raft: id must not be empty')
  const core = new RaftCore({
    id: config.id,
    storage: config.storage,
    rng: config.rng,
    electionTicks,
    heartbeatTicks,
    preVote: config.preVote ?? true,
    checkQuorum: config.checkQuorum ?? true,
    maxEntriesPerMsg: positive('maxEntriesPerMsg', config.maxEntriesPerMsg ?? 64, MAX_ENTRIES_PER_MESSAGE),
    maxBytesPerMsg: positive('maxBytesPerMsg', config.maxBytesPerMsg ?? DEFAULT_APPEND_BYTES, MAX_APPEND_BYTES),
    maxInflight: positive('maxInflight', config.maxInflight ?? 256),
    applied: config.applied,
  })
  return new RaftNode(core, config.storage.initialState().hardState, positive('maxCommittedPerReady', config.maxCommittedPerReady ?? 1024))
}

class RaftNode implements Raft {
  readonly id: string
  readonly #r: RaftCore
  readonly #maxCommitted: number
  #prevSoft: SoftState
  #prevHard: HardState
  #outstanding: Ready | undefined

  constructor(core: RaftCore, persisted: HardState, maxCommitted: number) {
    this.#r = core
    this.id = core.id
    this.#maxCommitted = maxCommitted
    this.#prevSoft = this.#softState()
    this.#prevHard = persisted
  }

  tick(): void {
    this.#r.tick()
  }

  step(msg: RaftMessage): void {
    this.#r.step(msg)
  }

  propose(data: Uint8Array): ProposeResult {
    return this.#r.propose('normal', data)
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    return this.#r.proposeConfChange(change)
  }

  transferLeadership(to: string): { ok: true } | { ok: false; reason: TransferRefusal } {
    return transferLeadership(this.#r, to)
  }

  #role(): Role {
    const r = this.#r
    return r.role === 'follower' && r.conf.learners.includes(r.id) ? 'learner' : r.role
  }

  #softState(): SoftState {
    return { leader: this.#r.leader, role: this.#role() }
  }

  #hardState(): HardState {
    return { term: this.#r.term, vote: this.#r.vote, commit: this.#r.log.committed }
  }

  hasReady(): boolean {
    if (this.#outstanding !== undefined) return false
    const r = this.#r
    const soft = this.#softState()
    const hard = this.#hardState()
    return (
      r.msgs.length > 0 ||
      r.log.hasUnstableEntries() ||
      r.log.pendingSnapshot() !== undefined ||
      r.log.hasNextCommitted() ||
      soft.leader !== this.#prevSoft.leader ||
      soft.role !== this.#prevSoft.role ||
      !sameHardState(hard, this.#prevHard)
    )
  }

  ready(): Ready {
    if (this.#outstanding !== undefined) throw new Error('raft: advance() the previous Ready before asking for another')
    const r = this.#r
    const rd: Ready = {
      entries: r.log.unstableEntries(),
      messages: r.msgs,
      committed: r.log.nextCommitted(this.#maxCommitted),
    }
    r.msgs = []
    const soft = this.#softState()
    if (soft.leader !== this.#prevSoft.leader || soft.role !== this.#prevSoft.role) rd.softState = soft
    const hard = this.#hardState()
    if (!sameHardState(hard, this.#prevHard)) rd.hardState = hard
    const snapshot = r.log.pendingSnapshot()
    if (snapshot !== undefined) rd.snapshot = snapshot
    this.#outstanding = rd
    return rd
  }

  advance(rd: Ready): void {
    if (rd !== this.#outstanding) throw new Error('raft: advance() takes the Ready returned by the last ready()')
    this.#outstanding = undefined
    const r = this.#r
    if (rd.softState !== undefined) this.#prevSoft = rd.softState
    if (rd.hardState !== undefined) this.#prevHard = rd.hardState
    if (rd.snapshot !== undefined) {
      r.log.stableSnapTo(rd.snapshot.index)
      r.log.appliedTo(rd.snapshot.index)
    }
    const last = rd.entries[rd.entries.length - 1]
    if (last !== undefined && r.log.stableTo(last.index, last.term) && r.role === 'leader') leaderPersisted(r, last.index)
    const lastApplied = rd.committed[rd.committed.length - 1]
    if (lastApplied !== undefined) r.log.appliedTo(lastApplied.index)
  }

  compact(index: number, data: Uint8Array): CompactResult {
    const r = this.#r
    const storage = r.opts.storage
    const snapIndex = storage.firstIndex() - 1
    if (index <= snapIndex) return { ok: false, reason: 'already-compacted' }
    if (data.byteLength > MAX_SNAPSHOT_BYTES) return { ok: false, reason: 'too-large' }
    if (r.log.pendingSnapshot() !== undefined) return { ok: false, reason: 'snapshot-pending' }
    if (index > r.log.applied || index > r.log.persistedIndex()) return { ok: false, reason: 'not-applied' }
    const snapshot: Snapshot = { index, term: storage.term(index) ?? 0, conf: r.log.confAt(index), data }
    storage.compact(snapshot)
    r.log.compacted(index)
    return { ok: true, snapshot }
  }

  termAt(index: number): number | undefined {
    return this.#r.log.term(index)
  }

  status(): RaftStatus {
    const r = this.#r
    const st: RaftStatus = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      role: this.#role(),
      leader: r.leader,
      commit: r.log.committed,
      applied: r.log.applied,
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      voters: r.conf.voters.slice(),
      learners: r.conf.learners.slice(),
    }
    if (r.role === 'leader') {
      const progress: Record<string, ProgressStatus> = {}
      for (const [id, pr] of r.progress) {
        progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: id === r.id || pr.inactiveTicks < r.opts.electionTicks,
          learner: pr.learner,
        }
      }
      st.progress = progress
      if (r.leadTransferee !== null) st.transferringTo = r.leadTransferee
    }
    return st
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit
}
