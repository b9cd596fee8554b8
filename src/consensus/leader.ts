import type { RaftCore } from './core.ts'
import { Progress, quorumIndex, quorumSize } from './progress.ts'
import type { AppendResponse, ConfChange, RaftMessage } from './types.ts'

/**
 * The leader side of Raft: replication with flow control, commit by counting, heartbeats,
 * check-quorum, snapshots for lagging peers, and leadership transfer. Functions over the core's
 * state (core.ts owns the roles; these only run while it leads).
 */

/** Fresh progress for every member when leadership is won. */
export function becomeLeaderProgress(r: RaftCore): void {
  const next = r.log.lastIndex() + 1
  for (const id of r.conf.voters) r.progress.set(id, new Progress(next, false, r.opts.maxInflight))
  for (const id of r.conf.learners) r.progress.set(id, new Progress(next, true, r.opts.maxInflight))
  const self = r.progress.get(r.id)
  if (self !== undefined) {
    self.becomeReplicate()
    // Only what is durable counts toward commit; the rest is acknowledged in advance().
    self.maybeUpdate(r.log.persistedIndex())
  }
}

/**
 * Send `to` the entries it is missing (or a snapshot when they are compacted away), unless its
 * flow control is paused. With sendIfEmpty, an append without entries still goes out (it carries
 * the commit index and probes the follower's log). Returns whether a message was sent.
 */
export function sendAppend(r: RaftCore, to: string, sendIfEmpty: boolean): boolean {
  const pr = r.progress.get(to)
  if (pr === undefined || to === r.id || pr.isPaused()) return false
  const log = r.log
  if (pr.next > log.lastIndex() + 1) pr.next = log.lastIndex() + 1
  const prevIndex = pr.next - 1
  const prevTerm = log.term(prevIndex)
  const entries = log.entriesFrom(pr.next, r.opts.maxEntriesPerMsg, r.opts.maxBytesPerMsg)
  if (prevTerm === undefined || entries === undefined) {
    // The follower needs entries we compacted: send the snapshot, to a peer that is alive.
    if (pr.inactiveTicks >= r.opts.electionTicks) return false
    const snapshot = log.snapshot()
    pr.becomeSnapshot(snapshot.index)
    r.send({ type: 'snapshot', to, term: r.term, snapshot })
    return true
  }
  if (entries.length === 0 && !sendIfEmpty) return false
  r.send({ type: 'append', to, term: r.term, prevIndex, prevTerm, entries, commit: log.committed })
  pr.sentEntries(entries.length, prevIndex + entries.length)
  return true
}

/** Send every member what it is missing (at least an empty append). */
export function bcastAppend(r: RaftCore): void {
  for (const id of r.progress.keys()) {
    if (id !== r.id) sendAppend(r, id, true)
  }
}

function bcastHeartbeat(r: RaftCore): void {
  for (const [id, pr] of r.progress) {
    if (id === r.id) continue
    r.send({ type: 'heartbeat', to: id, term: r.term, commit: Math.min(pr.match, r.log.committed) })
  }
}

/** Commit what a majority of voters has persisted, if it is from this term (§5.4.2). */
export function maybeCommit(r: RaftCore): boolean {
  const index = quorumIndex(r.conf.voters, (id) => r.progress.get(id)?.match ?? 0)
  return r.log.maybeCommit(index, r.term)
}

/**
 * Commit what a majority of voters has, and tell every member. A leader that the configuration
 * no longer counts as a voter hands over once that configuration is committed (thesis §4.2.2):
 * it tells a caught-up voter to campaign at once, and steps down.
 */
function commitAndSpread(r: RaftCore): void {
  if (!maybeCommit(r)) return
  bcastAppend(r)
  if (r.isVoter() || r.log.committed < r.log.confIndex()) return
  const last = r.log.lastIndex()
  const heir = r.conf.voters.find((id) => r.progress.get(id)?.match === last)
  if (heir !== undefined) r.send({ type: 'timeout-now', to: heir, term: r.term })
  r.becomeFollower(r.term, null)
}

/** The leader's own entries up to `index` are durable: count them, and commit if that suffices. */
export function leaderPersisted(r: RaftCore, index: number): void {
  const self = r.progress.get(r.id)
  if (self !== undefined && self.maybeUpdate(index)) commitAndSpread(r)
}

function quorumActive(r: RaftCore): boolean {
  let active = 0
  for (const id of r.conf.voters) {
    const pr = r.progress.get(id)
    if (id === r.id || (pr !== undefined && pr.inactiveTicks < r.opts.electionTicks)) active++
  }
  return active >= quorumSize(r.conf.voters.length)
}

