import { SkeinError } from '../core/errors.ts'
import { storeError, type Store } from '../storage/store.ts'
import { isValidKey, isValidNodeId, LIMITS } from './messages.ts'
import type { Effect, Entry, PersistedState, ReplicaMeta } from './types.ts'

/**
 * The desired-state replica's durable side, in the peer's SQLite store (src/storage/store.ts):
 * tables `state_entries` (one row per key, tombstones included), `state_history` (the kept
 * revisions of each key, oldest first by `seq`) and `state_meta` (the replica's bookkeeping).
 *
 * Durability: `persist(effects)` carries out every persistence effect of one replica call
 * (changed, history, dropped, meta) in ONE transaction, fsynced before it returns. The shell
 * acknowledges the client and sends only after that: "persist before send".
 *
 * `load()` reads everything back for `createStateReplica({ restore })` and refuses malformed rows
 * with a SkeinError 'state-store-corrupt'. Nothing is repaired silently.
 */

const MIGRATIONS = [
  `CREATE TABLE state_entries (key TEXT PRIMARY KEY, wall INTEGER NOT NULL, logical INTEGER NOT NULL, node TEXT NOT NULL, revision INTEGER NOT NULL, value BLOB) STRICT;
   CREATE TABLE state_history (key TEXT NOT NULL, seq INTEGER NOT NULL, wall INTEGER NOT NULL, logical INTEGER NOT NULL, node TEXT NOT NULL, revision INTEGER NOT NULL, value BLOB, PRIMARY KEY (key, seq)) STRICT;
   CREATE TABLE state_meta (id INTEGER PRIMARY KEY CHECK (id = 1), status TEXT NOT NULL, alive_at INTEGER NOT NULL, joining_since INTEGER, clock_wall INTEGER NOT NULL, clock_logical INTEGER NOT NULL) STRICT;`,
]

const isCounter = (v: unknown, below = Number.MAX_SAFE_INTEGER + 1): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v < below

/** The replica's storage over the store. Open it with {@link openSqliteStateStorage}. */
export class SqliteStateStorage {
  readonly #store: Store

  constructor(store: Store) {
    this.#store = store
    this.#store.guard('creating the desired-state tables', () => store.migrate('state', MIGRATIONS))
  }

