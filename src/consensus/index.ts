/**
 * The Raft core of Skein (pure: no timers, clock, randomness or I/O of its own). See
 * docs/consensus.md for the contract between the core and its shell.
 */
export { createRaft, type CompactResult, type Raft, type RaftConfig } from './raft.ts'
export { bootstrap, emptySnapshot, type RaftStorage } from './storage.ts'
export { MemoryRaftStorage } from './memory-storage.ts'
export { decodeConfChange, encodeConfChange } from './confchange.ts'
export { decodeRaftMessage, encodeRaftMessage, raftMessageSchema, RAFT_PROTOCOL } from './messages.ts'
export * from './limits.ts'
export type { TransferRefusal } from './leader.ts'
export type * from './types.ts'
export { RAFT_MESSAGE_TYPES } from './types.ts'
export * from './commands.ts'
export { nextVoterChange, quorum, DEFAULT_VOTER_POLICY, type VoterAction, type VoterPolicyConfig, type VoterPolicyInput } from './voters.ts'
export { RAFT_TIMING_PRESETS, resolveRaftTiming, describeRaftTiming, type RaftTiming } from './timing.ts'
