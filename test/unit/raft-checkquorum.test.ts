import { describe, expect, it } from 'vitest'
import { RaftCluster, TICK_MS } from '../sim/raft-cluster.ts'

const ELECTION_TICKS = 10

function isolateLeader(checkQuorum: boolean) {
  const ids = ['p1', 'p2', 'p3']
  const c = new RaftCluster({ seed: 31, ids, voters: ids, raft: { checkQuorum, electionTicks: ELECTION_TICKS } })
  const leader = c.awaitLeader()
  c.runTicks(7)
  c.isolate(leader)
  return { c, leader, ids }
}

describe('raft: check-quorum', () => {
  it('an isolated leader steps down within one election timeout; the majority elects another', () => {
    const { c, leader } = isolateLeader(true)
    const term = c.status(leader).term
    const start = c.now()
    const steppedDown = c.runUntil(() => c.status(leader).role !== 'leader', ELECTION_TICKS * TICK_MS)
    expect(steppedDown).toBe(true)
    expect(c.now() - start).toBeLessThanOrEqual(ELECTION_TICKS * TICK_MS)
    expect(c.status(leader)).toMatchObject({ term, role: 'follower', leader: null }) // steps down without a term bump
    const next = c.awaitLeader()
    expect(next).not.toBe(leader)
  })

  it('without check-quorum (control), the isolated leader keeps believing it leads', () => {
    const { c, leader } = isolateLeader(false)
    c.runTicks(200)
    expect(c.status(leader).role).toBe('leader')
  })

  it('leader stickiness: followers that hear from the leader ignore a higher-term vote request', () => {
    const ids = ['p1', 'p2', 'p3']
    const c = new RaftCluster({ seed: 32, ids, voters: ids })
    const leader = c.awaitLeader()
    c.runTicks(5)
    const f = ids.find((id) => id !== leader) as string
    const st = c.status(f)
    c.raft(f).step({ type: 'vote', from: 'p9', to: f, term: st.term + 3, lastIndex: 10_000, lastTerm: 10_000, transfer: false })
    expect(c.status(f)).toMatchObject({ term: st.term, vote: st.vote, leader })
  })
})
