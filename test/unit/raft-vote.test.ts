import { describe, expect, it } from 'vitest'
import type { RaftMessage } from '../../src/consensus/types.ts'
import { Driver } from './raft-driver.ts'

const vote = (from: string, to: string, term: number, lastIndex = 3, lastTerm = 1): RaftMessage =>
  ({ type: 'vote', from, to, term, lastIndex, lastTerm, transfer: false })

describe('raft: one vote per term', () => {
  it('grants the first candidate of a term, refuses the second, and repeats the grant to the first', () => {
    const d = new Driver(['a', 'b', 'c'], ['a', 'b', 'c'])
    const r = d.raft('c')
    r.step(vote('a', 'c', 2))
    r.step(vote('b', 'c', 2))
    r.step(vote('a', 'c', 2))
    d.flush()
    expect(d.outbox.map((m) => [m.type, m.to, m.term, 'reject' in m ? m.reject : undefined])).toEqual([
      ['vote-resp', 'a', 2, false],
      ['vote-resp', 'b', 2, true],
      ['vote-resp', 'a', 2, false],
    ])
    expect(d.storage('c').hardState()).toMatchObject({ term: 2, vote: 'a' })
  })

  it('a new term frees the vote; a stale term is refused with the current term', () => {
    const d = new Driver(['a', 'b', 'c'], ['a', 'b', 'c'])
    d.raft('c').step(vote('a', 'c', 2))
    d.raft('c').step(vote('b', 'c', 3))
    d.raft('c').step(vote('a', 'c', 2))
    d.flush()
    expect(d.outbox.map((m) => [m.to, m.term, 'reject' in m ? m.reject : undefined])).toEqual([
      ['a', 2, false],
      ['b', 3, false],
      ['a', 3, true],
    ])
  })

  it('refuses a candidate whose log is behind (§5.4.1), even in a new term', () => {
    const d = new Driver(['a', 'b', 'c'], ['a', 'b', 'c'])
    d.raft('c').step(vote('a', 'c', 2, 2, 1)) // c has 3 entries of term 1
    d.flush()
    expect(d.outbox).toEqual([expect.objectContaining({ type: 'vote-resp', reject: true, term: 2 })])
    expect(d.raft('c').status()).toMatchObject({ term: 2, vote: null })
  })

  it('a candidate counts its own vote once and wins only with a majority', () => {
    const d = new Driver(['a', 'b', 'c', 'd', 'e'], ['a', 'b', 'c', 'd', 'e'], { preVote: false })
    d.campaign('a')
    expect(d.raft('a').status()).toMatchObject({ role: 'candidate', vote: 'a' })
    const requests = d.outbox.filter((m) => m.type === 'vote')
    expect(requests.map((m) => m.to).sort()).toEqual(['b', 'c', 'd', 'e'])
    // One grant (plus its own) is 2 of 5: not yet. A duplicate of that grant changes nothing.
    d.deliver((m) => m.to === 'b')
    const grant = d.outbox.find((m) => m.from === 'b')
    expect(grant).toMatchObject({ type: 'vote-resp', reject: false })
    d.deliver((m) => m.from === 'b')
    if (grant !== undefined) d.raft('a').step(grant)
    expect(d.raft('a').status().role).toBe('candidate')
    d.deliver((m) => m.to === 'c')
    d.deliver((m) => m.from === 'c')
    expect(d.raft('a').status().role).toBe('leader')
  })
})
