import { SkeinError, errorMessage } from '../core/errors.ts'
import { storeError, type Store } from '../storage/store.ts'
import { MAX_PEER_ID_LENGTH } from './limits.ts'
import { emptySnapshot, type RaftStorage } from './storage.ts'
import type { ConfState, Entry, EntryType, HardState, Snapshot } from './types.ts'

/**
 * RaftStorage in the peer's SQLite store (src/storage/store.ts): tables `raft_hard_state`,
 * `raft_entries` (one row per entry, index as the primary key), `raft_snapshot` and `raft_fence`.
 *
 * Durability: `persist` writes one Ready (snapshot, entries, hard state, fence) in ONE
 * transaction, which the store fsyncs before it returns (WAL, synchronous=FULL). The shell sends
 * the Ready's messages only after `persist` returns: that is "persist before send".
 *
 * Opening checks the stored state and refuses, with a SkeinError 'raft-store-corrupt', anything
 * inconsistent (gaps in the indexes, entries not after the snapshot, terms going back, a commit
 * index beyond the log, malformed rows). Nothing is ever reset or repaired silently.
 *
 * The hard state, the snapshot and the first and last index are cached in memory (this is the
 * only writer); entries and terms are read from SQLite.
 */

const MIGRATIONS = [
  `CREATE TABLE raft_hard_state (id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, vote TEXT, commit_index INTEGER NOT NULL) STRICT;
   CREATE TABLE raft_entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL) STRICT;
   CREATE TABLE raft_snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, term INTEGER NOT NULL, conf TEXT NOT NULL, data BLOB NOT NULL) STRICT;
   CREATE TABLE raft_fence (id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, idx INTEGER NOT NULL) STRICT;`,
]

/** The newest decision this peer has applied: see Fence in commands.ts. */
export interface FenceMark {
  term: number
  index: number
}

/** What one Ready asks to persist, plus the fence mark to record with it. */
export interface PersistBatch {
  snapshot?: Snapshot | undefined
  entries: Entry[]
  hardState?: HardState | undefined
  fence?: FenceMark | undefined
}

const ENTRY_TYPES: readonly string[] = ['normal', 'conf', 'empty']

const isCounter = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/** A RaftStorage over the store. Open it with `openSqliteRaftStorage`. */
export class SqliteRaftStorage implements RaftStorage {
  readonly #store: Store
  #hardState: HardState = { term: 0, vote: null, commit: 0 }
  #snapshot: Snapshot = emptySnapshot()
  #last = 0
  #fence: FenceMark = { term: 0, index: 0 }

  constructor(store: Store) {
    this.#store = store
    this.#store.guard('creating the Raft tables', () => store.migrate('raft', MIGRATIONS))
    this.#load()
  }

  // ---- reads (the core's side) ----

  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: { ...this.#hardState }, conf: copyConf(this.#snapshot.conf) }
  }

