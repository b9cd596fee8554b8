import { randInt, type Rng } from '../core/rng.ts'
import { checkConfChange, encodeConfChange } from './confchange.ts'
import { MAX_ENTRY_BYTES } from './limits.ts'
import { bcastAppend, becomeLeaderProgress, leaderConfChanged, stepLeader, tickLeader } from './leader.ts'
import { RaftLog } from './log.ts'
import { voteResult, type Progress } from './progress.ts'
import type { RaftStorage } from './storage.ts'
import type {
  AppendRequest, ConfChange, ConfState, Entry, EntryType, Heartbeat, InstallSnapshot, ProposeResult, RaftMessage, VoteRequest,
} from './types.ts'

/** The options of a core. See createRaft in raft.ts for the defaults. */
export interface RaftOptions {
  id: string
  storage: RaftStorage
  rng: Rng
  electionTicks: number
  heartbeatTicks: number
  preVote: boolean
  checkQuorum: boolean
  maxEntriesPerMsg: number
  maxBytesPerMsg: number
  maxInflight: number
  /** Index the application has already applied (its state survived the restart). */
  applied: number | undefined
}

type Campaign = 'pre-election' | 'election' | 'transfer'

/** Messages a core queues, before `to`/`from` are final. */
export type Outgoing = RaftMessage extends infer M ? (M extends RaftMessage ? Omit<M, 'from'> : never) : never

/**
 * The Raft state machine (roles, terms, votes, elections, the follower side of replication and
 * configuration). The leader side lives in leader.ts. Internal: the public face is raft.ts.
 */
export class RaftCore {
  readonly id: string
  readonly log: RaftLog
  readonly opts: RaftOptions
  term = 0
  vote: string | null = null
  role: 'follower' | 'candidate' | 'pre-candidate' | 'leader' = 'follower'
  leader: string | null = null
  /** Leader only: replication progress of every member, itself included. */
  progress = new Map<string, Progress>()
  votes = new Map<string, boolean>()
  electionElapsed = 0
  heartbeatElapsed = 0
  randomizedElectionTimeout = 0
  leadTransferee: string | null = null
  msgs: RaftMessage[] = []

  constructor(opts: RaftOptions) {
    this.opts = opts
    this.id = opts.id
    const storage = opts.storage
    const { hardState, conf } = storage.initialState()
    const snapIndex = storage.firstIndex() - 1
    const lastIndex = storage.lastIndex()
    const commit = Math.max(hardState.commit, snapIndex)
    if (commit > lastIndex) throw new Error(`raft: stored commit ${commit} is beyond the stored last index ${lastIndex}`)
    const applied = Math.min(Math.max(opts.applied ?? snapIndex, snapIndex), commit)
    this.log = new RaftLog(storage, conf, commit, applied)
    this.term = hardState.term
    this.vote = hardState.vote
    this.becomeFollower(hardState.term, null)
  }

  /** The configuration in use: the latest in the log (append-time rule, thesis §4.1). */
  get conf(): ConfState {
    return this.log.conf()
  }

  isVoter(id = this.id): boolean {
    return this.conf.voters.includes(id)
  }

  send(m: Outgoing): void {
    this.msgs.push({ ...m, from: this.id } as RaftMessage)
  }

  // ---- roles ----

  reset(term: number): void {
    if (this.term !== term) {
      this.term = term
      this.vote = null
    }
    this.leader = null
    this.electionElapsed = 0
    this.heartbeatElapsed = 0
    this.randomizedElectionTimeout = this.opts.electionTicks + randInt(this.opts.rng, this.opts.electionTicks)
    this.leadTransferee = null
    this.votes.clear()
    this.progress.clear()
  }

  becomeFollower(term: number, leader: string | null): void {
    this.reset(term)
    this.role = 'follower'
    this.leader = leader
  }

  becomeCandidate(): void {
    this.reset(this.term + 1)
    this.vote = this.id
    this.role = 'candidate'
  }

  becomePreCandidate(): void {
    // No term bump, no vote: a pre-candidate disturbs nobody unless it could win.
    this.votes.clear()
    this.progress.clear()
    this.leader = null
    this.role = 'pre-candidate'
  }

  becomeLeader(): void {
    this.reset(this.term)
    this.role = 'leader'
    this.leader = this.id
    becomeLeaderProgress(this)
    this.appendEntry('empty', new Uint8Array(0))
    bcastAppend(this)
  }

  // ---- ticks ----