  /** True if this store has never held desired state (no entries, no meta): a fresh replica. */
  isEmpty(): boolean {
    return this.#store.guard('reading the desired state', () => {
      const e = this.#store.prepare('SELECT count(*) AS n FROM state_entries').get() as { n: number }
      const m = this.#store.prepare('SELECT count(*) AS n FROM state_meta').get() as { n: number }
      return e.n === 0 && m.n === 0
    })
  }

  /** Everything persisted, checked row by row. */
  load(): PersistedState {
    return this.#store.guard('loading the desired state', () => {
      const entries = (this.#store.prepare('SELECT key, wall, logical, node, revision, value FROM state_entries ORDER BY key').all() as Record<string, unknown>[]).map((r) => this.#entry(r, 'entry'))
      const byKey = new Map<string, Entry[]>()
      for (const r of this.#store.prepare('SELECT key, wall, logical, node, revision, value FROM state_history ORDER BY key, seq').all() as Record<string, unknown>[]) {
        const e = this.#entry(r, 'history row')
        let list = byKey.get(e.key)
        if (list === undefined) byKey.set(e.key, (list = []))
        list.push(e)
      }
      const m = this.#store.prepare('SELECT status, alive_at, joining_since, clock_wall, clock_logical FROM state_meta WHERE id = 1').get() as Record<string, unknown> | undefined
      let meta: ReplicaMeta | undefined
      if (m !== undefined) {
        const js = m.joining_since
        if ((m.status !== 'current' && m.status !== 'joining') || !isCounter(m.alive_at) || !(js === null || isCounter(js)) || !isCounter(m.clock_wall, 2 ** 48) || !isCounter(m.clock_logical, 2 ** 16)) {
          this.#corrupt('the replica meta row is malformed')
        }
        meta = { status: m.status, aliveAt: m.alive_at, joiningSince: js ?? undefined, clock: { wall: m.clock_wall, logical: m.clock_logical } }
      }
      return { entries, history: [...byKey.values()], meta }
    })
  }

  /**
   * Carry out the persistence effects of one replica call in one transaction (durable when this
   * returns). Network and log effects are ignored here.
   */
  persist(effects: readonly Effect[]): void {
    if (!effects.some((e) => e.type === 'changed' || e.type === 'history' || e.type === 'dropped' || e.type === 'meta')) return
    try {
      this.#store.transaction(() => {
        for (const e of effects) {
          if (e.type === 'changed') this.#putEntry(e.entry)
          else if (e.type === 'history') this.#putHistory(e.key, e.entries)
          else if (e.type === 'dropped') {
            this.#store.prepare('DELETE FROM state_entries WHERE key = ?').run(e.key)
            this.#store.prepare('DELETE FROM state_history WHERE key = ?').run(e.key)
          } else if (e.type === 'meta') this.#putMeta(e.meta)
        }
      })
    } catch (err) {
      throw storeError(this.#store.path, err, 'persisting the desired state')
    }
  }

  #putEntry(e: Entry): void {
    this.#store.prepare(
      'INSERT INTO state_entries (key, wall, logical, node, revision, value) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET wall = excluded.wall, logical = excluded.logical, node = excluded.node, revision = excluded.revision, value = excluded.value',
    ).run(e.key, e.hlc.wall, e.hlc.logical, e.hlc.node, e.revision, e.value)
  }

  #putHistory(key: string, list: readonly Entry[]): void {
    this.#store.prepare('DELETE FROM state_history WHERE key = ?').run(key)
    const insert = this.#store.prepare('INSERT INTO state_history (key, seq, wall, logical, node, revision, value) VALUES (?, ?, ?, ?, ?, ?, ?)')
    list.forEach((e, i) => insert.run(key, i, e.hlc.wall, e.hlc.logical, e.hlc.node, e.revision, e.value))
  }

  #putMeta(m: ReplicaMeta): void {
    this.#store.prepare(
      'INSERT INTO state_meta (id, status, alive_at, joining_since, clock_wall, clock_logical) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status, alive_at = excluded.alive_at, joining_since = excluded.joining_since, clock_wall = excluded.clock_wall, clock_logical = excluded.clock_logical',
    ).run(m.status, m.aliveAt, m.joiningSince ?? null, m.clock.wall, m.clock.logical)
  }

  #entry(r: Record<string, unknown>, what: string): Entry {
    const { key, wall, logical, node, revision, value } = r
    if (typeof key !== 'string' || !isValidKey(key)) this.#corrupt(`a ${what} has an invalid key`)
    if (!isCounter(wall, 2 ** 48) || !isCounter(logical, 2 ** 16) || typeof node !== 'string' || !isValidNodeId(node) || !isCounter(revision)) {
      this.#corrupt(`the ${what} of ${JSON.stringify(key)} has an invalid clock, writer or revision`)
    }
    if (!(value === null || (value instanceof Uint8Array && value.byteLength <= LIMITS.value))) this.#corrupt(`the ${what} of ${JSON.stringify(key)} has an invalid value`)
    return { key, hlc: { wall, logical, node }, value: value === null ? null : new Uint8Array(value), revision }
  }



  #corrupt(why: string): never {
    throw new SkeinError('state-store-corrupt', `the desired state in ${this.#store.path} is inconsistent: ${why}`, {
      hint: 'skein leaves it as it is: restore the data dir from a backup, or move it aside and join this host afresh (it catches up from its peers)',
    })
  }
}

/** Open the desired-state storage in `store` (creating its tables on first use). */
export function openSqliteStateStorage(store: Store): SqliteStateStorage {
  return new SqliteStateStorage(store)
}
