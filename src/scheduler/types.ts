// Types of the pure scheduler (leader-only). docs/replicas.md is the model these types encode.
import type { MemberState } from '../membership/types.ts'
import type { ServiceSpec } from '../model/spec.ts'

/** A replica's observed lifecycle state; it only moves forward (see states.ts). */
export type ReplicaState = 'assigned' | 'preparing' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed' | 'orphaned'

/** Health as reported by the agent's checks; unlike the state it may go back and forth. */
export type ReplicaHealth = 'none' | 'starting' | 'healthy' | 'unhealthy'

/** A committed decision: slot `slot` of `service` runs on `host`. */
export interface Assignment {
  service: string
  slot: number
  /** Host (peer) id. */
  host: string
  /** Spec revision the slot should run. */
  revision: number
  /** 1 on first placement, +1 on every move: tells an old copy from the current one. */
  generation: number
  /** Log position of the committing entry: the fencing token. */
  term: number
  index: number
}

/** What a host's agent reports about one replica (through gossip). */
export interface ObservedReplica {
  service: string
  slot: number
  host: string
  generation: number
  state: ReplicaState
  health: ReplicaHealth
  containerId: string | null
  startedAt: number | null
  exitCode: number | null
  /** Restarts of this generation on this host (shown by `skein ps`). */
  restarts: number
  /** Restarts since the container last ran stably (the agent resets it). */
  streak: number
  /** Time of the first exit of the current streak, or null. */
  streakSince: number | null
  updatedAt: number
}

/** CPU (thousandths of a core) and memory (bytes); null means unknown / not limited. */
export interface Capacity {
  milliCpu: number | null
  memoryBytes: number | null
}

/** A host as the scheduler sees it (membership + capacity + drain flag). */
export interface NodeInfo {
  id: string
  name: string
  state: MemberState
  labels: Record<string, string>
  capacity: Capacity
  drained: boolean
  /** Time of the last membership state change (for `onHostLoss: wait`). */
  since: number
  /**
   * The host announced a graceful restart (a committed `restarting` entry): until this time (epoch
   * ms, compared with `now`) its replicas wait for it when it is dead. Absent: no announcement.
   */
  restartingUntil?: number
}

/** Ranking strategy. */
export type Strategy = 'spread' | 'binpack'

/** Scheduler tunables. */
export interface SchedulerConfig {
  strategy: Strategy
  /** Move a replica whose restart streak reaches this many restarts… */
  moveAfterRestarts: number
  /** …within this window (ms since the streak began). */
  restartWindowMs: number
}

/** Defaults: spread; move after 5 restarts within 5 minutes. */
export const DEFAULT_SCHEDULER_CONFIG: SchedulerConfig = { strategy: 'spread', moveAfterRestarts: 5, restartWindowMs: 5 * 60_000 }

/** Everything one reconcile round reads. */
export interface SchedulerInput {
  /** Desired services (keyed by `name`, which is unique in the cluster). */
  services: readonly ServiceSpec[]
  /** Desired revision per service name (default 0). */
  revisions?: Readonly<Record<string, number>>
  assignments: readonly Assignment[]
  observed: readonly ObservedReplica[]
  nodes: readonly NodeInfo[]
  now: number
  config?: Partial<SchedulerConfig>
}

/** Why a slot is placed or moved. */
export type MoveReason = 'host-dead' | 'host-left' | 'host-unknown' | 'drained' | 'constraint' | 'failing' | 'rebalance'

/** Place a slot that has no assignment. */
export interface Placement {
  service: string
  slot: number
  host: string
  revision: number
  generation: number
}

/** Move a slot to another host. */
export interface Move {
  service: string
  slot: number
  from: string
  to: string
  revision: number
  generation: number
  reason: MoveReason
}

/** Why something is stopped. */
export type StopReason = 'scale-down' | 'service-removed' | 'not-eligible' | 'stale'

/**
 * Stop a replica. `unassign: true` deletes the slot's assignment (a log entry); `unassign: false`
 * is a stale copy that the committed state already disowns (the agent stops it on its own).
 */
export interface Stop {
  service: string
  slot: number
  host: string
  generation: number
  containerId: string | null
  unassign: boolean
  reason: StopReason
}

/** A slot that could not be placed (or moved), or waits for a lost host. */
export interface Pending {
  service: string
  /** -1 for a global service's host that cannot take its replica (no slot number yet). */
  slot: number
  kind: 'unschedulable' | 'waiting'
  /** The slot's current host (a move with no target, a lost host), or for global mode the host that cannot take it. */
  host: string | null
}

/** One reconcile round's decisions. */
export interface SchedulerOutput {
  place: Placement[]
  move: Move[]
  stop: Stop[]
  pending: Pending[]
  /** Per service with pending slots: a sentence naming why, with host names. */
  explain: Record<string, string>
}

/** One change in the proposed typed log entry: `host: null` deletes the slot's assignment. */
export interface SlotChange {
  service: string
  slot: number
  host: string | null
  generation: number
  revision: number
}

/** Proposed typed log entry for scheduler decisions (the lead wires it into consensus/commands.ts). */
export interface SchedulerCommand {
  kind: 'placements'
  changes: SlotChange[]
}

/** Key of a slot (service, slot) in maps. */
export function slotKey(service: string, slot: number): string {
  return `${service}\u0000${slot}`
}