/**
 * One leader tick: check-quorum (step down once fewer than a quorum of voters were heard from
 * within an election timeout), give up a transfer that takes longer than an election timeout,
 * retry unanswered snapshots, and send heartbeats.
 */
export function tickLeader(r: RaftCore): void {
  r.electionElapsed++
  r.heartbeatElapsed++
  for (const [id, pr] of r.progress) {
    if (id === r.id) continue
    pr.inactiveTicks++
    if (pr.state === 'snapshot' && ++pr.snapshotTicks >= r.opts.electionTicks) pr.becomeProbe()
  }
  if (r.opts.checkQuorum && !quorumActive(r)) {
    r.becomeFollower(r.term, null)
    return
  }
  if (r.electionElapsed >= r.opts.electionTicks) {
    r.electionElapsed = 0
    r.leadTransferee = null
  }
  if (r.heartbeatElapsed >= r.opts.heartbeatTicks) {
    r.heartbeatElapsed = 0
    bcastHeartbeat(r)
  }
}

/** Messages to a leader at its own term (higher and lower terms were handled by the core). */
export function stepLeader(r: RaftCore, m: RaftMessage): void {
  const pr = r.progress.get(m.from)
  if (pr === undefined) return
  pr.inactiveTicks = 0
  if (m.type === 'append-resp') {
    handleAppendResponse(r, pr, m)
  } else if (m.type === 'heartbeat-resp') {
    pr.probeSent = false
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirst()
    if (pr.match < r.log.lastIndex() || pr.state === 'probe') sendAppend(r, m.from, true)
  }
}

function handleAppendResponse(r: RaftCore, pr: Progress, m: AppendResponse): void {
  if (m.reject) {
    // Fast backtracking: skip every entry of a term the follower cannot have.
    const hint = m.hintTerm > 0 ? r.log.findConflictByTerm(m.hintIndex, m.hintTerm).index : m.hintIndex
    if (pr.maybeDecrTo(m.index, hint)) {
      if (pr.state === 'replicate') pr.becomeProbe()
      sendAppend(r, m.from, true)
    }
    return
  }
  const wasPaused = pr.isPaused()
  if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === 'probe')) return
  if (pr.state === 'probe') {
    pr.becomeReplicate()
  } else if (pr.state === 'snapshot' && pr.match + 1 >= r.log.firstIndex()) {
    pr.becomeProbe()
    pr.becomeReplicate()
  } else if (pr.state === 'replicate') {
    pr.inflights.freeLE(m.index)
  }
  const committed = r.log.committed
  commitAndSpread(r)
  if (r.role !== 'leader') return
  if (r.log.committed === committed && wasPaused) sendAppend(r, m.from, false)
  while (sendAppend(r, m.from, false)) {
    // stream what is left, up to the inflight limit
  }
  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) {
    r.send({ type: 'timeout-now', to: m.from, term: r.term })
  }
}

/** Why a transfer was refused. */
export type TransferRefusal = 'not-leader' | 'not-voter' | 'self'

/**
 * Hand leadership to voter `to`: bring its log up to date, then tell it to campaign at once.
 * Proposals are refused meanwhile; the attempt is dropped after an election timeout.
 */
export function transferLeadership(r: RaftCore, to: string): { ok: true } | { ok: false; reason: TransferRefusal } {
  if (r.role !== 'leader') return { ok: false, reason: 'not-leader' }
  if (to === r.id) return { ok: false, reason: 'self' }
  const pr = r.progress.get(to)
  if (pr === undefined || pr.learner) return { ok: false, reason: 'not-voter' }
  if (r.leadTransferee === to) return { ok: true }
  r.electionElapsed = 0
  r.leadTransferee = to
  if (pr.match === r.log.lastIndex()) r.send({ type: 'timeout-now', to, term: r.term })
  else sendAppend(r, to, true)
  return { ok: true }
}

/**
 * The leader appended a membership change, which takes effect at once (append-time rule): track
 * the new member, forget the removed one, and count commits by the new voters.
 */
export function leaderConfChanged(r: RaftCore, change: ConfChange): void {
  const id = change.id
  const learner = r.conf.learners.includes(id)
  const member = learner || r.conf.voters.includes(id)
  const pr = r.progress.get(id)
  if (!member) r.progress.delete(id)
  else if (pr === undefined) r.progress.set(id, new Progress(r.log.lastIndex() + 1, learner, r.opts.maxInflight))
  else pr.learner = learner
  if (r.leadTransferee !== null && !r.conf.voters.includes(r.leadTransferee)) r.leadTransferee = null
  commitAndSpread(r)
  if (r.role === 'leader') bcastAppend(r)
}