  tick(): void {
    if (this.role === 'leader') {
      tickLeader(this)
      return
    }
    this.electionElapsed++
    // Only a peer that may campaign restarts its timer: for the others, the time since the
    // leader was last heard keeps growing, so that their leader stickiness lapses.
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0
      this.hup('election')
    }
  }

  /**
   * May this peer campaign? Not with a snapshot still to persist. A voter may; so may a peer
   * that the latest, not yet committed, configuration removed from the voters: until that change
   * commits, the old configuration may still need it to lead (thesis §4.2.2). Its own vote only
   * counts where it is a voter.
   */
  promotable(): boolean {
    if (this.log.pendingSnapshot() !== undefined) return false
    if (this.isVoter()) return true
    const previous = this.log.previousConf()
    return previous !== undefined && this.log.confIndex() > this.log.committed && previous.voters.includes(this.id)
  }

  hup(kind: 'election' | 'transfer'): void {
    if (this.role === 'leader' || !this.promotable()) return
    this.campaign(kind === 'transfer' ? 'transfer' : this.opts.preVote ? 'pre-election' : 'election')
  }

  campaign(kind: Campaign): void {
    let type: 'pre-vote' | 'vote'
    let term: number
    if (kind === 'pre-election') {
      this.becomePreCandidate()
      type = 'pre-vote'
      term = this.term + 1
    } else {
      this.becomeCandidate()
      type = 'vote'
      term = this.term
    }
    this.votes.set(this.id, true)
    if (voteResult(this.conf.voters, this.votes) === 'won') {
      if (kind === 'pre-election') this.campaign('election')
      else this.becomeLeader()
      return
    }
    const lastIndex = this.log.lastIndex()
    const lastTerm = this.log.lastTerm()
    for (const id of this.conf.voters) {
      if (id === this.id) continue
      this.send({ type, to: id, term, lastIndex, lastTerm, transfer: kind === 'transfer' })
    }
  }

  // ---- messages ----

  step(m: RaftMessage): void {
    if (m.to !== this.id || m.from === this.id || !wellFormed(m)) return
    if (m.term > this.term) {
      if (m.type === 'pre-vote' || m.type === 'vote') {
        // Leader stickiness: while we hear from a leader, ignore campaigns (unless a transfer).
        const inLease = this.opts.checkQuorum && this.leader !== null && this.electionElapsed < this.opts.electionTicks
        if (!m.transfer && inLease) return
      }
      if (m.type === 'pre-vote') {
        // A pre-vote never changes our term.
      } else if (m.type === 'pre-vote-resp' && !m.reject) {
        // A granted pre-vote carries the term we would campaign in; we bump it only if we win.
      } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
        this.becomeFollower(m.term, m.from)
      } else {
        this.becomeFollower(m.term, null)
      }
    } else if (m.term < this.term) {
      if ((this.opts.checkQuorum || this.opts.preVote) && (m.type === 'append' || m.type === 'heartbeat')) {
        // Tell a stale leader about the newer term so that it steps down (it may be cut off
        // from everyone else, and pre-vote keeps our term from reaching it otherwise).
        this.send({ type: 'append-resp', to: m.from, term: this.term, index: 0, reject: false, hintIndex: 0, hintTerm: 0 })
      } else if (m.type === 'pre-vote' || m.type === 'vote') {
        // Reject with our term, so that a candidate stuck in an old term catches up (a peer with
        // a stale configuration may be the only one raising the others' terms).
        this.send({ type: m.type === 'vote' ? 'vote-resp' : 'pre-vote-resp', to: m.from, term: this.term, reject: true })
      }
      return
    }

    if (m.type === 'pre-vote' || m.type === 'vote') {
      this.handleVoteRequest(m)
      return
    }
    switch (this.role) {
      case 'leader':
        stepLeader(this, m)
        return
      case 'candidate':
      case 'pre-candidate':
        this.stepCandidate(m)
        return
      case 'follower':
        this.stepFollower(m)
        return
    }
  }

  handleVoteRequest(m: VoteRequest): void {
    const respType = m.type === 'pre-vote' ? 'pre-vote-resp' : 'vote-resp'
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.leader === null) ||
      (m.type === 'pre-vote' && m.term > this.term)
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      this.send({ type: respType, to: m.from, term: m.term, reject: false })
      if (m.type === 'vote') {
        this.electionElapsed = 0
        this.vote = m.from
      }
    } else {
      this.send({ type: respType, to: m.from, term: this.term, reject: true })
    }
  }

  stepFollower(m: RaftMessage): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        this.electionElapsed = 0
        this.leader = m.from
        this.handleFromLeader(m)
        return
      case 'timeout-now':
        this.hup('transfer')
        return
      default:
        return
    }
  }

  stepCandidate(m: RaftMessage): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        this.becomeFollower(m.term, m.from)
        this.handleFromLeader(m)
        return
      case 'pre-vote-resp':
      case 'vote-resp': {
        if ((m.type === 'pre-vote-resp') !== (this.role === 'pre-candidate')) return
        this.votes.set(m.from, !m.reject)
        const result = voteResult(this.conf.voters, this.votes)
        if (result === 'won') {
          if (this.role === 'pre-candidate') this.campaign('election')
          else this.becomeLeader()
        } else if (result === 'lost') {
          this.becomeFollower(this.term, null)
        }
        return
      }
      default:
        return
    }
  }

  handleFromLeader(m: AppendRequest | Heartbeat | InstallSnapshot): void {
    if (m.type === 'append') this.handleAppend(m)
    else if (m.type === 'heartbeat') this.handleHeartbeat(m)
    else this.handleSnapshot(m)
  }

  handleAppend(m: AppendRequest): void {
    const log = this.log
    if (m.prevIndex < log.committed) {
      this.send({ type: 'append-resp', to: m.from, term: this.term, index: log.committed, reject: false, hintIndex: 0, hintTerm: 0 })
      return
    }
    const last = log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries)
    if (last !== undefined) {
      this.send({ type: 'append-resp', to: m.from, term: this.term, index: last, reject: false, hintIndex: 0, hintTerm: 0 })
      return
    }
    const hint = log.findConflictByTerm(Math.min(m.prevIndex, log.lastIndex()), m.prevTerm)
    this.send({ type: 'append-resp', to: m.from, term: this.term, index: m.prevIndex, reject: true, hintIndex: hint.index, hintTerm: hint.term })
  }

  handleHeartbeat(m: Heartbeat): void {
    // The leader sends min(our acknowledged match, its commit), so this is within our log unless
    // our storage lost acknowledged entries; then commit nothing rather than something wrong.
    if (m.commit <= this.log.lastIndex()) this.log.commitTo(m.commit)
    this.send({ type: 'heartbeat-resp', to: m.from, term: this.term })
  }

  handleSnapshot(m: InstallSnapshot): void {
    const s = m.snapshot
    const log = this.log
    if (s.index > log.committed) {
      // Either we already have the snapshot's last entry (then only the commit index moves), or
      // the snapshot replaces the whole log, configuration included.
      if (log.term(s.index) === s.term) log.commitTo(s.index)
      else log.restore(s)
    }
    // Acknowledge only what is known to match the leader: the committed prefix.
    const index = log.committed
    this.send({ type: 'append-resp', to: m.from, term: this.term, index, reject: false, hintIndex: 0, hintTerm: 0 })
  }

  // ---- proposals and configuration ----

  appendEntry(type: EntryType, data: Uint8Array): Entry {
    const e: Entry = { term: this.term, index: this.log.lastIndex() + 1, type, data }
    this.log.append([e])
    return e
  }

  propose(type: 'normal' | 'conf', data: Uint8Array, change?: ConfChange): ProposeResult {
    const leader = this.leader ?? undefined
    if (this.role !== 'leader' || !this.isVoter()) {
      return leader !== undefined && leader !== this.id ? { ok: false, reason: 'not-leader', leader } : { ok: false, reason: 'not-leader' }
    }
    if (this.leadTransferee !== null) return { ok: false, reason: 'transfer-in-progress', leader: this.leadTransferee }
    if (data.byteLength > MAX_ENTRY_BYTES) return { ok: false, reason: 'too-large' }
    if (change !== undefined) {
      // One change at a time, and only once this leader has committed an entry of its own term
      // (the fix to the single-server change bug).
      const log = this.log
      if (log.confIndex() > log.committed || log.term(log.committed) !== this.term) return { ok: false, reason: 'conf-change-pending' }
      if (checkConfChange(this.conf, change) !== undefined) return { ok: false, reason: 'invalid-change' }
    }
    const e = this.appendEntry(type, data)
    if (change !== undefined) leaderConfChanged(this, change)
    else bcastAppend(this)
    return { ok: true, index: e.index, term: e.term }
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    return this.propose('conf', encodeConfChange(change), change)
  }
}

/** Cheap structural checks a schema cannot express. Malformed messages are dropped. */
function wellFormed(m: RaftMessage): boolean {
  if (m.type === 'append') {
    for (let k = 0; k < m.entries.length; k++) {
      const e = m.entries[k] as Entry
      const prevTerm = k === 0 ? m.prevTerm : (m.entries[k - 1] as Entry).term
      if (e.index !== m.prevIndex + 1 + k || e.term > m.term || e.term < prevTerm) return false
    }
    return m.prevTerm <= m.term
  }
  if (m.type === 'snapshot') return m.snapshot.term <= m.term
  return true
}
