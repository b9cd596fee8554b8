import { describe, expect, it } from 'vitest'
import { Driver, text } from './raft-driver.ts'

describe('raft: a leader commits only entries of its own term by counting (§5.4.2)', () => {
  it('an older-term entry on a majority stays uncommitted until a current-term entry is', () => {
    // One entry per append, so that the old entry and the new leader's first entry travel apart.
    const d = new Driver(['a', 'b', 'c'], ['a', 'b', 'c'], { maxEntriesPerMsg: 1, checkQuorum: false }) // no stickiness: b answers at once
    d.campaign('a')
    d.settle()
    expect(d.raft('a').status().role).toBe('leader')
    const t1 = d.raft('a').status().term
    // `a` appends X and crashes before anyone else gets it.
    const x = d.raft('a').propose(text('X'))
    expect(x.ok).toBe(true)
    if (!x.ok) return
    d.flush()
    d.drop()
    d.crash('a')
    d.restart('a')
    // `a` wins again (its log is the most recent) in a later term, `c` hears nothing.
    d.campaign('a')
    d.settle((m) => m.type.includes('vote') && m.to !== 'c' && m.from !== 'c')
    const st = d.raft('a').status()
    expect(st).toMatchObject({ role: 'leader' })
    expect(st.term).toBeGreaterThan(t1)
    // Deliver a→b and b→a one at a time; watch the moment b holds X but not the new entry.
    let sawOldOnMajority = false
    for (let i = 0; i < 50 && d.outbox.some((m) => m.to !== 'c' && m.from !== 'c'); i++) {
      const m = d.outbox.find((mm) => mm.to !== 'c' && mm.from !== 'c')
      d.deliver((mm) => mm === m)
      const pr = d.raft('a').status().progress?.b
      if (pr?.match === x.index) {
        sawOldOnMajority = true
        expect(d.raft('a').status().commit).toBeLessThan(x.index)
      }
    }
    expect(sawOldOnMajority).toBe(true)
    // Once the current term's entry is on b too, both commit.
    expect(d.raft('a').status().commit).toBe(x.index + 1)
    expect(d.data('a')).toEqual(['X'])
  })
})
