import { describe, expect, it } from 'vitest'
import { RaftCluster } from '../sim/raft-cluster.ts'

/** Isolate a follower for 600 ticks (30 s), heal, and let the cluster run on. */
function isolateFollower(preVote: boolean, checkQuorum: boolean) {
  const ids = ['p1', 'p2', 'p3']
  const c = new RaftCluster({ seed: 21, ids, voters: ids, raft: { preVote, checkQuorum } })
  const leader = c.awaitLeader()
  c.runTicks(5)
  const term = c.status(leader).term
  const follower = ids.find((id) => id !== leader) as string
  c.isolate(follower)
  c.runTicks(600)
  const isolatedTerm = c.status(follower).term
  c.heal()
  c.runTicks(100)
  return { c, leader, term, follower, isolatedTerm }
}

describe('raft: pre-vote', () => {
  it('an isolated follower rejoins after 30 s without raising its term or unseating the leader', () => {
    const { c, leader, term, follower, isolatedTerm } = isolateFollower(true, true)
    expect(isolatedTerm).toBe(term) // pre-votes never bump the term
    expect(c.leader()).toBe(leader)
    for (const id of ['p1', 'p2', 'p3']) {
      expect(c.status(id).term).toBe(term)
      expect(c.status(id).leader).toBe(leader)
    }
    expect(c.checker.leaders.size).toBe(1) // one election in the whole run
    // And it caught up.
    expect(c.propose(leader, 'x').ok).toBe(true)
    c.runTicks(4)
    expect(c.applied(follower)).toEqual(['x'])
  })

  it('without pre-vote (control), the same isolation inflates terms and disrupts the leader', () => {
    const { c, term, isolatedTerm } = isolateFollower(false, false)
    expect(isolatedTerm).toBeGreaterThan(term + 10)
    const leader = c.awaitLeader()
    expect(c.status(leader).term).toBeGreaterThan(term)
  })

  it('a pre-vote does not record a vote and does not change the receiver’s term', () => {
    const ids = ['p1', 'p2', 'p3']
    const c = new RaftCluster({ seed: 22, ids, voters: ids })
    const leader = c.awaitLeader()
    c.runTicks(5)
    const other = ids.find((id) => id !== leader) as string
    const before = c.status(other)
    c.raft(other).step({ type: 'pre-vote', from: 'p9', to: other, term: before.term + 5, lastIndex: 1000, lastTerm: 1000, transfer: false })
    expect(c.status(other)).toMatchObject({ term: before.term, vote: before.vote })
  })
})
