// The pure scheduler (leader-only). docs/replicas.md describes the model.
//
//   reconcile(input) → { place, move, stop, pending, explain }
//   toCommand(output) → SchedulerCommand (the proposed log entry); applyCommand / applyDecisions
//   canAdvance(from, to): the replica state order (states only move forward)
export { reconcile } from './reconcile.ts'
export { toCommand, applyCommand, applyDecisions } from './commit.ts'
export { canAdvance, isActive, isTerminal } from './states.ts'
export { constraintMatches, formatRejections, MAX_NAMED_HOSTS } from './filters.ts'
export { DEFAULT_SCHEDULER_CONFIG } from './types.ts'
export type {
  Assignment, ObservedReplica, NodeInfo, Capacity, ReplicaState, ReplicaHealth, SchedulerConfig, SchedulerInput, SchedulerOutput,
  Placement, Move, Stop, Pending, MoveReason, StopReason, Strategy, SlotChange, SchedulerCommand,
} from './types.ts'