  entries(lo: number, hi: number): Entry[] {
    if (lo < this.firstIndex() || hi > this.#last + 1 || lo > hi) {
      throw new RangeError(`entries [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.#last + 1})`)
    }
    if (lo === hi) return []
    const rows = this.#store.guard('reading Raft entries', () => this.#store.prepare('SELECT idx, term, type, data FROM raft_entries WHERE idx >= ? AND idx < ? ORDER BY idx').all(lo, hi))
    if (rows.length !== hi - lo) this.#corrupt(`entries [${lo}, ${hi}) should be stored, ${rows.length} are`)
    return rows.map((r, k) => this.#entry(r, lo + k))
  }

  term(i: number): number | undefined {
    if (i === this.#snapshot.index) return this.#snapshot.term
    if (i < this.#snapshot.index || i > this.#last) return undefined
    const row = this.#store.guard('reading a Raft term', () => this.#store.prepare('SELECT term FROM raft_entries WHERE idx = ?').get(i)) as { term: unknown } | undefined
    if (row === undefined || !isCounter(row.term)) this.#corrupt(`entry ${i} is missing or has no valid term`)
    return row.term
  }

  firstIndex(): number {
    return this.#snapshot.index + 1
  }

  lastIndex(): number {
    return this.#last
  }

  snapshot(): Snapshot {
    return this.#snapshot
  }

  /** The stored hard state. */
  hardState(): HardState {
    return { ...this.#hardState }
  }

  /** The stored fence mark (the newest applied decision), { term: 0, index: 0 } when none. */
  fence(): FenceMark {
    return { ...this.#fence }
  }

  // ---- writes (the shell's side) ----

  append(entries: Entry[]): void {
    this.#write('appending Raft entries', () => this.#append(entries))
  }

  setHardState(hardState: HardState): void {
    this.#write('saving the Raft hard state', () => this.#setHardState(hardState))
  }

  applySnapshot(snapshot: Snapshot): void {
    this.#write('installing a Raft snapshot', () => this.#applySnapshot(snapshot))
  }

  compact(snapshot: Snapshot): void {
    if (snapshot.index <= this.#snapshot.index) return
    if (snapshot.index > this.#last) throw new RangeError(`compact to ${snapshot.index} beyond the last index ${this.#last}`)
    this.#write('compacting the Raft log', () => {
      this.#store.prepare('DELETE FROM raft_entries WHERE idx <= ?').run(snapshot.index)
      this.#putSnapshot(snapshot)
    })
  }

  /** Persist one Ready (and the fence mark) in one transaction: durable when this returns. */
  persist(batch: PersistBatch): void {
    if (batch.snapshot === undefined && batch.entries.length === 0 && batch.hardState === undefined && batch.fence === undefined) return
    this.#write('persisting Raft state', () => {
      if (batch.snapshot !== undefined) this.#applySnapshot(batch.snapshot)
      if (batch.entries.length > 0) this.#append(batch.entries)
      if (batch.hardState !== undefined) this.#setHardState(batch.hardState)
      if (batch.fence !== undefined) this.#setFence(batch.fence)
    })
  }

  /** Run several writes (for example `bootstrap`) in one transaction. */
  transaction<T>(fn: () => T): T {
    return this.#write('writing Raft state', fn)
  }

  // ---- internals ----

  #append(entries: Entry[]): void {
    const fresh = entries.filter((e) => e.index > this.#snapshot.index)
    const first = fresh[0]
    if (first === undefined) return
    if (first.index > this.#last + 1) throw new RangeError(`append at ${first.index} leaves a gap after ${this.#last}`)
    this.#store.prepare('DELETE FROM raft_entries WHERE idx >= ?').run(first.index)
    const insert = this.#store.prepare('INSERT INTO raft_entries (idx, term, type, data) VALUES (?, ?, ?, ?)')
    for (const e of fresh) insert.run(e.index, e.term, e.type, e.data)
    this.#last = first.index + fresh.length - 1
  }

  #setHardState(hs: HardState): void {
    this.#store.prepare('INSERT INTO raft_hard_state (id, term, vote, commit_index) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET term = excluded.term, vote = excluded.vote, commit_index = excluded.commit_index')
      .run(hs.term, hs.vote, hs.commit)
    this.#hardState = { term: hs.term, vote: hs.vote, commit: hs.commit }
  }

  #applySnapshot(snapshot: Snapshot): void {
    this.#store.prepare('DELETE FROM raft_entries').run()
    this.#putSnapshot(snapshot)
    this.#last = snapshot.index
  }

  #putSnapshot(s: Snapshot): void {
    this.#store.prepare('INSERT INTO raft_snapshot (id, idx, term, conf, data) VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET idx = excluded.idx, term = excluded.term, conf = excluded.conf, data = excluded.data')
      .run(s.index, s.term, JSON.stringify(s.conf), s.data)
    this.#snapshot = { index: s.index, term: s.term, conf: copyConf(s.conf), data: s.data }
  }

  #setFence(f: FenceMark): void {
    this.#store.prepare('INSERT INTO raft_fence (id, term, idx) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET term = excluded.term, idx = excluded.idx').run(f.term, f.index)
    this.#fence = { term: f.term, index: f.index }
  }

  /** A transaction; if it fails, the caches are reloaded from what is really stored. */
  #write<T>(doing: string, fn: () => T): T {
    try {
      return this.#store.transaction(fn)
    } catch (err) {
      try {
        this.#load()
      } catch {
        // The original error matters more.
      }
      if (err instanceof RangeError || err instanceof SkeinError) throw err
      throw storeError(this.#store.path, err, doing)
    }
  }



