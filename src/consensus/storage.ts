import { encodeConfChange } from './confchange.ts'
import type { ConfState, Entry, HardState, Snapshot } from './types.ts'

/**
 * Stable storage of one Raft peer: the hard state, the log after the last snapshot, and that
 * snapshot. The core only reads it (the first block of methods); the shell writes it while
 * handling a Ready (the second block), and through `Raft.compact`.
 *
 * Index conventions: the snapshot covers indexes 1..firstIndex()-1; entries are stored for
 * firstIndex()..lastIndex(). An empty, never-compacted log has firstIndex 1 and lastIndex 0;
 * `term(0)` is 0. All methods are synchronous, so `node:sqlite` can back it directly.
 */
export interface RaftStorage {
  /** The persisted hard state, and the configuration as of the snapshot (index firstIndex()-1). */
  initialState(): { hardState: HardState; conf: ConfState }
  /** Entries [lo, hi), in order. Callers keep firstIndex() <= lo <= hi <= lastIndex()+1. */
  entries(lo: number, hi: number): Entry[]
  /** Term of entry i for firstIndex()-1 <= i <= lastIndex() (the snapshot's term at firstIndex()-1), else undefined. */
  term(i: number): number | undefined
  firstIndex(): number
  lastIndex(): number
  /** The latest snapshot (index 0, term 0, empty data when none was ever taken). */
  snapshot(): Snapshot

  /**
   * Append entries whose first index is at most lastIndex()+1, first deleting every stored entry
   * at or after that index (the conflicting suffix). Entries at or below the snapshot are skipped.
   */
  append(entries: Entry[]): void
  /** Replace the hard state. */
  setHardState(hardState: HardState): void
  /** Replace the whole log by a snapshot received from the leader: entries are dropped. */
  applySnapshot(snapshot: Snapshot): void
  /**
   * Keep `snapshot` (taken by this peer's application, index <= lastIndex()) and drop the
   * entries up to and including its index. Called by `Raft.compact`.
   */
  compact(snapshot: Snapshot): void
}

/** An empty snapshot: nothing compacted yet. */
export function emptySnapshot(): Snapshot {
  return { index: 0, term: 0, conf: { voters: [], learners: [] }, data: new Uint8Array(0) }
}

/**
 * Write the initial configuration of a brand-new cluster into empty storage: one committed
 * `conf` entry (term 1) per initial voter, exactly like etcd's bootstrap. Every initial voter must
 * be bootstrapped with the same list; peers that join later start from empty storage and receive
 * these entries (or a snapshot) from the leader.
 */
export function bootstrap(storage: RaftStorage, voters: readonly string[]): void {
  if (voters.length === 0) throw new RangeError('bootstrap needs at least one voter')
  if (new Set(voters).size !== voters.length) throw new RangeError('bootstrap voters must be distinct')
  const { hardState } = storage.initialState()
  if (storage.lastIndex() !== 0 || storage.firstIndex() !== 1 || hardState.term !== 0) {
    throw new Error('bootstrap needs empty storage: this peer already has Raft state')
  }
  const entries: Entry[] = voters.map((id, i) => ({
    term: 1,
    index: i + 1,
    type: 'conf',
    data: encodeConfChange({ type: 'add-voter', id }),
  }))
  storage.append(entries)
  storage.setHardState({ term: 1, vote: null, commit: entries.length })
}
