/**
 * Desired-state replication types, shared by the pure core (store.ts, replica.ts), the wire
 * schemas (messages.ts), the simulation and the shell. docs/state.md describes the model.
 */
import type { Rng } from '../core/rng.ts'
import type { PeerId } from '../transport/types.ts'
import type { Hlc } from './hlc.ts'

/**
 * One service's replicated record. `value` holds the spec layer's canonical bytes; null is a
 * tombstone (the service was removed). `hlc.node` is the writer. `revision` is set by the writer
 * (one more than the highest revision it held for the key) and travels with the entry.
 */
export interface Entry {
  key: string
  hlc: Hlc
  value: Uint8Array | null
  revision: number
}

/** One write of a batch: a value to store, or null to remove the key. */
export interface Write {
  key: string
  value: Uint8Array | null
}

/**
 * `current`: this replica's store can be trusted for entries older than the horizon, and it
 * collects tombstones. `joining`: a fresh or long-absent replica catching up (docs/state.md).
 */
export type ReplicaStatus = 'current' | 'joining'

/** Replica bookkeeping the shell persists (on every `meta` effect) and hands back on restart. */
export interface ReplicaMeta {
  status: ReplicaStatus
  /** Physical time (ms) at which this replica was last known to be running (refreshed periodically). */
  aliveAt: number
  /** When it became `joining` (physical ms), if it is. */
  joiningSince: number | undefined
  /** The clock's high-water mark, so a restarted replica never reissues a timestamp. */
  clock: { wall: number; logical: number }
}

/** What a restarted replica reads back from its store. */
export interface PersistedState {
  /** Every stored entry, tombstones included. */
  entries: Entry[]
  /** Revision history per key (any order; the core sorts and trims). */
  history: Entry[][]
  meta: ReplicaMeta | undefined
}

/** A key's version as listed in anti-entropy: [key, wall, logical, node, hash32 of the entry]. */
export type WireStamp = [string, number, number, string, number]

/** An entry on the wire. */
export interface WireEntry {
  k: string
  w: number
  l: number
  n: string
  r: number
  v: Uint8Array | null
}

/**
 * Direct anti-entropy messages, on STATE_PROTOCOL. The sender is the authenticated connection's
 * peer; `cur` is the sender's status (true = current).
 *
 * root → same (equal roots: done) | buckets → stamps (sender's versions in mismatched buckets,
 * with its bucket count `n`, which must equal the receiver's)
 * → need (what the receiver lacks or holds older) + entries (what it holds newer) → entries.
 */
export type DirectMessage =
  | { t: 'root'; cur: boolean; root: Uint8Array }
  | { t: 'same'; cur: boolean }
  | { t: 'buckets'; cur: boolean; hashes: Uint8Array }
  | { t: 'stamps'; cur: boolean; n: number; buckets: number[]; stamps: WireStamp[] }
  | { t: 'need'; cur: boolean; stale: string[]; missing: string[] }
  | { t: 'entries'; cur: boolean; entries: WireEntry[] }

/** Gossip of fresh local writes, on STATE_TOPIC. Every entry's writer is the publisher. */
export interface BroadcastMessage {
  t: 'write'
  cur: boolean
  entries: WireEntry[]
}

/** The direct-message protocol of anti-entropy. */
export const STATE_PROTOCOL = '/skein/state/1.0.0'
/** The gossip topic of desired-state writes. */
export const STATE_TOPIC = 'skein/state/1'

/** Timing and sizing. Defaults suit a real cluster; docs/state.md explains each. */
export interface StateConfig {
  /** How often this replica starts a digest exchange with one random peer. */
  antiEntropyIntervalMs: number
  /** H: a tombstone older than this (by its HLC wall time) is collected by current replicas. */
  tombstoneHorizonMs: number
  /** A replica that was not running for longer than this comes back `joining` (default H / 2). */
  rejoinAfterMs: number
  /** A joining replica that never meets a current peer promotes itself after this (default H). */
  promoteAfterMs: number
  /** How often tombstones are collected. */
  gcIntervalMs: number
  /** How often the `meta` effect refreshes aliveAt. */
  aliveEveryMs: number
  /** Remote timestamps further ahead of the local clock than this are refused. */
  maxDriftMs: number
  /** Revisions kept per key. */
  historyLimit: number
  /** Anti-entropy buckets; must be the same on every peer. */
  buckets: number
}

const DAY = 24 * 60 * 60 * 1000

/** The defaults (rejoinAfterMs and promoteAfterMs follow the horizon unless set). */
export const DEFAULT_STATE_CONFIG: StateConfig = {
  antiEntropyIntervalMs: 2_000,
  tombstoneHorizonMs: 7 * DAY,
  rejoinAfterMs: 3.5 * DAY,
  promoteAfterMs: 7 * DAY,
  gcIntervalMs: 60_000,
  aliveEveryMs: 60_000,
  maxDriftMs: 60_000,
  historyLimit: 10,
  buckets: 64,
}

