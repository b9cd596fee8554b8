import { describe, expect, it } from 'vitest'
import { encodeConfChange } from '../../src/consensus/confchange.ts'
import { RaftLog } from '../../src/consensus/log.ts'
import { MemoryRaftStorage } from '../../src/consensus/memory-storage.ts'
import type { Entry } from '../../src/consensus/types.ts'

const e = (index: number, term: number, type: Entry['type'] = 'normal', data: Uint8Array = new Uint8Array([index])): Entry => ({ index, term, type, data })
const conf = (index: number, term: number, type: 'add-voter' | 'add-learner' | 'remove', id: string): Entry =>
  e(index, term, 'conf', encodeConfChange({ type, id }))
const noConf = { voters: ['a'], learners: [] }

describe('raft: log and storage', () => {
  it('a follower commits no further than the last entry it knows matches the leader', () => {
    const s = new MemoryRaftStorage()
    s.append([e(1, 1), e(2, 1), e(3, 2), e(4, 2)]) // 3 and 4: a stale leader's uncommitted entries
    const log = new RaftLog(s, noConf, 0, 0)
    // The leader (commit 4) sends only entry 2 after (1, 1): 3 and 4 are unknown to match.
    expect(log.maybeAppend(1, 1, 4, [e(2, 1)])).toBe(2)
    expect(log.committed).toBe(2)
    // A conflicting suffix is replaced, from the first conflict on.
    expect(log.maybeAppend(2, 1, 4, [e(3, 3), e(4, 3)])).toBe(4)
    expect(log.unstableEntries().map((x) => [x.index, x.term])).toEqual([[3, 3], [4, 3]])
    expect(log.committed).toBe(4)
    // A mismatching prevTerm is refused.
    expect(log.maybeAppend(4, 2, 4, [])).toBe(undefined)
  })

  it('finds where logs may agree, skipping whole terms', () => {
    const s = new MemoryRaftStorage()
    s.append([e(1, 1), e(2, 1), e(3, 4), e(4, 4), e(5, 4), e(6, 5)])
    const log = new RaftLog(s, noConf, 0, 0)
    expect(log.findConflictByTerm(6, 3)).toEqual({ index: 2, term: 1 })
    expect(log.findConflictByTerm(6, 4)).toEqual({ index: 5, term: 4 })
    expect(log.findConflictByTerm(9, 9)).toEqual({ index: 6, term: 5 })
  })

  it('uses the latest configuration in the log, and falls back when it is truncated', () => {
    const s = new MemoryRaftStorage()
    s.append([conf(1, 1, 'add-voter', 'a'), conf(2, 1, 'add-voter', 'b')])
    const log = new RaftLog(s, { voters: [], learners: [] }, 2, 2)
    expect(log.conf()).toEqual({ voters: ['a', 'b'], learners: [] })
    log.append([conf(3, 2, 'add-learner', 'c')])
    expect(log.conf()).toEqual({ voters: ['a', 'b'], learners: ['c'] })
    expect(log.confIndex()).toBe(3)
    expect(log.previousConf()).toEqual({ voters: ['a', 'b'], learners: [] })
    log.append([e(3, 3)]) // a new leader overwrites the uncommitted change
    expect(log.conf()).toEqual({ voters: ['a', 'b'], learners: [] })
    expect(log.confAt(1)).toEqual({ voters: ['a'], learners: [] })
  })
})
