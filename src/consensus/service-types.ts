import type { Clock } from '../core/clock.ts'
import type { Logger } from '../core/logger.ts'
import type { Rng } from '../core/rng.ts'
import type { Member } from '../membership/types.ts'
import type { AssignmentView } from '../scheduler/assignments.ts'
import type { Store } from '../storage/store.ts'
import type { Transport } from '../transport/types.ts'
import type { AppliedAssignments, Command, CommittedEntry, FenceResult, LogPosition } from './commands.ts'
import type { ConsensusStatus, VoterInfo } from './status.ts'
import type { RaftTiming } from './timing.ts'
import type { ProposeResult, Role } from './types.ts'
import type { VoterPolicyConfig } from './voters.ts'

/** The types of the consensus service (service.ts): its options, components, events and API. */

/** Options of the service. */
export interface ConsensusServiceInit {
  /** This peer's id (the transport's). */
  selfId: string
  /** A brand-new cluster: bootstrap empty storage with this peer as its only voter. */
  bootstrap?: boolean
  timing?: Partial<RaftTiming>
  voters?: Partial<VoterPolicyConfig>
  /** Take a snapshot and compact the log every this many applied entries (default 1000). */
  compactEvery?: number
  /** Run the voter policy every this many ticks while leading (default 2). */
  policyEveryTicks?: number
  /** The transport's message size limit: larger messages are not sent (default 1 MiB). */
  maxMessageBytes?: number
}

/** What the service needs. `membership` is read for addresses, names and health. */
export interface ConsensusServiceComponents {
  transport: Transport
  store: Store
  clock: Clock
  logger: Logger
  rng: Rng
  membership: { members(): Member[]; self(): Member }
  /** Called once if persisting fails; the service has stopped by then. */
  onFatal?: (err: unknown) => void
}

/** A leadership change, as seen by this peer. */
export interface LeaderEvent {
  leaderId: string | null
  leader: string | null
  term: number
  role: Role
  isLeader: boolean
}

/** Events: `leader` on leadership or role changes, `committed` for every applied entry (in order). */
export interface ConsensusEvents {
  leader: LeaderEvent
  committed: CommittedEntry
}

/** Counters for status and tests. */
export interface ConsensusStats {
  received: number
  invalid: number
  forged: number
  sent: number
  sendFailures: number
  tooLarge: number
  readies: number
  snapshotsTaken: number
}

/** The outcome of removeVoter. */
export interface RemoveVoterResult {
  id: string
  /** True when the change was forced locally, without a leader (see docs/consensus.md). */
  forced: boolean
}

/** The consensus service. */
export interface ConsensusService {
  start(): void
  stop(): Promise<void>
  status(): ConsensusStatus
  /** Voters and learners; on a follower, match indexes are asked from the leader (bounded wait). */
  voters(): Promise<VoterInfo[]>
  /** Append a command to the log (leader only). */
  propose(cmd: Command): ProposeResult
  /** Propose and wait until this peer has applied it; rejects with a SkeinError otherwise. */
  proposeAndWait(cmd: Command, opts?: { timeoutMs?: number }): Promise<LogPosition>
  /** Remove a voter or learner through the log; `force` allows the unsafe local change when no leader is known. */
  removeVoter(id: string, opts?: { force?: boolean; timeoutMs?: number }): Promise<RemoveVoterResult>
  /** Before a graceful leave: get this peer out of the configuration (bounded wait). True when it is out. */
  leave(opts?: { timeoutMs?: number }): Promise<boolean>
  /** May a decision made at (term, index) be acted on? (see Fence in commands.ts) */
  fence(term: number, index: number): FenceResult
  /** The latest committed generic assignment set per service. */
  assignments(): ReadonlyMap<string, AppliedAssignments>
  /**
   * The scheduler's committed assignments (every peer applies every `placements` entry). Call it
   * each time: installing a snapshot replaces the table.
   */
  table(): AssignmentView
  /** Drained hosts (peer ids), from committed `drain` entries (`skein drain`). */
  drained(): ReadonlySet<string>
  /** Hosts (peer ids) that announced a graceful restart → until when (epoch ms), from committed `restarting` entries. */
  restarting(): ReadonlyMap<string, number>
  on<K extends keyof ConsensusEvents>(event: K, fn: (e: ConsensusEvents[K]) => void): void
  off<K extends keyof ConsensusEvents>(event: K, fn: (e: ConsensusEvents[K]) => void): void
  stats(): ConsensusStats
  readonly timing: RaftTiming
}

/** A proposer waiting for its entry to be applied (internal to service.ts). */
export interface Waiter {
  term: number
  resolve: (p: LogPosition) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}
