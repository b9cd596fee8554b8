import { chmodSync, closeSync, constants, openSync } from 'node:fs'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { Packr } from 'msgpackr'
import type { z } from 'zod'
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'

/**
 * Each peer's embedded store: one SQLite file (`node:sqlite`, no native addon).
 *
 * Durability rule: the file runs in WAL mode with `synchronous=FULL`. Every write (a `put`, a
 * `delete`, or a whole `transaction`) is fsynced to the write-ahead log before the call returns,
 * so once it returns the write survives a crash or a power cut. A caller that must "persist
 * before send" (Raft's term, vote and log) therefore writes first and sends after the call.
 * Writes are synchronous and cost one fsync each: batch related writes in one `transaction`.
 *
 * Corruption is never papered over: opening runs `PRAGMA quick_check`, and any corrupt or
 * unreadable file is reported as a SkeinError ('store-corrupt', 'store-unreadable', ...) that
 * says which file and what to do. The store never deletes or recreates a file by itself.
 *
 * Schema seam: the `meta` table holds small named values (msgpack). Later modules (the Raft
 * log, desired state) add their own tables through `migrate(component, steps)` and query them
 * with `prepare(sql)`.
 */
export interface Store {
  /** The file this store lives in. */
  readonly path: string
  /** The value stored under `key`, or undefined. With a schema, a value that fails it throws 'store-invalid'. */
  get<T>(key: string, schema?: z.ZodType<T>): T | undefined
  /** Store `value` (anything msgpack can carry; not undefined) under `key`, durably. */
  put(key: string, value: unknown): void
  /** Remove `key`; true if it was there. */
  delete(key: string): boolean
  /** Keys starting with `prefix` (all keys without one), sorted. */
  keys(prefix?: string): string[]
  /**
   * Run `fn` in one transaction: all its writes commit together (one fsync), or none do if it
   * throws. Nested calls become savepoints. `fn` must be synchronous.
   */
  transaction<T>(fn: () => T): T
  /**
   * Bring `component`'s tables up to date: runs the SQL `steps` not yet applied (step i brings
   * the component to version i + 1), each in a transaction. Returns the resulting version.
   */
  migrate(component: string, steps: readonly string[]): number
  /** A prepared statement on the underlying database, for modules that own their own tables (cached per SQL text). */
  prepare(sql: string): StatementSync
  /** Run `fn`, turning SQLite errors into SkeinErrors that name the file and say what was being done. */
  guard<T>(doing: string, fn: () => T): T
  /** Close the file. Idempotent. */
  close(): void
}

/** Options for `openStore`. */
export interface StoreOptions {
  logger: Logger
  /** Integrity check at open: 'quick' (default, `PRAGMA quick_check`) or 'none'. */
  check?: 'quick' | 'none'
  /** How long to wait for another connection's lock before giving up, in ms (default 2000). */
  busyTimeoutMs?: number
}

/** The store file's own format version (PRAGMA user_version). */
const FORMAT_VERSION = 1

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', moreTypes: false })

