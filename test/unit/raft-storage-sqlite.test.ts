import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync, ftruncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createRaft } from '../../src/consensus/raft.ts'
import { bootstrap } from '../../src/consensus/storage.ts'
import { openSqliteRaftStorage, type SqliteRaftStorage } from '../../src/consensus/storage-sqlite.ts'
import type { Entry } from '../../src/consensus/types.ts'
import { SkeinError } from '../../src/core/errors.ts'
import { silentLogger } from '../../src/core/logger.ts'
import { seededRng } from '../../src/core/rng.ts'
import { openStore, type Store } from '../../src/storage/store.ts'
import { describeRaftStorage } from './raft-storage-contract.ts'

const root = mkdtempSync(join(tmpdir(), 'skein-raft-sqlite-'))
const stores: Store[] = []
let n = 0
const newPath = (): string => join(root, `raft-${++n}.db`)
const open = (path: string): Store => {
  const s = openStore(path, { logger: silentLogger() })
  stores.push(s)
  return s
}
const closeAll = (): void => {
  for (const s of stores.splice(0)) s.close()
}
afterAll(() => {
  closeAll()
  rmSync(root, { recursive: true, force: true })
})

describeRaftStorage('sqlite', () => openSqliteRaftStorage(open(newPath())))

const e = (index: number, term: number, type: Entry['type'] = 'normal'): Entry => ({ index, term, type, data: new Uint8Array([index & 0xff, 9]) })

/** Expect a SkeinError with `code` whose message matches `re`. */
function expectSkeinError(fn: () => unknown, code: string, re: RegExp): void {
  let err: unknown
  try {
    fn()
  } catch (x) {
    err = x
  }
  expect(err).toBeInstanceOf(SkeinError)
  expect((err as SkeinError).code).toBe(code)
  expect((err as SkeinError).message).toMatch(re)
}

describe('sqlite Raft storage across restarts', () => {
  afterEach(closeAll)

  it('reopens with the same hard state, entries, snapshot and fence', () => {
    const path = newPath()
    let s: SqliteRaftStorage = openSqliteRaftStorage(open(path))
    s.persist({ entries: [e(1, 1), e(2, 1), e(3, 2, 'conf')], hardState: { term: 2, vote: 'p2', commit: 2 }, fence: { term: 1, index: 2 } })
    s.compact({ index: 1, term: 1, conf: { voters: ['a'], learners: ['b'] }, data: new Uint8Array([1, 2, 3]) })
    closeAll()
    s = openSqliteRaftStorage(open(path))
    expect(s.initialState()).toEqual({ hardState: { term: 2, vote: 'p2', commit: 2 }, conf: { voters: ['a'], learners: ['b'] } })
    expect([s.firstIndex(), s.lastIndex(), s.term(1), s.term(3)]).toEqual([2, 3, 1, 2])
    expect(s.entries(2, 4)).toEqual([e(2, 1), e(3, 2, 'conf')])
    expect(s.snapshot()).toEqual({ index: 1, term: 1, conf: { voters: ['a'], learners: ['b'] }, data: new Uint8Array([1, 2, 3]) })
    expect(s.fence()).toEqual({ term: 1, index: 2 })
  })

  it('persists a whole Ready in one transaction: a failure leaves nothing of it', () => {
    const path = newPath()
    const s = openSqliteRaftStorage(open(path))
    s.persist({ entries: [e(1, 1)], hardState: { term: 1, vote: null, commit: 1 } })
    s.persist({ entries: [e(2, 1)], hardState: { term: 1, vote: null, commit: 2 } })
    // The snapshot is written first, then the entries leave a gap: nothing of this batch is kept.
    expect(() => s.persist({ snapshot: { index: 5, term: 1, conf: { voters: ['a'], learners: [] }, data: new Uint8Array(0) }, entries: [e(9, 1)], hardState: { term: 3, vote: null, commit: 9 } })).toThrow(RangeError)
    expect([s.firstIndex(), s.lastIndex(), s.initialState().hardState.term]).toEqual([1, 2, 1])
    closeAll()
    const t = openSqliteRaftStorage(open(path))
    expect([t.firstIndex(), t.lastIndex(), t.initialState().hardState]).toEqual([1, 2, { term: 1, vote: null, commit: 2 }])
  })

  it('a restarted core resumes from the sqlite state', () => {
    const path = newPath()
    const s = openSqliteRaftStorage(open(path))
    s.transaction(() => bootstrap(s, ['solo']))
    let raft = createRaft({ id: 'solo', storage: s, rng: seededRng(1) })
    for (let i = 0; i < 30 && raft.status().role !== 'leader'; i++) {
      raft.tick()
      while (raft.hasReady()) {
        const rd = raft.ready()
        s.persist(rd)
        raft.advance(rd)
      }
    }
    expect(raft.status().role).toBe('leader')
    const p = raft.propose(new Uint8Array([42]))
    expect(p.ok).toBe(true)
    while (raft.hasReady()) {
      const rd = raft.ready()
      s.persist(rd)
      raft.advance(rd)
    }
    const before = raft.status()
    closeAll()
    const t = openSqliteRaftStorage(open(path))
    raft = createRaft({ id: 'solo', storage: t, rng: seededRng(2) })
    const after = raft.status()
    expect([after.term, after.commit, after.lastIndex]).toEqual([before.term, before.commit, before.lastIndex])
    const rd = raft.ready()
    expect(rd.committed.map((x) => x.index)).toEqual([1, 2, 3])
    expect(rd.committed[2]?.data).toEqual(new Uint8Array([42]))
  })
})