  #corrupt(why: string): never {
    throw new SkeinError('raft-store-corrupt', `the Raft state in ${this.#store.path} is inconsistent: ${why}`, {
      hint: 'skein leaves it as it is: restore the data dir from a backup, or move it aside and join this host afresh (then `skein voters remove` its old name on a member)',
    })
  }

  #entry(r: Record<string, unknown>, expectIndex: number): Entry {
    const { idx, term, type, data } = r
    if (idx !== expectIndex || !isCounter(term) || term < 1 || typeof type !== 'string' || !ENTRY_TYPES.includes(type) || !(data instanceof Uint8Array)) {
      this.#corrupt(`entry ${expectIndex} is malformed`)
    }
    return { index: idx, term, type: type as EntryType, data }
  }

  /** Read and check everything cached. */
  #load(): void {
    this.#store.guard('loading the Raft state', () => {
      const hs = this.#store.prepare('SELECT term, vote, commit_index FROM raft_hard_state WHERE id = 1').get() as Record<string, unknown> | undefined
      let hardState: HardState = { term: 0, vote: null, commit: 0 }
      if (hs !== undefined) {
        const vote = hs.vote
        if (!isCounter(hs.term) || !isCounter(hs.commit_index) || !(vote === null || (typeof vote === 'string' && vote.length > 0 && vote.length <= MAX_PEER_ID_LENGTH))) {
          this.#corrupt('the hard state row is malformed')
        }
        hardState = { term: hs.term, vote, commit: hs.commit_index }
      }
      const sn = this.#store.prepare('SELECT idx, term, conf, data FROM raft_snapshot WHERE id = 1').get() as Record<string, unknown> | undefined
      let snapshot = emptySnapshot()
      if (sn !== undefined) {
        if (!isCounter(sn.idx) || !isCounter(sn.term) || typeof sn.conf !== 'string' || !(sn.data instanceof Uint8Array)) this.#corrupt('the snapshot row is malformed')
        if (sn.idx > 0 && sn.term < 1) this.#corrupt(`the snapshot at index ${sn.idx} has term 0`)
        snapshot = { index: sn.idx, term: sn.term, conf: this.#parseConf(sn.conf), data: sn.data }
      }
      const agg = this.#store.prepare('SELECT min(idx) AS lo, max(idx) AS hi, count(*) AS n FROM raft_entries').get() as { lo: number | null; hi: number | null; n: number }
      let last = snapshot.index
      if (agg.n > 0) {
        const lo = agg.lo ?? 0
        const hi = agg.hi ?? 0
        if (lo !== snapshot.index + 1) this.#corrupt(`the log starts at index ${lo}, the snapshot ends at ${snapshot.index}`)
        if (hi - lo + 1 !== agg.n) this.#corrupt(`the log has gaps: ${agg.n} entries between indexes ${lo} and ${hi}`)
        const bad = this.#store.prepare("SELECT count(*) AS n FROM raft_entries WHERE type NOT IN ('normal', 'conf', 'empty') OR typeof(term) != 'integer' OR term < 1 OR typeof(data) != 'blob'").get() as { n: number }
        if (bad.n > 0) this.#corrupt(`${bad.n} log entries are malformed`)
        const back = this.#store.prepare('SELECT count(*) AS n FROM raft_entries a JOIN raft_entries b ON b.idx = a.idx + 1 WHERE b.term < a.term').get() as { n: number }
        if (back.n > 0) this.#corrupt('terms go backwards in the log')
        const firstTerm = (this.#store.prepare('SELECT term FROM raft_entries WHERE idx = ?').get(lo) as { term: number }).term
        if (firstTerm < snapshot.term) this.#corrupt(`entry ${lo} has term ${firstTerm}, older than the snapshot's ${snapshot.term}`)
        const lastTerm = (this.#store.prepare('SELECT term FROM raft_entries WHERE idx = ?').get(hi) as { term: number }).term
        if (lastTerm > hardState.term) this.#corrupt(`the log holds term ${lastTerm}, newer than the stored current term ${hardState.term}`)
        last = hi
      }
      if (snapshot.term > hardState.term && snapshot.index > 0) this.#corrupt(`the snapshot has term ${snapshot.term}, newer than the stored current term ${hardState.term}`)
      if (hardState.commit > last) this.#corrupt(`the commit index ${hardState.commit} is beyond the last stored index ${last}`)
      const fe = this.#store.prepare('SELECT term, idx FROM raft_fence WHERE id = 1').get() as Record<string, unknown> | undefined
      let fence: FenceMark = { term: 0, index: 0 }
      if (fe !== undefined) {
        if (!isCounter(fe.term) || !isCounter(fe.idx)) this.#corrupt('the fence row is malformed')
        fence = { term: fe.term, index: fe.idx }
      }
      this.#hardState = hardState
      this.#snapshot = snapshot
      this.#last = last
      this.#fence = fence
    })
  }

  #parseConf(text: string): ConfState {
    let raw: unknown
    try {
      raw = JSON.parse(text)
    } catch (err) {
      this.#corrupt(`the snapshot's configuration is not JSON (${errorMessage(err)})`)
    }
    const ids = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0 && x.length <= MAX_PEER_ID_LENGTH)
    if (typeof raw !== 'object' || raw === null) this.#corrupt("the snapshot's configuration is malformed")
    const { voters, learners } = raw as { voters?: unknown; learners?: unknown }
    if (!ids(voters) || !ids(learners)) this.#corrupt("the snapshot's configuration is malformed")
    return { voters: voters.slice(), learners: learners.slice() }
  }
}

function copyConf(conf: ConfState): ConfState {
  return { voters: conf.voters.slice(), learners: conf.learners.slice() }
}

/** Open the Raft storage in `store` (creating its tables on first use). Throws SkeinError on inconsistent state. */
export function openSqliteRaftStorage(store: Store): SqliteRaftStorage {
  return new SqliteRaftStorage(store)
}
