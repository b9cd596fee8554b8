import { describe, expect, it } from 'vitest'
import { RaftCluster, TICK_MS } from '../sim/raft-cluster.ts'

describe('raft: three-peer election and replication', () => {
  const ids = ['p1', 'p2', 'p3']

  it('elects exactly one leader that the others follow, within two election timeouts', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const c = new RaftCluster({ seed, ids, voters: ids })
      // Randomized timeouts are in [10, 20) ticks; allow a split vote or two.
      const leader = c.awaitLeader(3 * 20 * TICK_MS)
      c.runTicks(5)
      const term = c.status(leader).term
      for (const id of ids) {
        const st = c.status(id)
        expect(st.term).toBe(term)
        expect(st.leader).toBe(leader)
        expect(st.role).toBe(id === leader ? 'leader' : 'follower')
      }
    }
  })

  it('replicates proposals to every peer, in order, and keeps a stable leader', () => {
    const c = new RaftCluster({ seed: 11, ids, voters: ids })
    const leader = c.awaitLeader()
    const term = c.status(leader).term
    for (let i = 0; i < 20; i++) expect(c.propose(leader, `cmd-${i}`).ok).toBe(true)
    c.runTicks(4)
    const expected = Array.from({ length: 20 }, (_, i) => `cmd-${i}`)
    for (const id of ids) expect(c.applied(id)).toEqual(expected)
    // Heartbeats keep followers quiet: 30 s later, same leader, same term.
    c.runTicks(600)
    expect(c.leader()).toBe(leader)
    for (const id of ids) expect(c.status(id).term).toBe(term)
  })

  it('followers refuse proposals and name the leader', () => {
    const c = new RaftCluster({ seed: 12, ids, voters: ids })
    const leader = c.awaitLeader()
    c.runTicks(4)
    const follower = ids.find((id) => id !== leader) as string
    expect(c.propose(follower, 'x')).toEqual({ ok: false, reason: 'not-leader', leader })
  })

  it('with a reliable network and a dead peer, the other two still elect and commit', () => {
    const c = new RaftCluster({ seed: 13, ids, voters: ids })
    const first = c.awaitLeader()
    c.crash(first)
    const second = c.awaitLeader()
    expect(second).not.toBe(first)
    expect(c.propose(second, 'after').ok).toBe(true)
    c.runTicks(4)
    for (const id of ids.filter((i) => i !== first)) expect(c.applied(id)).toEqual(['after'])
  })
})
