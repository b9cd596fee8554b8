import { afterEach, describe, expect, it } from 'vitest'
import type { ConsensusStatus, VoterInfo } from '../../src/consensus/status.ts'
import { lastKnownGate } from '../../src/agent/last-known.ts'
import { appliedStateGate } from '../../src/peer/running.ts'

function fakeConsensus(st: Partial<ConsensusStatus>, leaderMatch: number | null) {
  const status: ConsensusStatus = { id: 'me', term: 2, role: 'follower', leaderId: null, leader: null, commitIndex: 0, appliedIndex: 0, firstIndex: 1, lastIndex: 0, voters: [], ...st }
  const c = {
    status: () => status,
    asked: 0,
    match: leaderMatch,
    voters: async (): Promise<VoterInfo[]> => {
      c.asked++
      return [{ id: 'l', name: 'l', role: 'voter', match: c.match, health: 'alive', leader: true, self: false }]
    },
  }
  return { c, status }
}

const tick = () => new Promise((r) => setTimeout(r, 0))

describe('appliedStateGate (assignments are unknown until the applied log is current)', () => {
  const gates: { stop(): void }[] = []
  afterEach(() => gates.splice(0).forEach((g) => g.stop()))

  it('a follower waits for a leader, then until it applied the leader’s last index; then it stays known', async () => {
    const { c, status } = fakeConsensus({ commitIndex: 5, appliedIndex: 5, lastIndex: 5 }, 9)
    let calls = 0
    const g = appliedStateGate(c, () => calls++, 10_000)
    gates.push(g)
    expect(g.known()).toBe(false) // no leader
    status.leaderId = 'l'
    expect(g.known()).toBe(false) // asks the leader
    await tick()
    expect(c.asked).toBe(1)
    expect(g.known()).toBe(false) // 5 < 9: an older prefix of the log
    status.appliedIndex = 9
    expect(g.known()).toBe(true)
    expect(calls).toBe(1)
    status.leaderId = null
    status.appliedIndex = 9
    expect(g.known()).toBe(true) // latched: losing the cluster changes nothing
    expect(calls).toBe(1)
  })

  it('a leader is current once it applied its log as it was when it won', () => {
    const { c, status } = fakeConsensus({ role: 'leader', leaderId: 'me', commitIndex: 7, appliedIndex: 7, lastIndex: 8 }, null)
    const g = appliedStateGate(c, () => {}, 10_000)
    gates.push(g)
    expect(g.known()).toBe(false)
    status.appliedIndex = 8
    status.lastIndex = 9
    expect(g.known()).toBe(true)
  })
})

describe('lastKnownGate (the assignments applied before a reboot, only with no leader for a while)', () => {
  it('opens after 10 s with no leader, once, and closes when a leader is known', () => {
    let t = 0
    let leader = false
    let opened = 0
    const g = lastKnownGate(() => leader, () => t, () => opened++)
    expect(g()).toBe(false)
    t = 9_999
    expect(g()).toBe(false)
    t = 10_000
    expect(g()).toBe(true)
    t = 12_000
    expect(g()).toBe(true)
    expect(opened).toBe(1)
    leader = true
    expect(g()).toBe(false)
    // A leader seen restarts the count: the next stretch without one must last 10 s again,
    // counted from the first call that finds no leader (it may have been known until then).
    leader = false
    t = 15_000
    expect(g()).toBe(false)
    t = 22_000
    expect(g()).toBe(false)
    t = 24_999
    expect(g()).toBe(false)
    t = 25_000
    expect(g()).toBe(true)
    expect(opened).toBe(2)
  })

  it('counts from the first call without a leader, not from the last call that saw one (simulation seed 549)', () => {
    // The agent's rounds call it every 2 s and on leader changes: a leader seen at 1 s and lost
    // at 2.9 s (a round then) leaves 10 s to run from 2.9 s, not from 1 s.
    let t = 1_000
    let leader = true
    const g = lastKnownGate(() => leader, () => t, () => {})
    expect(g()).toBe(false)
    leader = false
    const seen = [2_900, 11_000, 12_899, 12_900].map((at) => {
      t = at
      return g()
    })
    expect(seen).toEqual([false, false, false, true])
  })

  it('stays shut while a leader is known, however long', () => {
    let t = 0
    const g = lastKnownGate(() => true, () => t, () => {})
    for (t = 0; t <= 60_000; t += 5_000) expect(g()).toBe(false)
  })
})