/** Fill in defaults; rejoinAfter and promoteAfter default to H / 2 and H of the given horizon. */
export function resolveConfig(c: Partial<StateConfig> = {}): StateConfig {
  const horizon = c.tombstoneHorizonMs ?? DEFAULT_STATE_CONFIG.tombstoneHorizonMs
  const cfg: StateConfig = {
    ...DEFAULT_STATE_CONFIG,
    rejoinAfterMs: horizon / 2,
    promoteAfterMs: horizon,
    ...c,
  }
  if (!Number.isInteger(cfg.buckets) || cfg.buckets < 1 || cfg.buckets > 4096) throw new RangeError('buckets must be an integer in 1..4096')
  if (!(cfg.rejoinAfterMs < cfg.tombstoneHorizonMs)) throw new RangeError('rejoinAfterMs must be below tombstoneHorizonMs')
  if (!(cfg.historyLimit >= 1)) throw new RangeError('historyLimit must be at least 1')
  return cfg
}

/**
 * What the pure core asks its shell to do, in order. Persistence effects (changed, history,
 * dropped, meta) come before network effects in every list: persist, then send.
 */
export type Effect =
  /** The winning entry for `key` changed: upsert it durably, then tell the consumers. */
  | { type: 'changed'; key: string; entry: Entry; previous: Entry | undefined }
  /** The key's revision history is now `entries` (oldest first): replace the stored list. */
  | { type: 'history'; key: string; entries: Entry[] }
  /** The key is gone (tombstone collected, or a stale copy dropped): delete it and its history. */
  | { type: 'dropped'; key: string; previous: Entry; reason: 'collected' | 'stale' }
  /** Persist the replica's bookkeeping. */
  | { type: 'meta'; meta: ReplicaMeta }
  /** A remote entry was refused (for logs and counters; nothing to do). */
  | { type: 'refused'; from: PeerId; key: string; reason: 'drift' | 'settled' }
  | { type: 'send'; to: PeerId; msg: DirectMessage }
  | { type: 'broadcast'; msg: BroadcastMessage }

/** Options of createStateReplica. */
export interface StateReplicaInit {
  nodeId: PeerId
  rng: Rng
  /** Physical time (ms) now. */
  now: number
  config?: Partial<StateConfig>
  /** What the shell persisted before a restart; absent for a fresh store. */
  restore?: PersistedState
  /**
   * A fresh store that founds a new cluster (nobody to learn from) starts `current`; a fresh
   * store joining an existing cluster starts `joining` (the default).
   */
  founder?: boolean
}

/** The outcome of one write of a batch. */
export interface WriteResult {
  key: string
  /** The entry now held for the key: the new one if written; a tombstone after a removal; undefined if never held. */
  entry: Entry | undefined
  /** False if the write changed nothing (same value, or removing a key that is not there). */
  written: boolean
}

/** Counters, for status and tests. */
export interface ReplicaStats {
  rounds: number
  roundsInSync: number
  entriesSent: number
  entriesMerged: number
  refused: number
  dropped: number
}

/** The replica's surface. Every mutating method returns the effects the shell must carry out, in order. */
export interface StateReplica {
  readonly nodeId: PeerId
  /**
   * Write a batch atomically: every write is stamped (consecutive HLCs) and stored, or, if any
   * is invalid, none is and this throws a RangeError. The shell persists the effects, then
   * acknowledges the client, then publishes the broadcast.
   */
  apply(writes: readonly Write[], now: number): { results: WriteResult[]; effects: Effect[] }
  /** apply() of one value. */
  put(key: string, value: Uint8Array, now: number): { result: WriteResult; effects: Effect[] }
  /** apply() of one removal (a tombstone). */
  remove(key: string, now: number): { result: WriteResult; effects: Effect[] }
  /** Drive timers: anti-entropy rounds, tombstone collection, the aliveAt refresh. */
  tick(now: number): Effect[]
  /** A direct message from the authenticated peer `from`. */
  receive(from: PeerId, msg: DirectMessage, now: number): Effect[]
  /** A gossip message published by `from` (already checked with checkBroadcast). */
  receiveBroadcast(from: PeerId, msg: BroadcastMessage, now: number): Effect[]
  /** The live peers to pick anti-entropy partners from (the shell passes membership's alive members). */
  setPeers(peers: readonly PeerId[]): void
  /** The entry for a key, tombstones included. */
  get(key: string): Entry | undefined
  /** Every entry, tombstones included, sorted by key. */
  entries(): Entry[]
  /** Live entries only, sorted by key. */
  live(): Entry[]
  /** The key's revision history, oldest first. */
  history(key: string): Entry[]
  /** The anti-entropy root digest (8 bytes): equal roots ⇔ identical stores. */
  root(): Uint8Array
  /** The digest material: the root and every bucket's digest (8 bytes each). */
  digest(): { root: Uint8Array; buckets: Uint8Array }
  status(): ReplicaStatus
  meta(): ReplicaMeta
  stats(): ReplicaStats
  /** The earliest time at which tick() has work to do. */
  nextDeadline(): number
}