describe('sqlite Raft storage refuses inconsistent or damaged state', () => {
  afterEach(closeAll)

  /** A store with a consistent state: entries 1..4 (terms 1,1,2,2), commit 3, term 2. */
  const seed = (): string => {
    const path = newPath()
    const s = openSqliteRaftStorage(open(path))
    s.persist({ entries: [e(1, 1), e(2, 1), e(3, 2), e(4, 2)], hardState: { term: 2, vote: null, commit: 3 } })
    closeAll()
    return path
  }
  const tamper = (path: string, sql: string): void => {
    const st = open(path)
    st.prepare(sql).run()
    closeAll()
  }

  it.each([
    ['commit beyond the last index', 'UPDATE raft_hard_state SET commit_index = 9', /commit index 9 is beyond the last stored index 4/],
    ['a gap in the indexes', 'DELETE FROM raft_entries WHERE idx = 2', /gaps/],
    ['entries not right after the snapshot', 'DELETE FROM raft_entries WHERE idx = 1', /starts at index 2, the snapshot ends at 0/],
    ['terms going backwards', 'UPDATE raft_entries SET term = 1 WHERE idx = 4', /terms go backwards/],
    ['a term newer than the current term', 'UPDATE raft_hard_state SET term = 1', /newer than the stored current term/],
    ['a malformed entry', "UPDATE raft_entries SET type = 'bogus' WHERE idx = 3", /malformed/],
    ['a malformed vote', "UPDATE raft_hard_state SET vote = ''", /hard state row is malformed/],
    ['a malformed snapshot configuration', "INSERT INTO raft_snapshot (id, idx, term, conf, data) VALUES (1, 0, 0, 'nope', x'')", /configuration is not JSON/],
  ])('%s: a clear SkeinError, nothing reset', (_what, sql, re) => {
    const path = seed()
    tamper(path, sql)
    expectSkeinError(() => openSqliteRaftStorage(open(path)), 'raft-store-corrupt', re)
    closeAll()
    // Still refused on a second try: nothing was rewritten.
    expectSkeinError(() => openSqliteRaftStorage(open(path)), 'raft-store-corrupt', re)
  })

  it('a truncated database file: store-corrupt when the store opens', () => {
    const path = seed()
    const size = statSync(path).size
    const fd = openSync(path, 'r+')
    ftruncateSync(fd, Math.floor(size / 2))
    closeSync(fd)
    let err: unknown
    try {
      openSqliteRaftStorage(open(path))
    } catch (x) {
      err = x
    }
    expect(err).toBeInstanceOf(SkeinError)
    expect((err as SkeinError).code).toMatch(/corrupt/)
  })

  it('a garbled database file: store-corrupt when the store opens', () => {
    const path = seed()
    const fd = openSync(path, 'r+')
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 0)
    closeSync(fd)
    expect(() => open(path)).toThrow(SkeinError)
    try {
      open(path)
    } catch (x) {
      expect((x as SkeinError).code).toBe('store-corrupt')
    }
  })
})