const CORE_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT`,
  `CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL) STRICT`,
]

/**
 * Turn an error from SQLite into a SkeinError that names the file. Exported for tests.
 * SQLite result codes: 3 PERM, 5 BUSY, 8 READONLY, 10 IOERR, 11 CORRUPT, 13 FULL, 14 CANTOPEN, 26 NOTADB.
 */
export function storeError(path: string, err: unknown, doing: string): SkeinError {
  if (err instanceof SkeinError) return err
  const code = typeof err === 'object' && err !== null && 'errcode' in err && typeof err.errcode === 'number' ? err.errcode & 0xff : -1
  const detail = errorMessage(err)
  const untouched = 'skein leaves the file as it is: restore it from a backup, or move it aside to start this peer afresh'
  switch (code) {
    case 11:
    case 26:
      return new SkeinError('store-corrupt', `the store ${path} is corrupt (${detail})`, { hint: untouched, cause: err })
    case 3:
    case 8:
    case 14:
      return new SkeinError('store-unreadable', `cannot open the store ${path} (${detail}) while ${doing}`, { hint: 'check that the data dir exists and belongs to the user running skein', cause: err })
    case 5:
      return new SkeinError('store-busy', `the store ${path} is locked by another process`, { hint: 'is another skein agent using this data dir?', cause: err })
    case 13:
      return new SkeinError('store-full', `the disk holding ${path} is full`, { cause: err })
    case 10:
      return new SkeinError('store-io', `I/O error on the store ${path} while ${doing} (${detail})`, { cause: err })
    default:
      return new SkeinError('store-error', `store ${path}: ${doing} failed (${detail})`, { cause: err })
  }
}

/** Open (creating if needed) the store at `path`. Throws SkeinError on a corrupt or unreadable file. */
export function openStore(path: string, opts: StoreOptions): Store {
  const log = opts.logger.child({ component: 'store' })
  try {
    // Create the file private first: SQLite gives the -wal and -shm files the same mode.
    closeSync(openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600))
  } catch (err) {
    const why = typeof err === 'object' && err !== null && 'code' in err && err.code === 'EACCES' ? 'permission denied' : errorMessage(err)
    throw new SkeinError('store-unreadable', `cannot open the store ${path} (${why})`, { hint: 'check that the data dir exists and belongs to the user running skein', cause: err })
  }
  let db: DatabaseSync
  try {
    db = new DatabaseSync(path, { timeout: opts.busyTimeoutMs ?? 2000 })
  } catch (err) {
    throw storeError(path, err, 'opening it')
  }
  try {
    // journal_mode reads the header first: a file that is not SQLite fails here.
    db.exec('PRAGMA journal_mode = WAL')
    db.exec('PRAGMA synchronous = FULL')
    db.exec('PRAGMA foreign_keys = ON')
    if ((opts.check ?? 'quick') === 'quick') {
      const rows = db.prepare('PRAGMA quick_check').all() as { quick_check: string }[]
      const problems = rows.map((r) => r.quick_check).filter((r) => r !== 'ok')
      if (problems.length > 0) {
        throw new SkeinError('store-corrupt', `the store ${path} is corrupt (integrity check: ${problems.slice(0, 3).join('; ')})`, {
          hint: 'skein leaves the file as it is: restore it from a backup, or move it aside to start this peer afresh',
        })
      }
    }
    const row = db.prepare('PRAGMA user_version').get() as { user_version: number } | undefined
    const version = row?.user_version ?? 0
    if (version > FORMAT_VERSION) {
      throw new SkeinError('store-too-new', `the store ${path} was written by a newer skein (format ${version}, this build knows ${FORMAT_VERSION})`, {
        hint: 'run a newer skein, or restore a backup made by this version',
      })
    }
    db.exec('BEGIN IMMEDIATE')
    try {
      for (const sql of CORE_SCHEMA) db.exec(sql)
      if (version < FORMAT_VERSION) db.exec(`PRAGMA user_version = ${FORMAT_VERSION}`)
      db.exec('COMMIT')
    } catch (err) {
      db.exec('ROLLBACK')
      throw err
    }
  } catch (err) {
    db.close()
    throw storeError(path, err, 'opening it')
  }
  try {
    chmodSync(path, 0o600)
  } catch (err) {
    log.warn({ err: errorMessage(err) }, 'could not make the store file private (chmod 600)')
  }
  log.debug({ path }, 'store open')
  return wrap(db, path)
}

function wrap(db: DatabaseSync, path: string): Store {
  let open = true
  let depth = 0
  const stmts = new Map<string, StatementSync>()
  const stmt = (sql: string): StatementSync => {
    let s = stmts.get(sql)
    if (s === undefined) {
      s = db.prepare(sql)
      stmts.set(sql, s)
    }
    return s
  }
  const guard = <T>(doing: string, fn: () => T): T => {
    if (!open) throw new SkeinError('store-closed', `the store ${path} is closed`)
    try {
      return fn()
    } catch (err) {
      throw storeError(path, err, doing)
    }
  }

  const store: Store = {
    path,
    get<T>(key: string, schema?: z.ZodType<T>): T | undefined {
      const row = guard(`reading ${key}`, () => stmt('SELECT value FROM meta WHERE key = ?').get(key)) as { value: Uint8Array } | undefined
      if (row === undefined) return undefined
      let value: unknown
      try {
        value = packr.unpack(row.value)
      } catch (err) {
        throw new SkeinError('store-corrupt', `the store ${path} holds an undecodable value under '${key}' (${errorMessage(err)})`, { cause: err })
      }
      if (schema === undefined) return value as T
      const parsed = schema.safeParse(value)
      if (!parsed.success) {
        const first = parsed.error.issues[0]
        const where = first?.path.length ? first.path.join('.') : '(root)'
        throw new SkeinError('store-invalid', `the store ${path} holds an unexpected value under '${key}' (${where}: ${first?.message ?? 'invalid'})`)
      }
      return parsed.data
    },
    put(key: string, value: unknown): void {
      if (value === undefined) throw new TypeError(`store.put('${key}'): value is undefined (use delete)`)
      const bytes = packr.pack(value)
      guard(`writing ${key}`, () => stmt('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, bytes))
    },
    delete(key: string): boolean {
      const res = guard(`deleting ${key}`, () => stmt('DELETE FROM meta WHERE key = ?').run(key))
      return Number(res.changes) > 0
    },
    keys(prefix?: string): string[] {
      const rows = guard('listing keys', () =>
        prefix === undefined || prefix === ''
          ? stmt('SELECT key FROM meta ORDER BY key').all()
          : stmt("SELECT key FROM meta WHERE substr(key, 1, length(?)) = ? ORDER BY key").all(prefix, prefix),
      ) as { key: string }[]
      return rows.map((r) => r.key)
    },
    transaction<T>(fn: () => T): T {
      const name = `sp${depth}`
      guard('starting a transaction', () => db.exec(depth === 0 ? 'BEGIN IMMEDIATE' : `SAVEPOINT ${name}`))
      depth++
      let result: T
      try {
        result = fn()
        if (result instanceof Promise) throw new TypeError('store.transaction(fn): fn must be synchronous')
      } catch (err) {
        depth--
        try {
          db.exec(depth === 0 ? 'ROLLBACK' : `ROLLBACK TO ${name}; RELEASE ${name}`)
        } catch {
          // SQLite may already have rolled back (for example on SQLITE_FULL); the first error matters.
        }
        throw err
      }
      depth--
      guard('committing', () => db.exec(depth === 0 ? 'COMMIT' : `RELEASE ${name}`))
      return result
    },
    migrate(component: string, steps: readonly string[]): number {
      const row = guard('reading schema versions', () => stmt('SELECT version FROM schema_versions WHERE component = ?').get(component)) as { version: number } | undefined
      const current = row?.version ?? 0
      if (current > steps.length) {
        throw new SkeinError('store-too-new', `the store ${path} has ${component} tables at version ${current}, newer than this build (${steps.length})`, {
          hint: 'run a newer skein',
        })
      }
      for (let v = current; v < steps.length; v++) {
        store.transaction(() => {
          guard(`migrating ${component} to version ${v + 1}`, () => db.exec(steps[v] as string))
          guard('recording the schema version', () =>
            stmt('INSERT INTO schema_versions (component, version) VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET version = excluded.version').run(component, v + 1),
          )
        })
      }
      return steps.length
    },
    prepare(sql: string): StatementSync {
      return guard('preparing a statement', () => stmt(sql))
    },
    guard,
    close(): void {
      if (!open) return
      open = false
      stmts.clear()
      try {
        db.close()
      } catch (err) {
        throw storeError(path, err, 'closing it')
      }
    },
  }
  return store
}
