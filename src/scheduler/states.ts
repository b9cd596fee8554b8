// The replica state order (docs/replicas.md): states only move forward.
import type { ReplicaState } from './types.ts'

const RANK: Record<ReplicaState, number> = { assigned: 0, preparing: 1, starting: 2, running: 3, stopping: 4, stopped: 5, failed: 5, orphaned: 5 }

/** Terminal states: nothing follows them. */
export function isTerminal(s: ReplicaState): boolean {
  return RANK[s] === 5
}

/** Active states: a container exists or is being made, so a stale copy in one must be stopped. */
export function isActive(s: ReplicaState): boolean {
  return RANK[s] < 4
}

/**
 * May a replica record in state `from` be replaced by a report in state `to` (same service, slot,
 * host and generation)? Forward moves only; a repeat of the same state is allowed (a new report,
 * e.g. more restarts); nothing leaves a terminal state; any non-terminal state may become orphaned.
 */
export function canAdvance(from: ReplicaState, to: ReplicaState): boolean {
  if (isTerminal(from)) return from === to
  if (to === 'orphaned') return true
  return RANK[to] >= RANK[from]
}
