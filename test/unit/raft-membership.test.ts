import { describe, expect, it } from 'vitest'
import type { ConfChange } from '../../src/consensus/types.ts'
import { RaftCluster } from '../sim/raft-cluster.ts'

/** Propose a change at the leader and wait until every live member has it committed. */
function change(c: RaftCluster, ch: ConfChange): void {
  const leader = c.awaitLeader()
  const r = c.proposeConfChange(leader, ch)
  expect(r, JSON.stringify(ch)).toMatchObject({ ok: true })
  if (!r.ok) return
  const done = c.runUntil(() => {
    const l = c.leader()
    return l !== undefined && c.status(l).commit >= r.index
  }, 5_000)
  expect(done).toBe(true)
  c.runTicks(4)
}

function commitOne(c: RaftCluster, text: string): void {
  const leader = c.awaitLeader()
  const r = c.propose(leader, text)
  expect(r.ok).toBe(true)
  c.runTicks(6)
  expect(c.applied(c.leader() as string)).toContain(text)
}

describe('raft: membership changes', () => {
  it('replaces a dead voter: remove it, add a learner, let it catch up, promote it', () => {
    const c = new RaftCluster({ seed: 51, ids: ['p1', 'p2', 'p3', 'p4'], voters: ['p1', 'p2', 'p3'] })
    const leader = c.awaitLeader()
    c.runTicks(4)
    for (let i = 0; i < 10; i++) c.propose(leader, `early-${i}`)
    c.runTicks(4)
    const dead = ['p1', 'p2', 'p3'].find((id) => id !== leader) as string
    c.crash(dead)
    change(c, { type: 'remove', id: dead })
    const live = ['p1', 'p2', 'p3'].filter((id) => id !== dead)
    for (const id of live) expect(c.status(id).voters).toEqual(live.slice().sort())

    change(c, { type: 'add-learner', id: 'p4' })
    expect(c.runUntil(() => c.status('p4').role === 'learner' && c.applied('p4').length === 10, 5_000)).toBe(true)
    const lst = c.status(c.leader() as string)
    expect(lst.learners).toEqual(['p4'])
    expect(lst.progress?.p4).toMatchObject({ learner: true, match: lst.lastIndex })

    change(c, { type: 'add-voter', id: 'p4' })
    for (const id of [...live, 'p4']) {
      expect(c.status(id).voters).toEqual([...live, 'p4'].sort())
      expect(c.status(id).learners).toEqual([])
    }
    expect(c.status('p4').role).not.toBe('learner')
    // The new set tolerates one failure: crash another voter that is not the leader.
    const l = c.awaitLeader()
    c.crash(live.find((id) => id !== l) as string)
    commitOne(c, 'after-replacement')
    expect(c.applied('p4')).toContain('after-replacement')
  })

  it('refuses a second change while one is pending, and changes that do nothing', () => {
    const c = new RaftCluster({ seed: 52, ids: ['p1', 'p2', 'p3', 'p4', 'p5'], voters: ['p1', 'p2', 'p3'] })
    const leader = c.awaitLeader()
    // Right after the election, this term has committed nothing yet.
    expect(c.proposeConfChange(leader, { type: 'add-learner', id: 'p4' })).toEqual({ ok: false, reason: 'conf-change-pending' })
    c.runTicks(4)
    expect(c.proposeConfChange(leader, { type: 'add-learner', id: 'p4' }).ok).toBe(true)
    expect(c.proposeConfChange(leader, { type: 'add-learner', id: 'p5' })).toEqual({ ok: false, reason: 'conf-change-pending' })
    c.runTicks(4)
    expect(c.proposeConfChange(leader, { type: 'remove', id: 'p9' })).toEqual({ ok: false, reason: 'invalid-change' })
    expect(c.proposeConfChange(leader, { type: 'add-voter', id: 'p1' })).toEqual({ ok: false, reason: 'invalid-change' })
    expect(c.proposeConfChange(leader, { type: 'add-learner', id: 'p4' })).toEqual({ ok: false, reason: 'invalid-change' })
  })

  it('walks the voter set 5 → 3 → 5, tolerating the right number of failures at each size', () => {
    const ids = ['p1', 'p2', 'p3', 'p4', 'p5']
    const c = new RaftCluster({ seed: 53, ids, voters: ids })
    let leader = c.awaitLeader()
    c.runTicks(4)
    const others = ids.filter((id) => id !== leader)
    const [a, b] = others as [string, string]
    change(c, { type: 'remove', id: a })
    change(c, { type: 'remove', id: b })
    leader = c.awaitLeader()
    const three = ids.filter((id) => id !== a && id !== b)
    expect(c.status(leader).voters).toEqual(three.slice().sort())
    commitOne(c, 'three')
    // Three voters survive one failure.
    const victim = three.find((id) => id !== leader) as string
    c.crash(victim)
    commitOne(c, 'three-minus-one')
    c.restart(victim)
    c.runTicks(10)
    // Back to five: the removed peers rejoin as learners, then are promoted.
    for (const id of [a, b]) {
      change(c, { type: 'add-learner', id })
      change(c, { type: 'add-voter', id })
    }
    leader = c.awaitLeader()
    expect(c.status(leader).voters).toEqual(ids.slice().sort())
    commitOne(c, 'five')
    // Five voters survive two failures.
    const [x, y] = ids.filter((id) => id !== leader) as [string, string]
    c.crash(x)
    c.crash(y)
    commitOne(c, 'five-minus-two')
    for (const id of ids.filter((i) => i !== x && i !== y)) expect(c.applied(id)).toContain('five-minus-two')
  })

  it('a leader that removes itself hands over to a caught-up voter', () => {
    const ids = ['p1', 'p2', 'p3']
    const c = new RaftCluster({ seed: 54, ids, voters: ids })
    const leader = c.awaitLeader()
    c.runTicks(4)
    change(c, { type: 'remove', id: leader })
    const next = c.awaitLeader(2_000)
    expect(next).not.toBe(leader)
    const rest = ids.filter((id) => id !== leader)
    expect(c.status(next).voters).toEqual(rest)
    commitOne(c, 'without-the-old-leader')
    expect(c.status(leader).role).toBe('follower')
  })
})
