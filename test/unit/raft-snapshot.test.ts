import { describe, expect, it } from 'vitest'
import { RaftCluster } from '../sim/raft-cluster.ts'

describe('raft: snapshots and compaction', () => {
  it('a lagging follower whose entries were compacted away gets the snapshot, then the rest', () => {
    const ids = ['p1', 'p2', 'p3']
    const c = new RaftCluster({ seed: 71, ids, voters: ids })
    const leader = c.awaitLeader()
    c.runTicks(4)
    const lag = ids.find((id) => id !== leader) as string
    c.crash(lag)
    for (let i = 0; i < 40; i++) c.propose(leader, `e${i}`)
    c.runTicks(5)
    for (const id of ids.filter((i) => i !== lag)) expect(c.compact(id)).toBe(true)
    const first = c.status(leader).firstIndex
    expect(first).toBeGreaterThan(40)
    expect(c.peer(leader).storage.snapshot().conf.voters).toEqual(ids)
    for (let i = 40; i < 45; i++) c.propose(leader, `e${i}`)
    c.runTicks(2)
    c.restart(lag)
    c.runTicks(20)
    expect(c.checker.counts.snapshots).toBe(1)
    expect(c.peer(lag).storage.snapshot().index).toBe(first - 1)
    const all = Array.from({ length: 45 }, (_, i) => `e${i}`)
    expect(c.applied(lag)).toEqual(all)
    expect(c.status(lag).lastIndex).toBe(c.status(leader).lastIndex)
    expect(c.status(lag).voters).toEqual(ids)
  })

  it('compact refuses what is not applied or already compacted; restarts load the snapshot', () => {
    const c = new RaftCluster({ seed: 72, ids: ['solo'], voters: ['solo'] })
    c.awaitLeader()
    for (let i = 0; i < 5; i++) c.propose('solo', `s${i}`)
    c.runTicks(1)
    const raft = c.raft('solo')
    const applied = raft.status().applied
    expect(raft.compact(applied + 1, new Uint8Array())).toEqual({ ok: false, reason: 'not-applied' })
    const r = raft.compact(applied - 2, new Uint8Array([1]))
    expect(r).toMatchObject({ ok: true, snapshot: { index: applied - 2, term: 2, conf: { voters: ['solo'], learners: [] } } })
    expect(raft.compact(applied - 3, new Uint8Array())).toEqual({ ok: false, reason: 'already-compacted' })
    expect(raft.status().firstIndex).toBe(applied - 1)
    expect(c.compact('solo')).toBe(true)
    c.crash('solo')
    c.restart('solo')
    expect(c.applied('solo')).toEqual(['s0', 's1', 's2', 's3', 's4']) // from the snapshot's data
    expect(c.status('solo').applied).toBe(applied)
  })
})
