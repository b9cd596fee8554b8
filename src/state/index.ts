/**
 * The desired-state replication core of Skein (pure: no timers, clock, randomness or I/O of its
 * own). See docs/state.md for the model and the contract between the core and its shell.
 */
export { createStateReplica } from './replica.ts'
export { compareHlc, decodeHlc, encodeHlc, HlcClock, type Hlc } from './hlc.ts'
export { compareEntries, mergeEntry } from './store.ts'
export {
  checkBroadcast, decodeBroadcast, decodeDirect, fromWire, LIMITS, MAX_BROADCAST_BYTES, MAX_DIRECT_BYTES, toWire,
} from './messages.ts'
export type * from './types.ts'
export { DEFAULT_STATE_CONFIG, resolveConfig, STATE_PROTOCOL, STATE_TOPIC } from './types.ts'
