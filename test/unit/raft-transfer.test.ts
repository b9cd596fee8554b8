import { describe, expect, it } from 'vitest'
import { RaftCluster, TICK_MS } from '../sim/raft-cluster.ts'

describe('raft: leadership transfer', () => {
  it('hands leadership to the chosen voter well within an election timeout', () => {
    const ids = ['p1', 'p2', 'p3']
    const c = new RaftCluster({ seed: 81, ids, voters: ids })
    const leader = c.awaitLeader()
    c.runTicks(4)
    const term = c.status(leader).term
    const to = ids.find((id) => id !== leader) as string
    expect(c.transfer(leader, to)).toBe(true)
    expect(c.propose(leader, 'during')).toMatchObject({ ok: false, reason: 'transfer-in-progress' })
    const start = c.now()
    expect(c.runUntil(() => c.leader() === to, 10 * TICK_MS)).toBe(true)
    expect(c.now() - start).toBeLessThan(5 * TICK_MS)
    expect(c.status(to).term).toBe(term + 1)
    expect(c.propose(to, 'after').ok).toBe(true)
    c.runTicks(4)
    for (const id of ids) expect(c.applied(id)).toEqual(['after'])
  })

  it('brings a lagging target up to date first', () => {
    const ids = ['p1', 'p2', 'p3']
    const c = new RaftCluster({ seed: 82, ids, voters: ids })
    const leader = c.awaitLeader()
    c.runTicks(4)
    const to = ids.find((id) => id !== leader) as string
    c.isolate(to)
    for (let i = 0; i < 10; i++) c.propose(leader, `x${i}`)
    c.runTicks(2)
    c.heal()
    expect(c.transfer(leader, to)).toBe(true)
    expect(c.runUntil(() => c.leader() === to, 10 * TICK_MS)).toBe(true)
    expect(c.applied(to)).toHaveLength(10)
  })

  it('refuses learners, itself, and non-leaders', () => {
    const c = new RaftCluster({ seed: 83, ids: ['p1', 'p2', 'p3'], voters: ['p1', 'p2'] })
    const leader = c.awaitLeader()
    c.runTicks(4)
    expect(c.proposeConfChange(leader, { type: 'add-learner', id: 'p3' }).ok).toBe(true)
    c.runTicks(4)
    const raft = c.raft(leader)
    expect(raft.transferLeadership('p3')).toEqual({ ok: false, reason: 'not-voter' })
    expect(raft.transferLeadership(leader)).toEqual({ ok: false, reason: 'self' })
    const other = leader === 'p1' ? 'p2' : 'p1'
    expect(c.raft(other).transferLeadership(leader)).toEqual({ ok: false, reason: 'not-leader' })
  })

  it('gives up after an election timeout if the target does not take over', () => {
    const ids = ['p1', 'p2', 'p3']
    const c = new RaftCluster({ seed: 84, ids, voters: ids })
    const leader = c.awaitLeader()
    c.runTicks(4)
    const to = ids.find((id) => id !== leader) as string
    c.crash(to)
    expect(c.transfer(leader, to)).toBe(true)
    c.runTicks(11)
    expect(c.leader()).toBe(leader)
    expect(c.propose(leader, 'resumed').ok).toBe(true)
  })
})
