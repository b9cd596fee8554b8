import { describe, expect, it } from 'vitest'
import { RaftCluster } from '../sim/raft-cluster.ts'

describe('raft: a stale leader is fenced', () => {
  it('a partitioned old leader’s proposals never commit, are overwritten, and carry an older term', () => {
    const ids = ['p1', 'p2', 'p3', 'p4', 'p5']
    const c = new RaftCluster({ seed: 41, ids, voters: ids })
    const old = c.awaitLeader()
    expect(c.propose(old, 'before').ok).toBe(true)
    c.runTicks(5)
    const oldTerm = c.status(old).term
    const buddy = ids.find((id) => id !== old) as string
    const majority = ids.filter((id) => id !== old && id !== buddy)
    c.partition([[old, buddy], majority])
    // The old leader still believes it leads (until check-quorum): it accepts proposals.
    const stale = c.propose(old, 'stale')
    expect(stale).toMatchObject({ ok: true, term: oldTerm })
    if (!stale.ok) return
    c.runTicks(2)
    expect(c.status(buddy).lastIndex).toBe(stale.index) // replicated to the minority only
    // The majority elects a new leader at a higher term and commits at the same index.
    expect(c.runUntil(() => majority.some((id) => c.status(id).role === 'leader'), 5_000)).toBe(true)
    const fresh = majority.find((id) => c.status(id).role === 'leader') as string
    const newTerm = c.status(fresh).term
    expect(newTerm).toBeGreaterThan(oldTerm)
    expect(c.propose(fresh, 'fresh').ok).toBe(true)
    c.runTicks(5)
    // Followers of the new term reject the old leader's appends and answer with their term.
    const f = majority.find((id) => id !== fresh) as string
    const before = c.status(f)
    c.raft(f).step({ type: 'append', from: old, to: f, term: oldTerm, prevIndex: stale.index - 1, prevTerm: oldTerm, entries: [], commit: stale.index })
    const rd = c.raft(f).ready()
    c.raft(f).advance(rd)
    expect(rd.messages).toContainEqual(expect.objectContaining({ type: 'append-resp', to: old, term: newTerm }))
    expect(c.status(f)).toMatchObject({ term: newTerm, commit: before.commit, lastIndex: before.lastIndex })
    // Heal: the old leader learns the new term, its entry at that index is replaced.
    c.heal()
    c.runTicks(20)
    for (const id of ids) {
      expect(c.applied(id)).toEqual(['before', 'fresh'])
      expect(c.raft(id).termAt(stale.index)).toBeGreaterThan(oldTerm)
      expect(c.status(id).term).toBe(newTerm)
    }
    for (const [index, entry] of c.checker.committed) if (index === stale.index) expect(entry.term).toBe(newTerm)
  })
})
