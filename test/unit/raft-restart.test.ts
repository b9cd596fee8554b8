import { describe, expect, it } from 'vitest'
import type { RaftMessage } from '../../src/consensus/types.ts'
import { RaftCluster } from '../sim/raft-cluster.ts'
import { Driver } from './raft-driver.ts'

describe('raft: persistence across restarts', () => {
  it('committed entries survive a restart of every peer, and are delivered again', () => {
    const ids = ['p1', 'p2', 'p3']
    const c = new RaftCluster({ seed: 61, ids, voters: ids })
    const leader = c.awaitLeader()
    const promised = []
    for (let i = 0; i < 15; i++) promised.push(c.propose(leader, `v${i}`))
    c.runTicks(5)
    const before = c.applied('p1')
    expect(before).toHaveLength(15)
    const term = c.status(leader).term
    for (const id of ids) c.crash(id)
    for (const id of ids) c.restart(id)
    // Rebuilt from storage: same term, and the committed prefix comes back in order.
    for (const id of ids) expect(c.status(id).term).toBe(term)
    c.awaitLeader()
    c.runTicks(10)
    for (const id of ids) {
      expect(c.applied(id)).toEqual(before)
      for (const p of promised) if (p.ok) expect(c.raft(id).termAt(p.index)).toBe(p.term)
    }
  })

  it('remembers its vote: after a restart it refuses a second candidate in the same term', () => {
    const d = new Driver(['a', 'b', 'c'], ['a', 'b', 'c'])
    const vote = (from: string): RaftMessage => ({ type: 'vote', from, to: 'c', term: 5, lastIndex: 3, lastTerm: 1, transfer: false })
    d.raft('c').step(vote('a'))
    d.flush()
    expect(d.outbox).toContainEqual(expect.objectContaining({ type: 'vote-resp', to: 'a', term: 5, reject: false }))
    expect(d.storage('c').hardState()).toMatchObject({ term: 5, vote: 'a' })
    d.outbox = []
    d.crash('c')
    d.restart('c')
    expect(d.raft('c').status()).toMatchObject({ term: 5, vote: 'a' })
    d.raft('c').step(vote('b'))
    d.raft('c').step(vote('a'))
    d.flush()
    expect(d.outbox).toEqual([
      expect.objectContaining({ type: 'vote-resp', to: 'b', reject: true }),
      expect.objectContaining({ type: 'vote-resp', to: 'a', reject: false }),
    ])
  })

  it('a crash before the Ready is persisted loses the unsent vote, never a sent one', () => {
    const d = new Driver(['a', 'b', 'c'], ['a', 'b', 'c'])
    const vote = (from: string): RaftMessage => ({ type: 'vote', from, to: 'c', term: 7, lastIndex: 3, lastTerm: 1, transfer: false })
    // Stepped but never flushed: nothing persisted, nothing sent.
    d.rafts.get('c')?.step(vote('a'))
    d.crash('c')
    d.restart('c')
    expect(d.storage('c').hardState().vote).toBe(null)
    d.raft('c').step(vote('b'))
    d.flush()
    expect(d.outbox).toEqual([expect.objectContaining({ type: 'vote-resp', to: 'b', reject: false })])
  })

  it('with `applied`, only the entries after it are delivered again', () => {
    const d = new Driver(['solo'], ['solo'])
    d.campaign('solo')
    d.settle()
    for (const t of ['x', 'y', 'z']) d.raft('solo').propose(new TextEncoder().encode(t))
    d.flush()
    expect(d.data('solo')).toEqual(['x', 'y', 'z'])
    const y = (d.applied.get('solo') ?? []).find((e) => new TextDecoder().decode(e.data) === 'y')
    d.crash('solo')
    d.restart('solo', y?.index)
    expect(d.data('solo')).toEqual(['z'])
  })
})
