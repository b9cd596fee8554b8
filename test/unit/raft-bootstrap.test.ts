import { describe, expect, it } from 'vitest'
import { MAX_ENTRY_BYTES } from '../../src/consensus/limits.ts'
import { MemoryRaftStorage } from '../../src/consensus/memory-storage.ts'
import { createRaft } from '../../src/consensus/raft.ts'
import { bootstrap } from '../../src/consensus/storage.ts'
import { seededRng } from '../../src/core/rng.ts'
import { RaftCluster, TICK_MS } from '../sim/raft-cluster.ts'

describe('raft: single-peer bootstrap', () => {
  it('elects itself within two election timeouts and commits proposals with (term, index)', () => {
    const c = new RaftCluster({ seed: 7, ids: ['solo'], voters: ['solo'] })
    expect(c.awaitLeader(2 * 10 * TICK_MS + TICK_MS)).toBe('solo')
    const st = c.status('solo')
    expect(st.term).toBe(2) // bootstrap writes term 1; the first election is term 2
    expect(st.voters).toEqual(['solo'])
    const a = c.propose('solo', 'a')
    const b = c.propose('solo', 'b')
    expect(a).toMatchObject({ ok: true, term: 2 })
    expect(b).toMatchObject({ ok: true, term: 2 })
    if (!a.ok || !b.ok) return
    expect(b.index).toBe(a.index + 1)
    c.runFor(10)
    expect(c.applied('solo')).toEqual(['a', 'b'])
    expect(c.status('solo').commit).toBe(b.index)
    // The committed entries carry exactly the (term, index) the proposals were promised.
    const stored = c.peer('solo').storage.entries(a.index, b.index + 1)
    expect(stored.map((e) => [e.term, e.index])).toEqual([[a.term, a.index], [b.term, b.index]])
    expect(c.raft('solo').propose(new Uint8Array(MAX_ENTRY_BYTES + 1))).toEqual({ ok: false, reason: 'too-large' })
  })

  it('writes the initial voters as committed conf entries, and only into empty storage', () => {
    const s = new MemoryRaftStorage()
    bootstrap(s, ['a', 'b', 'c'])
    expect(s.lastIndex()).toBe(3)
    expect(s.hardState()).toEqual({ term: 1, vote: null, commit: 3 })
    expect(s.entries(1, 4).every((e) => e.type === 'conf' && e.term === 1)).toBe(true)
    expect(() => bootstrap(s, ['a'])).toThrow(/empty storage/)
    expect(() => bootstrap(new MemoryRaftStorage(), [])).toThrow(RangeError)
    const r = createRaft({ id: 'b', storage: s, rng: seededRng(1) })
    expect(r.status()).toMatchObject({ voters: ['a', 'b', 'c'], learners: [], commit: 3, role: 'follower' })
  })

  it('a peer with empty storage is not a voter and never campaigns on its own', () => {
    const r = createRaft({ id: 'joiner', storage: new MemoryRaftStorage(), rng: seededRng(1) })
    for (let i = 0; i < 600; i++) r.tick()
    expect(r.status()).toMatchObject({ term: 0, role: 'follower', voters: [] })
    expect(r.hasReady()).toBe(false)
  })

  it('rejects invalid timing options', () => {
    const storage = new MemoryRaftStorage()
    const rng = seededRng(1)
    expect(() => createRaft({ id: 'x', storage, rng, electionTicks: 2, heartbeatTicks: 2 })).toThrow(RangeError)
    expect(() => createRaft({ id: 'x', storage, rng, electionTicks: 0 })).toThrow(RangeError)
    expect(() => createRaft({ id: '', storage, rng })).toThrow(RangeError)
  })
})
