/**
 * Data types of the Raft core: log entries, persistent state, snapshots, wire messages and the
 * Ready batch. Everything here is plain data (numbers, strings, booleans, arrays, Uint8Array), so
 * the msgpack codec and the zod schemas in messages.ts can carry it unchanged.
 */

/** `normal`: application data; `conf`: an encoded ConfChange; `empty`: a new leader's no-op. */
export type EntryType = 'normal' | 'conf' | 'empty'

/** One log entry. (term, index) of a committed entry is a fencing token. */
export interface Entry {
  term: number
  index: number
  type: EntryType
  data: Uint8Array
}

/** What must survive a restart besides the log. `vote` is null when no vote was cast in `term`. */
export interface HardState {
  term: number
  vote: string | null
  commit: number
}

/** A configuration: who votes, and who only receives the log. Disjoint sets. */
export interface ConfState {
  voters: string[]
  learners: string[]
}

/** A single-server membership change, carried by a `conf` entry. */
export interface ConfChange {
  /** `add-voter` on a learner promotes it; `add-learner` on a voter demotes it. */
  type: 'add-voter' | 'add-learner' | 'remove'
  id: string
}

/**
 * A compacted prefix of the log: the application state `data` after applying every entry up to
 * and including `index`, the term of that entry, and the configuration in force at that point.
 */
export interface Snapshot {
  index: number
  term: number
  conf: ConfState
  data: Uint8Array
}

/** The role a core plays. A follower that is a learner in its own configuration reports `learner`. */
export type Role = 'leader' | 'follower' | 'candidate' | 'pre-candidate' | 'learner'

/** Volatile state worth telling the shell about when it changes. */
export interface SoftState {
  leader: string | null
  role: Role
}

interface MessageBase {
  from: string
  to: string
  term: number
}

/** Vote request. Pre-votes carry the term the sender would campaign in (its term + 1). */
export interface VoteRequest extends MessageBase {
  type: 'pre-vote' | 'vote'
  lastIndex: number
  lastTerm: number
  /** Set by a leadership transfer: bypasses the receiver's leader stickiness. */
  transfer: boolean
}

/** Vote response. A granted pre-vote echoes the request's term. */
export interface VoteResponse extends MessageBase {
  type: 'pre-vote-resp' | 'vote-resp'
  reject: boolean
}

/** AppendEntries: `entries` follow (prevIndex, prevTerm); `commit` is the leader's commit index. */
export interface AppendRequest extends MessageBase {
  type: 'append'
  prevIndex: number
  prevTerm: number
  entries: Entry[]
  commit: number
}

/**
 * Answer to an append (and to an install-snapshot). Accepted: `index` is the last index the
 * follower now matches. Rejected: `index` is the rejected prevIndex, and (hintIndex, hintTerm)
 * is the follower's best guess of where the logs may agree (fast backtracking).
 */
export interface AppendResponse extends MessageBase {
  type: 'append-resp'
  index: number
  reject: boolean
  hintIndex: number
  hintTerm: number
}

/** Leader heartbeat. `commit` is min(the follower's known match, the leader's commit). */
export interface Heartbeat extends MessageBase {
  type: 'heartbeat'
  commit: number
}

export interface HeartbeatResponse extends MessageBase {
  type: 'heartbeat-resp'
}

/** Install-snapshot. Answered with an `append-resp`. */
export interface InstallSnapshot extends MessageBase {
  type: 'snapshot'
  snapshot: Snapshot
}

/** Leadership transfer: the receiver campaigns at once, skipping pre-vote and stickiness. */
export interface TimeoutNow extends MessageBase {
  type: 'timeout-now'
}

/** Every message the cores exchange. One-way; the shell delivers them to `to`. */
export type RaftMessage =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | TimeoutNow

/** All message type tags. */
export const RAFT_MESSAGE_TYPES = [
  'pre-vote', 'vote', 'pre-vote-resp', 'vote-resp', 'append', 'append-resp',
  'heartbeat', 'heartbeat-resp', 'snapshot', 'timeout-now',
] as const satisfies readonly RaftMessage['type'][]

/**
 * A batch of work for the shell. Handle it in this order, then call `advance(ready)`:
 * 1. persist `snapshot` (storage.applySnapshot, and load it into the application),
 *    `entries` (storage.append) and `hardState` (storage.setHardState) — atomically if possible,
 *    otherwise snapshot, then entries, then hard state;
 * 2. send `messages` (only after step 1 is durable);
 * 3. apply `committed` to the application, in order.
 */
export interface Ready {
  /** Present when the leader or the role changed since the previous Ready. */
  softState?: SoftState
  /** Present when term, vote or commit changed since the previous Ready. */
  hardState?: HardState
  /** Entries to append to stable storage (may overwrite a conflicting suffix). */
  entries: Entry[]
  /** A snapshot received from the leader, to persist and load. */
  snapshot?: Snapshot
  /** Messages to send once everything above is persisted. */
  messages: RaftMessage[]
  /** Committed entries to apply, in index order. */
  committed: Entry[]
}

/** Why a proposal was refused. */
export type ProposeRefusal =
  | 'not-leader'
  | 'transfer-in-progress'
  | 'conf-change-pending'
  | 'invalid-change'
  | 'too-large'

/** The result of `propose` / `proposeConfChange`. `leader` is a hint when known. */
export type ProposeResult =
  | { ok: true; index: number; term: number }
  | { ok: false; reason: ProposeRefusal; leader?: string }

/** Replication state of one peer, as the leader sees it. */
export interface ProgressStatus {
  match: number
  next: number
  state: 'probe' | 'replicate' | 'snapshot'
  recentActive: boolean
  learner: boolean
}

/** A read-only view of the core, for `status` output and tests. */
export interface RaftStatus {
  id: string
  term: number
  vote: string | null
  role: Role
  leader: string | null
  commit: number
  applied: number
  firstIndex: number
  lastIndex: number
  voters: string[]
  learners: string[]
  /** Leader only. */
  progress?: Record<string, ProgressStatus>
  /** Leader only, while a transfer is under way. */
  transferringTo?: string
}
